-- Configuration sync between the directors of a pair (src/cluster): each revision
-- says what it descends from, so that a director can tell a newer configuration of
-- its peer that builds on its own (taken) from one made in parallel (a conflict).
--
-- digest:  the shared part of this revision (its lvs.cf without the per-node
--          settings, serial included), SHA-256, first 16 bytes in hex. The same on
--          both directors for the same configuration.
-- parents: the digests this revision was made over, space-separated: the one in
--          force before it, and, when it settles a conflict, the peer's too.
-- origin:  the peer's address when the revision was received from it; '' when it
--          was applied here.
--
-- Revisions recorded before this migration keep '' (they predate sync).
ALTER TABLE revisions ADD COLUMN digest  TEXT NOT NULL DEFAULT '';
ALTER TABLE revisions ADD COLUMN parents TEXT NOT NULL DEFAULT '';
ALTER TABLE revisions ADD COLUMN origin  TEXT NOT NULL DEFAULT '';
