//! The one error type of the storage module. sqlx errors are mapped here, once: callers
//! see what went wrong in their terms (not found, conflict, duplicate) and never match
//! on database codes themselves.

use std::path::PathBuf;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist (or no longer does).
    #[error("{what} not found")]
    NotFound { what: String },

    /// Optimistic concurrency: the object was saved by someone else since the caller
    /// read it. The caller should reload and redo the edit.
    #[error(
        "{what} was changed by someone else (you edited version {expected}, it is now version {found}); reload and try again"
    )]
    Conflict {
        what: String,
        expected: i64,
        found: i64,
    },

    /// A reorder named a different set of objects than the stored one (one was added or
    /// deleted in between).
    #[error("the list of {what} changed since it was shown; reload and try again")]
    OrderChanged { what: String },

    /// A name that must be unique within its parent is already taken.
    #[error("{what} already exists")]
    Duplicate { what: String },

    /// A user name that is not acceptable.
    #[error("user name `{name}`: {reason}")]
    InvalidUser { name: String, reason: String },

    /// The value cannot be stored so that it reads back unchanged (e.g. a program-built
    /// keyword value that has no `lvs.cf` spelling).
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    /// A stored row does not decode: edited by hand, or written by a newer version.
    #[error("corrupt database: table {table}, row {row}, {keyword}: {message}")]
    Corrupt {
        table: String,
        /// The row's id or key.
        row: String,
        /// The keyword or column that does not decode.
        keyword: String,
        message: String,
    },

    /// The password policy refused the password.
    #[error("a password needs at least {min_chars} characters")]
    WeakPassword { min_chars: usize },

    /// Deleting or demoting this user would leave nobody able to administer the director.
    #[error("{user} is the last administrator and cannot be deleted or demoted")]
    LastAdmin { user: String },

    /// [`Store::open_existing`](super::Store::open_existing) was given a database file
    /// that does not exist (it never creates one).
    #[error("{path}: no such database")]
    Missing { path: PathBuf },

    /// The database's folder could not be created or prepared.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Password hashing failed (not a wrong password: that is `Ok(None)`).
    #[error("password hashing failed: {0}")]
    Hash(String),

    /// Too many passwords are being checked at once; the caller should try again in a
    /// moment (the web UI answers 503).
    #[error("too many password checks at once; try again in a moment")]
    Busy,

    /// A blocking task (password hashing) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),

    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),

    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result of storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// True when the request itself is at fault — a name, password or id the caller
    /// gave, or an edit based on what has changed since — so that retrying it as is
    /// cannot succeed; the caller should say so (the CLI exits with 1). False for a
    /// damaged database, I/O and internal failures (including a missing database file,
    /// like any missing file).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            StorageError::NotFound { .. }
            | StorageError::Conflict { .. }
            | StorageError::OrderChanged { .. }
            | StorageError::Duplicate { .. }
            | StorageError::InvalidUser { .. }
            | StorageError::Invalid { .. }
            | StorageError::WeakPassword { .. }
            | StorageError::LastAdmin { .. } => true,
            StorageError::Corrupt { .. }
            | StorageError::Missing { .. }
            | StorageError::Io { .. }
            | StorageError::Hash(_)
            | StorageError::Busy
            | StorageError::Task(_)
            | StorageError::Db(_)
            | StorageError::Migrate(_) => false,
        }
    }

    /// True when another process held the database locked for longer than the busy
    /// timeout (SQLITE_BUSY, SQLITE_LOCKED): nothing was changed, and the same request
    /// may well succeed in a moment.
    pub fn is_locked(&self) -> bool {
        self.sqlite_code()
            .is_some_and(|c| matches!(c & 0xff, 5 | 6))
    }

    /// The SQLite result code (extended codes included) behind a database error.
    fn sqlite_code(&self) -> Option<i64> {
        let sql = match self {
            StorageError::Db(e)
            | StorageError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => e,
            _ => return None,
        };
        sql.as_database_error()?.code()?.parse().ok()
    }

    /// How a command names a database it could not open: the path once, the cause,
    /// and for a damaged file what to do about it.
    pub fn opening(&self, db: &std::path::Path) -> String {
        // SQLITE_CORRUPT (11) and SQLITE_NOTADB (26), with their extended codes.
        let damaged = self
            .sqlite_code()
            .is_some_and(|c| matches!(c & 0xff, 11 | 26));
        let what = match self {
            // These name the path themselves.
            StorageError::Io { .. } | StorageError::Missing { .. } => format!("database {self}"),
            e => format!("database {}: {e}", db.display()),
        };
        if damaged {
            format!(
                "{what}: the file is damaged or is not an lvs-director database; restore it from a backup, or move it aside and `lvs-director import` the lvs.cf in force into a new one (its history starts again)"
            )
        } else {
            what
        }
    }

    /// The error of an INSERT or UPDATE: a UNIQUE violation means the name of `what`
    /// is taken, anything else is a database error.
    pub(crate) fn from_write(e: sqlx::Error, what: impl FnOnce() -> String) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StorageError::Duplicate { what: what() }
            }
            _ => StorageError::Db(e),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StorageError::NotFound { what: what.into() }
    }
}
