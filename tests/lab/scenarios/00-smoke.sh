#!/bin/sh
# The VM is fit for the other scenarios: IPVS answers, per namespace; every scheduler
# module loads and can back a service; the modules the topologies need load; the real
# iproute2 and nft are there; the programs run.sh installed start.
set -eu
. /lab/lib.sh

out=$(ipvsadm -Ln) || fail "ipvsadm -Ln failed in the VM's namespace"
assert_contains "$out" "IP Virtual Server version" "ipvsadm -Ln"

modprobe -a veth bridge ipip tunnel4 nf_conntrack nf_tables nft_ct sctp \
    || fail "a module the topologies need does not load"

kver=$(uname -r)
scheds="rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf"
# twos came with Linux 6.7: tried only where the kernel has it.
if grep -q '/ip_vs_twos\.ko' "/lib/modules/$kver/modules.dep"; then
    scheds="$scheds twos"
else
    say "ip_vs_twos: not in kernel $kver, skipped"
fi
mods=
for s in $scheds; do mods="$mods ip_vs_$s"; done
# shellcheck disable=SC2086
modprobe -a $mods || fail "a scheduler module does not load (of:$mods)"

# One service per scheduler, in one ipvsadm call; each must show with its scheduler.
lab_ns smoke1 smoke2
port=1
rules=
for s in $scheds; do
    rules="$rules-A -t 10.255.0.1:$port -s $s
"
    port=$((port + 1))
done
printf '%s' "$rules" | nsrun smoke1 ipvsadm -R || fail "ipvsadm -R of one service per scheduler"
out=$(nsrun smoke1 ipvsadm -Ln)
port=1
for s in $scheds; do
    assert_contains "$out" "TCP  10.255.0.1:$port $s" "ipvsadm -Ln with scheduler $s"
    port=$((port + 1))
done
say "schedulers: $scheds"

# IPVS tables are per namespace: smoke1's services do not show in smoke2.
out=$(nsrun smoke2 ipvsadm -Ln)
case $out in *10.255.0.1*) fail "a service of namespace smoke1 shows in smoke2: $out" ;; esac
[ -d /proc/sys/net/ipv4/vs ] || fail "no net.ipv4.vs sysctls"

# The real iproute2 (with netns) and nft, not busybox's stand-ins.
"$IP" -V | grep -q iproute2 || fail "$IP is not iproute2"
nsrun smoke1 nft add table ip smoke || fail "nft add table"

# Every program run.sh was given runs here (its shared libraries came along).
while read -r bin; do
    "$bin" --help >/dev/null || fail "$bin --help fails in the VM"
    say "$bin runs"
done </lab/bins
say "ok"
