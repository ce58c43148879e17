//! The health policy of one real server (Piranha's nanny, without its flaws): check
//! results in, health transitions and the weight to program out. Pure; the probe that
//! produces the results is I/O elsewhere.
//!
//! - A server leaves the pool after `fall` consecutive failures (Piranha: the first)
//!   and returns after `rise` consecutive successes (Piranha's `reentry`).
//! - Out of the pool it is removed, or kept at weight 0 under `quiesce_server` so its
//!   connections finish.
//! - On return its weight ramps from 1 to the configured weight over `slow_start`.
//! - Servers start in the pool (keepalived's default), so a restart of the supervisor
//!   changes nothing in the kernel until a check says otherwise; with `alpha` they
//!   start out of it and enter after `rise` passed checks (keepalived's `alpha`).

/// The per-server settings, from the virtual server and its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub rise: u32,
    pub fall: u32,
    pub slow_start_ms: u64,
    pub quiesce: bool,
    /// keepalived's `alpha`: start out of the pool, until `rise` checks pass.
    pub alpha: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
}

/// A change of health, with what caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: Health,
    pub at_ms: u64,
    pub cause: String,
}

#[derive(Debug, Clone)]
pub struct Nanny {
    policy: Policy,
    health: Health,
    ok_streak: u32,
    fail_streak: u32,
    /// When the server last returned to the pool (for slow start); `None` when it has
    /// been up since the start.
    returned_ms: Option<u64>,
    last: Option<Transition>,
}

impl Nanny {
    pub fn new(policy: Policy) -> Nanny {
        Nanny {
            policy,
            health: if policy.alpha {
                Health::Down
            } else {
                Health::Up
            },
            ok_streak: 0,
            fail_streak: 0,
            returned_ms: None,
            last: None,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    pub fn last_transition(&self) -> Option<&Transition> {
        self.last.as_ref()
    }

    /// New settings on reload keep the current health and streaks.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// One check result; `detail` says what the check saw ("connection refused",
    /// "status 503", …). Returns the transition when health changed.
    pub fn observe(&mut self, now_ms: u64, ok: bool, detail: &str) -> Option<Transition> {
        let t = match (self.health, ok) {
            (Health::Up, true) => {
                self.fail_streak = 0;
                None
            }
            (Health::Up, false) => {
                self.fail_streak += 1;
                (self.fail_streak >= self.policy.fall.max(1)).then(|| Transition {
                    to: Health::Down,
                    at_ms: now_ms,
                    cause: format!("{} consecutive failed check(s): {detail}", self.fail_streak),
                })
            }
            (Health::Down, false) => {
                self.ok_streak = 0;
                None
            }
            (Health::Down, true) => {
                self.ok_streak += 1;
                (self.ok_streak >= self.policy.rise.max(1)).then(|| Transition {
                    to: Health::Up,
                    at_ms: now_ms,
                    cause: format!("{} consecutive passed check(s)", self.ok_streak),
                })
            }
        };
        if let Some(t) = &t {
            self.health = t.to;
            self.ok_streak = 0;
            self.fail_streak = 0;
            if t.to == Health::Up {
                self.returned_ms = Some(now_ms);
            }
            self.last = Some(t.clone());
        }
        t
    }

    /// The weight to program now: `None` when the server must not be in the table.
    pub fn weight(&self, now_ms: u64, configured: u32) -> Option<u32> {
        match self.health {
            Health::Down if self.policy.quiesce => Some(0),
            Health::Down => None,
            Health::Up => Some(match self.returned_ms {
                Some(at) if configured > 0 && now_ms < at + self.policy.slow_start_ms => {
                    let part = u128::from(configured) * u128::from(now_ms - at)
                        / u128::from(self.policy.slow_start_ms);
                    (part as u32).max(1)
                }
                _ => configured,
            }),
        }
    }

    /// Until when the weight is still ramping (the shell re-reconciles until then).
    pub fn ramping_until(&self, now_ms: u64) -> Option<u64> {
        let end = self.returned_ms? + self.policy.slow_start_ms;
        (self.health == Health::Up && now_ms < end).then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rise: u32, fall: u32) -> Policy {
        Policy {
            rise,
            fall,
            slow_start_ms: 0,
            quiesce: false,
            alpha: false,
        }
    }

    /// keepalived's alpha: out of the pool (or at weight 0 when quiesced) until the
    /// checks pass; a failure first keeps it out without a transition.
    #[test]
    fn alpha_starts_out_of_the_pool() {
        let mut n = Nanny::new(Policy {
            alpha: true,
            ..policy(2, 1)
        });
        assert_eq!((n.health(), n.weight(0, 5)), (Health::Down, None));
        assert_eq!(n.observe(1, false, "refused"), None);
        assert_eq!(n.observe(2, true, ""), None);
        let t = n.observe(3, true, "").unwrap();
        assert_eq!((t.to, n.weight(3, 5)), (Health::Up, Some(5)));
        let n = Nanny::new(Policy {
            alpha: true,
            quiesce: true,
            ..policy(1, 1)
        });
        assert_eq!(n.weight(0, 5), Some(0));
    }

    #[test]
    fn leaves_after_fall_failures_and_returns_after_rise_successes() {
        let mut n = Nanny::new(policy(2, 3));
        assert_eq!(n.weight(0, 5), Some(5), "in the pool from the start");
        assert_eq!(n.observe(1, false, "refused"), None);
        assert_eq!(n.observe(2, false, "refused"), None);
        // A success resets the count: flapping once does not add up.
        assert_eq!(n.observe(3, true, ""), None);
        assert_eq!(n.observe(4, false, "refused"), None);
        assert_eq!(n.observe(5, false, "refused"), None);
        let t = n.observe(6, false, "connection refused").unwrap();
        assert_eq!(t.to, Health::Down);
        assert_eq!(t.cause, "3 consecutive failed check(s): connection refused");
        assert_eq!(n.weight(6, 5), None);
        assert_eq!(n.observe(7, true, ""), None);
        assert_eq!(
            n.observe(8, false, "timeout"),
            None,
            "a failure resets the rise count"
        );
        assert_eq!(n.observe(9, true, ""), None);
        let t = n.observe(10, true, "").unwrap();
        assert_eq!((t.to, t.at_ms), (Health::Up, 10));
        assert_eq!(n.weight(10, 5), Some(5));
        assert_eq!(n.last_transition(), Some(&t));
    }

    #[test]
    fn piranha_defaults_drop_on_the_first_failure() {
        let mut n = Nanny::new(policy(1, 1));
        assert!(n.observe(1, false, "x").is_some());
        assert!(n.observe(2, true, "").is_some());
        // Zero from a bad configuration still means one.
        let mut n = Nanny::new(policy(0, 0));
        assert!(n.observe(1, false, "x").is_some());
    }

    #[test]
    fn quiesce_keeps_a_failed_server_at_weight_zero() {
        let mut n = Nanny::new(Policy {
            quiesce: true,
            ..policy(1, 1)
        });
        n.observe(1, false, "x");
        assert_eq!(n.weight(1, 5), Some(0));
    }

    #[test]
    fn slow_start_ramps_a_returning_server_but_not_one_up_since_start() {
        let p = Policy {
            slow_start_ms: 10_000,
            ..policy(1, 1)
        };
        let mut n = Nanny::new(p);
        assert_eq!(n.weight(0, 100), Some(100));
        assert_eq!(n.ramping_until(0), None);
        n.observe(1_000, false, "x");
        n.observe(2_000, true, "");
        assert_eq!(n.weight(2_000, 100), Some(1), "never 0 while up");
        assert_eq!(n.weight(4_500, 100), Some(25));
        assert_eq!(n.weight(7_000, 100), Some(50));
        assert_eq!(n.ramping_until(7_000), Some(12_000));
        assert_eq!(n.weight(12_000, 100), Some(100));
        assert_eq!(n.ramping_until(12_000), None);
        assert_eq!(n.weight(5_000, 0), Some(0), "a configured 0 stays 0");
    }
}
