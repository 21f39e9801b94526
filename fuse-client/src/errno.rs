//! The one mapping from the core's [`FsError`] to a Linux errno. Every variant of every error
//! type the core wraps is matched here, so a new variant does not compile until someone decides
//! its errno. Where the choice is debatable, the comment says why.

use client::ClientError;
use client::data::DataCallError;
use proto::RpcError;
use proto::data::DataError;

use crate::core::FsError;
use crate::core::error::DataFailure;

/// The errno `e` is reported to the kernel as.
pub fn errno(e: &FsError) -> i32 {
    match e {
        FsError::Posix(e) => e.code(),
        FsError::Meta(e) => client_errno(e),
        // A reply of the wrong kind is a protocol bug between us and the server. EPROTO would
        // be accurate but no caller of open/read/stat expects it; EIO says "the I/O failed".
        FsError::Protocol { .. } => libc::EIO,
        FsError::Data { failure, .. } => data_errno(failure),
        FsError::NoSuchOffset => libc::ENXIO,
        FsError::Interrupted => libc::EINTR,
    }
}

fn client_errno(e: &ClientError) -> i32 {
    match e {
        ClientError::Fs(e) => e.code(),
        // Retries ran out before the deadline. Debatable: ETIMEDOUT tells the cause (NFS
        // "softerr" mounts report it), but read(2), write(2), open(2) and stat(2) do not list
        // it and programs treat unknown errnos as EIO anyway; EIO is what NFS soft mounts and
        // MooseFS report, so scripts checking for it keep working.
        ClientError::Exhausted { .. } => libc::EIO,
        ClientError::Rpc(e) => rpc_errno(e),
        // The transport refused (certificate, malformed frames): not the caller's permission
        // problem, so not EACCES, which would send users to check file modes.
        ClientError::Net(_) => libc::EIO,
    }
}

fn rpc_errno(e: &RpcError) -> i32 {
    match e {
        RpcError::Fs(e) => e.code(),
        // The client retries these until its deadline and reports `Exhausted`; should one
        // escape anyway, it is a failure of the service, not of the caller's request.
        RpcError::NotLeader { .. }
        | RpcError::Unavailable { .. }
        | RpcError::NotCaughtUp { .. }
        | RpcError::UnknownShard(_) => libc::EIO,
        // The mount builds every request, so a malformed one is our bug, not an invalid
        // argument of the caller's: EIO rather than EINVAL.
        RpcError::BadRequest(_) => libc::EIO,
        // The server failed and the request may or may not have been applied.
        RpcError::Internal(_) => libc::EIO,
    }
}

fn data_errno(f: &DataFailure) -> i32 {
    match f {
        // No chunkserver to write to: the metadata tier itself answers ENOSPC when none is
        // alive; a chunk whose every copy is gone cannot be read: EIO.
        DataFailure::NoServers => libc::EIO,
        DataFailure::Call(DataCallError::Refused { error, .. }) => match error {
            DataError::NoSpace => libc::ENOSPC,
            DataError::NoChunk(_)
            | DataError::WrongVersion { .. }
            | DataError::Corrupt { .. }
            | DataError::Chain { .. }
            | DataError::BadRequest(_)
            | DataError::Io(_) => libc::EIO,
        },
        DataFailure::Call(DataCallError::Unreachable { .. }) => libc::EIO,
        DataFailure::Unexpected(_) => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use net::NetError;
    use proto::Errno;

    use super::*;

    fn refused(error: DataError) -> FsError {
        FsError::Data {
            chunk: 7,
            failure: DataFailure::Call(DataCallError::Refused { server: 1, error }),
        }
    }

    #[test]
    fn every_error_maps_to_the_errno_of_the_table() {
        let table: Vec<(FsError, i32)> = vec![
            (FsError::Posix(Errno::ENOENT), libc::ENOENT),
            (FsError::Posix(Errno::EXDEV), libc::EXDEV),
            (FsError::Posix(Errno::ENODATA), libc::ENODATA),
            (FsError::Posix(Errno::EAGAIN), libc::EAGAIN),
            (FsError::Posix(Errno::EOPNOTSUPP), libc::EOPNOTSUPP),
            (FsError::Posix(Errno::ERANGE), libc::ERANGE),
            (FsError::Meta(ClientError::Fs(Errno::EACCES)), libc::EACCES),
            (
                FsError::Meta(ClientError::Exhausted {
                    after: Duration::from_secs(30),
                    last: "x".into(),
                }),
                libc::EIO,
            ),
            (
                FsError::Meta(ClientError::Rpc(RpcError::Internal("boom".into()))),
                libc::EIO,
            ),
            (
                FsError::Meta(ClientError::Rpc(RpcError::BadRequest("too big".into()))),
                libc::EIO,
            ),
            (
                FsError::Meta(ClientError::Rpc(RpcError::Fs(Errno::ENOTEMPTY))),
                libc::ENOTEMPTY,
            ),
            (
                FsError::Meta(ClientError::Rpc(RpcError::UnknownShard(3))),
                libc::EIO,
            ),
            (FsError::Meta(ClientError::Net(NetError::Timeout)), libc::EIO),
            (FsError::protocol("lookup", "Done"), libc::EIO),
            (refused(DataError::NoSpace), libc::ENOSPC),
            (refused(DataError::Corrupt { chunk: 7, block: 0 }), libc::EIO),
            (
                refused(DataError::WrongVersion {
                    chunk: 7,
                    have: 1,
                    want: 2,
                }),
                libc::EIO,
            ),
            (
                FsError::Data {
                    chunk: 0,
                    failure: DataFailure::NoServers,
                },
                libc::EIO,
            ),
            (
                FsError::Data {
                    chunk: 7,
                    failure: DataFailure::Call(DataCallError::Unreachable {
                        server: 2,
                        addr: "127.0.0.1:9420".into(),
                        error: NetError::Timeout,
                    }),
                },
                libc::EIO,
            ),
            (FsError::NoSuchOffset, libc::ENXIO),
            (FsError::Interrupted, libc::EINTR),
        ];
        for (e, code) in &table {
            assert_eq!(errno(e), *code, "{e:?}");
        }
    }

    #[test]
    fn proto_errnos_are_the_linux_values() {
        for (e, code) in [
            (Errno::EPERM, libc::EPERM),
            (Errno::ENOENT, libc::ENOENT),
            (Errno::EBADF, libc::EBADF),
            (Errno::EACCES, libc::EACCES),
            (Errno::EBUSY, libc::EBUSY),
            (Errno::EEXIST, libc::EEXIST),
            (Errno::EXDEV, libc::EXDEV),
            (Errno::ENOTDIR, libc::ENOTDIR),
            (Errno::EISDIR, libc::EISDIR),
            (Errno::EINVAL, libc::EINVAL),
            (Errno::EFBIG, libc::EFBIG),
            (Errno::ENOSPC, libc::ENOSPC),
            (Errno::EROFS, libc::EROFS),
            (Errno::EMLINK, libc::EMLINK),
            (Errno::ERANGE, libc::ERANGE),
            (Errno::ENAMETOOLONG, libc::ENAMETOOLONG),
            (Errno::ENOTEMPTY, libc::ENOTEMPTY),
            (Errno::ELOOP, libc::ELOOP),
            (Errno::ENODATA, libc::ENODATA),
            (Errno::EOPNOTSUPP, libc::EOPNOTSUPP),
            (Errno::EDQUOT, libc::EDQUOT),
            (Errno::E2BIG, libc::E2BIG),
            (Errno::EAGAIN, libc::EAGAIN),
        ] {
            assert_eq!(errno(&FsError::Posix(e)), code, "{e:?}");
        }
    }
}
