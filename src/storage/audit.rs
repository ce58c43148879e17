//! The audit log: who changed what, when, from where, with the text before and after.
//! Configuration writes append their entry inside their own transaction; logins and
//! other events are recorded by the web layer through [`Audit::record`].

use sqlx::SqliteConnection;

use super::error::Result;
use super::{Actor, Store};

/// The actions the audit log uses. Strings rather than an enum so that the web layer
/// can record its own events; these are the ones the storage module writes, plus the
/// login events every caller should spell the same way.
pub mod action {
    pub const CREATE: &str = "create";
    pub const UPDATE: &str = "update";
    pub const DELETE: &str = "delete";
    pub const REORDER: &str = "reorder";
    /// The whole configuration replaced (import, rollback).
    pub const REPLACE: &str = "replace";
    /// A rendered `lvs.cf` recorded as applied.
    pub const APPLY: &str = "apply";
    pub const SET_PASSWORD: &str = "set_password";
    pub const SET_ROLE: &str = "set_role";
    pub const DELETE_USER: &str = "delete_user";
    pub const LOGIN: &str = "login";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOGOUT: &str = "logout";
    pub const CREATE_TOKEN: &str = "create_token";
    pub const REVOKE_TOKEN: &str = "revoke_token";
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who: a user name, or the name tried for a failed login.
    pub actor: String,
    /// The client address, when known.
    pub source: Option<String>,
    pub action: String,
    /// What was acted on: `virtual www`, `virtual www server web1`, `user alice`, ….
    pub object: String,
    /// The object before (an `lvs.cf` fragment or a short description); `None` when it
    /// did not exist.
    #[sqlx(rename = "before_text")]
    pub before: Option<String>,
    /// The object after; `None` when it no longer exists.
    #[sqlx(rename = "after_text")]
    pub after: Option<String>,
}

/// Appends an entry within the caller's transaction.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    at: i64,
    actor: &Actor,
    action: &str,
    object: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, source, action, object, before_text, after_text) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(at)
    .bind(&actor.user)
    .bind(actor.source.as_deref())
    .bind(action)
    .bind(object)
    .bind(before)
    .bind(after)
    .execute(conn)
    .await?;
    Ok(())
}

/// The audit log. Obtained with [`Store::audit`].
pub struct Audit<'s> {
    store: &'s Store,
}

impl<'s> Audit<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Audit { store }
    }

    /// Records an event that is not a storage write (a login, a failed login, a
    /// logout, a reload request), stamped with the store's clock.
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        object: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.store.pool.acquire().await?;
        append(
            &mut conn,
            self.store.now(),
            actor,
            action,
            object,
            before,
            after,
        )
        .await
    }

    /// Entries newest first: `limit` of them after skipping `offset`.
    pub async fn list(&self, limit: u32, offset: u32) -> Result<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, source, action, object, before_text, after_text \
             FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// The number of entries, for paging.
    pub async fn count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.store.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_listed_newest_first_and_paged() {
        let store = Store::open_in_memory().await.unwrap();
        let actor = Actor::new("alice", Some("198.51.100.7".into()));
        for i in 0..5 {
            store
                .audit()
                .record(
                    &actor,
                    action::LOGIN,
                    &format!("user u{i}"),
                    None,
                    Some("x"),
                )
                .await
                .unwrap();
        }
        let page = store.audit().list(2, 1).await.unwrap();
        let objects: Vec<_> = page.iter().map(|e| e.object.as_str()).collect();
        assert_eq!(objects, ["user u3", "user u2"]);
        assert_eq!(page[0].after.as_deref(), Some("x"));
        assert_eq!(page[0].before, None);
        assert_eq!(store.audit().count().await.unwrap(), 5);
    }

    #[tokio::test]
    async fn entries_cannot_be_rewritten() {
        let store = Store::open_in_memory().await.unwrap();
        let actor = Actor::new("alice", None);
        store
            .audit()
            .record(&actor, action::LOGIN_FAILED, "user alice", None, None)
            .await
            .unwrap();
        let err = sqlx::query("UPDATE audit_log SET actor = 'mallory'")
            .execute(&store.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }

    #[tokio::test]
    async fn entries_cannot_be_deleted() {
        let store = Store::open_in_memory().await.unwrap();
        let actor = Actor::new("alice", None);
        store
            .audit()
            .record(&actor, action::LOGIN_FAILED, "user alice", None, None)
            .await
            .unwrap();
        for sql in [
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE id = 1",
        ] {
            let err = sqlx::query(sql).execute(&store.pool).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        assert_eq!(store.audit().count().await.unwrap(), 1);
    }
}
