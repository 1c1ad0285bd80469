#!/usr/bin/env bash
# test_readme.sh - the README's "Use" walk-through works as written: the ```sh block of its
# "## Use" section is run line by line, in one bash session (exports and `&` jobs carry over),
# and every line must exit 0, or the status its comment announces ("# exit N: ...").
#
# Where it runs: a fresh working directory $T/work, standing for the repository root, whose
# `build` is a symlink to BUILD_DIR; so "$PWD/build/bin" and build/examples/... name the
# programs and the plugin under test, and the images land in $T/work/images, not in the tree.
# The session's environment is the test's without CQ_* and IMGUR_CLIENT_ID, with HOME=$T/home,
# and with stubs named cworker, cenqueue, cproducer and cqctl first on PATH that fail: a
# program run before the block put build/bin on PATH is caught. A redis-server first on PATH
# too starts the real one half a second late: `redis-server --daemonize yes` returns before
# the server listens (its parent exits at the fork, the child binds after), so that a block
# whose next line used Redis at once failed now and then (a CI run did, under load); with the
# delay it fails every time, and the block must wait for the port, as it says.
#
# The substitutions, exactly these, and nothing else is changed in a line:
#   6379                  -> a free private port (the block starts its own redis-server there)
#   https://i.imgur.com/  -> tests/fixtures/httpd.py --generate (what download_link fetches)
# and, through the environment, IMGUR_API_URL -> tests/fixtures/fake_imgur.py, started with
# the client id the block exports (IMGUR_CLIENT_ID=...) and rewriting gallery links to httpd.py.
#
# The session pauses before the block's first `kill` line (the "stop" part) while the test
# checks the effects on the live Redis and in the files; then the block stops what it started.
# The EXIT trap ends whatever is left (the session's process group, the block's daemonized
# redis-server, the fixtures), whatever the outcome.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SPID=        # the session's pid
SPGID=       # its process group (setsid): the block's background jobs are in it too
RPORT=       # the port 6379 becomes
REDIS_PID=   # the block's redis-server, once it answered

stop_session() {
    [ -n "$SPID" ] || return 0
    [ -n "$SPGID" ] || SPGID=$(cat "$T/pgid" 2>/dev/null) || SPGID=
    if [ -n "$SPGID" ]; then
        kill -TERM -- "-$SPGID" 2>/dev/null
        wait_for 5 pgroup_empty "$SPGID" || kill -KILL -- "-$SPGID" 2>/dev/null
    fi
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=
}
# gone PID: the process has exited (a zombie counts: the daemonized redis-server's parent is
# init, which may be slow to reap it).
gone() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 0; [[ $s == Z* ]]; }
pgroup_empty() { [ -z "$(ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/')" ]; }
stop_block_redis() {
    [ -n "$RPORT" ] || return 0
    if [ -z "$REDIS_PID" ]; then
        REDIS_PID=$(redis-cli -p "$RPORT" INFO server 2>/dev/null | tr -d '\r' |
            sed -n 's/^process_id://p') || true
    fi
    redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
    if [ -n "$REDIS_PID" ] && ! wait_for 5 gone "$REDIS_PID"; then
        kill -KILL "$REDIS_PID" 2>/dev/null
    fi
}
on_exit() {
    local rc=$1
    if [ "$rc" -ne 0 ] && [ -e "$T/session.out" ]; then
        echo "---- the session's stdout (### N: the block's line N)"
        cat "$T/session.out"
        echo "---- its stderr (last 60 lines)"
        tail -n 60 "$T/session.err"
        [ -s "$T/failed" ] && echo "---- $(cat "$T/failed")"
    fi
    stop_session
    stop_block_redis
    cleanup   # lib.sh: the fixtures, $T
    exit "$rc"
}
trap 'rc=$?; set +e; on_exit $rc' EXIT

fatal() { echo "FATAL: $*" >&2; exit 1; }
for tool in redis-server redis-cli python3 setsid sha256sum awk sed ps; do
    command -v "$tool" >/dev/null || fatal "$tool is not installed"
done
for prog in cworker cenqueue cproducer cqctl; do
    [ -x "$BIN/$prog" ] || fatal "$BIN/$prog is not built"
done
[ -f "$BUILD/examples/libcq_sha256.so" ] || fatal "$BUILD/examples/libcq_sha256.so is not built"

# ---- the block ----
README=$SRC/README.md
[ -f "$README" ] || fatal "$README is missing"
awk '/^## /{ in_use = ($0 == "## Use") } in_use && /^```sh$/ && !done { on = 1; next }
     on && /^```$/ { on = 0; done = 1 } on' "$README" >"$T/block.sh"
[ -s "$T/block.sh" ] || fatal "no \`\`\`sh block in the \"## Use\" section of $README"
mapfile -t LINES <"$T/block.sh"
echo "# the README's Use block: ${#LINES[@]} lines"

# code_of LINE: the line without its comment; want_of LINE: the exit status its comment
# announces ("# exit N: ..."), else 0.
code_of() { local l=$1; [[ $l =~ ^(.*[^[:space:]])[[:space:]]+#\  ]] && l=${BASH_REMATCH[1]}; printf '%s' "$l"; }
want_of() {
    if [[ $1 =~ [[:space:]]#(.*[^[:alnum:]])?exit\ ([0-9]+) ]]; then echo "${BASH_REMATCH[2]}"; else echo 0; fi
}
grep -q '\b6379\b' "$T/block.sh" || fatal "the block names no port 6379 to substitute"
grep -q 'https://i\.imgur\.com/' "$T/block.sh" || fatal "the block downloads nothing from https://i.imgur.com/"
CLIENT_ID=$(sed -n 's/.*IMGUR_CLIENT_ID=\([^[:space:]]*\).*/\1/p' "$T/block.sh" | head -n 1)
[ -n "$CLIENT_ID" ] || fatal "the block sets no IMGUR_CLIENT_ID"
grep -q '^kill ' "$T/block.sh" || fatal "the block has no \`kill\` line stopping its workers"
if grep -q '\\$' "$T/block.sh"; then fatal "a line of the block is continued with '\\': one command a line"; fi

# ---- the fixtures, a free port, the working directory ----
start_httpd --generate
start_fake_imgur --client-id "$CLIENT_ID" --image-base "$HBASE/"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }   # nothing accepts there
for _ in $(seq 1 50); do
    RPORT=$(( 20000 + RANDOM % 12000 ))
    port_free "$RPORT" && break
    RPORT=
done
[ -n "$RPORT" ] || fatal "no free port found"

W=$T/work
mkdir -p "$W" "$T/home" "$T/stubs"
ln -s "$BUILD" "$W/build"
for prog in cworker cenqueue cproducer cqctl; do
    printf '#!/bin/sh\necho "test_readme: %s run from PATH outside build/bin" >&2\nexit 127\n' "$prog" \
        >"$T/stubs/$prog"
    chmod +x "$T/stubs/$prog"
done
REAL_REDIS=$(command -v redis-server)
printf '#!/bin/sh\n(sleep 0.5; exec %q "$@") >/dev/null 2>&1 &\n' "$REAL_REDIS" >"$T/stubs/redis-server"
chmod +x "$T/stubs/redis-server"

# ---- the session script: each line as written (after the substitutions), then its check ----
# __cqt_mark N prints "### N: LINE" on stdout and stderr, so that each line's output can be
# found; __cqt_check N RC WANT ends the session when the line's status is not the one wanted.
{
    cat <<'EOF'
set -o pipefail
ps -o pgid= -p $$ | tr -d ' ' >"$__CQT_DIR/pgid.tmp" && mv "$__CQT_DIR/pgid.tmp" "$__CQT_DIR/pgid"
__cqt_mark() { printf '### %s: %s\n' "$1" "$2"; printf '### %s: %s\n' "$1" "$2" >&2; }
__cqt_check() {
    [ "$2" = "$3" ] && return 0
    printf 'line %s exited %s (expected %s): %s\n' "$1" "$2" "$3" "$4" >"$__CQT_DIR/failed"
    exit 1
}
__cqt_pause() { : >"$__CQT_DIR/paused"; while [ ! -e "$__CQT_DIR/go" ]; do sleep 0.05; done; }
EOF
    paused=
    n=0
    for line in "${LINES[@]}"; do
        n=$((n + 1))
        code=$(code_of "$line")
        [[ $code =~ ^[[:space:]]*(#|$) ]] && continue
        line=$(sed -e "s/\b6379\b/$RPORT/g" -e "s#https://i\.imgur\.com/#$HBASE/#g" <<<"$line")
        code=$(code_of "$line")
        if grep -Eo 'https?://[^ "'"'"')]*' <<<"$code" | grep -qv '^http://127\.0\.0\.1:'; then
            fatal "line $n would reach the network: $line"
        fi
        want=$(want_of "$line")
        if [ -z "$paused" ] && [[ $code == kill\ * ]]; then
            echo "__cqt_pause"
            paused=1
        fi
        printf '__cqt_mark %d %q\n%s\n__cqt_check %d $? %d %q\n' "$n" "$line" "$line" "$n" "$want" "$line"
    done
    echo 'printf "### end\n"'
} >"$T/session.sh"

# output_of PREFIX: the stdout of the first block line whose text starts with PREFIX; the
# test ends when there is no such line (the README changed: update the test).
output_of() {
    local n
    n=$(awk -v p="$1" 'index($0, p) == 1 { print NR; exit }' "$T/block.sh")
    [ -n "$n" ] || fatal "the block has no line starting with '$1'"
    lines_output "$n"
}
lines_output() {   # lines_output N: the stdout of the block's line N
    awk -v m="### $1: " 'index($0, "### ") == 1 { on = (index($0, m) == 1); next } on' "$T/session.out"
}

# ---- run it ----
echo "# running it in $W: redis on port $RPORT, images from $HBASE, the Imgur API at $API"
t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }
(
    cd "$W"
    exec env -u CQ_REDIS_URL -u CQ_PREFIX -u CQ_PLUGINS -u IMGUR_CLIENT_ID \
        HOME="$T/home" PATH="$T/stubs:$PATH" IMGUR_API_URL="$API" __CQT_DIR="$T" \
        setsid bash --noprofile --norc "$T/session.sh" >"$T/session.out" 2>"$T/session.err" </dev/null
) &
SPID=$!
wait_for 10 test -s "$T/pgid" || fatal "the session did not start"
SPGID=$(cat "$T/pgid")
[ "$SPGID" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] || fatal "the session is not in a process group of its own"
paused_or_ended() { [ -e "$T/paused" ] || exited "$SPID"; }
wait_for 60 paused_or_ended ||
    fatal "the block did not reach its stop part within 60 s; running: $(grep '^### ' "$T/session.out" | tail -n 1)"
[ -e "$T/paused" ] || fatal "the session ended before the stop part: $(cat "$T/failed" 2>/dev/null)"
REDIS_PID=$(redis-cli -p "$RPORT" INFO server | tr -d '\r' | sed -n 's/^process_id://p')
echo "# paused before the stop part after $(ms) ms; checking"

# ---- effects, on the live Redis ----
r() { redis-cli -p "$RPORT" "$@"; }
# snapshot: $T/jobs, one line "ID STATUS FUNC" a job, read with one pipelined redis-cli.
snapshot() {
    r --scan --pattern 'cq:job:*' | sed 's/^cq:job://' | sort >"$T/ids"
    sed 's/.*/HMGET cq:job:& status func/' "$T/ids" | r | paste -d' ' - - | paste -d' ' "$T/ids" - >"$T/jobs"
}
all_ended() { snapshot; ! awk '$2 !~ /^(finished|failed|canceled)$/ { bad = 1 } END { exit !bad }' "$T/jobs"; }
status_of() { awk -v id="$1" '$1 == id { print $2 }' "$T/jobs"; }
with() { awk -v k="$1" -v v="$2" '$k == v { print $1 }' "$T/jobs"; }   # with FIELD VALUE: the ids
check "every job has ended (finished, failed or canceled)" wait_for 10 all_ended || {
    cat "$T/jobs"; exit 1; }
check "there are jobs" [ -s "$T/jobs" ]

# A job that did not finish must be one a line said would not: its id is in the output of a
# line whose comment announced a failure, or of a `cqctl cancel` line.
announced=$(
    n=0
    for line in "${LINES[@]}"; do
        n=$((n + 1))
        if [ "$(want_of "$line")" != 0 ] || [[ $(code_of "$line") == "cqctl cancel "* ]]; then
            lines_output "$n"
        fi
    done)
unfinished_ok() {
    local id bad=0
    for id in $(awk '$2 != "finished" { print $1 }' "$T/jobs"); do
        if [[ $announced != *"$id"* ]]; then
            echo "job $id: $(status_of "$id"), and no line said so" >&2
            bad=1
        fi
    done
    return $bad
}
check "every job finished, but those the block shows failing or canceled" unfinished_ok
failed_id=$(with 2 failed)
check_eq "one failed job (the one announced)" 1 "$(grep -c . <<<"$failed_id")"
check_eq "...in the failed set" 1 "$(r ZCARD cq:failed)"
check_eq "two live workers" 2 "$(r SCARD cq:workers)"

# downloads: the README's own links and the gallery's .jpg links, each file as served
mapfile -t GALLERY < <("$PY" - "$SRC/tests/fixtures/imgur/gallery_hot_viral_2015.json" <<'PY'
import json, sys
for item in json.load(open(sys.argv[1]))["data"]:
    link = item.get("link")
    if not item.get("is_album") and isinstance(link, str) and link.endswith(".jpg"):
        print(link.rsplit("/", 1)[1])
PY
)
mapfile -t OWN < <(grep -v '^[[:space:]]*#' "$T/block.sh" | grep -o 'https://i\.imgur\.com/[^ )"'"'"']*' |
    sed 's#.*/##' | sort -u)
check "the gallery fixture has .jpg links" [ "${#GALLERY[@]}" -gt 0 ]
files=()
for name in $(printf '%s\n' "${GALLERY[@]}" "${OWN[@]}" | sort -u); do files+=("$W/images/$name"); done
check_eq "every image landed in images/, whole (${#files[@]})" "${#files[@]}" \
    "$(count_generated 32768 "${files[@]}")"
check_eq "finished download_link jobs: the block's ${#OWN[@]} links + the gallery's ${#GALLERY[@]}" \
    $(( ${#OWN[@]} + ${#GALLERY[@]} )) "$(awk '$2 == "finished" && $3 == "download_link"' "$T/jobs" | wc -l)"

# the plugin: its JSON result is the SHA-256 of the file it names
sha_ids=$(with 3 sha256)
check "a sha256 job (the example plugin) ran" [ -n "$sha_ids" ]
for id in $sha_ids; do
    json=$(r HGET "cq:job:$id" result_json)
    path=$(sed -n 's/.*"path":"\([^"]*\)".*/\1/p' <<<"$json")
    got=$(sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' <<<"$json")
    check "sha256 job: a path in its JSON result ($json)" [ -n "$path" ]
    check_eq "sha256 job: the file's SHA-256 ($path)" "$(sha256sum <"$W/$path" | cut -d' ' -f1)" "$got"
done

# the command: its result is what the program prints, run in the worker's directory
wc_ids=$(with 3 wc)
check "a wc job (a command function) ran" [ -n "$wc_ids" ]
wc_line=$(code_of "$(grep -m1 ' wc ' "$T/block.sh")")
wc_file=${wc_line##* }
check_eq "wc job: its result is wc's output" "$(cd "$W" && /usr/bin/wc "$wc_file")" \
    "$(r HGET "cq:job:$(head -n1 <<<"$wc_ids")" result)"

# ---- what the commands printed ----
for id in $(r SMEMBERS cq:workers); do
    check_contains "cqctl info lists worker $id" "$id" "$(output_of 'cqctl info')"
done
check_contains "cqctl jobs failed lists the failed job" "$failed_id" "$(output_of 'cqctl jobs failed')"
paused_out=$(output_of 'cenqueue noop && cqctl jobs default')
paused_id=$(head -n1 <<<"$paused_out")
check "the job enqueued while default was paused waited there (cqctl jobs default)" \
    [ "$(grep -c -F "$paused_id" <<<"$paused_out")" -ge 2 ]
check_eq "...and finished after the resume" finished "$(status_of "$paused_id")"
processed=$(output_of 'cqctl metrics' | sed -n 's/^cq_jobs_processed_total //p')
check "cqctl metrics: cq_jobs_processed_total > 0 ($processed)" [ "${processed:-0}" -gt 0 ]
lf=$(output_of 'cenqueue --list-functions')
check "cenqueue --list-functions lists sha256" grep -q '^sha256 ' <<<"$lf"
check "cenqueue --list-functions lists wc" grep -q '^wc ' <<<"$lf"
out=$(output_of 'cproducer --dir images --wait')
check_contains "cproducer --wait: Took" "Took " "$out"
out=$(output_of 'cenqueue --wait sleep 1')
check "cenqueue --wait sleep 1: the job's id, finished" grep -Eq '^[0-9a-f-]{36} finished' <<<"$out"

# ---- the stop part ----
echo "# checked after $(ms) ms; the stop part"
: >"$T/go"
wait_for 30 exited "$SPID" || fatal "the stop part did not end within 30 s"
set +e; wait "$SPID"; src=$?; set -e
SPID=
check_eq "every line of the block exited as expected" 0 "$src"
check "the session ran to the end" grep -qx '### end' "$T/session.out"
check "the block's workers are gone" wait_for 5 pgroup_empty "$SPGID"
SPGID=
redis_gone() { ! redis-cli -p "$RPORT" ping >/dev/null 2>&1; }
check "the block's Redis is gone" wait_for 5 redis_gone
[ -n "$REDIS_PID" ] && check "...its process too" wait_for 5 gone "$REDIS_PID"
echo "# the block and the checks took $(ms) ms"
finish
