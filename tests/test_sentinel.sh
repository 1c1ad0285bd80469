#!/usr/bin/env bash
# test_sentinel.sh - redis+sentinel:// through a failover: a primary, one replica and three
# redis-sentinel processes on 127.0.0.1; two workers and a producer run through the
# sentinels; the primary is SIGKILLed mid-run, twice. Workers and producer must go on against
# the promoted replica, and every job the primary knows of must end. What asynchronous
# replication can lose (jobs acknowledged by the old primary, never replicated) is counted
# and printed; with ?replicas=1 an enqueue succeeds only once the replica has its jobs, and
# no job of an enqueue that succeeded may be lost. (One that failed for want of a replica
# still printed the ids of the jobs it put in the primary: those a failover may lose.)
# The dead primary comes back as docs/OPERATIONS.md says: as a replica the sentinels may not
# promote (replica-priority 0) until it is in sync. They count a replica that has never
# synced as fit to promote, and this one is the only replica: should they take the primary
# for down meanwhile (a loaded machine is enough), they would promote it, empty, and every
# job in Redis would be lost. So the second run stalls the new primary (SIGSTOP) until the
# sentinels come to choose a replica to promote in its place.
. "$(dirname "$0")/lib.sh"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
answers() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }

mkdir -p "$T/p" "$T/r"
P1=$(free_port)
P2=$(free_port)
declare -A PID_OF   # port -> pid of the redis-server there
# node PORT DIR [ARGS...]: a redis-server on 127.0.0.1:PORT.
node() {
    local port=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly yes \
        --logfile "$dir/log" "$@" &
    PIDS+=("$!")
    PID_OF[$port]=$!
}
# The first two start a full sync at once (repl-diskless-sync-delay 0; the default waits 5 s
# for more replicas): the replica's first, and the old primary's once it is back as the first
# failover's replica. A node started later keeps the default: in the second failover it is
# the new primary, whose replica's sync must not start before the stall below.
node "$P1" "$T/p" --repl-diskless-sync-delay 0
node "$P2" "$T/r" --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$P1"
wait_for 10 answers "$P1" && wait_for 10 answers "$P2" ||
    { echo "FATAL: redis-server did not start"; exit 1; }
synced() { redis-cli -p "$1" INFO replication | grep -q "master_link_status:up"; }
wait_for 10 synced "$P2" || { echo "FATAL: the replica did not sync"; exit 1; }

SENTINELS=()
for i in 1 2 3; do
    port=$(free_port)
    cat >"$T/sentinel$i.conf" <<EOF
port $port
bind 127.0.0.1
dir $T
sentinel monitor cqtest 127.0.0.1 $P1 2
sentinel down-after-milliseconds cqtest 1000
sentinel failover-timeout cqtest 5000
sentinel parallel-syncs cqtest 1
EOF
    redis-sentinel "$T/sentinel$i.conf" --logfile "$T/sentinel$i.log" &
    PIDS+=("$!")
    SENTINELS+=("127.0.0.1:$port")
    wait_for 10 answers "$port" || { echo "FATAL: redis-sentinel did not start"; cat "$T/sentinel$i.log"; exit 1; }
done
S1=${SENTINELS[0]##*:}
sees_replica() { redis-cli -p "$S1" SENTINEL replicas cqtest | grep -q "$P2"; }
wait_for 15 sees_replica || { echo "FATAL: the sentinels do not see the replica"; exit 1; }
BASE="redis+sentinel://$(IFS=,; echo "${SENTINELS[*]}")/cqtest"
primary_port() { redis-cli -p "$S1" SENTINEL get-master-addr-by-name cqtest | tail -1; }
pcli() { redis-cli -p "$(primary_port)" "$@"; }

echo "# a master name the sentinels do not monitor: each one's answer, and the fix"
err=$("$BIN/cenqueue" -u "redis+sentinel://$(IFS=,; echo "${SENTINELS[*]}")/nosuch" noop 2>&1); rc=$?
check_eq "unknown master name: cenqueue exits 1" 1 "$rc"
check_eq "...with one line" 1 "$(printf '%s\n' "$err" | wc -l)"
check_contains "...naming each sentinel's answer" \
    "redis sentinels of nosuch: none gave its primary (127.0.0.1:$S1: knows no master of that name; " "$err"
check_contains "...and the fix" "check that the sentinels run and monitor nosuch" "$err"

echo "# workers and a producer through the sentinels"
"$BIN/cworker" -u "$BASE" -c 8 >"$T/w1.log" 2>&1 &
W1=$!
PIDS+=("$W1")
"$BIN/cworker" -u "$BASE" -c 8 >"$T/w2.log" 2>&1 &
W2=$!
PIDS+=("$W2")
wait_for 10 bash -c "[ \"\$(redis-cli -p $P1 SCARD cq:workers)\" = 2 ]" ||
    { echo "FATAL: the workers did not register"; cat "$T/w1.log"; exit 1; }

# produce URL BATCHES FILE: BATCHES batches of 100 short jobs, a batch every 0.1 s; the ids
# cenqueue printed (the jobs it put in) are appended to FILE, and those of the batches it
# said went in (exit status 0) to FILE.ok as well. A batch that fails (the primary is gone,
# or no replica confirmed it) is sent again until it goes in, for 120 s at most (then the
# producer fails).
produce() {
    local url=$1 n=$2 out=$3 b rc deadline=$((SECONDS + 120))
    for b in $(seq 1 "$n"); do
        while :; do
            seq 1 100 | sed 's/.*/sleep 10ms/' |
                "$BIN/cenqueue" -u "$url" --stdin >"$out.try" 2>>"$T/producer.log"
            rc=$?
            cat "$out.try" >>"$out"
            [ $rc = 0 ] && break
            [ $SECONDS -lt $deadline ] || return 1
            sleep 0.2
        done
        cat "$out.try" >>"$out.ok"
        sleep 0.1
    done
}
# ids_where FILE WHAT: how many ids in FILE the current primary has no status hash for
# (WHAT = lost), or a status other than finished (WHAT = open).
ids_where() {
    "$PY" - "$(primary_port)" "$1" "$2" <<'PY'
import subprocess, sys
port, path, what = sys.argv[1], sys.argv[2], sys.argv[3]
ids = [l.strip() for l in open(path) if l.strip()]
out = subprocess.run(["redis-cli", "-p", port], input="".join(
    f"HGET cq:job:{i} status\n" for i in ids), capture_output=True, text=True).stdout.split("\n")
out = out[:len(ids)]
print(sum(1 for s in out if s == "") if what == "lost" else sum(1 for s in out if s not in ("", "finished")))
PY
}
lost() { ids_where "$1" lost; }
all_ended_known() { [ "$(ids_where "$1" open)" = 0 ]; }

# in_sync PORT: the primary the sentinels name has the node on PORT as a replica in sync.
in_sync() { pcli INFO replication | grep -q "^slave[0-9]*:ip=127.0.0.1,port=$1,state=online"; }
# switches: how many times the first sentinel switched primaries.
switches() { grep -c "+switch-master" "$T/sentinel1.log"; }
# selections PORT: how many times the sentinels came to choose a replica to promote in place
# of the primary on PORT.
selections() { cat "$T"/sentinel?.log | grep -c "+failover-state-select-slave master cqtest 127.0.0.1 $1\$"; }
more_selections_than() { [ "$(selections "$1")" -gt "$2" ]; }

# run_failover URL IDS [stall]: produce through a SIGKILL of the current primary; the ids of
# the jobs the producer put in are in IDS, those of the enqueues that succeeded in IDS.ok.
# Sets LOST and LOST_OK, how many of each the primary does not know of at the end. With
# stall, the new primary stops (SIGSTOP) as soon as the old one is back, before it can
# sync, until the sentinels come to choose a replica for another failover 5 s or more
# after: by then they are in touch with the old node again and would promote it but for
# its priority. (Their first try usually comes within 2 s, and then finds no replica
# whatever the priorities, as measured; the next comes 10 s later, failover-timeout twice.)
run_failover() {
    local url=$1 ids=$2 stall=${3:-} t0 old new prod at sw sel
    : >"$ids"
    : >"$ids.ok"
    sw=$(switches)
    produce "$url" 40 "$ids" &
    prod=$!
    sleep 1.5
    old=$(primary_port)
    t0=$(date +%s%N)
    kill -9 "${PID_OF[$old]}"
    check "the sentinels promote the replica" wait_for 30 bash -c \
        "[ \"\$(redis-cli -p $S1 SENTINEL get-master-addr-by-name cqtest | tail -1)\" != $old ]"
    echo "# measured: primary SIGKILLed -> sentinels name the new one: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    at=$(pcli HGET cq:stats processed)
    check "jobs finish on the new primary" wait_for 30 bash -c \
        "[ \"\$(redis-cli -p $(primary_port) HGET cq:stats processed)\" -gt ${at:-0} ]"
    echo "# measured: primary SIGKILLed -> jobs finishing on the new primary: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    # The operator's part: the dead node comes back, as a replica of the new primary (with
    # ?replicas=1 enqueues wait for one; the sentinels would also reconfigure it), and may be
    # promoted once it is in sync.
    wait "${PID_OF[$old]}" 2>/dev/null
    node "$old" "$T/n$old.$RANDOM" --replicaof 127.0.0.1 "$(primary_port)" \
        --replica-priority 0
    if [ -n "$stall" ]; then
        new=$(primary_port)
        t0=$(date +%s%N)
        kill -STOP "${PID_OF[$new]}"
        sleep 5
        sel=$(selections "$new")
        check "the sentinels, the new primary stalled, come to choose a replica" \
            wait_for 60 more_selections_than "$new" "$sel"
        sleep 1
        kill -CONT "${PID_OF[$new]}"
        echo "# measured: the new primary stalled for $(( ($(date +%s%N) - t0) / 1000000 )) ms"
        # The stall is over: the sync goes at once, not up to 5 s later (the producer, with
        # ?replicas=1, waits for it).
        redis-cli -p "$new" CONFIG SET repl-diskless-sync-delay 0 >/dev/null
    fi
    check "the old primary comes back as a replica in sync with the new one" \
        wait_for 30 in_sync "$old"
    check_eq "no failover promoted it before it was in sync" 1 $(( $(switches) - sw ))
    check_eq "it may be promoted now" OK "$(redis-cli -p "$old" CONFIG SET replica-priority 100)"
    wait "$prod"
    check_eq "the producer got through" 0 "$?"
    check "every job the primary knows of finishes" wait_for 60 all_ended_known "$ids"
    LOST=$(lost "$ids")
    LOST_OK=$(lost "$ids.ok")
    echo "# measured: $LOST of the $(wc -l <"$ids") jobs the producer put in are lost;" \
        "$LOST_OK of the $(wc -l <"$ids.ok") of the enqueues that succeeded"
}

echo "# a failover without ?replicas"
run_failover "$BASE" "$T/ids1"
check "the workers say they lost the primary and found the new one" \
    grep -q "redis is back" "$T/w1.log"

echo "# a failover with ?replicas=1, the new primary stalled before the old one syncs"
kill -TERM "$W1" "$W2"
wait "$W1" "$W2"
"$BIN/cworker" -u "$BASE?replicas=1" -c 8 >"$T/w3.log" 2>&1 &
PIDS+=("$!")
"$BIN/cworker" -u "$BASE?replicas=1" -c 8 >"$T/w4.log" 2>&1 &
PIDS+=("$!")
run_failover "$BASE?replicas=1" "$T/ids2" stall
check_eq "with ?replicas=1 no job of an enqueue that succeeded is lost" 0 "$LOST_OK"

finish
