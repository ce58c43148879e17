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

# shellcheck disable=SC2086
lab_rr_services "$VIP" -m $RS_IPS

assert_rr_http_udp "$VIP"

hits=$(count_hits "$CLI" "http://$VIP:$HTTP_PORT/" 4)
assert_eq "rs1 2
rs2 2" "$hits" "count_hits over 4 requests"

say "ok"
