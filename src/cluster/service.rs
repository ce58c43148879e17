//! Configuration sync as it runs in the admin UI's process: the listener that answers
//! the peers, the loop that asks them what they run, the offer an Apply sends, and
//! taking a configuration (validated, checked by the supervisor, written, recorded,
//! reloaded) or refusing it with the reason. The decisions are [`super::lineage`]'s
//! and [`super::pernode`]'s; this is their shell.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::lineage::{relate, Head, Relation};
use super::peers::{self, Peer, Plan};
use super::pernode;
use super::wire::{self, Psk, Request, Response, Shipped, WireError};
use crate::apply;
use crate::config::publish::{readback_errors, serial_of};
use crate::config::{parse, render_with_serial, validate};
use crate::pulse::logic::control::{self, Reply};
use crate::pulse::logic::throttle::{more, Throttle};
use crate::storage::{Actor, Lineage, Store};
use crate::sync::Recover;

/// How many revisions' digests a head carries.
const ANCESTRY: u32 = 1000;
/// How long one exchange with a peer may take, the transfer of a large site included.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Peers' connections served at once (each may carry a whole `lvs.cf`).
const CONNECTIONS: usize = 4;
/// More places for connections from the peers' configured addresses, so that
/// connections from elsewhere that never finish their handshake (held the 5 s
/// handshake limit each) cannot keep the peers out.
const PEER_CONNECTIONS: usize = 2;

/// A conflict with a peer: both made a configuration the other does not build on.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub why: String,
    pub peer_serial: u32,
    /// The peer's `lvs.cf`, for the diff.
    pub peer_text: String,
}

/// What this director knows of one peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub name: String,
    /// The host name it reports.
    pub node: Option<String>,
    pub head: Option<Head>,
    pub relation: Option<Relation>,
    /// Why it could not be asked the last time.
    pub error: Option<String>,
    pub conflict: Option<Conflict>,
    /// Unix ms of the last answer.
    pub seen_ms: Option<u64>,
}

impl PeerView {
    fn new(name: &str) -> PeerView {
        PeerView {
            name: name.to_string(),
            node: None,
            head: None,
            relation: None,
            error: None,
            conflict: None,
            seen_ms: None,
        }
    }
}

/// Sync as the pages and `/metrics` show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct View {
    /// Why sync is off; `None` when on.
    pub off: Option<String>,
    /// Off because this director has no peer: nothing to warn about.
    pub alone: bool,
    pub port: u16,
    pub peers: Vec<PeerView>,
    /// Connections refused because they did not authenticate (forged, replayed, or a
    /// peer with another key).
    pub refused: u64,
    /// Configurations taken from a peer.
    pub taken: u64,
}

/// A peer's supervisor status as the monitoring page shows it.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub name: String,
    pub status: Result<Arc<crate::pulse::logic::control::Status>, String>,
}

/// How old the peers' status may be when a page shows it.
const PEER_STATUS_AGE: Duration = Duration::from_secs(2);

/// A peer's answer to an offer, for the Apply page and `lvs-director apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAnswer {
    pub peer: String,
    /// Taken (or already in force) there.
    pub ok: bool,
    pub said: String,
}

impl std::fmt::Display for PeerAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer {}: {}", self.peer, self.said)
    }
}

/// What tells a key file apart from its next version: its path, device and inode
/// (replaced by a rename), size, modification and change times (a chmod changes the
/// latter).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyStamp(String, u64, u64, u64, i64, i64, i64, i64);

fn key_stamp(path: &str) -> Option<KeyStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(KeyStamp(
        path.to_string(),
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

pub struct Cluster {
    store: Store,
    lvs_cf: PathBuf,
    control_socket: PathBuf,
    node: String,
    /// Apply, rollback and taking a peer's configuration, one at a time.
    pub apply_lock: Arc<tokio::sync::Mutex<()>>,
    port: u16,
    view: std::sync::Mutex<View>,
    serving: Arc<Semaphore>,
    serving_peers: Arc<Semaphore>,
    /// The configured peers' addresses, as the loop last read them.
    peer_addrs: std::sync::Mutex<Vec<IpAddr>>,
    /// Refused connections are logged at most every ten seconds, with their count.
    refusals: std::sync::Mutex<Throttle>,
    peer_status: tokio::sync::Mutex<Option<(std::time::Instant, Vec<PeerStatus>)>>,
    /// [`Cluster::unapplied`]'s last answer, by (database change, digest of the file).
    unapplied_cache: std::sync::Mutex<Option<UnappliedKey>>,
    /// The loop asks every second; a large `lvs.cf` takes a tenth of that to parse.
    parsed: std::sync::Mutex<Option<Parsed>>,
    /// The key file's identity and times when last read, and the key derived from it:
    /// the loop asks every second, and a stat is enough to know it is unchanged (a
    /// chmod changes its ctime, so a key made readable to others is read, and refused,
    /// again).
    key: std::sync::Mutex<Option<(KeyStamp, Psk)>>,
}

type UnappliedKey = ((i64, Vec<u8>), Option<String>);

/// What the configuration in force says about sync, with the key read.
enum Current {
    On {
        peers: Vec<Peer>,
        every: Duration,
        psk: Psk,
    },
    /// Off, and why; `alone`: for want of a peer (nothing to warn about).
    Off { why: String, alone: bool },
}

/// The configuration in force as last parsed, by the file's stamp.
type Parsed = (
    Option<(std::time::SystemTime, u64)>,
    Option<Arc<crate::config::Config>>,
);

impl Cluster {
    pub fn new(
        store: Store,
        lvs_cf: PathBuf,
        control_socket: PathBuf,
        apply_lock: Arc<tokio::sync::Mutex<()>>,
        port: u16,
    ) -> Arc<Cluster> {
        Arc::new(Cluster {
            store,
            lvs_cf,
            control_socket,
            node: crate::pulse::task::notify::hostname(),
            apply_lock,
            port,
            view: std::sync::Mutex::new(View {
                port,
                ..View::default()
            }),
            serving: Arc::new(Semaphore::new(CONNECTIONS)),
            serving_peers: Arc::new(Semaphore::new(PEER_CONNECTIONS)),
            peer_addrs: std::sync::Mutex::new(Vec::new()),
            refusals: std::sync::Mutex::new(Throttle::new(Duration::from_secs(10))),
            peer_status: tokio::sync::Mutex::new(None),
            unapplied_cache: std::sync::Mutex::new(None),
            parsed: std::sync::Mutex::new(None),
            key: std::sync::Mutex::new(None),
        })
    }

    pub fn view(&self) -> View {
        self.view.locked().clone()
    }

    fn peer_view(&self, name: &str, f: impl FnOnce(&mut PeerView)) {
        let mut v = self.view.locked();
        if let Some(p) = v.peers.iter_mut().find(|p| p.name == name) {
            f(p);
        } else {
            let mut p = PeerView::new(name);
            f(&mut p);
            v.peers.push(p);
        }
    }

    /// The configuration in force, parsed again only when the file changed.
    async fn in_force(&self) -> Option<Arc<crate::config::Config>> {
        let stamp = apply::stamp(&self.lvs_cf);
        if let Some((k, config)) = self.parsed.locked().as_ref() {
            if k.is_some() && *k == stamp {
                return config.clone();
            }
        }
        let config = apply::read_in_force(&self.lvs_cf)
            .await
            .ok()
            .flatten()
            .and_then(|t| parse(&t).ok())
            .map(|p| Arc::new(p.config));
        *self.parsed.locked() = Some((stamp, config.clone()));
        config
    }

    /// Reads the configuration in force and the key it names.
    async fn current(&self) -> Current {
        let Some(config) = self.in_force().await else {
            return Current::Off {
                why: format!(
                    "configuration sync is off: {} is missing or does not read",
                    self.lvs_cf.display()
                ),
                alone: true,
            };
        };
        let plan = tokio::task::spawn_blocking(move || {
            peers::plan(&config, &peers::is_local, &peers::resolve)
        })
        .await
        .unwrap_or_else(|e| Plan::Off(e.to_string()));
        let (peers, every, key_file) = match plan {
            Plan::On {
                peers,
                every,
                key_file,
            } => (peers, every, key_file),
            Plan::Off(why) => return Current::Off { why, alone: false },
            Plan::Alone(why) => return Current::Off { why, alone: true },
        };
        let stamp = key_stamp(&key_file);
        if let Some((k, psk)) = self.key.locked().as_ref() {
            if stamp.as_ref() == Some(k) {
                return Current::On {
                    peers,
                    every,
                    psk: psk.clone(),
                };
            }
        }
        let why = match tokio::task::spawn_blocking(move || {
            crate::pulse::task::startup::read_key(&key_file)
        })
        .await
        {
            Ok(Ok(key)) => {
                let psk = Psk::derive(&key);
                *self.key.locked() = stamp.map(|k| (k, psk.clone()));
                return Current::On { peers, every, psk };
            }
            Ok(Err(e)) => format!("configuration sync is off: {e}"),
            Err(e) => e.to_string(),
        };
        Current::Off { why, alone: false }
    }

    /// Runs sync until the process stops: listens for the peers while sync is on and
    /// asks each of them what it runs, every `keepalive` (a second at most).
    pub async fn run(self: Arc<Self>) {
        let mut listener: Option<tokio::task::JoinHandle<()>> = None;
        let mut was_off: Option<String> = None;
        loop {
            let every = match self.current().await {
                Current::On { peers, every, psk } => {
                    if was_off.take().is_some() || listener.is_none() {
                        tracing::info!(
                            peers = %peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" "),
                            "configuration sync on, TCP port {}",
                            self.port
                        );
                    }
                    {
                        let mut v = self.view.locked();
                        v.off = None;
                        v.alone = false;
                    }
                    if listener.as_ref().is_none_or(|l| l.is_finished()) {
                        listener = self.clone().listen(psk.clone()).await;
                    }
                    {
                        let mut v = self.view.locked();
                        v.peers.retain(|p| peers.iter().any(|q| q.name == p.name));
                    }
                    *self.peer_addrs.locked() =
                        peers.iter().flat_map(|p| p.addrs.iter().copied()).collect();
                    for peer in &peers {
                        self.poll(peer, &psk).await;
                    }
                    every
                }
                Current::Off { why, alone } => {
                    if was_off.as_deref() != Some(&why) {
                        if alone {
                            tracing::info!("{why}");
                        } else {
                            tracing::warn!("{why}");
                        }
                        was_off = Some(why.clone());
                    }
                    if let Some(l) = listener.take() {
                        l.abort();
                    }
                    let mut v = self.view.locked();
                    v.off = Some(why);
                    v.alone = alone;
                    v.peers.clear();
                    Duration::from_secs(1)
                }
            };
            tokio::time::sleep(every).await;
        }
    }

    /// Binds the sync port (all addresses) and serves the peers on a task of its own.
    async fn listen(self: Arc<Self>, psk: Psk) -> Option<tokio::task::JoinHandle<()>> {
        let bound = match TcpListener::bind((IpAddr::from([0u16; 8]), self.port)).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind((IpAddr::from([0u8; 4]), self.port)).await,
        };
        let listener = match bound {
            Ok(l) => l,
            Err(e) => {
                let why = format!(
                    "configuration sync cannot listen on TCP port {}: {e}",
                    self.port
                );
                tracing::error!("{why}");
                self.view.locked().off = Some(why);
                return None;
            }
        };
        Some(tokio::spawn(async move {
            let mut busy = Throttle::new(Duration::from_secs(10));
            let mut failed = Throttle::new(Duration::from_secs(10));
            loop {
                let (stream, from) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        if let Some(n) = failed.ready(std::time::Instant::now()) {
                            tracing::warn!("sync: accept: {e}{}", more(n));
                        }
                        // Out of descriptors, most likely: accepting again at once
                        // would spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Bound on [::]: an IPv4 peer arrives as ::ffff:a.b.c.d.
                let ip = from.ip().to_canonical();
                let permit = match self.serving.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) if self.peer_addrs.locked().contains(&ip) => {
                        self.serving_peers.clone().try_acquire_owned().ok()
                    }
                    Err(_) => None,
                };
                let Some(permit) = permit else {
                    if let Some(n) = busy.ready(std::time::Instant::now()) {
                        tracing::warn!(%from, "sync: too many connections at once, one dropped{}", more(n));
                    }
                    continue;
                };
                let me = self.clone();
                let psk = psk.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    me.serve(stream, from, &psk).await;
                });
            }
        }))
    }

    async fn serve(&self, stream: TcpStream, from: SocketAddr, psk: &Psk) {
        let served = async {
            let mut ch = tokio::time::timeout(wire::HANDSHAKE_TIMEOUT, wire::accept(stream, psk))
                .await
                .map_err(|_| WireError::Malformed("handshake timed out".into()))??;
            let req: Request = tokio::time::timeout(EXCHANGE_TIMEOUT, ch.recv())
                .await
                .map_err(|_| WireError::Malformed("request timed out".into()))??;
            let answer = self.answer(req, from.ip()).await;
            ch.send(&answer).await
        };
        if let Err(e) = served.await {
            if e.is_unauthenticated() {
                self.view.locked().refused += 1;
                let ready = self.refusals.locked().ready(std::time::Instant::now());
                if let Some(n) = ready {
                    tracing::warn!(%from, "sync: refused a connection: {e}{}", more(n));
                }
            } else {
                tracing::debug!(%from, "sync: {e}");
            }
        }
    }

    async fn answer(&self, req: Request, from: IpAddr) -> Response {
        match req {
            Request::Head => match self.local(true).await {
                Ok((head, _)) => Response::Head {
                    node: self.node.clone(),
                    head,
                },
                Err(e) => Response::Refused { reason: e },
            },
            Request::Fetch => match self.local(false).await {
                Ok((_, Some(revision))) => Response::Revision {
                    revision: Box::new(revision),
                },
                Ok((_, None)) => Response::Refused {
                    reason: "this director has no configuration in force".into(),
                },
                Err(e) => Response::Refused { reason: e },
            },
            Request::Status => Response::Status {
                status: self.own_status().await,
            },
            Request::Offer { revision } => {
                let name = self.peer_name(from).await;
                match self.take(&revision, &name, false).await {
                    Ok(message) => Response::Taken { message },
                    Err(reason) => Response::Refused { reason },
                }
            }
        }
    }

    /// The peer's name as `lvs.cf` gives it, for an address it connected from.
    async fn peer_name(&self, from: IpAddr) -> String {
        let from = canonical(from);
        match self.current().await {
            Current::On { peers, .. } => peers
                .iter()
                .find(|p| p.addrs.contains(&from))
                .map_or(from.to_string(), |p| p.name.clone()),
            Current::Off { .. } => from.to_string(),
        }
    }

    /// This director's supervisor's status.
    async fn own_status(&self) -> Result<Box<crate::pulse::logic::control::Status>, String> {
        let socket = self.control_socket.clone();
        let reply = tokio::task::spawn_blocking(move || {
            control::request(&socket, &control::Request::Status, Duration::from_secs(5))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("its supervisor does not answer: {e}"))?;
        reply
            .status
            .ok_or_else(|| reply.error.unwrap_or_else(|| "no status".into()))
    }

    /// Each peer's supervisor status (or why not), at most [`PEER_STATUS_AGE`] old.
    pub async fn peer_statuses(&self) -> Vec<PeerStatus> {
        let mut cached = self.peer_status.lock().await;
        if let Some((at, s)) = cached.as_ref() {
            if at.elapsed() < PEER_STATUS_AGE {
                return s.clone();
            }
        }
        let Current::On { peers, psk, .. } = self.current().await else {
            *cached = Some((std::time::Instant::now(), Vec::new()));
            return Vec::new();
        };
        let asks = peers.iter().map(|p| {
            let psk = &psk;
            async move {
                let status = match self.ask(p, psk, &Request::Status).await {
                    Ok(Response::Status { status }) => status.map(Arc::from),
                    Ok(other) => Err(format!("answered {other:?}")),
                    Err(e) => Err(format!("unreachable: {e}")),
                };
                PeerStatus {
                    name: p.name.clone(),
                    status,
                }
            }
        });
        let all = futures_util::future::join_all(asks).await;
        *cached = Some((std::time::Instant::now(), all.clone()));
        all
    }

    /// Whether the stored configuration differs from `in_force`: read again only when
    /// the database or the file changed since the last answer (the poll asks every
    /// second, and reading a large site costs hundreds of milliseconds).
    async fn unapplied(&self, in_force: &str, serial: u32) -> Result<Option<String>, String> {
        let change = self
            .store
            .change_counter()
            .await
            .map_err(|e| e.to_string())?;
        let digest = Sha256::digest(in_force.as_bytes());
        let key = (change, digest.to_vec());
        if let Some((k, answer)) = self.unapplied_cache.locked().as_ref() {
            if *k == key {
                return Ok(answer.clone());
            }
        }
        let stored = self.store.load_config().await.map_err(|e| e.to_string())?;
        let answer = (render_with_serial(&stored, serial) != in_force)
            .then(|| "this director has changes that are not applied".to_string());
        *self.unapplied_cache.locked() = Some((key, answer.clone()));
        Ok(answer)
    }

    /// This director's head, and the revision in force as it would travel. `with_held`:
    /// whether to find out if it holds (costly on a large site the first time after a
    /// change; a revision sent needs no answer).
    pub async fn local(&self, with_held: bool) -> Result<(Head, Option<Shipped>), String> {
        let in_force = apply::read_in_force(&self.lvs_cf)
            .await
            .map_err(|e| e.to_string())?;
        let store = &self.store;
        let latest = store
            .revisions()
            .latest()
            .await
            .map_err(|e| e.to_string())?;
        let digest = apply::head_digest(in_force.as_deref(), latest.as_ref());
        let mut ancestry = store
            .revisions()
            .ancestry(ANCESTRY)
            .await
            .map_err(|e| e.to_string())?;
        if !digest.is_empty() && !ancestry.contains(&digest) {
            ancestry.insert(0, digest.clone());
        }
        let serial = in_force.as_deref().map_or(0, serial_of);
        let held = match (&in_force, &latest) {
            (Some(text), Some(rev)) if *text != rev.text => Some(format!(
                "{} was edited outside lvs-director",
                self.lvs_cf.display()
            )),
            (Some(_), None) => Some(format!(
                "{} was not written by lvs-director",
                self.lvs_cf.display()
            )),
            (Some(text), Some(_)) if with_held => self.unapplied(text, serial).await?,
            _ => None,
        };
        let head = Head {
            serial,
            digest: digest.clone(),
            ancestry: ancestry.clone(),
            held,
        };
        let shipped = in_force.map(|text| Shipped {
            serial,
            digest,
            parents: latest
                .as_ref()
                .map(|r| r.info.parent_digests().map(String::from).collect())
                .unwrap_or_default(),
            ancestry,
            text,
            applied_by: latest
                .as_ref()
                .map(|r| r.info.applied_by.clone())
                .unwrap_or_default(),
            comment: latest
                .as_ref()
                .map(|r| r.info.comment.clone())
                .unwrap_or_default(),
        });
        Ok((head, shipped))
    }

    /// One exchange with `peer`: the first of its addresses that answers.
    async fn ask(&self, peer: &Peer, psk: &Psk, req: &Request) -> Result<Response, String> {
        let mut last = String::from("no address");
        for addr in &peer.addrs {
            let target = SocketAddr::new(*addr, self.port);
            let stream =
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        last = format!("{target}: {e}");
                        continue;
                    }
                    Err(_) => {
                        last = format!("{target}: no answer within {CONNECT_TIMEOUT:?}");
                        continue;
                    }
                };
            let exchange = async {
                let mut ch = wire::connect(stream, psk).await?;
                ch.send(req).await?;
                ch.recv::<Response>().await
            };
            return match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(format!("{target}: {e}")),
                Err(_) => Err(format!("{target}: no answer within {EXCHANGE_TIMEOUT:?}")),
            };
        }
        Err(last)
    }

    /// Asks `peer` what it runs and acts on the answer: take a newer configuration
    /// that builds on ours, note a conflict.
    async fn poll(&self, peer: &Peer, psk: &Psk) {
        let (theirs, node) = match self.ask(peer, psk, &Request::Head).await {
            Ok(Response::Head { node, head }) => (head, node),
            Ok(other) => {
                self.peer_view(&peer.name, |v| {
                    v.error = Some(format!("unexpected answer {other:?}"))
                });
                return;
            }
            Err(e) => {
                self.peer_view(&peer.name, |v| {
                    if v.error.as_deref() != Some(&e) {
                        tracing::warn!(peer = %peer.name, "sync: cannot reach the peer: {e}");
                    }
                    v.error = Some(e);
                });
                return;
            }
        };
        let ours = match self.local(true).await {
            Ok((h, _)) => h,
            Err(e) => {
                tracing::error!("sync: {e}");
                return;
            }
        };
        let relation = relate(&ours, &theirs);
        let now = crate::clock::unix_ms();
        self.peer_view(&peer.name, |v| {
            if v.error.is_some() {
                tracing::info!(peer = %peer.name, "sync: the peer answers again");
            }
            v.error = None;
            v.node = Some(node.clone());
            v.head = Some(theirs.clone());
            v.relation = Some(relation);
            v.seen_ms = Some(now);
            if relation != Relation::Diverged {
                v.conflict = None;
            }
        });
        match relation {
            Relation::InStep | Relation::LocalNewer => {}
            Relation::PeerNewer => {
                if let Some(why) = &ours.held {
                    self.note_conflict(peer, psk, &theirs, why).await;
                    return;
                }
                match self.ask(peer, psk, &Request::Fetch).await {
                    Ok(Response::Revision { revision }) => {
                        if let Err(why) = self.take(&revision, &peer.name, false).await {
                            tracing::warn!(peer = %peer.name, serial = revision.serial, "sync: not taken: {why}");
                        }
                    }
                    Ok(other) => {
                        tracing::warn!(peer = %peer.name, "sync: fetch answered {other:?}")
                    }
                    Err(e) => tracing::warn!(peer = %peer.name, "sync: fetch: {e}"),
                }
            }
            Relation::Diverged => {
                self.note_conflict(
                    peer,
                    psk,
                    &theirs,
                    "both directors have configurations the other does not build on (edits on both sides, or configured apart)",
                )
                .await;
            }
        }
    }

    /// Records a conflict with `peer`, fetching its text once per head for the diff.
    async fn note_conflict(&self, peer: &Peer, psk: &Psk, theirs: &Head, why: &str) {
        let known = self
            .view
            .locked()
            .peers
            .iter()
            .find(|p| p.name == peer.name)
            .and_then(|p| p.conflict.as_ref())
            .is_some_and(|c| c.peer_serial == theirs.serial && c.why == why);
        if known {
            return;
        }
        let text = match self.ask(peer, psk, &Request::Fetch).await {
            Ok(Response::Revision { revision }) => revision.text,
            _ => String::new(),
        };
        tracing::warn!(peer = %peer.name, peer_serial = theirs.serial, "sync: CONFLICT: {why}");
        let c = Conflict {
            why: why.to_string(),
            peer_serial: theirs.serial,
            peer_text: text,
        };
        self.peer_view(&peer.name, |v| v.conflict = Some(c));
    }

    /// Takes `shipped` from `from` (validated, checked, written, recorded, reloaded)
    /// and says what the supervisor answered; or says why not, with nothing changed.
    /// `force`: an administrator chose the peer's configuration over ours.
    pub async fn take(&self, shipped: &Shipped, from: &str, force: bool) -> Result<String, String> {
        let _one_at_a_time = self.apply_lock.lock().await;
        let started = std::time::Instant::now();
        let mut steps: Vec<(&str, Duration)> = Vec::new();
        let mut step = |name: &'static str, since: &mut std::time::Instant| {
            steps.push((name, since.elapsed()));
            *since = std::time::Instant::now();
        };
        let mut since = started;
        let (ours, _) = self.local(true).await?;
        if ours.digest == shipped.digest {
            return Ok(format!(
                "serial {} is already in force here",
                shipped.serial
            ));
        }
        let theirs = Head {
            serial: shipped.serial,
            digest: shipped.digest.clone(),
            ancestry: shipped.ancestry.clone(),
            held: None,
        };
        if !force {
            match relate(&ours, &theirs) {
                Relation::PeerNewer => {}
                Relation::InStep => unreachable!("equal digests returned above"),
                Relation::LocalNewer => {
                    return Err(format!(
                        "this director runs serial {}, which already builds on serial {}",
                        ours.serial, shipped.serial
                    ))
                }
                Relation::Diverged => {
                    return Err(format!(
                        "CONFLICT: this director runs serial {}, made apart from serial {}; choose one on the cluster page",
                        ours.serial, shipped.serial
                    ))
                }
            }
            if let Some(why) = &ours.held {
                return Err(format!("CONFLICT: {why}; choose on the cluster page"));
            }
        }
        step("head", &mut since);
        let received = parse(&shipped.text)
            .map_err(|e| format!("serial {} does not read: {}", shipped.serial, e[0]))?
            .config;
        if pernode::digest(&received, shipped.serial) != shipped.digest {
            return Err(format!(
                "serial {} does not match its digest (a different lvs-director version, or altered)",
                shipped.serial
            ));
        }
        let in_force = apply::read_in_force(&self.lvs_cf)
            .await
            .map_err(|e| e.to_string())?;
        let local = in_force
            .as_deref()
            .and_then(|t| parse(t).ok())
            .map(|p| p.config)
            .unwrap_or_default();
        let merged = {
            let (received, local) = (received.clone(), local.clone());
            tokio::task::spawn_blocking(move || pernode::merge(&received, &local, &peers::is_local))
                .await
                .map_err(|e| e.to_string())?
        };
        let errors: Vec<String> = validate(&merged.config)
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| d.message)
            .collect();
        if !errors.is_empty() {
            return Err(format!(
                "serial {} is invalid here: {}",
                shipped.serial,
                errors.join("; ")
            ));
        }
        let text = render_with_serial(&merged.config, shipped.serial);
        let unreadable = readback_errors(&text);
        if !unreadable.is_empty() {
            return Err(unreadable.join("; "));
        }
        step("validate", &mut since);
        self.supervisor_check(&text).await?;
        step("supervisor check", &mut since);
        let mut comment = format!("received from {from}, serial {}", shipped.serial);
        if force {
            comment.push_str(" (chosen over this director's own in a conflict)");
        }
        if !shipped.comment.is_empty() {
            comment.push_str(&format!(": {}", shipped.comment));
        }
        for d in &merged.derived {
            comment.push_str(&format!("; {d}"));
        }
        let mut parents = shipped.parents.clone();
        if force && !ours.digest.is_empty() {
            parents.push(ours.digest.clone());
        }
        let lineage = Lineage {
            digest: shipped.digest.clone(),
            parents,
            origin: Some(from.to_string()),
        };
        let actor = Actor::new(format!("sync:{from}"), Some(from.to_string()));
        let target = self.lvs_cf.clone();
        let bytes = crate::config::whole::with_ends(&text).into_bytes();
        let recorded = self
            .store
            .receive(
                &merged.config,
                &text,
                shipped.serial,
                &actor,
                &comment,
                &lineage,
                move || crate::atomic_file::write_config(&target, &bytes),
            )
            .await;
        match recorded {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "cannot write {}: {e}; serial {} was not taken",
                    self.lvs_cf.display(),
                    shipped.serial
                ))
            }
            Err(e) => {
                // Written, perhaps, if the commit itself failed: the file goes back.
                apply::put_back(&self.lvs_cf, &text, in_force.as_deref()).await;
                return Err(format!(
                    "the configuration database {} could not record serial {} ({e}); it was not taken and the file in force is unchanged",
                    self.store.path().display(),
                    shipped.serial
                ));
            }
        }
        step("write and record", &mut since);
        let (_, answer) = self.supervisor_reload().await;
        step("reload", &mut since);
        self.store
            .audit()
            .record(&actor, "reload", "supervisor", None, Some(&answer))
            .await
            .map_err(|e| e.to_string())?;
        self.view.locked().taken += 1;
        let steps: Vec<String> = steps
            .iter()
            .map(|(n, d)| format!("{n} {} ms", d.as_millis()))
            .collect();
        tracing::info!(
            peer = from,
            serial = shipped.serial,
            "sync: took the peer's configuration in {} ms ({}): {answer}",
            started.elapsed().as_millis(),
            steps.join(", ")
        );
        let mut said = format!("took serial {}. {answer}", shipped.serial);
        for d in &merged.derived {
            said.push_str(&format!(" Note: {d}."));
        }
        Ok(said)
    }

    /// Asks the supervisor whether it could run `text`; fine when none runs (it reads
    /// the file when it starts, and refuses it then if it must).
    pub async fn supervisor_check(&self, text: &str) -> Result<(), String> {
        if !self.control_socket.exists() {
            return Ok(());
        }
        let dir = self.lvs_cf.parent().unwrap_or(Path::new(".")).to_path_buf();
        let socket = self.control_socket.clone();
        let text = text.to_string();
        let reply = tokio::task::spawn_blocking(move || -> Result<Reply, String> {
            let candidate = tempfile::Builder::new()
                .prefix(control::CHECK_PREFIX)
                .tempfile_in(&dir)
                .map_err(|e| format!("cannot write a candidate in {}: {e}", dir.display()))?;
            // Readable by the group, as lvs.cf is: the packaged supervisor is root
            // without CAP_DAC_OVERRIDE, in group lvs-director, and the admin UI is not
            // root (a 0600 candidate of its own would be unreadable to it).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(candidate.path(), std::fs::Permissions::from_mode(0o640))
                .map_err(|e| e.to_string())?;
            std::fs::write(candidate.path(), text.as_bytes()).map_err(|e| e.to_string())?;
            control::request(
                &socket,
                &control::Request::Check {
                    file: candidate.path().to_path_buf(),
                },
                Duration::from_secs(30),
            )
            .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?;
        match reply {
            Ok(r) if r.ok => Ok(()),
            Ok(r) => Err(format!(
                "this director cannot run it: {}",
                r.error.unwrap_or_default()
            )),
            // Not running (a stale socket): as without one.
            Err(_) => Ok(()),
        }
    }

    /// Asks the supervisor to reload: whether it took the file, and its answer.
    pub async fn supervisor_reload(&self) -> (bool, String) {
        let socket = self.control_socket.clone();
        let reply = tokio::task::spawn_blocking(move || {
            control::request(&socket, &control::Request::Reload, Duration::from_secs(60))
        })
        .await;
        match reply {
            Ok(Ok(r)) => apply::reload_said(r),
            Ok(Err(e)) => (
                true,
                format!(
                    "The supervisor is not running ({e}); it will read the file when it starts."
                ),
            ),
            Err(e) => (false, e.to_string()),
        }
    }

    /// Offers the configuration in force to every peer (after an Apply) and collects
    /// their answers. Empty when sync is off.
    pub async fn offer_all(&self) -> Vec<PeerAnswer> {
        let Current::On { peers, psk, .. } = self.current().await else {
            return Vec::new();
        };
        let shipped = match self.local(false).await {
            Ok((_, Some(s))) => s,
            _ => return Vec::new(),
        };
        let req = Request::Offer {
            revision: Box::new(shipped),
        };
        let asks = peers.iter().map(|p| {
            let (psk, req) = (&psk, &req);
            async move {
                let (ok, said) = match self.ask(p, psk, req).await {
                    Ok(Response::Taken { message }) => (true, message),
                    Ok(Response::Refused { reason }) => (
                        false,
                        format!("REFUSED it, and keeps what it ran: {reason}"),
                    ),
                    Ok(other) => (false, format!("answered {other:?}")),
                    Err(e) => (
                        false,
                        format!("unreachable ({e}); it takes this configuration when it returns"),
                    ),
                };
                PeerAnswer {
                    peer: p.name.clone(),
                    ok,
                    said,
                }
            }
        });
        futures_util::future::join_all(asks).await
    }

    /// Settles a conflict with `peer` for its configuration: fetched and taken over
    /// this director's own (which stays in the history).
    pub async fn choose_peers(&self, peer: &str) -> Result<String, String> {
        let (p, psk) = self.find_peer(peer).await?;
        match self.ask(&p, &psk, &Request::Fetch).await? {
            Response::Revision { revision } => self.take(&revision, &p.name, true).await,
            other => Err(format!("the peer answered {other:?}")),
        }
    }

    /// Settles a conflict with `peer` for this director's configuration: applied again
    /// over both heads with a serial above both, so the peer takes it.
    pub async fn choose_ours(&self, peer: &str, actor: &Actor) -> Result<String, String> {
        let (p, psk) = self.find_peer(peer).await?;
        let theirs = match self.ask(&p, &psk, &Request::Head).await? {
            Response::Head { head, .. } => head,
            other => return Err(format!("the peer answered {other:?}")),
        };
        {
            let _one_at_a_time = self.apply_lock.lock().await;
            let planned = apply::plan_above(&self.store, &self.lvs_cf, theirs.serial)
                .await
                .map_err(|e| e.to_string())?;
            if !planned.preview.errors.is_empty() {
                return Err(planned.preview.errors.join("; "));
            }
            apply::commit(
                &self.store,
                &self.lvs_cf,
                &planned,
                actor,
                &format!(
                    "chosen over {}'s serial {} in a conflict",
                    p.name, theirs.serial
                ),
                std::slice::from_ref(&theirs.digest),
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        let (_, answer) = self.supervisor_reload().await;
        let peers: Vec<String> = self
            .offer_all()
            .await
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(format!("{answer} {}", peers.join(" ")))
    }

    async fn find_peer(&self, name: &str) -> Result<(Peer, Psk), String> {
        match self.current().await {
            Current::On { peers, psk, .. } => peers
                .into_iter()
                .find(|p| p.name == name)
                .map(|p| (p, psk))
                .ok_or_else(|| format!("{name} is not a peer of this director")),
            Current::Off { why, .. } => Err(why),
        }
    }
}

/// An IPv4 peer connecting to a dual-stack socket shows as `::ffff:a.b.c.d`.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key is read again when the file is replaced, rewritten or made readable to
    /// others (a chmod), not otherwise.
    #[test]
    fn a_key_file_stamp_changes_with_what_must_be_read_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, b"a key").unwrap();
        let p = path.to_str().unwrap();
        let first = key_stamp(p).unwrap();
        assert_eq!(key_stamp(p), Some(first.clone()), "unchanged");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let chmodded = key_stamp(p).unwrap();
        assert_ne!(chmodded, first, "a chmod");
        std::fs::write(dir.path().join("new"), b"another key").unwrap();
        std::fs::rename(dir.path().join("new"), &path).unwrap();
        assert_ne!(key_stamp(p).unwrap(), chmodded, "replaced");
        assert_eq!(key_stamp(dir.path().join("gone").to_str().unwrap()), None);
    }
}
