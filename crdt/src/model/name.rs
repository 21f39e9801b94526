//! File names: validated byte strings (POSIX names need not be UTF-8).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest name, in bytes (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// A single path component: 1 to [`NAME_MAX`] bytes, no `/` or NUL, and not `.` or `..`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct Name(Box<[u8]>);

/// Why a byte string is not a valid [`Name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("empty file name")]
    Empty,
    /// The name is longer than [`NAME_MAX`] bytes (maps to `ENAMETOOLONG`).
    #[error("file name is {0} bytes, longer than {NAME_MAX}")]
    TooLong(usize),
    /// The name contains `/` or NUL.
    #[error("file name contains '/' or NUL")]
    BadByte,
    /// The name is `.` or `..`, which are not stored entries.
    #[error("'.' and '..' are not entries")]
    Dot,
}

impl Name {
    /// Validates `bytes` as a name.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Name, NameError> {
        let bytes = bytes.into();
        match bytes.as_slice() {
            [] => Err(NameError::Empty),
            b if b.len() > NAME_MAX => Err(NameError::TooLong(b.len())),
            b if b.iter().any(|&c| c == b'/' || c == 0) => Err(NameError::BadByte),
            b"." | b".." => Err(NameError::Dot),
            _ => Ok(Name(bytes.into_boxed_slice())),
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for Name {
    type Error = NameError;
    fn try_from(v: Vec<u8>) -> Result<Self, NameError> {
        Name::new(v)
    }
}

impl TryFrom<&str> for Name {
    type Error = NameError;
    fn try_from(v: &str) -> Result<Self, NameError> {
        Name::new(v.as_bytes())
    }
}

impl From<Name> for Vec<u8> {
    fn from(n: Name) -> Vec<u8> {
        n.0.into_vec()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_names() {
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(Name::new("a/b"), Err(NameError::BadByte));
        assert_eq!(Name::new(b"a\0".to_vec()), Err(NameError::BadByte));
        assert_eq!(Name::new(".."), Err(NameError::Dot));
        assert_eq!(Name::new(vec![b'x'; 256]), Err(NameError::TooLong(256)));
        assert!(Name::new(vec![0xffu8; 255]).is_ok(), "names are bytes, not UTF-8");
    }
}
