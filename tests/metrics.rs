//! `/metrics` end to end: `lvs-director web` started as the binary with the metrics
//! options, scraped over real HTTP, the text read back by a strict reader of the
//! Prometheus exposition format (`tests/common/prom.rs`).
//!
//! - Against a small server speaking the supervisor's control protocol (JSON lines on
//!   a Unix socket) that answers a status built here: every value comes back, names
//!   with quotes and backslashes included; the bearer token on the main port and on
//!   the metrics listener; no `/metrics` on the main port without a token.
//! - As root, against the real `lvs-director pulse` in a network namespace (IPVS is
//!   not needed: its health checks run all the same): a real server's health, checks
//!   and failures as the supervisor counts them, and `lvs_director_supervisor_up 0`
//!   once it is gone.
//!
//! `SHOW_SCRAPE=1` prints every scrape. The kernel's counters are scraped with real
//! IPVS in the lab (`tests/lab/scenarios/22-pulse-metrics.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

mod common;

#[path = "common/prom.rs"]
mod prom;
#[path = "common/raw_http.rs"]
mod raw_http;

use raw_http::free_port;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::netns::{root_or_skip, Answer, Lab, Node, Server, BIN, VIP};
use lvs_director::pulse::logic::control::{
    self, HeartbeatStatus, NodeStatus, PeerStatus, Reply, ServerStatus, ServiceStatus, Status,
    Totals,
};

const TOKEN: &str = "s3cret-metrics-token-0123456789";

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 GET to 127.0.0.1:`port`, with `Authorization: <auth>` when given.
fn get(port: u16, path: &str, auth: Option<&str>) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (status, headers, body) = raw_http::split_response(&text);
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A scrape that must succeed; its families.
#[track_caller]
fn scrape(port: u16, auth: Option<&str>) -> Vec<prom::Family> {
    let r = get(port, "/metrics", auth);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    if std::env::var_os("SHOW_SCRAPE").is_some() {
        eprintln!("{}", r.body);
    }
    prom::parse(&r.body).unwrap_or_else(|e| panic!("{e} in:\n{}", r.body))
}

/// `lvs-director web` as a child process, killed on drop if still running.
struct Web {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Web {
    fn start(dir: &Path, socket: &Path, extra: &[&str]) -> Web {
        let port = free_port();
        let log = dir.join(format!("web-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .arg("--db")
            .arg(dir.join("director.db"))
            .arg("web")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--lvs-cf")
            .arg(dir.join("lvs.cf"))
            .arg("--control-socket")
            .arg(socket)
            .args(extra)
            .env_remove("LVS_DIRECTOR_METRICS_TOKEN_FILE")
            .env_remove("LVS_DIRECTOR_METRICS_LISTEN")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("lvs-director web starts");
        let w = Web { child, port, log };
        w.wait_port(port);
        w
    }

    /// Waits until `port` accepts connections.
    fn wait_port(&self, port: u16) {
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "nothing listens on {port}; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, and the exit status (both listeners close gracefully).
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "web did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} -----\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// A stand-in supervisor: answers every status request on `socket` with `status`.
struct FakeSupervisor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeSupervisor {
    fn start(socket: &Path, status: Status) -> FakeSupervisor {
        let listener = UnixListener::bind(socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                let mut line = String::new();
                if BufReader::new(&s).read_line(&mut line).is_err() {
                    continue;
                }
                let reply = match control::parse_request(&line) {
                    Ok(control::Request::Status) => Reply::status(status.clone()),
                    Ok(_) => Reply::refused("not in this test"),
                    Err(r) => r,
                };
                let mut out = serde_json::to_vec(&reply).unwrap();
                out.push(b'\n');
                let _ = (&s).write_all(&out);
            }
        });
        FakeSupervisor {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeSupervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const NASTY: &str = "we\"b\\1";

fn built_status() -> Status {
    Status {
        version: "9.9.9".into(),
        node: NodeStatus {
            name: "lb1".into(),
            place: "primary".into(),
            role: "active".into(),
            role_since_unix_ms: 1_700_000_000_000,
            serial: 17,
            ipvs: "available".into(),
            ..Default::default()
        },
        peer: Some(PeerStatus {
            name: "lb2".into(),
            state: "standby".into(),
            last_heard_ms_ago: 1500,
            alive: true,
            ..Default::default()
        }),
        heartbeat: HeartbeatStatus {
            authenticated: true,
            sent: 1234,
            accepted: 1200,
            rejected: vec![("forged".into(), 5)],
            failovers: 3,
            ..Default::default()
        },
        services: vec![ServiceStatus {
            name: NASTY.into(),
            service: "TCP 10.0.0.1:80".into(),
            in_kernel: true,
            totals: Some(Totals {
                conns: 100,
                inpkts: 1000,
                outpkts: 900,
                inbytes: 64_000,
                outbytes: 1_000_000,
            }),
            servers: vec![ServerStatus {
                name: "rs1".into(),
                address: "192.0.2.11".into(),
                port: 80,
                health: "up".into(),
                configured_weight: 3,
                weight: Some(3),
                kernel_weight: Some(3),
                active_conns: 4,
                inactive_conns: 40,
                last_check: "connected".into(),
                last_check_ms: 12,
                last_check_unix_ms: 1_700_000_005_000,
                checks: 50,
                check_failures: 1,
                totals: Some(Totals {
                    conns: 100,
                    inpkts: 1000,
                    outpkts: 900,
                    inbytes: 64_000,
                    outbytes: 1_000_000,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_token_guards_metrics_on_the_main_port_and_on_the_metrics_listener() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("pulse.sock");
    let _supervisor = FakeSupervisor::start(&socket, built_status());
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mport = free_port();
    let web = Web::start(
        dir.path(),
        &socket,
        &[
            "--metrics-token-file",
            token_file.to_str().unwrap(),
            "--metrics-listen",
            &format!("127.0.0.1:{mport}"),
        ],
    );
    web.wait_port(mport);

    for port in [web.port, mport] {
        // Without the token, or with another one: 401, and nothing of the status.
        for auth in [
            None,
            Some(bearer("wrong")),
            Some(bearer(&format!("{TOKEN}x"))),
            Some(format!("Basic {TOKEN}")),
            Some(TOKEN.to_string()),
        ] {
            let r = get(port, "/metrics", auth.as_deref());
            assert_eq!(r.status, 401, "port {port}, {auth:?}: {r:?}");
            assert!(r.header("www-authenticate").starts_with("Bearer"), "{r:?}");
            assert!(!r.body.contains("lvs_director"), "{r:?}");
        }
        let f = scrape(port, Some(&bearer(TOKEN)));
        let v = |name: &str, labels: &[(&str, &str)]| prom::value(&f, name, labels);
        assert_eq!(v("lvs_director_supervisor_up", &[]), 1.0);
        assert_eq!(
            v(
                "lvs_director_info",
                &[
                    ("director", "lb1"),
                    ("place", "primary"),
                    ("version", "9.9.9")
                ]
            ),
            1.0
        );
        assert_eq!(v("lvs_director_role", &[("role", "active")]), 1.0);
        assert_eq!(v("lvs_director_role", &[("role", "standby")]), 0.0);
        assert_eq!(v("lvs_director_config_serial", &[]), 17.0);
        assert_eq!(v("lvs_director_peer_heartbeat_age_seconds", &[]), 1.5);
        assert_eq!(v("lvs_director_peer_up", &[]), 1.0);
        assert_eq!(v("lvs_director_failovers_total", &[]), 3.0);
        assert_eq!(v("lvs_director_heartbeats_sent_total", &[]), 1234.0);
        assert_eq!(
            v(
                "lvs_director_heartbeats_rejected_total",
                &[("reason", "forged")]
            ),
            5.0
        );
        let svc = [("virtual", NASTY), ("service", "TCP 10.0.0.1:80")];
        assert_eq!(v("lvs_director_service_connections_total", &svc), 100.0);
        let mut out = svc.to_vec();
        out.push(("direction", "out"));
        assert_eq!(v("lvs_director_service_bytes_total", &out), 1_000_000.0);
        assert_eq!(v("lvs_director_service_packets_total", &out), 900.0);
        let rs = [
            ("virtual", NASTY),
            ("server", "rs1"),
            ("address", "192.0.2.11:80"),
        ];
        assert_eq!(v("lvs_director_real_server_up", &rs), 1.0);
        assert_eq!(v("lvs_director_real_server_weight", &rs), 3.0);
        assert_eq!(v("lvs_director_real_server_active_connections", &rs), 4.0);
        assert_eq!(
            v("lvs_director_real_server_inactive_connections", &rs),
            40.0
        );
        assert_eq!(v("lvs_director_real_server_checks_total", &rs), 50.0);
        assert_eq!(v("lvs_director_real_server_check_failures_total", &rs), 1.0);
        assert_eq!(
            v("lvs_director_real_server_check_duration_seconds", &rs),
            0.012
        );
        let mut rs_in = rs.to_vec();
        rs_in.push(("direction", "in"));
        assert_eq!(v("lvs_director_real_server_bytes_total", &rs_in), 64_000.0);
    }
    // The metrics listener serves nothing else; the main port's pages still need a
    // login, whatever the token.
    let r = get(mport, "/control", Some(&bearer(TOKEN)));
    assert_eq!(r.status, 404, "{r:?}");
    let r = get(web.port, "/control", Some(&bearer(TOKEN)));
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), "/login?next=/control");
    assert!(web.stop().success(), "a clean stop of both listeners");
}

#[test]
fn without_a_token_only_the_metrics_listener_serves_metrics() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this socket: the supervisor is not running.
    let socket = dir.path().join("pulse.sock");
    let mport = free_port();
    let web = Web::start(
        dir.path(),
        &socket,
        &["--metrics-listen", &format!("127.0.0.1:{mport}")],
    );
    web.wait_port(mport);
    let r = get(mport, "/metrics", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.starts_with(
            "# HELP lvs_director_supervisor_up Whether the supervisor (lvs-director pulse) answered on its control socket.\n\
             # TYPE lvs_director_supervisor_up gauge\n\
             lvs_director_supervisor_up 0\n"
        ),
        "{}",
        r.body
    );
    // Besides, only configuration sync's own state (the admin UI runs it).
    let f = prom::parse(&r.body).unwrap();
    assert!(
        f.iter()
            .skip(1)
            .all(|x| x.name.starts_with("lvs_director_sync_")),
        "nothing but the supervisor's absence: {f:#?}"
    );
    prom::parse(&r.body).unwrap();
    // The main port has no /metrics: an unknown page behind the login, token or not.
    for auth in [None, Some(bearer(TOKEN))] {
        let r = get(web.port, "/metrics", auth.as_deref());
        assert_eq!(r.status, 303, "{r:?}");
        assert_eq!(r.header("location"), "/login?next=/metrics");
    }
    assert!(web.stop().success());
}

#[test]
fn the_options_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .arg("--db")
            .arg(dir.path().join("director.db"))
            .args(["web", "--listen", &format!("127.0.0.1:{}", free_port())])
            .args(extra)
            .env_remove("LVS_DIRECTOR_METRICS_TOKEN_FILE")
            .env_remove("LVS_DIRECTOR_METRICS_LISTEN")
            .output()
            .unwrap()
    };
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    for (extra, says) in [
        (
            vec!["--metrics-token-file", empty.to_str().unwrap()],
            "the metrics token is empty",
        ),
        (
            vec!["--metrics-token-file", "/nonexistent/token"],
            "--metrics-token-file /nonexistent/token",
        ),
        (
            vec!["--metrics-listen", "localhost"],
            "--metrics-listen localhost",
        ),
    ] {
        let out = run(&extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}

fn pulse_config() -> String {
    format!(
        "serial_no = 7\nprimary = {a}\nservice = lvs\nbackup_active = 0\nnetwork = direct\n\
         virtual web {{\n    active = 1\n    address = {VIP} eth0\n    port = 7100\n    scheduler = rr\n    \
         check_interval = 0.2\n    timeout = 0.5\n    fall = 2\n    rise = 2\n    server rs1 {{\n        \
         address = {rs1}\n        active = 1\n        weight = 5\n    }}\n}}\n",
        a = Node::A.ip(),
        rs1 = Node::Rs1.ip(),
    )
}

/// Scrapes until `ok` holds for the families (the status is cached for a second).
fn scrape_until(port: u16, what: &str, ok: impl Fn(&[prom::Family]) -> bool) -> Vec<prom::Family> {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let f = scrape(port, None);
        if ok(&f) {
            return f;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}: {f:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_real_supervisor_counts_checks_and_failures() {
    if !root_or_skip("the_real_supervisor_counts_checks_and_failures") {
        return;
    }
    let lab = Lab::new("metrics", &[Node::A, Node::Rs1]);
    let rs1 = Server::start(&lab.ns(Node::Rs1), "0.0.0.0", 7100, Answer::Accept);
    let d = lab.pulse(Node::A, "d", &pulse_config());
    let mport = free_port();
    let web = Web::start(
        lab.dir.path(),
        &d.socket,
        &["--metrics-listen", &format!("127.0.0.1:{mport}")],
    );
    web.wait_port(mport);
    let rs = [
        ("virtual", "web"),
        ("server", "rs1"),
        ("address", "10.77.0.21:7100"),
    ];
    let svc = [("virtual", "web"), ("service", "TCP 10.77.0.100:7100")];

    let f = scrape_until(mport, "rs1 checked and up", |f| {
        prom::find(f, "lvs_director_real_server_checks_total", &rs).is_some_and(|n| n >= 3.0)
            && prom::find(f, "lvs_director_real_server_up", &rs) == Some(1.0)
    });
    let s = lab.status(&d).expect("the supervisor answers");
    let v = |name: &str, labels: &[(&str, &str)]| prom::value(&f, name, labels);
    assert_eq!(v("lvs_director_supervisor_up", &[]), 1.0);
    assert_eq!(v("lvs_director_config_serial", &[]), 7.0);
    let roles: Vec<_> = prom::family(&f, "lvs_director_role")
        .samples
        .iter()
        .filter(|x| x.value == 1.0)
        .map(|x| x.labels["role"].clone())
        .collect();
    assert_eq!(roles.len(), 1, "one role at a time: {roles:?}");
    assert_eq!(
        v("lvs_director_ipvs_available", &[]),
        if s.node.ipvs == "available" { 1.0 } else { 0.0 }
    );
    assert_eq!(v("lvs_director_real_server_check_failures_total", &rs), 0.0);
    assert_eq!(v("lvs_director_real_server_configured_weight", &rs), 5.0);
    let took = v("lvs_director_real_server_check_duration_seconds", &rs);
    assert!((0.0..0.5).contains(&took), "check duration {took}");
    assert!(
        prom::find(&f, "lvs_director_peer_up", &[]).is_none(),
        "a standalone director has no peer"
    );
    let in_kernel = s.services[0].in_kernel;
    assert_eq!(
        v("lvs_director_service_in_kernel", &svc),
        if in_kernel { 1.0 } else { 0.0 }
    );
    assert_eq!(
        prom::find(&f, "lvs_director_service_connections_total", &svc).is_some(),
        in_kernel,
        "kernel counters only for a service in the kernel"
    );

    // rs1 stops answering: failures are counted, and after fall = 2 it is down.
    drop(rs1);
    let f = scrape_until(mport, "rs1 down", |f| {
        prom::find(f, "lvs_director_real_server_up", &rs) == Some(0.0)
    });
    let failures = prom::value(&f, "lvs_director_real_server_check_failures_total", &rs);
    let checks = prom::value(&f, "lvs_director_real_server_checks_total", &rs);
    assert!(
        failures >= 2.0 && checks > failures,
        "{checks} checks, {failures} failed"
    );

    // The supervisor gone: only its absence.
    lab.kill(&d);
    let f = scrape_until(mport, "the supervisor's absence", |f| {
        prom::find(f, "lvs_director_supervisor_up", &[]) == Some(0.0)
    });
    assert_eq!(
        f.iter()
            .filter(|x| !x.name.starts_with("lvs_director_sync_"))
            .count(),
        1,
        "{f:#?}"
    );
    assert!(web.stop().success());
}
