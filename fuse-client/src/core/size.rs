//! Size changes: truncation and fallocate.
//!
//! The metadata server drops the chunks wholly past a new, smaller size; the chunk the new end
//! falls in keeps its bytes past the end, which a later extension would bring back. So after
//! the size is cut, the mount cuts that chunk too (`Truncate` down its chain, at a fresh
//! version), through the caller's handle or a short-lived one of its own.

use proto::data::DataRequest;
use proto::fs::{Cred, SetAttr};
use proto::{Attr, CHUNK_SIZE, Errno, FsOp, FsReply};

use crate::core::{Data, Fs, FsError, Meta};

/// `fallocate` mode: do not change the size.
const FALLOC_FL_KEEP_SIZE: u32 = 1;

impl<M: Meta, D: Data> Fs<M, D> {
    /// Sets the size of `ino` to `size` with the other changes of `set`, through open file
    /// `fh` if given (whose write permission was checked at open).
    pub(crate) async fn resize(
        &self,
        cred: &Cred,
        ino: u64,
        size: u64,
        set: SetAttr,
        fh: Option<u64>,
    ) -> Result<Attr, FsError> {
        let handle = fh
            .and_then(|fh| self.files.get(fh).ok())
            .filter(|f| f.ino == ino && f.write)
            .map(|f| f.handle);
        let (index, within) = (size / CHUNK_SIZE, size % CHUNK_SIZE);
        let tail = match within {
            0 => None,
            _ => Some(self.location(cred, ino, index).await?),
        };
        let op = FsOp::SetAttr {
            ino,
            set: SetAttr {
                size: Some(size),
                handle,
                ..set
            },
        };
        let attr = self.ask_attr(cred, op, "setattr").await?;
        self.files.truncated(ino, size);
        let Some(tail) = tail.filter(|t| t.chunk.is_some() && size < t.file_size) else {
            return Ok(attr);
        };
        // Cutting the chunk ends like a write (mtime and ctime move again): the attributes
        // after it are the ones to report.
        let attr = self.cut(cred, ino, tail.index, within as u32, handle).await?;
        self.files.bump(ino);
        Ok(attr)
    }

    /// After a write from byte `start` of `ino` whose size growth was refused (`why`), cuts
    /// its chunk back to the file's size, so the bytes that landed past the end read as zeros
    /// if the file grows later. Never below `start`: bytes before it are not this write's
    /// (another writer's, whose size growth may still come). Failures are logged: the write
    /// fails with `why` anyway.
    pub(crate) async fn cut_to_size(&self, cred: &Cred, ino: u64, handle: u64, start: u64, why: Errno) {
        let index = start / CHUNK_SIZE;
        let cut = async {
            let size = self.ask_attr(cred, FsOp::GetAttr { ino }, "getattr").await?.size;
            let keep = size.max(start);
            let len = keep.saturating_sub(index * CHUNK_SIZE).min(CHUNK_SIZE) as u32;
            if u64::from(len) < CHUNK_SIZE {
                self.cut(cred, ino, index, len, Some(handle)).await?;
            }
            Ok::<(), FsError>(())
        };
        if let Err(e) = cut.await {
            tracing::warn!(ino, index, ?why, error = %e, "cutting back a refused write failed");
        }
    }

    /// Cuts chunk `index` of `ino` to `len` bytes through `handle` (or a handle opened for
    /// it); returns the attributes after.
    async fn cut(
        &self,
        cred: &Cred,
        ino: u64,
        index: u64,
        len: u32,
        handle: Option<u64>,
    ) -> Result<Attr, FsError> {
        let (handle, own) = match handle {
            Some(h) => (h, false),
            None => match self
                .ask(
                    cred,
                    FsOp::Open {
                        ino,
                        read: false,
                        write: true,
                        truncate: false,
                    },
                )
                .await?
            {
                FsReply::Opened { handle, .. } => (handle, true),
                other => return Err(FsError::protocol("open", other)),
            },
        };
        let cut = async {
            let written = self
                .chained(cred, ino, handle, index, |chunk, prev_version, chain| {
                    DataRequest::Truncate {
                        chunk: chunk.id,
                        version: chunk.version,
                        prev_version,
                        len,
                        chain,
                    }
                })
                .await?;
            let end = index * CHUNK_SIZE + u64::from(len);
            self.write_done(cred, ino, handle, end, written.0, written.1)
                .await
        }
        .await;
        if own
            && let Err(e) = self
                .ask_done(cred, FsOp::Release { ino, handle }, "release")
                .await
        {
            tracing::warn!(ino, error = %e, "releasing the handle of a truncation failed");
        }
        cut
    }

    /// `fallocate(fh, mode, offset, len)`: mode 0 extends the size to `offset + len` if
    /// smaller (no space is reserved: unwritten ranges are holes that read as zeros);
    /// `FALLOC_FL_KEEP_SIZE` alone has nothing to do; other modes are `EOPNOTSUPP`.
    pub async fn fallocate(
        &self,
        cred: &Cred,
        fh: u64,
        offset: u64,
        len: u64,
        mode: u32,
    ) -> Result<(), FsError> {
        let file = self.files.get(fh)?;
        if len == 0 {
            return Err(Errno::EINVAL.into());
        }
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        match mode {
            0 => {
                if !file.write {
                    return Err(Errno::EBADF.into());
                }
                let attr = self.getattr(cred, file.ino).await?;
                if end > attr.size {
                    self.setattr(
                        cred,
                        file.ino,
                        SetAttr {
                            size: Some(end),
                            ..SetAttr::default()
                        },
                        Some(fh),
                    )
                    .await?;
                }
                Ok(())
            }
            FALLOC_FL_KEEP_SIZE => Ok(()),
            _ => Err(Errno::EOPNOTSUPP.into()),
        }
    }
}
