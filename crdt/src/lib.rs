//! I/O-free CRDTs and the MooseNG metadata model.
//!
//! Every metadata server holds its shards' namespace as the CRDTs in this crate. In strict mode
//! raft orders the deltas, so the merge laws only matter for idempotent replay; in optimistic
//! mode replicas apply deltas in whatever order the ring delivers them, and the laws are what
//! makes them converge. Nothing here performs I/O or reads a clock: time comes in as arguments.
//!
//! # Module map
//!
//! | module | what it holds |
//! |---|---|
//! | [`hlc`] | hybrid logical clock: [`Timestamp`], [`Hlc`], the maximum-offset check |
//! | [`dot`] | [`NodeId`], [`Dot`] and the compact [`CausalContext`] (version vector + dot cloud) |
//! | [`lww`] | [`Lww`] register and [`LwwMap`] (xattrs, chunk tables) |
//! | [`orset`] | add-wins [`OrSet`] with dots, and its [`OrSetDelta`] |
//! | [`counter`] | [`GCounter`] and [`PnCounter`] (link counts, quota usage) |
//! | [`model`] | inodes, names, directories and the name-conflict rule, deltas, the [`Namespace`] |
//! | [`codec`] | versioned postcard encoding; decoding never panics |
//!
//! Every CRDT implements [`Crdt`], whose join is commutative, associative and idempotent;
//! `crdt/tests/laws.rs` checks those laws with property tests for every type.
//!
//! # Tutorial
//!
//! Two metadata servers create a file under the same name in the root directory at the same
//! time, each on its own replica of the namespace. Each edit yields a delta.
//!
//! ```
//! use crdt::model::{DirectoryView, FileKind, FileTime, Ino, Name, Namespace, NewInode};
//! use crdt::{Hlc, NodeId, codec};
//! use std::time::Duration;
//! use uuid::Uuid;
//!
//! let file = |t| NewInode {
//!     kind: FileKind::File, mode: 0o644, uid: 1000, gid: 1000, rdev: 0,
//!     time: FileTime::new(t, 0).unwrap(), nlink: 1, symlink: None,
//! };
//! let name = Name::try_from("report.txt").unwrap();
//!
//! // Each server has a hybrid logical clock. Wall-clock readings are passed in.
//! let mut clock_a = Hlc::new(NodeId(1), Duration::from_millis(500));
//! let mut clock_b = Hlc::new(NodeId(2), Duration::from_millis(500));
//! let (mut a, mut b) = (Namespace::new(), Namespace::new());
//!
//! let mut edit = a.edit(clock_a.now(1_000), Uuid::from_u128(1)).unwrap();
//! edit.create(Ino(100), file(1));
//! edit.link(Ino::ROOT, name.clone(), Ino(100));
//! let from_a = edit.finish();
//!
//! let mut edit = b.edit(clock_b.now(1_001), Uuid::from_u128(2)).unwrap();
//! edit.create(Ino(200), file(1));
//! edit.link(Ino::ROOT, name.clone(), Ino(200));
//! let from_b = edit.finish();
//!
//! // Deltas travel as versioned postcard bytes.
//! let bytes = codec::encode(&from_b);
//! assert!(bytes.len() < 128);
//! let from_b: crdt::model::Delta = codec::decode(&bytes).unwrap();
//!
//! // Each side applies the other's delta (a receiver first advances its clock past it).
//! clock_a.observe(from_b.hlc, 1_002).unwrap();
//! a.apply(&from_b);
//! b.apply(&from_a);
//! assert_eq!(a, b, "replicas converge");
//!
//! // Both files survive. The first create keeps the name; the other gets a derived one.
//! let root = a.dir(Ino::ROOT).unwrap();
//! assert_eq!(root.lookup(&name), Some(Ino(100)));
//! let names: Vec<String> =
//!     root.visible().iter().map(|v| String::from_utf8_lossy(v.name.as_bytes()).into_owned()).collect();
//! assert_eq!(names, ["report.txt", "report.txt~00000000000000c8"]);
//! ```

pub mod codec;
pub mod counter;
pub mod dot;
pub mod hlc;
pub mod lww;
pub mod model;
pub mod orset;

pub use counter::{GCounter, PnCounter};
pub use dot::{CausalContext, Dot, NodeId, VersionVector};
pub use hlc::{ClockError, Hlc, SystemClock, Timestamp, WallClock};
pub use lww::{Lww, LwwMap};
pub use model::Namespace;
pub use orset::{OrSet, OrSetDelta, Tag};

/// A state-based CRDT.
///
/// `join` computes the least upper bound of two states and must satisfy, for all `a`, `b`, `c`:
///
/// ```text
/// a ⊔ b = b ⊔ a                 (commutative)
/// (a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)     (associative)
/// a ⊔ a = a                     (idempotent)
/// ```
pub trait Crdt {
    /// Merges `other` into `self`.
    fn join(&mut self, other: &Self);
}
