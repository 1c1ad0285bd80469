#!/usr/bin/env bash
# test_wait_cli.sh - cenqueue --wait and cqctl wait end to end: one line per job as it ends
# (finished with its result, failed with its error, canceled), exit 0 only when all finished, --wait-timeout
# and how many did not end, --quiet, --stdin batches, a waiter whose connection is killed,
# and the worker's PUBLISH on cq:ended:<id> as a waiter needs it; SIGINT, also in the middle
# of a result's line. The jobs of a queue no worker serves are ended by hand (HSET + PUBLISH,
# as the worker's script does), so that the mix of outcomes and their order are exact. "A job
# ended before the waiter subscribed" is also in tests/test_wait.c, deterministically.
. "$(dirname "$0")/lib.sh"

exec 3>&2   # diagnostics that get past check's redirections
mkdir -p "$T/bin"
cat >"$T/bin/bad.sh" <<'EOF'
#!/bin/bash
echo "reading the input" >&2
echo "bad input: $1" >&2
exit 3
EOF
chmod +x "$T/bin/bad.sh"

start_redis
"$BIN/cworker" -c 4 --log-level warn --command "bad=$T/bin/bad.sh" >"$T/w.log" 2>&1 &
WPID=$!
PIDS+=("$WPID")
wait_for 10 workers_are 1 || { echo "FATAL: worker did not register"; cat "$T/w.log"; exit 1; }
wait_for 10 watching 1

matches() { [[ $1 =~ $2 ]]; }
lines() { local s=$1; [ -z "$s" ] && { echo 0; return; }; printf '%s\n' "$s" | wc -l; }
now() { date +%s.%N; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
subscribed() { [ "$(rcli PUBSUB NUMSUB "cq:ended:$1" | tail -n 1)" -ge 1 ]; }
all_subscribed() { local id; for id in "$@"; do subscribed "$id" || return 1; done; }

# ---- the real worker ----

# A worker that keeps no status (--result-ttl 0: each hash dropped at its job's end), 2,000
# no-op jobs: each seen finished, and most had ended before the wait began (cenqueue heard of
# their ends from before they went in, cq_wait_prepare), where the wait once found no status
# for them (256 of 2,000 still waited for when timeout 10 killed it).
"$BIN/cworker" -c 16 --log-level warn --result-ttl 0 ttl0 >"$T/w0.log" 2>&1 &
w0=$!
PIDS+=("$w0")
wait_for 10 workers_are 2 || { echo "FATAL: worker did not register"; cat "$T/w0.log"; exit 1; }
seq 1 2000 | sed 's/^/noop /' |
    "$BIN/cenqueue" --wait --wait-timeout 60s --stdin -q ttl0 >"$T/out" 2>"$T/err"
rc=$?
check_eq "a worker with --result-ttl 0, 2,000 jobs: exit 0" 0 "$rc" || tail -3 "$T/err"
check_eq "...each job finished, a line each" 2000 "$(grep -cE "^$UUID finished\$" "$T/out")"
check_contains "...none unknown" "cenqueue: 2000 finished, 0 failed, 0 canceled" "$(cat "$T/err")"
check_eq "...their statuses dropped" 0 "$(rcli EXISTS "cq:job:$(head -n 1 "$T/out" | cut -d' ' -f1)")"
kill "$w0"
wait "$w0" 2>/dev/null
wait_for 10 workers_are 1 || { echo "FATAL: the --result-ttl 0 worker did not leave"; exit 1; }

# A no-op on an idle worker mostly ends before cenqueue has subscribed: read from the hash.
out=$("$BIN/cenqueue" --wait noop 2>"$T/err"); rc=$?
check_eq "noop: exit 0" 0 "$rc"
check "noop: one line 'ID finished'" matches "$out" "^$UUID finished\$"
check_eq "noop: nothing on stderr for one job" "" "$(cat "$T/err")"

# A job that ends 0.5 s after the waiter subscribed: the message wakes it. Timed from the
# job's end (its ended_at) to its line reaching this shell (stamped as it is read), not to
# cenqueue's exit and this shell's next step, which a loaded machine (or ASan's exit) can
# delay past 500 ms. 3 s still tells the message's wake-up from the wait's re-read of the
# statuses every 30 s, the only other way the line comes.
"$BIN/cenqueue" --wait sleep 0.5 |
    while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done >"$T/stamped"
rc=${PIPESTATUS[0]}
t_line=$(head -n 1 "$T/stamped" | cut -d' ' -f1)
out=$(cut -d' ' -f2- "$T/stamped")
check_eq "sleep: exit 0" 0 "$rc"
check "sleep: 'ID finished' and its result" matches "$out" "^$UUID finished slept 0.5s\$"
id=${out%% *}
took=$(ms_between "$(jfield "$id" ended_at)" "$t_line")
echo "     job ended -> its line read from cenqueue --wait: $took ms"
check "sleep: cenqueue prints its line within 3 s of the job's end ($took ms)" [ "$took" -lt 3000 ]

out=$("$BIN/cenqueue" --wait bad x 2>"$T/err"); rc=$?
check_eq "failed: exit 1" 1 "$rc"
check "failed: 'ID failed' and the error" matches "$out" "^$UUID failed .*bad input: x\$"

rcli SADD cq:cancel wc-1 >/dev/null
out=$("$BIN/cenqueue" --wait --id wc-1 noop 2>"$T/err"); rc=$?
check_eq "canceled (cq:cancel before it was taken): exit 1" 1 "$rc"
check "canceled: 'ID canceled'" matches "$out" "^wc-1 canceled"

# The waiting connection is killed while the job runs: cenqueue subscribes again.
"$BIN/cenqueue" --wait --id wk-1 sleep 1 >"$T/out" 2>"$T/err" &
cpid=$!
wait_for 10 subscribed wk-1
rcli CLIENT KILL TYPE pubsub >/dev/null
wait_for 10 exited "$cpid"
wait "$cpid"; rc=$?
check_eq "connection killed: exit 0" 0 "$rc"
check_eq "connection killed: the job's line all the same" "wk-1 finished slept 1s" "$(cat "$T/out")"

# The job starts after the waiter read its status (queued): at the timeout, what is said of
# it is read again (before, "(1 queued)" of a job that had run for a second).
rcli SADD cq:paused default >/dev/null
"$BIN/cenqueue" --wait --wait-timeout 3s --id wt-1 sleep 5 >"$T/out" 2>"$T/err" &
cpid=$!
wait_for 10 subscribed wt-1
rcli SREM cq:paused default >/dev/null
wait_for 10 exited "$cpid"
wait "$cpid"; rc=$?
check_eq "--wait-timeout, started after the waiter read it: exit 1" 1 "$rc"
check_contains "...said as it is when the time is up" \
    "1 of 1 job did not end within 3s (1 started)" "$(cat "$T/err")"
check_eq "...and its id printed with that state" "wt-1 started" "$(cat "$T/out")"
wait_for 10 jobs_are finished wt-1

out=$("$BIN/cenqueue" --wait --quiet sleep 0.1 2>"$T/err"); rc=$?
check_eq "--quiet: exit 0" 0 "$rc"
check_eq "--quiet: nothing on stdout" "" "$out"

seq 300 | sed 's/^/noop /' | "$BIN/cenqueue" --wait --stdin >"$T/out" 2>"$T/err"; rc=$?
check_eq "--stdin 300: exit 0" 0 "$rc"
check_eq "--stdin 300: 300 lines" 300 "$(lines "$(cat "$T/out")")"
check_eq "--stdin 300: all 'ID finished'" 300 "$(grep -cE "^$UUID finished\$" "$T/out")"
check_eq "--stdin 300: 300 distinct ids" 300 "$(cut -d' ' -f1 "$T/out" | sort -u | wc -l)"
check_contains "--stdin 300: the summary" "300 finished, 0 failed, 0 canceled" "$(cat "$T/err")"
no_progress() { ! grep -q 'jobs ended' "$T/err"; }
check "--stdin 300: no progress line (stderr is not a terminal)" no_progress

# ---- ended by hand, on a queue no worker serves: a mix, in a known order ----

# --wait-timeout counts from cenqueue's start, and the steps below (the queue read, the
# subscriptions seen, the ends) took more than 3 s on a loaded machine: 10 s, and the ends
# in one redis-cli, so that they come well inside it.
printf 'noop a\nnoop b\nnoop c\nnoop d\n' |
    "$BIN/cenqueue" --wait --wait-timeout 10s --stdin -q manual >"$T/out" 2>"$T/err" &
cpid=$!
queued() { [ "$(rcli LLEN "cq:queue:$1")" = "$2" ]; }
wait_for 10 queued manual 4
mapfile -t ids < <(rcli LRANGE cq:queue:manual 0 -1 | grep -oE "$UUID" | tac)
check_eq "mix: 4 jobs queued" 4 "${#ids[@]}"
wait_for 10 all_subscribed "${ids[@]}"
t0=$(now)
rcli >/dev/null <<EOF
HSET cq:job:${ids[0]} status finished result_json '{"n":1}'
PUBLISH cq:ended:${ids[0]} finished
HSET cq:job:${ids[1]} status failed error 'it broke'
PUBLISH cq:ended:${ids[1]} failed
HSET cq:job:${ids[2]} status canceled
PUBLISH cq:ended:${ids[2]} canceled
EOF
wait_for 20 exited "$cpid"
wait "$cpid"; rc=$?
took=$(ms_between "$t0" "$(now)")
check_eq "mix: exit 1" 1 "$rc"
check_eq "mix: one line each as it ended, then the one left with its state" \
    "$(printf '%s finished {"n":1}\n%s failed it broke\n%s canceled\n%s queued' "${ids[@]}")" \
    "$(cat "$T/out")"
check_contains "mix: how many did not end, and where they are" \
    "1 of 4 jobs did not end within 10s (1 queued)" "$(cat "$T/err")"
check_contains "mix: the summary" "1 finished, 1 failed, 1 canceled" "$(cat "$T/err")"
check "mix: returns at the 10 s timeout ($took ms after the ends)" [ "$took" -lt 12000 ]

# A job that ended before the wait began, its hash dropped at its end (a worker with
# --result-ttl 0: its record taken, its hash deleted, the end published), is seen finished:
# cenqueue subscribed to its end before it went in (cq_wait_prepare), where the wait once
# found no status and no message to come. A job whose hash went without an end (deleted, or
# lost with Redis's data) is "ID unknown" on stdout (every id enqueued is printed once), said
# once on stderr for all such jobs, and not counted as finished: which it was, nothing says.
# A job whose status was set by hand to one cq does not write is "ID unknown" too, said on
# stderr as it is. The wait begins at the end of stdin, held open until those jobs are set.
mkfifo "$T/gone.in"
"$BIN/cenqueue" --wait --wait-timeout 20s --stdin -q gone <"$T/gone.in" >"$T/out" 2>"$T/err" &
cpid=$!
exec 4>"$T/gone.in"
echo 'noop a' >&4
wait_for 10 queued gone 1
g1=$(rcli LRANGE cq:queue:gone 0 -1 | grep -oE "$UUID")
rcli DEL cq:queue:gone "cq:job:$g1" >/dev/null
rcli PUBLISH "cq:ended:$g1" finished >/dev/null
echo 'noop b' >&4
wait_for 10 queued gone 1
g2=$(rcli LRANGE cq:queue:gone 0 -1 | grep -oE "$UUID")
echo 'noop c' >&4
wait_for 10 queued gone 2
g3=$(rcli LRANGE cq:queue:gone 0 0 | grep -oE "$UUID")
rcli HSET "cq:job:$g3" status weird >/dev/null
echo 'noop d' >&4
wait_for 10 queued gone 3
g4=$(rcli LRANGE cq:queue:gone 0 0 | grep -oE "$UUID")
rcli DEL "cq:job:$g4" >/dev/null
exec 4>&-
wait_for 10 subscribed "$g2"
t0=$(now)
rcli HSET "cq:job:$g2" status finished result r >/dev/null
rcli PUBLISH "cq:ended:$g2" finished >/dev/null
wait_for 20 exited "$cpid"
wait "$cpid"; rc=$?
took=$(ms_between "$t0" "$(now)")
check_eq "a job whose status was deleted before the wait: exit 1 (its outcome is unknown)" 1 "$rc"
check_eq "...the one ended before the wait, its status dropped: finished; 'ID unknown' for the deleted one and the one with a status not cq's; then the other as it ended" \
    "$(printf '%s finished\n%s unknown\n%s unknown\n%s finished r' "$g1" "$g3" "$g4" "$g2")" \
    "$(cat "$T/out")"
check_eq "...said once on stderr, with why and the fix" 1 \
    "$(grep -cF "cenqueue: 1 job had no status when the wait read it: a worker with --result-ttl 0 or --failure-ttl 0 drops a job's at its end, or it was deleted or lost with redis's data; its outcome is unknown (to see it, keep statuses a while: cworker --result-ttl 60)" "$T/err")"
check_contains "...the one not cq's said as it is" \
    "cenqueue: job $g3: its status 'weird' is none of cq's" "$(cat "$T/err")"
check_contains "...the summary counts the deleted one" \
    "cenqueue: 2 finished, 0 failed, 0 canceled, 1 unknown" "$(cat "$T/err")"
check "...at the other's end, not the 20 s timeout ($took ms)" [ "$took" -lt 10000 ]

t0=$(now)
out=$("$BIN/cenqueue" --wait --wait-timeout 500ms -q manual noop 2>"$T/err"); rc=$?
took=$(ms_between "$t0" "$(now)")
check_eq "--wait-timeout, one job: exit 1" 1 "$rc"
check "--wait-timeout, one job: its id and state on stdout ($out)" matches "$out" "^$UUID queued\$"
check_contains "--wait-timeout, one job: stderr says so" \
    "1 of 1 job did not end within 0.5s (1 queued)" "$(cat "$T/err")"
check "--wait-timeout, one job: about 0.5 s ($took ms)" [ "$took" -ge 450 -a "$took" -lt 3000 ]

# SIGINT (Ctrl-C) while waiting: the ids of the jobs not ended are printed, not lost (before:
# exit 130 and nothing, the ids withheld by --wait at enqueue).
"$BIN/cenqueue" --wait -q manual --id si-1 noop >"$T/out" 2>"$T/err" &
cpid=$!
wait_for 10 subscribed si-1
# Subscribed, the job goes in whatever comes; once it is in, a SIGINT lands in the wait or
# just before it, which says the same lines. Its handler set first: bash starts a job in the
# background with SIGINT ignored, and a SIGINT before the handler was lost, the wait endless.
wait_for 10 jobs_are queued si-1
wait_for 10 catching "$cpid" 2
kill -INT "$cpid"
wait_for 10 exited "$cpid" || kill -TERM "$cpid"
wait "$cpid"; rc=$?
check_eq "SIGINT while waiting: exit 1" 1 "$rc"
check_eq "...the id of the job not ended printed" "si-1" "$(cat "$T/out")"
check_contains "...and stderr says so" "interrupted with 1 of 1 jobs not ended: they go on (their ids printed)" \
    "$(cat "$T/err")"
check_eq "...and the job is still queued" queued "$(rcli HGET cq:job:si-1 status)"
# The same with a stdout that takes nothing (a full disk): the ids are not said to be printed
# (before: 'their ids printed', whatever write(2) said).
"$BIN/cenqueue" --wait -q manual --id si-2 noop >/dev/full 2>"$T/err" &
cpid=$!
wait_for 10 subscribed si-2
wait_for 10 jobs_are queued si-2
wait_for 10 catching "$cpid" 2
kill -INT "$cpid"
wait_for 10 exited "$cpid" || kill -TERM "$cpid"
wait "$cpid"; rc=$?
check_eq "SIGINT while waiting, stdout full: exit 1" 1 "$rc"
check_contains "...and stderr says the ids could not be printed" \
    "interrupted with 1 of 1 jobs not ended: they go on (their ids not all printed: stdout failed)" \
    "$(cat "$T/err")"

# SIGINT while a result's line is half written: stdout a pipe of 4096 bytes that nobody reads,
# and a result of 20000 bytes, so that cenqueue is blocked inside the line when the signal
# comes (the pipe holds 4096 bytes: FIONREAD, no guess at the time). The line ends before the
# ids go out, and the job's id is a line of its own (before: glued to the half line's end).
cat >"$T/midline.py" <<'EOF'
import array
import fcntl
import os
import signal
import subprocess
import sys
import termios
import time

cenqueue, sock, out_path = sys.argv[1:4]
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
cap = fcntl.fcntl(w, 1032)  # F_GETPIPE_SZ
p = subprocess.Popen([cenqueue, "--wait", "-q", "manual", "--id", "ml-1", "noop"], stdout=w,
                     stderr=open(out_path + ".err", "w"))
os.close(w)
def cli(*args):
    return subprocess.run(["redis-cli", "-s", sock] + list(args), capture_output=True,
                          text=True).stdout
def until(cond, what):
    end = time.monotonic() + 20
    while not cond():
        if time.monotonic() > end or p.poll() is not None:
            sys.exit("midline.py: " + what)
        time.sleep(0.01)
until(lambda: cli("PUBSUB", "NUMSUB", "cq:ended:ml-1").split()[-1] == "1", "no subscriber")
cli("HSET", "cq:job:ml-1", "status", "finished", "result", "x" * 20000)
cli("PUBLISH", "cq:ended:ml-1", "finished")
def queued():
    n = array.array("i", [0])
    fcntl.ioctl(r, termios.FIONREAD, n)
    return n[0]
until(lambda: queued() >= cap, "the pipe did not fill")
p.send_signal(signal.SIGINT)
out = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    out += b
open(out_path, "wb").write(out)
sys.exit(p.wait())
EOF
"$PY" "$T/midline.py" "$BIN/cenqueue" "$RSOCK" "$T/midline.out"
check_eq "SIGINT in the middle of a line: exit 1" 1 "$?"
check_eq "...the half line ended, then the id on a line of its own" "ml-1" \
    "$(tail -n 1 "$T/midline.out")"
check_eq "...two lines in all" 2 "$(wc -l <"$T/midline.out")"
check "...the first the start of the result's line" \
    grep -q "^ml-1 finished xxxx*\$" <(head -n 1 "$T/midline.out")
check_contains "...and stderr says so" "interrupted with 1 of 1 jobs not ended" \
    "$(cat "$T/midline.out.err")"

# A reader that left (| head -1): the wait stops at the first line it cannot write, as every
# command stops at its first failed write (cli.h), saying which jobs go on without their
# ids; it waited on for the job that never ends (here until timeout's 25 s, with nothing
# more to write to anyone).
rcli DEL cq:queue:manual >/dev/null
{
    printf 'noop a\nnoop b\nnoop c\n' |
        timeout 25 "$BIN/cenqueue" --wait --wait-timeout 60s --stdin -q manual 2>"$T/gone.err"
    echo $? >"$T/gone.rc"
} | head -n 1 >"$T/gone.out" &
hpid=$!
wait_for 10 queued manual 3
mapfile -t ids < <(rcli LRANGE cq:queue:manual 0 -1 | grep -oE "$UUID" | tac)
check_eq "reader gone: 3 jobs queued" 3 "${#ids[@]}"
wait_for 10 all_subscribed "${ids[@]}"
rcli HSET "cq:job:${ids[0]}" status finished result r0 >/dev/null
rcli PUBLISH "cq:ended:${ids[0]}" finished >/dev/null
wait_for 10 exited "$hpid" # head, the pipeline's last; 'wait' would wait for cenqueue too
t0=$(now)
rcli HSET "cq:job:${ids[1]}" status finished result r1 >/dev/null
rcli PUBLISH "cq:ended:${ids[1]}" finished >/dev/null
wait_for 30 test -s "$T/gone.rc"
took=$(ms_between "$t0" "$(now)")
wait "$hpid"
check_eq "reader gone after the first line: the first line read" "${ids[0]} finished r0" \
    "$(cat "$T/gone.out")"
check_eq "...cenqueue stops at the next line: exit 1" 1 "$(cat "$T/gone.rc")"
check "...within 10 s of that job's end, not at the timeout ($took ms)" [ "$took" -lt 10000 ]
check_eq "...one line on stderr of it, saying which go on" \
    "cenqueue: writing the jobs' outcomes to stdout: Broken pipe (stopped waiting with 1 of 3 jobs not ended: they go on, their ids not printed)" \
    "$(grep -F 'stdout' "$T/gone.err")"
check_eq "...the job not ended is still queued" queued "$(rcli HGET "cq:job:${ids[2]}" status)"
check_eq "...and not waited for: no channel left" "" "$(rcli PUBSUB CHANNELS)"
rcli DEL cq:queue:manual >/dev/null

# ---- cqctl wait: jobs enqueued earlier, by any producer ----

# The ids on stdin ('-') from cenqueue --stdin, which printed them as each batch went in.
seq 50 | sed 's/^/noop /' | "$BIN/cenqueue" --stdin -q manual >"$T/ids" 2>/dev/null
mapfile -t ids <"$T/ids"
"$BIN/cqctl" wait - <"$T/ids" >"$T/out" 2>"$T/err" &
cpid=$!
wait_for 10 all_subscribed "${ids[@]}"
for id in "${ids[@]}"; do
    rcli HSET "cq:job:$id" status finished result "r-$id" >/dev/null
    rcli PUBLISH "cq:ended:$id" finished >/dev/null
done
wait_for 10 exited "$cpid"
wait "$cpid"; rc=$?
check_eq "cqctl wait -: exit 0" 0 "$rc"
check_eq "...a line each, with its result, in the order they ended" \
    "$(for id in "${ids[@]}"; do echo "$id finished r-$id"; done)" "$(cat "$T/out")"
check_contains "...the summary" "cqctl: 50 finished, 0 failed, 0 canceled" "$(cat "$T/err")"

# Ids as arguments, --json, a failed one and one that does not end in time; an id without a
# status is said and not waited for (before, a typo would have been waited for for good).
rcli HSET cq:job:cw-1 status failed error 'it broke' >/dev/null
rcli HSET cq:job:cw-2 status finished result_json '{"n":2}' >/dev/null
rcli HSET cq:job:cw-3 status queued >/dev/null
out=$("$BIN/cqctl" --json wait --wait-timeout 300ms cw-1 cw-2 cw-nosuch cw-3 2>"$T/err"); rc=$?
check_eq "cqctl --json wait: exit 1" 1 "$rc"
check_eq "...a JSON line each: the ended ones, then the one open with its state" \
    "$(printf '%s\n' '{"id":"cw-1","state":"failed","error":"it broke"}' \
        '{"id":"cw-2","state":"finished","result_json":{"n":2}}' \
        '{"id":"cw-3","state":"queued"}')" "$(grep -v '"cw-nosuch"' <<<"$out")"
check_contains "...the id without a status named, not waited for" \
    "cqctl: job cw-nosuch: no status (never enqueued" "$(cat "$T/err")"
# ...and on stdout too, so that a program reading it sees every id it gave (it was on
# stderr alone).
check_eq "...and a JSON line of its own on stdout, once" '{"id":"cw-nosuch","state":"unknown"}' \
    "$(grep '"cw-nosuch"' <<<"$out")"
check_contains "...the one that did not end" "1 of 3 jobs did not end within 0.3s (1 queued)" \
    "$(cat "$T/err")"
# A result and an error that are not UTF-8 (a command's stderr, a hand-written hash): each
# JSON line parses all the same, those bytes as U+FFFD (they went out raw: no reader took it).
rcli HSET cq:job:cw-4 status finished result $'a\xffb' >/dev/null
rcli HSET cq:job:cw-5 status failed error $'e\xc3' >/dev/null
rcli HSET cq:job:cw-6 status finished result_json $'{"s":"\xff"}' >/dev/null
"$BIN/cqctl" --json wait cw-4 cw-5 cw-6 >"$T/out" 2>"$T/err"; rc=$?
check_eq "cqctl --json wait, not UTF-8: exit 1 (one failed)" 1 "$rc"
check_eq "...each line JSON, the bytes that are no UTF-8 as U+FFFD" \
    "$(printf '%s\n' '{"id": "cw-4", "state": "finished", "result": "a\ufffdb"}' \
        '{"id": "cw-5", "state": "failed", "error": "e\ufffd"}' \
        '{"id": "cw-6", "state": "finished", "result_json": {"s": "\ufffd"}}')" \
    "$("$PY" -c 'import json, sys
for l in sys.stdin.buffer: print(json.dumps(json.loads(l.decode("utf-8"))))' <"$T/out" 2>&1)"
# A result_json with more after its JSON (a hand-written hash) is a string, whole: its first
# value alone was the result, the rest dropped without a word.
rcli HSET cq:job:cw-7 status finished result_json '{"n":1} and more' >/dev/null
out=$("$BIN/cqctl" --json wait cw-7 2>/dev/null); rc=$?
check_eq "cqctl --json wait, result_json and more: exit 0" 0 "$rc"
check_eq "...the whole text, as a string" \
    '{"id":"cw-7","state":"finished","result":"{\"n\":1} and more"}' "$out"
# Control bytes of a text result (a hand-written hash, a command's output) are shown as a log
# line shows them, so that a job is one line and drives no terminal: a newline broke the
# line, an ESC went out raw (a tab stays). --json escapes them as JSON does.
rcli HSET cq:job:cw-10 status finished result $'a\nb\r\x1b[31mc\td\x7f' >/dev/null
out=$("$BIN/cqctl" wait cw-10 2>/dev/null); rc=$?
check_eq "cqctl wait, a result with control bytes: exit 0" 0 "$rc"
check_eq "...one line, each shown" $'cw-10 finished a\\nb\\r\\x1b[31mc\td\\x7f' "$out"
check_eq "...--json: the result as it is, JSON-escaped on one line" "1 'a\nb\r\x1b[31mc\td\x7f'" \
    "$("$BIN/cqctl" --json wait cw-10 2>/dev/null |
        "$PY" -c 'import json, sys; l = sys.stdin.readlines(); print(len(l), repr(json.loads(l[0])["result"]))')"
# A hash with a status cq does not write (by hand) is not waited for either, said as it is:
# it was 'no status (never enqueued, ...)' of a hash that holds one.
rcli HSET cq:job:cw-9 status weird >/dev/null
"$BIN/cqctl" wait cw-9 >/dev/null 2>"$T/err"; rc=$?
check_eq "cqctl wait of a job whose status is none of cq's: exit 1" 1 "$rc"
check_contains "...saying which it is" "cqctl: job cw-9: its status 'weird' is none of cq's" \
    "$(cat "$T/err")"
out=$("$BIN/cqctl" --json wait cw-9 2>"$T/err"); rc=$?
check_eq "cqctl --json wait of it: exit 1, its line on stdout, unknown, and the one on stderr" \
    "1 {\"id\":\"cw-9\",\"state\":\"unknown\"} 1" "$rc $out $(grep -c "status 'weird'" "$T/err")"
"$BIN/cqctl" wait cw-2 >/dev/null 2>&1; rc=$?
check_eq "cqctl wait of one finished job: exit 0" 0 "$rc"
"$BIN/cqctl" wait cw-nosuch >/dev/null 2>&1; rc=$?
check_eq "cqctl wait of an id without a status: exit 1" 1 "$rc"
# The statuses are read once, by the wait, after subscribing (cqctl read them all once more
# before it, to find the ids without one): an HGETALL each, 3 before.
calls() { rcli INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"; }
rcli CONFIG RESETSTAT >/dev/null
"$BIN/cqctl" wait cw-2 cw-nosuch >/dev/null 2>"$T/err"; rc=$?
check_eq "cqctl wait of a finished job and an unknown one: exit 1, each status read once" \
    "1 2" "$rc $(calls hgetall)"
check_contains "...the unknown one said" "cqctl: job cw-nosuch: no status" "$(cat "$T/err")"
# A job that ends as the wait begins and whose hash goes at once (--result-ttl 0: one script
# drops it and publishes, as the worker's): seen by its message, as before, whether its status
# was read before the end (started: the message wakes the wait) or after it (no hash: the
# message, come before that read's reply, is read before it is taken for no status).
rcli HSET cq:job:cw-11 status started >/dev/null
"$BIN/cqctl" wait cw-11 >"$T/out" 2>"$T/err" &
cpid=$!
wait_for 10 subscribed cw-11
rcli EVAL "redis.call('DEL', KEYS[1]); return redis.call('PUBLISH', KEYS[2], 'finished')" 2 \
    cq:job:cw-11 cq:ended:cw-11 >/dev/null
wait_for 10 exited "$cpid"
wait "$cpid"; rc=$?
check_eq "cqctl wait of a job that ended and whose hash went at once: exit 0, its line" \
    "0 cw-11 finished" "$rc $(cat "$T/out")"
"$BIN/cqctl" wait 'no such' >/dev/null 2>"$T/err"; rc=$?
check_eq "cqctl wait of a bad id: exit 2" 2 "$rc"
check_contains "...says why" "job id 'no such'" "$(cat "$T/err")"
# Stdin's ids are checked as arguments are, a refusal naming its line (a NUL byte ended the id:
# "cw-2\0x" was job cw-2, waited for); CRLF line ends are taken.
printf 'cw-2\r\n\ncw-2\0x\n' | "$BIN/cqctl" wait - >"$T/out" 2>"$T/err"; rc=$?
check_eq "cqctl wait - of a line with a NUL byte: exit 2" 2 "$rc"
check_eq "...nothing waited for" "" "$(cat "$T/out")"
check_contains "...naming the line and the byte" \
    "cqctl: stdin line 3: job id 'cw-2' followed by a NUL byte" "$(cat "$T/err")"
printf 'cw-2\nno such\n' | "$BIN/cqctl" wait - >/dev/null 2>"$T/err"; rc=$?
check_eq "cqctl wait - of a bad id: exit 2" 2 "$rc"
check_contains "...naming the line" "cqctl: stdin line 2: job id 'no such'" "$(cat "$T/err")"
# A line longer than an id is refused there, not read to its end first: < /dev/zero, one line
# without end, was held in memory until the OOM killer ended cqctl (137, within timeout's
# 10 s). Here it may take 1 GiB at most: not under valgrind (CQ_TEST_WRAP), nor on a sanitizer
# build, whose shadow memory is terabytes of address space (ASan could not start under it).
limited() { ! wrapped && ! sanitized; }
(! limited || ulimit -v 1048576; exec timeout 10 "$BIN/cqctl" wait - </dev/zero >/dev/null 2>"$T/err")
rc=$?
check_eq "cqctl wait - </dev/zero: exit 2, at once" 2 "$rc"
check_contains "...its first line too long (under the limit it was 'no job id on stdin')" \
    "cqctl: stdin line 1: job id '': longer than 128 bytes" "$(head -1 "$T/err")"
"$PY" -c 'print("a" * 200)' | "$BIN/cqctl" wait - >/dev/null 2>"$T/err"; rc=$?
check_eq "cqctl wait - of a line of 200 bytes: exit 2" 2 "$rc"
check_contains "...naming the line and the cause" \
    "cqctl: stdin line 1: job id 'aaaaaaaa" "$(head -1 "$T/err")"
check_contains "...longer than an id" "...': longer than 128 bytes" "$(head -1 "$T/err")"
out=$(printf 'cw-2\r\n' | "$BIN/cqctl" wait - 2>/dev/null); rc=$?
check_eq "cqctl wait - of a CRLF line: exit 0" 0 "$rc"
check_eq "...its job's line" 'cw-2 finished {"n":2}' "$out"
"$BIN/cqctl" wait - </dev/null >/dev/null 2>"$T/err"; rc=$?
check_eq "cqctl wait - of an empty stdin: exit 2" 2 "$rc"
# SIGINT before the wait, while stdin is read and while Redis is asked (a server that never
# answers): the ids given are printed, as the wait prints those not ended, exit 1 (it killed
# cqctl, status 130, and the ids of cenqueue --stdin | cqctl wait - were nowhere).
case $(uname -m) in aarch64) READ_NR=63 ;; *) READ_NR=0 ;; esac
# reading PID FD: PID waits in a read(2) of FD (0x0 for stdin; "any" for another).
reading() {
    local nr fd
    read -r nr fd _ <"/proc/$1/syscall" || return 1
    [ "$nr" = "$READ_NR" ] && { [ "$fd" = "$2" ] || { [ "$2" = any ] && [ "$fd" != 0x0 ]; }; }
}
mkfifo "$T/ids.fifo"
"$BIN/cqctl" wait - <"$T/ids.fifo" >"$T/out" 2>"$T/err" &
cpid=$!
exec 6>"$T/ids.fifo"
printf 'cw-2\ncw-3\n' >&6
wait_for 10 reading "$cpid" 0x0 || echo "cqctl is not reading stdin: $(cat "/proc/$cpid/syscall")" >&3
kill -INT "$cpid"
wait_for 10 exited "$cpid" || kill -TERM "$cpid" # a background job's SIGINT is ignored by default
exec 6>&-
wait "$cpid"; rc=$?
check_eq "SIGINT while stdin is read: exit 1" 1 "$rc"
check_eq "...the ids read printed" "$(printf 'cw-2\ncw-3')" "$(cat "$T/out")"
check_contains "...and said" "cqctl: interrupted with 2 of 2 jobs not ended" "$(cat "$T/err")"
"$PY" -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
c = s.accept()
time.sleep(60)' "$T/mute.sock" &
PIDS+=("$!")
wait_for 10 test -S "$T/mute.sock"
"$BIN/cqctl" -u "unix://$T/mute.sock" --json wait cw-2 cw-3 >"$T/out" 2>"$T/err" &
cpid=$!
wait_for 10 reading "$cpid" any || echo "cqctl is not reading Redis: $(cat "/proc/$cpid/syscall")" >&3
kill -INT "$cpid"
wait_for 10 exited "$cpid" || kill -TERM "$cpid"
wait "$cpid"; rc=$?
check_eq "SIGINT before the wait (Redis not answering): exit 1" 1 "$rc"
check_eq "...every id printed (--json)" "$(printf '%s\n' '{"id":"cw-2"}' '{"id":"cw-3"}')" \
    "$(cat "$T/out")"
check_contains "...and said" "cqctl: interrupted with 2 of 2 jobs not ended" "$(cat "$T/err")"
# Lines that cannot be written: a full disk said with its reason (it was 'Input/output
# error'); a reader that left, exit 1 without a word (it was said as that same error).
"$BIN/cqctl" wait cw-2 >/dev/full 2>"$T/err"; rc=$?
check_eq "cqctl wait >/dev/full: exit 1" 1 "$rc"
check_eq "...the reason" "cqctl: writing the jobs' outcomes to stdout: No space left on device" \
    "$(cat "$T/err")"
rcli HSET cq:job:cw-8 status queued >/dev/null
mkfifo "$T/out.fifo"
"$BIN/cqctl" wait cw-8 >"$T/out.fifo" 2>"$T/err" &
cpid=$!
"$PY" -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY))' "$T/out.fifo"
wait_for 10 subscribed cw-8
rcli HSET cq:job:cw-8 status finished result r >/dev/null
rcli PUBLISH cq:ended:cw-8 finished >/dev/null
wait_for 10 exited "$cpid"
wait "$cpid"; rc=$?
check_eq "cqctl wait, its reader gone (EPIPE): exit 1" 1 "$rc"
check_eq "...without a word" "" "$(cat "$T/err")"
# ...and with a job not ended (cw-3, queued for good), it stops at that first line it cannot
# write, saying so, where it waited for cw-3 for good, writing to nobody.
t0=$(now)
perl -e 'pipe(my $r, my $w) or die; close $r; open(STDOUT, ">&", $w) or die; close $w;
         exec @ARGV or die "exec $ARGV[0]: $!\n"' -- timeout 20 "$BIN/cqctl" wait cw-2 cw-3 2>"$T/err"
rc=$?
took=$(ms_between "$t0" "$(now)")
check_eq "cqctl wait, its reader gone, a job not ended: exit 1 at its first line" 1 "$rc"
check "...within 10 s, not when timeout ends it ($took ms)" [ "$took" -lt 10000 ]
check_eq "...saying which go on" \
    "cqctl: writing the jobs' outcomes to stdout: Broken pipe (stopped waiting with 1 of 2 jobs not ended: they go on, their ids not printed)" \
    "$(cat "$T/err")"
"$BIN/cqctl" wait --wait-timeout 0 cw-2 >/dev/null 2>&1; rc=$?
check_eq "cqctl wait --wait-timeout 0: exit 2" 2 "$rc"
"$BIN/cqctl" info --wait-timeout 1s >/dev/null 2>&1; rc=$?
check_eq "--wait-timeout is wait's alone: exit 2" 2 "$rc"

# ---- usage and enqueue failures ----

"$BIN/cenqueue" --wait-timeout 1 noop >/dev/null 2>"$T/err"; rc=$?
check_eq "--wait-timeout without --wait: exit 2" 2 "$rc"
check_contains "...says why" "--wait-timeout needs --wait" "$(cat "$T/err")"
"$BIN/cenqueue" --wait --wait-timeout 0 noop >/dev/null 2>&1; rc=$?
check_eq "--wait-timeout 0: exit 2" 2 "$rc"
out=$(printf 'noop a\nnosuchfunc\n' | "$BIN/cenqueue" --wait --stdin 2>"$T/err"); rc=$?
check_eq "a refused line: exit 2, no waiting" 2 "$rc"
check_eq "a refused line: the id of the job before it, which went in" 1 "$(grep -c . <<<"$out")"
check_contains "--help documents --wait's lines" "ID failed ERROR" "$("$BIN/cenqueue" --help)"

check_eq "no waiter left subscribed" "" "$(rcli PUBSUB CHANNELS)"
[ "$FAILS" -eq 0 ] || { echo "---- worker log"; cat "$T/w.log"; }
finish
