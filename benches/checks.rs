//! Health-check scale: SERVICES x DESTS (default 1,000 x 10 = 10,000) real servers,
//! each a TCP listener on its own loopback address, checked every second by
//! `lvs-director pulse`.
//!
//! Runs on the host as root (`scripts/bench-checks.sh`), everything inside a network
//! namespace of its own that it removes again, even when it fails:
//!  1. generates the lvs.cf (standalone director, `check_interval = 1`, `timeout = 1`,
//!     `fall = 3`, `rise = 2`, real servers on 127.20.x.y:8080) and opens the 10,000
//!     listeners on a thread that entered the namespace (accept and drop);
//!  2. starts `ip netns exec NS lvs-director pulse` with RLIMIT_NOFILE of
//!     BENCH_PULSE_NOFILE (default 1024, the usual soft limit; `inherit` keeps the
//!     bench's raised one) and waits for `pulse started: …, 10000 check(s)`;
//!  3. steady state over BENCH_WINDOW_S (default 30) s: the supervisor's CPU
//!     (utime + stime from /proc/PID/stat over wall time, as a share of one core), its
//!     RSS and high-water mark, its open descriptors, the checks the listeners saw;
//!  4. closes the listeners of BENCH_KILLS (default 20) real servers spread over the
//!     table, one every 1.5 s, and times each death to its `server vsN/rsM: down:` log
//!     line (target: fall x interval + 1 s = 4 s); then reopens them and times the
//!     `up:` lines likewise (rise x interval).
//!
//! This kernel has no IPVS: the standalone director reports the fault "IPVS cannot be
//! programmed" and runs every health check all the same, which is what is measured
//! here. What a transition costs in IPVS is measured by benches/ipvs.rs in the lab VM.
//!
//! Without `--bench` (`cargo test --all-targets`) it only checks its generator and its
//! log parsing, quickly and without root. With `--bench` it prints `BENCH …` lines and
//! exits non-zero when a result is wrong (a missed or false detection, descriptors
//! exhausted, the supervisor gone), not when it is slow.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "common/host.rs"]
mod host;

const PORT: u16 = 8080;
const INTERVAL_MS: u64 = 1000;
const FALL: u64 = 3;
const RISE: u64 = 2;
const PACE: Duration = Duration::from_millis(1500);

fn vip(i: usize) -> String {
    format!("10.9.{}.{}", i / 250, i % 250 + 1)
}

fn subject(n: usize, dests: usize) -> String {
    format!("server vs{}/rs{}", n / dests, n % dests)
}

fn generate(services: usize, dests: usize) -> String {
    let mut cf = String::from(
        "serial_no = 1\nprimary = 127.0.0.1\nservice = lvs\nbackup_active = 0\nnetwork = direct\n",
    );
    for i in 0..services {
        cf += &format!(
            "virtual vs{i} {{\n active = 1\n address = {} lo\n port = {PORT}\n scheduler = wlc\n \
             check_interval = {}\n timeout = 1\n fall = {FALL}\n rise = {RISE}\n",
            vip(i),
            INTERVAL_MS / 1000
        );
        for j in 0..dests {
            cf += &format!(
                " server rs{j} {{\n  address = {}\n  active = 1\n }}\n",
                host::rip(i * dests + j)
            );
        }
        cf += "}\n";
    }
    cf
}

/// Microseconds since the epoch of an RFC 3339 UTC time as the log writes it
/// (`2026-11-22T04:14:53.374503Z`).
fn parse_utc_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = &s[19..s.len() - 1];
    let us = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()) => {
            let mut digits: String = f.chars().take(6).collect();
            while digits.len() < 6 {
                digits.push('0');
            }
            digits.parse::<i64>().ok()?
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000) + us)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Down,
    Up,
}

/// A health transition in the log: its time, subject (`server vs3/rs7`) and kind.
fn parse_transition(line: &str) -> Option<(i64, &str, Kind)> {
    let ts = parse_utc_us(line.split_whitespace().next()?)?;
    let at = line.find("lvsd: server ")? + "lvsd: ".len();
    let rest = &line[at..];
    let colon = rest.find(": ")?;
    let kind = match &rest[colon + 2..] {
        r if r.starts_with("down:") => Kind::Down,
        r if r.starts_with("up:") => Kind::Up,
        _ => return None,
    };
    Some((ts, &rest[..colon], kind))
}

fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64
}

fn main() {
    host::bench_main(self_check, run);
}

/// `cargo test --all-targets`: the generated lvs.cf loads as `pulse` loads it, its
/// addresses are distinct, and the log parsing reads the supervisor's lines.
fn self_check() {
    let cf = generate(3, 2);
    let (config, _warnings) = lvs_director::pulse::logic::node::load("checks.cf", &cf)
        .unwrap_or_else(|e| panic!("generated lvs.cf rejected:\n{}", e.join("\n")));
    assert_eq!(config.virtuals.len(), 3);
    assert_eq!(
        config
            .virtuals
            .iter()
            .map(|v| v.servers.len())
            .sum::<usize>(),
        6
    );
    let all: HashSet<Ipv4Addr> = (0..100_000).map(host::rip).collect();
    assert_eq!(all.len(), 100_000);
    assert!(all.iter().all(|a| a.is_loopback() && a.octets()[3] != 0));
    let vips: HashSet<String> = (0..10_000).map(vip).collect();
    assert_eq!(vips.len(), 10_000);
    assert_eq!(subject(1234, 10), "server vs123/rs4");

    let line = "2026-11-22T04:14:53.374503Z  WARN lvs_director::pulse::task::lvsd: server web/rs1: down: 3 consecutive failed check(s): connection refused";
    let (ts, who, kind) = parse_transition(line).expect("a down line");
    assert_eq!((who, kind), ("server web/rs1", Kind::Down));
    assert_eq!(ts, 1_795_320_893_374_503);
    let up = "2026-11-22T04:14:55Z  INFO lvs_director::pulse::task::lvsd: server vs0/rs9: up: 2 consecutive passed check(s)";
    assert_eq!(
        parse_transition(up),
        Some((1_795_320_895_000_000, "server vs0/rs9", Kind::Up))
    );
    assert_eq!(parse_utc_us("1970-01-01T00:00:00.5Z"), Some(500_000));
    assert_eq!(parse_transition("2026-11-22T04:14:55Z  INFO lvs_director::pulse::task::lvsd: server vs0/rs9: drained by an administrator"), None);
    let sorted = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(
        (
            host::percentile(&sorted, 50.0),
            host::percentile(&sorted, 99.0)
        ),
        (2.0, 4.0)
    );
    println!("bench generator and log parsing consistent; run scripts/bench-checks.sh to measure");
}

/// The namespace, the supervisor and the scratch directory: all removed on drop, so a
/// failure or a panic leaves nothing behind.
struct Guard {
    ns: String,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stderr(Stdio::null())
            .status();
        if std::env::var_os("BENCH_KEEP").is_some() {
            if let Some(d) = self.dir.take() {
                eprintln!("bench: kept {}", d.keep().display());
            }
        }
    }
}

enum Cmd {
    Close(usize, tokio::sync::oneshot::Sender<SystemTime>),
    Open(
        usize,
        tokio::sync::oneshot::Sender<Result<SystemTime, String>>,
    ),
}

/// The real servers: listeners on a thread that entered the namespace, served by a
/// current-thread runtime on that thread, so every socket (the reopened ones too) is
/// created in the namespace.
struct Listeners {
    cmds: tokio::sync::mpsc::UnboundedSender<Cmd>,
    accepted: Arc<AtomicU64>,
    accept_errors: Arc<AtomicU64>,
    thread_cpu: Arc<AtomicU64>,
}

impl Listeners {
    fn start(ns: &str, count: usize) -> Result<Listeners, String> {
        let path = format!("/run/netns/{ns}");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let accepted = Arc::new(AtomicU64::new(0));
        let accept_errors = Arc::new(AtomicU64::new(0));
        let thread_cpu = Arc::new(AtomicU64::new(0));
        let (a, e, cpu) = (accepted.clone(), accept_errors.clone(), thread_cpu.clone());
        std::thread::Builder::new()
            .name("listeners".into())
            .spawn(move || {
                let r = File::open(&path)
                    .map_err(|e| format!("{path}: {e}"))
                    .and_then(|fd| {
                        // SAFETY: setns on this thread only, with a valid descriptor.
                        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
                        if rc != 0 {
                            return Err(format!(
                                "setns {path}: {}",
                                std::io::Error::last_os_error()
                            ));
                        }
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| format!("runtime: {e}"))
                    });
                let rt = match r {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(serve_all(count, rx, ready_tx, a, e, cpu));
            })
            .map_err(|e| format!("listener thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "the listener thread died".to_string())??;
        Ok(Listeners {
            cmds: tx,
            accepted,
            accept_errors,
            thread_cpu,
        })
    }

    fn close(&self, n: usize) -> Result<SystemTime, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.cmds
            .send(Cmd::Close(n, tx))
            .map_err(|_| "the listener thread is gone")?;
        rx.blocking_recv()
            .map_err(|_| "the listener thread is gone".to_string())
    }

    fn open(&self, n: usize) -> Result<SystemTime, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.cmds
            .send(Cmd::Open(n, tx))
            .map_err(|_| "the listener thread is gone")?;
        rx.blocking_recv()
            .map_err(|_| "the listener thread is gone".to_string())?
    }

    /// CPU time of the listener thread so far, in microseconds (updated every 250 ms).
    fn cpu_us(&self) -> u64 {
        self.thread_cpu.load(Ordering::Relaxed)
    }
}

fn bind(n: usize) -> Result<tokio::net::TcpListener, String> {
    let addr = SocketAddr::from((host::rip(n), PORT));
    let s = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    s.set_reuseaddr(true).map_err(|e| e.to_string())?;
    s.bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    s.listen(1024).map_err(|e| format!("listen {addr}: {e}"))
}

fn spawn_server(
    l: tokio::net::TcpListener,
    accepted: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match l.accept().await {
                Ok((s, _)) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    drop(s);
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

async fn serve_all(
    count: usize,
    mut cmds: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
    accepted: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    cpu: Arc<AtomicU64>,
) {
    let mut servers = Vec::with_capacity(count);
    for n in 0..count {
        match bind(n) {
            Ok(l) => servers.push(Some(spawn_server(l, accepted.clone(), errors.clone()))),
            Err(e) => {
                let _ = ready.send(Err(format!("listener {n} of {count}: {e}")));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            c = cmds.recv() => match c {
                None => return,
                Some(Cmd::Close(n, reply)) => {
                    if let Some(task) = servers[n].take() {
                        task.abort();
                        // Returns once the task, and so the listener, has been dropped.
                        let _ = task.await;
                    }
                    let _ = reply.send(SystemTime::now());
                }
                Some(Cmd::Open(n, reply)) => {
                    let r = bind(n).map(|l| {
                        servers[n] = Some(spawn_server(l, accepted.clone(), errors.clone()));
                        SystemTime::now()
                    });
                    let _ = reply.send(r);
                }
            },
            _ = tick.tick() => cpu.store(thread_cpu_us(), Ordering::Relaxed),
        }
    }
}

/// What /proc says about the supervisor.
struct Proc(u32);

impl Proc {
    fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.0)).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    /// utime + stime, in seconds.
    fn cpu_s(&self) -> Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0))
            .map_err(|e| format!("the supervisor is gone: {e}"))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the command: state is field 3, utime 14 and stime 15 (man 5 proc).
        let tick = |i: usize| -> Result<f64, String> {
            fields
                .get(i - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| format!("/proc/{}/stat: no field {i}", self.0))
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Ok((tick(14)? + tick(15)?) / hz)
    }

    /// A field of /proc/PID/status in kB (VmRSS, VmHWM) or as a count (Threads).
    fn status(&self, field: &str) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.0)).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// utime and stime in seconds of each thread, by thread name (summed per name).
    fn threads_cpu(&self) -> HashMap<String, (f64, f64)> {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut out: HashMap<String, (f64, f64)> = HashMap::new();
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.0)) else {
            return out;
        };
        for t in dir.flatten() {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_string();
            let f: Vec<f64> = stat[close + 1..]
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0.0))
                .collect();
            if f.len() > 12 {
                let e = out.entry(name).or_default();
                e.0 += f[11] / hz;
                e.1 += f[12] / hz;
            }
        }
        out
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.0))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// Busy (steal excluded), stolen and total jiffies of the whole host (all CPUs), to
/// show interference.
fn host_jiffies() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let steal = v.get(7).copied().unwrap_or(0);
    (total - idle - steal, steal, total)
}

fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Sleeps for `d` while watching the supervisor: the most descriptors it held.
fn watch(p: &Proc, d: Duration, max_fds: &mut usize) -> Result<(), String> {
    let end = Instant::now() + d;
    loop {
        if !p.alive() {
            return Err("the supervisor exited".into());
        }
        *max_fds = (*max_fds).max(p.fds());
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(250)));
    }
}

/// The first transition of `kind` for each subject at or after its time, waiting for
/// the log until `deadline`.
fn await_transitions(
    log: &Path,
    want: &[(String, i64)],
    kind: Kind,
    deadline: Instant,
    p: &Proc,
    max_fds: &mut usize,
) -> Result<Vec<Option<i64>>, String> {
    loop {
        let text = read_log(log);
        let mut found = vec![None; want.len()];
        let index: HashMap<&str, usize> = want
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s.as_str(), i))
            .collect();
        for (ts, who, k) in text.lines().filter_map(parse_transition) {
            if let Some(&i) = index.get(who) {
                if k == kind && ts >= want[i].1 && found[i].is_none() {
                    found[i] = Some(ts);
                }
            }
        }
        if found.iter().all(Option::is_some) || Instant::now() >= deadline {
            return Ok(found);
        }
        watch(p, Duration::from_millis(250), max_fds)?;
    }
}

fn stats(ms: &[f64]) -> (f64, f64, f64) {
    let mut s = ms.to_vec();
    s.sort_by(f64::total_cmp);
    (
        host::percentile(&s, 50.0),
        host::percentile(&s, 99.0),
        s.last().copied().unwrap_or(f64::NAN),
    )
}

fn run() -> Result<bool, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench: needs root (network namespace, 10,000 listeners): run scripts/bench-checks.sh as root");
        std::process::exit(2);
    }
    let services = host::env_or("BENCH_SERVICES", 1000);
    let dests = host::env_or("BENCH_DESTS", 10);
    let window = Duration::from_secs(host::env_or("BENCH_WINDOW_S", 30) as u64);
    let servers = services * dests;
    let kills = host::env_or("BENCH_KILLS", 20).min(servers);
    let pulse_nofile = match std::env::var("BENCH_PULSE_NOFILE").as_deref() {
        Ok("inherit") => None,
        Ok(v) => Some(
            v.parse::<u64>()
                .map_err(|_| format!("BENCH_PULSE_NOFILE={v}?"))?,
        ),
        Err(_) => Some(1024),
    };
    let bin = std::env::var_os("BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lvs-director")));
    let nofile = host::raise_nofile(servers as u64 * 2 + 10_000);
    if nofile < servers as u64 + 1000 {
        return Err(format!(
            "RLIMIT_NOFILE is {nofile} and cannot be raised: too few for {servers} listeners"
        ));
    }

    host::remove_stale_namespaces("bchk-");
    let dir = tempfile::Builder::new()
        .prefix("bench-checks-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let mut guard = Guard {
        ns: format!("bchk-{}", std::process::id()),
        child: None,
        dir: None,
    };
    host::ip(&["netns", "add", &guard.ns])?;
    host::ip(&["-n", &guard.ns, "link", "set", "lo", "up"])?;

    let cf_path = dir.path().join("lvs.cf");
    let log_path = dir.path().join("pulse.log");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).map_err(|e| e.to_string())?;
    std::fs::write(&cf_path, generate(services, dests)).map_err(|e| e.to_string())?;

    let t = Instant::now();
    let listeners = Listeners::start(&guard.ns, servers)?;
    println!(
        "bench: {servers} listeners on 127.20.x.y:{PORT} in namespace {} in {:.1} s (RLIMIT_NOFILE {nofile}); binary {}",
        guard.ns,
        t.elapsed().as_secs_f64(),
        bin.display()
    );

    let log = File::create(&log_path).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &guard.ns])
        .arg(&bin)
        .arg("pulse")
        .arg("--config")
        .arg(&cf_path)
        .arg("--control-socket")
        .arg(dir.path().join("ctl.sock"))
        .arg("--state-dir")
        .arg(&state)
        .env("LVS_DIRECTOR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    if let Some(limit) = pulse_nofile {
        // SAFETY: only getrlimit and setrlimit, which are async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut r = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
                r.rlim_cur = limit.min(r.rlim_max);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pulse = Proc(child.id());
    guard.child = Some(child);
    guard.dir = Some(dir);

    // Up: the `pulse started: …, N check(s)` line.
    let checks = loop {
        let text = read_log(&log_path);
        if let Some(l) = text.lines().find(|l| l.contains("pulse started:")) {
            let n = l
                .split(", ")
                .find_map(|p| p.strip_suffix(" check(s)"))
                .and_then(|n| n.parse::<usize>().ok());
            break n.ok_or_else(|| format!("cannot read the check count in: {l}"))?;
        }
        if !pulse.alive() || started.elapsed() > Duration::from_secs(120) {
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            return Err(format!(
                "the supervisor did not start:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let startup = started.elapsed();
    if checks != servers {
        return Err(format!("pulse runs {checks} check(s), expected {servers}"));
    }
    let mut max_fds = 0;
    let rss_started = pulse.status("VmRSS").unwrap_or(0);
    // Every check has run at least twice.
    watch(&pulse, Duration::from_millis(3 * INTERVAL_MS), &mut max_fds)?;

    // Steady state.
    let threads0 = pulse.threads_cpu();
    let (cpu0, acc0, host0, lcpu0) = (
        pulse.cpu_s()?,
        listeners.accepted.load(Ordering::Relaxed),
        host_jiffies(),
        listeners.cpu_us(),
    );
    let t0 = Instant::now();
    watch(&pulse, window, &mut max_fds)?;
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, acc1, host1, lcpu1) = (
        pulse.cpu_s()?,
        listeners.accepted.load(Ordering::Relaxed),
        host_jiffies(),
        listeners.cpu_us(),
    );
    let cpu_share = (cpu1 - cpu0) / wall * 100.0;
    let mut per_thread: Vec<(String, f64, f64)> = pulse
        .threads_cpu()
        .into_iter()
        .map(|(name, (u, s))| {
            let (u0, s0) = threads0.get(&name).copied().unwrap_or_default();
            (name, (u - u0) / wall * 100.0, (s - s0) / wall * 100.0)
        })
        .collect();
    per_thread.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)));
    let checks_per_s = (acc1 - acc0) as f64 / wall;
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let host_total = (host1.2 - host0.2).max(1) as f64;
    let host_busy = (host1.0 - host0.0) as f64 / host_total * 100.0 * ncpu;
    let host_steal = (host1.1 - host0.1) as f64 / host_total * 100.0 * ncpu;
    let listener_share = (lcpu1 - lcpu0) as f64 / 1e6 / wall * 100.0;
    let steady_fds = max_fds;
    let threads = pulse.status("Threads").unwrap_or(0);
    println!(
        "bench: steady state over {wall:.1} s: supervisor {cpu_share:.1}% of one core, {checks_per_s:.0} checks/s seen by the listeners \
         (expected {:.0}); listener thread {listener_share:.1}%, whole host {host_busy:.0}% of one core busy ({host_steal:.0}% more stolen by the hypervisor) on {ncpu} cores; {threads} threads, at most {steady_fds} descriptors",
        servers as f64 * 1000.0 / INTERVAL_MS as f64
    );

    println!(
        "bench: supervisor threads (user + sys % of one core): {}",
        per_thread
            .iter()
            .map(|(n, u, s)| format!("{n} {u:.1} + {s:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Deaths: one every 1.5 s, spread over the table.
    let victims: Vec<usize> = (0..kills)
        .map(|k| (k * (servers / kills) + k % dests) % servers)
        .collect();
    let churn_cpu0 = pulse.cpu_s()?;
    let churn_t0 = Instant::now();
    let mut deaths = Vec::new();
    for (k, &n) in victims.iter().enumerate() {
        if k > 0 {
            watch(&pulse, PACE, &mut max_fds)?;
        }
        deaths.push((subject(n, dests), unix_us(listeners.close(n)?)));
    }
    let budget_ms = (FALL * INTERVAL_MS + 1000) as f64;
    let downs = await_transitions(
        &log_path,
        &deaths,
        Kind::Down,
        Instant::now() + Duration::from_millis(FALL * INTERVAL_MS + 6000),
        &pulse,
        &mut max_fds,
    )?;
    // Returns.
    let mut returns = Vec::new();
    for (k, &n) in victims.iter().enumerate() {
        if k > 0 {
            watch(&pulse, PACE, &mut max_fds)?;
        }
        returns.push((subject(n, dests), unix_us(listeners.open(n)?)));
    }
    let ups = await_transitions(
        &log_path,
        &returns,
        Kind::Up,
        Instant::now() + Duration::from_millis(RISE * INTERVAL_MS + 6000),
        &pulse,
        &mut max_fds,
    )?;
    let churn_share = (pulse.cpu_s()? - churn_cpu0) / churn_t0.elapsed().as_secs_f64() * 100.0;
    let rss = pulse.status("VmRSS").unwrap_or(0) as f64 / 1024.0;
    let hwm = pulse.status("VmHWM").unwrap_or(0) as f64 / 1024.0;

    // Stop it cleanly.
    let mut child = guard.child.take().expect("started");
    // SAFETY: kill with our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stop_t = Instant::now();
    let exit = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if stop_t.elapsed() < Duration::from_secs(15) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stop_ms = stop_t.elapsed().as_secs_f64() * 1e3;

    // The verdict, from the whole log.
    let text = read_log(&log_path);
    let mut wrong = Vec::new();
    let mut detect = Vec::new();
    for ((who, at), found) in deaths.iter().zip(&downs) {
        match found {
            Some(ts) => detect.push((ts - at) as f64 / 1e3),
            None => wrong.push(format!("{who}: no `down` line after its listener closed")),
        }
    }
    let mut back = Vec::new();
    for ((who, at), found) in returns.iter().zip(&ups) {
        match found {
            Some(ts) => back.push((ts - at) as f64 / 1e3),
            None => wrong.push(format!("{who}: no `up` line after its listener reopened")),
        }
    }
    let victim_set: HashMap<&str, (i64, i64)> = deaths
        .iter()
        .zip(&returns)
        .map(|((w, d), (_, r))| (w.as_str(), (*d, *r)))
        .collect();
    let (mut downs_total, mut ups_total) = (0, 0);
    let mut unexpected: Vec<&str> = Vec::new();
    for line in text.lines() {
        let Some((ts, who, kind)) = parse_transition(line) else {
            continue;
        };
        match kind {
            Kind::Down => downs_total += 1,
            Kind::Up => ups_total += 1,
        }
        let expected = match (victim_set.get(who), kind) {
            (Some((d, r)), Kind::Down) => ts >= *d && ts < *r,
            (Some((_, r)), Kind::Up) => ts >= *r,
            (None, _) => false,
        };
        if !expected {
            unexpected.push(line);
        }
    }
    if !unexpected.is_empty() {
        wrong.push(format!(
            "{} transition(s) of servers that did not change ({downs_total} down and {ups_total} up lines in all for {kills} deaths and returns); the first: {}{}",
            unexpected.len(),
            unexpected[0],
            unexpected
                .iter()
                .find(|l| **l != unexpected[0] && !l.contains(": up:"))
                .map_or(String::new(), |l| format!("; another: {l}"))
        ));
    }
    let emfile: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Too many open files") || l.contains("os error 24"))
        .collect();
    if !emfile.is_empty() {
        wrong.push(format!(
            "the supervisor ran out of descriptors ({} line(s)), e.g.: {}",
            emfile.len(),
            emfile[0]
        ));
    }
    let unexplained: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.contains(" WARN ") || l.contains(" ERROR "))
                && parse_transition(l).is_none()
                && !l.contains("IPVS")
        })
        .collect();
    if listeners.accept_errors.load(Ordering::Relaxed) > 0 {
        wrong.push(format!(
            "{} accept errors on the listeners",
            listeners.accept_errors.load(Ordering::Relaxed)
        ));
    }
    match exit {
        Some(s) if s.success() => {}
        Some(s) => wrong.push(format!("the supervisor stopped with {s}")),
        None => wrong.push("the supervisor did not stop within 15 s of SIGTERM".into()),
    }

    let (d50, d99, dmax) = stats(&detect);
    let (r50, r99, rmax) = stats(&back);
    let lines = text.lines().count();
    println!(
        "bench: supervisor started in {:.1} s (RSS {:.0} MB then); stopped in {stop_ms:.0} ms; {lines} log lines in all",
        startup.as_secs_f64(),
        rss_started as f64 / 1024.0
    );
    println!(
        "bench: {} deaths detected in p50 {d50:.0} / p99 {d99:.0} / max {dmax:.0} ms (target {budget_ms:.0} ms: fall {FALL} x interval {INTERVAL_MS} ms + 1 s); \
         {} returns in p50 {r50:.0} / p99 {r99:.0} / max {rmax:.0} ms (rise {RISE} x interval); supervisor {churn_share:.1}% of one core meanwhile; at most {max_fds} descriptors overall",
        detect.len(),
        back.len()
    );
    let limit = |ok: bool| if ok { "ok" } else { "OVER TARGET" };
    println!(
        "bench: targets: CPU {cpu_share:.1}% < 20% {}; RSS {rss:.0} MB < 100 MB {}; p99 detection {d99:.0} ms <= {budget_ms:.0} ms {}",
        limit(cpu_share < 20.0),
        limit(rss < 100.0),
        limit(d99 <= budget_ms)
    );
    println!(
        "BENCH checks servers={servers} interval_ms={INTERVAL_MS} cpu_share_pct={cpu_share:.1} rss_mb={rss:.1} hwm_mb={hwm:.1} \
         detect_p50_ms={d50:.0} detect_p99_ms={d99:.0} detect_max_ms={dmax:.0} return_p50_ms={r50:.0} return_max_ms={rmax:.0} \
         checks_per_s={checks_per_s:.0} max_fds={max_fds} pulse_nofile={} startup_ms={:.0}",
        pulse_nofile.map_or("inherit".to_string(), |n| n.to_string()),
        startup.as_secs_f64() * 1e3
    );
    for l in unexplained.iter().take(10) {
        println!("bench: log: {l}");
    }
    if wrong.is_empty() {
        return Ok(true);
    }
    for w in &wrong {
        eprintln!("bench: WRONG: {w}");
    }
    Ok(false)
}
