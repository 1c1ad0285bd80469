#!/usr/bin/env bash
# test_host.sh - a host failure is not the job's: a worker whose download root turns
# read-only under it sends its download_link jobs back to their queue (no attempt used, none
# failed), benches download_link after three in a row and says why, and another worker then
# runs them. Also the worker's logs: the periodic summary, "started" lines at debug, nothing
# alarming at a normal stop, --log-format json, and the note about a queue no producer used.
#
# The read-only disk is real: a tmpfs in a mount namespace of the test's own (unshare -m),
# remounted read-only while the worker runs in it. Nothing of it is seen outside, and it goes
# when the namespace's last process exits.
. "$(dirname "$0")/lib.sh"

start_redis
start_httpd --generate --size 3000

mkdir -p "$T/root" "$T/good"
unshare -m bash -c 'mount -t tmpfs -o size=4m tmpfs "$1" && touch "$1/.mounted" && exec sleep 600' \
    _ "$T/root" &
NSPID=$!
PIDS+=("$NSPID")
in_ns() { nsenter -t "$NSPID" -m "$@"; }
wait_for 5 in_ns test -e "$T/root/.mounted" ||
    { echo "FATAL: cannot make a mount namespace (unshare -m needs root)"; exit 1; }

enq() { "$BIN/cenqueue" --no-check "$@"; }
# status_of ID...: the statuses, space-separated.
status_of() { local id; for id in "$@"; do printf '%s ' "$(jfield "$id")"; done; }
logged() { grep -qF -- "$2" "$1"; }   # logged FILE TEXT

echo "# a worker whose download root turns read-only"
nsenter -t "$NSPID" -m "$BIN/cworker" -c 2 --download-root "$T/root" --summary-interval 1s --log-level debug \
    >/dev/null 2>"$T/w1.log" &
W1=$!
PIDS+=("$W1")
wait_for 10 workers_are 1 || { echo "FATAL: the worker did not start"; cat "$T/w1.log"; exit 1; }
ok=()
for i in 1 2 3; do ok+=("$(enq download_link d "$HBASE/ok$i.jpg")"); done
check "it downloads while the disk is fine" wait_for 10 jobs_are finished "${ok[@]}"
check_eq "... the files are there" 3 "$(in_ns find "$T/root/d" -name '*.jpg' | wc -l)"
check "a started line at debug for each job" logged "$T/w1.log" "${ok[0]} started (attempt 1)"

in_ns mount -o remount,ro "$T/root"
ro=()
for i in 1 2 3 4 5 6; do ro+=("$(enq download_link d "$HBASE/ro$i.jpg")"); done
check "three host failures in a row bench download_link, saying why" wait_for 15 logged \
    "$T/w1.log" "download_link: 3 jobs in a row failed because of this host, not the jobs"
check "... the line names the cause" logged "$T/w1.log" "Read-only file system"
check "... at ERROR" grep -q " ERROR download_link: 3 jobs in a row" "$T/w1.log"
check "each failure sent its job back" logged "$T/w1.log" \
    "went back to its queue (this host failed, not the job)"
sleep 2   # the benched worker keeps taking and handing back; nothing may fail meanwhile
check_eq "no job failed" 0 "$(rcli ZCARD cq:failed)"
check "every job is still to run" bash -c '! grep -q "finished\|failed" <<<"$1"' _ \
    "$(status_of "${ro[@]}")"
check_eq "no attempt was used" "" "$(for id in "${ro[@]}"; do
    a=$(jfield "$id" attempts); [ "${a:-0}" -le 1 ] || echo "$id:$a"; done)"
check "a summary line at info" grep -q " INFO summary: .* jobs\? ended in .*s (.*/s): .* finished, .* failed, .* canceled; .* retries, .* back for a host failure; .* in flight of 2" "$T/w1.log"

echo "# a healthy worker runs them"
"$BIN/cworker" -c 4 --download-root "$T/good" >/dev/null 2>"$T/w2.log" &
W2=$!
PIDS+=("$W2")
check "all six finish on the healthy worker" wait_for 20 jobs_are finished "${ro[@]}"
check_eq "... their files are on its disk" 6 "$(find "$T/good/d" -name 'ro*.jpg' | wc -l)"
check_eq "still no job failed" 0 "$(rcli ZCARD cq:failed)"
check_eq "the finished ones keep no error of their hand-backs" "" \
    "$(for id in "${ro[@]}"; do jfield "$id" error; done)"
check_eq "hand-backs are not counted as retries" "" "$(rcli HGET cq:stats retried)"
check "... but as handed_back" [ "$(rcli HGET cq:stats handed_back)" -ge 6 ]

echo "# a normal stop says nothing alarming"
before=$(wc -l <"$T/w1.log")
kill -TERM "$W1"
wait "$W1"
check_eq "the benched worker stops cleanly on SIGTERM" 0 "$?"
after=$(tail -n +$((before + 1)) "$T/w1.log")
check "no WARN or ERROR at the stop" bash -c '! grep -q " WARN \| ERROR " <<<"$1"' _ "$after"
check "no 'closed the connection' at the stop" bash -c '! grep -qi "closed the connection" <<<"$1"' _ "$after"
kill -TERM "$W2"
wait "$W2"

echo "# a command that exits 74 (EX_IOERR) is a host failure too"
printf '#!/bin/sh\necho "disk gone" >&2\nexit 74\n' >"$T/ioerr.sh"
chmod +x "$T/ioerr.sh"
id=$(enq -q cmds ioerr)
"$BIN/cworker" --max-jobs 1 --command "ioerr=$T/ioerr.sh" cmds >/dev/null 2>"$T/w4.log"
check_eq "the job is back for another try, not failed" retrying "$(jfield "$id")"
check_contains "... saying why" "exited with status 74: disk gone" "$(jfield "$id" error)"
check_eq "... its record back in line without an attempt used, one hand-off counted" "0 1" \
    "$(rcli ZRANGE cq:scheduled 0 -1 | "$PY" -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["id"] == sys.argv[1]: print(r.get("attempts", 0), r.get("handoffs", 0))' "$id")"
check "... and counted as handed back" grep -q "went back to its queue (this host failed" "$T/w4.log"
check "cqctl metrics has the hand-backs" bash -c \
    '"$1" metrics | grep -q "^cq_jobs_handed_back_total [1-9]"' _ "$BIN/cqctl"

echo "# --log-format json, and a queue no producer ever used"
enq -q images noop >/dev/null
# A failure whose text is not UTF-8 (a Latin-1 stderr line) must still log valid JSON.
printf '#!/bin/sh\nprintf "\\351chec \\"quoted\\" \\\\ back\\n" >&2\nexit 1\n' >"$T/latin.sh"
chmod +x "$T/latin.sh"
enq -q images latin >/dev/null
"$BIN/cworker" --burst --log-format json --log-level debug --command "latin=$T/latin.sh" \
    imgaes images >/dev/null 2>"$T/w3.log"
check_eq "the JSON worker exits 0" 0 "$?"
check "every line is a JSON object with time, level, program, pid and msg" "$PY" - "$T/w3.log" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no lines"
for line in lines:
    o = json.loads(line)
    assert set(o) == {"time", "level", "program", "pid", "msg"}, o
    assert o["level"] in ("error", "warn", "info", "debug") and o["program"] == "cworker", o
assert any("\ufffdchec \"quoted\" \\ back" in json.loads(l)["msg"] for l in lines), lines
PY
check "the unknown queue is named once, with the queues in use" "$PY" - "$T/w3.log" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
hits = [m for m in msgs if "queue imgaes: no producer has ever enqueued to it" in m["msg"]]
assert len(hits) == 1 and hits[0]["level"] == "info", hits
assert "the queues in use are: " in hits[0]["msg"] and "images" in hits[0]["msg"], hits
assert not any("queue images: no producer" in m["msg"] for m in msgs)
PY

finish
