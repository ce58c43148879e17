//! Loss benchmark: how a pair behaves on a lossy network, lvs-director's heartbeat and
//! VRRP engine beside keepalived, side by side in one run.
//!
//! Run as root on the host (no IPVS needed; keepalived 2.2.7 installed):
//!
//! ```text
//! cargo bench --bench loss                       # 10, 20 and 30 % loss, 60 s each
//! BENCH_LOSS=30 BENCH_SECONDS=120 cargo bench --bench loss
//! ```
//!
//! Three pairs run at once, each on its own switch (`tests/common/netns.rs`), with equal
//! timers: lvs-director's heartbeat (`keepalive = 0.2`, `deadtime = 0.6`), lvs-director's
//! VRRPv3 engine (`advert_int 0.2`) and keepalived 2.2.7 (VRRPv3, `advert_int 0.2`),
//! A master at priority 254, B backup at 253, unicast. A master-down interval of
//! 3 × 0.2 s + skew is the heartbeat's deadtime. For each loss rate every switch drops
//! that share of the frames it forwards, at random (nftables `numgen random`), for the
//! window; the virtual address is followed in both nodes through the kernel's address
//! events, so no change falls between two samples. Figures per pair:
//! - takeovers: times a node took the address it did not hold (a false failover and
//!   its return count two, as do two holders at once and the return to one);
//! - two holders: the total time both held the address, and the longest stretch;
//! - no holder: the total time nobody held it;
//! - frames/s: what the pair puts on the wire (counted before the drop), with no loss
//!   and nothing happening (its heartbeat or advert traffic, measured before the
//!   windows) and during each window (probes, answers, announcements on top).
//!
//! Without `--bench` (as under `cargo test --all-targets`) it checks its configuration
//! and bookkeeping code only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

#[path = "../tests/common/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use netns::{Arena, Contender};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        for c in Contender::ALL {
            assert!(!c.label().is_empty() && c.tag().len() == 2);
        }
        println!("loss bench self-check ok; measure with `cargo bench --bench loss` as root");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench: needs root (network namespaces)");
        std::process::exit(2);
    }
    let rates: Vec<u8> = std::env::var("BENCH_LOSS")
        .unwrap_or_else(|_| "10,20,30".into())
        .split(',')
        .map(|r| {
            r.trim()
                .parse()
                .expect("BENCH_LOSS: percentages separated by commas")
        })
        .collect();
    let window = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let arenas: Vec<Arena> = Contender::ALL.iter().map(|c| Arena::start(*c)).collect();
    // The steady traffic of each pair, no loss, nothing happening.
    let quiet = Duration::from_secs(10);
    for a in &arenas {
        a.lab.set_loss(0);
    }
    std::thread::sleep(quiet);
    let traffic: Vec<(f64, f64)> = arenas
        .iter()
        .map(|a| {
            let (frames, bytes, _) = a.lab.frames();
            (
                frames as f64 / quiet.as_secs_f64(),
                bytes as f64 / quiet.as_secs_f64(),
            )
        })
        .collect();
    let mut rows = Vec::new();
    for &rate in &rates {
        for a in &arenas {
            a.lab.set_loss(0);
            a.settle();
        }
        for a in &arenas {
            a.lab.set_loss(rate);
        }
        let from = Instant::now();
        std::thread::sleep(window);
        let to = Instant::now();
        for a in &arenas {
            let (frames, _, dropped) = a.lab.frames();
            a.lab.set_loss(0);
            let h = a.holding(from, to);
            eprintln!(
                "{:>3} % {:<34} {h:?} (dropped {dropped} of {frames} frames)",
                rate,
                a.contender.label()
            );
            rows.push((rate, a.contender, h, frames as f64 / window.as_secs_f64()));
        }
    }
    println!(
        "\nBENCH loss: a pair on a switch dropping frames at random, {} s per loss rate, three pairs side by side",
        window.as_secs()
    );
    println!("steady traffic per pair, no loss:");
    for (a, (fps, bps)) in arenas.iter().zip(&traffic) {
        println!(
            "  {:<34} {fps:6.1} frames/s {bps:8.0} bytes/s",
            a.contender.label()
        );
    }
    println!(
        "{:>6} {:<34} {:>9} {:>12} {:>12} {:>12} {:>9}",
        "loss", "pair", "takeovers", "2 holders ms", "longest ms", "none ms", "frames/s"
    );
    for (rate, c, h, fps) in &rows {
        println!(
            "{:>5}% {:<34} {:>9} {:>12.0} {:>12.0} {:>12.0} {:>9.1}",
            rate,
            c.label(),
            h.takeovers,
            ms(h.dual),
            ms(h.longest_dual),
            ms(h.none),
            fps
        );
    }
    for &rate in &rates {
        let of = |c: Contender| {
            rows.iter()
                .find(|(r, k, _, _)| *r == rate && *k == c)
                .map(|(_, _, h, _)| h.takeovers)
                .unwrap()
        };
        let ka = of(Contender::Keepalived);
        println!(
            "{rate:>3} % takeovers: heartbeat {} / keepalived {ka}, lvs-director VRRP {} / keepalived {ka}",
            of(Contender::Heartbeat),
            of(Contender::Vrrp)
        );
    }
}
