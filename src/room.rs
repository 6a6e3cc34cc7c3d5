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
//! Membership ([`Mode`]): an open room admits anyone who connects; a
//! community or restricted one only members, who join by claiming an
//! invite (rooms 2.0 `claim-http-invite`) at the room's HTTP endpoint
//! ([`serve_http`]); a non-member is told so and attends nothing. Members
//! and invites are kept in the store (only a token's sha256), so a
//! restart keeps them.
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

/// Who may attend a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Anyone who connects.
    Open,
    /// Members only (who joined with an invite).
    Community,
    /// Members only; invites only from the room's operator.
    Restricted,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "open" => Ok(Mode::Open),
            "community" => Ok(Mode::Community),
            "restricted" => Ok(Mode::Restricted),
            other => Err(format!(
                "room mode {other:?}: expected open, community or restricted"
            )),
        }
    }
}

/// What the room says of itself to `peer` (`tunnel.isRoom`,
/// `room.metadata`).
fn metadata(name: &str, member: bool, http: bool) -> Json {
    let mut features = vec!["tunnel", "room1", "room2"];
    if http {
        features.push("httpInvite");
    }
    json!({
        "name": name,
        "membership": member,
        "features": features,
    })
}

/// How long an invite of the room may be claimed.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A new invite token: 32 random bytes, base64url without padding.
pub fn new_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>())
}

/// What is kept of a token: its sha256.
pub fn token_hash(token: &str) -> [u8; 32] {
    crate::crypto::sha256(token.as_bytes())
}

/// The rooms 2.0 invite link for `token`, claimed at `post_to`.
pub fn invite_link(token: &str, post_to: &str) -> String {
    format!(
        "ssb:experimental?action=claim-http-invite&invite={}&postTo={}",
        crate::uri::encode_component(token),
        crate::uri::encode_component(post_to)
    )
}

/// Serves the room's HTTP endpoint on `listener` until the process ends:
/// `POST /invite/consume` with `{"id": FEED, "invite": TOKEN}` claims the
/// invite for FEED (see [`crate::store::Store::claim_room_invite`]) and
/// answers `{"status":"successful","multiserverAddress":…}`; anything
/// else, an error with a reason. Bodies are read up to 4 KiB.
pub fn serve_http(
    server: tiny_http::Server,
    store: Arc<crate::store::Store>,
    address: impl Fn() -> Option<String> + Send + 'static,
) {
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let answer = |status: u16, body: Json| {
                let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
                    .expect("a valid header");
                tiny_http::Response::from_string(body.to_string())
                    .with_status_code(status)
                    .with_header(header)
            };
            let fail =
                |status: u16, why: &str| answer(status, json!({"status": "error", "error": why}));
            if req.method() != &tiny_http::Method::Post || req.url() != "/invite/consume" {
                let _ = req.respond(fail(404, "not found"));
                continue;
            }
            let mut body = Vec::new();
            let read = std::io::Read::read_to_end(
                &mut std::io::Read::take(req.as_reader(), 4096),
                &mut body,
            );
            let asked: Option<(FeedId, String)> = read
                .ok()
                .and_then(|_| serde_json::from_slice::<Json>(&body).ok())
                .and_then(|v| {
                    let id = v.get("id")?.as_str().and_then(FeedId::parse)?;
                    let token = v.get("invite")?.as_str()?.to_string();
                    Some((id, token))
                });
            let Some((id, token)) = asked else {
                let _ = req.respond(fail(400, "expected {\"id\": FEED, \"invite\": TOKEN}"));
                continue;
            };
            let now = crate::store::now_ms() as u64;
            let response = match store.claim_room_invite(&token_hash(&token), &id, now) {
                Ok(Ok(())) => {
                    tracing::info!("{id} joined the room with an invite");
                    answer(
                        200,
                        json!({"status": "successful", "multiserverAddress": address()}),
                    )
                }
                Ok(Err(why)) => fail(403, &why.to_string()),
                Err(e) => {
                    tracing::warn!("room invite: {e}");
                    fail(500, "the room cannot read its store")
                }
            };
            let _ = req.respond(response);
        }
    });
}

struct Attendant {
    rpc: RpcHandle,
    tunnels: usize,
}

/// A room: who attends, and the tunnels between them.
pub struct RoomServer {
    me: FeedId,
    name: String,
    mode: Mode,
    store: Arc<crate::store::Store>,
    /// Whether invites are claimed over HTTP here.
    http: bool,
    attendants: Mutex<HashMap<FeedId, Attendant>>,
    /// (joined, who).
    changes: broadcast::Sender<(bool, FeedId)>,
}

impl RoomServer {
    /// A room named `name`, run by `me`, who may attend as `mode` says
    /// (members in `store`); `http`: whether its invites are claimed over
    /// HTTP.
    pub fn new(
        me: FeedId,
        name: String,
        mode: Mode,
        store: Arc<crate::store::Store>,
        http: bool,
    ) -> RoomServer {
        RoomServer {
            me,
            name,
            mode,
            store,
            http,
            attendants: Mutex::default(),
            changes: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FeedId, Attendant>> {
        self.attendants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `peer` may attend: anyone in an open room, members else.
    pub fn admits(&self, peer: &FeedId) -> bool {
        self.mode == Mode::Open || self.store.is_room_member(peer).unwrap_or(false)
    }

    /// A peer connected: it attends until [`RoomServer::left`], if it may.
    pub fn arrived(&self, peer: FeedId, rpc: RpcHandle) {
        if !self.admits(&peer) {
            tracing::info!("{peer}: not a member of the room: not attending");
            return;
        }
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
                let member = self.mode != Mode::Open && self.admits(&peer);
                let meta = metadata(&self.name, member, self.http);
                let _ = a.ok(Body::Json(Bytes::from(meta.to_string()))).await;
            }
            (_, responder) if !self.admits(&peer) => {
                let _ = responder
                    .error("not a member of this room: join it with an invite")
                    .await;
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
