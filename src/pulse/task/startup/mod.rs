//! What the supervisor starts from: `lvs.cf` read and checked, and the facts of the
//! machine it needs (host names resolved, this machine's addresses, the heartbeat
//! key). This file does that I/O; [`plan`] turns text and facts into everything the
//! tasks need, without I/O, and reports each problem as a typed [`Problem`].

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::value::Host;
use crate::config::Config;
use crate::ipvs::desired::{resolve_system, ResolveError};
use crate::pulse::io::addr::Rtnl;
use crate::pulse::io::scripts;

mod plan;

pub use plan::{plan, Prepared, Problem, LOAD_INTERVAL};

/// What the machine says, gathered once per load.
#[derive(Debug)]
pub struct Facts {
    /// Every host name of the configuration, resolved (or why not).
    pub names: BTreeMap<String, Result<IpAddr, ResolveError>>,
    /// This machine's addresses, or why they could not be read.
    pub local: Result<HashSet<IpAddr>, String>,
    /// The heartbeat key, when `heartbeat_key_file` is set.
    pub key: Option<Result<Arc<[u8]>, KeyFileError>>,
    /// This machine's host name (the default sender of notification mail).
    pub hostname: String,
}

/// Reads lvs.cf, checks it and gathers the facts it needs, then plans. Each problem
/// is reported; none is fatal before all are known where they can be.
///
/// `scripts_dir` and `trust_root_config` are the supervisor's options of the same
/// names: where commands must be, and whether a root-only lvs.cf may run any.
pub fn prepare(
    path: &Path,
    scripts_dir: &Path,
    trust_root_config: bool,
) -> Result<Prepared, Vec<Problem>> {
    let name = path.display().to_string();
    let file = scripts::read_config(path, scripts_dir, trust_root_config).map_err(|source| {
        vec![Problem::Unreadable {
            file: name.clone(),
            source,
        }]
    })?;
    match &file.restricted_because {
        Some(why) => tracing::debug!(
            "{name}: commands restricted to {} ({why})",
            scripts_dir.display()
        ),
        None => tracing::info!(
            "{name} belongs to root alone: its commands may run any program (not only those in {})",
            scripts_dir.display()
        ),
    }
    let (text, _) = crate::config::decode_text(&file.bytes);
    let (config, warnings) = crate::pulse::logic::node::load(&name, &text)
        .map_err(|lines| lines.into_iter().map(Problem::Config).collect::<Vec<_>>())?;
    let facts = gather(&config);
    plan(&name, config, warnings, Arc::new(file.policy), facts)
}

/// The host names a configuration uses, each once.
fn host_names(config: &Config) -> Vec<&Host> {
    let mut hosts: Vec<&Host> = Vec::new();
    let g = &config.global;
    hosts.extend(
        [&g.primary, &g.primary_private, &g.backup, &g.backup_private]
            .into_iter()
            .flatten(),
    );
    for vs in &config.virtuals {
        hosts.extend(vs.settings.address.as_ref().map(|a| &a.addr));
        hosts.extend(
            vs.servers
                .iter()
                .filter_map(|r| r.settings.address.as_ref()),
        );
    }
    hosts.extend(
        config
            .local_checks
            .iter()
            .filter_map(|l| l.settings.address.as_ref()),
    );
    hosts.extend(
        config
            .floating
            .iter()
            .filter_map(|f| f.settings.address.as_ref().map(|a| &a.addr)),
    );
    hosts
}

/// The facts `config` needs: names looked up once per load (every later use reads
/// the table), the machine's addresses, the key file.
pub fn gather(config: &Config) -> Facts {
    let mut names = BTreeMap::new();
    for h in host_names(config) {
        if let Host::Name(n) = h {
            names.entry(n.clone()).or_insert_with(|| resolve_system(h));
        }
    }
    let local = Rtnl::connect()
        .and_then(|mut rt| rt.addresses())
        .map(|list| list.into_iter().map(|a| a.addr).collect())
        .map_err(|e| e.to_string());
    let key = config
        .global
        .heartbeat_key_file
        .as_ref()
        .map(|p| read_key(&p.0));
    Facts {
        names,
        local,
        key,
        hostname: crate::pulse::task::notify::hostname(),
    }
}

/// The largest heartbeat key file accepted: a key is tens of bytes, so anything larger
/// is a wrong path (a log, a device), not a key.
pub const MAX_KEY_FILE: u64 = 4096;

/// Why `heartbeat_key_file` cannot be used. Each names the path.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("heartbeat_key_file {path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("heartbeat_key_file {path}: not a regular file (it is {kind}); give the path of a file holding the key")]
    NotAFile { path: String, kind: &'static str },
    #[error("heartbeat_key_file {path}: {size} bytes is too large for a key (at most {MAX_KEY_FILE}); is it the right file?")]
    TooLarge { path: String, size: u64 },
    #[error("heartbeat_key_file {path}: the key has {len} byte(s); use at least 16 (e.g. `head -c 32 /dev/urandom | base64 > {path}`)")]
    TooShort { path: String, len: usize },
}

fn file_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads the shared heartbeat key. Opened without blocking (a FIFO would otherwise
/// wait for a writer) and checked on the opened descriptor, so that what is read is
/// what was checked; read with a limit, so that a device or a file growing under us
/// is never read whole.
pub fn read_key(path: &str) -> Result<Arc<[u8]>, KeyFileError> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| KeyFileError::Io {
        path: path.to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_string(),
            kind: file_kind(meta.file_type()),
        });
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_string(),
            size: meta.len(),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_string(),
            size: bytes.len() as u64,
        });
    }
    let key = bytes.trim_ascii_end();
    if key.len() < 16 {
        return Err(KeyFileError::TooShort {
            path: path.to_string(),
            len: key.len(),
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "heartbeat_key_file {path} can be read by other users (mode {:o}): chmod 600 it",
            mode & 0o777
        );
    }
    Ok(Arc::from(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::time::Duration;

    /// `read_key` on another thread, so that a version that blocks fails the test
    /// instead of hanging it.
    fn read_key_within(path: &Path, limit: Duration) -> Result<Arc<[u8]>, KeyFileError> {
        let p = path.to_str().unwrap().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_key(&p));
        });
        rx.recv_timeout(limit)
            .unwrap_or_else(|_| panic!("read_key({}) blocked", path.display()))
    }

    #[test]
    fn a_key_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let limit = Duration::from_secs(5);

        let good = dir.path().join("good.key");
        std::fs::write(&good, "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = read_key_within(&good, limit).expect("a good key file is read");
        assert_eq!(&key[..], b"0123456789abcdef0123456789abcdef");

        let fifo = dir.path().join("key.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_key_within(&fifo, limit).unwrap_err();
        assert!(
            matches!(e, KeyFileError::NotAFile { kind: "a FIFO", .. }),
            "{e}"
        );
        assert!(e.to_string().contains(fifo.to_str().unwrap()), "{e}");

        let e = read_key_within(Path::new("/dev/zero"), limit).unwrap_err();
        assert!(
            matches!(
                e,
                KeyFileError::NotAFile {
                    kind: "a character device",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("/dev/zero"), "{e}");

        let e = read_key_within(dir.path(), limit).unwrap_err();
        assert!(
            matches!(
                e,
                KeyFileError::NotAFile {
                    kind: "a directory",
                    ..
                }
            ),
            "{e}"
        );

        let big = dir.path().join("big.key");
        std::fs::write(&big, vec![b'k'; MAX_KEY_FILE as usize + 1]).unwrap();
        let e = read_key_within(&big, limit).unwrap_err();
        assert!(
            matches!(e, KeyFileError::TooLarge { size: 4097, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(big.to_str().unwrap()), "{e}");
        // At the limit it is still a key.
        std::fs::write(&big, vec![b'k'; MAX_KEY_FILE as usize]).unwrap();
        assert_eq!(read_key_within(&big, limit).unwrap().len(), 4096);

        let short = dir.path().join("short.key");
        std::fs::write(&short, "tooshort\n").unwrap();
        let e = read_key_within(&short, limit).unwrap_err();
        assert!(matches!(e, KeyFileError::TooShort { len: 8, .. }), "{e}");

        let e = read_key_within(&dir.path().join("absent.key"), limit).unwrap_err();
        assert!(matches!(e, KeyFileError::Io { .. }), "{e}");
    }

    /// Facts as a machine with the addresses `local` and these names would give.
    fn facts(local: &[&str], names: &[(&str, Result<&str, &str>)]) -> Facts {
        Facts {
            names: names
                .iter()
                .map(|(n, r)| {
                    (
                        n.to_string(),
                        r.map(|a| a.parse().unwrap())
                            .map_err(|why| ResolveError::Lookup {
                                name: n.to_string(),
                                why: why.to_string(),
                            }),
                    )
                })
                .collect(),
            local: Ok(local.iter().map(|a| a.parse().unwrap()).collect()),
            key: None,
            hostname: "director1".into(),
        }
    }

    fn planned(text: &str, f: Facts) -> Result<Prepared, Vec<String>> {
        let (config, warnings) = crate::pulse::logic::node::load("lvs.cf", text).unwrap();
        plan("lvs.cf", config, warnings, Arc::default(), f)
            .map_err(|ps| ps.iter().map(ToString::to_string).collect())
    }

    fn problems(text: &str, f: Facts) -> Vec<String> {
        match planned(text, f) {
            Ok(_) => panic!("planned without a problem"),
            Err(e) => e,
        }
    }

    const PAIR: &str = "serial_no = 3\nprimary = 10.0.0.1\nbackup_active = 1\nbackup = 10.0.0.2\nheartbeat_key_file = /etc/lvs-director/heartbeat.key\nvirtual web {\n    active = 1\n    address = 192.0.2.10 eth0\n    port = 80\n    server a {\n        address = www1.example\n        active = 1\n    }\n}\n";

    /// The whole plan from text and facts alone: no file, socket or resolver.
    #[test]
    fn a_pair_is_planned_from_facts() {
        let mut f = facts(&["10.0.0.1"], &[("www1.example", Ok("10.1.0.11"))]);
        f.key = Some(Ok(Arc::from(&b"0123456789abcdef"[..])));
        let p = planned(PAIR, f).unwrap();
        assert_eq!(p.plan.place, crate::pulse::logic::node::Place::Primary);
        assert_eq!(p.key.as_deref(), Some(&b"0123456789abcdef"[..]));
        assert_eq!(p.probes.len(), 1);
        assert_eq!(
            p.setup.names.get("www1.example"),
            Some(&"10.1.0.11".parse().unwrap())
        );
        assert_eq!(p.notify.host, "director1");
    }

    /// Each problem says what and where, in the words the CLI and the log print.
    #[test]
    fn problems_are_typed_and_say_where() {
        // Names that do not resolve: all of them, and nothing else.
        let e = problems(
            PAIR,
            facts(
                &["10.0.0.1"],
                &[("www1.example", Err("Name or service not known"))],
            ),
        );
        assert_eq!(
            e,
            ["cannot resolve `www1.example`: Name or service not known"]
        );
        // This machine's addresses unknown.
        let mut f = facts(&[], &[("www1.example", Ok("10.1.0.11"))]);
        f.local = Err("netlink: permission denied".into());
        assert_eq!(
            problems(PAIR, f),
            ["reading this machine's addresses: netlink: permission denied"]
        );
        // The key file, when this node is in a pair.
        let mut f = facts(&["10.0.0.1"], &[("www1.example", Ok("10.1.0.11"))]);
        f.key = Some(Err(KeyFileError::TooShort {
            path: "/etc/lvs-director/heartbeat.key".into(),
            len: 3,
        }));
        let e = problems(PAIR, f);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with(
                "heartbeat_key_file /etc/lvs-director/heartbeat.key: the key has 3 byte(s)"
            ),
            "{e:?}"
        );
        // A refused command names the file, the block and the keyword.
        let text = "serial_no = 1\nvirtual web {\n    active = 1\n    address = 192.0.2.10 eth0\n    send_program = \"/usr/local/bin/check %h\"\n    server a {\n        address = 10.1.0.11\n        active = 1\n    }\n}\n";
        let (config, warnings) = crate::pulse::logic::node::load("lvs.cf", text).unwrap();
        let policy = Arc::new(crate::pulse::io::scripts::Policy::Scripts(
            "/etc/lvs-director/scripts".into(),
        ));
        let e: Vec<String> = plan("lvs.cf", config, warnings, policy, facts(&[], &[]))
            .err()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("lvs.cf: virtual web: send_program: "),
            "{e:?}"
        );
        // Several at once: two commands that do not split into words are reported
        // together.
        let text = "serial_no = 1\nactive_cmd = 'echo \"up'\ninactive_cmd = 'echo \"down'\n";
        let (config, warnings) = crate::pulse::logic::node::load("lvs.cf", text).unwrap();
        let e: Vec<String> = plan("lvs.cf", config, warnings, Arc::default(), facts(&[], &[]))
            .err()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("active_cmd: "), "{e:?}");
        assert!(e[1].starts_with("inactive_cmd: "), "{e:?}");
    }
}
