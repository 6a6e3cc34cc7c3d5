//! The application's ends of requests and streams: [`Incoming`] requests
//! with their [`Responder`]s, and the two halves of every stream,
//! [`DuplexSink`] (our items and our end) and [`SourceStream`] (the peer's
//! items and its end).
//!
//! Owns the "never leave the peer hanging" rule: a responder or sink dropped
//! without an answer or end sends an error end (a source aborted by dropping
//! it sends `true`). State and packets go through `conn`.
//!
//! Must not import `net`, `store`, `feed` or `replicate`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::codec::Body;
use super::conn::{Item, Shared, Slot};
use super::{Kind, RemoteError, RpcError, error_body, not_found_message};

/// What a [`DuplexSink`] sends if dropped before it was ended.
#[derive(Clone, Copy, Debug)]
pub(super) enum DropEnd {
    /// `true`: the abort of a source we called.
    Clean,
    /// An error object naming the method.
    Error,
}

/// Our sending half of a stream (a call we made, or a request we answer):
/// items, then one end.
///
/// Dropping it unended sends an error end (`stream dropped without end:
/// <method>`), except for the hidden sink of
/// [`RpcHandle::call_source`](super::RpcHandle::call_source), which sends
/// `true`.
pub struct DuplexSink {
    conn: Arc<Shared>,
    /// The request number as the peer's packets carry it; ours is `-key`.
    key: i32,
    method: Arc<str>,
    /// `end`/`error` was called: nothing to do on drop.
    done: bool,
    drop_end: DropEnd,
}

impl DuplexSink {
    pub(super) fn new(conn: Arc<Shared>, key: i32, method: Arc<str>, drop_end: DropEnd) -> Self {
        DuplexSink {
            conn,
            key,
            method,
            done: false,
            drop_end,
        }
    }

    /// Sends one item. Waits while the connection's send queue is full.
    /// Fails with [`RpcError::StreamEnded`] once either side has ended the
    /// stream, [`RpcError::Closed`] once the connection is closing,
    /// [`RpcError::Body`] for an empty or oversize body.
    pub async fn send(&self, body: Body) -> Result<(), RpcError> {
        self.send_all(vec![body]).await
    }

    /// Sends items in order, failing as [`DuplexSink::send`] does, but
    /// waiting for room in the send queue (and taking the connection's
    /// lock) once per group of items, not once per item. On an error, the
    /// items before the failing group were sent; an empty or oversize body
    /// fails the call before any is sent.
    pub async fn send_all(&self, bodies: Vec<Body>) -> Result<(), RpcError> {
        for body in &bodies {
            self.conn.check_body(body)?;
        }
        let group = self.conn.send_group();
        let mut rest = bodies.into_iter().peekable();
        while rest.peek().is_some() {
            let items: Vec<Body> = rest.by_ref().take(group).collect();
            if self.conn.is_closing() {
                return Err(RpcError::Closed);
            }
            if !self.conn.stream_open(self.key) {
                return Err(RpcError::StreamEnded);
            }
            let permit = self.conn.send_permits(items.len()).await?;
            self.conn.stream_items(self.key, items, permit)?;
        }
        Ok(())
    }

    /// Ends our side cleanly (`true`). A no-op if the stream already ended.
    pub async fn end(mut self) -> Result<(), RpcError> {
        self.finish(Body::json_true()).await
    }

    /// Ends our side with the error object
    /// `{"name":"Error","message":<message>,"stack":""}`. A no-op if the
    /// stream already ended.
    pub async fn error(mut self, message: &str) -> Result<(), RpcError> {
        self.finish(error_body(message)).await
    }

    async fn finish(&mut self, body: Body) -> Result<(), RpcError> {
        let permit = self.conn.send_permit().await?;
        self.done = true;
        self.conn.stream_end(self.key, body, Some(permit))
    }

    /// Whether we can still send: neither side has ended, not closing.
    pub fn is_open(&self) -> bool {
        self.conn.stream_open(self.key)
    }

    /// The method, its name parts joined by `.`.
    pub fn method(&self) -> &str {
        &self.method
    }
}

impl Drop for DuplexSink {
    fn drop(&mut self) {
        if self.done || !self.conn.stream_open(self.key) {
            return;
        }
        let body = match self.drop_end {
            DropEnd::Clean => Body::json_true(),
            DropEnd::Error => error_body(&format!("stream dropped without end: {}", self.method)),
        };
        let _ = self.conn.stream_end(self.key, body, None);
    }
}

impl std::fmt::Debug for DuplexSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuplexSink")
            .field("req", &-self.key)
            .field("method", &self.method)
            .finish()
    }
}

/// The peer's items on a stream, as a [`futures::Stream`] of
/// `Result<Body, RpcError>`: `Ok` items in order, then `None` after the
/// peer's clean end (`true`); or, after the items that came before it, one
/// `Err(RpcError::Remote)` for an error end or `Err(RpcError::Closed)` if the
/// connection closed first, then `None`.
///
/// For kinds where the peer sends no items (a source we serve, a sink we
/// call) it yields only that ending. Dropping it discards further items
/// (the read loop never waits on a dropped source).
pub struct SourceStream {
    items: Option<mpsc::Receiver<Item>>,
    end: Option<oneshot::Receiver<Result<(), RemoteError>>>,
    /// The hidden sink of a source we called: dropped with us, which ends
    /// the stream on our side if the peer has not.
    abort: Option<DuplexSink>,
}

impl SourceStream {
    pub(super) fn new(
        items: Option<mpsc::Receiver<Item>>,
        end: oneshot::Receiver<Result<(), RemoteError>>,
        abort: Option<DuplexSink>,
    ) -> Self {
        SourceStream {
            items,
            end: Some(end),
            abort,
        }
    }

    pub(super) fn set_abort(&mut self, sink: DuplexSink) {
        self.abort = Some(sink);
    }

    /// The next item or ending, as `StreamExt::next` gives it.
    pub async fn recv(&mut self) -> Option<Result<Body, RpcError>> {
        futures::StreamExt::next(self).await
    }
}

impl Stream for SourceStream {
    type Item = Result<Body, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(items) = this.items.as_mut() {
            match items.poll_recv(cx) {
                // Dropping the permit returns the item's bytes to the budget.
                Poll::Ready(Some((body, _permit))) => return Poll::Ready(Some(Ok(body))),
                // Every item is in: the ending is known (or the connection
                // closed).
                Poll::Ready(None) => this.items = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        let Some(end) = this.end.as_mut() else {
            return Poll::Ready(None);
        };
        let ending = match Pin::new(end).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(ending) => ending,
        };
        this.end = None;
        this.abort = None;
        Poll::Ready(match ending {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(RpcError::Remote(e))),
            Err(_) => Some(Err(RpcError::Closed)),
        })
    }
}

impl std::fmt::Debug for SourceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceStream")
            .field("ended", &self.end.is_none())
            .finish()
    }
}

/// A request from the peer.
#[derive(Debug)]
pub struct Incoming {
    /// The method's name parts, e.g. `["ebt", "replicate"]`.
    pub name: Vec<String>,
    /// The request's kind.
    pub kind: Kind,
    /// The `args` array.
    pub args: Value,
    /// The whole request body, exactly as received (for exact argument text).
    pub body: Bytes,
    /// How to answer.
    pub responder: Responder,
}

impl Incoming {
    /// Whether the method is `name`.
    pub fn is(&self, name: &[&str]) -> bool {
        self.name.len() == name.len() && self.name.iter().zip(name).all(|(a, b)| a == b)
    }

    /// The method's name parts joined by `.`.
    pub fn method(&self) -> String {
        self.name.join(".")
    }

    /// Answers "no such method" ([`Responder::not_found`]).
    pub async fn not_found(self) -> Result<(), RpcError> {
        self.responder.not_found().await
    }
}

/// How to answer a request: by kind.
#[derive(Debug)]
pub enum Responder {
    /// An async request: one answer.
    Async(AsyncResponder),
    /// A source, sink or duplex request.
    Stream(StreamResponder),
}

impl Responder {
    /// The request's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Responder::Async(_) => Kind::Async,
            Responder::Stream(s) => s.kind,
        }
    }

    /// The method, its name parts joined by `.`.
    pub fn method(&self) -> &str {
        match self {
            Responder::Async(a) => a.method(),
            Responder::Stream(s) => s.method(),
        }
    }

    /// Answers with the error JavaScript callers expect for a missing
    /// method: `{"name":"Error","message":"no such method: <method>","stack":""}`
    /// with the end flag (an error answer for async, an error end for
    /// streams).
    pub async fn not_found(self) -> Result<(), RpcError> {
        match self {
            Responder::Async(a) => a.not_found().await,
            Responder::Stream(s) => s.not_found().await,
        }
    }

    /// Answers with an error object carrying `message`.
    pub async fn error(self, message: &str) -> Result<(), RpcError> {
        match self {
            Responder::Async(a) => a.err(message).await,
            Responder::Stream(s) => s.error(message).await,
        }
    }
}

/// Answers one async request, once. Dropped unanswered, it answers with the
/// error `request dropped without an answer: <method>`.
pub struct AsyncResponder {
    conn: Arc<Shared>,
    /// The peer's request number; we answer on `-key`.
    key: i32,
    method: String,
    slot: Option<Slot>,
    answered: bool,
}

impl AsyncResponder {
    pub(super) fn new(conn: Arc<Shared>, key: i32, method: String, slot: Slot) -> Self {
        AsyncResponder {
            conn,
            key,
            method,
            slot: Some(slot),
            answered: false,
        }
    }

    /// The method, its name parts joined by `.`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Answers with `body` (any type). If the body cannot be sent (empty,
    /// oversize) the error is returned and the peer gets an error answer.
    pub async fn ok(mut self, body: Body) -> Result<(), RpcError> {
        self.answer(body, false).await
    }

    /// Answers with the error object `{"name":"Error","message":<message>,"stack":""}`.
    pub async fn err(mut self, message: &str) -> Result<(), RpcError> {
        self.answer(error_body(message), true).await
    }

    /// Answers "no such method" (see [`Responder::not_found`]).
    pub async fn not_found(self) -> Result<(), RpcError> {
        let message = not_found_message(&self.method);
        self.err(&message).await
    }

    async fn answer(&mut self, body: Body, is_error: bool) -> Result<(), RpcError> {
        self.conn.check_body(&body)?;
        let permit = self.conn.send_permit().await?;
        self.answered = true;
        let slot = self.slot.take();
        self.conn
            .respond(self.key, body, is_error, Some(permit), slot)
    }
}

impl Drop for AsyncResponder {
    fn drop(&mut self) {
        if self.answered || self.conn.is_closing() {
            return;
        }
        let body = error_body(&format!(
            "request dropped without an answer: {}",
            self.method
        ));
        let slot = self.slot.take();
        let _ = self.conn.respond(self.key, body, true, None, slot);
    }
}

impl std::fmt::Debug for AsyncResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResponder")
            .field("req", &self.key)
            .field("method", &self.method)
            .finish()
    }
}

/// Answers a source, sink or duplex request: our items and end through
/// [`send`](Self::send) / [`end`](Self::end) / [`error`](Self::error), the
/// peer's items (sink, duplex) or just its end (source) through
/// [`source`](Self::source). Split it with [`into_parts`](Self::into_parts)
/// to use both halves from different tasks. Dropped unended, it sends an
/// error end.
#[derive(Debug)]
pub struct StreamResponder {
    kind: Kind,
    method: Arc<str>,
    sink: DuplexSink,
    source: SourceStream,
}

impl StreamResponder {
    pub(super) fn new(
        kind: Kind,
        method: Arc<str>,
        sink: DuplexSink,
        source: SourceStream,
    ) -> Self {
        StreamResponder {
            kind,
            method,
            sink,
            source,
        }
    }

    /// The request's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The method, its name parts joined by `.`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Sends one item ([`DuplexSink::send`]).
    pub async fn send(&self, body: Body) -> Result<(), RpcError> {
        self.sink.send(body).await
    }

    /// Ends our side cleanly (`true`).
    pub async fn end(self) -> Result<(), RpcError> {
        self.sink.end().await
    }

    /// Ends our side with an error object carrying `message`.
    pub async fn error(self, message: &str) -> Result<(), RpcError> {
        self.sink.error(message).await
    }

    /// Ends our side with `no such method: <method>` (see
    /// [`Responder::not_found`]).
    pub async fn not_found(self) -> Result<(), RpcError> {
        let message = not_found_message(&self.method);
        self.sink.error(&message).await
    }

    /// Whether we can still send.
    pub fn is_open(&self) -> bool {
        self.sink.is_open()
    }

    /// The peer's items and end.
    pub fn source(&mut self) -> &mut SourceStream {
        &mut self.source
    }

    /// The two halves.
    pub fn into_parts(self) -> (DuplexSink, SourceStream) {
        (self.sink, self.source)
    }
}
