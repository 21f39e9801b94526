//! Traffic between metadata servers, on the raft port. One long-lived stream per peer node
//! carries raft messages of every shard in batches; snapshots travel on a stream of their own.

use serde::{Deserialize, Serialize};

/// A frame on the raft port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerFrame {
    /// Raft messages from node `from`, for any number of shards: `(shard, protobuf-encoded
    /// raft Message)`.
    Raft { from: u64, msgs: Vec<(u32, Vec<u8>)> },
    /// Opens a snapshot stream of `shard` from node `from`; `msg` is the raft `MsgSnapshot`
    /// (protobuf) to step once every record has arrived.
    SnapshotBegin { from: u64, shard: u32, msg: Vec<u8> },
    /// A batch of records of the snapshot: `(table, key, value)`.
    SnapshotRecords { records: Vec<(u8, Vec<u8>, Vec<u8>)> },
    /// Every record has been sent.
    SnapshotEnd,
}
