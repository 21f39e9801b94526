//! POSIX namespace semantics through a real mount, with the exact errno Linux gives: open
//! flags, names, mkdir/rmdir/unlink/rename/link/symlink/readlink, `renameat2` flags, extended
//! attributes, statfs, large directory listings with `telldir`/`seekdir`, and `fallocate` /
//! `SEEK_DATA` / `SEEK_HOLE` as the mount documents them (chunk granularity).
//!
//! Tier: fuse (real `mooseng` processes and a real FUSE mount; needs `/dev/fuse`).

mod posix;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use libc::{O_CREAT, O_DIRECTORY, O_EXCL, O_RDONLY, O_RDWR, O_WRONLY};
use posix::sys::{self, Dir};
use posix::{c, errno};

/// Bytes per chunk: the granularity of `SEEK_DATA` / `SEEK_HOLE`.
const CHUNK: i64 = 64 << 20;

#[test]
fn namespace_semantics_match_linux() {
    if !testkit::fuse_or_skip() {
        return;
    }
    let (_cluster, mut mounts) = posix::start(&[""]);
    let m = &mounts[0];
    let dir = |name: &str| {
        let d = m.join(name);
        fs::create_dir(&d).unwrap();
        d
    };
    open_flags(&dir("open"));
    names(&dir("names"));
    removal(&dir("removal"));
    open_files_outlive_their_names(&dir("orphans"));
    link_counts_and_special_files(&dir("nlink"));
    rename(&dir("rename"));
    links(&dir("links"));
    xattrs(&dir("xattrs"));
    statfs(&m.path);
    listing(&dir("listing"));
    fallocate(&dir("fallocate"));
    seek_data_and_holes(&dir("seek"));
    assert!(mounts[0].unmount(), "unmounts cleanly");
}

fn open_flags(d: &Path) {
    let f = d.join("f");
    fs::write(&f, b"data").unwrap();
    let excl = sys::open(&c(&f), O_CREAT | O_EXCL | O_WRONLY, 0o644);
    assert_eq!(errno(excl), libc::EEXIST, "O_CREAT|O_EXCL on an existing name");
    assert_eq!(errno(fs::File::open(d.join("missing"))), libc::ENOENT);
    assert_eq!(errno(sys::open(&c(&f), O_RDONLY | O_DIRECTORY, 0)), libc::ENOTDIR);
    assert_eq!(
        errno(sys::open(&c(d), O_WRONLY, 0)),
        libc::EISDIR,
        "writing to a directory"
    );
    assert_eq!(errno(sys::open(&c(d), O_RDWR, 0)), libc::EISDIR);
    assert_eq!(
        errno(fs::read_to_string(d.join("f/x"))),
        libc::ENOTDIR,
        "a path through a file"
    );
    assert_eq!(errno(fs::write(d.join("f/x"), b"")), libc::ENOTDIR);
    let fd = sys::open(&c(d.join("new")), O_CREAT | O_EXCL | O_RDWR, 0o600).expect("O_EXCL on a free name");
    drop(fd);
    assert_eq!(fs::metadata(d.join("new")).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(fs::read(&f).unwrap(), b"data", "nothing above changed the file");
}

fn names(d: &Path) {
    let long = "x".repeat(256);
    let max = "y".repeat(255);
    assert_eq!(
        errno(fs::write(d.join(&long), b"")),
        libc::ENAMETOOLONG,
        "create, 256 bytes"
    );
    assert_eq!(
        errno(fs::metadata(d.join(&long))),
        libc::ENAMETOOLONG,
        "lookup, 256 bytes"
    );
    assert_eq!(
        errno(fs::create_dir(d.join(&long))),
        libc::ENAMETOOLONG,
        "mkdir, 256 bytes"
    );
    fs::write(d.join(&max), b"").expect("255 bytes is allowed");
    assert_eq!(
        errno(std::os::unix::fs::symlink("t", d.join(&long))),
        libc::ENAMETOOLONG,
        "symlink, 256 bytes"
    );
    assert_eq!(errno(fs::rename(d.join(&max), d.join(&long))), libc::ENAMETOOLONG);
    let raw = std::ffi::OsStr::from_bytes(b"bytes-\xff\xfe-not-utf8");
    fs::write(d.join(raw), b"raw").expect("any bytes but / and NUL make a name");
    let listed: Vec<_> = fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(
        listed.iter().any(|n| n == raw),
        "listed byte for byte: {listed:?}"
    );
    assert_eq!(fs::read(d.join(raw)).unwrap(), b"raw");
    assert_eq!(
        errno(fs::hard_link(d.join(&max), d.join(&long))),
        libc::ENAMETOOLONG
    );
}

fn removal(d: &Path) {
    fs::create_dir_all(d.join("full/sub")).unwrap();
    fs::write(d.join("file"), b"").unwrap();
    assert_eq!(errno(fs::remove_dir(d.join("full"))), libc::ENOTEMPTY);
    assert_eq!(
        errno(fs::remove_file(d.join("full"))),
        libc::EISDIR,
        "unlink a directory"
    );
    assert_eq!(
        errno(fs::remove_dir(d.join("file"))),
        libc::ENOTDIR,
        "rmdir a file"
    );
    assert_eq!(errno(fs::remove_dir(d.join("missing"))), libc::ENOENT);
    assert_eq!(errno(fs::remove_file(d.join("missing"))), libc::ENOENT);
    assert_eq!(
        errno(fs::create_dir(d.join("full"))),
        libc::EEXIST,
        "mkdir over a directory"
    );
    assert_eq!(
        errno(fs::create_dir(d.join("file"))),
        libc::EEXIST,
        "mkdir over a file"
    );
    assert_eq!(
        errno(sys::rmdir(&c(d.join("full/sub/.")))),
        libc::EINVAL,
        "rmdir of ."
    );
    fs::remove_dir(d.join("full/sub")).unwrap();
    fs::remove_dir(d.join("full")).expect("empty now");
    fs::remove_file(d.join("file")).unwrap();
    assert_eq!(fs::read_dir(d).unwrap().count(), 0);
}

fn open_files_outlive_their_names(d: &Path) {
    fs::write(d.join("f"), b"data").unwrap();
    fs::write(d.join("target"), b"old").unwrap();
    fs::write(d.join("src"), b"new").unwrap();
    let fd = sys::open(&c(d.join("f")), O_RDWR, 0).unwrap();
    fs::remove_file(d.join("f")).unwrap();
    assert_eq!(errno(fs::metadata(d.join("f"))), libc::ENOENT, "the name is gone");
    let read = |fd: &std::os::fd::OwnedFd| {
        let mut buf = [0u8; 16];
        let n = sys::read(fd, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    assert_eq!(read(&fd), b"data", "the open file still reads");
    sys::write(&fd, b"more").expect("and writes");
    let file = fs::File::from(fd);
    let meta = file.metadata().unwrap();
    assert_eq!((meta.nlink(), meta.len()), (0, 8), "fstat of the orphan");
    drop(file);

    let old = sys::open(&c(d.join("target")), O_RDONLY, 0).unwrap();
    fs::rename(d.join("src"), d.join("target")).unwrap();
    assert_eq!(read(&old), b"old", "a replaced file stays readable");
    assert_eq!(fs::read(d.join("target")).unwrap(), b"new");
    drop(old);

    let appender = fs::OpenOptions::new()
        .append(true)
        .open(d.join("target"))
        .unwrap();
    for piece in [&b"+1"[..], b"+2"] {
        std::io::Write::write_all(&mut &appender, piece).unwrap();
    }
    assert_eq!(
        fs::read(d.join("target")).unwrap(),
        b"new+1+2",
        "O_APPEND writes at the end"
    );
}

fn link_counts_and_special_files(d: &Path) {
    let nlink = |p: &Path| fs::symlink_metadata(p).unwrap().nlink();
    assert_eq!(nlink(d), 2, "an empty directory");
    fs::create_dir(d.join("a")).unwrap();
    fs::create_dir(d.join("b")).unwrap();
    assert_eq!(
        (nlink(d), nlink(&d.join("a"))),
        (4, 2),
        "each subdirectory's .. links the parent"
    );
    fs::rename(d.join("b"), d.join("a/b")).unwrap();
    assert_eq!(
        (nlink(d), nlink(&d.join("a"))),
        (3, 3),
        "moving a subdirectory moves its link"
    );
    fs::remove_dir(d.join("a/b")).unwrap();
    assert_eq!(nlink(&d.join("a")), 2);
    sys::mkfifo(&c(d.join("fifo")), 0o600).unwrap();
    let fifo = fs::symlink_metadata(d.join("fifo")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()),
        "mkfifo makes a fifo"
    );
    assert_eq!(fifo.mode() & 0o7777, 0o600);
}

fn rename(d: &Path) {
    fs::create_dir_all(d.join("full/sub")).unwrap();
    fs::create_dir_all(d.join("empty")).unwrap();
    fs::create_dir_all(d.join("src/inner")).unwrap();
    fs::write(d.join("file"), b"F").unwrap();
    fs::write(d.join("other"), b"O").unwrap();
    assert_eq!(
        errno(fs::rename(d.join("src"), d.join("full"))),
        libc::ENOTEMPTY,
        "dir over non-empty dir"
    );
    assert_eq!(
        errno(fs::rename(d.join("src"), d.join("file"))),
        libc::ENOTDIR,
        "dir over file"
    );
    assert_eq!(
        errno(fs::rename(d.join("file"), d.join("empty"))),
        libc::EISDIR,
        "file over dir"
    );
    assert_eq!(
        errno(fs::rename(d.join("src"), d.join("src/inner/x"))),
        libc::EINVAL,
        "into its own subdir"
    );
    assert_eq!(errno(fs::rename(d.join("missing"), d.join("x"))), libc::ENOENT);
    fs::rename(d.join("src"), d.join("empty")).expect("dir over an empty dir");
    assert!(d.join("empty/inner").is_dir() && !d.join("src").exists());
    fs::hard_link(d.join("other"), d.join("same")).unwrap();
    fs::rename(d.join("other"), d.join("same")).expect("onto another name of the same file");
    assert!(
        d.join("other").exists() && d.join("same").exists(),
        "which changes nothing"
    );
    fs::remove_file(d.join("same")).unwrap();
    fs::rename(d.join("file"), d.join("other")).expect("file over file");
    assert_eq!(fs::read(d.join("other")).unwrap(), b"F");

    fs::write(d.join("a"), b"A").unwrap();
    fs::write(d.join("b"), b"B").unwrap();
    let (a, b, fresh) = (c(d.join("a")), c(d.join("b")), c(d.join("fresh")));
    assert_eq!(
        errno(sys::renameat2(&a, &b, libc::RENAME_NOREPLACE)),
        libc::EEXIST,
        "NOREPLACE over b"
    );
    assert_eq!(fs::read(d.join("b")).unwrap(), b"B");
    sys::renameat2(&a, &fresh, libc::RENAME_NOREPLACE).expect("NOREPLACE to a free name");
    sys::renameat2(&fresh, &b, libc::RENAME_EXCHANGE).expect("EXCHANGE");
    assert_eq!(
        (fs::read(d.join("fresh")).unwrap(), fs::read(d.join("b")).unwrap()),
        (b"B".to_vec(), b"A".to_vec())
    );
    assert_eq!(
        errno(sys::renameat2(&a, &b, libc::RENAME_EXCHANGE)),
        libc::ENOENT,
        "EXCHANGE from a missing name"
    );
    assert_eq!(
        errno(sys::renameat2(&b, &a, libc::RENAME_EXCHANGE)),
        libc::ENOENT,
        "EXCHANGE with a missing name"
    );
    let both = libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE;
    assert_eq!(errno(sys::renameat2(&b, &fresh, both)), libc::EINVAL);
    let dir = c(d.join("empty"));
    sys::renameat2(&dir, &b, libc::RENAME_EXCHANGE).expect("EXCHANGE a directory with a file");
    assert!(d.join("b/inner").is_dir() && fs::read(d.join("empty")).unwrap() == b"A");
}

fn links(d: &Path) {
    fs::create_dir(d.join("dir")).unwrap();
    fs::write(d.join("file"), b"x").unwrap();
    assert_eq!(
        errno(fs::hard_link(d.join("dir"), d.join("dlink"))),
        libc::EPERM,
        "link to a directory"
    );
    assert_eq!(errno(fs::hard_link(d.join("file"), d.join("dir"))), libc::EEXIST);
    assert_eq!(errno(fs::hard_link(d.join("missing"), d.join("x"))), libc::ENOENT);
    fs::hard_link(d.join("file"), d.join("link")).unwrap();
    assert_eq!(fs::metadata(d.join("file")).unwrap().nlink(), 2);
    std::os::unix::fs::symlink("file", d.join("sym")).unwrap();
    assert_eq!(fs::read_link(d.join("sym")).unwrap(), Path::new("file"));
    assert_eq!(
        fs::symlink_metadata(d.join("sym")).unwrap().len(),
        4,
        "a symlink's size is its target's length"
    );
    assert_eq!(
        errno(std::os::unix::fs::symlink("x", d.join("file"))),
        libc::EEXIST
    );
    assert_eq!(
        errno(fs::read_link(d.join("file"))),
        libc::EINVAL,
        "readlink of a regular file"
    );
    assert_eq!(errno(fs::read_link(d.join("missing"))), libc::ENOENT);
    std::os::unix::fs::symlink("missing", d.join("dangling")).unwrap();
    assert_eq!(
        errno(fs::read(d.join("dangling"))),
        libc::ENOENT,
        "following a dangling symlink"
    );
    let long_target = "t".repeat(4096);
    assert_eq!(
        errno(std::os::unix::fs::symlink(&long_target, d.join("long"))),
        libc::ENAMETOOLONG
    );
}

fn xattrs(d: &Path) {
    let f = d.join("f");
    fs::write(&f, b"").unwrap();
    let (p, name, other) = (c(&f), c("user.colour"), c("user.size"));
    let get = |n: &std::ffi::CStr, len: usize| {
        let mut buf = vec![0u8; len];
        sys::getxattr(&p, n, &mut buf).map(|l| {
            buf.truncate(l);
            buf
        })
    };
    assert_eq!(errno(get(&name, 64)), libc::ENODATA, "missing attribute");
    assert_eq!(
        errno(sys::setxattr(&p, &name, b"blue", libc::XATTR_REPLACE)),
        libc::ENODATA,
        "REPLACE a missing one"
    );
    sys::setxattr(&p, &name, b"blue", libc::XATTR_CREATE).expect("CREATE a missing one");
    assert_eq!(
        errno(sys::setxattr(&p, &name, b"red", libc::XATTR_CREATE)),
        libc::EEXIST,
        "CREATE an existing one"
    );
    assert_eq!(get(&name, 64).unwrap(), b"blue");
    sys::setxattr(&p, &name, b"green", libc::XATTR_REPLACE).expect("REPLACE an existing one");
    sys::setxattr(&p, &other, b"", 0).expect("an empty value");
    assert_eq!(get(&name, 64).unwrap(), b"green");
    assert_eq!(get(&other, 64).unwrap(), b"");
    assert_eq!(sys::getxattr(&p, &name, &mut []).unwrap(), 5, "size query");
    assert_eq!(errno(get(&name, 4)), libc::ERANGE, "buffer one byte short");
    let list_len = sys::listxattr(&p, &mut []).unwrap();
    let mut list = vec![0u8; list_len];
    assert_eq!(sys::listxattr(&p, &mut list).unwrap(), list_len);
    let mut names: Vec<&[u8]> = list.split(|b| *b == 0).filter(|n| !n.is_empty()).collect();
    names.sort();
    assert_eq!(names, [&b"user.colour"[..], b"user.size"]);
    assert_eq!(
        errno(sys::listxattr(&p, &mut vec![0u8; list_len - 1])),
        libc::ERANGE
    );
    let big = vec![7u8; 64 << 10];
    sys::setxattr(&p, &other, &big, 0).expect("the largest value");
    assert_eq!(get(&other, 64 << 10).unwrap(), big);
    assert_eq!(
        errno(sys::setxattr(&p, &other, &vec![7u8; (64 << 10) + 1], 0)),
        libc::E2BIG
    );
    sys::removexattr(&p, &name).unwrap();
    assert_eq!(errno(get(&name, 64)), libc::ENODATA, "removed");
    assert_eq!(
        errno(sys::removexattr(&p, &name)),
        libc::ENODATA,
        "removing a missing one"
    );
    assert_eq!(xattr::list(&f).unwrap().collect::<Vec<_>>(), ["user.size"]);
    assert_eq!(get(&other, 64 << 10).unwrap().len(), 64 << 10);
}

fn statfs(root: &Path) {
    let s = sys::statvfs(&c(root)).unwrap();
    assert!(
        s.f_bsize > 0 && s.f_frsize > 0,
        "block sizes: {} {}",
        s.f_bsize,
        s.f_frsize
    );
    assert!(s.f_blocks > 0, "total blocks");
    assert!(
        s.f_bfree <= s.f_blocks && s.f_bavail <= s.f_bfree,
        "free {} avail {} of {}",
        s.f_bfree,
        s.f_bavail,
        s.f_blocks
    );
    assert!(
        s.f_files > 0 && s.f_ffree <= s.f_files,
        "inodes: {} free of {}",
        s.f_ffree,
        s.f_files
    );
    assert_eq!(s.f_namemax, 255);
}

fn listing(d: &Path) {
    const N: usize = 2000;
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for i in (t..N).step_by(4) {
                    // mknod: one metadata operation (no open file to release).
                    sys::mknod_file(&c(d.join(format!("entry-{i:04}"))), 0o644).unwrap();
                }
            });
        }
    });
    let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut stream = Dir::open(&c(d)).unwrap();
    while let Some(name) = stream.next_name() {
        *seen.entry(name).or_default() += 1;
    }
    assert_eq!(seen.len(), N + 2, "every entry, dots included");
    assert!(seen.values().all(|n| *n == 1), "each exactly once");
    assert!(seen.contains_key(&b"."[..]) && seen.contains_key(&b".."[..]));
    assert!((0..N).all(|i| seen.contains_key(format!("entry-{i:04}").as_bytes())));

    let mut stream = Dir::open(&c(d)).unwrap();
    for _ in 0..1500 {
        stream.next_name().unwrap();
    }
    let mark = stream.tell();
    let after: Vec<Vec<u8>> = (0..10).map(|_| stream.next_name().unwrap()).collect();
    let rest = std::iter::from_fn(|| stream.next_name()).count();
    assert_eq!(1500 + 10 + rest, N + 2, "the stream ends where it should");
    stream.seek(mark);
    let again: Vec<Vec<u8>> = (0..10).map(|_| stream.next_name().unwrap()).collect();
    assert_eq!(again, after, "seekdir to a telldir position resumes there");
    stream.seek(0);
    assert_eq!(
        std::iter::from_fn(|| stream.next_name()).count(),
        N + 2,
        "seekdir(0) restarts"
    );
}

fn fallocate(d: &Path) {
    let f = d.join("f");
    let file = fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .mode(0o644)
        .open(&f)
        .unwrap();
    let fd = std::os::fd::OwnedFd::from(file);
    sys::fallocate(&fd, 0, 0, 1 << 20).expect("mode 0 extends");
    assert_eq!(fs::metadata(&f).unwrap().len(), 1 << 20);
    assert!(
        fs::read(&f).unwrap().iter().all(|b| *b == 0),
        "an allocated range reads as zeros"
    );
    sys::fallocate(&fd, 0, 0, 100).expect("inside the size: nothing to do");
    assert_eq!(fs::metadata(&f).unwrap().len(), 1 << 20);
    sys::fallocate(&fd, libc::FALLOC_FL_KEEP_SIZE, 0, 8 << 20).expect("KEEP_SIZE succeeds");
    assert_eq!(
        fs::metadata(&f).unwrap().len(),
        1 << 20,
        "KEEP_SIZE keeps the size"
    );
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    assert_eq!(
        errno(sys::fallocate(&fd, punch, 0, 4096)),
        libc::EOPNOTSUPP,
        "punching holes"
    );
    assert_eq!(
        errno(sys::fallocate(&fd, libc::FALLOC_FL_ZERO_RANGE, 0, 4096)),
        libc::EOPNOTSUPP
    );
    assert_eq!(errno(sys::fallocate(&fd, 0, 0, 0)), libc::EINVAL, "empty range");
    let ro = sys::open(&c(&f), O_RDONLY, 0).unwrap();
    assert_eq!(
        errno(sys::fallocate(&ro, 0, 0, 2 << 20)),
        libc::EBADF,
        "read-only descriptor"
    );
}

fn seek_data_and_holes(d: &Path) {
    let f = d.join("sparse");
    let fd = sys::open(&c(&f), O_CREAT | O_RDWR, 0o644).unwrap();
    sys::write(&fd, b"head").unwrap();
    assert_eq!(
        sys::lseek(&fd, 2 * CHUNK + 100, libc::SEEK_SET).unwrap(),
        2 * CHUNK + 100
    );
    sys::write(&fd, b"tail").unwrap();
    let size = 2 * CHUNK + 104;
    let probe = sys::open(&c(&f), O_RDONLY, 0).unwrap();
    let seek = |off, whence| sys::lseek(&probe, off, whence);
    assert_eq!(seek(0, libc::SEEK_DATA).unwrap(), 0);
    assert_eq!(
        seek(0, libc::SEEK_HOLE).unwrap(),
        CHUNK,
        "holes are seen at chunk granularity"
    );
    assert_eq!(seek(10, libc::SEEK_HOLE).unwrap(), CHUNK);
    assert_eq!(
        seek(CHUNK + 5, libc::SEEK_HOLE).unwrap(),
        CHUNK + 5,
        "inside the hole"
    );
    assert_eq!(
        seek(CHUNK + 5, libc::SEEK_DATA).unwrap(),
        2 * CHUNK,
        "the next chunk with data"
    );
    assert_eq!(
        seek(2 * CHUNK, libc::SEEK_HOLE).unwrap(),
        size,
        "the end of the file is a hole"
    );
    assert_eq!(errno(seek(size, libc::SEEK_DATA)), libc::ENXIO, "at the end");
    assert_eq!(errno(seek(size, libc::SEEK_HOLE)), libc::ENXIO);
    assert_eq!(
        errno(seek(size + 1, libc::SEEK_DATA)),
        libc::ENXIO,
        "past the end"
    );
    let mut buf = [0u8; 4];
    assert_eq!(sys::lseek(&probe, CHUNK, libc::SEEK_SET).unwrap(), CHUNK);
    assert_eq!(
        (sys::read(&probe, &mut buf).unwrap(), buf),
        (4, [0; 4]),
        "the hole reads as zeros"
    );
}
