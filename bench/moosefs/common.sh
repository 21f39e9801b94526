# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this
# Shared settings of the MooseFS baseline scripts (sourced, not run).
#
# Everything lives under $MFSBENCH_DIR (default /tmp/mooseng-bench-moosefs):
#   master/            the master's DATA_PATH (metadata.mfs, changelogs, lock file)
#   cs<i>/data, cs<i>/hdd   chunkserver i's DATA_PATH and its one "disk"
#   etc/               generated configuration files
#   logs/              each daemon's stdout and stderr
#   pids/              the pid of each process these scripts started
#   mnt/               the mfsmount mountpoint
# The MooseFS daemons run in the network namespace $MFSBENCH_NETNS, joined to this host's
# namespace by a veth pair: 10.77.0.1/24 on the host side, 10.77.0.2 inside. (A MooseFS
# chunkserver will not connect to a master at 127.0.0.1: "localhost (127.0.0.1) can't be used
# for connecting with master (use ip address of network controller)".)

MFSBENCH_DIR=${MFSBENCH_DIR:-${TMPDIR:-/tmp}/mooseng-bench-moosefs}
MFSBENCH_NETNS=${MFSBENCH_NETNS:-mfsbench}
MFSBENCH_CHUNKSERVERS=${MFSBENCH_CHUNKSERVERS:-3}
HOST_IF=mfsb-host
NS_IF=mfsb-ns
HOST_IP=10.77.0.1
NS_IP=10.77.0.2
MNT=$MFSBENCH_DIR/mnt

say() { echo "${LOG_NAME:-moosefs}: $*" >&2; }
die() { echo "${LOG_NAME:-moosefs}: error: $*" >&2; exit 1; }

# Whether $1 is a mountpoint in this mount namespace.
is_mounted() { awk -v p="$1" '$2 == p { found = 1 } END { exit !found }' /proc/self/mounts; }

# Whether the process whose pid is in pid file $1 is alive.
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
