#!/usr/bin/env bash
# test_poison.sh - a job that kills every worker that runs it (a "poison pill": a crash, an
# OOM kill, a SIGKILL) is recovered and run again only --max-recoveries times: the recovery
# writes its count into the record, and the worker that takes it once more fails it unrun,
# as any failed job ends (status, the failed set, a waiter told), and goes on with the rest.
# A record whose count is not a whole number is malformed; cqctl requeue starts it afresh.
. "$(dirname "$0")/lib.sh"

start_redis
cat >"$T/boom.sh" <<'EOF'
#!/bin/sh
# One line a run, then the worker that runs it dies: SIGKILL to the parent, cworker.
echo "$$" >>"$1"
kill -KILL "$PPID"
EOF
chmod +x "$T/boom.sh"
OPTS=(-c 2 --lease 3s --max-recoveries 2 --command "boom:FILE=$T/boom.sh")
runs() { if [ -f "$T/runs" ]; then wc -l <"$T/runs"; else echo 0; fi; }
runs_are() { [ "$(runs)" = "$1" ]; }
lacks() { case "$2" in *"$1"*) return 1 ;; esac; }

# A worker of another queue alone runs the recovery passes that put the job back.
start_registered "$T/m.log" --lease 3s side

# ---- with --max-recoveries 2 the job runs three times, each run killing its worker; the
#      fourth worker to take it fails it unrun ----
start_registered "$T/w1.log" "${OPTS[@]}" p
id=$("$BIN/cenqueue" -q p boom "$T/runs" 2>/dev/null)
"$BIN/cqctl" wait "$id" >"$T/wait.out" 2>&1 &
WAITER=$!
for i in 1 2 3; do
    wait_for 10 runs_are "$i"
    wait_for 5 exited "$WPID"
    check "run $i killed its worker" exited "$WPID"
    start_worker "$T/w$((i + 1)).log" "${OPTS[@]}" p
done
wait_for 20 jobs_are failed "$id"
check_eq "the job ran 3 times (--max-recoveries 2), then failed" "3 failed" \
    "$(runs) $(jfield "$id")"
check_eq "...taken back from dead workers 3 times, no attempt counted" "3 0" \
    "$(jfield "$id" recovered) $(jfield "$id" attempts)"
check_contains "...its error names the cause and the fix" \
    "boom: the workers running it died 3 times (a crash, an OOM kill or a SIGKILL while it ran, or silent past their lease): not run again (--max-recoveries: 2); cqctl requeue $id runs it again" \
    "$(jfield "$id" error)"
check_contains "...its saved record carries the count" '"recovered":3}' "$(jfield "$id" record)"
check "...it is in the failed set" [ -n "$(rcli ZSCORE cq:failed "$id")" ]
check "...with a failure's expiry (--failure-ttl)" [ "$(rcli TTL "cq:job:$id")" -gt 0 ]
check_eq "...counted failed" 1 "$(rcli HGET cq:stats failed)"
wait_for 5 exited "$WAITER"
check_contains "...and a waiter hears its end" "failed" "$(cat "$T/wait.out")"
check_contains "the worker logs it at warn" "WARN p: job $id failed: boom: the workers running it died 3 times" \
    "$(cat "$T/w4.log")"
check "the worker that refused it still runs" kill -0 "$WPID"
ids=()
for i in 1 2 3; do ids+=("$("$BIN/cenqueue" -q p noop "$i" 2>/dev/null)"); done
wait_for 10 jobs_are finished "${ids[@]}"
check "...and finishes the queue's other jobs" jobs_are finished "${ids[@]}"
check_eq "...no run more" 3 "$(runs)"

# ---- records: a producer's without the field runs as before (above: noop); a count over
#      the limit fails unrun; one that is not a whole number is a malformed record ----
rcli LPUSH cq:queue:p '{"id":"over","func":"boom","args":["'"$T/runs"'"],"recovered":7}' >/dev/null
rcli LPUSH cq:queue:p '{"id":"mal","func":"noop","args":[],"recovered":"2"}' >/dev/null
rcli LPUSH cq:queue:p '{"id":"neg","func":"noop","args":[],"recovered":-1}' >/dev/null
wait_for 10 jobs_are failed over mal neg
check_contains "a record with recovered over the limit fails unrun" "died 7 times" \
    "$(jfield over error)"
check_eq "...not run" 3 "$(runs)"
check_contains "a record whose recovered is a string is malformed" \
    "job mal: enqueued_at, retries, attempts, recovered, handoffs and timeout must be" \
    "$(jfield mal error)"
check_contains "...and one below 0" "recovered" "$(jfield neg error)"

# ---- cqctl requeue starts the count afresh: the record goes back without it ----
kill -TERM "$WPID"; wait "$WPID"
"$BIN/cqctl" requeue "$id" >/dev/null
rec=$(rcli LINDEX cq:queue:p 0)
check_contains "cqctl requeue puts the job back" "\"id\":\"$id\"" "$rec"
check "...its record without the count" lacks recovered "$rec"
check_eq "...nor its status hash" "" "$(jfield "$id" recovered)"

# ---- --max-recoveries 0: a job whose worker died fails at its next take ----
rcli DEL cq:queue:p >/dev/null
rm -f "$T/runs"
start_registered "$T/z1.log" "${OPTS[@]}" --max-recoveries 0 p
id0=$("$BIN/cenqueue" -q p boom "$T/runs" 2>/dev/null)
wait_for 10 runs_are 1
wait_for 5 exited "$WPID"
start_worker "$T/z2.log" "${OPTS[@]}" --max-recoveries 0 p
wait_for 20 jobs_are failed "$id0"
check_eq "--max-recoveries 0: one run, then failed" "1 failed" "$(runs) $(jfield "$id0")"
check_contains "...saying so" "died 1 time (" "$(jfield "$id0" error)"
help=$("$BIN/cworker" --help)
check_contains "cworker --help has it" "--max-recoveries N" "$help"
check_contains "...and its default" "(default: 3;" "$help"
finish
