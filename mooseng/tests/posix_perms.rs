//! POSIX permissions through a real mount, for users other than root: mode bits on open and
//! create, search permission, the sticky bit, who may chmod and chown, set-group-id directory
//! inheritance, set-id bits cleared by a non-owner's write, and access(2). The checks as
//! another user run in a child that dropped to that uid (see `posix/user.rs`).
//!
//! The mount is made with `allow_other` (the kernel lets no other user into a FUSE mount
//! without it); every other option is the default (no `default_permissions`: the metadata
//! servers make every check).
//!
//! Tier: fuse (real `mooseng` processes and a real FUSE mount; needs `/dev/fuse`).

mod posix;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use libc::{F_OK, O_CREAT, O_RDONLY, O_WRONLY, R_OK, W_OK, X_OK};
use posix::sys::{self, Utime};
use posix::user::{ALICE, BOB};
use posix::{c, errno};

#[test]
fn permissions_hold_for_other_users() {
    if !testkit::fuse_or_skip() {
        return;
    }
    let (cluster, mut mounts) = posix::start(&["allow_other"]);
    // The mounts live in the cluster's private directory: let other users through to them.
    fs::set_permissions(cluster.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let m = &mounts[0];
    let dir = |name: &str, mode: u32| {
        let d = m.join(name);
        fs::create_dir(&d).unwrap();
        chmod(&d, mode);
        d
    };
    mode_bits_on_open(&dir("open", 0o777));
    create_needs_write_and_search(&dir("create", 0o777));
    sticky_directories(&dir("sticky", 0o1777));
    chmod_and_chown(&dir("owner", 0o777));
    setgid_directories(&dir("setgid", 0o777));
    writes_clear_set_id_bits(&dir("setid", 0o777));
    access_answers(&dir("access", 0o777));
    times_and_sizes_of_anothers_file(&dir("times", 0o777));
    assert!(mounts[0].unmount(), "unmounts cleanly");
}

fn chmod(p: &Path, mode: u32) {
    sys::chmod(&c(p), mode).unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// A file made by root with `mode`.
fn roots_file(p: &Path, mode: u32) {
    fs::write(p, b"root's").unwrap();
    chmod(p, mode);
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn mode_bits_on_open(d: &Path) {
    roots_file(&d.join("f"), 0o644);
    roots_file(&d.join("group"), 0o640);
    sys::chown(&c(d.join("group")), 0, ALICE.gid).unwrap();
    let (f, group) = (c(d.join("f")), c(d.join("group")));
    let open = move |p: std::ffi::CString, flags| move || sys::open(&p, flags, 0).map(drop);
    assert_eq!(
        ALICE.run(open(f.clone(), O_WRONLY)),
        Err(libc::EACCES),
        "write without the w bit"
    );
    assert_eq!(ALICE.run(open(f.clone(), libc::O_RDWR)), Err(libc::EACCES));
    assert_eq!(
        ALICE.run(open(f.clone(), O_WRONLY | libc::O_TRUNC)),
        Err(libc::EACCES),
        "O_TRUNC"
    );
    assert_eq!(ALICE.run(open(f, O_RDONLY)), Ok(()), "others may read");
    assert_eq!(
        ALICE.run(open(group.clone(), O_RDONLY)),
        Ok(()),
        "the group class"
    );
    assert_eq!(
        BOB.run(open(group, O_RDONLY)),
        Err(libc::EACCES),
        "neither owner nor group"
    );
    assert_eq!(fs::read(d.join("f")).unwrap(), b"root's");
}

fn create_needs_write_and_search(d: &Path) {
    for (name, mode) in [("nowrite", 0o555), ("nosearch", 0o666), ("open", 0o777)] {
        fs::create_dir(d.join(name)).unwrap();
        chmod(&d.join(name), mode);
    }
    let create = |p: &Path| {
        let p = c(p);
        move || sys::open(&p, O_CREAT | O_WRONLY, 0o644).map(drop)
    };
    let mkdir = |p: &Path| {
        let p = c(p);
        move || sys::mkdir(&p, 0o755)
    };
    assert_eq!(
        ALICE.run(create(&d.join("nowrite/x"))),
        Err(libc::EACCES),
        "no w on the dir"
    );
    assert_eq!(ALICE.run(mkdir(&d.join("nowrite/x"))), Err(libc::EACCES));
    assert_eq!(
        ALICE.run(create(&d.join("nosearch/x"))),
        Err(libc::EACCES),
        "no x on the dir"
    );
    let stat = c(d.join("nosearch/x"));
    assert_eq!(
        ALICE.run(move || sys::access(&stat, F_OK)),
        Err(libc::EACCES),
        "lookup needs x"
    );
    assert_eq!(ALICE.run(create(&d.join("open/x"))), Ok(()));
    assert_eq!(ALICE.run(mkdir(&d.join("open/y"))), Ok(()));
    let made = fs::metadata(d.join("open/x")).unwrap();
    assert_eq!(
        (made.uid(), made.gid()),
        (ALICE.uid, ALICE.gid),
        "owned by its creator"
    );
    assert!(!d.join("nowrite/x").exists() && !d.join("nosearch/x").exists());
}

fn sticky_directories(d: &Path) {
    roots_file(&d.join("roots"), 0o666);
    let at = |name: &str| c(d.join(name));
    let (bobs, alices) = (at("bobs"), at("alices"));
    let create = |p: std::ffi::CString| move || sys::open(&p, O_CREAT | O_WRONLY, 0o666).map(drop);
    let unlink = |p: std::ffi::CString| move || sys::unlink(&p);
    assert_eq!(BOB.run(create(bobs.clone())), Ok(()));
    assert_eq!(ALICE.run(create(alices.clone())), Ok(()));
    assert_eq!(
        ALICE.run(unlink(at("roots"))),
        Err(libc::EPERM),
        "root's file in a sticky dir"
    );
    assert_eq!(
        ALICE.run(unlink(bobs.clone())),
        Err(libc::EPERM),
        "bob's file in a sticky dir"
    );
    let (from, to) = (bobs.clone(), at("moved"));
    assert_eq!(
        ALICE.run(move || sys::renameat2(&from, &to, 0)),
        Err(libc::EPERM),
        "renaming it"
    );
    assert_eq!(ALICE.run(unlink(alices)), Ok(()), "her own file");
    assert_eq!(BOB.run(unlink(bobs)), Ok(()), "his own file");
    assert!(d.join("roots").exists());
    fs::remove_file(d.join("roots")).expect("root may");
}

fn chmod_and_chown(d: &Path) {
    roots_file(&d.join("roots"), 0o666);
    let (roots, own) = (c(d.join("roots")), c(d.join("own")));
    let created = own.clone();
    assert_eq!(
        ALICE.run(move || sys::open(&created, O_CREAT | O_WRONLY, 0o644).map(drop)),
        Ok(())
    );
    let chmod_as = |p: std::ffi::CString, mode| move || sys::chmod(&p, mode);
    let chown_as = |p: std::ffi::CString, uid, gid| move || sys::chown(&p, uid, gid);
    assert_eq!(
        ALICE.run(chmod_as(roots.clone(), 0o777)),
        Err(libc::EPERM),
        "chmod of another's file"
    );
    assert_eq!(
        ALICE.run(chmod_as(own.clone(), 0o600)),
        Ok(()),
        "chmod of her own"
    );
    assert_eq!(mode_of(&d.join("own")), 0o600);
    assert_eq!(
        ALICE.run(chown_as(own.clone(), BOB.uid, u32::MAX)),
        Err(libc::EPERM),
        "giving it away"
    );
    assert_eq!(
        ALICE.run(chown_as(own.clone(), u32::MAX, BOB.gid)),
        Err(libc::EPERM),
        "to a group she is not in"
    );
    assert_eq!(
        ALICE.run(chown_as(roots, ALICE.uid, u32::MAX)),
        Err(libc::EPERM),
        "taking root's"
    );
    assert_eq!(
        ALICE.run(chown_as(own, ALICE.uid, ALICE.gid)),
        Ok(()),
        "no change is allowed"
    );
    let meta = fs::metadata(d.join("own")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (ALICE.uid, ALICE.gid));
    assert_eq!(mode_of(&d.join("roots")), 0o666);
}

fn setgid_directories(d: &Path) {
    let shared = d.join("shared");
    fs::create_dir(&shared).unwrap();
    sys::chown(&c(&shared), 0, 500).unwrap();
    chmod(&shared, 0o2777);
    let (f, sub) = (c(shared.join("f")), c(shared.join("sub")));
    assert_eq!(
        ALICE.run(move || sys::open(&f, O_CREAT | O_WRONLY, 0o644).map(drop)),
        Ok(())
    );
    assert_eq!(ALICE.run(move || sys::mkdir(&sub, 0o755)), Ok(()));
    let file = fs::metadata(shared.join("f")).unwrap();
    assert_eq!(
        (file.uid(), file.gid()),
        (ALICE.uid, 500),
        "a file takes the directory's group"
    );
    let sub = fs::metadata(shared.join("sub")).unwrap();
    assert_eq!((sub.uid(), sub.gid()), (ALICE.uid, 500), "so does a subdirectory");
    assert_eq!(sub.mode() & 0o2000, 0o2000, "which is set-group-id too");
    let plain = c(d.join("plain"));
    assert_eq!(ALICE.run(move || sys::mkdir(&plain, 0o755)), Ok(()));
    assert_eq!(
        fs::metadata(d.join("plain")).unwrap().gid(),
        ALICE.gid,
        "no inheritance without the bit"
    );
}

fn writes_clear_set_id_bits(d: &Path) {
    let f = d.join("f");
    roots_file(&f, 0o6777);
    let p = c(&f);
    let write = move || {
        let fd = sys::open(&p, O_WRONLY, 0)?;
        sys::write(&fd, b"alice")
    };
    assert_eq!(ALICE.run(write), Ok(()));
    assert_eq!(
        mode_of(&f),
        0o777,
        "a non-owner's write clears set-user-id and set-group-id"
    );
    assert_eq!(fs::read(&f).unwrap(), b"alices", "her bytes over root's");
    let g = d.join("g");
    roots_file(&g, 0o6777);
    std::io::Write::write_all(&mut fs::OpenOptions::new().write(true).open(&g).unwrap(), b"root").unwrap();
    assert_eq!(mode_of(&g), 0o6777, "root's write keeps them");
}

fn access_answers(d: &Path) {
    roots_file(&d.join("f"), 0o644);
    fs::create_dir(d.join("nosearch")).unwrap();
    chmod(&d.join("nosearch"), 0o700);
    let check = |p: &Path, mode| {
        let p = c(p);
        move || sys::access(&p, mode)
    };
    let f = d.join("f");
    assert_eq!(ALICE.run(check(&f, R_OK)), Ok(()));
    assert_eq!(ALICE.run(check(&f, F_OK)), Ok(()));
    assert_eq!(ALICE.run(check(&f, W_OK)), Err(libc::EACCES));
    assert_eq!(ALICE.run(check(&f, X_OK)), Err(libc::EACCES));
    assert_eq!(
        ALICE.run(check(&f, R_OK | W_OK)),
        Err(libc::EACCES),
        "every bit asked must be granted"
    );
    assert_eq!(
        ALICE.run(check(d, R_OK | W_OK | X_OK)),
        Ok(()),
        "a 0777 directory"
    );
    assert_eq!(
        ALICE.run(check(&d.join("nosearch/x"), F_OK)),
        Err(libc::EACCES),
        "path without search"
    );
    assert_eq!(ALICE.run(check(&d.join("missing"), F_OK)), Err(libc::ENOENT));
    assert_eq!(
        errno(sys::access(&c(&f), X_OK)),
        libc::EACCES,
        "root executes only what has an x bit"
    );
    chmod(&f, 0o444);
    sys::access(&c(&f), W_OK).expect("root writes anything");
}

fn times_and_sizes_of_anothers_file(d: &Path) {
    roots_file(&d.join("shared"), 0o666);
    roots_file(&d.join("private"), 0o644);
    let (shared, private) = (c(d.join("shared")), c(d.join("private")));
    let utimens = |p: std::ffi::CString, t: Utime| move || sys::utimensat(&p, t, t);
    let truncate = |p: std::ffi::CString| move || sys::truncate(&p, 1);
    assert_eq!(
        ALICE.run(utimens(shared.clone(), Utime::Now)),
        Ok(()),
        "UTIME_NOW with write permission"
    );
    assert_eq!(
        ALICE.run(utimens(private.clone(), Utime::Now)),
        Err(libc::EACCES),
        "UTIME_NOW without"
    );
    assert_eq!(
        ALICE.run(utimens(shared.clone(), Utime::At(5, 0))),
        Err(libc::EPERM),
        "explicit times: owner only"
    );
    assert_eq!(
        ALICE.run(truncate(shared)),
        Ok(()),
        "truncate with write permission"
    );
    assert_eq!(
        ALICE.run(truncate(private)),
        Err(libc::EACCES),
        "truncate without"
    );
    assert_eq!(fs::metadata(d.join("shared")).unwrap().len(), 1);
    assert_eq!(fs::metadata(d.join("private")).unwrap().len(), 6);
}
