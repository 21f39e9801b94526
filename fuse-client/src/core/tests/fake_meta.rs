//! An in-memory metadata service: enough of the metadata server's semantics (names, handles,
//! chunk versions and copies, locks, xattrs, paged listings) for the core's unit tests, with
//! a log of the operations asked and knobs to inject failures.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::Mutex;

use client::{ClientError, ReadFrom};
use crdt::model::{ChunkRef, FileKind, FileTime};
use proto::fs::{ChunkLocation, Cred, DirEntry, Lock, LockKind, StatFs, TimeSet, rename_flags, xattr_flags};
use proto::{Attr, CHUNK_SIZE, Changes, Errno, FsOp, FsReply};

use crate::core::Meta;

/// This fake's client id.
pub(crate) const ME: u64 = 77;
/// Another client's id.
pub(crate) const OTHER: u64 = 99;

#[derive(Debug)]
pub(crate) struct FakeMeta {
    pub(crate) state: Mutex<State>,
    /// Answers to `watch` calls with `since != 0`, in order; pending forever once used up.
    pub(crate) watch_script: Mutex<VecDeque<Changes>>,
}

#[derive(Debug)]
pub(crate) struct State {
    next_ino: u64,
    next_handle: u64,
    next_chunk: u64,
    clock: i64,
    pub(crate) nodes: HashMap<u64, Node>,
    handles: HashMap<u64, (u64, bool)>,
    pub(crate) locks: Vec<(u64, Lock)>,
    /// The next this many `SetLk` requests fail with `EAGAIN`.
    pub(crate) refuse_locks: u32,
    /// Chunkservers new chunks are placed on, in chain order.
    pub(crate) placement: Vec<(u64, String)>,
    /// Recorded copies: chunk → (version, servers).
    pub(crate) copies: HashMap<u64, (u32, Vec<u64>)>,
    /// Every operation asked, by name.
    pub(crate) calls: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) attr: Attr,
    entries: BTreeMap<Vec<u8>, u64>,
    target: Vec<u8>,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) chunks: BTreeMap<u64, ChunkRef>,
}

type Res = Result<FsReply, Errno>;

impl FakeMeta {
    pub(crate) fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(1, node(1, FileKind::Dir, 0o777, 0));
        FakeMeta {
            state: Mutex::new(State {
                next_ino: 2,
                next_handle: 1,
                next_chunk: 0x100,
                clock: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
                nodes,
                handles: HashMap::new(),
                locks: Vec::new(),
                refuse_locks: 0,
                placement: vec![(1, "10.0.0.1:9420".into()), (2, "10.0.0.2:9420".into())],
                copies: HashMap::new(),
                calls: Vec::new(),
            }),
            watch_script: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// How many times `op` was asked.
    pub(crate) fn count(&self, op: &str) -> usize {
        self.st().calls.iter().filter(|c| **c == op).count()
    }
}

fn node(ino: u64, kind: FileKind, perm: u32, now: i64) -> Node {
    let t = FileTime::new(now, 0).unwrap();
    Node {
        attr: Attr {
            ino,
            kind,
            perm,
            nlink: if kind == FileKind::Dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            size: 0,
            atime: t,
            mtime: t,
            ctime: t,
        },
        entries: BTreeMap::new(),
        target: Vec::new(),
        xattrs: BTreeMap::new(),
        chunks: BTreeMap::new(),
    }
}

fn overlaps(a: &Lock, b: &Lock) -> bool {
    a.start <= b.end && b.start <= a.end
}

impl State {
    fn now(&mut self) -> FileTime {
        self.clock += 1;
        FileTime::new(self.clock, 0).unwrap()
    }

    fn get(&self, ino: u64) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn get_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        let n = self.get_mut(ino)?;
        if n.attr.kind != FileKind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(n)
    }

    fn make(&mut self, parent: u64, name: &[u8], kind: FileKind, perm: u32) -> Result<u64, Errno> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let now = self.now();
        let mut n = node(ino, kind, perm, now.secs());
        n.attr.atime = now;
        self.nodes.insert(ino, n);
        let dir = self.dir(parent)?;
        dir.entries.insert(name.to_vec(), ino);
        dir.attr.mtime = now;
        Ok(ino)
    }

    fn open_handle(&mut self, ino: u64, write: bool) -> u64 {
        let h = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(h, (ino, write));
        h
    }

    fn write_handle(&self, handle: u64, ino: u64) -> Result<(), Errno> {
        match self.handles.get(&handle) {
            Some((i, true)) if *i == ino => Ok(()),
            _ => Err(Errno::EBADF),
        }
    }

    fn attr(&self, ino: u64) -> Res {
        Ok(FsReply::Attr(self.get(ino)?.attr.clone()))
    }

    fn set_size(&mut self, ino: u64, size: u64) -> Result<(), Errno> {
        let now = self.now();
        let n = self.get_mut(ino)?;
        n.attr.size = size;
        n.attr.mtime = now;
        n.attr.ctime = now;
        let keep = size.div_ceil(CHUNK_SIZE);
        n.chunks.retain(|i, _| *i < keep);
        Ok(())
    }

    fn location(&self, ino: u64, index: u64) -> ChunkLocation {
        let n = &self.nodes[&ino];
        let (chunk, servers) = match n.chunks.get(&index) {
            Some(c) => {
                let (version, servers) = self.copies.get(&c.id).cloned().unwrap_or((c.version, Vec::new()));
                (Some(ChunkRef { id: c.id, version }), self.addresses(&servers))
            }
            None => (None, Vec::new()),
        };
        ChunkLocation {
            index,
            chunk,
            servers,
            prev_version: 0,
            file_size: n.attr.size,
        }
    }

    fn addresses(&self, ids: &[u64]) -> Vec<(u64, String)> {
        ids.iter().map(|id| (*id, format!("10.0.0.{id}:9420"))).collect()
    }

    fn conflict(&self, client: u64, lock: &Lock) -> Option<(u64, Lock)> {
        self.locks
            .iter()
            .find(|(c, l)| {
                (*c != client || l.owner != lock.owner)
                    && overlaps(l, lock)
                    && (l.kind == LockKind::Write || lock.kind == LockKind::Write)
            })
            .copied()
    }

    fn serve(&mut self, op: FsOp) -> Res {
        match op {
            FsOp::Lookup { parent, name } => {
                let ino = *self.dir(parent)?.entries.get(&name).ok_or(Errno::ENOENT)?;
                self.attr(ino)
            }
            FsOp::GetAttr { ino } => self.attr(ino),
            FsOp::SetAttr { ino, set } => {
                if let Some(size) = set.size {
                    if let Some(h) = set.handle {
                        self.write_handle(h, ino)?;
                    }
                    self.set_size(ino, size)?;
                }
                let now = self.now();
                let at = |t: TimeSet| match t {
                    TimeSet::Now => now,
                    TimeSet::At(t) => t,
                };
                let n = self.get_mut(ino)?;
                if let Some(m) = set.mode {
                    n.attr.perm = m & 0o7777;
                }
                n.attr.uid = set.uid.unwrap_or(n.attr.uid);
                n.attr.gid = set.gid.unwrap_or(n.attr.gid);
                if let Some(t) = set.atime {
                    n.attr.atime = at(t);
                }
                if let Some(t) = set.mtime {
                    n.attr.mtime = at(t);
                }
                n.attr.ctime = now;
                self.attr(ino)
            }
            FsOp::MkNod {
                parent,
                name,
                kind,
                mode,
                ..
            } => {
                let ino = self.make(parent, &name, kind, mode)?;
                self.attr(ino)
            }
            FsOp::MkDir { parent, name, mode } => {
                let ino = self.make(parent, &name, FileKind::Dir, mode)?;
                self.attr(ino)
            }
            FsOp::Create {
                parent,
                name,
                mode,
                exclusive,
                write,
                ..
            } => {
                let ino = match self.dir(parent)?.entries.get(&name) {
                    Some(_) if exclusive => return Err(Errno::EEXIST),
                    Some(ino) => *ino,
                    None => self.make(parent, &name, FileKind::File, mode)?,
                };
                let handle = self.open_handle(ino, write);
                Ok(FsReply::Opened {
                    attr: self.get(ino)?.attr.clone(),
                    handle,
                })
            }
            FsOp::Unlink { parent, name } | FsOp::RmDir { parent, name } => {
                let ino = *self.dir(parent)?.entries.get(&name).ok_or(Errno::ENOENT)?;
                if !self.get(ino)?.entries.is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
                self.dir(parent)?.entries.remove(&name);
                self.get_mut(ino)?.attr.nlink -= 1;
                Ok(FsReply::Done)
            }
            FsOp::Symlink { parent, name, target } => {
                let ino = self.make(parent, &name, FileKind::Symlink, 0o777)?;
                self.get_mut(ino)?.target = target;
                self.attr(ino)
            }
            FsOp::ReadLink { ino } => Ok(FsReply::Target(self.get(ino)?.target.clone())),
            FsOp::Link { ino, parent, name } => {
                if self.dir(parent)?.entries.insert(name, ino).is_some() {
                    return Err(Errno::EEXIST);
                }
                self.get_mut(ino)?.attr.nlink += 1;
                self.attr(ino)
            }
            FsOp::Rename {
                parent,
                name,
                new_parent,
                new_name,
                flags,
            } => {
                let ino = *self.dir(parent)?.entries.get(&name).ok_or(Errno::ENOENT)?;
                let target = self.dir(new_parent)?.entries.get(&new_name).copied();
                match (flags, target) {
                    (rename_flags::NOREPLACE, Some(_)) => return Err(Errno::EEXIST),
                    (rename_flags::EXCHANGE, None) => return Err(Errno::ENOENT),
                    (rename_flags::EXCHANGE, Some(t)) => {
                        self.dir(parent)?.entries.insert(name, t);
                        self.dir(new_parent)?.entries.insert(new_name, ino);
                        return Ok(FsReply::Done);
                    }
                    _ => {}
                }
                self.dir(parent)?.entries.remove(&name);
                self.dir(new_parent)?.entries.insert(new_name, ino);
                Ok(FsReply::Done)
            }
            FsOp::ReadDir {
                dir,
                cookie,
                max,
                plus,
            } => {
                let max = max as usize;
                let d = self.dir(dir)?.clone();
                let mut entries = Vec::new();
                let after = match &cookie {
                    None => {
                        for (n, ino) in [(&b"."[..], dir), (&b".."[..], 1)] {
                            entries.push(DirEntry {
                                name: n.to_vec(),
                                ino,
                                kind: FileKind::Dir,
                                attr: plus.then(|| self.nodes[&ino].attr.clone()),
                            });
                        }
                        Bound::Unbounded
                    }
                    Some(c) if c.first() == Some(&1) => Bound::Excluded(c[1..].to_vec()),
                    Some(_) => return Err(Errno::EINVAL),
                };
                let mut rest = d.entries.range((after, Bound::Unbounded)).peekable();
                let mut last = None;
                while entries.len() < max {
                    let Some((name, ino)) = rest.next() else { break };
                    let attr = self.nodes[ino].attr.clone();
                    entries.push(DirEntry {
                        name: name.clone(),
                        ino: *ino,
                        kind: attr.kind,
                        attr: plus.then_some(attr),
                    });
                    last = Some(name.clone());
                }
                let cookie = rest.peek().map(|_| {
                    let mut c = vec![1];
                    c.extend(last.unwrap_or_default());
                    c
                });
                Ok(FsReply::Dir { entries, cookie })
            }
            FsOp::StatFs => Ok(FsReply::StatFs(StatFs {
                block_size: 65536,
                blocks: 1000,
                blocks_free: 500,
                files: 100,
                files_free: 50,
                name_max: 255,
            })),
            FsOp::SetXattr {
                ino,
                name,
                value,
                flags,
            } => {
                let x = &mut self.get_mut(ino)?.xattrs;
                match (flags, x.contains_key(&name)) {
                    (xattr_flags::CREATE, true) => return Err(Errno::EEXIST),
                    (xattr_flags::REPLACE, false) => return Err(Errno::ENODATA),
                    _ => {}
                }
                x.insert(name, value);
                Ok(FsReply::Done)
            }
            FsOp::GetXattr { ino, name } => Ok(FsReply::Xattr(
                self.get(ino)?.xattrs.get(&name).cloned().ok_or(Errno::ENODATA)?,
            )),
            FsOp::ListXattr { ino } => Ok(FsReply::XattrNames(
                self.get(ino)?.xattrs.keys().cloned().collect(),
            )),
            FsOp::RemoveXattr { ino, name } => {
                self.get_mut(ino)?.xattrs.remove(&name).ok_or(Errno::ENODATA)?;
                Ok(FsReply::Done)
            }
            FsOp::Open {
                ino, write, truncate, ..
            } => {
                self.get(ino)?;
                if truncate {
                    self.set_size(ino, 0)?;
                }
                let handle = self.open_handle(ino, write || truncate);
                Ok(FsReply::Opened {
                    attr: self.get(ino)?.attr.clone(),
                    handle,
                })
            }
            FsOp::Release { handle, .. } => {
                self.handles.remove(&handle).ok_or(Errno::EBADF)?;
                Ok(FsReply::Done)
            }
            FsOp::ReleaseAll { handles } => {
                for (_, handle) in handles {
                    self.handles.remove(&handle);
                }
                Ok(FsReply::Done)
            }
            FsOp::Accessed { ino, handle } => {
                if self.handles.get(&handle).is_none_or(|(i, _)| *i != ino) {
                    return Err(Errno::EBADF);
                }
                let now = self.now();
                let n = self.get_mut(ino)?;
                if n.attr.relatime_due(now) {
                    n.attr.atime = now;
                }
                self.attr(ino)
            }
            // Sessions end at the servers' reaper, never at a client's request.
            FsOp::EndSession => Err(Errno::EPERM),
            FsOp::Access { ino, .. } => {
                self.get(ino)?;
                Ok(FsReply::Done)
            }
            FsOp::ChunkForRead { ino, index } => {
                self.get(ino)?;
                Ok(FsReply::Chunk(self.location(ino, index)))
            }
            FsOp::ChunkForWrite { ino, index, handle } => {
                self.write_handle(handle, ino)?;
                let existing = self.get(ino)?.chunks.get(&index).copied();
                let (chunk, prev_version, servers) = match existing {
                    Some(c) => {
                        let (newest, servers) = self.copies.get(&c.id).cloned().unwrap_or((0, Vec::new()));
                        let version = c.version.max(newest) + 1;
                        (ChunkRef { id: c.id, version }, newest, self.addresses(&servers))
                    }
                    None => {
                        let id = self.next_chunk;
                        self.next_chunk += 1;
                        (ChunkRef { id, version: 1 }, 0, self.placement.clone())
                    }
                };
                let file_size = self.get(ino)?.attr.size;
                self.get_mut(ino)?.chunks.insert(index, chunk);
                Ok(FsReply::Chunk(ChunkLocation {
                    index,
                    chunk: Some(chunk),
                    servers,
                    prev_version,
                    file_size,
                }))
            }
            FsOp::WriteDone {
                ino,
                handle,
                end,
                written,
            } => {
                self.write_handle(handle, ino)?;
                for w in written {
                    if self
                        .get(ino)?
                        .chunks
                        .get(&w.index)
                        .is_some_and(|c| c.id == w.chunk.id && c.version >= w.chunk.version)
                    {
                        self.copies.insert(w.chunk.id, (w.chunk.version, w.servers));
                    }
                }
                let now = self.now();
                let n = self.get_mut(ino)?;
                n.attr.size = n.attr.size.max(end);
                n.attr.mtime = now;
                n.attr.ctime = now;
                self.attr(ino)
            }
            FsOp::SetGoal { .. } => Ok(FsReply::Done),
            FsOp::GetGoal { .. } => Ok(FsReply::Goal(2)),
            FsOp::SetQuota { .. } | FsOp::GetQuota { .. } => Ok(FsReply::Quota(None)),
            FsOp::GetLk { lock, .. } => Ok(FsReply::Lock(self.conflict(ME, &lock))),
            FsOp::SetLk { lock, .. } => {
                if self.refuse_locks > 0 {
                    self.refuse_locks -= 1;
                    return Err(Errno::EAGAIN);
                }
                if lock.kind != LockKind::Unlock && self.conflict(ME, &lock).is_some() {
                    return Err(Errno::EAGAIN);
                }
                self.locks
                    .retain(|(c, l)| !(*c == ME && l.owner == lock.owner && overlaps(l, &lock)));
                if lock.kind != LockKind::Unlock {
                    self.locks.push((ME, lock));
                }
                Ok(FsReply::Done)
            }
        }
    }
}

impl Meta for FakeMeta {
    fn client_id(&self) -> u64 {
        ME
    }

    async fn fs(&self, _cred: &Cred, op: FsOp, _from: ReadFrom) -> Result<FsReply, ClientError> {
        let mut st = self.st();
        st.calls.push(op.name());
        st.serve(op).map_err(ClientError::Fs)
    }

    async fn shards(&self) -> Result<Vec<u32>, ClientError> {
        Ok(vec![0, 1])
    }

    fn watch(
        &self,
        _shard: u32,
        _at: Option<SocketAddr>,
        since: u64,
    ) -> impl Future<Output = Result<(SocketAddr, Changes), ClientError>> + Send {
        let at: SocketAddr = "127.0.0.1:9421".parse().unwrap();
        let next = if since == 0 {
            Some(Changes {
                next: 1,
                overflow: false,
                inodes: vec![],
                entries: vec![],
            })
        } else {
            self.watch_script.lock().unwrap().pop_front()
        };
        async move {
            match next {
                Some(c) => Ok((at, c)),
                None => std::future::pending().await,
            }
        }
    }
}
