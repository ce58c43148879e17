//! What the supervisor starts from: `lvs.cf` read under the scripts rule, and the
//! facts of the machine it needs (host names resolved, this machine's addresses, the
//! heartbeat key, the host name). This file does that I/O and nothing else; `plan.rs`
//! ([`parse`], [`plan`]) turns the bytes and the facts into everything the tasks need,
//! without I/O, and reports each problem as a typed [`Problem`].

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::diag::Scope;
use crate::config::value::Host;
use crate::config::Config;
use crate::ipvs::desired::{resolve_system, ResolveError};
use crate::pulse::io::addr::{AddrError, Rtnl};
use crate::pulse::io::scripts;

mod plan;

pub use plan::{parse, plan, Prepared, Problem, LOAD_INTERVAL};

/// What the machine says, gathered once per load.
#[derive(Debug)]
pub struct Facts {
    /// The commands the scripts rule refuses, as `(block, keyword, why)`: whether a
    /// program is root's and in the scripts directory is a question for the file
    /// system ([`scripts::refusals`]).
    pub refused: Vec<(Scope, &'static str, String)>,
    /// Every host name of the configuration, resolved (or why not).
    pub names: BTreeMap<String, Result<IpAddr, ResolveError>>,
    /// This machine's addresses, or why they could not be read.
    pub local: Result<HashSet<IpAddr>, AddrError>,
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
    let (config, warnings) = parse(&name, &file.bytes)?;
    let facts = gather(&config, &file.policy);
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

/// The facts `config` needs under `policy`: the commands it refuses, names looked up
/// once per load (every later use reads the table), the machine's addresses, the key
/// file, the host name.
pub fn gather(config: &Config, policy: &scripts::Policy) -> Facts {
    let mut names = BTreeMap::new();
    for h in host_names(config) {
        if let Host::Name(n) = h {
            names.entry(n.clone()).or_insert_with(|| resolve_system(h));
        }
    }
    let local = Rtnl::connect()
        .and_then(|mut rt| rt.addresses())
        .map(|list| list.into_iter().map(|a| a.addr).collect());
    let key = config
        .global
        .heartbeat_key_file
        .as_ref()
        .map(|p| read_key(&p.0));
    Facts {
        refused: scripts::refusals(config, policy),
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
    /// Anyone on the machine could forge heartbeats and configuration sync with it.
    #[error("heartbeat_key_file {path}: other users can read or write it (mode {mode:o}), so anyone on this machine could forge heartbeats and configuration sync; chmod 640 it, owner root, group lvs-director")]
    Exposed { path: String, mode: u32 },
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
    // The admin UI (group lvs-director) reads it too, for configuration sync: the
    // group may read it, others may not touch it.
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_string(),
            mode: mode & 0o777,
        });
    }
    if mode & 0o020 != 0 {
        tracing::warn!(
            "heartbeat_key_file {path} can be written by its group (mode {:o}): chmod 640 it, owner root, group lvs-director",
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
        // Its group (the admin UI's) may read it; others may not.
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o640)).unwrap();
        read_key_within(&good, limit).expect("a key file of mode 640 is read");
        for mode in [0o644, 0o602, 0o601] {
            std::fs::set_permissions(&good, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_key_within(&good, limit).unwrap_err();
            assert!(matches!(e, KeyFileError::Exposed { .. }), "{mode:o}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(good.to_str().unwrap()) && text.contains(&format!("{mode:o}")),
                "{text}"
            );
        }
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();

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
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_within(&big, limit).unwrap().len(), 4096);

        let short = dir.path().join("short.key");
        std::fs::write(&short, "tooshort\n").unwrap();
        let e = read_key_within(&short, limit).unwrap_err();
        assert!(matches!(e, KeyFileError::TooShort { len: 8, .. }), "{e}");

        let e = read_key_within(&dir.path().join("absent.key"), limit).unwrap_err();
        assert!(matches!(e, KeyFileError::Io { .. }), "{e}");
    }

    /// What `prepare` reports before any fact is gathered (no resolver, no netlink):
    /// the file it cannot read, then every located line of a file that does not parse.
    #[test]
    fn prepare_reports_the_file_before_the_facts() {
        let dir = tempfile::tempdir().unwrap();
        let texts = |ps: Vec<Problem>| ps.iter().map(ToString::to_string).collect::<Vec<_>>();
        let absent = dir.path().join("absent.cf");
        let e = prepare(&absent, dir.path(), false).err().unwrap();
        assert!(matches!(e[..], [Problem::Unreadable { .. }]), "{e:?}");
        assert_eq!(
            texts(e),
            [format!(
                "{}: cannot read: No such file or directory (os error 2)",
                absent.display()
            )]
        );
        let bad = dir.path().join("lvs.cf");
        std::fs::write(
            &bad,
            "serial_no = 1\nprimary = 10.0.0.1.5\nbackup_active = maybe\n",
        )
        .unwrap();
        let e = prepare(&bad, dir.path(), false).err().unwrap();
        assert!(e.iter().all(|p| matches!(p, Problem::Config(_))), "{e:?}");
        let e = texts(e);
        assert_eq!(e.len(), 2, "{e:?}");
        let at = format!("{}:", bad.display());
        assert!(e[0].starts_with(&format!("{at}2:")), "{e:?}");
        assert!(e[1].starts_with(&format!("{at}3:")), "{e:?}");
    }
}
