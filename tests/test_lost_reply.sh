#!/usr/bin/env bash
# test_lost_reply.sh - Redis runs a worker's command and the connection drops before the
# reply arrives (tests/fixtures/cutproxy.py): a lost take is reconciled (the job runs, it is
# not left in the live worker's in-flight list), and a re-sent outcome is not applied twice.
# A take that Redis answers with an error, the connection up, leaves the outcomes applied
# ahead of it in its round trip recorded: they are not sent again; so does a WAIT (?replicas)
# whose reply is lost behind the apply's.
# Also: after an outage the worker puts back records of its in-flight lists it does not hold
# (a failover's new primary behind the old one); a retried hand-made record keeps its queue;
# a scheduled record for a queue key of another type stays scheduled instead of vanishing.
# Redis listens on its socket only; the proxy takes TCP connections on a port it binds itself
# and passes them on to that socket.
. "$(dirname "$0")/lib.sh"

start_redis
start_proxy() {  # start_proxy MARKER [ARG...]: sets PURL (the worker's URL through the proxy)
    local pf="$T/proxy.port.$RANDOM" marker=$1
    shift
    "$PY" "$SRC/tests/fixtures/cutproxy.py" --to "$RSOCK" --port-file "$pf" \
        --marker "$marker" --arm "$T/arm" "$@" 2>>"$T/proxy.log" &
    PIDS+=("$!")
    wait_for 10 test -s "$pf" || { echo "FATAL: cutproxy.py did not start"; exit 1; }
    PURL=redis://127.0.0.1:$(cat "$pf")
}

# registered_worker LOG ARGS...: a cworker with ARGS, its output to LOG, registered; sets W.
registered_worker() {
    local log=$1
    shift
    "$BIN/cworker" "$@" >"$log" 2>&1 &
    W=$!
    PIDS+=("$W")
    wait_for 30 registered_pid "$W" || { echo "FATAL: worker did not register"; cat "$log"; exit 1; }
}

# armed_worker MARKER LOG: a cworker talking to Redis through the proxy, registered and idle
# (its watcher blocked: the commands of its start are behind it), and the proxy armed to cut
# the reply to the next command containing MARKER; sets W.
armed_worker() {
    start_proxy "$1"
    registered_worker "$2" -u "$PURL"
    wait_for 30 watching 1
    touch "$T/arm"
}

# ---- the take ran, its reply was lost ----
# The take is the worker's only command that names cq:paused (its script's body, where RPOP
# is, goes once a connection: later calls are EVALSHA).
armed_worker cq:paused "$T/w1.log"
rcli LPUSH cq:queue:default '{"id":"lost-take","func":"noop","args":[]}' >/dev/null
check "a job whose take reply was lost still runs" wait_for 30 jobs_are finished lost-take
check "the cut happened" grep -q 'cut a connection' "$T/proxy.log"
check_contains "the worker says it put the job back" "put back 1 job that this worker's in-flight lists held and it did not (taken when a reply from redis was lost" "$(cat "$T/w1.log")"
check_eq "nothing left in flight" 0 "$(for k in $(rcli --scan --pattern 'cq:inflight:*'); do rcli LLEN "$k"; done | awk '{s+=$1} END {print s+0}')"
kill -TERM "$W"; wait "$W"

# ---- an outcome was recorded, its reply lost, and it is sent again ----
armed_worker cq:dead "$T/w2.log"
rcli LPUSH cq:queue:default 'not json at all' >/dev/null
# The outcome is sent again after the reconnect, and nothing in Redis marks that it was; but
# it goes ahead of the outcome of anything the worker takes later, on the same connection:
# once a job pushed behind it has finished, it has been through Redis.
check "the worker reconnects" wait_for 30 grep -q 'redis is back' "$T/w2.log"
rcli LPUSH cq:queue:default '{"id":"after-dead","func":"noop","args":[]}' >/dev/null
check "...and a job pushed after the cut finishes" wait_for 30 jobs_are finished after-dead
check_contains "...the worker says the record was moved already (before: no line)" \
    "default: a record that is no job: not moved to the dead list again: it was no longer in this worker's hands" \
    "$(cat "$T/w2.log")"
check_eq "a re-sent outcome is recorded once (dead list)" 1 "$(rcli LLEN cq:dead)"
check_eq "...and counted once" 1 "$(rcli HGET cq:stats dead)"
kill -TERM "$W"; wait "$W"

# ---- the take fails with the connection up, the apply ahead of it went through ----
# A round trip carries the outcomes of the jobs that ended and, pipelined behind them, a take
# for the slots they free (worker.c, trip_send). Here Redis answers the take with an error
# while the apply ran: the paused set is a string, which the take reads first (SISMEMBER,
# before anything moves: the script and CQ.TAKE1 alike) and the apply does not. The worker
# (-c 1) holds a gate job (a script that waits for a file) in its one slot when the key is
# broken, and the job's end goes with the take for the slot it frees. Its outcome is recorded
# once and counted by the worker (its job line, its summaries, the run time it flushes at
# its stop), not sent again (before: sent again, found gone from the in-flight list, 'outcome
# not recorded again', and neither line nor count), and the take's error is said once.
cat >"$T/gate.sh" <<EOF
#!/bin/sh
while [ ! -e "$T/gate-open" ]; do sleep 0.05; done
EOF
chmod +x "$T/gate.sh"
before=$(rcli HGET cq:stats processed)
start_registered "$T/w6.log" -c 1 --summary-interval 100ms --command gate="$T/gate.sh"
W=$WPID
wid=$(wid_of "$W")
gated=$("$BIN/cenqueue" gate 2>/dev/null)
wait_for 30 jobs_are started "$gated" || { echo "FATAL: the gate job did not start"; cat "$T/w6.log"; exit 1; }
rcli SET cq:paused 'not a set' >/dev/null
touch "$T/gate-open"
check "the gate job finishes" wait_for 30 jobs_are finished "$gated"
take_failed() { grep -q 'SISMEMBER cq:paused default: WRONGTYPE' "$T/w6.log"; }
check "...and the take behind its outcome fails" wait_for 30 take_failed || cat "$T/w6.log"
rcli DEL cq:paused >/dev/null
after=$("$BIN/cenqueue" noop 2>/dev/null)
check "a job enqueued once the take works again finishes" wait_for 30 jobs_are finished "$after"
# summed_finished N: the worker's summary lines count N jobs finished in all.
summed_finished() {
    [ "$(sed -n 's/.*summary: .*: \([0-9]*\) finished,.*/\1/p' "$T/w6.log" | awk '{s+=$1} END {print s+0}')" = "$1" ]
}
check "the worker counts both jobs finished (its summary lines)" wait_for 10 summed_finished 2 ||
    grep 'summary:' "$T/w6.log"
check_eq "...as its hash does (processed)" 2 "$(rcli HGET "cq:worker:$wid" processed)"
kill -TERM "$W"; wait "$W"
check_eq "the gate job finished once (attempts)" 1 "$(jfield "$gated" attempts)"
check_eq "...recorded once (cq:stats processed)" $((${before:-0} + 2)) "$(rcli HGET cq:stats processed)"
check_eq "...its job line once" 1 "$(grep -c "gate $gated finished in" "$T/w6.log")"
check_eq "...its run time counted once (cq:durations:gate, flushed at the stop)" 1 \
    "$(rcli HGET cq:durations:gate count)"
check_eq "...its outcome not sent again" 0 "$(grep -c 'outcome not recorded again' "$T/w6.log")"
check_eq "the take's error said once" 1 "$(grep -c 'SISMEMBER cq:paused default: WRONGTYPE' "$T/w6.log")"
check_eq "...and nothing left in flight" 0 "$(rcli LLEN "cq:inflight:$wid:default")"

# ---- a take refused again and again, the worker idle: no busy loop ----
# An idle worker's watcher blocks on its queue (BLMOVE, a rotation) and wakes the dispatcher
# when a record comes. Its take refused (the paused set a string again), the record stays
# queued, and the watcher woke the dispatcher again at once: about 18,000 refused takes a
# second from one idle worker, and a fleet's would swamp Redis. A refused take holds the
# next off for a second (worker.c, REFUSED_HOLD_MS). Counted as Redis's failed calls over
# 2 s from the first refusal (INFO commandstats: a refused take is two, its EVALSHA or CQ.TAKE1
# and the SISMEMBER inside; 3 takes in 2 s, 4 at most: 8, where the loop made 70,000).
start_registered "$T/w8.log" -c 1
W=$WPID
wait_for 30 watching 1 || { echo "FATAL: the worker is not watching its queue"; cat "$T/w8.log"; exit 1; }
rcli SET cq:paused 'not a set' >/dev/null
refused=$("$BIN/cenqueue" noop 2>/dev/null)
wait_for 30 grep -q 'SISMEMBER cq:paused default: WRONGTYPE' "$T/w8.log"
rcli CONFIG RESETSTAT >/dev/null
sleep 2
failed_calls=$(rcli INFO commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_.*,failed_calls=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
check "an idle worker whose take is refused asks again once a second ($failed_calls failed calls in 2 s)" \
    [ "$failed_calls" -le 12 ]
check "...says why, once" [ "$(grep -c 'SISMEMBER cq:paused default: WRONGTYPE' "$T/w8.log")" = 1 ]
rcli DEL cq:paused >/dev/null
check "...and takes the job once the take works again" wait_for 30 jobs_are finished "$refused"
kill -TERM "$W"; wait "$W"

# ---- ?replicas=N: the apply's reply read, the WAIT's behind it lost ----
# With ?replicas=1 each apply is followed by WAIT 1 (up to 1 s: this Redis has no replica, so
# each takes the whole second). The worker's connection (through the proxy, for a TCP URL) is
# killed while the WAIT behind a job's end blocks: the apply ran and its reply was read, only
# the replicas' answer is lost. The outcome is recorded once and counted by the worker (its
# job line), not sent again (before: the whole apply was taken for failed, its outcome sent
# again, found gone from the in-flight list, 'outcome not recorded again', and no job line).
start_proxy never-sent-by-a-worker
registered_worker "$T/w7.log" -u "$PURL?replicas=1" -c 1
wid=$(wid_of "$W")
before=$(rcli HGET cq:stats processed)
waited=$("$BIN/cenqueue" sleep 1.5 2>/dev/null)
# cut_in_wait: the job is finished in Redis and a connection blocks in WAIT (its end's: the
# start mark's came while it was started); that connection is killed.
cut_in_wait() {
    local id
    [ "$(jfield "$waited")" = finished ] || return 1
    id=$(rcli CLIENT LIST | awk '/ cmd=wait / { sub("id=", "", $1); print $1; exit }')
    [ -n "$id" ] && [ "$(rcli CLIENT KILL ID "$id")" = 1 ]
}
check "the connection is cut in the WAIT behind the job's end" wait_for 30 cut_in_wait
check "...the worker is back" wait_for 30 grep -q 'redis is back' "$T/w7.log"
after=$("$BIN/cenqueue" noop 2>/dev/null)
check "...and a job enqueued then finishes" wait_for 30 jobs_are finished "$after"
kill -TERM "$W"; wait "$W"
check_eq "the job's outcome is not sent again" 0 "$(grep -c 'outcome not recorded again' "$T/w7.log")" ||
    cat "$T/w7.log"
check_eq "...its job line once" 1 "$(grep -c "sleep $waited finished in" "$T/w7.log")"
check_eq "...recorded once (attempts)" 1 "$(jfield "$waited" attempts)"
check_eq "...counted once (cq:stats processed)" $((${before:-0} + 2)) "$(rcli HGET cq:stats processed)"
check_eq "...and nothing left in flight" 0 "$(rcli LLEN "cq:inflight:$wid:default")"

# ---- two round trips in flight, both replies lost ----
# A busy worker sends its next round trip before it reads the one ahead (worker.c, send_next).
# The proxy holds back the replies to a take; while they are held the worker's jobs end and it
# sends its next round trip, with another take; both reach Redis, and the connection is cut
# with every reply lost (cutproxy.py --second). Every job still ends, and once. One job in 8
# sleeps 10 to 90 ms: while a take's replies are held, the jobs still running end and the
# worker sends its next take (with no-ops alone, every job had often ended when a take went,
# nothing was left to end meanwhile, and on a loaded machine the 20,000 could all end without
# a cut). The proxy is armed before the worker starts, so that it is there for the first
# such pair however late this shell gets to run.
N=20000
before=$(rcli HGET cq:stats processed) failed=$(rcli HGET cq:stats failed)
seq "$N" | awk '{ print NR % 8 == 1 ? "sleep 0.0" (1 + int(NR / 8) % 9) : "noop" }' |
    "$BIN/cenqueue" --stdin --quiet
start_proxy cq:paused --second
touch "$T/arm"
"$BIN/cworker" -u "$PURL" --burst -c 64 --log-level debug >"$T/w4.log" 2>&1 &
W=$!
PIDS+=("$W")
check "the connection was cut with two takes in flight" wait_for 60 grep -q 'and a second one' "$T/proxy.log"
wait "$W"
check_eq "every job was recorded once" $((before + N)) "$(rcli HGET cq:stats processed)"
check_eq "...none failed" "$failed" "$(rcli HGET cq:stats failed)"
check_eq "...the queue is empty" 0 "$(rcli LLEN cq:queue:default)"
check_eq "...nothing left in flight" 0 "$(for k in $(rcli --scan --pattern 'cq:inflight:*'); do rcli LLEN "$k"; done | awk '{s+=$1} END {print s+0}')"
check_contains "the worker put back what the lost takes took" "held and it did not (taken when a reply from redis was lost" "$(cat "$T/w4.log")"
check "...and sent round trips before reading the one ahead" grep -q 'round trips to redis for jobs, [1-9][0-9]* of them sent before' "$T/w4.log"

# ---- back after an outage, Redis may be behind the one before ----
# A failover's new primary may lack the last writes of the old one: the apply that ended a
# job, while it has the take that put the job's record in this worker's in-flight list. The
# worker has nothing of that job any more, and its lease is alive, so no recovery would ever
# move the record: the worker itself puts back what its in-flight lists hold and it does not,
# on every new connection. Here the record is put there by hand, and the outage is a CLIENT
# KILL of the worker's connections, while a job of its own runs across it (it must run once).
registered_worker "$T/w5.log"
wid=$(wid_of "$W")
before=$(rcli HGET cq:stats processed)
held=$("$BIN/cenqueue" sleep 2 2>/dev/null)
wait_for 30 jobs_are started "$held"
rcli HSET cq:job:behind status queued func noop queue default >/dev/null
rcli LPUSH "cq:inflight:$wid:default" '{"id":"behind","func":"noop","args":[]}' >/dev/null
rcli CLIENT KILL TYPE normal SKIPME yes >/dev/null
check "the record it did not hold runs again" wait_for 30 jobs_are finished behind
check_contains "...and the worker says why" "ended where redis, after a failover or a restart, lacks the record of it" "$(cat "$T/w5.log")"
check "the job it held, running across the outage, finishes" wait_for 30 jobs_are finished "$held"
check_eq "...once (attempts)" 1 "$(jfield "$held" attempts)"
check_eq "...once (two jobs counted)" $(( ${before:-0} + 2 )) "$(rcli HGET cq:stats processed)"
check_eq "...nothing left in flight" 0 "$(rcli LLEN "cq:inflight:$wid:default")"

# ---- back, but not registered yet: it keeps asking ----
# Reconnected to a Redis that refuses the registration (out of memory here; a Redis loading
# its AOF answers LOADING the same way), the worker is not back: it closes the connection and
# asks again, and says it is back once the registration goes in, its lease renewed.
lost=$(grep -c 'lost redis' "$T/w5.log")
lost_again() { [ "$(grep -c 'lost redis' "$T/w5.log")" -gt "$lost" ]; }
rcli CONFIG SET maxmemory 1 >/dev/null
rcli CLIENT KILL TYPE normal SKIPME yes >/dev/null
check "the worker loses redis" wait_for 30 lost_again
check "...and its registration is refused (out of memory)" wait_for 30 grep -q 'OOM' "$T/w5.log"
rcli CONFIG SET maxmemory 0 >/dev/null
check "the worker is back once redis takes its registration" wait_for 30 grep -q 'redis is back' "$T/w5.log"
rcli DEL "cq:worker:$wid:lease" >/dev/null
check "...and renews its lease again" wait_for 30 bash -c "[ \"\$(redis-cli -s $RSOCK EXISTS cq:worker:$wid:lease)\" = 1 ]"
kill -TERM "$W"; wait "$W"

# ---- a retried record without a queue field keeps the queue it came from ----
start_httpd
rcli LPUSH cq:queue:high "{\"id\":\"keeps-queue\",\"func\":\"download_link\",\"args\":[\"images\",\"$HBASE/_/status/503/x.jpg\"]}" >/dev/null
"$BIN/cworker" --burst --retry-base 60 --download-root "$T/root" high >/dev/null 2>&1
check_contains "its retry is scheduled for queue high" '"queue":"high"' "$(rcli ZRANGE cq:scheduled 0 -1)"
rcli DEL cq:scheduled >/dev/null

# ---- a scheduled record whose queue key is of another type stays scheduled ----
rcli SET cq:queue:odd "a string" >/dev/null
rcli ZADD cq:scheduled 0 '{"id":"odd-1","func":"noop","args":[],"queue":"odd"}' >/dev/null
"$BIN/cworker" default >"$T/w3.log" 2>&1 &
W=$!
PIDS+=("$W")
wait_for 30 grep -q 'is not a list' "$T/w3.log"
kill -TERM "$W"; wait "$W"
check_eq "the record is still scheduled" 1 "$(rcli ZCARD cq:scheduled)"
check_contains "the worker names the queue" "schedule: queue 'odd' is not a list" "$(cat "$T/w3.log")"
finish
