# lvs-director %post ($1: 1 on installation, 2 on upgrade). The user is made here,
# not in %pre: every packaged file belongs to root.
/usr/lib/lvs-director/setup
if [ "$1" -eq 1 ]; then
    # The distribution's preset decides (Fedora and RHEL: disabled until enabled).
    systemctl --no-reload preset lvs-director-pulse.service lvs-director-web.service >/dev/null 2>&1 || :
    echo "lvs-director: start it with: systemctl enable --now lvs-director-pulse lvs-director-web"
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    # ip_vs now rather than at the next boot (modules-load.d).
    systemctl restart systemd-modules-load.service >/dev/null 2>&1 || :
fi
exit 0
