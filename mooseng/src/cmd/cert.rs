//! `mooseng admin cert node|chunkserver|client`: certificates for servers and clients that join later.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

/// Which certificate to issue.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// A metadata server certificate, `tls/node-<id>.pem`.
    Node {
        /// The cluster directory.
        #[arg(long, env = "MOOSENG_CLUSTER_DIR", default_value = "mooseng-cluster")]
        cluster_dir: PathBuf,
        /// Node id.
        #[arg(long)]
        id: u64,
    },
    /// A chunkserver certificate, `tls/cs-<id>.pem`.
    Chunkserver {
        /// The cluster directory.
        #[arg(long, env = "MOOSENG_CLUSTER_DIR", default_value = "mooseng-cluster")]
        cluster_dir: PathBuf,
        /// Chunkserver id.
        #[arg(long)]
        id: u64,
    },
    /// A client certificate, `tls/client-<name>.pem`.
    Client {
        /// The cluster directory.
        #[arg(long, env = "MOOSENG_CLUSTER_DIR", default_value = "mooseng-cluster")]
        cluster_dir: PathBuf,
        /// Client name (one DNS label).
        #[arg(long)]
        name: String,
    },
}

/// Issues the certificate.
pub fn run(cmd: CertCommand) -> anyhow::Result<()> {
    let (dir, stem, identity) = match cmd {
        CertCommand::Node { cluster_dir, id } => {
            let dir = cluster_dir.join("tls");
            let ca = net::Ca::load(&dir).context("load the cluster CA")?;
            (dir, format!("node-{id}"), ca.issue_node(id)?)
        }
        CertCommand::Chunkserver { cluster_dir, id } => {
            let dir = cluster_dir.join("tls");
            let ca = net::Ca::load(&dir).context("load the cluster CA")?;
            (dir, format!("cs-{id}"), ca.issue_chunkserver(id)?)
        }
        CertCommand::Client { cluster_dir, name } => {
            let dir = cluster_dir.join("tls");
            let ca = net::Ca::load(&dir).context("load the cluster CA")?;
            (dir, format!("client-{name}"), ca.issue_client(&name)?)
        }
    };
    identity.save(&dir, &stem)?;
    println!("wrote {}/{stem}.pem and {stem}.key", dir.display());
    Ok(())
}
