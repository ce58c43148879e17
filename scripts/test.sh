#!/usr/bin/env bash
# The project's test command (see README): installs what it needs on a fresh machine,
# then checks formatting, lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# System packages the build and the tests need.
missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v git >/dev/null 2>&1 || missing+=(git)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not installed: install a Rust toolchain (https://rustup.rs) and run this again" >&2
    exit 2
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        log "installing $component"
        rustup component add "$component"
    fi
done

export CARGO_TERM_COLOR=never

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

log "cargo test"
cargo test --locked --all-targets
cargo test --locked --doc
