//! A small switched network of namespaces for failover tests and the failover bench: a
//! bridge in a "switch" namespace and one veth per node (`eth0` inside the node, named
//! after the node on the switch side). Processes started through [`Lab`] run under
//! `ip netns exec` in their own process group; dropping the lab kills them and deletes
//! every namespace, also when the test fails (then the logs are printed).
//!
//! Code runs "inside" a namespace on a thread that has `setns()`ed into it: sockets made
//! there stay in that namespace, wherever they are used afterwards.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lvs_director::pulse::logic::control::Status;

pub const VIP: &str = "10.77.0.100";
pub const HEARTBEAT_PORT: u16 = 1539;
pub const BIN: &str = env!("CARGO_BIN_EXE_lvs-director");

/// The hosts of the lab network (10.77.0.0/24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    A,
    B,
    Client,
    Rs1,
    Rs2,
    Attacker,
}

impl Node {
    pub const ALL: [Node; 6] = [
        Node::A,
        Node::B,
        Node::Client,
        Node::Rs1,
        Node::Rs2,
        Node::Attacker,
    ];

    /// Short name: the namespace suffix and the switch-side interface.
    pub fn short(self) -> &'static str {
        match self {
            Node::A => "a",
            Node::B => "b",
            Node::Client => "c",
            Node::Rs1 => "rs1",
            Node::Rs2 => "rs2",
            Node::Attacker => "x",
        }
    }

    pub fn ip(self) -> &'static str {
        match self {
            Node::A => "10.77.0.1",
            Node::B => "10.77.0.2",
            Node::Client => "10.77.0.10",
            Node::Rs1 => "10.77.0.21",
            Node::Rs2 => "10.77.0.22",
            Node::Attacker => "10.77.0.66",
        }
    }
}

#[path = "root.rs"]
mod root;
/// Whether this process may build the lab (see `root.rs`).
#[allow(unused_imports)] // the failover bench includes this file and does not use it
pub use root::root_or_skip;

/// Runs a command, panicking with its stderr when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a new thread that has entered namespace `ns` (by name); returns the handle.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("namespace file {path}: {e}"));
        // SAFETY: setns on this thread only, with a valid namespace descriptor.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// Runs `f` inside namespace `ns` and waits for it.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(ns, f)
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The payloads of the UDP datagrams to `port` that cross node `n`'s interfaces during
/// `span`, with their source address: what an attacker on the path records. Read by a
/// packet socket inside the node's namespace; the node's own are included (filter by
/// source).
pub fn capture_udp(lab: &Lab, n: Node, port: u16, span: Duration) -> Vec<(Ipv4Addr, Vec<u8>)> {
    in_ns(&lab.ns(n), move || {
        let proto = (libc::ETH_P_IP as u16).to_be() as i32;
        // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, proto) };
        assert!(
            fd >= 0,
            "packet socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor nobody else owns.
        let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 20_000,
        };
        // SAFETY: a valid timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        assert_eq!(rc, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        let end = Instant::now() + span;
        while Instant::now() < end {
            // SAFETY: reads at most buf.len() bytes into buf.
            let got =
                unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got <= 0 {
                continue;
            }
            let ip = &buf[..got as usize];
            // IPv4 (the socket asked for it), UDP, not a fragment.
            if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
                continue;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let Some(udp) = ip.get(ihl..) else { continue };
            if udp.len() < 8 || u16::from_be_bytes([udp[2], udp[3]]) != port {
                continue;
            }
            let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
            let Some(payload) = udp.get(8..len) else {
                continue;
            };
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            out.push((src, payload.to_vec()));
        }
        out
    })
}

/// Polls `f` every 10 ms until it returns `Some`, or panics after `limit` naming `what`
/// and the last value seen by `last` (for the failure message).
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A process the lab started (a `pulse` or a keepalived), by its id.
#[derive(Debug, Clone)]
pub struct Proc {
    pub name: String,
    pub pid: i32,
    pub log: PathBuf,
    /// The control socket (pulse only).
    pub socket: PathBuf,
}

struct Owned {
    name: String,
    child: Child,
    log: PathBuf,
}

pub struct Lab {
    pub prefix: String,
    pub dir: tempfile::TempDir,
    namespaces: Vec<String>,
    procs: Mutex<Vec<Owned>>,
    /// Extra files whose contents are printed when the test fails.
    logs: Mutex<Vec<PathBuf>>,
}

impl Lab {
    /// Builds the network with these nodes (plus the switch).
    pub fn new(tag: &str, nodes: &[Node]) -> Lab {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "lvsfo-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("lvsfo-")
            .tempdir()
            .expect("temporary directory");
        // The supervisors' scripts directory: root's, writable by root alone, as the
        // rule for commands wants it (the temporary folder above is root's 0700).
        let scripts = dir.path().join("scripts");
        std::fs::create_dir(&scripts).expect("scripts directory");
        std::fs::set_permissions(&scripts, std::fs::Permissions::from_mode(0o755))
            .expect("scripts directory mode");
        let mut lab = Lab {
            prefix,
            dir,
            namespaces: Vec::new(),
            procs: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
        };
        let sw = lab.switch();
        run("ip", &["netns", "add", &sw]);
        lab.namespaces.push(sw.clone());
        run("ip", &["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &sw, "link", "set", "br0", "up"]);
        for &n in nodes {
            let ns = lab.ns(n);
            run("ip", &["netns", "add", &ns]);
            lab.namespaces.push(ns.clone());
            let port = n.short();
            run(
                "ip",
                &[
                    "-n", &sw, "link", "add", "name", port, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            );
            run(
                "ip",
                &["-n", &sw, "link", "set", "dev", port, "master", "br0"],
            );
            run("ip", &["-n", &sw, "link", "set", "dev", port, "up"]);
            let cidr = format!("{}/24", n.ip());
            run("ip", &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    pub fn switch(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    pub fn ns(&self, n: Node) -> String {
        format!("{}-{}", self.prefix, n.short())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write a lab file");
        p
    }

    /// The supervisors' `--scripts-dir`: commands in their lvs.cf must be in it.
    pub fn scripts_dir(&self) -> PathBuf {
        self.path("scripts")
    }

    /// Writes an executable script into [`Lab::scripts_dir`] (root's, mode 0755).
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        let p = self.scripts_dir().join(name);
        std::fs::write(&p, text).expect("write a script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("script mode");
        p
    }

    /// `ip -n NODE …`
    pub fn ip(&self, n: Node, args: &[&str]) -> String {
        let ns = self.ns(n);
        let mut all = vec!["-n", ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Whether `addr` is configured on the node's eth0 (per `ip -n NS addr`).
    pub fn has_addr(&self, n: Node, addr: &str) -> bool {
        let out = self.ip(n, &["-o", "-4", "addr", "show", "dev", "eth0"]);
        out.split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// Sets the switch-side port of a node up or down (the node sees carrier come and
    /// go).
    pub fn set_port(&self, n: Node, up: bool) {
        let sw = self.switch();
        run(
            "ip",
            &[
                "-n",
                &sw,
                "link",
                "set",
                "dev",
                n.short(),
                if up { "up" } else { "down" },
            ],
        );
    }

    /// Starts `args` inside the node's namespace in its own process group, output to a
    /// log file named after `name`.
    pub fn spawn(
        &self,
        n: Node,
        name: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        let log = self.path(&format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(n), program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let pid = child.id() as i32;
        self.procs.lock().unwrap().push(Owned {
            name: name.to_string(),
            child,
            log: log.clone(),
        });
        Proc {
            name: name.to_string(),
            pid,
            log,
            socket: PathBuf::new(),
        }
    }

    /// Starts keepalived's VRRP side (`-P`) in node `n` with this keepalived.conf, in
    /// the foreground, logging to its log file, its pid files in the lab's folder.
    pub fn keepalived(&self, n: Node, name: &str, conf: &str) -> Proc {
        let conf = self.write(&format!("{name}.conf"), conf);
        let pid = self.path(&format!("{name}.pid"));
        let vpid = self.path(&format!("{name}.vrrp.pid"));
        let (conf, pid, vpid) = (
            conf.to_str().unwrap().to_string(),
            pid.to_str().unwrap().to_string(),
            vpid.to_str().unwrap().to_string(),
        );
        self.spawn(
            n,
            name,
            "keepalived",
            &["-n", "-l", "-D", "-P", "-f", &conf, "-p", &pid, "-r", &vpid],
            &[],
        )
    }

    /// Starts `lvs-director pulse` in node `n` with this lvs.cf; `name` tells runs apart
    /// (its config, socket, state directory and log are named after it).
    pub fn pulse(&self, n: Node, name: &str, config: &str) -> Proc {
        let cf = self.write(&format!("{name}.cf"), config);
        // Not root's, as the lvs.cf the admin UI writes: its commands are held to the
        // scripts directory, the case that matters (a root-only file may run anything).
        std::os::unix::fs::chown(&cf, Some(65534), Some(65534)).expect("chown lvs.cf");
        let socket = self.path(&format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let state = self.path(&format!("{name}.state"));
        std::fs::create_dir_all(&state).expect("state dir");
        let level = std::env::var("FO_LOG").unwrap_or_else(|_| "info".into());
        let mut p = self.spawn(
            n,
            name,
            BIN,
            &[
                "pulse",
                "--config",
                cf.to_str().unwrap(),
                "--control-socket",
                socket.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
                "--scripts-dir",
                self.scripts_dir().to_str().unwrap(),
            ],
            &[("LVS_DIRECTOR_LOG", &level)],
        );
        p.socket = socket;
        p
    }

    /// Sends `sig` to the process group of `p`.
    pub fn signal(&self, p: &Proc, sig: i32) {
        // SAFETY: kill(2) on a process group this lab started.
        unsafe { libc::kill(-p.pid, sig) };
    }

    /// Waits for `p` to exit; `None` when it is still running after `limit`.
    pub fn wait_exit(&self, p: &Proc, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            {
                let mut procs = self.procs.lock().unwrap();
                let o = procs
                    .iter_mut()
                    .find(|o| o.child.id() as i32 == p.pid)
                    .expect("a process of this lab");
                if let Some(st) = o.child.try_wait().expect("wait") {
                    return Some(st);
                }
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL to the whole process group, and reaps it (nothing when it has exited).
    pub fn kill(&self, p: &Proc) {
        if self.wait_exit(p, Duration::ZERO).is_some() {
            return;
        }
        self.signal(p, libc::SIGKILL);
        self.wait_exit(p, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{} survived SIGKILL", p.name));
    }

    /// Prints this file with the logs when the test fails.
    pub fn keep_log(&self, path: &Path) {
        self.logs.lock().unwrap().push(path.to_path_buf());
    }

    /// The status of a pulse through `lvs-director status --json`; `None` while its
    /// control socket does not answer.
    pub fn status(&self, p: &Proc) -> Option<Status> {
        let out = Command::new(BIN)
            .args(["status", "--json", "--control-socket"])
            .arg(&p.socket)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("status --json parses as Status"))
    }

    /// Waits until the pulse reports `role`; returns that status.
    pub fn wait_role(&self, p: &Proc, role: &str, limit: Duration) -> Status {
        let mut last = String::from("no answer");
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.status(p) {
                if s.node.role == role {
                    return s;
                }
                last = format!("{} (fault {:?})", s.node.role, s.node.fault);
            }
            if Instant::now() >= end {
                panic!(
                    "{} did not become {role} within {limit:?}; last seen: {last}",
                    p.name
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `lvs-director ctl ARGS` against a pulse: (success, output).
    pub fn ctl(&self, p: &Proc, args: &[&str]) -> (bool, String) {
        let out = Command::new(BIN)
            .arg("ctl")
            .args(args)
            .arg("--control-socket")
            .arg(&p.socket)
            .output()
            .expect("lvs-director ctl runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn log_of(&self, p: &Proc) -> String {
        std::fs::read_to_string(&p.log).unwrap_or_default()
    }

    fn print_logs(&self) {
        let mut files: Vec<PathBuf> = self
            .procs
            .lock()
            .unwrap()
            .iter()
            .map(|o| o.log.clone())
            .collect();
        files.extend(self.logs.lock().unwrap().iter().cloned());
        files.dedup();
        for f in files {
            eprintln!("----- {} -----", f.display());
            eprintln!("{}", std::fs::read_to_string(&f).unwrap_or_default());
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut procs = std::mem::take(&mut *self.procs.lock().unwrap_or_else(|e| e.into_inner()));
        for o in &mut procs {
            if o.child.try_wait().ok().flatten().is_none() {
                // SAFETY: kill(2) on a process group this lab started.
                unsafe { libc::kill(-(o.child.id() as i32), libc::SIGKILL) };
                let _ = o.child.wait();
            }
        }
        if std::thread::panicking() || std::env::var_os("FO_SHOW_LOGS").is_some() {
            eprintln!("logs of {}:", self.prefix);
            *self.procs.lock().unwrap_or_else(|e| e.into_inner()) = procs;
            self.print_logs();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What a test server answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// An HTTP/1.1 response with this status and body to any request.
    Http(u16, String),
    /// Reads one line, answers this line.
    Line(String),
    /// Accepts and closes.
    Accept,
}

/// A TCP server on a listener made inside a namespace, stopped (listener closed) on
/// drop.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(ns: &str, addr: &str, port: u16, answer: Answer) -> Server {
        let at: SocketAddr = format!("{addr}:{port}").parse().expect("address");
        let listener =
            in_ns(ns, move || TcpListener::bind(at)).unwrap_or_else(|e| panic!("bind {at}: {e}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => serve(s, &answer),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(mut s: TcpStream, answer: &Answer) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let done = |b: &[u8]| match answer {
        Answer::Http(..) => b.windows(4).any(|w| w == b"\r\n\r\n"),
        Answer::Line(_) => b.contains(&b'\n'),
        Answer::Accept => true,
    };
    while !done(&buf) {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let reply = match answer {
        Answer::Http(code, body) => format!(
            "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Answer::Line(l) => format!("{l}\n"),
        Answer::Accept => String::new(),
    };
    let _ = s.write_all(reply.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Let the peer read before the close (no RST on unread data).
    let _ = s.read(&mut chunk);
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP GET to `addr:port` made from the current thread (call it inside a
/// namespace): the body, or `None` on any failure within `timeout` per step.
pub fn http_get(addr: &str, port: u16, timeout: Duration) -> Option<String> {
    let at: SocketAddr = format!("{addr}:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&at, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n").ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

impl Lab {
    /// One GET to the VIP from the client namespace: who answered.
    pub fn ask_vip(&self) -> Option<String> {
        in_ns(&self.ns(Node::Client), || {
            http_get(VIP, 80, Duration::from_millis(200))
        })
    }

    /// The "who am I" HTTP responder of a director on 0.0.0.0:80.
    pub fn responder(&self, n: Node) -> Server {
        Server::start(
            &self.ns(n),
            "0.0.0.0",
            80,
            Answer::Http(200, format!("director-{}", n.short())),
        )
    }
}

/// The lvs.cf of the pair, with a floating VIP on eth0.
#[derive(Debug, Clone)]
pub struct PairConfig {
    pub keepalive: &'static str,
    pub deadtime: &'static str,
    pub preempt: bool,
    pub monitor_links: bool,
    pub key_file: Option<PathBuf>,
}

impl Default for PairConfig {
    fn default() -> Self {
        PairConfig {
            keepalive: "0.1",
            deadtime: "0.3",
            preempt: true,
            monitor_links: true,
            key_file: None,
        }
    }
}

impl PairConfig {
    pub fn render(&self) -> String {
        let mut s = format!(
            "serial_no = 3\nprimary = {}\nservice = lvs\nbackup_active = 1\nbackup = {}\n\
             heartbeat_port = {HEARTBEAT_PORT}\nkeepalive = {}\ndeadtime = {}\nnetwork = direct\n\
             monitor_links = {}\npreempt = {}\n",
            Node::A.ip(),
            Node::B.ip(),
            self.keepalive,
            self.deadtime,
            u8::from(self.monitor_links),
            u8::from(self.preempt),
        );
        if let Some(k) = &self.key_file {
            s += &format!("heartbeat_key_file = {}\n", k.display());
        }
        s += &format!(
            "floating www {{\n    active = 1\n    address = {VIP} eth0\n    vip_nmask = 255.255.255.0\n}}\n"
        );
        s
    }
}

/// Writes a heartbeat key file (mode 600) into the lab directory.
pub fn key_file(lab: &Lab, key: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = lab.path("hb.key");
    std::fs::write(&p, key).expect("key file");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}

impl Lab {
    /// Drops `percent` % of the frames the switch forwards, at random and independently
    /// (nftables `numgen random` in a bridge table: this host has no `sch_netem`), and
    /// counts the frames it forwards. 0 removes the loss; the counter is reset.
    pub fn set_loss(&self, percent: u8) {
        let sw = self.switch();
        let _ = Command::new("ip")
            .args([
                "netns", "exec", &sw, "nft", "delete", "table", "bridge", "lab",
            ])
            .stderr(Stdio::null())
            .status();
        let mut rules = String::from(
            "table bridge lab {\n  counter seen {}\n  counter dropped {}\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    counter name seen\n",
        );
        if percent > 0 {
            rules += &format!("    numgen random mod 100 < {percent} counter name dropped drop\n");
        }
        rules += "  }\n}\n";
        let file = self.write("loss.nft", &rules);
        run(
            "ip",
            &["netns", "exec", &sw, "nft", "-f", file.to_str().unwrap()],
        );
    }

    /// Makes `n`'s neighbour entries expire and fail fast (reachable for 0.25 to
    /// 0.75 s unless confirmed, one probe of 0.1 s), so that a test can see in seconds
    /// what takes minutes with the kernel's defaults.
    pub fn quick_neighbours(&self, n: Node) {
        let ns = self.ns(n);
        for (key, value) in [
            ("base_reachable_time_ms", "500"),
            ("delay_first_probe_time", "1"),
            ("retrans_time_ms", "100"),
            ("ucast_solicit", "1"),
            ("mcast_solicit", "1"),
        ] {
            let setting = format!("net.ipv4.neigh.eth0.{key}={value}");
            run(
                "ip",
                &["netns", "exec", &ns, "sysctl", "-q", "-w", &setting],
            );
        }
    }

    /// The switch drops every ARP frame from now on (a table of its own, beside the
    /// loss's).
    pub fn drop_arp(&self) {
        let rules = "table bridge noarp {\n  chain forward {\n    type filter hook forward priority -1; policy accept;\n    ether type arp drop\n  }\n}\n";
        let file = self.write("arp.nft", rules);
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.switch(),
                "nft",
                "-f",
                file.to_str().unwrap(),
            ],
        );
    }

    /// Frames the switch forwarded (before the loss) and dropped since [`Lab::set_loss`]:
    /// `(frames, bytes, dropped frames)`.
    pub fn frames(&self) -> (u64, u64, u64) {
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.switch(),
                "nft",
                "list",
                "counters",
                "table",
                "bridge",
                "lab",
            ],
        );
        let figure = |name: &str, what: &str| -> u64 {
            out.split(&format!("counter {name} "))
                .nth(1)
                .and_then(|rest| rest.split(&format!("{what} ")).nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (
            figure("seen", "packets"),
            figure("seen", "bytes"),
            figure("dropped", "packets"),
        )
    }
}

/// Who holds an address, followed from the kernel's address events in each node
/// (`ip monitor address`), so nothing is missed between two samples.
pub struct HolderWatch {
    /// How many nodes are followed.
    nodes: usize,
    /// (when, node index, holds)
    events: Arc<Mutex<Vec<(Instant, usize, bool)>>>,
    children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
}

/// What a [`HolderWatch`] saw over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holding {
    /// Times a node that did not hold the address took it.
    pub takeovers: usize,
    /// Total time with more than one holder.
    pub dual: Duration,
    /// The longest single stretch with more than one holder.
    pub longest_dual: Duration,
    /// Total time with no holder.
    pub none: Duration,
}

impl HolderWatch {
    /// Starts following `addr` on `nodes`' eth0.
    pub fn start(lab: &Lab, addr: &str, nodes: &[Node]) -> HolderWatch {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut children = Vec::new();
        let mut readers = Vec::new();
        for (i, &n) in nodes.iter().enumerate() {
            let mut child = Command::new("ip")
                .args(["-o", "-4", "-n", &lab.ns(n), "monitor", "address"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("ip monitor");
            let out = child.stdout.take().expect("ip monitor output");
            let (ev, needle) = (events.clone(), format!(" inet {addr}/"));
            readers.push(std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if line.contains(&needle) {
                        let holds = !line.starts_with("Deleted");
                        ev.lock().unwrap().push((Instant::now(), i, holds));
                    }
                }
            }));
            children.push(child);
        }
        // The monitors must be listening before the state is read, or an event could
        // fall between the two.
        std::thread::sleep(Duration::from_millis(200));
        let now = Instant::now();
        for (i, &n) in nodes.iter().enumerate() {
            if lab.has_addr(n, addr) {
                events.lock().unwrap().insert(0, (now, i, true));
            }
        }
        HolderWatch {
            nodes: nodes.len(),
            events,
            children,
            readers,
        }
    }

    /// What happened between `from` and `to`.
    pub fn holding(&self, from: Instant, to: Instant) -> Holding {
        let events = self.events.lock().unwrap().clone();
        let mut held = vec![false; self.nodes];
        let mut out = Holding::default();
        let mut at = from;
        let mut dual_since: Option<Instant> = None;
        let count = |held: &[bool]| held.iter().filter(|h| **h).count();
        let account = |held: &[bool], a: Instant, b: Instant, out: &mut Holding| {
            if b > a {
                match count(held) {
                    0 => out.none += b - a,
                    1 => {}
                    _ => out.dual += b - a,
                }
            }
        };
        for (t, i, h) in events {
            if t > to {
                break;
            }
            if t > from {
                account(&held, at, t, &mut out);
                at = t;
                if h && !held[i] {
                    out.takeovers += 1;
                }
            }
            held[i] = h;
            let dual = count(&held) > 1;
            match (dual, dual_since) {
                (true, None) => dual_since = Some(t.max(from)),
                (false, Some(s)) => {
                    if t > from {
                        out.longest_dual = out.longest_dual.max(t - s);
                    }
                    dual_since = None;
                }
                _ => {}
            }
        }
        account(&held, at, to, &mut out);
        if let Some(s) = dual_since {
            out.longest_dual = out.longest_dual.max(to - s);
        }
        out
    }
}

impl Drop for HolderWatch {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// The two-router VRRP configurations of the side-by-side comparisons: keepalived's
/// (VRRP part, unicast) and the same in an lvs.cf `vrrp` block. A is master at priority
/// 254, B backup at 253.
/// The `vrrp` block equivalent to [`keepalived_conf`].
pub fn ours_vrrp_conf(version: u8, advert: &str, me: Node, peer: Node, master: bool) -> String {
    format!(
        "serial_no = 5\nvrrp VI_1 {{\n    active = 1\n    interface = eth0\n    state = {state}\n    virtual_router_id = 77\n    \
         priority = {prio}\n    advert_int = {advert}\n    version = {version}\n    unicast_src_ip = {src}\n    unicast_peer = [ {dst} ]\n    \
         virtual_ipaddress = [ \"{VIP}/24 dev eth0\" ]\n}}\n",
        state = if master { "master" } else { "backup" },
        prio = if master { 254 } else { 253 },
        src = me.ip(),
        dst = peer.ip(),
    )
}

pub fn keepalived_conf(version: u8, advert: &str, me: Node, peer: Node, master: bool) -> String {
    let globals = if version == 3 {
        "    vrrp_version 3\n"
    } else {
        ""
    };
    format!(
        "global_defs {{\n    router_id lvsfo_{me}\n{globals}    script_user root\n    enable_script_security\n}}\n\
         vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n    virtual_router_id 77\n    \
         priority {prio}\n    advert_int {advert}\n    unicast_src_ip {src}\n    unicast_peer {{\n        {dst}\n    }}\n    \
         virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n}}\n",
        me = me.short(),
        state = if master { "MASTER" } else { "BACKUP" },
        prio = if master { 254 } else { 253 },
        src = me.ip(),
        dst = peer.ip(),
    )
}

/// The last VRRP state keepalived logged ("MASTER", "BACKUP", "FAULT").
pub fn last_state(log: &str) -> Option<&str> {
    log.lines()
        .rev()
        .find_map(|l| l.split("Entering ").nth(1))
        .and_then(|rest| rest.split(' ').next())
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contender {
    Heartbeat,
    Vrrp,
    Keepalived,
}

impl Contender {
    pub const ALL: [Contender; 3] = [Contender::Heartbeat, Contender::Vrrp, Contender::Keepalived];

    pub fn label(self) -> &'static str {
        match self {
            Contender::Heartbeat => "lvs-director heartbeat 0.2/0.6",
            Contender::Vrrp => "lvs-director VRRPv3 advert 0.2",
            Contender::Keepalived => "keepalived VRRPv3 advert 0.2",
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Contender::Heartbeat => "hb",
            Contender::Vrrp => "vr",
            Contender::Keepalived => "ka",
        }
    }
}

/// One pair of a loss comparison on its own switch, with equal timers whatever runs
/// it: lvs-director's heartbeat (`keepalive = 0.2`, `deadtime = 0.6`), lvs-director's
/// VRRPv3 engine or keepalived (`advert_int 0.2`), A holding the address, B standing
/// by, its holders followed from the start.
pub struct Arena {
    pub contender: Contender,
    pub lab: Lab,
    procs: Vec<Proc>,
    watch: Option<HolderWatch>,
}

impl Arena {
    pub fn start(contender: Contender) -> Arena {
        let lab = Lab::new(&format!("loss{}", contender.tag()), &[Node::A, Node::B]);
        Arena::start_on(lab, contender)
    }

    /// As [`Arena::start`], on a lab of nodes A and B prepared by the caller.
    pub fn start_on(lab: Lab, contender: Contender) -> Arena {
        lab.set_loss(0);
        let key = key_file(&lab, b"a shared heartbeat key for the loss bench");
        let procs = match contender {
            Contender::Heartbeat => {
                let cfg = PairConfig {
                    keepalive: "0.2",
                    deadtime: "0.6",
                    key_file: Some(key),
                    ..PairConfig::default()
                }
                .render();
                vec![
                    lab.pulse(Node::B, "hb-b", &cfg),
                    lab.pulse(Node::A, "hb-a", &cfg),
                ]
            }
            Contender::Vrrp => vec![
                lab.pulse(
                    Node::B,
                    "vr-b",
                    &ours_vrrp_conf(3, "0.2", Node::B, Node::A, false),
                ),
                lab.pulse(
                    Node::A,
                    "vr-a",
                    &ours_vrrp_conf(3, "0.2", Node::A, Node::B, true),
                ),
            ],
            Contender::Keepalived => vec![
                lab.keepalived(
                    Node::B,
                    "ka-b",
                    &keepalived_conf(3, "0.2", Node::B, Node::A, false),
                ),
                lab.keepalived(
                    Node::A,
                    "ka-a",
                    &keepalived_conf(3, "0.2", Node::A, Node::B, true),
                ),
            ],
        };
        let mut arena = Arena {
            contender,
            lab,
            procs,
            watch: None,
        };
        arena.settle();
        arena.watch = Some(HolderWatch::start(&arena.lab, VIP, &[Node::A, Node::B]));
        arena
    }

    /// Waits (without loss) until A alone holds the address and has for a second.
    pub fn settle(&self) {
        let alone = || {
            let ok = self.lab.has_addr(Node::A, VIP) && !self.lab.has_addr(Node::B, VIP);
            ok && (self.contender != Contender::Keepalived
                || (last_state(&self.lab.log_of(&self.procs[1])) == Some("MASTER")
                    && last_state(&self.lab.log_of(&self.procs[0])) == Some("BACKUP")))
        };
        let since = std::cell::Cell::new(None::<Instant>);
        wait_for(
            Duration::from_secs(30),
            &format!("{}: A alone holding the address", self.contender.label()),
            || {
                if !alone() {
                    since.set(None);
                    return None;
                }
                let t = since.get().unwrap_or_else(Instant::now);
                since.set(Some(t));
                (t.elapsed() >= Duration::from_secs(1)).then_some(())
            },
        );
    }

    pub fn holding(&self, from: Instant, to: Instant) -> Holding {
        self.watch.as_ref().unwrap().holding(from, to)
    }
}
