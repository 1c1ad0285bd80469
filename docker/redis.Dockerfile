# The Redis of docker-compose.yml: Debian 12's redis-server (7.0) with cq's Redis module
# (module/, CQ.APPLY1: half the Redis CPU a job, docs/BENCHMARKS.md), on the same
# debian:bookworm base as cq's image, so that nothing comes from a registry. Build context:
# the source tree, as for the Dockerfile, whose build stage this one repeats line for line up
# to the source's COPY, so that the two share those layers in the build cache.
# cq's production settings (docs/OPERATIONS.md) are its defaults: appendonly yes (what Redis
# acknowledged survives a restart) and maxmemory-policy noeviction (a full Redis refuses
# writes instead of evicting queues or leases). Data in /data, a volume. It listens on every
# address, without a password (protected mode off), for a private network such as
# compose's: add --requirepass or an ACL file before it is reachable from elsewhere. A
# command given to the container replaces this one (compose's repeats it with a --port).
FROM debian:bookworm AS build
LABEL cq.stage=build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libhiredis-dev libcurl4-openssl-dev libcjson-dev uuid-dev libssl-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
# Not the Dockerfile's build stage, which tests/test_docker.sh keeps by this label.
LABEL cq.stage=redis-build
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DCQ_BUILD_TESTS=OFF -DCQ_BUILD_EXAMPLES=OFF -DCQ_BUILD_MAN=OFF \
 && cmake --build /build --target cq_redis \
 && strip --strip-unneeded /build/lib/cq-redis.so

FROM debian:bookworm
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server libcjson1 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis -m 0750 /data
COPY --from=build /build/lib/cq-redis.so /usr/lib/cq/cq-redis.so
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=5 CMD redis-cli ping | grep -q PONG
CMD ["redis-server", "--dir", "/data", "--appendonly", "yes", "--maxmemory-policy", "noeviction", \
     "--protected-mode", "no", "--loadmodule", "/usr/lib/cq/cq-redis.so"]
