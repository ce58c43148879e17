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
    assert!(rx
        .try_recv()
        .unwrap()
        .unwrap_err()
        .contains("no active real server zz"));
    // Piranha's formula: load 0 raises the weight by W/2 per report, up to 10 W.
    l.input(Input::Load {
        key: ("web".into(), "a".into()),
        report: Ok(Report::Load(0.0)),
    });
    assert_eq!(server(&mut l, "a").weight, Some(12));
    l.input(Input::Load {
        key: ("web".into(), "a".into()),
        report: Err("ssh: connection refused".into()),
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
    };
    l.input(Input::LocalChecked {
        name: "nginx".into(),
        outcome: out(false),
    });
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
