//! The MooseNG wire protocol. Every message travels as a versioned, size-capped postcard frame
//! (see the `net` crate); new variants are only ever appended, so older peers still decode
//! what they know.
//!
//! | module | what it holds |
//! |---|---|
//! | [`error`] | [`Errno`] (POSIX failures) and [`RpcError`] (with routing hints: not leader, retry) |
//! | [`fs`] | file-system operations and their replies: [`FsOp`], [`FsReply`], [`Attr`], [`Cred`] |
//! | [`client`] | the client envelope: idempotency key, session token, read mode |
//! | [`admin`] | cluster administration: status, membership, leader transfer |
//! | [`peer`] | metadata-server to metadata-server traffic: raft batches, snapshot streams |
//! | [`chunk`] | chunkserver registration, heartbeats, chunk reports and the metadata tier's orders |
//! | [`data`] | the data path: chunk reads, chained writes, syncs, replication |

pub mod admin;
pub mod chunk;
pub mod client;
pub mod data;
pub mod error;
pub mod fs;
pub mod peer;

pub use client::{ClientRequest, ClientResponse, ReadMode, SessionToken};
pub use error::{Errno, RpcError};
pub use fs::{Attr, CHUNK_SIZE, Cred, FsOp, FsReply, XATTR_VALUE_MAX};

/// Largest client request or response frame, in bytes.
pub const CLIENT_FRAME_CAP: usize = 4 << 20;
/// Largest peer frame (a raft batch or a snapshot chunk), in bytes.
pub const PEER_FRAME_CAP: usize = 64 << 20;

use serde::{Deserialize, Serialize};

/// Any request on a metadata server's client port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A file-system operation.
    Fs(ClientRequest),
    /// The shard table and the metadata servers' addresses.
    Topology,
    /// Administration.
    Admin(admin::AdminRequest),
    /// A chunkserver's registration, heartbeat or report.
    Chunkserver(chunk::CsRequest),
    /// Wait for changes after `since` (a long poll, answered when changes exist or after a few
    /// seconds): a mount uses it to drop cached attributes and entries other clients changed.
    Watch {
        /// The last change sequence number seen (0: from now).
        since: u64,
    },
    /// The client is alive: it keeps its open files and locks. Sent to every metadata server
    /// well within the session timeout; answered with [`Response::KeptAlive`].
    KeepAlive {
        /// The client.
        client: u64,
    },
}

/// What changed on a metadata server, for cache invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// The sequence number to pass as `since` next time.
    pub next: u64,
    /// Changes were dropped (the caller fell too far behind): drop every cached entry.
    pub overflow: bool,
    /// Inodes whose attributes changed, with the client that changed them.
    pub inodes: Vec<(u64, u64)>,
    /// Directory entries (parent, name) that appeared, disappeared or changed target, with the
    /// client that changed them.
    pub entries: Vec<(u64, Vec<u8>, u64)>,
}

/// The cluster's layout as a client needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Bucket ranges → shards → initial replicas.
    pub table: shardmap::ShardTable,
    /// Every metadata server.
    pub nodes: Vec<admin::NodeInfo>,
    /// For each shard, the leader this node knows of (0 if none).
    pub leaders: Vec<(u32, u64)>,
}

/// Any response on a metadata server's client port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Fs`].
    Fs(ClientResponse),
    /// Answer to [`Request::Topology`].
    Topology(Topology),
    /// Answer to [`Request::Admin`].
    Admin(Result<admin::AdminReply, RpcError>),
    /// Answer to [`Request::Chunkserver`].
    Chunkserver(Result<chunk::CsReply, RpcError>),
    /// Answer to [`Request::Watch`].
    Watch(Changes),
    /// Answer to [`Request::KeepAlive`]: the session timeout of the answering server, in
    /// milliseconds.
    KeptAlive {
        /// The session timeout.
        timeout_ms: u64,
    },
}
