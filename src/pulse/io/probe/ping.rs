//! ICMP and ICMPv6 echo: an unprivileged ping socket where the kernel allows it, a raw
//! socket otherwise (the choice remembered per family); IPv4 checksums are ours, the
//! kernel computes ICMPv6's.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::io_detail;

/// The kind of ICMP socket: an unprivileged "ping" datagram socket, or a raw one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IcmpSocket {
    Dgram,
    Raw,
}

/// Remembers per address family that ping sockets are refused here (the group is
/// outside `net.ipv4.ping_group_range`), so that later checks go straight to raw.
static PING_REFUSED: [AtomicU8; 2] = [AtomicU8::new(0), AtomicU8::new(0)];

pub(super) fn ping_socket_kind(addr: IpAddr) -> IcmpSocket {
    if PING_REFUSED[usize::from(addr.is_ipv6())].load(Ordering::Relaxed) != 0 {
        IcmpSocket::Raw
    } else {
        IcmpSocket::Dgram
    }
}

fn open_icmp(addr: IpAddr, kind: IcmpSocket) -> io::Result<(socket2::Socket, IcmpSocket)> {
    use socket2::{Domain, Socket, Type};
    let (domain, proto) = match addr {
        IpAddr::V4(_) => (Domain::IPV4, socket2::Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, socket2::Protocol::ICMPV6),
    };
    if kind == IcmpSocket::Dgram {
        match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => return Ok((s, IcmpSocket::Dgram)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                PING_REFUSED[usize::from(addr.is_ipv6())].store(1, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    Socket::new(domain, Type::RAW, Some(proto)).map(|s| (s, IcmpSocket::Raw))
}

/// The Internet checksum (RFC 1071).
fn icmp_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends an echo request now and every second after, until a matching reply. The
/// caller bounds the time.
pub(super) async fn ping(addr: IpAddr, kind: IcmpSocket) -> Result<String, String> {
    let (socket, kind) = open_icmp(addr, kind).map_err(|e| format!("ICMP socket: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("ICMP socket: {e}"))?;
    // Connected, the kernel passes this socket only what comes from `addr` (raw sockets
    // would otherwise each see every ICMP packet of the host).
    socket
        .connect(&SocketAddr::new(addr, 0).into())
        .map_err(|e| io_detail(&e))?;
    // Driven through tokio's datagram type: it only needs send(2), recv(2) and
    // readiness, which ICMP sockets (ping or raw) have like UDP ones.
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(|e| format!("ICMP socket: {e}"))?;

    let (request, reply) = if addr.is_ipv6() { (128, 129) } else { (8, 0) };
    // Ping sockets replace the identifier with their own and filter replies by it;
    // raw sockets need one of ours.
    let ident: u16 = rand::random();
    let token: [u8; 8] = rand::random();
    let mut sent: Vec<Instant> = Vec::new();
    let mut next_send = Instant::now();
    let mut buf = [0u8; 1500];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_send) => {
                let seq = (sent.len() + 1) as u16;
                let mut packet = vec![request, 0, 0, 0];
                packet.extend_from_slice(&ident.to_be_bytes());
                packet.extend_from_slice(&seq.to_be_bytes());
                packet.extend_from_slice(ECHO_DATA);
                packet.extend_from_slice(&token);
                if !addr.is_ipv6() {
                    // ICMPv6 checksums cover a pseudo-header: the kernel computes them.
                    let sum = icmp_checksum(&packet);
                    packet[2..4].copy_from_slice(&sum.to_be_bytes());
                }
                socket
                    .send(&packet)
                    .await
                    .map_err(|e| format!("sending the echo request: {}", io_detail(&e)))?;
                sent.push(Instant::now());
                next_send += Duration::from_secs(1);
            }
            n = socket.recv(&mut buf) => {
                let n = n.map_err(|e| io_detail(&e))?;
                let mut icmp = &buf[..n];
                // Raw IPv4 sockets deliver the IP header too.
                if kind == IcmpSocket::Raw && !addr.is_ipv6() {
                    let ihl = usize::from(icmp.first().map_or(0, |b| b & 0x0f)) * 4;
                    icmp = icmp.get(ihl..).unwrap_or_default();
                }
                let data_end = 8 + ECHO_DATA.len() + token.len();
                if icmp.len() != data_end || icmp[0] != reply || icmp[1] != 0 {
                    continue; // our own request on loopback, or someone else's packet
                }
                let seq = usize::from(u16::from_be_bytes([icmp[6], icmp[7]]));
                let ours = (kind == IcmpSocket::Dgram
                    || u16::from_be_bytes([icmp[4], icmp[5]]) == ident)
                    && icmp[8..8 + ECHO_DATA.len()] == *ECHO_DATA
                    && icmp[8 + ECHO_DATA.len()..] == token;
                if let Some(at) = sent.get(seq.wrapping_sub(1)).filter(|_| ours) {
                    let rtt = at.elapsed().as_secs_f64() * 1000.0;
                    return Ok(format!("echo reply (seq {seq}, {rtt:.2} ms)"));
                }
            }
        }
    }
}

/// The payload of our echo requests (followed by a random token per check).
const ECHO_DATA: &[u8] = b"lvs-director";

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::pulse::io::probe::ProbeKind;

    #[tokio::test]
    async fn ping_loopback_over_ping_and_raw_sockets() {
        for addr in loopbacks() {
            if open_icmp(addr, IcmpSocket::Dgram).is_err() {
                eprintln!("skipped: this user may open no ICMP socket for {addr}");
                continue;
            }
            let o = probe(ProbeKind::Ping, addr, 0, 2000).run().await;
            assert_ok(&o);
            assert!(o.detail.starts_with("echo reply (seq 1,"), "{o:?}");
            for kind in [IcmpSocket::Dgram, IcmpSocket::Raw] {
                // Either may be refused to an unprivileged user; root (CI) has both.
                if open_icmp(addr, kind).ok().map(|(_, k)| k) != Some(kind) {
                    eprintln!("skipped: no {kind:?} ICMP socket for {addr}");
                    continue;
                }
                let r = tokio::time::timeout(Duration::from_secs(2), ping(addr, kind)).await;
                let detail = r.expect("a reply within 2 s").unwrap();
                assert!(
                    detail.starts_with("echo reply"),
                    "{addr} {kind:?}: {detail}"
                );
            }
        }
    }

    #[test]
    fn checksum_of_a_known_echo_request() {
        // An echo request, id 1 seq 1, no data: 0xffff - 0x0800 - 1 - 1 = 0xf7fd.
        assert_eq!(icmp_checksum(&[8, 0, 0, 0, 0, 1, 0, 1]), 0xf7fd);
        let mut odd = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7, 0xab];
        let sum = icmp_checksum(&odd);
        odd[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            icmp_checksum(&odd),
            0,
            "a packet with its checksum sums to 0"
        );
    }
}
