//! One director of the sync tests and the sync bench: its files in the lab, its
//! command line, its admin UI and supervisor in its namespace, its metrics and its
//! last revision.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::netns::{in_ns, wait_for, Lab, Node, Proc, BIN};
use lvs_director::storage::Store;

const SECOND: Duration = Duration::from_secs(1);

/// One director's files.
pub struct Director {
    pub node: Node,
    pub db: PathBuf,
    pub cf: PathBuf,
    pub socket: PathBuf,
    pub staged: PathBuf,
}

impl Director {
    pub fn new(lab: &Lab, node: Node) -> Director {
        let dir = lab.path(node.short());
        std::fs::create_dir_all(&dir).unwrap();
        Director {
            node,
            db: dir.join("director.db"),
            cf: dir.join("lvs.cf"),
            socket: dir.join("pulse.sock"),
            staged: dir.join("staged.cf"),
        }
    }

    /// `lvs-director ARGS` inside this director's namespace: (exit code, stdout, stderr).
    pub fn cli(&self, lab: &Lab, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.ns(self.node), BIN, "--db"])
            .arg(&self.db)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `lvs-director ARGS` with `input` on its standard input.
    pub fn cli_with_input(&self, lab: &Lab, args: &[&str], input: &str) -> (i32, String, String) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns(self.node), BIN, "--db"])
            .arg(&self.db)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Stores `text` and applies it, as an administrator of this director would.
    pub fn apply(&self, lab: &Lab, text: &str) -> (i32, String, String) {
        self.store(lab, text);
        self.apply_stored(lab)
    }

    /// Stores `text` (an import).
    pub fn store(&self, lab: &Lab, text: &str) {
        std::fs::write(&self.staged, text).unwrap();
        let (code, _, err) = self.cli(lab, &["import", self.staged.to_str().unwrap()]);
        assert_eq!(code, 0, "import: {err}");
    }

    /// `lvs-director apply --yes` of what is stored.
    pub fn apply_stored(&self, lab: &Lab) -> (i32, String, String) {
        self.cli(
            lab,
            &[
                "apply",
                "--yes",
                "--lvs-cf",
                self.cf.to_str().unwrap(),
                "--control-socket",
                self.socket.to_str().unwrap(),
            ],
        )
    }

    pub fn in_force(&self) -> String {
        std::fs::read_to_string(&self.cf).unwrap_or_default()
    }

    pub fn serial(&self) -> u32 {
        lvs_director::config::publish::serial_of(&self.in_force())
    }

    pub fn web(&self, lab: &Lab) -> Proc {
        let name = format!("web-{}", self.node.short());
        lab.spawn(
            self.node,
            &name,
            BIN,
            &[
                "--db",
                self.db.to_str().unwrap(),
                "web",
                "--listen",
                "127.0.0.1:3636",
                "--lvs-cf",
                self.cf.to_str().unwrap(),
                "--control-socket",
                self.socket.to_str().unwrap(),
                "--scripts-dir",
                lab.scripts_dir().to_str().unwrap(),
                "--metrics-listen",
                "127.0.0.1:9636",
            ],
            &[("LVS_DIRECTOR_LOG", "info")],
        )
    }

    pub fn pulse(&self, lab: &Lab) -> Proc {
        let name = format!("pulse-{}", self.node.short());
        let state = lab.path(&format!("{name}.state"));
        std::fs::create_dir_all(&state).unwrap();
        let mut p = lab.spawn(
            self.node,
            &name,
            BIN,
            &[
                "pulse",
                "--config",
                self.cf.to_str().unwrap(),
                "--control-socket",
                self.socket.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
                "--scripts-dir",
                lab.scripts_dir().to_str().unwrap(),
            ],
            &[("LVS_DIRECTOR_LOG", "info")],
        );
        p.socket = self.socket.clone();
        p
    }

    /// Waits (at most `limit`) until this director's sync sees its peer in step.
    pub fn wait_in_step(&self, lab: &Lab, limit: Duration) {
        wait_for(limit, "the peers in step", || {
            (self.metric(lab, "lvs_director_sync_peer_state{peer=\"10.77.0.") == Some(1.0))
                .then_some(())
        });
    }

    /// One metric of the admin UI's `/metrics` (the first sample whose line starts
    /// with `prefix`).
    pub fn metric(&self, lab: &Lab, prefix: &str) -> Option<f64> {
        let prefix = prefix.to_string();
        let text = self.metrics(lab)?;
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The admin UI's `/metrics`, from inside the namespace.
    pub fn metrics(&self, lab: &Lab) -> Option<String> {
        in_ns(&lab.ns(self.node), || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect("127.0.0.1:9636").ok()?;
            s.set_read_timeout(Some(SECOND)).ok()?;
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            Some(out.split_once("\r\n\r\n")?.1.to_string())
        })
    }

    pub fn latest(&self) -> lvs_director::storage::Revision {
        let db = self.db.clone();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let store = Store::open_existing(&db).await.unwrap();
                let r = store.revisions().latest().await.unwrap().unwrap();
                store.close().await;
                r
            })
    }
}
