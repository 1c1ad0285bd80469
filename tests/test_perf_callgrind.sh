#!/usr/bin/env bash
# test_perf_callgrind.sh - the instructions one job costs cworker, cenqueue and Redis (for a
# worker's drain), counted by callgrind, against the committed baseline
# tests/perf/callgrind-baseline: fails when any of them is more than 10% above it, notes when
# it is more than 10% below.
#
#   tests/test_perf_callgrind.sh BUILD               the check (CTest's perf_callgrind)
#   tests/test_perf_callgrind.sh BUILD --update      measure, then rewrite the baseline
#   tests/test_perf_callgrind.sh BUILD --runs 5      measure 5 times, print each and the spread
#   tests/test_perf_callgrind.sh BUILD --measure     measure once, print "cg PROGRAM JOBS IR"
#                                                    and "per-job PROGRAM IR" (bench/run)
#   --keep DIR keeps the callgrind output files (callgrind_annotate them to see where it went)
#   --drain-c C (with --measure or --runs) Redis's count for a drain by `cworker -c C` instead
#                of 64: the cost of smaller batches (the baseline is for 64)
#
# Why instructions: they do not depend on how busy the machine is, where jobs/s on a shared
# machine move by 10% from one run to the next. Each program runs twice, over N1 = 500 and
# N2 = 4,000 jobs, under `valgrind --tool=callgrind` (all threads counted), and the cost of a
# job is the marginal one, (Ir(N2) - Ir(N1)) / (N2 - N1): start-up, connecting and shutdown
# cancel out (bench/run's callgrind phase uses the same method on bigger no-op drains, and runs
# this script too).
#
#   cenqueue --stdin --quiet < N lines "noop"
#   cworker --burst -c 16 --log-level warn, draining N pre-filled "sleep 5ms" jobs through
#     tests/fixtures/slowproxy.py, which holds every reply of Redis back for 20 ms
#   redis: redis-server itself under callgrind, its counters zeroed once N "noop" jobs are
#     queued, while `cworker --burst -c 64 --log-level warn` drains them (the take and the
#     apply scripts: what limits a worker, docs/BENCHMARKS.md). Redis under callgrind is slow
#     enough that every batch is full, the same way every run.
#   redismodule: the same with cq's Redis module loaded (BUILD/lib/cq-redis.so), so that the
#     outcomes go through CQ.APPLY1 instead of the apply script
#   redisenqueue: redis-server with the module under callgrind while `cenqueue --stdin
#     --quiet` enqueues N "noop" jobs (through CQ.ENQUEUE1): what limits a bulk enqueue
#
# Why not no-op jobs straight to Redis, for cworker: its dispatcher records starts and ends and
# takes more in batches, one round trip each, and each round trip costs as much as several
# jobs (the scripts' text and arguments are formatted and sent). How many jobs a batch holds
# depends on which thread valgrind runs while the dispatcher waits for Redis, which changes
# from run to run: no-op jobs straight to Redis gave 29,678 to 36,291 instructions a job in
# five runs (19%). With every reply 20 ms late and every job 5 ms long, each batch of 16 is
# taken, marked started, and run before the reply comes, then ended with the next take, the
# same way every time: 43,112 to 43,960 in five runs (1.95%) at load 3-7. What still moves is
# the timers (a scheduled-jobs check every 250 ms, heartbeats, recovery): a slower machine
# runs more of them a job (docs/TESTING.md has the measurements). valgrind's fair scheduler
# (--fair-sched=yes) runs the threads in the order they became ready.
#
# The count depends on the compiler, its flags and the libraries (glibc, hiredis, cJSON): the
# test runs on the plain build it is part of (build/, RelWithDebInfo by default), refuses a
# sanitizer build, and fails on a build type other than the baseline's. The baseline records
# the build type, compiler and library versions it was measured with.
if [ -n "${CQ_TEST_WRAP:-}" ]; then
    echo "FATAL: test_perf_callgrind.sh runs its own valgrind: unset CQ_TEST_WRAP"
    exit 1
fi
. "$(dirname "$0")/lib.sh"
shift


BASELINE=$SRC/tests/perf/callgrind-baseline
BASELINE_SHOWN=tests/perf/callgrind-baseline
TOLERANCE=10          # percent, either way
JOBS=(500 4000)       # N1, N2
DELAY_MS=20           # slowproxy.py's hold on each reply
JOB="sleep 5ms"       # what cworker runs (cenqueue enqueues "noop")
MODE=check
RUNS=1
KEEP=
DRAIN_C=64
usage() {
    echo "usage: tests/test_perf_callgrind.sh BUILD [--update | --runs R | --measure] [--keep DIR]" \
         "[--drain-c C]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --update) MODE=update ;;
        --measure) MODE=measure ;;
        --runs) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage; RUNS=$2; MODE=runs; shift ;;
        --keep) [ $# -ge 2 ] || usage; KEEP=$2; shift ;;
        --drain-c) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage; DRAIN_C=$2; shift ;;
        *) usage ;;
    esac
    shift
done
if [ "$DRAIN_C" != 64 ] && [ "$MODE" != measure ] && [ "$MODE" != runs ]; then
    echo "FATAL: --drain-c goes with --measure or --runs: the baseline is for cworker -c 64" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "FATAL: valgrind is missing (scripts/deps --test)"; exit 1; }

VG=(valgrind --tool=callgrind --quiet --fair-sched=yes)
WORKER=(cworker --burst -c 16 --log-level warn)
ENQUEUE=(cenqueue --stdin --quiet)
DRAIN=(cworker --burst -c "$DRAIN_C" --log-level warn)
PROGS=(cworker cenqueue redis redismodule redisenqueue)
COMMAND="${VG[*]}: ${ENQUEUE[*]} < N lines noop; ${WORKER[*]} over N '$JOB' jobs, Redis's replies held ${DELAY_MS} ms (slowproxy.py); redis-server while ${DRAIN[*]} drains N noop jobs, without and with --loadmodule cq-redis.so; redis-server with it while ${ENQUEUE[*]} enqueues N noop jobs; N = ${JOBS[0]}, ${JOBS[1]}"
MODULE=$BUILD/lib/cq-redis.so

# ---- the build ----

[ -f "$BUILD/CMakeCache.txt" ] || { echo "FATAL: $BUILD has no CMakeCache.txt: not a build directory"; exit 1; }
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
BUILD_TYPE=$(cache CMAKE_BUILD_TYPE)
SANITIZERS=$(cache ENABLE_SANITIZERS)
if { [ -n "$SANITIZERS" ] && [ "$SANITIZERS" != OFF ]; } || [ "$(cache CQ_FUZZ)" = ON ]; then
    echo "FATAL: $BUILD is a sanitizer or fuzzing build (ENABLE_SANITIZERS=$SANITIZERS," \
         "CQ_FUZZ=$(cache CQ_FUZZ)), whose instructions a job are not the baseline's: this" \
         "test runs on the plain build (scripts/build, build/)"
    exit 1
fi
[ -f "$MODULE" ] || { echo "FATAL: $MODULE is missing: build it (cmake --build $BUILD --target cq_redis)"; exit 1; }
COMPILER=$("$(cache CMAKE_C_COMPILER)" --version 2>/dev/null | head -n 1)
LIBS="$(ldd --version 2>/dev/null | head -n 1 | sed 's/^ldd //'); $(ldd "$BIN/cworker" |
    grep -o 'lib\(hiredis\|cjson\)\.so[.0-9]*' | sort -u | tr '\n' ' ' | sed 's/ $//'); $(redis-server --version | sed 's/ sha=.*//')"

# ---- the baseline ----

# read_baseline: the baseline's key=value lines into base[], checked before anything is
# measured (check mode).
declare -A base=()
read_baseline() {
    [ -f "$BASELINE" ] || { echo "FATAL: no $BASELINE_SHOWN: write it with tests/test_perf_callgrind.sh build --update"; exit 1; }
    while IFS='=' read -r k v; do
        [[ $k =~ ^[a-z]+$ ]] && base[$k]=$v
    done <"$BASELINE"
    for k in build command "${PROGS[@]}"; do
        [ -n "${base[$k]:-}" ] || { echo "FATAL: $BASELINE_SHOWN has no $k= line: write it again with tests/test_perf_callgrind.sh build --update"; exit 1; }
    done
    if [ "${base[build]}" != "$BUILD_TYPE" ]; then
        echo "FATAL: $BUILD is a ${BUILD_TYPE:-(no type)} build and the baseline was measured on a" \
             "${base[build]} build, whose instructions a job differ: run the test on a" \
             "${base[build]} build (scripts/build)"
        exit 1
    fi
    if [ "${base[command]}" != "$COMMAND" ]; then
        echo "FATAL: $BASELINE_SHOWN was measured another way (${base[command]}): write it again" \
             "with tests/test_perf_callgrind.sh build --update"
        exit 1
    fi
}

[ "$MODE" != check ] || read_baseline

# ---- measuring ----

start_redis
pf=$T/slowproxy.port
"$PY" "$SRC/tests/fixtures/slowproxy.py" --to "$RSOCK" --port-file "$pf" --delay "$DELAY_MS" &
PIDS+=("$!")
wait_for 10 test -s "$pf" || { echo "FATAL: slowproxy.py did not start"; exit 1; }
SLOW_URL=redis://127.0.0.1:$(cat "$pf")

# commas N: N with thousands separators.
commas() { printf '%s' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/;ta'; }

# lines TEXT N: N lines of TEXT.
lines() { awk -v t="$1" -v n="$2" 'BEGIN { for (i = 0; i < n; i++) print t }'; }

# total FILE: the instruction count of a callgrind output file (its "totals:" line).
total() { awk '/^(totals|summary):/ { print $2; exit }' "$1"; }

# redis_once N OUT [MODULE [enqueue]]: Redis's instructions for a drain of N noop jobs, counted
# by callgrind into OUT (a redis-server of its own: the other runs' Redis is not slowed down),
# with MODULE loaded when given (then the worker must have used it); with "enqueue", for the
# enqueue of the N jobs instead (then cenqueue must have used CQ.ENQUEUE1). It runs in
# the subshell of $(run_once ...), whose PIDS the test's cleanup never sees, so it stops its
# server itself on every way out. The drain's counts are the dump that `callgrind_control -d`
# asks for (cg.1); the one valgrind writes as the server exits (cg) holds the shutdown alone.
redis_once() {
    local n=$1 out=$2 sock=$T/cg.sock got rc=1 load=() applies enq=${4:-}
    [ -z "${3:-}" ] || load=(--loadmodule "$3")
    rm -rf "$T/cgredis"
    mkdir -p "$T/cgredis"
    "${VG[@]}" --callgrind-out-file="$T/cgredis/cg" redis-server --dir "$T/cgredis" --save "" \
        --appendonly no --port 0 --unixsocket "$sock" --unixsocketperm 700 "${load[@]}" \
        --logfile "$T/cgredis/log" >"$T/cgredis/vg.log" 2>&1 &
    CGPID=$!
    if ! wait_for 60 eval '[ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ]'; then
        echo "redis-server under callgrind did not start:" >&2
        cat "$T/cgredis/vg.log" >&2
    elif [ -n "$enq" ]; then
        if ! callgrind_control -z "$CGPID" >"$T/cgctl.log" 2>&1; then
            echo "callgrind_control -z $CGPID failed:" >&2
            cat "$T/cgctl.log" >&2
        elif ! lines noop "$n" | "$BIN/cenqueue" -u "unix://$sock" --stdin --quiet 2>"$T/fill.log" >/dev/null; then
            cat "$T/fill.log" >&2
        elif ! callgrind_control -d "$CGPID" >"$T/cgctl.log" 2>&1; then
            echo "callgrind_control -d $CGPID failed:" >&2
            cat "$T/cgctl.log" >&2
        else
            got=$(redis-cli -s "$sock" LLEN cq:queue:default)
            applies=$(redis-cli -s "$sock" INFO commandstats | tr -d '\r' |
                sed -n 's/^cmdstat_cq.enqueue1:calls=\([0-9]*\),.*/\1/p')
            # the question, then a call a chunk of 1,000
            if [ "$got" != "$n" ]; then
                echo "cenqueue enqueued ${got:-0} of $n jobs" >&2
            elif [ "${applies:-0}" != $(( 1 + (n + 999) / 1000 )) ]; then
                echo "cenqueue called CQ.ENQUEUE1 ${applies:-0} times, not 1 + one a chunk" >&2
            else
                rc=0
            fi
        fi
    elif ! lines noop "$n" | "$BIN/cenqueue" -u "unix://$sock" --stdin --quiet 2>"$T/fill.log" >/dev/null; then
        cat "$T/fill.log" >&2
    elif ! callgrind_control -z "$CGPID" >"$T/cgctl.log" 2>&1; then
        echo "callgrind_control -z $CGPID failed:" >&2
        cat "$T/cgctl.log" >&2
    elif ! "$BIN/cworker" -u "unix://$sock" "${DRAIN[@]:1}" >"$T/run.log" 2>&1; then
        echo "cworker failed:" >&2
        cat "$T/run.log" >&2
    elif ! callgrind_control -d "$CGPID" >"$T/cgctl.log" 2>&1; then
        echo "callgrind_control -d $CGPID failed:" >&2
        cat "$T/cgctl.log" >&2
    else
        got=$(redis-cli -s "$sock" HGET cq:stats processed)
        applies=$(redis-cli -s "$sock" INFO commandstats | grep -c '^cmdstat_cq.apply1:')
        if [ "$got" != "$n" ]; then
            echo "cworker ran ${got:-0} of $n jobs" >&2
        elif [ "$applies" != "$(( ${#load[@]} / 2 ))" ]; then
            echo "the outcomes went through CQ.APPLY1 $applies times, with ${load[*]:-no module}" >&2
        else
            rc=0
        fi
    fi
    redis-cli -s "$sock" SHUTDOWN NOSAVE >/dev/null 2>&1 || kill "$CGPID" 2>/dev/null
    wait "$CGPID" 2>/dev/null
    if [ $rc = 0 ] && ! mv "$T/cgredis/cg.1" "$out" 2>/dev/null; then
        echo "callgrind_control -d wrote no $T/cgredis/cg.1" >&2
        rc=1
    fi
    return $rc
}

# run_once PROGRAM N: one callgrind run of PROGRAM (cworker, cenqueue or redis) over N jobs;
# prints its instruction count, or says on stderr what went wrong and returns 1.
run_once() {
    local prog=$1 n=$2 out=$T/callgrind.$1.$2 got failed
    rcli FLUSHALL >/dev/null
    rm -f "$out" "$out".*
    if [ "$prog" = redis ]; then
        redis_once "$n" "$out" || return 1
    elif [ "$prog" = redismodule ]; then
        redis_once "$n" "$out" "$MODULE" || return 1
    elif [ "$prog" = redisenqueue ]; then
        redis_once "$n" "$out" "$MODULE" enqueue || return 1
    elif [ "$prog" = cworker ]; then
        lines "$JOB" "$n" | "$BIN/cenqueue" --stdin --quiet 2>"$T/fill.log" >/dev/null ||
            { cat "$T/fill.log" >&2; return 1; }
        "${VG[@]}" --callgrind-out-file="$out" "$BIN/cworker" -u "$SLOW_URL" "${WORKER[@]:1}" \
            >"$T/run.log" 2>&1 || { echo "cworker under callgrind failed:" >&2; cat "$T/run.log" >&2; return 1; }
        got=$(rcli HGET cq:stats processed) failed=$(rcli HGET cq:stats failed)
        [ "$got" = "$n" ] && [ -z "$failed" ] ||
            { echo "cworker ran ${got:-0} of $n jobs, ${failed:-0} failed" >&2; return 1; }
    else
        lines noop "$n" >"$T/noop.$n"
        "${VG[@]}" --callgrind-out-file="$out" "$BIN/cenqueue" "${ENQUEUE[@]:1}" <"$T/noop.$n" \
            >"$T/run.log" 2>&1 || { echo "cenqueue under callgrind failed:" >&2; cat "$T/run.log" >&2; return 1; }
        got=$(rcli LLEN cq:queue:default)
        [ "$got" = "$n" ] || { echo "cenqueue queued $got of $n jobs" >&2; return 1; }
    fi
    [ -z "$KEEP" ] || { mkdir -p "$KEEP" && cp "$out" "$KEEP/"; }
    total "$out" | grep . || { echo "no totals in $out" >&2; return 1; }
}

# measure PROGRAM: sets IR to its instructions a job, (Ir(N2) - Ir(N1)) / (N2 - N1), and
# RAW to the two runs' "cg PROGRAM N IR" lines; ends the test when a run fails.
measure() {
    local a b
    a=$(run_once "$1" "${JOBS[0]}") && b=$(run_once "$1" "${JOBS[1]}") ||
        { echo "FATAL: could not measure $1 (above)"; exit 1; }
    IR=$(( (b - a) / (JOBS[1] - JOBS[0]) ))
    RAW=$(printf 'cg %s %s %s\ncg %s %s %s' "$1" "${JOBS[0]}" "$a" "$1" "${JOBS[1]}" "$b")
}

# spread NAME VALUES...: median, least, most, and (most - least) / median.
spread() {
    local name=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v p="$name" '
        { v[NR] = $1 }
        END { med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "%s: median %d, least %d, most %d instructions a job; (most - least) / median %.2f%%\n",
                     p, med, v[1], v[NR], 100 * (v[NR] - v[1]) / med }'
}

case $MODE in
    measure)
        for prog in "${PROGS[@]}"; do
            measure "$prog"
            echo "$RAW"
            echo "per-job $prog $IR"
        done
        exit 0 ;;
    runs)
        declare -a ws=() es=() rs=() ms=() qs=()
        for i in $(seq 1 "$RUNS"); do
            measure cworker; ws+=("$IR")
            measure cenqueue; es+=("$IR")
            measure redis; rs+=("$IR")
            measure redismodule; ms+=("$IR")
            measure redisenqueue; qs+=("$IR")
            echo "run $i/$RUNS: cworker $(commas "${ws[-1]}"), cenqueue $(commas "${es[-1]}"), redis $(commas "${rs[-1]}"), redis with the module $(commas "${ms[-1]}"), redis for an enqueue $(commas "${qs[-1]}") instructions a job"
        done
        spread cworker "${ws[@]}"
        spread cenqueue "${es[@]}"
        spread redis "${rs[@]}"
        spread redismodule "${ms[@]}"
        spread redisenqueue "${qs[@]}"
        exit 0 ;;
esac

measure cworker; IR_cworker=$IR
measure cenqueue; IR_cenqueue=$IR
measure redis; IR_redis=$IR
measure redismodule; IR_redismodule=$IR
measure redisenqueue; IR_redisenqueue=$IR
if [ "$MODE" = update ]; then
    tree=$(git -C "$SRC" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    [ -z "$(git -C "$SRC" status --porcelain --untracked-files=no -- common app worker producer ctl module include CMakeLists.txt 2>/dev/null)" ] ||
        tree="$tree (with uncommitted changes to the C)"
    mkdir -p "$(dirname "$BASELINE")"
    cat >"$BASELINE.tmp" <<EOF
# The instructions one job costs cworker, cenqueue and Redis (callgrind, marginal between
# ${JOBS[0]} and ${JOBS[1]} jobs), checked by tests/test_perf_callgrind.sh (CTest: perf_callgrind),
# which fails when any is more than $TOLERANCE% above. Written by
# \`tests/test_perf_callgrind.sh build --update\`; not edited by hand.
date=$(date -u '+%Y-%m-%d %H:%M UTC')
tree=$tree
build=$BUILD_TYPE
compiler=$COMPILER
libraries=$LIBS
command=$COMMAND
cworker=$IR_cworker
cenqueue=$IR_cenqueue
redis=$IR_redis
redismodule=$IR_redismodule
redisenqueue=$IR_redisenqueue
EOF
    mv "$BASELINE.tmp" "$BASELINE"
    echo "wrote $BASELINE_SHOWN: cworker $(commas "$IR_cworker"), cenqueue $(commas "$IR_cenqueue"), redis $(commas "$IR_redis"), redis with the module $(commas "$IR_redismodule"), redis for an enqueue $(commas "$IR_redisenqueue") instructions a job ($BUILD_TYPE build, tree $tree)"
    exit 0
fi

# ---- the check ----

echo "     this build: $BUILD ($BUILD_TYPE); $COMPILER; $LIBS"
echo "     baseline:   ${base[date]:-?}, tree ${base[tree]:-?}; ${base[compiler]:-?}; ${base[libraries]:-?}"
differs=
[ "${base[compiler]:-}" = "$COMPILER" ] && [ "${base[libraries]:-}" = "$LIBS" ] ||
    differs=" (or the compiler or libraries, which differ from the baseline's)"

# judge PROGRAM NOW BASE: the check of one program, and a note when it got much cheaper.
judge() {
    local who=$1 now=$2 was=$3 pct
    pct=$(awk -v a="$now" -v b="$was" 'BEGIN { printf "%.1f", (a - b) * 100 / b }')
    if [ $(( now * 100 )) -gt $(( was * (100 + TOLERANCE) )) ]; then
        FAILS=$((FAILS + 1))
        echo "FAIL - $who: $(commas "$now") instructions a job, $pct% over the baseline" \
             "$(commas "$was") ($BASELINE_SHOWN): a change made each job more expensive$differs;" \
             "if that is intended, update the baseline with tests/test_perf_callgrind.sh build --update"
        return 1
    fi
    if [ $(( now * 2 )) -lt "$was" ]; then
        FAILS=$((FAILS + 1))
        echo "FAIL - $who: $(commas "$now") instructions a job, less than half the baseline" \
             "$(commas "$was") ($BASELINE_SHOWN): the measurement counted the wrong thing" \
             "(--keep DIR keeps its callgrind files), or a change halved the cost: then update" \
             "the baseline with tests/test_perf_callgrind.sh build --update"
        return 1
    fi
    PASSES=$((PASSES + 1))
    if [ "${pct:0:1}" = - ]; then
        echo "ok   - $who: $(commas "$now") instructions a job, ${pct#-}% under the baseline $(commas "$was")"
    else
        echo "ok   - $who: $(commas "$now") instructions a job, $pct% over the baseline $(commas "$was")"
    fi
    if [ $(( now * 100 )) -lt $(( was * (100 - TOLERANCE) )) ]; then
        echo "NOTE - $who: each job costs ${pct#-}% less than the baseline: lower the baseline" \
             "(tests/test_perf_callgrind.sh build --update), so that the check keeps its $TOLERANCE% margin"
    fi
}
judge cworker "$IR_cworker" "${base[cworker]}"
judge cenqueue "$IR_cenqueue" "${base[cenqueue]}"
judge redis "$IR_redis" "${base[redis]}"
judge "redis with cq's module" "$IR_redismodule" "${base[redismodule]}"
judge "redis for an enqueue (cq's module)" "$IR_redisenqueue" "${base[redisenqueue]}"
finish
