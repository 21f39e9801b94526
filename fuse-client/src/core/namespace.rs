//! Namespace operations: names, attributes, links. Permission checks are the metadata
//! server's (it has the caller's credentials); the mount adds only what it alone knows:
//! attributes of files it has buffered writes for are landed first, and the kernel's
//! references are counted for cache invalidation.

use crdt::model::FileKind;
use proto::fs::{Cred, SetAttr, StatFs};
use proto::{Attr, Errno, FsOp, FsReply};

use crate::core::{Data, Fs, FsError, Meta};

/// `rename` flags the metadata server implements (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
const RENAME_FLAGS: u32 = proto::fs::rename_flags::NOREPLACE | proto::fs::rename_flags::EXCHANGE;

impl<M: Meta, D: Data> Fs<M, D> {
    /// Resolves `name` in `parent`; the kernel holds a reference to the result.
    pub async fn lookup(&self, cred: &Cred, parent: u64, name: &[u8]) -> Result<Attr, FsError> {
        let op = FsOp::Lookup {
            parent,
            name: name.to_vec(),
        };
        let attr = self.ask_attr(cred, op, "lookup").await?;
        let attr = self.settled(cred, attr).await?;
        self.hand_out(attr.ino, parent, name);
        Ok(attr)
    }

    /// The attributes of `ino`, with this mount's buffered writes landed first.
    pub async fn getattr(&self, cred: &Cred, ino: u64) -> Result<Attr, FsError> {
        self.flush_inode(ino).await;
        let attr = self.ask_attr(cred, FsOp::GetAttr { ino }, "getattr").await?;
        self.files.observe(&attr);
        Ok(attr)
    }

    /// `attr`, or fresh attributes if this mount holds buffered writes for the inode (whose
    /// size and mtime the metadata server does not know yet).
    pub(crate) async fn settled(&self, cred: &Cred, attr: Attr) -> Result<Attr, FsError> {
        if self.files.is_dirty(attr.ino) {
            return self.getattr(cred, attr.ino).await;
        }
        Ok(attr)
    }

    /// Changes the attributes of `ino` (`set.handle` is ignored: `fh` is the mount's handle
    /// the change is made through, for `ftruncate`).
    pub async fn setattr(
        &self,
        cred: &Cred,
        ino: u64,
        set: SetAttr,
        fh: Option<u64>,
    ) -> Result<Attr, FsError> {
        self.flush_inode(ino).await;
        let attr = match set.size {
            Some(size) => {
                self.resize(cred, ino, size, SetAttr { handle: None, ..set }, fh)
                    .await?
            }
            None => {
                self.ask_attr(
                    cred,
                    FsOp::SetAttr {
                        ino,
                        set: SetAttr { handle: None, ..set },
                    },
                    "setattr",
                )
                .await?
            }
        };
        self.files.observe(&attr);
        Ok(attr)
    }

    /// Creates a regular file, fifo, socket or device node.
    pub async fn mknod(
        &self,
        cred: &Cred,
        parent: u64,
        name: &[u8],
        kind: FileKind,
        mode: u32,
        rdev: u64,
    ) -> Result<Attr, FsError> {
        if kind == FileKind::Dir || kind == FileKind::Symlink {
            return Err(Errno::EINVAL.into());
        }
        let op = FsOp::MkNod {
            parent,
            name: name.to_vec(),
            kind,
            mode,
            rdev,
        };
        self.entry(cred, op, parent, name, "mknod").await
    }

    /// Creates a directory.
    pub async fn mkdir(&self, cred: &Cred, parent: u64, name: &[u8], mode: u32) -> Result<Attr, FsError> {
        let op = FsOp::MkDir {
            parent,
            name: name.to_vec(),
            mode,
        };
        self.entry(cred, op, parent, name, "mkdir").await
    }

    /// Creates a symbolic link to `target`.
    pub async fn symlink(
        &self,
        cred: &Cred,
        parent: u64,
        name: &[u8],
        target: &[u8],
    ) -> Result<Attr, FsError> {
        let op = FsOp::Symlink {
            parent,
            name: name.to_vec(),
            target: target.to_vec(),
        };
        self.entry(cred, op, parent, name, "symlink").await
    }

    /// Adds `name` in `parent` as a hard link to `ino`.
    pub async fn link(&self, cred: &Cred, ino: u64, parent: u64, name: &[u8]) -> Result<Attr, FsError> {
        let op = FsOp::Link {
            ino,
            parent,
            name: name.to_vec(),
        };
        let attr = self.entry(cred, op, parent, name, "link").await?;
        self.settled(cred, attr).await
    }

    /// Runs an operation creating entry `name` in `parent`; the kernel holds a reference to
    /// the result.
    async fn entry(
        &self,
        cred: &Cred,
        op: FsOp,
        parent: u64,
        name: &[u8],
        what: &'static str,
    ) -> Result<Attr, FsError> {
        let attr = self.ask_attr(cred, op, what).await?;
        self.hand_out(attr.ino, parent, name);
        Ok(attr)
    }

    /// Removes a non-directory entry.
    pub async fn unlink(&self, cred: &Cred, parent: u64, name: &[u8]) -> Result<(), FsError> {
        self.ask_done(
            cred,
            FsOp::Unlink {
                parent,
                name: name.to_vec(),
            },
            "unlink",
        )
        .await
    }

    /// Removes an empty directory.
    pub async fn rmdir(&self, cred: &Cred, parent: u64, name: &[u8]) -> Result<(), FsError> {
        self.ask_done(
            cred,
            FsOp::RmDir {
                parent,
                name: name.to_vec(),
            },
            "rmdir",
        )
        .await
    }

    /// Renames `name` in `parent` to `new_name` in `new_parent` (`flags`: Linux
    /// `RENAME_NOREPLACE` / `RENAME_EXCHANGE`; `RENAME_WHITEOUT` is `EINVAL`, as on file
    /// systems without whiteouts).
    pub async fn rename(
        &self,
        cred: &Cred,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), FsError> {
        if flags & !RENAME_FLAGS != 0 || flags == RENAME_FLAGS {
            return Err(Errno::EINVAL.into());
        }
        let op = FsOp::Rename {
            parent,
            name: name.to_vec(),
            new_parent,
            new_name: new_name.to_vec(),
            flags,
        };
        self.ask_done(cred, op, "rename").await
    }

    /// The target of symbolic link `ino`.
    pub async fn readlink(&self, cred: &Cred, ino: u64) -> Result<Vec<u8>, FsError> {
        match self.ask(cred, FsOp::ReadLink { ino }).await? {
            FsReply::Target(t) => Ok(t),
            other => Err(FsError::protocol("readlink", other)),
        }
    }

    /// Checks `mask` (`proto::fs::access` bits; 0: existence) for the caller.
    pub async fn access(&self, cred: &Cred, ino: u64, mask: u32) -> Result<(), FsError> {
        self.ask_done(cred, FsOp::Access { ino, mask }, "access").await
    }

    /// File-system totals.
    pub async fn statfs(&self, cred: &Cred) -> Result<StatFs, FsError> {
        match self.ask(cred, FsOp::StatFs).await? {
            FsReply::StatFs(s) => Ok(s),
            other => Err(FsError::protocol("statfs", other)),
        }
    }
}
