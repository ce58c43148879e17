//! The global keywords (the admin UI's Global settings and Redundancy pages) as one
//! versioned resource.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{EditRefusals, Locked, Problem, Refusals, ViewerRefused};
use super::resources::{
    body, check_in_place, if_match, refused, set_keywords, settings, stale, unknown_keywords,
    with_etag, KeywordSettings,
};
use super::Caller;
use crate::config::model::GlobalSettings;
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, replace_settings))
}

/// The global keywords that are set, with their version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Settings {
    /// The keywords that are set, with their `lvs.cf` values (`primary`:
    /// `"192.0.2.1"`, `keepalive`: `"2"`…); unset keywords take their defaults.
    pub settings: BTreeMap<String, String>,
    /// Its version; also its `ETag`.
    pub version: i64,
}

/// The global settings (`service`, `primary`, `backup`, the heartbeat's timers…).
#[utoipa::path(
    get,
    path = "/settings",
    tag = "settings",
    responses(
        (status = 200, description = "The global settings", body = Settings,
            headers(("ETag" = String, description = "Their version, for `If-Match`"))),
        Refusals,
        Locked,
    )
)]
async fn get_settings(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Response, Problem> {
    let g = state.store.global_settings().await?;
    Ok(with_etag(
        g.version,
        Json(Settings {
            settings: settings(&g.settings),
            version: g.version,
        }),
    ))
}

/// Replaces the global keywords (those left out are unset), if they are still at the
/// version `If-Match` names, checked as the admin UI checks its forms.
#[utoipa::path(
    put,
    path = "/settings",
    tag = "settings",
    params(("If-Match" = String, Header, description = "The ETag of the version the change was made from")),
    request_body = KeywordSettings,
    responses(
        (status = 200, description = "Saved (or already so)", body = Settings,
            headers(("ETag" = String, description = "Their version now"))),
        Refusals,
        ViewerRefused,
        EditRefusals,
        Locked,
    )
)]
async fn replace_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let wanted: KeywordSettings = body(&bytes)?;
    let stored = state.store.global_settings().await?;
    let version = if_match(&headers, stored.version)?;
    let mut errors = unknown_keywords(
        &wanted.settings,
        GlobalSettings::KEYWORDS,
        "the global settings",
    );
    let mut global = stored.settings.clone();
    set_keywords(&mut global, &wanted.settings, &mut errors);
    let mut general = Vec::new();
    if errors.is_empty() {
        let before = state.store.snapshot().await?.config();
        let mut after = before.clone();
        after.global = global.clone();
        check_in_place(
            &state,
            &before,
            &after,
            crate::config::Scope::Global,
            GlobalSettings::KEYWORDS,
            &mut errors,
            &mut general,
        );
    }
    if let Some(p) = refused(errors, general) {
        return Err(p);
    }
    let now = match state
        .store
        .update_global_settings(version, &global, &stored.comments, &caller.actor())
        .await
    {
        Ok(now) => now,
        Err(crate::storage::StorageError::Conflict { found, .. }) => return Err(stale(found)),
        Err(e) => return Err(e.into()),
    };
    Ok(with_etag(
        now,
        Json(Settings {
            settings: settings(&global),
            version: now,
        }),
    ))
}
