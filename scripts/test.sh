#!/usr/bin/env bash
# Sets up a fresh machine (when something is missing: a C toolchain, pkg-config, fuse3,
# iproute2, nftables, libfaketime, cargo-nextest, cargo-deny, cargo-fuzz) and runs every gate:
#   cargo fmt --check, cargo clippy -D warnings, cargo doc -D warnings, cargo deny check, cargo nextest (ci profile),
#   doctests, and a short fuzz pass over every decoder.
# Environment: MOOSENG_FUZZ_SECONDS (default 5 per target; 0 skips the fuzz pass).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustc --version
cargo --version

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v fusermount3 >/dev/null || need_apt+=(fuse3)
# The Jepsen harness (jepsen/): namespaces, nftables rules, clock skew.
command -v ip >/dev/null || need_apt+=(iproute2)
command -v nft >/dev/null || need_apt+=(nftables)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need_apt+=(libfaketime)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing apt packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi

install_cargo_tool() { # binary crate version
  if ! command -v "$1" >/dev/null; then
    step "installing $2 $3 (first run on this machine)"
    cargo install --locked "$2" --version "$3"
  fi
}
install_cargo_tool cargo-nextest cargo-nextest 0.9.143
install_cargo_tool cargo-deny cargo-deny 0.20.2

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken links and other rustdoc warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo deny check"
if timeout 20 git ls-remote --exit-code https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny --locked check
else
  echo "WARNING: the RustSec advisory database (github.com) is unreachable from this machine;"
  echo "         checking licenses, bans and sources only. Advisory ignores in deny.toml still apply"
  echo "         wherever the database can be fetched."
  cargo deny --locked check licenses bans sources
fi

step "cargo nextest (ci profile)"
cargo nextest run --workspace --locked --profile ci

step "doctests"
cargo test --workspace --locked --doc

fuzz_seconds="${MOOSENG_FUZZ_SECONDS:-5}"
if [ "$fuzz_seconds" != 0 ]; then
  install_cargo_tool cargo-fuzz cargo-fuzz 0.13.2
  step "fuzz smoke run (${fuzz_seconds}s per decoder)"
  ./scripts/fuzz.sh "$fuzz_seconds"
fi

step "all gates passed"
