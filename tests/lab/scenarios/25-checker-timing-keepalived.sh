#!/bin/sh
# Health-check timing side by side with keepalived's checker: the same keepalived.conf
# (TCP_CHECK, delay_loop 4, nb_get_retry 2, delay_before_retry 1) run by keepalived
# (checker only) in dira and, imported, by `lvs-director pulse` in dirb, each with its
# own IPVS table, against the same real servers. A real server stops answering: both
# take it out about delay_loop phase + 2 × delay_before_retry after (not after 3 ×
# delay_loop, which is what lvs-director did before it knew delay_before_retry), within
# one delay_loop of each other; it comes back: both put it back.
set -eu
. /lab/lib.sh
. /lab/pulse.sh
. /lab/keepalived.sh

VIP=10.0.1.100
dr_pair "$VIP"
ka_dr_virtual_server "$VIP" 4 "            nb_get_retry 2
            delay_before_retry 1" >"$LAB_TMP/checker.conf"
checker_side_by_side "$LAB_TMP/checker.conf" 'delay_before_retry|nb_get_retry|delay_loop|connect_timeout'
grep -q "retry_interval = 1" "$LAB_TMP/dirb.lvs.cf" || fail "no retry_interval in $(cat "$LAB_TMP/dirb.lvs.cf")"
start_pulse dirb "$LAB_TMP/dirb.lvs.cf"

in_table() { nsenter --net=/run/netns/"$1" ipvsadm -Ln | grep -q "$2:80 *Route"; }
for d in dira dirb; do
    wait_for 15 in_table $d 10.0.1.12
done
sleep 1

# rs2 stops answering; when does each table lose it?
pid=$(ps -o pid,args | awk -v w="$LAB_TMP/www/rs2" '/httpd/ && index($0, w) && !/awk/ { print $1; exit }')
[ -n "$pid" ] || fail "no httpd pid in rs2"
read -r t0 _ </proc/uptime
kill "$pid"
ka= ours=
while [ -z "$ka" ] || [ -z "$ours" ]; do
    read -r t _ </proc/uptime
    if [ -z "$ka" ] && ! in_table dira 10.0.1.12; then ka=$t; fi
    if [ -z "$ours" ] && ! in_table dirb 10.0.1.12; then ours=$t; fi
    awk -v t="$t" -v t0="$t0" 'BEGIN { exit !(t - t0 > 20) }' && fail "rs2 still in a table after 20 s (keepalived: ${ka:-yes}, ours: ${ours:-yes})"
    sleep 0.1
done
say "rs2 out: keepalived after $(awk -v a="$ka" -v b="$t0" 'BEGIN { printf "%.1f", a - b }') s, lvs-director after $(awk -v a="$ours" -v b="$t0" 'BEGIN { printf "%.1f", a - b }') s"
# keepalived: within delay_loop + 2 × delay_before_retry (6 s) plus a check's time;
# both within one delay_loop of each other.
awk -v a="$ours" -v b="$t0" 'BEGIN { exit !(a - b <= 7.5) }' || fail "lvs-director took rs2 out after more than 7.5 s"
awk -v a="$ka" -v b="$ours" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 4.5) }' || fail "more than one delay_loop between keepalived and lvs-director"

# rs2 answers again: both put it back (one success, keepalived's rule).
_lab_in rs2 "httpd -f -p 80 -h $LAB_TMP/www/rs2 </dev/null >/dev/null 2>&1 &"
for d in dira dirb; do
    wait_for 10 in_table $d 10.0.1.12
done
say ok
