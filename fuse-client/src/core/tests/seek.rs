//! SEEK_DATA / SEEK_HOLE at chunk granularity.

use proto::CHUNK_SIZE;

use super::{fs, new_file, user};
use crate::core::{FsError, Whence};

#[tokio::test]
async fn seek_data_and_seek_hole_find_chunks_and_gaps() {
    let fs = fs();
    let (_, fh) = new_file(&fs, "f").await;
    fs.write(&user(), fh, 10, b"a").await.unwrap();
    fs.write(&user(), fh, 2 * CHUNK_SIZE + 7, b"b").await.unwrap();
    let size = 2 * CHUNK_SIZE + 8;
    let me = user();
    let seek = |off, w| fs.lseek(&me, fh, off, w);
    assert_eq!(seek(0, Whence::Data).await.unwrap(), 0);
    assert_eq!(
        seek(5, Whence::Data).await.unwrap(),
        5,
        "buffered data counts (it lands first)"
    );
    assert_eq!(seek(0, Whence::Hole).await.unwrap(), CHUNK_SIZE);
    assert_eq!(seek(CHUNK_SIZE + 3, Whence::Hole).await.unwrap(), CHUNK_SIZE + 3);
    assert_eq!(seek(CHUNK_SIZE + 3, Whence::Data).await.unwrap(), 2 * CHUNK_SIZE);
    assert_eq!(
        seek(2 * CHUNK_SIZE, Whence::Hole).await.unwrap(),
        size,
        "the end of the file is a hole"
    );
    assert!(matches!(
        seek(size, Whence::Data).await,
        Err(FsError::NoSuchOffset)
    ));
    assert!(matches!(
        seek(size + 100, Whence::Hole).await,
        Err(FsError::NoSuchOffset)
    ));
}
