# lib.sh - shared helpers for cq's shell tests. Source it; it sets:
#   BIN (the built binaries), SRC (the source tree), T (a private temp dir, removed on exit)
# and gives: start_redis, start_httpd, start_fake_imgur, rcli, check, check_eq, wait_for,
# finish.
# Every server a test needs is started here on 127.0.0.1 and a free port, and stopped by the
# EXIT trap, whatever the outcome.

set -u
BUILD=${1:?usage: $0 BUILD_DIR}
BIN=$BUILD/bin
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d /tmp/cq-test.XXXXXX)
PIDS=()
FAILS=0
PASSES=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_redis [extra redis-server args...]: sets RPORT and CQ_REDIS_URL; fails loudly.
start_redis() {
    RPORT=$(free_port)
    mkdir -p "$T/redis"
    redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$T/redis" --save "" \
        --appendonly no --logfile "$T/redis/log" "$@" &
    RPID=$!
    PIDS+=("$RPID")
    wait_for 10 "redis-cli -p $RPORT ping" || { echo "FATAL: redis-server did not start"; cat "$T/redis/log"; exit 1; }
    export CQ_REDIS_URL=redis://127.0.0.1:$RPORT
}

# restart_redis_same_port [extra args...]: stop (SHUTDOWN, which writes the AOF) and start again.
stop_redis() {
    redis-cli -p "$RPORT" shutdown >/dev/null 2>&1
    wait "$RPID" 2>/dev/null
}
start_redis_again() {
    redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$T/redis" --save "" \
        --logfile "$T/redis/log" "$@" &
    RPID=$!
    PIDS+=("$RPID")
    wait_for 10 "redis-cli -p $RPORT ping" || { echo "FATAL: redis-server did not restart"; exit 1; }
}

# start_httpd [httpd.py args...]: sets HPORT and HBASE (http://127.0.0.1:PORT).
start_httpd() {
    local pf="$T/httpd.port.$RANDOM"
    python3 "$SRC/tests/fixtures/httpd.py" --port-file "$pf" "$@" &
    PIDS+=("$!")
    wait_for 10 "test -s $pf" || { echo "FATAL: httpd.py did not start"; exit 1; }
    HPORT=$(cat "$pf")
    HBASE=http://127.0.0.1:$HPORT
}

# start_fake_imgur [fake_imgur.py args...]: the fake Imgur API; sets FPORT and API (the
# gallery base URL to give cproducer --api-url).
start_fake_imgur() {
    local pf="$T/fake.port.$RANDOM"
    python3 "$SRC/tests/fixtures/fake_imgur.py" --port-file "$pf" "$@" &
    PIDS+=("$!")
    wait_for 10 "test -s $pf" || { echo "FATAL: fake_imgur.py did not start"; exit 1; }
    FPORT=$(cat "$pf")
    API=http://127.0.0.1:$FPORT/3/gallery/
}

# hits KIND: fake Imgur API requests (total, gallery or album) since the last reset_hits.
hits() {
    python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1]))[sys.argv[2]])' \
        "http://127.0.0.1:$FPORT/_/hits" "$1"
}
reset_hits() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()' \
        "http://127.0.0.1:$FPORT/_/reset"
}

rcli() { redis-cli -p "$RPORT" "$@"; }

# wait_for SECONDS COMMAND: poll every 50 ms until COMMAND succeeds.
wait_for() {
    local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
    while ! eval "$2" >/dev/null 2>&1; do
        [ $(( $(date +%s%N) / 1000000 )) -ge $deadline ] && return 1
        sleep 0.05
    done
}

# check NAME COMMAND: passes when COMMAND succeeds.
check() {
    if eval "$2" >/dev/null 2>&1; then
        PASSES=$((PASSES + 1)); echo "ok   - $1"
    else
        FAILS=$((FAILS + 1)); echo "FAIL - $1   ($2)"
    fi
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then
        PASSES=$((PASSES + 1)); echo "ok   - $1"
    else
        FAILS=$((FAILS + 1)); echo "FAIL - $1: expected [$2], got [$3]"
    fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
    case "$3" in
        *"$2"*) PASSES=$((PASSES + 1)); echo "ok   - $1" ;;
        *) FAILS=$((FAILS + 1)); echo "FAIL - $1: [$2] not in [$3]" ;;
    esac
}

# jstatus ID [FIELD]: a field of a job's status hash (default: status).
jfield() { rcli HGET "cq:job:$1" "${2:-status}"; }

finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
