//! The high-availability state machine of one director: events in, actions out, time
//! passed in as milliseconds. No I/O and no clock, so every scenario (both nodes
//! starting at once, partitions, clean stops, preemption, link loss) runs in tests as
//! a simulation.
//!
//! The rules, in order:
//! 1. A node with a local fault (link down under `monitor_links`, IPVS programming
//!    failed, a stalled task) is `Fault`: never active.
//! 2. A peer is alive while its last heartbeat is younger than `deadtime` and it did not
//!    say it is leaving. Only heartbeats the shell's guard verified count (they echo
//!    this start's nonce, see `heartbeat`); a new start of the peer makes this node
//!    answer at once ([`Event::Handshake`]) so that verifying takes a round trip.
//! 3. Without a live peer a node becomes active, but only once it has listened for
//!    `deadtime` after starting (so a node starting next to an active peer hears it
//!    first).
//! 4. With a live peer, of two nodes that both want to be active the higher rank keeps
//!    it (rank = priority, then the `primary` role, then the name); the lower yields as
//!    soon as it hears the higher. A standby takes over from an active peer only by
//!    preemption: `preempt` on, higher rank, and healthy for `preempt_delay`.
//!
//! **Loss.** A heartbeat goes out every `keepalive`; `deadtime` of silence is a dead
//! peer. On a lossy network a few datagrams lost in a row would be a false failover, so
//! a node whose peer's heartbeat is overdue by an eighth of `keepalive` probes: it sends
//! its heartbeat as a [`Kind::Probe`] every eighth of `keepalive` until it hears the
//! peer again or `deadtime` runs out, and a node that receives a probe answers at once
//! (at most every sixteenth of `keepalive`). Each probe and its answer are another
//! round trip in which the peer can be heard: with `deadtime = 3 × keepalive` and 30 %
//! of datagrams lost at random, a false failover needs the two regular heartbeats and
//! fifteen round trips lost, instead of three heartbeats. Nothing extra is sent while
//! heartbeats arrive on time; under loss, about two probes and two answers per lost
//! heartbeat (a round trip succeeds half the time at 30 % loss). And when a
//! lower-ranked peer claims the addresses while this node holds them (it missed this
//! node's heartbeats anyway), this node answers at once, so that the peer stands down
//! within a round trip, and announces the addresses again ([`Action::Announce`]),
//! since the peer's announcements moved the clients.

use crate::pulse::logic::heartbeat::{Heartbeat, Kind, NodeState};

/// What the node was configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    pub name: String,
    /// This node is the `primary` of lvs.cf (a tie-break after priority).
    pub primary: bool,
    pub priority: u8,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    /// Return the VIPs to the higher-ranked node when it is back (default on).
    pub preempt: bool,
    pub preempt_delay_ms: u64,
    /// This node's lvs.cf serial, sent in heartbeats and compared with the peer's.
    pub serial: u64,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Start,
    /// A heartbeat that passed authentication and the replay check.
    Heartbeat(Heartbeat),
    /// A new start of the peer was heard: send a heartbeat at once (echoing it), so
    /// that the peer can verify this node within a round trip rather than a
    /// `keepalive`.
    Handshake,
    /// Time passed (the shell calls this at least every `keepalive`).
    Tick,
    /// A local fault appeared (`Some(cause)`) or cleared (`None`).
    Fault(Option<String>),
    /// Local checks changed this node's priority.
    Priority(u8),
    /// An administrator asked this node to hand the VIPs over to the peer.
    HandOver,
    /// A clean stop.
    Shutdown,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Bring up the VIPs, announce them, start the sync daemon as master, run
    /// `active_cmd`.
    Activate { cause: String },
    /// Undo all of it, run `inactive_cmd`.
    Deactivate { cause: String },
    /// Send this heartbeat (the shell fills in the counter and authenticates it).
    Send(Kind, NodeState, u8),
    /// The peer runs another lvs.cf serial (reported once per change).
    SerialMismatch { ours: u64, peers: u64 },
    /// Announce the addresses again (gratuitous ARP / unsolicited NA): this node holds
    /// them and a peer claimed them too.
    Announce { cause: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Starting,
    Standby,
    Active,
    Fault,
    Stopped,
}

/// What this node knows of its peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Peer {
    pub name: String,
    pub state: NodeState,
    pub priority: u8,
    pub serial: u64,
    pub last_heard_ms: u64,
    pub leaving: bool,
}

#[derive(Debug, Clone)]
pub struct Ha {
    cfg: HaConfig,
    role: Role,
    priority: u8,
    fault: Option<String>,
    peer: Option<Peer>,
    started_ms: u64,
    /// Since when this node could serve (no fault), for the preemption delay.
    healthy_since_ms: u64,
    /// Set by an administrator's hand-over: this node stands aside (no preemption)
    /// while the peer serves, until the peer fails or leaves.
    yielded: bool,
    next_send_ms: u64,
    /// When the last heartbeat went out, so that a handshake does not send a second
    /// one at the same moment.
    last_sent_ms: Option<u64>,
    /// When the last probe went out (see the module documentation).
    last_probe_ms: Option<u64>,
    reported_serial: Option<u64>,
}

impl Ha {
    pub fn new(cfg: HaConfig) -> Ha {
        Ha {
            priority: cfg.priority,
            cfg,
            role: Role::Starting,
            fault: None,
            peer: None,
            started_ms: 0,
            healthy_since_ms: 0,
            yielded: false,
            next_send_ms: 0,
            last_sent_ms: None,
            last_probe_ms: None,
            reported_serial: None,
        }
    }

    /// New settings on reload (timers, preemption, serial); the role, the peer and a
    /// standing hand-over are kept.
    pub fn reconfigure(&mut self, cfg: HaConfig) {
        if cfg.priority != self.cfg.priority {
            self.priority = cfg.priority;
        }
        self.reported_serial = None;
        self.cfg = cfg;
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }

    pub fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    /// When the shell must call [`Event::Tick`] next at the latest.
    pub fn next_deadline_ms(&self) -> u64 {
        let mut t = self.next_send_ms;
        if let Some(p) = &self.peer {
            t = t.min(p.last_heard_ms + self.cfg.deadtime_ms);
        }
        if self.role == Role::Starting {
            t = t.min(self.started_ms + self.cfg.deadtime_ms);
        }
        if let Some(p) = self.probe_due() {
            t = t.min(p);
        }
        t
    }

    /// When the next probe is due: while the peer's heartbeat is overdue by an eighth
    /// of `keepalive` and it is not yet dead, every eighth of `keepalive`.
    fn probe_due(&self) -> Option<u64> {
        let p = self.peer.as_ref().filter(|p| !p.leaving)?;
        let k = self.cfg.keepalive_ms;
        let first = p.last_heard_ms + k + k / 8;
        let at = match self.last_probe_ms {
            Some(t) if t >= first => t + (k / 8).max(1),
            _ => first,
        };
        (at < p.last_heard_ms + self.cfg.deadtime_ms).then_some(at)
    }

    /// Sends a heartbeat at once, unless one went out less than a sixteenth of
    /// `keepalive` ago.
    fn answer(&mut self, now: u64) {
        let gap = (self.cfg.keepalive_ms / 16).max(1);
        if self.last_sent_ms.is_none_or(|t| now >= t + gap) {
            self.next_send_ms = self.next_send_ms.min(now);
        }
    }

    fn state(&self) -> NodeState {
        match self.role {
            Role::Active => NodeState::Active,
            Role::Fault | Role::Stopped => NodeState::Fault,
            Role::Starting | Role::Standby if self.yielded => NodeState::Yielding,
            Role::Starting | Role::Standby => NodeState::Standby,
        }
    }

    fn rank(&self) -> (u8, bool, &str) {
        (self.priority, self.cfg.primary, self.cfg.name.as_str())
    }

    /// The peer, while it is alive (heard within `deadtime`, not leaving).
    pub fn peer_alive(&self, now: u64) -> Option<&Peer> {
        self.peer
            .as_ref()
            .filter(|p| !p.leaving && now < p.last_heard_ms + self.cfg.deadtime_ms)
    }

    fn outranks(&self, p: &Peer) -> bool {
        // The peer's role flag is not on the wire: equal priorities fall to the name,
        // which both sides compare the same way.
        let peer_primary = !self.cfg.primary;
        self.rank() > (p.priority, peer_primary, p.name.as_str())
    }

    /// Handles one event at time `now` (milliseconds, any monotonic origin).
    pub fn handle(&mut self, now: u64, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        let before = self.state();
        match event {
            Event::Start => {
                self.role = Role::Starting;
                self.started_ms = now;
                self.healthy_since_ms = now;
                self.next_send_ms = now;
            }
            Event::Heartbeat(hb) => {
                if hb.serial != self.cfg.serial && self.reported_serial != Some(hb.serial) {
                    out.push(Action::SerialMismatch {
                        ours: self.cfg.serial,
                        peers: hb.serial,
                    });
                }
                self.reported_serial = Some(hb.serial).filter(|s| *s != self.cfg.serial);
                let claimed_before = self
                    .peer_alive(now)
                    .is_some_and(|p| p.state == NodeState::Active);
                let probe = hb.kind == Kind::Probe;
                let peer = Peer {
                    name: hb.name,
                    state: hb.state,
                    priority: hb.priority,
                    serial: hb.serial,
                    last_heard_ms: now,
                    leaving: hb.kind == Kind::Leaving,
                };
                let claims = self.role == Role::Active
                    && peer.state == NodeState::Active
                    && self.outranks(&peer);
                if claims && !claimed_before {
                    out.push(Action::Announce {
                        cause: format!("lower-ranked peer {} claimed the addresses too", peer.name),
                    });
                }
                self.peer = Some(peer);
                if probe || claims {
                    self.answer(now);
                }
            }
            Event::Tick => {}
            Event::Handshake => {
                if self.last_sent_ms != Some(now) {
                    self.next_send_ms = self.next_send_ms.min(now);
                }
            }
            Event::Fault(f) => {
                if f.is_none() && self.fault.is_some() {
                    self.healthy_since_ms = now;
                }
                self.fault = f;
            }
            Event::Priority(p) => self.priority = p,
            Event::HandOver => self.yielded = true,
            Event::Shutdown => {
                if self.role == Role::Active {
                    out.push(Action::Deactivate {
                        cause: "clean stop".into(),
                    });
                }
                self.role = Role::Stopped;
                out.push(Action::Send(Kind::Leaving, NodeState::Fault, self.priority));
                return out;
            }
        }
        if self.role != Role::Stopped {
            self.decide(now, &mut out);
        }
        if self.role == Role::Stopped {
            return out;
        }
        let probe = self.probe_due().is_some_and(|t| now >= t);
        let periodic = now >= self.next_send_ms || self.state() != before;
        if periodic || probe {
            let kind = if probe { Kind::Probe } else { Kind::Alive };
            out.push(Action::Send(kind, self.state(), self.priority));
            self.last_sent_ms = Some(now);
        }
        if periodic {
            self.next_send_ms = now + self.cfg.keepalive_ms;
        }
        if probe {
            self.last_probe_ms = Some(now);
        }
        out
    }

    fn decide(&mut self, now: u64, out: &mut Vec<Action>) {
        let (want, cause) = self.want_active(now);
        match (self.role, want) {
            (Role::Active, false) => {
                out.push(Action::Deactivate { cause });
                self.role = if self.fault.is_some() {
                    Role::Fault
                } else {
                    Role::Standby
                };
            }
            (Role::Active, true) => {}
            (_, true) => {
                out.push(Action::Activate { cause });
                self.role = Role::Active;
            }
            (_, false) => {
                self.role = if self.fault.is_some() {
                    Role::Fault
                } else if self.role == Role::Starting
                    && now < self.started_ms + self.cfg.deadtime_ms
                    && self.peer.is_none()
                {
                    Role::Starting
                } else {
                    Role::Standby
                };
            }
        }
    }

    /// Whether this node should hold the VIPs now, and why.
    fn want_active(&mut self, now: u64) -> (bool, String) {
        if let Some(f) = &self.fault {
            return (false, format!("local fault: {f}"));
        }
        let active = self.role == Role::Active;
        let Some(p) = self.peer_alive(now).cloned() else {
            // Nobody to stand aside for.
            self.yielded = false;
            if let Some(p) = &self.peer {
                let why = if p.leaving {
                    format!("peer {} stopped cleanly", p.name)
                } else {
                    format!(
                        "no heartbeat from peer {} for {} ms",
                        p.name,
                        now - p.last_heard_ms
                    )
                };
                return (true, why);
            }
            if now >= self.started_ms + self.cfg.deadtime_ms {
                return (true, "no peer heard since start".into());
            }
            return (active, String::new());
        };
        if self.yielded && p.state != NodeState::Fault {
            return (false, "handed over to the peer by an administrator".into());
        }
        match p.state {
            NodeState::Fault => {
                // The peer cannot serve: a hand-over to it no longer holds.
                self.yielded = false;
                (true, format!("peer {} reports a fault", p.name))
            }
            NodeState::Yielding if active => (true, String::new()),
            NodeState::Yielding => (true, format!("peer {} handed over", p.name)),
            NodeState::Active if active => {
                if self.outranks(&p) {
                    (true, String::new())
                } else {
                    (
                        false,
                        format!("peer {} is active and outranks this node", p.name),
                    )
                }
            }
            NodeState::Active => {
                let preempt = self.cfg.preempt
                    && self.outranks(&p)
                    && now >= self.healthy_since_ms + self.cfg.preempt_delay_ms
                    && now >= self.started_ms + self.cfg.deadtime_ms;
                if preempt {
                    (true, format!("preempting lower-ranked peer {}", p.name))
                } else {
                    (false, String::new())
                }
            }
            NodeState::Standby if active => (true, String::new()),
            // Both standing by (start-up, or after a fault): the higher rank goes.
            NodeState::Standby => {
                if self.outranks(&p) {
                    (
                        true,
                        format!("peer {} is standing by and ranks lower", p.name),
                    )
                } else {
                    (false, String::new())
                }
            }
        }
    }
}

/// The role as the status and the logs name it.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Starting => "starting",
        Role::Standby => "standby",
        Role::Active => "active",
        Role::Fault => "fault",
        Role::Stopped => "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pulse::logic::heartbeat::{Counter, PeerGuard};

    fn cfg(name: &str, primary: bool) -> HaConfig {
        HaConfig {
            name: name.into(),
            primary,
            priority: 100,
            keepalive_ms: 100,
            deadtime_ms: 300,
            preempt: true,
            preempt_delay_ms: 1000,
            serial: 7,
        }
    }

    /// The Unix time of the simulation's 0 ms (heartbeat counters are Unix ms based).
    const EPOCH: u64 = 1_790_000_000_000;

    /// Two nodes and the network between them, stepped 10 ms at a time. Heartbeats go
    /// through each receiver's [`PeerGuard`] as in the supervisor, nonces and all.
    struct Sim {
        nodes: [Ha; 2],
        guards: [PeerGuard; 2],
        counters: [Counter; 2],
        up: [bool; 2],
        /// Heartbeats in flight: (deliver at, to, message).
        wire: Vec<(u64, usize, Heartbeat)>,
        connected: bool,
        now: u64,
        /// Starts so far, for distinct nonces.
        starts: u64,
        /// Every heartbeat sent: (at, from, message), as an attacker on the path sees them.
        sent: Vec<(u64, usize, Heartbeat)>,
        /// Heartbeats the state machine of each node took, and those its guard
        /// passed but did not let it act on.
        acted: [u64; 2],
        not_acted: [u64; 2],
        /// Every Activate/Deactivate, with time and node.
        log: Vec<(u64, usize, Action)>,
        both_active_since: Option<u64>,
        /// The longest time both were active while connected.
        longest_both_active: u64,
        /// Heartbeats to these nodes are lost.
        deaf: [bool; 2],
        /// The share of heartbeats lost at random, and the generator that decides.
        loss: f64,
        rng: rand::rngs::StdRng,
    }

    impl Sim {
        fn new(a: HaConfig, b: HaConfig) -> Sim {
            let guard = |c: &HaConfig| PeerGuard::new(1, true, c.deadtime_ms);
            Sim {
                guards: [guard(&a), guard(&b)],
                nodes: [Ha::new(a), Ha::new(b)],
                counters: [Counter::default(), Counter::default()],
                up: [false, false],
                wire: Vec::new(),
                connected: true,
                now: 0,
                starts: 0,
                sent: Vec::new(),
                acted: [0, 0],
                not_acted: [0, 0],
                log: Vec::new(),
                both_active_since: None,
                longest_both_active: 0,
                deaf: [false, false],
                loss: 0.0,
                rng: rand::SeedableRng::seed_from_u64(17),
            }
        }

        fn event(&mut self, i: usize, e: Event) {
            let actions = self.nodes[i].handle(self.now, e);
            for a in actions {
                match a {
                    Action::Send(kind, state, priority) => {
                        let hb = Heartbeat {
                            kind,
                            state,
                            priority,
                            counter: self.counters[i].next(EPOCH + self.now),
                            serial: self.nodes[i].cfg.serial,
                            nonce: self.guards[i].nonce(),
                            echo: self.guards[i].echo(),
                            name: self.nodes[i].cfg.name.clone(),
                        };
                        self.sent.push((self.now, i, hb.clone()));
                        let lost = self.loss > 0.0 && rand::Rng::gen_bool(&mut self.rng, self.loss);
                        if self.connected && !lost && !self.deaf[1 - i] {
                            self.wire.push((self.now + 1, 1 - i, hb));
                        }
                    }
                    other => self.log.push((self.now, i, other)),
                }
            }
        }

        /// A heartbeat arriving at node `to`, through its guard.
        fn deliver(&mut self, to: usize, hb: Heartbeat) {
            let now = self.now;
            let Ok(v) = self.guards[to].check(&hb, now, EPOCH + now) else {
                return;
            };
            if v.act {
                self.acted[to] += 1;
                self.event(to, Event::Heartbeat(hb));
            } else {
                self.not_acted[to] += 1;
            }
            if v.adopted {
                self.event(to, Event::Handshake);
            }
        }

        fn start(&mut self, i: usize) {
            self.up[i] = true;
            self.starts += 1;
            let cfg = self.nodes[i].cfg.clone();
            self.guards[i] = PeerGuard::new(0x5eed_0000 + self.starts, true, cfg.deadtime_ms);
            self.counters[i] = Counter::default();
            self.nodes[i] = Ha::new(cfg);
            self.event(i, Event::Start);
        }

        /// SIGKILL: silent.
        fn kill(&mut self, i: usize) {
            self.up[i] = false;
            self.wire.retain(|(_, to, _)| *to != i);
        }

        fn run(&mut self, ms: u64) {
            let end = self.now + ms;
            while self.now < end {
                self.now += 10;
                let now = self.now;
                let (due, later): (Vec<_>, Vec<_>) =
                    self.wire.drain(..).partition(|(t, _, _)| *t <= now);
                self.wire = later;
                for (_, to, hb) in due {
                    if self.up[to] {
                        self.deliver(to, hb);
                    }
                }
                for i in 0..2 {
                    if self.up[i] && self.nodes[i].next_deadline_ms() <= now {
                        self.event(i, Event::Tick);
                    }
                }
                // While they can hear each other, two active nodes last at most one
                // keepalive (plus delivery and this loop's 10 ms step); on a lossy
                // path, at most deadtime.
                if self.connected && self.active().len() == 2 {
                    let since = *self.both_active_since.get_or_insert(now);
                    self.longest_both_active = self.longest_both_active.max(now - since);
                    let bound = if self.loss > 0.0 {
                        self.nodes[0].cfg.deadtime_ms
                    } else {
                        120
                    };
                    assert!(
                        now - since <= bound,
                        "both active for {} ms at {now}",
                        now - since
                    );
                } else {
                    self.both_active_since = None;
                }
            }
        }

        /// The heartbeats node `from` sent during the next `ms`, as recorded on the path.
        fn record(&mut self, from: usize, ms: u64) -> Vec<Heartbeat> {
            let t0 = self.now;
            self.run(ms);
            self.sent
                .iter()
                .filter(|(t, f, _)| *t > t0 && *f == from)
                .map(|(_, _, hb)| hb.clone())
                .collect()
        }

        /// Sends `recorded` to node `to` again, one every `every` ms.
        fn replay(&mut self, to: usize, recorded: &[Heartbeat], every: u64) {
            for hb in recorded {
                self.wire.push((self.now + 1, to, hb.clone()));
                self.run(every);
            }
        }

        fn active(&self) -> Vec<usize> {
            (0..2)
                .filter(|&i| self.up[i] && self.nodes[i].role() == Role::Active)
                .collect()
        }

        fn last_change(&self, node: usize) -> Option<&(u64, usize, Action)> {
            self.log.iter().rev().find(|(_, n, _)| *n == node)
        }
    }

    /// Activations of each node over `minutes` at `loss`, keepalive 200 ms and deadtime
    /// 600 ms (the loss benchmark's timers), and the heartbeats sent.
    fn under_loss(loss: f64, minutes: u64) -> (Sim, usize) {
        let timers = |name: &str, primary: bool| HaConfig {
            keepalive_ms: 200,
            deadtime_ms: 600,
            ..cfg(name, primary)
        };
        let mut s = Sim::new(timers("a", true), timers("b", false));
        s.start(0);
        s.start(1);
        s.run(2000);
        assert_eq!(s.active(), vec![0]);
        s.loss = loss;
        s.log.clear();
        let sent = s.sent.len();
        s.run(minutes * 60_000);
        let sent = s.sent.len() - sent;
        (s, sent)
    }

    fn activations(s: &Sim, node: usize) -> usize {
        s.log
            .iter()
            .filter(|(_, n, a)| *n == node && matches!(a, Action::Activate { .. }))
            .count()
    }

    #[test]
    fn probes_make_up_for_lost_heartbeats() {
        // 30 % of heartbeats lost for 10 simulated minutes: three regular heartbeats
        // lost in a row, which would be a false failover without probes, happen about
        // 2.7 % of the time, some 80 times in 3,000 keepalives.
        let (s, sent) = under_loss(0.3, 10);
        let false_failovers = activations(&s, 1);
        assert!(
            false_failovers <= 2,
            "{false_failovers} false failovers: {:?}",
            s.log
        );
        assert!(s.longest_both_active <= 600);
        // The cost: probes and answers on top of the 2 × 3,000 regular heartbeats.
        let regular = 2 * 10 * 60 * 5;
        let extra = sent as f64 / regular as f64 - 1.0;
        assert!(
            extra > 0.2 && extra < 1.0,
            "{sent} heartbeats sent for {regular} regular ones"
        );
        // Without loss, not one probe.
        let (quiet, sent) = under_loss(0.0, 1);
        assert_eq!(activations(&quiet, 1), 0);
        let probes = quiet
            .sent
            .iter()
            .filter(|(_, _, h)| h.kind == Kind::Probe)
            .count();
        assert_eq!(probes, 0, "{sent} sent");
    }

    #[test]
    fn a_false_failover_is_undone_within_a_round_trip_and_announced_again() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        assert_eq!(s.active(), vec![0]);
        // B stops hearing A (one way): after deadtime it claims the addresses, and
        // hears A again from that moment.
        s.deaf[1] = true;
        while s.active().len() < 2 {
            s.run(10);
            assert!(s.now < 2000, "B never took over: {:?}", s.log);
        }
        s.deaf[1] = false;
        // A hears B's claim at the next step and answers at once; B stands down when
        // the answer arrives, well before A's next heartbeat (100 ms).
        s.run(30);
        assert_eq!(
            s.active(),
            vec![0],
            "B stood down at A's answer: {:?}",
            s.log
        );
        let announced = s
            .log
            .iter()
            .filter(|(_, n, a)| *n == 0 && matches!(a, Action::Announce { .. }))
            .count();
        assert_eq!(announced, 1, "{:?}", s.log);
    }

    #[test]
    fn both_starting_at_once_ends_with_exactly_one_active_the_primary() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(2000);
        assert_eq!(s.active(), vec![0]);
        // And nobody flapped on the way.
        assert_eq!(
            s.log.iter().filter(|(_, n, _)| *n == 1).count(),
            0,
            "{:?}",
            s.log
        );
    }

    #[test]
    fn a_node_starting_next_to_an_active_peer_stays_standby() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(1);
        s.run(1000);
        assert_eq!(s.active(), vec![1]);
        let mut no_preempt = cfg("a", true);
        no_preempt.preempt = false;
        s.nodes[0] = Ha::new(no_preempt);
        s.start(0);
        s.run(5000);
        assert_eq!(s.active(), vec![1], "preempt = 0 keeps Piranha's behaviour");
    }

    #[test]
    fn sigkill_of_the_active_makes_the_peer_take_over_after_deadtime() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        let t = s.now;
        s.kill(0);
        s.run(1000);
        assert_eq!(s.active(), vec![1]);
        let (at, _, action) = s.last_change(1).unwrap().clone();
        assert!(matches!(action, Action::Activate { ref cause } if cause.contains("no heartbeat")));
        // deadtime 300 after the last heartbeat, which was at most one keepalive earlier.
        assert!(at - t <= 300 + 20, "took over {} ms after the kill", at - t);
        assert!(at - t >= 200, "took over too early: {} ms", at - t);
    }

    #[test]
    fn a_clean_stop_hands_over_at_once() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        let t = s.now;
        s.event(0, Event::Shutdown);
        assert!(matches!(
            s.last_change(0).unwrap().2,
            Action::Deactivate { .. }
        ));
        s.up[0] = false;
        s.run(100);
        assert_eq!(s.active(), vec![1]);
        let (at, _, action) = s.last_change(1).unwrap().clone();
        assert!(at - t <= 20, "took {} ms", at - t);
        assert!(
            matches!(action, Action::Activate { ref cause } if cause.contains("stopped cleanly"))
        );
    }

    #[test]
    fn preempt_returns_the_vips_to_the_primary_after_its_delay() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(1);
        s.run(1000);
        s.start(0);
        let t = s.now;
        s.run(3000);
        assert_eq!(s.active(), vec![0]);
        let (at, _, action) = s.log.iter().find(|(_, n, _)| *n == 0).unwrap().clone();
        assert!(matches!(action, Action::Activate { ref cause } if cause.contains("preempting")));
        assert!(
            at - t >= 1000,
            "preempted after {} ms, before the delay",
            at - t
        );
        // The backup yielded within one keepalive of hearing it.
        let (yielded, _, _) = s.last_change(1).unwrap().clone();
        assert!(
            yielded - at <= 110,
            "backup yielded {} ms later",
            yielded - at
        );
    }

    #[test]
    fn partition_then_heal_converges_to_one_active_within_one_keepalive() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        s.connected = false;
        s.wire.clear();
        s.run(1000);
        assert_eq!(s.active(), vec![0, 1], "a partition makes both active");
        s.connected = true;
        let t = s.now;
        s.run(500);
        assert_eq!(s.active(), vec![0]);
        let (at, _, action) = s.last_change(1).unwrap().clone();
        assert!(matches!(action, Action::Deactivate { .. }));
        assert!(at - t <= 110, "converged after {} ms", at - t);
    }

    #[test]
    fn a_local_fault_hands_over_and_its_end_takes_back_by_preemption() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        s.event(0, Event::Fault(Some("link eth0 down".into())));
        assert_eq!(s.nodes[0].role(), Role::Fault);
        s.run(100);
        assert_eq!(s.active(), vec![1]);
        assert!(
            matches!(s.last_change(1).unwrap().2, Action::Activate { ref cause } if cause.contains("reports a fault"))
        );
        s.event(0, Event::Fault(None));
        s.run(500);
        assert_eq!(s.active(), vec![1], "not before preempt_delay");
        s.run(1000);
        assert_eq!(s.active(), vec![0]);
    }

    #[test]
    fn a_lower_priority_hands_over_and_an_admin_can_hand_over() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        // Local checks lower a's priority: b now outranks it and preempts after its delay.
        s.event(0, Event::Priority(50));
        s.run(2000);
        assert_eq!(s.active(), vec![1]);
        s.event(0, Event::Priority(100));
        s.run(2000);
        assert_eq!(s.active(), vec![0]);
        // Admin hand-over: b takes over at once, and a does not preempt it back.
        let t = s.now;
        s.event(0, Event::HandOver);
        s.run(300);
        assert_eq!(s.active(), vec![1]);
        let (at, _, action) = s.last_change(1).unwrap().clone();
        assert!(at - t <= 20, "took {} ms", at - t);
        assert!(matches!(action, Action::Activate { ref cause } if cause.contains("handed over")));
        s.run(5000);
        assert_eq!(s.active(), vec![1], "a hand-over sticks");
        // Until b dies: then a serves again.
        s.kill(1);
        s.run(500);
        assert_eq!(s.active(), vec![0]);
    }

    #[test]
    fn serial_mismatch_is_reported_once_per_change() {
        let mut b = cfg("b", false);
        b.serial = 8;
        let mut s = Sim::new(cfg("a", true), b);
        s.start(0);
        s.start(1);
        s.run(1000);
        let reports: Vec<_> = s
            .log
            .iter()
            .filter(|(_, n, a)| *n == 0 && matches!(a, Action::SerialMismatch { .. }))
            .collect();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].2, Action::SerialMismatch { ours: 7, peers: 8 });
    }

    #[test]
    fn alone_a_node_activates_after_listening_for_deadtime() {
        let mut s = Sim::new(cfg("a", false), cfg("b", true));
        s.start(0);
        s.run(200);
        assert_eq!(s.active(), Vec::<usize>::new());
        s.run(200);
        assert_eq!(s.active(), vec![0]);
    }

    /// The reported attack: heartbeats of the active A recorded on the path, replayed at
    /// B after A stopped and B restarted, while B is the only live director.
    #[test]
    fn heartbeats_recorded_before_a_restart_are_never_acted_on() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        assert_eq!(s.active(), vec![0]);
        let recorded = s.record(0, 2400);
        assert!(recorded.len() >= 24, "{} recorded", recorded.len());
        s.kill(0);
        s.run(1000);
        assert_eq!(s.active(), vec![1]);
        s.kill(1);
        s.start(1);
        s.run(1000);
        assert_eq!(s.active(), vec![1], "B alone serves after its restart");
        let changes = s.log.len();
        let (acted, not_acted) = (s.acted[1], s.not_acted[1]);
        // In order, as recorded, then all of them again, newest first.
        s.replay(1, &recorded, 100);
        let backwards: Vec<_> = recorded.iter().rev().cloned().collect();
        s.replay(1, &backwards, 10);
        assert_eq!(s.active(), vec![1]);
        assert_eq!(&s.log[changes..], &[], "B changed role on replays");
        assert_eq!(s.acted[1], acted, "B acted on a replay");
        assert_eq!(s.nodes[1].peer(), None, "B believes in a peer");
        assert_eq!(
            s.not_acted[1] - not_acted,
            recorded.len() as u64,
            "each replay reached B's guard once (the rest were refused outright)"
        );
        // A real A coming back is heard at once and takes its place back (preempt).
        s.start(0);
        s.run(2000);
        assert_eq!(s.active(), vec![0]);
    }

    /// Replays of a previous start of the peer recorded while this node ran (they echo
    /// its nonce) are refused once the peer has restarted.
    #[test]
    fn heartbeats_of_a_previous_start_of_the_peer_are_never_acted_on() {
        let mut s = Sim::new(cfg("a", true), cfg("b", false));
        s.start(0);
        s.start(1);
        s.run(1000);
        let recorded = s.record(0, 1000);
        s.kill(0);
        s.start(0);
        s.run(1500);
        assert_eq!(s.active(), vec![0]);
        s.kill(0);
        s.run(1000);
        assert_eq!(s.active(), vec![1]);
        let (changes, acted) = (s.log.len(), s.acted[1]);
        s.replay(1, &recorded, 100);
        assert_eq!(&s.log[changes..], &[], "B changed role on replays");
        assert_eq!(s.acted[1], acted, "B acted on a replay");
        assert_eq!(s.active(), vec![1]);
    }

    /// Start-up: the first heartbeats of a restarted node cannot be verified yet, but
    /// the handshake takes a round trip, so it hears its live peer long before its
    /// deadtime of listening ends, and never takes the addresses from it.
    #[test]
    fn a_restarted_node_verifies_its_live_peer_within_a_round_trip_and_keeps_off() {
        for (restarted, peer) in [(1, 0), (0, 1)] {
            let mut a = cfg("a", true);
            // The active one is the peer; no preemption to wait for.
            a.preempt = false;
            let mut s = Sim::new(a, cfg("b", false));
            s.start(peer);
            s.run(1000);
            s.start(restarted);
            s.run(1000);
            assert_eq!(s.active(), vec![peer]);
            let t0 = s.now;
            s.kill(restarted);
            s.run(100);
            s.start(restarted);
            let started = s.now;
            let mut heard = None;
            let mut peer_heard = None;
            while s.now < started + 2000 {
                s.run(10);
                if heard.is_none() && s.nodes[restarted].peer_alive(s.now).is_some() {
                    heard = Some(s.now - started);
                }
                let back = s.nodes[peer].peer().is_some_and(|p| {
                    p.last_heard_ms > started && s.nodes[peer].peer_alive(s.now).is_some()
                });
                if peer_heard.is_none() && back {
                    peer_heard = Some(s.now - started);
                }
            }
            let heard = heard.expect("the restarted node hears its peer");
            let peer_heard = peer_heard.expect("the peer hears the restarted node");
            // keepalive 100 ms: at most one keepalive and two steps of the simulation.
            assert!(
                heard <= 120,
                "node {restarted} heard its peer after {heard} ms"
            );
            assert!(
                peer_heard <= 120,
                "the peer heard node {restarted} after {peer_heard} ms"
            );
            assert!(
                !s.log.iter().any(|(t, n, a)| *t > t0
                    && *n == restarted
                    && matches!(a, Action::Activate { .. })),
                "node {restarted} took the addresses: {:?}",
                s.log
            );
            assert_eq!(s.active(), vec![peer]);
        }
    }
}
