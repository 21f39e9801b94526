//! Extended attributes: flags, limits, namespaces and their permissions, ctime.

use crdt::model::FileKind;
use proto::fs::xattr_flags::{CREATE, REPLACE};
use proto::fs::{FsOp, XATTR_VALUE_MAX};
use proto::{Errno, FsReply};

use super::*;

fn set(fs: &mut Fs, cred: &Cred, ino: u64, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
    done(fs.exec(
        cred,
        FsOp::SetXattr {
            ino,
            name: name.to_vec(),
            value: value.to_vec(),
            flags,
        },
    ))
}

fn get(fs: &Fs, cred: &Cred, ino: u64, name: &[u8]) -> Result<Vec<u8>, Errno> {
    match fs.read(
        cred,
        FsOp::GetXattr {
            ino,
            name: name.to_vec(),
        },
    )? {
        FsReply::Xattr(v) => Ok(v),
        other => panic!("expected a value, got {other:?}"),
    }
}

fn list(fs: &Fs, cred: &Cred, ino: u64) -> Vec<Vec<u8>> {
    match fs.read(cred, FsOp::ListXattr { ino }).unwrap() {
        FsReply::XattrNames(n) => n,
        other => panic!("expected names, got {other:?}"),
    }
}

fn remove(fs: &mut Fs, cred: &Cred, ino: u64, name: &[u8]) -> Result<(), Errno> {
    done(fs.exec(
        cred,
        FsOp::RemoveXattr {
            ino,
            name: name.to_vec(),
        },
    ))
}

#[test]
fn user_attributes_are_set_read_listed_and_removed() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    fs.setattr(
        &root(),
        f.ino,
        SetAttr {
            uid: Some(1000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    set(&mut fs, &alice, f.ino, b"user.a", b"1", 0).unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().ctime, fs.now());
    assert_eq!(get(&fs, &alice, f.ino, b"user.a"), Ok(b"1".to_vec()));
    assert_eq!(
        set(&mut fs, &alice, f.ino, b"user.a", b"2", CREATE),
        Err(Errno::EEXIST)
    );
    set(&mut fs, &alice, f.ino, b"user.a", b"2", REPLACE).unwrap();
    assert_eq!(
        set(&mut fs, &alice, f.ino, b"user.b", b"x", REPLACE),
        Err(Errno::ENODATA)
    );
    set(&mut fs, &alice, f.ino, b"user.b", b"", CREATE).unwrap();
    assert_eq!(
        list(&fs, &user(5, 5, &[]), f.ino),
        vec![b"user.a".to_vec(), b"user.b".to_vec()]
    );
    assert_eq!(get(&fs, &alice, f.ino, b"user.b"), Ok(Vec::new()));
    remove(&mut fs, &alice, f.ino, b"user.a").unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().ctime, fs.now());
    assert_eq!(get(&fs, &alice, f.ino, b"user.a"), Err(Errno::ENODATA));
    assert_eq!(remove(&mut fs, &alice, f.ino, b"user.a"), Err(Errno::ENODATA));
    assert_eq!(set(&mut fs, &alice, f.ino, b"user.c", b"", 4), Err(Errno::EINVAL));
}

#[test]
fn names_and_values_have_limits_and_known_namespaces() {
    let mut fs = Fs::new();
    let f = fs.mknod(&root(), ROOT, "f", 0o644).unwrap();
    let long = [b"user.".as_slice(), &[b'x'; 251]].concat();
    assert_eq!(set(&mut fs, &root(), f.ino, &long, b"", 0), Err(Errno::ERANGE));
    set(&mut fs, &root(), f.ino, &long[..255], b"", 0).unwrap();
    assert_eq!(set(&mut fs, &root(), f.ino, b"", b"", 0), Err(Errno::ERANGE));
    assert_eq!(set(&mut fs, &root(), f.ino, b"user.", b"", 0), Err(Errno::EINVAL));
    assert_eq!(
        set(&mut fs, &root(), f.ino, b"system.posix_acl_access", b"", 0),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        set(&mut fs, &root(), f.ino, b"other.x", b"", 0),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(get(&fs, &root(), f.ino, b"system.x"), Err(Errno::EOPNOTSUPP));
    let big = vec![0u8; XATTR_VALUE_MAX + 1];
    assert_eq!(
        set(&mut fs, &root(), f.ino, b"user.big", &big, 0),
        Err(Errno::E2BIG)
    );
    set(&mut fs, &root(), f.ino, b"user.big", &big[1..], 0).unwrap();
    assert_eq!(
        set(&mut fs, &root(), foreign_ino(), b"user.a", b"", 0),
        Err(Errno::EXDEV)
    );
}

#[test]
fn user_attributes_follow_the_mode_and_the_file_type() {
    let mut fs = Fs::new();
    let (alice, bob) = (user(1000, 100, &[]), user(2000, 200, &[]));
    let f = fs.mknod(&root(), ROOT, "f", 0o640).unwrap();
    assert_eq!(
        set(&mut fs, &alice, f.ino, b"user.a", b"1", 0),
        Err(Errno::EACCES)
    );
    set(&mut fs, &root(), f.ino, b"user.a", b"1", 0).unwrap();
    assert_eq!(get(&fs, &alice, f.ino, b"user.a"), Err(Errno::EACCES));
    assert_eq!(remove(&mut fs, &alice, f.ino, b"user.a"), Err(Errno::EACCES));
    let node = FsOp::MkNod {
        parent: ROOT,
        name: b"p".to_vec(),
        kind: FileKind::Fifo,
        mode: 0o666,
        rdev: 0,
    };
    let p = attr(fs.exec(&root(), node)).unwrap();
    assert_eq!(
        set(&mut fs, &root(), p.ino, b"user.a", b"1", 0),
        Err(Errno::EPERM)
    );
    assert_eq!(get(&fs, &root(), p.ino, b"user.a"), Err(Errno::ENODATA));
    let tmp = fs.mkdir(&root(), ROOT, "tmp", 0o777).unwrap();
    fs.setattr(
        &root(),
        tmp.ino,
        SetAttr {
            mode: Some(0o1777),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(
        set(&mut fs, &bob, tmp.ino, b"user.a", b"1", 0),
        Err(Errno::EPERM),
        "sticky directory"
    );
    set(&mut fs, &root(), tmp.ino, b"user.a", b"1", 0).unwrap();
    assert_eq!(get(&fs, &bob, tmp.ino, b"user.a"), Ok(b"1".to_vec()));
}

#[test]
fn trusted_is_for_root_and_security_is_written_by_root() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let f = fs.mknod(&root(), ROOT, "f", 0o666).unwrap();
    assert_eq!(
        set(&mut fs, &alice, f.ino, b"trusted.t", b"1", 0),
        Err(Errno::EPERM)
    );
    set(&mut fs, &root(), f.ino, b"trusted.t", b"1", 0).unwrap();
    assert_eq!(get(&fs, &alice, f.ino, b"trusted.t"), Err(Errno::ENODATA));
    assert_eq!(get(&fs, &root(), f.ino, b"trusted.t"), Ok(b"1".to_vec()));
    assert_eq!(remove(&mut fs, &alice, f.ino, b"trusted.t"), Err(Errno::EPERM));
    assert_eq!(
        set(&mut fs, &alice, f.ino, b"security.s", b"1", 0),
        Err(Errno::EPERM)
    );
    set(&mut fs, &root(), f.ino, b"security.s", b"1", 0).unwrap();
    assert_eq!(get(&fs, &alice, f.ino, b"security.s"), Ok(b"1".to_vec()));
    assert_eq!(list(&fs, &alice, f.ino), vec![b"security.s".to_vec()]);
    assert_eq!(
        list(&fs, &root(), f.ino),
        vec![b"security.s".to_vec(), b"trusted.t".to_vec()]
    );
}
