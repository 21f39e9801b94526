//! Extended attributes: size queries and ERANGE.

use proto::Errno;
use proto::fs::xattr_flags;

use super::{fs, new_file, user};
use crate::core::{FsError, Xattr};

#[tokio::test]
async fn a_size_query_answers_the_size_and_a_small_buffer_is_erange() {
    let fs = fs();
    let (ino, _) = new_file(&fs, "x").await;
    fs.setxattr(&user(), ino, b"user.color", b"turquoise", 0)
        .await
        .unwrap();
    fs.setxattr(&user(), ino, b"user.n", b"1", 0).await.unwrap();

    assert_eq!(
        fs.getxattr(&user(), ino, b"user.color", 0).await.unwrap(),
        Xattr::Size(9)
    );
    assert!(matches!(
        fs.getxattr(&user(), ino, b"user.color", 8).await,
        Err(FsError::Posix(Errno::ERANGE))
    ));
    assert_eq!(
        fs.getxattr(&user(), ino, b"user.color", 9).await.unwrap(),
        Xattr::Data(b"turquoise".to_vec())
    );
    assert!(matches!(
        fs.getxattr(&user(), ino, b"user.none", 0).await,
        Err(FsError::Posix(Errno::ENODATA))
    ));

    let list = b"user.color\0user.n\0".to_vec();
    assert_eq!(
        fs.listxattr(&user(), ino, 0).await.unwrap(),
        Xattr::Size(list.len() as u32)
    );
    assert!(matches!(
        fs.listxattr(&user(), ino, 5).await,
        Err(FsError::Posix(Errno::ERANGE))
    ));
    assert_eq!(fs.listxattr(&user(), ino, 100).await.unwrap(), Xattr::Data(list));

    assert!(matches!(
        fs.setxattr(&user(), ino, b"user.n", b"2", xattr_flags::CREATE)
            .await,
        Err(FsError::Posix(Errno::EEXIST))
    ));
    let huge = vec![0; proto::XATTR_VALUE_MAX + 1];
    assert!(matches!(
        fs.setxattr(&user(), ino, b"user.big", &huge, 0).await,
        Err(FsError::Posix(Errno::E2BIG))
    ));
    fs.removexattr(&user(), ino, b"user.n").await.unwrap();
    assert_eq!(fs.listxattr(&user(), ino, 0).await.unwrap(), Xattr::Size(11));
}
