//! The client envelope around a file-system operation.

use serde::{Deserialize, Serialize};

use crate::error::RpcError;
use crate::fs::{Cred, FsOp, FsReply};

/// A point in a shard's applied history: the raft index a reply reflects. A client keeps the
/// largest token it has seen per shard and sends it with session reads, which gives
/// read-your-writes and monotonic reads on any replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct SessionToken {
    /// Applied raft index.
    pub index: u64,
}

/// How a read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadMode {
    /// Through the leader's read index: linearizable.
    Linearizable,
    /// By any replica that has applied at least this token.
    Session(SessionToken),
}

/// A file-system request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The shard the client routed the request to.
    pub shard: u32,
    /// The client's id, random per mount session.
    pub client: u64,
    /// Idempotency key: per-client sequence number of a mutation (0 for reads). A retry
    /// reuses it and gets the first answer.
    pub seq: u64,
    /// Every mutation of this client with a lower sequence number has been answered and will
    /// not be retried; the server may forget those answers.
    pub acked_below: u64,
    /// Who is asking.
    pub cred: Cred,
    /// How reads are served (ignored for mutations).
    pub read: ReadMode,
    /// The operation.
    pub op: FsOp,
}

/// The answer to a [`ClientRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResponse {
    /// The reply or the error.
    pub result: Result<FsReply, RpcError>,
    /// The point of the shard's history the reply reflects.
    pub token: SessionToken,
}
