//! The metadata model every metadata server replicates.
//!
//! - [`inode`]: the inode record (identity, LWW attributes, link counter, xattrs, chunks).
//! - [`name`]: validated file names.
//! - [`directory`]: directory entries as an OR-Set, and the name-conflict rule.
//! - [`quota`]: quota usage counters.
//! - [`delta`]: the replicated unit, a batch of operations.
//! - [`records`]: the storage traits deltas are applied to, and the [`Overlay`] cache a
//!   server's store sits under.
//! - [`apply`]: applying operations, the one code path for local and received deltas.
//! - [`edit`]: making deltas through an [`Edit`].
//! - [`namespace`]: the in-memory replica state, the reference [`Records`].

pub mod apply;
pub mod delta;
pub mod directory;
pub mod edit;
pub mod inode;
pub mod name;
pub mod namespace;
pub mod quota;
pub mod records;

pub use apply::{Applied, apply_delta, apply_op};
pub use delta::{Delta, Op};
pub use directory::{Directory, DirectoryView, Entry, Visible, derived_name};
pub use edit::{Edit, NewInode, StaleStamp};
pub use inode::{Attr, BadNanos, ChunkRef, FileKind, FileTime, Identity, Ino, Inode};
pub use name::{NAME_MAX, Name, NameError};
pub use namespace::Namespace;
pub use quota::QuotaUsage;
pub use records::{Changes, Overlay, Records, RecordsView};
