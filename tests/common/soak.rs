//! The soak shared by `tests/soak.rs` (two minutes, in the suite) and `benches/soak.rs`
//! (30 minutes by default): a pair of directors (admin UI and supervisor each, as
//! `tests/cluster.rs` runs them) in namespaces, health-checking two real servers on
//! `VIRTUALS` virtual servers every second, one of the real servers flapping (10 s
//! up, 10 s down), an Apply on A every 10 s (which B takes through sync), and 64
//! clients polling A's monitoring page every second. Sampled every second: RSS and
//! open descriptors of the four processes. Measured at the steady real server: when
//! each director's checks arrive (their jitter against the 1 s interval). Counted:
//! heartbeats sent by each director and accepted by the other.
//!
//! This host's kernel has no IPVS, so both directors report a fault (active virtual
//! servers and no IPVS) and neither holds the address: the processes do all their
//! work except programming the kernel, which the lab VM covers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::netns::{key_file, spawn_in, Lab, Node, PairConfig, Proc};
use crate::director::Director;
use crate::raw_http;

const SECOND: Duration = Duration::from_secs(1);
const PASSWORD: &str = "a-soak-test-password";
const CLIENTS: usize = 64;
const FIRST_PORT: u16 = 7200;

/// One process's samples: (seconds since the start, RSS in KiB, open descriptors).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub name: String,
    pub points: Vec<(f64, u64, usize)>,
}

impl Samples {
    /// Least-squares slope of `f` over the points after `from` seconds, per minute.
    fn slope(&self, from: f64, f: impl Fn(&(f64, u64, usize)) -> f64) -> f64 {
        let pts: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| p.0 >= from)
            .map(|p| (p.0, f(p)))
            .collect();
        let n = pts.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let (mx, my) = (sx / n, sy / n);
        let (num, den) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
            (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
        });
        if den == 0.0 {
            0.0
        } else {
            num / den * 60.0
        }
    }

    /// RSS slope in MiB per minute after `from` seconds.
    pub fn rss_slope(&self, from: f64) -> f64 {
        self.slope(from, |p| p.1 as f64 / 1024.0)
    }

    /// Descriptor slope per minute after `from` seconds.
    pub fn fd_slope(&self, from: f64) -> f64 {
        self.slope(from, |p| p.2 as f64)
    }

    /// (min, max) of the descriptors after `from` seconds.
    pub fn fd_range(&self, from: f64) -> (usize, usize) {
        let v = self.points.iter().filter(|p| p.0 >= from).map(|p| p.2);
        (v.clone().min().unwrap_or(0), v.max().unwrap_or(0))
    }

    /// (first, last) RSS in MiB after `from` seconds.
    pub fn rss_range(&self, from: f64) -> (f64, f64) {
        let v: Vec<f64> = self
            .points
            .iter()
            .filter(|p| p.0 >= from)
            .map(|p| p.1 as f64 / 1024.0)
            .collect();
        (
            v.first().copied().unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0),
        )
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub seconds: f64,
    pub processes: Vec<Samples>,
    /// |interval − 1 s| of each director's consecutive checks of the steady real
    /// server, in ms, sorted.
    pub jitter_ms: Vec<f64>,
    /// Checks of the steady real server per director.
    pub checks: HashMap<IpAddr, usize>,
    /// (sent by A, accepted by B, sent by B, accepted by A) over the run.
    pub heartbeats: (u64, u64, u64, u64),
    pub failovers: u64,
    pub applies: usize,
    pub failed_applies: Vec<String>,
    /// Page loads by status, and their latencies in ms (sorted).
    pub pages: HashMap<u16, usize>,
    pub page_ms: Vec<f64>,
    /// p50 page latency in ms in the first and the last tenth of the run.
    pub page_p50_first_last: (f64, f64),
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

impl Report {
    pub fn jitter_p99(&self) -> f64 {
        percentile(&self.jitter_ms, 99.0)
    }

    pub fn page_p99(&self) -> f64 {
        percentile(&self.page_ms, 99.0)
    }

    pub fn print(&self) {
        let warm = self.seconds / 2.0;
        println!(
            "soak: {:.0} s; {} applies ({} failed); pages {:?}, p99 {:.0} ms, p50 first/last tenth {:.0}/{:.0} ms",
            self.seconds,
            self.applies,
            self.failed_applies.len(),
            self.pages,
            self.page_p99(),
            self.page_p50_first_last.0,
            self.page_p50_first_last.1
        );
        println!(
            "soak: checks of the steady real server {:?}, jitter p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.checks,
            percentile(&self.jitter_ms, 50.0),
            self.jitter_p99(),
            self.jitter_ms.last().copied().unwrap_or(f64::NAN)
        );
        let (sa, ab, sb, aa) = self.heartbeats;
        println!(
            "soak: heartbeats A->B {sa} sent, {ab} accepted; B->A {sb} sent, {aa} accepted; failovers {}",
            self.failovers
        );
        for p in &self.processes {
            let (r0, r1) = p.rss_range(warm);
            let (f0, f1) = p.fd_range(warm);
            println!(
                "soak: {:<8} second half: RSS {r0:.1} -> {r1:.1} MiB (slope {:+.3} MiB/min), descriptors {f0}..{f1} (slope {:+.2}/min)",
                p.name,
                p.rss_slope(warm),
                p.fd_slope(warm)
            );
        }
    }
}

/// A TCP acceptor that writes down who connected when; closed when `stop` is set.
fn acceptor(
    lab: &Lab,
    node: Node,
    port: u16,
    seen: Arc<Mutex<Vec<(IpAddr, Instant)>>>,
    stop: Arc<AtomicBool>,
    flap: bool,
) -> std::thread::JoinHandle<()> {
    spawn_in(&lab.ns(node), move || {
        let started = Instant::now();
        let mut listener: Option<TcpListener> = None;
        while !stop.load(Ordering::Relaxed) {
            let phase_up = !flap || (started.elapsed().as_secs() / 10) % 2 == 0;
            if phase_up && listener.is_none() {
                let l = TcpListener::bind(("0.0.0.0", port)).expect("bind a real server");
                l.set_nonblocking(true).unwrap();
                listener = Some(l);
            } else if !phase_up && listener.is_some() {
                listener = None;
            }
            if let Some(l) = &listener {
                while let Ok((s, from)) = l.accept() {
                    seen.lock().unwrap().push((from.ip(), Instant::now()));
                    drop(s);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

fn config(base: &str, virtuals: usize, weight: u32) -> String {
    let mut s = base.to_string();
    for v in 0..virtuals {
        let port = FIRST_PORT + v as u16;
        s += &format!(
            "virtual v{v} {{\n    active = 1\n    address = 10.77.0.200 eth0\n    vip_nmask = 255.255.255.0\n    port = {port}\n    check = tcp\n    check_interval = 1\n    timeout = 0.5\n"
        );
        for (name, node, w) in [("rs1", Node::Rs1, weight), ("rs2", Node::Rs2, 1)] {
            s += &format!(
                "    server {name} {{\n        address = {}\n        active = 1\n        weight = {w}\n    }}\n",
                node.ip()
            );
        }
        s += "}\n";
    }
    s
}

fn rss_and_fds(pid: i32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// Runs the soak for `span` with `virtuals` virtual servers.
pub fn soak(span: Duration, virtuals: usize) -> Report {
    let lab = Lab::new("soak", &[Node::A, Node::B, Node::Rs1, Node::Rs2]);
    let key = key_file(&lab, b"a shared heartbeat key for the soak");
    let base = PairConfig {
        keepalive: "0.2",
        deadtime: "1",
        key_file: Some(key),
        ..PairConfig::default()
    }
    .render();
    let stop = Arc::new(AtomicBool::new(false));
    let steady = Arc::new(Mutex::new(Vec::new()));
    let mut servers = Vec::new();
    for v in 0..virtuals {
        let port = FIRST_PORT + v as u16;
        let seen = if v == 0 {
            steady.clone()
        } else {
            Arc::new(Mutex::new(Vec::new()))
        };
        servers.push(acceptor(&lab, Node::Rs1, port, seen, stop.clone(), false));
        let flapping = Arc::new(Mutex::new(Vec::new()));
        servers.push(acceptor(
            &lab,
            Node::Rs2,
            port,
            flapping,
            stop.clone(),
            true,
        ));
    }
    let (a, b) = (Director::new(&lab, Node::A), Director::new(&lab, Node::B));
    let mut weight = 1;
    for d in [&a, &b] {
        let (code, out, err) = d.apply(&lab, &config(&base, virtuals, weight));
        assert_eq!(code, 0, "{out}{err}");
    }
    let procs: Vec<(String, Proc)> = vec![
        ("pulse A".into(), a.pulse(&lab)),
        ("pulse B".into(), b.pulse(&lab)),
        ("web A".into(), a.web(&lab)),
        ("web B".into(), b.web(&lab)),
    ];
    for d in [&a, &b] {
        d.wait_in_step(&lab, 20 * SECOND);
    }
    let (code, _, err) = a.cli_with_input(&lab, &["passwd", "admin"], &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "passwd: {err}");
    let cookies = spawn_in(&lab.ns(Node::A), || {
        let mut c = raw_http::Client {
            port: 3636,
            cookies: Default::default(),
        };
        let r = c.login("admin", PASSWORD);
        assert_eq!(r.status, 200, "login: {}", r.body);
        c.cookies
    })
    .join()
    .unwrap();
    // Asked directly: `lvs-director status` exits non-zero for a director in fault.
    let hb = |p: &Proc| {
        use lvs_director::pulse::logic::control::{request, Request};
        let r = request(&p.socket, &Request::Status, 5 * SECOND).expect("a supervisor's status");
        let s = r.status.expect("a status in the reply");
        (
            s.heartbeat.sent,
            s.heartbeat.accepted,
            s.heartbeat.failovers,
        )
    };
    let (a0, b0) = (hb(&procs[0].1), hb(&procs[1].1));

    let t0 = Instant::now();
    let deadline = t0 + span;
    // The pollers.
    let pages = Arc::new(Mutex::new(Vec::<(f64, u16, f64)>::new()));
    let pollers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (pages, cookies) = (pages.clone(), cookies.clone());
            spawn_in(&lab.ns(Node::A), move || {
                let mut c = raw_http::Client {
                    port: 3636,
                    cookies,
                };
                // Spread over the second.
                std::thread::sleep(SECOND * i as u32 / CLIENTS as u32);
                let mut next = Instant::now();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = c.get("/control");
                    pages.lock().unwrap().push((
                        (t - t0).as_secs_f64(),
                        r.status,
                        t.elapsed().as_secs_f64() * 1000.0,
                    ));
                    next += SECOND;
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    } else {
                        next = Instant::now();
                    }
                }
            })
        })
        .collect();
    // The sampler and the Applies, on this thread.
    let mut samples: Vec<Samples> = procs
        .iter()
        .map(|(n, _)| Samples {
            name: n.clone(),
            points: Vec::new(),
        })
        .collect();
    let mut applies = 0;
    let mut failed_applies = Vec::new();
    let mut next_apply = t0 + 10 * SECOND;
    while Instant::now() < deadline {
        let at = t0.elapsed().as_secs_f64();
        for (s, (_, p)) in samples.iter_mut().zip(&procs) {
            let (rss, fds) = rss_and_fds(p.pid)
                .unwrap_or_else(|| panic!("{} is gone: {}", s.name, lab.log_of(p)));
            s.points.push((at, rss, fds));
        }
        if Instant::now() >= next_apply {
            weight = 3 - weight;
            let (code, out, err) = a.apply(&lab, &config(&base, virtuals, weight));
            applies += 1;
            if code != 0 {
                failed_applies.push(format!("{out}{err}"));
            }
            next_apply += 10 * SECOND;
        }
        std::thread::sleep(SECOND);
    }
    let seconds = t0.elapsed().as_secs_f64();
    for p in pollers {
        p.join().unwrap();
    }
    let (a1, b1) = (hb(&procs[0].1), hb(&procs[1].1));
    stop.store(true, Ordering::Relaxed);
    for s in servers {
        s.join().unwrap();
    }

    let mut by_director: HashMap<IpAddr, Vec<Instant>> = HashMap::new();
    for (ip, t) in steady.lock().unwrap().iter() {
        if *t >= t0 && *t <= deadline {
            by_director.entry(*ip).or_default().push(*t);
        }
    }
    let mut jitter_ms = Vec::new();
    let mut checks = HashMap::new();
    for (ip, times) in &by_director {
        checks.insert(*ip, times.len());
        for w in times.windows(2) {
            let gap = (w[1] - w[0]).as_secs_f64() * 1000.0;
            jitter_ms.push((gap - 1000.0).abs());
        }
    }
    jitter_ms.sort_by(f64::total_cmp);
    let pages = pages.lock().unwrap().clone();
    let mut by_status = HashMap::new();
    for (_, s, _) in &pages {
        *by_status.entry(*s).or_insert(0) += 1;
    }
    let tenth = seconds / 10.0;
    let p50_of = |from: f64, to: f64| {
        let mut v: Vec<f64> = pages
            .iter()
            .filter(|(t, _, _)| *t >= from && *t < to)
            .map(|(_, _, ms)| *ms)
            .collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 50.0)
    };
    let mut page_ms: Vec<f64> = pages.iter().map(|(_, _, ms)| *ms).collect();
    page_ms.sort_by(f64::total_cmp);
    Report {
        seconds,
        processes: samples,
        jitter_ms,
        checks,
        heartbeats: (a1.0 - a0.0, b1.1 - b0.1, b1.0 - b0.0, a1.1 - a0.1),
        failovers: (a1.2 - a0.2) + (b1.2 - b0.2),
        applies,
        failed_applies,
        pages: by_status,
        page_ms,
        page_p50_first_last: (p50_of(0.0, tenth), p50_of(seconds - tenth, seconds)),
    }
}
