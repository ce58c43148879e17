//! Scenarios against a real IPVS: the host kernel has none, so `tests/lab/run.sh` boots
//! Debian's cloud kernel under QEMU with this crate's `lvs-director` inside and runs every
//! `tests/lab/scenarios/*.sh` there (see the comments in `tests/lab/`).
//!
//! The VM runs once per test binary; each test below reports one scenario. The lab needs
//! root (it installs packages and fetches the kernel on first use through
//! `tests/lab/prepare.sh`): when it cannot start, every test fails with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// One `#[test]` per scenario, and the list of them all in [`SCENARIOS`].
macro_rules! scenarios {
    ($($test:ident => $name:literal,)*) => {
        /// Every scenario (file name without `.sh`), each with its test.
        const SCENARIOS: &[&str] = &[$($name),*];
        $(
            #[test]
            fn $test() {
                check_scenario($name);
            }
        )*
    };
}

scenarios! {
    smoke => "00-smoke",
    topology_nat => "01-topology-nat",
    topology_dr => "02-topology-dr",
    topology_tun => "03-topology-tun",
    topology_nat6 => "04-topology-nat6",
    topology_fwmark => "05-topology-fwmark",
    lib_helpers => "06-lib-helpers",
    director_nat => "10-director-nat",
    director_schedulers => "11-director-schedulers",
    director_distribution => "12-director-distribution",
    director_dr_tun => "13-director-dr-tun",
    director_fwmark_ipv6 => "14-director-fwmark-ipv6",
    director_drain => "15-director-drain",
    director_ownership_drift => "16-director-ownership-drift",
    director_restart => "17-director-restart",
    director_sync_daemon => "18-director-sync-daemon",
    pulse_failover_nat => "20-pulse-failover-nat",
    pulse_failover_dr => "21-pulse-failover-dr",
    pulse_metrics => "22-pulse-metrics",
    vrrp_keepalived_dr => "23-vrrp-keepalived-dr",
    vrrp_keepalived_migration => "24-vrrp-keepalived-migration",
    checker_timing_keepalived => "25-checker-timing-keepalived",
    checker_matrix_keepalived => "26-checker-matrix-keepalived",
    cluster_sync => "27-cluster-sync",
    pulse_crash_loop => "28-pulse-crash-loop",
    checker_cost_keepalived => "29-checker-cost-keepalived",
}

#[derive(Debug)]
struct Outcome {
    pass: bool,
    /// What the scenario printed, then its share of the kernel log and the harness's notes.
    output: Vec<String>,
}

#[derive(Debug)]
struct Lab {
    /// Set when the lab itself failed (no VM, or the VM never reached its /init).
    broken: Option<String>,
    results: BTreeMap<String, Outcome>,
    /// run.sh's own report, for scenarios without a result.
    report: String,
    log: PathBuf,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(run_lab)
}

fn run_lab() -> Lab {
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab.log");
    let broken = |why: String| Lab {
        broken: Some(why),
        results: BTreeMap::new(),
        report: String::new(),
        log: log.clone(),
    };
    let lab_dir = repo().join("tests/lab");
    let prepare = Command::new("bash")
        .arg(lab_dir.join("prepare.sh"))
        .current_dir(repo())
        .output();
    match prepare {
        Err(e) => return broken(format!("cannot start tests/lab/prepare.sh: {e}")),
        Ok(out) if !out.status.success() => {
            return broken(describe("tests/lab/prepare.sh", &out));
        }
        Ok(_) => {}
    }
    let run = Command::new("bash")
        .arg(lab_dir.join("run.sh"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_lvs-director"))
        .arg("--scenarios")
        .arg(lab_dir.join("scenarios"))
        // The distribution scenario sends 400 requests through the emulated kernel; on a
        // busy 2-core machine emulation slows down by half again.
        .arg("--scenario-timeout")
        .arg("300")
        .arg("--timeout")
        .arg("1800")
        .arg("--log")
        .arg(&log)
        .current_dir(repo())
        .output();
    let out = match run {
        Err(e) => return broken(format!("cannot start tests/lab/run.sh: {e}")),
        Ok(out) => out,
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit status 2: the lab could not be set up (see run.sh).
    if out.status.code() == Some(2) {
        return broken(describe("tests/lab/run.sh", &out));
    }
    let console = std::fs::read(&log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (booted, results) = parse_console(&console);
    if !booted {
        return broken(format!(
            "the lab VM never reached its /init; {}\nconsole log: {}",
            describe("tests/lab/run.sh", &out),
            log.display()
        ));
    }
    Lab {
        broken: None,
        results,
        report,
        log,
    }
}

/// The console's marker lines (see tests/lab/init.sh): whether /init started, and each
/// scenario's verdict and output.
fn parse_console(console: &str) -> (bool, BTreeMap<String, Outcome>) {
    let mut booted = false;
    let mut outputs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut verdicts: BTreeMap<&str, bool> = BTreeMap::new();
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("LAB-BOOT ") {
            booted = true;
        } else if let Some(rest) = line.strip_prefix("LAB-OUT ") {
            if let Some((name, text)) = rest.split_once(" | ") {
                outputs.entry(name).or_default().push(text.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("LAB-RESULT ") {
            if let Some((name, verdict)) = rest.split_once(' ') {
                verdicts.insert(name, verdict == "PASS");
            }
        }
    }
    // A scenario without its LAB-RESULT line did not finish: it has no result at all.
    let results = verdicts
        .into_iter()
        .map(|(name, pass)| {
            let output = outputs.remove(name).unwrap_or_default();
            (name.to_owned(), Outcome { pass, output })
        })
        .collect();
    (booted, results)
}

fn check_scenario(name: &str) {
    let lab = lab();
    if let Some(why) = &lab.broken {
        panic!("the IPVS lab could not run, so scenario {name} did not run:\n{why}");
    }
    match lab.results.get(name) {
        Some(outcome) => {
            let output = outcome.output.join("\n");
            assert!(
                outcome.pass,
                "lab scenario {name} failed:\n{output}\n(console log: {})",
                lab.log.display()
            );
            println!("{output}");
        }
        None => panic!(
            "lab scenario {name} reported no result (VM stopped or timed out?):\n{}\n(console log: {})",
            lab.report,
            lab.log.display()
        ),
    }
}

/// A new scenario file cannot be forgotten: each has its test above, and each test its file.
#[test]
fn every_scenario_file_has_a_test() {
    let dir = repo().join("tests/lab/scenarios");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sh"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let tests: BTreeSet<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    let untested: Vec<_> = files.difference(&tests).collect();
    let missing: Vec<_> = tests.difference(&files).collect();
    assert!(
        untested.is_empty(),
        "scenarios without a test (add them to scenarios! in tests/lab.rs): {untested:?}"
    );
    assert!(
        missing.is_empty(),
        "tests without a scenario file in {}: {missing:?}",
        dir.display()
    );
}

#[test]
fn console_markers_are_parsed() {
    let console = "\x1b[2JSeaBIOS\r\n\r\nLAB-BOOT 3.1 6.1.0\r\nLAB-START a\r\n\
        LAB-OUT a | hello | world\r\nLAB-RESULT a PASS\r\nLAB-START b\r\n\
        LAB-OUT b | FAIL: x\r\nLAB-RESULT b FAIL\r\nLAB-START c\r\nLAB-OUT c | half\r\n";
    let (booted, results) = parse_console(console);
    assert!(booted);
    assert!(results["a"].pass);
    assert_eq!(results["a"].output, ["hello | world"]);
    assert!(!results["b"].pass);
    assert_eq!(results["b"].output, ["FAIL: x"]);
    assert!(!results.contains_key("c"), "no LAB-RESULT, no result");
}
