#!/bin/sh
# Distribution as configured: wrr 3:1 gives 75/25 ±5% over 400 requests; persistence
# and sh keep one client on one server.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_nat -n 2
cf_start nat
cf_virtual web "$VIP" 80 wrr
cf_server rs1 10.0.2.11 weight=3
cf_server rs2 10.0.2.12 weight=1
cf_end
director_apply >/dev/null
hits=$(count_hits "$CLI" "http://$VIP:80/" 400)
say "wrr 3:1 over 400: $(echo $hits)"
rs1=$(printf '%s\n' "$hits" | awk '$1 == "rs1" { print $2 }')
[ "${rs1:-0}" -ge 280 ] && [ "${rs1:-0}" -le 320 ] || fail "wrr 3:1: rs1 got ${rs1:-0} of 400, expected 300 ±20"

for sched in "rr persistent=300" "sh"; do
    cf_start nat
    cf_virtual web "$VIP" 80 $sched
    cf_server rs1 10.0.2.11
    cf_server rs2 10.0.2.12
    cf_end
    director_apply >/dev/null
    hits=$(count_hits "$CLI" "http://$VIP:80/" 10)
    say "$sched: $(echo $hits)"
    assert_eq 1 "$(printf '%s\n' "$hits" | wc -l)" "$sched keeps the client on one server"
done
say ok
