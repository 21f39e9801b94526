//! Two mounts of one cluster see each other's changes: file contents byte for byte,
//! directories, renames, hard links, symlinks and extended attributes, and unmount cleanly on
//! SIGTERM.
//!
//! Tier: fuse (real `mooseng` processes and two real FUSE mounts; needs `/dev/fuse`).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use testkit::{Cluster, fuse_or_skip};

/// Waits for `check` on the second mount: its caches may hold the old state for up to the
/// attribute/entry timeout (1 s by default) unless the change feed invalidates them sooner.
fn eventually(what: &str, check: impl FnMut() -> bool) {
    testkit::eventually(
        &format!("{what} seen by the other mount"),
        Duration::from_secs(5),
        check,
    );
}

#[test]
fn what_one_mount_writes_the_other_reads() {
    if !fuse_or_skip() {
        return;
    }
    let cluster = Cluster::start_fs(common::bin(), 3, 3, 2);
    let mut a = cluster.mount("");
    let mut b = cluster.mount("");

    let data: Vec<u8> = (0..(3u32 << 20) + 4321)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    fs::create_dir_all(a.join("dir/sub")).unwrap();
    fs::write(a.join("dir/sub/file"), &data).unwrap();
    assert_eq!(
        fs::read(b.join("dir/sub/file")).unwrap(),
        data,
        "byte-identical through the other mount"
    );

    fs::rename(a.join("dir/sub/file"), a.join("dir/moved")).unwrap();
    eventually("the rename", || {
        !b.join("dir/sub/file").exists() && b.join("dir/moved").exists()
    });
    assert_eq!(fs::read(b.join("dir/moved")).unwrap(), data);

    fs::hard_link(a.join("dir/moved"), a.join("dir/link")).unwrap();
    eventually("the hard link", || {
        fs::metadata(b.join("dir/moved")).is_ok_and(|m| m.nlink() == 2)
    });
    assert_eq!(
        fs::metadata(b.join("dir/link")).unwrap().ino(),
        fs::metadata(b.join("dir/moved")).unwrap().ino()
    );

    std::os::unix::fs::symlink("moved", a.join("dir/sym")).unwrap();
    eventually("the symlink", || {
        fs::read_link(b.join("dir/sym")).is_ok_and(|t| t == std::path::Path::new("moved"))
    });
    assert_eq!(
        fs::read(b.join("dir/sym")).unwrap(),
        data,
        "followed through the other mount"
    );

    xattr::set(a.join("dir/moved"), "user.colour", b"blue").expect("set an xattr through mount A");
    eventually("the xattr", || {
        xattr::get(b.join("dir/moved"), "user.colour").is_ok_and(|v| v.as_deref() == Some(&b"blue"[..]))
    });

    fs::write(a.join("dir/moved"), b"short").unwrap();
    eventually("the overwrite", || {
        fs::read(b.join("dir/link")).is_ok_and(|d| d == b"short")
    });

    let mut names: Vec<String> = fs::read_dir(b.join("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["link", "moved", "sub", "sym"]);
    fs::remove_file(b.join("dir/link")).unwrap();
    fs::remove_dir(b.join("dir/sub")).unwrap();
    eventually("the removals", || {
        !a.join("dir/link").exists() && !a.join("dir/sub").exists()
    });

    assert!(a.unmount(), "mount A unmounts cleanly on SIGTERM");
    assert!(b.unmount(), "mount B unmounts cleanly on SIGTERM");
}
