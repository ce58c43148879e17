//! What an instance's effective priority and FAULT state depend on: its own interface,
//! the interfaces it tracks and the local checks it tracks (keepalived's
//! `track_interface` and `track_script`), each with a weight or none. Pure: the
//! readings (link states, check results) are handed in, and the verdict is what the
//! state machine is told.
//!
//! keepalived 2.2.7's rules, kept because a keepalived peer's priorities are computed
//! the same way (vrrp_track.c):
//! - weight 0: a failure (a check failing, a link down or missing) puts the instance
//!   in FAULT; a check with no result yet holds the instance back (keepalived keeps
//!   it in INIT until the script has run once);
//! - a positive weight is added while the check succeeds or the link is up, a negative
//!   one while it fails or is down; `reverse` turns the sign of the weight round;
//! - a weighted check with no result yet counts for nothing either way;
//! - the address owner (priority 255) is never moved; any other priority stays
//!   within 1..254.

use std::collections::BTreeMap;

use super::instance::OWNER;

/// What a tracker watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A `local_check` block, by name.
    Check(String),
    /// A network device, by name.
    Link(String),
}

/// One tracked thing with its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    pub subject: Subject,
    /// 0: a failure means FAULT; otherwise −253..253.
    pub weight: i32,
    /// keepalived's `reverse`.
    pub reverse: bool,
}

/// An instance's trackers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// The configured priority.
    pub base: u8,
    /// The instance's own interface: without it no advert can be sent, so it is
    /// tracked without weight whatever the configuration says (as keepalived does
    /// unless `dont_track_primary`).
    pub interface: String,
    pub trackers: Vec<Tracker>,
}

/// The state of the world the trackers look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readings {
    /// Each local check's last verdict (true: up); absent: no result yet.
    pub checks: BTreeMap<String, bool>,
    /// Each device's state (true: up and running); absent: no such device.
    pub links: BTreeMap<String, bool>,
}

/// What the instance is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not started yet: a check without weight has not answered.
    Waiting(String),
    /// A tracker without weight failed: the instance is in FAULT.
    Fault(String),
    /// The instance runs with this effective priority.
    Run { priority: u8 },
}

impl Tracking {
    pub fn verdict(&self, r: &Readings) -> Verdict {
        let mut total = i32::from(self.base);
        let mut waiting = None;
        let mut faults = Vec::new();
        match r.links.get(&self.interface) {
            None => faults.push(format!("interface {} does not exist", self.interface)),
            Some(false) => faults.push(format!("interface {} is down", self.interface)),
            Some(true) => {}
        }
        for t in &self.trackers {
            let (ok, what) = match &t.subject {
                Subject::Check(n) => match r.checks.get(n) {
                    Some(&ok) => (ok, format!("local check {n} fails")),
                    None if t.weight == 0 => {
                        waiting.get_or_insert_with(|| format!("local check {n} has no result yet"));
                        continue;
                    }
                    None => continue,
                },
                Subject::Link(n) => match r.links.get(n) {
                    Some(&up) => (up, format!("tracked interface {n} is down")),
                    None => (false, format!("tracked interface {n} does not exist")),
                },
            };
            // `reverse` makes success the failure for a tracker without weight.
            let failed = ok == t.reverse;
            if t.weight == 0 {
                if failed {
                    faults.push(if t.reverse {
                        what.replace(" fails", " succeeds")
                            .replace(" is down", " is up")
                    } else {
                        what
                    });
                }
                continue;
            }
            let sign = if t.reverse { -1 } else { 1 };
            if ok && t.weight > 0 || !ok && t.weight < 0 {
                total += t.weight * sign;
            }
        }
        if !faults.is_empty() {
            faults.dedup();
            return Verdict::Fault(faults.join(", "));
        }
        if let Some(w) = waiting {
            return Verdict::Waiting(w);
        }
        let priority = if self.base == OWNER {
            OWNER
        } else {
            total.clamp(1, i32::from(OWNER) - 1) as u8
        };
        Verdict::Run { priority }
    }

    /// The local checks this instance follows (for status and validation).
    pub fn checks(&self) -> impl Iterator<Item = &str> {
        self.trackers.iter().filter_map(|t| match &t.subject {
            Subject::Check(n) => Some(n.as_str()),
            Subject::Link(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracking(base: u8, trackers: &[(Subject, i32, bool)]) -> Tracking {
        Tracking {
            base,
            interface: "eth0".into(),
            trackers: trackers
                .iter()
                .map(|(s, w, r)| Tracker {
                    subject: s.clone(),
                    weight: *w,
                    reverse: *r,
                })
                .collect(),
        }
    }

    fn check(n: &str) -> Subject {
        Subject::Check(n.into())
    }

    fn link(n: &str) -> Subject {
        Subject::Link(n.into())
    }

    fn readings(checks: &[(&str, bool)], links: &[(&str, bool)]) -> Readings {
        Readings {
            checks: checks.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            links: links.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn the_own_interface_down_or_missing_is_a_fault() {
        let t = tracking(100, &[]);
        assert_eq!(
            t.verdict(&readings(&[], &[("eth0", true)])),
            Verdict::Run { priority: 100 }
        );
        assert_eq!(
            t.verdict(&readings(&[], &[("eth0", false)])),
            Verdict::Fault("interface eth0 is down".into())
        );
        assert_eq!(
            t.verdict(&readings(&[], &[])),
            Verdict::Fault("interface eth0 does not exist".into())
        );
    }

    #[test]
    fn weights_move_the_priority_as_keepalived_does() {
        let t = tracking(
            100,
            &[
                (check("up_bonus"), 20, false),
                (check("down_malus"), -30, false),
            ],
        );
        let eth = [("eth0", true)];
        // No results yet: weighted checks count for nothing.
        assert_eq!(
            t.verdict(&readings(&[], &eth)),
            Verdict::Run { priority: 100 }
        );
        assert_eq!(
            t.verdict(&readings(&[("up_bonus", true), ("down_malus", true)], &eth)),
            Verdict::Run { priority: 120 }
        );
        assert_eq!(
            t.verdict(&readings(
                &[("up_bonus", false), ("down_malus", false)],
                &eth
            )),
            Verdict::Run { priority: 70 }
        );
        let r = tracking(100, &[(check("c"), 20, true)]);
        assert_eq!(
            r.verdict(&readings(&[("c", true)], &eth)),
            Verdict::Run { priority: 80 }
        );
        assert_eq!(
            r.verdict(&readings(&[("c", false)], &eth)),
            Verdict::Run { priority: 100 }
        );
    }

    #[test]
    fn the_priority_stays_within_1_and_254_and_the_owner_never_moves() {
        let eth = [("eth0", true), ("eth1", false)];
        let low = tracking(10, &[(link("eth1"), -100, false)]);
        assert_eq!(
            low.verdict(&readings(&[], &eth)),
            Verdict::Run { priority: 1 }
        );
        let high = tracking(250, &[(check("c"), 100, false)]);
        assert_eq!(
            high.verdict(&readings(&[("c", true)], &eth)),
            Verdict::Run { priority: 254 }
        );
        let owner = tracking(255, &[(link("eth1"), -100, false)]);
        assert_eq!(
            owner.verdict(&readings(&[], &eth)),
            Verdict::Run { priority: 255 }
        );
    }

    #[test]
    fn without_weight_a_failure_is_a_fault_and_an_unanswered_check_holds_back() {
        let t = tracking(100, &[(check("c"), 0, false), (link("eth1"), 0, false)]);
        assert_eq!(
            t.verdict(&readings(&[], &[("eth0", true), ("eth1", true)])),
            Verdict::Waiting("local check c has no result yet".into())
        );
        // A fault wins over waiting.
        assert_eq!(
            t.verdict(&readings(&[], &[("eth0", true), ("eth1", false)])),
            Verdict::Fault("tracked interface eth1 is down".into())
        );
        assert_eq!(
            t.verdict(&readings(&[("c", false)], &[("eth0", false)])),
            Verdict::Fault(
                "interface eth0 is down, local check c fails, tracked interface eth1 does not exist"
                    .into()
            )
        );
        let r = tracking(100, &[(check("c"), 0, true)]);
        assert_eq!(
            r.verdict(&readings(&[("c", true)], &[("eth0", true)])),
            Verdict::Fault("local check c succeeds".into())
        );
        assert_eq!(
            r.verdict(&readings(&[("c", false)], &[("eth0", true)])),
            Verdict::Run { priority: 100 }
        );
    }
}
