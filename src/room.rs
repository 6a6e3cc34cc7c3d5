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
//! Who may make invites: in an open room anyone attending, in a community
//! room its members, in a restricted one only its admins (`[room] admins`
//! and the operator, locally); from afar with `room.createInvite`.
//!
//! Aliases (rooms 2.0, not in restricted rooms): a member registers a name
//! with `room.registerAlias(alias, signature)`, its signature of
//! [`alias_confirmation`], which the room checks and keeps with the alias,
//! so that whoever resolves the alias (`GET /ALIAS?encoding=json` at the
//! HTTP endpoint, or an [`AliasLink`]) can check that the member chose it:
//! the room can withhold an alias but not forge one.
//!
//! Bounded: at most [`MAX_TUNNELS_PER_ATTENDANT`] tunnels opened by one
//! attendant at once, a tunnel silent both ways for `[room]
//! tunnel_idle_secs` (10 minutes) is closed, and a tunnel to ourselves, to
//! a peer not attending, or opened inside a tunnel is refused with an
//! error. Imports `crypto`, `store`, `uri`, `rpc` and `replicate` (the
//! [`Service`] a node mounts).

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
fn metadata(name: &str, member: bool, http: bool, aliases: bool) -> Json {
    let mut features = vec!["tunnel", "room1", "room2"];
    if aliases {
        features.push("alias");
    }
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

/// The string a member signs to register `alias` for `user` at `room`
/// (rooms 2.0's alias confirmation).
pub fn alias_confirmation(room: &FeedId, user: &FeedId, alias: &str) -> String {
    format!("=room-alias-registration:{room}:{user}:{alias}")
}

/// Whether `alias` may be an alias: a domain label (RFC 1035), lower
/// case: 1 to 63 of `a-z`, `0-9` and `-`, neither first nor last a `-`.
pub fn check_alias(alias: &str) -> Result<(), String> {
    let ok_chars = alias
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if alias.is_empty() || alias.len() > 63 {
        Err(format!("an alias has 1 to 63 characters: {alias:?}"))
    } else if !ok_chars {
        Err(format!(
            "an alias is made of a-z, 0-9 and '-' (a domain label, lower case): {alias:?}"
        ))
    } else if alias.starts_with('-') || alias.ends_with('-') {
        Err(format!(
            "an alias neither starts nor ends with '-': {alias:?}"
        ))
    } else {
        Ok(())
    }
}

/// `keys`'s signature registering `alias` at `room`, as written on the
/// wire (`BASE64.sig.ed25519`).
pub fn sign_alias(keys: &crate::crypto::Keypair, room: &FeedId, alias: &str) -> String {
    let sig = keys.sign(alias_confirmation(room, &keys.id(), alias).as_bytes());
    format!("{}.sig.ed25519", crate::crypto::b64_encode(&sig))
}

/// A signature as written on the wire (`BASE64.sig.ed25519`, or bare
/// base64), if it is 64 bytes.
pub fn parse_signature(text: &str) -> Option<[u8; 64]> {
    let b64 = text.strip_suffix(".sig.ed25519").unwrap_or(text);
    crate::crypto::b64_decode(b64)?.try_into().ok()
}

/// Whether `signature` is `user`'s of the confirmation of `alias` at `room`.
pub fn alias_signed(room: &FeedId, user: &FeedId, alias: &str, signature: &[u8; 64]) -> bool {
    crate::crypto::VerifyKey::new(user).is_some_and(|key| {
        crate::crypto::verify(
            &key,
            alias_confirmation(room, user, alias).as_bytes(),
            signature,
        )
    })
}

/// An alias as others learn it: which room, where it is, whom it names
/// and their signature. Made only with the signature checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasLink {
    /// The alias.
    pub alias: String,
    /// Whom it names.
    pub user: FeedId,
    /// The room.
    pub room: FeedId,
    /// The room's multiserver address.
    pub address: String,
    signature: [u8; 64],
}

impl AliasLink {
    /// Checks the parts of an alias (as a `consume-alias` URI or the
    /// alias endpoint's JSON names them): the alias well formed, the
    /// address the room's, and the signature the user's.
    pub fn new(
        alias: &str,
        user: &str,
        room: &str,
        address: &str,
        signature: &str,
    ) -> Result<AliasLink, String> {
        check_alias(alias)?;
        let user =
            FeedId::parse(user).ok_or_else(|| format!("userId {user:?} is not a feed id"))?;
        let room =
            FeedId::parse(room).ok_or_else(|| format!("roomId {room:?} is not a feed id"))?;
        let ma: crate::net::MultiAddr = address
            .parse()
            .map_err(|e| format!("multiserverAddress {address:?}: {e}"))?;
        if ma.key != room {
            return Err(format!(
                "the multiserverAddress is not the room's ({} is not {room})",
                ma.key
            ));
        }
        let signature = parse_signature(signature)
            .ok_or_else(|| "the signature is not 64 bytes".to_string())?;
        if !alias_signed(&room, &user, alias, &signature) {
            return Err(format!(
                "the signature is not {user}'s registration of {alias:?} at {room}: the alias may be forged"
            ));
        }
        Ok(AliasLink {
            alias: alias.to_string(),
            user,
            room,
            address: address.to_string(),
            signature,
        })
    }

    /// From the query parameters of a `consume-alias` URI.
    pub fn from_params(params: &[(String, String)]) -> Result<AliasLink, String> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| format!("the alias link has no {k}"))
        };
        AliasLink::new(
            get("alias")?,
            get("userId")?,
            get("roomId")?,
            get("multiserverAddress")?,
            get("signature")?,
        )
    }

    /// From the alias endpoint's JSON (`GET /ALIAS?encoding=json`).
    pub fn from_json(v: &Json) -> Result<AliasLink, String> {
        if v["status"] != "successful" {
            let why = v["error"].as_str().unwrap_or("no reason given");
            return Err(format!("the room did not resolve the alias: {why}"));
        }
        let get = |k: &str| {
            v[k].as_str()
                .ok_or_else(|| format!("the room's answer has no {k}"))
        };
        AliasLink::new(
            get("alias")?,
            get("userId")?,
            get("roomId")?,
            get("multiserverAddress")?,
            get("signature")?,
        )
    }

    /// The signature, as written on the wire.
    pub fn signature(&self) -> String {
        format!("{}.sig.ed25519", crate::crypto::b64_encode(&self.signature))
    }

    /// Its `ssb:experimental?action=consume-alias&…` URI.
    pub fn uri(&self) -> String {
        let e = crate::uri::encode_component;
        format!(
            "ssb:experimental?action=consume-alias&alias={}&userId={}&signature={}&roomId={}&multiserverAddress={}",
            e(&self.alias),
            e(&self.user.to_string()),
            e(&self.signature()),
            e(&self.room.to_string()),
            e(&self.address)
        )
    }

    /// The JSON the alias endpoint answers.
    fn json(&self) -> Json {
        json!({
            "status": "successful",
            "multiserverAddress": self.address,
            "roomId": self.room.to_string(),
            "userId": self.user.to_string(),
            "alias": self.alias,
            "signature": self.signature(),
        })
    }
}

struct Attendant {
    rpc: RpcHandle,
    tunnels: usize,
}

/// How a room is run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Its name, as attendants see it.
    pub name: String,
    /// Who may attend.
    pub mode: Mode,
    /// Who may make invites from afar in a restricted room.
    pub admins: Vec<FeedId>,
    /// A tunnel that carries nothing either way for this long is closed.
    pub tunnel_idle: Duration,
    /// Where invites are claimed (`http://HOST:PORT/invite/consume`;
    /// none: the room makes no invites).
    pub post_to: Option<String>,
}

/// A room: who attends, and the tunnels between them.
pub struct RoomServer {
    me: FeedId,
    settings: Settings,
    store: Arc<crate::store::Store>,
    /// The room's multiserver address, as peers reach it.
    address: Box<dyn Fn() -> Option<String> + Send + Sync>,
    attendants: Mutex<HashMap<FeedId, Attendant>>,
    /// (joined, who).
    changes: broadcast::Sender<(bool, FeedId)>,
}

impl RoomServer {
    /// A room run by `me` as `settings` say, keeping members, invites and
    /// aliases in `store`, reached at `address()`.
    pub fn new(
        me: FeedId,
        settings: Settings,
        store: Arc<crate::store::Store>,
        address: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> RoomServer {
        RoomServer {
            me,
            settings,
            store,
            address: Box::new(address),
            attendants: Mutex::default(),
            changes: broadcast::channel(1024).0,
        }
    }

    /// Makes an invite (as its operator, or for `peer` who may): its
    /// rooms 2.0 link, valid for [`INVITE_LIFETIME`], of which the store
    /// keeps only the token's sha256.
    pub fn make_invite(&self, peer: Option<&FeedId>) -> Result<String, String> {
        if let Some(peer) = peer
            && !self.may_invite(peer)
        {
            return Err(match self.settings.mode {
                Mode::Restricted => "only the room's admins make invites to a restricted room",
                _ => "only members make invites to this room: join it with an invite",
            }
            .into());
        }
        let Some(post_to) = &self.settings.post_to else {
            return Err(
                "the room takes no invites over HTTP: it runs without `[room] http` (`--http`)"
                    .into(),
            );
        };
        let token = new_token();
        let expires = crate::store::now_ms() as u64 + INVITE_LIFETIME.as_millis() as u64;
        self.store
            .add_room_invite(&token_hash(&token), expires)
            .map_err(|e| format!("the room cannot write its store: {e}"))?;
        Ok(invite_link(&token, post_to))
    }

    /// Whether `peer` may make invites from afar: anyone in an open room,
    /// members and admins in a community one, admins in a restricted one.
    fn may_invite(&self, peer: &FeedId) -> bool {
        let admin = self.settings.admins.contains(peer);
        match self.settings.mode {
            Mode::Open => true,
            Mode::Community => admin || self.admits(peer),
            Mode::Restricted => admin,
        }
    }

    /// Whether the room keeps aliases: not a restricted one.
    fn has_aliases(&self) -> bool {
        self.settings.mode != Mode::Restricted
    }

    /// `room.registerAlias(alias, signature)` from `peer`: the alias's
    /// link, or why not.
    fn register_alias(&self, peer: &FeedId, alias: &str, signature: &str) -> Result<Json, String> {
        if !self.has_aliases() {
            return Err("a restricted room keeps no aliases".into());
        }
        check_alias(alias)?;
        let sig = parse_signature(signature)
            .ok_or_else(|| "the signature is not 64 bytes of base64".to_string())?;
        if !alias_signed(&self.me, peer, alias, &sig) {
            return Err(format!(
                "the signature is not yours of {:?}",
                alias_confirmation(&self.me, peer, alias)
            ));
        }
        match self.store.register_room_alias(alias, peer, &sig) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(why.to_string()),
            Err(e) => return Err(format!("the room cannot write its store: {e}")),
        }
        tracing::info!("{peer} registered the alias {alias:?}");
        let link = self.alias_link(alias)?;
        Ok(json!(link.uri()))
    }

    /// What `alias` resolves to here.
    fn alias_link(&self, alias: &str) -> Result<AliasLink, String> {
        let found = self
            .store
            .room_alias(alias)
            .map_err(|e| format!("the room cannot read its store: {e}"))?;
        let found = found.ok_or_else(|| format!("no alias {alias:?} in this room"))?;
        let address = (self.address)().ok_or("the room does not know its own address")?;
        Ok(AliasLink {
            alias: alias.to_string(),
            user: found.feed,
            room: self.me,
            address,
            signature: found.signature,
        })
    }

    /// Serves the room's HTTP endpoint on `server` until the process ends:
    /// `POST /invite/consume` with `{"id": FEED, "invite": TOKEN}` claims
    /// the invite for FEED (see [`crate::store::Store::claim_room_invite`])
    /// and answers `{"status":"successful","multiserverAddress":…}`; `GET
    /// /ALIAS?encoding=json` answers what the alias resolves to, `GET
    /// /ALIAS` a page with its `consume-alias` link; anything else, an
    /// error with a reason. Bodies are read up to 4 KiB.
    pub fn serve_http(self: Arc<Self>, server: tiny_http::Server) {
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                self.answer_http(req);
            }
        });
    }

    fn answer_http(&self, mut req: tiny_http::Request) {
        let respond = |req: tiny_http::Request, status: u16, kind: &str, body: String| {
            let header =
                tiny_http::Header::from_bytes("Content-Type", kind).expect("a valid header");
            let response = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(header);
            let _ = req.respond(response);
        };
        let answer = |req, status: u16, body: Json| {
            respond(req, status, "application/json", body.to_string());
        };
        let fail = |req, status: u16, why: &str| {
            answer(req, status, json!({"status": "error", "error": why}));
        };
        let url = req.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        if req.method() == &tiny_http::Method::Get && self.has_aliases() {
            let alias = path.trim_start_matches('/');
            if check_alias(alias).is_err() {
                return fail(req, 404, "not found");
            }
            let json_wanted = query.split('&').any(|kv| kv == "encoding=json");
            return match self.alias_link(alias) {
                Ok(link) if json_wanted => answer(req, 200, link.json()),
                Ok(link) => {
                    let uri = link.uri();
                    let page = format!(
                        "<!doctype html><meta charset=utf-8><title>{alias}</title>\
                         <p>{alias} at this room is {user}.</p>\
                         <p><a href=\"{href}\">Connect with {alias}</a> in a Scuttlebutt app.</p>\n",
                        user = link.user,
                        href = uri.replace('&', "&amp;")
                    );
                    respond(req, 200, "text/html; charset=utf-8", page)
                }
                Err(why) => fail(req, 404, &why),
            };
        }
        if req.method() != &tiny_http::Method::Post || path != "/invite/consume" {
            return fail(req, 404, "not found");
        }
        let mut body = Vec::new();
        let read =
            std::io::Read::read_to_end(&mut std::io::Read::take(req.as_reader(), 4096), &mut body);
        let asked: Option<(FeedId, String)> = read
            .ok()
            .and_then(|_| serde_json::from_slice::<Json>(&body).ok())
            .and_then(|v| {
                let id = v.get("id")?.as_str().and_then(FeedId::parse)?;
                let token = v.get("invite")?.as_str()?.to_string();
                Some((id, token))
            });
        let Some((id, token)) = asked else {
            return fail(req, 400, "expected {\"id\": FEED, \"invite\": TOKEN}");
        };
        let now = crate::store::now_ms() as u64;
        match self.store.claim_room_invite(&token_hash(&token), &id, now) {
            Ok(Ok(())) => {
                tracing::info!("{id} joined the room with an invite");
                answer(
                    req,
                    200,
                    json!({"status": "successful", "multiserverAddress": (self.address)()}),
                )
            }
            Ok(Err(why)) => fail(req, 403, &why.to_string()),
            Err(e) => {
                tracing::warn!("room invite: {e}");
                fail(req, 500, "the room cannot read its store")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FeedId, Attendant>> {
        self.attendants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `peer` may attend: anyone in an open room, members else.
    pub fn admits(&self, peer: &FeedId) -> bool {
        self.settings.mode == Mode::Open || self.store.is_room_member(peer).unwrap_or(false)
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
        let second = req.args.get(1).cloned().unwrap_or(Json::Null);
        match (name.as_slice(), req.responder) {
            (["tunnel", "isRoom"] | ["room", "metadata"], Responder::Async(a)) => {
                let member = self.settings.mode != Mode::Open && self.admits(&peer);
                let meta = metadata(
                    &self.settings.name,
                    member,
                    self.settings.post_to.is_some(),
                    self.has_aliases(),
                );
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
            (["room", "createInvite"], Responder::Async(a)) => {
                match self.make_invite(Some(&peer)) {
                    Ok(link) => {
                        tracing::info!("{peer} made an invite");
                        let _ = a.ok(Body::Json(Bytes::from(json!(link).to_string()))).await;
                    }
                    Err(why) => {
                        let _ = a.err(&why).await;
                    }
                }
            }
            (["room", "registerAlias"], Responder::Async(a)) => {
                let alias = arg.as_str().unwrap_or_default();
                let sig = second.as_str().unwrap_or_default();
                match self.register_alias(&peer, alias, sig) {
                    Ok(answer) => {
                        let _ = a.ok(Body::Json(Bytes::from(answer.to_string()))).await;
                    }
                    Err(why) => {
                        let _ = a.err(&why).await;
                    }
                }
            }
            (["room", "revokeAlias"], Responder::Async(a)) => {
                let alias = arg.as_str().unwrap_or_default();
                match self.store.revoke_room_alias(alias, &peer) {
                    Ok(true) => {
                        tracing::info!("{peer} revoked the alias {alias:?}");
                        let _ = a.ok(Body::json_true()).await;
                    }
                    Ok(false) => {
                        let _ = a.err(&format!("you have no alias {alias:?} here")).await;
                    }
                    Err(e) => {
                        let _ = a
                            .err(&format!("the room cannot write its store: {e}"))
                            .await;
                    }
                }
            }
            (["room", "listAliases"], Responder::Async(a)) => {
                let who = arg.as_str().and_then(FeedId::parse).unwrap_or(peer);
                let aliases: Vec<String> = self
                    .store
                    .room_alias_of(&who)
                    .ok()
                    .flatten()
                    .filter(|_| self.has_aliases())
                    .into_iter()
                    .collect();
                let _ = a
                    .ok(Body::Json(Bytes::from(json!(aliases).to_string())))
                    .await;
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
    /// either ends or the tunnel is idle for `tunnel_idle`.
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
                pipe(
                    o_source,
                    t_sink,
                    t_source,
                    o_sink,
                    self.settings.tunnel_idle,
                )
                .await;
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
/// ends or nothing moves for `idle`; then ends both.
async fn pipe(
    mut a_in: SourceStream,
    b_out: DuplexSink,
    mut b_in: SourceStream,
    a_out: DuplexSink,
    idle: Duration,
) {
    // What the room sees: at trace level (`SHOAL_LOG=shoal::room=trace`),
    // every relayed item in hex, so that anyone can check it is ciphertext.
    let seen = |dir: &str, body: &Body| {
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!("relayed {dir} {}", hex::encode(body.bytes()));
        }
    };
    loop {
        let moved = tokio::time::timeout(idle, async {
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
            ] | [
                "room",
                "metadata"
                    | "attendants"
                    | "createInvite"
                    | "registerAlias"
                    | "revokeAlias"
                    | "listAliases"
            ]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    /// What a hostile member sends as `room.registerAlias`: another's
    /// signature, its own for another alias or room, or no signature.
    #[test]
    fn a_room_registers_an_alias_only_with_the_members_own_signature_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let room = Keypair::from_seed(&[0x53; 32]);
        let store =
            Arc::new(crate::store::Store::open_as(&dir.path().join("s.redb"), &room).unwrap());
        let settings = Settings {
            name: "test".into(),
            mode: Mode::Open,
            admins: Vec::new(),
            tunnel_idle: Duration::from_secs(600),
            post_to: None,
        };
        let address = format!("net:127.0.0.1:8008~shs:{}", room.id().b64());
        let server = RoomServer::new(room.id(), settings, store, move || Some(address.clone()));
        let (bob, mallory) = (
            Keypair::from_seed(&[0x54; 32]),
            Keypair::from_seed(&[0x55; 32]),
        );
        let other_room = Keypair::from_seed(&[0x56; 32]).id();
        for (alias, sig) in [
            ("bob", sign_alias(&mallory, &room.id(), "bob")),
            ("bob", sign_alias(&bob, &room.id(), "bobby")),
            ("bob", sign_alias(&bob, &other_room, "bob")),
            ("bob", String::new()),
            ("Bob", sign_alias(&bob, &room.id(), "Bob")),
        ] {
            assert!(
                server.register_alias(&bob.id(), alias, &sig).is_err(),
                "{alias} {sig}"
            );
        }
        assert!(server.alias_link("bob").is_err(), "nothing was kept");
        let uri = server
            .register_alias(&bob.id(), "bob", &sign_alias(&bob, &room.id(), "bob"))
            .unwrap();
        let link = server.alias_link("bob").unwrap();
        assert_eq!(link.user, bob.id());
        assert_eq!(uri, json!(link.uri()));
    }

    #[test]
    fn an_alias_is_a_lower_case_domain_label() {
        for ok in ["alice", "a", "bob-1994", "0day", &"x".repeat(63)] {
            assert_eq!(check_alias(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-bob",
            "bob-",
            "a.b",
            "a b",
            "ålice",
            "a/b",
            &"x".repeat(64),
        ] {
            assert!(check_alias(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_alias_link_holds_only_with_its_owners_signature_of_room_user_and_alias() {
        let room = Keypair::from_seed(&[0x50; 32]);
        let bob = Keypair::from_seed(&[0x51; 32]);
        let mallory = Keypair::from_seed(&[0x52; 32]);
        let address = format!("net:room.example:8008~shs:{}", room.id().b64());
        let sig = sign_alias(&bob, &room.id(), "bob");
        let (r, b, m) = (
            room.id().to_string(),
            bob.id().to_string(),
            mallory.id().to_string(),
        );
        let link = AliasLink::new("bob", &b, &r, &address, &sig).unwrap();
        // Through its URI and back.
        let Ok(crate::uri::Uri::Experimental { action, params }) = crate::uri::parse(&link.uri())
        else {
            panic!("{}", link.uri())
        };
        assert_eq!(action, "consume-alias");
        assert_eq!(AliasLink::from_params(&params), Ok(link.clone()));
        assert_eq!(AliasLink::from_json(&link.json()), Ok(link));
        // The confirmation as rooms 2.0 writes it.
        assert_eq!(
            alias_confirmation(&room.id(), &bob.id(), "bob"),
            format!("=room-alias-registration:{r}:{b}:bob")
        );
        // Another user, alias or room under the same signature; another's
        // signature; an address that is not the room's.
        let other_room = format!("net:room.example:8008~shs:{}", mallory.id().b64());
        for (alias, user, room_id, addr, sig) in [
            ("bob", m.as_str(), r.as_str(), address.as_str(), sig.clone()),
            ("bobby", &b, &r, &address, sig.clone()),
            ("bob", &b, &m, &other_room, sig.clone()),
            (
                "bob",
                &b,
                &r,
                &address,
                sign_alias(&mallory, &room.id(), "bob"),
            ),
            ("bob", &b, &r, &other_room, sig.clone()),
            ("bob", &b, &r, &address, "AAAA.sig.ed25519".into()),
        ] {
            assert!(
                AliasLink::new(alias, user, room_id, addr, &sig).is_err(),
                "{alias} {user} {room_id} {addr}"
            );
        }
    }
}
