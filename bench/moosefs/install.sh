#!/usr/bin/env bash
# Installs the baselines of `fs-bench` from Debian's packages:
#   - MooseFS 3.0.117 (moosefs-master, moosefs-chunkserver, moosefs-client, moosefs-cli)
#   - bindfs (the FUSE passthrough baseline, mounted over a tmpfs)
#   - iproute2 (`ip netns`, for the MooseFS processes' network namespace)
# Safe to run again: it installs only what is missing. Needs root (apt-get).
# The installed MooseFS version is written to stdout as the last line ("moosefs <version>").
set -euo pipefail

WANT=3.0.117
PKGS=(moosefs-master moosefs-chunkserver moosefs-client moosefs-cli bindfs fuse3 iproute2)

die() { echo "install.sh: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs Debian packages)"
command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian or Ubuntu system"

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install.sh: installing ${missing[*]}"
  if ! apt-cache policy moosefs-master | grep -q 'Candidate: [0-9]'; then
    apt-get update
  fi
  candidate=$(apt-cache policy moosefs-master | awk '/Candidate:/ {print $2}')
  [[ -n $candidate && $candidate != "(none)" ]] ||
    die "no moosefs-master package in the configured apt sources (apt-cache policy moosefs-master shows no candidate)"
  if [[ ${candidate%%-*} != "$WANT" ]]; then
    echo "install.sh: WARNING: the available MooseFS is $candidate, not $WANT;" \
      "the benchmark results will record $candidate" >&2
  fi
  # Debian's maintainer scripts would start the packaged services; we start our own.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y --no-install-recommends "${missing[@]}"
fi

for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
    die "$p is still not installed"
done
for b in mfsmaster mfschunkserver mfsmount mfssetgoal bindfs ip; do
  command -v "$b" >/dev/null || die "$b not found on PATH after installing"
done

# The Debian packages start their own daemons on some systems (systemd). Stop only those
# started by the package's unit, so that our cluster has the ports of the namespace to itself.
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  for s in moosefs-master moosefs-chunkserver; do
    systemctl disable --now "$s" >/dev/null 2>&1 || true
  done
fi

version=$(dpkg-query -W -f='${Version}' moosefs-master)
if [[ ${version%%-*} != "$WANT" ]]; then
  echo "install.sh: NOTE: installed MooseFS $version (the brief's baseline is $WANT)" >&2
fi
echo "install.sh: ready (bindfs $(dpkg-query -W -f='${Version}' bindfs))"
echo "moosefs $version"
