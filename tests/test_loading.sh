#!/usr/bin/env bash
# test_loading.sh - a Redis restarted with data to load answers LOADING for as long as the
# load goes on (seconds to minutes for a large AOF or RDB). cenqueue and cqctl, one-shot
# commands, fail at once, saying why and what to do.
. "$(dirname "$0")/lib.sh"

start_redis
LOAD_KEYS=1800 # 5 ms each (key-load-delay): a load of 9 s
loading() { [[ $(rcli PING 2>&1) == LOADING* ]]; }

# ---- Redis restarted with data that takes seconds to load: a snapshot of LOAD_KEYS keys of
#      100 bytes, read back with a delay a key (a hidden config of Redis's own tests) and the
#      clients served every KB read, so that they are answered LOADING meanwhile ----
rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'pad:' .. i, string.rep('x', 100)) end" \
    0 "$LOAD_KEYS" >/dev/null
rcli SAVE >/dev/null
stop_redis
redis-server "${REDIS_ARGS[@]}" --port 0 --key-load-delay 5000 \
    --loading-process-events-interval-bytes 1024 &
RPID=$!
PIDS+=("$RPID")
wait_for 10 loading || { echo "FATAL: redis-server is not loading its data"; cat "$T/redis/log"; exit 1; }

# ---- cenqueue and cqctl fail at once, in one line naming LOADING and what to do ----
fix="LOADING Redis is loading the dataset in memory; try again when the load is done"
err=$("$BIN/cenqueue" noop 2>&1); rc=$?
check_eq "cenqueue while redis loads: exit 1" 1 "$rc"
check_eq "... one line" 1 "$(printf '%s\n' "$err" | wc -l)"
check_contains "... naming LOADING and the fix" "redis $RSOCK: $fix" "$err"
err=$("$BIN/cqctl" info 2>&1); rc=$?
check_eq "cqctl info while redis loads: exit 1" 1 "$rc"
check_eq "... one line" 1 "$(printf '%s\n' "$err" | wc -l)"
check_contains "... naming LOADING and the fix" "redis $RSOCK: $fix" "$err"
check "redis still loads (else the checks above prove nothing)" loading

finish
