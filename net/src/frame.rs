//! Versioned, size-capped frames over QUIC streams.
//!
//! A frame is a 4-byte big-endian length `L` of what follows, then `L` bytes: the format
//! version ([`FRAME_VERSION`]) and a postcard body. A reader checks `L` against its cap before
//! allocating anything, so a peer cannot make it reserve more than the cap; `L == 0` is
//! malformed. A stream carries any number of frames; its clean end falls between two frames.
//!
//! The pure helpers [`encode_frame`], [`frame_len`] and [`decode_frame_body`] hold the whole
//! format; [`write_frame`] and [`read_frame`] only move bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{NetError, Result};

/// The frame format version this build writes and reads.
pub const FRAME_VERSION: u8 = 1;
/// Size of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// Encodes `msg` as one frame: length prefix, version byte, postcard body.
///
/// Fails only if the message type cannot be encoded by postcard (for example a sequence of
/// unknown length) or the frame would exceed 4 GiB.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>> {
    let mut frame = postcard::to_extend(msg, vec![0, 0, 0, 0, FRAME_VERSION])
        .map_err(|e| NetError::Encode(e.to_string()))?;
    let len = frame.len() - LEN_PREFIX;
    let prefix = u32::try_from(len)
        .map_err(|_| NetError::Encode(format!("frame of {len} bytes does not fit a 4-byte length")))?;
    frame[..LEN_PREFIX].copy_from_slice(&prefix.to_be_bytes());
    Ok(frame)
}

/// The length announced by a frame's prefix, if acceptable under `cap` (which bounds the
/// version byte plus the body).
pub fn frame_len(prefix: [u8; LEN_PREFIX], cap: usize) -> Result<usize> {
    // A u32 always fits usize on the 32- and 64-bit targets we build for; saturate otherwise.
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(NetError::Malformed("zero-length frame".into()));
    }
    if len > cap {
        return Err(NetError::FrameTooLarge { len, cap });
    }
    Ok(len)
}

/// Decodes what follows a frame's length prefix: the version byte and the body, which must be
/// exactly one message.
pub fn decode_frame_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let [version, body @ ..] = bytes else {
        return Err(NetError::Malformed("zero-length frame".into()));
    };
    if *version != FRAME_VERSION {
        return Err(NetError::UnsupportedVersion {
            found: *version,
            supported: FRAME_VERSION,
        });
    }
    let (msg, rest) = postcard::take_from_bytes(body).map_err(|e| NetError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(NetError::Malformed(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Writes `msg` as one frame. Does not finish the stream.
pub async fn write_frame<T: Serialize>(send: &mut quinn::SendStream, msg: &T) -> Result<()> {
    let frame = encode_frame(msg)?;
    send.write_all(&frame).await?;
    Ok(())
}

/// Reads one frame whose length is at most `cap`.
///
/// Returns `Ok(None)` if the stream ends cleanly before the frame starts, and
/// [`NetError::Truncated`] if it ends inside one. A peer that resets the stream yields
/// [`NetError::Rejected`] with its code.
pub async fn read_frame<T: DeserializeOwned>(recv: &mut quinn::RecvStream, cap: usize) -> Result<Option<T>> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut filled = 0;
    while filled < LEN_PREFIX {
        match recv.read(&mut prefix[filled..]).await? {
            Some(n) => filled += n,
            None if filled == 0 => return Ok(None),
            None => return Err(NetError::Truncated),
        }
    }
    let len = frame_len(prefix, cap)?;
    let mut bytes = vec![0u8; len];
    recv.read_exact(&mut bytes).await?;
    decode_frame_body(&bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        id: u64,
        name: String,
        data: Vec<u8>,
    }

    fn msg() -> Msg {
        Msg {
            id: 42,
            name: "lookup".into(),
            data: vec![1, 2, 3],
        }
    }

    /// Splits a whole frame as a reader would: prefix checked against `cap`, then the rest.
    fn decode<T: DeserializeOwned>(frame: &[u8], cap: usize) -> Result<T> {
        let prefix: [u8; 4] = frame[..4].try_into().unwrap();
        let len = frame_len(prefix, cap)?;
        assert_eq!(len, frame.len() - 4);
        decode_frame_body(&frame[4..])
    }

    #[test]
    fn round_trips_with_length_and_version() {
        let frame = encode_frame(&msg()).unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(frame[4], FRAME_VERSION);
        assert_eq!(decode::<Msg>(&frame, 1024).unwrap(), msg());
        // A unit message still has a non-empty frame (the version byte).
        let unit = encode_frame(&()).unwrap();
        assert_eq!(unit, [0, 0, 0, 1, FRAME_VERSION]);
        decode::<()>(&unit, 1).unwrap();
    }

    #[test]
    fn length_over_cap_is_refused_from_the_prefix_alone() {
        let frame = encode_frame(&msg()).unwrap();
        let len = frame.len() - 4;
        assert!(matches!(
            decode::<Msg>(&frame, len - 1),
            Err(NetError::FrameTooLarge { len: l, cap }) if l == len && cap == len - 1
        ));
        decode::<Msg>(&frame, len).unwrap();
        // 4 GiB announced: refused before anything is allocated or read.
        assert!(matches!(
            frame_len([0xff; 4], 1 << 20),
            Err(NetError::FrameTooLarge { len, cap: 1_048_576 }) if len == u32::MAX as usize
        ));
    }

    #[test]
    fn zero_length_wrong_version_and_garbage_are_clear_errors() {
        assert!(matches!(frame_len([0; 4], 1024), Err(NetError::Malformed(m)) if m.contains("zero-length")));
        assert!(matches!(
            decode_frame_body::<Msg>(&[]),
            Err(NetError::Malformed(_))
        ));

        let mut frame = encode_frame(&msg()).unwrap();
        frame[4] = 2;
        assert!(matches!(
            decode::<Msg>(&frame, 1024),
            Err(NetError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        ));

        // Body: a varint that never ends.
        assert!(matches!(
            decode_frame_body::<Msg>(&[FRAME_VERSION, 0xff, 0xff, 0xff]),
            Err(NetError::Malformed(_))
        ));
        // A string that is not UTF-8.
        assert!(matches!(
            decode_frame_body::<String>(&[FRAME_VERSION, 2, 0xc3, 0x28]),
            Err(NetError::Malformed(_))
        ));
        let mut long = encode_frame(&msg()).unwrap();
        long.push(0);
        assert!(matches!(
            decode_frame_body::<Msg>(&long[4..]),
            Err(NetError::Malformed(m)) if m.contains("1 trailing")
        ));
    }

    #[test]
    fn every_truncation_and_byte_flip_fails_cleanly() {
        let frame = encode_frame(&msg()).unwrap();
        let body = &frame[4..];
        for n in 0..body.len() {
            assert!(
                decode_frame_body::<Msg>(&body[..n]).is_err(),
                "prefix of {n} bytes decoded"
            );
        }
        for i in 0..body.len() {
            for bit in 0..8 {
                let mut flipped = body.to_vec();
                flipped[i] ^= 1 << bit;
                // Decoding either fails or yields some message; it never panics.
                let _ = decode_frame_body::<Msg>(&flipped);
            }
        }
    }

    #[test]
    fn unencodable_messages_are_an_encode_error() {
        struct UnknownLength;
        impl Serialize for UnknownLength {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq as _;
                s.serialize_seq(None)?.end()
            }
        }
        let err = encode_frame(&UnknownLength).unwrap_err();
        assert!(matches!(err, NetError::Encode(_)), "{err:?}");
        assert!(!err.is_retryable());
    }
}
