//! Reads: copies tried in turn, holes, EOF, read-ahead, own writes, invalidation.

use std::time::Duration;

use proto::fs::SetAttr;
use proto::{CHUNK_SIZE, Changes};

use super::fake_meta::OTHER;
use super::{RW, fs, fs_with, new_file, patterned, user};
use crate::core::FsConfig;

/// A file of `len` patterned bytes, landed: (inode, handle).
async fn filled(fs: &super::TestFs, len: usize) -> (u64, u64) {
    let (ino, fh) = new_file(fs, "f").await;
    fs.write(&user(), fh, 0, &patterned(0, len)).await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();
    (ino, fh)
}

#[tokio::test]
async fn reads_fall_over_to_the_next_copy_on_corrupt() {
    let fs = fs();
    let (ino, fh) = filled(&fs, 5000).await;
    let chunk = fs.meta().st().nodes[&ino].chunks[&0].id;
    fs.data().st().corrupt.insert((1, chunk));
    fs.data().st().calls.clear();
    assert_eq!(
        fs.read(&user(), fh, 1000, 100).await.unwrap(),
        patterned(1000, 100)
    );
    assert_eq!(fs.data().st().calls, vec![(1, "read"), (2, "read")]);
}

#[tokio::test(start_paused = true)]
async fn reads_fall_over_when_a_copy_is_unreachable_or_stale_and_fail_when_none_is_left() {
    let fs = fs();
    let (ino, fh) = filled(&fs, 5000).await;
    let chunk = fs.meta().st().nodes[&ino].chunks[&0].id;
    fs.data().st().down.insert(1);
    assert_eq!(fs.read(&user(), fh, 0, 10).await.unwrap(), patterned(0, 10));
    fs.data().st().copies.get_mut(&(2, chunk)).unwrap().0 = 99;
    let fresh = fs.open(&user(), ino, RW).await.unwrap();
    let asked = fs.meta().count("chunk_for_read");
    let started = tokio::time::Instant::now();
    let e = fs.read(&user(), fresh, 4000, 10).await.unwrap_err();
    assert_eq!(crate::errno::errno(&e), libc::EIO);
    assert!(
        fs.meta().count("chunk_for_read") - asked > 2,
        "the location was asked again, with backoff, before giving up"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited <= Duration::from_secs(5),
        "gave up after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_read_waits_for_copies_the_metadata_lists_again() {
    let fs = std::sync::Arc::new(fs());
    let (ino, fh) = filled(&fs, 5000).await;
    let chunk = fs.meta().st().nodes[&ino].chunks[&0].id;
    // A full report made before the write dropped the copies; the next incremental report
    // lists them again a moment later.
    let listed = fs.meta().st().copies.remove(&chunk).unwrap();
    let meta = fs.clone();
    let relist = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        meta.meta().st().copies.insert(chunk, listed);
    });
    let fresh = fs.open(&user(), ino, RW).await.unwrap();
    assert_eq!(fs.read(&user(), fresh, 0, 10).await.unwrap(), patterned(0, 10));
    relist.await.unwrap();
    fs.release(&user(), fh, None).await.unwrap();
}

#[tokio::test]
async fn holes_read_as_zeros_and_reads_stop_at_the_end_of_the_file() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "sparse").await;
    let far = 2 * CHUNK_SIZE + 10;
    fs.write(&user(), fh, far, b"tail").await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();
    assert_eq!(
        fs.read(&user(), fh, 100, 1000).await.unwrap(),
        vec![0; 1000],
        "chunk 0 is a hole"
    );
    assert_eq!(
        fs.read(&user(), fh, CHUNK_SIZE - 5, 10).await.unwrap(),
        vec![0; 10],
        "across two holes"
    );
    assert_eq!(
        fs.read(&user(), fh, far - 2, 100).await.unwrap(),
        b"\0\0tail",
        "short read at EOF"
    );
    assert_eq!(fs.read(&user(), fh, far + 4, 100).await.unwrap(), b"", "at EOF");
    assert_eq!(
        fs.read(&user(), fh, far + 400, 100).await.unwrap(),
        b"",
        "past EOF"
    );
    assert_eq!(fs.data().count("read"), 1, "holes cost no data request");
    fs.setattr(
        &user(),
        ino,
        SetAttr {
            size: Some(3 * CHUNK_SIZE),
            ..SetAttr::default()
        },
        Some(fh),
    )
    .await
    .unwrap();
    assert_eq!(
        fs.read(&user(), fh, 3 * CHUNK_SIZE - 3, 10).await.unwrap(),
        vec![0; 3],
        "an extension is a hole"
    );
}

#[tokio::test]
async fn read_ahead_serves_sequential_reads_with_fewer_data_calls() {
    let len = 8 << 20;
    let piece = 128 << 10;
    let mut calls = Vec::new();
    for readahead in [4 << 20, 0] {
        let fs = fs_with(FsConfig {
            readahead,
            relatime: false,
            ..FsConfig::default()
        });
        let (_, fh) = filled(&fs, len).await;
        let before = fs.data().count("read");
        let mut got = Vec::with_capacity(len);
        for i in 0..len / piece {
            got.extend(
                fs.read(&user(), fh, (i * piece) as u64, piece as u32)
                    .await
                    .unwrap(),
            );
        }
        assert!(got == patterned(0, len), "content with read-ahead {readahead}");
        calls.push(fs.data().count("read") - before);
    }
    assert_eq!(calls, vec![2, 64], "4 MiB read-ahead: two fetches instead of 64");
}

#[tokio::test]
async fn reads_see_buffered_writes_and_writes_drop_read_ahead() {
    let fs = fs();
    let (ino, writer) = filled(&fs, 1 << 20).await;
    let reader = fs.open(&user(), ino, RW).await.unwrap();
    assert_eq!(
        fs.read(&user(), reader, 0, 4096).await.unwrap(),
        patterned(0, 4096),
        "fills read-ahead"
    );
    fs.write(&user(), writer, 4096, b"NEW!").await.unwrap();
    assert_eq!(
        fs.read(&user(), reader, 4096, 4).await.unwrap(),
        b"NEW!",
        "another handle's buffered write"
    );
    fs.write(&user(), reader, 0, b"OWN").await.unwrap();
    assert_eq!(fs.read(&user(), reader, 0, 3).await.unwrap(), b"OWN", "own write");
}

#[tokio::test]
async fn another_clients_change_drops_read_ahead() {
    let fs = fs();
    let (ino, fh) = filled(&fs, 1 << 20).await;
    assert_eq!(fs.read(&user(), fh, 0, 10).await.unwrap(), patterned(0, 10));
    // Another client rewrites the chunk (both copies, version bumped).
    let chunk = fs.meta().st().nodes[&ino].chunks[&0].id;
    for s in [1, 2] {
        let mut st = fs.data().st();
        let copy = st.copies.get_mut(&(s, chunk)).unwrap();
        copy.0 = 9;
        copy.1[..5].copy_from_slice(b"OTHER");
    }
    fs.meta().st().copies.insert(chunk, (9, vec![1, 2]));
    assert_eq!(
        fs.read(&user(), fh, 10, 5).await.unwrap(),
        patterned(10, 5),
        "still cached: no news yet"
    );
    let news = Changes {
        next: 2,
        overflow: false,
        inodes: vec![(ino, OTHER)],
        entries: vec![],
    };
    assert!(!fs.invalidations(&news).is_empty());
    assert_eq!(fs.read(&user(), fh, 0, 5).await.unwrap(), b"OTHER");
}

#[tokio::test]
async fn relatime_asks_once_after_a_change_and_the_server_sets_atime_alone() {
    let fs = fs_with(FsConfig::default());
    let (ino, fh) = filled(&fs, 100).await;
    let before = fs.meta().st().nodes[&ino].attr.clone();
    let setattrs = fs.meta().count("setattr");
    fs.read(&user(), fh, 0, 10).await.unwrap();
    fs.read(&user(), fh, 10, 10).await.unwrap();
    assert_eq!(
        fs.meta().count("accessed"),
        1,
        "the second read finds atime fresh"
    );
    assert_eq!(
        fs.meta().count("setattr"),
        setattrs,
        "no setattr on the reader's behalf"
    );
    let after = fs.meta().st().nodes[&ino].attr.clone();
    assert!(after.atime > after.mtime);
    assert_eq!((after.mtime, after.ctime), (before.mtime, before.ctime));

    fs.write(&user(), fh, 0, b"x").await.unwrap();
    fs.read(&user(), fh, 0, 10).await.unwrap();
    assert_eq!(fs.meta().count("accessed"), 2, "a write makes the next read due");
}

#[tokio::test]
async fn noatime_mounts_never_ask() {
    let fs = fs();
    let (_, fh) = filled(&fs, 100).await;
    fs.read(&user(), fh, 0, 10).await.unwrap();
    assert_eq!(fs.meta().count("accessed"), 0);
}
