#!/usr/bin/env bash
# test_install.sh - `cmake --install` into a private prefix: every file it should put there
# and nothing else (the programs, libcq, the header, cq.pc, the CMake package, a man page for
# each program, the systemd unit cworker@.service and its environment file); the man pages
# render without a warning and name every option of their program's --help (so they cannot
# drift from it); the unit and the environment file carry the prefix's paths and what running
# a worker under systemd takes. Then, as a user would: build the example client against the
# installed libcq through pkg-config (shared, and static from libcq.a) and through CMake's
# find_package(cq), and against the build tree (cq-uninstalled.pc), build the example plugin
# with pkg-config and CMake, run the installed cworker with it, and let the clients enqueue
# jobs, wait for them and print their results; and a worker embedded in a program of its own,
# whose log lines carry that program's name. Needs groff and man-db (man, lexgrog).
. "$(dirname "$0")/lib.sh"

for tool in groff man lexgrog; do
    command -v "$tool" >/dev/null ||
        { echo "FATAL: $tool is missing (Debian: groff-base, man-db)"; exit 1; }
done

P=$T/prefix
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 ||
    { echo "FATAL: cmake --install failed"; cat "$T/install.log"; exit 1; }
# The directories GNUInstallDirs gave this build, relative to the prefix.
cached() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
LIB=$(cached CMAKE_INSTALL_LIBDIR)
MAN=$(cached CMAKE_INSTALL_MANDIR)   # empty in the cache unless set: DATAROOTDIR/man
if [ -z "$MAN" ]; then
    MAN=$(cached CMAKE_INSTALL_DATAROOTDIR)
    MAN=${MAN:-share}/man
fi
LIBDIR=$P/$LIB
VERSION=$(sed -n 's/^project(cq VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
API=$(sed -n 's/^#define CQ_API_VERSION  *\([0-9]*\).*/\1/p' "$SRC/include/cq/cq.h")
PROGRAMS=(cworker cenqueue cproducer cqctl)
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig

# ---- what is installed: exactly these ----
expected=(bin/cworker bin/cenqueue bin/cproducer bin/cqctl
          "$LIB/libcq.so" "$LIB/libcq.so.$API" "$LIB/libcq.so.$VERSION" "$LIB/libcq.a"
          include/cq/cq.h "$LIB/pkgconfig/cq.pc" "$LIB/cq/cq-redis.so"
          "$LIB/cmake/cq/cqConfig.cmake" "$LIB/cmake/cq/cqConfigVersion.cmake"
          "$LIB/cmake/cq/cqTargets.cmake" "$LIB/cmake/cq/cqTargets-BUILDTYPE.cmake"
          "$MAN/man1/cworker.1.gz" "$MAN/man1/cenqueue.1.gz" "$MAN/man1/cproducer.1.gz"
          "$MAN/man1/cqctl.1.gz"
          "lib/systemd/system/cworker@.service" etc/cq/cworker.env)
# (cqTargets-BUILDTYPE.cmake: the build type's file of the CMake package, e.g. -relwithdebinfo)
installed=$(cd "$P" && find . -type f -o -type l | sed 's#^\./##' |
    sed 's/cqTargets-[a-z]*\.cmake$/cqTargets-BUILDTYPE.cmake/' | sort)
check_eq "cmake --install puts these files in place, and no other" \
    "$(printf '%s\n' "${expected[@]}" | sort)" "$installed"
executables() { local f; for f in "$@"; do [ -x "$f" ] || return 1; done; }
check "the four programs are executable" executables "${PROGRAMS[@]/#/$P/bin/}"
check_eq "libcq.so is the link for the linker, to the SONAME's" "libcq.so.$API" "$(readlink "$LIBDIR/libcq.so")"
check_eq "pkg-config knows cq" "$VERSION" "$(pkg-config --modversion cq)"
check "the installed cworker finds its library (RPATH)" env -u LD_LIBRARY_PATH "$P/bin/cworker" --version

# ---- the man pages ----
# the long options PROGRAM [COMMAND] --help names, one a line
long_options() { "$@" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }
# missing_from TEXT_FILE WORD...: the WORDs not in the file, one a line
missing_from() { local f=$1 w; shift; for w in "$@"; do grep -qF -- "$w" "$f" || echo "$w"; done; }
for p in "${PROGRAMS[@]}"; do
    page=$P/$MAN/man1/$p.1.gz
    zcat "$page" >"$T/$p.1"
    groff -ww -z -man "$T/$p.1" >"$T/$p.groff" 2>&1
    check_eq "$p(1): groff -ww reads it without a warning" "" "$(cat "$T/$p.groff")"
    LC_ALL=C MANWIDTH=80 man --warnings -l "$page" >"$T/$p.txt" 2>"$T/$p.warn"
    check_eq "$p(1): man --warnings renders it, no warning" "0:" "$?:$(cat "$T/$p.warn")"
    mapfile -t opts < <(long_options "$P/bin/$p")
    if [ "$p" = cqctl ]; then
        mapfile -t cmds < <("$P/bin/cqctl" --help | sed -n '/^Commands:$/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p')
        check "cqctl --help lists its commands" [ ${#cmds[@]} -ge 10 ]
        for c in "${cmds[@]}"; do
            mapfile -t -O ${#opts[@]} opts < <(long_options "$P/bin/cqctl" "$c")
            grep -q "^       $c\b" "$T/$p.txt" || opts+=("(no entry for the command $c)")
            grep -q "cqctl $c" "$T/$p.txt" || opts+=("(no usage of cqctl $c)")
        done
    fi
    check "$p(1) names each of its ${#opts[@]} long options (from --help)" [ ${#opts[@]} -ge 3 ]
    check_eq "...every one of them" "" "$(missing_from "$T/$p.txt" "${opts[@]}")"
    check_contains "$p(1) is of this version" "cq $VERSION" "$(tail -1 "$T/$p.txt")"
    check_contains "$p(1) has a NAME line whatis reads" "\"$p - " "$(lexgrog "$page")"
    check_eq "man finds it under the prefix" "$page" "$(MANPATH=$P/$MAN man -w "$p")"
done
check_contains "cworker(1) has the exit status of cworker --help" "0 after a clean stop" "$(cat "$T/cworker.txt")"

# ---- the systemd unit and its environment file ----
UNIT=$P/lib/systemd/system/cworker@.service
ENVF=$P/etc/cq/cworker.env
key() { sed -n "s/^$1=//p" "$UNIT"; }   # a key of the unit ([Service] keys are unique in it)
check_contains "the unit runs this prefix's cworker" "$P/bin/cworker " "$(key ExecStart)"
check_eq "...with this prefix's environment file (optional: '-')" "-$ENVF" "$(key EnvironmentFile)"
check_eq "...as the system user cq" "cq:cq" "$(key User):$(key Group)"
check_eq "...with /var/lib/cq its writable state directory, and its download root" \
    "cq /var/lib/cq 1" "$(key StateDirectory) $(key WorkingDirectory) $(key ExecStart | grep -c -- '--download-root=/var/lib/cq ')"
check_eq "...read-only elsewhere, no privileges to gain, a private /tmp" "strict yes yes" \
    "$(key ProtectSystem) $(key NoNewPrivileges) $(key PrivateTmp)"
check_eq "...restarted when it fails; SIGTERM to cworker alone (it stops its commands)" \
    "on-failure SIGTERM mixed" "$(key Restart) $(key KillSignal) $(key KillMode)"
# cworker's drain: --shutdown-timeout, then up to 6 s for handlers (docs/DESIGN.md)
drain=$("$P/bin/cworker" --help | sed -n 's/.*(default: \([0-9]*\)s); a second.*/\1/p')
check "TimeoutStopSec ($(key TimeoutStopSec)) outlasts cworker's drain (${drain:-?}s + 6s)" \
    [ "$(key TimeoutStopSec)" -gt "$(( ${drain:-1000} + 6 ))" ]
check_eq "the environment file: root's alone (it may hold a password)" 600 "$(stat -c %a "$ENVF")"
check_eq "...every setting in it commented out (the defaults)" "" "$(grep -v -e '^#' -e '^$' "$ENVF")"
vars=$(sed -n 's/^#\([A-Z_]*\)=.*/\1/p' "$ENVF" | sort | tr '\n' ' ')
check_eq "...the URL, TLS, the prefix, plugins, the network policy and cworker's options" "CQ_ALLOW_HOSTS CQ_DENY_NETWORKS CQ_PLUGINS CQ_PREFIX CQ_REDIS_URL CQ_TLS_CA CQ_TLS_CERT CQ_TLS_KEY CQ_WORKER_OPTS " "$vars"
# each is one cworker reads (its --help names it) or the unit passes on
# The prefix /usr (a package's, staged in DESTDIR): the configuration goes to /etc, as
# GNUInstallDirs has it, and the unit says so.
DESTDIR=$T/staged cmake --install "$BUILD" --prefix /usr >"$T/staged.log" 2>&1 ||
    { cat "$T/staged.log"; echo "FATAL: cmake --install --prefix /usr with DESTDIR failed"; exit 1; }
staged_unit=$T/staged/usr/lib/systemd/system/cworker@.service
check "--prefix /usr: the environment file in /etc/cq (DESTDIR/etc/cq)" [ -f "$T/staged/etc/cq/cworker.env" ]
check_eq "...and the unit names it, and /usr/bin/cworker" \
    "EnvironmentFile=-/etc/cq/cworker.env 1" \
    "$(grep '^EnvironmentFile=' "$staged_unit") $(grep -c '^ExecStart=.* /usr/bin/cworker ' "$staged_unit")"

"$P/bin/cworker" --help >"$T/cworker.help"
unread() { local v; for v in $vars; do grep -qF "\$$v" "$T/cworker.help" "$UNIT" || echo "$v"; done; }
check_eq "...each read by cworker or by the unit" "" "$(unread)"
example=$(sed -n 's/^#CQ_WORKER_OPTS=//p' "$ENVF")
# shellcheck disable=SC2086  # split at spaces, as systemd splits $CQ_WORKER_OPTS
check "...and its example CQ_WORKER_OPTS ($example) are options cworker takes" \
    "$P/bin/cworker" $example --list-functions

# A sanitized build's library needs its runtime in the programs that load it.
CFLAGS_EXTRA=
grep -q '^ENABLE_SANITIZERS:BOOL=ON' "$BUILD/CMakeCache.txt" && CFLAGS_EXTRA="-fsanitize=address,undefined"

cc $CFLAGS_EXTRA "$SRC/examples/client.c" -o "$T/client" $(pkg-config --cflags --libs cq) \
    -Wl,-rpath,"$LIBDIR" 2>"$T/cc.log"
check "the example client builds with pkg-config --cflags --libs cq" [ -x "$T/client" ] || cat "$T/cc.log"
# What pkg-config --static says, with libcq.a for -lcq: cq.pc names every library libcq needs.
# The static command of docs/EXTENDING.md ("libcq").
read -r -a static_libs <<<"$(pkg-config --static --libs cq |
   sed "s#\(^\| \)-lcq\( \|$\)# $(pkg-config --variable=libdir cq)/libcq.a #")"
cc $CFLAGS_EXTRA "$SRC/examples/client.c" -o "$T/client-static" $(pkg-config --cflags cq) \
    "${static_libs[@]}" 2>"$T/cc2.log"
# static_client EXE: built, and not linked to libcq.so (ldd's report does not name it).
static_client() { [ -x "$1" ] && [[ $(ldd "$1" 2>&1) != *libcq* ]]; }
check "...and statically, from libcq.a, with pkg-config --static --libs cq" static_client "$T/client-static" || cat "$T/cc2.log"
cc $CFLAGS_EXTRA -shared -fPIC "$SRC/examples/sha256.c" -o "$T/sha256.so" \
    $(pkg-config --cflags --libs cq libcrypto) 2>"$T/cc3.log"
check "the example plugin builds the same way" [ -f "$T/sha256.so" ] || cat "$T/cc3.log"
# CMake's way: find_package(cq) in a project of the user's, the prefix on CMAKE_PREFIX_PATH.
mkdir -p "$T/cmakeuser"
cat >"$T/cmakeuser/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(cquser C)
find_package(cq $VERSION REQUIRED)
find_package(OpenSSL REQUIRED)
add_executable(client "$SRC/examples/client.c")
target_link_libraries(client PRIVATE cq::cq)
add_library(sha256 MODULE "$SRC/examples/sha256.c")
target_link_libraries(sha256 PRIVATE cq::cq OpenSSL::Crypto)
EOF
cmake -S "$T/cmakeuser" -B "$T/cmakeuser/build" -DCMAKE_PREFIX_PATH="$P" \
    -DCMAKE_C_FLAGS="$CFLAGS_EXTRA" >"$T/cmake.log" 2>&1 &&
    cmake --build "$T/cmakeuser/build" >>"$T/cmake.log" 2>&1
check "a CMake project builds the client and the plugin with find_package(cq) and cq::cq" \
    [ -x "$T/cmakeuser/build/client" ] || cat "$T/cmake.log"
# runpath_to EXE DIR: EXE's libcq is DIR's, found without LD_LIBRARY_PATH (no grep -q: with
# pipefail, ldd cut off by SIGPIPE would fail the check)
runpath_to() { [[ $(env -u LD_LIBRARY_PATH ldd "$1") == *"libcq.so.$API => $2/"* ]]; }
check "...which finds libcq by RUNPATH" runpath_to "$T/cmakeuser/build/client" "$LIBDIR"
sed -i "s/find_package(cq $VERSION REQUIRED)/find_package(cq 99 REQUIRED)/" "$T/cmakeuser/CMakeLists.txt"
cmake -S "$T/cmakeuser" -B "$T/cmakeuser/build3" -DCMAKE_PREFIX_PATH="$P" >"$T/cmake3.log" 2>&1
check_eq "...and find_package(cq 99) is refused (another major version)" 1 "$?"
# The build tree without installing: PKG_CONFIG_PATH=BUILD finds cq-uninstalled.pc, which
# names this tree's header and libcq.so.
cc $CFLAGS_EXTRA "$SRC/examples/client.c" -o "$T/client-tree" \
    $(PKG_CONFIG_PATH=$BUILD pkg-config --cflags --libs cq) 2>"$T/cc4.log"
check "PKG_CONFIG_PATH=BUILD: the client builds against the build tree" [ -x "$T/client-tree" ] ||
    cat "$T/cc4.log"
check "...and finds the tree's libcq (RUNPATH)" runpath_to "$T/client-tree" "$BUILD/common"

# The installed Redis module loads, and the installed worker's outcomes go through it.
start_redis --loadmodule "$P/$LIB/cq/cq-redis.so"
check_contains "redis-server --loadmodule PREFIX/$LIB/cq/cq-redis.so: MODULE LIST names cq" "cq" \
    "$(rcli MODULE LIST | paste -sd' ')"
mkdir -p "$T/root/images"
printf 'one' >"$T/root/images/a.txt"
printf 'two' >"$T/root/images/b.txt"
"$P/bin/cworker" --load "$T/sha256.so" --download-root "$T/root" >"$T/w.log" 2>&1 &
PIDS+=("$!")
wait_for 10 workers_are 1 || { echo "FATAL: installed worker did not start"; cat "$T/w.log"; exit 1; }

"$T/client" sha256 images/a.txt images/b.txt >"$T/out" 2>"$T/err"
check_eq "the client's jobs all finished: exit 0" 0 "$?"
check_eq "it prints one line a job" 2 "$(wc -l <"$T/out")"
check_contains "with the JSON result of the first" "finished {\"path\":\"images/a.txt\",\"bytes\":3,\"sha256\":\"$(printf one | sha256sum | cut -c1-64)\"}" "$(cat "$T/out")"
check_contains "and of the second" "\"sha256\":\"$(printf two | sha256sum | cut -c1-64)\"" "$(cat "$T/out")"
check_contains "...ended through the module" "outcomes through cq's Redis module" "$(cat "$T/w.log")"
"$T/client-static" sha256 images/missing.txt >"$T/out" 2>"$T/err"
check_eq "the static client reports a failed job: exit 1" 1 "$?"
check_contains "...with its error" "failed sha256: 'images/missing.txt': No such file or directory" "$(cat "$T/out")"
"$T/cmakeuser/build/client" sha256 images/b.txt >"$T/out" 2>"$T/err"
check_eq "the client CMake built: its job finished, exit 0" 0 "$?"
check_contains "...with its result" "\"sha256\":\"$(printf two | sha256sum | cut -c1-64)\"" "$(cat "$T/out")"
"$T/client-tree" sha256 images/a.txt >"$T/out" 2>"$T/err"
check_eq "the client built against the build tree: its job finished, exit 0" 0 "$?"
"$T/client" nosuch x >"$T/out" 2>"$T/err"
check_eq "an unknown function is refused before it is sent: exit 2" 2 "$?"
check_contains "...naming what exists" "unknown function 'nosuch' (known: download_link, noop, sha256, sleep)" "$(cat "$T/err")"

# An embedded worker (docs/EXTENDING.md): a program of the user's with a function of its own,
# built against the installed libcq, serving one queue in burst mode; its log lines carry
# its own name.
cat >"$T/embed.c" <<'EOF'
#include <stdio.h>
#include <cq/cq.h>
static int shout(cq_job *job, void *udata)
{
    (void)udata;
    return cq_job_result(job, "HEY");
}
int main(void)
{
    char err[512];
    cq_worker *w = cq_worker_new();
    int rc;
    if (w == NULL || cq_function_add(cq_worker_registry(w), "shout", "", shout, 0) == NULL ||
        cq_worker_set(w, "burst", "1", err, sizeof err) != 0 ||
        cq_worker_add_queue(w, "embedded", err, sizeof err) != 0) {
        fprintf(stderr, "embed: %s\n", err);
        return 1;
    }
    rc = cq_worker_run(w);
    cq_worker_free(w);
    return rc;
}
EOF
cc $CFLAGS_EXTRA "$T/embed.c" -o "$T/embed" $(pkg-config --cflags --libs cq) -Wl,-rpath,"$LIBDIR" \
    2>"$T/cc5.log"
check "an embedded worker builds with pkg-config" [ -x "$T/embed" ] || cat "$T/cc5.log"
id=$("$P/bin/cenqueue" --no-check -q embedded shout 2>/dev/null)
"$T/embed" 2>"$T/embed.log"
check_eq "...serves its queue and exits (burst): exit 0" 0 "$?"
check_eq "...its job finished with the function's result" "finished HEY" \
    "$(rcli HGET "cq:job:$id" status) $(rcli HGET "cq:job:$id" result)"
check_eq "...every log line named after the program" "" "$(grep -v ' embed\[[0-9]*\] ' "$T/embed.log")"
check_contains "...which logged its start" " embed[" "$(head -1 "$T/embed.log")"
finish
