-- lvs-director's database: the configuration the web UI edits (rendered to lvs.cf on
-- Apply), users, sessions, the audit log and the applied revisions.
--
-- Keyword values are stored as their canonical lvs.cf text, one row per keyword that is
-- set, and re-parsed by the model on load. So a new keyword needs no migration, an unset
-- keyword is simply absent (its default stays a default), and a value reads back exactly
-- as it was written.
--
-- Blocks (virtual servers, real servers, floating addresses, local checks) share one
-- shape: a stable id, a position (their order in lvs.cf), a name unique within their
-- parent, a version for optimistic concurrency, and their comment lines as JSON. Ids use
-- AUTOINCREMENT so an id is never reused: a stale edit form (id, version) can then never
-- match a different block created after a replace.

-- Global keywords.
CREATE TABLE settings (
    keyword TEXT NOT NULL PRIMARY KEY,
    value   TEXT NOT NULL
) STRICT;

-- The one row holding what belongs to the global keywords as a whole.
CREATE TABLE config_meta (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL DEFAULT 1,
    comments TEXT    NOT NULL DEFAULT '{}'
) STRICT;
INSERT INTO config_meta (id) VALUES (1);

-- `virtual NAME { }` blocks, and legacy FOS `failover NAME { }` blocks (kept, never run).
CREATE TABLE virtual_servers (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind     TEXT    NOT NULL CHECK (kind IN ('virtual', 'failover')),
    position INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    version  INTEGER NOT NULL DEFAULT 1,
    comments TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (kind, name)
) STRICT;

-- The service keywords of a virtual server.
CREATE TABLE virtual_server_settings (
    owner_id INTEGER NOT NULL REFERENCES virtual_servers (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;

-- The check keywords of a virtual server (Piranha GUI: MONITORING SCRIPTS).
CREATE TABLE monitoring_scripts (
    owner_id INTEGER NOT NULL REFERENCES virtual_servers (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;

-- `server NAME { }` blocks inside a virtual server.
CREATE TABLE real_servers (
    id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    virtual_server_id INTEGER NOT NULL REFERENCES virtual_servers (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    version           INTEGER NOT NULL DEFAULT 1,
    comments          TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (virtual_server_id, name)
) STRICT;

CREATE TABLE real_server_settings (
    owner_id INTEGER NOT NULL REFERENCES real_servers (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;

-- Per-server overrides of the virtual server's check keywords.
CREATE TABLE real_server_monitoring_scripts (
    owner_id INTEGER NOT NULL REFERENCES real_servers (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;

-- `floating NAME { }` blocks: addresses that fail over without an IPVS service.
CREATE TABLE floating_addresses (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    position INTEGER NOT NULL,
    name     TEXT    NOT NULL UNIQUE,
    version  INTEGER NOT NULL DEFAULT 1,
    comments TEXT    NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE floating_address_settings (
    owner_id INTEGER NOT NULL REFERENCES floating_addresses (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;

-- `local_check NAME { }` blocks: checks of local daemons that hand over on failure.
CREATE TABLE local_checks (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    position INTEGER NOT NULL,
    name     TEXT    NOT NULL UNIQUE,
    version  INTEGER NOT NULL DEFAULT 1,
    comments TEXT    NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE local_check_settings (
    owner_id INTEGER NOT NULL REFERENCES local_checks (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;

CREATE TABLE local_check_monitoring_scripts (
    owner_id INTEGER NOT NULL REFERENCES local_checks (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;

CREATE INDEX real_servers_by_virtual ON real_servers (virtual_server_id, position);

-- Accounts of the web UI. There is no default user: the first admin is created from the
-- CLI or with the one-time setup token.
CREATE TABLE users (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    -- argon2id, PHC string format (algorithm, parameters and salt included).
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at    INTEGER NOT NULL, -- Unix seconds
    updated_at    INTEGER NOT NULL  -- Unix seconds
) STRICT;

-- Login sessions. Only the SHA-256 of the cookie token is kept, so a copy of the database
-- (a backup, a stolen file) does not hold usable sessions.
CREATE TABLE sessions (
    token_hash   BLOB    NOT NULL PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL, -- Unix seconds
    last_seen_at INTEGER NOT NULL, -- Unix seconds
    idle_timeout INTEGER NOT NULL, -- seconds without a request before the session ends
    expires_at   INTEGER NOT NULL  -- Unix seconds: the absolute end, whatever the activity
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id);

-- Who changed what, when and from where. Before/after are lvs.cf fragments (or a short
-- description) so the UI can show a diff.
CREATE TABLE audit_log (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL, -- Unix seconds
    actor       TEXT    NOT NULL,
    source      TEXT,             -- client address, when known
    action      TEXT    NOT NULL,
    object      TEXT    NOT NULL,
    before_text TEXT,
    after_text  TEXT
) STRICT;

-- The log is evidence: an entry, once written, is never rewritten.
CREATE TRIGGER audit_log_is_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Every applied lvs.cf, for diff and rollback.
CREATE TABLE revisions (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    serial_no   INTEGER NOT NULL,
    applied_at  INTEGER NOT NULL, -- Unix seconds
    applied_by  TEXT    NOT NULL,
    comment     TEXT    NOT NULL DEFAULT '',
    config_text TEXT    NOT NULL
) STRICT;

CREATE TRIGGER revisions_are_immutable BEFORE UPDATE ON revisions
BEGIN
    SELECT RAISE(ABORT, 'an applied revision cannot be changed');
END;
