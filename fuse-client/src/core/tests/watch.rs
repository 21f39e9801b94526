//! The watcher: other clients' changes become invalidations; own ones are skipped; lost
//! changes invalidate everything handed out.

use std::sync::Arc;

use proto::Changes;

use super::fake_meta::{ME, OTHER};
use super::{fs, new_file, user};
use crate::core::Invalidation;
use crate::core::watch::run;

#[tokio::test]
async fn the_watcher_skips_own_changes_and_invalidates_everything_after_an_overflow() {
    let fs = Arc::new(fs());
    let (ino, _) = new_file(&fs, "mine").await;
    let dir = fs.mkdir(&user(), 1, b"d", 0o755).await.unwrap().ino;
    fs.meta().watch_script.lock().unwrap().extend([
        Changes {
            next: 2,
            overflow: false,
            inodes: vec![(ino, ME), (500, OTHER), (500, OTHER)],
            entries: vec![(1, b"mine".to_vec(), ME), (1, b"theirs".to_vec(), OTHER)],
        },
        Changes {
            next: 3,
            overflow: true,
            inodes: vec![],
            entries: vec![],
        },
    ]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(run(fs.clone(), tx));

    let first = rx.recv().await.unwrap();
    assert_eq!(
        first,
        vec![
            Invalidation::Inode(500),
            Invalidation::Entry {
                parent: 1,
                name: b"theirs".to_vec()
            }
        ]
    );

    let mut second = rx.recv().await.unwrap();
    second.sort_by_key(|i| format!("{i:?}"));
    let mut want = vec![
        Invalidation::Inode(ino),
        Invalidation::Entry {
            parent: 1,
            name: b"mine".to_vec(),
        },
        Invalidation::Inode(dir),
        Invalidation::Entry {
            parent: 1,
            name: b"d".to_vec(),
        },
    ];
    want.sort_by_key(|i| format!("{i:?}"));
    assert_eq!(
        second, want,
        "an overflow invalidates every inode and entry handed out"
    );

    drop(rx);
    watcher.abort();
    let _ = watcher.await;
}

#[tokio::test]
async fn forgotten_inodes_are_not_invalidated() {
    let fs = fs();
    let attr = fs.mkdir(&user(), 1, b"d", 0o755).await.unwrap();
    fs.lookup(&user(), 1, b"d").await.unwrap();
    fs.forget(attr.ino, 1);
    assert_eq!(fs.everything().len(), 2, "one reference left");
    fs.forget(attr.ino, 1);
    assert!(fs.everything().is_empty());
}
