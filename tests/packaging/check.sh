#!/usr/bin/env bash
# The packages, end to end, on this machine (Debian, root; run by tests/packaging.rs):
#   1. scripts/package.sh builds the .deb and .rpm (revision 1), and revision 2 for the
#      upgrade;
#   2. the .deb's contents and control data; `apt-get install` of it with the
#      Piranha hint (a /etc/sysconfig/ha/lvs.cf is put there when there is none);
#   3. the installed files, user, folders and modes; `systemd-analyze verify` of both
#      units; the binary from /usr/bin; `passwd` as the lvs-director user;
#   4. the two services as their units run them (user, group, capabilities through
#      setpriv, as systemd is not PID 1 here): the supervisor reads lvs.cf through its
#      group and the heartbeat key as root, the UI's user reaches the control socket,
#      replaces lvs.cf atomically, cannot read or remove the key, and serves a page;
#   5. the upgrade to revision 2 keeps the database (the password still verifies) and
#      the changed lvs.cf;
#   6. `apt-get purge` leaves nothing of the package;
#   7. the .rpm through the rpm tool: files, scripts, requirements, config(noreplace),
#      and an installation into a scratch root;
#   8. the .deb on a Debian system with systemd as PID 1 and IPVS, in a QEMU VM
#      (tests/packaging/systemd-vm.sh): install, a site applied through the UI, a
#      failing real server, SIGKILL, upgrade and purge; then the .rpm's scripts there
#      through rpm (install, enable, upgrade, erase).
# Everything it installed or started is removed on exit, failed or not. Any failed
# check stops it with a message and exit 1.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
work=$target/packaging-test
marker=/var/tmp/lvs-director-packaging-test.installed

log() { printf 'packaging: %s\n' "$*"; }
fail() { printf 'packaging: FAILED: %s\n' "$*" >&2; exit 1; }
# check DESCRIPTION COMMAND...: runs COMMAND, fails with DESCRIPTION when it fails.
# (Pipelines end in `grep PATTERN >/dev/null`, never `grep -q`: with pipefail, -q's
# early exit can fail the writer with SIGPIPE.)
check() { local what=$1; shift; "$@" || fail "$what"; }

[ "$(id -u)" -eq 0 ] || fail "needs root: it installs and purges the package on this machine"
command -v dpkg >/dev/null || fail "not a Debian machine (no dpkg)"

# --- what the package must contain, and nothing else ---------------------------------
MAN_PAGES=(lvs-director lvs-director-check-config lvs-director-import lvs-director-export
    lvs-director-passwd lvs-director-migrate lvs-director-pulse lvs-director-status
    lvs-director-ctl lvs-director-ctl-reload lvs-director-ctl-drain lvs-director-ctl-enable
    lvs-director-ctl-hand-over lvs-director-web lvs-director-up lvs-director-ipvs
    lvs-director-ipvs-show lvs-director-ipvs-apply lvs-director-ipvs-sync-start
    lvs-director-ipvs-sync-stop lvs-director-genhash lvs-director-apply lvs-director-token
    lvs-director-token-create lvs-director-token-list lvs-director-token-revoke)
common_files() { # ZSH_DIR
    printf '%s\n' \
        /usr/bin/lvs-director \
        /usr/lib/systemd/system/lvs-director-web.service \
        /usr/lib/systemd/system/lvs-director-pulse.service \
        /usr/lib/sysusers.d/lvs-director.conf \
        /usr/lib/tmpfiles.d/lvs-director.conf \
        /usr/lib/modules-load.d/lvs-director.conf \
        /usr/lib/lvs-director/setup \
        /usr/lib/lvs-director/withdraw-ipvs \
        /etc/lvs-director/lvs.cf \
        /usr/share/bash-completion/completions/lvs-director \
        "$1/_lvs-director" \
        /usr/share/fish/vendor_completions.d/lvs-director.fish \
        /usr/share/doc/lvs-director/README.md
    for m in "${MAN_PAGES[@]}"; do echo "/usr/share/man/man1/$m.1.gz"; done
}
DEB_FILES=$( (common_files /usr/share/zsh/vendor-completions; echo /usr/share/doc/lvs-director/copyright) | sort)
RPM_FILES=$(common_files /usr/share/zsh/site-functions | sort)

# --- cleanup, whatever happens ---------------------------------------------------------
pids=()
created_piranha=
cleanup() {
    local rc=$?
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -e "$marker" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lvs-director >/dev/null 2>&1 ||
            dpkg --purge lvs-director >/dev/null 2>&1
        rm -f "$marker"
    fi
    if [ -n "$created_piranha" ]; then rm -rf "$created_piranha"; fi
    rm -rf "$work/rpmroot"
    [ $rc -eq 0 ] || log "cleaned up after the failure"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was killed before its cleanup: its package goes first. Any
# other installation of lvs-director is somebody's and is left alone.
if dpkg-query -W -f '${Status}' lvs-director 2>/dev/null | grep 'installed\|config-files' >/dev/null; then
    if [ -e "$marker" ]; then
        log "purging the package a previous run left"
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lvs-director >/dev/null
    else
        trap - EXIT
        fail "lvs-director is installed on this machine (not by this test): purge it first, or set LVS_DIRECTOR_SKIP_PACKAGING=1"
    fi
fi

missing=()
command -v rpm >/dev/null || missing+=(rpm)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v readelf >/dev/null || missing+=(binutils)
command -v cpio >/dev/null || missing+=(cpio)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 1. build ------------------------------------------------------------------------
rm -rf "$work"
mkdir -p "$work"
start=$SECONDS
scripts/package.sh --out "$work/r1" --revision 1
scripts/package.sh --out "$work/r2" --revision 2 >/dev/null
log "packages built in $((SECONDS - start)) s"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
deb1=$work/r1/lvs-director_${version}-1_amd64.deb
deb2=$work/r2/lvs-director_${version}-2_amd64.deb
rpm1=$work/r1/lvs-director-${version}-1.x86_64.rpm
rpm2=$work/r2/lvs-director-${version}-2.x86_64.rpm
for f in "$deb1" "$deb2" "$rpm1" "$rpm2"; do [ -f "$f" ] || fail "$f was not built"; done

# --- 2. the .deb ---------------------------------------------------------------------
listed=$(dpkg-deb -c "$deb1" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort)
[ "$listed" = "$DEB_FILES" ] || fail "the .deb's files differ from the expected list:
$(diff <(echo "$DEB_FILES") <(echo "$listed"))"
dpkg-deb -c "$deb1" | awk '$1 !~ /^d/ && $2 != "0/0" && $2 != "root/root" { bad = 1 } END { exit bad }' ||
    fail "a file of the .deb is not root's"
check "conffiles must list /etc/lvs-director/lvs.cf" \
    test "$(dpkg-deb --ctrl-tarfile "$deb1" | tar -xO ./conffiles)" = /etc/lvs-director/lvs.cf
depends=$(dpkg-deb -f "$deb1" Depends)
for d in 'libc6 (>=' systemd init-system-helpers util-linux; do
    [[ $depends == *"$d"* ]] || fail "Depends lacks $d: $depends"
done
for s in postinst prerm postrm; do
    dpkg-deb --ctrl-tarfile "$deb1" | tar -t | grep -x "./$s" >/dev/null || fail "the .deb has no $s"
done

piranha=/etc/sysconfig/ha/lvs.cf
if [ ! -e /etc/sysconfig/ha ]; then
    [ -e /etc/sysconfig ] && created_piranha=/etc/sysconfig/ha || created_piranha=/etc/sysconfig
    mkdir -p /etc/sysconfig/ha
    cp tests/data/piranha_example.lvs.cf "$piranha"
    chmod 600 "$piranha"
fi

log "apt-get install $(basename "$deb1")"
touch "$marker"
out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb1" 2>&1) || fail "apt-get install failed:
$out"
printf '%s\n' "$out" | sed -n '/^Setting up lvs-director/,$p'
for said in "no administrator yet" "sudo -u lvs-director /usr/bin/lvs-director passwd admin" \
    "journalctl -u lvs-director-web" "sudo -u lvs-director /usr/bin/lvs-director import $piranha"; do
    [[ $out == *"$said"* ]] || fail "the installation did not say: $said"
done
[ -z "$created_piranha" ] || [[ $out == *"cat $piranha | runuser -u lvs-director"* ]] ||
    fail "the installation did not say how to import a Piranha file the user cannot read"

# --- 3. installed --------------------------------------------------------------------
installed=$(dpkg -L lvs-director | while read -r p; do [ -d "$p" ] || echo "$p"; done | sort)
[ "$installed" = "$DEB_FILES" ] || fail "dpkg -L differs from the expected list"
while read -r p; do [ -f "$p" ] || fail "$p is not installed"; done <<<"$DEB_FILES"
readelf -S /usr/bin/lvs-director | grep '\.symtab' >/dev/null && fail "/usr/bin/lvs-director is not stripped"
for m in "${MAN_PAGES[@]}"; do
    zcat "/usr/share/man/man1/$m.1.gz" | grep '^\.TH' >/dev/null || fail "$m.1.gz is not a manual page"
done
grep -q 'complete .*lvs-director' /usr/share/bash-completion/completions/lvs-director ||
    fail "the bash completion does not complete lvs-director"

mode() { stat -c '%a %U:%G' "$1"; }
getent passwd lvs-director | grep ':/var/lib/lvs-director:/usr/sbin/nologin$' >/dev/null ||
    fail "user lvs-director: $(getent passwd lvs-director)"
[ "$(id -u lvs-director)" -lt 1000 ] || fail "lvs-director is not a system user"
for expect in "/var/lib/lvs-director 700 lvs-director:lvs-director" \
    "/var/lib/lvs-director-pulse 700 root:root" \
    "/etc/lvs-director 1770 root:lvs-director" \
    "/etc/lvs-director/scripts 755 root:root" \
    "/etc/lvs-director/lvs.cf 640 lvs-director:lvs-director" \
    "/var/lib/lvs-director/director.db 600 lvs-director:lvs-director"; do
    set -- $expect
    [ "$(mode "$1")" = "$2 $3" ] || fail "$1 is $(mode "$1"), not $2 $3"
done
for u in lvs-director-web lvs-director-pulse; do
    [ -L "/etc/systemd/system/multi-user.target.wants/$u.service" ] || fail "$u is not enabled"
done

for u in lvs-director-web lvs-director-pulse; do
    v=$(systemd-analyze verify "/usr/lib/systemd/system/$u.service" 2>&1) ||
        fail "systemd-analyze verify $u.service:
$v"
    [ -z "$(grep lvs-director <<<"$v")" ] || fail "systemd-analyze verify $u.service warns:
$v"
done
log "systemd-analyze verify: both units pass"

v=$(/usr/bin/lvs-director --version)
[ "$(head -n1 <<<"$v")" = "lvs-director $version" ] || fail "--version says $v"
# The build information: the commit the package was built from.
grep -x "commit: $(git rev-parse --short HEAD) of .*" <<<"$v" >/dev/null ||
    fail "--version does not name the commit $(git rev-parse --short HEAD): $v"
check "the default lvs.cf must be valid" /usr/bin/lvs-director check-config /etc/lvs-director/lvs.cf
# The commented example in it is valid too.
sed -n 's/^# \{0,1\}\(network\|nat_\|virtual\|    \|}\)/\1/p' /etc/lvs-director/lvs.cf |
    grep -v '^ *\(sudo\|lvs-director\|(umask\)' >"$work/example.cf"
grep -q '^virtual www' "$work/example.cf" || fail "no example virtual server in the default lvs.cf"
check "the default lvs.cf's example must be valid" /usr/bin/lvs-director check-config "$work/example.cf"

as_web() { (cd / && runuser -u lvs-director -- "$@"); }
password='correct horse battery staple'
check "passwd as lvs-director" as_web /usr/bin/lvs-director passwd admin <<<"$password"
check "passwd --check" as_web /usr/bin/lvs-director passwd admin --check <<<"$password"
if as_web /usr/bin/lvs-director passwd admin --check <<<"wrong password" 2>/dev/null; then
    fail "passwd --check accepted a wrong password"
fi
[ "$(mode /var/lib/lvs-director/director.db)" = "600 lvs-director:lvs-director" ] ||
    fail "the database changed hands"

# --- 4. the services as their units run them -----------------------------------------
caps=-all,+net_admin,+net_raw,+net_bind_service
grep -qx "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE" \
    /usr/lib/systemd/system/lvs-director-pulse.service || fail "the pulse unit's capabilities changed: update $0"
start_pulse() {
    # RuntimeDirectory=lvs-director, RuntimeDirectoryMode=0750, User=root,
    # Group=lvs-director, the unit's capabilities and environment.
    install -d -m 0750 -o root -g lvs-director /run/lvs-director
    (cd / && exec setpriv --reuid=0 --regid=lvs-director --init-groups \
        --bounding-set="$caps" --inh-caps="$caps" --ambient-caps="$caps" --no-new-privs \
        env LVS_DIRECTOR_STATE_DIR=/var/lib/lvs-director-pulse /usr/bin/lvs-director pulse) \
        >>"$work/pulse.log" 2>&1 &
    pulse_pid=$!
    pids+=("$pulse_pid")
    for _ in $(seq 100); do
        [ -S /run/lvs-director/pulse.sock ] && return 0
        kill -0 "$pulse_pid" 2>/dev/null || fail "pulse stopped:
$(cat "$work/pulse.log")"
        sleep 0.1
    done
    fail "pulse made no control socket:
$(cat "$work/pulse.log")"
}
# A process waited for is no longer ours to kill at cleanup (its pid may be reused).
forget() { local p keep=(); for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; pids=("${keep[@]}"); }
stop_pulse() {
    kill "$pulse_pid"
    wait "$pulse_pid" || fail "pulse did not stop cleanly:
$(tail -5 "$work/pulse.log")"
    forget "$pulse_pid"
}

start_pulse
grep -q "CapBnd:.*0000000000003400" "/proc/$pulse_pid/status" ||
    fail "pulse does not run with exactly the unit's capabilities"
[ "$(mode /run/lvs-director/pulse.sock)" = "660 root:lvs-director" ] ||
    fail "the control socket is $(mode /run/lvs-director/pulse.sock)"
check "the web user reaches the control socket" as_web /usr/bin/lvs-director status >/dev/null
check "ctl reload (ExecReload) through the socket" as_web /usr/bin/lvs-director ctl reload

# Apply's write: a temporary file in /etc/lvs-director renamed over lvs.cf, as the
# web user (here through `export -o`, which writes the same way).
# As the installation says for a Piranha file the user cannot read.
as_web /usr/bin/lvs-director import /dev/stdin <tests/data/piranha_example.lvs.cf >/dev/null 2>&1 ||
    fail "import through standard input as the web user"
check "export -o lvs.cf as the web user" as_web /usr/bin/lvs-director export -o /etc/lvs-director/lvs.cf
grep -q '^serial_no = 57' /etc/lvs-director/lvs.cf || fail "lvs.cf was not replaced"
[ "$(mode /etc/lvs-director/lvs.cf)" = "640 lvs-director:lvs-director" ] ||
    fail "lvs.cf is $(mode /etc/lvs-director/lvs.cf) after the web user's write"
stop_pulse

# The heartbeat key: root's, read by the supervisor, out of the web user's reach.
key=/etc/lvs-director/heartbeat.key
(umask 077; head -c 32 /dev/urandom | base64 >"$key")
cat >"$work/ha.cf" <<'EOF'
serial_no = 58
primary = 127.0.0.1
backup = 127.0.0.2
backup_active = 1
heartbeat_key_file = /etc/lvs-director/heartbeat.key
EOF
check "the web user writes lvs.cf" as_web sh -c 'cat >/etc/lvs-director/lvs.cf' <"$work/ha.cf"
if as_web cat "$key" >/dev/null 2>&1; then fail "the web user can read the heartbeat key"; fi
if as_web rm -f "$key" 2>/dev/null; then fail "the web user can remove the heartbeat key"; fi
if as_web mv /etc/lvs-director/lvs.cf "$key" 2>/dev/null; then fail "the web user can replace the heartbeat key"; fi
start_pulse
as_web /usr/bin/lvs-director status --json | grep '"authenticated": true' >/dev/null ||
    fail "the supervisor did not read the heartbeat key"
stop_pulse
[ ! -e /run/lvs-director/pulse.sock ] || fail "pulse left its socket"

# The admin UI as its unit runs it (no capabilities), serving the login page.
port=$((20000 + RANDOM % 20000))
(cd / && exec setpriv --reuid=lvs-director --regid=lvs-director --init-groups \
    --bounding-set=-all --inh-caps=-all --no-new-privs \
    /usr/bin/lvs-director web --listen "127.0.0.1:$port") >"$work/web.log" 2>&1 &
web_pid=$!
pids+=("$web_pid")
answer=
for _ in $(seq 100); do
    answer=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
        printf 'GET /login HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && head -n1 <&3) 2>/dev/null) || true
    [ -z "$answer" ] || break
    kill -0 "$web_pid" 2>/dev/null || break
    sleep 0.1
done
[[ $answer == "HTTP/1."?" 200"* ]] || fail "the admin UI did not serve /login (${answer:-no answer}):
$(cat "$work/web.log")"
kill "$web_pid"
wait "$web_pid" || fail "the admin UI did not stop cleanly"
forget "$web_pid"
log "both services run as their units run them"

# --- 5. upgrade ----------------------------------------------------------------------
printf '# changed by the administrator\n' >>/etc/lvs-director/lvs.cf
cfg_sum=$(sha256sum /etc/lvs-director/lvs.cf)
log "apt-get install $(basename "$deb2") (upgrade)"
out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb2" 2>&1) || fail "the upgrade failed:
$out"
[ "$(dpkg-query -W -f '${Version}' lvs-director)" = "${version}-2" ] || fail "the upgrade did not happen"
[[ $out != *"no administrator yet"* ]] || fail "after the upgrade the database has no user"
[ "$(sha256sum /etc/lvs-director/lvs.cf)" = "$cfg_sum" ] || fail "the upgrade changed lvs.cf"
[ "$(mode /etc/lvs-director/lvs.cf)" = "640 lvs-director:lvs-director" ] ||
    fail "lvs.cf is $(mode /etc/lvs-director/lvs.cf) after the upgrade"
check "the heartbeat key survives the upgrade" test -s "$key"
check "the password still verifies after the upgrade" as_web /usr/bin/lvs-director passwd admin --check <<<"$password"
if compgen -G '/etc/lvs-director/*.dpkg-*' >/dev/null; then
    fail "the upgrade left dpkg files: $(ls /etc/lvs-director)"
fi

# --- 6. purge ------------------------------------------------------------------------
log "apt-get purge lvs-director"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lvs-director >/dev/null || fail "apt-get purge failed"
rm -f "$marker"
dpkg-query -W -f '${Status}' lvs-director 2>/dev/null | grep 'installed\|config-files' >/dev/null &&
    fail "the package is still known to dpkg"
while read -r p; do [ ! -e "$p" ] || fail "$p is still there after the purge"; done <<<"$DEB_FILES"
for p in /var/lib/lvs-director /var/lib/lvs-director-pulse /etc/lvs-director /run/lvs-director \
    /usr/lib/lvs-director /usr/share/doc/lvs-director; do
    [ ! -e "$p" ] || fail "$p is still there after the purge"
done
left=$(find /etc/systemd /var/lib/systemd -name '*lvs-director*' 2>/dev/null)
[ -z "$left" ] || fail "units' state left after the purge: $left"
log "purge: nothing left but the lvs-director system user (kept, as Debian does)"

# --- 7. the .rpm ---------------------------------------------------------------------
rpm_files=$(rpm -qpl "$rpm1" | sort)
[ "$rpm_files" = "$RPM_FILES" ] || fail "the .rpm's files differ from the expected list:
$(diff <(echo "$RPM_FILES") <(echo "$rpm_files"))"
rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm1" | grep -x '/etc/lvs-director/lvs.cf cn' >/dev/null ||
    fail "lvs.cf is not %config(noreplace) in the .rpm"
requires=$(rpm -qpR "$rpm1")
for r in systemd util-linux '/bin/sh' 'libc.so.6()(64bit)'; do
    grep -qxF "$r" <<<"$requires" || fail "the .rpm does not require $r"
done
scripts=$(rpm -qp --scripts "$rpm1")
for s in "postinstall scriptlet" "preuninstall scriptlet" "postuninstall scriptlet" \
    "/usr/lib/lvs-director/setup" "systemctl --no-reload preset" "try-restart" \
    "/usr/lib/lvs-director/withdraw-ipvs"; do
    [[ $scripts == *"$s"* ]] || fail "the .rpm's scripts lack: $s"
done
[ "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm1")" = "${version}-1" ] || fail "the .rpm's version"
cmp -s <(rpm2cpio "$rpm1" | cpio -i --to-stdout --quiet ./usr/bin/lvs-director) \
    <(dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./usr/bin/lvs-director) ||
    fail "the .deb and the .rpm hold different binaries"

root=$work/rpmroot
rm -rf "$root"
mkdir -p "$root"
rpm --root "$root" --initdb
rpm --root "$root" -i --nodeps --noscripts "$rpm1" 2>&1 | grep -v "^rpm: RPM should not be used directly\|^rpm: However assuming" || true
[ "$(rpm --root "$root" -q lvs-director)" = "lvs-director-${version}-1.x86_64" ] ||
    fail "the .rpm is not installed in the scratch root"
while read -r p; do [ -f "$root$p" ] || fail "$p missing in the scratch root"; done <<<"$RPM_FILES"
v=$("$root/usr/bin/lvs-director" -V)
[ "$v" = "lvs-director $version" ] || fail "the rpm's binary says $v"
check "rpm -V in the scratch root" rpm --root "$root" -V --nodeps lvs-director
check "the rpm's lvs.cf" "$root/usr/bin/lvs-director" check-config "$root/etc/lvs-director/lvs.cf"
# The units verified above (a scratch root has no systemd to verify them against).
for u in lvs-director-web lvs-director-pulse; do
    check "the rpm's $u.service" cmp -s "$root/usr/lib/systemd/system/$u.service" "packaging/$u.service"
done
rpm --root "$root" -e --nodeps --noscripts lvs-director 2>&1 | grep -v "^rpm: RPM should not be used directly\|^rpm: However assuming" || true
[ ! -e "$root/usr/bin/lvs-director" ] || fail "rpm -e left the binary"
log "rpm: files, scripts, requirements and a scratch-root installation check out"

# --- 8. under systemd, with IPVS ----------------------------------------------------
# Everything above ran without systemd as PID 1 (this machine's init is not systemd)
# and without IPVS: the VM has both.
log "the packages under systemd (PID 1) with IPVS, in a VM"
bash tests/packaging/systemd-vm.sh "$deb1" "$deb2" "$rpm1" "$rpm2" ||
    fail "the packages under systemd in the VM (above)"

log "all checks passed in $SECONDS s"
