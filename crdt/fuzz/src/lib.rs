//! Shared checks for the decoder fuzz targets: one target per decoder of `crdt::codec`.

use crdt::Crdt;
use crdt::codec::{self, Versioned, reencode};
use crdt::model::{Directory, DirectoryView};

/// Decoding must not panic, and a decoded value must re-encode to a canonical fixpoint.
pub fn round_trip<T: Versioned>(data: &[u8]) -> Option<T> {
    let value = codec::decode::<T>(data).ok()?;
    let canonical = codec::encode(&value);
    assert_eq!(
        reencode::<T>(&canonical).expect("canonical bytes decode"),
        canonical
    );
    Some(value)
}

/// Like [`round_trip`], and the decoded state behaves as a CRDT state: joining it with itself
/// changes nothing.
pub fn state<T: Versioned + Crdt + Clone + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let value = round_trip::<T>(data)?;
    let mut joined = value.clone();
    joined.join(&value);
    assert_eq!(joined, value, "join is idempotent on decoded state");
    Some(value)
}

/// Like [`state`], and every visible name of a decoded directory resolves to its entry.
pub fn directory(data: &[u8]) {
    if let Some(dir) = state::<Directory>(data) {
        for v in dir.visible() {
            assert_eq!(dir.lookup(&v.name), Some(v.entry.ino));
        }
    }
}
