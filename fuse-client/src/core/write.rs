//! Writing: write-back buffering per open file and chained chunk writes.
//!
//! Sequential writes accumulate in the file's buffer, which covers one run of bytes within one
//! chunk and holds at most [`FsConfig::write_buffer`](crate::core::FsConfig) bytes. The buffer
//! lands when it is full or reaches a chunk boundary, before a non-sequential write, and on
//! flush, fsync, release and the inode's getattr/setattr/lookup/read through this mount.
//!
//! Landing: `ChunkForWrite` gives the chunk at a fresh version, the chain of servers and the
//! version they hold; the data goes to the first server with the rest of the chain; then
//! `WriteDone` grows the size, sets mtime/ctime and records the copies. Every landing gets a
//! version of its own, even into the chunk the previous landing wrote: once `WriteDone`
//! records copies at a version, the keeper may copy them to other servers, so bytes written
//! later under the same version would leave those copies stale while they count as current.
//! When a server of the chain fails, the landing is retried
//! under a new version without it (the metadata tier re-replicates later); when the version
//! moved on, under a new version; after [`FsConfig::write_attempts`](crate::core::FsConfig)
//! attempts it fails with `EIO` (`ENOSPC` if the servers were full).

use std::time::Duration;

use client::data::DataCallError;
use crdt::model::ChunkRef;
use proto::data::{DataError, DataReply, DataRequest, Server};
use proto::fs::{ChunkLocation, Cred, Written};
use proto::{Attr, CHUNK_SIZE, Errno, FsOp, FsReply};

use crate::core::data::servers;
use crate::core::error::DataFailure;
use crate::core::handle::{FileIo, OpenFile};
use crate::core::{Data, Fs, FsError, Meta};

/// First pause between attempts of a chunk write; doubled after each.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Bytes written but not landed: one run within one chunk.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    start: u64,
    data: Vec<u8>,
    /// Who wrote them (`WriteDone` clears set-id bits for writers other than root).
    writer: Cred,
}

impl Buffer {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// Writes `data` at `offset` through `fh`; returns the bytes taken (all of them).
    pub async fn write(&self, cred: &Cred, fh: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        let file = self.files.get(fh)?;
        if !file.write {
            return Err(Errno::EBADF.into());
        }
        let taken = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        let mut io = file.io.lock().await;
        if let Some(e) = io.failed.take() {
            return Err(e);
        }
        io.ahead.clear();
        let b = &io.buffer;
        if !b.data.is_empty() && (offset != b.end() || offset / CHUNK_SIZE != b.start / CHUNK_SIZE) {
            self.land(&file, &mut io).await?;
        }
        let (mut at, mut rest) = (offset, data);
        while !rest.is_empty() {
            if io.buffer.data.is_empty() {
                io.buffer.start = at;
                file.inode.became_dirty();
            }
            let chunk_end = (at / CHUNK_SIZE + 1) * CHUNK_SIZE;
            let room = (self.cfg.write_buffer - io.buffer.data.len()).min((chunk_end - at) as usize);
            let n = room.min(rest.len());
            io.buffer.data.extend_from_slice(&rest[..n]);
            cred.clone_into(&mut io.buffer.writer);
            at += n as u64;
            rest = &rest[n..];
            if io.buffer.data.len() >= self.cfg.write_buffer || at == chunk_end {
                self.land(&file, &mut io).await?;
            }
        }
        file.inode.bump();
        Ok(taken)
    }

    /// Lands the buffer of `file` (nothing if empty). On failure the buffered bytes are
    /// dropped and the error returned.
    pub(crate) async fn land(&self, file: &OpenFile, io: &mut FileIo) -> Result<(), FsError> {
        if io.buffer.data.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut io.buffer.data);
        file.inode.became_clean();
        let start = io.buffer.start;
        let end = start + data.len() as u64;
        let cred = io.buffer.writer.clone();
        let index = start / CHUNK_SIZE;
        let offset = (start % CHUNK_SIZE) as u32;
        let written = self
            .chained(
                &cred,
                file.ino,
                file.handle,
                index,
                |chunk, prev_version, chain| DataRequest::Write {
                    chunk: chunk.id,
                    version: chunk.version,
                    prev_version,
                    offset,
                    data: data.clone(),
                    chain,
                },
            )
            .await?;
        let done = self
            .write_done(&cred, file.ino, file.handle, end, written.0, written.1)
            .await;
        if let Err(FsError::Posix(errno)) = &done {
            // The metadata server refused the size growth (a quota, the size limit): what
            // landed past the end must not reappear when the file is extended later.
            self.cut_to_size(&cred, file.ino, file.handle, start, *errno)
                .await;
        }
        done?;
        file.inode.bump();
        Ok(())
    }

    /// Reports a landed write ending at `end` and remembers its chunk for fsync.
    pub(crate) async fn write_done(
        &self,
        cred: &Cred,
        ino: u64,
        handle: u64,
        end: u64,
        written: Written,
        chain: Vec<Server>,
    ) -> Result<Attr, FsError> {
        let op = FsOp::WriteDone {
            ino,
            handle,
            end,
            written: vec![written.clone()],
        };
        let attr = self.ask_attr(cred, op, "write_done").await?;
        self.files.observe(&attr);
        if let Some(inode) = self.files.inode(ino) {
            inode.unsynced(written, chain);
        }
        Ok(attr)
    }

    /// Sends the request `make` builds (from the chunk at its new version, the version the
    /// copies hold and the rest of the chain) to the head of the chain of chunk `index` of
    /// `ino`, with the retries described in the module documentation. Returns what landed
    /// where.
    pub(crate) async fn chained(
        &self,
        cred: &Cred,
        ino: u64,
        handle: u64,
        index: u64,
        make: impl Fn(&ChunkRef, u32, Vec<Server>) -> DataRequest,
    ) -> Result<(Written, Vec<Server>), FsError> {
        let mut excluded: Vec<u64> = Vec::new();
        let mut last = (0, DataFailure::NoServers);
        for attempt in 0..self.cfg.write_attempts {
            if attempt > 0 {
                tokio::time::sleep(RETRY_PAUSE * (1 << attempt.min(6))).await;
            }
            let location = self.chunk_for_write(cred, ino, index, handle).await?;
            let Some(chunk) = location.chunk else {
                return Err(FsError::protocol("chunk_for_write", &location));
            };
            let chain: Vec<Server> = servers(&location.servers)
                .into_iter()
                .filter(|s| !excluded.contains(&s.id))
                .collect();
            let Some((head, rest)) = chain.split_first() else {
                if excluded.is_empty() {
                    last = (chunk.id, DataFailure::NoServers);
                }
                break;
            };
            match self
                .data
                .call(head, &make(&chunk, location.prev_version, rest.to_vec()))
                .await
            {
                Ok(DataReply::Done) => {
                    if !excluded.is_empty() {
                        tracing::warn!(
                            ino,
                            index,
                            chunk = chunk.id,
                            ?excluded,
                            "chunk written without failed servers"
                        );
                    }
                    let ids = chain.iter().map(|s| s.id).collect();
                    let written = Written {
                        index,
                        chunk,
                        servers: ids,
                    };
                    return Ok((written, chain));
                }
                Ok(other) => last = (chunk.id, DataFailure::Unexpected(format!("{other:?}"))),
                Err(e) => {
                    match &e {
                        DataCallError::Refused {
                            error: DataError::Chain { server, .. },
                            ..
                        }
                        | DataCallError::Refused {
                            server,
                            error: DataError::NoSpace | DataError::Io(_) | DataError::Corrupt { .. },
                        }
                        | DataCallError::Unreachable { server, .. } => excluded.push(*server),
                        // The copies moved to another version (another writer, or a failed
                        // write left them ahead): a new version is asked next time.
                        DataCallError::Refused {
                            error: DataError::WrongVersion { .. } | DataError::NoChunk(_),
                            ..
                        } => {}
                        DataCallError::Refused {
                            error: DataError::BadRequest(_),
                            ..
                        } => {
                            return Err(FsError::Data {
                                chunk: chunk.id,
                                failure: e.into(),
                            });
                        }
                    }
                    tracing::debug!(ino, index, chunk = chunk.id, attempt, error = %e, "chunk write failed");
                    last = (chunk.id, e.into());
                }
            }
        }
        Err(FsError::Data {
            chunk: last.0,
            failure: last.1,
        })
    }

    /// A chunk to write chunk `index` of `ino` into, at a fresh version.
    async fn chunk_for_write(
        &self,
        cred: &Cred,
        ino: u64,
        index: u64,
        handle: u64,
    ) -> Result<ChunkLocation, FsError> {
        match self.ask(cred, FsOp::ChunkForWrite { ino, index, handle }).await? {
            FsReply::Chunk(l) => Ok(l),
            other => Err(FsError::protocol("chunk_for_write", other)),
        }
    }

    /// Makes `written` durable on every server of `chain`.
    pub(crate) async fn sync_chunk(&self, written: &Written, chain: &[Server]) -> Result<(), FsError> {
        let chunk = written.chunk;
        let failed = |failure| FsError::Data {
            chunk: chunk.id,
            failure,
        };
        let (head, rest) = chain
            .split_first()
            .ok_or_else(|| failed(DataFailure::NoServers))?;
        let req = DataRequest::Sync {
            chunk: chunk.id,
            version: chunk.version,
            chain: rest.to_vec(),
        };
        match self.data.call(head, &req).await {
            Ok(DataReply::Done) => Ok(()),
            Ok(other) => Err(failed(DataFailure::Unexpected(format!("{other:?}")))),
            Err(e) => Err(failed(e.into())),
        }
    }
}
