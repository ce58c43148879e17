#!/usr/bin/env bash
# The project's benchmarks, which need IPVS: builds the release binaries and runs
# benches/ipvs.rs inside the lab VM (tests/lab), side by side with `ipvsadm -R`.
# BENCH_SERVICES, BENCH_DESTS and BENCH_ROUNDS are passed through (defaults 1000, 10, 3).
set -euo pipefail
cd "$(dirname "$0")/.."

tests/lab/prepare.sh
cargo build --release --locked
bench=$(cargo bench --locked --bench ipvs --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/deps\/ipvs-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "bench: cannot find the built benches/ipvs.rs" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/lab/bench"
cp "$bench" "$target/lab/bench/ipvs-bench"
# The VM sees no host environment: hand the sizes over in the scenario's own file.
scen=$(mktemp -d)
trap 'rm -rf "$scen"' EXIT
{
    echo '#!/bin/sh'
    echo "export BENCH_SERVICES=${BENCH_SERVICES:-1000} BENCH_DESTS=${BENCH_DESTS:-10} BENCH_ROUNDS=${BENCH_ROUNDS:-3}"
    tail -n +2 tests/lab/bench/ipvs.sh
} >"$scen/ipvs.sh"
tests/lab/run.sh --bin "$target/lab/bench/ipvs-bench" --scenarios "$scen" \
    --scenario-timeout 900 --timeout 1000 --log "$target/lab/bench.log"
grep -a 'BENCH' "$target/lab/bench.log" | sed 's/^LAB-OUT [^|]*| //'
