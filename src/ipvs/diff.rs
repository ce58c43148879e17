//! Reconciling the kernel's IPVS table with the desired one, as a pure function of
//! (desired, current, what this director owns, drains in progress, now) → operations.
//!
//! Never a flush: only services this director created are edited or deleted, so a
//! service made with `ipvsadm` before or during the run survives. A real server that
//! leaves the desired table is drained first (weight 0) and deleted once its connections
//! are gone or its drain timeout has passed.

use std::collections::{BTreeMap, BTreeSet};

use super::table::*;

/// One change to the kernel's table, in the order it must be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddService(ServiceKey, ServiceParams),
    EditService(ServiceKey, ServiceParams),
    DelService(ServiceKey),
    AddDest(ServiceKey, DestKey, DestParams),
    EditDest(ServiceKey, DestKey, DestParams),
    DelDest(ServiceKey, DestKey),
}

impl std::fmt::Display for Op {
    /// The operation as the `ipvsadm` command that does the same, so an operator can
    /// read it, and repeat or undo it by hand.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::AddService(k, p) => write!(f, "ipvsadm -A {}{}", service_arg(k), ServiceOpts(k, p)),
            Op::EditService(k, p) => {
                write!(f, "ipvsadm -E {}{}", service_arg(k), ServiceOpts(k, p))
            }
            Op::DelService(k) => write!(f, "ipvsadm -D {}", service_arg(k)),
            Op::AddDest(k, d, p) => {
                write!(f, "ipvsadm -a {} -r {d}{}", service_arg(k), DestOpts(p))
            }
            Op::EditDest(k, d, p) => {
                write!(f, "ipvsadm -e {} -r {d}{}", service_arg(k), DestOpts(p))
            }
            Op::DelDest(k, d) => write!(f, "ipvsadm -d {} -r {d}", service_arg(k)),
        }
    }
}

/// `-t ADDR:PORT`, `-u …`, `--sctp-service …` or `-f MARK [-6]`.
pub fn service_arg(k: &ServiceKey) -> String {
    match *k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let flag = match protocol {
                proto::UDP => "-u",
                proto::SCTP => "--sctp-service",
                _ => "-t",
            };
            format!("{flag} {}", DestKey { addr, port })
        }
        ServiceKey::Fwmark { mark, ipv6 } => {
            format!("-f {mark}{}", if ipv6 { " -6" } else { "" })
        }
    }
}

struct ServiceOpts<'a>(&'a ServiceKey, &'a ServiceParams);

impl std::fmt::Display for ServiceOpts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ServiceOpts(k, p) = *self;
        write!(f, " -s {}", p.scheduler)?;
        if p.flags & svc_flags::PERSISTENT != 0 {
            write!(f, " -p {}", p.timeout)?;
            if k.is_ipv6() {
                write!(f, " -M {}", p.netmask)?;
            } else {
                write!(f, " -M {}", std::net::Ipv4Addr::from(p.netmask))?;
            }
        }
        if p.flags & svc_flags::ONEPACKET != 0 {
            f.write_str(" -o")?;
        }
        let mut sched = p.sched_flag_names();
        if p.flags & svc_flags::SCHED3 != 0 {
            sched.push("flag-3".to_string());
        }
        if !sched.is_empty() {
            write!(f, " -b {}", sched.join(","))?;
        }
        Ok(())
    }
}

struct DestOpts<'a>(&'a DestParams);

impl std::fmt::Display for DestOpts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.0;
        match p.fwd {
            FwdMethod::Masq => f.write_str(" -m")?,
            FwdMethod::Route => f.write_str(" -g")?,
            FwdMethod::Tunnel => {
                f.write_str(" -i")?;
                match p.tun_type {
                    0 => {}
                    1 => write!(f, " --tun-type gue --tun-port {}", p.tun_port)?,
                    2 => f.write_str(" --tun-type gre")?,
                    n => write!(f, " --tun-type {n}")?,
                }
                match p.tun_flags {
                    0 if p.tun_type != 0 => f.write_str(" --tun-nocsum")?,
                    1 => f.write_str(" --tun-csum")?,
                    2 => f.write_str(" --tun-remcsum")?,
                    _ => {}
                }
            }
            other => write!(f, " (forwarding {})", other.name())?,
        }
        write!(f, " -w {}", p.weight)?;
        if p.u_threshold != 0 {
            write!(f, " -x {}", p.u_threshold)?;
        }
        if p.l_threshold != 0 {
            write!(f, " -y {}", p.l_threshold)?;
        }
        Ok(())
    }
}

/// Destinations being drained, with the time (milliseconds, caller's clock) by which
/// they are deleted whatever their connections.
pub type Drains = BTreeMap<(ServiceKey, DestKey), u64>;

/// What [`plan`] decided, and the bookkeeping to carry to the next round.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// Services this director owns once `ops` are applied.
    pub owned: BTreeSet<ServiceKey>,
    pub drains: Drains,
    /// Desired services that exist but were not created by this director: left alone.
    pub conflicts: Vec<ServiceKey>,
}

/// Plans the operations that make `current` match `desired`.
///
/// `drain_ms` gives each service's drain timeout in milliseconds; `now_ms` is the
/// caller's clock.
pub fn plan(
    desired: &Table,
    current: &Table,
    owned: &BTreeSet<ServiceKey>,
    drains: &Drains,
    drain_ms: &dyn Fn(&ServiceKey) -> u64,
    now_ms: u64,
) -> Plan {
    let mut out = Plan {
        owned: owned.clone(),
        ..Plan::default()
    };
    // Removed services first: frees their addresses before anything is added.
    for key in owned {
        if !desired.services.contains_key(key) && current.services.contains_key(key) {
            out.ops.push(Op::DelService(*key));
        }
        if !desired.services.contains_key(key) {
            out.owned.remove(key);
        }
    }
    for (key, want) in &desired.services {
        match current.services.get(key) {
            None => {
                out.ops.push(Op::AddService(*key, want.params.clone()));
                for (d, dest) in &want.dests {
                    out.ops.push(Op::AddDest(*key, *d, dest.params));
                }
                out.owned.insert(*key);
            }
            Some(_) if !owned.contains(key) => out.conflicts.push(*key),
            Some(have) => {
                if have.params != want.params {
                    out.ops.push(Op::EditService(*key, want.params.clone()));
                }
                dests(&mut out, key, want, have, drains, drain_ms(key), now_ms);
            }
        }
    }
    out
}

fn dests(
    out: &mut Plan,
    key: &ServiceKey,
    want: &Service,
    have: &Service,
    drains: &Drains,
    drain_ms: u64,
    now_ms: u64,
) {
    for (d, dest) in &want.dests {
        match have.dests.get(d) {
            None => out.ops.push(Op::AddDest(*key, *d, dest.params)),
            Some(h) if h.params != dest.params => out.ops.push(Op::EditDest(*key, *d, dest.params)),
            Some(_) => {}
        }
    }
    for (d, h) in &have.dests {
        if want.dests.contains_key(d) {
            continue;
        }
        let deadline = drains
            .get(&(*key, *d))
            .copied()
            .unwrap_or(now_ms.saturating_add(drain_ms));
        if h.conns.total() == 0 || now_ms >= deadline {
            out.ops.push(Op::DelDest(*key, *d));
            continue;
        }
        if h.params.weight != 0 {
            out.ops.push(Op::EditDest(
                *key,
                *d,
                DestParams {
                    weight: 0,
                    ..h.params
                },
            ));
        }
        out.drains.insert((*key, *d), deadline);
    }
}

/// Why the kernel would refuse an operation (as `ip_vs_ctl.c` does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("service {0} already exists")]
    ServiceExists(ServiceKey),
    #[error("no service {0}")]
    NoService(ServiceKey),
    #[error("destination {1} of {0} already exists")]
    DestExists(ServiceKey, DestKey),
    #[error("no destination {1} in {0}")]
    NoDest(ServiceKey, DestKey),
}

impl Table {
    /// Applies one operation with the kernel's semantics: the in-memory twin of the
    /// netlink client, for tests and for `--dry-run` previews.
    pub fn apply(&mut self, op: &Op) -> Result<(), OpError> {
        match op {
            Op::AddService(k, p) => {
                if self.services.contains_key(k) {
                    return Err(OpError::ServiceExists(*k));
                }
                self.services
                    .insert(*k, Service::new(p.clone(), BTreeMap::new()));
            }
            Op::EditService(k, p) => {
                self.services
                    .get_mut(k)
                    .ok_or(OpError::NoService(*k))?
                    .params = p.clone();
            }
            Op::DelService(k) => {
                self.services.remove(k).ok_or(OpError::NoService(*k))?;
            }
            Op::AddDest(k, d, p) => {
                let s = self.services.get_mut(k).ok_or(OpError::NoService(*k))?;
                if s.dests.contains_key(d) {
                    return Err(OpError::DestExists(*k, *d));
                }
                s.dests.insert(*d, Dest::new(*p));
            }
            Op::EditDest(k, d, p) => {
                let s = self.services.get_mut(k).ok_or(OpError::NoService(*k))?;
                s.dests.get_mut(d).ok_or(OpError::NoDest(*k, *d))?.params = *p;
            }
            Op::DelDest(k, d) => {
                let s = self.services.get_mut(k).ok_or(OpError::NoService(*k))?;
                s.dests.remove(d).ok_or(OpError::NoDest(*k, *d))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;

    fn skey(i: u8) -> ServiceKey {
        ServiceKey::Addr {
            protocol: proto::TCP,
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)),
            port: 80,
        }
    }

    fn dkey(i: u8) -> DestKey {
        DestKey {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
            port: 8080,
        }
    }

    fn params(sched: &str) -> ServiceParams {
        ServiceParams {
            scheduler: sched.into(),
            flags: 0,
            timeout: 0,
            netmask: u32::MAX,
        }
    }

    pub(crate) fn dparams(weight: u32) -> DestParams {
        DestParams {
            fwd: FwdMethod::Masq,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
        }
    }

    fn service(sched: &str, dests: &[(u8, u32, u32)]) -> Service {
        Service::new(
            params(sched),
            dests
                .iter()
                .map(|&(i, w, conns)| {
                    let mut d = Dest::new(dparams(w));
                    d.conns.active = conns;
                    (dkey(i), d)
                })
                .collect(),
        )
    }

    fn table(services: Vec<(u8, Service)>) -> Table {
        Table {
            services: services.into_iter().map(|(i, s)| (skey(i), s)).collect(),
        }
    }

    const DRAIN: &dyn Fn(&ServiceKey) -> u64 = &|_| 60_000;

    #[test]
    fn empty_kernel_gets_services_then_their_destinations() {
        let desired = table(vec![(1, service("wlc", &[(1, 5, 0), (2, 1, 0)]))]);
        let p = plan(
            &desired,
            &Table::default(),
            &BTreeSet::new(),
            &Drains::new(),
            DRAIN,
            0,
        );
        assert_eq!(
            p.ops,
            vec![
                Op::AddService(skey(1), params("wlc")),
                Op::AddDest(skey(1), dkey(1), dparams(5)),
                Op::AddDest(skey(1), dkey(2), dparams(1)),
            ]
        );
        assert_eq!(p.owned, BTreeSet::from([skey(1)]));
    }

    #[test]
    fn foreign_services_are_never_touched() {
        // Service 9 was made with ipvsadm; service 1 exists but is not ours either.
        let current = table(vec![
            (9, service("rr", &[(1, 1, 3)])),
            (1, service("rr", &[])),
        ]);
        let desired = table(vec![(1, service("wlc", &[(1, 1, 0)]))]);
        let p = plan(
            &desired,
            &current,
            &BTreeSet::new(),
            &Drains::new(),
            DRAIN,
            0,
        );
        assert!(p.ops.is_empty(), "{:?}", p.ops);
        assert_eq!(p.conflicts, vec![skey(1)]);
        assert!(p.owned.is_empty());
    }

    #[test]
    fn removed_owned_service_is_deleted_and_forgotten() {
        let current = table(vec![
            (1, service("wlc", &[(1, 1, 0)])),
            (2, service("rr", &[])),
        ]);
        let owned = BTreeSet::from([skey(1), skey(2)]);
        let desired = table(vec![(2, service("rr", &[]))]);
        let p = plan(&desired, &current, &owned, &Drains::new(), DRAIN, 0);
        assert_eq!(p.ops, vec![Op::DelService(skey(1))]);
        assert_eq!(p.owned, BTreeSet::from([skey(2)]));
    }

    #[test]
    fn scheduler_and_weight_changes_are_edits_not_rebuilds() {
        let current = table(vec![(1, service("wlc", &[(1, 1, 10)]))]);
        let desired = table(vec![(1, service("rr", &[(1, 7, 0)]))]);
        let owned = BTreeSet::from([skey(1)]);
        let p = plan(&desired, &current, &owned, &Drains::new(), DRAIN, 0);
        assert_eq!(
            p.ops,
            vec![
                Op::EditService(skey(1), params("rr")),
                Op::EditDest(skey(1), dkey(1), dparams(7)),
            ]
        );
    }

    #[test]
    fn a_leaving_server_drains_then_goes() {
        let owned = BTreeSet::from([skey(1)]);
        let desired = table(vec![(1, service("wlc", &[(1, 1, 0)]))]);
        // Server 2 has 4 connections: weight 0, deadline now + 60 s.
        let mut current = table(vec![(1, service("wlc", &[(1, 1, 0), (2, 5, 4)]))]);
        let p = plan(&desired, &current, &owned, &Drains::new(), DRAIN, 1_000);
        assert_eq!(p.ops, vec![Op::EditDest(skey(1), dkey(2), dparams(0))]);
        assert_eq!(p.drains.get(&(skey(1), dkey(2))), Some(&61_000));
        for op in &p.ops {
            current.apply(op).unwrap();
        }
        // Still busy before the deadline: nothing to do.
        let p2 = plan(&desired, &current, &owned, &p.drains, DRAIN, 30_000);
        assert!(p2.ops.is_empty(), "{:?}", p2.ops);
        // Deadline passed: deleted even with connections.
        let p3 = plan(&desired, &current, &owned, &p2.drains, DRAIN, 61_000);
        assert_eq!(p3.ops, vec![Op::DelDest(skey(1), dkey(2))]);
        assert!(p3.drains.is_empty());
        // Connections gone before the deadline: deleted at once.
        let s = current.services.get_mut(&skey(1)).unwrap();
        s.dests.get_mut(&dkey(2)).unwrap().conns = DestConns::default();
        let p4 = plan(&desired, &current, &owned, &p2.drains, DRAIN, 31_000);
        assert_eq!(p4.ops, vec![Op::DelDest(skey(1), dkey(2))]);
    }

    #[test]
    fn a_drained_server_that_returns_gets_its_weight_back() {
        let owned = BTreeSet::from([skey(1)]);
        let current = table(vec![(1, service("wlc", &[(2, 0, 4)]))]);
        let drains = Drains::from([((skey(1), dkey(2)), 61_000)]);
        let desired = table(vec![(1, service("wlc", &[(2, 5, 0)]))]);
        let p = plan(&desired, &current, &owned, &drains, DRAIN, 2_000);
        assert_eq!(p.ops, vec![Op::EditDest(skey(1), dkey(2), dparams(5))]);
        assert!(p.drains.is_empty());
    }

    #[test]
    fn drift_is_repaired() {
        // Someone ran `ipvsadm -C`: everything we own is re-added.
        let owned = BTreeSet::from([skey(1)]);
        let desired = table(vec![(1, service("wlc", &[(1, 1, 0)]))]);
        let p = plan(
            &desired,
            &Table::default(),
            &owned,
            &Drains::new(),
            DRAIN,
            0,
        );
        assert_eq!(p.ops.len(), 2);
        assert_eq!(p.owned, owned);
    }

    fn arb_table() -> impl Strategy<Value = Table> {
        let dest = (0u8..6, 0u32..4, 0u32..3);
        let svc = (0u8..5, 0usize..3, prop::collection::vec(dest, 0..5));
        prop::collection::vec(svc, 0..5).prop_map(|svcs| {
            table(
                svcs.into_iter()
                    .map(|(i, s, d)| (i, service(["rr", "wlc", "sh"][s], &d)))
                    .collect(),
            )
        })
    }

    proptest! {
        /// Applying a plan and planning again yields nothing to do (once drains end),
        /// and foreign services are left exactly as they were.
        #[test]
        fn reconcile_is_idempotent_and_leaves_foreign_services(
            desired in arb_table(),
            current in arb_table(),
            owned_mask in any::<u8>(),
        ) {
            let owned: BTreeSet<ServiceKey> = current
                .services
                .keys()
                .chain(desired.services.keys())
                .filter(|k| matches!(k, ServiceKey::Addr { addr: IpAddr::V4(a), .. } if owned_mask & (1 << (a.octets()[3] % 8)) != 0))
                .copied()
                .collect();
            let mut kernel = current.clone();
            let p = plan(&desired, &kernel, &owned, &Drains::new(), DRAIN, 0);
            for op in &p.ops {
                kernel.apply(op).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            // Past every drain deadline, one more round deletes what was draining.
            let p2 = plan(&desired, &kernel, &p.owned, &p.drains, DRAIN, u64::MAX);
            for op in &p2.ops {
                kernel.apply(op).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            let p3 = plan(&desired, &kernel, &p2.owned, &p2.drains, DRAIN, u64::MAX);
            prop_assert!(p3.ops.is_empty(), "{:?}", p3.ops);
            for (k, s) in &current.services {
                if !owned.contains(k) {
                    prop_assert_eq!(kernel.services.get(k), Some(s));
                }
            }
            for (k, s) in &desired.services {
                if p3.owned.contains(k) {
                    let have = &kernel.services[k];
                    prop_assert_eq!(&have.params, &s.params);
                    let keys: Vec<_> = have.dests.keys().collect();
                    let want: Vec<_> = s.dests.keys().collect();
                    prop_assert_eq!(keys, want);
                }
            }
        }
    }
}
