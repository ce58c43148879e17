# shellcheck shell=sh
# Helpers for lab scenarios. Sourced by every scenario inside the VM (busybox sh):
#
#     #!/bin/sh
#     set -eu
#     . /lab/lib.sh
#
# Sourcing installs an EXIT trap that removes every namespace (and so every link and
# address) and kills every process the scenario created, whether it passes, fails or is
# killed by the harness's timeout (TERM). Scenarios add their own cleanup with
# `lab_on_exit CMD`, never with `trap … EXIT`.
#
# Topologies (lab_topo_nat, lab_topo_dr, lab_topo_tun) build namespaces joined by veth
# pairs to bridges that live in a switch namespace. Every namespace name starts with an
# optional prefix (-p), so two topologies can coexist in one scenario. A builder sets:
#     NET CLI DIR    switch, client and director namespaces
#     RS             the real-server namespaces, "rs1 rs2 …" (prefixed)
#     RS_IPS RS_IPS6 their addresses, in the same order
#     VIP VIP6       the virtual addresses
#     DIR_IP DIR_IP6 the director's address on the client side
#     CLI_IP CLI_IP6 the client's address
# Calling a builder again overwrites them: copy what you need first. Each real server
# runs busybox httpd on HTTP_PORT and a UDP responder on UDP_PORT, both answering its
# name without the prefix ("rs1").
#
# Two ways into a namespace:
#   nsexec NS CMD  `ip netns exec`: also remounts /sys for the namespace, as a program
#                  under test expects; costs a dynamically linked iproute2 start
#                  (~0.1 s under emulation).
#   nsrun NS CMD   busybox nsenter, network namespace only: several times cheaper; for
#                  the harness's own tools (ipvsadm, nft, wget, socat, busybox ip).
# Set-up is batched (one iproute2 `-batch`, one busybox sh per namespace) because under
# emulation starting a program costs more than what it does.
#
# busybox sh runs its own applet for a bare `ip`, and that one has no `netns`: the real
# iproute2 is $IP. Inside `_lab_in` scripts a bare `ip` is busybox's, on purpose (cheap).
IP=/usr/sbin/ip
# Likewise kmod's modprobe, not busybox's (which lacks -n, among others).
modprobe() { /sbin/modprobe "$@"; }
HTTP_PORT=80
UDP_PORT=9000
LAB_TMP=${LAB_TMP:-/tmp/lab-$$}
mkdir -p "$LAB_TMP"

_lab_ns=      # namespaces made here, newest first
_lab_on_exit= # cleanup commands registered by the scenario, newest first
_lab_port=0   # counter for switch-side veth names

say() { printf '%s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    [ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
    case $1 in
    *"$2"*) ;;
    *) fail "${3:-output} does not contain '$2': $1" ;;
    esac
}

# wait_for SECONDS CMD... : runs CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_for() {
    local secs=$1 i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt $((secs * 10)) ] || fail "timed out after ${secs}s waiting for: $*"
        sleep 0.1
    done
}

# nsexec NS CMD... : CMD inside namespace NS, as `ip netns exec` runs it.
nsexec() {
    local ns=$1
    shift
    "$IP" netns exec "$ns" "$@"
}

# nsrun NS CMD... : CMD inside network namespace NS (cheap; /sys is the VM's).
nsrun() {
    local ns=$1
    shift
    nsenter --net="/run/netns/$ns" "$@"
}

# _lab_in NS SCRIPT : SCRIPT run by busybox sh -e inside NS (cheap; `ip` is busybox's).
_lab_in() {
    nsenter --net="/run/netns/$1" sh -ec "$2" || fail "in namespace $1: $2"
}

# _lab_batch [IP OPTIONS] <<EOF : many iproute2 commands, one process.
_lab_batch() {
    "$IP" "$@" -batch - || fail "ip $* -batch failed (see the command above)"
}

# lab_sysctl NS KEY=VALUE...
lab_sysctl() {
    local ns=$1
    shift
    nsrun "$ns" sysctl -q -w "$@" >/dev/null || fail "sysctl $* in namespace $ns"
}

# lab_on_exit CMD : runs CMD (with eval) at exit, before the namespaces go.
lab_on_exit() {
    _lab_on_exit="$1
$_lab_on_exit"
}

# lab_ns NAME... : new namespaces with lo up and no IPv6 duplicate address detection
# (DAD would hold every new address "tentative", unusable, for a second or more).
lab_ns() {
    local ns
    # Registered before they exist, so half-made namespaces are removed too.
    for ns in "$@"; do
        _lab_ns="$ns $_lab_ns"
    done
    for ns in "$@"; do
        echo "netns add $ns"
    done | _lab_batch
    for ns in "$@"; do
        _lab_in "$ns" "ip link set lo up
            sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
                net.ipv6.conf.default.accept_ra=0 >/dev/null"
    done
}

# lab_switch NS BRIDGE... : a namespace holding bridges, i.e. plain L2 switches.
lab_switch() {
    local ns=$1 br
    shift
    lab_ns "$ns"
    # The switch itself speaks no IPv6: no router or multicast chatter on the wires.
    lab_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    for br in "$@"; do
        # No STP and no forwarding delay: a port forwards as soon as it is up.
        echo "link add $br type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
        echo "link set $br up"
    done | _lab_batch -n "$ns"
}

# lab_wires SWITCH_NS <<EOF : one line "BRIDGE NS IFNAME" per veth, from IFNAME in NS
# (left down, without addresses) to a port of BRIDGE in SWITCH_NS; all in one go.
# Feed it with a here-document, not a pipe: a pipe would run it in a subshell, which
# would forget the port counter.
lab_wires() {
    local sw=$1 br ns ifname cmds=
    while read -r br ns ifname; do
        [ -n "$br" ] || continue
        _lab_port=$((_lab_port + 1))
        cmds="${cmds}link add p$_lab_port type veth peer name $ifname netns $ns
link set p$_lab_port master $br up
"
    done
    printf '%s' "$cmds" | _lab_batch -n "$sw"
}

# lab_plug SWITCH_NS BRIDGE NS IFNAME [ADDR/PREFIX...] : one veth (see lab_wires), up,
# with the addresses.
lab_plug() {
    local sw=$1 br=$2 ns=$3 ifname=$4 script a
    shift 4
    lab_wires "$sw" <<EOF
$br $ns $ifname
EOF
    script="ip link set $ifname up"
    for a in "$@"; do
        script="$script
            ip addr add $a dev $ifname"
    done
    _lab_in "$ns" "$script"
}

# lab_addr NS DEV ADDR/PREFIX (IPv6 is usable at once: lab_ns turned DAD off)
lab_addr() {
    _lab_in "$1" "ip addr add $3 dev $2"
}

# lab_route NS ROUTE... : `ip route add ROUTE…` (IPv6 when the route has a colon).
lab_route() {
    local ns=$1
    shift
    case "$*" in
    *:*) _lab_in "$ns" "ip -6 route add $*" ;;
    *) _lab_in "$ns" "ip route add $*" ;;
    esac
}

# _lab_serve_script NS NAME [UDP_BIND_ADDR...] : the script lab_serve runs in NS.
_lab_serve_script() {
    local ns=$1 name=$2 www a
    shift 2
    www=$LAB_TMP/www/$ns
    mkdir -p "$www"
    say "$name" >"$www/index.html"
    say "httpd -f -p $HTTP_PORT -h $www </dev/null >/dev/null 2>&1 &"
    [ $# -gt 0 ] || set -- "::"
    for a in "$@"; do
        case $a in
        ::) a="UDP6-RECVFROM:$UDP_PORT" ;;
        *:*) a="UDP6-RECVFROM:$UDP_PORT,bind=[$a]" ;;
        *) a="UDP4-RECVFROM:$UDP_PORT,bind=$a" ;;
        esac
        # socat forks a child per datagram, and that child shares the listening socket:
        # left to read on, it would steal the next client's datagram. readbytes=1 ends
        # its reading after the first byte; the command drains its input before it
        # answers, so that passing that byte on cannot fail on a closed pipe.
        say "socat $a,fork,readbytes=1 'SYSTEM:cat >/dev/null; echo $name' </dev/null >/dev/null 2>&1 &"
    done
    # Until both listen (one UDP line per responder), for 10 s at most.
    cat <<EOF
i=0
until netstat -lnt | grep -q ':$HTTP_PORT ' && [ \$(netstat -lnu | grep -c ':$UDP_PORT ') -ge $# ]; do
    i=\$((i + 1))
    [ \$i -lt 200 ] || { echo 'the servers in $ns did not start listening' >&2; exit 1; }
    usleep 50000
done
EOF
}

# lab_serve NS NAME [UDP_BIND_ADDR...] : busybox httpd on HTTP_PORT whose page is NAME,
# and a UDP responder (socat) on UDP_PORT answering NAME to every datagram. Without
# addresses the responder listens on every address; with them, one responder per
# address, so that answers leave from the VIP in DR/TUN (a wildcard socket would answer
# from the real server's own address, which the client rejects). Returns once they listen.
lab_serve() {
    _lab_in "$1" "$(_lab_serve_script "$@")"
}

# _lab_hostport ADDR PORT : ADDR:PORT with IPv6 addresses in brackets.
_lab_hostport() {
    case $1 in
    *:*) printf '[%s]:%s' "$1" "$2" ;;
    *) printf '%s:%s' "$1" "$2" ;;
    esac
}

# http_get NS ADDR PORT [PATH] : prints the body of http://ADDR:PORT/PATH fetched from
# NS; fails unless the answer is 200. One socat, bounded to 5 s (busybox wget has no
# timeout, and `timeout` leaves a watcher process behind for a second).
http_get() {
    local ns=$1 hostport path=${4:-} proto=TCP4 resp
    hostport=$(_lab_hostport "$2" "$3")
    case $2 in *:*) proto=TCP6 ;; esac
    resp=$(printf 'GET /%s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" |
        nsrun "$ns" socat -T 5 -t 5 - "$proto:$hostport,connect-timeout=5" 2>"$LAB_TMP/http_get.err") || true
    case $resp in
    "HTTP/1."?" 200 "*)
        printf '%s\n' "$resp" | awk '{ sub(/\r$/, "") } body { print } $0 == "" { body = 1 }'
        ;;
    *)
        resp=$(printf '%s\n' "$resp" | head -n 1 | tr -d '\r')
        say "http_get from $ns: http://$hostport/$path: ${resp:-no answer} $(cat "$LAB_TMP/http_get.err")" >&2
        return 1
        ;;
    esac
}

# _lab_sport : a source port not used before in this scenario. IPVS keeps a UDP
# connection per client address and port for minutes, so a reused port would go to
# the same real server again, whatever the scheduler.
_lab_sport() {
    local n=20000
    [ ! -f "$LAB_TMP/.sport" ] || read -r n <"$LAB_TMP/.sport"
    echo $((n + 1)) >"$LAB_TMP/.sport"
    say "$n"
}

# udp_get NS ADDR PORT : sends one datagram from NS and prints the first line answered.
# socat's helper command writes the answer to fd 3 and exits, which ends socat at
# once instead of after a linger timeout.
udp_get() {
    local peer out
    case $2 in
    *:*) peer="UDP6:[$2]:$3" ;;
    *) peer="UDP4:$2:$3" ;;
    esac
    peer="$peer,sourceport=$(_lab_sport)"
    out=$(nsrun "$1" socat -T 3 -t 0 "$peer" 'SYSTEM:echo ping; head -n 1 >&3' \
        3>&1 2>"$LAB_TMP/udp_get.err") || true
    [ -n "$out" ] || {
        say "udp_get from $1: $peer: no answer $(cat "$LAB_TMP/udp_get.err" 2>/dev/null)" >&2
        return 1
    }
    say "$out"
}

# url_get NS URL : http://ADDR:PORT/PATH or udp://ADDR:PORT (IPv6 in brackets).
url_get() {
    local ns=$1 url=$2 rest hostport path host port
    case $url in
    http://*) rest=${url#http://} ;;
    udp://*) rest=${url#udp://} ;;
    *) fail "url_get: unsupported URL $url" ;;
    esac
    hostport=${rest%%/*}
    path=${rest#"$hostport"}
    path=${path#/}
    port=${hostport##*:}
    host=${hostport%:*}
    host=${host#[}
    host=${host%]}
    case $url in
    http://*) http_get "$ns" "$host" "$port" "$path" ;;
    udp://*) udp_get "$ns" "$host" "$port" ;;
    esac
}

# get_seq NS URL N : N requests, the answers in order on one line ("rs1 rs2 …"); a
# failed request shows as "ERROR".
get_seq() {
    local ns=$1 url=$2 n=$3 i=0 body seq=
    while [ "$i" -lt "$n" ]; do
        body=$(url_get "$ns" "$url") || body=ERROR
        seq="$seq${seq:+ }$body"
        i=$((i + 1))
    done
    say "$seq"
}

# count_hits NS URL N : N requests, then one "NAME COUNT" line per distinct answer, sorted.
count_hits() {
    get_seq "$@" | tr ' ' '\n' | sort | uniq -c | awk '{ print $2, $1 }'
}

# assert_rr SEQ "rs1 rs2 …" : SEQ (from get_seq) is the round-robin cycle over the given
# servers, starting anywhere in it.
assert_rr() {
    local seq=$1 servers=$2 k started= i s
    # shellcheck disable=SC2086
    set -- $servers
    k=$#
    for s in $seq; do
        if [ -z "$started" ]; then
            # Rotate the cycle so that it starts at the first answer.
            i=0
            while [ "$i" -lt "$k" ] && [ "$1" != "$s" ]; do
                set -- "$@" "$1"
                shift
                i=$((i + 1))
            done
            [ "$i" -lt "$k" ] || fail "round robin over '$servers': unexpected answer '$s' in: $seq"
            started=1
        fi
        [ "$1" = "$s" ] || fail "round robin over '$servers': expected '$1', got '$s' in: $seq"
        set -- "$@" "$1"
        shift
    done
    [ -n "$started" ] || fail "round robin over '$servers': no answers"
}

# lab_rr_services ADDR METHOD IP... : plain-ipvsadm round-robin services in $DIR on
# ADDR:HTTP_PORT (TCP) and ADDR:UDP_PORT (UDP), to each IP on the same ports; METHOD is
# ipvsadm's -m, -g or -i. IPv6 addresses are bracketed here.
lab_rr_services() {
    local addr=$1 method=$2 ip
    shift 2
    nsrun "$DIR" ipvsadm -A -t "$(_lab_hostport "$addr" "$HTTP_PORT")" -s rr
    nsrun "$DIR" ipvsadm -A -u "$(_lab_hostport "$addr" "$UDP_PORT")" -s rr
    for ip in "$@"; do
        nsrun "$DIR" ipvsadm -a -t "$(_lab_hostport "$addr" "$HTTP_PORT")" \
            -r "$(_lab_hostport "$ip" "$HTTP_PORT")" "$method"
        nsrun "$DIR" ipvsadm -a -u "$(_lab_hostport "$addr" "$UDP_PORT")" \
            -r "$(_lab_hostport "$ip" "$UDP_PORT")" "$method"
    done
}

# assert_rr_http_udp ADDR : six HTTP and six UDP requests from $CLI to ADDR alternate
# between rs1 and rs2.
assert_rr_http_udp() {
    local seq
    seq=$(get_seq "$CLI" "http://$(_lab_hostport "$1" "$HTTP_PORT")/" 6)
    say "http: $seq"
    assert_rr "$seq" "rs1 rs2"
    seq=$(get_seq "$CLI" "udp://$(_lab_hostport "$1" "$UDP_PORT")" 6)
    say "udp: $seq"
    assert_rr "$seq" "rs1 rs2"
}

# ipvs_conns NS SERVICE... : the Conns counter of one service, e.g. ipvs_conns dir -t VIP:80.
ipvs_conns() {
    local ns=$1
    shift
    nsrun "$ns" ipvsadm -Ln --stats "$@" | awk '$1 ~ /^(TCP|UDP|SCTP|FWM)$/ { print $3; exit }'
}

# assert_conns NS N SERVICE... : the service counted N connections. The kernel refreshes
# these counters every 2 s, so this waits up to 6 s for them to reach N.
assert_conns() {
    local ns=$1 want=$2 got i=0
    shift 2
    while :; do
        got=$(ipvs_conns "$ns" "$@")
        [ "$got" != "$want" ] || return 0
        i=$((i + 1))
        [ "$i" -lt 30 ] || fail "connections counted on $*: expected $want, got $got"
        sleep 0.2
    done
}

# --- topologies --------------------------------------------------------------------------

# Parses the common builder options: -p PREFIX, -n REAL_SERVERS, -N (no VIP on the
# director: for scenarios where the software under test adds it).
_lab_topo_opts() {
    _p= _n=2 _vip_on_dir=1
    local OPTIND=1 opt
    while getopts p:n:N opt; do
        case $opt in
        p) _p=$OPTARG ;;
        n) _n=$OPTARG ;;
        N) _vip_on_dir= ;;
        *) fail "topology: unknown option" ;;
        esac
    done
    NET=${_p}net CLI=${_p}cli DIR=${_p}dir
    RS= RS_IPS= RS_IPS6=
    VIP=10.0.1.100 VIP6=fd00:1::100
    CLI_IP=10.0.1.2 CLI_IP6=fd00:1::2
    DIR_IP=10.0.1.1 DIR_IP6=fd00:1::1
    local k=1
    while [ "$k" -le "$_n" ]; do
        RS="$RS${RS:+ }${_p}rs$k"
        k=$((k + 1))
    done
}

# _lab_if_script IFNAME ADDR... : brings IFNAME up with the addresses.
_lab_if_script() {
    local ifname=$1 a
    shift
    say "ip link set $ifname up"
    for a in "$@"; do
        say "ip addr add $a dev $ifname"
    done
}

# lab_topo_nat [-p PREFIX] [-n N] [-N] : NAT (masquerading). Client and director on the
# front bridge (10.0.1.0/24, fd00:1::/64); director and real servers on the back bridge
# (10.0.2.0/24, fd00:2::/64); real servers route everything through the director's
# inside address (10.0.2.1, fd00:2::1), which forwards. Real servers listen on every
# address.
lab_topo_nat() {
    local k ns ip ip6 vips=
    _lab_topo_opts "$@"
    lab_switch "$NET" front back
    # shellcheck disable=SC2086
    lab_ns "$CLI" "$DIR" $RS
    lab_wires "$NET" <<EOF
front $CLI eth0
front $DIR eth0
back $DIR eth1
$(for ns in $RS; do echo "back $ns eth0"; done)
EOF
    _lab_in "$CLI" "$(_lab_if_script eth0 "$CLI_IP/24" "$CLI_IP6/64")"
    [ -z "$_vip_on_dir" ] || vips="$VIP/24 $VIP6/64"
    # shellcheck disable=SC2086
    _lab_in "$DIR" "$(_lab_if_script eth0 "$DIR_IP/24" "$DIR_IP6/64" $vips)
        $(_lab_if_script eth1 10.0.2.1/24 fd00:2::1/64)
        sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null"
    k=1
    for ns in $RS; do
        ip=10.0.2.$((10 + k)) ip6=fd00:2::$((10 + k))
        _lab_in "$ns" "$(_lab_if_script eth0 "$ip/24" "$ip6/64")
            ip route add default via 10.0.2.1
            ip -6 route add default via fd00:2::1
            $(_lab_serve_script "$ns" "rs$k")"
        RS_IPS="$RS_IPS${RS_IPS:+ }$ip" RS_IPS6="$RS_IPS6${RS_IPS6:+ }$ip6"
        k=$((k + 1))
    done
}

# lab_topo_dr [-p PREFIX] [-n N] [-N] : direct routing. Client, director and real servers
# on one bridge (10.0.1.0/24, fd00:1::/64; real servers .11, .12, …). Each real server
# has the VIPs on lo and does not answer ARP for them (else clients would bypass the
# director); answers go straight to the client.
lab_topo_dr() {
    local k ns ip ip6 vips=
    _lab_topo_opts "$@"
    lab_switch "$NET" lan
    # shellcheck disable=SC2086
    lab_ns "$CLI" "$DIR" $RS
    lab_wires "$NET" <<EOF
lan $CLI eth0
lan $DIR eth0
$(for ns in $RS; do echo "lan $ns eth0"; done)
EOF
    _lab_in "$CLI" "$(_lab_if_script eth0 "$CLI_IP/24" "$CLI_IP6/64")"
    [ -z "$_vip_on_dir" ] || vips="$VIP/24 $VIP6/64"
    # shellcheck disable=SC2086
    _lab_in "$DIR" "$(_lab_if_script eth0 "$DIR_IP/24" "$DIR_IP6/64" $vips)"
    k=1
    for ns in $RS; do
        ip=10.0.1.$((10 + k)) ip6=fd00:1::$((10 + k))
        _lab_in "$ns" "sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 >/dev/null
            $(_lab_if_script eth0 "$ip/24" "$ip6/64")
            ip addr add $VIP/32 dev lo
            ip addr add $VIP6/128 dev lo
            $(_lab_serve_script "$ns" "rs$k" "$VIP" "$VIP6")"
        RS_IPS="$RS_IPS${RS_IPS:+ }$ip" RS_IPS6="$RS_IPS6${RS_IPS6:+ }$ip6"
        k=$((k + 1))
    done
}

# lab_topo_tun [-p PREFIX] [-n N] [-N] : IP-in-IP tunnelling, IPv4 only. Client and
# director on the front bridge (10.0.1.0/24); real servers on the back bridge
# (10.0.2.0/24) behind a router namespace RTR (10.0.1.254 / 10.0.2.254) that is not the
# director, as in a real TUN set-up: the director encapsulates towards the real
# servers, which decapsulate on tunl0 (holding the VIP) and answer the client directly
# through the router. Sets RTR too.
lab_topo_tun() {
    local k ns ip
    _lab_topo_opts "$@"
    RTR=${_p}rtr
    lab_switch "$NET" front back
    # shellcheck disable=SC2086
    lab_ns "$CLI" "$DIR" "$RTR" $RS
    lab_wires "$NET" <<EOF
front $CLI eth0
front $DIR eth0
front $RTR eth0
back $RTR eth1
$(for ns in $RS; do echo "back $ns eth0"; done)
EOF
    _lab_in "$CLI" "$(_lab_if_script eth0 "$CLI_IP/24")
        ip route add 10.0.2.0/24 via 10.0.1.254"
    # shellcheck disable=SC2046
    _lab_in "$DIR" "$(_lab_if_script eth0 "$DIR_IP/24" $([ -z "$_vip_on_dir" ] || echo "$VIP/24"))
        ip route add 10.0.2.0/24 via 10.0.1.254"
    # The answers come from the VIP, which lives on the front side, out of the back
    # side: reverse-path filtering would drop them.
    _lab_in "$RTR" "$(_lab_if_script eth0 10.0.1.254/24)
        $(_lab_if_script eth1 10.0.2.254/24)
        sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
            net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0 >/dev/null"
    k=1
    for ns in $RS; do
        ip=10.0.2.$((10 + k))
        # tunl0 is the ipip module's catch-all device, present in every namespace. The
        # decapsulated packet comes from the client but arrives on tunl0, not on the
        # route back to the client: no reverse-path filtering.
        _lab_in "$ns" "$(_lab_if_script eth0 "$ip/24")
            ip route add default via 10.0.2.254
            ip link set tunl0 up
            ip addr add $VIP/32 dev tunl0
            sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0 \
                net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 >/dev/null
            $(_lab_serve_script "$ns" "rs$k" "$VIP")"
        RS_IPS="$RS_IPS${RS_IPS:+ }$ip"
        k=$((k + 1))
    done
}

# --- cleanup -----------------------------------------------------------------------------

# What a failed scenario's reader needs first: addresses and IPVS tables.
_lab_dump_state() {
    local ns
    say "--- state at failure ---"
    for ns in $_lab_ns; do
        [ -e "/run/netns/$ns" ] || continue
        say "[$ns] addresses:"
        "$IP" -n "$ns" -br addr 2>&1 | sed 's/^/    /'
        if nsrun "$ns" cat /proc/net/ip_vs 2>/dev/null | grep -q -e '^TCP' -e '^UDP' -e '^FWM' -e '^SCTP'; then
            say "[$ns] ipvsadm -Ln --stats:"
            nsrun "$ns" ipvsadm -Ln --stats 2>&1 | sed 's/^/    /'
        fi
    done
}

lab_cleanup() {
    local rc=$? ns pids live=
    trap - EXIT
    set +e
    [ "$rc" -eq 0 ] || _lab_dump_state
    eval "$_lab_on_exit"
    for ns in $_lab_ns; do
        [ ! -e "/run/netns/$ns" ] || live="$live $ns"
    done
    if [ -n "$live" ]; then
        # Kill whatever runs inside our namespaces first: a live process keeps its
        # namespace (and so its links and sockets) alive after `ip netns del`.
        pids=$(for ns in $live; do echo "netns pids $ns"; done | "$IP" -batch - 2>/dev/null)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -9 $pids 2>/dev/null
        for ns in $live; do echo "netns del $ns"; done | "$IP" -force -batch - \
            || say "cleanup: could not delete every namespace of:$live" >&2
    fi
    exit "$rc"
}

trap lab_cleanup EXIT
# A signal ends the scenario through the EXIT trap, i.e. with cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT
