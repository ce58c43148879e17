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

const INFO_COLUMNS: &str = "id, serial_no, applied_at, applied_by, comment";

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
    ) -> Result<Revision> {
        let now = self.store.now();
        let mut tx = self.store.begin_write().await?;
        let id = sqlx::query(
            "INSERT INTO revisions (serial_no, applied_at, applied_by, comment, config_text) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(serial_no)
        .bind(now)
        .bind(&actor.user)
        .bind(comment)
        .bind(text)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        audit::append(
            &mut tx,
            now,
            actor,
            action::APPLY,
            "configuration",
            None,
            Some(&format!("revision {id}, serial_no {serial_no}: {comment}")),
        )
        .await?;
        tx.commit().await?;
        Ok(Revision {
            info: RevisionInfo {
                id,
                serial_no,
                applied_at: now,
                applied_by: actor.user.clone(),
                comment: comment.to_string(),
            },
            text: text.to_string(),
        })
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

    /// The last applied revision, if any.
    pub async fn latest(&self) -> Result<Option<Revision>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {INFO_COLUMNS}, config_text FROM revisions ORDER BY id DESC LIMIT 1"
        ))
        .fetch_optional(&self.store.pool)
        .await?)
    }
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
            .record("serial_no = 1\n", 1, &actor, "first")
            .await
            .unwrap();
        let r2 = store
            .revisions()
            .record("serial_no = 2\n", 2, &actor, "")
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
