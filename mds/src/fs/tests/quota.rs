use proto::fs::{FsOp, Quota, QuotaLimit, SetAttr, rename_flags};
use proto::{Errno, FsReply};

use super::*;
use crate::fs::state::FsState;

fn limit(bytes: Option<u64>, inodes: Option<u64>) -> Option<QuotaLimit> {
    Some(QuotaLimit { bytes, inodes })
}

fn set_quota(fs: &mut Fs, cred: &Cred, ino: u64, limit: Option<QuotaLimit>) -> Result<Option<Quota>, Errno> {
    match fs.exec(cred, FsOp::SetQuota { ino, limit })? {
        FsReply::Quota(q) => Ok(q),
        other => panic!("expected a quota, got {other:?}"),
    }
}

fn quota(fs: &Fs, ino: u64) -> Option<Quota> {
    match fs.read(&root(), FsOp::GetQuota { ino }).unwrap() {
        FsReply::Quota(q) => q,
        other => panic!("expected a quota, got {other:?}"),
    }
}

/// (bytes, inodes) used under quota root `ino`.
fn used(fs: &Fs, ino: u64) -> (u64, u64) {
    let q = quota(fs, ino).expect("a quota root");
    (q.bytes, q.inodes)
}

fn resize(fs: &mut Fs, ino: u64, size: u64) -> Result<Attr, Errno> {
    let set = SetAttr {
        size: Some(size),
        ..SetAttr::default()
    };
    fs.setattr(&root(), ino, set)
}

fn write_done(fs: &mut Fs, ino: u64, handle: u64, end: u64) -> Result<FsReply, Errno> {
    let op = FsOp::WriteDone {
        ino,
        handle,
        end,
        written: Vec::new(),
    };
    fs.exec(&root(), op)
}

fn symlink(fs: &mut Fs, parent: u64, name: &str) -> Result<FsReply, Errno> {
    let op = FsOp::Symlink {
        parent,
        name: name.into(),
        target: b"somewhere".to_vec(),
    };
    fs.exec(&root(), op)
}

#[test]
fn a_new_quota_root_counts_what_its_tree_holds() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o755).unwrap();
    let sub = fs.mkdir(&root(), d.ino, "sub", 0o755).unwrap();
    let (f, _) = fs.create(&root(), d.ino, "f", 0o644).unwrap();
    resize(&mut fs, f.ino, 1000).unwrap();
    let (g, _) = fs.create(&root(), sub.ino, "g", 0o644).unwrap();
    resize(&mut fs, g.ino, 24).unwrap();
    symlink(&mut fs, sub.ino, "s").unwrap();
    fs.link(&root(), g.ino, sub.ino, "g2").unwrap();
    let (_, _) = fs.create(&root(), ROOT, "outside", 0o644).unwrap();

    assert_eq!(quota(&fs, d.ino), None, "not a quota root yet");
    let got = set_quota(&mut fs, &root(), d.ino, limit(Some(1 << 20), None)).unwrap();
    assert_eq!(
        got,
        Some(Quota {
            limit: QuotaLimit {
                bytes: Some(1 << 20),
                inodes: None
            },
            bytes: 1024,
            inodes: 4,
        }),
        "sub, f, g (two names, one inode) and s; the root itself and what is outside do not count"
    );
    assert_eq!(used(&fs, d.ino), (1024, 4));
    let again = set_quota(&mut fs, &root(), d.ino, limit(None, Some(10))).unwrap();
    assert_eq!(
        again.map(|q| (q.bytes, q.inodes)),
        Some((1024, 4)),
        "a new limit keeps the count"
    );
}

#[test]
fn only_root_sets_quotas_and_only_on_directories() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let d = fs.mkdir(&root(), ROOT, "d", 0o777).unwrap();
    let (f, _) = fs.create(&alice, d.ino, "f", 0o644).unwrap();
    assert_eq!(
        set_quota(&mut fs, &alice, d.ino, limit(None, Some(1))),
        Err(Errno::EPERM)
    );
    assert_eq!(
        set_quota(&mut fs, &root(), f.ino, limit(None, Some(1))),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(
        fs.read(&root(), FsOp::GetQuota { ino: f.ino }),
        Err(Errno::ENOTDIR)
    );
}

#[test]
fn creates_past_the_inode_limit_fail_with_edquot_and_removals_make_room() {
    let mut fs = Fs::new();
    let alice = user(1000, 100, &[]);
    let d = fs.mkdir(&root(), ROOT, "d", 0o777).unwrap();
    set_quota(&mut fs, &root(), d.ino, limit(None, Some(3))).unwrap();
    fs.create(&alice, d.ino, "a", 0o644).unwrap();
    fs.mkdir(&alice, d.ino, "b", 0o755).unwrap();
    fs.mknod(&alice, d.ino, "c", 0o644).unwrap();
    assert_eq!(used(&fs, d.ino), (0, 3));
    assert_eq!(fs.create(&alice, d.ino, "x", 0o644).err(), Some(Errno::EDQUOT));
    assert_eq!(fs.mkdir(&alice, d.ino, "x", 0o755).err(), Some(Errno::EDQUOT));
    assert_eq!(
        fs.mknod(&root(), d.ino, "x", 0o644).err(),
        Some(Errno::EDQUOT),
        "root too"
    );
    assert_eq!(symlink(&mut fs, d.ino, "x"), Err(Errno::EDQUOT));
    assert!(fs.lookup(&root(), d.ino, "x").is_err(), "nothing was created");
    assert_eq!(
        fs.create(&alice, d.ino, "a", 0o644).err(),
        Some(Errno::EEXIST),
        "an existing name is reported before the quota"
    );
    fs.unlink(&alice, d.ino, "a").unwrap();
    fs.rmdir(&alice, d.ino, "b").unwrap();
    assert_eq!(used(&fs, d.ino), (0, 1));
    fs.create(&alice, d.ino, "x", 0o644).unwrap();
    fs.create(&alice, d.ino, "y", 0o644).unwrap();
    assert_eq!(used(&fs, d.ino), (0, 3));
}

#[test]
fn growth_past_the_byte_limit_fails_with_edquot_and_shrinking_always_works() {
    let mut fs = Fs::new();
    let d = fs.mkdir(&root(), ROOT, "d", 0o777).unwrap();
    set_quota(&mut fs, &root(), d.ino, limit(Some(1000), None)).unwrap();
    let (f, h) = fs.create(&root(), d.ino, "f", 0o644).unwrap();
    write_done(&mut fs, f.ino, h, 600).unwrap();
    resize(&mut fs, f.ino, 900).unwrap();
    assert_eq!(used(&fs, d.ino), (900, 1));
    assert_eq!(resize(&mut fs, f.ino, 1001), Err(Errno::EDQUOT));
    assert_eq!(write_done(&mut fs, f.ino, h, 1200), Err(Errno::EDQUOT));
    assert_eq!(
        fs.getattr(f.ino).unwrap().size,
        900,
        "the refused growth changed nothing"
    );
    let (g, gh) = fs.create(&root(), d.ino, "g", 0o644).unwrap();
    write_done(&mut fs, g.ino, gh, 100).unwrap();
    assert_eq!(write_done(&mut fs, g.ino, gh, 101), Err(Errno::EDQUOT));
    assert_eq!(used(&fs, d.ino), (1000, 2));
    resize(&mut fs, f.ino, 10).unwrap();
    assert_eq!(used(&fs, d.ino), (110, 2));
    let FsReply::Opened { .. } = fs
        .exec(
            &root(),
            FsOp::Open {
                ino: g.ino,
                read: false,
                write: true,
                truncate: true,
            },
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(used(&fs, d.ino), (10, 2), "O_TRUNC gives the bytes back");
    fs.unlink(&root(), d.ino, "f").unwrap();
    assert_eq!(used(&fs, d.ino), (0, 1));
}

#[test]
fn nested_roots_all_count_and_the_tightest_limit_applies() {
    let mut fs = Fs::new();
    let outer = fs.mkdir(&root(), ROOT, "outer", 0o777).unwrap();
    let inner = fs.mkdir(&root(), outer.ino, "inner", 0o777).unwrap();
    set_quota(&mut fs, &root(), outer.ino, limit(None, Some(3))).unwrap();
    set_quota(&mut fs, &root(), inner.ino, limit(None, Some(10))).unwrap();
    assert_eq!(used(&fs, outer.ino), (0, 1), "inner itself counts in outer");
    let deep = fs.mkdir(&root(), inner.ino, "deep", 0o777).unwrap();
    fs.create(&root(), deep.ino, "f", 0o644).unwrap();
    assert_eq!((used(&fs, outer.ino), used(&fs, inner.ino)), ((0, 3), (0, 2)));
    assert_eq!(
        fs.create(&root(), deep.ino, "g", 0o644).err(),
        Some(Errno::EDQUOT),
        "outer's limit applies below inner"
    );
    set_quota(&mut fs, &root(), outer.ino, None).unwrap();
    assert_eq!(quota(&fs, outer.ino), None);
    fs.create(&root(), deep.ino, "g", 0o644).unwrap();
    assert_eq!(used(&fs, inner.ino), (0, 3));
    let again = set_quota(&mut fs, &root(), outer.ino, limit(None, None)).unwrap();
    assert_eq!(
        again.map(|q| q.inodes),
        Some(4),
        "a root made again counts its tree anew: inner, deep, f and g"
    );
}

#[test]
fn links_and_renames_that_would_change_quota_roots_fail_with_exdev() {
    let mut fs = Fs::new();
    let q = fs.mkdir(&root(), ROOT, "q", 0o777).unwrap();
    let q_sub = fs.mkdir(&root(), q.ino, "sub", 0o777).unwrap();
    let free = fs.mkdir(&root(), ROOT, "free", 0o777).unwrap();
    let (f, _) = fs.create(&root(), q.ino, "f", 0o644).unwrap();
    let (g, _) = fs.create(&root(), free.ino, "g", 0o644).unwrap();
    set_quota(&mut fs, &root(), q.ino, limit(None, None)).unwrap();

    assert_eq!(fs.link(&root(), f.ino, free.ino, "f").err(), Some(Errno::EXDEV));
    assert_eq!(fs.link(&root(), g.ino, q.ino, "g").err(), Some(Errno::EXDEV));
    assert_eq!(
        fs.rename(&root(), q.ino, "f", free.ino, "f", 0),
        Err(Errno::EXDEV)
    );
    assert_eq!(
        fs.rename(&root(), free.ino, "g", q.ino, "g", 0),
        Err(Errno::EXDEV)
    );
    assert_eq!(
        fs.rename(&root(), q.ino, "sub", ROOT, "sub", 0),
        Err(Errno::EXDEV)
    );
    assert_eq!(
        fs.rename(&root(), q.ino, "f", free.ino, "g", rename_flags::EXCHANGE),
        Err(Errno::EXDEV)
    );
    assert_eq!(used(&fs, q.ino), (0, 2), "the refusals changed nothing");

    fs.link(&root(), f.ino, q_sub.ino, "f2").unwrap();
    assert_eq!(
        set_quota(&mut fs, &root(), q_sub.ino, limit(None, None)),
        Err(Errno::EXDEV),
        "a tree holding a file with a link outside it cannot become a quota root"
    );
    fs.rename(&root(), q.ino, "f", q_sub.ino, "f", 0).unwrap();
    fs.rename(&root(), ROOT, "q", free.ino, "q", 0).unwrap();
    assert_eq!(
        used(&fs, q.ino),
        (0, 2),
        "moves within a root, and of the root, change nothing"
    );
}

#[test]
fn an_inode_counts_where_its_home_is_after_the_name_there_goes() {
    let mut fs = Fs::new();
    let q = fs.mkdir(&root(), ROOT, "q", 0o777).unwrap();
    set_quota(&mut fs, &root(), q.ino, limit(Some(100), None)).unwrap();
    let a = fs.mkdir(&root(), q.ino, "a", 0o777).unwrap();
    let b = fs.mkdir(&root(), q.ino, "b", 0o777).unwrap();
    let (f, h) = fs.create(&root(), a.ino, "f", 0o644).unwrap();
    fs.link(&root(), f.ino, b.ino, "f").unwrap();
    fs.unlink(&root(), a.ino, "f").unwrap();
    fs.rmdir(&root(), q.ino, "a").unwrap();
    assert_eq!(used(&fs, q.ino), (0, 2));
    write_done(&mut fs, f.ino, h, 60).unwrap();
    assert_eq!(used(&fs, q.ino), (60, 2), "the file still counts in q");
    assert_eq!(write_done(&mut fs, f.ino, h, 101), Err(Errno::EDQUOT));
    fs.unlink(&root(), b.ino, "f").unwrap();
    assert_eq!(used(&fs, q.ino), (0, 1));
}

#[test]
fn an_unlinked_open_file_no_longer_counts() {
    let mut fs = Fs::new();
    let q = fs.mkdir(&root(), ROOT, "q", 0o777).unwrap();
    set_quota(&mut fs, &root(), q.ino, limit(Some(100), Some(5))).unwrap();
    let (f, h) = fs.create(&root(), q.ino, "f", 0o644).unwrap();
    write_done(&mut fs, f.ino, h, 50).unwrap();
    fs.unlink(&root(), q.ino, "f").unwrap();
    assert_eq!(used(&fs, q.ino), (0, 0));
    write_done(&mut fs, f.ino, h, 5000).unwrap();
    assert_eq!(used(&fs, q.ino), (0, 0));
    fs.release(f.ino, h).unwrap();
    assert_eq!(used(&fs, q.ino), (0, 0), "the last close charges nothing more");
}

#[test]
fn removing_a_quota_root_directory_removes_its_quota() {
    let mut fs = Fs::new();
    let outer = fs.mkdir(&root(), ROOT, "outer", 0o777).unwrap();
    let inner = fs.mkdir(&root(), outer.ino, "inner", 0o777).unwrap();
    set_quota(&mut fs, &root(), outer.ino, limit(None, None)).unwrap();
    set_quota(&mut fs, &root(), inner.ino, limit(None, None)).unwrap();
    fs.rmdir(&root(), outer.ino, "inner").unwrap();
    assert_eq!(used(&fs, outer.ino), (0, 0));
    assert!(fs.state.quota_limit(Ino(inner.ino)).unwrap().is_none());
    let again = fs.mkdir(&root(), outer.ino, "inner", 0o777).unwrap();
    assert_eq!(quota(&fs, again.ino), None);
}

/// A tiny deterministic generator (the test must not depend on a seed it does not print).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// (bytes, inodes) under `dir` found by walking the names (every inode once).
fn recount(fs: &Fs, dir: u64, seen: &mut std::collections::HashSet<u64>) -> (u64, u64) {
    let mut total = (0, 0);
    for name in fs.names(dir, 1000) {
        if name == "." || name == ".." {
            continue;
        }
        let a = fs.lookup(&root(), dir, &name).unwrap();
        if a.kind == FileKind::Dir {
            let below = recount(fs, a.ino, seen);
            total = (total.0 + below.0, total.1 + below.1);
        }
        if seen.insert(a.ino) {
            let bytes = if a.kind == FileKind::File { a.size } else { 0 };
            total = (total.0 + bytes, total.1 + 1);
        }
    }
    total
}

#[test]
fn usage_always_matches_a_recount_of_the_tree() {
    let mut refused = std::collections::BTreeMap::new();
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut fs = Fs::new();
        let top = fs.mkdir(&root(), ROOT, "top", 0o777).unwrap();
        let mut dirs = vec![ROOT, top.ino];
        let mut roots = vec![top.ino];
        set_quota(&mut fs, &root(), top.ino, limit(Some(5000), Some(25))).unwrap();
        for step in 0..300 {
            let dir = dirs[rng.below(dirs.len() as u64) as usize];
            let other = dirs[rng.below(dirs.len() as u64) as usize];
            let name = format!("n{}", rng.below(6));
            let result = match rng.below(9) {
                0 => fs.mkdir(&root(), dir, &name, 0o777).map(|a| dirs.push(a.ino)),
                1 | 2 => fs.create(&root(), dir, &name, 0o644).map(drop),
                3 => fs.unlink(&root(), dir, &name),
                4 => fs.rmdir(&root(), dir, &name),
                5 => fs.rename(&root(), dir, &name, other, &format!("n{}", rng.below(6)), 0),
                6 => match fs.lookup(&root(), dir, &name) {
                    // Links within one directory: links across roots are refused anyway, and
                    // the recount below counts an inode wherever a name of it is.
                    Ok(a) => fs.link(&root(), a.ino, dir, &format!("l{step}")).map(drop),
                    Err(e) => Err(e),
                },
                7 => match fs.lookup(&root(), dir, &name) {
                    Ok(a) if a.kind == FileKind::File => resize(&mut fs, a.ino, rng.below(800)).map(drop),
                    _ => Ok(()),
                },
                _ if dir != top.ino && roots.contains(&dir) => {
                    roots.retain(|r| *r != dir);
                    set_quota(&mut fs, &root(), dir, None).map(drop)
                }
                _ if dir != ROOT && !roots.contains(&dir) && fs.getattr(dir).is_ok() => {
                    // EXDEV when a file in the tree has a link outside it.
                    let set = set_quota(&mut fs, &root(), dir, limit(None, Some(rng.below(20))));
                    if set.is_ok() {
                        roots.push(dir);
                    }
                    set.map(drop)
                }
                _ => Ok(()),
            };
            if let Err(e @ (Errno::EDQUOT | Errno::EXDEV)) = result {
                *refused.entry(format!("{e:?}")).or_insert(0) += 1;
            }
            roots.retain(|r| fs.getattr(*r).is_ok());
            dirs.retain(|d| fs.getattr(*d).is_ok());
            for r in &roots {
                let want = recount(&fs, *r, &mut Default::default());
                assert_eq!(used(&fs, *r), want, "seed {seed} step {step}: root {r:#x}");
            }
        }
    }
    assert_eq!(
        refused.len(),
        2,
        "the runs hit both limits and root changes: {refused:?}"
    );
}

#[test]
fn clearing_a_root_gives_its_anchored_files_a_home_in_its_tree() {
    let mut fs = Fs::new();
    let outer = fs.mkdir(&root(), ROOT, "a", 0o777).unwrap();
    let r = fs.mkdir(&root(), outer.ino, "r", 0o777).unwrap();
    set_quota(&mut fs, &root(), outer.ino, limit(None, None)).unwrap();
    set_quota(&mut fs, &root(), r.ino, limit(None, None)).unwrap();
    let a = fs.mkdir(&root(), r.ino, "sa", 0o777).unwrap();
    let b = fs.mkdir(&root(), r.ino, "sb", 0o777).unwrap();
    let (f, _) = fs.create(&root(), a.ino, "f", 0o644).unwrap();
    fs.link(&root(), f.ino, b.ino, "g").unwrap();
    fs.unlink(&root(), a.ino, "f").unwrap();
    // f's home is now r itself (the nearest root above the name that went).
    set_quota(&mut fs, &root(), r.ino, None).unwrap();
    // The tree moves out of r, which is then removed: f's home must not be r.
    fs.rename(&root(), r.ino, "sb", outer.ino, "sb", 0).unwrap();
    fs.rmdir(&root(), r.ino, "sa").unwrap();
    fs.rmdir(&root(), outer.ino, "r").unwrap();
    resize(&mut fs, f.ino, 100).unwrap();
    assert_eq!(used(&fs, outer.ino), (100, 2), "sb and f");
    fs.unlink(&root(), b.ino, "g").unwrap();
    assert_eq!(used(&fs, outer.ino), (0, 1), "only sb is left");
}
