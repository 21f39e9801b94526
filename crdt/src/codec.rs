//! Versioned postcard encoding for every stored and wire type of this crate.
//!
//! Every encoding starts with two bytes: the *kind* (which type this is, so the bytes of one
//! type are never decoded as another) and the *format version*. Decoding checks both, refuses
//! versions newer than it knows, refuses trailing bytes, and never panics on any input.
//! When a type's format changes, its version is bumped and the decoder of the previous
//! version is kept, to migrate old bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{Delta, Directory, Inode, Namespace, QuotaUsage};

/// A type with a versioned encoding.
pub trait Versioned: Serialize + DeserializeOwned {
    /// The byte that names the type in an encoding.
    const KIND: u8;
    /// The newest format version, which [`encode`] writes.
    const VERSION: u8;

    /// Restores the invariants the type's operations maintain (for example, a deleted inode
    /// holds nothing but its tombstone), so that any decodable input yields a state that
    /// behaves as one reached by operations. Called on every decoded value.
    fn normalize(&mut self) {}
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the two header bytes.
    #[error("input is {0} bytes, shorter than the 2-byte header")]
    Truncated(usize),
    /// The bytes encode another type.
    #[error("bytes encode kind {found:#04x}, expected {expected:#04x}")]
    WrongKind {
        /// The kind this decoder reads.
        expected: u8,
        /// The kind in the input.
        found: u8,
    },
    /// The bytes were written by a newer (or an unknown) format version.
    #[error("format version {found} is not supported (this build reads up to version {newest})")]
    UnsupportedVersion {
        /// The version in the input.
        found: u8,
        /// The newest version this build reads.
        newest: u8,
    },
    /// The body does not decode.
    #[error("malformed body: {0}")]
    Malformed(#[from] postcard::Error),
    /// The body decoded but bytes were left over.
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
}

/// Encodes `value` with its header.
pub fn encode<T: Versioned>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, vec![T::KIND, T::VERSION])
        .expect("postcard encodes every type of this crate (no unsized sequences or maps)")
}

/// Decodes bytes written by [`encode`].
pub fn decode<T: Versioned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let [kind, version, body @ ..] = bytes else {
        return Err(DecodeError::Truncated(bytes.len()));
    };
    if *kind != T::KIND {
        return Err(DecodeError::WrongKind {
            expected: T::KIND,
            found: *kind,
        });
    }
    if *version == 0 || *version > T::VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: *version,
            newest: T::VERSION,
        });
    }
    let (mut value, rest) = postcard::take_from_bytes::<T>(body)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    value.normalize();
    Ok(value)
}

/// Decodes bytes of any supported version and encodes them again in the newest format and
/// canonical form: the migration path for stored records. Applying it twice changes nothing.
pub fn reencode<T: Versioned>(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decode::<T>(bytes).map(|v| encode(&v))
}

impl Versioned for Delta {
    const KIND: u8 = b'D';
    const VERSION: u8 = 1;
}

impl Versioned for Inode {
    const KIND: u8 = b'I';
    const VERSION: u8 = 1;

    fn normalize(&mut self) {
        Inode::normalize(self);
    }
}

impl Versioned for Directory {
    const KIND: u8 = b'E';
    const VERSION: u8 = 1;
}

impl Versioned for QuotaUsage {
    const KIND: u8 = b'Q';
    const VERSION: u8 = 1;
}

impl Versioned for Namespace {
    const KIND: u8 = b'N';
    const VERSION: u8 = 1;

    fn normalize(&mut self) {
        Namespace::normalize(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counter::PnCounter;
    use crate::dot::NodeId;

    fn usage() -> QuotaUsage {
        QuotaUsage {
            bytes: PnCounter::component(NodeId(3), 100, 1),
            inodes: PnCounter::new(),
        }
    }

    #[test]
    fn round_trips_with_header() {
        let bytes = encode(&usage());
        assert_eq!(&bytes[..2], &[b'Q', 1]);
        assert_eq!(decode::<QuotaUsage>(&bytes).unwrap(), usage());
    }

    #[test]
    fn refuses_wrong_kind_future_version_truncation_and_trailing_bytes() {
        let bytes = encode(&usage());
        assert!(matches!(
            decode::<Inode>(&bytes),
            Err(DecodeError::WrongKind { .. })
        ));
        let mut future = bytes.clone();
        future[1] = 2;
        assert_eq!(
            decode::<QuotaUsage>(&future),
            Err(DecodeError::UnsupportedVersion { found: 2, newest: 1 })
        );
        assert_eq!(decode::<QuotaUsage>(&bytes[..1]), Err(DecodeError::Truncated(1)));
        assert!(matches!(
            decode::<QuotaUsage>(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Malformed(_))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode::<QuotaUsage>(&long), Err(DecodeError::TrailingBytes(1)));
    }
}
