#!/usr/bin/env bash
# test_tls.sh - rediss:// against Debian's redis-server with TLS on (--tls-port, no plain
# port): jobs flow through cenqueue, cworker and cqctl with the CA given by --tls-ca or
# $CQ_TLS_CA, and many of them at once through one worker (the relay under load); a wrong CA,
# a certificate for another name, a plain client and a TLS client on a plain port are each
# refused with one clear line; a server that asks for client certificates takes ours; a
# client certificate or key that is wrong, no server, and a name that does not resolve are
# each one line; so is a CA, certificate or key file that is there but may not be read (run
# as nobody, or mode 0000 for a user that is not root): Permission denied, and which option.
# A program that links libcq (examples/client.c) is told of the variables, not the options.
# The certificates are made here with openssl.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/pki"
cd "$T/pki"
# ca NAME: a self-signed CA (NAME.pem, NAME.key).
ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cq test $1" \
        -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
# cert NAME CA SAN: a certificate signed by CA for the subjectAltName SAN.
cert() {
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
ca ca
ca other
cert server ca "IP:127.0.0.1"
cert client ca "DNS:cq-client"
cd - >/dev/null
[ -s "$T/pki/server.pem" ] || { echo "FATAL: openssl could not make the certificates"; exit 1; }

# A TLS-only Redis: lib.sh's readiness check talks TLS to it.
TLS_ARGS=(--tls-cert-file "$T/pki/server.pem" --tls-key-file "$T/pki/server.key"
          --tls-ca-cert-file "$T/pki/ca.pem" --tls-auth-clients no)
redis_answers() {
    [ "$(redis-cli --tls --cacert "$T/pki/ca.pem" -h 127.0.0.1 -p "$RPORT" ping 2>/dev/null)" = PONG ]
}
rcli() { redis-cli --tls --cacert "$T/pki/ca.pem" -h 127.0.0.1 -p "$RPORT" "$@"; }
for try in $(seq 1 20); do
    RPORT=$(( 20000 + RANDOM % 12000 ))
    launch_redis --port 0 --tls-port "$RPORT" --bind 127.0.0.1 "${TLS_ARGS[@]}" && break
done
URL=rediss://127.0.0.1:$RPORT

echo "# jobs flow over TLS"
id=$("$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki/ca.pem" noop)
check_eq "cenqueue --tls-ca: an id" 36 "${#id}"
# A CA through a pipe (process substitution): the check that the file can be read reads none
# of it (a first version read a buffer's worth, and OpenSSL then found no certificate).
id=$("$BIN/cenqueue" -u "$URL" --tls-ca <(cat "$T/pki/ca.pem") noop)
check_eq "cenqueue --tls-ca <(cat ca.pem): an id" 36 "${#id}"
"$BIN/cworker" -u "$URL" --tls-ca "$T/pki/ca.pem" --burst 2>"$T/w.log"
check_eq "cworker --tls-ca --burst: exit 0" 0 "$?"
check_eq "the job finished" finished "$(jfield "$id")"
export CQ_TLS_CA=$T/pki/ca.pem
"$BIN/cworker" -u "$URL" 2>/dev/null &
W=$!
PIDS+=("$W")
out=$("$BIN/cenqueue" -u "$URL" --wait --wait-timeout 30s sleep 0 2>&1)
kill -TERM "$W"
wait "$W"
check_contains "\$CQ_TLS_CA, and --wait (pub/sub) over TLS" "finished" "$out"
check_contains "cqctl info over TLS" "default" "$("$BIN/cqctl" -u "$URL" info 2>&1)"

echo "# many jobs at once through one worker's connections"
seq 1 3000 | sed 's/.*/noop/' | "$BIN/cenqueue" -u "$URL" --stdin --quiet
before=$(rcli HGET cq:stats processed)
"$BIN/cworker" -u "$URL" -c 32 --burst 2>"$T/w2.log"
check_eq "3000 jobs: the worker exits 0" 0 "$?"
check_eq "... and every one was processed" $((before + 3000)) "$(rcli HGET cq:stats processed)"

echo "# a Redis that stops reading mid-send: the connection given up, its relay with it"
# tls_stall (tests/tls_stall.c) connects, stops Redis (SIGSTOP), and sends a SET of 64 MiB,
# more than the sockets between hold (a receive buffer may grow to 32 MB): the send stalls,
# and at its 2 s time-out the connection is closed while the relay's buffer toward Redis is
# full. The relay must end then, where it spun at 100% CPU on its end's POLLHUP, and the
# close waited for it, until Redis read again (h25's review): here until the SIGCONT 30 s on.
# (Its output away: the sleep it leaves when killed must not hold the test's stdout open.)
( sleep 30; kill -CONT "$RPID" ) >/dev/null 2>&1 &
CONT=$!
line=$("$BIN/tls_stall" "$URL" "$RPID" 64 2>&1)
rc=$?
kill -CONT "$RPID"
kill "$CONT" 2>/dev/null
wait "$CONT" 2>/dev/null
echo "# tls_stall: $line"
check_eq "tls_stall: the SET failed" 0 "$rc"
check_contains "... as a send that stalled" "could not send within 2 s (Redis reads nothing)" "$line"
took=$(sed -n 's/^failed after \([0-9.]*\) s.*/\1/p' <<<"$line")
cpu=$(sed -n 's/.*, CPU \([0-9.]*\) s:.*/\1/p' <<<"$line")
check "... and gave up before Redis came back (30 s)" between 0 "$took" 25
# A spin burns the CPU until the SIGCONT, some 20 s; the SET's own encryption takes 0.7 s,
# 6.4 s under ThreadSanitizer (CI's threads pass), where the bound is 12 s.
cpu_max=3
tsan && cpu_max=12
check "... without spinning (CPU under $cpu_max s)" between 0 "$cpu" "$cpu_max"
wait_for 10 redis_answers || { echo "FATAL: redis did not come back"; exit 1; }
rcli DEL tls_stall >/dev/null

echo "# refusals, each one line with its fix"
unset CQ_TLS_CA
"$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki/other.pem" noop >/dev/null 2>"$T/err"
check_eq "a CA that did not sign the server's certificate: exit 1" 1 "$?"
check_eq "... one line" 1 "$(wc -l <"$T/err")"
check_contains "... naming the cause" \
    "cenqueue: redis 127.0.0.1:$RPORT: TLS: certificate verify failed: " "$(cat "$T/err")"
check_contains "... and the fix" \
    "; give the CA that signed the server's certificate with --tls-ca (or \$CQ_TLS_CA), and connect by a name or address the certificate holds" \
    "$(cat "$T/err")"
# A program that links libcq (the example client) has no --tls-ca: its advice names only the
# variable it can set, where cenqueue's names both.
out=$(CQ_REDIS_URL=$URL CQ_TLS_CA=$T/pki/other.pem "$BIN/cq-example-client" noop x 2>&1)
check_contains "a program linking libcq, a CA that did not sign: its fix names \$CQ_TLS_CA" \
    "; point \$CQ_TLS_CA at the CA that signed the server's certificate, and connect by a name or address the certificate holds" \
    "$out"
check_eq "... and no option" "" "$(grep -o -- '--[a-z-]*' <<<"$out")"
out=$(CQ_REDIS_URL=$URL CQ_TLS_CA=/nonexistent/ca.pem "$BIN/cq-example-client" noop x 2>&1)
check_contains "... a CA file that is not there: the variable to point elsewhere" \
    "TLS: CA file '/nonexistent/ca.pem': No such file or directory; point \$CQ_TLS_CA at a PEM file of the CAs to trust" \
    "$out"
"$BIN/cenqueue" -u "rediss://localhost:$RPORT" --tls-ca "$T/pki/ca.pem" noop >/dev/null 2>"$T/err"
check_eq "a name the certificate does not hold (localhost, not 127.0.0.1): exit 1" 1 "$?"
check_contains "... certificate verify failed" "TLS: certificate verify failed: hostname mismatch" \
    "$(cat "$T/err")"
"$BIN/cenqueue" -u "$URL" --tls-ca /nonexistent/ca.pem noop >/dev/null 2>"$T/err"
check_eq "a CA file that is not there: exit 1" 1 "$?"
check_eq "... says which, and why (the system's words, not OpenSSL's 'unknown error')" \
    "cenqueue: redis 127.0.0.1:$RPORT: TLS: CA file '/nonexistent/ca.pem': No such file or directory; give --tls-ca (or \$CQ_TLS_CA) a PEM file of the CAs to trust" \
    "$(cat "$T/err")"
"$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki" noop >/dev/null 2>"$T/err"
check_contains "a CA 'file' that is a directory: says so" \
    "TLS: CA file '$T/pki': Is a directory" "$(cat "$T/err")"

# A file that is there but that the client may not read: root's, mode 0600, to a client run
# as nobody (root reads any file). Such a user cannot reach the build tree nor $T (0700), so
# cenqueue and the libraries of the build go to a directory of $T it may enter; as another
# user than root, a file of mode 0000 does the same.
deny=$T/deny
mkdir -m 755 "$deny"
cp "$BUILD/bin/cenqueue" "$deny/"
for lib in $(ldd "$BUILD/bin/cenqueue" | awk -v b="$BUILD/" 'index($3, b) == 1 { print $3 }'); do
    cp "$lib" "$deny/"
done
cp "$T/pki/ca.pem" "$T/pki/client.pem" "$T/pki/client.key" "$deny/"
chmod 644 "$deny"/*.pem "$deny"/client.key
chmod 755 "$deny/cenqueue"
if [ "$(id -u)" = 0 ]; then
    chmod o+x "$T"   # nobody may go through $T to $deny, not list it
    mkdir -m 1777 "$deny/reports"
    denied() { chmod 600 "$1"; }
    # TSan's reports go where nobody may write, then to $T where the EXIT trap finds them.
    as_other() {
        local opts=${TSAN_OPTIONS:-} rc
        opts=${opts/log_path=$T\/report/log_path=$deny/reports/report}
        TSAN_OPTIONS=$opts LD_LIBRARY_PATH=$deny \
            setpriv --reuid=nobody --regid=nogroup --clear-groups "$deny/cenqueue" "$@"
        rc=$?
        for r in "$deny"/reports/report.*; do [ -e "$r" ] && mv "$r" "$T/report.nobody.${r##*.}"; done
        return $rc
    }
else
    denied() { chmod 000 "$1"; }
    as_other() { LD_LIBRARY_PATH=$deny "$deny/cenqueue" "$@"; }
fi
id=$(as_other -u "$URL" --tls-ca "$deny/ca.pem" noop 2>"$T/err")
check_eq "as $([ "$(id -u)" = 0 ] && echo nobody || echo the user), the copied cenqueue enqueues" \
    "0 36" "$? ${#id}"
# unreadable FILE WHAT FIX: FILE made one that cenqueue may not read (mode 0600, another
# owner), given with the others: exit 1, and one line with the file, the system's reason and
# the option to fix.
unreadable() {
    denied "$deny/$1"
    as_other -u "$URL" --tls-ca "$deny/ca.pem" --tls-cert "$deny/client.pem" \
        --tls-key "$deny/client.key" noop >/dev/null 2>"$T/err"
    check_eq "a $2 file that cannot be read: exit 1" 1 "$?"
    check_eq "... one line: which, why and what to give" \
        "cenqueue: redis 127.0.0.1:$RPORT: TLS: $2 file '$deny/$1': Permission denied; $3" \
        "$(cat "$T/err")"
    chmod 644 "$deny/$1"
}
unreadable ca.pem CA "give --tls-ca (or \$CQ_TLS_CA) a PEM file of the CAs to trust"
unreadable client.pem certificate \
    "give --tls-cert (or \$CQ_TLS_CERT) a PEM file of the client certificate"
unreadable client.key key "give --tls-key (or \$CQ_TLS_KEY) the certificate's private key, PEM"
"$BIN/cenqueue" -u "redis://127.0.0.1:$RPORT" noop >/dev/null 2>"$T/err"
check_eq "a plain client on the TLS port: refused, exit 1" 1 "$?"
check_eq "... in one line" 1 "$(wc -l <"$T/err")"
check "... that does not call it a connection lost (it never worked)" \
    bash -c "! grep -q 'connection was lost' '$T/err'"
check_contains "... says to use rediss://" "is this a TLS port? Use rediss:// for one" \
    "$(cat "$T/err")"

# A plain Redis beside it, for a TLS client on a plain port.
redis-server --port "$((RPORT + 1))" --bind 127.0.0.1 --save "" --logfile "$T/plain.log" &
PIDS+=("$!")
wait_for 10 bash -c "redis-cli -p $((RPORT + 1)) ping | grep -q PONG" ||
    { echo "FATAL: the plain redis-server did not start"; exit 1; }
"$BIN/cenqueue" -u "rediss://127.0.0.1:$((RPORT + 1))" --tls-ca "$T/pki/ca.pem" noop \
    >/dev/null 2>"$T/err"
check_eq "a TLS client on a plain port: exit 1" 1 "$?"
check_contains "... says to use redis://" "use redis:// for a port without TLS" "$(cat "$T/err")"

echo "# a server that asks for client certificates"
rcli CONFIG SET tls-auth-clients yes >/dev/null
rcli() {
    redis-cli --tls --cacert "$T/pki/ca.pem" --cert "$T/pki/client.pem" --key "$T/pki/client.key" \
        -h 127.0.0.1 -p "$RPORT" "$@"
}
"$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki/ca.pem" noop >/dev/null 2>"$T/err"
check_eq "without a client certificate: refused" 1 "$?"
check_eq "... in one line naming the server, the cause and the fix" \
    "cenqueue: redis 127.0.0.1:$RPORT: TLS: tlsv13 alert certificate required; this server wants a client certificate: give --tls-cert and --tls-key" \
    "$(cat "$T/err")"
id=$("$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki/ca.pem" --tls-cert "$T/pki/client.pem" \
     --tls-key "$T/pki/client.key" noop)
check_eq "with --tls-cert and --tls-key: enqueued" 36 "${#id}"
out=$(CQ_REDIS_URL=$URL CQ_TLS_CA=$T/pki/ca.pem "$BIN/cq-example-client" noop x 2>&1)
check_contains "a program linking libcq without a client certificate: the variables to set" \
    "TLS: tlsv13 alert certificate required; this server wants a client certificate: set \$CQ_TLS_CERT and \$CQ_TLS_KEY" \
    "$out"
check_eq "... and no option" "" "$(grep -o -- '--[a-z-]*' <<<"$out")"
CQ_TLS_CERT=$T/pki/client.pem CQ_TLS_KEY=$T/pki/client.key \
    "$BIN/cworker" -u "$URL" --tls-ca "$T/pki/ca.pem" --burst 2>/dev/null
check_eq "... and \$CQ_TLS_CERT, \$CQ_TLS_KEY run it" finished "$(jfield "$id")"
"$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki/ca.pem" --tls-cert /nonexistent/client.pem noop \
    >/dev/null 2>"$T/err"
check_eq "a client certificate file that is not there: exit 1" 1 "$?"
check_contains "... says which, and why" \
    "TLS: certificate file '/nonexistent/client.pem': No such file or directory" "$(cat "$T/err")"
"$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki/ca.pem" --tls-cert "$T/pki/client.pem" \
    --tls-key /nonexistent/client.key noop >/dev/null 2>"$T/err"
check_contains "a key file that is not there: says which, and why, and the fix" \
    "TLS: key file '/nonexistent/client.key': No such file or directory; give --tls-key (or \$CQ_TLS_KEY) the certificate's private key, PEM" \
    "$(cat "$T/err")"
out=$(CQ_REDIS_URL=$URL CQ_TLS_CA=$T/pki/ca.pem CQ_TLS_CERT=$T/pki/client.pem \
    CQ_TLS_KEY=/nonexistent/client.key "$BIN/cq-example-client" noop x 2>&1)
check_contains "... to a program linking libcq: the variable to point elsewhere" \
    "TLS: key file '/nonexistent/client.key': No such file or directory; point \$CQ_TLS_KEY at the certificate's private key, PEM" \
    "$out"
"$BIN/cenqueue" -u "$URL" --tls-ca "$T/pki/ca.pem" --tls-cert "$T/pki/client.pem" \
    --tls-key "$T/pki/server.key" noop >/dev/null 2>"$T/err"
check_eq "a key that is not the certificate's: exit 1" 1 "$?"
check_contains "... says which" "TLS: key file '$T/pki/server.key': " "$(cat "$T/err")"
check_contains "... and why (OpenSSL's words)" "key values mismatch" "$(cat "$T/err")"

echo "# no server at all"
closed=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/cenqueue" -u "rediss://127.0.0.1:$closed" --tls-ca "$T/pki/ca.pem" noop >/dev/null 2>"$T/err"
check_eq "nothing listening: exit 1" 1 "$?"
check_eq "... one line" 1 "$(wc -l <"$T/err")"
check_contains "... naming the address and the cause" "redis 127.0.0.1:$closed: Connection refused" \
    "$(cat "$T/err")"
"$BIN/cenqueue" -u "rediss://no-such-host.invalid:6379" --tls-ca "$T/pki/ca.pem" noop \
    >/dev/null 2>"$T/err"
check_eq "a host name that does not resolve: exit 1" 1 "$?"
check_contains "... naming it" "redis no-such-host.invalid:6379: " "$(cat "$T/err")"

finish
