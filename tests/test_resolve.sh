#!/usr/bin/env bash
# test_resolve.sh - a host name's resolution keeps to its deadline: the connect's time-out, or
# 10 s where that is less (tls.c's tls_lookup_min). In a mount and network namespace of its
# own (unshare; lo up, nothing else), with private /etc/resolv.conf (nameservers 127.0.0.1
# and 127.0.0.2, 6 s a try, 1 try), /etc/hosts and /etc/nsswitch.conf ("hosts: files dns")
# bind-mounted over the real ones, a DNS server on 127.0.0.1:53 that reads every query and
# answers none, and one on 127.0.0.2:53 that answers late.test only
# (tests/fixtures/dns_silent.py, which logs each name asked):
#   (a) cenqueue -u redis://slow.invalid:6379 fails within about 10 s, where the resolver's
#       own would take 24 s (6 s a server, a lookup for IPv4, then for IPv6), with one line
#       naming the host and the cause;
#   (b) the same through a sentinel of that name (redis+sentinel://, rconn's other path);
#   (c) a name in the namespace's /etc/hosts still connects, to a redis-server the test
#       starts in the namespace: the job is in its queue;
#   (d) late.test, which the first nameserver does not answer and the second does once the
#       resolver asks it, 6 s on, connects, past cenqueue's 5-s connect time-out.
# cworker and cqctl connect through the same code (tls.c's tls_tcp_connect). Everything is
# stopped by the EXIT trap, whatever the outcome: the processes in the namespace, then its
# holder, and the namespace goes with it. Needs root; fails with FATAL when a namespace or a
# bind mount cannot be made.
. "$(dirname "$0")/lib.sh"

fatal() { echo "FATAL: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

[ "$(id -u)" = 0 ] || fatal "a network namespace needs root (this runs as uid $(id -u))"
for c in unshare nsenter ip mount; do
    command -v "$c" >/dev/null || fatal "no '$c' command (util-linux, iproute2)"
done

NSPID=
# inns CMD...: CMD in the namespace (its network and its mounts).
inns() { nsenter -t "$NSPID" -n -m "$@"; }
ns_pids() {   # every process in the namespace but its holder (one find, not a fork a process)
    find -L /proc/[0-9]*/ns/net -maxdepth 0 -samefile "/proc/$NSPID/ns/net" 2>/dev/null |
        awk -F/ -v holder="$NSPID" '$3 != holder {print $3}'
}
no_ns_pids() { [ -z "$(ns_pids)" ]; }
resolve_cleanup() {
    local pids
    [ -n "$NSPID" ] || return 0
    pids=$(ns_pids)
    if [ -n "$pids" ]; then
        kill -TERM $pids 2>/dev/null
        wait_for 10 no_ns_pids || kill -KILL $(ns_pids) 2>/dev/null
    fi
    kill "$NSPID" 2>/dev/null
    wait "$NSPID" 2>/dev/null
}
trap 'resolve_cleanup; cleanup' EXIT
trap 'exit 130' INT TERM HUP

# ---- the namespace: lo, the private files, the silent DNS server, Redis ----

printf 'nameserver 127.0.0.1\nnameserver 127.0.0.2\noptions timeout:6 attempts:1\n' \
    >"$T/resolv.conf"
printf '127.0.0.1 localhost\n127.0.0.1 cq-redis.test\n' >"$T/hosts"
printf 'hosts: files dns\n' >"$T/nsswitch.conf"
# --propagation private (unshare's default, said): the bind mounts stay in the namespace. The
# holder's sleep outlives the test's TIMEOUT (300 s), no more: one that the EXIT trap never
# reached (a SIGKILL) ends by itself, and the namespace with it.
unshare --mount --net --propagation private sleep 600 &
NSPID=$!
ns_ready() {   # the holder is in a network namespace that is not the test's
    local its
    its=$(readlink "/proc/$NSPID/ns/net") && [ "$its" != "$(readlink /proc/$$/ns/net)" ]
}
wait_for 5 ns_ready || fatal "unshare --mount --net did not make a namespace"
inns ip link set lo up || fatal "cannot bring up lo in the namespace"
for f in resolv.conf hosts nsswitch.conf; do
    inns mount --bind "$T/$f" "/etc/$f" || fatal "cannot bind-mount $T/$f over /etc/$f"
done
check_eq "the namespace sees the private resolv.conf" "$(cat "$T/resolv.conf")" \
    "$(inns cat /etc/resolv.conf)"
check "... and the test's own is not it (the mount stayed in the namespace)" \
    test "$(cat /etc/resolv.conf)" != "$(cat "$T/resolv.conf")"

inns "$PY" "$SRC/tests/fixtures/dns_silent.py" 127.0.0.1 53 "$T/dns.log" 2>"$T/dns.err" &
PIDS+=("$!")
dns_up() { test -e "$2" || exited "$1"; }
wait_for 10 dns_up "$!" "$T/dns.log"
test -e "$T/dns.log" || { cat "$T/dns.err"; fatal "dns_silent.py did not start"; }
inns "$PY" "$SRC/tests/fixtures/dns_silent.py" 127.0.0.2 53 "$T/dns2.log" late.test=127.0.0.1 \
    2>"$T/dns2.err" &
PIDS+=("$!")
wait_for 10 dns_up "$!" "$T/dns2.log"
test -e "$T/dns2.log" || { cat "$T/dns2.err"; fatal "the second dns_silent.py did not start"; }

mkdir -p "$T/redis"
inns redis-server --bind 127.0.0.1 --port 6379 --unixsocket "$RSOCK" --unixsocketperm 700 \
    --dir "$T/redis" --logfile "$T/redis/log" --save "" --appendonly no &
RPID=$!
PIDS+=("$RPID")
wait_for 10 redis_answers || { cat "$T/redis/log"; fatal "redis-server did not start"; }

# ---- (a) a name the DNS server is asked for and never answers ----

# cenqueue's connect time-out is 5 s (client.c), its lookup's 10 s (tls_lookup_min); the
# start of a program under valgrind takes 1-3 s more. The resolver's own 24 s are above either
# bound.
BOUND=14
wrapped && BOUND=18
WHY="within 10 s (the name service did not answer: check the nameservers of /etc/resolv.conf, and the hosts line of /etc/nsswitch.conf)"
t0=$(now_ms)
err=$(inns "$BIN/cenqueue" -u redis://slow.invalid:6379 noop 2>&1); rc=$?
took=$(( $(now_ms) - t0 ))
echo "# measured: cenqueue to slow.invalid failed after $took ms"
check "cenqueue fails (exit 1)" test "$rc" = 1
check "... within $BOUND s (the resolver's own: 24 s)" test "$took" -lt $((BOUND * 1000))
check "... after its lookup's 10 s, not before" test "$took" -ge 9500
check_eq "... in one line naming the host and the cause" \
    "cenqueue: redis slow.invalid:6379: could not resolve slow.invalid $WHY" \
    "$err"
check "the DNS server was asked for slow.invalid" grep -qx 'slow.invalid' "$T/dns.log"

# ---- (b) a sentinel of such a name ----

t0=$(now_ms)
err=$(inns "$BIN/cenqueue" -u redis+sentinel://slow-sentinel.invalid:26379/cq noop 2>&1); rc=$?
took=$(( $(now_ms) - t0 ))
echo "# measured: cenqueue through sentinel slow-sentinel.invalid failed after $took ms"
check "through the sentinel: cenqueue fails (exit 1)" test "$rc" = 1
check "... within $BOUND s" test "$took" -lt $((BOUND * 1000))
check_contains "... saying so of the sentinel" \
    "none gave its primary (slow-sentinel.invalid:26379: could not resolve slow-sentinel.invalid $WHY)" \
    "$err"

# ---- (c) a name in /etc/hosts, and an address, still connect ----

inns "$BIN/cenqueue" -u redis://cq-redis.test:6379 --id by-name noop >/dev/null 2>"$T/err"; rc=$?
check_eq "a name in /etc/hosts: cenqueue exits 0" 0 "$rc" || cat "$T/err"
check_eq "... and the job is queued in the namespace's Redis" queued "$(jfield by-name)"
inns "$BIN/cenqueue" -u redis://127.0.0.1:6379 --id by-address noop >/dev/null 2>"$T/err"; rc=$?
check_eq "an address: cenqueue exits 0" 0 "$rc" || cat "$T/err"
check_eq "... and the job is queued" queued "$(jfield by-address)"
# Where no thread can be started (a pids limit: tests/fixtures/nothread.c fails every
# pthread_create), the name is looked up in place, without the deadline: it connects, where
# the first version failed ('cannot start a thread to resolve ...'). Not under valgrind, whose
# own preloads and threads the shim would take over.
if ! wrapped; then
    CC=${CC:-cc}
    "$CC" -shared -fPIC -o "$T/nothread.so" "$SRC/tests/fixtures/nothread.c" 2>"$T/cc.err" ||
        fatal "cannot build tests/fixtures/nothread.c with $CC: $(cat "$T/cc.err")"
    inns env LD_PRELOAD="$T/nothread.so" \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        "$BIN/cenqueue" -u redis://cq-redis.test:6379 --id no-thread noop >/dev/null 2>"$T/err"
    rc=$?
    check_eq "no thread to be had: cenqueue to a name in /etc/hosts exits 0" 0 "$rc" ||
        cat "$T/err"
    check_eq "... and the job is queued" queued "$(jfield no-thread)"
fi
check "no lookup reached the DNS server but the two slow names" \
    test "$(grep -cv '^slow' "$T/dns.log")" = 0

# ---- (d) a name the first nameserver does not answer, and the second does ----

# The resolver asks 127.0.0.2 once its 6 s at 127.0.0.1 are out: past cenqueue's connect
# time-out (5 s), within its lookup's 10 s. It connected in about 6 s before there was a
# deadline, and failed at 5 s with the first one.
t0=$(now_ms)
inns "$BIN/cenqueue" -u redis://late.test:6379 --id late noop >/dev/null 2>"$T/err"; rc=$?
took=$(( $(now_ms) - t0 ))
echo "# measured: cenqueue to late.test connected after $took ms"
check_eq "a name the second nameserver answers after 6 s: cenqueue exits 0" 0 "$rc" ||
    cat "$T/err"
check "... after the first one's 6 s" test "$took" -ge 5500
check_eq "... and the job is queued" queued "$(jfield late)"
check "both nameservers were asked for late.test" \
    sh -c "grep -qx late.test '$T/dns.log' && grep -qx late.test '$T/dns2.log'"

finish
