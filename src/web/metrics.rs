//! `/metrics`: the supervisor's status in the Prometheus text exposition format
//! (version 0.0.4), for Prometheus to scrape.
//!
//! - [`render`] is pure: a status (or none, when the supervisor cannot be asked) in,
//!   the text out. The text is written by the `prometheus-client` crate (its
//!   Prometheus text encoder, which escapes label values and help texts), from the
//!   families built here in a fixed order.
//! - Who may scrape is the operator's choice (`lvs-director web`): with
//!   `--metrics-token-file` a request needs `Authorization: Bearer <token>` ([`Token`],
//!   compared in constant time) and `/metrics` is then also served on the main port,
//!   outside the session check; with `--metrics-listen` a second listener serves only
//!   `/metrics` ([`router`]), without a token unless one is also given. With neither,
//!   the main port has no `/metrics` (an unknown page behind the login, like any
//!   other).
//! - Nothing is made up: without the supervisor there is only
//!   `lvs_director_supervisor_up 0`; the kernel's counters of a service or real server
//!   appear only while it is in the kernel.

use std::future::Future;
use std::path::Path;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use super::live::LiveStatus;
use super::AppState;
use crate::pulse::logic::control::{ServerStatus, ServiceStatus, Status, Totals};

/// The prefix of every metric name.
pub const PREFIX: &str = "lvs_director";

/// The `Content-Type` of the answer (the Prometheus text format, version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The roles a director can be in, as `lvs_director_role{role=…}` lists them.
pub const ROLES: [&str; 5] = ["starting", "standby", "active", "fault", "stopped"];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// One metric family: its name (without the prefix, and for a counter without
/// `_total`, which the encoder adds), help, type and samples in order.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    counter: bool,
    samples: Vec<(Labels, Value)>,
}

/// Every family of one scrape, in the order they are written.
#[derive(Debug, Default)]
struct Families(Vec<Family>);

impl Families {
    fn family(&mut self, name: &'static str, help: &'static str, counter: bool) -> &mut Family {
        if let Some(i) = self.0.iter().position(|f| f.name == name) {
            return &mut self.0[i];
        }
        self.0.push(Family {
            name,
            help,
            counter,
            samples: Vec::new(),
        });
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        v: impl Into<Value>,
    ) {
        self.family(name, help, false)
            .samples
            .push((labels, v.into()));
    }

    fn counter(&mut self, name: &'static str, help: &'static str, labels: Labels, v: u64) {
        self.family(name, help, true)
            .samples
            .push((labels, Value::Int(v)));
    }
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in self.0.iter().filter(|f| !f.samples.is_empty()) {
            let kind = if f.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut metric = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            for (labels, value) in &f.samples {
                let sample = metric.encode_family(labels)?;
                match (f.counter, *value) {
                    (true, Value::Int(v)) => ConstCounter::new(v).encode(sample)?,
                    (true, Value::Float(v)) => ConstCounter::new(v).encode(sample)?,
                    (false, Value::Int(v)) => ConstGauge::new(v).encode(sample)?,
                    (false, Value::Float(v)) => ConstGauge::new(v).encode(sample)?,
                }
            }
        }
        Ok(())
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// `addr:port`, with an IPv6 address in brackets.
fn endpoint(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// The text of one scrape: `status` as the supervisor gave it, or `None` when it could
/// not be asked (then only `lvs_director_supervisor_up 0`).
pub fn render(status: Option<&Status>) -> String {
    render_with(status, None)
}

/// [`render`], with configuration sync's state when the admin UI runs it.
pub fn render_with(
    status: Option<&Status>,
    sync: Option<&crate::cluster::service::View>,
) -> String {
    let mut m = Families::default();
    m.gauge(
        "supervisor_up",
        "Whether the supervisor (lvs-director pulse) answered on its control socket.",
        vec![],
        status.is_some(),
    );
    if let Some(s) = status {
        director(&mut m, s);
        for v in &s.vrrp {
            vrrp(&mut m, v);
        }
        for sv in &s.services {
            service(&mut m, sv);
        }
        for sv in &s.services {
            for r in &sv.servers {
                real_server(&mut m, sv, r);
            }
        }
    }
    if let Some(v) = sync {
        cluster(&mut m, v);
    }
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(m));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        // Writing to a String does not fail; the scrape would be incomplete if it did.
        tracing::error!("metrics: cannot encode: {e}");
    }
    out
}

fn cluster(m: &mut Families, v: &crate::cluster::service::View) {
    use crate::cluster::lineage::Relation;
    m.gauge(
        "sync_on",
        "Whether configuration sync with the peer directors is on (off without a heartbeat key or a peer).",
        vec![],
        v.off.is_none() && !v.alone,
    );
    m.counter(
        "sync_refused",
        "Sync connections refused because they did not authenticate (forged, replayed, or another key).",
        vec![],
        v.refused,
    );
    m.counter(
        "sync_taken",
        "Configurations taken from a peer.",
        vec![],
        v.taken,
    );
    for p in &v.peers {
        let state = match (&p.error, &p.conflict, p.relation) {
            (Some(_), _, _) => "unreachable",
            (None, Some(_), _) => "conflict",
            (None, None, Some(Relation::InStep)) => "in_step",
            (None, None, Some(Relation::PeerNewer)) => "peer_newer",
            (None, None, Some(Relation::LocalNewer)) => "local_newer",
            (None, None, Some(Relation::Diverged) | None) => "unknown",
        };
        for s in [
            "in_step",
            "peer_newer",
            "local_newer",
            "conflict",
            "unreachable",
            "unknown",
        ] {
            m.gauge(
                "sync_peer_state",
                "Configuration sync with each peer: 1 for its current state.",
                labels([("peer", &p.name), ("state", s)]),
                s == state,
            );
        }
        if let Some(h) = &p.head {
            m.gauge(
                "sync_peer_serial",
                "The lvs.cf serial the peer runs, as it last said.",
                labels([("peer", &p.name)]),
                h.serial,
            );
        }
    }
}

fn director(m: &mut Families, s: &Status) {
    let n = &s.node;
    m.gauge(
        "info",
        "This director: its name, its place (primary, backup or standalone) and version.",
        labels([
            ("director", &n.name),
            ("place", &n.place),
            ("version", &s.version),
        ]),
        1u64,
    );
    for role in ROLES {
        m.gauge(
            "role",
            "The director's role: 1 for the current one (active serves the virtual addresses).",
            labels([("role", role)]),
            n.role == role,
        );
    }
    m.gauge(
        "role_changed_timestamp_seconds",
        "When the director took its current role (Unix time).",
        vec![],
        seconds(n.role_since_unix_ms),
    );
    m.gauge(
        "config_serial",
        "The serial_no of the lvs.cf in force.",
        vec![],
        n.serial,
    );
    m.gauge(
        "ipvs_available",
        "Whether the kernel's IPVS table can be programmed.",
        vec![],
        n.ipvs == "available",
    );
    m.gauge(
        "warnings",
        "Standing warnings of the supervisor (see lvs-director status).",
        vec![],
        n.warnings.len() as u64,
    );
    m.counter(
        "failovers",
        "Times this director took the virtual addresses (became active).",
        vec![],
        s.heartbeat.failovers,
    );
    if n.place != "standalone" {
        let h = &s.heartbeat;
        m.gauge(
            "peer_up",
            "Whether the peer director is heard (its heartbeats arrive within deadtime).",
            vec![],
            s.peer.as_ref().is_some_and(|p| p.alive),
        );
        if let Some(p) = &s.peer {
            m.gauge(
                "peer_info",
                "The peer director as last heard: its name and state.",
                labels([("peer", &p.name), ("state", &p.state)]),
                1u64,
            );
            m.gauge(
                "peer_heartbeat_age_seconds",
                "Time since the peer's last accepted heartbeat.",
                vec![],
                seconds(p.last_heard_ms_ago),
            );
        }
        m.gauge(
            "heartbeat_authenticated",
            "Whether heartbeats are authenticated (a heartbeat key is set).",
            vec![],
            h.authenticated,
        );
        m.gauge(
            "config_serial_mismatch",
            "Whether the peer runs an lvs.cf with another serial_no.",
            vec![],
            h.serial_mismatch.is_some(),
        );
        m.counter(
            "heartbeats_sent",
            "Heartbeat datagrams sent to the peer.",
            vec![],
            h.sent,
        );
        m.counter(
            "heartbeat_probes_sent",
            "Of the heartbeats sent, probes: sent because the peer's heartbeat was overdue (a lossy path).",
            vec![],
            h.probes,
        );
        m.counter(
            "heartbeats_accepted",
            "Heartbeat datagrams accepted from the peer.",
            vec![],
            h.accepted,
        );
        for (reason, count) in &h.rejected {
            m.counter(
                "heartbeats_rejected",
                "Heartbeat datagrams dropped, by reason (forged, replayed, malformed, ...).",
                labels([("reason", reason)]),
                *count,
            );
        }
    }
    for a in &s.addresses {
        m.gauge(
            "address_up",
            "Whether a floating address is raised on this director.",
            labels([("address", &a.address), ("device", &a.device)]),
            a.up,
        );
    }
    for l in &s.local_checks {
        m.gauge(
            "local_check_up",
            "Whether a local check (a service this director needs) passes.",
            labels([("check", &l.name)]),
            l.health == "up",
        );
    }
}

/// The VRRP state names, as keepalived and `status` write them.
const VRRP_STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

fn vrrp(m: &mut Families, v: &crate::pulse::logic::control::VrrpStatus) {
    let vrid = v.vrid.to_string();
    let base = labels([
        ("instance", v.name.as_str()),
        ("interface", &v.interface),
        ("vrid", &vrid),
    ]);
    let with = |k: &'static str, val: &str| {
        let mut l = base.clone();
        l.push((k, val.to_string()));
        l
    };
    for state in VRRP_STATES {
        m.gauge(
            "vrrp_state",
            "A VRRP instance's state: 1 for the current one (MASTER holds the addresses).",
            with("state", state),
            v.state == state,
        );
    }
    m.gauge(
        "vrrp_priority",
        "A VRRP instance's configured priority.",
        base.clone(),
        u64::from(v.priority),
    );
    m.gauge(
        "vrrp_effective_priority",
        "A VRRP instance's priority as advertised: the configured one moved by its trackers' weights.",
        base.clone(),
        u64::from(v.effective_priority),
    );
    if let Some(master) = v.master {
        m.gauge(
            "vrrp_master_info",
            "The current master of a VRRP instance as last heard (this director's own address when it is master).",
            with("master", &master.to_string()),
            1u64,
        );
    }
    m.counter(
        "vrrp_adverts_sent",
        "VRRP adverts sent by an instance (priority-0 adverts included).",
        base.clone(),
        v.adverts_sent,
    );
    m.counter(
        "vrrp_adverts_received",
        "VRRP adverts received for an instance's virtual router id.",
        base.clone(),
        v.adverts_received,
    );
    for (reason, count) in &v.dropped {
        m.counter(
            "vrrp_adverts_dropped",
            "VRRP adverts not acted on, by reason (ttl, version, authentication, interval, addresses, checksum, virtual router id, ...).",
            with("reason", reason),
            *count,
        );
    }
}

fn traffic(
    m: &mut Families,
    names: [&'static str; 3],
    helps: [&'static str; 3],
    base: &Labels,
    t: &Totals,
) {
    m.counter(names[0], helps[0], base.clone(), t.conns);
    for (direction, packets, bytes) in [("in", t.inpkts, t.inbytes), ("out", t.outpkts, t.outbytes)]
    {
        let mut l = base.clone();
        l.push(("direction", direction.to_string()));
        m.counter(names[1], helps[1], l.clone(), packets);
        m.counter(names[2], helps[2], l, bytes);
    }
}

fn service(m: &mut Families, sv: &ServiceStatus) {
    let base = labels([("virtual", &sv.name), ("service", &sv.service)]);
    m.gauge(
        "service_in_kernel",
        "Whether the virtual service is in the kernel's IPVS table.",
        base.clone(),
        sv.in_kernel,
    );
    m.gauge(
        "service_sorry_server_active",
        "Whether the sorry server is in place because the quorum is lost (by default: no healthy real server has weight).",
        base.clone(),
        sv.sorry,
    );
    if let Some(t) = &sv.totals {
        traffic(
            m,
            [
                "service_connections",
                "service_packets",
                "service_bytes",
            ],
            [
                "Connections the kernel scheduled for the virtual service since it was created there.",
                "Packets through the virtual service (kernel counter), by direction.",
                "Bytes through the virtual service (kernel counter), by direction.",
            ],
            &base,
            t,
        );
    }
}

fn real_server(m: &mut Families, sv: &ServiceStatus, r: &ServerStatus) {
    let up = match r.health.as_str() {
        "up" => true,
        "down" => false,
        // Inactive in lvs.cf (or in an inactive virtual server): not checked, not in
        // the kernel, nothing to say.
        _ => return,
    };
    let base = labels([
        ("virtual", &sv.name),
        ("server", &r.name),
        ("address", &endpoint(&r.address, r.port)),
    ]);
    m.gauge(
        "real_server_up",
        "Whether the real server passes its health checks.",
        base.clone(),
        up,
    );
    m.gauge(
        "real_server_drained",
        "Whether an administrator drained the real server (weight 0).",
        base.clone(),
        r.drained,
    );
    m.gauge(
        "real_server_configured_weight",
        "The real server's weight in lvs.cf.",
        base.clone(),
        r.configured_weight,
    );
    if let Some(w) = r.kernel_weight {
        m.gauge(
            "real_server_weight",
            "The real server's weight in the kernel's IPVS table (0: no new connections).",
            base.clone(),
            w,
        );
        m.gauge(
            "real_server_active_connections",
            "Active connections to the real server (kernel).",
            base.clone(),
            r.active_conns,
        );
        m.gauge(
            "real_server_inactive_connections",
            "Inactive connections to the real server (kernel).",
            base.clone(),
            r.inactive_conns,
        );
    }
    if let Some(t) = &r.totals {
        traffic(
            m,
            [
                "real_server_connections",
                "real_server_packets",
                "real_server_bytes",
            ],
            [
                "Connections the kernel sent to the real server since it was added there.",
                "Packets to and from the real server (kernel counter), by direction.",
                "Bytes to and from the real server (kernel counter), by direction.",
            ],
            &base,
            t,
        );
    }
    m.counter(
        "real_server_checks",
        "Health checks of the real server run since the supervisor started.",
        base.clone(),
        r.checks,
    );
    m.counter(
        "real_server_check_failures",
        "Health checks of the real server that failed since the supervisor started.",
        base.clone(),
        r.check_failures,
    );
    if r.last_check_unix_ms != 0 {
        m.gauge(
            "real_server_check_duration_seconds",
            "How long the last health check of the real server took.",
            base.clone(),
            seconds(r.last_check_ms),
        );
        m.gauge(
            "real_server_last_check_timestamp_seconds",
            "When the last health check of the real server ended (Unix time).",
            base,
            seconds(r.last_check_unix_ms),
        );
    }
}

/// The secret a scraper must present, kept as its SHA-256 so that comparing takes the
/// same time whatever the length and content of what is presented.
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Why a metrics token was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the metrics token is empty")]
    Empty,
    #[error(
        "the metrics token is too short: use 16 characters or more (e.g. `openssl rand -hex 32`)"
    )]
    Short,
    #[error("the metrics token must be one word of printable ASCII characters")]
    NotAWord,
    #[error("--metrics-token-file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--metrics-token-file {path}: {what}")]
    In { path: String, what: Box<TokenError> },
}

impl Token {
    /// A token from its text (surrounding white space, such as the file's final
    /// newline, is not part of it).
    pub fn new(secret: &str) -> Result<Token, TokenError> {
        let t = secret.trim();
        if t.is_empty() {
            return Err(TokenError::Empty);
        }
        if t.len() < 16 {
            return Err(TokenError::Short);
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotAWord);
        }
        Ok(Token {
            digest: sha256(t.as_bytes()),
        })
    }

    /// Reads the token from `path` (warns when others may read the file).
    pub fn read(path: &Path) -> Result<Token, TokenError> {
        use std::os::unix::fs::PermissionsExt;
        let text = std::fs::read_to_string(path).map_err(|e| TokenError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o004 != 0 {
                tracing::warn!(
                    "--metrics-token-file {}: every user of this host can read it (chmod 600 or 640)",
                    path.display()
                );
            }
        }
        Token::new(&text).map_err(|e| TokenError::In {
            path: path.display().to_string(),
            what: Box::new(e),
        })
    }

    /// Whether `given` is the token, in time independent of both.
    pub fn matches(&self, given: &str) -> bool {
        let d = sha256(given.as_bytes());
        d.iter()
            .zip(&self.digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Whether the request's `Authorization` header is `Bearer <this token>`.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, credentials)) = value.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.matches(credentials.trim())
    }
}

/// `GET /metrics`: the token first when one is configured, then the status (the one
/// the monitoring page uses, at most a second old).
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        if !token.authorizes(&headers) {
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"lvs-director metrics\""),
                )],
                "a bearer token is required: Authorization: Bearer <the token of --metrics-token-file>\n",
            )
                .into_response();
        }
    }
    let live = state.live.status().await;
    let sync = state.cluster.view();
    let body = match &*live {
        LiveStatus::Running(s) => render_with(Some(s), Some(&sync)),
        LiveStatus::Unavailable(_) => render_with(None, Some(&sync)),
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// The router of the metrics listener (`--metrics-listen`): `/metrics` and nothing
/// else.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "only /metrics is served on this address\n",
            )
        });
    let database = state.store.path();
    let app = app.with_state(state);
    super::security::apply(app, false, Some(database))
}

/// Serves [`router`] on `listener` (plain HTTP) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Scrapers are few: a small share of the descriptors is plenty.
    let limits = super::server::Limits::for_descriptors(128);
    super::server::serve(listener, None, router(state), limits, shutdown).await
}

/// The strict exposition reader of the tests (shared with tests/metrics.rs).
#[cfg(test)]
#[path = "../../tests/common/prom.rs"]
mod prom;

#[cfg(test)]
mod tests {
    use super::prom;
    use super::*;
    use crate::pulse::logic::control::{
        AddressStatus, HeartbeatStatus, LocalCheckStatus, NodeStatus, PeerStatus,
    };

    fn status() -> Status {
        let totals = |n: u64| Totals {
            conns: n,
            inpkts: n * 10,
            outpkts: n * 8,
            inbytes: n * 1500,
            outbytes: n * 12_000,
        };
        Status {
            vrrp: Vec::new(),
            version: "0.1.0".into(),
            node: NodeStatus {
                name: "lb1".into(),
                place: "primary".into(),
                role: "active".into(),
                role_since_unix_ms: 1_700_000_000_500,
                serial: 42,
                ipvs: "available".into(),
                warnings: vec!["heartbeats are not authenticated".into()],
                ..Default::default()
            },
            peer: Some(PeerStatus {
                name: "lb2".into(),
                state: "standby".into(),
                last_heard_ms_ago: 250,
                alive: true,
                ..Default::default()
            }),
            heartbeat: HeartbeatStatus {
                sent: 100,
                accepted: 98,
                rejected: vec![("forged".into(), 3), ("replayed".into(), 1)],
                failovers: 2,
                ..Default::default()
            },
            addresses: vec![AddressStatus {
                address: "10.0.0.100/24".into(),
                device: "eth0".into(),
                up: true,
                ..Default::default()
            }],
            services: vec![
                ServiceStatus {
                    name: "web".into(),
                    service: "TCP 10.0.0.100:80".into(),
                    in_kernel: true,
                    totals: Some(totals(1000)),
                    servers: vec![
                        ServerStatus {
                            name: "rs1".into(),
                            address: "192.168.0.11".into(),
                            port: 80,
                            health: "up".into(),
                            configured_weight: 5,
                            weight: Some(5),
                            kernel_weight: Some(5),
                            active_conns: 7,
                            inactive_conns: 30,
                            last_check: "connected".into(),
                            last_check_ms: 4,
                            last_check_unix_ms: 1_700_000_001_000,
                            checks: 120,
                            check_failures: 2,
                            totals: Some(totals(600)),
                            ..Default::default()
                        },
                        ServerStatus {
                            name: "rs2".into(),
                            address: "fd00::12".into(),
                            port: 8080,
                            health: "down".into(),
                            configured_weight: 1,
                            last_check: "connection refused".into(),
                            last_check_ms: 1,
                            last_check_unix_ms: 1_700_000_001_100,
                            checks: 120,
                            check_failures: 119,
                            ..Default::default()
                        },
                        ServerStatus {
                            name: "spare".into(),
                            address: "192.168.0.13".into(),
                            port: 80,
                            health: "inactive".into(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                ServiceStatus {
                    name: "dns".into(),
                    service: "UDP 10.0.0.100:53".into(),
                    servers: vec![],
                    ..Default::default()
                },
            ],
            local_checks: vec![LocalCheckStatus {
                name: "nginx".into(),
                health: "down".into(),
                last_check: "refused".into(),
            }],
            events: vec![],
        }
    }

    #[test]
    fn without_the_supervisor_there_is_only_its_absence() {
        let text = render(None);
        let families = prom::parse(&text).unwrap();
        assert_eq!(families.len(), 1, "{text}");
        assert_eq!(
            prom::value(&families, "lvs_director_supervisor_up", &[]),
            0.0
        );
        assert!(text.contains("# TYPE lvs_director_supervisor_up gauge\n"));
        assert!(text.ends_with("lvs_director_supervisor_up 0\n"), "{text}");
    }

    #[test]
    fn each_vrrp_instance_reads_back_from_the_text() {
        let mut s = status();
        s.vrrp = vec![crate::pulse::logic::control::VrrpStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            state: "BACKUP".into(),
            fault: None,
            vrid: 51,
            priority: 150,
            effective_priority: 90,
            master: Some("10.0.0.2".parse().unwrap()),
            adverts_sent: 12,
            adverts_received: 340,
            dropped: [("ttl".to_string(), 2), ("virtual router id".to_string(), 5)].into(),
        }];
        let text = render(Some(&s));
        let f = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let base = [("instance", "VI_1"), ("interface", "eth0"), ("vrid", "51")];
        let v = |name: &str, extra: &[(&str, &str)]| {
            let mut l = base.to_vec();
            l.extend_from_slice(extra);
            prom::value(&f, name, &l)
        };
        assert_eq!(v("lvs_director_vrrp_state", &[("state", "BACKUP")]), 1.0);
        assert_eq!(v("lvs_director_vrrp_state", &[("state", "MASTER")]), 0.0);
        assert_eq!(v("lvs_director_vrrp_priority", &[]), 150.0);
        assert_eq!(v("lvs_director_vrrp_effective_priority", &[]), 90.0);
        assert_eq!(
            v("lvs_director_vrrp_master_info", &[("master", "10.0.0.2")]),
            1.0
        );
        assert_eq!(v("lvs_director_vrrp_adverts_sent_total", &[]), 12.0);
        assert_eq!(v("lvs_director_vrrp_adverts_received_total", &[]), 340.0);
        assert_eq!(
            v(
                "lvs_director_vrrp_adverts_dropped_total",
                &[("reason", "virtual router id")]
            ),
            5.0
        );
    }

    #[test]
    fn the_status_reads_back_from_the_text() {
        let text = render(Some(&status()));
        let f = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let v = |name: &str, labels: &[(&str, &str)]| prom::value(&f, name, labels);
        assert_eq!(v("lvs_director_supervisor_up", &[]), 1.0);
        assert_eq!(
            v(
                "lvs_director_info",
                &[
                    ("director", "lb1"),
                    ("place", "primary"),
                    ("version", "0.1.0")
                ]
            ),
            1.0
        );
        for role in ROLES {
            let want = if role == "active" { 1.0 } else { 0.0 };
            assert_eq!(v("lvs_director_role", &[("role", role)]), want, "{role}");
        }
        assert_eq!(
            v("lvs_director_role_changed_timestamp_seconds", &[]),
            1_700_000_000.5
        );
        assert_eq!(v("lvs_director_config_serial", &[]), 42.0);
        assert_eq!(v("lvs_director_warnings", &[]), 1.0);
        assert_eq!(v("lvs_director_failovers_total", &[]), 2.0);
        assert_eq!(v("lvs_director_peer_up", &[]), 1.0);
        assert_eq!(v("lvs_director_peer_heartbeat_age_seconds", &[]), 0.25);
        assert_eq!(v("lvs_director_heartbeats_sent_total", &[]), 100.0);
        assert_eq!(v("lvs_director_heartbeats_accepted_total", &[]), 98.0);
        assert_eq!(
            v(
                "lvs_director_heartbeats_rejected_total",
                &[("reason", "forged")]
            ),
            3.0
        );
        assert_eq!(
            v(
                "lvs_director_address_up",
                &[("address", "10.0.0.100/24"), ("device", "eth0")]
            ),
            1.0
        );
        assert_eq!(v("lvs_director_local_check_up", &[("check", "nginx")]), 0.0);

        let web = [("virtual", "web"), ("service", "TCP 10.0.0.100:80")];
        assert_eq!(v("lvs_director_service_in_kernel", &web), 1.0);
        assert_eq!(v("lvs_director_service_connections_total", &web), 1000.0);
        let with = |extra: (&'static str, &'static str)| {
            let mut l = web.to_vec();
            l.push(extra);
            l
        };
        assert_eq!(
            v(
                "lvs_director_service_bytes_total",
                &with(("direction", "in"))
            ),
            1_500_000.0
        );
        assert_eq!(
            v(
                "lvs_director_service_packets_total",
                &with(("direction", "out"))
            ),
            8000.0
        );
        let dns = [("virtual", "dns"), ("service", "UDP 10.0.0.100:53")];
        assert_eq!(v("lvs_director_service_in_kernel", &dns), 0.0);
        assert!(
            prom::find(&f, "lvs_director_service_connections_total", &dns).is_none(),
            "no kernel counters for a service the kernel does not have"
        );

        let rs1 = [
            ("virtual", "web"),
            ("server", "rs1"),
            ("address", "192.168.0.11:80"),
        ];
        assert_eq!(v("lvs_director_real_server_up", &rs1), 1.0);
        assert_eq!(v("lvs_director_real_server_weight", &rs1), 5.0);
        assert_eq!(v("lvs_director_real_server_active_connections", &rs1), 7.0);
        assert_eq!(
            v("lvs_director_real_server_inactive_connections", &rs1),
            30.0
        );
        assert_eq!(v("lvs_director_real_server_connections_total", &rs1), 600.0);
        assert_eq!(v("lvs_director_real_server_checks_total", &rs1), 120.0);
        assert_eq!(
            v("lvs_director_real_server_check_failures_total", &rs1),
            2.0
        );
        assert_eq!(
            v("lvs_director_real_server_check_duration_seconds", &rs1),
            0.004
        );
        let mut out = rs1.to_vec();
        out.push(("direction", "out"));
        assert_eq!(v("lvs_director_real_server_bytes_total", &out), 7_200_000.0);
        let rs2 = [
            ("virtual", "web"),
            ("server", "rs2"),
            ("address", "[fd00::12]:8080"),
        ];
        assert_eq!(v("lvs_director_real_server_up", &rs2), 0.0);
        assert_eq!(v("lvs_director_real_server_configured_weight", &rs2), 1.0);
        assert_eq!(
            v("lvs_director_real_server_check_failures_total", &rs2),
            119.0
        );
        assert!(
            prom::find(&f, "lvs_director_real_server_weight", &rs2).is_none(),
            "out of the kernel: no weight, no connections"
        );
        assert!(
            !text.contains("spare"),
            "an inactive real server is not reported"
        );
        // Types as Prometheus needs them.
        assert_eq!(
            prom::family(&f, "lvs_director_real_server_checks_total").kind,
            "counter"
        );
        assert_eq!(
            prom::family(&f, "lvs_director_real_server_weight").kind,
            "gauge"
        );
    }

    #[test]
    fn a_standalone_director_has_no_peer_metrics_and_an_unheard_peer_is_down() {
        let mut s = status();
        s.node.place = "standalone".into();
        s.peer = None;
        let text = render(Some(&s));
        assert!(!text.contains("peer"), "{text}");
        assert!(!text.contains("heartbeats_"), "{text}");
        s.node.place = "backup".into();
        let f = prom::parse(&render(Some(&s))).unwrap();
        assert_eq!(prom::value(&f, "lvs_director_peer_up", &[]), 0.0);
        assert!(prom::find(&f, "lvs_director_peer_heartbeat_age_seconds", &[]).is_none());
    }

    #[test]
    fn names_with_quotes_backslashes_and_newlines_are_escaped() {
        let mut s = status();
        let nasty = "we\"b\\x\nfoo} 1\nlvs_director_fake 1";
        s.services[0].name = nasty.into();
        s.services[0].servers[0].name = "rs\"1\\".into();
        s.heartbeat.rejected = vec![("bad\nreason".into(), 1)];
        let text = render(Some(&s));
        assert!(
            text.contains(r#"virtual="we\"b\\x\nfoo} 1\nlvs_director_fake 1""#),
            "{text}"
        );
        assert!(text.contains(r#"server="rs\"1\\""#), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("lvs_director_fake")));
        let f = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            prom::value(
                &f,
                "lvs_director_service_in_kernel",
                &[("virtual", nasty), ("service", "TCP 10.0.0.100:80")]
            ),
            1.0
        );
        assert_eq!(
            prom::value(
                &f,
                "lvs_director_real_server_up",
                &[
                    ("virtual", nasty),
                    ("server", "rs\"1\\"),
                    ("address", "192.168.0.11:80")
                ]
            ),
            1.0
        );
        assert_eq!(
            prom::value(
                &f,
                "lvs_director_heartbeats_rejected_total",
                &[("reason", "bad\nreason")]
            ),
            1.0
        );
    }

    #[test]
    fn the_token_is_needed_whole_and_exact() {
        assert!(Token::new("").is_err());
        assert!(Token::new(" \n").is_err());
        assert!(Token::new("short").is_err());
        assert!(Token::new("two words here, long enough").is_err());
        let t = Token::new("0123456789abcdef0123\n").unwrap();
        assert!(t.matches("0123456789abcdef0123"));
        assert!(!t.matches("0123456789abcdef012"));
        assert!(!t.matches("0123456789abcdef01234"));
        assert!(!t.matches(""));
        let auth = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            t.authorizes(&h)
        };
        assert!(auth("Bearer 0123456789abcdef0123"));
        assert!(auth("bearer 0123456789abcdef0123"));
        assert!(!auth("Basic 0123456789abcdef0123"));
        assert!(!auth("Bearer 0123456789abcdef0124"));
        assert!(!auth("0123456789abcdef0123"));
        assert!(!t.authorizes(&HeaderMap::new()));
        assert_eq!(format!("{t:?}"), "Token(…)", "the debug form hides it");
    }
}
