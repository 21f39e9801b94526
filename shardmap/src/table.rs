//! The shard table: which shard owns which bucket range, and which nodes replicate it.

use serde::{Deserialize, Serialize};

use crate::BUCKETS;
use crate::ids::{Bucket, bucket_of};

/// A shard: one raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(pub u32);

/// One shard of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The shard.
    pub id: ShardId,
    /// First bucket owned.
    pub first: u16,
    /// One past the last bucket owned.
    pub end: u16,
    /// Node ids of the initial replicas. Membership changes after bootstrap are tracked by the
    /// shard's raft configuration.
    pub replicas: Vec<u64>,
}

impl ShardEntry {
    /// Whether the shard owns `bucket`.
    pub fn owns(&self, bucket: Bucket) -> bool {
        (self.first..self.end).contains(&bucket.0)
    }

    /// Number of buckets owned.
    pub fn len(&self) -> u16 {
        self.end - self.first
    }

    /// Whether the shard owns no bucket.
    pub fn is_empty(&self) -> bool {
        self.first >= self.end
    }
}

/// Bucket ranges → shards → replicas, versioned by an epoch that bumps on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTable {
    /// Bumped on every change; clients cache the table and retry on a newer epoch.
    pub epoch: u64,
    /// Shards in bucket order, covering every bucket exactly once.
    pub shards: Vec<ShardEntry>,
}

/// A table that cannot be built or is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Asked for no shards or more shards than buckets.
    #[error("shard count {0} must be between 1 and {BUCKETS}")]
    ShardCount(u32),
    /// Fewer nodes than the replication factor needs.
    #[error(
        "{nodes} nodes cannot hold {per_shard} replicas per shard (need 1 to 5 replicas, at most one per node)"
    )]
    Replicas {
        /// Nodes available.
        nodes: usize,
        /// Replicas asked for.
        per_shard: usize,
    },
    /// The shards do not cover every bucket exactly once, in order.
    #[error("shard table does not cover buckets 0..{BUCKETS} exactly once (at shard {0:?})")]
    Coverage(ShardId),
}

impl ShardTable {
    /// `shards` shards of equal bucket ranges; shard `i` is replicated on `per_shard` nodes
    /// starting at node index `i` (round robin), so replicas spread evenly.
    pub fn uniform(shards: u32, nodes: &[u64], per_shard: usize) -> Result<Self, TableError> {
        if shards == 0 || shards > u32::from(BUCKETS) {
            return Err(TableError::ShardCount(shards));
        }
        if per_shard == 0 || per_shard > 5 || per_shard > nodes.len() {
            return Err(TableError::Replicas {
                nodes: nodes.len(),
                per_shard,
            });
        }
        let bound = |i: u32| (u64::from(i) * u64::from(BUCKETS) / u64::from(shards)) as u16;
        let entries = (0..shards)
            .map(|i| ShardEntry {
                id: ShardId(i),
                first: bound(i),
                end: bound(i + 1),
                replicas: (0..per_shard)
                    .map(|k| nodes[(i as usize + k) % nodes.len()])
                    .collect(),
            })
            .collect();
        let table = ShardTable {
            epoch: 1,
            shards: entries,
        };
        table.validate()?;
        Ok(table)
    }

    /// Checks that the shards cover every bucket exactly once, in order.
    pub fn validate(&self) -> Result<(), TableError> {
        let mut next = 0u16;
        for s in &self.shards {
            if s.first != next || s.end <= s.first {
                return Err(TableError::Coverage(s.id));
            }
            next = s.end;
        }
        match self.shards.last() {
            Some(_) if next == BUCKETS => Ok(()),
            Some(last) => Err(TableError::Coverage(last.id)),
            None => Err(TableError::ShardCount(0)),
        }
    }

    /// The shard owning `bucket`.
    pub fn shard_of(&self, bucket: Bucket) -> &ShardEntry {
        let i = self.shards.partition_point(|s| s.end <= bucket.0);
        &self.shards[i.min(self.shards.len() - 1)]
    }

    /// The shard owning inode or chunk `id`.
    pub fn shard_of_id(&self, id: u64) -> &ShardEntry {
        self.shard_of(bucket_of(id))
    }

    /// A shard by id.
    pub fn shard(&self, id: ShardId) -> Option<&ShardEntry> {
        self.shards.iter().find(|s| s.id == id)
    }
}

impl crdt::codec::Versioned for ShardTable {
    const KIND: u8 = b'S';
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_tables_cover_every_bucket_once() {
        for shards in [1, 3, 16, 4096] {
            let t = ShardTable::uniform(shards, &[1, 2, 3], 3).unwrap();
            assert_eq!(t.shards.len(), shards as usize);
            for b in [0, 1, 2047, 4095] {
                assert!(t.shard_of(Bucket(b)).owns(Bucket(b)));
            }
        }
    }

    #[test]
    fn replicas_rotate_over_nodes() {
        let t = ShardTable::uniform(3, &[10, 20, 30, 40, 50], 3).unwrap();
        assert_eq!(t.shards[1].replicas, vec![20, 30, 40]);
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(ShardTable::uniform(0, &[1], 1), Err(TableError::ShardCount(0)));
        assert_eq!(
            ShardTable::uniform(1, &[1, 2], 3),
            Err(TableError::Replicas {
                nodes: 2,
                per_shard: 3
            })
        );
        let mut t = ShardTable::uniform(2, &[1], 1).unwrap();
        t.shards[1].first += 1;
        assert_eq!(t.validate(), Err(TableError::Coverage(ShardId(1))));
    }

    #[test]
    fn encodes_with_a_version() {
        let t = ShardTable::uniform(4, &[1, 2, 3], 3).unwrap();
        let bytes = crdt::codec::encode(&t);
        assert_eq!(&bytes[..2], &[b'S', 1]);
        assert_eq!(crdt::codec::decode::<ShardTable>(&bytes).unwrap(), t);
    }
}
