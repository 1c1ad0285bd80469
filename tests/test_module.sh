#!/usr/bin/env bash
# test_module.sh - cq's Redis module (module/cqmodule.c) in a deployment. What CQ.APPLY1 does
# reaches a replica that has no module and the AOF as ordinary commands, so that neither a
# replica nor a restart needs the module: the replica ends up with the primary's statuses,
# counters and expiries, and a primary restarted without the module from its AOF has them
# too. An ACL that takes the module's commands away, or a module unloaded (MODULE UNLOAD),
# under a running worker: its next takes and outcomes go as the scripts, the worker says why
# once, and no job is lost or counted twice. A worker that reconnects while Redis loads its
# data (its question answered LOADING) is back on the module once Redis has loaded, and so is
# one whose question got LOADING but whose registration went in after it. A bulk
# enqueue's status hashes (CQ.ENQUEUE1: a run's first, then COPYs of it) come back from the
# AOF without the module.
. "$(dirname "$0")/lib.sh"

MODULE=$BUILD/lib/cq-redis.so
[ -f "$MODULE" ] || { echo "FATAL: $MODULE is missing: cmake --build $BUILD --target cq_redis"; exit 1; }
# No 5 s wait for more replicas before a full sync's transfer (the default delay).
start_redis_tcp --appendonly yes --enable-module-command local --loadmodule "$MODULE" \
    --repl-diskless-sync-delay 0
check_contains "the primary loaded cq's module" "cq" "$(rcli MODULE LIST | paste -sd' ')"

# A replica without the module, on its own socket.
RS=$T/replica/redis.sock
mkdir -p "$T/replica"
redis-server --dir "$T/replica" --save "" --appendonly no --port 0 --unixsocket "$RS" \
    --unixsocketperm 700 --logfile "$T/replica/log" --replicaof 127.0.0.1 "$RPORT" &
REPLICA_PID=$!
PIDS+=("$REPLICA_PID")
replica() { redis-cli -s "$RS" "$@"; }
in_sync() { [ "$(replica INFO replication | tr -d '\r' | sed -n 's/^master_link_status://p')" = up ]; }
wait_for 10 in_sync || { echo "FATAL: the replica did not sync"; cat "$T/replica/log"; exit 1; }

cat >"$T/bad.sh" <<'EOF'
#!/bin/sh
echo "always bad" >&2
exit 3
EOF
chmod +x "$T/bad.sh"

# ---- a drain through the module, seen by the replica ----
ok=() bad=()
for i in $(seq 1 40); do ok+=("$("$BIN/cenqueue" noop "$i" 2>/dev/null)"); done
for i in $(seq 1 5); do bad+=("$("$BIN/cenqueue" --no-check bad "$i" 2>/dev/null)"); done
"$BIN/cworker" --burst --command "bad=$T/bad.sh" >"$T/w1.log" 2>&1
check_eq "cworker --burst: exit 0" 0 "$?"
check_contains "...its outcomes through the module" "outcomes through cq's Redis module" "$(cat "$T/w1.log")"
check "40 jobs finished, 5 failed" all_jobs_are finished "${ok[@]}"
check "...the 5" all_jobs_are failed "${bad[@]}"
# (caught_up, lib.sh: a new redis-cli's WAIT returns at once, having written nothing itself)
check "the replica has caught up with the writes" wait_for 10 caught_up rcli replica
# same_statuses ID...: each status hash the same on the replica, to its expiry's millisecond,
# where each has a status and expires on the primary (not the same error twice)
same_statuses() {
    local want
    want=$(statuses rcli "$@")
    [ "$(grep -cE '(^| )status=[a-z]+( .*)? [1-9][0-9]*$' <<<"$want")" = $# ] ||
        { echo "the primary's statuses: $want" >&2; return 1; }
    diff <(echo "$want") <(statuses replica "$@") >&2
}
check "the replica has every status hash as the primary, with its expiry" same_statuses "${ok[@]}" "${bad[@]}"
check_eq "...the same counters" "$(rcli HGETALL cq:stats | paste -sd' ')" "$(replica HGETALL cq:stats | paste -sd' ')"
check_eq "...the same failed set" "$(rcli ZRANGE cq:failed 0 -1 | sort | paste -sd' ')" \
    "$(replica ZRANGE cq:failed 0 -1 | sort | paste -sd' ')"
check_eq "...as many keys" "$(rcli DBSIZE)" "$(replica DBSIZE)"
check_eq "the replica's log has no error" "" "$(grep -i 'error\|unknown command' "$T/replica/log")"

# ---- the AOF off: a replica, and one away, still get every write ----
# The module writes a finished job's status hash and expiry without commands, and hands them
# to replication only when something would receive them (module/cqmodule.c, propagating):
# the AOF, a replica, or the backlog kept for a replica that comes back.
rcli CONFIG SET appendonly no >/dev/null
rcli CONFIG SET notify-keyspace-events Khg >/dev/null
# (one cenqueue --stdin for the 30, not a process a job)
mapfile -t n < <(seq 1 30 | sed 's/^/noop n/' | "$BIN/cenqueue" --stdin 2>/dev/null)
check_eq "with the AOF off, 30 jobs enqueued" 30 "$(printf '%s\n' "${n[@]}" | grep -c .)"
chan="__keyspace@0__:cq:job:${n[29]}"
redis-cli -s "$RSOCK" --csv SUBSCRIBE "$chan" >"$T/events" 2>&1 &
SUBPID=$!
subscribed() { [ "$(rcli PUBSUB NUMSUB "$chan" | tail -1)" = 1 ]; }
wait_for 30 subscribed
"$BIN/cworker" --burst >"$T/w4.log" 2>&1
check "with the AOF off, 30 more jobs finished" all_jobs_are finished "${n[@]}"
expired() { grep -q '^"message",.*,"expire"$' "$T/events"; }
wait_for 30 expired
kill "$SUBPID"; wait "$SUBPID" 2>/dev/null
# (A job the machine's load held up 20 ms has its start marked: one more hset before.)
check_eq "...a job's keyspace events: its hset, then its expire" \
    '"message","__keyspace@0__:cq:job:'"${n[29]}"'","hset" "message","__keyspace@0__:cq:job:'"${n[29]}"'","expire"' \
    "$(grep '^"message' "$T/events" | uniq | paste -sd' ')"
rcli CONFIG SET notify-keyspace-events "" >/dev/null
check "...the replica has caught up with the writes" wait_for 10 caught_up rcli replica
check "...and has their status hashes and expiries" same_statuses "${n[@]}"
repl() { rcli INFO replication | tr -d '\r' | sed -n "s/^$1://p"; }
kill -STOP "$REPLICA_PID"
rcli CLIENT KILL TYPE replica >/dev/null
away() { [ "$(repl connected_slaves)" = 0 ]; }
wait_for 10 away || echo "the replica is still connected"
check_eq "a replica gone: none connected, the backlog kept" "0 1" \
    "$(repl connected_slaves) $(repl repl_backlog_active)"
# (one cenqueue --stdin for the 30, not a process a job)
mapfile -t m < <(seq 1 30 | sed 's/^/noop m/' | "$BIN/cenqueue" --stdin 2>/dev/null)
check_eq "30 jobs enqueued with the replica away" 30 "$(printf '%s\n' "${m[@]}" | grep -c .)"
"$BIN/cworker" --burst >"$T/w5.log" 2>&1
check "...30 jobs finished meanwhile" all_jobs_are finished "${m[@]}"
kill -CONT "$REPLICA_PID"
check "...the replica is back" wait_for 15 in_sync
check_contains "...by a partial resync, from the backlog" "Partial resynchronization request" \
    "$(grep -h 'Partial resynchronization request.*accepted' "$T/redis/log")"
check "...it has caught up with the writes" wait_for 10 caught_up rcli replica
check "...and has their status hashes and expiries" same_statuses "${m[@]}"
rcli CONFIG SET appendonly yes >/dev/null
aof_on() {
    rcli INFO persistence | tr -d '\r' | grep -q '^aof_rewrite_in_progress:0' &&
        rcli INFO persistence | tr -d '\r' | grep -q '^aof_rewrite_scheduled:0' &&
        rcli INFO persistence | tr -d '\r' | grep -q '^aof_enabled:1'
}
check "the AOF on again" wait_for 15 aof_on

stop_worker() { kill -TERM "$1"; wait "$1"; }

# ---- an ACL that stops allowing the module under a running worker ----
rcli ACL SETUSER wm on '>pw' '~*' '&*' +@all >/dev/null
start_registered "$T/w3.log" -u "redis://wm:pw@127.0.0.1:$RPORT" acl
W3=$WPID
c=$("$BIN/cenqueue" -q acl noop c 2>/dev/null)
check "a worker as an ACL user with every right ends a job" wait_for 10 jobs_are finished "$c"
check_contains "...through the module" "takes and outcomes through cq's Redis module" "$(cat "$T/w3.log")"
rcli ACL SETUSER wm -cq.apply1 -cq.take1 >/dev/null
d=()
for i in $(seq 1 10); do d+=("$("$BIN/cenqueue" -q acl noop "d$i" 2>/dev/null)"); done
check "once the ACL takes the module's commands away, the next 10 end (as the scripts)" \
    wait_for 15 all_jobs_are finished "${d[@]}"
check_contains "...and the worker said why" "this ACL user may no longer run cq's Redis module" \
    "$(cat "$T/w3.log")"
stop_worker "$W3"
check_eq "the worker stops cleanly" 0 "$?"

# ---- MODULE UNLOAD under a running worker ----
start_registered "$T/w2.log" unl
a=$("$BIN/cenqueue" -q unl noop a)
check "a job ends through the module" wait_for 10 jobs_are finished "$a"
check_eq "MODULE UNLOAD cq" OK "$(rcli MODULE UNLOAD cq)"
b=()
for i in $(seq 1 20); do b+=("$("$BIN/cenqueue" -q unl noop "b$i")"); done
check "the next 20 end all the same (as the script)" wait_for 15 all_jobs_are finished "${b[@]}"
check_eq "...each counted once" 132 "$(rcli HGET cq:stats processed)"
check_contains "...and the worker said why, once" "cq's Redis module is gone from this Redis" \
    "$(cat "$T/w2.log")"
check_eq "...once" 1 "$(grep -c "cq's Redis module is gone" "$T/w2.log")"
check_eq "...nothing left in flight" "" "$(rcli KEYS 'cq:inflight:*' | while read -r k; do rcli LLEN "$k"; done | grep -v '^0$')"
stop_worker "$WPID"
check_eq "the worker stops cleanly" 0 "$?"

# ---- a worker that reconnects while Redis loads its data ----
# Its module question gets LOADING, which is neither a yes nor a no, and so does its
# registration: it closes that connection, connects again later and asks again, so that once
# Redis has loaded, its takes and outcomes go through the module again, not the scripts.
start_registered "$T/w4.log" load
x=$("$BIN/cenqueue" -q load noop x)
check "a job ends through the module" wait_for 10 jobs_are finished "$x"
# 30,000 keys more, each loaded 300 us late (key-load-delay): Redis loads for 9 s or more,
# unless told otherwise; once the worker has met it loading, it is (CONFIG SET answers
# while Redis loads).
rcli EVAL "for i = 1, 30000 do redis.call('SET', 'pad:' .. i, i) end" 0 >/dev/null
stop_redis
redis-server "${REDIS_ARGS[@]}" --port "$RPORT" --bind 127.0.0.1 --appendonly yes \
    --enable-module-command local --loadmodule "$MODULE" --key-load-delay 300 &
RPID=$!
PIDS+=("$RPID")
loading() { [[ $(redis-cli -s "$RSOCK" PING 2>&1) == *LOADING* ]]; }
wait_for 10 loading || { echo "FATAL: redis-server did not start loading"; cat "$T/redis/log"; exit 1; }
check "the worker connects while Redis is loading" wait_for 15 grep -q LOADING "$T/w4.log"
rcli CONFIG SET key-load-delay 0 >/dev/null
wait_for 30 redis_answers || { echo "FATAL: redis-server did not load"; cat "$T/redis/log"; exit 1; }
check "...and is back once it has loaded" wait_for 15 grep -q 'redis is back' "$T/w4.log"
y=()
for i in $(seq 1 20); do y+=("$("$BIN/cenqueue" -q load noop "y$i")"); done
check "20 jobs end" wait_for 10 all_jobs_are finished "${y[@]}"
# What the worker calls since the restart: the module's take and apply (the scripts only for
# what the module has no command for, such as recovery).
calls() { rcli INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\).*/\1/p"; }
check "...taken through the module (CQ.TAKE1)" test "$(calls cq.take1)" -gt 0
check "...and ended through it (CQ.APPLY1)" test "$(calls cq.apply1)" -gt 0
rcli EVAL "for i = 1, 30000 do redis.call('DEL', 'pad:' .. i) end" 0 >/dev/null
stop_worker "$WPID"
check_eq "the worker stops cleanly" 0 "$?"

# ---- its module question answered LOADING, and Redis loaded by its registration ----
# The window above, made certain: tests/fixtures/answerproxy.py answers the worker's first
# question (CQ.APPLY1 alone) with LOADING, as a Redis that finishes loading just after it
# would, and the registration that follows goes in. The worker asks again once registered,
# and takes and ends its jobs through the module, not as the scripts for the connection's life.
"$PY" "$SRC/tests/fixtures/answerproxy.py" --to "$RSOCK" --port-file "$T/ans.port" \
    --command CQ.APPLY1 --reply "-LOADING Redis is loading the dataset in memory" \
    --arm "$T/ans.arm" 2>"$T/ans.log" &
PIDS+=("$!")
wait_for 10 test -s "$T/ans.port" || { echo "FATAL: answerproxy.py did not start"; exit 1; }
touch "$T/ans.arm"
rcli CONFIG RESETSTAT >/dev/null
start_registered "$T/w6.log" -u "redis://127.0.0.1:$(cat "$T/ans.port")" settle
check_contains "the worker's module question was answered LOADING" "answered CQ.APPLY1" "$(cat "$T/ans.log")"
check_contains "...and it says it runs on the module all the same" \
    "takes and outcomes through cq's Redis module" "$(cat "$T/w6.log")"
s=()
for i in $(seq 1 5); do s+=("$("$BIN/cenqueue" -q settle noop "s$i")"); done
check "...its 5 jobs end" wait_for 10 all_jobs_are finished "${s[@]}"
check "...taken through the module (CQ.TAKE1)" test "$(calls cq.take1)" -gt 0
check "...and ended through it (CQ.APPLY1)" test "$(calls cq.apply1)" -gt 0
stop_worker "$WPID"
check_eq "the worker stops cleanly" 0 "$?"

# ---- a bulk enqueue, then a restart from the AOF, without the module ----
# CQ.ENQUEUE1 makes a run's first status hash and copies it for the others (COPY): the AOF
# has the first one's HSET and the COPYs, which a Redis without the module replays.
seq 1 300 | sed 's/^/noop /' | "$BIN/cenqueue" -q bulkaof --stdin >"$T/bulkaof.ids" 2>/dev/null
mapfile -t e <"$T/bulkaof.ids"
check_eq "300 jobs enqueued at once, no worker running" 300 "${#e[@]}"
check_eq "...through CQ.ENQUEUE1, their status hashes all but the first copied" 299 "$(calls copy)"
first=$(statuses rcli "${e[0]}" | cut -d" " -f2-) # without the key
check_contains "...queued" "status=queued" "$first"
# in the AOF as commands (not only as data, after a rewrite): a line COPY each
check_eq "...written to the AOF as COPYs" 299 "$(cat "$T"/redis/appendonlydir/*.incr.aof | tr -d '\r' | grep -c -x COPY)"
stop_redis
start_redis_again --appendonly yes
check_eq "Redis restarted without the module" "" "$(rcli MODULE LIST)"
check_eq "...its AOF gave back the counters" "158 5" "$(rcli HGET cq:stats processed) $(rcli HGET cq:stats failed)"
check "...and the statuses" all_jobs_are finished "${ok[@]}" "${n[@]}" "${m[@]}" "$c" "$a" "${b[@]}" "${d[@]}" "${s[@]}"
check_eq "...and the failed set" 5 "$(rcli ZCARD cq:failed)"
same_as_first() {
    local got
    got=$(statuses rcli "$@" | cut -d" " -f2-)
    [ "$(grep -cxF -- "$first" <<<"$got")" = $# ] || { grep -vxF -- "$first" <<<"$got" | head -3 >&2; return 1; }
}
check "...and the bulk enqueue's 300 status hashes, the same as before" same_as_first "${e[@]}"
check_eq "...and its queue" 300 "$(rcli LLEN cq:queue:bulkaof)"

finish
