#!/usr/bin/env bash
# test_sentinel_order.sh - redis+sentinel:// asks the next sentinel when the primary one names
# cannot be used: four redis-sentinel processes, each naming another node for the same
# master: SD a port where nothing listens, SX a Redis with another password, SR a replica,
# SL the live primary. A sentinel listed first that is stale (it names a dead primary, or a
# demoted one) must not fail the connection where a later one names the live primary; when
# none names one that works, the one line says what each answered. Every sentinel's
# down-after-milliseconds is long enough that none of them takes part: what each names stays
# as configured for the test's few seconds.
. "$(dirname "$0")/lib.sh"

# ours, port_up, serve_port and node_dirs: lib.sh's (servers on ports of their own).
# sentinel VAR NAME PORT: a sentinel that names 127.0.0.1:PORT as cqtest's primary.
sentinel() {
    printf 'sentinel monitor cqtest 127.0.0.1 %s 1\n' "$3" >"$T/$2.conf"
    printf 'sentinel %s cqtest 600000\n' down-after-milliseconds failover-timeout >>"$T/$2.conf"
    serve_port "$1" redis-sentinel "$T/$2.conf" --port @PORT --bind 127.0.0.1 --dir "$T" \
        --logfile "$T/$2.log"
}

# shellcheck disable=SC2046 # node's words
serve_port PL redis-server --port @PORT --bind 127.0.0.1 --save "" --appendonly no $(node_dirs l) \
    --requirepass pw
# shellcheck disable=SC2046
serve_port PR redis-server --port @PORT --bind 127.0.0.1 --save "" --appendonly no $(node_dirs r) \
    --requirepass pw --masterauth pw --replicaof 127.0.0.1 "$PL"
# shellcheck disable=SC2046
serve_port PX redis-server --port @PORT --bind 127.0.0.1 --save "" --appendonly no $(node_dirs x) \
    --requirepass other
# A port nothing listens on: one bound and closed again (the kernel gives it to nobody else
# while the test runs but by chance; then the check below fails the test loudly).
DEAD=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sentinel SD sd "$DEAD"
sentinel SX sx "$PX"
sentinel SR sr "$PR"
sentinel SL sl "$PL"
lcli() { redis-cli -p "$PL" --no-auth-warning -a pw "$@"; }
check_eq "nothing listens on the dead primary's port" "" "$(redis-cli -p "$DEAD" PING 2>/dev/null)"
check_eq "the replica is one" slave "$(redis-cli -p "$PR" --no-auth-warning -a pw ROLE | head -1)"
for s in "$SD:$DEAD" "$SX:$PX" "$SR:$PR" "$SL:$PL"; do
    check_eq "sentinel ${s%%:*} names 127.0.0.1:${s##*:}" "127.0.0.1 ${s##*:}" \
        "$(redis-cli -p "${s%%:*}" SENTINEL get-master-addr-by-name cqtest | tr '\n' ' ' | sed 's/ $//')"
done
url() { local IFS=,; echo "redis+sentinel://:pw@$*/cqtest"; }
S=127.0.0.1

echo "# a stale sentinel first: the next one's primary"
id=$("$BIN/cenqueue" -u "$(url $S:"$SD" $S:"$SL")" noop 2>"$T/err"); rc=$?
check_eq "dead primary named first, the live one next: cenqueue exits 0" 0 "$rc"
check "...and no word of the stale ones (only that no worker serves the queue)" \
    bash -c '! grep -v "no live worker takes" "$1"' _ "$T/err"
check_eq "...and its job is on the live primary" queued "$(lcli HGET "cq:job:$id" status)"
id=$("$BIN/cenqueue" -u "$(url $S:"$SD" $S:"$SX" $S:"$SR" $S:"$SL")" noop 2>"$T/err"); rc=$?
check_eq "a dead primary, a wrong password, a replica, then the live one: exit 0" 0 "$rc"
check "...and no word of the stale ones (only that no worker serves the queue)" \
    bash -c '! grep -v "no live worker takes" "$1"' _ "$T/err"
check_eq "...its job on the live primary" queued "$(lcli HGET "cq:job:$id" status)"
id=$("$BIN/cenqueue" -u "$(url $S:"$SL" $S:"$SD")" noop 2>/dev/null); rc=$?
check_eq "the live one first: exit 0, as before" 0 "$rc"
check_eq "...its job on the live primary" queued "$(lcli HGET "cq:job:$id" status)"
"$BIN/cqctl" -u "$(url $S:"$SR" $S:"$SL")" info >/dev/null 2>&1; rc=$?
check_eq "cqctl info, a replica named first: exit 0" 0 "$rc"

echo "# none names a primary that works: each one's answer, in one line"
err=$("$BIN/cenqueue" -u "$(url $S:"$SD" $S:"$SX" $S:"$SR")" noop 2>&1); rc=$?
check_eq "cenqueue exits 1" 1 "$rc"
check_eq "...one line" 1 "$(printf '%s\n' "$err" | wc -l)"
check_eq "...each sentinel's answer and the fix" \
    "cenqueue: redis sentinels of cqtest: no primary they named works ($S:$SD: named $S:$DEAD: Connection refused; $S:$SX: named $S:$PX: AUTH failed: WRONGPASS invalid username-password pair or user is disabled.; $S:$SR: named $S:$PR: ROLE says slave, not master); a failover is under way: the sentinels name the new primary when it ends" \
    "$err"
check "...and no password in it" bash -c "! grep -q pw <<<\"\$1\"" _ "$err"
err=$("$BIN/cenqueue" -u "$(url $S:"$SX" $S:"$SD" $S:"$SD")" noop 2>&1); rc=$?
check_eq "a primary named again, after another: tried once (h30's review: it was tried again)" \
    "1 cenqueue: redis sentinels of cqtest: no primary they named works ($S:$SX: named $S:$PX: AUTH failed: WRONGPASS invalid username-password pair or user is disabled.; $S:$SD: named $S:$DEAD: Connection refused; $S:$SD: named $S:$DEAD too); check the user and the password in the URL" \
    "$rc $err"
err=$("$BIN/cenqueue" -u "$(url $S:"$SD" $S:"$SD")" noop 2>&1); rc=$?
check_eq "two sentinels naming the same dead primary: exit 1" 1 "$rc"
check_eq "...the primary's own error, as with one sentinel" \
    "cenqueue: redis $S:$DEAD (primary of cqtest): Connection refused; is redis-server running there? Start it, or point the URL at yours" \
    "$err"
err=$("$BIN/cenqueue" -u "$(url $S:"$SR")" noop 2>&1); rc=$?
check_eq "one sentinel naming a replica: exit 1, the words as before" \
    "1 cenqueue: redis $S:$PR (primary of cqtest): ROLE says slave, not master; a failover is under way: the sentinels name the new primary when it ends" \
    "$rc $err"
finish
