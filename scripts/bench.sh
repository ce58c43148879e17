#!/usr/bin/env bash
# The project's benchmarks that need IPVS, in the lab VM (tests/lab), release builds:
#   scripts/bench.sh [ipvs]   benches/ipvs.rs, side by side with `ipvsadm -R`;
#                             BENCH_SERVICES, BENCH_DESTS, BENCH_ROUNDS (1000, 10, 3)
#   scripts/bench.sh checker  health-check CPU against keepalived's checker
#                             (tests/lab/bench/checker.sh); BENCH_SERVICES, BENCH_DESTS,
#                             BENCH_WINDOW (50, 10, 30), BENCH_KINDS ("tcp http")
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-ipvs}
case $which in
ipvs | checker) ;;
*) echo "bench: unknown benchmark '$which' (ipvs or checker)" >&2; exit 2 ;;
esac
tests/lab/prepare.sh
cargo build --release --locked
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/lab/bench"
# The VM sees no host environment: hand the settings over in the scenario's own file.
scen=$(mktemp -d)
trap 'rm -rf "$scen"' EXIT
if [ "$which" = ipvs ]; then
    bench=$(cargo bench --locked --bench ipvs --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\/deps\/ipvs-[^"]*\)".*/\1/p' | tail -1)
    [ -x "$bench" ] || { echo "bench: cannot find the built benches/ipvs.rs" >&2; exit 2; }
    cp "$bench" "$target/lab/bench/ipvs-bench"
    bins=(--bin "$target/lab/bench/ipvs-bench")
    settings="BENCH_SERVICES=${BENCH_SERVICES:-1000} BENCH_DESTS=${BENCH_DESTS:-10} BENCH_ROUNDS=${BENCH_ROUNDS:-3}"
    limit=900
else
    bins=(--bin "$target/release/lvs-director")
    settings="BENCH_SERVICES=${BENCH_SERVICES:-50} BENCH_DESTS=${BENCH_DESTS:-10} BENCH_WINDOW=${BENCH_WINDOW:-30} BENCH_KINDS='${BENCH_KINDS:-tcp http}'"
    limit=1800
fi
{
    echo '#!/bin/sh'
    echo "# lab-timeout: $limit"
    echo "export $settings"
    tail -n +2 "tests/lab/bench/$which.sh"
} >"$scen/$which.sh"
tests/lab/run.sh "${bins[@]}" --scenarios "$scen" \
    --scenario-timeout "$limit" --timeout $((limit + 100)) --log "$target/lab/bench.log"
grep -a 'BENCH' "$target/lab/bench.log" | sed 's/^LAB-OUT [^|]*| //'
