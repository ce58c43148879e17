//! Announcing a virtual address after takeover, so neighbours stop sending to the old
//! active director: gratuitous ARP for IPv4, unsolicited neighbour advertisement for
//! IPv6. The packet builders are pure; [`send_garp`] and [`send_unsolicited_na`] are the
//! thin socket shell (AF_PACKET and raw ICMPv6 through socket2).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

const ETH_P_ARP: u16 = 0x0806;
const ARPHRD_ETHER: u16 = 1;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// The Override flag: replace whatever the neighbour cached.
const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;
const OPT_TARGET_LL_ADDR: u8 = 2;

/// A gratuitous ARP as its 28-byte ARP payload (the kernel adds the Ethernet header).
/// Both forms are sent: some hosts update their cache only from requests, others only
/// from replies.
pub fn garp(mac: [u8; 6], ip: Ipv4Addr, reply: bool) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    let op = if reply { ARP_REPLY } else { ARP_REQUEST };
    p[6..8].copy_from_slice(&op.to_be_bytes());
    p[8..14].copy_from_slice(&mac);
    p[14..18].copy_from_slice(&ip.octets());
    // Target hardware address: unknown (zero) in a request, ours in a reply.
    if reply {
        p[18..24].copy_from_slice(&mac);
    }
    p[24..28].copy_from_slice(&ip.octets());
    p
}

/// An unsolicited neighbour advertisement (RFC 4861 §7.2.6) for `ip`, with the
/// Override flag and our link-layer address. The checksum is left zero: the kernel
/// computes it for raw ICMPv6 sockets.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = ICMPV6_NEIGHBOR_ADVERT;
    p[4..8].copy_from_slice(&NA_FLAG_OVERRIDE.to_be_bytes());
    p[8..24].copy_from_slice(&ip.octets());
    p[24] = OPT_TARGET_LL_ADDR;
    p[25] = 1; // length in units of 8 bytes
    p[26..32].copy_from_slice(&mac);
    p
}

/// Sends gratuitous ARP (request and reply form) for `ip` out of interface `ifindex`,
/// to the Ethernet broadcast address.
pub fn send_garp(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> io::Result<()> {
    let sock = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
    )?;
    let to = link_broadcast(ifindex, ETH_P_ARP);
    for reply in [false, true] {
        sock.send_to(&garp(mac, ip, reply), &to)?;
    }
    Ok(())
}

/// Sends an unsolicited neighbour advertisement for `ip` to all nodes (ff02::1) on
/// interface `ifindex`, with hop limit 255 as RFC 4861 requires.
pub fn send_unsolicited_na(ifindex: u32, mac: [u8; 6], ip: Ipv6Addr) -> io::Result<()> {
    let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    sock.set_multicast_hops_v6(255)?;
    sock.set_multicast_if_v6(ifindex)?;
    let all_nodes = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex);
    sock.send_to(&unsolicited_na(mac, ip), &all_nodes.into())?;
    Ok(())
}

/// A `sockaddr_ll` for the Ethernet broadcast address on `ifindex`.
fn link_broadcast(ifindex: u32, protocol: u16) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_storage is larger than sockaddr_ll and suitably aligned; the
    // written value is a complete sockaddr_ll.
    let len = unsafe {
        let ll = (&mut storage as *mut SockAddrStorage).cast::<libc::sockaddr_ll>();
        ll.write(libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: protocol.to_be(),
            sll_ifindex: ifindex as i32,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
        });
        std::mem::size_of::<libc::sockaddr_ll>() as u32
    };
    // SAFETY: storage holds a valid sockaddr_ll of `len` bytes.
    unsafe { SockAddr::new(storage, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn garp_payloads() {
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let req = garp(MAC, ip, false);
        assert_eq!(&req[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&req[8..14], &MAC);
        assert_eq!(&req[14..18], &[192, 0, 2, 10]);
        assert_eq!(&req[18..24], &[0; 6]);
        assert_eq!(&req[24..28], &[192, 0, 2, 10]);
        let rep = garp(MAC, ip, true);
        assert_eq!(&rep[6..8], &[0, 2]);
        assert_eq!(&rep[18..24], &MAC);
    }

    #[test]
    fn na_payload() {
        let p = unsolicited_na(MAC, "2001:db8::10".parse().unwrap());
        assert_eq!(&p[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(
            &p[8..24],
            &"2001:db8::10".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&p[24..], &[2, 1, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
    }
}
