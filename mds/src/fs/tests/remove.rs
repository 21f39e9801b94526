//! unlink and rmdir; the sticky bit; unlinked files kept alive by open handles.

use crdt::model::FileKind;
use proto::fs::FsOp;
use proto::{Errno, FsReply};

use super::*;

#[test]
fn unlink_drops_the_name_and_the_last_name_drops_the_inode() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    let f = fs.mknod(&root(), d.ino, "f", 0o644).unwrap();
    fs.link(&root(), f.ino, d.ino, "g").unwrap();
    fs.unlink(&root(), d.ino, "f").unwrap();
    let now = fs.now();
    assert_eq!(fs.lookup(&root(), d.ino, "f"), Err(Errno::ENOENT));
    let left = fs.getattr(f.ino).unwrap();
    assert_eq!((left.nlink, left.ctime), (1, now));
    let dir = fs.getattr(d.ino).unwrap();
    assert_eq!((dir.mtime, dir.ctime, dir.nlink), (now, now, 2));
    assert_eq!(fs.live_inodes(), 3);
    fs.unlink(&root(), d.ino, "g").unwrap();
    assert_eq!(fs.getattr(f.ino), Err(Errno::ENOENT));
    assert!(
        fs.state.record(Ino(f.ino)).unwrap().deleted().is_some(),
        "deleted, not just unnamed"
    );
    assert_eq!(fs.live_inodes(), 2);
    assert!(fs.state.entries_of(Ino(d.ino)).is_empty());
}

#[test]
fn unlink_refuses_directories_dots_and_missing_names() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    assert_eq!(fs.unlink(&root(), ROOT, "d"), Err(Errno::EISDIR));
    assert_eq!(fs.unlink(&root(), d.ino, "."), Err(Errno::EISDIR));
    assert_eq!(fs.unlink(&root(), d.ino, ".."), Err(Errno::EISDIR));
    assert_eq!(fs.unlink(&root(), ROOT, "nope"), Err(Errno::ENOENT));
    assert_eq!(fs.unlink(&root(), ROOT, ""), Err(Errno::EINVAL));
    assert_eq!(fs.unlink(&root(), foreign_ino(), "x"), Err(Errno::EXDEV));
    let f = fs.mknod(&root(), d.ino, "f", 0o644).unwrap();
    assert_eq!(fs.unlink(&root(), f.ino, "x"), Err(Errno::ENOTDIR));
    let alice = user(1000, 100, &[]);
    assert_eq!(fs.unlink(&alice, d.ino, "f"), Err(Errno::EACCES));
    assert_eq!(
        fs.unlink(&alice, d.ino, "nope"),
        Err(Errno::ENOENT),
        "the entry is looked up first"
    );
    fs.setattr(
        &root(),
        d.ino,
        SetAttr {
            mode: Some(0o776),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(
        fs.unlink(&alice, d.ino, "f"),
        Err(Errno::EACCES),
        "write without search"
    );
}

#[test]
fn rmdir_removes_empty_directories_only() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    let sub = fs.mkdir(&root(), d.ino, "sub", 0o755).unwrap();
    fs.mknod(&root(), d.ino, "f", 0o644).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 3);
    assert_eq!(fs.rmdir(&root(), ROOT, "d"), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(&root(), d.ino, "f"), Err(Errno::ENOTDIR));
    assert_eq!(fs.rmdir(&root(), d.ino, "."), Err(Errno::EINVAL));
    assert_eq!(fs.rmdir(&root(), d.ino, ".."), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(&root(), d.ino, "nope"), Err(Errno::ENOENT));
    fs.rmdir(&root(), d.ino, "sub").unwrap();
    let now = fs.now();
    let dir = fs.getattr(d.ino).unwrap();
    assert_eq!((dir.nlink, dir.mtime, dir.ctime), (2, now, now));
    assert_eq!(fs.getattr(sub.ino), Err(Errno::ENOENT));
    fs.unlink(&root(), d.ino, "f").unwrap();
    fs.rmdir(&root(), ROOT, "d").unwrap();
    assert_eq!(fs.getattr(ROOT).unwrap().nlink, 2);
    assert_eq!(fs.live_inodes(), 1);
}

#[test]
fn in_a_sticky_directory_only_owners_remove_entries() {
    let mut fs = Fs::new();
    let tmp = fs.mkdir(&root(), ROOT, "tmp", 0o777).unwrap();
    fs.setattr(
        &root(),
        tmp.ino,
        SetAttr {
            mode: Some(0o1777),
            uid: Some(3000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let (alice, bob, owner) = (user(1000, 100, &[]), user(2000, 100, &[]), user(3000, 300, &[]));
    for name in ["a", "b", "c"] {
        fs.mknod(&alice, tmp.ino, name, 0o666).unwrap();
    }
    fs.mkdir(&alice, tmp.ino, "dir", 0o777).unwrap();
    assert_eq!(fs.unlink(&bob, tmp.ino, "a"), Err(Errno::EPERM));
    assert_eq!(fs.rmdir(&bob, tmp.ino, "dir"), Err(Errno::EPERM));
    fs.unlink(&alice, tmp.ino, "a").unwrap();
    fs.unlink(&owner, tmp.ino, "b").expect("the directory's owner");
    fs.unlink(&root(), tmp.ino, "c").unwrap();
    fs.rmdir(&alice, tmp.ino, "dir").unwrap();
}

#[test]
fn an_unlinked_file_lives_until_its_last_handle_is_released() {
    let mut fs = Fs::new();
    let (f, h1) = fs.create(&root(), ROOT, "f", 0o644).unwrap();
    let h2 = fs.open(&root(), f.ino, true, false).unwrap();
    let Ok(FsReply::Chunk(w)) = fs.exec(
        &root(),
        FsOp::ChunkForWrite {
            ino: f.ino,
            index: 0,
            handle: h1,
        },
    ) else {
        panic!()
    };
    let written = vec![proto::fs::Written {
        index: 0,
        chunk: w.chunk.unwrap(),
        servers: vec![1],
    }];
    fs.exec(
        &root(),
        FsOp::WriteDone {
            ino: f.ino,
            handle: h1,
            end: 10,
            written,
        },
    )
    .unwrap();
    fs.unlink(&root(), ROOT, "f").unwrap();
    let kept = fs.getattr(f.ino).unwrap();
    assert_eq!((kept.nlink, kept.size), (0, 10));
    assert_eq!(fs.lookup(&root(), ROOT, "f"), Err(Errno::ENOENT));
    let Ok(FsReply::Chunk(c)) = fs.read(&root(), FsOp::ChunkForRead { ino: f.ino, index: 0 }) else {
        panic!()
    };
    assert_eq!(
        (c.chunk.map(|c| c.version), c.file_size),
        (Some(1), 10),
        "still readable"
    );
    assert_eq!(fs.live_inodes(), 2);
    assert_eq!(fs.link(&root(), f.ino, ROOT, "back"), Err(Errno::ENOENT));
    fs.release(f.ino, h1).unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 0, "one handle left");
    fs.release(f.ino, h2).unwrap();
    assert_eq!(fs.getattr(f.ino), Err(Errno::ENOENT));
    assert_eq!(fs.live_inodes(), 1);
    assert_eq!(fs.release(f.ino, h2), Err(Errno::EBADF));
}

#[test]
fn a_removed_directory_that_is_open_lives_until_released() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    let h = fs.open(&root(), d.ino, true, false).unwrap();
    fs.rmdir(&root(), ROOT, "d").unwrap();
    let kept = fs.getattr(d.ino).unwrap();
    assert_eq!((kept.kind, kept.nlink), (FileKind::Dir, 0));
    assert_eq!(fs.getattr(ROOT).unwrap().nlink, 2);
    fs.release(d.ino, h).unwrap();
    assert_eq!(fs.getattr(d.ino), Err(Errno::ENOENT));
}
