//! What the supervisor's tasks publish for the status: the director's role, the peer,
//! heartbeat counters, the floating addresses, recent state changes. One mutex, held
//! only to copy small values in or out.

use std::collections::VecDeque;

use crate::pulse::logic::control::{
    AddressStatus, EventRecord, HeartbeatStatus, NodeStatus, PeerStatus,
};
use crate::pulse::logic::ha::role_name;
use crate::pulse::logic::ha::{Peer, Role};

/// Recent state changes kept for the status and the UI.
pub const EVENTS_KEPT: usize = 200;

#[derive(Debug)]
pub struct Shared {
    pub node: NodeStatus,
    pub role: Role,
    pub role_since_unix_ms: u64,
    pub fault: Option<String>,
    /// The peer as last heard, and when (Unix ms).
    pub peer: Option<(Peer, u64)>,
    pub heartbeat: HeartbeatStatus,
    pub addresses: Vec<AddressStatus>,
    pub events: VecDeque<EventRecord>,
    /// Every recorded change is offered to the notifier here (`notify_command`, mail).
    pub notify: Option<crate::pulse::task::notify::Queue>,
}

impl Shared {
    pub fn new(node: NodeStatus) -> Shared {
        Shared {
            node,
            role: Role::Starting,
            role_since_unix_ms: crate::clock::unix_ms(),
            fault: None,
            peer: None,
            heartbeat: HeartbeatStatus::default(),
            addresses: Vec::new(),
            events: VecDeque::new(),
            notify: None,
        }
    }

    /// Counts a dropped heartbeat datagram under `why`.
    pub fn reject(&mut self, why: &str) {
        match self.heartbeat.rejected.iter_mut().find(|(w, _)| w == why) {
            Some((_, n)) => *n += 1,
            None => self.heartbeat.rejected.push((why.to_string(), 1)),
        }
    }

    /// Records a state change (the caller logs it) and hands it to the notifier, which
    /// never blocks this.
    pub fn event(&mut self, subject: impl Into<String>, state: &str, cause: impl Into<String>) {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        let e = EventRecord {
            at_unix_ms: crate::clock::unix_ms(),
            subject: subject.into(),
            state: state.to_string(),
            cause: cause.into(),
        };
        if let Some(q) = &self.notify {
            q.offer(&e);
        }
        self.events.push_back(e);
    }

    /// The director part of the status.
    pub fn node_status(&self, now_unix_ms: u64) -> (NodeStatus, Option<PeerStatus>) {
        let mut node = self.node.clone();
        node.role = role_name(self.role).to_string();
        node.role_since_unix_ms = self.role_since_unix_ms;
        node.fault = self.fault.clone();
        let peer = self.peer.as_ref().map(|(p, heard)| {
            let ago = now_unix_ms.saturating_sub(*heard);
            PeerStatus {
                name: p.name.clone(),
                state: format!("{:?}", p.state).to_lowercase(),
                priority: p.priority,
                serial: p.serial,
                last_heard_ms_ago: ago,
                leaving: p.leaving,
                alive: !p.leaving && ago < self.heartbeat.deadtime_ms,
            }
        });
        (node, peer)
    }
}
