//! A real mount: the core over the in-memory fakes, mounted through fuser at a temporary
//! directory and used through `std::fs`. Skipped where there is no `/dev/fuse`, unless
//! `REQUIRE_FUSE=1` makes that a failure. Every wait is bounded, and a guard lazily unmounts
//! whatever a failing test leaves behind.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{MountConfig, serve};
use crate::core::tests::{FakeData, FakeMeta};
use crate::core::{Fs, FsConfig};

/// How long mounting or unmounting may take.
const BOUND: Duration = Duration::from_secs(20);

fn fuse_available() -> bool {
    let here = Path::new("/dev/fuse").exists();
    if !here && std::env::var("REQUIRE_FUSE").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_FUSE=1 but /dev/fuse is missing");
    }
    here
}

fn mounted(at: &Path) -> bool {
    let at = at.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*at))
}

/// Lazily unmounts the mountpoint if a test left it mounted.
struct Unmounted(PathBuf);

impl Drop for Unmounted {
    fn drop(&mut self) {
        if mounted(&self.0) {
            let _ = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.0)
                .status();
        }
    }
}

/// Waits (bounded) until `at`'s mounted state is `want`.
async fn until_mounted(at: &Path, want: bool) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while mounted(at) != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} mounted should be {want}",
            at.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Mounts fakes at a fresh directory: the directory, its guard, the shutdown trigger and the
/// serving task.
async fn mount() -> (
    tempfile::TempDir,
    PathBuf,
    Unmounted,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), super::MountError>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().canonicalize().unwrap();
    let guard = Unmounted(at.clone());
    let fs = Arc::new(Fs::new(FakeMeta::new(), FakeData::default(), FsConfig::default()));
    let config = MountConfig::new(at.clone(), vec![], PathBuf::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        serve(fs, &config, async {
            let _ = stopped.await;
        })
        .await
    });
    until_mounted(&at, true).await;
    (dir, at, guard, stop, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_directories_work_through_a_real_mount() {
    if !fuse_available() {
        return;
    }
    let (_dir, at, _guard, stop, served) = mount().await;
    let root = at.clone();
    tokio::task::spawn_blocking(move || {
        let d = root.join("docs");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("a.txt"), b"hello, moose").unwrap();
        assert_eq!(std::fs::read(d.join("a.txt")).unwrap(), b"hello, moose");

        // A file larger than the write buffer, written in pieces and read back.
        let big: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 253) as u8).collect();
        let mut f = std::fs::File::create(d.join("big")).unwrap();
        for piece in big.chunks(300_000) {
            f.write_all(piece).unwrap();
        }
        f.sync_all().unwrap();
        assert_eq!(f.metadata().unwrap().len(), big.len() as u64);
        drop(f);
        let mut back = Vec::new();
        std::fs::File::open(d.join("big"))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == big, "9 MiB read back intact");

        // Overwrite in the middle, truncate, extend.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(d.join("a.txt"))
            .unwrap();
        f.seek(SeekFrom::Start(7)).unwrap();
        f.write_all(b"MOOSE").unwrap();
        f.set_len(9).unwrap();
        f.set_len(12).unwrap();
        drop(f);
        assert_eq!(std::fs::read(d.join("a.txt")).unwrap(), b"hello, MO\0\0\0");

        std::fs::rename(d.join("a.txt"), d.join("b.txt")).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["b.txt", "big"]);
        assert_eq!(std::fs::metadata(d.join("b.txt")).unwrap().size(), 12);
        assert_eq!(
            std::fs::remove_dir(&d).unwrap_err().raw_os_error(),
            Some(libc::ENOTEMPTY)
        );
        std::fs::remove_file(d.join("b.txt")).unwrap();
        assert!(!d.join("b.txt").exists());
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(BOUND, served)
        .await
        .expect("unmount in time")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(!mounted(&at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmount_by_the_kernel_ends_the_mount_cleanly() {
    if !fuse_available() {
        return;
    }
    let (_dir, at, _guard, _stop, served) = mount().await;
    let target = at.clone();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("fusermount3")
            .arg("-u")
            .arg(&target)
            .status()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    let result = tokio::time::timeout(BOUND, served)
        .await
        .expect("session ends in time")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(!mounted(&at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_mountpoint_is_detached_lazily_at_shutdown_and_open_files_keep_working() {
    if !fuse_available() {
        return;
    }
    let (_dir, at, _guard, stop, served) = mount().await;
    let path = at.join("held");
    let mut held = tokio::task::spawn_blocking(move || std::fs::File::create(path).unwrap())
        .await
        .unwrap();
    stop.send(()).unwrap();
    // The busy mount leaves the namespace at once...
    until_mounted(&at, false).await;
    assert!(!served.is_finished());
    // ...while the file open on it still works, until it is closed.
    let held_back = tokio::task::spawn_blocking(move || {
        held.write_all(b"still here").unwrap();
        held.sync_all().unwrap();
        drop(held);
    });
    held_back.await.unwrap();
    let result = tokio::time::timeout(BOUND, served)
        .await
        .expect("session ends in time")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
