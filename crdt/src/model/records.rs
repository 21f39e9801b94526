//! Where a namespace's records live.
//!
//! Deltas are applied ([`crate::model::apply`]) and made ([`crate::model::Edit`]) against the
//! [`Records`] trait, so the in-memory [`crate::model::Namespace`] and a server's on-disk store
//! run exactly the same code. A store implements the read-only, fallible [`RecordsView`]; an
//! [`Overlay`] on top of it caches what is read, takes the changes, and hands them back as
//! [`Changes`] for the store to write in one transaction.
//!
//! Records are keyed per element, never per directory: an entry `(dir, name, inode)` has its
//! own tags, and a directory's causal context is its own record, so a create in a directory of
//! a million entries touches a handful of records.

use std::collections::{HashMap, HashSet};

use crate::dot::{CausalContext, Dot};
use crate::hlc::Timestamp;
use crate::model::directory::Entry;
use crate::model::inode::{Ino, Inode};
use crate::model::quota::QuotaUsage;
use crate::orset::{Tag, record_add, record_remove, tags_after_add, tags_after_remove};

/// Mutable access to a namespace's records. Reads take `&mut self` so that an implementation
/// may load and cache records on first use.
pub trait Records {
    /// The record of `ino`, if any.
    fn inode(&mut self, ino: Ino) -> Option<&Inode>;
    /// The record of `ino`, created empty if absent.
    fn inode_mut(&mut self, ino: Ino) -> &mut Inode;
    /// The causal context of directory `dir`'s entry set.
    fn dir_context(&mut self, dir: Ino) -> &CausalContext;
    /// The live adds of `entry` in directory `dir`.
    fn entry_tags(&mut self, dir: Ino, entry: &Entry) -> Vec<Tag>;
    /// Joins the add of `entry` with `tag` into `dir`, superseding `supersedes`.
    fn add_entry(&mut self, dir: Ino, entry: &Entry, tag: Tag, supersedes: &[Dot]);
    /// Joins the removal of the adds `dots` of `entry` from `dir`.
    fn remove_entry(&mut self, dir: Ino, entry: &Entry, dots: &[Dot]);
    /// Drops every entry of `dir` and its context (the directory was deleted).
    fn drop_dir(&mut self, dir: Ino);
    /// The quota usage under `root`, if any.
    fn quota(&mut self, root: Ino) -> Option<&QuotaUsage>;
    /// The quota usage under `root`, created empty if absent.
    fn quota_mut(&mut self, root: Ino) -> &mut QuotaUsage;
    /// Drops the quota usage under `root` (the directory was deleted).
    fn drop_quota(&mut self, root: Ino);
    /// The garbage-collection floor: deltas at or below it are duplicates.
    fn floor(&mut self) -> Timestamp;
}

/// Read-only, fallible access to stored records: what a store provides.
pub trait RecordsView {
    /// A storage or decoding failure.
    type Error;
    /// The record of `ino`.
    fn inode(&self, ino: Ino) -> Result<Option<Inode>, Self::Error>;
    /// The causal context of `dir` (empty if none is stored).
    fn dir_context(&self, dir: Ino) -> Result<CausalContext, Self::Error>;
    /// The live adds of `entry` in `dir` (empty if none are stored).
    fn entry_tags(&self, dir: Ino, entry: &Entry) -> Result<Vec<Tag>, Self::Error>;
    /// The quota usage under `root`.
    fn quota(&self, root: Ino) -> Result<Option<QuotaUsage>, Self::Error>;
    /// The garbage-collection floor.
    fn floor(&self) -> Result<Timestamp, Self::Error>;
}

/// What an [`Overlay`] changed, for a store to write. Apply in order: drop the dropped
/// directories' entries and contexts, then write the rest.
#[derive(Debug, Default)]
pub struct Changes {
    /// Inode records to write.
    pub inodes: Vec<(Ino, Inode)>,
    /// Directories whose entries and context must be deleted.
    pub dropped_dirs: Vec<Ino>,
    /// Entry records to write; empty tags mean delete the record.
    pub entries: Vec<(Ino, Entry, Vec<Tag>)>,
    /// Directory contexts to write.
    pub contexts: Vec<(Ino, CausalContext)>,
    /// Quota records to write, or to delete (`None`).
    pub quotas: Vec<(Ino, Option<QuotaUsage>)>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.inodes.is_empty()
            && self.dropped_dirs.is_empty()
            && self.entries.is_empty()
            && self.contexts.is_empty()
            && self.quotas.is_empty()
    }
}

/// A write-back cache over a [`RecordsView`] that implements [`Records`].
///
/// The first read error is kept and every later read returns an empty record; the error comes
/// out of [`Overlay::into_changes`], and the caller must then discard all changes.
#[derive(Debug)]
pub struct Overlay<'v, V: RecordsView> {
    view: &'v V,
    inodes: HashMap<Ino, Inode>,
    dirty_inodes: HashSet<Ino>,
    contexts: HashMap<Ino, CausalContext>,
    dirty_contexts: HashSet<Ino>,
    entries: HashMap<(Ino, Entry), Vec<Tag>>,
    dirty_entries: HashSet<(Ino, Entry)>,
    dropped_dirs: HashSet<Ino>,
    quotas: HashMap<Ino, Option<QuotaUsage>>,
    dirty_quotas: HashSet<Ino>,
    floor: Option<Timestamp>,
    error: Option<V::Error>,
}

impl<'v, V: RecordsView> Overlay<'v, V> {
    /// An overlay with nothing read yet.
    pub fn new(view: &'v V) -> Self {
        Overlay {
            view,
            inodes: HashMap::new(),
            dirty_inodes: HashSet::new(),
            contexts: HashMap::new(),
            dirty_contexts: HashSet::new(),
            entries: HashMap::new(),
            dirty_entries: HashSet::new(),
            dropped_dirs: HashSet::new(),
            quotas: HashMap::new(),
            dirty_quotas: HashSet::new(),
            floor: None,
            error: None,
        }
    }

    /// The changes made, or the first read error (then nothing may be written).
    pub fn into_changes(self) -> Result<Changes, V::Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut inodes = self.inodes;
        let mut contexts = self.contexts;
        let mut entries = self.entries;
        let mut quotas = self.quotas;
        Ok(Changes {
            inodes: self
                .dirty_inodes
                .into_iter()
                .filter_map(|i| inodes.remove_entry(&i))
                .collect(),
            dropped_dirs: self.dropped_dirs.into_iter().collect(),
            entries: self
                .dirty_entries
                .into_iter()
                .filter_map(|k| entries.remove_entry(&k).map(|((d, e), t)| (d, e, t)))
                .collect(),
            contexts: self
                .dirty_contexts
                .into_iter()
                .filter_map(|d| contexts.remove_entry(&d))
                .collect(),
            quotas: self
                .dirty_quotas
                .into_iter()
                .filter_map(|r| quotas.remove_entry(&r))
                .collect(),
        })
    }

    fn read<T: Default>(&mut self, r: Result<T, V::Error>) -> T {
        r.unwrap_or_else(|e| {
            self.error.get_or_insert(e);
            T::default()
        })
    }

    fn load_inode(&mut self, ino: Ino) {
        if !self.inodes.contains_key(&ino) {
            let found = self.view.inode(ino);
            if let Some(rec) = self.read(found) {
                self.inodes.insert(ino, rec);
            }
        }
    }

    fn load_context(&mut self, dir: Ino) {
        if !self.contexts.contains_key(&dir) {
            let ctx = if self.dropped_dirs.contains(&dir) {
                CausalContext::new()
            } else {
                let found = self.view.dir_context(dir);
                self.read(found)
            };
            self.contexts.insert(dir, ctx);
        }
    }

    fn load_entry(&mut self, dir: Ino, entry: &Entry) -> &mut Vec<Tag> {
        let key = (dir, entry.clone());
        if !self.entries.contains_key(&key) {
            let tags = if self.dropped_dirs.contains(&dir) {
                Vec::new()
            } else {
                let found = self.view.entry_tags(dir, entry);
                self.read(found)
            };
            self.entries.insert(key.clone(), tags);
        }
        self.entries.get_mut(&key).expect("inserted above")
    }

    fn load_quota(&mut self, root: Ino) {
        if !self.quotas.contains_key(&root) {
            let found = self.view.quota(root);
            let q = self.read(found);
            self.quotas.insert(root, q);
        }
    }
}

impl<V: RecordsView> Records for Overlay<'_, V> {
    fn inode(&mut self, ino: Ino) -> Option<&Inode> {
        self.load_inode(ino);
        self.inodes.get(&ino)
    }

    fn inode_mut(&mut self, ino: Ino) -> &mut Inode {
        self.load_inode(ino);
        self.dirty_inodes.insert(ino);
        self.inodes.entry(ino).or_default()
    }

    fn dir_context(&mut self, dir: Ino) -> &CausalContext {
        self.load_context(dir);
        &self.contexts[&dir]
    }

    fn entry_tags(&mut self, dir: Ino, entry: &Entry) -> Vec<Tag> {
        self.load_entry(dir, entry).clone()
    }

    fn add_entry(&mut self, dir: Ino, entry: &Entry, tag: Tag, supersedes: &[Dot]) {
        self.load_context(dir);
        let current = std::mem::take(self.load_entry(dir, entry));
        let ctx = self.contexts.get_mut(&dir).expect("loaded above");
        let tags = tags_after_add(&current, ctx, tag, supersedes);
        record_add(ctx, tag, supersedes);
        *self.load_entry(dir, entry) = tags;
        self.dirty_entries.insert((dir, entry.clone()));
        self.dirty_contexts.insert(dir);
    }

    fn remove_entry(&mut self, dir: Ino, entry: &Entry, dots: &[Dot]) {
        self.load_context(dir);
        let tags = tags_after_remove(self.load_entry(dir, entry), dots);
        *self.load_entry(dir, entry) = tags;
        record_remove(self.contexts.get_mut(&dir).expect("loaded above"), dots);
        self.dirty_entries.insert((dir, entry.clone()));
        self.dirty_contexts.insert(dir);
    }

    fn drop_dir(&mut self, dir: Ino) {
        self.dropped_dirs.insert(dir);
        self.contexts.remove(&dir);
        self.dirty_contexts.remove(&dir);
        self.entries.retain(|(d, _), _| *d != dir);
        self.dirty_entries.retain(|(d, _)| *d != dir);
    }

    fn quota(&mut self, root: Ino) -> Option<&QuotaUsage> {
        self.load_quota(root);
        self.quotas.get(&root).and_then(Option::as_ref)
    }

    fn quota_mut(&mut self, root: Ino) -> &mut QuotaUsage {
        self.load_quota(root);
        self.dirty_quotas.insert(root);
        self.quotas
            .entry(root)
            .or_default()
            .get_or_insert_with(QuotaUsage::default)
    }

    fn drop_quota(&mut self, root: Ino) {
        self.quotas.insert(root, None);
        self.dirty_quotas.insert(root);
    }

    fn floor(&mut self) -> Timestamp {
        if self.floor.is_none() {
            let found = self.view.floor();
            self.floor = Some(self.read(found));
        }
        self.floor.unwrap_or_default()
    }
}
