#!/bin/sh
# /usr/lib/lvs-director/setup: the part of installing and upgrading lvs-director that
# the .deb (postinst) and the .rpm (%post) share. Idempotent; needs no running systemd
# (containers, chroots).
#   1. the lvs-director system user and group (systemd-sysusers);
#   2. its folders and the ownership of lvs.cf (systemd-tmpfiles);
#   3. the database: created, or its schema migrated, as that user;
#   4. what to do next: the first administrator's password, a Piranha lvs.cf to import.
set -e

SVC_USER=lvs-director
DB=/var/lib/lvs-director/director.db
BIN=/usr/bin/lvs-director

# Both come with systemd (the packages depend on it, or on the standalone tools).
systemd-sysusers /usr/lib/sysusers.d/lvs-director.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/lvs-director.conf

# As the service user, so that the database and its WAL files stay its own (never
# run lvs-director commands on the database as root).
as_user() {
    runuser -u "$SVC_USER" -- "$@"
}
if out=$(cd / && as_user "$BIN" --db "$DB" migrate 2>&1); then
    printf '%s\n' "$out"
else
    # The services migrate at start too; say why, do not leave the package broken.
    printf 'lvs-director: warning: the database %s could not be prepared:\n%s\n' "$DB" "$out" >&2
fi

case "$out" in
*"no user yet"*)
    cat <<MSG

lvs-director: no administrator yet. Set the first one's password with
    sudo -u $SVC_USER $BIN passwd admin
(as root without sudo: runuser -u $SVC_USER -- $BIN passwd admin), or open the
one-time setup link that the admin UI logs: journalctl -u lvs-director-web
The UI listens on port 3636.
MSG
    ;;
esac

PIRANHA=/etc/sysconfig/ha/lvs.cf
if [ -f "$PIRANHA" ]; then
    cat <<MSG

lvs-director: a Piranha configuration exists at $PIRANHA. It is not imported
automatically; to take it over (check it first with $BIN check-config $PIRANHA):
    sudo -u $SVC_USER $BIN import $PIRANHA
MSG
    if ! as_user test -r "$PIRANHA" 2>/dev/null; then
        cat <<MSG
(the $SVC_USER user cannot read it; as root:
    cat $PIRANHA | runuser -u $SVC_USER -- $BIN import /dev/stdin)
MSG
    fi
    echo "then review it in the admin UI and Apply it."
fi
exit 0
