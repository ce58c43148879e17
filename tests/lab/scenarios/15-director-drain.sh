#!/bin/sh
# A real server leaving the configuration is drained: weight 0 while it has
# connections, deleted once its drain timeout passes; one without connections goes at
# once. New connections never reach a draining server.
set -eu
. /lab/lib.sh
. /lab/director.sh

lab_topo_nat -n 3
write_cf() {
    cf_start nat
    cf_virtual web "$VIP" 80 rr drain_timeout=10
    for s in "$@"; do cf_server "$s" "10.0.2.1${s#rs}"; done
    cf_end
}
write_cf rs1 rs2 rs3
director_apply >/dev/null

# A connection held open (the request never ends) on whichever server takes it.
nsrun "$CLI" sh -c "sleep 60 | socat - TCP4:$VIP:80" >/dev/null 2>&1 &
held=$!
lab_on_exit "kill $held"
held_conn() { nsrun "$DIR" ipvsadm -Ln | grep -Eq -- '-> [0-9.]+:80 +Masq +[0-9]+ +1 '; }
wait_for 10 held_conn
busy=$(nsrun "$DIR" ipvsadm -Ln | awk '$1 == "->" && $5 == 1 { split($2, a, ":"); print a[1] }')
say "the held connection is on $busy"
case $busy in 10.0.2.11) keep=rs2 idle=rs3 gone=rs1 ;; 10.0.2.12) keep=rs1 idle=rs3 gone=rs2 ;; *) keep=rs1 idle=rs2 gone=rs3 ;; esac

# Remove the busy server and an idle one.
write_cf "$keep"
out=$(director_apply 2>&1)
say "$out"
assert_contains "$out" "ipvsadm -e -t $VIP:80 -r $busy:80 -m -w 0"
assert_contains "$out" "# draining $busy:80"
idle_ip=10.0.2.1${idle#rs}
assert_contains "$out" "ipvsadm -d -t $VIP:80 -r $idle_ip:80"
table=$(nsrun "$DIR" ipvsadm -Ln)
assert_contains "$table" "-> $busy:80"
case $table in *"$idle_ip:80"*) fail "the idle server was not deleted" ;; esac
hits=$(count_hits "$CLI" "http://$VIP:80/" 4)
assert_eq "$keep 4" "$hits" "new connections during the drain"

# Within the drain timeout a second apply keeps draining (the deadline was remembered).
out=$(director_apply 2>&1)
assert_contains "$out" "# draining $busy:80"
sleep 10
out=$(director_apply 2>&1)
say "$out"
assert_contains "$out" "ipvsadm -d -t $VIP:80 -r $busy:80"
case $(nsrun "$DIR" ipvsadm -Ln) in *"$busy:80"*) fail "drained server still there after its timeout" ;; esac
say ok
