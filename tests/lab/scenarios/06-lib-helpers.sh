#!/bin/sh
# lib.sh's building blocks by hand, without IPVS: a switch, two hosts on different
# subnets (IPv4 and IPv6) routed through a third, servers, requests, and the helpers'
# failures (a check that cannot fail proves nothing).
set -eu
. /lab/lib.sh

lab_switch h-net left right
lab_ns h-a h-r h-b
lab_plug h-net left h-a eth0 10.9.1.2/24 fd00:91::2/64
lab_plug h-net left h-r eth0 10.9.1.1/24 fd00:91::1/64
lab_plug h-net right h-r eth1 10.9.2.1/24 fd00:92::1/64
lab_plug h-net right h-b eth0 10.9.2.2/24
lab_addr h-b eth0 fd00:92::2/64
lab_sysctl h-r net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
lab_route h-a 10.9.2.0/24 via 10.9.1.1
lab_route h-a fd00:92::/64 via fd00:91::1
lab_route h-b default via 10.9.2.1
lab_route h-b default via fd00:92::1
lab_serve h-b web
lab_on_exit "say 'lab_on_exit ran'"

assert_eq web "$(http_get h-a 10.9.2.2 "$HTTP_PORT")" "http_get over IPv4"
assert_eq web "$(http_get h-a fd00:92::2 "$HTTP_PORT")" "http_get over IPv6"
assert_eq web "$(udp_get h-a 10.9.2.2 "$UDP_PORT")" "udp_get over IPv4"
assert_eq web "$(udp_get h-a fd00:92::2 "$UDP_PORT")" "udp_get over IPv6"
assert_eq "web 3" "$(count_hits h-a "http://[fd00:92::2]:$HTTP_PORT/" 3)" "count_hits over IPv6"
assert_eq "web web" "$(get_seq h-a "udp://10.9.2.2:$UDP_PORT" 2)" "get_seq over UDP"
# nsexec (ip netns exec) shows the namespace's own /sys.
assert_eq 10.9.2.2 "$(nsexec h-b sh -c 'ls /sys/class/net/eth0 >/dev/null && ip -4 -o addr show dev eth0' |
    awk '{ split($4, a, "/"); print a[1] }')" "nsexec into h-b"

# Failures are failures, and quick ones.
if http_get h-a 10.9.2.2 81 2>/dev/null; then fail "http_get to a closed port succeeded"; fi
if http_get h-a 10.9.2.2 "$HTTP_PORT" missing 2>/dev/null; then fail "http_get of a 404 succeeded"; fi
if udp_get h-a 10.9.2.2 9001 2>/dev/null; then fail "udp_get without a responder succeeded"; fi
assert_eq "ERROR ERROR" "$(get_seq h-a "http://10.9.2.2:81/" 2 2>/dev/null)" "get_seq of failures"
if (assert_rr "rs1 rs1" "rs1 rs2") 2>/dev/null; then fail "assert_rr accepted rs1 rs1"; fi
if (assert_rr "rs1 ERROR" "rs1 rs2") 2>/dev/null; then fail "assert_rr accepted an error"; fi
if (assert_rr "" "rs1 rs2") 2>/dev/null; then fail "assert_rr accepted nothing"; fi
assert_rr "rs2 rs3 rs1 rs2" "rs1 rs2 rs3"
if (assert_eq a b) 2>/dev/null; then fail "assert_eq accepted a for b"; fi
if (assert_contains "abc" "x") 2>/dev/null; then fail "assert_contains found x in abc"; fi
if (wait_for 1 false) 2>/dev/null; then fail "wait_for accepted false"; fi
wait_for 2 true
say "ok"
