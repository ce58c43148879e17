#!/bin/bash
# Captures keepalived 2.2.7's adverts for the codec's golden tests (../packet.rs).
# Run as root from this directory: bash capture.sh v2pass.conf v3ip4.conf v3ip4uni.conf v3ip6.conf
# For each CONF, keepalived runs as master in namespace kA for 5.5 s and is stopped;
# tcpdump in kB writes NAME.pcap. NAME.hex then holds two lines, the IP packets (link
# header removed) of the first advert and of the priority-0 advert sent on the stop:
#   python3 - NAME.pcap  (see the extraction at the end of this file)
set -e
cleanup() { ip netns del kA 2>/dev/null || true; ip netns del kB 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add kA; ip netns add kB
ip link add va netns kA type veth peer name vb netns kB
ip -n kA addr add 192.0.2.1/24 dev va; ip -n kB addr add 192.0.2.2/24 dev vb
ip -n kA link set va address 02:00:00:00:00:01; ip -n kB link set vb address 02:00:00:00:00:02
ip -n kA addr add fe80::1/64 dev va nodad; ip -n kB addr add fe80::2/64 dev vb nodad
ip -n kA link set va up; ip -n kB link set vb up
sleep 1
for conf in "$@"; do
  name=$(basename $conf .conf)
  ip netns exec kB tcpdump -i vb -U -w $name.pcap 'ip proto 112 or ip6' >/dev/null 2>&1 &
  td=$!
  sleep 0.5
  ip netns exec kA keepalived -n -l -D -P -f $PWD/$conf -p /tmp/vcap/$name.pid -r /tmp/vcap/$name.vpid >$name.log 2>&1 &
  ka=$!
  sleep 5.5
  kill $ka; wait $ka || true
  sleep 0.5; kill $td; wait $td || true
done

# Extraction used for the .hex files (IPv4: cut at the total length; IPv6: 40 + payload):
# import struct,sys
# d=open(sys.argv[1],'rb').read(); off=24; pk=[]
# while off<len(d):
#     _,_,n,_=struct.unpack('<IIII',d[off:off+16]); off+=16; fr=d[off:off+n]; off+=n
#     et=struct.unpack('>H',fr[12:14])[0]; ip=fr[14:]
#     if et==0x0800 and ip[9]==112: pk.append(ip[:struct.unpack('>H',ip[2:4])[0]])
#     if et==0x86dd and ip[6]==112: pk.append(ip[:40+struct.unpack('>H',ip[4:6])[0]])
# zero=[p for p in pk if p[(20 if p[0]>>4==4 else 40)+2]==0]
# print(pk[0].hex()); print(zero[0].hex())
