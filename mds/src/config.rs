//! The metadata server's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::keeper::KeeperSettings;
use crate::raft::RaftSettings;

/// Everything `mooseng mds` needs to run. Built by the binary from flags, `MOOSENG_*`
/// environment variables and an optional TOML file; checked by [`MdsConfig::validate`].
#[derive(Debug, Clone)]
pub struct MdsConfig {
    /// This node's id (its raft id in every shard).
    pub node_id: u64,
    /// Where the LMDB store, the write-ahead log and spooled snapshots live.
    pub data_dir: PathBuf,
    /// The cluster file written by `mooseng admin init`.
    pub cluster_file: PathBuf,
    /// The directory holding `ca.pem` and this node's `node-<id>.pem`/`.key`.
    pub tls_dir: PathBuf,
    /// Client RPC listen address.
    pub client_addr: SocketAddr,
    /// Raft listen address.
    pub raft_addr: SocketAddr,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// Size of the LMDB map in bytes: the most metadata this node can hold.
    pub lmdb_map_size: u64,
    /// Free bytes of the map below which mutations fail with ENOSPC.
    pub lmdb_reserve: u64,
    /// Size of one write-ahead log segment in bytes.
    pub wal_segment_size: u64,
    /// Raft tick length.
    pub tick: Duration,
    /// Election timeout in ticks (randomised up to twice this).
    pub election_ticks: usize,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: usize,
    /// How long a request may wait for raft before failing as retryable.
    pub request_timeout: Duration,
    /// Applied log entries kept for slow followers.
    pub log_keep: u64,
    /// How long applied entries may wait before LMDB commits them while the node is busy.
    pub lmdb_commit_interval: Duration,
    /// How long the node may be idle before LMDB commits what it applied.
    pub lmdb_idle_commit: Duration,
    /// Largest clock offset accepted in peers' stamps.
    pub max_clock_offset: Duration,
    /// Chunkserver liveness and repair timing.
    pub keeper: KeeperSettings,
    /// How long a client may stay silent before its open files and locks are released.
    pub session_timeout: Duration,
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl MdsConfig {
    /// Defaults for everything but identity and paths.
    pub fn new(node_id: u64, data_dir: PathBuf, cluster_file: PathBuf, tls_dir: PathBuf) -> Self {
        let any = |port| SocketAddr::from(([127, 0, 0, 1], port));
        MdsConfig {
            node_id,
            data_dir,
            cluster_file,
            tls_dir,
            client_addr: any(9421),
            raft_addr: any(9422),
            http_addr: any(9423),
            lmdb_map_size: 16 << 30,
            lmdb_reserve: 32 << 20,
            wal_segment_size: 64 << 20,
            tick: Duration::from_millis(50),
            election_ticks: 6,
            heartbeat_ticks: 2,
            request_timeout: Duration::from_secs(3),
            log_keep: 20_000,
            lmdb_commit_interval: Duration::from_millis(50),
            lmdb_idle_commit: Duration::from_millis(1),
            max_clock_offset: Duration::from_millis(500),
            keeper: KeeperSettings::default(),
            session_timeout: Duration::from_secs(30),
        }
    }

    /// Checks the invariants that span fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if self.node_id == 0 {
            return fail("node id must be at least 1".into());
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return fail(format!(
                "election ticks ({}) must exceed heartbeat ticks ({}), which must be at least 1",
                self.election_ticks, self.heartbeat_ticks
            ));
        }
        if self.tick < Duration::from_millis(1) {
            return fail("raft tick must be at least 1 ms".into());
        }
        if self.request_timeout < self.tick * self.election_ticks as u32 {
            return fail(format!(
                "request timeout {:?} is shorter than one election timeout ({:?}); requests would fail during every failover",
                self.request_timeout,
                self.tick * self.election_ticks as u32
            ));
        }
        if self.lmdb_reserve >= self.lmdb_map_size {
            return fail(format!(
                "LMDB reserve {} must be below the map size {}",
                self.lmdb_reserve, self.lmdb_map_size
            ));
        }
        let k = &self.keeper;
        if k.dead_after.is_zero() || k.scan_interval.is_zero() || k.order_timeout < k.scan_interval {
            return fail(format!(
                "chunkserver dead-after ({:?}) and scan interval ({:?}) must be positive, and the order timeout ({:?}) at least one scan interval",
                k.dead_after, k.scan_interval, k.order_timeout
            ));
        }
        if self.session_timeout < Duration::from_secs(1) {
            return fail(format!(
                "session timeout {:?} is below 1 s: clients could not keep their sessions alive",
                self.session_timeout
            ));
        }
        if self.log_keep < 2 {
            return fail("log-keep must be at least 2".into());
        }
        if self.wal_segment_size < 64 << 10 {
            return fail(format!(
                "WAL segment size {} is below 64 KiB",
                self.wal_segment_size
            ));
        }
        let addrs = [self.client_addr, self.raft_addr, self.http_addr];
        if addrs[0] == addrs[1] || addrs[0] == addrs[2] || addrs[1] == addrs[2] {
            return fail("client, raft and HTTP addresses must differ".into());
        }
        Ok(())
    }

    /// The raft settings this configuration implies.
    pub fn raft(&self) -> RaftSettings {
        RaftSettings {
            tick: self.tick,
            election_ticks: self.election_ticks,
            heartbeat_ticks: self.heartbeat_ticks,
            request_timeout: self.request_timeout,
            log_keep: self.log_keep,
            commit_interval: self.lmdb_commit_interval,
            idle_commit: self.lmdb_idle_commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> MdsConfig {
        MdsConfig::new(1, "d".into(), "c".into(), "t".into())
    }

    #[test]
    fn defaults_are_valid() {
        base().validate().unwrap();
    }

    #[test]
    fn refuses_inconsistent_settings() {
        let mut c = base();
        c.election_ticks = 2;
        assert!(c.validate().unwrap_err().0.contains("election ticks"));
        let mut c = base();
        c.request_timeout = Duration::from_millis(10);
        assert!(c.validate().unwrap_err().0.contains("request timeout"));
        let mut c = base();
        c.raft_addr = c.client_addr;
        assert!(c.validate().is_err());
        let mut c = base();
        c.lmdb_reserve = c.lmdb_map_size;
        assert!(c.validate().is_err());
        let mut c = base();
        c.wal_segment_size = 4096;
        assert!(c.validate().unwrap_err().0.contains("WAL segment size"));
    }
}
