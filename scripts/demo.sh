#!/usr/bin/env bash
# Sets up a fresh machine (when something is missing), builds mooseng in release mode and runs
# `mooseng demo`: 3 metadata servers and 3 chunkservers on loopback, mounted with FUSE.
# Arguments go to `mooseng demo` (see `mooseng demo --help`); Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v fusermount3 >/dev/null || need_apt+=(fuse3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing apt packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi
if [ ! -e /dev/fuse ]; then
  echo "error: /dev/fuse is missing: load the fuse module (modprobe fuse) or, in a container," >&2
  echo "       run with --device /dev/fuse --cap-add SYS_ADMIN" >&2
  exit 1
fi

echo "==> building mooseng (release)"
cargo build --release --locked -p mooseng
exec ./target/release/mooseng demo "$@"
