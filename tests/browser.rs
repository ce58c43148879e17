//! The admin UI in a real browser: `lvs-director up` on a free loopback port with a
//! fresh data folder, driven by tests/browser/ui.mjs (playwright-core and Debian's
//! headless Chromium) through login, VIRTUAL SERVER, REAL SERVER, MONITORING SCRIPTS,
//! a refused form, Apply, monitoring, History and Cluster. Screenshots of the main pages land in
//! target/screenshots/.
//!
//! Chromium (`apt-get install chromium`) and tests/browser/node_modules (`npm ci
//! --prefix tests/browser`) are installed by scripts/test.sh; without them this test
//! fails, unless `LVS_DIRECTOR_SKIP_BROWSER=1` asks explicitly to skip it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_lvs-director");

/// The main pages ui.mjs photographs.
const SCREENSHOTS: &[&str] = &[
    "login",
    "control",
    "virtual-servers",
    "virtual-server-form",
    "real-servers",
    "validation-error",
    "monitoring-scripts",
    "apply",
    "history",
    "cluster",
    "global-settings",
    "redundancy",
];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `lvs-director up`, killed when dropped (also when the test panics).
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// What is missing to run the browser, each with how to get it.
fn missing_prerequisites(chromium: &Path, browser_dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!(
            "{} (Debian packages chromium and chromium-driver)",
            chromium.display()
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push("node (Node.js 20 or later) on PATH".into());
    }
    if !browser_dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push(format!(
            "{}/node_modules (npm ci --prefix tests/browser)",
            browser_dir.display()
        ));
    }
    missing
}

/// Waits for `child` to end, killing it after `limit`.
fn wait_limited(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn admin_ui_in_headless_chromium() {
    let browser_dir = manifest_dir().join("tests/browser");
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let missing = missing_prerequisites(&chromium, &browser_dir);
    if !missing.is_empty() {
        if std::env::var("LVS_DIRECTOR_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!(
                "browser test SKIPPED (LVS_DIRECTOR_SKIP_BROWSER=1); missing: {}",
                missing.join(", ")
            );
            return;
        }
        panic!(
            "the browser test needs {}: run scripts/test.sh, which installs them \
             (or set LVS_DIRECTOR_SKIP_BROWSER=1 to skip this test explicitly)",
            missing.join(", ")
        );
    }

    let data = tempfile::tempdir().expect("a temporary data folder");
    let password = format!(
        "browser-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );

    // The administrator, as an operator creates one.
    let mut passwd = Command::new(BIN)
        .arg("--db")
        .arg(data.path().join("director.db"))
        .args(["passwd", "admin"])
        .env_remove("LVS_DIRECTOR_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lvs-director passwd starts");
    {
        use std::io::Write;
        let mut stdin = passwd.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
    }
    let out = passwd.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "lvs-director passwd admin failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The all-in-one service; its log goes to a file, shown when something fails.
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let log = data.path().join("up.log");
    let log_file = File::create(&log).unwrap();
    let child = Command::new(BIN)
        .args(["up", "--listen", &addr.to_string(), "--data"])
        .arg(data.path())
        .env_remove("LVS_DIRECTOR_DB")
        .env("LVS_DIRECTOR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("lvs-director up starts");
    let mut server = Server { child, log };

    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "lvs-director up exited ({status}) before listening on {addr}:\n{}",
                server.log()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lvs-director up does not listen on {addr} after 30 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"));
    let screenshots = target.join("screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).unwrap();
    let lvs_cf = data.path().join("lvs.cf");

    let node_log = data.path().join("ui.log");
    let node_out = File::create(&node_log).unwrap();
    let started = Instant::now();
    let mut node = Command::new("node")
        .arg(browser_dir.join("ui.mjs"))
        .args(["--base", &format!("http://{addr}")])
        .args(["--user", "admin", "--password-env", "LVS_DIRECTOR_PASSWORD"])
        .arg("--lvs-cf")
        .arg(&lvs_cf)
        .arg("--screenshots")
        .arg(&screenshots)
        .arg("--chromium")
        .arg(&chromium)
        .env("LVS_DIRECTOR_PASSWORD", &password)
        .stdin(Stdio::null())
        .stdout(node_out.try_clone().unwrap())
        .stderr(node_out)
        .spawn()
        .expect("node starts");
    let status = wait_limited(&mut node, Duration::from_secs(240));
    let output = std::fs::read_to_string(&node_log).unwrap_or_default();
    println!(
        "---- tests/browser/ui.mjs ({:.1} s) ----\n{output}",
        started.elapsed().as_secs_f64()
    );
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "tests/browser/ui.mjs failed ({s}):\n{output}\n---- lvs-director up ----\n{}",
            server.log()
        ),
        None => panic!(
            "tests/browser/ui.mjs did not finish in 240 s:\n{output}\n---- lvs-director up ----\n{}",
            server.log()
        ),
    }

    // What the browser applied is on disk, and every page was photographed.
    let file = std::fs::read_to_string(&lvs_cf).expect("Apply wrote lvs.cf");
    for want in ["virtual web", "10.0.0.11", "10.0.0.12", "weight = 2"] {
        assert!(file.contains(want), "lvs.cf lacks {want:?}:\n{file}");
    }
    for name in SCREENSHOTS {
        let png = screenshots.join(format!("{name}.png"));
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "no screenshot {}", png.display());
    }
    println!("screenshots in {}", screenshots.display());
    drop(server);
}
