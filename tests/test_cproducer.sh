#!/usr/bin/env bash
# test_cproducer.sh BUILD_DIR - cproducer end to end: its own redis-server and a fake of the
# Imgur API (tests/fixtures/fake_imgur.py, serving the recorded responses) on 127.0.0.1,
# checked the way a user would: exit codes, stdout, the error line, the job records in Redis
# and the number of API requests made. When cworker is built, the last part downloads the
# images for real from tests/fixtures/httpd.py.
. "$(dirname "$0")/lib.sh"
CP=$BIN/cproducer
[ -x "$CP" ] || { echo "FATAL: $CP not built"; exit 1; }

start_redis
start_httpd --generate

start_fake_imgur --image-base "$HBASE/"

# prod CLIENT_ID ARGS...: run cproducer against the fake; sets RC, OUT, ERR.
prod() {
    local id=$1
    shift
    reset_hits
    IMGUR_CLIENT_ID=$id "$CP" --api-url "$API" "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(<"$T/out")
    ERR=$(<"$T/err")
}
# no_reader CMD ARGS...: CMD with stdout a pipe whose reader has left before it starts, so
# that every write there fails with EPIPE (| head -1 after the first line, without its race).
no_reader() {
    perl -e 'pipe(my $r, my $w) or die; close $r; open(STDOUT, ">&", $w) or die; close $w;
             exec @ARGV or die "exec $ARGV[0]: $!\n"' -- "$@"
}
lines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }

# check_jobs NAME KEY COUNT DIR LINKFILE: the list KEY holds COUNT records, each a
# download_link job with args [DIR, link], the links distinct and exactly those of LINKFILE,
# each with status "queued" under the prefix $PFX.
check_jobs() {
    local name=$1
    shift
    rcli --raw LRANGE "$1" 0 -1 >"$T/records"
    if "$PY" - "$T/records" "$2" "$3" "$4" "$PFX" "$RSOCK" >"$T/cj.err" 2>&1 <<'EOF'
import json, subprocess, sys
records, count, d, linkfile, prefix, sock = sys.argv[1:]
recs = [json.loads(l) for l in open(records) if l.strip()]
want = set(l.strip() for l in open(linkfile) if l.strip())
assert len(recs) == int(count), "%d records, want %s" % (len(recs), count)
links = [r["args"][1] for r in recs]
assert len(set(links)) == len(links), "duplicate links"
assert len(set(r["id"] for r in recs)) == len(recs), "duplicate ids"
for r in recs:
    assert r["func"] == "download_link", r
    assert len(r["args"]) == 2 and r["args"][0] == d, r
    assert r["args"][1] in want, r["args"][1]
# The statuses, one HGET a record in one redis-cli (a line a reply, empty for none).
hget = "".join("HGET %sjob:%s status\n" % (prefix, r["id"]) for r in recs)
sts = subprocess.run(["redis-cli", "-s", sock], input=hget, capture_output=True,
                     text=True).stdout.split("\n")
assert len(sts) > len(recs), sts
for r, st in zip(recs, sts):
    assert st == "queued", (r["id"], st)
assert set(links) == want, "links differ from the dry run"
EOF
    then
        check_eq "$name" ok ok
    else
        check_eq "$name" ok "$(tail -1 "$T/cj.err")"
    fi
}
PFX=cq:

echo "# usage"
IMGUR_CLIENT_ID= "$CP" --help >"$T/help" 2>&1
check_eq "--help exits 0" 0 $?
for o in --api-url --section --sort --window --page --pages --types --albums --max-wait \
         --dir --queue --url --prefix --dry-run --wait --wait-timeout --verbose --help \
         --version IMGUR_CLIENT_ID CQ_REDIS_URL CQ_PREFIX "Exit status"; do
    check "--help mentions $o" grep -q -- "$o" "$T/help"
done
"$CP" --version >/dev/null
check_eq "--version exits 0" 0 $?
for bad in "--section cold" "--sort best" "--window hour" "--pages 0" "--page x" \
           "--albums keep" "--types jpeg" "--max-wait forever" "extra" "--dry-run --wait" \
           "--wait-timeout 5s" "--max-wait 2d" \
           "-q bad/name" "--bogus"; do
    prod test-client --dry-run $bad
    check_eq "usage error exits 2: $bad" 2 "$RC"
    check_eq "no API request on a usage error: $bad" 0 "$(hits total)"
done
# An --api-url that cannot be asked says why (it said only 'is not an http(s) URL'), and port
# 0 is one: it was asked five times, 15 s of retries, each failing to connect.
for bad in "http://127.0.0.1:0/3/gallery/|http://127.0.0.1:0/3/gallery/: port 0 is no server's port (1 to 65535)" \
           "http://127.0.0.1:70000/|http://127.0.0.1:70000/: not an absolute http(s) URL (Port number was not a decimal number between 0 and 65535)" \
           "ftp://127.0.0.1/|ftp://127.0.0.1/: only http and https links are allowed" \
           "|empty; give an http(s) URL, or leave it out for \$IMGUR_API_URL"; do
    prod test-client --dry-run --api-url "${bad%%|*}"
    check_eq "--api-url ${bad%%|*}: usage error, exit 2" 2 "$RC"
    check_contains "...saying why" "cproducer: --api-url: ${bad#*|}" "$ERR"
    check_eq "...no API request" 0 "$(hits total)"
done
# A --dir every job would fail on at the worker: refused before anything is enqueued (before,
# 'enqueued 6 jobs', each then failed for good).
for bad in ../x /abs a/../../b; do
    prod test-client --dir "$bad"
    check_eq "--dir $bad: usage error, exit 2" 2 "$RC"
    check_contains "...saying why" "escapes the download root" "$ERR"
    check_eq "...no API request" 0 "$(hits total)"
done

echo "# client id"
reset_hits
env -u IMGUR_CLIENT_ID "$CP" --api-url "$API" --dry-run >"$T/out" 2>"$T/err"
check_eq "missing IMGUR_CLIENT_ID exits 2" 2 $?
check "the message names IMGUR_CLIENT_ID" grep -q IMGUR_CLIENT_ID "$T/err"
check_eq "nothing asked of the API without a client id" 0 "$(hits total)"
prod "" --dry-run
check_eq "empty IMGUR_CLIENT_ID exits 2" 2 "$RC"
prod wrong-id --dry-run
check_eq "invalid client id exits 1" 1 "$RC"
check_contains "Imgur's data.error is quoted" "Invalid client_id" "$ERR"
check_eq "the error is one line" 1 "$(lines "$ERR")"
check_eq "nothing on stdout on error" "" "$OUT"

echo "# dry run"
prod test-client --dry-run -u redis://127.0.0.1:1
check_eq "dry run exits 0 (and needs no Redis)" 0 "$RC"
check_eq "dry run prints the 16 .jpg links" 16 "$(lines "$OUT")"
check_eq "every link ends in .jpg" 16 "$(printf '%s\n' "$OUT" | grep -c '\.jpg$')"
check_eq "links point at the image server (--image-base)" 16 \
    "$(printf '%s\n' "$OUT" | grep -c "^$HBASE/")"
check_eq "the bare gallery URL is asked once" 1 "$(hits gallery)"
check_eq "dry run is quiet on stderr" "" "$ERR"
printf '%s\n' "$OUT" >"$T/links16"
check_eq "dry run lists no link twice" 16 "$(sort -u "$T/links16" | wc -l)"
prod test-client --dry-run --types image/jpeg,image/png
check_eq "--types image/jpeg,image/png: 16 + 7 links" 23 "$(lines "$OUT")"
prod test-client --dry-run --types image/gif
check_eq "--types image/gif: 15 links" 15 "$(lines "$OUT")"

echo "# enqueue"
prod test-client
check_eq "a run exits 0" 0 "$RC"
check_eq "it says what it did" "enqueued 16 jobs to queue default" "$OUT"
check_eq "the queue holds 16 records" 16 "$(rcli LLEN cq:queue:default)"
check_jobs "records are download_link(images, link) of the dry-run links, once each" \
    cq:queue:default 16 images "$T/links16"
check "the queue is registered" [ "$(rcli SISMEMBER cq:queues default)" = 1 ]
prod test-client -q pics --dir photos/2015 --prefix t1:
check_eq "-q/--dir/--prefix run exits 0" 0 "$RC"
PFX=t1:
check_jobs "records use --dir and land in the prefixed queue" \
    t1:queue:pics 16 photos/2015 "$T/links16"
PFX=cq:
check_eq "the default queue is untouched" 16 "$(rcli LLEN cq:queue:default)"

# A result that cannot be written (a full disk) fails the run, with the reason: --dry-run's
# links failed without a word, the enqueue's line was lost with exit 0.
IMGUR_CLIENT_ID=test-client "$CP" --api-url "$API" --dry-run >/dev/full 2>"$T/err"
check_eq "dry run to a full disk: exit 1, saying so" \
    "1 cproducer: writing the links to stdout: No space left on device" "$? $(<"$T/err")"
IMGUR_CLIENT_ID=test-client "$CP" --api-url "$API" -q full >/dev/full 2>"$T/err"
check_eq "a run to a full disk: exit 1" 1 "$?"
check_contains "...saying so" "cproducer: writing the result to stdout: No space left on device" \
    "$(<"$T/err")"
check_eq "...its jobs enqueued all the same" 16 "$(rcli LLEN cq:queue:full)"
rcli DEL cq:queue:full >/dev/null && rcli SREM cq:queues full >/dev/null
# A reader that left (cli.h, every command): not told of, exit 1. The enqueue's line said
# 'writing the result to stdout failed' of it, and --wait went on after it.
IMGUR_CLIENT_ID=test-client no_reader "$CP" --api-url "$API" --dry-run 2>"$T/err"
check_eq "dry run, its reader gone: exit 1, nothing said" "1 " "$? $(<"$T/err")"
IMGUR_CLIENT_ID=test-client no_reader "$CP" --api-url "$API" -q full 2>"$T/err"
check_eq "a run, its reader gone: exit 1, nothing said of the write" "1 " \
    "$? $(grep -v 'warning:' "$T/err")"
check_eq "...its jobs enqueued all the same" 16 "$(rcli LLEN cq:queue:full)"
rcli DEL cq:queue:full >/dev/null
IMGUR_CLIENT_ID=test-client no_reader "$CP" --api-url "$API" -q full --wait \
    --wait-timeout 5 2>"$T/err"
check_eq "--wait, its reader gone before the enqueue's line: exit 1 at once, no wait" "1 " \
    "$? $(grep -v 'warning:' "$T/err")"
rcli DEL cq:queue:full >/dev/null && rcli SREM cq:queues full >/dev/null

echo "# a link that is not UTF-8 text"
# A job's args are JSON strings: one link with a raw 0xff byte failed the whole enqueue, in a
# line that named neither it nor the argument ('download_link: an argument is not UTF-8 text
# ... (0 of 16 jobs enqueued)'), and past 1000 links left the batches before it in. It is a
# malformed item, as a link that is not http(s): left out, counted, the rest enqueued.
prod badutf8-links --dry-run
check_eq "--dry-run lists the 15 other links" 15 "$(lines "$OUT")"
check_eq "... none with the 0xff byte" 0 "$(printf '%s\n' "$OUT" | LC_ALL=C grep -c $'\xff')"
printf '%s\n' "$OUT" >"$T/links15"
check "... all of them links of the gallery" \
    [ -z "$(comm -23 <(sort "$T/links15") <(sort "$T/links16"))" ]
prod badutf8-links -q bad8 -v
check_eq "the enqueue exits 0" 0 "$RC"
check_eq "... with the 15 others" "enqueued 15 jobs to queue bad8" "$OUT"
check_contains "... -v counting 15 kept" "15 links kept, 0 duplicates" "$ERR"
check_contains "... as one malformed" "filtered out, 1 malformed" "$ERR"
check_jobs "... their records those of the dry run" cq:queue:bad8 15 images "$T/links15"
rcli DEL cq:queue:bad8 >/dev/null && rcli SREM cq:queues bad8 >/dev/null

echo "# pages and duplicates"
prod test-client --dry-run --pages 2
check_eq "--pages 2: the union of both pages (16 + 34)" 50 "$(lines "$OUT")"
check_eq "--pages 2 asks two pages" 2 "$(hits gallery)"
printf '%s\n' "$OUT" >"$T/links50"
page1_first() { head -16 "$T/links50" | cmp -s - "$T/links16"; }
check "page 1 comes first" page1_first
prod test-client --pages 5 -q paged
check_eq "--pages 5 enqueues the union" "enqueued 50 jobs to queue paged" "$OUT"
check_eq "--pages 5 stops at the first empty page" 3 "$(hits gallery)"
check_jobs "paged records match the dry run" cq:queue:paged 50 images "$T/links50"
# A paused queue: its jobs wait until it is resumed, and cproducer says so (it said nothing).
rcli SADD cq:paused held >/dev/null
prod test-client -q held
check_eq "a paused queue: enqueued all the same" "0 enqueued 16 jobs to queue held" "$RC $OUT"
check_contains "...with a warning that names it and the fix" \
    "cproducer: warning: queue 'held' is paused: workers take nothing from it, and the jobs wait there until 'cqctl resume held'" \
    "$ERR"
prod duppages --pages 2 -q dup
check_eq "a link listed on two pages is enqueued once" "enqueued 16 jobs to queue dup" "$OUT"
check_eq "the dup queue holds 16" 16 "$(rcli LLEN cq:queue:dup)"
prod test-client --dry-run --page 1 --section top --window week
check_eq "--page 1 (top/week) is the second page" 34 "$(lines "$OUT")"

echo "# albums"
prod test-client --dry-run --albums expand
check_eq "--albums expand adds the album images (16 + 46)" 62 "$(lines "$OUT")"
check_eq "every one of the 22 albums is fetched" 22 "$(hits album)"
prod inline-albums --dry-run --albums expand
check_eq "albums with a full images[] are expanded from it" 62 "$(lines "$OUT")"
check_eq "... without fetching them" 0 "$(hits album)"
prod album404 --dry-run --albums expand
check_eq "an album deleted meanwhile (404) is skipped, not fatal" 0 "$RC"
check_eq "... the other albums still count" 62 "$(lines "$OUT")"
check_contains "... with a warning naming it" "album tmg2y skipped" "$ERR"
prod test-client --albums expand -q albums
check_eq "expanded albums are enqueued, each link once" \
    "enqueued 62 jobs to queue albums" "$OUT"
prod test-client --dry-run --albums expand --api-url "http://127.0.0.1:$FPORT/3/"
check_eq "--albums expand needs an --api-url ending in /gallery/" 2 "$RC"

echo "# rate limits and bad responses"
prod ratelimit-new --dry-run -v
check_eq "429 (new style) is waited out" 0 "$RC"
check_eq "... and the retry yields the 16 links" 16 "$(lines "$OUT")"
check_eq "... after exactly one retry" 2 "$(hits total)"
check_contains "the wait is logged" "HTTP 429: Too Many Requests" "$ERR"
check_contains "-v logs the credits" "credits: client" "$ERR"
prod ratelimit-old --dry-run
check_eq "429 (envelope, X-RateLimit-UserReset) is waited out" 0 "$RC"
check_eq "... yielding the 16 links" 16 "$(lines "$OUT")"
check_eq "... after one retry" 2 "$(hits total)"
start=$(date +%s)
prod ratelimit-always --dry-run --max-wait 2
check_eq "a 429 that never ends fails" 1 "$RC"
check "... within --max-wait" [ $(( $(date +%s) - start )) -le 6 ]
check_contains "... saying why" "HTTP 429: Too Many Requests" "$(tail -1 "$T/err")"
prod ratelimit-always --dry-run --max-wait 0
check_eq "--max-wait 0: no retry at all" 1 "$(hits total)"
prod lowcredit --dry-run --pages 2 -v
check_eq "used-up credits: the next request waits for the reset" 0 "$RC"
check_eq "... and still gets both pages" 50 "$(lines "$OUT")"
check_contains "... saying so" "used up" "$ERR"
prod notjson --dry-run
check_eq "a non-JSON body exits 1" 1 "$RC"
check_eq "... with one line naming the status" "cproducer: imgur: HTTP 200: response is not JSON" "$ERR"
prod badshape --dry-run
check_eq "a body without data exits 1" 1 "$RC"
check_eq "... with one line" "cproducer: imgur: HTTP 200: no data array" "$ERR"
prod capacity --dry-run
check_eq "over capacity exits 1" 1 "$RC"
check_contains "... quoting Imgur" "HTTP 403: Imgur is temporarily over capacity" "$ERR"
prod 500 --dry-run --max-wait 1
check_eq "a 500 exits 1 once retries are spent" 1 "$RC"
check_contains "... quoting Imgur" "HTTP 500: Could not complete request" "$(tail -1 "$T/err")"
check_eq "... after one retry within --max-wait 1" 2 "$(hits total)"
# Port 1: below 1024, where no test or unprivileged program can be listening.
IMGUR_CLIENT_ID=test-client "$CP" --dry-run --max-wait 0 \
    --api-url "http://127.0.0.1:1/3/gallery/" >"$T/out" 2>"$T/err"
check_eq "an unreachable API exits 1" 1 $?
check_eq "... with one line" 1 "$(lines "$(<"$T/err")")"
check_contains "... naming imgur" "cproducer: imgur: " "$(<"$T/err")"

echo "# redis"
prod test-client -u "redis://127.0.0.1:1"
check_eq "unreachable Redis exits 1" 1 "$RC"
check_eq "... with one line" 1 "$(lines "$ERR")"
check_contains "... starting cproducer:" "cproducer: " "$ERR"
check_eq "... before spending API credits" 0 "$(hits total)"
prod test-client -u "http://127.0.0.1:1"
check_eq "a bad Redis URL is a usage error" 2 "$RC"
# ?replicas=1 against a Redis with no replica (a plain one on TCP, beside the test's): the
# jobs go in, WAIT says none confirmed them, and cproducer says how many went in.
PPORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PPORT" --bind 127.0.0.1 --save "" --appendonly no --logfile "$T/plain.log" &
PIDS+=("$!")
wait_for 10 bash -c "redis-cli -p $PPORT ping | grep -q PONG" ||
    { echo "FATAL: the plain redis-server did not start"; cat "$T/plain.log"; exit 1; }
prod test-client -u "redis://127.0.0.1:$PPORT?replicas=1" -q unconfirmed
check_eq "?replicas=1 that no replica confirms: exit 1" 1 "$RC"
check_contains "... saying so, and that the 16 jobs went in" \
    "cproducer: enqueue: 0 of 1 replicas confirmed the write within 1000 ms: a failover now could lose it (16 of 16 jobs enqueued)" \
    "$ERR"
check_eq "... which they did" 16 "$(redis-cli -p "$PPORT" LLEN cq:queue:unconfirmed)"

echo "# --wait"
# No worker here: the statuses are set by hand once the jobs are in the queue, a little apart
# (the sleep paces them like a worker would, so that --wait sees them end one by one).
queue_holds() { [ "$(rcli LLEN "cq:queue:$1")" -eq "$2" ]; }
set_statuses() {   # QUEUE FAILED_COUNT
    wait_for 10 queue_holds "$1" 16 || return 1
    local i=0 id
    for id in $(rcli --raw LRANGE "cq:queue:$1" 0 -1 |
                "$PY" -c 'import json,sys; [print(json.loads(l)["id"]) for l in sys.stdin]'); do
        if [ "$i" -lt "$2" ]; then
            rcli HSET "cq:job:$id" status failed error "download_link: $id: HTTP 404" >/dev/null
        else
            rcli HSET "cq:job:$id" status finished >/dev/null
        fi
        i=$((i + 1))
        sleep 0.01
    done
}
set_statuses waitok 0 &
prod test-client --wait -q waitok
wait $!
check_eq "--wait exits 0 when every job finished" 0 "$RC"
check_contains "it prints Took" "Took " "$OUT"
took_line() { grep -Eq '^Took [0-9]+\.[0-9]{2}s$' <<<"$OUT"; }
check "Took N.NNs" took_line
check_contains "and a summary" "16 jobs: 16 finished, 0 failed" "$OUT"
# Nothing else on stderr than the warning that no worker serves the queue (none runs here).
check_eq "no progress line when stderr is not a terminal" "" \
    "$(grep -v "^cproducer: warning: no live worker takes from queue 'waitok'" <<<"$ERR")"
# A reader that left after the first line (| head -1): the summary's write fails (EPIPE),
# which is not told of (it said 'writing the result to stdout failed'), and exits 1.
set_statuses waitpipe 0 &
{
    IMGUR_CLIENT_ID=test-client "$CP" --api-url "$API" --wait -q waitpipe 2>"$T/err"
    echo $? >"$T/rc"
} | head -1 >/dev/null
wait $!
check_eq "--wait | head -1: exit 1, nothing said of the write" "1 " \
    "$(<"$T/rc") $(grep -F 'writing the' "$T/err")"
set_statuses waitfail 2 &
prod test-client --wait -q waitfail
wait $!
check_eq "--wait exits 1 when a job failed" 1 "$RC"
check_contains "the summary counts the failures" "16 jobs: 14 finished, 2 failed" "$OUT"
check_contains "the failed jobs are named with their error" "HTTP 404" "$ERR"
prod test-client --wait -q nobody --wait-timeout 1
check_eq "--wait-timeout without a worker exits 1" 1 "$RC"
check_contains "... counting the jobs that did not end" "16 not ended" "$OUT"
# Every kind of end: 12 failed (10 named, the rest counted), one canceled, one whose status
# is gone (a worker with --result-ttl 0 drops it at the job's end: its outcome is unknown,
# as cenqueue --wait says it), two finished.
queue_ids() { rcli --raw LRANGE "cq:queue:$1" 0 -1 | "$PY" -c 'import json,sys; [print(json.loads(l)["id"]) for l in sys.stdin]'; }
set_mixed() {
    wait_for 10 queue_holds "$1" 16 || return 1
    local i=0 id
    for id in $(queue_ids "$1"); do
        if [ "$i" -lt 12 ]; then
            rcli HSET "cq:job:$id" status failed error "download_link: $id: HTTP 404" >/dev/null
        elif [ "$i" = 12 ]; then
            rcli HSET "cq:job:$id" status canceled >/dev/null
        elif [ "$i" = 13 ]; then
            rcli DEL "cq:job:$id" >/dev/null
        else
            rcli HSET "cq:job:$id" status finished >/dev/null
        fi
        i=$((i + 1))
    done
}
set_mixed waitmixed &
prod test-client --wait -q waitmixed
wait $!
check_eq "--wait, failed and canceled jobs: exit 1" 1 "$RC"
check_contains "... the summary counts each kind" \
    "16 jobs: 2 finished, 12 failed, 1 canceled, 1 unknown" "$OUT"
check_contains "... the unknown one said on stderr, with the causes and the fix" \
    "cproducer: 1 job had no status when the wait read it: a worker with --result-ttl 0 or --failure-ttl 0 drops a job's at its end, or it was deleted or lost with redis's data; its outcome is unknown (to see it, keep statuses a while: cworker --result-ttl 60)" "$ERR"
check_eq "... ten failed jobs named" 10 "$(grep -c '^cproducer: job .* failed: ' <<<"$ERR")"
check_contains "... the rest counted" "cproducer: ... and 2 more failed jobs" "$ERR"
check_contains "... and how to run them again" \
    "cproducer: to run the failed jobs again: cqctl requeue --all-failed --queue waitmixed" "$ERR"
# The same on a terminal (script(1) gives it one): the progress line counts the canceled job
# (it said ", canceled some").
set_mixed waittty &
reset_hits
IMGUR_CLIENT_ID=test-client script -qec "$(printf '%q ' "$CP" --api-url "$API" --wait -q waittty)" \
    /dev/null >"$T/tty.out" 2>&1
wait $!
check_contains "--wait on a terminal: the progress line counts the canceled and unknown jobs" \
    "2 finished, 12 failed, 1 canceled, 1 unknown; " "$(tr '\r' '\n' <"$T/tty.out")"
# Redis restarting while cproducer waits: it says so, reconnects, and sees the jobs end.
IMGUR_CLIENT_ID=test-client "$CP" --api-url "$API" --wait -q waitrestart >"$T/out" 2>"$T/err" &
cp=$!
PIDS+=("$cp")
wait_for 10 queue_holds waitrestart 16 || { echo "FATAL: cproducer did not enqueue"; cat "$T/err"; exit 1; }
# Redis stops once the wait has begun: cproducer's connection has read a job's status
# (HGETALL, its last command after the enqueue and the queue's checks), where it stopped as
# soon as the jobs were in, and a slow cproducer lost Redis in its queue checks instead, then
# began its wait on a new connection to the Redis already back, with nothing to say.
reading_statuses() { rcli CLIENT LIST | grep -q ' cmd=hgetall '; }
check "... cproducer's wait has begun" wait_for 20 reading_statuses || cat "$T/err"
rcli SAVE >/dev/null
stop_redis
sleep 1.5
start_redis_again
set_statuses waitrestart 0
wait "$cp"
check_eq "--wait through a Redis restart: exit 0" 0 "$?"
check_contains "... saying it lost Redis" "WARN lost Redis while waiting: " "$(<"$T/err")"
check_contains "... and it saw every job end" "16 jobs: 16 finished, 0 failed" "$(<"$T/out")"

echo "# with cworker: real downloads from the local image server"
check "cworker is built" [ -x "$BIN/cworker" ]
if [ -x "$BIN/cworker" ]; then
    mkdir -p "$T/dl"
    "$BIN/cworker" --download-root "$T/dl" --log-level error e2e >"$T/worker.log" 2>&1 &
    WPID=$!
    PIDS+=("$WPID")
    prod test-client --wait -q e2e --dir images
    check_eq "--wait with cworker exits 0" 0 "$RC"
    check_contains "all 16 finished" "16 jobs: 16 finished, 0 failed" "$OUT"
    check_eq "16 files downloaded" 16 "$(find "$T/dl/images" -type f -name '*.jpg' 2>/dev/null | wc -l)"
    same_names() { [ "$(sed 's|.*/||' "$T/links16" | sort)" = "$(ls "$T/dl/images" | sort)" ]; }
    check "the names are those of the links" same_names
    kill "$WPID" 2>/dev/null
    wait "$WPID" 2>/dev/null
fi

finish
