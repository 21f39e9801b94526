//! Errors of the metadata server's storage. A storage error is fatal for the shard that hit
//! it: the shard stops rather than advance past an operation it could not persist.

/// A failure reading or writing the LMDB store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// LMDB reported an error (other than a full map).
    #[error("lmdb: {0}")]
    Lmdb(heed::Error),
    /// The LMDB map is full: writes must stop until the map is grown.
    #[error("the LMDB map is full ({used} of {map} bytes used); grow it with --lmdb-map-size")]
    MapFull {
        /// Bytes in use.
        used: u64,
        /// Map size.
        map: u64,
    },
    /// The file system holding the data directory is nearly full: writes must stop until
    /// space is freed.
    #[error(
        "the file system of {path} has {free} bytes free, below the {reserve}-byte reserve; free some space"
    )]
    DiskFull {
        /// The data directory.
        path: std::path::PathBuf,
        /// Bytes available.
        free: u64,
        /// The reserve writes keep.
        reserve: u64,
    },
    /// A stored record does not decode.
    #[error("corrupt {what} record: {reason}")]
    Corrupt {
        /// Which table.
        what: &'static str,
        /// The decode error.
        reason: String,
    },
    /// Reading or writing the write-ahead log failed.
    #[error("write-ahead log {path}: {reason}")]
    Wal {
        /// The segment or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Opening or creating the store failed.
    #[error("open store at {path}: {reason}")]
    Open {
        /// The data directory.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> Self {
        match e {
            heed::Error::Mdb(heed::MdbError::MapFull) => StoreError::MapFull { used: 0, map: 0 },
            e => StoreError::Lmdb(e),
        }
    }
}

impl From<crdt::codec::DecodeError> for StoreError {
    fn from(e: crdt::codec::DecodeError) -> Self {
        StoreError::Corrupt {
            what: "record",
            reason: e.to_string(),
        }
    }
}
