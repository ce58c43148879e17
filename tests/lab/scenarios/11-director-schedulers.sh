#!/bin/sh
# Every kernel scheduler (and sh/mh's flags) programmed by lvs-director, read back, and
# answering traffic.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_nat -n 2
for sched in rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf "sh sched_port=1" "mh sched_fallback=1 sched_port=1"; do
    set -- $sched
    cf_start nat
    cf_virtual web "$VIP" 80 "$@"
    cf_server rs1 10.0.2.11
    cf_server rs2 10.0.2.12
    cf_end
    director_apply >/dev/null
    line=$(nsrun "$DIR" ipvsadm -Ln | grep "^TCP  $VIP:80 ")
    case $line in
    "TCP  $VIP:80 $1"*) ;;
    *) fail "scheduler $1: ipvsadm shows '$line'" ;;
    esac
    case $sched in "sh "*) assert_contains "$line" "sh-port" ;; "mh "*) assert_contains "$line" "mh-fallback,mh-port" ;; esac
    body=$(http_get "$CLI" "$VIP" 80) || fail "scheduler $1: no answer"
    say "$sched: $line -> $body"
done
say ok
