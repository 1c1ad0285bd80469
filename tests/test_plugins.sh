#!/usr/bin/env bash
# test_plugins.sh - plugins end to end (examples/sha256.c on a real worker), every load
# error as one line and exit 1, the function catalog as producers see it (refused before any
# worker published it, accepted while one serves it, accepted with a warning after it
# stopped), two workers of which only one has the plugin (every job finishes), a function
# whose per-thread state cannot be made (its jobs fail transiently, saying why), and a handler
# that ignores the stop (left running as its worker exits, its job back in its queue).
. "$(dirname "$0")/lib.sh"

PLUGIN=$BUILD/examples/libcq_sha256.so
[ -f "$PLUGIN" ] || { echo "FATAL: $PLUGIN not built"; exit 1; }
start_redis
ROOT=$T/root
mkdir -p "$ROOT/images"
for i in $(seq 1 60); do head -c $((i * 100)) /dev/urandom >"$ROOT/images/f$i.bin"; done

echo "# load errors: one line each, exit 1, before any job is taken"
# Plugins that are wrong in each way, built here against the public header.
mkplugin() {   # NAME SOURCE [cc args]
    local name=$1 src=$2; shift 2
    printf '%s\n' "$src" >"$T/$name.c"
    cc -shared -fPIC -I"$SRC/include" "$T/$name.c" -o "$T/$name.so" "$@" ||
        { echo "FATAL: cannot build $name"; exit 1; }
}
mkplugin nosym 'int unrelated(void) { return 1; }'
mkplugin future '#include <cq/cq.h>
const int cq_plugin_api_version = 99;
int cq_plugin_init(cq_registry *r) { (void)r; return 0; }'
mkplugin noinit '#include <cq/cq.h>
CQ_PLUGIN_DECLARE;'
mkplugin dup '#include <cq/cq.h>
CQ_PLUGIN_DECLARE;
static int h(cq_job *j, void *u) { (void)j; (void)u; return 0; }
int cq_plugin_init(cq_registry *r) { return cq_function_add(r, "noop", "", h, 0) ? 0 : -1; }'
mkplugin refuses '#include <cq/cq.h>
CQ_PLUGIN_DECLARE;
int cq_plugin_init(cq_registry *r) { cq_plugin_fail(r, "needs /etc/thing.conf"); return -1; }'
mkplugin silent '#include <cq/cq.h>
CQ_PLUGIN_DECLARE;
int cq_plugin_init(cq_registry *r) { (void)r; return -1; }'
mkplugin undefined '#include <cq/cq.h>
CQ_PLUGIN_DECLARE;
int cq_missing_call(void);
static int h(cq_job *j, void *u) { (void)j; (void)u; return cq_missing_call(); }
int cq_plugin_init(cq_registry *r) { return cq_function_add(r, "x", "", h, 0) ? 0 : -1; }'

load_error() {   # NAME EXPECTED_TEXT cworker-args...
    local name=$1 want=$2; shift 2
    "$BIN/cworker" --burst --download-root "$ROOT" "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    check_eq "$name: exit 1" 1 "$rc"
    check_eq "$name: one line" 1 "$(wc -l <"$T/err")"
    check_contains "$name: says why" "$want" "$(<"$T/err")"
}
load_error "missing file" "plugin $T/none.so: No such file or directory" --load "$T/none.so"
load_error "not a plugin" "not a cq plugin (no cq_plugin_api_version symbol" --load "$T/nosym.so"
load_error "API version" "built for cq API version 99; this worker supports 1 to 1" --load "$T/future.so"
load_error "no init" "no cq_plugin_init function" --load "$T/noinit.so"
load_error "duplicate name" "function noop: already registered (by builtin)" --load "$T/dup.so"
# A plugin's source is the file loaded, its path with symbolic links resolved.
PLUGIN_REAL=$(realpath "$PLUGIN")
load_error "loaded twice" "function sha256: already registered (by plugin $PLUGIN_REAL)" --load "$PLUGIN" --load "$PLUGIN"
load_error "plugin refuses" "plugin $T/refuses.so: needs /etc/thing.conf" --load "$T/refuses.so"
# One that refuses without cq_plugin_fail: the line says so, for its author.
load_error "plugin refuses, saying nothing" \
    "plugin $T/silent.so: its cq_plugin_init returned -1 without a reason (the plugin gives one with cq_plugin_fail)" \
    --load "$T/silent.so"
load_error "undefined symbol" "undefined symbol: cq_missing_call" --load "$T/undefined.so"
CQ_PLUGINS="$T/none.so" load_error "CQ_PLUGINS" "\$CQ_PLUGINS: plugin $T/none.so" 
# The plugin's name was there first: the --command that takes it again is the usage error.
"$BIN/cworker" --burst --download-root "$ROOT" --command sha256=/bin/true --load "$PLUGIN" \
    >"$T/out" 2>"$T/err"
check_eq "a --command with a plugin's function's name: exit 2 (a usage error)" 2 "$?"
check_eq "...its line and the pointer to --help" \
    "cworker: --command 'sha256=/bin/true': function sha256: already registered (by plugin $PLUGIN_REAL)"$'\n'"Try 'cworker --help' for more information." \
    "$(<"$T/err")"
check_eq "no worker registered by any of them" 0 "$(rcli SCARD cq:workers)"

echo "# --list-functions shows the plugin's function, with its source"
"$BIN/cworker" --load "$PLUGIN" --list-functions >"$T/list"
check_contains "listed" "sha256 PATH [EXPECTED]" "$(<"$T/list")"
check_contains "with its source" "plugin $PLUGIN_REAL" "$(<"$T/list")"
cp "$PLUGIN" "$T/rel.so"
(cd "$T" && "$BIN/cworker" --load ./rel.so --list-functions) >"$T/list.rel"
check_contains "a relative --load: the source is the file's full path" \
    "plugin $(realpath "$T")/rel.so" "$(<"$T/list.rel")"

echo "# a plugin in C++, hidden visibility and warnings as errors: builds, exports both, loads"
cat >"$T/cxx.cpp" <<'EOF'
#include <cq/cq.h>
#include <string>
CQ_PLUGIN_DECLARE;
static int h(cq_job *j, void *u) { (void)u; return cq_job_result(j, std::string("ok").c_str()); }
int cq_plugin_init(cq_registry *r) { return cq_function_add(r, "cxx_ok", "", h, 0) ? 0 : -1; }
EOF
g++ -Wall -Wextra -Werror -fvisibility=hidden -shared -fPIC -I"$SRC/include" "$T/cxx.cpp" \
    -o "$T/cxx.so" >"$T/cxx.err" 2>&1
check_eq "g++ -Wall -Wextra -Werror -fvisibility=hidden: no warning" "" "$(<"$T/cxx.err")"
check_eq "...both symbols exported" "cq_plugin_api_version cq_plugin_init" \
    "$(nm -D --defined-only "$T/cxx.so" | awk '$3 ~ /^cq_plugin/ {print $3}' | sort | paste -sd' ')"
"$BIN/cworker" --load "$T/cxx.so" --list-functions >"$T/list.cxx" 2>&1
check_contains "...and cworker loads it" "cxx_ok" "$(<"$T/list.cxx")"

echo "# the catalog: refused before any worker published it"
"$BIN/cenqueue" sha256 images/f1.bin >"$T/out" 2>"$T/err"
check_eq "never published: exit 2" 2 "$?"
check_contains "...naming what exists" "unknown function 'sha256' (known: download_link, noop, sleep)" "$(<"$T/err")"
check_contains "...and why it is not among them, and how to send it all the same" \
    "(known: download_link, noop, sleep): a function is known once a worker that serves it has started (cworker --load, --command); --no-check sends the job unchecked" \
    "$(<"$T/err")"
check_eq "...on one line" 1 "$(wc -l <"$T/err")"
check_eq "...and nothing was queued" 0 "$(rcli LLEN cq:queue:default)"

echo "# the example client's --help"
# It printed only its usage line on stderr, exit 2, as for no arguments.
"$BIN/cq-example-client" --help >"$T/out" 2>"$T/err"
check_eq "--help: exit 0, nothing on stderr" "0 " "$? $(<"$T/err")"
check_contains "...its usage" "usage: $BIN/cq-example-client FUNC ARG..." "$(<"$T/out")"
check_contains "...what it does, where Redis is, and its exit status" \
    "Exit status: 0 when every job finished; 1 when one did not" "$(tr '\n' ' ' <"$T/out" | tr -s ' ')"
"$BIN/cq-example-client" >"$T/out" 2>"$T/err"
check_eq "no arguments: exit 2, the usage on stderr" "2 usage: $BIN/cq-example-client FUNC ARG..." \
    "$? $(<"$T/err")"

echo "# the example client, no worker on its queue: it says so, then waits"
CQ_PREFIX=example: timeout 3 "$BIN/cq-example-client" noop x >"$T/out" 2>"$T/err"
check_eq "...until stopped (timeout's status)" 124 "$?"
check_eq "...after one warning" \
    "cq-example-client: warning: no live worker takes from queue 'default': the jobs wait there until one does" \
    "$(sed "s#^$BIN/##" "$T/err")"

echo "# end to end on a real worker"
# Its lease (60 s, where the default's 10 s could run out) outlasts its hold below (SIGSTOP),
# however long a loaded machine takes to hand a job back.
"$BIN/cworker" -c 4 --lease 60s --load "$PLUGIN" --download-root "$ROOT" >"$T/w1.log" 2>&1 &
W1=$!
PIDS+=("$W1")
wait_for 10 workers_are 1 || { echo "FATAL: worker did not register"; cat "$T/w1.log"; exit 1; }
id=$("$BIN/cenqueue" sha256 images/f1.bin 2>"$T/err")
check_eq "accepted while a worker serves it, without a warning" "" "$(<"$T/err")"
wait_for 10 jobs_are finished "$id"
want=$(sha256sum "$ROOT/images/f1.bin" | cut -d' ' -f1)
check_eq "finished" finished "$(jfield "$id")"
check_eq "its JSON result is in result_json" "{\"path\":\"images/f1.bin\",\"bytes\":100,\"sha256\":\"$want\"}" "$(jfield "$id" result_json)"
check_eq "...and no text result" "" "$(jfield "$id" result)"
bad=$("$BIN/cenqueue" sha256 images/f1.bin 0000)
esc=$("$BIN/cenqueue" sha256 ../../etc/passwd)
wait_for 10 jobs_are failed "$bad" "$esc"
check_contains "a wrong digest fails for good" "expected 0000" "$(jfield "$bad" error)"
check_contains "a path out of the root is refused" "not a plain path below the root" "$(jfield "$esc" error)"
# A file of 64 GB (sparse: zeros, no disk) takes far longer to hash than its 200 ms limit.
truncate -s 64G "$ROOT/images/big.bin"
slow=$("$BIN/cenqueue" --timeout 200ms --retries 0 sha256 images/big.bin)
check "a hash past its --timeout fails" wait_for 20 jobs_are failed "$slow"
check_contains "...named as a timeout" "sha256: images/big.bin: job timed out after " \
    "$(jfield "$slow" error)"
rm -f "$ROOT/images/big.bin"
"$BIN/cenqueue" sha256 >"$T/out" 2>"$T/err"
check_eq "wrong arity is refused by cenqueue: exit 2" 2 "$?"
check_contains "...with the usage" "sha256 takes at least 1 argument, got 0 (usage: sha256 PATH [EXPECTED])" "$(<"$T/err")"
"$BIN/cenqueue" sleep abc >"$T/out" 2>"$T/err"
check_contains "a built-in's argument type is checked at the door" "sleep: argument 1 (SECONDS): 'abc' is not a duration" "$(<"$T/err")"
"$BIN/cenqueue" --list-functions >"$T/list"
check_contains "--list-functions names the live worker" "served now by $(rcli SMEMBERS cq:workers)" "$(grep -A1 '^sha256' "$T/list")"
check_contains "--list-functions: the arguments as declared, with their types" \
    "sleep SECONDS:duration " "$(<"$T/list")"
check_contains "--list-functions: cq's built-ins are builtin" "builtin; served now by" \
    "$(grep -A1 '^download_link' "$T/list")"
check_contains "...noop too" "builtin; served now by" "$(grep -A1 '^noop' "$T/list")"
check_contains "...and a plugin's says its file" "plugin $PLUGIN_REAL; served now by" \
    "$(grep -A1 '^sha256' "$T/list")"
names=$(grep -o '^[a-z_0-9]*' "$T/list")
check_eq "--list-functions: by name, as the errors' 'known:' lists" "$(LC_ALL=C sort <<<"$names")" "$names"
rcli HSET cq:functions bare '{"args":""}' \
    a_function_with_a_long_name '{"args":"FIRST SECOND:integer","summary":"does things"}' >/dev/null
"$BIN/cenqueue" --list-functions >"$T/list"
check_eq "--list-functions: no line ends in a space (bare has no summary)" "" "$(grep -n ' $' "$T/list")"
check_eq "...bare's signature alone, then its source" "bare|program; no live worker; never served" \
    "$(grep -A1 '^bare' "$T/list" | sed 's/^ *//' | paste -sd'|')"
check_eq "...a long signature alone on its line, its summary under the others'" \
    "$(printf '%30s' '')does things" "$(grep -A1 '^a_function_with_a_long_name FIRST' "$T/list" | sed -n 2p)"
check_contains "...which start two spaces past the longest signature that fits" \
    "download_link DIRECTORY LINK  save LINK" "$(<"$T/list")"
rcli HDEL cq:functions bare a_function_with_a_long_name >/dev/null

echo "# two workers, one without the plugin: every job finishes"
"$BIN/cworker" -c 4 --download-root "$ROOT" >"$T/w2.log" 2>&1 &
W2=$!
PIDS+=("$W2")
wait_for 10 workers_are 2 || { echo "FATAL: second worker did not register"; exit 1; }
# The plugin's worker is held (SIGSTOP) until the other has handed a job back: left to run, it
# could take all 60 before the other's first take (a CI run under load saw 0 handed back).
# Held, it still counts as live (its lease runs 60 s), so the other hands its jobs back, and
# does not fail them. The default lease (10 s, a heartbeat every 2 s) could expire in a hold
# of 8 s (the 60 enqueued and the other's take, slow under load): the other then fails them.
kill -STOP "$W1"
for i in $(seq 1 60); do echo "sha256 images/f$i.bin"; done | "$BIN/cenqueue" --stdin >"$T/ids"
check_eq "60 jobs enqueued" 60 "$(wc -l <"$T/ids")"
handed_back() { grep -q 'handed back' "$T/w2.log"; }
check "the other hands a job back while the plugin's worker is held" wait_for 20 handed_back
kill -CONT "$W1"
count_finished() {   # of the jobs in $T/ids
    local ids
    mapfile -t ids <"$T/ids"
    jfields_of status "${ids[@]}" | grep -cx finished
}
all_60_finished() { [ "$(count_finished)" = 60 ]; }
wait_for 30 all_60_finished
check_eq "all 60 finished" 60 "$(count_finished)"
digests_ok() {   # the i-th job of $T/ids holds the digest of f<i>.bin, for i of 1 to 60
    local i ids sums results
    mapfile -t ids <"$T/ids"
    mapfile -t sums < <(cd "$ROOT/images" && sha256sum $(seq -f 'f%g.bin' 1 60) | cut -c1-64)
    mapfile -t results < <(jfields_of result_json "${ids[@]}")
    [ ${#sums[@]} = 60 ] && [ ${#results[@]} = 60 ] || return 1
    for i in $(seq 0 59); do
        [[ ${results[i]} == *"${sums[i]}"* ]] || return 1
    done
}
check "each with the right digest" digests_ok
handed=$(grep -c 'handed back' "$T/w2.log")
echo "# the worker without the plugin handed back $handed jobs"
check "the worker without the plugin handed jobs back rather than failing them" [ "$handed" -gt 0 ]
check_eq "none of them failed (the failed set holds the three failed above)" 3 "$(rcli ZCARD cq:failed)"

echo "# after the plugin's worker stopped"
kill "$W1"
wait "$W1"
check_eq "it stopped cleanly" 0 "$?"
wait_for 10 workers_are 1
id=$("$BIN/cenqueue" sha256 images/f2.bin 2>"$T/err")
check_eq "still accepted: exit 0" 0 "$?"
check_contains "...with a warning" "warning: function sha256: no live worker serves it now (last served" "$(<"$T/err")"
# The worker of queue default lacks it: the job does not wait, it fails when that worker takes
# it, and the warning says so (it said "the job waits until one does").
check_contains "...saying that the worker of its queue fails it" \
    "ago); the live worker of queue default lacks it: the job fails when that worker takes it" \
    "$(<"$T/err")"
# The remaining worker takes it, sees nobody serves it, and fails it for good.
wait_for 10 jobs_are failed "$id"
check_contains "a job nobody serves fails with a clear error" "unknown function 'sha256'" "$(jfield "$id" error)"
check_contains "...saying why" "no live worker serves it" "$(jfield "$id" error)"
# Served on another queue only: the producer warns with the fix, and the worker of the job's
# queue fails it at once, saying where it is served (before: no warning, and about ten minutes
# of hand-offs "for a live worker that does", when no worker of that queue ever would).
start_registered "$T/tools.log" --load "$PLUGIN" --download-root "$ROOT" tools
sleep 1.1 # the worker of default keeps who serves sha256 (none, for the job above) a second
id=$("$BIN/cenqueue" sha256 images/f2.bin 2>"$T/err")
check_eq "served only on queue tools: accepted (exit 0)" 0 "$?"
check_contains "...with a warning naming the queue and the fix" \
    "warning: function sha256: no live worker of queue default serves it (1 serves it on other queues: enqueue it to theirs, or start one that takes from default" \
    "$(<"$T/err")"
check_contains "...and that the worker of queue default fails it" \
    "lists them); the live worker of queue default lacks it: the job fails when that worker takes it" \
    "$(<"$T/err")"
check "...and failed at once by the worker of queue default" wait_for 10 jobs_are failed "$id"
check_contains "...saying where it is served" "no live worker of queue default serves it (1 serves it on other queues" \
    "$(jfield "$id" error)"
id=$("$BIN/cenqueue" -q tools sha256 images/f2.bin 2>"$T/err")
check_eq "...enqueued to tools: no warning" "" "$(<"$T/err")"
# A queue no worker takes from: there the job does wait.
"$BIN/cenqueue" -q untaken sha256 images/f2.bin >/dev/null 2>"$T/err"
check_eq "...enqueued to a queue no worker takes from: it waits, and both warnings say so" \
    "cenqueue: warning: function sha256: no live worker of queue untaken serves it (1 serves it on other queues: enqueue it to theirs, or start one that takes from untaken; cqctl workers lists them); the job waits until one does
cenqueue: warning: no live worker takes from queue 'untaken': the jobs wait there until one does (cqctl workers lists what each serves)" \
    "$(<"$T/err")"
rcli DEL cq:queue:untaken >/dev/null
rcli SREM cq:queues untaken >/dev/null
check "...and it finishes there" wait_for 10 jobs_are finished "$id"
kill -TERM "$WPID"; wait "$WPID"
wait_for 10 workers_are 1
"$BIN/cenqueue" --list-functions >"$T/list"
check_contains "--list-functions: no live worker, last served" "no live worker; last served" "$(grep -A1 '^sha256' "$T/list")"
"$BIN/cenqueue" --no-check nosuch a b >/dev/null 2>"$T/err"
check_eq "--no-check sends an unknown function" "" "$(<"$T/err")"
# Catalog entries that are no declaration (written by hand, or by something else): a job of
# theirs is refused with the fix; the other functions are listed, these with what is wrong.
rcli HSET cq:functions broken 'not json' badtype '{"args":"X:nosuchtype"}' >/dev/null
"$BIN/cenqueue" broken >/dev/null 2>"$T/err"
check_eq "a catalog entry that is not JSON: its job refused (exit 2)" 2 "$?"
check_eq "...saying so, with the fix" \
    "cenqueue: function catalog: the entry of broken is not a declaration (mend or delete it: HDEL cq:functions broken)" \
    "$(<"$T/err")"
"$BIN/cenqueue" badtype x >/dev/null 2>"$T/err"
check_eq "a declaration with an unknown type: refused (exit 2)" 2 "$?"
check_contains "...naming the type and those there are" \
    "argument X: unknown type 'nosuchtype' (string, integer, number, duration, json or any)" "$(<"$T/err")"
"$BIN/cenqueue" --list-functions >"$T/list" 2>&1
check_eq "--list-functions still lists (exit 0)" 0 "$?"
check_contains "...the broken entry with what is wrong" "broken: function catalog: the entry of broken is not a declaration" "$(<"$T/list")"
check_contains "...and the good ones" "sha256" "$(<"$T/list")"
rcli HDEL cq:functions broken badtype >/dev/null

echo "# a function whose per-thread state cannot be made: its jobs fail, transiently, saying why"
mkplugin nothread '#include <cq/cq.h>
#include <stdio.h>
CQ_PLUGIN_DECLARE;
static void *init(void *u, char *err, size_t len) { (void)u; snprintf(err, len, "no GPU here"); return NULL; }
static void fini(void *s, void *u) { (void)s; (void)u; }
static int h(cq_job *j, void *u) { (void)j; (void)u; return 0; }
int cq_plugin_init(cq_registry *r) {
    cq_function *f = cq_function_add(r, "needsgpu", "", h, 0);
    return f != NULL && cq_function_set_thread_hooks(f, init, fini) == 0 ? 0 : -1;
}'
start_registered "$T/gpu.log" --load "$T/nothread.so" gpu
id=$("$BIN/cenqueue" -q gpu --retries 1 --no-check needsgpu)
wait_for 15 jobs_are failed "$id"
check_eq "thread_init failing: the job fails" failed "$(jfield "$id")"
check_eq "...after its retry (a transient failure)" 2 "$(jfield "$id" attempts)"
check_eq "...saying why" "needsgpu: cannot set up this worker thread: no GPU here" "$(jfield "$id" error)"
kill -TERM "$WPID"
wait "$WPID"
check_eq "...and the worker goes on, then stops cleanly" 0 "$?"

echo "# a handler that ignores the stop: left running as the worker exits, its job back in its queue"
mkplugin stubborn '#include <cq/cq.h>
#include <unistd.h>
CQ_PLUGIN_DECLARE;
static int h(cq_job *j, void *u) { (void)j; (void)u; sleep(60); return 0; }
int cq_plugin_init(cq_registry *r) { return cq_function_add(r, "stubborn", "", h, 0) ? 0 : -1; }'
start_registered "$T/stub.log" --load "$T/stubborn.so" --shutdown-timeout 1s stub
id=$("$BIN/cenqueue" -q stub stubborn)
wait_for 10 jobs_are started "$id"
t0=$(date +%s%N)
kill -TERM "$WPID"
wait "$WPID"
check_eq "the worker exits 0" 0 "$?"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
# --shutdown-timeout 1 s, then 6 s for the handler to stop, then the exit: not the 60 s sleep.
check "...after its shutdown timeout and 6 s of grace (${took} ms)" test "$took" -ge 6500 -a "$took" -lt 15000
check_contains "...saying the job did not stop" \
    "WARN 1 job did not stop within 6 s; left running as the worker exits (they are back in their queues)" \
    "$(<"$T/stub.log")"
check_eq "...the job is back in its queue" 1 "$(rcli LLEN cq:queue:stub)"
check_eq "...queued, to run again" queued "$(jfield "$id")"
check_eq "...and no in-flight list holds it" "" "$(rcli --scan --pattern 'cq:inflight:*:stub')"
finish
