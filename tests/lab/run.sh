#!/usr/bin/env bash
# Runs lab scenarios inside a QEMU VM booted with Debian's cloud kernel (which has IPVS,
# unlike the host's). Run tests/lab/prepare.sh once first.
#
#   run.sh [--bin PATH]... --scenarios DIR [--only NAME]... [--timeout SECS]
#          [--scenario-timeout SECS] [--log FILE] [--mem MB] [--verbose]
#
#   --bin PATH             a program to install as /usr/bin/<its name> in the VM
#   --scenarios DIR        the scenario scripts (*.sh), run in name order
#   --only NAME            run only these scenarios (name = file name without .sh)
#   --timeout SECS         the whole VM run (default: 60 + 30 per scenario)
#   --scenario-timeout S   one scenario (default 60)
#   --log FILE             the VM console (default target/lab/lab.log)
#   --mem MB               the VM's memory (default 1024)
#   --verbose              also show the console as it comes
#
# Exit status: 0 when every scenario passed and the VM finished; 1 when a scenario
# failed or the VM did not finish; 2 when the lab itself could not be set up.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
lab=$target/lab

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
die() {
    printf 'lab-run: error: %s\n' "$*" >&2
    exit 2
}
log() { printf 'lab-run: %s\n' "$*" >&2; }

bins=() only=() scenarios= timeout= scenario_timeout=60 logfile=$lab/lab.log mem=1024 verbose=
while [ $# -gt 0 ]; do
    case $1 in
    --bin) bins+=("${2:?--bin needs a path}"); shift 2 ;;
    --scenarios) scenarios=${2:?--scenarios needs a directory}; shift 2 ;;
    --only) only+=("${2:?--only needs a name}"); shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --scenario-timeout) scenario_timeout=${2:?}; shift 2 ;;
    --log) logfile=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --verbose) verbose=1; shift ;;
    -h | --help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ -n "$scenarios" ] || die "--scenarios DIR is required"
[ -d "$scenarios" ] || die "--scenarios $scenarios: not a directory"
for b in "${bins[@]}"; do
    [ -f "$b" ] && [ -x "$b" ] || die "--bin $b: not an executable file"
done

env_file=$lab/cache/kernel.env
[ -s "$env_file" ] || die "no $env_file: run tests/lab/prepare.sh first (as root)"
# shellcheck source=/dev/null
. "$env_file"
[ -f "$VMLINUZ" ] && [ -d "$MODDIR" ] || die "$env_file names a missing kernel: run tests/lab/prepare.sh again"
for tool in qemu-system-x86_64 cpio gzip depmod modprobe ldd; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] \
        || die "$tool is missing: run tests/lab/prepare.sh"
done
export PATH=$PATH:/usr/sbin:/sbin

# Scenarios to run, as init will see them.
names=()
for f in "$scenarios"/*.sh; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .sh)
    if [ ${#only[@]} -gt 0 ]; then
        keep=
        for o in "${only[@]}"; do [ "$o" = "$n" ] && keep=1; done
        [ -n "$keep" ] || continue
    fi
    names+=("$n")
done
for o in "${only[@]}"; do
    [ -f "$scenarios/$o.sh" ] || die "--only $o: no $scenarios/$o.sh"
done
[ ${#names[@]} -gt 0 ] || die "no scenario to run in $scenarios"
[ -n "$timeout" ] || timeout=$((60 + 30 * ${#names[@]}))

mkdir -p "$lab"
work=$(mktemp -d "$lab/run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the base layer: busybox, tools, their libraries, kernel modules -------------------
# Kept between runs (target/lab/base-*.cpio.gz) and rebuilt when its inputs change.

# Host programs copied into the VM, as "path in VM=path on host".
tools=(
    /usr/sbin/ip=/usr/sbin/ip
    /sbin/ip=/usr/sbin/ip
    /usr/sbin/ipvsadm=/usr/sbin/ipvsadm
    /usr/sbin/nft=/usr/sbin/nft
    /usr/bin/socat=/usr/bin/socat
    /bin/kmod=/bin/kmod
    /usr/sbin/keepalived=/usr/sbin/keepalived
)
# Kernel modules (with their dependencies). ip_vs_twos only exists in newer kernels.
modules=(
    ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh
    ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_fo ip_vs_ovf ip_vs_twos
    ipip ip6_tunnel tunnel4 tunnel6 ip_tunnel
    veth bridge dummy macvlan
    nf_conntrack nf_conntrack_netlink nf_tables nft_ct nft_chain_nat nft_nat nft_masq
    nft_redir nft_reject_inet nft_fib_inet nft_limit nft_numgen nft_hash nft_quota
    nft_log nft_compat
    sctp
)
# Loaded by /init before the first scenario; the rest loads on demand (kmod is
# /sbin/modprobe in the VM).
boot_modules="ip_vs ipip veth bridge nf_tables"

for t in "${tools[@]}"; do
    [ -x "${t#*=}" ] || die "${t#*=} is missing: run tests/lab/prepare.sh"
done

# ldd_deps FILE... : the shared libraries (and loader) the files need, one path a line.
ldd_deps() {
    local f
    for f in "$@"; do
        # A static binary makes ldd exit non-zero: no libraries, fine.
        ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' || true
    done | sort -u
}

module_files() {
    local m out
    for m in "${modules[@]}"; do
        if ! out=$(modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null); then
            continue # not in this kernel
        fi
        printf '%s\n' "$out" | awk '$1 == "insmod" { print $2 }'
    done | sort -u
}

host_files=$(
    for t in "${tools[@]}"; do echo "${t#*=}"; done
    ldd_deps $(for t in "${tools[@]}"; do echo "${t#*=}"; done)
    echo /bin/busybox
)
mod_files=$(module_files)
[ -n "$mod_files" ] || die "no kernel module found under $MODDIR (run tests/lab/prepare.sh again)"
# The key covers the recipe (this file), the kernel and every file copied in.
base_key=$(
    {
        cat "$0"
        echo "$KPKG"
        # shellcheck disable=SC2086
        stat -L -c '%n %s %Y' $host_files $mod_files
    } | sha256sum | cut -c1-16
)
base=$lab/base-$base_key.cpio.gz

build_base() {
    local root=$work/base t dst src f rel
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,var/lib,root,lab}
    ln -s ../run "$root/var/run"
    cp /bin/busybox "$root/bin/busybox"
    # Every applet as a link, as busybox --install would do in the VM.
    /bin/busybox --list-full | while read -r rel; do
        [ "$rel" != bin/busybox ] || continue
        mkdir -p "$root/$(dirname "$rel")"
        ln -sf /bin/busybox "$root/$rel"
    done
    # The real tools replace busybox's applets of the same name (ip, modprobe…).
    for t in "${tools[@]}"; do
        dst=${t%%=*} src=${t#*=}
        mkdir -p "$root$(dirname "$dst")"
        rm -f "$root$dst"
        cp -L "$src" "$root$dst"
    done
    for l in modprobe insmod rmmod lsmod modinfo depmod; do
        rm -f "$root/sbin/$l"
        ln -s /bin/kmod "$root/sbin/$l"
    done
    for f in $(ldd_deps $(for t in "${tools[@]}"; do echo "${t#*=}"; done)); do
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f"
    done
    [ ! -d /etc/iproute2 ] || cp -r /etc/iproute2 "$root/etc/"
    [ ! -d /usr/share/iproute2 ] || { mkdir -p "$root/usr/share"; cp -r /usr/share/iproute2 "$root/usr/share/"; }
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    printf 'tcp 6 TCP\nudp 17 UDP\nsctp 132 SCTP\n' >"$root/etc/protocols"

    local mroot=$root/lib/modules/$KVER
    mkdir -p "$mroot"
    for f in $mod_files; do
        rel=${f#"$MODDIR"/}
        mkdir -p "$mroot/$(dirname "$rel")"
        cp "$f" "$mroot/$rel"
    done
    for f in modules.builtin modules.builtin.modinfo modules.order; do
        [ ! -f "$MODDIR/$f" ] || cp "$MODDIR/$f" "$mroot/"
    done
    depmod -b "$root" "$KVER" || die "depmod for the initramfs failed"

    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$base.tmp" \
        || die "building $base failed"
    mv "$base.tmp" "$base"
    # Base layers of other inputs are stale now.
    for f in "$lab"/base-*.cpio.gz; do
        [ "$f" = "$base" ] || rm -f "$f"
    done
}

t_build=$(date +%s.%N)
# Runs at once (cargo and a person) share base layers: a run holds the lock shared
# while it reads its layer; building one, and deleting stale ones, takes it exclusive.
exec 8>"$lab/.base.lock"
flock -s 8
if [ ! -s "$base" ]; then
    flock 8
    [ -s "$base" ] || { log "building the initramfs base layer"; build_base; }
    flock -s 8
fi

# --- the per-run layer: /init, lib.sh, scenarios, --bin programs ------------------------
run_root=$work/run
mkdir -p "$run_root/lab/scenarios" "$run_root/usr/bin"
cp "$here/init.sh" "$run_root/init"
chmod 755 "$run_root/init"
cp "$here/lib.sh" "$run_root/lab/lib.sh"
cp "$here/director.sh" "$run_root/lab/director.sh"
cp "$here/pulse.sh" "$run_root/lab/pulse.sh"
cp "$here/keepalived.sh" "$run_root/lab/keepalived.sh"
for n in "${names[@]}"; do
    cp "$scenarios/$n.sh" "$run_root/lab/scenarios/"
done
# The benchmark's real servers (responder.rs, std only): built with rustc, kept while
# the source is older than the build.
responder=$lab/lab-responder
if [ ! -x "$responder" ] || [ "$here/responder.rs" -nt "$responder" ]; then
    "${RUSTC:-rustc}" --edition 2021 -O -o "$responder.$$" "$here/responder.rs" \
        || die "building tests/lab/responder.rs failed"
    mv "$responder.$$" "$responder"
fi
bins+=("$responder")
: >"$run_root/lab/bins"
for b in "${bins[@]}"; do
    name=$(basename "$b")
    # Debug info is most of a debug build's size and only slows the boot down; the
    # symbol table stays for backtraces.
    strip --strip-debug -o "$run_root/usr/bin/$name" "$b" 2>/dev/null || cp "$b" "$run_root/usr/bin/$name"
    echo "/usr/bin/$name" >>"$run_root/lab/bins"
    for f in $(ldd_deps "$b"); do
        mkdir -p "$run_root$(dirname "$f")"
        cp -L "$f" "$run_root$f"
    done
done
{
    printf "LAB_ONLY='%s'\n" "${only[*]}"
    printf 'LAB_TIMEOUT=%s\n' "$scenario_timeout"
    printf "LAB_MODULES='%s'\n" "$boot_modules"
} >"$run_root/lab/config"
(cd "$run_root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$work/run.cpio.gz" \
    || die "building the per-run initramfs layer failed"
# The kernel unpacks concatenated archives in order, later files winning.
cat "$base" "$work/run.cpio.gz" >"$work/initrd.gz"
sizes="$(du -h "$work/initrd.gz" | cut -f1) (base $(du -h "$base" | cut -f1))"
flock -u 8
exec 8>&-
t_boot=$(date +%s.%N)
log "initramfs $sizes, built in $(elapsed "$t_build" "$t_boot") s"

# --- boot -------------------------------------------------------------------------------
mkdir -p "$(dirname "$logfile")"
: >"$logfile"
log "booting $KVER for ${#names[@]} scenario(s), console in $logfile"
tail_pid=
if [ -n "$verbose" ]; then
    tail -n +1 -f "$logfile" >&2 &
    tail_pid=$!
fi
qemu_rc=0
# No network device (-nic none): nothing in the VM can reach beyond it.
timeout -k 5 "$timeout" qemu-system-x86_64 \
    -accel tcg,thread=multi -smp 2 -m "$mem" \
    -nographic -no-reboot -nic none \
    -kernel "$VMLINUZ" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=1" \
    </dev/null >>"$logfile" 2>&1 || qemu_rc=$?
t_end=$(date +%s.%N)
[ -z "$tail_pid" ] || { sleep 0.2; kill "$tail_pid" 2>/dev/null || true; }

# --- report -----------------------------------------------------------------------------
console=$(tr -d '\r' <"$logfile")
failed=0
for n in "${names[@]}"; do
    verdict=$(printf '%s\n' "$console" | sed -n "s/^LAB-RESULT $n \(PASS\|FAIL\)\$/\1/p" | tail -n1)
    took=$(printf '%s\n' "$console" | sed -n "s/^LAB-OUT $n | lab: took \(.*\) s (VM clock)\$/\1/p" | tail -n1)
    case $verdict in
    PASS) printf 'lab: %-28s PASS  %6s s\n' "$n" "$took" ;;
    FAIL)
        printf 'lab: %-28s FAIL  %6s s\n' "$n" "$took"
        printf '%s\n' "$console" | sed -n "s/^LAB-OUT $n | /    /p" >&2
        failed=$((failed + 1))
        ;;
    *)
        printf 'lab: %-28s NO RESULT\n' "$n"
        failed=$((failed + 1))
        ;;
    esac
done
boot=$(printf '%s\n' "$console" | sed -n 's/^LAB-BOOT \([0-9.]*\) .*/\1/p' | head -n1)
printf 'lab: VM reached /init at %s s (VM clock); whole run %s s wall\n' "${boot:-?}" \
    "$(elapsed "$t_boot" "$t_end")"
if ! printf '%s\n' "$console" | grep -qx 'LAB-DONE'; then
    if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
        echo "lab: the VM did not finish within ${timeout}s (--timeout); console tail:" >&2
    else
        echo "lab: the VM stopped before LAB-DONE (qemu exit $qemu_rc); console tail:" >&2
    fi
    tail -n 30 "$logfile" >&2
    exit 1
fi
[ "$failed" -eq 0 ] || { echo "lab: $failed of ${#names[@]} scenario(s) failed; console in $logfile" >&2; exit 1; }
echo "lab: all ${#names[@]} scenario(s) passed"
