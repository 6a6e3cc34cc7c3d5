//! One muxrpc connection: shared state, the read loop, the write loop and
//! [`RpcHandle`] for our own calls.
//!
//! Owns the request-number table and the close sequence. The read loop
//! (run by the connection task) dispatches each packet; the write loop (its
//! own task) writes one FIFO of packets, so packets never interleave. All
//! state changes that emit a packet (ends above all) happen under one mutex
//! together with the enqueue, so per-stream order on the wire is the order
//! of the state changes. The mutex is never held across an `.await`.
//!
//! Must not import `net`, `store`, `feed` or `replicate`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug};

use super::codec::{Body, CodecError, Frame, Packet, PacketCodec};
use super::stream::{
    AsyncResponder, DropEnd, DuplexSink, Incoming, Responder, SourceStream, StreamResponder,
};
use super::{Kind, Options, RemoteError, RpcError, error_body};

/// Error answers the read loop may have queued at once for requests over the
/// concurrency limit (each such answer waits for one of these).
const REJECT_PERMITS: usize = 64;

/// State shared by the connection task, the writer and every handle.
pub(super) struct Shared {
    state: Mutex<State>,
    /// The writer's FIFO. Unbounded as a channel; bounded by the permits and
    /// slots its items carry.
    queue: mpsc::UnboundedSender<Queued>,
    /// Bounds packets queued by the application's sends.
    send_permits: Arc<Semaphore>,
    /// Bounds error answers the read loop queues for rejected requests.
    reject_permits: Arc<Semaphore>,
    /// Bytes of received items waiting in stream queues, over all streams:
    /// each queued item holds its length in permits until taken.
    inbound: Arc<Semaphore>,
    /// Peer-opened requests and streams alive (see [`Slot`]).
    incoming_live: Arc<AtomicUsize>,
    /// Cancelled when the connection starts closing: no new traffic.
    closing: CancellationToken,
    /// Cancelled when the connection task has finished.
    finished: CancellationToken,
    opts: Options,
}

struct State {
    closed: bool,
    next_req: i32,
    /// Keyed by the request number as the peer's packets carry it: negative
    /// for our calls and streams, positive for the peer's streams.
    entries: HashMap<i32, Entry, foldhash::fast::RandomState>,
}

enum Entry {
    /// Our async call, awaiting its answer.
    Call(oneshot::Sender<Result<Body, RpcError>>),
    /// A stream (ours or the peer's) the peer has not ended yet.
    Stream(StreamEntry),
}

struct StreamEntry {
    /// Where the peer's items go; `None` for kinds that receive no items or
    /// once the application dropped its [`SourceStream`].
    items: Option<mpsc::Sender<Item>>,
    /// Told how the peer ended the stream; dropped unsent on close.
    end: Option<oneshot::Sender<Result<(), RemoteError>>>,
    /// We have sent our end.
    we_ended: bool,
    /// For peer-opened streams: released once our end is written.
    slot: Option<Slot>,
}

/// A received stream item and its share of the inbound byte budget.
pub(super) type Item = (Body, Option<OwnedSemaphorePermit>);

/// One live peer-opened request or stream, counted against
/// [`Options::max_incoming`] until dropped, which happens after the final
/// packet we send for it is written (the slot rides in the queued packet).
pub(super) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

enum Queued {
    Packet {
        packet: Packet,
        _permit: Option<OwnedSemaphorePermit>,
        _slot: Option<Slot>,
    },
    /// Items of one stream, in order, holding one permit per packet.
    Packets {
        packets: Vec<Packet>,
        _permit: OwnedSemaphorePermit,
    },
    Goodbye,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Never panics: a poisoned lock (impossible without a panic inside
        // it) still holds consistent data for our purposes.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, packet: Packet, permit: Option<OwnedSemaphorePermit>, slot: Option<Slot>) {
        // Fails only when the writer is gone, i.e. the connection is dead.
        let _ = self.queue.send(Queued::Packet {
            packet,
            _permit: permit,
            _slot: slot,
        });
    }

    pub(super) fn check_body(&self, body: &Body) -> Result<(), RpcError> {
        if body.is_empty() {
            return Err(RpcError::Body(CodecError::EmptyBody));
        }
        if body.len() > self.opts.max_body {
            return Err(RpcError::Body(CodecError::BodyTooLarge {
                len: body.len(),
                max: self.opts.max_body,
            }));
        }
        Ok(())
    }

    pub(super) async fn send_permit(&self) -> Result<OwnedSemaphorePermit, RpcError> {
        self.send_permits(1).await
    }

    /// Room for `n` packets at once. `n` is at most [`Shared::send_group`],
    /// never more than the queue holds (a wait for more would never end).
    pub(super) async fn send_permits(&self, n: usize) -> Result<OwnedSemaphorePermit, RpcError> {
        debug_assert!((1..=self.send_group()).contains(&n), "a group of {n}");
        let n = u32::try_from(n).expect("a group fits in u32");
        self.send_permits
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| RpcError::Closed)
    }

    /// Most packets one [`Shared::stream_items`] queues: a sixteenth of
    /// the send queue (at least one), so a group never waits for the whole
    /// queue to drain.
    pub(super) fn send_group(&self) -> usize {
        (self.opts.send_queue / 16).max(1)
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Sends items on stream `key`, in order, if neither side has ended
    /// it: `permit` holds room for every one of them.
    pub(super) fn stream_items(
        &self,
        key: i32,
        bodies: Vec<Body>,
        permit: OwnedSemaphorePermit,
    ) -> Result<(), RpcError> {
        let st = self.lock();
        if st.closed {
            return Err(RpcError::Closed);
        }
        match st.entries.get(&key) {
            Some(Entry::Stream(e)) if !e.we_ended => {
                let packets = bodies
                    .into_iter()
                    .map(|body| Packet {
                        stream: true,
                        end: false,
                        body,
                        req: -key,
                    })
                    .collect();
                // Fails only when the writer is gone (the connection is dead).
                let _ = self.queue.send(Queued::Packets {
                    packets,
                    _permit: permit,
                });
                Ok(())
            }
            _ => Err(RpcError::StreamEnded),
        }
    }

    /// Sends our end of stream `key` (`true` or an error object); nothing if
    /// it was already ended. `permit` is `None` only from `Drop`.
    pub(super) fn stream_end(
        &self,
        key: i32,
        body: Body,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(), RpcError> {
        let mut st = self.lock();
        if st.closed {
            return Err(RpcError::Closed);
        }
        if let Some(Entry::Stream(e)) = st.entries.get_mut(&key)
            && !e.we_ended
        {
            e.we_ended = true;
            self.push(
                Packet {
                    stream: true,
                    end: true,
                    body,
                    req: -key,
                },
                permit,
                None,
            );
        }
        Ok(())
    }

    /// Whether stream `key` is still open for our sends.
    pub(super) fn stream_open(&self, key: i32) -> bool {
        let st = self.lock();
        !st.closed && matches!(st.entries.get(&key), Some(Entry::Stream(e)) if !e.we_ended)
    }

    /// Answers the peer's async request `key`.
    pub(super) fn respond(
        &self,
        key: i32,
        body: Body,
        is_error: bool,
        permit: Option<OwnedSemaphorePermit>,
        slot: Option<Slot>,
    ) -> Result<(), RpcError> {
        let st = self.lock();
        if st.closed {
            return Err(RpcError::Closed);
        }
        self.push(
            Packet {
                stream: false,
                end: is_error,
                body,
                req: -key,
            },
            permit,
            slot,
        );
        Ok(())
    }

    /// Starts closing: no new traffic, our goodbye queued after everything
    /// already queued, pending calls failed, open streams ended with
    /// [`RpcError::Closed`]. Idempotent.
    fn close(&self) {
        let entries = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            let _ = self.queue.send(Queued::Goodbye);
            std::mem::take(&mut st.entries)
        };
        self.send_permits.close();
        self.reject_permits.close();
        self.inbound.close();
        self.closing.cancel();
        for entry in entries.into_values() {
            if let Entry::Call(tx) = entry {
                let _ = tx.send(Err(RpcError::Closed));
            }
            // Stream entries drop their item sender and end sender unsent:
            // their SourceStreams yield Err(Closed).
        }
    }

    /// Takes a slot for a new peer-opened request, unless at the limit.
    /// Only the read loop takes slots, so load-then-add does not race.
    fn take_slot(&self) -> Option<Slot> {
        if self.incoming_live.load(Ordering::Acquire) >= self.opts.max_incoming {
            return None;
        }
        self.incoming_live.fetch_add(1, Ordering::AcqRel);
        Some(Slot(self.incoming_live.clone()))
    }

    fn alloc_req(st: &mut State) -> i32 {
        loop {
            let n = st.next_req;
            st.next_req = if n == i32::MAX { 1 } else { n + 1 };
            if !st.entries.contains_key(&-n) {
                return n;
            }
        }
    }
}

/// Runs muxrpc over `reader` / `writer` (spawned on the current tokio
/// runtime; call from inside one). What the connection logs is within the
/// span current at the call.
///
/// Returns the handle for our calls, the peer's requests (the receiver ends
/// when the connection does) and the connection task, which finishes when
/// the connection has closed: `Ok(())` after a goodbye or end of input from
/// the peer, or our own [`RpcHandle::goodbye`]; `Err` for a protocol or I/O
/// error or the idle timeout. Dropping the receiver makes every later
/// request get an error answer; aborting the task stops everything at once.
pub fn start<R, W>(
    reader: R,
    writer: W,
    opts: Options,
) -> (
    RpcHandle,
    mpsc::Receiver<Incoming>,
    JoinHandle<Result<(), RpcError>>,
)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let opts = Options {
        stream_queue: opts.stream_queue.max(1),
        incoming_queue: opts.incoming_queue.max(1),
        send_queue: opts.send_queue.clamp(1, Semaphore::MAX_PERMITS),
        ..opts
    };
    let codec = PacketCodec::new(opts.max_body);
    let (queue, queue_rx) = mpsc::unbounded_channel();
    let (incoming_tx, incoming_rx) = mpsc::channel(opts.incoming_queue);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            closed: false,
            next_req: 1,
            entries: HashMap::default(),
        }),
        queue,
        send_permits: Arc::new(Semaphore::new(opts.send_queue)),
        reject_permits: Arc::new(Semaphore::new(REJECT_PERMITS)),
        inbound: Arc::new(Semaphore::new(
            opts.inbound_bytes
                .max(opts.max_body)
                .min(Semaphore::MAX_PERMITS),
        )),
        incoming_live: Arc::new(AtomicUsize::new(0)),
        closing: CancellationToken::new(),
        finished: CancellationToken::new(),
        opts,
    });
    // The connection's tasks log within the caller's span (one naming the
    // peer, say).
    let span = tracing::Span::current();
    let writer = AbortOnDrop(tokio::spawn(
        write_loop(FramedWrite::new(writer, codec), queue_rx).instrument(span.clone()),
    ));
    let task = tokio::spawn(
        drive(
            shared.clone(),
            FramedRead::new(reader, codec),
            incoming_tx,
            writer,
        )
        .instrument(span),
    );
    (RpcHandle { shared }, incoming_rx, task)
}

/// Aborts the writer task if the connection task is dropped or aborted.
struct AbortOnDrop(JoinHandle<Result<(), RpcError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn joined(r: Result<Result<(), RpcError>, tokio::task::JoinError>) -> Result<(), RpcError> {
    r.unwrap_or_else(|e| {
        debug!("muxrpc writer task failed: {e}");
        Err(RpcError::Closed)
    })
}

/// The connection task: the read loop, then the close sequence.
async fn drive<R>(
    conn: Arc<Shared>,
    frames: FramedRead<R, PacketCodec>,
    incoming: mpsc::Sender<Incoming>,
    mut writer: AbortOnDrop,
) -> Result<(), RpcError>
where
    R: AsyncRead + Unpin,
{
    // However this task ends (even aborted): closed, and `finished` told.
    let _guard = CloseOnDrop(conn.clone());
    let timeout = conn.opts.close_timeout;
    let read = read_loop(&conn, frames, incoming);
    tokio::pin!(read);
    // After our goodbye, neither side may take longer than `timeout` to
    // finish (a peer that neither reads nor closes blocks both).
    let deadline = async {
        conn.closing.cancelled().await;
        tokio::time::sleep(timeout).await;
    };
    let result = tokio::select! {
        () = deadline => {
            debug!("muxrpc: peer neither reading nor closing; giving up");
            Ok(())
        }
        r = &mut read => {
            // The peer is done (or broke the protocol): answer with our
            // goodbye after what is queued, for at most `timeout`.
            conn.close();
            match tokio::time::timeout(timeout, &mut writer.0).await {
                Ok(w) => {
                    if let Err(e) = joined(w) {
                        debug!("muxrpc: writing after the peer closed failed: {e}");
                    }
                }
                Err(_) => debug!("muxrpc: peer not reading; dropping unwritten output"),
            }
            r
        }
        w = &mut writer.0 => {
            let w = joined(w);
            conn.close();
            match w {
                // Our goodbye is out: give the peer `timeout` to finish.
                Ok(()) => match tokio::time::timeout(timeout, &mut read).await {
                    Ok(r) => r,
                    Err(_) => {
                        debug!("muxrpc: no goodbye from the peer");
                        Ok(())
                    }
                },
                Err(e) => Err(e),
            }
        }
    };
    match &result {
        Ok(()) => debug!("muxrpc connection closed"),
        Err(e) => debug!("muxrpc connection failed: {e}"),
    }
    result
}

/// Closes the connection and marks its task finished when dropped.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
        self.0.finished.cancel();
    }
}

async fn write_loop<W>(
    mut out: FramedWrite<W, PacketCodec>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) -> Result<(), RpcError>
where
    W: AsyncWrite + Unpin,
{
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            // A packet's permit and slot are released once it is in the
            // write buffer (which itself is bounded); a group's once all of
            // it is.
            match item {
                Queued::Goodbye => {
                    out.feed(Frame::Goodbye).await?;
                    // Flushes, then shuts the writer down.
                    out.close().await?;
                    return Ok(());
                }
                Queued::Packet { packet, .. } => out.feed(Frame::Packet(packet)).await?,
                Queued::Packets { packets, .. } => {
                    for packet in packets {
                        out.feed(Frame::Packet(packet)).await?;
                    }
                }
            }
            next = queue.try_recv().ok();
        }
        out.flush().await?;
    }
    Ok(())
}

/// Reads and dispatches until the peer's goodbye or end of input.
async fn read_loop<R>(
    conn: &Arc<Shared>,
    mut frames: FramedRead<R, PacketCodec>,
    incoming: mpsc::Sender<Incoming>,
) -> Result<(), RpcError>
where
    R: AsyncRead + Unpin,
{
    loop {
        let next = match conn.opts.idle_timeout {
            None => frames.next().await,
            Some(idle) => match tokio::time::timeout(idle, frames.next()).await {
                Ok(next) => next,
                Err(_) => return Err(RpcError::Idle(idle)),
            },
        };
        match next {
            None => {
                debug!("muxrpc: end of input");
                return Ok(());
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Frame::Goodbye)) => {
                debug!("muxrpc: goodbye from the peer");
                return Ok(());
            }
            Some(Ok(Frame::Packet(p))) => dispatch(conn, &incoming, p).await,
        }
    }
}

async fn dispatch(conn: &Arc<Shared>, incoming: &mpsc::Sender<Incoming>, p: Packet) {
    match route(conn, p) {
        Routed::Done => {}
        Routed::Full(tx, body, permit) => {
            // The stream's queue or the byte budget is full: pause the whole
            // read loop until the application takes items (or drops the
            // stream, or we close).
            let send = async {
                let permit = match permit {
                    Some(p) => p,
                    None => match conn.inbound.clone().acquire_many_owned(weight(&body)).await {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let _ = tx.send((body, Some(permit))).await;
            };
            tokio::select! {
                _ = conn.closing.cancelled() => {}
                () = send => {}
            }
        }
        Routed::New(p) => new_request(conn, incoming, p).await,
    }
}

/// Where a packet went.
enum Routed {
    /// Handled (or ignored).
    Done,
    /// An item for a stream whose queue or the byte budget is full (with
    /// its budget share if it got one).
    Full(mpsc::Sender<Item>, Body, Option<OwnedSemaphorePermit>),
    /// A new request from the peer.
    New(Packet),
}

/// Handles a packet as far as possible without waiting.
fn route(conn: &Shared, p: Packet) -> Routed {
    if p.req == 0 {
        debug!("muxrpc: ignoring a packet without request number");
        return Routed::Done;
    }
    let mut st = conn.lock();
    if st.closed {
        return Routed::Done;
    }
    match st.entries.get_mut(&p.req) {
        Some(Entry::Call(_)) if !p.stream => {
            if let Some(Entry::Call(tx)) = st.entries.remove(&p.req) {
                let answer = if p.end {
                    Err(RpcError::Remote(RemoteError::from_body(p.body)))
                } else {
                    Ok(p.body)
                };
                let _ = tx.send(answer);
            }
            Routed::Done
        }
        Some(Entry::Stream(e)) if p.stream => {
            if p.end {
                peer_ended(conn, &mut st, p.req, p.body);
                Routed::Done
            } else {
                deliver(conn, e, p.body)
            }
        }
        Some(_) => {
            debug!(req = p.req, "muxrpc: ignoring a packet of the wrong kind");
            Routed::Done
        }
        None if p.req < 0 => {
            debug!(req = p.req, "muxrpc: ignoring a packet for no open request");
            Routed::Done
        }
        None if p.end => {
            debug!(req = p.req, "muxrpc: ignoring an end for no open stream");
            Routed::Done
        }
        None => Routed::New(p),
    }
}

/// An item's share of the inbound byte budget (bodies are at most
/// `max_body` <= `u32::MAX` bytes).
fn weight(body: &Body) -> u32 {
    u32::try_from(body.len()).unwrap_or(u32::MAX)
}

/// Hands an item to a stream's queue if that needs no waiting.
fn deliver(conn: &Shared, e: &mut StreamEntry, body: Body) -> Routed {
    let Some(tx) = e.items.as_ref() else {
        return Routed::Done;
    };
    if tx.is_closed() {
        // The application dropped its SourceStream: discard from now on.
        e.items = None;
        return Routed::Done;
    }
    let Ok(permit) = conn.inbound.clone().try_acquire_many_owned(weight(&body)) else {
        return Routed::Full(tx.clone(), body, None);
    };
    match tx.try_send((body, Some(permit))) {
        Ok(()) => Routed::Done,
        Err(mpsc::error::TrySendError::Full((body, permit))) => {
            Routed::Full(tx.clone(), body, permit)
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            e.items = None;
            Routed::Done
        }
    }
}

/// The peer ended stream `key`: answer with our end if we have not sent it,
/// tell the SourceStream, free the number.
fn peer_ended(conn: &Shared, st: &mut State, key: i32, body: Body) {
    let Some(Entry::Stream(mut e)) = st.entries.remove(&key) else {
        return;
    };
    if !e.we_ended {
        conn.push(
            Packet {
                stream: true,
                end: true,
                body: Body::json_true(),
                req: -key,
            },
            None,
            e.slot.take(),
        );
    }
    let status = if body.is_true() {
        Ok(())
    } else {
        Err(RemoteError::from_body(body))
    };
    if let Some(end) = e.end.take() {
        let _ = end.send(status);
    }
}

#[derive(Deserialize)]
struct WireRequest {
    name: WireName,
    args: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireName {
    Path(Vec<String>),
    One(String),
}

struct Request {
    name: Vec<String>,
    kind: Kind,
    args: Value,
}

fn parse_request(body: &Body, stream: bool) -> Result<Request, String> {
    let Body::Json(_) = body else {
        return Err("invalid request: body is not JSON".to_owned());
    };
    let wire: WireRequest = body
        .parse_json()
        .map_err(|e| format!("invalid request: {e}"))?;
    let name = match wire.name {
        WireName::Path(path) => path,
        WireName::One(one) => vec![one],
    };
    let args = match wire.args {
        Some(args @ Value::Array(_)) => args,
        _ => return Err("invalid request, args should be array".to_owned()),
    };
    let kind = if !stream {
        Kind::Async
    } else {
        match wire.kind.as_deref() {
            Some("source") => Kind::Source,
            Some("sink") => Kind::Sink,
            Some("duplex") => Kind::Duplex,
            other => {
                return Err(format!(
                    "unsupported stream type: {}",
                    other.unwrap_or("undefined")
                ));
            }
        }
    };
    Ok(Request { name, kind, args })
}

/// A request from the peer on a number not in use.
async fn new_request(conn: &Arc<Shared>, incoming: &mpsc::Sender<Incoming>, p: Packet) {
    let key = p.req;
    let request = match parse_request(&p.body, p.stream) {
        Ok(r) => r,
        Err(message) => {
            debug!(req = key, "muxrpc: rejecting request: {message}");
            return reject(conn, key, p.stream, &message).await;
        }
    };
    let Some(slot) = conn.take_slot() else {
        debug!(req = key, "muxrpc: rejecting request over the limit");
        let message = format!(
            "too many concurrent requests (limit {})",
            conn.opts.max_incoming
        );
        return reject(conn, key, p.stream, &message).await;
    };
    let method = request.name.join(".");
    debug!(
        req = key,
        kind = request.kind.as_str(),
        method,
        "muxrpc request"
    );
    let responder = if request.kind == Kind::Async {
        Responder::Async(AsyncResponder::new(conn.clone(), key, method, slot))
    } else {
        let (items_tx, items_rx) = match request.kind {
            Kind::Sink | Kind::Duplex => {
                let (tx, rx) = mpsc::channel(conn.opts.stream_queue);
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        let (end_tx, end_rx) = oneshot::channel();
        {
            let mut st = conn.lock();
            if st.closed {
                return;
            }
            st.entries.insert(
                key,
                Entry::Stream(StreamEntry {
                    items: items_tx,
                    end: Some(end_tx),
                    we_ended: false,
                    slot: Some(slot),
                }),
            );
        }
        let method: Arc<str> = method.into();
        let sink = DuplexSink::new(conn.clone(), key, method.clone(), DropEnd::Error);
        let source = SourceStream::new(items_rx, end_rx, None);
        Responder::Stream(StreamResponder::new(request.kind, method, sink, source))
    };
    let request = Incoming {
        name: request.name,
        kind: request.kind,
        args: request.args,
        body: p.body.into_bytes(),
        responder,
    };
    tokio::select! {
        // Closing: the request is dropped; its responder sends nothing.
        _ = conn.closing.cancelled() => {}
        // If the application dropped the receiver, the request comes back
        // and dropping it answers the peer with an error.
        _ = incoming.send(request) => {}
    }
}

/// Answers a request we will not hand to the application with an error.
async fn reject(conn: &Shared, key: i32, stream: bool, message: &str) {
    let packet = Packet {
        stream,
        end: true,
        body: error_body(message),
        req: -key,
    };
    if let Some(slot) = conn.take_slot() {
        // Within the limit: the error rides on a slot. A stream keeps an
        // entry (ended on our side) until the peer ends it, so the peer's
        // further items on it are not taken for new requests.
        let mut st = conn.lock();
        if st.closed {
            return;
        }
        if stream {
            st.entries.insert(
                key,
                Entry::Stream(StreamEntry {
                    items: None,
                    end: None,
                    we_ended: true,
                    slot: Some(slot),
                }),
            );
            conn.push(packet, None, None);
        } else {
            conn.push(packet, None, Some(slot));
        }
        return;
    }
    // Over the limit: wait for one of a few error permits.
    let permit = tokio::select! {
        _ = conn.closing.cancelled() => return,
        p = conn.reject_permits.clone().acquire_owned() => match p {
            Ok(p) => p,
            Err(_) => return,
        },
    };
    let st = conn.lock();
    if !st.closed {
        conn.push(packet, Some(permit), None);
    }
}

/// Makes calls on the peer and closes the connection. Cheap to clone; every
/// clone talks over the same connection.
#[derive(Clone)]
pub struct RpcHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RpcHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcHandle")
            .field("closed", &self.is_closed())
            .finish()
    }
}

fn request_body(name: &[&str], args: &Value, kind: Kind) -> Result<Body, RpcError> {
    if !args.is_array() {
        return Err(RpcError::ArgsNotArray);
    }
    // Key order as JavaScript muxrpc writes them.
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"name\":");
    serde_json::to_writer(&mut out, name)?;
    out.extend_from_slice(b",\"args\":");
    serde_json::to_writer(&mut out, args)?;
    if kind != Kind::Async {
        out.extend_from_slice(b",\"type\":");
        serde_json::to_writer(&mut out, kind.as_str())?;
    }
    out.push(b'}');
    Ok(Body::Json(out.into()))
}

/// Removes our call's entry if the caller stops waiting.
struct CallGuard<'a> {
    conn: &'a Shared,
    key: i32,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.conn.lock();
        if let Some(Entry::Call(_)) = st.entries.get(&self.key) {
            st.entries.remove(&self.key);
        }
    }
}

impl RpcHandle {
    /// Calls async method `name` with `args` (a JSON array); returns the
    /// answer's body (any type), [`RpcError::Remote`] for an error answer,
    /// [`RpcError::Closed`] if the connection closes first. No timeout: wrap
    /// the call in one if the peer may never answer.
    pub async fn call_async(&self, name: &[&str], args: Value) -> Result<Body, RpcError> {
        let conn = &*self.shared;
        let body = request_body(name, &args, Kind::Async)?;
        conn.check_body(&body)?;
        let permit = conn.send_permit().await?;
        let (tx, rx) = oneshot::channel();
        let key = {
            let mut st = conn.lock();
            if st.closed {
                return Err(RpcError::Closed);
            }
            let n = Shared::alloc_req(&mut st);
            st.entries.insert(-n, Entry::Call(tx));
            conn.push(
                Packet {
                    stream: false,
                    end: false,
                    body,
                    req: n,
                },
                Some(permit),
                None,
            );
            -n
        };
        let _guard = CallGuard { conn, key };
        rx.await.unwrap_or(Err(RpcError::Closed))
    }

    /// Calls source method `name`: the stream yields the peer's items, then
    /// ends (`None`) after its `true` end, or yields one
    /// `Err(RpcError::Remote)` for an error end or `Err(RpcError::Closed)`
    /// if the connection closes first. Dropping it early ends the stream on
    /// our side (`true`, as a pull-stream abort does).
    pub async fn call_source(&self, name: &[&str], args: Value) -> Result<SourceStream, RpcError> {
        let (sink, mut source) = self.open(name, args, Kind::Source).await?;
        source.set_abort(sink);
        Ok(source)
    }

    /// Calls duplex method `name`: items go out through the sink and come in
    /// through the source. End the sink with [`DuplexSink::end`]; dropping it
    /// unended sends an error end.
    pub async fn call_duplex(
        &self,
        name: &[&str],
        args: Value,
    ) -> Result<(DuplexSink, SourceStream), RpcError> {
        self.open(name, args, Kind::Duplex).await
    }

    /// Calls sink method `name`: items go out through the sink; the source
    /// yields no items, only how the peer ended (`None` for `true`, or one
    /// error).
    pub async fn call_sink(
        &self,
        name: &[&str],
        args: Value,
    ) -> Result<(DuplexSink, SourceStream), RpcError> {
        self.open(name, args, Kind::Sink).await
    }

    async fn open(
        &self,
        name: &[&str],
        args: Value,
        kind: Kind,
    ) -> Result<(DuplexSink, SourceStream), RpcError> {
        let conn = &self.shared;
        let body = request_body(name, &args, kind)?;
        conn.check_body(&body)?;
        let permit = conn.send_permit().await?;
        let (items_tx, items_rx) = if kind == Kind::Sink {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel(conn.opts.stream_queue);
            (Some(tx), Some(rx))
        };
        let (end_tx, end_rx) = oneshot::channel();
        let key = {
            let mut st = conn.lock();
            if st.closed {
                return Err(RpcError::Closed);
            }
            let n = Shared::alloc_req(&mut st);
            st.entries.insert(
                -n,
                Entry::Stream(StreamEntry {
                    items: items_tx,
                    end: Some(end_tx),
                    we_ended: false,
                    slot: None,
                }),
            );
            conn.push(
                Packet {
                    stream: true,
                    end: false,
                    body,
                    req: n,
                },
                Some(permit),
                None,
            );
            -n
        };
        let method: Arc<str> = name.join(".").into();
        let drop_end = if kind == Kind::Source {
            DropEnd::Clean
        } else {
            DropEnd::Error
        };
        let sink = DuplexSink::new(conn.clone(), key, method, drop_end);
        Ok((sink, SourceStream::new(items_rx, end_rx, None)))
    }

    /// Closes the connection: pending calls fail with
    /// [`RpcError::Closed`], open streams end with it, our goodbye is
    /// written after everything already queued. Returns once the connection
    /// task has finished (after the peer's goodbye, or at most about twice
    /// [`Options::close_timeout`]).
    pub async fn goodbye(&self) {
        self.shared.close();
        self.shared.finished.cancelled().await;
    }

    /// Whether the connection is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closing()
    }

    /// Waits until the connection starts closing, for whatever reason.
    pub async fn closing(&self) {
        self.shared.closing.cancelled().await;
    }
}

#[cfg(test)]
impl RpcHandle {
    /// Request numbers in use (our calls and streams, the peer's streams).
    pub(super) fn live_entries(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// Peer-opened requests counted against the limit.
    pub(super) fn live_incoming(&self) -> usize {
        self.shared.incoming_live.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_wrap_and_skip_numbers_in_use() {
        let mut st = State {
            closed: false,
            next_req: i32::MAX,
            entries: HashMap::default(),
        };
        let (tx, _rx) = oneshot::channel();
        st.entries.insert(-1, Entry::Call(tx));
        assert_eq!(Shared::alloc_req(&mut st), i32::MAX);
        assert_eq!(Shared::alloc_req(&mut st), 2);
    }

    #[test]
    fn requests_are_written_as_javascript_writes_them() {
        let args = serde_json::json!([{"version": 3}]);
        assert_eq!(
            request_body(&["ebt", "replicate"], &args, Kind::Duplex).unwrap(),
            Body::json_raw(
                r#"{"name":["ebt","replicate"],"args":[{"version":3}],"type":"duplex"}"#
            )
        );
        assert_eq!(
            request_body(&["whoami"], &serde_json::json!([]), Kind::Async).unwrap(),
            Body::json_raw(r#"{"name":["whoami"],"args":[]}"#)
        );
    }
}
