//! Request/response on one bidirectional stream per call.
//!
//! The caller opens a stream, writes one request frame and finishes its side; the server
//! answers with one response frame and finishes. Calls on one connection run independently
//! (no head-of-line blocking between them). A server that cannot read a request refuses the
//! stream — stops reading it and resets its reply — with one of the codes below, which the
//! caller sees as [`NetError::Rejected`]; the connection and its other streams carry on.

use std::future::Future;
use std::time::Duration;

use quinn::VarInt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tracing::{debug, error};

use crate::error::{NetError, Result};
use crate::frame::{encode_frame, read_frame};

/// Stream error code: the request frame did not decode (garbage, truncated, zero length).
pub const CODE_MALFORMED: VarInt = VarInt::from_u32(1);
/// Stream error code: the request frame exceeded the server's cap.
pub const CODE_TOO_LARGE: VarInt = VarInt::from_u32(2);
/// Stream error code: the request frame has a format version the server does not read.
pub const CODE_UNSUPPORTED_VERSION: VarInt = VarInt::from_u32(3);
/// Stream error code: the server could not encode its response (a server bug).
pub const CODE_INTERNAL: VarInt = VarInt::from_u32(4);

/// Sends `req` on a new stream of `conn` and returns the response, which may be at most `cap`
/// bytes; the whole call, stream opening included, is bounded by `timeout`.
///
/// A stream that ends without a response is [`NetError::Closed`]; a refused request is
/// [`NetError::Rejected`]; a handshake the server refused (for example, for this side's
/// certificate) is [`NetError::Tls`].
pub async fn call<Req, Resp>(
    conn: &quinn::Connection,
    req: &Req,
    cap: usize,
    timeout: Duration,
) -> Result<Resp>
where
    Req: Serialize,
    Resp: DeserializeOwned,
{
    let frame = encode_frame(req)?;
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&frame).await?;
        send.finish()?;
        read_frame(&mut recv, cap)
            .await?
            .ok_or_else(|| NetError::Closed("stream finished without a response".into()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| NetError::Timeout)?
}

/// Serves `conn`: for every stream the peer opens, reads one request of at most `cap` bytes,
/// answers it with `handler(request)` and finishes the stream.
///
/// Each stream runs in its own task. A stream whose request cannot be read is refused with
/// [`CODE_MALFORMED`], [`CODE_TOO_LARGE`] or [`CODE_UNSUPPORTED_VERSION`] and logged at debug
/// level; it never affects the connection or its other streams.
///
/// Returns as soon as the connection closes; handlers still running then run to completion
/// (their responses are discarded). Dropping the returned future before that cancels the
/// handlers in flight, at their next await point.
pub async fn serve_connection<Req, Resp, F, Fut>(conn: quinn::Connection, cap: usize, handler: F)
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    let remote = conn.remote_address();
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    streams.spawn(serve_stream(send, recv, cap, handler.clone()));
                }
                Err(e) => {
                    debug!(%remote, reason = %e, "connection closed");
                    break;
                }
            },
            Some(done) = streams.join_next(), if !streams.is_empty() => log_join(done),
        }
    }
    // Handlers still running finish on their own (their replies go nowhere): cancelling them
    // halfway through a mutation because the caller went away would be worse.
    streams.detach_all();
}

async fn serve_stream<Req, Resp, F, Fut>(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    cap: usize,
    handler: F,
) where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Req) -> Fut,
    Fut: Future<Output = Resp>,
{
    let stream = send.id();
    let req = match read_frame::<Req>(&mut recv, cap).await {
        Ok(Some(req)) => req,
        Ok(None) => {
            debug!(%stream, "stream finished without a request");
            return;
        }
        Err(e) => {
            let code = match &e {
                NetError::FrameTooLarge { .. } => Some(CODE_TOO_LARGE),
                NetError::UnsupportedVersion { .. } => Some(CODE_UNSUPPORTED_VERSION),
                NetError::Malformed(_) | NetError::Truncated => Some(CODE_MALFORMED),
                // The stream or the connection is already gone.
                _ => None,
            };
            debug!(%stream, error = %e, "refusing request");
            if let Some(code) = code {
                // Either side may already be closed; nothing more to do then.
                let _ = recv.stop(code);
                let _ = send.reset(code);
            }
            return;
        }
    };
    let resp = handler(req).await;
    let frame = match encode_frame(&resp) {
        Ok(frame) => frame,
        Err(e) => {
            error!(%stream, error = %e, "cannot encode response");
            let _ = send.reset(CODE_INTERNAL);
            return;
        }
    };
    if let Err(e) = send.write_all(&frame).await {
        debug!(%stream, error = %e, "cannot send response");
        return;
    }
    // Fails only if the stream was reset meanwhile.
    let _ = send.finish();
}

fn log_join(done: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        error!(error = %e, "request handler panicked");
    }
}
