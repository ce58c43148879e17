#!/bin/sh
# Services made with ipvsadm before or during the run are never touched; services
# removed from the configuration are removed; out-of-band changes to ours are repaired.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_nat -n 2
nsrun "$DIR" ipvsadm -A -t 10.0.1.200:80 -s lc
nsrun "$DIR" ipvsadm -a -t 10.0.1.200:80 -r 10.0.2.11:80 -m -w 9
cf_start nat
cf_virtual web "$VIP" 80 rr
cf_server rs1 10.0.2.11
cf_server rs2 10.0.2.12
cf_end
# The same service as the foreign one: left alone, with a warning.
cf_virtual clash 10.0.1.200 80 rr
cf_server rs2 10.0.2.12
cf_end
out=$(director_apply 2>&1)
say "$out"
assert_contains "$out" "service TCP 10.0.1.200:80 already exists and was not created by lvs-director: left alone"
foreign() { nsrun "$DIR" ipvsadm -Ln -t 10.0.1.200:80; }
before=$(foreign)
assert_contains "$before" "TCP  10.0.1.200:80 lc"
assert_contains "$before" "10.0.2.11:80                 Masq    9"

# Created during the run.
nsrun "$DIR" ipvsadm -A -u 10.0.1.201:53 -s rr
# Drift: a weight edited and a destination deleted by hand.
nsrun "$DIR" ipvsadm -e -t "$VIP:80" -r 10.0.2.11:80 -m -w 5
nsrun "$DIR" ipvsadm -d -t "$VIP:80" -r 10.0.2.12:80
out=$(director_apply 2>&1)
say "$out"
assert_contains "$out" "ipvsadm -e -t $VIP:80 -r 10.0.2.11:80 -m -w 1"
assert_contains "$out" "ipvsadm -a -t $VIP:80 -r 10.0.2.12:80 -m -w 1"
assert_rr "$(get_seq "$CLI" "http://$VIP:80/" 4)" "rs1 rs2"

# Everything flushed by hand: rebuilt; the foreign services are gone with the flush,
# and are not recreated by us.
nsrun "$DIR" ipvsadm -C
out=$(director_apply 2>&1)
assert_contains "$out" "ipvsadm -A -t $VIP:80 -s rr"
assert_contains "$out" "ipvsadm -A -t 10.0.1.200:80 -s rr"
out=$(director_apply 2>&1)
assert_contains "$out" "# 0 operation(s)"

# A foreign service again, then our services leave the configuration: ours go, it stays.
nsrun "$DIR" ipvsadm -A -t 10.0.1.202:80 -s wlc
cf_start nat
out=$(director_apply 2>&1)
say "$out"
assert_contains "$out" "ipvsadm -D -t $VIP:80"
table=$(nsrun "$DIR" ipvsadm -Ln)
say "$table"
assert_contains "$table" "TCP  10.0.1.202:80 wlc"
case $table in *"$VIP:80"*) fail "our removed service is still there" ;; esac
say ok
