//! Names as operations receive them: `.`, `..`, or a stored name, with the errors Linux gives
//! for each.

use crdt::model::{Name, NameError};
use proto::Errno;

/// One path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    /// `.`: the directory itself.
    Dot,
    /// `..`: its parent.
    DotDot,
    /// Any other name.
    Name(Name),
}

/// Parses a component: `EINVAL` if empty or holding `/` or NUL, `ENAMETOOLONG` over 255 bytes.
pub fn component(bytes: &[u8]) -> Result<Component, Errno> {
    match bytes {
        b"." => Ok(Component::Dot),
        b".." => Ok(Component::DotDot),
        _ => Name::new(bytes).map(Component::Name).map_err(|e| match e {
            NameError::TooLong(_) => Errno::ENAMETOOLONG,
            NameError::Empty | NameError::BadByte | NameError::Dot => Errno::EINVAL,
        }),
    }
}

/// What an operation answers when asked to act on `.` or `..` as an entry name.
#[derive(Debug, Clone, Copy)]
pub struct DotErrors {
    /// For `.`.
    pub dot: Errno,
    /// For `..`.
    pub dotdot: Errno,
}

/// Creating `.` or `..` (mkdir, mknod, create, symlink, link): the name exists.
pub const ON_CREATE: DotErrors = DotErrors {
    dot: Errno::EEXIST,
    dotdot: Errno::EEXIST,
};
/// Unlinking `.` or `..`: Linux `unlinkat` answers `EISDIR`.
pub const ON_UNLINK: DotErrors = DotErrors {
    dot: Errno::EISDIR,
    dotdot: Errno::EISDIR,
};
/// Removing `.` or `..` with rmdir: Linux answers `EINVAL` and `ENOTEMPTY`.
pub const ON_RMDIR: DotErrors = DotErrors {
    dot: Errno::EINVAL,
    dotdot: Errno::ENOTEMPTY,
};
/// Renaming from or to `.` or `..`: Linux answers `EBUSY`, which [`Errno`] lacks; `EINVAL`
/// is the closest (the FUSE kernel module catches these before they reach us anyway).
pub const ON_RENAME: DotErrors = DotErrors {
    dot: Errno::EINVAL,
    dotdot: Errno::EINVAL,
};

/// A name to create, remove or rename; `.` and `..` fail with `dots`.
pub fn entry_name(bytes: &[u8], dots: DotErrors) -> Result<Name, Errno> {
    match component(bytes)? {
        Component::Name(n) => Ok(n),
        Component::Dot => Err(dots.dot),
        Component::DotDot => Err(dots.dotdot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_map_to_linux_errors() {
        assert_eq!(component(b"."), Ok(Component::Dot));
        assert_eq!(component(b".."), Ok(Component::DotDot));
        assert_eq!(component(b"..."), Ok(Component::Name(Name::new("...").unwrap())));
        assert_eq!(component(b""), Err(Errno::EINVAL));
        assert_eq!(component(b"a/b"), Err(Errno::EINVAL));
        assert_eq!(component(b"a\0"), Err(Errno::EINVAL));
        assert_eq!(component(&[b'x'; 256]), Err(Errno::ENAMETOOLONG));
        assert!(component(&[b'x'; 255]).is_ok());
        assert_eq!(entry_name(b"..", ON_RMDIR), Err(Errno::ENOTEMPTY));
        assert_eq!(entry_name(b".", ON_RMDIR), Err(Errno::EINVAL));
    }
}
