#!/bin/sh
# lvs-director programs a NAT service (TCP and UDP) from an lvs.cf: the kernel's table
# reads back as configured, traffic alternates, and a second apply changes nothing.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_nat -n 2
cf_start nat
cf_virtual web "$VIP" 80 rr
cf_server rs1 10.0.2.11
cf_server rs2 10.0.2.12
cf_end
cf_virtual dns "$VIP" "$UDP_PORT" rr protocol=udp
cf_server rs1 10.0.2.11
cf_server rs2 10.0.2.12
cf_end

out=$(director_apply 2>&1)
say "$out"
assert_contains "$out" "ipvsadm -A -t $VIP:80 -s rr"
assert_contains "$out" "ipvsadm -a -u $VIP:$UDP_PORT -r 10.0.2.12:$UDP_PORT -m -w 1"
table=$(nsrun "$DIR" ipvsadm -Ln)
say "$table"
assert_eq "TCP  $VIP:80 rr
  -> 10.0.2.11:80                 Masq    1      0          0         
  -> 10.0.2.12:80                 Masq    1      0          0         
UDP  $VIP:$UDP_PORT rr
  -> 10.0.2.11:$UDP_PORT               Masq    1      0          0         
  -> 10.0.2.12:$UDP_PORT               Masq    1      0          0         " \
    "$(printf '%s\n' "$table" | tail -n +4)" "ipvsadm -Ln after apply"

assert_rr "$(get_seq "$CLI" "http://$VIP:80/" 6)" "rs1 rs2"
assert_rr "$(get_seq "$CLI" "udp://$VIP:$UDP_PORT" 6)" "rs1 rs2"

out=$(director_apply 2>&1)
assert_contains "$out" "# 0 operation(s)"
assert_contains "$out" "0 change request(s)"

json=$(nsrun "$DIR" lvs-director ipvs show --json --state-dir "$STATE")
assert_contains "$json" '"owned": true'
say ok
