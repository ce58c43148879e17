//! Configuration sync between two directors, end to end on the host kernel: each in
//! its network namespace runs `lvs-director web` (which syncs) and `pulse` (a floating
//! VIP, no IPVS needed), Apply goes through `lvs-director apply`, an attacker sits on
//! the same bridge (see `tests/common/netns.rs`).
//!
//! Needs root; skipped with a notice otherwise. `FO_SHOW_LOGS=1` prints the logs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

mod common;
#[path = "common/director.rs"]
mod director;
#[path = "common/raw_http.rs"]
mod raw_http;
#[path = "common/recorder.rs"]
mod recorder;

use std::time::{Duration, Instant};

use common::netns::{in_ns, key_file, root_or_skip, wait_for, Lab, Node, PairConfig};
use director::Director;
use lvs_director::cluster::wire::{self, Psk, Request, Response};

const SECOND: Duration = Duration::from_secs(1);

/// Whether an Apply's output says `peer` has `serial` in force: taken from the offer,
/// or already (its own poll, once a second, may have fetched it first).
fn peer_has(out: &str, peer: &str, serial: u32) -> bool {
    out.contains(&format!("Peer {peer}: took serial {serial}."))
        || out.contains(&format!(
            "Peer {peer}: serial {serial} is already in force here"
        ))
}

/// Runs `f` to completion on a runtime of its own, inside `node`'s namespace.
fn on<T: Send + 'static>(
    lab: &Lab,
    node: Node,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    in_ns(&lab.ns(node), move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
}

/// A TCP connection to B's sync port.
async fn to_b() -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(("10.77.0.2", wire::DEFAULT_PORT))
        .await
        .unwrap()
}

fn with_floating(base: &str, extra: &[(&str, &str)]) -> String {
    let mut t = base.to_string();
    for (name, addr) in extra {
        t += &format!("floating {name} {{\n    active = 1\n    address = {addr}\n}}\n");
    }
    t
}

/// A heartbeat pair sharing a key (keepalive 0.2, deadtime 1), each director given the
/// same configuration by hand: the key file, that configuration, A and B.
fn pair_set_up_alike(lab: &Lab) -> (std::path::PathBuf, String, Director, Director) {
    let key = key_file(lab, b"a shared heartbeat key for the sync lab");
    let base = PairConfig {
        keepalive: "0.2",
        deadtime: "1",
        key_file: Some(key.clone()),
        ..PairConfig::default()
    }
    .render();
    let (a, b) = (Director::new(lab, Node::A), Director::new(lab, Node::B));
    for d in [&a, &b] {
        let (code, out, err) = d.apply(lab, &base);
        assert_eq!(code, 0, "{out}{err}");
    }
    (key, base, a, b)
}

#[test]
fn an_apply_on_one_director_is_in_force_on_both() {
    if !root_or_skip("cluster sync") {
        return;
    }
    let lab = Lab::new("sync", &[Node::A, Node::B, Node::Attacker]);
    // Both set up alike by hand: the same configuration, the same serial: in step.
    let (key, base, a, b) = pair_set_up_alike(&lab);
    assert_eq!(a.serial(), b.serial());
    let first = a.serial();
    let pa = a.pulse(&lab);
    let pb = b.pulse(&lab);
    let _wa = a.web(&lab);
    let mut wb = b.web(&lab);
    for d in [&a, &b] {
        d.wait_in_step(&lab, 10 * SECOND);
    }

    // An Apply on A is in force on B when it returns, with B's database following.
    let t1 = with_floating(&base, &[("extra1", "10.77.0.101 eth0")]);
    let started = Instant::now();
    let (code, out, err) = a.apply(&lab, &t1);
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    assert!(peer_has(&out, "10.77.0.2", first + 1), "{out}{err}");
    assert_eq!(b.serial(), first + 1);
    assert!(b.in_force().contains("10.77.0.101"));
    let rev = b.latest();
    assert_eq!(rev.info.serial_no, first + 1);
    assert_eq!(rev.info.origin, "10.77.0.1");
    assert!(
        rev.info
            .comment
            .starts_with(&format!("received from 10.77.0.1, serial {}", first + 1)),
        "{}",
        rev.info.comment
    );
    let (_, exported, _) = b.cli(&lab, &["export"]);
    assert!(
        exported.contains("10.77.0.101"),
        "B's stored configuration follows"
    );
    eprintln!("apply on A to serial in force on B: {took:?} (the apply included)");

    // B down during an Apply catches up when it returns.
    lab.kill(&wb);
    let t2 = with_floating(&t1, &[("extra2", "10.77.0.102 eth0")]);
    let (code, out, err) = a.apply(&lab, &t2);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("Peer 10.77.0.2: unreachable"), "{out}{err}");
    assert_eq!(b.serial(), first + 1);
    wb = b.web(&lab);
    let restarted = Instant::now();
    wait_for(10 * SECOND, "B catching up", || {
        (b.serial() == first + 2).then_some(())
    });
    eprintln!("B caught up {:?} after its restart", restarted.elapsed());
    assert!(b.in_force().contains("10.77.0.102"));

    // Forged and replayed sync messages are refused, counted, and change nothing.
    let refused = |d: &Director| {
        d.metric(&lab, "lvs_director_sync_refused_total")
            .unwrap_or(-1.0)
    };
    let before = refused(&b);
    let good = Psk::derive(&std::fs::read(&key).unwrap());
    let recorded = on(&lab, Node::A, async move {
        let rec = recorder::Recorder::new(to_b().await);
        let copy = rec.copy();
        let mut ch = wire::connect(rec, &good).await.unwrap();
        ch.send(&Request::Head).await.unwrap();
        let r: Response = ch.recv().await.unwrap();
        assert!(matches!(r, Response::Head { .. }), "{r:?}");
        let bytes = copy.lock().unwrap().clone();
        bytes
    });
    on(&lab, Node::Attacker, async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A replay of what A sent.
        let mut s = to_b().await;
        s.write_all(&recorded).await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(5 * SECOND, s.read_to_end(&mut sink)).await;
        // A handshake under another key.
        let forged = wire::connect(to_b().await, &Psk::derive(b"not the key of this pair")).await;
        assert!(forged.is_err());
    });
    // A peer's supervisor status, for the monitoring page of the pair.
    let good = Psk::derive(&std::fs::read(&key).unwrap());
    let status = on(&lab, Node::A, async move {
        let mut ch = wire::connect(to_b().await, &good).await.unwrap();
        ch.send(&Request::Status).await.unwrap();
        ch.recv::<Response>().await.unwrap()
    });
    let Response::Status { status: Ok(s) } = status else {
        panic!("{status:?}")
    };
    assert_eq!(
        (s.node.name.as_str(), s.node.role.as_str()),
        ("10.77.0.2", "standby")
    );
    wait_for(5 * SECOND, "both refusals counted", || {
        (refused(&b) == before + 2.0).then_some(())
    });
    assert_eq!(b.serial(), first + 2);

    // A configuration B cannot run (a device it does not have) is refused there, said
    // on A, and B keeps running what it had.
    in_ns(&lab.ns(Node::A), || {
        common::netns::run(
            "ip",
            &[
                "link", "add", "eth7", "type", "veth", "peer", "name", "eth7p",
            ],
        );
    });
    let t3 = with_floating(&t2, &[("extra3", "10.77.0.103 eth7")]);
    let (code, out, err) = a.apply(&lab, &t3);
    assert_eq!(code, 0, "applied on A: {out}{err}");
    assert!(
        err.contains("Peer 10.77.0.2: REFUSED it") && err.contains("device eth7 does not exist"),
        "{out}{err}"
    );
    std::thread::sleep(2 * SECOND);
    assert_eq!(b.serial(), first + 2, "B keeps what it ran");
    // Fixed on A: B takes the next one, while connections from elsewhere that never
    // start their handshake hold every general place of B's sync port: A, a
    // configured peer, has places of its own.
    let held = common::netns::spawn_in(&lab.ns(Node::Attacker), || {
        let idle: Vec<_> = (0..6)
            .filter_map(|_| std::net::TcpStream::connect(("10.77.0.2", wire::DEFAULT_PORT)).ok())
            .collect();
        std::thread::sleep(4 * SECOND);
        idle.len()
    });
    std::thread::sleep(SECOND / 2);
    let t4 = with_floating(&t2, &[("extra3", "10.77.0.103 eth0")]);
    let (code, out, err) = a.apply(&lab, &t4);
    assert_eq!(code, 0, "{out}{err}");
    assert!(peer_has(&out, "10.77.0.2", first + 4), "{out}{err}");
    assert_eq!(held.join().unwrap(), 6, "the idle connections were made");

    // An Apply in B's admin UI (the backup's) is in force on A, the active director,
    // whose supervisor reloads it. (Inactive: this kernel has no IPVS, and an active
    // virtual server would put the director in fault; the lab VM's scenario 27 has
    // the active director program and serve one.)
    let (code, _, err) = b.cli_with_input(&lab, &["passwd", "admin"], "a-cluster-test-password\n");
    assert_eq!(code, 0, "{err}");
    let said = in_ns(&lab.ns(Node::B), || {
        let mut c = raw_http::Client {
            port: 3636,
            cookies: Default::default(),
        };
        let r = c.login("admin", "a-cluster-test-password");
        assert_eq!(r.status, 200, "{}", r.body);
        let form = c.get("/virtual/new");
        let r = c.post(
            "/virtual/new",
            &[
                ("csrf", &form.hidden("csrf")),
                ("version", "0"),
                ("name", "ui"),
                ("active", "0"),
                ("address", "10.77.0.110"),
                ("address__device", "eth0"),
                ("port", "8080"),
                ("scheduler", "rr"),
            ],
        );
        assert!(
            raw_http::flash(&r).contains("Virtual server ui created"),
            "{}",
            r.body
        );
        let apply = c.get("/apply");
        let r = c.post(
            "/apply",
            &[
                ("csrf", &apply.hidden("csrf")),
                ("digest", &apply.hidden("digest")),
                ("comment", "from the backup's UI"),
            ],
        );
        raw_http::flash(&r)
    });
    assert!(peer_has(&said, "10.77.0.1", first + 5), "{said}");
    assert!(a.in_force().contains("virtual ui {"));
    assert_eq!(a.latest().info.origin, "10.77.0.2");
    let reloaded = format!("serial {}, 1 virtual server (0 active)", first + 5);
    wait_for(5 * SECOND, "A's supervisor reloading it", || {
        std::fs::read_to_string(&pa.log)
            .unwrap()
            .contains(&reloaded)
            .then_some(())
    });

    // Failover to B serves the synced configuration.
    lab.kill(&pa);
    wait_for(5 * SECOND, "B holding the synced floating address", || {
        lab.has_addr(Node::B, "10.77.0.103").then_some(())
    });
    let _ = &pb;

    // Partition, edits on both sides: a conflict on both, nothing lost.
    lab.set_port(Node::B, false);
    let ta = with_floating(&t4, &[("onlya", "10.77.0.104 eth0")]);
    let tb = with_floating(&t4, &[("onlyb", "10.77.0.105 eth0")]);
    let (code, _, err) = a.apply(&lab, &ta);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.apply(&lab, &tb);
    assert_eq!(code, 0, "{err}");
    lab.set_port(Node::B, true);
    for d in [&a, &b] {
        wait_for(10 * SECOND, "a conflict on both sides", || {
            d.metrics(&lab)
                .is_some_and(|t| {
                    t.lines()
                        .any(|l| l.contains("state=\"conflict\"") && l.ends_with(" 1"))
                })
                .then_some(())
        });
    }
    assert!(a.in_force().contains("10.77.0.104") && !a.in_force().contains("10.77.0.105"));
    assert!(b.in_force().contains("10.77.0.105") && !b.in_force().contains("10.77.0.104"));

    // Settled in A's admin UI for A's configuration: applied again above both serials,
    // B takes it, and B's own stays in its history.
    let b_own = b.latest();
    let (code, _, err) = a.cli_with_input(&lab, &["passwd", "admin"], "a-cluster-test-password\n");
    assert_eq!(code, 0, "{err}");
    let said = settle(&lab, Node::A, "10.77.0.2", "ours", "10.77.0.105");
    let settled = a.serial();
    assert!(
        settled > b_own.info.serial_no,
        "{settled} above both: {said}"
    );
    assert!(peer_has(&said, "10.77.0.2", settled), "{said}");
    assert_eq!(b.serial(), settled);
    assert!(b.in_force().contains("10.77.0.104") && !b.in_force().contains("10.77.0.105"));
    let kept = lvs_director_revision(&b, b_own.info.id);
    assert!(
        kept.contains("10.77.0.105"),
        "B's own configuration is kept in its history"
    );
    for d in [&a, &b] {
        wait_for(10 * SECOND, "the pair in step again", || {
            (d.metric(&lab, "lvs_director_sync_peer_state{peer=\"10.77.0.") == Some(1.0))
                .then_some(())
        });
    }

    // Another partition; settled in B's admin UI by taking A's configuration.
    lab.set_port(Node::B, false);
    let ta2 = with_floating(&ta, &[("onlya2", "10.77.0.106 eth0")]);
    let tb2 = with_floating(&ta, &[("onlyb2", "10.77.0.107 eth0")]);
    assert_eq!(a.apply(&lab, &ta2).0, 0);
    assert_eq!(b.apply(&lab, &tb2).0, 0);
    lab.set_port(Node::B, true);
    let b_own = b.latest();
    let said = settle(&lab, Node::B, "10.77.0.1", "peer", "10.77.0.106");
    assert!(
        said.contains(&format!("took serial {}", a.serial())),
        "{said}"
    );
    assert_eq!(b.serial(), a.serial());
    assert!(b.in_force().contains("10.77.0.106") && !b.in_force().contains("10.77.0.107"));
    assert!(lvs_director_revision(&b, b_own.info.id).contains("10.77.0.107"));
    assert!(b
        .latest()
        .info
        .comment
        .contains("chosen over this director's own"));
    let _ = &mut wb;
}

/// B's database is held locked by another process for longer than the busy timeout
/// while A applies: B takes nothing (its file in force, its history and its stored
/// configuration stay as they were), A's Apply says why, and once the lock is gone B
/// catches up.
#[test]
fn a_peer_whose_database_is_locked_takes_nothing_then_catches_up() {
    if !root_or_skip("cluster sync, locked database") {
        return;
    }
    let lab = Lab::new("synclk", &[Node::A, Node::B]);
    let (_key, base, a, b) = pair_set_up_alike(&lab);
    let first = a.serial();
    let _pa = a.pulse(&lab);
    let _pb = b.pulse(&lab);
    let _wa = a.web(&lab);
    let _wb = b.web(&lab);
    for d in [&a, &b] {
        d.wait_in_step(&lab, 10 * SECOND);
    }
    let before = (b.in_force(), b.latest().info.id);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("sqlite://{}", b.db.display());
    let mut lock: sqlx::SqliteConnection = rt.block_on(sqlx::Connection::connect(&url)).unwrap();
    rt.block_on(sqlx::Executor::execute(&mut lock, "BEGIN IMMEDIATE"))
        .unwrap();
    let t1 = with_floating(&base, &[("extra1", "10.77.0.101 eth0")]);
    let (code, out, err) = a.apply(&lab, &t1);
    assert_eq!(code, 0, "A's own Apply went through: {out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("could not record serial") && said.contains(&b.db.display().to_string()),
        "A's Apply says why B did not take it: {said}"
    );
    assert_eq!(a.serial(), first + 1);
    assert_eq!(b.in_force(), before.0, "B's file in force is unchanged");
    // Read while the lock is held (readers are not blocked): B polls A every second
    // and takes the serial as soon as the lock is gone.
    assert_eq!(b.latest().info.id, before.1, "B recorded nothing");
    let (_, exported, _) = b.cli(&lab, &["export"]);
    assert!(
        !exported.contains("10.77.0.101"),
        "B's stored configuration is unchanged"
    );
    rt.block_on(sqlx::Executor::execute(&mut lock, "ROLLBACK"))
        .unwrap();
    drop(lock);

    wait_for(
        15 * SECOND,
        "B catching up once its database is free",
        || (b.serial() == first + 1).then_some(()),
    );
    assert!(b.in_force().contains("10.77.0.101"));
    assert_eq!(b.latest().info.serial_no, first + 1);
}

/// Settles the conflict with `peer` on `node`'s Cluster page (logged in as the test's
/// administrator), choosing `side` (`ours` or `peer`), once the page shows it with a
/// diff naming `shown`; the message the choice answered.
fn settle(lab: &Lab, node: Node, peer: &str, side: &str, shown: &str) -> String {
    let (peer, side, shown) = (peer.to_string(), side.to_string(), shown.to_string());
    in_ns(&lab.ns(node), move || {
        let mut c = raw_http::Client {
            port: 3636,
            cookies: Default::default(),
        };
        c.login("admin", "a-cluster-test-password");
        let conflict = format!("Conflict with {peer}");
        let mut page = c.get("/cluster");
        for _ in 0..50 {
            if page.body.contains(&conflict) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            page = c.get("/cluster");
        }
        assert!(page.body.contains(&conflict), "{}", page.body);
        assert!(
            page.body.contains(&shown),
            "the diff shows the other side's {shown}: {}",
            page.body
        );
        let r = c.post(
            "/cluster/choose",
            &[
                ("csrf", &page.hidden("csrf")),
                ("peer", &peer),
                ("side", &side),
            ],
        );
        raw_http::flash(&r)
    })
}

/// The text of revision `id` in `d`'s database.
fn lvs_director_revision(d: &Director, id: i64) -> String {
    let db = d.db.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let store = lvs_director::storage::Store::open_existing(&db)
                .await
                .unwrap();
            let r = store.revisions().get(id).await.unwrap();
            store.close().await;
            r.text
        })
}

/// A director's `vrrp` block as its own: per-node state, priority and addresses.
fn vrrp_block(name: &str, vrid: u8, me: Node, peer: Node, master: bool, vip: &str) -> String {
    format!(
        "vrrp {name} {{\n    active = 1\n    interface = eth0\n    state = {}\n    priority = {}\n    virtual_router_id = {vrid}\n    advert_int = 1\n    unicast_src_ip = {}\n    unicast_peer = [ {} ]\n    virtual_ipaddress = [ {vip}/24 ]\n}}\n",
        if master { "master" } else { "backup" },
        if master { 150 } else { 100 },
        me.ip(),
        peer.ip()
    )
}

#[test]
fn a_vrrp_group_syncs_and_each_director_keeps_its_own_settings() {
    if !root_or_skip("cluster sync (VRRP)") {
        return;
    }
    let lab = Lab::new("syncv", &[Node::A, Node::B]);
    let key = key_file(&lab, b"a shared heartbeat key for the VRRP sync lab");
    let head = format!("serial_no = 1\nheartbeat_key_file = {}\n", key.display());
    let (a, b) = (Director::new(&lab, Node::A), Director::new(&lab, Node::B));
    let own_a = format!(
        "{head}{}",
        vrrp_block("VI_1", 51, Node::A, Node::B, true, "10.77.0.100")
    );
    let own_b = format!(
        "{head}{}",
        vrrp_block("VI_1", 51, Node::B, Node::A, false, "10.77.0.100")
    );
    // Different files, the same configuration: in step.
    assert_eq!(a.apply(&lab, &own_a).0, 0);
    assert_eq!(b.apply(&lab, &own_b).0, 0);
    let (_pa, _pb, _wa, _wb) = (a.pulse(&lab), b.pulse(&lab), a.web(&lab), b.web(&lab));
    for d in [&a, &b] {
        d.wait_in_step(&lab, 10 * SECOND);
    }
    wait_for(10 * SECOND, "A master of VI_1", || {
        lab.has_addr(Node::A, "10.77.0.100").then_some(())
    });

    // A adds a second instance, master there: B takes it as backup, one priority
    // below, its unicast addresses mirrored, and keeps its own VI_1.
    let two = format!(
        "{own_a}{}",
        vrrp_block("VI_2", 52, Node::A, Node::B, true, "10.77.0.120")
            .replace("priority = 150", "priority = 200")
    );
    let (code, out, err) = a.apply(&lab, &two);
    assert_eq!(code, 0, "{out}{err}");
    assert!(peer_has(&out, "10.77.0.2", a.serial()), "{out}{err}");
    assert!(out.contains("vrrp VI_2 is new on this director"), "{out}");
    let theirs = lvs_director::config::parse(&b.in_force()).unwrap().config;
    let (v1, v2) = (&theirs.vrrp[0].settings, &theirs.vrrp[1].settings);
    assert_eq!(
        (v1.priority, v1.unicast_src_ip),
        (Some(100), Some("10.77.0.2".parse().unwrap()))
    );
    assert_eq!(v2.priority, Some(199));
    assert_eq!(v2.state, None, "backup");
    assert_eq!(v2.unicast_src_ip, Some("10.77.0.2".parse().unwrap()));
    assert_eq!(
        v2.unicast_peer.as_ref().unwrap().0,
        ["10.77.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        theirs.global.heartbeat_key_file.as_ref().unwrap().0,
        key.to_str().unwrap()
    );
    assert!(b
        .latest()
        .info
        .comment
        .contains("vrrp VI_2 is new on this director"));
    wait_for(10 * SECOND, "A master of VI_2, B its backup", || {
        (lab.has_addr(Node::A, "10.77.0.120") && !lab.has_addr(Node::B, "10.77.0.120"))
            .then_some(())
    });
}
