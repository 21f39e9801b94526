//! One mutation in progress: who asks and when, the ids it allocates, the handles it opens or
//! closes, and how its namespace changes (one [`Edit`] over an [`Overlay`]) become [`Effects`].
//!
//! Operations read and check first, then call [`Tx::commit`] once with the changes; a POSIX
//! failure drops the `Tx`, so nothing it allocated or planned is kept.

use crdt::Timestamp;
use crdt::model::{Attr as RecAttr, Edit, FileTime, Ino, Overlay};
use proto::Errno;
use proto::fs::{Attr, Cred, QuotaLimit};
use shardmap::{Bucket, IdParts};
use uuid::Uuid;

use crate::error::StoreError;
use crate::fs::command::{Command, Effects, HandleChange, ShardCtx};
use crate::fs::node::{self, Node};
use crate::fs::ops::quota::{self, Roots};
use crate::fs::outcome::OpResult;
use crate::fs::state::{FsState, HandleInfo, HeldLock, ShardMeta};

/// The edit an operation makes its namespace changes through.
pub type Ed<'e, 's, S> = Edit<'e, Overlay<'s, S>>;

/// A mutation being executed.
#[derive(Debug)]
pub struct Tx<'s, S> {
    /// The shard's state before the command.
    pub state: &'s S,
    /// Where the command runs.
    pub ctx: ShardCtx<'s>,
    /// Who asks.
    pub cred: &'s Cred,
    /// The asking client (owner of the handles it opens).
    pub client: u64,
    /// The command's time, for every POSIX timestamp it sets.
    pub now: FileTime,
    /// Live chunkservers, best placement first (from the proposing leader).
    pub placement: &'s [(u64, String)],
    stamp: Timestamp,
    delta_id: Uuid,
    meta: ShardMeta,
    meta_before: ShardMeta,
    handles: Vec<HandleChange>,
    locks: Vec<(u64, Vec<HeldLock>)>,
    copies: Vec<(u64, u64, u32)>,
    owners: Vec<(u64, u64, u64)>,
    freed: Vec<u64>,
    charges: Vec<(Ino, i64, i64)>,
    limits: Vec<(u64, Option<QuotaLimit>)>,
}

/// What dropping one name of an inode does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// No name and no open handle is left: the inode goes.
    Delete(Ino),
    /// It lives on (other names, or open handles) with `links` fewer links.
    Keep {
        /// The inode.
        ino: Ino,
        /// Links the dropped name stood for.
        links: i64,
        /// Its new parent, when the dropped name was in its parent and other names remain
        /// (see [`quota::anchor`]).
        parent: Option<Ino>,
    },
}

impl Fate {
    /// Makes the change; a surviving inode's ctime becomes `now`.
    pub fn apply<S: FsState>(self, edit: &mut Ed<'_, '_, S>, now: FileTime) {
        match self {
            Fate::Delete(ino) => edit.delete(ino),
            Fate::Keep { ino, links, parent } => {
                edit.add_links(ino, -links);
                let mut attrs = vec![RecAttr::Ctime(now)];
                attrs.extend(parent.map(RecAttr::Parent));
                edit.set_attrs(ino, attrs);
            }
        }
    }
}

impl<'s, S: FsState> Tx<'s, S> {
    /// Starts executing `cmd`.
    pub fn new(state: &'s S, ctx: ShardCtx<'s>, cmd: &'s Command) -> Result<Self, StoreError> {
        Self::start(
            state,
            ctx,
            &cmd.cred,
            cmd.client,
            cmd.now,
            cmd.stamp,
            cmd.delta_id,
        )
        .map(|tx| Tx {
            placement: &cmd.placement,
            ..tx
        })
    }

    /// Starts a change with explicit parameters (the bootstrap has no command).
    pub fn start(
        state: &'s S,
        ctx: ShardCtx<'s>,
        cred: &'s Cred,
        client: u64,
        now: FileTime,
        stamp: Timestamp,
        delta_id: Uuid,
    ) -> Result<Self, StoreError> {
        let meta = state.meta()?;
        Ok(Tx {
            state,
            ctx,
            cred,
            client,
            now,
            placement: &[],
            stamp,
            delta_id,
            meta_before: meta.clone(),
            meta,
            handles: Vec::new(),
            locks: Vec::new(),
            copies: Vec::new(),
            owners: Vec::new(),
            freed: Vec::new(),
            charges: Vec::new(),
            limits: Vec::new(),
        })
    }

    /// Loads live inode `ino` (see [`node::load`]).
    pub fn node(&self, ino: u64) -> OpResult<Node> {
        node::load(self.state, self.ctx, ino)
    }

    /// Loads directory `ino` (see [`node::load_dir`]).
    pub fn dir(&self, ino: u64) -> OpResult<Node> {
        node::load_dir(self.state, self.ctx, ino)
    }

    /// Allocates an inode id in `bucket` and counts the inode as live; `ENOSPC` when the
    /// shard's id space is exhausted.
    pub fn new_ino(&mut self, bucket: Bucket) -> OpResult<Ino> {
        let id = compose(&mut self.meta.next_ino, bucket)?;
        self.count_created();
        Ok(Ino(id))
    }

    /// Allocates a chunk id in `bucket`.
    pub fn new_chunk(&mut self, bucket: Bucket) -> OpResult<u64> {
        compose(&mut self.meta.next_chunk, bucket)
    }

    /// Opens a handle on `ino` for the asking client (`ENOSPC` if handle numbers ran out).
    pub fn open_handle(&mut self, ino: Ino, read: bool, write: bool) -> OpResult<u64> {
        let handle = self.meta.next_handle;
        self.meta.next_handle = handle.checked_add(1).ok_or(Errno::ENOSPC)?;
        let info = HandleInfo {
            ino: ino.0,
            client: self.client,
            read,
            write,
        };
        self.handles.push(HandleChange::Open { handle, info });
        Ok(handle)
    }

    /// Closes the asking client's `handle` on `ino`.
    pub fn close_handle(&mut self, handle: u64, ino: Ino) {
        self.handles.push(HandleChange::Close {
            client: self.client,
            handle,
            ino: ino.0,
        });
    }

    /// Records that the chunks of `node` in slots at or past `size` (all of them for 0) are no
    /// longer referred to.
    pub fn free_chunks(&mut self, node: &Node, size: u64) {
        let keep = size.div_ceil(proto::fs::CHUNK_SIZE);
        self.freed.extend(
            node.rec
                .chunks()
                .iter()
                .filter(|(i, _)| **i >= keep)
                .map(|(_, c)| c.id),
        );
    }

    /// Records the file slot a new chunk belongs to.
    pub fn place_chunk(&mut self, chunk: u64, ino: Ino, index: u64) {
        self.owners.push((chunk, ino.0, index));
    }

    /// Records that `servers` hold `chunk` at `version`.
    pub fn record_copies(&mut self, chunk: u64, version: u32, servers: &[u64]) {
        self.copies.extend(servers.iter().map(|s| (chunk, *s, version)));
    }

    /// Replaces the lock list of `ino`.
    pub fn set_locks(&mut self, ino: Ino, held: Vec<HeldLock>) {
        self.locks.push((ino.0, held));
    }

    /// Checks that `handle` is the asking client's, open on `ino` for writing (`EBADF`).
    pub fn check_write_handle(&self, handle: u64, ino: Ino) -> OpResult<()> {
        let info = self.state.handle(self.client, handle)?;
        if info.is_none_or(|h| h.ino != ino.0 || !h.write) {
            return Err(Errno::EBADF.into());
        }
        Ok(())
    }

    /// What dropping a name in `dir` standing for `links` links of `victim` does: delete it
    /// when no link and no open handle is left (and stop counting it as live). Its last link
    /// gone, it no longer counts in its quota roots (nor does a directory stay a root).
    pub fn drop_links(&mut self, victim: &Node, links: u64, dir: &Node) -> OpResult<Fate> {
        let left = victim.rec.nlink().saturating_sub(links);
        if left == 0 {
            let roots = quota::roots_of(self.state, self.ctx, victim)?;
            self.charge(&roots, -quota::bytes_of(victim), -1)?;
            if victim.is_dir() && self.state.quota_limit(victim.ino)?.is_some() {
                self.set_limit(victim.ino, None);
            }
            if self.state.open_handles(victim.ino)? == 0 {
                self.count_deleted();
                self.free_chunks(victim, 0);
                return Ok(Fate::Delete(victim.ino));
            }
        }
        let parent = (left > 0 && !victim.is_dir() && victim.rec.parent() == dir.ino)
            .then(|| quota::anchor(self.state, self.ctx, dir))
            .transpose()?;
        Ok(Fate::Keep {
            ino: victim.ino,
            links: links as i64,
            parent,
        })
    }

    /// Charges `bytes` and `inodes` (either may be negative) to every root of `roots` when the
    /// command commits: `EDQUOT` if an increase would take a root past its limit.
    pub fn charge(&mut self, roots: &Roots, bytes: i64, inodes: i64) -> OpResult<()> {
        for (root, limit) in roots {
            let (used_bytes, used_inodes) = self.usage(*root)?;
            if quota::exceeds(limit.bytes, used_bytes, bytes)
                || quota::exceeds(limit.inodes, used_inodes, inodes)
            {
                return Err(Errno::EDQUOT.into());
            }
        }
        if bytes != 0 || inodes != 0 {
            self.charges
                .extend(roots.iter().map(|(root, _)| (*root, bytes, inodes)));
        }
        Ok(())
    }

    /// What quota root `root` uses, with this command's charges so far: (bytes, inodes).
    pub fn usage(&self, root: Ino) -> OpResult<(i64, i64)> {
        let stored = self.state.quota(root)?;
        let mut used = stored.map_or((0, 0), |u| (u.bytes.value(), u.inodes.value()));
        for (r, b, i) in &self.charges {
            if *r == root {
                used = (used.0.saturating_add(*b), used.1.saturating_add(*i));
            }
        }
        Ok(used)
    }

    /// Makes `dir` a quota root with `limit`, or with `None` stops it being one.
    pub fn set_limit(&mut self, dir: Ino, limit: Option<QuotaLimit>) {
        self.limits.push((dir.0, limit));
    }

    /// Counts one more live inode: the caller creates it.
    pub fn count_created(&mut self) {
        self.meta.live_inodes = self.meta.live_inodes.saturating_add(1);
    }

    /// Counts one live inode less: the caller deletes it.
    pub fn count_deleted(&mut self) {
        self.meta.live_inodes = self.meta.live_inodes.saturating_sub(1);
    }

    /// [`Tx::commit`], returning the attributes of `ino` after the change.
    pub fn commit_attr(self, ino: Ino, f: impl FnOnce(&mut Ed<'_, 's, S>)) -> OpResult<(Effects, Attr)> {
        let (effects, attr) = self.commit(|edit| {
            f(edit);
            node::attr_in(edit.records(), ino)
        })?;
        // The operations only ask for inodes their edit keeps live; should one be gone after
        // all, the caller gets ENOENT and nothing is applied.
        Ok((effects, attr.ok_or(Errno::ENOENT)?))
    }

    /// The effects of a command that changes no namespace record.
    pub fn finish(self) -> Effects {
        debug_assert!(self.charges.is_empty(), "quota charges are made by a commit");
        let meta = (self.meta != self.meta_before).then_some(self.meta);
        Effects {
            meta,
            handles: self.handles,
            locks: self.locks,
            copies: self.copies,
            owners: self.owners,
            freed: self.freed,
            limits: self.limits,
            ..Effects::default()
        }
    }

    /// Makes the namespace changes `f` describes in one edit, and returns the effects with
    /// what `f` returned (read from the edited records, e.g. the new attributes).
    pub fn commit<T>(mut self, f: impl FnOnce(&mut Ed<'_, 's, S>) -> T) -> Result<(Effects, T), StoreError> {
        let charges = std::mem::take(&mut self.charges);
        let mut overlay = Overlay::new(self.state);
        let mut edit =
            Edit::new(&mut overlay, self.stamp, self.delta_id).map_err(|e| StoreError::Corrupt {
                // The apply layer raises stamps above every applied one, and the floor never
                // passes an applied stamp: a stale stamp means the shard's state is inconsistent.
                what: "command stamp",
                reason: e.to_string(),
            })?;
        for (root, bytes, inodes) in charges {
            edit.charge_quota(root, bytes, inodes);
        }
        let out = f(&mut edit);
        let delta = if edit.is_empty() {
            None
        } else {
            Some(edit.finish())
        };
        let records = overlay.into_changes()?;
        let mut effects = self.finish();
        effects.records = records;
        effects.delta = delta;
        Ok((effects, out))
    }
}

/// The id for `counter` in `bucket`, advancing the counter.
fn compose(counter: &mut u64, bucket: Bucket) -> OpResult<u64> {
    let id = IdParts {
        counter: *counter,
        allocator: 0,
        bucket,
    }
    .compose()
    .map_err(|_| Errno::ENOSPC)?;
    *counter += 1;
    Ok(id)
}
