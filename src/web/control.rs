//! CONTROL/MONITORING: this director's role and the peer's, the live IPVS table with
//! each real server's health, weight, connections and rates, and the recent state
//! changes with their causes, from the supervisor's control socket. The page refreshes
//! its live part by itself (`/control/live`, polled by `static/app.js`). Without a
//! supervisor it says so plainly and shows the stored configuration instead.

use crate::sync::Recover;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::auth::{with_flash, AdminPost, Auth};
use super::live::LiveStatus;
use super::{html, see_other, AppState, Chrome, WebError};
use crate::cluster::service::PeerStatus;
use crate::config::{Config, VirtualServer};
use crate::pulse::io::command::hide_output;
use crate::pulse::logic::control::{EventRecord, Request, ServerStatus, ServiceStatus, Status};

/// Services shown per page of the monitoring table.
pub const PAGE_SIZE: usize = 25;
/// The refresh intervals offered, in seconds (0: off).
const REFRESH_CHOICES: &[u32] = &[0, 2, 5, 10, 30, 60];
/// Recent state changes shown.
const EVENTS_SHOWN: usize = 30;

#[derive(Debug, Deserialize, Default)]
pub struct ViewQuery {
    #[serde(default)]
    pub page: Option<usize>,
    #[serde(default)]
    pub q: Option<String>,
    /// Only services with a real server that is not up, or not in the kernel.
    #[serde(default)]
    pub problems: Option<String>,
    #[serde(default)]
    pub refresh: Option<u32>,
}

impl ViewQuery {
    fn filter(&self) -> String {
        self.q.clone().unwrap_or_default().trim().to_string()
    }
    fn problems_only(&self) -> bool {
        self.problems.as_deref().is_some_and(|p| !p.is_empty())
    }
}

/// A time as `2026-12-02 03:40:12 UTC`.
pub fn when(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return "never".into();
    }
    let t = UNIX_EPOCH + Duration::from_millis(unix_ms);
    // In place, one allocation: this runs for every real server row of the page.
    let mut s = String::with_capacity(24);
    let _ = std::fmt::Write::write_fmt(
        &mut s,
        format_args!("{}", humantime::format_rfc3339_seconds(t)),
    );
    if let Some(i) = s.find('T') {
        s.replace_range(i..i + 1, " ");
    }
    if s.ends_with('Z') {
        s.pop();
        s.push_str(" UTC");
    }
    s
}

/// How long ago, short.
pub fn ago(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{ms} ms ago"),
        10_000..=119_999 => format!("{} s ago", ms / 1000),
        120_000..=7_199_999 => format!("{} min ago", ms / 60_000),
        _ => format!("{} h ago", ms / 3_600_000),
    }
}

#[derive(Debug, Clone, Default)]
pub struct ServerRow {
    pub name: String,
    pub address: String,
    /// `up`, `down`, `drained`, `inactive`…: also the CSS class.
    pub health: String,
    pub weight: String,
    pub kernel_weight: String,
    pub active: u32,
    pub inactive: u32,
    pub cps: u64,
    pub last_check: String,
    pub transition: String,
    /// Its health as each peer director sees it, in [`LiveView::directors`] order
    /// (after this one), and whether that differs from this director's view.
    pub peers: Vec<(String, bool)>,
    /// Its health over the last hour (an SVG of numbers and fixed words only).
    pub timeline: String,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceRow {
    pub name: String,
    pub service: String,
    pub scheduler: String,
    pub state: String,
    pub connections: u64,
    pub cps: u64,
    pub rates: String,
    pub servers: Vec<ServerRow>,
    /// Connections and bytes per second over the last hour (SVGs of numbers and
    /// fixed words only), with their peaks in words.
    pub cps_plot: String,
    pub cps_peak: String,
    pub bps_plot: String,
    pub bps_peak: String,
}

#[derive(Debug, Clone, Default)]
pub struct EventRow {
    pub at: String,
    pub subject: String,
    pub state: String,
    pub cause: String,
}

/// One VRRP instance, display-ready.
#[derive(Debug, Clone, Default)]
pub struct VrrpRow {
    pub name: String,
    /// "router id 51 on eth0"
    pub router: String,
    /// MASTER, BACKUP, FAULT or INIT, lower-cased for the style.
    pub state: String,
    /// Why in FAULT (or what INIT waits for); empty otherwise.
    pub fault: String,
    /// "150", or "90 (configured 150)" when trackers moved it.
    pub priority: String,
    pub master: String,
    pub sent: u64,
    pub received: u64,
    /// "none", or "3 (2 ttl, 1 authentication)".
    pub dropped: String,
}

fn vrrp_row(v: &crate::pulse::logic::control::VrrpStatus) -> VrrpRow {
    let total: u64 = v.dropped.values().sum();
    VrrpRow {
        name: v.name.clone(),
        router: format!("router id {} on {}", v.vrid, v.interface),
        state: v.state.clone(),
        fault: v.fault.clone().unwrap_or_default(),
        priority: if v.effective_priority == v.priority {
            v.priority.to_string()
        } else {
            format!("{} (configured {})", v.effective_priority, v.priority)
        },
        master: v
            .master
            .map_or_else(|| "not heard".to_string(), |a| a.to_string()),
        sent: v.adverts_sent,
        received: v.adverts_received,
        dropped: if total == 0 {
            "none".into()
        } else {
            format!(
                "{total} ({})",
                crate::pulse::logic::control::counts_by_reason(&v.dropped)
            )
        },
    }
}

/// The live part of the page, display-ready.
#[derive(Debug, Clone, Default)]
pub struct LiveView {
    pub running: bool,
    pub unavailable: String,
    pub node: String,
    pub place: String,
    pub role: String,
    pub role_since: String,
    pub fault: String,
    pub serial: u64,
    pub ipvs: String,
    pub warnings: Vec<String>,
    pub peer: String,
    pub has_peer: bool,
    pub peer_state: String,
    pub peer_heard: String,
    pub serial_mismatch: String,
    pub heartbeat: String,
    /// The first [`ADDRESSES_SHOWN`] addresses, and whether each is held.
    pub addresses: Vec<(String, bool)>,
    pub addresses_held: usize,
    pub addresses_total: usize,
    pub services: Vec<ServiceRow>,
    pub local_checks: Vec<(String, String, String)>,
    pub vrrp: Vec<VrrpRow>,
    pub events: Vec<EventRow>,
    /// Services after the filter, and the page shown.
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub filter: String,
    pub problems: bool,
    pub refresh: u32,
    pub updated: String,
    /// Query string of the current view without the page (for the page links).
    pub base_query: String,
    /// The directors side by side, this one first; empty without peers.
    pub directors: Vec<DirectorCol>,
}

/// One director of the pair (or group), display-ready.
#[derive(Debug, Clone, Default)]
pub struct DirectorCol {
    pub name: String,
    pub role: String,
    pub serial: String,
    /// The heartbeat's or the VRRP instances' state.
    pub ha: String,
    pub fault: String,
    /// Why its status could not be read.
    pub error: String,
}

/// `view` with the last hour's pictures of the services and servers it shows. Pure.
pub fn with_trends(
    view: Arc<LiveView>,
    trends: &super::trends::Trends,
    now_ms: u64,
) -> Arc<LiveView> {
    if !view.running {
        return view;
    }
    let mut v = (*view).clone();
    for s in &mut v.services {
        if let Some((plot, peak)) = trends.connections(&s.name, now_ms) {
            s.cps_plot = plot;
            s.cps_peak = format!("peak {peak} conn/s");
        }
        if let Some((plot, peak)) = trends.bytes(&s.name, now_ms) {
            s.bps_plot = plot;
            s.bps_peak = format!("peak {}", bytes_rate(peak));
        }
        for r in &mut s.servers {
            r.timeline = trends
                .timeline(&s.name, &r.name, now_ms)
                .unwrap_or_default();
        }
    }
    Arc::new(v)
}

/// What the HA protocol says on a director.
fn ha_summary(s: &Status) -> String {
    if !s.vrrp.is_empty() {
        return s
            .vrrp
            .iter()
            .map(|v| format!("{} {}", v.name, v.state))
            .collect::<Vec<_>>()
            .join(", ");
    }
    match &s.peer {
        Some(p) => format!("heartbeat: peer {} {}", p.name, p.state),
        None => "standalone".into(),
    }
}

/// `view` with the peers' side: their columns, and each real server's health as each
/// of them sees it. Pure.
pub fn with_peers(view: Arc<LiveView>, peers: &[PeerStatus]) -> Arc<LiveView> {
    if peers.is_empty() {
        return view;
    }
    let mut v = (*view).clone();
    v.directors.push(DirectorCol {
        name: format!("{} (this director)", view.node),
        role: view.role.clone(),
        serial: view.serial.to_string(),
        ha: view
            .vrrp
            .iter()
            .map(|r| format!("{} {}", r.name, r.state.to_uppercase()))
            .collect::<Vec<_>>()
            .join(", "),
        fault: view.fault.clone(),
        error: if view.running {
            String::new()
        } else {
            view.unavailable.clone()
        },
    });
    if v.directors[0].ha.is_empty() {
        v.directors[0].ha = view.heartbeat.clone();
    }
    for p in peers {
        v.directors.push(match &p.status {
            Ok(s) => DirectorCol {
                name: format!("{} ({})", s.node.name, p.name),
                role: s.node.role.clone(),
                serial: s.node.serial.to_string(),
                ha: ha_summary(s),
                fault: s.node.fault.clone().unwrap_or_default(),
                error: String::new(),
            },
            Err(e) => DirectorCol {
                name: p.name.clone(),
                error: e.clone(),
                ..DirectorCol::default()
            },
        });
    }
    for svc in &mut v.services {
        for r in &mut svc.servers {
            r.peers = peers
                .iter()
                .map(|p| {
                    let theirs = p.status.as_ref().ok().and_then(|s| {
                        s.services
                            .iter()
                            .find(|x| x.name == svc.name)?
                            .servers
                            .iter()
                            .find(|x| x.name == r.name)
                            .map(|x| {
                                if x.drained {
                                    "drained".to_string()
                                } else {
                                    x.health.clone()
                                }
                            })
                    });
                    match theirs {
                        Some(h) => {
                            let differs = h != r.health;
                            (h, differs)
                        }
                        None => ("?".into(), false),
                    }
                })
                .collect();
        }
    }
    Arc::new(v)
}

impl LiveView {
    pub fn prev_page(&self) -> Option<usize> {
        (self.page > 1).then(|| self.page - 1)
    }
    pub fn next_page(&self) -> Option<usize> {
        (self.page < self.pages).then(|| self.page + 1)
    }
}

fn server_row(s: &ServerStatus, now_ms: u64) -> ServerRow {
    let health = if s.drained {
        "drained".to_string()
    } else {
        s.health.clone()
    };
    ServerRow {
        name: s.name.clone(),
        address: if s.port == 0 {
            s.address.clone()
        } else if s.address.contains(':') {
            format!("[{}]:{}", s.address, s.port)
        } else {
            format!("{}:{}", s.address, s.port)
        },
        health,
        weight: s
            .weight
            .map_or("out".into(), |w| format!("{w} / {}", s.configured_weight)),
        kernel_weight: s.kernel_weight.map_or("-".into(), |w| w.to_string()),
        active: s.active_conns,
        inactive: s.inactive_conns,
        cps: s.cps,
        last_check: if s.last_check_unix_ms == 0 {
            "not checked yet".into()
        } else {
            format!(
                "{} ({} ms, {})",
                s.last_check,
                s.last_check_ms,
                ago(now_ms.saturating_sub(s.last_check_unix_ms))
            )
        },
        transition: s
            .transition
            .as_ref()
            .map(|t| format!("{} {}: {}", when(t.at_unix_ms), t.state, t.cause))
            .unwrap_or_default(),
        peers: Vec::new(),
        timeline: String::new(),
    }
}

fn has_problem(s: &ServiceStatus) -> bool {
    !s.in_kernel || s.sorry || s.servers.iter().any(|r| r.health != "up" || r.drained)
}

fn event_row(e: &EventRecord) -> EventRow {
    EventRow {
        at: when(e.at_unix_ms),
        subject: e.subject.clone(),
        state: e.state.clone(),
        cause: e.cause.clone(),
    }
}

fn bytes_rate(b: u64) -> String {
    match b {
        0..=9_999 => format!("{b} B/s"),
        10_000..=9_999_999 => format!("{} kB/s", b / 1000),
        _ => format!("{} MB/s", b / 1_000_000),
    }
}

/// Pages a filtered list: (page shown, number of pages, the slice's bounds).
pub fn paginate(total: usize, page: Option<usize>, size: usize) -> (usize, usize, usize, usize) {
    let pages = total.div_ceil(size).max(1);
    let page = page.unwrap_or(1).clamp(1, pages);
    let start = (page - 1) * size;
    (page, pages, start, (start + size).min(total))
}

fn matches(filter: &str, texts: &[&str]) -> bool {
    filter.is_empty() || {
        let f = filter.to_lowercase();
        texts.iter().any(|t| t.to_lowercase().contains(&f))
    }
}

/// The live view from the supervisor's status (pure, for tests).
pub fn view_of_status(s: &Status, q: &ViewQuery, now_ms: u64) -> LiveView {
    let filter = q.filter();
    let problems = q.problems_only();
    let shown: Vec<&ServiceStatus> = s
        .services
        .iter()
        .filter(|svc| !problems || has_problem(svc))
        .filter(|svc| {
            matches(&filter, &[&svc.name, &svc.service])
                || svc
                    .servers
                    .iter()
                    .any(|r| matches(&filter, &[&r.name, &r.address]))
        })
        .collect();
    let (page, pages, start, end) = paginate(shown.len(), q.page, PAGE_SIZE);
    let peer = s.peer.as_ref();
    LiveView {
        running: true,
        node: s.node.name.clone(),
        place: s.node.place.clone(),
        role: s.node.role.clone(),
        role_since: when(s.node.role_since_unix_ms),
        fault: s.node.fault.clone().unwrap_or_default(),
        serial: s.node.serial,
        ipvs: s.node.ipvs.clone(),
        warnings: s.node.warnings.clone(),
        peer: peer.map_or("none (this director serves alone)".into(), |p| p.name.clone()),
        peer_state: peer.map_or(String::new(), |p| {
            if p.leaving {
                "leaving".into()
            } else if p.alive {
                p.state.clone()
            } else {
                "dead (no heartbeat)".into()
            }
        }),
        peer_heard: peer.map_or(String::new(), |p| ago(p.last_heard_ms_ago)),
        serial_mismatch: s
            .heartbeat
            .serial_mismatch
            .map(|(ours, theirs)| {
                format!("lvs.cf differs between the directors: serial {ours} here, {theirs} on the peer — copy the same configuration to both")
            })
            .unwrap_or_default(),
        has_peer: peer.is_some(),
        heartbeat: if peer.is_none() {
            "none: no backup director (backup_active = 0)".into()
        } else { format!(
            "{} on UDP port {}, every {} ms, dead after {} ms; {} sent ({} probes), {} accepted{}; {} failover(s)",
            if s.heartbeat.authenticated {
                "authenticated (HMAC-SHA256)"
            } else {
                "UNAUTHENTICATED (no heartbeat_key_file)"
            },
            s.heartbeat.port,
            s.heartbeat.keepalive_ms,
            s.heartbeat.deadtime_ms,
            s.heartbeat.sent,
            s.heartbeat.probes,
            s.heartbeat.accepted,
            if s.heartbeat.rejected.is_empty() {
                String::new()
            } else {
                format!(
                    ", rejected: {}",
                    s.heartbeat
                        .rejected
                        .iter()
                        .map(|(why, n)| format!("{n} {why}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            s.heartbeat.failovers
        )},
        addresses_held: s.addresses.iter().filter(|a| a.up).count(),
        addresses_total: s.addresses.len(),
        addresses: s
            .addresses
            .iter()
            .take(ADDRESSES_SHOWN)
            .map(|a| (format!("{} on {}", a.address, a.device), a.up))
            .collect(),
        services: shown[start..end]
            .iter()
            .map(|svc| ServiceRow {
                name: svc.name.clone(),
                service: svc.service.clone(),
                scheduler: svc.scheduler.clone(),
                state: if !svc.in_kernel {
                    "not in the kernel".into()
                } else if svc.sorry {
                    "sorry server".into()
                } else {
                    "in the kernel".into()
                },
                connections: svc.connections,
                cps: svc.cps,
                rates: format!("in {} / out {}", bytes_rate(svc.inbps), bytes_rate(svc.outbps)),
                servers: svc.servers.iter().map(|r| server_row(r, now_ms)).collect(),
                ..ServiceRow::default()
            })
            .collect(),
        local_checks: s
            .local_checks
            .iter()
            .map(|l| (l.name.clone(), l.health.clone(), l.last_check.clone()))
            .collect(),
        vrrp: s.vrrp.iter().map(vrrp_row).collect(),
        events: s.events.iter().rev().take(EVENTS_SHOWN).map(event_row).collect(),
        total: shown.len(),
        page,
        pages,
        filter,
        problems,
        refresh: q.refresh.unwrap_or(5),
        updated: when(now_ms),
        ..LiveView::default()
    }
}

/// Replaces the command output in `v` (what a check program or load command printed,
/// in last checks, causes and the fault) for a user who is not an administrator: those
/// are root's scripts, and what they print is not for every reader of the page.
pub fn hide_outputs(v: &mut LiveView) {
    fn hide(s: &mut String) {
        if let Cow::Owned(hidden) = hide_output(s) {
            *s = hidden;
        }
    }
    hide(&mut v.fault);
    v.warnings.iter_mut().for_each(hide);
    for r in v.services.iter_mut().flat_map(|s| s.servers.iter_mut()) {
        hide(&mut r.last_check);
        hide(&mut r.transition);
    }
    for (_, _, last) in &mut v.local_checks {
        hide(last);
    }
    for r in &mut v.vrrp {
        hide(&mut r.fault);
    }
    for e in &mut v.events {
        hide(&mut e.cause);
    }
}

/// The view when the supervisor cannot be asked: why, and the stored configuration.
pub fn view_of_config(reason: &str, c: &Config, q: &ViewQuery, now_ms: u64) -> LiveView {
    let filter = q.filter();
    let shown: Vec<&VirtualServer> = c
        .virtuals
        .iter()
        .filter(|v| {
            // Without a filter, no texts to build: every page view would otherwise
            // format the address of every virtual server.
            if filter.is_empty() {
                return true;
            }
            let addr = v.settings.get("address").unwrap_or_default();
            matches(&filter, &[&v.name, &addr])
                || v.servers.iter().any(|r| {
                    matches(
                        &filter,
                        &[&r.name, &r.settings.get("address").unwrap_or_default()],
                    )
                })
        })
        .collect();
    let (page, pages, start, end) = paginate(shown.len(), q.page, PAGE_SIZE);
    LiveView {
        running: false,
        unavailable: reason.to_string(),
        services: shown[start..end]
            .iter()
            .map(|v| ServiceRow {
                name: v.name.clone(),
                service: format!(
                    "{} {}:{}",
                    v.settings.protocol().to_string().to_uppercase(),
                    v.settings
                        .address
                        .as_ref()
                        .map_or("?".into(), |a| a.addr.to_string()),
                    v.settings.port().canonical()
                ),
                scheduler: v.settings.scheduler().0,
                state: if v.settings.active() {
                    "active (stored)".into()
                } else {
                    "inactive (stored)".into()
                },
                servers: v
                    .servers
                    .iter()
                    .map(|r| ServerRow {
                        name: r.name.clone(),
                        address: r.settings.get("address").unwrap_or_default(),
                        health: if r.settings.active() {
                            "unknown".into()
                        } else {
                            "inactive".into()
                        },
                        weight: r.settings.weight().to_string(),
                        kernel_weight: "-".into(),
                        ..ServerRow::default()
                    })
                    .collect(),
                ..ServiceRow::default()
            })
            .collect(),
        total: shown.len(),
        page,
        pages,
        filter,
        problems: q.problems_only(),
        refresh: q.refresh.unwrap_or(5),
        updated: when(now_ms),
        ..LiveView::default()
    }
}

/// Addresses listed by name on the page; beyond that the page gives counts (a
/// director with 1,000 VIPs would otherwise print them all on every refresh).
const ADDRESSES_SHOWN: usize = 20;

/// Built views kept per status: the status changes once a second, and everyone who
/// looks at the same page of it in that second gets the same view.
const VIEWS_KEPT: usize = 32;

/// The views built from one status (by its `Arc`), by query.
#[derive(Default)]
pub struct ViewCache {
    status: Option<std::sync::Weak<LiveStatus>>,
    views: Vec<(String, Arc<LiveView>)>,
}

fn query_key(q: &ViewQuery) -> String {
    format!(
        "{:?}|{}|{}|{:?}",
        q.page,
        q.filter(),
        q.problems_only(),
        q.refresh
    )
}

/// The view for `q`; `admin` sees command output, others do not ([`hide_outputs`]).
async fn live_view(
    state: &AppState,
    q: &ViewQuery,
    admin: bool,
) -> Result<Arc<LiveView>, WebError> {
    let now = crate::clock::unix_ms();
    let status = state.live.status().await;
    let key = format!("{}|{admin}", query_key(q));
    if let LiveStatus::Running(_) = &*status {
        let cache = state.view_cache.locked();
        let same = cache
            .status
            .as_ref()
            .and_then(std::sync::Weak::upgrade)
            .is_some_and(|s| Arc::ptr_eq(&s, &status));
        if same {
            if let Some((_, v)) = cache.views.iter().find(|(k, _)| *k == key) {
                return Ok(v.clone());
            }
        }
    }
    let mut view = match &*status {
        LiveStatus::Running(s) => view_of_status(s, q, now),
        LiveStatus::Unavailable(why) => {
            let stored = state.stored().await?;
            view_of_config(why, &stored.config, q, now)
        }
    };
    if !admin {
        hide_outputs(&mut view);
    }
    let mut query = vec![format!("refresh={}", view.refresh)];
    if !view.filter.is_empty() {
        query.push(format!("q={}", super::urlencode(&view.filter)));
    }
    if view.problems {
        query.push("problems=1".into());
    }
    view.base_query = query.join("&");
    let view = Arc::new(view);
    if let LiveStatus::Running(_) = &*status {
        let mut cache = state.view_cache.locked();
        let same = cache
            .status
            .as_ref()
            .and_then(std::sync::Weak::upgrade)
            .is_some_and(|s| Arc::ptr_eq(&s, &status));
        if !same {
            cache.status = Some(Arc::downgrade(&status));
            cache.views.clear();
        }
        if cache.views.len() >= VIEWS_KEPT {
            cache.views.remove(0);
        }
        cache.views.push((key, view.clone()));
    }
    Ok(view)
}

#[derive(Template)]
#[template(path = "control.html")]
struct ControlPage {
    chrome: Chrome,
    live: Arc<LiveView>,
    refresh_choices: Vec<(u32, bool)>,
}

#[derive(Template)]
#[template(path = "control_live.html")]
struct LivePart {
    live: Arc<LiveView>,
    chrome: Chrome,
}

pub async fn page(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ViewQuery>,
) -> Result<Response, WebError> {
    let live = live_view(&state, &q, auth.is_admin()).await?;
    let live = with_peers(live, &state.cluster.peer_statuses().await);
    let live = {
        let trends = state.trends.locked();
        with_trends(live, &trends, crate::clock::unix_ms())
    };
    let refresh_choices = REFRESH_CHOICES
        .iter()
        .map(|&r| (r, r == live.refresh))
        .collect();
    Ok(html(&ControlPage {
        chrome: Chrome::new(&state, &auth, "control", "Control / monitoring").await?,
        live,
        refresh_choices,
    }))
}

/// The live part alone, for the page's own refresh.
pub async fn live(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ViewQuery>,
) -> Result<Response, WebError> {
    let live = live_view(&state, &q, auth.is_admin()).await?;
    let live = with_peers(live, &state.cluster.peer_statuses().await);
    let live = {
        let trends = state.trends.locked();
        with_trends(live, &trends, crate::clock::unix_ms())
    };
    Ok(html(&LivePart {
        live,
        chrome: Chrome {
            admin: auth.is_admin(),
            csrf: auth.csrf.clone(),
            ..Chrome::default()
        },
    }))
}

/// Hands the addresses over to the peer on purpose.
pub async fn hand_over(State(state): State<AppState>, posted: AdminPost) -> Response {
    let secure = state.settings.secure_cookies;
    let r = state.live.act(Request::HandOver).await;
    let (kind, text) = match r {
        Ok(reply) if reply.ok => ("ok", reply.message.unwrap_or_else(|| "handed over".into())),
        Ok(reply) => (
            "error",
            format!(
                "The supervisor refused: {}",
                reply.error.unwrap_or_default()
            ),
        ),
        Err(e) => ("error", e.to_string()),
    };
    tracing::info!(user = posted.auth.user.name, "hand-over asked: {text}");
    with_flash(see_other("/control"), kind, &text, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pulse::logic::control::{NodeStatus, PeerStatus};

    fn status(services: usize) -> Status {
        Status {
            node: NodeStatus {
                name: "lb1".into(),
                role: "active".into(),
                ..NodeStatus::default()
            },
            peer: Some(PeerStatus {
                name: "lb2".into(),
                state: "standby".into(),
                alive: true,
                last_heard_ms_ago: 150,
                ..PeerStatus::default()
            }),
            services: (0..services)
                .map(|i| ServiceStatus {
                    name: format!("web{i}"),
                    service: format!("TCP 10.0.{}.{}:80", i / 250, i % 250),
                    in_kernel: true,
                    servers: vec![ServerStatus {
                        name: "rs1".into(),
                        address: "10.1.0.1".into(),
                        port: 80,
                        health: if i == 7 { "down".into() } else { "up".into() },
                        configured_weight: 1,
                        weight: (i != 7).then_some(1),
                        ..ServerStatus::default()
                    }],
                    ..ServiceStatus::default()
                })
                .collect(),
            ..Status::default()
        }
    }

    #[test]
    fn the_peers_view_stands_beside_this_ones_and_disagreements_show() {
        let ours = status(3);
        let mut theirs = status(3);
        theirs.node.name = "lb2".into();
        theirs.node.role = "standby".into();
        theirs.services[1].servers[0].health = "down".into();
        let v = Arc::new(view_of_status(&ours, &ViewQuery::default(), 0));
        assert!(
            Arc::ptr_eq(&with_peers(v.clone(), &[]), &v),
            "no peer: the view as it was"
        );
        let peers = [
            crate::cluster::service::PeerStatus {
                name: "10.0.0.2".into(),
                status: Ok(Arc::new(theirs)),
            },
            crate::cluster::service::PeerStatus {
                name: "10.0.0.3".into(),
                status: Err("unreachable: refused".into()),
            },
        ];
        let w = with_peers(v, &peers);
        let names: Vec<&str> = w.directors.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["lb1 (this director)", "lb2 (10.0.0.2)", "10.0.0.3"]);
        assert_eq!(w.directors[1].role, "standby");
        assert_eq!(w.directors[2].error, "unreachable: refused");
        let health = |i: usize| w.services[i].servers[0].peers.clone();
        assert_eq!(
            health(0),
            [("up".to_string(), false), ("?".to_string(), false)]
        );
        assert_eq!(
            health(1),
            [("down".to_string(), true), ("?".to_string(), false)]
        );
    }

    #[test]
    fn the_last_hour_is_drawn_beside_each_service_and_server() {
        let s = status(2);
        let mut t = crate::web::trends::Trends::default();
        for i in 0..10u64 {
            t.record(1_000_000 + i * 10_000, &s);
        }
        let v = Arc::new(view_of_status(&s, &ViewQuery::default(), 0));
        let w = with_trends(v, &t, 1_090_000);
        assert!(w.services[0].cps_plot.starts_with("<svg class=\"spark\""));
        assert_eq!(w.services[0].cps_peak, "peak 0 conn/s");
        assert!(w.services[0].servers[0].timeline.contains(r#"class="up""#));
    }

    #[test]
    fn the_table_is_paged_and_filtered() {
        let s = status(60);
        let v = view_of_status(&s, &ViewQuery::default(), 0);
        assert_eq!((v.total, v.page, v.pages), (60, 1, 3));
        assert_eq!(v.services.len(), PAGE_SIZE);
        assert_eq!(v.peer_state, "standby");
        assert_eq!(v.peer_heard, "150 ms ago");

        let last = view_of_status(
            &s,
            &ViewQuery {
                page: Some(99),
                ..ViewQuery::default()
            },
            0,
        );
        assert_eq!((last.page, last.services.len()), (3, 10));
        assert_eq!(last.next_page(), None);
        assert_eq!(last.prev_page(), Some(2));

        let problems = view_of_status(
            &s,
            &ViewQuery {
                problems: Some("1".into()),
                ..ViewQuery::default()
            },
            0,
        );
        assert_eq!(problems.total, 1);
        assert_eq!(problems.services[0].name, "web7");
        assert_eq!(problems.services[0].servers[0].health, "down");
        assert_eq!(problems.services[0].servers[0].weight, "out");

        let found = view_of_status(
            &s,
            &ViewQuery {
                q: Some("WEB5".into()),
                ..ViewQuery::default()
            },
            0,
        );
        // web5, web50..web59
        assert_eq!(found.total, 11);
    }

    /// What a root script printed reaches administrators (cut short by the supervisor)
    /// and nobody else: hidden wherever the view carries it.
    #[test]
    fn command_output_is_hidden_from_viewers() {
        use crate::pulse::io::command::shown_output;
        use crate::pulse::logic::control::{EventRecord, LocalCheckStatus};
        let out = shown_output(b"KEY=c2VjcmV0LWtleQ==");
        let said = format!("exit status 1: {out}");
        let mut s = status(1);
        s.node.fault = Some(format!(
            "local check db: 1 consecutive failed check(s): {said}"
        ));
        s.services[0].servers[0].last_check = said.clone();
        s.services[0].servers[0].last_check_unix_ms = 1;
        s.services[0].servers[0].transition = Some(EventRecord {
            at_unix_ms: 1,
            subject: "server web0/rs1".into(),
            state: "down".into(),
            cause: format!("1 consecutive failed check(s): {said}"),
        });
        s.local_checks = vec![LocalCheckStatus {
            name: "db".into(),
            health: "down".into(),
            last_check: said.clone(),
        }];
        s.events = vec![EventRecord {
            at_unix_ms: 1,
            subject: "local check db".into(),
            state: "down".into(),
            cause: said.clone(),
        }];
        let admin = view_of_status(&s, &ViewQuery::default(), 2);
        let texts = |v: &LiveView| {
            let r = &v.services[0].servers[0];
            vec![
                v.fault.clone(),
                r.last_check.clone(),
                r.transition.clone(),
                v.local_checks[0].2.clone(),
                v.events[0].cause.clone(),
            ]
        };
        for t in texts(&admin) {
            assert!(t.contains("KEY=c2VjcmV0LWtleQ=="), "{t}");
        }
        let mut viewer = admin.clone();
        hide_outputs(&mut viewer);
        for t in texts(&viewer) {
            assert!(!t.contains("KEY="), "{t}");
            assert!(t.contains("exit status 1: [output hidden]"), "{t}");
        }
    }

    #[test]
    fn vrrp_instances_show_state_priority_and_drops() {
        use crate::pulse::logic::control::VrrpStatus;
        let mut s = status(1);
        s.vrrp = vec![
            VrrpStatus {
                name: "VI_1".into(),
                interface: "eth0".into(),
                state: "MASTER".into(),
                vrid: 51,
                priority: 150,
                effective_priority: 150,
                master: Some("10.0.0.1".parse().unwrap()),
                adverts_sent: 40,
                ..Default::default()
            },
            VrrpStatus {
                name: "VI_2".into(),
                interface: "eth1".into(),
                state: "FAULT".into(),
                fault: Some("tracked interface eth2 is down".into()),
                vrid: 52,
                priority: 100,
                effective_priority: 80,
                dropped: [("ttl".to_string(), 2), ("authentication".to_string(), 1)].into(),
                ..Default::default()
            },
        ];
        let v = view_of_status(&s, &ViewQuery::default(), 2);
        let r = &v.vrrp;
        assert_eq!(
            (
                r[0].router.as_str(),
                r[0].priority.as_str(),
                r[0].master.as_str()
            ),
            ("router id 51 on eth0", "150", "10.0.0.1")
        );
        assert_eq!(r[0].dropped, "none");
        assert_eq!(r[1].priority, "80 (configured 100)");
        assert_eq!(r[1].master, "not heard");
        assert_eq!(r[1].fault, "tracked interface eth2 is down");
        assert_eq!(r[1].dropped, "3 (1 authentication, 2 ttl)");
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(when(1_764_646_812_000), "2025-12-02 03:40:12 UTC");
        assert_eq!(when(0), "never");
        assert_eq!(ago(61_000), "61 s ago");
        assert_eq!(paginate(0, None, 25), (1, 1, 0, 0));
    }
}
