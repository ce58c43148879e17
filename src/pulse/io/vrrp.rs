//! VRRP's sockets: raw IP protocol 112 on one interface, as keepalived opens them.
//!
//! One [`Receiver`] per interface and family takes every advert arriving there (the
//! caller hands each to the instance with its virtual router id); one [`Sender`] per
//! instance sends from the instance's source address. They are separate because a raw
//! socket bound to an address receives only datagrams for that address, and multicast
//! adverts are addressed to the group.
//!
//! What the receiving side learns besides the bytes: the source (the election's
//! tie-breaker), the destination (version 3's checksum covers it) and the TTL / hop
//! limit (255 proves the advert was not routed). IPv4 raw sockets deliver the IP header
//! with the datagram; IPv6 ones deliver neither header, so the hop limit and the
//! destination come as control messages (IPV6_HOPLIMIT, IPV6_PKTINFO).
//!
//! Adverts are sent with TTL / hop limit 255 and TOS / traffic class 0xc0 (network
//! control), multicast loop off, as keepalived sends them.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::pulse::logic::vrrp::packet::{split_ipv4, Advert, GROUP_V4, GROUP_V6, PROTOCOL, TTL};

/// Network control, as keepalived marks adverts.
const TOS: u32 = 0xc0;
/// The largest advert: 255 IPv6 addresses and the header, with room to spare.
const MAX_DATAGRAM: usize = 8 + 255 * 16 + 8 + 60;

/// One datagram received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL / hop limit it arrived with.
    pub ttl: u8,
    /// The VRRP message (without the IP header).
    pub msg: Vec<u8>,
}

fn raw(v6: bool) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(i32::from(PROTOCOL))))?;
    s.set_nonblocking(true)?;
    s.set_cloexec(true)?;
    Ok(s)
}

fn nonzero(ifindex: u32) -> io::Result<NonZeroU32> {
    NonZeroU32::new(ifindex)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "interface index 0"))
}

/// The adverts arriving on one interface, for one family.
pub struct Receiver {
    fd: AsyncFd<Socket>,
    v6: bool,
    ifindex: u32,
}

impl Receiver {
    /// Opens the socket on interface `ifindex` and joins the VRRP group there (needed
    /// for multicast adverts; harmless with unicast peers).
    pub fn open(ifindex: u32, v6: bool) -> io::Result<Receiver> {
        let s = raw(v6)?;
        if v6 {
            s.bind_device_by_index_v6(Some(nonzero(ifindex)?))?;
            s.join_multicast_v6(&GROUP_V6, ifindex)?;
            s.set_recv_hoplimit_v6(true)?;
            set_int(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        } else {
            s.bind_device_by_index_v4(Some(nonzero(ifindex)?))?;
            s.join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        }
        // SAFETY: the socket owns its descriptor, and the AsyncFd owns the socket: the
        // descriptor is neither closed nor replaced while registered.
        let fd = unsafe { AsyncFd::register(s)? };
        Ok(Receiver { fd, v6, ifindex })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The next datagram. Datagrams that are not whole IP packets of protocol 112 are
    /// skipped (an IPv4 raw socket hands the header over, checked here).
    pub async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            let got = guard.try_io(|s| {
                if self.v6 {
                    recv_v6(s.get_ref())
                } else {
                    let mut buf = vec![0u8; MAX_DATAGRAM];
                    let n = s.get_ref().read(&mut buf)?;
                    buf.truncate(n);
                    Ok(split_ipv4(&buf)
                        .filter(|(h, _)| h.protocol == PROTOCOL)
                        .map(|(h, msg)| Received {
                            src: h.src.into(),
                            dst: h.dst.into(),
                            ttl: h.ttl,
                            msg: msg.to_vec(),
                        }))
                }
            });
            match got {
                Ok(Ok(Some(r))) => return Ok(r),
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

fn set_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: setsockopt reads `size_of::<i32>()` bytes from a valid i32 on the stack.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Control-message buffer, aligned as `struct cmsghdr` requires.
#[repr(C, align(8))]
struct Control([u8; 128]);

/// recvmsg on an IPv6 raw socket: the datagram, its source, and from the control
/// messages its hop limit and destination. `Ok(None)` when either is missing.
fn recv_v6(s: &Socket) -> io::Result<Option<Received>> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut control = Control([0; 128]);
    // SAFETY: zeroed sockaddr_in6 is a valid value of that plain C struct.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below points into locals
    // that outlive the call, with the lengths given.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len();
    // SAFETY: `msg` describes valid, writable buffers (see above).
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    let used = (msg.msg_controllen).min(control.0.len());
    let (ttl, dst) = control_v6(&control.0[..used]);
    let src = Ipv6Addr::from(from.sin6_addr.s6_addr);
    Ok(match (ttl, dst) {
        (Some(ttl), Some(dst)) => Some(Received {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            ttl,
            msg: buf,
        }),
        _ => None,
    })
}

/// Reads IPV6_HOPLIMIT and IPV6_PKTINFO out of a control buffer laid out as Linux
/// writes it on 64-bit and 32-bit machines: `cmsghdr { size_t len; int level; int
/// type; }` followed by the data, each message aligned to `size_t`.
fn control_v6(buf: &[u8]) -> (Option<u8>, Option<Ipv6Addr>) {
    const WORD: usize = std::mem::size_of::<usize>();
    let header = WORD + 8;
    let align = |n: usize| n.div_ceil(WORD) * WORD;
    let (mut ttl, mut dst) = (None, None);
    let mut at = 0;
    while at + header <= buf.len() {
        let mut w = [0u8; WORD];
        w.copy_from_slice(&buf[at..at + WORD]);
        let len = usize::from_ne_bytes(w);
        let int = |o: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&buf[at + o..at + o + 4]);
            i32::from_ne_bytes(b)
        };
        let (level, kind) = (int(WORD), int(WORD + 4));
        if len < header || at + len > buf.len() {
            break;
        }
        let data = &buf[at + align(header)..at + len];
        if level == libc::IPPROTO_IPV6 {
            if kind == libc::IPV6_HOPLIMIT && data.len() >= 4 {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[..4]);
                ttl = u8::try_from(i32::from_ne_bytes(b)).ok();
            } else if kind == libc::IPV6_PKTINFO && data.len() >= 16 {
                let mut a = [0u8; 16];
                a.copy_from_slice(&data[..16]);
                dst = Some(Ipv6Addr::from(a));
            }
        }
        at += align(len);
    }
    (ttl, dst)
}

/// Sends one instance's adverts from its source address.
pub struct Sender {
    sock: Socket,
    src: IpAddr,
    ifindex: u32,
}

impl Sender {
    /// A socket on interface `ifindex` sending from `src` (the interface's address, or
    /// `unicast_src_ip`).
    pub fn open(ifindex: u32, src: IpAddr) -> io::Result<Sender> {
        let s = raw(src.is_ipv6())?;
        match src {
            IpAddr::V6(a) => {
                s.bind_device_by_index_v6(Some(nonzero(ifindex)?))?;
                s.set_multicast_hops_v6(u32::from(TTL))?;
                s.set_unicast_hops_v6(u32::from(TTL))?;
                s.set_multicast_if_v6(ifindex)?;
                s.set_multicast_loop_v6(false)?;
                s.set_tclass_v6(TOS)?;
                let scope = if a.is_unicast_link_local() {
                    ifindex
                } else {
                    0
                };
                s.bind(&SockAddr::from(SocketAddrV6::new(a, 0, 0, scope)))?;
            }
            IpAddr::V4(a) => {
                s.bind_device_by_index_v4(Some(nonzero(ifindex)?))?;
                s.set_multicast_ttl_v4(u32::from(TTL))?;
                s.set_ttl_v4(u32::from(TTL))?;
                s.set_multicast_loop_v4(false)?;
                s.set_tos_v4(TOS)?;
                s.set_multicast_if_v4(&a)?;
                s.bind(&SockAddr::from(SocketAddrV4::new(a, 0)))?;
            }
        }
        Ok(Sender {
            sock: s,
            src,
            ifindex,
        })
    }

    pub fn source(&self) -> IpAddr {
        self.src
    }

    /// Sends `advert` to `dst` (a unicast peer, or the group of its family).
    pub fn send(&self, advert: &Advert, dst: IpAddr) -> io::Result<()> {
        let msg = advert.encode(self.src, dst);
        let to: SocketAddr = match dst {
            IpAddr::V4(a) => SocketAddrV4::new(a, 0).into(),
            IpAddr::V6(a) => {
                let scope = if a.is_multicast() || a.is_unicast_link_local() {
                    self.ifindex
                } else {
                    0
                };
                SocketAddrV6::new(a, 0, 0, scope).into()
            }
        };
        let n = self.sock.send_to(&msg, &to.into())?;
        if n != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {n} of {} bytes", msg.len()),
            ));
        }
        Ok(())
    }
}

/// The multicast group adverts of a family go to.
pub fn group(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(GROUP_V6)
    } else {
        IpAddr::V4(GROUP_V4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control buffer as Linux writes it on this machine: hop limit, then packet
    /// info; a truncated message ends the walk without a panic.
    #[test]
    fn control_messages_are_read_without_trusting_their_lengths() {
        const WORD: usize = std::mem::size_of::<usize>();
        let mut buf = Vec::new();
        let mut push = |kind: i32, data: &[u8]| {
            let len = WORD + 8 + data.len();
            buf.extend_from_slice(&len.to_ne_bytes());
            buf.extend_from_slice(&libc::IPPROTO_IPV6.to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(data);
            while buf.len() % WORD != 0 {
                buf.push(0);
            }
        };
        push(libc::IPV6_HOPLIMIT, &255i32.to_ne_bytes());
        let mut info = GROUP_V6.octets().to_vec();
        info.extend_from_slice(&3u32.to_ne_bytes());
        push(libc::IPV6_PKTINFO, &info);
        assert_eq!(control_v6(&buf), (Some(255), Some(GROUP_V6)));
        for cut in 0..buf.len() {
            let _ = control_v6(&buf[..cut]);
        }
        let mut lying = buf.clone();
        lying[..WORD].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(control_v6(&lying), (None, None));
    }
}
