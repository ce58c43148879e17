//! The automation API (`/api/v1`) through the admin UI's router: tokens, problem
//! details, entity tags, and the OpenAPI document against the routes served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

#[path = "common/web.rs"]
mod web;

use axum::http::Method;
use lvs_director::storage::{Actor, Role};
use web::{Client, Env, Resp};

async fn token(env: &Env, name: &str, role: Role) -> String {
    env.store
        .tokens()
        .create(name, role, None, &Actor::new("test", None))
        .await
        .unwrap()
        .token
}

async fn get(c: &mut Client, path: &str, token: Option<&str>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    c.request(Method::GET, path, &headers, None).await
}

fn problem(r: &Resp, status: u16, detail: &str) -> serde_json::Value {
    assert_eq!(r.status.as_u16(), status, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        "application/problem+json",
        "{r:?}"
    );
    let p: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(p["status"], status, "{r:?}");
    assert!(p["detail"].as_str().unwrap().contains(detail), "{r:?}");
    p
}

async fn with_config() -> Env {
    let env = Env::new().await;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/piranha_example.lvs.cf"),
    )
    .unwrap();
    let config = lvs_director::config::parse(&text).unwrap().config;
    env.store
        .replace_config(&config, &Actor::new("test", None))
        .await
        .unwrap();
    env
}

/// None, a malformed, a wrong and a revoked token: 401 with `WWW-Authenticate:
/// Bearer`, as a problem; a viewer's and an admin's token read. A session cookie is
/// not a credential here.
#[tokio::test]
async fn every_operation_needs_a_valid_token() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let revoked = token(&env, "old", Role::Admin).await;
    env.store
        .tokens()
        .revoke("old", &Actor::new("test", None))
        .await
        .unwrap();
    let mut wrong = admin.clone();
    wrong.replace_range(wrong.len() - 4.., "0000");
    let user = env.admin().await;
    let session = env.session_of(&user).await;
    // Each wrong attempt from an address of its own: the rate limit has its own test.
    let mut n = 0u8;
    let mut fresh = || {
        n += 1;
        std::net::IpAddr::from([127, 0, 1, n])
    };
    for path in [
        "/api/v1/virtual-servers",
        "/api/v1/virtual-servers/www",
        "/api/v1/status",
    ] {
        let mut c = env.oneshot();
        let r = get(&mut c, path, None).await;
        problem(&r, 401, "needs a token");
        assert_eq!(r.header("www-authenticate"), "Bearer");
        let mut with_cookie = env.oneshot().with_session(&session);
        problem(
            &get(&mut with_cookie, path, None).await,
            401,
            "needs a token",
        );
        for bad in ["nonsense", &wrong, &revoked] {
            let r = get(&mut env.oneshot().from(fresh()), path, Some(bad)).await;
            problem(&r, 401, "wrong, revoked or expired");
        }
        for good in [&admin, &viewer] {
            let r = get(&mut env.oneshot(), path, Some(good)).await;
            // No supervisor runs here: the status is 503, as documented.
            let want = if path.ends_with("status") { 503 } else { 200 };
            assert_eq!(r.status.as_u16(), want, "{path}: {r:?}");
        }
    }
}

/// Wrong tokens from one address are answered 429 with `Retry-After` once the
/// address has failed too often; a right token from elsewhere still reads.
#[tokio::test]
async fn wrong_tokens_are_rate_limited_by_address() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let guess = format!("{}{}", &admin[..14], "f".repeat(64));
    let from = "127.0.0.9".parse().unwrap();
    let mut limited = None;
    for i in 0..50 {
        let r = get(
            &mut env.oneshot().from(from),
            "/api/v1/virtual-servers",
            Some(&guess),
        )
        .await;
        if r.status.as_u16() == 429 {
            limited = Some((i, r));
            break;
        }
        problem(&r, 401, "wrong");
    }
    let (after, r) = limited.expect("429 within 50 wrong tokens");
    let p = problem(&r, 429, "too many wrong tokens");
    assert!(p["retry_after"].as_u64().unwrap() >= 1);
    assert!(!r.header("retry-after").is_empty());
    eprintln!("429 after {after} wrong tokens");
    let other = "127.0.0.10".parse().unwrap();
    let r = get(
        &mut env.oneshot().from(other),
        "/api/v1/virtual-servers",
        Some(&admin),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
}

/// A virtual server reads with its keywords and its version as `ETag`; an unknown one
/// and an unknown operation are 404 problems.
#[tokio::test]
async fn virtual_servers_read_with_their_versions() {
    let env = with_config().await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let r = get(&mut c, "/api/v1/virtual-servers", Some(&viewer)).await;
    let list: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["www", "www_tls", "dns"]);
    assert_eq!(list[0]["settings"]["port"], "80");
    assert_eq!(list[0]["real_servers"][0], "web1");
    let r = get(&mut c, "/api/v1/virtual-servers/www", Some(&viewer)).await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    let one: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(r.header("etag"), format!("\"v{}\"", one["version"]));
    assert_eq!(one["settings"]["address"], "203.0.113.100 eth0:1");
    // The health check's keywords are the virtual server's too.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/piranha_example.lvs.cf"),
    )
    .unwrap();
    let www = &lvs_director::config::parse(&text).unwrap().config.virtuals[0];
    let keywords = www.settings.entries().len() + www.check.entries().len();
    assert_eq!(
        one["settings"].as_object().unwrap().len(),
        keywords,
        "{one}"
    );
    assert!(
        !www.check.entries().is_empty(),
        "the example has check keywords"
    );
    problem(
        &get(&mut c, "/api/v1/virtual-servers/nope", Some(&viewer)).await,
        404,
        "virtual server nope not found",
    );
    problem(
        &get(&mut c, "/api/v1/no-such-thing", Some(&viewer)).await,
        404,
        "no such API operation",
    );
}

/// The document is OpenAPI 3.1, served without a token, and lists what the router
/// serves: every operation it names answers (not the catch-all 404), and the API
/// module adds no route of its own beside the document and the catch-all (a route
/// added without `routes!` and its `utoipa::path` fails here).
#[tokio::test]
async fn the_document_lists_every_route_served() {
    let env = with_config().await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let r = get(&mut env.oneshot(), "/api/v1/openapi.json", None).await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 3, "{paths:?}");
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{name}", "www")
                .replace("{server}", "web1")
                .replace("{id}", "1")
                .replace("{other}", "1");
            let m: Method = method.to_uppercase().parse().unwrap();
            let r = send(&mut env.oneshot(), m, &concrete, &viewer, None, "").await;
            assert!(
                !r.body.contains("no such API operation") && r.status.as_u16() != 405,
                "{method} {path} is documented but not served: {r:?}"
            );
            for (status, _) in ops[method]["responses"].as_object().unwrap() {
                assert!(status.parse::<u16>().is_ok(), "{path}: {status}");
            }
        }
    }
    let api = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/api");
    let mut direct = 0;
    for f in std::fs::read_dir(api).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        direct += text.matches(".route(").count();
    }
    assert_eq!(
        direct, 2,
        "src/web/api adds routes outside routes!: document them with utoipa::path"
    );
}

async fn send(
    c: &mut Client,
    method: Method,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: &str,
) -> Resp {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(m) = if_match {
        headers.push(("if-match", m));
    }
    c.request_body(method, path, &headers, body.to_string())
        .await
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// Writes: a viewer is refused (403), a change needs `If-Match` (428) with the current
/// version (412 with `current_etag` otherwise), a value the configuration refuses is a
/// 422 naming the field with the form's message, and the same settings again change
/// nothing; create, read back, delete.
#[tokio::test]
async fn virtual_servers_are_written_with_their_versions() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let r = get(&mut c, "/api/v1/virtual-servers/www", Some(&admin)).await;
    let tag = r.header("etag").to_string();
    let mut www = json(&r);
    let path = "/api/v1/virtual-servers/www";

    let put =
        |settings: &serde_json::Value| serde_json::json!({ "settings": settings }).to_string();
    let same = put(&www["settings"]);
    problem(
        &send(&mut c, Method::PUT, path, &viewer, Some(&tag), &same).await,
        403,
        "viewer token",
    );
    problem(
        &send(&mut c, Method::PUT, path, &admin, None, &same).await,
        428,
        "If-Match",
    );
    let p = problem(
        &send(&mut c, Method::PUT, path, &admin, Some("\"v999\""), &same).await,
        412,
        "changed since",
    );
    assert_eq!(p["current_etag"], tag.as_str());
    problem(
        &send(&mut c, Method::PUT, path, &admin, Some(&tag), "{").await,
        400,
        "not the JSON",
    );

    // The same settings: 200, no new version, nothing in the audit log.
    let audit = env.audit().await.len();
    let r = send(&mut c, Method::PUT, path, &admin, Some(&tag), &same).await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    assert_eq!(r.header("etag"), tag);
    assert_eq!(
        env.audit().await.len(),
        audit,
        "an unchanged PUT writes nothing"
    );

    // A refused value: 422 at its field, nothing saved.
    www["settings"]["port"] = "99999".into();
    let p = problem(
        &send(
            &mut c,
            Method::PUT,
            path,
            &admin,
            Some(&tag),
            &put(&www["settings"]),
        )
        .await,
        422,
        "nothing was saved",
    );
    assert_eq!(p["errors"][0]["field"], "port", "{p}");
    www["settings"]["port"] = "8080".into();
    www["settings"]["no_such_keyword"] = "1".into();
    let p = problem(
        &send(
            &mut c,
            Method::PUT,
            path,
            &admin,
            Some(&tag),
            &put(&www["settings"]),
        )
        .await,
        422,
        "nothing was saved",
    );
    assert_eq!(p["errors"][0]["field"], "no_such_keyword", "{p}");
    www["settings"]
        .as_object_mut()
        .unwrap()
        .remove("no_such_keyword");

    // Saved; read back as written, with a new version.
    let r = send(
        &mut c,
        Method::PUT,
        path,
        &admin,
        Some(&tag),
        &put(&www["settings"]),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    let new_tag = r.header("etag").to_string();
    assert_ne!(new_tag, tag);
    let back = json(&get(&mut c, path, Some(&viewer)).await);
    assert_eq!(back["settings"], www["settings"]);
    assert_eq!(back["settings"]["port"], "8080");
    assert!(env
        .audit()
        .await
        .iter()
        .any(|e| e.actor == "token:admin-ci" && e.object.contains("www")));

    // Create, read, delete.
    let new = serde_json::json!({
        "name": "api-made",
        "settings": { "address": "192.0.2.77 eth0", "port": "443", "active": "1" }
    })
    .to_string();
    let list = "/api/v1/virtual-servers";
    problem(
        &send(&mut c, Method::POST, list, &viewer, None, &new).await,
        403,
        "viewer",
    );
    let r = send(&mut c, Method::POST, list, &admin, None, &new).await;
    assert_eq!(r.status.as_u16(), 201, "{r:?}");
    assert_eq!(r.header("location"), "/api/v1/virtual-servers/api-made");
    let made_tag = r.header("etag").to_string();
    problem(
        &send(&mut c, Method::POST, list, &admin, None, &new).await,
        409,
        "already exists",
    );
    let made = json(&get(&mut c, "/api/v1/virtual-servers/api-made", Some(&viewer)).await);
    assert_eq!(made["settings"]["port"], "443");
    let gone = "/api/v1/virtual-servers/api-made";
    problem(
        &send(&mut c, Method::DELETE, gone, &admin, None, "").await,
        428,
        "If-Match",
    );
    let r = send(&mut c, Method::DELETE, gone, &admin, Some(&made_tag), "").await;
    assert_eq!(r.status.as_u16(), 204, "{r:?}");
    problem(&get(&mut c, gone, Some(&viewer)).await, 404, "not found");
}

/// Twenty writers holding the same version: exactly one wins, the others get 412
/// with the version that won.
#[tokio::test]
async fn of_twenty_concurrent_writers_exactly_one_wins() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let r = get(
        &mut env.oneshot(),
        "/api/v1/virtual-servers/www",
        Some(&admin),
    )
    .await;
    let tag = r.header("etag").to_string();
    let www = json(&r);
    let writers = (0..20).map(|i| {
        let mut settings = www["settings"].clone();
        settings["port"] = (8000 + i).to_string().into();
        let body = serde_json::json!({ "settings": settings }).to_string();
        let (mut c, admin, tag) = (env.oneshot(), admin.clone(), tag.clone());
        async move {
            send(
                &mut c,
                Method::PUT,
                "/api/v1/virtual-servers/www",
                &admin,
                Some(&tag),
                &body,
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(writers).await;
    let won: Vec<&Resp> = answers
        .iter()
        .filter(|r| r.status.as_u16() == 200)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    let winner = won[0].header("etag").to_string();
    for r in answers.iter().filter(|r| r.status.as_u16() != 200) {
        let p = problem(r, 412, "changed since");
        assert_eq!(p["current_etag"], winner.as_str());
    }
}

/// Real servers: listed, read with their versions, added, changed with `If-Match`,
/// refused values by field, deleted.
#[tokio::test]
async fn real_servers_are_read_and_written_with_their_versions() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let list = json(
        &get(
            &mut c,
            "/api/v1/virtual-servers/www/real-servers",
            Some(&viewer),
        )
        .await,
    );
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web1", "web2", "web3"]);
    problem(
        &get(
            &mut c,
            "/api/v1/virtual-servers/nope/real-servers",
            Some(&viewer),
        )
        .await,
        404,
        "virtual server nope not found",
    );
    let path = "/api/v1/virtual-servers/www/real-servers/web1";
    let r = get(&mut c, path, Some(&viewer)).await;
    let tag = r.header("etag").to_string();
    let mut web1 = json(&r);
    assert_eq!(r.header("etag"), format!("\"v{}\"", web1["version"]));

    web1["settings"]["weight"] = "70000".into();
    let body = serde_json::json!({ "settings": web1["settings"] }).to_string();
    let p = problem(
        &send(&mut c, Method::PUT, path, &admin, Some(&tag), &body).await,
        422,
        "nothing was saved",
    );
    assert_eq!(p["errors"][0]["field"], "weight", "{p}");
    web1["settings"]["weight"] = "7".into();
    let body = serde_json::json!({ "settings": web1["settings"] }).to_string();
    problem(
        &send(&mut c, Method::PUT, path, &viewer, Some(&tag), &body).await,
        403,
        "viewer",
    );
    let r = send(&mut c, Method::PUT, path, &admin, Some(&tag), &body).await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    problem(
        &send(&mut c, Method::PUT, path, &admin, Some(&tag), &body).await,
        412,
        "changed since",
    );
    assert_eq!(
        json(&get(&mut c, path, Some(&viewer)).await)["settings"]["weight"],
        "7"
    );

    let servers = "/api/v1/virtual-servers/www/real-servers";
    let new = serde_json::json!({ "name": "web4", "settings": { "address": "192.168.50.14", "active": "1" } }).to_string();
    let r = send(&mut c, Method::POST, servers, &admin, None, &new).await;
    assert_eq!(r.status.as_u16(), 201, "{r:?}");
    assert_eq!(
        r.header("location"),
        "/api/v1/virtual-servers/www/real-servers/web4"
    );
    let made = r.header("etag").to_string();
    problem(
        &send(&mut c, Method::POST, servers, &admin, None, &new).await,
        409,
        "already exists",
    );
    let r = send(
        &mut c,
        Method::DELETE,
        &format!("{servers}/web4"),
        &admin,
        Some(&made),
        "",
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{r:?}");
    problem(
        &get(&mut c, &format!("{servers}/web4"), Some(&viewer)).await,
        404,
        "web4",
    );
}

/// Apply through the API: the dry run's diff and digest, then the Apply with that
/// digest (428 without, 412 with an older one), answered with the revision and the
/// supervisor's word; the file in force is what was previewed.
#[tokio::test]
async fn apply_previews_then_applies_what_was_previewed() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let r = get(&mut c, "/api/v1/apply", Some(&viewer)).await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    let preview = json(&r);
    assert_eq!(
        r.header("etag"),
        format!("\"{}\"", preview["digest"].as_str().unwrap())
    );
    assert_eq!(preview["unchanged"], false);
    assert!(preview["diff"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["kind"] == "add" && l["text"].as_str().unwrap().contains("virtual www {")));
    let tag = r.header("etag").to_string();
    let comment = r#"{"comment": "from the API"}"#;
    problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/apply",
            &viewer,
            Some(&tag),
            comment,
        )
        .await,
        403,
        "viewer",
    );
    problem(
        &send(&mut c, Method::POST, "/api/v1/apply", &admin, None, comment).await,
        428,
        "If-Match",
    );
    let p = problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/apply",
            &admin,
            Some("\"0123\""),
            comment,
        )
        .await,
        412,
        "changed since that preview",
    );
    assert_eq!(p["current_etag"], tag.as_str());
    assert!(env.in_force().is_none(), "nothing written");

    let r = send(
        &mut c,
        Method::POST,
        "/api/v1/apply",
        &admin,
        Some(&tag),
        comment,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    let done = json(&r);
    assert_eq!(done["serial"], preview["serial"]);
    assert!(
        done["supervisor"].as_str().unwrap().contains("not running"),
        "{done}"
    );
    let text = env.in_force().expect("lvs.cf written");
    assert!(text.contains("virtual www {"));
    let rev = env.store.revisions().latest().await.unwrap().unwrap();
    assert_eq!(rev.info.id, done["revision"].as_i64().unwrap());
    assert_eq!(rev.info.comment, "from the API");
    assert_eq!(rev.info.applied_by, "token:admin-ci");
    let again = json(&get(&mut c, "/api/v1/apply", Some(&viewer)).await);
    assert_eq!(again["unchanged"], true, "{again}");
    // The same digest again: the preview has moved on.
    problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/apply",
            &admin,
            Some(&tag),
            "",
        )
        .await,
        412,
        "changed",
    );
}

/// Drain, enable and hand-over go to the running supervisor (here a stand-in on its
/// control socket, speaking its protocol): its answer is the API's, a refusal is a
/// 409, no supervisor a 503; each is in the audit log under the token's name.
#[tokio::test]
async fn actions_go_to_the_supervisor_and_say_what_it_said() {
    use lvs_director::pulse::logic::control::{Reply, Request};
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let drain = "/api/v1/virtual-servers/www/real-servers/web1/drain";
    let mut c = env.oneshot();
    problem(
        &send(&mut c, Method::POST, drain, &admin, None, "").await,
        503,
        "cannot drain",
    );

    let stand_in = web::control_stand_in(&env.socket(), |request| match request {
        Ok(Request::Drain {
            virtual_server,
            server,
        }) => Reply::done(format!("drained {virtual_server}/{server}")),
        Ok(Request::HandOver) => Reply::done("handed over to 10.0.0.2"),
        _ => Reply::refused("no such server"),
    });
    problem(
        &send(&mut c, Method::POST, drain, &viewer, None, "").await,
        403,
        "viewer",
    );
    let r = send(&mut c, Method::POST, drain, &admin, None, "").await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    assert_eq!(json(&r)["said"], "drained www/web1");
    let enable = "/api/v1/virtual-servers/www/real-servers/web1/enable";
    let p = problem(
        &send(&mut c, Method::POST, enable, &admin, None, "").await,
        409,
        "refused",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("no such server"),
        "{p}"
    );
    let r = send(&mut c, Method::POST, "/api/v1/hand-over", &admin, None, "").await;
    assert_eq!(json(&r)["said"], "handed over to 10.0.0.2");
    let audit = env.audit().await;
    for verb in ["drain", "enable", "hand_over"] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == verb && e.actor == "token:admin-ci"),
            "{verb} in {audit:?}"
        );
    }
    stand_in.abort();
}

/// Floating addresses and local checks: created, read with their versions, changed
/// with `If-Match`, refused values by field, deleted.
#[tokio::test]
async fn floating_addresses_local_checks_and_vrrp_instances_are_read_and_written() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    for (list, name, settings, bad, change) in [
        (
            "/api/v1/floating-addresses",
            "mgmt",
            serde_json::json!({ "active": "1", "address": "203.0.113.50 eth0" }),
            ("address", "203.0.113.50"),
            ("active", "0"),
        ),
        (
            "/api/v1/vrrp-instances",
            "VI_1",
            serde_json::json!({
                "active": "0", "interface": "eth0", "virtual_router_id": "51",
                "priority": "150", "virtual_ipaddress": "[ 192.0.2.100/24 ]"
            }),
            ("virtual_router_id", "256"),
            ("priority", "120"),
        ),
        (
            "/api/v1/local-checks",
            "db",
            serde_json::json!({ "active": "1", "address": "127.0.0.1", "port": "5432" }),
            ("port", "99999"),
            ("active", "0"),
        ),
    ] {
        let new = serde_json::json!({ "name": name, "settings": settings }).to_string();
        problem(
            &send(&mut c, Method::POST, list, &viewer, None, &new).await,
            403,
            "viewer",
        );
        let r = send(&mut c, Method::POST, list, &admin, None, &new).await;
        assert_eq!(r.status.as_u16(), 201, "{list}: {r:?}");
        let one = format!("{list}/{name}");
        assert_eq!(r.header("location"), one);
        problem(
            &send(&mut c, Method::POST, list, &admin, None, &new).await,
            409,
            "already exists",
        );
        let listed = json(&get(&mut c, list, Some(&viewer)).await);
        assert!(
            listed.as_array().unwrap().iter().any(|b| b["name"] == name),
            "{listed}"
        );
        let r = get(&mut c, &one, Some(&viewer)).await;
        let tag = r.header("etag").to_string();
        let mut block = json(&r);
        assert_eq!(block["settings"], settings);
        block["settings"][bad.0] = bad.1.into();
        let body = serde_json::json!({ "settings": block["settings"] }).to_string();
        let p = problem(
            &send(&mut c, Method::PUT, &one, &admin, Some(&tag), &body).await,
            422,
            "nothing was saved",
        );
        assert_eq!(p["errors"][0]["field"], bad.0, "{p}");
        block["settings"][bad.0] = settings[bad.0].clone();
        block["settings"][change.0] = change.1.into();
        let body = serde_json::json!({ "settings": block["settings"] }).to_string();
        let r = send(&mut c, Method::PUT, &one, &admin, Some(&tag), &body).await;
        assert_eq!(r.status.as_u16(), 200, "{one}: {r:?}");
        let tag2 = r.header("etag").to_string();
        problem(
            &send(&mut c, Method::DELETE, &one, &admin, Some(&tag), "").await,
            412,
            "changed since",
        );
        let r = send(&mut c, Method::DELETE, &one, &admin, Some(&tag2), "").await;
        assert_eq!(r.status.as_u16(), 204, "{one}: {r:?}");
        problem(&get(&mut c, &one, Some(&viewer)).await, 404, "not found");
    }
}

/// The global settings: read with a version, written with `If-Match`, an unknown
/// keyword and a bad value refused by field, the same settings again unchanged.
#[tokio::test]
async fn global_settings_are_read_and_written_with_their_version() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let r = get(&mut c, "/api/v1/settings", Some(&viewer)).await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    let tag = r.header("etag").to_string();
    let mut doc = json(&r);
    assert_eq!(tag, format!("\"v{}\"", doc["version"]));
    let same = serde_json::json!({ "settings": doc["settings"] }).to_string();
    problem(
        &send(
            &mut c,
            Method::PUT,
            "/api/v1/settings",
            &viewer,
            Some(&tag),
            &same,
        )
        .await,
        403,
        "viewer",
    );
    problem(
        &send(&mut c, Method::PUT, "/api/v1/settings", &admin, None, &same).await,
        428,
        "If-Match",
    );
    let r = send(
        &mut c,
        Method::PUT,
        "/api/v1/settings",
        &admin,
        Some(&tag),
        &same,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    assert_eq!(
        r.header("etag"),
        tag,
        "the same settings again are no change"
    );
    doc["settings"]["keepalive"] = "-3".into();
    doc["settings"]["no_such_keyword"] = "1".into();
    let bad = serde_json::json!({ "settings": doc["settings"] }).to_string();
    let p = problem(
        &send(
            &mut c,
            Method::PUT,
            "/api/v1/settings",
            &admin,
            Some(&tag),
            &bad,
        )
        .await,
        422,
        "nothing was saved",
    );
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["keepalive", "no_such_keyword"], "{p}");
    doc["settings"]
        .as_object_mut()
        .unwrap()
        .remove("no_such_keyword");
    let p = problem(
        &send(
            &mut c,
            Method::PUT,
            "/api/v1/settings",
            &admin,
            Some(&tag),
            &serde_json::json!({ "settings": doc["settings"] }).to_string(),
        )
        .await,
        422,
        "nothing was saved",
    );
    assert_eq!(p["errors"][0]["field"], "keepalive", "{p}");
    doc["settings"]["keepalive"] = "3".into();
    let good = serde_json::json!({ "settings": doc["settings"] }).to_string();
    let r = send(
        &mut c,
        Method::PUT,
        "/api/v1/settings",
        &admin,
        Some(&tag),
        &good,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    assert_ne!(r.header("etag"), tag);
    let now = json(&get(&mut c, "/api/v1/settings", Some(&viewer)).await);
    assert_eq!(now["settings"]["keepalive"], "3");
    let p = problem(
        &send(
            &mut c,
            Method::PUT,
            "/api/v1/settings",
            &admin,
            Some(&tag),
            &good,
        )
        .await,
        412,
        "changed since",
    );
    assert_eq!(p["current_etag"], format!("\"v{}\"", now["version"]));
}

/// Previews and applies the stored configuration: the revision recorded.
async fn apply_now(c: &mut Client, admin: &str, viewer: &str) -> i64 {
    let r = get(c, "/api/v1/apply", Some(viewer)).await;
    let tag = r.header("etag").to_string();
    let r = send(c, Method::POST, "/api/v1/apply", admin, Some(&tag), "").await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    json(&r)["revision"].as_i64().unwrap()
}

/// Revisions: two Applies, listed newest first, read with their text, diffed, and
/// the older loaded back under `If-Match` of the stored configuration's digest (412
/// with a stale one); nothing is applied by the rollback.
#[tokio::test]
async fn revisions_are_listed_diffed_and_rolled_back() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let first = apply_now(&mut c, &admin, &viewer).await;
    let r = get(&mut c, "/api/v1/virtual-servers/www", Some(&viewer)).await;
    let tag = r.header("etag").to_string();
    let mut www = json(&r);
    www["settings"]["port"] = "8080".into();
    let body = serde_json::json!({ "settings": www["settings"] }).to_string();
    let r = send(
        &mut c,
        Method::PUT,
        "/api/v1/virtual-servers/www",
        &admin,
        Some(&tag),
        &body,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    let second = apply_now(&mut c, &admin, &viewer).await;

    let list = json(&get(&mut c, "/api/v1/revisions", Some(&viewer)).await);
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [second, first]);
    assert_eq!(list[0]["applied_by"], "token:admin-ci");
    let one = json(&get(&mut c, &format!("/api/v1/revisions/{first}"), Some(&viewer)).await);
    assert!(
        one["text"].as_str().unwrap().contains("port = 80\n"),
        "{one}"
    );
    problem(
        &get(&mut c, "/api/v1/revisions/99999", Some(&viewer)).await,
        404,
        "not found",
    );
    problem(
        &get(&mut c, "/api/v1/revisions/x", Some(&viewer)).await,
        400,
        "path",
    );
    problem(
        &get(&mut c, "/api/v1/revisions?limit=0", Some(&viewer)).await,
        400,
        "limit",
    );
    let diff = json(
        &get(
            &mut c,
            &format!("/api/v1/revisions/{first}/diff/{second}"),
            Some(&viewer),
        )
        .await,
    );
    let lines: Vec<String> = diff
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["kind"].as_str().unwrap(),
                l["text"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("del") && l.contains("port = 80")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("add") && l.contains("port = 8080")),
        "{lines:?}"
    );

    let r = get(&mut c, "/api/v1/configuration", Some(&viewer)).await;
    let config_tag = r.header("etag").to_string();
    assert!(json(&r)["text"].as_str().unwrap().contains("port = 8080"));
    let rollback = format!("/api/v1/revisions/{first}/rollback");
    problem(
        &send(
            &mut c,
            Method::POST,
            &rollback,
            &viewer,
            Some(&config_tag),
            "",
        )
        .await,
        403,
        "viewer",
    );
    problem(
        &send(&mut c, Method::POST, &rollback, &admin, None, "").await,
        428,
        "If-Match",
    );
    let p = problem(
        &send(
            &mut c,
            Method::POST,
            &rollback,
            &admin,
            Some("\"0000\""),
            "",
        )
        .await,
        412,
        "changed",
    );
    assert_eq!(p["current_etag"], config_tag.as_str());
    let r = send(
        &mut c,
        Method::POST,
        &rollback,
        &admin,
        Some(&config_tag),
        "",
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    assert_eq!(json(&r)["revision"]["id"], first);
    let back = get(&mut c, "/api/v1/configuration", Some(&viewer)).await;
    assert_eq!(back.header("etag"), r.header("etag"));
    assert!(json(&back)["text"]
        .as_str()
        .unwrap()
        .contains("port = 80\n"));
    assert!(
        env.in_force().unwrap().contains("port = 8080"),
        "a rollback applies nothing"
    );
    let preview = json(&get(&mut c, "/api/v1/apply", Some(&viewer)).await);
    assert_eq!(preview["unchanged"], false);
    // The digest it was made from is stale now.
    problem(
        &send(
            &mut c,
            Method::POST,
            &rollback,
            &admin,
            Some(&config_tag),
            "",
        )
        .await,
        412,
        "changed",
    );
}

/// Users and tokens, administrators only: made (a taken name 409, a short password
/// 422 by field), read with a version, changed and deleted under `If-Match`, the last
/// administrator kept; a token made here works at once and stops when revoked.
#[tokio::test]
async fn users_and_tokens_are_managed_by_administrators() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let lone = env.admin().await.name;
    for path in ["/api/v1/users", "/api/v1/tokens"] {
        problem(&get(&mut c, path, Some(&viewer)).await, 403, "viewer");
    }
    let new = r#"{"name": "alice", "role": "admin", "password": "correct horse"}"#;
    let r = send(&mut c, Method::POST, "/api/v1/users", &admin, None, new).await;
    assert_eq!(r.status.as_u16(), 201, "{r:?}");
    assert_eq!(r.header("location"), "/api/v1/users/alice");
    problem(
        &send(&mut c, Method::POST, "/api/v1/users", &admin, None, new).await,
        409,
        "exists",
    );
    let p = problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/users",
            &admin,
            None,
            r#"{"name": "bob", "role": "viewer", "password": "short"}"#,
        )
        .await,
        422,
        "nothing was saved",
    );
    assert_eq!(p["errors"][0]["field"], "password", "{p}");
    problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/users",
            &admin,
            None,
            r#"{"name": "bob", "role": "root", "password": "long enough"}"#,
        )
        .await,
        400,
        "JSON expected",
    );
    let r = get(&mut c, "/api/v1/users/alice", Some(&admin)).await;
    let tag = r.header("etag").to_string();
    assert_eq!(json(&r)["role"], "admin");
    let r = send(
        &mut c,
        Method::PATCH,
        "/api/v1/users/alice",
        &admin,
        Some(&tag),
        r#"{"role": "viewer"}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    assert_eq!(json(&r)["role"], "viewer");
    problem(
        &send(
            &mut c,
            Method::PATCH,
            "/api/v1/users/alice",
            &admin,
            Some(&tag),
            r#"{"role": "admin"}"#,
        )
        .await,
        412,
        "changed since",
    );
    let tag = r.header("etag").to_string();
    // alice is a viewer now: the only administrator left is the one made below.
    let r = get(&mut c, &format!("/api/v1/users/{lone}"), Some(&admin)).await;
    let lone_tag = r.header("etag").to_string();
    problem(
        &send(
            &mut c,
            Method::DELETE,
            &format!("/api/v1/users/{lone}"),
            &admin,
            Some(&lone_tag),
            "",
        )
        .await,
        409,
        "admin",
    );
    let r = send(
        &mut c,
        Method::DELETE,
        "/api/v1/users/alice",
        &admin,
        Some(&tag),
        "",
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{r:?}");
    problem(
        &get(&mut c, "/api/v1/users/alice", Some(&admin)).await,
        404,
        "not found",
    );

    let r = send(
        &mut c,
        Method::POST,
        "/api/v1/tokens",
        &admin,
        None,
        r#"{"name": "terraform", "role": "viewer", "expires_days": 30}"#,
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{r:?}");
    let made = json(&r);
    let secret = made["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("lvsd_"), "{made}");
    assert_eq!(
        get(&mut c, "/api/v1/virtual-servers", Some(&secret))
            .await
            .status
            .as_u16(),
        200
    );
    let listed = json(&get(&mut c, "/api/v1/tokens", Some(&admin)).await);
    assert!(
        !listed.to_string().contains(&secret),
        "a list never shows a secret"
    );
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "terraform" && t["role"] == "viewer"));
    let p = problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/tokens",
            &admin,
            None,
            r#"{"name": "x", "role": "viewer", "expires_days": 0}"#,
        )
        .await,
        422,
        "nothing was saved",
    );
    assert_eq!(p["errors"][0]["field"], "expires_days", "{p}");
    let r = get(&mut c, "/api/v1/tokens/terraform", Some(&admin)).await;
    let tag = r.header("etag").to_string();
    problem(
        &send(
            &mut c,
            Method::DELETE,
            "/api/v1/tokens/terraform",
            &admin,
            None,
            "",
        )
        .await,
        428,
        "If-Match",
    );
    let r = send(
        &mut c,
        Method::DELETE,
        "/api/v1/tokens/terraform",
        &admin,
        Some(&tag),
        "",
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{r:?}");
    problem(
        &get(&mut c, "/api/v1/virtual-servers", Some(&secret)).await,
        401,
        "revoked",
    );
    let audit = env.store.audit().list(50, 0).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "token:admin-ci" && e.object.contains("token terraform")),
        "{audit:?}"
    );
}

/// The auth matrix over every operation the document lists: no token and a wrong one
/// are 401 (each wrong one from an address of its own, below the rate limit), a
/// viewer's token reads but is refused every change and the accounts (403), an
/// administrator's passes; each of those answers is in the operation's documentation.
#[tokio::test]
async fn every_documented_operation_checks_the_token_and_its_role() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut wrong = admin.clone();
    wrong.replace_range(wrong.len() - 4.., "0000");
    let doc = json(&get(&mut env.oneshot(), "/api/v1/openapi.json", None).await);
    let mut n: u32 = 0;
    let mut operations = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            operations += 1;
            let concrete = path
                .replace("{name}", "www")
                .replace("{server}", "web1")
                .replace("{id}", "1")
                .replace("{other}", "1");
            let m: Method = method.to_uppercase().parse().unwrap();
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            let says = |status: &str| {
                assert!(
                    documented.iter().any(|s| *s == status),
                    "{method} {path} answers {status} without documenting it: {documented:?}"
                )
            };
            let mut c = env.oneshot();
            let r = c.request(m.clone(), &concrete, &[], None).await;
            problem(&r, 401, "needs a token");
            says("401");
            says("429");
            n += 1;
            let from = std::net::IpAddr::from([127, 0, 2, (n % 250) as u8 + 1]);
            let r = send(
                &mut env.oneshot().from(from),
                m.clone(),
                &concrete,
                &wrong,
                None,
                "",
            )
            .await;
            problem(&r, 401, "wrong, revoked or expired");
            let reads = m == Method::GET
                && !["/users", "/tokens", "/audit"]
                    .iter()
                    .any(|p| path.contains(p));
            let r = send(&mut env.oneshot(), m.clone(), &concrete, &viewer, None, "").await;
            if reads {
                assert!(
                    ![401, 403].contains(&r.status.as_u16()),
                    "{method} {path} refused a viewer: {r:?}"
                );
            } else {
                problem(&r, 403, "viewer");
                says("403");
            }
            let r = send(&mut env.oneshot(), m, &concrete, &admin, None, "").await;
            assert!(
                ![401, 403].contains(&r.status.as_u16()),
                "{method} {path} refused an administrator: {r:?}"
            );
            says(r.status.as_str());
        }
    }
    assert!(operations >= 40, "{operations} operations documented");
}

/// The file in force imported into the stored configuration under `If-Match` of its
/// digest (409 while there is no file or it has errors); the audit log, to
/// administrators, names the token; configuration sync's state, and a choice with no
/// such peer refused with nothing changed.
#[tokio::test]
async fn import_audit_and_cluster() {
    let env = with_config().await;
    let admin = token(&env, "admin-ci", Role::Admin).await;
    let viewer = token(&env, "dashboard", Role::Viewer).await;
    let mut c = env.oneshot();
    let tag = get(&mut c, "/api/v1/configuration", Some(&viewer))
        .await
        .header("etag")
        .to_string();
    let import = "/api/v1/configuration/import";
    problem(
        &send(&mut c, Method::POST, import, &admin, Some(&tag), "").await,
        409,
        "does not exist",
    );
    std::fs::write(
        env.lvs_cf(),
        "serial_no = 7\nprimary = 192.0.2.1\nservice = lvs\nnetwork = direct\nvirtual = broken {\n",
    )
    .unwrap();
    problem(
        &send(&mut c, Method::POST, import, &admin, Some(&tag), "").await,
        409,
        "errors",
    );
    std::fs::write(
        env.lvs_cf(),
        "serial_no = 7\nprimary = 192.0.2.1\nservice = lvs\nnetwork = direct\n",
    )
    .unwrap();
    problem(
        &send(&mut c, Method::POST, import, &viewer, Some(&tag), "").await,
        403,
        "viewer",
    );
    problem(
        &send(&mut c, Method::POST, import, &admin, None, "").await,
        428,
        "If-Match",
    );
    problem(
        &send(&mut c, Method::POST, import, &admin, Some("\"00\""), "").await,
        412,
        "changed",
    );
    let r = send(&mut c, Method::POST, import, &admin, Some(&tag), "").await;
    assert_eq!(r.status.as_u16(), 200, "{r:?}");
    assert!(
        env.store.load_config().await.unwrap().virtuals.is_empty(),
        "the file's configuration is stored"
    );
    let now = get(&mut c, "/api/v1/configuration", Some(&viewer)).await;
    assert_eq!(now.header("etag"), r.header("etag"));

    problem(
        &get(&mut c, "/api/v1/audit", Some(&viewer)).await,
        403,
        "viewer",
    );
    problem(
        &get(&mut c, "/api/v1/audit?limit=501", Some(&admin)).await,
        400,
        "limit",
    );
    let log = json(&get(&mut c, "/api/v1/audit?limit=5", Some(&admin)).await);
    assert!(log.as_array().unwrap().len() <= 5);
    assert_eq!(log[0]["actor"], "token:admin-ci", "{log}");

    let sync = json(&get(&mut c, "/api/v1/cluster", Some(&viewer)).await);
    assert!(sync["peers"].as_array().unwrap().is_empty(), "{sync}");
    let choice = r#"{"peer": "203.0.113.9", "side": "peer"}"#;
    problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/cluster/choose",
            &viewer,
            None,
            choice,
        )
        .await,
        403,
        "viewer",
    );
    problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/cluster/choose",
            &admin,
            None,
            choice,
        )
        .await,
        409,
        "nothing changed",
    );
    problem(
        &send(
            &mut c,
            Method::POST,
            "/api/v1/cluster/choose",
            &admin,
            None,
            r#"{"peer": "x", "side": "both"}"#,
        )
        .await,
        400,
        "JSON expected",
    );
}
