//! Directory streams: stable, resumable offsets with bounded memory.

use std::sync::Arc;

use proto::fs::DirEntry;

use super::{fs_with, user};
use crate::core::{DirSink, FsConfig};

/// A reply buffer that holds at most `room` entries.
struct Sink {
    room: usize,
    got: Vec<(Vec<u8>, u64)>,
    attrs: usize,
}

impl Sink {
    fn new(room: usize) -> Self {
        Sink {
            room,
            got: Vec::new(),
            attrs: 0,
        }
    }
}

impl DirSink for Sink {
    fn push(&mut self, e: &DirEntry, next: u64) -> bool {
        if self.got.len() == self.room {
            return false;
        }
        self.attrs += usize::from(e.attr.is_some());
        self.got.push((e.name.clone(), next));
        true
    }
}

fn names(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("f{i:04}").into_bytes()).collect()
}

#[tokio::test]
async fn readdir_offsets_are_stable_and_resumable_across_pages_with_bounded_memory() {
    let fs = Arc::new(fs_with(FsConfig {
        readdir_page: 10,
        relatime: false,
        ..FsConfig::default()
    }));
    for n in names(95) {
        fs.mkdir(&user(), 1, &n, 0o755).await.unwrap();
    }
    let fh = fs.opendir(&user(), 1).await.unwrap();
    let calls_before = fs.meta().count("readdir");

    // Read the whole listing 7 entries at a time, each call resuming at the last offset.
    let mut listing = Vec::new();
    let mut offset = 0;
    let mut resume_points = Vec::new();
    loop {
        let mut sink = Sink::new(7);
        fs.readdir(&user(), fh, offset, false, &mut sink).await.unwrap();
        if sink.got.is_empty() {
            break;
        }
        resume_points.push((offset, listing.len()));
        offset = sink.got.last().unwrap().1;
        listing.extend(sink.got.into_iter().map(|(n, _)| n));
    }
    let mut want = vec![b".".to_vec(), b"..".to_vec()];
    want.extend(names(95));
    assert_eq!(listing, want, "every entry once, in order");

    // One server page per 10 entries (the first came with opendir), not one per call.
    let fetched = fs.meta().count("readdir") - calls_before;
    assert!(
        fetched <= 10,
        "{fetched} pages fetched for 97 entries read 7 at a time"
    );
    let stream = fs.dir_stream(fh).unwrap();
    assert!(stream.lock().await.remembered() <= 11, "one cookie per page");

    // seekdir to any offset handed out: the listing resumes right there.
    for (offset, at) in resume_points.into_iter().rev().step_by(3) {
        let mut sink = Sink::new(1000);
        fs.readdir(&user(), fh, offset, false, &mut sink).await.unwrap();
        let rest: Vec<_> = sink.got.into_iter().map(|(n, _)| n).collect();
        assert_eq!(rest, want[at..], "resumed at offset {offset:#x}");
    }
    assert!(
        stream.lock().await.remembered() <= 11,
        "re-reading remembers nothing more"
    );

    fs.releasedir(fh);
    assert!(
        fs.readdir(&user(), fh, 0, false, &mut Sink::new(1))
            .await
            .is_err(),
        "released"
    );
}

#[tokio::test]
async fn readdirplus_gives_attributes_and_hands_out_all_but_the_dots() {
    let fs = Arc::new(fs_with(FsConfig {
        readdir_page: 4,
        relatime: false,
        ..FsConfig::default()
    }));
    for n in names(5) {
        fs.mknod(&user(), 1, &n, crdt::model::FileKind::File, 0o644, 0)
            .await
            .unwrap();
    }
    let fh = fs.opendir(&user(), 1).await.unwrap();
    let mut sink = Sink::new(100);
    fs.readdir(&user(), fh, 0, true, &mut sink).await.unwrap();
    assert_eq!(sink.got.len(), 7);
    assert_eq!(sink.attrs, 7, "every entry carries attributes");
    // Each mknod handed one reference out; readdirplus one more for each file, none for dots.
    let known = fs.known.lock().unwrap().values().map(|k| k.lookups).sum::<u64>();
    assert_eq!(known, 10);
}

#[tokio::test]
async fn an_unreadable_directory_fails_at_opendir() {
    let fs = Arc::new(fs_with(FsConfig::default()));
    assert!(fs.opendir(&user(), 12345).await.is_err());
}

#[tokio::test]
async fn the_next_page_is_fetched_while_the_kernel_takes_this_one() {
    let fs = Arc::new(fs_with(FsConfig {
        readdir_page: 10,
        relatime: false,
        ..FsConfig::default()
    }));
    for n in names(25) {
        fs.mkdir(&user(), 1, &n, 0o755).await.unwrap();
    }
    let fh = fs.opendir(&user(), 1).await.unwrap();
    assert_eq!(fs.meta().count("readdir"), 1, "opendir fetched the first page");
    fs.readdir(&user(), fh, 0, false, &mut Sink::new(1))
        .await
        .unwrap();
    for _ in 0..1000 {
        if fs.meta().count("readdir") == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        fs.meta().count("readdir"),
        2,
        "the second page is on its way after one entry of the first was taken"
    );
    let mut sink = Sink::new(1000);
    fs.readdir(&user(), fh, 1, false, &mut sink).await.unwrap();
    assert_eq!(sink.got.len(), 26, "the rest of the 27 entries");
    assert_eq!(fs.meta().count("readdir"), 3, "each of the 3 pages fetched once");
}
