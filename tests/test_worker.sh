#!/usr/bin/env bash
# test_worker.sh - cenqueue -> Redis -> cworker -> download_link, as a user would run it:
# files on disk and their bytes, status hashes, exit codes, error texts. Redis listens on TCP
# (redis:// URLs and ACL users are tested) as well as on its socket (unix:// URLs).
. "$(dirname "$0")/lib.sh"

start_redis_tcp
start_httpd --generate --size 20000
ROOT=$T/root
mkdir -p "$ROOT"

# ---- the registry and help ----
out=$("$BIN/cworker" --list-functions)
check_contains "list-functions shows download_link" "download_link DIRECTORY LINK" "$out"
check_contains "list-functions shows noop" "noop" "$out"
check_contains "list-functions shows sleep, with its argument's type" "sleep SECONDS:duration " "$out"
# help_mentions NEEDLE PROGRAM ARGS...: PROGRAM exits 0 and its output mentions NEEDLE.
help_mentions() {
    local needle=$1 out
    shift
    out=$("$@") || return 1
    grep -q -- "$needle" <<<"$out"
}
check "cworker --help exits 0" help_mentions --download-root "$BIN/cworker" --help
check "cenqueue --help exits 0" help_mentions --stdin "$BIN/cenqueue" --help

# ---- cenqueue refuses what the registry does not know ----
err=$("$BIN/cenqueue" nosuchfunc 1 2>&1); rc=$?
check_eq "unknown function exits 2" 2 "$rc"
check_contains "unknown function lists the known ones" "unknown function 'nosuchfunc' (known: download_link, noop, sleep)" "$err"
err=$("$BIN/cenqueue" download_link onlyone 2>&1); rc=$?
check_eq "wrong arity exits 2" 2 "$rc"
check_contains "wrong arity explains" "download_link takes 2 arguments, got 1" "$err"
# An option after FUNC is one of the job's arguments: said so when the job is refused for it.
err=$("$BIN/cenqueue" sleep 1 --wait 2>&1); rc=$?
check_eq "an option after FUNC: exit 2" 2 "$rc"
check_eq "... the refusal, and that the option went to the job" \
    "cenqueue: sleep takes 1 argument, got 2 (usage: sleep SECONDS); '--wait' follows sleep, so it is one of the job's arguments: give cenqueue's options before FUNC" \
    "$err"
err=$("$BIN/cenqueue" sleep 1 -5 2>&1)
check_eq "... an argument that is no option of cenqueue's: the refusal alone" \
    "cenqueue: sleep takes 1 argument, got 2 (usage: sleep SECONDS)" "$err"
check_eq "nothing was enqueued by refused jobs" 0 "$(rcli LLEN cq:queue:default)"
dead_port=1   # below 1024: no test or unprivileged program can be listening there
err=$(CQ_REDIS_URL=redis://127.0.0.1:$dead_port "$BIN/cenqueue" noop 2>&1); rc=$?
check_eq "unreachable redis exits 1" 1 "$rc"
check_eq "unreachable redis is one line" 1 "$(printf '%s\n' "$err" | wc -l)"
check_contains "unreachable redis names the address and cause" "redis 127.0.0.1:$dead_port: Connection refused" "$err"
err=$("$BIN/cworker" -u redis://127.0.0.1:$dead_port --burst 2>&1); rc=$?
check_eq "cworker with unreachable redis exits 1" 1 "$rc"
check_contains "cworker names the cause" "Connection refused" "$err"
err=$("$BIN/cenqueue" -u http://x noop 2>&1); rc=$?
check_eq "a bad URL is a usage error" 2 "$rc"
check_contains "a bad URL is explained" "must start with redis://" "$err"

# ---- the happy path: downloads land byte for byte ----
ids=()
for i in $(seq 1 12); do
    id=$("$BIN/cenqueue" download_link images "$HBASE/photo$i.jpg")
    ids+=("$id")
done
is_uuid() { [[ $1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]; }
check "cenqueue prints a UUID" is_uuid "${ids[0]}"
check_eq "status is queued before a worker runs" queued "$(jfield "${ids[0]}")"
check_eq "queue depth via LLEN" 12 "$(rcli LLEN cq:queue:default)"
check_eq "the queue is in the known-queues set" 1 "$(rcli SISMEMBER cq:queues default)"

# A record LPUSHed by hand with only id, func and args (docs/PROTOCOL.md).
rcli LPUSH cq:queue:default "{\"id\":\"by-hand-1\",\"func\":\"download_link\",\"args\":[\"images/hand\",\"$HBASE/hand.jpg\"]}" >/dev/null

"$BIN/cworker" --burst -c 4 --download-root "$ROOT" >"$T/w1.log" 2>&1; rc=$?
check_eq "cworker --burst exits 0" 0 "$rc"
check_eq "all 12 images on disk, byte for byte" 12 \
    "$(count_generated 20000 $(for i in $(seq 1 12); do echo "$ROOT/images/photo$i.jpg"; done))"
# landed FILE: FILE holds the bytes httpd.py serves for its name.
landed() { [ "$(count_generated 20000 "$1")" = 1 ]; }
check "the hand-made record was processed" landed "$ROOT/images/hand/hand.jpg"
check_eq "hand-made record status" finished "$(jfield by-hand-1)"
check_eq "status finished" finished "$(jfield "${ids[0]}")"
check_eq "status records the function" download_link "$(jfield "${ids[0]}" func)"
check_eq "status records the queue" default "$(jfield "${ids[0]}" queue)"
check_contains "result names the file" "images/photo1.jpg (20000 bytes)" "$(jfield "${ids[0]}" result)"
has_times() { [ -n "$(jfield "$1" started_at)" ] && [ -n "$(jfield "$1" ended_at)" ]; }
check "status has started_at and ended_at" has_times "${ids[0]}"
check "status records the worker" [ -n "$(jfield "${ids[0]}" worker)" ]
# ttl_within LO HI TTL: LO < TTL <= HI.
ttl_within() { [ "$3" -gt "$1" ] && [ "$3" -le "$2" ]; }
ttl=$(rcli TTL "cq:job:${ids[0]}")
check "finished status expires within 500 s" ttl_within 400 500 "$ttl"
check_eq "queue empty" 0 "$(rcli LLEN cq:queue:default)"
check_eq "no in-flight lists left" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_eq "worker deregistered" 0 "$(rcli SCARD cq:workers)"
check_eq "no temporary files left" "" "$(find "$ROOT" -name '.*' -type f)"
check_eq "processed counter" 13 "$(rcli HGET cq:stats processed)"

# ---- bad input fails that job only; the worker carries on ----
push() { rcli LPUSH cq:queue:default "$1" >/dev/null; }
push '{"id":"good-1","func":"noop","args":[]}'
push 'this is not json'
push '{"id":"unknown-fn","func":"rm_rf","args":["/"]}'
push '{"id":"bad-arity","func":"download_link","args":["images"]}'
push '{"id":"no-args-array","func":"noop","args":"x"}'
push "{\"id\":\"escape-dotdot\",\"func\":\"download_link\",\"args\":[\"../outside\",\"$HBASE/a.jpg\"]}"
push "{\"id\":\"escape-abs\",\"func\":\"download_link\",\"args\":[\"/tmp\",\"$HBASE/a.jpg\"]}"
ln -s /tmp "$ROOT/sneaky"
probe=cq-escape-probe-$$-$RANDOM.jpg
push "{\"id\":\"escape-link\",\"func\":\"download_link\",\"args\":[\"sneaky\",\"$HBASE/$probe\"]}"
push '{"id":"file-scheme","func":"download_link","args":["images","file:///etc/passwd"]}'
# A NUL would cut the directory to "nul" and pass every later check; and a refused job must
# leave no trace, not even the "fresh" made before its '..' was seen.
push "{\"id\":\"nul-arg\",\"func\":\"download_link\",\"args\":[\"nul\\u0000/../../../x\",\"$HBASE/nul.jpg\"]}"
push "{\"id\":\"late-dotdot\",\"func\":\"download_link\",\"args\":[\"fresh/../../..\",\"$HBASE/late.jpg\"]}"
push "{\"id\":\"http-404\",\"func\":\"download_link\",\"args\":[\"images\",\"$HBASE/_/status/404/missing.jpg\"]}"
push "{\"id\":\"redirect-file\",\"func\":\"download_link\",\"args\":[\"images\",\"$HBASE/_/redirect-to/x.jpg?url=file:///etc/passwd\"]}"
push '{"func":"noop","args":[]}'
push '{"id":"good-2","func":"noop","args":[]}'
push "{\"id\":\"good-3\",\"func\":\"download_link\",\"args\":[\"images\",\"$HBASE/after.jpg\"]}"

"$BIN/cworker" --burst -c 2 --download-root "$ROOT" >"$T/w2.log" 2>&1; rc=$?
check_eq "worker exits 0 after bad records" 0 "$rc"
check_eq "good job before the bad ones finished" finished "$(jfield good-1)"
check_eq "good job after the bad ones finished" finished "$(jfield good-2)"
check "download after the bad ones landed" landed "$ROOT/images/after.jpg"
check_eq "invalid JSON goes to the dead list" "this is not json" "$(rcli LRANGE cq:dead 0 -1 | grep -F 'not json')"
check_contains "a record without an id goes to the dead list" '"func":"noop"' "$(rcli LRANGE cq:dead 0 -1)"
check_eq "unknown function fails" failed "$(jfield unknown-fn)"
check_contains "unknown function error" "unknown function 'rm_rf'" "$(jfield unknown-fn error)"
check_eq "wrong arity fails" failed "$(jfield bad-arity)"
check_contains "wrong arity error" "download_link takes 2 arguments, got 1" "$(jfield bad-arity error)"
check_contains "args must be an array" "field 'args' must be a JSON array" "$(jfield no-args-array error)"
check_contains "'..' escape refused" "escapes the download root" "$(jfield escape-dotdot error)"
check_contains "absolute directory refused" "escapes the download root" "$(jfield escape-abs error)"
check_contains "symlink escape refused" "escapes the download root" "$(jfield escape-link error)"
check "nothing was written through the symlink" [ ! -e "/tmp/$probe" ]
check_contains "file:// refused" "only http and https" "$(jfield file-scheme error)"
check_eq "a NUL inside an argument fails the job" failed "$(jfield nul-arg)"
check_contains "... saying so" 'holds a NUL character (\u0000)' "$(jfield nul-arg error)"
check_eq "... with nothing made on disk" "" "$(ls -d "$ROOT"/nul* "$ROOT"/x 2>/dev/null)"
check_contains "'..' after a new directory refused" "escapes the download root ('..')" "$(jfield late-dotdot error)"
check_eq "... with nothing made on disk" "" "$(ls -d "$ROOT"/fresh 2>/dev/null)"
check_contains "404 fails with the status" "HTTP 404" "$(jfield http-404 error)"
check_eq "404 is not retried" 1 "$(jfield http-404 attempts)"
check_eq "redirect to file:// fails" failed "$(jfield redirect-file)"
check_eq "no file for the 404" "" "$(ls "$ROOT/images" | grep missing)"
check "failed jobs are in the failed set" [ -n "$(rcli ZSCORE cq:failed http-404)" ]
check_contains "failed job keeps its record for a requeue" '"id":"http-404"' "$(jfield http-404 record)"
ttl=$(rcli TTL cq:job:http-404)
check "failed status is kept far longer than results" [ "$ttl" -gt 100000 ]
check_contains "worker logs the failure with the job id" "http-404" "$(cat "$T/w2.log")"

# ---- a queue key of the wrong type is named and skipped; the other queues are served ----
rcli SET cq:queue:broken "not a list" >/dev/null
id=$("$BIN/cenqueue" noop)
"$BIN/cworker" --burst broken default >"$T/w3.log" 2>&1; rc=$?
check_eq "worker with a wrong-type queue exits 0 in burst" 0 "$rc"
check_eq "...and serves the other queue" finished "$(jfield "$id")"
check_contains "...and names the bad queue, its key's type and the fix" \
    "queue 'broken': cannot take from it: its key cq:queue:broken is a string, not a list: remove or rename it" \
    "$(cat "$T/w3.log")"
check_eq "...once" 1 "$(grep -c "queue 'broken'" "$T/w3.log")"
rcli DEL cq:queue:broken >/dev/null

# ---- docs/PROTOCOL.md's redis-cli lines work as written ----
# All but SUBSCRIBE, which waits for a message that nothing here sends; and all under a
# timeout, so that a documented command that waits cannot hang the test.
sed -n '/^## By hand, with redis-cli/,/^## How workers move records/p' "$SRC/docs/PROTOCOL.md" |
    grep '^redis-cli ' | grep -Eiv '^redis-cli +p?subscribe ' |
    sed "s|https://i.imgur.com/|$HBASE/|g; s|^redis-cli |redis-cli -s '$RSOCK' |" >"$T/protocol.sh"
check "PROTOCOL.md shows redis-cli lines" [ "$(wc -l <"$T/protocol.sh")" -ge 6 ]
timeout 20 bash "$T/protocol.sh" >"$T/protocol.out" 2>&1
check_eq "the documented enqueue made a queued job" queued "$(jfield job-42)"
"$BIN/cworker" --burst --download-root "$ROOT" >/dev/null 2>&1
check_eq "the documented job ran" finished "$(jfield job-42)"
check "its file landed" landed "$ROOT/images/abc.jpg"
check_contains "cworker warns when redis has no AOF" "appendonly no" "$(cat "$T/w1.log")"

# ---- ACL users: the URL's user and password; a wrong password is one clear line ----
rcli ACL SETUSER cqapp on '>s3cret' '~cq:*' '&*' +@all -@dangerous >/dev/null
id=$("$BIN/cenqueue" -u "redis://cqapp:s3cret@127.0.0.1:$RPORT" noop); rc=$?
check_eq "cenqueue as an ACL user" 0 "$rc"
"$BIN/cworker" -u "redis://cqapp:s3cret@127.0.0.1:$RPORT" --burst >"$T/acl.log" 2>&1; rc=$?
check_eq "cworker as an ACL user (no CONFIG rights)" 0 "$rc"
check_eq "...runs the job" finished "$(jfield "$id")"
err=$("$BIN/cenqueue" -u "redis://cqapp:wrong@127.0.0.1:$RPORT" noop 2>&1); rc=$?
check_eq "wrong password exits 1" 1 "$rc"
check_contains "...naming the cause" "AUTH failed: WRONGPASS" "$err"

# ---- the options users set: TTLs, size cap, --at, a unix socket ----
id=$("$BIN/cenqueue" noop)
"$BIN/cworker" --burst --result-ttl 0 >/dev/null 2>&1
check_eq "--result-ttl 0 drops a finished status at once" 0 "$(rcli EXISTS "cq:job:$id")"
id=$("$BIN/cenqueue" download_link images "$HBASE/_/status/404/ttl.jpg")
"$BIN/cworker" --burst --failure-ttl 100 --download-root "$ROOT" >/dev/null 2>&1
ttl=$(rcli TTL "cq:job:$id")
check "--failure-ttl 100 keeps a failed status 100 s ($ttl)" ttl_within 0 100 "$ttl"
id=$("$BIN/cenqueue" noop)
"$BIN/cworker" --burst --result-ttl 2m >/dev/null 2>&1
ttl=$(rcli TTL "cq:job:$id")
check "--result-ttl 2m, a duration as the other time options take: 120 s ($ttl)" \
    ttl_within 100 120 "$ttl"
id=$("$BIN/cenqueue" noop)
"$BIN/cworker" --burst --result-ttl -1 >/dev/null 2>&1
check_eq "--result-ttl -1 keeps a finished status" -1 "$(rcli TTL "cq:job:$id")"
id=$("$BIN/cenqueue" download_link images "$HBASE/too-big.jpg")
"$BIN/cworker" --burst --max-size 1K --download-root "$ROOT" >/dev/null 2>&1
check_eq "--max-size 1K refuses a 20,000-byte image" failed "$(jfield "$id")"
check "...and leaves no file" [ ! -e "$ROOT/images/too-big.jpg" ]
at=$(( $(date +%s) + 3600 ))
id=$("$BIN/cenqueue" --at "$at" noop)
check_eq "--at in the future schedules the job" scheduled "$(jfield "$id")"
check_eq "...for that time" "$at.000000" "$(jfield "$id" scheduled_for)"
rcli DEL cq:scheduled >/dev/null
id=$("$BIN/cenqueue" --at 1 noop)
check_eq "--at in the past queues it at once" queued "$(jfield "$id")"
rcli DEL cq:queue:default >/dev/null
if [ -S "$RSOCK" ]; then
    id=$("$BIN/cenqueue" -u "unix://$RSOCK" noop)
    check_eq "a unix:// URL works" queued "$(jfield "$id")"
else
    check "redis listens on the test's unix socket" false
fi
rcli DEL cq:queue:default >/dev/null

# ---- a batch's ends go to Redis in the order their jobs were taken ----
# The in-flight list holds records in take order, the oldest at its tail; the apply script's
# LREM from the tail finds each record at once only in that order, and cq's module takes a
# batch's ends off that tail in one RPOP only then (docs/BENCHMARKS.md, round two). 200 records LPUSHed in one
# command are taken ord-001 first; MONITOR shows each apply (CQ.APPLY1 or the script's
# EVALSHA) with its outcomes' records, whose numbers must rise within it.
recs=()
for i in $(seq -w 1 200); do recs+=("{\"id\":\"ord-$i\",\"func\":\"noop\",\"args\":[]}"); done
rcli LPUSH cq:queue:default "${recs[@]}" >/dev/null
rcli MONITOR >"$T/monitor.log" 2>&1 &
mon=$!
wait_for 5 grep -q OK "$T/monitor.log"
"$BIN/cworker" --burst -c 16 --log-level warn >"$T/order.log" 2>&1; rc=$?
check_eq "take order: cworker --burst exits 0" 0 "$rc"
wait_for 5 jobs_are finished ord-001 ord-200
# MONITOR has written everything before this ECHO once the ECHO is in the file.
rcli ECHO take-order-done >/dev/null
wait_for 10 grep -q take-order-done "$T/monitor.log"
kill "$mon" 2>/dev/null; wait "$mon" 2>/dev/null
# take_order LOG: in every apply the ends' records in rising order, each of the 200 jobs ended
# once, some apply with several; and how many records left the in-flight list by LREM (the
# scripts: all; cq's module: those its RPOP of a batch's tail could not take).
take_order() {
    "$PY" - "$1" <<'PY'
import re, sys
ENDS = set("FfJjXCDRH")  # outcome kinds that end a job's turn here (S, a start mark, does not)
groups, lrems = [], 0
for line in open(sys.argv[1], errors="replace"):
    args = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
    if not args:
        continue
    cmd = args[0].lower()
    if cmd in ("evalsha", "eval", "cq.apply1") and "] " in line:
        # an outcome is its kind, then its record: the ends' jobs, in the order sent
        g = [int(m.group(1)) for k, a in enumerate(args[:-1]) if a in ENDS
             for m in [re.search(r'ord-(\d+)', args[k + 1])] if m]
        if g:
            groups.append(g)
    elif cmd == "lrem" and "ord-" in line:
        lrems += 1
seen = [n for g in groups for n in g]
several = max((len(g) for g in groups), default=0)
bad = [g for g in groups if g != sorted(g)]
print(f"{len(seen)} ends of {len(set(seen))} jobs, at most {several} in one apply, {len(bad)} "
      f"applies out of order; {lrems} records left by LREM, the others with their batch's RPOP")
sys.exit(0 if len(seen) == 200 and len(set(seen)) == 200 and several >= 2 and not bad else 1)
PY
}
check "take order: each apply sends its ends in take order" take_order "$T/monitor.log" ||
    take_order "$T/monitor.log"
take_order "$T/monitor.log" | sed 's/^/# /'


# ---- a line a job at info: each job's once, all before the exit, and at once when idle ----
# The dispatcher writes a batch's lines once the next round trip is sent (while Redis runs
# it), or before it sleeps or stops: none may be lost, doubled, or left for a next job.
recs=()
for i in $(seq -w 1 300); do recs+=("{\"id\":\"line-$i\",\"func\":\"noop\",\"args\":[]}"); done
rcli LPUSH cq:queue:default "${recs[@]}" >/dev/null
"$BIN/cworker" --burst -c 16 >"$T/lines.log" 2>&1; rc=$?
check_eq "job lines: cworker --burst exits 0" 0 "$rc"
# Why it stops, in the words of its options, which cworker's users read (libcq says "the burst
# setting" to a program that embeds a worker: test_audience).
check_contains "... saying why with its option" \
    "INFO queues empty, nothing running: exiting (--burst)" "$(cat "$T/lines.log")"
rcli LPUSH cq:queue:default '{"id":"max-1","func":"noop","args":[]}' >/dev/null
check_contains "cworker --max-jobs 1: stops after the job, saying why with its option" \
    "INFO done 1 jobs (--max-jobs)" "$("$BIN/cworker" --max-jobs 1 2>&1)"
# A paused queue (cqctl pause) is said at start, as the producers say it, and --burst does not
# call it empty when it leaves its job there.
rcli SADD cq:paused held >/dev/null
rcli LPUSH cq:queue:held '{"id":"held-1","func":"noop","args":[]}' >/dev/null
out=$("$BIN/cworker" --burst held 2>&1)
check_contains "cworker on a paused queue: says so at start, and the way out" \
    "WARN queue held is paused: this worker takes nothing from it until 'cqctl resume held'" \
    "$out"
check_contains "... --burst: its exit line names the pause" \
    "INFO queues empty or paused, nothing running: exiting (--burst)" "$out"
check_eq "... and the job waits in the queue" 1 "$(rcli LLEN cq:queue:held)"
rcli DEL cq:queue:held >/dev/null
rcli SREM cq:paused held >/dev/null
# job_lines LOG N: N "finished in" lines, one per job, every one before the burst's exit line
# and the stop line.
job_lines() {
    "$PY" - "$1" "$2" <<'PY'
import re, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
ids = [m.group(1) for l in lines for m in [re.search(r" noop (line-\d+) finished in ", l)] if m]
last = max(i for i, l in enumerate(lines) if " noop line-" in l)
exit_at = next(i for i, l in enumerate(lines) if "exiting (--burst)" in l)
stop_at = next(i for i, l in enumerate(lines) if " stopped" in l)
print(f"{len(ids)} lines, {len(set(ids))} jobs, last at {last}, exit at {exit_at}, stop at {stop_at}")
sys.exit(0 if len(ids) == len(set(ids)) == int(sys.argv[2]) and last < exit_at < stop_at else 1)
PY
}
check "job lines: one a job, all before the worker exits" job_lines "$T/lines.log" 300 ||
    job_lines "$T/lines.log" 300
# A job's duration in its line: seconds with three decimals, whole milliseconds (a noop's
# "0.000" or so, a sleep's the time it slept).
durations() {
    "$PY" - "$1" "$2" "$3" <<'PY'
import re, sys
durs = re.findall(r" finished in (\S*?)s(?:: |$)", open(sys.argv[1], errors="replace").read(), re.M)
good = [d for d in durs if re.fullmatch(r"\d+\.\d{3}", d)]
slept = [d for d in good if float(sys.argv[3]) <= float(d) < 10]
print(f"{len(durs)} durations, {len(good)} with three decimals, slept {slept}")
sys.exit(0 if len(durs) == len(good) == int(sys.argv[2]) and len(slept) == 1 else 1)
PY
}
"$BIN/cenqueue" sleep 0.25 >/dev/null
cat "$T/lines.log" >"$T/durations.log"
"$BIN/cworker" --burst >>"$T/durations.log" 2>&1
check "job lines: a duration as seconds with three decimals, a sleep's at least 0.250" \
    durations "$T/durations.log" 301 0.25 || durations "$T/durations.log" 301 0.25
# A summary line counts only jobs whose lines came before it.
seq 1 20000 | sed 's/^/noop /' | "$BIN/cenqueue" --stdin --quiet >/dev/null
"$BIN/cworker" --burst -c 16 --summary-interval 10ms >"$T/summary.log" 2>&1
# summaries_after_lines LOG: every summary's count, added up, is at most the lines before it.
summaries_after_lines() {
    "$PY" - "$1" <<'PY'
import re, sys
lines, counted, summaries, bad = 0, 0, 0, 0
for l in open(sys.argv[1], errors="replace"):
    if " finished in " in l:
        lines += 1
    m = re.search(r"summary: (\d+) jobs ended", l)
    if m:
        summaries += 1
        counted += int(m.group(1))
        bad += counted > lines
print(f"{lines} lines, {summaries} summaries counting {counted} jobs, {bad} ahead of their lines")
sys.exit(0 if lines == 20000 and summaries >= 2 and bad == 0 else 1)
PY
}
check "job lines: a summary comes after the lines of the jobs it counts" \
    summaries_after_lines "$T/summary.log" || summaries_after_lines "$T/summary.log"
start_registered "$T/idle.log" -c 4
wait_for 10 watching 1
id=$("$BIN/cenqueue" noop lone)
wait_for 10 jobs_are finished "$id"
check "job lines: an idle worker writes its one job's line without waiting for another" \
    wait_for 5 grep -q "noop $id finished in" "$T/idle.log" || cat "$T/idle.log"
kill -TERM "$WPID"; wait "$WPID" 2>/dev/null
# ---- ?replicas=N that no replica confirms (this Redis has none): the jobs are in, and the
# user is told so, with their ids; a worker's outcomes are recorded, with a warning ----
R1="redis://127.0.0.1:$RPORT?replicas=1"
lone=$("$BIN/cenqueue" -u "$R1" -q unconfirmed noop 2>"$T/rep.err"); rc=$?
check_eq "replicas=1, none confirms: cenqueue exits 1" 1 "$rc"
check_contains "...and says why, and that the job went in" \
    "cenqueue: enqueue: 0 of 1 replicas confirmed the write within 1000 ms: a failover now could lose it (the job was enqueued, its id printed)" \
    "$(cat "$T/rep.err")"
check "...printing its id" is_uuid "$lone"
check_eq "...which is queued" queued "$(jfield "$lone")"
ids=$(printf 'noop\nnoop\n' | "$BIN/cenqueue" -u "$R1" -q unconfirmed --stdin 2>"$T/rep.err"); rc=$?
check_eq "replicas=1 --stdin: exit 1" 1 "$rc"
check_eq "...both ids printed" 2 "$(grep -c . <<<"$ids")"
check_contains "...and counted, nothing of the input left" \
    "(every job of the input was enqueued, 2 in all, their ids printed)" "$(cat "$T/rep.err")"
check_eq "...all three in the queue" 3 "$(rcli LLEN cq:queue:unconfirmed)"
"$BIN/cworker" -u "$R1" --burst unconfirmed >"$T/rep.log" 2>&1; rc=$?
check_eq "replicas=1: a worker whose outcomes no replica confirms ends its jobs, exit 0" 0 "$rc"
check "...warning that a failover could lose them" \
    grep -q "WARN apply: 0 of 1 replicas confirmed the write within 1000 ms" "$T/rep.log"
check_eq "...and the jobs are finished" finished "$(jfield "$lone")"

# ---- a Redis that may evict: said at the start, with the setting to use ----
rcli CONFIG SET maxmemory-policy allkeys-lru >/dev/null
"$BIN/cworker" --burst nothing-here >"$T/evict.log" 2>&1
check_contains "maxmemory-policy allkeys-lru: the worker warns" \
    "WARN redis has maxmemory-policy allkeys-lru: it may evict queued jobs (production: noeviction)" \
    "$(cat "$T/evict.log")"
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
"$BIN/cworker" --burst nothing-here >"$T/evict.log" 2>&1
check_eq "...and with noeviction (exit 0)" 0 "$?"
check_eq "...it does not" "" "$(grep maxmemory "$T/evict.log")"

# ---- malloc arenas: one a usable CPU, unless the environment chose ----
# glibc makes each arena after the main one as a heap of its own: a 64 MiB reservation at a
# 64 MiB-aligned address, its used part read-write and the rest without access.
# arenas PID: how many such heaps PID has.
arenas() {
    local range perms rest a b b_prev=0 heap=-1 n=0 size=$((64 << 20))
    while read -r range perms _ _ _ rest; do
        a=$((16#${range%-*})) b=$((16#${range#*-}))
        if [ -z "$rest" ] && [ "$heap" -ge 0 ] && [ "$a" = "$b_prev" ] && [ "$perms" = ---p ]; then
            [ $((b - heap)) = "$size" ] && n=$((n + 1))
            heap=-1
        elif [ -z "$rest" ] && [ "$perms" = rw-p ] && [ $((a % size)) = 0 ]; then
            heap=$a
            [ $((b - a)) = "$size" ] && { n=$((n + 1)); heap=-1; }
        else
            heap=-1
        fi
        b_prev=$b
    done <"/proc/$1/maps"
    echo "$n"
}
# arenas_of ENV...: ARENAS, the heaps of an idle `cworker` with three queues, so that several
# threads allocate (the dispatcher, the executors, three watchers), run with ENV on one CPU
# (taskset: the first this test may use).
arenas_of() {
    local pid cpu
    cpu=$(taskset -pc $$ | sed 's/.*: //; s/[,-].*//')
    env "$@" taskset -c "$cpu" "$BIN/cworker" "${WORKER_OPTS[@]}" q1 q2 q3 >"$T/arenas.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_for 10 watching 3 || { echo "FATAL: the worker did not go idle"; cat "$T/arenas.log"; exit 1; }
    ARENAS=$(arenas "$pid")
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
}
if wrapped || sanitized; then
    echo "note - malloc arenas: not checked here (the allocator is the checker's, not glibc's)"
else
    arenas_of
    check_eq "arenas: one CPU, one arena (cworker sets M_ARENA_MAX)" 0 "$ARENAS"
    arenas_of MALLOC_ARENA_MAX=4
    check "arenas: MALLOC_ARENA_MAX=4 stands (heaps beyond the main arena: $ARENAS)" \
        test "$ARENAS" -gt 0
    arenas_of GLIBC_TUNABLES=glibc.malloc.arena_max=4
    check "arenas: glibc.malloc.arena_max=4 in GLIBC_TUNABLES stands (heaps: $ARENAS)" \
        test "$ARENAS" -gt 0
fi

# ---- the descriptor table is made at the start, for the jobs in flight ----
# A table that grows while threads run stalls each thread making a descriptor for an RCU grace
# period (milliseconds): a burst of downloads did, and executors were made for the jobs that
# waited meanwhile. cworker sizes it before its threads start: 64 + 4 a job at once.
fdsize_of() {
    local pid
    "$BIN/cworker" "${WORKER_OPTS[@]}" "$@" fdq >"$T/fdsize.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_for 10 watching 1 || { echo "FATAL: the worker did not go idle"; cat "$T/fdsize.log"; exit 1; }
    FDSIZE=$(sed -n 's/^FDSize:[[:space:]]*//p' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
}
if wrapped; then
    echo "note - descriptor table: not checked here (the checker keeps descriptors of its own)"
else
    fdsize_of -c 64
    check "descriptor table: cworker -c 64 has room for 320 at the start (FDSize $FDSIZE)" \
        test "$FDSIZE" -ge 320
    # Under a lower limit the table stops at the limit, and the worker runs as before.
    (ulimit -n 200 && fdsize_of -c 64 && echo "$FDSIZE" >"$T/fdsize.low")
    FDSIZE=$(cat "$T/fdsize.low" 2>/dev/null || echo none)
    check "descriptor table: cworker -c 64 under ulimit -n 200 runs, its table 256 at most ($FDSIZE)" \
        test "$FDSIZE" != none -a "$FDSIZE" -le 256
fi

# ---- each thread named for what it does (top -H, ps -L, perf, gdb) ----
"$BIN/cworker" "${WORKER_OPTS[@]}" -c 3 nameq >"$T/names.log" 2>&1 &
pid=$!
PIDS+=("$pid")
wait_for 10 watching 1 || { echo "FATAL: the worker did not go idle"; cat "$T/names.log"; exit 1; }
names=$(cat /proc/"$pid"/task/*/comm | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
kill -TERM "$pid"
wait "$pid" 2>/dev/null
check_contains "threads named: the executors cq-exec ($names)" "cq-exec" "$names"
check_contains "...the queue's watcher cq-watch" "cq-watchx1" "$names"

# ---- another prefix is another namespace ----
id=$("$BIN/cenqueue" --prefix other: noop x)
check_eq "prefix: record in the other queue" 1 "$(rcli LLEN other:queue:default)"
CQ_PREFIX=other: "$BIN/cworker" --burst >/dev/null 2>&1
check_eq "prefix: processed with CQ_PREFIX" finished "$(rcli HGET "other:job:$id" status)"

finish
