#!/bin/sh
# IP-in-IP tunnelling topology with a plain-ipvsadm round-robin service: requests
# alternate between rs1 and rs2 over HTTP and UDP, and reach them encapsulated (their
# tunl0 counts the packets).
set -eu
. /lab/lib.sh

lab_topo_tun -n 2

# shellcheck disable=SC2086
lab_rr_services "$VIP" -i $RS_IPS

assert_rr_http_udp "$VIP"

for ns in $RS; do
    rx=$(nsrun "$ns" awk '$1 == "tunl0:" { print $3 }' /proc/net/dev)
    [ "$rx" -gt 0 ] || fail "$ns received nothing on tunl0"
    say "$ns tunl0 rx_packets $rx"
done
say "ok"
