//! The admin UI's HTTP/1.1 server: an accept loop that admits a bounded number of
//! connections, each served by hyper with a deadline on its request headers.
//!
//! `axum::serve` holds any connection for as long as its client likes: 1,100 clients
//! that sent half a request line took every descriptor of the unit and locked the real
//! administrators out. Here:
//!
//! - a connection must send a complete request head within [`HEADER_TIMEOUT`] of
//!   opening, and of finishing its previous request (an idle keep-alive connection is
//!   closed after as long); a TLS handshake gets [`HANDSHAKE_TIMEOUT`]; a request
//!   body must arrive within [`super::security`]'s deadline;
//! - [`Admission`] caps the connections of one source (an IPv4 address, an IPv6 /64)
//!   and of everybody, and keeps the last few places for sources that hold almost
//!   none, so a crowd of connections from a few sources leaves room for the others;
//! - the cap follows the process's descriptor limit ([`crate::descriptors`]), raised
//!   to its hard limit at start (`LimitNOFILE=` in the unit bounds it).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::throttle::Source;
use super::tls::Peer;
use crate::pulse::logic::throttle::{more, Throttle};
use crate::sync::Recover;

/// A client has this long to send a request's line and headers, counted from the
/// connection's start or the end of its previous request.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// A TLS client has this long to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for the requests in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How many connections are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// All connections together.
    pub total: usize,
    /// Connections of one source (a browser opens about six).
    pub per_source: usize,
    /// The last places of `total`, kept for sources that hold fewer than
    /// `small_source` connections.
    pub reserved: usize,
    pub small_source: usize,
}

impl Limits {
    /// The limits for a process that may open `descriptors` files: 64 are left for
    /// the database, the control socket and the log, the rest is for clients, up to
    /// 1,024 of them.
    pub fn for_descriptors(descriptors: u64) -> Limits {
        let total = usize::try_from(descriptors.saturating_sub(64))
            .unwrap_or(usize::MAX)
            .clamp(16, 1024);
        Limits {
            total,
            per_source: 32.min(total / 2),
            reserved: (total / 8).max(4),
            small_source: 4,
        }
    }
}

/// The connections held, by source. Pure bookkeeping.
///
/// When every place is taken, a new connection takes the place of the oldest one that
/// has not sent a request yet (the shell closes that one). Without this, idle
/// connections from a few hundred addresses, each within its share, lock every client
/// out until the header deadline, and the attacker reconnects before it; with it, an
/// idle connection lasts only until the places turn over, while a client that sends
/// its request at once (a browser: milliseconds) is served.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    held: HashMap<Source, usize>,
    total: usize,
    /// Every admitted connection: its source and whether it has sent a request.
    conns: HashMap<u64, (Source, bool)>,
    /// Admitted connections in order of arrival, for eviction (entries that ended or
    /// sent a request are skipped when met).
    arrivals: VecDeque<u64>,
    next: u64,
}

/// An admitted connection's id, and the connection it displaced, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub id: u64,
    pub evicted: Option<u64>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this client already holds {0} connections, the most one client may")]
    Source(usize),
    #[error("the server holds {0} connections, the most it takes")]
    Full(usize),
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            held: HashMap::new(),
            total: 0,
            conns: HashMap::new(),
            arrivals: VecDeque::new(),
            next: 0,
        }
    }

    /// Admits a connection of `source`, displacing the oldest connection that has
    /// not sent a request when every place is taken, or says why not.
    pub fn admit(&mut self, source: Source) -> Result<Admitted, Refused> {
        let l = self.limits;
        let mine = self.held.get(&source).copied().unwrap_or(0);
        if mine >= l.per_source {
            return Err(Refused::Source(mine));
        }
        let open = l.total.saturating_sub(l.reserved);
        let mut evicted = None;
        if self.total >= l.total || (self.total >= open && mine >= l.small_source) {
            let Some(old) = self.oldest_silent() else {
                return Err(Refused::Full(self.total));
            };
            self.release(old);
            evicted = Some(old);
        }
        *self.held.entry(source).or_insert(0) += 1;
        self.total += 1;
        let id = self.next;
        self.next += 1;
        self.conns.insert(id, (source, false));
        self.arrivals.push_back(id);
        // Keep the queue from growing with entries that ended long ago.
        if self.arrivals.len() > 2 * self.conns.len() + 64 {
            let conns = &self.conns;
            self.arrivals
                .retain(|id| conns.get(id).is_some_and(|(_, sent)| !sent));
        }
        Ok(Admitted { id, evicted })
    }

    /// The oldest connection still waiting for its first request.
    fn oldest_silent(&mut self) -> Option<u64> {
        while let Some(&id) = self.arrivals.front() {
            self.arrivals.pop_front();
            if self.conns.get(&id).is_some_and(|(_, sent)| !sent) {
                return Some(id);
            }
        }
        None
    }

    /// Connection `id` has sent a request: it is no longer displaced for newcomers.
    pub fn sent_request(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.1 = true;
        }
    }

    /// Connection `id` has ended (or was displaced: then this does nothing).
    pub fn release(&mut self, id: u64) {
        let Some((source, _)) = self.conns.remove(&id) else {
            return;
        };
        if let Some(n) = self.held.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&source);
            }
        }
        self.total -= 1;
    }

    pub fn total(&self) -> usize {
        self.total
    }

    #[cfg(test)]
    fn is_held(&self, id: u64) -> bool {
        self.conns.contains_key(&id)
    }
}

/// The admitted connections' close signals: dropping one's sender closes that
/// connection (a displaced one).
type Tasks = Arc<Mutex<HashMap<u64, tokio::sync::oneshot::Sender<()>>>>;

/// An admitted connection; gives its place back when dropped.
struct Place {
    admission: Arc<Mutex<Admission>>,
    tasks: Tasks,
    id: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.admission.locked().release(self.id);
        self.tasks.locked().remove(&self.id);
    }
}

/// Serves `app` on `listener` (TLS when `tls` is given) within `limits` until
/// `shutdown` resolves; then stops accepting and gives the requests in progress
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let admission = Arc::new(Mutex::new(Admission::new(limits)));
    let tasks: Tasks = Arc::new(Mutex::new(HashMap::new()));
    let mut displaced = Throttle::new(Duration::from_secs(10));
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // A flood of refusals is logged once every ten seconds, with its count.
    let mut refusals = Throttle::new(Duration::from_secs(10));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(super::security::MAX_HEAD);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a
                    // moment rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let source = Source::of(addr.ip());
        let admitted = admission.locked().admit(source);
        let id = match admitted {
            Ok(a) => {
                if let Some(old) = a.evicted {
                    tasks.locked().remove(&old);
                    if let Some(n) = displaced.ready(Instant::now()) {
                        tracing::warn!(
                            "every connection place is taken: closed the oldest connection that had sent no request, for {addr}{}",
                            more(n)
                        );
                    }
                }
                a.id
            }
            Err(why) => {
                if let Some(n) = refusals.ready(Instant::now()) {
                    tracing::warn!(client = %addr, "connection refused: {why}{}", more(n));
                }
                drop(stream);
                continue;
            }
        };
        let place = Place {
            admission: admission.clone(),
            tasks: tasks.clone(),
            id,
        };
        let sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let on_request = admission.clone();
        let app = app.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        tasks.locked().insert(id, close);
        tokio::spawn(async move {
            let _place = place;
            let serve = async move {
                let service = hyper_util::service::TowerToHyperService::new(app.map_request(
                    move |mut req: hyper::Request<hyper::body::Incoming>| {
                        if !sent.swap(true, std::sync::atomic::Ordering::Relaxed) {
                            on_request.locked().sent_request(id);
                        }
                        req.extensions_mut().insert(ConnectInfo(Peer(addr)));
                        req
                    },
                ));
                let result = match acceptor {
                    None => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => {
                                watcher
                                    .watch(http.serve_connection(TokioIo::new(tls), service))
                                    .await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(client = %addr, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(client = %addr, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(client = %addr, "connection ended: {e}");
                }
            };
            // Displaced: the connection closes with the future that serves it.
            tokio::select! {
                () = serve => {}
                _ = closed => {}
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "stopping with requests still in progress after {} s",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn src(s: &str) -> Source {
        Source::of(s.parse().unwrap())
    }

    #[test]
    fn limits_follow_the_descriptors() {
        assert_eq!(Limits::for_descriptors(1024).total, 960);
        assert_eq!(Limits::for_descriptors(1_048_576).total, 1024);
        assert_eq!(Limits::for_descriptors(20).total, 16);
        assert_eq!(Limits::for_descriptors(1024).per_source, 32);
    }

    #[test]
    fn one_source_cannot_take_more_than_its_share() {
        let mut a = Admission::new(Limits::for_descriptors(1024));
        let attacker = src("198.51.100.7");
        let admitted = (0..1100).filter(|_| a.admit(attacker).is_ok()).count();
        assert_eq!(admitted, 32);
        assert_eq!(a.admit(attacker), Err(Refused::Source(32)));
        // A real administrator still gets in.
        assert!(a.admit(src("192.0.2.10")).is_ok());
        // An IPv6 attacker's /64 is one source.
        let v6 = (0..100)
            .filter(|i| {
                a.admit(Source::of(IpAddr::V6(
                    format!("2001:db8::{i:x}").parse().unwrap(),
                )))
                .is_ok()
            })
            .count();
        assert_eq!(v6, 32);
    }

    #[test]
    fn the_last_places_are_kept_for_sources_holding_few() {
        let limits = Limits {
            total: 100,
            per_source: 32,
            reserved: 10,
            small_source: 4,
        };
        let mut a = Admission::new(limits);
        let host = |n: u32| Source::of(IpAddr::V4((0x0a00_0000 + n).into()));
        // Sources with many connections fill the open part: 32 + 32 + 26.
        let mut first = None;
        let mut admitted = 0;
        for h in 1..=3 {
            for _ in 0..32 {
                if let Ok(got) = a.admit(host(h)) {
                    a.sent_request(got.id);
                    first.get_or_insert(got.id);
                    admitted += 1;
                }
            }
        }
        let first = first.unwrap();
        assert_eq!(admitted, 90);
        // The reserve is not for them…
        assert_eq!(a.admit(host(3)), Err(Refused::Full(90)));
        // …but for sources holding fewer than four: ten browsers' first connections.
        for i in 0..10u32 {
            let got = a
                .admit(Source::of(IpAddr::V4((0xc000_0200 + i).into())))
                .unwrap();
            a.sent_request(got.id);
        }
        assert_eq!(a.admit(src("192.0.2.200")), Err(Refused::Full(100)));
        // Released places come back.
        a.release(first);
        assert!(a.admit(src("192.0.2.200")).is_ok());
        assert_eq!(a.total(), 100);
    }

    #[test]
    fn a_full_house_displaces_the_oldest_connection_that_sent_nothing() {
        let limits = Limits {
            total: 100,
            per_source: 32,
            reserved: 10,
            small_source: 4,
        };
        let mut a = Admission::new(limits);
        // 250 addresses, round after round, never sending a request: each stays within
        // its share and the reserve's rule, and they fill every place.
        let bot = |n: u32| Source::of(IpAddr::V4((0x0a00_0000 + n % 250).into()));
        let ids: Vec<u64> = (0..100).map(|i| a.admit(bot(i)).unwrap().id).collect();
        assert_eq!(a.total(), 100);
        // A browser that sends its request at once is admitted in place of the oldest
        // silent one, and once it has sent, it is not displaced in turn.
        let browser = a.admit(src("192.0.2.10")).unwrap();
        assert_eq!(browser.evicted, Some(ids[0]));
        a.sent_request(browser.id);
        assert_eq!(a.total(), 100);
        // The displaced connection's end changes nothing.
        a.release(ids[0]);
        assert_eq!(a.total(), 100);
        // The bots keep coming: each displaces the oldest silent one, never the browser.
        for i in 100..1000 {
            let got = a.admit(bot(i)).unwrap();
            assert_ne!(got.evicted, Some(browser.id));
            assert!(got.evicted.is_some());
        }
        assert!(a.is_held(browser.id));
        // When everyone has sent a request, a full house refuses.
        let mut b = Admission::new(limits);
        for i in 0..100 {
            let id = b.admit(bot(i)).unwrap().id;
            b.sent_request(id);
        }
        assert_eq!(b.admit(src("192.0.2.10")), Err(Refused::Full(100)));
    }
}
