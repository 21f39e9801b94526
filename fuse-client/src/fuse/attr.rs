//! Conversions between the core's types and the kernel's: attributes, file types, times,
//! lock types and ranges.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crdt::model::{FileKind, FileTime};
use fuser::{FileAttr, FileType, INodeNo, TimeOrNow};
use proto::Attr;
use proto::data::BLOCK_SIZE;
use proto::fs::{Lock, LockKind, TimeSet};

/// The kernel's "to the end of the file" (`OFFSET_MAX`) as a lock end.
const OFFSET_MAX: u64 = i64::MAX as u64;

/// The kernel's view of `a`. Blocks are counted from the size (the metadata tier does not
/// track allocation); the block size is the chunkservers' checksum block.
pub(crate) fn file_attr(a: &Attr) -> FileAttr {
    let ctime = system_time(a.ctime);
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime,
        crtime: ctime,
        kind: file_type(a.kind),
        perm: (a.perm & 0o7777) as u16,
        nlink: u32::try_from(a.nlink).unwrap_or(u32::MAX),
        uid: a.uid,
        gid: a.gid,
        rdev: u32::try_from(a.rdev).unwrap_or(0),
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// Placeholder attributes for a listing entry that has none (`..` of a directory whose parent
/// lives on another shard): the kernel ignores the attributes of `.` and `..` in a
/// readdirplus reply, but reads the type from them.
pub(crate) fn bare_attr(ino: u64, kind: FileKind) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: file_type(kind),
        perm: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

pub(crate) fn file_type(k: FileKind) -> FileType {
    match k {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDev => FileType::CharDevice,
        FileKind::BlockDev => FileType::BlockDevice,
    }
}

/// The kind of node `mknod` is asked for (the `S_IFMT` bits of `mode`); `None` for anything
/// mknod cannot make.
pub(crate) fn mknod_kind(mode: u32) -> Option<FileKind> {
    match mode & libc::S_IFMT {
        libc::S_IFREG | 0 => Some(FileKind::File),
        libc::S_IFIFO => Some(FileKind::Fifo),
        libc::S_IFSOCK => Some(FileKind::Socket),
        libc::S_IFCHR => Some(FileKind::CharDev),
        libc::S_IFBLK => Some(FileKind::BlockDev),
        _ => None,
    }
}

pub(crate) fn system_time(t: FileTime) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.nanos()));
    let at = match u64::try_from(t.secs()) {
        Ok(s) => UNIX_EPOCH.checked_add(Duration::from_secs(s)),
        Err(_) => UNIX_EPOCH.checked_sub(Duration::from_secs(t.secs().unsigned_abs())),
    };
    at.and_then(|t| t.checked_add(nanos)).unwrap_or(UNIX_EPOCH)
}

pub(crate) fn file_time(t: SystemTime) -> FileTime {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            match d.subsec_nanos() {
                0 => (-(d.as_secs() as i64), 0),
                n => (-(d.as_secs() as i64) - 1, 1_000_000_000 - n),
            }
        }
    };
    FileTime::new(secs, nanos).unwrap_or_default()
}

/// A time the kernel sent (setattr), as fuser 0.18 hands it over.
pub(crate) fn time_set(t: TimeOrNow) -> TimeSet {
    match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(t) => TimeSet::At(kernel_time(t)),
    }
}

/// The kernel's (seconds, nanoseconds) behind a time fuser 0.18 converted: it maps a time
/// before the epoch, `secs < 0` plus `nanos`, to `UNIX_EPOCH - (|secs| s + nanos ns)`, which
/// is off by twice the nanoseconds (`system_time_from_time`); this undoes exactly that, where
/// [`file_time`] would give the time fuser meant but not the one the caller asked for.
fn kernel_time(t: SystemTime) -> FileTime {
    match UNIX_EPOCH.duration_since(t) {
        Ok(before) if !before.is_zero() => {
            FileTime::new(-(before.as_secs() as i64), before.subsec_nanos()).unwrap_or_default()
        }
        _ => file_time(t),
    }
}

/// A lock type from `F_RDLCK`, `F_WRLCK`, `F_UNLCK`.
fn lock_kind(typ: i32) -> Option<LockKind> {
    match typ {
        libc::F_RDLCK => Some(LockKind::Read),
        libc::F_WRLCK => Some(LockKind::Write),
        libc::F_UNLCK => Some(LockKind::Unlock),
        _ => None,
    }
}

pub(crate) fn lock_type(k: LockKind) -> i32 {
    match k {
        LockKind::Read => libc::F_RDLCK,
        LockKind::Write => libc::F_WRLCK,
        LockKind::Unlock => libc::F_UNLCK,
    }
}

/// A kernel lock end (inclusive, `OFFSET_MAX` to the end of the file) as the protocol's.
fn lock_end_in(end: u64) -> u64 {
    if end >= OFFSET_MAX { u64::MAX } else { end }
}

/// The lock a getlk or setlk request describes; `None` for an unknown lock type.
pub(crate) fn lock_in(owner: u64, pid: u32, typ: i32, start: u64, end: u64) -> Option<Lock> {
    Some(Lock {
        owner,
        pid,
        kind: lock_kind(typ)?,
        start,
        end: lock_end_in(end),
    })
}

/// The protocol's lock end as the kernel's.
pub(crate) fn lock_end_out(end: u64) -> u64 {
    end.min(OFFSET_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_on_both_sides_of_the_epoch() {
        for (s, n) in [
            (0, 0),
            (1_700_000_000, 123_456_789),
            (-1, 500_000_000),
            (-86_400, 0),
            (-5, 1),
        ] {
            let t = FileTime::new(s, n).unwrap();
            assert_eq!(file_time(system_time(t)), t, "{s}.{n}");
        }
        assert!(system_time(FileTime::new(-1, 500_000_000).unwrap()) < UNIX_EPOCH);
    }

    #[test]
    fn kernel_times_before_the_epoch_survive_fusers_conversion() {
        // fuser 0.18 turns the kernel's (-86401 s, 500 ns) into this.
        let from_fuser = UNIX_EPOCH - Duration::new(86_401, 500);
        assert_eq!(kernel_time(from_fuser), FileTime::new(-86_401, 500).unwrap());
        assert_eq!(
            kernel_time(UNIX_EPOCH - Duration::from_secs(5)),
            FileTime::new(-5, 0).unwrap()
        );
        let later = FileTime::new(1_700_000_000, 7).unwrap();
        assert_eq!(kernel_time(system_time(later)), later);
        assert_eq!(kernel_time(UNIX_EPOCH), FileTime::new(0, 0).unwrap());
        assert_eq!(time_set(TimeOrNow::Now), TimeSet::Now);
    }

    #[test]
    fn modes_and_lock_types_convert_both_ways() {
        assert_eq!(mknod_kind(libc::S_IFIFO | 0o644), Some(FileKind::Fifo));
        assert_eq!(mknod_kind(0o644), Some(FileKind::File));
        assert_eq!(mknod_kind(libc::S_IFDIR | 0o755), None);
        for k in [LockKind::Read, LockKind::Write, LockKind::Unlock] {
            assert_eq!(lock_kind(lock_type(k)), Some(k));
        }
        assert_eq!(lock_kind(42), None);
        assert_eq!(lock_end_in(OFFSET_MAX), u64::MAX);
        assert_eq!(lock_end_out(u64::MAX), OFFSET_MAX);
        assert_eq!(lock_end_in(99), 99);
    }
}
