//! lvs-director's failover extensions, which Piranha had no page for: floating
//! addresses (addresses that fail over with the directors without an IPVS service: hot
//! standby for a local nginx or httpd) and local checks (checks of local daemons that
//! hand the addresses to the peer when they fail, keepalived's `track_script`).
//!
//! One generic list/form/delete for both kinds (and the Redundancy page's VRRP
//! instances, [`super::redundancy`]); what differs is in [`Kind`].

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::auth::{AdminPost, Auth};
use super::form::{self, addr_dev, choice, flag, text, Field, FieldSpec, Submitted};
use super::{flash_back, flash_outcome, html, AppState, Chrome, WebError};
use crate::config::model::name_problem;
use crate::config::{Config, FloatingAddress, LocalCheck, Scope};
use crate::storage::{Block, Blocks, Snapshot, Store, Stored};

const FLOATING_SPECS: &[FieldSpec] = &[
    flag("active", "Active"),
    addr_dev("address", "Address / device"),
    text("vip_nmask", "Network mask"),
];

const LOCAL_SPECS: &[FieldSpec] = &[
    flag("active", "Active"),
    text("address", "Address to check"),
    text("port", "Port to check"),
];

const LOCAL_CHECK_SPECS: &[FieldSpec] = &[
    choice(
        "check",
        "Check kind",
        &[
            ("tcp", "TCP connect (with send/expect)"),
            ("http", "HTTP GET"),
            ("https", "HTTPS GET"),
            ("program", "Program"),
            ("ping", "ICMP echo"),
        ],
    ),
    text("send_program", "Program"),
    text("send", "Send"),
    text("expect", "Expect"),
    text("check_path", "HTTP path"),
    text("check_status", "Accepted HTTP status"),
    text("timeout", "Timeout (s)"),
    text("check_interval", "Interval (s)"),
    text("fall", "Failures before handing over (fall)"),
    text("rise", "Successes before it counts as healthy again (rise)"),
];

/// What differs between the kinds of block.
pub(super) trait Kind: Block + Default {
    /// URL prefix: `/floating`, `/local-check`.
    const PATH: &'static str;
    const WHAT: &'static str;
    /// The page listing them, where a change returns to.
    const LIST: &'static str = "/extras";
    /// The navigation entry their pages belong to.
    const NAV: &'static str = "extras";
    fn blocks(store: &Store) -> Blocks<'_, Self>;
    fn stored(s: &Snapshot) -> &[Stored<Self>];
    fn list_mut(c: &mut Config) -> &mut Vec<Self>;
    fn scope(index: usize) -> Scope;
    fn name(&self) -> &str;
    fn set_name(&mut self, name: String);
    fn fields(&self, typed: Option<&Submitted>, errors: &HashMap<String, String>) -> Vec<Field>;
    fn apply(&mut self, typed: &Submitted, errors: &mut HashMap<String, String>);
    fn keywords() -> Vec<&'static str>;
    fn summary(&self) -> String;
    fn active(&self) -> bool;
}

impl Kind for FloatingAddress {
    const PATH: &'static str = "/floating";
    const WHAT: &'static str = "Floating address";
    fn blocks(store: &Store) -> Blocks<'_, Self> {
        store.floating_addresses()
    }
    fn stored(s: &Snapshot) -> &[Stored<Self>] {
        &s.floating
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.floating
    }
    fn scope(index: usize) -> Scope {
        Scope::Floating(index)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn fields(&self, typed: Option<&Submitted>, errors: &HashMap<String, String>) -> Vec<Field> {
        form::fields(FLOATING_SPECS, &self.settings, typed, errors)
    }
    fn apply(&mut self, typed: &Submitted, errors: &mut HashMap<String, String>) {
        form::apply(FLOATING_SPECS, typed, &mut self.settings, errors);
    }
    fn keywords() -> Vec<&'static str> {
        FLOATING_SPECS.iter().map(|s| s.keyword).collect()
    }
    fn summary(&self) -> String {
        let mut s = self
            .settings
            .get("address")
            .unwrap_or_else(|| "(no address)".into());
        if let Some(m) = self.settings.get("vip_nmask") {
            s.push_str(&format!(" mask {m}"));
        }
        s
    }
    fn active(&self) -> bool {
        self.settings.active.unwrap_or(false)
    }
}

impl Kind for LocalCheck {
    const PATH: &'static str = "/local-check";
    const WHAT: &'static str = "Local check";
    fn blocks(store: &Store) -> Blocks<'_, Self> {
        store.local_checks()
    }
    fn stored(s: &Snapshot) -> &[Stored<Self>] {
        &s.local_checks
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.local_checks
    }
    fn scope(index: usize) -> Scope {
        Scope::LocalCheck(index)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn fields(&self, typed: Option<&Submitted>, errors: &HashMap<String, String>) -> Vec<Field> {
        let mut f = form::fields(LOCAL_SPECS, &self.settings, typed, errors);
        f.extend(form::fields(LOCAL_CHECK_SPECS, &self.check, typed, errors));
        f
    }
    fn apply(&mut self, typed: &Submitted, errors: &mut HashMap<String, String>) {
        form::apply(LOCAL_SPECS, typed, &mut self.settings, errors);
        form::apply(LOCAL_CHECK_SPECS, typed, &mut self.check, errors);
    }
    fn keywords() -> Vec<&'static str> {
        LOCAL_SPECS
            .iter()
            .chain(LOCAL_CHECK_SPECS)
            .map(|s| s.keyword)
            .collect()
    }
    fn summary(&self) -> String {
        let kind = self.check.get("check").unwrap_or_else(|| {
            if self.check.send_program.is_some() {
                "program"
            } else {
                "tcp"
            }
            .into()
        });
        let target = match (self.settings.get("address"), self.settings.get("port")) {
            (a, Some(p)) => format!("{}:{p}", a.unwrap_or_else(|| "127.0.0.1".into())),
            (Some(a), None) => a,
            (None, None) => String::new(),
        };
        format!("{kind} {target}").trim().to_string()
    }
    fn active(&self) -> bool {
        self.settings.active.unwrap_or(false)
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/extras", get(page))
        .merge(kind_routes::<FloatingAddress>())
        .merge(kind_routes::<LocalCheck>())
}

pub(super) fn kind_routes<K: Kind>() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{}/new", K::PATH),
            get(new_page::<K>).post(create::<K>),
        )
        .route(
            &format!("{}/{{id}}", K::PATH),
            get(edit_page::<K>).post(save::<K>),
        )
        .route(&format!("{}/{{id}}/delete", K::PATH), post(delete::<K>))
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub version: i64,
    pub name: String,
    pub active: bool,
    pub summary: String,
}

pub(super) fn rows<K: Kind>(list: &[Stored<K>]) -> Vec<Row> {
    list.iter()
        .map(|s| Row {
            id: s.id,
            version: s.version,
            name: Kind::name(&s.item).to_string(),
            active: s.item.active(),
            summary: s.item.summary(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "extras.html")]
struct ExtrasPage {
    chrome: Chrome,
    floating: Vec<Row>,
    local: Vec<Row>,
}

pub async fn page(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    Ok(html(&ExtrasPage {
        chrome: Chrome::new(
            &state,
            &auth,
            "extras",
            "Floating addresses and local checks",
        )
        .await?,
        floating: rows(&stored.snapshot.floating),
        local: rows(&stored.snapshot.local_checks),
    }))
}

#[derive(Template)]
#[template(path = "extra_edit.html")]
struct EditPage {
    chrome: Chrome,
    /// Where Cancel goes.
    list: &'static str,
    action: String,
    version: i64,
    name: String,
    name_error: Option<String>,
    fields: Vec<Field>,
    errors: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
async fn show<K: Kind>(
    state: &AppState,
    auth: &Auth,
    id: Option<i64>,
    version: i64,
    item: &K,
    typed: Option<&Submitted>,
    field_errors: &HashMap<String, String>,
    errors: Vec<String>,
) -> Result<Response, WebError> {
    let title = match id {
        Some(_) => format!("{} {}", K::WHAT, Kind::name(item)),
        None => format!("New {}", K::WHAT.to_lowercase()),
    };
    let page = EditPage {
        chrome: Chrome::new(state, auth, K::NAV, title).await?,
        list: K::LIST,
        action: match id {
            Some(id) => format!("{}/{id}", K::PATH),
            None => format!("{}/new", K::PATH),
        },
        version,
        name: typed.map_or(Kind::name(item).to_string(), |t| {
            t.get("name").cloned().unwrap_or_default()
        }),
        name_error: field_errors.get("name").cloned(),
        fields: item.fields(typed, field_errors),
        errors,
    };
    let status = if typed.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, html(&page)).into_response())
}

fn find<K: Kind>(list: &[Stored<K>], id: i64) -> Result<(usize, &Stored<K>), WebError> {
    list.iter()
        .enumerate()
        .find(|(_, s)| s.id == id)
        .ok_or_else(|| WebError::NotFound(format!("{} #{id}", K::WHAT.to_lowercase())))
}

fn stored_list<K: Kind>(c: &super::Cached) -> &[Stored<K>] {
    K::stored(&c.snapshot)
}

async fn new_page<K: Kind>(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Response, WebError> {
    let mut item = K::default();
    item.apply(
        &[("active".to_string(), "1".to_string())].into(),
        &mut HashMap::new(),
    );
    show(
        &state,
        &auth,
        None,
        0,
        &item,
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

async fn edit_page<K: Kind>(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let stored = state.stored().await?;
    let (_, s) = find(stored_list::<K>(&stored), id)?;
    show(
        &state,
        &auth,
        Some(id),
        s.version,
        &s.item,
        None,
        &HashMap::new(),
        Vec::new(),
    )
    .await
}

/// The block of the form and the errors it has, checked in the whole configuration
/// (at `index`, or appended when new).
fn from_form<K: Kind>(
    scripts_dir: &std::path::Path,
    base: &K,
    typed: &Submitted,
    config: &Config,
    index: Option<usize>,
) -> (K, HashMap<String, String>, Vec<String>) {
    let mut item = base.clone();
    let mut field_errors = HashMap::new();
    let mut errors = Vec::new();
    let name = typed.get("name").map_or("", |n| n.trim()).to_string();
    if let Some(why) = name_problem(&name) {
        field_errors.insert("name".into(), why.to_string());
    }
    item.set_name(name);
    item.apply(typed, &mut field_errors);
    if field_errors.is_empty() {
        let mut after = config.clone();
        let list = K::list_mut(&mut after);
        let at = match index {
            Some(i) => {
                list[i] = item.clone();
                i
            }
            None => {
                list.push(item.clone());
                list.len() - 1
            }
        };
        let mut keywords = K::keywords();
        keywords.push("name");
        form::new_errors(
            &form::checked(config, scripts_dir),
            &form::checked(&after, scripts_dir),
            Some(K::scope(at)),
            &keywords,
            &mut field_errors,
            &mut errors,
        );
    }
    if errors.is_empty() && !field_errors.is_empty() {
        errors.push("Nothing was saved: correct the fields marked below.".into());
    }
    (item, field_errors, errors)
}

async fn create<K: Kind>(
    State(state): State<AppState>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let typed = &posted.form.fields;
    let stored = state.stored().await?;
    let base = K::default();
    let (item, mut field_errors, mut errors) = from_form(
        &state.settings.scripts_dir,
        &base,
        typed,
        &stored.config,
        None,
    );
    if errors.is_empty() {
        match K::blocks(&state.store)
            .create(&item, &posted.auth.actor())
            .await
        {
            Ok(_) => {
                return Ok(flash_back(
                    &state,
                    K::LIST,
                    "ok",
                    &format!(
                        "{} {} created. Apply to put it in force.",
                        K::WHAT,
                        Kind::name(&item)
                    ),
                ))
            }
            Err(e) if e.is_invalid_input() => {
                field_errors.insert("name".into(), e.to_string());
                errors.push(e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
    }
    show(
        &state,
        &posted.auth,
        None,
        0,
        &base,
        Some(typed),
        &field_errors,
        errors,
    )
    .await
}

async fn save<K: Kind>(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let typed = &posted.form.fields;
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (index, current) = find(stored_list::<K>(&stored), id)?;
    let (item, field_errors, mut errors) = from_form(
        &state.settings.scripts_dir,
        &current.item,
        typed,
        &stored.config,
        Some(index),
    );
    if errors.is_empty() {
        match K::blocks(&state.store)
            .update(id, version, &item, &posted.auth.actor())
            .await
        {
            Ok(_) => {
                return Ok(flash_back(
                    &state,
                    K::LIST,
                    "ok",
                    &format!(
                        "{} {} saved. Apply to put it in force.",
                        K::WHAT,
                        Kind::name(&item)
                    ),
                ))
            }
            Err(e) if e.is_invalid_input() => errors.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    show(
        &state,
        &posted.auth,
        Some(id),
        version,
        &current.item,
        Some(typed),
        &field_errors,
        errors,
    )
    .await
}

async fn delete<K: Kind>(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let version = posted.form.version()?;
    let stored = state.stored().await?;
    let (_, current) = find(stored_list::<K>(&stored), id)?;
    let name = Kind::name(&current.item).to_string();
    let outcome = K::blocks(&state.store)
        .delete(id, version, &posted.auth.actor())
        .await
        .map(|()| format!("{} {name} deleted. Apply to put it in force.", K::WHAT));
    flash_outcome(&state, K::LIST, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckSettings, FloatingSettings, LocalCheckSettings};

    #[test]
    fn every_field_belongs_to_its_block() {
        use crate::web::form::assert_fields_of;
        let floating: Vec<_> = FLOATING_SPECS.iter().collect();
        assert_fields_of(&floating, FloatingSettings::KEYWORDS, "floating");
        let local: Vec<_> = LOCAL_SPECS.iter().collect();
        assert_fields_of(&local, LocalCheckSettings::KEYWORDS, "local check");
        let check: Vec<_> = LOCAL_CHECK_SPECS.iter().collect();
        assert_fields_of(&check, CheckSettings::KEYWORDS, "check");
    }

    #[test]
    fn a_floating_address_from_a_form_is_checked_in_the_whole_configuration() {
        let typed: Submitted = [
            ("name", "nginx"),
            ("active", "1"),
            ("address", "203.0.113.50"),
            ("address__device", "eth0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (item, fe, errors) = from_form(
            std::path::Path::new(crate::pulse::io::scripts::DEFAULT_SCRIPTS_DIR),
            &FloatingAddress::default(),
            &typed,
            &Config::default(),
            None,
        );
        assert!(fe.is_empty() && errors.is_empty(), "{fe:?} {errors:?}");
        assert_eq!(
            item.settings.get("address").as_deref(),
            Some("203.0.113.50 eth0")
        );

        let mut bad = typed.clone();
        bad.insert("address".into(), "0.0.0.0".into());
        let (_, fe, errors) = from_form(
            std::path::Path::new(crate::pulse::io::scripts::DEFAULT_SCRIPTS_DIR),
            &FloatingAddress::default(),
            &bad,
            &Config::default(),
            None,
        );
        assert!(fe.contains_key("address"), "{fe:?}");
        assert!(!errors.is_empty());
    }
}
