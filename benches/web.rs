//! Admin UI under load: SERVICES x DESTS (default 1,000 x 10) real servers stored, and
//! CLIENTS (default 64) concurrent keep-alive HTTP/1.1 clients asking for the
//! monitoring page and the virtual-server list as fast as they are answered.
//!
//! `cargo bench --bench web` (scripts/bench-web.sh); everything in this process:
//!  1. generates the lvs.cf (the one benches/checks.rs runs: a standalone director,
//!     virtual servers `web0…` on 10.9.x.y:8080, real servers `rs0…` on
//!     127.20.x.y:8080), which `pulse` must load without an error, imports it into a
//!     fresh SQLite database with `Store::replace_config`, writes it as Apply would (no
//!     pending changes), creates an administrator and a session (its cookie);
//!  2. serves `web::serve` on 127.0.0.1:0 from a runtime of its own built like
//!     `lvs-director web`'s (2 worker threads), with the binary's log filter;
//!  3. per page: BENCH_WARMUP_S (default 2) s of warm-up, then BENCH_SECONDS (10) s
//!     measured, every client on its own connection, each request timed from sending
//!     to the last byte of the body; every answer must be 200 with the expected
//!     content (the page's first and last service and not the next, the count, the
//!     page number, no pending marker), anything else counts as an error;
//!  4. cases of the monitoring page: `stored` (no supervisor: the page shows the
//!     stored configuration), `status` (a status source on a Unix socket answering
//!     `{"cmd":"status"}` as the supervisor does, with a `Status` of the same size
//!     built from the configuration and refreshed on every request), and, as root,
//!     `pulse` (a real `lvs-director pulse` checking the 10,000 real servers every
//!     second, on listeners in a network namespace of its own, as benches/checks.rs
//!     does; `BENCH_PULSE=0` skips it). The list pages do not depend on the case.
//!
//! Prints requests/s, p50/p90/p99/max, errors, the size of the answer and where the CPU
//! went (server threads, SQLite workers, clients, status source or supervisor), and
//! exits non-zero when an answer was wrong, not when it was slow (target: p99 < 50 ms).
//! BENCH_PAGES=control,virtual… (substrings of the paths) limits the pages,
//! BENCH_CASES=stored,status,pulse the cases.
//!
//! Without `--bench` (`cargo test --all-targets`) it only checks its generator, the
//! status it serves and the expected contents, quickly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Bytes;
use lvs_director::config::Config;
use lvs_director::pulse::logic::control::{
    self, AddressStatus, EventRecord, HeartbeatStatus, NodeStatus, Reply, Request, ServerStatus,
    ServiceStatus, Status, Totals,
};
use lvs_director::storage::{Actor, Role, SessionPolicy, Store};
use lvs_director::web::{self, AppState, Settings};

#[path = "common/host.rs"]
mod host;

const PORT: u16 = 8080;
/// Services per page of /control and of /virtual (src/web/control.rs, virtuals.rs).
const CONTROL_PAGE: usize = lvs_director::web::control::PAGE_SIZE;
const LIST_PAGE: usize = lvs_director::web::virtuals::LIST_PAGE;
/// The real servers that are down in the `status` case (every 101st from the 17th).
fn down(n: usize) -> bool {
    n % 101 == 17
}

fn vip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn generate(services: usize, dests: usize) -> String {
    let mut cf = String::from(
        "serial_no = 1\nprimary = 127.0.0.1\nservice = lvs\nbackup_active = 0\nnetwork = direct\n",
    );
    for i in 0..services {
        cf += &format!(
            "virtual web{i} {{\n active = 1\n address = {} lo\n port = {PORT}\n protocol = tcp\n \
             scheduler = wlc\n check_interval = 1\n timeout = 1\n fall = 3\n rise = 2\n",
            vip(i)
        );
        for j in 0..dests {
            cf += &format!(
                " server rs{j} {{\n  address = {}\n  active = 1\n  weight = {}\n }}\n",
                host::rip(i * dests + j),
                1 + j % 3
            );
        }
        cf += "}\n";
    }
    cf
}

/// The generated configuration, as `pulse` loads it; it must also pass
/// `config::validate` without an error.
fn load(cf: &str) -> Config {
    let (config, _warnings) = lvs_director::pulse::logic::node::load("web-bench.cf", cf)
        .unwrap_or_else(|e| panic!("generated lvs.cf rejected:\n{}", e.join("\n")));
    let diags = lvs_director::config::validate(&config);
    assert!(
        lvs_director::config::is_valid(&diags),
        "generated configuration invalid: {diags:?}"
    );
    config
}

/// What the supervisor would answer for `config` after running a while: every field
/// filled as src/pulse/lvsd.rs and src/pulse/shared.rs fill them, some real servers
/// down, one drained, connection counters and rates, 200 recent events.
fn status_for(config: &Config, now_ms: u64) -> Status {
    let started = now_ms - 3_600_000;
    let mut services = Vec::new();
    let mut addresses = Vec::new();
    let mut n = 0;
    for vs in &config.virtuals {
        let at = vs
            .settings
            .address
            .as_ref()
            .expect("every virtual has a VIP");
        let port = vs.settings.port().number().unwrap_or(0);
        addresses.push(AddressStatus {
            address: format!("{}/32", at.addr),
            device: at.device.clone(),
            label: None,
            owners: vec![format!("virtual {}", vs.name)],
            up: true,
        });
        let mut servers = Vec::new();
        for rs in &vs.servers {
            let is_down = down(n);
            let drained = n == 5;
            let configured = rs.settings.weight();
            let weight = match (is_down, drained) {
                (true, _) => None,
                (false, true) => Some(0),
                (false, false) => Some(configured),
            };
            let conns = if weight.unwrap_or(0) > 0 {
                (n * 7 % 50) as u32
            } else {
                0
            };
            let checked = now_ms - (n as u64 * 37 % 1000);
            servers.push(ServerStatus {
                name: rs.name.clone(),
                address: rs
                    .settings
                    .address
                    .as_ref()
                    .map_or(String::new(), |h| h.to_string()),
                port: rs.settings.port(&vs.settings).number().unwrap_or(0),
                health: if is_down { "down" } else { "up" }.into(),
                drained,
                configured_weight: configured,
                weight,
                kernel_weight: weight,
                active_conns: conns,
                inactive_conns: conns * 3,
                cps: u64::from(conns / 4),
                last_check: if is_down {
                    "connection refused".into()
                } else {
                    "connected".into()
                },
                last_check_ms: if is_down { 0 } else { 1 },
                last_check_unix_ms: checked,
                // One check a second for the hour it has run.
                checks: 3_600,
                check_failures: if is_down { 600 } else { (n % 3) as u64 },
                totals: weight.map(|_| Totals {
                    conns: 90_000 + n as u64,
                    inpkts: 1_800_000,
                    outpkts: 1_500_000,
                    inbytes: 200_000_000,
                    outbytes: 1_900_000_000,
                }),
                transition: Some(if is_down {
                    EventRecord {
                        at_unix_ms: now_ms - 600_000 - n as u64 * 10,
                        subject: format!("server {}/{}", vs.name, rs.name),
                        state: "down".into(),
                        cause: "3 consecutive failed check(s): connection refused".into(),
                    }
                } else {
                    EventRecord {
                        at_unix_ms: started + 2_000,
                        subject: format!("server {}/{}", vs.name, rs.name),
                        state: "up".into(),
                        cause: "2 consecutive passed check(s)".into(),
                    }
                }),
            });
            n += 1;
        }
        let connections = servers
            .iter()
            .map(|r| u64::from(r.active_conns) + u64::from(r.inactive_conns))
            .sum();
        let cps = servers.iter().map(|r| r.cps).sum();
        services.push(ServiceStatus {
            name: vs.name.clone(),
            service: format!(
                "{} {}:{port}",
                vs.settings.protocol().to_string().to_uppercase(),
                at.addr
            ),
            scheduler: vs.settings.scheduler().0,
            in_kernel: true,
            sorry: false,
            connections,
            cps,
            inbps: cps * 12_000,
            outbps: cps * 480_000,
            totals: Some(servers.iter().filter_map(|r| r.totals).fold(
                Totals::default(),
                |a, t| Totals {
                    conns: a.conns + t.conns,
                    inpkts: a.inpkts + t.inpkts,
                    outpkts: a.outpkts + t.outpkts,
                    inbytes: a.inbytes + t.inbytes,
                    outbytes: a.outbytes + t.outbytes,
                },
            )),
            servers,
        });
    }
    // The last 200 state changes (shared.rs keeps EVENTS_KEPT): the servers that went
    // down, after the director became active.
    let mut events = vec![EventRecord {
        at_unix_ms: started + 1_000,
        subject: "director".into(),
        state: "active".into(),
        cause: "standalone: no backup configured".into(),
    }];
    for s in &services {
        for r in s.servers.iter().filter(|r| r.health == "down") {
            events.extend(r.transition.clone());
        }
    }
    let kept = events.len().saturating_sub(200);
    events.drain(..kept);
    Status {
        vrrp: Vec::new(),
        version: env!("CARGO_PKG_VERSION").into(),
        node: NodeStatus {
            name: "127.0.0.1".into(),
            place: "standalone".into(),
            role: "active".into(),
            role_since_unix_ms: started + 1_000,
            fault: None,
            config_file: "/etc/lvs-director/lvs.cf".into(),
            serial: 1,
            started_unix_ms: started,
            ipvs: "available".into(),
            warnings: Vec::new(),
        },
        peer: None,
        heartbeat: HeartbeatStatus {
            authenticated: false,
            port: 539,
            keepalive_ms: 2_000,
            deadtime_ms: 6_000,
            ..HeartbeatStatus::default()
        },
        addresses,
        services,
        local_checks: Vec::new(),
        events,
    }
}

/// A page to ask for and what its answer must (and must not) contain.
#[derive(Debug, Clone)]
struct Expect {
    path: String,
    must: Vec<String>,
    must_not: Vec<String>,
}

impl Expect {
    fn check(&self, status: u16, body: &[u8]) -> Result<(), String> {
        if status != 200 {
            return Err(format!("{}: status {status}", self.path));
        }
        let body = std::str::from_utf8(body).map_err(|_| format!("{}: not UTF-8", self.path))?;
        if let Some(m) = self.must.iter().find(|m| !body.contains(m.as_str())) {
            return Err(format!("{}: {m:?} missing", self.path));
        }
        if let Some(m) = self.must_not.iter().find(|m| body.contains(m.as_str())) {
            return Err(format!("{}: {m:?} should not be there", self.path));
        }
        Ok(())
    }
}

/// Page `page` of `names` shown `size` at a time: (first, last, the next) of the page
/// and the number of pages.
fn page_of(names: &[String], page: usize, size: usize) -> (String, String, Option<String>, usize) {
    let pages = names.len().div_ceil(size).max(1);
    let start = (page - 1) * size;
    let end = (start + size).min(names.len());
    (
        names[start].clone(),
        names[end - 1].clone(),
        names.get(end).cloned(),
        pages,
    )
}

fn pages_line(page: usize, pages: usize) -> Vec<String> {
    if pages > 1 {
        vec![format!("page {page} of {pages}")]
    } else {
        Vec::new()
    }
}

/// The monitoring page `page` for `services` services; `live`: from a supervisor's
/// status (`Some(running real server health)`), else from the stored configuration.
fn control_expect(services: usize, page: usize, live: Option<&str>) -> Expect {
    let names: Vec<String> = (0..services).map(|i| format!("web{i}")).collect();
    let (first, last, next, pages) = page_of(&names, page, CONTROL_PAGE);
    let mut must = vec![
        format!("<strong>{first}</strong>"),
        format!("<strong>{last}</strong>"),
        format!("({services} service(s),"),
    ];
    must.extend(pages_line(page, pages));
    match live {
        Some(health) => {
            must.push("Current LVS routing table".into());
            must.push(format!("<span class=\"health {health}\">{health}</span>"));
        }
        None => must.push("Stored virtual servers".into()),
    }
    let mut must_not = vec!["changes not applied yet".to_string()];
    must_not.extend(next.map(|n| format!("<strong>{n}</strong>")));
    Expect {
        path: if page == 1 {
            "/control".into()
        } else {
            format!("/control?page={page}")
        },
        must,
        must_not,
    }
}

/// The virtual-server list, page `page`, filtered by `q` (as the page filters names).
fn virtual_expect(services: usize, page: usize, q: Option<&str>) -> Expect {
    let names: Vec<String> = (0..services)
        .map(|i| format!("web{i}"))
        .filter(|n| q.is_none_or(|q| n.contains(q)))
        .collect();
    let (first, last, next, pages) = page_of(&names, page, LIST_PAGE);
    let mut must = vec![
        format!(">{first}</a>"),
        format!(">{last}</a>"),
        format!("<caption>{} virtual server(s)</caption>", names.len()),
    ];
    must.extend(pages_line(page, pages));
    let mut must_not = vec!["changes not applied yet".to_string()];
    must_not.extend(next.map(|n| format!(">{n}</a>")));
    let mut query = Vec::new();
    if let Some(q) = q {
        query.push(format!("q={q}"));
    }
    if page > 1 {
        query.push(format!("page={page}"));
    }
    Expect {
        path: if query.is_empty() {
            "/virtual".into()
        } else {
            format!("/virtual?{}", query.join("&"))
        },
        must,
        must_not,
    }
}

/// In ms, of latencies sorted in µs.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    host::percentile(sorted, p) / 1000.0
}

fn main() {
    host::bench_main(self_check, run);
}

/// `cargo test --all-targets`: the generated lvs.cf loads and validates, the status
/// matches it and goes through the control protocol, the expected contents are right.
fn self_check() {
    let config = load(&generate(60, 3));
    assert_eq!(config.virtuals.len(), 60);
    assert!(config.virtuals.iter().all(|v| v.servers.len() == 3));
    let status = status_for(&config, 1_800_000_000_000);
    assert_eq!(status.services.len(), 60);
    assert_eq!(status.addresses.len(), 60);
    assert_eq!(status.services[1].service, "TCP 10.9.0.2:8080");
    let s = &status.services[5].servers[2];
    assert_eq!(
        (s.name.as_str(), s.address.as_str()),
        ("rs2", "127.20.0.18")
    );
    assert_eq!((s.port, s.health.as_str(), s.weight), (8080, "down", None));
    assert_eq!(status.services[1].servers[2].weight, Some(0));
    let line = serde_json::to_string(&Reply::status(status.clone())).unwrap();
    let back: Reply = serde_json::from_str(&line).unwrap();
    assert_eq!(back.status.as_deref(), Some(&status));
    let all: std::collections::HashSet<Ipv4Addr> = (0..10_000).map(host::rip).collect();
    assert_eq!(all.len(), 10_000);
    let vips: std::collections::HashSet<Ipv4Addr> = (0..1000).map(vip).collect();
    assert_eq!(vips.len(), 1000);

    let c = control_expect(1000, 20, None);
    assert_eq!(c.path, "/control?page=20");
    assert!(c.must.contains(&"<strong>web475</strong>".to_string()));
    assert!(c.must.contains(&"<strong>web499</strong>".to_string()));
    assert!(c.must.contains(&"page 20 of 40".to_string()));
    assert!(c.must_not.contains(&"<strong>web500</strong>".to_string()));
    let v = virtual_expect(1000, 1, Some("web5"));
    assert_eq!(v.path, "/virtual?q=web5");
    // web5, web50…web59, web500…web538 on the first page of 111.
    assert!(v.must.contains(&">web538</a>".to_string()));
    assert!(v
        .must
        .contains(&"<caption>111 virtual server(s)</caption>".to_string()));
    assert!(v.must_not.contains(&">web539</a>".to_string()));
    let v = virtual_expect(1000, 15, None);
    assert_eq!(v.path, "/virtual?page=15");
    assert!(v.must.contains(&">web700</a>".to_string()));
    let one = virtual_expect(3, 1, None);
    assert!(one.must_not.len() == 1 && one.must.len() == 3);
    assert!(v
        .check(
            200,
            format!("{} {}", v.must.join(" "), "page 15 of 20").as_bytes()
        )
        .is_ok());
    assert!(v
        .check(200, b"<caption>1000 virtual server(s)</caption>")
        .is_err());
    assert!(v.check(500, v.must.join(" ").as_bytes()).is_err());
    let sorted = [1000, 2000, 3000, 4000];
    assert_eq!(
        (percentile_ms(&sorted, 50.0), percentile_ms(&sorted, 99.0)),
        (2.0, 4.0)
    );
    println!("web bench generator, status and expected pages consistent; run scripts/bench-web.sh to measure");
}

// ---- measuring ----

/// CPU seconds (utime + stime) of this process's threads, summed by thread name.
fn threads_cpu(pid: &str) -> HashMap<String, f64> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
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
            *out.entry(name).or_default() += (f[11] + f[12]) / hz;
        }
    }
    out
}

/// Where the CPU went between two [`threads_cpu`] readings, by part, as % of one core.
fn cpu_shares(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    wall: f64,
) -> Vec<(&'static str, f64)> {
    let mut parts: Vec<(&'static str, f64)> = Vec::new();
    for (name, t) in after {
        let d = t - before.get(name).copied().unwrap_or(0.0);
        let part = if name.starts_with("lvsd-web") {
            "server"
        } else if name.starts_with("sqlx-sqlite") {
            "sqlite"
        } else if name.starts_with("bench-client") {
            "clients"
        } else if name.starts_with("status-source") {
            "status source"
        } else if name.starts_with("listeners") {
            "real servers"
        } else {
            "other"
        };
        match parts.iter_mut().find(|(p, _)| *p == part) {
            Some((_, v)) => *v += d,
            None => parts.push((part, d)),
        }
    }
    parts.retain(|(_, v)| *v > 0.0);
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    parts
        .into_iter()
        .map(|(p, v)| (p, v / wall * 100.0))
        .collect()
}

#[derive(Default)]
struct ClientOut {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    bytes: u64,
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One client: one keep-alive connection (again after an error), requests one after
/// the other until `until`; those sent from `from` on are counted.
async fn client(
    addr: SocketAddr,
    cookie: Arc<str>,
    expect: Arc<Expect>,
    from: Instant,
    until: Instant,
) -> ClientOut {
    let mut out = ClientOut::default();
    let mut sender: Option<Sender> = None;
    let host = addr.to_string();
    let fail = |out: &mut ClientOut, counted: bool, e: String| {
        if counted {
            out.errors += 1;
            out.first_error.get_or_insert(e);
        }
    };
    while Instant::now() < until {
        let s = match &mut sender {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    fail(&mut out, Instant::now() >= from, e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if s.ready().await.is_err() {
            sender = None;
            continue;
        }
        let req = hyper::Request::get(expect.path.as_str())
            .header(hyper::header::HOST, &host)
            .header(hyper::header::COOKIE, &*cookie)
            .header(hyper::header::ACCEPT, "text/html")
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("a valid request");
        let t0 = Instant::now();
        let counted = t0 >= from;
        let answer = async {
            let resp = s.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        }
        .await;
        let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        match answer {
            Ok((status, body)) => {
                if counted {
                    out.latencies_us.push(us);
                    out.bytes += body.len() as u64;
                }
                if let Err(e) = expect.check(status, &body) {
                    fail(&mut out, counted, e);
                }
            }
            Err(e) => {
                fail(&mut out, counted, format!("{}: {e}", expect.path));
                sender = None;
            }
        }
    }
    out
}

struct Load {
    requests: usize,
    rps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    errors: u64,
    first_error: Option<String>,
    kb: f64,
    cpu: Vec<(&'static str, f64)>,
}

/// How hard and how long to drive a page.
#[derive(Debug, Clone, Copy)]
struct Plan {
    clients: usize,
    warmup: Duration,
    measure: Duration,
}

/// `plan.clients` clients on `expect` for `plan.warmup` then `plan.measure`; the CPU
/// of `pulse` (a process id), when given, is reported as the supervisor's.
fn drive(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    cookie: &Arc<str>,
    expect: &Expect,
    plan: Plan,
    pulse: Option<u32>,
) -> Load {
    let Plan {
        clients,
        warmup,
        measure,
    } = plan;
    let expect = Arc::new(expect.clone());
    let me = std::process::id().to_string();
    let start = Instant::now();
    let from = start + warmup;
    let until = from + measure;
    let tasks: Vec<_> = (0..clients)
        .map(|_| rt.spawn(client(addr, cookie.clone(), expect.clone(), from, until)))
        .collect();
    // CPU over the measured window.
    std::thread::sleep(from.saturating_duration_since(Instant::now()));
    let (cpu0, p0, host0) = (threads_cpu(&me), pulse.map(proc_cpu_s), host_busy_s());
    let t0 = Instant::now();
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let (cpu1, p1, host1) = (threads_cpu(&me), pulse.map(proc_cpu_s), host_busy_s());
    let wall = t0.elapsed().as_secs_f64();
    let outs: Vec<ClientOut> = rt.block_on(async {
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.expect("a client task"));
        }
        v
    });
    let mut lat: Vec<u32> = outs
        .iter()
        .flat_map(|o| o.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let errors = outs.iter().map(|o| o.errors).sum();
    let bytes: u64 = outs.iter().map(|o| o.bytes).sum();
    let mut cpu = cpu_shares(&cpu0, &cpu1, wall);
    if let (Some(a), Some(b)) = (p0, p1) {
        cpu.push(("supervisor", (b - a) / wall * 100.0));
    }
    // What the rest of the host used meanwhile: other processes compete for the cores.
    let ours: f64 = cpu.iter().map(|(_, v)| v).sum();
    cpu.push((
        "rest of the host",
        ((host1 - host0) / wall * 100.0 - ours).max(0.0),
    ));
    Load {
        requests: lat.len(),
        rps: lat.len() as f64 / measure.as_secs_f64(),
        p50: percentile_ms(&lat, 50.0),
        p90: percentile_ms(&lat, 90.0),
        p99: percentile_ms(&lat, 99.0),
        max: lat.last().map_or(f64::NAN, |&m| f64::from(m) / 1000.0),
        errors,
        first_error: outs.into_iter().find_map(|o| o.first_error),
        kb: bytes as f64 / lat.len().max(1) as f64 / 1024.0,
        cpu,
    }
}

/// Busy CPU seconds of the whole host (all cores; idle, iowait and steal excluded).
fn host_busy_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal
    [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| v.get(i).copied().unwrap_or(0.0))
        .sum::<f64>()
        / hz
}

fn proc_cpu_s(pid: u32) -> f64 {
    let pid = pid.to_string();
    threads_cpu(&pid).values().sum()
}

/// The web service's runtime, as `lvs-director web` builds it (src/cli/web.rs).
fn server_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lvsd-web")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// A running web service; stops when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn state_for(store: &Store, lvs_cf: &Path, socket: &Path) -> AppState {
    AppState::new(
        store.clone(),
        Settings {
            lvs_cf: lvs_cf.to_path_buf(),
            control_socket: socket.to_path_buf(),
            scripts_dir: lvs_director::pulse::io::scripts::DEFAULT_SCRIPTS_DIR.into(),
            secure_cookies: false,
            sessions: SessionPolicy::default(),
            sync_port: lvs_director::cluster::wire::DEFAULT_PORT,
        },
    )
}

fn start_server(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    lvs_cf: &Path,
    socket: &Path,
) -> Result<Server, String> {
    let state = state_for(store, lvs_cf, socket);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| format!("listen: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        if let Err(e) = web::serve(listener, None, state, async {
            let _ = rx.await;
        })
        .await
        {
            eprintln!("bench: the web server failed: {e}");
        }
    });
    Ok(Server {
        addr,
        stop: Some(tx),
    })
}

/// The `status` case's supervisor stand-in: answers the control protocol on `path`
/// with `status`, its check times and counters moved on for every request and the
/// reply serialized afresh, as the supervisor builds its status per request.
struct StatusSource {
    served: Arc<AtomicU64>,
    busy_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    path: PathBuf,
}

impl StatusSource {
    fn start(path: &Path, status: Status) -> Result<StatusSource, String> {
        let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let served = Arc::new(AtomicU64::new(0));
        let busy_us = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, busy, halt) = (served.clone(), busy_us.clone(), stop.clone());
        std::thread::Builder::new()
            .name("status-source".into())
            .spawn(move || {
                let mut status = status;
                for conn in listener.incoming() {
                    if halt.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let mut reader = BufReader::new(&conn);
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        let t = Instant::now();
                        let reply = match control::parse_request(&line) {
                            Ok(Request::Status) => {
                                let now = lvs_director::clock::unix_ms();
                                for (k, r) in status
                                    .services
                                    .iter_mut()
                                    .flat_map(|s| s.servers.iter_mut())
                                    .enumerate()
                                {
                                    r.last_check_unix_ms = now - (k as u64 * 37 % 1000);
                                }
                                Reply::status(status.clone())
                            }
                            Ok(_) => Reply::refused("the bench only answers status"),
                            Err(refusal) => refusal,
                        };
                        let mut out = serde_json::to_vec(&reply).expect("a reply serializes");
                        out.push(b'\n');
                        busy.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                        n.fetch_add(1, Ordering::Relaxed);
                        if (&conn).write_all(&out).is_err() {
                            break;
                        }
                        line.clear();
                    }
                }
            })
            .map_err(|e| format!("status source thread: {e}"))?;
        Ok(StatusSource {
            served,
            busy_us,
            stop,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for StatusSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::os::unix::net::UnixStream::connect(&self.path);
    }
}

/// One status request as the web service makes it (src/web/live.rs): connect, ask,
/// read and parse; how long it took and the size of the reply.
fn time_status(socket: &Path) -> Result<(f64, usize, usize), String> {
    let t = Instant::now();
    let reply = control::request(socket, &Request::Status, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let status = reply.status.ok_or("no status in the reply")?;
    let size = serde_json::to_vec(&status).map_or(0, |v| v.len());
    let servers = status.services.iter().map(|s| s.servers.len()).sum();
    Ok((ms, size, servers))
}

// ---- the real supervisor (as root) ----

/// The namespace, the supervisor and the listener thread: removed on drop.
struct Pulse {
    ns: String,
    child: Option<Child>,
    socket: PathBuf,
    stop_listeners: Arc<AtomicBool>,
}

impl Drop for Pulse {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stop_listeners.store(true, Ordering::Relaxed);
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stderr(Stdio::null())
            .status();
    }
}

/// The real servers: `count` listeners (accept and close) on a thread that entered
/// namespace `ns`, served by a current-thread runtime there.
fn start_listeners(ns: &str, count: usize, stop: Arc<AtomicBool>) -> Result<(), String> {
    let path = format!("/run/netns/{ns}");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("listeners".into())
        .spawn(move || {
            let r = File::open(&path)
                .map_err(|e| format!("{path}: {e}"))
                .and_then(|fd| {
                    // SAFETY: setns on this thread only, with a valid descriptor.
                    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
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
            rt.block_on(async move {
                for n in 0..count {
                    let addr = SocketAddr::from((host::rip(n), PORT));
                    let l = tokio::net::TcpSocket::new_v4()
                        .and_then(|s| {
                            s.set_reuseaddr(true)?;
                            s.bind(addr)?;
                            s.listen(1024)
                        })
                        .map_err(|e| format!("listener {addr}: {e}"));
                    let l = match l {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::spawn(async move {
                        loop {
                            match l.accept().await {
                                Ok((s, _)) => drop(s),
                                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                            }
                        }
                    });
                }
                let _ = ready_tx.send(Ok(()));
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        })
        .map_err(|e| format!("listener thread: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| "the listener thread died".to_string())?
}

/// Starts `lvs-director pulse` on `cf` in a namespace of its own with `servers`
/// listeners, and waits until its status shows every real server checked and up.
fn start_pulse(dir: &Path, cf: &Path, servers: usize) -> Result<Pulse, String> {
    let bin = std::env::var_os("BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lvs-director")));
    let nofile = host::raise_nofile(servers as u64 * 2 + 10_000);
    if nofile < servers as u64 + 1000 {
        return Err(format!(
            "RLIMIT_NOFILE is {nofile} and cannot be raised: too few for {servers} listeners"
        ));
    }
    host::remove_stale_namespaces("bweb-");
    let mut pulse = Pulse {
        ns: format!("bweb-{}", std::process::id()),
        child: None,
        socket: dir.join("pulse.sock"),
        stop_listeners: Arc::new(AtomicBool::new(false)),
    };
    host::ip(&["netns", "add", &pulse.ns])?;
    host::ip(&["-n", &pulse.ns, "link", "set", "lo", "up"])?;
    let t = Instant::now();
    start_listeners(&pulse.ns, servers, pulse.stop_listeners.clone())?;
    let state = dir.join("pulse-state");
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    let log_path = dir.join("pulse.log");
    let log = File::create(&log_path).map_err(|e| e.to_string())?;
    let child = Command::new("ip")
        .args(["netns", "exec", &pulse.ns])
        .arg(&bin)
        .arg("pulse")
        .arg("--config")
        .arg(cf)
        .arg("--control-socket")
        .arg(&pulse.socket)
        .arg("--state-dir")
        .arg(&state)
        .env("LVS_DIRECTOR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    pulse.child = Some(child);
    // Every real server checked and up: the page then shows what a settled director
    // shows.
    loop {
        if let Ok(Reply {
            status: Some(s), ..
        }) = control::request(&pulse.socket, &Request::Status, Duration::from_secs(10))
        {
            let all: Vec<&ServerStatus> = s.services.iter().flat_map(|v| &v.servers).collect();
            if all.len() == servers
                && all
                    .iter()
                    .all(|r| r.last_check_unix_ms != 0 && r.health == "up")
            {
                break;
            }
        }
        let exited = pulse
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if exited.is_some() || t.elapsed() > Duration::from_secs(120) {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            return Err(format!(
                "the supervisor did not settle (every real server checked and up):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "bench: pulse {} checks {servers} real servers (listeners in namespace {}), settled in {:.1} s",
        bin.display(),
        pulse.ns,
        t.elapsed().as_secs_f64()
    );
    Ok(pulse)
}

// ---- where a request's time goes ----

/// CPU seconds this process has used so far, all threads (user + system).
fn process_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the rusage it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// What a call costs: CPU µs of all threads (the SQLite workers' too), and wall µs.
#[derive(Debug, Clone, Copy)]
struct Cost {
    cpu: f64,
    wall: f64,
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0} ({:.0})", self.cpu, self.wall)
    }
}

/// The mean cost of `f` over `n` calls, one after the other.
async fn mean_cost<T, Fut: std::future::Future<Output = T>>(
    n: usize,
    mut f: impl FnMut() -> Fut,
) -> Cost {
    // The first call fills the caches (the snapshot, the pending marker).
    std::hint::black_box(f().await);
    let (t, cpu) = (Instant::now(), process_cpu_s());
    for _ in 0..n {
        std::hint::black_box(f().await);
    }
    Cost {
        cpu: (process_cpu_s() - cpu) * 1e6 / n as f64,
        wall: t.elapsed().as_secs_f64() * 1e6 / n as f64,
    }
}

/// One page through the router, as the server answers it but without the network.
async fn oneshot(router: &axum::Router, cookie: &str, path: &str) -> usize {
    use tower::ServiceExt;
    let req = axum::http::Request::get(path)
        .header(axum::http::header::HOST, "127.0.0.1")
        .header(axum::http::header::COOKIE, cookie)
        .body(axum::body::Body::empty())
        .expect("a valid request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), 200, "{path}");
    resp.into_body()
        .collect()
        .await
        .map_or(0, |b| b.to_bytes().len())
}

/// The steps of a page one at a time, with nothing else running: what one request
/// costs and in which step.
fn phases(
    rt: &tokio::runtime::Runtime,
    stored: &AppState,
    live: Option<&AppState>,
    config: &Config,
    token: &str,
) {
    const N: usize = 300;
    let cookie = format!("lvsd_session={token}");
    rt.block_on(async {
        let store = &stored.store;
        let now_ms = lvs_director::clock::unix_ms();
        let q1 = web::control::ViewQuery::default();
        let lookup =
            mean_cost(N, || async { store.sessions().lookup(token, store.now()).await }).await;
        let counter = mean_cost(N, || store.change_counter()).await;
        let cached = mean_cost(N, || stored.stored()).await;
        let snapshot = stored.stored().await.expect("stored");
        let pending = mean_cost(N, || web::publish::has_pending(stored, &snapshot)).await;
        let view_config = mean_cost(N, || async {
            web::control::view_of_config("bench", &snapshot.config, &q1, now_ms)
        })
        .await;
        let status = status_for(config, now_ms);
        let view_status = mean_cost(N, || async {
            web::control::view_of_status(&status, &q1, now_ms)
        })
        .await;
        let router = web::router(stored.clone());
        let page = |path: &'static str| {
            let (router, cookie) = (&router, &cookie);
            async move { mean_cost(N, || oneshot(router, cookie, path)).await }
        };
        let control = page("/control").await;
        let list = page("/virtual").await;
        let list15 = page("/virtual?page=15").await;
        let filtered = page("/virtual?q=web5").await;
        let chrome = lookup.cpu + cached.cpu + pending.cpu;
        println!(
            "bench: one request at a time, CPU µs of all threads (wall µs): session lookup {lookup} (SELECT + UPDATE), \
             change-counter query {counter}, AppState::stored() {cached} (cached: one change-counter query), \
             has_pending {pending} (cached: a stat), view_of_config {view_config}, view_of_status {view_status}"
        );
        println!(
            "bench:   GET /control {control} without a supervisor: storage {:.0} (session, 2 x stored, has_pending), view {:.0}, \
             the rest (template, routing, headers, drop) {:.0}",
            chrome + cached.cpu,
            view_config.cpu,
            control.cpu - chrome - cached.cpu - view_config.cpu
        );
        println!(
            "bench:   GET /virtual {list}, ?page=15 {list15}, ?q=web5 {filtered}: storage {chrome:.0} (session, stored, has_pending), \
             the rest {:.0} / {:.0} / {:.0}",
            list.cpu - chrome,
            list15.cpu - chrome,
            filtered.cpu - chrome
        );
        if let Some(live) = live {
            let router = web::router(live.clone());
            let _ = live.live.status().await;
            let control = mean_cost(N, || oneshot(&router, &cookie, "/control")).await;
            let fetch = mean_cost(10, || async {
                live.live.invalidate().await;
                live.live.status().await
            })
            .await;
            println!(
                "bench:   GET /control {control} from a cached status: storage {chrome:.0}, view {:.0}, the rest {:.0}; \
                 refreshing the status (once a second: connect, ask, read, parse) {:.1} ms of CPU (both ends: the source builds and serializes it in this process), {:.1} ms wall",
                view_status.cpu,
                control.cpu - chrome - view_status.cpu,
                fetch.cpu / 1000.0,
                fetch.wall / 1000.0
            );
        }
    });
}

// ---- the run ----

fn wanted(var: &str, name: &str) -> bool {
    std::env::var(var)
        .map(|v| {
            v.split(',')
                .any(|w| !w.is_empty() && name.contains(w.trim()))
        })
        .unwrap_or(true)
}

fn run() -> Result<bool, String> {
    let services = host::env_or("BENCH_SERVICES", 1000);
    let dests = host::env_or("BENCH_DESTS", 10);
    let clients = host::env_or("BENCH_CLIENTS", 64);
    let measure = Duration::from_secs(host::env_or("BENCH_SECONDS", 10) as u64);
    let warmup = Duration::from_secs(host::env_or("BENCH_WARMUP_S", 2) as u64);
    let plan = Plan {
        clients,
        warmup,
        measure,
    };
    if services < 750 {
        return Err(format!(
            "BENCH_SERVICES={services}: the pages asked for (/control?page=20, /virtual?page=15) need at least 750"
        ));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LVS_DIRECTOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let t = Instant::now();
    let cf = generate(services, dests);
    let config = load(&cf);
    let dir = tempfile::Builder::new()
        .prefix("bench-web-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let server_rt = server_runtime()?;
    let db = dir.path().join("lvs-director.db");
    let lvs_cf = dir.path().join("lvs.cf");
    let (store, token) = server_rt.block_on(async {
        let store = Store::open(&db).await.map_err(|e| e.to_string())?;
        let actor = Actor::new("bench", None);
        store
            .replace_config(&config, &actor)
            .await
            .map_err(|e| format!("import: {e}"))?;
        // Applied: the file in force is what Apply would write, nothing is pending.
        let stored = store.load_config().await.map_err(|e| e.to_string())?;
        std::fs::write(
            &lvs_cf,
            lvs_director::config::render_with_serial(&stored, 1),
        )
        .map_err(|e| e.to_string())?;
        let user = store
            .users()
            .set_password("bench", "bench-password-1", Role::Admin, &actor)
            .await
            .map_err(|e| e.to_string())?
            .user;
        let session = store
            .sessions()
            .create(&user, &SessionPolicy::default(), store.now())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((store, session.token))
    })?;
    let cookie: Arc<str> = format!("lvsd_session={token}").into();
    println!(
        "bench: {services} virtual servers x {dests} real servers generated, validated and imported in {:.1} s ({} kB of lvs.cf)",
        t.elapsed().as_secs_f64(),
        cf.len() / 1024
    );
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;

    let mut rows: Vec<(String, &'static str, Load)> = Vec::new();
    let mut wrong = false;
    let mut measure_pages = |case: &'static str,
                             server: &Server,
                             pages: &[Expect],
                             pulse: Option<u32>| {
        for e in pages.iter().filter(|e| wanted("BENCH_PAGES", &e.path)) {
            let load = drive(&client_rt, server.addr, &cookie, e, plan, pulse);
            println!(
                    "bench: {case:<7} {:<18} {:>6.0} req/s  p50 {:>6.1}  p90 {:>6.1}  p99 {:>6.1}  max {:>6.1} ms  {} error(s)  {:.0} kB  CPU: {}",
                    e.path,
                    load.rps,
                    load.p50,
                    load.p90,
                    load.p99,
                    load.max,
                    load.errors,
                    load.kb,
                    load.cpu
                        .iter()
                        .map(|(p, v)| format!("{p} {v:.0}%"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            if let Some(err) = &load.first_error {
                eprintln!("bench: WRONG: {err}");
            }
            wrong |= load.errors > 0 || load.requests == 0;
            rows.push((e.path.clone(), case, load));
        }
    };

    let status_socket = dir.path().join("status.sock");
    let source = StatusSource::start(
        &status_socket,
        status_for(&config, lvs_director::clock::unix_ms()),
    )?;
    let no_supervisor = dir.path().join("no-supervisor.sock");
    if std::env::var("BENCH_PHASES").as_deref() != Ok("0") {
        phases(
            &server_rt,
            &state_for(&store, &lvs_cf, &no_supervisor),
            Some(&state_for(&store, &lvs_cf, &status_socket)),
            &config,
            &token,
        );
    }

    // (a) No supervisor: the stored configuration; and the list pages.
    if wanted("BENCH_CASES", "stored") {
        let server = start_server(&server_rt, &store, &lvs_cf, &no_supervisor)?;
        let pages = [
            control_expect(services, 1, None),
            control_expect(services, 20, None),
            virtual_expect(services, 1, None),
            virtual_expect(services, 15, None),
            virtual_expect(services, 1, Some("web5")),
        ];
        measure_pages("stored", &server, &pages, None);
    }

    // (b) A status source of the same size.
    if wanted("BENCH_CASES", "status") {
        let socket = &status_socket;
        let (ms, size, n) = time_status(socket)?;
        println!(
            "bench: status source: one status request ({n} real servers, {} kB of JSON) takes {ms:.1} ms to build, send, read and parse",
            size / 1024
        );
        let server = start_server(&server_rt, &store, &lvs_cf, socket)?;
        let before = (
            source.served.load(Ordering::Relaxed),
            source.busy_us.load(Ordering::Relaxed),
        );
        let pages = [
            control_expect(services, 1, Some("up")),
            control_expect(services, 20, Some("up")),
        ];
        measure_pages("status", &server, &pages, None);
        let served = source.served.load(Ordering::Relaxed) - before.0;
        let busy = source.busy_us.load(Ordering::Relaxed) - before.1;
        println!(
            "bench: status source answered {served} status request(s) over the status case, {:.1} ms each to build and serialize",
            busy as f64 / served.max(1) as f64 / 1000.0
        );
    }

    // (c) The real supervisor, as root.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if wanted("BENCH_CASES", "pulse") && std::env::var("BENCH_PULSE").as_deref() != Ok("0") {
        if root {
            let cf_path = dir.path().join("pulse-lvs.cf");
            std::fs::write(&cf_path, &cf).map_err(|e| e.to_string())?;
            let pulse = start_pulse(dir.path(), &cf_path, services * dests)?;
            let (ms, size, n) = time_status(&pulse.socket)?;
            println!(
                "bench: pulse: one status request ({n} real servers, {} kB of JSON) takes {ms:.1} ms",
                size / 1024
            );
            let server = start_server(&server_rt, &store, &lvs_cf, &pulse.socket)?;
            let pid = pulse.child.as_ref().map(|c| c.id());
            // The supervisor's own child: `ip netns exec` execs it, same pid.
            let pages = [
                control_expect(services, 1, Some("up")),
                control_expect(services, 20, Some("up")),
            ];
            measure_pages("pulse", &server, &pages, pid);
            drop(server);
            drop(pulse);
        } else {
            println!(
                "bench: pulse case skipped: it needs root (network namespace, 10,000 listeners)"
            );
        }
    }

    println!(
        "\nBENCH web: {services} x {dests}, {clients} keep-alive clients, {} s per page after {} s of warm-up, release build, {} cores",
        measure.as_secs(),
        warmup.as_secs(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<7} {:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6}",
        "case",
        "page",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "target"
    );
    for (path, case, l) in &rows {
        println!(
            "{case:<7} {path:<18} {:>8} {:>8.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>6}",
            l.requests,
            l.rps,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.errors,
            if l.p99 < 50.0 { "met" } else { "MISSED" }
        );
    }
    server_rt.block_on(store.close());
    Ok(!wrong)
}
