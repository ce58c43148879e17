-- `vrrp NAME { }` blocks: VRRP instances, wire-compatible with keepalived's
-- `vrrp_instance`. Same shape as the other blocks (see 0001): keyword rows hold the
-- canonical lvs.cf text of each value.
CREATE TABLE vrrp_instances (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    position INTEGER NOT NULL,
    name     TEXT    NOT NULL UNIQUE,
    version  INTEGER NOT NULL DEFAULT 1,
    comments TEXT    NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE vrrp_instance_settings (
    owner_id INTEGER NOT NULL REFERENCES vrrp_instances (id) ON DELETE CASCADE,
    keyword  TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (owner_id, keyword)
) STRICT, WITHOUT ROWID;
