# lib.sh - shared helpers for cq's shell tests. Source it with the build directory as $1.
#
# It sets BUILD, BIN (the built binaries), SRC (the source tree) and T (a private temp dir,
# removed on exit), turns on `set -u` and `set -o pipefail`, and gives:
#   start_redis [ARGS...]       redis-server on the Unix socket $T/redis.sock only (no TCP)
#   start_redis_tcp [ARGS...]   the same socket plus a TCP port on 127.0.0.1 (RPORT)
#   stop_redis, start_redis_again [ARGS...]   SHUTDOWN (writes the AOF), then the same again
#   start_httpd [ARGS...]       tests/fixtures/httpd.py; sets HPORT and HBASE
#   start_fake_imgur [ARGS...]  tests/fixtures/fake_imgur.py; sets FPORT and API
#   hits KIND, reset_hits       the fake Imgur's request counters
#   count_generated SIZE FILE...    how many FILEs hold what httpd.py --generate serves
#   rcli ARGS...                redis-cli on the test's Redis
#   jfield ID [FIELD]           a field of a job's status hash (default: status)
#   jobs_are STATUS ID...       every job ID has that status
#   jfields_of FIELD ID...      a field of each job's status hash, a line each; all_jobs_are
#                               STATUS ID... and jobs_lacking "FIELD..." ID...: jobs_are and
#                               the fields each job lacks; each one script, not a process a job
#   statuses CLI ID...          each job's status hash and expiry as a line, through CLI (to
#                               compare a replica's with the primary's)
#   workers_are N               N workers are registered
#   between LO X HI             LO <= X <= HI, X a decimal number
#   wid_of PID                  the id of the registered worker whose process is PID (its id
#                               holds the pid), empty when there is none
#   registered_pid PID          there is one
#   start_worker LOG [ARGS...]  cworker ${WORKER_OPTS[@]} ARGS in the background, output in
#                               LOG; sets WPID (and adds it to PIDS)
#   start_registered LOG [ARGS...]  start_worker, then wait until one more worker is
#                               registered (FATAL, with its log, after 10 s)
#   watching N                  N connections are blocked in Redis (idle workers' watchers)
#   exited PID                  process PID is gone
#   wait_for SECONDS CMD [ARG...]   poll CMD until it succeeds or the time is up
#   check NAME CMD [ARG...]     a check that passes when CMD succeeds
#   check_eq NAME EXPECTED ACTUAL, check_contains NAME NEEDLE HAYSTACK
#   run_for SECONDS CMD [ARG...]    run CMD that long, then SIGTERM it alone and wait
#   finish                      prints "N passed, N failed"; the test's exit status
#   wrapped                     0 when CQ_TEST_WRAP runs the programs (slower: see below)
#   $PY                         python3 (Debian's own where there is one: see below)
# CMD is run as "$@", never through eval: a compound condition is a shell function of the
# test, passed by name with its arguments.
#
# Every server a test needs is started here and stopped by the EXIT trap, whatever the
# outcome. None of them is handed a port chosen in advance when it can do without one: Redis
# listens on a socket in $T, and the HTTP fixtures bind port 0 themselves and write the port
# they got to a file. Only start_redis_tcp picks a port, and it tries another when it loses
# that port to someone else, so that tests run in parallel (ctest -j) cannot fail each other.
#
# Checking the programs (scripts/test's TSan and valgrind passes). A program a test starts in
# the background, or stops with a signal, has no exit status anyone checks; so what a checker
# finds goes to a file $T/report.<pid>, and the EXIT trap prints every such file and fails
# the test, whatever the checks said:
#   - TSAN_OPTIONS set (a ThreadSanitizer build): its reports go there (log_path);
#   - CQ_TEST_WRAP=COMMAND: every program of $BIN runs as `COMMAND PROGRAM ARGS...` (BIN is
#     then a directory of wrappers in $T); when COMMAND is valgrind, its log goes there, and
#     `valgrind -q` writes nothing for a clean run. A test whose timing the wrapper's
#     slowness breaks asks `wrapped` and allows more time.

set -u
set -o pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd) || exit 1   # absolute: tests cd elsewhere
BIN=$BUILD/bin
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d /tmp/cq-test.XXXXXX)
PIDS=()
FAILS=0
PASSES=0

cleanup() {
    # Only the test's own shell: a subshell (a watchdog `( sleep; kill ) &` killed at once)
    # can run the EXIT trap it inherited before it resets it, and must not remove $T.
    [ "$BASHPID" = "$$" ] || return 0
    local p reports=() who=ThreadSanitizer
    [ -n "${CQ_TEST_WRAP:-}" ] && who=${CQ_TEST_WRAP%% *}
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for p in "$T"/report.*; do [ -s "$p" ] && reports+=("$p"); done
    for p in "${reports[@]}"; do
        echo "FAIL - $who reported ($(basename "$p")):"
        sed 's/^/     /' "$p"
    done
    rm -rf "$T"
    # Only a report changes the test's exit status (a test's own EXIT trap may go on after
    # this, as test_hosts.sh's does).
    [ ${#reports[@]} -eq 0 ] || exit 1
}
trap cleanup EXIT

if [ -n "${TSAN_OPTIONS:-}" ]; then
    export TSAN_OPTIONS="$TSAN_OPTIONS log_path=$T/report"
fi
if [ -n "${CQ_TEST_WRAP:-}" ]; then
    mkdir "$T/wrapped"
    read -r -a WRAP <<<"$CQ_TEST_WRAP"
    [ "$(basename "${WRAP[0]}")" = valgrind ] && WRAP+=("--log-file=$T/report.%p")
    for p in "$BIN"/*; do
        [ -f "$p" ] && [ -x "$p" ] || continue
        printf '#!/bin/bash\nexec %s %q "$@"\n' "$(printf '%q ' "${WRAP[@]}")" "$p" \
            >"$T/wrapped/${p##*/}"
        chmod +x "$T/wrapped/${p##*/}"
    done
    BIN=$T/wrapped
fi
wrapped() { [ -n "${CQ_TEST_WRAP:-}" ]; }
# tsan: the binaries are a ThreadSanitizer build (CI's threads pass), each thread's start and
# every synchronisation some 5-15 times slower.
tsan() { [ -n "${TSAN_OPTIONS:-}" ]; }
# sanitized: the binaries are a sanitizer build (ENABLE_SANITIZERS in $BUILD's CMake cache:
# ON, AddressSanitizer and UBSan; thread, ThreadSanitizer): slower, and with the checker's
# allocator and shadow memory in place of glibc's.
sanitized() {
    local s
    s=$(sed -n 's/^ENABLE_SANITIZERS:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
    [ -n "$s" ] && [ "$s" != OFF ]
}

# PY: the python3 for a test's own scripts, Debian's (/usr/bin/python3) where there is one:
# a version manager's shim first on PATH (pyenv's) takes a second to start it, and some
# tests start one for each JSON answer they read.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

# ---- Redis ----

RSOCK=$T/redis.sock
RPORT=
REDIS_ARGS=(--dir "$T/redis" --save "" --appendonly no --logfile "$T/redis/log"
            --unixsocket "$RSOCK" --unixsocketperm 700)

# launch_redis ARGS...: start redis-server with REDIS_ARGS and ARGS and wait until it answers
# on its socket (sets RPID). Returns 1 when its TCP port was taken: it then exits before it
# opens the socket, saying "Address already in use" in its log. Any other failure ends the
# test. With $CQ_TEST_REDIS_MODULE (the path of cq's Redis module: CTest's *_module tests),
# the server loads it. $REDIS_START_WAIT: the seconds it may take to answer (default 10; more
# for one loading a large AOF).
launch_redis() {
    local seen module=()
    [ -z "${CQ_TEST_REDIS_MODULE:-}" ] || module=(--loadmodule "$CQ_TEST_REDIS_MODULE")
    mkdir -p "$T/redis"
    seen=$(stat -c %s "$T/redis/log" 2>/dev/null || echo 0)   # the log of earlier tries
    redis-server "${REDIS_ARGS[@]}" "${module[@]}" "$@" &
    RPID=$!
    PIDS+=("$RPID")
    wait_for "${REDIS_START_WAIT:-10}" redis_answers_or_exited
    redis_answers && return 0
    if exited "$RPID"; then
        wait "$RPID" 2>/dev/null
        [[ $(tail -c +$((seen + 1)) "$T/redis/log") == *'Address already in use'* ]] && return 1
    fi
    echo "FATAL: redis-server did not start"
    cat "$T/redis/log"
    exit 1
}
redis_answers() { [ "$(redis-cli -s "$RSOCK" ping 2>/dev/null)" = PONG ]; }
redis_answers_or_exited() { redis_answers || exited "$RPID"; }

# start_redis [extra redis-server args...]: Redis on the Unix socket $T/redis.sock only;
# exports CQ_REDIS_URL=unix://$T/redis.sock.
start_redis() {
    launch_redis --port 0 "$@"
    export CQ_REDIS_URL=unix://$RSOCK
}

# start_redis_tcp [extra redis-server args...]: for the tests that need TCP (redis:// URLs,
# ACL users, a proxy in between, a restart at the same address): Redis on 127.0.0.1:RPORT as
# well as on the socket; exports CQ_REDIS_URL=redis://127.0.0.1:$RPORT. The port is drawn at
# random below Linux's ephemeral range (32768 and up, the local ports of outgoing
# connections); when it is taken, another is tried.
start_redis_tcp() {
    local try
    for try in $(seq 1 20); do
        RPORT=$(( 20000 + RANDOM % 12000 ))
        if launch_redis --port "$RPORT" --bind 127.0.0.1 "$@"; then
            export CQ_REDIS_URL=redis://127.0.0.1:$RPORT
            return 0
        fi
        echo "     (port $RPORT was taken; trying another)"
    done
    echo "FATAL: redis-server could not listen on any of 20 ports"
    cat "$T/redis/log"
    exit 1
}

# stop_redis: SHUTDOWN (which writes the AOF when it is on) and wait for the exit.
# start_redis_again [extra args...]: start it again at the same address and with the same
# data. The port cannot change under the workers' feet, so a port someone took meanwhile is
# waited for (a few seconds), not replaced.
stop_redis() {
    rcli shutdown >/dev/null 2>&1
    wait "$RPID" 2>/dev/null
}
start_redis_again() {
    local try tcp=(--port 0)
    [ -n "$RPORT" ] && tcp=(--port "$RPORT" --bind 127.0.0.1)
    for try in $(seq 1 10); do
        launch_redis "${tcp[@]}" "$@" && return 0
        sleep 0.5   # the port is someone else's for now: give it back a moment to be freed
    done
    echo "FATAL: redis-server did not restart"
    cat "$T/redis/log"
    exit 1
}

rcli() { redis-cli -s "$RSOCK" "$@"; }

# caught_up PRIMARY REPLICA: the replica has everything the primary wrote before it was asked:
# the primary's master_repl_offset read first, the replica's slave_repl_offset at least that.
# Each is a command that runs redis-cli on its server, as words ("rcli", "redis-cli -p 6380").
# Neither WAIT, which waits for the calling connection's own last write (a new redis-cli's:
# none), nor '=' of the two offsets, which fails when the workers write between the reads, says
# so.
caught_up() {
    local o
    o=$(repl_offset "$1" master_repl_offset)
    [ -n "$o" ] && [ "$(repl_offset "$2" slave_repl_offset)" -ge "$o" ]
}
# shellcheck disable=SC2086 # $1 is a command, as words
repl_offset() { $1 INFO replication | tr -d '\r' | sed -n "s/^$2:\([0-9]*\).*/\1/p"; }

# ---- servers of their own on fixed ports (Sentinel tests) ----
# A sentinel's configuration names its nodes by port, so these run on ports the test picks,
# not on lib.sh's socket. ours PORT PID: the server PID answers on PORT (its INFO says so).
ours() { redis-cli -p "$1" INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$2"; }
# port_up PORT PID: the server PID answers on PORT (0), or it exited or 10 s passed (1). A Redis
# with a password answers INFO with NOAUTH: its pid is then not checked, only that it lives.
port_up() {
    local i
    for i in $(seq 1 200); do
        ours "$1" "$2" && return 0
        redis-cli -p "$1" PING 2>/dev/null | grep -q NOAUTH && kill -0 "$2" 2>/dev/null &&
            return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
# serve_port VAR PROGRAM ARGS...: PROGRAM (redis-server or redis-sentinel) with ARGS on a port
# below Linux's ephemeral range, whose number goes to VAR; where that port is taken (the
# server exits, or another answers there), another is tried. "@PORT" in ARGS is the port.
serve_port() {
    local var=$1 port pid
    shift
    for _ in $(seq 1 20); do
        port=$(( 20000 + RANDOM % 12000 ))
        "${@//@PORT/$port}" &
        pid=$!
        if port_up "$port" "$pid"; then
            PIDS+=("$pid")
            printf -v "$var" %s "$port"
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    echo "FATAL: $1 did not start on any of 20 ports"
    exit 1
}
# node_dirs NAME: a server's --dir and --logfile, in $T/NAME.
node_dirs() { mkdir -p "$T/$1"; echo "--dir $T/$1 --logfile $T/$1/log"; }

# jfield ID [FIELD]: a field of a job's status hash (default: status).
jfield() { rcli HGET "cq:job:$1" "${2:-status}"; }

# jobs_are STATUS ID...: every job ID has status STATUS.
jobs_are() {
    local want=$1 id
    shift
    for id in "$@"; do [ "$(jfield "$id")" = "$want" ] || return 1; done
}

# jfields_of FIELD ID...: that field of each job's status hash, a line each in the order of
# the IDs (an empty line where there is none), read by one read-only script: jfield takes a
# redis-cli a job, seconds for a few hundred. For fields of one line (status, worker, ...).
jfields_of() {
    local field=$1 id keys=()
    shift
    [ $# -gt 0 ] || return 0
    for id in "$@"; do keys+=("cq:job:$id"); done
    rcli EVAL_RO "local out = {}
        for i, k in ipairs(KEYS) do out[i] = redis.call('HGET', k, ARGV[1]) or '' end
        return out" "${#keys[@]}" "${keys[@]}" "$field"
}
# statuses CLI ID...: a line a job, "cq:job:ID FIELD=VALUE... EXPIRY": its status hash's
# fields sorted (a newline in a value as \n) and its expiry in milliseconds (-1: none, -2: no
# such key), read through CLI (rcli, or a replica's) by one read-only script: for comparing
# the jobs of two servers (a replica's), where a process a job and a field took minutes.
statuses() {
    local cli=$1 id keys=()
    shift
    for id in "$@"; do keys+=("cq:job:$id"); done
    "$cli" EVAL_RO "local out = {}
        for _, k in ipairs(KEYS) do
            local h, f = redis.call('HGETALL', k), {}
            for i = 1, #h, 2 do f[#f + 1] = h[i] .. '=' .. h[i + 1]:gsub('\n', '\\\\n') end
            table.sort(f)
            out[#out + 1] = k .. ' ' .. table.concat(f, ' ') .. ' ' .. redis.call('PEXPIRETIME', k)
        end
        return out" "${#keys[@]}" "${keys[@]}"
}
# all_jobs_are STATUS ID...: jobs_are, in one script for them all.
all_jobs_are() {
    local want=$1 got
    shift
    got=$(jfields_of status "$@") || return 1
    [ "$(grep -cxF -- "$want" <<<"$got")" = $# ]
}
# jobs_lacking "FIELD..." ID...: a line "ID: no FIELD" for each FIELD missing or empty in
# a job's status hash, in one read-only script; returns 1 when it printed any (an error of
# Redis's, or none reached, is a line too).
jobs_lacking() {
    local fields=$1 id keys=() out
    shift
    [ $# -gt 0 ] || return 0
    for id in "$@"; do keys+=("cq:job:$id"); done
    # shellcheck disable=SC2086 # the fields, one a word
    out=$(rcli EVAL_RO "local out = {}
        for _, k in ipairs(KEYS) do
            for _, f in ipairs(ARGV) do
                if redis.call('HSTRLEN', k, f) == 0 then out[#out + 1] = k:sub(8) .. ': no ' .. f end
            end
        end
        return out" "${#keys[@]}" "${keys[@]}" $fields) || out="jobs_lacking: no answer from Redis"
    [ -z "$out" ] || { printf '%s\n' "$out"; return 1; }
}

# between LO X HI: LO <= X <= HI, X a decimal number (anything else fails).
between() {
    [[ $2 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] && awk -v lo="$1" -v x="$2" -v hi="$3" 'BEGIN { exit !(lo <= x && x <= hi) }'
}

workers_are() { [ "$(rcli SCARD cq:workers)" = "$1" ]; }
wid_of() { rcli SMEMBERS cq:workers | grep -E "\.$1\.[0-9a-f]{12}$" | head -1; }
registered_pid() { [ -n "$(wid_of "$1")" ]; }
WORKER_OPTS=()
start_worker() {
    local log=$1
    shift
    "$BIN/cworker" "${WORKER_OPTS[@]}" "$@" >"$log" 2>&1 &
    WPID=$!
    PIDS+=("$WPID")
}
# start_registered LOG ARGS...: start_worker, then wait until the worker has registered, up to
# REGISTER_WAIT seconds (10; more for a worker whose Redis is slow on purpose).
start_registered() {
    local n
    n=$(rcli SCARD cq:workers)
    start_worker "$@"
    wait_for "${REGISTER_WAIT:-10}" workers_are $((n + 1)) ||
        { echo "FATAL: worker did not register"; cat "$1"; exit 1; }
}

# watching N: N clients are blocked in Redis. A worker's watchers block (BLMOVE, one per
# queue) only while its dispatcher is idle, so this is how a test waits for idle workers.
watching() {
    local info
    info=$(rcli INFO clients) || return 1
    [[ $info =~ blocked_clients:([0-9]+) ]] && [ "${BASH_REMATCH[1]}" = "$1" ]
}

# exited PID: gone, or a zombie (an orphan's waits for PID 1, which may be slow to reap it).
exited() {
    ! kill -0 "$1" 2>/dev/null || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

# A job id as cq makes them (grep -E).
UUID='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

# catching PID SIGNUM: PID has set a handler for signal SIGNUM (SigCgt in /proc/PID/status).
# Before a test signals a program in the background: bash starts those with SIGINT ignored,
# so a SIGINT sent before the program's handler is set is lost, and the program goes on.
# Not under valgrind (wrapped): valgrind catches every signal itself, from its start.
catching() {
    local mask
    mask=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
    [ -n "$mask" ] && (((16#$mask >> ($2 - 1)) & 1))
}

# ---- HTTP fixtures ----

# start_httpd [httpd.py args...]: sets HPORT and HBASE (http://127.0.0.1:PORT).
start_httpd() {
    local pf="$T/httpd.port.$RANDOM"
    "$PY" "$SRC/tests/fixtures/httpd.py" --port-file "$pf" "$@" &
    PIDS+=("$!")
    wait_for 10 test -s "$pf" || { echo "FATAL: httpd.py did not start"; exit 1; }
    HPORT=$(cat "$pf")
    HBASE=http://127.0.0.1:$HPORT
}

# start_fake_imgur [fake_imgur.py args...]: the fake Imgur API; sets FPORT and API (the
# gallery base URL to give cproducer --api-url).
start_fake_imgur() {
    local pf="$T/fake.port.$RANDOM"
    "$PY" "$SRC/tests/fixtures/fake_imgur.py" --port-file "$pf" "$@" &
    PIDS+=("$!")
    wait_for 10 test -s "$pf" || { echo "FATAL: fake_imgur.py did not start"; exit 1; }
    FPORT=$(cat "$pf")
    API=http://127.0.0.1:$FPORT/3/gallery/
}

# hits KIND: fake Imgur API requests (total, gallery or album) since the last reset_hits,
# read from its /_/hits JSON ({"total": N, "gallery": G, "album": A, "paths": {...}}).
hits() {
    local json
    json=$(curl -fsS "http://127.0.0.1:$FPORT/_/hits") || return 1
    [[ $json =~ \"$1\":\ *([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}
reset_hits() { curl -fsS -o /dev/null "http://127.0.0.1:$FPORT/_/reset"; }

# count_generated SIZE FILE...: how many of the FILEs hold exactly the bytes httpd.py
# --generate --size SIZE serves for their name (a missing file does not count). One python3
# for them all, where `cmp FILE <(httpd.py --print-bytes NAME)` would start one a file.
count_generated() {
    "$PY" - "$SRC/tests/fixtures" "$@" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from httpd import generate_bytes
size, ok = int(sys.argv[2]), 0
for path in sys.argv[3:]:
    try:
        with open(path, "rb") as f:
            ok += f.read() == generate_bytes(os.path.basename(path), size)
    except OSError:
        pass
print(ok)
PY
}

# ---- checks ----

# wait_for SECONDS CMD [ARG...]: run CMD every 50 ms until it succeeds (return 0) or
# SECONDS have passed (return 1). Its output is discarded.
wait_for() {
    local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ $(( $(date +%s%N) / 1000000 )) -ge $deadline ] && return 1
        sleep 0.05
    done
}

# The checks count and print their outcome, and return 1 when they fail (so that a test can
# add `|| cat LOG`); a test does not stop at a failed check.

# check NAME CMD [ARG...]: passes when CMD succeeds. Its output is discarded.
check() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then
        PASSES=$((PASSES + 1)); echo "ok   - $name"
    else
        FAILS=$((FAILS + 1)); echo "FAIL - $name   ($*)"
        return 1
    fi
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then
        PASSES=$((PASSES + 1)); echo "ok   - $1"
    else
        FAILS=$((FAILS + 1)); echo "FAIL - $1: expected [$2], got [$3]"
        return 1
    fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
    case "$3" in
        *"$2"*) PASSES=$((PASSES + 1)); echo "ok   - $1" ;;
        *) FAILS=$((FAILS + 1)); echo "FAIL - $1: [$2] not in [$3]"; return 1 ;;
    esac
}

# run_for SECONDS CMD [ARG...]: run CMD for that long, then SIGTERM it (and only it) and wait
# for it. Not timeout(1): that signals its whole process group too, which under
# LeakSanitizer kills the tracer LSan starts at exit and leaves the program spinning.
run_for() {
    local secs=$1 pid
    shift
    "$@" &
    pid=$!
    sleep "$secs"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
}

finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
