//! mknod, mkdir, create, symlink, link; the root; ownership and set-group-id inheritance.

use crdt::model::FileKind;
use proto::fs::FsOp;
use proto::{Errno, FsReply};
use shardmap::bucket_of;

use super::*;
use crate::fs::ops::LINK_MAX;
use crate::fs::state::FsState;

#[test]
fn the_root_is_a_root_owned_directory_and_bootstraps_once() {
    let mut fs = Fs::new();
    let r = fs.getattr(ROOT).unwrap();
    assert_eq!(
        (r.kind, r.perm, r.nlink, r.uid, r.gid),
        (FileKind::Dir, 0o755, 2, 0, 0)
    );
    assert_eq!(fs.live_inodes(), 1);
    assert_eq!(
        fs.lookup(&root(), ROOT, "..").unwrap().ino,
        ROOT,
        "the root is its own parent"
    );
    let again = bootstrap_root(&fs.state, fs.ctx(), fs.stamp(1), fs.now(), Uuid::from_u128(9)).unwrap();
    assert!(again.records.is_empty() && again.meta.is_none() && again.delta.is_none());
    fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    assert_eq!(fs.getattr(ROOT).unwrap().nlink, 3);
}

#[test]
fn mkdir_makes_a_directory_owned_by_the_caller_and_links_it_to_its_parent() {
    let mut fs = Fs::new();
    fs.exec(
        &root(),
        FsOp::SetAttr {
            ino: ROOT,
            set: SetAttr {
                mode: Some(0o777),
                ..SetAttr::default()
            },
        },
    )
    .unwrap();
    let alice = user(1000, 100, &[]);
    let d = fs.mkdir(&alice, ROOT, "d", 0o6750).unwrap();
    let now = fs.now();
    assert_eq!(
        (d.kind, d.perm, d.nlink, d.uid, d.gid),
        (FileKind::Dir, 0o750, 2, 1000, 100),
        "set-id bits ignored"
    );
    assert_eq!((d.atime, d.mtime, d.ctime), (now, now, now));
    let r = fs.getattr(ROOT).unwrap();
    assert_eq!((r.nlink, r.mtime, r.ctime), (3, now, now));
    assert_eq!(fs.lookup(&alice, ROOT, "d").unwrap(), d);
    assert_eq!(fs.lookup(&alice, d.ino, "..").unwrap().ino, ROOT);
    assert_eq!(fs.lookup(&alice, d.ino, ".").unwrap().ino, d.ino);
    assert_eq!(fs.live_inodes(), 2);
    let sub = fs.mkdir(&alice, d.ino, "sub", 0o755).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 3);
    assert_eq!(
        fs.table.shard_of_id(sub.ino).id,
        ShardId(0),
        "new directories stay on the parent's shard"
    );
}

#[test]
fn names_are_checked_like_linux_does() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    for (name, errno) in [
        ("d", Errno::EEXIST),
        ("f", Errno::EEXIST),
        (".", Errno::EEXIST),
        ("..", Errno::EEXIST),
        ("", Errno::EINVAL),
        ("a/b", Errno::EINVAL),
        ("a\0b", Errno::EINVAL),
    ] {
        assert_eq!(fs.mkdir(&root(), ROOT, name, 0o755), Err(errno), "{name:?}");
        assert_eq!(fs.mknod(&root(), ROOT, name, 0o644), Err(errno), "{name:?}");
    }
    let long = "x".repeat(256);
    assert_eq!(fs.mkdir(&root(), ROOT, &long, 0o755), Err(Errno::ENAMETOOLONG));
    fs.mkdir(&root(), ROOT, &long[..255], 0o755).unwrap();
    assert_eq!(fs.mkdir(&root(), f.ino, "x", 0o755), Err(Errno::ENOTDIR));
    assert_eq!(fs.mkdir(&root(), 0xdead_0001, "x", 0o755), Err(Errno::ENOENT));
    assert_eq!(fs.mkdir(&root(), foreign_ino(), "x", 0o755), Err(Errno::EXDEV));
}

#[test]
fn adding_names_needs_write_and_search_permission_on_the_parent() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[200]);
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    assert_eq!(fs.mkdir(&alice, d.ino, "x", 0o755), Err(Errno::EACCES));
    assert_eq!(fs.mknod(&alice, d.ino, "x", 0o644), Err(Errno::EACCES));
    fs.setattr(
        &root(),
        d.ino,
        SetAttr {
            gid: Some(200),
            mode: Some(0o730),
            ..SetAttr::default()
        },
    )
    .unwrap();
    fs.mknod(&alice, d.ino, "x", 0o644)
        .expect("write through a supplementary group");
    fs.setattr(
        &root(),
        d.ino,
        SetAttr {
            mode: Some(0o720),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(
        fs.mknod(&alice, d.ino, "y", 0o644),
        Err(Errno::EACCES),
        "no search"
    );
    assert_eq!(
        fs.mknod(&alice, d.ino, "x", 0o644),
        Err(Errno::EACCES),
        "search comes before existence"
    );
    let root_dir = fs.mknod(&root(), d.ino, "y", 0o644).unwrap();
    assert_eq!((root_dir.uid, root_dir.gid), (0, 0));
}

#[test]
fn mknod_makes_special_files_and_only_root_makes_devices() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    fs.setattr(
        &root(),
        ROOT,
        SetAttr {
            mode: Some(0o777),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let node = |kind, name: &str, rdev| FsOp::MkNod {
        parent: ROOT,
        name: name.into(),
        kind,
        mode: 0o640,
        rdev,
    };
    let fifo = attr(fs.exec(&alice, node(FileKind::Fifo, "p", 5))).unwrap();
    assert_eq!(
        (fifo.kind, fifo.rdev, fifo.perm, fifo.nlink),
        (FileKind::Fifo, 0, 0o640, 1)
    );
    assert_eq!(
        attr(fs.exec(&alice, node(FileKind::Socket, "s", 0)))
            .unwrap()
            .kind,
        FileKind::Socket
    );
    assert_eq!(
        fs.exec(&alice, node(FileKind::CharDev, "c", 0x0501)),
        Err(Errno::EPERM)
    );
    assert_eq!(
        fs.exec(&alice, node(FileKind::BlockDev, "b", 0x0501)),
        Err(Errno::EPERM)
    );
    let dev = attr(fs.exec(&root(), node(FileKind::CharDev, "c", 0x0501))).unwrap();
    assert_eq!((dev.kind, dev.rdev), (FileKind::CharDev, 0x0501));
    assert_eq!(fs.exec(&root(), node(FileKind::Dir, "x", 0)), Err(Errno::EINVAL));
    assert_eq!(
        fs.exec(&root(), node(FileKind::Symlink, "x", 0)),
        Err(Errno::EINVAL)
    );
    let file = attr(fs.exec(&alice, node(FileKind::File, "f", 0))).unwrap();
    assert_eq!(
        bucket_of(file.ino),
        bucket_of(ROOT),
        "files live in their parent's bucket"
    );
    assert_eq!(fs.live_inodes(), 5);
}

#[test]
fn create_opens_new_files_and_existing_ones_unless_exclusive() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    fs.setattr(
        &root(),
        ROOT,
        SetAttr {
            mode: Some(0o777),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let (f, h) = fs.create(&alice, ROOT, "f", 0o400).unwrap();
    assert_eq!((f.kind, f.perm, f.uid, f.nlink), (FileKind::File, 0o400, 1000, 1));
    let info = fs.state.handle(fs.client, h).unwrap().unwrap();
    assert_eq!(
        (info.ino, info.write),
        (f.ino, true),
        "the creator writes whatever the mode"
    );
    assert_eq!(fs.create(&alice, ROOT, "f", 0o644), Err(Errno::EEXIST));
    let op = |write| FsOp::Create {
        parent: ROOT,
        name: b"f".to_vec(),
        mode: 0o644,
        exclusive: false,
        read: false,
        write,
    };
    assert_eq!(
        fs.exec(&alice, op(true)),
        Err(Errno::EACCES),
        "an existing file is opened with checks"
    );
    let before = fs.live_inodes();
    let FsReply::Opened { attr: again, handle } = fs.exec(&alice, op(false)).unwrap() else {
        panic!()
    };
    assert_eq!((again.ino, fs.live_inodes()), (f.ino, before));
    assert_ne!(handle, h);
    fs.mkdir(&alice, ROOT, "d", 0o755).unwrap();
    let op = FsOp::Create {
        parent: ROOT,
        name: b"d".to_vec(),
        mode: 0o644,
        exclusive: false,
        read: true,
        write: false,
    };
    assert_eq!(fs.exec(&alice, op), Err(Errno::EISDIR));
}

#[test]
fn symlinks_hold_their_target() {
    let mut fs = Fs::new();
    let sym = |name: &str, target: Vec<u8>| FsOp::Symlink {
        parent: ROOT,
        name: name.into(),
        target,
    };
    let l = attr(fs.exec(&root(), sym("l", b"some/where".to_vec()))).unwrap();
    assert_eq!(
        (l.kind, l.perm, l.size, l.nlink),
        (FileKind::Symlink, 0o777, 10, 1)
    );
    assert_eq!(
        fs.read(&root(), FsOp::ReadLink { ino: l.ino }),
        Ok(FsReply::Target(b"some/where".to_vec()))
    );
    assert_eq!(fs.exec(&root(), sym("e", Vec::new())), Err(Errno::ENOENT));
    assert_eq!(
        fs.exec(&root(), sym("e", vec![b'a'; 4096])),
        Err(Errno::ENAMETOOLONG)
    );
    attr(fs.exec(&root(), sym("m", vec![b'a'; 4095]))).unwrap();
    assert_eq!(fs.exec(&root(), sym("l", b"x".to_vec())), Err(Errno::EEXIST));
    assert_eq!(fs.read(&root(), FsOp::ReadLink { ino: ROOT }), Err(Errno::EINVAL));
}

#[test]
fn hard_links_share_the_inode_and_count() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    let linked = fs.link(&root(), f.ino, d.ino, "g").unwrap();
    let now = fs.now();
    assert_eq!((linked.ino, linked.nlink, linked.ctime), (f.ino, 2, now));
    assert_eq!(fs.lookup(&root(), d.ino, "g").unwrap().ino, f.ino);
    assert_eq!(fs.getattr(d.ino).unwrap().mtime, now);
    assert_eq!(
        fs.getattr(d.ino).unwrap().nlink,
        2,
        "a file link is not a subdirectory"
    );
    assert_eq!(fs.link(&root(), d.ino, ROOT, "dd"), Err(Errno::EPERM));
    assert_eq!(fs.link(&root(), f.ino, ROOT, "d"), Err(Errno::EEXIST));
    assert_eq!(fs.link(&root(), 0xdead_0001, ROOT, "x"), Err(Errno::ENOENT));
    assert_eq!(fs.link(&user(5, 5, &[]), f.ino, d.ino, "h"), Err(Errno::EACCES));
    assert_eq!(fs.live_inodes(), 3);
}

#[test]
fn link_counts_stop_at_the_limit() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    fs.raw(1, |e| e.add_links(Ino(f.ino), LINK_MAX as i64 - 1));
    assert_eq!(fs.link(&root(), f.ino, ROOT, "g"), Err(Errno::EMLINK));
    fs.raw(1, |e| e.add_links(Ino(d.ino), LINK_MAX as i64 - 2));
    assert_eq!(fs.mkdir(&root(), d.ino, "sub", 0o755), Err(Errno::EMLINK));
    fs.mknod(&root(), d.ino, "file", 0o644)
        .expect("files do not count");
}

#[test]
fn setgid_directories_hand_down_their_group() {
    let mut fs = Fs::new();
    let shared = fs.mkdir(&root(), ROOT, "shared", 0o777).unwrap();
    fs.setattr(
        &root(),
        shared.ino,
        SetAttr {
            mode: Some(0o2777),
            gid: Some(500),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let alice = user(1000, 100, &[]);
    let f = fs.mknod(&alice, shared.ino, "f", 0o2775).unwrap();
    assert_eq!(
        (f.uid, f.gid, f.perm),
        (1000, 500, 0o775),
        "set-group-id dropped: alice is not in 500"
    );
    let d = fs.mkdir(&alice, shared.ino, "d", 0o755).unwrap();
    assert_eq!((d.gid, d.perm), (500, 0o2755), "subdirectories inherit the bit");
    let g = fs.mknod(&alice, d.ino, "g", 0o644).unwrap();
    assert_eq!(g.gid, 500, "and pass the group on");
    let member = user(1001, 100, &[500]);
    assert_eq!(fs.mknod(&member, shared.ino, "m", 0o2775).unwrap().perm, 0o2775);
    let plain = fs.mkdir(&root(), ROOT, "plain", 0o777).unwrap();
    assert_eq!(fs.mknod(&alice, plain.ino, "p", 0o644).unwrap().gid, 100);
}
