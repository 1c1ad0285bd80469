#!/usr/bin/env bash
# test_recovery.sh - a worker SIGKILLed mid-job, Redis restarted mid-run (with AOF), the
# blocking connection killed: nothing is lost. A job a worker takes again after its recovery
# ends once: by the new run, or by the old one when its end was on its way (holdproxy.py).
# Redis listens on TCP here, so that the workers reconnect to a restarted Redis at the same
# host and port, as they would in production.
. "$(dirname "$0")/lib.sh"

start_redis_tcp --appendonly yes --appendfsync always
start_httpd --generate --size 8000 --latency 0.05
ROOT=$T/root
registered() { wait_for 10 workers_are "$1"; }
recovered_once() { [ "$(jfield "$1" recovered)" = 1 ]; }
registered_as() { [ "$(rcli SISMEMBER cq:workers "$1")" = 1 ]; }

# ---- SIGKILL: another live worker sees the dead one's connections gone and puts its jobs
#      back in about 2 s (two recovery passes), without waiting for the 10 s lease ----
"$BIN/cworker" -c 3 >"$T/a.log" 2>&1 &
A=$!
registered 1
for i in 1 2 3; do "$BIN/cenqueue" --id "k-$i" sleep 4 >/dev/null; done
wait_for 5 jobs_are started k-1 k-2 k-3
awid=$(jfield k-1 worker)
# A is held (SIGSTOP) while B starts and registers, so that the sleep 4 jobs cannot end on A
# before the SIGKILL, however long B's start takes on a loaded machine; held, its connections
# are still there, so B does not recover them before the kill.
kill -STOP "$A"
"$BIN/cworker" -c 3 >"$T/b.log" 2>&1 &
B=$!
PIDS+=("$B")
registered 2
kill -KILL "$A"; wait "$A" 2>/dev/null
t0=$(date +%s%N)
wait_for 20 recovered_once k-1
rec_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "     jobs of the killed worker back in the queue after ${rec_ms} ms"
check "recovered within 5 s of the SIGKILL, well before the 10 s lease (${rec_ms} ms)" \
    [ "$rec_ms" -lt 5000 ]
wait_for 10 jobs_are finished k-1 k-2 k-3
for i in 1 2 3; do
    check_eq "k-$i finished after recovery" finished "$(jfield "k-$i")"
    check_eq "k-$i counts one recovery" 1 "$(jfield "k-$i" recovered)"
done
check_eq "a recovery does not use up a retry (attempts 1)" 1 "$(jfield k-1 attempts)"
check "the recovering worker ran them" [ "$(jfield k-1 worker)" != "$awid" ]
check_eq "the dead worker is gone from the registry" 1 "$(rcli SCARD cq:workers)"
check_eq "its in-flight list is gone" "" "$(rcli --scan --pattern "cq:inflight:$awid:*")"
check_contains "the recovering worker logs it" "recovered 3 jobs from dead workers" "$(cat "$T/b.log")"
check_contains "... and why it did not wait for the lease" \
    "worker $awid: its connections to redis are gone (seen twice, a second apart)" "$(cat "$T/b.log")"
check_eq "recovered counter" 3 "$(rcli HGET cq:stats recovered)"
kill -TERM "$B"; wait "$B"

# ---- a frozen worker (SIGSTOP: as cut off from the network) loses its jobs to a live one
#      once its lease runs out (4 s, not the default 10: a heartbeat every 2 s fits in it
#      twice); when it thaws, it finishes what it had (the job ran twice: at-least-once) and
#      registers again ----
"$BIN/cworker" -c 2 --lease 4s >"$T/e.log" 2>&1 &
E=$!
PIDS+=("$E")
registered 1
"$BIN/cenqueue" --id f-1 sleep 2 >/dev/null
wait_for 5 jobs_are started f-1
# E is frozen as soon as f-1 is seen started, before F starts, where F's start and
# registration came first and a slow one let f-1 (2 s) end on E, never recovered. The time
# counts from the freeze; F's start is in it.
kill -STOP "$E"
t0=$(date +%s%N)
ewid=$(jfield f-1 worker)
"$BIN/cworker" -c 2 >"$T/f.log" 2>&1 &
F=$!
PIDS+=("$F")
registered 2
wait_for 20 recovered_once f-1
rec_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a frozen worker's job is recovered within 15 s (${rec_ms} ms)" [ "$rec_ms" -lt 15000 ]
wait_for 10 jobs_are finished f-1
check "the live worker ran it" [ "$(jfield f-1 worker)" != "$ewid" ]
kill -CONT "$E"
wait_for 10 registered_as "$ewid"
check "the thawed worker registers again" registered_as "$ewid"
# (its line comes once the registration's reply is read: after the SADD seen above)
wait_for 10 grep -q "this worker was taken for dead" "$T/e.log"
check_contains "...and says it was taken for dead, and why" \
    "this worker was taken for dead: no heartbeat reached redis within its lease (4s: the process was likely frozen" \
    "$(cat "$T/e.log")"
check_eq "the job stays finished" finished "$(jfield f-1)"
kill -TERM "$E" "$F"; wait "$E"; wait "$F"
check_eq "both deregistered" 0 "$(rcli SCARD cq:workers)"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"

# ---- --burst started just after a worker was SIGKILLed (its 10-s lease still runs): its
#      connections are gone, which a worker is sure of at its second recovery pass, a second
#      after the first. The burst worker waits for that pass before it exits, and runs the
#      dead worker's job, where it exited after its first pass, the queues empty, and left the
#      job in flight until another worker came or the lease ran out ----
# b-1 is a gate job, held until the SIGKILL has landed (its file made then), where a sleep
# 0.5 could end on P before a late SIGKILL. The burst worker runs it with the gate open.
cat >"$T/gate.sh" <<EOF
#!/bin/sh
while [ ! -e "$T/gate-open" ]; do sleep 0.05; done
EOF
chmod +x "$T/gate.sh"
"$BIN/cworker" -c 1 --command gate="$T/gate.sh" >"$T/p.log" 2>&1 &
P=$!
registered 1
pwid=$(wid_of "$P")
"$BIN/cenqueue" --id b-1 gate >/dev/null
wait_for 5 jobs_are started b-1
kill -KILL "$P"; wait "$P" 2>/dev/null
touch "$T/gate-open"
t0=$(date +%s%N)
timeout 60 "$BIN/cworker" --burst -c 1 --command gate="$T/gate.sh" >"$T/q.log" 2>&1
check_eq "a burst worker started just after a SIGKILL exits 0" 0 "$?"
burst_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "...having run the killed worker's job" "finished 1" "$(jfield b-1) $(jfield b-1 recovered)"
check "...not on the killed worker" [ "$(jfield b-1 worker)" != "$pwid" ]
check_eq "...nothing left in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_eq "...nor registered" 0 "$(rcli SCARD cq:workers)"
check_contains "...found by its connections" \
    "worker $pwid: its connections to redis are gone (seen twice, a second apart)" "$(cat "$T/q.log")"
check "...within 8 s, where the lease is 10 (${burst_ms} ms)" [ "$burst_ms" -lt 8000 ]

# ---- a frozen worker takes its own job back after another worker recovered it: the run
#      that began before the recovery goes on, and its late outcome is not recorded (it would
#      take the record of the new run, whose own outcome then found none): the job's end is
#      the new run's. Run 1 (8 s, fails) ends while run 2 (6 s, succeeds) still runs ----
cat >"$T/once.sh" <<EOF
#!/bin/sh
if [ ! -e "$T/ran-\$CQ_JOB_ID" ]; then
    touch "$T/ran-\$CQ_JOB_ID"; sleep 8; echo "run 1 failed" >&2; touch "$T/ended-\$CQ_JOB_ID"; exit 1
fi
sleep 6; echo "run 2 ok"
EOF
chmod +x "$T/once.sh"
"$BIN/cworker" -c 2 elsewhere >"$T/h.log" 2>&1 &   # recovers, takes nothing of default
H=$!
PIDS+=("$H")
"$BIN/cworker" -c 2 --lease 3s --command once="$T/once.sh" >"$T/g.log" 2>&1 &
G=$!
PIDS+=("$G")
registered 2
"$BIN/cenqueue" --id s-0 noop >/dev/null
wait_for 5 jobs_are finished s-0
"$BIN/cenqueue" --id s-1 once >/dev/null
wait_for 5 jobs_are started s-1
gwid=$(jfield s-1 worker)
kill -STOP "$G"
wait_for 15 recovered_once s-1
kill -CONT "$G"
s1_ended() { case "$(jfield s-1)" in finished | failed) return 0 ;; esac; return 1; }
wait_for 30 s1_ended
check_eq "the job's end is the new run's" "finished run 2 ok" "$(jfield s-1) $(jfield s-1 result)"
check_eq "...by the same worker" "$gwid" "$(jfield s-1 worker)"
check_contains "the worker says the old run's outcome will not be recorded" \
    "default: once s-1: taken again after another worker recovered it from this one" \
    "$(cat "$T/g.log")"
# Run 1 has ended (8 s), and a moment later its outcome was dropped, not applied (where a
# fixed 3 s after run 2's end was waited, which assumed run 1's end).
check "run 1 ends" wait_for 15 test -e "$T/ended-s-1"
sleep 1
check_eq "the job stays finished" finished "$(jfield s-1)"
check_eq "not in the failed set" "" "$(rcli ZSCORE cq:failed s-1)"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_eq "its hash counts what it did since it started (s-0 and s-1), not since the recovery" \
    2 "$(rcli HGET "cq:worker:$gwid" processed)"
kill -TERM "$G" "$H"; wait "$G"; wait "$H"

# ---- the same take, while the old run's end is on its way (sent in the round trip behind the
#      take, whose reply the worker has not read): that end takes the record the take brought
#      back, and the job's end is the old run's; the new take is not run. The record goes back
#      to the queue as a recovery puts it (LMOVE); tests/fixtures/holdproxy.py holds the
#      take's reply back, ends the job (a line to the FIFO it reads) and lets the reply go once
#      the worker sent the end behind it. A take sent just before the worker's timers are due
#      is read before the end can go (the proxy says "timeout"): another job then tries ----
mkfifo "$T/go.fifo"
cat >"$T/held.sh" <<EOF
#!/bin/sh
echo run >>"$T/runs-\$CQ_JOB_ID"
if [ "\$(wc -l <"$T/runs-\$CQ_JOB_ID")" = 1 ]; then read go <"$T/go.fifo"; echo "run-1-of-\$CQ_JOB_ID"; exit 0; fi
echo "run 2"
EOF
chmod +x "$T/held.sh"
"$PY" "$SRC/tests/fixtures/holdproxy.py" --to "$RSOCK" --port-file "$T/hold.port" \
    --marker cq:paused --arm "$T/hold.arm" --fifo "$T/go.fifo" 2>"$T/hold.log" &
PIDS+=("$!")
wait_for 10 test -s "$T/hold.port" || { echo "FATAL: holdproxy.py did not start"; exit 1; }
"$BIN/cworker" -u "redis://127.0.0.1:$(cat "$T/hold.port")" -c 2 --command held="$T/held.sh" \
    >"$T/j.log" 2>&1 &
J=$!
PIDS+=("$J")
registered 1
proxy_said() { grep -q "^$1: " "$T/hold.log"; }
hit=
for try in 1 2 3 4 5; do
    "$BIN/cenqueue" --id "e-$try" held >/dev/null
    wait_for 10 jobs_are started "e-$try"
    wait_for 10 test -s "$T/runs-e-$try" # its run is under way, about to read the FIFO
    jwid=$(jfield "e-$try" worker)
    # The second marker is the old run's result, which only its end carries (the job's id
    # is in other commands too: a check of the ids running against the cancel set).
    echo "run-1-of-e-$try" >"$T/hold.arm.tmp" && mv "$T/hold.arm.tmp" "$T/hold.arm"
    rcli LMOVE "cq:inflight:$jwid:default" cq:queue:default RIGHT RIGHT >/dev/null
    wait_for 30 proxy_said "run-1-of-e-$try"
    wait_for 10 jobs_are finished "e-$try"
    if grep -q "^run-1-of-e-$try: second" "$T/hold.log"; then hit=e-$try; break; fi
    echo "     e-$try: the take's reply was read before the end went (trying again)"
done
check "the old run's end went behind the take, before its reply was read" [ -n "$hit" ]
check_eq "the job's end is the old run's" "finished run-1-of-$hit" \
    "$(jfield "$hit") $(jfield "$hit" result)"
check_eq "it ran once: the new take was not run" 1 "$(wc -l <"$T/runs-$hit")"
wait_for 10 grep -q "held $hit: taken again while" "$T/j.log" # (once the proxy relays the reply)
check_contains "the worker says why" \
    "default: held $hit: taken again while the outcome of its earlier run here is being recorded, which ends the job: not run again" \
    "$(cat "$T/j.log")"
id=$("$BIN/cenqueue" noop)
check "the worker goes on: a job after it finishes" wait_for 10 jobs_are finished "$id"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
kill -TERM "$J"; wait "$J"
check_eq "... and it stops cleanly" 0 "$?"

# ---- a watcher's connection lost again as it is made, at its CLIENT ID (its registration
#      for find_gone): the watcher connects again, where it blocked on the closed connection
#      (the worker died of a NULL dereference). tests/fixtures/cutproxy.py cuts the first
#      connection to send CLIENT ID once armed; the watcher's, as its old one is killed ----
"$PY" "$SRC/tests/fixtures/cutproxy.py" --to "$RSOCK" --port-file "$T/cut.port" \
    --marker $'CLIENT\r\n$2\r\nID' --arm "$T/cut.arm" 2>"$T/cut.log" &
PIDS+=("$!")
wait_for 10 test -s "$T/cut.port" || { echo "FATAL: cutproxy.py did not start"; exit 1; }
"$BIN/cworker" -u "redis://127.0.0.1:$(cat "$T/cut.port")" -c 2 >"$T/k.log" 2>&1 &
K=$!
PIDS+=("$K")
registered 1
kwid=$(wid_of "$K")
# Its hash's clients: the control connection's id, then the watcher's (at the next heartbeat).
watcher_known() { [[ $(rcli HGET "cq:worker:$kwid" clients) == *,* ]]; }
wait_for 10 watcher_known
wait_for 10 watching 1
touch "$T/cut.arm"
rcli CLIENT KILL ID "$(rcli HGET "cq:worker:$kwid" clients | cut -d, -f2)" >/dev/null
check "the watcher's new connection is cut at its CLIENT ID" wait_for 10 grep -q 'cut a connection' "$T/cut.log"
check "...and the worker watches again" wait_for 10 watching 1
id=$("$BIN/cenqueue" noop)
check "...and takes a job after it" wait_for 10 jobs_are finished "$id"

# ---- a Redis that stops answering (SIGSTOP) is no lost connection: the worker's line says
#      that it reconnects, where rconn's for a lost one says it (as the restart's below) ----
kill -STOP "$RPID"
wait_for 20 grep -q 'lost redis' "$T/k.log"
kill -CONT "$RPID"
check "a worker whose redis stops answering says it is lost, then that it reconnects" \
    bash -c "grep 'lost redis' '$T/k.log' | grep -q ': no reply within 5 s.*; reconnecting\$'"
check "...once" [ "$(grep -c 'lost redis' "$T/k.log")" = 1 ]
check "...and is back" wait_for 30 grep -q 'redis is back' "$T/k.log"
kill -TERM "$K"; wait "$K"
check_eq "...and it stops cleanly" 0 "$?"

# ---- Redis restarted (AOF) in the middle of a run: nothing lost ----
N=150
for i in $(seq 1 $N); do echo "download_link images $HBASE/r$i.jpg"; done | "$BIN/cenqueue" --stdin --quiet
"$BIN/cworker" -c 8 --download-root "$ROOT" >"$T/c.log" 2>&1 &
C=$!
PIDS+=("$C")
"$BIN/cworker" -c 8 --download-root "$ROOT" >"$T/d.log" 2>&1 &
D=$!
PIDS+=("$D")
processed_at_least() { local n; n=$(rcli HGET cq:stats processed); [ "${n:-0}" -ge "$1" ]; }
drained() { [ "$(rcli LLEN cq:queue:default)" = 0 ] && [ -z "$(rcli --scan --pattern 'cq:inflight:*')" ]; }
wait_for 20 processed_at_least 30
stop_redis
# The outage the test is about: long enough that downloads end while Redis is away and their
# outcomes must wait for it.
sleep 1.5
start_redis_again --appendonly yes --appendfsync always
wait_for 60 drained
ok=$(count_generated 8000 $(for i in $(seq 1 $N); do echo "$ROOT/images/r$i.jpg"; done))
check_eq "every image of the run landed whole after a Redis restart" $N "$ok"
check_eq "no job failed" 0 "$(rcli ZCARD cq:failed)"
check_eq "nothing dead" 0 "$(rcli LLEN cq:dead)"
check_eq "no temporary files" "" "$(find "$ROOT" -name '.*' -type f)"
lost=$(grep -c "lost redis" "$T/c.log")
check_eq "one log line for the outage" 1 "$lost"
# As the worker met the outage: a connection lost under a command ("...it is opened again
# at the next command"), or one that could not be made or timed out ("...; reconnecting": on
# a loaded machine, another of its commands may have found Redis gone first).
lostline=$(grep 'lost redis' "$T/c.log")
check "...saying once that the connection is opened again" \
    grep -qE '(opened again at the next command|; reconnecting)$' <<<"$lostline"
[ -n "$lostline" ] && echo "#    $lostline"
check_contains "and one when it is back" "redis is back after" "$(cat "$T/c.log")"
check_eq "both workers registered again" 2 "$(rcli SCARD cq:workers)"

# ---- CLIENT KILL of every connection (the watchers' blocked ones included) ----
rcli CLIENT KILL TYPE normal >/dev/null
wait_for 5 watching 2   # both workers' watchers connected and blocked again
id=$("$BIN/cenqueue" noop)
check "a job after CLIENT KILL is still picked up" wait_for 5 jobs_are finished "$id"
kill -TERM "$C" "$D"; wait "$C"; wait "$D"
check_eq "workers deregistered after the run" 0 "$(rcli SCARD cq:workers)"

# ---- a worker started just after Redis restarted does not take the others, still on their
#      way back, for dead: its first connection waits as a reconnection does when Redis has
#      been up for less than a grace (7 s here: a 4-s lease, at least a 5-s backoff and two
#      passes) and a registered worker is not connected (common/worker.c, start_grace). The
#      older worker is held (SIGSTOP) until 2.5 s after the new one registered, where the
#      new one took it for dead about 1 s after it started and ran its job a second time ----
# grace_case TAG WHAT SETUP CHECKS [URL]: a gate job g-TAG in flight on an older worker,
# which is held (SIGSTOP) while Redis restarts; SETUP runs on the restarted Redis, a new
# worker starts (at URL, if given) and CHECKS runs on its log once the older one is back.
grace_case() {
    local tag=$1 what=$2 setup=$3 checks=$4 url=${5:-} o n owid
    cat >"$T/gate$tag.sh" <<EOF
#!/bin/sh
echo run >>"$T/gate-runs.\$CQ_JOB_ID"
while [ ! -e "$T/gate$tag-open" ]; do sleep 0.05; done
EOF
    chmod +x "$T/gate$tag.sh"
    "$BIN/cworker" -c 1 --lease 4s --command "gate$tag=$T/gate$tag.sh" >"$T/o$tag.log" 2>&1 &
    o=$!
    PIDS+=("$o")
    registered 1
    owid=$(wid_of "$o")
    "$BIN/cenqueue" --id "g-$tag" "gate$tag" >/dev/null
    wait_for 10 jobs_are started "g-$tag" || { echo "FATAL: the gate job did not start"; cat "$T/o$tag.log"; exit 1; }
    kill -STOP "$o"
    stop_redis
    start_redis_again --appendonly yes --appendfsync always
    check_eq "$what: the job is in flight on the older worker across the restart (AOF)" \
        "started $owid" "$(jfield "g-$tag") $(jfield "g-$tag" worker)"
    $setup
    "$BIN/cworker" ${url:+-u "$url"} -c 1 --lease 4s --log-level debug \
        --command "gate$tag=$T/gate$tag.sh" >"$T/n$tag.log" 2>&1 &
    n=$!
    PIDS+=("$n")
    wait_for 10 registered_pid "$n" || { echo "FATAL: the new worker did not register"; cat "$T/n$tag.log"; exit 1; }
    sleep 2.5
    kill -CONT "$o"
    check "$what: the older worker is back" wait_for 10 grep -q "redis is back after" "$T/o$tag.log"
    $checks "$T/n$tag.log"
    touch "$T/gate$tag-open"
    check "...the job finishes" wait_for 10 jobs_are finished "g-$tag"
    check_eq "...on the older worker, not recovered" "$owid " "$(jfield "g-$tag" worker) $(jfield "g-$tag" recovered)"
    check_eq "...run once" 1 "$(wc -l <"$T/gate-runs.g-$tag")"
    check "...the new worker took no one for dead" \
        bash -c "! grep -E 'recovered [0-9]+ jobs? from dead workers|its connections to redis are gone' '$T/n$tag.log'"
    kill -TERM "$o" "$n"; wait "$o"; wait "$n"
}
waited_checks() {
    check "...the new worker waited for it, and said so (debug)" \
        grep -q "the other workers have .* to come back before a recovery pass" "$1"
}
grace_case 1 "INFO allowed" : waited_checks

# ---- the same where the ACL refuses INFO to the new worker (a worker line without +info, as
#      PROTOCOL.md allows): Redis does not say how long it has served, and the other workers'
#      connections say it, as on a promoted replica (none connected: 0 s), where the new
#      worker waited for no one and took the older one for dead ----
noinfo_user() { rcli ACL SETUSER noinfo on '>pw' '~*' '&*' '+@all' '-info' >/dev/null; }
noinfo_checks() {
    check "...the new worker was refused INFO, and said so (debug)" \
        grep -q "redis does not say how long it has served (INFO: NOPERM" "$1"
    check "...and waited for the older one (debug)" \
        grep -q "redis has served for 0s, and a registered worker is not connected" "$1"
}
grace_case 2 "INFO refused" noinfo_user noinfo_checks "redis://noinfo:pw@127.0.0.1:$RPORT"

# ---- a Redis that refuses the registration at start (out of memory) ends the start, in one
#      line naming the cause (it said the cause as a warning, then 'ERROR cannot register') ----
rcli CONFIG SET maxmemory 1 >/dev/null
"$BIN/cworker" -c 2 >"$T/m.log" 2>&1
check_eq "a worker whose registration is refused at start: exit 1" 1 "$?"
rcli CONFIG SET maxmemory 0 >/dev/null
check_eq "... one line" 1 "$(wc -l <"$T/m.log")"
check_contains "... naming what failed, the cause and the fix" \
    "ERROR cannot register this worker: redis 127.0.0.1:$RPORT: OOM command not allowed when used memory > 'maxmemory'; Redis reached its maxmemory: raise it, or free memory" \
    "$(cat "$T/m.log")"

# ---- a promoted replica (REPLICAOF NO ONE: INFO replication's master_replid2 is set, for as
#      long as it serves) whose workers each live less than a start grace (--max-jobs 1, a job
#      each): no other worker is connected, so each one's start_grace waits a whole grace
#      (7 s) before its first recovery pass. A worker exits on --max-jobs only after that
#      first pass, as --burst does, so that the dead worker's job comes back; it exited
#      before, the pass never ran in any of them, and the job stayed in flight for good ----
rcli REPLICAOF 127.0.0.1 1 >/dev/null
rcli REPLICAOF NO ONE >/dev/null
replid2=$(rcli INFO replication | tr -d '\r' | sed -n 's/^master_replid2://p')
[[ $replid2 =~ [1-9a-f] ]] || { echo "FATAL: REPLICAOF NO ONE left master_replid2 '$replid2'"; exit 1; }
"$BIN/cworker" -c 1 --lease 3s >"$T/x.log" 2>&1 &
X=$!
registered 1
xwid=$(wid_of "$X")
"$BIN/cenqueue" --id m-1 sleep 2 >/dev/null
wait_for 5 jobs_are started m-1
kill -KILL "$X"; wait "$X" 2>/dev/null
m1_ended() { [ "$(jfield m-1)" = finished ]; }
t0=$(date +%s)
runs=0
while ! m1_ended && [ $(( $(date +%s) - t0 )) -lt 40 ]; do
    "$BIN/cenqueue" noop >/dev/null 2>&1 # "no live worker takes from queue 'default'"
    timeout 60 "$BIN/cworker" -c 1 --max-jobs 1 --lease 3s --log-level debug >>"$T/y.log" 2>&1
    rc=$?
    runs=$((runs + 1))
    [ "$rc" = 0 ] || break
done
check_eq "short-lived workers (--max-jobs 1) on a promoted replica exit 0" 0 "$rc"
check_eq "...and one of them runs the dead worker's job, recovered ($runs runs)" "finished 1" \
    "$(jfield m-1) $(jfield m-1 recovered)"
check "...not on the dead worker" [ "$(jfield m-1 worker)" != "$xwid" ]
check "...after waiting a grace (debug)" \
    grep -q "redis has served as a promoted replica (at least) for 0s, and a registered worker is not connected" "$T/y.log"
check_eq "...nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
finish
