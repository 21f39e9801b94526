//! Directory quotas through a real mount: `mooseng admin quota` sets and reads them, writes
//! and creates past a limit fail with `EDQUOT` (and what a refused write landed never comes
//! back), renames out of a quota tree fail with `EXDEV`.
//!
//! Tier: fuse (real `mooseng` processes and a real FUSE mount; needs `/dev/fuse`).

mod common;

use std::fs::{self, File};
use std::io::Write;

use testkit::{Cluster, fuse_or_skip};

const EDQUOT: i32 = 122;
const EXDEV: i32 = 18;

#[test]
fn limits_hold_through_a_mount() {
    if !fuse_or_skip() {
        return;
    }
    let cluster = Cluster::start_fs(common::bin(), 1, 2, 1);
    let m = cluster.mount("");
    fs::create_dir(m.join("q")).unwrap();
    fs::create_dir(m.join("free")).unwrap();
    fs::write(m.join("q/a"), vec![7u8; 100 << 10]).unwrap();

    assert_eq!(cluster.admin(&["quota", "get", "/q"]).trim(), "/q: no quota");
    assert_eq!(
        cluster
            .admin(&["quota", "set", "/q", "--bytes", "1M", "--inodes", "4"])
            .trim(),
        "/q: bytes 100 KiB of 1 MiB (9%), inodes 1 of 4 (25%)",
        "a new quota root counts what its tree holds"
    );

    let mut big = File::create(m.join("q/big")).unwrap();
    let written = big.write_all(&vec![1u8; 2 << 20]).and_then(|()| big.sync_all());
    assert_eq!(
        written.map_err(|e| e.raw_os_error()),
        Err(Some(EDQUOT)),
        "2 MiB more than the 1 MiB limit allows"
    );
    drop(big);
    let used = cluster.admin(&["quota", "get", "/q"]);
    assert!(used.trim().ends_with("inodes 2 of 4 (50%)"), "{used}");
    assert!(
        fs::metadata(m.join("q/big")).unwrap().len() + (100 << 10) <= 1 << 20,
        "the file did not grow past the limit"
    );

    File::create(m.join("q/c")).unwrap();
    fs::create_dir(m.join("q/d")).unwrap();
    assert_eq!(
        File::create(m.join("q/e")).map_err(|e| e.raw_os_error()).err(),
        Some(Some(EDQUOT)),
        "a fifth inode"
    );
    assert_eq!(
        fs::rename(m.join("q/a"), m.join("free/a")).map_err(|e| e.raw_os_error()),
        Err(Some(EXDEV)),
        "out of the quota tree"
    );
    fs::rename(m.join("q/a"), m.join("q/d/a")).expect("within the tree");

    fs::remove_file(m.join("q/c")).unwrap();
    File::create(m.join("q/e")).expect("room again after a removal");
    assert_eq!(cluster.admin(&["quota", "clear", "/q"]).trim(), "/q: no quota");
    File::create(m.join("q/f")).expect("no limit any more");

    let big = File::options().write(true).open(m.join("q/big")).unwrap();
    let kept = big.metadata().unwrap().len() as usize;
    big.set_len(3 << 20)
        .expect("extend the file the refused write was to");
    drop(big);
    let data = fs::read(m.join("q/big")).unwrap();
    assert_eq!(data.len(), 3 << 20);
    assert!(
        data[kept..].iter().all(|b| *b == 0),
        "what the refused write landed past the end does not come back: {} non-zero bytes",
        data[kept..].iter().filter(|b| **b != 0).count()
    );
}
