#!/bin/sh
# IPv6 NAT topology with a plain-ipvsadm round-robin service on the IPv6 VIP: HTTP and
# UDP requests alternate between rs1 and rs2. Built with a prefix, beside an IPv4 NAT
# topology with the same addresses, to show that two topologies coexist.
set -eu
. /lab/lib.sh

lab_topo_nat -p b- -n 2
b_cli=$CLI b_dir=$DIR b_vip=$VIP b_rs_ips=$RS_IPS
lab_topo_nat -p v6- -n 2
assert_eq "v6-dir" "$DIR" "prefixed director namespace"

# shellcheck disable=SC2086
lab_rr_services "$VIP6" -m $RS_IPS6

assert_rr_http_udp "$VIP6"

# The other topology is separate: its director has no service, so its VIP does not
# answer, and one service there sends to its own first real server only.
if http_get "$b_cli" "$b_vip" "$HTTP_PORT" 2>/dev/null; then
    fail "the VIP of topology b- answers without a service"
fi
set -- $b_rs_ips
nsrun "$b_dir" ipvsadm -A -t "$b_vip:$HTTP_PORT" -s rr
nsrun "$b_dir" ipvsadm -a -t "$b_vip:$HTTP_PORT" -r "$1:$HTTP_PORT" -m
seq=$(get_seq "$b_cli" "http://$b_vip:$HTTP_PORT/" 2)
assert_eq "rs1 rs1" "$seq" "answers in topology b-"
say "ok"
