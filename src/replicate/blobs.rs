//! The blobs protocol of `ssb-blobs` on every peer connection.
//!
//! Owns what blobs we want and from whom we fetch them, and what we serve.
//! Each side reads the other's `blobs.createWants` stream: objects of
//! `{BLOB_ID: n}`, where `n < 0` is a want `-n` hops away and `n > 0` is
//! "I have it, `n` bytes". Its first object is every want of the sender;
//! then come new wants and haves, as they happen. A want we can answer is
//! answered on our stream to that peer with the size; one we cannot is
//! forwarded one hop further (as ssb-blobs does, up to [`SYMPATHY`] hops).
//! A wanted blob a peer has is fetched with `blobs.get({key, max})`, hashed
//! while it streams and stored only when its sha256 is its id (see
//! [`crate::blobs`]); then every peer is told we have it. We serve
//! `blobs.get`, `blobs.getSlice`, `blobs.has`, `blobs.size` and
//! `blobs.createWants`.
//!
//! Bounded whatever peers send: at most [`MAX_WANTS`] wants (a flood of
//! made-up ids is dropped past it), [`MAX_IDS_PER_OBJECT`] ids read from
//! one object, [`MAX_AVAILABLE`] haves remembered per peer, a fetch
//! stops at the store's `max_blob_bytes` and after [`FETCH_IDLE`] without a
//! byte, and a blob being fetched is held as a temporary file, never in
//! memory (a few 64 KiB pieces in flight).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value as Json, json};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::{broadcast, mpsc};

use crate::blobs::Blobs;
use crate::crypto::{BlobId, FeedId};
use crate::rpc::{Body, DuplexSink, Incoming, Responder, RpcHandle};

/// How many hops a want is forwarded at most (ssb-blobs' `sympathy`).
pub const SYMPATHY: i64 = 3;
/// Most wants held at once, ours and those forwarded for peers.
pub const MAX_WANTS: usize = 4096;
/// Most ids read from one object of a peer's want stream.
pub const MAX_IDS_PER_OBJECT: usize = 1024;
/// Most blobs remembered as available at one peer.
pub const MAX_AVAILABLE: usize = 4096;
/// A fetch that receives nothing for this long is given up.
pub const FETCH_IDLE: Duration = Duration::from_secs(60);
/// The pieces a blob is served in.
const PIECE: usize = 64 * 1024;

#[derive(Default)]
struct Peer {
    rpc: Option<RpcHandle>,
    /// What it has: id → size.
    available: HashMap<BlobId, u64>,
    /// Answers meant for this peer's want stream only.
    replies: Option<mpsc::UnboundedSender<Vec<(BlobId, i64)>>>,
}

#[derive(Default)]
struct State {
    /// id → hops (negative), ours at -1.
    want: HashMap<BlobId, i64>,
    getting: HashSet<BlobId>,
    peers: HashMap<FeedId, Peer>,
}

/// The blobs side of every connection of a node.
pub struct BlobSync {
    blobs: Arc<Blobs>,
    state: Mutex<State>,
    /// Changes every peer's want stream carries.
    changes: broadcast::Sender<Arc<Vec<(BlobId, i64)>>>,
    /// Told of each blob stored from a peer.
    on_stored: Box<dyn Fn(BlobId) + Send + Sync>,
    stored: broadcast::Sender<BlobId>,
}

impl BlobSync {
    /// The blobs protocol over `blobs`; `on_stored` is told of each blob
    /// fetched and stored.
    pub fn new(blobs: Arc<Blobs>, on_stored: impl Fn(BlobId) + Send + Sync + 'static) -> BlobSync {
        BlobSync {
            blobs,
            state: Mutex::default(),
            changes: broadcast::channel(256).0,
            on_stored: Box::new(on_stored),
            stored: broadcast::channel(256).0,
        }
    }

    /// The blob store.
    pub fn store(&self) -> &Arc<Blobs> {
        &self.blobs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Told of each blob fetched from a peer.
    pub fn subscribe(&self) -> broadcast::Receiver<BlobId> {
        self.stored.subscribe()
    }

    /// Wants (`hops` < 0) and haves (`hops` > 0) told to every peer.
    fn tell_all(&self, items: Vec<(BlobId, i64)>) {
        if !items.is_empty() {
            let _ = self.changes.send(Arc::new(items));
        }
    }

    /// We want `id` ourselves: asked of every peer, fetched from the first
    /// that has it. Nothing when we hold it.
    pub fn want(self: &Arc<Self>, id: BlobId) {
        if self.blobs.size(&id).is_some() {
            return;
        }
        let from = {
            let mut st = self.lock();
            if st.want.get(&id) == Some(&-1) {
                return;
            }
            st.want.insert(id, -1);
            holder(&st, &id, self.blobs.max())
        };
        self.tell_all(vec![(id, -1)]);
        if let Some(peer) = from {
            self.fetch(peer, id);
        }
    }

    /// A blob of ours was added: every peer is told we have it.
    pub fn added(&self, id: BlobId, size: u64) {
        self.lock().want.remove(&id);
        self.tell_all(vec![(id, size.max(1) as i64)]);
    }

    /// Runs the blobs side of a connection with `peer` until it ends:
    /// reads its want stream and acts on it. Returns at once when the peer
    /// does not speak the blobs protocol.
    pub async fn run(self: Arc<Self>, peer: FeedId, rpc: RpcHandle) {
        self.lock().peers.entry(peer).or_default().rpc = Some(rpc.clone());
        // However this ends (also when dropped with the session), the peer
        // goes.
        let _gone = Gone {
            sync: self.clone(),
            peer,
        };
        match rpc.call_source(&["blobs", "createWants"], json!([])).await {
            Ok(mut source) => {
                tracing::debug!("{peer}: reading its blob wants");
                while let Some(Ok(body)) = source.recv().await {
                    let Body::Json(bytes) = body else { continue };
                    let Ok(Json::Object(map)) = serde_json::from_slice::<Json>(&bytes) else {
                        continue;
                    };
                    self.heard(peer, &map);
                }
            }
            Err(e) => tracing::debug!("{peer}: blobs.createWants: {e}"),
        }
        // The peer stays (we serve it, fetch from it) until the connection
        // ends.
        rpc.closing().await;
    }

    /// One object of `peer`'s want stream.
    fn heard(self: &Arc<Self>, peer: FeedId, map: &Map<String, Json>) {
        tracing::debug!("{peer}: {} blob wants and haves", map.len());
        let mut replies = Vec::new();
        let mut forward = Vec::new();
        let mut fetch = Vec::new();
        let max = self.blobs.max();
        // Read, and the store asked what it holds, before the lock.
        let items: Vec<(BlobId, i64, Option<u64>)> = map
            .iter()
            .take(MAX_IDS_PER_OBJECT)
            .filter_map(|(key, n)| Some((BlobId::parse(key)?, n.as_i64()?)))
            .map(|(id, n)| (id, n, if n < 0 { self.blobs.size(&id) } else { None }))
            .collect();
        {
            let mut st = self.lock();
            for (id, n, held) in items {
                if n < 0 {
                    if let Some(size) = held {
                        replies.push((id, size.max(1) as i64));
                        continue;
                    }
                    let hops = n.saturating_sub(1);
                    if hops.abs() > SYMPATHY {
                        continue;
                    }
                    let closer = st.want.get(&id).is_none_or(|&w| w < hops);
                    let room = st.want.len() < MAX_WANTS || st.want.contains_key(&id);
                    if closer && room {
                        st.want.insert(id, hops);
                        forward.push((id, hops));
                        if let Some(from) = holder(&st, &id, max) {
                            fetch.push((from, id));
                        }
                    }
                } else if n > 0 {
                    let p = st.peers.entry(peer).or_default();
                    if p.available.len() < MAX_AVAILABLE || p.available.contains_key(&id) {
                        p.available.insert(id, n as u64);
                    }
                    if st.want.contains_key(&id) && !st.getting.contains(&id) && (n as u64) <= max {
                        fetch.push((peer, id));
                    }
                }
            }
            if !replies.is_empty()
                && let Some(tx) = st.peers.get(&peer).and_then(|p| p.replies.as_ref())
            {
                let _ = tx.send(std::mem::take(&mut replies));
            }
        }
        self.tell_all(forward);
        for (from, id) in fetch {
            self.fetch(from, id);
        }
    }

    /// Fetches `id` from `peer` in the background, unless it is being
    /// fetched already; on failure, from another peer that has it.
    fn fetch(self: &Arc<Self>, peer: FeedId, id: BlobId) {
        let rpc = {
            let mut st = self.lock();
            if st.getting.contains(&id) {
                return;
            }
            let Some(rpc) = st.peers.get(&peer).and_then(|p| p.rpc.clone()) else {
                return;
            };
            st.getting.insert(id);
            rpc
        };
        let this = self.clone();
        tokio::spawn(async move {
            let got = this.get_from(&rpc, id).await;
            let next = {
                let mut st = this.lock();
                st.getting.remove(&id);
                match &got {
                    Ok(_) => {
                        st.want.remove(&id);
                        None
                    }
                    Err(_) => {
                        if let Some(p) = st.peers.get_mut(&peer) {
                            p.available.remove(&id);
                        }
                        holder(&st, &id, this.blobs.max())
                    }
                }
            };
            match got {
                Ok(size) => {
                    tracing::debug!("{peer}: got blob {id} ({size} bytes)");
                    this.tell_all(vec![(id, size.max(1) as i64)]);
                    (this.on_stored)(id);
                    let _ = this.stored.send(id);
                }
                Err(e) => {
                    tracing::info!("{peer}: blob {id} refused: {e}");
                    if let Some(other) = next {
                        this.fetch(other, id);
                    }
                }
            }
        });
    }

    /// Streams `id` from a peer into the store; its size.
    async fn get_from(&self, rpc: &RpcHandle, id: BlobId) -> Result<u64, String> {
        let max = self.blobs.max();
        let mut source = rpc
            .call_source(
                &["blobs", "get"],
                json!([{"key": id.to_string(), "max": max}]),
            )
            .await
            .map_err(|e| e.to_string())?;
        // The file is written on a blocking thread, a few pieces behind.
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let blobs = self.blobs.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = blobs.writer(Some(id)).map_err(|e| e.to_string())?;
            while let Some(piece) = rx.blocking_recv() {
                w.write(&piece).map_err(|e| e.to_string())?;
            }
            w.finish().map(|(_, size)| size).map_err(|e| e.to_string())
        });
        let streamed = async {
            loop {
                let item = tokio::time::timeout(FETCH_IDLE, source.recv())
                    .await
                    .map_err(|_| format!("nothing for {} s", FETCH_IDLE.as_secs()))?;
                match item {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(Body::Binary(b) | Body::Text(b))) => {
                        if tx.send(b).await.is_err() {
                            // The writer stopped: it says why.
                            return Ok(());
                        }
                    }
                    Some(Ok(Body::Json(_))) => return Err("a JSON piece in a blob".into()),
                }
            }
        };
        let streamed: Result<(), String> = streamed.await;
        drop(tx);
        let written = writer.await.map_err(|e| e.to_string())?;
        streamed?;
        written
    }

    /// Answers a `blobs.*` request of `peer`.
    pub async fn answer(self: Arc<Self>, peer: FeedId, req: Incoming) {
        let method = req.name.get(1).cloned().unwrap_or_default();
        let arg = req.args.get(0).cloned().unwrap_or(Json::Null);
        match (method.as_str(), req.responder) {
            ("createWants", Responder::Stream(s)) => {
                let (sink, _source) = s.into_parts();
                self.serve_wants(peer, sink).await;
            }
            ("get", Responder::Stream(s)) => {
                let (sink, _source) = s.into_parts();
                let ask = Slice::of_get(&arg);
                self.serve_blob(ask, sink).await;
            }
            ("getSlice", Responder::Stream(s)) => {
                let (sink, _source) = s.into_parts();
                let ask = Slice::of_get_slice(&arg);
                self.serve_blob(ask, sink).await;
            }
            ("has", Responder::Async(a)) => {
                let answer = match &arg {
                    Json::Array(ids) if ids.len() <= MAX_IDS_PER_OBJECT => ids
                        .iter()
                        .map(|i| self.size_of(i).map(|s| Json::Bool(s.is_some())))
                        .collect::<Option<Vec<Json>>>()
                        .map(Json::Array),
                    one => self.size_of(one).map(|s| Json::Bool(s.is_some())),
                };
                let _ = match answer {
                    Some(v) => a.ok(Body::Json(Bytes::from(v.to_string()))).await,
                    None => a.err(&format!("invalid id: {arg}")).await,
                };
            }
            ("size", Responder::Async(a)) => {
                let _ = match self.size_of(&arg) {
                    Some(s) => {
                        let v = s.map_or(Json::Null, Json::from);
                        a.ok(Body::Json(Bytes::from(v.to_string()))).await
                    }
                    None => a.err(&format!("invalid id: {arg}")).await,
                };
            }
            (_, responder) => {
                let _ = responder.not_found().await;
            }
        }
    }

    /// The size of the blob an argument names (`None`: not an id).
    fn size_of(&self, arg: &Json) -> Option<Option<u64>> {
        let id = match arg {
            Json::String(s) => BlobId::parse(s),
            Json::Object(o) => o.get("id").and_then(Json::as_str).and_then(BlobId::parse),
            _ => None,
        }?;
        Some(self.blobs.size(&id))
    }

    /// Our want stream to `peer`: every want first, then changes and our
    /// answers to its wants, until either side ends.
    async fn serve_wants(&self, peer: FeedId, sink: DuplexSink) {
        let (tx, mut replies) = mpsc::unbounded_channel();
        let mut changes = self.changes.subscribe();
        let first: Map<String, Json> = {
            let mut st = self.lock();
            st.peers.entry(peer).or_default().replies = Some(tx);
            st.want
                .iter()
                .map(|(id, n)| (id.to_string(), Json::from(*n)))
                .collect()
        };
        let send = |items: &[(BlobId, i64)]| {
            let map: Map<String, Json> = items
                .iter()
                .map(|(id, n)| (id.to_string(), Json::from(*n)))
                .collect();
            Body::Json(Bytes::from(Json::Object(map).to_string()))
        };
        if sink
            .send(Body::Json(Bytes::from(Json::Object(first).to_string())))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let body = tokio::select! {
                got = changes.recv() => match got {
                    Ok(items) => send(&items),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                got = replies.recv() => match got {
                    Some(items) => send(&items),
                    None => break,
                },
            };
            if sink.send(body).await.is_err() {
                break;
            }
        }
    }

    /// Streams (part of) a blob in pieces, or an error when we do not hold
    /// it or it does not fit what was asked.
    async fn serve_blob(&self, ask: Option<Slice>, sink: DuplexSink) {
        let Some(ask) = ask else {
            let _ = sink.error("invalid blob id").await;
            return;
        };
        let path = self.blobs.path(&ask.id);
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            let _ = sink.error(&format!("could not get blob {}", ask.id)).await;
            return;
        };
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if ask.size.is_some_and(|s| s != size) {
            let _ = sink.error("incorrect file length").await;
            return;
        }
        if ask.max.is_some_and(|m| size > m) {
            let _ = sink.error("file too long").await;
            return;
        }
        let end = ask.end.map_or(size, |e| e.min(size));
        if ask.start > end {
            let _ = sink
                .error(&format!(
                    "slice {}..{end} is out of range ({size} bytes)",
                    ask.start
                ))
                .await;
            return;
        }
        let start = ask.start;
        if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
            let _ = sink.error("cannot read the blob").await;
            return;
        }
        let mut left = end.saturating_sub(start);
        let mut buf = vec![0u8; PIECE];
        while left > 0 {
            let want = (left as usize).min(PIECE);
            match file.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    left -= n as u64;
                    if sink
                        .send(Body::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink.end().await;
    }
}

/// Removes a peer's entry when its connection's blobs side ends.
struct Gone {
    sync: Arc<BlobSync>,
    peer: FeedId,
}

impl Drop for Gone {
    fn drop(&mut self) {
        self.sync.lock().peers.remove(&self.peer);
    }
}

/// A peer that has `id` (within `max` bytes), when one does.
fn holder(st: &State, id: &BlobId, max: u64) -> Option<FeedId> {
    st.peers
        .iter()
        .find(|(_, p)| p.rpc.is_some() && p.available.get(id).is_some_and(|&s| s <= max))
        .map(|(k, _)| *k)
}

/// What `blobs.get` or `blobs.getSlice` asks for.
#[derive(Debug, PartialEq, Eq)]
struct Slice {
    id: BlobId,
    size: Option<u64>,
    max: Option<u64>,
    start: u64,
    end: Option<u64>,
}

impl Slice {
    /// `blobs.get(id)` or `blobs.get({key|id, size, max})`.
    fn of_get(arg: &Json) -> Option<Slice> {
        let (id, o) = match arg {
            Json::String(s) => (BlobId::parse(s)?, None),
            Json::Object(o) => {
                let key = o.get("key").or_else(|| o.get("id"))?.as_str()?;
                (BlobId::parse(key)?, Some(o))
            }
            _ => return None,
        };
        let num = |k: &str| o.and_then(|o| o.get(k)).and_then(Json::as_u64);
        Some(Slice {
            id,
            size: num("size"),
            max: num("max"),
            start: 0,
            end: None,
        })
    }

    /// `blobs.getSlice({key|id, start, end, size, max})`.
    fn of_get_slice(arg: &Json) -> Option<Slice> {
        let mut s = Slice::of_get(arg)?;
        let o = arg.as_object()?;
        s.start = o.get("start").and_then(Json::as_u64).unwrap_or(0);
        s.end = o.get("end").and_then(Json::as_u64);
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_arguments_as_ssb_blobs_takes_them() {
        let id = BlobId::of(b"x");
        let text = id.to_string();
        assert_eq!(Slice::of_get(&json!(text)).unwrap().id, id);
        let s = Slice::of_get(&json!({"key": text, "size": 1, "max": 5})).unwrap();
        assert_eq!((s.size, s.max, s.start, s.end), (Some(1), Some(5), 0, None));
        let s = Slice::of_get_slice(&json!({"id": text, "start": 2, "end": 9})).unwrap();
        assert_eq!((s.start, s.end), (2, Some(9)));
        for bad in [
            json!("&notbase64.sha256"),
            json!(format!("&{}.sha256", "A".repeat(43))),
            json!({"key": 5}),
            json!(null),
            json!(["x"]),
        ] {
            assert!(Slice::of_get(&bad).is_none(), "{bad}");
        }
    }
}
