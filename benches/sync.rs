//! Configuration sync benchmark: from `lvs-director apply` on director A to the same
//! serial in force on director B, for 1,000 virtual servers × 10 real servers, against
//! the anchor of doing it by hand (copy A's `lvs.cf` to B and `lvs-director ctl
//! reload` there), side by side in one run.
//!
//! Run as root on the host (no IPVS needed):
//!
//! ```text
//! cargo bench --bench sync                 # 5 rounds
//! BENCH_ROUNDS=10 cargo bench --bench sync
//! ```
//!
//! Topology (`tests/common/netns.rs`): directors A and B in namespaces on one bridge,
//! each running `lvs-director web` (which syncs) and `pulse`. A round changes one
//! weight on A and applies it; "sync" is the time from starting the apply until B's
//! `lvs.cf` carries the new serial and B's supervisor has reloaded it (the apply returns
//! only after B answered, so it is the apply's wall time: A's own checks, write, record
//! and reload included). "by hand" copies A's file to B and reloads B, timed the same
//! way. Without `--bench` (as under `cargo test --all-targets`) it checks the
//! generated configuration only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

mod common {
    #[path = "../../tests/common/netns.rs"]
    pub mod netns;
}
#[path = "../tests/common/director.rs"]
mod director;

use std::time::{Duration, Instant};

use common::netns::{key_file, root_or_skip, Lab, Node, PairConfig};
use director::Director;

const SECOND: Duration = Duration::from_secs(1);

/// The pair's lvs.cf with `n` virtual servers of 10 real servers each; `weight` is the
/// first real server's weight (what a round changes).
fn site(base: &str, n: usize, weight: u32) -> String {
    let mut t = base.to_string();
    for v in 0..n {
        t += &format!(
            "virtual web{v} {{\n    active = 1\n    address = 10.78.{}.{} eth0\n    port = 80\n    scheduler = wlc\n    timeout = 5\n    check_interval = 30\n",
            v / 250,
            v % 250 + 1
        );
        for r in 0..10 {
            t += &format!(
                "    server rs{r} {{\n        address = 10.79.{}.{}\n        active = 1\n        weight = {}\n    }}\n",
                v / 25,
                (v % 25) * 10 + r + 1,
                if v == 0 && r == 0 { weight } else { 1 }
            );
        }
        t += "}\n";
    }
    t
}

/// Writes `text` as `d`'s lvs.cf and has its supervisor reload it.
fn copy_and_reload(lab: &Lab, d: &Director, text: &str) {
    std::fs::write(&d.cf, text).unwrap();
    let socket = d.socket.to_str().unwrap();
    let (code, out, err) = d.cli(lab, &["ctl", "--control-socket", socket, "reload"]);
    assert_eq!(code, 0, "{out}{err}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn main() {
    let base = PairConfig::default().render();
    if !std::env::args().any(|a| a == "--bench") {
        let t = site(&base, 3, 7);
        let parsed = lvs_director::config::parse(&t).unwrap();
        assert_eq!(parsed.config.virtuals.len(), 3);
        assert_eq!(parsed.config.virtuals[0].servers.len(), 10);
        assert_eq!(
            parsed.config.virtuals[0].servers[0].settings.weight,
            Some(7)
        );
        let errors: Vec<_> = lvs_director::config::validate(&parsed.config)
            .into_iter()
            .filter(|d| d.is_error())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        println!("sync bench: configuration checked (run with --bench, as root)");
        return;
    }
    if !root_or_skip("sync bench") {
        return;
    }
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let lab = Lab::new("syncb", &[Node::A, Node::B]);
    let key = key_file(&lab, b"a shared heartbeat key for the sync bench");
    let base = PairConfig {
        keepalive: "0.5",
        deadtime: "2",
        key_file: Some(key),
        ..PairConfig::default()
    }
    .render();
    let (a, b) = (Director::new(&lab, Node::A), Director::new(&lab, Node::B));
    for d in [&a, &b] {
        let (code, out, err) = d.apply(&lab, &site(&base, 1000, 1));
        assert_eq!(code, 0, "{out}{err}");
    }
    let (_pa, _pb, _wa, _wb) = (a.pulse(&lab), b.pulse(&lab), a.web(&lab), b.web(&lab));
    for d in [&a, &b] {
        d.wait_in_step(&lab, 60 * SECOND);
    }
    let size = a.in_force().len();
    let (mut ours, mut anchor) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let weight = 2 + round as u32;
        // Ours: apply on A, B takes it.
        a.store(&lab, &site(&base, 1000, weight));
        let started = Instant::now();
        let (code, out, err) = a.apply_stored(&lab);
        let took = started.elapsed();
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("Peer 10.77.0.2: took serial") || out.contains("is already in force here"),
            "{out}{err}"
        );
        assert_eq!(b.serial(), a.serial());
        ours.push(took.as_secs_f64() * 1000.0);
        // By hand: copy A's file to B and reload B (what Piranha's users did). The
        // serial is raised so that B's supervisor really reloads a new file.
        let text = a.in_force().replace(
            &format!("serial_no = {}", a.serial()),
            &format!("serial_no = {}", a.serial() + 1000),
        );
        let started = Instant::now();
        copy_and_reload(&lab, &b, &text);
        anchor.push(started.elapsed().as_secs_f64() * 1000.0);
        // Put B back on the pair's history: A's file again, which is B's last revision
        // (a heartbeat pair has no per-node setting), so B holds no hand edit.
        copy_and_reload(&lab, &b, &a.in_force());
        println!(
            "round {}: sync {:.0} ms, by hand {:.0} ms",
            round + 1,
            ours.last().unwrap(),
            anchor.last().unwrap()
        );
    }
    ours.sort_by(f64::total_cmp);
    anchor.sort_by(f64::total_cmp);
    let (o50, a50) = (percentile(&ours, 50.0), percentile(&anchor, 50.0));
    println!(
        "\n1,000 virtual servers x 10 real servers ({:.1} MB lvs.cf), {rounds} rounds:\n\
         sync (apply on A until in force on B): p50 {o50:.0} ms, max {:.0} ms\n\
         by hand (copy + reload on B):          p50 {a50:.0} ms, max {:.0} ms\n\
         ratio p50 {:.2}",
        size as f64 / 1e6,
        ours[ours.len() - 1],
        anchor[anchor.len() - 1],
        o50 / a50
    );
}
