//! The subcommands.

pub mod cert;
pub mod chunkserver;
pub mod demo;
pub mod goal;
pub mod init;
pub mod mds;
pub mod membership;
pub mod mount;
pub mod nspath;
pub mod quota;
pub mod status;

use std::net::SocketAddr;
use std::path::PathBuf;

use ::mds::cluster::ClusterFile;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use client::MdsClient;

/// `mooseng admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Bootstrap a new cluster: write the cluster file and create the CA and certificates.
    Init(init::InitArgs),
    /// Show every metadata server's shards: role, term, leader, commit and applied indexes.
    Status(ClusterArgs),
    /// Add, promote or remove a metadata server.
    #[command(subcommand)]
    Node(membership::NodeCommand),
    /// Move shard leadership.
    #[command(subcommand)]
    Leader(membership::LeaderCommand),
    /// Get or set replication goals (copies per chunk).
    #[command(subcommand)]
    Goal(goal::GoalCommand),
    /// Directory quotas: limits on the bytes and inodes of a tree, and its usage.
    #[command(subcommand)]
    Quota(quota::QuotaCommand),
    /// Issue certificates from the cluster CA.
    #[command(subcommand)]
    Cert(cert::CertCommand),
}

/// Where the cluster's files are and who the admin is.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The directory `mooseng admin init` wrote (cluster.toml and tls/).
    #[arg(long, env = "MOOSENG_CLUSTER_DIR", default_value = "mooseng-cluster")]
    pub cluster_dir: PathBuf,
    /// The client certificate to use, `tls/<identity>.pem`.
    #[arg(long, env = "MOOSENG_IDENTITY", default_value = "client-admin")]
    pub identity: String,
}

impl ClusterArgs {
    /// The cluster file.
    pub fn cluster(&self) -> anyhow::Result<ClusterFile> {
        let path = self.cluster_dir.join("cluster.toml");
        ClusterFile::load(&path).with_context(|| {
            format!(
                "read the cluster file (create one with `mooseng admin init --dir {}`)",
                self.cluster_dir.display()
            )
        })
    }

    /// A client session seeded with every metadata server of the cluster file.
    pub fn client(&self) -> anyhow::Result<(ClusterFile, MdsClient)> {
        let cluster = self.cluster()?;
        net::install_crypto_provider();
        let tls = net::TlsFiles::load(&self.cluster_dir.join("tls"), &self.identity)
            .with_context(|| format!("load the {} certificate", self.identity))?;
        let seeds: Vec<SocketAddr> = cluster
            .nodes
            .iter()
            .filter_map(|n| n.client_addr.parse().ok())
            .collect();
        let client = MdsClient::new(seeds, &tls).context("create the client endpoint")?;
        Ok((cluster, client))
    }
}

/// Runs an admin subcommand.
pub async fn admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Init(a) => init::run(a),
        AdminCommand::Status(a) => status::run(a).await,
        AdminCommand::Node(c) => membership::node(c).await,
        AdminCommand::Leader(c) => membership::leader(c).await,
        AdminCommand::Cert(c) => cert::run(c),
        AdminCommand::Goal(c) => goal::run(c).await,
        AdminCommand::Quota(c) => quota::run(c).await,
    }
}
