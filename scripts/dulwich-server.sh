#!/bin/sh
# Serves the bare repository GITDIR over git's smart-HTTP protocol with dulwich's own server
# (PyPI `dulwich`), at http://127.0.0.1:PORT/ , until killed. The integration tests run git-dgrid
# against it because it is a git server nobody here wrote, and one that acknowledges a push it did
# not apply (`ok refs/heads/main` for a push whose expected old value is stale): git-dgrid must
# count a push as landed only once the remote's main is seen to contain it.
#
# usage: scripts/dulwich-server.sh GITDIR PORT
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 GITDIR PORT" >&2
    exit 2
fi
# exec: the caller's kill of this process's id ends the server itself.
exec python3 -m dulwich.web -l 127.0.0.1 -p "$2" "$1"
