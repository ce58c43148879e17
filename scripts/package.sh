#!/usr/bin/env bash
# Builds both packages: scripts/package.sh [--out DIR] [--revision N]
#
#   target/packages/lvs-director_VERSION-N_ARCH.deb   (cargo-deb)
#   target/packages/lvs-director-VERSION-N.ARCH.rpm   (cargo-generate-rpm)
#
# from one stripped release build, with the manual pages and shell completions that
# `lvs-director generate-docs` writes from the command line's definition (target/dist/).
# What goes where: [package.metadata.deb] and [package.metadata.generate-rpm] in
# Cargo.toml; the units, sysusers/tmpfiles/modules-load files, default lvs.cf and
# maintainer scripts: packaging/. Installs the packaging tools it lacks (pinned
# versions, with `cargo install --locked` into cargo's bin folder), and strip/gzip
# through apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/packages
revision=${PACKAGE_REVISION:-1}
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out=$2; shift 2 ;;
    --revision) revision=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--out DIR] [--revision N]" >&2; exit 2 ;;
    esac
done

log() { printf '==> %s\n' "$*"; }

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
# Installed into cargo's own bin folder (kept across clones of the repository); a
# copy in target/tools/bin is used too.
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin

missing=()
command -v strip >/dev/null 2>&1 || missing+=(binutils)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi

# Exactly the pinned versions, whatever else is on PATH: their output is what the
# tests check. Prints the tool's path.
need_tool() { # crate version
    local dir
    for dir in "$cargo_bin" "$PWD/target/tools/bin"; do
        if "$dir/$1" --version 2>/dev/null | grep -qx "$1 $2"; then
            echo "$dir/$1"
            return
        fi
    done
    log "cargo install $1@$2" >&2
    cargo install --quiet --locked "$1@$2" >&2
    echo "$cargo_bin/$1"
}
cargo_deb=$(need_tool cargo-deb "$CARGO_DEB_VERSION")
cargo_generate_rpm=$(need_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION")

log "cargo build --release"
cargo build --release --locked --bin lvs-director

log "stripped binary, manual pages and completions in target/dist"
rm -rf target/dist
mkdir -p target/dist "$out"
strip --strip-all -o target/dist/lvs-director target/release/lvs-director
target/dist/lvs-director generate-docs --out target/dist
gzip -9n target/dist/man/*.1

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
log "cargo deb ($version-$revision)"
# Both packages take target/dist/lvs-director (one binary, already stripped); cargo-deb
# reads its shared-library dependencies from it ("$auto").
"$cargo_deb" --no-build --quiet --deb-revision "$revision" --output "$out"
log "cargo generate-rpm ($version-$revision)"
"$cargo_generate_rpm" --set-metadata "release = \"$revision\"" --output "$out"

ls -l "$out"/lvs-director?"$version-$revision"[._]*
