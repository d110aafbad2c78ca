# The worker image: git-dgrid with git and the docker CLI, run with the host's Docker socket.
#
#   docker build -t git-dgrid-worker .
#   docker run -d --name dgrid-worker --restart unless-stopped \
#     -e NODE_ID=worker-001 -e DGRID_REPO_URL=https://github.com/<owner>/<grid>.git -e GIT_TOKEN \
#     -v /var/run/docker.sock:/var/run/docker.sock -v dgrid-state:/state git-dgrid-worker
#
# The risk, plainly: whoever can talk to the Docker socket is root on the host. Mounting it gives
# this container (and so git-dgrid) that power, so it can start the task containers. The tasks
# themselves do not get the socket: they run with no network, a read-only root, no capabilities
# and resource limits. Run workers only for grids whose task authors you trust, or on a host that
# is there for nothing else.
#
# The build needs the network: it pulls the rust and debian base images and, in `cargo build`, the
# crates of Cargo.lock from crates.io. Offline it fails at the first of them; pull the images
# (`docker pull rust:1-bookworm`, and the runtime image below) and run `cargo vendor` (with its
# printed `.cargo/config.toml`) while online, or build git-dgrid on the host and copy the binary
# in. `.dockerignore` keeps target/ and .git/ out of the build context.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY hooks hooks
COPY benches benches
RUN cargo build --release --locked --bins

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git docker.io ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/git-dgrid /src/target/release/git-dgrid-* /usr/local/bin/
ENV DGRID_STATE_DIR=/state
VOLUME /state
# tini forwards SIGTERM so `docker stop` gives running tasks their grace period.
ENTRYPOINT ["tini", "--", "git-dgrid", "work"]
