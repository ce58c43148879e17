//! One reconcile round: dump the kernel's table, plan against the desired one, apply
//! the plan, remember what is owned. Shared by `lvs-director ipvs apply` and the
//! supervisor's periodic round.

use std::collections::{BTreeMap, BTreeSet};

use super::client::{Client, Counters, IpvsError, KernelError};
use super::diff::{plan, Op, Plan};
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
/// see connection counts (for drains) and out-of-band changes, and repairs them.
pub struct Reconciler {
    client: Client,
    ownership: Ownership,
    known: Option<Table>,
    last_desired: Option<Table>,
}

impl Reconciler {
    pub fn new(client: Client, ownership: Ownership) -> Reconciler {
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

    pub fn client(&mut self) -> &mut Client {
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
                // Some of the window may have been applied: only a dump can tell.
                self.known = None;
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
}
