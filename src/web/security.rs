//! The headers every response carries: a strict content security policy (scripts and
//! styles from this site only, no framing, forms only to this site), no referrer, no
//! MIME sniffing, no caching of pages (they show live state and tokens), and HSTS
//! under TLS. Also the request limits: body size and time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request head answered (the request line and the header fields as sent).
/// hyper's read buffer stops a head at twice this at most (its `max_buf_size` is a
/// read-ahead bound, not a head limit): past that the connection is closed unanswered.
pub const MAX_HEAD: usize = 32 * 1024;

/// 431 for a request whose head is longer than [`MAX_HEAD`]: a browser sends a few KiB,
/// so more is a client gone wrong or an attempt to make every request cost memory.
async fn head_limit(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let size = request.method().as_str().len()
        + request.uri().to_string().len()
        + request
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if size > MAX_HEAD {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request head is {size} bytes; at most {MAX_HEAD} are accepted\n"),
        )
            .into_response();
    }
    next.run(request).await
}

/// Largest request body accepted: forms are small; a rollback or an import goes
/// through stored revisions, not uploads.
pub const MAX_BODY: usize = 256 * 1024;

pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn set(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

fn set_if_missing(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// What a page or an API answer says instead of a cause kept for the log.
pub const LOCKED: &str = "The database is locked by another process, and was for longer than this service waits. Nothing was changed: try again in a moment.";
pub const FAILED: &str =
    "The request failed on the server; the cause is in the service's log. Nothing was changed.";

/// How a storage error is answered, by the pages and the API alike: its status, and
/// for those whose cause goes to the log rather than to the client ([`Failed`]), what
/// is said instead.
pub fn storage_answer(e: &crate::storage::StorageError) -> (StatusCode, Option<&'static str>) {
    use crate::storage::StorageError;
    match e {
        StorageError::NotFound { .. } => (StatusCode::NOT_FOUND, None),
        StorageError::Busy => (StatusCode::SERVICE_UNAVAILABLE, None),
        e if e.is_locked() => (StatusCode::SERVICE_UNAVAILABLE, Some(LOCKED)),
        e if e.is_invalid_input() => (StatusCode::CONFLICT, None),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Some(FAILED)),
    }
}

/// The cause of a failed request (a 500, or a database locked past the busy timeout),
/// which its page does not show: carried by the response to [`log_failures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub cause: String,
    /// A storage error: the log line names the database.
    pub storage: bool,
}

/// Logs each failed request once: what, the cause, and for a storage error which
/// database (an administrator with two directors' logs side by side must not guess).
async fn log_failures(
    axum::extract::State(database): axum::extract::State<Arc<Option<PathBuf>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    if let Some(f) = response.extensions().get::<Failed>() {
        match database.as_ref() {
            Some(db) if f.storage => tracing::error!(
                %method, %path, database = %db.display(),
                "{method} {path} failed: {} (database {})", f.cause, db.display()
            ),
            _ => tracing::error!(%method, %path, "{method} {path} failed: {}", f.cause),
        }
    }
    response
}

/// `router` with the limits and headers. `tls`: add Strict-Transport-Security.
/// `database`: named in the log line of a request that failed on a storage error.
pub fn apply(router: Router, tls: bool, database: Option<PathBuf>) -> Router {
    let mut r = router
        .layer(set_if_missing(header::CACHE_CONTROL, "no-store"))
        .layer(set(
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ))
        .layer(set(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::CONTENT_SECURITY_POLICY, CSP));
    if tls {
        r = r.layer(set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"));
    }
    r.layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::from_fn(head_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(database),
            log_failures,
        ))
        .layer(TraceLayer::new_for_http())
}
