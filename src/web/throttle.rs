//! How many password guesses the admin UI takes, from where and for whom: token
//! buckets in bounded maps, with the time passed in. Pure; [`super::auth`] keeps one
//! [`LoginThrottle`] behind a mutex.
//!
//! Three limits, checked before a password is verified:
//!
//! - per source (an IPv4 address, an IPv6 /64: one host can have any address of its
//!   /64), every attempt counts when it starts (so that parallel attempts count too)
//!   and a right password gives its token back: one client cannot guess quickly,
//!   whatever the names, and an office of users behind one address is not limited;
//! - per user from anywhere, failures count, but this limit only *slows*: a source
//!   that has not failed for that user recently still gets its attempt, after a
//!   delay, so that someone guessing a name from many addresses cannot lock its owner
//!   out; a source that has failed for it is refused until the user's limit refills.
//!   A guesser gets one attempt per fresh source, and then that source has failed.
//!   The failures of each (user, source) pair are remembered for that.
//!
//! Keys are fixed-size (a user name is kept as a hash), and each map holds at most
//! [`MAX_KEYS`] entries: when one is full, the buckets that have refilled are
//! forgotten first, then the fullest ones. Memory stays bounded whatever is sent.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Entries per map at most (about 5 MB each when full).
pub const MAX_KEYS: usize = 65_536;

/// A bucket of `burst` attempts that refills at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub burst: u32,
    pub per_minute: u32,
}

impl Quota {
    fn refill(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }
}

/// Where an attempt comes from: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(u128);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(u128::from(u32::from(v4))),
            // An IPv4-mapped address is that IPv4 address (a dual-stack listener).
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(u128::from(u32::from(v4))),
                None => Source((u128::from(v6) & !((1u128 << 64) - 1)) | 1),
            },
        }
    }
}

/// A user name as the limits know it: case-insensitive, fixed-size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey([u8; 16]);

impl UserKey {
    pub fn of(name: &str) -> UserKey {
        let mut h = Sha256::new();
        h.update(name.to_lowercase().as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.finalize()[..16]);
        UserKey(k)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key, at most [`MAX_KEYS`] of them.
#[derive(Debug)]
struct Buckets<K> {
    quota: Quota,
    map: HashMap<K, Bucket>,
    max_keys: usize,
}

impl<K: Hash + Eq + Copy> Buckets<K> {
    fn new(quota: Quota, max_keys: usize) -> Self {
        Buckets {
            quota,
            map: HashMap::new(),
            max_keys,
        }
    }

    fn level(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + elapsed * self.quota.refill()).min(f64::from(self.quota.burst))
    }

    /// The tokens `key` has now (a full bucket when it is unknown).
    fn tokens(&self, key: &K, now: Instant) -> f64 {
        self.map
            .get(key)
            .map_or(f64::from(self.quota.burst), |b| self.level(b, now))
    }

    /// How long until `key` has a token, if it has none now.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let t = self.tokens(key, now);
        (t < 1.0).then(|| Duration::from_secs_f64((1.0 - t) / self.quota.refill()))
    }

    /// Whether `key` has had anything taken that has not come back yet.
    fn touched(&self, key: &K, now: Instant) -> bool {
        self.tokens(key, now) < f64::from(self.quota.burst)
    }

    /// Takes a token from `key` (it may go below one: the caller checked first).
    fn take(&mut self, key: K, now: Instant) {
        let tokens = self.tokens(&key, now);
        if !self.map.contains_key(&key) && self.map.len() >= self.max_keys {
            self.make_room(now);
        }
        self.map.insert(
            key,
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                at: now,
            },
        );
    }

    /// Gives a token back to `key`.
    fn give_back(&mut self, key: &K, now: Instant) {
        let level = self.map.get(key).map(|b| self.level(b, now));
        if let (Some(level), Some(b)) = (level, self.map.get_mut(key)) {
            b.tokens = (level + 1.0).min(f64::from(self.quota.burst));
            b.at = now;
        }
    }

    fn forget(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Forgets every bucket that has refilled; if that frees less than a quarter of
    /// the map, also the quarter that is closest to full (the least limited).
    fn make_room(&mut self, now: Instant) {
        let burst = f64::from(self.quota.burst);
        let mut levels: Vec<(K, f64)> = self
            .map
            .iter()
            .map(|(k, b)| (*k, self.level(b, now)))
            .collect();
        // Fullest first: the refilled ones lead, then the least limited.
        levels.sort_by(|a, b| b.1.total_cmp(&a.1));
        let refilled = levels.iter().take_while(|(_, l)| *l >= burst).count();
        for (k, _) in levels.into_iter().take(refilled.max(self.max_keys / 4)) {
            self.map.remove(&k);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// What to do with a password attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Verify it.
    Go,
    /// Verify it after this delay (the user is being guessed at from elsewhere).
    Slow(Duration),
    /// Refuse it; the client may try again after this long.
    Wait(Duration),
}

/// The limits on password attempts, for the login page and the own-password page.
#[derive(Debug)]
pub struct LoginThrottle {
    by_source: Buckets<Source>,
    by_pair: Buckets<(UserKey, Source)>,
    by_user: Buckets<UserKey>,
    slow: Duration,
}

/// Attempts from one source: 5 at once, then 6 a minute.
pub const PER_SOURCE: Quota = Quota {
    burst: 5,
    per_minute: 6,
};
/// Failures for one user from one source: remembered a minute each, five at most.
pub const PER_PAIR: Quota = Quota {
    burst: 5,
    per_minute: 1,
};
/// Failures for one user from anywhere, before attempts for it are slowed.
pub const PER_USER: Quota = Quota {
    burst: 10,
    per_minute: 10,
};
/// The delay of an attempt for a user under attack, from a source that has not failed.
pub const SLOW: Duration = Duration::from_secs(1);

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(MAX_KEYS)
    }
}

impl LoginThrottle {
    pub fn new(max_keys: usize) -> LoginThrottle {
        LoginThrottle {
            by_source: Buckets::new(PER_SOURCE, max_keys),
            by_pair: Buckets::new(PER_PAIR, max_keys),
            by_user: Buckets::new(PER_USER, max_keys),
            slow: SLOW,
        }
    }

    /// Decides on an attempt from `source` for `user`, and counts it against the
    /// source. A source already over its limit is refused before anything is kept
    /// about the user.
    pub fn attempt(&mut self, now: Instant, source: Source, user: UserKey) -> Verdict {
        if let Some(wait) = self.by_source.wait(&source, now) {
            return Verdict::Wait(wait);
        }
        self.by_source.take(source, now);
        if let Some(wait) = self.by_user.wait(&user, now) {
            return if self.by_pair.touched(&(user, source), now) {
                Verdict::Wait(wait)
            } else {
                Verdict::Slow(self.slow)
            };
        }
        Verdict::Go
    }

    /// The attempt was a wrong password.
    pub fn failed(&mut self, now: Instant, source: Source, user: UserKey) {
        self.by_pair.take((user, source), now);
        self.by_user.take(user, now);
    }

    /// The attempt was right: it does not count against the source, and the pair's
    /// failures are forgiven.
    pub fn succeeded(&mut self, now: Instant, source: Source, user: UserKey) {
        self.by_source.give_back(&source, now);
        self.by_pair.forget(&(user, source));
    }

    /// Entries kept, all maps together (for tests and the memory bound).
    pub fn keys(&self) -> usize {
        self.by_source.len() + self.by_pair.len() + self.by_user.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> Source {
        Source::of(s.parse().unwrap())
    }

    #[test]
    fn sources_are_addresses_and_ipv6_slash_64s() {
        assert_eq!(src("2001:db8:1:2::1"), src("2001:db8:1:2:ffff::9"));
        assert_ne!(src("2001:db8:1:2::1"), src("2001:db8:1:3::1"));
        assert_ne!(src("192.0.2.1"), src("192.0.2.2"));
        assert_eq!(src("::ffff:192.0.2.1"), src("192.0.2.1"));
        // An IPv6 /64 never collides with an IPv4 address.
        assert_ne!(src("::"), src("0.0.0.0"));
        assert_eq!(UserKey::of("Admin"), UserKey::of("admin"));
        assert_ne!(UserKey::of("admin"), UserKey::of("admin2"));
    }

    #[test]
    fn a_source_gets_its_burst_then_waits_and_refills() {
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        let s = src("192.0.2.1");
        for i in 0..PER_SOURCE.burst {
            // A different name every time: the source limit is about the client.
            let u = UserKey::of(&format!("user{i}"));
            assert_eq!(t.attempt(now, s, u), Verdict::Go, "attempt {i}");
        }
        let Verdict::Wait(w) = t.attempt(now, s, UserKey::of("other")) else {
            panic!("the sixth attempt must wait")
        };
        assert!(w <= Duration::from_secs(10) && w > Duration::ZERO, "{w:?}");
        assert_eq!(t.attempt(now + w, s, UserKey::of("other")), Verdict::Go);
    }

    #[test]
    fn right_passwords_do_not_use_up_the_source() {
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        let office = src("192.0.2.1");
        for i in 0..50 {
            let u = UserKey::of(&format!("user{}", i % 7));
            assert_eq!(t.attempt(now, office, u), Verdict::Go, "login {i}");
            t.succeeded(now, office, u);
        }
    }

    #[test]
    fn a_limited_source_leaves_no_trace_of_the_names_it_sends() {
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        let s = src("192.0.2.1");
        for i in 0..10_000 {
            t.attempt(now, s, UserKey::of(&format!("name{i}")));
        }
        // Only the source's bucket: the names were never looked at.
        assert_eq!(t.keys(), 1);
    }

    #[test]
    fn the_maps_stay_bounded_whatever_the_sources() {
        let mut t = LoginThrottle::new(1000);
        let now = Instant::now();
        for i in 0..20_000u32 {
            let s = Source::of(IpAddr::V4(i.into()));
            let u = UserKey::of(&format!("n{i}"));
            if t.attempt(now, s, u) == Verdict::Go {
                t.failed(now, s, u);
            }
        }
        assert!(t.keys() <= 3000, "{}", t.keys());
        // The most limited entries are the ones kept: the last source still waits
        // after its five failures.
        let s = src("10.0.0.1");
        let u = UserKey::of("x");
        for _ in 0..5 {
            assert_eq!(t.attempt(now, s, u), Verdict::Go);
            t.failed(now, s, u);
        }
        assert!(matches!(t.attempt(now, s, u), Verdict::Wait(_)));
    }

    #[test]
    fn a_guessed_user_is_slowed_not_locked_out_from_a_clean_source() {
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        let admin = UserKey::of("admin");
        // Many sources guess at admin until its own limit is spent.
        for i in 0..PER_USER.burst {
            let s = Source::of(IpAddr::V4((0x0a00_0000 + i).into()));
            assert_eq!(t.attempt(now, s, admin), Verdict::Go);
            t.failed(now, s, admin);
        }
        // The real admin at a source that has not failed: slowed, still let through.
        assert_eq!(
            t.attempt(now, src("192.0.2.50"), admin),
            Verdict::Slow(SLOW)
        );
        // A source that has failed for admin: refused while admin is under attack.
        let guesser = Source::of(IpAddr::V4(0x0a00_0000.into()));
        assert!(matches!(t.attempt(now, guesser, admin), Verdict::Wait(_)));
        // Other users are untouched.
        assert_eq!(
            t.attempt(now, src("192.0.2.51"), UserKey::of("bob")),
            Verdict::Go
        );
    }

    #[test]
    fn one_failure_every_few_seconds_does_not_lock_the_user_out() {
        // The attack of the report: a wrong password for admin every 3 s from one
        // address, for ten minutes; the real admin logs in from another one.
        let mut t = LoginThrottle::default();
        let start = Instant::now();
        let admin = UserKey::of("admin");
        let attacker = src("198.51.100.7");
        let mut now = start;
        while now < start + Duration::from_secs(600) {
            if t.attempt(now, attacker, admin) == Verdict::Go {
                t.failed(now, attacker, admin);
            }
            now += Duration::from_secs(3);
        }
        assert_eq!(t.attempt(now, src("192.0.2.50"), admin), Verdict::Go);
    }

    #[test]
    fn success_forgives_the_source_its_failures() {
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        let admin = UserKey::of("admin");
        let typo = src("192.0.2.9");
        // The real admin mistypes three times, then admin comes under attack.
        for _ in 0..3 {
            assert_eq!(t.attempt(now, typo, admin), Verdict::Go);
            t.failed(now, typo, admin);
        }
        for i in 0..PER_USER.burst {
            let s = Source::of(IpAddr::V4((0x0a00_0000 + i).into()));
            t.attempt(now, s, admin);
            t.failed(now, s, admin);
        }
        let later = now + Duration::from_secs(2);
        assert!(matches!(t.attempt(later, typo, admin), Verdict::Wait(_)));
        // Its failures are remembered for minutes; a success forgives them.
        let much_later = now + Duration::from_secs(65);
        assert_eq!(t.attempt(much_later, typo, admin), Verdict::Go);
        t.succeeded(much_later, typo, admin);
        for i in 0..PER_USER.burst {
            let s = Source::of(IpAddr::V4((0x0b00_0000 + i).into()));
            t.attempt(much_later, s, admin);
            t.failed(much_later, s, admin);
        }
        assert_eq!(t.attempt(much_later, typo, admin), Verdict::Slow(SLOW));
    }
}
