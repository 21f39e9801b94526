#!/usr/bin/env bash
# MooseNG against MooseFS 3.0.117 and a FUSE passthrough, side by side in one run.
#
#   sudo bench/compare.sh                                  # 10,000 files, 1 GiB
#   sudo bench/compare.sh --files 2000 --data-size 256M    # quicker
#
# Arguments are passed to fs-bench (see `target/release/fs-bench --help`). It:
#   1. builds `mooseng` and `fs-bench` in release mode;
#   2. starts `mooseng demo --data-dir <tmp>/demo` (3 metadata servers, 3 chunkservers,
#      mounted) and waits for <tmp>/demo/cluster.json;
#   3. starts MooseFS (bench/moosefs/up.sh) and the passthrough (passthrough-up.sh);
#   4. runs fs-bench against the three mounts, writing JSON to $FS_BENCH_JSON
#      (default target/bench/fs-bench.json) unless --json is given;
#   5. stops and removes everything on exit, also on Ctrl-C or an error.
# If MooseFS is not installed or does not start, the run goes on without it (MooseNG vs
# passthrough) and says so; run bench/moosefs/install.sh first to have it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

say() { echo "compare: $*" >&2; }
die() { echo "compare: error: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (FUSE and tmpfs mounts, a network namespace, drop_caches)"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing: FUSE is not available here"
command -v cargo >/dev/null || die "cargo not found"
command -v bindfs >/dev/null || die "bindfs not found: run bench/moosefs/install.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mooseng-compare-XXXXXX")
# fs-bench and the demo each run in a process group of their own (setsid), so that cleanup
# can stop them with everything they started, and only that.
fsb_pid=
demo_pid=
demo_mnt=
# Stops process group $1 (SIGTERM, then SIGKILL after $2 seconds).
stop_group() {
  local pg=$1 secs=$2 what=$3
  kill -0 -- "-$pg" 2>/dev/null || return 0
  kill -TERM -- "-$pg" 2>/dev/null
  for _ in $(seq 1 $((secs * 5))); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.2; done
  if kill -0 -- "-$pg" 2>/dev/null; then
    say "$what (process group $pg) did not stop in $secs s; killing it"
    kill -KILL -- "-$pg" 2>/dev/null
  fi
  wait "$pg" 2>/dev/null
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  say "cleaning up"
  [[ -n $fsb_pid ]] && stop_group "$fsb_pid" 10 fs-bench
  [[ -n $demo_pid ]] && stop_group "$demo_pid" 30 "mooseng demo"
  if [[ -n $demo_mnt ]] && awk -v p="$demo_mnt" '$2 == p { f = 1 } END { exit !f }' /proc/self/mounts; then
    fusermount3 -u "$demo_mnt" 2>/dev/null || umount -l "$demo_mnt"
  fi
  "$here/moosefs/down.sh"
  "$here/moosefs/passthrough-down.sh"
  if [[ -n $demo_mnt ]] && awk -v p="$demo_mnt" '$2 == p { f = 1 } END { exit !f }' /proc/self/mounts; then
    say "$demo_mnt is still mounted; leaving $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building mooseng and fs-bench (release)"
(cd "$repo" && cargo build --release -p mooseng -p bench --bin fs-bench --bin mooseng)
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mooseng=$target_dir/release/mooseng
fsbench=$target_dir/release/fs-bench
[[ -x $mooseng && -x $fsbench ]] || die "build outputs not found in $target_dir/release"

say "starting mooseng demo in $tmp/demo"
setsid "$mooseng" demo --data-dir "$tmp/demo" >"$tmp/demo.log" 2>&1 &
demo_pid=$!
deadline=$((SECONDS + 180))
until [[ -s $tmp/demo/cluster.json ]]; do
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    tail -n 30 "$tmp/demo.log" >&2
    die "mooseng demo exited before it was up (log above)"
  fi
  ((SECONDS < deadline)) || { tail -n 30 "$tmp/demo.log" >&2; die "mooseng demo not up within 180 s"; }
  sleep 0.5
done
demo_mnt=$(sed -n 's/^ *"mountpoint": *"\(.*\)",\{0,1\}$/\1/p' "$tmp/demo/cluster.json")
[[ -n $demo_mnt && -d $demo_mnt ]] || die "no mountpoint in $tmp/demo/cluster.json"
say "mooseng mounted at $demo_mnt"

targets=(--target "mooseng=$demo_mnt")
notes=()
if mfs_mnt=$("$here/moosefs/up.sh"); then
  targets+=(--target "moosefs=$mfs_mnt")
  notes+=(--note "moosefs=$(dpkg-query -W -f='${Version}' moosefs-master) (Debian), master CHANGELOG_SAVE_MODE=0, goal 2, 3 chunkservers")
else
  say "WARNING: MooseFS did not start (see above); comparing MooseNG with the passthrough only"
  notes+=(--note "moosefs=not run: bench/moosefs/up.sh failed")
fi
pass_mnt=$("$here/moosefs/passthrough-up.sh")
targets+=(--target "passthrough=$pass_mnt")

json=()
if [[ " $* " != *" --json "* && " $* " != *" --json="* ]]; then
  mkdir -p "$target_dir/bench"
  json=(--json "${FS_BENCH_JSON:-$target_dir/bench/fs-bench.json}")
fi
rev=$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=
if [[ -n $(cd "$repo" && git status --porcelain 2>/dev/null) ]]; then
  dirty="+uncommitted changes"
fi
notes+=(--note "date=$(date -u '+%Y-%m-%d %H:%M UTC')")
notes+=(--note "mooseng=$($mooseng --version 2>/dev/null || echo mooseng) at $rev$dirty; demo: 3 metadata servers (strict), 3 chunkservers, goal 2")
notes+=(--note "passthrough=bindfs $(dpkg-query -W -f='${Version}' bindfs 2>/dev/null || echo '?') --multithreaded -o big_writes over tmpfs")
notes+=(--note "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)")

say "running fs-bench"
setsid "$fsbench" "${targets[@]}" "${notes[@]}" "${json[@]}" "$@" &
fsb_pid=$!
wait "$fsb_pid"
