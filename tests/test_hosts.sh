#!/usr/bin/env bash
# test_hosts.sh - many hosts, no single worker host a point of failure. Redis, an image server
# (with the fake Imgur API), a producer and three worker hosts, each in a network namespace of
# its own, wired to each other through one bridge and nothing else:
#   (a) mid-run, one worker host's link is cut: its in-flight jobs are recovered once its
#       lease runs out and finish on the other hosts; when the link is back, the host's
#       workers reconnect and register again, and no job recorded finished before the cut
#       runs again;
#   (b) a worker host is frozen (SIGSTOP of every process in it): the same, and it rejoins
#       after SIGCONT;
#   (c) every image arrives: the union of the hosts' download roots (one directory each,
#       standing for their disks) holds every link's file with the right bytes.
# Jobs that legitimately ran twice (at-least-once: in flight on the cut or frozen host when its
# lease ran out) are counted and reported; times are printed as "# measured: ..." lines.
#
# Topology (every name carries this shell's pid, so that runs in parallel never meet):
#   cqt-PID-net             the parent: bridge br0, one veth peer v-HOST per host on it
#   cqt-PID-redis   .1      redis-server on 10.77.0.1:6379 (and a Unix socket in $T, the
#                           test's own view of Redis: rcli)
#   cqt-PID-img     .2      tests/fixtures/httpd.py --generate --latency and fake_imgur.py,
#                           both on 10.77.0.2 (through tests/fixtures/listen_on.py)
#   cqt-PID-prod    .3      cproducer --wait against the fake Imgur API
#   cqt-PID-w1..w3  .11-13  two cworker processes each (hostname w1..w3 in a UTS namespace
#                           of their own, so that worker ids name the host), download root
#                           $T/disk-wN
# Each host has eth0 (10.77.0.X/24, its veth end) and lo, both up, and no default route:
# nothing leaves the parent namespace. Everything is removed by the EXIT trap, whatever the
# outcome: the processes in the namespaces first, then the namespaces (and with them the
# veths and the bridge). Needs root; fails with FATAL when a namespace cannot be made.
#
# HOSTS_LATENCY (default 1 s) is the image server's delay per request: with less, a run of
# 12 download slots ends before the test can reliably cut or freeze a host while it holds
# jobs. HOSTS_KEEP=DIR copies the run's files (logs, disks, id lists) to DIR at the end.
. "$(dirname "$0")/lib.sh"

TAG=cqt-$$
NET=10.77.0
RPORT=6379
HOSTS=(redis img prod w1 w2 w3)
WHOSTS=(w1 w2 w3)
declare -A ADDR=([redis]=$NET.1 [img]=$NET.2 [prod]=$NET.3 [w1]=$NET.11 [w2]=$NET.12 [w3]=$NET.13)
SIZE=8000
LATENCY=${HOSTS_LATENCY:-1}   # per request: a phase lasts long enough to cut it mid-run
T0=$(date +%s%N)

ns() { echo "$TAG-$1"; }
fatal() { echo "FATAL: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
step() {   # a progress line: seconds since the start, the UTC time (as in the worker logs)
    printf '# [%6.1fs %s] %s\n' "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" \
        "$(date -u +%H:%M:%S.%3N)" "$*"
}
measured() { echo "# measured: $*"; }

# ---- the namespaces, and their removal ----

our_namespaces() { ip netns list 2>/dev/null | awk -v p="$TAG-" 'index($1, p) == 1 {print $1}'; }
ns_pids() { local n; for n in $(our_namespaces); do ip netns pids "$n" 2>/dev/null; done; }
no_ns_pids() { [ -z "$(ns_pids)" ]; }

# Every process in our namespaces (thawed, so that SIGTERM is seen; SIGKILL if it lingers),
# then the namespaces. Runs before lib.sh's cleanup, which reaps our children and removes $T.
hosts_cleanup() {
    local pids n
    pids=$(ns_pids)
    if [ -n "$pids" ]; then
        kill -CONT $pids 2>/dev/null
        kill -TERM $pids 2>/dev/null
        wait_for 10 no_ns_pids || kill -KILL $(ns_pids) 2>/dev/null
        wait_for 10 no_ns_pids
    fi
    for n in $(our_namespaces); do ip netns del "$n" 2>/dev/null; done
}
hosts_left() {
    if [ -n "$(our_namespaces)" ]; then
        echo "FATAL: namespaces left behind: $(our_namespaces | tr '\n' ' ')"
        exit 1
    fi
}
trap 'hosts_cleanup; cleanup; hosts_left' EXIT
trap 'exit 130' INT TERM HUP

[ "$(id -u)" = 0 ] || fatal "network namespaces need root (this runs as uid $(id -u))"
command -v ip >/dev/null || fatal "no 'ip' command (iproute2)"
command -v unshare >/dev/null || fatal "no 'unshare' command (util-linux)"

mkns() {
    ip netns add "$1" || fatal "cannot make network namespace $1 (ip netns add)"
    ip -n "$1" link set lo up || fatal "cannot bring up lo in $1"
}

step "making the hosts: parent $TAG-net with bridge br0; ${HOSTS[*]} on $NET.0/24"
mkns "$(ns net)"
ip -n "$(ns net)" link add br0 type bridge || fatal "cannot make a bridge in $(ns net)"
ip -n "$(ns net)" link set br0 up || fatal "cannot bring up br0"
for h in "${HOSTS[@]}"; do
    mkns "$(ns "$h")"
    ip -n "$(ns "$h")" link add eth0 type veth peer name "v-$h" netns "$(ns net)" ||
        fatal "cannot make the veth pair of $h"
    ip -n "$(ns net)" link set "v-$h" master br0 || fatal "cannot attach v-$h to br0"
    ip -n "$(ns net)" link set "v-$h" up || fatal "cannot bring up v-$h"
    ip -n "$(ns "$h")" addr add "${ADDR[$h]}/24" dev eth0 || fatal "cannot address $h"
    ip -n "$(ns "$h")" link set eth0 up || fatal "cannot bring up eth0 of $h"
done
routes_out=
for h in "${HOSTS[@]}" net; do
    routes_out+=$(ip -n "$(ns "$h")" route show default)
    ip -n "$(ns "$h")" route get 1.1.1.1 >/dev/null 2>&1 && routes_out+=" $h reaches 1.1.1.1"
done
check_eq "no host has a route out of the parent namespace" "" "$routes_out"
step "topology: $(for h in "${HOSTS[@]}"; do printf '%s=%s ' "$h" "${ADDR[$h]}"; done)on br0 in $(ns net)"

# ---- Redis, the image server and the fake Imgur API ----

step "redis-server on $NET.1:$RPORT (host redis)"
mkdir -p "$T/redis"
ip netns exec "$(ns redis)" redis-server --bind "$NET.1" --port "$RPORT" --protected-mode no \
    --unixsocket "$RSOCK" --unixsocketperm 700 --dir "$T/redis" --logfile "$T/redis/log" \
    --save "" --appendonly yes --maxmemory-policy noeviction &
RPID=$!
PIDS+=("$RPID")
wait_for 10 redis_answers || { cat "$T/redis/log"; fatal "redis-server did not start in $(ns redis)"; }
export CQ_REDIS_URL=redis://$NET.1:$RPORT
tcp_ping() { [ "$(ip netns exec "$(ns "$1")" redis-cli -h "$NET.1" -p "$RPORT" ping 2>/dev/null)" = PONG ]; }
for h in prod "${WHOSTS[@]}"; do
    wait_for 10 tcp_ping "$h" || fatal "host $h cannot reach Redis at $NET.1:$RPORT"
done

step "httpd.py --generate --latency $LATENCY and fake_imgur.py on $NET.2 (host img)"
ip netns exec "$(ns img)" "$PY" "$SRC/tests/fixtures/listen_on.py" "$NET.2" \
    "$SRC/tests/fixtures/httpd.py" --port-file "$T/httpd.port" --generate --size "$SIZE" \
    --latency "$LATENCY" 2>"$T/httpd.log" &
PIDS+=("$!")
up_or_exited() { test -s "$1" || exited "$2"; }   # PORT_FILE PID
wait_for 20 up_or_exited "$T/httpd.port" "$!"
test -s "$T/httpd.port" || { cat "$T/httpd.log"; fatal "httpd.py did not start"; }
HBASE=http://$NET.2:$(cat "$T/httpd.port")
ip netns exec "$(ns img)" "$PY" "$SRC/tests/fixtures/listen_on.py" "$NET.2" \
    "$SRC/tests/fixtures/fake_imgur.py" --port-file "$T/fake.port" --image-base "$HBASE/" \
    2>"$T/fake.log" &
PIDS+=("$!")
wait_for 20 up_or_exited "$T/fake.port" "$!"
test -s "$T/fake.port" || { cat "$T/fake.log"; fatal "fake_imgur.py did not start"; }
API=http://$NET.2:$(cat "$T/fake.port")/3/gallery/
# hits: {path: requests} of the image server, asked from the image host (its latency too).
hits_json() { ip netns exec "$(ns img)" curl -fsS --max-time 30 "$HBASE/_/hits"; }
hits_json >/dev/null || fatal "the image server does not answer on $HBASE"

# ---- the workers: two cworker processes a host, one download root a host ----
# A lease of 5 s, not the default 10: a cut or frozen host's jobs come back 5 s sooner each
# time, and a live worker's heartbeat (every 2 s) still fits in it twice.

declare -A WPID
start_worker() {   # HOST N
    local h=$1
    ip netns exec "$(ns "$h")" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" \
        "$BIN/cworker" -c 2 --download-root "$T/disk-$h" --shutdown-timeout 3s --lease 5s \
        >>"$T/$h-$2.log" 2>&1 &
    WPID[$h-$2]=$!
    PIDS+=("$!")
}
wids_of() { rcli SMEMBERS cq:workers | grep "^$1\." | sort; }
registered_on() { [ "$(wids_of "$1" | wc -l)" = "$2" ]; }
step "two cworker -c 2 on each of ${WHOSTS[*]} (CQ_REDIS_URL=$CQ_REDIS_URL)"
for h in "${WHOSTS[@]}"; do start_worker "$h" 1; start_worker "$h" 2; done
wait_for 30 workers_are 6 || { tail -n 5 "$T"/w*.log; fatal "the 6 workers did not register"; }
declare -A WIDS
for h in "${WHOSTS[@]}"; do
    WIDS[$h]=$(wids_of "$h" | tr '\n' ' ')
    check "host $h registered its 2 workers (${WIDS[$h]})" registered_on "$h" 2
done

# ---- helpers over the jobs of a run ----

# inflight_of HOST: the ids of the records in the in-flight lists of the host's workers, one
# a line, read in one script (atomic).
inflight_of() {
    local keys=() w
    for w in ${WIDS[$1]}; do keys+=("cq:inflight:$w:default"); done
    rcli EVAL "local r={} for _,k in ipairs(KEYS) do for _,v in ipairs(redis.call('LRANGE',k,0,-1)) do r[#r+1]=cjson.decode(v).id end end return r" \
        "${#keys[@]}" "${keys[@]}" | sort
}
inflight_count() { inflight_of "$1" | grep -c .; }
# A host's in-flight set read twice 100 ms apart and the same (no command from the host still
# under way in Redis).
stable_inflight() {   # HOST OUT
    local a b
    a=$(inflight_of "$1")
    sleep 0.1
    b=$(inflight_of "$1")
    [ "$a" = "$b" ] && printf '%s\n' "$a" | grep . >"$2"
}
# ids_with STATUS FILE: the ids of FILE whose status is STATUS, one a line.
ids_with() {
    local ids
    mapfile -t ids <"$2"
    rcli EVAL "local r={} for i,k in ipairs(KEYS) do if redis.call('HGET',k,'status')==ARGV[1] then r[#r+1]=ARGV[i+1] end end return r" \
        "${#ids[@]}" $(sed 's/^/cq:job:/' "$2") "$1" "${ids[@]}" | sort
}
count_with() { ids_with "$1" "$2" | grep -c .; }
all_with() { [ "$(count_with "$1" "$2")" = "$(grep -c . "$2")" ]; }
at_least_finished() { [ "$(count_with finished "$1")" -ge "$2" ]; }
none_registered() { [ -z "$(wids_of "$1")" ]; }
all_registered_again() {
    local w
    for w in ${WIDS[$1]}; do
        [ "$(rcli SISMEMBER cq:workers "$w")" = 1 ] || return 1
        [ "$(rcli EXISTS "cq:worker:$w:lease")" = 1 ] || return 1
    done
}
# outcomes_dropped HOST FILE: the host's logs say, for every id of FILE, that its outcome was
# not recorded (another worker had recovered the job): its late run of the job has ended.
outcomes_dropped() {
    local id
    while read -r id; do
        grep -q "$id: outcome not recorded again" "$T/$1"-*.log || return 1
    done <"$2"
}

# run_producer NAME ARGS...: cproducer --wait on the producer host, in the background (PPID
# set); its job ids and links (-vv) go to $T/NAME.jobs ("ID LINK" a line) once enqueued.
run_producer() {
    local name=$1
    shift
    ip netns exec "$(ns prod)" env IMGUR_CLIENT_ID=test-client "$BIN/cproducer" \
        --api-url "$API" --dir images --wait --wait-timeout 300s -vv "$@" \
        >"$T/$name.out" 2>"$T/$name.err" &
    PPID_=$!
    PIDS+=("$PPID_")
}
enqueued() { [ "$(grep -cE 'job [0-9a-f-]{36} ' "$T/$1.err")" = "$2" ]; }
jobs_of() {   # NAME: ID LINK lines -> $T/NAME.jobs, ids alone -> $T/NAME.ids
    grep -oE 'job [0-9a-f-]{36} [^ ]+$' "$T/$1.err" | cut -d' ' -f2- >"$T/$1.jobs"
    cut -d' ' -f1 "$T/$1.jobs" >"$T/$1.ids"
}
all_ids() { cat "$T"/run-*.ids 2>/dev/null; }

# log_ms HOST PATTERN: the time (Unix ms) of the last line of the host's worker logs that
# holds PATTERN (log lines start with an ISO UTC time, e.g. 2026-12-01T22:30:00.143Z).
log_ms() {
    local t
    t=$(grep -h -- "$2" "$T/$1"-*.log | sort | tail -n 1 | cut -d' ' -f1)
    [ -n "$t" ] && date -d "$t" +%s%3N
}
# outage_log HOST: what the host's workers said about the outage (lost, back, dropped).
outage_log() {
    grep -h -e "lost redis" -e "redis is back" -e "not recorded again" -e "recovered" \
        "$T/$1"-*.log | sort | sed 's/: the job was no longer.*//; s/^/     /'
}

# recovered_elsewhere HOST FILE NAME: after HOST lost its workers' leases, every job of FILE
# (what HOST held in flight) is finished, counted a recovery and was run by another host.
recovered_elsewhere() {
    local id w r ok=0
    while read -r id; do
        w=$(jfield "$id" worker)
        r=$(jfield "$id" recovered)
        [ "$(jfield "$id")" = finished ] && [ "${r:-0}" -ge 1 ] && [ "${w%%.*}" != "$1" ] &&
            ok=$((ok + 1))
    done <"$2"
    check_eq "$1's in-flight jobs at the $3 were recovered and finished on other hosts" \
        "$(grep -c . "$2")" "$ok"
}

# after_outage HOST WHAT T_OUTAGE RUN: the outage of HOST (cut or freeze) began at T_OUTAGE;
# wait for its workers to be recovered by the others, and for every job of RUN to finish.
after_outage() {
    local h=$1 what=$2 t0=$3 run=$4 t
    wait_for 10 stable_inflight "$h" "$T/$what-inflight"
    step "$h held $(grep -c . "$T/$what-inflight") jobs in flight at the $what"
    check "$h had jobs in flight at the $what" test -s "$T/$what-inflight"
    wait_for 60 none_registered "$h"
    t=$(now_ms)
    measured "$what -> $h's jobs requeued (its workers recovered by the others): $((t - t0)) ms"
    check "$h's workers recovered within 25 s of the $what ($((t - t0)) ms)" [ $((t - t0)) -lt 25000 ]
    wait_for 90 all_with finished "$T/$run.ids"
    t=$(now_ms)
    measured "$what -> every job of $run finished on the other hosts: $((t - t0)) ms"
    check_eq "every job of $run finished during the $what" "$(grep -c . "$T/$run.ids")" \
        "$(count_with finished "$T/$run.ids")"
    recovered_elsewhere "$h" "$T/$what-inflight" "$what"
}

# rejoined HOST WHAT EVENT T_BACK: the host is back (EVENT: link up, or thaw) since T_BACK:
# its workers register again (same ids), and their late runs of the recovered jobs end
# without being recorded (the cut host's when TCP retransmits the image server's answers, or
# at the jobs' 60 s timeout).
rejoined() {
    local h=$1 what=$2 event=$3 t0=$4 t
    wait_for 60 all_registered_again "$h"
    t=$(now_ms)
    measured "$event -> $h's 2 workers registered again: $((t - t0)) ms"
    check "$h's workers registered again with live leases (${WIDS[$h]})" all_registered_again "$h"
    wait_for 120 outcomes_dropped "$h" "$T/$what-inflight"
    check "$h's late runs of its recovered jobs ended, not recorded again" \
        outcomes_dropped "$h" "$T/$what-inflight"
    t=$(log_ms "$h" "not recorded again") &&
        measured "$event -> $h's late runs ended, outcomes dropped (last at): $((t - t0)) ms"
    outage_log "$h"
}

# ---- (a) a worker host's link cut mid-run ----

: >"$T/cut-inflight"
: >"$T/freeze-inflight"
step "(a) host prod: cproducer --page 0 --albums expand (62 links) --wait"
run_producer run-a --page 0 --pages 1 --albums expand
PA=$PPID_
wait_for 60 enqueued run-a 62 || { cat "$T/run-a.err"; fatal "cproducer did not enqueue 62 jobs"; }
jobs_of run-a
cut_ready() { at_least_finished "$T/run-a.ids" 10 && [ "$(inflight_count w1)" -ge 1 ]; }
wait_for 60 cut_ready || fatal "no moment with 10 jobs finished and w1 busy"
all_ids >"$T/all.ids"
ids_with finished "$T/all.ids" >"$T/before-cut"
t_cut=$(now_ms)
ip -n "$(ns w1)" link set eth0 down || fatal "cannot cut w1's link"
step "cut w1's link (ip -n $(ns w1) link set eth0 down) with $(grep -c . "$T/before-cut") jobs recorded finished"
after_outage w1 cut "$t_cut" run-a
t=$(log_ms w1 "lost redis") && measured "cut -> w1's last worker logged 'lost redis': $((t - t_cut)) ms"
t_up=$(now_ms)
ip -n "$(ns w1)" link set eth0 up || fatal "cannot bring w1's link back"
step "w1's link back up (ip -n $(ns w1) link set eth0 up)"
rejoined w1 cut "link up" "$t_up"
check "w1's workers say Redis is back" grep -q "redis is back after" "$T/w1-1.log" "$T/w1-2.log"
wait "$PA"
check_eq "cproducer (a) exited 0 across the cut" 0 "$?"
check_contains "cproducer (a) printed its time" "Took " "$(cat "$T/run-a.out")"

# ---- (b) a worker host frozen mid-run ----

step "(b) host prod: cproducer --page 1 (34 links) --wait"
run_producer run-b --page 1 --pages 1
PB=$PPID_
wait_for 60 enqueued run-b 34 || { cat "$T/run-b.err"; fatal "cproducer did not enqueue 34 jobs"; }
jobs_of run-b
freeze_ready() { at_least_finished "$T/run-b.ids" 2 && [ "$(inflight_count w2)" -ge 1 ]; }
wait_for 60 freeze_ready || fatal "no moment with 2 jobs of run (b) finished and w2 busy"
all_ids >"$T/all.ids"
ids_with finished "$T/all.ids" >"$T/before-freeze"
frozen=$(ip netns pids "$(ns w2)" | tr '\n' ' ')
t_freeze=$(now_ms)
ip netns pids "$(ns w2)" | xargs -r kill -STOP
step "froze host w2 (SIGSTOP to $frozen) with $(grep -c . "$T/before-freeze") jobs recorded finished"
after_outage w2 freeze "$t_freeze" run-b
t_thaw=$(now_ms)
ip netns pids "$(ns w2)" | xargs -r kill -CONT
step "thawed w2 (SIGCONT)"
rejoined w2 freeze thaw "$t_thaw"
wait "$PB"
check_eq "cproducer (b) exited 0 across the freeze" 0 "$?"
# Run (b) began once w1 was back and idle: it took its share.
ran_on() {   # HOST FILE: how many jobs of FILE the host's workers ran to their recorded end
    local ids
    mapfile -t ids <"$2"
    jfields_of worker "${ids[@]}" | grep -c "^$1\\."
}
w1_b=$(ran_on w1 "$T/run-b.ids")
measured "the rejoined host w1 ran $w1_b of the 34 jobs of run (b)"
check "the rejoined host w1 ran jobs of run (b) ($w1_b)" [ "$w1_b" -ge 1 ]

# ---- every worker stops cleanly ----

step "SIGTERM to the 6 workers"
for k in "${!WPID[@]}"; do kill -TERM "${WPID[$k]}"; done
stops=0
for k in "${!WPID[@]}"; do wait "${WPID[$k]}" && stops=$((stops + 1)); done
check_eq "the 6 workers exited 0" 6 "$stops"
check_eq "and deregistered" 0 "$(rcli SCARD cq:workers)"

# ---- (c) what arrived, and what ran twice ----

step "checking Redis, the three disks and the logs"
cat "$T/run-a.jobs" "$T/run-b.jobs" >"$T/jobs"
all_ids >"$T/all.ids"
N=$(grep -c . "$T/all.ids")
check_eq "96 jobs in all (62 + 34)" 96 "$N"
check_eq "every job finished" "$N" "$(count_with finished "$T/all.ids")"
check_eq "queue empty" 0 "$(rcli LLEN cq:queue:default)"
check_eq "nothing in flight" "" "$(rcli --scan --pattern 'cq:inflight:*')"
check_eq "nothing scheduled" 0 "$(rcli ZCARD cq:scheduled)"
check_eq "no failed job" 0 "$(rcli ZCARD cq:failed)"
check_eq "no dead record" 0 "$(rcli LLEN cq:dead)"

hits_json >"$T/hits.json"
cat "$T"/w?-?.log >"$T/all.log"
# One line a job: ID NAME COPIES GOOD_COPIES DOWNLOADS FINISHED_LINES DROPPED_LINES.
"$PY" - "$SRC/tests/fixtures" "$T" "$SIZE" >"$T/table" <<'PY'
import json, os, re, sys
sys.path.insert(0, sys.argv[1])
from httpd import generate_bytes
t, size = sys.argv[2], int(sys.argv[3])
hits = json.load(open(os.path.join(t, "hits.json")))
log = open(os.path.join(t, "all.log"), errors="replace").read()
finished = {}
for m in re.finditer(r"download_link ([0-9a-f-]{36}) finished in", log):
    finished[m.group(1)] = finished.get(m.group(1), 0) + 1
dropped = {}
for m in re.finditer(r"download_link ([0-9a-f-]{36}): outcome not recorded again", log):
    dropped[m.group(1)] = dropped.get(m.group(1), 0) + 1
for line in open(os.path.join(t, "jobs")):
    jid, link = line.split()
    name = link.rsplit("/", 1)[1]
    copies = good = 0
    for h in ("w1", "w2", "w3"):
        p = os.path.join(t, "disk-" + h, "images", name)
        if os.path.exists(p):
            copies += 1
            good += open(p, "rb").read() == generate_bytes(name, size)
    print(jid, name, copies, good, hits.get("/" + name, 0), finished.get(jid, 0),
          dropped.get(jid, 0))
PY
in_set() { awk 'NR == FNR {s[$1] = 1; next} ($1 in s)' "$1" "$T/table"; }
check_eq "every link's file is on some host's disk" 0 "$(awk '$3 < 1' "$T/table" | wc -l)"
check_eq "every copy of every file holds the right bytes" 0 "$(awk '$3 != $4' "$T/table" | wc -l)"
check_eq "no other files on the disks" "$(awk '{n += $3} END {print n}' "$T/table")" \
    "$(find "$T"/disk-w? -type f | wc -l)"
check_eq "no temporary files" "" "$(find "$T"/disk-w? -name '.*' -type f)"
check_eq "every job logged finished exactly once, across all workers" 0 \
    "$(awk '$6 != 1' "$T/table" | wc -l)"
before_cut=$(in_set "$T/before-cut")
check_eq "no job recorded finished before the cut ran again (1 download, 1 copy each)" "" \
    "$(awk '$3 != 1 || $5 != 1' <<<"$before_cut")"
grep -vxF -f "$T/cut-inflight" "$T/before-freeze" >"$T/before-freeze-only"
check_eq "no job recorded finished before the freeze ran again (but w1's, run twice at the cut)" "" \
    "$(in_set "$T/before-freeze-only" | awk '$3 != 1 || $5 != 1')"
twice=$(awk '$5 > 1' "$T/table" | wc -l)
copies2=$(awk '$3 > 1' "$T/table" | wc -l)
dropped=$(awk '{n += $7} END {print n}' "$T/table")
unexpected=$(awk '$5 > 1' "$T/table" | cut -d' ' -f1 |
    grep -vxF -f <(cat "$T/cut-inflight" "$T/freeze-inflight"))
check_eq "only jobs in flight on the cut or frozen host ran twice" "" "$unexpected"
measured "duplicates: $twice of $N jobs downloaded twice ($(grep -c . "$T/cut-inflight") in flight" \
    "on w1 at the cut, $(grep -c . "$T/freeze-inflight") on w2 at the freeze); $copies2 files on" \
    "two disks; $dropped late outcomes dropped"
measured "recoveries: $(rcli HGET cq:stats recovered) jobs (cq:stats recovered)"
for h in "${WHOSTS[@]}"; do
    n=$(cat "$T/$h"-?.log | grep -c "finished in")
    measured "host $h: $n jobs recorded finished, $(find "$T/disk-$h" -type f | wc -l) files on its disk"
done
measured "run time: $(( ($(date +%s%N) - T0) / 1000000 )) ms in all"
[ -n "${HOSTS_KEEP:-}" ] && cp -r "$T" "$HOSTS_KEEP"
finish
