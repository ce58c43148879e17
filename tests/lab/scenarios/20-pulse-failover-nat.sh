#!/bin/sh
# Two directors running `lvs-director pulse` in NAT mode, each with real IPVS: the
# primary serves; killed (SIGKILL), the backup takes the VIP and the real servers'
# gateway (nat_router), client traffic goes on, and a TCP connection established
# through the primary keeps working through the backup because the sync daemons
# copied it. The health checks take a stopped real server out of the kernel's table
# and put it back when it answers again.
set -eu
. /lab/lib.sh
. /lab/pulse.sh

lab_switch net front back
lab_ns cli dira dirb rs1 rs2
lab_wires net <<EOF
front cli eth0
front dira eth0
front dirb eth0
back dira eth1
back dirb eth1
back rs1 eth0
back rs2 eth0
EOF
_lab_in cli "$(_lab_if_script eth0 10.0.1.2/24)"
_lab_in dira "$(_lab_if_script eth0 10.0.1.1/24)
    $(_lab_if_script eth1 10.0.2.2/24)
    sysctl -q -w net.ipv4.ip_forward=1 >/dev/null"
_lab_in dirb "$(_lab_if_script eth0 10.0.1.3/24)
    $(_lab_if_script eth1 10.0.2.3/24)
    sysctl -q -w net.ipv4.ip_forward=1 >/dev/null"
for k in 1 2; do
    _lab_in rs$k "$(_lab_if_script eth0 10.0.2.1$k/24)
        ip route add default via 10.0.2.1
        socat TCP-LISTEN:7,fork,reuseaddr EXEC:cat </dev/null >/dev/null 2>&1 &
        $(_lab_serve_script rs$k rs$k)"
done

VIP=10.0.1.100
cat >"$LAB_TMP/lvs.cf" <<EOF
serial_no = 1
primary = 10.0.1.1
primary_private = 10.0.2.2
service = lvs
backup_active = 1
backup = 10.0.1.3
backup_private = 10.0.2.3
heartbeat_port = 539
keepalive = 0.2
deadtime = 1
network = nat
nat_router = 10.0.2.1 eth1:1
nat_nmask = 255.255.255.0
syncdaemon = 1
syncd_iface = eth1
syncd_id = 7
garp_count = 3
garp_interval = 0.2
virtual web {
    active = 1
    address = $VIP eth0:1
    vip_nmask = 255.255.255.0
    port = 80
    scheduler = rr
    check_interval = 0.5
    timeout = 1
    rise = 2
    server rs1 {
        address = 10.0.2.11
        active = 1
    }
    server rs2 {
        address = 10.0.2.12
        active = 1
    }
}
virtual echo {
    active = 1
    address = $VIP eth0:1
    vip_nmask = 255.255.255.0
    port = 7
    scheduler = rr
    check_interval = 1
    timeout = 1
    server rs1 {
        address = 10.0.2.11
        active = 1
    }
    server rs2 {
        address = 10.0.2.12
        active = 1
    }
}
EOF
head -c 32 /dev/urandom >"$LAB_TMP/hb.key"
chmod 600 "$LAB_TMP/hb.key"
echo "heartbeat_key_file = $LAB_TMP/hb.key" >>"$LAB_TMP/lvs.cf"

start_pulse dira
start_pulse dirb
wait_for 30 is_role dira active
wait_for 10 is_role dirb standby
say "primary active, backup standby"
st=$(nsrun dira lvs-director status --control-socket "$LAB_TMP/dira.sock")
say "$st"
assert_contains "$st" "authenticated"
assert_contains "$st" "10.0.1.100/24"
# Both directors program IPVS; only the active one holds the addresses.
for d in dira dirb; do
    wait_for 10 sh -c "nsenter --net=/run/netns/$d ipvsadm -Ln | grep -q '10.0.2.12:80'"
done
wait_for 5 sh -c "nsenter --net=/run/netns/dira ip -4 addr show dev eth1 | grep -q 10.0.2.1/24"
if nsrun dirb ip -4 addr show dev eth0 | grep -q "$VIP"; then fail "the backup holds the VIP"; fi
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"

# A connection through the primary, kept open across the failover.
(
    echo one
    sleep 8
    echo two
    sleep 3
) | nsrun cli socat -T 30 - "TCP4:$VIP:7,connect-timeout=5" >"$LAB_TMP/echo.out" 2>&1 &
wait_for 10 grep -q one "$LAB_TMP/echo.out"
# The backup learns it from the master sync daemon (the kernel sends every 2 s or so).
wait_for 10 sh -c "nsenter --net=/run/netns/dirb ipvsadm -Lnc | grep -q '$VIP:7'"
say "the backup has the established connection: $(nsrun dirb ipvsadm -Lnc | grep "$VIP:7")"

# Traffic all along, while the primary dies.
traffic_start cli "$VIP" 30
sleep 1
kill_pulse KILL dira
say "primary killed"
wait_for 15 is_role dirb active
wait_for 5 sh -c "nsenter --net=/run/netns/dirb ip -4 addr show dev eth0 | grep -q $VIP"
counts=$(traffic_wait)
failed=$(grep -c failed "$LAB_TMP/traffic" || true)
say "requests during the failover: $counts"
tail -n 5 "$LAB_TMP/traffic" | grep -q failed && fail "requests still fail after the failover: $(cat "$LAB_TMP/traffic")"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
wait_for 20 grep -q two "$LAB_TMP/echo.out"
say "the established connection survived the failover: $(tr '\n' ' ' <"$LAB_TMP/echo.out")"

# A real server stops answering: out of the backup's (now active) table, then back.
pid=$(ps -o pid,args | awk -v w="$LAB_TMP/www/rs1" '/httpd/ && index($0, w) && !/awk/ { print $1; exit }')
[ -n "$pid" ] || fail "no httpd pid in rs1"
kill "$pid"
wait_for 15 sh -c "! nsenter --net=/run/netns/dirb ipvsadm -Ln -t $VIP:80 | grep -q 10.0.2.11"
st=$(nsrun dirb lvs-director status --control-socket "$LAB_TMP/dirb.sock")
assert_contains "$st" "DOWN"
say "rs1 taken out: $(printf '%s\n' "$st" | grep -A1 'rs1 ' | head -n 2 | tr -s ' ')"
assert_eq "$(get_seq cli "http://$VIP:80/" 3)" "rs2 rs2 rs2"
_lab_in rs1 "httpd -f -p 80 -h $LAB_TMP/www/rs1 </dev/null >/dev/null 2>&1 &"
wait_for 15 sh -c "nsenter --net=/run/netns/dirb ipvsadm -Ln -t $VIP:80 | grep -q 10.0.2.11"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
say ok
