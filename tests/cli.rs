//! The command line as a user runs it: exit codes, messages, and what reaches the database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn cmd(db: &Path) -> Command {
    let mut c = Command::cargo_bin("lvs-director").unwrap();
    c.env("LVS_DIRECTOR_DB", db).env_remove("LVS_DIRECTOR_LOG");
    c
}

fn export(db: &Path) -> String {
    let out = cmd(db).arg("export").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn check_config_accepts_piranhas_example_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    cmd(&dir.path().join("db"))
        .arg("check-config")
        .arg(data("data/piranha_example.lvs.cf"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "piranha_example.lvs.cf: OK: 3 virtual servers (3 active), 6 real servers; 1 warning",
        ))
        .stderr(predicate::str::contains(
            "warning: `backup_active`: heartbeats are not authenticated",
        ));
    assert!(
        !dir.path().join("db").exists(),
        "check-config does not touch the database"
    );
}

#[test]
fn check_config_reports_errors_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.cf");
    std::fs::write(
        &file,
        "primary = 192.0.2.1\nvirtual web {\n    active = 1\n    schedular = wlc\n    timeout = 0\n}\n",
    )
    .unwrap();
    let name = file.display().to_string();
    cmd(&dir.path().join("db"))
        .arg("check-config")
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{name}:4:5: error: unknown command `schedular` in virtual web (did you mean `scheduler`?)"
        )));
    std::fs::write(
        &file,
        "primary = 192.0.2.1\nvirtual web {\n    active = 1\n    timeout = 0\n}\n",
    )
    .unwrap();
    cmd(&dir.path().join("db"))
        .arg("check-config")
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{name}:4:15: error: virtual web: `timeout`: timeout = 0"
        )))
        .stderr(predicate::str::contains(format!(
            "{name}:2:9: error: virtual web: `address`"
        )));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    cmd(&dir.path().join("db"))
        .args(["check-config", "/nonexistent/lvs.cf"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/lvs.cf: cannot read"));
    cmd(&dir.path().join("db"))
        .arg("check-config")
        .assert()
        .code(2);
    cmd(&dir.path().join("db"))
        .arg("frobnicate")
        .assert()
        .code(2);
}

#[test]
fn import_then_export_round_trips_and_a_bad_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/folder/director.db");
    cmd(&db)
        .arg("import")
        .arg(data("data/piranha_example.lvs.cf"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "as lvs.cf: 3 virtual servers (3 active), 6 real servers",
        ));
    assert!(
        db.exists(),
        "the database and its folders are created on first use"
    );
    let first = export(&db);
    let original = std::fs::read_to_string(data("data/piranha_example.lvs.cf")).unwrap();
    let canonical =
        lvs_director::config::render(&lvs_director::config::parse(&original).unwrap().config);
    assert_eq!(first, lvs_director::config::whole::with_ends(&canonical));

    // A file with an error: exit 1, the stored configuration is untouched.
    let bad = dir.path().join("bad.cf");
    std::fs::write(
        &bad,
        "primary = 192.0.2.1\nvirtual web {\n    active = 1\n    port = 080\n}\n",
    )
    .unwrap();
    cmd(&db)
        .arg("import")
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            ":4:12: error: `port`: integer expected, found `080`",
        ))
        .stderr(predicate::str::contains("nothing changed"));
    // Valid syntax but failing validation: also nothing changed.
    std::fs::write(&bad, "primary = 192.0.2.1\nbackup_active = 1\n").unwrap();
    cmd(&db).arg("import").arg(&bad).assert().code(1);
    assert_eq!(export(&db), first);
}

#[test]
fn export_to_a_file_replaces_it_leaves_no_temporary_file_and_refuses_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("director.db");
    cmd(&db)
        .arg("import")
        .arg(data("data/piranha_example.lvs.cf"))
        .assert()
        .success();
    let out = dir.path().join("lvs.cf");
    std::fs::write(&out, "old contents\n").unwrap();
    cmd(&db)
        .arg("export")
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), export(&db));
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(
        entries <= 4,
        "no temporary files are left behind (db, wal, shm, lvs.cf)"
    );
    cmd(&db)
        .arg("export")
        .arg("-o")
        .arg(dir.path().join("missing/lvs.cf"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot write"));
}

#[test]
fn passwd_reads_standard_input_and_enforces_length() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("director.db");
    cmd(&db)
        .args(["passwd", "admin"])
        .write_stdin("correct horse battery\n")
        .assert()
        .success()
        .stdout("created user admin\n");
    cmd(&db)
        .args(["passwd", "admin"])
        .write_stdin("another good password\n")
        .assert()
        .success()
        .stdout("changed the password of admin\n");
    cmd(&db)
        .args(["passwd", "bob", "--role", "viewer"])
        .write_stdin("short\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing changed"));
}

#[test]
fn passwd_check_verifies_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("director.db");
    cmd(&db)
        .args(["passwd", "admin"])
        .write_stdin("correct horse battery\n")
        .assert()
        .success();
    cmd(&db)
        .args(["passwd", "admin", "--check"])
        .write_stdin("correct horse battery\n")
        .assert()
        .success()
        .stdout("the password of admin is correct\n");
    // A wrong password and an unknown user get the same answer.
    for (user, password) in [
        ("admin", "wrong horse battery"),
        ("nobody", "correct horse battery"),
    ] {
        cmd(&db)
            .args(["passwd", user, "--check"])
            .write_stdin(format!("{password}\n"))
            .assert()
            .code(1)
            .stderr(format!("lvs-director: wrong password, or no user {user}\n"));
    }
    cmd(&db)
        .args(["passwd", "admin", "--check", "--role", "viewer"])
        .write_stdin("x\n")
        .assert()
        .code(2);
    cmd(&db)
        .args(["passwd", "admin", "--check"])
        .write_stdin("correct horse battery\n")
        .assert()
        .success();
}

#[test]
fn migrate_creates_the_database_and_says_whether_a_user_exists() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state/director.db");
    let shown = db.display().to_string();
    cmd(&db)
        .arg("migrate")
        .assert()
        .success()
        .stdout(format!(
            "{shown}: schema up to date, 0 user(s)\nno user yet: set the first administrator's password with `lvs-director passwd NAME`\n"
        ));
    assert!(db.exists());
    cmd(&db)
        .args(["passwd", "admin"])
        .write_stdin("correct horse battery\n")
        .assert()
        .success();
    cmd(&db)
        .arg("migrate")
        .assert()
        .success()
        .stdout(format!("{shown}: schema up to date, 1 user(s)\n"));
}

#[test]
fn keepalived_files_are_recognised_and_imported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("director.db");
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(
        &conf,
        "! Configuration File for keepalived\n\
         vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 101\n    advert_int 1\n    unicast_src_ip 192.0.2.1\n    unicast_peer {\n        192.0.2.2\n    }\n    virtual_ipaddress {\n        192.0.2.100/24 dev eth0\n    }\n}\n\
         virtual_server 192.0.2.100 80 {\n    delay_loop 6\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 10.0.0.1 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n}\n",
    )
    .unwrap();
    cmd(&db)
        .arg("import")
        .arg(&conf)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "as keepalived.conf: 1 virtual server (1 active), 1 real server",
        ));
    let text = export(&db);
    assert!(text.contains("address = 192.0.2.100 eth0"), "{text}");
    assert!(text.contains("scheduler = rr"), "{text}");
}

#[test]
fn export_never_creates_a_database_or_writes_an_empty_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("lvs.cf");
    std::fs::write(&live, "live contents\n").unwrap();
    let typo = dir.path().join("typo/director.db");
    cmd(&typo)
        .arg("export")
        .arg("-o")
        .arg(&live)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no database there"));
    assert!(
        !typo.exists() && !dir.path().join("typo").exists(),
        "nothing created"
    );
    assert_eq!(std::fs::read_to_string(&live).unwrap(), "live contents\n");

    // A database whose configuration is empty: refused unless --force.
    let db = dir.path().join("director.db");
    cmd(&db)
        .args(["passwd", "admin"])
        .write_stdin("correct horse battery\n")
        .assert()
        .success();
    cmd(&db)
        .arg("export")
        .arg("-o")
        .arg(&live)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no virtual server and no floating address",
        ));
    assert_eq!(std::fs::read_to_string(&live).unwrap(), "live contents\n");
    cmd(&db)
        .args(["export", "--force"])
        .assert()
        .success()
        .stdout(lvs_director::config::whole::with_ends("\n"));
}

#[test]
fn check_config_checks_a_keepalived_file_as_its_import_would() {
    let dir = tempfile::tempdir().unwrap();
    cmd(&dir.path().join("db"))
        .arg("check-config")
        .arg(data("keepalived/nat_web.conf"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "nat_web.conf: OK as keepalived.conf: 1 virtual server (1 active), 3 real servers",
        ))
        .stderr(predicate::str::contains(
            "nat_web.conf:13: warning: `router_id` not imported",
        ));
    assert!(!dir.path().join("db").exists());
}

#[test]
fn a_latin1_file_is_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.cf");
    let mut bytes = b"# R\xe9seau de production\nprimary = 192.0.2.1\n".to_vec();
    bytes.extend_from_slice(
        b"virtual web {\n    active = 1\n    address = 192.0.2.10 eth0:1\n    server a {\n        address = 10.0.0.1\n        active = 1\n    }\n}\n",
    );
    std::fs::write(&file, bytes).unwrap();
    let db = dir.path().join("director.db");
    cmd(&db)
        .arg("import")
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("not UTF-8; it is read as Latin-1"));
    let exported = export(&db);
    assert!(
        lvs_director::config::whole::without_ends(&exported)
            .starts_with("# R\u{e9}seau de production\n"),
        "{exported}"
    );
}

/// The host may or may not have IPVS; either way the answer must be exact.
#[test]
fn ipvs_show_says_plainly_when_the_kernel_has_no_ipvs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cmd(&dir.path().join("db"));
    c.args(["ipvs", "show", "--state-dir"]).arg(dir.path());
    if Path::new("/proc/net/ip_vs").exists() {
        c.assert()
            .success()
            .stdout(predicate::str::contains("IP Virtual Server version"));
    } else {
        c.assert().code(2).stderr(predicate::str::diff(
            "lvs-director: IPVS is not available in this kernel: load the ip_vs module\n",
        ));
    }
}

#[test]
fn ipvs_apply_dry_run_prints_ipvsadm_commands_and_refuses_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("lvs.cf");
    std::fs::write(
        &cf,
        "serial_no = 1\nprimary = 10.0.0.1\nservice = lvs\nnetwork = direct\n\
         virtual web {\n active = 1\n address = 192.0.2.80 eth0:1\n port = 80\n scheduler = wrr\n persistent = 60\n\
         server a {\n  address = 10.0.0.11\n  active = 1\n  weight = 3\n }\n server b {\n  address = 10.0.0.12\n  active = 1\n }\n}\n",
    )
    .unwrap();
    let out = cmd(&dir.path().join("db"))
        .args(["ipvs", "apply", "--dry-run", "--state-dir"])
        .arg(dir.path())
        .arg(&cf)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("ipvsadm -A -t 192.0.2.80:80 -s wrr -p 60 -M 255.255.255.255\n")
            && out.contains("ipvsadm -a -t 192.0.2.80:80 -r 10.0.0.11:80 -g -w 3\n")
            && out.contains("ipvsadm -a -t 192.0.2.80:80 -r 10.0.0.12:80 -g -w 1\n"),
        "{out}"
    );
    // A dry run never records ownership.
    assert!(!dir.path().join("ipvs-owned.json").exists());

    std::fs::write(
        &cf,
        "virtual web {\n address = 192.0.2.80 eth0:1\n port = http\n scheduler = nope\n}\n",
    )
    .unwrap();
    cmd(&dir.path().join("db"))
        .args(["ipvs", "apply", "--state-dir"])
        .arg(dir.path())
        .arg(&cf)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("lvs.cf:4").and(predicate::str::contains("nothing changed")),
        );
}

#[test]
fn version_names_the_commit_compiler_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(&dir.path().join("db"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        concat!("lvs-director ", env!("CARGO_PKG_VERSION")),
        "{text}"
    );
    // Built from this repository's checkout: the commit is known.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert!(
        lines[1].starts_with(&format!("commit: {} of ", head.trim())),
        "{text}"
    );
    assert!(lines[2].starts_with("compiler: rustc "), "{text}");
    assert!(
        lines[3].starts_with("target: ") && lines[3].contains(", opt-level "),
        "{text}"
    );
}

/// Under systemd, stderr is the journal's stream and `JOURNAL_STREAM` names it: each
/// line then starts with its syslog priority, without a timestamp of its own. A stderr
/// that is not that stream (a redirection in a service's child) gets plain lines.
#[test]
fn log_lines_carry_their_priority_when_stderr_is_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let run = |stream: &str| {
        let err = dir.path().join("stderr");
        let file = std::fs::File::create(&err).unwrap();
        let meta = file.metadata().unwrap();
        let stream = stream
            .replace("DEV", &meta.dev().to_string())
            .replace("INO", &meta.ino().to_string());
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_lvs-director"))
            .env("LVS_DIRECTOR_DB", dir.path().join("db"))
            // An invalid filter is reported as a warning (and the default used).
            .env("LVS_DIRECTOR_LOG", "lvs_director=loud")
            .env("JOURNAL_STREAM", stream)
            .arg("check-config")
            .arg(data("../packaging/lvs.cf"))
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read_to_string(err).unwrap()
    };
    let journal = run("DEV:INO");
    let first = journal.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("<4> WARN ") && first.contains("LVS_DIRECTOR_LOG=lvs_director=loud"),
        "{journal}"
    );
    let elsewhere = run("DEV:1");
    let first = elsewhere.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(|c: char| c.is_ascii_digit()) && first.contains(" WARN "),
        "{elsewhere}"
    );
}

/// `genhash` prints the MD5 of a page's body (as md5sum(1) would) and the lvs.cf line
/// that checks it; a server that does not answer is an error naming the URL.
#[test]
fn genhash_prints_the_digest_of_the_body() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nstatus: all systems");
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let out = cmd(&dir.path().join("db"))
        .args(["genhash", &url])
        .output()
        .unwrap();
    server.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text,
        format!("{url}: status 200, digest 0ee5dbfcba889ec228d56f564a880d56\ncheck_digest = 0ee5dbfcba889ec228d56f564a880d56\n")
    );
    // Nothing listens there any more.
    let out = cmd(&dir.path().join("db"))
        .args(["genhash", &url, "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url) && err.contains("refused"), "{err}");
}

#[test]
fn apply_writes_records_and_says_so_and_its_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let cf = dir.path().join("lvs.cf");
    let socket = dir.path().join("no-supervisor.sock");
    let apply = |extra: &[&str]| {
        let mut c = cmd(&db);
        c.arg("apply")
            .arg("--lvs-cf")
            .arg(&cf)
            .arg("--control-socket")
            .arg(&socket)
            .args(extra);
        c
    };
    cmd(&db)
        .arg("import")
        .arg(data("data/piranha_example.lvs.cf"))
        .assert()
        .success();

    // A dry run prints the diff and writes nothing.
    apply(&["--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("+virtual "))
        .stdout(predicate::str::contains("Dry run: serial"))
        .stdout(predicate::str::contains("nothing was written"));
    assert!(!cf.exists(), "a dry run writes nothing");

    // Without a terminal, --yes is required.
    apply(&[])
        .write_stdin("y\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("give --yes"));
    assert!(!cf.exists());

    // Applied: the file, the revision, the supervisor's absence said.
    apply(&["--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Revision 1 (serial "))
        .stdout(predicate::str::contains("The supervisor is not running"));
    let text = std::fs::read_to_string(&cf).unwrap();
    let serial = lvs_director::config::publish::serial_of(&text);
    assert!(serial > 0);
    assert_eq!(
        text,
        export(&db).replace(
            &format!(
                "serial_no = {}",
                lvs_director::config::publish::serial_of(&export(&db))
            ),
            &format!("serial_no = {serial}"),
        )
    );

    // Nothing left to apply: nothing written, exit 0.
    apply(&["--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No changes"));
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), text);

    // A configuration with errors (an active virtual server without its address,
    // which only the database can hold): exit 1, nothing written.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = lvs_director::storage::Store::open(&db).await.unwrap();
        let mut c = store.load_config().await.unwrap();
        c.virtuals[0].settings.address = None;
        store
            .replace_config(&c, &lvs_director::storage::Actor::new("t", None))
            .await
            .unwrap();
        store.close().await;
    });
    apply(&["--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error:"))
        .stderr(predicate::str::contains("nothing was written"));
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), text);
}

/// `token create` prints the token alone on its last line, once: the database keeps
/// only its hash. `token list` shows it by name and prefix; `token revoke` ends it.
/// A taken name, a bad name and an unknown token are refused with exit 1.
#[test]
fn tokens_are_created_listed_and_revoked_and_stored_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("director.db");
    let out = cmd(&db)
        .args([
            "token",
            "create",
            "ci-deploy",
            "--role",
            "admin",
            "--expires",
            "30",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().to_string();
    assert!(
        token.starts_with("lvsd_") && token.len() == 5 + 8 + 1 + 64,
        "the last line is the token alone: {stdout}"
    );
    assert!(
        stdout.contains("created token ci-deploy (role admin, expires "),
        "{stdout}"
    );
    let secret = token.rsplit('_').next().unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is not stored"
        );
    }
    cmd(&db)
        .args(["token", "create", "reader", "--role", "viewer"])
        .assert()
        .success()
        .stdout(predicate::str::contains("role viewer, never expires"));
    let prefix = &token[..13];
    cmd(&db)
        .args(["token", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "ci-deploy                admin  {prefix}_…"
        )))
        .stdout(predicate::str::contains("reader"));
    cmd(&db)
        .args(["token", "create", "ci-deploy", "--role", "viewer"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("token ci-deploy already exists"));
    cmd(&db)
        .args(["token", "create", "two words", "--role", "viewer"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("letters, digits"));
    cmd(&db)
        .args(["token", "create", "x", "--role", "viewer", "--expires", "0"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 to 3650 days"));
    cmd(&db)
        .args(["token", "revoke", "ci-deploy"])
        .assert()
        .success()
        .stdout("revoked token ci-deploy\n");
    cmd(&db)
        .args(["token", "revoke", "ci-deploy"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("token ci-deploy not found"));
    let list = cmd(&db).args(["token", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains("ci-deploy"));
}
