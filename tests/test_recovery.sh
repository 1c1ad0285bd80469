#!/usr/bin/env bash
# test_recovery.sh - a worker SIGKILLed mid-job, Redis restarted mid-run (with AOF), the
# blocking connection killed: nothing is lost (issue 3).
. "$(dirname "$0")/lib.sh"

start_redis --appendonly yes --appendfsync always
start_httpd --generate --size 8000 --latency 0.05
ROOT=$T/root
registered() { wait_for 10 "[ \$(rcli SCARD cq:workers) = $1 ]"; }

# ---- SIGKILL: another live worker puts the jobs back within 15 s ----
"$BIN/cworker" -c 3 >"$T/a.log" 2>&1 &
A=$!
registered 1
for i in 1 2 3; do "$BIN/cenqueue" --id "k-$i" sleep 4 >/dev/null; done
wait_for 5 "[ \"\$(jfield k-1)\" = started ] && [ \"\$(jfield k-2)\" = started ] && [ \"\$(jfield k-3)\" = started ]"
awid=$(jfield k-1 worker)
"$BIN/cworker" -c 3 >"$T/b.log" 2>&1 &
B=$!
PIDS+=("$B")
registered 2
kill -KILL "$A"; wait "$A" 2>/dev/null
t0=$(date +%s%N)
wait_for 20 "[ \"\$(jfield k-1 recovered)\" = 1 ]"
rec_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "     jobs of the killed worker back in the queue after ${rec_ms} ms"
check "recovered within 15 s of the SIGKILL (${rec_ms} ms)" "[ $rec_ms -lt 15000 ]"
wait_for 10 "[ \"\$(jfield k-1)\" = finished ] && [ \"\$(jfield k-2)\" = finished ] && [ \"\$(jfield k-3)\" = finished ]"
for i in 1 2 3; do
    check_eq "k-$i finished after recovery" finished "$(jfield "k-$i")"
    check_eq "k-$i counts one recovery" 1 "$(jfield "k-$i" recovered)"
done
check_eq "a recovery does not use up a retry (attempts 1)" 1 "$(jfield k-1 attempts)"
check "the recovering worker ran them" "[ \"$(jfield k-1 worker)\" != \"$awid\" ]"
check_eq "the dead worker is gone from the registry" 1 "$(rcli SCARD cq:workers)"
check_eq "its in-flight list is gone" "" "$(rcli --scan --pattern "cq:inflight:$awid:*")"
check_contains "the recovering worker logs it" "recovered 3 jobs from dead workers" "$(cat "$T/b.log")"
check_eq "recovered counter" 3 "$(rcli HGET cq:stats recovered)"
kill -TERM "$B"; wait "$B"

# ---- a frozen worker (SIGSTOP: as cut off from the network) loses its jobs to a live one;
#      when it thaws, it finishes what it had (the job ran twice: at-least-once) and
#      registers again ----
"$BIN/cworker" -c 2 >"$T/e.log" 2>&1 &
E=$!
PIDS+=("$E")
registered 1
"$BIN/cenqueue" --id f-1 sleep 2 >/dev/null
wait_for 5 "[ \"\$(jfield f-1)\" = started ]"
ewid=$(jfield f-1 worker)
"$BIN/cworker" -c 2 >"$T/f.log" 2>&1 &
F=$!
PIDS+=("$F")
registered 2
kill -STOP "$E"
t0=$(date +%s%N)
wait_for 20 "[ \"\$(jfield f-1 recovered)\" = 1 ]"
rec_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a frozen worker's job is recovered within 15 s (${rec_ms} ms)" "[ $rec_ms -lt 15000 ]"
wait_for 10 "[ \"\$(jfield f-1)\" = finished ]"
check "the live worker ran it" "[ \"$(jfield f-1 worker)\" != \"$ewid\" ]"
kill -CONT "$E"
wait_for 10 "rcli SISMEMBER cq:workers $ewid | grep -q 1"
check "the thawed worker registers again" "rcli SISMEMBER cq:workers $ewid | grep -q 1"
check_eq "the job stays finished" finished "$(jfield f-1)"
kill -TERM "$E" "$F"; wait "$E"; wait "$F"
check_eq "both deregistered" 0 "$(rcli SCARD cq:workers)"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"

# ---- Redis restarted (AOF) in the middle of a run: nothing lost ----
N=150
for i in $(seq 1 $N); do echo "download_link images $HBASE/r$i.jpg"; done | "$BIN/cenqueue" --stdin --quiet
"$BIN/cworker" -c 8 --download-root "$ROOT" >"$T/c.log" 2>&1 &
C=$!
PIDS+=("$C")
"$BIN/cworker" -c 8 --download-root "$ROOT" >"$T/d.log" 2>&1 &
D=$!
PIDS+=("$D")
wait_for 20 "[ \$(rcli HGET cq:stats processed || echo 0) -ge 30 ]"
stop_redis
sleep 1.5
start_redis_again --appendonly yes --appendfsync always
wait_for 60 "[ \$(rcli LLEN cq:queue:default) = 0 ] && [ -z \"\$(rcli --scan --pattern 'cq:inflight:*')\" ]"
ok=0
for i in $(seq 1 $N); do
    cmp -s "$ROOT/images/r$i.jpg" <(python3 "$SRC/tests/fixtures/httpd.py" --print-bytes "r$i.jpg" --size 8000) && ok=$((ok + 1))
done
check_eq "every image of the run landed whole after a Redis restart" $N "$ok"
check_eq "no job failed" 0 "$(rcli ZCARD cq:failed)"
check_eq "nothing dead" 0 "$(rcli LLEN cq:dead)"
check_eq "no temporary files" "" "$(find "$ROOT" -name '.*' -type f)"
lost=$(grep -c "lost redis" "$T/c.log")
check_eq "one log line for the outage" 1 "$lost"
check_contains "and one when it is back" "redis is back after" "$(cat "$T/c.log")"
check_eq "both workers registered again" 2 "$(rcli SCARD cq:workers)"

# ---- CLIENT KILL of every connection (the watchers' blocked ones included) ----
rcli CLIENT KILL TYPE normal >/dev/null
sleep 0.5
id=$("$BIN/cenqueue" noop)
check "a job after CLIENT KILL is still picked up" "wait_for 5 '[ \"\$(jfield $id)\" = finished ]'"
kill -TERM "$C" "$D"; wait "$C"; wait "$D"
check_eq "workers deregistered after the run" 0 "$(rcli SCARD cq:workers)"
finish
