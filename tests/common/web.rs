//! Harness of `tests/web.rs`: a real store in a temporary folder, the admin UI served
//! over HTTP on 127.0.0.1 or driven through the router with `oneshot`, a small browser
//! (cookie jar, the pages' forms read and submitted as a browser would), and the few
//! HTML readings the tests need. Included with `#[path]`; no other test uses it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use regex::Regex;
use tempfile::TempDir;
use tower::ServiceExt;

use lvs_director::storage::{Actor, AuditEntry, Role, SessionPolicy, Snapshot, Store, User};
use lvs_director::web::{self, tls::Peer, AppState, Settings};

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery";
/// What the oneshot requests say in `Host` (and a same-site `Origin` must match).
pub const HOST: &str = "lvsd.test";

/// A store, the state of the web service and the files it uses, in a temporary folder.
pub struct Env {
    pub dir: TempDir,
    pub store: Store,
    pub state: AppState,
}

impl Env {
    pub async fn new() -> Env {
        Env::with(false).await
    }

    pub async fn with(secure_cookies: bool) -> Env {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Store::open(&dir.path().join("db/lvs-director.db"))
            .await
            .expect("database");
        std::fs::create_dir(dir.path().join("etc")).expect("etc folder");
        let settings = Settings {
            lvs_cf: dir.path().join("etc/lvs.cf"),
            control_socket: dir.path().join("pulse.sock"),
            scripts_dir: lvs_director::pulse::io::scripts::DEFAULT_SCRIPTS_DIR.into(),
            secure_cookies,
            sessions: SessionPolicy::default(),
            sync_port: lvs_director::cluster::wire::DEFAULT_PORT,
        };
        let state = AppState::new(store.clone(), settings);
        Env { dir, store, state }
    }

    pub fn lvs_cf(&self) -> PathBuf {
        self.state.settings.lvs_cf.clone()
    }

    pub fn socket(&self) -> PathBuf {
        self.state.settings.control_socket.clone()
    }

    /// The file in force, if written.
    pub fn in_force(&self) -> Option<String> {
        std::fs::read_to_string(self.lvs_cf()).ok()
    }

    pub fn router(&self) -> Router {
        web::router(self.state.clone())
    }

    /// A client of the router (no network), from 127.0.0.1.
    pub fn oneshot(&self) -> Client {
        Client {
            transport: Transport::Oneshot(self.router()),
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            jar: BTreeMap::new(),
            host: HOST.to_string(),
        }
    }

    /// Creates a user (an argon2 hash: slow, use sparingly).
    pub async fn user(&self, name: &str, password: &str, role: Role) -> User {
        self.store
            .users()
            .set_password(name, password, role, &Actor::new("test", None))
            .await
            .expect("user created")
            .user
    }

    pub async fn admin(&self) -> User {
        self.user(ADMIN, ADMIN_PASSWORD, Role::Admin).await
    }

    /// A session of `user` made directly in the store (no login, no hashing).
    pub async fn session_of(&self, user: &User) -> String {
        self.store
            .sessions()
            .create(user, &SessionPolicy::default(), self.store.now())
            .await
            .expect("session")
            .token
    }

    pub async fn snapshot(&self) -> Snapshot {
        self.store.snapshot().await.expect("snapshot")
    }

    /// The audit log, oldest first.
    pub async fn audit(&self) -> Vec<AuditEntry> {
        let mut all = self.store.audit().list(100_000, 0).await.expect("audit");
        all.reverse();
        all
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        self.audit().await.into_iter().map(|e| e.action).collect()
    }

    /// Serves the UI on 127.0.0.1, port chosen by the system.
    pub async fn serve(&self) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(web::serve(listener, None, self.state.clone(), async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// The UI served over HTTP; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// A browser on 127.0.0.1.
    pub fn client(&self) -> Client {
        self.client_from(Ipv4Addr::LOCALHOST)
    }

    /// A browser on another loopback address (the login limiter counts per address).
    pub fn client_from(&self, source: Ipv4Addr) -> Client {
        Client {
            transport: Transport::Http(self.addr),
            source: IpAddr::V4(source),
            jar: BTreeMap::new(),
            host: self.addr.to_string(),
        }
    }

    /// Shuts the server down and checks it ended cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .expect("the server stops")
                .expect("the server task")
                .expect("the server ended without error");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Clone)]
enum Transport {
    Oneshot(Router),
    Http(SocketAddr),
}

/// A minimal browser: keeps cookies, sends forms.
pub struct Client {
    transport: Transport,
    pub source: IpAddr,
    pub jar: BTreeMap<String, String>,
    pub host: String,
}

/// A response, body read.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: String = self.body.chars().take(3000).collect();
        write!(f, "HTTP {}\n{:?}\n{body}", self.status, self.headers)
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The `Set-Cookie` lines of this response.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }

    /// The `Set-Cookie` line of cookie `name`, if this response sets it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .map(|(k, _)| k)
                == Some(name)
        })
    }

    /// True when this response gives cookie `name` a (non-empty) value.
    pub fn sets_cookie(&self, name: &str) -> bool {
        self.set_cookie(name).is_some_and(|c| !clears(&c))
    }

    /// True when this response deletes cookie `name`.
    pub fn clears_cookie(&self, name: &str) -> bool {
        self.set_cookie(name).is_some_and(|c| clears(&c))
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self:?}");
        self
    }

    /// A 303 to `to`.
    #[track_caller]
    pub fn expect_redirect(&self, to: &str) -> &Resp {
        self.expect(303);
        assert_eq!(self.location(), to, "{self:?}");
        self
    }

    #[track_caller]
    pub fn expect_text(&self, text: &str) -> &Resp {
        assert!(self.body.contains(text), "`{text}` not in: {self:?}");
        self
    }
}

fn clears(set_cookie: &str) -> bool {
    let value = set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map_or("", |(_, v)| v);
    value.is_empty() || set_cookie.contains("Max-Age=0")
}

impl Client {
    /// This client with a session cookie already set.
    pub fn with_session(mut self, token: &str) -> Client {
        self.set_cookie(web::auth::SESSION_COOKIE, token);
        self
    }

    pub fn from(mut self, source: IpAddr) -> Client {
        self.source = source;
        self
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.insert(name.to_string(), value.to_string());
    }

    pub fn session(&self) -> Option<String> {
        self.jar.get(web::auth::SESSION_COOKIE).cloned()
    }

    /// The CSRF token of this client's session.
    #[track_caller]
    pub fn csrf(&self) -> String {
        web::auth::csrf_token(&self.session().expect("logged in"))
    }

    /// Sends a request; `form` is sent as `application/x-www-form-urlencoded`.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        form: Option<&[(String, String)]>,
    ) -> Resp {
        match form {
            Some(pairs) => {
                let mut with_type = vec![("content-type", "application/x-www-form-urlencoded")];
                with_type.extend_from_slice(headers);
                self.request_body(method, path, &with_type, encode(pairs))
                    .await
            }
            None => {
                self.request_body(method, path, headers, String::new())
                    .await
            }
        }
    }

    /// A request with `body` as it is (its content type among `headers`).
    pub async fn request_body(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            b = b.header(header::COOKIE, cookies.join("; "));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (status, response_headers, bytes) = match &self.transport {
            Transport::Oneshot(router) => {
                let mut req = b.body(Body::from(body)).expect("request");
                req.extensions_mut()
                    .insert(ConnectInfo(Peer(SocketAddr::new(self.source, 40_000))));
                let resp = router.clone().oneshot(req).await.expect("infallible");
                let (parts, body) = resp.into_parts();
                let bytes = body.collect().await.expect("body").to_bytes();
                (parts.status, parts.headers, bytes)
            }
            Transport::Http(addr) => {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket
                    .bind(SocketAddr::new(self.source, 0))
                    .expect("bind the client's address");
                let stream = socket.connect(*addr).await.expect("connect");
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                tokio::spawn(conn);
                let req = b.body(Full::new(Bytes::from(body))).expect("request");
                let resp = sender.send_request(req).await.expect("response");
                let (parts, body) = resp.into_parts();
                let bytes = body.collect().await.expect("body").to_bytes();
                (parts.status, parts.headers, bytes)
            }
        };
        let resp = Resp {
            status,
            headers: response_headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        for c in resp.set_cookies() {
            let Some((name, value)) = c.split(';').next().and_then(|kv| kv.split_once('=')) else {
                continue;
            };
            if clears(&c) {
                self.jar.remove(name.trim());
            } else {
                self.jar
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        resp
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.request(Method::GET, path, &[], None).await
    }

    /// GET that must answer 200: the page's HTML.
    pub async fn page(&mut self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {r:?}");
        r.body
    }

    pub async fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.post_with(path, pairs, &[]).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.request(Method::POST, path, headers, Some(&pairs))
            .await
    }

    /// Submits a form read from a page, as a browser would.
    pub async fn submit(&mut self, form: &Form) -> Resp {
        self.submit_with(form, &[]).await
    }

    pub async fn submit_with(&mut self, form: &Form, headers: &[(&str, &str)]) -> Resp {
        self.request(Method::POST, &form.action, headers, Some(&form.fields))
            .await
    }

    /// GET of where a redirect points.
    pub async fn follow(&mut self, r: &Resp) -> Resp {
        assert!(r.status.is_redirection(), "not a redirect: {r:?}");
        let to = r.location().to_string();
        self.get(&to).await
    }

    /// Fills in and submits the login form.
    pub async fn login(&mut self, user: &str, password: &str) -> Resp {
        let page = self.page("/login").await;
        let f = form(&page, "/login")
            .with("user", user)
            .with("password", password);
        self.submit(&f).await
    }

    pub async fn login_ok(&mut self, user: &str, password: &str) {
        let r = self.login(user, password).await;
        r.expect(303);
        assert!(self.session().is_some(), "no session after login: {r:?}");
    }
}

/// `application/x-www-form-urlencoded`.
pub fn encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- HTML ----

/// Text of HTML with its character references resolved (what askama writes).
pub fn unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The attributes of a tag (its text after the tag name).
pub fn attrs(tag: &str) -> BTreeMap<String, String> {
    let re = Regex::new(r#"([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*"([^"]*)")?"#).unwrap();
    re.captures_iter(tag)
        .map(|c| {
            (
                c[1].to_string(),
                c.get(2).map_or(String::new(), |v| unescape(v.as_str())),
            )
        })
        .collect()
}

/// A form of a page: where it posts and what a browser would send (submit buttons
/// not included).
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets input `name` (as a user would type it), adding it if the form lacks it.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Form {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
        self
    }

    pub fn with(mut self, name: &str, value: &str) -> Form {
        self.set(name, value);
        self
    }

    pub fn without(mut self, name: &str) -> Form {
        self.fields.retain(|(k, _)| k != name);
        self
    }
}

/// Every form of a page.
pub fn forms(html: &str) -> Vec<Form> {
    let form_re = Regex::new(r"(?s)<form\b([^>]*)>(.*?)</form>").unwrap();
    let control_re = Regex::new(
        r"(?s)<input\b([^>]*)>|<select\b([^>]*)>(.*?)</select>|<textarea\b([^>]*)>(.*?)</textarea>",
    )
    .unwrap();
    let option_re = Regex::new(r"<option\b([^>]*)>").unwrap();
    form_re
        .captures_iter(html)
        .map(|f| {
            let action = attrs(&f[1]).get("action").cloned().unwrap_or_default();
            let mut fields = Vec::new();
            for c in control_re.captures_iter(&f[2]) {
                if let Some(input) = c.get(1) {
                    let a = attrs(input.as_str());
                    let Some(name) = a.get("name") else { continue };
                    let kind = a.get("type").map_or("text", String::as_str);
                    if matches!(kind, "submit" | "button" | "reset" | "image") {
                        continue;
                    }
                    if matches!(kind, "checkbox" | "radio") && !a.contains_key("checked") {
                        continue;
                    }
                    let default = if kind == "checkbox" { "on" } else { "" };
                    fields.push((
                        name.clone(),
                        a.get("value").cloned().unwrap_or_else(|| default.into()),
                    ));
                } else if let Some(select) = c.get(2) {
                    let a = attrs(select.as_str());
                    let Some(name) = a.get("name") else { continue };
                    let options: Vec<BTreeMap<String, String>> = option_re
                        .captures_iter(&c[3])
                        .map(|o| attrs(&o[1]))
                        .collect();
                    // As browsers do: of several `selected`, the last one wins.
                    let chosen = options
                        .iter()
                        .rfind(|o| o.contains_key("selected"))
                        .or(options.first());
                    if let Some(o) = chosen {
                        fields.push((name.clone(), o.get("value").cloned().unwrap_or_default()));
                    }
                } else if let Some(area) = c.get(4) {
                    let a = attrs(area.as_str());
                    let Some(name) = a.get("name") else { continue };
                    fields.push((name.clone(), unescape(&c[5])));
                }
            }
            Form { action, fields }
        })
        .collect()
}

/// The (first) form of the page that posts to `action`.
#[track_caller]
pub fn form(html: &str, action: &str) -> Form {
    forms(html)
        .into_iter()
        .find(|f| f.action == action)
        .unwrap_or_else(|| panic!("no form posting to {action} in:\n{html}"))
}

pub fn has_form(html: &str, action: &str) -> bool {
    forms(html).iter().any(|f| f.action == action)
}

/// The value of the first input named `name`.
#[track_caller]
pub fn input(html: &str, name: &str) -> String {
    forms(html)
        .into_iter()
        .find_map(|f| f.get(name).map(str::to_string))
        .unwrap_or_else(|| panic!("no input {name} in:\n{html}"))
}

/// The error shown next to field `name` (`<p class="error" id="e-NAME">`).
pub fn field_error(html: &str, name: &str) -> Option<String> {
    let re = Regex::new(&format!(
        r#"(?s)<p class="error" id="e-{}">(.*?)</p>"#,
        regex::escape(name)
    ))
    .unwrap();
    re.captures(html).map(|c| unescape(&c[1]))
}

/// The message the previous action left on this page: (kind, text).
pub fn flash(html: &str) -> Option<(String, String)> {
    let re = Regex::new(r#"(?s)<p class="flash (\w+)" role="status">(.*?)</p>"#).unwrap();
    re.captures(html)
        .map(|c| (c[1].to_string(), unescape(&c[2])))
}

/// The general errors of a form page (`#form-errors`).
pub fn form_errors(html: &str) -> String {
    let re =
        Regex::new(r#"(?s)<div class="flash error" role="alert" id="form-errors">(.*?)</div>"#)
            .unwrap();
    re.captures(html).map_or(String::new(), |c| unescape(&c[1]))
}

/// The lines of the diffs on a page of one kind (`add`, `del`, `ctx`), without their
/// sign and indentation.
pub fn diff_lines(html: &str, kind: &str) -> Vec<String> {
    let re = Regex::new(&format!(
        r#"<span class="{}">(.*?)</span>"#,
        regex::escape(kind)
    ))
    .unwrap();
    re.captures_iter(html)
        .map(|c| {
            let line = unescape(&c[1]);
            line.get(1..).unwrap_or("").trim().to_string()
        })
        .collect()
}

/// A stand-in for the supervisor's control socket at `socket`: each connection's
/// request line, parsed as the supervisor parses it, is answered with `answer`'s reply.
/// Stops when the handle is aborted.
pub fn control_stand_in(
    socket: &std::path::Path,
    answer: impl Fn(
            Result<
                lvs_director::pulse::logic::control::Request,
                lvs_director::pulse::logic::control::Reply,
            >,
        ) -> lvs_director::pulse::logic::control::Reply
        + Send
        + 'static,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::UnixListener::bind(socket).expect("the control socket");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let _ = BufReader::new(read).read_line(&mut line).await;
            let reply = answer(lvs_director::pulse::logic::control::parse_request(&line));
            let mut out = serde_json::to_vec(&reply).expect("a reply");
            out.push(b'\n');
            let _ = write.write_all(&out).await;
        }
    })
}
