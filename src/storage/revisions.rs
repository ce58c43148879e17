//! Applied revisions: the exact `lvs.cf` text of every Apply, for the diff shown before
//! the next one and for rollback.

use super::audit::{self, action};
use super::error::{Result, StorageError};
use super::{Actor, Store};

/// A revision without its text, for lists.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevisionInfo {
    pub id: i64,
    /// The `serial_no` written into this `lvs.cf`.
    pub serial_no: u32,
    /// Unix seconds.
    pub applied_at: i64,
    pub applied_by: String,
    pub comment: String,
    /// The shared part's digest ([`crate::cluster::pernode::digest`]); empty for a
    /// revision recorded before configuration sync existed.
    pub digest: String,
    /// The digests it was made over, space-separated.
    pub parents: String,
    /// The peer it was received from; empty when applied here.
    pub origin: String,
}

impl RevisionInfo {
    pub fn parent_digests(&self) -> impl Iterator<Item = &str> {
        self.parents.split_whitespace()
    }
}

/// Where a revision stands in the pair's history (see `migrations/0004`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    pub digest: String,
    pub parents: Vec<String>,
    /// The peer it came from; `None` when applied here.
    pub origin: Option<String>,
}

/// An applied revision with its rendered `lvs.cf`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Revision {
    #[sqlx(flatten)]
    pub info: RevisionInfo,
    /// The whole `lvs.cf` as written.
    #[sqlx(rename = "config_text")]
    pub text: String,
}

const INFO_COLUMNS: &str =
    "id, serial_no, applied_at, applied_by, comment, digest, parents, origin";

/// The applied revisions. Obtained with [`Store::revisions`].
pub struct Revisions<'s> {
    store: &'s Store,
}

impl<'s> Revisions<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Revisions { store }
    }

    /// Records `text` as applied with `serial_no`, with its audit entry.
    pub async fn record(
        &self,
        text: &str,
        serial_no: u32,
        actor: &Actor,
        comment: &str,
        lineage: &Lineage,
    ) -> Result<Revision> {
        let nothing = || Ok::<(), std::convert::Infallible>(());
        match self
            .record_around(text, serial_no, actor, comment, lineage, nothing)
            .await?
        {
            Ok(rev) => Ok(rev),
            Err(never) => match never {},
        }
    }

    /// [`Revisions::record`] around `write` (the file write the revision describes): the
    /// record is made first and committed only once `write` succeeded. So a database
    /// that cannot take it (locked past the busy timeout, full, read-only) fails before
    /// anything is written, and a failed write leaves no record (`Ok(Err(e))`). Only
    /// the commit itself failing leaves a written file without its record; the caller
    /// puts the file back then.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_around<E: Send + 'static>(
        &self,
        text: &str,
        serial_no: u32,
        actor: &Actor,
        comment: &str,
        lineage: &Lineage,
        write: impl FnOnce() -> std::result::Result<(), E> + Send + 'static,
    ) -> Result<std::result::Result<Revision, E>> {
        let now = self.store.now();
        let mut tx = self.store.begin_write().await?;
        let rev = record_in(&mut tx, now, text, serial_no, actor, comment, lineage).await?;
        if let Err(e) = tokio::task::spawn_blocking(write).await? {
            return Ok(Err(e));
        }
        tx.commit().await?;
        Ok(Ok(rev))
    }

    /// Revisions newest first: `limit` of them after skipping `offset`.
    pub async fn list(&self, limit: u32, offset: u32) -> Result<Vec<RevisionInfo>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {INFO_COLUMNS} FROM revisions ORDER BY id DESC LIMIT ? OFFSET ?"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// Revision `id`.
    pub async fn get(&self, id: i64) -> Result<Revision> {
        sqlx::query_as(&format!(
            "SELECT {INFO_COLUMNS}, config_text FROM revisions WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or_else(|| StorageError::not_found(format!("revision #{id}")))
    }

    /// The digests the newest `limit` revisions are and descend from, newest first,
    /// each once: what this director's configuration builds on.
    pub async fn ancestry(&self, limit: u32) -> Result<Vec<String>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT digest, parents FROM revisions ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.store.pool)
                .await?;
        let mut seen = std::collections::HashSet::new();
        Ok(rows
            .iter()
            .flat_map(|(d, p)| std::iter::once(d.as_str()).chain(p.split_whitespace()))
            .filter(|d| !d.is_empty() && seen.insert(*d))
            .map(str::to_string)
            .collect())
    }

    /// The last applied revision, if any.
    pub async fn latest(&self) -> Result<Option<Revision>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {INFO_COLUMNS}, config_text FROM revisions ORDER BY id DESC LIMIT 1"
        ))
        .fetch_optional(&self.store.pool)
        .await?)
    }
}

/// Records a revision inside `tx` (with its audit entry): Apply records it alone,
/// a received configuration together with the stored configuration it replaces.
pub(crate) async fn record_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    now: i64,
    text: &str,
    serial_no: u32,
    actor: &Actor,
    comment: &str,
    lineage: &Lineage,
) -> Result<Revision> {
    let parents = lineage.parents.join(" ");
    let origin = lineage.origin.clone().unwrap_or_default();
    let id = sqlx::query(
        "INSERT INTO revisions (serial_no, applied_at, applied_by, comment, config_text, digest, parents, origin) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(serial_no)
    .bind(now)
    .bind(&actor.user)
    .bind(comment)
    .bind(text)
    .bind(&lineage.digest)
    .bind(&parents)
    .bind(&origin)
    .execute(&mut **tx)
    .await?
    .last_insert_rowid();
    audit::append(
        tx,
        now,
        actor,
        action::APPLY,
        "configuration",
        None,
        Some(&format!("revision {id}, serial_no {serial_no}: {comment}")),
    )
    .await?;
    Ok(Revision {
        info: RevisionInfo {
            id,
            serial_no,
            applied_at: now,
            applied_by: actor.user.clone(),
            comment: comment.to_string(),
            digest: lineage.digest.clone(),
            parents,
            origin,
        },
        text: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revisions_are_recorded_listed_and_fetched() {
        let store = Store::open_in_memory().await.unwrap().with_clock(|| 42);
        let actor = Actor::new("alice", Some("192.0.2.1".into()));
        assert_eq!(store.revisions().latest().await.unwrap(), None);

        let r1 = store
            .revisions()
            .record("serial_no = 1\n", 1, &actor, "first", &Lineage::default())
            .await
            .unwrap();
        let r2 = store
            .revisions()
            .record("serial_no = 2\n", 2, &actor, "", &Lineage::default())
            .await
            .unwrap();
        assert_eq!(store.revisions().latest().await.unwrap(), Some(r2.clone()));
        assert_eq!(store.revisions().get(r1.info.id).await.unwrap(), r1);
        assert_eq!(r1.info.applied_at, 42);
        assert_eq!(
            store.revisions().list(10, 0).await.unwrap(),
            [r2.info.clone(), r1.info.clone()]
        );
        assert!(matches!(
            store.revisions().get(999).await,
            Err(StorageError::NotFound { .. })
        ));

        let log = store.audit().list(10, 0).await.unwrap();
        assert_eq!(log.len(), 2);
        assert!(log.iter().all(|e| e.action == action::APPLY));
        assert!(log[1]
            .after
            .as_deref()
            .unwrap()
            .contains("serial_no 1: first"));

        let err = sqlx::query("UPDATE revisions SET config_text = ''")
            .execute(&store.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot be changed"), "{err}");
        let err = sqlx::query("DELETE FROM revisions WHERE id = ?")
            .bind(r1.info.id)
            .execute(&store.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot be deleted"), "{err}");
        assert_eq!(store.revisions().get(r1.info.id).await.unwrap(), r1);
    }
}
