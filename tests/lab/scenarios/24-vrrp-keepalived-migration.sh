#!/bin/sh
# The migration a keepalived shop does: a keepalived DR pair (dira MASTER 150, dirb
# BACKUP 100, VRRPv2, advert_int 1, each with its IPVS checker) is replaced one
# director at a time by `lvs-director pulse` running that director's own
# keepalived.conf, imported (`lvs-director import`, then `export`) without editing.
# Client traffic runs throughout: no gap between answered requests may be longer than
# the master-down interval (3 × 1 s + (256 - 100)/256 s).
set -eu
. /lab/lib.sh
. /lab/pulse.sh
. /lab/keepalived.sh

VIP=10.0.1.100
dr_pair "$VIP"
# keepalived.conf of a director: NAME STATE PRIORITY SOURCE PEER
ka_conf() {
    cat <<EOF2
global_defs {
    router_id $1
}
vrrp_instance VI_WEB {
    state $2
    interface eth0
    virtual_router_id 51
    priority $3
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    unicast_src_ip $4
    unicast_peer {
        $5
    }
    virtual_ipaddress {
        $VIP/24 dev eth0
    }
}
$(ka_dr_virtual_server "$VIP" 2)
EOF2
}
ka_conf dira MASTER 150 10.0.1.1 10.0.1.3 >"$LAB_TMP/dira-ka.conf"
ka_conf dirb BACKUP 100 10.0.1.3 10.0.1.1 >"$LAB_TMP/dirb-ka.conf"
# What the user runs: import the director's keepalived.conf, export lvs.cf.
migrate() {
    lvs-director import --db "$LAB_TMP/$1.db" --from keepalived "$LAB_TMP/$1-ka.conf" >"$LAB_TMP/$1-import.log" 2>&1 \
        || fail "import of $1's keepalived.conf: $(cat "$LAB_TMP/$1-import.log")"
    # Import warnings name a line; none may be about the VRRP part.
    if grep -E ':[0-9]+: warning: .*(vrrp|virtual_router_id|priority|auth|unicast|advert_int|state|virtual_ipaddress)' "$LAB_TMP/$1-import.log"; then
        fail "VRRP warnings importing $1's keepalived.conf"
    fi
    lvs-director export --db "$LAB_TMP/$1.db" -o "$LAB_TMP/$1.lvs.cf" || fail "export for $1"
}

start_keepalived dira
start_keepalived dirb
wait_for 20 is_ka_state dira MASTER
wait_for 10 is_ka_state dirb BACKUP
wait_for 10 holds dira $VIP
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
gap_traffic_start cli "$VIP"
sleep 1

# 1. The backup first: stop its keepalived, start lvs-director with its conf.
stop_keepalived dirb
migrate dirb
start_pulse dirb "$LAB_TMP/dirb.lvs.cf"
wait_for 15 is_vrrp_state dirb BACKUP
wait_for 10 sh -c "nsenter --net=/run/netns/dirb ipvsadm -Ln | grep -q '10.0.1.12:80 *Route'"
holds dirb $VIP && fail "lvs-director took $VIP from keepalived's master"
sleep 2

# 2. The master: its clean stop hands over to lvs-director on dirb; then lvs-director
# on dira, with keepalived's priority 150, takes the VIP back.
stop_keepalived dira
wait_for 5 is_vrrp_state dirb MASTER
migrate dira
start_pulse dira "$LAB_TMP/dira.lvs.cf"
wait_for 20 is_vrrp_state dira MASTER
wait_for 5 is_vrrp_state dirb BACKUP
wait_for 5 holds dira $VIP
holds dirb $VIP && fail "both directors hold $VIP"
sleep 2
said=$(gap_traffic_stop)
say "requests during the migration: $said"
gap=$(longest_gap)
awk -v g="$gap" 'BEGIN { exit !(g <= 3.61) }' || fail "a gap of $gap s in service, longer than the master-down interval: $(tr '\n' ' ' <"$LAB_TMP/gaps")"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
say ok
