#!/bin/sh
# cq-entrypoint - the ENTRYPOINT of cq's image (source: docker/entrypoint.sh).
#
#   (no arguments)             cworker, with the options the environment sets (below)
#   -c 8 high default          arguments that start with "-": cworker -c 8 high default
#   cworker ARG...             cworker with the environment's options, then ARG...
#   cenqueue noop, cqctl info, sh, ...   run as given (exec)
#
# For cworker these variables become options. They go before the command line's own, so an
# option given on the command line wins (cworker takes the last of a repeated option):
#   CQ_CONCURRENCY=N           --concurrency N
#   CQ_DOWNLOAD_ROOT=DIR       --download-root DIR (default: the working directory, /var/lib/cq)
#   CQ_LOG_LEVEL=LEVEL         --log-level LEVEL (error, warn, info, debug)
#   CQ_LOG_FORMAT=FORMAT       --log-format FORMAT (text, json)
#   CQ_SHUTDOWN_TIMEOUT=D      --shutdown-timeout D (keep it below docker's stop timeout)
#   CQ_QUEUES="high default"   the queues, in priority order (spaces or commas between); only
#                              when the command line names no queue
# CQ_REDIS_URL, CQ_PREFIX, CQ_TLS_*, CQ_PLUGINS, CQ_DENY_NETWORKS and CQ_ALLOW_HOSTS need
# nothing here: the programs read them.
# cworker ends up as this container's process (exec): docker's SIGTERM reaches it directly, or
# through docker's init (compose: init: true).
set -eu

case ${1-} in
    '' | -*) set -- cworker "$@" ;;
esac
[ "$1" = cworker ] || exec "$@"
shift

# Does the command line name a queue: an argument that is neither an option nor its value?
# The options that take a value are those cworker --help shows with one ("--url URL").
queues=false
if [ -n "${CQ_QUEUES-}" ]; then
    takes=" $(cworker --help 2>/dev/null |
        sed -n 's/^ *\(-[A-Za-z]\)\{0,1\}\(, \)\{0,1\}\(--[a-z][a-z-]*\) [A-Z].*/\1 \3/p' |
        tr '\n' ' ') "
    value=false rest=false
    for a in "$@"; do
        if $rest; then queues=true; break; fi
        if $value; then value=false; continue; fi
        case $a in
            --) rest=true ;;
            --*=*) ;;
            -*) case $takes in *" $a "*) value=true ;; esac ;;
            *) queues=true; break ;;
        esac
    done
fi
if ! $queues && [ -n "${CQ_QUEUES-}" ]; then
    set -f   # queue names are not globs
    old_ifs=$IFS
    IFS=' ,'
    # shellcheck disable=SC2086 # split on purpose
    set -- "$@" $CQ_QUEUES
    IFS=$old_ifs
    set +f
fi

[ -z "${CQ_SHUTDOWN_TIMEOUT-}" ] || set -- --shutdown-timeout "$CQ_SHUTDOWN_TIMEOUT" "$@"
[ -z "${CQ_LOG_FORMAT-}" ] || set -- --log-format "$CQ_LOG_FORMAT" "$@"
[ -z "${CQ_LOG_LEVEL-}" ] || set -- --log-level "$CQ_LOG_LEVEL" "$@"
[ -z "${CQ_DOWNLOAD_ROOT-}" ] || set -- --download-root "$CQ_DOWNLOAD_ROOT" "$@"
[ -z "${CQ_CONCURRENCY-}" ] || set -- --concurrency "$CQ_CONCURRENCY" "$@"
exec cworker "$@"
