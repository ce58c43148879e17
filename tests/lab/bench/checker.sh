#!/bin/sh
# The health-check cost benchmark (checker_cost in keepalived.sh) at the size
# scripts/bench.sh checker hands over: BENCH_SERVICES x BENCH_DESTS real servers checked
# every second by keepalived's checker and by lvs-director, CPU over BENCH_WINDOW s, for
# each kind in BENCH_KINDS.
set -eu
. /lab/lib.sh
. /lab/pulse.sh
. /lab/keepalived.sh

cost_lan
for kind in $BENCH_KINDS; do
    checker_cost "$kind" "$BENCH_SERVICES" "$BENCH_DESTS" "$BENCH_WINDOW"
done
