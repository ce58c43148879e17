//! What the host benchmarks (benches/checks.rs, benches/web.rs, benches/ipvs.rs)
//! share: settings from the environment, the `ip` tool, their throwaway network
//! namespaces, the descriptor limit, the real servers' addresses, percentiles and the
//! self-check-or-measure `main`. Included with `#[path]`; not every bench uses every
//! piece.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// The number in environment variable `name`, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The loopback address of real server `n` (numbered across the whole table).
pub fn rip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        20 + (n / 62_500) as u8,
        (n / 250 % 250) as u8,
        (n % 250 + 1) as u8,
    )
}

/// Runs `ip ARGS`; its error output is the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Deletes the namespaces `PREFIXpid` left by runs of a bench whose process is gone.
pub fn remove_stale_namespaces(prefix: &str) {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to `want`, or as far as the hard limit goes when the
/// hard limit cannot be raised (no CAP_SYS_RESOURCE, as in containers).
pub fn raise_nofile(want: u64) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the rlimit they are given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        let up = libc::rlimit {
            rlim_cur: want.max(r.rlim_cur),
            rlim_max: want.max(r.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &up) == 0 {
            return up.rlim_cur;
        }
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
    }
    r.rlim_cur
}

/// Nearest-rank percentile `p` (0–100) of sorted samples; NaN when there are none.
pub fn percentile<T: Copy + Into<f64>>(sorted: &[T], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].into()
}

/// A bench's `main`: under `cargo test --all-targets` (no `--bench`) only its
/// self-check; under `cargo bench` the measurement, exit 1 when it failed or a
/// target was missed.
pub fn bench_main(self_check: fn(), run: fn() -> Result<bool, String>) {
    if !std::env::args().any(|a| a == "--bench") {
        self_check();
        return;
    }
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}
