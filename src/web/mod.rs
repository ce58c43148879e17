//! `lvs-director web`: the admin UI on port 3636 (axum + askama + tower-http).
//!
//! - [`auth`]: sessions, login, logout, first-admin setup, CSRF, roles.
//! - [`throttle`]: the limits on password guesses (per source, per user), pure.
//! - [`form`]: form fields from the model's keyword tables, and forms back into the
//!   model (pure).
//! - [`publish`]: Apply (preview diff, atomic write, supervisor reload), history and
//!   rollback.
//! - [`live`]: the supervisor's status through its control socket, cached briefly.
//! - [`control`], [`settings`], [`virtuals`], [`extras`], [`redundancy`], [`accounts`]: the
//!   pages.
//! - [`metrics`]: `/metrics` for Prometheus (bearer token and/or a listener of its own).
//! - [`security`]: the response headers every page carries.
//! - [`server`]: the HTTP/1.1 accept loop: connection caps per source and in all,
//!   header and idle deadlines.
//! - [`tls`]: optional TLS (rustls) in front of the same router.
//!
//! Every route but the login page, the setup page and the static assets sits behind
//! [`auth::require_session`], for every method; every state change is a POST that
//! carries the session's CSRF token ([`auth::Posted`]). `/metrics` is outside it only
//! when a metrics token is configured, and then needs that token instead.

pub mod accounts;
pub mod api;
pub mod assets;
pub mod auth;
pub mod cluster;
pub mod control;
pub mod extras;
pub mod form;
pub mod live;
pub mod metrics;
pub mod publish;
pub mod redundancy;
pub mod security;
pub mod server;
pub mod settings;
pub mod throttle;
pub mod tls;
pub mod trends;
pub mod virtuals;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use askama::Template;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::storage::{SessionPolicy, Snapshot, StorageError, Store};

/// Where the web service listens unless told otherwise (Piranha's port).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:3636";

/// What the web service needs to know besides its database.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `lvs.cf` that Apply writes and the supervisor reads.
    pub lvs_cf: PathBuf,
    pub control_socket: PathBuf,
    /// The folder the supervisor runs commands from (`--scripts-dir`): commands
    /// entered in the forms are checked against it.
    pub scripts_dir: PathBuf,
    /// Cookies get `Secure` (set when serving over TLS).
    pub secure_cookies: bool,
    pub sessions: SessionPolicy,
    /// The TCP port of configuration sync (the same on every director).
    pub sync_port: u16,
}

/// Asks for the supervisor of an all-in-one process to be started (or restarted) with
/// the file Apply just wrote; answers what became of it.
pub type StartSupervisor =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// Shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub settings: Settings,
    pub auth: auth::AuthState,
    pub live: live::Live,
    /// Set in the all-in-one mode: Apply then starts the supervisor when it is not
    /// running.
    pub start_supervisor: Option<StartSupervisor>,
    /// The bearer token `/metrics` requires (`--metrics-token-file`); with one, the
    /// main port serves `/metrics` outside the session check.
    pub metrics_token: Option<metrics::Token>,
    cache: Mutex<Option<Arc<Cached>>>,
    /// Serialises Apply, rollback and taking the peer's configuration: two at once
    /// would race for the serial number.
    pub apply_lock: Arc<Mutex<()>>,
    /// Configuration sync with the peers ([`crate::cluster`]); its loop is started
    /// by the `web` command, not here.
    pub cluster: Arc<crate::cluster::service::Cluster>,
    /// The last hour of traffic and health, for the monitoring page's pictures.
    pub trends: std::sync::Mutex<trends::Trends>,
    /// Whether Apply has something to do, by (database change, `lvs.cf` stamp).
    pub pending_cache: std::sync::Mutex<Option<(PendingKey, bool)>>,
    /// Monitoring views built from the current status (see [`control::ViewCache`]).
    pub view_cache: std::sync::Mutex<control::ViewCache>,
}

/// What the pending-changes marker depends on: the database's change counter and the
/// modification time and length of `lvs.cf`.
pub type PendingKey = (i64, Option<(std::time::SystemTime, u64)>);

/// The stored configuration as last read, with what pages derive from it.
pub struct Cached {
    pub snapshot: Snapshot,
    pub config: Config,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Store, settings: Settings) -> AppState {
        let live = live::Live::new(settings.control_socket.clone());
        let apply_lock = Arc::new(Mutex::new(()));
        let cluster = crate::cluster::service::Cluster::new(
            store.clone(),
            settings.lvs_cf.clone(),
            settings.control_socket.clone(),
            apply_lock.clone(),
            settings.sync_port,
        );
        AppState(Arc::new(Inner {
            store,
            auth: auth::AuthState::new(),
            live,
            settings,
            start_supervisor: None,
            metrics_token: None,
            cache: Mutex::new(None),
            apply_lock,
            cluster,
            trends: std::sync::Mutex::new(trends::Trends::default()),
            pending_cache: std::sync::Mutex::new(None),
            view_cache: std::sync::Mutex::new(control::ViewCache::default()),
        }))
    }

    /// This state, for an all-in-one process whose supervisor Apply may start.
    pub fn with_supervisor(self, start: StartSupervisor) -> AppState {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("with_supervisor is called before the state is shared"));
        AppState(Arc::new(Inner {
            start_supervisor: Some(start),
            ..inner
        }))
    }

    /// This state, with `/metrics` requiring `token` (and served on the main port).
    pub fn with_metrics_token(self, token: metrics::Token) -> AppState {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("with_metrics_token is called before the state is shared"));
        AppState(Arc::new(Inner {
            metrics_token: Some(token),
            ..inner
        }))
    }

    /// The stored configuration, read again only when the database changed since
    /// (one small query otherwise): list and monitoring pages of a large configuration
    /// then cost no more than their own rendering.
    pub async fn stored(&self) -> Result<Arc<Cached>, WebError> {
        let change = self.store.change_counter().await?;
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| c.snapshot.change == change) {
            return Ok(c.clone());
        }
        let snapshot = self.store.snapshot().await?;
        let config = snapshot.config();
        let fresh = Arc::new(Cached { snapshot, config });
        *cache = Some(fresh.clone());
        Ok(fresh)
    }
}

/// The application's routes; `state` is shared by all of them.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(|| async { Redirect::to("/control") }))
        .route("/control", get(control::page))
        .route("/control/live", get(control::live))
        .route("/control/hand-over", post(control::hand_over))
        .route(
            "/global",
            get(settings::global_page).post(settings::global_save),
        )
        .route(
            "/redundancy",
            get(settings::redundancy_page).post(settings::redundancy_save),
        )
        .merge(virtuals::routes())
        .merge(extras::routes())
        .merge(redundancy::routes())
        .merge(publish::routes())
        .merge(cluster::routes())
        .merge(accounts::routes())
        .route("/logout", post(auth::logout))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_session,
        ));
    let mut app = Router::new()
        // Small bodies only where anyone may post: a login form is a name and a
        // password (see auth::MAX_LOGIN_FORM).
        .route(
            "/login",
            get(auth::login_page)
                .post(auth::login)
                .layer(DefaultBodyLimit::max(auth::MAX_LOGIN_FORM)),
        )
        .route(
            "/setup",
            get(auth::setup_page)
                .post(auth::setup)
                .layer(DefaultBodyLimit::max(auth::MAX_LOGIN_FORM)),
        )
        .route("/static/{file}", get(assets::serve));
    // Prometheus presents a bearer token, not a session: outside the session check
    // only when there is a token to check. Without one, /metrics is an unknown page
    // behind the login (a --metrics-listen listener may serve it instead).
    if state.metrics_token.is_some() {
        app = app.route("/metrics", get(metrics::scrape));
    }
    // The automation API: tokens, not sessions (see api::bearer).
    let app = app.merge(api::router(state.clone())).merge(protected);
    let tls = state.settings.secure_cookies;
    let database = state.store.path();
    security::apply(app.with_state(state), tls, Some(database))
}

async fn not_found() -> WebError {
    WebError::NotFound("this page".into())
}

/// Serves `router(state)` on `listener` (with TLS when `tls` is given) until
/// `shutdown` resolves, then finishes the requests in progress. Connections are
/// bounded by the process's descriptor limit (see [`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = server::Limits::for_descriptors(crate::descriptors::limit());
    server::serve(listener, tls, router(state), limits, shutdown).await
}

/// Why a request failed, rendered as a plain page with the right status; the cause is
/// logged once, here.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0} was not found")]
    NotFound(String),
    #[error("you are not logged in (or your session ended): log in and try again")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooMany(String),
    #[error("the request is larger than this page accepts")]
    TooLarge,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::apply::ApplyError> for WebError {
    fn from(e: crate::apply::ApplyError) -> Self {
        match e {
            crate::apply::ApplyError::Storage(s) => WebError::Storage(s),
            other => WebError::Internal(other.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        // Storage errors are answered as the API answers them; `hidden`: the cause goes
        // to the log (security::log_failures, with the request and the database) and
        // this is shown instead.
        let (status, title, hidden) = match &self {
            WebError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found", None),
            WebError::Unauthorized => (StatusCode::UNAUTHORIZED, "Login required", None),
            WebError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed", None),
            WebError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request", None),
            WebError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "Too many attempts", None),
            WebError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Too large", None),
            WebError::Storage(e) => {
                let (status, hidden) = security::storage_answer(e);
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::SERVICE_UNAVAILABLE => "Busy",
                    StatusCode::CONFLICT => "Not saved",
                    _ => "Internal error",
                };
                (status, title, hidden)
            }
            WebError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                Some(security::FAILED),
            ),
        };
        let failed = hidden.map(|_| security::Failed {
            cause: self.to_string(),
            storage: matches!(self, WebError::Storage(_)),
        });
        let message = hidden.map_or_else(|| self.to_string(), str::to_string);
        let page = ErrorPage {
            status: status.as_u16(),
            title: title.into(),
            message,
        };
        let mut response = (status, html(&page)).into_response();
        if let Some(f) = failed {
            response.extensions_mut().insert(f);
        }
        response
    }
}

/// A rendered template as an HTML response.
pub fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => {
            tracing::error!("template failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// A redirect after a successful POST (303: the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

/// A redirect to `to` that leaves a message (`ok` or `error`) for the page there.
pub fn flash_back(state: &AppState, to: &str, kind: &'static str, text: &str) -> Response {
    auth::with_flash(see_other(to), kind, text, state.settings.secure_cookies)
}

/// Back to `to` after a one-click action (delete, (de)activate, set a role): its
/// message, or the store's refusal of the request (a conflict, the last
/// administrator…) as an error message there; any other failure is the request's.
pub fn flash_outcome(
    state: &AppState,
    to: &str,
    outcome: Result<String, StorageError>,
) -> Result<Response, WebError> {
    match outcome {
        Ok(text) => Ok(flash_back(state, to, "ok", &text)),
        Err(e) if e.is_invalid_input() => Ok(flash_back(state, to, "error", &e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// What every page's frame shows: who is logged in, the CSRF token of its forms,
/// where in the menu the page is, a message left by the previous action, and whether
/// there are changes not applied yet.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub user: String,
    pub admin: bool,
    pub csrf: String,
    pub nav: &'static str,
    pub flash: Option<Flash>,
    pub pending: bool,
    pub title: String,
    /// Configuration sync off, or in conflict: shown on every page.
    pub cluster_alert: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: &'static str,
    pub text: String,
}

impl Chrome {
    /// The frame of a page, with the pending-changes marker computed from the stored
    /// configuration and the file in force.
    pub async fn new(
        state: &AppState,
        auth: &auth::Auth,
        nav: &'static str,
        title: impl Into<String>,
    ) -> Result<Chrome, WebError> {
        let stored = state.stored().await?;
        let pending = publish::has_pending(state, &stored).await;
        Ok(Chrome {
            user: auth.user.name.clone(),
            admin: auth.is_admin(),
            csrf: auth.csrf.clone(),
            nav,
            flash: auth.flash.clone(),
            pending,
            cluster_alert: cluster::alert(&state.cluster.view()),
            title: title.into(),
        })
    }
}

/// Percent-encodes `s` for a query-string value (or a local path given in one):
/// letters, digits, `-_./` stay, everything else becomes `%XX`.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
