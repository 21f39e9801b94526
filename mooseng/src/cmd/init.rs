//! `mooseng admin init`: bootstraps a cluster directory.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use mds::cluster::{CLUSTER_FILE_VERSION, ClusterFile, ClusterNode};

/// Arguments of `admin init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create (cluster.toml and tls/ go inside). Must not hold a cluster yet.
    #[arg(long, env = "MOOSENG_CLUSTER_DIR", default_value = "mooseng-cluster")]
    pub dir: PathBuf,
    /// Cluster name.
    #[arg(long, default_value = "mooseng")]
    pub name: String,
    /// Number of shards (raft groups) the namespace is cut into.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Replicas per shard.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// A metadata server as `ID=CLIENT_ADDR,RAFT_ADDR,HTTP_ADDR` (repeat for each).
    #[arg(long = "node", value_name = "ID=CLIENT,RAFT,HTTP")]
    pub nodes: Vec<String>,
    /// Instead of --node: this many servers on one host, ports counted up from --base-port in
    /// steps of 10 (client, raft, HTTP = base, base+1, base+2).
    #[arg(long, conflicts_with = "nodes")]
    pub local: Option<u64>,
    /// Host of the --local servers.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// First port of the --local servers.
    #[arg(long, default_value_t = 9421)]
    pub base_port: u16,
    /// Client certificates to create besides `admin` (repeat).
    #[arg(long = "client")]
    pub clients: Vec<String>,
    /// Chunkserver certificates to create, `cs-1` … `cs-N` (more later with
    /// `mooseng admin cert chunkserver`).
    #[arg(long, default_value_t = 3)]
    pub chunkservers: u64,
}

fn parse_node(spec: &str) -> anyhow::Result<ClusterNode> {
    let (id, addrs) = spec.split_once('=').context("expected ID=CLIENT,RAFT,HTTP")?;
    let addrs: Vec<&str> = addrs.split(',').collect();
    let [client, raft, http] = addrs.as_slice() else {
        bail!("{spec:?}: expected three addresses CLIENT,RAFT,HTTP")
    };
    Ok(ClusterNode {
        id: id.parse().with_context(|| format!("{spec:?}: node id"))?,
        client_addr: client.to_string(),
        raft_addr: raft.to_string(),
        http_addr: http.to_string(),
    })
}

/// Writes the cluster directory and says how to start it.
pub fn run(a: InitArgs) -> anyhow::Result<()> {
    let dir = a.dir.clone();
    let file = create(a)?;
    println!(
        "cluster {:?}: {} metadata servers, {} shard(s), {} replicas each",
        file.name,
        file.nodes.len(),
        file.shards,
        file.replicas
    );
    println!("  cluster file  {}", dir.join("cluster.toml").display());
    println!(
        "  certificates  {}/ (ca.pem, node-<id>, cs-<id>, client-admin)",
        dir.join("tls").display()
    );
    println!("start each server with:");
    for n in &file.nodes {
        println!(
            "  mooseng mds --cluster-dir {} --node-id {} --data-dir <dir>/mds{}",
            dir.display(),
            n.id,
            n.id
        );
    }
    println!("then: mooseng admin status --cluster-dir {}", dir.display());
    Ok(())
}

/// Writes the cluster directory: the cluster file, the CA and every certificate.
pub fn create(a: InitArgs) -> anyhow::Result<ClusterFile> {
    let nodes: Vec<ClusterNode> = if a.nodes.is_empty() {
        let n = a.local.unwrap_or(3);
        (1..=n)
            .map(|id| {
                let base = u64::from(a.base_port) + (id - 1) * 10;
                let port = |k: u64| u16::try_from(base + k).context("port beyond 65535");
                Ok(ClusterNode {
                    id,
                    client_addr: format!("{}:{}", a.host, port(0)?),
                    raft_addr: format!("{}:{}", a.host, port(1)?),
                    http_addr: format!("{}:{}", a.host, port(2)?),
                })
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        a.nodes
            .iter()
            .map(|s| parse_node(s))
            .collect::<anyhow::Result<_>>()?
    };
    if a.replicas > nodes.len() {
        eprintln!(
            "note: {} replicas per shard requested but only {} servers; using {}",
            a.replicas,
            nodes.len(),
            nodes.len()
        );
    }
    let file = ClusterFile {
        version: CLUSTER_FILE_VERSION,
        name: a.name.clone(),
        shards: a.shards,
        replicas: a.replicas.min(nodes.len()),
        nodes,
    };
    file.validate()?;
    let cluster_path = a.dir.join("cluster.toml");
    if cluster_path.exists() {
        bail!(
            "{} already exists: this directory holds a cluster already",
            cluster_path.display()
        );
    }
    let tls = a.dir.join("tls");
    std::fs::create_dir_all(&tls).with_context(|| format!("create {}", tls.display()))?;
    net::install_crypto_provider();
    let ca = net::Ca::generate(&a.name)?;
    ca.save(&tls)?;
    for n in &file.nodes {
        ca.issue_node(n.id)?.save(&tls, &format!("node-{}", n.id))?;
    }
    for name in std::iter::once("admin").chain(a.clients.iter().map(String::as_str)) {
        ca.issue_client(name)?.save(&tls, &format!("client-{name}"))?;
    }
    for id in 1..=a.chunkservers {
        ca.issue_chunkserver(id)?.save(&tls, &format!("cs-{id}"))?;
    }
    file.save_new(&cluster_path)?;
    Ok(file)
}
