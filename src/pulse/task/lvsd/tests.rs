//! lvsd on its own: health and weights, and the IPVS table it keeps, against the
//! in-memory kernel twin.

use super::*;
use crate::ipvs::desired::literal_only;
use crate::ipvs::kernel::Twin;
use crate::ipvs::table::Table;
use crate::pulse::logic::control::NodeStatus;

const CF: &str = "serial_no = 1
primary = 10.0.0.1
service = lvs
network = direct
virtual web {
active = 1
address = 10.0.0.100 eth0
port = 80
scheduler = wlc
check_interval = 1
fall = 2
rise = 2
load_monitor = uptime
server a {
    address = 10.0.1.1
    active = 1
    weight = 8
}
server b {
    address = 10.0.1.2
    active = 1
}
}
local_check nginx {
active = 1
port = 80
check = tcp
rise = 2
}
";

/// The setup lvsd gets from the supervisor for `cf` (literal addresses only).
fn setup_of(cf: &str) -> Setup {
    let (config, _) = crate::pulse::logic::node::load("lvs.cf", cf).unwrap();
    let (targets, e) = crate::pulse::logic::node::targets(&config, &literal_only);
    assert!(e.is_empty());
    let (locals, _) = crate::pulse::logic::node::local_targets(&config, &literal_only);
    let identities = targets
        .iter()
        .map(|t| (Arc::from(format!("tcp {}", t.addr)), vec![t.key.clone()]))
        .collect();
    Setup {
        config,
        targets,
        locals,
        identities,
        names: BTreeMap::new(),
    }
}

type Faults = mpsc::UnboundedReceiver<failover::Input>;

/// lvsd on `twin`, with its ownership file in a temporary directory.
fn lvsd_on(cf: &str, twin: Twin) -> (Lvsd<Twin>, Faults, tempfile::TempDir) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Mutex::new(Shared::new(NodeStatus::default())));
    let dir = tempfile::tempdir().unwrap();
    let mut twin = Some(twin);
    let connector: Connector<Twin> =
        Box::new(move || Ok(twin.take().unwrap_or_else(|| Twin::new(Table::default()))));
    let l = Lvsd::with_kernel(
        setup_of(cf),
        dir.path().to_path_buf(),
        tx,
        shared,
        connector,
    );
    (l, rx, dir)
}

fn lvsd() -> (Lvsd<Twin>, Faults, tempfile::TempDir) {
    lvsd_on(CF, Twin::new(Table::default()))
}

/// The twin lvsd programs.
fn twin(l: &mut Lvsd<Twin>) -> &mut Twin {
    l.ipvs.as_mut().unwrap().client()
}

fn result(l: &mut Lvsd<Twin>, addr: &str, ok: bool) {
    l.input(Input::Checked {
        identity: Arc::from(format!("tcp {addr}")),
        outcome: Outcome {
            ok,
            inconclusive: false,
            detail: if ok {
                "connected"
            } else {
                "connection refused"
            }
            .into(),
            elapsed: Duration::from_millis(3),
            weight: None,
        },
    });
}

fn server(l: &mut Lvsd<Twin>, name: &str) -> ServerStatus {
    let s = l.status();
    s.services[0]
        .servers
        .iter()
        .find(|r| r.name == name)
        .unwrap()
        .clone()
}

#[test]
fn a_server_leaves_after_fall_failures_and_returns_after_rise() {
    let (mut l, _rx, _dir) = lvsd();
    result(&mut l, "10.0.1.1", false);
    assert_eq!(server(&mut l, "a").health, "up", "one failure of fall = 2");
    result(&mut l, "10.0.1.1", false);
    let a = server(&mut l, "a");
    assert_eq!((a.health.as_str(), a.weight), ("down", None));
    assert!(a.transition.unwrap().cause.contains("2 consecutive failed"));
    assert!(l.dirty, "a transition asks for a reconcile");
    result(&mut l, "10.0.1.1", true);
    result(&mut l, "10.0.1.1", true);
    let a = server(&mut l, "a");
    assert_eq!((a.health.as_str(), a.weight), ("up", Some(8)));
    assert_eq!(a.last_check, "connected");
    assert_eq!(server(&mut l, "b").weight, Some(1), "b was never touched");
    let events: Vec<_> = l
        .shared
        .locked()
        .events
        .iter()
        .map(|e| e.state.clone())
        .collect();
    assert_eq!(events, vec!["down", "up"]);
}

#[test]
fn checks_and_failures_are_counted_and_the_kernel_counters_reported() {
    use crate::ipvs::table::{Dest, DestParams, FwdMethod, Service, ServiceParams, Stats};
    let (mut l, _rx, _dir) = lvsd();
    let a = server(&mut l, "a");
    assert_eq!((a.checks, a.check_failures, a.totals), (0, 0, None));
    for ok in [true, false, false, true] {
        result(&mut l, "10.0.1.1", ok);
    }
    result(&mut l, "10.0.1.2", false);
    let a = server(&mut l, "a");
    assert_eq!((a.checks, a.check_failures, a.last_check_ms), (4, 2, 3));
    let b = server(&mut l, "b");
    assert_eq!((b.checks, b.check_failures), (1, 1));
    // A reload keeps the counts of the servers it keeps.
    let (config, _) = crate::pulse::logic::node::load("lvs.cf", CF).unwrap();
    let (targets, _) = crate::pulse::logic::node::targets(&config, &literal_only);
    let (locals, _) = crate::pulse::logic::node::local_targets(&config, &literal_only);
    let identities = l.setup.identities.clone();
    l.input(Input::Reconfigure(Box::new(Setup {
        config,
        targets,
        locals,
        identities,
        names: BTreeMap::new(),
    })));
    assert_eq!(server(&mut l, "a").checks, 4);

    // The kernel's cumulative counters, as the last dump saw them.
    let stats = |n: u64| Stats {
        conns: n,
        inpkts: n * 10,
        outpkts: n * 9,
        inbytes: n * 1000,
        outbytes: n * 9000,
        cps: 1,
        ..Stats::default()
    };
    let mut dest = Dest::new(DestParams {
        fwd: FwdMethod::Route,
        weight: 8,
        u_threshold: 0,
        l_threshold: 0,
        tun_type: 0,
        tun_port: 0,
        tun_flags: 0,
    });
    dest.stats = stats(7);
    let mut svc = Service::new(
        ServiceParams {
            scheduler: "wlc".into(),
            flags: 0,
            timeout: 0,
            netmask: 0xffff_ffff,
        },
        [(
            DestKey {
                addr: "10.0.1.1".parse().unwrap(),
                port: 80,
            },
            dest,
        )]
        .into(),
    );
    svc.stats = stats(11);
    let key = l.services["web"];
    let mut table = Table::default();
    table.services.insert(key, svc);
    l.kernel = Some((table, Instant::now()));
    let s = l.status();
    let web = &s.services[0];
    let t = web.totals.expect("in the kernel");
    assert_eq!(
        (t.conns, t.inpkts, t.outpkts, t.inbytes, t.outbytes),
        (11, 110, 99, 11_000, 99_000)
    );
    let a = web.servers.iter().find(|r| r.name == "a").unwrap();
    assert_eq!(a.totals.map(|t| (t.conns, t.outbytes)), Some((7, 63_000)));
    let b = web.servers.iter().find(|r| r.name == "b").unwrap();
    assert_eq!(b.totals, None, "b is not in this kernel table");
}

#[test]
fn a_check_that_could_not_run_here_does_not_count_against_the_server() {
    let (mut l, _rx, _dir) = lvsd();
    for _ in 0..5 {
        l.input(Input::Checked {
            identity: Arc::from("tcp 10.0.1.1"),
            outcome: Outcome {
                ok: false,
                inconclusive: true,
                detail: format!(
                    "{} (Too many open files)",
                    crate::pulse::io::probe::OUT_OF_DESCRIPTORS
                ),
                elapsed: Duration::ZERO,
                weight: None,
            },
        });
    }
    let a = server(&mut l, "a");
    assert_eq!(
        (a.health.as_str(), a.last_check.as_str()),
        ("up", "not checked yet")
    );
    assert_eq!((a.checks, a.check_failures), (0, 0));
}

#[test]
fn drain_and_load_set_the_weight_and_say_what_they_did() {
    let (mut l, _rx, _dir) = lvsd();
    let (tx, mut rx) = oneshot::channel();
    l.input(Input::Drain {
        key: ("web".into(), "b".into()),
        drain: true,
        reply: tx,
    });
    assert_eq!(rx.try_recv().unwrap(), Ok("web/b drained".into()));
    let b = server(&mut l, "b");
    assert_eq!((b.drained, b.weight), (true, Some(0)));
    let (tx, mut rx) = oneshot::channel();
    l.input(Input::Drain {
        key: ("web".into(), "zz".into()),
        drain: true,
        reply: tx,
    });
    let refused = rx.try_recv().unwrap().unwrap_err();
    assert_eq!(
        refused.to_string(),
        "no active real server zz in active virtual server web"
    );
    // Piranha's formula: load 0 raises the weight by W/2 per report, up to 10 W.
    l.input(Input::Load {
        key: ("web".into(), "a".into()),
        report: Ok(Report::Load(0.0)),
    });
    assert_eq!(server(&mut l, "a").weight, Some(12));
    l.input(Input::Load {
        key: ("web".into(), "a".into()),
        report: Err(LoadError::Command("ssh: connection refused".into())),
    });
    assert_eq!(
        server(&mut l, "a").weight,
        Some(12),
        "a failed report changes nothing"
    );
}

#[test]
fn a_failing_local_check_is_a_fault_and_its_return_clears_it() {
    let (mut l, mut rx, _dir) = lvsd();
    while rx.try_recv().is_ok() {}
    let out = |ok| Outcome {
        ok,
        inconclusive: false,
        detail: "x".into(),
        elapsed: Duration::ZERO,
        weight: None,
    };
    let health = l.local_health();
    assert!(health.borrow().is_empty(), "no result yet, no reading");
    l.input(Input::LocalChecked {
        name: "nginx".into(),
        outcome: out(false),
    });
    assert_eq!(health.borrow().get("nginx"), Some(&false));
    match rx.try_recv().unwrap() {
        failover::Input::Fault { source, cause } => {
            assert_eq!(source, "local check nginx");
            assert!(cause.is_some());
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..2 {
        l.input(Input::LocalChecked {
            name: "nginx".into(),
            outcome: out(true),
        });
    }
    match rx.try_recv().unwrap() {
        failover::Input::Fault { cause, .. } => assert_eq!(cause, None),
        other => panic!("{other:?}"),
    }
    assert_eq!(health.borrow().get("nginx"), Some(&true));
}

/// The weight of each destination of the one service in the twin, by address.
fn weights(l: &mut Lvsd<Twin>) -> BTreeMap<String, u32> {
    let t = &twin(l).table;
    assert!(t.services.len() <= 1, "{t:?}");
    t.services
        .values()
        .flat_map(|s| s.dests.iter())
        .map(|(k, d)| (k.addr.to_string(), d.params.weight))
        .collect()
}

fn map(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(a, w)| (a.to_string(), *w)).collect()
}

/// keepalived's misc_dynamic: a passing check that sets a weight moves the server
/// to it (0 included: it stays, without new connections); a pass without one goes
/// back to the configured weight; a failure forgets it, so the server returns later
/// with its configured weight.
#[test]
fn a_check_that_sets_the_weight_moves_the_server() {
    let (mut l, _rx, _dir) = lvsd();
    l.round(true);
    let checked = |l: &mut Lvsd<Twin>, ok: bool, weight: Option<u32>| {
        l.input(Input::Checked {
            identity: Arc::from("tcp 10.0.1.1"),
            outcome: Outcome {
                ok,
                inconclusive: false,
                detail: format!("exit status {}", weight.map_or(0, |w| w + 2)),
                elapsed: Duration::ZERO,
                weight,
            },
        });
        l.round(false);
    };
    checked(&mut l, true, Some(3));
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 3), ("10.0.1.2", 1)]));
    checked(&mut l, true, Some(0));
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 0), ("10.0.1.2", 1)]));
    checked(&mut l, true, None);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    checked(&mut l, true, Some(5));
    checked(&mut l, false, None);
    checked(&mut l, false, Some(9));
    assert_eq!(weights(&mut l), map(&[("10.0.1.2", 1)]), "fall = 2");
    checked(&mut l, true, None);
    checked(&mut l, true, None);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
}

/// The table lvsd keeps in the kernel follows the servers' health: a server that
/// fails leaves it, and comes back with its weight.
#[test]
fn the_table_follows_health_in_the_twin() {
    let (mut l, _rx, _dir) = lvsd();
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    result(&mut l, "10.0.1.1", false);
    result(&mut l, "10.0.1.1", false);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.1.2", 1)]));
    result(&mut l, "10.0.1.1", true);
    result(&mut l, "10.0.1.1", true);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    // Applying the same desired state again changes nothing.
    let before = twin(&mut l).counters();
    l.round(false);
    assert_eq!(twin(&mut l).counters().changes, before.changes);
}

/// A batch the kernel partly refuses: what it took is kept and owned, the refusal is
/// reported in the status, and the next resync adds what was refused.
#[test]
fn a_partly_refused_batch_is_reported_and_repaired() {
    let refuse = Arc::new(AtomicU64::new(1));
    let left = refuse.clone();
    let twin_refusing = Twin::new(Table::default()).refusing(move |op| match op {
        crate::ipvs::diff::Op::AddDest(_, d, _)
            if d.addr.to_string() == "10.0.1.2" && left.load(Ordering::Relaxed) > 0 =>
        {
            left.fetch_sub(1, Ordering::Relaxed);
            Some(libc::ENOMEM)
        }
        _ => None,
    });
    let (mut l, _rx, _dir) = lvsd_on(CF, twin_refusing);
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8)]));
    assert_eq!(l.refused.len(), 1, "{:?}", l.refused);
    assert!(
        l.refused[0].contains("10.0.1.2") && l.refused[0].contains(" -a "),
        "{:?}",
        l.refused
    );
    assert_eq!(refuse.load(Ordering::Relaxed), 0);
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    assert!(l.refused.is_empty(), "{:?}", l.refused);
}

/// A batch lost half-way (the connection failed after the first operation): a fault
/// is raised, nothing is flushed, and the next resync completes the table.
#[test]
fn a_lost_batch_is_a_fault_and_the_resync_completes_it() {
    let (mut l, mut rx, _dir) = lvsd();
    while rx.try_recv().is_ok() {}
    twin(&mut l).fail_next_batch_after(2);
    l.round(true);
    let mut faults = Vec::new();
    while let Ok(failover::Input::Fault { cause, .. }) = rx.try_recv() {
        faults.push(cause);
    }
    assert!(
        faults.iter().any(|c| c
            .as_deref()
            .is_some_and(|c| c.starts_with("IPVS programming failed"))),
        "{faults:?}"
    );
    assert!(l.ipvs.is_ok(), "the kernel is still there");
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    let mut cleared = false;
    while let Ok(failover::Input::Fault { cause, .. }) = rx.try_recv() {
        cleared = cause.is_none();
    }
    assert!(cleared, "the fault is cleared once the table is right");
}

/// `tcp_timeout` and friends are set in the kernel once, not on every reload.
#[test]
fn timeouts_are_set_when_they_differ() {
    let cf = CF.replace(
        "network = direct",
        "network = direct\ntcp_timeout = 600\nudp_timeout = 60",
    );
    let (mut l, _rx, _dir) = lvsd_on(&cf, Twin::new(Table::default()));
    let t = twin(&mut l).timeouts;
    assert_eq!((t.tcp, t.tcp_fin, t.udp), (600, 120, 60));
    let changes = twin(&mut l).counters().changes;
    l.input(Input::Reconfigure(Box::new(setup_of(&cf))));
    assert_eq!(twin(&mut l).counters().changes, changes);
}

/// The weight of each destination of every service in the twin, by service and
/// real server address.
fn table(l: &mut Lvsd<Twin>) -> BTreeMap<String, BTreeMap<String, u32>> {
    twin(l)
        .table
        .services
        .iter()
        .map(|(k, s)| {
            let dests = s
                .dests
                .iter()
                .map(|(d, dest)| (d.addr.to_string(), dest.params.weight))
                .collect();
            (k.to_string(), dests)
        })
        .collect()
}

/// Sets the connection count the twin reports for a real server of `web`.
fn connections(l: &mut Lvsd<Twin>, addr: &str, active: u32) {
    let key = l.services["web"];
    let dest = DestKey {
        addr: addr.parse().unwrap(),
        port: 80,
    };
    let svc = twin(l).table.services.get_mut(&key).unwrap();
    svc.dests.get_mut(&dest).unwrap().conns.active = active;
}

/// Under `quiesce_server = 1` a failed server stays in the table at weight 0 (its
/// connections end on their own) and gets its weight back when it returns; the
/// status says down and weight 0.
#[test]
fn a_quiesced_server_stays_at_weight_zero_until_it_returns() {
    let cf = CF.replace("scheduler = wlc", "scheduler = wlc\nquiesce_server = 1");
    let (mut l, _rx, _dir) = lvsd_on(&cf, Twin::new(Table::default()));
    l.round(true);
    connections(&mut l, "10.0.1.1", 5);
    result(&mut l, "10.0.1.1", false);
    result(&mut l, "10.0.1.1", false);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 0), ("10.0.1.2", 1)]));
    let a = server(&mut l, "a");
    assert_eq!((a.health.as_str(), a.weight), ("down", Some(0)));
    // A resync sees its connections and still leaves it there.
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 0), ("10.0.1.2", 1)]));
    result(&mut l, "10.0.1.1", true);
    result(&mut l, "10.0.1.1", true);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
}

/// Without quiesce a failed server leaves the table at once, connections or not
/// (they are dead anyway): no drain is remembered for it.
#[test]
fn a_failed_server_leaves_at_once_even_with_connections() {
    let (mut l, _rx, dir) = lvsd();
    l.round(true);
    connections(&mut l, "10.0.1.2", 7);
    l.round(true);
    result(&mut l, "10.0.1.2", false);
    result(&mut l, "10.0.1.2", false);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8)]));
    let rec = l.ipvs.as_ref().unwrap();
    assert!(rec.ownership().drains.is_empty(), "{:?}", rec.ownership());
    assert_eq!(&Ownership::load(dir.path()).unwrap(), rec.ownership());
}

/// A load report changes the weight in the kernel (Piranha's formula), a failed
/// report leaves it, and the next report moves it again from where it is.
#[test]
fn load_reports_set_the_weight_in_the_kernel() {
    let (mut l, _rx, _dir) = lvsd();
    l.round(true);
    let load = |l: &mut Lvsd<Twin>, report| {
        l.input(Input::Load {
            key: ("web".into(), "a".into()),
            report,
        });
        l.round(false);
    };
    load(&mut l, Ok(Report::Load(0.0)));
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 12), ("10.0.1.2", 1)]));
    let changes = twin(&mut l).counters().changes;
    load(&mut l, Err(LoadError::Crashed("the task panicked".into())));
    assert_eq!(twin(&mut l).counters().changes, changes, "nothing sent");
    load(&mut l, Ok(Report::Load(0.0)));
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 16), ("10.0.1.2", 1)]));
    assert_eq!(server(&mut l, "a").weight, Some(16));
}

/// An administrator's drain sets weight 0 and keeps the server (its connections
/// finish); enabling restores its weight; a second drain says so and sends nothing.
#[test]
fn a_drained_server_keeps_its_place_at_weight_zero() {
    let (mut l, _rx, _dir) = lvsd();
    l.round(true);
    connections(&mut l, "10.0.1.1", 3);
    let drain = |l: &mut Lvsd<Twin>, drain: bool| {
        let (tx, mut rx) = oneshot::channel();
        l.input(Input::Drain {
            key: ("web".into(), "a".into()),
            drain,
            reply: tx,
        });
        l.round(false);
        rx.try_recv().unwrap()
    };
    assert_eq!(drain(&mut l, true), Ok("web/a drained".into()));
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 0), ("10.0.1.2", 1)]));
    let changes = twin(&mut l).counters().changes;
    assert_eq!(drain(&mut l, true), Ok("web/a is already drained".into()));
    assert_eq!(twin(&mut l).counters().changes, changes);
    // A resync leaves a drained server in place, whatever its connections.
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 0), ("10.0.1.2", 1)]));
    assert_eq!(drain(&mut l, false), Ok("web/a enabled".into()));
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    let events: Vec<_> = l
        .shared
        .locked()
        .events
        .iter()
        .map(|e| (e.state.clone(), e.cause.clone()))
        .collect();
    assert_eq!(
        events,
        [
            ("drained".to_string(), "by an administrator".to_string()),
            ("enabled".to_string(), "by an administrator".to_string())
        ]
    );
}

/// A reload with a changed configuration: a removed server with connections drains
/// at weight 0 (remembered, on disk too) and goes once they end; an added server
/// comes in; a server that was down stays out and returns with its new weight.
#[test]
fn a_reload_changes_the_kernel_as_the_new_configuration_says() {
    let (mut l, _rx, dir) = lvsd();
    l.round(true);
    connections(&mut l, "10.0.1.2", 4);
    result(&mut l, "10.0.1.1", false);
    result(&mut l, "10.0.1.1", false);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.1.2", 1)]));
    let reloaded = CF.replace("    weight = 8\n", "    weight = 3\n").replace(
        "server b {\n    address = 10.0.1.2",
        "server c {\n    address = 10.0.1.3",
    );
    l.input(Input::Reconfigure(Box::new(setup_of(&reloaded))));
    assert!(l.dirty);
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.2", 0), ("10.0.1.3", 1)]));
    assert_eq!(
        server(&mut l, "a").health,
        "down",
        "health survives a reload"
    );
    let key = l.services["web"];
    let b = DestKey {
        addr: "10.0.1.2".parse().unwrap(),
        port: 80,
    };
    let rec = l.ipvs.as_ref().unwrap();
    let drains: Vec<_> = rec.ownership().drains.keys().copied().collect();
    assert_eq!(drains, [(key, b)]);
    assert_eq!(&Ownership::load(dir.path()).unwrap(), rec.ownership());
    result(&mut l, "10.0.1.1", true);
    result(&mut l, "10.0.1.1", true);
    l.round(false);
    assert_eq!(
        weights(&mut l),
        map(&[("10.0.1.1", 3), ("10.0.1.2", 0), ("10.0.1.3", 1)])
    );
    // The last connection ends: the next resync sees it and deletes the server.
    connections(&mut l, "10.0.1.2", 0);
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 3), ("10.0.1.3", 1)]));
    let rec = l.ipvs.as_ref().unwrap();
    assert!(rec.ownership().drains.is_empty());
    assert_eq!(&Ownership::load(dir.path()).unwrap(), rec.ownership());
}

/// Two virtual servers.
fn two_services() -> String {
    CF.replace(
        "local_check nginx {",
        "virtual mail {
active = 1
address = 10.0.0.101 eth0
port = 25
scheduler = rr
server m {
    address = 10.0.1.9
    active = 1
}
}
local_check nginx {",
    )
}

/// A batch the kernel partly refuses (one service's creation, so its real server
/// too): the rest stands; only what was made is owned (memory and disk); the status
/// lists each refused command; the fault is not raised (IPVS works). The next pass,
/// an ordinary update after a health change, dumps first because the table is
/// uncertain, and repairs it alongside the change.
#[test]
fn a_partly_refused_batch_is_owned_as_made_and_the_next_update_repairs_it() {
    let mail_vip: IpAddr = "10.0.0.101".parse().unwrap();
    let mut refuse = true;
    let twin_refusing = Twin::new(Table::default()).refusing(move |op| match op {
        crate::ipvs::diff::Op::AddService(ServiceKey::Addr { addr, .. }, _)
            if *addr == mail_vip && std::mem::take(&mut refuse) =>
        {
            Some(libc::ENOMEM)
        }
        _ => None,
    });
    let (mut l, mut rx, dir) = lvsd_on(&two_services(), twin_refusing);
    while rx.try_recv().is_ok() {}
    l.round(false);
    let (web, mail) = (l.services["web"], l.services["mail"]);
    let web_only = BTreeMap::from([(web.to_string(), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]))]);
    assert_eq!(table(&mut l), web_only);
    assert_eq!(l.refused.len(), 2, "{:?}", l.refused);
    assert!(
        l.refused[0].starts_with("ipvsadm -A -t 10.0.0.101:25"),
        "{:?}",
        l.refused
    );
    let enomem = crate::ipvs::client::KernelError(libc::ENOMEM);
    assert!(
        l.refused[0].ends_with(&format!(": {enomem}")),
        "{:?}",
        l.refused
    );
    assert!(
        l.refused[1].starts_with("ipvsadm -a -t 10.0.0.101:25 -r 10.0.1.9:25"),
        "{:?}",
        l.refused
    );
    assert_eq!(l.status().warnings, l.refused);
    let rec = l.ipvs.as_ref().unwrap();
    assert_eq!(rec.ownership().owned, [web].into());
    assert_eq!(&Ownership::load(dir.path()).unwrap(), rec.ownership());
    let mut causes = Vec::new();
    while let Ok(failover::Input::Fault { source, cause }) = rx.try_recv() {
        causes.push((source, cause));
    }
    assert_eq!(causes, [("ipvs".to_string(), None)]);

    // b fails: the next update carries that change and the repair.
    result(&mut l, "10.0.1.2", false);
    result(&mut l, "10.0.1.2", false);
    let before = twin(&mut l).counters();
    l.round(false);
    let sent = twin(&mut l).counters().since(before);
    // A dump (the services, then web's real servers), the removal of b, and mail's
    // service and real server.
    assert_eq!((sent.requests, sent.changes), (2 + 3, 3));
    assert_eq!(
        table(&mut l),
        BTreeMap::from([
            (web.to_string(), map(&[("10.0.1.1", 8)])),
            (mail.to_string(), map(&[("10.0.1.9", 1)])),
        ])
    );
    assert!(l.refused.is_empty(), "{:?}", l.refused);
    let rec = l.ipvs.as_ref().unwrap();
    assert_eq!(rec.ownership().owned, [web, mail].into());
    assert_eq!(&Ownership::load(dir.path()).unwrap(), rec.ownership());
    // Known again: the next update costs no dump.
    let before = twin(&mut l).counters();
    l.round(false);
    assert_eq!(twin(&mut l).counters().since(before).requests, 0);
}

/// A kernel without IPVS: the status says so in the kernel's words, a fault holds
/// the node back while an active virtual server needs IPVS, nothing is planned; once
/// a later resync connects, the fault clears and the table is made.
#[test]
fn a_kernel_without_ipvs_is_a_fault_until_it_connects() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Mutex::new(Shared::new(NodeStatus::default())));
    let dir = tempfile::tempdir().unwrap();
    let mut attempts = 0;
    let connector: Connector<Twin> = Box::new(move || {
        attempts += 1;
        if attempts == 1 {
            Err(IpvsError::NotAvailable)
        } else {
            Ok(Twin::new(Table::default()))
        }
    });
    let mut l = Lvsd::with_kernel(setup_of(CF), dir.path().into(), tx, shared, connector);
    let text = "IPVS is not available in this kernel: load the ip_vs module";
    assert_eq!(l.status().ipvs, text);
    assert!(matches!(
        l.ipvs,
        Err(IpvsUnavailable::Kernel(IpvsError::NotAvailable))
    ));
    match rx.try_recv().unwrap() {
        failover::Input::Fault { source, cause } => {
            assert_eq!(source, "ipvs");
            assert_eq!(cause, Some(format!("IPVS cannot be programmed: {text}")));
        }
        other => panic!("{other:?}"),
    }
    l.round(true);
    l.connect();
    assert_eq!(l.status().ipvs, "available");
    let mut last = None;
    while let Ok(failover::Input::Fault { cause, .. }) = rx.try_recv() {
        last = Some(cause);
    }
    assert_eq!(last, Some(None), "the fault is cleared");
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
}

/// keepalived's quorum with hysteresis: a (8) failing leaves 1 < 8 − 1, so the sorry
/// server takes over and the service is recorded down with the weights as its cause;
/// a's return (9 ≥ 8 + 1) brings the pool back. Each change is recorded once.
#[test]
fn the_quorum_moves_the_service_to_the_sorry_server_and_back() {
    let cf = CF.replace(
        "load_monitor = uptime\n",
        "sorry_server = 10.0.9.9\nsorry_port = 8080\nquorum = 8\nhysteresis = 1\n",
    );
    let (mut l, _rx, _dir) = lvsd_on(&cf, Twin::new(Table::default()));
    l.round(true);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    result(&mut l, "10.0.1.1", false);
    result(&mut l, "10.0.1.1", false);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.9.9", 1)]));
    assert!(l.status().services[0].sorry);
    l.round(false);
    result(&mut l, "10.0.1.1", true);
    result(&mut l, "10.0.1.1", true);
    l.round(false);
    assert_eq!(weights(&mut l), map(&[("10.0.1.1", 8), ("10.0.1.2", 1)]));
    assert!(!l.status().services[0].sorry);
    let events: Vec<_> = l
        .shared
        .locked()
        .events
        .iter()
        .filter(|e| e.subject == "service web")
        .map(|e| (e.state.clone(), e.cause.clone()))
        .collect();
    assert_eq!(
        events,
        [
            (
                "down".to_string(),
                "quorum lost: live weight 1 < quorum 8 − hysteresis 1".to_string()
            ),
            (
                "up".to_string(),
                "quorum gained: live weight 9 ≥ quorum 8 + hysteresis 1".to_string()
            ),
        ]
    );
}

/// keepalived's omega: on stop, the servers still up and the quorum are recorded as
/// going down (so their commands and notifications run); a server already down is not
/// said again, and without omega nothing is said.
#[test]
fn omega_says_what_stops_with_the_supervisor() {
    let said = |cf: &str| {
        let (mut l, _rx, _dir) = lvsd_on(cf, Twin::new(Table::default()));
        l.round(true);
        result(&mut l, "10.0.1.2", false);
        result(&mut l, "10.0.1.2", false);
        l.round(false);
        let before = l.shared.locked().events.len();
        let (tx, mut rx) = oneshot::channel();
        assert!(!l.input(Input::Stopping(tx)));
        assert!(rx.try_recv().is_ok(), "answered");
        let events: Vec<_> = l
            .shared
            .locked()
            .events
            .iter()
            .skip(before)
            .cloned()
            .collect();
        events
            .into_iter()
            .map(|e| format!("{} {} ({})", e.subject, e.state, e.cause))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        said(&CF.replace("load_monitor = uptime\n", "omega = 1\n")),
        [
            "server web/a down (the supervisor stops)",
            "service web down (the supervisor stops)"
        ]
    );
    assert!(said(CF).is_empty());
}
