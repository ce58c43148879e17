//! One reconcile round: dump the kernel's table, plan against the desired one, apply
//! the plan, remember what is owned. Shared by `lvs-director ipvs apply` and the
//! supervisor's periodic round.

use std::collections::{BTreeMap, BTreeSet};

use super::client::{Client, Counters, IpvsError, KernelError};
use super::diff::{plan, Op, Plan};
use super::kernel::Kernel;
use super::ownership::Ownership;
use super::table::{DestKey, ServiceKey, Table};

/// What a round did.
#[derive(Debug)]
pub struct Round {
    pub plan: Plan,
    /// One per `plan.ops` when applied; empty for a dry run.
    pub results: Vec<Result<(), KernelError>>,
    /// Why each operation was needed, one per `plan.ops`.
    pub causes: Vec<String>,
    /// The table the plan was made against.
    pub current: Table,
    /// Requests this round sent (dumps included).
    pub counters: Counters,
}

impl Round {
    pub fn failures(&self) -> impl Iterator<Item = (&Op, &KernelError)> {
        self.plan
            .ops
            .iter()
            .zip(&self.results)
            .filter_map(|(op, r)| r.as_ref().err().map(|e| (op, e)))
    }
}

/// Options of one round.
pub struct Settings<'a> {
    pub desired: &'a Table,
    /// Each service's drain timeout in milliseconds.
    pub drain_ms: &'a BTreeMap<ServiceKey, u64>,
    /// Unix milliseconds.
    pub now_ms: u64,
    pub dry_run: bool,
    /// Take over desired services that exist but were not created by this director.
    pub adopt: bool,
    /// Destinations to delete at once rather than drain: real servers that failed
    /// their health checks (their connections are dead anyway).
    pub failed: &'a BTreeSet<(ServiceKey, DestKey)>,
}

/// Keeps the kernel's IPVS table matching the desired one for a long-running process.
///
/// It remembers the table as last dumped, changed by its own acknowledged operations,
/// so a change of configuration or health costs one request per operation and no
/// dump ([`Reconciler::update`]); a periodic [`Reconciler::resync`] dumps the kernel to
/// see connection counts (for drains) and out-of-band changes, and repairs them. The
/// kernel is the netlink [`Client`], or an in-memory [`super::kernel::Twin`] in tests.
pub struct Reconciler<K: Kernel = Client> {
    client: K,
    ownership: Ownership,
    known: Option<Table>,
    last_desired: Option<Table>,
}

impl<K: Kernel> Reconciler<K> {
    pub fn new(client: K, ownership: Ownership) -> Reconciler<K> {
        Reconciler {
            client,
            ownership,
            known: None,
            last_desired: None,
        }
    }

    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    pub fn client(&mut self) -> &mut K {
        &mut self.client
    }

    /// Dumps the kernel, then plans and applies.
    pub fn resync(&mut self, s: &Settings<'_>) -> Result<Round, IpvsError> {
        let before = self.client.counters();
        let current = self.client.dump()?;
        self.run(current, before, s)
    }

    /// Plans against the table as last known and applies; dumps only when nothing is
    /// known yet (first round, or after a refused operation left it uncertain).
    pub fn update(&mut self, s: &Settings<'_>) -> Result<Round, IpvsError> {
        match self.known.take() {
            Some(current) => {
                let before = self.client.counters();
                self.run(current, before, s)
            }
            None => self.resync(s),
        }
    }

    fn run(
        &mut self,
        current: Table,
        before: Counters,
        s: &Settings<'_>,
    ) -> Result<Round, IpvsError> {
        let mut owned = self.ownership.owned.clone();
        if s.adopt {
            owned.extend(
                s.desired
                    .services
                    .keys()
                    .filter(|k| current.services.contains_key(k)),
            );
        }
        let drain = |k: &ServiceKey| s.drain_ms.get(k).copied().unwrap_or(0);
        // A deadline already passed deletes without draining.
        let mut drains = self.ownership.drains.clone();
        drains.extend(s.failed.iter().map(|d| (*d, 0)));
        let p = plan(s.desired, &current, &owned, &drains, &drain, s.now_ms);
        let causes = p
            .ops
            .iter()
            .map(|op| cause(op, self.last_desired.as_ref(), &current))
            .collect();
        if s.dry_run {
            self.known = Some(current.clone());
            let after = self.client.counters();
            return Ok(Round {
                plan: p,
                results: Vec::new(),
                causes,
                current,
                counters: after.since(before),
            });
        }
        let results = match self.client.apply(&p.ops) {
            Ok(r) => r,
            Err(e) => {
                // Some of the batch may have been applied: only a dump can tell. A
                // service it was creating is taken as ours: if it exists at the next
                // dump, this batch made it (the gap since this round's dump is one
                // request), and a service left half-made as someone else's would never
                // get the rest of its real servers.
                self.known = None;
                self.ownership
                    .owned
                    .extend(p.ops.iter().filter_map(|op| match op {
                        Op::AddService(k, _) => Some(*k),
                        _ => None,
                    }));
                return Err(e);
            }
        };
        let mut known = current.clone();
        let mut certain = true;
        let mut now_owned = p.owned.clone();
        for (op, r) in p.ops.iter().zip(&results) {
            match r {
                Ok(()) => certain &= known.apply(op).is_ok(),
                Err(_) => {
                    certain = false;
                    // A service this round failed to create is not ours (someone may
                    // have made it between the dump and the add).
                    if let Op::AddService(k, _) = op {
                        now_owned.remove(k);
                    }
                }
            }
        }
        self.known = certain.then_some(known);
        self.ownership.owned = now_owned;
        self.ownership.drains = p.drains.clone();
        self.last_desired = Some(s.desired.clone());
        let after = self.client.counters();
        Ok(Round {
            plan: p,
            results,
            causes,
            current,
            counters: after.since(before),
        })
    }
}

/// Why `op` is needed: a configuration (or health) change, or drift repaired because
/// the kernel no longer matches what the previous round left.
pub fn cause(op: &Op, previous: Option<&Table>, current: &Table) -> String {
    let prev_svc = |k: &ServiceKey| previous.and_then(|t| t.services.get(k));
    match op {
        Op::AddService(k, _) => match prev_svc(k) {
            Some(_) => "drift repaired: the service was missing from the kernel".into(),
            None => "new in the configuration".into(),
        },
        Op::EditService(k, p) => match prev_svc(k) {
            Some(prev) if prev.params == *p => format!(
                "drift repaired: the kernel had scheduler {} flags {:#x} timeout {}",
                current.services[k].params.scheduler,
                current.services[k].params.flags,
                current.services[k].params.timeout
            ),
            _ => "service settings changed".into(),
        },
        Op::DelService(_) => "removed from the configuration".into(),
        Op::AddDest(k, d, _) => match prev_svc(k).and_then(|s| s.dests.get(d)) {
            Some(_) => "drift repaired: the real server was missing from the kernel".into(),
            None => "real server added or back in the pool".into(),
        },
        Op::EditDest(k, d, p) => {
            let now = current.services.get(k).and_then(|s| s.dests.get(d));
            match (prev_svc(k).and_then(|s| s.dests.get(d)), now) {
                (Some(prev), Some(now)) if prev.params == *p => format!(
                    "drift repaired: the kernel had weight {} ({})",
                    now.params.weight,
                    now.params.fwd.name()
                ),
                (None, Some(now)) if p.weight == 0 => {
                    format!("draining: {} connection(s) left", now.conns.total())
                }
                _ => "real server settings or health changed".into(),
            }
        }
        Op::DelDest(k, d) => {
            let conns = current
                .services
                .get(k)
                .and_then(|s| s.dests.get(d))
                .map_or(0, |d| d.conns.total());
            if conns == 0 {
                "left the pool (no connections)".into()
            } else {
                format!("drain timeout passed with {conns} connection(s)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::diff::tests::dparams;
    use crate::ipvs::table::*;

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: proto::TCP,
            addr: "192.0.2.1".parse().unwrap(),
            port: 80,
        }
    }

    fn dkey() -> DestKey {
        DestKey {
            addr: "10.0.0.2".parse().unwrap(),
            port: 80,
        }
    }

    fn table(weight: Option<u32>) -> Table {
        let mut t = Table::default();
        let mut dests = std::collections::BTreeMap::new();
        if let Some(w) = weight {
            dests.insert(dkey(), Dest::new(dparams(w)));
        }
        t.services.insert(
            key(),
            Service::new(
                ServiceParams {
                    scheduler: "wlc".into(),
                    flags: 0,
                    timeout: 0,
                    netmask: u32::MAX,
                },
                dests,
            ),
        );
        t
    }

    #[test]
    fn drift_is_told_apart_from_configuration_changes() {
        let edit = Op::EditDest(key(), dkey(), dparams(5));
        // Someone set the weight to 1 behind our back; we last applied 5.
        let c = cause(&edit, Some(&table(Some(5))), &table(Some(1)));
        assert_eq!(c, "drift repaired: the kernel had weight 1 (Masq)");
        // The configuration moved from 1 to 5.
        let c = cause(&edit, Some(&table(Some(1))), &table(Some(1)));
        assert_eq!(c, "real server settings or health changed");
        let add = Op::AddDest(key(), dkey(), dparams(5));
        let c = cause(&add, Some(&table(Some(5))), &table(None));
        assert!(c.starts_with("drift repaired"), "{c}");
        assert_eq!(
            cause(
                &Op::AddService(key(), table(None).services[&key()].params.clone()),
                None,
                &Table::default()
            ),
            "new in the configuration"
        );
    }

    // ---- the reconciler's bookkeeping, against an in-memory kernel ----

    use crate::ipvs::kernel::Twin;

    fn dkey2() -> DestKey {
        DestKey {
            addr: "10.0.0.3".parse().unwrap(),
            port: 80,
        }
    }

    /// The service of `table` with two real servers.
    fn desired_two() -> Table {
        let mut t = table(Some(1));
        t.services
            .get_mut(&key())
            .unwrap()
            .dests
            .insert(dkey2(), Dest::new(dparams(1)));
        t
    }

    fn round<K: Kernel>(r: &mut Reconciler<K>, desired: &Table, resync: bool) -> Round {
        let drain_ms = BTreeMap::new();
        let failed = BTreeSet::new();
        let s = Settings {
            desired,
            drain_ms: &drain_ms,
            now_ms: 1_000,
            dry_run: false,
            adopt: false,
            failed: &failed,
        };
        if resync { r.resync(&s) } else { r.update(&s) }.unwrap()
    }

    #[test]
    fn a_known_table_costs_no_dump_and_no_change_costs_nothing() {
        let mut r = Reconciler::new(Twin::new(Table::default()), Ownership::default());
        let first = round(&mut r, &desired_two(), false);
        assert_eq!(first.plan.ops.len(), 3, "{:?}", first.plan.ops);
        // One dump (services, then the table was empty) and three changes.
        assert_eq!(first.counters.requests, 1 + 3);
        assert_eq!(r.client().table, desired_two());
        let again = round(&mut r, &desired_two(), false);
        assert!(again.plan.ops.is_empty());
        assert_eq!(again.counters.requests, 0, "no dump: the table is known");
        assert!(r.ownership().owned.contains(&key()));
    }

    #[test]
    fn a_refused_operation_in_a_batch_leaves_the_rest_and_is_retried_after_a_dump() {
        let mut refuse = true;
        let twin = Twin::new(Table::default()).refusing(move |op| match op {
            Op::AddDest(_, d, _) if *d == dkey2() && std::mem::take(&mut refuse) => {
                Some(libc::ENOMEM)
            }
            _ => None,
        });
        let mut r = Reconciler::new(twin, Ownership::default());
        let first = round(&mut r, &desired_two(), false);
        let failures: Vec<_> = first.failures().collect();
        assert_eq!(failures.len(), 1);
        assert!(matches!(failures[0].0, Op::AddDest(_, d, _) if *d == dkey2()));
        // The rest of the batch stands, and the service is ours.
        assert_eq!(r.client().table, table(Some(1)));
        assert!(r.ownership().owned.contains(&key()));
        // Uncertain afterwards: the next round dumps, and adds only what is missing.
        let second = round(&mut r, &desired_two(), false);
        assert!(
            second.counters.requests > second.plan.ops.len() as u64,
            "it dumped"
        );
        assert_eq!(
            second.plan.ops,
            vec![Op::AddDest(key(), dkey2(), dparams(1))]
        );
        assert!(second.failures().next().is_none());
        assert_eq!(r.client().table, desired_two());
    }

    #[test]
    fn a_service_that_could_not_be_created_is_not_owned() {
        let twin = Twin::new(Table::default()).refusing(|op| match op {
            Op::AddService(..) => Some(libc::EEXIST),
            _ => None,
        });
        let mut r = Reconciler::new(twin, Ownership::default());
        let first = round(&mut r, &table(Some(1)), false);
        assert_eq!(
            first.failures().count(),
            2,
            "the service and its real server"
        );
        assert!(!r.ownership().owned.contains(&key()));
    }

    #[test]
    fn a_batch_lost_half_way_is_found_by_the_next_dump() {
        let mut r = Reconciler::new(Twin::new(Table::default()), Ownership::default());
        r.client().fail_next_batch_after(2);
        let drain_ms = BTreeMap::new();
        let failed = BTreeSet::new();
        let desired = desired_two();
        let s = Settings {
            desired: &desired,
            drain_ms: &drain_ms,
            now_ms: 1_000,
            dry_run: false,
            adopt: false,
            failed: &failed,
        };
        assert!(r.update(&s).is_err());
        // Two of the three operations reached the kernel; the next round sees them.
        let next = round(&mut r, &desired, false);
        assert_eq!(next.plan.ops, vec![Op::AddDest(key(), dkey2(), dparams(1))]);
        assert_eq!(r.client().table, desired);
    }

    #[test]
    fn changes_behind_its_back_are_repaired_at_the_next_resync() {
        let mut r = Reconciler::new(Twin::new(Table::default()), Ownership::default());
        round(&mut r, &desired_two(), false);
        // Someone removes a real server with ipvsadm.
        r.client()
            .table
            .services
            .get_mut(&key())
            .unwrap()
            .dests
            .remove(&dkey2());
        // An update trusts the known table: nothing to do.
        assert!(round(&mut r, &desired_two(), false).plan.ops.is_empty());
        // A resync dumps, sees the drift and repairs it, saying so.
        let repair = round(&mut r, &desired_two(), true);
        assert_eq!(
            repair.plan.ops,
            vec![Op::AddDest(key(), dkey2(), dparams(1))]
        );
        assert_eq!(
            repair.causes,
            vec!["drift repaired: the real server was missing from the kernel".to_string()]
        );
        assert_eq!(r.client().table, desired_two());
    }
}
