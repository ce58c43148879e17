//! The storage module through its public API: what the web UI and the CLI rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use lvs_director::config::value::{Host, Secs, Text};
use lvs_director::config::{parse, render, Comments, Config, RealServer, VirtualServer};
use lvs_director::storage::{action, Actor, Role, SessionPolicy, StorageError, Store};

const PIRANHA_EXAMPLE: &str = include_str!("data/piranha_example.lvs.cf");

/// lvs-director's extensions and comments on top of Piranha's example.
const EXTENSIONS: &str = r#"
floating nginx {
    active = 1
    address = 203.0.113.50 eth0
    vip_nmask = 24
}
# An IPv6 floating address.
floating nginx6 {
    active = 1
    address = 2001:db8:50::50 eth0
    vip_nmask = 64
}
local_check nginx_alive {
    active = 1
    port = 80
    check = http
    check_path = /nginx_status
    # Fractions of a second.
    timeout = 0.5
    fall = 3
}
# An IPv6 service with per-server check overrides.
virtual web6 {
    active = 1
    address = 2001:db8:1::100 eth0
    vip_nmask = 64
    port = 443
    scheduler = mh
    check = https
    check_regex = '"status":\s*"ok"'
    timeout = 1.5
    server web6a {
        address = 2001:db8:2::21
        active = 1
        weight = 100
    }
    server web6b {
        address = 2001:db8:2::22
        active = 1
        # This one answers elsewhere.
        check_path = /healthz
        fall = 5
    }
    # Last line inside the block.
}
# The end of the file.
"#;

/// Piranha's example, every extension block, comments everywhere, IPv6, a fractional
/// keepalive and (not writable in one file with virtual servers, but kept by the model)
/// a legacy failover service.
fn rich_config() -> Config {
    let text = format!("# Piranha's example, as its GUI wrote it.\n{PIRANHA_EXAMPLE}{EXTENSIONS}");
    let mut c = parse(&text).expect("the example parses").config;
    c.global.keepalive = Some(Secs(200));
    c.global.primary = Some(Host::Ip("2001:db8:1::11".parse().unwrap()));
    let mut ftp = VirtualServer {
        name: "legacy_ftp".into(),
        ..VirtualServer::default()
    };
    ftp.settings.port = c.virtuals[0].settings.port.clone();
    ftp.check.send_program = Some(Text("/bin/true %h".into()));
    ftp.comments
        .add(Comments::BLOCK, vec![" FOS leftovers".into()]);
    c.failovers.push(ftp);
    c
}

fn alice() -> Actor {
    Actor::new("alice", Some("192.0.2.10".into()))
}

async fn store_with(config: &Config) -> Store {
    let store = Store::open_in_memory().await.unwrap();
    store.replace_config(config, &alice()).await.unwrap();
    store
}

#[tokio::test]
async fn a_rich_configuration_round_trips_losslessly() {
    let config = rich_config();
    // Make sure the example exercises what it claims to.
    assert!(!config.floating.is_empty() && !config.local_checks.is_empty());
    assert!(config
        .virtuals
        .iter()
        .any(|v| v.servers.iter().any(|s| !s.check.is_empty())));
    assert!(!config.comments.get("serial_no").is_empty());

    let store = store_with(&config).await;
    let loaded = store.load_config().await.unwrap();
    assert_eq!(loaded, config);
    assert_eq!(render(&loaded), render(&config));
}

/// VRRP instances (every keyword, comments included) are stored and read back.
#[tokio::test]
async fn vrrp_instances_round_trip() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lvscf/golden/vrrp.lvs.cf"),
    )
    .unwrap();
    let config = lvs_director::config::parse(&text).unwrap().config;
    assert_eq!(config.vrrp.len(), 3);
    let store = store_with(&config).await;
    let loaded = store.load_config().await.unwrap();
    assert_eq!(loaded, config);
    assert_eq!(render(&loaded), render(&config));
    let listed = store.vrrp_instances().list().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| s.item.name.as_str())
            .collect::<Vec<_>>(),
        ["VI_web", "VI_db", "VI_v6"]
    );
}

#[tokio::test]
async fn the_configuration_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/lvs-director/director.db");
    let config = rich_config();
    {
        let store = Store::open(&path).await.unwrap();
        store.replace_config(&config, &alice()).await.unwrap();
        store.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.load_config().await.unwrap(), config);
}

#[tokio::test]
async fn a_failed_replace_leaves_the_database_unchanged() {
    let original = rich_config();
    let store = store_with(&original).await;
    let entries = store.audit().count().await.unwrap();

    // A duplicate name, found only after the globals and the first blocks are written.
    let mut duplicate = parse(PIRANHA_EXAMPLE).unwrap().config;
    let copy = duplicate.virtuals[0].clone();
    duplicate.virtuals.push(copy);
    let err = store
        .replace_config(&duplicate, &alice())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Duplicate { what } if what == "virtual www"),
        "{err}"
    );

    // A value with no lvs.cf spelling, in the very last block.
    let mut unwritable = parse(PIRANHA_EXAMPLE).unwrap().config;
    let last = unwritable.virtuals.last_mut().unwrap();
    last.servers.push(RealServer {
        name: "ns2".into(),
        ..RealServer::default()
    });
    last.servers[1].check.send_program = Some(Text("line\nbreak".into()));
    let err = store
        .replace_config(&unwritable, &alice())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Invalid { what, .. } if what == "virtual dns server ns2"),
        "{err}"
    );

    // A block name that no lvs.cf can hold, in the last block too.
    let mut unnamed = parse(PIRANHA_EXAMPLE).unwrap().config;
    unnamed.virtuals.last_mut().unwrap().servers[0].name = "ns\n1".into();
    let err = store.replace_config(&unnamed, &alice()).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Invalid { what, message }
            if what == r#"virtual dns server "ns\n1""# && message.contains("line break")),
        "{err}"
    );
    assert!(err.is_invalid_input());

    assert_eq!(store.load_config().await.unwrap(), original);
    assert_eq!(store.audit().count().await.unwrap(), entries);
}

/// What `export` relies on: a mistyped `--db` is an error, not a new empty database
/// rendered over a live lvs.cf.
#[tokio::test]
async fn open_existing_refuses_a_missing_database_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    let err = Store::open_existing(&path).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Missing { path: p } if *p == path),
        "{err}"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());

    let config = rich_config();
    let store = Store::open(&path).await.unwrap();
    store.replace_config(&config, &alice()).await.unwrap();
    store.close().await;
    let store = Store::open_existing(&path).await.unwrap();
    assert_eq!(store.load_config().await.unwrap(), config);
}

#[tokio::test]
async fn a_concurrent_edit_is_a_conflict_not_a_lost_update() {
    let store = store_with(&rich_config()).await;
    let vs = store.virtual_servers();
    // Two browsers open the same page.
    let first = vs.list().await.unwrap().remove(0);
    let second = first.clone();

    let mut a = first.item.clone();
    a.settings.persistent = Some(60);
    let saved = vs
        .update(first.id, first.version, &a, &alice())
        .await
        .unwrap();

    let mut b = second.item.clone();
    b.settings.scheduler = None;
    let err = vs
        .update(second.id, second.version, &b, &Actor::new("bob", None))
        .await
        .unwrap_err();
    assert!(
        err.is_invalid_input(),
        "a conflict is the caller's to resolve"
    );
    match err {
        StorageError::Conflict {
            what,
            expected,
            found,
        } => {
            assert_eq!(what, "virtual www");
            assert_eq!((expected, found), (second.version, saved));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(vs.get(first.id).await.unwrap().item, a);

    // Reloaded, the second editor's change applies on top of the first.
    let fresh = vs.get(second.id).await.unwrap();
    let mut b = fresh.item.clone();
    b.settings.scheduler = None;
    vs.update(fresh.id, fresh.version, &b, &Actor::new("bob", None))
        .await
        .unwrap();
    let now = vs.get(first.id).await.unwrap().item;
    assert_eq!(now.settings.persistent, Some(60));
    assert_eq!(now.settings.scheduler, None);
}

/// Adds (action, object) to what the log should hold, oldest first, and checks it
/// holds exactly that: one entry per write, by the right actor.
async fn expect_entry(store: &Store, log: &mut Vec<(String, String)>, action: &str, object: &str) {
    log.push((action.into(), object.into()));
    let mut entries = store.audit().list(1000, 0).await.unwrap();
    entries.reverse();
    let got: Vec<(String, String)> = entries
        .into_iter()
        .map(|e| {
            assert_eq!(
                (e.actor.as_str(), e.source.as_deref()),
                ("alice", Some("192.0.2.10"))
            );
            (e.action, e.object)
        })
        .collect();
    assert_eq!(&got, log);
}

#[tokio::test]
async fn every_write_appends_exactly_one_audit_entry() {
    let store = Store::open_in_memory().await.unwrap();
    let me = alice();
    let mut log = Vec::new();
    store.replace_config(&rich_config(), &me).await.unwrap();
    expect_entry(&store, &mut log, action::REPLACE, "configuration").await;

    let g = store.global_settings().await.unwrap();
    let mut settings = g.settings.clone();
    settings.serial_no = Some(58);
    store
        .update_global_settings(g.version, &settings, &g.comments, &me)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::UPDATE, "global settings").await;

    let www = store.virtual_servers().list().await.unwrap().remove(0);
    let mut scripts = www.item.check.clone();
    scripts.fall = Some(2);
    let v = store
        .update_monitoring_scripts(www.id, www.version, &scripts, &me)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::UPDATE, "virtual www").await;

    let servers = store.real_servers(www.id);
    let web1 = servers.list().await.unwrap().remove(0);
    let mut s = web1.item.clone();
    s.settings.weight = Some(0);
    servers
        .update(web1.id, web1.version, &s, &me)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::UPDATE, "virtual www server web1").await;

    let ids: Vec<i64> = servers
        .list()
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|s| s.id)
        .collect();
    servers.reorder(&ids, &me).await.unwrap();
    expect_entry(
        &store,
        &mut log,
        action::REORDER,
        "real servers of virtual www",
    )
    .await;

    let mut copy = store.virtual_servers().get(www.id).await.unwrap().item;
    copy.name = "www_copy".into();
    let created = store.virtual_servers().create(&copy, &me).await.unwrap();
    expect_entry(&store, &mut log, action::CREATE, "virtual www_copy").await;
    // Created with its real servers, in one entry.
    assert_eq!(
        store.virtual_servers().get(created.id).await.unwrap().item,
        copy
    );
    store
        .virtual_servers()
        .delete(www.id, v, &me)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::DELETE, "virtual www").await;

    let f = store.floating_addresses().list().await.unwrap().remove(0);
    store
        .floating_addresses()
        .delete(f.id, f.version, &me)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::DELETE, "floating nginx").await;

    let users = store.users();
    users
        .set_password("alice", "correct horse", Role::Admin, &me)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::SET_PASSWORD, "user alice").await;
    users
        .set_password("bob", "battery staple", Role::Viewer, &me)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::SET_PASSWORD, "user bob").await;
    users.set_role("bob", Role::Admin, &me).await.unwrap();
    expect_entry(&store, &mut log, action::SET_ROLE, "user bob").await;
    users.delete("bob", &me).await.unwrap();
    expect_entry(&store, &mut log, action::DELETE_USER, "user bob").await;

    let text = render(&store.load_config().await.unwrap());
    store
        .revisions()
        .record(&text, 58, &me, "first apply", &Default::default())
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::APPLY, "configuration").await;

    // Events that are not writes are recorded by the caller.
    store
        .audit()
        .record(&me, action::LOGIN_FAILED, "user alice", None, None)
        .await
        .unwrap();
    expect_entry(&store, &mut log, action::LOGIN_FAILED, "user alice").await;

    // Failed writes leave no entry.
    let before = store.audit().count().await.unwrap();
    assert!(users.delete("alice", &me).await.is_err());
    assert!(users
        .set_password("carol", "short", Role::Viewer, &me)
        .await
        .is_err());
    assert_eq!(store.audit().count().await.unwrap(), before);
}

#[tokio::test]
async fn login_and_sessions() {
    let store = Store::open_in_memory().await.unwrap();
    let cli = Actor::new("root", Some("cli".into()));
    let users = store.users();
    assert!(users.list().await.unwrap().is_empty(), "no default account");
    users
        .set_password("admin", "s3cret-enough", Role::Admin, &cli)
        .await
        .unwrap();

    // Right password, wrong password, unknown user: only the first logs in, and the
    // other two answer the same.
    let admin = users
        .verify_password("admin", "s3cret-enough")
        .await
        .unwrap()
        .expect("right password");
    assert_eq!(users.verify_password("admin", "guess").await.unwrap(), None);
    assert_eq!(
        users
            .verify_password("nobody", "s3cret-enough")
            .await
            .unwrap(),
        None
    );

    let policy = SessionPolicy::default();
    let t0 = 1_750_000_000;
    let new = store.sessions().create(&admin, &policy, t0).await.unwrap();
    let session = store
        .sessions()
        .lookup(&new.token, t0 + 60)
        .await
        .unwrap()
        .expect("a fresh session");
    assert_eq!(session.user, admin);
    assert_eq!(session.expires_at, t0 + policy.max_age.as_secs() as i64);
    let idle = policy.idle_timeout.as_secs() as i64;
    assert_eq!(
        store
            .sessions()
            .lookup(&new.token, t0 + 60 + idle)
            .await
            .unwrap(),
        None
    );

    // The last admin stays.
    let err = users.delete("admin", &cli).await.unwrap_err();
    assert!(matches!(err, StorageError::LastAdmin { .. }), "{err}");
    assert!(err.is_invalid_input());
    assert!(matches!(
        users.set_role("admin", Role::Viewer, &cli).await,
        Err(StorageError::LastAdmin { .. })
    ));
}
