#!/bin/sh
# Starts the Docker engine when none answers (CI machines and fresh sandboxes have no init system
# that would). Needs root and Debian's docker.io.
set -eu
if docker info >/dev/null 2>&1; then
    exit 0
fi
command -v dockerd >/dev/null 2>&1 || { echo "dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }
log=${DOCKERD_LOG:-/tmp/dockerd.log}
setsid dockerd >"$log" 2>&1 < /dev/null &
i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 60 ]; then
        echo "dockerd did not come up within 60 s; its log:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    sleep 1
done
echo "docker engine $(docker version --format '{{.Server.Version}}') is up"
