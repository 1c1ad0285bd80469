#!/usr/bin/env bash
# test_commands.sh - functions served by programs (cworker --command, --command-file): argv
# passed verbatim and never through a shell, a clean environment, exit codes mapped to
# finished / retried / failed, job timeouts and worker shutdown ending the command's whole
# process group, start-up errors, and typed arguments checked by cenqueue.
. "$(dirname "$0")/lib.sh"

ROOT=$T/root
exec 3>&2   # diagnostics that get past check's redirections
mkdir -p "$T/bin" "$T/run"

# ---- the programs the functions run (small scripts, written here) ----
# ok.sh: its args, each in brackets, and what it sees of its world; its environment exactly as
# the worker passed it to execve (/proc/$$/environ, not the shell's own additions).
cat >"$T/bin/ok.sh" <<EOF
#!/bin/bash
printf '[%s]' "\$@"
printf ' id=%s attempt=%s func=%s queue=%s\n' "\$CQ_JOB_ID" "\$CQ_JOB_ATTEMPT" "\$CQ_JOB_FUNC" "\$CQ_JOB_QUEUE"
tr '\0' '\n' </proc/\$\$/environ | sort >"$T/run/env.\$CQ_JOB_ID"
pwd -P >"$T/run/cwd.\$CQ_JOB_ID"
readlink /proc/self/fd/0 >"$T/run/stdin.\$CQ_JOB_ID"
EOF
# flaky.sh: a transient failure (75) on the first attempt, then success.
cat >"$T/bin/flaky.sh" <<'EOF'
#!/bin/bash
if [ "$CQ_JOB_ATTEMPT" = 1 ]; then echo "busy, try later" >&2; exit 75; fi
echo "done on attempt $CQ_JOB_ATTEMPT"
EOF
# busy.sh: always transient.
cat >"$T/bin/busy.sh" <<'EOF'
#!/bin/bash
echo "still busy" >&2
exit 75
EOF
# bad.sh: a permanent failure; the error is the last line of stderr.
cat >"$T/bin/bad.sh" <<'EOF'
#!/bin/bash
echo "partial output"
echo "reading the input" >&2
echo "bad input" >&2
exit 3
EOF
# daemon.sh: leaves a background process (not holding the pipes) and exits 0 at once.
cat >"$T/bin/daemon.sh" <<EOF
#!/bin/bash
sleep 300 </dev/null >/dev/null 2>&1 &
echo \$! >"$T/run/daemon.\$CQ_JOB_ID"
echo started
EOF
# hang.sh: a background and a foreground sleep 300; records "PGID LEADER BGCHILD" (written
# whole, then renamed) so that the test can look for survivors. With "ignore" as its first
# argument the background child ignores SIGTERM, so only the SIGKILL after the grace ends it.
cat >"$T/bin/hang.sh" <<EOF
#!/bin/bash
if [ "\${1:-}" = ignore ]; then (trap '' TERM; sleep 300; :) & else sleep 300 & fi
bg=\$!
echo "\$(ps -o pgid= -p \$\$ | tr -d ' ') \$\$ \$bg" >"$T/run/hang.\$CQ_JOB_ID.tmp"
mv "$T/run/hang.\$CQ_JOB_ID.tmp" "$T/run/hang.\$CQ_JOB_ID"
sleep 300
EOF
cat >"$T/bin/add.sh" <<'EOF'
#!/bin/bash
echo $(( $1 + $2 ))
EOF
printf '#!/bin/sh\necho ran\n' >"$T/bin/noexec.sh"
chmod +x "$T"/bin/*.sh

# survivors PGID LEADER BGCHILD: the processes of a command's group still alive. Zombies do
# not count: the group's orphans are reparented to PID 1, which may be slow to reap them
# (here it is not a real init).
survivors() {
    ps -e -o pid=,pgid=,stat= | awk -v g="$1" -v a="$2" -v b="$3" \
        '($2 == g || $1 == a || $1 == b) && $3 !~ /^Z/ { print $1 }'
}
no_survivors() { [ -z "$(survivors "$@")" ]; }
# gone JOBID SECONDS: wait until nothing of the group hang.sh recorded for JOBID is left.
gone() {
    local f="$T/run/hang.$1"
    [ -s "$f" ] || return 1
    set -- $(cat "$f") "$2"
    wait_for "$4" no_survivors "$1" "$2" "$3" && return 0
    echo "     survivors of group $1 (leader $2, child $3):" >&3
    ps -o pid,ppid,pgid,stat,etime,cmd -p "$(survivors $1 $2 $3 | paste -sd, -)" >&3
    return 1
}

start_redis

# ---- start-up errors: one line on stderr, exit 1, no job taken ----
"$BIN/cenqueue" -q probe --id probe-1 noop >/dev/null 2>&1
probe_worker() { timeout 10 "$BIN/cworker" --download-root "$ROOT" "$@" probe >"$T/bad.out" 2>"$T/bad.err"; }
probe_exit() {  # probe_exit NAME RC CWORKER-ARGS...: probe_worker, which must exit RC
    local name=$1 want=$2
    shift 2
    probe_worker "$@"
    check_eq "$name: exit $want" "$want" "$?"
}
bad_start() {  # bad_start NAME NEEDLE CWORKER-ARGS...
    local name=$1 needle=$2
    shift 2
    probe_exit "$name" 1 "$@"
    check_eq "$name: one line on stderr" 1 "$(wc -l <"$T/bad.err")"
    check_contains "$name: the message says why" "$needle" "$(cat "$T/bad.err")"
}
bad_start "missing program" "/nonexistent/prog: No such file or directory" --command x=/nonexistent/prog
# A --command wrong as written is a usage error: exit 2, the line and the pointer to --help.
bad_usage() {  # bad_usage NAME LINE CWORKER-ARGS...
    local name=$1 line=$2
    shift 2
    probe_exit "$name" 2 "$@"
    check_eq "$name: the line and the Try line" \
        "$line"$'\n'"Try 'cworker --help' for more information." "$(cat "$T/bad.err")"
}
bad_usage "no '='" "cworker: --command 'noequals': give NAME=PROGRAM or NAME:ARGS=PROGRAM" \
    --command noequals
bad_usage "no program" "cworker: --command 'x=': no program after '='" --command x=
bad_usage "no name" "cworker: --command '=/bin/true': the function name must have 1-64 characters" \
    --command =/bin/true
bad_usage "relative program path" \
    "cworker: --command 'x=bin/true': command bin/true: a relative path; give an absolute path or a bare name to look up in PATH" \
    --command x=bin/true
bad_usage "bad argument type" \
    "cworker: --command 'x:A:float=/bin/true': function x: arguments \"A:float\": argument A: unknown type 'float' (string, integer, number, duration, json or any)" \
    --command 'x:A:float=/bin/true'
bad_usage "a bad function name" \
    "cworker: --command 'a b=/bin/true': function name 'a b': use 1-64 characters of A-Z a-z 0-9 _ . -" \
    --command 'a b=/bin/true'
# ...and so is one whose name another function has, though that is known only as it is added.
bad_usage "a built-in name" \
    "cworker: --command 'noop=/bin/true': function noop: already registered (by builtin)" \
    --command noop=/bin/true
bad_usage "cworker's own built-in's name" \
    "cworker: --command 'download_link=/bin/true': function download_link: already registered (by builtin)" \
    --command download_link=/bin/true
bad_usage "the same name twice" \
    "cworker: --command 'dup=/bin/echo': function dup: already registered (by command /bin/true)" \
    --command dup=/bin/true --command dup=/bin/echo
bad_usage "a taken name whose program is missing too: the name first" \
    "cworker: --command 'noop=/nonexistent/prog': function noop: already registered (by builtin)" \
    --command noop=/nonexistent/prog
printf '# commands\nfine=/bin/true\n\nbroken=/nonexistent/prog\n' >"$T/bad.cmds"
bad_start "--command-file with a missing program" \
    "cworker: --command-file $T/bad.cmds line 4: 'broken=/nonexistent/prog': command /nonexistent/prog" \
    --command-file "$T/bad.cmds"
# A line of the file wrong as written, or whose name is taken, is a usage error as the same
# --command is: the file, the line's number, the cause, and the pointer to --help.
printf 'fine=/bin/true\n# comment\nnoequals\n' >"$T/bad.cmds"
bad_usage "--command-file, a line wrong as written" \
    "cworker: --command-file $T/bad.cmds line 3: 'noequals': give NAME=PROGRAM or NAME:ARGS=PROGRAM" \
    --command-file "$T/bad.cmds"
printf 'fine=/bin/true\nnoop=/nonexistent/prog\n' >"$T/bad.cmds"
bad_usage "--command-file, a built-in's name (its program missing too: the name first)" \
    "cworker: --command-file $T/bad.cmds line 2: 'noop=/nonexistent/prog': function noop: already registered (by builtin)" \
    --command-file "$T/bad.cmds"
printf '\ndup=/bin/echo\n' >"$T/bad.cmds"
bad_usage "--command-file, an earlier --command's name" \
    "cworker: --command-file $T/bad.cmds line 2: 'dup=/bin/echo': function dup: already registered (by command /bin/true)" \
    --command-file "$T/bad.cmds" --command dup=/bin/true
printf 'dup=/bin/true\ndup=/bin/echo\n' >"$T/bad.cmds"
bad_usage "--command-file, an earlier line's name" \
    "cworker: --command-file $T/bad.cmds line 2: 'dup=/bin/echo': function dup: already registered (by command /bin/true)" \
    --command-file "$T/bad.cmds"
# A NUL byte ended the line there: 'a=/bin/true<NUL>junk' served a as /bin/true, the rest
# dropped without a word.
printf 'fine=/bin/true\nnul=/bin/true\0junk\n' >"$T/bad.cmds"
bad_usage "--command-file, a NUL byte in a line" \
    "cworker: --command-file $T/bad.cmds line 2: a NUL byte at column 14 (a spec holds none)" \
    --command-file "$T/bad.cmds"
# ...and so does a line of blanks up to one: it read as a blank line.
printf '# fine\n \t\0nul=/bin/true\n' >"$T/bad.cmds"
bad_usage "--command-file, a NUL byte after blanks" \
    "cworker: --command-file $T/bad.cmds line 2: a NUL byte at column 3 (a spec holds none)" \
    --command-file "$T/bad.cmds"
# A spec is quoted escaped and cut: a newline in it made the error two lines, and a long one
# cut off the cause (the line ended inside the spec's 5,000 bytes).
bad_start "a program's name with a newline: one line" \
    "cworker: --command 'nl=/bin/x\\ny': command /bin/x\\ny: No such file or directory" \
    --command $'nl=/bin/x\ny'
long=/bin/$(printf '%05000d' 0)
bad_start "a program's name of 5,000 bytes: the cause said" \
    "...': command /bin/$(printf '%059d' 0)...: File name too long" \
    --command "long=$long"
bad_start "missing --command-file" "$T/missing.cmds: No such file or directory" \
    --command-file "$T/missing.cmds"
# A directory opens, and getline's read error read as the file's end: no commands, no word.
bad_start "a directory as --command-file" "cworker: --command-file $T: Is a directory" \
    --command-file "$T"
check_eq "no failed start took the probe job" 1 "$(rcli LLEN cq:queue:probe)"
check_eq "...which is still queued" queued "$(jfield probe-1)"
check_eq "...and no worker stayed registered" 0 "$(rcli SCARD cq:workers)"

# ---- --command-file: comments, blank lines, indentation; --list-functions needs no Redis ----
# A NUL byte in a comment is ignored as the rest of it is (it refused the whole file).
printf '# the functions of this host\n\n  echo1=/bin/echo\n\t# indented comment\n# a NUL\0=/bin/x\nsum:A:integer B:integer=%s\n' \
    "$T/bin/add.sh" >"$T/good.cmds"
list=$(CQ_REDIS_URL=redis://127.0.0.1:1 "$BIN/cworker" --command-file "$T/good.cmds" --list-functions 2>"$T/list.err")
check_eq "--list-functions with a command file: exit 0" 0 "$?"
check_eq "...and nothing on stderr" "" "$(cat "$T/list.err")"
lists() { grep -q "$1" <<<"$list"; }
check "...lists the first spec" lists '^echo1 .*/bin/echo'
check "...and the second, with its arguments and their types" lists '^sum A:integer B:integer .*add.sh'
check "...and still the built-ins" lists '^noop '

# ---- a worker serving commands ----
export SECRET_TOKEN=hunter2
"$BIN/cworker" -c 4 --retry-base 100ms --shutdown-timeout 1s --download-root "$ROOT" \
    --command "ok=$T/bin/ok.sh" --command "flaky=$T/bin/flaky.sh" \
    --command "busy=$T/bin/busy.sh" --command "bad=$T/bin/bad.sh" \
    --command "daemon=$T/bin/daemon.sh" --command "hang=$T/bin/hang.sh" \
    --command "add:A:integer B:integer=$T/bin/add.sh" --command "noexec=$T/bin/noexec.sh" \
    >"$T/w.log" 2>&1 &
WPID=$!
PIDS+=("$WPID")
wait_for 10 workers_are 1 || { echo "FATAL: worker did not register"; cat "$T/w.log"; exit 1; }
unset SECRET_TOKEN
# noexec.sh could run when the worker started, and no more: exec fails for its jobs.
chmod -x "$T/bin/noexec.sh"
noexec=$("$BIN/cenqueue" --retries 1 noexec)

ok=$("$BIN/cenqueue" ok 'two words' "it's" 'say "hi"' '$(touch '"$T"'/pwned)' \
    "\`touch $T/pwned\`" 'x; touch '"$T"'/pwned' '*' '')
flaky=$("$BIN/cenqueue" flaky)
busy=$("$BIN/cenqueue" --retries 1 busy)
bad=$("$BIN/cenqueue" bad)
daemon=$("$BIN/cenqueue" daemon)
# (2 s: hang.sh has written its record by then, on loaded cores too)
tmo=$("$BIN/cenqueue" --timeout 2s --retries 0 hang)
tmo_ign=$("$BIN/cenqueue" --timeout 2s --retries 0 hang ignore)
"$BIN/cenqueue" add 1 x >"$T/add.out" 2>"$T/add.err"
add_rc=$?
add=$("$BIN/cenqueue" add 2 3)

final() { local s; s=$(jfield "$1"); [ "$s" = finished ] || [ "$s" = failed ]; }
all_final() { local id; for id in "$@"; do final "$id" || return 1; done; }
wait_for 20 all_final "$ok" "$flaky" "$busy" "$bad" "$daemon" "$add" "$tmo" "$noexec" \
    || echo "     (some jobs did not end in time)"

# args verbatim, clean environment, cwd = the download root
check_eq "ok: finished" finished "$(jfield "$ok")"
check_eq "ok: args arrive verbatim, stdout is the result" \
    "[two words][it's][say \"hi\"][\$(touch $T/pwned)][\`touch $T/pwned\`][x; touch $T/pwned][*][] id=$ok attempt=1 func=ok queue=default" \
    "$(jfield "$ok" result)"
check "ok: no shell ran the args" [ ! -e "$T/pwned" ]
check_eq "ok: the environment is PATH and the CQ_JOB_ variables only" \
    "CQ_JOB_ATTEMPT=1 CQ_JOB_FUNC=ok CQ_JOB_ID=$ok CQ_JOB_QUEUE=default PATH=/usr/local/bin:/usr/bin:/bin" \
    "$(tr '\n' ' ' <"$T/run/env.$ok" | sed 's/ $//')"
lacks() { ! grep -q "$2" "$1"; }   # lacks FILE PATTERN
check "ok: the worker's own environment (SECRET_TOKEN) did not leak" lacks "$T/run/env.$ok" SECRET_TOKEN
check_eq "ok: cwd is the download root" "$(cd "$ROOT" && pwd -P)" "$(cat "$T/run/cwd.$ok" 2>/dev/null)"
check_eq "ok: stdin is /dev/null (docs/EXTENDING.md)" /dev/null "$(cat "$T/run/stdin.$ok" 2>/dev/null)"

# permanent failure
check_eq "bad: failed" failed "$(jfield "$bad")"
check_contains "bad: the error is the last line of stderr" "bad input" "$(jfield "$bad" error)"
check_contains "bad: ...and gives the exit status" "status 3" "$(jfield "$bad" error)"
check_eq "bad: not retried (1 attempt)" 1 "$(jfield "$bad" attempts)"
check "bad: in the failed set" [ -n "$(rcli ZSCORE cq:failed "$bad")" ]

# transient failures
check_eq "flaky: 75 then 0 ends finished" finished "$(jfield "$flaky")"
check_eq "flaky: ...on attempt 2" 2 "$(jfield "$flaky" attempts)"
check_eq "flaky: ...with the second attempt's stdout" "done on attempt 2" "$(jfield "$flaky" result)"
logged_retry() { [[ $(grep -F "$1" "$T/w.log") == *'will retry'* ]]; }
check "flaky: the worker logged the retry" logged_retry "$flaky"
check_eq "busy: always 75 with --retries 1 ends failed" failed "$(jfield "$busy")"
check_eq "busy: ...after 2 attempts" 2 "$(jfield "$busy" attempts)"
check_contains "busy: ...with status 75 and stderr in the error" "status 75: still busy" "$(jfield "$busy" error)"

# a command that exits 0 leaving a background process behind: that process is ended too
check_eq "daemon: finished" finished "$(jfield "$daemon")"
dpid=$(cat "$T/run/daemon.$daemon" 2>/dev/null)
ended_soon() { [ -n "$1" ] && wait_for 3 exited "$1"; }
check "daemon: its background process did not outlive the job" ended_soon "$dpid"

# a program that can no longer be run: transient (another host may run it), then failed
check_eq "noexec: failed" failed "$(jfield "$noexec")"
check_eq "noexec: ...after its retry" 2 "$(jfield "$noexec" attempts)"
check_eq "noexec: ...saying why" "noexec: command $T/bin/noexec.sh: Permission denied" \
    "$(jfield "$noexec" error)"

# typed arguments
check_eq "add 1 x: refused by cenqueue (exit 2)" 2 "$add_rc"
check_contains "add 1 x: the message names argument 2" "argument 2" "$(cat "$T/add.err")"
check_contains "add 1 x: ...and its type" "integer" "$(cat "$T/add.err")"
check_eq "add 1 x: no job id printed" "" "$(cat "$T/add.out")"
check_eq "add 2 3: finished" finished "$(jfield "$add")"
check_eq "add 2 3: result 5" 5 "$(jfield "$add" result)"

# timeouts: TERM to the whole group, KILL after the 5 s grace
check_eq "timeout: failed" failed "$(jfield "$tmo")"
check_contains "timeout: the error says it timed out" "timed out" "$(jfield "$tmo" error)"
check "timeout: no process of its group survives" gone "$tmo" 7
wait_for 10 final "$tmo_ign"
check_eq "timeout, child ignoring TERM: failed" failed "$(jfield "$tmo_ign")"
check_contains "timeout, child ignoring TERM: timed out" "timed out" "$(jfield "$tmo_ign" error)"
check "timeout, child ignoring TERM: killed after the grace, nothing survives" gone "$tmo_ign" 3

# shutdown while commands run: their groups are ended, the jobs go back to their queue
long=$("$BIN/cenqueue" hang)
long_ign=$("$BIN/cenqueue" hang ignore)
hangs_started() { local id; for id in "$@"; do [ -s "$T/run/hang.$id" ] || return 1; done; }
wait_for 10 hangs_started "$long" "$long_ign" || echo "     (the long commands did not start)"
t0=$(date +%s%N)
kill -TERM "$WPID"
wait_for 12 exited "$WPID"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
if kill -0 "$WPID" 2>/dev/null; then
    check "shutdown: the worker exits within 12 s" false
    kill -KILL "$WPID"
fi
wait "$WPID"; rc=$?
echo "     shutdown took $took ms"
check_eq "shutdown: worker exit status 0" 0 "$rc"
check "shutdown: the worker exited within 10 s ($took ms)" [ "$took" -lt 10000 ]
check_eq "shutdown: both jobs are back in the queue" 2 "$(rcli LLEN cq:queue:default)"
queued_in_default() { [[ $(rcli LRANGE cq:queue:default 0 -1) == *"$1"* ]]; }
check "shutdown: ...the plain one" queued_in_default "$long"
check "shutdown: ...the one whose child ignores TERM" queued_in_default "$long_ign"
check_eq "shutdown: status queued again" queued "$(jfield "$long")"
check "shutdown: no process of the plain command survives" gone "$long" 1
check "shutdown: no process of the TERM-ignoring command survives" gone "$long_ign" 1
check_eq "shutdown: deregistered" 0 "$(rcli SCARD cq:workers)"

[ "$FAILS" -eq 0 ] || { echo "---- worker log"; cat "$T/w.log"; }
finish
