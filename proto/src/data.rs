//! The data path: clients and chunkservers talk to chunkservers.
//!
//! A chunk holds up to [`crate::fs::CHUNK_SIZE`] bytes of one file, in blocks of [`BLOCK_SIZE`]
//! bytes, each with a CRC32 checked on every read. Every copy of a chunk carries a version; the
//! metadata tier bumps it for every write session, so a copy that missed writes is recognisably
//! stale.
//!
//! Writes travel down a replication chain: the client sends a write to the first server with
//! the rest of the chain; each server stores the data, forwards it to the next, and answers
//! only once everything after it has answered. A write is acknowledged when every copy has it.

use serde::{Deserialize, Serialize};

/// Bytes per block; each block has its own CRC32.
pub const BLOCK_SIZE: u32 = 64 << 10;
/// Blocks per chunk.
pub const BLOCKS_PER_CHUNK: u32 = 1024;
/// Largest data frame (a write of up to 8 MiB plus its header).
pub const DATA_FRAME_CAP: usize = (8 << 20) + (64 << 10);
/// Largest payload of one read or write request.
pub const MAX_IO: u32 = 8 << 20;

/// A chunkserver and its data address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Server {
    /// Chunkserver id.
    pub id: u64,
    /// Data address (`host:port`).
    pub addr: String,
}

/// A request to a chunkserver's data port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataRequest {
    /// Read `len` bytes at `offset` of chunk `chunk`, which must be at `version`. Bytes past the
    /// chunk's end read as zeros up to `len` (a hole); the reply is exactly `len` bytes.
    Read {
        chunk: u64,
        version: u32,
        offset: u32,
        len: u32,
    },
    /// Write `data` at `offset` of chunk `chunk`, moving the copy from `prev_version` (0: the
    /// chunk is new) to `version`, then forward the same write to `chain[0]` with the rest of
    /// the chain. Answered once every server of the chain has it.
    Write {
        chunk: u64,
        version: u32,
        prev_version: u32,
        offset: u32,
        #[serde(with = "payload")]
        data: Vec<u8>,
        chain: Vec<Server>,
    },
    /// Cut chunk `chunk` to `len` bytes, moving it from `prev_version` to `version`, down the
    /// chain like a write.
    Truncate {
        chunk: u64,
        version: u32,
        prev_version: u32,
        len: u32,
        chain: Vec<Server>,
    },
    /// Make chunk `chunk` at `version` durable (fdatasync) on this server and down the chain.
    Sync {
        chunk: u64,
        version: u32,
        chain: Vec<Server>,
    },
    /// Copy chunk `chunk` at `version` from `from` (an order of the metadata tier, to restore a
    /// replication goal). Answered once the copy is complete and durable.
    Replicate { chunk: u64, version: u32, from: Server },
    /// Delete this server's copy of `chunk` (any version, or only `version`).
    Delete { chunk: u64, version: Option<u32> },
    /// The version and length of this server's copy of `chunk`.
    Stat { chunk: u64 },
}

/// The answer of a chunkserver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataReply {
    /// Bytes read.
    Data(#[serde(with = "payload")] Vec<u8>),
    /// Done.
    Done,
    /// A copy's version and length.
    Info { version: u32, len: u32 },
    /// Failed.
    Error(DataError),
}

/// Serde for the data payloads: encoded as a byte string, which postcard writes exactly as it
/// writes a `Vec<u8>` (a length, then the bytes) but decodes with one copy instead of one
/// call per byte (which made the data path CPU-bound in debug builds).
mod payload {
    use std::fmt;

    use serde::de::{self, SeqAccess};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }

    struct Bytes;

    impl<'de> de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        /// Formats that write bytes as a sequence of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(super::MAX_IO as usize));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

/// Why a data request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DataError {
    /// This server has no copy of the chunk.
    #[error("no copy of chunk {0:#x} here")]
    NoChunk(u64),
    /// This server's copy has another version (it missed writes, or the request is stale).
    #[error("chunk {chunk:#x} is at version {have} here, not {want}")]
    WrongVersion {
        /// The chunk.
        chunk: u64,
        /// Version held here.
        have: u32,
        /// Version asked for.
        want: u32,
    },
    /// A block failed its checksum; this copy must not be used.
    #[error("chunk {chunk:#x} block {block} failed its checksum")]
    Corrupt {
        /// The chunk.
        chunk: u64,
        /// The block.
        block: u32,
    },
    /// No data directory has room.
    #[error("no space left on any data directory")]
    NoSpace,
    /// A later server of the chain failed.
    #[error("replication chain failed at chunkserver {server}: {reason}")]
    Chain {
        /// The server that failed (or could not be reached).
        server: u64,
        /// What it said.
        reason: String,
    },
    /// The request is malformed (offset or length out of range).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A local I/O error.
    #[error("I/O error: {0}")]
    Io(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_encode_as_a_plain_vec_would() {
        #[derive(Serialize)]
        enum Plain {
            #[allow(dead_code)]
            Read,
            Write {
                chunk: u64,
                version: u32,
                prev_version: u32,
                offset: u32,
                data: Vec<u8>,
                chain: Vec<Server>,
            },
        }
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let chain = vec![Server {
            id: 2,
            addr: "cs2:9422".into(),
        }];
        let ours = DataRequest::Write {
            chunk: 9,
            version: 3,
            prev_version: 2,
            offset: 4096,
            data: data.clone(),
            chain: chain.clone(),
        };
        let plain = Plain::Write {
            chunk: 9,
            version: 3,
            prev_version: 2,
            offset: 4096,
            data: data.clone(),
            chain,
        };
        let bytes = postcard::to_stdvec(&ours).unwrap();
        assert_eq!(
            bytes,
            postcard::to_stdvec(&plain).unwrap(),
            "the wire format is unchanged"
        );
        assert_eq!(postcard::from_bytes::<DataRequest>(&bytes).unwrap(), ours);
        let reply = DataReply::Data(data.clone());
        let bytes = postcard::to_stdvec(&reply).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&Ok::<_, ()>(data)).unwrap());
        assert_eq!(postcard::from_bytes::<DataReply>(&bytes).unwrap(), reply);
    }
}
