//! Tokens of the automation API: a name, a role, an optional expiry.
//!
//! A token reads `lvsd_<prefix>_<secret>`. The prefix (8 hex digits) is not secret: it
//! finds the row, and lets a token be told apart in a log without showing it. The secret
//! (256 random bits) exists only in the [`NewToken`] returned once; the database keeps
//! its SHA-256, compared in constant time. 256 random bits need no password-style
//! stretching.

use subtle::ConstantTimeEq;

use super::audit::{self, action};
use super::error::{Result, StorageError};
use super::sessions::{random_hex, token_hash};
use super::users::Role;
use super::{Actor, Store};

/// A token as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The token's non-secret prefix (`lvsd_<prefix>_…`).
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Unix seconds; `None`: never.
    pub expires_at: Option<i64>,
    /// Unix seconds, to the minute; `None`: never used.
    pub last_used_at: Option<i64>,
}

impl TokenInfo {
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

/// A token just created: the only time its whole text is seen.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    pub token: String,
    pub info: TokenInfo,
}

impl std::fmt::Debug for NewToken {
    // The token is a credential: keep it out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("token", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

const PREFIX_BYTES: usize = 4;
const SECRET_BYTES: usize = 32;
/// Longest token name: it shows in lists and the audit log.
pub const MAX_NAME: usize = 64;
/// Longest lifetime `create` accepts, in days (ten years).
pub const MAX_DAYS: u32 = 3650;
/// `last_used_at` is written at most this often per token (seconds): every API call
/// must not be a database write.
const USE_RESOLUTION: i64 = 60;

/// The prefix and secret of a token's text, if it has a token's shape.
fn split(token: &str) -> Option<(&str, &str)> {
    let (prefix, secret) = token.strip_prefix("lvsd_")?.split_once('_')?;
    let hexits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexits(prefix, PREFIX_BYTES * 2) && hexits(secret, SECRET_BYTES * 2))
        .then_some((prefix, secret))
}

/// Why a token name is refused, if it is: the same characters as a user name, so that
/// it needs no quoting in a list, a log or a command line.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a token needs a name".into());
    }
    if name.len() > MAX_NAME {
        return Some(format!("a token name has at most {MAX_NAME} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
    {
        return Some("a token name is letters, digits and - _ . @ only".into());
    }
    None
}

type Row = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
);

const COLUMNS: &str = "id, name, role, prefix, created_at, created_by, expires_at, last_used_at";

fn info(row: Row) -> Result<TokenInfo> {
    let (id, name, role, prefix, created_at, created_by, expires_at, last_used_at) = row;
    let role = role
        .parse()
        .map_err(|e: super::users::UnknownRole| StorageError::Corrupt {
            table: "api_tokens".into(),
            row: id.to_string(),
            keyword: "role".into(),
            message: e.to_string(),
        })?;
    Ok(TokenInfo {
        id,
        name,
        role,
        prefix,
        created_at,
        created_by,
        expires_at,
        last_used_at,
    })
}

/// The API tokens. Obtained with [`Store::tokens`].
pub struct Tokens<'s> {
    store: &'s Store,
}

impl<'s> Tokens<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Tokens { store }
    }

    /// A new token `name` with `role`, valid for `days` (forever without); recorded in
    /// the audit log by name.
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        days: Option<u32>,
        actor: &Actor,
    ) -> Result<NewToken> {
        if let Some(message) = name_problem(name) {
            return Err(StorageError::Invalid {
                what: format!("token name `{}`", name.escape_debug()),
                message,
            });
        }
        if let Some(d) = days.filter(|d| *d == 0 || *d > MAX_DAYS) {
            return Err(StorageError::Invalid {
                what: format!("token {name}"),
                message: format!("it must expire after 1 to {MAX_DAYS} days, not {d}"),
            });
        }
        let now = self.store.now();
        let (prefix, secret) = (random_hex(PREFIX_BYTES), random_hex(SECRET_BYTES));
        let expires_at = days.map(|d| now + i64::from(d) * 86_400);
        let mut tx = self.store.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (name, role, prefix, secret_hash, created_at, created_by, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(&prefix)
        .bind(token_hash(&secret))
        .bind(now)
        .bind(&actor.user)
        .bind(expires_at)
        .execute(&mut *tx)
        .await;
        let id = match inserted {
            Ok(r) => r.last_insert_rowid(),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StorageError::Duplicate {
                    what: format!("token {name}"),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let expiry = match expires_at {
            Some(_) => format!("role {role}, expires in {} days", days.unwrap_or_default()),
            None => format!("role {role}, never expires"),
        };
        audit::append(
            &mut tx,
            now,
            actor,
            action::CREATE_TOKEN,
            &format!("token {name}"),
            None,
            Some(&expiry),
        )
        .await?;
        tx.commit().await?;
        Ok(NewToken {
            token: format!("lvsd_{prefix}_{secret}"),
            info: TokenInfo {
                id,
                name: name.to_string(),
                role,
                prefix,
                created_at: now,
                created_by: actor.user.clone(),
                expires_at,
                last_used_at: None,
            },
        })
    }

    /// Every token, oldest first.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        let rows: Vec<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id"))
                .fetch_all(&self.store.pool)
                .await?;
        rows.into_iter().map(info).collect()
    }

    /// Revokes `name` at once; recorded in the audit log.
    pub async fn revoke(&self, name: &str, actor: &Actor) -> Result<TokenInfo> {
        let mut tx = self.store.begin_write().await?;
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE name = ?"))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let token = info(row.ok_or_else(|| StorageError::not_found(format!("token {name}")))?)?;
        sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(token.id)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            self.store.now(),
            actor,
            action::REVOKE_TOKEN,
            &format!("token {name}"),
            Some(&format!("role {}", token.role)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The token whose text `token` is, if it exists and has not expired at `now`.
    /// The secret is compared in constant time; a malformed text, an unknown prefix, a
    /// wrong secret and an expired token all give `None`.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Option<TokenInfo>> {
        let Some((prefix, secret)) = split(token) else {
            return Ok(None);
        };
        let found: Option<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT secret_hash, id FROM api_tokens WHERE prefix = ?")
                .bind(prefix)
                .fetch_optional(&self.store.pool)
                .await?;
        let Some((stored, id)) = found else {
            return Ok(None);
        };
        if !bool::from(stored.as_slice().ct_eq(&token_hash(secret))) {
            return Ok(None);
        }
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.store.pool)
                .await?;
        // Revoked in between: gone.
        let Some(row) = row else {
            return Ok(None);
        };
        let token = info(row)?;
        if token.expired(now) {
            return Ok(None);
        }
        if token.last_used_at.is_none_or(|t| now - t >= USE_RESOLUTION) {
            // Best effort: a busy database must not refuse a valid token.
            let _ = sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                .bind(now)
                .bind(token.id)
                .execute(&self.store.pool)
                .await;
        }
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_token_is_shown_once_verified_by_its_secret_and_revoked_by_name() {
        let (_d, store) = store().await;
        let actor = Actor::new("root@cli", None);
        let t = store
            .tokens()
            .create("ci-deploy", Role::Admin, None, &actor)
            .await
            .unwrap();
        assert!(split(&t.token).is_some(), "{}", t.token.len());
        assert!(
            !format!("{t:?}").contains(&t.token),
            "the secret stays out of Debug"
        );
        let now = store.now();
        let got = store.tokens().verify(&t.token, now).await.unwrap().unwrap();
        assert_eq!((got.name.as_str(), got.role), ("ci-deploy", Role::Admin));
        assert_eq!(
            store.tokens().list().await.unwrap()[0].last_used_at,
            Some(now),
            "use recorded"
        );
        // A wrong secret with the right prefix, a malformed text, another prefix.
        let mut wrong = t.token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        for bad in [
            wrong.as_str(),
            "lvsd_",
            "Bearer x",
            &t.token[..t.token.len() - 2],
        ] {
            assert_eq!(
                store.tokens().verify(bad, now).await.unwrap(),
                None,
                "{bad}"
            );
        }
        let other = format!("lvsd_00000000_{}", "a".repeat(64));
        assert_eq!(store.tokens().verify(&other, now).await.unwrap(), None);

        let dup = store
            .tokens()
            .create("ci-deploy", Role::Viewer, None, &actor)
            .await;
        assert!(
            matches!(dup, Err(StorageError::Duplicate { .. })),
            "{dup:?}"
        );
        let revoked = store.tokens().revoke("ci-deploy", &actor).await.unwrap();
        assert_eq!(revoked.prefix, t.info.prefix);
        assert_eq!(store.tokens().verify(&t.token, now).await.unwrap(), None);
        assert!(matches!(
            store.tokens().revoke("ci-deploy", &actor).await,
            Err(StorageError::NotFound { .. })
        ));
        let log: Vec<(String, String)> = store
            .audit()
            .list(10, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.object))
            .collect();
        assert!(
            log.contains(&("create_token".into(), "token ci-deploy".into())),
            "{log:?}"
        );
        assert!(
            log.contains(&("revoke_token".into(), "token ci-deploy".into())),
            "{log:?}"
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_and_bad_names_and_lifetimes_are_refused() {
        let (_d, store) = store().await;
        let actor = Actor::new("root@cli", None);
        let t = store
            .tokens()
            .create("weekly", Role::Viewer, Some(7), &actor)
            .await
            .unwrap();
        let created = t.info.created_at;
        assert_eq!(t.info.expires_at, Some(created + 7 * 86_400));
        let tokens = store.tokens();
        assert!(tokens
            .verify(&t.token, created + 7 * 86_400 - 1)
            .await
            .unwrap()
            .is_some());
        assert!(tokens
            .verify(&t.token, created + 7 * 86_400)
            .await
            .unwrap()
            .is_none());
        for (name, days) in [
            ("", None),
            ("has space", None),
            ("ok", Some(0)),
            ("ok", Some(MAX_DAYS + 1)),
        ] {
            let r = tokens.create(name, Role::Viewer, days, &actor).await;
            assert!(
                matches!(r, Err(StorageError::Invalid { .. })),
                "{name:?} {days:?}: {r:?}"
            );
        }
        assert!(tokens
            .create(&"x".repeat(MAX_NAME + 1), Role::Viewer, None, &actor)
            .await
            .is_err());
    }
}
