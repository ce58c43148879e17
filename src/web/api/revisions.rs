//! The stored configuration as a whole, and the revisions Apply recorded: list, read,
//! diff two, roll back to one.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{Locked, Problem, Refusals, ViewerRefused};
use super::resources::{if_match_given, tagged, DiffLine};
use super::Caller;
use crate::storage::{config_digest, RevisionInfo};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(configuration))
        .routes(routes!(import_in_force))
        .routes(routes!(list_revisions))
        .routes(routes!(get_revision))
        .routes(routes!(diff_revisions))
        .routes(routes!(roll_back))
}

/// Revisions a list gives at most.
const MOST: u32 = 500;

fn quoted(digest: &str) -> String {
    format!("\"{digest}\"")
}

fn bad_path(e: PathRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        format!("in the path: {}", e.body_text()),
    )
}

/// The stored configuration (what the next Apply writes) as `lvs.cf` text.
#[derive(Debug, Serialize, ToSchema)]
pub struct Configuration {
    /// Its rendering, without the serial an Apply stamps on it.
    pub text: String,
    /// Its version as a whole; also its `ETag`, for a rollback's `If-Match`.
    pub digest: String,
}

/// The stored configuration as a whole, with its digest as `ETag`.
#[utoipa::path(
    get,
    path = "/configuration",
    tag = "revisions",
    responses(
        (status = 200, description = "The stored configuration", body = Configuration,
            headers(("ETag" = String, description = "Its digest, for a rollback's `If-Match`"))),
        Refusals,
        Locked,
    )
)]
async fn configuration(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Response, Problem> {
    let config = state.store.load_config().await?;
    let digest = config_digest(&config);
    Ok(tagged(
        &quoted(&digest),
        Json(Configuration {
            text: crate::config::render(&config),
            digest,
        }),
    ))
}

/// Replaces the stored configuration with the `lvs.cf` in force (after a hand edit,
/// or on a director set up before lvs-director), if the stored one is still the one
/// `If-Match` names. Nothing is applied: the file is already in force.
#[utoipa::path(
    post,
    path = "/configuration/import",
    tag = "revisions",
    params(("If-Match" = String, Header, description = "The stored configuration's digest (`GET /configuration`'s ETag)")),
    responses(
        (status = 200, description = "Imported", body = Configuration,
            headers(("ETag" = String, description = "The stored configuration's digest now"))),
        (status = 409, description = "No file in force, or one with errors (the first five said)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The stored configuration changed; `current_etag` is its digest now", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn import_in_force(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    caller.admin()?;
    let expected = digest_matched(&headers, "an import")?;
    let config = crate::web::publish::valid_in_force(&state)
        .await
        .map_err(web_problem)?
        .map_err(|why| Problem::new(StatusCode::CONFLICT, why))?;
    if let Err(current) = state
        .store
        .replace_config_if(&config, &caller.actor(), &expected)
        .await?
    {
        return Err(configuration_changed(&current));
    }
    let digest = config_digest(&config);
    Ok(tagged(
        &quoted(&digest),
        Json(Configuration {
            text: crate::config::render(&config),
            digest,
        }),
    ))
}

/// The digest an `If-Match` names: 428 without one.
fn digest_matched(headers: &axum::http::HeaderMap, what: &str) -> Result<String, Problem> {
    let needs = format!(
        "{what} needs `If-Match` with the stored configuration's digest: GET /api/v1/configuration"
    );
    Ok(if_match_given(headers, &needs)?
        .trim_matches('"')
        .to_string())
}

/// 412 with the stored configuration's digest now.
fn configuration_changed(current: &str) -> Problem {
    let mut p = Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "the stored configuration changed since the version you hold; nothing was changed: read it again",
    );
    p.current_etag = Some(quoted(current).into());
    p
}

/// An applied revision, without its text.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionSummary {
    pub id: i64,
    /// The `serial_no` written into its `lvs.cf`.
    pub serial: u32,
    /// Unix seconds.
    pub applied_at: i64,
    /// Who applied it (`token:NAME` through the API).
    pub applied_by: String,
    pub comment: String,
    /// The peer director it came from by configuration sync; empty when applied here.
    pub origin: String,
}

impl From<RevisionInfo> for RevisionSummary {
    fn from(i: RevisionInfo) -> Self {
        RevisionSummary {
            id: i.id,
            serial: i.serial_no,
            applied_at: i.applied_at,
            applied_by: i.applied_by,
            comment: i.comment,
            origin: i.origin,
        }
    }
}

/// An applied revision with the `lvs.cf` it wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionText {
    #[serde(flatten)]
    pub summary: RevisionSummary,
    pub text: String,
}

/// Which entries of a list (revisions, the audit log) it gives.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// At most this many (1 to 500; 50 by default).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// After skipping this many of the newest.
    #[param(minimum = 0, maximum = 2147483647)]
    pub offset: Option<u32>,
}

impl Window {
    /// `(limit, offset)` as asked, defaults filled in: 400 for a query that does not
    /// read or is out of the documented ranges.
    pub(super) fn bounds(
        query: Result<Query<Window>, QueryRejection>,
    ) -> Result<(u32, u32), Problem> {
        let Query(w) = query.map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("in the query: {}", e.body_text()),
            )
        })?;
        let limit = w.limit.unwrap_or(50);
        if !(1..=MOST).contains(&limit) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("limit must be from 1 to {MOST}, not {limit}"),
            ));
        }
        let offset = w.offset.unwrap_or(0);
        if i32::try_from(offset).is_err() {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("offset must be from 0 to {}, not {offset}", i32::MAX),
            ));
        }
        Ok((limit, offset))
    }
}

/// The applied revisions, newest first.
#[utoipa::path(
    get,
    path = "/revisions",
    tag = "revisions",
    params(Window),
    responses(
        (status = 200, description = "The revisions", body = [RevisionSummary]),
        (status = 400, description = "`limit` or `offset` is not a number in range", body = Problem, content_type = "application/problem+json"),
        Refusals,
        Locked,
    )
)]
async fn list_revisions(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    window: Result<Query<Window>, QueryRejection>,
) -> Result<Json<Vec<RevisionSummary>>, Problem> {
    let (limit, offset) = Window::bounds(window)?;
    let list = state.store.revisions().list(limit, offset).await?;
    Ok(Json(list.into_iter().map(RevisionSummary::from).collect()))
}

/// One applied revision, with its text.
#[utoipa::path(
    get,
    path = "/revisions/{id}",
    tag = "revisions",
    params(("id" = i64, Path, description = "The revision's id")),
    responses(
        (status = 200, description = "The revision", body = RevisionText),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such revision", body = Problem, content_type = "application/problem+json"),
        Refusals,
        Locked,
    )
)]
async fn get_revision(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<RevisionText>, Problem> {
    let Path(id) = id.map_err(bad_path)?;
    let r = state.store.revisions().get(id).await?;
    Ok(Json(RevisionText {
        summary: r.info.into(),
        text: r.text,
    }))
}

/// The diff from revision `id` to revision `other` (unified, three lines of context).
#[utoipa::path(
    get,
    path = "/revisions/{id}/diff/{other}",
    tag = "revisions",
    params(
        ("id" = i64, Path, description = "The revision diffed from"),
        ("other" = i64, Path, description = "The revision diffed to"),
    ),
    responses(
        (status = 200, description = "The diff; empty when they are the same", body = [DiffLine]),
        (status = 400, description = "An id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such revision", body = Problem, content_type = "application/problem+json"),
        Refusals,
        Locked,
    )
)]
async fn diff_revisions(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    ids: Result<Path<(i64, i64)>, PathRejection>,
) -> Result<Json<Vec<DiffLine>>, Problem> {
    let Path((id, other)) = ids.map_err(bad_path)?;
    let from = state.store.revisions().get(id).await?;
    let to = state.store.revisions().get(other).await?;
    Ok(Json(
        crate::config::publish::diff(&from.text, &to.text)
            .into_iter()
            .map(DiffLine::from)
            .collect(),
    ))
}

/// What a rollback did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolledBack {
    /// The revision now in the stored configuration.
    pub revision: RevisionSummary,
    /// The stored configuration's digest now; also the `ETag`.
    pub digest: String,
}

/// Loads revision `id` into the stored configuration, if that is still the one
/// `If-Match` names (`GET /configuration`'s `ETag`). Nothing is applied: preview and
/// Apply as after any edit.
#[utoipa::path(
    post,
    path = "/revisions/{id}/rollback",
    tag = "revisions",
    params(
        ("id" = i64, Path, description = "The revision to go back to"),
        ("If-Match" = String, Header, description = "The stored configuration's digest (`GET /configuration`'s ETag)"),
    ),
    responses(
        (status = 200, description = "Loaded; not applied yet", body = RolledBack,
            headers(("ETag" = String, description = "The stored configuration's digest now"))),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such revision", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The stored configuration changed; `current_etag` is its digest now", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn roll_back(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<i64>, PathRejection>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    caller.admin()?;
    let Path(id) = id.map_err(bad_path)?;
    let expected = digest_matched(&headers, "a rollback")?;
    let loaded = crate::web::publish::load_revision(&state, id, &caller.actor(), Some(&expected))
        .await
        .map_err(web_problem)?;
    match loaded {
        Ok(info) => {
            let digest = config_digest(&state.store.load_config().await?);
            Ok(tagged(
                &quoted(&digest),
                Json(RolledBack {
                    revision: info.into(),
                    digest,
                }),
            ))
        }
        Err(current) => Err(configuration_changed(&current)),
    }
}

/// A failure of the admin UI's shared code as a problem.
pub(super) fn web_problem(e: crate::web::WebError) -> Problem {
    match e {
        crate::web::WebError::Storage(s) => Problem::from(s),
        other => {
            let mut p = Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the operation failed; the cause is in the log",
            );
            p.failed = Some(Box::new(crate::web::security::Failed {
                cause: other.to_string(),
                storage: false,
            }));
            p
        }
    }
}
