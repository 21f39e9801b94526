//! open, release, and the chunk table: chunks to write and read, the end of a write.

use crdt::model::{ChunkRef, FileKind};
use proto::fs::{ChunkLocation, FsOp, Written};
use proto::{Errno, FsReply};
use shardmap::bucket_of;

use super::*;
use crate::fs::state::FsState;

fn chunk(r: Result<FsReply, Errno>) -> Result<ChunkLocation, Errno> {
    match r? {
        FsReply::Chunk(c) => Ok(c),
        other => panic!("expected a chunk, got {other:?}"),
    }
}

#[test]
fn open_checks_the_mode_and_records_the_handle() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let f = fs.mknod(&root(), ROOT, "f", 0o604).unwrap();
    assert_eq!(fs.open(&alice, f.ino, false, true), Err(Errno::EACCES));
    let h = fs.open(&alice, f.ino, true, false).unwrap();
    let info = fs.state.handle(fs.client, h).unwrap().unwrap();
    assert_eq!(
        (info.ino, info.client, info.read, info.write),
        (f.ino, fs.client, true, false)
    );
    assert_eq!(fs.state.open_handles(Ino(f.ino)).unwrap(), 1);
    assert_eq!(fs.open(&root(), ROOT, false, true), Err(Errno::EISDIR));
    let trunc = FsOp::Open {
        ino: ROOT,
        read: true,
        write: false,
        truncate: true,
    };
    assert_eq!(fs.exec(&root(), trunc), Err(Errno::EISDIR));
    fs.open(&alice, ROOT, true, false)
        .expect("directories open for reading");
    let l = FsOp::Symlink {
        parent: ROOT,
        name: b"l".to_vec(),
        target: b"f".to_vec(),
    };
    let l = attr(fs.exec(&root(), l)).unwrap();
    assert_eq!(fs.open(&root(), l.ino, true, false), Err(Errno::ELOOP));
    assert_eq!(fs.open(&root(), 0xdead_0001, true, false), Err(Errno::ENOENT));
    assert_eq!(fs.open(&root(), foreign_ino(), true, false), Err(Errno::EXDEV));
}

#[test]
fn open_with_truncate_empties_the_file() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let (f, h) = fs.create(&root(), ROOT, "f", 0o4666).unwrap();
    fs.exec(
        &root(),
        FsOp::ChunkForWrite {
            ino: f.ino,
            index: 0,
            handle: h,
        },
    )
    .unwrap();
    fs.exec(
        &root(),
        FsOp::WriteDone {
            ino: f.ino,
            handle: h,
            end: 100,
            written: vec![],
        },
    )
    .unwrap();
    let reader = FsOp::Open {
        ino: f.ino,
        read: true,
        write: false,
        truncate: true,
    };
    fs.setattr(
        &root(),
        f.ino,
        SetAttr {
            mode: Some(0o4664),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(
        fs.exec(&alice, reader.clone()),
        Err(Errno::EACCES),
        "truncating needs write access"
    );
    fs.setattr(
        &root(),
        f.ino,
        SetAttr {
            mode: Some(0o4666),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let FsReply::Opened { attr: a, handle } = fs.exec(&alice, reader).unwrap() else {
        panic!()
    };
    assert_eq!((a.size, a.mtime, a.ctime, a.perm), (0, fs.now(), fs.now(), 0o666));
    assert!(fs.state.record(Ino(f.ino)).unwrap().chunks().is_empty());
    assert!(!fs.state.handle(fs.client, handle).unwrap().unwrap().write);
}

#[test]
fn release_closes_only_the_callers_own_handles() {
    let mut fs = Fs::new();
    let (f, h) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    fs.client = 8;
    assert_eq!(fs.release(f.ino, h), Err(Errno::EBADF), "another client's handle");
    fs.client = 7;
    assert_eq!(fs.release(ROOT, h), Err(Errno::EBADF), "another inode");
    assert_eq!(fs.release(f.ino, h + 100), Err(Errno::EBADF));
    fs.release(f.ino, h).unwrap();
    assert_eq!(fs.state.open_handles(Ino(f.ino)).unwrap(), 0);
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 1, "a named file stays");
    assert_eq!(fs.release(f.ino, h), Err(Errno::EBADF));
}

/// Reports that `servers` hold `chunk` at index `index` of `ino`, as a client does after a write.
fn report(fs: &mut Fs, ino: u64, handle: u64, index: u64, chunk: ChunkRef, servers: &[u64], end: u64) {
    let op = FsOp::WriteDone {
        ino,
        handle,
        end,
        written: vec![Written {
            index,
            chunk,
            servers: servers.to_vec(),
        }],
    };
    fs.exec(&root(), op).unwrap();
}

fn for_write(fs: &mut Fs, ino: u64, index: u64, handle: u64) -> Result<ChunkLocation, Errno> {
    chunk(fs.exec(&root(), FsOp::ChunkForWrite { ino, index, handle }))
}

fn cs(ids: &[u64]) -> Vec<(u64, String)> {
    ids.iter().map(|id| (*id, format!("cs{id}:9420"))).collect()
}

#[test]
fn chunks_for_writing_are_allocated_then_versioned() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o777).unwrap();
    let (f, h) = fs.create(&root(), d.ino, "f", 0o644).unwrap();
    let first = for_write(&mut fs, f.ino, 3, h).unwrap();
    let c1 = first.chunk.unwrap();
    assert_eq!(
        (first.index, c1.version, first.prev_version, first.file_size),
        (3, 1, 0, 0)
    );
    assert_eq!(
        first.servers,
        cs(&[1, 2]),
        "a new chunk goes to the first `goal` (2) placements"
    );
    assert_eq!(
        bucket_of(c1.id),
        bucket_of(f.ino),
        "chunks live in their file's bucket"
    );
    report(&mut fs, f.ino, h, 3, c1, &[1, 2], 0);
    assert_eq!(fs.state.copies[&c1.id], vec![(1, 1), (2, 1)]);

    let again = for_write(&mut fs, f.ino, 3, h).unwrap();
    assert_eq!(
        again.chunk,
        Some(ChunkRef {
            id: c1.id,
            version: 2
        })
    );
    assert_eq!(
        (again.prev_version, again.servers.clone()),
        (1, cs(&[1, 2])),
        "written where its copies are"
    );
    report(&mut fs, f.ino, h, 3, again.chunk.unwrap(), &[2], 0);
    let third = for_write(&mut fs, f.ino, 3, h).unwrap();
    assert_eq!(
        (third.chunk.unwrap().version, third.prev_version, third.servers),
        (3, 2, cs(&[2])),
        "only copies at the newest version are written; the stale copy is left behind"
    );
    // The third write failed: nothing was reported, so the next writer moves on from version 2.
    let fourth = for_write(&mut fs, f.ino, 3, h).unwrap();
    assert_eq!((fourth.chunk.unwrap().version, fourth.prev_version), (4, 2));

    let other = for_write(&mut fs, f.ino, 0, h).unwrap();
    assert_ne!(other.chunk.unwrap().id, c1.id);
    let ro = fs.open(&root(), f.ino, true, false).unwrap();
    assert_eq!(for_write(&mut fs, f.ino, 0, ro), Err(Errno::EBADF));
    let dh = fs.open(&root(), d.ino, true, false).unwrap();
    assert_eq!(for_write(&mut fs, d.ino, 0, dh), Err(Errno::EISDIR));
    assert_eq!(for_write(&mut fs, f.ino, u64::MAX, h), Err(Errno::EFBIG));
}

#[test]
fn a_chunk_whose_first_write_failed_everywhere_is_placed_anew() {
    let mut fs = Fs::new();
    let (f, h) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    let first = for_write(&mut fs, f.ino, 0, h).unwrap();
    // Nothing reported: the write failed on every server of the chain.
    let again = for_write(&mut fs, f.ino, 0, h).unwrap();
    assert_eq!(again.chunk.unwrap().id, first.chunk.unwrap().id);
    assert_eq!(
        (again.chunk.unwrap().version, again.prev_version, again.servers),
        (2, 0, cs(&[1, 2])),
        "placed like a new chunk, from version 0"
    );
    report(&mut fs, f.ino, h, 0, again.chunk.unwrap(), &[2], 10);
    let third = for_write(&mut fs, f.ino, 0, h).unwrap();
    assert_eq!(
        (third.chunk.unwrap().version, third.prev_version, third.servers),
        (3, 2, cs(&[2])),
        "once a copy is recorded, written where it is"
    );
}

#[test]
fn a_new_chunk_needs_a_live_chunkserver() {
    let mut fs = Fs::new();
    let (f, h) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    let mut cmd = fs.command(
        &root(),
        FsOp::ChunkForWrite {
            ino: f.ino,
            index: 0,
            handle: h,
        },
    );
    cmd.placement.clear();
    let (effects, reply) = crate::fs::execute(&fs.state, fs.ctx(), &cmd).unwrap();
    assert_eq!(reply, Err(Errno::ENOSPC));
    assert!(effects.records.is_empty() && effects.delta.is_none());
}

#[test]
fn chunks_for_reading_show_holes_the_newest_copies_and_the_size() {
    let mut fs = Fs::new();
    let (f, h) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    let written = for_write(&mut fs, f.ino, 1, h).unwrap();
    let c = written.chunk.unwrap();
    report(&mut fs, f.ino, h, 1, c, &[1, 2], 70 << 20);
    let rewrite = for_write(&mut fs, f.ino, 1, h).unwrap();
    report(&mut fs, f.ino, h, 1, rewrite.chunk.unwrap(), &[2], 70 << 20);
    let hole = chunk(fs.read(&root(), FsOp::ChunkForRead { ino: f.ino, index: 0 })).unwrap();
    assert_eq!(
        (hole.chunk, hole.servers.len(), hole.file_size),
        (None, 0, 70 << 20)
    );
    let data = chunk(fs.read(&root(), FsOp::ChunkForRead { ino: f.ino, index: 1 })).unwrap();
    assert_eq!(
        (data.chunk, data.servers),
        (rewrite.chunk, cs(&[2])),
        "readers go to the copies at the newest recorded version"
    );
    assert_eq!(
        fs.read(&root(), FsOp::ChunkForRead { ino: ROOT, index: 0 }),
        Err(Errno::EISDIR)
    );
    let node = FsOp::MkNod {
        parent: ROOT,
        name: b"p".to_vec(),
        kind: FileKind::Fifo,
        mode: 0o644,
        rdev: 0,
    };
    let p = attr(fs.exec(&root(), node)).unwrap();
    assert_eq!(
        fs.read(&root(), FsOp::ChunkForRead { ino: p.ino, index: 0 }),
        Err(Errno::EINVAL)
    );
}

#[test]
fn a_report_about_a_chunk_no_longer_in_its_slot_is_ignored() {
    let mut fs = Fs::new();
    let (f, h) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    let c = for_write(&mut fs, f.ino, 0, h).unwrap().chunk.unwrap();
    fs.setattr(
        &root(),
        f.ino,
        SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
    )
    .unwrap();
    report(&mut fs, f.ino, h, 0, c, &[1], 10);
    assert!(!fs.state.copies.contains_key(&c.id));
}

#[test]
fn the_end_of_a_write_grows_the_file_and_clears_set_id_bits() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let f = fs.mknod(&root(), ROOT, "f", 0o6777).unwrap();
    let h = fs.open(&alice, f.ino, false, true).unwrap();
    let grown = attr(fs.exec(
        &alice,
        FsOp::WriteDone {
            ino: f.ino,
            handle: h,
            end: 500,
            written: vec![],
        },
    ))
    .unwrap();
    assert_eq!(
        (grown.size, grown.mtime, grown.ctime, grown.perm),
        (500, fs.now(), fs.now(), 0o777)
    );
    let same = attr(fs.exec(
        &alice,
        FsOp::WriteDone {
            ino: f.ino,
            handle: h,
            end: 10,
            written: vec![],
        },
    ))
    .unwrap();
    assert_eq!(
        (same.size, same.mtime),
        (500, fs.now()),
        "a write inside the file keeps the size"
    );
    fs.setattr(
        &root(),
        f.ino,
        SetAttr {
            mode: Some(0o6777),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let rh = fs.open(&root(), f.ino, false, true).unwrap();
    assert_eq!(
        attr(fs.exec(
            &root(),
            FsOp::WriteDone {
                ino: f.ino,
                handle: rh,
                end: 1,
                written: vec![],
            }
        ))
        .unwrap()
        .perm,
        0o6777
    );
    let ro = fs.open(&alice, f.ino, true, false).unwrap();
    assert_eq!(
        fs.exec(
            &alice,
            FsOp::WriteDone {
                ino: f.ino,
                handle: ro,
                end: 1,
                written: vec![],
            }
        ),
        Err(Errno::EBADF)
    );
}

#[test]
fn release_all_closes_the_callers_handles_together_and_skips_the_rest() {
    let mut fs = Fs::new();
    let (f, h1) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    let h2 = fs.open(&root(), f.ino, true, false).unwrap();
    let (g, hg) = fs.create(&root(), ROOT, "g", 0o644).unwrap();
    fs.unlink(&root(), ROOT, "g").unwrap();
    fs.client = 8;
    let other = fs.open(&root(), f.ino, true, false).unwrap();
    fs.client = 7;
    let handles = vec![
        (f.ino, h1),
        (f.ino, h2),
        (g.ino, hg),
        (f.ino, other),
        (ROOT, h1),
        (f.ino, h1),
    ];
    assert_eq!(fs.exec(&root(), FsOp::ReleaseAll { handles }), Ok(FsReply::Done));
    assert_eq!(
        fs.state.open_handles(Ino(f.ino)).unwrap(),
        1,
        "only the other client's handle is left"
    );
    assert!(fs.state.handle(8, other).unwrap().is_some());
    assert_eq!(
        fs.state.record(Ino(g.ino)).and_then(|r| r.kind()),
        None,
        "an unlinked file goes with its last handle"
    );
    assert_eq!(fs.live_inodes(), 2, "the root and f");
}
