//! What a core operation fails with. [`crate::errno`] maps every variant to an errno.

use client::ClientError;
use client::data::DataCallError;
use proto::Errno;

/// Why a file-system operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A POSIX failure: the metadata server's final answer, or the mount's own decision
    /// (a bad handle, an unsupported flag, a buffer too small).
    #[error("{0:?}")]
    Posix(Errno),
    /// The metadata service gave no final answer: retries ran out, the transport refused, or
    /// the server failed internally.
    #[error("metadata service: {0}")]
    Meta(ClientError),
    /// The metadata service answered with a reply of the wrong kind (a protocol bug).
    #[error("{op}: unexpected reply {reply}")]
    Protocol {
        /// The operation asked.
        op: &'static str,
        /// What came back.
        reply: String,
    },
    /// The data path failed for a chunk after every attempt.
    #[error("chunk {chunk:#x}: {failure}")]
    Data {
        /// The chunk id (0 when no chunk was obtained).
        chunk: u64,
        /// The last failure seen.
        failure: DataFailure,
    },
    /// `SEEK_DATA`/`SEEK_HOLE` at or past the end of the file, or no data after the offset.
    #[error("no such offset")]
    NoSuchOffset,
    /// A blocking lock wait ended because the caller has a signal pending.
    #[error("interrupted by a signal")]
    Interrupted,
}

/// The last failure of a chunk read, write or sync.
#[derive(Debug, thiserror::Error)]
pub enum DataFailure {
    /// The metadata service lists no chunkserver for the chunk (or every one was excluded).
    #[error("no chunkserver to use")]
    NoServers,
    /// A chunkserver refused or could not be reached.
    #[error(transparent)]
    Call(#[from] DataCallError),
    /// A chunkserver answered with a reply of the wrong kind or size.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl From<Errno> for FsError {
    fn from(e: Errno) -> Self {
        FsError::Posix(e)
    }
}

impl From<ClientError> for FsError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Fs(e) => FsError::Posix(e),
            other => FsError::Meta(other),
        }
    }
}

impl FsError {
    /// Whether the error is an ordinary answer (a POSIX result) rather than a failure of the
    /// system: decides the level it is logged at.
    pub fn is_ordinary(&self) -> bool {
        matches!(
            self,
            FsError::Posix(_) | FsError::NoSuchOffset | FsError::Interrupted
        )
    }

    /// A reply of the wrong kind to `op`.
    pub(crate) fn protocol(op: &'static str, reply: impl std::fmt::Debug) -> Self {
        FsError::Protocol {
            op,
            reply: format!("{reply:?}"),
        }
    }
}
