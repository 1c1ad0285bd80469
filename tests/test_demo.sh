#!/usr/bin/env bash
# test_demo.sh BUILD_DIR - scripts/demo as a new user meets it: the first run builds cq into
# a fresh, empty build directory (CQ_BUILD_DIR, removed at the end) and must say what it
# does all along, never silent for more than 5 s (every line and every \r-redrawn fragment of
# its output is timestamped by a small Python driver); the images land in ./images of the
# directory it is run from, named by absolute path at the end, and hold the fixture's bytes;
# nothing of the demo keeps running. Then --dir elsewhere (reusing that build), into a
# directory that already holds a file, and the usage errors. BUILD_DIR itself is not used:
# the demo builds its own tree.
. "$(dirname "$0")/lib.sh"

DEMO=$SRC/scripts/demo
NB=$T/build        # the demo's fresh build directory, removed with $T by lib.sh's trap
mkdir -p "$NB" "$T/tmp" "$T/run1" "$T/run2" "$T/run3"

# stamp.py OUT -- CMD...: run CMD with stdout+stderr on one pipe, write each line or
# \r-terminated fragment to OUT as "SECONDS TEXT", and print "GAP_MS HELD AFTER": the longest
# silence from the start to the end of the output (in ms), whether the pipe stayed open over
# 3 s after CMD exited (a process of CMD still holding it), and the fragment before the
# silence. Exits with CMD's status.
cat >"$T/stamp.py" <<'PY'
import os, select, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[3:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
fd = p.stdout.fileno()
frags, buf = [], b""
last, gap, after, exited, held = t0, 0.0, "(the start)", None, False
while True:
    ready = select.select([fd], [], [], 0.1)[0]
    now = time.monotonic()
    if ready:
        data = os.read(fd, 65536)
        if not data:
            break
        buf += data
        while True:
            ends = [i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0]
            if not ends:
                break
            frag, buf = buf[:min(ends)], buf[min(ends) + 1:]
            text = frag.decode("utf-8", "replace").replace("\x1b[K", "")
            if not text:
                continue
            if now - last > gap:
                gap, after = now - last, frags[-1][1] if frags else "(the start)"
            frags.append((now - t0, text))
            last = now
    if exited is None and p.poll() is not None:
        exited = now
    if exited is not None and now - exited > 3:
        held = True
        break
end = exited if exited is not None else time.monotonic()
if buf:
    frags.append((end - t0, buf.decode("utf-8", "replace")))
if end - last > gap:
    gap, after = end - last, (frags[-1][1] if frags else "(the start)") + " (to the end)"
with open(out, "w") as f:
    for t, text in frags:
        f.write("%7.3f %s\n" % (t, text))
print(int(gap * 1000), int(held), after)
sys.exit(p.wait())
PY

# demo NAME DIR ARGS...: scripts/demo ARGS from DIR with CQ_BUILD_DIR=$NB and TMPDIR=$T/tmp;
# sets RC, GAP (ms), HELD, AFTER, OUT (its output, a fragment a line, no timestamps) and
# RPORT (its redis-server's port, from its output).
demo() {
    local name=$1 dir=$2 summary
    shift 2
    summary=$(cd "$dir" && CQ_BUILD_DIR=$NB TMPDIR=$T/tmp \
                  "$PY" "$T/stamp.py" "$T/$name.out" -- "$DEMO" "$@")
    RC=$?
    read -r GAP HELD AFTER <<<"$summary"
    OUT=$(cut -c9- "$T/$name.out")
    RPORT=$(sed -n 's/^demo: redis-server on 127\.0\.0\.1:\([0-9]*\);.*/\1/p' <<<"$OUT")
    echo "     ($name: $(tail -1 "$T/$name.out" | cut -c1-7) s, longest silence $GAP ms)"
}

# landed_line: "N M PATH" from the demo's "demo: N of M images landed in PATH", which must be
# among its last three lines.
landed_line() {
    tail -3 <<<"$OUT" | sed -n 's/^demo: \([0-9]*\) of \([0-9]*\) images landed in \(.*\)$/\1 \2 \3/p'
}
jpgs() { find "$1" -maxdepth 1 -type f -name '*.jpg' | sort; }
nothing_left() {
    ! pgrep -f -- "$T/" >/dev/null &&
        ! pgrep -f -- "redis-server 127.0.0.1:$RPORT\$" >/dev/null &&
        ! redis-cli -p "$RPORT" ping >/dev/null 2>&1
}
lacks() { ! grep -q -- "$1" "$2"; }
tmp_empty() { [ -z "$(ls -A "$T/tmp")" ]; }
no_silence() { [ "$GAP" -le 5000 ]; }

# check_run NAME DIR EXTRA: the checks every successful run gets; DIR is where the images
# must be, EXTRA how many .jpg files were there before.
check_run() {
    local name=$1 dir=$2 extra=$3 n m path files
    check_eq "$name: exit 0" 0 "$RC" || tail -25 "$T/$name.out"
    check "$name: never silent over 5 s (longest $GAP ms, after: $AFTER)" no_silence \
        || cat "$T/$name.out"
    check_eq "$name: the output ends when the demo does" 0 "$HELD"
    check "$name: a live progress line while the workers download" \
        grep -qE '^demo: [0-9]+/[0-9]+ images downloaded, ' <<<"$OUT"
    check "$name: says beforehand that cproducer's warning is expected" \
        grep -q 'cproducer will warn that no worker is live' <<<"$OUT"
    check "$name: a Took line" grep -qE '^Took [0-9]+\.[0-9]{2}s$' <<<"$OUT"
    read -r n m path <<<"$(landed_line)"
    check_eq "$name: the last lines name the images directory by absolute path" "$dir" "$path"
    check "$name: every image landed (${n:-?} of ${m:-?})" test -n "$n" -a "${m:-0}" -gt 0 -a "$n" = "$m"
    files=$(jpgs "$dir")
    check_eq "$name: the directory holds the reported number of .jpg files" \
        $(( ${n:-0} + extra )) "$(grep -c . <<<"$files")"
    # shellcheck disable=SC2046   # the fixture's names have no blanks
    check_eq "$name: they hold the image server's bytes" "${n:-0}" \
        "$(count_generated 32768 $(grep -v /old.jpg <<<"$files"))"
    check "$name: names its redis-server's port" test -n "$RPORT"
    check "$name: no redis-server, fixture or worker of the demo is left" nothing_left
    check "$name: its temporary files are removed" tmp_empty
}

echo "# first run: a fresh build, from an empty directory"
demo run1 "$T/run1"
check_contains "run1: says it builds everything" "first run compiles everything" "$OUT"
check "run1: cmake's progress condensed to 'demo: building N%' lines" \
    grep -qE '^demo: building [0-9]+%$' <<<"$OUT"
check "run1: no raw cmake lines" lacks "Building C object" "$T/run1.out"
check "run1: says it starts Redis" grep -q '^demo: starting .*redis-server' <<<"$OUT"
check "run1: says it starts the fixtures" grep -q '^demo: .*starting the gallery fixtures' <<<"$OUT"
check_run run1 "$(cd "$T/run1" && pwd -P)/images" 0
check_eq "run1: only the images are left in the working directory" images "$(ls -A "$T/run1")"
check "run1: the build is in CQ_BUILD_DIR" test -x "$NB/bin/cworker"

echo "# --dir elsewhere, holding a file already; the build is reused"
mkdir -p "$T/run2/out/pics"
echo "an old picture" >"$T/run2/out/pics/old.jpg"
demo run2 "$T/run2" --dir out/pics
check_contains "run2: reuses the build" "up to date" "$OUT"
check_contains "run2: says the directory holds a file already" "already holds 1 file:" "$OUT"
check_run run2 "$(cd "$T/run2" && pwd -P)/out/pics" 1
check_eq "run2: the old file stays" "an old picture" "$(cat "$T/run2/out/pics/old.jpg")"
check_eq "run2: no ./images" out "$(ls -A "$T/run2")"

echo "# usage"
(cd "$T/run3" && "$DEMO" --help >"$T/help" 2>&1)
check_eq "--help exits 0" 0 $?
for w in "--dir DIR" "./images" CQ_BUILD_DIR TMPDIR scripts/deps "Exit status"; do
    check "--help mentions $w" grep -qF -- "$w" "$T/help"
done
for bad in --bogus "--dir" "extra"; do
    # shellcheck disable=SC2086
    (cd "$T/run3" && "$DEMO" $bad >"$T/uout" 2>"$T/uerr")
    check_eq "$bad: exits 2" 2 $?
    check_eq "$bad: two lines on stderr" 2 "$(wc -l <"$T/uerr")"
    check_eq "$bad: the Try line" "Try 'scripts/demo --help' for more information." \
        "$(tail -1 "$T/uerr")"
    check_eq "$bad: nothing on stdout" "" "$(cat "$T/uout")"
done
check_contains "--bogus: names the option" "--bogus" "$(cd "$T/run3" && "$DEMO" --bogus 2>&1)"
check_eq "usage errors create nothing" "" "$(ls -A "$T/run3")"

finish
