//! Users of the admin UI, API tokens and the audit log: administrators only, reading
//! included (a viewer has no business listing who may log in, or what they did).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{FieldError, Locked, Problem, Refusals, ViewerRefused};
use super::resources::{body, if_match_given, tagged, NEEDS_IF_MATCH};
use super::revisions::Window;
use super::Caller;
use crate::storage::{Role, StorageError, TokenInfo, User};
use crate::web::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(get_token, revoke_token))
        .routes(routes!(audit))
}

/// A role, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Viewer,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleName::Admin,
            Role::Viewer => RoleName::Viewer,
        }
    }
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Admin => Role::Admin,
            RoleName::Viewer => Role::Viewer,
        }
    }
}

/// A user's version: it changes with each change of its role or password (to the
/// second) and when the user is deleted and made again.
fn user_etag(u: &User) -> String {
    format!("\"u{}-{}-{}\"", u.id, u.updated_at, u.role)
}

fn token_etag(t: &TokenInfo) -> String {
    format!("\"t{}\"", t.id)
}

/// `If-Match` must be `current`: 428 without one, 412 with another.
fn matches(headers: &axum::http::HeaderMap, current: &str) -> Result<(), Problem> {
    if if_match_given(headers, NEEDS_IF_MATCH)? == current {
        return Ok(());
    }
    let mut p = Problem::new(
        StatusCode::PRECONDITION_FAILED,
        format!("it was changed since the version you hold: it is now {current}; read it again"),
    );
    p.current_etag = Some(current.into());
    Err(p)
}

/// A refusal of the user store as a problem: bad input by field (422), the last
/// administrator (409), the rest as everywhere.
fn user_problem(e: StorageError) -> Problem {
    let field = match &e {
        StorageError::WeakPassword { .. } => "password",
        StorageError::InvalidUser { .. } => "name",
        StorageError::LastAdmin { .. } | StorageError::Duplicate { .. } => {
            return Problem::new(StatusCode::CONFLICT, e.to_string())
        }
        _ => return e.into(),
    };
    let mut p = Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing was saved: correct the fields listed",
    );
    p.errors = vec![FieldError {
        field: field.into(),
        message: e.to_string(),
    }];
    p
}

/// A user of the admin UI.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDoc {
    pub name: String,
    pub role: RoleName,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: its last change of role or password.
    pub updated_at: i64,
}

impl From<&User> for UserDoc {
    fn from(u: &User) -> Self {
        UserDoc {
            name: u.name.clone(),
            role: u.role.into(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// What a client sends to make a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub role: RoleName,
    /// At least 8 characters.
    pub password: String,
}

/// What a client sends to change a user: either or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub role: Option<RoleName>,
    /// A new password (at least 8 characters); the user's sessions end.
    pub password: Option<String>,
}

async fn find_user(state: &AppState, name: &str) -> Result<User, Problem> {
    state
        .store
        .users()
        .get(name)
        .await?
        .ok_or_else(|| Problem::not_found(format!("user {name} not found")))
}

/// Every user (administrators only).
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    responses(
        (status = 200, description = "The users", body = [UserDoc]),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn list_users(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<UserDoc>>, Problem> {
    caller.admin()?;
    let users = state.store.users().list().await?;
    Ok(Json(users.iter().map(UserDoc::from).collect()))
}

/// Makes a user who can log in to the admin UI.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Made", body = UserDoc,
            headers(("ETag" = String, description = "Its version"), ("Location" = String, description = "Where it is"))),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A name or password refused, by field", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let new: NewUser = body(&bytes)?;
    let user = state
        .store
        .users()
        .create(
            new.name.trim(),
            &new.password,
            new.role.into(),
            &caller.actor(),
        )
        .await
        .map_err(user_problem)?;
    let mut r = tagged(
        &user_etag(&user),
        (StatusCode::CREATED, Json(UserDoc::from(&user))),
    );
    if let Ok(l) = HeaderValue::from_str(&format!("{}/users/{}", super::BASE, user.name)) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    Ok(r)
}

/// One user, with its version as `ETag`.
#[utoipa::path(
    get,
    path = "/users/{name}",
    tag = "users",
    params(("name" = String, Path, description = "The user's name")),
    responses(
        (status = 200, description = "The user", body = UserDoc,
            headers(("ETag" = String, description = "Its version, for `If-Match`"))),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn get_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    caller.admin()?;
    let u = find_user(&state, &name).await?;
    Ok(tagged(&user_etag(&u), Json(UserDoc::from(&u))))
}

/// Changes a user's role or password, if it is still at the version `If-Match` names.
/// The last administrator cannot be made a viewer.
#[utoipa::path(
    patch,
    path = "/users/{name}",
    tag = "users",
    params(
        ("name" = String, Path, description = "The user's name"),
        ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
    ),
    request_body = UserChange,
    responses(
        (status = 200, description = "Changed (or already so)", body = UserDoc,
            headers(("ETag" = String, description = "Its version now"))),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is the last administrator", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since that version; `current_etag` says which it is now", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A password refused", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn update_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let change: UserChange = body(&bytes)?;
    let mut u = find_user(&state, &name).await?;
    matches(&headers, &user_etag(&u))?;
    if let Some(password) = &change.password {
        u = state
            .store
            .users()
            .set_password(&name, password, u.role, &caller.actor())
            .await
            .map_err(user_problem)?
            .user;
    }
    if let Some(role) = change.role.map(Role::from).filter(|r| *r != u.role) {
        u = state
            .store
            .users()
            .set_role(&name, role, &caller.actor())
            .await
            .map_err(user_problem)?;
    }
    Ok(tagged(&user_etag(&u), Json(UserDoc::from(&u))))
}

/// Deletes a user and ends its sessions, if it is still at the version `If-Match`
/// names. The last administrator cannot be deleted.
#[utoipa::path(
    delete,
    path = "/users/{name}",
    tag = "users",
    params(
        ("name" = String, Path, description = "The user's name"),
        ("If-Match" = String, Header, description = "The ETag of the version the change was made from"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is the last administrator", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since that version; `current_etag` says which it is now", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn delete_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    caller.admin()?;
    let u = find_user(&state, &name).await?;
    matches(&headers, &user_etag(&u))?;
    state
        .store
        .users()
        .delete(&name, &caller.actor())
        .await
        .map_err(user_problem)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An API token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDoc {
    pub name: String,
    pub role: RoleName,
    /// The token's first characters after `lvsd_`, not secret: which token a log means.
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    pub created_by: String,
    /// Unix seconds; none: it does not expire.
    pub expires_at: Option<i64>,
    /// Unix seconds, to the minute; none: never used.
    pub last_used_at: Option<i64>,
}

impl From<&TokenInfo> for TokenDoc {
    fn from(t: &TokenInfo) -> Self {
        TokenDoc {
            name: t.name.clone(),
            role: t.role.into(),
            prefix: t.prefix.clone(),
            created_at: t.created_at,
            created_by: t.created_by.clone(),
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// What a client sends to make a token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    pub name: String,
    pub role: RoleName,
    /// Days it is valid (1 to 3650); none: until revoked.
    #[serde(default, deserialize_with = "whole_days")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_days: Option<u32>,
}

/// A token just made: the only answer that holds its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewTokenDoc {
    /// The whole token, for `Authorization: Bearer`. It is stored hashed: keep it now.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenDoc,
}

/// Every API token (administrators only), without secrets.
#[utoipa::path(
    get,
    path = "/tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "The tokens", body = [TokenDoc]),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<TokenDoc>>, Problem> {
    caller.admin()?;
    let tokens = state.store.tokens().list().await?;
    Ok(Json(tokens.iter().map(TokenDoc::from).collect()))
}

/// Makes an API token; the answer holds its secret, once.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "tokens",
    request_body = NewTokenRequest,
    responses(
        (status = 201, description = "Made", body = NewTokenDoc,
            headers(("ETag" = String, description = "Its version"), ("Location" = String, description = "Where it is"))),
        (status = 400, description = "The body is not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A name or lifetime refused, by field", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.admin()?;
    let new: NewTokenRequest = body(&bytes)?;
    let made = state
        .store
        .tokens()
        .create(
            new.name.trim(),
            new.role.into(),
            new.expires_days,
            &caller.actor(),
        )
        .await
        .map_err(|e| match e {
            StorageError::Duplicate { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
            StorageError::Invalid { ref what, .. } => {
                let field = if what.starts_with("token name") {
                    "name"
                } else {
                    "expires_days"
                };
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "nothing was saved: correct the fields listed",
                );
                p.errors = vec![FieldError {
                    field: field.into(),
                    message: e.to_string(),
                }];
                p
            }
            other => other.into(),
        })?;
    let mut r = tagged(
        &token_etag(&made.info),
        (
            StatusCode::CREATED,
            Json(NewTokenDoc {
                token: made.token.clone(),
                info: TokenDoc::from(&made.info),
            }),
        ),
    );
    if let Ok(l) = HeaderValue::from_str(&format!("{}/tokens/{}", super::BASE, made.info.name)) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    Ok(r)
}

async fn find_token(state: &AppState, name: &str) -> Result<TokenInfo, Problem> {
    state
        .store
        .tokens()
        .list()
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| Problem::not_found(format!("token {name} not found")))
}

/// One API token, without its secret.
#[utoipa::path(
    get,
    path = "/tokens/{name}",
    tag = "tokens",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 200, description = "The token", body = TokenDoc,
            headers(("ETag" = String, description = "Its version, for `If-Match`"))),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn get_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    caller.admin()?;
    let t = find_token(&state, &name).await?;
    Ok(tagged(&token_etag(&t), Json(TokenDoc::from(&t))))
}

/// Revokes an API token at once, if it is still the one `If-Match` names (a token
/// revoked and made again under its name is another).
#[utoipa::path(
    delete,
    path = "/tokens/{name}",
    tag = "tokens",
    params(
        ("name" = String, Path, description = "The token's name"),
        ("If-Match" = String, Header, description = "The ETag of the token read"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Another token has that name now; `current_etag` says which", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    caller.admin()?;
    let t = find_token(&state, &name).await?;
    matches(&headers, &token_etag(&t))?;
    state.store.tokens().revoke(&name, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A whole number of days, however JSON writes it: `30` and `30.0` are the same
/// integer to JSON Schema, so both are taken; `30.5` is not a whole number.
fn whole_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(n) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "expires_days must be a whole number of days, not {n}"
        )));
    }
    Ok(Some(n as u32))
}

/// One entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditDoc {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// A user, `token:NAME`, or the name tried for a failed login.
    pub actor: String,
    /// The client's address, when known.
    pub source: Option<String>,
    pub action: String,
    pub object: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The audit log, newest first: every change, login and token use that changed
/// something, by whom.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "users",
    params(Window),
    responses(
        (status = 200, description = "The entries", body = [AuditDoc]),
        (status = 400, description = "`limit` or `offset` is not a number in range", body = Problem, content_type = "application/problem+json"),
        Refusals,
        ViewerRefused,
        Locked,
    )
)]
async fn audit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    window: Result<axum::extract::Query<Window>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditDoc>>, Problem> {
    caller.admin()?;
    let (limit, offset) = Window::bounds(window)?;
    let entries = state.store.audit().list(limit, offset).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditDoc {
                id: e.id,
                at: e.at,
                actor: e.actor,
                source: e.source,
                action: e.action,
                object: e.object,
                before: e.before,
                after: e.after,
            })
            .collect(),
    ))
}
