//! Warnings about a condition that can repeat many times a second (a flood of
//! connections, a peer sending a stream of bad heartbeats): the first is logged at
//! once, the rest at most once per period with how many were not logged, so that an
//! attacker cannot fill the journal and an operator still sees that it goes on.
//! Pure: the caller passes the time.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Throttle {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// One more occurrence at `now`: `Some(n)` when it is to be logged, `n` being how
    /// many since the last logged one were not; `None` when it is to be counted only.
    pub fn ready(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// " (N more not logged)" for a logged line, or nothing.
pub fn more(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more since the last such message, not logged)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_then_once_per_period_with_the_count() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Throttle::new(ms(1000));
        assert_eq!(t.ready(t0), Some(0));
        for i in 1..=50 {
            assert_eq!(t.ready(t0 + ms(i * 10)), None);
        }
        assert_eq!(t.ready(t0 + ms(1000)), Some(50));
        assert_eq!(t.ready(t0 + ms(1001)), None);
        assert_eq!(t.ready(t0 + ms(5000)), Some(1));
        assert_eq!(more(0), "");
        assert!(more(3).contains("3 more"));
    }
}
