//! The duties of the active role: raise the floating addresses, announce them, run the
//! connection-sync daemon as master, run `active_cmd`; and undo all of it. Role changes
//! arrive in order from the failover task; each is carried out completely before the
//! next.

use crate::sync::Recover;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::ipvs::client::Client;
use crate::ipvs::netlink::{SyncDaemon, SyncState};

use crate::pulse::io::addr::{AddOptions, Rtnl};
use crate::pulse::io::announce;
use crate::pulse::io::command;
use crate::pulse::io::scripts::Policy;
use crate::pulse::logic::control::AddressStatus;
use crate::pulse::logic::node::{NodePlan, Vip};
use crate::pulse::task::shared::Shared;

/// The commands run on role changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleCommands {
    pub active: Vec<String>,
    pub inactive: Vec<String>,
    /// Checked again just before each runs.
    pub policy: Arc<Policy>,
}

/// What the activation task must do, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    Activate(String),
    Deactivate(String),
}

#[derive(Debug)]
pub enum Duty {
    Role(RoleChange),
    /// Announce the addresses again if they are up here (VRRP: a lower priority was
    /// heard).
    Announce,
    Reconfigure(Box<NodePlan>, RoleCommands),
    Stop(oneshot::Sender<()>),
}

/// An address to announce: device index, its hardware address, the address, the
/// device's name.
type Target = (u32, [u8; 6], IpAddr, String);

pub struct Activation {
    plan: NodePlan,
    commands: RoleCommands,
    active: bool,
    announcer: Option<JoinHandle<()>>,
    shared: Arc<Mutex<Shared>>,
}

/// One gratuitous ARP (IPv4, both forms) or unsolicited neighbour advertisement (IPv6).
fn send_announcement(index: u32, mac: [u8; 6], ip: IpAddr, dev: &str) {
    let r = match ip {
        IpAddr::V4(a) => announce::send_garp(index, mac, a),
        IpAddr::V6(a) => announce::send_unsolicited_na(index, mac, a),
    };
    if let Err(e) = r {
        tracing::warn!("announcing {ip} on {dev}: {e}");
    }
}

fn vip_text(v: &Vip) -> String {
    format!("{}/{}", v.addr, v.prefix)
}

impl Activation {
    pub fn new(plan: NodePlan, commands: RoleCommands, shared: Arc<Mutex<Shared>>) -> Self {
        Activation {
            plan,
            commands,
            active: false,
            announcer: None,
            shared,
        }
    }

    /// Runs until the duties end, inside an `activation{director}` span.
    pub async fn run(self, duties: mpsc::UnboundedReceiver<Duty>) {
        let span = tracing::info_span!("activation", director = %self.plan.name);
        tracing::Instrument::instrument(self.serve(duties), span).await
    }

    async fn serve(mut self, mut duties: mpsc::UnboundedReceiver<Duty>) {
        // A node starts inactive: addresses left by a crash are taken down (the peer may
        // hold them now), and Piranha's inactive_cmd runs once.
        self.lower(
            &self.plan.vips.clone(),
            "start-up: this node does not serve yet",
        );
        self.sync_daemon(false);
        command::spawn(
            "inactive_cmd",
            self.commands.inactive.clone(),
            command::COMMAND_TIMEOUT,
            self.commands.policy.clone(),
        );
        self.publish();
        while let Some(d) = duties.recv().await {
            match d {
                Duty::Role(RoleChange::Activate(cause)) => self.activate(&cause),
                Duty::Role(RoleChange::Deactivate(cause)) => self.deactivate(&cause),
                Duty::Announce => self.announce_again(),
                Duty::Reconfigure(plan, commands) => self.reconfigure(*plan, commands),
                Duty::Stop(ack) => {
                    if self.active {
                        self.deactivate("clean stop");
                    }
                    let _ = ack.send(());
                    return;
                }
            }
            self.publish();
        }
    }

    fn activate(&mut self, cause: &str) {
        if self.active {
            return;
        }
        self.active = true;
        let vips = self.plan.vips.clone();
        self.raise(&vips, cause);
        self.announce(vips);
        self.sync_daemon(true);
        command::spawn(
            "active_cmd",
            self.commands.active.clone(),
            command::COMMAND_TIMEOUT,
            self.commands.policy.clone(),
        );
    }

    fn deactivate(&mut self, cause: &str) {
        if !self.active {
            return;
        }
        self.active = false;
        if let Some(a) = self.announcer.take() {
            a.abort();
        }
        self.lower(&self.plan.vips.clone(), cause);
        self.sync_daemon(false);
        command::spawn(
            "inactive_cmd",
            self.commands.inactive.clone(),
            command::COMMAND_TIMEOUT,
            self.commands.policy.clone(),
        );
    }

    fn reconfigure(&mut self, plan: NodePlan, commands: RoleCommands) {
        let gone: Vec<Vip> = self
            .plan
            .vips
            .iter()
            .filter(|v| !plan.vips.contains(v))
            .cloned()
            .collect();
        let new: Vec<Vip> = plan
            .vips
            .iter()
            .filter(|v| !self.plan.vips.contains(v))
            .cloned()
            .collect();
        let sync_changed = plan.sync != self.plan.sync;
        if sync_changed {
            // Stop the daemons of the old settings before taking the new ones.
            self.stop_sync_daemons();
        }
        self.lower(&gone, "no longer in lvs.cf");
        self.plan = plan;
        self.commands = commands;
        if self.active {
            self.raise(&new, "added to lvs.cf");
            if !new.is_empty() {
                if let Some(a) = self.announcer.take() {
                    a.abort();
                }
                self.announce(self.plan.vips.clone());
            }
        }
        if sync_changed {
            self.sync_daemon(self.active);
        }
    }

    fn rtnl(&self) -> Option<Rtnl> {
        match Rtnl::connect() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!("floating addresses: {e}");
                None
            }
        }
    }

    fn raise(&mut self, vips: &[Vip], cause: &str) {
        let Some(mut rt) = self.rtnl() else { return };
        for v in vips {
            let r = rt.link(&v.device).and_then(|l| {
                let options = AddOptions {
                    label: v.label.as_deref(),
                    scope: v.scope,
                    broadcast: v.broadcast,
                };
                rt.add_with(l.index, v.addr, v.prefix, &options)
                    .map(|added| (added, l))
            });
            // The first announcement at once, before anything else (the rest of the
            // burst follows from `announce`): clients move the moment it arrives.
            if let (Ok((_, l)), true) = (&r, self.plan.garp_count > 0) {
                if let Some(mac) = l.mac {
                    send_announcement(l.index, mac, v.addr, &v.device);
                }
            }
            match r {
                Ok((true, _)) => {
                    tracing::info!(
                        address = %v.addr, device = %v.device, state = "up",
                        "address {} up on {}: {cause}", vip_text(v), v.device
                    );
                    self.shared
                        .locked()
                        .event(format!("address {}", v.addr), "up", cause);
                }
                Ok((false, _)) => {
                    tracing::info!("address {} was already on {}", vip_text(v), v.device)
                }
                Err(e) => {
                    tracing::error!(
                        address = %v.addr, device = %v.device, state = "failed",
                        "address {} on {}: {e}", vip_text(v), v.device
                    );
                    self.shared.locked().event(
                        format!("address {}", v.addr),
                        "failed",
                        e.to_string(),
                    );
                }
            }
        }
    }

    fn lower(&mut self, vips: &[Vip], cause: &str) {
        if vips.is_empty() {
            return;
        }
        let Some(mut rt) = self.rtnl() else { return };
        for v in vips {
            let r = rt
                .link(&v.device)
                .and_then(|l| rt.delete(l.index, v.addr, v.prefix));
            match r {
                Ok(true) => {
                    tracing::info!(
                        address = %v.addr, device = %v.device, state = "down",
                        "address {} down on {}: {cause}", vip_text(v), v.device
                    );
                    self.shared
                        .locked()
                        .event(format!("address {}", v.addr), "down", cause);
                }
                Ok(false) => {}
                Err(e) => tracing::error!("address {} on {}: {e}", vip_text(v), v.device),
            }
        }
    }

    /// Gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6): a burst of
    /// `garp_count` every `garp_interval`, then every `garp_refresh` while active.
    /// Where each address is announced: its device's index and hardware address.
    fn announcement_targets(&mut self, vips: &[Vip]) -> Vec<Target> {
        let mut targets = Vec::new();
        if let Some(mut rt) = self.rtnl() {
            for v in vips {
                match rt.link(&v.device) {
                    Ok(l) => match l.mac {
                        Some(mac) => targets.push((l.index, mac, v.addr, v.device.clone())),
                        None => tracing::debug!(
                            "{} has no hardware address: {} not announced",
                            v.device,
                            v.addr
                        ),
                    },
                    Err(e) => tracing::error!("announcing {}: {e}", v.addr),
                }
            }
        }
        targets
    }

    /// A lower priority was heard while active (VRRP): the addresses are announced
    /// again, `garp_lower_count` times each, at once.
    fn announce_again(&mut self) {
        if !self.active || self.plan.garp_lower_count == 0 {
            return;
        }
        let targets = self.announcement_targets(&self.plan.vips.clone());
        for _ in 0..self.plan.garp_lower_count {
            for (index, mac, ip, dev) in &targets {
                send_announcement(*index, *mac, *ip, dev);
            }
        }
    }

    fn announce(&mut self, vips: Vec<Vip>) {
        let count = self.plan.garp_count;
        let interval = Duration::from_millis(self.plan.garp_interval_ms.max(1));
        let refresh = self.plan.garp_refresh_ms;
        let targets = self.announcement_targets(&vips);
        if targets.is_empty() || (count == 0 && refresh == 0) {
            return;
        }
        self.announcer = Some(tokio::spawn(async move {
            let send = |targets: &[Target]| {
                for (index, mac, ip, dev) in targets {
                    send_announcement(*index, *mac, *ip, dev);
                }
            };
            // The first of the burst went out when the addresses were raised.
            for _ in 1..count {
                tokio::time::sleep(interval).await;
                send(&targets);
            }
            if refresh > 0 {
                let mut t = tokio::time::interval(Duration::from_millis(refresh));
                t.tick().await;
                loop {
                    t.tick().await;
                    send(&targets);
                }
            }
        }));
    }

    fn stop_sync_daemons(&self) {
        if self.plan.sync.is_none() {
            return;
        }
        if let Ok(mut c) = Client::connect() {
            for st in [SyncState::Master, SyncState::Backup] {
                let _ = c.stop_daemon(st);
            }
        }
    }

    /// Master on the active node, backup on the other, so established connections
    /// survive a failover.
    fn sync_daemon(&self, master: bool) {
        let Some((iface, id)) = &self.plan.sync else {
            return;
        };
        let (stop, start) = if master {
            (SyncState::Backup, SyncState::Master)
        } else {
            (SyncState::Master, SyncState::Backup)
        };
        let r = Client::connect().and_then(|mut c| {
            // Not running is fine: stopping is only to be sure.
            let _ = c.stop_daemon(stop);
            let _ = c.stop_daemon(start);
            c.start_daemon(&SyncDaemon {
                state: start,
                ifname: iface.clone(),
                sync_id: u32::from(*id),
            })
        });
        match r {
            Ok(()) => tracing::info!(
                "connection sync daemon: {} on {iface}, id {id}",
                if master { "master" } else { "backup" }
            ),
            Err(e) => tracing::error!("connection sync daemon on {iface}: {e}"),
        }
    }

    fn publish(&self) {
        let up = self.active;
        let list = self
            .plan
            .vips
            .iter()
            .map(|v| AddressStatus {
                address: vip_text(v),
                device: v.device.clone(),
                label: v.label.clone(),
                owners: v.owners.clone(),
                up,
            })
            .collect();
        self.shared.locked().addresses = list;
    }
}
