//! lvs-director's VRRP against keepalived 2.2.7 (Debian's, VRRP side only) on one
//! link of network namespaces: keepalived runs in node A, lvs-director's VRRP engine
//! (the same `pulse::task::vrrp::start` the supervisor calls) in node B. Each test
//! checks who holds the virtual address, both ways round, and the hand-over on a
//! clean stop.
//!
//! Needs root and `keepalived` (scripts/test.sh installs it); see tests/common/root.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

mod common;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::netns::{root_or_skip, spawn_in, wait_for, Lab, Node, Proc, VIP};
use lvs_director::pulse::logic::control::NodeStatus;
use lvs_director::pulse::task::lvsd::LocalHealth;
use lvs_director::pulse::task::shared::Shared;
use lvs_director::pulse::task::vrrp::{self, Board, InstanceStatus};

const SECOND: Duration = Duration::from_secs(1);

/// lvs-director's VRRP engine running in a node, until [`Ours::stop`] (clean: priority
/// 0 and addresses released) or drop (a crash: it just goes silent).
struct Ours {
    board: Board,
    /// What the engine records (state changes become events and notifications).
    shared: Arc<Mutex<Shared>>,
    /// The local checks' health the engine tracks (what lvsd publishes in `pulse`).
    checks: tokio::sync::watch::Sender<LocalHealth>,
    stop: Option<std::sync::mpsc::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl Ours {
    fn start(lab: &Lab, n: Node, lvs_cf: &str) -> Ours {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("FO_LOG").unwrap_or_else(|_| "info".into()))
            .with_test_writer()
            .try_init();
        let parsed = lvs_director::config::parse(lvs_cf).unwrap();
        let errors: Vec<_> = lvs_director::config::validate(&parsed.config)
            .into_iter()
            .filter(|d| d.severity == lvs_director::config::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let config = parsed.config;
        let (board_tx, board_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<bool>();
        let (checks, local_health) = tokio::sync::watch::channel(LocalHealth::new());
        let shared = Arc::new(Mutex::new(Shared::new(NodeStatus::default())));
        let engine_shared = shared.clone();
        let thread = spawn_in(&lab.ns(n), move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let context = vrrp::Context {
                    shared: engine_shared,
                    policy: Arc::default(),
                    local_health,
                };
                let running = vrrp::start(&config, context).unwrap();
                board_tx.send(running.board.clone()).unwrap();
                let clean = tokio::task::spawn_blocking(move || stop_rx.recv().unwrap_or(false))
                    .await
                    .unwrap();
                if clean {
                    running.stop().await;
                }
            });
        });
        Ours {
            board: board_rx
                .recv_timeout(5 * SECOND)
                .expect("the engine started"),
            checks,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// What lvsd would publish after local check `name` answered.
    fn check(&self, name: &str, up: bool) {
        self.checks.send_modify(|h| {
            h.insert(name.to_string(), up);
        });
    }

    /// The (subject, state, cause) of every change recorded so far.
    fn events(&self) -> Vec<(String, String, String)> {
        let s = self.shared.lock().unwrap();
        s.events
            .iter()
            .map(|e| (e.subject.clone(), e.state.clone(), e.cause.clone()))
            .collect()
    }

    fn status(&self, instance: &str) -> InstanceStatus {
        self.board.lock().unwrap().get(instance).cloned().unwrap()
    }

    fn wait_state(&self, instance: &str, state: &str, limit: Duration) -> Duration {
        let t0 = Instant::now();
        wait_for(limit, &format!("{instance} {state}"), || {
            (self.status(instance).state == state).then_some(())
        });
        t0.elapsed()
    }

    fn finish(&mut self, clean: bool) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(clean);
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    fn stop(&mut self) {
        self.finish(true)
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        self.finish(false);
    }
}

struct Keepalived<'a> {
    version: u8,
    priority: u8,
    advert_int: &'a str,
    /// (our address, the peer's) for unicast
    unicast: Option<(&'a str, &'a str)>,
    pass: Option<&'a str>,
}

impl Keepalived<'_> {
    /// VRRPv3 multicast with 0.1 s adverts, no authentication.
    fn v3_fast(priority: u8) -> Keepalived<'static> {
        Keepalived {
            version: 3,
            priority,
            advert_int: "0.1",
            unicast: None,
            pass: None,
        }
    }

    fn conf(&self) -> String {
        let mut s = format!(
            "global_defs {{\n  router_id ka\n  vrrp_version {}\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {}\n  advert_int {}\n",
            self.version, self.priority, self.advert_int
        );
        if let Some((src, peer)) = self.unicast {
            s += &format!("  unicast_src_ip {src}\n  unicast_peer {{\n    {peer}\n  }}\n");
        }
        if let Some(p) = self.pass {
            s += &format!("  authentication {{\n    auth_type PASS\n    auth_pass {p}\n  }}\n");
        }
        s += &format!("  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n");
        s
    }

    fn start(&self, lab: &Lab, n: Node, name: &str) -> Proc {
        lab.keepalived(n, name, &self.conf())
    }
}

fn ours_conf(version: u8, priority: u8, advert_int: &str, extra: &str) -> String {
    format!(
        "vrrp VI_1 {{\n    active = 1\n    interface = eth0\n    virtual_router_id = 51\n    priority = {priority}\n    advert_int = {advert_int}\n    version = {version}\n{extra}    virtual_ipaddress = [ {VIP}/24 ]\n}}\n"
    )
}

fn holders(lab: &Lab) -> (bool, bool) {
    (lab.has_addr(Node::A, VIP), lab.has_addr(Node::B, VIP))
}

fn wait_holder(lab: &Lab, want: (bool, bool), limit: Duration) -> Duration {
    let t0 = Instant::now();
    wait_for(limit, &format!("VIP holders (A, B) = {want:?}"), || {
        (holders(lab) == want).then_some(())
    });
    t0.elapsed()
}

/// Root (or skipped, see tests/common/root.rs) and keepalived installed.
fn ready(test: &str) -> bool {
    root_or_skip(test) && keepalived_present()
}

fn keepalived_present() -> bool {
    let found = std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok();
    assert!(
        found,
        "keepalived is not installed (scripts/test.sh installs Debian's keepalived)"
    );
    found
}

/// VRRPv3 multicast, 0.1 s adverts: keepalived (150) is master, lvs-director (100)
/// backup; keepalived's clean stop hands over within the skew time; keepalived back
/// preempts and lvs-director releases.
#[test]
fn v3_multicast_keepalived_master_then_hand_over_and_back() {
    if !ready("v3_multicast_keepalived_master_then_hand_over_and_back") {
        return;
    }
    let lab = Lab::new("vrrp3", &[Node::A, Node::B]);
    let ka = Keepalived::v3_fast(150);
    let k = ka.start(&lab, Node::A, "ka");
    let mut ours = Ours::start(&lab, Node::B, &ours_conf(3, 100, "0.1", ""));
    wait_holder(&lab, (true, false), 10 * SECOND);
    ours.wait_state("VI_1", "BACKUP", 5 * SECOND);
    // It stays that way: keepalived's adverts pass every check here.
    std::thread::sleep(SECOND);
    assert_eq!(holders(&lab), (true, false));
    let s = ours.status("VI_1");
    assert_eq!(s.master, Some(Node::A.ip().parse().unwrap()), "{s:?}");
    assert!(s.adverts_received >= 5, "{s:?}");
    assert!(s.dropped.is_empty(), "{s:?}");
    // keepalived stops cleanly (priority 0): we take over after the skew time,
    // (256 - 100) / 256 × 0.1 s ≈ 61 ms, not the master-down interval.
    lab.signal(&k, libc::SIGTERM);
    let took = ours.wait_state("VI_1", "MASTER", 3 * SECOND);
    wait_holder(&lab, (false, true), 3 * SECOND);
    assert!(took < Duration::from_millis(300), "took {took:?}");
    lab.wait_exit(&k, 5 * SECOND);
    // keepalived returns with the higher priority and preempts.
    let _k2 = ka.start(&lab, Node::A, "ka2");
    wait_holder(&lab, (true, false), 10 * SECOND);
    ours.wait_state("VI_1", "BACKUP", 2 * SECOND);
    ours.stop();
}

/// VRRPv2 with PASS authentication, unicast, 1 s adverts: lvs-director (200) is
/// master and keepalived (100) backup; lvs-director's clean stop hands over to
/// keepalived within its skew time (0.61 s), well before its master-down interval.
#[test]
fn v2_unicast_pass_lvs_director_master_then_clean_stop() {
    if !ready("v2_unicast_pass_lvs_director_master_then_clean_stop") {
        return;
    }
    let lab = Lab::new("vrrp2", &[Node::A, Node::B]);
    let ka = Keepalived {
        version: 2,
        priority: 100,
        advert_int: "1",
        unicast: Some((Node::A.ip(), Node::B.ip())),
        pass: Some("secret12"),
    };
    let k = ka.start(&lab, Node::A, "ka");
    let extra = format!(
        "    auth_type = pass\n    auth_pass = secret12\n    unicast_src_ip = {}\n    unicast_peer = [ {} ]\n",
        Node::B.ip(),
        Node::A.ip()
    );
    let mut ours = Ours::start(&lab, Node::B, &ours_conf(2, 200, "1", &extra));
    ours.wait_state("VI_1", "MASTER", 10 * SECOND);
    wait_holder(&lab, (false, true), 5 * SECOND);
    std::thread::sleep(3 * SECOND);
    assert_eq!(holders(&lab), (false, true), "{}", lab.log_of(&k));
    let s = ours.status("VI_1");
    assert!(s.adverts_sent >= 3, "{s:?}");
    ours.stop();
    let took = wait_holder(&lab, (true, false), 5 * SECOND);
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(lab.log_of(&k).contains("Entering MASTER STATE"));
}

/// A wrong PASS password: neither side acts on the other's adverts; lvs-director
/// counts them under "authentication" and keepalived logs them.
///
/// lvs-director advertises every 2 s here, keepalived every second: keepalived 2.2.7
/// restarts its master's advert timer on every advert it receives for the instance,
/// valid or not (vrrp_scheduler.c, end of vrrp_dispatcher_read), so adverts arriving
/// at its own rate just before its timer fires keep it from ever sending.
#[test]
fn v2_wrong_password_is_counted_and_ignored() {
    if !ready("v2_wrong_password_is_counted_and_ignored") {
        return;
    }
    let lab = Lab::new("vrrpauth", &[Node::A, Node::B]);
    let ka = Keepalived {
        version: 2,
        priority: 150,
        advert_int: "1",
        unicast: None,
        pass: Some("right123"),
    };
    let k = ka.start(&lab, Node::A, "ka");
    let ours = Ours::start(
        &lab,
        Node::B,
        &ours_conf(
            2,
            100,
            "2",
            "    auth_type = pass\n    auth_pass = wrong123\n",
        ),
    );
    let t0 = Instant::now();
    while ours
        .status("VI_1")
        .dropped
        .get("authentication")
        .copied()
        .unwrap_or(0)
        < 2
    {
        assert!(
            t0.elapsed() < 10 * SECOND,
            "no authentication drops: {:?}\nkeepalived: {}",
            ours.status("VI_1"),
            lab.log_of(&k)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not acted on: our backup times out and becomes master although keepalived's
    // priority is higher (both hold the address: a misconfiguration, made visible).
    ours.wait_state("VI_1", "MASTER", 10 * SECOND);
    wait_for(10 * SECOND, "keepalived refusing our password", || {
        lab.log_of(&k)
            .contains("received an invalid passwd")
            .then_some(())
    });
}

/// A local check tracked with a weight moves mastership to keepalived and back
/// (VRRPv3, 0.1 s): lvs-director 150 with `chk weight -60` against keepalived 100.
#[test]
fn track_script_weight_hands_over_to_keepalived_and_back() {
    if !ready("track_script_weight_hands_over_to_keepalived_and_back") {
        return;
    }
    let lab = Lab::new("vrrptrk", &[Node::A, Node::B]);
    let ka = Keepalived::v3_fast(100);
    let _k = ka.start(&lab, Node::A, "ka");
    let conf = format!(
        "local_check chk {{\n    active = 1\n    check = program\n    send_program = /etc/lvs-director/scripts/chk\n}}\n{}",
        ours_conf(3, 150, "0.1", "    track_script = [ \"chk weight -60\" ]\n")
    );
    let ours = Ours::start(&lab, Node::B, &conf);
    // No result yet: a weighted check counts for nothing, 150 wins.
    ours.wait_state("VI_1", "MASTER", 10 * SECOND);
    wait_holder(&lab, (false, true), 5 * SECOND);
    ours.check("chk", false);
    wait_holder(&lab, (true, false), 5 * SECOND);
    ours.wait_state("VI_1", "BACKUP", SECOND);
    let s = ours.status("VI_1");
    assert_eq!((s.priority, s.effective_priority), (150, 90), "{s:?}");
    assert_eq!(s.master, Some(Node::A.ip().parse().unwrap()), "{s:?}");
    ours.check("chk", true);
    wait_holder(&lab, (false, true), 5 * SECOND);
    assert_eq!(ours.status("VI_1").effective_priority, 150);
    // Each change was recorded with its cause (and so notified).
    let events = ours.events();
    let states: Vec<&str> = events
        .iter()
        .filter(|(subject, _, _)| subject == "vrrp VI_1")
        .map(|(_, state, _)| state.as_str())
        .collect();
    assert_eq!(
        states,
        ["backup", "master", "backup", "master"],
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, _, cause)| cause.contains("higher than ours (90)")),
        "{events:?}"
    );
}

/// A tracked interface without weight going down puts lvs-director in FAULT: it
/// releases the address and keepalived takes over; its return brings it back
/// (preempting, 150 against 100). Its own interface going down does the same.
#[test]
fn a_tracked_interface_down_is_a_fault_and_keepalived_takes_over() {
    if !ready("a_tracked_interface_down_is_a_fault_and_keepalived_takes_over") {
        return;
    }
    let lab = Lab::new("vrrpif", &[Node::A, Node::B]);
    // A veth pair inside the node: the far end going down takes the carrier away.
    lab.ip(
        Node::B,
        &[
            "link", "add", "uplink", "type", "veth", "peer", "name", "far",
        ],
    );
    lab.ip(Node::B, &["link", "set", "uplink", "up"]);
    lab.ip(Node::B, &["link", "set", "far", "up"]);
    // Carrier follows "up" a moment later; starting before it would (rightly) begin
    // with a fault, and the count of faults below would be off by one.
    wait_for(5 * SECOND, "uplink carrier", || {
        let out = lab.ip(Node::B, &["-o", "link", "show", "dev", "uplink"]);
        out.contains("state UP").then_some(())
    });
    let ka = Keepalived::v3_fast(100);
    let _k = ka.start(&lab, Node::A, "ka");
    let ours = Ours::start(
        &lab,
        Node::B,
        &ours_conf(3, 150, "0.1", "    track_interface = [ uplink ]\n"),
    );
    ours.wait_state("VI_1", "MASTER", 10 * SECOND);
    wait_holder(&lab, (false, true), 5 * SECOND);
    lab.ip(Node::B, &["link", "set", "far", "down"]);
    ours.wait_state("VI_1", "FAULT", 2 * SECOND);
    wait_holder(&lab, (true, false), 5 * SECOND);
    let s = ours.status("VI_1");
    assert_eq!(
        s.fault.as_deref(),
        Some("tracked interface uplink is down"),
        "{s:?}"
    );
    lab.ip(Node::B, &["link", "set", "far", "up"]);
    wait_holder(&lab, (false, true), 5 * SECOND);
    assert_eq!(ours.status("VI_1").fault, None);
    // Its own interface: no advert can leave, so FAULT and the address goes.
    lab.ip(Node::B, &["link", "set", "eth0", "down"]);
    ours.wait_state("VI_1", "FAULT", 2 * SECOND);
    assert!(!lab.has_addr(Node::B, VIP));
    wait_for(5 * SECOND, "keepalived master", || {
        lab.has_addr(Node::A, VIP).then_some(())
    });
    let s = ours.status("VI_1");
    assert_eq!(s.fault.as_deref(), Some("interface eth0 is down"), "{s:?}");
    let faults = ours
        .events()
        .into_iter()
        .filter(|(subject, state, _)| subject == "vrrp VI_1" && state == "fault")
        .count();
    assert_eq!(faults, 2);
}

/// The second address of the two-instance tests.
const VIP2: &str = "10.77.0.101";

/// keepalived with two VRRPv3 instances (0.1 s), VI_1 (router id 51, [`VIP`]) and
/// VI_2 (52, [`VIP2`]), with these priorities, optionally in sync group G.
fn keepalived_two(p1: u8, p2: u8, sync_group: bool) -> String {
    let mut s = "global_defs {\n  router_id ka\n  vrrp_version 3\n}\n".to_string();
    if sync_group {
        s += "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n";
    }
    for (name, vrid, p, vip) in [("VI_1", 51, p1, VIP), ("VI_2", 52, p2, VIP2)] {
        s += &format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {p}\n  advert_int 0.1\n  virtual_ipaddress {{\n    {vip}/24\n  }}\n}}\n"
        );
    }
    s
}

/// lvs-director's side of [`keepalived_two`]; `extra2` goes into VI_2.
fn ours_two(p1: u8, p2: u8, sync_group: bool, extra2: &str) -> String {
    let group = if sync_group {
        "    sync_group = G\n"
    } else {
        ""
    };
    let mut s = String::new();
    for (name, vrid, p, vip, extra) in [("VI_1", 51, p1, VIP, ""), ("VI_2", 52, p2, VIP2, extra2)] {
        s += &format!(
            "vrrp {name} {{\n    active = 1\n    interface = eth0\n    virtual_router_id = {vrid}\n    priority = {p}\n    advert_int = 0.1\n    version = 3\n{group}{extra}    virtual_ipaddress = [ {vip}/24 ]\n}}\n"
        );
    }
    s
}

/// Who holds each of the two addresses: (VIP on A, VIP on B, VIP2 on A, VIP2 on B).
fn holders_two(lab: &Lab) -> (bool, bool, bool, bool) {
    (
        lab.has_addr(Node::A, VIP),
        lab.has_addr(Node::B, VIP),
        lab.has_addr(Node::A, VIP2),
        lab.has_addr(Node::B, VIP2),
    )
}

fn wait_two(lab: &Lab, want: (bool, bool, bool, bool), what: &str) {
    wait_for(5 * SECOND, what, || {
        (holders_two(lab) == want).then_some(())
    });
}

/// "Dual hot standby": two instances, keepalived master of VI_1 and lvs-director of
/// VI_2; lvs-director's clean stop gives VI_2 to keepalived, and its return takes it
/// back.
#[test]
fn two_instances_split_across_keepalived_and_lvs_director() {
    if !ready("two_instances_split_across_keepalived_and_lvs_director") {
        return;
    }
    let lab = Lab::new("vrrpsplit", &[Node::A, Node::B]);
    let _k = lab.keepalived(Node::A, "ka", &keepalived_two(150, 100, false));
    let mut ours = Ours::start(&lab, Node::B, &ours_two(100, 150, false, ""));
    wait_two(&lab, (true, false, false, true), "each master of one");
    ours.wait_state("VI_1", "BACKUP", SECOND);
    ours.wait_state("VI_2", "MASTER", SECOND);
    ours.stop();
    wait_two(
        &lab,
        (true, false, true, false),
        "keepalived master of both",
    );
    let _ours = Ours::start(&lab, Node::B, &ours_two(100, 150, false, ""));
    wait_two(
        &lab,
        (true, false, false, true),
        "VI_2 back to lvs-director",
    );
}

/// A sync group on both sides: lvs-director (150, 150) is master of both; a tracked
/// interface of VI_2 alone failing puts the whole group in FAULT, so keepalived takes
/// both addresses (never one each); its return brings both back.
#[test]
fn a_sync_group_fails_over_as_one_with_keepalived() {
    if !ready("a_sync_group_fails_over_as_one_with_keepalived") {
        return;
    }
    let lab = Lab::new("vrrpsync", &[Node::A, Node::B]);
    lab.ip(
        Node::B,
        &[
            "link", "add", "uplink", "type", "veth", "peer", "name", "far",
        ],
    );
    lab.ip(Node::B, &["link", "set", "uplink", "up"]);
    lab.ip(Node::B, &["link", "set", "far", "up"]);
    let k = lab.keepalived(Node::A, "ka", &keepalived_two(100, 100, true));
    let ours = Ours::start(
        &lab,
        Node::B,
        &ours_two(150, 150, true, "    track_interface = [ uplink ]\n"),
    );
    wait_two(
        &lab,
        (false, true, false, true),
        "lvs-director master of both",
    );
    lab.ip(Node::B, &["link", "set", "far", "down"]);
    ours.wait_state("VI_1", "FAULT", 2 * SECOND);
    ours.wait_state("VI_2", "FAULT", SECOND);
    wait_two(
        &lab,
        (true, false, true, false),
        "keepalived master of both",
    );
    let s = ours.status("VI_1");
    assert_eq!(
        s.fault.as_deref(),
        Some("sync group G: vrrp VI_2 is in FAULT (tracked interface uplink is down)"),
        "VI_1 is held by its group: {s:?}"
    );
    lab.ip(Node::B, &["link", "set", "far", "up"]);
    wait_two(
        &lab,
        (false, true, false, true),
        "lvs-director master of both again",
    );
    assert!(
        lab.log_of(&k).contains("Syncing instances to MASTER state"),
        "{}",
        lab.log_of(&k)
    );
}

fn holds6(lab: &Lab, n: Node, addr: &str) -> bool {
    lab.ip(n, &["-o", "-6", "addr", "show", "dev", "eth0"])
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(addr))
}

/// Waits until node `n`'s link-local address has passed duplicate address detection:
/// VRRP for IPv6 sends from it.
fn link_local_ready(lab: &Lab, n: Node) {
    wait_for(10 * SECOND, "a usable link-local address", || {
        let out = lab.ip(
            n,
            &["-o", "-6", "addr", "show", "dev", "eth0", "scope", "link"],
        );
        (out.contains("fe80::") && !out.contains("tentative")).then_some(())
    });
}

/// VRRPv3 over IPv6 (ff02::12, from the link-local addresses, checksum with the IPv6
/// pseudo-header): lvs-director (200) master, keepalived (100) backup, then the
/// other way round after lvs-director's clean stop.
#[test]
fn v3_ipv6_lvs_director_master_then_hand_over() {
    if !ready("v3_ipv6_lvs_director_master_then_hand_over") {
        return;
    }
    const VIP6: &str = "2001:db8:77::100";
    let lab = Lab::new("vrrp6", &[Node::A, Node::B]);
    link_local_ready(&lab, Node::A);
    link_local_ready(&lab, Node::B);
    let ka = format!(
        "global_defs {{\n  router_id ka\n}}\nvrrp_instance VI_6 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 61\n  priority 100\n  advert_int 0.1\n  virtual_ipaddress {{\n    {VIP6}/64\n  }}\n}}\n"
    );
    let k = lab.keepalived(Node::A, "ka6", &ka);
    let mut ours = Ours::start(
        &lab,
        Node::B,
        &format!(
            "vrrp VI_6 {{\n    active = 1\n    interface = eth0\n    virtual_router_id = 61\n    priority = 200\n    advert_int = 0.1\n    virtual_ipaddress = [ {VIP6}/64 ]\n}}\n"
        ),
    );
    ours.wait_state("VI_6", "MASTER", 10 * SECOND);
    wait_for(5 * SECOND, "the IPv6 address on B only", || {
        (holds6(&lab, Node::B, VIP6) && !holds6(&lab, Node::A, VIP6)).then_some(())
    });
    std::thread::sleep(SECOND);
    assert!(!holds6(&lab, Node::A, VIP6), "{}", lab.log_of(&k));
    let s = ours.status("VI_6");
    assert!(s.dropped.is_empty(), "{s:?}");
    ours.stop();
    wait_for(3 * SECOND, "keepalived taking the IPv6 address", || {
        holds6(&lab, Node::A, VIP6).then_some(())
    });
    assert!(!holds6(&lab, Node::B, VIP6));
}

/// A group of three: two keepalived (150 and 120) and lvs-director (100). Each stop
/// hands the address to the next priority down, lvs-director last.
#[test]
fn three_routers_hand_down_by_priority() {
    if !ready("three_routers_hand_down_by_priority") {
        return;
    }
    let lab = Lab::new("vrrp3n", &[Node::A, Node::B, Node::Rs1]);
    let conf = |priority: u8| Keepalived {
        version: 3,
        priority,
        advert_int: "0.1",
        unicast: None,
        pass: None,
    };
    let high = conf(150).start(&lab, Node::A, "ka150");
    let middle = conf(120).start(&lab, Node::Rs1, "ka120");
    let mut ours = Ours::start(&lab, Node::B, &ours_conf(3, 100, "0.1", ""));
    let holders3 = || {
        (
            lab.has_addr(Node::A, VIP),
            lab.has_addr(Node::Rs1, VIP),
            lab.has_addr(Node::B, VIP),
        )
    };
    wait_for(10 * SECOND, "A master", || {
        (holders3() == (true, false, false)).then_some(())
    });
    ours.wait_state("VI_1", "BACKUP", 2 * SECOND);
    lab.signal(&high, libc::SIGTERM);
    wait_for(3 * SECOND, "the 120 router master", || {
        (holders3() == (false, true, false)).then_some(())
    });
    std::thread::sleep(SECOND);
    assert_eq!(holders3(), (false, true, false));
    assert_eq!(ours.status("VI_1").state, "BACKUP");
    assert_eq!(
        ours.status("VI_1").master,
        Some(Node::Rs1.ip().parse().unwrap())
    );
    lab.signal(&middle, libc::SIGTERM);
    ours.wait_state("VI_1", "MASTER", 3 * SECOND);
    wait_for(3 * SECOND, "lvs-director master", || {
        (holders3() == (false, false, true)).then_some(())
    });
    ours.stop();
}

/// The whole supervisor (`lvs-director pulse`) running a `vrrp` block, beside
/// keepalived: master with the higher priority, its status showing the instance,
/// keepalived taking over on its clean stop (SIGTERM).
#[test]
fn the_supervisor_runs_vrrp_beside_keepalived() {
    if !ready("the_supervisor_runs_vrrp_beside_keepalived") {
        return;
    }
    let lab = Lab::new("vrrpsup", &[Node::A, Node::B]);
    let ka = Keepalived::v3_fast(100);
    let k = ka.start(&lab, Node::A, "ka");
    let cf = format!("serial_no = 4\n{}", ours_conf(3, 200, "0.1", ""));
    let p = lab.pulse(Node::B, "pulse", &cf);
    wait_for(15 * SECOND, "the supervisor master", || {
        let s = lab.status(&p)?;
        (s.vrrp.first()?.state == "MASTER").then_some(())
    });
    wait_holder(&lab, (false, true), 5 * SECOND);
    std::thread::sleep(SECOND);
    assert_eq!(holders(&lab), (false, true), "{}", lab.log_of(&k));
    let s = lab.status(&p).unwrap();
    let v = &s.vrrp[0];
    assert_eq!((v.name.as_str(), v.vrid, v.priority), ("VI_1", 51, 200));
    assert!(v.adverts_sent >= 10 && v.dropped.is_empty(), "{v:?}");
    let out = std::process::Command::new(common::netns::BIN)
        .args(["status", "--control-socket"])
        .arg(&p.socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("vrrp VI_1 (router id 51 on ") && text.contains("): MASTER, priority 200"),
        "{text}"
    );
    lab.signal(&p, libc::SIGTERM);
    let took = wait_holder(&lab, (true, false), 5 * SECOND);
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    lab.wait_exit(&p, 10 * SECOND).expect("pulse stopped");
}
