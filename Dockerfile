# cq's container image: cworker (the default command), cenqueue, cproducer and cqctl, on
# Debian 12. Two stages: "build" compiles cq with CMake and installs it into /stage; the
# runtime stage holds only the run-time libraries and what `cmake --install` put there.
#
#   docker build -t cq .                       (docker-compose build does it for compose)
#   docker run IMAGE                           cworker on queue "default" of $CQ_REDIS_URL
#   docker run IMAGE cworker -c 8 high default any cworker command line
#   docker run IMAGE -c 8 high default         the same: arguments starting with "-" go to cworker
#   docker run IMAGE cenqueue noop             any of the four programs (or sh)
#
# Settings come from the environment:
#   CQ_REDIS_URL (default redis://127.0.0.1:6379), CQ_PREFIX, CQ_TLS_CA, CQ_TLS_CERT,
#   CQ_TLS_KEY, CQ_PLUGINS: read by the programs
#   IMGUR_CLIENT_ID, IMGUR_API_URL: read by cproducer
#   CQ_CONCURRENCY, CQ_QUEUES, CQ_DOWNLOAD_ROOT, CQ_LOG_LEVEL, CQ_LOG_FORMAT,
#   CQ_SHUTDOWN_TIMEOUT: turned into cworker's options by the entrypoint
#   (docker/entrypoint.sh, installed as /usr/local/bin/cq-entrypoint; options on the command
#   line win over these)
#
# Downloads: the working directory /var/lib/cq is cworker's download root and a volume, so
# a job download_link(images, URL) writes /var/lib/cq/images/NAME. The programs run as the
# unprivileged user cq (uid 10001), which owns it.
#
# Health: cq-healthcheck (docker/healthcheck.sh) is healthy while the container's cworker
# holds its lease in Redis (cq:worker:<id>:lease, renewed every 2 s, gone 10 s after the last
# renewal): it finds the worker through `cqctl workers --json`, by this container's
# hostname and cworker's pid.
#
# Stopping: SIGTERM makes cworker drain: it takes nothing more, gives running jobs
# --shutdown-timeout (25 s) and puts back what is still running. Give `docker stop` more time
# than that (docker stop -t 30; compose: stop_grace_period: 30s).
#
# apt-get uses the image's own sources (for the debian:bookworm that tests/test_docker.sh
# makes, those debootstrap wrote from this machine's apt configuration).

# build: the compiler, CMake and the -dev packages of cq's libraries (libssl-dev: libcq's
# rediss://; libcurl brings its own TLS; libmicrohttpd: cqctl serve)
FROM debian:bookworm AS build
# After a build, this stage's image is left untagged, yet it is the next build's cache: the
# label lets one find it (docker images --filter label=cq.stage=build) and tag it before
# pruning untagged images (tests/test_docker.sh does).
LABEL cq.stage=build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libhiredis-dev libcurl4-openssl-dev libcjson-dev uuid-dev libssl-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
# .dockerignore keeps the context to what the build reads (no build trees, tests, docs).
COPY . /src
# No tests, examples or man pages; of what `cmake --install` puts in place, the systemd unit
# and its environment file (lib/systemd, etc/cq) have no use in a container.
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr/local \
          -DCQ_BUILD_TESTS=OFF -DCQ_BUILD_EXAMPLES=OFF -DCQ_BUILD_MAN=OFF \
 && cmake --build /build -j "$(nproc)" \
 && DESTDIR=/stage cmake --install /build \
 && rm -rf /stage/usr/local/lib/systemd /stage/usr/local/etc \
 && install -D -m 0755 /src/docker/entrypoint.sh /stage/usr/local/bin/cq-entrypoint \
 && install -D -m 0755 /src/docker/healthcheck.sh /stage/usr/local/bin/cq-healthcheck \
 && /stage/usr/local/bin/cworker --version

# runtime: the libraries alone (Debian 12's package names), the user cq, the programs
FROM debian:bookworm
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libhiredis0.14 libcurl4 libcjson1 libuuid1 libssl3 libmicrohttpd12 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 cq \
 && useradd --uid 10001 --gid cq --home-dir /var/lib/cq --no-create-home \
        --shell /usr/sbin/nologin cq \
 && install -d -o cq -g cq -m 0755 /var/lib/cq
COPY --from=build /stage/usr/local/ /usr/local/
# A library missing from the list above stops the build here.
RUN cworker --version && cenqueue --version && cproducer --version && cqctl --version
USER cq
WORKDIR /var/lib/cq
VOLUME ["/var/lib/cq"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=10s --start-period=10s --retries=3 CMD ["cq-healthcheck"]
ENTRYPOINT ["cq-entrypoint"]
CMD ["cworker"]
