//! Sync groups (keepalived's `vrrp_sync_group`): instances that change state together,
//! so that the addresses of two networks (say, a router's outside and inside) are
//! never held by two different directors. Pure: after a member acts, the group looks
//! at every member and says what the others must do.
//!
//! keepalived 2.2.7's rules (vrrp_sync.c), kept so that a mixed pair behaves the same:
//! - a member in FAULT puts every member in FAULT until no member has a fault of its
//!   own; then they all come back as backups;
//! - a backup whose master-down timer runs out takes over only when every other
//!   member wants to as well (or the group is already master): then all do. Until
//!   then it waits, its timer re-armed (so a master that lost only one of the
//!   networks keeps both);
//! - a master that steps down (it heard a higher priority) takes the other masters
//!   with it.
//!
//! One change from keepalived: a member the group takes out of MASTER sends a
//! priority-0 advert, so the other director's member takes over after its skew time
//! instead of its master-down interval.

use super::instance::{Action, State, Sync};

/// What the group sees of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View<'a> {
    pub name: &'a str,
    pub state: State,
    /// Its own trackers' fault, not one the group put it in.
    pub own_fault: Option<&'a str>,
    pub wants_master: bool,
}

/// A sync group's state: BACKUP, MASTER or FAULT as a whole.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    state: State,
}

impl Group {
    pub fn new(name: impl Into<String>) -> Group {
        Group {
            name: name.into(),
            state: State::Backup,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// After member `k` handled an event with these `actions`, what each member
    /// (by index into `view`, `k` included) must be told.
    pub fn follow(&mut self, k: usize, actions: &[Action], view: &[View]) -> Vec<(usize, Sync)> {
        let all = |s: Sync| (0..view.len()).map(|j| (j, s.clone())).collect::<Vec<_>>();
        if let Some(m) = view.iter().find(|m| m.own_fault.is_some()) {
            if self.state == State::Fault {
                return Vec::new();
            }
            self.state = State::Fault;
            return all(Sync::Fault(format!(
                "sync group {}: vrrp {} is in FAULT ({})",
                self.name,
                m.name,
                m.own_fault.unwrap_or_default()
            )));
        }
        if self.state == State::Fault {
            self.state = State::Backup;
            return all(Sync::Backup(format!(
                "sync group {}: no member is in FAULT any more",
                self.name
            )));
        }
        let others = |pred: &dyn Fn(&View) -> bool, s: Sync| {
            view.iter()
                .enumerate()
                .filter(|&(j, m)| j != k && pred(m))
                .map(|(j, _)| (j, s.clone()))
                .collect::<Vec<_>>()
        };
        for a in actions {
            match a {
                Action::WantMaster(cause) => {
                    let ready = self.state == State::Master
                        || view
                            .iter()
                            .enumerate()
                            .all(|(j, m)| j == k || m.wants_master || m.state == State::Master);
                    if !ready {
                        return Vec::new();
                    }
                    self.state = State::Master;
                    let cause = format!("sync group {}: {cause} on every member", self.name);
                    return view
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| m.state == State::Backup)
                        .map(|(j, _)| (j, Sync::Master(cause.clone())))
                        .collect();
                }
                Action::Changed {
                    to: State::Master, ..
                } if self.state != State::Master => {
                    self.state = State::Master;
                    return others(
                        &|m| m.state == State::Backup,
                        Sync::Master(format!(
                            "sync group {}: vrrp {} became master",
                            self.name, view[k].name
                        )),
                    );
                }
                Action::Changed {
                    from: State::Master,
                    to: State::Backup,
                    cause,
                } if self.state == State::Master => {
                    self.state = State::Backup;
                    return others(
                        &|m| m.state == State::Master,
                        Sync::Backup(format!(
                            "sync group {}: vrrp {} stepped down ({cause})",
                            self.name, view[k].name
                        )),
                    );
                }
                _ => {}
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::pulse::logic::vrrp::instance::{Event, Instance, Settings};
    use crate::pulse::logic::vrrp::packet::{Advert, Auth, Version};

    const S: u64 = 1_000_000;

    fn member(name: &str, vrid: u8) -> Instance {
        Instance::new(Settings {
            name: name.into(),
            version: Version::V3,
            vrid,
            priority: 100,
            interval_cs: 100,
            initial_master: false,
            preempt: true,
            preempt_delay_us: 0,
            down_timer_adverts: 3,
            advert_copies: 1,
            addresses: vec![IpAddr::from([192, 0, 2, vrid])],
            auth: Auth::None,
            unicast: false,
            source: IpAddr::from([10, 0, 0, 1]),
            in_sync_group: true,
        })
    }

    /// One director's members of one group, driven as the engine drives them.
    struct Node {
        members: Vec<Instance>,
        group: Group,
        /// Every action of every member, with its index.
        log: Vec<(usize, Action)>,
    }

    impl Node {
        fn new() -> Node {
            Node {
                members: vec![member("outside", 1), member("inside", 2)],
                group: Group::new("G"),
                log: Vec::new(),
            }
        }

        fn handle(&mut self, k: usize, now: u64, e: Event) {
            let actions = self.members[k].handle(now, e);
            self.log.extend(actions.iter().map(|a| (k, a.clone())));
            let view: Vec<View> = self
                .members
                .iter()
                .map(|m| View {
                    name: &m.settings().name,
                    state: m.state(),
                    own_fault: m.own_fault(),
                    wants_master: m.wants_master(),
                })
                .collect();
            for (j, s) in self.group.follow(k, &actions, &view) {
                let more = self.members[j].handle(now, Event::Sync(s));
                self.log.extend(more.into_iter().map(|a| (j, a)));
            }
        }

        fn states(&self) -> Vec<State> {
            self.members.iter().map(Instance::state).collect()
        }

        /// Fires every timer due by `now`.
        fn run_until(&mut self, now: u64) {
            loop {
                let due = (0..self.members.len())
                    .filter_map(|k| self.members[k].deadline().map(|d| (d, k)))
                    .filter(|&(d, _)| d <= now)
                    .min();
                match due {
                    Some((d, k)) => self.handle(k, d, Event::Timer),
                    None => return,
                }
            }
        }

        fn advert_from_master(&mut self, k: usize, now: u64, priority: u8) {
            let vrid = self.members[k].settings().vrid;
            let advert = Advert {
                version: Version::V3,
                vrid,
                priority,
                interval_cs: 100,
                addresses: vec![IpAddr::from([192, 0, 2, vrid])],
                auth: Auth::None,
            };
            self.handle(
                k,
                now,
                Event::Advert {
                    from: IpAddr::from([10, 0, 0, 2]),
                    ttl: 255,
                    advert,
                },
            );
        }
    }

    #[test]
    fn the_group_takes_over_only_when_every_member_has_lost_its_master() {
        let mut n = Node::new();
        n.handle(0, 0, Event::Start);
        n.handle(1, 0, Event::Start);
        // The other director is master of both, with a higher priority.
        for t in 0..10 {
            n.advert_from_master(0, t * S, 200);
            n.advert_from_master(1, t * S, 200);
        }
        // It loses only the outside network: the outside member's timer runs out,
        // but the inside one still hears its master, so nobody takes over.
        for t in 10..20 {
            n.advert_from_master(1, t * S, 200);
            n.run_until(t * S);
        }
        assert_eq!(n.states(), [State::Backup, State::Backup]);
        assert!(n.members[0].wants_master() && !n.members[1].wants_master());
        // Now both are silent: the group takes both over together.
        n.run_until(30 * S);
        assert_eq!(n.states(), [State::Master, State::Master]);
        assert_eq!(n.group.state(), State::Master);
    }

    #[test]
    fn a_fault_takes_the_whole_group_down_and_back_only_when_all_clear() {
        let mut n = Node::new();
        n.handle(0, 0, Event::Start);
        n.handle(1, 0, Event::Start);
        n.run_until(10 * S);
        assert_eq!(n.states(), [State::Master, State::Master]);
        n.log.clear();
        n.handle(
            1,
            10 * S,
            Event::Fault(Some("interface eth1 is down".into())),
        );
        assert_eq!(n.states(), [State::Fault, State::Fault]);
        // Both masters told the other director (priority 0) and released.
        for k in 0..2 {
            assert!(
                n.log.contains(&(k, Action::Send { priority: 0 })),
                "{:?}",
                n.log
            );
            assert!(n.log.contains(&(k, Action::Release)));
        }
        // A second fault, then the first clears: still FAULT.
        n.handle(0, 11 * S, Event::Fault(Some("local check c fails".into())));
        n.handle(1, 12 * S, Event::Fault(None));
        assert_eq!(n.states(), [State::Fault, State::Fault]);
        // The last one clears: both come back as backups, then masters.
        n.handle(0, 13 * S, Event::Fault(None));
        assert_eq!(n.states(), [State::Backup, State::Backup]);
        n.run_until(20 * S);
        assert_eq!(n.states(), [State::Master, State::Master]);
    }

    #[test]
    fn a_master_stepping_down_takes_the_others_with_it() {
        let mut n = Node::new();
        n.handle(0, 0, Event::Start);
        n.handle(1, 0, Event::Start);
        n.run_until(10 * S);
        assert_eq!(n.states(), [State::Master, State::Master]);
        // The other director's outside member comes with a higher priority.
        n.advert_from_master(0, 10 * S, 200);
        assert_eq!(n.states(), [State::Backup, State::Backup]);
        assert_eq!(n.group.state(), State::Backup);
        assert!(n.log.contains(&(1, Action::Send { priority: 0 })));
    }

    #[test]
    fn a_member_starting_in_fault_holds_the_others() {
        let mut n = Node::new();
        n.handle(0, 0, Event::Fault(Some("local check c fails".into())));
        n.handle(0, 0, Event::Start);
        n.handle(1, 0, Event::Start);
        n.run_until(10 * S);
        assert_eq!(n.states(), [State::Fault, State::Fault]);
        n.handle(0, 10 * S, Event::Fault(None));
        n.run_until(20 * S);
        assert_eq!(n.states(), [State::Master, State::Master]);
    }
}
