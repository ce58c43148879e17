#!/usr/bin/env bash
# Schemathesis (PyPI, pinned below) against the automation API as served: the document
# at /api/v1/openapi.json, every operation, every check (see schemathesis.toml), with
# an administrator's token on a temporary database holding schemathesis.lvs.cf. The product runs as `lvs-director up` (admin UI and supervisor in one
# process) in a network namespace of its own, so the supervisor answers for real and
# cannot touch this host's addresses. Needs root (the namespace).
#
# Usage: tests/api/schemathesis.sh [path/to/lvs-director]
# SCHEMATHESIS_SEED: the seed (fixed by default, so that a run repeats); "random" for
# a new one each run. SCHEMATHESIS_EXAMPLES: examples per operation (default 30).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=$(realpath "${1:-target/debug/lvs-director}")
version=4.32.5
venv=target/schemathesis-$version
seed=${SCHEMATHESIS_SEED:-20261205}
examples=${SCHEMATHESIS_EXAMPLES:-30}

if [ "$(id -u)" != 0 ]; then
    echo "schemathesis.sh needs root: the product runs in a network namespace of its own" >&2
    exit 1
fi
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

work=$(mktemp -d)
ns=lvs-st-$$
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth1
ip -n "$ns" addr add 192.0.2.1/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth1 up
# `up` keeps everything in its data folder: the database, and the lvs.cf it starts
# the supervisor on (applied here first, so that the supervisor runs from the start).
data=$work/data
mkdir -p "$data"
db=$data/director.db
"$bin" --db "$db" import tests/api/schemathesis.lvs.cf >/dev/null
"$bin" apply --db "$db" --lvs-cf "$data/lvs.cf" --control-socket "$data/pulse.sock" --yes \
    >/dev/null
token=$("$bin" --db "$db" token create schemathesis-runner --role admin | tail -n 1)
mkdir -m 755 "$work/scripts"
ip netns exec "$ns" "$bin" up --data "$data" \
    --listen 127.0.0.1:3636 --scripts-dir "$work/scripts" >"$work/up.log" 2>&1 &
server=$!

url=http://127.0.0.1:3636/api/v1/openapi.json
for _ in $(seq 100); do
    ip netns exec "$ns" "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$url')" \
        2>/dev/null && break
    sleep 0.1
done

seed_args=(--seed "$seed")
[ "$seed" = random ] && seed_args=()
status=0
ip netns exec "$ns" "$venv/bin/schemathesis" --config-file tests/api/schemathesis.toml \
    run "$url" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --exclude-checks ignored_auth \
    --max-examples "$examples" \
    --workers 2 \
    --no-color \
    "${seed_args[@]}" || status=$?
if [ "$status" != 0 ]; then
    echo "----- lvs-director up's log -----"
    tail -n 50 "$work/up.log"
fi
exit "$status"
