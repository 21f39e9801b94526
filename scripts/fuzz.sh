#!/usr/bin/env bash
# Runs every decoder fuzz target of crdt/fuzz for N seconds each (default 60).
# Works on the stable toolchain: RUSTC_BOOTSTRAP lets cargo-fuzz pass its instrumentation
# flags, and no sanitizer is used (the crate has no unsafe code to check).
# A crash leaves its input in crdt/fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/../crdt"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build --sanitizer none
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $targets; do
  echo "--- fuzz $t for ${seconds}s"
  if ! cargo fuzz run --sanitizer none "$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $t failed; the crashing input is in crdt/fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E "^(Done|stat::number_of_executed_units)" "$log" || true
done
