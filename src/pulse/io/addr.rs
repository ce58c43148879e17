//! The supervisor's hands on the routing table: virtual addresses added and removed,
//! links listed and their state read, over one blocking `NETLINK_ROUTE` socket.
//!
//! Message building and parsing are pure functions (golden-byte tested against what
//! `ip addr add|del` sends); [`Rtnl`] is the thin socket shell in the style of
//! [`crate::ipvs::client`]: raw bytes through [`crate::nlmsg::exchange`]'s loop over
//! neli's `NlSocket`, every wait bounded.
//!
//! Kernel behaviour worth knowing when using this module:
//! - IPv4 labels are not checked by the kernel: it accepts `foo:1` on `eth0`, which
//!   then shows up as an address of a device that does not exist. [`Rtnl::add`] refuses
//!   a label that is not `<device>` or `<device>:<something>`.
//! - IPv6 has no labels: the kernel silently ignores one, so [`Rtnl::add`] refuses it.
//! - Deleting the *primary* IPv4 address of a subnet also deletes its secondaries
//!   (later addresses of the same subnet) unless `net.ipv4.conf.<dev>.promote_secondaries`
//!   is 1: two VIPs of one subnet on a device whose own address is elsewhere are a
//!   primary and a secondary.

use std::io::{self, Cursor};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Arphrd, Ifa, IfaF, Iff, Ifla, RtAddrFamily, RtScope, Rtm};
use neli::consts::socket::NlFamily;
use neli::err::{BuilderError, DeError, SerError};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, RtattrBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, RtBuffer};
use neli::{FromBytesWithInput, Size, ToBytes};

use crate::nlmsg::exchange::{Channel, ExchangeError, Reply, REPLY_TIMEOUT};
use crate::nlmsg::{c_string, FrameError};

/// A dump the kernel marks inconsistent (`NLM_F_DUMP_INTR`: the table changed while it
/// was being read) is read again, this many times at most.
const DUMP_ATTEMPTS: usize = 3;
/// `IFNAMSIZ - 1`: the longest device name or label.
const MAX_NAME: usize = 15;

const NLMSG_HDRLEN: usize = crate::nlmsg::HEADER_LEN;

/// A network device as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The hardware address when it is Ethernet-sized (loopback's is all zeros);
    /// `None` for devices without one (tunnels, some virtual devices).
    pub mac: Option<[u8; 6]>,
    /// `IFF_UP`: the administrator set the device up.
    pub admin_up: bool,
    /// `IFF_LOWER_UP`: the driver reports carrier.
    pub carrier: bool,
    /// Usable for a VIP: `IFF_UP` and `IFF_RUNNING` (RFC 2863 operational state up or
    /// unknown, which implies carrier). The kernel updates the operational state
    /// asynchronously, a moment after the carrier changes.
    pub up: bool,
}

/// An address of a device as `RTM_GETADDR` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The device's index.
    pub index: u32,
    /// `IFA_LOCAL` when present (the local end of a point-to-point address), otherwise
    /// `IFA_ADDRESS`.
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 only, and always present there: the device's name when none was given.
    pub label: Option<String>,
    /// `IFA_F_*` bits (`IFA_FLAGS` when the kernel sends it, else the header's 8 bits).
    pub flags: u32,
}

impl Address {
    /// Still in duplicate address detection (IPv6): not usable as a source yet.
    pub fn is_tentative(&self) -> bool {
        self.flags & libc::IFA_F_TENTATIVE != 0
    }
}

/// An errno the kernel returned, with the extended-ack text it gave (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub errno: i32,
    /// The kernel's own explanation (`NLMSGERR_ATTR_MSG`), e.g. "ipv6: address not found".
    pub message: Option<String>,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.errno))?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

impl std::error::Error for KernelError {}

/// An address the kernel would refuse, or (an IPv6 label) silently ignore: refused
/// before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAddress {
    #[error("label {label:?} is longer than {max} bytes (IFNAMSIZ)", max = MAX_NAME)]
    LabelTooLong { label: String },
    #[error("label {label:?} must be the device name or start with \"{dev}:\" (e.g. \"{dev}:1\")")]
    LabelNotOfDevice { label: String, dev: String },
    #[error("prefix length {prefix} is more than {max}")]
    PrefixTooLong { prefix: u8, max: u8 },
    #[error("label {label:?}: labels are IPv4-only (the kernel would ignore it)")]
    LabelOnIpv6 { label: String },
}

/// A request that could not be built, or a reply that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// neli refused a part of the request (`what`: "ifaddrmsg", "attribute Local", …).
    #[error("cannot encode {what}: {source}")]
    Build {
        what: String,
        #[source]
        source: BuilderError,
    },
    #[error("cannot encode message: {0}")]
    Serialize(#[source] SerError),
    #[error("device index {0} is out of range")]
    IndexOutOfRange(u32),
    #[error("malformed rtnetlink message: length {len} of {available}")]
    Length { len: usize, available: usize },
    #[error("malformed rtnetlink message: {0}")]
    Malformed(#[source] DeError),
    #[error("link {0} has no name")]
    LinkWithoutName(i32),
    #[error("link {name} has index {index}")]
    LinkIndex { name: String, index: i32 },
    #[error("address message for index {0} without a valid address")]
    AddressMissing(u32),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("no reply")]
    NoReply,
}

impl CodecError {
    fn build<E: Into<BuilderError>>(what: &'static str) -> impl FnOnce(E) -> CodecError {
        move |e| CodecError::Build {
            what: what.to_string(),
            source: e.into(),
        }
    }
}

/// What went wrong; every variant but `Socket` names the operation in `ip` syntax,
/// e.g. `add 192.0.2.10/24 dev eth0 label eth0:1` or `look up link eth9`. The rarer
/// details are boxed: this error travels inside the supervisor's and VRRP's start
/// errors, which stay small.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    #[error("rtnetlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{op}: needs CAP_NET_ADMIN: run as root or grant the capability")]
    PermissionDenied { op: String },
    #[error("{op}: no such device")]
    NoDevice { op: String },
    /// Refused before anything was sent.
    #[error("{op}: {reason}")]
    Invalid {
        op: String,
        #[source]
        reason: Box<InvalidAddress>,
    },
    #[error("{op}: the kernel refused: {error}")]
    Kernel {
        op: String,
        #[source]
        error: KernelError,
    },
    #[error("{op}: no reply from the kernel within {timeout:?}")]
    Timeout { op: String, timeout: Duration },
    #[error("{op}: the netlink receive buffer overflowed: replies were lost")]
    Overrun { op: String },
    #[error("{op}: {detail}")]
    Codec {
        op: String,
        #[source]
        detail: Box<CodecError>,
    },
}

impl AddrError {
    fn from_io(op: &str, e: io::Error) -> AddrError {
        let op = op.to_string();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => AddrError::Timeout {
                op,
                timeout: REPLY_TIMEOUT,
            },
            _ if e.raw_os_error() == Some(libc::ENOBUFS) => AddrError::Overrun { op },
            _ if e.raw_os_error() == Some(libc::EPERM) => AddrError::PermissionDenied { op },
            _ => AddrError::Socket(e),
        }
    }

    fn exchange(op: &str, e: ExchangeError) -> AddrError {
        match e {
            ExchangeError::Io(e) => AddrError::from_io(op, e),
            ExchangeError::Frame(e) => AddrError::codec(op, e.into()),
            ExchangeError::Overrun => AddrError::Overrun { op: op.to_string() },
        }
    }

    fn codec(op: &str, detail: CodecError) -> AddrError {
        AddrError::Codec {
            op: op.to_string(),
            detail: Box::new(detail),
        }
    }

    fn kernel(op: &str, error: KernelError) -> AddrError {
        let op = op.to_string();
        match error.errno {
            libc::EPERM => AddrError::PermissionDenied { op },
            libc::ENODEV => AddrError::NoDevice { op },
            _ => AddrError::Kernel { op, error },
        }
    }

    fn errno(&self) -> Option<i32> {
        match self {
            AddrError::Kernel { error, .. } => Some(error.errno),
            _ => None,
        }
    }
}

/// Splits a Piranha/ifconfig-style device into the device and the IPv4 label:
/// `"eth0:1"` → `("eth0", Some("eth0:1"))`, `"eth0"` → `("eth0", None)`.
pub fn split_device(dev: &str) -> (&str, Option<&str>) {
    match dev.split_once(':') {
        Some((base, _)) => (base, Some(dev)),
        None => (dev, None),
    }
}

/// Why `label` cannot name an address of device `dev`, if it cannot. The kernel only
/// checks the length; `ifconfig`-era tools and people read `eth0:1` as "on eth0".
fn check_label(dev: &str, label: &str) -> Result<(), InvalidAddress> {
    if label.len() > MAX_NAME {
        return Err(InvalidAddress::LabelTooLong {
            label: label.to_string(),
        });
    }
    match label.strip_prefix(dev) {
        Some("") => Ok(()),
        Some(rest) if rest.len() > 1 && rest.starts_with(':') => Ok(()),
        _ => Err(InvalidAddress::LabelNotOfDevice {
            label: label.to_string(),
            dev: dev.to_string(),
        }),
    }
}

/// Refuses what the kernel would refuse (or, for an IPv6 label, silently ignore).
fn check_address(
    addr: IpAddr,
    prefix: u8,
    label: Option<&str>,
    dev: &str,
) -> Result<(), InvalidAddress> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(InvalidAddress::PrefixTooLong { prefix, max });
    }
    match (addr, label) {
        (IpAddr::V6(_), Some(l)) => Err(InvalidAddress::LabelOnIpv6 {
            label: l.to_string(),
        }),
        (IpAddr::V4(_), Some(l)) => check_label(dev, l),
        (_, None) => Ok(()),
    }
}

/// The broadcast address `ip addr add ... brd +` computes: none for /31 (RFC 3021
/// point-to-point) and /32 (a host address, the usual VIP), where it would name the
/// address itself or its peer.
fn broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix <= 30).then(|| Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix)))
}

fn rtattr<P: Size + ToBytes>(
    ty: Ifa,
    payload: P,
) -> Result<neli::rtnl::Rtattr<Ifa, Buffer>, CodecError> {
    RtattrBuilder::default()
        .rta_type(ty)
        .rta_payload(payload)
        .build()
        .map_err(|e| CodecError::Build {
            what: format!("attribute {ty:?}"),
            source: e.into(),
        })
}

fn to_bytes<P: Size + ToBytes>(msg: &Nlmsghdr<Rtm, P>) -> Result<Vec<u8>, CodecError> {
    let mut cursor = Cursor::new(Vec::new());
    msg.to_bytes(&mut cursor).map_err(CodecError::Serialize)?;
    Ok(cursor.into_inner())
}

fn message<P: Size + ToBytes>(
    ty: Rtm,
    flags: NlmF,
    seq: u32,
    pid: u32,
    payload: P,
) -> Result<Vec<u8>, CodecError> {
    let msg = NlmsghdrBuilder::default()
        .nl_type(ty)
        .nl_flags(flags)
        .nl_seq(seq)
        .nl_pid(pid)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(CodecError::build("netlink header"))?;
    to_bytes(&msg)
}

/// `RTM_NEWADDR` (`add`) or `RTM_DELADDR`, byte for byte what `ip addr add|del ADDR/PREFIX
/// [brd +] dev DEV [label LABEL]` sends: `IFA_LOCAL` and `IFA_ADDRESS` both the address
/// (no peer), the label, an IPv4 broadcast on add; IPv6 added with `IFA_F_NODAD` so it
/// is usable at once (a VIP taken over from a failed peer must not wait out DAD, nor be
/// refused because the peer still answers for it). Add is exclusive (`NLM_F_EXCL`), so
/// an existing address is reported (`EEXIST`) rather than silently updated.
/// What `ip address add` takes beyond the address (keepalived's `virtual_ipaddress`
/// options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOptions<'a> {
    /// `label` (IPv4).
    pub label: Option<&'a str>,
    /// `scope`, as `rtm_scope` (RT_SCOPE_*); unset: as `ip` chooses.
    pub scope: Option<u8>,
    /// `brd` (IPv4); unset: the prefix's broadcast address, as `ip … brd +`.
    pub broadcast: Option<Ipv4Addr>,
}

fn encode_addr(
    add: bool,
    seq: u32,
    pid: u32,
    index: u32,
    addr: IpAddr,
    prefix: u8,
    options: &AddOptions,
) -> Result<Vec<u8>, CodecError> {
    let mut attrs = RtBuffer::new();
    let (family, flags) = match addr {
        IpAddr::V4(a) => {
            attrs.push(rtattr(Ifa::Local, a.octets())?);
            if let Some(l) = options.label {
                attrs.push(rtattr(Ifa::Label, l)?);
            }
            attrs.push(rtattr(Ifa::Address, a.octets())?);
            if add {
                if let Some(b) = options.broadcast.or_else(|| broadcast(a, prefix)) {
                    attrs.push(rtattr(Ifa::Broadcast, b.octets())?);
                }
            }
            (RtAddrFamily::Inet, IfaF::empty())
        }
        IpAddr::V6(a) => {
            attrs.push(rtattr(Ifa::Local, a.octets())?);
            attrs.push(rtattr(Ifa::Address, a.octets())?);
            let flags = if add { IfaF::NODAD } else { IfaF::empty() };
            (RtAddrFamily::Inet6, flags)
        }
    };
    // As `ip` does: host scope for 127/8, global otherwise (the kernel picks the scope
    // of IPv6 addresses itself).
    let scope = match (options.scope, addr) {
        (Some(s), _) if add => RtScope::from(s),
        (_, IpAddr::V4(a)) if add && a.is_loopback() => RtScope::Host,
        _ => RtScope::Universe,
    };
    let ifa = IfaddrmsgBuilder::default()
        .ifa_family(family)
        .ifa_prefixlen(prefix)
        .ifa_flags(flags)
        .ifa_scope(scope)
        .ifa_index(index)
        .rtattrs(attrs)
        .build()
        .map_err(CodecError::build("ifaddrmsg"))?;
    let (ty, flags) = if add {
        (
            Rtm::Newaddr,
            NlmF::REQUEST | NlmF::ACK | NlmF::EXCL | NlmF::CREATE,
        )
    } else {
        (Rtm::Deladdr, NlmF::REQUEST | NlmF::ACK)
    };
    message(ty, flags, seq, pid, ifa)
}

/// Which device an `RTM_GETLINK` asks for.
enum LinkQuery<'a> {
    All,
    Name(&'a str),
    Index(u32),
}

fn encode_get_link(seq: u32, pid: u32, query: &LinkQuery<'_>) -> Result<Vec<u8>, CodecError> {
    let mut attrs = RtBuffer::new();
    let mut index = 0;
    match query {
        LinkQuery::All => {}
        LinkQuery::Name(n) => attrs.push(
            RtattrBuilder::default()
                .rta_type(Ifla::Ifname)
                .rta_payload(*n)
                .build()
                .map_err(CodecError::build("attribute"))?,
        ),
        LinkQuery::Index(i) => {
            index = i32::try_from(*i).map_err(|_| CodecError::IndexOutOfRange(*i))?
        }
    }
    let ifi = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .ifi_type(Arphrd::from(0))
        .ifi_index(index)
        .rtattrs(attrs)
        .build()
        .map_err(CodecError::build("ifinfomsg"))?;
    let flags = match query {
        LinkQuery::All => NlmF::REQUEST | NlmF::DUMP,
        _ => NlmF::REQUEST | NlmF::ACK,
    };
    message(Rtm::Getlink, flags, seq, pid, ifi)
}

/// `RTM_GETADDR` dump of every IPv4 and IPv6 address.
fn encode_dump_addresses(seq: u32, pid: u32) -> Result<Vec<u8>, CodecError> {
    let ifa = IfaddrmsgBuilder::default()
        .ifa_family(RtAddrFamily::Unspecified)
        .ifa_prefixlen(0)
        .ifa_scope(RtScope::Universe)
        .ifa_index(0)
        .build()
        .map_err(CodecError::build("ifaddrmsg"))?;
    message(Rtm::Getaddr, NlmF::REQUEST | NlmF::DUMP, seq, pid, ifa)
}

/// The family header and attributes after the netlink header of one message (the
/// exchange has already checked that the length fits).
fn decode_payload<P: FromBytesWithInput<Input = usize>>(bytes: &[u8]) -> Result<P, CodecError> {
    let len = crate::nlmsg::u32_at(bytes, 0).map_or(0, |l| l as usize);
    let body = bytes.get(NLMSG_HDRLEN..len).ok_or(CodecError::Length {
        len,
        available: bytes.len(),
    })?;
    P::from_bytes_with_input(&mut Cursor::new(body), body.len()).map_err(CodecError::Malformed)
}

/// One `RTM_NEWLINK` message as a [`Link`].
fn decode_link(bytes: &[u8]) -> Result<Link, CodecError> {
    let ifi: Ifinfomsg = decode_payload(bytes)?;
    let attrs = ifi.rtattrs().get_attr_handle();
    let payload = |ty| attrs.get_attribute(ty).map(|a| a.rta_payload().as_ref());
    let name = payload(Ifla::Ifname)
        .map(c_string)
        .ok_or(CodecError::LinkWithoutName(*ifi.ifi_index()))?;
    let mac = payload(Ifla::Address).and_then(|a| <[u8; 6]>::try_from(a).ok());
    let flags = *ifi.ifi_flags();
    Ok(Link {
        index: u32::try_from(*ifi.ifi_index()).map_err(|_| CodecError::LinkIndex {
            name: name.clone(),
            index: *ifi.ifi_index(),
        })?,
        name,
        mac,
        admin_up: flags.contains(Iff::UP),
        carrier: flags.contains(Iff::LOWERUP),
        up: flags.contains(Iff::UP | Iff::RUNNING),
    })
}

/// One `RTM_NEWADDR` message as an [`Address`]; `None` for families other than IPv4
/// and IPv6.
fn decode_address(bytes: &[u8]) -> Result<Option<Address>, CodecError> {
    let ifa: Ifaddrmsg = decode_payload(bytes)?;
    let attrs = ifa.rtattrs().get_attr_handle();
    let payload = |ty| attrs.get_attribute(ty).map(|a| a.rta_payload().as_ref());
    let raw = payload(Ifa::Local).or_else(|| payload(Ifa::Address));
    let addr = match (*ifa.ifa_family(), raw) {
        (RtAddrFamily::Inet, Some(b)) => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        (RtAddrFamily::Inet6, Some(b)) => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        (RtAddrFamily::Inet | RtAddrFamily::Inet6, None) => None,
        _ => return Ok(None),
    };
    let addr = addr.ok_or(CodecError::AddressMissing(*ifa.ifa_index()))?;
    let flags = match payload(Ifa::Flags).map(<[u8; 4]>::try_from) {
        Some(Ok(f)) => u32::from_ne_bytes(f),
        _ => u32::from(u8::from(*ifa.ifa_flags())),
    };
    Ok(Some(Address {
        index: *ifa.ifa_index(),
        addr,
        prefix: *ifa.ifa_prefixlen(),
        label: payload(Ifa::Label).map(c_string),
        flags,
    }))
}

/// One `NETLINK_ROUTE` socket in the network namespace it was created in.
pub struct Rtnl {
    chan: Channel<NlSocket>,
}

impl Rtnl {
    /// Opens the socket. Listing needs no privilege; changing addresses needs
    /// CAP_NET_ADMIN.
    pub fn connect() -> Result<Rtnl, AddrError> {
        let chan = Channel::open(NlFamily::Route).map_err(AddrError::Socket)?;
        // Both are best effort (Linux 4.12 and 4.20): the kernel's own words in errors,
        // and requests checked rather than loosely interpreted.
        let _ = chan.transport().enable_ext_ack(true);
        let _ = chan.transport().enable_strict_checking(true);
        Ok(Rtnl { chan })
    }

    /// Sends one request and returns its reply: the data messages until the
    /// acknowledgement, or the end of a dump, and whether any was marked
    /// `NLM_F_DUMP_INTR`.
    fn exchange(
        &mut self,
        op: &str,
        encode: impl FnOnce(u32, u32) -> Result<Vec<u8>, CodecError>,
    ) -> Result<Reply, AddrError> {
        let seq = self.chan.reserve(1);
        let req = encode(seq, self.chan.pid()).map_err(|e| AddrError::codec(op, e))?;
        let reply = self
            .chan
            .request(&req, seq)
            .map_err(|e| AddrError::exchange(op, e))?;
        match reply.errno {
            0 => Ok(reply),
            errno => Err(AddrError::kernel(
                op,
                KernelError {
                    errno,
                    message: reply.message,
                },
            )),
        }
    }

    /// A dump, read again while the kernel says it was interrupted by a change.
    fn dump(
        &mut self,
        op: &str,
        encode: impl Fn(u32, u32) -> Result<Vec<u8>, CodecError>,
    ) -> Result<Vec<Vec<u8>>, AddrError> {
        let mut attempt = 1;
        loop {
            let reply = self.exchange(op, &encode)?;
            if !reply.interrupted || attempt == DUMP_ATTEMPTS {
                return Ok(reply.data);
            }
            attempt += 1;
        }
    }

    /// Every device (`ip link show`).
    pub fn links(&mut self) -> Result<Vec<Link>, AddrError> {
        let op = "list links";
        self.dump(op, |seq, pid| encode_get_link(seq, pid, &LinkQuery::All))?
            .iter()
            .map(|m| decode_link(m).map_err(|e| AddrError::codec(op, e)))
            .collect()
    }

    /// The device called `name`; [`AddrError::NoDevice`] when there is none.
    pub fn link(&mut self, name: &str) -> Result<Link, AddrError> {
        let op = format!("look up link {name}");
        if name.is_empty() || name.len() > MAX_NAME {
            // The kernel would answer "invalid argument": no such name can exist.
            return Err(AddrError::NoDevice { op });
        }
        self.one_link(&op, &LinkQuery::Name(name))
    }

    /// The device with index `index`; [`AddrError::NoDevice`] when there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Link, AddrError> {
        self.one_link(&format!("look up link #{index}"), &LinkQuery::Index(index))
    }

    fn one_link(&mut self, op: &str, query: &LinkQuery<'_>) -> Result<Link, AddrError> {
        let reply = self.exchange(op, |seq, pid| encode_get_link(seq, pid, query))?;
        let first = reply
            .data
            .first()
            .ok_or_else(|| AddrError::codec(op, CodecError::NoReply))?;
        decode_link(first).map_err(|e| AddrError::codec(op, e))
    }

    /// Every IPv4 and IPv6 address of every device (`ip addr show`).
    pub fn addresses(&mut self) -> Result<Vec<Address>, AddrError> {
        let op = "list addresses";
        let mut out = Vec::new();
        for m in self.dump(op, encode_dump_addresses)? {
            if let Some(a) = decode_address(&m).map_err(|e| AddrError::codec(op, e))? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The name of device `index` for an operation's description, and the operation
    /// as `ip` would spell it.
    fn describe(
        &mut self,
        verb: &str,
        index: u32,
        addr: IpAddr,
        prefix: u8,
        label: Option<&str>,
    ) -> Result<(String, String), AddrError> {
        let spell = |dev: &str| {
            let mut op = format!("{verb} {addr}/{prefix} dev {dev}");
            if let Some(l) = label {
                op.push_str(&format!(" label {l}"));
            }
            op
        };
        match self.link_by_index(index) {
            Ok(link) => {
                let op = spell(&link.name);
                Ok((link.name, op))
            }
            Err(AddrError::NoDevice { .. }) => Err(AddrError::NoDevice {
                op: spell(&format!("#{index}")),
            }),
            Err(e) => Err(e),
        }
    }

    /// Adds `addr/prefix` on device `index` (`ip addr add ADDR/PREFIX brd + dev DEV
    /// [label LABEL]`; IPv6 `nodad`, usable at once). `label` is for IPv4 aliases such
    /// as `eth0:1` and must be the device's name or start with it and a colon.
    ///
    /// Returns `Ok(false)` when the address was already there (`EEXIST`), which for
    /// IPv4 means the same address and prefix (whatever its label), and for IPv6 the
    /// same address whatever its prefix.
    ///
    /// The device is looked up first (one more request) to name it in errors and to
    /// check the label, which the kernel does not.
    pub fn add(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix: u8,
        label: Option<&str>,
    ) -> Result<bool, AddrError> {
        let options = AddOptions {
            label,
            ..AddOptions::default()
        };
        self.add_with(index, addr, prefix, &options)
    }

    /// [`Self::add`] with a scope and broadcast address of its own.
    pub fn add_with(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix: u8,
        options: &AddOptions,
    ) -> Result<bool, AddrError> {
        let label = options.label;
        let (dev, op) = self.describe("add", index, addr, prefix, label)?;
        check_address(addr, prefix, label, &dev).map_err(|reason| AddrError::Invalid {
            op: op.clone(),
            reason: Box::new(reason),
        })?;
        let sent = self.exchange(&op, |seq, pid| {
            encode_addr(true, seq, pid, index, addr, prefix, options)
        });
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes `addr/prefix` from device `index` (`ip addr del`); the prefix must match
    /// the address's. Returns `Ok(false)` when it was not there.
    pub fn delete(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<bool, AddrError> {
        let (dev, op) = self.describe("delete", index, addr, prefix, None)?;
        check_address(addr, prefix, None, &dev).map_err(|reason| AddrError::Invalid {
            op: op.clone(),
            reason: Box::new(reason),
        })?;
        let sent = self.exchange(&op, |seq, pid| {
            encode_addr(false, seq, pid, index, addr, prefix, &AddOptions::default())
        });
        match sent {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.errno(), Some(libc::EADDRNOTAVAIL | libc::ENOENT)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ip addr add 192.0.2.10/24 brd + dev lo label lo:1`, as strace (6.1) decoded the
    /// `sendmsg` of iproute2 6.1, with sequence 1, port 0 and lo's index 1.
    const IP_ADDR_ADD_V4: [u8; 60] = [
        60, 0, 0, 0, // nlmsg_len
        20, 0, // RTM_NEWADDR
        0x05, 0x06, // NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE
        1, 0, 0, 0, // seq
        0, 0, 0, 0, // pid
        2, 24, 0, 0, // AF_INET, /24, no flags, RT_SCOPE_UNIVERSE
        1, 0, 0, 0, // ifa_index
        8, 0, 2, 0, 192, 0, 2, 10, // IFA_LOCAL
        9, 0, 3, 0, b'l', b'o', b':', b'1', 0, 0, 0, 0, // IFA_LABEL "lo:1\0" + padding
        8, 0, 1, 0, 192, 0, 2, 10, // IFA_ADDRESS
        8, 0, 4, 0, 192, 0, 2, 255, // IFA_BROADCAST
    ];

    /// `ip addr add 2001:db8::10/64 dev lo nodad`.
    const IP_ADDR_ADD_V6: [u8; 64] = [
        64, 0, 0, 0, 20, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0, //
        10, 64, 0x02, 0, 1, 0, 0, 0, // AF_INET6, /64, IFA_F_NODAD
        20, 0, 2, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x10, // IFA_LOCAL
        20, 0, 1, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x10, // IFA_ADDRESS
    ];

    /// `ip addr del 192.0.2.10/24 dev lo`.
    const IP_ADDR_DEL_V4: [u8; 40] = [
        40, 0, 0, 0, 21, 0, 0x05, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, //
        2, 24, 0, 0, 1, 0, 0, 0, //
        8, 0, 2, 0, 192, 0, 2, 10, // IFA_LOCAL
        8, 0, 1, 0, 192, 0, 2, 10, // IFA_ADDRESS
    ];

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn split_device_forms() {
        assert_eq!(split_device("eth0"), ("eth0", None));
        assert_eq!(split_device("eth0:1"), ("eth0", Some("eth0:1")));
        assert_eq!(
            split_device("bond0.100:vip"),
            ("bond0.100", Some("bond0.100:vip"))
        );
        assert_eq!(split_device(""), ("", None));
    }

    #[test]
    fn labels_must_name_the_device() {
        assert!(check_label("eth0", "eth0").is_ok());
        assert!(check_label("eth0", "eth0:1").is_ok());
        assert!(check_label("eth0", "eth0:vip").is_ok());
        for bad in ["foo:1", "eth0:", "eth01", "eth", "eth1:0"] {
            let e = check_label("eth0", bad).unwrap_err();
            assert!(
                matches!(e, InvalidAddress::LabelNotOfDevice { .. }),
                "{e:?}"
            );
            let e = e.to_string();
            assert!(e.contains("must be the device name"), "{bad}: {e}");
            assert!(e.contains("\"eth0:\""), "{e}");
        }
        let long = check_label("eth0", "eth0:0123456789a").unwrap_err();
        assert_eq!(
            long.to_string(),
            "label \"eth0:0123456789a\" is longer than 15 bytes (IFNAMSIZ)"
        );
    }

    #[test]
    fn address_checks() {
        assert!(check_address(v4("192.0.2.1"), 32, Some("eth0:1"), "eth0").is_ok());
        assert!(check_address(v4("192.0.2.1"), 33, None, "eth0")
            .unwrap_err()
            .to_string()
            .contains("more than 32"));
        assert!(check_address(v4("2001:db8::1"), 128, None, "eth0").is_ok());
        assert_eq!(
            check_address(v4("2001:db8::1"), 129, None, "eth0").unwrap_err(),
            InvalidAddress::PrefixTooLong {
                prefix: 129,
                max: 128
            }
        );
        let e = check_address(v4("2001:db8::1"), 64, Some("eth0:1"), "eth0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "label \"eth0:1\": labels are IPv4-only (the kernel would ignore it)"
        );
    }

    #[test]
    fn broadcast_like_ip_brd_plus() {
        let a = Ipv4Addr::new(192, 0, 2, 10);
        assert_eq!(broadcast(a, 24), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(broadcast(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast(a, 30), Some(Ipv4Addr::new(192, 0, 2, 11)));
        assert_eq!(broadcast(a, 31), None);
        assert_eq!(broadcast(a, 32), None);
    }

    #[test]
    fn new_addr_v4_matches_iproute2() {
        let options = AddOptions {
            label: Some("lo:1"),
            ..AddOptions::default()
        };
        let bytes = encode_addr(true, 1, 0, 1, v4("192.0.2.10"), 24, &options).unwrap();
        assert_eq!(bytes, IP_ADDR_ADD_V4);
    }

    /// keepalived's `scope link brd 192.0.2.127` options land in the message.
    #[test]
    fn new_addr_v4_with_scope_and_broadcast() {
        let options = AddOptions {
            label: None,
            scope: Some(253),
            broadcast: Some(Ipv4Addr::new(192, 0, 2, 127)),
        };
        let bytes = encode_addr(true, 1, 0, 1, v4("192.0.2.10"), 24, &options).unwrap();
        assert_eq!(bytes[19], 253, "ifa_scope");
        assert!(
            bytes.windows(8).any(|w| w == [8, 0, 4, 0, 192, 0, 2, 127]),
            "IFA_BROADCAST 192.0.2.127"
        );
        let plain =
            encode_addr(true, 1, 0, 1, v4("192.0.2.10"), 24, &AddOptions::default()).unwrap();
        assert_eq!(plain[19], 0, "global scope unless told");
    }

    #[test]
    fn new_addr_v4_host_route_has_no_broadcast() {
        let bytes =
            encode_addr(true, 1, 0, 1, v4("192.0.2.10"), 32, &AddOptions::default()).unwrap();
        assert_eq!(bytes.len(), 16 + 8 + 8 + 8);
        assert_eq!(bytes[17], 32);
        assert!(
            !bytes.windows(4).any(|w| w == [8, 0, 4, 0]),
            "no IFA_BROADCAST"
        );
    }

    #[test]
    fn new_addr_v6_matches_iproute2() {
        let bytes = encode_addr(
            true,
            1,
            0,
            1,
            v4("2001:db8::10"),
            64,
            &AddOptions::default(),
        )
        .unwrap();
        assert_eq!(bytes, IP_ADDR_ADD_V6);
    }

    #[test]
    fn del_addr_v4_matches_iproute2() {
        let bytes =
            encode_addr(false, 1, 0, 1, v4("192.0.2.10"), 24, &AddOptions::default()).unwrap();
        assert_eq!(bytes, IP_ADDR_DEL_V4);
    }

    #[test]
    fn dump_requests() {
        let links = encode_get_link(7, 0, &LinkQuery::All).unwrap();
        assert_eq!(links.len(), 32);
        assert_eq!(
            &links[4..8],
            &[18, 0, 0x01, 0x03],
            "RTM_GETLINK, REQUEST|DUMP"
        );
        assert!(links[16..].iter().all(|&b| b == 0), "an all-zero ifinfomsg");
        let by_name = encode_get_link(7, 0, &LinkQuery::Name("eth0")).unwrap();
        assert_eq!(&by_name[6..8], &[0x05, 0x00], "REQUEST|ACK");
        assert_eq!(
            &by_name[32..],
            &[9, 0, 3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0]
        );
        let by_index = encode_get_link(7, 0, &LinkQuery::Index(3)).unwrap();
        assert_eq!(&by_index[20..24], &[3, 0, 0, 0]);
        let addrs = encode_dump_addresses(7, 0).unwrap();
        assert_eq!(addrs.len(), 24);
        assert_eq!(
            &addrs[4..8],
            &[22, 0, 0x01, 0x03],
            "RTM_GETADDR, REQUEST|DUMP"
        );
        assert!(
            addrs[16..].iter().all(|&b| b == 0),
            "AF_UNSPEC: every family"
        );
    }

    /// What the kernel sends back for an address looks like a request plus its flags.
    #[test]
    fn address_replies_parse() {
        let mut reply = IP_ADDR_ADD_V4.to_vec();
        reply.extend_from_slice(&[8, 0, 8, 0, 0x80, 0, 0, 0]); // IFA_FLAGS: PERMANENT
        reply[0] = reply.len() as u8;
        let a = decode_address(&reply).unwrap().unwrap();
        assert_eq!(
            a,
            Address {
                index: 1,
                addr: v4("192.0.2.10"),
                prefix: 24,
                label: Some("lo:1".into()),
                flags: 0x80,
            }
        );
        let mut v6 = IP_ADDR_ADD_V6.to_vec();
        v6[18] = 0x40; // IFA_F_TENTATIVE in the header, no IFA_FLAGS
        let a = decode_address(&v6).unwrap().unwrap();
        assert_eq!(a.addr, v4("2001:db8::10"));
        assert_eq!(a.label, None);
        assert!(a.is_tentative());
        let mut other = IP_ADDR_DEL_V4.to_vec();
        other[16] = libc::AF_PACKET as u8;
        assert_eq!(decode_address(&other).unwrap(), None);
    }

    #[test]
    fn link_replies_parse() {
        let flags = libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_LOWER_UP;
        let mut m = vec![0u8; 16];
        m[4] = 16; // RTM_NEWLINK
        m.extend_from_slice(&[0, 0, 1, 0]); // AF_UNSPEC, pad, ARPHRD_ETHER
        m.extend_from_slice(&3i32.to_ne_bytes());
        m.extend_from_slice(&(flags as u32).to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[9, 0, 3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0]);
        m.extend_from_slice(&[10, 0, 1, 0, 2, 0, 0x5e, 1, 2, 3, 0, 0]);
        // A nested attribute neli does not know (IFLA_PROP_LIST | NLA_F_NESTED).
        m.extend_from_slice(&[4, 0, 52, 0x80]);
        m[0] = m.len() as u8;
        let l = decode_link(&m).unwrap();
        assert_eq!(
            l,
            Link {
                index: 3,
                name: "eth0".into(),
                mac: Some([2, 0, 0x5e, 1, 2, 3]),
                admin_up: true,
                carrier: true,
                up: true,
            }
        );
        // Up but without carrier: RUNNING and LOWER_UP are clear.
        m[24..28].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        let l = decode_link(&m).unwrap();
        assert!(l.admin_up && !l.carrier && !l.up);
    }

    /// The kernel's words (an extended acknowledgement, read by
    /// [`crate::nlmsg::status`]) follow the errno's text.
    #[test]
    fn kernel_errors_carry_the_kernels_words() {
        let e = KernelError {
            errno: libc::EADDRNOTAVAIL,
            message: Some("ipv6: address not found".into()),
        };
        assert!(e.to_string().ends_with("(ipv6: address not found)"), "{e}");
    }

    /// Malformed replies and unbuildable requests say what was wrong, as before they
    /// were typed.
    #[test]
    fn codec_errors_keep_their_words() {
        let e = AddrError::codec("list links", CodecError::NoReply);
        assert_eq!(e.to_string(), "list links: no reply");
        let mut m = IP_ADDR_DEL_V4.to_vec();
        m[0] = 200;
        assert_eq!(
            decode_address(&m).unwrap_err().to_string(),
            "malformed rtnetlink message: length 200 of 40"
        );
        let e = AddrError::exchange(
            "list addresses",
            ExchangeError::Frame(FrameError { len: 24, left: 20 }),
        );
        assert_eq!(
            e.to_string(),
            "list addresses: netlink message length 24 with 20 bytes left"
        );
        assert_eq!(
            CodecError::IndexOutOfRange(u32::MAX).to_string(),
            "device index 4294967295 is out of range"
        );
        assert!(encode_get_link(1, 0, &LinkQuery::Index(u32::MAX)).is_err());
    }

    #[test]
    fn errors_name_the_operation() {
        let e = AddrError::kernel(
            "add 192.0.2.10/24 dev eth0",
            KernelError {
                errno: libc::EPERM,
                message: None,
            },
        );
        assert_eq!(
            e.to_string(),
            "add 192.0.2.10/24 dev eth0: needs CAP_NET_ADMIN: run as root or grant the capability"
        );
        let e = AddrError::kernel(
            "look up link eth9",
            KernelError {
                errno: libc::ENODEV,
                message: None,
            },
        );
        assert_eq!(e.to_string(), "look up link eth9: no such device");
    }
}
