//! The soak as a benchmark: `tests/common/soak.rs` for 30 minutes (the suite runs two),
//! on the host as root:
//!
//! ```text
//! cargo bench --bench soak                          # 30 minutes, 10 virtual servers
//! SOAK_SECONDS=600 SOAK_VIRTUALS=100 cargo bench --bench soak
//! ```
//!
//! It prints the slopes of memory and descriptors over the second half, the check
//! jitter, the heartbeats sent and accepted, and the page latencies at the start and
//! the end. Without `--bench` (as under `cargo test --all-targets`) it does nothing
//! but say so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

mod common {
    #[path = "../../tests/common/netns.rs"]
    pub mod netns;
}
#[path = "../tests/common/director.rs"]
mod director;
#[path = "../tests/common/raw_http.rs"]
mod raw_http;
#[path = "../tests/common/soak.rs"]
mod soak;

use std::time::Duration;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak bench: measure with `cargo bench --bench soak` as root");
        return;
    }
    if !common::netns::root_or_skip("soak bench") {
        return;
    }
    let seconds = env_or("SOAK_SECONDS", 1800);
    let virtuals = env_or("SOAK_VIRTUALS", 10) as usize;
    let r = soak::soak(Duration::from_secs(seconds), virtuals);
    println!("\nBENCH soak: {seconds} s, {virtuals} virtual servers x 2 real servers checked every second by both directors");
    r.print();
}
