#!/bin/sh
# Connection-sync daemons, master on one director and backup on another, started
# through lvs-director's netlink client and visible to ipvsadm.
set -eu
. /lab/lib.sh

lab_topo_nat -n 1
lab_ns dir2
nsrun "$DIR" lvs-director ipvs sync-start --state master --interface eth0 --sync-id 5
nsrun dir2 lvs-director ipvs sync-start --state backup --interface lo --sync-id 5
master=$(nsrun "$DIR" ipvsadm --list --daemon)
backup=$(nsrun dir2 ipvsadm --list --daemon)
say "$master"
say "$backup"
assert_contains "$master" "master sync daemon (mcast=eth0, syncid=5"
assert_contains "$backup" "backup sync daemon (mcast=lo, syncid=5"
show=$(nsrun "$DIR" lvs-director ipvs show)
assert_contains "$show" "sync daemon: master on eth0, syncid 5"
nsrun "$DIR" lvs-director ipvs sync-stop --state master
case $(nsrun "$DIR" ipvsadm --list --daemon) in *master*) fail "the master sync daemon did not stop" ;; esac
say ok
