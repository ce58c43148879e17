# lvs-director %postun ($1: 0 on removal, 1 on upgrade): an upgrade restarts the
# running services with the new binary (they migrate the database at start). A
# removal keeps the database and state, as RPM packages do.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart lvs-director-pulse.service lvs-director-web.service >/dev/null 2>&1 || :
    fi
fi
if [ "$1" -eq 0 ]; then
    echo "lvs-director: kept /var/lib/lvs-director (database), /var/lib/lvs-director-pulse and /etc/lvs-director; remove them by hand to forget everything"
fi
exit 0
