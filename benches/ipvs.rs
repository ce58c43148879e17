//! IPVS programming benchmark, side by side in one run against `ipvsadm -R`.
//!
//! Needs a kernel with IPVS, so it runs inside the lab VM: `scripts/bench.sh`. It
//!  1. programs SERVICES x DESTS (default 1,000 x 10) from an empty table, alternately
//!     with lvs-director (parse and validate the lvs.cf, the desired table, one
//!     reconcile) and with `ipvsadm -R` on the same rules, ROUNDS times each;
//!  2. changes one weight through the long-running reconciler (what the supervisor
//!     does on a health change) and through `ipvsadm -e`, and counts the requests.
//!
//! Prints `BENCH …` lines; exits non-zero when a result is wrong (not when it is slow).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lvs_director::config;
use lvs_director::ipvs::client::Client;
use lvs_director::ipvs::ownership::Ownership;
use lvs_director::ipvs::reconcile::{Reconciler, Settings};
use lvs_director::ipvs::{all_healthy, desired, literal_only, Table};

#[path = "common/host.rs"]
mod host;

fn vip(i: usize) -> String {
    format!("10.{}.{}.1", 100 + i / 250, i % 250)
}

fn rip(i: usize, j: usize) -> String {
    format!("172.16.{}.{}", (i / 250) * 10 + j, i % 250 + 1)
}

/// The same table as an lvs.cf and as `ipvsadm -R` rules.
fn generate(services: usize, dests: usize, first_weight: u32) -> (String, String) {
    let mut cf = String::from(
        "serial_no = 1\nprimary = 192.0.2.1\nservice = lvs\nnetwork = nat\nnat_router = 192.0.2.254 eth1\n",
    );
    let mut rules = String::new();
    for i in 0..services {
        cf += &format!(
            "virtual v{i} {{\n active = 1\n address = {} eth0:{i}\n port = 80\n scheduler = wlc\n",
            vip(i)
        );
        rules += &format!("-A -t {}:80 -s wlc\n", vip(i));
        for j in 0..dests {
            let w = if i == 0 && j == 0 { first_weight } else { 1 };
            cf += &format!(
                " server r{j} {{\n  address = {}\n  active = 1\n  weight = {w}\n }}\n",
                rip(i, j)
            );
            rules += &format!("-a -t {}:80 -r {}:80 -m -w {w}\n", vip(i), rip(i, j));
        }
        cf += "}\n";
    }
    (cf, rules)
}

fn die(msg: String) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(1);
}

fn ipvsadm(args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new("ipvsadm")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| die(format!("cannot run ipvsadm: {e}")));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| die(format!("ipvsadm stdin: {e}")));
    }
    let status = child.wait().unwrap_or_else(|e| die(e.to_string()));
    if !status.success() {
        die(format!("ipvsadm {args:?} failed: {status}"));
    }
}

/// The desired table of an lvs.cf text, checked as `ipvs apply` checks it.
fn desired_of(
    cf: &str,
) -> (
    Table,
    std::collections::BTreeMap<lvs_director::ipvs::ServiceKey, u64>,
) {
    let parsed = config::parse(cf).unwrap_or_else(|e| die(format!("{} parse errors", e.len())));
    if !config::is_valid(&config::validate(&parsed.config)) {
        die("the generated lvs.cf is invalid".into());
    }
    desired(
        &parsed.config,
        &literal_only,
        &all_healthy,
        &lvs_director::ipvs::quorum_now,
    )
    .unwrap_or_else(|e| die(e.join("; ")))
}

fn count(t: &Table) -> (usize, usize) {
    (
        t.services.len(),
        t.services.values().map(|s| s.dests.len()).sum(),
    )
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: check the generator (the
    // lvs.cf and the rules describe the same table) without needing IPVS.
    if !std::env::args().any(|a| a == "--bench") {
        let (cf, rules) = generate(3, 2, 7);
        let (want, _) = desired_of(&cf);
        let adds = rules.lines().filter(|l| l.starts_with("-a ")).count();
        assert_eq!(count(&want), (3, adds));
        assert!(rules.contains(&format!("-r {}:80 -m -w 7", rip(0, 0))));
        println!("bench generator consistent; run scripts/bench.sh to measure");
        return;
    }
    if !std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("bench: this kernel has no IPVS; run scripts/bench.sh, which runs this inside the lab VM");
        std::process::exit(2);
    }
    let services = host::env_or("BENCH_SERVICES", 1000);
    let dests = host::env_or("BENCH_DESTS", 10);
    let rounds = host::env_or("BENCH_ROUNDS", 3);
    let (cf, rules) = generate(services, dests, 1);
    let mut check = Client::connect().unwrap_or_else(|e| die(e.to_string()));

    let mut ours = Duration::ZERO;
    let mut theirs = Duration::ZERO;
    let mut reconciler = None;
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_ours in order {
            ipvsadm(&["-C"], None);
            let t0 = Instant::now();
            if is_ours {
                let (want, drain_ms) = desired_of(&cf);
                let client = Client::connect().unwrap_or_else(|e| die(e.to_string()));
                let mut r = Reconciler::new(client, Ownership::default());
                let done = r
                    .update(&Settings {
                        desired: &want,
                        drain_ms: &drain_ms,
                        now_ms: 0,
                        dry_run: false,
                        adopt: false,
                        failed: &Default::default(),
                    })
                    .unwrap_or_else(|e| die(e.to_string()));
                if let Some((op, e)) = done.failures().next() {
                    die(format!("{op}: {e}"));
                }
                reconciler = Some((r, want, drain_ms));
            } else {
                ipvsadm(&["-R"], Some(&rules));
            }
            let took = t0.elapsed();
            let table = check.dump().unwrap_or_else(|e| die(e.to_string()));
            if count(&table) != (services, services * dests) {
                die(format!(
                    "after {}: {:?} in the kernel",
                    if is_ours {
                        "lvs-director"
                    } else {
                        "ipvsadm -R"
                    },
                    count(&table)
                ));
            }
            let who = if is_ours {
                "lvs-director"
            } else {
                "ipvsadm -R"
            };
            println!(
                "BENCH round {} {who}: {:.0} ms",
                round + 1,
                took.as_secs_f64() * 1e3
            );
            if is_ours {
                ours += took;
            } else {
                theirs += took;
            }
        }
    }
    println!(
        "BENCH program {services}x{dests} from empty: lvs-director {:.0} ms, ipvsadm -R {:.0} ms over {rounds} round(s) each; ratio {:.3}",
        ours.as_secs_f64() * 1e3,
        theirs.as_secs_f64() * 1e3,
        ours.as_secs_f64() / theirs.as_secs_f64()
    );

    // The table is lvs-director's if its run came last; make sure it is.
    let (mut r, _, drain_ms) =
        reconciler.unwrap_or_else(|| die("no lvs-director round ran".into()));
    ipvsadm(&["-C"], None);
    let (want, _) = desired_of(&cf);
    let none_failed = Default::default();
    let settings = |want| Settings {
        desired: want,
        drain_ms: &drain_ms,
        now_ms: 0,
        dry_run: false,
        adopt: false,
        failed: &none_failed,
    };
    r.resync(&settings(&want))
        .unwrap_or_else(|e| die(e.to_string()));
    let (cf7, _) = generate(services, dests, 7);
    let t_parse = Instant::now();
    let (want7, _) = desired_of(&cf7);
    let parse = t_parse.elapsed();
    let t0 = Instant::now();
    let done = r
        .update(&settings(&want7))
        .unwrap_or_else(|e| die(e.to_string()));
    let ours_one = t0.elapsed();
    if done.plan.ops.len() != 1 || done.failures().next().is_some() {
        die(format!("one weight took {:?}", done.plan.ops));
    }
    let c = done.counters;
    println!(
        "BENCH one weight: {} netlink request(s) in {} send(s), {:.2} ms (plan + apply; parsing the new lvs.cf took another {:.0} ms): {}",
        c.requests,
        c.sends,
        ours_one.as_secs_f64() * 1e3,
        parse.as_secs_f64() * 1e3,
        done.plan.ops[0]
    );
    let t0 = Instant::now();
    ipvsadm(
        &[
            "-e",
            "-t",
            &format!("{}:80", vip(0)),
            "-r",
            &format!("{}:80", rip(0, 0)),
            "-m",
            "-w",
            "5",
        ],
        None,
    );
    let theirs_one = t0.elapsed();
    println!(
        "BENCH one weight with ipvsadm -e: {:.2} ms; ratio {:.3}",
        theirs_one.as_secs_f64() * 1e3,
        ours_one.as_secs_f64() / theirs_one.as_secs_f64()
    );
    let table = check.dump().unwrap_or_else(|e| die(e.to_string()));
    let first = &table.services.values().next().expect("services").dests;
    if !first.values().any(|d| d.params.weight == 5) {
        die("ipvsadm -e did not take".into());
    }
    if c.requests != 1 {
        die(format!(
            "one weight change sent {} requests, expected 1",
            c.requests
        ));
    }
    ipvsadm(&["-C"], None);
}
