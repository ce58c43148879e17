//! The supervisor's control socket: one JSON request per line, one JSON reply per line,
//! over a Unix socket. The web UI and `lvs-director status` are its clients.
//!
//! Requests: `{"cmd":"status"}`, `{"cmd":"reload"}`,
//! `{"cmd":"drain","virtual":"web","server":"rs1"}`, `{"cmd":"enable",…}`,
//! `{"cmd":"hand_over"}`, `{"cmd":"check","file":"/etc/lvs-director/.lvs.cf.check-…"}`.
//! Every reply has `ok`; a refusal has `error`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where `pulse` listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/lvs-director/pulse.sock";

/// Requests larger than this are refused (a status reply can be large; a request not).
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Re-read `lvs.cf`; the reply says whether it was applied or why it was rejected.
    Reload,
    /// Weight 0 for a real server: no new connections, existing ones finish.
    Drain {
        #[serde(rename = "virtual")]
        virtual_server: String,
        server: String,
    },
    /// Undo a drain.
    Enable {
        #[serde(rename = "virtual")]
        virtual_server: String,
        server: String,
    },
    /// Give the addresses to the peer on purpose.
    HandOver,
    /// Could this director run the candidate `lvs.cf` in `file`? Checked as a reload
    /// would be, and for the devices it needs; nothing changes. `file` must be a
    /// regular file named [`CHECK_PREFIX`]… beside the `lvs.cf` the supervisor reads.
    Check {
        file: std::path::PathBuf,
    },
}

/// The file name a candidate for [`Request::Check`] starts with.
pub const CHECK_PREFIX: &str = ".lvs.cf.check-";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<Status>>,
}

impl Reply {
    pub fn done(message: impl Into<String>) -> Reply {
        Reply {
            ok: true,
            error: None,
            message: Some(message.into()),
            status: None,
        }
    }
    pub fn refused(error: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(error.into()),
            message: None,
            status: None,
        }
    }
    pub fn status(s: Status) -> Reply {
        Reply {
            ok: true,
            error: None,
            message: None,
            status: Some(Box::new(s)),
        }
    }
}

/// Everything the supervisor knows, for people and the UI. Times are Unix milliseconds
/// (`*_unix_ms`) or ages in milliseconds (`*_ms_ago`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub node: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerStatus>,
    pub heartbeat: HeartbeatStatus,
    pub addresses: Vec<AddressStatus>,
    pub services: Vec<ServiceStatus>,
    pub local_checks: Vec<LocalCheckStatus>,
    /// Recent state changes, oldest first.
    pub events: Vec<EventRecord>,
    /// The VRRP instances, when the directors speak VRRP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vrrp: Vec<VrrpStatus>,
}

/// What the status shows of a VRRP instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub name: String,
    /// The interface its adverts use.
    #[serde(default)]
    pub interface: String,
    /// INIT, BACKUP, MASTER or FAULT, as keepalived names them.
    pub state: String,
    /// Why it is in FAULT (or, in INIT, what it waits for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    pub vrid: u8,
    pub priority: u8,
    pub effective_priority: u8,
    /// The master as last heard (this director's source address when master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<std::net::IpAddr>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Adverts not acted on, by reason (ttl, version, authentication, interval,
    /// addresses, checksum, length, …). Those that cannot be given to one instance
    /// (unreadable, or for a virtual router id no instance on the link has) are
    /// counted for every instance on the link.
    pub dropped: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// primary, backup or standalone.
    pub place: String,
    /// starting, standby, active, fault or stopped.
    pub role: String,
    pub role_since_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    pub config_file: String,
    pub serial: u64,
    pub started_unix_ms: u64,
    /// "available", or why IPVS cannot be programmed.
    pub ipvs: String,
    /// Standing warnings (unauthenticated heartbeats, a check that cannot run, …).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    pub state: String,
    pub priority: u8,
    pub serial: u64,
    pub last_heard_ms_ago: u64,
    pub leaving: bool,
    pub alive: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatStatus {
    pub authenticated: bool,
    pub port: u16,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub sent: u64,
    /// Of `sent`, probes: heartbeats sent because the peer's was overdue (a lossy path).
    #[serde(default)]
    pub probes: u64,
    pub accepted: u64,
    /// Authentic heartbeats not acted on because they do not echo this node's current
    /// start: a round trip's worth after either director starts, or replays.
    #[serde(default)]
    pub unverified: u64,
    /// Dropped datagrams by reason (forged, replayed, malformed, …).
    pub rejected: Vec<(String, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_mismatch: Option<(u64, u64)>,
    pub failovers: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddressStatus {
    pub address: String,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub owners: Vec<String>,
    /// Raised on this node now.
    pub up: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The virtual server's name.
    pub name: String,
    /// e.g. "TCP 10.0.0.100:80" or "FWM 5".
    pub service: String,
    pub scheduler: String,
    /// Present in the kernel's table at the last look.
    pub in_kernel: bool,
    /// The sorry server is in place because the quorum is lost.
    pub sorry: bool,
    pub connections: u64,
    pub cps: u64,
    pub inbps: u64,
    pub outbps: u64,
    /// The kernel's cumulative counters of the service; `None` when it is not in the
    /// kernel (or was not seen yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
    pub servers: Vec<ServerStatus>,
}

/// The kernel's cumulative traffic counters of a service or destination (`ipvsadm
/// --stats`), since it was created there: they restart at 0 when it is removed and
/// added again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl From<crate::ipvs::table::Stats> for Totals {
    fn from(s: crate::ipvs::table::Stats) -> Totals {
        Totals {
            conns: s.conns,
            inpkts: s.inpkts,
            outpkts: s.outpkts,
            inbytes: s.inbytes,
            outbytes: s.outbytes,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// up or down, from the health checks.
    pub health: String,
    /// An administrator drained it.
    pub drained: bool,
    pub configured_weight: u32,
    /// The weight wanted now (slow start, load, drain); `None`: out of the table.
    pub weight: Option<u32>,
    /// The weight in the kernel at the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_weight: Option<u32>,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub cps: u64,
    /// What the last check saw, its duration and when.
    pub last_check: String,
    pub last_check_ms: u64,
    pub last_check_unix_ms: u64,
    /// Checks run since the supervisor started (checks that could not run on this
    /// node are not counted), and how many of them failed.
    #[serde(default)]
    pub checks: u64,
    #[serde(default)]
    pub check_failures: u64,
    /// The kernel's cumulative counters of the destination; `None` when it is not in
    /// the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<EventRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalCheckStatus {
    pub name: String,
    pub health: String,
    pub last_check: String,
}

/// One state change and what caused it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub at_unix_ms: u64,
    /// "director", "service web", "server web/rs1", "address 10.0.0.1", …
    pub subject: String,
    pub state: String,
    pub cause: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot connect to the supervisor's control socket {path}: {source} (is `lvs-director pulse` running?)")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("control socket {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("control socket {path}: the supervisor's reply is not understood: {why}")]
    Reply { path: String, why: String },
}

/// Sends one request and waits (at most `timeout`) for its reply.
pub fn request(path: &Path, req: &Request, timeout: Duration) -> Result<Reply, ControlError> {
    let p = || path.display().to_string();
    let mut s =
        UnixStream::connect(path).map_err(|source| ControlError::Connect { path: p(), source })?;
    let io = |source| ControlError::Io { path: p(), source };
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    s.write_all(&line).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(ControlError::Reply {
            path: p(),
            why: "the connection closed without a reply".into(),
        });
    }
    serde_json::from_str(&reply).map_err(|e| ControlError::Reply {
        path: p(),
        why: e.to_string(),
    })
}

/// Parses one request line; the error is the reply to send.
pub fn parse_request(line: &str) -> Result<Request, Reply> {
    serde_json::from_str(line.trim()).map_err(|e| {
        Reply::refused(format!(
            "not a request ({e}); expected e.g. {{\"cmd\":\"status\"}}"
        ))
    })
}

fn ago(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms} ms ago")
    } else if ms < 120_000 {
        format!("{} s ago", ms / 1000)
    } else {
        format!("{} min ago", ms / 60_000)
    }
}

/// The status as `lvs-director status` prints it. `now_unix_ms` turns times into ages.
pub fn render(s: &Status, now_unix_ms: u64) -> String {
    use std::fmt::Write as _;
    let age = |t: u64| ago(now_unix_ms.saturating_sub(t));
    let mut o = String::new();
    let n = &s.node;
    let _ = writeln!(
        o,
        "director {} ({}): {} since {}",
        n.name,
        n.place,
        n.role.to_uppercase(),
        age(n.role_since_unix_ms)
    );
    if let Some(f) = &n.fault {
        let _ = writeln!(o, "  fault: {f}");
    }
    let _ = writeln!(o, "  config {} serial {}", n.config_file, n.serial);
    let _ = writeln!(o, "  ipvs: {}", n.ipvs);
    for w in &n.warnings {
        let _ = writeln!(o, "  WARNING: {w}");
    }
    let h = &s.heartbeat;
    match &s.peer {
        Some(p) => {
            let _ = writeln!(
                o,
                "peer {}: {}{} (last heartbeat {}, serial {})",
                p.name,
                p.state,
                if p.alive { "" } else { ", DEAD" },
                ago(p.last_heard_ms_ago),
                p.serial
            );
        }
        None if n.place == "standalone" => {
            let _ = writeln!(o, "no peer (backup_active = 0)");
        }
        None => {
            let _ = writeln!(o, "peer: not heard since start");
        }
    }
    if n.place != "standalone" {
        let rejected: u64 = h.rejected.iter().map(|(_, c)| c).sum();
        let _ = writeln!(
            o,
            "heartbeat: port {}, every {} ms, dead after {} ms, {}; sent {}, accepted {}, unverified {}, rejected {}{}; failovers {}",
            h.port,
            h.keepalive_ms,
            h.deadtime_ms,
            if h.authenticated { "authenticated" } else { "UNAUTHENTICATED" },
            h.sent,
            h.accepted,
            h.unverified,
            rejected,
            if h.rejected.is_empty() {
                String::new()
            } else {
                format!(" ({})", counts_by_reason(h.rejected.iter().map(|(w, c)| (w, c))))
            },
            h.failovers
        );
        if let Some((ours, theirs)) = h.serial_mismatch {
            let _ = writeln!(
                o,
                "  WARNING: lvs.cf serial differs: ours {ours}, the peer's {theirs}"
            );
        }
    }
    for v in &s.vrrp {
        let drops: u64 = v.dropped.values().sum();
        let _ = writeln!(
            o,
            "vrrp {} (router id {} on {}): {}{}, priority {}{}, master {}; adverts sent {}, received {}, dropped {}{}",
            v.name,
            v.vrid,
            v.interface,
            v.state,
            v.fault
                .as_ref()
                .map_or_else(String::new, |f| format!(" ({f})")),
            v.effective_priority,
            if v.effective_priority == v.priority {
                String::new()
            } else {
                format!(" (configured {})", v.priority)
            },
            v.master.map_or_else(|| "not heard".to_string(), |a| a.to_string()),
            v.adverts_sent,
            v.adverts_received,
            drops,
            if v.dropped.is_empty() {
                String::new()
            } else {
                format!(" ({})", counts_by_reason(&v.dropped))
            }
        );
    }
    if !s.addresses.is_empty() {
        let _ = writeln!(o, "addresses:");
        for a in &s.addresses {
            let _ = writeln!(
                o,
                "  {:<28} {:<10} {:<5} {}",
                a.address,
                a.label.as_deref().unwrap_or(&a.device),
                if a.up { "up" } else { "-" },
                a.owners.join(", ")
            );
        }
    }
    for sv in &s.services {
        let _ = writeln!(
            o,
            "virtual {}: {} {}{}{}  conns {} cps {}",
            sv.name,
            sv.service,
            sv.scheduler,
            if sv.in_kernel { "" } else { " (not in kernel)" },
            if sv.sorry { " SORRY SERVER" } else { "" },
            sv.connections,
            sv.cps
        );
        for r in &sv.servers {
            let weight = match (r.weight, r.kernel_weight) {
                (Some(w), Some(k)) if w == k => format!("{w}"),
                (Some(w), Some(k)) => format!("{w} (kernel {k})"),
                (Some(w), None) => format!("{w} (not in kernel)"),
                (None, _) => "out".to_string(),
            };
            let _ = writeln!(
                o,
                "  {:<16} {:<24} {:<5}{} weight {}/{} active {} inactive {}  check: {} ({} ms, {})",
                r.name,
                format!("{}:{}", r.address, r.port),
                r.health.to_uppercase(),
                if r.drained { " DRAINED" } else { "" },
                weight,
                r.configured_weight,
                r.active_conns,
                r.inactive_conns,
                r.last_check,
                r.last_check_ms,
                if r.last_check_unix_ms == 0 {
                    "not yet".to_string()
                } else {
                    age(r.last_check_unix_ms)
                }
            );
            if let Some(t) = &r.transition {
                let _ = writeln!(
                    o,
                    "  {:<16} {} {}: {}",
                    "",
                    t.state,
                    age(t.at_unix_ms),
                    t.cause
                );
            }
        }
    }
    for l in &s.local_checks {
        let _ = writeln!(
            o,
            "local check {}: {} ({})",
            l.name,
            l.health.to_uppercase(),
            l.last_check
        );
    }
    if !s.events.is_empty() {
        let _ = writeln!(o, "recent changes:");
        for e in s.events.iter().rev().take(10) {
            let _ = writeln!(
                o,
                "  {:>12}  {} -> {}: {}",
                age(e.at_unix_ms),
                e.subject,
                e.state,
                e.cause
            );
        }
    }
    o
}

/// "3 forged, 1 replayed": counts by reason, in the order given.
pub fn counts_by_reason<'a>(counts: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    counts
        .into_iter()
        .map(|(why, c)| format!("{c} {why}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        assert_eq!(
            parse_request(r#"{"cmd":"drain","virtual":"web","server":"rs1"}"#).unwrap(),
            Request::Drain {
                virtual_server: "web".into(),
                server: "rs1".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::HandOver).unwrap(),
            r#"{"cmd":"hand_over"}"#
        );
        let e = parse_request(r#"{"cmd":"explode"}"#).unwrap_err();
        assert!(!e.ok);
        assert!(e.error.unwrap().contains("expected e.g."));
    }

    #[test]
    fn status_reads_back_and_prints_what_matters() {
        let s = Status {
            version: "0.1.0".into(),
            node: NodeStatus {
                name: "10.0.0.1".into(),
                place: "primary".into(),
                role: "active".into(),
                role_since_unix_ms: 1_000,
                config_file: "/etc/lvs-director/lvs.cf".into(),
                serial: 7,
                ipvs: "available".into(),
                warnings: vec!["heartbeats are not authenticated".into()],
                ..Default::default()
            },
            peer: Some(PeerStatus {
                name: "10.0.0.2".into(),
                state: "standby".into(),
                serial: 6,
                last_heard_ms_ago: 40,
                alive: true,
                ..Default::default()
            }),
            heartbeat: HeartbeatStatus {
                port: 539,
                rejected: vec![("forged".into(), 3)],
                serial_mismatch: Some((7, 6)),
                ..Default::default()
            },
            services: vec![ServiceStatus {
                name: "web".into(),
                service: "TCP 10.0.0.100:80".into(),
                scheduler: "wlc".into(),
                in_kernel: true,
                servers: vec![ServerStatus {
                    name: "rs1".into(),
                    address: "192.168.0.11".into(),
                    port: 80,
                    health: "down".into(),
                    configured_weight: 5,
                    weight: None,
                    last_check: "connection refused".into(),
                    transition: Some(EventRecord {
                        at_unix_ms: 2_000,
                        subject: "server web/rs1".into(),
                        state: "down".into(),
                        cause: "3 consecutive failed check(s): connection refused".into(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = serde_json::to_string(&Reply::status(s.clone())).unwrap();
        let back: Reply = serde_json::from_str(&json).unwrap();
        assert_eq!(back.status.as_deref(), Some(&s));
        let mut counted = s.clone();
        counted.services[0].totals = Some(Totals {
            conns: 1,
            inpkts: 2,
            outpkts: 3,
            inbytes: 4,
            outbytes: 5,
        });
        counted.services[0].servers[0].checks = 9;
        counted.services[0].servers[0].check_failures = 3;
        counted.services[0].servers[0].totals = counted.services[0].totals;
        let json = serde_json::to_string(&counted).unwrap();
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), counted);
        // A status from a supervisor without these counters still reads.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        let sv = &mut old["services"][0];
        sv.as_object_mut().unwrap().remove("totals");
        for field in ["totals", "checks", "check_failures"] {
            sv["servers"][0].as_object_mut().unwrap().remove(field);
        }
        assert_eq!(serde_json::from_value::<Status>(old).unwrap(), s);
        let text = render(&s, 5_000);
        for want in [
            "director 10.0.0.1 (primary): ACTIVE since 4000 ms ago",
            "WARNING: heartbeats are not authenticated",
            "peer 10.0.0.2: standby (last heartbeat 40 ms ago, serial 6)",
            "rejected 3 (3 forged)",
            "serial differs: ours 7, the peer's 6",
            "rs1",
            "DOWN",
            "weight out/5",
            "down 3000 ms ago: 3 consecutive failed check(s)",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
