//! The muxrpc packet codec: bytes on the wire <-> [`Frame`]s.
//!
//! Owns the 9-byte packet header, the body types and the body size limit, as
//! JavaScript `packet-stream-codec` 1.2 frames them:
//!
//! ```text
//! flags u8 | body length u32 BE | request number i32 BE | body
//! flags = 0b0000_SETT: S = stream, E = end/error, TT = body type
//!         (0 binary, 1 UTF-8 string, 2 JSON)
//! ```
//!
//! A header whose body length is 0 is the goodbye (the sender's last packet;
//! it is normally 9 zero bytes). `packet-stream-codec` reads *any*
//! zero-length header as goodbye, so a zero-length body cannot be sent and
//! the encoder refuses one ([`CodecError::EmptyBody`]).
//!
//! JSON bodies stay raw bytes (checked as UTF-8, never re-serialised):
//! Scuttlebutt messages inside them must keep their exact text.
//!
//! Pure: no I/O, no tasks. Must not import `net`, `store`, `feed` or
//! `replicate`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder};

/// Length of a packet header.
pub const HEADER_LEN: usize = 9;

/// Default largest body accepted or sent: 1 MiB.
///
/// A classic Scuttlebutt message is at most 8 KiB of JSON and `blobs.get`
/// chunks are 64 KiB, so 1 MiB leaves a wide margin while bounding what one
/// peer can make us buffer for a single packet.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

const FLAG_STREAM: u8 = 0b1000;
const FLAG_END: u8 = 0b0100;
const TYPE_MASK: u8 = 0b0011;
const KNOWN_FLAGS: u8 = FLAG_STREAM | FLAG_END | TYPE_MASK;
const TYPE_BINARY: u8 = 0;
const TYPE_TEXT: u8 = 1;
const TYPE_JSON: u8 = 2;

/// A packet body with its wire type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Type 0: raw bytes (a JavaScript `Buffer`).
    Binary(Bytes),
    /// Type 1: a UTF-8 string (checked when decoded).
    Text(Bytes),
    /// Type 2: JSON text, exactly as received or given (checked as UTF-8
    /// when decoded, not parsed).
    Json(Bytes),
}

impl Body {
    /// A JSON body serialised from `value`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Body, serde_json::Error> {
        Ok(Body::Json(Bytes::from(serde_json::to_vec(value)?)))
    }

    /// A JSON body from text the caller vouches is JSON (sent byte for byte).
    pub fn json_raw(text: impl Into<Bytes>) -> Body {
        Body::Json(text.into())
    }

    /// A UTF-8 string body.
    pub fn text(text: impl Into<String>) -> Body {
        Body::Text(Bytes::from(text.into()))
    }

    /// A binary body.
    pub fn binary(bytes: impl Into<Bytes>) -> Body {
        Body::Binary(bytes.into())
    }

    /// The JSON body `true`, which ends a stream cleanly.
    pub fn json_true() -> Body {
        Body::Json(Bytes::from_static(b"true"))
    }

    /// The body bytes, whatever the type.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Body::Binary(b) | Body::Text(b) | Body::Json(b) => b,
        }
    }

    /// The body bytes, whatever the type.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Body::Binary(b) | Body::Text(b) | Body::Json(b) => b,
        }
    }

    /// Body length in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether the body is empty (such a body cannot be sent).
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The text of a string or JSON body, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Body::Text(b) | Body::Json(b) => std::str::from_utf8(b).ok(),
            Body::Binary(_) => None,
        }
    }

    /// Parses a JSON body; any other body type is an error.
    pub fn parse_json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self {
            Body::Json(b) => serde_json::from_slice(b),
            _ => Err(serde::de::Error::custom("not a JSON body")),
        }
    }

    /// Whether this is the JSON value `true` (the clean end of a stream).
    pub fn is_true(&self) -> bool {
        matches!(self, Body::Json(b) if b.trim_ascii() == b"true")
    }

    fn type_bits(&self) -> u8 {
        match self {
            Body::Binary(_) => TYPE_BINARY,
            Body::Text(_) => TYPE_TEXT,
            Body::Json(_) => TYPE_JSON,
        }
    }
}

/// One muxrpc packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Part of a stream (source, sink or duplex), not an async request or
    /// response.
    pub stream: bool,
    /// End of a stream, or an error response to an async request.
    pub end: bool,
    /// The body.
    pub body: Body,
    /// Request number: positive from the side that made the request,
    /// negative (the same number negated) from the side answering it.
    pub req: i32,
}

/// What the codec reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A packet.
    Packet(Packet),
    /// The goodbye: the sender closes the connection after it.
    Goodbye,
}

/// Everything that can be wrong with the bytes on the wire.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The two body-type bits were 3, which no body type uses.
    #[error("unknown body type 3 in header flags {flags:#04x}")]
    BadBodyType {
        /// The flags byte.
        flags: u8,
    },
    /// Bits above the stream, end and type bits were set.
    #[error("unknown bits in header flags {flags:#04x}")]
    UnknownFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A body longer than the limit (refused before buffering it).
    #[error("body of {len} bytes exceeds the {max} byte limit")]
    BodyTooLarge {
        /// The body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string or JSON body that is not UTF-8.
    #[error("body of packet {req} is not valid UTF-8")]
    InvalidUtf8 {
        /// The packet's request number.
        req: i32,
    },
    /// An attempt to send an empty body, which the peer would read as goodbye.
    #[error("empty body (a zero-length body reads as goodbye)")]
    EmptyBody,
    /// The input ended inside a header or body.
    #[error("connection ended inside a packet ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the incomplete packet that had arrived.
        buffered: usize,
    },
    /// The underlying reader or writer failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The muxrpc codec, for `tokio_util::codec::{FramedRead, FramedWrite}`.
#[derive(Clone, Copy, Debug)]
pub struct PacketCodec {
    max_body: usize,
}

impl PacketCodec {
    /// A codec refusing bodies longer than `max_body` bytes in both
    /// directions (at most `u32::MAX`).
    pub fn new(max_body: usize) -> PacketCodec {
        PacketCodec {
            max_body: max_body.min(u32::MAX as usize),
        }
    }

    /// The body size limit.
    pub fn max_body(&self) -> usize {
        self.max_body
    }
}

impl Default for PacketCodec {
    fn default() -> PacketCodec {
        PacketCodec::new(DEFAULT_MAX_BODY)
    }
}

impl Decoder for PacketCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let Some(header) = src.first_chunk::<HEADER_LEN>() else {
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        };
        let flags = header[0];
        let [_, l0, l1, l2, l3, r0, r1, r2, r3] = *header;
        let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
        let req = i32::from_be_bytes([r0, r1, r2, r3]);
        if len == 0 {
            src.advance(HEADER_LEN);
            return Ok(Some(Frame::Goodbye));
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(CodecError::UnknownFlags { flags });
        }
        if flags & TYPE_MASK == 3 {
            return Err(CodecError::BadBodyType { flags });
        }
        if len > self.max_body {
            return Err(CodecError::BodyTooLarge {
                len,
                max: self.max_body,
            });
        }
        let total = HEADER_LEN + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        // A copy, not a view: a view would keep the whole read buffer it
        // came from alive for as long as the body waits in a queue.
        let bytes = Bytes::copy_from_slice(&src[..len]);
        src.advance(len);
        let body = match flags & TYPE_MASK {
            TYPE_BINARY => Body::Binary(bytes),
            ty => {
                if simdutf8::basic::from_utf8(&bytes).is_err() {
                    return Err(CodecError::InvalidUtf8 { req });
                }
                if ty == TYPE_TEXT {
                    Body::Text(bytes)
                } else {
                    Body::Json(bytes)
                }
            }
        };
        Ok(Some(Frame::Packet(Packet {
            stream: flags & FLAG_STREAM != 0,
            end: flags & FLAG_END != 0,
            body,
            req,
        })))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for PacketCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let packet = match frame {
            Frame::Goodbye => {
                dst.put_bytes(0, HEADER_LEN);
                return Ok(());
            }
            Frame::Packet(packet) => packet,
        };
        let body = packet.body.bytes();
        if body.is_empty() {
            return Err(CodecError::EmptyBody);
        }
        if body.len() > self.max_body {
            return Err(CodecError::BodyTooLarge {
                len: body.len(),
                max: self.max_body,
            });
        }
        let flags = if packet.stream { FLAG_STREAM } else { 0 }
            | if packet.end { FLAG_END } else { 0 }
            | packet.body.type_bits();
        dst.reserve(HEADER_LEN + body.len());
        dst.put_u8(flags);
        // Cannot truncate: max_body <= u32::MAX.
        dst.put_u32(body.len() as u32);
        dst.put_i32(packet.req);
        dst.put_slice(body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut PacketCodec, bytes: &[u8]) -> Result<Vec<Frame>, CodecError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = codec.decode_eof(&mut buf)? {
            out.push(frame);
        }
        Ok(out)
    }

    #[test]
    fn round_trip_every_body_type_and_goodbye() {
        let mut codec = PacketCodec::default();
        let frames = vec![
            Frame::Packet(Packet {
                stream: false,
                end: false,
                body: Body::json_raw(r#"{"name":["whoami"],"args":[]}"#),
                req: 1,
            }),
            Frame::Packet(Packet {
                stream: true,
                end: false,
                body: Body::text("hé"),
                req: -7,
            }),
            Frame::Packet(Packet {
                stream: true,
                end: true,
                body: Body::binary(vec![0u8, 255, 3]),
                req: i32::MAX,
            }),
            Frame::Packet(Packet {
                stream: false,
                end: true,
                body: Body::json_true(),
                req: i32::MIN,
            }),
            Frame::Goodbye,
        ];
        let mut buf = BytesMut::new();
        for f in frames.clone() {
            codec.encode(f, &mut buf).unwrap();
        }
        assert_eq!(decode_all(&mut codec, &buf).unwrap(), frames);
    }

    #[test]
    fn decodes_a_request_as_javascript_frames_it() {
        // packet-stream-codec's encodePair for
        // {req: 1, stream: true, end: false, value: {name, type, args}}.
        let body = br#"{"name":["createHistoryStream"],"type":"source","args":[{"id":"@FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=.ed25519","seq":1}]}"#;
        let mut wire = vec![0b1010u8];
        wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
        wire.extend_from_slice(&[0, 0, 0, 1]);
        wire.extend_from_slice(body);
        // A JavaScript async error response to request 2: end, JSON, req -2.
        let err = br#"{"message":"no async:nope","name":"Error","stack":"Error: no async:nope"}"#;
        wire.push(0b0110);
        wire.extend_from_slice(&(err.len() as u32).to_be_bytes());
        wire.extend_from_slice(&[0xff, 0xff, 0xff, 0xfe]);
        wire.extend_from_slice(err);
        wire.extend_from_slice(&[0; 9]);

        let frames = decode_all(&mut PacketCodec::default(), &wire).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Packet(Packet {
                    stream: true,
                    end: false,
                    body: Body::Json(Bytes::from_static(body)),
                    req: 1,
                }),
                Frame::Packet(Packet {
                    stream: false,
                    end: true,
                    body: Body::Json(Bytes::from_static(err)),
                    req: -2,
                }),
                Frame::Goodbye,
            ]
        );
        // And encoding the decoded packets gives the same bytes back.
        let mut again = BytesMut::new();
        for f in frames {
            PacketCodec::default().encode(f, &mut again).unwrap();
        }
        assert_eq!(&again[..], &wire[..]);
    }

    #[test]
    fn partial_input_waits_for_more() {
        let mut codec = PacketCodec::default();
        let mut buf = BytesMut::new();
        codec
            .encode(
                Frame::Packet(Packet {
                    stream: true,
                    end: false,
                    body: Body::json_raw("[1,2,3]"),
                    req: 3,
                }),
                &mut buf,
            )
            .unwrap();
        let whole = buf.clone();
        let mut partial = BytesMut::new();
        for (i, b) in whole.iter().enumerate() {
            assert_eq!(codec.decode(&mut partial).unwrap(), None, "at byte {i}");
            partial.put_u8(*b);
        }
        assert!(matches!(
            codec.decode(&mut partial).unwrap(),
            Some(Frame::Packet(_))
        ));
        assert!(partial.is_empty());
    }

    #[test]
    fn malformed_headers_are_errors() {
        let mut codec = PacketCodec::new(1000);
        let bad_type = [0b0011u8, 0, 0, 0, 1, 0, 0, 0, 1, b'x'];
        assert!(matches!(
            decode_all(&mut codec, &bad_type),
            Err(CodecError::BadBodyType { flags: 3 })
        ));
        let high_bits = [0x12u8, 0, 0, 0, 1, 0, 0, 0, 1, b'x'];
        assert!(matches!(
            decode_all(&mut codec, &high_bits),
            Err(CodecError::UnknownFlags { flags: 0x12 })
        ));
        let not_utf8 = [0b0001u8, 0, 0, 0, 2, 0, 0, 0, 1, 0xc3, 0x28];
        assert!(matches!(
            decode_all(&mut codec, &not_utf8),
            Err(CodecError::InvalidUtf8 { req: 1 })
        ));
        assert!(matches!(
            decode_all(&mut codec, &[0b1010, 0, 0]),
            Err(CodecError::Truncated { buffered: 3 })
        ));
        assert!(matches!(
            decode_all(&mut codec, &[0b1010, 0, 0, 0, 5, 0, 0, 0, 1, b'[']),
            Err(CodecError::Truncated { buffered: 10 })
        ));
    }

    #[test]
    fn oversize_body_is_refused_before_buffering() {
        let mut codec = PacketCodec::new(1000);
        let mut buf = BytesMut::from(&[0b0010u8, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1][..]);
        let before = buf.capacity();
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::BodyTooLarge {
                len: 0xffff_ffff,
                max: 1000
            })
        ));
        assert_eq!(buf.capacity(), before);
        // The limit also holds when sending, and empty bodies are refused.
        let mut out = BytesMut::new();
        let big = Frame::Packet(Packet {
            stream: false,
            end: false,
            body: Body::binary(vec![1u8; 1001]),
            req: 1,
        });
        assert!(matches!(
            codec.encode(big, &mut out),
            Err(CodecError::BodyTooLarge { len: 1001, .. })
        ));
        let empty = Frame::Packet(Packet {
            stream: false,
            end: false,
            body: Body::text(""),
            req: 1,
        });
        assert!(matches!(
            codec.encode(empty, &mut out),
            Err(CodecError::EmptyBody)
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn bodies_do_not_hold_on_to_the_read_buffer() {
        // A small body waiting in a stream queue must not keep alive the
        // whole buffer it was read into.
        let mut codec = PacketCodec::default();
        let mut buf = BytesMut::new();
        for req in 1..=2 {
            let p = Packet {
                stream: true,
                end: false,
                body: Body::json_raw("[1]"),
                req,
            };
            codec.encode(Frame::Packet(p), &mut buf).unwrap();
        }
        let Some(Frame::Packet(p)) = codec.decode(&mut buf).unwrap() else {
            panic!("a packet");
        };
        assert_eq!(p.body, Body::json_raw("[1]"));
        assert!(p.body.bytes().is_unique(), "the body is its own allocation");
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Frame::Packet(_)))));
    }

    #[test]
    fn any_zero_length_header_is_goodbye() {
        // As packet-stream-codec reads it.
        let frames = decode_all(
            &mut PacketCodec::default(),
            &[0b1110, 0, 0, 0, 0, 0, 0, 0, 9],
        );
        assert_eq!(frames.unwrap(), vec![Frame::Goodbye]);
    }

    #[test]
    fn body_helpers() {
        assert!(Body::json_raw(" true ").is_true());
        assert!(!Body::text("true").is_true());
        assert!(!Body::json_raw("false").is_true());
        let v: Vec<u32> = Body::json(&[1, 2]).unwrap().parse_json().unwrap();
        assert_eq!(v, vec![1, 2]);
        assert!(Body::text("[1]").parse_json::<Vec<u32>>().is_err());
        assert_eq!(Body::text("hi").as_str(), Some("hi"));
        assert_eq!(Body::binary(&b"hi"[..]).as_str(), None);
    }
}
