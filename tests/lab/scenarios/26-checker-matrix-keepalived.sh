#!/bin/sh
# keepalived's checker semantics side by side: one keepalived.conf run by keepalived's
# checker alone (-C) in dira and, imported, by `lvs-director pulse` in dirb, each with
# its own IPVS table, against the same real servers:
#   VIP:80   HTTP_GET with two url blocks (a digest computed by `lvs-director genhash`,
#            a status), nb_get_retry 1, delay_before_retry 1; inhibit_on_failure on
#            rs1; sorry_server 10.0.1.13 with quorum 2 (each server weighs 1);
#            fast_recovery, which is how lvs-director always checks its pages.
#   VIP:8080 MISC_CHECK with misc_dynamic (the exit status sets the weight).
#   VIP:81   TCP_CHECK of rs2's port 81, nb_get_retry 1, delay_before_retry 1.
# The same faults are injected (a page removed, a digest changed, a MISC exit status
# changed, a port closed, and each undone); after each, both tables read back with
# ipvsadm must reach the same expected state, and the time each took is printed and
# must be within one check interval of the other (keepalived checks one url per
# delay_loop, so for two urls its interval there is two delay_loops).
set -eu
. /lab/lib.sh
. /lab/pulse.sh
. /lab/keepalived.sh

VIP=10.0.1.100
SORRY=10.0.1.13
LOOP=2
dr_pair "$VIP"
for k in 1 2; do
    say "rs$k health" >"$LAB_TMP/www/rs$k/health.html"
done
_lab_in rs2 "httpd -f -p 81 -h $LAB_TMP/www/rs2 </dev/null >/dev/null 2>&1 &"

# The digests, as lvs-director's genhash computes them (keepalived must agree).
digest() {
    nsrun dira lvs-director genhash "http://$1/index.html" | sed -n 's/^check_digest = //p'
}
D1=$(digest 10.0.1.11)
D2=$(digest 10.0.1.12)
[ ${#D1} -eq 32 ] && [ ${#D2} -eq 32 ] || fail "genhash gave no digest: '$D1' '$D2'"
[ "$D1" = "$(md5sum <"$LAB_TMP/www/rs1/index.html" | cut -c1-32)" ] || fail "genhash disagrees with md5sum"

# The MISC_CHECK script: its exit status is in a file per server.
mkdir -p /etc/lvs-director/scripts
chmod 755 /etc/lvs-director /etc/lvs-director/scripts
cat >/etc/lvs-director/scripts/misc <<EOF
#!/bin/sh
exit \$(cat $LAB_TMP/misc-\$1 2>/dev/null || echo 0)
EOF
chmod 755 /etc/lvs-director/scripts/misc
echo 0 >"$LAB_TMP/misc-rs1"
echo 0 >"$LAB_TMP/misc-rs2"

http_rs() {
    cat <<EOF
    real_server 10.0.1.1$1 80 {
        weight 1
        $2
        HTTP_GET {
            url {
                path /index.html
                digest $3
            }
            url {
                path /health.html
                status_code 200
            }
            connect_timeout 1
            nb_get_retry 1
            delay_before_retry 1
            fast_recovery
        }
    }
EOF
}
misc_rs() {
    cat <<EOF
    real_server 10.0.1.1$1 8080 {
        weight 5
        MISC_CHECK {
            misc_path "/etc/lvs-director/scripts/misc rs$1"
            misc_timeout 2
            misc_dynamic
        }
    }
EOF
}
cat >"$LAB_TMP/checker.conf" <<EOF
virtual_server $VIP 80 {
    delay_loop $LOOP
    lb_algo rr
    lb_kind DR
    protocol TCP
    sorry_server $SORRY 80
    quorum 2
$(http_rs 1 inhibit_on_failure "$D1")
$(http_rs 2 "" "$D2")
}
virtual_server $VIP 8080 {
    delay_loop $LOOP
    lb_algo rr
    lb_kind DR
    protocol TCP
$(misc_rs 1)
$(misc_rs 2)
}
virtual_server $VIP 81 {
    delay_loop $LOOP
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.1.12 81 {
        TCP_CHECK {
            connect_timeout 1
            nb_get_retry 1
            delay_before_retry 1
        }
    }
}
EOF
checker_side_by_side "$LAB_TMP/checker.conf" 'url|digest|status_code|misc_dynamic|misc_timeout|inhibit_on_failure|sorry_server|quorum|nb_get_retry|delay_before_retry|fast_recovery'
start_pulse dirb "$LAB_TMP/dirb.lvs.cf"

# table NS PORT : "ADDR:PORT WEIGHT" of each destination of VIP:PORT, sorted, on one line.
table() {
    nsrun "$1" ipvsadm -Ln -t "$VIP:$2" 2>/dev/null |
        awk '$1 == "->" && $2 != "RemoteAddress:Port" { print $2 "=" $4 }' | sort | tr '\n' ' '
}
now() { read -r t _ </proc/uptime; echo "$t"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
ROWS=
# step WHAT PORT EXPECTED LIMIT : since $T0, waits until both tables of VIP:PORT are
# EXPECTED; records both times and checks they are within LIMIT s of each other.
step() {
    local what=$1 port=$2 want=$3 limit=$4 ka= ours= t
    while [ -z "$ka" ] || [ -z "$ours" ]; do
        t=$(now)
        [ -n "$ka" ] || [ "$(table dira "$port")" != "$want" ] || ka=$t
        [ -n "$ours" ] || [ "$(table dirb "$port")" != "$want" ] || ours=$t
        if awk -v t="$t" -v t0="$T0" 'BEGIN { exit !(t - t0 > 25) }'; then
            fail "$what: after 25 s, want '$want'; keepalived: '$(table dira "$port")', lvs-director: '$(table dirb "$port")'"
        fi
        sleep 0.1
    done
    local k o
    k=$(secs "$ka" "$T0") o=$(secs "$ours" "$T0")
    say "$what: both [$want] keepalived ${k} s, lvs-director ${o} s"
    ROWS="$ROWS
| $what | \`$want\` | $k s | $o s |"
    awk -v a="$k" -v b="$o" -v l="$limit" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= l + 0.5) }' \
        || fail "$what: keepalived ${k} s and lvs-director ${o} s are more than $limit s apart"
}

BOTH80="10.0.1.11:80=1 10.0.1.12:80=1 "
T0=$(now)
step "start" 80 "$BOTH80" 30
step "start" 8080 "10.0.1.11:8080=5 10.0.1.12:8080=5 " 30
step "start" 81 "10.0.1.12:81=1 " 30
sleep "$LOOP"

# A page removed: rs2 fails, the quorum (2) is lost, the sorry server takes over and
# rs1 (healthy) leaves with it, to weight 0 as it is inhibited (keepalived's rule).
mv "$LAB_TMP/www/rs2/health.html" "$LAB_TMP/www/rs2/health.off"
T0=$(now)
step "rs2's /health.html removed" 80 "10.0.1.11:80=0 $SORRY:80=1 " $((2 * LOOP))
mv "$LAB_TMP/www/rs2/health.off" "$LAB_TMP/www/rs2/health.html"
T0=$(now)
step "the page back" 80 "$BOTH80" $((2 * LOOP))
sleep "$LOOP"

# A digest changed: rs1 fails and, inhibited, stays at weight 0; the quorum is lost
# all the same (rs2's 1 < 2), so rs2 leaves and the sorry server comes.
cp "$LAB_TMP/www/rs1/index.html" "$LAB_TMP/rs1-index.html"
say "rs1 changed" >"$LAB_TMP/www/rs1/index.html"
T0=$(now)
step "rs1's page changed (digest)" 80 "10.0.1.11:80=0 $SORRY:80=1 " $((2 * LOOP))
cp "$LAB_TMP/rs1-index.html" "$LAB_TMP/www/rs1/index.html"
T0=$(now)
step "the page restored" 80 "$BOTH80" $((2 * LOOP))

# MISC_CHECK with misc_dynamic: exit 12 sets weight 10, exit 1 fails, exit 0 restores.
echo 12 >"$LAB_TMP/misc-rs1"
T0=$(now)
step "rs1's script exits 12" 8080 "10.0.1.11:8080=10 10.0.1.12:8080=5 " "$LOOP"
echo 1 >"$LAB_TMP/misc-rs1"
T0=$(now)
step "rs1's script exits 1" 8080 "10.0.1.12:8080=5 " "$LOOP"
echo 0 >"$LAB_TMP/misc-rs1"
T0=$(now)
step "rs1's script exits 0" 8080 "10.0.1.11:8080=5 10.0.1.12:8080=5 " "$LOOP"

# A port closed: rs2's port 81 listener stops.
pid=$(ps -o pid,args | awk '/httpd -f -p 81/ && !/awk/ { print $1; exit }')
[ -n "$pid" ] || fail "no httpd on port 81"
kill "$pid"
T0=$(now)
step "rs2's port 81 closed" 81 "" "$LOOP"
_lab_in rs2 "httpd -f -p 81 -h $LAB_TMP/www/rs2 </dev/null >/dev/null 2>&1 &"
T0=$(now)
step "port 81 open again" 81 "10.0.1.12:81=1 " "$LOOP"

say "| fault | both tables | keepalived | lvs-director |
|---|---|---|---|$ROWS"
say ok
