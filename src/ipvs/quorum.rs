//! keepalived's quorum of a virtual server (check/ipwrapper.c): the total weight of
//! its healthy real servers against `quorum`, with `hysteresis` on both sides. While
//! the quorum is lost, a sorry server (if any) takes all the traffic.

use crate::config::model::VirtualSettings;

/// A virtual server's `quorum` and `hysteresis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    pub quorum: u64,
    pub hysteresis: u64,
}

impl Quorum {
    pub fn of(st: &VirtualSettings) -> Quorum {
        Quorum {
            quorum: u64::from(st.quorum.unwrap_or(1)),
            hysteresis: u64::from(st.hysteresis.unwrap_or(0)),
        }
    }

    /// The state a service starts in, with nothing known before: up when the live
    /// weight reaches quorum + hysteresis (keepalived's `set_quorum_states`).
    pub fn initial(self, live: u64) -> bool {
        live >= self.quorum.saturating_add(self.hysteresis)
    }

    /// The state after `up` when the live weight is `live` (keepalived's
    /// `update_quorum_state`): gained at quorum + hysteresis, lost below
    /// quorum − hysteresis or when no weight is left at all.
    pub fn next(self, up: bool, live: u64) -> bool {
        if up {
            live != 0 && live >= self.quorum.saturating_sub(self.hysteresis)
        } else {
            live >= self.quorum.saturating_add(self.hysteresis)
        }
    }

    /// Words for a log line or an event: why the state is what it is.
    pub fn explain(self, up: bool, live: u64) -> String {
        match (up, self.hysteresis) {
            (true, 0) => format!("quorum gained: live weight {live} ≥ quorum {}", self.quorum),
            (true, h) => format!(
                "quorum gained: live weight {live} ≥ quorum {} + hysteresis {h}",
                self.quorum
            ),
            (false, 0) => format!("quorum lost: live weight {live} < quorum {}", self.quorum),
            (false, h) => format!(
                "quorum lost: live weight {live} < quorum {} − hysteresis {h}",
                self.quorum
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quorum = Quorum {
        quorum: 4,
        hysteresis: 1,
    };

    /// The thresholds keepalived uses, walked up and down.
    #[test]
    fn hysteresis_holds_the_state_between_the_thresholds() {
        assert!(!Q.initial(4), "starting needs quorum + hysteresis");
        assert!(Q.initial(5));
        let mut up = false;
        let mut seen = Vec::new();
        for live in [0, 3, 4, 5, 4, 3, 2, 3, 4, 5] {
            up = Q.next(up, live);
            seen.push(up);
        }
        assert_eq!(
            seen,
            [false, false, false, true, true, true, false, false, false, true]
        );
    }

    /// The default (quorum 1, no hysteresis) is Piranha's sorry server rule: lost
    /// exactly when no healthy server has weight; with hysteresis, a weight of 0 still
    /// loses it.
    #[test]
    fn the_default_is_no_weight_left() {
        let d = Quorum {
            quorum: 1,
            hysteresis: 0,
        };
        assert!(d.initial(1) && !d.initial(0));
        assert!(!d.next(true, 0) && d.next(true, 1) && d.next(false, 1));
        let h = Quorum {
            quorum: 1,
            hysteresis: 3,
        };
        assert!(!h.next(true, 0), "no weight at all is always a loss");
        assert!(h.next(true, 1));
    }

    /// Property: the state only changes across a threshold, and never flaps while the
    /// weight stays within the band.
    #[test]
    fn the_state_changes_only_across_a_threshold() {
        use rand::{Rng, SeedableRng};
        let mut r = rand::rngs::StdRng::seed_from_u64(19);
        for _ in 0..2000 {
            let q = Quorum {
                quorum: r.gen_range(1..20),
                hysteresis: r.gen_range(0..5),
            };
            let up = r.gen_bool(0.5);
            let live = r.gen_range(0..30);
            let next = q.next(up, live);
            if next != up {
                if next {
                    assert!(live >= q.quorum + q.hysteresis, "{q:?} {live}");
                } else {
                    assert!(
                        live == 0 || live < q.quorum.saturating_sub(q.hysteresis),
                        "{q:?} {live}"
                    );
                }
            }
        }
    }
}
