//! Rooms: a rendezvous server that relays end-to-end encrypted
//! connections (tunnels) between the peers attending it, and what a peer
//! needs to use one.
//!
//! Owns the room's side ([`RoomServer`]: who attends, `tunnel.connect`
//! relaying bytes between an origin and its target only, `tunnel.isRoom`,
//! `room.metadata`, `room.attendants`, and the rooms 1.0 calls
//! `tunnel.announce`, `tunnel.leave`, `tunnel.endpoints`, `tunnel.ping`),
//! and, for a peer, a muxrpc duplex stream turned into a byte stream
//! ([`byte_stream`]) on which the secret handshake runs as over TCP.
//! The room relays the inner connection's box-stream bytes and nothing
//! else: it cannot read them, and it stores nothing of anyone.
//!
//! Bounded: at most [`MAX_TUNNELS_PER_ATTENDANT`] tunnels opened by one
//! attendant at once, a tunnel silent both ways for [`TUNNEL_IDLE`] is
//! closed, and a tunnel to ourselves, to a peer not attending, or opened
//! inside a tunnel is refused with an error. Imports `crypto`, `store`
//! (the clock), `rpc` and `replicate` (the [`Service`] a node mounts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt as _;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::broadcast;

use crate::crypto::FeedId;
use crate::replicate::session::Service;
use crate::rpc::{Body, DuplexSink, Incoming, Responder, RpcHandle, SourceStream};

/// Tunnels one attendant may have open at once through the room.
pub const MAX_TUNNELS_PER_ATTENDANT: usize = 16;
/// A tunnel that carries nothing either way for this long is closed.
pub const TUNNEL_IDLE: Duration = Duration::from_secs(600);

/// Turns a muxrpc duplex stream carrying bytes (a tunnel) into a byte
/// stream: what is written to it goes out as binary items, and the items
/// that come in are read from it. Ends when either side ends.
pub fn byte_stream(sink: DuplexSink, mut source: SourceStream) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut from_us, mut to_us) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_us.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let piece = Body::Binary(Bytes::copy_from_slice(&buf[..n]));
                    if sink.send(piece).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.end().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(Body::Binary(b) | Body::Text(b))) = source.recv().await {
            if to_us.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = to_us.shutdown().await;
    });
    ours
}

/// What the room says of itself (`tunnel.isRoom`, `room.metadata`).
fn metadata(name: &str) -> Json {
    json!({
        "name": name,
        "membership": false,
        "features": ["tunnel", "room1", "room2"],
    })
}

struct Attendant {
    rpc: RpcHandle,
    tunnels: usize,
}

/// A room: who attends, and the tunnels between them.
pub struct RoomServer {
    me: FeedId,
    name: String,
    attendants: Mutex<HashMap<FeedId, Attendant>>,
    /// (joined, who).
    changes: broadcast::Sender<(bool, FeedId)>,
}

impl RoomServer {
    /// A room named `name`, run by `me`.
    pub fn new(me: FeedId, name: String) -> RoomServer {
        RoomServer {
            me,
            name,
            attendants: Mutex::default(),
            changes: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FeedId, Attendant>> {
        self.attendants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A peer connected: it attends until [`RoomServer::left`].
    pub fn arrived(&self, peer: FeedId, rpc: RpcHandle) {
        self.lock().insert(peer, Attendant { rpc, tunnels: 0 });
        let _ = self.changes.send((true, peer));
    }

    /// A peer's connection ended.
    pub fn left(&self, peer: &FeedId) {
        if self.lock().remove(peer).is_some() {
            let _ = self.changes.send((false, *peer));
        }
    }

    /// Who attends, by key.
    pub fn attending(&self) -> Vec<FeedId> {
        let mut ids: Vec<FeedId> = self.lock().keys().copied().collect();
        ids.sort();
        ids
    }

    async fn answer_request(self: Arc<Self>, peer: FeedId, req: Incoming) {
        let name: Vec<&str> = req.name.iter().map(String::as_str).collect();
        let arg = req.args.get(0).cloned().unwrap_or(Json::Null);
        match (name.as_slice(), req.responder) {
            (["tunnel", "isRoom"] | ["room", "metadata"], Responder::Async(a)) => {
                let body = Body::Json(Bytes::from(metadata(&self.name).to_string()));
                let _ = a.ok(body).await;
            }
            (["tunnel", "announce" | "leave"], Responder::Async(a)) => {
                let _ = a.ok(Body::json_true()).await;
            }
            (["tunnel", "ping"], Responder::Async(a)) => {
                let now = crate::store::now_ms() as u64;
                let _ = a.ok(Body::Json(Bytes::from(now.to_string()))).await;
            }
            (["room", "attendants"], Responder::Stream(s)) => {
                let (sink, _source) = s.into_parts();
                self.attendants_stream(sink, false).await;
            }
            (["tunnel", "endpoints"], Responder::Stream(s)) => {
                let (sink, _source) = s.into_parts();
                self.attendants_stream(sink, true).await;
            }
            (["tunnel", "connect"], Responder::Stream(s)) => {
                self.relay(peer, &arg, s).await;
            }
            (_, responder) => {
                let _ = responder.not_found().await;
            }
        }
    }

    /// `room.attendants`: `{type: state, ids}` then `{type: joined|left,
    /// id}`; or, for rooms 1.0's `tunnel.endpoints`, the whole list each
    /// time it changes.
    async fn attendants_stream(&self, sink: DuplexSink, whole_lists: bool) {
        let mut changes = self.changes.subscribe();
        let ids = |v: Vec<FeedId>| -> Json { v.iter().map(|f| json!(f.to_string())).collect() };
        let first = if whole_lists {
            ids(self.attending())
        } else {
            json!({"type": "state", "ids": ids(self.attending())})
        };
        if sink
            .send(Body::Json(Bytes::from(first.to_string())))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let next = match changes.recv().await {
                Ok((joined, who)) if !whole_lists => json!({
                    "type": if joined { "joined" } else { "left" },
                    "id": who.to_string(),
                }),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if whole_lists {
                        ids(self.attending())
                    } else {
                        json!({"type": "state", "ids": ids(self.attending())})
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if sink
                .send(Body::Json(Bytes::from(next.to_string())))
                .await
                .is_err()
            {
                break;
            }
        }
    }

    /// `tunnel.connect({portal, target})` from `origin`: asks the target
    /// for a tunnel from `origin` and relays bytes between the two until
    /// either ends or the tunnel is idle for [`TUNNEL_IDLE`].
    async fn relay(self: Arc<Self>, origin: FeedId, arg: &Json, s: crate::rpc::StreamResponder) {
        let target = arg
            .get("target")
            .and_then(Json::as_str)
            .and_then(FeedId::parse);
        if arg.get("origin").is_some() {
            let _ = s.error("a tunnel cannot be opened inside a tunnel").await;
            return;
        }
        let Some(target) = target else {
            let _ = s.error("tunnel.connect needs a target feed id").await;
            return;
        };
        if target == origin || target == self.me {
            let _ = s.error("cannot tunnel to yourself or to the room").await;
            return;
        }
        let refused = |why: String| Err::<RpcHandle, String>(why);
        let target_rpc = {
            let mut all = self.lock();
            match all.get(&target).map(|a| a.rpc.clone()) {
                None => refused(format!("{target} is not attending this room")),
                Some(t) => match all.get_mut(&origin) {
                    Some(o) if o.tunnels >= MAX_TUNNELS_PER_ATTENDANT => refused(format!(
                        "{MAX_TUNNELS_PER_ATTENDANT} tunnels are open from you already"
                    )),
                    Some(o) => {
                        o.tunnels += 1;
                        Ok(t)
                    }
                    None => refused("you are not attending this room".into()),
                },
            }
        };
        let target_rpc = match target_rpc {
            Ok(t) => t,
            Err(why) => {
                let _ = s.error(&why).await;
                return;
            }
        };
        let args = json!([{
            "portal": self.me.to_string(),
            "target": target.to_string(),
            "origin": origin.to_string(),
        }]);
        match target_rpc.call_duplex(&["tunnel", "connect"], args).await {
            Ok((t_sink, t_source)) => {
                let (o_sink, o_source) = s.into_parts();
                tracing::debug!("tunnel {origin} -> {target} open");
                pipe(o_source, t_sink, t_source, o_sink).await;
                tracing::debug!("tunnel {origin} -> {target} closed");
            }
            Err(e) => {
                let _ = s.error(&format!("{target} refused the tunnel: {e}")).await;
            }
        }
        if let Some(o) = self.lock().get_mut(&origin) {
            o.tunnels = o.tunnels.saturating_sub(1);
        }
    }
}

/// Relays items both ways between two duplex streams until either side
/// ends or nothing moves for [`TUNNEL_IDLE`]; then ends both.
async fn pipe(
    mut a_in: SourceStream,
    b_out: DuplexSink,
    mut b_in: SourceStream,
    a_out: DuplexSink,
) {
    // What the room sees: at trace level (`SHOAL_LOG=shoal::room=trace`),
    // every relayed item in hex, so that anyone can check it is ciphertext.
    let seen = |dir: &str, body: &Body| {
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!("relayed {dir} {}", hex::encode(body.bytes()));
        }
    };
    loop {
        let moved = tokio::time::timeout(TUNNEL_IDLE, async {
            tokio::select! {
                item = a_in.recv() => match item {
                    Some(Ok(body)) => {
                        seen(">", &body);
                        b_out.send(body).await.is_ok()
                    }
                    _ => false,
                },
                item = b_in.recv() => match item {
                    Some(Ok(body)) => {
                        seen("<", &body);
                        a_out.send(body).await.is_ok()
                    }
                    _ => false,
                },
            }
        })
        .await;
        if !matches!(moved, Ok(true)) {
            break;
        }
    }
    let _ = a_out.end().await;
    let _ = b_out.end().await;
}

impl Service for RoomServer {
    fn handles(&self, name: &[String]) -> bool {
        matches!(
            name.iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
            [
                "tunnel",
                "isRoom" | "announce" | "leave" | "ping" | "endpoints" | "connect"
            ] | ["room", "metadata" | "attendants"]
        )
    }

    fn answer(
        self: Arc<Self>,
        peer: FeedId,
        _rpc: RpcHandle,
        req: Incoming,
    ) -> futures::future::BoxFuture<'static, ()> {
        self.answer_request(peer, req).boxed()
    }
}
