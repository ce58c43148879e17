#!/bin/sh
# lab-timeout: 900
# Crash loops with real IPVS: two directors in direct routing, `preempt = 0`, a client
# sending requests through the VIP all along. Fifty times, the active supervisor is
# SIGKILLed at a random point (plain, during a reload, during a drain, during an
# `lvs-director apply`, in turn) and restarted. Every time: the peer holds the VIP
# within deadtime + 1 s and serves; neither kernel's IPVS table is ever flushed (a
# sampler watches both, and the killed director's service counters go on from where
# they were); the restarted director comes back as standby without the VIP it held
# when it died (no orphaned address) and runs the file in force.
set -eu
. /lab/lib.sh
. /lab/pulse.sh

LOOPS=50
VIP=10.0.1.100
dr_pair "$VIP"
echo "a shared key for scenario 28 of the lab" >"$LAB_TMP/hb.key"
chmod 600 "$LAB_TMP/hb.key"
# conf SERIAL : the pair's lvs.cf with that serial, and a setting that changes with it
# (an Apply of nothing but a new serial writes nothing).
conf() {
    printf 'serial_no = %s\nprimary = 10.0.1.1\nservice = lvs\nbackup_active = 1\nbackup = 10.0.1.3\n' "$1"
    printf 'garp_count = %s\n' $(($1 % 3 + 1))
    printf 'keepalive = 0.2\ndeadtime = 1\npreempt = 0\nnetwork = direct\nheartbeat_key_file = %s\n' "$LAB_TMP/hb.key"
    dr_virtual_web "$VIP"
}
conf 1 >"$LAB_TMP/lvs.cf"
mkdir -p "$LAB_TMP/db"

now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
other() { if [ "$1" = dira ]; then echo dirb; else echo dira; fi; }
# The service's total connection count in NS's kernel (IPVS's own counter: it starts
# again from 0 if the service is ever deleted and added back).
conns() {
    nsrun "$1" ipvsadm -Ln --stats -t "$VIP:80" | awk '$1 == "TCP" { print $3; exit }'
}
holds_vip() { nsrun "$1" ip -4 addr show dev eth0 | grep -q " $VIP/"; }
# wait_vip NS : until NS holds the VIP, polled every 20 ms with nothing but busybox (an
# `lvs-director status` costs a tenth of a second or more under emulation); 10 s at most.
wait_vip() {
    local n=0
    while ! holds_vip "$1"; do
        n=$((n + 1))
        [ "$n" -lt 500 ] || fail "$1 never took the VIP"
        usleep 20000
    done
}
back_clean() { is_role "$1" standby && ! holds_vip "$1"; }
serial_in_force() { awk '$1 == "serial_no" { print $3; exit }' "$LAB_TMP/lvs.cf"; }
# The director's own serial: the first "serial" of its status (the peer's comes later).
serial_of() { status "$1" | awk -F'[:,]' '$1 ~ /"serial"/ { gsub(/ /, "", $2); print $2; exit }'; }
runs_serial() { [ "$(serial_of "$1")" = "$2" ]; }

start_pulse dira
start_pulse dirb
wait_for 30 is_role dira active
wait_for 10 is_role dirb standby
for d in dira dirb; do
    wait_for 10 sh -c "nsenter --net=/run/netns/$d ipvsadm -Ln | grep -q '10.0.1.12:80'"
done
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
runs_serial dira 1 || fail "the status has no serial the way this scenario reads it: $(status dira)"

# The sampler: both kernels' tables every 0.2 s; any sample without the service or
# one of its two real servers is written down.
{
    echo "while [ ! -e '$LAB_TMP/sampler-stop' ]; do"
    echo "  for d in dira dirb; do"
    echo "    n=\$(nsenter --net=/run/netns/\$d ipvsadm -Ln -t $VIP:80 2>/dev/null | grep -c -- '-> 10.0.1.1[12]:80' || true)"
    echo "    [ \"\$n\" = 2 ] || echo \"\$d \$n \$(cut -d' ' -f1 /proc/uptime)\" >>'$LAB_TMP/flushed'"
    echo "  done"
    echo "  usleep 200000"
    echo "done"
} >"$LAB_TMP/sampler.sh"
sh "$LAB_TMP/sampler.sh" &
lab_on_exit ": >'$LAB_TMP/sampler-stop'"
# The client: a request through the VIP every 0.1 s until the end, each written down.
{
    echo "while [ ! -e '$LAB_TMP/sampler-stop' ]; do"
    echo "  if printf 'GET / HTTP/1.0\r\n\r\n' | nsenter --net=/run/netns/cli socat -T 2 - TCP4:$VIP:80,connect-timeout=2 2>/dev/null | grep -q '200 OK'; then"
    echo "    echo ok >>'$LAB_TMP/traffic'"
    echo "  else"
    echo "    echo failed >>'$LAB_TMP/traffic'"
    echo "  fi"
    echo "  usleep 100000"
    echo "done"
} >"$LAB_TMP/client.sh"
sh "$LAB_TMP/client.sh" &

active=dira
worst=0
serial=1
i=0
while [ "$i" -lt "$LOOPS" ]; do
    i=$((i + 1))
    standby=$(other "$active")
    before=$(conns "$active")
    usleep $((RANDOM % 1000 * 1000))
    case $((i % 4)) in
    0) how="plain" ;;
    1)
        how="during a reload"
        kill_pulse HUP "$active"
        usleep $((RANDOM % 200 * 1000))
        ;;
    2)
        how="during a drain"
        nsrun "$active" lvs-director ctl drain web rs1 --control-socket "$LAB_TMP/$active.sock" >/dev/null 2>&1 &
        usleep $((RANDOM % 100 * 1000))
        ;;
    3)
        how="during an apply"
        serial=$((serial + 1))
        conf "$serial" >"$LAB_TMP/next.cf"
        nsrun "$active" lvs-director --db "$LAB_TMP/db/$active.db" import "$LAB_TMP/next.cf" >/dev/null 2>&1
        nsrun "$active" lvs-director --db "$LAB_TMP/db/$active.db" apply --yes --lvs-cf "$LAB_TMP/lvs.cf" \
            --control-socket "$LAB_TMP/$active.sock" >"$LAB_TMP/apply.out" 2>&1 &
        usleep $((RANDOM % 300 * 1000))
        ;;
    esac
    t0=$(now_ms)
    kill_pulse KILL "$active"
    wait_vip "$standby"
    took=$(($(now_ms) - t0))
    wait_for 5 is_role "$standby" active
    [ "$took" -le 2000 ] || fail "kill $i ($how): $standby held the VIP $took ms after the kill (deadtime 1 s + 1 s)"
    [ "$took" -le "$worst" ] || worst=$took
    http_get cli "$VIP" 80 >/dev/null || fail "kill $i ($how): no answer through the VIP once $standby held it"
    # The dead director's kernel keeps its table, counters and all.
    after=$(conns "$active")
    [ "$after" -ge "$before" ] || fail "kill $i ($how): $active's IPVS service was recreated (connections $before -> $after)"
    start_pulse "$active"
    wait_for 15 back_clean "$active"
    later=$(conns "$active")
    [ "$later" -ge "$after" ] || fail "kill $i ($how): the restarted supervisor recreated the IPVS service (connections $after -> $later)"
    in_force=$(serial_in_force)
    wait_for 5 runs_serial "$active" "$in_force"
    say "kill $i ($how): $standby held the VIP after $took ms; $active back as standby without it, serial $in_force, connections $before -> $later"
    active=$standby
done
: >"$LAB_TMP/sampler-stop"
[ ! -e "$LAB_TMP/flushed" ] || fail "an IPVS table lost its real servers: $(cat "$LAB_TMP/flushed")"
failed=$(grep -c failed "$LAB_TMP/traffic" || true)
say "traffic: $(grep -c ok "$LAB_TMP/traffic") requests answered, $failed failed over $LOOPS kills; slowest takeover $worst ms"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
say ok
