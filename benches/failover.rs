//! Failover benchmark: lvs-director against keepalived (VRRP), side by side in one run.
//!
//! Run as root on the host (no IPVS needed; keepalived 2.2.7 installed):
//!
//! ```text
//! cargo bench --bench failover              # 20 rounds per configuration
//! BENCH_ROUNDS=5 cargo bench --bench failover
//! BENCH_FAST_ONLY=1 cargo bench --bench failover   # only the 0.1 s configurations
//! ```
//!
//! Topology (`tests/common/netns.rs`): directors A (10.77.0.1) and B (.2) and a client
//! (.10) in namespaces on one bridge; each director serves "who am I" over HTTP on
//! 0.0.0.0:80; the VIP 10.77.0.100/24 floats on eth0. A round: start A and B, wait
//! until A holds the VIP and B stands by and the client is answered by A, SIGKILL A's
//! whole process group, and measure until the first client connection to the VIP
//! answered by B (the kill comes at a random point of the heartbeat period). The client tries a connection (20 ms connect timeout) every 10 ms, so
//! a figure is accurate to about 10 ms. A killed director leaves its VIP and its web
//! server behind, so the client moves only when B's gratuitous ARP arrives.
//!
//! Configurations, alternated round by round:
//! - ours keepalive 1 / deadtime 3, ours VRRPv2 advert_int 1, and keepalived VRRPv2
//!   advert_int 1;
//! - ours keepalive 0.1 / deadtime 0.3, ours VRRPv3 advert_int 0.1, and keepalived
//!   VRRPv3 advert_int 0.1.
//!
//! "ours VRRP" is `lvs-director pulse` on both directors with a `vrrp` block carrying
//! exactly the keepalived configuration's timers, priorities and unicast peers: the
//! same protocol at equal timers, so the figures compare the implementations.
//!
//! keepalived runs unicast (unicast_src_ip / unicast_peer), VRRP part only. Equal dead
//! intervals: keepalived's backup declares the master down after 3 × advert_int +
//! skew, skew = (256 - priority) / 256 × advert_int; B's priority 253 makes the skew
//! 1.2 % of advert_int, so 3.01 × advert against our deadtime = 3 × keepalive.
//!
//! Without `--bench` (as under `cargo test --all-targets`) it checks its configuration
//! and statistics code only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

#[path = "../tests/common/netns.rs"]
mod netns;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netns::{
    http_get, keepalived_conf, key_file, last_state, ours_vrrp_conf, spawn_in, wait_for, Lab, Node,
    PairConfig, Proc, VIP,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    Ours {
        keepalive: &'static str,
        deadtime: &'static str,
    },
    Keepalived {
        version: u8,
        advert: &'static str,
    },
    OursVrrp {
        version: u8,
        advert: &'static str,
    },
}

impl Setup {
    fn label(&self) -> String {
        match self {
            Setup::Ours {
                keepalive,
                deadtime,
            } => format!("lvs-director keepalive {keepalive} / deadtime {deadtime}"),
            Setup::Keepalived { version, advert } => {
                format!("keepalived VRRPv{version} advert_int {advert}")
            }
            Setup::OursVrrp { version, advert } => {
                format!("lvs-director VRRPv{version} advert_int {advert}")
            }
        }
    }
}

/// How many of [`SETUPS`] (the first ones) use 1 s timers.
const SLOW: usize = 3;

const SETUPS: [Setup; 6] = [
    Setup::Ours {
        keepalive: "1",
        deadtime: "3",
    },
    Setup::OursVrrp {
        version: 2,
        advert: "1",
    },
    Setup::Keepalived {
        version: 2,
        advert: "1",
    },
    Setup::Ours {
        keepalive: "0.1",
        deadtime: "0.3",
    },
    Setup::OursVrrp {
        version: 3,
        advert: "0.1",
    },
    Setup::Keepalived {
        version: 3,
        advert: "0.1",
    },
];

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty());
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The client: one connection attempt every 10 ms from the client namespace; every
/// answer with its time.
struct Client {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<(Instant, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn start(lab: &Lab) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (flag, out) = (stop.clone(), answers.clone());
        let thread = spawn_in(&lab.ns(Node::Client), move || {
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if let Some(who) = http_get(VIP, 80, Duration::from_millis(20)) {
                    out.lock().unwrap().push((Instant::now(), who));
                }
                next += Duration::from_millis(10);
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        });
        Client {
            stop,
            answers,
            thread: Some(thread),
        }
    }

    /// The first answer by `who` at or after `since`.
    fn first(&self, who: &str, since: Instant) -> Option<Instant> {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .find(|(t, w)| *t >= since && w == who)
            .map(|(t, _)| *t)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn drop_vip(lab: &Lab, n: Node) {
    let cidr = format!("{VIP}/24");
    let _ = std::process::Command::new("ip")
        .args(["-n", &lab.ns(n), "addr", "del", &cidr, "dev", "eth0"])
        .stderr(std::process::Stdio::null())
        .status();
}

/// One failover; the time from SIGKILL to B's first answer.
fn round(lab: &Lab, setup: Setup, i: usize, client: &Client) -> Result<Duration, String> {
    drop_vip(lab, Node::A);
    drop_vip(lab, Node::B);
    let (a, b): (Proc, Proc) = match setup {
        Setup::Ours {
            keepalive,
            deadtime,
        } => {
            let cfg = PairConfig {
                keepalive,
                deadtime,
                key_file: Some(lab.path("hb.key")),
                ..PairConfig::default()
            }
            .render();
            let b = lab.pulse(Node::B, &format!("ours{keepalive}-b-{i}"), &cfg);
            let a = lab.pulse(Node::A, &format!("ours{keepalive}-a-{i}"), &cfg);
            lab.wait_role(&a, "active", Duration::from_secs(10));
            lab.wait_role(&b, "standby", Duration::from_secs(10));
            (a, b)
        }
        Setup::Keepalived { version, advert } => {
            let start = |n: Node, peer: Node, master: bool| {
                let name = format!("ka{version}-{}-{i}", n.short());
                lab.keepalived(n, &name, &keepalived_conf(version, advert, n, peer, master))
            };
            let b = start(Node::B, Node::A, false);
            let a = start(Node::A, Node::B, true);
            // B may become master first (A starts later than B's master-down interval
            // of 0.3 s) and yield to A's higher priority: wait for the settled state,
            // then check that it holds for a few advert intervals.
            let settled = || {
                last_state(&lab.log_of(&a)) == Some("MASTER")
                    && last_state(&lab.log_of(&b)) == Some("BACKUP")
                    && lab.has_addr(Node::A, VIP)
                    && !lab.has_addr(Node::B, VIP)
            };
            wait_for(
                Duration::from_secs(15),
                "keepalived A master, B backup",
                || settled().then_some(()),
            );
            let adv = Duration::from_secs_f64(advert.parse().unwrap());
            std::thread::sleep(adv * 2 + Duration::from_millis(100));
            if !settled() {
                lab.kill(&a);
                lab.kill(&b);
                return Err("keepalived did not settle with A master".into());
            }
            (a, b)
        }
        Setup::OursVrrp { version, advert } => {
            let start = |n: Node, peer: Node, master: bool| {
                let name = format!("vrrp{version}-{}-{i}", n.short());
                lab.pulse(n, &name, &ours_vrrp_conf(version, advert, n, peer, master))
            };
            let b = start(Node::B, Node::A, false);
            let a = start(Node::A, Node::B, true);
            let state = |p: &Proc| {
                lab.status(p)
                    .and_then(|s| s.vrrp.first().map(|v| v.state.clone()))
            };
            wait_for(
                Duration::from_secs(15),
                "lvs-director A master, B backup",
                || {
                    (state(&a).as_deref() == Some("MASTER")
                        && state(&b).as_deref() == Some("BACKUP")
                        && lab.has_addr(Node::A, VIP)
                        && !lab.has_addr(Node::B, VIP))
                    .then_some(())
                },
            );
            (a, b)
        }
    };
    let warm = Instant::now();
    wait_for(Duration::from_secs(10), "A answering on the VIP", || {
        client.first("director-a", warm).map(|_| ())
    });
    if lab.has_addr(Node::B, VIP) {
        lab.kill(&a);
        lab.kill(&b);
        return Err("B holds the VIP before the kill".into());
    }
    // A few answers by A in a row, so the client's neighbour entry is A's; then a
    // random phase against the heartbeat / advert period, so that the kill does not
    // always fall at the same point of it.
    let period = match setup {
        Setup::Ours { keepalive: p, .. }
        | Setup::Keepalived { advert: p, .. }
        | Setup::OursVrrp { advert: p, .. } => p.parse::<f64>().unwrap(),
    };
    std::thread::sleep(Duration::from_secs_f64(
        0.05 + rand::random::<f64>() * period,
    ));
    let t0 = Instant::now();
    lab.kill(&a);
    let got = wait_for(Duration::from_secs(20), "an answer by B", || {
        client.first("director-b", t0)
    });
    lab.kill(&b);
    Ok(got - t0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        let conf = keepalived_conf(3, "0.1", Node::A, Node::B, true);
        assert!(conf.contains("vrrp_version 3") && conf.contains("advert_int 0.1"));
        assert!(conf.contains("unicast_peer {\n        10.77.0.2\n"));
        assert!(!keepalived_conf(2, "1", Node::B, Node::A, false).contains("vrrp_version"));
        // The vrrp block reads, validates, and carries keepalived's settings.
        let ours = ours_vrrp_conf(3, "0.1", Node::A, Node::B, true);
        let parsed = lvs_director::config::parse(&ours).unwrap();
        let errors: Vec<_> = lvs_director::config::validate(&parsed.config)
            .into_iter()
            .filter(|d| d.severity == lvs_director::config::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{ours}");
        let v = &parsed.config.vrrp[0].settings;
        assert_eq!((v.priority, v.virtual_router_id), (Some(254), Some(77)));
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(
            (
                percentile(&s, 50.0),
                percentile(&s, 90.0),
                percentile(&s, 99.0)
            ),
            (10.0, 18.0, 20.0)
        );
        println!(
            "failover bench self-check ok; measure with `cargo bench --bench failover` as root"
        );
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench: needs root (network namespaces)");
        std::process::exit(2);
    }
    let failures = measure();
    if failures > 0 {
        eprintln!("bench: {failures} round(s) failed");
        std::process::exit(1);
    }
}

/// Runs every round and prints the figures; the number of failed rounds. The lab is
/// gone (namespaces, processes) when it returns.
fn measure() -> usize {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let fast_only = std::env::var_os("BENCH_FAST_ONLY").is_some();
    let lab = Lab::new("bench", &[Node::A, Node::B, Node::Client]);
    key_file(&lab, b"a shared heartbeat key for the bench");
    let _web = [lab.responder(Node::A), lab.responder(Node::B)];
    let client = Client::start(&lab);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); SETUPS.len()];
    let mut failures = 0;
    let started = Instant::now();
    for i in 0..rounds {
        for (k, setup) in SETUPS.iter().enumerate() {
            if fast_only && k < SLOW {
                continue;
            }
            match round(&lab, *setup, i, &client) {
                Ok(d) => {
                    let ms = d.as_secs_f64() * 1000.0;
                    eprintln!("round {i:2} {:<45} {ms:8.1} ms", setup.label());
                    samples[k].push(ms);
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("round {i:2} {:<45} FAILED: {e}", setup.label());
                }
            }
            client.answers.lock().unwrap().clear();
        }
    }
    drop(client);
    println!(
        "\nBENCH failover: SIGKILL of the active -> first client connection answered by the backup ({rounds} rounds, {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<45} {:>4} {:>8} {:>8} {:>8} {:>8}",
        "configuration", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut stats = Vec::new();
    for (k, setup) in SETUPS.iter().enumerate() {
        let mut s = samples[k].clone();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            println!("{:<45} {:>4} no sample", setup.label(), 0);
            stats.push(None);
            continue;
        }
        let st = (
            percentile(&s, 50.0),
            percentile(&s, 90.0),
            percentile(&s, 99.0),
            s[s.len() - 1],
        );
        println!(
            "{:<45} {:>4} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            setup.label(),
            s.len(),
            st.0,
            st.1,
            st.2,
            st.3
        );
        stats.push(Some(st));
    }
    for (ours, theirs) in [(0, 2), (1, 2), (3, 5), (4, 5)] {
        if let (Some(o), Some(t)) = (stats[ours], stats[theirs]) {
            println!(
                "ratio ours/keepalived, {} vs {}: p50 {:.2}, p99 {:.2}",
                SETUPS[ours].label(),
                SETUPS[theirs].label(),
                o.0 / t.0,
                o.2 / t.2
            );
        }
    }
    failures
}
