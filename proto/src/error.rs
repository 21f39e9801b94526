//! Errors that cross the wire. POSIX failures are [`Errno`]s the FUSE client hands to the
//! kernel; everything else carries what the client needs to act (where the leader is, whether
//! to retry).

use serde::{Deserialize, Serialize};

/// A POSIX error a file-system operation can fail with.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Errno {
    /// No such file or directory.
    ENOENT,
    /// File exists.
    EEXIST,
    /// Not a directory.
    ENOTDIR,
    /// Is a directory.
    EISDIR,
    /// Directory not empty.
    ENOTEMPTY,
    /// Permission denied (by mode bits).
    EACCES,
    /// Operation not permitted (ownership, sticky bit, privileges).
    EPERM,
    /// Invalid argument.
    EINVAL,
    /// File name too long.
    ENAMETOOLONG,
    /// No space left (also: the metadata store is full).
    ENOSPC,
    /// Cross-device link: the operation would span shards.
    EXDEV,
    /// No such extended attribute.
    ENODATA,
    /// Value too large for the buffer.
    ERANGE,
    /// Too many links.
    EMLINK,
    /// Read-only file system.
    EROFS,
    /// Bad file handle.
    EBADF,
    /// File too large.
    EFBIG,
    /// Operation not supported.
    EOPNOTSUPP,
    /// Argument list too long (an extended attribute value over the limit).
    E2BIG,
    /// Disk quota exceeded.
    EDQUOT,
    /// Too many symbolic links (or a rename into its own subtree walking a cycle).
    ELOOP,
    /// Device or resource busy (`.` or `..` as a rename source or target).
    EBUSY,
    /// Try again: a conflicting lock is held.
    EAGAIN,
}

impl Errno {
    /// The Linux errno value.
    pub fn code(self) -> i32 {
        match self {
            Errno::ENOENT => 2,
            Errno::EEXIST => 17,
            Errno::ENOTDIR => 20,
            Errno::EISDIR => 21,
            Errno::ENOTEMPTY => 39,
            Errno::EACCES => 13,
            Errno::EPERM => 1,
            Errno::EINVAL => 22,
            Errno::ENAMETOOLONG => 36,
            Errno::ENOSPC => 28,
            Errno::EXDEV => 18,
            Errno::ENODATA => 61,
            Errno::ERANGE => 34,
            Errno::EMLINK => 31,
            Errno::EROFS => 30,
            Errno::EBADF => 9,
            Errno::EFBIG => 27,
            Errno::EOPNOTSUPP => 95,
            Errno::E2BIG => 7,
            Errno::EDQUOT => 122,
            Errno::ELOOP => 40,
            Errno::EBUSY => 16,
            Errno::EAGAIN => 11,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RpcError {
    /// The operation failed with a POSIX error. Final: retrying gives the same answer.
    #[error("{0:?}")]
    Fs(Errno),
    /// This node does not lead the shard. Retry at the leader, if one is known.
    #[error("node does not lead shard {shard}; leader {leader:?}")]
    NotLeader {
        /// The shard asked about.
        shard: u32,
        /// The leader this node knows of: node id and client address.
        leader: Option<(u64, String)>,
    },
    /// The shard cannot take the request right now (no leader, proposal dropped by raft,
    /// timed out waiting for commit). Retry with the same idempotency key.
    #[error("shard {shard} unavailable: {reason}")]
    Unavailable {
        /// The shard.
        shard: u32,
        /// What happened.
        reason: String,
    },
    /// This replica has not yet applied the client's session token. Retry (here after a short
    /// wait, or at the leader).
    #[error("shard {shard} replica has applied {applied}, the session needs {needed}")]
    NotCaughtUp {
        /// The shard.
        shard: u32,
        /// Index applied here.
        applied: u64,
        /// Index the session has seen.
        needed: u64,
    },
    /// The request names a shard this node does not host.
    #[error("shard {0} is not hosted on this node")]
    UnknownShard(u32),
    /// The request is malformed or not allowed; retrying will not help.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The server hit an internal error; the request may or may not have been applied.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RpcError {
    /// Whether the same request may succeed if sent again (with the same idempotency key).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RpcError::NotLeader { .. } | RpcError::Unavailable { .. } | RpcError::NotCaughtUp { .. }
        )
    }
}

impl From<Errno> for RpcError {
    fn from(e: Errno) -> Self {
        RpcError::Fs(e)
    }
}
