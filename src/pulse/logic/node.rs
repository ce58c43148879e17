//! What this director has to do, derived from `lvs.cf` and the machine's own addresses:
//! its place in the pair, where heartbeats go, which addresses float, which real
//! servers and local daemons are checked. Pure; the supervisor resolves names and
//! reads the local addresses and the key file.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::config::value::{AddrDev, Forwarding, Host, Netmask, Protocol, Secs};
use crate::config::{CheckSettings, Config};
use crate::ipvs::desired::ResolveFn;

use crate::pulse::logic::ha::HaConfig;
use crate::pulse::logic::nanny::Policy;

/// This node's place, from `primary` / `backup` matching a local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    Primary,
    Backup,
    /// `backup_active = 0`: no peer, no heartbeats; this node serves alone.
    Standalone,
}

/// An address raised on the active director.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    /// The interface, without an alias suffix.
    pub device: String,
    /// Piranha's `eth0:1` alias form, kept as the address label (IPv4 only).
    pub label: Option<String>,
    /// What asked for it ("virtual web", "nat_router", "floating www").
    pub owners: Vec<String>,
    /// VRRP's `scope` (RT_SCOPE_*); unset: as `ip` chooses.
    pub scope: Option<u8>,
    /// VRRP's `brd` (IPv4); unset: the prefix's broadcast address.
    pub broadcast: Option<std::net::Ipv4Addr>,
}

/// The heartbeat and failover part of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub place: Place,
    /// This node's name in heartbeats and status: its public address as configured.
    pub name: String,
    pub ha: HaConfig,
    pub heartbeat_port: u16,
    /// The peer's public and private heartbeat addresses (one when they are the same).
    pub peers: Vec<SocketAddr>,
    pub vips: Vec<Vip>,
    /// `syncdaemon = 1`: interface and sync id.
    pub sync: Option<(String, u8)>,
    /// `monitor_links`: the devices whose link state is watched.
    pub watched_links: Vec<String>,
    pub garp_count: u32,
    pub garp_interval_ms: u64,
    pub garp_refresh_ms: u64,
    /// VRRP's `garp_lower_prio_repeat`: announcements per address when a master hears
    /// a lower priority (the heartbeat has no such moment: 0).
    pub garp_lower_count: u32,
}

/// One real server under one virtual server, with its effective check settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `(virtual name, server name)`, unique in a valid configuration.
    pub key: (String, String),
    pub addr: IpAddr,
    /// The real server's port (0 for a firewall-mark service without one).
    pub port: u16,
    /// The port checked (`check_port`, else the real server's port).
    pub check_port: u16,
    pub protocol: Protocol,
    pub check: CheckSettings,
    pub policy: Policy,
}

/// A `local_check` block: failing, it hands the addresses over to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    pub check: CheckSettings,
    pub policy: Policy,
}

/// Parses and validates `lvs.cf` text: the model and its warnings (one line each), or
/// every error.
pub fn load(name: &str, text: &str) -> Result<(Config, Vec<String>), Vec<String>> {
    let checked = crate::config::check(text);
    let warnings = checked.warning_lines(name);
    match checked.config {
        Some(config) if checked.errors().next().is_none() => Ok((config, warnings)),
        _ => Err(checked.error_lines(name)),
    }
}

fn prefix_of(addr: IpAddr, mask: Option<Netmask>) -> u8 {
    // Piranha's 0.0.0.0 (and no mask at all) means a host address.
    let full = if addr.is_ipv6() { 128 } else { 32 };
    match mask.map(Netmask::prefix) {
        Some(0) | None => full,
        Some(p) => p.min(full),
    }
}

fn add_vip(
    vips: &mut Vec<Vip>,
    errors: &mut Vec<String>,
    resolve: &ResolveFn,
    owner: String,
    at: &AddrDev,
    mask: Option<Netmask>,
) {
    let addr = match resolve(&at.addr) {
        Ok(a) => a,
        Err(e) => return errors.push(format!("{owner}: address: {e}")),
    };
    let device = at.base_device().to_string();
    let label = (at.device != device).then(|| at.device.clone());
    let prefix = prefix_of(addr, mask);
    if let Some(v) = vips.iter_mut().find(|v| v.addr == addr) {
        if v.device != device || v.prefix != prefix {
            errors.push(format!(
                "{owner}: address {addr} is also raised by {} as {addr}/{} on {}",
                v.owners.join(", "),
                v.prefix,
                v.device
            ));
        } else {
            v.owners.push(owner);
        }
        return;
    }
    vips.push(Vip {
        addr,
        prefix,
        device,
        label: label.filter(|_| addr.is_ipv4()),
        owners: vec![owner],
        scope: None,
        broadcast: None,
    });
}

/// The addresses this node raises when active: every active virtual server's VIP, the
/// NAT router address in NAT mode, the active floating addresses. Shared VIPs (several
/// ports on one address) appear once.
pub fn vips(c: &Config, resolve: &ResolveFn) -> Result<Vec<Vip>, Vec<String>> {
    let mut wanted: Vec<(String, &AddrDev, Option<Netmask>)> = Vec::new();
    for vs in c.virtuals.iter().filter(|v| v.settings.active()) {
        if let Some(at) = &vs.settings.address {
            wanted.push((format!("virtual {}", vs.name), at, vs.settings.vip_nmask));
        }
    }
    let nat_used = c.global.network() == Forwarding::Nat
        || c.virtuals
            .iter()
            .any(|v| v.settings.active() && v.settings.forwarding(&c.global) == Forwarding::Nat);
    if let (true, Some(at)) = (nat_used, &c.global.nat_router) {
        wanted.push(("nat_router".into(), at, c.global.nat_nmask));
    }
    for f in c
        .floating
        .iter()
        .filter(|f| f.settings.active == Some(true))
    {
        if let Some(at) = &f.settings.address {
            wanted.push((format!("floating {}", f.name), at, f.settings.vip_nmask));
        }
    }
    let mut vips = Vec::new();
    let mut errors = Vec::new();
    for (owner, at, mask) in wanted {
        add_vip(&mut vips, &mut errors, resolve, owner, at, mask);
    }
    if errors.is_empty() {
        Ok(vips)
    } else {
        Err(errors)
    }
}

/// The node plan. `is_local` says whether an address belongs to this machine.
pub fn plan(
    c: &Config,
    resolve: &ResolveFn,
    is_local: &dyn Fn(IpAddr) -> bool,
) -> Result<NodePlan, Vec<String>> {
    let g = &c.global;
    let mut errors = Vec::new();
    let mut addr_of = |what: &str, h: Option<&Host>| -> Option<IpAddr> {
        let h = h?;
        match resolve(h) {
            Ok(a) => Some(a),
            Err(e) => {
                errors.push(format!("{what}: {e}"));
                None
            }
        }
    };
    let primary = addr_of("primary", g.primary.as_ref());
    let primary_private = addr_of("primary_private", g.primary_private());
    let backup = addr_of("backup", g.backup.as_ref());
    let backup_private = addr_of("backup_private", g.backup_private());
    let vips = vips(c, resolve).unwrap_or_else(|mut e| {
        errors.append(&mut e);
        Vec::new()
    });
    let port = match g.heartbeat_port() {
        Some(p) => p,
        None => {
            errors.push("heartbeat_port: unknown service name (use a port number)".into());
            539
        }
    };
    let mine = |a: Option<IpAddr>| a.is_some_and(is_local);
    let (place, me, peers) = if !g.backup_active() {
        (Place::Standalone, primary.or(backup), vec![])
    } else if mine(primary) || mine(primary_private) {
        (Place::Primary, primary, vec![backup, backup_private])
    } else if mine(backup) || mine(backup_private) {
        (Place::Backup, backup, vec![primary, primary_private])
    } else {
        let show = |a: Option<IpAddr>| a.map_or("unset".to_string(), |a| a.to_string());
        errors.push(format!(
            "this machine has neither the primary's address ({}) nor the backup's ({}): \
             cannot tell which director it is",
            show(primary),
            show(backup)
        ));
        (Place::Standalone, None, vec![])
    };
    if place != Place::Standalone && peers.iter().all(Option::is_none) {
        errors.push(format!(
            "backup_active = 1 but the {} address is not set",
            if place == Place::Primary {
                "backup"
            } else {
                "primary"
            }
        ));
    }
    let mut peer_addrs: Vec<SocketAddr> = Vec::new();
    for a in peers.into_iter().flatten() {
        let s = SocketAddr::new(a, port);
        if !peer_addrs.contains(&s) {
            peer_addrs.push(s);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let name = me.map_or_else(|| "standalone".to_string(), |a| a.to_string());
    let sync = g
        .syncdaemon
        .unwrap_or(false)
        .then(|| (g.syncd_iface().to_string(), g.syncd_id.unwrap_or(0) as u8));
    // Under VRRP every address, and the sync daemon, follows its instance: the node
    // itself (standalone, backup_active = 0) raises nothing.
    let (vips, sync) = if c.uses_vrrp() {
        (Vec::new(), None)
    } else {
        (vips, sync)
    };
    let mut watched_links: Vec<String> = Vec::new();
    if g.monitor_links.unwrap_or(0) != 0 {
        for v in &vips {
            if !watched_links.contains(&v.device) {
                watched_links.push(v.device.clone());
            }
        }
    }
    Ok(NodePlan {
        place,
        ha: HaConfig {
            name: name.clone(),
            primary: place != Place::Backup,
            priority: 100,
            keepalive_ms: g.keepalive().millis().max(10),
            // Alone, there is nobody to listen for before serving.
            deadtime_ms: if place == Place::Standalone {
                0
            } else {
                g.deadtime().millis().max(g.keepalive().millis()).max(20)
            },
            preempt: g.preempt(),
            preempt_delay_ms: g.preempt_delay.unwrap_or(Secs(0)).millis(),
            serial: u64::from(g.serial_no.unwrap_or(0)),
        },
        name,
        heartbeat_port: port,
        peers: peer_addrs,
        vips,
        sync,
        watched_links,
        garp_count: g.garp_count(),
        garp_interval_ms: g.garp_interval().millis(),
        garp_refresh_ms: g.garp_refresh.unwrap_or(Secs(0)).millis(),
        garp_lower_count: 0,
    })
}

fn policy(check: &CheckSettings, slow_start: Option<Secs>, quiesce: bool) -> Policy {
    Policy {
        rise: check.rise(),
        fall: check.fall(),
        slow_start_ms: slow_start.map_or(0, Secs::millis),
        quiesce,
        alpha: check.alpha == Some(true),
    }
}

/// Every active real server of every active virtual server, with the checks that
/// apply to it; problems (an unresolvable name, an unknown port name) one line each.
pub fn targets(c: &Config, resolve: &ResolveFn) -> (Vec<Target>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for vs in c.virtuals.iter().filter(|v| v.settings.active()) {
        for rs in vs.servers.iter().filter(|r| r.settings.active()) {
            let at = |e: String| format!("virtual {} server {}: {e}", vs.name, rs.name);
            let Some(host) = rs.settings.address.as_ref() else {
                errors.push(at("no address".into()));
                continue;
            };
            let addr = match resolve(host) {
                Ok(a) => a,
                Err(e) => {
                    errors.push(at(e.to_string()));
                    continue;
                }
            };
            let check = rs.check.overlay(&vs.check);
            let rs_port = rs.settings.port(&vs.settings);
            let Some(rs_port) = rs_port.number() else {
                errors.push(at(format!(
                    "unknown service name `{rs_port}` (use a number)"
                )));
                continue;
            };
            let port = check
                .check_port
                .clone()
                .unwrap_or_else(|| rs.settings.port(&vs.settings));
            let Some(check_port) = port.number() else {
                errors.push(at(format!("unknown service name `{port}` (use a number)")));
                continue;
            };
            out.push(Target {
                key: (vs.name.clone(), rs.name.clone()),
                addr,
                port: rs_port,
                check_port,
                protocol: vs.settings.protocol(),
                policy: policy(
                    &check,
                    vs.settings.slow_start,
                    // The server's own quiesce_server (keepalived's inhibit_on_failure
                    // per real server) over the virtual server's.
                    rs.settings
                        .quiesce_server
                        .unwrap_or_else(|| vs.settings.quiesce_server()),
                ),
                check,
            });
        }
    }
    (out, errors)
}

/// The active `local_check` blocks.
pub fn local_targets(c: &Config, resolve: &ResolveFn) -> (Vec<LocalTarget>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for lc in c
        .local_checks
        .iter()
        .filter(|l| l.settings.active == Some(true))
    {
        let host = lc
            .settings
            .address
            .clone()
            .unwrap_or(Host::Ip(IpAddr::from([127, 0, 0, 1])));
        let addr = match resolve(&host) {
            Ok(a) => a,
            Err(e) => {
                errors.push(format!("local_check {}: {e}", lc.name));
                continue;
            }
        };
        let port = lc.settings.port.as_ref().map_or(Some(0), |p| p.number());
        let Some(port) = port else {
            errors.push(format!("local_check {}: unknown port name", lc.name));
            continue;
        };
        out.push(LocalTarget {
            name: lc.name.clone(),
            addr,
            port,
            policy: policy(&lc.check, None, false),
            check: lc.check.clone(),
        });
    }
    (out, errors)
}

/// Targets grouped by what is checked, so that one probe serves every virtual server
/// that checks the same real server the same way. The key is the caller's probe
/// identity.
pub fn group<K: Ord, T>(items: Vec<T>, key: impl Fn(&T) -> K) -> BTreeMap<K, Vec<T>> {
    let mut out: BTreeMap<K, Vec<T>> = BTreeMap::new();
    for t in items {
        out.entry(key(&t)).or_default().push(t);
    }
    out
}

#[cfg(test)]
mod tests {
    /// Under VRRP the node raises nothing itself: each instance raises its own.
    #[test]
    fn under_vrrp_the_node_raises_no_address() {
        let text = "syncdaemon = 1\nvrrp VI_1 {\n    active = 1\n    interface = eth0\n    virtual_router_id = 51\n    virtual_ipaddress = [ 192.0.2.100/24 ]\n}\nfloating f {\n    active = 1\n    address = 192.0.2.7 eth0\n}\n";
        let c = crate::config::parse(text).unwrap().config;
        let p = super::plan(&c, &crate::ipvs::desired::literal_only, &|_| false).unwrap();
        assert_eq!(p.place, super::Place::Standalone);
        assert!(p.vips.is_empty() && p.sync.is_none(), "{p:?}");
    }

    use super::*;
    use crate::ipvs::desired::literal_only;

    fn cfg(text: &str) -> Config {
        load("lvs.cf", text).expect("valid").0
    }

    const PAIR: &str = "serial_no = 7
primary = 10.0.0.1
primary_private = 192.168.0.1
service = lvs
backup_active = 1
backup = 10.0.0.2
backup_private = 192.168.0.2
heartbeat_port = 1539
keepalive = 0.1
deadtime = 0.3
network = nat
nat_router = 192.168.0.254 eth1:1
nat_nmask = 255.255.255.0
monitor_links = 1
syncdaemon = 1
syncd_iface = eth1
syncd_id = 9
virtual web {
    active = 1
    address = 10.0.0.100 eth0:1
    vip_nmask = 255.255.255.0
    port = 80
    scheduler = rr
    timeout = 2
    fall = 3
    rise = 2
    quiesce_server = 1
    server a {
        address = 192.168.0.11
        active = 1
    }
    server b {
        address = 192.168.0.12
        active = 1
        check_port = 8080
        quiesce_server = 0
    }
    server off {
        address = 192.168.0.13
        active = 0
    }
}
virtual web443 {
    active = 1
    address = 10.0.0.100 eth0:1
    vip_nmask = 255.255.255.0
    port = 443
    scheduler = rr
    server a {
        address = 192.168.0.11
        active = 1
    }
}
virtual idle {
    active = 0
    address = 10.0.0.200 eth0
    port = 80
}
floating www {
    active = 1
    address = 2001:db8::5 eth0
}
";

    #[test]
    fn the_backup_finds_itself_and_its_peer_on_both_paths() {
        let c = cfg(PAIR);
        let p = plan(&c, &literal_only, &|a| a == IpAddr::from([192, 168, 0, 2])).unwrap();
        assert_eq!(p.place, Place::Backup);
        assert_eq!(p.name, "10.0.0.2");
        assert!(!p.ha.primary);
        assert_eq!((p.ha.keepalive_ms, p.ha.deadtime_ms), (100, 300));
        assert_eq!(p.ha.serial, 7);
        assert!(p.ha.preempt, "preempt defaults to on");
        assert_eq!(
            p.peers,
            vec![
                "10.0.0.1:1539".parse().unwrap(),
                "192.168.0.1:1539".parse().unwrap()
            ]
        );
        assert_eq!(p.sync, Some(("eth1".into(), 9)));
    }

    #[test]
    fn addresses_are_raised_once_with_their_label_and_prefix() {
        let c = cfg(PAIR);
        let p = plan(&c, &literal_only, &|a| a == IpAddr::from([10, 0, 0, 1])).unwrap();
        assert_eq!(p.place, Place::Primary);
        let v: Vec<_> = p
            .vips
            .iter()
            .map(|v| {
                (
                    v.addr.to_string(),
                    v.prefix,
                    v.device.as_str(),
                    v.label.as_deref(),
                    v.owners.len(),
                )
            })
            .collect();
        assert_eq!(
            v,
            vec![
                ("10.0.0.100".into(), 24, "eth0", Some("eth0:1"), 2),
                ("192.168.0.254".into(), 24, "eth1", Some("eth1:1"), 1),
                ("2001:db8::5".into(), 128, "eth0", None, 1),
            ]
        );
        assert_eq!(p.watched_links, vec!["eth0", "eth1"]);
    }

    #[test]
    fn a_machine_that_is_neither_director_is_told_so() {
        let c = cfg(PAIR);
        let e = plan(&c, &literal_only, &|_| false).unwrap_err();
        assert!(
            e[0].contains("neither the primary's address (10.0.0.1)"),
            "{e:?}"
        );
    }

    #[test]
    fn without_a_backup_the_node_stands_alone_and_sends_nothing() {
        let c = cfg(&PAIR.replace("backup_active = 1", "backup_active = 0"));
        let p = plan(&c, &literal_only, &|_| false).unwrap();
        assert_eq!(p.place, Place::Standalone);
        assert!(p.peers.is_empty());
    }

    #[test]
    fn one_address_on_two_devices_is_refused() {
        // validate refuses this already; the plan must not trust that it ran.
        let mut c = cfg(PAIR);
        c.virtuals[1].settings.address.as_mut().unwrap().device = "eth2".into();
        let e = vips(&c, &literal_only).unwrap_err();
        assert!(
            e[0].contains("virtual web443: address 10.0.0.100 is also raised by virtual web"),
            "{e:?}"
        );
    }

    #[test]
    fn targets_carry_the_effective_checks_and_policy() {
        let c = cfg(PAIR);
        let (t, errors) = targets(&c, &literal_only);
        assert!(errors.is_empty());
        let keys: Vec<_> = t
            .iter()
            .map(|t| (t.key.0.as_str(), t.key.1.as_str(), t.check_port))
            .collect();
        assert_eq!(
            keys,
            vec![("web", "a", 80), ("web", "b", 8080), ("web443", "a", 443)]
        );
        assert_eq!(t[0].policy.fall, 3);
        assert_eq!(t[0].policy.rise, 2);
        assert!(t[0].policy.quiesce);
        assert!(!t[1].policy.quiesce, "the server's own quiesce_server wins");
        assert_eq!(
            t[2].policy.fall, 1,
            "Piranha's default: out on the first failure"
        );
        assert_eq!(t[0].check.interval().millis(), 2000);
    }

    #[test]
    fn load_reports_errors_by_line() {
        let e = load("x.cf", "primary = 10.0.0.1\nkeepalive = soon\n").unwrap_err();
        assert!(e[0].starts_with("x.cf:2"), "{e:?}");
    }
}
