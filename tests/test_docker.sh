#!/usr/bin/env bash
# test_docker.sh BUILD_DIR - cq's container images and docker-compose.yml, for real: a private
# dockerd, both images built from this tree (Dockerfile, docker/redis.Dockerfile), the
# project brought up with 3 workers against a local gallery, the producer's one-shot run,
# every image in the shared volume and every job finished in Redis, the workers' HEALTHCHECK
# (healthy, then unhealthy when a worker stops renewing its lease, then healthy again), the
# entrypoint's ways of being called, a scale up to 5 and down to 1 in which no job is lost,
# and `down -v`.
#
# The daemon: Debian's docker.io (/usr/sbin/dockerd, client /usr/bin/docker) with its data
# root in $CQ_TEST_CACHE/docker (default /var/cache/cq-tests/docker), kept between runs so
# that the base image and the built layers are reused (a first run builds for minutes, later
# runs take seconds), under a lock (flock) so that two runs never share it at once; its
# exec root and socket are in $T. It runs with --bridge=none --iptables=false: it must leave
# this machine's network alone, so every container and build uses the host's network
# (docker/compose.test.yml). debian:bookworm is imported once from
# tests/fixtures/bookworm_rootfs.sh (debootstrap from this machine's apt source); no registry
# is ever asked. A daemon that cannot start fails the test (FATAL, with its log): it is
# never skipped. Needs root.
#
# Redis listens on a free port of 127.0.0.1 (CQ_REDIS_PORT), the fixtures (fake Imgur API,
# image server) on 127.0.0.1 as always: with host networking, the containers reach them there.
# Each step prints a line with the seconds since the start; the end says how long it took.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DOCKER=/usr/bin/docker          # Debian's client, the daemon's version
DOCKERD=/usr/sbin/dockerd
COMPOSE=/usr/bin/docker-compose
CACHE=${CQ_TEST_CACHE:-/var/cache/cq-tests}
DATA=$CACHE/docker
EXECROOT=$T/dx                  # short: containerd's socket path must fit in 108 bytes
SOCK=$T/docker.sock
PROJECT=cqtest$$x$RANDOM
DPID=
UP=false
START=$(date +%s)

# The project's settings: only what this test says (compose reads these from the environment).
unset CQ_REDIS_URL CQ_PREFIX CQ_QUEUES CQ_LOG_FORMAT CQ_LOG_LEVEL CQ_PLUGINS IMGUR_CLIENT_ID \
      IMGUR_API_URL COMPOSE_FILE COMPOSE_PROJECT_NAME COMPOSE_PROFILES DOCKER_CONTEXT
export DOCKER_HOST=unix://$SOCK
export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0   # docker-compose builds through the API
export CQ_CONCURRENCY=2        # 2 jobs at once a worker: the scale-down finds jobs running

step() { echo "# [$(( $(date +%s) - START ))s] $*"; }
# ticking CMD [ARG...]: run CMD, saying every 15 s that it still runs (on the test's stdout,
# fd 7, wherever CMD's goes)
exec 7>&1
ticking() {
    local pid rc=0 t=0
    "$@" &
    pid=$!
    while ! wait_for 15 exited "$pid"; do
        t=$((t + 15))
        echo "     ... still at it ($t s)" >&7
    done
    wait "$pid" || rc=$?
    return "$rc"
}
fatal() {
    echo "FATAL: $1"
    shift
    [ $# -eq 0 ] || tail -n 40 "$@"
    exit 1
}

dk() { "$DOCKER" "$@"; }
dc() { (cd "$SRC" && "$COMPOSE" -p "$PROJECT" -f docker-compose.yml -f docker/compose.test.yml "$@"); }
rp() { redis-cli -p "$CQ_REDIS_PORT" "$@"; }

# ---- the end: the project, then the daemon, then lib.sh's cleanup (fixtures, $T) ----
stop_dockerd() {
    local cpid
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null || true
    if ! wait_for 30 exited "$DPID"; then
        echo "# dockerd did not stop in 30 s: SIGKILL"
        kill -KILL "$DPID" 2>/dev/null || true
    fi
    wait "$DPID" 2>/dev/null || true
    # its containerd, should it outlive it
    cpid=$(cat "$EXECROOT/containerd/containerd.pid" 2>/dev/null) || cpid=
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
        kill -TERM "$cpid" 2>/dev/null || true
        wait_for 10 exited "$cpid" || kill -KILL "$cpid" 2>/dev/null || true
    fi
    { grep -o " ${EXECROOT}[^ ]*" /proc/mounts || true; } | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf "$EXECROOT"
    DPID=
}
on_exit() {
    if $UP; then
        step "cleanup: docker-compose down -v"
        dc --profile producer --profile ctl down -v --remove-orphans --timeout 35 >"$T/down.log" 2>&1 ||
            tail -n 20 "$T/down.log"
    fi
    if [ -n "$DPID" ]; then
        step "cleanup: stopping dockerd (pid $DPID)"
        stop_dockerd
    fi
    cleanup   # lib.sh
}
trap 'rc=$?; set +e; on_exit; exit $rc' EXIT

# ---- the compose files, and the daemon ----
[ "$(id -u)" = 0 ] || fatal "test_docker.sh needs root (it runs its own dockerd)"
for f in "$DOCKER" "$DOCKERD" "$COMPOSE"; do
    [ -x "$f" ] || fatal "$f is missing (scripts/deps --test installs docker.io and docker-compose)"
done
step "docker-compose config: docker-compose.yml alone, and with docker/compose.test.yml"
check "docker-compose.yml is valid" \
    env -u CQ_CONCURRENCY "$COMPOSE" -f "$SRC/docker-compose.yml" --profile producer --profile ctl config -q || true
CQ_REDIS_PORT=6379 check "with the test's override too" dc --profile producer --profile ctl config -q || true
mkdir -p "$DATA"
exec 8>"$CACHE/docker.lock"
if ! flock -n 8; then
    step "another test_docker.sh uses $DATA: waiting for it (up to 30 min)"
    flock -w 1800 8 || fatal "$DATA stayed locked for 30 min"
fi

# A daemon on this data root now was left by a run that was killed (the lock is ours): two
# daemons must never share one, and it is not this run's to stop.
if orphan=$(pgrep -f -- "--data-root $DATA( |\$)"); then
    fatal "a dockerd left by an earlier run still uses $DATA (pid $(paste -sd" " <<<"$orphan")): stop it first"
fi

step "starting dockerd (data root $DATA, kept between runs; exec root and socket in $T)"
# Its own containerd namespace, so that it cannot meet another daemon's containers should a
# system containerd be running (dockerd then uses that one instead of starting its own).
# Without fds 7 and 8 (the test's stdout, the lock): a daemon that outlived a killed run must
# neither hold the lock nor keep the test's output open.
"$DOCKERD" --data-root "$DATA" --exec-root "$EXECROOT" --pidfile "$T/dockerd.pid" \
    -H "unix://$SOCK" --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
    --containerd-namespace cq-test --containerd-plugins-namespace cq-test-plugins \
    >"$T/dockerd.log" 2>&1 7>&- 8>&- &
DPID=$!
daemon_answers() { dk version >/dev/null 2>&1 || exited "$DPID"; }
wait_for 60 daemon_answers || true
exited "$DPID" && { DPID=; fatal "dockerd exited at start; its log:" "$T/dockerd.log"; }
dk version >/dev/null 2>&1 || fatal "dockerd does not answer on $SOCK after 60 s; its log:" "$T/dockerd.log"
step "dockerd $(dk version -f '{{.Server.Version}}') answers (pid $DPID)"

# What an earlier run left when it was killed: this data root is ours alone (the lock).
old=$(dk ps -aq)
if [ -n "$old" ]; then
    step "removing $(wc -l <<<"$old") containers an earlier run left"
    # shellcheck disable=SC2086
    ticking dk rm -f $old >/dev/null
fi
dk volume prune -f >/dev/null
dk network prune -f >/dev/null

if ! dk image inspect debian:bookworm >/dev/null 2>&1; then
    step "no debian:bookworm yet: tests/fixtures/bookworm_rootfs.sh (debootstrap, once; minutes)"
    CQ_ROOTFS_CACHE=${CQ_ROOTFS_CACHE:-$CACHE} ticking "$SRC/tests/fixtures/bookworm_rootfs.sh" \
        >"$T/rootfs" || fatal "bookworm_rootfs.sh failed"
    tarball=$(cat "$T/rootfs")
    step "docker import $tarball debian:bookworm"
    ticking dk import "$tarball" debian:bookworm >/dev/null || fatal "docker import failed"
fi
step "base image debian:bookworm: $(dk image inspect -f '{{.Id}}' debian:bookworm | cut -c1-19)"

# ---- the images ----
# progress < BUILD-OUTPUT: the build's "Step N/M" lines, at most one other line each 10 s
# (apt, cmake), and a line when it has said nothing for 15 s (vfs copies whole layers), so
# that a first build, minutes of apt-get and compiling, is never silent for long.
progress() {
    local line buf='' rc last=$SECONDS t0=$SECONDS
    while :; do
        rc=0
        IFS= read -r -t 15 line || rc=$?
        if [ "$rc" -gt 128 ]; then   # no whole line for 15 s: keep what came of one
            buf+=$line
            echo "     ... (still building: $((SECONDS - t0)) s)"
            last=$SECONDS
            continue
        fi
        line=$buf$line
        buf=
        [ "$rc" -eq 0 ] || [ -n "$line" ] || break
        printf '%s\n' "$line" >>"$T/build.log"
        line=${line//$'\e'\[[0-9;]*m/}
        case $line in
            Step\ *) echo "     ${line:0:110}"; last=$SECONDS ;;
            *) if [ $((SECONDS - last)) -ge 10 ] && [ -n "${line// /}" ]; then
                   echo "     ... ${line:0:104}"; last=$SECONDS
               fi ;;
        esac
        [ "$rc" -eq 0 ] || break
    done
}
step "docker-compose build (cq, cq-redis)"
dc build --force-rm 2>&1 | progress || fatal "docker-compose build failed; the log's end:" "$T/build.log"
# The build stage's image is left untagged, yet it is the next build's cache: tag it (the
# newest with the Dockerfile's label), then remove the untagged leftovers of earlier builds
# of other sources, so that the cache does not grow with every change.
stage=$(dk images -q --filter label=cq.stage=build | sed -n 1p)
[ -z "$stage" ] || dk tag "$stage" cq-build:latest
dk image prune -f >/dev/null
step "images: $(dk images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^cq(-redis)?:' | tr '\n' ' ')"

# ---- Redis, on a free port ----
free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cid() { dc ps -q "$1" | sed -n 1p; }
health() { dk inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null; }
running() { [ "$(dk inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
healthy_or_exited() { [ "$(health "$1")" = healthy ] || ! running "$1"; }
UP=true
for try in 1 2 3 4 5; do
    CQ_REDIS_PORT=$(free_port)
    export CQ_REDIS_PORT
    step "docker-compose up -d redis (port $CQ_REDIS_PORT)"
    dc up -d redis >"$T/up.log" 2>&1 || fatal "docker-compose up redis failed" "$T/up.log"
    r=$(cid redis)
    wait_for 60 healthy_or_exited "$r" || true
    [ "$(health "$r")" = healthy ] && break
    dk logs "$r" >"$T/redis.log" 2>&1
    grep -q 'Address already in use' "$T/redis.log" || fatal "redis did not turn healthy" "$T/redis.log"
    echo "     (port $CQ_REDIS_PORT was taken meanwhile; another)"
    dc rm -sf redis >/dev/null 2>&1
    [ "$try" -lt 5 ] || fatal "redis found no free port in 5 tries"
done
check_eq "redis: healthy (redis-cli ping)" healthy "$(health "$r")" || true
check_eq "redis: appendonly yes" "appendonly yes" "$(rp CONFIG GET appendonly | paste -sd' ')" || true
check_eq "redis: maxmemory-policy noeviction" "maxmemory-policy noeviction" \
    "$(rp CONFIG GET maxmemory-policy | paste -sd' ')" || true
check_eq "redis: runs as the user redis" redis "$(dk exec "$r" id -un)" || true
check_contains "redis: loaded cq's module (MODULE LIST)" "cq" "$(rp MODULE LIST | paste -sd' ')" || true

# ---- 3 workers ----
step "docker-compose up -d --scale worker=3"
ticking dc up -d --scale worker=3 >"$T/up.log" 2>&1 || fatal "docker-compose up failed" "$T/up.log"
workers() { dc ps -q worker; }
nworkers() { [ "$(rp SCARD cq:workers)" = "$1" ]; }
all_healthy() {
    local c n=0
    for c in $(workers); do [ "$(health "$c")" = healthy ] || return 1; n=$((n + 1)); done
    [ "$n" = "$1" ]
}
wait_for 30 nworkers 3 || true
check_eq "3 workers registered in cq:workers" 3 "$(rp SCARD cq:workers)" || true
step "waiting for the workers' HEALTHCHECK"
wait_for 60 all_healthy 3 || true
check "the 3 worker containers turn healthy" all_healthy 3 || {
    for c in $(workers); do echo "     $c: $(health "$c")"; done
}

# last_health C: the output of the last healthcheck of container C
last_health() {
    dk inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$1" | grep . | tail -1
}
# cworker_pid C: the pid of container C's cworker: its process, or its init's child (in the
# host's pid namespace docker adds no init)
cworker_pid() {
    local top
    top=$(dk inspect -f '{{.State.Pid}}' "$1")
    { ps -o pid= -o comm= -p "$top"; ps --ppid "$top" -o pid= -o comm=; } |
        awk '$2 == "cworker" { print $1 }'
}
ids=() mine=0
for c in $(workers); do
    id=$(last_health "$c" | sed -n 's/^healthy: worker \([^ ]*\) .*/\1/p')
    ids+=("$id")
    [[ $id == *".$(cworker_pid "$c")."* ]] && mine=$((mine + 1))
done
check_eq "the 3 healthchecks name 3 distinct workers, those of cq:workers" \
    "$(rp SMEMBERS cq:workers | sort | paste -sd' ')" \
    "$(printf '%s\n' "${ids[@]}" | sort -u | paste -sd' ')" || true
check_eq "each names its own container's worker (by its cworker's pid)" 3 "$mine" || true
c1=$(workers | sed -n 1p)
check_eq "workers run as cq (uid 10001)" 10001 "$(dk exec "$c1" id -u)" || true
check_contains "worker: the environment's queue and concurrency (CQ_QUEUES, CQ_CONCURRENCY)" \
    "queues default, concurrency 2" "$(dk logs "$c1" 2>&1)" || true
check_contains "worker: its outcomes through the Redis image's module" \
    "takes and outcomes through cq's Redis module" "$(dk logs "$c1" 2>&1)" || true

# ---- the producer, against a local gallery ----
step "starting the fixtures: image server, fake Imgur API"
start_httpd --generate --latency 0.05 7>&- 8>&-
start_fake_imgur --client-id docker-client --image-base "$HBASE/" 7>&- 8>&-
export IMGUR_CLIENT_ID=docker-client IMGUR_API_URL=$API
step "the links: docker-compose run producer cproducer --dry-run"
dc --profile producer run --rm -T producer cproducer --dry-run >"$T/links" 2>"$T/links.err" ||
    fatal "cproducer --dry-run failed" "$T/links.err"
N=$(wc -l <"$T/links")
[ "$N" -gt 0 ] || fatal "the gallery has no .jpg link" "$T/links.err"
step "docker-compose --profile producer run producer: $N download_link jobs, waiting for them"
rc=0
ticking dc --profile producer run --rm -T producer >"$T/producer.out" 2>"$T/producer.err" || rc=$?
check_eq "producer: exit 0" 0 "$rc" || cat "$T/producer.out" "$T/producer.err"
check_contains "producer: enqueued $N jobs" "enqueued $N jobs to queue default" "$(cat "$T/producer.out")" || true
check_contains "producer: waited for them (Took ...)" "Took " "$(cat "$T/producer.out")" || true

step "the images in the volume ${PROJECT}_downloads"
mkdir -p "$T/images"
dk run --rm --network none -v "${PROJECT}_downloads:/v:ro" --entrypoint tar cq:latest -C /v/images -cf - . |
    tar -x -C "$T/images" || echo "     (no images directory in the volume)"
names() { sed 's#.*/##' "$T/links" | sort -u; }
check_eq "every link's image is in the shared volume" "$(names | paste -sd' ')" \
    "$(find "$T/images" -type f -printf '%f\n' | sort | paste -sd' ')" || true
# shellcheck disable=SC2046
check_eq "each holds the bytes the image server sent" "$N" \
    "$(count_generated 32768 $(names | sed "s#^#$T/images/#"))" || true
job_statuses() {
    local k
    for k in $(rp --scan --pattern 'cq:job:*'); do rp HGET "$k" status; done | sort | uniq -c |
        awk '{ printf "%s%s %s", sep, $2, $1; sep = ", " }'
}
check_eq "every job is finished in Redis" "finished $N" "$(job_statuses)" || true
check_eq "by the 3 workers: cq:stats processed" "$N" "$(rp HGET cq:stats processed)" || true

# ---- the entrypoint's ways in ----
step "the entrypoint: cworker ARGS, -OPTIONS, cenqueue"
run_img() { dk run --rm --network host -e CQ_REDIS_URL="redis://127.0.0.1:$CQ_REDIS_PORT" "$@"; }
out=$(run_img cq:latest cworker --burst -c 8 high default 2>&1) || true
check_contains "docker run IMAGE cworker -c 8 high default" "queues high,default, concurrency 8" "$out" ||
    echo "$out"
out=$(run_img -e CQ_QUEUES=alpha,beta -e CQ_CONCURRENCY=3 cq:latest --burst 2>&1) || true
check_contains "docker run IMAGE --burst: cworker, queues and concurrency from the environment" \
    "queues alpha,beta, concurrency 3" "$out" || echo "$out"
out=$(run_img cq:latest cenqueue -q nobody noop 2>/dev/null) || true
check "docker run IMAGE cenqueue noop: prints the job's id" grep -qE '^[0-9a-f-]{36}$' <<<"$out"
rp DEL cq:queue:nobody >/dev/null

# ---- the healthcheck means the lease ----
victim=$(workers | sed -n 1p)
others=$(workers | tail -n +2)
vid=$(last_health "$victim" | sed -n 's/^healthy: worker \([^ ]*\) .*/\1/p')
signal_cworker() {   # signal_cworker CONTAINER SIG
    local p
    for p in $(cworker_pid "$1"); do kill -"$2" "$p"; done
}
step "SIGSTOP the cworker of one container: its lease lapses (10 s), the others recover it"
signal_cworker "$victim" STOP
unhealthy() { [ "$(health "$1")" = unhealthy ]; }
gone() { [ "$(rp SISMEMBER cq:workers "$vid")" = 0 ]; }
wait_for 40 unhealthy "$victim" || true
check "a stopped worker's container turns unhealthy" unhealthy "$victim" || true
check_contains "its healthcheck says why" "unhealthy: " "$(last_health "$victim")" || true
wait_for 10 gone || true
check "the live workers recovered it (out of cq:workers)" gone || true
ok=0
for c in $others; do [ "$(health "$c")" = healthy ] && ok=$((ok + 1)); done
check_eq "the other containers stay healthy" 2 "$ok" || true
step "SIGCONT: it renews its lease and registers again"
signal_cworker "$victim" CONT
wait_for 30 all_healthy 3 || true
check "healthy again" all_healthy 3 || true
check_eq "3 workers registered again" 3 "$(rp SCARD cq:workers)" || true

# ---- scale ----
step "docker-compose up -d --scale worker=5"
ticking dc up -d --no-recreate --scale worker=5 >"$T/up.log" 2>&1 || fatal "scale to 5 failed" "$T/up.log"
wait_for 30 nworkers 5 || true
check_eq "scaled up: 5 workers in cq:workers" 5 "$(rp SCARD cq:workers)" || true
wait_for 60 all_healthy 5 || true
check "the 5 worker containers turn healthy" all_healthy 5 || true

step "30 jobs 'sleep 4' (10 run at once), then docker-compose up -d --scale worker=1"
stat() { local v; v=$(rp HGET cq:stats "$1"); echo "${v:-0}"; }
base_processed=$(stat processed) base_failed=$(stat failed) base_recovered=$(stat recovered)
# 4 s each, 12 s for the three rounds: once the first jobs ended, 8 s of them are left for
# the scale-down to find running (with 'sleep 2', 4 s, a loaded machine's docker-compose
# took 15 s to stop the containers and found every job ended: 'stopping: no job running').
for _ in $(seq 30); do echo "sleep 4"; done >"$T/sleeps"
dc --profile ctl run --rm -T ctl cenqueue --stdin <"$T/sleeps" >"$T/sleep.ids" 2>"$T/sleep.err" ||
    fatal "cenqueue --stdin failed" "$T/sleep.err"
busy() { [ "$(stat processed)" -ge "$((base_processed + 2))" ]; }
wait_for 20 busy || true
# every worker's log, to its end: those of the containers the scale-down removes
for c in $(workers); do
    dk logs -f "$c" >"$T/log.$c" 2>&1 7>&- 8>&- &
    PIDS+=("$!")
done
t_down=$(date +%s)
ticking dc up -d --no-recreate --scale worker=1 >"$T/down1.log" 2>&1 || fatal "scale to 1 failed" "$T/down1.log"
step "scaled down in $(( $(date +%s) - t_down )) s"
check_eq "scaled down: 1 worker in cq:workers (the others deregistered as they stopped)" 1 \
    "$(rp SCARD cq:workers)" || true
check_eq "1 worker container left" 1 "$(workers | wc -l)" || true
left=$(workers) stopped=0 drained=0
for f in "$T"/log.*; do
    [ "${f#"$T/log."}" != "$left" ] || continue
    grep -q 'INFO worker .* stopped' "$f" && stopped=$((stopped + 1))
    grep -qE 'stopping: [0-9]+ jobs? running' "$f" && drained=$((drained + 1))
done
check_eq "the 4 removed workers each logged their clean stop" 4 "$stopped" || true
check "and they had jobs running, which they let end (stopping: N jobs running)" \
    test "$drained" -gt 0 || true
# shellcheck disable=SC2046
sleeps_done() { jobs_done $(cat "$T/sleep.ids"); }
jobs_done() {
    local id
    for id in "$@"; do [ "$(rp HGET "cq:job:$id" status)" = finished ] || return 1; done
}
step "waiting for the 30 jobs on the last worker"
wait_for 90 sleeps_done || true
check_eq "30 jobs enqueued" 30 "$(wc -l <"$T/sleep.ids")" || true
check "no job lost: all 30 finished" sleeps_done || true
check_eq "none failed, none recovered from a dead worker" "0 0" \
    "$(( $(stat failed) - base_failed )) $(( $(stat recovered) - base_recovered ))" || true
out=$(dc --profile ctl run --rm -T ctl cqctl workers 2>&1) || true
check_contains "ctl service: cqctl workers shows the last worker live" " live" "$out" || echo "$out"

# ---- down ----
step "docker-compose down -v"
ticking dc --profile producer --profile ctl down -v --remove-orphans --timeout 35 >"$T/down.log" 2>&1 ||
    fatal "docker-compose down failed" "$T/down.log"
UP=false
check_eq "down -v: no container left" "" "$(dk ps -aq --filter "label=com.docker.compose.project=$PROJECT")" || true
check_eq "down -v: the volumes are gone" "" "$(dk volume ls -q --filter "name=${PROJECT}_")" || true

step "stopping dockerd"
stop_dockerd
check "dockerd stopped, its exec root removed" test ! -e "$EXECROOT" || true
step "done in $(( $(date +%s) - START )) s"
finish
