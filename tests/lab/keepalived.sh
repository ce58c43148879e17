# shellcheck shell=sh
# Running Debian's keepalived (the whole daemon: VRRP and its IPVS checker) in a
# director namespace (sourced after lib.sh).
#   start_keepalived NS          keepalived -n -l -D with $LAB_TMP/NS-ka.conf, log $LAB_TMP/NS-ka.log
#   stop_keepalived NS           SIGTERM (a master sends priority 0), waits for it to end
#   ka_state NS                  its last VRRP state (MASTER, BACKUP, FAULT) from its log
#   checker_side_by_side CONF RE  keepalived's checker alone (-C) with CONF in dira (it
#                                programs dira's IPVS table), and CONF imported into
#                                $LAB_TMP/dirb.lvs.cf for `lvs-director pulse` in dirb;
#                                fails when an import warning names a keyword matching RE
#   ka_dr_virtual_server VIP N [LINES]  keepalived's virtual_server for pulse.sh's dr_pair:
#                                rr, DR, rs1 and rs2 with TCP_CHECK (plus LINES in it),
#                                delay_loop N
# Every keepalived started is stopped at exit and the tail of its log printed.
start_keepalived() {
    nsexec "$1" keepalived -n -l -D -f "$LAB_TMP/$1-ka.conf" -p "$LAB_TMP/$1-ka.pid" \
        -r "$LAB_TMP/$1-ka-vrrp.pid" -c "$LAB_TMP/$1-ka-check.pid" >>"$LAB_TMP/$1-ka.log" 2>&1 &
    lab_on_exit "_keepalived_stop $1"
}
_keepalived_pid() {
    [ -s "$LAB_TMP/$1-ka.pid" ] && cat "$LAB_TMP/$1-ka.pid"
}
stop_keepalived() {
    local pid
    pid=$(_keepalived_pid "$1") || fail "no keepalived running in $1"
    kill -TERM "$pid"
    wait_for 10 sh -c "! kill -0 $pid"
}
_keepalived_stop() {
    local pid
    if pid=$(_keepalived_pid "$1") && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        sleep 1
    fi
    say "--- the last lines of $1's keepalived log:" >&2
    tail -n 20 "$LAB_TMP/$1-ka.log" >&2 || true
}
ka_state() {
    sed -n 's/.*Entering \([A-Z]*\) STATE.*/\1/p' "$LAB_TMP/$1-ka.log" | tail -n 1
}
is_ka_state() { [ "$(ka_state "$1")" = "$2" ]; }
# vrrp_state NS : the state of the first VRRP instance of NS's supervisor.
vrrp_state() {
    status "$1" | awk -F'"' '$2 == "vrrp" { in_vrrp = 1 } in_vrrp && $2 == "state" { print $4; exit }'
}
is_vrrp_state() { [ "$(vrrp_state "$1")" = "$2" ]; }
# holds NS ADDR : NS has ADDR on eth0.
holds() { nsrun "$1" ip -4 addr show dev eth0 | grep -q "inet $2/"; }
# longest_failed_run : the longest run of consecutive failed requests in $LAB_TMP/traffic.
longest_failed_run() {
    sort -n "$LAB_TMP/traffic" | awk '$2 == "failed" { run++; if (run > max) max = run; next } { run = 0 } END { print max + 0 }'
}
# gap_traffic_start NS ADDR : requests to http://ADDR:80/ from NS every 0.1 s (1 s
# timeout) until gap_traffic_stop, each recorded as "UPTIME ok|failed" in $LAB_TMP/gaps.
# gap_traffic_stop : stops them and prints "K ok, F failed, longest gap G s", the gap
# being the longest time between two answered requests.
gap_traffic_start() {
    rm -f "$LAB_TMP/gaps" "$LAB_TMP/gaps-stop" "$LAB_TMP/gaps-done"
    cat >"$LAB_TMP/gaps.sh" <<EOS
while [ ! -f "$LAB_TMP/gaps-stop" ]; do
    read -r t _ </proc/uptime
    if printf 'GET / HTTP/1.0\r\n\r\n' | nsenter --net=/run/netns/$1 socat -T 1 - TCP4:$2:80,connect-timeout=1 2>/dev/null | grep -q '200 OK'; then
        echo "\$t ok" >>"$LAB_TMP/gaps"
    else
        echo "\$t failed" >>"$LAB_TMP/gaps"
    fi
    usleep 100000
done
echo done >"$LAB_TMP/gaps-done"
EOS
    sh "$LAB_TMP/gaps.sh" &
    lab_on_exit "touch $LAB_TMP/gaps-stop"
}
longest_gap() {
    awk '$2 == "ok" { if (last != "" && $1 - last > max) max = $1 - last; last = $1 } END { printf "%.2f", max }' "$LAB_TMP/gaps"
}
gap_traffic_stop() {
    touch "$LAB_TMP/gaps-stop"
    wait_for 10 test -f "$LAB_TMP/gaps-done"
    echo "$(grep -c ok "$LAB_TMP/gaps") ok, $(grep -c failed "$LAB_TMP/gaps" || true) failed, longest gap $(longest_gap) s"
}

ka_dr_virtual_server() {
    cat <<EOF
virtual_server $1 80 {
    delay_loop $2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.1.11 80 {
        TCP_CHECK {
            connect_timeout 1
${3:-}
        }
    }
    real_server 10.0.1.12 80 {
        TCP_CHECK {
            connect_timeout 1
${3:-}
        }
    }
}
EOF
}
checker_side_by_side() {
    cp "$1" "$LAB_TMP/dira-ka.conf"
    nsexec dira keepalived -n -l -D -C -f "$LAB_TMP/dira-ka.conf" -p "$LAB_TMP/dira-ka.pid" \
        -c "$LAB_TMP/dira-ka-check.pid" >>"$LAB_TMP/dira-ka.log" 2>&1 &
    lab_on_exit "_keepalived_stop dira"
    lvs-director import --db "$LAB_TMP/dirb.db" --from keepalived "$1" >"$LAB_TMP/import.log" 2>&1 \
        || fail "import: $(cat "$LAB_TMP/import.log")"
    if grep -E ":[0-9]+: warning: .*\`($2)" "$LAB_TMP/import.log"; then
        fail "a checker keyword was not imported"
    fi
    lvs-director export --db "$LAB_TMP/dirb.db" -o "$LAB_TMP/dirb.lvs.cf" || fail "export"
}
