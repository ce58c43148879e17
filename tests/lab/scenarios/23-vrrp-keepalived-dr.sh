#!/bin/sh
# A direct-routing pair where one director is keepalived (its VRRP and its IPVS
# checker) and the other is `lvs-director pulse` speaking VRRP to it, each with real
# IPVS. keepalived (priority 150) serves first; its clean stop hands the VIP to
# lvs-director within the skew time, its return takes it back (preempt), with client
# traffic through the VIP across both. VRRPv2, advert_int 1: the master-down interval
# is 3 × 1 s + skew.
set -eu
. /lab/lib.sh
. /lab/pulse.sh
. /lab/keepalived.sh

VIP=10.0.1.100
dr_pair "$VIP"
cat >"$LAB_TMP/dira-ka.conf" <<EOF2
global_defs {
    router_id dira
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        $VIP/24 dev eth0
    }
}
$(ka_dr_virtual_server "$VIP" 1)
EOF2
cat >"$LAB_TMP/lvs.cf" <<EOF2
serial_no = 4
network = direct
vrrp VI_1 {
    active = 1
    interface = eth0
    virtual_router_id = 51
    priority = 100
    advert_int = 1
    virtual_ipaddress = [ "$VIP/24 dev eth0" ]
}
$(dr_virtual_web "$VIP")
EOF2
start_keepalived dira
start_pulse dirb
wait_for 20 is_ka_state dira MASTER
wait_for 10 is_vrrp_state dirb BACKUP
wait_for 10 holds dira $VIP
for d in dira dirb; do
    wait_for 10 sh -c "nsenter --net=/run/netns/$d ipvsadm -Ln | grep -q '10.0.1.12:80 *Route'"
done
holds dirb $VIP && fail "both directors hold $VIP"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"

# keepalived stops cleanly: priority 0, and lvs-director takes over after its skew
# time ((256 - 100) / 256 s), not the master-down interval.
traffic_start cli "$VIP" 40
sleep 1
stop_keepalived dira
wait_for 3 is_vrrp_state dirb MASTER
wait_for 3 holds dirb $VIP
counts=$(traffic_wait)
say "requests across keepalived -> lvs-director: $counts, longest failed run $(longest_failed_run)"
[ "$(longest_failed_run)" -le 2 ] || fail "requests failed across the failover: $(tr '\n' ' ' <"$LAB_TMP/traffic")"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"

# keepalived returns with the higher priority and preempts; lvs-director releases.
traffic_start cli "$VIP" 80
start_keepalived dira
wait_for 15 is_vrrp_state dirb BACKUP
wait_for 5 holds dira $VIP
counts=$(traffic_wait)
say "requests across lvs-director -> keepalived: $counts, longest failed run $(longest_failed_run)"
[ "$(longest_failed_run)" -le 2 ] || fail "requests failed across the failback: $(tr '\n' ' ' <"$LAB_TMP/traffic")"
holds dirb $VIP && fail "lvs-director kept $VIP after the failback"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
say ok
