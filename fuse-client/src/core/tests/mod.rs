//! The core's unit tier: the core over in-memory fakes of the metadata service and the
//! chunkservers ([`fake_meta`], [`fake_data`]), one file per area.

mod fake_data;
mod fake_meta;

mod dir;
mod lock;
mod read;
mod seek;
mod watch;
mod write;
mod xattr;

use proto::fs::Cred;

pub(crate) use self::fake_data::FakeData;
pub(crate) use self::fake_meta::FakeMeta;
use crate::core::{Fs, FsConfig, OpenMode};

pub(crate) type TestFs = Fs<FakeMeta, FakeData>;

/// A file system over fresh fakes.
pub(crate) fn fs_with(cfg: FsConfig) -> TestFs {
    Fs::new(FakeMeta::new(), FakeData::default(), cfg)
}

pub(crate) fn fs() -> TestFs {
    fs_with(FsConfig {
        relatime: false,
        ..FsConfig::default()
    })
}

pub(crate) fn user() -> Cred {
    Cred {
        uid: 1000,
        gid: 1000,
        groups: vec![],
    }
}

pub(crate) const RW: OpenMode = OpenMode {
    read: true,
    write: true,
    truncate: false,
    exclusive: false,
};

/// Creates `name` in the root, open for reading and writing: (inode, handle).
pub(crate) async fn new_file(fs: &TestFs, name: &str) -> (u64, u64) {
    let (attr, fh) = fs.create(&user(), 1, name.as_bytes(), 0o644, RW).await.unwrap();
    (attr.ino, fh)
}

/// A recognisable byte pattern: byte `i` of a file is `pattern(i)`.
pub(crate) fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

pub(crate) fn patterned(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(pattern).collect()
}
