#!/usr/bin/env bash
# test_acl.sh - every role as the Redis ACL user docs/PROTOCOL.md gives it. The users are made
# from the "ACL SETUSER" lines of its "Redis users and permissions" section, read here, so that
# the page and the test cannot drift: producers (cenqueue, cproducer), waiters (a libcq
# program that only waits; cenqueue --wait and cproducer --wait with the producer's and the
# waiter's rights), operators (every cqctl command) and workers (jobs that finish, fail, retry,
# are scheduled, handed back, canceled queued and running, paused, put back on SIGTERM,
# recovered after SIGKILL, reconciled after a lost reply; commands and a plugin). Each works,
# Redis refused nothing but the workers' optional CONFIG GET (ACL LOG), and a line without one
# of its commands makes its role fail, naming the command.
. "$(dirname "$0")/lib.sh"

start_redis_tcp
unset CQ_REDIS_URL   # every program below is given its user's URL; none runs as "default"
start_httpd --generate --size 2000
start_fake_imgur --image-base "$HBASE/"
PLUGIN=$BUILD/examples/libcq_sha256.so
ROOT=$T/root
mkdir -p "$ROOT/images" "$T/bin" "$T/run"
for i in 1 2 3; do head -c $((i * 100)) /dev/urandom >"$ROOT/images/f$i.bin"; done

# ---- the programs the workers run ----
cat >"$T/bin/bad.sh" <<'EOF'
#!/bin/bash
echo "always bad" >&2
exit 3
EOF
# flaky.sh: fails for good the first time it runs for a job, succeeds after that.
cat >"$T/bin/flaky.sh" <<EOF
#!/bin/bash
m="$T/run/flaky.\$CQ_JOB_ID"
if [ ! -e "\$m" ]; then touch "\$m"; echo "first run fails" >&2; exit 3; fi
echo "second run ok"
EOF
# transient.sh: exit 75 (retry) the first time, then succeeds.
cat >"$T/bin/transient.sh" <<EOF
#!/bin/bash
m="$T/run/transient.\$CQ_JOB_ID"
if [ ! -e "\$m" ]; then touch "\$m"; echo "try again" >&2; exit 75; fi
echo "retried ok"
EOF
cat >"$T/bin/mark.sh" <<EOF
#!/bin/bash
touch "$T/run/ran.\$CQ_JOB_ID"
echo "ran \$*"
EOF
cat >"$T/bin/slow.sh" <<'EOF'
#!/bin/bash
sleep "$1"
echo "slept $1"
EOF
chmod +x "$T"/bin/*.sh
CMDS=(--command "bad=$T/bin/bad.sh" --command "flaky=$T/bin/flaky.sh"
      --command "transient=$T/bin/transient.sh" --command "mark=$T/bin/mark.sh"
      --command "slow:SECONDS:number=$T/bin/slow.sh")
LOAD=()
if [ -f "$PLUGIN" ]; then
    LOAD=(--load "$PLUGIN")
else
    echo "     ($PLUGIN not built: the workers run without it; sha256 jobs are skipped)"
fi

# waitids.c: a waiter and nothing else (cq_wait_many on the ids it is given, as a web backend
# that did not enqueue them would), built against the tree's header and libcq.
cat >"$T/waitids.c" <<'EOF'
#include <cq/cq.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    char err[1024];
    size_t i, n = (size_t)argc - 1;
    cq_status **st = calloc(n, sizeof *st);
    cq_client *c = cq_client_new(NULL, NULL, err, sizeof err);
    if (c == NULL || st == NULL) { fprintf(stderr, "waitids: %s\n", c ? "no memory" : err); return 1; }
    if (cq_wait_many(c, (const char *const *)argv + 1, n, 20, st, err, sizeof err) != 0) {
        fprintf(stderr, "waitids: %s\n", err);
        return 1;
    }
    for (i = 0; i < n; i++) {
        printf("%s %s\n", argv[i + 1], cq_status_state_name(cq_status_state(st[i])));
        cq_status_free(st[i]);
    }
    free(st);
    cq_client_free(c);
    return 0;
}
EOF
LIBCQ=$(find "$BUILD" -name 'libcq.so' -print -quit)
CFLAGS_EXTRA=
grep -q '^ENABLE_SANITIZERS:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && CFLAGS_EXTRA="-fsanitize=address,undefined"
cc $CFLAGS_EXTRA -I"$SRC/include" "$T/waitids.c" -o "$T/waitids" "$LIBCQ" \
    -Wl,-rpath,"$(dirname "$LIBCQ")" 2>"$T/cc.log" ||
    { echo "FATAL: cannot build the waiter against $LIBCQ"; cat "$T/cc.log"; exit 1; }

# ---- the users, from docs/PROTOCOL.md ----
doc_line() {   # doc_line ROLE: the page's "ACL SETUSER ROLE ..." line(s)
    sed -n '/^## Redis users and permissions/,/^## How workers move records/p' "$SRC/docs/PROTOCOL.md" |
        grep "^ACL SETUSER $1 "
}
declare -A LINE
for role in producer waiter operator worker; do
    LINE[$role]=$(doc_line "$role")
    check_eq "PROTOCOL.md has one ACL SETUSER line for $role" 1 "$(grep -c . <<<"${LINE[$role]}")"
done
[[ ${LINE[producer]} =~ \>([^ ]+) ]] && PASS=${BASH_REMATCH[1]}
check "the lines give a password" [ -n "${PASS:-}" ] || { finish; exit 1; }
# rules ROLE [DROP]: the rules of ROLE's line (after "ACL SETUSER ROLE"), one a line, without
# the rule DROP.
rules() {
    local w r
    read -ra w <<<"${LINE[$1]}"
    for r in "${w[@]:3}"; do [ "$r" = "${2:-}" ] || printf '%s\n' "$r"; done
}
# mkuser NAME RULE...: (re)create the user NAME with exactly these rules.
mkuser() {
    local name=$1 out
    shift
    rcli ACL DELUSER "$name" >/dev/null
    out=$(rcli ACL SETUSER "$name" "$@" 2>&1)
    [ "$out" = OK ] || { echo "FATAL: ACL SETUSER $name $*: $out"; exit 1; }
}
url() { echo "redis://$1:$PASS@127.0.0.1:$RPORT"; }
for role in producer waiter operator worker; do
    mapfile -t r < <(rules "$role")
    mkuser "$role" "${r[@]}"
done
# A program that enqueues and then waits: the producer's line plus the waiter's channels and
# commands (the page says so).
mapfile -t r < <(rules producer; rules waiter | grep '^[&+]')
mkuser app "${r[@]}"
# The optional right: a worker with CONFIG GET.
mapfile -t r < <(rules worker; echo '+config|get')
mkuser workerconf "${r[@]}"
PU=$(url producer) WU=$(url worker) OU=$(url operator) AU=$(url app)

# The users are limited: a command of no line, a key out of cq:*, a channel out of cq:ended:*.
refused() { local out; out=$(redis-cli -u "$1" "${@:2}" 2>&1); [[ $out == *NOPERM* ]]; }
check "the producer cannot FLUSHALL" refused "$PU" FLUSHALL
check "the producer cannot LPUSH out of cq:*" refused "$PU" LPUSH other:queue:x 1
check "the operator cannot KEYS" refused "$OU" KEYS '*'
check "the worker cannot PUBLISH out of cq:ended:*" refused "$WU" PUBLISH other 1
check "the waiter cannot LPUSH" refused "$(url waiter)" LPUSH cq:queue:default 1
rcli ACL LOG RESET >/dev/null   # from here on, Redis refuses nothing (checked at the end)

P() { "$BIN/cenqueue" -u "$PU" "$@"; }
Q() { "$BIN/cqctl" -u "$OU" "$@"; }
# bad_json FILE...: the FILEs that do not hold one JSON document (one python3 for them all).
bad_json() {
    "$PY" -c 'import json, sys
for f in sys.argv[1:]:
    try:
        json.load(open(f))
    except ValueError:
        print(f)' "$@"
}
final() { local s; s=$(jfield "$1"); [ "$s" = finished ] || [ "$s" = failed ] || [ "$s" = canceled ]; }
all_final() { local id; for id in "$@"; do final "$id" || return 1; done; }
WORKER_OPTS=(--download-root "$ROOT" --shutdown-timeout 1s --retry-base 0.2s)
stop_worker() { kill -TERM "$1"; wait "$1"; }

echo "# a worker as 'worker' (without CONFIG GET)"
start_registered "$T/w1.log" -u "$WU" -c 4 "${LOAD[@]}" "${CMDS[@]}" default low
W1=$WPID
rcli LPUSH cq:queue:default 'not json' >/dev/null

echo "# producers as 'producer'"
ids=()
id=$(P noop 2>"$T/err"); check_eq "cenqueue: exit 0" 0 "$?"; ids+=("$id")
check_eq "cenqueue: no warning (a live worker takes from default)" "" "$(cat "$T/err")"
check_eq "cenqueue: the job is queued or taken" 1 "$(rcli EXISTS "cq:job:$id")"
ids+=("$(P download_link images "$HBASE/a.jpg")")
ids+=("$(P --retries 2 transient)")
ids+=("$(P -q low mark low)")
if [ ${#LOAD[@]} -gt 0 ]; then ids+=("$(P sha256 images/f1.bin)"); fi
printf 'noop 1\nmark "a b"\n# a comment\nslow 0.1\n' | P --stdin >"$T/stdin.ids" 2>"$T/err"
check_eq "cenqueue --stdin: 3 ids" 3 "$(wc -l <"$T/stdin.ids")"
mapfile -t -O "${#ids[@]}" ids <"$T/stdin.ids"
later=$(P --in 1s mark later)
check_eq "cenqueue --in: scheduled" scheduled "$(jfield "$later")"
ids+=("$later")
ids+=("$(P --at 1 noop)")
far=$(P --at $(( $(date +%s) + 3600 )) noop)
check_eq "cenqueue --at: scheduled" scheduled "$(jfield "$far")"
flaky=$(P --retries 0 flaky)
unknown=$(P --no-check -q low nosuchfunc a)
check_eq "cenqueue --no-check: exit 0" 0 "$?"
P --id acl-reused mark first >/dev/null
wait_for 10 jobs_are finished acl-reused
P --id acl-reused mark again >/dev/null
check_eq "cenqueue --id used before: exit 0" 0 "$?"
check "...and it runs again" wait_for 10 jobs_are finished acl-reused
check_eq "...with the new result" "ran again" "$(jfield acl-reused result)"
P nosuch 2>"$T/err"
check_contains "cenqueue refuses an unknown function, listing the known ones" \
    "unknown function 'nosuch' (known: " "$(cat "$T/err")"
P --list-functions >"$T/list"
check_eq "cenqueue --list-functions: exit 0" 0 "$?"
check_contains "...lists the command functions and who serves them" "served now by" "$(grep -A1 '^mark' "$T/list")"
IMGUR_CLIENT_ID=test-client "$BIN/cproducer" -u "$PU" --api-url "$API" --dir images -q default \
    >"$T/cp.out" 2>"$T/cp.err"
check_eq "cproducer: exit 0" 0 "$?" || cat "$T/cp.err"
check_eq "cproducer: 16 jobs" "enqueued 16 jobs to queue default" "$(cat "$T/cp.out")"
check "all the producer's jobs finish" wait_for 20 all_final "${ids[@]}" acl-reused
check "...every one of them finished" jobs_are finished "${ids[@]}"
check_eq "the retried job ran twice" 2 "$(jfield "${ids[2]}" attempts)"
check_eq "the flaky job failed" failed "$(jfield "$flaky")"
check "the job of an unknown function failed" wait_for 5 jobs_are failed "$unknown"
check_eq "the bad record went to the dead list" "not json" "$(rcli LRANGE cq:dead 0 -1)"

echo "# waiters as 'waiter', and as 'app' (producer + waiter)"
s=$(P slow 0.5)
CQ_REDIS_URL=$(url waiter) "$T/waitids" "${ids[0]}" "$flaky" "$s" >"$T/wait.out" 2>"$T/wait.err"
check_eq "a waiter alone (cq_wait_many): exit 0" 0 "$?" || cat "$T/wait.err"
check_eq "...sees each end, the one that ended while it waited too" \
    "${ids[0]} finished|$flaky failed|$s finished" "$(paste -sd'|' "$T/wait.out")"
out=$("$BIN/cenqueue" -u "$AU" --wait slow 0.3 2>"$T/err"); rc=$?
check_eq "cenqueue --wait: exit 0" 0 "$rc" || cat "$T/err"
check_contains "...prints the end" "finished slept 0.3" "$out"
out=$("$BIN/cenqueue" -u "$AU" --wait bad x 2>"$T/err"); rc=$?
check_eq "cenqueue --wait on a failing job: exit 1" 1 "$rc"
check_contains "...prints the failure" "failed" "$out"
seq 1 20 | sed 's/^/slow 0.0/' | "$BIN/cenqueue" -u "$AU" --stdin --wait --quiet 2>"$T/err"
check_eq "cenqueue --stdin --wait, 20 jobs: exit 0" 0 "$?" || cat "$T/err"
IMGUR_CLIENT_ID=test-client "$BIN/cproducer" -u "$AU" --api-url "$API" --dir waited -q default \
    --wait >"$T/cp.out" 2>"$T/cp.err"
check_eq "cproducer --wait: exit 0" 0 "$?" || cat "$T/cp.err"
check_contains "...all 16 finished" "16 jobs: 16 finished" "$(cat "$T/cp.out")"

echo "# operators as 'operator': every cqctl command"
rcli LPUSH cq:dead 'more junk' >/dev/null
k=0
for c in info workers "jobs default" "jobs failed" "jobs scheduled" "jobs dead" "job $flaky" metrics; do
    read -ra a <<<"$c"
    k=$((k + 1))
    check "cqctl $c: exit 0" Q "${a[@]}"
    Q "${a[@]}" --json >"$T/json.$k"
    check_eq "cqctl $c --json: exit 0" 0 "$?"
done
check_eq "...every --json output parses" "" "$(bad_json "$T"/json.*)"
out=$(Q wait "$flaky" 2>"$T/wait.err"); rc=$?
check_eq "cqctl wait of the failed flaky job: exit 1 (failed)" 1 "$rc"
check "...its line, through SUBSCRIBE" grep -q "^$flaky failed" <<<"$out" || cat "$T/wait.err"
check_contains "cqctl workers: the worker, live" " live" "$(Q workers)"
check_contains "cqctl jobs failed: the flaky job" "$flaky" "$(Q jobs failed)"
check_contains "cqctl jobs scheduled: the far one" "$far" "$(Q jobs scheduled)"
check_contains "cqctl requeue" "requeued $flaky" "$(Q requeue "$flaky")"
check "...the requeued job finishes" wait_for 10 jobs_are finished "$flaky"
check_contains "cqctl requeue --all-failed" "requeued" "$(Q requeue --all-failed --json)"
check_contains "cqctl cancel of a scheduled job" "canceled $far (it was scheduled)" "$(Q cancel "$far")"
check_eq "...its record left the scheduled set" 0 "$(rcli ZCARD cq:scheduled)"
long=$(P slow 30)
wait_for 10 jobs_are started "$long"
check_contains "cqctl cancel of a running job" "its worker stops it" "$(Q cancel "$long")"
check "...the worker stops it" wait_for 5 jobs_are canceled "$long"
check_contains "cqctl pause" "paused queue low" "$(Q pause low)"
sleep 1.2   # workers see a pause within 1 s
held=$(P -q low mark held)
dropped=$(P -q low mark dropped)
check_contains "cqctl cancel of a queued job" "canceled $dropped (it was queued)" "$(Q cancel "$dropped")"
sleep 1
check_eq "a paused queue's job stays queued" queued "$(jfield "$held")"
check_contains "cqctl info shows the pause" paused "$(Q info | awk '$1 == "low"')"
check_contains "cqctl resume" "resumed queue low" "$(Q resume low)"
check "...its job runs" wait_for 5 jobs_are finished "$held"
check "the canceled queued job never ran" [ ! -e "$T/run/ran.$dropped" ]
check_eq "...and was dropped from its queue" 0 "$(rcli LLEN cq:queue:low)"
check_contains "cqctl delete" "deleted ${ids[0]}" "$(Q delete "${ids[0]}")"
check_eq "...its status is gone" 0 "$(rcli EXISTS "cq:job:${ids[0]}")"
seq 1 50 | sed 's/^/noop /' | P -q bulk --stdin >/dev/null 2>&1
check_contains "cqctl empty" "50 jobs removed" "$(Q empty bulk)"
check_contains "cqctl forget" "forgot queue bulk" "$(Q forget bulk)"
# Stopped once 3 pictures are seen, where a run of 1 s counted them: on a loaded machine
# (ASan's start) fewer came in that time. One picture and an end (a refused read), or a
# redraw that stops, still fail.
pictures() { [ "$(grep -c '^cq at' "$T/watch.out")" -ge "$1" ]; }
"$BIN/cqctl" -u "$OU" info --watch --interval 200ms >"$T/watch.out" &
wpid=$!
check "cqctl info --watch: a picture per interval (3 seen)" wait_for 20 pictures 3
kill -TERM "$wpid"
wait "$wpid"

echo "# workers as 'worker': hand-offs, SIGTERM, SIGKILL, a lost reply, CONFIG GET"
# A worker without the function hands its job back while a live worker of the job's queue
# has it: W3, busy with a long job here, so that W2 takes this one first.
start_registered "$T/w3.log" -u "$WU" -c 1 "${CMDS[@]}" ho
W3=$WPID
busy=$(P -q ho sleep 30)
wait_for 10 jobs_are started "$busy"
start_registered "$T/w2.log" -u "$WU" -c 2 ho
W2=$WPID
ho=$(P -q ho mark handed)
check "a worker without the function hands the job back" wait_for 5 grep -q 'handed back' "$T/w2.log"
Q cancel "$busy" >/dev/null
# Each time the job is due again (a second after a hand-back) the two workers race for it;
# the one without the function holds off its takes a second after one that brought only
# hand-backs, which tilts the race, but does not decide it.
check "...and one with it runs it" wait_for 30 jobs_are finished "$ho"
stop_worker "$W2"; check_eq "the worker stops cleanly on SIGTERM" 0 "$?"
stop_worker "$W3"
# A SIGTERM with a job running: it goes back to its queue.
start_registered "$T/w4.log" -u "$WU" -c 2 "${CMDS[@]}" term
W4=$WPID
t=$(P -q term slow 30)
wait_for 10 jobs_are started "$t"
stop_worker "$W4"; check_eq "SIGTERM with a job running: exit 0" 0 "$?"
check_eq "...the job is back in its queue" "queued 1" "$(jfield "$t") $(rcli LLEN cq:queue:term)"
# A SIGKILL: the live worker recovers the job once the dead one's lease is gone (deleted
# here rather than waited for).
start_registered "$T/w5.log" -u "$WU" -c 2 "${CMDS[@]}" term
W5=$WPID
wait_for 10 jobs_are started "$t"
dead=$(jfield "$t" worker)
kill -KILL "$W5"; wait "$W5" 2>/dev/null
rcli DEL "cq:worker:$dead:lease" >/dev/null
check "a SIGKILLed worker's job is recovered" wait_for 5 jobs_are queued "$t"
check_eq "...counted" 1 "$(jfield "$t" recovered)"
check_eq "...and the dead worker deregistered" 0 "$(rcli SISMEMBER cq:workers "$dead")"
Q cancel "$t" >/dev/null
# A take whose reply is lost (tests/fixtures/cutproxy.py): the worker reconciles. The take is
# the worker's only command that names cq:paused.
pf=$T/proxy.port
"$PY" "$SRC/tests/fixtures/cutproxy.py" --to "$RSOCK" --port-file "$pf" --marker cq:paused \
    --arm "$T/arm" 2>>"$T/proxy.log" &
PIDS+=("$!")
wait_for 10 test -s "$pf" || { echo "FATAL: cutproxy.py did not start"; exit 1; }
blocked=$(rcli INFO clients | sed -n 's/^blocked_clients:\([0-9]*\).*/\1/p')
start_registered "$T/w6.log" -u "redis://worker:$PASS@127.0.0.1:$(cat "$pf")" lost
W6=$WPID
wait_for 10 watching $((blocked + 1))
touch "$T/arm"
rcli LPUSH cq:queue:lost '{"id":"acl-lost","func":"noop","args":[]}' >/dev/null
check "a job whose take reply was lost runs" wait_for 10 jobs_are finished acl-lost
check_contains "...put back by the reconcile script" "put back 1 job that this worker's in-flight lists held and it did not (taken when a reply from redis was lost" "$(cat "$T/w6.log")"
stop_worker "$W6"
# --burst, --result-ttl 0; and CONFIG GET, the optional right.
b=$(P -q burst mark b 2>/dev/null)
"$BIN/cworker" -u "$(url workerconf)" --burst --result-ttl 0 "${CMDS[@]}" burst >"$T/w7.log" 2>&1
check_eq "cworker --burst as worker + CONFIG GET: exit 0" 0 "$?"
check_eq "...--result-ttl 0 dropped the status" 0 "$(rcli EXISTS "cq:job:$b")"
check_contains "...and with CONFIG GET it checks the Redis configuration" "redis has appendonly no" "$(cat "$T/w7.log")"
check_eq "without CONFIG GET the check is skipped, silently" "" "$(grep -i 'appendonly\|maxmemory\|config' "$T/w1.log")"
stop_worker "$W1"; check_eq "the first worker stops cleanly" 0 "$?"
check_eq "no worker logged an error" "" "$(grep -h ' ERROR \|NOPERM' "$T"/w[1-7].log)"

# ACL LOG: one line a refusal, "USER REASON OBJECT".
refusals() {
    rcli ACL LOG 1000 | awk 'p == "reason" { r = $0 } p == "object" { o = $0 }
        p == "username" { u = $0 } p == "client-info" { print u, r, o } { p = $0 }' | sort -u
}
if [ -n "${CQ_TEST_REDIS_MODULE:-}" ]; then
    # cq's module: the worker's line leaves CQ.APPLY1 out, so its applies went as the script
    # (the worker asks at each connect, which the ACL LOG shows); with +cq.apply1 +cq.take1, as the
    # page says, through the module, the ACL checking each command it runs. The producers'
    # lines leave CQ.ENQUEUE1 out: each connection that enqueued asked once, and was refused.
    check_eq "Redis refused nothing but the workers' CONFIG GET, their CQ.APPLY1 probe and the producers' CQ.ENQUEUE1 question" \
        "$(printf 'app command cq.enqueue1\nproducer command cq.enqueue1\nworker command config|get\nworker command cq.apply1\nworkerconf command cq.apply1')" \
        "$(refusals | grep -v '^workermod ')"
    check_eq "...and the worker's applies went as the script" "" "$(grep -h 'cq.apply1' "$T"/w[1-7].log)"
    mapfile -t r < <(rules worker)
    mkuser workermod "${r[@]}" +cq.apply1 +cq.take1
    m1=$(P -q modq noop 2>/dev/null) m2=$(P -q modq bad x 2>/dev/null)
    "$BIN/cworker" -u "$(url workermod)" --burst "${CMDS[@]}" modq >"$T/w8.log" 2>&1
    check_eq "a worker with +cq.apply1 +cq.take1: --burst, exit 0" 0 "$?"
    check_contains "...its outcomes through the module" "outcomes through cq's Redis module" "$(cat "$T/w8.log")"
    check_eq "...a job finished and one failed" "finished failed" "$(jfield "$m1") $(jfield "$m2")"
    check_eq "...and Redis refused it nothing but CONFIG GET" "workermod command config|get" \
        "$(refusals | grep '^workermod ')"
    # A line without LRANGE: the module's apply cannot match a batch's ends at the in-flight
    # list's tail, and takes each out with an LREM instead, as the script does.
    mapfile -t r < <(rules worker +lrange)
    mkuser workernolr "${r[@]}" +cq.apply1 +cq.take1
    ids=()
    for i in $(seq 20); do ids+=("$(P -q modq noop 2>/dev/null)"); done
    "$BIN/cworker" -u "$(url workernolr)" --burst -c 8 "${CMDS[@]}" modq >"$T/w9.log" 2>&1
    check_eq "a worker with the module but without LRANGE: --burst, exit 0" 0 "$?"
    check "...its 20 jobs finished" all_final "${ids[@]}"
    check_eq "...each once" 20 "$(for id in "${ids[@]}"; do jfield "$id"; done | grep -c '^finished$')"
    check_eq "...nothing left in flight" "" "$(rcli --scan --pattern 'cq:inflight:*:modq')"
    check_eq "...Redis refused it LRANGE (and CONFIG GET), nothing else" \
        "$(printf 'workernolr command config|get\nworkernolr command lrange')" \
        "$(refusals | grep '^workernolr ')"
    # A producer's bulk enqueue (one call of 300 jobs): with +cq.enqueue1, as the page
    # says, through the module, the ACL checking each key it writes; without, the
    # transactions, after the question refused once.
    mapfile -t r < <(rules producer)
    mkuser producermod "${r[@]}" +cq.enqueue1
    rcli CONFIG RESETSTAT >/dev/null
    seq 1 300 | sed 's/^/noop /' | "$BIN/cenqueue" -u "$(url producermod)" -q bulkmod --stdin \
        >"$T/bulkmod.ids" 2>"$T/err"
    check_eq "a producer with +cq.enqueue1: 300 jobs at once, exit 0" 0 "$?" || cat "$T/err"
    check_eq "...300 in the queue" 300 "$(rcli LLEN cq:queue:bulkmod)"
    check_eq "...through CQ.ENQUEUE1: the question (a failed call), then one call" \
        "cmdstat_cq.enqueue1:calls=2,rejected_calls=0,failed_calls=1" \
        "$(rcli INFO commandstats | tr -d '\r' | sed -n 's/usec=[^,]*,usec_per_call=[^,]*,//; /^cmdstat_cq.enqueue1:/p')"
    check_eq "...each with its status hash" "queued bulkmod noop" \
        "$(rcli HMGET "cq:job:$(tail -1 "$T/bulkmod.ids")" status queue func | tr '\n' ' ' | sed 's/ $//')"
    check_eq "...and Redis refused it nothing" "" "$(refusals | grep '^producermod ')"
    rcli ACL LOG RESET >/dev/null
    seq 1 300 | sed 's/^/noop /' | P -q bulknomod --stdin >/dev/null 2>"$T/err"
    check_eq "the producer's line (no +cq.enqueue1): 300 jobs at once, exit 0" 0 "$?" || cat "$T/err"
    check_eq "...300 in the queue" 300 "$(rcli LLEN cq:queue:bulknomod)"
    check_eq "...Redis refused it the question, once" "producer command cq.enqueue1" \
        "$(refusals | grep '^producer ')"
    check_eq "...once: one question for a connection's 300 jobs" 1 \
        "$(rcli ACL LOG 1000 | awk 'p == "count" { c = $0 } p == "object" { o = $0 }
            p == "username" && $0 == "producer" && o == "cq.enqueue1" { print c } { p = $0 }')"
else
    check_eq "Redis refused nothing but the worker's CONFIG GET" "worker command config|get" "$(refusals)"
fi

echo "# a line without one of its commands fails its role, naming it"
rcli ACL LOG RESET >/dev/null
# without ROLE RULE USER: the user USER made of ROLE's line without RULE.
without() { local r; mapfile -t r < <(rules "$1" "$2"); mkuser "$3" "${r[@]}"; }
# names_it OUT CMD: OUT is Redis's refusal of CMD. Inside a script Redis 7.0 does not name the
# command ("The user executing the script can't run this command"): ACL LOG does, below.
names_it() { [[ $1 == *"'$2' command"* || $1 == *"script can't run this command"* ]]; }
logged() { refusals | grep -qx "$1 command $2"; }   # logged USER CMD: ACL LOG has it
n=$(rcli LLEN cq:queue:default)
without producer +lpush p1
out=$("$BIN/cenqueue" -u "$(url p1)" noop 2>&1); rc=$?
check_eq "producer without LPUSH: cenqueue exits 1" 1 "$rc"
check_contains "...naming it" "NOPERM this user has no permissions to run the 'lpush' command" "$out"
check_eq "...and nothing of the transaction is written" "$n" "$(rcli LLEN cq:queue:default)"
without producer +type p2
out=$(IMGUR_CLIENT_ID=test-client "$BIN/cproducer" -u "$(url p2)" --api-url "$API" -q none 2>&1); rc=$?
check_eq "producer without TYPE: cproducer exits 1" 1 "$rc"
check_contains "...naming it" "'type' command" "$out"
without producer +sismember p3
"$BIN/cenqueue" -u "$(url p3)" -q nobody --id acl-nosism noop >/dev/null 2>&1; rc=$?
check_eq "producer without SISMEMBER (a line from before cq used it): cenqueue --id exits 0" 0 "$rc"
check_eq "...the job queued, its cancel unchecked" queued "$(jfield acl-nosism)"
# An id whose job failed, enqueued again, leaves the failed set (ZREM); a line without
# +zrem still enqueues it, and the entry stays.
rcli HSET cq:job:acl-refail status failed >/dev/null
rcli ZADD cq:failed 1 acl-refail >/dev/null
P -q nobody --id acl-refail noop >/dev/null 2>&1
check_eq "producer: an id that failed, enqueued again: out of the failed set" "" \
    "$(rcli ZSCORE cq:failed acl-refail)"
rcli HSET cq:job:acl-refail status failed >/dev/null
rcli ZADD cq:failed 1 acl-refail >/dev/null
without producer +zrem p4
"$BIN/cenqueue" -u "$(url p4)" -q nobody --id acl-refail noop >/dev/null 2>&1; rc=$?
check_eq "producer without ZREM (a line from before cq used it): cenqueue --id exits 0" 0 "$rc"
check_eq "...the job queued, its failed-set entry left" "queued 1" \
    "$(jfield acl-refail) $(rcli ZSCORE cq:failed acl-refail)"
rcli ZREM cq:failed acl-refail >/dev/null
without waiter +subscribe w1
mapfile -t r < <(rules producer; rules waiter +subscribe | grep '^[&+]')
mkuser a1 "${r[@]}"
id=$(P noop 2>/dev/null)
out=$(CQ_REDIS_URL=$(url w1) "$T/waitids" "$id" 2>&1); rc=$?
check_eq "waiter without SUBSCRIBE: cq_wait_many fails" 1 "$rc"
check_contains "...naming it" "'subscribe' command" "$out"
out=$("$BIN/cenqueue" -u "$(url a1)" --wait noop 2>&1); rc=$?
check_eq "producer + waiter without SUBSCRIBE: cenqueue --wait exits 1" 1 "$rc"
check_contains "...naming it" "'subscribe' command" "$out"
without waiter '&cq:ended:*' w2
out=$(CQ_REDIS_URL=$(url w2) "$T/waitids" "$id" 2>&1); rc=$?
check_eq "waiter without the channels: cq_wait_many fails" 1 "$rc"
check_contains "...saying so" "no permissions to access one of the channels" "$out"
without operator +eval o1
id=$(P -q nobody noop 2>/dev/null)
out=$("$BIN/cqctl" -u "$(url o1)" cancel "$id" 2>&1); rc=$?
check_eq "operator without EVAL: cqctl cancel exits 1" 1 "$rc"
check_contains "...naming it" "'eval' command" "$out"
without operator +subscribe o6
out=$("$BIN/cqctl" -u "$(url o6)" wait "$id" 2>&1); rc=$?
check_eq "operator without SUBSCRIBE: cqctl wait exits 1" 1 "$rc"
check_contains "...naming it" "'subscribe' command" "$out"
without operator +hget o2
out=$("$BIN/cqctl" -u "$(url o2)" cancel "$id" 2>&1); rc=$?
check_eq "operator without HGET (run by the cancel script): cqctl cancel exits 1" 1 "$rc"
check "...saying Redis refused it" names_it "$out" hget || echo "     $out"
check "...ACL LOG names HGET" logged o2 hget
check_eq "...and the job is not canceled" queued "$(jfield "$id")"
without operator +llen o3
out=$("$BIN/cqctl" -u "$(url o3)" jobs nobody 2>&1); rc=$?
check_eq "operator without LLEN: cqctl jobs exits 1" 1 "$rc"
check_contains "...naming it" "'llen' command" "$out"
# A key's refusal is said as any of Redis's: the key, the server, and the fix (admin.c's
# key_error), where it gave Redis's words after the key alone.
without operator +hgetall o4
out=$("$BIN/cqctl" -u "$(url o4)" job "$id" 2>&1); rc=$?
check_eq "operator without HGETALL: cqctl job exits 1" 1 "$rc"
check_contains "...naming the job's key, Redis and the fix" \
    "cqctl: job $id: key cq:job:$id: redis 127.0.0.1:$RPORT: NOPERM this user has no permissions to run the 'hgetall' command; this ACL user may not do that" \
    "$out"
# A warning has the room of an error for that line: a worker's hash refused, the worker
# named by a long host's name (it was cut at 255 bytes, in the middle of the fix).
lw=ip-10-123-45-67.eu-west-1.compute.internal.123456.0123456789ab
rcli SADD cq:workers "$lw" >/dev/null
rcli HSET "cq:worker:$lw" host ip-10-123-45-67.eu-west-1.compute.internal >/dev/null
without operator +hmget o5
out=$("$BIN/cqctl" -u "$(url o5)" workers 2>&1); rc=$?
check_eq "operator without HMGET: cqctl workers exits 0" 0 "$rc"
check_contains "...warning of the worker whose hash it cannot read, the whole line" \
    "warning: worker $lw: key cq:worker:$lw: redis 127.0.0.1:$RPORT: NOPERM this user has no permissions to run the 'hmget' command; this ACL user may not do that: docs/PROTOCOL.md gives the ACL SETUSER line of each role" \
    "$out"
rcli SREM cq:workers "$lw" >/dev/null
rcli DEL "cq:worker:$lw" >/dev/null
# The cancel of a running job asks whether its worker is gone: a refusal there was read as a
# live worker, 'canceling ID: it is running; its worker stops it', exit 0.
without operator +exists o6
rcli HSET cq:job:acl-running status started worker "$lw" queue default >/dev/null
out=$("$BIN/cqctl" -u "$(url o6)" cancel acl-running 2>&1); rc=$?
check_eq "operator without EXISTS: cqctl cancel of a running job exits 1" 1 "$rc"
check_eq "...in one line" 1 "$(wc -l <<<"$out")"
check_contains "...saying the cancel is asked, and what Redis refused" \
    "cqctl: job acl-running: its cancel is asked (it is running), but whether its worker is there to stop it could not be told: worker $lw's lease: key cq:worker:$lw:lease: redis 127.0.0.1:$RPORT: NOPERM this user has no permissions to run the 'exists' command; this ACL user may not do that: docs/PROTOCOL.md gives the ACL SETUSER line of each role" \
    "$out"
check_eq "...and it is asked" 1 "$(rcli SISMEMBER cq:cancel acl-running)"
rcli SREM cq:cancel acl-running >/dev/null
# The same where the lease stands and CLIENT LIST is refused (a worker that died before its
# lease expired cannot be told from a live one): it was 'its worker stops it', exit 0.
without operator '+client|list' o7
rcli SET "cq:worker:$lw:lease" 1 EX 60 >/dev/null
rcli HSET "cq:worker:$lw" clients 999999 >/dev/null
out=$("$BIN/cqctl" -u "$(url o7)" cancel acl-running 2>&1); rc=$?
check_eq "operator without CLIENT LIST: cqctl cancel of a running job exits 1" 1 "$rc"
check_contains "...saying the cancel is asked, and what Redis refused" \
    "cqctl: job acl-running: its cancel is asked (it is running), but whether its worker is there to stop it could not be told: CLIENT LIST: redis 127.0.0.1:$RPORT: NOPERM" \
    "$out"
check_eq "...and it is asked" 1 "$(rcli SISMEMBER cq:cancel acl-running)"
rcli DEL cq:job:acl-running "cq:worker:$lw:lease" "cq:worker:$lw" >/dev/null
rcli SREM cq:cancel acl-running >/dev/null
# A failed id whose status expired leaves the failed set by a script (EXISTS, then ZREM): a
# refusal inside it was told as the status gone ('no status ... expired'), Redis's words lost.
without operator +exists o8
rcli ZADD cq:failed 1 acl-gone >/dev/null
out=$("$BIN/cqctl" -u "$(url o8)" requeue --all-failed 2>&1)
check_contains "operator without EXISTS: requeue --all-failed of an id whose status is gone names the refusal" \
    "job acl-gone: its status is gone, and leaving the failed set: redis 127.0.0.1:$RPORT: " "$out"
check "...Redis's words" names_it "$out" exists || echo "     $out"
check_eq "...and the id stays in the failed set" 1 "$(rcli ZSCORE cq:failed acl-gone)"
rcli ZREM cq:failed acl-gone >/dev/null
without worker +multi k1
out=$("$BIN/cworker" -u "$(url k1)" --burst 2>&1); rc=$?
check_eq "worker without MULTI: cworker exits 1" 1 "$rc"
check_contains "...naming it" "'multi' command" "$out"
without worker +rpop k2
id=$(P -q k2 noop 2>/dev/null)
out=$("$BIN/cworker" -u "$(url k2)" --burst k2 2>&1)
check "worker without RPOP (run by the take script): it says Redis refused it" names_it "$out" rpop || echo "     $out"
check "...ACL LOG names RPOP" logged k2 rpop
check_eq "...and the job is not taken" queued "$(jfield "$id")"
# A worker that may not LPUSH to its in-flight list: each record its take popped goes back to
# the queue's tail, and the worker says so in one line naming the queue, the command and the
# cause, where cq's module handed the record on as taken and in no list (the job ran
# untracked, its status queued for good) and the take script failed with it lost. Through
# the module where Redis has it (+cq.apply1 +cq.take1), else the script.
mapfile -t r < <(rules worker +lpush
                 [ -z "${CQ_TEST_REDIS_MODULE:-}" ] || printf '%s\n' +cq.apply1 +cq.take1)
mkuser k4 "${r[@]}"
id=$(P -q k4 noop 2>/dev/null)
"$BIN/cworker" -u "$(url k4)" --burst k4 >"$T/k4.log" 2>&1
check_eq "worker without LPUSH: --burst, exit 0" 0 "$?"
check_eq "...one line naming the queue, the command and the cause" 1 \
    "$(grep -c "queue 'k4': cannot take from it: LPUSH cq:inflight:[^ ]*:k4: .*can't run this command.* (1 record left in cq:queue:k4)" "$T/k4.log")"
check_eq "...the job still queued, in its queue, nothing in flight" "queued 1 " \
    "$(jfield "$id") $(rcli LLEN cq:queue:k4) $(rcli --scan --pattern 'cq:inflight:*:k4')"
# A worker that may not run CLIENT LIST (the line allows it): it works on, finding dead
# workers by their leases alone, and says so once, naming the refusal and the option.
without worker '+client|list' k3
"$BIN/cworker" -u "$(url k3)" k3 >"$T/k3.log" 2>&1 &
K3=$!
wait_for 10 grep -q 'refuses CLIENT LIST' "$T/k3.log"
kill -TERM "$K3"
wait "$K3"
check_contains "worker without CLIENT LIST: it says what Redis refused" \
    "redis refuses CLIENT LIST (NOPERM" "$(cat "$T/k3.log")"
check_contains "...and which option decides" "come back only when its lease (--lease) expires" \
    "$(cat "$T/k3.log")"
# A database other than 0 in the URL: SELECT, which the page says to add.
out=$("$BIN/cenqueue" -u "$PU/1" noop 2>&1); rc=$?
check_eq "a URL with /1 as the producer: cenqueue exits 1" 1 "$rc"
check_contains "...naming SELECT" "'select' command" "$out"
mapfile -t r < <(rules producer; echo +select)
mkuser p3 "${r[@]}"
"$BIN/cenqueue" -u "$(url p3)/1" noop >/dev/null 2>&1
check_eq "...with +select added it enqueues to database 1" 1 "$(rcli -n 1 LLEN cq:queue:default)"

[ "$FAILS" -eq 0 ] || { for l in "$T"/w*.log "$T"/k*.log; do echo "---- $l"; tail -20 "$l"; done; }
finish
