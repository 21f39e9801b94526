//! The cluster file written by `mooseng admin init`: the cluster's name, its initial metadata
//! servers and how the namespace is sharded. Every metadata server, and every client that
//! does not know an address yet, starts from it.

use std::path::Path;

use proto::admin::NodeInfo;
use serde::{Deserialize, Serialize};
use shardmap::ShardTable;

/// The contents of `cluster.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterFile {
    /// Format version of this file.
    pub version: u32,
    /// Cluster name (also the CA's name).
    pub name: String,
    /// Number of shards (raft groups) the namespace is cut into.
    pub shards: u32,
    /// Replicas per shard (3 to 5 for production; 1 for a single-node test).
    pub replicas: usize,
    /// The initial metadata servers.
    pub nodes: Vec<ClusterNode>,
}

/// A metadata server in the cluster file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterNode {
    /// Node id (1 or more).
    pub id: u64,
    /// Client RPC address.
    pub client_addr: String,
    /// Raft address.
    pub raft_addr: String,
    /// HTTP address.
    pub http_addr: String,
}

/// A cluster file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    /// The file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The contents are inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// The format version this build writes and reads.
pub const CLUSTER_FILE_VERSION: u32 = 1;

impl ClusterFile {
    /// Reads and validates a cluster file.
    pub fn load(path: &Path) -> Result<ClusterFile, ClusterFileError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ClusterFileError::Io {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let file: ClusterFile = toml::from_str(&text).map_err(|e| ClusterFileError::Parse {
            path: p,
            reason: e.to_string(),
        })?;
        file.validate()?;
        Ok(file)
    }

    /// Writes the file, refusing to overwrite an existing one.
    pub fn save_new(&self, path: &Path) -> Result<(), ClusterFileError> {
        let p = path.display().to_string();
        let text = toml::to_string(self).map_err(|e| ClusterFileError::Invalid(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| ClusterFileError::Io {
                path: p.clone(),
                reason: e.to_string(),
            })?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| ClusterFileError::Io {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Checks the file is usable.
    pub fn validate(&self) -> Result<(), ClusterFileError> {
        if self.version != CLUSTER_FILE_VERSION {
            return Err(ClusterFileError::Invalid(format!(
                "cluster file version {} is not supported (this build reads {CLUSTER_FILE_VERSION})",
                self.version
            )));
        }
        let mut ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        if ids.contains(&0) || ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ClusterFileError::Invalid(
                "node ids must be unique and at least 1".into(),
            ));
        }
        for n in &self.nodes {
            for (what, a) in [
                ("client", &n.client_addr),
                ("raft", &n.raft_addr),
                ("http", &n.http_addr),
            ] {
                a.parse::<std::net::SocketAddr>().map_err(|e| {
                    ClusterFileError::Invalid(format!("node {}: {what} address {a:?}: {e}", n.id))
                })?;
            }
        }
        self.table().map(drop)
    }

    /// The initial shard table.
    pub fn table(&self) -> Result<ShardTable, ClusterFileError> {
        let ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        ShardTable::uniform(self.shards, &ids, self.replicas)
            .map_err(|e| ClusterFileError::Invalid(e.to_string()))
    }

    /// The nodes as wire records.
    pub fn node_infos(&self) -> Vec<NodeInfo> {
        self.nodes
            .iter()
            .map(|n| NodeInfo {
                id: n.id,
                client_addr: n.client_addr.clone(),
                raft_addr: n.raft_addr.clone(),
                http_addr: n.http_addr.clone(),
            })
            .collect()
    }
}
