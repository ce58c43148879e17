#!/usr/bin/env bash
# The admin UI under load on this host: builds the release binaries and runs
# benches/web.rs, which stores 1,000 virtual servers x 10 real servers, serves the UI
# in-process on 127.0.0.1 and drives the monitoring page and the virtual-server list
# with 64 concurrent keep-alive clients, without a supervisor, with a status source of
# the same size, and (as root) with a real `lvs-director pulse` checking 10,000 real
# servers; prints requests/s and p50/p90/p99/max per page.
# BENCH_SERVICES, BENCH_DESTS (default 1000 x 10), BENCH_CLIENTS (64), BENCH_SECONDS
# (10), BENCH_WARMUP_S (2), BENCH_PAGES and BENCH_CASES (comma-separated filters),
# BENCH_PULSE=0 (no real supervisor) are passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
exec cargo bench --locked --bench web
