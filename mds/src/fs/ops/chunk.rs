//! A file's chunk table: the chunk to read or write at an index, and the end of a write.
//!
//! Versions: the file's chunk table holds the newest version issued for each slot; the copies
//! table (filled by `WriteDone` and by chunkserver reports) holds what each chunkserver has.
//! Readers are sent to the copies at the newest recorded version. A writer gets a fresh
//! version and the copies to write, which move to it from the version they hold
//! (`prev_version`). A write that fails leaves the slot's version ahead of every copy; the next
//! writer starts again from the newest recorded version.
//!
//! Writing goes through a handle the asking client opened for writing (`EBADF` otherwise);
//! reading needs no handle here (the client checked read permission when it opened). Chunks
//! belong to regular files only: `EISDIR` for directories, `EINVAL` for other types.

use crdt::model::{Attr as RecAttr, ChunkRef, FileKind};
use proto::fs::{CHUNK_SIZE, ChunkLocation, Cred, Written};
use proto::{Errno, FsReply};
use shardmap::bucket_of;

use crate::error::StoreError;
use crate::fs::command::{Effects, ShardCtx};
use crate::fs::node::{self, Node};
use crate::fs::ops::{MAX_FILE_SIZE, goal, quota};
use crate::fs::outcome::OpResult;
use crate::fs::perm;
use crate::fs::state::FsState;
use crate::fs::tx::Tx;

/// The copies of `chunk` at its newest recorded version, with their addresses.
fn newest_copies<S: FsState>(state: &S, chunk: u64) -> Result<(u32, Vec<(u64, String)>), StoreError> {
    let copies = state.chunk_copies(chunk)?;
    let newest = copies.iter().map(|c| c.1).max().unwrap_or(0);
    let mut servers = Vec::new();
    for (server, _) in copies.into_iter().filter(|c| c.1 == newest) {
        if let Some(addr) = state.chunkserver_addr(server)? {
            servers.push((server, addr));
        }
    }
    Ok((newest, servers))
}

/// The chunk at `index` of `ino` and where it lives; `None` for a hole.
pub fn for_read<S: FsState>(state: &S, ctx: ShardCtx<'_>, ino: u64, index: u64) -> OpResult<FsReply> {
    let node = regular(node::load(state, ctx, ino)?)?;
    let (chunk, servers) = match node.rec.chunks().get(&index) {
        Some(c) => {
            let (version, servers) = newest_copies(state, c.id)?;
            (Some(ChunkRef { id: c.id, version }), servers)
        }
        None => (None, Vec::new()),
    };
    Ok(FsReply::Chunk(ChunkLocation {
        index,
        chunk,
        servers,
        prev_version: 0,
        file_size: node.rec.size(),
    }))
}

/// The chunk to write `index` of `ino` into, at a fresh version: a new chunk (version 1,
/// placed on the first chunkservers of the command's placement list, as many as the file's
/// goal asks) for an empty slot, otherwise the slot's chunk one version past any issued so
/// far, written to its copies at the newest recorded version. A slot's chunk with no copy
/// recorded anywhere (its first write failed on every server) is placed anew the same way,
/// from version 0. `EFBIG` past [`MAX_FILE_SIZE`]; `ENOSPC` if no chunkserver is alive, or
/// chunk ids or versions ran out.
pub fn for_write<S: FsState>(
    mut tx: Tx<'_, S>,
    ino: u64,
    index: u64,
    handle: u64,
) -> OpResult<(Effects, FsReply)> {
    let node = regular(tx.node(ino)?)?;
    tx.check_write_handle(handle, node.ino)?;
    if index > MAX_FILE_SIZE / CHUNK_SIZE {
        return Err(Errno::EFBIG.into());
    }
    let copies = usize::from(goal::effective(node.rec.goal()));
    let placed = |placement: &[(u64, String)]| -> OpResult<Vec<(u64, String)>> {
        let servers: Vec<(u64, String)> = placement.iter().take(copies).cloned().collect();
        if servers.is_empty() {
            return Err(Errno::ENOSPC.into());
        }
        Ok(servers)
    };
    let (chunk, prev_version, servers) = match node.rec.chunks().get(&index) {
        Some(c) => {
            let (newest, servers) = newest_copies(tx.state, c.id)?;
            let version = c.version.max(newest).checked_add(1).ok_or(Errno::ENOSPC)?;
            let servers = if newest == 0 {
                placed(tx.placement)?
            } else {
                servers
            };
            (ChunkRef { id: c.id, version }, newest, servers)
        }
        None => {
            let servers = placed(tx.placement)?;
            let id = tx.new_chunk(bucket_of(node.ino.0))?;
            tx.place_chunk(id, node.ino, index);
            (ChunkRef { id, version: 1 }, 0, servers)
        }
    };
    let file_size = node.rec.size();
    let (effects, ()) = tx.commit(|edit| edit.set_chunk(node.ino, index, Some(chunk)))?;
    let location = ChunkLocation {
        index,
        chunk: Some(chunk),
        servers,
        prev_version,
        file_size,
    };
    Ok((effects, FsReply::Chunk(location)))
}

/// A write through `handle` ended at byte `end`: the size grows to `end`, mtime and ctime
/// become now, a non-root writer clears the set-id bits (`EFBIG` past [`MAX_FILE_SIZE`]), and
/// the copies the write landed on are recorded at its version. A report about a chunk that is
/// no longer in its slot (truncated away meanwhile) is ignored.
pub fn write_done<S: FsState>(
    mut tx: Tx<'_, S>,
    ino: u64,
    handle: u64,
    end: u64,
    written: &[Written],
) -> OpResult<(Effects, FsReply)> {
    let node = regular(tx.node(ino)?)?;
    tx.check_write_handle(handle, node.ino)?;
    if end > MAX_FILE_SIZE {
        return Err(Errno::EFBIG.into());
    }
    for w in written {
        if node
            .rec
            .chunks()
            .get(&w.index)
            .is_some_and(|c| c.id == w.chunk.id && c.version >= w.chunk.version)
        {
            tx.record_copies(w.chunk.id, w.chunk.version, &w.servers);
        }
    }
    if end > node.rec.size() {
        quota::resize(&mut tx, &node, end)?;
    }
    let attrs = grown(tx.cred, &node, end);
    let now = tx.now;
    let (effects, attr) = tx.commit_attr(node.ino, |edit| {
        edit.touch(node.ino, now);
        if !attrs.is_empty() {
            edit.set_attrs(node.ino, attrs);
        }
    })?;
    Ok((effects, FsReply::Attr(attr)))
}

/// The size and mode writes (besides the times) of a write ending at `end`.
fn grown(cred: &Cred, node: &Node, end: u64) -> Vec<RecAttr> {
    let mut attrs = Vec::new();
    if end > node.rec.size() {
        attrs.push(RecAttr::Size(end));
    }
    let mode = perm::after_write(cred, node.mode());
    if mode != node.mode() {
        attrs.push(RecAttr::Mode(mode));
    }
    attrs
}

/// `node` if it is a regular file.
fn regular(node: Node) -> OpResult<Node> {
    match node.kind {
        FileKind::File => Ok(node),
        FileKind::Dir => Err(Errno::EISDIR.into()),
        _ => Err(Errno::EINVAL.into()),
    }
}
