//! The API's operations. Each handler carries its `utoipa::path`, which is what puts
//! it in the router and in the document alike (`routes!`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
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
        .routes(routes!(list_virtual_servers))
        .routes(routes!(get_virtual_server))
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
