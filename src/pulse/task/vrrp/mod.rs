//! The running VRRP instances: one [`engine::Engine`] task for all of them (a sync
//! group may span interfaces), one receiving socket per interface and family, each
//! instance with its own sending socket and activation task, and one link poller
//! whose readings the trackers use.

mod engine;
mod links;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

pub use engine::{Board, InstanceStatus};
use engine::{Commands, Control, Engine, Member, Tracked};

use crate::pulse::io::vrrp::{Receiver, Sender};
use crate::pulse::logic::vrrp::instance::Instance;

/// What the engines share with the rest of the supervisor.
#[derive(Clone)]
pub struct Context {
    /// Receives what the activation tasks publish (addresses up or down) and the
    /// instances' state changes (recorded and notified).
    pub shared: Arc<Mutex<crate::pulse::task::shared::Shared>>,
    /// What the notify commands may run.
    pub policy: Arc<crate::pulse::io::scripts::Policy>,
    /// The local checks' health (`track_script`).
    pub local_health: watch::Receiver<crate::pulse::task::lvsd::LocalHealth>,
}

/// Why the VRRP instances cannot start; the message names the instance and the cause.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("vrrp {instance}: interface {interface}: {source}")]
    Interface {
        instance: String,
        interface: String,
        source: crate::pulse::io::addr::AddrError,
    },
    #[error("vrrp {instance}: interface {interface} has no {family} address to send adverts from: set unicast_src_ip")]
    NoSource {
        instance: String,
        interface: String,
        family: &'static str,
    },
    #[error("vrrp {instance}: {keyword}: {error}")]
    Command {
        instance: String,
        keyword: &'static str,
        error: crate::pulse::logic::argv::SplitError,
    },
    #[error("vrrp {instance}: opening the VRRP socket on {interface}: {source}")]
    Socket {
        instance: String,
        interface: String,
        source: std::io::Error,
    },
}

/// The running VRRP instances: one engine per interface and family.
pub struct Running {
    control: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<()>,
    links: tokio::task::JoinHandle<()>,
    pub board: Board,
}

impl Running {
    /// Stops the engine cleanly (priority 0 from masters, addresses released).
    pub async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
        self.links.abort();
    }
}

/// Starts the active `vrrp` instances of `config` on this runtime.
pub fn start(config: &crate::config::Config, context: Context) -> Result<Running, StartError> {
    use crate::pulse::io::addr::Rtnl;
    use crate::pulse::logic::vrrp::plan::instance_plan;
    use crate::pulse::task::activation::{Activation, RoleCommands};

    let board: Board = Arc::default();
    let mut members: Vec<Member> = Vec::new();
    let mut receivers: Vec<Receiver> = Vec::new();
    // Each receiver's interface and family.
    let mut links_of: Vec<(u32, bool)> = Vec::new();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut rt = None;
    let mut poll_ms = links::POLL_MAX_MS;
    let sync = config
        .global
        .syncd_iface
        .as_ref()
        .map(|i| (i.0.clone(), config.global.syncd_id.unwrap_or(0) as u8));
    for inst in config.vrrp.iter().filter(|i| i.settings.active()) {
        let interface = inst
            .settings
            .interface
            .as_ref()
            .map(|w| w.0.clone())
            .unwrap_or_default();
        let fail = |source| StartError::Interface {
            instance: inst.name.clone(),
            interface: interface.clone(),
            source,
        };
        let rtnl = match &mut rt {
            Some(r) => r,
            None => rt.insert(Rtnl::connect().map_err(fail)?),
        };
        let link = rtnl.link(&interface).map_err(fail)?;
        let v6 = inst.settings.is_ipv6();
        let source = match inst.settings.unicast_src_ip {
            Some(a) => a,
            None => {
                let ours: Vec<IpAddr> = inst
                    .settings
                    .virtual_ipaddress
                    .iter()
                    .flat_map(|l| l.0.iter().map(|v| v.addr))
                    .collect();
                // keepalived's choice: the interface's first address of the family
                // (link-local for IPv6), never one of the virtual addresses.
                rtnl.addresses()
                    .map_err(fail)?
                    .into_iter()
                    .filter(|a| a.index == link.index && a.addr.is_ipv6() == v6)
                    .filter(|a| !ours.contains(&a.addr) && !a.is_tentative())
                    .map(|a| a.addr)
                    .find(|a| match a {
                        IpAddr::V6(x) => x.is_unicast_link_local(),
                        IpAddr::V4(_) => true,
                    })
                    .ok_or_else(|| StartError::NoSource {
                        instance: inst.name.clone(),
                        interface: interface.clone(),
                        family: if v6 { "IPv6 link-local" } else { "IPv4" },
                    })?
            }
        };
        let plan = instance_plan(config, inst, source);
        poll_ms = poll_ms.min(u64::from(plan.settings.interval_cs) * 10);
        let sender = Sender::open(link.index, plan.settings.source).map_err(|source| {
            StartError::Socket {
                instance: inst.name.clone(),
                interface: interface.clone(),
                source,
            }
        })?;
        let split = |keyword: &'static str, t: &Option<crate::config::value::Text>| match t {
            None => Ok(Vec::new()),
            Some(t) => {
                crate::pulse::logic::argv::split_words(&t.0).map_err(|error| StartError::Command {
                    instance: inst.name.clone(),
                    keyword,
                    error,
                })
            }
        };
        let st = &inst.settings;
        let commands = Commands {
            master: split("notify_master", &st.notify_master)?,
            backup: split("notify_backup", &st.notify_backup)?,
            fault: split("notify_fault", &st.notify_fault)?,
            notify: split("notify", &st.notify)?,
        };
        // The engine runs the notify commands on the state changes themselves (a
        // master going to FAULT runs notify_fault, not notify_backup).
        let role_commands = RoleCommands {
            active: Vec::new(),
            inactive: Vec::new(),
            policy: context.policy.clone(),
        };
        let (duties, rx) = mpsc::unbounded_channel();
        let activation = Activation::new(
            plan.activation(inst, sync.clone()),
            role_commands,
            context.shared.clone(),
        );
        tokio::spawn(activation.run(rx));
        let j = match links_of.iter().position(|l| *l == (link.index, v6)) {
            Some(j) => j,
            None => {
                let r = Receiver::open(link.index, v6).map_err(|source| StartError::Socket {
                    instance: inst.name.clone(),
                    interface: interface.clone(),
                    source,
                })?;
                receivers.push(r);
                links_of.push((link.index, v6));
                links_of.len() - 1
            }
        };
        if let Some(g) = &st.sync_group {
            groups.entry(g.0.clone()).or_default().push(members.len());
        }
        members.push(Member::new(
            Instance::new(plan.settings),
            sender,
            plan.peers,
            duties,
            plan.tracking,
            commands,
            j,
        ));
    }
    let (links, link_readings) = match rt {
        Some(rt) => links::start(rt, poll_ms),
        None => (tokio::spawn(async {}), watch::channel(BTreeMap::new()).1),
    };
    let tracked = Tracked {
        checks: context.local_health.clone(),
        links: link_readings,
    };
    let (control, rx) = mpsc::unbounded_channel();
    let engine = Engine::new(
        receivers,
        members,
        groups.into_iter().collect(),
        board.clone(),
        tracked,
        context,
    );
    Ok(Running {
        control,
        task: tokio::spawn(engine.run(rx)),
        links,
        board,
    })
}
