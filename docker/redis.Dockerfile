# The Redis of docker-compose.yml: Debian 12's redis-server (7.0) on the same debian:bookworm
# base as cq's image, so that nothing comes from a registry. Build context: docker/.
# cq's production settings (docs/OPERATIONS.md) are its defaults: appendonly yes (what Redis
# acknowledged survives a restart) and maxmemory-policy noeviction (a full Redis refuses
# writes instead of evicting queues or leases). Data in /data, a volume. It listens on every
# address, without a password (protected mode off), for a private network such as
# compose's: add --requirepass or an ACL file before it is reachable from elsewhere. A
# command given to the container replaces this one (compose's repeats it with a --port).
FROM debian:bookworm
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis -m 0750 /data
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=5 CMD redis-cli ping | grep -q PONG
CMD ["redis-server", "--dir", "/data", "--appendonly", "yes", "--maxmemory-policy", "noeviction", \
     "--protected-mode", "no"]
