//! GLOBAL SETTINGS and REDUNDANCY: the global keywords, edited in two pages as in
//! Piranha. Keywords neither page shows are kept as they are.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::{with_flash, AdminPost, Auth};
use super::form::{self, addr_dev, choice, flag, text, Field, FieldSpec, Submitted};
use super::{html, see_other, AppState, Chrome, WebError};
use crate::config::{Config, GlobalSettings, Scope};
use crate::storage::StorageError;

pub const NETMASKS: &[(&str, &str)] = &[
    ("255.255.255.255", "255.255.255.255 (/32)"),
    ("255.255.255.254", "255.255.255.254 (/31)"),
    ("255.255.255.252", "255.255.255.252 (/30)"),
    ("255.255.255.248", "255.255.255.248 (/29)"),
    ("255.255.255.240", "255.255.255.240 (/28)"),
    ("255.255.255.224", "255.255.255.224 (/27)"),
    ("255.255.255.192", "255.255.255.192 (/26)"),
    ("255.255.255.128", "255.255.255.128 (/25)"),
    ("255.255.255.0", "255.255.255.0 (/24)"),
    ("255.255.254.0", "255.255.254.0 (/23)"),
    ("255.255.252.0", "255.255.252.0 (/22)"),
    ("255.255.248.0", "255.255.248.0 (/21)"),
    ("255.255.240.0", "255.255.240.0 (/20)"),
    ("255.255.0.0", "255.255.0.0 (/16)"),
];

pub const NETWORKS: &[(&str, &str)] = &[
    ("nat", "NAT"),
    ("direct", "Direct Routing"),
    ("tunnel", "Tunneling"),
];

const GLOBAL: &[FieldSpec] = &[
    text("primary", "Primary server public IP"),
    text("primary_private", "Primary server private IP"),
    choice("network", "Use network type", NETWORKS),
    addr_dev("nat_router", "NAT Router IP / device"),
    text("nat_nmask", "NAT Router netmask"),
    text("tcp_timeout", "TCP timeout (s)"),
    text("tcpfin_timeout", "TCP FIN timeout (s)"),
    text("udp_timeout", "UDP timeout (s)"),
    text("active_cmd", "Command when this director becomes active"),
    text(
        "inactive_cmd",
        "Command when this director becomes inactive",
    ),
    text("garp_count", "Gratuitous ARPs per address on takeover"),
    text("garp_interval", "Seconds between gratuitous ARPs"),
    text("garp_refresh", "Re-announce addresses every (s)"),
    text("rsh_command", "Remote shell for load_monitor = uptime"),
    text("notify_command", "Notification command"),
    text("smtp_server", "SMTP server for notifications"),
    text("smtp_port", "SMTP port"),
    text("smtp_timeout", "SMTP step timeout (s)"),
    text("smtp_from", "Notification sender"),
    text("smtp_to", "Notification recipients"),
];

const REDUNDANCY: &[FieldSpec] = &[
    flag("backup_active", "Backup director enabled"),
    text("backup", "Redundant server public IP"),
    text("backup_private", "Redundant server private IP"),
    text("keepalive", "Heartbeat interval (s)"),
    text("deadtime", "Assume dead after (s)"),
    text("heartbeat_port", "Heartbeat runs on port"),
    text("heartbeat_key_file", "Heartbeat key file (HMAC-SHA256)"),
    text("monitor_links", "Monitor NIC links for failures (0/1)"),
    flag("syncdaemon", "Connection sync daemon"),
    text("syncd_iface", "Sync daemon interface"),
    text("syncd_id", "Sync daemon id"),
    flag("preempt", "Primary takes the VIPs back (preempt)"),
    text("preempt_delay", "Preempt after healthy for (s)"),
];

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    action: &'static str,
    intro: String,
    version: i64,
    fields: Vec<Field>,
    errors: Vec<String>,
    /// On the Redundancy page: the VRRP instances.
    vrrp: Option<super::redundancy::VrrpPart>,
}

struct Page {
    nav: &'static str,
    title: &'static str,
    action: &'static str,
    specs: &'static [FieldSpec],
}

const GLOBAL_PAGE: Page = Page {
    nav: "global",
    title: "Global settings",
    action: "/global",
    specs: GLOBAL,
};

const REDUNDANCY_PAGE: Page = Page {
    nav: "redundancy",
    title: "Redundancy",
    action: "/redundancy",
    specs: REDUNDANCY,
};

fn intro(page: &Page, g: &GlobalSettings) -> String {
    match page.nav {
        "global" => format!(
            "Current network type: {}. Blank fields take their default (shown in the help); nothing changes in the running director until Apply.",
            g.network()
        ),
        _ => format!(
            "Backup: {}. {}",
            if g.backup_active() { "active" } else { "inactive" },
            if g.heartbeat_key_file.is_none() {
                "Heartbeats are NOT authenticated: set a heartbeat key file (the same key on both directors) so that nobody can forge them."
            } else {
                "Heartbeats are authenticated with the key file below."
            }
        ),
    }
}

#[allow(clippy::too_many_arguments)]
async fn show(
    state: &AppState,
    auth: &Auth,
    page: &Page,
    version: i64,
    settings: &GlobalSettings,
    typed: Option<&Submitted>,
    field_errors: &HashMap<String, String>,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    let status = if typed.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let vrrp = if page.nav == REDUNDANCY_PAGE.nav {
        Some(super::redundancy::part(&*state.stored().await?))
    } else {
        None
    };
    let body = html(&SettingsPage {
        chrome: Chrome::new(state, auth, page.nav, page.title).await?,
        action: page.action,
        intro: intro(page, settings),
        version,
        fields: form::fields(page.specs, settings, typed, field_errors),
        errors,
        vrrp,
    });
    Ok((status, body).into_response())
}

async fn get_page(state: AppState, auth: Auth, page: &Page) -> Result<Response, WebError> {
    let g = state.store.global_settings().await?;
    show(
        &state,
        &auth,
        page,
        g.version,
        &g.settings,
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

async fn save(state: AppState, posted: AdminPost, page: &Page) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let typed = &posted.form.fields;
    let version = posted.form.version()?;
    let stored = state.store.global_settings().await?;
    let mut settings = stored.settings.clone();
    let mut field_errors = HashMap::new();
    form::apply(page.specs, typed, &mut settings, &mut field_errors);
    let mut errors = Vec::new();
    if field_errors.is_empty() {
        let before: Config = state.stored().await?.config.clone();
        let mut after = before.clone();
        after.global = settings.clone();
        let keywords: Vec<&str> = page.specs.iter().map(|s| s.keyword).collect();
        form::new_errors(
            &form::checked(&before, &state.settings.scripts_dir),
            &form::checked(&after, &state.settings.scripts_dir),
            Some(Scope::Global),
            &keywords,
            &mut field_errors,
            &mut errors,
        );
    }
    if field_errors.is_empty() && errors.is_empty() {
        match state
            .store
            .update_global_settings(version, &settings, &stored.comments, &auth.actor())
            .await
        {
            Ok(_) => {
                return Ok(with_flash(
                    see_other(page.action),
                    "ok",
                    &format!("{} saved. Apply to put them in force.", page.title),
                    state.settings.secure_cookies,
                ))
            }
            Err(e @ StorageError::Conflict { .. }) => errors.push(e.to_string()),
            Err(e) if e.is_invalid_input() => errors.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    if errors.is_empty() && !field_errors.is_empty() {
        errors.push("Nothing was saved: correct the fields marked below.".into());
    }
    show(
        &state,
        auth,
        page,
        version,
        &stored.settings,
        Some(typed),
        &field_errors,
        errors,
    )
    .await
}

pub async fn global_page(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    get_page(state, auth, &GLOBAL_PAGE).await
}

pub async fn global_save(
    State(state): State<AppState>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    save(state, posted, &GLOBAL_PAGE).await
}

pub async fn redundancy_page(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Response, WebError> {
    get_page(state, auth, &REDUNDANCY_PAGE).await
}

pub async fn redundancy_save(
    State(state): State<AppState>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    save(state, posted, &REDUNDANCY_PAGE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_a_global_keyword_and_none_is_on_both_pages() {
        let both: Vec<_> = GLOBAL.iter().chain(REDUNDANCY).collect();
        crate::web::form::assert_fields_of(&both, GlobalSettings::KEYWORDS, "global");
    }
}
