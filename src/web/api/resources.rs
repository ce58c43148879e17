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

use super::problem::Problem;
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
}

/// The keywords of a block that are set, with their `lvs.cf` values.
fn settings<K: Keywords>(block: &K) -> BTreeMap<String, String> {
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
pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

fn with_etag(version: i64, body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
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
        (status = 401, description = "No token, or a wrong one", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The supervisor does not answer", body = Problem, content_type = "application/problem+json"),
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
        (status = 401, description = "No token, or a wrong one", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is locked by another process", body = Problem, content_type = "application/problem+json"),
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
        (status = 401, description = "No token, or a wrong one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is locked by another process", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_virtual_server(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let snapshot = state.store.snapshot().await?;
    let v = snapshot
        .virtuals
        .iter()
        .find(|v| v.virtual_server.item.name == name)
        .ok_or_else(|| Problem::not_found(format!("virtual server {name} not found")))?;
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
pub struct VirtualServerSettings {
    /// Every keyword it is to have, with its `lvs.cf` value; those left out are unset
    /// (their defaults apply). A `GET`'s `settings` sent back unchanged changes nothing.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// A JSON body, or a 400 problem saying what is wrong with it (axum's own rejection
/// would be plain text).
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON expected: {e}"),
        )
    })
}

/// The version an `If-Match` names: 428 without one, 412 when it is not one of ours.
fn if_match(headers: &axum::http::HeaderMap, current: i64) -> Result<i64, Problem> {
    let Some(given) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Err(Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "a change needs `If-Match` with the ETag of the version it was made from",
        ));
    };
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
fn stale(current: i64) -> Problem {
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
fn set_keywords<K: Keywords>(
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

/// `base` with `name` and `settings`, checked as the admin UI checks a saved form
/// (each value, then the whole configuration with the edit in place): 422 with the
/// fields at fault.
fn edited(
    state: &AppState,
    before: &crate::config::Config,
    index: Option<usize>,
    base: &crate::config::VirtualServer,
    name: &str,
    settings: &BTreeMap<String, String>,
) -> Result<crate::config::VirtualServer, Problem> {
    use crate::config::model::{CheckSettings, VirtualSettings};
    let mut v = base.clone();
    v.name = name.trim().to_string();
    let mut errors = Vec::new();
    if let Some(why) = crate::config::model::name_problem(&v.name) {
        errors.push(super::problem::FieldError {
            field: "name".into(),
            message: why.into(),
        });
    }
    for k in settings.keys() {
        if !VirtualSettings::KEYWORDS.contains(&k.as_str())
            && !CheckSettings::KEYWORDS.contains(&k.as_str())
        {
            errors.push(super::problem::FieldError {
                field: k.clone(),
                message: format!("`{k}` is not a keyword of a virtual server"),
            });
        }
    }
    set_keywords(&mut v.settings, settings, &mut errors);
    set_keywords(&mut v.check, settings, &mut errors);
    let mut general = Vec::new();
    if errors.is_empty() {
        let mut after = before.clone();
        let index = match index {
            Some(i) => {
                after.virtuals[i] = v.clone();
                i
            }
            None => {
                after.virtuals.push(v.clone());
                after.virtuals.len() - 1
            }
        };
        let keywords: Vec<&[crate::web::form::FieldSpec]> = Vec::new();
        let mut fields = std::collections::HashMap::new();
        crate::web::virtuals::check_edit(
            &state.settings.scripts_dir,
            before,
            &after,
            crate::config::Scope::Virtual(index),
            &keywords,
            &mut fields,
            &mut general,
        );
        errors.extend(
            fields
                .into_iter()
                .map(|(field, message)| super::problem::FieldError { field, message }),
        );
    }
    if errors.is_empty() && general.is_empty() {
        return Ok(v);
    }
    let detail = if general.is_empty() {
        "nothing was saved: correct the fields listed".to_string()
    } else {
        format!("nothing was saved: {}", general.join("; "))
    };
    let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    p.errors = errors;
    Err(p)
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
        (status = 401, description = "No token, or a wrong one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Values the configuration refuses, by field", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is locked by another process", body = Problem, content_type = "application/problem+json"),
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
    let v = edited(&state, &before, None, &base, &new.name, &new.settings)?;
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
    request_body = VirtualServerSettings,
    responses(
        (status = 200, description = "Saved (or already so)", body = VirtualServer,
            headers(("ETag" = String, description = "Its version now"))),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or a wrong one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since that version; `current_etag` says which it is now", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Values the configuration refuses, by field", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is locked by another process", body = Problem, content_type = "application/problem+json"),
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
    let snapshot = state.store.snapshot().await?;
    let (index, current) = snapshot
        .virtuals
        .iter()
        .enumerate()
        .find(|(_, v)| v.virtual_server.item.name == name)
        .ok_or_else(|| Problem::not_found(format!("virtual server {name} not found")))?;
    let version = if_match(&headers, current.virtual_server.version)?;
    let wanted: VirtualServerSettings = body(&bytes)?;
    let before = snapshot.config();
    let v = edited(
        &state,
        &before,
        Some(index),
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
        (status = 401, description = "No token, or a wrong one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such virtual server", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since that version; `current_etag` says which it is now", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is locked by another process", body = Problem, content_type = "application/problem+json"),
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
    let current = snapshot
        .virtuals
        .iter()
        .find(|v| v.virtual_server.item.name == name)
        .ok_or_else(|| Problem::not_found(format!("virtual server {name} not found")))?;
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
