//! The VRRP task of one interface and family: adverts in from the [`Receiver`], each
//! handed to the instance with its virtual router id; timers; the state machines'
//! actions carried out: adverts sent, and each instance's addresses raised or dropped
//! by its own activation task (the same code that serves the heartbeat's active role).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::pulse::io::vrrp::{group, Receiver, Sender};
use crate::pulse::logic::throttle::{more, Throttle};
use crate::pulse::logic::vrrp::instance::{Action, Event, Instance};
use crate::pulse::logic::vrrp::packet::Advert;
use crate::pulse::task::activation::{Duty, RoleChange};
use crate::sync::Recover;

/// One instance on this interface.
pub struct Member {
    pub instance: Instance,
    pub sender: Sender,
    /// Unicast peers; empty: the VRRP group.
    pub peers: Vec<IpAddr>,
    /// The instance's activation task (its addresses, announcements, commands).
    pub duties: mpsc::UnboundedSender<Duty>,
}

/// What the rest of the supervisor tells the task.
#[derive(Debug)]
pub enum Control {
    /// The effective priority the trackers give an instance.
    Priority { instance: String, priority: u8 },
    /// A tracker without weight failed (`Some`) or all recovered (`None`).
    Fault {
        instance: String,
        cause: Option<String>,
    },
    /// A clean stop: masters send priority 0 and release; acknowledged when done.
    Stop(oneshot::Sender<()>),
}

pub use crate::pulse::logic::control::VrrpStatus as InstanceStatus;

/// Every instance's status, by name.
pub type Board = Arc<Mutex<BTreeMap<String, InstanceStatus>>>;

pub struct Engine {
    receiver: Receiver,
    members: Vec<Member>,
    clock: Instant,
    board: Board,
    warnings: BTreeMap<&'static str, Throttle>,
}

impl Engine {
    pub fn new(receiver: Receiver, members: Vec<Member>, board: Board) -> Engine {
        let e = Engine {
            receiver,
            members,
            clock: Instant::now(),
            board,
            warnings: BTreeMap::new(),
        };
        for m in &e.members {
            e.publish(m);
        }
        e
    }

    fn now(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    fn publish(&self, m: &Member) {
        let i = &m.instance;
        let mut board = self.board.locked();
        let s = board.entry(i.settings().name.clone()).or_default();
        s.name = i.settings().name.clone();
        s.state = i.state().name().to_string();
        s.vrid = i.settings().vrid;
        s.priority = i.settings().priority;
        s.effective_priority = i.effective_priority();
        s.master = i.master().map(|(a, _)| a);
    }

    fn count(&self, name: &str, f: impl FnOnce(&mut InstanceStatus)) {
        if let Some(s) = self.board.locked().get_mut(name) {
            f(s);
        }
    }

    /// Runs until stopped (or until `control` closes, which stops it the same way).
    pub async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        for k in 0..self.members.len() {
            let now = self.now();
            self.handle(k, now, Event::Start);
        }
        loop {
            let next = self
                .members
                .iter()
                .filter_map(|m| m.instance.deadline())
                .min();
            let sleep = match next {
                Some(d) => Duration::from_micros(d.saturating_sub(self.now())),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                r = self.receiver.recv() => match r {
                    Ok(r) => self.datagram(r),
                    Err(e) => self.warn("receive", format!("VRRP receive: {e}")),
                },
                _ = tokio::time::sleep(sleep) => {
                    let now = self.now();
                    for k in 0..self.members.len() {
                        if self.members[k].instance.deadline().is_some_and(|d| d <= now) {
                            self.handle(k, now, Event::Timer);
                        }
                    }
                }
                c = control.recv() => match c {
                    Some(Control::Priority { instance, priority }) => {
                        self.to(&instance, Event::Priority(priority))
                    }
                    Some(Control::Fault { instance, cause }) => {
                        self.to(&instance, Event::Fault(cause))
                    }
                    Some(Control::Stop(ack)) => {
                        self.stop().await;
                        let _ = ack.send(());
                        return;
                    }
                    None => {
                        self.stop().await;
                        return;
                    }
                },
            }
        }
    }

    async fn stop(&mut self) {
        let now = self.now();
        for k in 0..self.members.len() {
            self.handle(k, now, Event::Stop);
        }
        // Each activation task releases before acknowledging.
        for m in &self.members {
            let (tx, rx) = oneshot::channel();
            if m.duties.send(Duty::Stop(tx)).is_ok() {
                let _ = rx.await;
            }
        }
    }

    fn to(&mut self, name: &str, e: Event) {
        if let Some(k) = self
            .members
            .iter()
            .position(|m| m.instance.settings().name == name)
        {
            let now = self.now();
            self.handle(k, now, e);
        }
    }

    fn datagram(&mut self, r: crate::pulse::io::vrrp::Received) {
        let advert = match Advert::decode(r.src, r.dst, &r.msg) {
            Ok(a) => a,
            Err(e) => {
                // Counted for every instance on the link: the advert's router id
                // cannot be trusted.
                let reason = e.reason().to_string();
                for m in &self.members {
                    self.count(&m.instance.settings().name, |s| {
                        *s.dropped.entry(reason.clone()).or_default() += 1
                    });
                }
                self.warn(
                    "decode",
                    format!("unreadable VRRP advert from {}: {e}", r.src),
                );
                return;
            }
        };
        let Some(k) = self
            .members
            .iter()
            .position(|m| m.instance.settings().vrid == advert.vrid)
        else {
            return;
        };
        let name = self.members[k].instance.settings().name.clone();
        self.count(&name, |s| s.adverts_received += 1);
        let now = self.now();
        self.handle(
            k,
            now,
            Event::Advert {
                from: r.src,
                ttl: r.ttl,
                advert,
            },
        );
    }

    fn warn(&mut self, kind: &'static str, text: String) {
        let t = self
            .warnings
            .entry(kind)
            .or_insert_with(|| Throttle::new(Duration::from_secs(10)));
        if let Some(skipped) = t.ready(Instant::now()) {
            tracing::warn!("{text}{}", more(skipped));
        }
    }

    fn handle(&mut self, k: usize, now: u64, e: Event) {
        let actions = self.members[k].instance.handle(now, e);
        let name = self.members[k].instance.settings().name.clone();
        let cause = actions
            .iter()
            .find_map(|a| match a {
                Action::Changed { cause, .. } => Some(cause.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for a in actions {
            match a {
                Action::Send { priority } => self.send(k, priority),
                Action::Raise => {
                    let _ = self.members[k]
                        .duties
                        .send(Duty::Role(RoleChange::Activate(cause.clone())));
                }
                Action::Release => {
                    let _ = self.members[k]
                        .duties
                        .send(Duty::Role(RoleChange::Deactivate(cause.clone())));
                }
                Action::Announce => {
                    tracing::debug!(instance = %name, "a lower priority was heard");
                }
                Action::Changed { from, to, cause } => {
                    let i = &self.members[k].instance;
                    tracing::info!(
                        instance = %name,
                        from = from.name(),
                        state = to.name(),
                        priority = i.effective_priority(),
                        "VRRP instance {name}: {} -> {} ({cause})",
                        from.name(),
                        to.name()
                    );
                }
                Action::Dropped { reason, detail } => {
                    self.count(&name, |s| {
                        *s.dropped.entry(reason.to_string()).or_default() += 1
                    });
                    self.warn(
                        reason,
                        format!("VRRP instance {name}: advert dropped: {detail}"),
                    );
                }
                Action::Warn(text) => {
                    tracing::warn!(instance = %name, "VRRP instance {name}: {text}")
                }
            }
        }
        self.publish(&self.members[k]);
    }

    fn send(&mut self, k: usize, priority: u8) {
        let m = &self.members[k];
        let advert = m.instance.advert(priority);
        let targets: Vec<IpAddr> = if m.peers.is_empty() {
            vec![group(m.sender.source().is_ipv6())]
        } else {
            m.peers.clone()
        };
        let name = m.instance.settings().name.clone();
        let mut sent = 0;
        let mut failed = None;
        for t in targets {
            match m.sender.send(&advert, t) {
                Ok(()) => sent += 1,
                Err(e) => failed = Some(format!("VRRP instance {name}: sending to {t}: {e}")),
            }
        }
        self.count(&name, |s| s.adverts_sent += sent);
        if let Some(f) = failed {
            self.warn("send", f);
        }
    }
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
    controls: Vec<mpsc::UnboundedSender<Control>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Which engine runs which instance.
    owners: BTreeMap<String, usize>,
    pub board: Board,
}

impl Running {
    /// Tells an instance's engine something.
    pub fn send(&self, instance: &str, c: Control) {
        if let Some(&k) = self.owners.get(instance) {
            let _ = self.controls[k].send(c);
        }
    }

    /// Stops every engine cleanly (priority 0 from masters, addresses released).
    pub async fn stop(self) {
        for c in &self.controls {
            let (tx, rx) = oneshot::channel();
            if c.send(Control::Stop(tx)).is_ok() {
                let _ = rx.await;
            }
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the active `vrrp` instances of `config` on this runtime. `shared` receives
/// what the activation tasks publish (addresses up or down); `policy` is what each
/// instance's notify_master / notify_backup may run.
pub fn start(
    config: &crate::config::Config,
    shared: Arc<Mutex<crate::pulse::task::shared::Shared>>,
    policy: Arc<crate::pulse::io::scripts::Policy>,
) -> Result<Running, StartError> {
    use crate::pulse::io::addr::Rtnl;
    use crate::pulse::logic::vrrp::plan::instance_plan;
    use crate::pulse::task::activation::Activation;

    let board: Board = Arc::default();
    let mut groups: BTreeMap<(u32, bool), Vec<Member>> = BTreeMap::new();
    let mut names: BTreeMap<(u32, bool), Vec<String>> = BTreeMap::new();
    let mut rt = None;
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
        let rtnl = match &mut rt {
            Some(r) => r,
            None => rt.insert(Rtnl::connect().map_err(|source| StartError::Interface {
                instance: inst.name.clone(),
                interface: interface.clone(),
                source,
            })?),
        };
        let fail = |source| StartError::Interface {
            instance: inst.name.clone(),
            interface: interface.clone(),
            source,
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
        let commands = crate::pulse::task::activation::RoleCommands {
            active: split("notify_master", &inst.settings.notify_master)?,
            inactive: split("notify_backup", &inst.settings.notify_backup)?,
            policy: policy.clone(),
        };
        let (duties, rx) = mpsc::unbounded_channel();
        let activation = Activation::new(
            plan.activation(inst, sync.clone()),
            commands,
            shared.clone(),
        );
        tokio::spawn(activation.run(rx));
        names
            .entry((link.index, v6))
            .or_default()
            .push(inst.name.clone());
        groups.entry((link.index, v6)).or_default().push(Member {
            instance: Instance::new(plan.settings),
            sender,
            peers: plan.peers,
            duties,
        });
    }
    let mut running = Running {
        controls: Vec::new(),
        tasks: Vec::new(),
        owners: BTreeMap::new(),
        board: board.clone(),
    };
    for ((ifindex, v6), members) in groups {
        let first = names
            .get(&(ifindex, v6))
            .and_then(|n| n.first().cloned())
            .unwrap_or_default();
        let receiver = Receiver::open(ifindex, v6).map_err(|source| StartError::Socket {
            instance: first,
            interface: format!("#{ifindex}"),
            source,
        })?;
        let k = running.controls.len();
        for n in names.remove(&(ifindex, v6)).unwrap_or_default() {
            running.owners.insert(n, k);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = Engine::new(receiver, members, board.clone());
        running.tasks.push(tokio::spawn(engine.run(rx)));
        running.controls.push(tx);
    }
    Ok(running)
}
