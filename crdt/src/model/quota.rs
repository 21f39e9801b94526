//! Quota usage: bytes and inodes charged to a quota root, as PN-counters.

use serde::{Deserialize, Serialize};

use crate::Crdt;
use crate::counter::PnCounter;

/// What a directory tree with a quota has used.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// Bytes of file data.
    pub bytes: PnCounter,
    /// Number of inodes.
    pub inodes: PnCounter,
}

impl Crdt for QuotaUsage {
    fn join(&mut self, other: &Self) {
        self.bytes.join(&other.bytes);
        self.inodes.join(&other.inodes);
    }
}
