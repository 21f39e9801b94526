//! Reading: chunk locations, copies tried in turn, holes, read-ahead and relatime.
//!
//! A read first lands this mount's buffered writes to the inode (readers see their own
//! writes). Each chunk piece is read from the first listed copy that answers; a copy that
//! refuses (corrupt block, stale version, no such chunk) or cannot be reached is skipped (and
//! tried last by the following pieces of that chunk through the same open file), and when all
//! fail the location is asked again at the leader (the version may have moved on), then
//! again with backoff for up to [`COPIES_WAIT`] before `EIO`. A missing chunk is a hole and
//! reads as zeros; nothing is read past the file size.
//!
//! A read starting where the previous one of the same open file ended is sequential and
//! fetches [`FsConfig::readahead`](crate::core::FsConfig) bytes (the first read of an open file
//! counts as sequential when it starts at 0); the surplus is kept and serves the following
//! reads until it is used up or the inode's data generation changes (a write, a truncation,
//! another client's change reported by the watcher).

use std::time::{Duration, SystemTime};

use proto::data::{DataReply, DataRequest, MAX_IO};
use proto::fs::{ChunkLocation, Cred};
use proto::{Attr, CHUNK_SIZE, FsOp, FsReply};

use crate::core::data::servers;
use crate::core::error::DataFailure;
use crate::core::handle::OpenFile;
use crate::core::{Data, Fs, FsError, Meta};

/// How long a read keeps asking the leader for a readable copy when none of the listed ones
/// answers (or none is listed). Copies of recent writes can be missing from the metadata for
/// a moment: a chunkserver that registers again after a leader change sends a full report
/// made before those writes, whose last part drops them until its next incremental report
/// lists them again.
const COPIES_WAIT: Duration = Duration::from_secs(5);

/// The read state of an open file.
#[derive(Debug, Default)]
pub(crate) struct Ahead {
    /// Where the last read ended.
    next: u64,
    /// Bytes fetched ahead, from `start`, at data generation `generation`; `eof` if they end
    /// at the end of the file.
    start: u64,
    data: Vec<u8>,
    eof: bool,
    generation: u64,
    /// The last chunk location used, at data generation `generation`.
    location: Option<ChunkLocation>,
}

impl Ahead {
    /// Forgets everything fetched.
    pub(crate) fn clear(&mut self) {
        self.data = Vec::new();
        self.location = None;
    }

    /// The cached bytes answering a read of `size` at `offset`, if the cache covers it.
    fn serve(&self, generation: u64, offset: u64, size: u64) -> Option<Vec<u8>> {
        let cached_end = self.start + self.data.len() as u64;
        let end = offset.saturating_add(size);
        let covered = end <= cached_end || (self.eof && offset <= cached_end);
        if self.generation != generation || offset < self.start || !covered || self.data.is_empty() {
            return None;
        }
        let from = (offset - self.start) as usize;
        let to = (end.min(cached_end) - self.start) as usize;
        Some(self.data[from..to].to_vec())
    }
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// Reads up to `size` bytes at `offset` through `fh` (fewer only at the end of the file).
    pub async fn read(&self, cred: &Cred, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, FsError> {
        let file = self.files.get(fh)?;
        self.flush_inode(file.ino).await;
        let size = u64::from(size);
        let bytes = {
            let mut io = file.io.lock().await;
            let ahead = &mut io.ahead;
            let generation = file.inode.generation();
            if ahead.generation != generation {
                ahead.clear();
                ahead.generation = generation;
            }
            let bytes = match ahead.serve(generation, offset, size) {
                Some(bytes) => {
                    if offset + bytes.len() as u64 >= ahead.start + ahead.data.len() as u64 {
                        ahead.data = Vec::new();
                    }
                    bytes
                }
                None => {
                    let sequential = offset == ahead.next;
                    let want = if sequential {
                        size.max(self.cfg.readahead as u64)
                    } else {
                        size
                    };
                    let (bytes, eof) = self.fetch(cred, &file, ahead, offset, want).await?;
                    if bytes.len() as u64 > size {
                        let head = bytes[..size as usize].to_vec();
                        (ahead.start, ahead.data, ahead.eof) = (offset, bytes, eof);
                        head
                    } else {
                        bytes
                    }
                }
            };
            ahead.next = offset + bytes.len() as u64;
            bytes
        };
        self.touch_atime(cred, &file).await;
        Ok(bytes)
    }

    /// Reads `len` bytes at `offset` of `file` (fewer at the end of the file); whether they
    /// end at the end of the file.
    async fn fetch(
        &self,
        cred: &Cred,
        file: &OpenFile,
        ahead: &mut Ahead,
        offset: u64,
        len: u64,
    ) -> Result<(Vec<u8>, bool), FsError> {
        let end = offset.saturating_add(len);
        let mut out = Vec::with_capacity(len.min(u64::from(MAX_IO)) as usize);
        let mut at = offset;
        while at < end {
            let index = at / CHUNK_SIZE;
            let cached = ahead
                .location
                .take()
                .filter(|l| l.index == index && at < l.file_size);
            let mut location = match cached {
                Some(l) => l,
                None => self.location(cred, file.ino, index).await?,
            };
            if at >= location.file_size {
                return Ok((out, true));
            }
            let stop = end
                .min((index + 1) * CHUNK_SIZE)
                .min(location.file_size)
                .min(at + u64::from(MAX_IO));
            let piece = self
                .read_piece(cred, file.ino, &mut location, at, stop - at)
                .await?;
            out.extend_from_slice(&piece);
            let eof = stop == location.file_size;
            ahead.location = Some(location);
            at = stop;
            if eof {
                return Ok((out, true));
            }
        }
        Ok((out, false))
    }

    /// The location of chunk `index` of `ino`.
    pub(crate) async fn location(&self, cred: &Cred, ino: u64, index: u64) -> Result<ChunkLocation, FsError> {
        match self.ask(cred, FsOp::ChunkForRead { ino, index }).await? {
            FsReply::Chunk(l) => Ok(l),
            other => Err(FsError::protocol("chunk_for_read", other)),
        }
    }

    /// `len` bytes at file offset `at`, within the chunk of `location` (refreshed from the
    /// leader if every copy fails).
    async fn read_piece(
        &self,
        cred: &Cred,
        ino: u64,
        location: &mut ChunkLocation,
        at: u64,
        len: u64,
    ) -> Result<Vec<u8>, FsError> {
        let offset = (at % CHUNK_SIZE) as u32;
        let len32 = len as u32;
        let mut last = (0, DataFailure::NoServers);
        let deadline = tokio::time::Instant::now() + COPIES_WAIT;
        let mut pause = Duration::from_millis(50);
        for attempt in 0.. {
            if attempt > 1 {
                if tokio::time::Instant::now() + pause > deadline {
                    break;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            if attempt > 0 {
                *location = match self
                    .ask_leader(
                        cred,
                        FsOp::ChunkForRead {
                            ino,
                            index: location.index,
                        },
                    )
                    .await?
                {
                    FsReply::Chunk(l) => l,
                    other => return Err(FsError::protocol("chunk_for_read", other)),
                };
            }
            let Some(chunk) = location.chunk else {
                return Ok(vec![0; len as usize]);
            };
            let req = DataRequest::Read {
                chunk: chunk.id,
                version: chunk.version,
                offset,
                len: len32,
            };
            for server in servers(&location.servers) {
                match self.data.call(&server, &req).await {
                    Ok(DataReply::Data(bytes)) if bytes.len() == len as usize => return Ok(bytes),
                    Ok(other) => {
                        last = (
                            chunk.id,
                            DataFailure::Unexpected(format!("{} bytes or {other:?}", len)),
                        )
                    }
                    Err(e) => {
                        tracing::debug!(ino, chunk = chunk.id, server = server.id, error = %e, "copy unreadable, trying the next");
                        // The following pieces of the chunk (the location is kept for them)
                        // try the copies that answer first.
                        if let Some(i) = location.servers.iter().position(|s| s.0 == server.id) {
                            let failed = location.servers.remove(i);
                            location.servers.push(failed);
                        }
                        last = (chunk.id, e.into());
                    }
                }
            }
        }
        Err(FsError::Data {
            chunk: last.0,
            failure: last.1,
        })
    }

    /// relatime: after a read, tells the metadata server, which sets atime (and nothing else)
    /// if relatime says it is due. The attributes this mount last saw decide whether to ask
    /// at all, so most reads cost nothing; the server decides from the current ones. A refusal
    /// is logged, not reported: the read itself succeeded.
    async fn touch_atime(&self, cred: &Cred, file: &OpenFile) {
        if !self.cfg.relatime {
            return;
        }
        let attr = file.inode.attr();
        let now = now_filetime();
        if !attr.relatime_due(now) {
            return;
        }
        // Concurrent reads of the inode need not ask too.
        file.inode.set_attr(Attr {
            atime: attr.mtime.max(attr.ctime).max(now),
            ..attr
        });
        let op = FsOp::Accessed {
            ino: file.ino,
            handle: file.handle,
        };
        match self.ask(cred, op).await {
            Ok(FsReply::Attr(a)) => file.inode.set_attr(a),
            Ok(other) => tracing::debug!(ino = file.ino, reply = ?other, "atime update: unexpected reply"),
            Err(e) => tracing::debug!(ino = file.ino, error = %e, "atime update refused"),
        }
    }
}

fn now_filetime() -> crdt::model::FileTime {
    let d = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crdt::model::FileTime::new(d.as_secs() as i64, d.subsec_nanos()).unwrap_or_default()
}
