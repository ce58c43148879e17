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
# The browser test (tests/browser.rs) drives Debian's Chromium (never a downloaded one).
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
# The VRRP interop tests run Debian's keepalived (2.2.7 on bookworm) as the peer.
command -v keepalived >/dev/null 2>&1 || missing+=(keepalived)
# Schemathesis (tests/api/schemathesis.sh) is installed from PyPI into a venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
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

# The browser test's playwright-core (pinned in tests/browser/package-lock.json); it
# uses /usr/bin/chromium, so no browser is downloaded.
if [ ! -d tests/browser/node_modules ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm is not installed: install Node.js 20 or later and run this again" >&2
        exit 2
    fi
    if [ -f tests/browser/package-lock.json ]; then
        log "npm ci --prefix tests/browser"
        npm ci --prefix tests/browser --no-audit --no-fund
    else
        log "npm install --prefix tests/browser"
        npm install --prefix tests/browser --no-audit --no-fund
    fi
fi

# The IPVS lab (tests/lab.rs) boots Debian's cloud kernel under QEMU: install its
# packages and fetch the kernel now (cached under target/lab/), so that a failure here
# shows as such instead of as failing lab tests.
log "preparing the IPVS lab"
tests/lab/prepare.sh >/dev/null

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

# The fuzz targets (fuzz/, its own lock file) must keep compiling; running them
# needs cargo-fuzz and is described in fuzz/README.md.
log "cargo check (fuzz targets)"
cargo check --locked --manifest-path fuzz/Cargo.toml --bins

log "cargo test"
log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
cargo test --locked --doc 2>&1 | tee "$log_file"
cargo test --locked --all-targets 2>&1 | tee -a "$log_file"
# One closing line for the whole run (pipefail has already stopped on a failure).
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log_file"

# Schemathesis against the API as served (PyPI, pinned; its venv is kept under
# target/): every operation of /api/v1/openapi.json, every check.
log "schemathesis (tests/api/schemathesis.sh)"
cargo build --locked --bin lvs-director
tests/api/schemathesis.sh target/debug/lvs-director
