# lvs-director %preun ($1: 0 on removal, 1 on upgrade): a removal disables and stops
# the units, and withdraws the IPVS services the supervisor created.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable lvs-director-web.service lvs-director-pulse.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop lvs-director-web.service lvs-director-pulse.service >/dev/null 2>&1 || :
    fi
    /usr/lib/lvs-director/withdraw-ipvs || :
fi
exit 0
