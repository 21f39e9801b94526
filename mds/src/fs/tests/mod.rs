//! Unit tests of the state machine over the in-memory state (tier: unit).
//!
//! [`Fs`] runs commands the way the apply layer does: execute on the state, then write the
//! effects. Every command it runs is also checked for the rule that a failure changes
//! nothing.

mod atime;
mod create;
mod determinism;
mod goal;
mod locks;
mod open;
mod quota;
mod reads;
mod remove;
mod rename;
mod session;
mod setattr;
mod xattr;

use crdt::model::{Delta, Edit, FileKind, FileTime, Ino, Overlay};
use crdt::{NodeId, Timestamp};
use proto::fs::{Attr, Cred, DirEntry, FsOp, SetAttr};
use proto::{Errno, FsReply};
use shardmap::{Bucket, IdParts, ShardId, ShardTable};
use uuid::Uuid;

use crate::fs::command::{Command, Effects, ShardCtx};
use crate::fs::mem::MemState;
use crate::fs::{bootstrap_root, execute, read};

/// The root directory's number.
pub(super) const ROOT: u64 = Ino::ROOT.0;

/// The chunkservers every command's placement lists, best first.
pub(super) const CHUNKSERVERS: &[(u64, &str)] = &[(1, "cs1:9420"), (2, "cs2:9420"), (3, "cs3:9420")];

/// A shard (shard 0 of two, holding the root) and the commands run on it.
pub(super) struct Fs {
    pub state: MemState,
    table: ShardTable,
    tick: u64,
    /// The client commands come from.
    pub client: u64,
    /// The deltas made so far, in order.
    pub deltas: Vec<Delta>,
}

pub(super) fn root() -> Cred {
    Cred::root()
}

pub(super) fn user(uid: u32, gid: u32, groups: &[u32]) -> Cred {
    Cred {
        uid,
        gid,
        groups: groups.to_vec(),
    }
}

/// An inode number owned by the other shard.
pub(super) fn foreign_ino() -> u64 {
    IdParts {
        counter: 1,
        allocator: 0,
        bucket: Bucket(4000),
    }
    .compose()
    .unwrap()
}

pub(super) fn attr(r: Result<FsReply, Errno>) -> Result<Attr, Errno> {
    match r? {
        FsReply::Attr(a) | FsReply::Opened { attr: a, .. } => Ok(a),
        other => panic!("expected attributes, got {other:?}"),
    }
}

pub(super) fn done(r: Result<FsReply, Errno>) -> Result<(), Errno> {
    match r? {
        FsReply::Done => Ok(()),
        other => panic!("expected done, got {other:?}"),
    }
}

pub(super) fn time(secs: i64) -> FileTime {
    FileTime::new(secs, 0).unwrap()
}

impl Fs {
    /// A shard with a bootstrapped root.
    pub fn new() -> Fs {
        let mut fs = Fs {
            state: MemState::default(),
            table: ShardTable::uniform(2, &[1], 1).unwrap(),
            tick: 1,
            client: 7,
            deltas: Vec::new(),
        };
        let effects = bootstrap_root(&fs.state, fs.ctx(), fs.stamp(1), fs.now(), Uuid::from_u128(1)).unwrap();
        fs.state.apply(effects);
        for (id, addr) in CHUNKSERVERS {
            fs.state.addrs.insert(*id, addr.to_string());
        }
        fs
    }

    pub fn ctx(&self) -> ShardCtx<'_> {
        ShardCtx {
            shard: ShardId(0),
            table: &self.table,
        }
    }

    fn stamp(&self, node: u64) -> Timestamp {
        Timestamp::new(self.tick * 1000, 0, NodeId(node))
    }

    /// The time of the last command.
    pub fn now(&self) -> FileTime {
        time(self.tick as i64 * 10)
    }

    /// The command `op` from `cred` as the next log entry.
    pub fn command(&mut self, cred: &Cred, op: FsOp) -> Command {
        self.tick += 1;
        Command {
            client: self.client,
            seq: self.tick,
            acked_below: 0,
            cred: cred.clone(),
            op,
            stamp: self.stamp(1),
            now: self.now(),
            delta_id: Uuid::from_u128(u128::from(self.tick)),
            placement: CHUNKSERVERS
                .iter()
                .map(|(id, addr)| (*id, addr.to_string()))
                .collect(),
        }
    }

    /// Executes `op` without writing its effects.
    pub fn dry_run(&mut self, cred: &Cred, op: FsOp) -> (Effects, Result<FsReply, Errno>) {
        let cmd = self.command(cred, op);
        execute(&self.state, self.ctx(), &cmd).unwrap()
    }

    /// Executes `op` and writes its effects.
    pub fn exec(&mut self, cred: &Cred, op: FsOp) -> Result<FsReply, Errno> {
        let (effects, reply) = self.dry_run(cred, op);
        if reply.is_err() {
            assert!(
                effects.records.is_empty()
                    && effects.meta.is_none()
                    && effects.handles.is_empty()
                    && effects.limits.is_empty()
                    && effects.delta.is_none(),
                "a failed command changes nothing: {effects:?}"
            );
        }
        self.deltas.extend(effects.delta.clone());
        self.state.apply(effects);
        reply
    }

    /// Serves read-only `op`.
    pub fn read(&self, cred: &Cred, op: FsOp) -> Result<FsReply, Errno> {
        read(&self.state, self.ctx(), self.client, cred, &op).unwrap()
    }

    /// Makes namespace changes directly, as a replica `node` would (to build conflicts).
    pub fn raw(&mut self, node: u64, f: impl FnOnce(&mut Edit<'_, Overlay<'_, MemState>>)) {
        self.tick += 1;
        let stamp = self.stamp(node);
        let mut overlay = Overlay::new(&self.state);
        let mut edit = Edit::new(&mut overlay, stamp, Uuid::from_u128(u128::from(self.tick))).unwrap();
        f(&mut edit);
        let changes = overlay.into_changes().unwrap();
        self.state.write(changes);
    }

    pub fn mkdir(&mut self, cred: &Cred, parent: u64, name: &str, mode: u32) -> Result<Attr, Errno> {
        attr(self.exec(
            cred,
            FsOp::MkDir {
                parent,
                name: name.into(),
                mode,
            },
        ))
    }

    pub fn mknod(&mut self, cred: &Cred, parent: u64, name: &str, mode: u32) -> Result<Attr, Errno> {
        let op = FsOp::MkNod {
            parent,
            name: name.into(),
            kind: FileKind::File,
            mode,
            rdev: 0,
        };
        attr(self.exec(cred, op))
    }

    /// Creates and opens `name` for writing; returns the attributes and the handle.
    pub fn create(&mut self, cred: &Cred, parent: u64, name: &str, mode: u32) -> Result<(Attr, u64), Errno> {
        let op = FsOp::Create {
            parent,
            name: name.into(),
            mode,
            exclusive: true,
            read: false,
            write: true,
        };
        match self.exec(cred, op)? {
            FsReply::Opened { attr, handle } => Ok((attr, handle)),
            other => panic!("expected an open file, got {other:?}"),
        }
    }

    pub fn open(&mut self, cred: &Cred, ino: u64, read: bool, write: bool) -> Result<u64, Errno> {
        match self.exec(
            cred,
            FsOp::Open {
                ino,
                read,
                write,
                truncate: false,
            },
        )? {
            FsReply::Opened { handle, .. } => Ok(handle),
            other => panic!("expected an open file, got {other:?}"),
        }
    }

    pub fn release(&mut self, ino: u64, handle: u64) -> Result<(), Errno> {
        done(self.exec(&root(), FsOp::Release { ino, handle }))
    }

    pub fn unlink(&mut self, cred: &Cred, parent: u64, name: &str) -> Result<(), Errno> {
        done(self.exec(
            cred,
            FsOp::Unlink {
                parent,
                name: name.into(),
            },
        ))
    }

    pub fn rmdir(&mut self, cred: &Cred, parent: u64, name: &str) -> Result<(), Errno> {
        done(self.exec(
            cred,
            FsOp::RmDir {
                parent,
                name: name.into(),
            },
        ))
    }

    pub fn link(&mut self, cred: &Cred, ino: u64, parent: u64, name: &str) -> Result<Attr, Errno> {
        attr(self.exec(
            cred,
            FsOp::Link {
                ino,
                parent,
                name: name.into(),
            },
        ))
    }

    pub fn rename(
        &mut self,
        cred: &Cred,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        flags: u32,
    ) -> Result<(), Errno> {
        let op = FsOp::Rename {
            parent,
            name: name.into(),
            new_parent,
            new_name: new_name.into(),
            flags,
        };
        done(self.exec(cred, op))
    }

    pub fn setattr(&mut self, cred: &Cred, ino: u64, set: SetAttr) -> Result<Attr, Errno> {
        attr(self.exec(cred, FsOp::SetAttr { ino, set }))
    }

    pub fn lookup(&self, cred: &Cred, parent: u64, name: &str) -> Result<Attr, Errno> {
        attr(self.read(
            cred,
            FsOp::Lookup {
                parent,
                name: name.into(),
            },
        ))
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr, Errno> {
        attr(self.read(&root(), FsOp::GetAttr { ino }))
    }

    /// One page of `dir`.
    pub fn readdir(
        &self,
        cred: &Cred,
        dir: u64,
        cookie: Option<Vec<u8>>,
        max: u32,
    ) -> Result<(Vec<DirEntry>, Option<Vec<u8>>), Errno> {
        match self.read(
            cred,
            FsOp::ReadDir {
                dir,
                cookie,
                max,
                plus: false,
            },
        )? {
            FsReply::Dir { entries, cookie } => Ok((entries, cookie)),
            other => panic!("expected a listing, got {other:?}"),
        }
    }

    /// Every name in `dir`, dots included, read in pages of `max`.
    pub fn names(&self, dir: u64, max: u32) -> Vec<String> {
        let mut cookie = None;
        let mut out = Vec::new();
        loop {
            let (entries, next) = self.readdir(&root(), dir, cookie, max).unwrap();
            out.extend(entries.into_iter().map(|e| String::from_utf8(e.name).unwrap()));
            match next {
                Some(c) => cookie = Some(c),
                None => return out,
            }
        }
    }

    /// The shard's live inode count.
    pub fn live_inodes(&self) -> u64 {
        use crate::fs::state::FsState;
        self.state.meta().unwrap().live_inodes
    }
}
