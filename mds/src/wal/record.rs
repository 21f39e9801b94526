//! The WAL's on-disk format, without I/O: the segment header and the frames that carry one
//! [`Record`] each.
//!
//! A segment starts with a 32-byte header: the magic `MNGWAL\r\n`, the format version (u32 LE),
//! 4 reserved bytes, the segment's sequence number (u64 LE), a CRC32 of the 24 bytes before it
//! (u32 LE) and 4 bytes of padding. Frames follow: the payload length (u32 LE, never 0), a
//! CRC32 over the segment's sequence number and the payload (u32 LE), then the payload, a
//! postcard [`Record`]. Segments are zero-filled before use, so a zero length marks the end.

use serde::{Deserialize, Serialize};

/// Bytes before the first frame of a segment.
pub const HEADER_LEN: usize = 32;
/// Bytes before a frame's payload.
pub const FRAME_HEAD: usize = 8;
/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 1 << 30;
/// The format version written by this build.
pub const VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"MNGWAL\r\n";

/// What one WAL write persists for one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDelta {
    /// The shard.
    pub shard: u32,
    /// Drop the whole log; it restarts after this (index, term) (a snapshot, or a segment's base).
    pub reset: Option<(u64, u64)>,
    /// Entries to append (protobuf `Entry`), replacing any stored entry at or after the first.
    pub entries: Vec<Vec<u8>>,
    /// The new hard state (protobuf `HardState`).
    pub hard_state: Option<Vec<u8>>,
}

/// One frame's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// A base: the full log of every group, first in each segment. Replay starts at the newest
    /// segment with an intact base.
    pub base: bool,
    /// The groups it changes.
    pub groups: Vec<GroupDelta>,
}

impl Record {
    /// A base carrying `groups`' whole logs.
    pub fn base(groups: Vec<GroupDelta>) -> Record {
        Record { base: true, groups }
    }
}

/// Why a segment or frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not a WAL segment header.
    #[error("not a WAL segment (bad magic or header checksum)")]
    BadHeader,
    /// Written by a newer (or unknown) format version.
    #[error("WAL format version {0} is not supported (this build reads version {VERSION})")]
    Version(u32),
    /// A frame that fails its checksum, is cut short, or does not decode.
    #[error("bad frame: {0}")]
    BadFrame(String),
}

/// The header of segment `seq`.
pub fn header(seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The sequence number in a segment header.
pub fn parse_header(h: &[u8]) -> Result<u64, FormatError> {
    if h.len() < HEADER_LEN || &h[..8] != MAGIC {
        return Err(FormatError::BadHeader);
    }
    let crc = u32::from_le_bytes(h[24..28].try_into().expect("4 bytes"));
    if crc != crc32fast::hash(&h[..24]) {
        return Err(FormatError::BadHeader);
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    Ok(u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")))
}

fn frame_crc(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// `record` as a frame of segment `seq`.
pub fn frame(seq: u64, record: &Record) -> Vec<u8> {
    let payload = postcard::to_allocvec(record).expect("WAL records always encode");
    let mut out = Vec::with_capacity(FRAME_HEAD + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame_crc(seq, &payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The frame at the start of `buf` (the rest of segment `seq`): `Ok(None)` at the end of the
/// written part (a zero length), else the record and the frame's length.
pub fn next_frame(seq: u64, buf: &[u8]) -> Result<Option<(Record, usize)>, FormatError> {
    if buf.len() < FRAME_HEAD {
        return if buf.iter().all(|b| *b == 0) {
            Ok(None)
        } else {
            Err(FormatError::BadFrame("frame header cut short".into()))
        };
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_PAYLOAD || buf.len() < FRAME_HEAD + len {
        return Err(FormatError::BadFrame(format!(
            "length {len} runs past the segment"
        )));
    }
    let payload = &buf[FRAME_HEAD..FRAME_HEAD + len];
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if crc != frame_crc(seq, payload) {
        return Err(FormatError::BadFrame("checksum mismatch".into()));
    }
    let record = postcard::from_bytes(payload).map_err(|e| FormatError::BadFrame(e.to_string()))?;
    Ok(Some((record, FRAME_HEAD + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8) -> Record {
        Record {
            base: false,
            groups: vec![GroupDelta {
                shard: 3,
                reset: None,
                entries: vec![vec![n; 40]],
                hard_state: Some(vec![1, 2, 3]),
            }],
        }
    }

    #[test]
    fn a_header_round_trips_and_damage_is_refused() {
        let h = header(42);
        assert_eq!(parse_header(&h), Ok(42));
        let mut bad = h;
        bad[17] ^= 1;
        assert_eq!(parse_header(&bad), Err(FormatError::BadHeader));
        let mut newer = h;
        newer[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32fast::hash(&newer[..24]);
        newer[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(parse_header(&newer), Err(FormatError::Version(2)));
    }

    #[test]
    fn frames_read_back_in_order_and_zeros_end_the_log() {
        let mut seg = frame(7, &record(1));
        seg.extend(frame(7, &record(2)));
        seg.extend([0u8; 64]);
        let (a, n) = next_frame(7, &seg).unwrap().unwrap();
        let (b, m) = next_frame(7, &seg[n..]).unwrap().unwrap();
        assert_eq!((a, b), (record(1), record(2)));
        assert_eq!(next_frame(7, &seg[n + m..]), Ok(None));
        assert_eq!(next_frame(7, &[]), Ok(None));
    }

    #[test]
    fn a_torn_or_flipped_frame_is_refused() {
        let f = frame(7, &record(1));
        let torn = &f[..f.len() - 5];
        assert!(matches!(next_frame(7, torn), Err(FormatError::BadFrame(_))));
        let mut flipped = f.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(matches!(next_frame(7, &flipped), Err(FormatError::BadFrame(_))));
        assert!(matches!(next_frame(7, &f[..3]), Err(FormatError::BadFrame(_))));
    }

    #[test]
    fn a_frame_from_another_segment_fails_its_checksum() {
        let f = frame(7, &record(1));
        assert!(matches!(next_frame(8, &f), Err(FormatError::BadFrame(_))));
    }
}
