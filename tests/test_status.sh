#!/usr/bin/env bash
# test_status.sh - statuses always resolve: every path a job can take, with one cworker
# already running before anything is enqueued, ends in a status a poller sees, and each
# status carries the fields docs/PROTOCOL.md lists for it. The paths: PROTOCOL.md's own
# redis-cli enqueue and schedule lines run as written, oversize records (with and without an
# id), a record without args, a transient failure then success, a job refused before it ran,
# a job handed back by a worker without its function, a worker SIGKILLed mid-job (recovery),
# a requeue, cancels of a queued, a retrying and a running job, and a status that expired read
# like one that never existed. Fields of an earlier attempt must not outlive the end.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/bin" "$T/run"
ROOT=$T/root
DOC=$SRC/docs/PROTOCOL.md

# ---- the programs the worker runs ----
# flaky.sh: fails for good (exit 3) the first time it runs for a job, succeeds after that.
cat >"$T/bin/flaky.sh" <<EOF
#!/bin/bash
m="$T/run/flaky.\$CQ_JOB_ID"
if [ ! -e "\$m" ]; then touch "\$m"; echo "first run fails" >&2; exit 3; fi
echo "second run ok, attempt \$CQ_JOB_ATTEMPT"
EOF
# mark.sh: leaves a file named for the job, so that the test can tell whether it ran.
cat >"$T/bin/mark.sh" <<EOF
#!/bin/bash
touch "$T/run/ran.\$CQ_JOB_ID"
echo ran
EOF
chmod +x "$T"/bin/*.sh

ctl() { "$BIN/cqctl" "$@"; }
ended() { local s; s=$(jfield "$1"); [ "$s" = finished ] || [ "$s" = failed ] || [ "$s" = canceled ]; }
# all_ended ID...: as ended for each, in one script (a redis-cli a job took seconds).
all_ended() { [ "$(jfields_of status "$@" | grep -cxE 'finished|failed|canceled')" = $# ]; }
lacks() { [ "$(rcli HEXISTS "cq:job:$1" "$2")" = 0 ]; }   # lacks ID FIELD
# has_all ID FIELD...: the job's hash has every FIELD, non-empty.
has_all() {
    local id=$1
    shift
    jobs_lacking "$*" "$id" | sed 's/^/     /' >&2
}
in_failed() { [ -n "$(rcli ZSCORE cq:failed "$1")" ]; }
# ge A B: A >= B, both decimal numbers.
# (awk's numbers are doubles, as python3's floats; a python3 start is much slower)
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
now() { date +%s.%N; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
dead_len() { rcli LLEN cq:dead; }

start_redis
start_httpd --generate --size 5000

# ---- the worker, running before anything is enqueued ----
# Its lease (60 s) outlasts the freeze below, however long a loaded machine makes that.
"$BIN/cworker" -c 4 --shutdown-timeout 1s --retry-base 1s --lease 60s --download-root "$ROOT" \
    --command "flaky=$T/bin/flaky.sh" --command "mark=$T/bin/mark.sh" >"$T/w.log" 2>&1 &
WPID=$!
PIDS+=("$WPID")
wait_for 30 registered_pid "$WPID" || { echo "FATAL: worker did not register"; cat "$T/w.log"; exit 1; }
WID=$(wid_of "$WPID")
wait_for 10 watching 1   # idle: its watcher blocks on the queue, so it sees a record at once

# ==== 6 (started first, checked later): a worker SIGKILLed while it runs a job ====
# The job must land on the victim, not on the worker above: that one is frozen (SIGSTOP,
# a second or two, well inside its 60 s lease; a watcher takes nothing) while the victim
# takes it.
kill -STOP "$WPID"
"$BIN/cworker" -c 1 --download-root "$ROOT" >"$T/victim.log" 2>&1 &
VPID=$!
PIDS+=("$VPID")
wait_for 30 registered_pid "$VPID" || { echo "FATAL: victim did not register"; cat "$T/victim.log"; exit 1; }
VWID=$(wid_of "$VPID")
"$BIN/cenqueue" --id rec-1 sleep 3 >/dev/null
started_by() { [ "$(jfield "$1")" = started ] && [ "$(jfield "$1" worker)" = "$2" ]; }
check "recovery: the victim (-c 1) started the sleep 3" wait_for 30 started_by rec-1 "$VWID"
# Read before the worker that recovers it goes on: no one else can have moved the job yet.
kill -KILL "$VPID"
wait "$VPID" 2>/dev/null
KILLED=$(date +%s%N)
check_eq "recovery: just after the SIGKILL the job still reads started" started "$(jfield rec-1)"
kill -CONT "$WPID"

# ==== 1: PROTOCOL.md's redis-cli enqueue, as written, for 10 job ids ====
# The first sh block of "By hand, with redis-cli": HSET status queued, SADD, LPUSH. Only the
# id and the image URL are replaced (the URL by the test's HTTP server). In the other order
# (LPUSH, then HSET queued) the worker finishes each job before its HSET, and all 10 would
# be left queued for ever.
awk '/^## By hand, with redis-cli/ { s = 1; next } s && /^## / { exit }
     s && /^```sh/ { b = 1; next } b && /^```/ { exit } b { print }' "$DOC" >"$T/enqueue.doc"
check_eq "doc: the enqueue block is HSET queued, SADD, LPUSH, in that order" "HSET SADD LPUSH" \
    "$(awk '{ print $2 }' "$T/enqueue.doc" | paste -sd' ')"
check_contains "doc: the HSET marks the job queued" "status queued" "$(head -1 "$T/enqueue.doc")"
doc_ids=()
for i in $(seq 1 10); do
    id=doc-$i
    doc_ids+=("$id")
    sed "s|job-42|$id|g; s|https://i.imgur.com/abc.jpg|$HBASE/$id.jpg|; s|^redis-cli |rcli |" \
        "$T/enqueue.doc" >"$T/enqueue.$i.sh"
    (. "$T/enqueue.$i.sh") >/dev/null 2>&1
done
wait_for 60 all_ended "${doc_ids[@]}"
sleep 0.3   # a status written late (the race the doc's order prevents) would show now
st=$(jfields_of status "${doc_ids[@]}" | sort | uniq -c | sed 's/^ *//' | paste -sd,)
check_eq "doc enqueue: all 10 end finished, none left queued" "10 finished" "$st"
files=()
for id in "${doc_ids[@]}"; do files+=("$ROOT/images/$id.jpg"); done
check_eq "doc enqueue: the 10 files landed" 10 "$(count_generated 5000 "${files[@]}")"
for f in func queue worker started_at ended_at attempts result; do
    n=$(( ${#doc_ids[@]} - $(jobs_lacking "$f" "${doc_ids[@]}" | grep -c .) ))
    check_eq "doc enqueue: finished hashes have $f" 10 "$n"
done
check_eq "doc enqueue: func" download_link "$(jfield doc-1 func)"
check_contains "doc enqueue: result names the file" "images/doc-1.jpg (5000 bytes)" "$(jfield doc-1 result)"
check_eq "doc enqueue: attempts 1" 1 "$(jfield doc-1 attempts)"

# ==== 2: PROTOCOL.md's schedule by hand: HSET status scheduled, then ZADD ====
grep -o '`\(HSET\|ZADD\) cq:[^`]*`' <(sed -n '/^## By hand, with redis-cli/,/^## [^B]/p' "$DOC") |
    tr -d '`' >"$T/schedule.doc"
check_eq "doc: the schedule lines are HSET, then ZADD" "HSET ZADD" "$(awk '{ print $1 }' "$T/schedule.doc" | paste -sd' ')"
check_contains "doc: the HSET marks it scheduled" "status scheduled" "$(head -1 "$T/schedule.doc")"
due=$(awk -v t="$(date +%s.%N)" 'BEGIN { printf "%.6f", t + 2 }')
rec='{"id":"sched-1","func":"noop","args":["later"],"queue":"default"}'
sed "s|<id>|sched-1|g; s|<func>|noop|g; s|<queue>|default|g; s|<unix time>|$due|g;
     s|'<record with \"queue\">'|'$rec'|; s|^|rcli |" "$T/schedule.doc" >"$T/schedule.sh"
(. "$T/schedule.sh") >/dev/null 2>&1
check_eq "schedule: scheduled before it is due" scheduled "$(jfield sched-1)"
check_eq "schedule: scheduled_for is the due time" "$due" "$(jfield sched-1 scheduled_for)"
# Sample the status every 50 ms until it ends: "scheduled" only, until the due time. Each
# sample is "BEFORE AFTER STATUS": the read was between the two times.
: >"$T/sched.samples"
deadline=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    t=$(now)
    s=$(jfield sched-1)
    echo "$t $(now) $s" >>"$T/sched.samples"
    [ "$s" = finished ] && break
    sleep 0.05
done
early=$(awk -v d="$due" '$2 < d - 0.05 && $3 != "scheduled"' "$T/sched.samples" | head -3)
check_eq "schedule: nothing but scheduled before the due time" "" "$early"
# After it: nothing but those, and never scheduled again once the job has started. (How soon
# the worker moves it is the machine's load as much as the worker's: not checked here.)
late=$(awk -v d="$due" -v s="$(jfield sched-1 started_at)" '$1 > d && $3 !~ /^(scheduled|queued|started|finished)$/ ||
       $1 > s && $3 == "scheduled"' "$T/sched.samples" | head -3)
check_eq "schedule: scheduled, queued, started or finished after it, not scheduled once started" "" "$late"
check "schedule: it was seen scheduled (samples before the due time)" \
    grep -q ' scheduled$' "$T/sched.samples"
check_eq "schedule: ends finished" finished "$(jfield sched-1)"
check "schedule: started no sooner than its due time" ge "$(jfield sched-1 started_at)" "$due"
check "schedule: ...and within 10 s of it" ge "$(awk -v d="$due" 'BEGIN { printf "%.6f", d + 10 }')" "$(jfield sched-1 started_at)"
echo "     sched-1 started $(awk -v s="$(jfield sched-1 started_at)" -v d="$due" \
    'BEGIN { printf "%.0f", (s - d) * 1000 }') ms after its due time"
check "schedule: finished hash has worker, started_at, ended_at, attempts" \
    has_all sched-1 worker started_at ended_at attempts func queue
check_eq "schedule: the scheduled set is empty again" 0 "$(rcli ZCARD cq:scheduled)"

# ==== 3: records over 1 MiB, LPUSHed by hand ====
# (redis-cli -x: an argument of a MiB is over what execve passes in one string.)
dead0=$(dead_len)
"$PY" -c 'import json, sys
print(json.dumps({"id": "big-1", "func": "noop", "args": ["x" * (1 << 20)]}), end="")' >"$T/big.json"
"$PY" -c 'import json, sys
print(json.dumps({"func": "noop", "args": ["x" * (1 << 20)]}), end="")' >"$T/bignoid.json"
rcli -x LPUSH cq:queue:default <"$T/big.json" >/dev/null
wait_for 30 ended big-1
check_eq "oversize with an id: failed under its id" failed "$(jfield big-1)"
check_contains "oversize with an id: the error says it is over the limit" \
    "job big-1: record of $(stat -c %s "$T/big.json") bytes is over the 1048576 byte limit" \
    "$(jfield big-1 error)"
check "oversize with an id: in the failed set" in_failed big-1
check "oversize with an id: its hash has worker, queue, attempts, ended_at, record" \
    has_all big-1 worker queue attempts ended_at record
check_eq "oversize with an id: nothing went to cq:dead" "$dead0" "$(dead_len)"
rcli -x LPUSH cq:queue:default <"$T/bignoid.json" >/dev/null
dead_grew() { [ "$(dead_len)" -gt "$dead0" ]; }
wait_for 30 dead_grew
check_eq "oversize without an id: goes to cq:dead" $((dead0 + 1)) "$(dead_len)"
check_eq "oversize without an id: the dead list holds it whole" "$(stat -c %s "$T/bignoid.json")" "$(rcli LINDEX cq:dead 0 | head -c -1 | wc -c)"

# ==== 4: a record without args ====
rcli LPUSH cq:queue:default '{"id":"noargs-1","func":"noop"}' >/dev/null
wait_for 30 ended noargs-1
check_eq "no args: failed" failed "$(jfield noargs-1)"
check_contains "no args: the error names the field" "field 'args' is missing" "$(jfield noargs-1 error)"

# ==== 4b: bytes after the record's object ====
# cJSON stopped at the object's end and the rest went unseen: the first record of two run
# together ran, the second was lost without a word. Now that is a bad record under its id, as
# one without args; JSON's white space after the object is taken.
dead_trail=$(dead_len)
rcli LPUSH cq:queue:default '{"id":"trail-1","func":"noop","args":[]}garbage' >/dev/null
rcli LPUSH cq:queue:default \
    '{"id":"trail-2","func":"noop","args":[]}{"id":"trail-3","func":"noop","args":[]}' >/dev/null
printf '{"id":"trail-4","func":"noop","args":[]} \t\r\n' | rcli -x LPUSH cq:queue:default >/dev/null
wait_for 30 all_ended trail-1 trail-2 trail-4
check_eq "bytes after the object: failed" failed "$(jfield trail-1)"
check_contains "bytes after the object: the error says so" \
    "job trail-1: the record goes on after its JSON object ('garbage')" "$(jfield trail-1 error)"
check_eq "bytes after the object: the record as it was" \
    '{"id":"trail-1","func":"noop","args":[]}garbage' "$(jfield trail-1 record)"
check "bytes after the object: in the failed set" in_failed trail-1
check_eq "two records run together: failed under the first's id" failed "$(jfield trail-2)"
check_eq "two records run together: the second never ran" "" "$(jfield trail-3)"
check_eq "white space after the object: finished" finished "$(jfield trail-4)"
check_eq "bytes after the object: nothing went to cq:dead" "$dead_trail" "$(dead_len)"

# ==== 5: field hygiene ====
# A transient failure (429 with Retry-After: 60), then success. Its retry waits long enough
# to be seen however loaded the machine, and is then made due at once (its score in the
# scheduled set, as PROTOCOL.md has it, the time it is due).
"$BIN/cenqueue" --id hyg-retry download_link images \
    "$HBASE/_/ratelimit/hyg/1/hyg.jpg?retry_after=60" >/dev/null
retrying() { [ "$(jfield hyg-retry)" = retrying ]; }
check "retry: the job is seen retrying" wait_for 30 retrying
check "retry: while retrying its hash has retry_at and error" has_all hyg-retry retry_at error
check_contains "retry: ...the error says why" "429" "$(jfield hyg-retry error)"
check_eq "retry: ...its record is the one scheduled" 1 "$(rcli ZRANGE cq:scheduled 0 -1 | grep -c '"hyg-retry"')"
rcli ZADD cq:scheduled XX 0 "$(rcli ZRANGE cq:scheduled 0 -1 | grep '"hyg-retry"')" >/dev/null
wait_for 30 ended hyg-retry
check_eq "retry: then finished" finished "$(jfield hyg-retry)"
check_eq "retry: on attempt 2" 2 "$(jfield hyg-retry attempts)"
check "retry: finished leaves no retry_at" lacks hyg-retry retry_at
check "retry: finished leaves no error" lacks hyg-retry error
check "retry: finished has result, started_at, ended_at" has_all hyg-retry result started_at ended_at

# Refused before it ran (an argument of the wrong type), pushed by hand as --no-check could.
rcli LPUSH cq:queue:default '{"id":"refused-1","func":"sleep","args":["abc"]}' >/dev/null
rcli LPUSH cq:queue:default \
    '{"id":"refused-2","func":"sleep","args":["abc"],"enqueued_at":1767225600.25}' >/dev/null
wait_for 30 all_ended refused-1 refused-2
for id in refused-1 refused-2; do
    check_eq "$id: failed" failed "$(jfield "$id")"
    check "$id: has attempts, worker, queue, func, error, ended_at, record" \
        has_all "$id" attempts worker queue func error ended_at record
    check_eq "$id: attempts 1" 1 "$(jfield "$id" attempts)"
    check_eq "$id: worker" "$WID" "$(jfield "$id" worker)"
    check_eq "$id: queue" default "$(jfield "$id" queue)"
    check_eq "$id: func" sleep "$(jfield "$id" func)"
    check_contains "$id: the error names the argument" "sleep" "$(jfield "$id" error)"
    check "$id: in the failed set" in_failed "$id"
done
check "refused-1: no enqueued_at (its record had none)" lacks refused-1 enqueued_at
check_eq "refused-2: enqueued_at from its record" 1767225600.250000 "$(jfield refused-2 enqueued_at)"
check_eq "refused-1: the record as it was" '{"id":"refused-1","func":"sleep","args":["abc"]}' \
    "$(jfield refused-1 record)"

# A job handed back by a worker that does not serve its function (status retrying, error,
# retry_at), then run by one that does: once finished, nothing of the hand-off is left.
# H1 serves queue hq without hf; H2 serves hf on hq too, so that hf has a live server there,
# but is busy with a long job, so that H1 takes hand-1.
"$BIN/cworker" -c 1 --shutdown-timeout 1s --command hf=/bin/echo hq >"$T/h2.log" 2>&1 &
H2=$!
PIDS+=("$H2")
wait_for 30 registered_pid "$H2"
"$BIN/cenqueue" -q hq --id hand-busy sleep 60 >/dev/null
wait_for 30 jobs_are started hand-busy
"$BIN/cworker" -c 1 --shutdown-timeout 1s hq >"$T/h1.log" 2>&1 &
H1=$!
PIDS+=("$H1")
wait_for 30 registered_pid "$H1"
"$BIN/cenqueue" -q hq --id hand-1 hf x >/dev/null
check "hand-off: handed back (retrying)" wait_for 30 jobs_are retrying hand-1
check "hand-off: while retrying its hash has error and retry_at" has_all hand-1 error retry_at
kill -TERM "$H1"; wait "$H1"
"$BIN/cworker" -c 1 --shutdown-timeout 1s --command hf=/bin/echo hq >"$T/h3.log" 2>&1 &
H3=$!
PIDS+=("$H3")
check "hand-off: then finished by a worker that serves hf" wait_for 30 jobs_are finished hand-1
check_eq "hand-off: attempts 1 (a hand-off is not an attempt)" 1 "$(jfield hand-1 attempts)"
check "hand-off: finished leaves no error" lacks hand-1 error
check "hand-off: finished leaves no retry_at" lacks hand-1 retry_at
"$BIN/cqctl" cancel hand-busy >/dev/null
wait_for 30 jobs_are canceled hand-busy
kill -TERM "$H2" "$H3"; wait "$H2"; wait "$H3"

# Canceled while retrying: the retry's retry_at and error go with the end. (Retry-After: 60,
# so that it still waits for its retry when the cancel comes, however loaded the machine.)
"$BIN/cenqueue" --id cancel-retry download_link images \
    "$HBASE/_/status/503/c.jpg?retry_after=60" >/dev/null
check "cancel retrying: the job is seen retrying" wait_for 30 jobs_are retrying cancel-retry
out=$(ctl cancel cancel-retry)
check_contains "cancel retrying: canceled while it was retrying" "(it was retrying)" "$out"
check_eq "cancel retrying: canceled" canceled "$(jfield cancel-retry)"
check "cancel retrying: no retry_at left" lacks cancel-retry retry_at
check "cancel retrying: no error left (an earlier run's)" lacks cancel-retry error

# ==== 7: requeue of a failed job ====
rq=$("$BIN/cenqueue" --retries 0 flaky)
wait_for 30 ended "$rq"
check_eq "requeue: the job failed on its first run" failed "$(jfield "$rq")"
check_eq "requeue: ...after 1 attempt" 1 "$(jfield "$rq" attempts)"
out=$(ctl requeue "$rq"); rc=$?
check_eq "requeue: exit 0" 0 "$rc"
check_contains "requeue: says so" "requeued $rq" "$out"
wait_for 30 ended "$rq"
check_eq "requeue: ends finished" finished "$(jfield "$rq")"
check_eq "requeue: ran again from attempts 0 (attempts 1)" 1 "$(jfield "$rq" attempts)"
check_eq "requeue: the command saw attempt 1" "second run ok, attempt 1" "$(jfield "$rq" result)"
check "requeue: no error left" lacks "$rq" error
check "requeue: no record left" lacks "$rq" record
check "requeue: out of the failed set" [ -z "$(rcli ZSCORE cq:failed "$rq")" ]

# ==== 6, checked: the job of the SIGKILLed worker ====
check "recovery: the job ends finished" wait_for 60 jobs_are finished rec-1
echo "     rec-1 finished $(ms_since "$KILLED") ms after the SIGKILL"
check_eq "recovery: finished by the running worker" "$WID" "$(jfield rec-1 worker)"
check_eq "recovery: recovered 1" 1 "$(jfield rec-1 recovered)"
check_eq "recovery: attempts 1 (the recovered run is not charged)" 1 "$(jfield rec-1 attempts)"
check_eq "recovery: runs started (2) = attempts + recovered" 2 \
    $(( $(jfield rec-1 attempts) + $(jfield rec-1 recovered) ))
check_contains "doc: PROTOCOL.md says runs started = attempts + recovered" \
    "the runs started are \`attempts + recovered\`" "$(tr '\n' ' ' <"$DOC" | sed 's/  */ /g')"
check_eq "recovery: the dead worker left the registry" 0 "$(rcli SISMEMBER cq:workers "$VWID")"
check_eq "recovery: its in-flight list is gone" "" "$(rcli --scan --pattern "cq:inflight:$VWID:*")"

# ==== 8: cancel ====
ctl pause default >/dev/null
sleep 1.1   # workers see a pause within a second (OPERATIONS.md; today's take checks it at once)
"$BIN/cenqueue" --id cancel-q mark >/dev/null
check_eq "cancel queued: queued on the paused queue" queued "$(jfield cancel-q)"
# An id whose job has not ended: refused, nothing enqueued (two runs would share one hash).
out=$("$BIN/cenqueue" --id cancel-q mark 2>"$T/dup.err"); rc=$?
check_eq "an id that is queued, again: exit 1" 1 "$rc"
check_eq "...nothing on stdout" "" "$out"
check_eq "...one line: why, and what to do" \
    "cenqueue: job cancel-q is queued, not ended: an id names one job at a time; wait for it to end, or give another id" \
    "$(cat "$T/dup.err")"
check_eq "...its record is in the queue once" 1 "$(rcli LRANGE cq:queue:default 0 -1 | grep -c '"cancel-q"')"
out=$(ctl cancel cancel-q); rc=$?
check_eq "cancel queued: exit 0" 0 "$rc"
check_eq "cancel queued: canceled at once" canceled "$(jfield cancel-q)"
out=$("$BIN/cenqueue" --id cancel-q mark 2>"$T/dup.err"); rc=$?
check_eq "its id again while its record waits (the worker would drop the new run): exit 1" 1 "$rc"
check_contains "...says why" \
    "job cancel-q was canceled and its record still waits in its queue: an id names one job at a time" \
    "$(cat "$T/dup.err")"
ctl resume default >/dev/null
queue_drained() { [ "$(rcli LLEN cq:queue:default)" = 0 ] && [ "$(rcli SCARD cq:cancel)" = 0 ]; }
check "cancel queued: after resume the worker drops the record" wait_for 30 queue_drained
check_eq "cancel queued: still canceled" canceled "$(jfield cancel-q)"
check "cancel queued: it never ran" [ ! -e "$T/run/ran.cancel-q" ]
check "cancel queued: has ended_at" has_all cancel-q ended_at
check "cancel queued: not in the failed set" [ -z "$(rcli ZSCORE cq:failed cancel-q)" ]

"$BIN/cenqueue" --id cancel-run sleep 30 >/dev/null
check "cancel running: the sleep 30 started" wait_for 30 jobs_are started cancel-run
ctl cancel cancel-run >/dev/null; rc=$?
# Timed from the request in Redis (cqctl's return) to the job's end (its ended_at): what
# OPERATIONS.md promises (the worker sees it within 250 ms, a sleep returns at once), not
# cqctl's start (1-3 s under valgrind) nor how soon this shell reads the status.
t0=$(date +%s%N)
check_eq "cancel running: exit 0" 0 "$rc"
wait_for 30 jobs_are canceled cancel-run
took=$(awk -v e="$(jfield cancel-run ended_at)" -v t="$t0" 'BEGIN { printf "%d", (e - t / 1e9) * 1000 }')
check_eq "cancel running: ends canceled" canceled "$(jfield cancel-run)"
# Under valgrind the worker itself is slower too (lib.sh: wrapped).
limit=1000
wrapped && limit=5000
check "cancel running: within $((limit / 1000)) s ($took ms)" [ "$took" -le "$limit" ]
check "cancel running: has worker, started_at, ended_at" has_all cancel-run worker started_at ended_at
check "cancel running: not in the failed set" [ -z "$(rcli ZSCORE cq:failed cancel-run)" ]
no_shutdown_claim() { [[ $(jfield cancel-run error) != *shutdown* ]]; }
check "cancel running: its hash does not say a worker shutdown stopped it" no_shutdown_claim

# ==== 9: an expired status reads like one that never existed ====
"$BIN/cenqueue" -q ttlq --id ttl-1 noop >/dev/null 2>&1   # (warns: no worker serves ttlq yet)
# That the job finished is read from the worker's log, which has a job's line once Redis
# recorded its end: its status may be gone already when the worker's exit (slow under
# valgrind or on a loaded machine) lets the test read it.
ttl=1
"$BIN/cworker" --burst -c 1 --result-ttl "$ttl" ttlq >"$T/ttl.log" 2>&1
check "expired: the job finished" grep -q ' ttlq: noop ttl-1 finished in ' "$T/ttl.log" ||
    cat "$T/ttl.log"
finished_or_gone() { local s; s=$(jfield ttl-1); [ -z "$s" ] || [ "$s" = finished ]; }
check "expired: its status, if still there, says finished" finished_or_gone
gone() { [ "$(rcli EXISTS "cq:job:$1")" = 0 ]; }
check "expired: its status is gone after the $ttl s TTL" wait_for $((ttl + 10)) gone ttl-1
ctl job ttl-1 >"$T/exp.out" 2>"$T/exp.err"; rc_exp=$?
ctl job never-1 >"$T/unk.out" 2>"$T/unk.err"; rc_unk=$?
msg="no status (never enqueued, or its status expired: after the worker's --result-ttl when it finished, --failure-ttl when it failed)"
check_contains "expired: cqctl job says the documented line" "job ttl-1: $msg" "$(cat "$T/exp.err")"
check_eq "expired: ...and only that line" 1 "$(wc -l <"$T/exp.err")"
check_eq "unknown: cqctl job says the same, but for the id" \
    "$(sed 's/ttl-1/never-1/' "$T/exp.err")" "$(cat "$T/unk.err")"
check_eq "expired: exit 1 (as documented)" 1 "$rc_exp"
check_eq "unknown: exit 1" 1 "$rc_unk"
check_eq "expired and unknown: nothing on stdout" "" "$(cat "$T/exp.out" "$T/unk.out")"
check_eq "expired and unknown: HGETALL is empty for both" "" \
    "$(rcli HGETALL cq:job:ttl-1; rcli HGETALL cq:job:never-1)"
check_contains "doc: PROTOCOL.md says what a reader sees for an expired or unknown id" \
    "\"$msg\"" "$(tr '\n' ' ' <"$DOC" | sed 's/  */ /g')"

# ==== 10: start marks: a job's start is recorded once it has run 20 ms, or with its end ====
# Records LPUSHed by hand, without a status hash: the worker writes func, queue and
# enqueued_at from the record, whether the start goes alone or with the end. The slow one
# runs until it is canceled, so that it is seen started however loaded the machine.
rcli LPUSH cq:queue:default '{"id":"mark-slow","func":"sleep","args":["30"],"enqueued_at":1764650000.25}' >/dev/null
check "start mark: a 30 s job reads started while it runs" wait_for 30 started_by mark-slow "$WID"
check "start mark: ...with the record's func, queue and enqueued_at" has_all mark-slow func queue enqueued_at started_at attempts
check_eq "start mark: ...enqueued_at as the record says" 1764650000.250000 "$(jfield mark-slow enqueued_at)"
ctl cancel mark-slow >/dev/null
wait_for 30 all_ended mark-slow
# A start mark is the apply script's LPOS; a job of a few microseconds never needs one. But
# a loaded machine can hold the worker up over 20 ms between a take and an end (1 mark for 40
# jobs in 1 run of 8 with the two cores busy): 40 more, up to 3 rounds of 40, until one has
# none. (Under valgrind a no-op job can take longer than 20 ms: not checked there.)
all_quick=()
for round in 1 2 3; do
    rcli CONFIG RESETSTAT >/dev/null
    quick=() records=()
    for i in $(seq 1 40); do
        quick+=("mark-quick-$round-$i")
        records+=("{\"id\":\"mark-quick-$round-$i\",\"func\":\"noop\",\"args\":[],\"enqueued_at\":1764650000.5}")
    done
    rcli LPUSH cq:queue:default "${records[@]}" >/dev/null   # one command: the 40 in order
    wait_for 30 all_ended "${quick[@]}"
    all_quick+=("${quick[@]}")
    lpos=$(rcli INFO commandstats | grep '^cmdstat_lpos:')
    wrapped || [ -z "$lpos" ] && break
    echo "     round $round of 40 jobs: $lpos"
done
wrapped || check_eq "start mark: none for 40 jobs that end at once" "" "$lpos"
n=$(( ${#quick[@]} - $(jobs_lacking "func queue enqueued_at worker started_at ended_at attempts" "${quick[@]}" |
    cut -d: -f1 | sort -u | grep -c .) ))
check_eq "start mark: their finished hashes have every field all the same" 40 "$n"
check_eq "start mark: ...func from the record" noop "$(jfield "${quick[6]}" func)"

# ==== every job of this test ended, and nothing is left anywhere ====
all=("${doc_ids[@]}" "${all_quick[@]}" mark-slow sched-1 big-1 noargs-1 hyg-retry refused-1 refused-2 hand-1 cancel-retry
     "$rq" rec-1 cancel-q cancel-run)
check "every job ended (finished, failed or canceled)" all_ended "${all[@]}"
check_eq "queue empty" 0 "$(rcli LLEN cq:queue:default)"
check_eq "nothing scheduled" 0 "$(rcli ZCARD cq:scheduled)"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check "the worker is still running" kill -0 "$WPID"

[ "$FAILS" -eq 0 ] || { echo "---- worker log"; cat "$T/w.log"; }
finish
