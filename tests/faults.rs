//! Storage and file faults, as a user meets them: the database locked by another
//! process past the busy timeout, a full disk under `lvs.cf`. Each must give a clear
//! error at the right place (here the command line's exit code and message), leave the
//! file in force and the history as they were, and lose nothing stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;

#[path = "common/root.rs"]
mod root;

fn cmd(db: &Path) -> Command {
    let mut c = Command::cargo_bin("lvs-director").unwrap();
    c.env("LVS_DIRECTOR_DB", db).env_remove("LVS_DIRECTOR_LOG");
    c
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A database with Piranha's example imported and applied once into `cf` (revision 1),
/// then edited (one virtual server fewer), so that the next Apply has work to do.
struct Site {
    db: PathBuf,
    cf: PathBuf,
    socket: PathBuf,
    applied: String,
}

impl Site {
    fn new(dir: &Path, cf: PathBuf) -> Site {
        let db = dir.join("db");
        let site = Site {
            socket: dir.join("no-supervisor.sock"),
            db,
            cf,
            applied: String::new(),
        };
        cmd(&site.db)
            .arg("import")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/piranha_example.lvs.cf"))
            .assert()
            .success();
        site.apply().assert().success();
        let applied = std::fs::read_to_string(&site.cf).unwrap();
        runtime().block_on(async {
            let store = lvs_director::storage::Store::open(&site.db).await.unwrap();
            let mut c = store.load_config().await.unwrap();
            c.virtuals.pop();
            store
                .replace_config(&c, &lvs_director::storage::Actor::new("t", None))
                .await
                .unwrap();
            store.close().await;
        });
        Site { applied, ..site }
    }

    fn apply(&self) -> Command {
        let mut c = cmd(&self.db);
        c.arg("apply")
            .arg("--lvs-cf")
            .arg(&self.cf)
            .arg("--control-socket")
            .arg(&self.socket)
            .arg("--yes");
        c
    }

    fn revisions(&self) -> usize {
        runtime().block_on(async {
            let store = lvs_director::storage::Store::open(&self.db).await.unwrap();
            let n = store.revisions().list(100, 0).await.unwrap().len();
            store.close().await;
            n
        })
    }

    /// An Apply refused because `lvs.cf` cannot be written for `cause`: exit 2, the path
    /// and the cause said, and nothing changed.
    fn cannot_write(&self, cause: &str) {
        self.apply()
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "nothing was applied: cannot write",
            ))
            .stderr(predicate::str::contains(self.cf.display().to_string()))
            .stderr(predicate::str::contains(cause));
        self.unchanged();
    }

    /// Nothing changed: the file in force is the one applied first, the history has
    /// that one revision, and the stored edit is still there to apply.
    fn unchanged(&self) {
        assert_eq!(std::fs::read_to_string(&self.cf).unwrap(), self.applied);
        assert_eq!(self.revisions(), 1);
        let dry = cmd(&self.db)
            .args(["apply", "--dry-run", "--lvs-cf"])
            .arg(&self.cf)
            .arg("--control-socket")
            .arg(&self.socket)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&dry.stdout);
        assert!(dry.status.success() && out.contains("\n-virtual "), "{out}");
    }
}

#[test]
fn apply_with_the_database_locked_past_the_busy_timeout_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path(), dir.path().join("lvs.cf"));
    // Another process holds the write lock (a `BEGIN IMMEDIATE` in this test process)
    // for longer than the 5 s busy timeout.
    let rt = runtime();
    let url = format!("sqlite://{}", site.db.display());
    let mut conn: sqlx::SqliteConnection = rt.block_on(sqlx::Connection::connect(&url)).unwrap();
    rt.block_on(sqlx::Executor::execute(&mut conn, "BEGIN IMMEDIATE"))
        .unwrap();
    let t = Instant::now();
    site.apply()
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "nothing was applied: the database could not record the revision",
        ))
        .stderr(predicate::str::contains("locked"))
        .stderr(predicate::str::contains("the file in force is unchanged"));
    assert!(
        t.elapsed() >= Duration::from_secs(4),
        "it waited for the lock first"
    );
    rt.block_on(sqlx::Executor::execute(&mut conn, "ROLLBACK"))
        .unwrap();
    drop(conn);
    site.unchanged();
    // Once the lock is gone, the same Apply goes through.
    site.apply()
        .assert()
        .success()
        .stdout(predicate::str::contains("Revision 2 "));
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Std::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Std::new("umount").arg(&self.0).status();
    }
}

/// A site whose `lvs.cf` is on a tmpfs of `size` of its own (the database is not).
fn site_on_tmpfs(size: &str) -> (tempfile::TempDir, Tmpfs, Site) {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let fs = Tmpfs::mount(&etc, size);
    let site = Site::new(dir.path(), etc.join("lvs.cf"));
    (dir, fs, site)
}

#[test]
fn apply_on_a_full_disk_changes_nothing() {
    if !root::root_or_skip("apply_on_a_full_disk_changes_nothing") {
        return;
    }
    let (_dir, _fs, site) = site_on_tmpfs("256k");
    let etc = site.cf.parent().unwrap().to_path_buf();
    // Fill the file system: the new lvs.cf (written beside the old one, then renamed
    // over it) has no room.
    let filler = etc.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    site.cannot_write("No space left on device");
    let stray: Vec<_> = std::fs::read_dir(&etc)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lvs.cf" && n != "filler")
        .collect();
    assert!(stray.is_empty(), "temporary files left behind: {stray:?}");
    // Room again: it goes through.
    std::fs::remove_file(&filler).unwrap();
    site.apply()
        .assert()
        .success()
        .stdout(predicate::str::contains("Revision 2 "));
}

impl Tmpfs {
    fn read_only(&self) {
        let ok = Std::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {} read-only", self.0.display());
    }
}

#[test]
fn apply_on_a_read_only_file_system_changes_nothing() {
    if !root::root_or_skip("apply_on_a_read_only_file_system_changes_nothing") {
        return;
    }
    let (_dir, fs, site) = site_on_tmpfs("1m");
    fs.read_only();
    site.cannot_write("Read-only file system");
}

#[test]
fn a_database_on_a_read_only_file_system_is_refused_with_its_path() {
    if !root::root_or_skip("a_database_on_a_read_only_file_system_is_refused_with_its_path") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let var = dir.path().join("var");
    let fs = Tmpfs::mount(&var, "1m");
    let db = var.join("db");
    let cf = dir.path().join("lvs.cf");
    cmd(&db)
        .arg("import")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/piranha_example.lvs.cf"))
        .assert()
        .success();
    fs.read_only();
    let want = format!("database {}: cannot open it for writing", db.display());
    cmd(&db)
        .args(["apply", "--yes", "--lvs-cf"])
        .arg(&cf)
        .arg("--control-socket")
        .arg(dir.path().join("none.sock"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(want.clone()))
        .stderr(predicate::str::contains("Read-only file system"));
    assert!(!cf.exists(), "nothing written");
    cmd(&db)
        .args(["web", "--listen", "127.0.0.1:0", "--lvs-cf"])
        .arg(&cf)
        .timeout(Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(want));
}

#[test]
fn a_damaged_database_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A database file that is garbage from its first byte (no write-ahead log beside
    // it that could stand in for its first page).
    let db = dir.path().join("db");
    std::fs::write(&db, vec![b'#'; 64 * 1024]).unwrap();
    let cf = dir.path().join("lvs.cf");
    let in_force = "serial_no = 3\n";
    std::fs::write(&cf, in_force).unwrap();
    let said = |c: &mut Command| {
        c.timeout(Duration::from_secs(20))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "database {}",
                db.display()
            )))
            .stderr(predicate::str::contains("not a database"))
            .stderr(predicate::str::contains("restore it from a backup"));
    };
    said(
        cmd(&db)
            .args(["apply", "--yes", "--lvs-cf"])
            .arg(&cf)
            .arg("--control-socket")
            .arg(dir.path().join("none.sock")),
    );
    said(
        cmd(&db)
            .args(["web", "--listen", "127.0.0.1:0", "--lvs-cf"])
            .arg(&cf),
    );
    said(cmd(&db).arg("export"));
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), in_force);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        vec![b'#'; 64 * 1024],
        "left as it was"
    );
}

#[test]
fn a_garbage_truncated_or_cut_lvs_cf_is_refused_at_start_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/piranha_example.lvs.cf"),
    )
    .unwrap();
    let mut garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    garbage.extend_from_slice(b"\n");
    for (name, bytes) in [
        ("garbage.cf", garbage),
        (
            "truncated.cf",
            text.as_bytes()[..text.len() * 2 / 3].to_vec(),
        ),
        ("empty.cf", Vec::new()),
        // Written by lvs-director, then cut between two blocks: it would read as a
        // valid configuration without the last virtual server.
        ("cut-between-blocks.cf", {
            let whole = lvs_director::config::whole::with_ends(&text);
            whole.as_bytes()[..whole.rfind("\nvirtual ").unwrap() + 1].to_vec()
        }),
    ] {
        let cf = dir.path().join(name);
        std::fs::write(&cf, &bytes).unwrap();
        let out = Command::cargo_bin("lvs-director")
            .unwrap()
            .arg("pulse")
            .arg("--config")
            .arg(&cf)
            .arg("--control-socket")
            .arg(dir.path().join("pulse.sock"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!("{}:", cf.display())) && err.contains("error:"),
            "{name}: {err}"
        );
        assert!(
            !dir.path().join("pulse.sock").exists(),
            "{name}: it did not start"
        );
        if name.starts_with("cut") {
            assert!(err.contains("cut short"), "{name}: {err}");
        }
        assert!(
            !err.chars().any(|c| c.is_control() && c != '\n'),
            "{name}: control characters reach the terminal: {err:?}"
        );
    }
}
