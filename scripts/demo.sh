#!/bin/sh
# The main job, end to end, on one machine: a local grid (a bare repository on disk as the remote),
# the example tasks of tasks/queue submitted to it, a worker that runs them in Docker until the queue
# is empty, and the grid's state at the end. Run after `cargo install --locked --path .`.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
PATH="$HOME/.cargo/bin:$PATH"
command -v git-dgrid >/dev/null || { echo "git-dgrid is not on PATH: cargo install --locked --path $here" >&2; exit 1; }

# Docker and a static busybox for the example image; installed and started when we may (root on Debian).
if ! command -v docker >/dev/null 2>&1 || ! [ -x /bin/busybox ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null
    fi
fi
if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then "$here/scripts/start-docker.sh"; else
        echo "Docker is not running (or you may not use it): start it, then run this again." >&2; exit 1
    fi
fi
"$here/scripts/busybox-image.sh"

demo=${DGRID_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dgrid-demo.XXXXXX")}
echo "==> a local grid in $demo/grid.git"
git dgrid init --bare "$demo/grid.git"
git clone --quiet "$demo/grid.git" "$demo/clone"
cd "$demo/clone"
echo "==> submitting the example tasks"
git dgrid submit "$here"/tasks/queue/*.json
echo "==> a worker runs them in Docker until the queue is empty"
git dgrid work --node-id demo-node --poll-interval 1 --until-empty --state-dir "$demo/state"
echo "==> the grid now"
git dgrid status
echo "==> what one task printed"
git dgrid logs hello
