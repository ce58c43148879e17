//! Notifications, as keepalived's `notify` scripts and `smtp_alert` mail: every state
//! change the supervisor records ([`Shared::event`](crate::pulse::task::shared::Shared::event): the
//! director's role, a real server up or down, an address raised or dropped, …) runs
//! `notify_command` and is mailed through `smtp_server` to `smtp_to`.
//!
//! The supervisor never waits for either. `Shared::event` offers each change to two
//! bounded queues, one for the command and one for mail, and when one is full the change
//! is dropped there with a counted warning. Commands run one at a time, in order, without
//! a shell, each killed after [`Timing::command`]. Mail collects the changes of
//! [`Timing::window`] after the first one into one message (50 real servers failing at
//! once make one mail listing them), sent over SMTP to `smtp_port` (25) with STARTTLS
//! when the server offers it, and retried after each of [`Timing::retries`] before it is
//! given up; every failure is logged with its reason.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::client::{CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::model::GlobalSettings;
use crate::config::value::Text;
use crate::config::Config;
use crate::pulse::io::scripts::Policy;
use crate::pulse::logic::argv::SplitError;
use crate::pulse::logic::control::EventRecord;

/// Changes waiting for the command, and for mail; past that they are dropped.
pub const QUEUE: usize = 1024;
/// Changes listed in one mail; the rest are counted.
pub const MAX_LISTED: usize = 200;
/// How long a cause may be in a mail's subject.
const SUBJECT_CAUSE: usize = 80;

/// The notifier's clocks (the supervisor uses the default; tests shorten them).
#[derive(Debug, Clone)]
pub struct Timing {
    /// Changes arriving this long after the first one of a mail go into that mail.
    pub window: Duration,
    /// A mail that could not be sent is tried again after each of these, then dropped.
    pub retries: Vec<Duration>,
    /// `notify_command` is killed after this long.
    pub command: Duration,
    /// Limit of each SMTP step (connect, each command).
    pub smtp: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            window: Duration::from_secs(2),
            retries: vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
            ],
            command: Duration::from_secs(30),
            smtp: Duration::from_secs(30),
        }
    }
}

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub server: String,
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    /// `smtp_timeout`: the limit of each SMTP step; unset: [`Timing::smtp`].
    pub timeout: Option<Duration>,
}

/// What the notifier takes from `lvs.cf` (and the machine).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// This director's name as in heartbeats and status (its public address).
    pub node: String,
    /// The machine's host name: mail subjects and the default sender.
    pub host: String,
    /// `notify_command`, split into words; empty when unset.
    pub command: Vec<String>,
    pub mail: Option<MailSettings>,
    /// The virtual server names, to split "server VIRTUAL/SERVER" where names hold `/`.
    pub virtuals: Vec<String>,
    /// What `notify_command` may run: checked again before every run. Restricted to
    /// the default scripts directory unless the supervisor says otherwise.
    pub policy: Arc<Policy>,
    /// Commands of one subject's changes: a real server's `notify_up`/`notify_down`
    /// ("server VIRTUAL/SERVER"), a virtual server's `quorum_up`/`quorum_down`
    /// ("service VIRTUAL"), as keepalived runs them.
    pub hooks: BTreeMap<String, Hooks>,
}

/// The commands run when one subject goes up or down (words; empty when unset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hooks {
    pub up: Vec<String>,
    pub down: Vec<String>,
}

impl Hooks {
    /// Every subject's commands in `c`; an error names the line that cannot be split.
    pub fn of(c: &Config) -> Result<BTreeMap<String, Hooks>, SettingsError> {
        let split = |subject: &str, keyword: &'static str, t: &Option<Text>| match t {
            None => Ok(Vec::new()),
            Some(t) => {
                crate::pulse::io::probe::split_words(&t.0).map_err(|error| SettingsError::Hook {
                    subject: subject.to_string(),
                    keyword,
                    error,
                })
            }
        };
        let mut out = BTreeMap::new();
        let mut add = |subject: String, h: Hooks| {
            if !h.up.is_empty() || !h.down.is_empty() {
                out.insert(subject, h);
            }
        };
        for vs in c.virtuals.iter().filter(|v| v.settings.active()) {
            let subject = format!("service {}", vs.name);
            let st = &vs.settings;
            let h = Hooks {
                up: split(&subject, "quorum_up", &st.quorum_up)?,
                down: split(&subject, "quorum_down", &st.quorum_down)?,
            };
            add(subject, h);
            for rs in vs.servers.iter().filter(|r| r.settings.active()) {
                let subject = format!("server {}/{}", vs.name, rs.name);
                let h = Hooks {
                    up: split(&subject, "notify_up", &rs.settings.notify_up)?,
                    down: split(&subject, "notify_down", &rs.settings.notify_down)?,
                };
                add(subject, h);
            }
        }
        Ok(out)
    }

    /// The command for a change to `state`, if any.
    pub fn command(&self, state: &str) -> Option<(&'static str, &[String])> {
        let (what, argv) = match state {
            "up" => ("up", &self.up),
            "down" => ("down", &self.down),
            _ => return None,
        };
        (!argv.is_empty()).then_some((what, argv.as_slice()))
    }
}

/// This machine's host name ("localhost" when it has none).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    if rc != 0 || name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Why the notification settings cannot be used. Unusable mail addresses and ports
/// are warnings instead: mail is optional, a wrong command line is not.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("notify_command: {0}")]
    CommandLine(#[source] SplitError),
    #[error("{subject}: {keyword}: {error}")]
    Hook {
        subject: String,
        keyword: &'static str,
        #[source]
        error: SplitError,
    },
}

impl Settings {
    /// The settings of `lvs.cf`'s global keywords, and warnings (unusable addresses are
    /// left out); an error when `notify_command` cannot be split into words.
    pub fn from_config(
        g: &GlobalSettings,
        node: &str,
        virtuals: Vec<String>,
        host: &str,
    ) -> Result<(Settings, Vec<String>), SettingsError> {
        let command = match &g.notify_command {
            None => Vec::new(),
            Some(t) => {
                crate::pulse::io::probe::split_words(&t.0).map_err(SettingsError::CommandLine)?
            }
        };
        let mut warnings = Vec::new();
        let mail = match (&g.smtp_server, &g.smtp_to) {
            (Some(server), Some(to)) if !to.0.is_empty() => {
                let from = match &g.smtp_from {
                    Some(w) => w.0.clone(),
                    None => format!("lvs-director@{host}"),
                };
                let from = if from.parse::<Mailbox>().is_ok() {
                    Some(from)
                } else if g.smtp_from.is_some() {
                    warnings.push(format!(
                        "smtp_from `{from}` is not a mail address: no notification mail is sent"
                    ));
                    None
                } else {
                    Some("lvs-director@localhost".to_string())
                };
                let mut good = Vec::new();
                for a in &to.0 {
                    if a.parse::<Mailbox>().is_ok() {
                        good.push(a.clone());
                    } else {
                        warnings.push(format!(
                            "smtp_to: `{a}` is not a mail address; no mail goes to it"
                        ));
                    }
                }
                let port = g
                    .smtp_port
                    .as_ref()
                    .map_or(Some(25), |p| p.number())
                    .unwrap_or_else(|| {
                        warnings.push("smtp_port: unknown service name; port 25 is used".into());
                        25
                    });
                match from {
                    Some(from) if !good.is_empty() => Some(MailSettings {
                        server: server.to_string(),
                        port,
                        from,
                        to: good,
                        timeout: g.smtp_timeout.map(|t| t.as_duration()),
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok((
            Settings {
                node: node.to_string(),
                host: host.to_string(),
                command,
                mail,
                virtuals,
                policy: Arc::default(),
                hooks: BTreeMap::new(),
            },
            warnings,
        ))
    }

    /// Whether any change may run a command (notify_command or a subject's own).
    pub fn runs_commands(&self) -> bool {
        !self.command.is_empty() || !self.hooks.is_empty()
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let cmd = if self.command.is_empty() {
            "no notify_command".to_string()
        } else {
            format!("notify_command `{}`", self.command.join(" "))
        };
        match &self.mail {
            None => format!("{cmd}, no mail"),
            Some(m) => format!(
                "{cmd}, mail from {} to {} through {}:{}",
                m.from,
                m.to.join(", "),
                m.server,
                m.port
            ),
        }
    }
}

/// A recorded subject taken apart: `KIND NAME` for `notify_command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// director, server, address, local-check (or the subject's first word).
    pub kind: String,
    /// The director's node name, "VIRTUAL/SERVER", the address, the check's name.
    pub name: String,
    pub virtual_server: Option<String>,
    pub server: Option<String>,
}

/// Takes a subject as [`Shared::event`](crate::pulse::task::shared::Shared::event) records it apart.
pub fn classify(subject: &str, s: &Settings) -> Subject {
    let plain = |kind: &str, name: &str| Subject {
        kind: kind.to_string(),
        name: name.to_string(),
        virtual_server: None,
        server: None,
    };
    if subject == "director" {
        return plain("director", &s.node);
    }
    if let Some(rest) = subject.strip_prefix("server ") {
        // The longest virtual server name that fits, else the first `/`.
        let v = s
            .virtuals
            .iter()
            .filter(|v| rest.len() > v.len() && rest.starts_with(v.as_str()))
            .filter(|v| rest.as_bytes()[v.len()] == b'/')
            .max_by_key(|v| v.len())
            .map(|v| v.len())
            .or_else(|| rest.find('/'));
        if let Some(i) = v {
            return Subject {
                kind: "server".into(),
                name: rest.to_string(),
                virtual_server: Some(rest[..i].to_string()),
                server: Some(rest[i + 1..].to_string()),
            };
        }
        return plain("server", rest);
    }
    if let Some(n) = subject.strip_prefix("local check ") {
        return plain("local-check", n);
    }
    if let Some(v) = subject.strip_prefix("service ") {
        let mut out = plain("virtual", v);
        out.virtual_server = Some(v.to_string());
        return out;
    }
    match subject.split_once(' ') {
        Some((kind, name)) => plain(kind, name),
        None => plain(subject, ""),
    }
}

/// RFC 3339 (UTC, seconds) of a Unix time in milliseconds.
pub fn rfc3339(unix_ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}

/// The argument vector and the environment `notify_command` runs with for `e`:
/// `COMMAND… KIND NAME STATE`, and `LVS_*` variables (see the README).
pub fn invocation(e: &EventRecord, s: &Settings) -> (Vec<String>, Vec<(String, String)>) {
    let sub = classify(&e.subject, s);
    let mut argv = s.command.clone();
    argv.extend([sub.kind.clone(), sub.name.clone(), e.state.clone()]);
    let mut env: Vec<(String, String)> = [
        ("LVS_KIND", sub.kind),
        ("LVS_NAME", sub.name),
        ("LVS_STATE", e.state.clone()),
        ("LVS_CAUSE", e.cause.clone()),
        ("LVS_SUBJECT", e.subject.clone()),
        ("LVS_NODE", s.node.clone()),
        ("LVS_TIME", rfc3339(e.at_unix_ms)),
        ("LVS_TIME_UNIX_MS", e.at_unix_ms.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(v) = sub.virtual_server {
        env.push(("LVS_VIRTUAL".into(), v));
    }
    if let Some(r) = sub.server {
        env.push(("LVS_SERVER".into(), r));
    }
    (argv, env)
}

/// Line breaks and other control characters as blanks, at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out
}

fn change(e: &EventRecord) -> String {
    if e.cause.is_empty() {
        format!("{}: {}", e.subject, e.state)
    } else {
        format!("{}: {} ({})", e.subject, e.state, e.cause)
    }
}

fn changes(n: usize) -> String {
    if n == 1 {
        "1 more change".into()
    } else {
        format!("{n} more changes")
    }
}

/// The subject of the mail of `events` (and `more` not listed): the director's change
/// if there is one, else the first, e.g. "[lvs-director] lb1: director active (the
/// peer is dead) and 2 more changes".
pub fn mail_subject(host: &str, events: &[EventRecord], more: usize) -> String {
    one_line(
        &format!("[lvs-director] {host}: {}", summary(events, more)),
        400,
    )
}

/// The subject without its prefix: "director active (the peer is dead) and 2 more
/// changes".
pub fn summary(events: &[EventRecord], more: usize) -> String {
    let Some(head) = events
        .iter()
        .find(|e| e.subject == "director")
        .or(events.first())
    else {
        return "no change".into();
    };
    let mut s = format!("{} {}", head.subject, head.state);
    if !head.cause.is_empty() {
        s += &format!(" ({})", one_line(&head.cause, SUBJECT_CAUSE));
    }
    let others = events.len() - 1 + more;
    if others > 0 {
        s += &format!(" and {}", changes(others));
    }
    s
}

/// The text of the mail: one line per change (time, subject, state, cause), what was
/// left out, and which director sends it.
pub fn mail_body(
    s: &Settings,
    events: &[EventRecord],
    more: usize,
    dropped: u64,
    now_unix_ms: u64,
) -> String {
    let n = events.len() + more;
    let mut b = format!(
        "lvs-director on {} (node {}) reports {}:\n\n",
        s.host,
        s.node,
        if n == 1 {
            "a state change".to_string()
        } else {
            format!("{n} state changes")
        }
    );
    for e in events {
        b += &format!(
            "{}  {}\n",
            rfc3339(e.at_unix_ms),
            one_line(&change(e), 1000)
        );
    }
    if more > 0 {
        b += &format!("... and {} not listed here.\n", changes(more));
    }
    if dropped > 0 {
        b += &format!(
            "\n{dropped} further state change(s) were not mailed: the notification queue was full.\n"
        );
    }
    b += &format!(
        "\nHost: {}\nNode: {}\nSent: {}\n\n-- \nlvs-director {}; `lvs-director status` shows the current state.\n",
        s.host,
        s.node,
        rfc3339(now_unix_ms),
        env!("CARGO_PKG_VERSION")
    );
    b
}

/// The mail of a batch, or why it cannot be made.
/// Why a notification mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{keyword} `{value}`: {why}")]
    Address {
        keyword: &'static str,
        value: String,
        why: String,
    },
    #[error("cannot build the mail: {0}")]
    Build(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("{0}")]
    Smtp(String),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

pub fn compose(
    s: &Settings,
    m: &MailSettings,
    events: &[EventRecord],
    more: usize,
    dropped: u64,
    now_unix_ms: u64,
) -> Result<Message, MailError> {
    let address = |keyword, value: &str, why: &dyn std::fmt::Display| MailError::Address {
        keyword,
        value: value.to_string(),
        why: why.to_string(),
    };
    let from: Mailbox = m
        .from
        .parse()
        .map_err(|e| address("smtp_from", &m.from, &e))?;
    let mut b = Message::builder()
        .from(from)
        .subject(mail_subject(&s.host, events, more))
        .header(ContentType::TEXT_PLAIN)
        .message_id(None)
        .user_agent(format!("lvs-director {}", env!("CARGO_PKG_VERSION")));
    for t in &m.to {
        b = b.to(t.parse().map_err(|e| address("smtp_to", t, &e))?);
    }
    // Plain 7bit text, readable as it is, when it is ASCII with lines within RFC 5322's
    // 998 (lettre would quote-print every line past 76); else what lettre finds best.
    let text = mail_body(s, events, more, dropped, now_unix_ms);
    let plain = text
        .lines()
        .all(|l| l.len() <= 900 && l.bytes().all(|b| (b' '..=b'~').contains(&b)));
    let body = if plain {
        Body::dangerous_pre_encoded(
            text.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        Body::new(text)
    };
    b.body(body).map_err(|e| MailError::Build(e.to_string()))
}

/// Sends one mail: SMTP to `server:port`, STARTTLS when the server offers it.
///
/// The STARTTLS is opportunistic (RFC 7435, Postfix's `smtp_tls_security_level = may`):
/// it encrypts, and verifies neither the certificate nor its name, since whoever could
/// present a false one could as well strip the STARTTLS offer; a relay with a
/// self-signed certificate (Debian's default Postfix) or one named otherwise than
/// `smtp_server` keeps working.
pub async fn send(
    m: &MailSettings,
    host: &str,
    msg: Message,
    limit: Duration,
) -> Result<(), MailError> {
    let tls = TlsParameters::builder(m.server.clone())
        .certificate_store(CertificateStore::None)
        .dangerous_accept_invalid_certs(true)
        .dangerous_accept_invalid_hostnames(true)
        .build_rustls()
        .map_err(|e| MailError::Tls(e.to_string()))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(m.server.as_str())
        .port(m.port)
        .tls(Tls::Opportunistic(tls))
        .hello_name(ClientId::Domain(host.to_string()))
        .timeout(Some(limit))
        .build();
    // The timeout covers each step; this bounds the whole conversation.
    match tokio::time::timeout(limit * 4, transport.send(msg)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(MailError::Smtp(e.to_string())),
        Err(_) => Err(MailError::Timeout(limit * 4)),
    }
}

/// The changes of one mail, collected from the first one for a window. Time is passed
/// in.
#[derive(Debug, Default)]
pub struct Batch {
    since: Option<Instant>,
    events: Vec<EventRecord>,
    more: usize,
}

impl Batch {
    pub fn push(&mut self, e: EventRecord, now: Instant) {
        self.since.get_or_insert(now);
        if self.events.len() < MAX_LISTED {
            self.events.push(e);
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_none()
    }

    /// When the mail is due: `window` after its first change.
    pub fn due_at(&self, window: Duration) -> Option<Instant> {
        self.since.map(|t| t + window)
    }

    pub fn due(&self, now: Instant, window: Duration) -> bool {
        self.due_at(window).is_some_and(|d| now >= d)
    }

    /// The changes listed and how many more there were; the batch starts over.
    pub fn take(&mut self) -> (Vec<EventRecord>, usize) {
        let out = (std::mem::take(&mut self.events), self.more);
        *self = Batch::default();
        out
    }
}

enum Item {
    Event(EventRecord),
    /// Answered once everything queued before it is done (mail: sent now).
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Lane {
    tx: mpsc::Sender<Item>,
    /// Offered at all (the command or the mail is configured).
    on: AtomicBool,
    dropped: AtomicU64,
    what: &'static str,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Event(e) => write!(f, "Event({e:?})"),
            Item::Flush(_) => f.write_str("Flush"),
        }
    }
}

/// Where [`Shared::event`](crate::pulse::task::shared::Shared::event) offers each change; never
/// blocks.
#[derive(Debug, Clone)]
pub struct Queue {
    lanes: Arc<[Lane; 2]>,
}

impl Queue {
    pub fn offer(&self, e: &EventRecord) {
        for lane in self.lanes.iter() {
            if !lane.on.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) =
                lane.tx.try_send(Item::Event(e.clone()))
            {
                let n = lane.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        "notifications ({}): the queue is full; {n} state change(s) dropped so far, now {} {}",
                        lane.what,
                        e.subject,
                        e.state
                    );
                }
            }
        }
    }
}

/// The notifier: its two tasks, their queue and their settings.
pub struct Notifier {
    queue: Queue,
    settings: watch::Sender<Settings>,
}

impl Notifier {
    /// Starts the command and mail tasks on the current runtime.
    pub fn start(settings: Settings, timing: Timing) -> Notifier {
        let (ctx, crx) = mpsc::channel(QUEUE);
        let (mtx, mrx) = mpsc::channel(QUEUE);
        let lanes = Arc::new([
            Lane {
                tx: ctx,
                on: AtomicBool::new(settings.runs_commands()),
                dropped: AtomicU64::new(0),
                what: "notify_command",
            },
            Lane {
                tx: mtx,
                on: AtomicBool::new(settings.mail.is_some()),
                dropped: AtomicU64::new(0),
                what: "mail",
            },
        ]);
        tracing::info!("notifications: {}", settings.describe());
        let (stx, srx) = watch::channel(settings);
        tokio::spawn(command_task(crx, srx.clone(), timing.clone()));
        tokio::spawn(mail_task(mrx, srx, timing, lanes.clone()));
        Notifier {
            queue: Queue { lanes },
            settings: stx,
        }
    }

    pub fn queue(&self) -> Queue {
        self.queue.clone()
    }

    /// New settings from a reload; changes queued from now on use them.
    pub fn reconfigure(&self, s: Settings) {
        let [c, m] = &*self.queue.lanes;
        c.on.store(s.runs_commands(), Ordering::Relaxed);
        m.on.store(s.mail.is_some(), Ordering::Relaxed);
        if *self.settings.borrow() != s {
            tracing::info!("notifications: {}", s.describe());
        }
        self.settings.send_replace(s);
    }

    /// Changes dropped on a full queue: (notify_command, mail).
    pub fn dropped(&self) -> (u64, u64) {
        let [c, m] = &*self.queue.lanes;
        (
            c.dropped.load(Ordering::Relaxed),
            m.dropped.load(Ordering::Relaxed),
        )
    }

    /// Waits, at most `limit`, until every change queued so far has run its command and
    /// been mailed (the mail being collected goes at once). False on the limit.
    pub async fn flush(&self, limit: Duration) -> bool {
        let lane = |tx: mpsc::Sender<Item>| async move {
            let (ack, done) = oneshot::channel();
            if tx.send(Item::Flush(ack)).await.is_ok() {
                let _ = done.await;
            }
        };
        let [c, m] = &*self.queue.lanes;
        let both = futures_util::future::join(lane(c.tx.clone()), lane(m.tx.clone()));
        tokio::time::timeout(limit, both).await.is_ok()
    }
}

async fn command_task(
    mut rx: mpsc::Receiver<Item>,
    settings: watch::Receiver<Settings>,
    t: Timing,
) {
    while let Some(item) = rx.recv().await {
        let e = match item {
            Item::Event(e) => e,
            Item::Flush(ack) => {
                let _ = ack.send(());
                continue;
            }
        };
        let s = settings.borrow().clone();
        let (argv, env) = invocation(&e, &s);
        // The subject's own command first (keepalived's notify_up/down, quorum_up/down),
        // with the same variables as notify_command but no arguments added.
        if let Some((state, own)) = s.hooks.get(&e.subject).and_then(|h| h.command(&e.state)) {
            let line = own.join(" ");
            let what = format!("{} {state} command", e.subject);
            match crate::pulse::io::command::run_env(own, &env, t.command, &s.policy).await {
                Ok(st) if st.success() => tracing::info!("{what} `{line}` finished"),
                Ok(st) => tracing::warn!("{what} `{line}` failed: {st}"),
                Err(err) => tracing::warn!("{what} `{line}`: {err}"),
            }
        }
        if s.command.is_empty() {
            continue;
        }
        let line = argv.join(" ");
        match crate::pulse::io::command::run_env(&argv, &env, t.command, &s.policy).await {
            Ok(st) if st.success() => tracing::debug!("notify_command `{line}` finished"),
            Ok(st) => tracing::warn!("notify_command `{line}` failed: {st}"),
            Err(err) => tracing::warn!("notify_command `{line}`: {err}"),
        }
    }
}

async fn mail_task(
    mut rx: mpsc::Receiver<Item>,
    settings: watch::Receiver<Settings>,
    t: Timing,
    lanes: Arc<[Lane; 2]>,
) {
    let mut batch = Batch::default();
    let mut reported = 0u64;
    let mut mail_now = |batch: &mut Batch| {
        let dropped = lanes[1].dropped.load(Ordering::Relaxed);
        let unreported = dropped - reported;
        reported = dropped;
        let (events, more) = batch.take();
        deliver(events, more, unreported, settings.clone(), t.clone())
    };
    loop {
        let item = match batch.due_at(t.window) {
            None => rx.recv().await,
            Some(due) => tokio::select! {
                item = rx.recv() => item,
                _ = tokio::time::sleep_until(due.into()) => {
                    mail_now(&mut batch).await;
                    continue;
                }
            },
        };
        match item {
            Some(Item::Event(e)) => batch.push(e, Instant::now()),
            Some(Item::Flush(ack)) => {
                if !batch.is_empty() {
                    mail_now(&mut batch).await;
                }
                let _ = ack.send(());
            }
            None => {
                if !batch.is_empty() {
                    mail_now(&mut batch).await;
                }
                return;
            }
        }
    }
}

/// Sends the mail of one batch, retrying; the settings are read again at each try, so
/// that a reload that corrects them is used.
async fn deliver(
    events: Vec<EventRecord>,
    more: usize,
    dropped: u64,
    settings: watch::Receiver<Settings>,
    t: Timing,
) {
    let what = one_line(&summary(&events, more), 400);
    let mut tries = 0;
    loop {
        let s = settings.borrow().clone();
        let Some(m) = s.mail.clone() else {
            tracing::debug!("notification mail not sent ({what}): mail is no longer configured");
            return;
        };
        let now = crate::clock::unix_ms();
        let r = match compose(&s, &m, &events, more, dropped, now) {
            Ok(msg) => send(&m, &s.host, msg, m.timeout.unwrap_or(t.smtp)).await,
            Err(e) => Err(e),
        };
        let to = m.to.join(", ");
        match r {
            Ok(()) => {
                tracing::info!("notification mail sent to {to} ({what})");
                return;
            }
            Err(e) => match t.retries.get(tries) {
                Some(delay) => {
                    tracing::warn!(
                        "notification mail to {to} through {}:{} failed ({e}); trying again in {} s",
                        m.server,
                        m.port,
                        delay.as_secs_f64()
                    );
                    tries += 1;
                    tokio::time::sleep(*delay).await;
                }
                None => {
                    tracing::error!(
                        "notification mail to {to} through {}:{} failed ({e}); given up after {} tries: {what}",
                        m.server,
                        m.port,
                        tries + 1
                    );
                    return;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: u64, subject: &str, state: &str, cause: &str) -> EventRecord {
        EventRecord {
            at_unix_ms: at,
            subject: subject.into(),
            state: state.into(),
            cause: cause.into(),
        }
    }

    fn settings() -> Settings {
        Settings {
            node: "10.0.0.1".into(),
            host: "lb1".into(),
            command: vec!["/usr/local/bin/notify".into(), "--quiet".into()],
            mail: Some(MailSettings {
                server: "mail.example.com".into(),
                port: 25,
                from: "lvs@example.com".into(),
                to: vec!["ops@example.com".into()],
                timeout: None,
            }),
            virtuals: vec!["web".into(), "a/b".into()],
            policy: Arc::default(),
            hooks: BTreeMap::new(),
        }
    }

    fn global(text: &str) -> GlobalSettings {
        crate::config::parse::parse(text).unwrap().config.global
    }

    #[test]
    fn subjects_are_taken_apart_into_kind_and_name() {
        let s = settings();
        let c = |x: &str| {
            let c = classify(x, &s);
            (c.kind, c.name, c.virtual_server, c.server)
        };
        let some = |x: &str| Some(x.to_string());
        assert_eq!(
            c("director"),
            ("director".into(), "10.0.0.1".into(), None, None)
        );
        assert_eq!(
            c("server web/rs1"),
            ("server".into(), "web/rs1".into(), some("web"), some("rs1"))
        );
        // A virtual server whose name holds `/` is known from the configuration.
        assert_eq!(
            c("server a/b/rs/2"),
            (
                "server".into(),
                "a/b/rs/2".into(),
                some("a/b"),
                some("rs/2")
            )
        );
        assert_eq!(
            c("server other/x"),
            ("server".into(), "other/x".into(), some("other"), some("x"))
        );
        assert_eq!(
            c("address 10.0.0.100"),
            ("address".into(), "10.0.0.100".into(), None, None)
        );
        assert_eq!(
            c("local check gw"),
            ("local-check".into(), "gw".into(), None, None)
        );
        assert_eq!(
            c("service web"),
            ("virtual".into(), "web".into(), some("web"), None)
        );
        assert_eq!(c("odd thing"), ("odd".into(), "thing".into(), None, None));
    }

    #[test]
    fn the_command_gets_kind_name_state_and_the_environment() {
        let s = settings();
        let e = ev(
            1_700_000_000_000,
            "server web/rs1",
            "down",
            "connection refused",
        );
        let (argv, env) = invocation(&e, &s);
        assert_eq!(
            argv,
            [
                "/usr/local/bin/notify",
                "--quiet",
                "server",
                "web/rs1",
                "down"
            ]
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("LVS_KIND"), Some("server"));
        assert_eq!(get("LVS_NAME"), Some("web/rs1"));
        assert_eq!(get("LVS_STATE"), Some("down"));
        assert_eq!(get("LVS_CAUSE"), Some("connection refused"));
        assert_eq!(get("LVS_SUBJECT"), Some("server web/rs1"));
        assert_eq!(get("LVS_VIRTUAL"), Some("web"));
        assert_eq!(get("LVS_SERVER"), Some("rs1"));
        assert_eq!(get("LVS_NODE"), Some("10.0.0.1"));
        assert_eq!(get("LVS_TIME"), Some("2023-11-14T22:13:20Z"));
        assert_eq!(get("LVS_TIME_UNIX_MS"), Some("1700000000000"));
        let (argv, env) = invocation(&ev(0, "director", "active", "peer dead"), &s);
        assert_eq!(&argv[2..], ["director", "10.0.0.1", "active"]);
        assert!(!env
            .iter()
            .any(|(k, _)| k == "LVS_VIRTUAL" || k == "LVS_SERVER"));
    }

    #[test]
    fn mail_subjects_name_the_host_the_change_and_how_many_more() {
        let one = [ev(0, "director", "active", "the peer 10.0.0.2 is dead")];
        assert_eq!(
            mail_subject("lb1", &one, 0),
            "[lvs-director] lb1: director active (the peer 10.0.0.2 is dead)"
        );
        // The director's change heads the subject wherever it is in the batch.
        let burst = [
            ev(0, "address 10.0.0.100", "up", "becoming active"),
            ev(0, "director", "active", "x"),
            ev(0, "address 10.0.0.101", "up", "becoming active"),
        ];
        assert_eq!(
            mail_subject("lb1", &burst, 0),
            "[lvs-director] lb1: director active (x) and 2 more changes"
        );
        let servers = [
            ev(0, "server web/rs1", "down", ""),
            ev(0, "server web/rs2", "down", ""),
        ];
        assert_eq!(
            mail_subject("lb1", &servers, 48),
            "[lvs-director] lb1: server web/rs1 down and 49 more changes"
        );
        assert_eq!(
            mail_subject("lb1", &servers[..1], 1),
            "[lvs-director] lb1: server web/rs1 down and 1 more change"
        );
        // Causes are cut short and never break the header.
        let long = [ev(
            0,
            "server web/rs1",
            "down",
            &format!("line\r\nBcc: x {}", "y".repeat(200)),
        )];
        let s = mail_subject("lb1", &long, 0);
        assert!(!s.contains(['\r', '\n']), "{s}");
        assert!(s.len() < 150 && s.ends_with("...)"), "{s}");
    }

    #[test]
    fn mail_bodies_list_every_change_with_time_and_the_node() {
        let s = settings();
        let events = [
            ev(
                1_700_000_000_000,
                "server web/rs1",
                "down",
                "connection refused",
            ),
            ev(1_700_000_001_000, "server web/rs2", "down", ""),
        ];
        let b = mail_body(&s, &events, 3, 7, 1_700_000_002_000);
        assert!(
            b.starts_with("lvs-director on lb1 (node 10.0.0.1) reports 5 state changes:\n\n"),
            "{b}"
        );
        assert!(
            b.contains("2023-11-14T22:13:20Z  server web/rs1: down (connection refused)\n"),
            "{b}"
        );
        assert!(
            b.contains("2023-11-14T22:13:21Z  server web/rs2: down\n"),
            "{b}"
        );
        assert!(
            b.contains("... and 3 more changes not listed here.\n"),
            "{b}"
        );
        assert!(
            b.contains("7 further state change(s) were not mailed"),
            "{b}"
        );
        assert!(
            b.contains("Host: lb1\nNode: 10.0.0.1\nSent: 2023-11-14T22:13:22Z\n"),
            "{b}"
        );
        let one = mail_body(&s, &events[..1], 0, 0, 0);
        assert!(one.contains("reports a state change:"), "{one}");
        assert!(
            !one.contains("not listed") && !one.contains("not mailed"),
            "{one}"
        );
        assert!(one.is_ascii());
    }

    #[test]
    fn a_mail_is_made_with_the_configured_addresses() {
        let s = settings();
        let m = s.mail.clone().unwrap();
        let msg = compose(&s, &m, &[ev(0, "director", "active", "start")], 0, 0, 0).unwrap();
        let text = String::from_utf8(msg.formatted()).unwrap();
        assert!(text.contains("From: lvs@example.com\r\n"), "{text}");
        assert!(text.contains("To: ops@example.com\r\n"), "{text}");
        assert!(
            text.contains("Subject: [lvs-director] lb1: director active (start)\r\n"),
            "{text}"
        );
        assert!(text.contains("Date: "), "{text}");
        assert!(text.contains("Message-ID: <"), "{text}");
        // Plain text as it is, long lines included; anything else encoded.
        assert!(
            text.contains("Content-Transfer-Encoding: 7bit\r\n"),
            "{text}"
        );
        let env = msg.envelope();
        assert_eq!(env.from().unwrap().to_string(), "lvs@example.com");
        assert_eq!(env.to().len(), 1);
        let long = ev(0, "server web/rs1", "down", &"x".repeat(300));
        let text =
            String::from_utf8(compose(&s, &m, &[long], 0, 0, 0).unwrap().formatted()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: 7bit\r\n"),
            "{text}"
        );
        assert!(text.contains(&"x".repeat(300)), "{text}");
        let accented = ev(0, "server web/rs1", "down", "délai dépassé");
        let text =
            String::from_utf8(compose(&s, &m, &[accented], 0, 0, 0).unwrap().formatted()).unwrap();
        assert!(!text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
    }

    #[test]
    fn batches_collect_for_the_window_after_the_first_change() {
        let w = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut b = Batch::default();
        assert!(b.is_empty() && b.due_at(w).is_none() && !b.due(t0, w));
        b.push(ev(0, "server web/rs1", "down", ""), t0);
        for i in 2..=50 {
            b.push(
                ev(0, &format!("server web/rs{i}"), "down", ""),
                t0 + Duration::from_millis(30 * i),
            );
        }
        // The window runs from the first change, not the last.
        assert_eq!(b.due_at(w), Some(t0 + w));
        assert!(!b.due(t0 + Duration::from_millis(1999), w));
        assert!(b.due(t0 + w, w));
        let (events, more) = b.take();
        assert_eq!((events.len(), more), (50, 0));
        assert!(b.is_empty() && b.due_at(w).is_none());
        // Past MAX_LISTED the changes are counted, not listed.
        for _ in 0..MAX_LISTED + 5 {
            b.push(ev(0, "server web/rs1", "down", ""), t0 + w);
        }
        assert_eq!(b.due_at(w), Some(t0 + w + w));
        let (events, more) = b.take();
        assert_eq!((events.len(), more), (MAX_LISTED, 5));
    }

    #[test]
    fn settings_come_from_the_global_keywords() {
        let g = global(
            "serial_no = 1\nnotify_command = \"/usr/bin/logger -t 'lvs notify'\"\nsmtp_server = 127.0.0.1\n\
             smtp_port = 2525\nsmtp_to = [ ops@example.com noc@example.com ]\n",
        );
        let (s, w) = Settings::from_config(&g, "10.0.0.1", vec![], "lb1").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.command, ["/usr/bin/logger", "-t", "lvs notify"]);
        assert_eq!(
            s.mail,
            Some(MailSettings {
                server: "127.0.0.1".into(),
                port: 2525,
                from: "lvs-director@lb1".into(),
                to: vec!["ops@example.com".into(), "noc@example.com".into()],
                timeout: None,
            })
        );
        assert!(
            s.describe().contains("through 127.0.0.1:2525"),
            "{}",
            s.describe()
        );

        // Port 25 by default; an unusable recipient is left out with a warning.
        let g = global(
            "serial_no = 1\nsmtp_server = mail.example.com\nsmtp_from = lvs@example.com\n\
             smtp_to = [ ops@example.com not-an-address ]\n",
        );
        let (s, w) = Settings::from_config(&g, "n", vec![], "lb1").unwrap();
        let m = s.mail.unwrap();
        assert_eq!(
            (m.port, m.from.as_str(), m.to.len()),
            (25, "lvs@example.com", 1)
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("not-an-address"), "{w:?}");
        assert!(s.command.is_empty());

        // Nothing configured, nothing sent.
        let (s, _) = Settings::from_config(&global("serial_no = 1\n"), "n", vec![], "h").unwrap();
        assert!(s.command.is_empty() && s.mail.is_none());
        assert_eq!(s.describe(), "no notify_command, no mail");

        // A command that cannot be split is an error, as for active_cmd.
        let g = global("serial_no = 1\nnotify_command = \"/bin/x 'open\"\n");
        let e = Settings::from_config(&g, "n", vec![], "h").unwrap_err();
        assert_eq!(
            e.to_string(),
            "notify_command: no closing ' in `/bin/x 'open`"
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_and_never_blocks() {
        let mut s = settings();
        s.mail = None;
        s.command = ["sh", "-c", "sleep 5", "sh"].map(String::from).to_vec();
        s.policy = Arc::new(Policy::Any);
        let n = Notifier::start(s, Timing::default());
        let q = n.queue();
        let started = std::time::Instant::now();
        for i in 0..QUEUE + 100 {
            q.offer(&ev(0, &format!("server web/rs{i}"), "down", ""));
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        let (cmd, mail) = n.dropped();
        // One is running (or about to), QUEUE wait; the rest are dropped.
        assert!((99..=100).contains(&cmd), "{cmd}");
        assert_eq!(mail, 0, "mail is not configured: nothing is offered to it");
        assert!(!n.flush(Duration::from_millis(100)).await);
    }
}
