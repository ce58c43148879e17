//! The IPVS generic-netlink codec: requests as bytes and replies as [`table`] values,
//! exactly as the kernel's `ip_vs_ctl.c` writes and parses them. Pure, so every byte
//! is tested without a kernel; [`super::client`] moves the bytes.
//!
//! Nested attributes are written without `NLA_F_NESTED`, as ipvsadm, keepalived and
//! Seesaw do: the kernel parses IPVS attributes with the deprecated (lenient) parser,
//! and the golden vectors from Seesaw pin that form.
//!
//! [`table`]: super::table

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::consts::genl::{Cmd, NlAttrType};
use neli::consts::nl::NlmF;
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, Nlattr, NlattrBuilder};
use neli::neli_enum;
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::types::{Buffer, GenlBuffer};
use neli::{FromBytes, ToBytes};

use super::diff::Op;
use super::table::{
    Dest, DestConns, DestKey, DestParams, FwdMethod, Service, ServiceKey, ServiceParams, Stats,
};

/// The generic-netlink family name the kernel registers for IPVS.
pub const FAMILY_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const VERSION: u8 = 1;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
/// The kernel owns this service flag; it is never sent or compared.
const SVC_F_HASHED: u32 = 0x0002;

/// `IPVS_CMD_*`.
#[neli_enum(serialized_type = "u8")]
pub enum IpvsCmd {
    Unspec = 0,
    NewService = 1,
    SetService = 2,
    DelService = 3,
    GetService = 4,
    NewDest = 5,
    SetDest = 6,
    DelDest = 7,
    GetDest = 8,
    NewDaemon = 9,
    DelDaemon = 10,
    GetDaemon = 11,
    SetConfig = 12,
    GetConfig = 13,
    SetInfo = 14,
    GetInfo = 15,
    Zero = 16,
    Flush = 17,
}
impl Cmd for IpvsCmd {}

/// `IPVS_CMD_ATTR_*` (top level), also the reply attributes of `GET_CONFIG`.
#[neli_enum(serialized_type = "u16")]
pub enum CmdAttr {
    Unspec = 0,
    Service = 1,
    Dest = 2,
    Daemon = 3,
    TimeoutTcp = 4,
    TimeoutTcpFin = 5,
    TimeoutUdp = 6,
}
impl NlAttrType for CmdAttr {}

/// `IPVS_SVC_ATTR_*`.
#[neli_enum(serialized_type = "u16")]
pub enum SvcAttr {
    Unspec = 0,
    Af = 1,
    Protocol = 2,
    Addr = 3,
    Port = 4,
    Fwmark = 5,
    SchedName = 6,
    Flags = 7,
    Timeout = 8,
    Netmask = 9,
    Stats = 10,
    PeName = 11,
    Stats64 = 12,
}
impl NlAttrType for SvcAttr {}

/// `IPVS_DEST_ATTR_*`.
#[neli_enum(serialized_type = "u16")]
pub enum DestAttr {
    Unspec = 0,
    Addr = 1,
    Port = 2,
    FwdMethod = 3,
    Weight = 4,
    UThresh = 5,
    LThresh = 6,
    ActiveConns = 7,
    InactConns = 8,
    PersistConns = 9,
    Stats = 10,
    AddrFamily = 11,
    Stats64 = 12,
    TunType = 13,
    TunPort = 14,
    TunFlags = 15,
}
impl NlAttrType for DestAttr {}

/// `IPVS_DAEMON_ATTR_*`.
#[neli_enum(serialized_type = "u16")]
pub enum DaemonAttr {
    Unspec = 0,
    State = 1,
    McastIfn = 2,
    SyncId = 3,
    SyncMaxlen = 4,
    McastGroup = 5,
    McastGroup6 = 6,
    McastPort = 7,
    McastTtl = 8,
}
impl NlAttrType for DaemonAttr {}

/// `IPVS_STATS_ATTR_*`.
#[neli_enum(serialized_type = "u16")]
pub enum StatsAttr {
    Unspec = 0,
    Conns = 1,
    Inpkts = 2,
    Outpkts = 3,
    Inbytes = 4,
    Outbytes = 5,
    Cps = 6,
    Inpps = 7,
    Outpps = 8,
    Inbps = 9,
    Outbps = 10,
    Pad = 11,
}
impl NlAttrType for StatsAttr {}

/// `IPVS_INFO_ATTR_*`.
#[neli_enum(serialized_type = "u16")]
pub enum InfoAttr {
    Unspec = 0,
    Version = 1,
    ConnTabSize = 2,
}
impl NlAttrType for InfoAttr {}

/// The whole message type of this family.
pub type IpvsMsg = Nlmsghdr<u16, Genlmsghdr<IpvsCmd, CmdAttr>>;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("malformed IPVS reply: {0}")]
    Decode(String),
}

fn encode_err(what: &'static str) -> impl Fn(String) -> CodecError {
    move |detail| CodecError::Encode { what, detail }
}

fn decode_err(detail: impl Into<String>) -> CodecError {
    CodecError::Decode(detail.into())
}

/// `GET_INFO`: the IPVS version and the connection table size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Info {
    /// `IP_VS_VERSION_CODE`, e.g. 0x010201 for 1.2.1.
    pub version: u32,
    pub conn_tab_size: u32,
}

impl Info {
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// Connection timeouts, seconds (`ipvsadm --set tcp tcpfin udp`). In a `SET_CONFIG` a
/// zero leaves that timeout unchanged, as the kernel defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// `IP_VS_STATE_*` of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    Master = 1,
    Backup = 2,
}

/// A connection-sync daemon (`ipvsadm --start-daemon`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncDaemon {
    pub state: SyncState,
    /// The interface the sync messages use.
    pub ifname: String,
    pub sync_id: u32,
}

/// One request of the IPVS family.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<'a> {
    Op(&'a Op),
    /// Dump of every service.
    GetServices,
    /// Dump of the destinations of one service.
    GetDests(ServiceKey),
    GetInfo,
    GetConfig,
    SetConfig(Timeouts),
    /// Dump of the running sync daemons.
    GetDaemons,
    NewDaemon(&'a SyncDaemon),
    DelDaemon(SyncState),
}

impl Request<'_> {
    /// Whether the kernel answers with a multipart dump rather than one message.
    pub fn is_dump(&self) -> bool {
        matches!(
            self,
            Request::GetServices | Request::GetDests(_) | Request::GetDaemons
        )
    }

    /// Whether this request changes the kernel's state.
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Request::Op(_) | Request::SetConfig(_) | Request::NewDaemon(_) | Request::DelDaemon(_)
        )
    }
}

fn attr<T: NlAttrType, P: neli::Size + ToBytes>(
    ty: T,
    payload: P,
) -> Result<Nlattr<T, Buffer>, CodecError> {
    NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(ty)
                .build()
                .map_err(|e| encode_err("attribute type")(e.to_string()))?,
        )
        .nla_payload(payload)
        .build()
        .map_err(|e| encode_err("attribute")(e.to_string()))
}

/// A nested attribute written the way the kernel's IPVS parser has always read it
/// (see the module documentation about `NLA_F_NESTED`).
fn nested<T: NlAttrType, I: NlAttrType>(
    ty: T,
    inner: GenlBuffer<I, Buffer>,
) -> Result<Nlattr<T, Buffer>, CodecError> {
    let mut bytes = Cursor::new(Vec::new());
    inner
        .to_bytes(&mut bytes)
        .map_err(|e| encode_err("nested attributes")(e.to_string()))?;
    attr(ty, Buffer::from(bytes.into_inner()))
}

fn addr_bytes(a: IpAddr) -> [u8; 16] {
    // `union nf_inet_addr`: an IPv4 address in the first four bytes.
    let mut out = [0u8; 16];
    match a {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

fn family(a: IpAddr) -> u16 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

fn service_family(k: &ServiceKey) -> u16 {
    if k.is_ipv6() {
        AF_INET6
    } else {
        AF_INET
    }
}

/// The attributes that identify a service; `params` adds what NEW/SET need.
fn service_attrs(
    k: &ServiceKey,
    params: Option<&ServiceParams>,
) -> Result<Nlattr<CmdAttr, Buffer>, CodecError> {
    let mut a = GenlBuffer::<SvcAttr, Buffer>::new();
    a.push(attr(SvcAttr::Af, service_family(k))?);
    match *k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            a.push(attr(SvcAttr::Protocol, protocol)?);
            a.push(attr(SvcAttr::Addr, addr_bytes(addr))?);
            a.push(attr(SvcAttr::Port, port.to_be_bytes())?);
        }
        ServiceKey::Fwmark { mark, .. } => a.push(attr(SvcAttr::Fwmark, mark)?),
    }
    if let Some(p) = params {
        if p.scheduler.is_empty() || p.scheduler.len() >= 16 {
            return Err(encode_err("scheduler name")(format!(
                "{:?} must be 1 to 15 bytes",
                p.scheduler
            )));
        }
        a.push(attr(SvcAttr::SchedName, p.scheduler.as_str())?);
        // struct ip_vs_flags { flags, mask }: a full mask sets every bit as given.
        let mut flags = [0u8; 8];
        flags[..4].copy_from_slice(&p.flags.to_ne_bytes());
        flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        a.push(attr(SvcAttr::Flags, flags)?);
        a.push(attr(SvcAttr::Timeout, p.timeout)?);
        // IPv4: a mask in network order; IPv6: a prefix length in host order.
        let netmask = if service_family(k) == AF_INET {
            p.netmask.to_be_bytes()
        } else {
            p.netmask.to_ne_bytes()
        };
        a.push(attr(SvcAttr::Netmask, netmask)?);
    }
    nested(CmdAttr::Service, a)
}

fn dest_attrs(
    d: &DestKey,
    params: Option<&DestParams>,
) -> Result<Nlattr<CmdAttr, Buffer>, CodecError> {
    let mut a = GenlBuffer::<DestAttr, Buffer>::new();
    a.push(attr(DestAttr::Addr, addr_bytes(d.addr))?);
    a.push(attr(DestAttr::Port, d.port.to_be_bytes())?);
    if let Some(p) = params {
        a.push(attr(DestAttr::FwdMethod, p.fwd.code())?);
        a.push(attr(DestAttr::Weight, p.weight)?);
        a.push(attr(DestAttr::UThresh, p.u_threshold)?);
        a.push(attr(DestAttr::LThresh, p.l_threshold)?);
        if p.fwd == FwdMethod::Tunnel {
            a.push(attr(DestAttr::TunType, p.tun_type)?);
            a.push(attr(DestAttr::TunPort, p.tun_port.to_be_bytes())?);
            a.push(attr(DestAttr::TunFlags, p.tun_flags)?);
        }
    }
    // A destination's family may differ from its service's (IPv6 real servers behind
    // an IPv4 VIP through a tunnel); say it rather than let the kernel assume.
    a.push(attr(DestAttr::AddrFamily, family(d.addr))?);
    nested(CmdAttr::Dest, a)
}

fn daemon_attrs(d: &SyncDaemon) -> Result<Nlattr<CmdAttr, Buffer>, CodecError> {
    if d.ifname.is_empty() || d.ifname.len() >= 16 {
        return Err(encode_err("sync daemon interface")(format!(
            "{:?} must be 1 to 15 bytes",
            d.ifname
        )));
    }
    let mut a = GenlBuffer::<DaemonAttr, Buffer>::new();
    a.push(attr(DaemonAttr::State, d.state as u32)?);
    a.push(attr(DaemonAttr::McastIfn, d.ifname.as_str())?);
    a.push(attr(DaemonAttr::SyncId, d.sync_id)?);
    nested(CmdAttr::Daemon, a)
}

fn command(req: &Request<'_>) -> Result<(IpvsCmd, GenlBuffer<CmdAttr, Buffer>), CodecError> {
    let mut attrs = GenlBuffer::new();
    let cmd = match req {
        Request::Op(op) => match op {
            Op::AddService(k, p) => {
                attrs.push(service_attrs(k, Some(p))?);
                IpvsCmd::NewService
            }
            Op::EditService(k, p) => {
                attrs.push(service_attrs(k, Some(p))?);
                IpvsCmd::SetService
            }
            Op::DelService(k) => {
                attrs.push(service_attrs(k, None)?);
                IpvsCmd::DelService
            }
            Op::AddDest(k, d, p) => {
                attrs.push(service_attrs(k, None)?);
                attrs.push(dest_attrs(d, Some(p))?);
                IpvsCmd::NewDest
            }
            Op::EditDest(k, d, p) => {
                attrs.push(service_attrs(k, None)?);
                attrs.push(dest_attrs(d, Some(p))?);
                IpvsCmd::SetDest
            }
            Op::DelDest(k, d) => {
                attrs.push(service_attrs(k, None)?);
                attrs.push(dest_attrs(d, None)?);
                IpvsCmd::DelDest
            }
        },
        Request::GetServices => IpvsCmd::GetService,
        Request::GetDests(k) => {
            attrs.push(service_attrs(k, None)?);
            IpvsCmd::GetDest
        }
        Request::GetInfo => IpvsCmd::GetInfo,
        Request::GetConfig => IpvsCmd::GetConfig,
        Request::SetConfig(t) => {
            attrs.push(attr(CmdAttr::TimeoutTcp, t.tcp)?);
            attrs.push(attr(CmdAttr::TimeoutTcpFin, t.tcp_fin)?);
            attrs.push(attr(CmdAttr::TimeoutUdp, t.udp)?);
            IpvsCmd::SetConfig
        }
        Request::GetDaemons => IpvsCmd::GetDaemon,
        Request::NewDaemon(d) => {
            attrs.push(daemon_attrs(d)?);
            IpvsCmd::NewDaemon
        }
        Request::DelDaemon(state) => {
            let mut a = GenlBuffer::<DaemonAttr, Buffer>::new();
            a.push(attr(DaemonAttr::State, *state as u32)?);
            attrs.push(nested(CmdAttr::Daemon, a)?);
            IpvsCmd::DelDaemon
        }
    };
    Ok((cmd, attrs))
}

/// The netlink message for `req`, appended to `out`. `flags` beyond `NLM_F_REQUEST`
/// are the caller's (`ACK`, `DUMP`); the golden tests pass none to match Seesaw.
pub fn encode_into(
    out: &mut Vec<u8>,
    family_id: u16,
    flags: NlmF,
    seq: u32,
    pid: u32,
    req: &Request<'_>,
) -> Result<(), CodecError> {
    let (cmd, attrs) = command(req)?;
    let genl = GenlmsghdrBuilder::<IpvsCmd, CmdAttr>::default()
        .cmd(cmd)
        .version(VERSION)
        .attrs(attrs)
        .build()
        .map_err(|e| encode_err("generic netlink header")(e.to_string()))?;
    let msg: IpvsMsg = NlmsghdrBuilder::default()
        .nl_type(family_id)
        .nl_flags(flags)
        .nl_seq(seq)
        .nl_pid(pid)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| encode_err("netlink header")(e.to_string()))?;
    let mut cursor = Cursor::new(std::mem::take(out));
    cursor.set_position(cursor.get_ref().len() as u64);
    msg.to_bytes(&mut cursor)
        .map_err(|e| encode_err("message")(e.to_string()))?;
    *out = cursor.into_inner();
    Ok(())
}

/// One request as bytes.
pub fn encode(
    family_id: u16,
    flags: NlmF,
    seq: u32,
    pid: u32,
    req: &Request<'_>,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(&mut out, family_id, flags, seq, pid, req)?;
    Ok(out)
}

/// `CTRL_CMD_GETFAMILY` for [`FAMILY_NAME`]: how the family's number is learnt.
pub fn encode_resolve(seq: u32, pid: u32) -> Result<Vec<u8>, CodecError> {
    use neli::consts::{
        genl::{CtrlAttr, CtrlCmd},
        nl::GenlId,
    };
    let mut attrs = GenlBuffer::new();
    attrs.push(attr(CtrlAttr::FamilyName, FAMILY_NAME)?);
    let genl = GenlmsghdrBuilder::<CtrlCmd, CtrlAttr>::default()
        .cmd(CtrlCmd::Getfamily)
        .version(2)
        .attrs(attrs)
        .build()
        .map_err(|e| encode_err("generic netlink header")(e.to_string()))?;
    let msg: Nlmsghdr<GenlId, _> = NlmsghdrBuilder::default()
        .nl_type(GenlId::Ctrl)
        .nl_flags(NlmF::REQUEST | NlmF::ACK)
        .nl_seq(seq)
        .nl_pid(pid)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| encode_err("netlink header")(e.to_string()))?;
    let mut cursor = Cursor::new(Vec::new());
    msg.to_bytes(&mut cursor)
        .map_err(|e| encode_err("message")(e.to_string()))?;
    Ok(cursor.into_inner())
}

/// The family number in a `CTRL_CMD_NEWFAMILY` reply.
pub fn decode_family_id(bytes: &[u8]) -> Result<u16, CodecError> {
    use neli::consts::{
        genl::{CtrlAttr, CtrlCmd},
        nl::GenlId,
    };
    let msg =
        Nlmsghdr::<GenlId, Genlmsghdr<CtrlCmd, CtrlAttr>>::from_bytes(&mut Cursor::new(bytes))
            .map_err(|e| decode_err(e.to_string()))?;
    match msg.nl_payload() {
        NlPayload::Payload(p) => p
            .attrs()
            .get_attr_handle()
            .get_attr_payload_as::<u16>(CtrlAttr::FamilyId)
            .map_err(|e| decode_err(format!("family id: {e}"))),
        _ => Err(decode_err("the family reply has no payload")),
    }
}

/// Parses one message of this family from the front of `bytes`.
pub fn decode_message(bytes: &[u8]) -> Result<IpvsMsg, CodecError> {
    IpvsMsg::from_bytes(&mut Cursor::new(bytes)).map_err(|e| decode_err(e.to_string()))
}

type Handle<'a, T> = neli::genl::GenlAttrHandle<'a, T>;

fn payload<'h, T: NlAttrType>(h: &'h Handle<'_, T>, ty: T) -> Option<&'h [u8]> {
    h.get_attribute(ty).map(|a| a.nla_payload().as_ref())
}

fn fixed<const N: usize, T: NlAttrType + std::fmt::Debug + Copy>(
    h: &Handle<'_, T>,
    ty: T,
) -> Result<Option<[u8; N]>, CodecError> {
    match payload(h, ty) {
        None => Ok(None),
        Some(p) => match p.get(..N).and_then(|b| <[u8; N]>::try_from(b).ok()) {
            Some(b) => Ok(Some(b)),
            None => Err(decode_err(format!(
                "attribute {ty:?} has {} bytes, expected {N}",
                p.len()
            ))),
        },
    }
}

fn u16_ne<T: NlAttrType + std::fmt::Debug + Copy>(
    h: &Handle<'_, T>,
    ty: T,
) -> Result<Option<u16>, CodecError> {
    Ok(fixed::<2, T>(h, ty)?.map(u16::from_ne_bytes))
}

fn u16_be<T: NlAttrType + std::fmt::Debug + Copy>(
    h: &Handle<'_, T>,
    ty: T,
) -> Result<Option<u16>, CodecError> {
    Ok(fixed::<2, T>(h, ty)?.map(u16::from_be_bytes))
}

fn u32_ne<T: NlAttrType + std::fmt::Debug + Copy>(
    h: &Handle<'_, T>,
    ty: T,
) -> Result<Option<u32>, CodecError> {
    Ok(fixed::<4, T>(h, ty)?.map(u32::from_ne_bytes))
}

fn required<V>(v: Option<V>, what: &str) -> Result<V, CodecError> {
    v.ok_or_else(|| decode_err(format!("{what} is missing")))
}

fn string<T: NlAttrType>(h: &Handle<'_, T>, ty: T) -> Option<String> {
    // NLA_NUL_STRING from the kernel, but tolerate a missing NUL (Seesaw's vectors).
    payload(h, ty).map(|p| {
        let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
        String::from_utf8_lossy(&p[..end]).into_owned()
    })
}

fn decode_addr(bytes: &[u8], af: u16) -> Result<IpAddr, CodecError> {
    match af {
        AF_INET if bytes.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        AF_INET6 if bytes.len() >= 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes[..16]);
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        AF_INET | AF_INET6 => Err(decode_err(format!(
            "address of {} bytes for family {af}",
            bytes.len()
        ))),
        _ => Err(decode_err(format!("unknown address family {af}"))),
    }
}

/// The 64-bit statistics when the kernel sends them (Linux 4.1+), else the 32-bit ones.
fn decode_stats<T: NlAttrType + std::fmt::Debug + Copy>(
    h: &Handle<'_, T>,
    stats64: T,
    stats32: T,
) -> Result<Stats, CodecError> {
    let (nested, wide) = if h.get_attribute(stats64).is_some() {
        (stats64, true)
    } else if h.get_attribute(stats32).is_some() {
        (stats32, false)
    } else {
        return Ok(Stats::default());
    };
    let s = h
        .get_nested_attributes::<StatsAttr>(nested)
        .map_err(|e| decode_err(format!("statistics: {e}")))?;
    let get = |ty: StatsAttr| -> Result<u64, CodecError> {
        let is64 = wide || matches!(ty, StatsAttr::Inbytes | StatsAttr::Outbytes);
        Ok(if is64 {
            fixed::<8, _>(&s, ty)?.map(u64::from_ne_bytes).unwrap_or(0)
        } else {
            u64::from(u32_ne(&s, ty)?.unwrap_or(0))
        })
    };
    Ok(Stats {
        conns: get(StatsAttr::Conns)?,
        inpkts: get(StatsAttr::Inpkts)?,
        outpkts: get(StatsAttr::Outpkts)?,
        inbytes: get(StatsAttr::Inbytes)?,
        outbytes: get(StatsAttr::Outbytes)?,
        cps: get(StatsAttr::Cps)?,
        inpps: get(StatsAttr::Inpps)?,
        outpps: get(StatsAttr::Outpps)?,
        inbps: get(StatsAttr::Inbps)?,
        outbps: get(StatsAttr::Outbps)?,
    })
}

/// A service from a `GET_SERVICE` reply, with its statistics and no destinations.
pub fn decode_service(msg: &IpvsMsg) -> Result<(ServiceKey, Service), CodecError> {
    let genl = genl_payload(msg)?;
    let top = genl.attrs().get_attr_handle();
    let h = top
        .get_nested_attributes::<SvcAttr>(CmdAttr::Service)
        .map_err(|e| decode_err(format!("service: {e}")))?;
    let af = required(u16_ne(&h, SvcAttr::Af)?, "service address family")?;
    if af != AF_INET && af != AF_INET6 {
        return Err(decode_err(format!("unknown address family {af}")));
    }
    let key = match u32_ne(&h, SvcAttr::Fwmark)? {
        Some(mark) if mark != 0 => ServiceKey::Fwmark {
            mark,
            ipv6: af == AF_INET6,
        },
        _ => ServiceKey::Addr {
            protocol: required(u16_ne(&h, SvcAttr::Protocol)?, "service protocol")?,
            addr: decode_addr(required(payload(&h, SvcAttr::Addr), "service address")?, af)?,
            port: required(u16_be(&h, SvcAttr::Port)?, "service port")?,
        },
    };
    let flags = fixed::<8, _>(&h, SvcAttr::Flags)?
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let netmask = match fixed::<4, _>(&h, SvcAttr::Netmask)? {
        Some(b) if af == AF_INET => u32::from_be_bytes(b),
        Some(b) => u32::from_ne_bytes(b),
        None => 0,
    };
    let params = ServiceParams {
        scheduler: string(&h, SvcAttr::SchedName).unwrap_or_default(),
        flags: flags & !SVC_F_HASHED,
        timeout: u32_ne(&h, SvcAttr::Timeout)?.unwrap_or(0),
        netmask,
    };
    let stats = decode_stats(&h, SvcAttr::Stats64, SvcAttr::Stats)?;
    Ok((
        key,
        Service {
            params,
            dests: Default::default(),
            stats,
        },
    ))
}

/// A destination from a `GET_DEST` reply; `service_af` is the family of its service,
/// used when the kernel predates the per-destination family (Linux < 4.6).
pub fn decode_dest(msg: &IpvsMsg, ipv6_service: bool) -> Result<(DestKey, Dest), CodecError> {
    let genl = genl_payload(msg)?;
    let top = genl.attrs().get_attr_handle();
    let h = top
        .get_nested_attributes::<DestAttr>(CmdAttr::Dest)
        .map_err(|e| decode_err(format!("destination: {e}")))?;
    let af =
        u16_ne(&h, DestAttr::AddrFamily)?.unwrap_or(if ipv6_service { AF_INET6 } else { AF_INET });
    let key = DestKey {
        addr: decode_addr(
            required(payload(&h, DestAttr::Addr), "destination address")?,
            af,
        )?,
        port: required(u16_be(&h, DestAttr::Port)?, "destination port")?,
    };
    let fwd = FwdMethod::from_code(required(
        u32_ne(&h, DestAttr::FwdMethod)?,
        "destination forwarding method",
    )?);
    let params = DestParams {
        fwd,
        weight: required(u32_ne(&h, DestAttr::Weight)?, "destination weight")?,
        u_threshold: u32_ne(&h, DestAttr::UThresh)?.unwrap_or(0),
        l_threshold: u32_ne(&h, DestAttr::LThresh)?.unwrap_or(0),
        tun_type: fixed::<1, _>(&h, DestAttr::TunType)?.map_or(0, |b| b[0]),
        tun_port: u16_be(&h, DestAttr::TunPort)?.unwrap_or(0),
        tun_flags: u16_ne(&h, DestAttr::TunFlags)?.unwrap_or(0),
    };
    let conns = DestConns {
        active: u32_ne(&h, DestAttr::ActiveConns)?.unwrap_or(0),
        inactive: u32_ne(&h, DestAttr::InactConns)?.unwrap_or(0),
        persistent: u32_ne(&h, DestAttr::PersistConns)?.unwrap_or(0),
    };
    let stats = decode_stats(&h, DestAttr::Stats64, DestAttr::Stats)?;
    Ok((
        key,
        Dest {
            params,
            conns,
            stats,
        },
    ))
}

/// The reply to `GET_INFO`.
pub fn decode_info(msg: &IpvsMsg) -> Result<Info, CodecError> {
    let genl = genl_payload(msg)?;
    let top = genl.attrs().get_attr_handle();
    // INFO attributes share the top-level numbering space (`IPVS_INFO_ATTR_*`).
    let raw = |n: u16| -> Result<u32, CodecError> {
        let a = top
            .get_attrs()
            .iter()
            .find(|a| u16::from(*a.nla_type().nla_type()) == n)
            .ok_or_else(|| decode_err(format!("info attribute {n} is missing")))?;
        let p: &[u8] = a.nla_payload().as_ref();
        crate::nlmsg::u32_at(p, 0).ok_or_else(|| decode_err(format!("info attribute {n} is short")))
    };
    Ok(Info {
        version: raw(InfoAttr::Version.into())?,
        conn_tab_size: raw(InfoAttr::ConnTabSize.into())?,
    })
}

/// The reply to `GET_CONFIG`.
pub fn decode_timeouts(msg: &IpvsMsg) -> Result<Timeouts, CodecError> {
    let genl = genl_payload(msg)?;
    let h = genl.attrs().get_attr_handle();
    Ok(Timeouts {
        tcp: u32_ne(&h, CmdAttr::TimeoutTcp)?.unwrap_or(0),
        tcp_fin: u32_ne(&h, CmdAttr::TimeoutTcpFin)?.unwrap_or(0),
        udp: u32_ne(&h, CmdAttr::TimeoutUdp)?.unwrap_or(0),
    })
}

/// One message of a `GET_DAEMON` dump.
pub fn decode_daemon(msg: &IpvsMsg) -> Result<SyncDaemon, CodecError> {
    let genl = genl_payload(msg)?;
    let top = genl.attrs().get_attr_handle();
    let h = top
        .get_nested_attributes::<DaemonAttr>(CmdAttr::Daemon)
        .map_err(|e| decode_err(format!("sync daemon: {e}")))?;
    let state = match required(u32_ne(&h, DaemonAttr::State)?, "sync daemon state")? {
        1 => SyncState::Master,
        2 => SyncState::Backup,
        n => return Err(decode_err(format!("unknown sync daemon state {n}"))),
    };
    Ok(SyncDaemon {
        state,
        ifname: string(&h, DaemonAttr::McastIfn).unwrap_or_default(),
        sync_id: u32_ne(&h, DaemonAttr::SyncId)?.unwrap_or(0),
    })
}

fn genl_payload(msg: &IpvsMsg) -> Result<&Genlmsghdr<IpvsCmd, CmdAttr>, CodecError> {
    match msg.nl_payload() {
        NlPayload::Payload(p) => Ok(p),
        other => Err(decode_err(format!(
            "expected a payload, got {}",
            match other {
                NlPayload::Ack(_) => "an acknowledgement",
                NlPayload::DumpExtAck(_) => "the end of a dump",
                NlPayload::Err(_) => "an error",
                _ => "an empty message",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::proto;

    /// Seesaw's `nlmIPVSAddService` (google/seesaw ipvs/ipvs_test.go): family 0x19,
    /// no flags, seq 0, pid 0; TCP 1.1.1.1 port 0x5000, wlc, flags 0xf1f2f3f4.
    const SEESAW_ADD_SERVICE: [u8; 104] = [
        0x68, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x01, 0x00, 0x00, 0x54, 0x00, 0x01, 0x00, 0x06, 0x00, 0x01, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x14, 0x00, 0x03, 0x00, 0x01,
        0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x04, 0x00, 0x50, 0x00, 0x00, 0x00, 0x08, 0x00, 0x06, 0x00, 0x77, 0x6c, 0x63,
        0x00, 0x0c, 0x00, 0x07, 0x00, 0xf4, 0xf3, 0xf2, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x08, 0x00,
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff,
    ];

    /// Seesaw's `nlmIPVSService`: a GET_SERVICE reply with 32-bit statistics and a
    /// scheduler name without its NUL.
    const SEESAW_SERVICE: [u8; 196] = [
        0xc4, 0x00, 0x00, 0x00, 0x16, 0x00, 0x02, 0x00, 0xb0, 0xb3, 0xc8, 0x55, 0x79, 0x02, 0x00,
        0x00, 0x01, 0x01, 0x00, 0x00, 0xb0, 0x00, 0x01, 0x00, 0x06, 0x00, 0x01, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x14, 0x00, 0x03, 0x00, 0x01,
        0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x04, 0x00, 0x50, 0x00, 0x00, 0x00, 0x07, 0x00, 0x06, 0x00, 0x77, 0x6c, 0x63,
        0x00, 0x0c, 0x00, 0x07, 0x00, 0xf4, 0xf3, 0xf2, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x08, 0x00,
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0x5c,
        0x00, 0x0a, 0x00, 0x08, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00,
        0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x04,
        0x00, 0x1a, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x05, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
        0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x08, 0x00, 0x09, 0x00, 0x54, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ];

    /// Seesaw's `nlmIPVSDestination`: 2002::cafe port 53, raw forwarding word
    /// 0xf1f2f3f4, thresholds 2000/1000, connection counts and 32-bit statistics.
    const SEESAW_DEST: [u8; 200] = [
        0xc8, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x01, 0x00, 0x00, 0xb4, 0x00, 0x02, 0x00, 0x14, 0x00, 0x01, 0x00, 0x20, 0x02,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xca, 0xfe, 0x06,
        0x00, 0x02, 0x00, 0x00, 0x35, 0x00, 0x00, 0x08, 0x00, 0x03, 0x00, 0xf4, 0xf3, 0xf2, 0xf1,
        0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00, 0xd0, 0x07, 0x00,
        0x00, 0x08, 0x00, 0x06, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x08, 0x00, 0x07, 0x00, 0x4e, 0x61,
        0xbc, 0x00, 0x08, 0x00, 0x08, 0x00, 0xb1, 0x7f, 0x39, 0x05, 0x08, 0x00, 0x09, 0x00, 0xd2,
        0x04, 0x00, 0x00, 0x5c, 0x00, 0x0a, 0x00, 0x08, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00,
        0x08, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x0c, 0x00, 0x04, 0x00, 0x1a, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00,
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x06, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x08, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x09, 0x00, 0x54, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0a,
        0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// Seesaw's `nlmIPVSInfo`: the SET_INFO reply to GET_INFO (version 1.2.1, 4096).
    const SEESAW_INFO: [u8; 36] = [
        0x24, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0xc6, 0x20, 0xc8, 0x55, 0x33, 0x28, 0x00,
        0x00, 0x0e, 0x01, 0x00, 0x00, 0x08, 0x00, 0x01, 0x00, 0x01, 0x02, 0x01, 0x00, 0x08, 0x00,
        0x02, 0x00, 0x00, 0x10, 0x00, 0x00,
    ];

    /// Seesaw's statistics (`testIPVSStats`) shared by both replies.
    fn seesaw_stats() -> Stats {
        Stats {
            conns: 3,
            inpkts: 0xc,
            outpkts: 0,
            inbytes: 0x41a,
            outbytes: 0,
            cps: 0,
            inpps: 1,
            outpps: 0,
            inbps: 0x54,
            outbps: 0,
        }
    }

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: proto::TCP,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn add_service_matches_seesaw_bytes() {
        let op = Op::AddService(
            tcp("1.1.1.1", 0x5000),
            ServiceParams {
                scheduler: "wlc".into(),
                flags: 0xf1f2f3f4,
                timeout: 0,
                netmask: 0xffff_ffff,
            },
        );
        let bytes = encode(0x19, NlmF::empty(), 0, 0, &Request::Op(&op)).unwrap();
        assert_eq!(bytes, SEESAW_ADD_SERVICE);
    }

    #[test]
    fn decodes_seesaw_service_reply() {
        let msg = decode_message(&SEESAW_SERVICE).unwrap();
        let (key, svc) = decode_service(&msg).unwrap();
        assert_eq!(key, tcp("1.1.1.1", 0x5000));
        assert_eq!(svc.params.scheduler, "wlc");
        // HASHED (0x2) belongs to the kernel and is dropped.
        assert_eq!(svc.params.flags, 0xf1f2f3f4 & !0x2);
        assert_eq!(svc.params.netmask, 0xffff_ffff);
        assert_eq!(svc.stats, seesaw_stats());
    }

    #[test]
    fn decodes_seesaw_destination_reply() {
        let msg = decode_message(&SEESAW_DEST).unwrap();
        let (key, dest) = decode_dest(&msg, true).unwrap();
        assert_eq!(key.addr, "2002::cafe".parse::<IpAddr>().unwrap());
        assert_eq!(key.port, 53);
        // The raw word 0xf1f2f3f4 carries forwarding method 4 (bypass) in its low bits.
        assert_eq!(dest.params.fwd, FwdMethod::Bypass);
        assert_eq!(dest.params.weight, 1);
        assert_eq!(
            (dest.params.u_threshold, dest.params.l_threshold),
            (2000, 1000)
        );
        assert_eq!(
            dest.conns,
            DestConns {
                active: 12_345_678,
                inactive: 87_654_321,
                persistent: 1234
            }
        );
        assert_eq!(dest.stats, seesaw_stats());
    }

    #[test]
    fn decodes_seesaw_info_reply() {
        let msg = decode_message(&SEESAW_INFO).unwrap();
        let info = decode_info(&msg).unwrap();
        assert_eq!(info.version_string(), "1.2.1");
        assert_eq!(info.conn_tab_size, 4096);
    }

    /// Hand-assembled from `ip_vs.h` (attribute numbers, widths, byte orders): a NEW_DEST
    /// for a DR destination carries the service key, then the destination with its
    /// family last.
    #[test]
    fn new_dest_layout() {
        let op = Op::AddDest(
            tcp("192.0.2.1", 80),
            DestKey {
                addr: "10.0.0.2".parse().unwrap(),
                port: 8080,
            },
            DestParams {
                fwd: FwdMethod::Route,
                weight: 3,
                u_threshold: 100,
                l_threshold: 50,
                tun_type: 0,
                tun_port: 0,
                tun_flags: 0,
            },
        );
        let bytes = encode(0x21, NlmF::REQUEST | NlmF::ACK, 7, 0, &Request::Op(&op)).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[0x8c, 0, 0, 0, 0x21, 0, 0x05, 0, 7, 0, 0, 0, 0, 0, 0, 0][..], // nlmsghdr
            &[5, 1, 0, 0],                                                  // NEW_DEST v1
            &[0x30, 0, 1, 0],                                               // SERVICE (48)
            &[6, 0, 1, 0, 2, 0, 0, 0],                                      //  AF_INET
            &[6, 0, 2, 0, 6, 0, 0, 0],                                      //  TCP
            &[0x14, 0, 3, 0, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[6, 0, 4, 0, 0, 80, 0, 0],                                     //  port be16
            &[0x48, 0, 2, 0],                                               // DEST (72)
            &[0x14, 0, 1, 0, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[6, 0, 2, 0, 0x1f, 0x90, 0, 0],                                //  8080 be16
            &[8, 0, 3, 0, 3, 0, 0, 0],                                      //  DROUTE
            &[8, 0, 4, 0, 3, 0, 0, 0],                                      //  weight
            &[8, 0, 5, 0, 100, 0, 0, 0],                                    //  upper
            &[8, 0, 6, 0, 50, 0, 0, 0],                                     //  lower
            &[6, 0, 11, 0, 2, 0, 0, 0],                                     //  family
        ]
        .concat();
        assert_eq!(bytes, want);
    }

    #[test]
    fn ipv6_netmask_is_a_prefix_length_and_ipv4_a_network_order_mask() {
        let p = |netmask| ServiceParams {
            scheduler: "sh".into(),
            flags: 0,
            timeout: 300,
            netmask,
        };
        let v4 = Op::AddService(tcp("192.0.2.1", 443), p(0xffff_ff00));
        let b = encode(1, NlmF::empty(), 0, 0, &Request::Op(&v4)).unwrap();
        assert!(b.ends_with(&[8, 0, 9, 0, 0xff, 0xff, 0xff, 0x00]));
        let v6 = Op::AddService(tcp("2001:db8::1", 443), p(64));
        let b = encode(1, NlmF::empty(), 0, 0, &Request::Op(&v6)).unwrap();
        assert!(b.ends_with(&[8, 0, 9, 0, 64, 0, 0, 0]));
    }

    #[test]
    fn tunnel_destinations_carry_tunnel_attributes() {
        let op = Op::EditDest(
            ServiceKey::Fwmark {
                mark: 7,
                ipv6: false,
            },
            DestKey {
                addr: "2001:db8::5".parse().unwrap(),
                port: 0,
            },
            DestParams {
                fwd: FwdMethod::Tunnel,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tun_type: 1,
                tun_port: 6080,
                tun_flags: 1,
            },
        );
        let b = encode(1, NlmF::empty(), 0, 0, &Request::Op(&op)).unwrap();
        let msg = decode_message(&b).unwrap();
        // Read back through the same decoder the dump uses.
        let (key, dest) = decode_dest(&msg, false).unwrap();
        assert_eq!(key.addr, "2001:db8::5".parse::<IpAddr>().unwrap());
        assert_eq!(dest.params.fwd, FwdMethod::Tunnel);
        assert_eq!(
            (
                dest.params.tun_type,
                dest.params.tun_port,
                dest.params.tun_flags
            ),
            (1, 6080, 1)
        );
        assert_eq!(*genl_payload(&msg).unwrap().cmd(), IpvsCmd::SetDest);
    }

    #[test]
    fn service_round_trips_through_the_dump_decoder() {
        for (key, params) in [
            (
                ServiceKey::Addr {
                    protocol: proto::SCTP,
                    addr: "2001:db8::80".parse().unwrap(),
                    port: 9999,
                },
                ServiceParams {
                    scheduler: "mh".into(),
                    flags: 0x1 | 0x8 | 0x10,
                    timeout: 3600,
                    netmask: 96,
                },
            ),
            (
                ServiceKey::Fwmark {
                    mark: 0xdead_beef,
                    ipv6: false,
                },
                ServiceParams {
                    scheduler: "wrr".into(),
                    flags: 0x4,
                    timeout: 0,
                    netmask: 0xffff_ffff,
                },
            ),
        ] {
            let op = Op::AddService(key, params.clone());
            let b = encode(1, NlmF::empty(), 0, 0, &Request::Op(&op)).unwrap();
            let (k, s) = decode_service(&decode_message(&b).unwrap()).unwrap();
            assert_eq!((k, s.params), (key, params));
        }
    }

    #[test]
    fn sync_daemon_and_timeouts_round_trip() {
        let d = SyncDaemon {
            state: SyncState::Backup,
            ifname: "eth1".into(),
            sync_id: 42,
        };
        let b = encode(1, NlmF::empty(), 0, 0, &Request::NewDaemon(&d)).unwrap();
        assert_eq!(decode_daemon(&decode_message(&b).unwrap()).unwrap(), d);
        let t = Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        };
        let b = encode(1, NlmF::empty(), 0, 0, &Request::SetConfig(t)).unwrap();
        assert_eq!(decode_timeouts(&decode_message(&b).unwrap()).unwrap(), t);
    }

    #[test]
    fn bad_names_are_refused_before_the_kernel_sees_them() {
        let op = Op::AddService(
            tcp("192.0.2.1", 80),
            ServiceParams {
                scheduler: "a-scheduler-name-too-long".into(),
                flags: 0,
                timeout: 0,
                netmask: 0,
            },
        );
        let e = encode(1, NlmF::empty(), 0, 0, &Request::Op(&op)).unwrap_err();
        assert!(e.to_string().contains("scheduler name"), "{e}");
        let d = SyncDaemon {
            state: SyncState::Master,
            ifname: String::new(),
            sync_id: 0,
        };
        assert!(encode(1, NlmF::empty(), 0, 0, &Request::NewDaemon(&d)).is_err());
    }

    #[test]
    fn truncated_replies_are_errors_not_panics() {
        for n in 0..SEESAW_DEST.len() {
            if let Ok(msg) = decode_message(&SEESAW_DEST[..n]) {
                let _ = decode_dest(&msg, true);
            }
        }
        let mut bad = SEESAW_SERVICE;
        bad[28] = 99; // address family
        let e = decode_service(&decode_message(&bad).unwrap()).unwrap_err();
        assert!(e.to_string().contains("family 99"), "{e}");
    }
}
