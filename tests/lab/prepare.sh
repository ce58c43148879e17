#!/usr/bin/env bash
# Prepares the host for the IPVS lab (tests/lab/run.sh): installs the few Debian packages
# it needs and fetches + unpacks Debian's cloud kernel into target/lab/cache/.
# Idempotent: with everything present it only asks the local package lists (apt-cache,
# about a second) whether the cached kernel is still the current one.
# Writes target/lab/cache/kernel.env (KVER=, VMLINUZ=, MODDIR=, KROOT=, KPKG=) for run.sh.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
cache=$target/lab/cache

log() { printf 'lab-prepare: %s\n' "$*" >&2; }
die() { printf 'lab-prepare: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$cache"
# scripts/test.sh, tests/lab.rs and a person may all run this: one at a time, the
# others wait and then find everything done.
exec 9>"$cache/.lock"
flock 9

# --- host packages ---------------------------------------------------------------
# command -> package; only what run.sh really uses on the host or copies into the VM.
need=(
    qemu-system-x86_64:qemu-system-x86
    /bin/busybox:busybox-static
    depmod:kmod
    cpio:cpio
    ipvsadm:ipvsadm
    /usr/sbin/ip:iproute2
    nft:nftables
    socat:socat
    flock:util-linux
    /usr/sbin/keepalived:keepalived
)
missing=()
for pair in "${need[@]}"; do
    cmd=${pair%%:*} pkg=${pair#*:}
    if [ "${cmd#/}" != "$cmd" ]; then
        [ -x "$cmd" ] && continue
    elif command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/sbin/$cmd" ]; then
        continue
    fi
    missing+=("$pkg")
done
# busybox-static conflicts with nothing we need, but a dynamic `busybox` package may own
# /bin/busybox: insist on the static one, the initramfs has no libc for it otherwise.
if [ -x /bin/busybox ] && ! dpkg -s busybox-static >/dev/null 2>&1; then
    missing+=(busybox-static)
fi
apt_updated=${LAB_PREPARE_UPDATED:-}
# Only installing needs root; with everything in place anyone may run the lab.
need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root: run tests/lab/prepare.sh as root once"
}
apt_update() {
    [ -n "$apt_updated" ] && return 0
    need_root "apt-get update"
    log "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    apt_updated=1
}
if [ ${#missing[@]} -gt 0 ]; then
    # Where qemu-utils comes from bookworm-backports (as on this project's machines), apt
    # removes it for qemu-system-x86 7.2, their versions conflicting; the lab does not
    # use qemu-utils (qemu-img).
    need_root "installing ${missing[*]}"
    apt_update
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
fi

# use_cached WHY : falls back to the kernel of an earlier run (say, offline) if any.
use_cached() {
    if [ -s "$cache/kernel.env" ] && . "$cache/kernel.env" && [ -f "${VMLINUZ:-}" ]; then
        log "warning: $1; using the cached $KPKG"
        cat "$cache/kernel.env"
        exit 0
    fi
    die "$1"
}

# --- kernel ------------------------------------------------------------------------
# The metapackage depends on exactly one versioned kernel package:
#   Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
# (one apt-cache call, which takes a second here, for both name and version).
kernel_dep() {
    apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null \
        | sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*-cloud-amd64\) (= \([^)]*\)).*/\1 \2/p' | head -n1
}
dep=$(kernel_dep || true)
if [ -z "$dep" ]; then
    # Fresh machine: the package lists may be empty until the first update.
    apt_update
    dep=$(kernel_dep || true)
fi
[ -n "$dep" ] || use_cached "apt-cache show linux-image-cloud-amd64 names no linux-image-*-cloud-amd64 (= version)"
pkg=${dep% *} ver=${dep#* }
# Cache key: the .deb's file name (package_version_arch), so a kernel update is picked up.
debfile=${pkg}_${ver//:/%3a}_amd64.deb
key=${debfile%.deb}
kroot=$cache/$key/root

if [ ! -f "$cache/$key/.done" ]; then
    log "fetching $pkg ($debfile)"
    rm -rf "$cache/$key" "$cache/$key.tmp"
    mkdir -p "$cache/$key.tmp/dl"
    # As root into a folder _apt cannot write: download without apt's sandbox user.
    if ! ( cd "$cache/$key.tmp/dl" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >&2 ); then
        # Old package lists name a kernel the mirror no longer has: update, start over.
        if [ -z "$apt_updated" ] && [ -z "${LAB_PREPARE_UPDATED:-}" ]; then
            apt_update
            LAB_PREPARE_UPDATED=1 exec "$0" "$@"
        fi
        use_cached "apt-get download $pkg failed (in $cache/$key.tmp/dl)"
    fi
    deb=$(ls "$cache/$key.tmp/dl/"*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || die "apt-get download $pkg left no .deb in $cache/$key.tmp/dl"
    dpkg-deb -x "$deb" "$cache/$key.tmp/root" || die "dpkg-deb -x $deb failed"
    kver=$(ls "$cache/$key.tmp/root/lib/modules" | head -n1)
    [ -n "$kver" ] || die "$deb has no lib/modules/<version>"
    depmod -b "$cache/$key.tmp/root" "$kver" || die "depmod -b $cache/$key.tmp/root $kver failed"
    # The .deb is not needed once unpacked (tens of MB).
    rm -rf "$cache/$key.tmp/dl"
    touch "$cache/$key.tmp/.done"
    mv "$cache/$key.tmp" "$cache/$key"
    # Older kernels' trees are stale cache now.
    for old in "$cache"/linux-image-*; do
        [ "$old" = "$cache/$key" ] || rm -rf "$old"
    done
fi

kver=$(ls "$kroot/lib/modules" | head -n1)
vmlinuz=$kroot/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "no $vmlinuz in the unpacked kernel"
[ -f "$kroot/lib/modules/$kver/modules.dep" ] || die "no modules.dep under $kroot/lib/modules/$kver"

env_tmp=$cache/kernel.env.tmp
{
    printf 'KPKG=%s\n' "$key"
    printf 'KVER=%s\n' "$kver"
    printf 'KROOT=%s\n' "$kroot"
    printf 'VMLINUZ=%s\n' "$vmlinuz"
    printf 'MODDIR=%s\n' "$kroot/lib/modules/$kver"
} >"$env_tmp"
mv "$env_tmp" "$cache/kernel.env"
cat "$cache/kernel.env"
