#!/bin/sh
# Configuration sync with real IPVS: two directors in direct routing, each running the
# admin UI (which syncs) and the supervisor. An Apply on the backup adds a virtual
# server on a second VIP; the active director takes it from the backup, programs it
# in its IPVS table and serves it, and both run the same serial.
set -eu
. /lab/lib.sh
. /lab/pulse.sh

VIP=10.0.1.100
VIP2=10.0.1.101
dr_pair "$VIP"
for k in 1 2; do
    nsrun rs$k ip addr add $VIP2/32 dev lo
done
echo "a shared key for scenario 27 of the lab" >"$LAB_TMP/hb.key"
chmod 600 "$LAB_TMP/hb.key"
cat >"$LAB_TMP/base.cf" <<EOF
serial_no = 1
primary = 10.0.1.1
service = lvs
backup_active = 1
backup = 10.0.1.3
keepalive = 0.2
deadtime = 1
network = direct
heartbeat_key_file = $LAB_TMP/hb.key
$(dr_virtual_web "$VIP")
EOF

# ld NS ARGS : lvs-director with NS's database.
ld() {
    local ns=$1
    shift
    nsrun "$ns" lvs-director --db "$LAB_TMP/$ns/director.db" "$@"
}
# apply NS : `lvs-director apply --yes` on NS, the same code as the admin UI's Apply.
apply() {
    ld "$1" apply --yes --lvs-cf "$LAB_TMP/$1/lvs.cf" --control-socket "$LAB_TMP/$1.sock"
}
web_pid() {
    ps -o pid,args | awk -v s="$LAB_TMP/$1/director.db" '/lvs-director/ && / web / && index($0, s) && !/awk/ { print $1; exit }'
}
stop_web() {
    local pid
    pid=$(web_pid "$1")
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    sleep 0.2
    say "--- the last lines of $1's admin UI log:" >&2
    tail -n 20 "$LAB_TMP/web-$1.log" >&2 || true
}
serial() { awk '$1 == "serial_no" { print $3; exit }' "$LAB_TMP/$1/lvs.cf"; }

for d in dira dirb; do
    mkdir -p "$LAB_TMP/$d"
    ld $d import "$LAB_TMP/base.cf" >/dev/null
    apply $d >/dev/null 2>&1
    start_pulse $d "$LAB_TMP/$d/lvs.cf"
    ld $d web --listen 127.0.0.1:3636 --lvs-cf "$LAB_TMP/$d/lvs.cf" \
        --control-socket "$LAB_TMP/$d.sock" >>"$LAB_TMP/web-$d.log" 2>&1 &
    lab_on_exit "stop_web $d"
done
wait_for 30 is_role dira active
wait_for 10 is_role dirb standby
assert_eq "$(serial dira)" "$(serial dirb)"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"

# The Apply on the backup: a second virtual server.
{
    cat "$LAB_TMP/base.cf"
    dr_virtual_web "$VIP2" | sed 's/^virtual web {/virtual web2 {/'
} >"$LAB_TMP/two.cf"
ld dirb import "$LAB_TMP/two.cf" >/dev/null
said=$(apply dirb 2>&1)
say "$said"
# Taken from the offer, or already by its own poll (once a second).
case $said in
*"Peer 10.0.1.1: took serial"* | *"Peer 10.0.1.1: serial "*" is already in force here"*) ;;
*) fail "the active director did not take it: $said" ;;
esac
assert_eq "$(serial dira)" "$(serial dirb)"
wait_for 10 sh -c "nsenter --net=/run/netns/dira ipvsadm -Ln | grep -A3 '$VIP2:80' | grep -q '10.0.1.12:80 *Route'"
assert_rr "$(get_seq cli "http://$VIP2:80/" 4)" "rs1 rs2"
assert_rr "$(get_seq cli "http://$VIP:80/" 4)" "rs1 rs2"
grep -q "took the peer's configuration" "$LAB_TMP/web-dira.log" ||
    fail "the active director's admin UI did not log the configuration it took: $(tail -n 5 "$LAB_TMP/web-dira.log")"
say ok
