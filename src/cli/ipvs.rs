//! `lvs-director ipvs …`: the kernel's IPVS table from the command line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::{checked_lvs_cf, read, Failure, Outcome};
use crate::ipvs::client::{Client, IpvsError};
use crate::ipvs::netlink::{Info, SyncDaemon, SyncState, Timeouts};
use crate::ipvs::ownership::Ownership;
use crate::ipvs::reconcile::{Reconciler, Settings};
use crate::ipvs::table::{svc_flags, Service, ServiceKey, Stats, Table};
use crate::ipvs::{all_healthy, desired};

/// Where the supervisor and `ipvs apply` keep what they own, unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lvs-director";

#[derive(Debug, Subcommand)]
pub enum IpvsCommand {
    /// Show the kernel's IPVS table (like `ipvsadm -Ln`), with which services this
    /// director owns.
    Show {
        /// Traffic totals instead of connection counts.
        #[arg(long, conflicts_with = "rate")]
        stats: bool,
        /// Traffic rates (per second) instead of connection counts.
        #[arg(long)]
        rate: bool,
        /// Everything as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "LVS_DIRECTOR_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Make the kernel's table match the virtual servers of an lvs.cf (every real
    /// server taken as healthy), printing each operation. Services this director did
    /// not create are never changed.
    Apply {
        file: PathBuf,
        /// Print the operations without performing them.
        #[arg(long)]
        dry_run: bool,
        /// Take over configured services that already exist in the kernel (created by
        /// hand, by Piranha, or before the ownership file was lost).
        #[arg(long)]
        adopt: bool,
        #[arg(long, env = "LVS_DIRECTOR_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Start a connection-sync daemon.
    SyncStart {
        #[arg(long, value_enum)]
        state: SyncArg,
        /// Interface the sync messages use.
        #[arg(long)]
        interface: String,
        /// Sync id (0-255) shared by the master and its backups.
        #[arg(long, default_value_t = 0)]
        sync_id: u8,
    },
    /// Stop a connection-sync daemon.
    SyncStop {
        #[arg(long, value_enum)]
        state: SyncArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    Master,
    Backup,
}

impl From<SyncArg> for SyncState {
    fn from(a: SyncArg) -> SyncState {
        match a {
            SyncArg::Master => SyncState::Master,
            SyncArg::Backup => SyncState::Backup,
        }
    }
}

fn ipvs_failure(e: IpvsError) -> Failure {
    Failure::io(e.to_string())
}

pub fn run(cmd: &IpvsCommand) -> Outcome {
    match cmd {
        IpvsCommand::Show {
            stats,
            rate,
            json,
            state_dir,
        } => show(*stats, *rate, *json, state_dir),
        IpvsCommand::Apply {
            file,
            dry_run,
            adopt,
            state_dir,
        } => apply(file, *dry_run, *adopt, state_dir),
        IpvsCommand::SyncStart {
            state,
            interface,
            sync_id,
        } => {
            let d = SyncDaemon {
                state: (*state).into(),
                ifname: interface.clone(),
                sync_id: u32::from(*sync_id),
            };
            Client::connect()
                .and_then(|mut c| c.start_daemon(&d))
                .map_err(ipvs_failure)
        }
        IpvsCommand::SyncStop { state } => Client::connect()
            .and_then(|mut c| c.stop_daemon((*state).into()))
            .map_err(ipvs_failure),
    }
}

use crate::clock::unix_ms as now_unix_ms;
use crate::ipvs::desired::{resolve_system as resolve, timeouts_of};

fn apply(file: &Path, dry_run: bool, adopt: bool, state_dir: &Path) -> Outcome {
    let name = file.display().to_string();
    let text = read(file)?;
    let (config, _) = checked_lvs_cf(&name, &text)?;
    let (want, drain_ms) = desired(&config, &resolve, &all_healthy, &crate::ipvs::quorum_now)
        .map_err(|errors| {
            for e in &errors {
                eprintln!("{name}: {e}");
            }
            Failure::invalid(format!(
                "{name}: {} problem(s); nothing changed",
                errors.len()
            ))
        })?;
    let ownership = Ownership::load(state_dir).map_err(|e| Failure::io(e.to_string()))?;
    let client = match Client::connect() {
        Ok(c) => c,
        Err(IpvsError::NotAvailable) if dry_run => {
            println!("# IPVS is not available here: planned against an empty table");
            let empty = Table::default();
            let p = crate::ipvs::plan(
                &want,
                &empty,
                &ownership.owned,
                &ownership.drains,
                &|k| drain_ms.get(k).copied().unwrap_or(0),
                now_unix_ms(),
            );
            for op in &p.ops {
                println!("{op}");
            }
            return Ok(());
        }
        Err(e) => return Err(ipvs_failure(e)),
    };
    let mut reconciler = Reconciler::new(client, ownership);
    let settings = Settings {
        desired: &want,
        drain_ms: &drain_ms,
        now_ms: now_unix_ms(),
        dry_run,
        adopt,
        failed: &Default::default(),
    };
    let started = std::time::Instant::now();
    let round = reconciler.resync(&settings).map_err(ipvs_failure)?;
    let took = started.elapsed();
    // Recorded before anything else can fail: what was created is owned from now on.
    if !dry_run {
        reconciler
            .ownership()
            .save(state_dir)
            .map_err(|e| Failure::io(e.to_string()))?;
    }
    for k in &round.plan.conflicts {
        eprintln!(
            "{name}: warning: service {k} already exists and was not created by lvs-director: left alone (use --adopt to take it over)"
        );
    }
    for (i, op) in round.plan.ops.iter().enumerate() {
        match round.results.get(i) {
            None => println!("{op}"),
            Some(Ok(())) => println!("{op}"),
            Some(Err(e)) => println!("{op}  # FAILED: {e}"),
        }
    }
    for ((k, d), deadline) in &round.plan.drains {
        let conns = round
            .current
            .services
            .get(k)
            .and_then(|s| s.dests.get(d))
            .map_or(0, |d| d.conns.total());
        let left = deadline.saturating_sub(now_unix_ms()) / 1000;
        println!(
            "# draining {d} of {k}: {conns} connection(s); deleted when they end or in {left} s (by the supervisor, or the next apply)"
        );
    }
    let timeouts = timeouts_of(&config.global);
    if reconciler
        .client()
        .ensure_timeouts(timeouts, dry_run)
        .map_err(ipvs_failure)?
    {
        println!(
            "ipvsadm --set {} {} {}",
            timeouts.tcp, timeouts.tcp_fin, timeouts.udp
        );
    }
    if dry_run {
        return Ok(());
    }
    let failed = round.failures().count();
    if failed > 0 {
        return Err(Failure::invalid(format!(
            "{failed} of {} operation(s) refused by the kernel",
            round.plan.ops.len()
        )));
    }
    if round.plan.ops.is_empty() {
        eprintln!("# the kernel's table already matches {name}");
    }
    let c = round.counters;
    eprintln!(
        "# {} operation(s) in {:.1} ms: {} change request(s) in {} send(s), {} read request(s)",
        round.plan.ops.len(),
        took.as_secs_f64() * 1000.0,
        c.changes,
        c.sends - (c.requests - c.changes),
        c.requests - c.changes
    );
    Ok(())
}

/// Everything `show` prints.
struct Snapshot {
    info: Info,
    table: Table,
    owned: Ownership,
    daemons: Vec<SyncDaemon>,
    timeouts: Timeouts,
}

fn snapshot(state_dir: &Path) -> Result<Snapshot, Failure> {
    let owned = Ownership::load(state_dir).unwrap_or_else(|e| {
        eprintln!("lvs-director: warning: {e}");
        Ownership::default()
    });
    let mut c = Client::connect().map_err(ipvs_failure)?;
    Ok(Snapshot {
        info: c.info().map_err(ipvs_failure)?,
        table: c.dump().map_err(ipvs_failure)?,
        daemons: c.daemons().map_err(ipvs_failure)?,
        timeouts: c.timeouts().map_err(ipvs_failure)?,
        owned,
    })
}

fn show(stats: bool, rate: bool, json: bool, state_dir: &Path) -> Outcome {
    let snap = snapshot(state_dir)?;
    if json {
        let text = serde_json::to_string_pretty(&to_json(&snap))
            .map_err(|e| Failure::io(format!("cannot write the table as JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", to_text(&snap, stats, rate));
    }
    Ok(())
}

fn service_words(k: &ServiceKey, s: &Service) -> String {
    let mut out = match *k {
        ServiceKey::Addr { .. } => {
            let mut t = k.to_string();
            // "TCP 1.2.3.4:80" → ipvsadm's "TCP  1.2.3.4:80".
            t = t.replacen(' ', "  ", 1);
            t
        }
        ServiceKey::Fwmark { mark, ipv6 } => {
            format!("FWM  {mark}{}", if ipv6 { " IPv6" } else { "" })
        }
    };
    let p = &s.params;
    let _ = write!(out, " {}", p.scheduler);
    let flags = p.sched_flag_names();
    if !flags.is_empty() {
        let _ = write!(out, " ({})", flags.join(","));
    }
    if p.flags & svc_flags::PERSISTENT != 0 {
        let _ = write!(out, " persistent {}", p.timeout);
        let ipv4 = !k.is_ipv6();
        if ipv4 && p.netmask != u32::MAX {
            let _ = write!(out, " mask {}", std::net::Ipv4Addr::from(p.netmask));
        } else if !ipv4 && p.netmask != 128 {
            let _ = write!(out, " mask {}", p.netmask);
        }
    }
    if p.flags & svc_flags::ONEPACKET != 0 {
        out.push_str(" ops");
    }
    out
}

fn stat_columns(s: &Stats, rate: bool) -> String {
    if rate {
        format!(
            "{:>8} {:>8} {:>8} {:>8} {:>8}",
            s.cps, s.inpps, s.outpps, s.inbps, s.outbps
        )
    } else {
        format!(
            "{:>8} {:>8} {:>8} {:>8} {:>8}",
            s.conns,
            s.inpkts,
            s.outpkts,
            human(s.inbytes),
            human(s.outbytes)
        )
    }
}

/// ipvsadm's unit suffixes for large byte counts.
fn human(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (size, unit) in UNITS {
        if n >= size * 10 {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

fn to_text(s: &Snapshot, stats: bool, rate: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        s.info.version_string(),
        s.info.conn_tab_size
    );
    if stats || rate {
        let head = if rate {
            "     CPS    InPPS   OutPPS    InBPS   OutBPS"
        } else {
            "   Conns   InPkts  OutPkts  InBytes OutBytes"
        };
        let _ = writeln!(out, "Prot LocalAddress:Port               {head}");
        let _ = writeln!(out, "  -> RemoteAddress:Port");
    } else {
        let _ = writeln!(out, "Prot LocalAddress:Port Scheduler Flags");
        let _ = writeln!(
            out,
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
        );
    }
    for (k, svc) in &s.table.services {
        let owner = if s.owned.owned.contains(k) {
            "[lvs-director]"
        } else {
            "[not ours]"
        };
        if stats || rate {
            let _ = writeln!(
                out,
                "{:<36} {}  {owner}",
                service_words(k, svc),
                stat_columns(&svc.stats, rate)
            );
        } else {
            let _ = writeln!(out, "{}  {owner}", service_words(k, svc));
        }
        for (d, dest) in &svc.dests {
            let draining = if s.owned.drains.contains_key(&(*k, *d)) {
                "  draining"
            } else {
                ""
            };
            if stats || rate {
                let _ = writeln!(
                    out,
                    "  -> {:<31} {}{draining}",
                    d.to_string(),
                    stat_columns(&dest.stats, rate)
                );
            } else {
                let _ = writeln!(
                    out,
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<9}{draining}",
                    d.to_string(),
                    dest.params.fwd.name(),
                    dest.params.weight,
                    dest.conns.active,
                    dest.conns.inactive
                );
            }
        }
    }
    for d in &s.daemons {
        let state = match d.state {
            SyncState::Master => "master",
            SyncState::Backup => "backup",
        };
        let _ = writeln!(
            out,
            "sync daemon: {state} on {}, syncid {}",
            d.ifname, d.sync_id
        );
    }
    out
}

fn to_json(s: &Snapshot) -> serde_json::Value {
    let services: Vec<_> = s
        .table
        .services
        .iter()
        .map(|(k, svc)| {
            let dests: Vec<_> = svc
                .dests
                .iter()
                .map(|(d, dest)| {
                    json!({
                        "address": d.addr,
                        "port": d.port,
                        "forward": dest.params.fwd.name(),
                        "weight": dest.params.weight,
                        "upper_threshold": dest.params.u_threshold,
                        "lower_threshold": dest.params.l_threshold,
                        "tunnel_type": dest.params.tun_type,
                        "tunnel_port": dest.params.tun_port,
                        "tunnel_flags": dest.params.tun_flags,
                        "connections": dest.conns,
                        "draining": s.owned.drains.contains_key(&(*k, *d)),
                        "stats": dest.stats,
                    })
                })
                .collect();
            json!({
                "service": k,
                "name": k.to_string(),
                "scheduler": svc.params.scheduler,
                "flags": svc.params.flags,
                "timeout": svc.params.timeout,
                "netmask": svc.params.netmask,
                "owned": s.owned.owned.contains(k),
                "stats": svc.stats,
                "destinations": dests,
            })
        })
        .collect();
    let daemons: Vec<_> = s.daemons.iter().collect();
    let drains: BTreeMap<String, u64> = s
        .owned
        .drains
        .iter()
        .map(|((k, d), t)| (format!("{k} -> {d}"), *t))
        .collect();
    json!({
        "version": s.info.version_string(),
        "conn_tab_size": s.info.conn_tab_size,
        "timeouts": s.timeouts,
        "sync_daemons": daemons,
        "services": services,
        "drain_deadlines_unix_ms": drains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::*;

    #[test]
    fn text_table_reads_like_ipvsadm() {
        let key = ServiceKey::Addr {
            protocol: proto::TCP,
            addr: "192.0.2.1".parse().unwrap(),
            port: 80,
        };
        let mut dests = BTreeMap::new();
        let d = DestKey {
            addr: "10.0.0.2".parse().unwrap(),
            port: 80,
        };
        let mut dest = Dest::new(DestParams {
            fwd: FwdMethod::Masq,
            weight: 3,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
        });
        dest.conns.active = 5;
        dest.stats.inbytes = 123_456;
        dests.insert(d, dest);
        let mut table = Table::default();
        table.services.insert(
            key,
            Service::new(
                ServiceParams {
                    scheduler: "sh".into(),
                    flags: svc_flags::PERSISTENT | svc_flags::SCHED2,
                    timeout: 300,
                    netmask: 0xffff_ff00,
                },
                dests,
            ),
        );
        let mut owned = Ownership::default();
        owned.owned.insert(key);
        let snap = Snapshot {
            info: Info {
                version: 0x010201,
                conn_tab_size: 4096,
            },
            table,
            owned,
            daemons: vec![SyncDaemon {
                state: SyncState::Master,
                ifname: "eth1".into(),
                sync_id: 9,
            }],
            timeouts: Timeouts::default(),
        };
        let text = to_text(&snap, false, false);
        assert!(
            text.contains(
                "TCP  192.0.2.1:80 sh (sh-port) persistent 300 mask 255.255.255.0  [lvs-director]"
            ),
            "{text}"
        );
        assert!(
            text.contains("  -> 10.0.0.2:80                  Masq    3      5          0"),
            "{text}"
        );
        assert!(
            text.contains("sync daemon: master on eth1, syncid 9"),
            "{text}"
        );
        let stats = to_text(&snap, true, false);
        assert!(stats.contains("120K"), "{stats}");
        let j = to_json(&snap);
        assert_eq!(j["services"][0]["destinations"][0]["weight"], 3);
        assert_eq!(j["services"][0]["owned"], true);
    }
}
