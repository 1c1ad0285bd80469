#!/usr/bin/env bash
# test_signals.sh - the worker's stops that used to be unclean: SIGHUP (a closing terminal)
# is a clean stop like SIGTERM, and a stop while Redis is down records what ended once Redis
# is back within the shutdown timeout, or says truthfully which outcomes it could not record,
# and why, where Redis is up and refuses them.
. "$(dirname "$0")/lib.sh"

start_redis --appendonly yes
# stopped_in PID SECONDS: wait for PID's exit; sets RC. Fails when it outlives SECONDS.
stopped_in() {
    wait_for "$2" exited "$1" || return 1
    wait "$1"; RC=$?
}
processed() { rcli HGET cq:stats processed; }
# Gate jobs (a script that waits for the file open.ID), held until the test has seen the
# worker stopping with them running, where they were sleep 2, which a loaded machine could let
# end before the signal came. cenqueue takes gate once a worker has published it.
cat >"$T/gate.sh" <<EOF
#!/bin/sh
while [ ! -e "$T/open.\$CQ_JOB_ID" ]; do sleep 0.05; done
EOF
chmod +x "$T/gate.sh"
GATE=(--command gate="$T/gate.sh")
open_gates() { local id; for id in "$@"; do touch "$T/open.$id"; done; }
# says LOG TEXT: LOG holds TEXT.
says() { grep -qF -- "$2" "$1"; }

# ---- SIGHUP: a clean stop, deregistered, the running job allowed to finish ----
# (A gate job: the signal comes while it runs, however loaded the machine.)
start_registered "$T/hup.log" -c 2 --lease 3s "${GATE[@]}"
"$BIN/cenqueue" --id hup-1 gate >/dev/null
wait_for 30 jobs_are started hup-1
kill -HUP "$WPID"
check "SIGHUP: it says it stops with the job running" \
    wait_for 20 says "$T/hup.log" "stopping: 1 job running" || cat "$T/hup.log"
open_gates hup-1
check "SIGHUP: the worker exits within 5 s" stopped_in "$WPID" 5
check_eq "... with status 0 (not 129, killed by the signal)" 0 "$RC"
check_eq "... having let its job finish" finished "$(jfield hup-1)"
check_eq "... and deregistered at once (no lease left to expire)" 0 "$(rcli SCARD cq:workers)"
check_eq "... holding nothing" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_contains "... saying it stops" "stopping: 1 job running" "$(cat "$T/hup.log")"

# Started to ignore hangups (nohup): it still does.
(trap '' HUP; exec "$BIN/cworker" -c 1) >"$T/nohup.log" 2>&1 &
NPID=$!; PIDS+=("$NPID")
wait_for 10 workers_are 1
kill -HUP "$NPID"; sleep 0.5
check "under nohup, SIGHUP leaves the worker running" kill -0 "$NPID"
kill -TERM "$NPID"
check "...and SIGTERM still stops it" stopped_in "$NPID" 5
# It held no job: its stop says so, with no wait announced (it said "stopping: 0 jobs
# running, waiting up to 25s", and stopped at once).
check_eq "...saying that no job runs, and no wait" "stopping: no job running" \
    "$(grep -o 'stopping: .*' "$T/nohup.log")"

# A second SIGHUP (or any second signal) puts a long job back at once.
"$BIN/cenqueue" --id hup-2 sleep 60 >/dev/null 2>&1
start_worker "$T/hup2.log" -c 2
wait_for 5 jobs_are started hup-2
# The second once the first is seen handled, where a sleep 0.3 came first.
kill -HUP "$WPID"
check "a first SIGHUP: it says it stops" wait_for 20 says "$T/hup2.log" "stopping: 1 job running"
kill -HUP "$WPID"
check "two SIGHUPs: the worker exits within 8 s" stopped_in "$WPID" 8
check_eq "... the long job is back in its queue" 1 "$(rcli LLEN cq:queue:default)"
rcli DEL cq:queue:default >/dev/null

# ---- SIGTERM while Redis is down, Redis back within the timeout: outcomes recorded ----
before=$(processed)
# Gate jobs, opened once the worker says it stops with both running, Redis down (they ran 2 s,
# which a loaded machine could let end before Redis stopped). The lease (8 s, renewed every
# 2 s, so up to 2 s old when Redis stops) outlasts Redis's absence (its restart and the
# worker's reconnection, a few seconds), so the jobs stay this worker's.
start_registered "$T/back.log" -c 2 --shutdown-timeout 15s --lease 8s "${GATE[@]}"
"$BIN/cenqueue" --id down-1 gate >/dev/null
"$BIN/cenqueue" --id down-2 gate >/dev/null
check "... both jobs seen started while Redis was up" wait_for 5 jobs_are started down-1 down-2
bwid=$(wid_of "$WPID")
stop_redis
kill -TERM "$WPID"
check "... it says it stops with both running" \
    wait_for 20 says "$T/back.log" "stopping: 2 jobs running" || cat "$T/back.log"
open_gates down-1 down-2
# Both jobs end meanwhile, with nowhere to record it: the worker says so.
check "... both jobs end while Redis is down" \
    wait_for 30 grep -q 'stopping: every job has ended; waiting up to .* to record 2 outcomes' "$T/back.log"
start_redis_again --appendonly yes
check "Redis back: the worker exits well before its 15 s timeout" stopped_in "$WPID" 8
check_eq "... with status 0" 0 "$RC"
check "... both jobs finished" jobs_are finished down-1 down-2
check_eq "... each run once" "1 1" "$(jfield down-1 attempts) $(jfield down-2 attempts)"
check_contains "... it said it waited for Redis alone" \
    "stopping: every job has ended; waiting up to" "$(cat "$T/back.log")"
check_eq "... and claimed nothing went back" "" "$(grep -E 'go back|put back' "$T/back.log")"
# No job that finished runs again: a worker that outlives the old lease finds nothing to do.
# (an id not found is no lease gone: the wait then fails rather than prove nothing)
lease_gone() { [ -n "$1" ] && [ "$(rcli EXISTS "cq:worker:$1:lease")" = 0 ]; }
wait_for 30 lease_gone "$bwid"
"$BIN/cworker" --burst -c 2 "${GATE[@]}" >"$T/after.log" 2>&1
check_eq "a later worker runs neither again" $((before + 2)) "$(processed)"

# ---- SIGTERM while Redis stays down past the timeout: the truth, and nothing lost ----
rec0=$(rcli HGET cq:stats recovered); rec0=${rec0:-0}
# A gate job: Redis stops while it runs (it ran 2 s, and 0.5 s before that, which a loaded
# machine could let end first); opened once the worker says it stops, so that it ends well
# before the 3 s timeout.
start_registered "$T/gone.log" -c 2 --shutdown-timeout 3s --lease 3s "${GATE[@]}"
"$BIN/cenqueue" --id gone-1 gate >/dev/null
wait_for 30 jobs_are started gone-1
gwid=$(wid_of "$WPID")
stop_redis
kill -TERM "$WPID"
check "... it says it stops with the job running" \
    wait_for 20 says "$T/gone.log" "stopping: 1 job running" || cat "$T/gone.log"
open_gates gone-1
check "Redis down: the worker exits at its 3 s timeout" stopped_in "$WPID" 8
check_eq "... with status 1: an outcome is not recorded" 1 "$RC"
log=$(cat "$T/gone.log")
check_contains "... naming the job whose outcome it could not record" \
    "could not record the outcome of 1 ended job (gone-1)" "$log"
check_contains "... and what becomes of it" "it will run again once redis is back" "$log"
check_eq "... and not claiming that a job still runs or went back" "" \
    "$(grep -E 'still running|go back|put back' "$T/gone.log")"
start_redis_again --appendonly yes
wait_for 30 lease_gone "$gwid"  # the old lease expires (3 s after its last renewal)
# Redis has just restarted and the stopped worker is still registered: the burst worker gives
# it a grace before it takes it for dead (worker.c, start_grace): 7 s, not 10 (a 3-s lease,
# but at least a reconnection backoff, 5 s, and two passes, from the burst worker's start).
"$BIN/cworker" --burst -c 2 --lease 3s "${GATE[@]}" >"$T/recover.log" 2>&1
check_eq "once Redis is back, the job is recovered and finishes (at least once)" finished \
    "$(jfield gone-1)"
check_eq "... run a second time: recovered from the stopped worker" $((rec0 + 1)) \
    "$(rcli HGET cq:stats recovered)"

# ---- SIGTERM while Redis is up but refuses the outcome: its line says why ----
# The job fails (a gate that exits 3, no retry) and its outcome goes to the failed set, which
# is a string here: Redis refuses the whole batch, the connection up. The line names that
# refusal, where it said the connection's last error, empty here ('(refused-1): ; it will
# run again once redis is back ...'), and says no 'once redis is back': Redis is up, and the
# deregistration puts the job back at once.
printf '#!/bin/sh\nwhile [ ! -e "%s/open.$CQ_JOB_ID" ]; do sleep 0.05; done\nexit 3\n' "$T" >"$T/gatefail.sh"
chmod +x "$T/gatefail.sh"
start_registered "$T/refused.log" -c 1 --shutdown-timeout 3s --command gatefail="$T/gatefail.sh"
"$BIN/cenqueue" --id refused-1 --retries 0 gatefail >/dev/null
wait_for 30 jobs_are started refused-1
rcli SET cq:failed 'not a sorted set' >/dev/null
kill -TERM "$WPID"
check "refused: it says it stops with the job running" \
    wait_for 20 says "$T/refused.log" "stopping: 1 job running" || cat "$T/refused.log"
open_gates refused-1
check "refused: the worker exits at its 3 s timeout" stopped_in "$WPID" 8
check_eq "... with status 1: an outcome is not recorded" 1 "$RC"
check_contains "... naming the job and Redis's refusal" \
    "could not record the outcome of 1 ended job (refused-1): apply: redis $RSOCK: failed set cq:failed has another type: remove or rename it; no outcome applied; it will run again" \
    "$(cat "$T/refused.log")"
check_eq "... not waiting for a Redis that is up" "" "$(grep 'once redis is back' "$T/refused.log")"
check_eq "... and the job is back in its queue" 1 "$(rcli LLEN cq:queue:default)"
rcli DEL cq:failed cq:queue:default >/dev/null

finish
