//! The on-disk format of one chunk copy, version 1. Pure: encoding, decoding and checksums,
//! no I/O.
//!
//! ```text
//! offset 0      header (64 bytes, then zeros up to 4 KiB)
//!                 0..8    magic "MNGCHUNK"
//!                 8..12   format version (u32 LE) = 1
//!                12..20   chunk id (u64 LE)
//!                20..24   chunk version (u32 LE)
//!                24..28   length in bytes (u32 LE), at most CHUNK_SIZE
//!                28..60   reserved, zero
//!                60..64   CRC32 of bytes 0..60
//! offset 4096   CRC table: one CRC32 (u32 LE) per 64 KiB block, 1024 entries
//! offset 8192   data: block i at 8192 + i * 64 KiB, up to `length` bytes
//! ```
//!
//! A block's CRC covers all [`BLOCK_SIZE`] bytes of the block, where bytes at or past the
//! chunk's length count as zeros. Entries of blocks wholly past the length mean nothing.
//!
//! The format version is checked before the header checksum, so a file written by a newer
//! build (whose header may be laid out differently) is recognised as such, not as corrupt.

use std::sync::LazyLock;

use proto::data::{BLOCK_SIZE, BLOCKS_PER_CHUNK};

/// First bytes of every chunk file.
pub const MAGIC: [u8; 8] = *b"MNGCHUNK";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the encoded header.
pub const HEADER_LEN: usize = 64;
/// File offset of the CRC table.
pub const CRC_OFFSET: u64 = 4096;
/// File offset of the first data byte.
pub const DATA_OFFSET: u64 = CRC_OFFSET + 4 * BLOCKS_PER_CHUNK as u64;
/// Largest chunk length, in bytes.
pub const MAX_LEN: u32 = BLOCK_SIZE * BLOCKS_PER_CHUNK;

const CHECKSUMMED: usize = HEADER_LEN - 4;

/// The header of a chunk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Chunk id.
    pub chunk: u64,
    /// Version of this copy (never 0).
    pub version: u32,
    /// Bytes of data.
    pub len: u32,
}

/// Why a header does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("header is truncated ({0} bytes)")]
    Truncated(usize),
    /// Not a chunk file.
    #[error("bad magic")]
    BadMagic,
    /// Written by another format version.
    #[error("chunk file format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// The header checksum does not match.
    #[error("header checksum mismatch")]
    Checksum,
    /// The fields are out of range.
    #[error("invalid header: {0}")]
    Invalid(&'static str),
}

impl Header {
    /// The encoded header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..20].copy_from_slice(&self.chunk.to_le_bytes());
        b[20..24].copy_from_slice(&self.version.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        let crc = crc32fast::hash(&b[..CHECKSUMMED]);
        b[CHECKSUMMED..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header.
    pub fn decode(b: &[u8]) -> Result<Header, FormatError> {
        if b.len() < HEADER_LEN {
            return Err(FormatError::Truncated(b.len()));
        }
        if b[0..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let found = le32(&b[8..12]);
        if found != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion { found });
        }
        if crc32fast::hash(&b[..CHECKSUMMED]) != le32(&b[CHECKSUMMED..HEADER_LEN]) {
            return Err(FormatError::Checksum);
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[12..20]);
        let header = Header {
            chunk: u64::from_le_bytes(id),
            version: le32(&b[20..24]),
            len: le32(&b[24..28]),
        };
        if header.version == 0 {
            return Err(FormatError::Invalid("version 0"));
        }
        if header.len > MAX_LEN {
            return Err(FormatError::Invalid("length beyond the chunk size"));
        }
        Ok(header)
    }
}

/// The CRC32 of one whole block (exactly [`BLOCK_SIZE`] bytes).
pub fn block_crc(block: &[u8]) -> u32 {
    debug_assert_eq!(block.len(), BLOCK_SIZE as usize);
    crc32fast::hash(block)
}

/// The CRC32 of a block of zeros (a hole).
pub fn zero_block_crc() -> u32 {
    static CRC: LazyLock<u32> = LazyLock::new(|| crc32fast::hash(&vec![0u8; BLOCK_SIZE as usize]));
    *CRC
}

/// File offset of data byte `offset`.
pub fn data_pos(offset: u32) -> u64 {
    DATA_OFFSET + u64::from(offset)
}

/// File offset of the CRC table entry of `block`.
pub fn crc_pos(block: u32) -> u64 {
    CRC_OFFSET + 4 * u64::from(block)
}

/// The block holding data byte `offset`.
pub fn block_of(offset: u32) -> u32 {
    offset / BLOCK_SIZE
}

/// The number of blocks needed for `len` bytes (the first block wholly past them).
pub fn blocks_for(len: u32) -> u32 {
    len.div_ceil(BLOCK_SIZE)
}

/// Data offset where `block` starts.
pub fn block_start(block: u32) -> u32 {
    block * BLOCK_SIZE
}

/// Encodes CRC table entries.
pub fn encode_crcs(crcs: &[u32]) -> Vec<u8> {
    crcs.iter().flat_map(|c| c.to_le_bytes()).collect()
}

/// Decodes CRC table entries.
pub fn decode_crcs(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(le32).collect()
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            chunk: 0xdead_beef_0042,
            version: 7,
            len: 123_456,
        }
    }

    #[test]
    fn header_round_trips() {
        assert_eq!(Header::decode(&header().encode()), Ok(header()));
    }

    #[test]
    fn data_starts_after_the_crc_table() {
        assert_eq!(DATA_OFFSET, 8192);
        assert_eq!(u64::from(MAX_LEN), proto::CHUNK_SIZE);
        assert_eq!(crc_pos(BLOCKS_PER_CHUNK), DATA_OFFSET);
    }

    #[test]
    fn any_flipped_header_bit_is_refused() {
        let good = header().encode();
        for byte in 0..HEADER_LEN {
            for bit in 0..8 {
                let mut b = good;
                b[byte] ^= 1 << bit;
                assert!(
                    Header::decode(&b).is_err(),
                    "flip of byte {byte} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn unknown_format_versions_are_refused_before_the_checksum() {
        let mut b = header().encode();
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            Header::decode(&b),
            Err(FormatError::UnsupportedVersion { found: 2 })
        );
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        let long = Header {
            len: MAX_LEN + 1,
            ..header()
        };
        assert!(matches!(
            Header::decode(&long.encode()),
            Err(FormatError::Invalid(_))
        ));
        let unversioned = Header {
            version: 0,
            ..header()
        };
        assert!(matches!(
            Header::decode(&unversioned.encode()),
            Err(FormatError::Invalid(_))
        ));
        assert_eq!(Header::decode(&[0u8; 10]), Err(FormatError::Truncated(10)));
        assert_eq!(Header::decode(&[0u8; HEADER_LEN]), Err(FormatError::BadMagic));
    }

    #[test]
    fn block_arithmetic() {
        assert_eq!(block_of(0), 0);
        assert_eq!(block_of(BLOCK_SIZE - 1), 0);
        assert_eq!(block_of(BLOCK_SIZE), 1);
        assert_eq!(blocks_for(0), 0);
        assert_eq!(blocks_for(1), 1);
        assert_eq!(blocks_for(BLOCK_SIZE), 1);
        assert_eq!(blocks_for(BLOCK_SIZE + 1), 2);
        assert_eq!(decode_crcs(&encode_crcs(&[1, 0xffff_ffff])), vec![1, 0xffff_ffff]);
        assert_eq!(zero_block_crc(), block_crc(&vec![0u8; BLOCK_SIZE as usize]));
    }
}
