//! A two-minute soak of a director pair (see `tests/common/soak.rs`; `cargo bench
//! --bench soak` runs it for 30 minutes): memory and descriptors flat in the second
//! half, checks on schedule, no heartbeat lost, every Apply taken, every page served.
//! Needs root (namespaces).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

mod common;
#[path = "common/director.rs"]
mod director;
#[path = "common/raw_http.rs"]
mod raw_http;
#[path = "common/soak.rs"]
mod soak;

use std::time::Duration;

#[test]
fn two_minutes_of_applies_flapping_servers_and_64_pollers() {
    if !common::netns::root_or_skip("two_minutes_of_applies_flapping_servers_and_64_pollers") {
        return;
    }
    let r = soak::soak(Duration::from_secs(120), 10);
    r.print();
    assert!(r.failed_applies.is_empty(), "{:?}", r.failed_applies);
    assert!(r.applies >= 10, "{} applies", r.applies);
    let served = r.pages.get(&200).copied().unwrap_or(0);
    assert_eq!(
        served,
        r.pages.values().sum::<usize>(),
        "pages: {:?}",
        r.pages
    );
    assert!(
        served >= 64 * 100,
        "{served} pages in two minutes for 64 clients"
    );
    // Both directors checked the steady real server about every second.
    for (ip, n) in &r.checks {
        assert!((116..=122).contains(n), "{ip}: {n} checks in two minutes");
    }
    assert_eq!(r.checks.len(), 2, "{:?}", r.checks);
    // Reloads every 10 s do not move the checks (a restarted check keeps its phase:
    // without that, p99 was 100 ms here).
    assert!(
        r.jitter_p99() <= 60.0,
        "check jitter p99 {:.0} ms",
        r.jitter_p99()
    );
    // No heartbeat lost on a lossless link (a few may be in flight at either end).
    let (sa, ab, sb, aa) = r.heartbeats;
    assert!(
        ab + 3 >= sa && aa + 3 >= sb,
        "heartbeats {:?}",
        r.heartbeats
    );
    assert_eq!(r.failovers, 0);
    // Flat in the second half: descriptors within a few, memory within a few MiB.
    let half = r.seconds / 2.0;
    for p in &r.processes {
        let (lo, hi) = p.fd_range(half);
        assert!(hi - lo <= 8, "{}: descriptors {lo}..{hi}", p.name);
        let (r0, r1) = p.rss_range(half);
        assert!(r1 - r0 <= 8.0, "{}: RSS {r0:.1} -> {r1:.1} MiB", p.name);
    }
}
