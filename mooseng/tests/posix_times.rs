//! POSIX/Linux timestamp rules through a real mount: which of atime, mtime and ctime each
//! operation changes, checked three ways: on a local tmpfs directory (the oracle: what Linux
//! itself does), on mount A right after the change (with A's attributes cached from just
//! before), and on mount B once it sees the change (it must then agree with A exactly). ctime
//! never goes backwards. Pins the deviations: listing a directory does not update its atime, and
//! `chown(-1, -1)` does not update ctime.
//!
//! Tier: fuse (real `mooseng` processes and two real FUSE mounts; needs `/dev/fuse`).

mod posix;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use posix::sys::{self, Utime};
use posix::{Mount, Times, c, eventually_eq, tick, times};

/// What an operation did to one file's times: `a`, `m`, `c` where that time changed, `-` where
/// it did not (so "-mc" is a write).
type Change = String;

/// One file's change, by what the file is to the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    what: &'static str,
    path: PathBuf,
    change: Change,
}

/// The times of some files before an operation.
struct Before(Vec<(&'static str, PathBuf, Times)>);

impl Before {
    /// Records the times of `files` (what each is, its path under `root`), then waits for the
    /// clock to tick so the operation's times differ from them.
    fn take(root: &Path, files: &[(&'static str, &str)]) -> Before {
        let b = files
            .iter()
            .map(|(what, p)| (*what, PathBuf::from(p), times(root.join(p))))
            .collect();
        tick();
        Before(b)
    }

    /// How each file's times changed since.
    fn seen(self, root: &Path) -> Vec<Seen> {
        self.0
            .into_iter()
            .map(|(what, path, before)| {
                let after = times(root.join(&path));
                assert!(after.ctime >= before.ctime, "{what}: ctime went backwards");
                Seen {
                    what,
                    path,
                    change: change(before, after),
                }
            })
            .collect()
    }
}

fn change(before: Times, after: Times) -> Change {
    let flag = |changed: bool, c: char| if changed { c } else { '-' };
    [
        flag(before.atime != after.atime, 'a'),
        flag(before.mtime != after.mtime, 'm'),
        flag(before.ctime != after.ctime, 'c'),
    ]
    .iter()
    .collect()
}

/// A rule: sets up in a fresh directory, makes one operation, reports what changed.
type Rule = fn(&Path) -> Vec<Seen>;

fn write_file(p: &Path, data: &[u8]) {
    fs::write(p, data).unwrap();
}

fn create(d: &Path) -> Vec<Seen> {
    let before = Before::take(d, &[("parent", ".")]);
    fs::File::create(d.join("new")).unwrap();
    fs::create_dir(d.join("newdir")).unwrap();
    std::os::unix::fs::symlink("new", d.join("newlink")).unwrap();
    let mut seen = before.seen(d);
    for new in ["new", "newdir", "newlink"] {
        let t = times(d.join(new));
        let same = t.atime == t.mtime && t.mtime == t.ctime;
        seen.push(Seen {
            what: "new entry: atime = mtime = ctime",
            path: new.into(),
            change: if same { "=" } else { "differ" }.into(),
        });
    }
    seen
}

fn write(d: &Path) -> Vec<Seen> {
    write_file(&d.join("f"), b"old");
    let before = Before::take(d, &[("file", "f"), ("parent", ".")]);
    fs::OpenOptions::new()
        .write(true)
        .open(d.join("f"))
        .unwrap()
        .write_all(b"new data")
        .unwrap();
    before.seen(d)
}

fn chmod_chown(d: &Path) -> Vec<Seen> {
    for f in ["f", "g", "same-mode"] {
        write_file(&d.join(f), b"x");
    }
    sys::chmod(&c(d.join("same-mode")), 0o640).unwrap();
    let before = Before::take(
        d,
        &[
            ("chmod", "f"),
            ("chown", "g"),
            ("chmod to the same mode", "same-mode"),
        ],
    );
    sys::chmod(&c(d.join("f")), 0o600).unwrap();
    sys::chown(&c(d.join("g")), 5, 6).unwrap();
    sys::chmod(&c(d.join("same-mode")), 0o640).unwrap();
    before.seen(d)
}

fn link_unlink(d: &Path) -> Vec<Seen> {
    write_file(&d.join("f"), b"x");
    write_file(&d.join("g"), b"x");
    fs::create_dir(d.join("sub")).unwrap();
    fs::create_dir_all(d.join("rm/gone")).unwrap();
    fs::hard_link(d.join("g"), d.join("g2")).unwrap();
    let before = Before::take(
        d,
        &[
            ("linked", "f"),
            ("unlinked", "g"),
            ("parent", "."),
            ("link's parent", "sub"),
            ("rmdir's parent", "rm"),
        ],
    );
    fs::hard_link(d.join("f"), d.join("sub/f")).unwrap();
    fs::remove_file(d.join("g2")).unwrap();
    fs::remove_dir(d.join("rm/gone")).unwrap();
    before.seen(d)
}

fn rename(d: &Path) -> Vec<Seen> {
    fs::create_dir(d.join("from")).unwrap();
    fs::create_dir(d.join("to")).unwrap();
    write_file(&d.join("from/f"), b"x");
    write_file(&d.join("from/g"), b"x");
    write_file(&d.join("victim"), b"x");
    fs::hard_link(d.join("victim"), d.join("to/g")).unwrap();
    let before = Before::take(
        d,
        &[
            ("old parent", "from"),
            ("new parent", "to"),
            ("grandparent", "."),
            ("replaced, still linked", "victim"),
        ],
    );
    let moved = times(d.join("from/f"));
    fs::rename(d.join("from/f"), d.join("to/f")).unwrap();
    fs::rename(d.join("from/g"), d.join("to/g")).unwrap();
    let mut seen = before.seen(d);
    seen.push(Seen {
        what: "moved",
        path: "to/f".into(),
        change: change(moved, times(d.join("to/f"))),
    });
    seen
}

fn truncate(d: &Path) -> Vec<Seen> {
    for f in ["shrunk", "same", "fsame", "otrunc"] {
        write_file(&d.join(f), b"12345");
    }
    write_file(&d.join("empty"), b"");
    let files = [
        ("truncate(2) to a smaller size", "shrunk"),
        ("truncate(2) to the same size", "same"),
        ("ftruncate(2) to the same size", "fsame"),
        ("O_TRUNC of a non-empty file", "otrunc"),
        ("O_TRUNC of an empty file", "empty"),
    ];
    let before = Before::take(d, &files);
    sys::truncate(&c(d.join("shrunk")), 2).unwrap();
    sys::truncate(&c(d.join("same")), 5).unwrap();
    let fd = sys::open(&c(d.join("fsame")), libc::O_WRONLY, 0).unwrap();
    sys::ftruncate(&fd, 5).unwrap();
    drop(fd);
    for f in ["otrunc", "empty"] {
        drop(sys::open(&c(d.join(f)), libc::O_WRONLY | libc::O_TRUNC, 0).unwrap());
    }
    before.seen(d)
}

fn read(d: &Path) -> Vec<Seen> {
    write_file(&d.join("f"), b"contents");
    let read_all = || {
        let mut s = String::new();
        fs::File::open(d.join("f"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
    };
    let first = Before::take(d, &[("first read after a write", "f")]);
    read_all();
    let mut seen = first.seen(d);
    let second = Before::take(d, &[("second read", "f")]);
    read_all();
    seen.extend(second.seen(d));
    write_file(&d.join("f"), b"changed");
    let third = Before::take(d, &[("read after another write", "f")]);
    read_all();
    seen.extend(third.seen(d));
    seen
}

fn utimens(d: &Path) -> Vec<Seen> {
    for f in ["explicit", "now", "omit", "both-omitted", "extreme"] {
        write_file(&d.join(f), b"x");
    }
    let files = [
        ("explicit times", "explicit"),
        ("UTIME_NOW for both", "now"),
        ("atime UTIME_OMIT, mtime explicit", "omit"),
        ("both UTIME_OMIT", "both-omitted"),
        ("before 1970 and after 2038", "extreme"),
    ];
    let before = Before::take(d, &files);
    sys::utimensat(&c(d.join("explicit")), Utime::At(1_000, 5), Utime::At(2_000, 7)).unwrap();
    sys::utimensat(&c(d.join("now")), Utime::Now, Utime::Now).unwrap();
    sys::utimensat(&c(d.join("omit")), Utime::Omit, Utime::At(3_000, 9)).unwrap();
    sys::utimensat(&c(d.join("both-omitted")), Utime::Omit, Utime::Omit).unwrap();
    sys::utimensat(
        &c(d.join("extreme")),
        Utime::At(-86_401, 500),
        Utime::At(5_000_000_000, 1),
    )
    .unwrap();
    let mut seen = before.seen(d);
    let ns = |s: i128, n: i128| s * 1_000_000_000 + n;
    let (explicit, now, omit, extreme) = (
        times(d.join("explicit")),
        times(d.join("now")),
        times(d.join("omit")),
        times(d.join("extreme")),
    );
    let exact = [
        ("explicit atime", explicit.atime == ns(1_000, 5)),
        ("explicit mtime", explicit.mtime == ns(2_000, 7)),
        (
            "UTIME_NOW: atime = mtime = ctime",
            now.atime == now.mtime && now.mtime == now.ctime,
        ),
        ("omitted atime kept, mtime explicit", omit.mtime == ns(3_000, 9)),
        ("atime before 1970", extreme.atime == ns(-86_401, 500)),
        ("mtime after 2038", extreme.mtime == ns(5_000_000_000, 1)),
    ];
    for (what, ok) in exact {
        seen.push(Seen {
            what,
            path: "explicit".into(),
            change: if ok { "exact" } else { "wrong" }.into(),
        });
    }
    seen
}

fn xattr(d: &Path) -> Vec<Seen> {
    write_file(&d.join("f"), b"x");
    let before = Before::take(d, &[("setxattr", "f")]);
    sys::setxattr(&c(d.join("f")), &c("user.k"), b"v", 0).unwrap();
    before.seen(d)
}

fn chown_nothing(d: &Path) -> Vec<Seen> {
    write_file(&d.join("f"), b"x");
    let before = Before::take(d, &[("chown(-1, -1)", "f")]);
    sys::chown(&c(d.join("f")), u32::MAX, u32::MAX).unwrap();
    before.seen(d)
}

fn list(d: &Path) -> Vec<Seen> {
    write_file(&d.join("f"), b"x");
    let before = Before::take(d, &[("listed directory", ".")]);
    assert_eq!(fs::read_dir(d).unwrap().count(), 1);
    before.seen(d)
}

/// What each file a rule looked at should show (what it is to the operation, its change).
type Expected = Vec<(&'static str, &'static str)>;

/// Every rule, with what Linux does (the oracle must agree, or the expectation is wrong).
fn rules() -> Vec<(&'static str, Rule, Expected)> {
    vec![
        (
            "create",
            create as Rule,
            vec![
                ("parent", "-mc"),
                ("new entry: atime = mtime = ctime", "="),
                ("new entry: atime = mtime = ctime", "="),
                ("new entry: atime = mtime = ctime", "="),
            ],
        ),
        ("write", write, vec![("file", "-mc"), ("parent", "---")]),
        (
            "chmod-chown",
            chmod_chown,
            vec![
                ("chmod", "--c"),
                ("chown", "--c"),
                ("chmod to the same mode", "--c"),
            ],
        ),
        (
            "link-unlink",
            link_unlink,
            vec![
                ("linked", "--c"),
                ("unlinked", "--c"),
                ("parent", "-mc"),
                ("link's parent", "-mc"),
                ("rmdir's parent", "-mc"),
            ],
        ),
        (
            "rename",
            rename,
            vec![
                ("old parent", "-mc"),
                ("new parent", "-mc"),
                ("grandparent", "---"),
                ("replaced, still linked", "--c"),
                ("moved", "--c"),
            ],
        ),
        (
            "truncate",
            truncate,
            vec![
                ("truncate(2) to a smaller size", "-mc"),
                ("truncate(2) to the same size", "-mc"),
                ("ftruncate(2) to the same size", "-mc"),
                ("O_TRUNC of a non-empty file", "-mc"),
                ("O_TRUNC of an empty file", "-mc"),
            ],
        ),
        (
            "read",
            read,
            vec![
                ("first read after a write", "a--"),
                ("second read", "---"),
                ("read after another write", "a--"),
            ],
        ),
        (
            "utimens",
            utimens,
            vec![
                ("explicit times", "amc"),
                ("UTIME_NOW for both", "amc"),
                ("atime UTIME_OMIT, mtime explicit", "-mc"),
                ("both UTIME_OMIT", "---"),
                ("before 1970 and after 2038", "amc"),
                ("explicit atime", "exact"),
                ("explicit mtime", "exact"),
                ("UTIME_NOW: atime = mtime = ctime", "exact"),
                ("omitted atime kept, mtime explicit", "exact"),
                ("atime before 1970", "exact"),
                ("mtime after 2038", "exact"),
            ],
        ),
        ("xattr", xattr, vec![("setxattr", "--c")]),
    ]
}

fn summary(seen: &[Seen]) -> Vec<(&'static str, String)> {
    seen.iter().map(|s| (s.what, s.change.clone())).collect()
}

fn expected(e: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    e.iter().map(|(w, c)| (*w, c.to_string())).collect()
}

/// A local directory for the oracle: tmpfs when there is one.
fn oracle_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    tempfile::tempdir_in(parent).expect("oracle dir")
}

/// Whether the oracle's file system keeps user xattrs (tmpfs does since Linux 6.6).
fn keeps_user_xattrs(d: &Path) -> bool {
    let probe = d.join("xattr-probe");
    write_file(&probe, b"");
    sys::setxattr(&c(&probe), &c("user.probe"), b"", 0).is_ok()
}

#[test]
fn timestamps_follow_linux_rules_on_both_mounts() {
    if !testkit::fuse_or_skip() {
        return;
    }
    let (_cluster, mut mounts) = posix::start(&["", "", "noatime", "ro"]);
    let (a, b) = (&mounts[0], &mounts[1]);
    let oracle = oracle_dir();
    let local_xattrs = keeps_user_xattrs(oracle.path());
    for (name, rule, expect) in rules() {
        let local = oracle.path().join(name);
        fs::create_dir(&local).unwrap();
        if name == "xattr" && !local_xattrs {
            eprintln!(
                "{name}: no user xattrs on {}: checked against the expectation only",
                local.display()
            );
        } else {
            assert_eq!(
                summary(&rule(&local)),
                expected(&expect),
                "{name}: the local oracle disagrees"
            );
        }
        let dir = a.join(name);
        fs::create_dir(&dir).unwrap();
        let seen = rule(&dir);
        assert_eq!(
            summary(&seen),
            expected(&expect),
            "{name}: on mount A right after the change"
        );
        agree(a, b, name, &seen);
    }
    deviations_are_pinned(a, &oracle);
    a_read_after_another_mounts_write_updates_atime(a, b);
    noatime_and_ro_mounts_leave_atime(a, &mounts[2], &mounts[3]);
    for m in &mut mounts {
        assert!(m.unmount(), "unmounts cleanly");
    }
}

/// Mount B ends up with exactly the times mount A reports for every file the rule looked at.
fn agree(a: &Mount, b: &Mount, rule: &str, seen: &[Seen]) {
    for s in seen {
        let rel = Path::new(rule).join(&s.path);
        let want = times(a.join(&rel));
        let what = format!("{rule}: mount B sees {}'s times", rel.display());
        eventually_eq(&what, &want, || times(b.join(&rel)));
    }
}

/// The deviations: rules where the mount differs from Linux (the oracle confirms what Linux
/// does), with what Linux does and what the mount does.
fn deviations() -> Vec<(&'static str, Rule, Expected, Expected)> {
    vec![
        // Listing updates a directory's atime under relatime; the mount holds no open handle
        // on directories to tell the metadata servers about the read.
        (
            "list",
            list as Rule,
            vec![("listed directory", "a--")],
            vec![("listed directory", "---")],
        ),
        // POSIX lets chown(-1, -1) leave ctime alone ("need not be marked"); Linux marks it.
        // The mount asks the metadata servers for nothing and changes nothing.
        (
            "chown-nothing",
            chown_nothing,
            vec![("chown(-1, -1)", "--c")],
            vec![("chown(-1, -1)", "---")],
        ),
    ]
}

fn deviations_are_pinned(a: &Mount, oracle: &tempfile::TempDir) {
    for (name, rule, linux, ours) in deviations() {
        let local = oracle.path().join(name);
        fs::create_dir(&local).unwrap();
        assert_eq!(summary(&rule(&local)), expected(&linux), "{name}: Linux");
        let dir = a.join(name);
        fs::create_dir(&dir).unwrap();
        assert_eq!(
            summary(&rule(&dir)),
            expected(&ours),
            "{name}: the deviation changed"
        );
    }
}

/// `noatime` and `ro` mounts never update atime; a default mount reading the same file then
/// does (so the reads above would have been due).
fn noatime_and_ro_mounts_leave_atime(a: &Mount, noatime: &Mount, ro: &Mount) {
    fs::create_dir(a.join("options")).unwrap();
    write_file(&a.join("options/f"), b"x");
    let rel = Path::new("options/f");
    for m in [noatime, ro] {
        // Another mount sees the contents within the attribute timeout (M1): wait for them
        // before measuring, not only for the name.
        eventually_eq("the contents seen", &b"x".to_vec(), || {
            fs::read(m.join(rel)).unwrap_or_default()
        });
        let before = Before::take(&m.path, &[("read", "options/f")]);
        assert_eq!(fs::read(m.join(rel)).unwrap(), b"x");
        assert_eq!(
            summary(&before.seen(&m.path)),
            expected(&[("read", "---")]),
            "{}",
            m.path.display()
        );
    }
    assert_eq!(
        posix::errno(fs::write(ro.join(rel), b"y")),
        libc::EROFS,
        "ro refuses writes"
    );
    let before = Before::take(&a.path, &[("read", "options/f")]);
    fs::read(a.join(rel)).unwrap();
    assert_eq!(
        summary(&before.seen(&a.path)),
        expected(&[("read", "a--")]),
        "the default mount"
    );
}

/// relatime across mounts: after mount B rewrote a file, the next read through a descriptor
/// mount A opened before updates atime (once A sees the new mtime).
fn a_read_after_another_mounts_write_updates_atime(a: &Mount, b: &Mount) {
    fs::create_dir(a.join("cross")).unwrap();
    let rel = Path::new("cross/f");
    write_file(&a.join(rel), b"from A");
    let fd = sys::open(&c(a.join(rel)), libc::O_RDONLY, 0).unwrap();
    let pread = |fd: &std::os::fd::OwnedFd| {
        assert_eq!(sys::lseek(fd, 0, libc::SEEK_SET).unwrap(), 0);
        let mut buf = [0u8; 16];
        let n = sys::read(fd, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    assert_eq!(pread(&fd), b"from A");
    eventually_eq("mount B sees the file", &true, || b.join(rel).exists());
    tick();
    write_file(&b.join(rel), b"from B");
    let written = times(b.join(rel));
    eventually_eq("mount A sees B's write", &written.mtime, || {
        times(a.join(rel)).mtime
    });
    let before = Before::take(&a.path, &[("read after another mount's write", "cross/f")]);
    assert_eq!(
        pread(&fd),
        b"from B",
        "the new contents through the old descriptor"
    );
    assert_eq!(
        summary(&before.seen(&a.path)),
        expected(&[("read after another mount's write", "a--")])
    );
}
