//! From a checked configuration and the machine's facts to everything the tasks need:
//! the node plan, the heartbeat key, the probes, the commands, the notifications.
//! No I/O: the facts come in as values ([`super::Facts`]), so every problem can be
//! produced in a test. It lives beside the tasks rather than in `pulse::logic` because
//! what it builds are the tasks' inputs (probes, load commands), types of `pulse::io`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{Facts, KeyFileError};
use crate::config::value::{Host, LoadMonitor, Protocol, Text};
use crate::config::Config;
use crate::ipvs::desired::ResolveError;
use crate::pulse::io::load::{LoadMonitorError, LoadProbe};
use crate::pulse::io::probe::{CheckSettingsError, Probe};
use crate::pulse::io::scripts::{self, Policy};
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
    pub probes: Vec<(Arc<str>, Probe, Duration)>,
    pub local_probes: Vec<(String, Probe, Duration)>,
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
    /// A located line about `lvs.cf` itself (`FILE:LINE:COL: error: …`).
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
    LocalAddresses(String),
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

/// Plans `config` (read from `file`, with its `warnings`) on a machine with these
/// `facts`. Problems that stop everything after them (a refused command, names that do
/// not resolve, this machine's addresses unknown, the plan itself, the key) are
/// reported alone, as soon as found; the others are collected and reported together.
pub fn plan(
    file: &str,
    config: Config,
    mut warnings: Vec<String>,
    policy: Arc<Policy>,
    facts: Facts,
) -> Result<Prepared, Vec<Problem>> {
    let refused: Vec<Problem> = scripts::refusals(&config, &policy)
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
                    probes.push((id, p, t.check.interval().as_duration()));
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
                local_probes.push((l.name.clone(), p, l.check.interval().as_duration()))
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
    let commands = RoleCommands {
        active: cmd("active_cmd", &g.active_cmd),
        inactive: cmd("inactive_cmd", &g.inactive_cmd),
        policy: policy.clone(),
    };
    let virtuals = config.virtuals.iter().map(|v| v.name.clone()).collect();
    let notify = match notify::Settings::from_config(g, &plan.name, virtuals, &facts.hostname) {
        Ok((mut n, mut w)) => {
            warnings.append(&mut w);
            n.policy = policy.clone();
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
