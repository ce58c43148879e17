//! The VRRP task: adverts in from one [`Receiver`] per interface and family, each
//! handed to the instance of that link with its virtual router id; timers; sync groups
//! (all instances run in this one task, so a group may span interfaces); the
//! trackers' readings
//! turned into priorities and faults; the state machines' actions carried out: adverts
//! sent, each instance's addresses raised or dropped by its own activation task (the
//! same code that serves the heartbeat's active role), state changes recorded and
//! notified, and the instance's notify commands run.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::Context;
use crate::pulse::io::command;
use crate::pulse::io::vrrp::{group, Receiver, Sender};
use crate::pulse::logic::throttle::{more, Throttle};
use crate::pulse::logic::vrrp::instance::{Action, Event, Instance, State};
use crate::pulse::logic::vrrp::packet::Advert;
use crate::pulse::logic::vrrp::sync::{Group, View};
use crate::pulse::logic::vrrp::track::{Readings, Tracking, Verdict};
use crate::pulse::task::activation::{Duty, RoleChange};
use crate::sync::Recover;

/// The commands an instance runs on its state changes (keepalived's notify scripts).
#[derive(Debug, Clone, Default)]
pub struct Commands {
    pub master: Vec<String>,
    pub backup: Vec<String>,
    pub fault: Vec<String>,
    /// Run on every change with `INSTANCE NAME STATE PRIORITY` appended.
    pub notify: Vec<String>,
}

/// One instance on this interface.
pub struct Member {
    pub instance: Instance,
    pub sender: Sender,
    /// Unicast peers; empty: the VRRP group.
    pub peers: Vec<IpAddr>,
    /// The instance's activation task (its addresses, announcements, sync daemon).
    pub duties: mpsc::UnboundedSender<Duty>,
    pub tracking: Tracking,
    pub commands: Commands,
    /// Which receiver its adverts arrive on.
    link: usize,
    /// Its sync group, by index.
    group: Option<usize>,
    /// The trackers' verdict last acted on.
    verdict: Option<Verdict>,
    /// Told [`Event::Start`] (a check without weight may hold it back).
    started: bool,
}

impl Member {
    pub fn new(
        instance: Instance,
        sender: Sender,
        peers: Vec<IpAddr>,
        duties: mpsc::UnboundedSender<Duty>,
        tracking: Tracking,
        commands: Commands,
        link: usize,
    ) -> Member {
        Member {
            instance,
            sender,
            peers,
            duties,
            tracking,
            commands,
            link,
            group: None,
            verdict: None,
            started: false,
        }
    }
}

/// What the rest of the supervisor tells the task.
#[derive(Debug)]
pub enum Control {
    /// A clean stop: masters send priority 0 and release; acknowledged when done.
    Stop(oneshot::Sender<()>),
}

pub use crate::pulse::logic::control::VrrpStatus as InstanceStatus;

/// Every instance's status, by name.
pub type Board = Arc<Mutex<BTreeMap<String, InstanceStatus>>>;

/// What the trackers read: the local checks' health (from the health thread) and the
/// links' state (from the link poller).
#[derive(Clone)]
pub struct Tracked {
    pub checks: watch::Receiver<crate::pulse::task::lvsd::LocalHealth>,
    pub links: watch::Receiver<BTreeMap<String, bool>>,
}

impl Tracked {
    fn readings(&mut self) -> Readings {
        Readings {
            checks: self.checks.borrow_and_update().clone(),
            links: self.links.borrow_and_update().clone(),
        }
    }
}

/// Adverts from every receiver, with the receiver's index.
type Incoming = mpsc::UnboundedReceiver<(usize, std::io::Result<crate::pulse::io::vrrp::Received>)>;

pub struct Engine {
    incoming: Incoming,
    /// The tasks reading the receivers into `incoming`.
    readers: Vec<tokio::task::JoinHandle<()>>,
    members: Vec<Member>,
    /// Each sync group with its members' indices.
    groups: Vec<(Group, Vec<usize>)>,
    /// Set while a group's orders are carried out: they are not followed again.
    syncing: bool,
    clock: Instant,
    board: Board,
    warnings: BTreeMap<&'static str, Throttle>,
    tracked: Tracked,
    context: Context,
}

impl Engine {
    /// The engine of these receivers and members; `groups` names each sync group's
    /// members by index.
    pub fn new(
        receivers: Vec<Receiver>,
        mut members: Vec<Member>,
        groups: Vec<(String, Vec<usize>)>,
        board: Board,
        tracked: Tracked,
        context: Context,
    ) -> Engine {
        let (tx, incoming) = mpsc::unbounded_channel();
        let readers = receivers
            .into_iter()
            .enumerate()
            .map(|(j, r)| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    loop {
                        let got = r.recv().await;
                        if tx.send((j, got)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        let groups = groups
            .into_iter()
            .enumerate()
            .map(|(g, (name, ks))| {
                for &k in &ks {
                    members[k].group = Some(g);
                }
                (Group::new(name), ks)
            })
            .collect();
        let e = Engine {
            incoming,
            readers,
            members,
            groups,
            syncing: false,
            clock: Instant::now(),
            board,
            warnings: BTreeMap::new(),
            tracked,
            context,
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
        s.interface = m.tracking.interface.clone();
        s.state = i.state().name().to_string();
        s.vrid = i.settings().vrid;
        s.priority = i.settings().priority;
        s.effective_priority = i.effective_priority();
        s.master = i.master().map(|(a, _)| a);
        s.fault = match &m.verdict {
            Some(Verdict::Waiting(w)) if !m.started => Some(w.clone()),
            _ => i.fault_cause().map(str::to_string),
        };
    }

    fn count(&self, name: &str, f: impl FnOnce(&mut InstanceStatus)) {
        if let Some(s) = self.board.locked().get_mut(name) {
            f(s);
        }
    }

    /// Counted for every instance on link `j`: the advert cannot be given to one.
    fn count_link(&self, j: usize, reason: &str) {
        let mut board = self.board.locked();
        for m in self.members.iter().filter(|m| m.link == j) {
            if let Some(s) = board.get_mut(&m.instance.settings().name) {
                *s.dropped.entry(reason.to_string()).or_default() += 1;
            }
        }
    }

    /// Runs until stopped (or until `control` closes, which stops it the same way).
    pub async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        self.track();
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
                Some((j, r)) = self.incoming.recv() => match r {
                    Ok(r) => self.datagram(j, r),
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
                // A closed sender only disables its branch; the control channel's end
                // stops the engine.
                Ok(()) = self.tracked.checks.changed() => self.track(),
                Ok(()) = self.tracked.links.changed() => self.track(),
                c = control.recv() => {
                    self.stop().await;
                    if let Some(Control::Stop(ack)) = c {
                        let _ = ack.send(());
                    }
                    return;
                }
            }
        }
    }

    /// The trackers' verdicts on the current readings, acted on where they changed.
    fn track(&mut self) {
        let r = self.tracked.readings();
        for k in 0..self.members.len() {
            let v = self.members[k].tracking.verdict(&r);
            self.apply(k, v);
        }
    }

    fn apply(&mut self, k: usize, v: Verdict) {
        let m = &mut self.members[k];
        if m.verdict.as_ref() == Some(&v) {
            return;
        }
        let was = m.verdict.replace(v.clone());
        let started = m.started;
        let name = m.instance.settings().name.clone();
        let now = self.now();
        match v {
            Verdict::Waiting(why) => {
                if !started {
                    tracing::info!(instance = %name, "VRRP instance {name} waits: {why}");
                }
            }
            Verdict::Fault(cause) => {
                self.handle(k, now, Event::Fault(Some(cause)));
                self.start(k, now);
            }
            Verdict::Run { priority } => {
                let before = self.members[k].instance.effective_priority();
                self.handle(k, now, Event::Priority(priority));
                let after = self.members[k].instance.effective_priority();
                if before != after {
                    tracing::info!(
                        instance = %name,
                        priority = after,
                        "VRRP instance {name}: effective priority {before} -> {after} (trackers)"
                    );
                }
                if started && matches!(was, Some(Verdict::Fault(_))) {
                    self.handle(k, now, Event::Fault(None));
                }
                self.start(k, now);
            }
        }
        self.publish(&self.members[k]);
    }

    fn start(&mut self, k: usize, now: u64) {
        if !self.members[k].started {
            self.members[k].started = true;
            self.handle(k, now, Event::Start);
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
        for r in &self.readers {
            r.abort();
        }
    }

    fn datagram(&mut self, j: usize, r: crate::pulse::io::vrrp::Received) {
        let advert = match Advert::decode(r.src, r.dst, &r.msg) {
            Ok(a) => a,
            Err(e) => {
                // The advert's router id cannot be trusted.
                self.count_link(j, e.reason());
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
            .position(|m| m.link == j && m.instance.settings().vrid == advert.vrid)
        else {
            self.count_link(j, "virtual router id");
            self.warn(
                "virtual router id",
                format!(
                    "VRRP advert from {} for virtual router id {}, which no instance on this link has",
                    r.src, advert.vrid
                ),
            );
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
        for a in &actions {
            match a {
                Action::Send { priority } => self.send(k, *priority),
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
                    let _ = self.members[k].duties.send(Duty::Announce);
                }
                Action::Changed { from, to, cause } => self.changed(k, *from, *to, cause),
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
                Action::WantMaster(cause) => {
                    tracing::debug!(instance = %name, "VRRP instance {name} would take over ({cause}): its sync group decides")
                }
            }
        }
        self.publish(&self.members[k]);
        self.follow_group(k, now, &actions);
    }

    /// What member `k`'s sync group makes of its actions, carried out.
    fn follow_group(&mut self, k: usize, now: u64, actions: &[Action]) {
        let Some(g) = self.members[k].group else {
            return;
        };
        if self.syncing {
            return;
        }
        let (group, ks) = &mut self.groups[g];
        let view: Vec<View> = ks
            .iter()
            .map(|&j| {
                let i = &self.members[j].instance;
                View {
                    name: &i.settings().name,
                    state: i.state(),
                    own_fault: i.own_fault(),
                    wants_master: i.wants_master(),
                }
            })
            .collect();
        let Some(pos) = ks.iter().position(|&j| j == k) else {
            return;
        };
        let before = group.state();
        let orders = group.follow(pos, actions, &view);
        let after = group.state();
        let name = group.name.clone();
        let targets: Vec<usize> = orders.iter().map(|(p, _)| ks[*p]).collect();
        if before != after {
            tracing::info!(
                sync_group = %name,
                "VRRP sync group {name}: {} -> {}",
                before.name(),
                after.name()
            );
        }
        self.syncing = true;
        for (j, (_, order)) in targets.into_iter().zip(orders) {
            self.handle(j, now, Event::Sync(order));
        }
        self.syncing = false;
    }

    /// A state change: logged once, recorded (and so notified) with its cause, and
    /// the instance's notify commands run as keepalived runs them.
    fn changed(&mut self, k: usize, from: State, to: State, cause: &str) {
        let m = &self.members[k];
        let name = m.instance.settings().name.clone();
        let priority = m.instance.effective_priority();
        tracing::info!(
            instance = %name,
            from = from.name(),
            state = to.name(),
            priority,
            "VRRP instance {name}: {} -> {} ({cause})",
            from.name(),
            to.name()
        );
        // keepalived's notify says STOP for an instance that stops.
        let state = if to == State::Init { "STOP" } else { to.name() };
        self.context
            .shared
            .locked()
            .event(format!("vrrp {name}"), &state.to_lowercase(), cause);
        let c = &m.commands;
        let (what, argv) = match to {
            State::Master => ("notify_master", &c.master),
            State::Backup => ("notify_backup", &c.backup),
            State::Fault => ("notify_fault", &c.fault),
            State::Init => ("", &Vec::new()),
        };
        let policy = &self.context.policy;
        command::spawn(what, argv.clone(), command::COMMAND_TIMEOUT, policy.clone());
        if !c.notify.is_empty() {
            let mut argv = c.notify.clone();
            argv.extend([
                "INSTANCE".to_string(),
                name,
                state.to_string(),
                priority.to_string(),
            ]);
            command::spawn("notify", argv, command::COMMAND_TIMEOUT, policy.clone());
        }
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
