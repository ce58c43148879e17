//! Accounts of the web UI: argon2id password hashes and roles.
//!
//! There is no default account: the first admin is created from the CLI or the
//! one-time setup token. Hashing runs on the blocking pool (it takes tens of
//! milliseconds of CPU by design) and verification costs the same whether the user
//! exists or not.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sqlx::SqliteConnection;

use super::audit::{self, action};
use super::error::{Result, StorageError};
use super::{Actor, Store};

/// The password policy: at least this many characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything: edit, apply, manage users.
    Admin,
    /// Read-only access.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `admin` nor `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (expected admin or viewer)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

/// An account (without its password hash, which never leaves this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last password or role change.
    pub updated_at: i64,
}

/// What [`Users::set_password`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordSet {
    pub user: User,
    /// True if the user was created, false if an existing user's password changed.
    pub created: bool,
}

type UserRow = (i64, String, String, i64, i64);

const USER_COLUMNS: &str = "id, name, role, created_at, updated_at";

fn user_from_row((id, name, role, created_at, updated_at): UserRow) -> Result<User> {
    let role = role
        .parse()
        .map_err(|message: UnknownRole| StorageError::Corrupt {
            table: "users".into(),
            row: format!("{id} (`{name}`)"),
            keyword: "role".into(),
            message: message.to_string(),
        })?;
    Ok(User {
        id,
        name,
        role,
        created_at,
        updated_at,
    })
}

/// The longest user name.
pub const MAX_NAME: usize = 64;

/// Whether `name` could be a user's: 1 to 64 letters, digits and `. _ @ -`. A login
/// with any other name cannot succeed, so it is refused without looking further.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// `name` as logs, audit entries and messages show what was typed: escaped, and cut
/// after [`MAX_NAME`] characters, so that whatever is sent costs them a bounded size.
pub fn shown_name(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(MAX_NAME)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(MAX_NAME).is_some() {
        shown.push('…');
    }
    shown
}

/// Names are used in URLs, logs and audit entries: keep them plain.
fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(StorageError::InvalidUser {
            name: shown_name(name),
            reason: "use 1 to 64 letters, digits and . _ @ -".into(),
        })
    }
}

/// argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum).
fn params() -> Params {
    Params::default()
}

/// Working memory kept by a hashing thread for its next password, as much as the
/// default parameters need; a stored hash that needs more gets a buffer of its own.
const KEPT_BLOCKS: usize = Params::DEFAULT_M_COST as usize;

thread_local! {
    /// The argon2 working memory of this thread (see [`super::hashing`]'s threads),
    /// reused for every password. Letting argon2 allocate its 19 MiB each time left
    /// freed blocks behind that the allocator could not give back (fragmented by the
    /// small allocations in between): the process grew by about 19 MiB per login.
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs argon2 with the working memory of this thread.
fn hash_into(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    let blocks = params.block_count();
    if blocks > KEPT_BLOCKS {
        let mut memory = vec![Block::default(); blocks];
        return argon.hash_password_into_with_memory(password, salt, out, &mut memory[..]);
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

fn hash_password(password: &str) -> Result<String> {
    let fail = |e: &dyn fmt::Display| StorageError::Hash(e.to_string());
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt
        .as_salt()
        .decode_b64(&mut raw_salt)
        .map_err(|e| fail(&e))?;
    let params = params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(&argon, &params, password.as_bytes(), raw_salt, &mut out).map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// What an unknown user's password is checked against, so that the answer takes as
/// long as for a real user: the same algorithm and parameters as [`hash_password`]
/// (a unit test holds them equal). Its password does not matter: an unknown user is
/// refused whatever the check says.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$q7y0D9kMIVfttjClDCgcCQ$N9T5uhtfEelW1YVQgr3R1RcMbQ+GanouCbCPCJiuMgc";

/// True if `password` matches the PHC string `phc` (any argon2 variant, version and
/// parameters it names).
fn verify(phc: &str, password: &str) -> Result<bool, PhcError> {
    let parsed = PasswordHash::new(phc)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    let expected = parsed.hash.ok_or(PhcError::Missing("hash"))?;
    let salt = parsed.salt.ok_or(PhcError::Missing("salt"))?;
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    hash_into(&argon, &params, password.as_bytes(), raw_salt, &mut out)?;
    // Output's equality is constant-time.
    Ok(Output::new(&out)? == expected)
}

/// Why a stored password hash cannot be checked (the row is then reported corrupt).
#[derive(Debug, PartialEq, thiserror::Error)]
enum PhcError {
    #[error("{0}")]
    Phc(#[from] argon2::password_hash::Error),
    #[error("{0}")]
    Argon2(#[from] argon2::Error),
    #[error("no {0} in the PHC string")]
    Missing(&'static str),
}

async fn find(conn: &mut SqliteConnection, name: &str) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"))
            .bind(name)
            .fetch_optional(conn)
            .await?;
    row.map(user_from_row).transpose()
}

/// Refuses a change that would leave no admin.
async fn keep_an_admin(conn: &mut SqliteConnection, user: &User) -> Result<()> {
    if user.role != Role::Admin {
        return Ok(());
    }
    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
        .fetch_one(conn)
        .await?;
    if admins <= 1 {
        return Err(StorageError::LastAdmin {
            user: user.name.clone(),
        });
    }
    Ok(())
}

/// The accounts. Obtained with [`Store::users`].
pub struct Users<'s> {
    store: &'s Store,
}

impl<'s> Users<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Users { store }
    }

    /// All users, by name.
    pub async fn list(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
                .fetch_all(&self.store.pool)
                .await?;
        rows.into_iter().map(user_from_row).collect()
    }

    /// One user by name.
    pub async fn get(&self, name: &str) -> Result<Option<User>> {
        let mut conn = self.store.pool.acquire().await?;
        find(&mut conn, name).await
    }

    /// Sets the password of `name`, creating the user with `role_if_new` if it does not
    /// exist (an existing user keeps its role). Ends the user's sessions: after a
    /// password reset, whoever held one must log in again.
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
        role_if_new: Role,
        actor: &Actor,
    ) -> Result<PasswordSet> {
        self.store_password(name, password, role_if_new, actor, false)
            .await
    }

    /// Makes user `name` with `role`: [`StorageError::Duplicate`] if it exists (decided
    /// in the write itself, so two clients making the same user cannot both succeed,
    /// the second setting the first one's password).
    pub async fn create(
        &self,
        name: &str,
        password: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<User> {
        Ok(self
            .store_password(name, password, role, actor, true)
            .await?
            .user)
    }

    async fn store_password(
        &self,
        name: &str,
        password: &str,
        role_if_new: Role,
        actor: &Actor,
        only_new: bool,
    ) -> Result<PasswordSet> {
        check_name(name)?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(StorageError::WeakPassword {
                min_chars: MIN_PASSWORD_CHARS,
            });
        }
        let password = password.to_owned();
        let hash = self
            .store
            .hashing
            .run(move || hash_password(&password))
            .await??;

        let now = self.store.now();
        let mut tx = self.store.begin_write().await?;
        let existing = find(&mut tx, name).await?;
        if only_new && existing.is_some() {
            return Err(StorageError::Duplicate {
                what: format!("user {name}"),
            });
        }
        let row: UserRow = sqlx::query_as(&format!(
            "INSERT INTO users (name, password_hash, role, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE \
               SET password_hash = excluded.password_hash, updated_at = excluded.updated_at \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(name)
        .bind(&hash)
        .bind(role_if_new.as_str())
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let user = user_from_row(row)?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        // The hash is never logged: only that the password changed.
        let created = existing.is_none();
        let after = if created {
            format!("created with role {}", user.role)
        } else {
            "password changed".to_string()
        };
        audit::append(
            &mut tx,
            now,
            actor,
            action::SET_PASSWORD,
            &format!("user {name}"),
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(PasswordSet { user, created })
    }

    /// Changes the role of `name`; refuses to demote the last admin.
    pub async fn set_role(&self, name: &str, role: Role, actor: &Actor) -> Result<User> {
        let now = self.store.now();
        let mut tx = self.store.begin_write().await?;
        let user = find(&mut tx, name)
            .await?
            .ok_or_else(|| StorageError::not_found(format!("user {name}")))?;
        if user.role == role {
            return Ok(user);
        }
        keep_an_admin(&mut tx, &user).await?;
        sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(now)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            now,
            actor,
            action::SET_ROLE,
            &format!("user {name}"),
            Some(user.role.as_str()),
            Some(role.as_str()),
        )
        .await?;
        tx.commit().await?;
        Ok(User {
            role,
            updated_at: now,
            ..user
        })
    }

    /// Deletes `name` and its sessions; refuses to delete the last admin.
    pub async fn delete(&self, name: &str, actor: &Actor) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let user = find(&mut tx, name)
            .await?
            .ok_or_else(|| StorageError::not_found(format!("user {name}")))?;
        keep_an_admin(&mut tx, &user).await?;
        // Sessions go with the user (ON DELETE CASCADE).
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            self.store.now(),
            actor,
            action::DELETE_USER,
            &format!("user {name}"),
            Some(&format!("role {}", user.role)),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user if `password` is theirs; `None` for a wrong password and an unknown user
    /// alike, after the same amount of work, so that neither the answer nor its timing
    /// tells which user names exist.
    pub async fn verify_password(&self, name: &str, password: &str) -> Result<Option<User>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT password_hash, id FROM users WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.store.pool)
                .await?;
        let (hash, id) = row.unzip();
        let password = password.to_owned();
        let matched = self
            .store
            .hashing
            .run(move || {
                let phc = hash.as_deref().unwrap_or(DUMMY_HASH);
                verify(phc, &password)
            })
            .await?
            .map_err(|message| StorageError::Corrupt {
                table: "users".into(),
                row: format!("`{name}`"),
                keyword: "password_hash".into(),
                message: message.to_string(),
            })?;
        if !matched || id.is_none() {
            return Ok(None);
        }
        // Read again rather than trusting the first row: the user may have been
        // deleted or changed while the hash was being checked.
        self.get(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Actor {
        Actor::new("cli", None)
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let real = hash_password("x").unwrap();
        let params = |phc: &str| {
            let p = PasswordHash::new(phc).unwrap();
            (p.algorithm.to_string(), p.version, p.params.to_string())
        };
        assert_eq!(params(DUMMY_HASH), params(&real));
        assert_eq!(verify(DUMMY_HASH, "no user has this password"), Ok(true));
    }

    #[test]
    fn hashes_are_standard_argon2id_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours verify with the crate's own verifier…
        let ours = hash_password("s3cret password").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"s3cret password", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"other", &parsed)
            .is_err());
        // …and the crate's (older releases stored these), other variants and
        // parameters included, verify with ours.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        for argon in [
            Argon2::default(),
            Argon2::new(
                Algorithm::Argon2i,
                Version::V0x10,
                Params::new(4096, 3, 1, Some(16)).unwrap(),
            ),
            // More memory than a thread keeps: a buffer of its own.
            Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(2 * Params::DEFAULT_M_COST, 1, 1, None).unwrap(),
            ),
        ] {
            let theirs = argon
                .hash_password(b"s3cret password", &salt)
                .unwrap()
                .to_string();
            assert_eq!(verify(&theirs, "s3cret password"), Ok(true), "{theirs}");
            assert_eq!(verify(&theirs, "s3cret passwore"), Ok(false), "{theirs}");
        }
        assert!(verify("$argon2id$v=19$m=19456,t=2,p=1$bm9zYWx0", "x").is_err());
    }

    #[tokio::test]
    async fn passwords_verify_only_for_the_right_user() {
        let store = Store::open_in_memory().await.unwrap();
        let users = store.users();
        let set = users
            .set_password("alice", "correct horse", Role::Admin, &cli())
            .await
            .unwrap();
        assert!(set.created);
        let alice = set.user;
        assert_eq!(alice.role, Role::Admin);

        let ok = users
            .verify_password("alice", "correct horse")
            .await
            .unwrap();
        assert_eq!(ok, Some(alice.clone()));
        assert_eq!(
            users.verify_password("alice", "wrong horse").await.unwrap(),
            None
        );
        assert_eq!(
            users.verify_password("bob", "correct horse").await.unwrap(),
            None
        );

        // The stored hash is argon2id in PHC form, never the password.
        let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
    }

    #[tokio::test]
    async fn a_new_password_keeps_the_role_and_replaces_the_old_one() {
        let store = Store::open_in_memory().await.unwrap();
        let users = store.users();
        users
            .set_password("bob", "first password", Role::Viewer, &cli())
            .await
            .unwrap();
        let set = users
            .set_password("bob", "second password", Role::Admin, &cli())
            .await
            .unwrap();
        assert!(!set.created);
        assert_eq!(set.user.role, Role::Viewer);
        assert!(users
            .verify_password("bob", "first password")
            .await
            .unwrap()
            .is_none());
        assert!(users
            .verify_password("bob", "second password")
            .await
            .unwrap()
            .is_some());
        let log = store.audit().list(10, 0).await.unwrap();
        assert_eq!(log[0].after.as_deref(), Some("password changed"));
        assert_eq!(log[1].after.as_deref(), Some("created with role viewer"));
        assert!(log.iter().all(|e| e.action == action::SET_PASSWORD));
    }

    #[tokio::test]
    async fn short_passwords_and_odd_names_are_refused() {
        let store = Store::open_in_memory().await.unwrap();
        let err = store
            .users()
            .set_password("alice", "seven77", Role::Admin, &cli())
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::WeakPassword { min_chars: 8 }));
        // Eight characters, counted as characters rather than bytes.
        store
            .users()
            .set_password("alice", "ééééééé1", Role::Admin, &cli())
            .await
            .unwrap();
        for name in ["", "a b", "x\n", &"n".repeat(65)] {
            let err = store
                .users()
                .set_password(name, "long enough", Role::Admin, &cli())
                .await
                .unwrap_err();
            assert!(
                matches!(err, StorageError::InvalidUser { .. }),
                "{name:?}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn the_last_admin_cannot_be_deleted_or_demoted() {
        let store = Store::open_in_memory().await.unwrap();
        let users = store.users();
        users
            .set_password("alice", "password-a", Role::Admin, &cli())
            .await
            .unwrap();
        users
            .set_password("victor", "password-v", Role::Viewer, &cli())
            .await
            .unwrap();
        let err = users.delete("alice", &cli()).await.unwrap_err();
        assert!(matches!(err, StorageError::LastAdmin { ref user } if user == "alice"));
        let err = users
            .set_role("alice", Role::Viewer, &cli())
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::LastAdmin { .. }));

        // With a second admin, the first may go.
        users.set_role("victor", Role::Admin, &cli()).await.unwrap();
        users.delete("alice", &cli()).await.unwrap();
        let names: Vec<_> = users
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.name, u.role))
            .collect();
        assert_eq!(names, [("victor".to_string(), Role::Admin)]);
        assert!(matches!(
            users.delete("alice", &cli()).await,
            Err(StorageError::NotFound { .. })
        ));
        let log = store.audit().list(1, 0).await.unwrap();
        assert_eq!(log[0].action, action::DELETE_USER);
        assert_eq!(log[0].object, "user alice");
    }

    #[tokio::test]
    async fn a_corrupt_hash_is_an_error_not_a_login() {
        let store = Store::open_in_memory().await.unwrap();
        store
            .users()
            .set_password("alice", "correct horse", Role::Admin, &cli())
            .await
            .unwrap();
        sqlx::query("UPDATE users SET password_hash = 'plaintext'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store
            .users()
            .verify_password("alice", "plaintext")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { keyword, .. } if keyword == "password_hash")
        );
    }
}
