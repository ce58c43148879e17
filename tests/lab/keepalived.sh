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
#   cost_lan                     the health-check cost LAN: dira .1 and dirb .3, and rs
#                                .10 holding every address of 10.1.0.0/16 (on lo), all
#                                answered by lab-responder on port 80, counting the
#                                SYNs from each director (nft counters)
#   checker_cost KIND SERVICES DESTS WINDOW
#                                the health-check cost benchmark on that LAN (see there)
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

cost_lan() {
    lab_switch net lan
    lab_ns dira dirb rs
    printf 'lan dira eth0\nlan dirb eth0\nlan rs eth0\n' >"$LAB_TMP/cost-wires"
    lab_wires net <"$LAB_TMP/cost-wires"
    # Every real server a distinct address (lvs-director probes a real server shared by
    # several virtual servers once, keepalived once per virtual server): a prefix on lo
    # makes all of 10.1.0.0/16 local to rs, and the directors route it through rs.
    _lab_in dira "$(_lab_if_script eth0 10.0.1.1/24)
        ip route add 10.1.0.0/16 via 10.0.1.10"
    _lab_in dirb "$(_lab_if_script eth0 10.0.1.3/24)
        ip route add 10.1.0.0/16 via 10.0.1.10"
    _lab_in rs "$(_lab_if_script eth0 10.0.1.10/24)
        ip addr add 10.1.0.1/16 dev lo"
    # Each check opens one connection: its SYN, counted by source, is the check.
    {
        echo 'table inet cost {'
        echo '    chain input {'
        echo '        type filter hook input priority 0;'
        echo '        ip saddr 10.0.1.1 tcp dport 80 tcp flags & (syn | ack) == syn counter comment "dira"'
        echo '        ip saddr 10.0.1.3 tcp dport 80 tcp flags & (syn | ack) == syn counter comment "dirb"'
        echo '    }'
        echo '}'
    } >"$LAB_TMP/cost.nft"
    nsrun rs nft -f "$LAB_TMP/cost.nft" || fail "nft counters in rs"
    nsrun rs lab-responder 80 &
    lab_on_exit "kill $! 2>/dev/null || true"
}
# _cost_conf KIND SERVICES DESTS : keepalived.conf with SERVICES NAT virtual servers
# (10.0.1.100, ports 10001…) of DESTS real servers each (10.1.0.1 onwards, port 80, each
# its own address), KIND (tcp or http) checks every second.
_cost_conf() {
    awk -v kind="$1" -v n="$2" -v d="$3" 'BEGIN {
        for (i = 1; i <= n; i++) {
            printf "virtual_server 10.0.1.100 %d {\n    delay_loop 1\n    lb_algo wlc\n", 10000 + i
            printf "    lb_kind NAT\n    protocol TCP\n"
            for (j = 1; j <= d; j++) {
                k = (i - 1) * d + j
                printf "    real_server 10.1.%d.%d 80 {\n", int(k / 250), k % 250 + 1
                if (kind == "http")
                    printf "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n            connect_timeout 1\n        }\n"
                else
                    printf "        TCP_CHECK {\n            connect_timeout 1\n        }\n"
                printf "    }\n"
            }
            printf "}\n"
        }
    }'
}
# _cost_up NS : how many real servers NS's IPVS table holds with a weight.
_cost_up() {
    nsrun "$1" ipvsadm -Ln | awk '$1 == "->" && $2 ~ /^10\.1\./ && $4 > 0 { n++ } END { print n + 0 }'
}
# _cost_ticks PID... : their CPU time so far, user and system, in clock ticks.
_cost_ticks() {
    local pid t u=0 s=0
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat; the name (field 2) has no space here.
        t=$(awk '{ print $14, $15 }' "/proc/$pid/stat") || fail "process $pid is gone"
        # shellcheck disable=SC2086
        set -- $t
        u=$((u + $1)) s=$((s + $2))
    done
    echo "$u $s"
}
_cost_syns() {
    nsrun rs nft list chain inet cost input | sed -n "s/.*packets \\([0-9]*\\) .*comment \"$1\".*/\\1/p"
}
# checker_cost KIND SERVICES DESTS WINDOW : on cost_lan's LAN, SERVICES x DESTS real
# servers with KIND (tcp or http) checks every second, run by keepalived's checker alone
# (-C) in dira and, imported from the same keepalived.conf, by `lvs-director pulse` in
# dirb. Once both IPVS tables hold every real server (and 3 s more), the CPU time of
# each (keepalived's parent and checker processes; the supervisor) is read from /proc
# over the same WINDOW seconds, and the checks each made are counted in rs. Prints one
# `BENCH checker-cost` line, then stops both and clears their tables. Fails when
# lvs-director made fewer than 90 % or more than 115 % of the checks due in the window,
# or keepalived fewer than a quarter (it did not run); keepalived falling behind on a
# loaded machine is a finding, said in the line, not a failure.
checker_cost() {
    local kind=$1 n=$2 d=$3 w=$4 want i ka kc ours k0 o0 a0 b0 k1 o1 a1 b1 a b
    want=$((n * d))
    _cost_conf "$kind" "$n" "$d" >"$LAB_TMP/cost-$kind.conf"
    checker_side_by_side "$LAB_TMP/cost-$kind.conf" 'url|path|status_code|connect_timeout|delay_loop'
    start_pulse dirb "$LAB_TMP/dirb.lvs.cf"
    i=0
    while [ "$(_cost_up dira)" -ne "$want" ] || [ "$(_cost_up dirb)" -ne "$want" ]; do
        i=$((i + 1))
        [ "$i" -lt 120 ] || fail "$kind: after 120 s keepalived has $(_cost_up dira) and lvs-director $(_cost_up dirb) of $want real servers up"
        sleep 1
    done
    sleep 3
    ka=$(cat "$LAB_TMP/dira-ka.pid") kc=$(cat "$LAB_TMP/dira-ka-check.pid") ours=$(pulse_pid dirb)
    [ -n "$ours" ] || fail "no supervisor in dirb"
    k0=$(_cost_ticks "$ka" "$kc") o0=$(_cost_ticks "$ours") a0=$(_cost_syns dira) b0=$(_cost_syns dirb)
    sleep "$w"
    k1=$(_cost_ticks "$ka" "$kc") o1=$(_cost_ticks "$ours") a1=$(_cost_syns dira) b1=$(_cost_syns dirb)
    # Clock ticks are 1/100 s (USER_HZ), whatever the kernel's own HZ.
    echo "$kind $n $d $w $k0 $k1 $o0 $o1 $((a1 - a0)) $((b1 - b0))" | awk '{
        w = $4; ku = $7 - $5; ks = $8 - $6; ou = $11 - $9; os = $12 - $10
        printf "BENCH checker-cost %s %dx%d window=%ds", $1, $2, $3, w
        printf " keepalived: %.1f%% of a core (user %.1f, system %.1f), %.0f checks/s;", (ku + ks) / w, ku / w, ks / w, $13 / w
        printf " lvs-director: %.1f%% of a core (user %.1f, system %.1f), %.0f checks/s;", (ou + os) / w, ou / w, os / w, $14 / w
        printf " ratio %.2f\n", (ku + ks > 0 ? (ou + os) / (ku + ks) : 0)
    }'
    b=$((b1 - b0)) a=$((a1 - a0))
    [ $((b * 100)) -ge $((want * w * 90)) ] || fail "$kind: lvs-director made $b checks in $w s, fewer than 90 % of $((want * w))"
    [ $((b * 100)) -le $((want * w * 115)) ] || fail "$kind: lvs-director made $b checks in $w s, more than 115 % of $((want * w))"
    [ $((a * 100)) -ge $((want * w * 25)) ] || fail "$kind: keepalived made $a checks in $w s, fewer than a quarter of $((want * w)): did it run?"
    [ $((a * 100)) -ge $((want * w * 90)) ] || say "$kind: keepalived fell behind: $a checks of $((want * w)) due"
    stop_keepalived dira
    kill_pulse TERM dirb
    wait_for 10 sh -c "! kill -0 $ours"
    nsrun dira ipvsadm -C
    nsrun dirb ipvsadm -C
}
