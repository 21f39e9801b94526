#!/usr/bin/env bash
# Starts a MooseFS cluster on this machine and mounts it; prints the mountpoint on stdout.
#
#   bench/moosefs/up.sh          # master + $MFSBENCH_CHUNKSERVERS (default 3) chunkservers
#
# The master and the chunkservers run in a network namespace (see common.sh), with every
# setting at MooseFS's default except the addresses and paths: in particular the changelog
# is written in the background (CHANGELOG_SAVE_MODE = 0, the default "async" mode) and
# chunkservers do not fsync before closing a chunk (HDD_FSYNC_BEFORE_CLOSE = 0). With two or
# more chunkservers the root gets goal 2 (two copies, MooseNG's default).
#
# If the cluster is already up this prints its mountpoint and does nothing else; if an
# earlier start was left half done, that is torn down (down.sh) and started afresh.
# Needs root, /dev/fuse and the packages of install.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, FUSE mount)"
for b in mfsmaster mfschunkserver mfsmount mfssetgoal mfscheckfile ip; do
  command -v "$b" >/dev/null || die "$b not found: run bench/moosefs/install.sh first"
done
[[ -c /dev/fuse ]] || die "/dev/fuse is missing: FUSE is not available here"
getent passwd mfs >/dev/null || die "user mfs missing (it comes with moosefs-common): run bench/moosefs/install.sh"
((MFSBENCH_CHUNKSERVERS >= 1)) || die "MFSBENCH_CHUNKSERVERS must be at least 1"

if is_mounted "$MNT" && pid_alive "$MFSBENCH_DIR/pids/master"; then
  say "already up"
  echo "$MNT"
  exit 0
fi
if [[ -e $MFSBENCH_DIR ]] || ip netns list | grep -qw "$MFSBENCH_NETNS"; then
  say "cleaning up an earlier, incomplete start"
  "$here/down.sh"
fi

# On failure, say where the logs are; the caller decides whether to run down.sh.
trap 'say "start failed; logs are in $MFSBENCH_DIR/logs; run bench/moosefs/down.sh to clean up"' ERR

mkdir -p "$MFSBENCH_DIR"/{master,etc,logs,pids,mnt}
version=$(mfsmaster -v 2>&1 | head -n1)
say "starting $version with $MFSBENCH_CHUNKSERVERS chunkserver(s) in $MFSBENCH_DIR"

# --- network namespace: the veth pair's peer is created directly inside the namespace ---
ip netns add "$MFSBENCH_NETNS"
ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$MFSBENCH_NETNS"
ip addr add "$HOST_IP/24" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip -n "$MFSBENCH_NETNS" addr add "$NS_IP/24" dev "$NS_IF"
ip -n "$MFSBENCH_NETNS" link set "$NS_IF" up
ip -n "$MFSBENCH_NETNS" link set lo up

# Runs "$@" in the namespace in the background with output to logs/$name.log; records its pid.
# (`ip netns exec` execs the command, so $! is the daemon's own pid.)
spawn() {
  local name=$1
  shift
  ip netns exec "$MFSBENCH_NETNS" "$@" >"$MFSBENCH_DIR/logs/$name.log" 2>&1 &
  echo $! >"$MFSBENCH_DIR/pids/$name"
}

# Waits up to $2 seconds for "$3..." to succeed; fails with the tail of log $1.
wait_for() {
  local log=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      say "timed out after ${secs}s waiting for: $*"
      [[ -f $log ]] && tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}

tcp_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# --- master ---
cat >"$MFSBENCH_DIR/etc/mfsexports.cfg" <<EOF
*   /   rw,alldirs,admin,maproot=0:0
*   .   rw
EOF
cat >"$MFSBENCH_DIR/etc/mfsmaster.cfg" <<EOF
DATA_PATH = $MFSBENCH_DIR/master
EXPORTS_FILENAME = $MFSBENCH_DIR/etc/mfsexports.cfg
TOPOLOGY_FILENAME = $MFSBENCH_DIR/etc/mfstopology.cfg
MATOML_LISTEN_HOST = $NS_IP
MATOCS_LISTEN_HOST = $NS_IP
MATOCL_LISTEN_HOST = $NS_IP
# the default: changelog written in the background, no fsync per change
CHANGELOG_SAVE_MODE = 0
EOF
: >"$MFSBENCH_DIR/etc/mfstopology.cfg"
cp /var/lib/mfs/metadata.mfs.empty "$MFSBENCH_DIR/master/metadata.mfs"
chown -R mfs:mfs "$MFSBENCH_DIR/master"
spawn master mfsmaster -f -c "$MFSBENCH_DIR/etc/mfsmaster.cfg" start
wait_for "$MFSBENCH_DIR/logs/master.log" 30 tcp_open "$NS_IP" 9421
say "master listening on $NS_IP:9421"

# --- chunkservers: one "disk" each, ports 9422, 9432, 9442, ... ---
for i in $(seq 1 "$MFSBENCH_CHUNKSERVERS"); do
  cs=$MFSBENCH_DIR/cs$i
  port=$((9422 + 10 * (i - 1)))
  mkdir -p "$cs/data" "$cs/hdd"
  echo "$cs/hdd" >"$MFSBENCH_DIR/etc/mfshdd$i.cfg"
  cat >"$MFSBENCH_DIR/etc/mfschunkserver$i.cfg" <<EOF
DATA_PATH = $cs/data
HDD_CONF_FILENAME = $MFSBENCH_DIR/etc/mfshdd$i.cfg
SYSLOG_IDENT = mfschunkserver$i
MASTER_HOST = $NS_IP
MASTER_PORT = 9420
BIND_HOST = $NS_IP
CSSERV_LISTEN_HOST = $NS_IP
CSSERV_LISTEN_PORT = $port
EOF
  chown -R mfs:mfs "$cs"
  spawn "cs$i" mfschunkserver -f -c "$MFSBENCH_DIR/etc/mfschunkserver$i.cfg" start
done

connected() {
  local n
  n=$(mfscli -H "$NS_IP" -P 9421 -p -n -SCS 2>/dev/null | grep -c "$NS_IP" || true)
  ((n >= MFSBENCH_CHUNKSERVERS))
}
if command -v mfscli >/dev/null; then
  wait_for "$MFSBENCH_DIR/logs/cs1.log" 60 connected
  say "$MFSBENCH_CHUNKSERVERS chunkserver(s) connected"
fi

# --- the mount, on this host (a mount made inside `ip netns exec` would stay in its own
# mount namespace) ---
spawn_host() {
  local name=$1
  shift
  "$@" >"$MFSBENCH_DIR/logs/$name.log" 2>&1 &
  echo $! >"$MFSBENCH_DIR/pids/$name"
}
spawn_host mount mfsmount -f "$MNT" -H "$NS_IP" -P 9421
wait_for "$MFSBENCH_DIR/logs/mount.log" 30 is_mounted "$MNT"
say "mounted at $MNT"

# --- goal, then one probe file written with it, to know the chunkservers take writes ---
if ((MFSBENCH_CHUNKSERVERS >= 2)); then
  mfssetgoal -r 2 "$MNT" >/dev/null
  goal=2
else
  goal=1
fi
probe_ok() {
  head -c 65536 /dev/zero >"$MNT/.probe"
  mfscheckfile "$MNT/.probe" | grep -q "with $goal cop"
}
wait_for "$MFSBENCH_DIR/logs/master.log" 60 probe_ok
rm -f "$MNT/.probe"
say "ready: goal $goal, probe file written with $goal copies"
trap - ERR
echo "$MNT"
