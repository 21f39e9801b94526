//! Write-back buffering and chained chunk writes.

use proto::data::DataError;
use proto::fs::SetAttr;
use proto::{CHUNK_SIZE, Errno};

use super::{fs, new_file, patterned, user};
use crate::core::FsError;
use crate::errno::errno;

const KIB: usize = 1 << 10;

#[tokio::test]
async fn sequential_writes_coalesce_into_few_chunk_writes() {
    let fs = fs();
    let (_, fh) = new_file(&fs, "big").await;
    let piece = 128 * KIB;
    for i in 0..31 {
        let at = (i * piece) as u64;
        fs.write(&user(), fh, at, &patterned(at, piece)).await.unwrap();
    }
    assert_eq!(fs.data().count("write"), 0, "3.9 MiB stay buffered");
    for i in 31..64 {
        let at = (i * piece) as u64;
        fs.write(&user(), fh, at, &patterned(at, piece)).await.unwrap();
    }
    // 8 MiB in 128 KiB writes: two 4 MiB landings, each written once per copy (2 copies),
    // each under a version of its own, one WriteDone per landing.
    assert_eq!(fs.data().count("write"), 4);
    assert_eq!(fs.meta().count("chunk_for_write"), 2);
    assert_eq!(fs.meta().count("write_done"), 2);
    fs.release(&user(), fh, None).await.unwrap();
    assert_eq!(fs.data().count("write"), 4, "nothing left to land");
}

#[tokio::test]
async fn buffered_writes_land_on_getattr_fsync_and_release() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.write(&user(), fh, 0, b"hello").await.unwrap();
    assert_eq!(fs.data().count("write"), 0);
    assert_eq!(
        fs.getattr(&user(), ino).await.unwrap().size,
        5,
        "getattr sees the buffered write"
    );
    assert_eq!(fs.data().count("write"), 2);

    fs.write(&user(), fh, 5, b" world").await.unwrap();
    assert_eq!(fs.data().count("sync"), 0);
    fs.fsync(&user(), fh).await.unwrap();
    assert_eq!(fs.data().count("write"), 4);
    assert_eq!(fs.data().count("sync"), 2, "the chunk is synced on both copies");
    fs.fsync(&user(), fh).await.unwrap();
    assert_eq!(fs.data().count("sync"), 2, "nothing new to sync");

    fs.write(&user(), fh, 11, b"!").await.unwrap();
    fs.release(&user(), fh, None).await.unwrap();
    assert_eq!(fs.data().count("write"), 6);
    assert_eq!(fs.meta().st().nodes[&ino].attr.size, 12);
    // The data landed at once; the server handle is released with the next batch.
    assert_eq!(fs.meta().count("release"), 0);
    assert_eq!(fs.send_releases().await, 1);
    assert_eq!(fs.meta().count("release_all"), 1);
    assert_eq!(fs.send_releases().await, 0, "each release is sent once");
}

#[tokio::test]
async fn a_non_sequential_write_lands_the_buffer_first_and_flush_lands_the_rest() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.write(&user(), fh, 0, b"aaaa").await.unwrap();
    fs.write(&user(), fh, 100, b"bbbb").await.unwrap();
    assert_eq!(fs.meta().count("write_done"), 1);
    fs.flush(&user(), fh, None).await.unwrap();
    assert_eq!(fs.meta().count("write_done"), 2);
    let mut want = b"aaaa".to_vec();
    want.resize(100, 0);
    want.extend_from_slice(b"bbbb");
    assert_eq!(fs.read(&user(), fh, 0, 4096).await.unwrap(), want);
    assert_eq!(fs.getattr(&user(), ino).await.unwrap().size, 104);
}

#[tokio::test]
async fn a_write_spanning_a_chunk_boundary_goes_to_two_chunks() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    let at = CHUNK_SIZE - 100;
    fs.write(&user(), fh, at, &patterned(at, 200)).await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();
    let chunks = fs.meta().st().nodes[&ino].chunks.clone();
    assert_eq!(chunks.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
    assert_ne!(chunks[&0].id, chunks[&1].id);
    assert_eq!(fs.read(&user(), fh, at, 200).await.unwrap(), patterned(at, 200));
    assert_eq!(fs.getattr(&user(), ino).await.unwrap().size, CHUNK_SIZE + 100);
}

#[tokio::test(start_paused = true)]
async fn a_chain_failure_retries_under_a_new_version_and_succeeds() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.write(&user(), fh, 0, b"first").await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();
    // The second copy fails the next write; the head reports a chain failure.
    fs.data()
        .st()
        .fail_next
        .push_back((2, DataError::Io("disk gone".into())));
    fs.write(&user(), fh, 5, b" second").await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();

    assert_eq!(
        fs.meta().count("chunk_for_write"),
        3,
        "one version per landing, and a new one for the retry"
    );
    let chunk = fs.meta().st().nodes[&ino].chunks[&0];
    assert_eq!(chunk.version, 3);
    assert_eq!(
        fs.meta().st().copies[&chunk.id],
        (3, vec![1]),
        "the failed copy is left out of the retry (the head, left at version 2 by the failed \
         attempt, moves on from there)"
    );
    assert_eq!(fs.read(&user(), fh, 0, 100).await.unwrap(), b"first second");
    // The next landing goes where the copies at the newest version are: not the failed one.
    fs.write(&user(), fh, 12, b"!").await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();
    assert_eq!(fs.meta().count("chunk_for_write"), 4);
    assert_eq!(
        fs.data()
            .st()
            .calls
            .iter()
            .filter(|c| c.0 == 2 && c.1 == "write")
            .count(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_version_moved_by_another_writer_is_retried_under_a_fresh_one() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.write(&user(), fh, 0, b"one").await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();
    // Another writer moved both copies to version 5 meanwhile.
    let chunk = fs.meta().st().nodes[&ino].chunks[&0];
    for s in [1, 2] {
        fs.data().st().copies.get_mut(&(s, chunk.id)).unwrap().0 = 5;
    }
    fs.meta().st().copies.insert(chunk.id, (5, vec![1, 2]));
    fs.write(&user(), fh, 3, b"two").await.unwrap();
    fs.fsync(&user(), fh).await.unwrap();
    assert_eq!(fs.meta().st().copies[&chunk.id], (6, vec![1, 2]));
    assert_eq!(fs.read(&user(), fh, 0, 6).await.unwrap(), b"onetwo");
}

#[tokio::test(start_paused = true)]
async fn writes_fail_with_eio_once_the_attempts_run_out_and_enospc_when_full() {
    let fs = fs();
    let (_, fh) = new_file(&fs, "f").await;
    fs.data().st().down.extend([1, 2]);
    fs.write(&user(), fh, 0, b"lost").await.unwrap();
    let e = fs.flush(&user(), fh, None).await.unwrap_err();
    assert_eq!(errno(&e), libc::EIO, "{e}");
    assert!(fs.meta().count("chunk_for_write") <= 4);

    let fs = super::fs();
    let (_, fh) = new_file(&fs, "g").await;
    for s in [1, 2, 1, 2] {
        fs.data().st().fail_next.push_back((s, DataError::NoSpace));
    }
    fs.write(&user(), fh, 0, b"full").await.unwrap();
    let e = fs.fsync(&user(), fh).await.unwrap_err();
    assert_eq!(errno(&e), libc::ENOSPC, "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_landing_failure_outside_the_file_is_reported_by_its_next_flush() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.data().st().down.extend([1, 2]);
    fs.write(&user(), fh, 0, b"doomed").await.unwrap();
    // getattr lands the buffer; its failure is kept for the file, not reported to getattr.
    fs.getattr(&user(), ino).await.unwrap();
    fs.data().st().down.clear();
    assert!(matches!(
        fs.flush(&user(), fh, None).await,
        Err(FsError::Data { .. })
    ));
    fs.flush(&user(), fh, None).await.unwrap();
}

#[tokio::test]
async fn writing_needs_a_handle_open_for_writing() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.release(&user(), fh, None).await.unwrap();
    assert!(matches!(
        fs.write(&user(), fh, 0, b"x").await,
        Err(FsError::Posix(Errno::EBADF))
    ));
    let ro = crate::core::OpenMode {
        read: true,
        ..crate::core::OpenMode::default()
    };
    let fh = fs.open(&user(), ino, ro).await.unwrap();
    assert!(matches!(
        fs.write(&user(), fh, 0, b"x").await,
        Err(FsError::Posix(Errno::EBADF))
    ));
}

#[tokio::test]
async fn truncating_cuts_the_tail_chunk_so_an_extension_reads_zeros() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.write(&user(), fh, 0, &[7; 1000]).await.unwrap();
    let cut = fs
        .setattr(
            &user(),
            ino,
            SetAttr {
                size: Some(10),
                ..SetAttr::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        fs.data().count("truncate"),
        2,
        "the tail chunk is cut on both copies"
    );
    assert_eq!(
        cut,
        fs.meta().st().nodes[&ino].attr,
        "the attributes after the cut (which moves mtime again) are reported"
    );
    fs.setattr(
        &user(),
        ino,
        SetAttr {
            size: Some(1000),
            ..SetAttr::default()
        },
        Some(fh),
    )
    .await
    .unwrap();
    let got = fs.read(&user(), fh, 0, 1000).await.unwrap();
    assert_eq!(&got[..10], &[7; 10]);
    assert!(got[10..].iter().all(|b| *b == 0), "no old bytes come back");
    assert_eq!(
        fs.meta().count("release"),
        1,
        "the truncation's own handle was released"
    );
    // Cutting at a chunk boundary drops whole chunks: nothing to cut.
    fs.setattr(
        &user(),
        ino,
        SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
        Some(fh),
    )
    .await
    .unwrap();
    assert_eq!(fs.data().count("truncate"), 2);
}

#[tokio::test]
async fn fsync_after_a_truncation_skips_the_chunks_it_dropped() {
    let fs = fs();
    let (ino, fh) = new_file(&fs, "f").await;
    fs.write(&user(), fh, 0, b"head").await.unwrap();
    fs.write(&user(), fh, CHUNK_SIZE + 10, b"tail").await.unwrap();
    fs.flush(&user(), fh, None).await.unwrap();
    let dropped = fs.meta().st().nodes[&ino].chunks[&1].id;
    fs.setattr(
        &user(),
        ino,
        SetAttr {
            size: Some(100),
            ..SetAttr::default()
        },
        Some(fh),
    )
    .await
    .unwrap();
    // The chunk past the new end is garbage: its copies go away.
    fs.data().st().copies.retain(|(_, chunk), _| *chunk != dropped);
    fs.fsync(&user(), fh)
        .await
        .expect("nothing left to sync of a dropped chunk");
    assert_eq!(fs.data().count("sync"), 2, "only chunk 0, on both copies");
}
