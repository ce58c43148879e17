//! Login sessions: random tokens, stored hashed, with an idle and an absolute expiry.
//!
//! The clear token exists only in the cookie and in the [`NewSession`] returned once;
//! the database holds its SHA-256, so a leaked copy of the database opens no session.
//! A token has 256 random bits, so a fast unsalted hash is enough (no password-style
//! stretching is needed against guessing).
//!
//! `now` (Unix seconds) is a parameter of every operation that decides expiry.

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::{Result, StorageError};
use super::users::{Role, User};
use super::Store;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, however active.
    pub max_age: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(12 * 60 * 60),
        }
    }
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    /// Unix seconds of the login.
    pub created_at: i64,
    /// Unix seconds of the last request.
    pub last_seen_at: i64,
    /// Unix seconds when the session ends if unused.
    pub idle_expires_at: i64,
    /// Unix seconds when the session ends regardless.
    pub expires_at: i64,
}

/// A session just created, with the token for the cookie: the only time it is seen.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

impl std::fmt::Debug for NewSession {
    // The token is a credential: keep it out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("token", &"<redacted>")
            .field("session", &self.session)
            .finish()
    }
}

/// Bytes of randomness in a token (hex-encoded in the cookie).
const TOKEN_BYTES: usize = 32;

fn new_token() -> String {
    random_hex(TOKEN_BYTES)
}

/// `n` random bytes from the OS, in hex: session and API tokens.
pub(super) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is stored of a token (or an API token's secret): its SHA-256. 256 random bits
/// need no stretching.
pub(super) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

type SessionRow = (i64, String, String, i64, i64, i64, i64, i64, i64);

/// The login sessions. Obtained with [`Store::sessions`].
pub struct Sessions<'s> {
    store: &'s Store,
}

impl<'s> Sessions<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Sessions { store }
    }

    /// Opens a session for `user` at `now`.
    pub async fn create(
        &self,
        user: &User,
        policy: &SessionPolicy,
        now: i64,
    ) -> Result<NewSession> {
        let token = new_token();
        let idle = secs(policy.idle_timeout);
        let expires_at = now.saturating_add(secs(policy.max_age));
        sqlx::query(
            "INSERT INTO sessions \
               (token_hash, user_id, created_at, last_seen_at, idle_timeout, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash(&token))
        .bind(user.id)
        .bind(now)
        .bind(now)
        .bind(idle)
        .bind(expires_at)
        .execute(&self.store.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StorageError::not_found(format!("user {}", user.name))
            }
            _ => StorageError::Db(e),
        })?;
        Ok(NewSession {
            token,
            session: Session {
                user: user.clone(),
                created_at: now,
                last_seen_at: now,
                idle_expires_at: now.saturating_add(idle).min(expires_at),
                expires_at,
            },
        })
    }

    /// The session of `token` at `now`, marking it used; `None` if there is none or it
    /// has expired (an expired one is deleted).
    pub async fn lookup(&self, token: &str, now: i64) -> Result<Option<Session>> {
        let hash = token_hash(token);
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT u.id, u.name, u.role, u.created_at, u.updated_at, \
                    s.created_at, s.last_seen_at, s.idle_timeout, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ?",
        )
        .bind(&hash)
        .fetch_optional(&self.store.pool)
        .await?;
        let Some((id, name, role, user_created, user_updated, created, seen, idle, expires)) = row
        else {
            return Ok(None);
        };
        if now >= expires || now >= seen.saturating_add(idle) {
            self.delete_hash(&hash).await?;
            return Ok(None);
        }
        // Marking a session used is a write, and a page that polls sends many
        // requests: the mark moves at most every tenth of the idle timeout (a minute at
        // most), which shortens the idle window by no more than that. It never moves
        // backwards: a clock stepped back must not cut the idle window short.
        let step = (idle / 10).clamp(1, 60);
        let seen = if now >= seen.saturating_add(step) {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?",
            )
            .bind(now)
            .bind(&hash)
            .bind(now)
            .execute(&self.store.pool)
            .await?;
            now
        } else {
            seen
        };
        let role: Role =
            role.parse()
                .map_err(|message: super::UnknownRole| StorageError::Corrupt {
                    table: "users".into(),
                    row: format!("{id} (`{name}`)"),
                    keyword: "role".into(),
                    message: message.to_string(),
                })?;
        Ok(Some(Session {
            user: User {
                id,
                name,
                role,
                created_at: user_created,
                updated_at: user_updated,
            },
            created_at: created,
            last_seen_at: seen,
            idle_expires_at: seen.saturating_add(idle).min(expires),
            expires_at: expires,
        }))
    }

    /// Ends the session of `token` (logout); false if there was none.
    pub async fn delete(&self, token: &str) -> Result<bool> {
        self.delete_hash(&token_hash(token)).await
    }

    async fn delete_hash(&self, hash: &[u8]) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(hash)
            .execute(&self.store.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of user `user_id` ("log out everywhere"); returns how many.
    pub async fn delete_for_user(&self, user_id: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.store.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes the sessions expired at `now` (run periodically); returns how many.
    pub async fn delete_expired(&self, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at + idle_timeout <= ?1",
        )
        .bind(now)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Actor;

    const T0: i64 = 1_700_000_000;

    fn policy() -> SessionPolicy {
        SessionPolicy {
            idle_timeout: Duration::from_secs(600),
            max_age: Duration::from_secs(3600),
        }
    }

    async fn store_with_alice() -> (Store, User) {
        let store = Store::open_in_memory().await.unwrap();
        let alice = store
            .users()
            .set_password(
                "alice",
                "correct horse",
                Role::Admin,
                &Actor::new("cli", None),
            )
            .await
            .unwrap()
            .user;
        (store, alice)
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_token_only() {
        let (store, alice) = store_with_alice().await;
        let new = store
            .sessions()
            .create(&alice, &policy(), T0)
            .await
            .unwrap();
        assert_eq!(new.token.len(), 2 * TOKEN_BYTES);
        assert!(!format!("{new:?}").contains(&new.token));

        let s = store.sessions().lookup(&new.token, T0 + 1).await.unwrap();
        assert_eq!(s.map(|s| s.user), Some(alice));
        assert_eq!(store.sessions().lookup("00ff", T0).await.unwrap(), None);

        // Only the hash is stored.
        let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM sessions")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(stored, token_hash(&new.token));
        assert_ne!(stored, new.token.as_bytes());
    }

    /// A polling page does not write on every request: the mark moves once per step
    /// (a tenth of the 600 s idle timeout here).
    #[tokio::test]
    async fn the_last_use_is_marked_at_most_once_per_step() {
        let (store, alice) = store_with_alice().await;
        let token = store
            .sessions()
            .create(&alice, &policy(), T0)
            .await
            .unwrap()
            .token;
        let seen = |s: Option<Session>| s.unwrap().last_seen_at;
        assert_eq!(
            seen(store.sessions().lookup(&token, T0 + 59).await.unwrap()),
            T0
        );
        assert_eq!(
            seen(store.sessions().lookup(&token, T0 + 60).await.unwrap()),
            T0 + 60
        );
        assert_eq!(
            seen(store.sessions().lookup(&token, T0 + 61).await.unwrap()),
            T0 + 60
        );
        // Stepping the clock back never moves it backwards.
        assert_eq!(
            seen(store.sessions().lookup(&token, T0 + 10).await.unwrap()),
            T0 + 60
        );
    }

    #[tokio::test]
    async fn idle_expiry_is_pushed_back_by_use() {
        let (store, alice) = store_with_alice().await;
        let token = store
            .sessions()
            .create(&alice, &policy(), T0)
            .await
            .unwrap()
            .token;
        // Used every 500 s: never idle for 600 s.
        for t in [500, 1000, 1500] {
            let s = store.sessions().lookup(&token, T0 + t).await.unwrap();
            assert_eq!(s.map(|s| s.idle_expires_at), Some(T0 + t + 600), "at +{t}");
        }
        // 600 s after the last use: gone, and deleted.
        assert_eq!(
            store.sessions().lookup(&token, T0 + 2100).await.unwrap(),
            None
        );
        assert_eq!(
            store.sessions().lookup(&token, T0 + 1501).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn absolute_expiry_ends_even_an_active_session() {
        let (store, alice) = store_with_alice().await;
        let token = store
            .sessions()
            .create(&alice, &policy(), T0)
            .await
            .unwrap()
            .token;
        let mut t = T0;
        while t < T0 + 3600 {
            assert!(store.sessions().lookup(&token, t).await.unwrap().is_some());
            t += 300;
        }
        assert_eq!(
            store.sessions().lookup(&token, T0 + 3600).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn delete_and_delete_expired() {
        let (store, alice) = store_with_alice().await;
        let sessions = store.sessions();
        let a = sessions.create(&alice, &policy(), T0).await.unwrap().token;
        let b = sessions
            .create(&alice, &policy(), T0 + 500)
            .await
            .unwrap()
            .token;
        let c = sessions
            .create(&alice, &policy(), T0 + 900)
            .await
            .unwrap()
            .token;
        assert!(sessions.delete(&a).await.unwrap());
        assert!(!sessions.delete(&a).await.unwrap());
        // At +1100, b (idle since +500) has expired and c has not.
        assert_eq!(sessions.delete_expired(T0 + 1100).await.unwrap(), 1);
        assert!(sessions.lookup(&c, T0 + 1100).await.unwrap().is_some());
        assert_eq!(sessions.lookup(&b, T0 + 1100).await.unwrap(), None);
        assert_eq!(sessions.delete_for_user(alice.id).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_new_password_or_deleting_the_user_ends_its_sessions() {
        let (store, alice) = store_with_alice().await;
        let cli = Actor::new("cli", None);
        let token = store
            .sessions()
            .create(&alice, &policy(), T0)
            .await
            .unwrap()
            .token;
        store
            .users()
            .set_password("alice", "battery staple", Role::Admin, &cli)
            .await
            .unwrap();
        assert_eq!(store.sessions().lookup(&token, T0 + 1).await.unwrap(), None);

        let bob = store
            .users()
            .set_password("bob", "bob's password", Role::Viewer, &cli)
            .await
            .unwrap()
            .user;
        let token = store
            .sessions()
            .create(&bob, &policy(), T0)
            .await
            .unwrap()
            .token;
        store.users().delete("bob", &cli).await.unwrap();
        assert_eq!(store.sessions().lookup(&token, T0 + 1).await.unwrap(), None);
        let err = store
            .sessions()
            .create(&bob, &policy(), T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    }
}
