//! The thin fuser 0.18 layer. Each callback converts its arguments, starts the core operation
//! as a task on the tokio runtime (FUSE threads only dispatch; no network wait ever blocks
//! one) and replies from the task. Errors go through [`crate::errno`] and are logged at
//! debug level when they are ordinary POSIX answers, at warn level otherwise.
//!
//! Not answered by design: `bmap` (block devices only), `poll` (the kernel treats files as
//! always ready after the first `ENOSYS`) and `copy_file_range` (the kernel falls back to
//! reading and writing after the first `ENOSYS`) keep fuser's defaults.

mod answer;
pub(crate) mod attr;
pub(crate) mod notify;

use std::ffi::OsStr;
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileHandle, Filesystem, INodeNo, InitFlags, IoctlFlags, KernelConfig,
    LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use proto::fs::{Cred, SetAttr};
use tracing::Instrument;

use crate::core::{Data, Fs, FsError, Meta, OpenMode, Whence, caller};
use crate::errno::errno;
pub(crate) use crate::fuse::answer::Ttl;
use crate::fuse::answer::{Answer, DirReply, Listing};
use crate::fuse::attr::{lock_in, mknod_kind, time_set};

/// Largest write the kernel sends in one request.
const MAX_WRITE: u32 = 1 << 20;
/// Requests the kernel keeps in flight in the background (read-ahead, async reads).
const MAX_BACKGROUND: u16 = 64;

/// The fuser face of a core [`Fs`].
pub(crate) struct FuseFs<M, D> {
    fs: Arc<Fs<M, D>>,
    rt: tokio::runtime::Handle,
    ttl: Ttl,
}

impl<M: Meta, D: Data> FuseFs<M, D> {
    pub(crate) fn new(fs: Arc<Fs<M, D>>, rt: tokio::runtime::Handle, ttl: Ttl) -> Self {
        FuseFs { fs, rt, ttl }
    }

    /// Runs the core operation `f` builds (from the file system and the caller's credentials)
    /// as a task, and answers `reply` with its result.
    fn serve<T, R, F>(
        &self,
        req: &Request,
        op: &'static str,
        ino: u64,
        reply: R,
        f: impl FnOnce(Arc<Fs<M, D>>, Cred) -> F,
    ) where
        T: Send + 'static,
        R: Answer<T>,
        F: Future<Output = Result<T, FsError>> + Send + 'static,
    {
        let cred = self.fs.cred(req.uid(), req.gid(), req.pid());
        let span = tracing::debug_span!("fuse", op, req = req.unique().0, ino, pid = req.pid());
        let fut = f(self.fs.clone(), cred);
        let ttl = self.ttl;
        self.rt.spawn(
            async move {
                match fut.await {
                    Ok(v) => reply.ok(v, ttl),
                    Err(e) => reply.fail(failed(op, &e)),
                }
            }
            .instrument(span),
        );
    }

    /// readdir and readdirplus: fills `reply` from `offset`.
    fn list<R: DirReply>(&self, req: &Request, fh: FileHandle, offset: u64, reply: R) {
        let cred = self.fs.cred(req.uid(), req.gid(), req.pid());
        let fs = self.fs.clone();
        let mut sink = Listing::new(reply, self.ttl);
        let span = tracing::debug_span!("fuse", op = R::OP, req = req.unique().0, fh = fh.0, offset);
        self.rt.spawn(
            async move {
                let r = fs.readdir(&cred, fh.0, offset, R::PLUS, &mut sink).await;
                sink.finish(r.err().map(|e| failed(R::OP, &e)));
            }
            .instrument(span),
        );
    }
}

/// Logs `e` (at a level that matches how ordinary it is) and returns its errno.
fn failed(op: &'static str, e: &FsError) -> Errno {
    if e.is_ordinary() {
        tracing::debug!(op, error = %e, "failed");
    } else {
        tracing::warn!(op, error = %e, "failed");
    }
    Errno::from_i32(errno(e))
}

fn bytes(s: &OsStr) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// How a file is opened, from open(2) flags.
fn open_mode(flags: i32) -> OpenMode {
    let acc = OpenFlags(flags).acc_mode();
    OpenMode {
        read: acc != OpenAccMode::O_WRONLY,
        write: acc != OpenAccMode::O_RDONLY,
        truncate: flags & libc::O_TRUNC != 0,
        exclusive: flags & libc::O_EXCL != 0,
    }
}

impl<M: Meta, D: Data> Filesystem for FuseFs<M, D> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Not FUSE_WRITEBACK_CACHE: it makes the kernel the keeper of size and times, which a
        // file shared by several clients cannot have. FUSE_HANDLE_KILLPRIV: the metadata
        // server clears set-id bits on write, truncate and chown itself; without it the kernel
        // would send a chmod (which a writer who is not the owner may not make) first.
        // FUSE_FLOCK_LOCKS: flock(2) reaches us as a whole-file POSIX lock whose owner is the
        // open file (see `core::lock`), so flock locks hold across mounts.
        for cap in [
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_POSIX_LOCKS,
            InitFlags::FUSE_FLOCK_LOCKS,
            InitFlags::FUSE_HANDLE_KILLPRIV,
            InitFlags::FUSE_AUTO_INVAL_DATA,
        ] {
            if let Err(missing) = config.add_capabilities(cap) {
                tracing::info!(?missing, "kernel lacks a FUSE capability");
            }
        }
        if let Err(nearest) = config.set_max_write(MAX_WRITE) {
            let _ = config.set_max_write(nearest);
        }
        let _ = config.set_max_background(MAX_BACKGROUND);
        Ok(())
    }

    fn destroy(&mut self) {
        self.rt.block_on(self.fs.flush_all());
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = bytes(name);
        self.serve(req, "lookup", parent.0, reply, |fs, c| async move {
            fs.lookup(&c, parent.0, &name).await
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.serve(req, "getattr", ino.0, reply, |fs, c| async move {
            fs.getattr(&c, ino.0).await
        });
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            atime: atime.map(time_set),
            mtime: mtime.map(time_set),
            handle: None,
        };
        let fh = fh.map(|f| f.0);
        self.serve(req, "setattr", ino.0, reply, |fs, c| async move {
            fs.setattr(&c, ino.0, set, fh).await
        });
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.serve(req, "readlink", ino.0, reply, |fs, c| async move {
            fs.readlink(&c, ino.0).await
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let Some(kind) = mknod_kind(mode) else {
            return reply.error(Errno::from_i32(libc::EINVAL));
        };
        let name = bytes(name);
        self.serve(req, "mknod", parent.0, reply, |fs, c| async move {
            fs.mknod(&c, parent.0, &name, kind, mode & 0o7777, u64::from(rdev))
                .await
        });
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        let name = bytes(name);
        self.serve(req, "mkdir", parent.0, reply, |fs, c| async move {
            fs.mkdir(&c, parent.0, &name, mode & 0o7777).await
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = bytes(name);
        self.serve(req, "unlink", parent.0, reply, |fs, c| async move {
            fs.unlink(&c, parent.0, &name).await
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = bytes(name);
        self.serve(req, "rmdir", parent.0, reply, |fs, c| async move {
            fs.rmdir(&c, parent.0, &name).await
        });
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let (name, target) = (bytes(link_name), bytes(target.as_os_str()));
        self.serve(req, "symlink", parent.0, reply, |fs, c| async move {
            fs.symlink(&c, parent.0, &name, &target).await
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (name, newname) = (bytes(name), bytes(newname));
        self.serve(req, "rename", parent.0, reply, |fs, c| async move {
            fs.rename(&c, parent.0, &name, newparent.0, &newname, flags.bits())
                .await
        });
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let name = bytes(newname);
        self.serve(req, "link", ino.0, reply, |fs, c| async move {
            fs.link(&c, ino.0, newparent.0, &name).await
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mode = open_mode(flags.0);
        self.serve(req, "open", ino.0, reply, |fs, c| async move {
            fs.open(&c, ino.0, mode).await
        });
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.serve(req, "read", ino.0, reply, |fs, c| async move {
            fs.read(&c, fh.0, offset, size).await
        });
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.serve(req, "write", ino.0, reply, |fs, c| async move {
            fs.write(&c, fh.0, offset, &data).await
        });
    }

    fn flush(&self, req: &Request, ino: INodeNo, fh: FileHandle, lock_owner: LockOwner, reply: ReplyEmpty) {
        self.serve(req, "flush", ino.0, reply, |fs, c| async move {
            fs.flush(&c, fh.0, Some(lock_owner.0)).await
        });
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // fuser passes the owner only with FUSE_RELEASE_FLOCK_UNLOCK: the open file took
        // flock locks, which the kernel sent under the open file's own lock owner.
        let flock_owner = lock_owner.map(|o| o.0);
        self.serve(req, "release", ino.0, reply, |fs, c| async move {
            fs.release(&c, fh.0, flock_owner).await
        });
    }

    fn fsync(&self, req: &Request, ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.serve(req, "fsync", ino.0, reply, |fs, c| async move {
            fs.fsync(&c, fh.0).await
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.serve(req, "opendir", ino.0, reply, |fs, c| async move {
            fs.opendir(&c, ino.0).await
        });
    }

    fn readdir(&self, req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, reply: ReplyDirectory) {
        self.list(req, fh, offset, reply);
    }

    fn readdirplus(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.list(req, fh, offset, reply);
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // Directory changes are durable once acknowledged (strict mode): nothing to sync.
        reply.ok();
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.serve(
            req,
            "statfs",
            ino.0,
            reply,
            |fs, c| async move { fs.statfs(&c).await },
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let (name, value) = (bytes(name), value.to_vec());
        let flags = flags as u32;
        self.serve(req, "setxattr", ino.0, reply, |fs, c| async move {
            fs.setxattr(&c, ino.0, &name, &value, flags).await
        });
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = bytes(name);
        self.serve(req, "getxattr", ino.0, reply, |fs, c| async move {
            fs.getxattr(&c, ino.0, &name, size).await
        });
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.serve(req, "listxattr", ino.0, reply, |fs, c| async move {
            fs.listxattr(&c, ino.0, size).await
        });
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = bytes(name);
        self.serve(req, "removexattr", ino.0, reply, |fs, c| async move {
            fs.removexattr(&c, ino.0, &name).await
        });
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let mask = mask.bits() as u32;
        self.serve(req, "access", ino.0, reply, |fs, c| async move {
            fs.access(&c, ino.0, mask).await
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let name = bytes(name);
        let open = open_mode(flags);
        self.serve(req, "create", parent.0, reply, |fs, c| async move {
            fs.create(&c, parent.0, &name, mode & 0o7777, open).await
        });
    }

    fn getlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let Some(lock) = lock_in(lock_owner.0, pid, typ, start, end) else {
            return reply.error(Errno::from_i32(libc::EINVAL));
        };
        self.serve(req, "getlk", ino.0, reply, |fs, c| async move {
            fs.getlk(&c, fh.0, lock).await
        });
    }

    fn setlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let Some(lock) = lock_in(lock_owner.0, pid, typ, start, end) else {
            return reply.error(Errno::from_i32(libc::EINVAL));
        };
        let waiter = req.pid();
        self.serve(req, "setlk", ino.0, reply, |fs, c| async move {
            fs.setlk(&c, fh.0, lock, sleep, || caller::signal_pending(waiter))
                .await
        });
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mode = mode as u32;
        self.serve(req, "fallocate", ino.0, reply, |fs, c| async move {
            fs.fallocate(&c, fh.0, offset, length, mode).await
        });
    }

    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let whence = match whence {
            libc::SEEK_DATA => Whence::Data,
            libc::SEEK_HOLE => Whence::Hole,
            _ => return reply.error(Errno::from_i32(libc::EINVAL)),
        };
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(Errno::from_i32(libc::ENXIO));
        };
        self.serve(req, "lseek", ino.0, reply, |fs, c| async move {
            fs.lseek(&c, fh.0, offset, whence).await
        });
    }
}
