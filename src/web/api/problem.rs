//! Errors of the automation API as RFC 9457 problem details
//! (`application/problem+json`), with field-level errors carrying the admin UI's
//! messages.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::StorageError;

/// The media type of a problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field's error, as the admin UI's form shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field (a keyword of the block, or `name`).
    pub field: String,
    pub message: String,
}

/// A problem detail (RFC 9457). `type` is `about:blank`: the status says the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'static str,
    pub status: u16,
    /// What went wrong with this request, for a person.
    pub detail: String,
    /// The fields at fault, when the request's content was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// With 412: the resource's current version (its `ETag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_etag: Option<Box<str>>,
    /// With 429: seconds to wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// A cause kept for the log rather than shown: logged by the admin UI's
    /// `security::log_failures`, with the request and the database.
    #[serde(skip)]
    pub failed: Option<Box<crate::web::security::Failed>>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            current_etag: None,
            retry_after: None,
            failed: None,
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<StorageError> for Problem {
    fn from(e: StorageError) -> Problem {
        let (status, hidden) = crate::web::security::storage_answer(&e);
        let mut p = Problem::new(status, hidden.map_or_else(|| e.to_string(), str::to_string));
        if hidden.is_some() {
            p.failed = Some(Box::new(crate::web::security::Failed {
                cause: e.to_string(),
                storage: true,
            }));
        }
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        let status = self.status();
        let retry = self.retry_after;
        let failed = self.failed.take();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        if let Some(f) = failed {
            r.extensions_mut().insert(*f);
        }
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = retry {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// The answers any operation can give before it runs: no token or a wrong one, too
/// many wrong ones. Documented once, listed in each operation's `responses`.
#[derive(utoipa::IntoResponses)]
pub enum Refusals {
    #[response(
        status = 401,
        description = "No token, or a wrong one",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 429,
        description = "Too many wrong tokens from this address",
        content_type = "application/problem+json"
    )]
    TooMany(Problem),
}

/// A viewer's token on an operation for administrators.
#[derive(utoipa::IntoResponses)]
pub enum ViewerRefused {
    #[response(
        status = 403,
        description = "A viewer token",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
}

/// The database locked by another process past the busy timeout.
#[derive(utoipa::IntoResponses)]
pub enum Locked {
    #[response(
        status = 503,
        description = "The database is locked by another process",
        content_type = "application/problem+json"
    )]
    Locked(Problem),
}

/// What a versioned write can be refused for: a body that is not the JSON expected, a
/// stale or missing `If-Match`, values refused by field.
#[derive(utoipa::IntoResponses)]
pub enum EditRefusals {
    #[response(
        status = 400,
        description = "The body is not the JSON expected",
        content_type = "application/problem+json"
    )]
    BadBody(Problem),
    #[response(
        status = 412,
        description = "Changed since that version; `current_etag` says which it is now",
        content_type = "application/problem+json"
    )]
    Stale(Problem),
    #[response(
        status = 422,
        description = "Values the configuration refuses, by field",
        content_type = "application/problem+json"
    )]
    Refused(Problem),
    #[response(
        status = 428,
        description = "No `If-Match`",
        content_type = "application/problem+json"
    )]
    NoIfMatch(Problem),
}
