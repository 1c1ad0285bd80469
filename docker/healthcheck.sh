#!/bin/sh
# cq-healthcheck - the HEALTHCHECK of cq's image (source: docker/healthcheck.sh).
#
# Healthy (exit 0) when every cworker process of this container holds a live lease in Redis:
# a worker renews cq:worker:<id>:lease every 2 s, and the lease expires 10 s after the last
# renewal (a worker stuck, cut off from Redis, or recovered by the others as dead). Workers
# are looked up with `cqctl workers --json` (the members of cq:workers, each with its host,
# pid and lease) by this container's hostname and cworker's pid, which is how cworker names
# itself (<hostname>.<pid>.<4 hex digits>). The processes are this container's: those in its
# mount namespace (it may see others' with the host's pid namespace).
#
# That host and pid name one worker when the container has a hostname of its own (Docker's
# default: its id). Containers on the host's network share the host's name and, each with
# its own pid namespace, often the pid too (1 for cworker without an init): when several
# registered workers have this host and pid, which one is this container's cannot be told,
# so it is healthy only while they all hold their leases, and says so (with the host's
# network, give the containers the host's pid namespace too: pids are unique there).
#
# cqctl connects as cworker does: with its -u/--url, --prefix and --tls-* options when its
# command line has them, else from CQ_REDIS_URL, CQ_PREFIX and CQ_TLS_* (the container's
# environment). Unhealthy (exit 1) when no cworker runs here, when Redis cannot be asked, or
# when a worker is not registered or its lease is gone. One line on stdout says which
# (docker inspect shows it).
set -eu

host=$(cat /proc/sys/kernel/hostname)
mnt=$(readlink /proc/self/ns/mnt)
found=false

for dir in /proc/[0-9]*; do
    # read is a builtin: no fork per process (the host's pid namespace may hold thousands)
    read -r comm 2>/dev/null <"$dir/comm" || continue
    [ "$comm" = cworker ] || continue
    [ "$(readlink "$dir/ns/mnt" 2>/dev/null)" = "$mnt" ] || continue
    pid=${dir#/proc/}
    found=true

    # cworker's own connection options, when its command line has them (else cqctl reads
    # CQ_REDIS_URL, CQ_PREFIX and CQ_TLS_* from the environment, as cworker did)
    set --
    next=
    args=$(tr '\0' '\n' <"$dir/cmdline") || continue   # it just exited
    while IFS= read -r a; do
        if [ -n "$next" ]; then set -- "$@" "$next" "$a"; next=; continue; fi
        case $a in
            -u | --url | --prefix | --tls-ca | --tls-cert | --tls-key) next=$a ;;
            --url=* | --prefix=* | --tls-ca=* | --tls-cert=* | --tls-key=*) set -- "$@" "$a" ;;
            -u?*) set -- "$@" -u "${a#-u}" ;;
            --) break ;;
        esac
    done <<ARGS
$args
ARGS

    if ! json=$(cqctl "$@" workers --json 2>&1); then
        echo "unhealthy: cworker $pid: cqctl workers: $json"
        exit 1
    fi
    printf '%s\n' "$json" | awk -v host="$host" -v pid="$pid" '
        # val(record, key): the value of "key": in the record (a string without its quotes)
        function val(s, k,    i, r) {
            i = index(s, "\"" k "\":")
            if (i == 0) return ""
            r = substr(s, i + length(k) + 3)
            if (substr(r, 1, 1) == "\"") {
                r = substr(r, 2)
                return substr(r, 1, index(r, "\"") - 1)
            }
            match(r, /^[^,}\]]*/)
            return substr(r, 1, RLENGTH)
        }
        { doc = doc $0 }
        END {
            n = split(doc, recs, /\{"id":/)
            for (i = 2; i <= n; i++) {
                r = "\"id\":" recs[i]
                if (val(r, "host") != host || val(r, "pid") != pid) continue
                k++
                id = val(r, "id")
                ids = ids (k > 1 ? " " : "") id
                if (val(r, "lease") != "true") gone = gone (gone != "" ? " " : "") id
                age = val(r, "heartbeat_age")
            }
            if (k == 0) {
                printf "unhealthy: cworker %s is not registered in Redis", pid
                printf " (no worker %s.%s.* there)\n", host, pid
                exit 1
            }
            if (k > 1) {   # another container has this host name and pid too
                printf "%s: %d workers %s.%s.*, one of them this cworker, ", \
                    gone != "" ? "unhealthy" : "healthy", k, host, pid
                if (gone != "") printf "and these have no lease: %s\n", gone
                else printf "all hold their leases: %s\n", ids
                exit gone != ""
            }
            if (gone != "") {
                printf "unhealthy: worker %s (pid %s): its lease is gone, ", id, pid
                printf "last heartbeat %.1fs ago\n", age
                exit 1
            }
            printf "healthy: worker %s (pid %s) holds its lease, last heartbeat %.1fs ago\n", \
                id, pid, age
        }' || exit 1
done

if ! $found; then
    echo "unhealthy: no cworker runs in this container"
    exit 1
fi
