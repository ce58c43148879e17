//! Who is asking: session cookies, login and logout, the one-time setup of the first
//! administrator, CSRF tokens and roles.
//!
//! - The session cookie holds a random token; the database only its hash. It is
//!   HttpOnly and SameSite=Strict (and Secure under TLS).
//! - [`require_session`] guards every route but login, setup and static files, for
//!   every method: Piranha's CVE-2013-6492 was a GUI that asked for a password on GET
//!   only.
//! - The CSRF token of a session is derived from its secret token, so it needs no
//!   storage and dies with the session. Every POST carries it ([`Posted`]); its
//!   `Origin` / `Sec-Fetch-Site` must also be this site.
//! - Logins are rate-limited per client address and per user name, and answered the
//!   same for an unknown user and a wrong password.

use crate::sync::Recover;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::throttle::{LoginThrottle, Source, UserKey, Verdict};
use super::{html, see_other, AppState, Flash, WebError};
use crate::storage::{action, is_valid_name, shown_name, Actor, Role, StorageError, User};

pub const SESSION_COOKIE: &str = "lvsd_session";
const LOGIN_COOKIE: &str = "lvsd_login";
const FLASH_COOKIE: &str = "lvsd_flash";

/// Largest login or setup form: a name of 64 characters and a password fit many
/// times over; anything larger is refused before it is read.
pub const MAX_LOGIN_FORM: usize = 16 * 1024;

/// The request's authenticated user (put in the request by [`require_session`]).
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: User,
    /// The CSRF token forms must send back.
    pub csrf: String,
    /// The message the previous action left, if any (shown once).
    pub flash: Option<Flash>,
    /// Client address, for the audit log.
    pub source: Option<String>,
}

impl Auth {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
    /// The actor of the changes this request makes.
    pub fn actor(&self) -> Actor {
        Actor::new(self.user.name.clone(), self.source.clone())
    }
}

/// What the login code keeps in memory: the limits on password attempts and the
/// setup token.
pub struct AuthState {
    throttle: Mutex<LoginThrottle>,
    /// The one-time token that lets the first administrator be created from the
    /// browser; `None` once there is a user.
    setup_token: Mutex<Option<String>>,
}

impl Default for AuthState {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthState {
    pub fn new() -> AuthState {
        AuthState {
            throttle: Mutex::new(LoginThrottle::default()),
            setup_token: Mutex::new(None),
        }
    }

    /// Creates the setup token (when there is no user yet) and returns it, to be
    /// printed in the log.
    pub fn new_setup_token(&self) -> String {
        let token = random_hex(16);
        *self.setup_token.locked() = Some(token.clone());
        token
    }

    fn setup_token_matches(&self, given: &str) -> bool {
        self.setup_token
            .locked()
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), given.as_bytes()))
    }

    /// Whether a password attempt for `user` from `ip` may go ahead (now, after a
    /// delay, or not yet); counted against the address.
    pub fn attempt(&self, ip: IpAddr, user: &str) -> Verdict {
        self.throttle
            .locked()
            .attempt(Instant::now(), Source::of(ip), UserKey::of(user))
    }

    /// Records the outcome of an attempt that was let through.
    pub fn outcome(&self, ip: IpAddr, user: &str, right: bool) {
        let (source, key) = (Source::of(ip), UserKey::of(user));
        let mut t = self.throttle.locked();
        if right {
            t.succeeded(Instant::now(), source, key);
        } else {
            t.failed(Instant::now(), source, key);
        }
    }

    /// Waits as the verdict says, or says how long the client must wait.
    pub async fn admit(&self, ip: IpAddr, user: &str) -> Result<(), Duration> {
        match self.attempt(ip, user) {
            Verdict::Go => Ok(()),
            Verdict::Slow(delay) => {
                tracing::info!(%ip, user = %shown_name(user), "password attempt slowed: this user name is being guessed at");
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Verdict::Wait(wait) => Err(wait),
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex(&b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF token of the session whose cookie token is `token`.
pub fn csrf_token(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"lvs-director csrf\0");
    h.update(token.as_bytes());
    hex(&h.finalize()[..16])
}

/// The value of cookie `name` in the request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Constant names and hex values: always a valid header value.
    #[allow(clippy::expect_used)]
    HeaderValue::from_str(&c).expect("cookie text is ASCII")
}

fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", Some(0), secure)
}

/// A response that leaves a message for the next page (shown once).
pub fn with_flash(
    mut response: Response,
    kind: &'static str,
    text: &str,
    secure: bool,
) -> Response {
    let text: String = text.chars().take(1500).collect();
    let value = hex(format!("{kind}:{text}").as_bytes());
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(FLASH_COOKIE, &value, None, secure),
    );
    response
}

fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = cookie(headers, FLASH_COOKIE)?;
    let bytes: Vec<u8> = (0..raw.len() / 2)
        .map(|i| u8::from_str_radix(raw.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let (kind, text) = text.split_once(':')?;
    Some(Flash {
        kind: if kind == "ok" { "ok" } else { "error" },
        text: text.to_string(),
    })
}

/// The client's address, when the server was started with connection info.
pub fn client_ip(req_ext: &axum::http::Extensions) -> Option<IpAddr> {
    req_ext
        .get::<ConnectInfo<super::tls::Peer>>()
        .map(|ConnectInfo(p)| p.0.ip())
}

/// Lets a request through only with a live session; the session's user, CSRF token
/// and flash message go into the request. Without one: GET and HEAD are sent to the
/// login page, every other method gets 401 and nothing is done.
pub async fn require_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let secure = state.settings.secure_cookies;
    let token = cookie(req.headers(), SESSION_COOKIE);
    let session = match &token {
        Some(t) => match state.store.sessions().lookup(t, state.store.now()).await {
            Ok(s) => s,
            Err(e) => return WebError::from(e).into_response(),
        },
        None => None,
    };
    let (Some(session), Some(token)) = (session, token) else {
        let mut response = if matches!(*req.method(), Method::GET | Method::HEAD) {
            let path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            see_other(&format!("/login?next={}", super::urlencode(&path)))
        } else {
            WebError::Unauthorized.into_response()
        };
        if cookie(req.headers(), SESSION_COOKIE).is_some() {
            response
                .headers_mut()
                .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE, secure));
        }
        return response;
    };
    let flash = read_flash(req.headers());
    let source = client_ip(req.extensions()).map(|ip| ip.to_string());
    req.extensions_mut().insert(Auth {
        user: session.user,
        csrf: csrf_token(&token),
        flash: flash.clone(),
        source,
    });
    let mut response = next.run(req).await;
    // Shown once: a page that displayed it clears it (a redirect passes it on).
    if flash.is_some() && !response.status().is_redirection() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_cookie(FLASH_COOKIE, secure));
    }
    response
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Auth {
    type Rejection = WebError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Auth>()
            .cloned()
            .ok_or(WebError::Unauthorized)
    }
}

/// Refuses a state-changing request sent from another site: its `Origin` must be
/// this host, and browsers that send `Sec-Fetch-Site` must say `same-origin`.
fn same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let refuse = || {
        WebError::Forbidden(
            "cross-site request refused: submit the form from the lvs-director pages".into(),
        )
    };
    // Browsers that send Sec-Fetch-Site (a header pages cannot set) say where the
    // request comes from; under `Referrer-Policy: no-referrer` their `Origin` is
    // "null", so it is only consulted when Sec-Fetch-Site is absent.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return if site == "same-origin" {
            Ok(())
        } else {
            Err(refuse())
        };
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| refuse())?;
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(refuse)?;
        let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Why a form could not be read, with the status that says so (413 for one too big).
fn form_rejected(e: axum::extract::rejection::FormRejection) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::TooLarge
    } else {
        WebError::BadRequest(format!("the form could not be read: {e}"))
    }
}

/// A submitted form, as input name → value (the last of repeated names wins), and
/// the list in order for the few forms that repeat a name.
pub struct FormData {
    pub fields: HashMap<String, String>,
}

impl FormData {
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// The row version an edit form was opened at (optimistic concurrency). Its input
    /// is `row_version`: `version` is a keyword of `vrrp` blocks.
    pub fn version(&self) -> Result<i64, WebError> {
        self.get("row_version")
            .parse()
            .map_err(|_| WebError::BadRequest("the form has no version".into()))
    }
}

/// A POST from a logged-in user: same origin, the session's CSRF token, and (with
/// `ADMIN`) the admin role. The form's fields come with it.
pub struct Posted<const ADMIN: bool> {
    pub auth: Auth,
    pub form: FormData,
    /// The client's address (unspecified when the server has no connection info).
    pub ip: IpAddr,
}

/// A POST that only an administrator may make.
pub type AdminPost = Posted<true>;
/// A POST any logged-in user may make (logout, their own password).
pub type UserPost = Posted<false>;

impl<S: Send + Sync, const ADMIN: bool> FromRequest<S> for Posted<ADMIN> {
    type Rejection = WebError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        same_origin(req.headers())?;
        let auth = req
            .extensions()
            .get::<Auth>()
            .cloned()
            .ok_or(WebError::Unauthorized)?;
        let ip = client_ip(req.extensions()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(form_rejected)?;
        let fields: HashMap<String, String> = pairs.into_iter().collect();
        let given = fields.get("csrf").map_or("", String::as_str);
        if !constant_time_eq(given.as_bytes(), auth.csrf.as_bytes()) {
            return Err(WebError::Forbidden(
                "the form's security token is missing or out of date (the page was opened in another session); reload the page and try again".into(),
            ));
        }
        if ADMIN && !auth.is_admin() {
            return Err(WebError::Forbidden(format!(
                "{} has the viewer role: only administrators can change the configuration",
                auth.user.name
            )));
        }
        Ok(Posted {
            auth,
            form: FormData { fields },
            ip,
        })
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    token: String,
    next: String,
    user: String,
    error: Option<String>,
    /// The message of the previous page (a logout, the first administrator created).
    flash: Option<Flash>,
    setup: bool,
}

#[derive(serde::Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only local paths: a `next` pointing elsewhere would make the login page an open
/// redirect. Browsers drop tabs and newlines from a URL, read `\` as `/` and some
/// decode `%2F`/`%5C` before resolving, so `/\t/evil.example` or `/%5Cevil.example`
/// would leave the site: only printable ASCII without backslashes is accepted, and the
/// path must start with exactly one slash before and after percent-decoding.
fn safe_next(next: &str) -> String {
    fn leaves_site(path: &[u8]) -> bool {
        path.first() != Some(&b'/') || matches!(path.get(1), Some(b'/' | b'\\'))
    }
    let printable = next
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\\\"<>^`{|}".contains(&b));
    let decoded = percent_decode(next.as_bytes());
    let decoded_ok = !decoded.iter().any(|b| b.is_ascii_control() || *b == b'\\');
    if printable && decoded_ok && !leaves_site(next.as_bytes()) && !leaves_site(&decoded) {
        next.to_string()
    } else {
        "/control".to_string()
    }
}

/// `%XX` sequences decoded (others left as they are).
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (s[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn login_form(
    state: &AppState,
    flash: Option<Flash>,
    next: &str,
    user: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    // The login form's own CSRF defence: a random value in a cookie and in the form
    // (a cross-site page can set neither).
    let token = random_hex(16);
    let page = LoginPage {
        token: token.clone(),
        next: safe_next(next),
        user: user.to_string(),
        error,
        flash: flash.clone(),
        setup: state.auth.setup_token.locked().is_some(),
    };
    let mut response = (status, html(&page)).into_response();
    let secure = state.settings.secure_cookies;
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, None, secure),
    );
    if flash.is_some() {
        headers.append(header::SET_COOKIE, clear_cookie(FLASH_COOKIE, secure));
    }
    response
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    login_form(
        &state,
        read_flash(&headers),
        &q.next,
        "",
        None,
        StatusCode::OK,
    )
}

/// What a password check under the limits found.
pub enum PasswordCheck {
    Right(User),
    Wrong,
    /// Refused by the limits: the client may try again after this long.
    Wait(Duration),
    /// Too many checks at once: refused without one.
    Busy,
}

/// Checks `password` for `user` from `ip` under the limits on guesses, and counts the
/// outcome against them: the one way the login page and the own-password page check
/// a password.
pub async fn check_password(
    state: &AppState,
    ip: IpAddr,
    user: &str,
    password: &str,
) -> Result<PasswordCheck, WebError> {
    if let Err(wait) = state.auth.admit(ip, user).await {
        return Ok(PasswordCheck::Wait(wait));
    }
    // A name no user can have is wrong without a password check (nor its cost).
    let found = if is_valid_name(user) {
        match state.store.users().verify_password(user, password).await {
            Err(StorageError::Busy) => return Ok(PasswordCheck::Busy),
            other => other?,
        }
    } else {
        None
    };
    state.auth.outcome(ip, user, found.is_some());
    Ok(found.map_or(PasswordCheck::Wrong, PasswordCheck::Right))
}

pub async fn login(State(state): State<AppState>, req: Request) -> Result<Response, WebError> {
    same_origin(req.headers())?;
    let ip = client_ip(req.extensions()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let cookie_token = cookie(req.headers(), LOGIN_COOKIE).unwrap_or_default();
    let axum::Form(form) = axum::Form::<HashMap<String, String>>::from_request(req, &state)
        .await
        .map_err(form_rejected)?;
    let field = |k: &str| form.get(k).map_or("", String::as_str);
    let (user, password, next) = (field("user").trim(), field("password"), field("next"));
    if cookie_token.is_empty()
        || !constant_time_eq(cookie_token.as_bytes(), field("token").as_bytes())
    {
        return Ok(login_form(
            &state,
            None,
            next,
            user,
            Some("The login form expired or cookies are disabled; please try again.".into()),
            StatusCode::FORBIDDEN,
        ));
    }
    // Whatever was typed, only a bounded, escaped copy of the name reaches the page,
    // the log and the audit log.
    let shown = shown_name(user);
    let typed: String = user.chars().take(crate::storage::MAX_USER_NAME).collect();
    let actor = Actor::new(
        if user.is_empty() { "(none)" } else { &shown },
        Some(ip.to_string()),
    );
    let found = match check_password(&state, ip, user, password).await? {
        PasswordCheck::Right(found) => found,
        PasswordCheck::Wait(wait) => {
            tracing::warn!(%ip, user = %shown, "login refused: too many attempts");
            return Ok(login_form(
                &state,
                None,
                next,
                &typed,
                Some(format!(
                    "Too many login attempts; try again in {} s.",
                    wait.as_secs().max(1)
                )),
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }
        PasswordCheck::Busy => {
            tracing::warn!(%ip, user = %shown, "login refused: too many password checks at once");
            let mut response = login_form(
                &state,
                None,
                next,
                &typed,
                Some("Too many logins at once; try again in a moment.".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(response);
        }
        PasswordCheck::Wrong => {
            state
                .store
                .audit()
                .record(
                    &actor,
                    action::LOGIN_FAILED,
                    &format!("user {shown}"),
                    None,
                    None,
                )
                .await?;
            tracing::warn!(%ip, user = %shown, "login failed");
            return Ok(login_form(
                &state,
                None,
                next,
                &typed,
                Some("Wrong user name or password.".into()),
                StatusCode::UNAUTHORIZED,
            ));
        }
    };
    let session = state
        .store
        .sessions()
        .create(&found, &state.settings.sessions, state.store.now())
        .await?;
    state
        .store
        .audit()
        .record(&actor, action::LOGIN, &format!("user {user}"), None, None)
        .await?;
    tracing::info!(%ip, user, "login");
    let secure = state.settings.secure_cookies;
    let mut response = see_other(&safe_next(next));
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &session.token, None, secure),
    );
    headers.append(header::SET_COOKIE, clear_cookie(LOGIN_COOKIE, secure));
    Ok(response)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: UserPost,
) -> Result<Response, WebError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.store.sessions().delete(&token).await?;
    }
    let auth = &posted.auth;
    state
        .store
        .audit()
        .record(
            &auth.actor(),
            action::LOGOUT,
            &format!("user {}", auth.user.name),
            None,
            None,
        )
        .await?;
    let mut response = see_other("/login");
    response.headers_mut().append(
        header::SET_COOKIE,
        clear_cookie(SESSION_COOKIE, state.settings.secure_cookies),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    token: String,
    user: String,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// The first administrator, created with the token the service printed at start.
pub async fn setup_page(
    State(state): State<AppState>,
    Query(q): Query<SetupQuery>,
) -> Result<Response, WebError> {
    if !state.auth.setup_token_matches(&q.token) {
        return Err(WebError::Forbidden(
            "this setup link is not valid (any more): the first administrator exists, or the service was restarted and printed a new link in its log; `lvs-director passwd NAME` also creates one".into(),
        ));
    }
    Ok(html(&SetupPage {
        token: q.token,
        user: "admin".into(),
        error: None,
    }))
}

pub async fn setup(State(state): State<AppState>, req: Request) -> Result<Response, WebError> {
    same_origin(req.headers())?;
    let ip = client_ip(req.extensions()).map(|i| i.to_string());
    let axum::Form(form) = axum::Form::<HashMap<String, String>>::from_request(req, &state)
        .await
        .map_err(form_rejected)?;
    let field = |k: &str| form.get(k).map_or("", String::as_str).to_string();
    let (token, user, password) = (
        field("token"),
        field("user").trim().to_string(),
        field("password"),
    );
    if !state.auth.setup_token_matches(&token) {
        return Err(WebError::Forbidden(
            "this setup link is not valid (any more)".into(),
        ));
    }
    let again = |error: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            html(&SetupPage {
                token: token.clone(),
                user: user.clone(),
                error: Some(error),
            }),
        )
            .into_response()
    };
    if password != field("password2") {
        return Ok(again("The two passwords differ.".into()));
    }
    // One setup at a time, and only while there is no user: the token is for the
    // first administrator only.
    let mut slot = state.auth.setup_token.locked().take();
    if slot.is_none() {
        return Err(WebError::Forbidden("setup is already done".into()));
    }
    if !state.store.users().list().await?.is_empty() {
        return Err(WebError::Forbidden(
            "an administrator already exists".into(),
        ));
    }
    let actor = Actor::new("setup", ip);
    match state
        .store
        .users()
        .set_password(&user, &password, Role::Admin, &actor)
        .await
    {
        Ok(_) => {}
        Err(e @ (StorageError::WeakPassword { .. } | StorageError::InvalidUser { .. })) => {
            *state.auth.setup_token.locked() = slot.take();
            return Ok(again(e.to_string()));
        }
        Err(e) => {
            *state.auth.setup_token.locked() = slot.take();
            return Err(e.into());
        }
    }
    tracing::info!(user, "first administrator created through the setup link");
    Ok(with_flash(
        see_other("/login"),
        "ok",
        &format!("Administrator {user} created: log in."),
        state.settings.secure_cookies,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next("/virtual/3"), "/virtual/3");
        assert_eq!(
            safe_next("/control?page=2&q=web%201"),
            "/control?page=2&q=web%201"
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "\\\\evil",
            "/\\evil",
            "",
            // The report's case: the browser drops the tab and reads //evil.example.
            "/\t/evil.example/x",
            "/\n/evil.example/x",
            "\t//evil.example/x",
            "/\r\n/evil.example",
            " //evil.example",
            "/%2F/evil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/x%0d%0aSet-Cookie:a=b",
            "javascript:alert(1)",
            "/\u{a0}/evil.example",
        ] {
            assert_eq!(safe_next(bad), "/control", "{bad}");
        }
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            m
        };
        assert!(same_origin(&h(&[("host", "lb1:3636")])).is_ok());
        assert!(same_origin(&h(&[("host", "lb1:3636"), ("origin", "http://lb1:3636")])).is_ok());
        assert!(same_origin(&h(&[
            ("host", "lb1:3636"),
            ("origin", "https://evil.example")
        ]))
        .is_err());
        assert!(same_origin(&h(&[("host", "lb1:3636"), ("origin", "null")])).is_err());
        assert!(same_origin(&h(&[
            ("host", "lb1:3636"),
            ("sec-fetch-site", "cross-site")
        ]))
        .is_err());
        assert!(same_origin(&h(&[("host", "lb1:3636"), ("sec-fetch-site", "same-site")])).is_err());
        assert!(same_origin(&h(&[
            ("host", "lb1:3636"),
            ("sec-fetch-site", "same-origin")
        ]))
        .is_ok());
        // What Chromium sends for a form on a no-referrer page.
        assert!(same_origin(&h(&[
            ("host", "lb1:3636"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ]))
        .is_ok());
        assert!(same_origin(&h(&[("host", "lb1:3636"), ("sec-fetch-site", "none")])).is_err());
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_flash_reads_back() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a"), csrf_token("a"));
        let r = with_flash(see_other("/"), "ok", "saved: virtual \"web\" <b>", false);
        let mut h = HeaderMap::new();
        let set = r
            .headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(set.split(';').next().unwrap()).unwrap(),
        );
        assert_eq!(
            read_flash(&h),
            Some(Flash {
                kind: "ok",
                text: "saved: virtual \"web\" <b>".into()
            })
        );
    }
}
