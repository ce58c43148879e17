//! Routers running [`Instance`]s against each other on simulated time: adverts
//! delivered to every other router after a small delay, or lost at random.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::instance::{Action, Event, Instance, Settings, State};
use super::packet::{Advert, Auth, Version};

const MS: u64 = 1_000;
const S: u64 = 1_000_000;
/// How long an advert takes from one router to the others.
const LATENCY: u64 = 200;

fn settings(n: u8, priority: u8, version: Version, interval_cs: u16) -> Settings {
    Settings {
        name: "VI_1".into(),
        version,
        vrid: 51,
        priority,
        interval_cs,
        initial_master: false,
        preempt: true,
        preempt_delay_us: 0,
        down_timer_adverts: 3,
        advert_copies: 1,
        addresses: vec!["192.0.2.100".parse().unwrap()],
        auth: Auth::None,
        unicast: false,
        source: IpAddr::from([192, 0, 2, n]),
        in_sync_group: false,
    }
}

/// Two routers, 192.0.2.1 and .2, with these priorities.
fn pair(p1: u8, p2: u8, version: Version, interval_cs: u16, seed: u64) -> Net {
    Net::new(
        vec![
            settings(1, p1, version, interval_cs),
            settings(2, p2, version, interval_cs),
        ],
        seed,
    )
}

struct Net {
    routers: Vec<Instance>,
    up: Vec<bool>,
    queue: BinaryHeap<Reverse<Delivery>>,
    adverts: Vec<Advert>,
    seq: u64,
    now: u64,
    loss: f64,
    rng: StdRng,
    /// Every state change: (time, router, new state).
    history: Vec<(u64, usize, State)>,
    sent: Vec<u64>,
}

/// (time, sequence, to, from, index into `adverts`)
type Delivery = (u64, u64, usize, usize, usize);

impl Net {
    fn new(routers: Vec<Settings>, seed: u64) -> Net {
        let n = routers.len();
        Net {
            routers: routers.into_iter().map(Instance::new).collect(),
            up: vec![false; n],
            queue: BinaryHeap::new(),
            adverts: Vec::new(),
            seq: 0,
            now: 0,
            loss: 0.0,
            rng: StdRng::seed_from_u64(seed),
            history: Vec::new(),
            sent: vec![0; n],
        }
    }

    fn event(&mut self, r: usize, e: Event) {
        let actions = self.routers[r].handle(self.now, e);
        for a in actions {
            match a {
                Action::Send { priority } => {
                    self.sent[r] += 1;
                    let advert = self.routers[r].advert(priority);
                    self.adverts.push(advert);
                    let key = self.adverts.len() - 1;
                    for to in 0..self.routers.len() {
                        if to != r && self.rng.gen::<f64>() >= self.loss {
                            self.seq += 1;
                            self.queue
                                .push(Reverse((self.now + LATENCY, self.seq, to, r, key)));
                        }
                    }
                }
                Action::Changed { to, .. } => self.history.push((self.now, r, to)),
                _ => {}
            }
        }
    }

    fn start(&mut self, r: usize) {
        self.up[r] = true;
        self.event(r, Event::Start);
    }

    fn stop(&mut self, r: usize) {
        self.event(r, Event::Stop);
        self.up[r] = false;
    }

    /// A crash: nothing sent, the router just goes silent.
    fn crash(&mut self, r: usize) {
        self.up[r] = false;
        if self.routers[r].state() != State::Init {
            self.history.push((self.now, r, State::Init));
        }
        let s = self.routers[r].settings().clone();
        self.routers[r] = Instance::new(s);
    }

    fn run_until(&mut self, end: u64) {
        loop {
            let delivery = self.queue.peek().map(|Reverse(q)| q.0);
            let timer = (0..self.routers.len())
                .filter(|&r| self.up[r])
                .filter_map(|r| self.routers[r].deadline().map(|d| (d, r)))
                .min();
            let next = match (delivery, timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            self.now = next;
            if delivery == Some(next) {
                let Reverse((_, _, to, from, key)) = self.queue.pop().unwrap();
                if self.up[to] {
                    let advert = self.adverts[key].clone();
                    let from = self.routers[from].settings().source;
                    self.event(
                        to,
                        Event::Advert {
                            from,
                            ttl: 255,
                            advert,
                        },
                    );
                }
            } else if let Some((_, r)) = timer {
                self.event(r, Event::Timer);
            }
        }
        self.now = end;
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&r| self.up[r] && self.routers[r].state() == State::Master)
            .collect()
    }

    /// The longest stretch, between `from` and `to`, with two or more masters at once.
    fn longest_split(&self, from: u64, to: u64) -> u64 {
        let mut state = vec![State::Init; self.routers.len()];
        let mut longest = 0;
        let mut since: Option<u64> = None;
        for &(t, r, s) in &self.history {
            if t > to {
                break;
            }
            state[r] = s;
            let split = state.iter().filter(|s| **s == State::Master).count() > 1;
            match (split, since) {
                (true, None) => since = Some(t),
                (false, Some(a)) => {
                    longest = longest.max(t.saturating_sub(a.max(from)));
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(a) = since {
            longest = longest.max(to.saturating_sub(a.max(from)));
        }
        longest
    }

    /// When router `r` last became master.
    fn became_master(&self, r: usize) -> Option<u64> {
        self.history
            .iter()
            .rev()
            .find(|(_, x, s)| *x == r && *s == State::Master)
            .map(|(t, _, _)| *t)
    }
}

#[test]
fn timers_follow_keepalived() {
    // v2, advert_int 1, priority 100: 3 s + (256 - 100)/256 s = 3.609375 s.
    let i = Instance::new(settings(1, 100, Version::V2, 100));
    assert_eq!(i.master_down_us(), 3_609_375);
    // v3, advert_int 0.1, priority 200: 0.3 s + 56/256 × 0.1 s.
    let i = Instance::new(settings(1, 200, Version::V3, 10));
    assert_eq!(i.master_down_us(), 321_875);
    // v3 at 10 ms, priority 240: 31.25 ms... in µs: 30,000 + 16/256 × 10,000 = 30,625.
    let i = Instance::new(settings(1, 240, Version::V3, 1));
    assert_eq!(i.master_down_us(), 30_625);
}

#[test]
fn two_routers_elect_the_higher_priority_and_only_it() {
    for version in [Version::V2, Version::V3] {
        let int = if version == Version::V2 { 100 } else { 10 };
        let mut net = Net::new(
            vec![
                settings(1, 100, version, int),
                settings(2, 150, version, int),
            ],
            1,
        );
        net.start(0);
        net.start(1);
        let down = Instance::new(settings(2, 150, version, int)).master_down_us();
        net.run_until(down + 10 * MS);
        assert_eq!(net.masters(), vec![1], "{version:?}");
        assert_eq!(net.became_master(1), Some(down));
        net.run_until(60 * S);
        assert_eq!(net.masters(), vec![1]);
        assert_eq!(net.longest_split(0, 60 * S), 0);
        assert_eq!(net.routers[0].state(), State::Backup);
        assert_eq!(
            net.routers[0].master(),
            Some(("192.0.2.2".parse().unwrap(), 150))
        );
    }
}

#[test]
fn a_later_higher_priority_preempts_and_a_stop_hands_over_within_the_skew_time() {
    let mut net = pair(100, 150, Version::V3, 10, 2);
    net.start(0);
    net.run_until(2 * S);
    assert_eq!(net.masters(), vec![0]);
    net.start(1);
    net.run_until(4 * S);
    assert_eq!(net.masters(), vec![1]);
    // It heard the lower master's adverts, ignored them and took over once its timer ran
    // out: within one master-down interval (plus an advert's travel).
    let took = net.became_master(1).unwrap() - 2 * S;
    assert!(took <= net.routers[1].master_down_us() + LATENCY, "{took}");
    // The old master stepped down when it heard the higher priority.
    assert!(net.longest_split(0, 4 * S) <= 10 * MS);
    // A clean stop: priority 0, the backup takes over after its skew time, not the
    // master-down interval.
    net.stop(1);
    let stopped = net.now;
    net.run_until(6 * S);
    assert_eq!(net.masters(), vec![0]);
    let took = net.became_master(0).unwrap() - stopped;
    let skew = 156 * 100 * MS / 256;
    assert_eq!(took, LATENCY + skew);
}

#[test]
fn a_crashed_master_is_replaced_after_the_master_down_interval() {
    let mut net = pair(100, 150, Version::V2, 100, 3);
    net.start(0);
    net.start(1);
    net.run_until(10 * S);
    assert_eq!(net.masters(), vec![1]);
    net.crash(1);
    let crashed = net.now;
    net.run_until(20 * S);
    assert_eq!(net.masters(), vec![0]);
    let took = net.became_master(0).unwrap() - crashed;
    // The last advert came up to one interval before the crash.
    assert!((3_609_375 - S..=3_609_375).contains(&took), "{took}");
}

#[test]
fn nopreempt_keeps_the_master_until_it_fails() {
    let mut s2 = settings(2, 150, Version::V3, 10);
    s2.preempt = false;
    let mut net = Net::new(vec![settings(1, 100, Version::V3, 10), s2], 4);
    net.start(0);
    net.run_until(2 * S);
    net.start(1);
    net.run_until(30 * S);
    assert_eq!(net.masters(), vec![0]);
    net.stop(0);
    net.run_until(31 * S);
    assert_eq!(net.masters(), vec![1]);
}

#[test]
fn preempt_delay_waits_before_taking_over() {
    let mut s2 = settings(2, 150, Version::V3, 10);
    s2.preempt_delay_us = 2 * S;
    let mut net = Net::new(vec![settings(1, 100, Version::V3, 10), s2], 5);
    net.start(0);
    net.run_until(2 * S);
    net.start(1);
    net.run_until(10 * S);
    assert_eq!(net.masters(), vec![1]);
    let took = net.became_master(1).unwrap() - 2 * S;
    // The delay runs from the first advert heard (≤ one interval after the start),
    // then the master-down timer from the last advert before the delay ended.
    let down = net.routers[1].master_down_us();
    assert!(took >= 2 * S + down - 100 * MS, "{took}");
    assert!(took <= 2 * S + 100 * MS + down + LATENCY, "{took}");
}

#[test]
fn track_weights_move_mastership_and_back() {
    let mut net = pair(100, 150, Version::V3, 10, 6);
    net.start(0);
    net.start(1);
    net.run_until(5 * S);
    assert_eq!(net.masters(), vec![1]);
    // `weight -60` on a failing script: 150 - 60 = 90 < 100.
    net.event(1, Event::Priority(90));
    net.run_until(7 * S);
    assert_eq!(net.masters(), vec![0]);
    let t = net.became_master(0).unwrap() - 5 * S;
    assert!(t <= net.routers[0].master_down_us() + 2 * LATENCY, "{t}");
    net.event(1, Event::Priority(150));
    net.run_until(9 * S);
    assert_eq!(net.masters(), vec![1]);
    assert!(net.longest_split(0, 9 * S) <= 2 * LATENCY);
}

#[test]
fn the_address_owner_takes_over_at_once_and_a_second_owner_is_lowered() {
    let mut s1 = settings(1, 255, Version::V3, 100);
    s1.initial_master = true;
    let mut net = Net::new(vec![s1, settings(2, 100, Version::V3, 100)], 7);
    net.start(0);
    net.start(1);
    assert_eq!(net.masters(), vec![0]);
    assert_eq!(net.became_master(0), Some(0));
    // Without `state MASTER` the owner waits like everybody else.
    let i = Instance::new(settings(3, 255, Version::V3, 100));
    let mut i2 = i.clone();
    let a = i2.handle(0, Event::Start);
    assert!(matches!(
        &a[..],
        [Action::Changed {
            to: State::Backup,
            ..
        }]
    ));
    // Two owners: the lower address lowers itself and steps down.
    let mut s3 = settings(3, 255, Version::V3, 100);
    s3.initial_master = true;
    let mut net = Net::new(vec![net.routers[0].settings().clone(), s3], 8);
    net.start(0);
    net.start(1);
    net.run_until(5 * S);
    assert_eq!(net.masters(), vec![1]);
    assert_eq!(net.routers[0].effective_priority(), 254);
}

#[test]
fn a_fault_releases_with_priority_zero_and_recovery_starts_as_backup() {
    let mut net = pair(100, 150, Version::V3, 10, 9);
    net.start(0);
    net.start(1);
    net.run_until(2 * S);
    let sent = net.sent[1];
    net.event(1, Event::Fault(Some("eth0 is down".into())));
    assert_eq!(net.routers[1].state(), State::Fault);
    assert_eq!(net.sent[1], sent + 1);
    let fault_at = net.now;
    net.run_until(3 * S);
    assert_eq!(net.masters(), vec![0]);
    assert_eq!(
        net.became_master(0).unwrap() - fault_at,
        LATENCY + 156 * 100 * MS / 256
    );
    net.event(1, Event::Fault(None));
    assert_eq!(net.routers[1].state(), State::Backup);
    net.run_until(5 * S);
    assert_eq!(net.masters(), vec![1]);
}

fn dropped(i: &mut Instance, from: &str, ttl: u8, a: Advert) -> Option<&'static str> {
    let out = i.handle(
        1,
        Event::Advert {
            from: from.parse().unwrap(),
            ttl,
            advert: a,
        },
    );
    out.iter().find_map(|a| match a {
        Action::Dropped { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn adverts_failing_a_check_are_counted_and_never_acted_on() {
    let mut s = settings(1, 100, Version::V2, 100);
    s.auth = Auth::pass(b"secret");
    let mut i = Instance::new(s);
    i.handle(0, Event::Start);
    let good = Advert {
        priority: 200,
        ..i.advert(200)
    };
    let deadline = i.deadline();
    let cases: Vec<(u8, Advert, &str)> = vec![
        (64, good.clone(), "ttl"),
        (
            255,
            Advert {
                version: Version::V3,
                auth: Auth::None,
                ..good.clone()
            },
            "version",
        ),
        (
            255,
            Advert {
                auth: Auth::None,
                ..good.clone()
            },
            "authentication",
        ),
        (
            255,
            Advert {
                auth: Auth::pass(b"guess"),
                ..good.clone()
            },
            "authentication",
        ),
        (
            255,
            Advert {
                interval_cs: 200,
                ..good.clone()
            },
            "interval",
        ),
        (
            255,
            Advert {
                addresses: vec!["192.0.2.99".parse().unwrap()],
                ..good.clone()
            },
            "addresses",
        ),
        (
            255,
            Advert {
                addresses: vec![],
                ..good.clone()
            },
            "addresses",
        ),
    ];
    for (ttl, a, reason) in cases {
        assert_eq!(
            dropped(&mut i, "192.0.2.9", ttl, a.clone()),
            Some(reason),
            "{a:?}"
        );
        assert_eq!(i.deadline(), deadline, "{a:?} moved the timer");
        assert_eq!(i.master(), None);
    }
    // Unicast instances accept any TTL (keepalived checks TTL only for multicast).
    assert_eq!(dropped(&mut i, "192.0.2.9", 255, good.clone()), None);
    assert_ne!(i.deadline(), deadline);
    let mut s = settings(1, 100, Version::V3, 10);
    s.unicast = true;
    let mut u = Instance::new(s);
    u.handle(0, Event::Start);
    let a = u.advert(200);
    assert_eq!(dropped(&mut u, "192.0.2.9", 63, a), None);
    // A version 3 interval mismatch is warned about once and followed.
    let a = Advert {
        interval_cs: 100,
        ..u.advert(200)
    };
    let out = u.handle(
        2,
        Event::Advert {
            from: "192.0.2.9".parse().unwrap(),
            ttl: 255,
            advert: a.clone(),
        },
    );
    assert!(matches!(&out[..], [Action::Warn(_)]), "{out:?}");
    assert_eq!(u.master_down_us(), 3 * S + 156 * S / 256);
    let out = u.handle(
        3,
        Event::Advert {
            from: "192.0.2.9".parse().unwrap(),
            ttl: 255,
            advert: a,
        },
    );
    assert!(out.is_empty(), "{out:?}");
}

/// Random groups of two or three routers with random priorities, start times, clean
/// stops, crashes and weight changes, without loss: once the group has settled after
/// each change, there is exactly one master and it has the highest effective priority
/// among the routers running (of equal priorities, a running master is not preempted:
/// RFC 5798 §6.4.2), and two masters at once never last longer than one master-down
/// interval.
#[test]
fn property_one_master_and_short_splits() {
    let mut rng = StdRng::seed_from_u64(5798);
    for case in 0..300 {
        let n = rng.gen_range(2..=3);
        let version = if rng.gen_bool(0.5) {
            Version::V2
        } else {
            Version::V3
        };
        let int: u16 = if version == Version::V2 {
            100
        } else {
            rng.gen_range(1..=100)
        };
        let routers: Vec<Settings> = (0..n)
            .map(|r| settings(r as u8 + 1, rng.gen_range(1..=254), version, int))
            .collect();
        let mut net = Net::new(routers, case);
        let longest_down = (0..n)
            .map(|r| net.routers[r].master_down_us())
            .max()
            .unwrap()
            + 3 * u64::from(int) * 10_000;
        let settle = 2 * longest_down + 10 * MS;
        for r in 0..n {
            net.start(r);
            let t = net.now + rng.gen_range(0..longest_down);
            net.run_until(t);
        }
        for step in 0..8 {
            let t = net.now + settle;
            net.run_until(t);
            let running: Vec<usize> = (0..n).filter(|&r| net.up[r]).collect();
            if let Some(top) = running
                .iter()
                .map(|&r| net.routers[r].effective_priority())
                .max()
            {
                let masters = net.masters();
                assert_eq!(
                    masters.len(),
                    1,
                    "case {case} step {step}: {:?}",
                    net.history
                );
                assert_eq!(
                    net.routers[masters[0]].effective_priority(),
                    top,
                    "case {case} step {step}: {:?}",
                    net.history
                );
            }
            let r = rng.gen_range(0..n);
            match rng.gen_range(0..4) {
                0 if net.up[r] => net.stop(r),
                1 if net.up[r] => net.crash(r),
                2 if net.up[r] => net.event(r, Event::Priority(rng.gen_range(1..=254))),
                _ if !net.up[r] => net.start(r),
                _ => {}
            }
        }
        let end = net.now;
        let split = net.longest_split(0, end);
        assert!(
            split <= longest_down,
            "case {case}: two masters for {split} µs (master-down {longest_down} µs)"
        );
    }
}

/// With 20% of adverts lost, a backup sometimes takes over wrongly; the real master's
/// immediate answer ends it within about one interval, and the right router is master
/// at the end.
#[test]
fn loss_causes_short_splits_only() {
    let mut net = pair(100, 150, Version::V3, 10, 20);
    net.loss = 0.2;
    net.start(0);
    net.start(1);
    net.run_until(600 * S);
    let split = net.longest_split(0, 600 * S);
    assert!(split <= 3 * 100 * MS, "{split}");
    net.loss = 0.0;
    net.run_until(601 * S);
    assert_eq!(net.masters(), vec![1]);
}

/// Takeovers by the backup over ten minutes at 30 % loss, with the master sending
/// `copies` adverts per interval (VRRPv3, 0.2 s: the loss benchmark's timers).
fn takeovers_at_30_percent(copies: u32) -> usize {
    let mut net = pair(254, 253, Version::V3, 20, 7);
    for r in &mut net.routers {
        let mut s = r.settings().clone();
        s.advert_copies = copies;
        *r = Instance::new(s);
    }
    net.start(0);
    net.start(1);
    net.run_until(5 * S);
    assert_eq!(net.masters(), vec![0]);
    net.loss = 0.3;
    net.run_until(605 * S);
    let split = net.longest_split(5 * S, 605 * S);
    assert!(split <= 3 * 200 * MS, "{split}");
    net.history
        .iter()
        .filter(|(t, r, s)| *t > 5 * S && *r == 1 && *s == State::Master)
        .count()
}

/// Two adverts per interval make a takeover need six losses in a row instead of
/// three: at 30 % loss, some 2.7 % of intervals against 0.07 %.
#[test]
fn advert_copies_make_up_for_lost_adverts() {
    let (one, two) = (takeovers_at_30_percent(1), takeovers_at_30_percent(2));
    assert!(
        one >= 20,
        "keepalived's rate: {one} takeovers in 10 minutes"
    );
    assert!(
        two * 10 <= one,
        "two copies: {two} takeovers, one copy: {one}"
    );
}

/// Equal priorities: at a common start the higher address wins; a router joining later
/// with the same priority leaves the running master alone (RFC 5798 §6.4.2: a backup
/// resets its timer on an advert of greater *or equal* priority).
#[test]
fn equal_priorities_elect_the_higher_address_but_do_not_preempt() {
    let mut net = pair(100, 100, Version::V3, 10, 11);
    net.start(0);
    net.start(1);
    net.run_until(3 * S);
    assert_eq!(net.masters(), vec![1]);
    let mut net = pair(100, 100, Version::V3, 10, 12);
    net.start(0);
    net.run_until(3 * S);
    net.start(1);
    net.run_until(30 * S);
    assert_eq!(net.masters(), vec![0]);
    assert_eq!(net.history.len(), 3, "{:?}", net.history);
}

/// A backup that takes over from a lower priority says it preempted, not that the
/// master went silent.
#[test]
fn a_preemption_is_logged_as_one() {
    let mut i = Instance::new(settings(1, 150, Version::V3, 10));
    i.handle(0, Event::Start);
    let lower = Advert {
        priority: 100,
        ..i.advert(100)
    };
    i.handle(
        10 * MS,
        Event::Advert {
            from: IpAddr::from([192, 0, 2, 2]),
            ttl: 255,
            advert: lower,
        },
    );
    let d = i.deadline().unwrap();
    let out = i.handle(d, Event::Timer);
    let cause = out
        .iter()
        .find_map(|a| match a {
            Action::Changed { cause, .. } => Some(cause.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        cause,
        "preempting the lower-priority master 192.0.2.2 (100, ours 150)"
    );
}
