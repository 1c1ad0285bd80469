#!/usr/bin/env bash
# test_cli.sh - the commands speak alike: every one answers an unknown option, a missing
# value and a bad value in one line plus "Try 'PROG --help' ...", exit 2; their --help texts
# say the shared things word for word; Redis errors name the host and the fix (a Redis that
# is not running, one that wants a password, a wrong password); cworker refuses a download
# root that is not a directory it can write in; cenqueue --stdin says exactly which lines
# went in when one is bad, and what is left of the input when Redis fails. scripts/format,
# build, test, deps and demo answer --help and refuse an unknown option the same way,
# without running anything; demo's --help lists exactly the options it takes.
. "$(dirname "$0")/lib.sh"

PROGS=(cworker cenqueue cproducer cqctl)
VERSION=$(sed -n 's/^project(cq VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")

# run PROG ARGS...: sets OUT, ERR and RC.
run() {
    local p=$1
    shift
    "$BIN/$p" "$@" >"$T/out" 2>"$T/err"
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

# usage_error NAME EXPECTED_FIRST_LINE PROG ARGS...: exit 2, nothing on stdout, and exactly
# the line and the pointer to --help on stderr: PROG's, or for cqctl with a command, that
# command's (cqctl_usage_error NAME LINE COMMAND ARGS..., ARGS all of cqctl's).
usage_error() {
    local name=$1 line=$2 p=$3
    shift 3
    run "$p" "$@"
    check_eq "$name: exit 2" 2 "$RC"
    check_eq "$name: nothing on stdout" "" "$OUT"
    check_eq "$name: one line and the Try line" \
        "$line"$'\n'"Try '${TRY:-$p} --help' for more information." "$ERR"
}
cqctl_usage_error() { TRY="cqctl $3" usage_error "$1" "$2" cqctl "${@:4}"; }

echo "# unknown options, missing values, --help and --version, every command"
for p in "${PROGS[@]}"; do
    usage_error "$p --bogus" "$p: unknown option '--bogus'" "$p" --bogus
    usage_error "$p -Z" "$p: unknown option '-Z'" "$p" -Z
    usage_error "$p --url (no value)" "$p: option '--url' needs a value" "$p" --url
    usage_error "$p -u (no value)" "$p: option '-u' needs a value" "$p" -u
    run "$p" --help
    check_eq "$p --help: exit 0" 0 "$RC"
    check_eq "$p --help: nothing on stderr" "" "$ERR"
    check_eq "$p --help: starts with its usage" "Usage: $p" "$(head -1 <<<"$OUT" | cut -d' ' -f1-2)"
    check_eq "$p --help: a blank line after its usage" "" \
        "$(awk '!/^(Usage: |       )/ { print; exit }' <<<"$OUT")"
    printf '%s\n' "$OUT" >"$T/help.$p"
    run "$p" --version
    check_eq "$p --version" "$p $VERSION" "$OUT"
    # A help or version that could not be written was an exit 0, the failure unsaid.
    "$BIN/$p" --help >/dev/full 2>"$T/err"
    check_eq "$p --help to a full disk: exit 1" 1 "$?"
    check_eq "... saying so, with the system's reason" \
        "$p: writing the help to stdout: No space left on device" "$(<"$T/err")"
    "$BIN/$p" --version >/dev/full 2>"$T/err"
    check_eq "$p --version to a full disk: exit 1, saying so" \
        "1 $p: writing the version to stdout: No space left on device" "$? $(<"$T/err")"
    # A reader that left: text, not a result, so exit 0 and nothing said (cproducer and
    # cworker were killed by SIGPIPE, 141, before they set up their signals).
    no_reader "$BIN/$p" --help 2>"$T/err"
    check_eq "$p --help, its reader gone: exit 0, nothing said" "0 " "$? $(<"$T/err")"
    no_reader "$BIN/$p" --version 2>"$T/err"
    check_eq "$p --version, its reader gone: exit 0, nothing said" "0 " "$? $(<"$T/err")"
done
no_reader "$BIN/cqctl" jobs --help 2>"$T/err"
check_eq "cqctl jobs --help, its reader gone: exit 0, nothing said" "0 " "$? $(<"$T/err")"
"$BIN/cqctl" jobs --help >/dev/full 2>"$T/err"
check_eq "cqctl jobs --help to a full disk: exit 1, saying so" \
    "1 cqctl: writing the help to stdout: No space left on device" "$? $(<"$T/err")"
usage_error "an unknown letter in a cluster" "cworker: unknown option '-x'" cworker --burst -xb
# The producers' -q/--queue, tried on cworker: the line says how a worker takes its queues
# (only for those options: -x above has no hint).
QH="cworker takes its queues as arguments: cworker high default low"
usage_error "cworker -q" "cworker: unknown option '-q'; $QH" cworker -q tools
usage_error "cworker -bq, in a cluster" "cworker: unknown option '-q'; $QH" cworker -bq tools
usage_error "cworker --queue=" "cworker: unknown option '--queue'; $QH" cworker --queue=tools
usage_error "cworker --queues" "cworker: unknown option '--queues'; $QH" cworker --queues tools
usage_error "an abbreviation of two options" \
    "cworker: option '--log' is ambiguous: --log-level, --log-format" cworker --log warn
usage_error "a value given to a flag" "cworker: option '--burst' takes no value" cworker --burst=1
usage_error "a missing value, abbreviated" "cenqueue: option '--wait-t' needs a value" \
    cenqueue --wait-t
usage_error "cqctl with no command" "cqctl: give a command" cqctl
usage_error "cqctl with an unknown command" "cqctl: unknown command 'bogus'" cqctl bogus
echo "# cqctl: a usage error after a command points to that command's --help, Redis or not"
cqctl_usage_error "cqctl info, a mistyped option" "cqctl: unknown option '--wath'" info info --wath
cqctl_usage_error "cqctl, an option's bad value before the command" \
    "cqctl: --limit: '0' is not a whole number from 1 to 10000" jobs --limit 0 jobs default
cqctl_usage_error "cqctl cancel, no id" \
    "cqctl: cancel: missing argument (usage: cqctl cancel ID...)" cancel cancel
cqctl_usage_error "cqctl requeue, neither ids nor --all-failed (checked before Redis)" \
    "cqctl: requeue: give job ids or --all-failed" requeue -u redis://127.0.0.1:1 requeue
cqctl_usage_error "cqctl requeue --queue, a bad name: the option named, as cenqueue's" \
    "cqctl: --queue: 'a b' is not a queue name (1-128 of A-Z a-z 0-9 _ . @ -)" requeue \
    requeue --all-failed -q 'a b'
cqctl_usage_error "cqctl requeue --queue without --all-failed" \
    "cqctl: requeue: --queue needs --all-failed" requeue requeue -q x some-id
cqctl_usage_error "cqctl requeue, ids and --all-failed" \
    "cqctl: requeue: job ids and --all-failed do not go together: give one" requeue \
    requeue --all-failed some-id
cqctl_usage_error "cqctl workers, an operand (a command of no arguments)" \
    "cqctl: workers: too many arguments (usage: cqctl workers)" workers workers x
cqctl_usage_error "cqctl info --interval without --watch" \
    "cqctl: info: --interval needs --watch" info -u redis://127.0.0.1:1 info --interval 5
usage_error "cenqueue with neither a job nor --stdin" \
    "cenqueue: give either FUNC [ARG...] or --stdin" cenqueue
usage_error "cenqueue with a job and --stdin: the job named, and why not both" \
    "cenqueue: --stdin and a job on the command line ('noop') do not go together: give one" \
    cenqueue --stdin noop x
usage_error "cenqueue --in with --at (the last one used to win)" \
    "cenqueue: --in and --at do not go together: give one" cenqueue --in 10m --at 5 noop
usage_error "cenqueue --wait-timeout 0: the value, in cqctl wait's words" \
    "cenqueue: --wait-timeout: '0s' is not above 0" cenqueue --wait --wait-timeout 0s noop
cqctl_usage_error "... which are these" "cqctl: --wait-timeout: '0s' is not above 0" wait \
    wait --wait-timeout 0s some-id
# A bad job id is a usage error before Redis is asked: the same with Redis down (port 1).
for c in job wait requeue cancel delete; do
    ok=ok-id
    [ "$c" = job ] && ok=() # one id
    cqctl_usage_error "cqctl $c with a bad id, Redis down: the id's error" \
        "cqctl: job id 'a b': use 1-128 characters of A-Z a-z 0-9 _ . @ -" "$c" \
        -u redis://127.0.0.1:1 "$c" "${ok[@]}" "a b"
done
usage_error "cenqueue --timeout 0: the value" "cenqueue: --timeout: '0' is not above 0" \
    cenqueue --timeout 0 noop
usage_error "cproducer --wait-timeout 0: refused as cenqueue's, where it meant no limit" \
    "cproducer: --wait-timeout: '0' is not above 0" cproducer --wait --wait-timeout 0
usage_error "cproducer --dry-run --wait: the words of the others" \
    "cproducer: --dry-run and --wait do not go together: give one" cproducer --dry-run --wait
for c in info workers jobs job wait requeue cancel delete empty pause resume forget metrics serve; do
    run cqctl "$c" --help
    check_eq "cqctl $c --help: exit 0" 0 "$RC"
    check_eq "cqctl $c --help: its usage" "Usage: cqctl $c" "$(head -1 <<<"$OUT" | cut -d' ' -f1-3)"
    check "cqctl $c --help: its exit statuses" grep -q '^Exit status: 0 ' <<<"$OUT"
    if grep -q '^  .* D  ' <<<"$OUT"; then
        check "cqctl $c --help: a duration option, and the note on durations" \
            grep -q '^Durations take a unit' <<<"$OUT"
    fi
done

echo "# the shared parts of --help, word for word"
# block PROG OPTION: the lines of OPTION's entry in PROG's help (up to the next option).
block() {
    awk -v opt="$2" '
        index($0, opt) == 1 { on = 1; print; next }
        on && /^  +[^ -]/ && !/^  -/ { print; next }
        { on = 0 }' "$T/help.$1"
}
for p in cenqueue cproducer cqctl; do
    check_eq "$p: the -u entry is cworker's" "$(block cworker '  -u, --url URL')" \
        "$(block "$p" '  -u, --url URL')"
    check_eq "$p: the --prefix entry is cworker's" "$(block cworker '      --prefix P')" \
        "$(block "$p" '      --prefix P')"
    check_eq "$p: the -h entry is cworker's" "$(block cworker '  -h, --help')" \
        "$(block "$p" '  -h, --help')"
    check_eq "$p: the -V entry is cworker's" "$(block cworker '  -V, --version')" \
        "$(block "$p" '  -V, --version')"
done
check_eq "cproducer: the -q entry is cenqueue's" "$(block cenqueue '  -q, --queue NAME')" \
    "$(block cproducer '  -q, --queue NAME')"
check_eq "cproducer: the --wait-timeout entry is cenqueue's" \
    "$(block cenqueue '      --wait-timeout D')" "$(block cproducer '      --wait-timeout D')"
check_eq "cqctl: the --log-level entry (serve) is cworker's" \
    "$(block cworker '      --log-level LEVEL')" "$(block cqctl '      --log-level LEVEL')"
check_eq "cqctl: the --log-format entry (serve) is cworker's" \
    "$(block cworker '      --log-format FORMAT')" "$(block cqctl '      --log-format FORMAT')"
check "cworker's -u entry names unix:// and both defaults" \
    grep -qF 'unix://[[user]:pass@]/path.sock' "$T/help.cworker"
for p in "${PROGS[@]}"; do
    check "$p: the durations note" \
        grep -qxF 'Durations take a unit: 250ms, 30s, 5m, 2h, 30d (a bare number is seconds), up to 100 years.' \
        "$T/help.$p"
    check "$p: exit 2 is a usage error" grep -q '2 for a usage error' "$T/help.$p"
    check "$p: every default reads '(default: X)'" bash -c \
        "! grep -n '(default [^:]' '$T/help.$p'"
    check "$p: no help line is wider than 92 columns" bash -c \
        "! grep -n '.\{93\}' '$T/help.$p'"
    check "$p: ranges read 'N to M', as the errors say them (no 'N..M')" bash -c \
        "! grep -nE '[0-9]\.\.[0-9]' '$T/help.$p'"
    check "$p: no entry gives durations as examples, which the durations note does" bash -c \
        "! grep -nE 'e\.g\. [0-9]+(ms|s|m|h|d)?[,)]' '$T/help.$p'"
done
check "cproducer --wait ends on canceled jobs too, as cenqueue's" \
    grep -qF "has ended (finished, failed" "$T/help.cproducer"
check "cproducer: exit 1 for a canceled or unknown job with --wait, as cenqueue's" \
    grep -qF "with --wait when a job failed, was canceled, had no status to say how it ended" \
    "$T/help.cproducer"
check "cenqueue: thousands written as its other numbers (1,000)" \
    grep -qF "batches of 10,000," "$T/help.cenqueue"
check_eq "cenqueue --in and --at each say the other is refused" "2" \
    "$(grep -cE -- '--(in|at) [DT] .*\(not with --(at|in)\)' "$T/help.cenqueue")"
check "cworker --max-jobs: what 0 is, as --max-size says it" \
    grep -qF "(default: 0 = no" "$T/help.cworker"
check "cworker --log-level lists the levels" \
    grep -q 'error, warn, info or debug (default: info)' "$T/help.cworker"
check_eq "cworker --max-size says what 0 is" \
    "      --max-size SIZE      largest download (default: 50M; 0 = no limit)" \
    "$(block cworker '      --max-size SIZE')"
check_eq "cworker --connect-timeout says what 0 is" \
    "      --connect-timeout D  HTTP connect timeout (default: 10s; 0 = libcurl's own, 300s)" \
    "$(block cworker '      --connect-timeout D')"

echo "# scripts/format, build, test, deps, demo and fuzz: --help, and usage errors, that run nothing"
# Every tool the scripts run to change something is a stub in front of PATH that records its
# call in $T/ran and fails: a --help or a refused option that went on anyway could neither
# format a file, configure, build, install a package, fuzz nor start the suite (scripts/test
# would run ctest, this test among its tests), and $T/ran says it did.
mkdir -p "$T/stubs"
for tool in clang-format cmake ctest dpkg-query apt-get sudo clang; do
    printf '#!/bin/sh\necho "%s $*" >>"%s/ran"\nexit 97\n' "$tool" "$T" >"$T/stubs/$tool"
    chmod +x "$T/stubs/$tool"
done
# script NAME ARGS...: scripts/NAME ARGS with the stubs, from $T; sets OUT, ERR, RC and RAN
# (the stubs' calls, then forgotten).
script() {
    local s=$1
    shift
    rm -f "$T/ran"
    (cd "$T" && PATH=$T/stubs:$PATH CQ_BUILD_DIR=$T/b CMAKE_BUILD_TYPE=Debug \
        timeout 60 "$SRC/scripts/$s" "$@" >"$T/out" 2>"$T/err")
    RC=$?
    OUT=$(<"$T/out")
    ERR=$(<"$T/err")
    RAN=$(cat "$T/ran" 2>/dev/null)
}
# script_error NAME EXPECTED_FIRST_LINE SCRIPT ARGS...: as usage_error, and nothing ran.
script_error() {
    local name=$1 line=$2 s=$3
    shift 3
    script "$s" "$@"
    check_eq "$name: exit 2" 2 "$RC"
    check_eq "$name: nothing on stdout" "" "$OUT"
    check_eq "$name: one line and the Try line" \
        "$line"$'\n'"Try 'scripts/$s --help' for more information." "$ERR"
    check_eq "$name: runs nothing" "" "$RAN"
}
FUZZ_TARGETS="targets: job gallery rconn_url download_filename parse"
for s in format build test deps demo fuzz; do
    script "$s" --help
    check_eq "scripts/$s --help: exit 0" 0 "$RC"
    check_eq "scripts/$s --help: nothing on stderr" "" "$ERR"
    check_eq "scripts/$s --help: starts with its usage" "Usage: scripts/$s" \
        "$(head -1 <<<"$OUT" | cut -d' ' -f1-2)"
    check_eq "scripts/$s --help: runs nothing" "" "$RAN"
    printf '%s\n' "$OUT" >"$T/help.$s"
    check_eq "scripts/$s --help: a blank line after its usage, as the commands'" "" \
        "$(sed -n 2p "$T/help.$s")"
    check "scripts/$s --help: a blank line before Options:" awk \
        'NR > 1 && prev == "" && $0 == "Options:" { ok = 1 } { prev = $0 } END { exit !ok }' \
        "$T/help.$s"
    check "scripts/$s --help: defaults as '(default: X)'" bash -c \
        "! grep -q '(default [^:]' '$T/help.$s'"
    check "scripts/$s --help: no line is wider than 92 columns" bash -c \
        "! grep -n '.\{93\}' '$T/help.$s'"
    script "$s" -h
    check_eq "scripts/$s -h: the same" "0 $(<"$T/help.$s")" "$RC $OUT"
    script_error "scripts/$s --chek" "scripts/$s: unknown option '--chek'" "$s" --chek
    script_error "scripts/$s -x" "scripts/$s: unknown option '-x'" "$s" -x
    if [ "$s" = fuzz ]; then   # its arguments are targets
        script_error "scripts/$s extra" "scripts/$s: unknown target 'extra' ($FUZZ_TARGETS)" \
            "$s" extra
    else
        script_error "scripts/$s extra" "scripts/$s: unexpected argument 'extra'" "$s" extra
    fi
done
# scripts/fuzz --help names its targets, as its refusal does, and what sets its pace.
for w in "-h, --help" "job, gallery, rconn_url, download_filename or parse" \
    "CQ_FUZZ_SECONDS" "(default: 30)" "CQ_FUZZ_JOBS" "(default: 2)" "Exit status"; do
    check "scripts/fuzz --help mentions $w" grep -qF -- "$w" "$T/help.fuzz"
done
script_error "scripts/fuzz, a bad target after a good one" \
    "scripts/fuzz: unknown target 'jobs' ($FUZZ_TARGETS)" fuzz job jobs
for w in "-h, --help" "--check" "Exit status"; do
    check "scripts/format --help mentions $w" grep -qF -- "$w" "$T/help.format"
done
for w in "-h, --help" "--test" "iproute2 (ip" "Exit status"; do
    check "scripts/deps --help mentions $w" grep -qF -- "$w" "$T/help.deps"
done
# scripts/demo --help is laid out as the commands' are: its usage, a blank line, a one-line
# description, the options in a column, what it needs, the environment, the exit statuses.
check_eq "scripts/demo --help: its one-line description, alone" \
    "Run cq's distributed download end to end on this machine, and keep the images.|" \
    "$(sed -n 3,4p "$T/help.demo" | paste -sd'|')"
for w in "Options:" "It needs " "Environment:" "Exit status: 0 " "2 for a usage error" \
    CQ_BUILD_DIR TMPDIR "(default: ./images"; do
    check "scripts/demo --help mentions $w" grep -qF -- "$w" "$T/help.demo"
done
# Every option the script's loop takes is in the column, and every option in the column
# is one it takes.
taken=$(sed -n '/^while \[ \$# -gt 0 \]; do/,/^done/p' "$SRC/scripts/demo" |
    grep -oE '^ +-[^)]*\)' | tr -d ' )' | tr '|' '\n' | sed 's/=\*$//' | grep -vx -- '-\*' |
    sort -u)
listed=$(sed -n '/^Options:/,/^$/p' "$T/help.demo" | grep -oE '^  (-[a-zA-Z], |    )--[a-z-]+' |
    sed 's/,//; s/^ *//' | tr ' ' '\n' | grep -v '^$' | sort -u)
check "scripts/demo: its loop takes options (${taken//$'\n'/ })" test -n "$taken"
check_eq "scripts/demo --help lists exactly the options it takes" "$taken" "$listed"
script_error "scripts/demo --dir (no value)" "scripts/demo: option '--dir' needs a value" demo --dir
script_error "scripts/demo --dir ''" "scripts/demo: --dir: empty; leave it out for ./images" \
    demo --dir ''
script_error "scripts/demo --dir FILE" \
    "scripts/demo: --dir: '$(realpath "$T/stubs/cmake")' is not a directory the demo can fill" \
    demo --dir "$T/stubs/cmake"
for s in build test; do
    for w in "-h, --help" "-DVAR=VALUE" "-D VAR=VALUE" "-UVAR" "-G GENERATOR" "-C FILE" \
        "-W..." "--fresh" CQ_BUILD_DIR "Exit status"; do
        check "scripts/$s --help mentions $w" grep -qF -- "$w" "$T/help.$s"
    done
    script_error "scripts/$s -D (no value)" "scripts/$s: option '-D' needs a value" "$s" -D
    script_error "scripts/$s, a bad option after good ones" \
        "scripts/$s: unknown option '--bogus'" "$s" -DCQ_WERROR=ON --bogus
done
for w in CMAKE_BUILD_TYPE CQ_WERROR ENABLE_SANITIZERS CQ_BUILD_TESTS CQ_BUILD_EXAMPLES \
    CQ_BUILD_MAN CQ_FUZZ; do
    check "scripts/build --help mentions $w" grep -qF -- "$w" "$T/help.build"
done
for w in CQ_TEST_SANITIZERS CQ_TEST_FUZZ CQ_TEST_TSAN CQ_TEST_VALGRIND CQ_FUZZ_SECONDS \
    "scripts/build --help" .ci/run; do
    check "scripts/test --help mentions $w" grep -qF -- "$w" "$T/help.test"
done
for o in $(sed -n 's/^option(\([A-Z_]*\) .*/\1/p' "$SRC/CMakeLists.txt"); do
    check "scripts/build --help names CMakeLists.txt's option $o" grep -qF -- "$o=" "$T/help.build"
done
script build -DCQ_WERROR=ON -D X=1 -UY -G Ninja -C c.cmake -Wno-dev --fresh
check_eq "scripts/build: the CMake options go to cmake as they are" \
    "cmake -S . -B $T/b -DCMAKE_BUILD_TYPE=Debug -DCQ_WERROR=ON -D X=1 -UY -G Ninja -C c.cmake -Wno-dev --fresh" \
    "$RAN"
check_eq "... and cmake's status is scripts/build's" 97 "$RC"

echo "# bad values: the option, the value, and what it takes"
D="is not a duration such as 250ms, 30s, 5m or 2h"
usage_error "cworker --shutdown-timeout" "cworker: --shutdown-timeout: 'soon' $D" \
    cworker --shutdown-timeout soon
usage_error "cworker --connect-timeout" "cworker: --connect-timeout: '1y' $D" \
    cworker --connect-timeout 1y
usage_error "cenqueue --timeout" "cenqueue: --timeout: 'x' $D" cenqueue --timeout x noop
usage_error "cproducer --max-wait" "cproducer: --max-wait: 'x' $D" cproducer --max-wait x
cqctl_usage_error "cqctl --interval" "cqctl: --interval: 'x' $D" info info --interval x
cqctl_usage_error "cqctl --interval, out of its range" \
    "cqctl: --interval: '10ms' is not from 50ms to 24h" info info --watch --interval 10ms
usage_error "cproducer --max-wait, over its limit" "cproducer: --max-wait: '2d' is longer than 1d" \
    cproducer --max-wait 2d
usage_error "cworker --max-size" "cworker: --max-size: '5Q' is not a size such as 512K, 50M or 1G" \
    cworker --max-size 5Q
usage_error "cworker -c 0" "cworker: --concurrency: '0' is not a whole number from 1 to 4096" \
    cworker -c 0
usage_error "cproducer -j 0" "cproducer: --jobs: '0' is not a whole number from 1 to 256" \
    cproducer -j 0 --mode threads
usage_error "cworker --log-level" \
    "cworker: --log-level: 'verbose' is not one of error, warn, info or debug" \
    cworker --log-level verbose
cqctl_usage_error "cqctl serve --log-level" \
    "cqctl: --log-level: 'verbose' is not one of error, warn, info or debug" \
    serve serve --log-level verbose
usage_error "cenqueue --in, over 100 years" "cenqueue: --in: '99999999999h' is longer than 100 years" \
    cenqueue --in 99999999999h noop
usage_error "cenqueue --timeout, over 100 years" \
    "cenqueue: --timeout: '3153600001' is longer than 100 years" cenqueue --timeout 3153600001 noop
for v in 0x10 inf nan 1e3; do # strtod's, not a duration's
    usage_error "cworker --connect-timeout $v" "cworker: --connect-timeout: '$v' $D" \
        cworker --connect-timeout "$v"
done
usage_error "cenqueue --at past the range" \
    "cenqueue: --at: '1e11' is not a Unix time in seconds (0 to 99999999999)" cenqueue --at 1e11 noop
# A date where the seconds go: the line says how to get them from it (not for a number).
usage_error "cenqueue --at with a date" \
    "cenqueue: --at: '2026-12-06T20:00:00Z' is not a Unix time in seconds (0 to 99999999999); from a date: --at \$(date -d 'DATE' +%s)" \
    cenqueue --at 2026-12-06T20:00:00Z noop
usage_error "cworker --log-format" "cworker: --log-format: 'xml' is not one of text or json" \
    cworker --log-format xml
# A TLS file for a URL without TLS was read by nothing, without a word (the 's' of rediss://
# left out): a usage error, the URL's source named (not the URL: it may hold a password).
usage_error "cenqueue --tls-ca with a redis:// URL" \
    "cenqueue: --tls-ca: TLS files are for a rediss:// URL, and the URL (--url) is not one: give rediss://, or leave --tls-ca out" \
    cenqueue -u redis://127.0.0.1:1 --tls-ca /etc/hosts noop
CQ_REDIS_URL=unix:///nonexistent.sock usage_error "cworker --tls-cert, \$CQ_REDIS_URL without TLS" \
    "cworker: --tls-cert: TLS files are for a rediss:// URL, and the URL (\$CQ_REDIS_URL) is not one: give rediss://, or leave --tls-cert out" \
    cworker --tls-cert /etc/hosts --burst
cqctl_usage_error "cqctl --tls-key, the default URL" \
    "cqctl: --tls-key: TLS files are for a rediss:// URL, and the URL (the default, redis://127.0.0.1:6379) is not one: give rediss://, or leave --tls-key out" \
    info --tls-key /etc/hosts info
# An empty path: it read "cworker: --load plugin : No such file or directory", exit 1.
usage_error "cworker --load ''" "cworker: --load: empty path; give the plugin's .so file" \
    cworker --load ''
usage_error "cworker --command-file ''" \
    "cworker: --command-file: empty path; give a file of NAME=PROGRAM lines" cworker --command-file ''
cqctl_usage_error "cqctl serve --log-format" \
    "cqctl: --log-format: 'xml' is not one of text or json" \
    serve serve --log-format xml
usage_error "cworker --url" \
    "cworker: --url: redis URL 'localhost:6379': must start with redis://, rediss:// (TLS), redis+sentinel:// or unix://" \
    cworker --url localhost:6379
# Every command names the option, and the same mistake in the environment names the
# variable: a usage error before anything connects; --url / --prefix override a bad variable.
U="redis URL 'localhost:6379': must start with redis://, rediss:// (TLS), redis+sentinel:// or unix://"
P="key prefix 'a b': spaces and control bytes are not allowed"
export IMGUR_CLIENT_ID=test-client
for p in cenqueue cproducer; do
    args=(); [ "$p" = cenqueue ] && args=(noop)
    usage_error "$p --url" "$p: --url: $U" "$p" --url localhost:6379 "${args[@]}"
    usage_error "$p --prefix" "$p: --prefix: $P" "$p" --prefix 'a b' "${args[@]}"
done
cqctl_usage_error "cqctl --url" "cqctl: --url: $U" info info --url localhost:6379
cqctl_usage_error "cqctl --prefix" "cqctl: --prefix: $P" info info --prefix 'a b'
for p in cworker cenqueue cproducer; do
    args=(); [ "$p" = cenqueue ] && args=(noop)
    CQ_REDIS_URL=localhost:6379 usage_error "$p, a bad \$CQ_REDIS_URL" "$p: \$CQ_REDIS_URL: $U" \
        "$p" "${args[@]}"
    CQ_PREFIX='a b' usage_error "$p, a bad \$CQ_PREFIX" \
        "$p: \$CQ_PREFIX: key prefix 'a b': spaces and control bytes are not allowed" "$p" \
        "${args[@]}"
done
CQ_REDIS_URL=localhost:6379 cqctl_usage_error "cqctl, a bad \$CQ_REDIS_URL" \
    "cqctl: \$CQ_REDIS_URL: $U" info info
CQ_PREFIX='a b' cqctl_usage_error "cqctl, a bad \$CQ_PREFIX" \
    "cqctl: \$CQ_PREFIX: key prefix 'a b': spaces and control bytes are not allowed" info info
# Given but empty is a mistake (-u "$UNSET"), not the default: refused by every command, with
# the variable set or not; an empty variable still counts as unset.
EU='--url: empty; leave it out for $CQ_REDIS_URL, else redis://127.0.0.1:6379'
EP='--prefix: empty; leave it out for $CQ_PREFIX, else "cq:"'
for p in cworker cenqueue cproducer; do
    args=(); [ "$p" = cenqueue ] && args=(noop)
    usage_error "$p -u ''" "$p: $EU" "$p" -u '' "${args[@]}"
    CQ_REDIS_URL=redis://127.0.0.1:1 usage_error "$p --url '' with \$CQ_REDIS_URL set" \
        "$p: $EU" "$p" --url '' "${args[@]}"
    CQ_PREFIX=x: usage_error "$p --prefix '' with \$CQ_PREFIX set" "$p: $EP" "$p" --prefix '' \
        "${args[@]}"
done
cqctl_usage_error "cqctl -u ''" "cqctl: $EU" info info -u ''
cqctl_usage_error "cqctl --prefix ''" "cqctl: $EP" info info --prefix ''
CQ_REDIS_URL= CQ_PREFIX= run cworker --list-functions
check_eq "an empty \$CQ_REDIS_URL and \$CQ_PREFIX are unset: exit 0" 0 "$RC"
unset IMGUR_CLIENT_ID
run cworker --list-functions
out_ok=$OUT
CQ_REDIS_URL=localhost:6379 CQ_PREFIX='a b' run cworker --url redis://127.0.0.1:1 --prefix x: \
    --list-functions
check_eq "--url and --prefix override a bad \$CQ_REDIS_URL and \$CQ_PREFIX: exit 0" 0 "$RC"
check_eq "...and the worker lists its functions" "$out_ok" "$OUT"
usage_error "cenqueue --queue" \
    "cenqueue: --queue: 'a b' is not a queue name (1-128 of A-Z a-z 0-9 _ . @ -)" \
    cenqueue -q 'a b' noop
usage_error "cworker, a bad queue name" \
    "cworker: queue 'a/b': use 1-128 characters of A-Z a-z 0-9 _ . @ -" cworker 'a/b'
# A list in one argument, as cqctl info and the worker's log show the queues (high,default),
# as the unit takes them (cworker@high:low) or quoted whole: the line says the form it takes.
for q in high,default,low high:low 'high default'; do
    usage_error "cworker, the queues in one argument: '$q'" \
        "cworker: queue '$q': use 1-128 characters of A-Z a-z 0-9 _ . @ -; give the queues as separate arguments: cworker high default low" \
        cworker "$q"
done
# A name or a prefix is quoted in one line (control bytes escaped) and only its first 64
# bytes ("..."), so that the cause and the fix after it show.
usage_error "cenqueue -q with a newline" \
    "cenqueue: --queue: 'a\\nb' is not a queue name (1-128 of A-Z a-z 0-9 _ . @ -)" \
    cenqueue -q $'a\nb' noop
usage_error "cenqueue --id with an escape" \
    "cenqueue: --id: 'x\\x1b[2Jy' is not a job id (1-128 of A-Z a-z 0-9 _ . @ -)" \
    cenqueue --id $'x\e[2Jy' noop
usage_error "cworker, a queue name with a newline" \
    "cworker: queue 'q\\n1': use 1-128 characters of A-Z a-z 0-9 _ . @ -" cworker $'q\n1'
A64=$(printf 'a%.0s' {1..64})
usage_error "cworker, a 600-character queue name" \
    "cworker: queue '$A64...': use 1-128 characters of A-Z a-z 0-9 _ . @ -" \
    cworker "$(printf 'a%.0s' {1..600})"
usage_error "cworker --prefix of 600 characters" \
    "cworker: --prefix: key prefix '$A64...': longer than 63 bytes" \
    cworker --prefix "$(printf 'a%.0s' {1..600})"
cqctl_usage_error "cqctl --prefix of 600 characters and a space" \
    "cqctl: --prefix: key prefix '$A64...': spaces and control bytes are not allowed" \
    info info --prefix "$(printf 'a%.0s' {1..600}) x"
usage_error "cworker, 65 queues" "cworker: queue 'q65': at most 64 queues" \
    cworker $(seq -f 'q%g' 1 65)
usage_error "cworker --lease under a heartbeat's reach" \
    "cworker: --lease: '1s' is not from 3s (a heartbeat is every 2s) to 1h" cworker --lease 1s
usage_error "cworker --lease over an hour" \
    "cworker: --lease: '2h' is not from 3s (a heartbeat is every 2s) to 1h" cworker --lease 2h
usage_error "cworker --prefix" \
    "cworker: --prefix: key prefix 'a b': spaces and control bytes are not allowed" \
    cworker --prefix 'a b'
usage_error "cworker --result-ttl" \
    "cworker: --result-ttl: '-2' is not a duration such as 500s, 5m or 30d (0 = drop at once, -1 = keep)" \
    cworker --result-ttl -2
usage_error "cworker --failure-ttl, over 100 years" \
    "cworker: --failure-ttl: '36501d' is not whole seconds up to 100 years" \
    cworker --failure-ttl 36501d
usage_error "cworker --failure-ttl, not whole seconds" \
    "cworker: --failure-ttl: '1.5s' is not whole seconds up to 100 years" \
    cworker --failure-ttl 1.5s
# An allow list with no host in it would allow any host: refused, naming where it came from.
AH="no host in the list; leave --allow-hosts out to allow any host"
usage_error "cworker --allow-hosts ''" "cworker: --allow-hosts: $AH" cworker --allow-hosts ''
usage_error "cworker --allow-hosts ','" "cworker: --allow-hosts: $AH" cworker --allow-hosts ,
CQ_ALLOW_HOSTS= usage_error "cworker, an empty \$CQ_ALLOW_HOSTS" \
    "cworker: \$CQ_ALLOW_HOSTS: no host in the list; leave \$CQ_ALLOW_HOSTS out to allow any host" \
    cworker --list-functions
run cworker --result-ttl 4.1m --failure-ttl 2.05m --list-functions
check_eq "cworker --result-ttl 4.1m (246 s; 4.1 * 60 is not exactly 246 in floating point)" 0 "$RC"
# Leading zeros are decimal (Go's time.ParseDuration and systemd take 007s as 7 s), for every
# option that takes a duration: taken, and the ranges see the value they are (0002s is 2 s,
# under --lease's 3 s); a sign before them is refused as before.
run cworker --lease 010s --shutdown-timeout 007s --connect-timeout 0005 --result-ttl 0500 \
    --failure-ttl 007d --list-functions
check_eq "cworker: durations with leading zeros (010s, 007s, 0005, 0500, 007d): exit 0" 0 "$RC"
usage_error "cworker --lease 0002s, read as 2 s" \
    "cworker: --lease: '0002s' is not from 3s (a heartbeat is every 2s) to 1h" cworker --lease 0002s
usage_error "cworker --failure-ttl 00.5s, read as half a second" \
    "cworker: --failure-ttl: '00.5s' is not whole seconds up to 100 years" cworker --failure-ttl 00.5s
cqctl_usage_error "cqctl --interval 0010ms, read as 10 ms" \
    "cqctl: --interval: '0010ms' is not from 50ms to 24h" info info --watch --interval 0010ms
usage_error "cproducer --max-wait 0002d, read as 2 days" \
    "cproducer: --max-wait: '0002d' is longer than 1d" cproducer --max-wait 0002d
usage_error "cenqueue --timeout 0036501d, read as 36501 days" \
    "cenqueue: --timeout: '0036501d' is longer than 100 years" cenqueue --timeout 0036501d noop
usage_error "cenqueue --timeout -007s" "cenqueue: --timeout: '-007s' $D" cenqueue --timeout -007s noop
usage_error "cworker --result-ttl -01 (only -1 keeps)" \
    "cworker: --result-ttl: '-01' is not a duration such as 500s, 5m or 30d (0 = drop at once, -1 = keep)" \
    cworker --result-ttl -01

echo "# Redis errors name the host and the fix"
CLOSED=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REFUSED="redis 127.0.0.1:$CLOSED: Connection refused; is redis-server running there? Start it, or point the URL at yours"
REFUSED_ENV="redis 127.0.0.1:$CLOSED: Connection refused; is redis-server running there? Start it, or point \$CQ_REDIS_URL at yours"
run cenqueue -u "redis://127.0.0.1:$CLOSED" noop
check_eq "cenqueue, no Redis: exit 1" 1 "$RC"
check_eq "cenqueue, no Redis: the line" "cenqueue: $REFUSED" "$ERR"
run cqctl -u "redis://127.0.0.1:$CLOSED" info
check_eq "cqctl, no Redis: exit 1" 1 "$RC"
check_eq "cqctl, no Redis: the line" "cqctl: $REFUSED" "$ERR"
# info --watch too, where it said the line again every second until Ctrl-C (exit 0).
timeout 5 "$BIN/cqctl" -u "redis://127.0.0.1:$CLOSED" info --watch --interval 100ms \
    >"$T/out" 2>"$T/err"
RC=$?
ERR=$(<"$T/err")
check_eq "cqctl info --watch, no Redis for its first picture: exit 1, the line once" \
    "1 cqctl: $REFUSED" "$RC $ERR"
CQ_REDIS_URL=redis://127.0.0.1:$CLOSED run cworker --burst
check_eq "cworker, no Redis: exit 1" 1 "$RC"
check_contains "cworker, no Redis: the line names \$CQ_REDIS_URL, which set it" "ERROR $REFUSED_ENV" "$ERR"
run cworker -u "redis://127.0.0.1:$CLOSED" --burst
check_contains "cworker -u, no Redis: the line" "ERROR $REFUSED" "$ERR"
IMGUR_CLIENT_ID=x run cproducer -u "redis://127.0.0.1:$CLOSED"
check_eq "cproducer, no Redis: exit 1" 1 "$RC"
check_contains "cproducer, no Redis: the line" "$REFUSED" "$ERR"
# A socket path that is no socket: it said 'Connection refused; is redis-server running there?'
mkdir "$T/notsock"
: >"$T/notsock.rdb"
for p in notsock notsock.rdb; do
    what="a directory"
    [ "$p" = notsock.rdb ] && what="a regular file"
    run cqctl -u "unix://$T/$p" info
    check_eq "cqctl, a socket path that is $what: exit 1, saying so" \
        "1 cqctl: redis $T/$p: $what, not a socket; point the URL at the socket redis-server listens on (its unixsocket)" \
        "$RC $ERR"
done

# This Redis answers PING only after AUTH: lib.sh's readiness check must give the password.
redis_answers() { [ "$(redis-cli -s "$RSOCK" -a sekrit --no-auth-warning ping 2>/dev/null)" = PONG ]; }
start_redis_tcp --requirepass sekrit
unset CQ_REDIS_URL
NOAUTH="redis 127.0.0.1:$RPORT: NOAUTH Authentication required; this Redis needs a password: put it in the URL, redis://:PASSWORD@host:port (redis://USER:PASSWORD@host:port for an ACL user)"
run cenqueue -u "redis://127.0.0.1:$RPORT" noop
check_eq "cenqueue, no password: exit 1" 1 "$RC"
check_eq "cenqueue, no password: the line" "cenqueue: $NOAUTH" "$ERR"
run cqctl -u "redis://127.0.0.1:$RPORT" info
check_eq "cqctl, no password: the line" "cqctl: $NOAUTH" "$ERR"
run cworker -u "redis://127.0.0.1:$RPORT" --burst
check_eq "cworker, no password: exit 1" 1 "$RC"
check_contains "cworker, no password: the line" "ERROR $NOAUTH" "$ERR"
run cenqueue -u "redis://:wrong@127.0.0.1:$RPORT" noop
check_eq "cenqueue, wrong password: exit 1" 1 "$RC"
check_contains "cenqueue, wrong password: names the host and the fix" \
    "redis 127.0.0.1:$RPORT: AUTH failed: WRONGPASS" "$ERR"
check_contains "... and says what to check" "; check the user and the password in the URL" "$ERR"
run cenqueue -u "redis://:sekrit@127.0.0.1:$RPORT" --no-check noop
check_eq "cenqueue, the password in the URL: exit 0" 0 "$RC"
# cqctl serve on a port in use (this Redis's): the cause, and the way out.
run cqctl -u "redis://:sekrit@127.0.0.1:$RPORT" serve --listen "127.0.0.1:$RPORT"
check_eq "cqctl serve, its port in use: exit 1, the line" \
    "1 cqctl: serve: --listen 127.0.0.1:$RPORT: Address already in use; another program listens there (cqctl serve?): stop it, or give another port (port 0: any free one, logged)" \
    "$RC $ERR"
# The same Redis through its socket: unix:// carries the password before the path.
run cenqueue -u "unix://$RSOCK" noop
check_eq "unix://, no password: the line, and how a unix:// URL carries one" \
    "cenqueue: redis $RSOCK: NOAUTH Authentication required; this Redis needs a password: put it in the URL, unix://:PASSWORD@/path.sock (unix://USER:PASSWORD@/path.sock for an ACL user)" \
    "$ERR"
run cenqueue -u "unix://:sekrit@$RSOCK" --no-check noop
check_eq "unix://:PASSWORD@/path: exit 0" 0 "$RC"
run cqctl -u "unix://default:sekrit@$RSOCK" info
check_eq "unix://USER:PASSWORD@/path: exit 0" 0 "$RC"
run cenqueue -u "unix://:wrong@$RSOCK" noop
check_eq "unix://, a wrong password: exit 1" 1 "$RC"
check_contains "... says to check it" "WRONGPASS" "$ERR"
check "... and never shows it" bash -c "! grep -q wrong '$T/err'"
run cworker -u "unix://:wrong@$RSOCK?db=x" --burst
check_eq "unix://, a bad URL with a password: exit 2" 2 "$RC"
check_contains "... shown with the password as ***" "'unix://:***@$RSOCK?db=x'" "$ERR"
export CQ_REDIS_URL=redis://:sekrit@127.0.0.1:$RPORT
rcli() { redis-cli -s "$RSOCK" -a sekrit --no-auth-warning "$@"; }
rcli DEL cq:queue:default cq:queues >/dev/null
# A password given to a Redis that has none: the fix is to remove it.
rcli CONFIG SET requirepass "" >/dev/null
run cenqueue -u "redis://:sekrit@127.0.0.1:$RPORT" noop
redis-cli -s "$RSOCK" CONFIG SET requirepass sekrit >/dev/null
check_eq "a password Redis does not have: exit 1" 1 "$RC"
check_contains "... and the fix: remove it" \
    "called without any password configured for the default user. Are you sure your configuration is correct?; this Redis has no password: remove it from the URL" \
    "$ERR"
check_eq "... in one line" 1 "$(wc -l <"$T/err")"
# A port that is not Redis's (an HTTP server): the fix is to check the port.
start_httpd
run cenqueue -u "redis://127.0.0.1:$HPORT" noop
check_eq "a port that is not Redis: exit 1" 1 "$RC"
check "... naming the host, the cause and the fix" bash -c \
    "grep -qE '^cenqueue: redis 127.0.0.1:$HPORT: Protocol error, got .* as reply type byte; this server does not speak Redis: is it the right port\?$' '$T/err'"
check_eq "... in one line" 1 "$(wc -l <"$T/err")"

echo "# cworker checks its download root before it starts"
echo "a file" >"$T/afile"
run cworker --burst --download-root "$T/afile"
check_eq "a regular file: exit 1" 1 "$RC"
check_eq "a regular file: the line" \
    "cworker: --download-root: '$T/afile' is a regular file, not a directory" "$ERR"
run cworker --burst --download-root "$T/afile/below"
check_eq "below a regular file: names the file" \
    "cworker: --download-root: '$T/afile' is a regular file, not a directory" "$ERR"
run cworker --burst --download-root /proc/cq-test
check_eq "cannot be made: exit 1" 1 "$RC"
check_eq "cannot be made: the line" \
    "cworker: --download-root: cannot make '/proc/cq-test': No such file or directory" "$ERR"
(cd /proc && "$BIN/cworker" --burst) >"$T/out" 2>"$T/err"
check_eq "no --download-root, an unwritable working directory: the worker runs" 0 "$?"
check_contains "... and warns that download_link cannot write there" \
    "cworker: warning: download_link cannot write in the working directory: '/proc' is not writable" \
    "$(<"$T/err")"
run cworker --burst --download-root "$T/new/a/b"
check_eq "missing, with missing parents: made, and the worker runs" 0 "$RC"
check "... the directory is there" test -d "$T/new/a/b"
mkdir -p "$T/ro"
unshare -m bash -c 'mount -t tmpfs -o ro,size=1m tmpfs "$1" && exec "$2" --burst --download-root "$1"' \
    _ "$T/ro" "$BIN/cworker" >"$T/out" 2>"$T/err"
check_eq "a read-only root: exit 1" 1 "$?"
check_eq "a read-only root: the line" \
    "cworker: --download-root: '$T/ro' is not writable: Read-only file system" "$(<"$T/err")"
check_eq "no job was taken meanwhile" 0 "$(rcli LLEN cq:queue:default)"

echo "# cenqueue knows download_link without libcurl (it only checks jobs against it)"
check "cenqueue loads no libcurl (two thirds of its start-up)" \
    bash -c "! ldd '$BIN/cenqueue' | grep -q libcurl"
out=$("$BIN/cenqueue" --list-functions 2>&1)
check_contains "... and lists download_link with its summary" \
    "save LINK (http/https) as DIRECTORY/<name from the URL>" "$out"
"$BIN/cenqueue" download_link onlyone >"$T/out" 2>"$T/err"
check_eq "... and refuses it with the wrong arguments: exit 2" 2 "$?"
check_contains "... saying why" "download_link takes 2 arguments, got 1" "$(<"$T/err")"

echo "# a name with control bytes is shown escaped, on the one line"
cqctl_usage_error "cqctl job \$'x\\ny': one line naming the id, escaped" \
    "cqctl: job id 'x\\ny\\x1b[31m': use 1-128 characters of A-Z a-z 0-9 _ . @ -" \
    job job $'x\ny\e[31m'

echo "# cenqueue --stdin: which lines went in when one is bad"
printf 'noop\nsleep 0\n# a comment\nnoop\nsleep soon\nnoop\n' >"$T/jobs"
"$BIN/cenqueue" --stdin <"$T/jobs" >"$T/out" 2>"$T/err"
check_eq "a refused line: exit 2" 2 "$?"
check_eq "the ids of the three jobs before it are printed" 3 "$(wc -l <"$T/out")"
check_eq "... and those three are in the queue" 3 "$(rcli LLEN cq:queue:default)"
check_contains "the refused line is named" "cenqueue: stdin line 5: " "$(<"$T/err")"
check_contains "what went in and where to go on" \
    "cenqueue: the 3 jobs before line 5 went in (ids printed); line 5 and the rest did not: fix it and enqueue from there (tail -n +5)" \
    "$(<"$T/err")"
printf 'sleep soon\nnoop\n' | "$BIN/cenqueue" --stdin >"$T/out" 2>"$T/err"
check_eq "a bad first line: exit 2" 2 "$?"
check_contains "... nothing went in, and it says so" \
    "cenqueue: nothing was enqueued; fix line 1 and run again" "$(<"$T/err")"
check_eq "... and nothing is in the queue beyond the three" 3 "$(rcli LLEN cq:queue:default)"
printf 'noop "a b"\nnoop "unclosed\nnoop\n' | "$BIN/cenqueue" --no-check --stdin >"$T/out" 2>"$T/err"
check_eq "an unterminated quote: exit 2" 2 "$?"
check_contains "... names its line" "cenqueue: stdin line 2: unterminated quote" "$(<"$T/err")"
check_contains "... and where to go on" "the 1 job before line 2 went in (ids printed)" "$(<"$T/err")"
check_eq "... the quoted argument of line 1 is one argument" '["a b"]' \
    "$(rcli LINDEX cq:queue:default 0 | "$PY" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["args"]))')"
rcli LPOP cq:queue:default >/dev/null
# A NUL byte ended the line there, the rest of it dropped without a word.
printf 'noop a\0b\n' | "$BIN/cenqueue" --no-check --stdin >"$T/out" 2>"$T/err"
check_eq "a NUL byte in a line: exit 2" 2 "$?"
check_contains "... names its line and column" \
    "cenqueue: stdin line 1: a NUL byte at column 7 (no argument can hold one)" "$(<"$T/err")"
check_eq "... and nothing went in" 3 "$(rcli LLEN cq:queue:default)"
printf 'noop\nsleep soon\n' | "$BIN/cenqueue" --quiet --stdin >"$T/out" 2>"$T/err"
check_contains "a refused line, --quiet: no ids said to be printed" \
    "cenqueue: the 1 job before line 2 went in; line 2 and the rest did not" "$(<"$T/err")"
rcli LPOP cq:queue:default >/dev/null
# A line no worker could read (not UTF-8, over 1 MiB) is refused as a line, checked or not:
# it failed the whole batch as an enqueue's error (exit 1, no line named, the lines before it
# in the batch not in).
for nc in "" --no-check; do
    printf 'noop a\nnoop caf\351\nnoop b\n' | "$BIN/cenqueue" $nc -q utf --stdin >"$T/out" 2>"$T/err"
    check_eq "a line not UTF-8 ${nc:-checked}: exit 2" 2 "$?"
    check_contains "... names its line and the fix" \
        "cenqueue: stdin line 2: noop: argument 1, 'caf\\xe9', is not UTF-8 text, which JSON's strings must be (a reader in another language could not decode the record): send bytes as base64" \
        "$(<"$T/err")"
    check_contains "... the line before it in" "the 1 job before line 2 went in (ids printed)" \
        "$(<"$T/err")"
    check_eq "... as it is, and only it" 1 "$(rcli LLEN cq:queue:utf)"
    rcli DEL cq:queue:utf >/dev/null
    { echo noop; printf 'noop %01048576d\n' 0; } | "$BIN/cenqueue" $nc -q utf --stdin \
        >"$T/out" 2>"$T/err"
    check_eq "a line of 1 MiB ${nc:-checked}: exit 2" 2 "$?"
    check_contains "... names its line and the size" \
        "cenqueue: stdin line 2: noop: a job record of 1048" "$(<"$T/err")"
    check_contains "... and the fix" "pass large data by reference (a path or a URL)" \
        "$(<"$T/err")"
    check_eq "... the line before it in" 1 "$(rcli LLEN cq:queue:utf)"
    rcli DEL cq:queue:utf >/dev/null
    "$BIN/cenqueue" $nc -q utf noop $'caf\351' >"$T/out" 2>"$T/err"
    check_eq "a job not UTF-8 ${nc:-checked}: exit 2, nothing enqueued" "2 0" \
        "$? $(rcli LLEN cq:queue:utf)"
done

# Batches are read while the one before is enqueued (a second thread): a bad line three
# batches in still lets exactly the lines before it in.
rcli DEL cq:queue:many >/dev/null
{ yes noop | head -n 25000; echo 'sleep soon'; echo noop; } >"$T/jobs"
"$BIN/cenqueue" -q many --stdin <"$T/jobs" >"$T/out" 2>"$T/err"
check_eq "a bad line after 25,000: exit 2" 2 "$?"
check_eq "... the 25,000 ids printed" 25000 "$(wc -l <"$T/out")"
check_eq "... the 25,000 in the queue" 25000 "$(rcli LLEN cq:queue:many)"
check_contains "... and said so" "cenqueue: the 25000 jobs before line 25001 went in" "$(<"$T/err")"

echo "# cenqueue --stdin: Redis refusing a batch half way (maxmemory)"
# refused_half_way LINES ROOM: LINES jobs enqueued with Redis's maxmemory ROOM bytes above
# what it uses; sets RC and IN (how many went in).
refused_half_way() {
    rcli DEL cq:queue:many >/dev/null
    rcli CONFIG SET maxmemory \
        "$(($(rcli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p') + $2))" >/dev/null
    yes noop | head -n "$1" | "$BIN/cenqueue" -q many --stdin >"$T/out" 2>"$T/err"
    RC=$?
    rcli CONFIG SET maxmemory 0 >/dev/null
    IN=$(rcli LLEN cq:queue:many)
}
refused_half_way 60000 4000000
check_eq "refused half way: exit 1" 1 "$RC"
check "... some went in, not all ($IN)" test "$IN" -gt 0 -a "$IN" -lt 60000
check_eq "... exactly those ids printed" "$IN" "$(wc -l <"$T/out")"
check_eq "... whose status hashes exist" "$IN" "$(rcli EVAL "local n = 0 for _, r in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do if redis.call('EXISTS', 'cq:job:' .. cjson.decode(r).id) == 1 then n = n + 1 end end return n" 1 cq:queue:many)"
check_contains "... and the count is said" "($IN jobs were enqueued in all, their ids printed; the rest of the input was not)" "$(<"$T/err")"
check_contains "... with Redis's reason" "OOM" "$(<"$T/err")"
# The input in one batch (under 10,000 lines), read to its end before Redis refuses a part of
# it: what was not enqueued is still "the rest of the input".
refused_half_way 9000 1500000
check_eq "the last batch refused half way: exit 1" 1 "$RC"
check "... some of it went in, not all ($IN)" test "$IN" -gt 0 -a "$IN" -lt 9000
check_eq "... exactly those ids printed" "$IN" "$(wc -l <"$T/out")"
check_contains "... and the rest said not to be in" \
    "($IN jobs were enqueued in all, their ids printed; the rest of the input was not)" \
    "$(<"$T/err")"
rcli DEL cq:queue:many >/dev/null

echo "# cenqueue --stdin: every job in, then ?replicas=1 unconfirmed (no replica here)"
printf 'noop\n# a comment\nnoop\nnoop\n' |
    "$BIN/cenqueue" -u "$CQ_REDIS_URL?replicas=1" -q unconfirmed --stdin >"$T/out" 2>"$T/err"
check_eq "unconfirmed: exit 1" 1 "$?"
check_eq "... the 3 ids printed" 3 "$(wc -l <"$T/out")"
check_eq "... the 3 in the queue" 3 "$(rcli LLEN cq:queue:unconfirmed)"
check_contains "... and nothing said to be left of the input" \
    "cenqueue: enqueue: 0 of 1 replicas confirmed the write within 1000 ms: a failover now could lose it (every job of the input was enqueued, 3 in all, their ids printed)" \
    "$(<"$T/err")"
echo noop | "$BIN/cenqueue" -u "$CQ_REDIS_URL?replicas=1" -q unconfirmed --stdin --quiet \
    >"$T/out" 2>"$T/err"
check_eq "unconfirmed, --quiet: exit 1" 1 "$?"
check_eq "... nothing on stdout" "" "$(<"$T/out")"
check_contains "... and no ids said to be printed" \
    "(every job of the input was enqueued, 1 in all)" "$(<"$T/err")"
# Both at once: the enqueue's own failure is the one said, and the ids are not said to be
# printed (the stdout error took its place, and the ids were 'printed').
echo noop | "$BIN/cenqueue" -u "$CQ_REDIS_URL?replicas=1" -q unconfirmed --stdin \
    >/dev/full 2>"$T/err"
check_eq "unconfirmed, to a full disk: exit 1" 1 "$?"
check_contains "... the enqueue's error, the ids not said to be printed" \
    "cenqueue: enqueue: 0 of 1 replicas confirmed the write within 1000 ms: a failover now could lose it (every job of the input was enqueued, 1 in all, their ids not all printed)" \
    "$(<"$T/err")"
rcli DEL cq:queue:unconfirmed >/dev/null

echo "# cenqueue --stdin, stdin closed"
# Closed, fd 0 was the Redis connection's: cenqueue waited for Redis's replies as its jobs.
timeout 10 "$BIN/cenqueue" --stdin <&- >"$T/out" 2>"$T/err"
check_eq "stdin closed: exit 2, at once" 2 "$?"
check_contains "... and says so" \
    "cenqueue: --stdin: standard input is closed; give the jobs on it (cenqueue --stdin <FILE)" \
    "$(<"$T/err")"

# A read error is said once, of no line: it read 'stdin line 0: cannot read stdin: ...', then
# the same again with what went in.
"$BIN/cenqueue" --stdin <"$T" >"$T/out" 2>"$T/err"
check_eq "stdin a directory: exit 1" 1 "$?"
check_contains "... says why and what went in" \
    "cenqueue: cannot read stdin: Is a directory (0 jobs were enqueued in all" "$(<"$T/err")"
check_eq "... once" 1 "$(grep -c 'Is a directory' "$T/err")"

echo "# cenqueue --stdin from a stream (tail -f | cenqueue --stdin)"
# Each job goes in once no more input is at hand: they waited for a batch of 10,000 lines or
# the input's end, so a stream's jobs could wait for good.
llen_is() { [ "$(rcli LLEN "cq:queue:$1")" = "$2" ]; }
running() { kill -0 "$1" 2>/dev/null; }
mkfifo "$T/fifo"
# The input is this shell's fd 7, open until the checks are done: a slow machine cannot see
# the input end before them.
"$BIN/cenqueue" -q stream --stdin <"$T/fifo" >"$T/out" 2>"$T/err" &
SP=$!
exec 7>"$T/fifo"
echo noop >&7
check "a line, the input open: its job is in" wait_for 10 llen_is stream 1
# Its id too, through the pipe: stdio kept 4 KB of ids back, lost if a signal ended cenqueue.
check "... and its id on stdout" wait_for 10 grep -qE '^[0-9a-f-]{36}$' "$T/out"
check "... cenqueue still reading" running "$SP"
echo noop >&7
check "a second line: its job is in" wait_for 10 llen_is stream 2
check "... and its id" wait_for 10 bash -c "[ \$(grep -cE '^[0-9a-f-]{36}\$' '$T/out') = 2 ]"
exec 7>&-
wait "$SP"
check_eq "... at the input's end: exit 0" 0 "$?"
check_eq "... and both jobs are in" 2 "$(rcli LLEN cq:queue:stream)"
# Redis refusing the writes (maxmemory) ends cenqueue at once, not at the input's end: it
# was waiting for more lines, the failure unseen.
rcli CONFIG SET maxmemory 1 >/dev/null
(echo noop; exec sleep 30) >"$T/fifo" 2>/dev/null &
WP=$!
"$BIN/cenqueue" -q stream --stdin <"$T/fifo" >"$T/out" 2>"$T/err" &
SP=$!
check "Redis refusing, the input open: cenqueue ends within 15 s (the input 30)" wait_for 15 bash -c "! kill -0 $SP"
wait "$SP"
rc=$?
rcli CONFIG SET maxmemory 0 >/dev/null
kill "$WP" 2>/dev/null
wait "$WP" 2>/dev/null
check_eq "... exit 1" 1 "$rc"
check_contains "... with Redis's reason and what went in" \
    "(0 jobs were enqueued in all; the rest of the input was not)" \
    "$(<"$T/err")"
check_contains "... OOM" "OOM" "$(<"$T/err")"
rcli DEL cq:queue:stream >/dev/null

echo "# cenqueue interrupted (SIGINT) while jobs go in: every id of a job in printed, and where to go on"
# A signal killed it between a batch's LPUSH and its ids (and with --wait, which keeps the
# ids for the wait, every id of the jobs in was lost). The signal once its handler is set:
# bash starts a job in the background with SIGINT ignored (lib.sh, catching).
interrupt() {
    wait_for 10 catching "$1" 2
    kill -INT "$1"
    wait_for 20 exited "$1" || kill -KILL "$1"
    wait "$1"
}
for wait_opt in "" --wait; do
    what="a stream${wait_opt:+, $wait_opt}"
    exec 7<>"$T/fifo"
    "$BIN/cenqueue" -q stop $wait_opt --stdin <"$T/fifo" >"$T/out" 2>"$T/err" &
    SP=$!
    printf 'noop\nnoop\n' >&7
    wait_for 10 llen_is stop 2
    interrupt "$SP"
    check_eq "$what: exit 1" 1 "$?"
    exec 7>&-
    check_eq "... the ids of the two jobs in" "$(rcli LRANGE cq:queue:stop 0 -1 | grep -oE "$UUID" | sort)" \
        "$(sort "$T/out")"
    check_contains "... what went in and where to go on" \
        "cenqueue: interrupted: the 2 jobs before line 3 went in (ids printed); line 3 and the rest did not: enqueue from there (tail -n +3)" \
        "$(<"$T/err")"
    rcli DEL cq:queue:stop >/dev/null
done
# A large input interrupted half way: the batches sent finish, the one being read does not go in.
"$PY" -c 'import sys; sys.stdout.write("noop\n" * 3000000)' >"$T/big"
"$BIN/cenqueue" -q stop --stdin <"$T/big" >"$T/out" 2>"$T/err" &
SP=$!
llen_over() { [ "$(rcli LLEN "cq:queue:$1")" -gt "$2" ]; }
wait_for 20 llen_over stop 0
interrupt "$SP"
check_eq "3,000,000 lines, interrupted: exit 1" 1 "$?"
n=$(rcli LLEN cq:queue:stop)
check "... part of them in ($n)" [ "$n" -gt 0 -a "$n" -lt 3000000 ]
check_eq "... an id printed for each job in" "$n" "$(sort -u "$T/out" | wc -l)"
check_contains "... and the line to go on from" \
    "cenqueue: interrupted: the $n jobs before line $((n + 1)) went in (ids printed); line $((n + 1)) and the rest did not: enqueue from there (tail -n +$((n + 1)))" \
    "$(<"$T/err")"
# The jobs' status hashes too (hundreds of thousands), in one pipe.
sed 's/^/DEL cq:job:/' "$T/out" | rcli --pipe >/dev/null
rcli DEL cq:queue:stop >/dev/null
rm -f "$T/big"
# One job, Redis holding its enqueue (CLIENT PAUSE of writes, under cenqueue's 5 s for a
# reply): a signal waits for the job being sent, and says so; the job goes in, its id printed,
# exit 1. A second signal, of either kind, quits at once.
held() { rcli CLIENT LIST | grep -q ' flags=[a-zA-Z]*b'; }
hold_enqueue() {
    rcli CLIENT PAUSE 4000 WRITE >/dev/null
    "$BIN/cenqueue" -q stop --no-check noop >"$T/out" 2>"$T/err" &
    SP=$!
    wait_for 3 held
    wait_for 3 catching "$SP" 2
    kill -INT "$SP"
}
hold_enqueue
check "one job held, a SIGINT: cenqueue says it waits for the job being sent" \
    wait_for 3 grep -q "interrupt again to quit at once" "$T/err"
rcli CLIENT UNPAUSE >/dev/null
wait_for 10 exited "$SP" || kill -KILL "$SP"
wait "$SP"
check_eq "... exit 1 once it is in" 1 "$?"
check_eq "... its id printed" "$(rcli LRANGE cq:queue:stop 0 -1 | grep -oE "$UUID")" "$(<"$T/out")"
check_contains "... and said" "cenqueue: interrupted: the job was enqueued (its id printed)" \
    "$(<"$T/err")"
rcli DEL cq:queue:stop >/dev/null
hold_enqueue
wait_for 3 grep -q "interrupt again to quit at once" "$T/err"
check "... a second time, still running" running "$SP"
kill -TERM "$SP"
wait_for 3 exited "$SP" || kill -KILL "$SP"
wait "$SP"
check_eq "... SIGTERM after SIGINT ends it at once (killed by it: 143)" 143 "$?"
rcli CLIENT UNPAUSE >/dev/null
rcli DEL cq:queue:stop >/dev/null

echo "# a closed stdout or stderr is /dev/null, not the next descriptor opened (Redis's socket)"
# cworker 2>&- hung: its log lines went to Redis as commands.
rcli DEL cq:queue:closed >/dev/null
before=$(rcli HGET cq:stats processed)
"$BIN/cenqueue" --quiet -q closed noop >&- 2>&-
check_eq "cenqueue --quiet with stdout and stderr closed: exit 0" 0 "$?"
timeout 20 "$BIN/cworker" --burst closed >&- 2>&-
check_eq "cworker --burst with both closed: drains and exits 0" 0 "$?"
check_eq "...the job ran" "0 $((${before:-0} + 1))" \
    "$(rcli LLEN cq:queue:closed) $(rcli HGET cq:stats processed)"
# Without --quiet the ids, the caller's only handle on the jobs, would go to /dev/null.
"$BIN/cenqueue" -q closed noop >&- 2>"$T/err"
check_eq "cenqueue with stdout closed and no --quiet: a usage error (2)" 2 "$?"
check_contains "... saying why, and the fix" \
    "cenqueue: standard output is closed: the jobs' ids would be lost; redirect it" "$(<"$T/err")"
check_eq "... and nothing enqueued" 0 "$(rcli LLEN cq:queue:closed)"
check_contains "... as --help says under --quiet" "needed when stdout is closed" \
    "$(block cenqueue '      --quiet' | tr -s ' \n' '  ')"

echo "# ids that cannot be written (a full disk) fail the run, whose jobs are said to be in"
# It was an exit 0 with every id lost; --stdin went on enqueueing after the first batch's.
rcli DEL cq:queue:full >/dev/null
"$BIN/cenqueue" -q full noop >/dev/full 2>"$T/err"
check_eq "cenqueue to a full disk: exit 1" 1 "$?"
check_contains "... the cause, and that the job is in" \
    "cenqueue: writing the job ids to stdout: No space left on device (the job was enqueued: cqctl jobs full lists it)" \
    "$(<"$T/err")"
check_eq "... as it is" 1 "$(rcli LLEN cq:queue:full)"
# One due later is not in its queue: it said 'cqctl jobs full lists it' of it.
N0=$(rcli ZCARD cq:scheduled)
"$BIN/cenqueue" -q full --in 1h noop >/dev/full 2>"$T/err"
check_eq "cenqueue --in 1h to a full disk: exit 1, where the job is" \
    "1 cenqueue: writing the job ids to stdout: No space left on device (the job was enqueued: cqctl jobs scheduled lists it)" \
    "$? $(<"$T/err")"
check_eq "... as it is" $((N0 + 1)) "$(rcli ZCARD cq:scheduled)"
printf 'noop\nnoop\n' | "$BIN/cenqueue" -q full --stdin >/dev/full 2>"$T/err"
check_eq "cenqueue --stdin to a full disk: exit 1" 1 "$?"
check_contains "... the cause, and what went in" \
    "cenqueue: writing the job ids to stdout: No space left on device (every job of the input was enqueued, 2 in all, their ids not all printed)" \
    "$(<"$T/err")"
check_eq "... as they did" 3 "$(rcli LLEN cq:queue:full)"
# A stream: the first line's id cannot be written, and no line after it goes in. The second
# line comes once the first job is in the queue (LLEN 4), where a fixed second assumed
# cenqueue had read the first by then (under ASan on a loaded machine, its start alone can
# take that).
{ echo noop; wait_for 30 llen_is full 4; echo noop; } |
    "$BIN/cenqueue" -q full --stdin >/dev/full 2>"$T/err"
check_eq "cenqueue --stdin from a stream to a full disk: exit 1" 1 "$?"
check_contains "... stops at the first id lost" \
    "(1 job was enqueued in all, their ids not all printed; the rest of the input was not)" \
    "$(<"$T/err")"
check_eq "... nothing after it enqueued" 4 "$(rcli LLEN cq:queue:full)"
"$BIN/cenqueue" --list-functions >/dev/full 2>"$T/err"
check_eq "cenqueue --list-functions to a full disk: exit 1, saying so" \
    "1 cenqueue: writing the functions to stdout: No space left on device" "$? $(<"$T/err")"
"$BIN/cworker" --list-functions >/dev/full 2>"$T/err"
check_eq "cworker --list-functions to a full disk: exit 1, saying so" \
    "1 cworker: writing the functions to stdout: No space left on device" "$? $(<"$T/err")"
# --wait's lines go out as they come: where they could not, the end said only 'writing the
# jobs' outcomes to stdout failed', the reason lost, and said it of a reader that left too.
"$BIN/cenqueue" -q full --wait --wait-timeout 0.2 noop >/dev/full 2>"$T/err"
check_eq "cenqueue --wait to a full disk: exit 1" 1 "$?"
check_contains "... with the system's reason" \
    "cenqueue: writing the jobs' outcomes to stdout: No space left on device" "$(<"$T/err")"
{ "$BIN/cenqueue" -q full --wait --wait-timeout 0.3 noop 2>"$T/err"; } | true
check_eq "cenqueue --wait, a reader that left: no word of the write" "" \
    "$(grep -F 'writing the' "$T/err")"
rcli DEL cq:queue:full >/dev/null

echo "# a reader that left (EPIPE): nothing said of the write, exit 1 where the output is the result"
# The listings were exit 0 (cworker's killed by SIGPIPE, 141), as if delivered.
no_reader "$BIN/cenqueue" --list-functions 2>"$T/err"
check_eq "cenqueue --list-functions, its reader gone: exit 1, nothing said" "1 " \
    "$? $(<"$T/err")"
no_reader "$BIN/cworker" --list-functions 2>"$T/err"
check_eq "cworker --list-functions, its reader gone: exit 1, nothing said" "1 " \
    "$? $(<"$T/err")"
# The ids are the one output whose loss outlives the run: the line says that the job is in
# without its id, as for a full disk (cli.h's silence would hide it).
rcli DEL cq:queue:gone >/dev/null
no_reader "$BIN/cenqueue" -q gone noop 2>"$T/err"
check_eq "cenqueue, its reader gone: exit 1, the job said to be in" \
    "1 cenqueue: writing the job ids to stdout: Broken pipe (the job was enqueued: cqctl jobs gone lists it)" \
    "$? $(grep -v 'warning:' "$T/err")"
printf 'noop\nnoop\n' | no_reader "$BIN/cenqueue" -q gone --stdin 2>"$T/err"
check_eq "cenqueue --stdin, its reader gone: exit 1, what went in said" \
    "1 cenqueue: writing the job ids to stdout: Broken pipe (every job of the input was enqueued, 2 in all, their ids not all printed)" \
    "$? $(grep -v 'warning:' "$T/err")"
check_eq "... as they are" 3 "$(rcli LLEN cq:queue:gone)"
rcli DEL cq:queue:gone >/dev/null
# --wait whose jobs all finished was exit 0 with their outcomes lost.
no_reader "$BIN/cenqueue" -q gone --wait --wait-timeout 20 noop 2>"$T/err" &
EP=$!
check "... its job in" wait_for 10 llen_is gone 1
timeout 20 "$BIN/cworker" --burst gone >/dev/null 2>&1
wait "$EP"
check_eq "cenqueue --wait, its reader gone, the job finished: exit 1, nothing said" \
    "1 " "$? $(grep -v 'warning:' "$T/err")"

finish
