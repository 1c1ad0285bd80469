#!/usr/bin/env bash
# test_policy.sh - what download_link may fetch, through cworker as an operator runs it:
#   --deny-networks  refused addresses, after DNS and on every redirect hop, with the
#                    default (link-local, cloud metadata) and the IPv4-mapped IPv6 form
#   --allow-hosts    only the listed hosts, the redirect's host included
#   --content        an HTML page served as x.jpg fails; a real JPEG is kept
# and what a proxy changes (the proxy's address is the one checked).
# Two image servers (tests/fixtures/httpd.py): A on 127.0.0.1 (allowed) and B on 127.0.0.2
# (the "internal service" the policy must keep a job from reaching; Linux routes all of
# 127.0.0.0/8 to lo). A refused job fails at once and for good: status failed, one attempt,
# no file, no temporary file, and B's own count of TCP connections shows none was made.
. "$(dirname "$0")/lib.sh"

start_redis
start_httpd --generate --size 3000
A=$HBASE
APORT=$HPORT
start_httpd --generate --size 3000 --bind 127.0.0.2
B=http://127.0.0.2:$HPORT
ROOT=$T/root
mkdir -p "$ROOT"

# job ID URL: enqueue download_link images URL with that id (no worker runs meanwhile: its
# warning that none takes from the queue goes to a log).
job() { "$BIN/cenqueue" --id "$1" download_link images "$2" >/dev/null 2>>"$T/cenqueue.log"; }
# work [OPTION...]: one cworker --burst over what is queued; its log in $T/w.log.
work() { "$BIN/cworker" --burst --download-root "$ROOT" "$@" >"$T/w.log" 2>&1; }
# refused ID ERROR: the job failed at its first attempt with exactly that error.
refused() {
    check_eq "$1: failed" failed "$(jfield "$1")"
    check_eq "$1: one attempt, no retry" 1 "$(jfield "$1" attempts)"
    check_eq "$1: the error" "$2" "$(jfield "$1" error)"
}
# connections_to_b: the TCP connections B accepted so far, this query's own included.
connections_to_b() {
    local json
    json=$(curl -fsS "$B/_/connections") || return 1
    [[ $json =~ \"connections\":\ *([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}
no_temp_files() { [ -z "$(find "$ROOT" -name '.*' -type f)" ]; }
# landed FILE: FILE holds the bytes httpd.py --generate --size 3000 serves for its name.
landed() { [ "$(count_generated 3000 "$1")" = 1 ]; }

# ---- the finding: without a policy against it, a job reaches the internal server ----
job open-redirect "$A/_/redirect-to/open.jpg?url=$B/open.jpg"
job open-direct "$B/open-direct.jpg"
work
check_eq "no policy against 127.0.0.2: the redirect to B is followed" finished "$(jfield open-redirect)"
check "...and B's bytes are saved" landed "$ROOT/images/open.jpg"
check_eq "...as is a direct link to B" finished "$(jfield open-direct)"

# ---- --deny-networks 127.0.0.2/32: refused after a redirect from an allowed host ----
before=$(connections_to_b)
job redirect "$A/_/redirect-to/r.jpg?url=$B/r.jpg"
job direct "$B/d.jpg"
job allowed "$A/ok.jpg"
t0=$(date +%s%N)
work --deny-networks 127.0.0.2/32; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "cworker --burst exits 0" 0 "$rc"
refused redirect "download_link: $A/_/redirect-to/r.jpg?url=$B/r.jpg: redirect to $B/r.jpg: connection to 127.0.0.2 refused by network policy (--deny-networks 127.0.0.2/32)"
refused direct "download_link: $B/d.jpg: connection to 127.0.0.2 refused by network policy (--deny-networks 127.0.0.2/32)"
check "no file for the refused redirect" [ ! -e "$ROOT/images/r.jpg" ]
check "no file for the refused link" [ ! -e "$ROOT/images/d.jpg" ]
check "no temporary file left" no_temp_files
check_eq "B accepted no connection (only this count's own)" $((before + 1)) "$(connections_to_b)"
check_eq "127.0.0.1 still works" finished "$(jfield allowed)"
check "...and its file landed" landed "$ROOT/images/ok.jpg"
check "the failures are permanent: not scheduled for a retry" [ "$(rcli ZCARD cq:scheduled)" = 0 ]
echo "     (3 jobs, 2 refused, in ${ms} ms)"

# The check is on the address connected to, after DNS: localhost names no network, but it
# resolves to loopback, which 'private' denies (whichever family libcurl tries first).
job by-name "http://localhost:$APORT/n.jpg"
work --deny-networks private
check_eq "a name that resolves into a denied network: failed" failed "$(jfield by-name)"
check_eq "...at the first attempt" 1 "$(jfield by-name attempts)"
check_contains "...with the policy's reason" "download_link: http://localhost:$APORT/n.jpg: connection to" "$(jfield by-name error)"
check_contains "...naming the rule" "refused by network policy (--deny-networks private: " "$(jfield by-name error)"
check "...and no file" [ ! -e "$ROOT/images/n.jpg" ]

# The same from the environment; 'none' on the command line drops it again.
job env-direct "$B/e.jpg"
CQ_DENY_NETWORKS=127.0.0.2 work
refused env-direct "download_link: $B/e.jpg: connection to 127.0.0.2 refused by network policy (\$CQ_DENY_NETWORKS 127.0.0.2)"
job env-none "$B/none.jpg"
CQ_DENY_NETWORKS=127.0.0.2 work --deny-networks none
check_eq "--deny-networks none drops \$CQ_DENY_NETWORKS" finished "$(jfield env-none)"

# ---- the default: link-local (cloud metadata) is never connected to ----
job metadata "http://169.254.169.254/latest/meta-data/m.jpg"
job metadata-redirect "$A/_/redirect-to/mr.jpg?url=http://169.254.169.254/latest/meta-data/mr.jpg"
job metadata-mapped "http://[::ffff:169.254.169.254]/mm.jpg"
work
refused metadata "download_link: http://169.254.169.254/latest/meta-data/m.jpg: connection to 169.254.169.254 refused by network policy (169.254.0.0/16, denied by default)"
refused metadata-redirect "download_link: $A/_/redirect-to/mr.jpg?url=http://169.254.169.254/latest/meta-data/mr.jpg: redirect to http://169.254.169.254/latest/meta-data/mr.jpg: connection to 169.254.169.254 refused by network policy (169.254.0.0/16, denied by default)"
check_contains "the mapped form ::ffff:169.254.169.254 is refused as 169.254.169.254" "refused by network policy (169.254.0.0/16, denied by default)" "$(jfield metadata-mapped error)"
took() { "$PY" -c 'import sys; print("%.6f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$(jfield "$1" started_at)" "$(jfield "$1" ended_at)"; }
# A connection attempt would have taken the connect timeout (10 s) or failed transiently.
# Timed from each job's start to its end in Redis, not over the worker's whole run, whose
# start-up and drain ASan on a loaded machine can stretch past 5 s.
longest=0
for id in metadata metadata-redirect metadata-mapped; do
    t=$(took "$id") || t=
    [ -n "$t" ] || { longest="none: $id has no started_at or ended_at"; break; }
    between 0 "$t" "$longest" || longest=$t
done
check "no connection was tried: each of the 3 jobs ran under 5 s (longest ${longest} s)" \
    between 0 "$longest" 5
check "the metadata job ended within 0.5 s of its start ($(took metadata) s)" "$PY" -c "import sys; sys.exit(not float(sys.argv[1]) < 0.5)" "$(took metadata)"

# ---- ::ffff:127.0.0.2, when this host's IPv6 loopback can reach 127.0.0.2 that way ----
if curl -fsS -o /dev/null "http://[::ffff:127.0.0.2]:$HPORT/_/hits" 2>/dev/null; then
    job mapped-open "http://[::ffff:127.0.0.2]:$HPORT/mo.jpg"
    work
    check_eq "::ffff:127.0.0.2 reaches B without a policy against it" finished "$(jfield mapped-open)"
    job mapped "http://[::ffff:127.0.0.2]:$HPORT/mp.jpg"
    job mapped-redirect "$A/_/redirect-to/mpr.jpg?url=http://%5B::ffff:127.0.0.2%5D:$HPORT/mpr.jpg"
    before=$(connections_to_b)
    work --deny-networks 127.0.0.2/32
    check_contains "...and is refused by --deny-networks 127.0.0.2/32" "refused by network policy (--deny-networks 127.0.0.2/32)" "$(jfield mapped error)"
    check_eq "...at the first attempt" 1 "$(jfield mapped attempts)"
    check_contains "...after a redirect too" "refused by network policy (--deny-networks 127.0.0.2/32)" "$(jfield mapped-redirect error)"
    check_eq "...and B accepted no connection" $((before + 1)) "$(connections_to_b)"
else
    echo "     (skipped: ::ffff:127.0.0.2 does not reach 127.0.0.2 here)"
fi

# ---- --allow-hosts: the link's host and every redirect's ----
job host-ok "$A/h1.jpg"
job host-redirect "$A/_/redirect-to/h2.jpg?url=http://localhost:$APORT/h2.jpg"
job host-direct "http://localhost:$APORT/h3.jpg"
work --allow-hosts 127.0.0.1
check_eq "an allowed host works" finished "$(jfield host-ok)"
refused host-redirect "download_link: $A/_/redirect-to/h2.jpg?url=http://localhost:$APORT/h2.jpg: redirect to http://localhost:$APORT/h2.jpg: host 'localhost' is not in --allow-hosts"
refused host-direct "download_link: http://localhost:$APORT/h3.jpg: host 'localhost' is not in --allow-hosts"
check "no file for the refused redirect" [ ! -e "$ROOT/images/h2.jpg" ]
check "no file for the refused link" [ ! -e "$ROOT/images/h3.jpg" ]
# *.localhost: libcurl resolves every name below localhost to loopback, so A answers them.
job pattern-ok "http://img.localhost:$APORT/p1.jpg"
job pattern-redirect "http://img.localhost:$APORT/_/redirect-to/p2.jpg?url=http://localhost:$APORT/p2.jpg"
CQ_ALLOW_HOSTS='*.LocalHost' work
check_eq "*.localhost allows img.localhost (case-insensitive)" finished "$(jfield pattern-ok)"
refused pattern-redirect "download_link: http://img.localhost:$APORT/_/redirect-to/p2.jpg?url=http://localhost:$APORT/p2.jpg: redirect to http://localhost:$APORT/p2.jpg: host 'localhost' is not in \$CQ_ALLOW_HOSTS"
job pattern-both "http://img.localhost:$APORT/_/redirect-to/p3.jpg?url=http://localhost:$APORT/p3.jpg"
CQ_ALLOW_HOSTS='*.localhost' work --allow-hosts localhost
check_eq "--allow-hosts adds to \$CQ_ALLOW_HOSTS: the redirect is followed" finished "$(jfield pattern-both)"

# ---- through a proxy: the address connected to is the proxy's ----
# httpd.py answers a proxy's absolute-form request ("GET http://host/x.jpg") as it would
# "GET /x.jpg", so A serves as a plain-HTTP forward proxy here.
job proxied "http://images.invalid/px.jpg"
job proxied-metadata "http://169.254.169.254/latest/meta-data/pm.jpg"
http_proxy=$A no_proxy= NO_PROXY= work
check_eq "through a proxy, a host name is the proxy's to resolve" finished "$(jfield proxied)"
refused proxied-metadata "download_link: http://169.254.169.254/latest/meta-data/pm.jpg: connection to 169.254.169.254 refused by network policy (169.254.0.0/16, denied by default)"
job proxy-denied "http://images.invalid/pd.jpg"
http_proxy=$A no_proxy= NO_PROXY= work --deny-networks 127.0.0.1
refused proxy-denied "download_link: http://images.invalid/pd.jpg: connection to 127.0.0.1 refused by network policy (--deny-networks 127.0.0.1)"

# ---- --content: an HTML page served as a .jpg is not an image ----
job html "$A/_/html/page.jpg"
job real-jpeg "$A/_/jpeg/real.jpg"
job fake-header "$A/generated.jpg"
job no-signature "$A/_/big/20000000/huge.bin"
work
refused html "download_link: $A/_/html/page.jpg: not an image (starts with \"<!DOCTYPE html>\"; Content-Type text/html; charset=utf-8)"
check "no page.jpg saved" [ ! -e "$ROOT/images/page.jpg" ]
check "no temporary file left" no_temp_files
check_eq "a real JPEG is kept" finished "$(jfield real-jpeg)"
"$PY" - "$SRC/tests/fixtures" "$T/tiny.jpg" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from httpd import tiny_jpeg
open(sys.argv[2], "wb").write(tiny_jpeg())
PY
check "...byte for byte" cmp "$T/tiny.jpg" "$ROOT/images/real.jpg"
check_eq "a body with a JPEG's signature is kept" finished "$(jfield fake-header)"
refused no-signature "download_link: $A/_/big/20000000/huge.bin: not an image (starts with bytes $("$PY" -c 'import hashlib; print(" ".join("%02x" % b for b in hashlib.sha256(b"huge.bin").digest()[:8]))'); Content-Type application/octet-stream)"
check "no huge.bin saved" [ ! -e "$ROOT/images/huge.bin" ]
job html-any "$A/_/html/any.jpg"
work --content any
check_eq "--content any keeps the HTML page" finished "$(jfield html-any)"
check_contains "...as it came" "<!DOCTYPE html>" "$(cat "$ROOT/images/any.jpg")"

# ---- a 2xx that is not the whole file: only 200 and 203 leave one ----
# A 206 (download_link sends no Range) is a part of the file, however its first bytes look;
# a 204 or 205 has no body (saved as an empty file with --content any). Both fail for good
# and leave nothing; a 203 (a transforming proxy's 200) is kept.
job partial "$A/_/partial/part.jpg"
work
refused partial "download_link: $A/_/partial/part.jpg: HTTP 206 Partial Content to a request without Range: not the whole file"
check "no part.jpg saved" [ ! -e "$ROOT/images/part.jpg" ]
job partial-any "$A/_/partial/part-any.jpg"
job no-content "$A/_/status/204/nocontent.jpg"
job reset-content "$A/_/status/205/reset.jpg"
job non-authoritative "$A/_/status/203/nonauth.jpg"
work --content any
refused partial-any "download_link: $A/_/partial/part-any.jpg: HTTP 206 Partial Content to a request without Range: not the whole file"
refused no-content "download_link: $A/_/status/204/nocontent.jpg: HTTP 204: no body"
refused reset-content "download_link: $A/_/status/205/reset.jpg: HTTP 205: no body"
check "--content any: no part-any.jpg, nocontent.jpg or reset.jpg saved" \
    [ ! -e "$ROOT/images/part-any.jpg" -a ! -e "$ROOT/images/nocontent.jpg" -a ! -e "$ROOT/images/reset.jpg" ]
check_eq "--content any: a 203 is kept" finished "$(jfield non-authoritative)"
check_eq "...as it came" "status 203" "$(cat "$ROOT/images/nonauth.jpg")"
check "no temporary file left" no_temp_files

# ---- usage errors: one line and the pointer to --help, exit 2, before anything starts ----
# usage_error NAME EXPECTED CMD...: CMD exits 2 and its first line is EXPECTED.
usage_error() {
    local name=$1 want=$2 out rc
    shift 2
    out=$("$@" 2>&1); rc=$?
    check_eq "$name: exit 2" 2 "$rc"
    check_eq "$name: the message" "$want" "$(head -1 <<<"$out")"
    check_eq "$name: and the pointer to --help" "Try 'cworker --help' for more information." "$(sed -n 2p <<<"$out")"
}
usage_error "host bits" "cworker: --deny-networks: '10.0.0.1/8' has host bits set: the network is 10.0.0.0/8" \
    "$BIN/cworker" --deny-networks 127.0.0.2,10.0.0.1/8
usage_error "a prefix too long" "cworker: --deny-networks: '::/200': the prefix length must be 0 to 128" \
    "$BIN/cworker" --deny-networks ::/200
usage_error "not a network" "cworker: --deny-networks: 'intranet' is not an address or a network such as 10.0.0.0/8 or fd00::/8" \
    "$BIN/cworker" --deny-networks intranet
usage_error "a bad \$CQ_DENY_NETWORKS" "cworker: \$CQ_DENY_NETWORKS: '300.1.2.3' is not an address or a network such as 10.0.0.0/8 or fd00::/8" \
    env CQ_DENY_NETWORKS=300.1.2.3 "$BIN/cworker"
usage_error "a bad host pattern" "cworker: --allow-hosts: 'img*.example.com' is not a host name, a *.domain pattern or an address (such as img.example.com, *.example.com, 192.0.2.7)" \
    "$BIN/cworker" --allow-hosts 'img*.example.com'
usage_error "a bad \$CQ_ALLOW_HOSTS" "cworker: \$CQ_ALLOW_HOSTS: 'a..b' is not a host name, a *.domain pattern or an address (such as img.example.com, *.example.com, 192.0.2.7)" \
    env CQ_ALLOW_HOSTS=a..b "$BIN/cworker"
usage_error "--content" "cworker: --content: 'jpeg' is not one of any or image" "$BIN/cworker" --content jpeg
out=$(CQ_DENY_NETWORKS=bogus "$BIN/cworker" --help 2>&1); rc=$?
check_eq "a bad variable does not stop --help" 0 "$rc"

# ---- --help says it all: the options, their variables, and the default list as the code has it ----
check_contains "--help: --deny-networks" "--deny-networks LIST" "$out"
check_contains "--help: --allow-hosts" "--allow-hosts LIST" "$out"
check_contains "--help: --content" "--content KIND" "$out"
check_contains "--help: \$CQ_DENY_NETWORKS" "\$CQ_DENY_NETWORKS" "$out"
check_contains "--help: \$CQ_ALLOW_HOSTS" "\$CQ_ALLOW_HOSTS" "$out"
defaults=$(sed -n '/^#define NETPOLICY_DEFAULT/,/[^\\]$/p' "$SRC/app/netpolicy.h" | tr -d ' \\"\n' | sed 's/^#defineNETPOLICY_DEFAULT//')
check "the default list is read from app/netpolicy.h" [ -n "$defaults" ]
flat=$(tr -s ' \n' ' ' <<<"$out")
for net in ${defaults//,/ }; do
    check_contains "--help names the default $net" "$net" "$flat"
done

finish
