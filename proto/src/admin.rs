//! Cluster administration: status, membership changes, leader transfer.

use serde::{Deserialize, Serialize};

/// A metadata server and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id (also its raft id in every group it joins).
    pub id: u64,
    /// Client RPC address (QUIC).
    pub client_addr: String,
    /// Raft/peer address (QUIC).
    pub raft_addr: String,
    /// HTTP address (health, status, metrics).
    pub http_addr: String,
}

/// An administrative request, sent on the client port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// This node's view of every shard it hosts.
    Status,
    /// Add `node` as a learner of `shard` (answered by the shard's leader).
    AddLearner { shard: u32, node: NodeInfo },
    /// Promote learner `node` of `shard` to voter once it has caught up.
    Promote { shard: u32, node: u64 },
    /// Remove `node` from `shard`.
    RemoveNode { shard: u32, node: u64 },
    /// Move leadership of `shard` to `to`.
    TransferLeader { shard: u32, to: u64 },
    /// A digest of `shard`'s state records on this node, with the index it reflects.
    Digest { shard: u32 },
}

/// The raft role of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Leads the group.
    Leader,
    /// Follows a leader.
    Follower,
    /// Campaigning.
    Candidate,
    /// Checking whether it could win before campaigning.
    PreCandidate,
    /// Receives the log but does not vote.
    Learner,
}

/// One replica's view of one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStatus {
    /// The shard.
    pub shard: u32,
    /// This replica's role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// The leader this replica knows of (0 if none).
    pub leader: u64,
    /// Highest committed index.
    pub commit: u64,
    /// Highest applied index.
    pub applied: u64,
    /// Voting members.
    pub voters: Vec<u64>,
    /// Non-voting members.
    pub learners: Vec<u64>,
    /// For a leader: each member's matched log index.
    pub matched: Vec<(u64, u64)>,
}

/// One node's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub node: NodeInfo,
    /// Every shard it hosts.
    pub shards: Vec<ShardStatus>,
    /// Bytes of the LMDB map in use.
    pub lmdb_used: u64,
    /// Size of the LMDB map.
    pub lmdb_map: u64,
}

/// The answer to an [`AdminRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminReply {
    /// Status of the node asked.
    Status(NodeStatus),
    /// The change was committed.
    Done,
    /// A shard's state digest on the node asked.
    Digest {
        /// Applied index the digest reflects.
        applied: u64,
        /// Blake3 over every state record, hex.
        digest: String,
        /// Number of records hashed.
        records: u64,
    },
}
