//! Where new inodes go.
//!
//! A file lives in its parent directory's bucket, so create, unlink and readdir touch one
//! shard. A new directory gets a bucket derived from Blake3(parent inode, name), which spreads
//! the tree over buckets. Until cross-shard transactions exist, the bucket is picked within the
//! parent's shard, so every operation stays on one shard; moving buckets between shards later
//! splits the tree along these bucket boundaries.

use crate::ids::{Bucket, bucket_of};
use crate::table::ShardTable;

/// The bucket of a new file (or symlink, or device) in `parent`.
pub fn file_bucket(parent: u64) -> Bucket {
    bucket_of(parent)
}

/// The bucket of a new directory named `name` in `parent`.
pub fn dir_bucket(table: &ShardTable, parent: u64, name: &[u8]) -> Bucket {
    let shard = table.shard_of_id(parent);
    let mut h = blake3::Hasher::new();
    h.update(&parent.to_le_bytes());
    h.update(name);
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    let offset = u64::from_le_bytes(first) % u64::from(shard.len().max(1));
    Bucket(shard.first + offset as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_spread_over_the_parents_shard() {
        let table = ShardTable::uniform(4, &[1, 2, 3], 3).unwrap();
        let parent = 1u64;
        let shard = table.shard_of_id(parent).clone();
        let buckets: std::collections::HashSet<_> = (0..200)
            .map(|i| dir_bucket(&table, parent, format!("d{i}").as_bytes()))
            .collect();
        assert!(
            buckets.len() > 150,
            "200 names should land in many buckets, got {}",
            buckets.len()
        );
        assert!(buckets.iter().all(|b| shard.owns(*b)));
        assert_eq!(
            dir_bucket(&table, parent, b"x"),
            dir_bucket(&table, parent, b"x"),
            "deterministic"
        );
    }

    #[test]
    fn files_stay_with_their_parent() {
        assert_eq!(file_bucket(0x1234_5abc), Bucket(0xabc));
    }
}
