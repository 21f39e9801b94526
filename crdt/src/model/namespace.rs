//! The in-memory replicated namespace of one shard: inode records, directory entry sets and
//! quota usage. The reference implementation of [`Records`], used by tests, benchmarks and the
//! CRDT property suites; servers keep the same records in a store (see [`super::records`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Crdt;
use crate::dot::{CausalContext, Dot};
use crate::hlc::Timestamp;
use crate::model::apply::{Applied, apply_delta};
use crate::model::delta::Delta;
use crate::model::directory::{Directory, Entry};
use crate::model::edit::{Edit, StaleStamp};
use crate::model::inode::{Ino, Inode};
use crate::model::quota::QuotaUsage;
use crate::model::records::Records;
use crate::orset::Tag;

/// The metadata state of a replica.
///
/// `floor` is the newest stability frontier passed to [`Namespace::collect_garbage`]: every
/// delta stamped at or before it has been applied here already, so a delta at or below it that
/// arrives again is a duplicate and is ignored. That is what keeps collected tombstones from
/// being undone by a re-delivered old delta.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Namespace {
    /// Boxed: the record is large and a B-tree node holds eleven of them, so boxing keeps
    /// half-empty nodes from doubling the memory per inode.
    inodes: BTreeMap<Ino, Box<Inode>>,
    dirs: BTreeMap<Ino, Directory>,
    quotas: BTreeMap<Ino, QuotaUsage>,
    floor: Timestamp,
}

static EMPTY_CONTEXT: CausalContext = CausalContext::new();

impl Namespace {
    /// An empty namespace.
    pub fn new() -> Self {
        Self::default()
    }

    /// A live inode: created and not deleted.
    pub fn inode(&self, ino: Ino) -> Option<&Inode> {
        self.record(ino).filter(|i| i.is_live())
    }

    /// The raw record of `ino`, including partial records (create not yet applied) and
    /// tombstones.
    pub fn record(&self, ino: Ino) -> Option<&Inode> {
        self.inodes.get(&ino).map(Box::as_ref)
    }

    /// The entry set of directory `dir`.
    pub fn dir(&self, dir: Ino) -> Option<&Directory> {
        self.dirs.get(&dir)
    }

    /// Quota usage under `root`.
    pub fn quota(&self, root: Ino) -> Option<&QuotaUsage> {
        self.quotas.get(&root)
    }

    /// Number of inode records (live, partial and tombstones).
    pub fn records(&self) -> usize {
        self.inodes.len()
    }

    /// The garbage-collection floor.
    pub fn floor(&self) -> Timestamp {
        self.floor
    }

    /// Joins a delta into the state.
    pub fn apply(&mut self, delta: &Delta) -> Applied {
        apply_delta(self, delta)
    }

    /// Starts an edit of this namespace; see [`Edit::new`].
    pub fn edit(&mut self, hlc: Timestamp, id: Uuid) -> Result<Edit<'_, Namespace>, StaleStamp> {
        Edit::new(self, hlc, id)
    }

    /// Drops tombstones that every replica has seen. The caller guarantees that every replica
    /// has applied every delta stamped at or before `stable`. Collected are: deleted inodes
    /// (with their entry sets and quota usage) deleted at or before `stable`, records whose
    /// create never arrived although everything they saw is stable (the create was collected),
    /// and LWW-map tombstones at or before `stable`.
    pub fn collect_garbage(&mut self, stable: Timestamp) {
        self.floor = self.floor.max(stable);
        let floor = self.floor;
        let mut dead = Vec::new();
        for (ino, rec) in &mut self.inodes {
            let deleted = rec.deleted().is_some_and(|t| t <= floor);
            let orphaned = rec.identity().is_none() && rec.deleted().is_none() && rec.seen() <= floor;
            if deleted || orphaned {
                dead.push(*ino);
            } else {
                rec.collect_garbage(floor);
            }
        }
        for ino in dead {
            self.inodes.remove(&ino);
            self.dirs.remove(&ino);
            self.quotas.remove(&ino);
        }
    }

    /// Restores the invariants: deleted inodes hold only their tombstone and own no entries or
    /// quota usage, and nothing collectable at the floor remains.
    pub(crate) fn normalize(&mut self) {
        for rec in self.inodes.values_mut() {
            rec.normalize();
        }
        let deleted: Vec<Ino> = self
            .inodes
            .iter()
            .filter(|(_, r)| r.deleted().is_some())
            .map(|(i, _)| *i)
            .collect();
        for ino in deleted {
            self.dirs.remove(&ino);
            self.quotas.remove(&ino);
        }
        self.collect_garbage(self.floor);
    }
}

impl Records for Namespace {
    fn inode(&mut self, ino: Ino) -> Option<&Inode> {
        self.record(ino)
    }

    fn inode_mut(&mut self, ino: Ino) -> &mut Inode {
        self.inodes.entry(ino).or_default()
    }

    fn dir_context(&mut self, dir: Ino) -> &CausalContext {
        self.dirs.get(&dir).map_or(&EMPTY_CONTEXT, |d| d.context())
    }

    fn entry_tags(&mut self, dir: Ino, entry: &Entry) -> Vec<Tag> {
        self.dirs
            .get(&dir)
            .map(|d| d.tags(entry).to_vec())
            .unwrap_or_default()
    }

    fn add_entry(&mut self, dir: Ino, entry: &Entry, tag: Tag, supersedes: &[Dot]) {
        self.dirs
            .entry(dir)
            .or_default()
            .apply_add(entry, tag, supersedes);
    }

    fn remove_entry(&mut self, dir: Ino, entry: &Entry, dots: &[Dot]) {
        self.dirs.entry(dir).or_default().apply_remove(entry, dots);
    }

    fn drop_dir(&mut self, dir: Ino) {
        self.dirs.remove(&dir);
    }

    fn quota(&mut self, root: Ino) -> Option<&QuotaUsage> {
        self.quotas.get(&root)
    }

    fn quota_mut(&mut self, root: Ino) -> &mut QuotaUsage {
        self.quotas.entry(root).or_default()
    }

    fn drop_quota(&mut self, root: Ino) {
        self.quotas.remove(&root);
    }

    fn floor(&mut self) -> Timestamp {
        self.floor
    }
}

impl Crdt for Namespace {
    fn join(&mut self, other: &Self) {
        for (ino, rec) in &other.inodes {
            self.inodes.entry(*ino).or_default().join(rec);
        }
        for (ino, dir) in &other.dirs {
            self.dirs.entry(*ino).or_default().join(dir);
        }
        for (ino, usage) in &other.quotas {
            self.quotas.entry(*ino).or_default().join(usage);
        }
        self.floor = self.floor.max(other.floor);
        self.normalize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::NodeId;
    use crate::model::{Attr, DirectoryView, FileKind, FileTime, Name, NewInode};

    fn ts(ms: u64, node: u64) -> Timestamp {
        Timestamp::new(ms, 0, NodeId(node))
    }

    fn file() -> NewInode {
        let time = FileTime::new(1, 0).unwrap();
        NewInode {
            kind: FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            rdev: 0,
            time,
            nlink: 1,
            symlink: None,
        }
    }

    /// Two replicas that both hold inode 10, created by node 1.
    fn pair() -> (Namespace, Namespace) {
        let mut a = Namespace::new();
        let mut e = a.edit(ts(1, 1), Uuid::from_u128(1)).unwrap();
        e.create(Ino(10), file());
        let d = e.finish();
        let mut b = Namespace::new();
        b.apply(&d);
        (a, b)
    }

    #[test]
    fn concurrent_chmod_and_chown_both_take_effect() {
        let (mut a, mut b) = pair();
        let mut e = a.edit(ts(5, 1), Uuid::from_u128(2)).unwrap();
        e.set_attrs(Ino(10), vec![Attr::Mode(0o600)]);
        let chmod = e.finish();
        let mut e = b.edit(ts(4, 2), Uuid::from_u128(3)).unwrap();
        e.set_attrs(Ino(10), vec![Attr::Uid(1000)]);
        let chown = e.finish();
        a.apply(&chown);
        b.apply(&chmod);
        assert_eq!(a, b);
        let i = a.inode(Ino(10)).unwrap();
        assert_eq!((i.mode(), i.uid()), (0o600, 1000));
    }

    #[test]
    fn writes_concurrent_with_or_after_a_delete_are_ignored() {
        let (mut a, mut b) = pair();
        let mut e = a.edit(ts(5, 1), Uuid::from_u128(2)).unwrap();
        e.delete(Ino(10));
        let delete = e.finish();
        let mut e = b.edit(ts(9, 2), Uuid::from_u128(3)).unwrap();
        e.set_attrs(Ino(10), vec![Attr::Size(4096)]);
        e.set_xattr(Ino(10), b"user.a".to_vec().into(), Some(b"1".to_vec().into()));
        let later_write = e.finish();
        a.apply(&later_write);
        b.apply(&delete);
        assert_eq!(a, b);
        assert!(a.inode(Ino(10)).is_none());
        assert_eq!(
            a.record(Ino(10)).unwrap().size(),
            0,
            "a tombstone keeps nothing but its stamp"
        );
    }

    #[test]
    fn entries_of_a_deleted_directory_are_dropped_and_later_adds_ignored() {
        let mut a = Namespace::new();
        let mut e = a.edit(ts(1, 1), Uuid::from_u128(1)).unwrap();
        e.create(
            Ino(20),
            NewInode {
                kind: FileKind::Dir,
                nlink: 2,
                ..file()
            },
        );
        e.delete(Ino(20));
        e.link(Ino(20), Name::try_from("x").unwrap(), Ino(21));
        e.finish();
        assert!(
            a.dir(Ino(20))
                .is_none_or(|d| d.lookup(&Name::try_from("x").unwrap()).is_none())
        );
    }

    #[test]
    fn an_edit_at_or_below_the_floor_is_refused() {
        let (mut a, _) = pair();
        a.collect_garbage(ts(7, 0));
        assert_eq!(
            a.edit(ts(7, 0), Uuid::from_u128(9)).err(),
            Some(StaleStamp {
                hlc: ts(7, 0),
                floor: ts(7, 0)
            })
        );
        assert!(a.edit(ts(8, 1), Uuid::from_u128(9)).is_ok());
    }
}
