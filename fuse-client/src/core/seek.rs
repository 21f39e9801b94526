//! `lseek` with `SEEK_DATA` and `SEEK_HOLE`, at chunk granularity: a chunk that exists is data
//! (whatever holes it has inside), a missing one is a hole, and the end of the file is a hole.

use proto::CHUNK_SIZE;
use proto::fs::Cred;

use crate::core::{Data, Fs, FsError, Meta};

/// What to seek to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whence {
    /// The first data at or after the offset (`SEEK_DATA`).
    Data,
    /// The first hole at or after the offset (`SEEK_HOLE`).
    Hole,
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// The offset of the first data or hole at or after `offset` in `fh`'s file; `ENXIO` at
    /// or past the end (and for data when only holes follow).
    pub async fn lseek(&self, cred: &Cred, fh: u64, offset: u64, whence: Whence) -> Result<u64, FsError> {
        let file = self.files.get(fh)?;
        let size = self.getattr(cred, file.ino).await?.size;
        if offset >= size {
            return Err(FsError::NoSuchOffset);
        }
        let mut index = offset / CHUNK_SIZE;
        loop {
            let at = offset.max(index * CHUNK_SIZE);
            if at >= size {
                return match whence {
                    Whence::Data => Err(FsError::NoSuchOffset),
                    Whence::Hole => Ok(size),
                };
            }
            let is_data = self.location(cred, file.ino, index).await?.chunk.is_some();
            if is_data == (whence == Whence::Data) {
                return Ok(at);
            }
            index += 1;
        }
    }
}
