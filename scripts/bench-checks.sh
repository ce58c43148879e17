#!/usr/bin/env bash
# Health-check scale on this host (no VM, no IPVS needed), as root: builds the release
# binaries and runs benches/checks.rs, which checks 10,000 real servers (listeners on
# loopback addresses in a network namespace of its own) every second with
# `lvs-director pulse` and reports its CPU share, RSS and detection times.
# BENCH_SERVICES, BENCH_DESTS (default 1000 x 10), BENCH_WINDOW_S (30), BENCH_KILLS
# (20), BENCH_PULSE_NOFILE (1024, or `inherit`) and BENCH_KEEP (keep the lvs.cf and
# the supervisor's log) are passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench-checks: needs root (network namespace, 10,000 listeners)" >&2
    exit 2
fi
cargo build --release --locked
bench=$(cargo bench --locked --bench checks --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/deps\/checks-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "bench-checks: cannot find the built benches/checks.rs" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
BENCH_BIN=${BENCH_BIN:-$target/release/lvs-director} exec "$bench" --bench
