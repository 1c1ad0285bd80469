#!/usr/bin/env bash
# test_chaos.sh - hundreds of downloads from a server with latency while workers are
# SIGKILLed at random and restarted: every job ends finished, every file is whole and right,
# no temporary file is left, and the test reports how many jobs ran twice.
. "$(dirname "$0")/lib.sh"

N=${CHAOS_JOBS:-400}
CHAOS_SECONDS=${CHAOS_SECONDS:-6}
start_redis --appendonly yes
start_httpd --generate --size 16000 --latency 0.2
ROOT=$T/root
mkdir -p "$ROOT"

for i in $(seq 1 $N); do echo "download_link images/c$((i % 7)) $HBASE/chaos$i.jpg"; done |
    "$BIN/cenqueue" --stdin >"$T/ids" 2>/dev/null
check_eq "all $N jobs enqueued" $N "$(wc -l <"$T/ids")"

finished_count() {
    rcli EVAL "local n=0 for _,k in ipairs(KEYS) do if redis.call('HGET',k,'status')=='finished' then n=n+1 end end return n" \
        "$N" $(sed 's/^/cq:job:/' "$T/ids")
}
declare -A WP
start_w() { "$BIN/cworker" -c 4 --download-root "$ROOT" --log-level warn >>"$T/w$1.log" 2>&1 & WP[$1]=$!; }
for k in 1 2 3; do start_w $k; done

# Kill a random worker with SIGKILL every 0.3-1.0 s and start a new one in its place (the
# sleeps are the pace of the chaos, not waits for anything).
kills=0
deadline=$(( $(date +%s) + CHAOS_SECONDS ))
while [ "$(date +%s)" -lt $deadline ]; do
    sleep "0.$(( RANDOM % 8 + 3 ))"
    k=$(( RANDOM % 3 + 1 ))
    kill -KILL "${WP[$k]}" 2>/dev/null && kills=$((kills + 1))
    wait "${WP[$k]}" 2>/dev/null
    start_w $k
done
echo "     chaos: $kills workers SIGKILLed and restarted in ${CHAOS_SECONDS}s; $(finished_count) of $N finished by then"

# Jobs held by killed workers come back once their lease runs out (about 10 s).
all_finished() { [ "$(finished_count)" = "$N" ]; }
wait_for 90 all_finished
check_eq "every job ended finished" "$N" "$(finished_count)"
for k in 1 2 3; do kill -TERM "${WP[$k]}"; wait "${WP[$k]}"; done

bad=$("$PY" - "$SRC/tests/fixtures" "$ROOT" "$N" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from httpd import generate_bytes
root, n = sys.argv[2], int(sys.argv[3])
bad = 0
for i in range(1, n + 1):
    path = os.path.join(root, "images", "c%d" % (i % 7), "chaos%d.jpg" % i)
    try:
        ok = open(path, "rb").read() == generate_bytes("chaos%d.jpg" % i, 16000)
    except OSError:
        ok = False
    bad += not ok
print(bad)
PY
)
check_eq "every file whole and right" 0 "$bad"
check_eq "no other files" $N "$(find "$ROOT" -type f | wc -l)"
check_eq "no temporary files" "" "$(find "$ROOT" -name '.*' -type f)"
check_eq "queue empty" 0 "$(rcli LLEN cq:queue:default)"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_eq "no failed jobs" 0 "$(rcli ZCARD cq:failed)"
check_eq "no dead records" 0 "$(rcli LLEN cq:dead)"
check "workers were really killed" [ "$kills" -ge 3 ]

twice=$(curl -s "$HBASE/_/hits" | "$PY" -c '
import json, sys
hits = json.load(sys.stdin)
print(sum(1 for p, n in hits.items() if p.startswith("/chaos") and n > 1))')
recovered=$(rcli HGET cq:stats recovered)
echo "     $twice of $N jobs ran twice (downloaded more than once); $recovered recoveries from killed workers"
check "the killed workers' jobs were recovered" [ "${recovered:-0}" -ge 1 ]
finish
