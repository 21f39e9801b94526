//! Where metadata lives: inode and chunk ids, buckets, shards.
//!
//! The namespace is cut into [`BUCKETS`] virtual buckets. Every inode and chunk id carries its
//! bucket in its low bits, so the shard that owns an id is found from the id alone; the
//! [`ShardTable`] maps bucket ranges to shards and shards to replicas, with an epoch bumped on
//! every change. Nothing here performs I/O: the metadata servers store the table (as
//! [`crdt::codec`] bytes) in LMDB.
//!
//! | module | what it holds |
//! |---|---|
//! | [`ids`] | the id layout: counter, allocator, bucket |
//! | [`table`] | [`ShardTable`]: bucket ranges → shards → replicas, epochs |
//! | [`placement`] | which bucket a new file or directory goes to (Blake3) |

pub mod ids;
pub mod placement;
pub mod table;

pub use ids::{Bucket, IdError, IdParts, bucket_of};
pub use placement::{dir_bucket, file_bucket};
pub use table::{ShardEntry, ShardId, ShardTable, TableError};

/// Number of virtual buckets. Fixed for the life of a cluster.
pub const BUCKETS: u16 = 4096;
