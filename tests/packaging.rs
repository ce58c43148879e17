//! The packages: `tests/packaging/check.sh` builds the .deb and .rpm with
//! `scripts/package.sh`, installs, upgrades and purges the .deb on this machine and
//! inspects the .rpm (see the script's header). It needs root; without root it fails
//! with the reason, and `LVS_DIRECTOR_SKIP_PACKAGING=1` skips it explicitly.
//!
//! The units are `Type=notify`: the other tests here check that `web` and `pulse` tell
//! systemd READY=1 once they serve, RELOADING=1/READY=1 around a reload (pulse) and
//! STOPPING=1 on SIGTERM, through a `NOTIFY_SOCKET` the test listens on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/root.rs"]
mod root;

const BIN: &str = env!("CARGO_BIN_EXE_lvs-director");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn packages_build_install_upgrade_and_purge() {
    if std::env::var_os("LVS_DIRECTOR_SKIP_PACKAGING").is_some_and(|v| v == "1") {
        eprintln!("skipping the packaging test: LVS_DIRECTOR_SKIP_PACKAGING=1");
        return;
    }
    assert!(
        is_root(),
        "the packaging test installs and purges the .deb on this machine: run it as root, \
         or set LVS_DIRECTOR_SKIP_PACKAGING=1 to skip it"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash")
        .arg(repo.join("tests/packaging/check.sh"))
        .current_dir(repo)
        .stdin(Stdio::null())
        .status()
        .expect("cannot run tests/packaging/check.sh");
    assert!(
        status.success(),
        "tests/packaging/check.sh failed ({status}): see its output above"
    );
}

/// The process, killed if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) with our own child's pid.
        assert_eq!(unsafe { libc::kill(self.0.id() as libc::pid_t, sig) }, 0);
    }

    fn wait_success(&mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{status}:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
                return;
            }
            assert!(Instant::now() < deadline, "it did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Stands in for systemd's notification socket.
struct Notify {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl Notify {
    fn new(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Notify { socket, path }
    }

    /// The next message, e.g. "READY=1\n".
    fn next(&self, log: &Path) -> String {
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => panic!(
                "no notification ({e}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

fn spawn(args: &[&str], notify: &Notify, log: &Path) -> Running {
    let log_file = std::fs::File::create(log).unwrap();
    Running(
        Command::new(BIN)
            .args(args)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("LVS_DIRECTOR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn web_notifies_ready_once_listening_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let notify = Notify::new(dir.path());
    let log = dir.path().join("web.log");
    let db = dir.path().join("director.db");
    let lvs_cf = dir.path().join("lvs.cf");
    let socket = dir.path().join("pulse.sock");
    let mut web = spawn(
        &[
            "--db",
            db.to_str().unwrap(),
            "web",
            "--listen",
            "127.0.0.1:0",
            "--lvs-cf",
            lvs_cf.to_str().unwrap(),
            "--control-socket",
            socket.to_str().unwrap(),
        ],
        &notify,
        &log,
    );
    assert_eq!(notify.next(&log), "READY=1\n");
    // Ready means the database exists and the port is bound.
    assert!(db.exists());
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("admin UI on http://127.0.0.1:"), "{said}");
    web.signal(libc::SIGTERM);
    assert_eq!(notify.next(&log), "STOPPING=1\n");
    web.wait_success(&log);
}

#[test]
fn pulse_notifies_ready_reloading_and_stopping() {
    if !root::root_or_skip("pulse_notifies_ready_reloading_and_stopping") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let notify = Notify::new(dir.path());
    let log = dir.path().join("pulse.log");
    let config = dir.path().join("lvs.cf");
    // A port of its own: the packaging test's supervisor may hold 539 meanwhile.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!("serial_no = 1\nbackup_active = 0\nheartbeat_port = {port}\n"),
    )
    .unwrap();
    let socket = dir.path().join("pulse.sock");
    let state = dir.path().join("state");
    let mut pulse = spawn(
        &[
            "pulse",
            "--config",
            config.to_str().unwrap(),
            "--control-socket",
            socket.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        &notify,
        &log,
    );
    assert_eq!(notify.next(&log), "READY=1\n");
    // Ready means the control socket answers.
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());

    pulse.signal(libc::SIGHUP);
    let reloading = notify.next(&log);
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading}");
    let usec = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok(), "{reloading}");
    assert_eq!(notify.next(&log), "READY=1\n");

    // `ctl reload` (the unit's ExecReload) goes through the same place.
    let out = Command::new(BIN)
        .args([
            "ctl",
            "--control-socket",
            socket.to_str().unwrap(),
            "reload",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(notify.next(&log).starts_with("RELOADING=1\n"));
    assert_eq!(notify.next(&log), "READY=1\n");

    pulse.signal(libc::SIGTERM);
    assert_eq!(notify.next(&log), "STOPPING=1\n");
    pulse.wait_success(&log);
}
