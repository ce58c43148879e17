//! From `lvs.cf`'s bytes and the machine's facts to everything the tasks need: the
//! checked model ([`parse`]), then ([`plan`]) the node plan, the heartbeat key, the
//! probes, the commands, the notifications. No I/O: the facts come in as values
//! ([`super::Facts`]), so every problem can be produced in a test. It lives beside the
//! tasks rather than in `pulse::logic` because what it builds are the tasks' inputs
//! (probes, load commands: types of `pulse::io`), which a decision module may not name.

use crate::pulse::logic::schedule::Schedule;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{Facts, KeyFileError};
use crate::config::value::{Host, LoadMonitor, Protocol, Text};
use crate::config::Config;
use crate::ipvs::desired::ResolveError;
use crate::pulse::io::addr::AddrError;
use crate::pulse::io::load::{LoadMonitorError, LoadProbe};
use crate::pulse::io::probe::{CheckSettingsError, Probe};
use crate::pulse::io::scripts::Policy;
use crate::pulse::logic::argv::{split_words, SplitError};
use crate::pulse::logic::node::{self, NodePlan, Place};
use crate::pulse::task::activation::RoleCommands;
use crate::pulse::task::lvsd::{self, Setup};
use crate::pulse::task::notify;

/// How often a real server's load command runs (or its check interval, if longer).
pub const LOAD_INTERVAL: Duration = Duration::from_secs(20);

/// A configuration read, checked and turned into everything the tasks need.
pub struct Prepared {
    pub config: Config,
    pub warnings: Vec<String>,
    pub plan: NodePlan,
    pub key: Option<Arc<[u8]>>,
    pub commands: RoleCommands,
    pub notify: notify::Settings,
    pub setup: Setup,
    pub probes: Vec<(Arc<str>, Probe, Schedule)>,
    pub local_probes: Vec<(String, Probe, Schedule)>,
    pub load_probes: Vec<(lvsd::Key, LoadProbe, Duration)>,
}

/// Why a configuration cannot be run, saying where. The text is what the CLI, the
/// log and the control socket show, and what operators' scripts may match: keep it.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("{file}: cannot read: {source}")]
    Unreadable {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A located line from parsing and validating `lvs.cf` (`FILE:LINE:COL: error: …`).
    #[error("{0}")]
    Config(String),
    /// A command the scripts rule does not allow.
    #[error("{file}: {}{keyword}: {why}", if block.is_empty() { String::new() } else { format!("{block}: ") })]
    Refused {
        file: String,
        /// `virtual www`, `local_check nginx`, or empty for a global keyword.
        block: String,
        keyword: &'static str,
        why: String,
    },
    #[error(transparent)]
    Unresolved(ResolveError),
    #[error("reading this machine's addresses: {0}")]
    LocalAddresses(#[source] AddrError),
    /// What the node plan or the check targets refuse (an address that is not
    /// this machine's, a name that cannot be used, …).
    #[error("{0}")]
    Node(String),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The check of one real server.
    #[error("virtual {virtual_server} server {server}: {error}")]
    Probe {
        virtual_server: String,
        server: String,
        #[source]
        error: CheckSettingsError,
    },
    #[error("virtual {virtual_server}: {error}")]
    LoadMonitor {
        virtual_server: String,
        #[source]
        error: LoadMonitorError,
    },
    #[error("local_check {name}: {error}")]
    LocalCheck {
        name: String,
        #[source]
        error: CheckSettingsError,
    },
    /// A role command (`active_cmd`, `inactive_cmd`) that does not split into words.
    #[error("{keyword}: {error}")]
    Command {
        keyword: &'static str,
        #[source]
        error: SplitError,
    },
    #[error(transparent)]
    Notify(#[from] notify::SettingsError),
}

/// `lvs.cf`'s bytes, read from `file`, into the checked model and its warnings (one
/// line each), or every error, located. Bytes that are not UTF-8 are read as Latin-1
/// ([`crate::config::decode_text`]) rather than refused.
pub fn parse(file: &str, bytes: &[u8]) -> Result<(Config, Vec<String>), Vec<Problem>> {
    let (text, _) = crate::config::decode_text(bytes);
    node::load(file, &text).map_err(|lines| lines.into_iter().map(Problem::Config).collect())
}

/// Plans `config` (read from `file`, with its `warnings`) on a machine with these
/// `facts`, with `policy` (what its commands may run) handed to every probe and
/// command. Some problems stop the plan where they are found, reported with the others
/// of their kind only, in this order: refused commands, names that do not resolve,
/// this machine's addresses unknown, the node plan, the key. The rest (check targets,
/// probes, load monitors, local checks, role commands, notify_command) are collected
/// and reported together.
pub fn plan(
    file: &str,
    config: Config,
    mut warnings: Vec<String>,
    policy: Arc<Policy>,
    facts: Facts,
) -> Result<Prepared, Vec<Problem>> {
    let refused: Vec<Problem> = facts
        .refused
        .into_iter()
        .map(|(scope, keyword, why)| Problem::Refused {
            file: file.to_string(),
            block: scope.describe(&config),
            keyword,
            why,
        })
        .collect();
    if !refused.is_empty() {
        return Err(refused);
    }
    let mut names = BTreeMap::new();
    let mut errors = Vec::new();
    for (n, r) in facts.names {
        match r {
            Ok(a) => {
                names.insert(n, a);
            }
            Err(e) => errors.push(Problem::Unresolved(e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let resolve = |h: &Host| -> Result<IpAddr, ResolveError> {
        match h {
            Host::Ip(a) => Ok(*a),
            Host::Name(n) => names
                .get(n)
                .copied()
                .ok_or_else(|| ResolveError::Unresolved(n.clone())),
        }
    };
    let local = facts.local.map_err(|e| vec![Problem::LocalAddresses(e)])?;
    let plan = node::plan(&config, &resolve, &|a| local.contains(&a))
        .map_err(|lines| lines.into_iter().map(Problem::Node).collect::<Vec<_>>())?;
    let key = match facts.key {
        Some(k) if plan.place != Place::Standalone => Some(k.map_err(|e| vec![e.into()])?),
        _ => None,
    };
    let g = &config.global;
    let (targets, target_errors) = node::targets(&config, &resolve);
    let (locals, local_errors) = node::local_targets(&config, &resolve);
    let mut errors: Vec<Problem> = target_errors
        .into_iter()
        .chain(local_errors)
        .map(Problem::Node)
        .collect();
    let mut identities: HashMap<Arc<str>, Vec<lvsd::Key>> = HashMap::new();
    let mut probes = Vec::new();
    for t in &targets {
        match Probe::from_settings(&t.check, t.protocol, t.addr, t.check_port) {
            Ok(Some(mut p)) => {
                p.policy = policy.clone();
                let id: Arc<str> = Arc::from(p.identity());
                let keys = identities.entry(id.clone()).or_default();
                if keys.is_empty() {
                    probes.push((id, p, Schedule::of(&t.check)));
                }
                keys.push(t.key.clone());
            }
            Ok(None) => {}
            Err(error) => errors.push(Problem::Probe {
                virtual_server: t.key.0.clone(),
                server: t.key.1.clone(),
                error,
            }),
        }
    }
    let mut load_probes = Vec::new();
    for t in &targets {
        let Some(vs) = config.virtual_server(&t.key.0) else {
            continue;
        };
        // rup/ruptime: warned about by validation, and not run.
        let Some(monitor) = vs
            .settings
            .load_monitor
            .as_ref()
            .filter(|m| !matches!(m, LoadMonitor::Rup | LoadMonitor::Ruptime))
        else {
            continue;
        };
        // Piranha read the load about every 20 s whatever the check interval.
        let every = t.check.interval().as_duration().max(LOAD_INTERVAL);
        match LoadProbe::from_settings(monitor, g, t.addr, t.check_port, every) {
            Ok(Some(mut p)) => {
                p.policy = policy.clone();
                load_probes.push((t.key.clone(), p, every))
            }
            Ok(None) => {}
            Err(error) => errors.push(Problem::LoadMonitor {
                virtual_server: t.key.0.clone(),
                error,
            }),
        }
    }
    let mut local_probes = Vec::new();
    for l in &locals {
        match Probe::from_settings(&l.check, Protocol::Tcp, l.addr, l.port) {
            Ok(Some(mut p)) => {
                p.policy = policy.clone();
                local_probes.push((l.name.clone(), p, Schedule::of(&l.check)))
            }
            Ok(None) => {}
            Err(error) => errors.push(Problem::LocalCheck {
                name: l.name.clone(),
                error,
            }),
        }
    }
    let mut cmd = |keyword: &'static str, t: &Option<Text>| match t {
        None => Vec::new(),
        Some(t) => split_words(&t.0).unwrap_or_else(|error| {
            errors.push(Problem::Command { keyword, error });
            Vec::new()
        }),
    };
    // Under VRRP each instance runs its own notify_master / notify_backup.
    let vrrp = config.uses_vrrp();
    let commands = RoleCommands {
        active: if vrrp {
            Vec::new()
        } else {
            cmd("active_cmd", &g.active_cmd)
        },
        inactive: if vrrp {
            Vec::new()
        } else {
            cmd("inactive_cmd", &g.inactive_cmd)
        },
        policy: policy.clone(),
    };
    let virtuals = config.virtuals.iter().map(|v| v.name.clone()).collect();
    let notify = match notify::Settings::from_config(g, &plan.name, virtuals, &facts.hostname) {
        Ok((mut n, mut w)) => {
            warnings.append(&mut w);
            n.policy = policy.clone();
            match notify::Hooks::of(&config) {
                Ok(h) => n.hooks = h,
                Err(e) => errors.push(e.into()),
            }
            n
        }
        Err(e) => {
            errors.push(e.into());
            notify::Settings::default()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Prepared {
        warnings,
        plan,
        key,
        commands,
        notify,
        setup: Setup {
            config: config.clone(),
            targets,
            locals,
            identities,
            names,
        },
        config,
        probes,
        local_probes,
        load_probes,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::diag::Scope;
    use crate::pulse::logic::node::Place;

    const KEY_PATH: &str = "/etc/lvs-director/heartbeat.key";

    /// Facts as a machine with the addresses `local` and these names would give: no
    /// command refused, no key file read.
    fn facts(local: &[&str], names: &[(&str, Result<&str, &str>)]) -> Facts {
        Facts {
            refused: Vec::new(),
            names: names
                .iter()
                .map(|(n, r)| {
                    (
                        n.to_string(),
                        r.map(|a| a.parse().unwrap())
                            .map_err(|why| ResolveError::Lookup {
                                name: n.to_string(),
                                why: why.to_string(),
                            }),
                    )
                })
                .collect(),
            local: Ok(local.iter().map(|a| a.parse().unwrap()).collect()),
            key: None,
            hostname: "director1".into(),
        }
    }

    /// The facts of the primary of [`PAIR`] with its key and its one name.
    fn primary() -> Facts {
        let mut f = facts(&["10.0.0.1"], &[("www1.example", Ok("10.1.0.11"))]);
        f.key = Some(Ok(Arc::from(&b"0123456789abcdef"[..])));
        f
    }

    fn scripts() -> Arc<Policy> {
        Arc::new(Policy::Scripts(PathBuf::from("/etc/lvs-director/scripts")))
    }

    fn planned(text: &str, f: Facts) -> Result<Prepared, Vec<Problem>> {
        let (config, warnings) = parse("lvs.cf", text.as_bytes()).unwrap();
        plan("lvs.cf", config, warnings, scripts(), f)
    }

    /// The problems' texts, as the CLI and the log print them.
    fn problems(text: &str, f: Facts) -> Vec<String> {
        match planned(text, f) {
            Ok(_) => panic!("planned without a problem"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    /// A pair with a bit of everything the plan builds: two virtual servers sharing a
    /// real server checked the same way, a load monitor, a local check, a role command
    /// and a notify command.
    const PAIR: &str = r#"serial_no = 3
primary = 10.0.0.1
backup_active = 1
backup = 10.0.0.2
heartbeat_key_file = /etc/lvs-director/heartbeat.key
active_cmd = "/etc/lvs-director/scripts/up --now"
notify_command = "/etc/lvs-director/scripts/notify"
virtual web {
    active = 1
    address = 192.0.2.10 eth0
    port = 80
    load_monitor = uptime
    server a {
        address = www1.example
        active = 1
    }
    server b {
        address = 10.1.0.12
        active = 1
    }
}
virtual web2 {
    active = 1
    address = 192.0.2.11 eth0
    port = 80
    server a {
        address = www1.example
        active = 1
    }
}
local_check nginx {
    active = 1
    port = 8080
}
"#;

    /// `PAIR` with `line` added to the block that starts with `block` (a line of it).
    fn with(block: &str, line: &str) -> String {
        let at = PAIR.find(block).unwrap() + block.len();
        format!("{}\n    {line}{}", &PAIR[..at], &PAIR[at..])
    }

    /// The whole plan from text and facts alone: no file, socket or resolver.
    #[test]
    fn a_pair_is_planned_from_facts() {
        let (_, warnings) = parse("lvs.cf", PAIR.as_bytes()).unwrap();
        let p = planned(PAIR, primary()).unwrap();
        assert_eq!(p.warnings, warnings);
        assert_eq!(p.plan.place, Place::Primary);
        assert_eq!(p.key.as_deref(), Some(&b"0123456789abcdef"[..]));
        assert_eq!(
            p.setup.names.get("www1.example"),
            Some(&"10.1.0.11".parse().unwrap())
        );
        // www1 checked once for both virtual servers, 10.1.0.12 once.
        assert_eq!(p.setup.targets.len(), 3);
        assert_eq!(p.probes.len(), 2);
        let key = |v: &str, s: &str| (v.to_string(), s.to_string());
        let (id, probe, _) = &p.probes[0];
        assert_eq!(probe.addr, "10.1.0.11".parse::<IpAddr>().unwrap());
        assert_eq!(p.setup.identities[id], [key("web", "a"), key("web2", "a")]);
        assert_eq!(*probe.policy, *scripts(), "the policy reaches the probes");
        // The load is read every 20 s at the most often, by the default rsh.
        let loads: Vec<_> = p
            .load_probes
            .iter()
            .map(|(k, l, every)| (k.clone(), l.argv.join(" "), *every))
            .collect();
        assert_eq!(
            loads,
            [
                (
                    key("web", "a"),
                    "rsh 10.1.0.11 uptime".into(),
                    LOAD_INTERVAL
                ),
                (
                    key("web", "b"),
                    "rsh 10.1.0.12 uptime".into(),
                    LOAD_INTERVAL
                )
            ]
        );
        assert_eq!(p.local_probes.len(), 1);
        let (name, local, _) = &p.local_probes[0];
        assert_eq!((name.as_str(), local.port), ("nginx", 8080));
        assert_eq!(local.addr, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(p.commands.active, ["/etc/lvs-director/scripts/up", "--now"]);
        assert!(p.commands.inactive.is_empty());
        assert_eq!(p.notify.command, ["/etc/lvs-director/scripts/notify"]);
        assert_eq!(p.notify.host, "director1");
        assert_eq!(p.notify.virtuals, ["web", "web2"]);
    }

    /// Parsing reports every located line, each a `Config` problem.
    #[test]
    fn parse_reports_every_line() {
        let e = parse(
            "lvs.cf",
            b"serial_no = 1\nprimary = 10.0.0.1.5\nbackup_active = maybe\n",
        )
        .err()
        .unwrap();
        assert!(e.iter().all(|p| matches!(p, Problem::Config(_))), "{e:?}");
        let e: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            e,
            [
                "lvs.cf:2:11: error: `primary`: invalid host name or ip address: `10.0.0.1.5`",
                "lvs.cf:3:17: error: `backup_active`: boolean expected (0 or 1), found `maybe`"
            ]
        );
    }

    /// A refused command names the file, the block (none for a global keyword) and the
    /// keyword; every refusal is reported, and nothing after them.
    #[test]
    fn refused_commands_are_reported_alone() {
        let why = "/usr/local/bin/check is not in the scripts directory: commands run as root, …";
        let mut f = facts(&[], &[("www1.example", Err("Name or service not known"))]);
        f.refused = vec![
            (Scope::Server(0, 1), "send_program", why.into()),
            (Scope::LocalCheck(0), "send_program", why.into()),
            (
                Scope::Global,
                "active_cmd",
                "`up` is not an absolute path: …".into(),
            ),
        ];
        let e = planned(PAIR, f).err().unwrap();
        assert!(
            matches!(&e[2], Problem::Refused { block, keyword: "active_cmd", .. } if block.is_empty()),
            "{e:?}"
        );
        let e: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            e,
            [
                format!("lvs.cf: virtual web, server b: send_program: {why}"),
                format!("lvs.cf: local_check nginx: send_program: {why}"),
                "lvs.cf: active_cmd: `up` is not an absolute path: …".into(),
            ]
        );
    }

    /// Names that do not resolve: all of them, and nothing after them (this machine's
    /// addresses are unknown too here).
    #[test]
    fn unresolved_names_are_reported_alone() {
        let text = PAIR.replace("10.1.0.12", "www2.example");
        let mut f = facts(
            &[],
            &[
                ("www1.example", Err("Name or service not known")),
                ("www2.example", Err("Temporary failure in name resolution")),
            ],
        );
        f.local = Err(AddrError::PermissionDenied {
            op: "list addresses".into(),
        });
        assert_eq!(
            problems(&text, f),
            [
                "cannot resolve `www1.example`: Name or service not known",
                "cannot resolve `www2.example`: Temporary failure in name resolution"
            ]
        );
    }

    #[test]
    fn unknown_local_addresses_stop_the_plan() {
        let mut f = primary();
        f.local = Err(AddrError::PermissionDenied {
            op: "list addresses".into(),
        });
        assert_eq!(
            problems(PAIR, f),
            ["reading this machine's addresses: list addresses: needs CAP_NET_ADMIN: run as root or grant the capability"]
        );
    }

    /// A node that is neither director of the pair: the plan stops there, before the
    /// key (which is bad too here) and the checks (one of which is bad too).
    #[test]
    fn a_node_plan_problem_stops_the_plan() {
        let mut f = primary();
        f.local = Ok(std::collections::HashSet::from(["10.9.9.9"
            .parse()
            .unwrap()]));
        f.key = Some(Err(KeyFileError::TooShort {
            path: KEY_PATH.into(),
            len: 3,
        }));
        let e = planned(&with("virtual web {", "send_program = \"/x 'open\""), f)
            .err()
            .unwrap();
        assert!(matches!(e[..], [Problem::Node(_)]), "{e:?}");
        assert_eq!(
            e[0].to_string(),
            "this machine has neither the primary's address (10.0.0.1) nor the backup's (10.0.0.2): cannot tell which director it is"
        );
    }

    /// The key file, when this node is in a pair: alone, before the checks.
    #[test]
    fn a_key_file_problem_stops_the_plan() {
        let mut f = primary();
        f.key = Some(Err(KeyFileError::TooShort {
            path: KEY_PATH.into(),
            len: 3,
        }));
        assert_eq!(
            problems(&with("virtual web {", "send_program = \"/x 'open\""), f),
            ["heartbeat_key_file /etc/lvs-director/heartbeat.key: the key has 3 byte(s); use at least 16 (e.g. `head -c 32 /dev/urandom | base64 > /etc/lvs-director/heartbeat.key`)"]
        );
        // A standalone director has no use for the key, good or bad.
        let text = PAIR.replace("backup_active = 1", "backup_active = 0");
        let mut f = primary();
        f.key = Some(Err(KeyFileError::TooShort {
            path: KEY_PATH.into(),
            len: 3,
        }));
        let p = planned(&text, f).unwrap();
        assert!(p.key.is_none());
    }

    /// Each problem of the checks, commands and notifications, with its typed cause and
    /// its exact text.
    #[test]
    fn each_later_problem_says_what_and_where() {
        let one = |text: &str| {
            let e = planned(text, primary()).err().unwrap();
            assert_eq!(e.len(), 1, "{e:?}");
            e.into_iter().next().unwrap()
        };
        let p = one(&with("server b {", "send_program = \"/x 'open\""));
        assert!(
            matches!(
                &p,
                Problem::Probe {
                    error: CheckSettingsError::ProgramLine(SplitError::Unclosed {
                        quote: '\'',
                        ..
                    }),
                    ..
                }
            ),
            "{p:?}"
        );
        assert_eq!(
            p.to_string(),
            "virtual web server b: send_program: no closing ' in `/x 'open`"
        );
        let p = one(&with("server b {", "send_program = \" \""));
        assert_eq!(
            p.to_string(),
            "virtual web server b: send_program: the command is empty"
        );
        let p = one(&PAIR
            .replace("load_monitor = uptime", "load_monitor = \"agent 'open\"")
            .replace(
                "    server b {\n        address = 10.1.0.12\n        active = 1\n    }\n",
                "",
            ));
        assert!(
            matches!(
                &p,
                Problem::LoadMonitor {
                    error: LoadMonitorError::CommandLine(_),
                    ..
                }
            ),
            "{p:?}"
        );
        assert_eq!(
            p.to_string(),
            "virtual web: load_monitor: no closing ' in `agent 'open`"
        );
        let p = one(&with("local_check nginx {", "send_program = \"/x 'open\""));
        assert!(
            matches!(
                &p,
                Problem::LocalCheck {
                    error: CheckSettingsError::ProgramLine(_),
                    ..
                }
            ),
            "{p:?}"
        );
        assert_eq!(
            p.to_string(),
            "local_check nginx: send_program: no closing ' in `/x 'open`"
        );
        let p = one(&PAIR.replace("up --now\"", "up 'now\""));
        assert!(
            matches!(
                &p,
                Problem::Command {
                    keyword: "active_cmd",
                    ..
                }
            ),
            "{p:?}"
        );
        assert_eq!(
            p.to_string(),
            "active_cmd: no closing ' in `/etc/lvs-director/scripts/up 'now`"
        );
        let p = one(&PAIR.replace("scripts/notify\"", "scripts/notify 'x\""));
        assert!(
            matches!(&p, Problem::Notify(notify::SettingsError::CommandLine(_))),
            "{p:?}"
        );
        assert_eq!(
            p.to_string(),
            "notify_command: no closing ' in `/etc/lvs-director/scripts/notify 'x`"
        );
    }

    /// Past the key, problems are collected: every probe, load monitor, local check and
    /// command that cannot be built is reported at once, in that order.
    #[test]
    fn later_problems_are_reported_together() {
        let text = with("virtual web {", "send_program = \"/x 'open\"")
            .replace("load_monitor = uptime", "load_monitor = \"agent 'open\"")
            .replace(
                "    port = 8080\n",
                "    port = 8080\n    send_program = \"\"\n",
            )
            .replace(
                "active_cmd = \"/etc/lvs-director/scripts/up --now\"",
                "active_cmd = \"up 'now\"\ninactive_cmd = 'down \"now'",
            )
            .replace("scripts/notify\"", "scripts/notify '\"");
        assert_eq!(
            problems(&text, primary()),
            [
                "virtual web server a: send_program: no closing ' in `/x 'open`",
                "virtual web server b: send_program: no closing ' in `/x 'open`",
                "virtual web: load_monitor: no closing ' in `agent 'open`",
                "virtual web: load_monitor: no closing ' in `agent 'open`",
                "local_check nginx: send_program: the command is empty",
                "active_cmd: no closing ' in `up 'now`",
                "inactive_cmd: no closing \" in `down \"now`",
                "notify_command: no closing ' in `/etc/lvs-director/scripts/notify '`",
            ]
        );
    }
}
