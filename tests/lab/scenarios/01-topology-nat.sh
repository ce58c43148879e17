#!/bin/sh
# NAT topology with a plain-ipvsadm round-robin service: the client's HTTP and UDP
# requests to the VIP alternate between rs1 and rs2, and reach them only through IPVS.
set -eu
. /lab/lib.sh

lab_topo_nat -n 2

# Before any service the director has nothing on the VIP: what answers later is IPVS.
if http_get "$CLI" "$VIP" "$HTTP_PORT" 2>/dev/null; then
    fail "the VIP answered HTTP before any IPVS service existed"
fi

nsrun "$DIR" ipvsadm -A -t "$VIP:$HTTP_PORT" -s rr
nsrun "$DIR" ipvsadm -A -u "$VIP:$UDP_PORT" -s rr
for ip in $RS_IPS; do
    nsrun "$DIR" ipvsadm -a -t "$VIP:$HTTP_PORT" -r "$ip:$HTTP_PORT" -m
    nsrun "$DIR" ipvsadm -a -u "$VIP:$UDP_PORT" -r "$ip:$UDP_PORT" -m
done

seq=$(get_seq "$CLI" "http://$VIP:$HTTP_PORT/" 6)
say "http: $seq"
assert_rr "$seq" "rs1 rs2"

seq=$(get_seq "$CLI" "udp://$VIP:$UDP_PORT" 6)
say "udp: $seq"
assert_rr "$seq" "rs1 rs2"

hits=$(count_hits "$CLI" "http://$VIP:$HTTP_PORT/" 4)
assert_eq "rs1 2
rs2 2" "$hits" "count_hits over 4 requests"

say "ok"
