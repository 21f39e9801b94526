//! What raft entries carry. Normal entries hold a versioned [`LogEntry`]; conf changes carry a
//! [`ConfContext`] naming the node and the proposal.

use crdt::Timestamp;
use crdt::codec::Versioned;
use crdt::model::FileTime;
use proto::admin::NodeInfo;
use serde::{Deserialize, Serialize};

use crate::fs::Command;

/// The payload of a normal raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEntry {
    /// A file-system mutation.
    Fs(Command),
    /// A chunkserver's registration, heartbeat or chunk report (shard 0 keeps the registry).
    Chunkserver(proto::chunk::CsRequest),
    /// Creates the root directory in the shard that owns it (proposed once by its first
    /// leader).
    BootstrapRoot {
        /// HLC stamp.
        stamp: Timestamp,
        /// Wall-clock time for the root's timestamps.
        now: FileTime,
    },
}

impl Versioned for LogEntry {
    const KIND: u8 = b'L';
    const VERSION: u8 = 1;
}

/// The context of a conf change: the node it is about (so every replica learns its
/// addresses) and the proposal it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfContext {
    /// The proposal id the leader waits on.
    pub proposal: u64,
    /// The node added, promoted or removed.
    pub node: Option<NodeInfo>,
}

impl Versioned for ConfContext {
    const KIND: u8 = b'C';
    const VERSION: u8 = 1;
}
