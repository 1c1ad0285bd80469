#!/usr/bin/env bash
# test_install.sh - `cmake --install` into a private prefix, then, as a user would: build the
# example client against the installed libcq through pkg-config (shared, and static from
# libcq.a), build the example plugin the same way, run the installed cworker with it, and
# let the client enqueue jobs, wait for them and print their results.
. "$(dirname "$0")/lib.sh"

P=$T/prefix
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 ||
    { echo "FATAL: cmake --install failed"; cat "$T/install.log"; exit 1; }
LIBDIR=$(dirname "$(find "$P" -name cq.pc | head -1)")/..
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
executables() { local f; for f in "$@"; do [ -x "$f" ] || return 1; done; }
one_header() { [ -f "$P/include/cq/cq.h" ] && [ "$(find "$P/include" -type f | wc -l)" = 1 ]; }
both_libs() { [ -f "$LIBDIR/libcq.a" ] && ls "$LIBDIR"/libcq.so.* >/dev/null; }
check "installs cworker, cenqueue, cproducer" executables "$P/bin/cworker" "$P/bin/cenqueue" "$P/bin/cproducer"
check "installs the one public header" one_header
check "installs libcq.so and libcq.a" both_libs
check_eq "pkg-config knows cq" "$(sed -n 's/^project(cq VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")" "$(pkg-config --modversion cq)"
check "the installed cworker finds its library (RPATH)" env -u LD_LIBRARY_PATH "$P/bin/cworker" --version

# A sanitized build's library needs its runtime in the programs that load it.
CFLAGS_EXTRA=
grep -q '^ENABLE_SANITIZERS:BOOL=ON' "$BUILD/CMakeCache.txt" && CFLAGS_EXTRA="-fsanitize=address,undefined"

cc $CFLAGS_EXTRA "$SRC/examples/client.c" -o "$T/client" $(pkg-config --cflags --libs cq) \
    -Wl,-rpath,"$LIBDIR" 2>"$T/cc.log"
check "the example client builds with pkg-config --cflags --libs cq" [ -x "$T/client" ] || cat "$T/cc.log"
cc $CFLAGS_EXTRA "$SRC/examples/client.c" -o "$T/client-static" $(pkg-config --cflags cq) \
    "$LIBDIR/libcq.a" $(pkg-config --libs hiredis libcjson uuid) -lpthread -lm -ldl 2>"$T/cc2.log"
# static_client EXE: built, and not linked to libcq.so (ldd's report does not name it).
static_client() { [ -x "$1" ] && [[ $(ldd "$1" 2>&1) != *libcq* ]]; }
check "...and statically, from libcq.a" static_client "$T/client-static" || cat "$T/cc2.log"
cc $CFLAGS_EXTRA -shared -fPIC "$SRC/examples/sha256.c" -o "$T/sha256.so" \
    $(pkg-config --cflags --libs cq libcrypto) 2>"$T/cc3.log"
check "the example plugin builds the same way" [ -f "$T/sha256.so" ] || cat "$T/cc3.log"

start_redis
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
"$T/client-static" sha256 images/missing.txt >"$T/out" 2>"$T/err"
check_eq "the static client reports a failed job: exit 1" 1 "$?"
check_contains "...with its error" "failed sha256: 'images/missing.txt': No such file or directory" "$(cat "$T/out")"
"$T/client" nosuch x >"$T/out" 2>"$T/err"
check_eq "an unknown function is refused before it is sent: exit 2" 2 "$?"
check_contains "...naming what exists" "unknown function 'nosuch' (known: download_link, noop, sha256, sleep)" "$(cat "$T/err")"
finish
