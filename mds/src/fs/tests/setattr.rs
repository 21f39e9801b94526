//! chmod, chown, truncate and utimes: who may, what the set-id bits become, and ctime.

use proto::Errno;
use proto::fs::{CHUNK_SIZE, FsOp, TimeSet};

use super::*;
use crate::fs::ops::MAX_FILE_SIZE;

fn mode(m: u32) -> SetAttr {
    SetAttr {
        mode: Some(m),
        ..SetAttr::default()
    }
}

/// Root with a file owned by alice (uid 1000, group 100), mode 0644.
fn alices_file() -> (Fs, Attr) {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    let f = fs
        .setattr(
            &root(),
            f.ino,
            SetAttr {
                uid: Some(1000),
                gid: Some(100),
                ..SetAttr::default()
            },
        )
        .unwrap();
    (fs, f)
}

#[test]
fn only_the_owner_or_root_changes_the_mode() {
    let (mut fs, f) = alices_file();
    let alice = user(1000, 100, &[]);
    let changed = fs.setattr(&alice, f.ino, mode(0o4711)).unwrap();
    assert_eq!(
        (changed.perm, changed.ctime, changed.mtime),
        (0o4711, fs.now(), f.mtime)
    );
    assert_eq!(
        fs.setattr(&user(2000, 100, &[]), f.ino, mode(0o777)),
        Err(Errno::EPERM)
    );
    assert_eq!(fs.setattr(&root(), f.ino, mode(0o600)).unwrap().perm, 0o600);
    assert_eq!(
        fs.setattr(&alice, f.ino, mode(0o2755)).unwrap().perm,
        0o2755,
        "alice is in group 100"
    );
    let bob_gid = fs
        .setattr(
            &root(),
            f.ino,
            SetAttr {
                gid: Some(500),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(bob_gid.gid, 500);
    assert_eq!(
        fs.setattr(&alice, f.ino, mode(0o2755)).unwrap().perm,
        0o755,
        "not in group 500: bit dropped"
    );
    assert_eq!(fs.setattr(&root(), f.ino, mode(0o2755)).unwrap().perm, 0o2755);
}

#[test]
fn chown_is_for_root_and_chgrp_for_owners_in_the_group() {
    let (mut fs, f) = alices_file();
    let alice = user(1000, 100, &[200]);
    let chown = |uid, gid| SetAttr {
        uid,
        gid,
        ..SetAttr::default()
    };
    assert_eq!(
        fs.setattr(&alice, f.ino, chown(Some(2000), None)),
        Err(Errno::EPERM)
    );
    fs.setattr(&alice, f.ino, chown(Some(1000), None))
        .expect("to herself");
    assert_eq!(
        fs.setattr(&alice, f.ino, chown(None, Some(200))).unwrap().gid,
        200
    );
    assert_eq!(
        fs.setattr(&alice, f.ino, chown(None, Some(300))),
        Err(Errno::EPERM)
    );
    assert_eq!(
        fs.setattr(&user(2000, 200, &[]), f.ino, chown(None, Some(200))),
        Err(Errno::EPERM)
    );
    let given = fs.setattr(&root(), f.ino, chown(Some(2000), Some(300))).unwrap();
    assert_eq!((given.uid, given.gid, given.ctime), (2000, 300, fs.now()));
}

#[test]
fn chown_clears_set_id_bits_on_files_but_not_directories() {
    let (mut fs, f) = alices_file();
    let alice = user(1000, 100, &[200]);
    fs.setattr(&alice, f.ino, mode(0o6755)).unwrap();
    let chgrp = SetAttr {
        gid: Some(200),
        ..SetAttr::default()
    };
    assert_eq!(fs.setattr(&alice, f.ino, chgrp.clone()).unwrap().perm, 0o755);
    fs.setattr(&root(), f.ino, mode(0o6745)).unwrap();
    let kept = fs
        .setattr(
            &root(),
            f.ino,
            SetAttr {
                uid: Some(1000),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(
        kept.perm, 0o2745,
        "root's chown clears set-uid; set-gid without group exec stays"
    );
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    fs.setattr(&root(), d.ino, mode(0o2755)).unwrap();
    let dir = fs
        .setattr(
            &root(),
            d.ino,
            SetAttr {
                uid: Some(1000),
                gid: Some(200),
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(dir.perm, 0o2755);
}

#[test]
fn truncation_resizes_drops_chunks_and_needs_write_access() {
    let (mut fs, f) = alices_file();
    let alice = user(1000, 100, &[]);
    let h = fs.open(&alice, f.ino, false, true).unwrap();
    for index in 0..3 {
        fs.exec(
            &alice,
            FsOp::ChunkForWrite {
                ino: f.ino,
                index,
                handle: h,
            },
        )
        .unwrap();
    }
    fs.exec(
        &alice,
        FsOp::WriteDone {
            ino: f.ino,
            handle: h,
            end: 3 * CHUNK_SIZE,
            written: vec![],
        },
    )
    .unwrap();
    let size = |s| SetAttr {
        size: Some(s),
        ..SetAttr::default()
    };
    let cut = fs.setattr(&alice, f.ino, size(CHUNK_SIZE + 1)).unwrap();
    assert_eq!(
        (cut.size, cut.mtime, cut.ctime),
        (CHUNK_SIZE + 1, fs.now(), fs.now())
    );
    let chunks: Vec<u64> = fs
        .state
        .record(Ino(f.ino))
        .unwrap()
        .chunks()
        .iter()
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(chunks, vec![0, 1], "the third chunk lies wholly past the end");
    assert_eq!(
        fs.setattr(&alice, f.ino, size(5 * CHUNK_SIZE)).unwrap().size,
        5 * CHUNK_SIZE
    );
    let bob = user(2000, 300, &[]);
    assert_eq!(fs.setattr(&bob, f.ino, size(0)), Err(Errno::EACCES));
    fs.client = 9;
    let theirs = fs.open(&root(), f.ino, false, true).unwrap();
    fs.client = 7;
    let ro = fs.open(&alice, f.ino, true, false).unwrap();
    let rw = fs.open(&root(), f.ino, false, true).unwrap();
    let through = |handle| SetAttr {
        handle: Some(handle),
        ..size(7)
    };
    assert_eq!(
        fs.setattr(&bob, f.ino, through(theirs)),
        Err(Errno::EBADF),
        "another client's handle"
    );
    assert_eq!(
        fs.setattr(&bob, f.ino, through(ro)),
        Err(Errno::EBADF),
        "a read-only handle"
    );
    assert_eq!(
        fs.setattr(&bob, f.ino, through(rw)).unwrap().size,
        7,
        "write access checked at open"
    );
    assert!(
        fs.state
            .record(Ino(f.ino))
            .unwrap()
            .chunks()
            .iter()
            .all(|(i, _)| *i == 0)
    );
    assert_eq!(
        fs.setattr(&alice, f.ino, size(MAX_FILE_SIZE + 1)),
        Err(Errno::EFBIG)
    );
    assert_eq!(fs.setattr(&root(), ROOT, size(0)), Err(Errno::EISDIR));
    let l = attr(fs.exec(
        &root(),
        FsOp::Symlink {
            parent: ROOT,
            name: b"l".to_vec(),
            target: b"f".to_vec(),
        },
    ))
    .unwrap();
    assert_eq!(fs.setattr(&root(), l.ino, size(0)), Err(Errno::EINVAL));
}

#[test]
fn truncation_by_others_than_root_clears_set_id_bits() {
    let (mut fs, f) = alices_file();
    let alice = user(1000, 100, &[]);
    fs.setattr(&alice, f.ino, mode(0o6775)).unwrap();
    let size = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(fs.setattr(&root(), f.ino, size.clone()).unwrap().perm, 0o6775);
    assert_eq!(fs.setattr(&alice, f.ino, size).unwrap().perm, 0o775);
}

#[test]
fn explicit_times_need_the_owner_and_now_needs_write_access() {
    let (mut fs, f) = alices_file();
    let (alice, writer, stranger) = (user(1000, 100, &[]), user(2000, 100, &[]), user(3000, 300, &[]));
    fs.setattr(&alice, f.ino, mode(0o664)).unwrap();
    let at = SetAttr {
        atime: Some(TimeSet::At(time(5))),
        mtime: Some(TimeSet::At(time(6))),
        ..SetAttr::default()
    };
    let now = SetAttr {
        atime: Some(TimeSet::Now),
        mtime: Some(TimeSet::Now),
        ..SetAttr::default()
    };
    assert_eq!(fs.setattr(&writer, f.ino, at.clone()), Err(Errno::EPERM));
    let set = fs.setattr(&alice, f.ino, at.clone()).unwrap();
    assert_eq!((set.atime, set.mtime, set.ctime), (time(5), time(6), fs.now()));
    let touched = fs.setattr(&writer, f.ino, now.clone()).unwrap();
    assert_eq!(
        (touched.atime, touched.mtime, touched.ctime),
        (fs.now(), fs.now(), fs.now())
    );
    assert_eq!(fs.setattr(&stranger, f.ino, now), Err(Errno::EACCES));
    let only_mtime = SetAttr {
        mtime: Some(TimeSet::At(time(1))),
        ..SetAttr::default()
    };
    let m = fs.setattr(&root(), f.ino, only_mtime).unwrap();
    assert_eq!(
        (m.atime, m.mtime),
        (touched.atime, time(1)),
        "an omitted time is kept"
    );
}

#[test]
fn asking_for_nothing_changes_nothing() {
    let (mut fs, f) = alices_file();
    let (effects, reply) = fs.dry_run(
        &user(5, 5, &[]),
        FsOp::SetAttr {
            ino: f.ino,
            set: SetAttr::default(),
        },
    );
    assert_eq!(attr(reply).unwrap(), f);
    assert!(effects.records.is_empty() && effects.delta.is_none() && effects.meta.is_none());
    assert_eq!(fs.setattr(&root(), 0xdead_0001, mode(0o644)), Err(Errno::ENOENT));
    assert_eq!(fs.setattr(&root(), foreign_ino(), mode(0o644)), Err(Errno::EXDEV));
}
