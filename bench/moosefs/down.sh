#!/usr/bin/env bash
# Stops what up.sh started and removes it: unmounts, stops the daemons (SIGTERM, then
# SIGKILL after 20 s), deletes the network namespace and $MFSBENCH_DIR. Works after a
# partial up.sh, and does nothing (successfully) when nothing is there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"

[[ $(id -u) -eq 0 ]] || die "must run as root"

if is_mounted "$MNT"; then
  say "unmounting $MNT"
  fusermount3 -u "$MNT" 2>/dev/null || fusermount -u "$MNT" 2>/dev/null || umount -l "$MNT" ||
    say "could not unmount $MNT"
fi

# Only the processes whose pids up.sh recorded: the mount first, then the chunkservers (all
# at once), the master last (it saves its metadata on SIGTERM).
stop() {
  local pids=() f pid
  for f in "$@"; do
    pid_alive "$f" && pids+=("$(cat "$f")")
  done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local alive
  for _ in $(seq 1 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid did not stop in 20 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}
if [[ -d $MFSBENCH_DIR/pids ]]; then
  stop "$MFSBENCH_DIR/pids/mount"
  stop "$MFSBENCH_DIR"/pids/cs*
  stop "$MFSBENCH_DIR/pids/master"
fi

if ip netns list 2>/dev/null | grep -qw "$MFSBENCH_NETNS"; then
  # Anything still in the namespace was started by up.sh (the namespace is its own).
  for pid in $(ip netns pids "$MFSBENCH_NETNS" 2>/dev/null); do
    say "killing leftover pid $pid in namespace $MFSBENCH_NETNS"
    kill -KILL "$pid" 2>/dev/null || true
  done
  ip netns del "$MFSBENCH_NETNS"
fi
# Deleting the namespace deletes both veth ends; this covers a pair left in this namespace.
ip link del "$HOST_IF" 2>/dev/null || true

if [[ -e $MFSBENCH_DIR ]]; then
  if is_mounted "$MNT"; then
    die "$MNT is still mounted; not removing $MFSBENCH_DIR"
  fi
  rm -rf "$MFSBENCH_DIR"
fi
say "down"
