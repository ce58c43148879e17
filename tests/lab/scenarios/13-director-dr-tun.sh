#!/bin/sh
# Direct routing and IP-in-IP tunnelling programmed by lvs-director.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_dr -p d -n 2
cf_start direct
cf_virtual web "$VIP" 80 rr
cf_server rs1 10.0.1.11
cf_server rs2 10.0.1.12
cf_end
director_apply >/dev/null
nsrun "$DIR" ipvsadm -Ln | grep -q -- "-> 10.0.1.11:80 *Route" || fail "DR: no Route destination"
assert_rr "$(get_seq "$CLI" "http://$VIP:80/" 4)" "rs1 rs2"

lab_topo_tun -p t -n 2
cf_start tunnel
cf_virtual web "$VIP" 80 rr
cf_server rs1 10.0.2.11
cf_server rs2 10.0.2.12
cf_end
director_apply >/dev/null
nsrun "$DIR" ipvsadm -Ln | grep -q -- "-> 10.0.2.11:80 *Tunnel" || fail "TUN: no Tunnel destination"
assert_rr "$(get_seq "$CLI" "http://$VIP:80/" 4)" "rs1 rs2"
say ok
