//! The admin UI end to end, with a real SQLite database in a temporary folder: the
//! router through `oneshot` (sweeps over every route and method, CSRF, roles, headers)
//! and the real server over HTTP on 127.0.0.1 (login, every form, validation,
//! conflicts, Apply, history and rollback, users). Forms are read from the pages and
//! submitted with every input, as a browser would, with what a user would type.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

#[path = "common/web.rs"]
mod harness;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use axum::http::Method;
use harness::*;
use lvs_director::config::{parse, render};
use lvs_director::pulse::logic::control::{parse_request, Reply, Request};
use lvs_director::storage::{action, Actor, Role, Snapshot, User};
use lvs_director::web;

const PIRANHA_EXAMPLE: &str = include_str!("data/piranha_example.lvs.cf");

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

fn actor() -> Actor {
    Actor::new("test", None)
}

/// Everything a request could change: the stored configuration (with ids, versions
/// and the change counter), the users, the audit log, the revisions and the file in
/// force.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    snapshot: Snapshot,
    users: Vec<User>,
    audit: i64,
    revision: Option<i64>,
    in_force: Option<String>,
}

async fn fingerprint(env: &Env) -> Fingerprint {
    Fingerprint {
        snapshot: env.snapshot().await,
        users: env.store.users().list().await.unwrap(),
        audit: env.store.audit().count().await.unwrap(),
        revision: env
            .store
            .revisions()
            .latest()
            .await
            .unwrap()
            .map(|r| r.info.id),
        in_force: env.in_force(),
    }
}

/// Blocks lvs-director adds to Piranha's: a floating address, a local check and an
/// inactive VRRP instance.
const EXTENSIONS: &str = "
vrrp VI_1 {
    active = 0
    interface = eth0
    virtual_router_id = 51
    virtual_ipaddress = [ 203.0.113.60/24 ]
}
floating nginx {
    active = 1
    address = 203.0.113.50 eth0
    vip_nmask = 24
}
local_check nginx_alive {
    active = 1
    port = 80
    check = http
    check_path = /nginx_status
}
";

/// The ids of the seeded objects.
#[derive(Debug, Clone, Copy)]
struct Ids {
    virtual_id: i64,
    real_id: i64,
    revision: i64,
    floating: i64,
    local_check: i64,
    vrrp: i64,
}

/// Piranha's example (with a floating address and a local check) in the store, one
/// applied revision, and an `lvs.cf` in force that differs from both (so that an
/// import or a rollback would change something).
async fn seed(env: &Env) -> Ids {
    let config = parse(&format!("{PIRANHA_EXAMPLE}{EXTENSIONS}"))
        .unwrap()
        .config;
    env.store.replace_config(&config, &actor()).await.unwrap();
    let mut old = config.clone();
    old.virtuals[0].servers[0].settings.weight = Some(3);
    let rev = env
        .store
        .revisions()
        .record(&render(&old), 56, &actor(), "seed", &Default::default())
        .await
        .unwrap();
    std::fs::write(
        env.lvs_cf(),
        "serial_no = 99\nprimary = 192.0.2.99\nservice = lvs\n",
    )
    .unwrap();
    let snap = env.snapshot().await;
    let v = &snap.virtuals[0];
    Ids {
        virtual_id: v.virtual_server.id,
        real_id: v.servers[0].id,
        revision: rev.info.id,
        floating: snap.floating[0].id,
        local_check: snap.local_checks[0].id,
        vrrp: snap.vrrp[0].id,
    }
}

/// Every route behind the login, spelled as in src/web (`{id}` is the id of the
/// object the path names).
const PROTECTED: &[&str] = &[
    "/",
    "/control",
    "/control/live",
    "/control/hand-over",
    "/global",
    "/redundancy",
    "/virtual",
    "/virtual/new",
    "/virtual/{id}",
    "/virtual/{id}/delete",
    "/virtual/{id}/toggle",
    "/virtual/{id}/scripts",
    "/virtual/{id}/real",
    "/virtual/{id}/real/new",
    "/virtual/{id}/real/{rid}",
    "/virtual/{id}/real/{rid}/delete",
    "/virtual/{id}/real/{rid}/toggle",
    "/virtual/{id}/real/{rid}/drain",
    "/virtual/{id}/real/{rid}/enable",
    "/extras",
    "/floating/new",
    "/floating/{id}",
    "/floating/{id}/delete",
    "/local-check/new",
    "/local-check/{id}",
    "/local-check/{id}/delete",
    "/vrrp/new",
    "/vrrp/{id}",
    "/vrrp/{id}/delete",
    "/apply",
    "/apply/import",
    "/history",
    "/history/{id}",
    "/history/{id}/rollback",
    "/users",
    "/users/{name}/delete",
    "/users/{name}/role",
    "/users/tokens",
    "/users/tokens/{name}/revoke",
    "/account",
    "/audit",
    "/logout",
];

/// The routes anyone may use.
const PUBLIC: &[&str] = &["/login", "/setup", "/static/{file}"];

/// The routes outside the login only when a metrics token is configured (then they
/// need the token: tests/metrics.rs). This test's service has none, so they are
/// behind the login like the protected ones.
const WITH_TOKEN: &[&str] = &["/metrics"];

/// The POST routes only an administrator may use.
const ADMIN_POSTS: &[&str] = &[
    "/control/hand-over",
    "/global",
    "/redundancy",
    "/virtual/new",
    "/virtual/{id}",
    "/virtual/{id}/delete",
    "/virtual/{id}/toggle",
    "/virtual/{id}/scripts",
    "/virtual/{id}/real/new",
    "/virtual/{id}/real/{rid}",
    "/virtual/{id}/real/{rid}/delete",
    "/virtual/{id}/real/{rid}/toggle",
    "/virtual/{id}/real/{rid}/drain",
    "/virtual/{id}/real/{rid}/enable",
    "/floating/new",
    "/floating/{id}",
    "/floating/{id}/delete",
    "/local-check/new",
    "/local-check/{id}",
    "/local-check/{id}/delete",
    "/vrrp/new",
    "/vrrp/{id}",
    "/vrrp/{id}/delete",
    "/apply",
    "/apply/import",
    "/history/{id}/rollback",
    "/users",
    "/users/{name}/delete",
    "/users/{name}/role",
    "/users/tokens",
    "/users/tokens/{name}/revoke",
];

/// The routes the sources of src/web declare: `.route("…")` literals, and the
/// `{PATH}/new`, `{PATH}/{id}`, `{PATH}/{id}/delete` of each kind in extras.rs.
fn declared_routes() -> Vec<String> {
    let sources = [
        include_str!("../src/web/mod.rs"),
        include_str!("../src/web/virtuals.rs"),
        include_str!("../src/web/extras.rs"),
        include_str!("../src/web/redundancy.rs"),
        include_str!("../src/web/publish.rs"),
        include_str!("../src/web/accounts.rs"),
        include_str!("../src/web/metrics.rs"),
    ];
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)""#).unwrap();
    let kind = regex::Regex::new(r#"const PATH: &'static str = "([^"]+)""#).unwrap();
    let mut out = Vec::new();
    for src in sources {
        out.extend(route.captures_iter(src).map(|c| c[1].to_string()));
        for c in kind.captures_iter(src) {
            for suffix in ["/new", "/{id}", "/{id}/delete"] {
                out.push(format!("{}{suffix}", &c[1]));
            }
        }
    }
    out
}

/// A route with the ids of the seeded objects.
fn concrete(route: &str, ids: Ids) -> String {
    let id = if route.starts_with("/history/") {
        ids.revision
    } else if route.starts_with("/floating/") {
        ids.floating
    } else if route.starts_with("/local-check/") {
        ids.local_check
    } else if route.starts_with("/vrrp/") {
        ids.vrrp
    } else {
        ids.virtual_id
    };
    route
        .replace("{id}", &id.to_string())
        .replace("{rid}", &ids.real_id.to_string())
        .replace("{name}", ADMIN)
}

/// What a form with every plausible field would send: a request that would change
/// something if it were let through.
fn tempting_form(csrf: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_string()),
        ("row_version", "1".into()),
        ("name", "intruder".into()),
        ("active", "0".into()),
        ("address", "192.0.2.66".into()),
        ("address__device", "eth0".into()),
        ("port", "81".into()),
        ("weight", "9".into()),
        ("primary", "192.0.2.66".into()),
        ("backup_active", "0".into()),
        ("check", "none".into()),
        ("digest", "0".repeat(32)),
        ("role", "viewer".into()),
        ("password", "intruder-password".into()),
        ("password2", "intruder-password".into()),
        ("current", ADMIN_PASSWORD.into()),
    ]
}

fn pairs(f: &[(&'static str, String)]) -> Vec<(String, String)> {
    f.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// `require_session`'s encoding of the page asked for, in the login link.
fn next_param(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[track_caller]
fn assert_security_headers(r: &Resp, what: &str) {
    assert_eq!(
        r.header("content-security-policy"),
        web::security::CSP,
        "{what}: {r:?}"
    );
    assert!(
        r.header("content-security-policy")
            .contains("frame-ancestors 'none'"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), "DENY", "{what}: {r:?}");
    assert_eq!(r.header("referrer-policy"), "no-referrer", "{what}: {r:?}");
    assert_eq!(
        r.header("x-content-type-options"),
        "nosniff",
        "{what}: {r:?}"
    );
}

/// Creates a virtual server through its form; returns its id.
async fn create_virtual(c: &mut Client, name: &str, vip: &str) -> i64 {
    let page = c.page("/virtual/new").await;
    let f = form(&page, "/virtual/new")
        .with("name", name)
        .with("active", "1")
        .with("address", vip)
        .with("address__device", "eth0:1");
    let r = c.submit(&f).await;
    r.expect(303);
    let id = r
        .location()
        .strip_prefix("/virtual/")
        .and_then(|rest| rest.strip_suffix("/real"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("where a creation leads: {r:?}"));
    id
}

/// Adds a real server through its form; returns its id.
async fn create_real(
    c: &mut Client,
    env: &Env,
    vid: i64,
    name: &str,
    address: &str,
    weight: &str,
) -> i64 {
    let page = c.page(&format!("/virtual/{vid}/real/new")).await;
    let f = form(&page, &format!("/virtual/{vid}/real/new"))
        .with("name", name)
        .with("address", address)
        .with("weight", weight);
    c.submit(&f)
        .await
        .expect_redirect(&format!("/virtual/{vid}/real"));
    real(env, vid, name).await.expect("created").id
}

/// The stored virtual server `vid`.
async fn virtual_of(env: &Env, vid: i64) -> Option<lvs_director::storage::StoredVirtual> {
    env.snapshot()
        .await
        .virtuals
        .into_iter()
        .find(|v| v.virtual_server.id == vid)
}

/// The stored check settings of virtual server `vid`.
async fn check_of(env: &Env, vid: i64) -> lvs_director::config::model::CheckSettings {
    virtual_of(env, vid)
        .await
        .expect("the virtual server is stored")
        .virtual_server
        .item
        .check
}

/// The stored real server `name` of virtual server `vid`.
async fn real(
    env: &Env,
    vid: i64,
    name: &str,
) -> Option<lvs_director::storage::Stored<lvs_director::config::RealServer>> {
    virtual_of(env, vid)
        .await?
        .servers
        .into_iter()
        .find(|r| r.item.name == name)
}

// ---- without a session ----

#[tokio::test]
async fn without_a_session_no_route_answers_or_changes_anything() {
    let env = Env::new().await;
    env.admin().await;
    let ids = seed(&env).await;
    let before = fingerprint(&env).await;
    let bogus = "ab".repeat(32);
    let body = pairs(&tempting_form(&web::auth::csrf_token(&bogus)));

    // The list is the sources' list.
    let mut declared = declared_routes();
    declared.sort();
    declared.dedup();
    let mut listed: Vec<String> = PROTECTED
        .iter()
        .chain(PUBLIC)
        .chain(WITH_TOKEN)
        .map(|r| r.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed, declared,
        "PROTECTED, PUBLIC and WITH_TOKEN list every route of src/web"
    );

    let mut paths: Vec<String> = PROTECTED
        .iter()
        .chain(WITH_TOKEN)
        .map(|r| concrete(r, ids))
        .collect();
    // Query strings, unknown pages and objects: the fallback is guarded too.
    paths.extend(
        [
            "/control?refresh=5&q=www",
            "/no-such-page",
            "/virtual/999999/real",
            "/static",
        ]
        .map(String::from),
    );
    let mut answered = 0;
    for path in &paths {
        for method in METHODS {
            for cookie in [None, Some(bogus.as_str())] {
                let mut c = env.oneshot();
                if let Some(token) = cookie {
                    c.set_cookie("lvsd_session", token);
                }
                let form = (!matches!(method, Method::GET | Method::HEAD)).then_some(&body[..]);
                let r = c.request(method.clone(), path, &[], form).await;
                let what = format!("{method} {path} (cookie: {cookie:?})");
                assert!(!r.status.is_success(), "{what}: {r:?}");
                if matches!(method, Method::GET | Method::HEAD) {
                    r.expect_redirect(&format!("/login?next={}", next_param(path)));
                } else {
                    assert!(matches!(r.status.as_u16(), 401 | 405), "{what}: {r:?}");
                }
                assert!(!r.sets_cookie("lvsd_session"), "{what}: {r:?}");
                if cookie.is_some() {
                    assert!(
                        r.clears_cookie("lvsd_session"),
                        "{what}: a dead session cookie is cleared: {r:?}"
                    );
                }
                assert_security_headers(&r, &what);
                answered += 1;
            }
        }
    }
    assert_eq!(answered, paths.len() * METHODS.len() * 2);
    assert_eq!(fingerprint(&env).await, before, "nothing changed");

    // The public routes behave, and change nothing either.
    for method in METHODS {
        let mut c = env.oneshot();
        let form = (!matches!(method, Method::GET | Method::HEAD)).then_some(&body[..]);
        let login = c.request(method.clone(), "/login", &[], form).await;
        let setup = c.request(method.clone(), "/setup", &[], form).await;
        let css = c
            .request(method.clone(), "/static/app.css", &[], form)
            .await;
        match method {
            Method::GET | Method::HEAD => {
                login.expect(200);
                assert!(login.sets_cookie("lvsd_login"), "{login:?}");
                if method == Method::GET {
                    login.expect_text(r#"name="token""#);
                }
                setup.expect(403);
                css.expect(200);
                assert!(css.header("content-type").starts_with("text/css"));
                if method == Method::GET {
                    assert!(css.body.len() > 100, "the stylesheet is served");
                }
            }
            Method::POST => {
                // No login token: refused, nothing audited, no session.
                login
                    .expect(403)
                    .expect_text("The login form expired or cookies are disabled");
                setup.expect(403);
                css.expect(405);
            }
            _ => {
                login.expect(405);
                setup.expect(405);
                css.expect(405);
            }
        }
        for r in [&login, &setup, &css] {
            assert!(!r.sets_cookie("lvsd_session"), "{method}: {r:?}");
            assert_security_headers(r, &format!("{method} public"));
        }
    }
    let mut c = env.oneshot();
    let js = c.get("/static/app.js").await;
    js.expect(200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    let svg = c.get("/static/favicon.svg").await;
    svg.expect(200);
    assert_eq!(svg.header("content-type"), "image/svg+xml");
    c.get("/static/nope.css").await.expect(404);
    c.get("/static/..%2FCargo.toml").await.expect(404);
    c.get("/setup?token=").await.expect(403);
    c.get("/setup?token=bad").await.expect(403);
    assert_eq!(fingerprint(&env).await, before, "nothing changed");
}

// ---- setup ----

#[tokio::test]
async fn the_setup_link_creates_the_first_administrator_once() {
    let env = Env::new().await;
    let token = env.state.auth.new_setup_token();
    let server = env.serve().await;
    let mut c = server.client();

    c.get("/setup").await.expect(403);
    c.get("/setup?token=bad")
        .await
        .expect(403)
        .expect_text("not valid");
    let login = c.page("/login").await;
    assert!(
        login.contains("No administrator exists yet"),
        "the login page points to the setup: {login}"
    );

    let page = c.page(&format!("/setup?token={token}")).await;
    let f = form(&page, "/setup");
    assert_eq!(f.get("token"), Some(token.as_str()));
    let password = "first admin password";

    // A wrong token in the form.
    let r = c
        .submit(
            &f.clone()
                .with("token", "bad")
                .with("user", "root")
                .with("password", password)
                .with("password2", password),
        )
        .await;
    r.expect(403);
    // Refusals that keep the link usable.
    let r = c
        .submit(
            &f.clone()
                .with("user", "root")
                .with("password", password)
                .with("password2", "another password"),
        )
        .await;
    r.expect(422).expect_text("The two passwords differ.");
    assert_eq!(input(&r.body, "user"), "root", "the name typed is kept");
    let r = c
        .submit(
            &f.clone()
                .with("user", "root")
                .with("password", "short")
                .with("password2", "short"),
        )
        .await;
    r.expect(422).expect_text("at least 8 characters");
    let r = c
        .submit(
            &f.clone()
                .with("user", "no spaces please")
                .with("password", password)
                .with("password2", password),
        )
        .await;
    r.expect(422).expect_text("user name");
    assert!(env.store.users().list().await.unwrap().is_empty());

    // The real thing.
    let r = c
        .submit(
            &f.clone()
                .with("user", "root")
                .with("password", password)
                .with("password2", password),
        )
        .await;
    r.expect_redirect("/login");
    let users = env.store.users().list().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].name.as_str(), users[0].role),
        ("root", Role::Admin)
    );
    let audit = env.audit().await;
    let created = audit
        .iter()
        .find(|e| e.action == action::SET_PASSWORD)
        .expect("audited");
    assert_eq!(created.actor, "setup");
    assert_eq!(created.source.as_deref(), Some("127.0.0.1"));

    // A second use is refused, and the link is dead.
    let r = c
        .submit(
            &f.clone()
                .with("user", "second")
                .with("password", password)
                .with("password2", password),
        )
        .await;
    r.expect(403);
    c.get(&format!("/setup?token={token}")).await.expect(403);
    assert_eq!(env.store.users().list().await.unwrap().len(), 1);
    assert!(!c
        .page("/login")
        .await
        .contains("No administrator exists yet"));

    c.login_ok("root", password).await;
    let home = c.page("/control").await;
    assert!(home.contains("root"), "{home}");
    server.stop().await;
}

// ---- login ----

#[tokio::test]
async fn login_failure_success_and_logout_are_answered_and_audited() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut c = server.client();

    c.get("/virtual")
        .await
        .expect_redirect("/login?next=/virtual");
    let page = c.page("/login?next=/virtual").await;
    assert!(c.jar.contains_key("lvsd_login"), "the login form's cookie");
    let f = form(&page, "/login");
    assert_eq!(f.get("next"), Some("/virtual"));
    assert_eq!(f.get("token"), c.jar.get("lvsd_login").map(String::as_str));

    // A wrong password.
    let r = c
        .submit(
            &f.clone()
                .with("user", ADMIN)
                .with("password", "wrong password"),
        )
        .await;
    r.expect(401).expect_text("Wrong user name or password");
    assert!(!r.sets_cookie("lvsd_session"), "{r:?}");
    assert_eq!(input(&r.body, "user"), ADMIN, "the name typed is kept");
    assert!(
        !r.body.contains("wrong password"),
        "the password is not echoed"
    );
    let last = env.audit().await.pop().unwrap();
    assert_eq!(last.action, action::LOGIN_FAILED);
    assert_eq!(last.actor, ADMIN);
    assert_eq!(last.object, "user admin");
    assert_eq!(last.source.as_deref(), Some("127.0.0.1"));

    // An unknown user gets the same answer.
    let f = form(&r.body, "/login");
    let r = c
        .submit(
            &f.clone()
                .with("user", "nobody")
                .with("password", "wrong password"),
        )
        .await;
    r.expect(401).expect_text("Wrong user name or password");

    // The form without its cookie (another browser, or cookies off).
    let mut other = server.client();
    let f = form(&r.body, "/login");
    let r2 = other
        .submit(
            &f.clone()
                .with("user", ADMIN)
                .with("password", ADMIN_PASSWORD),
        )
        .await;
    r2.expect(403).expect_text("The login form expired");
    assert!(!r2.sets_cookie("lvsd_session"));

    // The right password: a session cookie, and on to the page asked for.
    let r = c
        .submit(
            &f.clone()
                .with("user", ADMIN)
                .with("password", ADMIN_PASSWORD),
        )
        .await;
    r.expect_redirect("/virtual");
    let cookie = r.set_cookie("lvsd_session").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not over plain HTTP: {cookie}");
    assert!(r.clears_cookie("lvsd_login"), "{r:?}");
    let token = c.session().unwrap();
    let page = c.page("/virtual").await;
    assert!(page.contains(r#"<a href="/account">admin</a>"#), "{page}");
    assert_eq!(
        input(&page, "csrf"),
        c.csrf(),
        "the pages carry the session's CSRF token"
    );

    // `next` never leaves the site.
    let mut third = server.client();
    let page = third.page("/login?next=//evil.example/").await;
    let f = form(&page, "/login");
    assert_eq!(f.get("next"), Some("/control"));
    let r = third
        .submit(
            &f.with("next", "https://evil.example/")
                .with("user", ADMIN)
                .with("password", ADMIN_PASSWORD),
        )
        .await;
    r.expect_redirect("/control");

    // Logout ends the session in the database, not only in the browser.
    let r = c.post("/logout", &[("csrf", &c.csrf())]).await;
    r.expect_redirect("/login");
    assert!(r.clears_cookie("lvsd_session"), "{r:?}");
    c.get("/control")
        .await
        .expect_redirect("/login?next=/control");
    c.set_cookie("lvsd_session", &token);
    let r = c.get("/control").await;
    r.expect_redirect("/login?next=/control");
    assert!(r.clears_cookie("lvsd_session"));
    // The other session lives on.
    third.page("/control").await;

    let audit = env.audit().await;
    let by_action = |a: &str| audit.iter().filter(|e| e.action == a).count();
    assert_eq!(by_action(action::LOGIN_FAILED), 2);
    assert_eq!(by_action(action::LOGIN), 2);
    assert_eq!(by_action(action::LOGOUT), 1);
    let logout = audit.iter().find(|e| e.action == action::LOGOUT).unwrap();
    assert_eq!(logout.actor, ADMIN);
    assert_eq!(logout.source.as_deref(), Some("127.0.0.1"));
    server.stop().await;
}

#[tokio::test]
async fn logins_are_rate_limited_per_address_and_user() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut c = server.client_from(Ipv4Addr::new(127, 0, 0, 7));
    for i in 0..5 {
        let r = c.login(ADMIN, "wrong password").await;
        assert_eq!(r.status, 401, "attempt {i}: {r:?}");
    }
    let r = c.login(ADMIN, ADMIN_PASSWORD).await;
    r.expect(429).expect_text("Too many login attempts");
    assert!(!r.sets_cookie("lvsd_session"), "{r:?}");
    assert!(c.session().is_none());

    // Five more addresses guess once each: admin's own limit (10 failures) is spent.
    for host in 10..15 {
        let mut g = server.client_from(Ipv4Addr::new(127, 0, 0, host));
        g.login(ADMIN, "another guess").await.expect(401);
    }
    // A guessing address is refused even with the right password…
    let mut guesser = server.client_from(Ipv4Addr::new(127, 0, 0, 10));
    guesser.login(ADMIN, ADMIN_PASSWORD).await.expect(429);
    // …but the real admin, at an address that has not failed, is only slowed.
    let mut elsewhere = server.client_from(Ipv4Addr::new(127, 0, 0, 8));
    let started = std::time::Instant::now();
    elsewhere.login_ok(ADMIN, ADMIN_PASSWORD).await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "not slowed: {:?}",
        started.elapsed()
    );
    // Another user from another address: not limited.
    let mut third = server.client_from(Ipv4Addr::new(127, 0, 0, 9));
    third.login("nobody", "some password").await.expect(401);

    let actions = env.audit_actions().await;
    let count = |act: &str| actions.iter().filter(|a| *a == act).count();
    assert_eq!(count(action::LOGIN_FAILED), 11, "{actions:?}");
    assert_eq!(count(action::LOGIN), 1, "{actions:?}");
    let failed: Vec<_> = env
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == action::LOGIN_FAILED)
        .map(|e| e.source.unwrap_or_default())
        .collect();
    assert_eq!(&failed[..5], &["127.0.0.7"; 5]);
    server.stop().await;
}

#[tokio::test]
async fn login_names_are_bounded_and_next_stays_on_the_site() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;

    // A form larger than a login form is refused before it is read.
    let mut c = server.client_from(Ipv4Addr::new(127, 0, 0, 21));
    let huge = "x".repeat(200 * 1024);
    c.login(&huge, "whatever password").await.expect(413);

    // A long name that fits: refused, and only 64 characters of it are kept.
    let long = format!("{}{}", "a".repeat(64), "b".repeat(5000));
    c.login(&long, "whatever password").await.expect(401);
    let entry = env
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == action::LOGIN_FAILED)
        .expect("the failure is audited");
    assert_eq!(entry.object, format!("user {}…", "a".repeat(64)));
    assert!(entry.actor.len() < 100, "{}", entry.actor);

    // The report's open redirect: the browser drops the tab and reads
    // //evil.example; the login sends it to the monitoring page instead.
    let mut a = server.client_from(Ipv4Addr::new(127, 0, 0, 22));
    for next in [
        "/%09/evil.example/x",
        "/%5Cevil.example",
        "//evil.example",
        "/virtual",
    ] {
        let page = a.page(&format!("/login?next={next}")).await;
        let r = a
            .submit(
                &form(&page, "/login")
                    .with("user", ADMIN)
                    .with("password", ADMIN_PASSWORD),
            )
            .await;
        let want = if next == "/virtual" {
            "/virtual"
        } else {
            "/control"
        };
        r.expect_redirect(want);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_current_password_check_is_rate_limited() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client_from(Ipv4Addr::new(127, 0, 0, 30));
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let page = a.page("/account").await;
    let f = form(&page, "/account");
    let new_pw = "a brand new password";
    let attempt = |current: &'static str| {
        f.clone()
            .with("current", current)
            .with("password", new_pw)
            .with("password2", new_pw)
    };
    for i in 0..5 {
        let r = a.submit(&attempt("a guess")).await;
        assert_eq!(r.status, 422, "guess {i}: {r:?}");
    }
    // Out of attempts: even the right password waits, and nothing changes.
    a.submit(&attempt(ADMIN_PASSWORD))
        .await
        .expect(429)
        .expect_text("Too many attempts");
    a.page("/control").await;
    server.stop().await;
}

// ---- headers, CSRF, roles ----

#[tokio::test]
async fn pages_carry_the_security_headers_and_cookies_their_flags() {
    let env = Env::new().await;
    env.admin().await;
    let mut c = env.oneshot();
    let login = c.get("/login").await;
    assert_security_headers(&login, "login page");
    let login_cookie = login.set_cookie("lvsd_login").unwrap();
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"));
    let r = c.login(ADMIN, ADMIN_PASSWORD).await;
    r.expect(303);
    assert_security_headers(&r, "login redirect");
    let cookie = r.set_cookie("lvsd_session").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(r.header("strict-transport-security"), "");
    for path in [
        "/control",
        "/virtual",
        "/apply",
        "/audit",
        "/no-such-page",
        "/",
    ] {
        let r = c.get(path).await;
        assert_security_headers(&r, path);
        if path != "/static/app.css" {
            assert_eq!(r.header("cache-control"), "no-store", "{path}");
        }
    }
    c.get("/no-such-page").await.expect(404);
    let css = c.get("/static/app.css").await;
    assert_security_headers(&css, "stylesheet");
    let refused = c.post("/global", &[("csrf", "wrong")]).await;
    refused.expect(403);
    assert_security_headers(&refused, "a refusal");

    // Under TLS: Secure cookies and HSTS.
    let env = Env::with(true).await;
    env.admin().await;
    let mut c = env.oneshot();
    let login = c.get("/login").await;
    assert!(login.set_cookie("lvsd_login").unwrap().contains("Secure"));
    assert_eq!(
        login.header("strict-transport-security"),
        "max-age=31536000"
    );
    let r = c.login(ADMIN, ADMIN_PASSWORD).await;
    r.expect(303);
    let cookie = r.set_cookie("lvsd_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    let page = c.get("/control").await;
    page.expect(200);
    assert_eq!(page.header("strict-transport-security"), "max-age=31536000");
}

#[tokio::test]
async fn without_a_metrics_token_metrics_is_an_unknown_page_even_logged_in() {
    let env = Env::new().await;
    let admin = env.admin().await;
    let token = env.session_of(&admin).await;
    let mut c = env.oneshot().with_session(&token);
    let r = c.get("/metrics").await;
    r.expect(404);
    assert!(!r.body.contains("lvs_director_"), "{r:?}");
}

#[tokio::test]
async fn posts_without_the_csrf_token_or_from_another_site_are_refused() {
    let env = Env::new().await;
    let admin = env.admin().await;
    let token = env.session_of(&admin).await;
    let mut c = env.oneshot().with_session(&token);
    let page = c.page("/virtual/new").await;
    let good = form(&page, "/virtual/new")
        .with("name", "web")
        .with("active", "1")
        .with("address", "192.0.2.10")
        .with("address__device", "eth0:1");
    assert_eq!(good.get("csrf"), Some(c.csrf().as_str()));
    let before = fingerprint(&env).await;

    let other_session = web::auth::csrf_token(&"cd".repeat(32));
    type Case<'a> = (&'a str, Form, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("no csrf field", good.clone().without("csrf"), vec![]),
        ("empty csrf", good.clone().with("csrf", ""), vec![]),
        (
            "wrong csrf",
            good.clone().with("csrf", &"0".repeat(32)),
            vec![],
        ),
        (
            "another session's csrf",
            good.clone().with("csrf", &other_session),
            vec![],
        ),
        (
            "Origin of another site",
            good.clone(),
            vec![("origin", "https://evil.example")],
        ),
        ("Origin null", good.clone(), vec![("origin", "null")]),
        (
            "Sec-Fetch-Site cross-site",
            good.clone(),
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "Sec-Fetch-Site same-site",
            good.clone(),
            vec![("sec-fetch-site", "same-site")],
        ),
    ];
    for (what, f, headers) in &cases {
        let r = c.submit_with(f, headers).await;
        assert_eq!(r.status, 403, "{what}: {r:?}");
        assert_eq!(fingerprint(&env).await, before, "{what}: nothing changed");
    }
    // Other forms the same way.
    let apply = c.page("/apply").await;
    let f = form(&apply, "/apply");
    c.submit(&f.clone().without("csrf")).await.expect(403);
    c.submit_with(&f, &[("origin", "https://evil.example")])
        .await
        .expect(403);
    c.post(
        "/users",
        &[
            ("name", "eve"),
            ("role", "admin"),
            ("password", "eve password"),
            ("password2", "eve password"),
        ],
    )
    .await
    .expect(403);
    c.post("/logout", &[]).await.expect(403);
    c.page("/control").await;
    assert_eq!(fingerprint(&env).await, before, "nothing changed");
    assert!(env.in_force().is_none(), "nothing applied");

    // The login form too refuses other sites.
    let mut anon = env.oneshot();
    let page = anon.page("/login").await;
    let f = form(&page, "/login")
        .with("user", ADMIN)
        .with("password", "wrong password");
    anon.submit_with(&f, &[("origin", "https://evil.example")])
        .await
        .expect(403);
    assert_eq!(fingerprint(&env).await, before, "not even audited");

    // The same form from this site goes through: the refusals above were the checks.
    let r = c
        .submit_with(
            &good,
            &[
                ("origin", &format!("http://{HOST}")),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    r.expect(303);
    let snap = env.snapshot().await;
    assert_eq!(snap.virtuals.len(), 1);
    assert_eq!(snap.virtuals[0].virtual_server.item.name, "web");
}

#[tokio::test]
async fn a_viewer_reads_every_page_and_changes_nothing() {
    let env = Env::new().await;
    env.admin().await;
    let ids = seed(&env).await;
    let (vid, rid, rev) = (ids.virtual_id, ids.real_id, ids.revision);
    let (fid, lid) = (ids.floating, ids.local_check);
    let viewer = env.user("olivia", "viewer password", Role::Viewer).await;
    let token = env.session_of(&viewer).await;
    let mut c = env.oneshot().with_session(&token);
    let before = fingerprint(&env).await;

    for path in [
        "/control",
        "/control/live",
        "/global",
        "/redundancy",
        "/virtual",
        &format!("/virtual/{vid}"),
        &format!("/virtual/{vid}/real"),
        &format!("/virtual/{vid}/real/{rid}"),
        &format!("/virtual/{vid}/scripts"),
        "/apply",
        "/history",
        &format!("/history/{rev}"),
        "/extras",
        &format!("/floating/{fid}"),
        &format!("/local-check/{lid}"),
        &format!("/vrrp/{}", ids.vrrp),
        "/users",
        "/audit",
        "/account",
    ] {
        let page = c.page(path).await;
        if path != "/control/live" {
            assert!(
                page.contains(r#"<span class="badge">viewer</span>"#),
                "{path}: marked as a viewer"
            );
        }
    }
    // The pages offer no change.
    let apply = c.page("/apply").await;
    assert!(!apply.contains(r#"name="digest""#), "no Apply form");
    let list = c.page("/virtual").await;
    assert!(!has_form(&list, &format!("/virtual/{vid}/toggle")));
    assert!(!has_form(&list, &format!("/virtual/{vid}/delete")));
    let users = c.page("/users").await;
    assert!(!has_form(&users, "/users"));
    let edit = c.page(&format!("/virtual/{vid}")).await;
    assert!(edit.contains("<fieldset disabled>"), "read-only form");

    let csrf = c.csrf();
    let body = pairs(&tempting_form(&csrf));
    let extras = c.page("/extras").await;
    assert!(!has_form(&extras, &format!("/floating/{fid}/delete")));
    let redundancy = c.page("/redundancy").await;
    assert!(redundancy.contains(">VI_1</a>"), "{redundancy}");
    assert!(!has_form(
        &redundancy,
        &format!("/vrrp/{}/delete", ids.vrrp)
    ));
    for route in ADMIN_POSTS {
        let path = concrete(route, ids);
        let r = c.request(Method::POST, &path, &[], Some(&body)).await;
        assert_eq!(r.status, 403, "POST {path}: {r:?}");
        r.expect_text("viewer role");
    }
    assert_eq!(fingerprint(&env).await, before, "nothing changed");

    // What any user may do: log out.
    c.post("/logout", &[("csrf", &csrf)])
        .await
        .expect_redirect("/login");
}

// ---- GLOBAL SETTINGS and REDUNDANCY ----

#[tokio::test]
async fn global_settings_and_redundancy_are_saved_checked_and_guarded() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;

    let page = a.page("/global").await;
    let f = form(&page, "/global");
    assert!(f.get("row_version").is_some());
    assert_eq!(f.get("network"), Some(""), "unset: the default");
    let r = a
        .submit(
            &f.clone()
                .with("primary", "192.0.2.1")
                .with("network", "direct")
                .with("tcp_timeout", "900"),
        )
        .await;
    r.expect_redirect("/global");
    let g = env.store.global_settings().await.unwrap();
    assert_eq!(g.settings.get("primary").as_deref(), Some("192.0.2.1"));
    assert_eq!(g.settings.get("network").as_deref(), Some("direct"));
    assert_eq!(g.settings.get("tcp_timeout").as_deref(), Some("900"));
    let page = a.follow(&r).await.body;
    let (kind, text) = flash(&page).expect("a message");
    assert_eq!(kind, "ok");
    assert!(text.contains("Global settings saved"), "{text}");
    let f = form(&page, "/global");
    assert_eq!(f.get("primary"), Some("192.0.2.1"));
    assert_eq!(f.get("network"), Some("direct"));

    // Invalid values: 422, the error by the field, the values kept, nothing saved.
    let before = fingerprint(&env).await;
    let r = a
        .submit(
            &f.clone()
                .with("tcp_timeout", "abc")
                .with("smtp_port", "99999999")
                .with("primary", "192.0.2.77"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "tcp_timeout").is_some(), "{r:?}");
    assert!(field_error(&r.body, "smtp_port").is_some(), "{r:?}");
    assert!(field_error(&r.body, "primary").is_none());
    let shown = form(&r.body, "/global");
    assert_eq!(shown.get("tcp_timeout"), Some("abc"));
    assert_eq!(shown.get("smtp_port"), Some("99999999"));
    assert_eq!(shown.get("primary"), Some("192.0.2.77"));
    assert!(r.body.contains(r#"aria-invalid="true""#));
    assert!(form_errors(&r.body).contains("Nothing was saved"));
    assert_eq!(fingerprint(&env).await, before, "nothing saved");

    // An address without its device: refused, and said where.
    let r = a
        .submit(&f.clone().with("nat_router", "192.168.1.254"))
        .await;
    r.expect(422);
    let said = field_error(&r.body, "nat_router").unwrap_or_else(|| panic!("{r:?}"));
    assert!(said.contains("device"), "{said}");
    assert_eq!(fingerprint(&env).await, before, "nothing saved");

    // REDUNDANCY: its own keywords; the global ones stay.
    let page = a.page("/redundancy").await;
    let f = form(&page, "/redundancy");
    let r = a
        .submit(
            &f.clone()
                .with("backup_active", "1")
                .with("backup", "192.0.2.2")
                .with("keepalive", "1")
                .with("deadtime", "4"),
        )
        .await;
    r.expect_redirect("/redundancy");
    let g = env.store.global_settings().await.unwrap();
    assert!(g.settings.backup_active());
    assert_eq!(g.settings.get("backup").as_deref(), Some("192.0.2.2"));
    assert_eq!(g.settings.get("deadtime").as_deref(), Some("4"));
    // The yes/no fields left alone stay unset: their defaults apply (preempt's is 1).
    for untouched in ["preempt", "syncdaemon"] {
        assert_eq!(g.settings.get(untouched), None, "{untouched}");
    }
    assert!(g.settings.preempt());
    assert_eq!(g.settings.get("primary").as_deref(), Some("192.0.2.1"));
    assert_eq!(g.settings.get("network").as_deref(), Some("direct"));
    let before = fingerprint(&env).await;
    let page = a.page("/redundancy").await;
    let r = a
        .submit(&form(&page, "/redundancy").with("heartbeat_port", "99999999"))
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "heartbeat_port").is_some(), "{r:?}");
    assert_eq!(
        form(&r.body, "/redundancy").get("heartbeat_port"),
        Some("99999999")
    );
    assert_eq!(fingerprint(&env).await, before, "nothing saved");

    // Two sessions open the same form: the first save wins, the second is told.
    let mut b = server.client();
    b.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let fa = form(&a.page("/global").await, "/global");
    let fb = form(&b.page("/global").await, "/global");
    assert_eq!(fa.get("row_version"), fb.get("row_version"));
    a.submit(&fa.with("primary", "192.0.2.5"))
        .await
        .expect_redirect("/global");
    let r = b.submit(&fb.with("primary", "192.0.2.6")).await;
    assert!(r.status.is_client_error(), "{r:?}");
    let said = form_errors(&r.body);
    assert!(said.contains("changed by someone else"), "{said}");
    assert_eq!(form(&r.body, "/global").get("primary"), Some("192.0.2.6"));
    let g = env.store.global_settings().await.unwrap();
    assert_eq!(g.settings.get("primary").as_deref(), Some("192.0.2.5"));

    let updates = env
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == action::UPDATE)
        .count();
    assert_eq!(updates, 3, "each save audited once");
    server.stop().await;
}

// ---- VIRTUAL SERVERS ----

#[tokio::test]
async fn virtual_servers_are_created_edited_toggled_and_deleted() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;

    let page = a.page("/virtual/new").await;
    let new = form(&page, "/virtual/new");
    assert_eq!(new.get("row_version"), Some("0"));
    assert_eq!(new.get("port"), Some("80"), "Piranha's defaults");
    assert_eq!(new.get("scheduler"), Some("wlc"));
    assert_eq!(new.get("timeout"), Some("6"));

    // Invalid: nothing created, the errors by their fields, the values kept.
    let r = a
        .submit(
            &new.clone()
                .with("name", "web")
                .with("address", "999.1.2.3")
                .with("address__device", "eth0:1")
                .with("port", "99999999"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "port").is_some(), "{r:?}");
    assert!(field_error(&r.body, "address").is_some(), "{r:?}");
    let shown = form(&r.body, "/virtual/new");
    assert_eq!(shown.get("port"), Some("99999999"));
    assert_eq!(shown.get("address"), Some("999.1.2.3"));
    assert_eq!(shown.get("address__device"), Some("eth0:1"));
    assert_eq!(shown.get("name"), Some("web"));
    assert!(form_errors(&r.body).contains("Nothing was saved"));
    assert!(env.snapshot().await.virtuals.is_empty());
    // An address without a device, and names lvs.cf cannot hold.
    let r = a
        .submit(
            &new.clone()
                .with("name", "web")
                .with("address", "192.0.2.10"),
        )
        .await;
    r.expect(422);
    let said = field_error(&r.body, "address").unwrap_or_else(|| panic!("{r:?}"));
    assert!(said.contains("device"), "{said}");
    for bad in ["", "{", "a\u{1}b"] {
        let r = a
            .submit(
                &new.clone()
                    .with("name", bad)
                    .with("address", "192.0.2.10")
                    .with("address__device", "eth0:1"),
            )
            .await;
        r.expect(422);
        assert!(field_error(&r.body, "name").is_some(), "{bad:?}: {r:?}");
    }
    assert!(env.snapshot().await.virtuals.is_empty());

    // Created.
    let vid = create_virtual(&mut a, "web", "192.0.2.10").await;
    let v = virtual_of(&env, vid).await.unwrap().virtual_server;
    assert_eq!(v.item.name, "web");
    assert_eq!(
        v.item.settings.get("address").as_deref(),
        Some("192.0.2.10 eth0:1")
    );
    assert!(v.item.settings.active());
    assert_eq!(v.item.settings.get("port").as_deref(), Some("80"));
    assert_eq!(v.item.check.get("timeout").as_deref(), Some("6"));
    // The yes/no fields left alone stay unset (not an explicit 0 in lvs.cf).
    for untouched in ["sched_port", "sched_fallback", "one_packet"] {
        assert_eq!(v.item.settings.get(untouched), None, "{untouched}");
    }
    let page = a.page(&format!("/virtual/{vid}/real")).await;
    let (kind, text) = flash(&page).expect("a message");
    assert_eq!(kind, "ok");
    assert!(text.contains("Virtual server web created"), "{text}");

    // A second one with the same name is refused.
    let r = a
        .submit(
            &new.clone()
                .with("name", "web")
                .with("address", "192.0.2.11")
                .with("address__device", "eth0:2"),
        )
        .await;
    r.expect(422);
    let said = field_error(&r.body, "name").unwrap_or_else(|| panic!("{r:?}"));
    assert!(said.contains("duplicate virtual server name"), "{said}");
    assert_eq!(env.snapshot().await.virtuals.len(), 1);

    let list = a.page("/virtual").await;
    assert!(
        list.contains(&format!(r#"<a href="/virtual/{vid}">web</a>"#)),
        "{list}"
    );
    assert!(list.contains("<td>192.0.2.10</td>"));
    assert!(list.contains("<td>eth0:1</td>"));

    // Edited.
    let edit = form(
        &a.page(&format!("/virtual/{vid}")).await,
        &format!("/virtual/{vid}"),
    );
    assert_eq!(edit.get("name"), Some("web"));
    assert_eq!(edit.get("address"), Some("192.0.2.10"));
    assert_eq!(edit.get("address__device"), Some("eth0:1"));
    let r = a
        .submit(&edit.clone().with("scheduler", "rr").with("port", "8080"))
        .await;
    r.expect_redirect(&format!("/virtual/{vid}"));
    let v = virtual_of(&env, vid).await.unwrap().virtual_server;
    assert_eq!(v.item.settings.get("scheduler").as_deref(), Some("rr"));
    assert_eq!(v.item.settings.get("port").as_deref(), Some("8080"));
    assert_eq!(v.version, 2);

    // Invalid edit.
    let before = fingerprint(&env).await;
    let edit = form(
        &a.page(&format!("/virtual/{vid}")).await,
        &format!("/virtual/{vid}"),
    );
    let r = a
        .submit(
            &edit
                .clone()
                .with("port", "99999999")
                .with("address", "bad address"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "port").is_some(), "{r:?}");
    assert!(field_error(&r.body, "address").is_some(), "{r:?}");
    assert_eq!(
        form(&r.body, &format!("/virtual/{vid}")).get("port"),
        Some("99999999")
    );
    assert_eq!(fingerprint(&env).await, before, "nothing saved");

    // Two sessions edit at once.
    let mut b = server.client();
    b.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let fa = form(
        &a.page(&format!("/virtual/{vid}")).await,
        &format!("/virtual/{vid}"),
    );
    let fb = form(
        &b.page(&format!("/virtual/{vid}")).await,
        &format!("/virtual/{vid}"),
    );
    a.submit(&fa.with("port", "8081"))
        .await
        .expect_redirect(&format!("/virtual/{vid}"));
    let r = b.submit(&fb.with("port", "8082")).await;
    assert!(r.status.is_client_error(), "{r:?}");
    assert!(
        form_errors(&r.body).contains("changed by someone else"),
        "{r:?}"
    );
    assert_eq!(
        form(&r.body, &format!("/virtual/{vid}")).get("port"),
        Some("8082"),
        "what was typed is kept"
    );
    let v = virtual_of(&env, vid).await.unwrap().virtual_server;
    assert_eq!(v.item.settings.get("port").as_deref(), Some("8081"));

    // Toggled from the list, and a stale toggle refused.
    let list = a.page("/virtual").await;
    let toggle = form(&list, &format!("/virtual/{vid}/toggle"));
    a.submit(&toggle).await.expect_redirect("/virtual");
    assert!(!virtual_of(&env, vid)
        .await
        .unwrap()
        .virtual_server
        .item
        .settings
        .active());
    let r = a.submit(&toggle).await;
    r.expect_redirect("/virtual");
    let page = a.follow(&r).await.body;
    let (kind, text) = flash(&page).unwrap();
    assert_eq!(kind, "error");
    assert!(text.contains("changed by someone else"), "{text}");
    assert!(!virtual_of(&env, vid)
        .await
        .unwrap()
        .virtual_server
        .item
        .settings
        .active());
    let toggle = form(&page, &format!("/virtual/{vid}/toggle"));
    a.submit(&toggle).await.expect_redirect("/virtual");
    assert!(virtual_of(&env, vid)
        .await
        .unwrap()
        .virtual_server
        .item
        .settings
        .active());

    // Deleted (a stale form first).
    let stale_delete = form(&list, &format!("/virtual/{vid}/delete"));
    a.submit(&stale_delete).await.expect_redirect("/virtual");
    assert!(virtual_of(&env, vid).await.is_some());
    let list = a.page("/virtual").await;
    a.submit(&form(&list, &format!("/virtual/{vid}/delete")))
        .await
        .expect_redirect("/virtual");
    assert!(virtual_of(&env, vid).await.is_none());
    a.get(&format!("/virtual/{vid}")).await.expect(404);

    let audit = env.audit().await;
    let on_web = |act: &str| {
        audit
            .iter()
            .filter(|e| e.action == act && e.object == "virtual web")
            .count()
    };
    assert_eq!(on_web(action::CREATE), 1);
    assert!(on_web(action::UPDATE) >= 4, "{audit:#?}");
    assert_eq!(on_web(action::DELETE), 1);
    assert!(audit
        .iter()
        .filter(|e| e.object == "virtual web")
        .all(|e| e.actor == ADMIN && e.source.as_deref() == Some("127.0.0.1")));
    server.stop().await;
}

#[tokio::test]
async fn real_servers_and_monitoring_scripts_are_edited_in_their_panels() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let vid = create_virtual(&mut a, "web", "192.0.2.10").await;
    let list = a.page(&format!("/virtual/{vid}/real")).await;
    assert!(list.contains("No real server yet."));
    assert!(list.contains("The supervisor is not reachable"));

    // Invalid.
    let new_action = format!("/virtual/{vid}/real/new");
    let new = form(&a.page(&new_action).await, &new_action);
    assert_eq!(new.get("weight"), Some("1"));
    let r = a
        .submit(
            &new.clone()
                .with("name", "rs1")
                .with("address", "10.0.0.11")
                .with("port", "99999999")
                .with("weight", "heavy"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "port").is_some(), "{r:?}");
    assert!(field_error(&r.body, "weight").is_some(), "{r:?}");
    let shown = form(&r.body, &new_action);
    assert_eq!(shown.get("port"), Some("99999999"));
    assert_eq!(shown.get("weight"), Some("heavy"));
    assert_eq!(shown.get("name"), Some("rs1"));
    let r = a
        .submit(
            &new.clone()
                .with("name", "rs1")
                .with("address", "not an address"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "address").is_some(), "{r:?}");
    assert!(virtual_of(&env, vid).await.unwrap().servers.is_empty());

    // Created, twice; a duplicate name refused.
    let rs1 = create_real(&mut a, &env, vid, "rs1", "10.0.0.11", "5").await;
    let rs2 = create_real(&mut a, &env, vid, "rs2", "10.0.0.12", "1").await;
    let r1 = real(&env, vid, "rs1").await.unwrap();
    assert_eq!(
        r1.item.settings.get("address").as_deref(),
        Some("10.0.0.11")
    );
    assert_eq!(r1.item.settings.weight(), 5);
    assert!(r1.item.settings.active());
    let r = a
        .submit(&new.clone().with("name", "rs1").with("address", "10.0.0.13"))
        .await;
    r.expect(422);
    assert_eq!(virtual_of(&env, vid).await.unwrap().servers.len(), 2);
    let list = a.page(&format!("/virtual/{vid}/real")).await;
    assert!(
        list.contains("<td>10.0.0.11</td><td>80</td><td>5</td>"),
        "{list}"
    );

    // Edited; an invalid edit saves nothing.
    let edit_action = format!("/virtual/{vid}/real/{rs1}");
    let edit = form(&a.page(&edit_action).await, &edit_action);
    assert_eq!(edit.get("weight"), Some("5"));
    a.submit(&edit.clone().with("weight", "7"))
        .await
        .expect_redirect(&format!("/virtual/{vid}/real"));
    assert_eq!(
        real(&env, vid, "rs1").await.unwrap().item.settings.weight(),
        7
    );
    let before = fingerprint(&env).await;
    let edit = form(&a.page(&edit_action).await, &edit_action);
    let r = a.submit(&edit.clone().with("weight", "99999999999")).await;
    r.expect(422);
    assert!(field_error(&r.body, "weight").is_some(), "{r:?}");
    assert_eq!(
        form(&r.body, &edit_action).get("weight"),
        Some("99999999999")
    );
    assert_eq!(fingerprint(&env).await, before);

    // Toggled and deleted from the list.
    let list = a.page(&format!("/virtual/{vid}/real")).await;
    a.submit(&form(&list, &format!("/virtual/{vid}/real/{rs1}/toggle")))
        .await
        .expect_redirect(&format!("/virtual/{vid}/real"));
    assert!(!real(&env, vid, "rs1").await.unwrap().item.settings.active());
    a.submit(&form(&list, &format!("/virtual/{vid}/real/{rs2}/delete")))
        .await
        .expect_redirect(&format!("/virtual/{vid}/real"));
    assert!(real(&env, vid, "rs2").await.is_none());
    a.get(&format!("/virtual/{vid}/real/{rs2}"))
        .await
        .expect(404);

    // A name with HTML in it: if lvs.cf can hold it, every page shows it escaped.
    let script = "<script>alert(1)</script>";
    let r = a
        .submit(
            &new.clone()
                .with("name", script)
                .with("address", "10.0.0.14"),
        )
        .await;
    assert!(!r.body.contains(script), "raw HTML in the answer: {r:?}");
    if r.status == 303 {
        let xss = real(&env, vid, script).await.expect("stored as typed");
        let pages = [
            a.page(&format!("/virtual/{vid}/real")).await,
            a.page(&format!("/virtual/{vid}/real/{}", xss.id)).await,
            a.page("/apply").await,
            a.page("/audit").await,
            a.page("/control").await,
        ];
        for page in &pages {
            assert!(!page.contains(script), "raw HTML in a page:\n{page}");
            assert!(
                !page.contains("<script>alert"),
                "raw HTML in a page:\n{page}"
            );
        }
        let list = &pages[0];
        assert!(
            list.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || list.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "shown escaped:\n{list}"
        );
        let edit = form(&pages[1], &format!("/virtual/{vid}/real/{}", xss.id));
        assert_eq!(edit.get("name"), Some(script), "the field reads back");
    } else {
        r.expect(422);
        assert!(real(&env, vid, script).await.is_none());
    }

    // MONITORING SCRIPTS.
    let scripts_action = format!("/virtual/{vid}/scripts");
    let page = a.page(&scripts_action).await;
    let f = form(&page, &scripts_action);
    assert_eq!(f.get("send"), Some("GET / HTTP/1.0\\r\\n\\r\\n"));
    assert_eq!(f.get("expect"), Some("HTTP"));
    a.submit(
        &f.clone()
            .with("check", "http")
            .with("check_path", "/health")
            .with("check_interval", "5")
            .with("expect", "HTTP/1.1 200"),
    )
    .await
    .expect_redirect(&scripts_action);
    let check = check_of(&env, vid).await;
    assert_eq!(check.get("check").as_deref(), Some("http"));
    assert_eq!(web::form::display(&check, "check_path"), "/health");
    assert_eq!(check.get("check_interval").as_deref(), Some("5"));
    assert_eq!(
        check.expect.as_ref().map(|e| e.0.as_str()),
        Some("HTTP/1.1 200")
    );
    assert_eq!(
        check.send.as_ref().map(|e| e.0.as_str()),
        Some("GET / HTTP/1.0\r\n\r\n")
    );
    // "Blank send", as the button does.
    let f = form(&a.page(&scripts_action).await, &scripts_action);
    a.submit(&f.clone().with("blank_send", "1"))
        .await
        .expect_redirect(&scripts_action);
    let check = check_of(&env, vid).await;
    assert!(check.send.is_none());
    assert_eq!(web::form::display(&check, "check_path"), "/health");
    // Several pages (keepalived's url blocks).
    let f = form(&a.page(&scripts_action).await, &scripts_action);
    a.submit(&f.clone().with(
        "check_url",
        "[ /health \"/index.html status 200 digest 0EE5DBFCBA889EC228D56F564A880D56\" ]",
    ))
    .await
    .expect_redirect(&scripts_action);
    let check = check_of(&env, vid).await;
    assert_eq!(
        check.get("check_url").as_deref(),
        Some("[ /health \"/index.html status 200 digest 0ee5dbfcba889ec228d56f564a880d56\" ]")
    );
    let before = fingerprint(&env).await;
    let f = form(&a.page(&scripts_action).await, &scripts_action);
    let r = a
        .submit(&f.clone().with("check_url", "[ \"/a digest nope\" ]"))
        .await;
    r.expect(422);
    let e = field_error(&r.body, "check_url").unwrap_or_default();
    assert!(e.contains("not an MD5 digest"), "{e}");
    assert_eq!(fingerprint(&env).await, before);
    // Invalid.
    let before = fingerprint(&env).await;
    let f = form(&a.page(&scripts_action).await, &scripts_action);
    let r = a
        .submit(&f.clone().with("check_port", "99999999").with("fall", "-1"))
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "check_port").is_some(), "{r:?}");
    assert!(field_error(&r.body, "fall").is_some(), "{r:?}");
    assert_eq!(
        form(&r.body, &scripts_action).get("check_port"),
        Some("99999999")
    );
    assert_eq!(fingerprint(&env).await, before);

    let audit = env.audit().await;
    assert!(audit
        .iter()
        .any(|e| e.action == action::CREATE && e.object == "virtual web server rs1"));
    assert!(audit
        .iter()
        .any(|e| e.action == action::DELETE && e.object == "virtual web server rs2"));
    server.stop().await;
}

// ---- floating addresses and local checks ----

#[tokio::test]
async fn floating_addresses_and_local_checks_are_created_edited_and_deleted() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let page = a.page("/extras").await;
    assert!(page.contains(r#"href="/floating/new""#), "{page}");

    // A floating address: invalid first, then created, edited, deleted.
    let new = form(&a.page("/floating/new").await, "/floating/new");
    let r = a
        .submit(
            &new.clone()
                .with("name", "nginx")
                .with("active", "1")
                .with("address", "203.0.113.500")
                .with("address__device", "eth0")
                .with("vip_nmask", "33"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "address").is_some(), "{r:?}");
    let shown = form(&r.body, "/floating/new");
    assert_eq!(shown.get("address"), Some("203.0.113.500"));
    assert_eq!(shown.get("vip_nmask"), Some("33"));
    let r = a
        .submit(
            &new.clone()
                .with("name", "nginx")
                .with("address", "203.0.113.50"),
        )
        .await;
    r.expect(422);
    assert!(
        field_error(&r.body, "address").is_some_and(|e| e.contains("device")),
        "{r:?}"
    );
    assert!(env.snapshot().await.floating.is_empty());
    let r = a
        .submit(
            &new.clone()
                .with("name", "nginx")
                .with("active", "1")
                .with("address", "203.0.113.50")
                .with("address__device", "eth0")
                .with("vip_nmask", "24"),
        )
        .await;
    r.expect_redirect("/extras");
    let fl = env.snapshot().await.floating;
    assert_eq!(fl.len(), 1);
    let fid = fl[0].id;
    assert_eq!(fl[0].item.name, "nginx");
    assert_eq!(
        fl[0].item.settings.get("address").as_deref(),
        Some("203.0.113.50 eth0")
    );
    let page = a.follow(&r).await.body;
    assert!(flash(&page)
        .unwrap()
        .1
        .contains("Floating address nginx created"));
    assert!(page.contains(r#"<a href="/floating/"#) && page.contains(">nginx</a>"));
    // A duplicate name.
    let r = a
        .submit(
            &new.clone()
                .with("name", "nginx")
                .with("address", "203.0.113.51")
                .with("address__device", "eth0"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "name").is_some(), "{r:?}");
    assert_eq!(env.snapshot().await.floating.len(), 1);
    // Edited, and a stale form refused.
    let edit_action = format!("/floating/{fid}");
    let edit = form(&a.page(&edit_action).await, &edit_action);
    assert_eq!(edit.get("address__device"), Some("eth0"));
    a.submit(&edit.clone().with("address__device", "eth1"))
        .await
        .expect_redirect("/extras");
    let fl = env.snapshot().await.floating;
    assert_eq!(
        fl[0].item.settings.get("address").as_deref(),
        Some("203.0.113.50 eth1")
    );
    let r = a
        .submit(&edit.clone().with("address__device", "eth2"))
        .await;
    assert!(r.status.is_client_error(), "{r:?}");
    assert!(
        form_errors(&r.body).contains("changed by someone else"),
        "{r:?}"
    );
    assert_eq!(env.snapshot().await.floating, fl);

    // A local check.
    let new = form(&a.page("/local-check/new").await, "/local-check/new");
    let r = a
        .submit(
            &new.clone()
                .with("name", "nginx_alive")
                .with("port", "99999999")
                .with("check", "http"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "port").is_some(), "{r:?}");
    assert_eq!(
        form(&r.body, "/local-check/new").get("port"),
        Some("99999999")
    );
    assert!(env.snapshot().await.local_checks.is_empty());
    a.submit(
        &new.clone()
            .with("name", "nginx_alive")
            .with("active", "1")
            .with("port", "80")
            .with("check", "http")
            .with("check_path", "/nginx_status"),
    )
    .await
    .expect_redirect("/extras");
    let lc = env.snapshot().await.local_checks;
    assert_eq!(lc.len(), 1);
    let lid = lc[0].id;
    assert_eq!(lc[0].item.settings.get("port").as_deref(), Some("80"));
    assert_eq!(lc[0].item.check.get("check").as_deref(), Some("http"));
    let edit_action = format!("/local-check/{lid}");
    let edit = form(&a.page(&edit_action).await, &edit_action);
    a.submit(&edit.with("fall", "3"))
        .await
        .expect_redirect("/extras");
    let lc = env.snapshot().await.local_checks;
    assert_eq!(lc[0].item.check.get("fall").as_deref(), Some("3"));

    // Both are in the file Apply writes.
    let apply = a.page("/apply").await;
    assert!(apply.contains("floating nginx {"), "{apply}");
    assert!(apply.contains("local_check nginx_alive {"), "{apply}");

    // Deleted from the list.
    let page = a.page("/extras").await;
    a.submit(&form(&page, &format!("/floating/{fid}/delete")))
        .await
        .expect_redirect("/extras");
    a.submit(&form(&page, &format!("/local-check/{lid}/delete")))
        .await
        .expect_redirect("/extras");
    let snap = env.snapshot().await;
    assert!(snap.floating.is_empty() && snap.local_checks.is_empty());
    a.get(&format!("/floating/{fid}")).await.expect(404);

    let audit = env.audit().await;
    for (act, object) in [
        (action::CREATE, "floating nginx"),
        (action::UPDATE, "floating nginx"),
        (action::DELETE, "floating nginx"),
        (action::CREATE, "local_check nginx_alive"),
        (action::DELETE, "local_check nginx_alive"),
    ] {
        assert!(
            audit.iter().any(|e| e.action == act && e.object == object),
            "{act} {object} in {audit:#?}"
        );
    }
    server.stop().await;
}

// ---- VRRP instances (the Redundancy page) ----

#[tokio::test]
async fn vrrp_instances_are_created_edited_refused_and_deleted_on_the_redundancy_page() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let page = a.page("/redundancy").await;
    assert!(page.contains(r#"href="/vrrp/new""#), "{page}");
    assert!(page.contains("The directors speak the heartbeat"), "{page}");

    let new = form(&a.page("/vrrp/new").await, "/vrrp/new");
    // Out-of-range values are said at their fields, and nothing is stored.
    let r = a
        .submit(
            &new.clone()
                .with("name", "VI_web")
                .with("active", "1")
                .with("interface", "eth0")
                .with("virtual_router_id", "300")
                .with("virtual_ipaddress", "[ 192.0.2.300/24 ]"),
        )
        .await;
    r.expect(422);
    assert!(field_error(&r.body, "virtual_router_id").is_some(), "{r:?}");
    assert!(
        field_error(&r.body, "virtual_ipaddress").is_some_and(|e| e.contains("192.0.2.300")),
        "{r:?}"
    );
    assert_eq!(
        form(&r.body, "/vrrp/new").get("virtual_router_id"),
        Some("300")
    );
    assert!(env.snapshot().await.vrrp.is_empty());
    // What validation refuses (version 2 whole seconds; a local check that does not
    // exist) is said at the field too.
    let r = a
        .submit(
            &new.clone()
                .with("name", "VI_web")
                .with("active", "1")
                .with("interface", "eth0")
                .with("virtual_router_id", "51")
                .with("advert_int", "0.5")
                .with("version", "2")
                .with("track_script", "[ chk_missing ]")
                .with("virtual_ipaddress", "[ 192.0.2.10/24 ]"),
        )
        .await;
    r.expect(422);
    assert!(
        field_error(&r.body, "advert_int").is_some_and(|e| e.contains("whole seconds")),
        "{r:?}"
    );
    assert!(
        field_error(&r.body, "track_script").is_some_and(|e| e.contains("chk_missing")),
        "{r:?}"
    );
    assert!(env.snapshot().await.vrrp.is_empty());
    // Created.
    let r = a
        .submit(
            &new.clone()
                .with("name", "VI_web")
                .with("active", "1")
                .with("interface", "eth0")
                .with("virtual_router_id", "51")
                .with("priority", "150")
                .with("advert_int", "0.1")
                .with("version", "3")
                .with(
                    "virtual_ipaddress",
                    r#"[ 192.0.2.10/24 "192.0.2.11/24 dev eth1 label eth1:api" ]"#,
                ),
        )
        .await;
    r.expect_redirect("/redundancy");
    let v = env.snapshot().await.vrrp;
    assert_eq!(v.len(), 1);
    let id = v[0].id;
    assert_eq!(v[0].item.settings.priority, Some(150));
    let page = a.follow(&r).await.body;
    assert!(flash(&page)
        .unwrap()
        .1
        .contains("VRRP instance VI_web created"));
    assert!(page.contains("The directors speak VRRP"), "{page}");
    assert!(
        page.contains("router id 51 on eth0, priority 150"),
        "{page}"
    );
    // Edited; a refused edit keeps what was saved.
    let action = format!("/vrrp/{id}");
    let edit = form(&a.page(&action).await, &action);
    assert_eq!(
        edit.get("virtual_ipaddress"),
        Some(r#"[ 192.0.2.10/24 "192.0.2.11/24 dev eth1 label eth1:api" ]"#)
    );
    let r = a.submit(&edit.clone().with("priority", "0")).await;
    r.expect(422);
    assert!(field_error(&r.body, "priority").is_some(), "{r:?}");
    assert_eq!(
        env.snapshot().await.vrrp,
        v,
        "the refused edit changed nothing"
    );
    a.submit(&edit.clone().with("priority", "120"))
        .await
        .expect_redirect("/redundancy");
    assert_eq!(
        env.snapshot().await.vrrp[0].item.settings.priority,
        Some(120)
    );
    // In the file Apply writes, and it reads back.
    let apply = a.page("/apply").await;
    assert!(apply.contains("vrrp VI_web {"), "{apply}");
    assert!(apply.contains("priority = 120"), "{apply}");
    // Deleted.
    let page = a.page("/redundancy").await;
    a.submit(&form(&page, &format!("/vrrp/{id}/delete")))
        .await
        .expect_redirect("/redundancy");
    assert!(env.snapshot().await.vrrp.is_empty());
    a.get(&format!("/vrrp/{id}")).await.expect(404);
    let audit = env.audit().await;
    for act in [action::CREATE, action::UPDATE, action::DELETE] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == act && e.object == "vrrp VI_web"),
            "{act} in {audit:#?}"
        );
    }
    server.stop().await;
}

// ---- Apply, history, rollback ----

/// Another process holds the database's write lock for longer than the busy timeout:
/// Apply says that nothing was applied and why, an edit is answered 503 saying the
/// database is locked; neither writes anything, and both go through once the lock is
/// gone.
#[tokio::test]
async fn apply_and_edits_on_a_locked_database_say_so_and_change_nothing() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let vid = create_virtual(&mut a, "web", "192.0.2.10").await;
    let rs1 = create_real(&mut a, &env, vid, "rs1", "10.0.0.11", "5").await;
    let apply = form(&a.page("/apply").await, "/apply");
    let edit_action = format!("/virtual/{vid}/real/{rs1}");
    let edit = form(&a.page(&edit_action).await, &edit_action);

    let url = format!("sqlite://{}", env.store.path().display());
    let mut lock: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut lock, "BEGIN IMMEDIATE")
        .await
        .unwrap();
    let r = a
        .submit(&apply.clone().with("comment", "while locked"))
        .await;
    r.expect(409).expect_text(
        "Nothing was applied: the configuration database could not record the revision",
    );
    assert!(r.body.contains("locked"), "{}", r.body);
    assert!(env.in_force().is_none(), "no lvs.cf written");
    let r = a.submit(&edit.clone().with("weight", "9")).await;
    r.expect(503)
        .expect_text("The database is locked by another process");
    sqlx::Executor::execute(&mut lock, "ROLLBACK")
        .await
        .unwrap();
    drop(lock);

    assert!(env.store.revisions().latest().await.unwrap().is_none());
    assert_eq!(
        real(&env, vid, "rs1").await.unwrap().item.settings.weight(),
        5,
        "the edit was not saved"
    );
    a.submit(&edit.with("weight", "9")).await.expect(303);
    let apply = form(&a.page("/apply").await, "/apply");
    a.submit(&apply.with("comment", "after"))
        .await
        .expect_redirect("/apply");
    assert!(env.in_force().unwrap().contains("weight = 9"));
}

#[tokio::test]
async fn apply_writes_lvs_cf_and_history_rolls_back() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let vid = create_virtual(&mut a, "web", "192.0.2.10").await;
    let rs1 = create_real(&mut a, &env, vid, "rs1", "10.0.0.11", "5").await;
    assert!(
        a.page("/control")
            .await
            .contains(r#"<span class="badge" title="changes not applied yet">pending</span>"#),
        "the pending marker"
    );

    let page = a.page("/apply").await;
    assert!(page.contains("(does not exist yet)"), "{page}");
    assert!(page.contains("Pending changes (serial 1)"), "{page}");
    assert!(
        page.contains(r#"<span class="add">+virtual web {</span>"#),
        "{page}"
    );
    let apply = form(&page, "/apply");
    let digest = apply.get("digest").unwrap().to_string();
    assert_eq!(digest.len(), 32);

    // A stale digest writes nothing.
    let r = a
        .post(
            "/apply",
            &[("csrf", &a.csrf()), ("digest", &"0".repeat(32))],
        )
        .await;
    r.expect(409).expect_text("nothing was written");
    assert!(env.in_force().is_none());
    assert!(env.store.revisions().latest().await.unwrap().is_none());

    // Applied.
    let r = a.submit(&apply.clone().with("comment", "first")).await;
    r.expect_redirect("/apply");
    let text = env.in_force().expect("lvs.cf written");
    let parsed = parse(&text).expect("lvs.cf reads back").config;
    assert_eq!(parsed.global.serial_no, Some(1));
    assert_eq!(parsed.virtuals.len(), 1);
    assert_eq!(parsed.virtuals[0].name, "web");
    assert_eq!(
        parsed.virtuals[0].settings.get("address").as_deref(),
        Some("192.0.2.10 eth0:1")
    );
    assert_eq!(parsed.virtuals[0].servers[0].name, "rs1");
    assert_eq!(parsed.virtuals[0].servers[0].settings.weight(), 5);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.lvs_cf())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640, "lvs.cf is not world-readable");
        let left: Vec<_> = std::fs::read_dir(env.lvs_cf().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["lvs.cf"], "no temporary file left behind");
    }
    let rev1 = env.store.revisions().latest().await.unwrap().unwrap();
    assert_eq!(rev1.info.serial_no, 1);
    assert_eq!(rev1.info.comment, "first");
    assert_eq!(rev1.info.applied_by, ADMIN);
    assert_eq!(lvs_director::config::whole::with_ends(&rev1.text), text);
    assert!(
        text.starts_with(lvs_director::config::whole::FIRST_LINE),
        "{text}"
    );
    let page = a.follow(&r).await.body;
    let (_, said) = flash(&page).expect("what became of it");
    assert!(said.contains("Revision 1 (serial 1) written to"), "{said}");
    assert!(said.contains("The supervisor is not running"), "{said}");
    assert!(page.contains("No pending changes"), "{page}");
    assert!(!a.page("/control").await.contains("changes not applied yet"));

    // The preview goes stale when the configuration changes under it.
    let stale = form(&a.page("/apply").await, "/apply");
    let edit_action = format!("/virtual/{vid}/real/{rs1}");
    let edit = form(&a.page(&edit_action).await, &edit_action);
    a.submit(&edit.with("weight", "9")).await.expect(303);
    let r = a.submit(&stale).await;
    r.expect(409).expect_text("changed since the preview");
    assert_eq!(
        env.in_force().as_deref(),
        Some(text.as_str()),
        "nothing written"
    );
    assert_eq!(
        env.store
            .revisions()
            .latest()
            .await
            .unwrap()
            .unwrap()
            .info
            .id,
        1
    );
    // …and the new preview is shown instead.
    assert!(
        diff_lines(&r.body, "add").contains(&"weight = 9".to_string()),
        "{r:?}"
    );
    assert!(diff_lines(&r.body, "del").contains(&"weight = 5".to_string()));
    let page = a.page("/apply").await;
    assert!(page.contains("Pending changes (serial 2)"), "{page}");
    assert!(page.contains("weight = 9"));
    // A mode set by hand is not carried over (a set-user-ID bit least of all).
    let mode = || {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(env.lvs_cf())
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(env.lvs_cf(), std::fs::Permissions::from_mode(0o4755)).unwrap();
    }
    assert_eq!(mode(), 0o4755);
    a.submit(&form(&page, "/apply"))
        .await
        .expect_redirect("/apply");
    assert_eq!(mode(), 0o640);
    let text2 = env.in_force().unwrap();
    let parsed = parse(&text2).unwrap().config;
    assert_eq!(parsed.global.serial_no, Some(2));
    assert_eq!(parsed.virtuals[0].servers[0].settings.weight(), 9);

    // History.
    let history = a.page("/history").await;
    assert!(
        history.contains(r#"<a href="/history/1">1</a>"#),
        "{history}"
    );
    assert!(
        history.contains(r#"<a href="/history/2">2</a>"#),
        "{history}"
    );
    assert!(history.contains("<td>first</td>"));
    let rev_page = a.page("/history/1").await;
    assert!(rev_page.contains("Serial 1, applied"), "{rev_page}");
    assert!(rev_page.contains("weight = 5"));
    let rev_page2 = a.page("/history/2").await;
    assert!(rev_page2.contains("since revision 1"));
    a.get("/history/99").await.expect(404);

    // Rollback to revision 1: loaded into the store, then through Apply.
    let r = a.submit(&form(&rev_page, "/history/1/rollback")).await;
    r.expect_redirect("/apply");
    assert_eq!(
        real(&env, vid_after_rollback(&env).await, "rs1")
            .await
            .unwrap()
            .item
            .settings
            .weight(),
        5
    );
    assert_eq!(
        env.in_force().as_deref(),
        Some(text2.as_str()),
        "not in force yet"
    );
    let page = a.follow(&r).await.body;
    let (_, said) = flash(&page).unwrap();
    assert!(said.contains("Revision 1 (serial 1) loaded"), "{said}");
    assert!(page.contains("Pending changes (serial 3)"), "{page}");
    assert!(diff_lines(&page, "add").contains(&"weight = 5".to_string()));
    assert!(diff_lines(&page, "del").contains(&"weight = 9".to_string()));
    a.submit(&form(&page, "/apply"))
        .await
        .expect_redirect("/apply");
    let text3 = env.in_force().unwrap();
    let parsed = parse(&text3).unwrap().config;
    assert_eq!(parsed.global.serial_no, Some(3));
    assert_eq!(parsed.virtuals[0].servers[0].settings.weight(), 5);
    assert_eq!(
        env.store
            .revisions()
            .latest()
            .await
            .unwrap()
            .unwrap()
            .info
            .serial_no,
        3
    );

    let actions = env.audit_actions().await;
    for wanted in [
        action::LOGIN,
        action::CREATE,
        action::UPDATE,
        action::APPLY,
        action::REPLACE,
        "reload",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} in {actions:?}"
        );
    }
    assert_eq!(actions.iter().filter(|a| *a == action::APPLY).count(), 3);
    assert_eq!(actions.iter().filter(|a| *a == "reload").count(), 3);

    a.post("/logout", &[("csrf", &a.csrf())])
        .await
        .expect_redirect("/login");
    assert_eq!(
        env.audit_actions().await.last().map(String::as_str),
        Some(action::LOGOUT)
    );
    server.stop().await;
}

/// A name is checked where it is typed by the rule the parser reads block names with:
/// `=web` (once saved, then neither exported nor applied: a 500) is written quoted and
/// applied; a name no quoting can write back is refused at its field.
#[tokio::test]
async fn block_names_are_checked_at_their_field_and_every_saved_one_applies() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;

    let page = a.page("/virtual/new").await;
    let bad = form(&page, "/virtual/new")
        .with("name", "say \"it's\"")
        .with("active", "1")
        .with("address", "192.0.2.10")
        .with("address__device", "eth0");
    let r = a.submit(&bad).await;
    r.expect(422)
        .expect_text("the name cannot be quoted so that it reads back");
    assert!(env.snapshot().await.virtuals.is_empty(), "nothing saved");

    let vid = create_virtual(&mut a, "=web", "192.0.2.10").await;
    create_real(&mut a, &env, vid, "=rs1", "10.0.0.11", "1").await;
    let page = a.page("/apply").await;
    assert!(!page.contains("cannot be applied"), "{page}");
    let r = a.submit(&form(&page, "/apply")).await;
    r.expect_redirect("/apply");
    let text = env.in_force().expect("lvs.cf written");
    assert!(text.contains("virtual \"=web\" {"), "{text}");
    assert!(text.contains("server \"=rs1\" {"), "{text}");
    let parsed = parse(&text).expect("reads back").config;
    assert_eq!(parsed.virtuals[0].name, "=web");
    assert_eq!(parsed.virtuals[0].servers[0].name, "=rs1");
    server.stop().await;
}

/// Commands run as root: the forms refuse any outside the scripts directory, at the
/// field with the rule, and what a command printed (here in the stand-in
/// supervisor's status) is shown to administrators and hidden from viewers.
#[tokio::test]
async fn commands_are_refused_at_their_field_and_their_output_is_for_administrators() {
    use lvs_director::pulse::io::command::shown_output;
    use lvs_director::pulse::logic::control::{EventRecord, LocalCheckStatus, NodeStatus, Status};

    let env = Env::new().await;
    env.admin().await;
    let viewer = env.user("olivia", "viewer password", Role::Viewer).await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;

    let before = fingerprint(&env).await;
    let page = a.page("/global").await;
    let r = a
        .submit(&form(&page, "/global").with(
            "active_cmd",
            "/bin/sh -c 'cat /etc/lvs-director/heartbeat.key'",
        ))
        .await;
    r.expect(422);
    let said = field_error(&r.body, "active_cmd").expect("the error is at the field");
    assert!(
        said.starts_with("/bin/sh is not in the scripts directory: commands run as root")
            && said.contains("an executable in /etc/lvs-director/scripts"),
        "{said}"
    );
    assert_eq!(fingerprint(&env).await, before, "nothing saved");

    let vid = create_virtual(&mut a, "web", "192.0.2.10").await;
    let action = format!("/virtual/{vid}/scripts");
    let scripts = form(&a.page(&action).await, &action);
    let r = a
        .submit(&scripts.clone().with(
            "send_program",
            "/etc/lvs-director/scripts/../../../tmp/check %h",
        ))
        .await;
    r.expect(422);
    let said = field_error(&r.body, "send_program").expect("at the field");
    assert!(said.contains("is not in the scripts directory"), "{said}");

    // What a check program printed, as the supervisor reports it.
    let secret = "KEY=c2VjcmV0LWtleQ";
    let said = format!("exit status 1: {}", shown_output(secret.as_bytes()));
    let status = Status {
        node: NodeStatus {
            name: "lb1".into(),
            role: "fault".into(),
            fault: Some(format!("local check db: {said}")),
            ..NodeStatus::default()
        },
        local_checks: vec![LocalCheckStatus {
            name: "db".into(),
            health: "down".into(),
            last_check: said.clone(),
        }],
        events: vec![EventRecord {
            at_unix_ms: 1,
            subject: "local check db".into(),
            state: "down".into(),
            cause: format!("1 consecutive failed check(s): {said}"),
        }],
        ..Status::default()
    };
    let stand_in = harness::control_stand_in(&env.socket(), move |_| Reply::status(status.clone()));
    let shown = a.page("/control/live").await;
    assert_eq!(
        shown.matches(secret).count(),
        3,
        "fault, local check, event: {shown}"
    );
    let mut v = env.oneshot().with_session(&env.session_of(&viewer).await);
    for path in ["/control/live", "/control"] {
        let r = v.get(path).await;
        r.expect(200);
        assert!(!r.body.contains(secret), "{path}: {}", r.body);
        assert!(
            r.body.contains("exit status 1: [output hidden]"),
            "{path}: {}",
            r.body
        );
    }
    // Administrators still see it after a viewer's view was built.
    assert!(a.page("/control/live").await.contains(secret));
    stand_in.abort();
    server.stop().await;
}

/// The id of the (only) virtual server: a rollback replaces the configuration, ids
/// with it.
async fn vid_after_rollback(env: &Env) -> i64 {
    env.snapshot().await.virtuals[0].virtual_server.id
}

/// A stand-in for the supervisor's control socket: answers reload (from the serial of
/// the file in force), drain and enable; remembers what it was asked.
struct FakePulse {
    asked: Arc<Mutex<Vec<Request>>>,
    reject: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FakePulse {
    fn start(socket: &std::path::Path, lvs_cf: std::path::PathBuf) -> FakePulse {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let reject = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (asked2, reject2) = (asked.clone(), reject.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    continue;
                }
                let reply = match parse_request(&line) {
                    Ok(req) => {
                        asked2.lock().unwrap().push(req.clone());
                        match req {
                            Request::Reload
                                if reject2.load(std::sync::atomic::Ordering::SeqCst) =>
                            {
                                Reply::refused("line 3: this test says no")
                            }
                            // A refused reload comes from a configuration its check
                            // let through (a race, or no check): checks pass here.
                            Request::Check { file } => {
                                let text = std::fs::read_to_string(&file).unwrap_or_default();
                                if text.contains("10.0.0.99") {
                                    Reply::refused("device eth9 does not exist")
                                } else {
                                    Reply::done("can run it")
                                }
                            }
                            Request::Reload => {
                                let text = std::fs::read_to_string(&lvs_cf).unwrap_or_default();
                                Reply::done(format!(
                                    "applied serial {}",
                                    web::publish::serial_of(&text)
                                ))
                            }
                            Request::Drain {
                                virtual_server,
                                server,
                            } => Reply::done(format!("drained {virtual_server}/{server}")),
                            _ => Reply::refused("not served by this test"),
                        }
                    }
                    Err(reply) => reply,
                };
                let mut out = serde_json::to_vec(&reply).unwrap();
                out.push(b'\n');
                let _ = write.write_all(&out).await;
            }
        });
        FakePulse {
            asked,
            reject,
            task,
        }
    }

    fn asked(&self) -> Vec<Request> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for FakePulse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn apply_reports_what_the_supervisor_answered() {
    let env = Env::new().await;
    let pulse = FakePulse::start(&env.socket(), env.lvs_cf());
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let vid = create_virtual(&mut a, "web", "192.0.2.10").await;
    let rs1 = create_real(&mut a, &env, vid, "rs1", "10.0.0.11", "5").await;

    let page = a.page("/apply").await;
    let r = a.submit(&form(&page, "/apply")).await;
    r.expect_redirect("/apply");
    let page = a.follow(&r).await.body;
    let (kind, said) = flash(&page).unwrap();
    assert_eq!(kind, "ok");
    assert!(
        said.contains("The supervisor applied it: applied serial 1"),
        "{said}"
    );
    assert_eq!(
        pulse
            .asked()
            .iter()
            .filter(|r| **r == Request::Reload)
            .count(),
        1
    );
    let reload = env
        .audit()
        .await
        .into_iter()
        .rfind(|e| e.action == "reload")
        .unwrap();
    assert!(reload.after.unwrap().contains("applied serial 1"));

    // A refusal is reported as one.
    pulse
        .reject
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let edit_action = format!("/virtual/{vid}/real/{rs1}");
    let edit = form(&a.page(&edit_action).await, &edit_action);
    a.submit(&edit.with("weight", "6")).await.expect(303);
    let page = a.page("/apply").await;
    let r = a.submit(&form(&page, "/apply")).await;
    let page = a.follow(&r).await.body;
    let (kind, said) = flash(&page).unwrap();
    assert_eq!(kind, "error");
    assert!(said.contains("REJECTED"), "{said}");
    assert!(said.contains("this test says no"), "{said}");

    // What the supervisor says it cannot run is not written at all.
    pulse
        .reject
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let before = std::fs::read_to_string(env.lvs_cf()).unwrap();
    create_real(&mut a, &env, vid, "rs9", "10.0.0.99", "1").await;
    let page = a.page("/apply").await;
    let r = a.submit(&form(&page, "/apply")).await;
    assert_eq!(r.status, 409, "the preview again, with the reason");
    assert!(
        r.body.contains(
            "this director cannot run it: device eth9 does not exist; nothing was written"
        ),
        "{}",
        r.body
    );
    assert_eq!(std::fs::read_to_string(env.lvs_cf()).unwrap(), before);

    // Drain acts on the supervisor at once.
    let r = a
        .post(
            &format!("/virtual/{vid}/real/{rs1}/drain"),
            &[("csrf", &a.csrf())],
        )
        .await;
    r.expect_redirect(&format!("/virtual/{vid}/real"));
    let page = a.follow(&r).await.body;
    let (kind, said) = flash(&page).unwrap();
    assert_eq!((kind.as_str(), said.as_str()), ("ok", "drained web/rs1"));
    assert!(pulse.asked().contains(&Request::Drain {
        virtual_server: "web".into(),
        server: "rs1".into()
    }));
    assert!(env.audit_actions().await.iter().any(|a| a == "drain"));
    server.stop().await;
}

// ---- users ----

#[tokio::test]
async fn users_are_added_given_roles_and_deleted_and_change_their_password() {
    let env = Env::new().await;
    env.admin().await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;

    let page = a.page("/users").await;
    let add = form(&page, "/users");
    let pw = "bob's password";
    let refused = [
        (
            ("bob", "viewer", pw, "other password"),
            "The two passwords differ.",
        ),
        (("bob", "viewer", "short", "short"), "at least 8 characters"),
        (("bad name", "viewer", pw, pw), "user name"),
        ((ADMIN, "viewer", pw, pw), "User admin already exists."),
        (("bob", "root", pw, pw), "unknown role"),
    ];
    for ((name, role, p1, p2), said) in refused {
        let r = a
            .submit(
                &add.clone()
                    .with("name", name)
                    .with("role", role)
                    .with("password", p1)
                    .with("password2", p2),
            )
            .await;
        r.expect(422).expect_text(said);
        assert_eq!(input(&r.body, "name"), name, "the name typed is kept");
    }
    assert_eq!(env.store.users().list().await.unwrap().len(), 1);

    let r = a
        .submit(
            &add.clone()
                .with("name", "bob")
                .with("role", "viewer")
                .with("password", pw)
                .with("password2", pw),
        )
        .await;
    r.expect_redirect("/users");
    let bob = env.store.users().get("bob").await.unwrap().unwrap();
    assert_eq!(bob.role, Role::Viewer);

    let page = a.page("/users").await;
    assert!(page.contains("<td>bob</td><td>viewer</td>"), "{page}");
    a.submit(&form(&page, "/users/bob/role").with("role", "admin"))
        .await
        .expect_redirect("/users");
    assert_eq!(
        env.store.users().get("bob").await.unwrap().unwrap().role,
        Role::Admin
    );
    a.post("/users/bob/role", &[("csrf", &a.csrf()), ("role", "root")])
        .await
        .expect(400);
    a.submit(&form(&page, "/users/bob/role").with("role", "viewer"))
        .await
        .expect_redirect("/users");

    // The last administrator stays one.
    let page = a.page("/users").await;
    let r = a
        .submit(&form(&page, "/users/admin/role").with("role", "viewer"))
        .await;
    let (kind, said) = flash(&a.follow(&r).await.body).unwrap();
    assert_eq!(kind, "error");
    assert!(said.contains("last administrator"), "{said}");
    let r = a.submit(&form(&page, "/users/admin/delete")).await;
    let (kind, _) = flash(&a.follow(&r).await.body).unwrap();
    assert_eq!(kind, "error");
    assert_eq!(
        env.store.users().get(ADMIN).await.unwrap().unwrap().role,
        Role::Admin
    );

    let r = a.submit(&form(&page, "/users/bob/delete")).await;
    r.expect_redirect("/users");
    assert!(env.store.users().get("bob").await.unwrap().is_none());
    a.post("/users/nobody/delete", &[("csrf", &a.csrf())])
        .await
        .expect(303);

    // Own password.
    let page = a.page("/account").await;
    let f = form(&page, "/account");
    let new_pw = "a brand new password";
    let r = a
        .submit(
            &f.clone()
                .with("current", "not my password")
                .with("password", new_pw)
                .with("password2", new_pw),
        )
        .await;
    r.expect(422).expect_text("The current password is wrong.");
    let r = a
        .submit(
            &f.clone()
                .with("current", ADMIN_PASSWORD)
                .with("password", new_pw)
                .with("password2", "something else"),
        )
        .await;
    r.expect(422).expect_text("The two new passwords differ.");
    a.page("/control").await;
    let r = a
        .submit(
            &f.clone()
                .with("current", ADMIN_PASSWORD)
                .with("password", new_pw)
                .with("password2", new_pw),
        )
        .await;
    r.expect_redirect("/login");
    // Every session of the user ended, this one too.
    a.get("/control")
        .await
        .expect_redirect("/login?next=/control");
    a.login(ADMIN, ADMIN_PASSWORD).await.expect(401);
    a.login_ok(ADMIN, new_pw).await;
    a.page("/control").await;

    let audit = env.audit().await;
    let count = |act: &str| audit.iter().filter(|e| e.action == act).count();
    assert_eq!(count(action::SET_PASSWORD), 3, "admin, bob, the change");
    assert_eq!(count(action::SET_ROLE), 2);
    assert_eq!(count(action::DELETE_USER), 1);
    let changed = audit
        .iter()
        .rfind(|e| e.action == action::SET_PASSWORD)
        .unwrap();
    assert_eq!(changed.actor, ADMIN);
    assert_eq!(changed.after.as_deref(), Some("password changed"));
    server.stop().await;
}

/// API tokens on the Users page: an administrator makes one (its secret on the answer
/// to the form and nowhere after), sees it listed without its secret, and revokes it;
/// the API takes it until then. A viewer sees no tokens and may not make one.
#[tokio::test]
async fn administrators_make_and_revoke_api_tokens_on_the_users_page() {
    let env = Env::new().await;
    env.admin().await;
    env.user("olivia", "viewer password", Role::Viewer).await;
    let server = env.serve().await;
    let mut a = server.client();
    a.login_ok(ADMIN, ADMIN_PASSWORD).await;
    let page = a.page("/users").await;
    let make = form(&page, "/users/tokens");
    a.submit(
        &make
            .clone()
            .with("token_name", "bad name")
            .with("token_role", "viewer"),
    )
    .await
    .expect(422)
    .expect_text("token name");
    a.submit(
        &make
            .clone()
            .with("token_name", "ci")
            .with("token_role", "admin")
            .with("token_days", "soon"),
    )
    .await
    .expect(422)
    .expect_text("not a number of days");
    let r = a
        .submit(
            &make
                .clone()
                .with("token_name", "ci")
                .with("token_role", "admin")
                .with("token_days", "30"),
        )
        .await;
    r.expect(200).expect_text("Copy it now");
    let secret = r
        .body
        .split("<code class=\"secret\" id=\"new-token\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the token on the page")
        .to_string();
    assert!(secret.starts_with("lvsd_"), "{secret}");
    let api = |secret: String| {
        let router = env.oneshot();
        async move {
            let mut c = router;
            let auth = format!("Bearer {secret}");
            c.request(
                Method::GET,
                "/api/v1/virtual-servers",
                &[("authorization", &auth)],
                None,
            )
            .await
            .status
            .as_u16()
        }
    };
    assert_eq!(api(secret.clone()).await, 200);
    let page = a.page("/users").await;
    assert!(!page.contains(&secret), "the secret is shown once");
    assert!(page.contains("<td>ci</td><td>admin</td>"), "{page}");
    a.submit(&form(&page, "/users/tokens/ci/revoke"))
        .await
        .expect_redirect("/users");
    assert_eq!(api(secret).await, 401);
    assert!(env.store.tokens().list().await.unwrap().is_empty());

    let mut v = server.client();
    v.login_ok("olivia", "viewer password").await;
    let page = v.page("/users").await;
    assert!(!page.contains("API tokens"), "{page}");
    v.post(
        "/users/tokens",
        &[
            ("csrf", &v.csrf()),
            ("token_name", "mine"),
            ("token_role", "admin"),
        ],
    )
    .await
    .expect(403);
    assert!(env.store.tokens().list().await.unwrap().is_empty());
}
