//! The rename matrix: files, directories, empty and non-empty targets, subtrees, flags, the
//! same inode under both names, permissions and link counts.

use crdt::model::FileKind;
use proto::Errno;
use proto::fs::rename_flags::{EXCHANGE, NOREPLACE};

use super::*;
use crate::fs::ops::LINK_MAX;

/// A root with directories `a` and `b`, file `a/f` and file `b/g`.
fn tree() -> (Fs, Attr, Attr, Attr, Attr) {
    let mut fs = Fs::new();
    let a = fs.mkdir(&root(), ROOT, "a", 0o777).unwrap();
    let b = fs.mkdir(&root(), ROOT, "b", 0o777).unwrap();
    let f = fs.mknod(&root(), a.ino, "f", 0o644).unwrap();
    let g = fs.mknod(&root(), b.ino, "g", 0o644).unwrap();
    (fs, a, b, f, g)
}

#[test]
fn a_file_moves_and_its_parents_and_itself_change_times() {
    let (mut fs, a, b, f, _) = tree();
    fs.rename(&root(), a.ino, "f", a.ino, "f2", 0).unwrap();
    assert_eq!(fs.lookup(&root(), a.ino, "f"), Err(Errno::ENOENT));
    assert_eq!(fs.lookup(&root(), a.ino, "f2").unwrap().ino, f.ino);
    fs.rename(&root(), a.ino, "f2", b.ino, "f3", 0).unwrap();
    let now = fs.now();
    let moved = fs.lookup(&root(), b.ino, "f3").unwrap();
    assert_eq!((moved.ino, moved.ctime, moved.nlink), (f.ino, now, 1));
    for dir in [a.ino, b.ino] {
        let d = fs.getattr(dir).unwrap();
        assert_eq!((d.mtime, d.ctime, d.nlink), (now, now, 2));
    }
}

#[test]
fn a_file_replaces_a_file() {
    let (mut fs, a, b, f, g) = tree();
    let g2 = fs.link(&root(), g.ino, ROOT, "g2").unwrap();
    assert_eq!(g2.nlink, 2);
    fs.rename(&root(), a.ino, "f", b.ino, "g", 0).unwrap();
    assert_eq!(fs.lookup(&root(), b.ino, "g").unwrap().ino, f.ino);
    let survivor = fs.getattr(g.ino).unwrap();
    assert_eq!(
        (survivor.nlink, survivor.ctime),
        (1, fs.now()),
        "the replaced file keeps its other name"
    );
    fs.mknod(&root(), a.ino, "h", 0o644).unwrap();
    fs.rename(&root(), a.ino, "h", ROOT, "g2", 0).unwrap();
    assert_eq!(
        fs.getattr(g.ino),
        Err(Errno::ENOENT),
        "its last name replaced, the file is gone"
    );
    assert_eq!(fs.live_inodes(), 5);
}

#[test]
fn a_directory_moves_with_its_links_and_parent() {
    let (mut fs, a, b, _, _) = tree();
    let d = fs.mkdir(&root(), a.ino, "d", 0o755).unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 3);
    fs.rename(&root(), a.ino, "d", b.ino, "d", 0).unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 2);
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 3);
    assert_eq!(fs.lookup(&root(), d.ino, "..").unwrap().ino, b.ino);
    assert_eq!(fs.getattr(d.ino).unwrap().ctime, fs.now());
    fs.rename(&root(), b.ino, "d", b.ino, "e", 0).unwrap();
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 3, "same parent: no link moves");
}

#[test]
fn a_directory_replaces_only_an_empty_directory() {
    let (mut fs, a, b, _, _) = tree();
    let d = fs.mkdir(&root(), a.ino, "d", 0o755).unwrap();
    let empty = fs.mkdir(&root(), b.ino, "empty", 0o755).unwrap();
    let full = fs.mkdir(&root(), b.ino, "full", 0o755).unwrap();
    fs.mknod(&root(), full.ino, "x", 0o644).unwrap();
    assert_eq!(
        fs.rename(&root(), a.ino, "d", b.ino, "full", 0),
        Err(Errno::ENOTEMPTY)
    );
    assert_eq!(fs.rename(&root(), a.ino, "d", b.ino, "g", 0), Err(Errno::ENOTDIR));
    assert_eq!(
        fs.rename(&root(), a.ino, "f", b.ino, "empty", 0),
        Err(Errno::EISDIR)
    );
    fs.rename(&root(), a.ino, "d", b.ino, "empty", 0).unwrap();
    assert_eq!(fs.getattr(empty.ino), Err(Errno::ENOENT));
    assert_eq!(fs.lookup(&root(), b.ino, "empty").unwrap().ino, d.ino);
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 2);
    assert_eq!(
        fs.getattr(b.ino).unwrap().nlink,
        4,
        "b: 2 + full + d (empty went)"
    );
}

#[test]
fn a_directory_cannot_move_into_its_own_subtree_or_over_its_ancestor() {
    let (mut fs, a, _, _, _) = tree();
    let sub = fs.mkdir(&root(), a.ino, "sub", 0o777).unwrap();
    let deep = fs.mkdir(&root(), sub.ino, "deep", 0o777).unwrap();
    assert_eq!(
        fs.rename(&root(), ROOT, "a", deep.ino, "x", 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(fs.rename(&root(), ROOT, "a", a.ino, "x", 0), Err(Errno::EINVAL));
    assert_eq!(
        fs.rename(&root(), sub.ino, "deep", ROOT, "a", 0),
        Err(Errno::ENOTEMPTY)
    );
    assert_eq!(
        fs.rename(&root(), sub.ino, "deep", ROOT, "a", EXCHANGE),
        Err(Errno::EINVAL)
    );
    fs.rename(&root(), sub.ino, "deep", ROOT, "deep", 0)
        .expect("moving up is fine");
}

#[test]
fn noreplace_and_exchange_follow_the_target() {
    let (mut fs, a, b, f, g) = tree();
    assert_eq!(
        fs.rename(&root(), a.ino, "f", b.ino, "g", NOREPLACE),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        fs.rename(&root(), a.ino, "f", b.ino, "..", NOREPLACE),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        fs.rename(&root(), a.ino, "f", b.ino, "none", EXCHANGE),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        fs.rename(&root(), a.ino, "f", b.ino, "g", EXCHANGE | NOREPLACE),
        Err(Errno::EINVAL)
    );
    assert_eq!(fs.rename(&root(), a.ino, "f", b.ino, "g", 4), Err(Errno::EINVAL));
    fs.rename(&root(), a.ino, "f", b.ino, "f", NOREPLACE).unwrap();
    fs.rename(&root(), b.ino, "f", b.ino, "g", EXCHANGE).unwrap();
    assert_eq!(fs.lookup(&root(), b.ino, "g").unwrap().ino, f.ino);
    assert_eq!(fs.lookup(&root(), b.ino, "f").unwrap().ino, g.ino);
    assert_eq!(fs.live_inodes(), 5);
}

#[test]
fn exchanging_a_file_and_a_directory_moves_the_links_and_parent() {
    let (mut fs, a, b, f, _) = tree();
    let d = fs.mkdir(&root(), b.ino, "d", 0o755).unwrap();
    fs.mknod(&root(), d.ino, "inside", 0o644).unwrap();
    fs.rename(&root(), a.ino, "f", b.ino, "d", EXCHANGE).unwrap();
    let now = fs.now();
    let (in_a, in_b) = (
        fs.lookup(&root(), a.ino, "f").unwrap(),
        fs.lookup(&root(), b.ino, "d").unwrap(),
    );
    assert_eq!(
        (in_a.ino, in_a.kind, in_b.ino, in_b.kind),
        (d.ino, FileKind::Dir, f.ino, FileKind::File)
    );
    assert_eq!((in_a.ctime, in_b.ctime), (now, now));
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 3);
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 2);
    assert_eq!(fs.lookup(&root(), d.ino, "..").unwrap().ino, a.ino);
    assert_eq!(
        fs.lookup(&root(), d.ino, "inside").unwrap().kind,
        FileKind::File,
        "contents travel along"
    );
}

#[test]
fn the_same_inode_under_both_names_changes_nothing() {
    let (mut fs, a, b, f, _) = tree();
    fs.link(&root(), f.ino, b.ino, "alias").unwrap();
    let (effects, reply) = fs.dry_run(
        &root(),
        FsOp::Rename {
            parent: a.ino,
            name: b"f".to_vec(),
            new_parent: b.ino,
            new_name: b"alias".to_vec(),
            flags: 0,
        },
    );
    assert_eq!(reply, Ok(FsReply::Done));
    assert!(effects.records.is_empty() && effects.delta.is_none() && effects.meta.is_none());
    fs.rename(&root(), a.ino, "f", a.ino, "f", 0).unwrap();
    assert_eq!(fs.lookup(&root(), a.ino, "f").unwrap().ino, f.ino);
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 2);
}

#[test]
fn renames_check_permissions_and_names() {
    let (mut fs, a, b, _, _) = tree();
    let (alice, bob) = (user(1000, 100, &[]), user(2000, 100, &[]));
    let d = fs.mkdir(&alice, a.ino, "d", 0o555).unwrap();
    assert_eq!(
        fs.rename(&alice, a.ino, "d", b.ino, "d", 0),
        Err(Errno::EACCES),
        "its `..` changes"
    );
    fs.rename(&alice, a.ino, "d", a.ino, "d2", 0)
        .expect("same parent: no write on the directory needed");
    fs.setattr(
        &alice,
        d.ino,
        SetAttr {
            mode: Some(0o755),
            ..SetAttr::default()
        },
    )
    .unwrap();
    fs.rename(&alice, a.ino, "d2", b.ino, "d", 0).unwrap();
    fs.setattr(
        &root(),
        b.ino,
        SetAttr {
            mode: Some(0o1777),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(
        fs.rename(&bob, b.ino, "d", a.ino, "x", 0),
        Err(Errno::EPERM),
        "sticky source"
    );
    fs.mknod(&bob, a.ino, "mine", 0o644).unwrap();
    assert_eq!(
        fs.rename(&bob, a.ino, "mine", b.ino, "d", 0),
        Err(Errno::EPERM),
        "sticky target"
    );
    fs.setattr(
        &root(),
        a.ino,
        SetAttr {
            mode: Some(0o755),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(
        fs.rename(&bob, a.ino, "mine", b.ino, "mine", 0),
        Err(Errno::EACCES)
    );
    assert_eq!(fs.rename(&root(), a.ino, ".", b.ino, "x", 0), Err(Errno::EINVAL));
    assert_eq!(
        fs.rename(&root(), a.ino, "mine", b.ino, "..", 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        fs.rename(&root(), a.ino, "none", b.ino, "x", 0),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        fs.rename(&root(), a.ino, "mine", foreign_ino(), "x", 0),
        Err(Errno::EXDEV)
    );
}

#[test]
fn a_replaced_open_file_lives_on_and_full_parents_refuse_directories() {
    let (mut fs, a, b, _, g) = tree();
    let h = fs.open(&root(), g.ino, true, false).unwrap();
    fs.rename(&root(), a.ino, "f", b.ino, "g", 0).unwrap();
    assert_eq!(fs.getattr(g.ino).unwrap().nlink, 0);
    fs.release(g.ino, h).unwrap();
    assert_eq!(fs.getattr(g.ino), Err(Errno::ENOENT));
    fs.mkdir(&root(), a.ino, "d", 0o755).unwrap();
    fs.raw(1, |e| e.add_links(Ino(b.ino), LINK_MAX as i64 - 2));
    assert_eq!(fs.rename(&root(), a.ino, "d", b.ino, "d", 0), Err(Errno::EMLINK));
}
