#!/usr/bin/env bash
# The .deb on a real Debian system: systemd as PID 1, the lab's kernel with IPVS, in a
# QEMU VM (run by tests/packaging/check.sh after the host checks):
#
#   systemd-vm.sh DEB DEB_UPGRADE RPM RPM_UPGRADE
#
# The VM's root is a minimal Debian (mmdebstrap: systemd, dpkg, rpm, ipvsadm, curl, busybox)
# unpacked from the initramfs, cached as target/lab/cache/systemd-root-KEY.cpio.zst
# and rebuilt when this script's recipe or the kernel changes. The package files and
# tests/packaging/systemd-guest.sh go in a second, per-run layer; the guest script
# runs as a service once the system is up (what it checks is in its header), prints
# `LVS-VM PASS` or `LVS-VM FAIL: why` on the console, and powers the VM off.
#
# Exit status: 0 when the guest passed; 1 when it failed or did not finish (console in
# target/lab/systemd-vm.log, its tail printed); 2 when the VM could not be set up.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
cache=$target/lab/cache
logfile=$target/lab/systemd-vm.log

log() { printf 'systemd-vm: %s\n' "$*" >&2; }
die() { printf 'systemd-vm: error: %s\n' "$*" >&2; exit 2; }

[ $# -eq 4 ] || die "usage: $0 DEB DEB_UPGRADE RPM RPM_UPGRADE"
for f in "$@"; do [ -f "$f" ] || die "$f: no such package"; done
[ "$(id -u)" -eq 0 ] || die "needs root (the root file system keeps its owners)"

"$repo/tests/lab/prepare.sh" >/dev/null || die "tests/lab/prepare.sh failed"
# shellcheck source=/dev/null
. "$cache/kernel.env"
export PATH=$PATH:/usr/sbin:/sbin

missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v zstd >/dev/null || missing+=(zstd)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
fi

# --- the root file system (cached) -----------------------------------------------------
# The same release as this machine, from the mirror its apt uses.
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\/\?\)$/\1/p; s/^deb \(http[^ ]*debian\/\?\) .*/\1/p' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
PACKAGES=systemd,systemd-sysv,dbus,kmod,iproute2,ipvsadm,curl,busybox,procps,rpm
# Kernel modules the guest loads: IPVS (systemd-modules-load, through the package's
# modules-load.d file), its scheduler, the links of the test's network.
MODULES="ip_vs ip_vs_rr veth bridge"

build_root() {
    local tmp=$1 root=$1/root f rel m
    log "mmdebstrap $suite ($mirror): $PACKAGES"
    mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        "$suite" "$root" "$mirror" >&2 || return 1
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # The kernel's modules, with their dependencies, where modprobe looks.
    for m in $MODULES; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
    done | sort -u | while read -r f; do
        rel=${f#"$MODDIR"/}
        mkdir -p "$root/usr/lib/modules/$KVER/$(dirname "$rel")"
        cp "$f" "$root/usr/lib/modules/$KVER/$rel"
    done
    for f in modules.builtin modules.builtin.modinfo modules.order; do
        cp "$MODDIR/$f" "$root/usr/lib/modules/$KVER/"
    done
    depmod -b "$root" "$KVER" || return 1
    # A quiet appliance: no login prompts, no apt timers.
    for u in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer \
        apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer; do
        ln -sf /dev/null "$root/etc/systemd/system/$u"
    done
    echo lvs-vm >"$root/etc/hostname"
    : >"$root/etc/machine-id"
    # The check, started once the boot is under way (tests/packaging/systemd-guest.sh
    # comes with the per-run layer). Type=simple: the boot does not wait for it, and
    # it waits for the boot.
    cat >"$root/etc/systemd/system/lvs-vm-check.service" <<'UNIT'
[Unit]
Description=lvs-director package checks
[Service]
Type=simple
ExecStart=/bin/bash /lab/guest.sh
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
UNIT
    mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
    ln -sf ../lvs-vm-check.service "$root/etc/systemd/system/multi-user.target.wants/"
    # The owners as they are (root and the packages' system users).
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | zstd -q -T0 -10) \
        >"$tmp/root.cpio.zst" || return 1
}

key=$( { declare -f build_root; echo "$suite $mirror $PACKAGES $MODULES $KPKG"; } |
    sha256sum | cut -c1-16)
base=$cache/systemd-root-$key.cpio.zst
mkdir -p "$cache"
exec 8>"$cache/.systemd-root.lock"
flock 8
if [ ! -f "$base" ]; then
    start=$SECONDS
    tmp=$(mktemp -d "$cache/systemd-root.XXXXXX")
    if ! build_root "$tmp"; then
        rm -rf "$tmp"
        die "building the VM's root file system failed"
    fi
    mv "$tmp/root.cpio.zst" "$base"
    rm -rf "$tmp"
    for old in "$cache"/systemd-root-*.cpio.zst; do [ "$old" = "$base" ] || rm -f "$old"; done
    log "root file system built in $((SECONDS - start)) s ($(du -h "$base" | cut -f1))"
fi
flock -u 8

# --- the per-run layer: the packages and the guest script -------------------------------
work=$(mktemp -d "$target/lab/systemd-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/layer/lab"
cp "$1" "$work/layer/lab/lvs-director-1.deb"
cp "$2" "$work/layer/lab/lvs-director-2.deb"
cp "$3" "$work/layer/lab/lvs-director-1.rpm"
cp "$4" "$work/layer/lab/lvs-director-2.rpm"
cp "$here/systemd-guest.sh" "$work/layer/lab/guest.sh"
(cd "$work/layer" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | zstd -q -1) \
    >"$work/layer.cpio.zst"
# The kernel unpacks concatenated archives in order.
cat "$base" "$work/layer.cpio.zst" >"$work/initrd"

# --- boot --------------------------------------------------------------------------------
mkdir -p "$(dirname "$logfile")"
: >"$logfile"
log "booting $KVER with systemd as PID 1, console in $logfile"
start=$SECONDS
qemu_rc=0
# No network device: nothing in the VM reaches beyond it. The root is the initramfs
# itself (rdinit= is systemd), so no disk and no switch_root.
timeout -k 5 "${SYSTEMD_VM_TIMEOUT:-900}" qemu-system-x86_64 \
    -accel tcg,thread=multi -smp 2 -m 2048 \
    -nographic -no-reboot -nic none \
    -kernel "$VMLINUZ" -initrd "$work/initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/usr/lib/systemd/systemd systemd.show_status=auto" \
    </dev/null >>"$logfile" 2>&1 || qemu_rc=$?
# The guest's lines reach the console through the journal: "[  12.0] bash[133]: TEXT".
console=$(tr -d '\r' <"$logfile" | sed -E 's/^\[ *[0-9.]+\] [^ :]+: //')
printf '%s\n' "$console" | sed -n 's/^LVS-VM: /systemd-vm: guest: /p' >&2
log "VM ran $((SECONDS - start)) s"
if printf '%s\n' "$console" | grep -x 'LVS-VM PASS' >/dev/null; then
    log "PASS"
    exit 0
fi
why=$(printf '%s\n' "$console" | sed -n 's/^LVS-VM FAIL: //p' | head -n1)
if [ -n "$why" ]; then
    log "FAILED: $why"
else
    log "FAILED: no verdict (qemu exit $qemu_rc$([ "$qemu_rc" -ne 124 ] || echo ', timed out'))"
fi
log "console tail:"
tail -n 60 "$logfile" >&2
exit 1
