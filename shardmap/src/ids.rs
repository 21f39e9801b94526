//! Inode and chunk id layout: `counter << 24 | allocator << 12 | bucket`.
//!
//! - `bucket` (12 bits): the bucket the id belongs to; it locates the owning shard.
//! - `allocator` (12 bits): who allocated the counter. 0 is a shard's raft state machine (ids
//!   allocated at apply time, identical on every replica); 1–4095 are nodes allocating on their
//!   own, for writes made while cut off from the raft majority.
//! - `counter` (40 bits): per allocator and shard, starting at 1, so no id is 0 and only the
//!   root directory (`counter 0, allocator 0, bucket 1` = 1) has counter 0.
//!
//! Keeping the bucket and allocator in the low bits keeps ids of a young cluster short as
//! varints (about 5 bytes instead of 9).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::BUCKETS;

const BUCKET_BITS: u32 = 12;
const ALLOCATOR_BITS: u32 = 12;
/// The largest counter an id can hold.
pub const MAX_COUNTER: u64 = (1 << (64 - BUCKET_BITS - ALLOCATOR_BITS)) - 1;
/// The largest allocator number.
pub const MAX_ALLOCATOR: u16 = (1 << ALLOCATOR_BITS) - 1;

/// A virtual bucket, `0..BUCKETS`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bucket(pub u16);

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}", self.0)
    }
}

/// The parts of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdParts {
    /// Sequence number of the allocator within the shard.
    pub counter: u64,
    /// 0 for a shard's state machine, otherwise the allocating node.
    pub allocator: u16,
    /// The bucket the id belongs to.
    pub bucket: Bucket,
}

/// An id that cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The counter does not fit in 40 bits.
    #[error("id counter {0} exceeds {MAX_COUNTER}: this allocator has run out of ids")]
    CounterExhausted(u64),
    /// The allocator does not fit in 12 bits.
    #[error("allocator {0} exceeds {MAX_ALLOCATOR}")]
    BadAllocator(u16),
    /// The bucket is not below [`BUCKETS`].
    #[error("bucket {0} is not below {BUCKETS}")]
    BadBucket(u16),
}

impl IdParts {
    /// Packs the parts into an id.
    pub fn compose(self) -> Result<u64, IdError> {
        if self.counter > MAX_COUNTER {
            return Err(IdError::CounterExhausted(self.counter));
        }
        if self.allocator > MAX_ALLOCATOR {
            return Err(IdError::BadAllocator(self.allocator));
        }
        if self.bucket.0 >= BUCKETS {
            return Err(IdError::BadBucket(self.bucket.0));
        }
        Ok((self.counter << (BUCKET_BITS + ALLOCATOR_BITS))
            | (u64::from(self.allocator) << BUCKET_BITS)
            | u64::from(self.bucket.0))
    }

    /// Unpacks an id.
    pub fn of(id: u64) -> IdParts {
        IdParts {
            counter: id >> (BUCKET_BITS + ALLOCATOR_BITS),
            allocator: ((id >> BUCKET_BITS) & u64::from(MAX_ALLOCATOR)) as u16,
            bucket: bucket_of(id),
        }
    }
}

/// The bucket an id belongs to.
pub fn bucket_of(id: u64) -> Bucket {
    Bucket((id & ((1 << BUCKET_BITS) - 1)) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn root_is_counter_zero_of_bucket_one() {
        let root = IdParts {
            counter: 0,
            allocator: 0,
            bucket: Bucket(1),
        }
        .compose()
        .unwrap();
        assert_eq!(root, crdt::model::Ino::ROOT.0);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let p = IdParts {
            counter: MAX_COUNTER + 1,
            allocator: 0,
            bucket: Bucket(0),
        };
        assert_eq!(p.compose(), Err(IdError::CounterExhausted(MAX_COUNTER + 1)));
        let p = IdParts {
            counter: 1,
            allocator: 0,
            bucket: Bucket(BUCKETS),
        };
        assert_eq!(p.compose(), Err(IdError::BadBucket(BUCKETS)));
    }

    proptest! {
        #[test]
        fn parts_round_trip(counter in 0..=MAX_COUNTER, allocator in 0..=MAX_ALLOCATOR, bucket in 0..BUCKETS) {
            let parts = IdParts { counter, allocator, bucket: Bucket(bucket) };
            let id = parts.compose().unwrap();
            prop_assert_eq!(IdParts::of(id), parts);
            prop_assert_eq!(bucket_of(id), Bucket(bucket));
        }
    }
}
