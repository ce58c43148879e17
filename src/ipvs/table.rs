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
}

/// `IPPROTO_*` numbers used by IPVS.
pub mod proto {
    pub const TCP: u16 = 6;
    pub const UDP: u16 = 17;
    pub const SCTP: u16 = 132;
}

/// How the kernel identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// `IP_VS_CONN_F_*` forwarding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FwdMethod {
    Masq = 0,
    Tunnel = 2,
    Route = 3,
}

/// A destination (real server) as the kernel keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DestConns {
    pub active: u32,
    pub inactive: u32,
}

impl DestConns {
    pub fn total(self) -> u64 {
        u64::from(self.active) + u64::from(self.inactive)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub params: DestParams,
    pub conns: DestConns,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub params: ServiceParams,
    pub dests: BTreeMap<DestKey, Dest>,
}

/// A whole IPVS table (one network namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub services: BTreeMap<ServiceKey, Service>,
}
