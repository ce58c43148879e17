//! What this director created in the kernel's IPVS table, remembered across restarts
//! so that a restart reconciles rather than rebuilds, services removed from the
//! configuration while it was down are still removed, and services it never created
//! are never touched.
//!
//! One small JSON file in the state directory, replaced atomically.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::diff::Drains;
use super::table::{DestKey, ServiceKey};

/// The file name inside the state directory.
pub const FILE_NAME: &str = "ipvs-owned.json";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    pub owned: BTreeSet<ServiceKey>,
    /// Destinations being drained and when (Unix milliseconds) they are deleted.
    pub drains: Drains,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    services: Vec<ServiceKey>,
    drains: Vec<DrainEntry>,
}

#[derive(Serialize, Deserialize)]
struct DrainEntry {
    service: ServiceKey,
    dest: DestKey,
    deadline_unix_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: not a valid ownership file ({source}); move it away to start afresh, knowing that services it listed will then be treated as foreign")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl Ownership {
    pub fn to_json(&self) -> String {
        let disk = OnDisk {
            version: 1,
            services: self.owned.iter().copied().collect(),
            drains: self
                .drains
                .iter()
                .map(|(&(service, dest), &deadline_unix_ms)| DrainEntry {
                    service,
                    dest,
                    deadline_unix_ms,
                })
                .collect(),
        };
        // Integers and strings only: serde_json cannot fail on them.
        #[allow(clippy::expect_used)]
        let mut s = serde_json::to_string_pretty(&disk).expect("plain data serialises");
        s.push('\n');
        s
    }

    pub fn from_json(text: &str) -> Result<Ownership, serde_json::Error> {
        let disk: OnDisk = serde_json::from_str(text)?;
        Ok(Ownership {
            owned: disk.services.into_iter().collect(),
            drains: disk
                .drains
                .into_iter()
                .map(|d| ((d.service, d.dest), d.deadline_unix_ms))
                .collect(),
        })
    }

    /// Reads the file in `dir`; a missing file means nothing is owned yet.
    pub fn load(dir: &Path) -> Result<Ownership, OwnershipError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ownership::from_json(&text)
                .map_err(|source| OwnershipError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ownership::default()),
            Err(source) => Err(OwnershipError::Read { path, source }),
        }
    }

    /// Writes the file in `dir` atomically, creating `dir` if needed.
    pub fn save(&self, dir: &Path) -> Result<(), OwnershipError> {
        let path = dir.join(FILE_NAME);
        std::fs::create_dir_all(dir)
            .and_then(|()| {
                crate::atomic_file::write_atomic(&path, self.to_json().as_bytes(), 0o600)
            })
            .map_err(|source| OwnershipError::Write { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::proto;

    fn sample() -> Ownership {
        let web = ServiceKey::Addr {
            protocol: proto::TCP,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        };
        let mark = ServiceKey::Fwmark {
            mark: 7,
            ipv6: true,
        };
        let mut o = Ownership::default();
        o.owned.insert(web);
        o.owned.insert(mark);
        o.drains.insert(
            (
                web,
                DestKey {
                    addr: "2001:db8::2".parse().unwrap(),
                    port: 8080,
                },
            ),
            1_790_000_000_000,
        );
        o
    }

    #[test]
    fn survives_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ownership::load(dir.path()).unwrap(), Ownership::default());
        let o = sample();
        o.save(&dir.path().join("state")).unwrap();
        assert_eq!(Ownership::load(&dir.path().join("state")).unwrap(), o);
        let text = std::fs::read_to_string(dir.path().join("state").join(FILE_NAME)).unwrap();
        assert!(text.contains("\"192.0.2.10\""), "{text}");
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "{\"version\": 1, \"serv").unwrap();
        let e = Ownership::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(FILE_NAME) && e.contains("not a valid ownership file"),
            "{e}"
        );
    }
}
