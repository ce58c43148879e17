//! The heartbeat shell around [`Ha`]: UDP sockets to the peer, authentication and the
//! replay guard, timers, and the aggregation of local faults. Role changes go out to
//! the activation task in order.

use crate::sync::Recover;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::pulse::logic::ha::{role_name, Action, Event, Ha, Role};
use crate::pulse::logic::heartbeat::{new_nonce, Counter, Heartbeat, Kind, PeerGuard, Rejected};
use crate::pulse::logic::node::NodePlan;
use crate::pulse::logic::throttle::{more, Throttle};
use crate::pulse::task::activation::{Duty, RoleChange};
use crate::pulse::task::shared::Shared;

/// What the rest of the supervisor tells the failover task.
#[derive(Debug)]
pub enum Input {
    /// A local fault from `source` appeared (`Some`) or cleared (`None`).
    Fault {
        source: String,
        cause: Option<String>,
    },
    HandOver(oneshot::Sender<Result<HandedOver, HandOverRefused>>),
    Reconfigure(Box<NodePlan>, Option<Arc<[u8]>>),
    /// A clean stop: tell the peer, give up the addresses, then acknowledge.
    Shutdown(oneshot::Sender<()>),
}

/// A hand-over begun: the addresses go to this peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handing the addresses over to {to}")]
pub struct HandedOver {
    pub to: String,
}

/// Why a hand-over cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandOverRefused {
    #[error("no live peer to hand over to")]
    NoPeer,
    #[error("this node is {0} and holds no addresses")]
    NotActive(&'static str),
}

/// Why a datagram was dropped, as counted in the status.
fn reason(r: Rejected) -> &'static str {
    match r {
        Rejected::Malformed => "malformed",
        Rejected::Version => "unknown version",
        Rejected::OldVersion => "old version (upgrade the peer)",
        Rejected::BadMac => "forged or wrong key",
        Rejected::Unauthenticated => "unauthenticated",
        Rejected::NoKeyHere => "keyed but no key here",
        Rejected::Replayed => "replayed",
        Rejected::Duplicate => "duplicate",
    }
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Piranha bug #391131: a restarted pulse could not bind its port.
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

async fn recv(s: &Option<UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

pub struct Failover {
    ha: Ha,
    plan: NodePlan,
    key: Option<Arc<[u8]>>,
    sock4: Option<UdpSocket>,
    sock6: Option<UdpSocket>,
    counter: Counter,
    guard: PeerGuard,
    /// Log lines about the peer's datagrams (drops by reason, new starts): a peer of
    /// another version or an attacker can cause many a second.
    drop_warnings: BTreeMap<&'static str, Throttle>,
    faults: BTreeMap<String, String>,
    /// When (ms on `clock`) an authentic heartbeat last came from each of the peer's
    /// addresses: sends to an address heard within `deadtime` confirm its neighbour
    /// entry (see [`Failover::send`]).
    heard: BTreeMap<IpAddr, u64>,
    clock: Instant,
    shared: Arc<Mutex<Shared>>,
    out: mpsc::UnboundedSender<Duty>,
}

impl Failover {
    /// Binds the heartbeat port (for each address family the peer uses).
    pub fn new(
        plan: NodePlan,
        key: Option<Arc<[u8]>>,
        shared: Arc<Mutex<Shared>>,
        out: mpsc::UnboundedSender<Duty>,
    ) -> io::Result<Failover> {
        let guard = PeerGuard::new(new_nonce(), key.is_some(), plan.ha.deadtime_ms);
        let mut f = Failover {
            ha: Ha::new(plan.ha.clone()),
            plan,
            key,
            sock4: None,
            sock6: None,
            counter: Counter::default(),
            guard,
            drop_warnings: BTreeMap::new(),
            faults: BTreeMap::new(),
            heard: BTreeMap::new(),
            clock: Instant::now(),
            shared,
            out,
        };
        f.bind_sockets()?;
        Ok(f)
    }

    fn bind_sockets(&mut self) -> io::Result<()> {
        let port = self.plan.heartbeat_port;
        let with_port = |e: io::Error, what: &str| {
            io::Error::new(
                e.kind(),
                format!("cannot bind the heartbeat port {what}:{port}: {e}"),
            )
        };
        self.sock4 = None;
        self.sock6 = None;
        if self.plan.peers.iter().any(SocketAddr::is_ipv4) {
            let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            self.sock4 = Some(bind(a).map_err(|e| with_port(e, "0.0.0.0"))?);
        }
        if self.plan.peers.iter().any(SocketAddr::is_ipv6) {
            let a = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            self.sock6 = Some(bind(a).map_err(|e| with_port(e, "[::]"))?);
        }
        Ok(())
    }

    fn now(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// Runs until shut down, inside a `heartbeat{director, peer}` span so that every
    /// line about the peer's heartbeats names both ends.
    pub async fn run(self, inputs: mpsc::UnboundedReceiver<Input>) {
        let peer = self
            .plan
            .peers
            .iter()
            .map(|p| p.ip().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let span = tracing::info_span!("heartbeat", director = %self.plan.name, peer = %peer);
        tracing::Instrument::instrument(self.serve(inputs), span).await
    }

    async fn serve(mut self, mut inputs: mpsc::UnboundedReceiver<Input>) {
        // Faults known before the start (IPVS missing, a device absent) must count in
        // the first decision: a node alone would otherwise raise its addresses and drop
        // them a moment later.
        let mut early = Vec::new();
        while let Ok(i) = inputs.try_recv() {
            match i {
                Input::Fault {
                    source,
                    cause: Some(c),
                } => {
                    self.faults.insert(source, c);
                }
                Input::Fault { cause: None, .. } => {}
                other => early.push(other),
            }
        }
        if let Some(f) = self.fault_text() {
            self.handle(Event::Fault(Some(f)));
        }
        self.handle(Event::Start);
        for i in early {
            if let Input::Shutdown(ack) = i {
                self.handle(Event::Shutdown);
                let _ = ack.send(());
                return;
            }
            self.input(i);
        }
        let mut b4 = [0u8; 1024];
        let mut b6 = [0u8; 1024];
        loop {
            let deadline = self.clock + Duration::from_millis(self.ha.next_deadline_ms());
            tokio::select! {
                r = recv(&self.sock4, &mut b4) => self.datagram(r, &b4),
                r = recv(&self.sock6, &mut b6) => self.datagram(r, &b6),
                _ = tokio::time::sleep_until(deadline.into()) => self.handle(Event::Tick),
                i = inputs.recv() => match i {
                    None => return,
                    Some(Input::Shutdown(ack)) => {
                        self.handle(Event::Shutdown);
                        let _ = ack.send(());
                        return;
                    }
                    Some(i) => self.input(i),
                },
            }
        }
    }

    fn datagram(&mut self, r: io::Result<(usize, SocketAddr)>, buf: &[u8]) {
        let (n, from) = match r {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors of earlier sends surface here (peer down); not a fault.
                tracing::debug!("heartbeat receive: {e}");
                return;
            }
        };
        let reject = |me: &mut Self, why: &str| {
            me.shared.locked().reject(why);
            tracing::debug!("heartbeat from {from} dropped: {why}");
        };
        // Without a key the source address is all there is to go by.
        if self.key.is_none() && !self.plan.peers.iter().any(|p| p.ip() == from.ip()) {
            return reject(self, "unknown source");
        }
        let hb = match Heartbeat::decode(&buf[..n], self.key.as_deref()) {
            Ok(hb) => hb,
            Err(e) => {
                self.warn_dropped(from, e);
                return reject(self, reason(e));
            }
        };
        if hb.name == self.plan.name {
            return reject(self, "own name (a loop, or a peer with our address)");
        }
        let verdict = match self.guard.check(&hb, self.now(), crate::clock::unix_ms()) {
            Ok(v) => v,
            Err(Rejected::Duplicate) => return,
            Err(e) => {
                self.warn_dropped(from, e);
                return reject(self, reason(e));
            }
        };
        let now = self.now();
        self.heard.insert(from.ip(), now);
        if verdict.adopted {
            let t = self
                .drop_warnings
                .entry("new start")
                .or_insert_with(|| Throttle::new(Duration::from_secs(10)));
            if let Some(n) = t.ready(Instant::now()) {
                let how = if verdict.act {
                    "verified: it echoes this node's start"
                } else {
                    "not verified yet: it does not echo this node's start (the peer has not heard it yet, or a replay)"
                };
                tracing::info!(
                    "heartbeat: {} ({from}) in a new start (nonce {:016x}), {how}; answering at once{}",
                    hb.name,
                    hb.nonce,
                    more(n)
                );
            }
        }
        if verdict.act {
            self.shared.locked().heartbeat.accepted += 1;
            self.handle(Event::Heartbeat(hb));
        } else {
            // Not acted on: the peer has not heard this start of ours yet (normal for a
            // round trip after either starts), or a replay of an earlier one.
            self.shared.locked().heartbeat.unverified += 1;
            tracing::debug!(
                "heartbeat from {from} not acted on: it does not echo this node's current start"
            );
        }
        if verdict.adopted {
            self.handle(Event::Handshake);
        }
    }

    /// Logs a dropped datagram: the first of each reason at once, then at most one a
    /// minute (a peer of another version sends two every `keepalive`).
    fn warn_dropped(&mut self, from: SocketAddr, e: Rejected) {
        let t = self
            .drop_warnings
            .entry(reason(e))
            .or_insert_with(|| Throttle::new(Duration::from_secs(60)));
        if let Some(n) = t.ready(Instant::now()) {
            tracing::warn!("heartbeat from {from} dropped: {e}{}", more(n));
        }
    }

    fn input(&mut self, i: Input) {
        match i {
            Input::Fault { source, cause } => {
                let before = self.fault_text();
                match cause {
                    Some(c) => {
                        self.faults.insert(source, c);
                    }
                    None => {
                        self.faults.remove(&source);
                    }
                }
                let after = self.fault_text();
                if before != after {
                    self.handle(Event::Fault(after));
                }
            }
            Input::HandOver(reply) => {
                let now = self.now();
                let alive = self.ha.peer_alive(now);
                let answer = match (self.ha.role(), alive) {
                    (_, None) => Err(HandOverRefused::NoPeer),
                    (Role::Active, Some(p)) => {
                        let to = p.name.clone();
                        self.handle(Event::HandOver);
                        Ok(HandedOver { to })
                    }
                    (role, Some(_)) => Err(HandOverRefused::NotActive(role_name(role))),
                };
                let _ = reply.send(answer);
            }
            Input::Reconfigure(plan, key) => {
                let rebind = plan.peers != self.plan.peers
                    || plan.heartbeat_port != self.plan.heartbeat_port;
                let key_changed = key.as_deref() != self.key.as_deref();
                self.guard
                    .reconfigure(key.is_some(), key_changed, plan.ha.deadtime_ms);
                self.key = key;
                self.ha.reconfigure(plan.ha.clone());
                self.plan = *plan;
                if rebind {
                    if let Err(e) = self.bind_sockets() {
                        tracing::error!("{e}");
                        self.input(Input::Fault {
                            source: "heartbeat".into(),
                            cause: Some(e.to_string()),
                        });
                    }
                }
                self.handle(Event::Tick);
            }
            Input::Shutdown(_) => unreachable!("handled by run"),
        }
    }

    fn fault_text(&self) -> Option<String> {
        (!self.faults.is_empty()).then(|| {
            self.faults
                .iter()
                .map(|(s, c)| format!("{s}: {c}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn handle(&mut self, event: Event) {
        let now = self.now();
        let role_before = self.ha.role();
        let actions = self.ha.handle(now, event);
        let mut cause = None;
        for a in actions {
            match a {
                Action::Send(kind, state, priority) => {
                    let hb = Heartbeat {
                        kind,
                        state,
                        priority,
                        counter: self.counter.next(crate::clock::unix_ms()),
                        serial: self.plan.ha.serial,
                        nonce: self.guard.nonce(),
                        echo: self.guard.echo(),
                        name: self.plan.name.clone(),
                    };
                    self.send(&hb);
                    if kind == Kind::Probe {
                        self.shared.locked().heartbeat.probes += 1;
                    }
                }
                Action::Activate { cause: c } => {
                    cause = Some(c.clone());
                    let _ = self.out.send(Duty::Role(RoleChange::Activate(c)));
                }
                Action::Deactivate { cause: c } => {
                    cause = Some(c.clone());
                    let _ = self.out.send(Duty::Role(RoleChange::Deactivate(c)));
                }
                Action::Announce { cause: c } => {
                    tracing::info!(
                        "director {}: announcing the addresses again: {c}",
                        self.plan.name
                    );
                    let _ = self.out.send(Duty::Announce);
                }
                Action::SerialMismatch { ours, peers } => {
                    tracing::warn!(
                        "the peer runs lvs.cf serial {peers}, this node {ours}: the two directors have different configurations"
                    );
                    let mut s = self.shared.locked();
                    s.heartbeat.serial_mismatch = Some((ours, peers));
                    s.event(
                        "director",
                        "serial mismatch",
                        format!("ours {ours}, the peer's {peers}"),
                    );
                }
            }
        }
        let role = self.ha.role();
        let mut s = self.shared.locked();
        if role != role_before {
            let cause = cause
                .filter(|c| !c.is_empty())
                .or_else(|| self.last_cause(role))
                .unwrap_or_else(|| "state machine".into());
            tracing::info!(
                director = %self.plan.name,
                from = role_name(role_before),
                role = role_name(role),
                "director {}: {} -> {}: {cause}",
                self.plan.name,
                role_name(role_before),
                role_name(role)
            );
            s.event("director", role_name(role), cause);
            if role == Role::Active {
                s.heartbeat.failovers += 1;
            }
            s.role = role;
            s.role_since_unix_ms = crate::clock::unix_ms();
        }
        s.fault = self.ha.fault().map(str::to_string);
        let unix = crate::clock::unix_ms();
        s.peer = self.ha.peer().map(|p| {
            let ago = now.saturating_sub(p.last_heard_ms);
            (p.clone(), unix.saturating_sub(ago))
        });
        if self
            .ha
            .peer()
            .is_some_and(|p| p.serial == self.plan.ha.serial)
        {
            s.heartbeat.serial_mismatch = None;
        }
    }

    fn last_cause(&self, role: Role) -> Option<String> {
        match role {
            Role::Fault => self.ha.fault().map(|f| format!("local fault: {f}")),
            Role::Standby => Some(match self.ha.peer() {
                Some(p) => format!("peer {} serves", p.name),
                None => "no fault".into(),
            }),
            Role::Stopped => Some("clean stop".into()),
            Role::Active => Some("took the addresses".into()),
            Role::Starting => None,
        }
    }

    /// Sends to every address of the peer. To an address whose heartbeats arrive, with
    /// `MSG_CONFIRM`: the exchange proves the neighbour reachable, so the kernel does
    /// not probe it again. Heartbeats are UDP, which confirms nothing by itself: every
    /// `base_reachable_time` the entry went stale and was probed, and under loss the
    /// probes could all fail and hold the heartbeats back for seconds (the peer took
    /// over, then both held the addresses until the next ARP exchange got through).
    fn send(&mut self, hb: &Heartbeat) {
        let bytes = hb.encode(self.key.as_deref());
        let now = self.now();
        for p in &self.plan.peers {
            let s = if p.is_ipv4() {
                &self.sock4
            } else {
                &self.sock6
            };
            let confirm = self
                .heard
                .get(&p.ip())
                .is_some_and(|t| now < t + self.plan.ha.deadtime_ms);
            let flags = if confirm { libc::MSG_CONFIRM } else { 0 };
            if let Some(s) = s {
                let to = socket2::SockAddr::from(*p);
                let sent = s.try_io(tokio::io::Interest::WRITABLE, || {
                    socket2::SockRef::from(s).send_to_with_flags(&bytes, &to, flags)
                });
                match sent {
                    Ok(_) => self.shared.locked().heartbeat.sent += 1,
                    // A full buffer or an unreachable path: the next one will do.
                    Err(e) => tracing::debug!("heartbeat to {p}: {e}"),
                }
            }
        }
    }
}
