#!/usr/bin/env bash
# test_shutdown.sh - strict queue priority, pickup latency of an idle worker, graceful and
# hard shutdown, a watcher's waits after failures (a stop ends them; a connection lost again
# and again is waited on), --max-jobs, --burst waiting for running jobs.
. "$(dirname "$0")/lib.sh"

start_redis
W=()
registered() { wait_for 10 workers_are "$1"; }

# ---- strict priority: high before default before low ----
for i in 1 2 3; do
    "$BIN/cenqueue" -q low --id "low-$i" noop >/dev/null
    "$BIN/cenqueue" -q default --id "default-$i" noop >/dev/null
    "$BIN/cenqueue" -q high --id "high-$i" noop >/dev/null
done
"$BIN/cworker" -c 1 --burst high default low >"$T/prio.log" 2>&1
order=$(for id in low-1 low-2 low-3 default-1 default-2 default-3 high-1 high-2 high-3; do
    echo "$(jfield "$id" started_at) $id"; done | sort -n | awk '{print $2}' | tr '\n' ' ')
check_eq "strict priority, oldest first within a queue" "high-1 high-2 high-3 default-1 default-2 default-3 low-1 low-2 low-3 " "$order"

# ---- an idle worker picks a job from any of its queues within 50 ms of the LPUSH ----
start_worker "$T/idle.log" -c 4 high default low
registered 1
wait_for 5 watching 3   # idle: a watcher blocked on each of the three queues
lat=$(for i in $(seq 1 30); do
    q=$(echo "high default low" | cut -d' ' -f$(( i % 3 + 1 )))
    id=$("$BIN/cenqueue" -q "$q" noop)
    wait_for 5 jobs_are finished "$id"
    s=$(jfield "$id" started_at); e=$(jfield "$id" enqueued_at)
    if [ -n "$s" ] && [ -n "$e" ]; then awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f\n", 1000 * (s - e) }'; else echo 99999; fi
    wait_for 5 watching 3   # idle again before the next sample
done | sort -n)
median=$(echo "$lat" | sed -n 15p); worst=$(echo "$lat" | tail -1)
slow=$(echo "$lat" | awk '$1 > 50' | wc -l)
echo "     pickup latency ms: median $median, worst $worst (30 samples)"
# below X LIMIT: X, a decimal number (anything else fails), is less than LIMIT.
below() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] && awk -v x="$1" -v l="$2" 'BEGIN { exit !(x < l) }'; }
check "idle pickup within 50 ms (median $median ms)" below "$median" 50
# The tail is the machine's more than cq's: on two cores shared with other builds a few
# pickups wait for a time slice. The median above is what the idle path costs.
check "at most 5 of 30 pickups over 50 ms ($slow)" [ "$slow" -le 5 ]
kill -TERM "$WPID"; wait "$WPID"
check_eq "idle worker stops with exit 0" 0 "$?"
check_eq "...and deregisters" 0 "$(rcli SCARD cq:workers)"

# ---- a stop ends a watcher's wait after a failure ----
# A queue key of another type fails its watcher's BLMOVE at once, again and again, while the
# dispatcher's own connection stands: the watcher waits 0.1 s, then 0.2, ... up to 5 s, before
# it tries again. A stop must end that wait (it was slept out: the stop held up to 5 s).
rcli SET cq:queue:wt "not a list" >/dev/null
start_registered "$T/wt.log" --log-level debug wt
# failed N: the watcher of queue wt has said N failures or more
failed() { [ "$(grep -c 'watcher wt: ' "$T/wt.log")" -ge "$1" ]; }
# The 7th comes 6.3 s in (0.1 + 0.2 + ... + 3.2), and the wait after it is 5 s: the stop
# comes at its start, however slowly the test gets to see the line.
check "a queue of another type: its watcher fails, waiting longer each time" wait_for 30 failed 7
t0=$(date +%s%N)
kill -TERM "$WPID"; wait "$WPID"; rc=$?
took=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "...SIGTERM: exit 0" 0 "$rc"
check "...stopped well within the watcher's 5 s wait (${took} ms)" [ "$took" -lt 2500 ]
rcli DEL cq:queue:wt >/dev/null

# ---- a watcher whose connection is lost again and again waits between tries ----
# Redis drops the watcher's connection each time it blocks (CLIENT KILL of every client
# blocked in BLMOVE, every 10 ms, for 3 s): the watcher waits 0.1 s, then 0.2, ... before it
# connects again, 6 tries at most in 3 s, where it connected again at once, as often as it
# was dropped (a hundred times and more).
start_registered "$T/wk.log" --log-level debug wk
check "a watcher blocks" wait_for 10 watching 1
kills=$("$PY" - "$RSOCK" 3 <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
def cmd(*args):
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args)))
    line = f.readline()
    return f.read(int(line[1:]) + 2)[:-2].decode() if line[:1] == b"$" else line.decode()
end, kills = time.time() + float(sys.argv[2]), 0
while time.time() < end:
    for client in cmd("CLIENT", "LIST", "TYPE", "normal").splitlines():
        if " cmd=blmove " in client:
            cmd("CLIENT", "KILL", "ID", client.split()[0][len("id="):])
            kills += 1
    time.sleep(0.01)
print(kills)
PY
)
lost=$(grep -c 'watcher wk: ' "$T/wk.log")
check "...its connection dropped each time it blocks, for 3 s: it connected again $lost times, 1 to 6" \
    between 1 "$lost" 6
echo "#    $kills connections dropped, $lost said by the watcher"
kill -TERM "$WPID"; wait "$WPID"
check_eq "...it stops with exit 0" 0 "$?"

# ---- graceful shutdown: running jobs finish, the rest stay queued ----
# The first two are gate jobs, held until the worker says it is stopping with them running,
# where they were sleep 2 (enqueued before the worker started), which a slow machine could
# let end before the stop. They hold both of the worker's slots, so that the other three,
# enqueued once they started, wait; those run 2 s, so that a worker that took them too would
# take 4 s more. (cenqueue takes gate once the worker has published it.)
cat >"$T/gate.sh" <<EOF
#!/bin/sh
while [ ! -e "$T/gate-open" ]; do sleep 0.05; done
EOF
chmod +x "$T/gate.sh"
start_worker "$T/grace.log" -c 2 --shutdown-timeout 10s --command gate="$T/gate.sh"
registered 1
for i in 1 2; do "$BIN/cenqueue" --id "g-$i" gate >/dev/null; done
wait_for 30 jobs_are started g-1 g-2
for i in 3 4 5; do "$BIN/cenqueue" --id "g-$i" sleep 2 >/dev/null 2>&1; done
t0=$(date +%s%N)
kill -TERM "$WPID"
stopping_two() { grep -q 'stopping: 2 jobs running' "$T/grace.log"; }
check "SIGTERM: it says it waits for the 2 running" wait_for 20 stopping_two || cat "$T/grace.log"
touch "$T/gate-open"
wait "$WPID"; rc=$?
took=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "SIGTERM: exit 0" 0 "$rc"
check_eq "SIGTERM: running job 1 finished" finished "$(jfield g-1)"
check_eq "SIGTERM: running job 2 finished" finished "$(jfield g-2)"
check "SIGTERM: waited only for the running jobs (${took} ms)" [ "$took" -lt 4000 ]
check_eq "SIGTERM: the other 3 are still queued" 3 "$(rcli LLEN cq:queue:default)"
check_eq "SIGTERM: nothing left in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_eq "SIGTERM: deregistered" 0 "$(rcli SCARD cq:workers)"
# next_in_line ID: the record at the head of the default queue (its right end) is ID's.
next_in_line() { [[ $(rcli LINDEX cq:queue:default -1) == *"$1"* ]]; }
check "SIGTERM: the oldest waiting job is next in line" next_in_line g-3
rcli DEL cq:queue:default >/dev/null

# ---- shutdown timeout: jobs still running go back to the head of their queue ----
for i in 1 2 3; do "$BIN/cenqueue" --id "t-$i" sleep 30 >/dev/null; done
start_worker "$T/timeout.log" -c 2 --shutdown-timeout 1s
registered 1
wait_for 5 jobs_are started t-1 t-2
t0=$(date +%s%N)
kill -TERM "$WPID"; wait "$WPID"; rc=$?
took=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "shutdown timeout: exit 0" 0 "$rc"
# about_1s MS: 900 <= MS < 4000.
about_1s() { [ "$1" -ge 900 ] && [ "$1" -lt 4000 ]; }
check "shutdown timeout: stopped after about 1 s (${took} ms)" about_1s "$took"
check_eq "shutdown timeout: all 3 jobs are queued again" 3 "$(rcli LLEN cq:queue:default)"
check "shutdown timeout: the oldest running job is at the head" next_in_line t-1
check_eq "shutdown timeout: status back to queued" queued "$(jfield t-1)"
check_eq "shutdown timeout: nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"

# ---- a second signal puts back at once ----
start_worker "$T/hard.log" -c 2 --shutdown-timeout 60s
registered 1
wait_for 5 jobs_are started t-1 t-2
t0=$(date +%s%N)
kill -TERM "$WPID"
wait_for 5 grep -q 'stopping:' "$T/hard.log"   # the first signal is taken: now the second
kill -INT "$WPID"; wait "$WPID"; rc=$?
took=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "second signal: exit 0" 0 "$rc"
check "second signal: stopped at once (${took} ms)" [ "$took" -lt 2000 ]
check_eq "second signal: all 3 jobs queued again" 3 "$(rcli LLEN cq:queue:default)"
check_eq "second signal: the interrupted jobs did not fail" "" "$(rcli ZRANGE cq:failed 0 -1)"
rcli DEL cq:queue:default >/dev/null

# ---- --max-jobs and --burst ----
for i in $(seq 1 5); do "$BIN/cenqueue" noop >/dev/null; done
"$BIN/cworker" -c 2 --max-jobs 3 >"$T/max.log" 2>&1; rc=$?
check_eq "--max-jobs: exit 0" 0 "$rc"
check_eq "--max-jobs 3 leaves 2 of 5" 2 "$(rcli LLEN cq:queue:default)"
rcli DEL cq:queue:default >/dev/null
"$BIN/cenqueue" --id b-1 sleep 1 >/dev/null
"$BIN/cworker" -c 2 --burst >"$T/burst.log" 2>&1; rc=$?
check_eq "--burst waits for the running job" finished "$(jfield b-1)"
check_eq "--burst exit 0" 0 "$rc"
finish
