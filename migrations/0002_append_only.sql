-- The audit log and the applied revisions are history: 0001 refuses rewriting an entry,
-- this refuses removing one too. Nothing in lvs-director deletes from these tables; if
-- old entries ever have to go (retention), that is a deliberate migration of its own.

CREATE TRIGGER audit_log_keeps_its_entries BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER revisions_are_kept BEFORE DELETE ON revisions
BEGIN
    SELECT RAISE(ABORT, 'an applied revision cannot be deleted');
END;
