//! [`NetError`]: every failure of this crate, with what the caller needs to act on it.

use std::net::SocketAddr;
use std::path::PathBuf;

use quinn::{ConnectionError, ReadError, ReadExactError, WriteError};

use crate::rpc::{CODE_INTERNAL, CODE_MALFORMED, CODE_TOO_LARGE, CODE_UNSUPPORTED_VERSION};

/// Shorthand for results of this crate.
pub type Result<T, E = NetError> = std::result::Result<T, E>;

/// Why a PKI, TLS, connection, stream or frame operation failed.
///
/// [`NetError::is_retryable`] tells a caller whether trying again (on a new stream or a new
/// connection) can succeed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A frame's length field exceeds the reader's cap; nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the cap of {cap} bytes")]
    FrameTooLarge {
        /// The length the frame announced.
        len: usize,
        /// The largest length the reader accepts.
        cap: usize,
    },
    /// A frame is structurally invalid (zero length, undecodable body, trailing bytes).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame was written by an unknown (newer) format version.
    #[error("frame format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version byte in the frame.
        found: u8,
        /// The version this build reads and writes.
        supported: u8,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// A value could not be encoded as a frame (a local bug in the message type, not the peer's).
    #[error("encode frame: {0}")]
    Encode(String),
    /// The peer refused this stream with an application error code (see [`crate::rpc`]):
    /// it found the request malformed, too large or of an unknown version. Retrying the same
    /// request fails again.
    #[error("peer rejected the stream with code {code} ({})", code_meaning(*code))]
    Rejected {
        /// The application error code the peer reset or stopped the stream with.
        code: u64,
    },
    /// The connection or stream closed before the exchange completed.
    #[error("closed: {0}")]
    Closed(String),
    /// A connection to `addr` could not be started or established (not a TLS rejection).
    #[error("connect to {addr}: {reason}")]
    Connect {
        /// The address dialled.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// TLS configuration failed, or a peer failed or refused the TLS handshake (wrong CA, no
    /// client certificate, bad certificate). Retrying with the same certificates fails again.
    #[error("tls: {0}")]
    Tls(String),
    /// The operation did not finish within its deadline.
    #[error("timed out")]
    Timeout,
    /// A socket operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A PKI file could not be read, written or parsed.
    #[error("{}: {reason}", path.display())]
    Pki {
        /// The file or directory involved.
        path: PathBuf,
        /// What failed, starting with the action (`"read: …"`, `"parse certificate: …"`).
        reason: String,
    },
    /// A certificate or key could not be generated or signed.
    #[error("certificate: {0}")]
    Certificate(String),
}

impl NetError {
    /// Whether the operation may succeed if tried again, on a new stream or connection.
    ///
    /// True for transient conditions (connect failures, closed connections, timeouts); false
    /// when the same input, the same certificates or the same socket would fail the same way.
    pub fn is_retryable(&self) -> bool {
        match self {
            NetError::Connect { .. } | NetError::Closed(_) | NetError::Timeout => true,
            // A peer that *finishes* a stream mid-frame is buggy (a dying connection is
            // `Closed`); local socket errors (bind, address in use) need an operator.
            NetError::Truncated
            | NetError::Io(_)
            | NetError::FrameTooLarge { .. }
            | NetError::Malformed(_)
            | NetError::UnsupportedVersion { .. }
            | NetError::Encode(_)
            | NetError::Rejected { .. }
            | NetError::Tls(_)
            | NetError::Pki { .. }
            | NetError::Certificate(_) => false,
        }
    }

    pub(crate) fn pki(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        NetError::Pki {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// The meaning of a stream error code defined in [`crate::rpc`].
fn code_meaning(code: u64) -> &'static str {
    match code {
        c if c == CODE_MALFORMED.into_inner() => "malformed frame",
        c if c == CODE_TOO_LARGE.into_inner() => "frame too large",
        c if c == CODE_UNSUPPORTED_VERSION.into_inner() => "unsupported frame version",
        c if c == CODE_INTERNAL.into_inner() => "server could not answer",
        _ => "unknown code",
    }
}

/// Whether a QUIC transport error code carries a TLS alert (RFC 9001 §4.8: 0x100–0x1ff).
fn is_crypto_code(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

impl From<ConnectionError> for NetError {
    fn from(e: ConnectionError) -> Self {
        match &e {
            ConnectionError::TransportError(t) if is_crypto_code(t.code) => NetError::Tls(e.to_string()),
            ConnectionError::ConnectionClosed(c) if is_crypto_code(c.error_code) => {
                NetError::Tls(e.to_string())
            }
            ConnectionError::TimedOut => NetError::Timeout,
            _ => NetError::Closed(e.to_string()),
        }
    }
}

impl From<ReadError> for NetError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Reset(code) => NetError::Rejected {
                code: code.into_inner(),
            },
            ReadError::ConnectionLost(c) => c.into(),
            other => NetError::Closed(other.to_string()),
        }
    }
}

impl From<ReadExactError> for NetError {
    fn from(e: ReadExactError) -> Self {
        match e {
            ReadExactError::FinishedEarly(_) => NetError::Truncated,
            ReadExactError::ReadError(r) => r.into(),
        }
    }
}

impl From<WriteError> for NetError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Stopped(code) => NetError::Rejected {
                code: code.into_inner(),
            },
            WriteError::ConnectionLost(c) => c.into(),
            other => NetError::Closed(other.to_string()),
        }
    }
}

impl From<quinn::ClosedStream> for NetError {
    fn from(e: quinn::ClosedStream) -> Self {
        NetError::Closed(e.to_string())
    }
}

impl From<rustls::Error> for NetError {
    fn from(e: rustls::Error) -> Self {
        NetError::Tls(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_kind_of_failure() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let retryable = [
            NetError::Connect {
                addr,
                reason: "refused".into(),
            },
            NetError::Closed("gone".into()),
            NetError::Timeout,
        ];
        for e in retryable {
            assert!(e.is_retryable(), "{e}");
        }
        let permanent = [
            NetError::FrameTooLarge { len: 10, cap: 5 },
            NetError::Malformed("x".into()),
            NetError::UnsupportedVersion {
                found: 9,
                supported: 1,
            },
            NetError::Rejected { code: 1 },
            NetError::Tls("unknown ca".into()),
            NetError::pki("/x/ca.pem", "read: nope"),
        ];
        for e in permanent {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn messages_carry_the_details() {
        assert_eq!(
            NetError::pki("/x/ca.pem", "read: No such file").to_string(),
            "/x/ca.pem: read: No such file"
        );
        assert_eq!(
            NetError::Rejected { code: 2 }.to_string(),
            "peer rejected the stream with code 2 (frame too large)"
        );
        let crypto = ConnectionError::ConnectionClosed(quinn::ConnectionClose {
            error_code: quinn::TransportErrorCode::crypto(116),
            frame_type: None,
            reason: bytes::Bytes::from_static(b"peer sent no certificates"),
        });
        assert!(matches!(NetError::from(crypto), NetError::Tls(m) if m.contains("no certificates")));
        assert!(matches!(
            NetError::from(ConnectionError::TimedOut),
            NetError::Timeout
        ));
    }
}
