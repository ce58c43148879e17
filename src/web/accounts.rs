//! Users (administrators add and remove accounts, set roles; a viewer role reads
//! only), the user's own password, and the audit log.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::auth::{check_password, with_flash, AdminPost, Auth, PasswordCheck, UserPost};
use super::control::{paginate, when};
use super::publish::{diff, DiffLine, PageQuery};
use super::{flash_outcome, html, see_other, AppState, Chrome, WebError};
use crate::storage::{Role, StorageError, UnknownRole};

/// Audit entries per page.
const AUDIT_PAGE: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(users).post(add_user))
        .route("/users/{name}/delete", post(delete_user))
        .route("/users/{name}/role", post(set_role))
        .route("/users/tokens", post(add_token))
        .route("/users/tokens/{name}/revoke", post(revoke_token))
        .route("/account", get(account).post(change_password))
        .route("/audit", get(audit))
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub created: String,
    pub updated: String,
    pub me: bool,
}

/// An API token as the Users page lists it (never its secret).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub created: String,
    pub created_by: String,
    pub expires: String,
    pub last_used: String,
    pub expired: bool,
}

/// A token just made: its secret, shown on this one page and never again.
#[derive(Debug, Clone)]
pub struct MadeToken {
    pub name: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    rows: Vec<UserRow>,
    new_name: String,
    new_role: String,
    error: Option<String>,
    /// Administrators only.
    tokens: Vec<TokenRow>,
    made: Option<MadeToken>,
    token_error: Option<String>,
}

/// What the Users page shows besides the users: the tokens (to administrators), a
/// token just made, an error of the token form.
#[derive(Default)]
struct TokenPart {
    made: Option<MadeToken>,
    error: Option<String>,
}

fn secs(t: i64) -> String {
    when(u64::try_from(t).unwrap_or(0) * 1000)
}

async fn show_users(
    state: &AppState,
    auth: &Auth,
    new_name: &str,
    new_role: &str,
    error: Option<String>,
) -> Result<Response, WebError> {
    show_users_with(state, auth, new_name, new_role, error, TokenPart::default()).await
}

async fn show_users_with(
    state: &AppState,
    auth: &Auth,
    new_name: &str,
    new_role: &str,
    error: Option<String>,
    part: TokenPart,
) -> Result<Response, WebError> {
    let now = state.store.now();
    let tokens = if auth.user.role == Role::Admin {
        state
            .store
            .tokens()
            .list()
            .await?
            .into_iter()
            .map(|t| TokenRow {
                expired: t.expired(now),
                name: t.name,
                role: t.role.to_string(),
                prefix: t.prefix,
                created: secs(t.created_at),
                created_by: t.created_by,
                expires: t.expires_at.map_or_else(|| "never".into(), secs),
                last_used: t.last_used_at.map_or_else(|| "never".into(), secs),
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows = state
        .store
        .users()
        .list()
        .await?
        .into_iter()
        .map(|u| UserRow {
            me: u.name == auth.user.name,
            name: u.name,
            role: u.role.to_string(),
            created: secs(u.created_at),
            updated: secs(u.updated_at),
        })
        .collect();
    let status = if error.is_some() || part.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = UsersPage {
        chrome: Chrome::new(state, auth, "users", "Users").await?,
        rows,
        new_name: new_name.to_string(),
        new_role: new_role.to_string(),
        error,
        tokens,
        made: part.made,
        token_error: part.error,
    };
    Ok((status, html(&page)).into_response())
}

pub async fn users(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    show_users(&state, &auth, "", "viewer", None).await
}

pub async fn add_user(
    State(state): State<AppState>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let f = &posted.form;
    let (name, role_text) = (f.get("name").trim(), f.get("role"));
    let again = |e: String| show_users(&state, &posted.auth, name, role_text, Some(e));
    let role: Role = match role_text.parse() {
        Ok(r) => r,
        Err(e) => return again(e.to_string()).await,
    };
    if f.get("password") != f.get("password2") {
        return again("The two passwords differ.".into()).await;
    }
    match state
        .store
        .users()
        .create(name, f.get("password"), role, &posted.auth.actor())
        .await
    {
        Err(StorageError::Duplicate { .. }) => again(format!("User {name} already exists.")).await,
        Ok(_) => Ok(with_flash(
            see_other("/users"),
            "ok",
            &format!("User {name} created with role {role}."),
            state.settings.secure_cookies,
        )),
        Err(e) if e.is_invalid_input() => again(e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let r = state
        .store
        .users()
        .delete(&name, &posted.auth.actor())
        .await
        .map(|()| format!("User {name} deleted (and logged out)."));
    flash_outcome(&state, "/users", r)
}

/// Makes an API token and shows its secret on the page answering the form, once: it
/// is never put in a redirect, a cookie or a log.
pub async fn add_token(
    State(state): State<AppState>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let f = &posted.form;
    let name = f.get("token_name").trim().to_string();
    let refuse = |e: String| TokenPart {
        made: None,
        error: Some(e),
    };
    let part = match f.get("token_role").parse::<Role>() {
        Err(e) => refuse(e.to_string()),
        Ok(role) => {
            let days = match f.get("token_days").trim() {
                "" => Ok(None),
                d => d
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| format!("Expires after: `{d}` is not a number of days.")),
            };
            match days {
                Err(e) => refuse(e),
                Ok(days) => match state
                    .store
                    .tokens()
                    .create(&name, role, days, &posted.auth.actor())
                    .await
                {
                    Ok(made) => TokenPart {
                        made: Some(MadeToken {
                            name: made.info.name.clone(),
                            secret: made.token.clone(),
                        }),
                        error: None,
                    },
                    Err(e) if e.is_invalid_input() => refuse(e.to_string()),
                    Err(e) => return Err(e.into()),
                },
            }
        }
    };
    show_users_with(&state, &posted.auth, "", "viewer", None, part).await
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let r = state
        .store
        .tokens()
        .revoke(&name, &posted.auth.actor())
        .await
        .map(|t| format!("Token {} revoked: it no longer works.", t.name));
    flash_outcome(&state, "/users", r)
}

pub async fn set_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: AdminPost,
) -> Result<Response, WebError> {
    let role: Role = posted
        .form
        .get("role")
        .parse()
        .map_err(|e: UnknownRole| WebError::BadRequest(e.to_string()))?;
    let r = state
        .store
        .users()
        .set_role(&name, role, &posted.auth.actor())
        .await
        .map(|u| format!("User {} now has the role {}.", u.name, u.role));
    flash_outcome(&state, "/users", r)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    error: Option<String>,
}

pub async fn account(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    Ok(html(&AccountPage {
        chrome: Chrome::new(&state, &auth, "account", "Your password").await?,
        error: None,
    }))
}

/// Changes the user's own password; the current one is asked again (a session left
/// open on a desk must not be enough).
pub async fn change_password(
    State(state): State<AppState>,
    posted: UserPost,
) -> Result<Response, WebError> {
    let auth = &posted.auth;
    let f = &posted.form;
    let again = |e: String| async {
        let page = AccountPage {
            chrome: Chrome::new(&state, auth, "account", "Your password").await?,
            error: Some(e),
        };
        Ok::<_, WebError>((StatusCode::UNPROCESSABLE_ENTITY, html(&page)).into_response())
    };
    let name = auth.user.name.clone();
    // A stolen session must not become a way to guess the password: the same limits
    // as the login page.
    let ip = posted.ip;
    match check_password(&state, ip, &name, f.get("current")).await? {
        PasswordCheck::Right(_) => {}
        PasswordCheck::Wait(wait) => {
            tracing::warn!(%ip, user = name, "password change refused: too many attempts");
            let mut response = again(format!(
                "Too many attempts; try again in {} s.",
                wait.as_secs().max(1)
            ))
            .await?;
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return Ok(response);
        }
        PasswordCheck::Busy => {
            let mut response =
                again("Too many password checks at once; try again in a moment.".into()).await?;
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return Ok(response);
        }
        PasswordCheck::Wrong => {
            tracing::warn!(%ip, user = name, "password change refused: the current password is wrong");
            return again("The current password is wrong.".into()).await;
        }
    }
    if f.get("password") != f.get("password2") {
        return again("The two new passwords differ.".into()).await;
    }
    match state
        .store
        .users()
        .set_password(&name, f.get("password"), auth.user.role, &auth.actor())
        .await
    {
        // Changing the password ends every session of the user, this one included.
        Ok(_) => Ok(with_flash(
            see_other("/login"),
            "ok",
            "Password changed: log in with the new one.",
            state.settings.secure_cookies,
        )),
        Err(e) if e.is_invalid_input() => again(e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub object: String,
    pub diff: Vec<DiffLine>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<AuditRow>,
    page: usize,
    pages: usize,
    total: i64,
}

pub async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let total = state.store.audit().count().await?;
    let (page, pages, start, _) = paginate(usize::try_from(total).unwrap_or(0), q.page, AUDIT_PAGE);
    let rows = state
        .store
        .audit()
        .list(AUDIT_PAGE as u32, start as u32)
        .await?
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            at: secs(e.at),
            actor: e.actor,
            source: e.source.unwrap_or_default(),
            action: e.action,
            object: e.object,
            diff: match (&e.before, &e.after) {
                (None, None) => Vec::new(),
                (b, a) => diff(b.as_deref().unwrap_or(""), a.as_deref().unwrap_or("")),
            },
        })
        .collect();
    Ok(html(&AuditPage {
        chrome: Chrome::new(&state, &auth, "audit", "Audit log").await?,
        rows,
        page,
        pages,
        total,
    }))
}
