//! The idempotency table: the first answer to each mutation, keyed by (client, seq), so a
//! retried request gets that answer instead of being applied again.

use std::ops::Bound;

use crdt::codec::{self, Versioned};
use heed::{RoTxn, RwTxn};
use proto::{Errno, FsReply};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::{Store, keys};

/// An answer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply(pub Result<FsReply, Errno>);

impl Versioned for StoredReply {
    const KIND: u8 = b'r';
    const VERSION: u8 = 1;
}

impl Store {
    /// The first answer to mutation `seq` of `client`, if it was applied.
    pub fn reply(
        &self,
        r: &RoTxn,
        shard: u32,
        client: u64,
        seq: u64,
    ) -> Result<Option<StoredReply>, StoreError> {
        let v = self.sessions.get(r, &keys::shard_u64_u64(shard, client, seq))?;
        v.map(|b| {
            codec::decode(b).map_err(|e| StoreError::Corrupt {
                what: "reply",
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// Records the answer to mutation `seq` of `client`, and forgets the answers below
    /// `acked_below`, which the client will not retry.
    pub fn put_reply(
        &self,
        w: &mut RwTxn,
        shard: u32,
        client: u64,
        seq: u64,
        acked_below: u64,
        reply: &StoredReply,
    ) -> Result<(), StoreError> {
        if acked_below > 0 {
            let lo = keys::shard_u64_u64(shard, client, 0);
            let hi = keys::shard_u64_u64(shard, client, acked_below);
            self.sessions
                .delete_range(w, &(Bound::Included(&lo[..]), Bound::Excluded(&hi[..])))?;
        }
        Ok(self
            .sessions
            .put(w, &keys::shard_u64_u64(shard, client, seq), &codec::encode(reply))?)
    }
}
