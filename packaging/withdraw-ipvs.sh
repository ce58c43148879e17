#!/bin/sh
# /usr/lib/lvs-director/withdraw-ipvs: removes from the kernel's IPVS table the services
# that lvs-director's supervisor created (named in its state folder), and nothing else,
# leaving the table as it was before the package; run by the .deb's prerm and the .rpm's
# %preun on removal, after the supervisor stopped. Prints what it removed. Never fails
# the removal: no IPVS in this kernel, or nothing recorded, is nothing to do.
STATE=/var/lib/lvs-director-pulse
BIN=/usr/bin/lvs-director

[ -d "$STATE" ] && [ -x "$BIN" ] || exit 0
err=$(mktemp) || exit 0
# The services of the ownership record, against a configuration that has none.
if out=$(printf 'serial_no = 1\n' | "$BIN" ipvs apply --state-dir "$STATE" /dev/stdin 2>"$err"); then
    [ -z "$out" ] || printf 'lvs-director: withdrawn from the IPVS table:\n%s\n' "$out"
elif ! grep -q 'not available' "$err"; then
    printf 'lvs-director: warning: the IPVS services it created could not be withdrawn:\n%s\n%s\n' \
        "$out" "$(cat "$err")" >&2
fi
rm -f "$err"
exit 0
