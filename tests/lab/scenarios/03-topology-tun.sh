#!/bin/sh
# IP-in-IP tunnelling topology with a plain-ipvsadm round-robin service: requests
# alternate between rs1 and rs2 over HTTP and UDP, and reach them encapsulated (their
# tunl0 counts the packets).
set -eu
. /lab/lib.sh

lab_topo_tun -n 2

nsrun "$DIR" ipvsadm -A -t "$VIP:$HTTP_PORT" -s rr
nsrun "$DIR" ipvsadm -A -u "$VIP:$UDP_PORT" -s rr
for ip in $RS_IPS; do
    nsrun "$DIR" ipvsadm -a -t "$VIP:$HTTP_PORT" -r "$ip" -i
    nsrun "$DIR" ipvsadm -a -u "$VIP:$UDP_PORT" -r "$ip" -i
done

seq=$(get_seq "$CLI" "http://$VIP:$HTTP_PORT/" 6)
say "http: $seq"
assert_rr "$seq" "rs1 rs2"

seq=$(get_seq "$CLI" "udp://$VIP:$UDP_PORT" 6)
say "udp: $seq"
assert_rr "$seq" "rs1 rs2"

for ns in $RS; do
    rx=$(nsrun "$ns" awk '$1 == "tunl0:" { print $3 }' /proc/net/dev)
    [ "$rx" -gt 0 ] || fail "$ns received nothing on tunl0"
    say "$ns tunl0 rx_packets $rx"
done
say "ok"
