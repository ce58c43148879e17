//! The kernel's IPVS table as plain data, in the kernel's terms (`ip_vs.h`): services
//! keyed the way the kernel identifies them, destinations keyed by address and port.
//! Both the desired table (from the configuration and health) and the current one
//! (from a netlink dump) are values of [`Table`], so reconciling is a pure diff.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// `IP_VS_SVC_F_*` service flags.
pub mod svc_flags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const ONEPACKET: u32 = 0x0004;
    /// sh-fallback / mh-fallback.
    pub const SCHED1: u32 = 0x0008;
    /// sh-port / mh-port.
    pub const SCHED2: u32 = 0x0010;
    /// No scheduler uses it; ipvsadm calls it flag-3.
    pub const SCHED3: u32 = 0x0020;
}

/// `IPPROTO_*` numbers used by IPVS.
pub mod proto {
    pub const TCP: u16 = 6;
    pub const UDP: u16 = 17;
    pub const SCTP: u16 = 132;
}

/// How the kernel identifies a virtual service.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKey {
    /// `-t/-u/--sctp-service ADDR:PORT`; `protocol` is an `IPPROTO_*` number.
    Addr {
        protocol: u16,
        addr: IpAddr,
        port: u16,
    },
    /// `-f MARK`, per address family (`ipv6` true for AF_INET6).
    Fwmark { mark: u32, ipv6: bool },
}

impl ServiceKey {
    /// Whether the service is IPv6 (an IPv6 address, or a fwmark service of AF_INET6).
    pub fn is_ipv6(&self) -> bool {
        match *self {
            ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => ipv6,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let p = match protocol {
                    proto::TCP => "TCP",
                    proto::UDP => "UDP",
                    proto::SCTP => "SCTP",
                    _ => "proto?",
                };
                match addr {
                    IpAddr::V4(a) => write!(f, "{p} {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{p} [{a}]:{port}"),
                }
            }
            ServiceKey::Fwmark { mark, ipv6 } => {
                write!(f, "FWM {mark}{}", if ipv6 { " IPv6" } else { "" })
            }
        }
    }
}

/// The settable properties of a service (what `SET_SERVICE` changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceParams {
    pub scheduler: String,
    /// `IP_VS_SVC_F_*`, without the kernel-owned HASHED bit.
    pub flags: u32,
    /// Persistence timeout, seconds.
    pub timeout: u32,
    /// IPv4: the persistence mask as an address in host order; IPv6: a prefix length.
    pub netmask: u32,
}

impl ServiceParams {
    /// The scheduler flags set, by the names ipvsadm gives them: sh and mh name the
    /// same two bits after themselves (`sh-fallback`, `mh-port`, …).
    pub fn sched_flag_names(&self) -> Vec<String> {
        let prefix = if self.scheduler == "mh" { "mh" } else { "sh" };
        [(svc_flags::SCHED1, "fallback"), (svc_flags::SCHED2, "port")]
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, name)| format!("{prefix}-{name}"))
            .collect()
    }
}

/// `IP_VS_CONN_F_*` forwarding methods. This director only programs the first three;
/// the others can appear in services created by other tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FwdMethod {
    Masq,
    Tunnel,
    Route,
    Local,
    Bypass,
    /// 5 to 7: undefined by the kernel but accepted (it masks with 7).
    Other(u8),
}

impl FwdMethod {
    pub fn code(self) -> u32 {
        match self {
            FwdMethod::Masq => 0,
            FwdMethod::Local => 1,
            FwdMethod::Tunnel => 2,
            FwdMethod::Route => 3,
            FwdMethod::Bypass => 4,
            FwdMethod::Other(n) => u32::from(n & 7),
        }
    }

    /// From the kernel's connection flags (only the low three bits name the method).
    pub fn from_code(flags: u32) -> FwdMethod {
        match flags & 7 {
            0 => FwdMethod::Masq,
            1 => FwdMethod::Local,
            2 => FwdMethod::Tunnel,
            3 => FwdMethod::Route,
            4 => FwdMethod::Bypass,
            n => FwdMethod::Other(n as u8),
        }
    }

    /// The name `ipvsadm -Ln` prints.
    pub fn name(self) -> &'static str {
        match self {
            FwdMethod::Masq => "Masq",
            FwdMethod::Tunnel => "Tunnel",
            FwdMethod::Route => "Route",
            FwdMethod::Local => "Local",
            FwdMethod::Bypass => "Bypass",
            FwdMethod::Other(_) => "Unknown",
        }
    }
}

/// A destination (real server) as the kernel keys it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct DestKey {
    pub addr: IpAddr,
    pub port: u16,
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// The settable properties of a destination (what `SET_DEST` changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestParams {
    pub fwd: FwdMethod,
    /// 0 means quiesced: kept, but given no new connections.
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`: 0 ipip, 1 gue, 2 gre.
    pub tun_type: u8,
    pub tun_port: u16,
    pub tun_flags: u16,
}

/// Connection counts of a destination, as dumped (read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct DestConns {
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates pointing at this destination.
    pub persistent: u32,
}

impl DestConns {
    pub fn total(self) -> u64 {
        u64::from(self.active) + u64::from(self.inactive)
    }
}

/// Traffic counters (`IPVS_STATS_ATTR_*`): totals since creation and the kernel's
/// estimated rates per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub params: DestParams,
    pub conns: DestConns,
    /// Read-only, from a dump; never compared by the reconcile.
    pub stats: Stats,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub params: ServiceParams,
    pub dests: BTreeMap<DestKey, Dest>,
    /// Read-only, from a dump; never compared by the reconcile.
    pub stats: Stats,
}

impl Dest {
    /// A destination as desired: no connections or traffic yet.
    pub fn new(params: DestParams) -> Dest {
        Dest {
            params,
            conns: DestConns::default(),
            stats: Stats::default(),
        }
    }
}

impl Service {
    pub fn new(params: ServiceParams, dests: BTreeMap<DestKey, Dest>) -> Service {
        Service {
            params,
            dests,
            stats: Stats::default(),
        }
    }
}

/// A whole IPVS table (one network namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub services: BTreeMap<ServiceKey, Service>,
}
