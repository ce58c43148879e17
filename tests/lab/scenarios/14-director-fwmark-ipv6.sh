#!/bin/sh
# A firewall-mark service (nftables marks the VIP's HTTP traffic) and an IPv6 service.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_nat -n 2
nsrun "$DIR" nft -f - <<EOF
table ip lab {
    chain pre {
        type filter hook prerouting priority mangle; policy accept;
        ip daddr $VIP tcp dport 80 meta mark set 7
    }
}
EOF
cf_start nat
cf_virtual marked "$VIP" 80 rr fwmark=7
cf_server rs1 10.0.2.11
cf_server rs2 10.0.2.12
cf_end
cf_virtual six "$VIP6" 80 rr
cf_server rs1 fd00:2::11
cf_server rs2 fd00:2::12
cf_end
director_apply
table=$(nsrun "$DIR" ipvsadm -Ln)
say "$table"
assert_contains "$table" "FWM  7 rr"
assert_contains "$table" "TCP  [$VIP6]:80 rr"
assert_rr "$(get_seq "$CLI" "http://$VIP:80/" 4)" "rs1 rs2"
assert_rr "$(get_seq "$CLI" "http://[$VIP6]:80/" 4)" "rs1 rs2"
say ok
