//! Notifications against real peers: a minimal SMTP sink written here (the test's peer,
//! not product code: EHLO, optional STARTTLS with a self-signed certificate, MAIL, RCPT,
//! DATA, RSET, QUIT, and a switch to refuse the first transactions with 451) on a
//! loopback port, and `notify_command` as a real script writing its arguments and
//! environment to a file.
//!
//! The first tests drive the notifier through [`Shared::event`], the one place the
//! supervisor records state changes; the last one (root, network namespaces as in
//! `tests/failover.rs`) runs a real `lvs-director pulse` whose real server is stopped
//! and started again, reloads it and stops it, and reads the mail and the script's file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use lvs_director::pulse::io::scripts::Policy;
use lvs_director::pulse::logic::control::NodeStatus;
use lvs_director::pulse::task::notify::{self, Hooks, MailSettings, Notifier, Settings, Timing};
use lvs_director::pulse::task::shared::Shared;

/// One mail as the sink received it.
#[derive(Debug, Clone, Default)]
struct Received {
    ehlo: String,
    from: String,
    to: Vec<String>,
    data: String,
    tls: bool,
}

impl Received {
    fn headers(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(h, _)| h)
    }

    /// A header's value, unfolded.
    fn header(&self, name: &str) -> Option<String> {
        let unfolded = self.headers().replace("\r\n ", " ").replace("\r\n\t", "\t");
        unfolded.split("\r\n").find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    fn body(&self) -> String {
        let b = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        b.replace("\r\n", "\n")
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct SinkOptions {
    starttls: bool,
    /// Transactions answered 451 at DATA before any is accepted.
    fail_first: usize,
}

struct Sink {
    port: u16,
    mails: Arc<Mutex<Vec<Received>>>,
    transactions: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum End {
    Done,
    StartTls,
}

impl Sink {
    fn on_loopback(opts: SinkOptions) -> Sink {
        Sink::start(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), opts)
    }

    /// Serves SMTP on `listener` (made in whatever namespace) from a thread of its own.
    fn start(listener: std::net::TcpListener, opts: SinkOptions) -> Sink {
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let transactions = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (m, t) = (mails.clone(), transactions.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                let acceptor = opts.starttls.then(acceptor);
                tokio::pin!(stopped);
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        c = l.accept() => {
                            let Ok((s, _)) = c else { continue };
                            let (m, t, a) = (m.clone(), t.clone(), acceptor.clone());
                            tokio::spawn(async move { session(s, opts, a, m, t).await });
                        }
                    }
                }
            });
        });
        Sink {
            port,
            mails,
            transactions,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn mails(&self) -> Vec<Received> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits until a mail satisfies `f`; returns it.
    fn wait_mail(&self, limit: Duration, what: &str, f: impl Fn(&Received) -> bool) -> Received {
        let end = Instant::now() + limit;
        loop {
            if let Some(m) = self.mails().into_iter().find(|m| f(m)) {
                return m;
            }
            if Instant::now() >= end {
                panic!(
                    "no mail with {what} within {limit:?}; received: {:#?}",
                    self.mails()
                        .iter()
                        .map(|m| (m.to.clone(), m.subject()))
                        .collect::<Vec<_>>()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::{self, pki_types};
    let cert = rcgen::generate_simple_self_signed(vec!["sink.test".to_string()]).unwrap();
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
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn session(
    s: tokio::net::TcpStream,
    opts: SinkOptions,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mails: Arc<Mutex<Vec<Received>>>,
    transactions: Arc<AtomicUsize>,
) {
    let mut r = BufReader::new(s);
    if r.get_mut()
        .write_all(b"220 sink.test ESMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    let ctx = (opts, &mails, &transactions);
    if let End::StartTls = dialogue(&mut r, acceptor.is_some(), false, ctx).await {
        let Ok(tls) = acceptor.unwrap().accept(r.into_inner()).await else {
            return;
        };
        dialogue(&mut BufReader::new(tls), false, true, ctx).await;
    }
}

fn address(arg: &str) -> String {
    let a = arg.trim();
    let a = a.strip_prefix('<').unwrap_or(a);
    a.split('>').next().unwrap_or("").to_string()
}

async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    offer_tls: bool,
    tls: bool,
    (opts, mails, transactions): (SinkOptions, &Arc<Mutex<Vec<Received>>>, &Arc<AtomicUsize>),
) -> End {
    let mut cur = Received {
        tls,
        ..Default::default()
    };
    loop {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return End::Done,
            Ok(_) => {}
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO ") || upper.starts_with("HELO ") {
            cur.ehlo = cmd[5..].to_string();
            if offer_tls {
                "250-sink.test\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SIZE 10000000\r\n"
            } else {
                "250-sink.test\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n"
            }
            .to_string()
        } else if upper == "STARTTLS" && offer_tls {
            let _ = r.get_mut().write_all(b"220 go ahead\r\n").await;
            let _ = r.get_mut().flush().await;
            return End::StartTls;
        } else if upper.starts_with("MAIL FROM:") {
            cur.from = address(&cmd[10..]);
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            cur.to.push(address(&cmd[8..]));
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            if r.get_mut().write_all(b"354 go on\r\n").await.is_err() {
                return End::Done;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match r.read_line(&mut l).await {
                    Ok(0) | Err(_) => return End::Done,
                    Ok(_) => {}
                }
                if l == ".\r\n" {
                    break;
                }
                data += l.strip_prefix('.').unwrap_or(&l);
            }
            cur.data = data;
            let n = transactions.fetch_add(1, Ordering::SeqCst);
            let reply = if n < opts.fail_first {
                "451 4.3.0 try again later\r\n"
            } else {
                mails.lock().unwrap().push(cur.clone());
                "250 2.0.0 queued\r\n"
            };
            cur = Received {
                tls,
                ehlo: cur.ehlo.clone(),
                ..Default::default()
            };
            reply.into()
        } else if upper == "RSET" {
            cur = Received {
                tls,
                ehlo: cur.ehlo.clone(),
                ..Default::default()
            };
            "250 ok\r\n".into()
        } else if upper == "NOOP" {
            "250 ok\r\n".into()
        } else if upper == "QUIT" {
            let _ = r.get_mut().write_all(b"221 bye\r\n").await;
            return End::Done;
        } else {
            "502 5.5.2 what?\r\n".into()
        };
        if r.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return End::Done;
        }
    }
}

fn fast() -> Timing {
    Timing {
        window: Duration::from_millis(300),
        retries: vec![Duration::from_millis(100), Duration::from_millis(100)],
        command: Duration::from_secs(5),
        smtp: Duration::from_secs(5),
    }
}

fn settings(port: u16, to: &[&str]) -> Settings {
    Settings {
        node: "10.0.0.1".into(),
        host: "lb1".into(),
        command: Vec::new(),
        mail: Some(MailSettings {
            server: "127.0.0.1".into(),
            port,
            from: "lvs@example.com".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            timeout: None,
        }),
        virtuals: vec!["web".into()],
        policy: Default::default(),
        hooks: Default::default(),
    }
}

/// The supervisor's published state, with the notifier attached as `run` does.
fn shared(n: &Notifier) -> Shared {
    let mut s = Shared::new(NodeStatus {
        name: "10.0.0.1".into(),
        ..Default::default()
    });
    s.notify = Some(n.queue());
    s
}

fn body_lines(m: &Received) -> Vec<String> {
    m.body().lines().map(str::to_string).collect()
}

/// A change line of a body: "TIME  SUBJECT: STATE (CAUSE)".
fn lists(m: &Received, change: &str) -> bool {
    body_lines(m).iter().any(|l| {
        l.split_once("  ")
            .is_some_and(|(t, c)| t.ends_with('Z') && c == change)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_for_a_role_change_and_a_real_server_down_and_up() {
    let sink = Sink::on_loopback(SinkOptions::default());
    let n = Notifier::start(
        settings(sink.port, &["ops@example.com", "noc@example.com"]),
        fast(),
    );
    let mut s = shared(&n);
    let wait = |what: &'static str, f: fn(&Received) -> bool| {
        let sink = &sink;
        tokio::task::block_in_place(move || sink.wait_mail(Duration::from_secs(10), what, f))
    };

    s.event("director", "active", "the peer 10.0.0.2 is dead");
    let m = wait("the role change", |m| {
        m.subject().contains("director active")
    });
    assert_eq!(
        m.subject(),
        "[lvs-director] lb1: director active (the peer 10.0.0.2 is dead)"
    );
    assert_eq!(m.header("From").as_deref(), Some("lvs@example.com"));
    assert_eq!(
        m.header("To").as_deref(),
        Some("ops@example.com, noc@example.com")
    );
    assert!(
        m.header("Date").is_some() && m.header("Message-ID").is_some(),
        "{}",
        m.data
    );
    assert_eq!(
        m.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        m.header("Content-Transfer-Encoding").as_deref(),
        Some("7bit")
    );
    assert_eq!(m.from, "lvs@example.com");
    assert_eq!(m.to, ["ops@example.com", "noc@example.com"]);
    assert_eq!(m.ehlo, "lb1");
    assert!(!m.tls, "no STARTTLS offered, none used");
    let b = m.body();
    assert!(
        b.starts_with("lvs-director on lb1 (node 10.0.0.1) reports a state change:\n"),
        "{b}"
    );
    assert!(
        lists(&m, "director: active (the peer 10.0.0.2 is dead)"),
        "{b}"
    );
    assert!(b.contains("\nHost: lb1\nNode: 10.0.0.1\nSent: "), "{b}");

    s.event(
        "server web/rs1",
        "down",
        "connect 10.0.0.21:80: connection refused",
    );
    let m = wait("rs1 down", |m| m.subject().contains("rs1 down"));
    assert_eq!(
        m.subject(),
        "[lvs-director] lb1: server web/rs1 down (connect 10.0.0.21:80: connection refused)"
    );
    assert!(
        lists(
            &m,
            "server web/rs1: down (connect 10.0.0.21:80: connection refused)"
        ),
        "{}",
        m.body()
    );

    s.event("server web/rs1", "up", "3 checks passed");
    let m = wait("rs1 up", |m| m.subject().contains("rs1 up"));
    assert_eq!(
        m.subject(),
        "[lvs-director] lb1: server web/rs1 up (3 checks passed)"
    );
    assert!(n.flush(Duration::from_secs(5)).await);
    assert_eq!(
        sink.mails().len(),
        3,
        "one mail per change, as they were apart"
    );

    // A reload changes the recipients of the next mail; without smtp settings none goes.
    n.reconfigure(settings(sink.port, &["other@example.com"]));
    s.event("director", "reloaded", "lvs.cf serial 2");
    let m = wait("the reload", |m| m.subject().contains("reloaded"));
    assert_eq!(m.to, ["other@example.com"]);
    let mut none = settings(sink.port, &[]);
    none.mail = None;
    n.reconfigure(none);
    s.event("director", "standby", "handed over");
    assert!(n.flush(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.mails().len(), 4, "no mail without smtp settings");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_servers_failing_at_once_make_one_mail() {
    let sink = Sink::on_loopback(SinkOptions::default());
    let n = Notifier::start(settings(sink.port, &["ops@example.com"]), fast());
    let mut s = shared(&n);
    for i in 1..=50 {
        s.event(format!("server web/rs{i}"), "down", "connection refused");
    }
    assert!(n.flush(Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = &mails[0];
    assert_eq!(
        m.subject(),
        "[lvs-director] lb1: server web/rs1 down (connection refused) and 49 more changes"
    );
    for i in 1..=50 {
        assert!(
            lists(m, &format!("server web/rs{i}: down (connection refused)")),
            "rs{i} in {}",
            m.body()
        );
    }
    assert!(
        m.body().contains("reports 50 state changes:"),
        "{}",
        m.body()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_is_used_when_offered_even_with_a_self_signed_certificate() {
    let sink = Sink::on_loopback(SinkOptions {
        starttls: true,
        ..Default::default()
    });
    let n = Notifier::start(settings(sink.port, &["ops@example.com"]), fast());
    shared(&n).event("director", "active", "starting");
    assert!(n.flush(Duration::from_secs(10)).await);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "the mail went over TLS");
    assert_eq!(
        mails[0].subject(),
        "[lvs-director] lb1: director active (starting)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_mail_is_retried_and_an_unreachable_server_is_given_up() {
    let sink = Sink::on_loopback(SinkOptions {
        fail_first: 2,
        ..Default::default()
    });
    let n = Notifier::start(settings(sink.port, &["ops@example.com"]), fast());
    let mut s = shared(&n);
    s.event("server web/rs1", "down", "timeout");
    assert!(n.flush(Duration::from_secs(10)).await);
    assert_eq!(
        sink.transactions.load(Ordering::SeqCst),
        3,
        "two 451s, then accepted"
    );
    assert_eq!(sink.mails().len(), 1);

    // Nobody listens: the retries run out, the notifier goes on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    n.reconfigure(settings(port, &["ops@example.com"]));
    let t0 = Instant::now();
    s.event("server web/rs2", "down", "timeout");
    assert!(n.flush(Duration::from_secs(10)).await);
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "both retries waited"
    );
    n.reconfigure(settings(sink.port, &["ops@example.com"]));
    s.event("server web/rs3", "down", "timeout");
    assert!(n.flush(Duration::from_secs(10)).await);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1].subject().contains("rs3 down"),
        "{:?}",
        mails[1].subject()
    );
}

fn script(dir: &Path, out: &Path) -> PathBuf {
    let p = dir.join("notify.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >> {out}\n\
             printf 'kind=%s name=%s state=%s cause=%s virtual=%s server=%s node=%s subject=%s\\n' \
             \"$LVS_KIND\" \"$LVS_NAME\" \"$LVS_STATE\" \"$LVS_CAUSE\" \"$LVS_VIRTUAL\" \"$LVS_SERVER\" \"$LVS_NODE\" \"$LVS_SUBJECT\" >> {out}\n\
             [ \"$LVS_STATE\" = hang ] && sleep 30\n\
             exit 0\n",
            out = out.display()
        ),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_command_gets_kind_name_state_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calls.txt");
    let sh = script(dir.path(), &out);
    let mut st = settings(1, &[]);
    st.mail = None;
    // Run through /bin/sh so that a script just written cannot be "busy" (ETXTBSY),
    // which the scripts directory's rule refuses: this is about the arguments and the
    // environment, as a root-only lvs.cf may run it (the supervisor below keeps to the
    // rule).
    st.policy = Arc::new(Policy::Any);
    st.command = vec![
        "/bin/sh".into(),
        sh.display().to_string(),
        "--from-test".into(),
    ];
    let mut t = fast();
    t.command = Duration::from_millis(500);
    let n = Notifier::start(st, t);
    let mut s = shared(&n);
    s.event("director", "active", "the peer 10.0.0.2 is dead");
    s.event("server web/rs1", "down", "connection refused");
    // A command that hangs is killed; the next one still runs.
    s.event("address 10.0.0.100", "hang", "test");
    s.event("server web/rs1", "up", "3 checks passed");
    let t0 = Instant::now();
    assert!(n.flush(Duration::from_secs(10)).await);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the hanging one was killed"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "--from-test|director|10.0.0.1|active|kind=director name=10.0.0.1 state=active cause=the peer 10.0.0.2 is dead virtual= server= node=10.0.0.1 subject=director",
            "--from-test|server|web/rs1|down|kind=server name=web/rs1 state=down cause=connection refused virtual=web server=rs1 node=10.0.0.1 subject=server web/rs1",
            "--from-test|address|10.0.0.100|hang|kind=address name=10.0.0.100 state=hang cause=test virtual= server= node=10.0.0.1 subject=address 10.0.0.100",
            "--from-test|server|web/rs1|up|kind=server name=web/rs1 state=up cause=3 checks passed virtual=web server=rs1 node=10.0.0.1 subject=server web/rs1",
        ],
        "{text}"
    );
}

/// keepalived's notify_up / notify_down of a real server and quorum_up / quorum_down
/// of a virtual server: each runs on its own subject's change, as written (no
/// arguments added), with the same `LVS_*` variables; without notify_command too.
#[tokio::test(flavor = "multi_thread")]
async fn a_subjects_own_commands_run_on_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calls.txt");
    let sh = script(dir.path(), &out);
    let cf = format!(
        "serial_no = 1\nprimary = 10.0.0.1\nservice = lvs\n\
         virtual web {{\n active = 1\n address = 10.0.0.100 eth0\n\
         quorum_up = \"/bin/sh {sh} quorum-up\"\n quorum_down = \"/bin/sh {sh} quorum-down\"\n\
         server rs1 {{\n  address = 10.0.1.1\n  active = 1\n\
         notify_up = \"/bin/sh {sh} rs1-up\"\n  notify_down = \"/bin/sh {sh} rs1-down\"\n }}\n\
         server rs2 {{\n  address = 10.0.1.2\n  active = 1\n }}\n}}\n",
        sh = sh.display()
    );
    let config = lvs_director::config::parse(&cf).unwrap().config;
    let mut st = settings(1, &[]);
    st.mail = None;
    st.policy = Arc::new(Policy::Any);
    st.hooks = Hooks::of(&config).unwrap();
    assert_eq!(st.hooks.len(), 2, "{:?}", st.hooks);
    assert!(st.runs_commands(), "hooks alone run commands");
    let n = Notifier::start(st, fast());
    let mut s = shared(&n);
    s.event("server web/rs1", "down", "connection refused");
    s.event("server web/rs2", "down", "connection refused");
    s.event(
        "service web",
        "down",
        "quorum lost: live weight 0 < quorum 1",
    );
    s.event("server web/rs1", "drained", "by an administrator");
    s.event("server web/rs1", "up", "3 checks passed");
    s.event(
        "service web",
        "up",
        "quorum gained: live weight 1 ≥ quorum 1",
    );
    assert!(n.flush(Duration::from_secs(10)).await);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "rs1-down|kind=server name=web/rs1 state=down cause=connection refused virtual=web server=rs1 node=10.0.0.1 subject=server web/rs1",
            "quorum-down|kind=virtual name=web state=down cause=quorum lost: live weight 0 < quorum 1 virtual=web server= node=10.0.0.1 subject=service web",
            "rs1-up|kind=server name=web/rs1 state=up cause=3 checks passed virtual=web server=rs1 node=10.0.0.1 subject=server web/rs1",
            "quorum-up|kind=virtual name=web state=up cause=quorum gained: live weight 1 ≥ quorum 1 virtual=web server= node=10.0.0.1 subject=service web",
        ],
        "{text}"
    );
    let bad = lvs_director::config::parse(&cf.replace("rs1-up", "'unclosed"))
        .unwrap()
        .config;
    let e = Hooks::of(&bad).unwrap_err().to_string();
    assert!(e.starts_with("server web/rs1: notify_up:"), "{e}");
}

/// End to end: a standalone `lvs-director pulse` in a namespace with a real server; the
/// sink listens on 127.0.0.1 inside the director's namespace.
#[test]
fn a_real_supervisor_mails_and_runs_the_command_when_its_real_server_fails() {
    use common::netns::{in_ns, root_or_skip, wait_for, Answer, Lab, Node, Server, VIP};
    if !root_or_skip("a_real_supervisor_mails_and_runs_the_command_when_its_real_server_fails") {
        return;
    }
    let lab = Lab::new("notify", &[Node::A, Node::Rs1]);
    let listener = in_ns(&lab.ns(Node::A), || {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    });
    let sink = Sink::start(listener, SinkOptions::default());
    let out = lab.path("calls.txt");
    // In the scripts directory, run as it is: the supervisor runs nothing else.
    let sh = script(&lab.scripts_dir(), &out);
    std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.keep_log(&out);
    let config = |serial: u32, to: &str| {
        format!(
            "serial_no = {serial}\nprimary = {a}\nservice = lvs\nbackup_active = 0\nnetwork = direct\n\
             notify_command = \"{sh} --e2e\"\nsmtp_server = 127.0.0.1\nsmtp_port = {port}\n\
             smtp_from = lvs@lab.test\nsmtp_to = [ {to} ]\n\
             virtual web {{\n    active = 1\n    address = {VIP} eth0\n    port = 7100\n    scheduler = rr\n    \
             check_interval = 0.2\n    timeout = 0.5\n    rise = 2\n    server rs1 {{\n        address = {rs1}\n        \
             active = 1\n        weight = 5\n    }}\n}}\n",
            a = Node::A.ip(),
            rs1 = Node::Rs1.ip(),
            sh = sh.display(),
            port = sink.port,
        )
    };
    let host = notify::hostname();
    let mut rs1 = Some(Server::start(
        &lab.ns(Node::Rs1),
        "0.0.0.0",
        7100,
        Answer::Accept,
    ));
    let d = lab.pulse(Node::A, "d", &config(1, "ops@lab.test"));
    let health = |lab: &Lab| {
        lab.status(&d).and_then(|s| {
            s.services
                .first()?
                .servers
                .first()
                .map(|r| r.health.clone())
        })
    };
    wait_for(Duration::from_secs(10), "rs1 up", || {
        (health(&lab).as_deref() == Some("up")).then_some(())
    });
    let role = lab.status(&d).unwrap().node.role;
    let long = Duration::from_secs(15);

    // The role this director took at its start (fault on a kernel without IPVS).
    let m = sink.wait_mail(long, "the role", |m| {
        m.subject()
            .starts_with(&format!("[lvs-director] {host}: director {role}"))
    });
    assert!(
        lists_prefix(&m, &format!("director: {role}")),
        "{}",
        m.body()
    );
    assert_eq!(m.from, "lvs@lab.test");
    assert_eq!(m.to, ["ops@lab.test"]);
    assert!(
        m.body().contains(&format!("Node: {}\n", Node::A.ip())),
        "{}",
        m.body()
    );

    // The real server stops: one mail says so, with the check's reason.
    rs1.take();
    let m = sink.wait_mail(long, "rs1 down", |m| {
        m.subject()
            .starts_with(&format!("[lvs-director] {host}: server web/rs1 down"))
    });
    assert!(lists_prefix(&m, "server web/rs1: down ("), "{}", m.body());
    assert_eq!(m.header("To").as_deref(), Some("ops@lab.test"));

    // And comes back.
    rs1 = Some(Server::start(
        &lab.ns(Node::Rs1),
        "0.0.0.0",
        7100,
        Answer::Accept,
    ));
    let m = sink.wait_mail(long, "rs1 up", |m| {
        m.subject()
            .starts_with(&format!("[lvs-director] {host}: server web/rs1 up"))
    });
    assert!(lists_prefix(&m, "server web/rs1: up"), "{}", m.body());

    // A reload brings new recipients: the reload's own mail goes to them.
    lab.write("d.cf", &config(2, "noc@lab.test"));
    let (ok, msg) = lab.ctl(&d, &["reload"]);
    assert!(ok, "{msg}");
    let m = sink.wait_mail(long, "the reload", |m| {
        m.subject().contains("director reloaded")
    });
    assert_eq!(m.to, ["noc@lab.test"]);

    // Stopping, the last change still goes out before the process ends.
    lab.signal(&d, libc::SIGTERM);
    assert!(
        lab.wait_exit(&d, Duration::from_secs(15)).is_some(),
        "pulse stopped"
    );
    let m = sink.wait_mail(Duration::from_secs(2), "the stop", |m| {
        m.to == ["noc@lab.test"] && lists_prefix(m, "director: stopped")
    });
    assert!(m.subject().contains("director stopped"), "{}", m.subject());

    let calls = std::fs::read_to_string(&out).unwrap();
    for want in [
        format!("--e2e|director|{}|{role}|", Node::A.ip()),
        "--e2e|server|web/rs1|down|kind=server name=web/rs1 state=down cause=".to_string(),
        "--e2e|server|web/rs1|up|".to_string(),
        format!("--e2e|director|{}|reloaded|", Node::A.ip()),
        format!("--e2e|director|{}|stopped|", Node::A.ip()),
    ] {
        assert!(
            calls.lines().any(|l| l.starts_with(&want)),
            "{want} in:\n{calls}"
        );
    }
    assert!(
        calls.contains("virtual=web server=rs1 node=10.77.0.1"),
        "{calls}"
    );
    drop(rs1);
}

/// A change line of a body starting with `change`.
fn lists_prefix(m: &Received, change: &str) -> bool {
    body_lines(m).iter().any(|l| {
        l.split_once("  ")
            .is_some_and(|(t, c)| t.ends_with('Z') && c.starts_with(change))
    })
}
