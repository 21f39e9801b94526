//! The file-system operations, one module per family. Each takes a [`super::tx::Tx`] (for
//! mutations) or the state (for reads), checks everything first, and only then changes.
//!
//! | module | operations |
//! |---|---|
//! | [`create`] | mknod, mkdir, create, symlink, link |
//! | [`remove`] | unlink, rmdir |
//! | [`rename`] | rename (plain, `NOREPLACE`, `EXCHANGE`) |
//! | [`setattr`] | chmod, chown, truncate, utimes |
//! | [`xattr`] | set, remove, get and list extended attributes |
//! | [`open`] | open, release |
//! | [`atime`] | the atime update of a read (relatime) |
//! | [`chunk`] | chunks for reading and writing, the end of a write |
//! | [`goal`] | replication goals |
//! | [`quota`] | directory quotas: limits, usage, and what each operation charges |
//! | [`lock`] | POSIX byte-range and `flock` locks |
//! | [`session`] | the end of a silent client's session: its handles and locks |
//! | [`lookup`] | lookup, getattr, readlink, access, statfs |
//! | [`readdir`] | directory listings in pages |

pub mod atime;
pub mod chunk;
pub mod create;
pub mod goal;
pub mod lock;
pub mod lookup;
pub mod open;
pub mod quota;
pub mod readdir;
pub mod remove;
pub mod rename;
pub mod session;
pub mod setattr;
pub mod xattr;

/// The most links an inode may have (ext4's limit): `EMLINK` beyond.
pub const LINK_MAX: u64 = 65_000;

/// The largest file size (Linux `MAX_LFS_FILESIZE`): `EFBIG` beyond.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// The longest symlink target, in bytes (Linux `PATH_MAX` less the NUL).
pub const SYMLINK_MAX: usize = 4095;
