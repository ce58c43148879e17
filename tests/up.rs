//! `lvs-director up`: the admin UI and the supervisor in one process under one data
//! folder. Started as the binary, driven over HTTP like a browser would: the first
//! administrator through the setup link the service prints, a virtual server created
//! and applied, the supervisor started by that Apply and seen on the monitoring page,
//! then SIGTERM stopping both.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

#[path = "common/raw_http.rs"]
mod raw_http;

use raw_http::{flash, free_port, Client};

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the process if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a log line containing `what`; returns it.
fn wait_for(lines: &mpsc::Receiver<String>, what: &str, log: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
            log.push(l.clone());
            if l.contains(what) {
                return l;
            }
        }
    }
    panic!("no log line with {what:?}:\n{}", log.join("\n"));
}

#[test]
fn up_serves_the_ui_and_apply_starts_the_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvs-director"))
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("LVS_DIRECTOR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut up = Running(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut log = Vec::new();

    // No default user: a one-time setup link is printed.
    let line = wait_for(&lines, "/setup?token=", &mut log);
    let token = line
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    wait_for(&lines, "the supervisor starts at the first Apply", &mut log);
    assert!(data.join("director.db").exists());
    assert!(!data.join("lvs.cf").exists());
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&data), 0o700);

    let mut c = Client {
        port,
        cookies: HashMap::new(),
    };
    assert_eq!(c.get("/control").status, 303, "a session is needed");
    let r = c.get(&format!("/setup?token={token}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.post(
        "/setup",
        &[
            ("token", &token),
            ("user", "admin"),
            ("password", "up-test-password"),
            ("password2", "up-test-password"),
        ],
    );
    assert!(
        flash(&r).contains("Administrator admin created"),
        "{}",
        r.body
    );
    assert_eq!(
        c.get(&format!("/setup?token={token}")).status,
        403,
        "used once"
    );

    let r = c.login("admin", "up-test-password");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("The supervisor is not running"),
        "{}",
        r.body
    );

    let form = c.get("/virtual/new");
    let csrf = form.hidden("csrf");
    let r = c.post(
        "/virtual/new",
        &[
            ("csrf", &csrf),
            ("version", "0"),
            ("name", "web"),
            ("active", "1"),
            ("address", "127.0.0.80"),
            ("address__device", "lo"),
            ("port", "80"),
            ("scheduler", "rr"),
        ],
    );
    assert!(
        flash(&r).contains("Virtual server web created"),
        "{}",
        r.body
    );
    let r = c.post(
        "/virtual/1/real/new",
        &[
            ("csrf", &csrf),
            ("version", "0"),
            ("name", "rs1"),
            ("active", "1"),
            ("address", "127.0.0.11"),
            ("port", "8080"),
            ("weight", "1"),
        ],
    );
    assert!(flash(&r).contains("Real server rs1 added"), "{}", r.body);

    let preview = c.get("/apply");
    assert!(preview.body.contains("+virtual web {"), "{}", preview.body);
    let r = c.post(
        "/apply",
        &[
            ("csrf", &csrf),
            ("digest", &preview.hidden("digest")),
            ("comment", "first"),
        ],
    );
    let said = flash(&r);
    assert!(said.contains("Revision 1 (serial 1) written"), "{said}");
    // On a host without IPVS (or without root) the supervisor still starts, with a
    // fault it reports; with IPVS it simply serves.
    assert!(said.contains("The supervisor started with it"), "{said}");
    let text = std::fs::read_to_string(data.join("lvs.cf")).unwrap();
    assert!(
        text.contains("virtual web {") && text.contains("address = 127.0.0.11"),
        "{text}"
    );

    let live = c.get("/control/live");
    assert_eq!(live.status, 200);
    assert!(live.body.contains("This director"), "{}", live.body);
    assert!(live.body.contains("web"), "{}", live.body);
    assert!(data.join("pulse.sock").exists());

    // SIGTERM stops the UI and the supervisor, which removes its socket.
    let pid = up.0.id() as i32;
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = up.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "up did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", log.join("\n"));
    assert!(
        !data.join("pulse.sock").exists(),
        "the control socket is removed"
    );
}
