//! The I/O of one real-server health check (Piranha's nanny probe): one
//! [`Probe::run`] is one check, returning an [`Outcome`] that says what it saw. The
//! up/down policy (fall/rise) lives in [`crate::pulse::logic::nanny`]; nothing here remembers earlier
//! checks.
//!
//! Kinds, from the effective
//! [`CheckSettings`](crate::config::model::CheckSettings) of a real server:
//! - **tcp**: connect, then close (SCTP services: an SCTP association instead).
//! - **send/expect** (tcp with `send` or `expect`): connect, write `send`, read the
//!   reply until `expect` is decided. `expect` is a prefix of the reply (Piranha), `*`
//!   any reply, or with `use_regex = 1` an extended regular expression searched in it.
//!   Unlike nanny's single `read()`, a reply split over several segments still matches.
//! - **udp**: a connected datagram socket sends `send` (an empty datagram if unset).
//!   Without `expect` the check passes unless an ICMP port unreachable comes back within
//!   the timeout; with it, a datagram that matches is needed.
//! - **program**: `send_program` split into words (no shell), `%h`/`%p` replaced, run
//!   with stdin on /dev/null; it must exit 0 within the timeout (else its process group
//!   is killed). With `expect`, its output (one trailing newline removed) must also
//!   *equal* `expect` (Piranha's `strcmp`), be non-empty for `*`, or match the regex.
//!   Unlike nanny, an unset `expect` does not fail every check, and a failed program
//!   does not pass when `expect` is set. With `dynamic_weight = 1` (keepalived's
//!   `misc_dynamic`) an exit status of 2 to 255 passes as well and sets the server's
//!   weight to status − 2; 0 passes with the configured weight.
//! - **http/https**: `GET check_path` with a `Host` header, the status in
//!   `check_status`, the first MiB of the body matching `check_regex` and the whole
//!   body's MD5 equal to `check_digest` when set. With `check_url`, each page in turn
//!   on its own connection (each with the whole timeout, as keepalived's `url`
//!   blocks); the first page that fails fails the check.
//!   HTTPS does not verify the certificate (real servers are addressed by IP and often
//!   self-signed; keepalived does not verify either) but sends `check_host` as SNI when
//!   it is a name.
//! - **dns**: a query for `check_dns_name` (the root by default) of type
//!   `check_dns_type` (SOA) over UDP, as keepalived's DNS_CHECK: a response with the
//!   query's id and response code 0 passes.
//! - **ping**: an ICMP/ICMPv6 echo (unprivileged ping socket where
//!   `net.ipv4.ping_group_range` allows, a raw socket otherwise), repeated every second
//!   until a reply or the timeout.
//!
//! Nanny's quirk of turning a plain connect check on port 80 into `GET / HTTP/1.0` is
//! not reproduced: `check = http` says it explicitly.
//!
//! Files: this one holds what every kind shares (the [`Probe`] and its [`Outcome`],
//! [`Expect`], the stage a timeout reports, socket error wording); `settings` builds a
//! probe from `lvs.cf` (or says why not: [`CheckSettingsError`]) and gives its
//! identity; then one file per kind family: `tcp`
//! (tcp, SCTP and send/expect), `udp`, `program`, `http` (HTTP and HTTPS), `ping`,
//! `dns`.

mod dns;
mod http;
mod ping;
mod program;
mod settings;
mod tcp;
#[cfg(test)]
mod testing;
mod udp;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::config::value::Secs;
use crate::pulse::io::scripts::Policy;
pub use crate::pulse::logic::argv::{split_words, substitute};
pub use http::hex_digest;
use http::{http_exchange, server_name, tls_connector, HttpRequest};
use ping::{ping, ping_socket_kind};
use program::program;
pub use program::{run_program, ProgramOutput};
pub use settings::{parse_digest, CheckSettingsError};
use tcp::{connect, read_expect};
use udp::udp;

/// What a reply must look like.
#[derive(Debug, Clone)]
pub enum Expect {
    /// `*`: any reply (at least one byte).
    Any,
    /// The reply starts with these bytes (Piranha's plain `expect`).
    Prefix(Vec<u8>),
    /// The whole output equals these bytes (program checks, Piranha's `strcmp`).
    Exact(Vec<u8>),
    /// `use_regex = 1`: the regex matches somewhere in the reply.
    Regex(regex::bytes::Regex),
}

impl Expect {
    /// From `expect` (already unescaped) and `use_regex`; `exact` for program output.
    fn new(text: &str, regex: bool, exact: bool) -> Result<Option<Expect>, CheckSettingsError> {
        Ok(match text {
            // An empty expectation would pass on nothing at all: treat it as unset.
            "" => None,
            "*" => Some(Expect::Any),
            _ if regex => Some(Expect::Regex(build_regex(text).map_err(|error| {
                CheckSettingsError::Regex {
                    keyword: "expect",
                    pattern: text.to_string(),
                    error,
                }
            })?)),
            _ if exact => Some(Expect::Exact(text.as_bytes().to_vec())),
            _ => Some(Expect::Prefix(text.as_bytes().to_vec())),
        })
    }

    /// Whether `reply` (complete when `end`) matches; `None` while it cannot tell yet.
    pub fn decide(&self, reply: &[u8], end: bool) -> Option<bool> {
        match self {
            Expect::Any if !reply.is_empty() => Some(true),
            Expect::Prefix(p) if reply.len() >= p.len() => Some(reply.starts_with(p)),
            // A wrong first byte fails at once instead of waiting for the timeout.
            Expect::Prefix(p) if !p.starts_with(reply) => Some(false),
            Expect::Regex(r) if r.is_match(reply) => Some(true),
            Expect::Exact(p) if end => Some(reply == p.as_slice()),
            _ if end => Some(false),
            _ => None,
        }
    }

    fn identity(&self) -> String {
        match self {
            Expect::Any => "*".into(),
            Expect::Prefix(p) => format!("prefix {}", show(p, usize::MAX)),
            Expect::Exact(p) => format!("exact {}", show(p, usize::MAX)),
            Expect::Regex(r) => format!("regex {:?}", r.as_str()),
        }
    }
}

/// Why a check's regular expression cannot be used. Each is one line: the regex
/// crate's own syntax message draws a caret diagram over several lines, which logs and
/// the UI cannot show.
#[derive(Debug, thiserror::Error)]
pub enum RegexError {
    /// The pattern does not parse: the last line of the regex crate's message.
    #[error("{0}")]
    Syntax(String),
    /// Compiled, it would exceed the size limit (bytes).
    #[error("too complex (compiled, it would exceed {0} bytes)")]
    TooComplex(usize),
    /// Whatever else a later regex crate reports (its error type is non-exhaustive).
    #[error(transparent)]
    Other(regex::Error),
}

/// Compiles a check's regex.
fn build_regex(text: &str) -> Result<regex::bytes::Regex, RegexError> {
    // Bounded so that a pathological pattern cannot eat the daemon's memory.
    regex::bytes::RegexBuilder::new(text)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::Syntax(s) => RegexError::Syntax(
                s.lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string(),
            ),
            regex::Error::CompiledTooBig(limit) => RegexError::TooComplex(limit),
            e => RegexError::Other(e),
        })
}

/// The whole body's MD5 (keepalived's `digest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// The check fails unless the body has this one (`check_digest`).
    Expect([u8; 16]),
    /// Said in the outcome's detail (`lvs-director genhash`).
    Report,
}

/// One page of an HTTP(S) check (`check_path`, or an element of `check_url`).
#[derive(Debug, Clone)]
pub struct HttpUrl {
    /// Request target, e.g. `/health?full=1`.
    pub path: String,
    /// The `Host` header: `check_host`, else the address (and port when not the
    /// scheme's default). The TLS server name is taken from it when it is a name.
    pub host: String,
    /// Accepted status ranges, inclusive.
    pub status: Vec<(u16, u16)>,
    /// Searched in the first MiB of the body.
    pub body: Option<regex::bytes::Regex>,
    /// What to do with the MD5 of the whole body.
    pub digest: Option<Digest>,
}

/// What a check does (see the module documentation).
#[derive(Debug, Clone)]
pub enum ProbeKind {
    /// Connect, then close.
    Tcp,
    /// Connect, write `send`, read until `expect` is decided.
    SendExpect {
        send: Option<Vec<u8>>,
        expect: Option<Expect>,
    },
    /// A connected UDP socket; see the module documentation.
    Udp {
        send: Vec<u8>,
        expect: Option<Expect>,
    },
    /// A program, `%h` and `%p` already replaced; exit 0 passes.
    Program {
        argv: Vec<String>,
        expect: Option<Expect>,
        /// keepalived's `misc_dynamic`: an exit status of 2 to 255 passes too and
        /// sets the weight to status − 2.
        dynamic: bool,
    },
    /// One `GET` per page, each on its own connection, in turn; every page must pass.
    Http { tls: bool, urls: Vec<HttpUrl> },
    /// ICMP or ICMPv6 echo.
    Ping,
    /// A DNS query over UDP (keepalived's DNS_CHECK): the question's name in wire
    /// form and its type.
    Dns { qname: Vec<u8>, qtype: u16 },
}

/// One health check of one real server.
#[derive(Debug, Clone)]
pub struct Probe {
    pub kind: ProbeKind,
    pub addr: IpAddr,
    /// The port checked (`check_port`, else the real server's); unused by ping and by
    /// programs (whose `%p` is already replaced).
    pub port: u16,
    /// The stream kinds ([`ProbeKind::Tcp`], [`ProbeKind::SendExpect`]) open an SCTP
    /// association instead of a TCP connection (the service's protocol is SCTP).
    pub sctp: bool,
    /// The whole check, connection and reply included, ends within it.
    pub timeout: Duration,
    /// The address the stream, HTTP and UDP kinds connect from (`check_source`,
    /// keepalived's `bindto`); unset: the kernel chooses.
    pub source: Option<IpAddr>,
    /// What a program check may run, checked again before every run. Restricted to
    /// the default scripts directory unless the supervisor says otherwise.
    pub policy: Arc<Policy>,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// The check could not run here (this director is out of file descriptors): it
    /// says nothing about the server and must not count against it.
    pub inconclusive: bool,
    /// What the check saw, for logs and the UI: "connection refused", "status 503",
    /// "timed out after 2 s while connecting", "exit status 3: …".
    pub detail: String,
    pub elapsed: Duration,
    /// The weight this check gives the server (a `dynamic_weight` program's exit
    /// status − 2); `None`: its configured weight.
    pub weight: Option<u32>,
}

/// Longest reply kept for matching a send/expect or UDP `expect`.
const MAX_REPLY: usize = 64 * 1024;

impl Probe {
    /// Runs the check once. Never panics; ends within the timeout (plus the moment it
    /// takes to kill a program).
    pub async fn run(&self) -> Outcome {
        let start = Instant::now();
        let deadline = start + self.budget();
        let stage = Stage::default();
        let weight = SetWeight::default();
        let result =
            tokio::time::timeout_at(deadline, self.attempt(deadline, &stage, &weight)).await;
        let (ok, detail) = match result {
            Ok(Ok(detail)) => (true, detail),
            Ok(Err(detail)) => (false, detail),
            Err(_) => (
                false,
                format!(
                    "timed out after {} s {}",
                    Secs(self.timeout.as_millis() as u64),
                    stage.name()
                ),
            ),
        };
        Outcome {
            ok,
            inconclusive: !ok && detail.starts_with(OUT_OF_DESCRIPTORS),
            detail,
            elapsed: start.elapsed(),
            weight: weight.get().filter(|_| ok),
        }
    }

    async fn attempt(
        &self,
        deadline: Instant,
        stage: &Stage,
        weight: &SetWeight,
    ) -> Result<String, String> {
        let target = SocketAddr::new(self.addr, self.port);
        match &self.kind {
            ProbeKind::Tcp => {
                let stream = connect(target, self.sctp, self.source).await?;
                // Closed with a reset, as HAProxy's checks do: a check every second per
                // server would otherwise leave thousands of TIME_WAIT sockets here and
                // cost a FIN exchange each.
                let _ = stream.set_zero_linger();
                Ok("connected".into())
            }
            ProbeKind::SendExpect { send, expect } => {
                let mut stream = connect(target, self.sctp, self.source).await?;
                if let Some(send) = send {
                    stage.set(Stage::SENDING);
                    stream
                        .write_all(send)
                        .await
                        .map_err(|e| format!("sending: {}", io_detail(&e)))?;
                }
                let Some(expect) = expect else {
                    return Ok(match send {
                        Some(s) => format!("connected, sent {} bytes", s.len()),
                        None => "connected".into(),
                    });
                };
                stage.set(Stage::REPLY);
                read_expect(&mut stream, expect).await
            }
            ProbeKind::Udp { send, expect } => {
                stage.set(Stage::REPLY);
                udp(
                    target,
                    self.source,
                    send,
                    expect.as_ref(),
                    deadline,
                    self.timeout,
                )
                .await
            }
            ProbeKind::Program {
                argv,
                expect,
                dynamic,
            } => {
                stage.set(Stage::PROGRAM);
                let (detail, set) = program(argv, expect.as_ref(), *dynamic, &self.policy).await?;
                if let Some(w) = set {
                    weight.set(w);
                }
                Ok(detail)
            }
            ProbeKind::Http { tls, urls } => {
                let [url] = urls.as_slice() else {
                    return self.pages(*tls, urls).await;
                };
                self.page(*tls, url, stage).await
            }
            ProbeKind::Dns { qname, qtype } => {
                stage.set(Stage::REPLY);
                dns::dns(target, self.source, qname, *qtype).await
            }
            ProbeKind::Ping => {
                stage.set(Stage::ECHO);
                ping(self.addr, ping_socket_kind(self.addr)).await
            }
        }
    }
}

impl Probe {
    /// One page: connect, (TLS,) `GET`, judge the answer.
    async fn page(&self, tls: bool, url: &HttpUrl, stage: &Stage) -> Result<String, String> {
        let tcp = connect(SocketAddr::new(self.addr, self.port), false, self.source).await?;
        // Closed with a reset once the answer is judged (see http's Unshut).
        let _ = tcp.set_zero_linger();
        let request = HttpRequest {
            path: &url.path,
            host: &url.host,
            status: &url.status,
            body: url.body.as_ref(),
            digest: url.digest.as_ref(),
        };
        if tls {
            stage.set(Stage::TLS);
            let connector = tls_connector()?;
            let stream = connector
                .connect(server_name(&url.host, self.addr), tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            http_exchange(stream, request, stage).await
        } else {
            http_exchange(tcp, request, stage).await
        }
    }

    /// Several pages in turn, as keepalived checks its `url` blocks: each has the whole
    /// timeout to itself, and the first that fails decides.
    async fn pages(&self, tls: bool, urls: &[HttpUrl]) -> Result<String, String> {
        let mut said = Vec::with_capacity(urls.len());
        for url in urls {
            let stage = Stage::default();
            let detail = match tokio::time::timeout(self.timeout, self.page(tls, url, &stage)).await
            {
                Ok(Ok(detail)) => detail,
                Ok(Err(detail)) => return Err(format!("{}: {detail}", url.path)),
                Err(_) => {
                    return Err(format!(
                        "{}: timed out after {} s {}",
                        url.path,
                        Secs(self.timeout.as_millis() as u64),
                        stage.name()
                    ))
                }
            };
            said.push(format!("{}: {detail}", url.path));
        }
        Ok(said.join("; "))
    }

    /// How long one check may take in all: a timeout per connection it opens.
    fn budget(&self) -> Duration {
        match &self.kind {
            ProbeKind::Http { urls, .. } if urls.len() > 1 => {
                self.timeout.saturating_mul(urls.len() as u32)
            }
            _ => self.timeout,
        }
    }
}

/// The weight a check sets, written from inside the timed future (atomic so that
/// `run` stays `Send`); `u32::MAX` is none.
struct SetWeight(std::sync::atomic::AtomicU32);

impl Default for SetWeight {
    fn default() -> Self {
        SetWeight(std::sync::atomic::AtomicU32::new(u32::MAX))
    }
}

impl SetWeight {
    fn set(&self, w: u32) {
        self.0.store(w, Ordering::Relaxed);
    }
    fn get(&self) -> Option<u32> {
        Some(self.0.load(Ordering::Relaxed)).filter(|w| *w != u32::MAX)
    }
}

/// How far a check got, for the detail of a timeout. Atomic so that `run` stays `Send`.
#[derive(Default)]
struct Stage(AtomicU8);

impl Stage {
    const CONNECTING: u8 = 0;
    const SENDING: u8 = 1;
    const REPLY: u8 = 2;
    const PROGRAM: u8 = 3;
    const TLS: u8 = 4;
    const RESPONSE: u8 = 5;
    const BODY: u8 = 6;
    const ECHO: u8 = 7;

    fn set(&self, s: u8) {
        self.0.store(s, Ordering::Relaxed);
    }
    fn name(&self) -> &'static str {
        match self.0.load(Ordering::Relaxed) {
            Stage::CONNECTING => "while connecting",
            Stage::SENDING => "while sending",
            Stage::REPLY => "waiting for the reply",
            Stage::PROGRAM => "waiting for the program (killed)",
            Stage::TLS => "in the TLS handshake",
            Stage::RESPONSE => "waiting for the HTTP response",
            Stage::BODY => "reading the HTTP body",
            _ => "waiting for an echo reply",
        }
    }
}

/// The start of the detail of a check that failed for want of file descriptors here.
pub const OUT_OF_DESCRIPTORS: &str = "this director is out of file descriptors";

/// A short, printable rendering of received or configured bytes.
fn show(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let more = if cut.len() < bytes.len() { "…" } else { "" };
    format!("\"{}\"{more}", cut.escape_ascii())
}

/// The words users know for the common socket errors.
fn io_detail(e: &io::Error) -> String {
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        return format!("{OUT_OF_DESCRIPTORS} ({e})");
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => e.to_string(),
    }
}
