#!/usr/bin/env bash
# The FUSE passthrough baseline: bindfs over a tmpfs. Prints the mountpoint on stdout.
#
#   bench/moosefs/passthrough-up.sh
#
# It measures what FUSE itself costs (a kernel round trip to a user-space daemon that does
# the same call on a local file system), with no network and no disk: the floor under any
# FUSE file system. bindfs runs with --multithreaded (like mfsmount and mooseng mount, which
# serve requests on several threads) and -o big_writes (bindfs uses libfuse 2, which otherwise
# splits writes into 4 KiB requests; the other two mounts take large writes), otherwise with
# its defaults.
# Lives in $PASSTHROUGH_DIR (default /tmp/mooseng-bench-passthrough): tmpfs/ and mnt/.
# Already up: prints the mountpoint and does nothing else. Needs root, /dev/fuse, bindfs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"
# shellcheck disable=SC2034  # read by say() and die() of common.sh
LOG_NAME=passthrough
D=${PASSTHROUGH_DIR:-${TMPDIR:-/tmp}/mooseng-bench-passthrough}

[[ $(id -u) -eq 0 ]] || die "must run as root (tmpfs and FUSE mounts)"
command -v bindfs >/dev/null || die "bindfs not found: run bench/moosefs/install.sh first"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing: FUSE is not available here"

if is_mounted "$D/mnt" && pid_alive "$D/bindfs.pid"; then
  say "already up"
  echo "$D/mnt"
  exit 0
fi
if [[ -e $D ]]; then
  say "cleaning up an earlier, incomplete passthrough"
  "$here/passthrough-down.sh"
fi
mkdir -p "$D/tmpfs" "$D/mnt"
mount -t tmpfs -o mode=0755 mfsbench-tmpfs "$D/tmpfs"
bindfs -f --multithreaded -o big_writes "$D/tmpfs" "$D/mnt" >"$D/bindfs.log" 2>&1 &
echo $! >"$D/bindfs.pid"
for _ in $(seq 1 100); do
  is_mounted "$D/mnt" && break
  pid_alive "$D/bindfs.pid" || break
  sleep 0.1
done
if ! is_mounted "$D/mnt"; then
  cat "$D/bindfs.log" >&2
  die "bindfs did not mount $D/mnt; run bench/moosefs/passthrough-down.sh to clean up"
fi
say "bindfs $(bindfs --version 2>/dev/null | awk '{print $2; exit}') over tmpfs mounted at $D/mnt"
echo "$D/mnt"
