-- Tokens of the automation API (/api/v1): `Authorization: Bearer <token>`, no cookie.
--
-- A token reads `lvsd_<prefix>_<secret>`: the prefix (8 hex digits, not secret) finds
-- the row, the secret (64 hex digits, 256 random bits) is kept only as its SHA-256 and
-- compared in constant time. A copy of the database holds no usable token.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    prefix       TEXT    NOT NULL UNIQUE,
    secret_hash  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL, -- Unix seconds
    created_by   TEXT    NOT NULL,
    expires_at   INTEGER,          -- Unix seconds; NULL: never
    last_used_at INTEGER           -- Unix seconds, to the minute; NULL: never used
) STRICT;
