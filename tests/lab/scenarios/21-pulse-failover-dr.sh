#!/bin/sh
# Two directors running `lvs-director pulse` in direct-routing mode, each with real
# IPVS: a clean stop (SIGTERM) of the primary hands the VIP to the backup at once, with
# client traffic going on; back, the primary takes the VIP again (preempt). The same
# real servers answer throughout: they hold the VIP on lo and do not answer ARP for it.
set -eu
. /lab/lib.sh
. /lab/pulse.sh

VIP=10.0.1.100
dr_pair "$VIP"
cat >"$LAB_TMP/lvs.cf" <<EOF
serial_no = 4
primary = 10.0.1.1
service = lvs
backup_active = 1
backup = 10.0.1.3
keepalive = 0.2
deadtime = 1
network = direct
garp_count = 3
garp_interval = 0.2
$(dr_virtual_web "$VIP")
EOF
start_pulse dira
start_pulse dirb
wait_for 30 is_role dira active
wait_for 10 is_role dirb standby
for d in dira dirb; do
    wait_for 10 sh -c "nsenter --net=/run/netns/$d ipvsadm -Ln | grep -q '10.0.1.12:80 *Route'"
done
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
st=$(nsrun dira lvs-director status --control-socket "$LAB_TMP/dira.sock")
assert_contains "$st" "UNAUTHENTICATED"

traffic_start cli "$VIP" 30
sleep 1
kill_pulse TERM dira
# A clean stop tells the peer: it takes over without waiting for deadtime.
wait_for 5 is_role dirb active
wait_for 5 sh -c "! nsenter --net=/run/netns/dira ip -4 addr show dev eth0 | grep -q $VIP"
grep -q "peer 10.0.1.1 stopped cleanly" "$LAB_TMP/dirb.log" || fail "the backup did not see a clean stop: $(tail -n 5 "$LAB_TMP/dirb.log")"
counts=$(traffic_wait)
failed=$(grep -c failed "$LAB_TMP/traffic" || true)
say "requests during the clean failover: $counts"
[ "$failed" -le 2 ] || fail "$failed of 30 requests failed across a clean failover: $(tr '\n' ' ' <"$LAB_TMP/traffic")"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"

# The primary returns and, preempt being on by default, takes the VIP back.
start_pulse dira
wait_for 20 is_role dira active
wait_for 10 is_role dirb standby
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
say ok
