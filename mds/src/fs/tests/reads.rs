//! Reads: lookup, getattr, access, statfs, and readdir: paging, cookies and name conflicts.

use crdt::model::directory::{Directory, DirectoryView, derived_name};
use crdt::model::{Entry, FileKind, Name, NewInode};
use proto::fs::{FsOp, StatFs, access};
use proto::{Errno, FsReply};

use super::*;
use crate::fs::entries::Entries;
use crate::fs::state::FsState;

#[test]
fn lookup_resolves_dots_and_needs_search_permission() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o700).unwrap();
    let f = fs.mknod(&root(), d.ino, "f", 0o644).unwrap();
    assert_eq!(fs.lookup(&root(), ROOT, "..").unwrap().ino, ROOT);
    assert_eq!(fs.lookup(&root(), d.ino, "..").unwrap().ino, ROOT);
    assert_eq!(fs.lookup(&root(), d.ino, "f").unwrap(), f);
    assert_eq!(fs.lookup(&user(1000, 100, &[]), d.ino, "f"), Err(Errno::EACCES));
    assert_eq!(fs.lookup(&root(), d.ino, "g"), Err(Errno::ENOENT));
    assert_eq!(fs.lookup(&root(), f.ino, "g"), Err(Errno::ENOTDIR));
    assert_eq!(
        fs.lookup(&root(), d.ino, &"x".repeat(256)),
        Err(Errno::ENAMETOOLONG)
    );
    assert_eq!(fs.lookup(&root(), d.ino, ""), Err(Errno::EINVAL));
    assert_eq!(fs.lookup(&root(), foreign_ino(), "f"), Err(Errno::EXDEV));
    assert_eq!(fs.getattr(foreign_ino()), Err(Errno::EXDEV));
    assert_eq!(fs.getattr(0xdead_0001), Err(Errno::ENOENT));
    assert_eq!(
        fs.exec(&root(), FsOp::GetAttr { ino: ROOT }),
        Err(Errno::EINVAL),
        "reads are not logged"
    );
    assert_eq!(
        fs.read(
            &root(),
            FsOp::Unlink {
                parent: ROOT,
                name: b"d".to_vec()
            }
        ),
        Err(Errno::EINVAL)
    );
}

#[test]
fn access_checks_each_mask_bit() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o640).unwrap();
    let check = |fs: &Fs, cred: &Cred, mask| fs.read(cred, FsOp::Access { ino: f.ino, mask });
    let stranger = user(1000, 100, &[]);
    let member = user(1000, 5, &[0]);
    assert_eq!(check(&fs, &stranger, 0), Ok(FsReply::Done), "existence only");
    assert_eq!(check(&fs, &stranger, access::R), Err(Errno::EACCES));
    assert_eq!(check(&fs, &member, access::R), Ok(FsReply::Done));
    assert_eq!(check(&fs, &member, access::R | access::W), Err(Errno::EACCES));
    assert_eq!(check(&fs, &root(), access::R | access::W), Ok(FsReply::Done));
    assert_eq!(
        check(&fs, &root(), access::X),
        Err(Errno::EACCES),
        "no execute bit at all"
    );
    assert_eq!(check(&fs, &root(), 8), Err(Errno::EINVAL));
    assert_eq!(
        fs.read(
            &root(),
            FsOp::Access {
                ino: 0xdead_0001,
                mask: 0
            }
        ),
        Err(Errno::ENOENT)
    );
}

#[test]
fn statfs_reports_capacity_and_inodes() {
    let mut fs = Fs::new();
    fs.state.capacity = (40 << 20, 10 << 20);
    fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    let FsReply::StatFs(s) = fs.read(&root(), FsOp::StatFs).unwrap() else {
        panic!()
    };
    let StatFs {
        block_size,
        blocks,
        blocks_free,
        files,
        files_free,
        name_max,
    } = s;
    assert_eq!(
        (block_size, blocks, blocks_free, name_max),
        (4096, 10240, 7680, 255)
    );
    assert_eq!(files - files_free, 2, "root and f");
}

#[test]
fn readdir_pages_return_every_name_once_in_order_and_resume_from_any_cookie() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    let mut expected: Vec<String> = (0..2500).map(|i| format!("n{i:05}")).collect();
    for name in &expected {
        fs.mknod(&root(), d.ino, name, 0o644).unwrap();
    }
    expected.sort();
    let mut pages = Vec::new();
    let mut cookie = None;
    loop {
        let (entries, next) = fs.readdir(&root(), d.ino, cookie.clone(), 100).unwrap();
        assert!(entries.len() <= 100);
        pages.push((cookie, entries));
        match next {
            Some(c) => cookie = Some(c),
            None => break,
        }
    }
    let names: Vec<String> = pages
        .iter()
        .flat_map(|(_, p)| p.iter().map(|e| String::from_utf8(e.name.clone()).unwrap()))
        .collect();
    assert_eq!(&names[..2], [".", ".."]);
    assert_eq!(names[2..], expected[..], "every name once, in order");
    assert_eq!(pages.len(), 26);
    assert!(
        fs.state.widest_read.get() <= 101,
        "pages read about a page: {}",
        fs.state.widest_read.get()
    );
    for (cookie, page) in pages.iter().skip(1).step_by(7) {
        let (again, _) = fs.readdir(&root(), d.ino, cookie.clone(), 100).unwrap();
        assert_eq!(&again, page, "a cookie resumes where it was made");
    }
    let (cookie, third) = &pages[3];
    fs.unlink(&root(), d.ino, std::str::from_utf8(&third[0].name).unwrap())
        .unwrap();
    fs.unlink(&root(), d.ino, "n00000").unwrap();
    let (after_removal, _) = fs.readdir(&root(), d.ino, cookie.clone(), 100).unwrap();
    assert_eq!(
        after_removal[..third.len() - 1],
        third[1..],
        "independent of other entries"
    );
}

#[test]
fn readdir_needs_read_permission_and_lists_attributes_with_plus() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o311).unwrap();
    let f = fs.mknod(&root(), d.ino, "f", 0o644).unwrap();
    assert_eq!(
        fs.readdir(&user(1000, 100, &[]), d.ino, None, 10),
        Err(Errno::EACCES)
    );
    assert_eq!(fs.readdir(&root(), d.ino, None, 0), Err(Errno::EINVAL));
    assert_eq!(fs.readdir(&root(), d.ino, Some(vec![9]), 10), Err(Errno::EINVAL));
    assert_eq!(fs.readdir(&root(), f.ino, None, 10), Err(Errno::ENOTDIR));
    let FsReply::Dir { entries, cookie } = fs
        .read(
            &root(),
            FsOp::ReadDir {
                dir: d.ino,
                cookie: None,
                max: 10,
                plus: true,
            },
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(cookie, None);
    let summary: Vec<_> = entries.iter().map(|e| (e.name.clone(), e.ino, e.kind)).collect();
    assert_eq!(
        summary,
        vec![
            (b".".to_vec(), d.ino, FileKind::Dir),
            (b"..".to_vec(), ROOT, FileKind::Dir),
            (b"f".to_vec(), f.ino, FileKind::File)
        ]
    );
    assert_eq!(entries[2].attr.as_ref(), Some(&f));
    assert_eq!(entries[1].attr.as_ref().map(|a| a.ino), Some(ROOT));
    let (first, next) = fs.readdir(&root(), d.ino, None, 1).unwrap();
    assert_eq!(first.len(), 2, "the dots always come together");
    let (rest, end) = fs.readdir(&root(), d.ino, next, 1).unwrap();
    assert_eq!((rest.len(), end), (1, None));
}

/// A root holding "a" twice (inodes made concurrently by two replicas) and "b": the
/// conflict's winner is `x`, the first added.
fn conflict() -> (Fs, u64, u64) {
    let mut fs = Fs::new();
    let (x, y) = (ino(2, 1), ino(3, 1));
    for (node, i) in [(2, x), (3, y)] {
        fs.raw(node, |e| {
            let time = time(1);
            e.create(
                Ino(i),
                NewInode {
                    kind: FileKind::File,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    rdev: 0,
                    time,
                    nlink: 1,
                    symlink: None,
                },
            );
            e.link(Ino(ROOT), Name::new("a").unwrap(), Ino(i));
        });
    }
    fs.mknod(&root(), ROOT, "b", 0o644).unwrap();
    (fs, x, y)
}

/// An inode number allocated by node `allocator` in the root's bucket.
fn ino(allocator: u16, counter: u64) -> u64 {
    IdParts {
        counter,
        allocator,
        bucket: Bucket(1),
    }
    .compose()
    .unwrap()
}

#[test]
fn conflicting_names_resolve_and_list_as_the_crdt_rule_says() {
    let (mut fs, x, y) = conflict();
    let loser = String::from_utf8(
        derived_name(&Name::new("a").unwrap(), Ino(y), 0)
            .as_bytes()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(fs.lookup(&root(), ROOT, "a").unwrap().ino, x);
    assert_eq!(fs.lookup(&root(), ROOT, &loser).unwrap().ino, y);
    assert_eq!(fs.names(ROOT, 100), [".", "..", "a", &loser, "b"]);
    assert_eq!(
        fs.names(ROOT, 3),
        [".", "..", "a", &loser, "b"],
        "a page never splits a group"
    );
    let (page, _) = fs.readdir(&root(), ROOT, None, 3).unwrap();
    assert_eq!(page.len(), 2, "the group of two does not fit after the dots");
    let mut reference = Directory::new();
    for (e, tags) in FsState::entries_after(&fs.state, Ino(ROOT), None, 10).unwrap() {
        for tag in tags {
            reference.apply_add(&e, tag, &[]);
        }
    }
    let entries = Entries::new(&fs.state, Ino(ROOT));
    for name in ["a", "b", loser.as_str(), "c", "a~0000000000000001"] {
        let name = Name::new(name).unwrap();
        assert_eq!(
            entries.resolve(&name).unwrap().map(|e| e.ino),
            reference.lookup(&name),
            "{name:?}"
        );
    }
    fs.rename(&root(), ROOT, &loser, ROOT, "c", 0).unwrap();
    assert_eq!(fs.lookup(&root(), ROOT, "c").unwrap().ino, y);
    assert_eq!(fs.names(ROOT, 100), [".", "..", "a", "b", "c"]);
    assert_eq!(fs.state.entries_of(Ino(ROOT)).len(), 3);
    let again = fs.state.entries_of(Ino(ROOT));
    assert!(again.contains(&Entry {
        name: Name::new("c").unwrap(),
        ino: Ino(y)
    }));
}

#[test]
fn a_derived_name_can_be_removed() {
    let (mut fs, x, y) = conflict();
    let loser = String::from_utf8(
        derived_name(&Name::new("a").unwrap(), Ino(y), 0)
            .as_bytes()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(
        fs.mknod(&root(), ROOT, &loser, 0o644),
        Err(Errno::EEXIST),
        "a visible name is taken"
    );
    fs.unlink(&root(), ROOT, &loser).unwrap();
    assert_eq!(fs.getattr(y), Err(Errno::ENOENT));
    assert_eq!(fs.names(ROOT, 100), [".", "..", "a", "b"]);
    assert_eq!(fs.lookup(&root(), ROOT, "a").unwrap().ino, x);
}

#[test]
fn long_derived_names_resolve_through_their_cut_prefix() {
    let mut fs = Fs::new();
    let long = "y".repeat(255);
    let (x, y) = (ino(2, 1), ino(3, 1));
    for (node, i) in [(2, x), (3, y)] {
        fs.raw(node, |e| {
            let time = time(1);
            e.create(
                Ino(i),
                NewInode {
                    kind: FileKind::File,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    rdev: 0,
                    time,
                    nlink: 1,
                    symlink: None,
                },
            );
            e.link(Ino(ROOT), Name::new(long.clone()).unwrap(), Ino(i));
        });
    }
    let derived = derived_name(&Name::new(long.clone()).unwrap(), Ino(y), 0);
    assert_eq!(derived.as_bytes().len(), 255);
    let derived = String::from_utf8(derived.as_bytes().to_vec()).unwrap();
    assert_eq!(fs.lookup(&root(), ROOT, &derived).unwrap().ino, y);
    assert_eq!(fs.lookup(&root(), ROOT, &long).unwrap().ino, x);
    fs.unlink(&root(), ROOT, &derived).unwrap();
    assert_eq!(fs.names(ROOT, 10), [".", "..", long.as_str()]);
}
