#!/bin/sh
# Restarting (a new process applying the same configuration) never interrupts traffic:
# the table is reconciled, not rebuilt, so the service keeps its counters.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_nat -n 2
cf_start nat
cf_virtual web "$VIP" 80 rr
cf_server rs1 10.0.2.11
cf_server rs2 10.0.2.12
cf_end
director_apply >/dev/null
conns() { nsrun "$DIR" ipvsadm -Ln --stats -t "$VIP:80" | awk '$1 == "TCP" { print $3 }'; }
# The kernel folds its per-CPU counters into what a dump reads every two seconds.
get_seq "$CLI" "http://$VIP:80/" 4 >/dev/null
sleep 3
before=$(conns)

# Traffic all along, from the client, while the director is restarted five times. A
# script of its own: a subshell of this one would inherit the cleanup trap.
cat >"$LAB_TMP/traffic.sh" <<EOF
i=0
while [ \$i -lt 40 ]; do
    printf 'GET / HTTP/1.0\r\n\r\n' | nsenter --net=/run/netns/$CLI socat -T 5 - TCP4:$VIP:80,connect-timeout=5 |
        grep -q '200 OK' || echo "request \$i failed" >>"$LAB_TMP/failures"
    i=\$((i + 1))
done
echo done >"$LAB_TMP/traffic-done"
EOF
sh "$LAB_TMP/traffic.sh" &
n=0
while [ $n -lt 5 ]; do
    out=$(director_apply 2>&1)
    assert_contains "$out" "# 0 operation(s)"
    n=$((n + 1))
done
wait_for 120 test -f "$LAB_TMP/traffic-done"
[ ! -f "$LAB_TMP/failures" ] || fail "$(wc -l <"$LAB_TMP/failures") of 40 requests failed during restarts"
sleep 3
after=$(conns)
say "service connections: $before before, $after after"
[ "$after" -ge $((before + 40)) ] || fail "the service counters went from $before to $after: it was rebuilt"
say ok
