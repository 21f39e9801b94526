//! `mooseng mount MOUNTPOINT`: mounts the cluster's file system with FUSE until SIGINT,
//! SIGTERM or an unmount.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use fuse_client::MountConfig;

use crate::cmd::mds::shutdown_signal;

/// Arguments of `mooseng mount`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// Where to mount (an existing directory).
    pub mountpoint: PathBuf,
    /// Metadata servers to start from, `ADDR[,ADDR…]` (default: every server of the cluster
    /// file).
    #[arg(long, env = "MOOSENG_MASTER", value_delimiter = ',')]
    pub master: Vec<SocketAddr>,
    /// The cluster directory written by `mooseng admin init` (for the certificates, and the
    /// servers when --master is not given).
    #[arg(long, env = "MOOSENG_CLUSTER_DIR", default_value = "mooseng-cluster")]
    pub cluster_dir: PathBuf,
    /// The client certificate to use, `tls/<identity>.pem`.
    #[arg(long, env = "MOOSENG_IDENTITY", default_value = "client-admin")]
    pub identity: String,
    /// Mount options, comma-separated (repeatable): strict (default), allow_other,
    /// default_permissions, ro, rw, noatime, relatime, attr_ttl=SECONDS, entry_ttl=SECONDS.
    #[arg(short = 'o', env = "MOOSENG_MOUNT_OPTIONS")]
    pub options: Vec<String>,
    /// FUSE worker threads.
    #[arg(long, env = "MOOSENG_MOUNT_THREADS", default_value_t = 4)]
    pub threads: usize,
}

impl MountArgs {
    /// The checked mount configuration.
    pub fn config(self) -> anyhow::Result<MountConfig> {
        let masters = if self.master.is_empty() {
            let path = self.cluster_dir.join("cluster.toml");
            let cluster = ::mds::cluster::ClusterFile::load(&path)
                .with_context(|| format!("read {} (or pass --master)", path.display()))?;
            cluster
                .nodes
                .iter()
                .map(|n| {
                    n.client_addr
                        .parse()
                        .with_context(|| format!("server {} address", n.id))
                })
                .collect::<anyhow::Result<Vec<SocketAddr>>>()?
        } else {
            self.master
        };
        let mut c = MountConfig::new(self.mountpoint, masters, self.cluster_dir.join("tls"));
        c.identity = self.identity;
        c.threads = self.threads;
        c.options = MountConfig::parse_options(&self.options.join(","))?;
        c.validate()?;
        Ok(c)
    }
}

/// Mounts and serves until a signal or an unmount.
pub async fn run(args: MountArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    fuse_client::run(config, shutdown_signal()).await?;
    Ok(())
}
