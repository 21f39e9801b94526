//! How an operation ends when it does not succeed: a POSIX error for the caller, or a store
//! error that stops the shard. Operations return [`OpResult`] so both travel with `?`.

use proto::Errno;

use crate::error::StoreError;

/// Why an operation did not complete.
#[derive(Debug)]
pub enum Fail {
    /// The operation is refused and changes nothing.
    Posix(Errno),
    /// Reading the shard's state failed: fatal for the shard.
    Store(StoreError),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Posix(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

/// The result of an operation.
pub type OpResult<T> = Result<T, Fail>;

/// Separates the caller's POSIX outcome from a store failure.
pub fn split<T>(r: OpResult<T>) -> Result<Result<T, Errno>, StoreError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Fail::Posix(e)) => Ok(Err(e)),
        Err(Fail::Store(e)) => Err(e),
    }
}
