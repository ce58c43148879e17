#!/bin/sh
# `/metrics` of `lvs-director web` against a supervisor programming real IPVS: after
# requests through the VIP, the kernel's counters of the service and of each real
# server are scraped (connections, packets and bytes, both ways), with the director's
# role, the real servers' health, weight and check counts; a drained real server shows
# weight 0 and `drained 1`. Without the bearer token the scrape is refused.
set -eu
. /lab/lib.sh
. /lab/director.sh
. /lab/pulse.sh

lab_topo_nat -n 2
cf_start nat
cf_virtual web "$VIP" 80 rr check_interval=1 timeout=1
cf_server rs1 10.0.2.11
cf_server rs2 10.0.2.12
cf_end

start_pulse "$DIR"
wait_for 30 is_role "$DIR" active
printf 'lab-metrics-token-0123456789\n' >"$LAB_TMP/metrics.token"
chmod 600 "$LAB_TMP/metrics.token"
nsrun "$DIR" lvs-director --db "$LAB_TMP/director.db" web --listen 127.0.0.1:3636 \
    --lvs-cf "$CF" --control-socket "$LAB_TMP/$DIR.sock" \
    --metrics-listen 127.0.0.1:9636 --metrics-token-file "$LAB_TMP/metrics.token" \
    >>"$LAB_TMP/web.log" 2>&1 &
web_pid() {
    ps -o pid,args | awk '/lvs-director --db/ && /metrics-listen/ && !/awk/ { print $1; exit }'
}
_web_stop() {
    local pid
    pid=$(web_pid)
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    say "--- the last lines of the web log:" >&2
    tail -n 20 "$LAB_TMP/web.log" >&2 || true
}
lab_on_exit _web_stop

# scrape [AUTH] : the answer of GET /metrics on the metrics listener (head and body),
# with `Authorization: AUTH` when given. `shut-none`: the request's end is not a
# half-close, which the server would take for the client leaving (and drop the answer
# of a request still waiting for the supervisor's status).
scrape() {
    {
        printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n'
        [ -z "${1:-}" ] || printf 'Authorization: %s\r\n' "$1"
        printf '\r\n'
    } | nsrun "$DIR" socat -T 5 -t 5 - TCP4:127.0.0.1:9636,connect-timeout=5,shut-none 2>/dev/null |
        tr -d '\r'
}
# code TEXT : the status code of an answer.
code() { printf '%s\n' "$1" | head -n 1 | awk '{ print $2 }'; }
# metric TEXT SERIES : the value of SERIES (name and labels exactly) in TEXT.
metric() { printf '%s\n' "$1" | awk -v s="$2" 'index($0, s " ") == 1 { print $NF; found = 1 } END { exit !found }'; }
auth="Bearer lab-metrics-token-0123456789"
supervisor_up() { [ "$(metric "$(scrape "$auth")" lvs_director_supervisor_up)" = 1 ]; }
wait_for 30 supervisor_up
say "the supervisor answers through /metrics"
assert_eq 401 "$(code "$(scrape)")" "a scrape without the token"
assert_eq 401 "$(code "$(scrape "Bearer wrong")")" "a scrape with another token"

assert_rr "$(get_seq "$CLI" "http://$VIP:80/" 6)" "rs1 rs2"
say "6 requests through the VIP"
svc="virtual=\"web\",service=\"TCP $VIP:80\""
rs1="virtual=\"web\",server=\"rs1\",address=\"10.0.2.11:80\""
rs2="virtual=\"web\",server=\"rs2\",address=\"10.0.2.12:80\""
# The kernel's counters lag by up to 2 s (and the status is cached for 1 s).
conns_reach() {
    scrape "$auth" >"$LAB_TMP/last.scrape"
    [ "$(metric "$(cat "$LAB_TMP/last.scrape")" "lvs_director_service_connections_total{$svc}")" -ge "$1" ]
}
# On failure ($rc is lab_cleanup's exit status, where this runs).
lab_on_exit '[ "$rc" -eq 0 ] || { say "--- the last scrape:"; cat "$LAB_TMP/last.scrape"; } >&2 2>/dev/null'

wait_for 10 conns_reach 6
m=$(scrape "$auth")
say "$m" | grep -e '^lvs_director_service_' -e '^lvs_director_real_server_' -e '^lvs_director_role'
assert_eq 200 "$(code "$m")" "a scrape with the token"
printf '%s\n' "$m" | grep -qi '^content-type: text/plain; version=0.0.4' ||
    fail "not the Prometheus text format: $(printf '%s\n' "$m" | head -n 8)"
assert_eq 1 "$(metric "$m" 'lvs_director_role{role="active"}')" "role active"
assert_eq 1 "$(metric "$m" 'lvs_director_ipvs_available')" "IPVS available"
assert_eq 1 "$(metric "$m" "lvs_director_service_in_kernel{$svc}")" "service in the kernel"
assert_eq 6 "$(metric "$m" "lvs_director_service_connections_total{$svc}")" "service connections"
for r in "$rs1" "$rs2"; do
    assert_eq 3 "$(metric "$m" "lvs_director_real_server_connections_total{$r}")" "connections of $r"
    assert_eq 1 "$(metric "$m" "lvs_director_real_server_up{$r}")" "$r up"
    assert_eq 1 "$(metric "$m" "lvs_director_real_server_weight{$r}")" "weight of $r"
    for d in in out; do
        for what in packets bytes; do
            v=$(metric "$m" "lvs_director_real_server_${what}_total{$r,direction=\"$d\"}")
            [ "$v" -gt 0 ] || fail "no $what $d counted for $r: $v"
        done
    done
    checks=$(metric "$m" "lvs_director_real_server_checks_total{$r}")
    [ "$checks" -ge 1 ] || fail "no check counted for $r"
    assert_eq 0 "$(metric "$m" "lvs_director_real_server_check_failures_total{$r}")" "failures of $r"
done
# A web page's bytes go out: more than came in.
bin=$(metric "$m" "lvs_director_service_bytes_total{$svc,direction=\"in\"}")
bout=$(metric "$m" "lvs_director_service_bytes_total{$svc,direction=\"out\"}")
[ "$bout" -gt "$bin" ] || fail "bytes out $bout, in $bin"

nsrun "$DIR" lvs-director ctl drain web rs1 --control-socket "$LAB_TMP/$DIR.sock"
drained() { [ "$(metric "$(scrape "$auth")" "lvs_director_real_server_weight{$rs1}")" = 0 ]; }
wait_for 10 drained
m=$(scrape "$auth")
assert_eq 1 "$(metric "$m" "lvs_director_real_server_drained{$rs1}")" "rs1 drained"
assert_eq 1 "$(metric "$m" "lvs_director_real_server_weight{$rs2}")" "rs2 untouched"

kill "$(web_pid)"
wait_for 10 sh -c "[ -z \"\$(ps -o pid,args | awk '/lvs-director --db/ && /metrics-listen/ && !/awk/')\" ]"
say ok
