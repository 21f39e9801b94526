#!/usr/bin/env bash
# Unmounts and removes what passthrough-up.sh made, even after a partial start.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"
# shellcheck disable=SC2034  # read by say() and die() of common.sh
LOG_NAME=passthrough
D=${PASSTHROUGH_DIR:-${TMPDIR:-/tmp}/mooseng-bench-passthrough}

[[ $(id -u) -eq 0 ]] || die "must run as root"
if is_mounted "$D/mnt"; then
  fusermount3 -u "$D/mnt" 2>/dev/null || fusermount -u "$D/mnt" 2>/dev/null || umount -l "$D/mnt" ||
    say "could not unmount $D/mnt"
fi
if pid_alive "$D/bindfs.pid"; then
  pid=$(cat "$D/bindfs.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
fi
if is_mounted "$D/tmpfs"; then
  umount "$D/tmpfs" || umount -l "$D/tmpfs"
fi
if [[ -e $D ]]; then
  is_mounted "$D/mnt" && die "$D/mnt is still mounted; not removing $D"
  rm -rf "$D"
fi
say "down"
