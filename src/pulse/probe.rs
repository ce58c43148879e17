//! The I/O of one real-server health check (Piranha's nanny probe): one
//! [`Probe::run`] is one check, returning an [`Outcome`] that says what it saw. The
//! up/down policy (fall/rise) lives in [`super::nanny`]; nothing here remembers earlier
//! checks.
//!
//! Kinds, from the effective [`CheckSettings`] of a real server:
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
//!   does not pass when `expect` is set.
//! - **http/https**: `GET check_path` with a `Host` header, the status in
//!   `check_status`, and the first MiB of the body matching `check_regex` when set.
//!   HTTPS does not verify the certificate (real servers are addressed by IP and often
//!   self-signed; keepalived does not verify either) but sends `check_host` as SNI when
//!   it is a name.
//! - **ping**: an ICMP/ICMPv6 echo (unprivileged ping socket where
//!   `net.ipv4.ping_group_range` allows, a raw socket otherwise), repeated every second
//!   until a reply or the timeout.
//!
//! Nanny's quirk of turning a plain connect check on port 80 into `GET / HTTP/1.0` is
//! not reproduced: `check = http` says it explicitly.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::command::shown_output;
use super::scripts::Policy;
use crate::config::model::CheckSettings;
use crate::config::value::{CheckKind, Protocol, Secs};

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
    fn new(text: &str, regex: bool, exact: bool) -> Result<Option<Expect>, String> {
        Ok(match text {
            // An empty expectation would pass on nothing at all: treat it as unset.
            "" => None,
            "*" => Some(Expect::Any),
            _ if regex => Some(Expect::Regex(build_regex(text).map_err(|e| {
                format!("expect: invalid regular expression `{text}`: {e}")
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

/// Compiles a check's regex; the error is one line (the regex crate's own message
/// draws a caret diagram over several lines), for logs and the UI.
fn build_regex(text: &str) -> Result<regex::bytes::Regex, String> {
    // Bounded so that a pathological pattern cannot eat the daemon's memory.
    regex::bytes::RegexBuilder::new(text)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::Syntax(s) => s
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string(),
            regex::Error::CompiledTooBig(limit) => {
                format!("too complex (compiled, it would exceed {limit} bytes)")
            }
            e => e.to_string(),
        })
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
    },
    Http {
        tls: bool,
        /// Request target, e.g. `/health?full=1`.
        path: String,
        /// The `Host` header: `check_host`, else the address (and port when not the
        /// scheme's default). The TLS server name is taken from it when it is a name.
        host: String,
        /// Accepted status ranges, inclusive.
        status: Vec<(u16, u16)>,
        /// Searched in the first MiB of the body.
        body: Option<regex::bytes::Regex>,
    },
    /// ICMP or ICMPv6 echo.
    Ping,
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
}

/// Longest reply kept for matching a send/expect or UDP `expect`.
const MAX_REPLY: usize = 64 * 1024;
/// Longest HTTP body read for `check_regex`.
const MAX_BODY: usize = 1024 * 1024;
/// Longest program output kept (stdout for `expect`, stderr for the detail); the rest
/// is read and dropped so that the program never blocks on a full pipe.
const MAX_OUTPUT: usize = 64 * 1024;

impl Probe {
    /// The check of one real server, from its effective check settings (the virtual
    /// server's [`CheckSettings`] overlaid by the server's), the protocol of the virtual
    /// server, and the real server's address and port (`check_port` overrides the
    /// port). `None` for `check = none`. Errors name the keyword and why.
    pub fn from_settings(
        check: &CheckSettings,
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    ) -> Result<Option<Probe>, String> {
        let timeout = check.timeout();
        if timeout.is_zero() {
            return Err("timeout: must be more than 0 seconds".into());
        }
        let port = match &check.check_port {
            None => port,
            Some(p) => p
                .number()
                .ok_or_else(|| format!("check_port: unknown service name `{p}`"))?,
        };
        let regex = check.use_regex.unwrap_or(false);
        let expect_text = check.expect.as_ref().map(|e| e.0.as_str());
        let send = check.send.as_ref().map(|s| s.0.as_bytes().to_vec());
        let kind = match check.kind(protocol) {
            CheckKind::None => return Ok(None),
            CheckKind::Tcp if send.is_none() && expect_text.is_none() => ProbeKind::Tcp,
            CheckKind::Tcp => ProbeKind::SendExpect {
                send,
                expect: expect_text
                    .map(|e| Expect::new(e, regex, false))
                    .transpose()?
                    .flatten(),
            },
            CheckKind::Udp => ProbeKind::Udp {
                send: send.unwrap_or_default(),
                expect: expect_text
                    .map(|e| Expect::new(e, regex, false))
                    .transpose()?
                    .flatten(),
            },
            CheckKind::Program => {
                let line = check
                    .send_program
                    .as_ref()
                    .ok_or("send_program: required by `check = program` (the command to run)")?;
                let words = split_words(&line.0).map_err(|e| format!("send_program: {e}"))?;
                if words.is_empty() {
                    return Err("send_program: the command is empty".into());
                }
                ProbeKind::Program {
                    argv: substitute(&words, addr, port, false),
                    expect: expect_text
                        .map(|e| Expect::new(e, regex, true))
                        .transpose()?
                        .flatten(),
                }
            }
            kind @ (CheckKind::Http | CheckKind::Https) => {
                let tls = kind == CheckKind::Https;
                let path = check.check_path.as_ref().map_or("/", |p| p.0.as_str());
                let valid_path = path.starts_with('/')
                    && path
                        .parse::<hyper::Uri>()
                        .is_ok_and(|u| u.scheme().is_none() && u.authority().is_none());
                if !valid_path {
                    return Err(format!(
                        "check_path: `{path}` is not a request path (it must start with / and contain no blanks)"
                    ));
                }
                let default_port = if tls { 443 } else { 80 };
                let host = match &check.check_host {
                    Some(h) => h.0.clone(),
                    None => {
                        let a = match addr {
                            IpAddr::V4(a) => a.to_string(),
                            IpAddr::V6(a) => format!("[{a}]"),
                        };
                        if port == default_port {
                            a
                        } else {
                            format!("{a}:{port}")
                        }
                    }
                };
                if hyper::header::HeaderValue::from_str(&host).is_err() {
                    return Err(format!(
                        "check_host: `{host}` cannot be sent as a Host header"
                    ));
                }
                let body = match &check.check_regex {
                    None => None,
                    Some(r) => Some(build_regex(&r.0).map_err(|e| {
                        format!("check_regex: invalid regular expression `{}`: {e}", r.0)
                    })?),
                };
                ProbeKind::Http {
                    tls,
                    path: path.to_string(),
                    host,
                    status: check
                        .check_status
                        .as_ref()
                        .map_or_else(|| vec![(200, 299)], |s| s.0.clone()),
                    body,
                }
            }
            CheckKind::Ping => ProbeKind::Ping,
        };
        Ok(Some(Probe {
            kind,
            addr,
            port,
            sctp: protocol == Protocol::Sctp,
            timeout: timeout.as_duration(),
            policy: Arc::default(),
        }))
    }

    /// A canonical text of everything the check does, so that identical checks of the
    /// same real server under several virtual servers run once. The port is left out
    /// where it plays no part (ping, programs).
    pub fn identity(&self) -> String {
        let target = SocketAddr::new(self.addr, self.port);
        let mut s = match &self.kind {
            ProbeKind::Tcp => {
                format!("{} {target}", if self.sctp { "sctp" } else { "tcp" })
            }
            ProbeKind::SendExpect { send, expect } => {
                let mut s = format!(
                    "{}-send-expect {target}",
                    if self.sctp { "sctp" } else { "tcp" }
                );
                if let Some(send) = send {
                    let _ = write!(s, " send {}", show(send, usize::MAX));
                }
                if let Some(e) = expect {
                    let _ = write!(s, " expect {}", e.identity());
                }
                s
            }
            ProbeKind::Udp { send, expect } => {
                let mut s = format!("udp {target} send {}", show(send, usize::MAX));
                if let Some(e) = expect {
                    let _ = write!(s, " expect {}", e.identity());
                }
                s
            }
            ProbeKind::Program { argv, expect } => {
                let mut s = format!("program {argv:?}");
                if let Some(e) = expect {
                    let _ = write!(s, " expect {}", e.identity());
                }
                s
            }
            ProbeKind::Http {
                tls,
                path,
                host,
                status,
                body,
            } => {
                let mut s = format!(
                    "{} {target} GET {path:?} host {host:?} status {status:?}",
                    if *tls { "https" } else { "http" }
                );
                if let Some(r) = body {
                    let _ = write!(s, " body {:?}", r.as_str());
                }
                s
            }
            ProbeKind::Ping => format!("ping {}", self.addr),
        };
        let _ = write!(s, " timeout {}", Secs(self.timeout.as_millis() as u64));
        s
    }

    /// Runs the check once. Never panics; ends within the timeout (plus the moment it
    /// takes to kill a program).
    pub async fn run(&self) -> Outcome {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let stage = Stage::default();
        let result = tokio::time::timeout_at(deadline, self.attempt(deadline, &stage)).await;
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
        }
    }

    async fn attempt(&self, deadline: Instant, stage: &Stage) -> Result<String, String> {
        let target = SocketAddr::new(self.addr, self.port);
        match &self.kind {
            ProbeKind::Tcp => {
                let stream = connect(target, self.sctp).await?;
                // Closed with a reset, as HAProxy's checks do: a check every second per
                // server would otherwise leave thousands of TIME_WAIT sockets here and
                // cost a FIN exchange each.
                let _ = stream.set_zero_linger();
                Ok("connected".into())
            }
            ProbeKind::SendExpect { send, expect } => {
                let mut stream = connect(target, self.sctp).await?;
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
                udp(target, send, expect.as_ref(), deadline, self.timeout).await
            }
            ProbeKind::Program { argv, expect } => {
                stage.set(Stage::PROGRAM);
                program(argv, expect.as_ref(), &self.policy).await
            }
            ProbeKind::Http {
                tls,
                path,
                host,
                status,
                body,
            } => {
                let tcp = connect(target, false).await?;
                let request = HttpRequest {
                    path,
                    host,
                    status,
                    body: body.as_ref(),
                };
                if *tls {
                    stage.set(Stage::TLS);
                    let connector = tls_connector()?;
                    let stream = connector
                        .connect(server_name(host, self.addr), tcp)
                        .await
                        .map_err(|e| format!("TLS handshake: {e}"))?;
                    http_exchange(stream, request, stage).await
                } else {
                    http_exchange(tcp, request, stage).await
                }
            }
            ProbeKind::Ping => {
                stage.set(Stage::ECHO);
                ping(self.addr, ping_socket_kind(self.addr)).await
            }
        }
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

async fn connect(target: SocketAddr, sctp: bool) -> Result<TcpStream, String> {
    let stream = if sctp {
        sctp_connect(target).await
    } else {
        TcpStream::connect(target).await
    };
    stream.map_err(|e| io_detail(&e))
}

/// An SCTP one-to-one association, driven through tokio's stream type: the socket is
/// a `SOCK_STREAM`, so reads, writes and readiness behave as for TCP.
async fn sctp_connect(target: SocketAddr) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::from(libc::IPPROTO_SCTP)),
    )?;
    socket.set_nonblocking(true)?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    stream.peer_addr()?;
    Ok(stream)
}

/// Reads until `expect` is decided, the peer closes, or [`MAX_REPLY`] bytes.
async fn read_expect<R: AsyncRead + Unpin>(
    stream: &mut R,
    expect: &Expect,
) -> Result<String, String> {
    let mut reply = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the reply: {}", io_detail(&e)))?;
        reply.extend_from_slice(&chunk[..n]);
        let end = n == 0 || reply.len() >= MAX_REPLY;
        match expect.decide(&reply, end) {
            Some(true) => return Ok(format!("reply matched expect ({} bytes)", reply.len())),
            Some(false) if reply.is_empty() => {
                return Err("connection closed without a reply".into())
            }
            Some(false) => return Err(format!("reply did not match expect: {}", show(&reply, 80))),
            None => {}
        }
    }
}

async fn udp(
    target: SocketAddr,
    send: &[u8],
    expect: Option<&Expect>,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("socket: {e}"))?;
    socket.connect(target).await.map_err(|e| io_detail(&e))?;
    socket.send(send).await.map_err(|e| io_detail(&e))?;
    // The verdict is due before `run`'s own timeout, which would call it a failure.
    let margin = (timeout / 10).min(Duration::from_millis(100));
    let quiet_until = deadline - margin;
    let mut buf = vec![0u8; MAX_REPLY];
    let mut mismatch: Option<String> = None;
    loop {
        let n = match tokio::time::timeout_at(quiet_until, socket.recv(&mut buf)).await {
            Err(_) => {
                let secs = Secs(timeout.as_millis() as u64);
                return match (expect, mismatch) {
                    (None, _) => Ok(format!("no ICMP port unreachable within {secs} s")),
                    (Some(_), Some(m)) => Err(m),
                    (Some(_), None) => Err(format!("no reply within {secs} s")),
                };
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err("port unreachable (ICMP)".into())
            }
            Ok(Err(e)) => return Err(io_detail(&e)),
            Ok(Ok(n)) => n,
        };
        let reply = &buf[..n];
        match expect {
            None => return Ok(format!("reply of {n} bytes")),
            Some(e) if e.decide(reply, true) == Some(true) => {
                return Ok(format!("reply matched expect ({n} bytes)"))
            }
            // Another datagram may still match (a stale reply, a retransmission).
            Some(_) => mismatch = Some(format!("reply did not match expect: {}", show(reply, 80))),
        }
    }
}

// ---- programs ----

/// Splits a command line into words without a shell: blanks separate words; `'…'`
/// keeps its text verbatim and `"…"` too, except `\"` and `\\`; outside quotes a
/// backslash escapes a blank, a quote or a backslash and is kept otherwise (so that
/// regex arguments such as `1\.[01]` survive, as with Piranha, which split on blanks).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err(format!("no closing {c} in `{line}`")),
                        Some(d) if d == c => break,
                        Some('\\') if c == '"' && matches!(chars.peek(), Some('"' | '\\')) => {
                            w.extend(chars.next());
                        }
                        Some(d) => w.push(d),
                    }
                }
            }
            '\\' if matches!(chars.peek(), Some(' ' | '\t' | '\'' | '"' | '\\')) => {
                word.get_or_insert_with(String::new).extend(chars.next());
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Replaces `%h` with the address and `%p` with the port in every word; with
/// `append_address`, the address is added as a last word when no word held `%h`/`%p`.
pub fn substitute(words: &[String], addr: IpAddr, port: u16, append_address: bool) -> Vec<String> {
    let (h, p) = (addr.to_string(), port.to_string());
    let mut found = false;
    let mut out: Vec<String> = words
        .iter()
        .map(|w| {
            found |= w.contains("%h") || w.contains("%p");
            w.replace("%h", &h).replace("%p", &p)
        })
        .collect();
    if append_address && !found {
        out.push(h);
    }
    out
}

/// What a program printed and how it ended.
#[derive(Debug)]
pub struct ProgramOutput {
    pub status: std::process::ExitStatus,
    /// At most 64 KiB of standard output.
    pub stdout: Vec<u8>,
    /// At most 64 KiB of standard error.
    pub stderr: Vec<u8>,
}

impl ProgramOutput {
    /// "exit status 3: <first line of stderr>" or "killed by signal 9"; the line as
    /// [`shown_output`] shows output (marked, so that viewers do not see it).
    pub fn failure(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let mut s = match (self.status.code(), self.status.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => self.status.to_string(),
        };
        let err = String::from_utf8_lossy(&self.stderr);
        if let Some(line) = err.lines().map(str::trim).find(|l| !l.is_empty()) {
            let _ = write!(s, ": {}", shown_output(line.as_bytes()));
        }
        s
    }
}

/// Kills a program's process group when dropped before the program was reaped (a
/// check cancelled by its timeout), so that its children go too.
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours. The
            // group still exists: its leader is our child, not yet reaped.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Runs `argv` without a shell, stdin on /dev/null, in its own process group, if its
/// program passes `policy` now (PATH is searched only under [`Policy::Any`]).
/// Cancel-safe: dropping the future kills the group. The caller bounds the time.
pub async fn run_program(argv: &[String], policy: &Policy) -> Result<ProgramOutput, String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let program = policy.check(prog).map_err(|e| format!("not run: {e}"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let mut guard = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (status, stdout, stderr) =
        tokio::join!(child.wait(), read_limited(stdout), read_limited(stderr));
    // `wait` returned: the child is reaped and its pid may be reused; never kill it.
    guard.0 = None;
    let status = status.map_err(|e| format!("waiting for {prog}: {e}"))?;
    Ok(ProgramOutput {
        status,
        stdout,
        stderr,
    })
}

/// Reads a pipe to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn read_limited<R: AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else { return kept };
    let mut chunk = vec![0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

async fn program(
    argv: &[String],
    expect: Option<&Expect>,
    policy: &Policy,
) -> Result<String, String> {
    let out = run_program(argv, policy).await?;
    if !out.status.success() {
        return Err(out.failure());
    }
    let Some(expect) = expect else {
        return Ok("exit status 0".into());
    };
    // Piranha chopped the output's last character, assumed to be a newline.
    let mut stdout = out.stdout.as_slice();
    stdout = stdout.strip_suffix(b"\n").unwrap_or(stdout);
    stdout = stdout.strip_suffix(b"\r").unwrap_or(stdout);
    if expect.decide(stdout, true) == Some(true) {
        Ok("exit status 0, output matched expect".into())
    } else {
        Err(format!(
            "exit status 0 but the output did not match expect: {}",
            shown_output(stdout)
        ))
    }
}

// ---- HTTP(S) ----

struct HttpRequest<'a> {
    path: &'a str,
    host: &'a str,
    status: &'a [(u16, u16)],
    body: Option<&'a regex::bytes::Regex>,
}

/// One `GET` over an established connection (hyper's HTTP/1 client, one request per
/// connection).
async fn http_exchange<S>(io: S, req: HttpRequest<'_>, stage: &Stage) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    use hyper::header;

    stage.set(Stage::RESPONSE);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
    let request = hyper::Request::get(req.path)
        .header(header::HOST, req.host)
        .header(header::USER_AGENT, "lvs-director-check")
        .header(header::CONNECTION, "close")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| format!("HTTP request: {e}"))?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let code = response.status().as_u16();
        if !req.status.iter().any(|&(lo, hi)| lo <= code && code <= hi) {
            return Err(format!("status {code}"));
        }
        let Some(regex) = req.body else {
            return Ok(format!("status {code}"));
        };
        stage.set(Stage::BODY);
        let mut body = response.into_body();
        let mut data = Vec::new();
        while data.len() < MAX_BODY {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| format!("status {code}, reading the body: {e}"))?;
            if let Ok(chunk) = frame.into_data() {
                data.extend_from_slice(&chunk);
            }
        }
        data.truncate(MAX_BODY);
        if regex.is_match(&data) {
            Ok(format!("status {code}, body matched check_regex"))
        } else {
            Err(format!(
                "status {code} but the body did not match check_regex ({} bytes read)",
                data.len()
            ))
        }
    };
    // The connection must be driven while the exchange waits. Driven here rather than
    // spawned so that a timeout drops both: nothing outlives the check.
    tokio::pin!(conn, exchange);
    tokio::select! {
        biased;
        r = &mut exchange => r,
        c = &mut conn => match c {
            // Closed after a complete response (`Connection: close`): finish reading.
            Ok(()) => exchange.await,
            Err(e) => Err(format!("HTTP: {e}")),
        },
    }
}

/// The TLS server name: the `Host` header without its port when that is a DNS name
/// (sent as SNI), else the address (rustls sends no SNI for addresses).
fn server_name(host: &str, addr: IpAddr) -> tokio_rustls::rustls::pki_types::ServerName<'static> {
    use tokio_rustls::rustls::pki_types::ServerName;
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    match ServerName::try_from(name.to_string()) {
        Ok(n @ ServerName::DnsName(_)) => n,
        _ => ServerName::IpAddress(addr.into()),
    }
}

/// One TLS client configuration for every check (built once: 10,000 checks a second
/// must not each build one). Its session cache lets repeated checks resume.
fn tls_connector() -> Result<&'static tokio_rustls::TlsConnector, String> {
    static CONNECTOR: OnceLock<Result<tokio_rustls::TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            use tokio_rustls::rustls::{self, crypto::ring};
            let provider = Arc::new(ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Accepts any certificate, name and date: a health check asks whether the server
/// answers, not who it is (real servers are addressed by IP and often self-signed).
/// Handshake signatures are still verified, so the session itself is sound TLS.
#[derive(Debug)]
struct AnyCertificate(Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
        _server_name: &tokio_rustls::rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: tokio_rustls::rustls::pki_types::UnixTime,
    ) -> Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error>
    {
        Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---- ping ----

/// The kind of ICMP socket: an unprivileged "ping" datagram socket, or a raw one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IcmpSocket {
    Dgram,
    Raw,
}

/// Remembers per address family that ping sockets are refused here (the group is
/// outside `net.ipv4.ping_group_range`), so that later checks go straight to raw.
static PING_REFUSED: [AtomicU8; 2] = [AtomicU8::new(0), AtomicU8::new(0)];

fn ping_socket_kind(addr: IpAddr) -> IcmpSocket {
    if PING_REFUSED[usize::from(addr.is_ipv6())].load(Ordering::Relaxed) != 0 {
        IcmpSocket::Raw
    } else {
        IcmpSocket::Dgram
    }
}

fn open_icmp(addr: IpAddr, kind: IcmpSocket) -> io::Result<(socket2::Socket, IcmpSocket)> {
    use socket2::{Domain, Socket, Type};
    let (domain, proto) = match addr {
        IpAddr::V4(_) => (Domain::IPV4, socket2::Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, socket2::Protocol::ICMPV6),
    };
    if kind == IcmpSocket::Dgram {
        match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => return Ok((s, IcmpSocket::Dgram)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                PING_REFUSED[usize::from(addr.is_ipv6())].store(1, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    Socket::new(domain, Type::RAW, Some(proto)).map(|s| (s, IcmpSocket::Raw))
}

/// The Internet checksum (RFC 1071).
fn icmp_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends an echo request now and every second after, until a matching reply. The
/// caller bounds the time.
async fn ping(addr: IpAddr, kind: IcmpSocket) -> Result<String, String> {
    let (socket, kind) = open_icmp(addr, kind).map_err(|e| format!("ICMP socket: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("ICMP socket: {e}"))?;
    // Connected, the kernel passes this socket only what comes from `addr` (raw sockets
    // would otherwise each see every ICMP packet of the host).
    socket
        .connect(&SocketAddr::new(addr, 0).into())
        .map_err(|e| io_detail(&e))?;
    // Driven through tokio's datagram type: it only needs send(2), recv(2) and
    // readiness, which ICMP sockets (ping or raw) have like UDP ones.
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(|e| format!("ICMP socket: {e}"))?;

    let (request, reply) = if addr.is_ipv6() { (128, 129) } else { (8, 0) };
    // Ping sockets replace the identifier with their own and filter replies by it;
    // raw sockets need one of ours.
    let ident: u16 = rand::random();
    let token: [u8; 8] = rand::random();
    let mut sent: Vec<Instant> = Vec::new();
    let mut next_send = Instant::now();
    let mut buf = [0u8; 1500];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_send) => {
                let seq = (sent.len() + 1) as u16;
                let mut packet = vec![request, 0, 0, 0];
                packet.extend_from_slice(&ident.to_be_bytes());
                packet.extend_from_slice(&seq.to_be_bytes());
                packet.extend_from_slice(ECHO_DATA);
                packet.extend_from_slice(&token);
                if !addr.is_ipv6() {
                    // ICMPv6 checksums cover a pseudo-header: the kernel computes them.
                    let sum = icmp_checksum(&packet);
                    packet[2..4].copy_from_slice(&sum.to_be_bytes());
                }
                socket
                    .send(&packet)
                    .await
                    .map_err(|e| format!("sending the echo request: {}", io_detail(&e)))?;
                sent.push(Instant::now());
                next_send += Duration::from_secs(1);
            }
            n = socket.recv(&mut buf) => {
                let n = n.map_err(|e| io_detail(&e))?;
                let mut icmp = &buf[..n];
                // Raw IPv4 sockets deliver the IP header too.
                if kind == IcmpSocket::Raw && !addr.is_ipv6() {
                    let ihl = usize::from(icmp.first().map_or(0, |b| b & 0x0f)) * 4;
                    icmp = icmp.get(ihl..).unwrap_or_default();
                }
                let data_end = 8 + ECHO_DATA.len() + token.len();
                if icmp.len() != data_end || icmp[0] != reply || icmp[1] != 0 {
                    continue; // our own request on loopback, or someone else's packet
                }
                let seq = usize::from(u16::from_be_bytes([icmp[6], icmp[7]]));
                let ours = (kind == IcmpSocket::Dgram
                    || u16::from_be_bytes([icmp[4], icmp[5]]) == ident)
                    && icmp[8..8 + ECHO_DATA.len()] == *ECHO_DATA
                    && icmp[8 + ECHO_DATA.len()..] == token;
                if let Some(at) = sent.get(seq.wrapping_sub(1)).filter(|_| ours) {
                    let rtt = at.elapsed().as_secs_f64() * 1000.0;
                    return Ok(format!("echo reply (seq {seq}, {rtt:.2} ms)"));
                }
            }
        }
    }
}

/// The payload of our echo requests (followed by a random token per check).
const ECHO_DATA: &[u8] = b"lvs-director";

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::value::{Escaped, PortSpec, StatusSet, Text, Word};

    const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    /// The loopback addresses to test on: ::1 only where the host has IPv6.
    fn loopbacks() -> Vec<IpAddr> {
        let v6 = std::net::UdpSocket::bind((LO6, 0)).is_ok();
        if !v6 {
            eprintln!("skipped: no ::1 here");
        }
        [LO4, LO6]
            .into_iter()
            .filter(|a| a.is_ipv4() || v6)
            .collect()
    }

    fn probe(kind: ProbeKind, addr: IpAddr, port: u16, millis: u64) -> Probe {
        Probe {
            kind,
            addr,
            port,
            sctp: false,
            timeout: Duration::from_millis(millis),
            // The tests' programs are in PATH and temporary folders; the scripts
            // directory's rule has its own tests.
            policy: Arc::new(Policy::Any),
        }
    }

    /// A port with nothing listening (TCP or UDP): bound, then released.
    async fn closed_tcp_port(addr: IpAddr) -> u16 {
        let l = TcpListener::bind((addr, 0)).await.unwrap();
        l.local_addr().unwrap().port()
    }

    /// A TCP server answering each connection with `handler(request bytes)`.
    async fn tcp_server<F>(addr: IpAddr, handler: F) -> u16
    where
        F: Fn(TcpStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            + Send
            + Sync
            + 'static,
    {
        let l = TcpListener::bind((addr, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(handler(s));
            }
        });
        port
    }

    fn assert_ok(o: &Outcome) {
        assert!(o.ok, "expected success: {o:?}");
    }

    fn assert_fail(o: &Outcome, detail: &str) {
        assert!(!o.ok, "expected failure: {o:?}");
        assert!(o.detail.contains(detail), "{detail:?} not in {o:?}");
    }

    /// A timed-out check fails, says so, and ends close to its timeout.
    fn assert_timed_out(o: &Outcome, millis: u64, stage: &str) {
        assert_fail(o, &format!("timed out after {} s", Secs(millis)));
        assert!(o.detail.contains(stage), "{stage:?} not in {o:?}");
        assert!(o.elapsed >= Duration::from_millis(millis), "{o:?}");
        assert!(o.elapsed < Duration::from_millis(millis + 1000), "{o:?}");
    }

    #[tokio::test]
    async fn tcp_connect_passes_on_a_listener_and_fails_on_a_closed_port() {
        for addr in loopbacks() {
            let open = tcp_server(addr, |_s| Box::pin(async {})).await;
            assert_ok(&probe(ProbeKind::Tcp, addr, open, 2000).run().await);
            let closed = closed_tcp_port(addr).await;
            let o = probe(ProbeKind::Tcp, addr, closed, 2000).run().await;
            assert_eq!(o.detail, "connection refused");
            assert!(!o.ok);
        }
    }

    /// Echoes `ECHO <what it read>` in two segments, to show that a reply split over
    /// several reads still matches.
    async fn echo_server() -> u16 {
        tcp_server(LO4, |mut s| {
            Box::pin(async move {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = s.write_all(b"ECH").await;
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = s.write_all(b"O ").await;
                let _ = s.write_all(&buf[..n]).await;
            })
        })
        .await
    }

    fn send_expect(send: &str, expect: Option<Expect>) -> ProbeKind {
        ProbeKind::SendExpect {
            send: Some(send.as_bytes().to_vec()),
            expect,
        }
    }

    fn regex(r: &str) -> Expect {
        Expect::Regex(build_regex(r).unwrap())
    }

    #[tokio::test]
    async fn send_expect_prefix_any_and_regex() {
        let port = echo_server().await;
        let run = |k| async move { probe(k, LO4, port, 2000).run().await };
        let prefix = |p: &str| Some(Expect::Prefix(p.as_bytes().to_vec()));
        // The reply starts with what was sent back: `send` went out as written.
        assert_ok(&run(send_expect("PING\r\n", prefix("ECHO PING\r\n"))).await);
        let o = run(send_expect("PING", prefix("ECHO PONG"))).await;
        assert_fail(&o, "reply did not match expect: \"ECHO PING\"");
        // A wrong first byte fails at once: only the first segment was read.
        let o = run(send_expect("PING", prefix("HTTP/1.1 200"))).await;
        assert_fail(&o, "reply did not match expect: \"ECH\"");
        assert_ok(&run(send_expect("x", Some(Expect::Any))).await);
        assert_ok(
            &run(send_expect(
                "status 200",
                Some(regex("st[a-z]+ 2[0-9]{2}$")),
            ))
            .await,
        );
        let o = run(send_expect("status 500", Some(regex("2[0-9]{2}")))).await;
        assert_fail(&o, "did not match expect");
        // Send without expect: connecting and writing is enough.
        let o = run(send_expect("hello", None)).await;
        assert_ok(&o);
        assert_eq!(o.detail, "connected, sent 5 bytes");
    }

    #[tokio::test]
    async fn expect_without_send_reads_a_banner_and_a_silent_close_fails() {
        let banner = tcp_server(LO4, |mut s| {
            Box::pin(async move {
                let _ = s.write_all(b"220 smtp.example ESMTP\r\n").await;
            })
        })
        .await;
        let k = ProbeKind::SendExpect {
            send: None,
            expect: Some(Expect::Prefix(b"220 ".to_vec())),
        };
        assert_ok(&probe(k.clone(), LO4, banner, 2000).run().await);
        let silent = tcp_server(LO4, |s| Box::pin(async move { drop(s) })).await;
        let o = probe(k, LO4, silent, 2000).run().await;
        assert_fail(&o, "connection closed without a reply");
    }

    /// Accepts and holds connections without a word.
    async fn mute_server(addr: IpAddr) -> u16 {
        tcp_server(addr, |s| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(s);
            })
        })
        .await
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let port = mute_server(LO4).await;
        let o = probe(send_expect("PING", Some(Expect::Any)), LO4, port, 400)
            .run()
            .await;
        assert_timed_out(&o, 400, "waiting for the reply");
    }

    #[tokio::test]
    async fn udp_refused_answered_and_silent() {
        // A responder answering `PONG <datagram>`.
        let responder = UdpSocket::bind((LO4, 0)).await.unwrap();
        let answered = responder.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = responder.recv_from(&mut buf).await {
                let mut reply = b"PONG ".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = responder.send_to(&reply, from).await;
            }
        });
        let silent_socket = UdpSocket::bind((LO4, 0)).await.unwrap();
        let silent = silent_socket.local_addr().unwrap().port();
        let closed = {
            let s = UdpSocket::bind((LO4, 0)).await.unwrap();
            s.local_addr().unwrap().port()
        };
        let udp = |send: &str, expect: Option<Expect>| ProbeKind::Udp {
            send: send.as_bytes().to_vec(),
            expect,
        };
        let prefix = |p: &str| Some(Expect::Prefix(p.as_bytes().to_vec()));
        let run = |k, port| async move { probe(k, LO4, port, 600).run().await };

        assert_ok(&run(udp("ping", prefix("PONG ping")), answered).await);
        assert_ok(&run(udp("ping", None), answered).await);
        assert_ok(&run(udp("ping", Some(regex("^PONG"))), answered).await);
        let o = run(udp("ping", prefix("PANG")), answered).await;
        assert_fail(&o, "reply did not match expect: \"PONG ping\"");
        assert!(o.elapsed < Duration::from_millis(600), "{o:?}");

        // ICMP port unreachable: a failure with or without expect.
        let o = run(udp("ping", None), closed).await;
        assert_fail(&o, "port unreachable");
        assert!(o.elapsed < Duration::from_millis(300), "{o:?}");
        assert_fail(
            &run(udp("ping", prefix("PONG")), closed).await,
            "port unreachable",
        );

        // Silence: fine without expect (nothing refused it), a failure with it.
        let o = run(udp("", None), silent).await;
        assert_ok(&o);
        assert!(o.detail.contains("no ICMP port unreachable"), "{o:?}");
        assert!(o.elapsed < Duration::from_millis(600), "{o:?}");
        let o = run(udp("ping", prefix("PONG")), silent).await;
        assert_fail(&o, "no reply within 0.6 s");
        drop(silent_socket);
    }

    #[tokio::test]
    async fn udp_over_ipv6() {
        if !loopbacks().contains(&LO6) {
            return;
        }
        let responder = UdpSocket::bind((LO6, 0)).await.unwrap();
        let port = responder.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((_, from)) = responder.recv_from(&mut buf).await {
                let _ = responder.send_to(b"ok", from).await;
            }
        });
        let k = ProbeKind::Udp {
            send: b"?".to_vec(),
            expect: Some(Expect::Prefix(b"ok".to_vec())),
        };
        assert_ok(&probe(k, LO6, port, 1000).run().await);
    }

    fn program(argv: &[&str], expect: Option<Expect>) -> ProbeKind {
        ProbeKind::Program {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            expect,
        }
    }

    #[tokio::test]
    async fn programs_pass_on_exit_0_and_fail_otherwise() {
        let run = |k| async move { probe(k, LO4, 0, 3000).run().await };
        let o = run(program(&["/bin/true"], None)).await;
        assert_ok(&o);
        assert_eq!(o.detail, "exit status 0");
        let o = run(program(&["/bin/false"], None)).await;
        assert!(!o.ok);
        assert_eq!(o.detail, "exit status 1");
        // stderr explains the failure.
        let o = run(program(&["/bin/sleep", "--no-such-option"], None)).await;
        assert_fail(&o, "exit status 1: \u{27e6}/bin/sleep: unrecognized option");
        let o = run(program(&["/nonexistent/check"], None)).await;
        assert_fail(&o, "cannot run /nonexistent/check");
        // PATH is searched, as execvp did.
        assert_ok(&run(program(&["true"], None)).await);
    }

    #[tokio::test]
    async fn program_output_against_expect() {
        let run = |k| async move { probe(k, LO4, 0, 3000).run().await };
        let exact = |s: &str| Some(Expect::Exact(s.as_bytes().to_vec()));
        // The trailing newline is dropped, then the output must equal `expect`.
        assert_ok(&run(program(&["/bin/echo", "OK"], exact("OK"))).await);
        let o = run(program(&["/bin/echo", "OK then"], exact("OK"))).await;
        assert_fail(&o, "output did not match expect: \u{27e6}OK then\u{27e7}");
        assert_ok(&run(program(&["/bin/echo", "anything"], Some(Expect::Any))).await);
        assert_fail(
            &run(program(&["/bin/true"], Some(Expect::Any))).await,
            "did not match",
        );
        assert_ok(
            &run(program(
                &["/bin/echo", "load 3 ok"],
                Some(regex("[0-9] ok$")),
            ))
            .await,
        );
        // Exit status first: a failing program fails even when its output matches.
        assert_fail(
            &run(program(&["/bin/false"], Some(Expect::Any))).await,
            "exit status 1",
        );
    }

    /// Whether a process with exactly this command line is still alive (not a zombie).
    fn running(cmdline: &[&str]) -> bool {
        let want: Vec<u8> = cmdline
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let dir = e.path();
            std::fs::read(dir.join("cmdline")).is_ok_and(|c| c == want)
                && std::fs::read_to_string(dir.join("stat")).is_ok_and(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
        })
    }

    #[tokio::test]
    async fn a_program_that_hangs_is_killed_at_the_timeout() {
        // An odd duration names this test's process among any others.
        let cmd = ["/bin/sleep", "31.4159"];
        let o = probe(program(&cmd, None), LO4, 0, 300).run().await;
        assert_timed_out(&o, 300, "waiting for the program (killed)");
        let gone = async {
            while running(&cmd) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(2), gone)
            .await
            .expect("the timed-out program was killed");
    }

    #[test]
    fn command_lines_split_into_words() {
        let w = |s: &str| split_words(s).unwrap();
        assert_eq!(w("/usr/bin/check  %h\t%p"), ["/usr/bin/check", "%h", "%p"]);
        assert_eq!(
            w("check --name 'two words' \"it's\""),
            ["check", "--name", "two words", "it's"]
        );
        assert_eq!(w(r#"a "say \"hi\"" b\ c"#), ["a", "say \"hi\"", "b c"]);
        assert_eq!(w(r"grep 1\.[01] ''"), ["grep", r"1\.[01]", ""]);
        assert_eq!(w("x'y'z"), ["xyz"]);
        assert!(w("  ").is_empty());
        assert!(split_words("check 'open")
            .unwrap_err()
            .contains("no closing '"));
        assert!(split_words("check \"open")
            .unwrap_err()
            .contains("no closing \""));
        let words = w("check -H %h --port=%p %h:%p");
        assert_eq!(
            substitute(&words, LO6, 8443, false),
            ["check", "-H", "::1", "--port=8443", "::1:8443"]
        );
        assert_eq!(substitute(&w("load"), LO4, 1, true), ["load", "127.0.0.1"]);
        assert_eq!(
            substitute(&w("load %h"), LO4, 1, true),
            ["load", "127.0.0.1"]
        );
    }

    #[derive(Debug, Default)]
    struct Seen {
        requests: Vec<String>,
        sni: Vec<Option<String>>,
    }

    /// A small HTTP/1.1 server: `/ok` 200 with a body, `/chunked` 200 chunked,
    /// `/fail` 503, `/big` 200 with a 3 MiB body whose marker is past the first MiB,
    /// `/hang` headers then nothing; records each request head.
    async fn serve_http<S>(mut s: S, seen: Arc<Mutex<Seen>>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut head = String::new();
        let mut reader = BufReader::new(&mut s);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let target = head.split(' ').nth(1).unwrap_or("");
        let path = target.split('?').next().unwrap_or("").to_string();
        seen.lock().unwrap().requests.push(head);
        let response: Vec<u8> = match path.as_str() {
            "/ok" | "/" => b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nstatus: all systems".to_vec(),
            "/chunked" => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec()
            }
            "/fail" => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy".to_vec(),
            "/big" => {
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 3 << 20).into_bytes();
                let mut body = vec![b'.'; 3 << 20];
                body[(2 << 20)..(2 << 20) + 6].copy_from_slice(b"MARKER");
                r.extend(body);
                r
            }
            "/hang" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n").await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        let _ = s.write_all(&response).await;
        let _ = s.shutdown().await;
    }

    async fn http_server(addr: IpAddr) -> (u16, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let l = TcpListener::bind((addr, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve_http(s, s2.clone()));
            }
        });
        (port, seen)
    }

    fn http(
        tls: bool,
        path: &str,
        host: &str,
        status: &[(u16, u16)],
        body: Option<&str>,
    ) -> ProbeKind {
        ProbeKind::Http {
            tls,
            path: path.into(),
            host: host.into(),
            status: status.to_vec(),
            body: body.map(|b| build_regex(b).unwrap()),
        }
    }

    #[tokio::test]
    async fn http_status_set_and_body_regex() {
        let (port, seen) = http_server(LO4).await;
        let host = format!("127.0.0.1:{port}");
        let ok = [(200, 299)];
        let run = |k| async move { probe(k, LO4, port, 2000).run().await };
        let o = run(http(false, "/ok", &host, &ok, None)).await;
        assert_ok(&o);
        assert_eq!(o.detail, "status 200");
        assert_fail(
            &run(http(false, "/fail", &host, &ok, None)).await,
            "status 503",
        );
        assert_fail(
            &run(http(false, "/nope", &host, &ok, None)).await,
            "status 404",
        );
        // A status set that accepts 503.
        assert_ok(&run(http(false, "/fail", &host, &[(200, 200), (503, 503)], None)).await);
        // Body regexes, over a plain and a chunked body.
        assert_ok(&run(http(false, "/ok", &host, &ok, Some("all sys"))).await);
        assert_fail(
            &run(http(false, "/ok", &host, &ok, Some("^down"))).await,
            "body did not match check_regex",
        );
        assert_ok(&run(http(false, "/chunked", &host, &ok, Some("hello world"))).await);
        // Only the first MiB of the body is read.
        let o = run(http(false, "/big", &host, &ok, Some("MARKER"))).await;
        assert_fail(&o, "(1048576 bytes read)");
        let head = seen.lock().unwrap().requests[0].clone();
        assert!(head.starts_with("GET /ok HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: {host}\r\n")), "{head}");
        assert!(head.contains("connection: close\r\n"), "{head}");
    }

    #[tokio::test]
    async fn http_over_ipv6_from_settings_sends_a_bracketed_host() {
        if !loopbacks().contains(&LO6) {
            return;
        }
        let (port, seen) = http_server(LO6).await;
        let check = CheckSettings {
            check: Some(CheckKind::Http),
            check_path: Some(Text("/ok?full=1".into())),
            ..CheckSettings::default()
        };
        let p = Probe::from_settings(&check, Protocol::Tcp, LO6, port)
            .unwrap()
            .unwrap();
        assert_ok(&p.run().await);
        let head = seen.lock().unwrap().requests[0].clone();
        assert!(head.starts_with("GET /ok?full=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: [::1]:{port}\r\n")), "{head}");
    }

    #[tokio::test]
    async fn http_timeouts_while_waiting_and_while_reading() {
        let mute = mute_server(LO4).await;
        let o = probe(http(false, "/", "h", &[(200, 299)], None), LO4, mute, 400)
            .run()
            .await;
        assert_timed_out(&o, 400, "waiting for the HTTP response");
        let (port, _) = http_server(LO4).await;
        let o = probe(
            http(false, "/hang", "h", &[(200, 299)], Some("x")),
            LO4,
            port,
            400,
        )
        .run()
        .await;
        assert_timed_out(&o, 400, "reading the HTTP body");
        assert_fail(
            &probe(
                http(false, "/", "h", &[(200, 299)], None),
                LO4,
                closed_tcp_port(LO4).await,
                400,
            )
            .run()
            .await,
            "connection refused",
        );
    }

    /// A TLS server with a fresh self-signed certificate for `checks.example`,
    /// recording the SNI of each handshake.
    async fn https_server() -> (u16, Arc<Mutex<Seen>>) {
        use tokio_rustls::rustls::{self, pki_types};
        let cert = rcgen::generate_simple_self_signed(vec!["checks.example".to_string()]).unwrap();
        let key = pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(
            cert.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let l = TcpListener::bind((LO4, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (acceptor, seen) = (acceptor.clone(), s2.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(s).await else {
                        return;
                    };
                    let sni = tls.get_ref().1.server_name().map(str::to_string);
                    seen.lock().unwrap().sni.push(sni);
                    serve_http(tls, seen).await;
                });
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn https_accepts_a_self_signed_certificate_and_sends_sni_for_names() {
        let (port, seen) = https_server().await;
        let check = |host: Option<&str>| CheckSettings {
            check: Some(CheckKind::Https),
            check_path: Some(Text("/ok".into())),
            check_host: host.map(|h| Word(h.into())),
            check_regex: Some(Text("systems".into())),
            ..CheckSettings::default()
        };
        let p = Probe::from_settings(&check(Some("checks.example")), Protocol::Tcp, LO4, port)
            .unwrap()
            .unwrap();
        let o = p.run().await;
        assert_ok(&o);
        assert_eq!(o.detail, "status 200, body matched check_regex");
        // Addressed by IP: no SNI (and no certificate name check either).
        let p = Probe::from_settings(&check(None), Protocol::Tcp, LO4, port)
            .unwrap()
            .unwrap();
        assert_ok(&p.run().await);
        // A name with a port in the Host header: SNI without the port.
        let p = Probe::from_settings(&check(Some("other.example:8443")), Protocol::Tcp, LO4, port)
            .unwrap()
            .unwrap();
        assert_ok(&p.run().await);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(
                seen.sni,
                [
                    Some("checks.example".to_string()),
                    None,
                    Some("other.example".to_string())
                ]
            );
            assert!(seen.requests[0].contains("host: checks.example\r\n"));
            assert!(seen.requests[1].contains(&format!("host: 127.0.0.1:{port}\r\n")));
        }
        // Plain HTTP against TLS, and TLS against plain HTTP, fail.
        let o = probe(
            http(true, "/ok", "h", &[(200, 299)], None),
            LO4,
            http_server(LO4).await.0,
            2000,
        )
        .run()
        .await;
        assert_fail(&o, "TLS handshake");
        let o = probe(
            http(false, "/ok", "h", &[(200, 299)], None),
            LO4,
            port,
            2000,
        )
        .run()
        .await;
        assert!(!o.ok, "{o:?}");
    }

    #[tokio::test]
    async fn ping_loopback_over_ping_and_raw_sockets() {
        for addr in loopbacks() {
            if open_icmp(addr, IcmpSocket::Dgram).is_err() {
                eprintln!("skipped: this user may open no ICMP socket for {addr}");
                continue;
            }
            let o = probe(ProbeKind::Ping, addr, 0, 2000).run().await;
            assert_ok(&o);
            assert!(o.detail.starts_with("echo reply (seq 1,"), "{o:?}");
            for kind in [IcmpSocket::Dgram, IcmpSocket::Raw] {
                // Either may be refused to an unprivileged user; root (CI) has both.
                if open_icmp(addr, kind).ok().map(|(_, k)| k) != Some(kind) {
                    eprintln!("skipped: no {kind:?} ICMP socket for {addr}");
                    continue;
                }
                let r = tokio::time::timeout(Duration::from_secs(2), ping(addr, kind)).await;
                let detail = r.expect("a reply within 2 s").unwrap();
                assert!(
                    detail.starts_with("echo reply"),
                    "{addr} {kind:?}: {detail}"
                );
            }
        }
    }

    #[test]
    fn checksum_of_a_known_echo_request() {
        // An echo request, id 1 seq 1, no data: 0xffff - 0x0800 - 1 - 1 = 0xf7fd.
        assert_eq!(icmp_checksum(&[8, 0, 0, 0, 0, 1, 0, 1]), 0xf7fd);
        let mut odd = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7, 0xab];
        let sum = icmp_checksum(&odd);
        odd[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            icmp_checksum(&odd),
            0,
            "a packet with its checksum sums to 0"
        );
    }

    #[tokio::test]
    async fn sctp_when_the_kernel_has_it() {
        use socket2::{Domain, Socket, Type};
        let sctp = socket2::Protocol::from(libc::IPPROTO_SCTP);
        let Ok(listener) = Socket::new(Domain::IPV4, Type::STREAM, Some(sctp)) else {
            eprintln!("skipped: no SCTP in this kernel");
            return;
        };
        listener.bind(&SocketAddr::new(LO4, 0).into()).unwrap();
        listener.listen(8).unwrap();
        let port = listener.local_addr().unwrap().as_socket().unwrap().port();
        let mut p = probe(ProbeKind::Tcp, LO4, port, 2000);
        p.sctp = true;
        assert_ok(&p.run().await);
        drop(listener);
        assert_fail(&p.run().await, "connection refused");
    }

    fn settings(f: impl FnOnce(&mut CheckSettings)) -> CheckSettings {
        let mut c = CheckSettings::default();
        f(&mut c);
        c
    }

    fn build(c: &CheckSettings, protocol: Protocol) -> Result<Option<Probe>, String> {
        Probe::from_settings(c, protocol, "192.0.2.10".parse().unwrap(), 8080)
    }

    /// A program check built from a configuration runs nothing outside the scripts
    /// directory unless the supervisor widened its policy (a root-only lvs.cf), and
    /// its refusal is the check's failure.
    #[tokio::test]
    async fn a_program_check_is_refused_before_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("ran");
        let c = settings(|c| {
            c.send_program = Some(Text(format!("/usr/bin/touch {}", mark.display())));
            c.timeout = Some(Secs(5000));
        });
        let mut p = build(&c, Protocol::Tcp).unwrap().unwrap();
        assert_eq!(*p.policy, Policy::default());
        let o = p.run().await;
        assert_fail(
            &o,
            "not run: /usr/bin/touch is not in the scripts directory",
        );
        assert!(!mark.exists());
        p.policy = Arc::new(Policy::Any);
        assert_ok(&p.run().await);
        assert!(mark.exists());
    }

    #[test]
    fn kinds_from_settings_follow_piranhas_rule() {
        let kind = |c: &CheckSettings, p| build(c, p).unwrap().unwrap().kind;
        assert!(matches!(
            kind(&settings(|_| {}), Protocol::Tcp),
            ProbeKind::Tcp
        ));
        let p = build(&settings(|_| {}), Protocol::Sctp).unwrap().unwrap();
        assert!(matches!(p.kind, ProbeKind::Tcp) && p.sctp);
        assert_eq!(p.timeout, Duration::from_secs(10), "Piranha's default");
        let c = settings(|c| {
            c.send = Some(Escaped("GET / HTTP/1.0\r\n\r\n".into()));
            c.expect = Some(Escaped("HTTP".into()));
        });
        match kind(&c, Protocol::Tcp) {
            ProbeKind::SendExpect {
                send,
                expect: Some(Expect::Prefix(e)),
            } => {
                assert_eq!(send.unwrap(), b"GET / HTTP/1.0\r\n\r\n");
                assert_eq!(e, b"HTTP");
            }
            k => panic!("{k:?}"),
        }
        match kind(&c, Protocol::Udp) {
            ProbeKind::Udp {
                send,
                expect: Some(Expect::Prefix(_)),
            } => assert!(!send.is_empty()),
            k => panic!("{k:?}"),
        }
        let c = settings(|c| c.expect = Some(Escaped("*".into())));
        assert!(matches!(
            kind(&c, Protocol::Tcp),
            ProbeKind::SendExpect {
                send: None,
                expect: Some(Expect::Any)
            }
        ));
        let c = settings(|c| {
            c.expect = Some(Escaped("^2[0-9]{2} ".into()));
            c.use_regex = Some(true);
        });
        assert!(matches!(
            kind(&c, Protocol::Tcp),
            ProbeKind::SendExpect {
                expect: Some(Expect::Regex(_)),
                ..
            }
        ));
        // send_program wins over send/expect; its expect is compared whole.
        let c = settings(|c| {
            c.send_program = Some(Text("/usr/lib/check -h %h -p %p --label 'web %h'".into()));
            c.send = Some(Escaped("ignored".into()));
            c.expect = Some(Escaped("OK".into()));
            c.check_port = Some(PortSpec::Service("https".into()));
        });
        match kind(&c, Protocol::Tcp) {
            ProbeKind::Program {
                argv,
                expect: Some(Expect::Exact(e)),
            } => {
                assert_eq!(
                    argv,
                    [
                        "/usr/lib/check",
                        "-h",
                        "192.0.2.10",
                        "-p",
                        "443",
                        "--label",
                        "web 192.0.2.10"
                    ]
                );
                assert_eq!(e, b"OK");
            }
            k => panic!("{k:?}"),
        }
        assert!(build(
            &settings(|c| c.check = Some(CheckKind::None)),
            Protocol::Tcp
        )
        .unwrap()
        .is_none());
        assert!(matches!(
            kind(
                &settings(|c| c.check = Some(CheckKind::Ping)),
                Protocol::Udp
            ),
            ProbeKind::Ping
        ));
    }

    #[test]
    fn http_settings_and_their_defaults() {
        let c = settings(|c| c.check = Some(CheckKind::Http));
        let p = build(&c, Protocol::Tcp).unwrap().unwrap();
        match &p.kind {
            ProbeKind::Http {
                tls: false,
                path,
                host,
                status,
                body: None,
            } => {
                assert_eq!(path, "/");
                assert_eq!(host, "192.0.2.10:8080");
                assert_eq!(status, &[(200, 299)]);
            }
            k => panic!("{k:?}"),
        }
        let c = settings(|c| {
            c.check = Some(CheckKind::Https);
            c.check_port = Some(PortSpec::Number(443));
            c.check_status = Some(StatusSet(vec![(200, 200), (301, 302)]));
        });
        let p = build(&c, Protocol::Tcp).unwrap().unwrap();
        assert_eq!(p.port, 443);
        match &p.kind {
            ProbeKind::Http {
                tls: true,
                host,
                status,
                ..
            } => {
                assert_eq!(host, "192.0.2.10", "default port left out");
                assert_eq!(status, &[(200, 200), (301, 302)]);
            }
            k => panic!("{k:?}"),
        }
        let c = settings(|c| c.check = Some(CheckKind::Http));
        let p = Probe::from_settings(&c, Protocol::Tcp, LO6, 80)
            .unwrap()
            .unwrap();
        assert!(matches!(&p.kind, ProbeKind::Http { host, .. } if host == "[::1]"));
    }

    #[test]
    fn settings_errors_name_the_keyword() {
        let err = |f: fn(&mut CheckSettings)| build(&settings(f), Protocol::Tcp).unwrap_err();
        let e = err(|c| {
            c.expect = Some(Escaped("HTTP/1.[01 200".into()));
            c.use_regex = Some(true);
        });
        assert_eq!(
            e,
            "expect: invalid regular expression `HTTP/1.[01 200`: unclosed character class"
        );
        assert!(
            e.starts_with("expect: invalid regular expression `HTTP/1.[01 200`"),
            "{e}"
        );
        let e = err(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text("(unclosed".into()));
        });
        assert!(
            e.starts_with("check_regex: invalid regular expression"),
            "{e}"
        );
        let e = err(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text(r"(?:\w{100}){100}".into()));
        });
        assert!(
            e.starts_with("check_regex:") && e.contains("too complex"),
            "{e}"
        );
        let e = err(|c| c.check = Some(CheckKind::Program));
        assert!(e.starts_with("send_program: required"), "{e}");
        let e = err(|c| c.send_program = Some(Text("check 'unclosed".into())));
        assert!(e.starts_with("send_program: no closing '"), "{e}");
        let e = err(|c| c.send_program = Some(Text("   ".into())));
        assert!(e.starts_with("send_program: the command is empty"), "{e}");
        let e = err(|c| {
            c.check = Some(CheckKind::Http);
            c.check_path = Some(Text("health".into()));
        });
        assert!(e.starts_with("check_path: `health`"), "{e}");
        let e = err(|c| {
            c.check = Some(CheckKind::Https);
            c.check_path = Some(Text("/a b".into()));
        });
        assert!(e.starts_with("check_path:"), "{e}");
        let e = err(|c| c.check_port = Some(PortSpec::Service("no-such-service".into())));
        assert!(e.starts_with("check_port: unknown service name"), "{e}");
        let e = err(|c| c.timeout = Some(Secs(0)));
        assert!(e.starts_with("timeout:"), "{e}");
    }

    #[test]
    fn identity_is_the_same_for_the_same_check_only() {
        let id = |c: &CheckSettings, port: u16| {
            Probe::from_settings(c, Protocol::Tcp, "192.0.2.10".parse().unwrap(), port)
                .unwrap()
                .unwrap()
                .identity()
        };
        let http = settings(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text("ok".into()));
        });
        // The same check of the same server under two virtual servers: one identity.
        let vs_a = settings(|c| c.timeout = Some(Secs(5000)));
        let vs_b = settings(|c| {
            c.timeout = Some(Secs(5000));
            c.reentry = Some(Secs(60000)); // policy only, not the probe
        });
        assert_eq!(id(&http.overlay(&vs_a), 80), id(&http.overlay(&vs_b), 80));
        assert_eq!(
            id(&http.overlay(&vs_a), 80),
            "http 192.0.2.10:80 GET \"/\" host \"192.0.2.10\" status [(200, 299)] body \"ok\" timeout 5"
        );
        assert_ne!(id(&http, 80), id(&http, 81));
        assert_ne!(
            id(&http, 80),
            id(&http.overlay(&vs_a), 80),
            "timeouts differ"
        );
        let other_regex = settings(|c| {
            c.check = Some(CheckKind::Http);
            c.check_regex = Some(Text("OK".into()));
        });
        assert_ne!(id(&http, 80), id(&other_regex, 80));
        // Where the port plays no part, it does not split identical checks.
        let ping = settings(|c| c.check = Some(CheckKind::Ping));
        assert_eq!(id(&ping, 80), id(&ping, 443));
        let prog = settings(|c| c.send_program = Some(Text("/bin/check %h".into())));
        assert_eq!(id(&prog, 80), id(&prog, 443));
        let prog_p = settings(|c| c.send_program = Some(Text("/bin/check %h %p".into())));
        assert_ne!(id(&prog_p, 80), id(&prog_p, 443));
        let se = |expect: &str, regex: bool| {
            id(
                &settings(|c| {
                    c.expect = Some(Escaped(expect.into()));
                    c.use_regex = Some(regex);
                }),
                80,
            )
        };
        assert_ne!(se("OK", false), se("OK", true));
        assert_eq!(
            se("OK\r\n", false),
            "tcp-send-expect 192.0.2.10:80 expect prefix \"OK\\r\\n\" timeout 10"
        );
    }
}
