#!/usr/bin/env bash
# test_module_repl.sh - when cq's Redis module hands its writes to replication. It writes a
# finished job's status hash without commands, and passes those writes on only while
# something would receive them: the AOF, a replica, or a replication backlog. What it found
# (INFO replication) is kept between its calls, and forgotten when a replica attaches (its
# SYNC or PSYNC, seen by the module's command filter) and when the server's role changes
# (REPLICAOF, FAILOVER). Both after calls that found nothing:
#   - a replica that attaches to a primary that had none gets the jobs finished after it;
#   - a replica promoted to primary feeds its backlog at once, so that another replica of the
#     old primary that moves to it (a partial resync, from that backlog) gets them too.
# Also: a bulk enqueue through the module (CQ.ENQUEUE1: a run's first status hash without a
# command, the others as COPYs of it) reaches a replica; where SUBSCRIBE is renamed, the
# module logs that it keeps nothing (the line is checked, not what it keeps).
. "$(dirname "$0")/lib.sh"

MODULE=$BUILD/lib/cq-redis.so
[ -f "$MODULE" ] || { echo "FATAL: $MODULE is missing: cmake --build $BUILD --target cq_redis"; exit 1; }
# No 5 s wait for more replicas before a full sync's transfer (the default delay).
start_redis_tcp --appendonly no --loadmodule "$MODULE" --repl-diskless-sync-delay 0
P=$RPORT
# No PING to the replicas between a promotion and a move below: it would put the moving
# replica past the promoted one's history, and its partial resync would be refused.
rcli CONFIG SET repl-ping-replica-period 3600 >/dev/null || echo "CONFIG SET failed"

# info CLI FIELD: a field of CLI's INFO replication
info() { "$1" INFO replication | tr -d '\r' | sed -n "s/^$2://p"; }
# same_statuses CLI ID...: each status hash on CLI the same as on the primary rcli, where
# each has a status and an expiry (-1, none, for a queued job): not the same error twice
same_statuses() {
    local cli=$1 want
    shift
    want=$(statuses rcli "$@")
    [ "$(grep -cE '^cq:job:[^ ]+ .*status=[a-z]+( .*)? (-1|[0-9]+)$' <<<"$want")" = $# ] ||
        { echo "the primary's statuses: $want" >&2; return 1; }
    diff <(echo "$want") <(statuses "$cli" "$@") >&2
}
# jobs_are_on CLI STATUS ID...: every job ID has that status there
jobs_are_on() {
    local cli=$1 want=$2 id
    shift 2
    for id in "$@"; do [ "$("$cli" HGET "cq:job:$id" status)" = "$want" ] || return 1; done
}
# drain URL N PREFIX: N noop jobs enqueued and drained there; their ids in IDS
drain() {
    local i
    IDS=()
    for i in $(seq 1 "$2"); do IDS+=("$("$BIN/cenqueue" -u "$1" noop "$3$i" 2>/dev/null)"); done
    "$BIN/cworker" -u "$1" --burst >>"$T/worker.log" 2>&1
}

# That Redis answers, and is the one started (not another test's on the same port).
other_up() { [ "$("$OTHER" INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$OTHER_PID" ]; }
other_up_or_exited() { other_up || exited "$OTHER_PID"; }
# start_other NAME [ARGS...]: a Redis of its own, in $T/NAME, on a port drawn as
# start_redis_tcp draws its own (another is tried when the port is taken); NAME becomes a
# redis-cli of it, and ${NAME}_PORT its port.
start_other() {
    local name=$1 port try pid
    shift
    mkdir -p "$T/$name"
    for try in $(seq 1 20); do
        port=$(( 20000 + RANDOM % 12000 ))
        redis-server --dir "$T/$name" --save "" --appendonly no --port "$port" --bind 127.0.0.1 \
            --logfile "$T/$name/log" "$@" &
        pid=$!
        eval "$name() { redis-cli -p $port \"\$@\"; }"
        OTHER=$name OTHER_PID=$pid
        wait_for 10 other_up_or_exited
        if other_up; then
            PIDS+=("$pid")
            printf -v "${name}_PORT" %s "$port"
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        grep -q 'Address already in use' "$T/$name/log" || break
    done
    echo "FATAL: the Redis $name did not start"
    cat "$T/$name/log"
    exit 1
}

# ---- a replica that attaches after the module found none ----
check_eq "the primary: no replica, no backlog" "0 0" "$(info rcli connected_slaves) $(info rcli repl_backlog_active)"
drain "$CQ_REDIS_URL" 20 a
check "20 jobs finished with nothing to replicate to" jobs_are finished "${IDS[@]}"
check_contains "...their outcomes through the module" "outcomes through cq's Redis module" \
    "$(cat "$T/worker.log")"
start_other r1 --replicaof 127.0.0.1 "$P"
r1_synced() { [ "$(info r1 master_link_status)" = up ]; }
check "a replica attached, and synced" wait_for 15 r1_synced
drain "$CQ_REDIS_URL" 20 b
check "20 more jobs finished" jobs_are finished "${IDS[@]}"
check_eq "...the replica confirms the writes (WAIT)" 1 "$(rcli WAIT 1 5000)"
check "...and has caught up with the primary (its offset)" wait_for 10 caught_up rcli r1
check "...and has their status hashes, to their expiry's millisecond" same_statuses r1 "${IDS[@]}"
b=("${IDS[@]}")
# A bulk enqueue (any call whose ids cenqueue makes) goes through CQ.ENQUEUE1, which writes a run's
# first status hash without an HSET command and copies it for the others (COPY): the replica
# gets them too.
rcli CONFIG RESETSTAT >/dev/null
seq 1 300 | sed 's/^/noop /' | "$BIN/cenqueue" -u "$CQ_REDIS_URL" -q bulk --stdin >"$T/bulk.ids" 2>/dev/null
mapfile -t e <"$T/bulk.ids"
check_eq "300 jobs enqueued at once" 300 "${#e[@]}"
check_eq "...through CQ.ENQUEUE1 (the question, then one call)" 2 \
    "$(rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_cq.enqueue1:calls=\([0-9]*\),.*/\1/p')"
check_eq "...the replica confirms the writes (WAIT)" 1 "$(rcli WAIT 1 5000)"
check "...and has caught up with the primary (its offset)" wait_for 10 caught_up rcli r1
check "...and has their status hashes" same_statuses r1 "${e[@]}"
check_eq "...and the queue, in order" "$(rcli LRANGE cq:queue:bulk 0 -1 | md5sum)" \
    "$(r1 LRANGE cq:queue:bulk 0 -1 | md5sum)"

# ---- a replica promoted to primary, after the module found nothing there as a primary ----
start_other p2 --loadmodule "$MODULE"
P2=$p2_PORT
drain "redis://127.0.0.1:$P2" 5 c
check "a second primary: 5 jobs finished there, with nothing to replicate to" \
    jobs_are_on p2 finished "${IDS[@]}"
p2 REPLICAOF 127.0.0.1 "$P" >/dev/null
p2_synced() { [ "$(info p2 master_link_status)" = up ]; }
check "...it became a replica of the first, and synced" wait_for 15 p2_synced
# Both replicas at the primary's offset (not WAIT: its REPLCONF GETACK is itself in the
# stream, and the promotion could come before one replica has read it).
level() { caught_up rcli r1 && caught_up rcli p2; }
check "...both replicas where the first primary is" wait_for 10 level
p2 REPLICAOF NO ONE >/dev/null
check_eq "...promoted: a primary again, its backlog kept" "master 1" "$(info p2 role) $(info p2 repl_backlog_active)"
drain "redis://127.0.0.1:$P2" 20 d
d=("${IDS[@]}")
r1 REPLICAOF 127.0.0.1 "$P2" >/dev/null
check "the first replica moved to the promoted one" wait_for 15 r1_synced
check_contains "...by a partial resync, from its backlog" "accepted" \
    "$(grep -h 'Partial resynchronization request' "$T/p2/log")" || grep -h 'Partial' "$T/p2/log"
check_eq "...it confirms the writes" 1 "$(redis-cli -p "$P2" WAIT 1 5000)"
check "...and has caught up with it (its offset)" wait_for 10 caught_up p2 r1
rcli() { redis-cli -p "$P2" "$@"; }
check "...and has the status hashes of the jobs finished after the promotion" same_statuses r1 "${d[@]}"
check "...and those finished before it" same_statuses r1 "${b[@]}"

# ---- SUBSCRIBE renamed: the filter would not know it, so nothing is kept ----
# (What that prevents, a subscriber through the new name missed, needs an apply of 9 ends or
# more between its SUBSCRIBE and the job's end with no EXEC anywhere, which a drain by a
# worker does not produce on demand: its first applies after a lull carry an end or two.)
start_other p3 --rename-command SUBSCRIBE listen --loadmodule "$MODULE"
check_contains "a Redis whose SUBSCRIBE is renamed: the module says it keeps nothing" \
    "SUBSCRIBE, PSUBSCRIBE or EXEC is renamed" "$(cat "$T/p3/log")"
check_eq "...where nothing is renamed, it says nothing" "" "$(grep -h 'is renamed' "$T/redis/log" "$T/p2/log")"
finish
