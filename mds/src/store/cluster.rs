//! Node-wide records: the shard table, the metadata servers this node knows, and the
//! registered chunkservers.

use crdt::codec::{self, Versioned};
use heed::{RoTxn, RwTxn};
use proto::admin::NodeInfo;
use serde::{Deserialize, Serialize};
use shardmap::ShardTable;

use crate::error::StoreError;
use crate::store::Store;

const TABLE: &[u8] = b"table";
const NODE: &[u8] = b"node/";
const CHUNKSERVER: &[u8] = b"cs/";

/// A metadata server as stored.
#[derive(Serialize, Deserialize)]
struct StoredNode(NodeInfo);

impl Versioned for StoredNode {
    const KIND: u8 = b'n';
    const VERSION: u8 = 1;
}

/// A registered chunkserver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkserverInfo {
    /// Chunkserver id.
    pub id: u64,
    /// Data address.
    pub addr: String,
    /// HTTP address.
    pub http: String,
    /// Total bytes.
    pub capacity: u64,
    /// Used bytes.
    pub used: u64,
}

impl Versioned for ChunkserverInfo {
    const KIND: u8 = b'k';
    const VERSION: u8 = 1;
}

fn key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn corrupt(what: &'static str) -> impl Fn(codec::DecodeError) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

impl Store {
    /// The shard table, if bootstrapped.
    pub fn shard_table(&self, r: &RoTxn) -> Result<Option<ShardTable>, StoreError> {
        let v = self.cluster.get(r, TABLE)?;
        v.map(|b| codec::decode(b).map_err(corrupt("shard table")))
            .transpose()
    }

    /// Stores the shard table.
    pub fn set_shard_table(&self, w: &mut RwTxn, table: &ShardTable) -> Result<(), StoreError> {
        Ok(self.cluster.put(w, TABLE, &codec::encode(table))?)
    }

    /// Every known metadata server.
    pub fn nodes(&self, r: &RoTxn) -> Result<Vec<NodeInfo>, StoreError> {
        let mut out = Vec::new();
        for kv in self.cluster.prefix_iter(r, NODE)? {
            out.push(codec::decode::<StoredNode>(kv?.1).map_err(corrupt("node"))?.0);
        }
        Ok(out)
    }

    /// Records a metadata server's addresses.
    pub fn put_node(&self, w: &mut RwTxn, node: &NodeInfo) -> Result<(), StoreError> {
        Ok(self
            .cluster
            .put(w, &key(NODE, node.id), &codec::encode(&StoredNode(node.clone())))?)
    }

    /// A registered chunkserver.
    pub fn chunkserver(&self, r: &RoTxn, id: u64) -> Result<Option<ChunkserverInfo>, StoreError> {
        let v = self.cluster.get(r, &key(CHUNKSERVER, id))?;
        v.map(|b| codec::decode(b).map_err(corrupt("chunkserver")))
            .transpose()
    }

    /// Every registered chunkserver.
    pub fn chunkservers(&self, r: &RoTxn) -> Result<Vec<ChunkserverInfo>, StoreError> {
        let mut out = Vec::new();
        for kv in self.cluster.prefix_iter(r, CHUNKSERVER)? {
            out.push(codec::decode(kv?.1).map_err(corrupt("chunkserver"))?);
        }
        Ok(out)
    }

    /// Records a chunkserver.
    pub fn put_chunkserver(&self, w: &mut RwTxn, cs: &ChunkserverInfo) -> Result<(), StoreError> {
        Ok(self
            .cluster
            .put(w, &key(CHUNKSERVER, cs.id), &codec::encode(cs))?)
    }
}
