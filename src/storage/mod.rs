//! The SQLite database of the web service: the configuration it edits, its users and
//! sessions, the audit log and the applied revisions. The only module that names sqlx.
//!
//! - [`Store`] opens the database (WAL, foreign keys, migrations; [`Store::open_existing`]
//!   never creates one) and hands out one facade per concern: [`Blocks`] for the blocks
//!   of the configuration (virtual and real servers, floating addresses, local checks),
//!   [`Users`], [`Sessions`], [`Audit`] and [`Revisions`]. The whole configuration is read and replaced with
//!   [`Store::load_config`] and [`Store::replace_config`].
//! - Every write is one transaction that also appends its [`Audit`] entry, so a change
//!   is never saved without its record, and a failure leaves nothing behind.
//! - Edits carry the `version` the user saw; a save in between yields
//!   [`StorageError::Conflict`] instead of silently overwriting it.
//! - Keyword values are stored as their canonical `lvs.cf` text and re-parsed by the
//!   model on load, so the database ↔ model mapping is lossless and a damaged row is
//!   reported as [`StorageError::Corrupt`] with its table, row and keyword.
//! - Time is a parameter: records are stamped by the store's [`Clock`] (replaceable in
//!   tests), and session expiry takes `now` explicitly.

mod audit;
mod blocks;
mod config_store;
mod error;
mod hashing;
mod keywords;
mod revisions;
mod sessions;
mod tokens;
mod users;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

pub use audit::{action, Audit, AuditEntry};
pub use blocks::{Block, Blocks, Stored};
pub use config_store::{config_digest, GlobalRecord, Snapshot, StoredVirtual};
pub use error::{Result, StorageError};
pub use revisions::{Lineage, Revision, RevisionInfo, Revisions};
pub use sessions::{NewSession, Session, SessionPolicy, Sessions};
pub use tokens::{NewToken, TokenInfo, Tokens};
pub use users::{
    is_valid_name, shown_name, PasswordSet, Role, UnknownRole, User, Users,
    MAX_NAME as MAX_USER_NAME, MIN_PASSWORD_CHARS,
};

/// Source of the current time for the records the store stamps (audit entries,
/// revisions, user changes), in Unix seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock, in Unix seconds: the default [`Clock`], and the one place where
/// storage reads the time.
pub fn system_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How long a connection waits for another one's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Who makes a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user name (or `cli`, `system` for changes not made through the web UI).
    pub user: String,
    /// The client address, when the change comes over the network.
    pub source: Option<String>,
}

impl Actor {
    pub fn new(user: impl Into<String>, source: Option<String>) -> Self {
        Actor {
            user: user.into(),
            source,
        }
    }
}

/// The database. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    clock: Clock,
    /// Password hashing, bounded (see [`hashing`]); shared by clones.
    hashing: Arc<hashing::HashPool>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("pool", &self.pool).finish()
    }
}

impl Store {
    /// The database file, for messages that must say which one.
    pub fn path(&self) -> PathBuf {
        self.pool.connect_options().get_filename().to_path_buf()
    }

    /// Opens (creating it and its folder on first use) the database at `path` and
    /// brings its schema up to date.
    ///
    /// The folder is created mode 0700 and the file 0600: the database holds password
    /// hashes and sessions, and only the service user has any business reading it.
    pub async fn open(path: &Path) -> Result<Store> {
        prepare_file(path).await?;
        Store::connect(path).await
    }

    /// Opens the database at `path`, which must exist, and brings its schema up to
    /// date. Never creates anything: a mistyped path is [`StorageError::Missing`], not
    /// a new empty database (which an export would then write over a live `lvs.cf`).
    pub async fn open_existing(path: &Path) -> Result<Store> {
        match tokio::fs::metadata(path).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::Missing {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(StorageError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        Store::connect(path).await
    }

    /// Connects to the existing database file at `path`. SQLite is not allowed to
    /// create it: it would do so with the umask's mode (see [`prepare_file`]), and
    /// [`Store::open_existing`] must not create it at all, even if it vanishes after
    /// the check.
    async fn connect(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            // WAL: readers (page loads) never wait for the writer (a save), and a crash
            // mid-write leaves the last committed state.
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only a power
            // loss may lose the last transactions, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Store::init(pool).await
    }

    /// A private in-memory database, for tests. One connection, never recycled: each
    /// connection to `:memory:` would otherwise be a different, empty database.
    pub async fn open_in_memory() -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Store::init(pool).await
    }

    async fn init(pool: SqlitePool) -> Result<Store> {
        sqlx::migrate!().run(&pool).await?;
        let hashing = hashing::HashPool::new(hashing::workers(), hashing::QUEUE).map_err(|e| {
            StorageError::Hash(format!("cannot start the password hashing threads: {e}"))
        })?;
        Ok(Store {
            pool,
            clock: Arc::new(system_clock),
            hashing: Arc::new(hashing),
        })
    }

    /// This store with another clock (Unix seconds) for the records it stamps.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store's clock, in Unix seconds; what callers should pass as `now` to the
    /// session operations.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Waits for the connections to finish and closes them (and the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The virtual servers, in `lvs.cf` order.
    pub fn virtual_servers(&self) -> Blocks<'_, crate::config::VirtualServer> {
        Blocks::new(self, blocks::Rows::Kind(blocks::VIRTUAL))
    }

    /// The legacy FOS `failover` blocks (kept, never run), in `lvs.cf` order.
    pub fn failover_services(&self) -> Blocks<'_, crate::config::VirtualServer> {
        Blocks::new(self, blocks::Rows::Kind(blocks::FAILOVER))
    }

    /// The real servers of the virtual (or failover) server `virtual_id`.
    pub fn real_servers(&self, virtual_id: i64) -> Blocks<'_, crate::config::RealServer> {
        Blocks::new(self, blocks::Rows::Parent(virtual_id))
    }

    /// The floating addresses.
    pub fn floating_addresses(&self) -> Blocks<'_, crate::config::FloatingAddress> {
        Blocks::new(self, blocks::Rows::All)
    }

    /// The local checks.
    pub fn local_checks(&self) -> Blocks<'_, crate::config::LocalCheck> {
        Blocks::new(self, blocks::Rows::All)
    }

    /// The VRRP instances.
    pub fn vrrp_instances(&self) -> Blocks<'_, crate::config::VrrpInstance> {
        Blocks::new(self, blocks::Rows::All)
    }

    /// The web UI's accounts.
    pub fn users(&self) -> Users<'_> {
        Users::new(self)
    }

    /// Login sessions.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions::new(self)
    }

    /// The automation API's tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens::new(self)
    }

    /// The audit log.
    pub fn audit(&self) -> Audit<'_> {
        Audit::new(self)
    }

    /// The applied revisions of `lvs.cf`.
    pub fn revisions(&self) -> Revisions<'_> {
        Revisions::new(self)
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock at once: a
    /// deferred transaction that reads and then writes fails at once with SQLITE_BUSY
    /// (the busy timeout does not apply) when another writer committed in between.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Starts a read transaction: one consistent snapshot across several queries.
    async fn begin_read(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
    }
}

/// Creates the folder (0700) and an empty database file (0600) if they are missing.
/// SQLite would create the file with the umask's mode, readable by everyone; its WAL
/// and shared-memory files copy the database file's mode.
async fn prepare_file(path: &Path) -> Result<()> {
    let io = |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = tokio::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir).await.map_err(io)?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await.map_err(|e| {
        io(std::io::Error::new(
            e.kind(),
            format!("cannot open it for writing: {e}"),
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_creates_the_folder_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/lvs-director/director.db");
        let store = Store::open(&path).await.unwrap();
        assert!(path.exists());

        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // NORMAL = 1.
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(sync, 1);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        store.close().await;
    }

    #[tokio::test]
    async fn reopening_keeps_the_data_and_reruns_no_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("director.db");
        let actor = Actor::new("alice", None);
        {
            let store = Store::open(&path).await.unwrap();
            store
                .audit()
                .record(&actor, action::LOGIN, "user alice", None, None)
                .await
                .unwrap();
            store.close().await;
        }
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.audit().count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn open_existing_never_creates_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo/director.db");
        let err = Store::open_existing(&path).await.unwrap_err();
        assert!(
            matches!(&err, StorageError::Missing { path: p } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("typo/director.db"), "{err}");
        assert!(!err.is_invalid_input());
        assert!(!path.parent().unwrap().exists(), "no folder was created");

        // Once it exists, it opens like `open` does, with its data.
        let store = Store::open(&path).await.unwrap();
        store
            .audit()
            .record(
                &Actor::new("alice", None),
                action::LOGIN,
                "user alice",
                None,
                None,
            )
            .await
            .unwrap();
        store.close().await;
        let store = Store::open_existing(&path).await.unwrap();
        assert_eq!(store.audit().count().await.unwrap(), 1);
        store.close().await;
    }

    /// A database created before `0002_append_only` gets its triggers on the next open.
    #[tokio::test]
    async fn a_database_of_the_first_schema_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("director.db");
        prepare_file(&path).await.unwrap();
        let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
        let mut first = sqlx::migrate!();
        first.migrations = first.migrations[..1].to_vec().into();
        first.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, object) VALUES (1, 'alice', 'login', 'x')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::open_existing(&path).await.unwrap();
        assert_eq!(store.audit().count().await.unwrap(), 1);
        let err = sqlx::query("DELETE FROM audit_log")
            .execute(&store.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        store.close().await;
    }

    #[tokio::test]
    async fn the_clock_stamps_records() {
        let store = Store::open_in_memory()
            .await
            .unwrap()
            .with_clock(|| 1_700_000_000);
        assert_eq!(store.now(), 1_700_000_000);
        let actor = Actor::new("alice", Some("192.0.2.1".into()));
        store
            .audit()
            .record(&actor, action::LOGIN, "user alice", None, None)
            .await
            .unwrap();
        let e = &store.audit().list(10, 0).await.unwrap()[0];
        assert_eq!(e.at, 1_700_000_000);
        assert_eq!(e.source.as_deref(), Some("192.0.2.1"));
    }
}
