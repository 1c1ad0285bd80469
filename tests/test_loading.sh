#!/usr/bin/env bash
# test_loading.sh - a Redis restarted with data to load answers LOADING for as long as the
# load goes on (seconds to minutes for a large AOF or RDB). A worker started then waits for
# the load and starts when it ends, where it exited 1 (a fleet started during the load went
# round its supervisor's restarts), and a stop ends that wait cleanly; a worker that waited
# counts its start grace from the end of the load, not from Redis's start, so that it does
# not take an older worker, still on its way back, for dead and run its job a second time.
# cenqueue and cqctl, one-shot commands, still fail at once, saying why and what to do; a
# wait under way across the restart (cqctl wait, cenqueue --wait) waits through the load.
. "$(dirname "$0")/lib.sh"

start_redis
LOAD_KEYS=1800 # 5 ms each (key-load-delay): a load of 9 s, past a start grace (7 s)
loading() { [[ $(rcli PING 2>&1) == LOADING* ]]; }
registered_as() { [ "$(rcli SISMEMBER cq:workers "$1")" = 1 ]; }

# The older worker: -c 1, its one slot held by a job that waits for a file, so that the job
# is in flight on it across the restart and the job queued behind it stays queued.
cat >"$T/gate.sh" <<EOF
#!/bin/sh
echo run >>"$T/gate-runs.\$CQ_JOB_ID"
while [ ! -e "$T/gate-open" ]; do sleep 0.05; done
EOF
chmod +x "$T/gate.sh"
"$BIN/cworker" -c 1 --lease 4s --command gate="$T/gate.sh" >"$T/o.log" 2>&1 &
O=$!
PIDS+=("$O")
wait_for 10 registered_pid "$O" || { echo "FATAL: the older worker did not register"; cat "$T/o.log"; exit 1; }
owid=$(wid_of "$O")
"$BIN/cenqueue" --id g-1 gate >/dev/null
wait_for 10 jobs_are started g-1 || { echo "FATAL: the gate job did not start"; cat "$T/o.log"; exit 1; }
"$BIN/cenqueue" --id n-1 noop >/dev/null
# A wait under way when Redis restarts (cqctl wait; cenqueue --wait's is the same): subscribed
# before the restart, it waits through the load and sees n-1 end.
"$BIN/cqctl" wait --wait-timeout 90s n-1 >"$T/wait.out" 2>"$T/wait.err" &
WAITER=$!
PIDS+=("$WAITER")
subscribed() { [ "$(rcli PUBSUB NUMSUB cq:ended:n-1 | sed -n 2p)" = 1 ]; }
wait_for 10 subscribed || { echo "FATAL: the wait did not subscribe"; cat "$T/wait.err"; exit 1; }

# ---- Redis restarted with data that takes seconds to load: a snapshot of LOAD_KEYS keys of
#      100 bytes, read back with a delay a key (a hidden config of Redis's own tests) and the
#      clients served every KB read, so that they are answered LOADING meanwhile ----
rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'pad:' .. i, string.rep('x', 100)) end" \
    0 "$LOAD_KEYS" >/dev/null
kill -STOP "$O"
rcli SAVE >/dev/null
stop_redis
redis-server "${REDIS_ARGS[@]}" --port 0 --key-load-delay 5000 \
    --loading-process-events-interval-bytes 1024 &
RPID=$!
PIDS+=("$RPID")
wait_for 10 loading || { echo "FATAL: redis-server is not loading its data"; cat "$T/redis/log"; exit 1; }

# ---- cenqueue and cqctl fail at once, in one line naming LOADING and what to do ----
fix="LOADING Redis is loading the dataset in memory; try again when the load is done"
err=$("$BIN/cenqueue" noop 2>&1); rc=$?
check_eq "cenqueue while redis loads: exit 1" 1 "$rc"
check_eq "... one line" 1 "$(printf '%s\n' "$err" | wc -l)"
check_contains "... naming LOADING and the fix" "redis $RSOCK: $fix" "$err"
err=$("$BIN/cqctl" info 2>&1); rc=$?
check_eq "cqctl info while redis loads: exit 1" 1 "$rc"
check_eq "... one line" 1 "$(printf '%s\n' "$err" | wc -l)"
check_contains "... naming LOADING and the fix" "redis $RSOCK: $fix" "$err"

# ---- workers started now wait; a stop ends the wait as a stop does (exit 0) ----
t_start=$(date +%s%N)
"$BIN/cworker" -c 1 --lease 4s --log-level debug --command gate="$T/gate.sh" >"$T/n.log" 2>&1 &
N_=$!
PIDS+=("$N_")
"$BIN/cworker" >"$T/s.log" 2>&1 &
S=$!
PIDS+=("$S")
# Both have met the load (their line, written after their signal handlers are set) before
# the count of N's lines and S's SIGTERM, where a fixed 2.5 s could come first on a loaded
# machine (under ASan or TSan, a worker's start takes a second or more). The sleep is kept
# for what it is for: N still running 2.5 s after its start.
said="INFO redis at $RSOCK is loading its data \([0-9]+% done\); waiting, and starting once it has$"
saw_loading() { grep -qE "$said" "$1"; }
check "a worker started while redis loads says it waits" wait_for 20 saw_loading "$T/n.log"
check "... the one stopped below too, before its SIGTERM" wait_for 20 saw_loading "$T/s.log" ||
    cat "$T/s.log"
left_ms=$(( 2500 - ($(date +%s%N) - t_start) / 1000000 ))
[ "$left_ms" -le 0 ] || sleep "$(awk -v m="$left_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
check "redis still loads 2.5 s on (else the checks below prove nothing)" loading
check "a worker started while redis loads is still running 2.5 s later" kill -0 "$N_"
check "a wait under way across the restart still waits" kill -0 "$WAITER" || cat "$T/wait.err"
check_eq "... it said so once, at info, with how far the load is" 1 "$(grep -cE "$said" "$T/n.log")" ||
    cat "$T/n.log"
check_eq "... and nothing else" 1 "$(wc -l <"$T/n.log")"
kill -TERM "$S"
wait_for 5 exited "$S"
wait "$S"
check_eq "a worker stopped (SIGTERM) while redis loads exits 0" 0 "$?"
check_contains "... and says so" "stopped before it started: redis was still loading its data" \
    "$(cat "$T/s.log")"

# ---- the load ends: the waiting worker starts and runs the job queued before the restart;
#      it waits a start grace from there before it takes anyone for dead. The older worker is
#      held until 2.5 s after the new one registered: before, the uptime (the load's 9 s) was
#      past a grace, the new worker took it for dead a second or two after it started, and
#      ran its job again ----
wait_for 40 redis_answers || { echo "FATAL: redis did not load its data"; cat "$T/redis/log"; exit 1; }
uptime=$(rcli INFO server | tr -d '\r' | sed -n 's/^uptime_in_seconds://p')
check "the load outlasted a start grace (7 s): uptime ${uptime}s" [ "$uptime" -ge 8 ]
check_eq "the job is in flight on the older worker across the restart" \
    "started $owid" "$(jfield g-1) $(jfield g-1 worker)"
check "the waiting worker registers once the load is done" wait_for 10 registered_pid "$N_" ||
    cat "$T/n.log"
nwid=$(wid_of "$N_")
sleep 2.5
kill -CONT "$O"
check "the older worker is back" wait_for 10 grep -q "redis is back after" "$T/o.log"
check "the new worker said the load is done" grep -q "INFO redis has loaded its data, after" "$T/n.log"
check "... ran the job queued before the restart" wait_for 10 jobs_are finished n-1
check_eq "... itself" "${nwid:-(the new worker is not registered)}" "$(jfield n-1 worker)"
check "the wait under way across the restart ends with the job" wait_for 10 exited "$WAITER"
wait "$WAITER"
check_eq "... exit 0" 0 "$?"
check_eq "... its line" "n-1 finished" "$(cat "$T/wait.out")"
check_eq "... nothing on stderr" "" "$(cat "$T/wait.err")"
check "... and waited a grace from the end of the load for the older one (debug)" grep -qE \
    "redis has served for [01]s since it loaded its data, and a registered worker is not connected" \
    "$T/n.log"
touch "$T/gate-open"
check "the older worker's job finishes" wait_for 10 jobs_are finished g-1
check_eq "... on the older worker" "$owid" "$(jfield g-1 worker)"
check_eq "... not recovered" "" "$(jfield g-1 recovered)"
check_eq "... run once" 1 "$(wc -l <"$T/gate-runs.g-1")"
check "the new worker took no one for dead" \
    bash -c "! grep -E 'recovered [0-9]+ jobs? from dead workers|its connections to redis are gone' '$T/n.log'"
check "both are registered" registered_as "$owid"
check "..." registered_as "$nwid"
kill -TERM "$O" "$N_"
wait "$O"
check_eq "the older worker stops cleanly" 0 "$?"
wait "$N_"
check_eq "the new worker stops cleanly" 0 "$?"

finish
