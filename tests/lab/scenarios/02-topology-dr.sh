#!/bin/sh
# Direct-routing topology with a plain-ipvsadm round-robin service: requests alternate
# between rs1 and rs2 over HTTP and UDP, and the client's ARP entry for the VIP is the
# director's (the real servers hold the VIP on lo without announcing it).
set -eu
. /lab/lib.sh

lab_topo_dr -n 2

# shellcheck disable=SC2086
lab_rr_services "$VIP" -g $RS_IPS

assert_rr_http_udp "$VIP"

dir_mac=$("$IP" -n "$DIR" -br link show eth0 | awk '{ print $3 }')
vip_mac=$("$IP" -n "$CLI" neigh show "$VIP" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }')
assert_eq "$dir_mac" "$vip_mac" "the client's neighbour entry for $VIP"

# Direct routing sends the answers around the director: it sees the requests only.
assert_conns "$DIR" 6 -t "$VIP:$HTTP_PORT"
outpkts=$(nsrun "$DIR" ipvsadm -Ln --stats -t "$VIP:$HTTP_PORT" | awk '$1 == "TCP" { print $5 }')
assert_eq 0 "$outpkts" "answer packets through the director"
say "ok"
