//! Piranha's lvsd and the nannies' policy in one thread: check results in, health per
//! real server, the IPVS table kept equal to configuration + health. Runs on its own
//! OS thread because netlink calls block and a dump of a large table takes a while;
//! heartbeats never wait for it.
//!
//! A change of health costs one netlink request per changed destination and no dump
//! (`Reconciler::update`); every [`RESYNC`] the kernel is dumped to finish drains, see
//! connection counts and repair changes made behind our back.

use crate::sync::Recover;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::clock::unix_ms;
use crate::config::value::Host;
use crate::config::{Config, RealServer, VirtualServer};
use crate::ipvs::client::{Client, IpvsError};
use crate::ipvs::desired::{
    all_healthy, desired, live_weight, quorum_now, service_of, timeouts_of, ResolveError,
};
use crate::ipvs::kernel::Kernel;
use crate::ipvs::ownership::{Ownership, OwnershipError};
use crate::ipvs::quorum::Quorum;
use crate::ipvs::reconcile::{Reconciler, Settings};
use crate::ipvs::table::{DestKey, ServiceKey, Table};

use crate::pulse::io::probe::Outcome;
use crate::pulse::logic::control::{EventRecord, LocalCheckStatus, ServerStatus, ServiceStatus};
use crate::pulse::logic::load::{self, Report};
use crate::pulse::logic::nanny::{Health, Nanny, Transition};
use crate::pulse::logic::node::{LocalTarget, Target};
use crate::pulse::task::failover;
use crate::pulse::task::shared::Shared;

/// How often the kernel is dumped and compared.
pub const RESYNC: Duration = Duration::from_secs(5);
/// A status older than this is refreshed from the kernel before it is answered.
const STATUS_FRESH: Duration = Duration::from_secs(1);
/// How long the thread lets check results gather after a wake-up.
const COALESCE: Duration = Duration::from_millis(20);
/// How often a slow-start ramp moves the weight.
const RAMP_STEP: Duration = Duration::from_secs(1);

pub type Key = (String, String);

/// What the thread is told.
pub enum Input {
    /// A check result for every target sharing `identity`.
    Checked {
        identity: Arc<str>,
        outcome: Outcome,
    },
    LocalChecked {
        name: String,
        outcome: Outcome,
    },
    /// What a real server's load command reported.
    Load {
        key: Key,
        report: Result<Report, LoadError>,
    },
    Reconfigure(Box<Setup>),
    /// Drain (`true`) or enable a real server; the answer says what happened.
    Drain {
        key: Key,
        drain: bool,
        reply: oneshot::Sender<Result<String, DrainError>>,
    },
    Status(oneshot::Sender<LvsdStatus>),
    /// The supervisor is stopping: virtual servers with `omega` record their servers
    /// still up, and their quorum, as going down (keepalived's omega), then answer.
    Stopping(oneshot::Sender<()>),
    Stop,
}

/// Why a load report has no value; the server keeps its weight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The command failed, in the words of [`LoadProbe::run`].
    ///
    /// [`LoadProbe::run`]: crate::pulse::io::load::LoadProbe::run
    #[error("{0}")]
    Command(String),
    /// The task running the command panicked.
    #[error("the load command crashed: {0}")]
    Crashed(String),
}

/// Why a drain or enable was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("no active real server {server} in active virtual server {virtual_server}")]
    NoSuchServer {
        virtual_server: String,
        server: String,
    },
}

/// Why the IPVS table cannot be programmed at the moment; the status's `ipvs` line
/// says it, and a fault says it when an active virtual server needs IPVS.
#[derive(Debug, thiserror::Error)]
pub enum IpvsUnavailable {
    #[error("not connected yet")]
    NotConnected,
    /// No IPVS in this kernel, no permission, or the socket failed.
    #[error(transparent)]
    Kernel(#[from] IpvsError),
    /// The file of what this director created could not be read: without it, nothing
    /// is touched.
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
}

/// A configuration as the thread needs it, names already resolved.
pub struct Setup {
    pub config: Config,
    pub targets: Vec<Target>,
    pub locals: Vec<LocalTarget>,
    /// Which targets each probe identity serves.
    pub identities: HashMap<Arc<str>, Vec<Key>>,
    pub names: BTreeMap<String, IpAddr>,
}

#[derive(Debug, Clone, Default)]
pub struct LvsdStatus {
    pub ipvs: String,
    pub services: Vec<ServiceStatus>,
    pub locals: Vec<LocalCheckStatus>,
    pub warnings: Vec<String>,
}

struct TargetState {
    target: Target,
    nanny: Nanny,
    drained: bool,
    load_weight: Option<u32>,
    /// What a `dynamic_weight` check program last set (keepalived's misc_dynamic); it
    /// wins over the load report and is forgotten when a check fails.
    check_weight: Option<u32>,
    last: Option<(Outcome, u64)>,
    /// Conclusive checks seen, and how many failed (for the metrics).
    checks: u64,
    failures: u64,
}

struct LocalState {
    nanny: Nanny,
    last: Option<Outcome>,
}

/// Opens the kernel side: the netlink client in production, a [`Twin`] in tests.
///
/// [`Twin`]: crate::ipvs::kernel::Twin
pub type Connector<K> = Box<dyn FnMut() -> Result<K, IpvsError> + Send>;

pub struct Lvsd<K: Kernel = Client> {
    connector: Connector<K>,
    setup: Setup,
    targets: BTreeMap<Key, TargetState>,
    locals: BTreeMap<String, LocalState>,
    ipvs: Result<Reconciler<K>, IpvsUnavailable>,
    state_dir: PathBuf,
    faults: mpsc::UnboundedSender<failover::Input>,
    shared: Arc<Mutex<Shared>>,
    kernel: Option<(Table, Instant)>,
    /// Each active virtual server's service key.
    services: HashMap<String, ServiceKey>,
    dirty: bool,
    next_resync: Instant,
    refused: Vec<String>,
    /// Until when some returning server's weight is still ramping up (Unix ms).
    ramp_until: u64,
    /// When running out of file descriptors was last logged (Unix ms).
    warned_fds: u64,
    /// Unix ms of the last loop turn, for the supervisor's stall watchdog.
    pub alive: Arc<AtomicU64>,
    /// Each local check's health once it has a result: what VRRP instances track.
    local_health: tokio::sync::watch::Sender<LocalHealth>,
    /// Whether each active virtual server has its quorum (kept for the hysteresis).
    quorum: HashMap<String, bool>,
}

/// Each local check's health (true: up), present once the check has answered.
pub type LocalHealth = BTreeMap<String, bool>;

fn resolver(
    names: &BTreeMap<String, IpAddr>,
) -> impl Fn(&Host) -> Result<IpAddr, ResolveError> + '_ {
    move |h: &Host| match h {
        Host::Ip(a) => Ok(*a),
        Host::Name(n) => names
            .get(n)
            .copied()
            .ok_or_else(|| ResolveError::Unresolved(n.clone())),
    }
}

impl Lvsd<Client> {
    /// The lvsd of the running supervisor, programming the kernel through netlink.
    pub fn new(
        setup: Setup,
        state_dir: PathBuf,
        faults: mpsc::UnboundedSender<failover::Input>,
        shared: Arc<Mutex<Shared>>,
    ) -> Lvsd<Client> {
        Lvsd::with_kernel(setup, state_dir, faults, shared, Box::new(Client::connect))
    }
}

impl<K: Kernel> Lvsd<K> {
    /// An lvsd whose kernel side `connector` opens (again after the kernel was lost).
    pub fn with_kernel(
        setup: Setup,
        state_dir: PathBuf,
        faults: mpsc::UnboundedSender<failover::Input>,
        shared: Arc<Mutex<Shared>>,
        connector: Connector<K>,
    ) -> Lvsd<K> {
        let mut l = Lvsd {
            connector,
            setup: Setup {
                // The configuration already, so that the first connect's log says
                // whether an active virtual server needs IPVS (reconfigure below sets
                // the rest).
                config: setup.config.clone(),
                targets: Vec::new(),
                locals: Vec::new(),
                identities: HashMap::new(),
                names: BTreeMap::new(),
            },
            targets: BTreeMap::new(),
            locals: BTreeMap::new(),
            ipvs: Err(IpvsUnavailable::NotConnected),
            state_dir,
            faults,
            shared,
            kernel: None,
            services: HashMap::new(),
            dirty: true,
            next_resync: Instant::now(),
            refused: Vec::new(),
            ramp_until: 0,
            warned_fds: 0,
            alive: Arc::new(AtomicU64::new(unix_ms())),
            local_health: tokio::sync::watch::Sender::new(LocalHealth::new()),
            quorum: HashMap::new(),
        };
        l.connect();
        l.reconfigure(setup);
        l
    }

    /// Follows the local checks' health (VRRP's `track_script`).
    pub fn local_health(&self) -> tokio::sync::watch::Receiver<LocalHealth> {
        self.local_health.subscribe()
    }

    fn connect(&mut self) {
        if self.ipvs.is_ok() {
            return;
        }
        let r = (self.connector)()
            .map_err(IpvsUnavailable::from)
            .and_then(|c| Ok(Reconciler::new(c, Ownership::load(&self.state_dir)?)));
        match r {
            Ok(rec) => {
                tracing::info!("IPVS: connected");
                self.ipvs = Ok(rec);
            }
            Err(e) => {
                // Said once, not at every resync while it lasts.
                let said = self.ipvs.as_ref().err().map(|old| old.to_string());
                if said != Some(e.to_string()) {
                    if self.wants_ipvs() {
                        tracing::error!("IPVS: {e}");
                    } else {
                        tracing::info!("IPVS: {e} (no active virtual server needs it)");
                    }
                }
                self.ipvs = Err(e);
            }
        }
        self.fault_ipvs();
    }

    fn wants_ipvs(&self) -> bool {
        self.setup
            .config
            .virtuals
            .iter()
            .any(|v| v.settings.active())
    }

    fn fault_ipvs(&self) {
        let cause = match &self.ipvs {
            Err(e) if self.wants_ipvs() => Some(format!("IPVS cannot be programmed: {e}")),
            _ => None,
        };
        let _ = self.faults.send(failover::Input::Fault {
            source: "ipvs".into(),
            cause,
        });
    }

    pub fn run(mut self, rx: Receiver<Input>) {
        // Its own thread: every line about health and the IPVS table says where from.
        let _span = tracing::info_span!("lvsd").entered();
        loop {
            self.alive.store(unix_ms(), Ordering::Relaxed);
            let now = Instant::now();
            let mut next = self.next_resync;
            if self.ramping() {
                next = next.min(now + RAMP_STEP);
            }
            match rx.recv_timeout(next.saturating_duration_since(now)) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(i) => {
                    if self.input(i) {
                        return;
                    }
                    // Let results gather for a moment: one wake-up per batch instead of
                    // one per check (thousands per second), at a cost of a few ms.
                    std::thread::sleep(COALESCE);
                    // Take everything already queued before touching the kernel.
                    while let Ok(i) = rx.try_recv() {
                        if matches!(i, Input::Stop) || self.input(i) {
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.ramping() {
                        self.dirty = true;
                    }
                }
            }
            if Instant::now() >= self.next_resync {
                self.next_resync = Instant::now() + RESYNC;
                self.connect();
                self.round(true);
            } else if self.dirty {
                self.round(false);
            }
        }
    }

    /// Cheap: called on every turn of the loop, which sees every check result.
    fn ramping(&self) -> bool {
        unix_ms() < self.ramp_until
    }

    /// Handles one input; true when the thread must stop.
    fn input(&mut self, i: Input) -> bool {
        match i {
            Input::Checked { outcome, .. } if outcome.inconclusive => {
                // Rate-limited: every check fails the same way at such a time.
                let now = unix_ms();
                if now >= self.warned_fds + 10_000 {
                    self.warned_fds = now;
                    tracing::error!(
                        "health checks cannot run: {} (raise LimitNOFILE); servers keep their state",
                        outcome.detail
                    );
                }
            }
            Input::Checked { identity, outcome } => {
                let now = unix_ms();
                let Some(keys) = self.setup.identities.get(&identity) else {
                    return false; // a check of a configuration since replaced
                };
                // Every check result passes here: no allocation unless health changed.
                let mut changed = Vec::new();
                for k in keys {
                    let Some(t) = self.targets.get_mut(k) else {
                        continue;
                    };
                    let tr = t.nanny.observe(now, outcome.ok, &outcome.detail);
                    let set = outcome.weight.filter(|_| outcome.ok);
                    if set != t.check_weight {
                        let from = t
                            .check_weight
                            .map_or("configured".into(), |w| w.to_string());
                        let to = set.map_or("configured".into(), |w| w.to_string());
                        tracing::info!(
                            virtual_server = %k.0, real_server = %k.1,
                            "server {}/{}: weight {from} -> {to} from its check: {}",
                            k.0, k.1, outcome.detail
                        );
                        t.check_weight = set;
                        self.dirty = true;
                    }
                    t.checks += 1;
                    t.failures += u64::from(!outcome.ok);
                    t.last = Some((outcome.clone(), now));
                    if let Some(until) = t.nanny.ramping_until(now) {
                        self.ramp_until = self.ramp_until.max(until);
                    }
                    if let Some(tr) = tr {
                        changed.push((k.clone(), tr));
                    }
                }
                for (k, tr) in changed {
                    self.transition(&k, &tr);
                    self.dirty = true;
                }
            }
            Input::LocalChecked { name, outcome } => {
                let now = unix_ms();
                if let Some(l) = self.locals.get_mut(&name) {
                    let tr = l.nanny.observe(now, outcome.ok, &outcome.detail);
                    l.last = Some(outcome);
                    let up = l.nanny.health() == Health::Up;
                    self.local_health
                        .send_if_modified(|h| h.insert(name.clone(), up) != Some(up));
                    if let Some(tr) = tr {
                        let subject = format!("local check {name}");
                        tracing::info!(
                            local_check = %name, health = health_name(tr.to),
                            "{subject}: {:?}: {}", tr.to, tr.cause
                        );
                        self.shared.locked().event(
                            subject.clone(),
                            health_name(tr.to),
                            tr.cause.clone(),
                        );
                        let _ = self.faults.send(failover::Input::Fault {
                            source: subject,
                            cause: (tr.to == Health::Down).then(|| tr.cause.clone()),
                        });
                    }
                }
            }
            Input::Load { key, report } => self.load(&key, report),
            Input::Reconfigure(setup) => self.reconfigure(*setup),
            Input::Drain { key, drain, reply } => {
                let answer = match self.targets.get_mut(&key) {
                    None => Err(DrainError::NoSuchServer {
                        virtual_server: key.0,
                        server: key.1,
                    }),
                    Some(t) if t.drained == drain => Ok(format!(
                        "{}/{} is already {}",
                        key.0,
                        key.1,
                        if drain { "drained" } else { "enabled" }
                    )),
                    Some(t) => {
                        t.drained = drain;
                        self.dirty = true;
                        let state = if drain { "drained" } else { "enabled" };
                        let cause = "by an administrator";
                        tracing::info!(
                            virtual_server = %key.0, real_server = %key.1, state,
                            "server {}/{}: {state} {cause}", key.0, key.1
                        );
                        self.shared.locked().event(
                            format!("server {}/{}", key.0, key.1),
                            state,
                            cause,
                        );
                        Ok(format!("{}/{} {state}", key.0, key.1))
                    }
                };
                let _ = reply.send(answer);
            }
            Input::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Input::Stopping(reply) => {
                self.omega();
                let _ = reply.send(());
            }
            Input::Stop => return true,
        }
        false
    }

    /// Nanny's weight adjustment from a load report; a failed command keeps the weight.
    fn load(&mut self, key: &Key, report: Result<Report, LoadError>) {
        let Some(vs) = self.setup.config.virtual_server(&key.0) else {
            return;
        };
        let Some(rs) = vs.servers.iter().find(|r| r.name == key.1) else {
            return;
        };
        let configured = rs.settings.weight();
        let Some(t) = self.targets.get_mut(key) else {
            return;
        };
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("server {}/{}: load: {e}", key.0, key.1);
                return;
            }
        };
        let last = t.load_weight.unwrap_or(configured);
        if let Some(w) = load::adjust(configured, last, report) {
            tracing::info!(
                "server {}/{}: weight {last} -> {w} from its load report ({report:?})",
                key.0,
                key.1
            );
            t.load_weight = Some(w);
            self.dirty = true;
        }
    }

    fn transition(&self, k: &Key, tr: &Transition) {
        let subject = format!("server {}/{}", k.0, k.1);
        // The message is what a person reads; the fields are for whoever filters
        // (journalctl VIRTUAL=…, a log shipper).
        match tr.to {
            Health::Down => tracing::warn!(
                virtual_server = %k.0, real_server = %k.1, health = "down",
                "{subject}: down: {}", tr.cause
            ),
            Health::Up => tracing::info!(
                virtual_server = %k.0, real_server = %k.1, health = "up",
                "{subject}: up: {}", tr.cause
            ),
        }
        self.shared
            .locked()
            .event(subject, health_name(tr.to), tr.cause.clone());
    }

    fn reconfigure(&mut self, setup: Setup) {
        let mut old = std::mem::take(&mut self.targets);
        for t in &setup.targets {
            let state = match old.remove(&t.key) {
                Some(mut s) => {
                    s.nanny.set_policy(t.policy);
                    s.target = t.clone();
                    s
                }
                None => TargetState {
                    target: t.clone(),
                    nanny: Nanny::new(t.policy),
                    drained: false,
                    load_weight: None,
                    check_weight: None,
                    last: None,
                    checks: 0,
                    failures: 0,
                },
            };
            self.targets.insert(t.key.clone(), state);
        }
        let mut old_locals = std::mem::take(&mut self.locals);
        for l in &setup.locals {
            let state = match old_locals.remove(&l.name) {
                Some(mut s) => {
                    s.nanny.set_policy(l.policy);
                    s
                }
                None => LocalState {
                    nanny: Nanny::new(l.policy),
                    last: None,
                },
            };
            self.locals.insert(l.name.clone(), state);
        }
        // A removed local check no longer holds this node back.
        self.local_health.send_if_modified(|h| {
            let before = h.len();
            h.retain(|n, _| !old_locals.contains_key(n));
            h.len() != before
        });
        for name in old_locals.keys() {
            let _ = self.faults.send(failover::Input::Fault {
                source: format!("local check {name}"),
                cause: None,
            });
        }
        self.setup = setup;
        let active: BTreeSet<&str> = self
            .setup
            .config
            .virtuals
            .iter()
            .filter(|v| v.settings.active())
            .map(|v| v.name.as_str())
            .collect();
        self.quorum.retain(|name, _| active.contains(name.as_str()));
        let resolve = resolver(&self.setup.names);
        self.services = self
            .setup
            .config
            .virtuals
            .iter()
            .filter(|v| v.settings.active())
            .filter_map(|vs| {
                service_of(&self.setup.config, vs, &resolve, &all_healthy, &quorum_now)
                    .ok()
                    .map(|(k, _)| (vs.name.clone(), k))
            })
            .collect();
        if let Ok(rec) = &mut self.ipvs {
            let t = timeouts_of(&self.setup.config.global);
            match rec.client().ensure_timeouts(t, false) {
                Ok(true) => tracing::info!(
                    "IPVS timeouts set: tcp {} tcpfin {} udp {}",
                    t.tcp,
                    t.tcp_fin,
                    t.udp
                ),
                Ok(false) => {}
                Err(e) => tracing::error!("IPVS timeouts: {e}"),
            }
        }
        self.fault_ipvs();
        self.dirty = true;
    }

    fn weight(&self, vs: &VirtualServer, rs: &RealServer, now: u64) -> Option<u32> {
        match self.targets.get(&(vs.name.clone(), rs.name.clone())) {
            None => Some(rs.settings.weight()),
            Some(t) => {
                let configured = t
                    .check_weight
                    .or(t.load_weight)
                    .unwrap_or(rs.settings.weight());
                let w = t.nanny.weight(now, configured)?;
                Some(if t.drained { 0 } else { w })
            }
        }
    }

    /// keepalived's omega: what stops with the supervisor is said, so that notify_down
    /// and quorum_down (and notify_command, mail) run for it.
    fn omega(&mut self) {
        let cause = "the supervisor stops";
        let mut events = Vec::new();
        for vs in self.setup.config.virtuals.iter() {
            if !vs.settings.active() || vs.settings.omega != Some(true) {
                continue;
            }
            for rs in vs.servers.iter().filter(|r| r.settings.active()) {
                let key = (vs.name.clone(), rs.name.clone());
                if self
                    .targets
                    .get(&key)
                    .is_some_and(|t| t.nanny.health() == Health::Up)
                {
                    events.push(format!("server {}/{}", vs.name, rs.name));
                }
            }
            if self.quorum.get(&vs.name) == Some(&true) {
                events.push(format!("service {}", vs.name));
            }
        }
        for subject in events {
            tracing::info!("{subject}: down: {cause} (omega)");
            self.shared.locked().event(subject, "down", cause);
        }
    }

    /// Whether a virtual server has its quorum: as last judged, or by its weight alone
    /// before the first round.
    fn has_quorum(&self, vs: &VirtualServer, live: u64) -> bool {
        self.quorum
            .get(&vs.name)
            .copied()
            .unwrap_or_else(|| quorum_now(vs, live))
    }

    /// Whether the sorry server takes a virtual server's traffic: it has one, and its
    /// quorum is lost.
    fn sorry_in_place(&self, vs: &VirtualServer) -> bool {
        vs.settings.sorry_server.is_some() && self.quorum.get(&vs.name) == Some(&false)
    }

    /// Each active virtual server's quorum from its live weight now; a change (or a
    /// start without it) is logged and recorded once, with the weights as its cause.
    fn update_quorum(&mut self, now: u64) {
        let mut seen = Vec::new();
        let health = |vs: &VirtualServer, rs: &RealServer| self.weight(vs, rs, now);
        for vs in self
            .setup
            .config
            .virtuals
            .iter()
            .filter(|v| v.settings.active())
        {
            let q = Quorum::of(&vs.settings);
            let live = live_weight(vs, &health);
            let (up, changed) = match self.quorum.get(&vs.name) {
                None => (q.initial(live), !q.initial(live)),
                Some(&was) => {
                    let up = q.next(was, live);
                    (up, up != was)
                }
            };
            seen.push((vs.name.clone(), up, changed.then(|| q.explain(up, live))));
        }
        for (name, up, change) in seen {
            self.quorum.insert(name.clone(), up);
            let Some(cause) = change else { continue };
            let state = if up { "up" } else { "down" };
            if up {
                tracing::info!(virtual_server = %name, quorum = state, "service {name}: up: {cause}");
            } else {
                tracing::warn!(virtual_server = %name, quorum = state, "service {name}: down: {cause}");
            }
            self.shared
                .locked()
                .event(format!("service {name}"), state, cause);
        }
    }

    /// One reconcile round: against the kernel (`dump`) or against the table as known.
    fn round(&mut self, dump: bool) {
        self.dirty = false;
        let now = unix_ms();
        self.update_quorum(now);
        let resolve = resolver(&self.setup.names);
        let health = |vs: &VirtualServer, rs: &RealServer| self.weight(vs, rs, now);
        let quorum = |vs: &VirtualServer, live: u64| self.has_quorum(vs, live);
        let (want, drains) = match desired(&self.setup.config, &resolve, &health, &quorum) {
            Ok(x) => x,
            Err(errors) => {
                for e in &errors {
                    tracing::error!("IPVS: {e}");
                }
                return;
            }
        };
        // Failed servers leave at once (Piranha's ipvsadm -d), and so do the healthy
        // ones a lost quorum hands over to the sorry server (keepalived removes them);
        // only configuration removals and administrators' drains wait for connections
        // to end.
        let sorry: HashSet<&str> = self
            .setup
            .config
            .virtuals
            .iter()
            .filter(|v| self.sorry_in_place(v))
            .map(|v| v.name.as_str())
            .collect();
        let failed: BTreeSet<(ServiceKey, DestKey)> = self
            .targets
            .values()
            .filter(|t| {
                (t.nanny.health() == Health::Down && !t.target.policy.quiesce)
                    || sorry.contains(t.target.key.0.as_str())
            })
            .filter_map(|t| {
                let svc = self.services.get(&t.target.key.0)?;
                Some((
                    *svc,
                    DestKey {
                        addr: t.target.addr,
                        port: t.target.port,
                    },
                ))
            })
            .collect();
        let Ok(rec) = &mut self.ipvs else { return };
        let settings = Settings {
            desired: &want,
            drain_ms: &drains,
            now_ms: now,
            dry_run: false,
            adopt: false,
            failed: &failed,
        };
        let result = if dump {
            rec.resync(&settings)
        } else {
            rec.update(&settings)
        };
        let round = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("IPVS: {e}");
                let _ = self.faults.send(failover::Input::Fault {
                    source: "ipvs".into(),
                    cause: Some(format!("IPVS programming failed: {e}")),
                });
                // Gone for good until the next resync connects again.
                if matches!(e, IpvsError::NotAvailable | IpvsError::PermissionDenied) {
                    self.ipvs = Err(e.into());
                }
                return;
            }
        };
        let mut refused = Vec::new();
        for ((op, cause), r) in round.plan.ops.iter().zip(&round.causes).zip(&round.results) {
            match r {
                Ok(()) => tracing::info!("IPVS: {op}  # {cause}"),
                Err(e) => {
                    tracing::error!("IPVS: {op} refused: {e}");
                    refused.push(format!("{op}: {e}"));
                }
            }
        }
        for k in &round.plan.conflicts {
            let w = format!("service {k} exists and was not created by lvs-director: left alone");
            if !self.refused.contains(&w) {
                tracing::warn!("IPVS: {w}");
            }
            refused.push(w);
        }
        self.refused = refused;
        if !round.plan.ops.is_empty() {
            if let Err(e) = rec.ownership().save(&self.state_dir) {
                tracing::error!("IPVS: {e}");
            }
        }
        if dump {
            self.kernel = Some((round.current, Instant::now()));
        }
        let _ = self.faults.send(failover::Input::Fault {
            source: "ipvs".into(),
            cause: None,
        });
    }

    fn status(&mut self) -> LvsdStatus {
        let fresh = self
            .kernel
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < STATUS_FRESH);
        if !fresh {
            if let Ok(rec) = &mut self.ipvs {
                match rec.client().dump() {
                    Ok(t) => self.kernel = Some((t, Instant::now())),
                    Err(e) => tracing::warn!("IPVS dump for the status: {e}"),
                }
            }
        }
        let now = unix_ms();
        let resolve = resolver(&self.setup.names);
        let health = |vs: &VirtualServer, rs: &RealServer| self.weight(vs, rs, now);
        let kernel = self.kernel.as_ref().map(|(t, _)| t);
        let quorum = |vs: &VirtualServer, live: u64| self.has_quorum(vs, live);
        let mut services = Vec::new();
        for vs in &self.setup.config.virtuals {
            let Ok((key, want)) = service_of(&self.setup.config, vs, &resolve, &health, &quorum)
            else {
                continue;
            };
            let k = kernel.and_then(|t| t.services.get(&key));
            let mut servers = Vec::new();
            for rs in &vs.servers {
                let addr = rs.settings.address.as_ref().and_then(|h| resolve(h).ok());
                let port = rs.settings.port(&vs.settings).number().unwrap_or(0);
                let t = self.targets.get(&(vs.name.clone(), rs.name.clone()));
                let dest = addr.map(|addr| DestKey { addr, port });
                let kd = dest.and_then(|d| k.and_then(|s| s.dests.get(&d)));
                let tracked = vs.settings.active() && rs.settings.active();
                servers.push(ServerStatus {
                    name: rs.name.clone(),
                    address: addr.map_or_else(
                        || {
                            rs.settings
                                .address
                                .as_ref()
                                .map_or(String::new(), |h| h.to_string())
                        },
                        |a| a.to_string(),
                    ),
                    port,
                    health: match (tracked, t) {
                        (false, _) => "inactive".into(),
                        (true, Some(t)) => health_name(t.nanny.health()).into(),
                        (true, None) => "up".into(),
                    },
                    drained: t.is_some_and(|t| t.drained),
                    configured_weight: rs.settings.weight(),
                    weight: if tracked {
                        self.weight(vs, rs, now)
                    } else {
                        None
                    },
                    kernel_weight: kd.map(|d| d.params.weight),
                    active_conns: kd.map_or(0, |d| d.conns.active),
                    inactive_conns: kd.map_or(0, |d| d.conns.inactive),
                    cps: kd.map_or(0, |d| d.stats.cps),
                    last_check: t
                        .and_then(|t| t.last.as_ref())
                        .map_or_else(|| "not checked yet".into(), |(o, _)| o.detail.clone()),
                    last_check_ms: t
                        .and_then(|t| t.last.as_ref())
                        .map_or(0, |(o, _)| o.elapsed.as_millis() as u64),
                    last_check_unix_ms: t.and_then(|t| t.last.as_ref()).map_or(0, |(_, at)| *at),
                    checks: t.map_or(0, |t| t.checks),
                    check_failures: t.map_or(0, |t| t.failures),
                    totals: kd.map(|d| d.stats.into()),
                    transition: t
                        .and_then(|t| t.nanny.last_transition())
                        .map(|tr| EventRecord {
                            at_unix_ms: tr.at_ms,
                            subject: format!("server {}/{}", vs.name, rs.name),
                            state: health_name(tr.to).into(),
                            cause: tr.cause.clone(),
                        }),
                });
            }
            let sorry = self.sorry_in_place(vs);
            services.push(ServiceStatus {
                name: vs.name.clone(),
                service: key.to_string(),
                scheduler: want.params.scheduler.clone(),
                in_kernel: k.is_some(),
                sorry,
                connections: k.map_or(0, |s| {
                    s.dests
                        .values()
                        .map(|d| u64::from(d.conns.active) + u64::from(d.conns.inactive))
                        .sum()
                }),
                cps: k.map_or(0, |s| s.stats.cps),
                inbps: k.map_or(0, |s| s.stats.inbps),
                outbps: k.map_or(0, |s| s.stats.outbps),
                totals: k.map(|s| s.stats.into()),
                servers,
            });
        }
        let locals = self
            .locals
            .iter()
            .map(|(name, l)| LocalCheckStatus {
                name: name.clone(),
                health: health_name(l.nanny.health()).into(),
                last_check: l
                    .last
                    .as_ref()
                    .map_or_else(|| "not checked yet".into(), |o| o.detail.clone()),
            })
            .collect();
        LvsdStatus {
            ipvs: match &self.ipvs {
                Ok(_) => "available".into(),
                Err(e) => e.to_string(),
            },
            services,
            locals,
            warnings: self.refused.clone(),
        }
    }
}

pub fn health_name(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Down => "down",
    }
}

#[cfg(test)]
mod tests;
