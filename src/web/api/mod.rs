//! The automation API, `/api/v1`: JSON in and out, `Authorization: Bearer` tokens
//! (`lvs-director token`), no cookies (so no CSRF surface), errors as problem details,
//! and an OpenAPI 3.1 document at `/api/v1/openapi.json` built by utoipa from the same
//! handlers the router serves, so that it cannot drift from them.
//!
//! Served by `lvs-director web` on the admin UI's listener, beside the pages.

mod accounts;
mod cluster;
pub mod problem;
mod resources;
mod revisions;
mod settings;

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::Modify;
use utoipa_axum::router::OpenApiRouter;

use super::AppState;
use crate::storage::Role;
use problem::Problem;

/// Where the API lives.
pub const BASE: &str = "/api/v1";

/// Who is calling: the token's name and role, put in the request by [`bearer`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: String,
    pub role: Role,
}

impl Caller {
    /// Who the audit log says made a change: the token, by name.
    pub fn actor(&self) -> crate::storage::Actor {
        crate::storage::Actor::new(format!("token:{}", self.token), None)
    }

    /// 403 unless the token may change things.
    pub fn admin(&self) -> Result<(), Problem> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Viewer => Err(Problem::forbidden(format!(
                "token {} is a viewer token: it may read, not change",
                self.token
            ))),
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "lvs-director automation API",
        description = "Everything the admin UI does, for programs. Authenticate with `Authorization: Bearer TOKEN` (`lvs-director token create`). Errors are RFC 9457 problem details."
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    components(schemas(problem::Problem, problem::FieldError))
)]
struct Doc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes and its document, from the same handlers.
pub fn parts() -> (Router<AppState>, OpenApi) {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(Doc::openapi())
        .nest(
            BASE,
            resources::routes()
                .merge(settings::routes())
                .merge(revisions::routes())
                .merge(accounts::routes())
                .merge(cluster::routes()),
        )
        .split_for_parts()
}

/// The API, ready to merge into the admin UI's router: every route behind
/// [`bearer`], and the document at `/api/v1/openapi.json` for anyone.
pub fn router(state: AppState) -> Router<AppState> {
    let (api, doc) = parts();
    let doc = std::sync::Arc::new(doc);
    Router::new()
        .merge(api.layer(axum::middleware::from_fn_with_state(state, bearer)))
        .route(
            &format!("{BASE}/openapi.json"),
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        // Not a fallback: the admin UI's router has its own.
        .route(
            &format!("{BASE}/{{*rest}}"),
            axum::routing::any(|| async { Problem::not_found("no such API operation") }),
        )
}

/// Lets a request through with a valid, unexpired token: 401 without one or with a
/// wrong one. Wrong tokens count against their source as wrong passwords do on the
/// login page (keyed by the token's prefix), and past that limit are answered 429. A
/// valid token is never slowed: its secret has 256 bits, so the limit is there against
/// floods, not guessing, and parallel clients on one host must all get through.
pub async fn bearer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_string())
    else {
        return Problem::unauthorized(
            "this operation needs a token: `Authorization: Bearer TOKEN` (see `lvs-director token create`)",
        )
        .into_response();
    };
    let now = state.store.now();
    match state.store.tokens().verify(&given, now).await {
        Ok(Some(t)) => {
            req.extensions_mut().insert(Caller {
                token: t.name,
                role: t.role,
            });
            next.run(req).await
        }
        Ok(None) => {
            let ip = super::auth::client_ip(req.extensions())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let key = format!(
                "api token {}",
                given
                    .get(5..13)
                    .filter(|_| given.starts_with("lvsd_"))
                    .unwrap_or("malformed")
            );
            if let Err(wait) = state.auth.admit(ip, &key).await {
                let secs = u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX);
                let mut p = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many wrong tokens from here: try again in {secs} s"),
                );
                p.retry_after = Some(secs);
                return p.into_response();
            }
            state.auth.outcome(ip, &key, false);
            tracing::info!(%ip, "API: a wrong, revoked or expired token");
            Problem::unauthorized("the token is wrong, revoked or expired").into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}
