//! Chunkserver ↔ metadata tier messages.

use serde::{Deserialize, Serialize};

/// A chunk copy a chunkserver holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldChunk {
    /// Chunk id.
    pub chunk: u64,
    /// Version of the copy.
    pub version: u32,
}

/// What a chunkserver tells the metadata tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CsRequest {
    /// A chunkserver starts (or restarts) and announces itself (through shard 0).
    Register {
        /// Chunkserver id, stable across restarts.
        id: u64,
        /// Data address clients connect to.
        addr: String,
        /// HTTP address.
        http: String,
        /// Total bytes of its data dirs.
        capacity: u64,
        /// Bytes used.
        used: u64,
    },
    /// Periodic liveness and capacity, sent to every metadata server (liveness is not
    /// replicated); the answer carries the orders that server queued for this chunkserver.
    Heartbeat {
        /// Chunkserver id.
        id: u64,
        /// Data address clients connect to.
        addr: String,
        /// Total bytes.
        capacity: u64,
        /// Bytes used.
        used: u64,
        /// Number of chunks held.
        chunks: u64,
    },
    /// The chunks of one shard a server holds: all of them (a full report, possibly in
    /// parts) or the changes since the last report. Sent to the shard's leader.
    ChunkReport {
        /// Chunkserver id.
        id: u64,
        /// The shard every chunk of the report belongs to.
        shard: u32,
        /// Chunks held.
        held: Vec<HeldChunk>,
        /// Chunks lost (corrupted or gone with a failed data dir).
        lost: Vec<u64>,
        /// Set for the parts of a full report.
        full: Option<FullReport>,
    },
}

/// A part of a full chunk report. Every part records its chunks under the report's
/// `session`; the last part also drops the server's recorded copies (in the shard) that no
/// part of the session listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullReport {
    /// Unique per full report (the chunkserver picks a new one at every registration).
    pub session: u64,
    /// Whether this is the report's last part.
    pub last: bool,
}

/// Work the metadata tier orders a chunkserver to do (carried by heartbeat answers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Order {
    /// Copy `chunk` at `version` from `from` (the chunk is below its replication goal).
    Replicate {
        /// The chunk.
        chunk: u64,
        /// Its current version.
        version: u32,
        /// A server holding an up-to-date copy.
        from: crate::data::Server,
    },
    /// Delete this server's copy of `chunk` (stale, above the goal, or its file is gone).
    Delete {
        /// The chunk.
        chunk: u64,
        /// Only this version, or any.
        version: Option<u32>,
    },
}

/// What the metadata tier answers a chunkserver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CsReply {
    /// Accepted.
    Ok,
    /// Accepted; do this work.
    Orders(Vec<Order>),
}
