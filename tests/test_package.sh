#!/usr/bin/env bash
# test_package.sh BUILD_DIR - the Debian package as an admin gets it. Builds cq in a build
# directory of its own (-DCMAKE_INSTALL_PREFIX=/usr, no tests), makes the .deb with
# `cpack -G DEB` and checks its fields and files; then installs it with apt into a fresh
# Debian 12 root (tests/fixtures/bookworm_rootfs.sh, extracted under $T), so that apt resolves
# its Depends from Debian's mirror. There: the programs run, postinst made the user cq, a
# worker started as systemd would start cworker@high:default (the unit's ExecStart and
# environment file, as the user cq) runs jobs from a Redis and an HTTP server on this host
# and leaves its download in /var/lib/cq; `systemd-analyze verify` finds nothing to say of the
# unit; a reinstall keeps an edited /etc/cq/cworker.env; a purge removes the package.
#
# Needs root (chroot, mounts), debootstrap (once: the root is cached), dpkg-dev
# (dpkg-shlibdeps), file, systemd (systemd-analyze), man-db, and the network to the Debian
# mirror apt uses here. Each command in the root runs in a mount namespace of its own
# (unshare -m), where /proc, /dev and apt's caches are mounted: they vanish with it, so
# nothing stays mounted whatever happens. apt's downloads and lists are kept in
# $CQ_ROOTFS_CACHE/apt (default /var/cache/cq-tests/apt) for the next run.
# BUILD_DIR is not used (the test needs a build with the prefix /usr): lib.sh wants it.
. "$(dirname "$0")/lib.sh"

fatal() { echo "FATAL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fatal "test_package.sh needs root: it chroots into a Debian root and mounts /proc there"
need() { command -v "$1" >/dev/null || fatal "$1 is missing (Debian package: $2)"; }
need debootstrap debootstrap
need dpkg-deb dpkg
need dpkg-shlibdeps dpkg-dev
need file file
need cpack cmake
need unshare util-linux
need findmnt util-linux
need flock util-linux
need chroot coreutils
need systemd-analyze systemd
need man man-db

START=$(date +%s)
phase() { echo "     ($1: $(( $(date +%s) - START ))s since the start)"; }

# ---- the package ----
B=$T/build
{ cmake -S "$SRC" -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DCQ_BUILD_TESTS=OFF \
      -DCQ_BUILD_EXAMPLES=OFF && cmake --build "$B" -j"$(nproc)"; } >"$T/build.log" 2>&1 ||
    { tail -30 "$T/build.log"; fatal "the build for the package failed (its log's end is above)"; }
(cd "$B" && cpack -G DEB) >"$T/cpack.log" 2>&1 ||
    { cat "$T/cpack.log"; fatal "cpack -G DEB failed"; }
phase "built the .deb"
VERSION=$(sed -n 's/^project(cq VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
API=$(sed -n 's/^#define CQ_API_VERSION  *\([0-9]*\).*/\1/p' "$SRC/include/cq/cq.h")
ARCH=$(dpkg --print-architecture)
DEB=$B/cq_${VERSION}-1_$ARCH.deb
check "cpack -G DEB makes $(basename "$DEB")" [ -f "$DEB" ] || { ls "$B"; fatal "no package"; }
check_eq "...and nothing else" 1 "$(find "$B" -maxdepth 1 -name '*.deb' | wc -l)"
check_eq "dpkg-shlibdeps had nothing to warn of" "" "$(grep -i 'warning' "$T/cpack.log")"

field() { dpkg-deb -f "$DEB" "$1"; }
check_eq "Package: cq" cq "$(field Package)"
check_eq "Version: the project's, Debian revision 1" "$VERSION-1" "$(field Version)"
check_eq "Architecture: this machine's" "$ARCH" "$(field Architecture)"
maintainer_ok() { [[ $(field Maintainer) =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]]; }
check "Maintainer: a name and an address ($(field Maintainer))" maintainer_ok
check_eq "Section, Priority" "utils optional" "$(field Section) $(field Priority)"
description_ok() {
    local d
    d=$(field Description)
    [ "$(echo "$d" | wc -l)" -ge 4 ] && [ "$(echo "$d" | awk 'length > 80' | wc -l)" = 0 ] &&
        [ "$(echo "$d" | sed -n 1p)" != "$(echo "$d" | sed -n 2p | sed 's/^ //')" ]
}
check "Description: a summary and an extended text, lines of 80 columns at most" description_ok ||
    field Description
DEPENDS=$(field Depends)
# depends_on PACKAGE...: each is in Depends (with or without a version)
depends_on() { local p; for p in "$@"; do [[ ", $DEPENDS," == *", $p"[\ ,]* ]] || return 1; done; }
check "Depends (dpkg-shlibdeps): the libraries the programs link ($DEPENDS)" \
    depends_on libc6 libhiredis0.14 libcurl4 libcjson1 libuuid1 libmicrohttpd12
check "...and passwd, for postinst's useradd" depends_on passwd
check_eq "conffiles: the environment file" "/etc/cq/cworker.env" "$(dpkg-deb -I "$DEB" conffiles)"
check_eq "triggers: ldconfig, for libcq" "activate-noawait ldconfig" "$(dpkg-deb -I "$DEB" triggers | grep -v '^#')"
dpkg-deb -e "$DEB" "$T/control"
scripts_ok() { local s; for s in postinst prerm postrm; do [ -x "$T/control/$s" ] && sh -n "$T/control/$s" || return 1; done; }
check "maintainer scripts postinst, prerm, postrm: executable, sh syntax" scripts_ok

MULTIARCH=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=lib\///p' "$B/CMakeCache.txt")
expected=(./usr/bin/cworker ./usr/bin/cenqueue ./usr/bin/cproducer ./usr/bin/cqctl
          "./usr/lib/$MULTIARCH/libcq.so" "./usr/lib/$MULTIARCH/libcq.so.$API"
          "./usr/lib/$MULTIARCH/libcq.so.$VERSION" "./usr/lib/$MULTIARCH/libcq.a"
          "./usr/lib/$MULTIARCH/pkgconfig/cq.pc" ./usr/include/cq/cq.h
          "./usr/lib/$MULTIARCH/cmake/cq/cqConfig.cmake"
          "./usr/lib/$MULTIARCH/cmake/cq/cqConfigVersion.cmake"
          "./usr/lib/$MULTIARCH/cmake/cq/cqTargets.cmake"
          "./usr/lib/$MULTIARCH/cmake/cq/cqTargets-BUILDTYPE.cmake"
          "./usr/lib/$MULTIARCH/cq/cq-redis.so"
          ./usr/share/man/man1/cworker.1.gz ./usr/share/man/man1/cenqueue.1.gz
          ./usr/share/man/man1/cproducer.1.gz ./usr/share/man/man1/cqctl.1.gz
          "./usr/lib/systemd/system/cworker@.service" ./etc/cq/cworker.env)
check_eq "it holds these files, and no other" "$(printf '%s\n' "${expected[@]}" | sort)" \
    "$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { print $6 }' |
       sed 's/cqTargets-[a-z]*\.cmake$/cqTargets-BUILDTYPE.cmake/' | sort)"
check_eq "...all root's" "" "$(dpkg-deb -c "$DEB" | awk '$2 != "root/root"')"
check_contains "...the environment file root's alone" "-rw------- root/root" \
    "$(dpkg-deb -c "$DEB" | grep ' ./etc/cq/cworker.env$')"
stripped() { file -L "$@" | grep -v ', stripped' | grep -q . && return 1 || return 0; }
dpkg-deb -x "$DEB" "$T/contents"
check "...its programs, libcq.so and the Redis module stripped" stripped "$T"/contents/usr/bin/* \
    "$T/contents/usr/lib/$MULTIARCH/libcq.so.$VERSION" "$T/contents/usr/lib/$MULTIARCH/cq/cq-redis.so"
check_contains "...its unit runs /usr/bin/cworker" "/usr/bin/cworker " \
    "$(grep '^ExecStart=' "$T/contents/usr/lib/systemd/system/cworker@.service")"
check_eq "...with /etc/cq/cworker.env" "EnvironmentFile=-/etc/cq/cworker.env" \
    "$(grep '^EnvironmentFile=' "$T/contents/usr/lib/systemd/system/cworker@.service")"

# ---- a fresh Debian 12 ----
TARBALL=$(bash "$SRC/tests/fixtures/bookworm_rootfs.sh") || fatal "no Debian 12 root file system"
R=$T/root
mkdir "$R"
tar -C "$R" -xpf "$TARBALL" || fatal "cannot extract $TARBALL"
cp -L /etc/resolv.conf "$R/etc/resolv.conf"   # the mirror's name, resolved as here
APT_CACHE=${CQ_ROOTFS_CACHE:-/var/cache/cq-tests}/apt
mkdir -p "$APT_CACHE/archives/partial" "$APT_CACHE/lists/partial"
phase "extracted the root"

# Whatever happens: nothing of the root left running or mounted before $T goes. Each
# in_root mount lives in its own namespace, so this finds none unless something is badly
# wrong; then $T is left in place rather than removed through a mount.
pkg_cleanup() {
    local p
    for p in /proc/[0-9]*; do
        [ "$p/root" -ef "$R" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    if findmnt -rn -o TARGET | grep -qF "$T/"; then
        findmnt -rn -o TARGET | grep -F "$T/" | sort -r | xargs -r -n1 umount -l
        if findmnt -rn -o TARGET | grep -qF "$T/"; then
            echo "ERROR: mounts remain under $T; it is left in place"
            T=$(mktemp -d)   # lib.sh's cleanup removes this empty directory instead
        fi
    fi
    cleanup
}
trap pkg_cleanup EXIT

# in_root [VAR=VALUE...] CMD [ARG...]: run CMD in the root, as root, with only these
# variables (and PATH, LANG), in a mount namespace of its own with /proc, /dev and apt's
# caches mounted. The process keeps its id from unshare to CMD (each step execs).
in_root() {
    unshare -m --propagation private -- sh -c '
        R=$1; A=$2; shift 2
        mount -t proc proc "$R/proc" && mount --rbind /dev "$R/dev" &&
            mount --bind "$A/archives" "$R/var/cache/apt/archives" &&
            mount --bind "$A/lists" "$R/var/lib/apt/lists" || exit 125
        exec chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
    ' in_root "$R" "$APT_CACHE" "$@"
}
# as_cq CMD [ARG...]: the same, as the user cq
as_cq() { in_root setpriv --reuid=cq --regid=cq --init-groups -- "$@"; }
# apt_root ARGS...: apt-get in the root, its output in $T/apt.log (shown when it fails)
apt_root() {
    echo "+ apt-get $*" >>"$T/apt.log"
    in_root DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Acquire::Languages=none \
        --no-install-recommends "$@" >>"$T/apt.log" 2>&1 ||
        { tail -30 "$T/apt.log"; echo "apt-get $* failed in the root (the log's end is above)"; return 1; }
}

exec 8>"$APT_CACHE/lock"
flock -w 900 8 || fatal "another test holds $APT_CACHE/lock"   # one apt at a time on the cache
apt_root update || fatal "apt-get update failed in the root (the network to the Debian mirror?)"
in_root dpkg-query -W -f='${Status}\n' libhiredis0.14 >"$T/before" 2>&1
check_eq "the root is fresh: no hiredis in it" "" "$(grep ' installed' "$T/before")"
cp "$DEB" "$R/tmp/"
check "apt-get install ./$(basename "$DEB"): its Depends resolve from the mirror" \
    apt_root install "/tmp/$(basename "$DEB")" ||
    { tail -30 "$T/apt.log"; fatal "the package does not install (apt's log is above)"; }
phase "installed the package"
check_eq "dpkg: cq $VERSION-1 installed" "install ok installed $VERSION-1" \
    "$(in_root dpkg-query -W -f='${Status} ${Version}' cq)"
check_eq "...with the libraries it depends on" "4" \
    "$(in_root dpkg-query -W -f='${Status}\n' libhiredis0.14 libcurl4 libcjson1 libuuid1 | grep -c ' installed')"
check_contains "...its environment file a conffile" "/etc/cq/cworker.env " \
    "$(in_root dpkg-query -W -f='${Conffiles}' cq)"
for p in cworker cenqueue cproducer cqctl; do
    check_eq "$p --version runs there" "$p $VERSION" "$(in_root "$p" --version 2>&1)"
done
check_contains "libcq.so.$API is in the linker's cache (ldconfig trigger)" "libcq.so.$API " \
    "$(in_root ldconfig -p)"
check_eq "postinst made the system user cq: home /var/lib/cq, no login" \
    "cq:/var/lib/cq:/usr/sbin/nologin" "$(in_root getent passwd cq | cut -d: -f1,6,7)"
cq_uid=$(in_root id -u cq)
check "...a system uid ($cq_uid)" [ "${cq_uid:-1000}" -lt 1000 ]
check_eq "...with /var/lib/cq its own" "cq:cq 755" "$(in_root stat -c '%U:%G %a' /var/lib/cq)"
check_eq "/etc/cq/cworker.env: root's alone" "root:root 600" "$(in_root stat -c '%U:%G %a' /etc/cq/cworker.env)"
check_eq "the man pages are there for man" "$R/usr/share/man/man1/cworker.1.gz" \
    "$(MANPATH=$R/usr/share/man man -w cworker)"

# ---- a worker as systemd starts cworker@high:default ----
# The root shares this host's network: 127.0.0.1 is here. Redis loads the package's module.
start_redis_tcp --loadmodule "$R/usr/lib/$MULTIARCH/cq/cq-redis.so"
start_httpd --generate
# The admin's settings (this also makes it an edited conffile, for the reinstall below).
ENVF=$R/etc/cq/cworker.env
printf '\nCQ_REDIS_URL=redis://127.0.0.1:%s\nCQ_WORKER_OPTS=--burst --log-level debug\n' \
    "$RPORT" >>"$ENVF"
URL=redis://127.0.0.1:$RPORT
hi=$(as_cq cenqueue -u "$URL" -q high noop 2>>"$T/cenqueue.log")
dl=$(as_cq cenqueue -u "$URL" -q default download_link images "$HBASE/pic.jpg" 2>>"$T/cenqueue.log")
lo=$(as_cq cenqueue -u "$URL" -q low noop 2>>"$T/cenqueue.log")
check "cenqueue as cq in the root: three jobs (queues high, default, low)" jobs_are queued "$hi" "$dl" "$lo"

# unit_argv INSTANCE: the command systemd runs for cworker@INSTANCE, one word a line, made
# from the unit's ExecStart by systemd's rules for what that line uses (words split at
# spaces, '...' one word, %i the instance, $$ a $, a word $VAR the value of VAR from the
# environment file split at spaces). Anything else in it is refused, so that this never
# runs something other than systemd would.
unit_argv() {
    local line word name value pat='%i'
    line=$(sed -n 's/^ExecStart=//p' "$R/usr/lib/systemd/system/cworker@.service")
    while IFS= read -r word; do
        if [[ $word =~ ^\$([A-Za-z_][A-Za-z0-9_]*)$ ]]; then
            name=${BASH_REMATCH[1]}
            read -r -a value <<<"$(sed -n "s/^$name=//p" "$ENVF" | tail -1)"
            [ ${#value[@]} = 0 ] || printf '%s\n' "${value[@]}"
            continue
        fi
        word=${word//"$pat"/$1}
        [[ $word == *%* || ${word//\$\$/} == *\$* ]] && { echo "unit_argv: cannot expand '$word'" >&2; return 1; }
        printf '%s\n' "${word//\$\$/\$}"
    done < <(printf '%s\n' "$line" | xargs -n1 printf '%s\n')
}
# unit_env: the environment file's settings, VAR=VALUE a line
unit_env() { grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$ENVF"; }
mapfile -t argv < <(unit_argv high:default)
mapfile -t envs < <(unit_env)
check_eq "the unit's command: sh splitting the instance at ':'" "/bin/sh -c" "${argv[*]:0:2}"
# WorkingDirectory=/var/lib/cq, User=cq, Group=cq, EnvironmentFile=
in_root "${envs[@]}" setpriv --reuid=cq --regid=cq --init-groups -- env -C /var/lib/cq \
    "${argv[@]}" >"$T/worker.log" 2>&1
check_eq "cworker@high:default's command, as cq: --burst ends with exit 0" 0 "$?" || cat "$T/worker.log"
check "...it ran the jobs of high and default" jobs_are finished "$hi" "$dl"
check "...and not the one of low: the instance named its queues" jobs_are queued "$lo"
check_eq "...the download in /var/lib/cq/images, the worker's (cq's)" "cq" \
    "$(in_root stat -c %U /var/lib/cq/images/pic.jpg 2>&1)"
check_eq "...with the server's bytes" 1 "$(count_generated 32768 "$R/var/lib/cq/images/pic.jpg")"
check_contains "...its log names them, in the instance's order" "started: queues high,default, " \
    "$(cat "$T/worker.log")"
check_contains "...and the package's Redis module, which Redis loaded" \
    "; takes and outcomes through cq's Redis module" "$(cat "$T/worker.log")"
phase "ran the worker"

# ---- systemd's view of the unit ----
apt_root install systemd || fatal "cannot install systemd in the root (apt's log is above)"
phase "installed systemd"
enable_ok() {
    in_root systemctl enable cworker@high:default cworker@ >"$T/enable.log" 2>&1 &&
        [ -L "$R/etc/systemd/system/multi-user.target.wants/cworker@high:default.service" ] &&
        [ -L "$R/etc/systemd/system/multi-user.target.wants/cworker@default.service" ]
}
check "systemctl enable cworker@high:default, and cworker@ (DefaultInstance: default)" enable_ok ||
    cat "$T/enable.log"
# verify: by name; a name with ':' only as FILE:NAME (systemd-analyze reads NAME:... as a
# file). MANPATH: it checks Documentation=man:cworker(1) with this host's man.
UNIT=$R/usr/lib/systemd/system/cworker@.service
for u in cworker@default.service "$UNIT:cworker@high:default.service"; do
    out=$(cd "$T" && MANPATH=$R/usr/share/man systemd-analyze verify --root="$R" "$u" 2>&1)
    check_eq "systemd-analyze verify --root=ROOT ${u#"$R"}: exit 0, not a word" "0:" "$?:$out"
done

# ---- reinstall, purge ----
check "dpkg -i again (an upgrade to the same version)" \
    in_root DEBIAN_FRONTEND=noninteractive dpkg -i "/tmp/$(basename "$DEB")"
check_contains "...keeps the edited environment file" "CQ_REDIS_URL=redis://127.0.0.1:$RPORT" "$(cat "$ENVF")"
check "apt-get purge cq" apt_root purge cq || tail -30 "$T/apt.log"
check_eq "...the package is gone" "" "$(in_root dpkg-query -W -f='${Status}' cq 2>/dev/null | grep ' installed')"
gone() { local f; for f in "$@"; do [ ! -e "$R$f" ] && [ ! -L "$R$f" ] || return 1; done; }
check "...its programs, unit and configuration too" gone /usr/bin/cworker /etc/cq \
    /usr/lib/systemd/system/cworker@.service
check "...and the instances' enablement links" gone \
    "/etc/systemd/system/multi-user.target.wants/cworker@high:default.service" \
    "/etc/systemd/system/multi-user.target.wants/cworker@default.service"
check "...the user cq and its downloads stay (Debian's way with system users)" \
    [ -f "$R/var/lib/cq/images/pic.jpg" ]
phase "done"
finish
