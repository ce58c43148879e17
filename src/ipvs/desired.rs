//! The desired IPVS table: the active virtual servers of a configuration, with the
//! weight health gives each real server. Pure: names are resolved by the caller's
//! resolver, health comes in as a function.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::config::value::{Forwarding, Host, PortSpec, Protocol, TunnelCsum, TunnelType};
use crate::config::{Config, RealServer, VirtualServer};

use super::quorum::Quorum;
use super::table::*;

/// What health says of a real server: its weight now, or `None` when it is out of the
/// pool (failed and removed, or not yet in).
pub type HealthFn<'a> = dyn Fn(&VirtualServer, &RealServer) -> Option<u32> + 'a;

/// Whether a virtual server has its quorum, given its live weight (see
/// [`live_weight`]): the supervisor remembers the state (hysteresis), others judge by
/// the weight alone.
pub type QuorumFn<'a> = dyn Fn(&VirtualServer, u64) -> bool + 'a;

/// The quorum judged by the weight alone, as a service starts.
pub fn quorum_now(vs: &VirtualServer, live: u64) -> bool {
    Quorum::of(&vs.settings).initial(live)
}

/// The total weight of a virtual server's healthy active real servers.
pub fn live_weight(vs: &VirtualServer, health: &HealthFn) -> u64 {
    vs.servers
        .iter()
        .filter(|r| r.settings.active())
        .filter_map(|r| health(vs, r))
        .map(u64::from)
        .sum()
}

/// Every real server healthy at its configured weight (`ipvs apply`, or before the
/// first checks have run with `alpha`-less semantics).
pub fn all_healthy(_: &VirtualServer, rs: &RealServer) -> Option<u32> {
    Some(rs.settings.weight())
}

/// Resolves a host (an address, or a name looked up when the configuration is applied).
pub type ResolveFn<'a> = dyn Fn(&Host) -> Result<IpAddr, ResolveError> + 'a;

/// Why a host has no address here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A name met where only what was resolved beforehand is known.
    #[error("host name `{0}` must be resolved first")]
    Unresolved(String),
    #[error("cannot resolve `{name}`: {why}")]
    Lookup { name: String, why: String },
    #[error("`{0}` has no address")]
    NoAddress(String),
}

/// A literal address resolves to itself; names need the caller's resolver.
pub fn literal_only(h: &Host) -> Result<IpAddr, ResolveError> {
    h.ip()
        .ok_or_else(|| ResolveError::Unresolved(h.to_string()))
}

/// Looks a name up in the system resolver (once, when a configuration is applied).
pub fn resolve_system(h: &Host) -> Result<IpAddr, ResolveError> {
    if let Some(ip) = h.ip() {
        return Ok(ip);
    }
    let name = h.to_string();
    std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
        .map_err(|e| ResolveError::Lookup {
            name: name.clone(),
            why: e.to_string(),
        })?
        .next()
        .map(|a| a.ip())
        .ok_or(ResolveError::NoAddress(name))
}

/// The IPVS timeouts of the global settings (0: leave the kernel's).
pub fn timeouts_of(g: &crate::config::GlobalSettings) -> crate::ipvs::netlink::Timeouts {
    crate::ipvs::netlink::Timeouts {
        tcp: g.tcp_timeout.unwrap_or(0),
        tcp_fin: g.tcpfin_timeout.unwrap_or(0),
        udp: g.udp_timeout.unwrap_or(0),
    }
}

/// The desired table and each service's drain timeout in milliseconds, or every
/// problem found (one line each, naming the virtual and real server).
pub fn desired(
    c: &Config,
    resolve: &ResolveFn,
    health: &HealthFn,
    quorum: &QuorumFn,
) -> Result<(Table, BTreeMap<ServiceKey, u64>), Vec<String>> {
    let mut table = Table::default();
    let mut drains = BTreeMap::new();
    let mut errors = Vec::new();
    for vs in c.virtuals.iter().filter(|v| v.settings.active()) {
        match service_of(c, vs, resolve, health, quorum) {
            Ok((key, svc)) => {
                if table.services.insert(key, svc).is_some() {
                    errors.push(format!(
                        "virtual {}: service {key} is defined twice",
                        vs.name
                    ));
                }
                drains.insert(key, vs.settings.drain_timeout().millis());
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok((table, drains))
    } else {
        Err(errors)
    }
}

fn port_number(p: &PortSpec) -> Result<u16, String> {
    p.number()
        .ok_or_else(|| format!("unknown service name `{p}` (use a port number)"))
}

/// One virtual server's service as desired (it need not be active).
pub fn service_of(
    c: &Config,
    vs: &VirtualServer,
    resolve: &ResolveFn,
    health: &HealthFn,
    quorum: &QuorumFn,
) -> Result<(ServiceKey, Service), Vec<String>> {
    let st = &vs.settings;
    let at = |what: String| format!("virtual {}: {what}", vs.name);
    let addr = st
        .address
        .as_ref()
        .ok_or_else(|| vec![at("no address".into())])
        .and_then(|a| resolve(&a.addr).map_err(|e| vec![at(e.to_string())]))?;
    let ipv6 = addr.is_ipv6();
    let key = if st.fwmark() != 0 {
        ServiceKey::Fwmark {
            mark: st.fwmark(),
            ipv6,
        }
    } else {
        ServiceKey::Addr {
            protocol: match st.protocol() {
                Protocol::Tcp => proto::TCP,
                Protocol::Udp => proto::UDP,
                Protocol::Sctp => proto::SCTP,
            },
            addr,
            port: port_number(&st.port()).map_err(|e| vec![at(e)])?,
        }
    };
    let mut flags = 0;
    for (on, bit) in [
        (st.persistent() > 0, svc_flags::PERSISTENT),
        (st.one_packet == Some(true), svc_flags::ONEPACKET),
        (st.sched_fallback == Some(true), svc_flags::SCHED1),
        (st.sched_port == Some(true), svc_flags::SCHED2),
    ] {
        if on {
            flags |= bit;
        }
    }
    // The kernel wants an IPv4 mask as an address and an IPv6 one as a prefix length;
    // no mask (or Piranha's 0.0.0.0) means a single address.
    let prefix = st.pmask.map(|m| m.prefix()).filter(|&p| p != 0);
    let netmask = if ipv6 {
        u32::from(prefix.unwrap_or(128))
    } else {
        match prefix.unwrap_or(32) {
            p @ 1..=32 => u32::MAX << (32 - u32::from(p)),
            _ => u32::MAX,
        }
    };
    let params = ServiceParams {
        scheduler: st.scheduler().0,
        flags,
        timeout: st.persistent(),
        netmask,
    };
    let mut dests = BTreeMap::new();
    // Servers kept at weight 0 rather than removed when they leave (quiesce_server).
    let mut quiesced = std::collections::BTreeSet::new();
    let mut errors = Vec::new();
    for rs in vs.servers.iter().filter(|r| r.settings.active()) {
        let at = |what: String| format!("virtual {}, server {}: {what}", vs.name, rs.name);
        let Some(weight) = health(vs, rs) else {
            continue;
        };
        let sv = &rs.settings;
        let addr = match sv.address.as_ref().map(resolve) {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                errors.push(at(e.to_string()));
                continue;
            }
            None => {
                errors.push(at("no address".into()));
                continue;
            }
        };
        let port = match port_number(&sv.port(st)) {
            Ok(p) => p,
            Err(e) => {
                errors.push(at(e));
                continue;
            }
        };
        let fwd = sv.forwarding(st, &c.global);
        let tunnel = fwd == Forwarding::Tunnel;
        let params = DestParams {
            fwd: fwd_method(fwd),
            weight,
            u_threshold: sv.uthreshold.unwrap_or(0),
            l_threshold: sv.lthreshold.unwrap_or(0),
            tun_type: if tunnel { tun_type(sv.tunnel_type) } else { 0 },
            tun_port: if tunnel {
                sv.tunnel_port.unwrap_or(0)
            } else {
                0
            },
            tun_flags: if tunnel { tun_flags(sv.tunnel_csum) } else { 0 },
        };
        if sv.quiesce_server.unwrap_or_else(|| st.quiesce_server()) {
            quiesced.insert(DestKey { addr, port });
        }
        if dests
            .insert(DestKey { addr, port }, Dest::new(params))
            .is_some()
        {
            errors.push(at(format!("{addr} port {port} is used twice")));
        }
    }
    // The sorry server takes all the traffic while the quorum is lost (by default:
    // while no healthy server has weight, Piranha's rule); the healthy servers leave
    // meanwhile, as keepalived has them leave: removed, or at weight 0 when quiesced.
    if let Some(sorry) = st.sorry_server {
        let up = quorum(vs, live_weight(vs, health));
        let port = match (&st.sorry_port, key) {
            (Some(p), _) => port_number(p).unwrap_or_else(|e| {
                errors.push(at(format!("sorry_port: {e}")));
                0
            }),
            (None, ServiceKey::Addr { port, .. }) => port,
            (None, ServiceKey::Fwmark { .. }) => 0,
        };
        let weight = if up {
            (st.sorry_server_inhibit == Some(true)).then_some(0)
        } else {
            dests.retain(|k, d| d.params.weight == 0 || quiesced.contains(k));
            for d in dests.values_mut() {
                d.params.weight = 0;
            }
            Some(1)
        };
        if let Some(weight) = weight {
            dests.insert(
                DestKey { addr: sorry, port },
                Dest::new(DestParams {
                    fwd: fwd_method(st.forwarding(&c.global)),
                    weight,
                    u_threshold: 0,
                    l_threshold: 0,
                    tun_type: 0,
                    tun_port: 0,
                    tun_flags: 0,
                }),
            );
        }
    }
    if errors.is_empty() {
        Ok((key, Service::new(params, dests)))
    } else {
        Err(errors)
    }
}

fn fwd_method(f: Forwarding) -> FwdMethod {
    match f {
        Forwarding::Nat => FwdMethod::Masq,
        Forwarding::Direct => FwdMethod::Route,
        Forwarding::Tunnel => FwdMethod::Tunnel,
    }
}

fn tun_type(t: Option<TunnelType>) -> u8 {
    match t.unwrap_or(TunnelType::Ipip) {
        TunnelType::Ipip => 0,
        TunnelType::Gue => 1,
        TunnelType::Gre => 2,
    }
}

fn tun_flags(c: Option<TunnelCsum>) -> u16 {
    match c.unwrap_or(TunnelCsum::NoCsum) {
        TunnelCsum::NoCsum => 0,
        TunnelCsum::Csum => 1,
        TunnelCsum::RemCsum => 2,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::config::parse;

    const EXAMPLE: &str = include_str!("../../tests/data/piranha_example.lvs.cf");

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    /// The example's `www` service.
    fn www() -> ServiceKey {
        ServiceKey::Addr {
            protocol: proto::TCP,
            addr: v4([203, 0, 113, 100]),
            port: 80,
        }
    }

    #[test]
    fn piranhas_example_becomes_three_services() {
        let c = parse(EXAMPLE).unwrap().config;
        let (t, drains) = desired(&c, &literal_only, &all_healthy, &quorum_now).unwrap();
        let www = www();
        let s = &t.services[&www];
        assert_eq!(
            s.params,
            ServiceParams {
                scheduler: "wlc".into(),
                flags: svc_flags::PERSISTENT,
                timeout: 300,
                netmask: 0xffff_ff00,
            }
        );
        // web3 is inactive; the sorry server stays out while web1/web2 take traffic.
        let keys: Vec<_> = s.dests.keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["192.168.50.21:8080", "192.168.50.22:8080"]);
        assert_eq!(s.dests.values().next().unwrap().params.weight, 100);
        assert_eq!(t.services.len(), 3);
        assert_eq!(drains[&www], 300_000);
        let dns = ServiceKey::Addr {
            protocol: proto::UDP,
            addr: v4([203, 0, 113, 101]),
            port: 53,
        };
        let ns1 = t.services[&dns].dests.keys().next().unwrap();
        assert_eq!(
            ns1.port, 53,
            "a server without a port takes the virtual port"
        );
    }

    #[test]
    fn sorry_server_when_nobody_takes_traffic() {
        let c = parse(EXAMPLE).unwrap().config;
        let quiesced = |_: &VirtualServer, _: &RealServer| Some(0);
        let (t, _) = desired(&c, &literal_only, &quiesced, &quorum_now).unwrap();
        let www = www();
        let sorry = DestKey {
            addr: v4([192, 168, 50, 99]),
            port: 80,
        };
        assert_eq!(t.services[&www].dests[&sorry].params.weight, 1);
        let removed = |_: &VirtualServer, _: &RealServer| None;
        let (t, _) = desired(&c, &literal_only, &removed, &quorum_now).unwrap();
        assert_eq!(t.services[&www].dests.keys().collect::<Vec<_>>(), [&sorry]);
    }

    /// keepalived's quorum: below it the sorry server (on its own port) takes all
    /// the traffic and the healthy servers leave; above it the sorry server is gone,
    /// or kept at weight 0 with sorry_server_inhibit. The supervisor's remembered state
    /// decides over the weight.
    #[test]
    fn the_quorum_decides_between_the_pool_and_the_sorry_server() {
        let mut c = parse(EXAMPLE).unwrap().config;
        let vs = c.virtuals.iter_mut().find(|v| v.name == "www").unwrap();
        vs.settings.quorum = Some(150);
        vs.settings.sorry_port = Some(PortSpec::Number(8443));
        let www = www();
        let sorry = DestKey {
            addr: v4([192, 168, 50, 99]),
            port: 8443,
        };
        let keys = |t: &Table| -> Vec<String> {
            t.services[&www]
                .dests
                .iter()
                .map(|(k, d)| format!("{k} {}", d.params.weight))
                .collect()
        };
        // web1 and web2 (100 each): 200 ≥ 150.
        let (t, _) = desired(&c, &literal_only, &all_healthy, &quorum_now).unwrap();
        assert_eq!(
            keys(&t),
            ["192.168.50.21:8080 100", "192.168.50.22:8080 100"]
        );
        // One of them out: 100 < 150. www quiesces its servers, so the healthy one
        // stays at weight 0 (keepalived's inhibit_on_failure); without that it leaves.
        let one = |_: &VirtualServer, rs: &RealServer| (rs.name != "web1").then_some(100);
        let (t, _) = desired(&c, &literal_only, &one, &quorum_now).unwrap();
        assert_eq!(
            keys(&t),
            ["192.168.50.22:8080 0".to_string(), format!("{sorry} 1")]
        );
        let mut removed = c.clone();
        let vs = removed
            .virtuals
            .iter_mut()
            .find(|v| v.name == "www")
            .unwrap();
        vs.settings.quiesce_server = Some(false);
        let (t, _) = desired(&removed, &literal_only, &one, &quorum_now).unwrap();
        assert_eq!(keys(&t), [format!("{sorry} 1")]);
        // The supervisor still holds the quorum up (hysteresis): the pool stays.
        let held = |_: &VirtualServer, _: u64| true;
        let (t, _) = desired(&c, &literal_only, &one, &held).unwrap();
        assert_eq!(keys(&t), ["192.168.50.22:8080 100"]);
        let vs = c.virtuals.iter_mut().find(|v| v.name == "www").unwrap();
        vs.settings.sorry_server_inhibit = Some(true);
        let (t, _) = desired(&c, &literal_only, &all_healthy, &quorum_now).unwrap();
        assert_eq!(
            keys(&t),
            [
                "192.168.50.21:8080 100".to_string(),
                "192.168.50.22:8080 100".to_string(),
                format!("{sorry} 0")
            ]
        );
    }

    #[test]
    fn extensions_map_to_kernel_flags_and_tunnels() {
        let text = include_str!("../../tests/lvscf/golden/extensions.lvs.cf");
        let c = parse(text).unwrap().config;
        let (t, _) = desired(&c, &literal_only, &all_healthy, &quorum_now).unwrap();
        let web6 = t
            .services
            .iter()
            .find(|(k, _)| {
                matches!(
                    k,
                    ServiceKey::Addr {
                        addr: IpAddr::V6(_),
                        port: 443,
                        ..
                    }
                )
            })
            .unwrap()
            .1;
        assert_eq!(
            web6.params.flags,
            svc_flags::PERSISTENT | svc_flags::SCHED1 | svc_flags::SCHED2
        );
        assert_eq!(
            web6.params.netmask, 64,
            "IPv6 persistence mask is a prefix length"
        );
        let remote = web6
            .dests
            .values()
            .find(|d| d.params.fwd == FwdMethod::Tunnel)
            .unwrap();
        assert_eq!(
            (
                remote.params.tun_type,
                remote.params.tun_port,
                remote.params.tun_flags
            ),
            (1, 6080, 2)
        );
        let fw = ServiceKey::Fwmark {
            mark: 80,
            ipv6: false,
        };
        assert_eq!(t.services[&fw].dests.len(), 2);
        assert!(t.services.keys().any(|k| matches!(
            k,
            ServiceKey::Addr {
                protocol: proto::SCTP,
                ..
            }
        )));
    }

    #[test]
    fn names_and_unknown_ports_are_reported_not_guessed() {
        let c = parse(
            "virtual w {\n active = 1\n address = www.example.com eth0\n port = no-such-svc\n server a {\n  address = 10.0.0.1\n  active = 1\n  port = 80\n }\n}\n",
        )
        .unwrap()
        .config;
        let errs = desired(&c, &literal_only, &all_healthy, &quorum_now).unwrap_err();
        assert_eq!(
            errs,
            ["virtual w: host name `www.example.com` must be resolved first"]
        );
        let resolve = |_: &Host| Ok(v4([192, 0, 2, 1]));
        let errs = desired(&c, &resolve, &all_healthy, &quorum_now).unwrap_err();
        assert_eq!(
            errs,
            ["virtual w: unknown service name `no-such-svc` (use a port number)"]
        );
    }
}
