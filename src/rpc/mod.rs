//! muxrpc: the packet codec and the request / stream multiplexer.
//!
//! Owns everything between a plain byte stream (`AsyncRead` + `AsyncWrite`
//! halves, e.g. the box stream of `net`, or `tokio::io::duplex` in tests) and
//! the application's RPC methods. Must not import `net`, `store`, `feed` or
//! `replicate`: it knows nothing of Scuttlebutt beyond muxrpc itself, and
//! never parses or re-serialises a body it does not need (JSON bodies stay
//! raw bytes).
//!
//! - [`codec`](PacketCodec): the 9-byte header framing.
//! - [`start`]: runs one connection; gives an [`RpcHandle`] to make calls,
//!   a receiver of [`Incoming`] requests and the connection's task.
//! - [`DuplexSink`] / [`SourceStream`]: the two halves of every stream, on
//!   both sides (callers and responders).
//!
//! # Wire behaviour (as JavaScript muxrpc 6.7 / packet-stream 2.0)
//!
//! - Request numbers: we number our requests from 1 upwards (wrapping at
//!   `i32::MAX` to 1, skipping numbers in use); the peer answers with the
//!   number negated. Packets with request number 0 are ignored.
//! - Async: request `{"name":[..],"args":[..]}` (JSON, no flags); the answer
//!   is one packet with the same number negated: no end flag for a result
//!   (any body type), the end flag and a JSON error object for an error.
//! - Streams: request `{"name":[..],"args":[..],"type":"source"|"sink"|"duplex"}`
//!   with the stream flag; items in both directions carry the stream flag;
//!   each side ends its half with a stream+end packet whose JSON body is
//!   `true` or an error object. When the peer ends a stream we have not
//!   ended, we answer with our end (`true`) at once, as packet-stream does;
//!   from then on our sends on it fail with [`RpcError::StreamEnded`]. A
//!   request number is freed when both ends have been exchanged.
//! - Error objects we send are `{"name":"Error","message":<text>,"stack":""}`.
//! - Missing methods ([`Responder::not_found`]): the message is
//!   `no such method: <name parts joined by ".">`. For request 1 to
//!   `["whoami"]` (async) the exact bytes are the header
//!   `06 00 00 00 3e ff ff ff ff` (end + JSON, 62 bytes, request -1) and the
//!   body `{"name":"Error","message":"no such method: whoami","stack":""}`;
//!   for a stream (e.g. `["ebt","replicate"]` as request 1) the flags are
//!   `0e` (stream + end + JSON) and the body
//!   `{"name":"Error","message":"no such method: ebt.replicate","stack":""}`.
//!   (muxrpc 6.7.3 itself sends `{"message":"no duplex:ebt,replicate",
//!   "name":"Error","stack":<a stack trace>}`; callers only look at the end
//!   flag, so either form makes a JavaScript peer fall back.)
//! - Goodbye: 9 zero bytes, sent as our last packet whenever the connection
//!   ends (locally with [`RpcHandle::goodbye`], or after the peer's goodbye
//!   or end of input).
//!
//! # Bounds and backpressure
//!
//! - Bodies: at most [`Options::max_body`] (default 1 MiB) either way; a
//!   bigger incoming header ends the connection before the body is buffered.
//!   Empty bodies cannot be sent (the peer would read them as goodbye).
//! - Items the peer sends on a stream wait in a per-stream queue of
//!   [`Options::stream_queue`] items (default 256), and all such waiting
//!   items together hold at most [`Options::inbound_bytes`] (default
//!   16 MiB). When either is full the read loop waits for the application to
//!   take an item: the whole connection's input pauses (nothing is dropped),
//!   and TCP pushes back on the peer. So consume every stream you hold
//!   promptly, or drop its [`SourceStream`] (items for a dropped source are
//!   discarded). New requests wait likewise in a queue of
//!   [`Options::incoming_queue`] (default 64).
//! - Consequence: a task that drains a [`SourceStream`] must not wait on
//!   anything that needs this connection's input (an answer to a call on
//!   the same connection), and should not block on sends to the same peer
//!   while items keep coming: two bounded peers both doing that on a duplex
//!   (say, answering every received item with items) can deadlock, each
//!   waiting for the other to read. Hand received items to another task, or
//!   send from a separate task. (JavaScript peers buffer without bound, so
//!   they always read.)
//! - At most [`Options::max_incoming`] (default 1024) requests and streams
//!   opened by the peer are live at once (counted until our final packet for
//!   them has been written); beyond it the peer gets an error answer
//!   `too many concurrent requests`.
//! - Our outgoing packets share one queue, written by one task, so packets
//!   never interleave and per-stream order is kept. Sends wait while
//!   [`Options::send_queue`] packets (default 256) are waiting to be written.
//!   Ends sent by `Drop` skip that wait; they are bounded by the number of
//!   streams.
//! - The peer going away (end of input, goodbye, an I/O or protocol error)
//!   fails every pending call with [`RpcError::Closed`], ends every open
//!   [`SourceStream`] with `Err(RpcError::Closed)` and makes sends fail.
//!   Once the connection is closing, nothing waits on the peer for more
//!   than about twice [`Options::close_timeout`]. A peer that stays connected but silent
//!   is only detected with [`Options::idle_timeout`] (or keep-alive pings
//!   above this layer).

mod codec;
mod conn;
mod stream;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use codec::{Body, CodecError, DEFAULT_MAX_BODY, Frame, HEADER_LEN, Packet, PacketCodec};
pub use conn::{RpcHandle, start};
pub use stream::{AsyncResponder, DuplexSink, Incoming, Responder, SourceStream, StreamResponder};

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest body sent or accepted, in bytes.
    pub max_body: usize,
    /// Items buffered per incoming stream before the read loop waits.
    pub stream_queue: usize,
    /// Bytes of items buffered over all incoming streams before the read
    /// loop waits (at least `max_body`).
    pub inbound_bytes: usize,
    /// New requests buffered for the application before the read loop waits.
    pub incoming_queue: usize,
    /// Most requests and streams opened by the peer that may be live at once.
    pub max_incoming: usize,
    /// Outgoing packets queued before senders wait.
    pub send_queue: usize,
    /// How long a closing connection waits to flush its output and to hear
    /// the peer's goodbye.
    pub close_timeout: Duration,
    /// Close the connection when nothing arrives for this long (`None`:
    /// never).
    pub idle_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_body: DEFAULT_MAX_BODY,
            stream_queue: 256,
            inbound_bytes: 16 << 20,
            incoming_queue: 64,
            max_incoming: 1024,
            send_queue: 256,
            close_timeout: Duration::from_secs(5),
            idle_timeout: None,
        }
    }
}

/// The kind of a muxrpc request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One request, one answer (JavaScript's `sync` arrives as this too).
    Async,
    /// The responder sends items to the caller.
    Source,
    /// The caller sends items to the responder.
    Sink,
    /// Both send items.
    Duplex,
}

impl Kind {
    /// The `type` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Async => "async",
            Kind::Source => "source",
            Kind::Sink => "sink",
            Kind::Duplex => "duplex",
        }
    }
}

/// An error the peer sent: an async error answer or an error end of a
/// stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    /// The error object's `name` (`"Error"` if absent).
    pub name: String,
    /// The error object's `message` (for a non-object body: its text).
    pub message: String,
    /// The body exactly as received.
    pub body: Body,
}

impl RemoteError {
    /// Reads an error body: a JSON object with `name` and `message`, or
    /// anything else (kept whole).
    pub fn from_body(body: Body) -> RemoteError {
        #[derive(serde::Deserialize)]
        struct Obj {
            name: Option<String>,
            message: Option<String>,
        }
        let parsed = body.parse_json::<Obj>().ok();
        let text = || {
            body.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("<{} binary bytes>", body.len()))
        };
        let (name, message) = match parsed {
            Some(o) => (o.name, o.message),
            None => (None, None),
        };
        RemoteError {
            name: name.unwrap_or_else(|| "Error".to_owned()),
            message: message.unwrap_or_else(text),
            body,
        }
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// Everything that can go wrong with an RPC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The connection is closed or closing (by either side, or after an
    /// error; the connection task's result says which).
    #[error("connection closed")]
    Closed,
    /// The peer answered with an error or ended the stream with one.
    #[error("peer error: {0}")]
    Remote(RemoteError),
    /// The stream was already ended (by us, or by the peer, in which case we
    /// ended it too).
    #[error("stream already ended")]
    StreamEnded,
    /// Call arguments must be a JSON array.
    #[error("call arguments must be a JSON array")]
    ArgsNotArray,
    /// A body cannot be sent: empty or over the size limit.
    #[error("cannot send body: {0}")]
    Body(CodecError),
    /// Serialising a request failed.
    #[error("cannot serialise request: {0}")]
    Json(#[from] serde_json::Error),
    /// Nothing arrived for the idle timeout.
    #[error("no input for {0:?}")]
    Idle(Duration),
    /// The connection failed: bad bytes from the peer, or I/O.
    #[error("connection failed: {0}")]
    Codec(#[from] CodecError),
}

/// The JSON error object we send: `{"name":"Error","message":..,"stack":""}`.
pub(crate) fn error_body(message: &str) -> Body {
    #[derive(serde::Serialize)]
    struct ErrorObject<'a> {
        name: &'a str,
        message: &'a str,
        stack: &'a str,
    }
    let obj = ErrorObject {
        name: "Error",
        message,
        stack: "",
    };
    // Serialising three strings cannot fail; the fallback keeps this total.
    Body::json(&obj)
        .unwrap_or_else(|_| Body::json_raw(r#"{"name":"Error","message":"","stack":""}"#))
}

/// The message of the error answering a missing method.
pub(crate) fn not_found_message(method: &str) -> String {
    format!("no such method: {method}")
}
