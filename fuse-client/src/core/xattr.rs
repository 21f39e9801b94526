//! Extended attributes. A query with size 0 answers the size needed; a buffer too small for
//! the value (or the name list) is `ERANGE`, as getxattr(2) and listxattr(2) say.

use proto::fs::Cred;
use proto::{Errno, FsOp, FsReply, XATTR_VALUE_MAX};

use crate::core::{Data, Fs, FsError, Meta};

/// The answer to a getxattr or listxattr of a given buffer size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Xattr {
    /// The size the caller needs (it asked with size 0).
    Size(u32),
    /// The value, or the NUL-terminated names.
    Data(Vec<u8>),
}

impl Xattr {
    /// `bytes` as the answer to a buffer of `size` bytes.
    fn fit(bytes: Vec<u8>, size: u32) -> Result<Xattr, FsError> {
        let len = u32::try_from(bytes.len()).map_err(|_| Errno::E2BIG)?;
        match size {
            0 => Ok(Xattr::Size(len)),
            s if len > s => Err(Errno::ERANGE.into()),
            _ => Ok(Xattr::Data(bytes)),
        }
    }
}

impl<M: Meta, D: Data> Fs<M, D> {
    /// Sets `name` to `value` (`flags`: `XATTR_CREATE`, `XATTR_REPLACE`).
    pub async fn setxattr(
        &self,
        cred: &Cred,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), FsError> {
        if value.len() > XATTR_VALUE_MAX {
            return Err(Errno::E2BIG.into());
        }
        let op = FsOp::SetXattr {
            ino,
            name: name.to_vec(),
            value: value.to_vec(),
            flags,
        };
        self.ask_done(cred, op, "setxattr").await
    }

    /// The value of `name`, for a buffer of `size` bytes.
    pub async fn getxattr(&self, cred: &Cred, ino: u64, name: &[u8], size: u32) -> Result<Xattr, FsError> {
        match self
            .ask(
                cred,
                FsOp::GetXattr {
                    ino,
                    name: name.to_vec(),
                },
            )
            .await?
        {
            FsReply::Xattr(v) => Xattr::fit(v, size),
            other => Err(FsError::protocol("getxattr", other)),
        }
    }

    /// The names, each followed by a NUL, for a buffer of `size` bytes.
    pub async fn listxattr(&self, cred: &Cred, ino: u64, size: u32) -> Result<Xattr, FsError> {
        match self.ask(cred, FsOp::ListXattr { ino }).await? {
            FsReply::XattrNames(names) => {
                let mut out = Vec::with_capacity(names.iter().map(|n| n.len() + 1).sum());
                for n in names {
                    out.extend_from_slice(&n);
                    out.push(0);
                }
                Xattr::fit(out, size)
            }
            other => Err(FsError::protocol("listxattr", other)),
        }
    }

    /// Removes `name`.
    pub async fn removexattr(&self, cred: &Cred, ino: u64, name: &[u8]) -> Result<(), FsError> {
        self.ask_done(
            cred,
            FsOp::RemoveXattr {
                ino,
                name: name.to_vec(),
            },
            "removexattr",
        )
        .await
    }
}
