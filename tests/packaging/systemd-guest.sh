#!/bin/bash
# Runs inside the VM of tests/packaging/systemd-vm.sh, as a service under systemd
# (PID 1), with real IPVS. What an administrator does with the .deb, checked:
#   1. `dpkg -i`: the user, the database, the first-password hint; both units started
#      by the maintainer scripts and running as Type=notify (READY reached), ip_vs
#      loaded by systemd-modules-load, the control socket's group and mode;
#   2. the journal: one line per event, the priority from the line (`-p warning`
#      finds the warning of the default lvs.cf), no timestamp in the text;
#   3. a site through the admin UI under its hardened unit: `passwd`, `import` as the
#      service user, then over HTTP (curl) login and Apply, which writes
#      /etc/lvs-director/lvs.cf and has the supervisor reload through its socket; the
#      supervisor, under its own hardened unit, brings the VIP and the NAT router
#      address up and programs IPVS (NAT, two real servers: busybox httpd in
#      namespaces), and a client namespace's requests through the VIP are answered by
#      both in turn;
#   4. a real server that stops answering leaves the table with a warning in the
#      journal, and comes back; `systemctl reload`;
#   5. SIGKILL of the supervisor: systemd restarts it and it takes the table over
#      without dropping it;
#   6. the upgrade (`dpkg -i` of revision 2): both restarted with the new binary,
#      the database, password and lvs.cf kept, the service still in the kernel;
#   7. `dpkg --purge`: services stopped, the VIP down, the IPVS services the
#      supervisor created withdrawn, units, state and configuration gone;
#   8. the .rpm's scripts, through rpm itself (--nodeps: Debian's rpm database knows
#      none of its requirements): %post (user, database, the start hint), `systemctl
#      enable --now`, the site applied again, `rpm -U` (try-restart), `rpm -e` (stop,
#      withdraw; the database kept).
# `systemd-analyze security` of both units is printed for the record.
set -uo pipefail

say() { echo "LVS-VM: $*"; }
off() {
    sync
    echo o >/proc/sysrq-trigger
    sleep 60
}
fail() {
    echo "LVS-VM FAIL: $*"
    {
        systemctl --no-pager --failed
        systemctl --no-pager status lvs-director-web lvs-director-pulse
        journalctl --no-pager -n 60 -u lvs-director-web -u lvs-director-pulse
        ipvsadm -Ln
        ip -br addr
    } 2>&1 | sed 's/^/LVS-VM-DIAG | /'
    off
}
# check WHAT COMMAND... : COMMAND must succeed.
check() {
    local what=$1
    shift
    "$@" || fail "$what"
}
# wait_for SECS WHAT COMMAND... : COMMAND must succeed within SECS seconds.
wait_for() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    fail "$what (waited ${secs} s)"
}
trap 'fail "the check script stopped at line $LINENO"' ERR

WEB=lvs-director-web.service
PULSE=lvs-director-pulse.service
DB=/var/lib/lvs-director/director.db
CF=/etc/lvs-director/lvs.cf
UI=http://127.0.0.1:3636
PASSWORD=lab-password-0123
as_svc() { runuser -u lvs-director -- "$@"; }
prop() { systemctl show -p "$2" --value "$1"; }
running() { [ "$(prop "$1" ActiveState)/$(prop "$1" SubState)" = active/running ]; }

# A degraded boot already failed here through the ERR trap; now it says why.
state=$(systemctl is-system-running --wait) ||
    fail "the boot ended '$state': $(systemctl --failed --no-legend --plain | awk '{ print $1 }' | xargs)"
say "booted: $state (systemd $(systemctl --version | head -n1 | cut -d' ' -f2), kernel $(uname -r))"

# --- 1. install ---------------------------------------------------------------------------
out=$(dpkg -i /lab/lvs-director-1.deb 2>&1) || fail "dpkg -i failed: $out"
echo "$out" | grep -F 'runuser -u lvs-director -- /usr/bin/lvs-director passwd admin' >/dev/null ||
    fail "the installation did not say how to set the first password: $out"
for u in $WEB $PULSE; do
    running "$u" || fail "$u is not running after the installation: $(prop "$u" ActiveState)"
    [ "$(prop "$u" Type)" = notify ] || fail "$u is not Type=notify"
    [ "$(systemctl is-enabled "$u")" = enabled ] || fail "$u is not enabled"
done
say "installed: both units enabled and running (Type=notify)"
[ "$(prop $WEB User)" = lvs-director ] || fail "the web unit's user is $(prop $WEB User)"
# The web unit's bounds (issue 13): memory, tasks and descriptors, in force.
limits="$(prop $WEB MemoryMax) $(prop $WEB TasksMax) $(prop $WEB LimitNOFILE)"
[ "$limits" = "402653184 64 4096" ] || fail "the web unit's MemoryMax TasksMax LimitNOFILE are $limits"
web_nofile=$(awk '/^Max open files/ { print $4 }' "/proc/$(prop $WEB MainPID)/limits")
[ "$web_nofile" = 4096 ] || fail "the web service may open $web_nofile files, not 4096"
check "the web service does not run as lvs-director" \
    test "$(ps -o user= -p "$(prop $WEB MainPID)")" = lvs-director
# The supervisor's netlink request would load it too: the unit's log tells who did.
journalctl -b -u systemd-modules-load -o cat | grep -F "Inserted module 'ip_vs'" >/dev/null ||
    fail "systemd-modules-load did not load ip_vs (modules-load.d)"
check "ip_vs is not loaded" grep -q '^ip_vs ' /proc/modules
check "the database is not lvs-director's" \
    test "$(stat -c '%U' $DB)" = lvs-director
sock=$(stat -c '%U:%G %a' /run/lvs-director/pulse.sock)
[ "$sock" = "root:lvs-director 660" ] || fail "the control socket is $sock"
say "ip_vs loaded; database $(stat -c '%U %a' $DB); control socket $sock"

# --- 2. the journal -----------------------------------------------------------------------
wait_for 10 "no 'pulse started' line in the journal" \
    bash -c "journalctl -u $PULSE -o cat | grep -F 'pulse started' >/dev/null"
warning=$(journalctl -u $PULSE -p warning -o cat | grep -F 'nothing to run' || true)
[ -n "$warning" ] || fail "journalctl -p warning does not show the default lvs.cf's warning"
journalctl -u $PULSE -p err -o cat | grep -F 'nothing to run' >/dev/null &&
    fail "the warning was logged as an error"
journalctl -u $PULSE -p info..info -o cat | grep -F 'pulse started' >/dev/null ||
    fail "'pulse started' is not at priority info"
case $(journalctl -u $PULSE -o cat | grep -F 'pulse started' | head -n1) in
[0-9]* | '<'*) fail "the journal's text has a timestamp or an unparsed priority: $warning" ;;
esac
say "journal: '$warning' at priority warning"

# --- 3. a site through the admin UI -------------------------------------------------------
# The client's side (eth0, where the VIP goes) and the real servers' (br1, a bridge to
# two namespaces with busybox httpd, routed back through the NAT router address).
ip netns add client
ip link add eth0 type veth peer name c0 netns client
ip addr add 192.0.2.1/24 dev eth0
ip link set eth0 up
ip -n client addr add 192.0.2.50/24 dev c0
ip -n client link set c0 up
ip -n client link set lo up
ip link add br1 type bridge
ip addr add 10.0.0.1/24 dev br1
ip link set br1 up
for n in 1 2; do
    ip netns add rs$n
    ip link add rs$n type veth peer name eth0 netns rs$n
    ip link set rs$n master br1 up
    ip -n rs$n addr add 10.0.0.2$n/24 dev eth0
    ip -n rs$n link set eth0 up
    ip -n rs$n link set lo up
    ip -n rs$n route add default via 10.0.0.254
    mkdir -p /srv/rs$n
    echo rs$n >/srv/rs$n/index.html
    ip netns exec rs$n busybox httpd -p 10.0.0.2$n:80 -h /srv/rs$n
done
sysctl -qw net.ipv4.ip_forward=1
cat >/tmp/site.lvs.cf <<'CF'
serial_no = 1
primary = 192.0.2.1
service = lvs
network = nat
nat_router = 10.0.0.254 br1
nat_nmask = 255.255.255.0
virtual www {
    active = 1
    address = 192.0.2.100 eth0:1
    vip_nmask = 255.255.255.0
    port = 80
    protocol = tcp
    scheduler = rr
    check_interval = 1
    timeout = 1
    reentry = 2
    server rs1 {
        address = 10.0.0.21
        active = 1
        weight = 1
    }
    server rs2 {
        address = 10.0.0.22
        active = 1
        weight = 1
    }
}
CF
chmod 644 /tmp/site.lvs.cf

jar=/tmp/cookies
# get PATH: the page's HTML; post PATH FIELD=VALUE...: the answer's status and Location.
get() { curl -sS -b $jar -c $jar "$UI$1"; }
post() {
    local path=$1 args=()
    shift
    for kv in "$@"; do args+=(--data-urlencode "$kv"); done
    curl -sS -b $jar -c $jar -o /dev/null -w '%{http_code} %header{location}' \
        -H "Origin: $UI" "${args[@]}" "$UI$path"
}
hidden() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -n1; }
both_in_table() {
    local t
    t=$(ipvsadm -Ln)
    echo "$t" | grep -q 'TCP  192.0.2.100:80 rr' &&
        echo "$t" | grep -q '10.0.0.21:80 *Masq *1 ' &&
        echo "$t" | grep -q '10.0.0.22:80 *Masq *1 '
}
# apply_site: the first administrator and the site imported as the service user, then
# login and Apply over HTTP; the supervisor's answer, the addresses, the table and
# requests through the VIP.
apply_site() {
    local token r page csrf digest flash answers
    echo "$PASSWORD" | as_svc lvs-director passwd admin >/dev/null || fail "passwd as lvs-director failed"
    out=$(as_svc lvs-director import /tmp/site.lvs.cf 2>&1) || fail "import failed: $out"
    rm -f $jar
    wait_for 10 "the admin UI does not answer" bash -c "curl -fsS -o /dev/null $UI/login"
    token=$(get /login | hidden token)
    [ -n "$token" ] || fail "the login page has no form token"
    r=$(post /login "token=$token" next=/ user=admin "password=$PASSWORD")
    [ "${r%% *}" = 303 ] && [ "${r#* }" = / ] || fail "login answered '$r'"
    page=$(get /apply)
    csrf=$(echo "$page" | hidden csrf)
    digest=$(echo "$page" | hidden digest)
    [ -n "$csrf" ] && [ -n "$digest" ] || fail "the Apply page has no form"
    r=$(post /apply "csrf=$csrf" "digest=$digest" "comment=systemd VM")
    [ "$r" = "303 /apply" ] || fail "Apply answered '$r'"
    flash=$(get /apply | sed -n 's/.*<p class="flash \([a-z]*\)" role="status">\(.*\)<\/p>.*/\1: \2/p')
    case $flash in
    "ok: "*"The supervisor applied it"*) ;;
    *) fail "Apply: '$flash'" ;;
    esac
    check "Apply did not write $CF" grep -q '^virtual www {' $CF
    say "Apply through the UI: ${flash#ok: }"
    wait_for 20 "IPVS does not have the service with both real servers" both_in_table
    check "the VIP is not up on eth0" bash -c "ip -br addr show eth0 | grep -q 192.0.2.100/24"
    check "the NAT router address is not up on br1" bash -c "ip -br addr show br1 | grep -q 10.0.0.254/24"
    answers=$(for _ in 1 2 3 4; do ip netns exec client curl -sS -m 5 http://192.0.2.100/ || echo failed; done |
        sort | uniq -c | awk '{ print $2 "=" $1 }' | xargs)
    [ "$answers" = "rs1=2 rs2=2" ] || fail "4 requests through the VIP were answered by: '$answers'"
    say "IPVS: 192.0.2.100:80 rr with rs1 and rs2; 4 requests through the VIP: $answers"
}
# gone_from_kernel WHAT: after a removal, no process, address or IPVS service is left.
gone_from_kernel() {
    pgrep -f /usr/bin/lvs-director >/dev/null && fail "an lvs-director process is left after $1"
    ip -br addr show eth0 | grep -q 192.0.2.100 && fail "the VIP is still up after $1"
    ip -br addr show br1 | grep -q 10.0.0.254 && fail "the NAT router address is still up after $1"
    ipvsadm -Ln | grep -q 192.0.2.100 && fail "the service is still in IPVS after $1: $(ipvsadm -Ln)"
    return 0
}
apply_site

# --- 4. a real server fails and returns; reload ---------------------------------------------
pkill -f 'httpd -p 10.0.0.21:80'
wait_for 20 "rs1 did not leave the table" bash -c "! ipvsadm -Ln | grep -q 10.0.0.21:80"
wait_for 10 "no warning about rs1 in the journal" \
    bash -c "journalctl -u $PULSE -p warning -o cat | grep rs1 | grep -q down"
say "rs1 stopped: left the table; journal: $(journalctl -u $PULSE -p warning -o cat | grep rs1 | grep down | tail -n1)"
ip netns exec rs1 busybox httpd -p 10.0.0.21:80 -h /srv/rs1
wait_for 20 "rs1 did not come back" both_in_table
up=$(journalctl -u $PULSE -p info -o cat | grep 'rs1: up' | tail -n1)
[ -n "$up" ] || fail "no line about rs1 coming back in the journal"
reloads() { journalctl -u $PULSE -o cat | grep -c 'reloaded /etc/lvs-director/lvs.cf'; }
before=$(reloads)
check "systemctl reload failed" systemctl reload $PULSE
reloaded_again() { [ "$(reloads)" -gt "$before" ]; }
wait_for 10 "systemctl reload left no 'reloaded' line" reloaded_again
say "rs1 back:$up; systemctl reload: $(journalctl -u $PULSE -o cat | grep -F reloaded | tail -n1)"

# --- 5. SIGKILL: systemd restarts the supervisor -------------------------------------------
pid=$(prop $PULSE MainPID)
systemctl kill -s KILL $PULSE
wait_for 30 "the supervisor was not restarted after SIGKILL" \
    bash -c "[ \"\$(systemctl show -p NRestarts --value $PULSE)\" = 1 ] && systemctl is-active -q $PULSE"
[ "$(prop $PULSE MainPID)" != "$pid" ] || fail "the same process after the restart"
wait_for 20 "the table is not whole after the restart" both_in_table
say "SIGKILL: restarted by systemd (NRestarts=1), table whole"

# --- 6. upgrade ----------------------------------------------------------------------------
web_pid=$(prop $WEB MainPID) pulse_pid=$(prop $PULSE MainPID)
out=$(dpkg -i /lab/lvs-director-2.deb 2>&1) || fail "the upgrade failed: $out"
for u in $WEB $PULSE; do running "$u" || fail "$u is not running after the upgrade"; done
[ "$(prop $WEB MainPID)" != "$web_pid" ] && [ "$(prop $PULSE MainPID)" != "$pulse_pid" ] ||
    fail "the upgrade did not restart both services"
echo "$PASSWORD" | as_svc lvs-director passwd admin --check >/dev/null ||
    fail "the password does not verify after the upgrade"
check "the upgrade replaced the lvs.cf Apply wrote" grep -q '^virtual www {' $CF
wait_for 20 "the table is not whole after the upgrade" both_in_table
say "upgraded to $(dpkg-query -W -f '${Version}' lvs-director): both restarted, database, password, lvs.cf and table kept"

for u in $WEB $PULSE; do
    say "systemd-analyze security $u: $(systemd-analyze security --no-pager $u | sed -n 's/.*Overall exposure level for [^:]*: //p')"
done

# --- 7. purge ------------------------------------------------------------------------------
out=$(dpkg --purge lvs-director 2>&1) || fail "dpkg --purge failed: $out"
withdrawn=$(echo "$out" | sed -n '/withdrawn from the IPVS table/,$p' | grep -F 'ipvsadm -D -t 192.0.2.100:80' || true)
[ -n "$withdrawn" ] || fail "the removal did not withdraw the IPVS service: $out"
for u in $WEB $PULSE; do
    [ "$(prop "$u" LoadState)" = not-found ] || fail "$u is still known to systemd: $(prop "$u" LoadState)"
done
gone_from_kernel "the purge"
for p in /var/lib/lvs-director /var/lib/lvs-director-pulse /etc/lvs-director /run/lvs-director \
    /usr/bin/lvs-director; do
    [ ! -e "$p" ] || fail "$p is left after the purge"
done
say "purged: services stopped, VIP down, IPVS service withdrawn ($withdrawn), nothing left"

# --- 8. the .rpm's scripts under systemd ----------------------------------------------------
# rpm on Debian: its database knows none of the requirements (systemd, util-linux, libc),
# hence --nodeps; the scripts are the package's own and run for real.
# (grep -v finding nothing to keep is no failure: rpm's own result is checked after.)
rpm_do() { rpm --nodeps "$@" 2>&1 | { grep -v '^rpm: RPM should not be used directly\|^rpm: However assuming' || true; }; }
rpmdb --initdb
out=$(rpm_do -i /lab/lvs-director-1.rpm)
rpm -q lvs-director >/dev/null || fail "rpm -i failed: $out"
echo "$out" | grep -F 'systemctl enable --now lvs-director-pulse lvs-director-web' >/dev/null ||
    fail "the rpm did not say how to start it: $out"
echo "$out" | grep -F 'no administrator yet' >/dev/null || fail "the rpm's %post made no database: $out"
check "systemctl enable --now failed" systemctl enable --now $PULSE $WEB
for u in $WEB $PULSE; do running "$u" || fail "$u (rpm) is not running"; done
say "rpm -i: %post made the database and said how to start; enable --now: both running"
apply_site
web_pid=$(prop $WEB MainPID) pulse_pid=$(prop $PULSE MainPID)
out=$(rpm_do -U /lab/lvs-director-2.rpm)
[ "$(rpm -q --qf '%{RELEASE}' lvs-director)" = 2 ] || fail "rpm -U failed: $out"
for u in $WEB $PULSE; do running "$u" || fail "$u is not running after rpm -U"; done
[ "$(prop $WEB MainPID)" != "$web_pid" ] && [ "$(prop $PULSE MainPID)" != "$pulse_pid" ] ||
    fail "rpm -U did not restart both services"
check "rpm -U replaced the lvs.cf Apply wrote" grep -q '^virtual www {' $CF
wait_for 20 "the table is not whole after rpm -U" both_in_table
say "rpm -U to release 2: both restarted (try-restart), lvs.cf and table kept"
out=$(rpm_do -e lvs-director)
rpm -q lvs-director >/dev/null && fail "rpm -e failed: $out"
echo "$out" | grep -F 'ipvsadm -D -t 192.0.2.100:80' >/dev/null ||
    fail "rpm -e did not withdraw the IPVS service: $out"
for u in $WEB $PULSE; do
    [ "$(prop "$u" LoadState)" = not-found ] || fail "$u is still known to systemd after rpm -e"
done
gone_from_kernel "rpm -e"
check "rpm -e removed the database (an rpm keeps it)" test -f $DB
say "rpm -e: services stopped and disabled, VIP down, IPVS service withdrawn, database kept"

echo "LVS-VM PASS"
off
