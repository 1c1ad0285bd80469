#!/usr/bin/env bash
# test_switchover.sh - redis+sentinel:// while the primary is demoted by hand (a switchover:
# the replica promoted with REPLICAOF NO ONE, the old primary made its replica) and the
# sentinel still names the old one, as it does for a moment in any failover. A worker's
# blocked take is cut (UNBLOCKED), its writes get READONLY, and its reconnections find a node
# whose ROLE is slave: it says so once, keeps the outcomes of the jobs it was running, and
# goes on against the new primary once the sentinel names it. A producer run in the window
# fails with the same words; one pointed at the demoted node itself is told to point at the
# primary or at its sentinels. One sentinel, whose down-after-milliseconds is long enough
# that it takes no part: the test decides when it names the new primary (SENTINEL REMOVE and
# MONITOR), so that the window is as long as the test needs, not as long as a failover is.
. "$(dirname "$0")/lib.sh"
command -v ss >/dev/null || { echo "FATAL: no 'ss' here (iproute2): run scripts/deps --test"; exit 1; }

synced() { redis-cli -p "$1" INFO replication | grep -q "master_link_status:up"; }
# in_step PRIMARY REPLICA (ports): lib.sh's caught_up (the workers write a heartbeat every 2 s
# each, which a loaded machine can put between its two reads).
in_step() { caught_up "redis-cli -p $1" "redis-cli -p $2"; }
# ours, port_up, serve_port and node_dirs: lib.sh's (servers on ports of their own).

# Either node starts a full sync at once (repl-diskless-sync-delay 0; the default waits 5 s
# for more replicas): the replica's first, and the demoted node's from the new primary.
# shellcheck disable=SC2046 # node's words
serve_port PA redis-server --port @PORT --bind 127.0.0.1 --save "" --appendonly no $(node_dirs a) \
    --repl-diskless-sync-delay 0
# shellcheck disable=SC2046
serve_port PB redis-server --port @PORT --bind 127.0.0.1 --save "" --appendonly no $(node_dirs b) \
    --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$PA"
wait_for 10 synced "$PB" || { echo "FATAL: the replica did not sync"; exit 1; }
printf 'sentinel monitor cqtest 127.0.0.1 %s 1\n' "$PA" >"$T/sentinel.conf"
printf 'sentinel %s cqtest 600000\n' down-after-milliseconds failover-timeout >>"$T/sentinel.conf"
serve_port PS redis-sentinel "$T/sentinel.conf" --port @PORT --bind 127.0.0.1 --dir "$T" \
    --logfile "$T/sentinel.log"
URL="redis+sentinel://127.0.0.1:$PS/cqtest"
named() { [ "$(redis-cli -p "$PS" SENTINEL get-master-addr-by-name cqtest | tail -1)" = "$1" ]; }
# status PORT ID: a job's status on the node on PORT.
status() { redis-cli -p "$1" HGET "cq:job:$2" status; }
# cont_after_back N: SIGCONT the second worker 1.5 s after the first's Nth 'redis is back
# after' as its log times it (ms), where a sleep 1.5 counted from when this shell saw the
# line, late on a loaded machine, and left the second less of the first's grace (4 s) to
# come back in.
cont_after_back() {
    local line ms
    line=$(grep "redis is back after" "$T/w.log" | sed -n "$1p")
    ms=$(date -d "${line%% *}" +%s%3N 2>/dev/null) || ms=$(( $(date +%s%N) / 1000000 ))
    ms=$(( ms + 1500 - $(date +%s%N) / 1000000 ))
    [ "$ms" -le 0 ] || sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill -CONT "$W2"
}
all_are() {
    local port=$1 want=$2 id
    shift 2
    for id in "$@"; do [ "$(status "$port" "$id")" = "$want" ] || return 1; done
}

# The two jobs that run across the switchover end when the test opens their gate ($T/go),
# once the primary is demoted, not after a time: jobs of 3 s ended before the demotion when
# the steps up to it took 3 s on a loaded machine (1.2 s to see both started, 1.9 s for the
# replica to catch up), and an end that the old primary acknowledged after the replica's
# promotion was lost when it resynced from the new one (a full resync, its data replaced):
# the worker put that job back on its return (reconcile) and it ran again, at least once as
# cq promises, but the ends were then no longer all held meanwhile nor each once, as the
# checks below say they are. Each run adds a line to ended.ID as it ends.
cat >"$T/gate.sh" <<EOF
#!/bin/sh
while [ ! -e "$T/go" ]; do sleep 0.05; done
echo run >>"$T/ended.\$CQ_JOB_ID"
echo opened
EOF
chmod +x "$T/gate.sh"

echo "# two workers through the sentinel, a job running on each"
# A job on each of two workers (queues default and b), whose leases (4 s) run out on the new
# primary while no primary is known (the window below is longer): the first back must not
# take the other for dead, by its lease or by its connections not there yet, and run its job
# again (a recovery grace after a new connection: common/worker.c, recovery_grace). The
# first has slots free, so that its watcher is blocked in a take at the switchover.
"$BIN/cworker" -u "$URL" -c 4 --lease 4s --log-level debug --command gate="$T/gate.sh" \
    >"$T/w.log" 2>&1 &
W=$!
PIDS+=("$W")
"$BIN/cworker" -u "$URL" -c 1 --lease 4s --log-level debug --command gate="$T/gate.sh" b \
    >"$T/w2.log" 2>&1 &
W2=$!
PIDS+=("$W2")
wait_for 10 bash -c "[ \"\$(redis-cli -p $PA SCARD cq:workers)\" = 2 ]" ||
    { echo "FATAL: the workers did not register"; cat "$T/w.log" "$T/w2.log"; exit 1; }
before=$("$BIN/cenqueue" -u "$URL" noop)
check "a job enqueued through the sentinel finishes" wait_for 10 all_are "$PA" finished "$before"
running=$("$BIN/cenqueue" -u "$URL" gate; "$BIN/cenqueue" -u "$URL" -q b gate)
# shellcheck disable=SC2086 # the ids, one a word
check "both are started" wait_for 10 all_are "$PA" started $running
wait_for 10 in_step "$PA" "$PB" || { echo "FATAL: the replica is behind the primary"; exit 1; }

echo "# the switchover: the replica promoted, the primary its replica; the sentinel still names the old one"
redis-cli -p "$PB" REPLICAOF NO ONE >/dev/null
redis-cli -p "$PA" REPLICAOF 127.0.0.1 "$PB" >/dev/null
check "the demoted node syncs from the new primary" wait_for 10 synced "$PA"
check "the sentinel names the demoted node" named "$PA"

err=$("$BIN/cenqueue" -u "$URL" noop 2>&1); rc=$?
check_eq "cenqueue through the sentinel meanwhile: exit 1" 1 "$rc"
check_eq "...one line, ROLE's answer and the failover under way" \
    "cenqueue: redis 127.0.0.1:$PA (primary of cqtest): ROLE says slave, not master; a failover is under way: the sentinels name the new primary when it ends" \
    "$err"
err=$("$BIN/cqctl" -u "$URL" info 2>&1); rc=$?
check_eq "cqctl info through the sentinel: exit 1" 1 "$rc"
check_eq "...with the same words" \
    "cqctl: redis 127.0.0.1:$PA (primary of cqtest): ROLE says slave, not master; a failover is under way: the sentinels name the new primary when it ends" \
    "$err"
err=$("$BIN/cenqueue" -u "redis://127.0.0.1:$PA" noop 2>&1); rc=$?
check_eq "cenqueue pointed at the demoted node itself: exit 1" 1 "$rc"
check_contains "...READONLY, and where to point instead" \
    "this Redis is a replica: point the URL at the primary, or at its sentinels (redis+sentinel://)" \
    "$err"

lost_line() { grep "WARN lost redis" "$T/w.log"; }
check "the worker says it lost the primary" wait_for 10 lost_line
line=$(lost_line | head -1)
check_contains "...as a failover under way, that it rides" \
    "(primary of cqtest): READONLY: this node was the primary and is a replica now; a failover is under way: the sentinels name the new primary when it ends; reconnecting" \
    "$line"
check_eq "...once" 1 "$(lost_line | wc -l)"
check "its watcher's blocked take was cut or refused, the node named (debug)" grep -Eq \
    "watcher default: redis 127.0.0.1:$PA \(primary of cqtest\): (UNBLOCKED|READONLY)" "$T/w.log"
# The running jobs end while the sentinel still names the demoted node: their outcomes wait
# in the worker. They are looked for 4 s after the jobs ended, as long as before the gate
# (jobs of 3 s, looked for 7 s after they were enqueued), the worker asking the sentinel
# every second meanwhile.
: >"$T/go"
ended() { local id; for id in "$@"; do [ -e "$T/ended.$id" ] || return 1; done; }
# shellcheck disable=SC2086
wait_for 10 ended $running || { echo "FATAL: the jobs did not end once their gate opened"; exit 1; }
sleep 4
# shellcheck disable=SC2086
check "their ends are not written while no primary is known" all_are "$PB" started $running
check "the worker did not exit" kill -0 "$W"

echo "# the sentinel names the new primary; the second worker comes back 1.5 s after the first"
# Held (SIGSTOP) until then, so that the first's recovery passes run while the second's
# lease has run out and its connections are not there: without the grace, one of them took
# the second for dead and its job ran twice, 1 time in 3 when both came back by themselves.
kill -STOP "$W2"
redis-cli -p "$PS" SENTINEL REMOVE cqtest >/dev/null
redis-cli -p "$PS" SENTINEL MONITOR cqtest 127.0.0.1 "$PB" 1 >/dev/null
redis-cli -p "$PS" SENTINEL SET cqtest down-after-milliseconds 600000 >/dev/null
check "the sentinel names it" named "$PB"
check "the first worker is back" wait_for 10 grep -q "redis is back after" "$T/w.log"
# A third worker starts now, on the promoted node, whose INFO does not say when it was
# promoted: the first worker's connection, made a moment ago, says it for it (start_grace).
# Its first connection is no connection made again: without a wait of its own it took the
# second for dead at its first pass, its lease run out during the window, and ran its job
# again.
"$BIN/cworker" -u "$URL" -c 1 --lease 4s --log-level debug c >"$T/w3.log" 2>&1 &
W3=$!
PIDS+=("$W3")
cont_after_back 1
# shellcheck disable=SC2086
check "the jobs that ran across the switchover finish on the new primary" \
    wait_for 20 all_are "$PB" finished $running
ends_logged() { cat "$T/w.log" "$T/w2.log" | grep -c "gate $1 finished"; }
once_each() { local id; for id in "$@"; do [ "$(ends_logged "$id")" = 1 ] || return 1; done; }
# shellcheck disable=SC2086
check "...each once" once_each $running
ran_once() { local id; for id in "$@"; do [ "$(wc -l <"$T/ended.$id")" = 1 ] || return 1; done; }
# shellcheck disable=SC2086
check "...and each ran once" ran_once $running
check "...and neither took the other for dead" \
    bash -c "! grep -E 'recovered [0-9]+ jobs? from dead workers|taken for dead' '$T/w.log' '$T/w2.log'"
check "...nor did the third, started as the first came back" \
    bash -c "! grep -E 'recovered [0-9]+ jobs? from dead workers|its connections to redis are gone' '$T/w3.log'"
check "...which waited, the node a promoted replica (debug)" \
    grep -q "redis has served as a promoted replica (at least) for [0-9]s, and a registered worker is not connected" "$T/w3.log"
kill -TERM "$W3"
wait "$W3"
check_eq "...and exits 0 on SIGTERM" 0 "$?"
after=$("$BIN/cenqueue" -u "$URL" noop)
check "a job enqueued through the sentinel afterwards finishes" wait_for 10 all_are "$PB" finished "$after"
check "nothing is left in flight or queued" \
    [ "$(redis-cli -p "$PB" EVAL "local n = 0 for _, k in ipairs(redis.call('KEYS', 'cq:inflight:*')) do n = n + redis.call('LLEN', k) end return n + redis.call('LLEN', 'cq:queue:default')" 0)" = 0 ]
check "the demoted node has the same (replication)" wait_for 10 all_are "$PA" finished "$after"

echo "# connections dropped every second: recovery still runs, two graces (8 s) at most after"
# Each new connection begins a grace (4 s, the lease); one made again within it makes it
# longer, up to two graces from the first one's start, where it pushed the pass out for as
# long as the drops went on and a dead worker's jobs never came back. The dead one is a
# ghost: registered, a job in flight, no lease, no connection.
graces() { cat "$T/w.log" "$T/w2.log" | grep -c "connected to redis again"; }
g0=$(graces)
( while :; do redis-cli -p "$PB" CLIENT KILL TYPE normal >/dev/null; sleep 1; done ) &
DROP=$!
PIDS+=("$DROP")
graces_since() { [ "$(graces)" -ge $((g0 + $1)) ]; }
wait_for 10 graces_since 2 ||
    { echo "FATAL: the workers did not connect again"; exit 1; }
# In one script, asked again until its reply comes back (the drops cut redis-cli's too).
ghost() {
    [ "$(redis-cli -p "$PB" EVAL "redis.call('SADD', 'cq:workers', 'ghost')
        redis.call('HSET', 'cq:worker:ghost', 'host', 'gone', 'pid', 1, 'queues', 'ghostq',
                   'clients', '999999')
        redis.call('HSET', 'cq:job:g-1', 'status', 'started', 'worker', 'ghost')
        redis.call('DEL', 'cq:inflight:ghost:ghostq')
        redis.call('LPUSH', 'cq:inflight:ghost:ghostq', '{\"id\":\"g-1\"}')
        return 'planted'" 0)" = planted ]
}
wait_for 10 ghost || { echo "FATAL: the ghost worker could not be written"; exit 1; }
t0=$(date +%s%N)
recovered() { [ "$(redis-cli -p "$PB" HGET cq:job:g-1 recovered)" = 1 ]; }
wait_for 16 recovered
rec_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# (asked again for a moment: a drop may cut redis-cli's question)
check "a dead worker's job is recovered while the connections keep dropping (${rec_ms} ms)" \
    wait_for 2 recovered
check "...which they did, a grace each time" graces_since 6
kill "$DROP"
wait "$DROP" 2>/dev/null
redis-cli -p "$PB" DEL cq:queue:ghostq cq:job:g-1 >/dev/null

echo "# an outage that begins during a grace: the worker back first waits a grace afresh"
# Connections dropped once begin a grace (4 s) at once, and a connection made again within
# it makes it longer, up to two graces from the first one's start (above). An outage proper
# (attempts to connect that failed) begins a grace of its own, however long the one before
# went on (keep_connected: grace_since renewed). Here the primary is demoted again 1 s or
# less after the drop, the sentinel naming it for 10 s, longer than two graces; the second
# worker, a job running, comes back 1.5 s after the first. Without the fresh grace the first
# was back past the end of the capped one, ran a recovery pass at once, and took the second
# (its lease run out meanwhile) for dead.
rm -f "$T/go"
late=$("$BIN/cenqueue" -u "$URL" -q b gate)
check "a job runs on the second worker" wait_for 10 all_are "$PB" started "$late"
wait_for 10 in_step "$PB" "$PA" || { echo "FATAL: the replica is behind the primary"; exit 1; }
seen=$(wc -l <"$T/w.log")
seen2=$(wc -l <"$T/w2.log")
backs() { grep -c "redis is back after" "$T/w.log"; }
b0=$(backs)
# The second worker's connections are dropped first, and the first's once it is connected
# again, where one CLIENT KILL dropped both: the second (its one slot busy, no take blocked)
# sees a drop only at its next heartbeat, up to 2 s on, which the demotion then waited for
# within the first's grace. Each begins a grace; the first's is what is tested.
# drop PID: Redis drops the connections of worker PID (found by their ports: ss), in one
# redis-cli.
drop() {
    ss -Htanp | awk -v pb="127.0.0.1:$PB" -v p="pid=$1," \
        '$1 == "ESTAB" && $5 == pb && index($0, p) { print "CLIENT KILL ADDR " $4 }' |
        redis-cli -p "$PB" >/dev/null
}
again_in() { [ "$(grep -c "connected to redis again" "$1")" -gt "$2" ]; }
a2=$(grep -c "connected to redis again" "$T/w2.log")
drop "$W2"
wait_for 10 again_in "$T/w2.log" "$a2" || { echo "FATAL: the second worker did not connect again"; exit 1; }
a1=$(grep -c "connected to redis again" "$T/w.log")
t0=$(date +%s%N)
drop "$W"
wait_for 5 again_in "$T/w.log" "$a1" || { echo "FATAL: the first worker did not connect again"; exit 1; }
redis-cli -p "$PA" REPLICAOF NO ONE >/dev/null
redis-cli -p "$PB" REPLICAOF 127.0.0.1 "$PA" >/dev/null
# Within the grace the drop began (4 s), or a recovery pass ends it first, and the outage
# then begins a grace afresh with or without keep_connected's renewal: nothing is tested.
# Timed from the first worker's connection made again, as its log says (ms), where it was
# timed from before the drop, the test's own steps with it (4.7 s beside another test, of
# which 2.3 s from that connection).
demoted_ms=$(( $(date +%s%N) / 1000000 ))
again_line=$(grep "connected to redis again" "$T/w.log" | sed -n "$((a1 + 1))p")
again_ms=$(date -d "${again_line%% *}" +%s%3N 2>/dev/null) || again_ms=
in_grace() { [ -n "$again_ms" ] && [ $((demoted_ms - again_ms)) -lt 3000 ]; }
check "both workers connected again (a grace each) and the primary demoted within 3 s of the first's (${again_ms:+$((demoted_ms - again_ms)) ms})" \
    in_grace
sleep $(( 10 - ($(date +%s%N) - t0) / 1000000000 ))
kill -STOP "$W2"
redis-cli -p "$PS" SENTINEL REMOVE cqtest >/dev/null
redis-cli -p "$PS" SENTINEL MONITOR cqtest 127.0.0.1 "$PA" 1 >/dev/null
redis-cli -p "$PS" SENTINEL SET cqtest down-after-milliseconds 600000 >/dev/null
check "the sentinel names the node promoted again" named "$PA"
back_again() { [ "$(backs)" -gt "$b0" ]; }
check "the first worker is back (an outage proper: 'redis is back after'), 10 s after the drop" \
    wait_for 10 back_again
cont_after_back $((b0 + 1))
: >"$T/go"
check "the second worker's job finishes" wait_for 20 all_are "$PA" finished "$late"
check_eq "...not recovered" "" "$(redis-cli -p "$PA" HGET "cq:job:$late" recovered)"
check "...run once" ran_once "$late"
{ tail -n +$((seen + 1)) "$T/w.log"; tail -n +$((seen2 + 1)) "$T/w2.log"; } >"$T/since.log"
check "...and neither took the other for dead" \
    bash -c "! grep -E 'recovered [0-9]+ jobs? from dead workers|taken for dead' '$T/since.log'"
check_contains "the first worker waited a grace afresh, a lease (debug)" \
    "the other workers have 4.0s to come back" "$(grep "connected to redis again" "$T/w.log" | tail -1)"

kill -TERM "$W"
wait "$W"
check_eq "the worker exits 0 on SIGTERM" 0 "$?"
finish
