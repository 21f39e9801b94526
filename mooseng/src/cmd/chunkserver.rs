//! `mooseng chunkserver`: runs a chunkserver. Settings come from flags, `MOOSENG_*`
//! environment variables or the TOML file given with `--config` (in that order).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use chunkserver::CsConfig;
use clap::Args;
use serde::Deserialize;

use crate::cmd::mds::shutdown_signal;

/// Arguments of `mooseng chunkserver`.
#[derive(Debug, Args, Default)]
pub struct ChunkserverArgs {
    /// TOML file with any of the settings below (kebab-case keys).
    #[arg(long, env = "MOOSENG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Chunkserver id, at least 1; its certificate is `tls/cs-<id>.pem`.
    #[arg(long, env = "MOOSENG_CS_ID")]
    pub id: Option<u64>,
    /// The cluster directory written by `mooseng admin init`.
    #[arg(long, env = "MOOSENG_CLUSTER_DIR")]
    pub cluster_dir: Option<PathBuf>,
    /// A data directory, typically one per disk (repeat, or separate with commas). Each must
    /// exist.
    #[arg(long = "data-dir", env = "MOOSENG_CS_DATA_DIRS", value_delimiter = ',')]
    pub data_dirs: Vec<PathBuf>,
    /// Data port, announced to clients (default 127.0.0.1:9430).
    #[arg(long, env = "MOOSENG_CS_DATA_ADDR")]
    pub data_addr: Option<SocketAddr>,
    /// HTTP port: /health, /status, /metrics (default 127.0.0.1:9431).
    #[arg(long, env = "MOOSENG_CS_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Replications running at once (default 2).
    #[arg(long, env = "MOOSENG_CS_MAX_REPLICATIONS")]
    pub max_replications: Option<usize>,
}

/// The same settings in a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileArgs {
    id: Option<u64>,
    cluster_dir: Option<PathBuf>,
    data_dirs: Option<Vec<PathBuf>>,
    data_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    max_replications: Option<usize>,
}

impl ChunkserverArgs {
    /// Merges flags, environment and file into a checked configuration.
    pub fn config(self) -> anyhow::Result<CsConfig> {
        let file: FileArgs = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parse {}", p.display()))?
            }
            None => FileArgs::default(),
        };
        let id = self.id.or(file.id).context("--id is required")?;
        let cluster_dir = self
            .cluster_dir
            .or(file.cluster_dir)
            .unwrap_or_else(|| "mooseng-cluster".into());
        let data_dirs = if self.data_dirs.is_empty() {
            file.data_dirs.unwrap_or_default()
        } else {
            self.data_dirs
        };
        let cluster = ::mds::cluster::ClusterFile::load(&cluster_dir.join("cluster.toml"))?;
        let mds = cluster
            .nodes
            .iter()
            .map(|n| {
                n.client_addr
                    .parse()
                    .with_context(|| format!("metadata server {} address {:?}", n.id, n.client_addr))
            })
            .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
        let mut c = CsConfig::new(id, data_dirs, cluster_dir.join("tls"), mds);
        if let Some(a) = self.data_addr.or(file.data_addr) {
            c.data_addr = a;
        }
        if let Some(a) = self.http_addr.or(file.http_addr) {
            c.http_addr = a;
        }
        if let Some(n) = self.max_replications.or(file.max_replications) {
            c.max_replications = n;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Runs the chunkserver until SIGINT or SIGTERM.
pub async fn run(args: ChunkserverArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    chunkserver::run(config, shutdown_signal()).await?;
    Ok(())
}
