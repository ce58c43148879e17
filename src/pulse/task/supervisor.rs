//! `lvs-director pulse`: wires the tasks together. The failover task (heartbeats and
//! the HA state machine), the activation task (addresses, announcements, sync daemon,
//! role commands), the lvsd thread (health and IPVS), the check tasks and the control
//! socket. Reloads go through one place, [`Supervisor::reload`], from SIGHUP or the
//! control socket alike.

use crate::sync::Recover;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::runtime::Handle as RuntimeHandle;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use crate::clock::unix_ms;

use crate::pulse::io::addr::Rtnl;
use crate::pulse::io::scripts;
use crate::pulse::logic::control::{self, NodeStatus, Reply, Request, Status};
use crate::pulse::logic::node::{NodePlan, Place};
use crate::pulse::task::activation::{Activation, Duty};
use crate::pulse::task::checks::{CheckRuntime, CheckSet};
use crate::pulse::task::failover::{self, Failover};
use crate::pulse::task::lvsd::{self, Lvsd};
use crate::pulse::task::notify::{self, Notifier};
use crate::pulse::task::shared::Shared;
use crate::pulse::task::startup::{self, prepare, Prepared, Problem};
use crate::pulse::task::vrrp;

/// How long a stopping supervisor waits for its last notifications.
const NOTIFY_FLUSH: Duration = Duration::from_secs(5);

/// The lvsd thread is declared stalled when it has not turned for this long.
const STALL_MS: u64 = 30_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub control_socket: PathBuf,
    pub state_dir: PathBuf,
    /// `pulse` refuses to start without CAP_NET_ADMIN and CAP_NET_RAW; the all-in-one
    /// mode starts anyway and reports what is unavailable.
    pub require_capabilities: bool,
    /// Where the commands of lvs.cf must be ([`scripts`](crate::pulse::io::scripts)).
    pub scripts_dir: PathBuf,
    /// Whether an lvs.cf only root could have written may run any command (Piranha's
    /// standalone pulse); false when the admin UI writes lvs.cf from this process.
    pub trust_root_config: bool,
}

fn lines(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{0}")]
    Capability(String),
    #[error("{path}: the configuration cannot be used:\n  {}", lines(.errors).join("\n  "))]
    Config { path: String, errors: Vec<Problem> },
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Vrrp(#[from] vrrp::StartError),
}

/// Checks the process's effective capabilities; the missing ones by name.
fn missing_capabilities() -> Vec<&'static str> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return vec![];
    };
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let mut out = Vec::new();
    if eff & (1 << 12) == 0 {
        out.push("CAP_NET_ADMIN (addresses, IPVS)");
    }
    if eff & (1 << 13) == 0 {
        out.push("CAP_NET_RAW (gratuitous ARP, neighbour advertisements, ping checks)");
    }
    out
}

struct Running {
    checks: CheckSet,
    plan: NodePlan,
    /// The VRRP engines, when the configuration has active vrrp blocks.
    vrrp: Option<vrrp::Running>,
    /// What the engines were started from: a reload restarts them only when it changed.
    vrrp_source: VrrpSource,
}

/// The parts of a configuration the VRRP engines depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VrrpSource {
    blocks: Vec<crate::config::VrrpInstance>,
    version: Option<crate::config::value::VrrpVersion>,
    local_checks: Vec<crate::config::LocalCheck>,
}

impl VrrpSource {
    fn of(c: &crate::config::Config) -> VrrpSource {
        VrrpSource {
            blocks: c.vrrp.clone(),
            version: c.global.vrrp_version,
            local_checks: c.local_checks.clone(),
        }
    }
}

struct Supervisor {
    opts: Options,
    shared: Arc<Mutex<Shared>>,
    lvsd_tx: std::sync::mpsc::Sender<lvsd::Input>,
    fail_tx: mpsc::UnboundedSender<failover::Input>,
    duty_tx: mpsc::UnboundedSender<Duty>,
    /// The checks' own runtime.
    checks: RuntimeHandle,
    running: tokio::sync::Mutex<Running>,
    notifier: Notifier,
    /// The local checks' health, for the VRRP engines started at each reload.
    local_health: tokio::sync::watch::Receiver<lvsd::LocalHealth>,
}

/// The checks of `p`, keeping those of `set` (the previous configuration's, or an
/// empty set) that are unchanged.
fn start_checks(
    p: &Prepared,
    set: CheckSet,
    tx: &std::sync::mpsc::Sender<lvsd::Input>,
) -> CheckSet {
    let mut set = CheckSet::after(set);
    for (id, probe, interval) in &p.probes {
        let identity = id.clone();
        set.start(id, probe.clone(), *interval, tx.clone(), move |outcome| {
            lvsd::Input::Checked {
                identity: identity.clone(),
                outcome,
            }
        });
    }
    for (key, probe, interval) in &p.load_probes {
        set.start_load(key.clone(), probe.clone(), *interval, tx.clone());
    }
    for (name, probe, interval) in &p.local_probes {
        let n = name.clone();
        set.start(
            &format!("local {name}"),
            probe.clone(),
            *interval,
            tx.clone(),
            move |outcome| lvsd::Input::LocalChecked {
                name: n.clone(),
                outcome,
            },
        );
    }
    set.retire_previous();
    set
}

/// Logs a configuration's warnings (at every start and reload) and publishes what the
/// status reports of it.
fn publish(p: &Prepared, shared: &Mutex<Shared>) {
    let standing = warnings_of(p);
    for w in p.warnings.iter().chain(&standing) {
        tracing::warn!("{w}");
    }
    let mut s = shared.locked();
    s.node.serial = p.plan.ha.serial;
    s.node.warnings = standing;
    s.heartbeat.authenticated = p.key.is_some();
    s.heartbeat.keepalive_ms = p.plan.ha.keepalive_ms;
    s.heartbeat.deadtime_ms = p.plan.ha.deadtime_ms;
    s.heartbeat.port = p.plan.heartbeat_port;
}

fn warnings_of(p: &Prepared) -> Vec<String> {
    let mut w = Vec::new();
    if p.plan.place != Place::Standalone && p.key.is_none() {
        w.push(
            "heartbeats are NOT authenticated (no heartbeat_key_file): anyone who can send UDP to this director can take the addresses away; set a shared key on both directors".to_string(),
        );
    }
    let has_peers = p.plan.place != Place::Standalone
        || p.config
            .vrrp
            .iter()
            .any(|i| i.settings.active() && i.settings.unicast_peer.is_some());
    if has_peers && p.key.is_none() {
        w.push(crate::cluster::peers::NO_KEY.to_string());
    }
    // Only reachable in the all-in-one mode (`pulse` refuses to start without them):
    // said where the administrator looks, not only in the log.
    let missing = missing_capabilities();
    if !missing.is_empty() {
        w.push(format!(
            "running without {}: this director cannot raise addresses, announce them or program IPVS; run it as root or grant the capabilities",
            missing.join(" and ")
        ));
    }
    w
}

impl Supervisor {
    /// [`Self::reload_config`], shown to systemd (Type=notify) as a reload.
    async fn reload(&self) -> Reply {
        use sd_notify::NotifyState;
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            let _ = sd_notify::notify(&[NotifyState::Reloading, now]);
        }
        let reply = self.reload_config().await;
        let _ = sd_notify::notify(&[NotifyState::Ready]);
        reply
    }

    /// Whether the candidate in `file` could replace the configuration in force: the
    /// reload's checks, the same node, and every device it needs present.
    async fn check(&self, file: PathBuf) -> Reply {
        let opts = self.opts.clone();
        let prepared =
            match tokio::task::spawn_blocking(move || prepare_candidate(&opts, &file)).await {
                Ok(Ok(p)) => p,
                Ok(Err(why)) => return Reply::refused(why),
                Err(e) => return Reply::refused(format!("check failed: {e}")),
            };
        let running = self.running.lock().await;
        if prepared.plan.place != running.plan.place {
            return Reply::refused(format!(
                "this node would change from {:?} to {:?}",
                running.plan.place, prepared.plan.place
            ));
        }
        drop(running);
        let mut devices: Vec<String> = prepared
            .plan
            .vips
            .iter()
            .map(|v| v.device.clone())
            .chain(
                prepared
                    .config
                    .vrrp
                    .iter()
                    .filter(|i| i.settings.active())
                    .filter_map(|i| i.settings.interface.as_ref().map(|w| w.0.clone())),
            )
            .collect();
        devices.sort();
        devices.dedup();
        let missing = tokio::task::spawn_blocking(move || {
            let links = Rtnl::connect().and_then(|mut rt| rt.links());
            match links {
                Ok(links) => devices
                    .into_iter()
                    .filter(|d| !links.iter().any(|l| l.name == *d))
                    .map(|d| format!("device {d} does not exist"))
                    .collect(),
                Err(e) => vec![format!("cannot read the links: {e}")],
            }
        })
        .await
        .unwrap_or_else(|e| vec![e.to_string()]);
        if !missing.is_empty() {
            return Reply::refused(missing.join(", "));
        }
        Reply::done(format!(
            "this director can run serial {}",
            prepared.plan.ha.serial
        ))
    }

    async fn reload_config(&self) -> Reply {
        let opts = self.opts.clone();
        let prepared = match tokio::task::spawn_blocking(move || {
            prepare(&opts.config, &opts.scripts_dir, opts.trust_root_config)
        })
        .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(errors)) => {
                for e in &errors {
                    tracing::error!("reload rejected: {e}");
                }
                return Reply::refused(format!(
                    "rejected, the running configuration is unchanged: {}",
                    lines(&errors).join("; ")
                ));
            }
            Err(e) => return Reply::refused(format!("reload failed: {e}")),
        };
        let mut running = self.running.lock().await;
        if prepared.plan.place != running.plan.place {
            return Reply::refused(format!(
                "rejected: this node would change from {:?} to {:?}; restart the supervisor for that",
                running.plan.place, prepared.plan.place
            ));
        }
        let serial = prepared.plan.ha.serial;
        publish(&prepared, &self.shared);
        self.notifier.reconfigure(prepared.notify.clone());
        self.shared
            .locked()
            .event("director", "reloaded", format!("lvs.cf serial {serial}"));
        let summary = crate::config::summary(&prepared.config);
        let _ = self.fail_tx.send(failover::Input::Reconfigure(
            Box::new(prepared.plan.clone()),
            prepared.key.clone(),
        ));
        let _ = self.duty_tx.send(Duty::Reconfigure(
            Box::new(prepared.plan.clone()),
            prepared.commands.clone(),
        ));
        let source = VrrpSource::of(&prepared.config);
        if source != running.vrrp_source {
            // Stopping hands the addresses over (priority 0) for the moment the new
            // engines take to start: only when the VRRP part of lvs.cf changed.
            if let Some(v) = running.vrrp.take() {
                v.stop().await;
            }
            if prepared.config.uses_vrrp() {
                match vrrp::start(
                    &prepared.config,
                    vrrp::Context {
                        shared: self.shared.clone(),
                        policy: prepared.commands.policy.clone(),
                        local_health: self.local_health.clone(),
                    },
                ) {
                    Ok(r) => running.vrrp = Some(r),
                    Err(e) => {
                        tracing::error!("reload: {e}");
                        running.vrrp_source = source;
                        return Reply::refused(format!(
                            "applied, but the VRRP instances could not start: {e}"
                        ));
                    }
                }
            }
            running.vrrp_source = source;
        }
        let previous = std::mem::replace(&mut running.checks, CheckSet::new(self.checks.clone()));
        let checks = start_checks(&prepared, previous, &self.lvsd_tx);
        let (n, kept) = (checks.len(), checks.kept());
        // The old checks that are not kept stop before the thread learns the new
        // setup; results of old identities still queued are ignored there.
        running.checks = checks;
        running.plan = prepared.plan.clone();
        let _ = self
            .lvsd_tx
            .send(lvsd::Input::Reconfigure(Box::new(prepared.setup)));
        tracing::info!(
            "reloaded {}: serial {serial}, {summary}, {n} check(s) ({kept} kept running)",
            self.opts.config.display()
        );
        Reply::done(format!(
            "applied serial {serial}: {summary}; {} warning(s)",
            prepared.warnings.len()
        ))
    }

    async fn status(&self) -> Status {
        let vrrp_status: Vec<control::VrrpStatus> = match &self.running.lock().await.vrrp {
            Some(v) => v.board.locked().values().cloned().collect(),
            None => Vec::new(),
        };
        let (tx, rx) = oneshot::channel();
        let _ = self.lvsd_tx.send(lvsd::Input::Status(tx));
        let l = rx.await.unwrap_or_default();
        let now = unix_ms();
        let s = self.shared.locked();
        let (mut node, peer) = s.node_status(now);
        node.ipvs = l.ipvs;
        node.warnings.extend(l.warnings);
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node,
            peer,
            heartbeat: s.heartbeat.clone(),
            addresses: s.addresses.clone(),
            services: l.services,
            local_checks: l.locals,
            events: s.events.iter().cloned().collect(),
            vrrp: vrrp_status,
        }
    }

    async fn handle(&self, req: Request) -> Reply {
        match req {
            Request::Status => Reply::status(self.status().await),
            Request::Reload => self.reload().await,
            Request::Check { file } => self.check(file).await,
            Request::Drain {
                virtual_server,
                server,
            } => self.drain(virtual_server, server, true).await,
            Request::Enable {
                virtual_server,
                server,
            } => self.drain(virtual_server, server, false).await,
            Request::HandOver => {
                let (tx, rx) = oneshot::channel();
                let _ = self.fail_tx.send(failover::Input::HandOver(tx));
                match rx.await {
                    Ok(Ok(m)) => Reply::done(m.to_string()),
                    Ok(Err(e)) => Reply::refused(e.to_string()),
                    Err(_) => Reply::refused("the failover task is not running"),
                }
            }
        }
    }

    async fn drain(&self, v: String, s: String, drain: bool) -> Reply {
        let (tx, rx) = oneshot::channel();
        let _ = self.lvsd_tx.send(lvsd::Input::Drain {
            key: (v, s),
            drain,
            reply: tx,
        });
        match rx.await {
            Ok(Ok(m)) => Reply::done(m),
            Ok(Err(e)) => Reply::refused(e.to_string()),
            Err(_) => Reply::refused("the health/IPVS thread is not running"),
        }
    }
}

/// Reads and plans a candidate `lvs.cf` for [`Request::Check`]: only a regular file of
/// the expected name beside the configuration, opened without following a link (the
/// socket's clients are not root, and a check must not read root's files for them).
fn prepare_candidate(opts: &Options, file: &Path) -> Result<Prepared, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let name = file.display().to_string();
    let beside = file.parent() == opts.config.parent()
        && file
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(control::CHECK_PREFIX));
    if !beside {
        return Err(format!(
            "{name}: a candidate must be a {}… file beside {}",
            control::CHECK_PREFIX,
            opts.config.display()
        ));
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .map_err(|e| format!("{name}: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("{name}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{name}: not a regular file"));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    let policy = scripts::Policy::Scripts(opts.scripts_dir.clone());
    let (config, warnings) =
        startup::parse(&name, &bytes).map_err(|e: Vec<Problem>| lines(&e).join("; "))?;
    let facts = startup::gather(&config, &policy);
    startup::plan(&name, config, warnings, Arc::new(policy), facts)
        .map_err(|e: Vec<Problem>| lines(&e).join("; "))
}

/// What is wrong with the links the addresses need: a device that does not exist, or
/// (under `monitor_links`) one without carrier. `None` when all is well.
fn link_fault(rt: &mut Rtnl, plan: &NodePlan) -> Option<String> {
    let links = match rt.links() {
        Ok(l) => l,
        Err(e) => return Some(format!("cannot read the links: {e}")),
    };
    let mut problems = Vec::new();
    let mut devices: Vec<&str> = plan.vips.iter().map(|v| v.device.as_str()).collect();
    devices.dedup();
    for d in devices {
        match links.iter().find(|l| l.name == d) {
            None => problems.push(format!("device {d} does not exist")),
            Some(l) if !l.up && plan.watched_links.iter().any(|w| w == d) => {
                problems.push(format!("link {d} is down"))
            }
            Some(_) => {}
        }
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// Watches the links every `keepalive` (at most every second) and reports a fault
/// while one the addresses need is missing or down.
async fn watch_links(sup: Arc<Supervisor>) {
    let mut rt = match Rtnl::connect() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("link monitor: {e}");
            return;
        }
    };
    let mut last: Option<String> = None;
    loop {
        let (fault, every) = {
            let running = sup.running.lock().await;
            (
                link_fault(&mut rt, &running.plan),
                Duration::from_millis(running.plan.ha.keepalive_ms.clamp(50, 1000)),
            )
        };
        if fault != last {
            match &fault {
                Some(f) => tracing::warn!("links: {f}"),
                None => tracing::info!("links: all up"),
            }
            let _ = sup.fail_tx.send(failover::Input::Fault {
                source: "links".into(),
                cause: fault.clone(),
            });
            last = fault;
        }
        tokio::time::sleep(every).await;
    }
}

fn bind_control(path: &Path) -> Result<UnixListener, SupervisorError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what: &str, e: std::io::Error| {
        SupervisorError::Io(format!("control socket {}: {what}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create its directory", e))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SupervisorError::Io(format!(
                "control socket {}: another supervisor is running (it answers there)",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| io("cannot remove the stale socket", e))?;
    }
    let l = UnixListener::bind(path).map_err(|e| io("cannot listen", e))?;
    // The web service's group may connect; nobody else.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io("cannot set its mode", e))?;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes());
    if let (Some(gid), Ok(c)) = (group_id("lvs-director"), c_path) {
        // SAFETY: a valid NUL-terminated path; -1 leaves the owner unchanged.
        if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
            tracing::warn!(
                "control socket {}: cannot give it to group lvs-director: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(l)
}

fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam reads a NUL-terminated name; the result is copied at once.
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    (!g.is_null()).then(|| unsafe { (*g).gr_gid })
}

/// What one control-socket client may hold.
#[derive(Debug, Clone, Copy)]
pub struct ControlLimits {
    /// A connection that sends no complete request for this long is closed, and so is
    /// one that does not take its reply for this long. The time a request takes to be
    /// answered (a reload) does not count.
    pub idle: Duration,
    /// Connections served at once; a further one is closed as soon as it is accepted.
    pub max_connections: usize,
}

impl Default for ControlLimits {
    fn default() -> ControlLimits {
        // The web UI and the CLI send their request at once and close after the reply;
        // a few dozen at once is already many browsers refreshing.
        ControlLimits {
            idle: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Serves the control socket: each connection on a task of its own, answered by
/// `handler`. Runs until dropped.
pub async fn serve_control<H, F>(listener: UnixListener, limits: ControlLimits, handler: H)
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Reply> + Send + 'static,
{
    use crate::pulse::logic::throttle::{more, Throttle};
    let handler = Arc::new(handler);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut refused = Throttle::new(Duration::from_secs(10));
    let mut failed = Throttle::new(Duration::from_secs(10));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        serve_connection(stream, limits.idle, &*handler).await;
                        drop(slot);
                    });
                }
                Err(_) => {
                    drop(stream);
                    if let Some(n) = refused.ready(std::time::Instant::now()) {
                        tracing::warn!(
                            "control socket: {} connections are open already; a new one was closed{}",
                            limits.max_connections,
                            more(n)
                        );
                    }
                }
            },
            Err(e) => {
                if let Some(n) = failed.ready(std::time::Instant::now()) {
                    tracing::warn!("control socket: {e}{}", more(n));
                }
                // Out of descriptors, most likely: accepting again at once would spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection<H, F>(stream: UnixStream, idle: Duration, handler: &H)
where
    H: Fn(Request) -> F,
    F: std::future::Future<Output = Reply>,
{
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r.take(control::MAX_REQUEST as u64)).lines();
    loop {
        let line = match tokio::time::timeout(idle, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => return,
            Err(_) => {
                tracing::debug!(
                    "control socket: a connection sent no request for {} s: closed",
                    idle.as_secs_f64()
                );
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match control::parse_request(&line) {
            Ok(req) => handler(req).await,
            Err(refusal) => refusal,
        };
        let mut out = match serde_json::to_vec(&reply) {
            Ok(out) => out,
            Err(e) => {
                tracing::error!("control socket: cannot encode a reply: {e}");
                return;
            }
        };
        out.push(b'\n');
        if !matches!(
            tokio::time::timeout(idle, w.write_all(&out)).await,
            Ok(Ok(()))
        ) {
            return;
        }
    }
}

/// A running supervisor, as [`start`] returns it: ask it for its status, have it
/// reload its configuration, and stop it. `lvs-director pulse` drives one from its
/// signals ([`run`]); the all-in-one `up` and the tests drive it directly.
pub struct Handle {
    sup: Arc<Supervisor>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    done: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Handle {
    /// What the control socket's `status` answers.
    pub async fn status(&self) -> Status {
        self.sup.status().await
    }

    /// Reads the configuration again (as SIGHUP and `ctl reload` do).
    pub async fn reload(&self) -> Reply {
        self.sup.reload().await
    }

    /// Stops it as SIGTERM does: the peer is told, the addresses are given up, the
    /// last notifications are sent; returns when all of that is done (at once when it
    /// was already stopped).
    pub async fn stop(&self) {
        if let Some(stop) = self.stop.locked().take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.lock().await.take() {
            let _ = done.await;
        }
    }
}

/// Starts the supervisor of `opts`: returns once its configuration is in force, its
/// control socket answers and its heartbeats run, or says why it cannot start. It
/// installs no signal handler; see [`run`].
pub async fn start(opts: Options) -> Result<Handle, SupervisorError> {
    let missing = missing_capabilities();
    if !missing.is_empty() {
        let text = format!("missing capabilities: {}", missing.join(", "));
        if opts.require_capabilities {
            return Err(SupervisorError::Capability(format!(
                "{text}; run as root or grant them (the packaged unit does)"
            )));
        }
        // Said once, with the configuration's other standing warnings (publish).
    }
    // Every check holds a socket or a pipe while it runs: with thousands of real
    // servers the usual soft limit of 1024 descriptors is too low.
    crate::descriptors::raise();
    let config_path = opts.config.display().to_string();
    let prepared = {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || {
            prepare(&opts.config, &opts.scripts_dir, opts.trust_root_config)
        })
        .await
        .map_err(|e| SupervisorError::Io(e.to_string()))?
        .map_err(|errors| SupervisorError::Config {
            path: config_path.clone(),
            errors,
        })?
    };
    let shared = Arc::new(Mutex::new(Shared::new(NodeStatus {
        name: prepared.plan.name.clone(),
        place: format!("{:?}", prepared.plan.place).to_lowercase(),
        config_file: config_path.clone(),
        started_unix_ms: unix_ms(),
        ..Default::default()
    })));
    let notifier = Notifier::start(prepared.notify.clone(), notify::Timing::default());
    shared.locked().notify = Some(notifier.queue());
    publish(&prepared, &shared);
    let listener = bind_control(&opts.control_socket)?;

    let (fail_tx, fail_rx) = mpsc::unbounded_channel();
    let (duty_tx, duty_rx) = mpsc::unbounded_channel();
    let (lvsd_tx, lvsd_rx) = std::sync::mpsc::channel();

    // Heartbeats and the duties of the active role get a thread and a runtime of their
    // own, as in keepalived's VRRP process: nothing else the supervisor does can delay
    // a heartbeat, and a takeover goes from decision to gratuitous ARP without waking
    // another thread.
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let activation = Activation::new(
        prepared.plan.clone(),
        prepared.commands.clone(),
        shared.clone(),
    );
    let failover_start = {
        let (plan, key, shared, duty_tx) = (
            prepared.plan.clone(),
            prepared.key.clone(),
            shared.clone(),
            duty_tx.clone(),
        );
        move |inputs: mpsc::UnboundedReceiver<failover::Input>| {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(bound_tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                // The sockets belong to the runtime they are made in: made here.
                match Failover::new(plan, key, shared, duty_tx) {
                    Ok(f) => {
                        let _ = bound_tx.send(Ok(()));
                        let duties = tokio::spawn(activation.run(duty_rx));
                        f.run(inputs).await;
                        // Until the last duty (giving the addresses up) is done.
                        let _ = duties.await;
                    }
                    Err(e) => drop(bound_tx.send(Err(e.to_string()))),
                }
            });
        }
    };

    let check_runtime = CheckRuntime::start()
        .map_err(|e| SupervisorError::Io(format!("cannot start the health-check thread: {e}")))?;
    let checks = start_checks(&prepared, CheckSet::new(check_runtime.handle()), &lvsd_tx);
    let lvsd = Lvsd::new(
        prepared.setup,
        opts.state_dir.clone(),
        fail_tx.clone(),
        shared.clone(),
    );
    let alive: Arc<AtomicU64> = lvsd.alive.clone();
    let local_health = lvsd.local_health();
    let lvsd_thread = std::thread::Builder::new()
        .name("lvsd".into())
        .spawn(move || lvsd.run(lvsd_rx))
        .map_err(|e| SupervisorError::Io(format!("cannot start the lvsd thread: {e}")))?;
    // The links as they are at the start, so that the first decision knows of them.
    if let Ok(mut rt) = Rtnl::connect() {
        let _ = fail_tx.send(failover::Input::Fault {
            source: "links".into(),
            cause: link_fault(&mut rt, &prepared.plan),
        });
    }
    let failover = std::thread::Builder::new()
        .name("failover".into())
        .spawn(move || failover_start(fail_rx))
        .map_err(|e| SupervisorError::Io(format!("cannot start the failover thread: {e}")))?;
    let started = match bound_rx.recv() {
        Ok(r) => r,
        Err(_) => Err("the failover thread did not start".into()),
    };
    if let Err(e) = started {
        // Fatal: the process ends; the socket must not outlive it.
        let _ = std::fs::remove_file(&opts.control_socket);
        return Err(SupervisorError::Io(e));
    }

    let vrrp_source = VrrpSource::of(&prepared.config);
    let vrrp = if prepared.config.uses_vrrp() {
        match vrrp::start(
            &prepared.config,
            vrrp::Context {
                shared: shared.clone(),
                policy: prepared.commands.policy.clone(),
                local_health: local_health.clone(),
            },
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = std::fs::remove_file(&opts.control_socket);
                return Err(e.into());
            }
        }
    } else {
        None
    };
    tracing::info!(
        "pulse started: {} ({:?}), {} check(s), control socket {}",
        prepared.plan.name,
        prepared.plan.place,
        checks.len(),
        opts.control_socket.display()
    );
    let sup = Arc::new(Supervisor {
        opts: opts.clone(),
        shared: shared.clone(),
        lvsd_tx: lvsd_tx.clone(),
        fail_tx: fail_tx.clone(),
        duty_tx: duty_tx.clone(),
        checks: check_runtime.handle(),
        running: tokio::sync::Mutex::new(Running {
            checks,
            plan: prepared.plan,
            vrrp,
            vrrp_source,
        }),
        notifier,
        local_health,
    });

    let links = tokio::spawn(watch_links(sup.clone()));
    let control = {
        let sup = sup.clone();
        tokio::spawn(serve_control(
            listener,
            ControlLimits::default(),
            move |req| {
                let sup = sup.clone();
                async move { sup.handle(req).await }
            },
        ))
    };
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let done = {
        let sup = sup.clone();
        tokio::spawn(async move {
            let mut watchdog = tokio::time::interval(Duration::from_secs(1));
            let mut stalled = false;
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = watchdog.tick() => {
                        let age = unix_ms().saturating_sub(alive.load(Ordering::Relaxed));
                        let now_stalled = age > STALL_MS;
                        if now_stalled != stalled {
                            stalled = now_stalled;
                            let _ = fail_tx.send(failover::Input::Fault {
                                source: "lvsd".into(),
                                cause: stalled.then(|| format!("the health/IPVS thread has not run for {} s", age / 1000)),
                            });
                        }
                    }
                }
            }
            shut_down(Parts {
                sup,
                links,
                control,
                fail_tx,
                duty_tx,
                failover,
                check_runtime,
                lvsd_tx,
                lvsd_thread,
                control_socket: opts.control_socket.clone(),
            })
            .await;
        })
    };
    Ok(Handle {
        sup,
        stop: Mutex::new(Some(stop_tx)),
        done: tokio::sync::Mutex::new(Some(done)),
    })
}

/// What a stop takes down, in order.
struct Parts {
    sup: Arc<Supervisor>,
    links: tokio::task::JoinHandle<()>,
    control: tokio::task::JoinHandle<()>,
    fail_tx: mpsc::UnboundedSender<failover::Input>,
    duty_tx: mpsc::UnboundedSender<Duty>,
    failover: std::thread::JoinHandle<()>,
    check_runtime: CheckRuntime,
    lvsd_tx: std::sync::mpsc::Sender<lvsd::Input>,
    lvsd_thread: std::thread::JoinHandle<()>,
    control_socket: PathBuf,
}

async fn shut_down(p: Parts) {
    tracing::info!("stopping: telling the peer and giving up the addresses");
    p.links.abort();
    p.control.abort();
    // VRRP masters send priority 0 and release their addresses first.
    if let Some(v) = p.sup.running.lock().await.vrrp.take() {
        v.stop().await;
    }
    let (ack, done) = oneshot::channel();
    let _ = p.fail_tx.send(failover::Input::Shutdown(ack));
    let _ = done.await;
    let (ack, done) = oneshot::channel();
    let _ = p.duty_tx.send(Duty::Stop(ack));
    let _ = done.await;
    let failover = p.failover;
    let _ = tokio::task::spawn_blocking(move || failover.join()).await;
    // Virtual servers with omega say their servers and quorum go down with us.
    let (ack, done) = oneshot::channel();
    if p.lvsd_tx.send(lvsd::Input::Stopping(ack)).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
    }
    // The last changes (this director stopped, its addresses down) still go out.
    if !p.sup.notifier.flush(NOTIFY_FLUSH).await {
        tracing::warn!(
            "notifications: not all were sent within {} s of stopping",
            NOTIFY_FLUSH.as_secs()
        );
    }
    let check_runtime = p.check_runtime;
    let _ = tokio::task::spawn_blocking(move || drop(check_runtime)).await;
    let _ = p.lvsd_tx.send(lvsd::Input::Stop);
    let lvsd_thread = p.lvsd_thread;
    let _ = tokio::task::spawn_blocking(move || lvsd_thread.join()).await;
    let _ = std::fs::remove_file(&p.control_socket);
    tracing::info!("stopped");
}

/// `lvs-director pulse`: [`start`], then SIGHUP reloads and SIGTERM or SIGINT stops;
/// systemd (Type=notify) is told when it is ready and when it stops.
pub async fn run(opts: Options) -> Result<(), SupervisorError> {
    let sig =
        |k: SignalKind| signal(k).map_err(|e| SupervisorError::Io(format!("signal handler: {e}")));
    // Installed before the start: a SIGTERM during it is then a clean stop too.
    let mut hup = sig(SignalKind::hangup())?;
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let handle = Arc::new(start(opts).await?);
    // Started, and SIGTERM is a clean stop from here on. Without NOTIFY_SOCKET (not
    // under systemd) a no-op.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let r = handle.reload().await;
                    match (r.ok, r.message, r.error) {
                        (true, Some(m), _) => tracing::info!("SIGHUP: {m}"),
                        (_, _, Some(e)) => tracing::error!("SIGHUP: {e}"),
                        _ => {}
                    }
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    handle.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The supervisor as a value: started in this runtime, asked for its status and to
    /// reload through its handle (and through its control socket), then stopped, with
    /// no signal involved.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_supervisor_is_started_asked_and_stopped_through_its_handle() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("lvs.cf");
        std::fs::write(&config, "serial_no = 1\nbackup_active = 0\n").unwrap();
        let opts = Options {
            config: config.clone(),
            control_socket: dir.path().join("pulse.sock"),
            state_dir: dir.path().join("state"),
            require_capabilities: false,
            scripts_dir: dir.path().join("scripts"),
            trust_root_config: false,
        };
        let handle = start(opts.clone()).await.unwrap();
        assert_eq!(
            handle.status().await.node.config_file,
            config.display().to_string()
        );
        let asked = control::request(
            &opts.control_socket,
            &Request::Status,
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(asked.ok, "{asked:?}");
        std::fs::write(&config, "serial_no = 2\nbackup_active = 0\n").unwrap();
        let r = handle.reload().await;
        assert!(r.ok, "{r:?}");
        handle.stop().await;
        assert!(
            !opts.control_socket.exists(),
            "the socket is removed at the stop"
        );
        // A second stop is a no-op.
        handle.stop().await;

        // A configuration that cannot be used is said at the start, by value.
        std::fs::write(&config, "serial_no = 1\nvirtual a {\n").unwrap();
        match start(opts).await {
            Err(SupervisorError::Config { errors, .. }) => assert!(!errors.is_empty()),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("started with a broken lvs.cf"),
        }
    }

    /// A control socket served on a runtime of its own, as in the supervisor; `reload`
    /// is answered after `slow` (longer than the idle timeout), `status` at once.
    fn control_server(
        dir: &Path,
        limits: ControlLimits,
        slow: Duration,
    ) -> (PathBuf, tokio::runtime::Runtime) {
        let path = dir.join("pulse.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = {
            let _in = rt.enter();
            UnixListener::bind(&path).unwrap()
        };
        rt.spawn(serve_control(listener, limits, move |req| async move {
            match req {
                Request::Reload => {
                    tokio::time::sleep(slow).await;
                    Reply::done("slow answer")
                }
                _ => Reply::done("pong"),
            }
        }));
        (path, rt)
    }

    /// Waits for the server to close `s`: how long that took, or `None` if it stayed
    /// open for `limit`.
    fn closed_within(s: &mut std::os::unix::net::UnixStream, limit: Duration) -> Option<Duration> {
        use std::io::Read;
        let t0 = std::time::Instant::now();
        s.set_read_timeout(Some(limit)).unwrap();
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => Some(t0.elapsed()),
            Ok(n) => panic!("unexpected {n} bytes from the control socket"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(t0.elapsed()),
            Err(_) => None,
        }
    }

    #[test]
    fn malformed_oversize_and_binary_requests_are_refused_and_others_still_served() {
        use std::io::{BufRead, Read, Write};
        use std::os::unix::net::UnixStream as Client;
        let dir = tempfile::tempdir().unwrap();
        let limits = ControlLimits {
            idle: Duration::from_secs(2),
            max_connections: 4,
        };
        let (path, _rt) = control_server(dir.path(), limits, Duration::from_millis(10));
        let reply_to = |c: &mut Client, bytes: &[u8]| -> Option<Reply> {
            c.write_all(bytes).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut line = String::new();
            let n = std::io::BufReader::new(c.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap_or(0);
            (n > 0).then(|| serde_json::from_str(&line).unwrap())
        };

        // Malformed JSON, an unknown command, a missing field: each refused with the
        // reason, and the same connection is served next.
        let mut c = Client::connect(&path).unwrap();
        for bad in [
            &b"{\"cmd\":\n"[..],
            b"{\"cmd\":\"explode\"}\n",
            b"{\"cmd\":\"drain\",\"virtual\":\"web\"}\n",
            b"[1,2,3]\n",
        ] {
            let r = reply_to(&mut c, bad).expect("a refusal");
            assert!(
                !r.ok
                    && r.error
                        .as_deref()
                        .is_some_and(|e| e.contains("not a request")),
                "{r:?}"
            );
        }
        let r = reply_to(&mut c, b"{\"cmd\":\"status\"}\n").expect("an answer");
        assert_eq!(r.message.as_deref(), Some("pong"));

        // Bytes that are not UTF-8: the connection is closed, nothing else happens.
        let mut c = Client::connect(&path).unwrap();
        c.write_all(b"{\"cmd\":\"\xff\xfe\"}\n").unwrap();
        assert!(closed_within(&mut c, Duration::from_secs(3)).is_some());

        // A line longer than the limit, without an end: read up to the limit only,
        // refused, closed; the server never holds more than that for it.
        let mut c = Client::connect(&path).unwrap();
        let flood = vec![b'x'; control::MAX_REQUEST * 4];
        let writer = {
            let mut c = c.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = c.write_all(&flood);
            })
        };
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.contains("not a request") && text.ends_with('\n'),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "one refusal, then closed: {text}");
        let _ = c.shutdown(std::net::Shutdown::Both);
        writer.join().unwrap();

        // Other clients are served all along.
        let r = control::request(&path, &Request::Status, Duration::from_secs(5)).unwrap();
        assert_eq!(r.message.as_deref(), Some("pong"));
    }

    #[test]
    fn the_control_socket_caps_connections_and_closes_idle_ones() {
        use std::io::{BufRead, Write};
        use std::os::unix::net::UnixStream as Client;
        let dir = tempfile::tempdir().unwrap();
        let idle = Duration::from_millis(800);
        let limits = ControlLimits {
            idle,
            max_connections: 4,
        };
        let (path, _rt) = control_server(dir.path(), limits, Duration::from_millis(1500));
        let ask = |req: &Request| control::request(&path, req, Duration::from_secs(5));
        assert_eq!(
            ask(&Request::Status).unwrap().message.as_deref(),
            Some("pong")
        );

        // The server frees that client's slot when it sees the close.
        std::thread::sleep(Duration::from_millis(100));
        // Four connections that send nothing take every slot.
        let opened = std::time::Instant::now();
        let mut held: Vec<Client> = (0..4).map(|_| Client::connect(&path).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        // The next ones are closed at once, long before the idle timeout.
        for i in 0..3 {
            let mut extra = Client::connect(&path).unwrap();
            let took = closed_within(&mut extra, Duration::from_millis(400));
            assert!(
                took.is_some(),
                "connection {} over the cap left open",
                i + 1
            );
        }
        assert!(
            ask(&Request::Status).is_err(),
            "a client over the cap is not served"
        );
        // The idle ones are closed after the timeout, not before.
        for s in &mut held {
            let took = closed_within(s, idle * 3).map(|_| opened.elapsed());
            let took = took.expect("an idle connection is closed");
            assert!(
                took >= idle - Duration::from_millis(50) && took < idle * 2,
                "idle connection closed after {took:?} (idle timeout {idle:?})"
            );
        }
        // Their slots are free again: a normal client gets its answers.
        assert_eq!(
            ask(&Request::Status).unwrap().message.as_deref(),
            Some("pong")
        );

        // A request whose answer takes longer than the idle timeout is answered, and
        // the same connection can ask again.
        let mut c = Client::connect(&path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = std::io::BufReader::new(c.try_clone().unwrap());
        for (req, want) in [
            (r#"{"cmd":"reload"}"#, "slow answer"),
            (r#"{"cmd":"status"}"#, "pong"),
        ] {
            writeln!(c, "{req}").unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let reply: Reply = serde_json::from_str(&line).unwrap();
            assert_eq!(reply.message.as_deref(), Some(want), "{line}");
        }
        // Then, silent, it is closed after the idle timeout.
        let took = closed_within(&mut c, idle * 3).expect("closed once idle");
        assert!(
            took >= idle - Duration::from_millis(50),
            "closed after {took:?}"
        );
    }
}
