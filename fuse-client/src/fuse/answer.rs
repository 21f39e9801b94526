//! How each kind of core result is sent back on each kind of fuser reply, and the directory
//! sinks that fill readdir replies.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use fuser::{
    Errno, FileHandle, FopenFlags, Generation, INodeNo, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLock, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr,
};
use proto::Attr;
use proto::fs::{DirEntry, Lock, StatFs};

use crate::core::{DirSink, Xattr};
use crate::fuse::attr::{bare_attr, file_attr, file_type, lock_end_out, lock_type};

/// How long the kernel may cache what a reply tells it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ttl {
    pub(crate) attr: Duration,
    pub(crate) entry: Duration,
}

/// A reply that can carry a `T`.
pub(crate) trait Answer<T>: Send + 'static {
    fn ok(self, value: T, ttl: Ttl);
    fn fail(self, errno: Errno);
}

macro_rules! answer {
    ($reply:ty, $t:ty, |$r:ident, $v:ident, $ttl:ident| $ok:expr) => {
        impl Answer<$t> for $reply {
            fn ok(self, $v: $t, $ttl: Ttl) {
                let $r = self;
                $ok
            }
            fn fail(self, errno: Errno) {
                self.error(errno)
            }
        }
    };
}

answer!(ReplyEntry, Attr, |r, v, ttl| r.entry_with_ttls(
    &ttl.attr,
    &ttl.entry,
    &file_attr(&v),
    Generation(0)
));
answer!(ReplyAttr, Attr, |r, v, ttl| r.attr(&ttl.attr, &file_attr(&v)));
answer!(ReplyEmpty, (), |r, _v, _ttl| r.ok());
answer!(ReplyData, Vec<u8>, |r, v, _ttl| r.data(&v));
answer!(ReplyWrite, u32, |r, v, _ttl| r.written(v));
// No FOPEN_KEEP_CACHE: each open drops the kernel's cached pages of the file, so a file
// another client changed reads fresh after it is reopened (close-to-open consistency).
answer!(ReplyOpen, u64, |r, v, _ttl| r
    .opened(FileHandle(v), FopenFlags::empty()));
answer!(ReplyCreate, (Attr, u64), |r, v, ttl| r.created(
    &ttl.attr.min(ttl.entry),
    &file_attr(&v.0),
    Generation(0),
    FileHandle(v.1),
    FopenFlags::empty()
));
answer!(ReplyStatfs, StatFs, |r, v, _ttl| r.statfs(
    v.blocks,
    v.blocks_free,
    v.blocks_free,
    v.files,
    v.files_free,
    v.block_size,
    v.name_max,
    v.block_size
));
answer!(ReplyXattr, Xattr, |r, v, _ttl| match v {
    Xattr::Size(n) => r.size(n),
    Xattr::Data(d) => r.data(&d),
});
answer!(ReplyLock, Option<Lock>, |r, v, _ttl| match v {
    Some(l) => r.locked(l.start, lock_end_out(l.end), lock_type(l.kind), l.pid),
    None => r.locked(0, 0, libc::F_UNLCK, 0),
});
answer!(ReplyLseek, u64, |r, v, _ttl| r
    .offset(i64::try_from(v).unwrap_or(i64::MAX)));

/// A kind of directory reply: readdir's or readdirplus's.
pub(crate) trait DirReply: Send + 'static {
    /// Whether entries carry attributes.
    const PLUS: bool;
    /// The operation, for logs.
    const OP: &'static str;
    /// Adds `e`, resumed after at `next`; `true` if the buffer is full (not added).
    fn add_entry(&mut self, e: &DirEntry, next: u64, ttl: Ttl) -> bool;
    fn ok(self);
    fn error(self, errno: Errno);
}

impl DirReply for ReplyDirectory {
    const PLUS: bool = false;
    const OP: &'static str = "readdir";
    fn add_entry(&mut self, e: &DirEntry, next: u64, _ttl: Ttl) -> bool {
        self.add(
            INodeNo(e.ino),
            next,
            file_type(e.kind),
            OsStr::from_bytes(&e.name),
        )
    }
    fn ok(self) {
        ReplyDirectory::ok(self)
    }
    fn error(self, errno: Errno) {
        ReplyDirectory::error(self, errno)
    }
}

impl DirReply for ReplyDirectoryPlus {
    const PLUS: bool = true;
    const OP: &'static str = "readdirplus";
    fn add_entry(&mut self, e: &DirEntry, next: u64, ttl: Ttl) -> bool {
        let attr = e
            .attr
            .as_ref()
            .map_or_else(|| bare_attr(e.ino, e.kind), file_attr);
        let ttl = ttl.attr.min(ttl.entry);
        self.add(
            INodeNo(e.ino),
            next,
            OsStr::from_bytes(&e.name),
            &ttl,
            &attr,
            Generation(0),
        )
    }
    fn ok(self) {
        ReplyDirectoryPlus::ok(self)
    }
    fn error(self, errno: Errno) {
        ReplyDirectoryPlus::error(self, errno)
    }
}

/// A directory reply being filled.
pub(crate) struct Listing<R> {
    reply: R,
    added: bool,
    ttl: Ttl,
}

impl<R: DirReply> Listing<R> {
    pub(crate) fn new(reply: R, ttl: Ttl) -> Self {
        Listing {
            reply,
            added: false,
            ttl,
        }
    }

    /// Sends the entries added, or `err` if there are none (an error after some entries is
    /// met again by the next call, which starts after them).
    pub(crate) fn finish(self, err: Option<Errno>) {
        match err {
            Some(e) if !self.added => self.reply.error(e),
            _ => self.reply.ok(),
        }
    }
}

impl<R: DirReply> DirSink for Listing<R> {
    fn push(&mut self, e: &DirEntry, next: u64) -> bool {
        let full = self.reply.add_entry(e, next, self.ttl);
        self.added |= !full;
        !full
    }
}
