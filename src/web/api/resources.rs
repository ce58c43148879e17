//! The API's operations. Each handler carries its `utoipa::path`, which is what puts
//! it in the router and in the document alike (`routes!`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{EditRefusals, Locked, Problem, Refusals, ViewerRefused};
use super::Caller;
use crate::config::model::Keywords;
use crate::web::live::LiveStatus;
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(list_virtual_servers, create_virtual_server))
        .routes(routes!(
            get_virtual_server,
            replace_virtual_server,
            delete_virtual_server
        ))
        .routes(routes!(preview_apply, apply))
        .routes(routes!(drain_real_server))
        .routes(routes!(enable_real_server))
        .routes(routes!(hand_over))
        .routes(routes!(list_floating_addresses, create_floating_address))
        .routes(routes!(
            get_floating_address,
            replace_floating_address,
            delete_floating_address
        ))
        .routes(routes!(list_local_checks, create_local_check))
        .routes(routes!(
            get_local_check,
            replace_local_check,
            delete_local_check
        ))
        .routes(routes!(list_vrrp_instances, create_vrrp_instance))
        .routes(routes!(
            get_vrrp_instance,
            replace_vrrp_instance,
            delete_vrrp_instance
        ))
        .routes(routes!(list_real_servers, create_real_server))
        .routes(routes!(
            get_real_server,
            replace_real_server,
            delete_real_server
        ))
}

/// The virtual server `name` and its place in the list, or a 404.
fn find_virtual<'a>(
    snapshot: &'a crate::storage::Snapshot,
    name: &str,
) -> Result<(usize, &'a crate::storage::StoredVirtual), Problem> {
    snapshot
        .virtuals
        .iter()
        .enumerate()
        .find(|(_, v)| v.virtual_server.item.name == name)
        .ok_or_else(|| Problem::not_found(format!("virtual server {name} not found")))
}

/// Real server `server` of `v` and its place in the list, or a 404.
fn find_real<'a>(
    v: &'a crate::storage::StoredVirtual,
    server: &str,
) -> Result<(usize, &'a crate::storage::Stored<crate::config::RealServer>), Problem> {
    v.servers
        .iter()
        .enumerate()
        .find(|(_, r)| r.item.name == server)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "real server {server} of virtual server {} not found",
                v.virtual_server.item.name
            ))
        })
}

/// The keywords of a block that are set, with their `lvs.cf` values.
pub(super) fn settings<K: Keywords>(block: &K) -> BTreeMap<String, String> {
    block
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// A virtual server's keywords: its own and its health check's, as one block in
/// `lvs.cf`.
fn virtual_settings(v: &crate::config::VirtualServer) -> BTreeMap<String, String> {
    let mut all = settings(&v.settings);
    all.extend(settings(&v.check));
    all
}

/// A resource's version as an entity tag.
pub(super) fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

pub(super) fn with_etag(version: i64, body: impl IntoResponse) -> Response {
    tagged(&etag(version), body)
}

/// `body` with `tag` (quoted already) as its `ETag`.
pub(super) fn tagged(tag: &str, body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    if let Ok(v) = HeaderValue::from_str(tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// A virtual server (`virtual NAME { … }` in `lvs.cf`), without its real servers.
#[derive(Debug, Serialize, ToSchema)]
pub struct VirtualServer {
    pub name: String,
    /// The keywords that are set, with their `lvs.cf` values (`address`:
    /// `"192.0.2.10 eth0"`, `port`: `"80"`…); unset keywords take their defaults.
    pub settings: BTreeMap<String, String>,
    /// The names of its real servers, in order.
    pub real_servers: Vec<String>,
    /// Its version; also its `ETag`.
    pub version: i64,
}

impl VirtualServer {
    fn of(v: &crate::storage::StoredVirtual) -> VirtualServer {
        VirtualServer {
            name: v.virtual_server.item.name.clone(),
            settings: virtual_settings(&v.virtual_server.item),
            real_servers: v.servers.iter().map(|s| s.item.name.clone()).collect(),
            version: v.virtual_server.version,
        }
    }
}

/// The supervisor's status: role, peer, addresses, services and real servers, as
/// `lvs-director status --json` prints it.
#[utoipa::path(
    get,
    path = "/status",
    tag = "status",
    responses(
        (status = 200, description = "The supervisor's status", body = Object, content_type = "application/json"),
        (status = 503, description = "The supervisor does not answer", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn status(State(state): State<AppState>, Extension(_caller): Extension<Caller>) -> Response {
    match state.live.status().await.as_ref() {
        LiveStatus::Running(s) => Json(s).into_response(),
        LiveStatus::Unavailable(why) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the supervisor does not answer: {why}"),
        )
        .into_response(),
    }
}

/// Every virtual server, in `lvs.cf` order.
#[utoipa::path(
    get,
    path = "/virtual-servers",
    tag = "virtual servers",
    responses(
        (status = 200, description = "The virtual servers", body = [VirtualServer]),
        Refusals,
        Locked,
    )
)]
async fn list_virtual_servers(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Json<Vec<VirtualServer>>, Problem> {
    let snapshot = state.store.snapshot().await?;
    Ok(Json(
        snapshot.virtuals.iter().map(VirtualServer::of).collect(),
    ))
}

/// One virtual server, with its version as `ETag`.
#[utoipa::path(
    get,
    path = "/virtual-servers/{name}",
    tag = "virtual servers",
    params(("name" = String, Path, description = "The virtual server's name")),
    responses(
        (status = 200, description = "The virtual server", body = VirtualServer,
            headers(("ETag" = String, description = "Its version, for `If-Match`"))),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        Refusals,
        Locked,
    )
)]
async fn get_virtual_server(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let snapshot = state.store.snapshot().await?;
    let (_, v) = find_virtual(&snapshot, &name)?;
    Ok(with_etag(
        v.virtual_server.version,
        Json(VirtualServer::of(v)),
    ))
}

/// What a client sends to create a virtual server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVirtualServer {
    pub name: String,
    /// Its keywords with their `lvs.cf` values, as [`VirtualServer`] shows them; the
    /// keywords left out take their defaults.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// What a client sends to replace a virtual server's keywords (its real servers stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeywordSettings {
    /// Every keyword it is to have, with its `lvs.cf` value; those left out are unset
    /// (their defaults apply). A `GET`'s `settings` sent back unchanged changes nothing.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// A JSON body, or a 400 problem saying what is wrong with it (axum's own rejection
/// would be plain text).
pub(super) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let bad = |e: String| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON expected: {e}"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    // serde reads a struct from an array of its fields in order too: no body here is
    // one.
    if value.is_array() {
        return Err(bad("an object is expected, not an array".into()));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// What a change without `If-Match` is told.
pub(super) const NEEDS_IF_MATCH: &str =
    "a change needs `If-Match` with the ETag of the version it was made from";

/// The `If-Match` header as sent, trimmed: 428 saying `needs` without one.
pub(super) fn if_match_given<'h>(
    headers: &'h axum::http::HeaderMap,
    needs: &str,
) -> Result<&'h str, Problem> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or_else(|| Problem::new(StatusCode::PRECONDITION_REQUIRED, needs))
}

/// The version an `If-Match` names: 428 without one, 412 when it is not one of ours.
pub(super) fn if_match(headers: &axum::http::HeaderMap, current: i64) -> Result<i64, Problem> {
    let given = if_match_given(headers, NEEDS_IF_MATCH)?;
    let version = given
        .trim()
        .strip_prefix("\"v")
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse().ok());
    match version {
        Some(v) if v == current => Ok(v),
        _ => Err(stale(current)),
    }
}

/// 412 with the current version.
pub(super) fn stale(current: i64) -> Problem {
    let mut p = Problem::new(
        StatusCode::PRECONDITION_FAILED,
        format!(
            "it was changed since the version you hold: it is now {}; read it again",
            etag(current)
        ),
    );
    p.current_etag = Some(etag(current).into());
    p
}

/// Sets `block`'s keywords from `settings` (the others of its table unset), as the
/// admin UI's forms do, filing each error under its keyword.
pub(super) fn set_keywords<K: Keywords>(
    block: &mut K,
    settings: &BTreeMap<String, String>,
    errors: &mut Vec<super::problem::FieldError>,
) {
    for keyword in K::KEYWORDS {
        let Some(text) = settings
            .get(*keyword)
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
        else {
            block.unset(keyword);
            continue;
        };
        let set = crate::config::value_tokens(text).and_then(|tokens| {
            block.set(keyword, &tokens).unwrap_or_else(|| {
                Err(crate::config::value::ValueError::new(
                    0,
                    "not a keyword here",
                ))
            })
        });
        if let Err(e) = set {
            errors.push(super::problem::FieldError {
                field: keyword.to_string(),
                message: e.message,
            });
        }
    }
}

/// A block the API reads and writes as a name and one map of keywords: a virtual or
/// real server's own keywords and its health check's, as one block of `lvs.cf`.
trait ApiBlock: Clone {
    /// What it is called in messages.
    const WHAT: &'static str;
    fn name_mut(&mut self) -> &mut String;
    fn keywords(&self) -> BTreeMap<String, String>;
    fn set_keywords(
        &mut self,
        settings: &BTreeMap<String, String>,
        errors: &mut Vec<super::problem::FieldError>,
    );
    /// Every keyword it has.
    fn keyword_list() -> Vec<&'static str>;
}

impl ApiBlock for crate::config::VirtualServer {
    const WHAT: &'static str = "a virtual server";
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
    fn keywords(&self) -> BTreeMap<String, String> {
        virtual_settings(self)
    }
    fn set_keywords(
        &mut self,
        settings: &BTreeMap<String, String>,
        errors: &mut Vec<super::problem::FieldError>,
    ) {
        set_keywords(&mut self.settings, settings, errors);
        set_keywords(&mut self.check, settings, errors);
    }
    fn keyword_list() -> Vec<&'static str> {
        [
            crate::config::model::VirtualSettings::KEYWORDS,
            crate::config::model::CheckSettings::KEYWORDS,
        ]
        .concat()
    }
}

impl ApiBlock for crate::config::RealServer {
    const WHAT: &'static str = "a real server";
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
    fn keywords(&self) -> BTreeMap<String, String> {
        let mut all = settings(&self.settings);
        all.extend(settings(&self.check));
        all
    }
    fn set_keywords(
        &mut self,
        settings: &BTreeMap<String, String>,
        errors: &mut Vec<super::problem::FieldError>,
    ) {
        set_keywords(&mut self.settings, settings, errors);
        set_keywords(&mut self.check, settings, errors);
    }
    fn keyword_list() -> Vec<&'static str> {
        [
            crate::config::model::RealServerSettings::KEYWORDS,
            crate::config::model::CheckSettings::KEYWORDS,
        ]
        .concat()
    }
}

/// `base` with `name` and `settings`, checked as the admin UI checks a saved form:
/// each value, then the whole configuration with the edit in place (`place` puts the
/// block into the configuration and says where it is): 422 with the fields at fault.
fn edited<B: ApiBlock>(
    state: &AppState,
    before: &crate::config::Config,
    place: impl FnOnce(&mut crate::config::Config, &B) -> crate::config::Scope,
    base: &B,
    name: &str,
    settings: &BTreeMap<String, String>,
) -> Result<B, Problem> {
    let mut b = base.clone();
    *b.name_mut() = name.trim().to_string();
    let mut errors = Vec::new();
    if let Some(why) = crate::config::model::name_problem(b.name_mut()) {
        errors.push(super::problem::FieldError {
            field: "name".into(),
            message: why.into(),
        });
    }
    let keywords = B::keyword_list();
    errors.extend(unknown_keywords(settings, &keywords, B::WHAT));
    b.set_keywords(settings, &mut errors);
    let mut general = Vec::new();
    if errors.is_empty() {
        let mut after = before.clone();
        let scope = place(&mut after, &b);
        check_in_place(
            state,
            before,
            &after,
            scope,
            &keywords,
            &mut errors,
            &mut general,
        );
    }
    refused(errors, general).map_or(Ok(b), Err)
}

/// The 422 for an edit with field errors or whole-configuration ones, if it has any.
pub(super) fn refused(
    mut errors: Vec<super::problem::FieldError>,
    general: Vec<String>,
) -> Option<Problem> {
    if errors.is_empty() && general.is_empty() {
        return None;
    }
    let detail = if general.is_empty() {
        "nothing was saved: correct the fields listed".to_string()
    } else {
        format!("nothing was saved: {}", general.join("; "))
    };
    let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    p.errors = errors;
    Some(p)
}

/// Field errors for the keywords of `settings` that `known` does not have.
pub(super) fn unknown_keywords(
    settings: &BTreeMap<String, String>,
    known: &[&str],
    what: &str,
) -> Vec<super::problem::FieldError> {
    settings
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| super::problem::FieldError {
            field: k.clone(),
            message: format!("`{k}` is not a keyword of {what}"),
        })
        .collect()
}

/// The whole-configuration check of an edit in `scope`, as the admin UI's forms make
/// it: problems the edit brings in, by keyword (every one a field) or in general.
pub(super) fn check_in_place(
    state: &AppState,
    before: &crate::config::Config,
    after: &crate::config::Config,
    scope: crate::config::Scope,
    keywords: &[&'static str],
    errors: &mut Vec<super::problem::FieldError>,
    general: &mut Vec<String>,
) {
    let mut fields = std::collections::HashMap::new();
    let specs: Vec<crate::web::form::FieldSpec> = keywords
        .iter()
        .map(|k| crate::web::form::text(k, k))
        .collect();
    crate::web::virtuals::check_edit(
        &state.settings.scripts_dir,
        before,
        after,
        scope,
        &[&specs],
        &mut fields,
        general,
    );
    errors.extend(
        fields
            .into_iter()
            .map(|(field, message)| super::problem::FieldError { field, message }),
    );
}

/// Puts a virtual server at `index` of the configuration, or at its end.
fn place_virtual(
    index: Option<usize>,
) -> impl FnOnce(&mut crate::config::Config, &crate::config::VirtualServer) -> crate::config::Scope
{
    move |c, v| {
        let i = match index {
            Some(i) => {
                c.virtuals[i] = v.clone();
                i
            }
            None => {
                c.virtuals.push(v.clone());
                c.virtuals.len() - 1
            }
        };
        crate::config::Scope::Virtual(i)
    }
}

/// Puts a real server at `index` of virtual server `vi`'s list, or at its end.
fn place_real(
    vi: usize,
    index: Option<usize>,
) -> impl FnOnce(&mut crate::config::Config, &crate::config::RealServer) -> crate::config::Scope {
    move |c, r| {
        let servers = &mut c.virtuals[vi].servers;
        let i = match index {
            Some(i) => {
                servers[i] = r.clone();
                i
            }
            None => {
                servers.push(r.clone());
                servers.len() - 1
            }
        };
        crate::config::Scope::Server(vi, i)
    }
}

/// Creates a virtual server (at the end of the list), without real servers.
#[utoipa::path(
    post,
    path = "/virtual-servers",
    tag = "virtual servers",
    request_body = NewVirtualServer,
    responses(
        (status = 201, description = "Created", body = VirtualServer,
            headers(("ETag" = String, description = "Its version"), ("Location" = String, description = "Where it is"))),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Values the configuration refuses, by field", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn create_virtual_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let new: NewVirtualServer = body(&bytes)?;
    let snapshot = state.store.snapshot().await?;
    if snapshot
        .virtuals
        .iter()
        .any(|v| v.virtual_server.item.name == new.name.trim())
    {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("virtual server {} already exists", new.name.trim()),
        ));
    }
    let before = snapshot.config();
    let base = crate::config::VirtualServer::default();
    let v = edited(
        &state,
        &before,
        place_virtual(None),
        &base,
        &new.name,
        &new.settings,
    )?;
    let created = state
        .store
        .virtual_servers()
        .create(&v, &caller.actor())
        .await?;
    let out = VirtualServer {
        name: v.name.clone(),
        settings: virtual_settings(&v),
        real_servers: Vec::new(),
        version: created.version,
    };
    let mut r = with_etag(created.version, (StatusCode::CREATED, Json(out)));
    if let Ok(l) = HeaderValue::from_str(&format!("{}/virtual-servers/{}", super::BASE, v.name)) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    Ok(r)
}

/// Replaces a virtual server's keywords, if it is still at the version `If-Match`
/// names. The same keywords again change nothing (no new version).
#[utoipa::path(
    put,
    path = "/virtual-servers/{name}",
    tag = "virtual servers",
    params(
        ("name" = String, Path, description = "The virtual server's name"),
        ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
    ),
    request_body = KeywordSettings,
    responses(
        (status = 200, description = "Saved (or already so)", body = VirtualServer,
            headers(("ETag" = String, description = "Its version now"))),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        EditRefusals,
        Locked,
    )
)]
async fn replace_virtual_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let wanted: KeywordSettings = body(&bytes)?;
    let snapshot = state.store.snapshot().await?;
    let (index, current) = find_virtual(&snapshot, &name)?;
    let version = if_match(&headers, current.virtual_server.version)?;
    let before = snapshot.config();
    let v = edited(
        &state,
        &before,
        place_virtual(Some(index)),
        &current.virtual_server.item,
        &name,
        &wanted.settings,
    )?;
    let (settings, check) = (v.settings.clone(), v.check.clone());
    let saved = state
        .store
        .virtual_servers()
        .update_with(current.virtual_server.id, version, &caller.actor(), |old| {
            old.settings = settings;
            old.check = check;
        })
        .await;
    let now = match saved {
        Ok(now) => now,
        Err(crate::storage::StorageError::Conflict { found, .. }) => return Err(stale(found)),
        Err(e) => return Err(e.into()),
    };
    let out = VirtualServer {
        version: now,
        settings: virtual_settings(&v),
        ..VirtualServer::of(current)
    };
    Ok(with_etag(now, Json(out)))
}

/// Deletes a virtual server and its real servers, if it is still at the version
/// `If-Match` names.
#[utoipa::path(
    delete,
    path = "/virtual-servers/{name}",
    tag = "virtual servers",
    params(
        ("name" = String, Path, description = "The virtual server's name"),
        ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since that version; `current_etag` says which it is now", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn delete_virtual_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    caller.admin()?;
    let snapshot = state.store.snapshot().await?;
    let (_, current) = find_virtual(&snapshot, &name)?;
    let version = if_match(&headers, current.virtual_server.version)?;
    match state
        .store
        .virtual_servers()
        .delete(current.virtual_server.id, version, &caller.actor())
        .await
    {
        Ok(()) => {}
        Err(crate::storage::StorageError::Conflict { found, .. }) => return Err(stale(found)),
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A real server of a virtual server (`server NAME { … }` in its block).
#[derive(Debug, Serialize, ToSchema)]
pub struct RealServer {
    pub name: String,
    /// The keywords that are set, with their `lvs.cf` values (`address`, `weight`…,
    /// and the health-check keywords it overrides).
    pub settings: BTreeMap<String, String>,
    /// Its version; also its `ETag`.
    pub version: i64,
}

impl RealServer {
    fn of(r: &crate::storage::Stored<crate::config::RealServer>) -> RealServer {
        RealServer {
            name: r.item.name.clone(),
            settings: r.item.keywords(),
            version: r.version,
        }
    }
}

/// What a client sends to create a real server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRealServer {
    pub name: String,
    /// Its keywords with their `lvs.cf` values; those left out take their defaults.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// The real servers of a virtual server, in order.
#[utoipa::path(
    get,
    path = "/virtual-servers/{name}/real-servers",
    tag = "real servers",
    params(("name" = String, Path, description = "The virtual server's name")),
    responses(
        (status = 200, description = "Its real servers", body = [RealServer]),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        Refusals,
        Locked,
    )
)]
async fn list_real_servers(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Vec<RealServer>>, Problem> {
    let snapshot = state.store.snapshot().await?;
    let (_, v) = find_virtual(&snapshot, &name)?;
    Ok(Json(v.servers.iter().map(RealServer::of).collect()))
}

/// One real server, with its version as `ETag`.
#[utoipa::path(
    get,
    path = "/virtual-servers/{name}/real-servers/{server}",
    tag = "real servers",
    params(
        ("name" = String, Path, description = "The virtual server's name"),
        ("server" = String, Path, description = "The real server's name"),
    ),
    responses(
        (status = 200, description = "The real server", body = RealServer,
            headers(("ETag" = String, description = "Its version, for `If-Match`"))),
        (status = 404, description = "No such virtual or real server", body = Problem, content_type = "application/problem+json"),
        Refusals,
        Locked,
    )
)]
async fn get_real_server(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path((name, server)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let snapshot = state.store.snapshot().await?;
    let (_, v) = find_virtual(&snapshot, &name)?;
    let (_, r) = find_real(v, &server)?;
    Ok(with_etag(r.version, Json(RealServer::of(r))))
}

/// Adds a real server at the end of a virtual server's list.
#[utoipa::path(
    post,
    path = "/virtual-servers/{name}/real-servers",
    tag = "real servers",
    params(("name" = String, Path, description = "The virtual server's name")),
    request_body = NewRealServer,
    responses(
        (status = 201, description = "Created", body = RealServer,
            headers(("ETag" = String, description = "Its version"), ("Location" = String, description = "Where it is"))),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Values the configuration refuses, by field", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn create_real_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let snapshot = state.store.snapshot().await?;
    let (vi, v) = find_virtual(&snapshot, &name)?;
    let new: NewRealServer = body(&bytes)?;
    if v.servers.iter().any(|r| r.item.name == new.name.trim()) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "real server {} of virtual server {name} already exists",
                new.name.trim()
            ),
        ));
    }
    let before = snapshot.config();
    let base = crate::config::RealServer::default();
    let r = edited(
        &state,
        &before,
        place_real(vi, None),
        &base,
        &new.name,
        &new.settings,
    )?;
    let created = state
        .store
        .real_servers(v.virtual_server.id)
        .create(&r, &caller.actor())
        .await?;
    let mut response = with_etag(
        created.version,
        (StatusCode::CREATED, Json(RealServer::of(&created))),
    );
    if let Ok(l) = HeaderValue::from_str(&format!(
        "{}/virtual-servers/{name}/real-servers/{}",
        super::BASE,
        r.name
    )) {
        response.headers_mut().insert(header::LOCATION, l);
    }
    Ok(response)
}

/// Replaces a real server's keywords, if it is still at the version `If-Match` names.
/// The same keywords again change nothing.
#[utoipa::path(
    put,
    path = "/virtual-servers/{name}/real-servers/{server}",
    tag = "real servers",
    params(
        ("name" = String, Path, description = "The virtual server's name"),
        ("server" = String, Path, description = "The real server's name"),
        ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
    ),
    request_body = KeywordSettings,
    responses(
        (status = 200, description = "Saved (or already so)", body = RealServer,
            headers(("ETag" = String, description = "Its version now"))),
        (status = 404, description = "No such virtual or real server", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        EditRefusals,
        Locked,
    )
)]
async fn replace_real_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, server)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let wanted: KeywordSettings = body(&bytes)?;
    let snapshot = state.store.snapshot().await?;
    let (vi, v) = find_virtual(&snapshot, &name)?;
    let (si, current) = find_real(v, &server)?;
    let version = if_match(&headers, current.version)?;
    let before = snapshot.config();
    let r = edited(
        &state,
        &before,
        place_real(vi, Some(si)),
        &current.item,
        &server,
        &wanted.settings,
    )?;
    let (settings, check) = (r.settings.clone(), r.check.clone());
    let saved = state
        .store
        .real_servers(v.virtual_server.id)
        .update_with(current.id, version, &caller.actor(), |old| {
            old.settings = settings;
            old.check = check;
        })
        .await;
    let now = match saved {
        Ok(now) => now,
        Err(crate::storage::StorageError::Conflict { found, .. }) => return Err(stale(found)),
        Err(e) => return Err(e.into()),
    };
    let out = RealServer {
        name: server,
        settings: r.keywords(),
        version: now,
    };
    Ok(with_etag(now, Json(out)))
}

/// Deletes a real server, if it is still at the version `If-Match` names.
#[utoipa::path(
    delete,
    path = "/virtual-servers/{name}/real-servers/{server}",
    tag = "real servers",
    params(
        ("name" = String, Path, description = "The virtual server's name"),
        ("server" = String, Path, description = "The real server's name"),
        ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such virtual or real server", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since that version; `current_etag` says which it is now", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn delete_real_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, server)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    caller.admin()?;
    let snapshot = state.store.snapshot().await?;
    let (_, v) = find_virtual(&snapshot, &name)?;
    let (_, current) = find_real(v, &server)?;
    let version = if_match(&headers, current.version)?;
    match state
        .store
        .real_servers(v.virtual_server.id)
        .delete(current.id, version, &caller.actor())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(crate::storage::StorageError::Conflict { found, .. }) => Err(stale(found)),
        Err(e) => Err(e.into()),
    }
}

/// One line of a diff: `add`, `del`, `ctx` or `hunk`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffLine {
    pub kind: String,
    pub text: String,
}

impl From<crate::config::publish::DiffLine> for DiffLine {
    fn from(d: crate::config::publish::DiffLine) -> Self {
        DiffLine {
            kind: d.kind.to_string(),
            text: d.text,
        }
    }
}

/// What an Apply would do now: the dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyPreview {
    /// The serial the file would get.
    pub serial: u32,
    /// Nothing but the serial would change.
    pub unchanged: bool,
    /// The rendering against the file in force.
    pub diff: Vec<DiffLine>,
    /// Errors that keep it from being applied.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The preview's digest; also its `ETag`, for the Apply's `If-Match`.
    pub digest: String,
}

/// What an Apply sends.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// Recorded with the revision.
    #[serde(default)]
    pub comment: String,
}

/// A peer director's answer to an Apply.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeerAnswer {
    pub peer: String,
    /// Taken (or already in force) there.
    pub ok: bool,
    pub said: String,
}

/// What an Apply did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyResult {
    /// The revision recorded.
    pub revision: i64,
    pub serial: u32,
    /// The supervisor's answer.
    pub supervisor: String,
    /// This director and every peer run it.
    pub ok: bool,
    pub peers: Vec<PeerAnswer>,
}

/// The dry run: the diff an Apply would write, its errors, and its digest as `ETag`.
#[utoipa::path(
    get,
    path = "/apply",
    tag = "apply",
    responses(
        (status = 200, description = "The preview", body = ApplyPreview,
            headers(("ETag" = String, description = "The preview's digest, for the Apply's `If-Match`"))),
        Refusals,
        Locked,
    )
)]
async fn preview_apply(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Response, Problem> {
    let planned = crate::apply::plan(&state.store, &state.settings.lvs_cf)
        .await
        .map_err(apply_error)?;
    let p = planned.preview;
    let tag = format!("\"{}\"", p.digest);
    let mut r = Json(ApplyPreview {
        serial: p.serial,
        unchanged: p.unchanged,
        diff: p.diff.into_iter().map(DiffLine::from).collect(),
        errors: p.errors,
        warnings: p.warnings,
        digest: p.digest,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(r)
}

fn apply_error(e: crate::apply::ApplyError) -> Problem {
    match e {
        crate::apply::ApplyError::Storage(s) => s.into(),
        other => Problem::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
    }
}

/// Applies the stored configuration as previewed (`If-Match`: the preview's digest):
/// writes `lvs.cf`, records the revision, has the supervisor reload, offers it to the
/// peers; answers what each said.
#[utoipa::path(
    post,
    path = "/apply",
    tag = "apply",
    params(("If-Match" = String, Header, description = "The digest (ETag) of the preview being applied")),
    request_body(content = Option<ApplyRequest>, description = "Optional: a comment for the revision"),
    responses(
        (status = 200, description = "Applied: the supervisor's and the peers' answers", body = ApplyResult),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The supervisor says it could not run it; nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The configuration or the file in force changed since that preview; `current_etag` is the new one", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The configuration has errors; nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Nothing was applied: the file could not be written or the revision recorded", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
    )
)]
async fn apply(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    use crate::web::publish::Applied;
    caller.admin()?;
    // No body, `null` and an object without a comment are the same request.
    let request: ApplyRequest = if bytes.is_empty() {
        ApplyRequest::default()
    } else {
        body::<Option<ApplyRequest>>(&bytes)?.unwrap_or_default()
    };
    let digest = if_match_given(
        &headers,
        "an Apply needs `If-Match` with the digest (ETag) of the preview it applies: GET /api/v1/apply",
    )?
    .trim_matches('"')
    .to_string();
    let applied =
        crate::web::publish::apply_stored(&state, &caller.actor(), &request.comment, &digest)
            .await
            .map_err(|e| match e {
                crate::web::WebError::Storage(s) => Problem::from(s),
                other => Problem::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
            })?;
    match applied {
        Applied::Stale => {
            let now = crate::apply::plan(&state.store, &state.settings.lvs_cf)
                .await
                .map_err(apply_error)?;
            let mut p = Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "the configuration or the file in force changed since that preview; nothing was written: preview again",
            );
            p.current_etag = Some(format!("\"{}\"", now.preview.digest).into());
            Err(p)
        }
        Applied::Invalid(errors) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the configuration has errors; nothing was written: {}",
                errors.join("; ")
            ),
        )),
        Applied::Refused(e) => Err(Problem::new(
            StatusCode::CONFLICT,
            format!("{e}; nothing was written"),
        )),
        Applied::Failed(e) => Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, e)),
        Applied::Done {
            revision,
            serial,
            answer,
            ok,
            peers,
        } => Ok(Json(ApplyResult {
            revision,
            serial,
            ok,
            supervisor: answer,
            peers: peers
                .into_iter()
                .map(|a| PeerAnswer {
                    peer: a.peer,
                    ok: a.ok,
                    said: a.said,
                })
                .collect(),
        })
        .into_response()),
    }
}

/// What the supervisor said to an action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    pub said: String,
}

/// Sends `req` to the supervisor: 200 with its answer, 409 when it refuses, 503 when
/// it does not answer. Recorded in the audit log under `verb` and `object`.
async fn act(
    state: &AppState,
    caller: &Caller,
    req: crate::pulse::logic::control::Request,
    verb: &str,
    object: &str,
) -> Result<Response, Problem> {
    let (result, said) = match state.live.act(req).await {
        Ok(reply) if reply.ok => {
            let said = reply.message.unwrap_or_else(|| format!("{verb}: done"));
            (
                Ok(Json(ActionResult { said: said.clone() }).into_response()),
                said,
            )
        }
        Ok(reply) => {
            let said = format!(
                "the supervisor refused to {verb} {object}: {}",
                reply.error.unwrap_or_default()
            );
            (Err(Problem::new(StatusCode::CONFLICT, said.clone())), said)
        }
        Err(e) => {
            let said = format!("cannot {verb} {object}: {e}");
            (
                Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, said.clone())),
                said,
            )
        }
    };
    state
        .store
        .audit()
        .record(&caller.actor(), verb, object, None, Some(&said))
        .await?;
    result
}

/// Drains a real server in the running supervisor: weight 0, so it gets no new
/// connections while the existing ones finish (lives until the next restart).
#[utoipa::path(
    post,
    path = "/virtual-servers/{name}/real-servers/{server}/drain",
    tag = "actions",
    params(
        ("name" = String, Path, description = "The virtual server's name"),
        ("server" = String, Path, description = "The real server's name"),
    ),
    responses(
        (status = 200, description = "Drained", body = ActionResult),
        (status = 409, description = "The supervisor refused (say, no such server in what it runs)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The supervisor does not answer", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
    )
)]
async fn drain_real_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, server)): Path<(String, String)>,
) -> Result<Response, Problem> {
    caller.admin()?;
    let object = format!("virtual {name} server {server}");
    let req = crate::pulse::logic::control::Request::Drain {
        virtual_server: name,
        server,
    };
    act(&state, &caller, req, "drain", &object).await
}

/// Undoes a drain in the running supervisor.
#[utoipa::path(
    post,
    path = "/virtual-servers/{name}/real-servers/{server}/enable",
    tag = "actions",
    params(
        ("name" = String, Path, description = "The virtual server's name"),
        ("server" = String, Path, description = "The real server's name"),
    ),
    responses(
        (status = 200, description = "Enabled", body = ActionResult),
        (status = 409, description = "The supervisor refused (say, no such server in what it runs)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The supervisor does not answer", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
    )
)]
async fn enable_real_server(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, server)): Path<(String, String)>,
) -> Result<Response, Problem> {
    caller.admin()?;
    let object = format!("virtual {name} server {server}");
    let req = crate::pulse::logic::control::Request::Enable {
        virtual_server: name,
        server,
    };
    act(&state, &caller, req, "enable", &object).await
}

/// Gives the addresses to the peer director on purpose (maintenance).
#[utoipa::path(
    post,
    path = "/hand-over",
    tag = "actions",
    responses(
        (status = 200, description = "Handed over", body = ActionResult),
        (status = 409, description = "The supervisor refused (say, no peer to take them)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The supervisor does not answer", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
    )
)]
async fn hand_over(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    caller.admin()?;
    act(
        &state,
        &caller,
        crate::pulse::logic::control::Request::HandOver,
        "hand_over",
        "the addresses",
    )
    .await
}

impl ApiBlock for crate::config::FloatingAddress {
    const WHAT: &'static str = "a floating address";
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
    fn keywords(&self) -> BTreeMap<String, String> {
        settings(&self.settings)
    }
    fn set_keywords(
        &mut self,
        settings: &BTreeMap<String, String>,
        errors: &mut Vec<super::problem::FieldError>,
    ) {
        set_keywords(&mut self.settings, settings, errors);
    }
    fn keyword_list() -> Vec<&'static str> {
        crate::config::model::FloatingSettings::KEYWORDS.to_vec()
    }
}

impl ApiBlock for crate::config::LocalCheck {
    const WHAT: &'static str = "a local check";
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
    fn keywords(&self) -> BTreeMap<String, String> {
        let mut all = settings(&self.settings);
        all.extend(settings(&self.check));
        all
    }
    fn set_keywords(
        &mut self,
        settings: &BTreeMap<String, String>,
        errors: &mut Vec<super::problem::FieldError>,
    ) {
        set_keywords(&mut self.settings, settings, errors);
        set_keywords(&mut self.check, settings, errors);
    }
    fn keyword_list() -> Vec<&'static str> {
        [
            crate::config::model::LocalCheckSettings::KEYWORDS,
            crate::config::model::CheckSettings::KEYWORDS,
        ]
        .concat()
    }
}

impl ApiBlock for crate::config::VrrpInstance {
    const WHAT: &'static str = "a VRRP instance";
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
    fn keywords(&self) -> BTreeMap<String, String> {
        settings(&self.settings)
    }
    fn set_keywords(
        &mut self,
        settings: &BTreeMap<String, String>,
        errors: &mut Vec<super::problem::FieldError>,
    ) {
        set_keywords(&mut self.settings, settings, errors);
    }
    fn keyword_list() -> Vec<&'static str> {
        crate::config::model::VrrpSettings::KEYWORDS.to_vec()
    }
}

/// A block of the configuration's top level that the API lists and edits by name:
/// where it is in a snapshot, in the store, in a configuration, and its path.
trait TopBlock: ApiBlock + crate::storage::Block + Send + Sync + 'static {
    /// Its collection under `/api/v1`.
    const PATH: &'static str;
    fn stored(snapshot: &crate::storage::Snapshot) -> &[crate::storage::Stored<Self>];
    fn blocks(store: &crate::storage::Store) -> crate::storage::Blocks<'_, Self>;
    fn list_mut(c: &mut crate::config::Config) -> &mut Vec<Self>;
    fn scope(index: usize) -> crate::config::Scope;
    /// `from`'s keywords into `to` (the stored block, name and comments kept).
    fn take_keywords(to: &mut Self, from: &Self);
    fn block_name(&self) -> &str;
}

impl TopBlock for crate::config::FloatingAddress {
    const PATH: &'static str = "floating-addresses";
    fn stored(snapshot: &crate::storage::Snapshot) -> &[crate::storage::Stored<Self>] {
        &snapshot.floating
    }
    fn blocks(store: &crate::storage::Store) -> crate::storage::Blocks<'_, Self> {
        store.floating_addresses()
    }
    fn list_mut(c: &mut crate::config::Config) -> &mut Vec<Self> {
        &mut c.floating
    }
    fn scope(index: usize) -> crate::config::Scope {
        crate::config::Scope::Floating(index)
    }
    fn take_keywords(to: &mut Self, from: &Self) {
        to.settings = from.settings.clone();
    }
    fn block_name(&self) -> &str {
        &self.name
    }
}

impl TopBlock for crate::config::LocalCheck {
    const PATH: &'static str = "local-checks";
    fn stored(snapshot: &crate::storage::Snapshot) -> &[crate::storage::Stored<Self>] {
        &snapshot.local_checks
    }
    fn blocks(store: &crate::storage::Store) -> crate::storage::Blocks<'_, Self> {
        store.local_checks()
    }
    fn list_mut(c: &mut crate::config::Config) -> &mut Vec<Self> {
        &mut c.local_checks
    }
    fn scope(index: usize) -> crate::config::Scope {
        crate::config::Scope::LocalCheck(index)
    }
    fn take_keywords(to: &mut Self, from: &Self) {
        to.settings = from.settings.clone();
        to.check = from.check.clone();
    }
    fn block_name(&self) -> &str {
        &self.name
    }
}

impl TopBlock for crate::config::VrrpInstance {
    const PATH: &'static str = "vrrp-instances";
    fn stored(snapshot: &crate::storage::Snapshot) -> &[crate::storage::Stored<Self>] {
        &snapshot.vrrp
    }
    fn blocks(store: &crate::storage::Store) -> crate::storage::Blocks<'_, Self> {
        store.vrrp_instances()
    }
    fn list_mut(c: &mut crate::config::Config) -> &mut Vec<Self> {
        &mut c.vrrp
    }
    fn scope(index: usize) -> crate::config::Scope {
        crate::config::Scope::Vrrp(index)
    }
    fn take_keywords(to: &mut Self, from: &Self) {
        to.settings = from.settings.clone();
    }
    fn block_name(&self) -> &str {
        &self.name
    }
}

/// A named block with its keywords: a floating address, a local check, a VRRP
/// instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedBlock {
    pub name: String,
    /// The keywords that are set, with their `lvs.cf` values.
    pub settings: BTreeMap<String, String>,
    /// Its version; also its `ETag`.
    pub version: i64,
}

impl NamedBlock {
    fn of<B: TopBlock>(b: &crate::storage::Stored<B>) -> NamedBlock {
        NamedBlock {
            name: b.item.block_name().to_string(),
            settings: b.item.keywords(),
            version: b.version,
        }
    }
}

fn find_top<'a, B: TopBlock>(
    snapshot: &'a crate::storage::Snapshot,
    name: &str,
) -> Result<(usize, &'a crate::storage::Stored<B>), Problem> {
    B::stored(snapshot)
        .iter()
        .enumerate()
        .find(|(_, b)| b.item.block_name() == name)
        .ok_or_else(|| Problem::not_found(format!("{} named {name} not found", &B::WHAT[2..])))
}

fn place_top<B: TopBlock>(
    index: Option<usize>,
) -> impl FnOnce(&mut crate::config::Config, &B) -> crate::config::Scope {
    move |c, b| {
        let list = B::list_mut(c);
        let i = match index {
            Some(i) => {
                list[i] = b.clone();
                i
            }
            None => {
                list.push(b.clone());
                list.len() - 1
            }
        };
        B::scope(i)
    }
}

async fn list_top<B: TopBlock>(state: &AppState) -> Result<Json<Vec<NamedBlock>>, Problem> {
    let snapshot = state.store.snapshot().await?;
    Ok(Json(
        B::stored(&snapshot).iter().map(NamedBlock::of).collect(),
    ))
}

async fn get_top<B: TopBlock>(state: &AppState, name: &str) -> Result<Response, Problem> {
    let snapshot = state.store.snapshot().await?;
    let (_, b) = find_top::<B>(&snapshot, name)?;
    Ok(with_etag(b.version, Json(NamedBlock::of(b))))
}

async fn create_top<B: TopBlock + Default>(
    state: &AppState,
    caller: &Caller,
    bytes: &[u8],
) -> Result<Response, Problem> {
    caller.admin()?;
    let new: NewRealServer = body(bytes)?;
    let snapshot = state.store.snapshot().await?;
    if B::stored(&snapshot)
        .iter()
        .any(|b| b.item.block_name() == new.name.trim())
    {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("{} named {} already exists", &B::WHAT[2..], new.name.trim()),
        ));
    }
    let before = snapshot.config();
    let b = edited(
        state,
        &before,
        place_top::<B>(None),
        &B::default(),
        &new.name,
        &new.settings,
    )?;
    let created = B::blocks(&state.store).create(&b, &caller.actor()).await?;
    let mut r = with_etag(
        created.version,
        (StatusCode::CREATED, Json(NamedBlock::of(&created))),
    );
    if let Ok(l) = HeaderValue::from_str(&format!("{}/{}/{}", super::BASE, B::PATH, b.block_name()))
    {
        r.headers_mut().insert(header::LOCATION, l);
    }
    Ok(r)
}

async fn replace_top<B: TopBlock>(
    state: &AppState,
    caller: &Caller,
    name: &str,
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<Response, Problem> {
    caller.admin()?;
    let wanted: KeywordSettings = body(bytes)?;
    let snapshot = state.store.snapshot().await?;
    let (index, current) = find_top::<B>(&snapshot, name)?;
    let version = if_match(headers, current.version)?;
    let before = snapshot.config();
    let b = edited(
        state,
        &before,
        place_top::<B>(Some(index)),
        &current.item,
        name,
        &wanted.settings,
    )?;
    let edited_block = b.clone();
    let saved = B::blocks(&state.store)
        .update_with(current.id, version, &caller.actor(), move |old| {
            B::take_keywords(old, &edited_block)
        })
        .await;
    let now = match saved {
        Ok(now) => now,
        Err(crate::storage::StorageError::Conflict { found, .. }) => return Err(stale(found)),
        Err(e) => return Err(e.into()),
    };
    Ok(with_etag(
        now,
        Json(NamedBlock {
            name: name.to_string(),
            settings: b.keywords(),
            version: now,
        }),
    ))
}

async fn delete_top<B: TopBlock>(
    state: &AppState,
    caller: &Caller,
    name: &str,
    headers: &axum::http::HeaderMap,
) -> Result<Response, Problem> {
    caller.admin()?;
    let snapshot = state.store.snapshot().await?;
    let (_, current) = find_top::<B>(&snapshot, name)?;
    let version = if_match(headers, current.version)?;
    match B::blocks(&state.store)
        .delete(current.id, version, &caller.actor())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(crate::storage::StorageError::Conflict { found, .. }) => Err(stale(found)),
        Err(e) => Err(e.into()),
    }
}

/// The five operations of a top-level block kind (list, create, get, replace, delete),
/// each a handler with its own documentation, over the generic code above.
macro_rules! top_block_handlers {
    ($what:literal, $tag:literal, $path:literal, $ty:ty,
     $list:ident, $create:ident, $get:ident, $replace:ident, $delete:ident) => {
        #[doc = concat!("Every ", $what, ", in `lvs.cf` order.")]
        #[utoipa::path(
            get,
            path = concat!("/", $path),
            tag = $tag,
            responses(
                (status = 200, description = "The list", body = [NamedBlock]),
                Refusals,
                Locked,
            )
        )]
        async fn $list(
            State(state): State<AppState>,
            Extension(_caller): Extension<Caller>,
        ) -> Result<Json<Vec<NamedBlock>>, Problem> {
            list_top::<$ty>(&state).await
        }

        #[doc = concat!("Creates a ", $what, " (at the end of the list).")]
        #[utoipa::path(
            post,
            path = concat!("/", $path),
            tag = $tag,
            request_body = NewRealServer,
            responses(
                (status = 201, description = "Created", body = NamedBlock,
                    headers(("ETag" = String, description = "Its version"), ("Location" = String, description = "Where it is"))),
                (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Values the configuration refuses, by field", body = Problem, content_type = "application/problem+json"),
                Refusals,
                ViewerRefused,
                Locked,
            )
        )]
        async fn $create(
            State(state): State<AppState>,
            Extension(caller): Extension<Caller>,
            bytes: axum::body::Bytes,
        ) -> Result<Response, Problem> {
            create_top::<$ty>(&state, &caller, &bytes).await
        }

        #[doc = concat!("One ", $what, ", with its version as `ETag`.")]
        #[utoipa::path(
            get,
            path = concat!("/", $path, "/{name}"),
            tag = $tag,
            params(("name" = String, Path, description = "Its name")),
            responses(
                (status = 200, description = "Found", body = NamedBlock,
                    headers(("ETag" = String, description = "Its version, for `If-Match`"))),
                (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
                Refusals,
                Locked,
            )
        )]
        async fn $get(
            State(state): State<AppState>,
            Extension(_caller): Extension<Caller>,
            Path(name): Path<String>,
        ) -> Result<Response, Problem> {
            get_top::<$ty>(&state, &name).await
        }

        #[doc = concat!("Replaces a ", $what, "'s keywords, if it is still at the version `If-Match` names.")]
        #[utoipa::path(
            put,
            path = concat!("/", $path, "/{name}"),
            tag = $tag,
            params(
                ("name" = String, Path, description = "Its name"),
                ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
            ),
            request_body = KeywordSettings,
            responses(
                (status = 200, description = "Saved (or already so)", body = NamedBlock,
                    headers(("ETag" = String, description = "Its version now"))),
                (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
                Refusals,
                ViewerRefused,
                EditRefusals,
                Locked,
            )
        )]
        async fn $replace(
            State(state): State<AppState>,
            Extension(caller): Extension<Caller>,
            Path(name): Path<String>,
            headers: axum::http::HeaderMap,
            bytes: axum::body::Bytes,
        ) -> Result<Response, Problem> {
            replace_top::<$ty>(&state, &caller, &name, &headers, &bytes).await
        }

        #[doc = concat!("Deletes a ", $what, ", if it is still at the version `If-Match` names.")]
        #[utoipa::path(
            delete,
            path = concat!("/", $path, "/{name}"),
            tag = $tag,
            params(
                ("name" = String, Path, description = "Its name"),
                ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
            ),
            responses(
                (status = 204, description = "Deleted"),
                (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
                (status = 412, description = "Changed since that version; `current_etag` says which it is now", body = Problem, content_type = "application/problem+json"),
                (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
                Refusals,
                ViewerRefused,
                Locked,
            )
        )]
        async fn $delete(
            State(state): State<AppState>,
            Extension(caller): Extension<Caller>,
            Path(name): Path<String>,
            headers: axum::http::HeaderMap,
        ) -> Result<Response, Problem> {
            delete_top::<$ty>(&state, &caller, &name, &headers).await
        }
    };
}

top_block_handlers!(
    "floating address",
    "floating addresses",
    "floating-addresses",
    crate::config::FloatingAddress,
    list_floating_addresses,
    create_floating_address,
    get_floating_address,
    replace_floating_address,
    delete_floating_address
);

top_block_handlers!(
    "local check",
    "local checks",
    "local-checks",
    crate::config::LocalCheck,
    list_local_checks,
    create_local_check,
    get_local_check,
    replace_local_check,
    delete_local_check
);

top_block_handlers!(
    "VRRP instance",
    "VRRP instances",
    "vrrp-instances",
    crate::config::VrrpInstance,
    list_vrrp_instances,
    create_vrrp_instance,
    get_vrrp_instance,
    replace_vrrp_instance,
    delete_vrrp_instance
);
