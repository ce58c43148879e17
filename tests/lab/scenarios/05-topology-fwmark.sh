#!/bin/sh
# A firewall-mark service: nft marks the client's HTTP and UDP packets to the VIP with
# mark 1 in the director's namespace, and one IPVS service on mark 1 (no address, no
# port) balances both protocols round robin. Without the mark nothing answers.
set -eu
. /lab/lib.sh

lab_topo_nat -n 2

nsrun "$DIR" ipvsadm -A -f 1 -s rr
for ip in $RS_IPS; do
    # Port 0: each packet keeps its own destination port.
    nsrun "$DIR" ipvsadm -a -f 1 -r "$ip:0" -m
done

# No mark yet: the packets reach the director itself, which serves nothing.
if http_get "$CLI" "$VIP" "$HTTP_PORT" 2>/dev/null; then
    fail "the VIP answered HTTP before packets were marked"
fi

nsrun "$DIR" nft -f - <<NFT || fail "nft rules in $DIR"
table ip lab {
    chain pre {
        type filter hook prerouting priority mangle; policy accept;
        ip daddr $VIP tcp dport $HTTP_PORT meta mark set 1
        ip daddr $VIP udp dport $UDP_PORT meta mark set 1
    }
}
NFT

assert_rr_http_udp "$VIP"

assert_conns "$DIR" 12 -f 1
say "ok"
