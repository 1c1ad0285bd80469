#!/usr/bin/env bash
# test_soak.sh - a large drain under fire: SOAK_JOBS (default 200,000) noop jobs enqueued by
# `cenqueue --stdin`, drained by three `cworker -c 64 --lease 3s` while a worker is SIGKILLed
# and started again every 0.5-1 s for SOAK_SECONDS (default 8), and Redis itself is SIGKILLed
# once in the middle (AOF, fsync every second: it comes back with up to a second of writes
# lost) and started again at the same address. Then: every job's status is finished, nothing
# is left in the queue, in flight, scheduled, failed or dead, and the test reports how many
# jobs have more than one attempt recorded (a run whose start never reached Redis, or was
# lost with its last second, is not counted: a no-op leaves no other trace) and how many were
# recovered from killed workers.
#
# A SIGKILLed Redis is the hard case: the workers' last outcomes and takes may be gone from
# it while the workers remember them (reconcile, worker.c: records back in a live worker's
# in-flight list that it no longer holds go back to their queue), and the workers killed
# meanwhile hold jobs only their lease frees. bench/soak runs it with a million jobs
# (docs/BENCHMARKS.md, "A million jobs under fire").
. "$(dirname "$0")/lib.sh"

exec 3>&1   # supervise's words, from inside wait_for too (which silences its condition)
N=${SOAK_JOBS:-200000}
SECS=${SOAK_SECONDS:-8}
REDIS_SOAK=(--appendonly yes --appendfsync everysec)
start_redis_tcp "${REDIS_SOAK[@]}"

t0=$(date +%s.%N)
seq "$N" | sed 's/.*/noop/' | "$BIN/cenqueue" --stdin --no-check -q soak >"$T/ids" 2>"$T/enq.err"
check_eq "all $N jobs enqueued" 0 "$?" || cat "$T/enq.err"
check_eq "...$N ids" "$N" "$(wc -l <"$T/ids")"
# The AOF has the enqueue for sure before Redis is killed (fsync every second).
sleep 1.5

declare -A WP
starts=0
start_w() {
    starts=$((starts + 1))
    "$BIN/cworker" -c 64 --lease 3s --log-level warn soak >"$T/w.$starts.log" 2>&1 &
    WP[$1]=$!
    PIDS+=("$!")
    WLOG[$1]=$T/w.$starts.log
}
declare -A WLOG
for k in 1 2 3; do start_w $k; done
t1=$(date +%s.%N)

# A worker that exited on its own is started again, as its supervisor would (systemd's
# Restart=on-failure, Compose's restart policy). Only one kind of exit is expected: at its
# start, Redis down (killed, or loading its AOF: "LOADING"), exit 1 with the connection's
# error (cworker does not wait for a Redis it never reached: docs/OPERATIONS.md). Any other
# is a failure, its log shown.
start_fails=0
other_exits=0
supervise() {
    local k rc
    for k in 1 2 3; do
        exited "${WP[$k]}" || continue
        wait "${WP[$k]}"; rc=$?
        if [ "$rc" = 1 ] && [ "$(grep -c . "${WLOG[$k]}")" = 1 ] &&
            grep -qE 'ERROR (redis .*: (Connection refused|Connection reset by peer|Server closed the connection)|cannot register this worker: .*LOADING)' "${WLOG[$k]}"; then
            start_fails=$((start_fails + 1))
        else
            other_exits=$((other_exits + 1))
            echo "     worker $k (pid ${WP[$k]}) exited on its own, status $rc; its log:" >&3
            sed 's/^/       /' "${WLOG[$k]}" | tail -n 20 >&3
        fi
        start_w $k
    done
}

# The chaos: a SIGKILL of a random worker every 0.5-1 s, and one of Redis half-way (the
# sleeps are its pace, not waits for anything).
kills=0
redis_killed=0
end=$(( $(date +%s) + SECS ))
half=$(( $(date +%s) + SECS / 2 ))
while [ "$(date +%s)" -lt "$end" ]; do
    sleep "0.$(( RANDOM % 6 + 5 ))"
    supervise
    k=$(( RANDOM % 3 + 1 ))
    kill -KILL "${WP[$k]}" 2>/dev/null && kills=$((kills + 1))
    wait "${WP[$k]}" 2>/dev/null
    start_w $k
    if [ "$redis_killed" = 0 ] && [ "$(date +%s)" -ge "$half" ]; then
        left=$(rcli LLEN cq:queue:soak)
        kill -KILL "$RPID"
        wait "$RPID" 2>/dev/null
        REDIS_START_WAIT=120 start_redis_again "${REDIS_SOAK[@]}"
        redis_killed=1
        echo "     Redis SIGKILLed and started again with $left jobs queued; back with $(rcli LLEN cq:queue:soak)"
    fi
done
echo "     chaos: $kills workers SIGKILLed and started again in ${SECS}s, Redis once"

# Done: nothing queued or in flight (the killed workers' jobs come back within their lease,
# 3 s, and a recovery pass), then every status is read.
drained() {
    supervise
    [ "$(rcli LLEN cq:queue:soak)" = 0 ] && [ -z "$(rcli --scan --pattern 'cq:inflight:*')" ]
}
wait_for $((120 + N / 5000)) drained
t2=$(date +%s.%N)
supervise
for k in 1 2 3; do
    kill -TERM "${WP[$k]}"
    wait "${WP[$k]}"
    check_eq "worker $k: exit 0 on SIGTERM" 0 "$?"
done

# finished, attempts > 1, recovered > 0, and the sum of attempts, over every id, 5,000 a call.
counts=$(split -l 5000 "$T/ids" "$T/chunk." && for f in "$T"/chunk.*; do
    rcli EVAL "local f, twice, rec, runs = 0, 0, 0, 0
        for _, k in ipairs(KEYS) do
            local h = redis.call('HMGET', k, 'status', 'attempts', 'recovered')
            if h[1] == 'finished' then f = f + 1 end
            local a = tonumber(h[2]) or 0
            runs = runs + a
            if a > 1 then twice = twice + 1 end
            if (tonumber(h[3]) or 0) > 0 then rec = rec + 1 end
        end
        return {f, twice, rec, runs}" "$(wc -l <"$f")" $(sed 's/^/cq:job:/' "$f") | tr '\n' ' '
    echo
done | awk '{ f += $1; t += $2; r += $3; a += $4 } END { print f, t, r, a }')
read -r finished twice recovered runs <<<"$counts"
check_eq "every job's status is finished" "$N" "$finished"
check_eq "queue empty" 0 "$(rcli LLEN cq:queue:soak)"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_eq "nothing scheduled" 0 "$(rcli ZCARD cq:scheduled)"
check_eq "no failed jobs" 0 "$(rcli ZCARD cq:failed)"
check_eq "no dead records" 0 "$(rcli LLEN cq:dead)"
check "workers were really killed" [ "$kills" -ge 3 ]
check_eq "no worker exited on its own, but at its start while Redis was down" 0 "$other_exits"
check_eq "Redis was killed" 1 "$redis_killed"
enq=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a - 1.5 }')
drain=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')
echo "     $N jobs: enqueued in ${enq}s; drained in ${drain}s under the chaos; $twice with more" \
    "than one attempt recorded ($runs in all), $recovered recovered from killed workers;" \
    "$start_fails workers exited at their start while Redis was down, and were started again;" \
    "Redis's peak memory $(rcli INFO memory | awk -F: '/^used_memory_peak_human/ { print $2 }' | tr -d '\r')"
finish
