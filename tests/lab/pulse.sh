# shellcheck shell=sh
# Running `lvs-director pulse` in a director namespace (sourced after lib.sh).
#   start_pulse NS [LVS_CF]   pulse with LVS_CF (default $LAB_TMP/lvs.cf), socket $LAB_TMP/NS.sock,
#                             log $LAB_TMP/NS.log
#   status NS                 `lvs-director status --json` of NS's supervisor
#   role NS / is_role NS ROLE its director role (starting standby active fault stopped)
#   pulse_pid NS              the supervisor's pid (not busybox nsenter's, which may fork)
#   kill_pulse SIGNAL NS      sends SIGNAL to it
#   dr_pair VIP               cli 10.0.1.2, directors dira .1 and dirb .3, real servers
#                             rs1 .11 and rs2 .12 (VIP on lo, serving HTTP) on one LAN
#   dr_virtual_web VIP        the `virtual web` block (rr, rs1 and rs2) of that LAN
# Every supervisor started is stopped at exit and the tail of its log printed.
start_pulse() {
    nsrun "$1" lvs-director pulse --config "${2:-$LAB_TMP/lvs.cf}" --control-socket "$LAB_TMP/$1.sock" \
        --state-dir "$LAB_TMP/state-$1" >>"$LAB_TMP/$1.log" 2>&1 &
    lab_on_exit "_pulse_stop $1"
}
status() { nsrun "$1" lvs-director status --json --control-socket "$LAB_TMP/$1.sock" 2>/dev/null; }
role() { status "$1" | awk -F'"' '$2 == "role" { print $4; exit }'; }
is_role() { [ "$(role "$1")" = "$2" ]; }
pulse_pid() {
    ps -o pid,args | awk -v s="$LAB_TMP/$1.sock" '/lvs-director pulse/ && index($0, s) && !/awk/ { print $1; exit }'
}
_pulse_stop() {
    local pid
    pid=$(pulse_pid "$1")
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    sleep 0.3
    say "--- the last lines of $1's supervisor log:" >&2
    tail -n 30 "$LAB_TMP/$1.log" >&2 || true
}
kill_pulse() {
    local pid
    pid=$(pulse_pid "$2")
    [ -n "$pid" ] || fail "no supervisor running in $2"
    kill "-$1" "$pid"
}
# traffic_start NS URL_ADDR N : N requests (one every 0.1 s) to http://URL_ADDR:80/ from
# NS in the background, each recorded as "I ok" or "I failed" in $LAB_TMP/traffic.
# traffic_wait : waits for them (60 s at most) and prints "K ok, F failed".
traffic_start() {
    rm -f "$LAB_TMP/traffic" "$LAB_TMP/traffic-done"
    cat >"$LAB_TMP/traffic.sh" <<EOF
i=0
while [ \$i -lt $3 ]; do
    if printf 'GET / HTTP/1.0\r\n\r\n' | nsenter --net=/run/netns/$1 socat -T 2 - TCP4:$2:80,connect-timeout=2 2>/dev/null | grep -q '200 OK'; then
        echo "\$i ok" >>"$LAB_TMP/traffic"
    else
        echo "\$i failed" >>"$LAB_TMP/traffic"
    fi
    i=\$((i + 1))
    usleep 100000
done
echo done >"$LAB_TMP/traffic-done"
EOF
    sh "$LAB_TMP/traffic.sh" &
}
traffic_wait() {
    wait_for 60 test -f "$LAB_TMP/traffic-done"
    echo "$(grep -c ok "$LAB_TMP/traffic") ok, $(grep -c failed "$LAB_TMP/traffic" || true) failed"
}

dr_pair() {
    lab_switch net lan
    lab_ns cli dira dirb rs1 rs2
    lab_wires net <<EOF
lan cli eth0
lan dira eth0
lan dirb eth0
lan rs1 eth0
lan rs2 eth0
EOF
    _lab_in cli "$(_lab_if_script eth0 10.0.1.2/24)"
    _lab_in dira "$(_lab_if_script eth0 10.0.1.1/24)"
    _lab_in dirb "$(_lab_if_script eth0 10.0.1.3/24)"
    for k in 1 2; do
        _lab_in rs$k "sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 >/dev/null
            $(_lab_if_script eth0 10.0.1.1$k/24)
            ip addr add $1/32 dev lo
            $(_lab_serve_script rs$k rs$k "$1")"
    done
}
dr_virtual_web() {
    cat <<EOF
virtual web {
    active = 1
    address = $1 eth0
    vip_nmask = 255.255.255.0
    port = 80
    scheduler = rr
    check_interval = 1
    timeout = 1
    server rs1 {
        address = 10.0.1.11
        active = 1
    }
    server rs2 {
        address = 10.0.1.12
        active = 1
    }
}
EOF
}
