//! Apply: the stored configuration into the `lvs.cf` in force, the same for the admin
//! UI's Apply button, `lvs-director apply` and a configuration received from the peer.
//! [`plan`] reads what is there and previews (pure [`crate::config::publish`]);
//! [`commit`] writes the file atomically and records the revision with its place in
//! the pair's history. Telling the supervisor and the peers is the caller's.

use std::path::Path;

use crate::cluster::pernode;
use crate::config::publish::{preview, Preview};
use crate::config::{self, parse};
use crate::storage::{Actor, Lineage, Revision, StorageError, Store};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read the lvs.cf in force, {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The file in force, or `None` when there is none yet. Another error (permissions,
/// a directory) is reported: Apply must not pretend there is nothing to replace.
pub async fn read_in_force(path: &Path) -> Result<Option<String>, ApplyError> {
    match tokio::fs::read(path).await {
        // Without lvs-director's first and last lines: what the renderings and the
        // history hold (a file cut short keeps them, for the parser to refuse).
        Ok(bytes) => Ok(Some(
            config::whole::without_ends(&config::decode_text(&bytes).0).into_owned(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ApplyError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// What a supervisor's answer to a reload means, in words for the page, the command
/// line and the audit log: whether it runs the new file, and what it said.
pub fn reload_said(reply: crate::pulse::logic::control::Reply) -> (bool, String) {
    if reply.ok {
        (
            true,
            format!(
                "The supervisor applied it: {}",
                reply.message.unwrap_or_default()
            ),
        )
    } else {
        (
            false,
            format!(
                "The supervisor REJECTED it and keeps running the previous configuration: {}",
                reply.error.unwrap_or_default()
            ),
        )
    }
}

/// Modification time and length of a file: enough to tell that it changed (an Apply
/// renames a new file over it).
pub fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// What an Apply would do now.
#[derive(Debug, Clone)]
pub struct Planned {
    pub preview: Preview,
    pub in_force: Option<String>,
    pub latest: Option<Revision>,
}

impl Planned {
    /// Why the file in force is not what lvs-director last wrote, if it is not.
    pub fn hand_edited(&self, path: &Path) -> Option<String> {
        match (&self.in_force, &self.latest) {
            (Some(text), Some(rev)) if *text != rev.text => Some(format!(
                "{} was changed outside lvs-director since revision {} (serial {}) was applied. Applying replaces those changes; to keep them, import the file first.",
                path.display(),
                rev.info.id,
                rev.info.serial_no
            )),
            (Some(_), None) => Some(format!(
                "{} was not written by lvs-director. Applying replaces it; to keep its contents, import it first.",
                path.display()
            )),
            _ => None,
        }
    }
}

/// Reads the stored configuration, the file in force and the last revision, and
/// previews the Apply.
pub async fn plan(store: &Store, lvs_cf: &Path) -> Result<Planned, ApplyError> {
    plan_above(store, lvs_cf, 0).await
}

/// [`plan`] with a serial above `floor` (the peer's, when settling a conflict: a
/// director never fails over to a lower serial).
pub async fn plan_above(store: &Store, lvs_cf: &Path, floor: u32) -> Result<Planned, ApplyError> {
    let mut stored = store.load_config().await?;
    stored.global.serial_no = stored.global.serial_no.max(Some(floor)).filter(|s| *s > 0);
    let in_force = read_in_force(lvs_cf).await?;
    let latest = store.revisions().latest().await?;
    let last_serial = latest.as_ref().map_or(0, |r| r.info.serial_no);
    Ok(Planned {
        preview: preview(&stored, in_force.as_deref(), last_serial),
        in_force,
        latest,
    })
}

/// The digest of what is in force: the last revision's, or computed from the file
/// when the revision predates sync (or there is none). Empty when nothing is in
/// force or it does not read.
pub fn head_digest(in_force: Option<&str>, latest: Option<&Revision>) -> String {
    if let (Some(text), Some(rev)) = (in_force, latest) {
        if rev.text == text && !rev.info.digest.is_empty() {
            return rev.info.digest.clone();
        }
    }
    in_force
        .and_then(|t| parse(t).ok())
        .map(|p| pernode::digest(&p.config, p.config.global.serial_no.unwrap_or(0)))
        .unwrap_or_default()
}

/// Writes `planned` atomically and records it as applied by `actor`. Its parents are
/// the head it replaces and `also_over` (the peer's head, when it settles a
/// conflict). The revision is recorded in a transaction that commits only after the
/// write, so on any error the file in force and the history still agree: the file
/// could not be written ([`ApplyError::Write`]: nothing recorded), or the database
/// could not record it ([`ApplyError::Storage`]: the file is as it was; if the commit
/// failed after the write, the previous file is put back).
pub async fn commit(
    store: &Store,
    lvs_cf: &Path,
    planned: &Planned,
    actor: &Actor,
    comment: &str,
    also_over: &[String],
) -> Result<Revision, ApplyError> {
    let p = &planned.preview;
    let parsed = parse(&p.text).map_err(|_| ApplyError::Write {
        path: lvs_cf.display().to_string(),
        source: std::io::Error::other("the rendered text does not read back"),
    })?;
    let mut parents: Vec<String> = Vec::new();
    let head = head_digest(planned.in_force.as_deref(), planned.latest.as_ref());
    parents.extend(Some(head).filter(|h| !h.is_empty()));
    parents.extend(also_over.iter().filter(|d| !d.is_empty()).cloned());
    parents.dedup();
    let lineage = Lineage {
        digest: pernode::digest(&parsed.config, p.serial),
        parents,
        origin: None,
    };
    let (text, target) = (config::whole::with_ends(&p.text), lvs_cf.to_path_buf());
    let recorded = store
        .revisions()
        .record_around(&p.text, p.serial, actor, comment, &lineage, move || {
            crate::atomic_file::write_config(&target, text.as_bytes())
        })
        .await;
    match recorded {
        Ok(Ok(rev)) => Ok(rev),
        Ok(Err(source)) => Err(ApplyError::Write {
            path: lvs_cf.display().to_string(),
            source,
        }),
        Err(e) => {
            put_back(lvs_cf, &p.text, planned.in_force.as_deref()).await;
            Err(e.into())
        }
    }
}

/// After a failed record: if the new text was written after all (the commit failed
/// after the write), the previous file goes back, so that what is in force is what
/// the history says.
pub async fn put_back(lvs_cf: &Path, new: &str, previous: Option<&str>) {
    if read_in_force(lvs_cf).await.ok().flatten().as_deref() != Some(new) {
        return;
    }
    let (target, previous) = (lvs_cf.to_path_buf(), previous.map(str::to_string));
    let restored = tokio::task::spawn_blocking(move || match previous {
        Some(text) => {
            crate::atomic_file::write_config(&target, config::whole::with_ends(&text).as_bytes())
        }
        None => std::fs::remove_file(&target),
    })
    .await;
    match restored {
        Ok(Ok(())) => tracing::warn!(
            "Apply: the revision could not be recorded after {} was written; the previous file is back",
            lvs_cf.display()
        ),
        Ok(Err(e)) => tracing::error!(
            "Apply: the revision could not be recorded and {} could not be put back ({e}): it holds a configuration the history does not list",
            lvs_cf.display()
        ),
        Err(e) => tracing::error!("Apply: putting {} back failed: {e}", lvs_cf.display()),
    }
}
