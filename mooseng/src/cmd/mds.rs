//! `mooseng mds`: runs a metadata server. Every setting comes from a flag, a `MOOSENG_*`
//! environment variable or the TOML file given with `--config` (in that order of precedence).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ::mds::MdsConfig;
use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;

/// Arguments of `mooseng mds`.
#[derive(Debug, Args, Default)]
pub struct MdsArgs {
    /// TOML file with any of the settings below (kebab-case keys).
    #[arg(long, env = "MOOSENG_CONFIG")]
    pub config: Option<PathBuf>,
    /// This server's node id (as in the cluster file).
    #[arg(long, env = "MOOSENG_NODE_ID")]
    pub node_id: Option<u64>,
    /// The cluster directory written by `mooseng admin init`.
    #[arg(long, env = "MOOSENG_CLUSTER_DIR")]
    pub cluster_dir: Option<PathBuf>,
    /// Where this server keeps its data.
    #[arg(long, env = "MOOSENG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Client RPC listen address (default: this node's entry in the cluster file).
    #[arg(long, env = "MOOSENG_CLIENT_ADDR")]
    pub client_addr: Option<SocketAddr>,
    /// Raft listen address.
    #[arg(long, env = "MOOSENG_RAFT_ADDR")]
    pub raft_addr: Option<SocketAddr>,
    /// HTTP listen address (health, status, metrics).
    #[arg(long, env = "MOOSENG_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// LMDB map size in bytes: the most metadata this server holds (default 16 GiB).
    #[arg(long, env = "MOOSENG_LMDB_MAP_SIZE")]
    pub lmdb_map_size: Option<u64>,
    /// Free map bytes below which writes fail with ENOSPC (default 32 MiB).
    #[arg(long, env = "MOOSENG_LMDB_RESERVE")]
    pub lmdb_reserve: Option<u64>,
    /// Size of one write-ahead log segment in bytes (default 64 MiB).
    #[arg(long, env = "MOOSENG_WAL_SEGMENT_SIZE")]
    pub wal_segment_size: Option<u64>,
    /// Raft tick in milliseconds (default 50).
    #[arg(long, env = "MOOSENG_TICK_MS")]
    pub tick_ms: Option<u64>,
    /// Election timeout in ticks, randomised up to twice this (default 6: 300–600 ms).
    #[arg(long, env = "MOOSENG_ELECTION_TICKS")]
    pub election_ticks: Option<usize>,
    /// Heartbeat interval in ticks (default 2).
    #[arg(long, env = "MOOSENG_HEARTBEAT_TICKS")]
    pub heartbeat_ticks: Option<usize>,
    /// Request timeout in milliseconds (default 3000).
    #[arg(long, env = "MOOSENG_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Milliseconds applied entries may wait before LMDB commits them while the server is busy
    /// (default 50; they are in the write-ahead log already).
    #[arg(long, env = "MOOSENG_LMDB_COMMIT_INTERVAL_MS")]
    pub lmdb_commit_interval_ms: Option<u64>,
    /// Milliseconds the server may be idle before LMDB commits what it applied (default 1).
    #[arg(long, env = "MOOSENG_LMDB_IDLE_COMMIT_MS")]
    pub lmdb_idle_commit_ms: Option<u64>,
    /// Applied log entries kept for slow followers (default 20000).
    #[arg(long, env = "MOOSENG_LOG_KEEP")]
    pub log_keep: Option<u64>,
    /// Milliseconds a client may stay silent before its open files and locks are released
    /// (default 30000).
    #[arg(long, env = "MOOSENG_SESSION_TIMEOUT_MS")]
    pub session_timeout_ms: Option<u64>,
    /// Milliseconds without a heartbeat after which a chunkserver counts as dead and its
    /// chunks are re-replicated (default 5000).
    #[arg(long, env = "MOOSENG_CHUNKSERVER_DEAD_AFTER_MS")]
    pub chunkserver_dead_after_ms: Option<u64>,
}

/// The same settings in a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileArgs {
    node_id: Option<u64>,
    cluster_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    client_addr: Option<SocketAddr>,
    raft_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    lmdb_map_size: Option<u64>,
    lmdb_reserve: Option<u64>,
    wal_segment_size: Option<u64>,
    tick_ms: Option<u64>,
    election_ticks: Option<usize>,
    heartbeat_ticks: Option<usize>,
    request_timeout_ms: Option<u64>,
    log_keep: Option<u64>,
    lmdb_commit_interval_ms: Option<u64>,
    lmdb_idle_commit_ms: Option<u64>,
    session_timeout_ms: Option<u64>,
    chunkserver_dead_after_ms: Option<u64>,
}

impl MdsArgs {
    /// Merges flags, environment and file into a checked configuration.
    pub fn config(self) -> anyhow::Result<MdsConfig> {
        let file: FileArgs = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parse {}", p.display()))?
            }
            None => FileArgs::default(),
        };
        let node_id = self.node_id.or(file.node_id).context("--node-id is required")?;
        let cluster_dir = self
            .cluster_dir
            .or(file.cluster_dir)
            .unwrap_or_else(|| "mooseng-cluster".into());
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .context("--data-dir is required")?;
        let cluster_file = cluster_dir.join("cluster.toml");
        let cluster = ::mds::cluster::ClusterFile::load(&cluster_file)?;
        let mut c = MdsConfig::new(node_id, data_dir, cluster_file, cluster_dir.join("tls"));
        if let Some(n) = cluster.nodes.iter().find(|n| n.id == node_id) {
            c.client_addr = n.client_addr.parse()?;
            c.raft_addr = n.raft_addr.parse()?;
            c.http_addr = n.http_addr.parse()?;
        }
        macro_rules! pick {
            ($field:ident) => {
                self.$field.or(file.$field)
            };
        }
        if let Some(a) = pick!(client_addr) {
            c.client_addr = a;
        }
        if let Some(a) = pick!(raft_addr) {
            c.raft_addr = a;
        }
        if let Some(a) = pick!(http_addr) {
            c.http_addr = a;
        }
        c.lmdb_map_size = pick!(lmdb_map_size).unwrap_or(c.lmdb_map_size);
        c.lmdb_reserve = pick!(lmdb_reserve).unwrap_or(c.lmdb_reserve);
        c.wal_segment_size = pick!(wal_segment_size).unwrap_or(c.wal_segment_size);
        c.tick = pick!(tick_ms).map(Duration::from_millis).unwrap_or(c.tick);
        c.election_ticks = pick!(election_ticks).unwrap_or(c.election_ticks);
        c.heartbeat_ticks = pick!(heartbeat_ticks).unwrap_or(c.heartbeat_ticks);
        c.request_timeout = pick!(request_timeout_ms)
            .map(Duration::from_millis)
            .unwrap_or(c.request_timeout);
        c.log_keep = pick!(log_keep).unwrap_or(c.log_keep);
        c.lmdb_commit_interval = pick!(lmdb_commit_interval_ms)
            .map(Duration::from_millis)
            .unwrap_or(c.lmdb_commit_interval);
        c.lmdb_idle_commit = pick!(lmdb_idle_commit_ms)
            .map(Duration::from_millis)
            .unwrap_or(c.lmdb_idle_commit);
        c.session_timeout = pick!(session_timeout_ms)
            .map(Duration::from_millis)
            .unwrap_or(c.session_timeout);
        c.keeper.dead_after = pick!(chunkserver_dead_after_ms)
            .map(Duration::from_millis)
            .unwrap_or(c.keeper.dead_after);
        c.validate()?;
        Ok(c)
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: MdsArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    ::mds::run(config, shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("install SIGTERM handler: {e}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
