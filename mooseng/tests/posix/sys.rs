//! System calls std lacks (or hides the errno of), as thin `libc` wrappers. None of them
//! allocates, so they may run in a forked child before `exec` (see [`super::user`]).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `Err(errno)` for a -1 return.
fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The coarse real-time clock (the one that stamps local file times): (seconds, nanoseconds).
pub fn coarse_now() -> (i64, i64) {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut t) };
    (t.tv_sec, t.tv_nsec)
}

/// open(2).
pub fn open(path: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// write(2) of all of `data` in one call (short writes are an error here).
pub fn write(fd: &OwnedFd, data: &[u8]) -> io::Result<()> {
    let n = cvt(unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) })?;
    if n as usize != data.len() {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}

/// read(2) into `buf`; the bytes read.
pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    cvt(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }).map(|n| n as usize)
}

pub fn mkdir(path: &CStr, mode: u32) -> io::Result<()> {
    cvt(unsafe { libc::mkdir(path.as_ptr(), mode) }).map(drop)
}

/// mknod(2) of a regular file.
pub fn mknod_file(path: &CStr, mode: u32) -> io::Result<()> {
    cvt(unsafe { libc::mknod(path.as_ptr(), libc::S_IFREG | mode, 0) }).map(drop)
}

pub fn mkfifo(path: &CStr, mode: u32) -> io::Result<()> {
    cvt(unsafe { libc::mkfifo(path.as_ptr(), mode) }).map(drop)
}

pub fn unlink(path: &CStr) -> io::Result<()> {
    cvt(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

pub fn rmdir(path: &CStr) -> io::Result<()> {
    cvt(unsafe { libc::rmdir(path.as_ptr()) }).map(drop)
}

pub fn chmod(path: &CStr, mode: u32) -> io::Result<()> {
    cvt(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

pub fn chown(path: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    cvt(unsafe { libc::chown(path.as_ptr(), uid, gid) }).map(drop)
}

/// access(2) with `R_OK`, `W_OK`, `X_OK`, `F_OK` bits.
pub fn access(path: &CStr, mode: i32) -> io::Result<()> {
    cvt(unsafe { libc::access(path.as_ptr(), mode) }).map(drop)
}

/// renameat2(2) relative to the working directory (absolute paths).
pub fn renameat2(from: &CStr, to: &CStr, flags: u32) -> io::Result<()> {
    let ret = unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), flags) };
    cvt(ret).map(drop)
}

pub fn truncate(path: &CStr, len: i64) -> io::Result<()> {
    cvt(unsafe { libc::truncate(path.as_ptr(), len) }).map(drop)
}

pub fn ftruncate(fd: &OwnedFd, len: i64) -> io::Result<()> {
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// A time for [`utimensat`]: explicit, `UTIME_NOW` or `UTIME_OMIT`.
#[derive(Debug, Clone, Copy)]
pub enum Utime {
    At(i64, i64),
    Now,
    Omit,
}

impl Utime {
    fn spec(self) -> libc::timespec {
        let (tv_sec, tv_nsec) = match self {
            Utime::At(s, n) => (s, n),
            Utime::Now => (0, libc::UTIME_NOW),
            Utime::Omit => (0, libc::UTIME_OMIT),
        };
        libc::timespec { tv_sec, tv_nsec }
    }
}

/// utimensat(2) with (atime, mtime).
pub fn utimensat(path: &CStr, atime: Utime, mtime: Utime) -> io::Result<()> {
    let times = [atime.spec(), mtime.spec()];
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

/// flock(2) with `LOCK_SH`, `LOCK_EX`, `LOCK_UN`, `LOCK_NB`.
pub fn flock(fd: &OwnedFd, op: i32) -> io::Result<()> {
    cvt(unsafe { libc::flock(fd.as_raw_fd(), op) }).map(drop)
}

fn lock_of(typ: i32, start: i64, len: i64) -> libc::flock {
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = typ as i16;
    l.l_whence = libc::SEEK_SET as i16;
    l.l_start = start;
    l.l_len = len;
    l
}

/// fcntl(`F_SETLK`) of `typ` (`F_RDLCK`, `F_WRLCK`, `F_UNLCK`) over `len` bytes at `start`
/// (0: to the end of the file).
pub fn setlk(fd: &OwnedFd, typ: i32, start: i64, len: i64) -> io::Result<()> {
    let l = lock_of(typ, start, len);
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLK, &l) }).map(drop)
}

/// fcntl(`F_GETLK`): the first lock in the way of `typ` over the range: (type, start, len,
/// pid), type `F_UNLCK` if none.
pub fn getlk(fd: &OwnedFd, typ: i32, start: i64, len: i64) -> io::Result<(i32, i64, i64, i32)> {
    let mut l = lock_of(typ, start, len);
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETLK, &mut l) })?;
    Ok((i32::from(l.l_type), l.l_start, l.l_len, l.l_pid))
}

pub fn fallocate(fd: &OwnedFd, mode: i32, offset: i64, len: i64) -> io::Result<()> {
    cvt(unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset, len) }).map(drop)
}

/// lseek(2); the resulting offset.
pub fn lseek(fd: &OwnedFd, offset: i64, whence: i32) -> io::Result<i64> {
    cvt(unsafe { libc::lseek(fd.as_raw_fd(), offset, whence) })
}

/// setxattr(2) with `XATTR_CREATE` / `XATTR_REPLACE` flags.
pub fn setxattr(path: &CStr, name: &CStr, value: &[u8], flags: i32) -> io::Result<()> {
    let ret = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    cvt(ret).map(drop)
}

/// getxattr(2) into `buf` (empty: the size query); the value's length.
pub fn getxattr(path: &CStr, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let ret = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    cvt(ret).map(|n| n as usize)
}

/// listxattr(2) into `buf` (empty: the size query); the list's length.
pub fn listxattr(path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    cvt(unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }).map(|n| n as usize)
}

pub fn removexattr(path: &CStr, name: &CStr) -> io::Result<()> {
    cvt(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) }).map(drop)
}

/// statvfs(3).
pub fn statvfs(path: &CStr) -> io::Result<libc::statvfs> {
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::statvfs(path.as_ptr(), &mut s) })?;
    Ok(s)
}

/// A directory stream (opendir(3) and friends), to see `.`, `..` and the positions.
#[derive(Debug)]
pub struct Dir(*mut libc::DIR);

impl Dir {
    pub fn open(path: &CStr) -> io::Result<Dir> {
        let d = unsafe { libc::opendir(path.as_ptr()) };
        if d.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Dir(d))
    }

    /// The next entry's name, or `None` at the end (an error panics: the suite checks
    /// listings, not their failures).
    pub fn next_name(&mut self) -> Option<Vec<u8>> {
        unsafe { *libc::__errno_location() = 0 };
        let e = unsafe { libc::readdir(self.0) };
        if e.is_null() {
            let errno = io::Error::last_os_error();
            assert_eq!(errno.raw_os_error(), Some(0), "readdir failed: {errno}");
            return None;
        }
        Some(
            unsafe { CStr::from_ptr((*e).d_name.as_ptr()) }
                .to_bytes()
                .to_vec(),
        )
    }

    /// telldir(3).
    pub fn tell(&mut self) -> i64 {
        unsafe { libc::telldir(self.0) }
    }

    /// seekdir(3).
    pub fn seek(&mut self, at: i64) {
        unsafe { libc::seekdir(self.0, at) }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        unsafe { libc::closedir(self.0) };
    }
}
