//! VIRTUAL SERVERS: the list (add, edit, delete, (de)activate), and per virtual server
//! its three panels as in Piranha: VIRTUAL SERVER, REAL SERVER (list and form, with
//! drain/enable acting live through the supervisor) and MONITORING SCRIPTS.
//!
//! Every save re-validates the whole configuration with the edit in place and refuses
//! only what the edit breaks; it carries the version the form was opened at, so a save
//! over someone else's is refused with a conflict, never applied silently.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::auth::{AdminPost, Auth};
use super::control::paginate;
use super::form::{self, addr_dev, choice, flag, text, Field, FieldSpec, Submitted};
use super::{flash_back, flash_outcome, html, AppState, Chrome, WebError};
use crate::config::model::name_problem;
use crate::config::{Config, RealServer, Scope, VirtualServer};
use crate::pulse::logic::control::Request;
use crate::storage::{StorageError, StoredVirtual};

/// Virtual servers per page of the list.
pub const LIST_PAGE: usize = 50;

const PROTOCOLS: &[(&str, &str)] = &[("tcp", "TCP"), ("udp", "UDP"), ("sctp", "SCTP")];
const SCHEDULERS: &[(&str, &str)] = &[
    ("rr", "Round robin (rr)"),
    ("wrr", "Weighted round robin (wrr)"),
    ("lc", "Least-connection (lc)"),
    ("wlc", "Weighted least-connections (wlc)"),
    ("lblc", "Locality-based least-connection (lblc)"),
    (
        "lblcr",
        "Locality-based least-connection with replication (lblcr)",
    ),
    ("dh", "Destination hash (dh)"),
    ("sh", "Source hash (sh)"),
    ("sed", "Shortest expected delay (sed)"),
    ("nq", "Never queue (nq)"),
    ("mh", "Maglev hash (mh)"),
    ("fo", "Weighted failover (fo)"),
    ("ovf", "Weighted overflow (ovf)"),
];
const FORWARDING: &[(&str, &str)] = &[
    ("nat", "NAT"),
    ("direct", "Direct Routing"),
    ("tunnel", "Tunneling"),
];
const CHECKS: &[(&str, &str)] = &[
    ("tcp", "TCP connect (with send/expect)"),
    ("udp", "UDP (send/expect)"),
    ("http", "HTTP GET"),
    ("https", "HTTPS GET"),
    ("program", "External program (send program)"),
    ("ping", "ICMP echo (ping)"),
    ("dns", "DNS query"),
    ("none", "No check (always up)"),
];

const VIRTUAL_SPECS: &[FieldSpec] = &[
    flag("active", "Active"),
    addr_dev("address", "Virtual IP address / device"),
    text("vip_nmask", "Virtual IP network mask"),
    text("port", "Application port"),
    choice("protocol", "Protocol", PROTOCOLS),
    text("fwmark", "Firewall mark"),
    choice("scheduler", "Scheduling", SCHEDULERS),
    text("persistent", "Persistence (s)"),
    text("pmask", "Persistence network mask"),
    text("sorry_server", "Sorry server"),
    text("sorry_port", "Sorry server port"),
    flag(
        "sorry_server_inhibit",
        "Keep the sorry server at weight 0 while not needed",
    ),
    text("quorum", "Quorum (total weight of healthy servers)"),
    text("hysteresis", "Quorum hysteresis"),
    text("quorum_up", "Command when the quorum is gained"),
    text("quorum_down", "Command when the quorum is lost"),
    flag("omega", "On stop, run the down commands (omega)"),
    text("load_monitor", "Load monitoring tool"),
    flag("quiesce_server", "Quiesce server"),
    choice("forwarding", "Forwarding method", FORWARDING),
    flag("sched_port", "sh/mh: hash the source port too"),
    flag(
        "sched_fallback",
        "sh/mh: fall back when the chosen server is unavailable",
    ),
    flag("one_packet", "UDP one-packet scheduling"),
    text("slow_start", "Slow start (s)"),
    text("drain_timeout", "Drain timeout (s)"),
];

/// Piranha shows these two check keywords on the VIRTUAL SERVER panel.
const VIRTUAL_CHECK_SPECS: &[FieldSpec] = &[
    text("timeout", "Service timeout (s)"),
    text("reentry", "Re-entry time (s)"),
];

const SCRIPT_SPECS: &[FieldSpec] = &[
    choice("check", "Check kind", CHECKS),
    text("send_program", "Sending program"),
    flag(
        "dynamic_weight",
        "Program's exit status 2-255 sets the weight (status - 2)",
    ),
    text("send", "Send"),
    text("expect", "Expect"),
    flag("use_regex", "Treat expect string as a regular expression"),
    text("check_interval", "Check interval (s)"),
    text("check_port", "Check port"),
    text("check_source", "Check from address (bindto)"),
    text("check_path", "HTTP path"),
    text("check_host", "HTTP Host header"),
    text("check_status", "Accepted HTTP status"),
    text("check_regex", "Body must match (regex)"),
    text("check_digest", "Body MD5 (lvs-director genhash URL)"),
    text("check_dns_name", "DNS name asked for"),
    text("check_dns_type", "DNS record type (A, NS, CNAME, SOA, MX, TXT, AAAA)"),
    text(
        "check_url",
        "Several HTTP pages, all must pass: [ \"PATH [status SET] [digest HEX] [host NAME] [regex RE]\" … ]",
    ),
    text("fall", "Failures before removal (fall)"),
    text("rise", "Successes before return (rise)"),
    text("retry_interval", "Retry after a failure (s)"),
    text("warmup", "First check within (s)"),
    flag("alpha", "Start out of the pool until the checks pass (alpha)"),
];

const REAL_SPECS: &[FieldSpec] = &[
    flag("active", "Active"),
    text("address", "Address"),
    text("port", "Port"),
    text("weight", "Weight"),
    choice("forwarding", "Forwarding method", FORWARDING),
    choice(
        "tunnel_type",
        "Tunnel type",
        &[("ipip", "IPIP"), ("gue", "GUE"), ("gre", "GRE")],
    ),
    text("tunnel_port", "GUE port"),
    choice(
        "tunnel_csum",
        "Tunnel checksum",
        &[("nocsum", "none"), ("csum", "csum"), ("remcsum", "remcsum")],
    ),
    text("uthreshold", "Upper connection threshold"),
    text("lthreshold", "Lower connection threshold"),
    flag("quiesce_server", "Keep at weight 0 when failed (quiesce)"),
    text("notify_up", "Command when this server comes up"),
    text("notify_down", "Command when this server goes down"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/virtual", get(list))
        .route("/virtual/new", get(new_page).post(create))
        .route("/virtual/{id}", get(edit_page).post(save))
        .route("/virtual/{id}/delete", post(delete))
        .route("/virtual/{id}/toggle", post(toggle))
        .route(
            "/virtual/{id}/scripts",
            get(scripts_page).post(scripts_save),
        )
        .route("/virtual/{id}/real", get(real_list))
        .route(
            "/virtual/{id}/real/new",
            get(real_new_page).post(real_create),
        )
        .route(
            "/virtual/{id}/real/{rid}",
            get(real_edit_page).post(real_save),
        )
        .route("/virtual/{id}/real/{rid}/delete", post(real_delete))
        .route("/virtual/{id}/real/{rid}/toggle", post(real_toggle))
        .route("/virtual/{id}/real/{rid}/drain", post(real_drain))
        .route("/virtual/{id}/real/{rid}/enable", post(real_enable))
}

// ---- helpers ----

/// The stored virtual server `id` and its index in the configuration.
fn find(config: &[StoredVirtual], id: i64) -> Result<(usize, &StoredVirtual), WebError> {
    config
        .iter()
        .enumerate()
        .find(|(_, v)| v.virtual_server.id == id)
        .ok_or_else(|| WebError::NotFound(format!("virtual server #{id}")))
}

/// A storage error that a form can show (conflict, duplicate, invalid), or the
/// error itself.
fn form_error(
    e: StorageError,
    field_errors: &mut HashMap<String, String>,
) -> Result<String, WebError> {
    match e {
        StorageError::Duplicate { .. } => {
            let m = e.to_string();
            field_errors.insert("name".into(), m.clone());
            Ok(m)
        }
        e if e.is_invalid_input() => Ok(e.to_string()),
        e => Err(e.into()),
    }
}

fn name_error(name: &str, field_errors: &mut HashMap<String, String>) {
    if let Some(why) = name_problem(name) {
        field_errors.insert("name".into(), why.to_string());
    }
}

/// Errors the changed configuration has that the stored one had not.
pub(crate) fn check_edit(
    scripts_dir: &std::path::Path,
    before: &Config,
    after: &Config,
    scope: Scope,
    specs: &[&[FieldSpec]],
    field_errors: &mut HashMap<String, String>,
    errors: &mut Vec<String>,
) {
    let keywords: Vec<&str> = specs
        .iter()
        .flat_map(|s| s.iter().map(|f| f.keyword))
        .chain(["name"])
        .collect();
    form::new_errors(
        &form::checked(before, scripts_dir),
        &form::checked(after, scripts_dir),
        Some(scope),
        &keywords,
        field_errors,
        errors,
    );
}

fn finish_errors(field_errors: &HashMap<String, String>, errors: &mut Vec<String>) {
    if errors.is_empty() && !field_errors.is_empty() {
        errors.push("Nothing was saved: correct the fields marked below.".into());
    }
}

// ---- the list ----

#[derive(Debug, Clone)]
pub struct VirtualRow {
    pub id: i64,
    pub version: i64,
    pub name: String,
    pub active: bool,
    pub vip: String,
    pub netmask: String,
    pub port: String,
    pub protocol: String,
    pub device: String,
    pub scheduler: String,
    pub servers: usize,
    pub active_servers: usize,
}

#[derive(Template)]
#[template(path = "virtuals.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<VirtualRow>,
    total: usize,
    page: usize,
    pages: usize,
    filter: String,
}

impl ListPage {
    fn prev_page(&self) -> Option<usize> {
        (self.page > 1).then(|| self.page - 1)
    }
    fn next_page(&self) -> Option<usize> {
        (self.page < self.pages).then(|| self.page + 1)
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    q: Option<String>,
}

fn row(v: &StoredVirtual) -> VirtualRow {
    let s = &v.virtual_server.item.settings;
    VirtualRow {
        id: v.virtual_server.id,
        version: v.virtual_server.version,
        name: v.virtual_server.item.name.clone(),
        active: s.active(),
        vip: vip_text(v),
        netmask: s.get("vip_nmask").unwrap_or_else(|| "unused".into()),
        port: port_text(v),
        protocol: s.protocol().to_string(),
        device: device_text(v).to_string(),
        scheduler: s.scheduler().0,
        servers: v.servers.len(),
        active_servers: v
            .servers
            .iter()
            .filter(|r| r.item.settings.active())
            .count(),
    }
}

/// The VIP, port and interface as the list shows them and its filter reads them.
fn vip_text(v: &StoredVirtual) -> String {
    let s = &v.virtual_server.item.settings;
    s.address
        .as_ref()
        .map_or("(none)".into(), |a| a.addr.to_string())
}

fn port_text(v: &StoredVirtual) -> String {
    let s = &v.virtual_server.item.settings;
    if s.fwmark() != 0 {
        format!("fwmark {}", s.fwmark())
    } else {
        s.port().canonical()
    }
}

fn device_text(v: &StoredVirtual) -> &str {
    let s = &v.virtual_server.item.settings;
    s.address.as_ref().map_or("", |a| a.device.as_str())
}

/// True when the list's filter (lower case) is in the name, VIP, port or interface.
fn list_matches(v: &StoredVirtual, filter: &str) -> bool {
    let hit = |t: &str| contains_lowercase(t, filter);
    hit(&v.virtual_server.item.name)
        || hit(&vip_text(v))
        || hit(&port_text(v))
        || hit(device_text(v))
}

/// `text.to_lowercase().contains(lower)` for a `lower` already in lower case, without
/// an allocation when both are ASCII (names, addresses, ports and devices are).
fn contains_lowercase(text: &str, lower: &str) -> bool {
    if lower.is_empty() {
        return true;
    }
    if text.is_ascii() && lower.is_ascii() {
        text.as_bytes()
            .windows(lower.len())
            .any(|w| w.eq_ignore_ascii_case(lower.as_bytes()))
    } else {
        text.to_lowercase().contains(lower)
    }
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let filter = q.q.unwrap_or_default().trim().to_lowercase();
    // Rows are built for the page shown only: with 1,000 virtual servers, building
    // (and dropping) every row was most of the cost of a view.
    let shown: Vec<&StoredVirtual> = stored
        .snapshot
        .virtuals
        .iter()
        .filter(|v| filter.is_empty() || list_matches(v, &filter))
        .collect();
    let (page, pages, start, end) = paginate(shown.len(), q.page, LIST_PAGE);
    Ok(html(&ListPage {
        chrome: Chrome::new(&state, &auth, "virtual", "Virtual servers").await?,
        total: shown.len(),
        rows: shown[start..end].iter().map(|v| row(v)).collect(),
        page,
        pages,
        filter,
    }))
}

// ---- VIRTUAL SERVER panel ----

#[derive(Template)]
#[template(path = "virtual_edit.html")]
struct VirtualPage {
    chrome: Chrome,
    /// None for a new virtual server.
    id: Option<i64>,
    version: i64,
    name: String,
    name_error: Option<String>,
    fields: Vec<Field>,
    errors: Vec<String>,
    tab: &'static str,
}

#[allow(clippy::too_many_arguments)]
async fn show_virtual(
    state: &AppState,
    auth: &Auth,
    id: Option<i64>,
    version: i64,
    vs: &VirtualServer,
    typed: Option<&Submitted>,
    field_errors: &HashMap<String, String>,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    let mut fields = form::fields(VIRTUAL_SPECS, &vs.settings, typed, field_errors);
    fields.extend(form::fields(
        VIRTUAL_CHECK_SPECS,
        &vs.check,
        typed,
        field_errors,
    ));
    let name = typed.map_or(vs.name.clone(), |t| {
        t.get("name").cloned().unwrap_or_default()
    });
    let title = match id {
        Some(_) => format!("Virtual server {}", vs.name),
        None => "New virtual server".to_string(),
    };
    let page = VirtualPage {
        chrome: Chrome::new(state, auth, "virtual", title).await?,
        id,
        version,
        name,
        name_error: field_errors.get("name").cloned(),
        fields,
        errors,
        tab: "virtual",
    };
    let status = if typed.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, html(&page)).into_response())
}

/// A new virtual server's starting point: Piranha's `add_virtual()` defaults.
// Constant keywords and values, all valid (the create tests build one).
#[allow(clippy::expect_used)]
fn piranha_new_virtual() -> VirtualServer {
    let mut v = VirtualServer::default();
    let set = |k: &str, t: &str, v: &mut VirtualServer| {
        let tokens = crate::config::value_tokens(t).expect("a literal");
        if v.settings.set(k, &tokens).is_none() {
            v.check
                .set(k, &tokens)
                .expect("a check keyword")
                .expect("valid");
        }
    };
    for (k, t) in [
        ("port", "80"),
        ("protocol", "tcp"),
        ("scheduler", "wlc"),
        ("send", "\"GET / HTTP/1.0\\r\\n\\r\\n\""),
        ("expect", "\"HTTP\""),
        ("timeout", "6"),
        ("reentry", "15"),
        ("quiesce_server", "0"),
    ] {
        set(k, t, &mut v);
    }
    v
}

pub async fn new_page(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    let v = piranha_new_virtual();
    show_virtual(
        &state,
        &auth,
        None,
        0,
        &v,
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

pub async fn edit_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    show_virtual(
        &state,
        &auth,
        Some(id),
        v.virtual_server.version,
        &v.virtual_server.item,
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

/// The virtual server of the form: `base` with the form's name and fields.
fn virtual_from_form(
    base: &VirtualServer,
    typed: &Submitted,
    field_errors: &mut HashMap<String, String>,
) -> VirtualServer {
    let mut v = base.clone();
    v.name = typed.get("name").map_or("", |n| n.trim()).to_string();
    name_error(&v.name, field_errors);
    form::apply(VIRTUAL_SPECS, typed, &mut v.settings, field_errors);
    form::apply(VIRTUAL_CHECK_SPECS, typed, &mut v.check, field_errors);
    v
}

pub async fn create(
    State(state): State<AppState>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let typed = &posted.form.fields;
    let mut field_errors = HashMap::new();
    let base = piranha_new_virtual();
    let v = virtual_from_form(&base, typed, &mut field_errors);
    let mut errors = Vec::new();
    if field_errors.is_empty() {
        let before = state.stored().await?.config.clone();
        let mut after = before.clone();
        after.virtuals.push(v.clone());
        check_edit(
            &state.settings.scripts_dir,
            &before,
            &after,
            Scope::Virtual(after.virtuals.len() - 1),
            &[VIRTUAL_SPECS, VIRTUAL_CHECK_SPECS],
            &mut field_errors,
            &mut errors,
        );
    }
    if field_errors.is_empty() && errors.is_empty() {
        match state
            .store
            .virtual_servers()
            .create(&v, &auth.actor())
            .await
        {
            Ok(created) => {
                return Ok(flash_back(
                    &state,
                    &format!("/virtual/{}/real", created.id),
                    "ok",
                    &format!(
                        "Virtual server {} created. Add its real servers, then Apply.",
                        v.name
                    ),
                ))
            }
            Err(e) => errors.push(form_error(e, &mut field_errors)?),
        }
    }
    finish_errors(&field_errors, &mut errors);
    show_virtual(
        &state,
        auth,
        None,
        0,
        &base,
        Some(typed),
        &field_errors,
        errors,
    )
    .await
}

pub async fn save(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let typed = &posted.form.fields;
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (index, current) = find(&stored.snapshot.virtuals, id)?;
    let mut field_errors = HashMap::new();
    let v = virtual_from_form(&current.virtual_server.item, typed, &mut field_errors);
    let mut errors = Vec::new();
    if field_errors.is_empty() {
        let before = &stored.config;
        let mut after = before.clone();
        after.virtuals[index] = v.clone();
        check_edit(
            &state.settings.scripts_dir,
            before,
            &after,
            Scope::Virtual(index),
            &[VIRTUAL_SPECS, VIRTUAL_CHECK_SPECS],
            &mut field_errors,
            &mut errors,
        );
    }
    if field_errors.is_empty() && errors.is_empty() {
        let (name, settings, check) = (v.name.clone(), v.settings.clone(), v.check.clone());
        match state
            .store
            .virtual_servers()
            .update_with(id, version, &auth.actor(), |old| {
                old.name = name;
                old.settings = settings;
                old.check = check;
            })
            .await
        {
            Ok(_) => {
                return Ok(flash_back(
                    &state,
                    &format!("/virtual/{id}"),
                    "ok",
                    &format!("Virtual server {} saved. Apply to put it in force.", v.name),
                ))
            }
            Err(e) => errors.push(form_error(e, &mut field_errors)?),
        }
    }
    finish_errors(&field_errors, &mut errors);
    show_virtual(
        &state,
        auth,
        Some(id),
        version,
        &current.virtual_server.item,
        Some(typed),
        &field_errors,
        errors,
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    let name = v.virtual_server.item.name.clone();
    let outcome = state
        .store
        .virtual_servers()
        .delete(id, version, &posted.auth.actor())
        .await
        .map(|()| {
            format!(
                "Virtual server {name} deleted (with its real servers). Apply to put it in force."
            )
        });
    flash_outcome(&state, "/virtual", outcome)
}

pub async fn toggle(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (index, v) = find(&stored.snapshot.virtuals, id)?;
    let mut after = stored.config.clone();
    let now_active = !v.virtual_server.item.settings.active();
    after.virtuals[index].settings.active = Some(now_active);
    let (mut fe, mut errors) = (HashMap::new(), Vec::new());
    check_edit(
        &state.settings.scripts_dir,
        &stored.config,
        &after,
        Scope::Virtual(index),
        &[],
        &mut fe,
        &mut errors,
    );
    let name = &v.virtual_server.item.name;
    if !errors.is_empty() {
        return Ok(flash_back(
            &state,
            "/virtual",
            "error",
            &format!(
                "Virtual server {name} was not changed: {}",
                errors.join("; ")
            ),
        ));
    }
    let outcome = state
        .store
        .virtual_servers()
        .update_with(id, version, &posted.auth.actor(), |old| {
            old.settings.active = Some(now_active)
        })
        .await
        .map(|_| {
            format!(
                "Virtual server {name} {}. Apply to put it in force.",
                if now_active {
                    "activated"
                } else {
                    "deactivated"
                }
            )
        });
    flash_outcome(&state, "/virtual", outcome)
}

// ---- MONITORING SCRIPTS panel ----

#[derive(Template)]
#[template(path = "scripts.html")]
struct ScriptsPage {
    chrome: Chrome,
    id: i64,
    version: i64,
    name: String,
    fields: Vec<Field>,
    errors: Vec<String>,
    tab: &'static str,
}

#[allow(clippy::too_many_arguments)]
async fn show_scripts(
    state: &AppState,
    auth: &Auth,
    id: i64,
    version: i64,
    vs: &VirtualServer,
    typed: Option<&Submitted>,
    field_errors: &HashMap<String, String>,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    let page = ScriptsPage {
        chrome: Chrome::new(
            state,
            auth,
            "virtual",
            format!("Monitoring scripts of {}", vs.name),
        )
        .await?,
        id,
        version,
        name: vs.name.clone(),
        fields: form::fields(SCRIPT_SPECS, &vs.check, typed, field_errors),
        errors,
        tab: "scripts",
    };
    let status = if typed.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, html(&page)).into_response())
}

pub async fn scripts_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    show_scripts(
        &state,
        &auth,
        id,
        v.virtual_server.version,
        &v.virtual_server.item,
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

pub async fn scripts_save(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let typed = &posted.form.fields;
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (index, current) = find(&stored.snapshot.virtuals, id)?;
    let vs = &current.virtual_server.item;
    // Piranha's buttons clear a field without typing.
    let mut typed = typed.clone();
    for (button, keyword) in [
        ("no_send_program", "send_program"),
        ("blank_send", "send"),
        ("blank_expect", "expect"),
    ] {
        if !posted.form.get(button).is_empty() {
            typed.insert(keyword.into(), String::new());
        }
    }
    scripts_apply(&state, auth, id, index, version, &stored.config, vs, typed).await
}

#[allow(clippy::too_many_arguments)]
async fn scripts_apply(
    state: &AppState,
    auth: &Auth,
    id: i64,
    index: usize,
    version: i64,
    before: &Config,
    vs: &VirtualServer,
    typed: Submitted,
) -> Result<Response, WebError> {
    let mut check = vs.check.clone();
    let mut field_errors = HashMap::new();
    form::apply(SCRIPT_SPECS, &typed, &mut check, &mut field_errors);
    let mut errors = Vec::new();
    if field_errors.is_empty() {
        let mut after = before.clone();
        after.virtuals[index].check = check.clone();
        check_edit(
            &state.settings.scripts_dir,
            before,
            &after,
            Scope::Virtual(index),
            &[SCRIPT_SPECS],
            &mut field_errors,
            &mut errors,
        );
    }
    if field_errors.is_empty() && errors.is_empty() {
        match state
            .store
            .update_monitoring_scripts(id, version, &check, &auth.actor())
            .await
        {
            Ok(_) => {
                return Ok(flash_back(
                    state,
                    &format!("/virtual/{id}/scripts"),
                    "ok",
                    &format!(
                        "Monitoring scripts of {} saved. Apply to put them in force.",
                        vs.name
                    ),
                ))
            }
            Err(e) => errors.push(form_error(e, &mut field_errors)?),
        }
    }
    finish_errors(&field_errors, &mut errors);
    show_scripts(
        state,
        auth,
        id,
        version,
        vs,
        Some(&typed),
        &field_errors,
        errors,
    )
    .await
}

// ---- REAL SERVER panel ----

#[derive(Debug, Clone)]
pub struct RealRow {
    pub id: i64,
    pub version: i64,
    pub name: String,
    pub active: bool,
    pub address: String,
    pub port: String,
    pub weight: u32,
    /// From the supervisor, when it runs: up, down, drained, or empty.
    pub health: String,
}

#[derive(Template)]
#[template(path = "real_servers.html")]
struct RealListPage {
    chrome: Chrome,
    id: i64,
    name: String,
    rows: Vec<RealRow>,
    supervisor: bool,
    tab: &'static str,
}

pub async fn real_list(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    let vs = &v.virtual_server.item;
    let live = state.live.status().await;
    let health: HashMap<&str, String> = match &*live {
        super::live::LiveStatus::Running(s) => s
            .services
            .iter()
            .filter(|svc| svc.name == vs.name)
            .flat_map(|svc| svc.servers.iter())
            .map(|r| {
                (
                    r.name.as_str(),
                    if r.drained {
                        "drained".to_string()
                    } else {
                        r.health.clone()
                    },
                )
            })
            .collect(),
        _ => HashMap::new(),
    };
    let rows = v
        .servers
        .iter()
        .map(|r| RealRow {
            id: r.id,
            version: r.version,
            name: r.item.name.clone(),
            active: r.item.settings.active(),
            address: r.item.settings.get("address").unwrap_or_default(),
            port: r.item.settings.port(&vs.settings).canonical(),
            weight: r.item.settings.weight(),
            health: health
                .get(r.item.name.as_str())
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    Ok(html(&RealListPage {
        chrome: Chrome::new(
            &state,
            &auth,
            "virtual",
            format!("Real servers of {}", vs.name),
        )
        .await?,
        id,
        name: vs.name.clone(),
        rows,
        supervisor: matches!(&*live, super::live::LiveStatus::Running(_)),
        tab: "real",
    }))
}

#[derive(Template)]
#[template(path = "real_edit.html")]
struct RealPage {
    chrome: Chrome,
    id: i64,
    rid: Option<i64>,
    version: i64,
    virtual_name: String,
    name: String,
    name_error: Option<String>,
    fields: Vec<Field>,
    errors: Vec<String>,
    tab: &'static str,
}

#[allow(clippy::too_many_arguments)]
async fn show_real(
    state: &AppState,
    auth: &Auth,
    id: i64,
    rid: Option<i64>,
    version: i64,
    virtual_name: &str,
    rs: &RealServer,
    typed: Option<&Submitted>,
    field_errors: &HashMap<String, String>,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    let title = match rid {
        Some(_) => format!("Real server {} of {virtual_name}", rs.name),
        None => format!("New real server of {virtual_name}"),
    };
    let page = RealPage {
        chrome: Chrome::new(state, auth, "virtual", title).await?,
        id,
        rid,
        version,
        virtual_name: virtual_name.to_string(),
        name: typed.map_or(rs.name.clone(), |t| {
            t.get("name").cloned().unwrap_or_default()
        }),
        name_error: field_errors.get("name").cloned(),
        fields: form::fields(REAL_SPECS, &rs.settings, typed, field_errors),
        errors,
        tab: "real",
    };
    let status = if typed.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, html(&page)).into_response())
}

fn new_real() -> RealServer {
    let mut r = RealServer::default();
    r.settings.active = Some(true);
    r.settings.weight = Some(1);
    r
}

fn find_real(
    v: &StoredVirtual,
    rid: i64,
) -> Result<(usize, &crate::storage::Stored<RealServer>), WebError> {
    v.servers
        .iter()
        .enumerate()
        .find(|(_, r)| r.id == rid)
        .ok_or_else(|| WebError::NotFound(format!("real server #{rid}")))
}

pub async fn real_new_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    let name = v.virtual_server.item.name.clone();
    show_real(
        &state,
        &auth,
        id,
        None,
        0,
        &name,
        &new_real(),
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

pub async fn real_edit_page(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, rid)): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    let (_, r) = find_real(v, rid)?;
    let name = v.virtual_server.item.name.clone();
    show_real(
        &state,
        &auth,
        id,
        Some(rid),
        r.version,
        &name,
        &r.item,
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

fn real_from_form(
    base: &RealServer,
    typed: &Submitted,
    field_errors: &mut HashMap<String, String>,
) -> RealServer {
    let mut r = base.clone();
    r.name = typed.get("name").map_or("", |n| n.trim()).to_string();
    name_error(&r.name, field_errors);
    form::apply(REAL_SPECS, typed, &mut r.settings, field_errors);
    r
}

pub async fn real_create(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let typed = &posted.form.fields;
    let stored = state.stored().await?;
    let (index, v) = find(&stored.snapshot.virtuals, id)?;
    let vname = v.virtual_server.item.name.clone();
    let base = new_real();
    let mut field_errors = HashMap::new();
    let r = real_from_form(&base, typed, &mut field_errors);
    let mut errors = Vec::new();
    if field_errors.is_empty() {
        let mut after = stored.config.clone();
        after.virtuals[index].servers.push(r.clone());
        let si = after.virtuals[index].servers.len() - 1;
        check_edit(
            &state.settings.scripts_dir,
            &stored.config,
            &after,
            Scope::Server(index, si),
            &[REAL_SPECS],
            &mut field_errors,
            &mut errors,
        );
    }
    if field_errors.is_empty() && errors.is_empty() {
        match state.store.real_servers(id).create(&r, &auth.actor()).await {
            Ok(_) => {
                return Ok(flash_back(
                    &state,
                    &format!("/virtual/{id}/real"),
                    "ok",
                    &format!(
                        "Real server {} added to {vname}. Apply to put it in force.",
                        r.name
                    ),
                ))
            }
            Err(e) => errors.push(form_error(e, &mut field_errors)?),
        }
    }
    finish_errors(&field_errors, &mut errors);
    show_real(
        &state,
        auth,
        id,
        None,
        0,
        &vname,
        &base,
        Some(typed),
        &field_errors,
        errors,
    )
    .await
}

pub async fn real_save(
    State(state): State<AppState>,
    Path((id, rid)): Path<(i64, i64)>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let typed = &posted.form.fields;
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (index, v) = find(&stored.snapshot.virtuals, id)?;
    let (si, current) = find_real(v, rid)?;
    let vname = v.virtual_server.item.name.clone();
    let mut field_errors = HashMap::new();
    let r = real_from_form(&current.item, typed, &mut field_errors);
    let mut errors = Vec::new();
    if field_errors.is_empty() {
        let mut after = stored.config.clone();
        after.virtuals[index].servers[si] = r.clone();
        check_edit(
            &state.settings.scripts_dir,
            &stored.config,
            &after,
            Scope::Server(index, si),
            &[REAL_SPECS],
            &mut field_errors,
            &mut errors,
        );
    }
    if field_errors.is_empty() && errors.is_empty() {
        match state
            .store
            .real_servers(id)
            .update(rid, version, &r, &auth.actor())
            .await
        {
            Ok(_) => {
                return Ok(flash_back(
                    &state,
                    &format!("/virtual/{id}/real"),
                    "ok",
                    &format!(
                        "Real server {} of {vname} saved. Apply to put it in force.",
                        r.name
                    ),
                ))
            }
            Err(e) => errors.push(form_error(e, &mut field_errors)?),
        }
    }
    finish_errors(&field_errors, &mut errors);
    show_real(
        &state,
        auth,
        id,
        Some(rid),
        version,
        &vname,
        &current.item,
        Some(typed),
        &field_errors,
        errors,
    )
    .await
}

pub async fn real_delete(
    State(state): State<AppState>,
    Path((id, rid)): Path<(i64, i64)>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    let (_, r) = find_real(v, rid)?;
    let back = format!("/virtual/{id}/real");
    let outcome = state
        .store
        .real_servers(id)
        .delete(rid, version, &posted.auth.actor())
        .await
        .map(|()| {
            format!(
                "Real server {} deleted. Apply to put it in force (its connections are drained first).",
                r.item.name
            )
        });
    flash_outcome(&state, &back, outcome)
}

pub async fn real_toggle(
    State(state): State<AppState>,
    Path((id, rid)): Path<(i64, i64)>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (index, v) = find(&stored.snapshot.virtuals, id)?;
    let (si, r) = find_real(v, rid)?;
    let now_active = !r.item.settings.active();
    let mut after = stored.config.clone();
    after.virtuals[index].servers[si].settings.active = Some(now_active);
    let (mut fe, mut errors) = (HashMap::new(), Vec::new());
    check_edit(
        &state.settings.scripts_dir,
        &stored.config,
        &after,
        Scope::Server(index, si),
        &[],
        &mut fe,
        &mut errors,
    );
    let back = format!("/virtual/{id}/real");
    if !errors.is_empty() {
        return Ok(flash_back(&state, &back, "error", &errors.join("; ")));
    }
    let mut item = r.item.clone();
    item.settings.active = Some(now_active);
    let outcome = state
        .store
        .real_servers(id)
        .update(rid, version, &item, &posted.auth.actor())
        .await
        .map(|_| {
            format!(
                "Real server {} {}. Apply to put it in force.",
                item.name,
                if now_active {
                    "activated"
                } else {
                    "deactivated"
                }
            )
        });
    flash_outcome(&state, &back, outcome)
}

/// Drain or enable act on the running supervisor at once (not through Apply): weight
/// 0 so connections finish, or back to normal.
async fn live_action(
    state: &AppState,
    id: i64,
    rid: i64,
    posted: &AdminPost,
    drain: bool,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let (_, v) = find(&stored.snapshot.virtuals, id)?;
    let (_, r) = find_real(v, rid)?;
    let (virtual_server, server) = (v.virtual_server.item.name.clone(), r.item.name.clone());
    let req = if drain {
        Request::Drain {
            virtual_server: virtual_server.clone(),
            server: server.clone(),
        }
    } else {
        Request::Enable {
            virtual_server: virtual_server.clone(),
            server: server.clone(),
        }
    };
    let verb = if drain { "drain" } else { "enable" };
    let (kind, text) = match state.live.act(req).await {
        Ok(reply) if reply.ok => (
            "ok",
            reply.message.unwrap_or_else(|| format!("{verb}: done")),
        ),
        Ok(reply) => (
            "error",
            format!(
                "The supervisor refused to {verb} {virtual_server}/{server}: {}",
                reply.error.unwrap_or_default()
            ),
        ),
        Err(e) => (
            "error",
            format!("Cannot {verb} {virtual_server}/{server}: {e}"),
        ),
    };
    state
        .store
        .audit()
        .record(
            &posted.auth.actor(),
            verb,
            &format!("virtual {virtual_server} server {server}"),
            None,
            Some(&text),
        )
        .await?;
    Ok(flash_back(
        state,
        &format!("/virtual/{id}/real"),
        kind,
        &text,
    ))
}

pub async fn real_drain(
    State(state): State<AppState>,
    Path((id, rid)): Path<(i64, i64)>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    live_action(&state, id, rid, &posted, true).await
}

pub async fn real_enable(
    State(state): State<AppState>,
    Path((id, rid)): Path<(i64, i64)>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    live_action(&state, id, rid, &posted, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckSettings, RealServerSettings, VirtualSettings};

    #[test]
    fn the_list_filter_ignores_case() {
        assert!(contains_lowercase("Web50", "web5"));
        assert!(contains_lowercase("10.9.0.51", "0.5"));
        assert!(contains_lowercase("anything", ""));
        assert!(!contains_lowercase("web4", "web5"));
        assert!(!contains_lowercase("w", "web"));
        assert!(contains_lowercase("ÉCOLE-web", "école"));
        assert!(!contains_lowercase("ÉCOLE-web", "ecole"));
    }

    #[test]
    fn every_field_belongs_to_its_block() {
        use crate::web::form::assert_fields_of;
        let virt: Vec<_> = VIRTUAL_SPECS.iter().collect();
        assert_fields_of(&virt, VirtualSettings::KEYWORDS, "virtual");
        let check: Vec<_> = VIRTUAL_CHECK_SPECS.iter().chain(SCRIPT_SPECS).collect();
        assert_fields_of(&check, CheckSettings::KEYWORDS, "check");
        let real: Vec<_> = REAL_SPECS.iter().collect();
        assert_fields_of(&real, RealServerSettings::KEYWORDS, "server");
    }

    #[test]
    fn a_new_virtual_server_starts_from_piranhas_defaults() {
        let v = piranha_new_virtual();
        assert_eq!(v.settings.scheduler().0, "wlc");
        assert_eq!(v.check.send.as_ref().unwrap().0, "GET / HTTP/1.0\r\n\r\n");
        assert_eq!(v.check.get("timeout").as_deref(), Some("6"));
        assert!(!v.settings.active());
    }
}
