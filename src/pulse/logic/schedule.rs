//! When a health check runs next: keepalived's timing. A server in the pool is checked
//! every `check_interval` (keepalived's `delay_loop`); after a failure that has not yet
//! taken it out, the next check comes after `retry_interval` (keepalived's
//! `delay_before_retry`), so with `fall` = retry + 1 the server leaves (fall − 1) ×
//! retry_interval after its first failed check, as keepalived's checkers do. Out of the
//! pool, or after a success, the normal interval applies again. The first check waits
//! `warmup` at most (a random share of it), or a fixed offset within the interval.
//! Pure: the check task asks, with the count of failures it has seen in a row.

use std::time::Duration;

/// A check's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval: Duration,
    /// After a failure that has not taken the server out yet.
    pub retry: Duration,
    /// Consecutive failures that take the server out.
    pub fall: u32,
    /// The longest wait before the first check; `None`: a stable offset within the
    /// interval.
    pub warmup: Option<Duration>,
}

impl Schedule {
    /// The timing of a check as lvs.cf sets it.
    pub fn of(check: &crate::config::CheckSettings) -> Schedule {
        Schedule {
            interval: check.interval().as_duration(),
            retry: check.retry_interval().as_duration(),
            fall: check.fall(),
            warmup: check.warmup.map(|w| w.as_duration()),
        }
    }

    /// A check every `interval`, whatever its results (local checks, load reports).
    pub fn every(interval: Duration) -> Schedule {
        Schedule {
            interval,
            retry: interval,
            fall: 1,
            warmup: None,
        }
    }

    /// The wait after a check, given the failures in a row including it (0 after a
    /// success).
    pub fn next(&self, failures: u32) -> Duration {
        if failures >= 1 && failures < self.fall.max(1) {
            self.retry
        } else {
            self.interval
        }
    }

    /// The wait before the first check: `unit` (0 to 1, a random or hashed share)
    /// of the warmup, or of the interval without one.
    pub fn first(&self, unit: f64) -> Duration {
        self.warmup
            .unwrap_or(self.interval)
            .mul_f64(unit.clamp(0.0, 1.0))
    }

    /// How long to wait, `elapsed` after a fixed epoch, for the next moment at `offset`
    /// within the interval: checks keep their phase when their task is started again
    /// (a reload), so one reload does not make an interval short or long.
    pub fn phase_wait(&self, elapsed: Duration, offset: Duration) -> Duration {
        let period = self.interval.as_nanos().max(1);
        let now = elapsed.as_nanos() % period;
        let at = offset.as_nanos() % period;
        let wait = if at >= now {
            at - now
        } else {
            period - now + at
        };
        Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
    }

    /// How long after its first failed check a server that keeps failing is taken out.
    pub fn time_to_remove(&self) -> Duration {
        (1..self.fall.max(1)).map(|k| self.next(k)).sum()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_restarted_check_keeps_its_phase() {
        let s = Schedule {
            interval: Duration::from_secs(1),
            retry: Duration::from_secs(1),
            fall: 3,
            warmup: None,
        };
        let ms = Duration::from_millis;
        // Offset 300 ms: at 10.1 s the next run is at 10.3 s, at 10.4 s it is 11.3 s.
        assert_eq!(s.phase_wait(ms(10_100), ms(300)), ms(200));
        assert_eq!(s.phase_wait(ms(10_400), ms(300)), ms(900));
        assert_eq!(s.phase_wait(ms(10_300), ms(300)), ms(0));
        // An offset beyond the interval counts modulo it.
        assert_eq!(s.phase_wait(ms(0), ms(1_300)), ms(300));
    }

    use super::*;
    use proptest::prelude::*;

    fn s(interval: u64, retry: u64, fall: u32) -> Schedule {
        Schedule {
            interval: Duration::from_secs(interval),
            retry: Duration::from_secs(retry),
            fall,
            warmup: None,
        }
    }

    /// keepalived's seed-style checker: delay_loop 6, nb_get_retry 3,
    /// delay_before_retry 3 (so fall = 4): out 9 s after the first failure, the
    /// failure itself coming within one delay_loop; about 15 s in all, where checking
    /// every delay_loop would take 18 s after the first failure (24 s in all).
    #[test]
    fn the_seed_settings_take_a_server_out_as_keepalived_does() {
        let k = s(6, 3, 4);
        assert_eq!(
            (1..=5).map(|f| k.next(f).as_secs()).collect::<Vec<_>>(),
            [3, 3, 3, 6, 6],
            "retries, then the normal interval once out"
        );
        assert_eq!(k.next(0), Duration::from_secs(6));
        assert_eq!(k.time_to_remove(), Duration::from_secs(9));
        assert_eq!(s(6, 6, 4).time_to_remove(), Duration::from_secs(18));
    }

    #[test]
    fn without_retries_a_failure_takes_the_server_out_at_once() {
        assert_eq!(s(5, 1, 1).next(1), Duration::from_secs(5));
        assert_eq!(s(5, 1, 1).time_to_remove(), Duration::ZERO);
        assert_eq!(
            Schedule::every(Duration::from_secs(2)).next(7),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn lvs_cf_sets_it_and_without_retry_interval_piranhas_timing_stays() {
        let c = crate::config::parse(
            "virtual v {\n check_interval = 6\n fall = 4\n retry_interval = 3\n warmup = 20\n}\n",
        )
        .unwrap()
        .config;
        let k = Schedule::of(&c.virtuals[0].check);
        assert_eq!(
            k,
            Schedule {
                warmup: Some(Duration::from_secs(20)),
                ..s(6, 3, 4)
            }
        );
        let c = crate::config::parse("virtual v {\n timeout = 5\n fall = 2\n}\n")
            .unwrap()
            .config;
        assert_eq!(Schedule::of(&c.virtuals[0].check), s(5, 5, 2));
    }

    #[test]
    fn the_first_check_waits_a_share_of_the_warmup() {
        let mut k = s(6, 3, 4);
        assert_eq!(k.first(0.5), Duration::from_secs(3));
        k.warmup = Some(Duration::from_secs(20));
        assert_eq!(k.first(0.25), Duration::from_secs(5));
        assert_eq!(k.first(7.0), Duration::from_secs(20), "clamped");
    }

    proptest! {
        /// For any settings, simulating keepalived's checker (a check at t, then
        /// retries every delay_before_retry until retry + 1 failures) gives the same
        /// removal time as the schedule.
        #[test]
        fn removal_time_matches_keepalived(delay_loop in 1u64..120, retry in 0u32..10, delay_before_retry in 1u64..30) {
            let k = s(delay_loop, delay_before_retry, retry + 1);
            let mut t = 0;
            let mut failures = 0;
            // keepalived: the first failure at 0, then `retry` retries.
            loop {
                failures += 1;
                if failures > retry {
                    break;
                }
                t += delay_before_retry;
            }
            prop_assert_eq!(k.time_to_remove(), Duration::from_secs(t));
            // And the schedule's own walk, check by check, agrees.
            let mut walked = Duration::ZERO;
            let mut f = 1;
            while f < k.fall {
                walked += k.next(f);
                f += 1;
            }
            prop_assert_eq!(walked, Duration::from_secs(t));
        }
    }
}
