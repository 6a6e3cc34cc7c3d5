//! One replication session with one peer over muxrpc.
//!
//! Owns what happens on a connection once it is authenticated: answering the
//! peer's requests (`createHistoryStream`, `ebt.replicate`, `gossip.ping`,
//! `whoami`, `blobs.*` through [`super::blobs`], anything else "no such
//! method"), opening EBT when we dialled,
//! pinging the peer on a quiet connection (`gossip.ping`),
//! falling back to legacy `createHistoryStream` pulls, streaming old and
//! live messages, and handing what arrives to the shared ingest
//! [`Pipeline`]. A message that fails validation ends that feed's stream
//! from this peer and is logged; nothing of it is stored.
//!
//! What a peer can make a session hold is bounded whatever it sends and
//! however little it reads: one `ebt.replicate` stream of the peer's at a
//! time per connection; EBT state per feed we replicate or hold plus
//! [`MAX_UNKNOWN_FEEDS`](super::ebt::MAX_UNKNOWN_FEEDS) others; what the
//! EBT sender still has to do coalesced per feed; at most [`HISTORY_PAGES`]
//! pages of `createHistoryStream` read and not yet queued per connection.
//! A peer that sends invalid messages of more than [`MAX_REFUSED_FEEDS`]
//! feeds on one EBT stream loses the connection.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt as _;
use serde_json::{Value as Json, json};
use tokio::sync::{Notify, Semaphore, broadcast, mpsc};

use super::ebt::{Actions, Ebt, Note};
use super::newest::Want;
use crate::crypto::FeedId;
use crate::feed;
use crate::ingest::limits::{Limits, Rate, Usage};
use crate::ingest::{LineResult, Pipeline};
use crate::rpc::{Body, DuplexSink, Incoming, Responder, RpcHandle, SourceStream};
use crate::store::Store;

/// Messages handed to the pipeline at once.
const SUBMIT_MAX: usize = 2048;
/// How long a receiving session waits for more messages to fill a batch.
const BATCH_WAIT: Duration = Duration::from_millis(5);
/// Batches one EBT session has in the pipeline at once (being checked,
/// queued for the writer, or written) at most, while it gathers the next.
/// With two, a session gathered nothing while one batch was checked and
/// one written, and the checkers could wait on it: a first sync over EBT
/// alone took about a tenth longer (README "Import").
const EBT_IN_FLIGHT: usize = 4;
/// The bytes those batches may hold before a session stops gathering more:
/// a peer sending the largest messages gets no more memory than with two
/// batches in flight, and one sending the usual few hundred bytes each
/// fills all four.
const EBT_IN_FLIGHT_BYTES: usize = 8 << 20;
/// Messages read from the store per page when streaming to a peer.
const PAGE: usize = 256;
/// How long an accepted connection waits for the peer to open EBT before
/// pulling with `createHistoryStream` instead.
const EBT_GRACE: Duration = Duration::from_millis(1500);
/// Pages of `createHistoryStream` one connection holds at once (read from
/// the store, not yet queued for the peer): the peer may open a thousand
/// streams and read none.
const HISTORY_PAGES: usize = 4;
/// Feeds a peer may send invalid messages of on one EBT stream before we
/// close the connection.
const MAX_REFUSED_FEEDS: usize = 256;
/// Notes sent in one EBT packet at most (a packet body holds 1 MiB).
const NOTES_PER_PACKET: usize = 4096;

/// How often a session looks whether the contact graph changed (one
/// atomic read; the feeds to replicate are recomputed only when it did).
const WANTED_CHECK: Duration = Duration::from_millis(250);

/// What the peer's requests on one connection share.
struct ConnLimits {
    /// One permit per history page held (see [`HISTORY_PAGES`]).
    pages: Semaphore,
    /// The peer's `ebt.replicate` stream: one at a time.
    ebt: Arc<Semaphore>,
}

/// How long a claim of our own feed is left to EBT before it is fetched
/// by history stream instead (when nothing of it came meanwhile).
const OWN_FETCH_GRACE: Duration = Duration::from_secs(2);

/// What the sessions hear of one commit of the store: each feed it added
/// to, once, with the highest sequence it stored of that feed. One notice
/// per commit, not per message: a first sync commits a few dozen times.
pub type Committed = Arc<[(FeedId, u64)]>;

/// What the sessions of one node share.
pub struct Replicator {
    /// The store (reads; writes go through the pipeline).
    pub store: Arc<Store>,
    /// Checks and stores what peers send.
    pub pipeline: Pipeline,
    /// Our feed.
    pub me: FeedId,
    /// How far along follows to replicate.
    pub hops: u8,
    /// Every commit of messages, from any source (see [`Committed`]).
    pub appended: broadcast::Sender<Committed>,
    /// What peers may make us take.
    pub limits: Limits,
    /// What the limits did.
    pub usage: Arc<Usage>,
    /// How often to ping the peer with `gossip.ping` (none: never), so
    /// that a quiet connection is not closed by either side's idle timeout.
    pub ping_every: Option<Duration>,
    /// What the sessions saw of each feed (claims, errors).
    pub watch: Arc<super::watch::Watch>,
    /// The feeds to replicate as of the latest contact graph, shared by
    /// every session: computed once per change of the graph.
    pub wanted_now: WantedNow,
    /// The blobs protocol, on every connection.
    pub blobs: Arc<super::blobs::BlobSync>,
    /// How many of a followed feed's newest messages are fetched first
    /// when we hold nothing of it (0: feeds are fetched from the start).
    pub newest_count: u64,
    /// Feeds a session is fetching a range of (see [`super::newest`]): one
    /// session at a time per feed.
    pub fetching: Mutex<HashSet<FeedId>>,
    /// What ranges read and not yet stored may take in memory.
    pub range_budget: super::newest::RangeBudget,
    /// Services of later layers (a room, tunnels through one) answering
    /// requests replication does not: set once, when the node starts.
    pub services: std::sync::OnceLock<Vec<Arc<dyn Service>>>,
}

/// Answers some of a peer's requests on a connection (a room's methods,
/// tunnels through one), for a layer above replication.
pub trait Service: Send + Sync {
    /// Whether it answers the method `name`.
    fn handles(&self, name: &[String]) -> bool;
    /// Answers one request of `peer`, whose connection is `rpc`.
    fn answer(
        self: Arc<Self>,
        peer: FeedId,
        rpc: RpcHandle,
        req: Incoming,
    ) -> futures::future::BoxFuture<'static, ()>;
}

/// The feeds to replicate, with the contact-graph generation they were
/// computed at (see [`Replicator::wanted_now`]).
#[derive(Default)]
pub struct WantedNow(Mutex<Option<(u64, Wanted)>>);

/// The feeds to replicate, and those of them we follow directly.
#[derive(Clone, Default)]
pub struct Wanted {
    /// Every feed to replicate.
    pub all: Arc<HashSet<FeedId>>,
    /// Those at one hop: the feeds we follow.
    pub direct: Arc<HashSet<FeedId>>,
}

fn now_ms() -> u64 {
    crate::store::now_ms() as u64
}

impl Replicator {
    /// The feeds we replicate, and those we follow directly.
    fn wanted(&self) -> Wanted {
        match self.store.replication_set(&self.me, self.hops) {
            Ok(set) => Wanted {
                direct: Arc::new(
                    set.iter()
                        .filter(|(_, h)| **h == 1)
                        .map(|(f, _)| *f)
                        .collect(),
                ),
                all: Arc::new(set.into_keys().collect()),
            },
            Err(e) => {
                tracing::error!("cannot read the contact graph: {e}");
                Wanted {
                    all: Arc::new(HashSet::from([self.me])),
                    direct: Arc::default(),
                }
            }
        }
    }

    /// The feeds we replicate as of the contact graph now, and the graph's
    /// generation: one computation per change of the graph, however many
    /// sessions (and the peer picker) ask.
    pub fn wanted_now(&self) -> (u64, Arc<HashSet<FeedId>>) {
        let (generation, w) = self.wanted_now_all();
        (generation, w.all)
    }

    /// [`Replicator::wanted_now`], with the feeds we follow directly.
    pub fn wanted_now_all(&self) -> (u64, Wanted) {
        let generation = self.store.contacts_generation();
        let mut cache = self
            .wanted_now
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match cache.as_ref() {
            Some((g, w)) if *g == generation => (generation, w.clone()),
            _ => {
                let w = self.wanted();
                *cache = Some((generation, w.clone()));
                (generation, w)
            }
        }
    }

    fn latest_all(&self) -> HashMap<FeedId, u64> {
        self.store
            .feeds()
            .map(|v| v.into_iter().map(|(f, s)| (f, s.sequence)).collect())
            .unwrap_or_default()
    }

    /// Runs a session until the connection ends. `dialer` is whether we
    /// opened the connection (then we open EBT).
    pub async fn run(
        self: Arc<Self>,
        peer: FeedId,
        rpc: RpcHandle,
        mut incoming: mpsc::Receiver<Incoming>,
        dialer: bool,
    ) {
        let (ebt_started_tx, mut ebt_started) = mpsc::channel::<()>(1);
        let limits = Arc::new(ConnLimits {
            pages: Semaphore::new(HISTORY_PAGES),
            ebt: Arc::new(Semaphore::new(1)),
        });
        // Answer the peer's requests.
        let serve = {
            let this = self.clone();
            let rpc = rpc.clone();
            async move {
                while let Some(req) = incoming.recv().await {
                    let this = this.clone();
                    let ebt_started_tx = ebt_started_tx.clone();
                    let (limits, rpc) = (limits.clone(), rpc.clone());
                    tokio::spawn(async move {
                        this.answer(peer, req, ebt_started_tx, &limits, &rpc).await;
                    });
                }
            }
        };
        // Our side of replication.
        let pull = {
            let this = self.clone();
            let rpc = rpc.clone();
            async move {
                if dialer {
                    let mut reopened = 0;
                    loop {
                        let args = json!([{"version": 3, "format": "classic"}]);
                        match rpc.call_duplex(&["ebt", "replicate"], args).await {
                            Ok((sink, source)) => {
                                match this.clone().ebt(peer, sink, source, true, &rpc).await {
                                    EbtEnd::Refused => {}
                                    EbtEnd::Replaced if reopened < EBT_REOPENS => {
                                        reopened += 1;
                                        tracing::debug!(
                                            "{peer}: our ebt stream was replaced by another connection's; opening it again"
                                        );
                                        tokio::time::sleep(EBT_REOPEN_WAIT).await;
                                        continue;
                                    }
                                    EbtEnd::Replaced | EbtEnd::Ended => return,
                                }
                            }
                            Err(e) => tracing::debug!("{peer}: ebt.replicate refused: {e}"),
                        }
                        break;
                    }
                    this.legacy_pull(peer, &rpc).await;
                } else {
                    let opened = tokio::time::timeout(EBT_GRACE, ebt_started.recv()).await;
                    if opened.is_err() {
                        // A peer whose EBT request reaches us late (a
                        // busy node answers a crowd of new connections
                        // slowly) is replicated by EBT from then on: the
                        // pull's history streams, one per feed we
                        // replicate, are closed rather than kept beside it.
                        tokio::select! {
                            () = this.legacy_pull(peer, &rpc) => {}
                            Some(()) = ebt_started.recv() => {
                                tracing::debug!("{peer}: opened ebt late; ending our history-stream pull");
                            }
                        }
                    }
                }
            }
        };
        let keep_alive = async {
            if let Some(every) = self.ping_every {
                keep_alive(peer, &rpc, every).await;
            }
            std::future::pending::<()>().await
        };
        let blobs = async {
            self.blobs.clone().run(peer, rpc.clone()).await;
            std::future::pending::<()>().await
        };
        if peer == self.me {
            tokio::spawn(self.clone().met_twin(rpc.clone()));
        }
        tokio::select! {
            _ = serve => {}
            _ = async { pull.await; std::future::pending::<()>().await } => {}
            _ = keep_alive => {}
            _ = blobs => {}
            _ = rpc.closing() => {}
        }
        self.watch.forget_peer(&peer);
    }

    /// Answers one request of the peer.
    async fn answer(
        self: Arc<Self>,
        peer: FeedId,
        req: Incoming,
        ebt_started: mpsc::Sender<()>,
        limits: &ConnLimits,
        rpc: &RpcHandle,
    ) {
        if req.name.first().is_some_and(|n| n == "blobs") {
            return self.blobs.clone().answer(peer, req).await;
        }
        let service = self
            .services
            .get()
            .and_then(|all| all.iter().find(|s| s.handles(&req.name)).cloned());
        if let Some(service) = service {
            return service.answer(peer, rpc.clone(), req).await;
        }
        let name: Vec<&str> = req.name.iter().map(String::as_str).collect();
        match (name.as_slice(), req.responder) {
            (["createHistoryStream"], Responder::Stream(s)) => {
                let opts = req.args.get(0).cloned().unwrap_or(Json::Null);
                let (sink, _source) = s.into_parts();
                self.serve_history(opts, sink, &limits.pages).await;
            }
            (["ebt", "replicate"], Responder::Stream(s)) => {
                let opts = req.args.get(0).cloned().unwrap_or(Json::Null);
                let version = opts.get("version").and_then(Json::as_u64);
                let format = opts.get("format").and_then(Json::as_str);
                if !matches!(version, Some(2 | 3)) || !matches!(format, None | Some("classic")) {
                    let _ = s.error("unsupported ebt version or format").await;
                    return;
                }
                let Ok(_one) = limits.ebt.clone().try_acquire_owned() else {
                    tracing::debug!("{peer}: refused a second ebt.replicate stream");
                    let _ = s.error("ebt.replicate is already open").await;
                    return;
                };
                let _ = ebt_started.try_send(());
                let (sink, source) = s.into_parts();
                self.ebt(peer, sink, source, false, rpc).await;
            }
            (["gossip", "ping"], Responder::Stream(s)) => {
                let (sink, mut source) = s.into_parts();
                while let Some(Ok(_)) = source.recv().await {
                    let now = crate::store::now_ms() as u64;
                    if sink
                        .send(Body::Json(Bytes::from(now.to_string())))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                let _ = sink.end().await;
            }
            // Only to another home of our own identity: when it was made.
            (["shoal", "home"], Responder::Async(a)) if peer == self.me => {
                let stamp = self.store.home_stamp().unwrap_or([0; 16]);
                let body = json!({"made": hex::encode(stamp)}).to_string();
                let _ = a.ok(Body::Json(Bytes::from(body))).await;
            }
            (["whoami"], Responder::Async(a)) => {
                let body = Body::Json(Bytes::from(json!({"id": self.me.to_string()}).to_string()));
                let _ = a.ok(body).await;
            }
            (_, responder) => {
                tracing::debug!("{peer}: no such method {}", req.name.join("."));
                let _ = responder.not_found().await;
            }
        }
    }

    /// Serves `createHistoryStream({id, seq|sequence, live, old, keys, limit})`,
    /// holding one of `pages` while it holds a page of messages.
    async fn serve_history(&self, opts: Json, sink: DuplexSink, pages: &Semaphore) {
        let Some(id) = opts
            .get("id")
            .and_then(Json::as_str)
            .and_then(FeedId::parse)
        else {
            let _ = sink.error("createHistoryStream needs an id").await;
            return;
        };
        let from = opts
            .get("sequence")
            .or_else(|| opts.get("seq"))
            .and_then(Json::as_f64)
            .unwrap_or(0.0)
            .max(0.0) as u64;
        let flag = |k: &str, default: bool| opts.get(k).and_then(Json::as_bool).unwrap_or(default);
        let (live, old, keys) = (flag("live", false), flag("old", true), flag("keys", true));
        let mut limit = opts
            .get("limit")
            .and_then(Json::as_f64)
            .filter(|l| *l >= 0.0)
            .map_or(u64::MAX, |l| l as u64);
        // Subscribe before reading so nothing stored meanwhile is missed.
        let mut appended = self.appended.subscribe();
        // `after`: the last sequence the peer has (or need not get).
        let mut after = from.saturating_sub(1);
        if !old {
            after = after.max(
                self.store
                    .latest(&id)
                    .ok()
                    .flatten()
                    .map_or(0, |s| s.sequence),
            );
        }
        loop {
            // Send everything stored after `after`.
            loop {
                if limit == 0 {
                    let _ = sink.end().await;
                    return;
                }
                let n = PAGE.min(limit.min(usize::MAX as u64) as usize);
                let Ok(_page) = pages.acquire().await else {
                    return;
                };
                let store = self.store.clone();
                let page =
                    match tokio::task::spawn_blocking(move || store.feed(&id, after, n)).await {
                        Ok(Ok(p)) => p,
                        _ => {
                            let _ = sink.error("store read failed").await;
                            return;
                        }
                    };
                let got = page.len();
                let bodies = page
                    .into_iter()
                    .map(|m| Body::Json(Bytes::from(if keys { m.to_kvt() } else { m.json })))
                    .collect();
                if sink.send_all(bodies).await.is_err() {
                    return;
                }
                after += got as u64;
                limit -= got as u64;
                if got < n {
                    break;
                }
            }
            if !live {
                let _ = sink.end().await;
                return;
            }
            // Wait for more of this feed.
            loop {
                match appended.recv().await {
                    Ok(c) if c.iter().any(|&(f, s)| f == id && s > after) => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                if !sink.is_open() {
                    return;
                }
            }
        }
    }

    /// Pulls every wanted feed with `createHistoryStream` (legacy
    /// replication), live, until the connection ends.
    async fn legacy_pull(self: Arc<Self>, peer: FeedId, rpc: &RpcHandle) {
        let rate = Arc::new(Mutex::new(Rate::new(self.limits.peer_rate)));
        let (mut generation, mut wanted) = self.wanted_now();
        let mut pulled: HashSet<FeedId> = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut graph = tokio::time::interval(WANTED_CHECK);
        graph.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Every wanted feed not pulled yet: at the start, and each one
            // that becomes wanted during the session.
            let latest = self.latest_all();
            let mut fresh: Vec<FeedId> = wanted.difference(&pulled).copied().collect();
            fresh.sort();
            for feed in fresh {
                pulled.insert(feed);
                let seq = latest.get(&feed).copied().unwrap_or(0) + 1;
                let args =
                    json!([{"id": feed.to_string(), "seq": seq, "live": true, "keys": false}]);
                let rpc = rpc.clone();
                let this = self.clone();
                let rate = rate.clone();
                tasks.spawn(async move {
                    match rpc.call_source(&["createHistoryStream"], args).await {
                        Ok(source) => {
                            if !this.receive_stream(peer, feed, source, &rate).await {
                                rpc.goodbye().await;
                            }
                        }
                        Err(e) => tracing::debug!("{peer}: createHistoryStream {feed}: {e}"),
                    }
                });
            }
            loop {
                tokio::select! {
                    done = tasks.join_next() => {
                        if done.is_none() {
                            return;
                        }
                    }
                    _ = graph.tick() => {
                        if self.store.contacts_generation() != generation {
                            (generation, wanted) = self.wanted_now();
                            if wanted.difference(&pulled).next().is_some() {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Receives one feed's history stream into the pipeline; `false` when
    /// the peer is to be dropped (the daily byte budget is spent).
    async fn receive_stream(
        &self,
        peer: FeedId,
        feed: FeedId,
        mut source: SourceStream,
        rate: &Mutex<Rate>,
    ) -> bool {
        let refused = Arc::new(Mutex::new(HashSet::new()));
        let wanted = Arc::new(HashSet::from([feed]));
        loop {
            let Some(first) = source.recv().await else {
                return true;
            };
            let mut items = Vec::with_capacity(SUBMIT_MAX);
            match first {
                Ok(b) => items.push(body_bytes(b)),
                Err(e) => {
                    tracing::debug!("{peer}: history of {feed} ended: {e}");
                    return true;
                }
            }
            while items.len() < SUBMIT_MAX {
                match source.recv().now_or_never() {
                    Some(Some(Ok(b))) => items.push(body_bytes(b)),
                    _ => break,
                }
            }
            if !self.admit(peer, &items, rate).await {
                return false;
            }
            let mut stored = 0u64;
            let mut has = Vec::new();
            for r in self
                .pipeline
                .submit_from(items, Some(refused.clone()), Some(wanted.clone()))
                .await
            {
                match r {
                    LineResult::Stored(f, seq) => {
                        stored += 1;
                        has.push((f, seq));
                    }
                    LineResult::Duplicate(f, seq) => has.push((f, seq)),
                    LineResult::Rejected(reason) => {
                        tracing::warn!(
                            "{peer}: rejected a message of {feed}: {reason}; ending that feed's stream"
                        );
                        self.watch.error(feed, peer, &reason, now_ms());
                        return true;
                    }
                }
            }
            if stored > 0 {
                self.watch.served(peer, feed, stored, now_ms());
            }
            self.own_served(peer, &has);
        }
    }

    /// Connected to another home of our own identity: of the two, the one
    /// made later publishes from now on, the other no more (kept in the
    /// store), so that the two never both publish the next message.
    async fn met_twin(self: Arc<Self>, rpc: RpcHandle) {
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            rpc.call_async(&["shoal", "home"], json!([])),
        )
        .await;
        let theirs = match answer {
            Ok(Ok(Body::Json(b))) => serde_json::from_slice::<Json>(&b)
                .ok()
                .and_then(|v| v["made"].as_str().and_then(|h| hex::decode(h).ok())),
            _ => None,
        };
        let ours = self.store.home_stamp().unwrap_or([0; 16]);
        match theirs {
            Some(theirs) if theirs.as_slice() > ours.as_slice() => {
                tracing::warn!(
                    "another home of our identity, made later, is connected: it publishes from now on, this home no more"
                );
                if let Err(e) = self.store.note_moved(now_ms()) {
                    tracing::error!("cannot keep that another home publishes: {e}");
                }
            }
            Some(_) => tracing::warn!(
                "another home of our identity, made earlier, is connected: this home publishes, that one no more"
            ),
            // Another client running our identity, or a home that did
            // not answer: it may publish, so this home does not.
            None => {
                tracing::warn!(
                    "another peer with our own identity is connected and did not say when it was made: this home publishes no more"
                );
                if let Err(e) = self.store.note_moved(now_ms()) {
                    tracing::error!("cannot keep that another home publishes: {e}");
                }
            }
        }
    }

    /// `peer` claims our own feed up to `seq`: kept in the store (which
    /// then holds our publishing until we have that much, see
    /// [`crate::store::OwnHold`]); answers whether we should fetch it.
    fn own_claimed(&self, peer: FeedId, seq: u64) -> bool {
        if let Err(e) = self.store.note_own_claim(&peer, seq, now_ms()) {
            tracing::error!("cannot keep {peer}'s claim of our feed: {e}");
        }
        let held = self
            .store
            .latest(&self.me)
            .ok()
            .flatten()
            .map_or(0, |s| s.sequence);
        if seq > held {
            tracing::warn!(
                "{peer} claims our own feed up to {seq}, we hold {held}: publishing waits until we have it"
            );
        }
        seq > held
    }

    /// What `peer` gave us (stored or already held) of our own feed counts
    /// as its claim: so a restore completes once a peer that holds our
    /// feed has given it.
    fn own_served(&self, peer: FeedId, has: &[(FeedId, u64)]) {
        let most = has
            .iter()
            .filter(|(f, _)| *f == self.me)
            .map(|(_, s)| *s)
            .max();
        if let Some(seq) = most
            && let Err(e) = self.store.note_own_claim(&peer, seq, now_ms())
        {
            tracing::error!("cannot keep what {peer} gave of our feed: {e}");
        }
    }

    /// Fetches our own feed from `peer` with a history stream from what we
    /// hold: what a peer claims over EBT it may not send there (ssb-server
    /// remembers the clock it last saw of a feed, so it believes a
    /// restored home holds what it held before).
    async fn fetch_own(self: Arc<Self>, peer: FeedId, rpc: RpcHandle, claim: u64) {
        let held_now = || {
            self.store
                .latest(&self.me)
                .ok()
                .flatten()
                .map_or(0, |s| s.sequence)
        };
        // Over EBT it may come after all (a peer that saw our clock of 0):
        // the history stream is asked for only once nothing more comes
        // there while we lack some of what the peer claims.
        let held = loop {
            let before = held_now();
            tokio::time::sleep(OWN_FETCH_GRACE).await;
            let held = held_now();
            if held >= claim {
                return;
            }
            if held == before {
                break held;
            }
        };
        let args =
            json!([{"id": self.me.to_string(), "seq": held + 1, "live": false, "keys": false}]);
        match rpc.call_source(&["createHistoryStream"], args).await {
            Ok(source) => {
                let rate = Mutex::new(Rate::new(self.limits.peer_rate));
                if !self.receive_stream(peer, self.me, source, &rate).await {
                    rpc.goodbye().await;
                }
            }
            Err(e) => tracing::debug!("{peer}: createHistoryStream of our feed: {e}"),
        }
    }

    /// Holds a batch from `peer` to the limits: waits while the peer is
    /// over its rate (we read nothing more from it meanwhile, so it is
    /// slowed), and answers `false` when the batch would go past the
    /// day's byte budget (the peer is then dropped; nothing is taken).
    pub(super) async fn admit(&self, peer: FeedId, batch: &[Bytes], rate: &Mutex<Rate>) -> bool {
        let bytes: u64 = batch.iter().map(|b| b.len() as u64).sum();
        if !self.usage.charge_day(bytes, self.limits.max_bytes_per_day) {
            tracing::warn!(
                "{peer}: the day's byte budget ({} bytes, max_bytes_per_day) is spent; dropping the peer",
                self.limits.max_bytes_per_day
            );
            self.usage.dropped();
            return false;
        }
        let wait = rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(batch.len(), tokio::time::Instant::now());
        if let Some(wait) = wait {
            tracing::debug!("{peer}: over peer_rate; waiting {wait:?}");
            self.usage.slowed();
            tokio::time::sleep(wait).await;
        }
        true
    }

    /// Runs EBT on an open duplex stream, and says how it ended (see
    /// [`EbtEnd`]). Closes the connection (`rpc`) when the peer sends
    /// invalid messages of more than [`MAX_REFUSED_FEEDS`] feeds.
    async fn ebt(
        self: Arc<Self>,
        peer: FeedId,
        sink: DuplexSink,
        mut source: SourceStream,
        we_opened: bool,
        rpc: &RpcHandle,
    ) -> EbtEnd {
        // What we ask this peer for: nothing else is taken from it.
        let (mut generation, all) = self.wanted_now_all();
        let mut wanted = all.all.clone();
        let local = self.latest_all();
        let rate = Mutex::new(Rate::new(self.limits.peer_rate));
        let mut state = Ebt::new((*wanted).clone(), local.clone());
        // Feeds we follow and hold nothing of: their newest messages first
        // (see `super::newest`); and the older history of those held from
        // above sequence 1.
        let newest_first = |state: &mut Ebt, direct: &HashSet<FeedId>| {
            if self.newest_count > 0 {
                let fresh = direct.iter().filter(|f| **f != self.me).copied();
                state.newest_first(fresh, self.newest_count);
            }
        };
        newest_first(&mut state, &all.direct);
        let partial: HashSet<FeedId> = self
            .store
            .partial_feeds()
            .map(|p| p.into_iter().map(|(f, _)| f).collect())
            .unwrap_or_default();
        let (wants, wants_rx) = mpsc::channel(super::newest::QUEUED);
        let (fetched_tx, mut fetched) = mpsc::channel(super::newest::QUEUED);
        let _fetcher = AbortOnDrop(tokio::spawn(super::newest::run(
            self.clone(),
            peer,
            rpc.clone(),
            wants_rx,
            fetched_tx,
        )));
        // The contact graph is looked at this often: a feed that becomes
        // wanted is asked for in this session, not the next.
        let mut graph = tokio::time::interval(WANTED_CHECK);
        graph.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let sink = Arc::new(sink);
        let outbox = Arc::new(Outbox::default());
        // Ends with this function, however it ends (also when dropped).
        let _sender = AbortOnDrop(tokio::spawn(send_loop(
            self.store.clone(),
            self.appended.subscribe(),
            sink.clone(),
            local,
            outbox.clone(),
        )));
        outbox.apply(state.start());
        let mut got_anything = false;
        let mut end = EbtEnd::Ended;
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let mut flight = InFlight::default();
        // Feeds this peer sent an invalid message of: nothing more of them
        // is taken from it, even from batches already submitted.
        let refused = Arc::new(Mutex::new(HashSet::new()));
        // The most this peer claims of our own feed in a packet, and our
        // fetch of what it claims beyond what we hold (see `own_claimed`).
        let own_claim = std::sync::atomic::AtomicU64::new(0);
        let mut own_fetch: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                item = source.recv(), if flight.may_gather(in_flight.len()) => {
                    let body = match item {
                        Some(Ok(b)) => b,
                        Some(Err(e)) => {
                            tracing::debug!("{peer}: ebt ended: {e}");
                            if e.to_string().contains(EBT_REPLACED) {
                                end = EbtEnd::Replaced;
                                break;
                            }
                            if we_opened && !got_anything {
                                return EbtEnd::Refused;
                            }
                            break;
                        }
                        None => break,
                    };
                    got_anything = true;
                    let mut batch: Vec<Bytes> = Vec::new();
                    let watch = &self.watch;
                    let asked = &wanted;
                    let handle = |b: Body, batch: &mut Vec<Bytes>, state: &mut Ebt| {
                        let bytes = body_bytes(b);
                        if is_message(&bytes) {
                            batch.push(bytes);
                            None
                        } else {
                            let notes = parse_notes(&bytes);
                            let now = now_ms();
                            for (feed, note) in notes.iter().filter(|(f, _)| asked.contains(f)) {
                                let seq = match note {
                                    Note::Have { seq, .. } => Some(*seq),
                                    Note::Skip => None,
                                };
                                if *feed == self.me {
                                    own_claim.fetch_max(seq.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                                }
                                if seq.is_some_and(|s| s > 0) && partial.contains(feed) {
                                    let _ = wants.try_send(Want::Older(*feed));
                                }
                                watch.claim(peer, *feed, seq, now);
                            }
                            Some(state.on_notes(&notes))
                        }
                    };
                    let mut actions = Vec::new();
                    actions.extend(handle(body, &mut batch, &mut state));
                    // Gather a batch: what is queued, and while messages keep
                    // coming, up to BATCH_WAIT for more (larger batches verify
                    // and commit far more cheaply; live latency grows by at
                    // most BATCH_WAIT).
                    let deadline = tokio::time::Instant::now() + BATCH_WAIT;
                    while batch.len() < SUBMIT_MAX {
                        let next = match source.recv().now_or_never() {
                            Some(n) => n,
                            None if batch.is_empty() => break,
                            None => match tokio::time::timeout_at(deadline, source.recv()).await {
                                Ok(n) => n,
                                Err(_) => break,
                            },
                        };
                        match next {
                            Some(Ok(b)) => actions.extend(handle(b, &mut batch, &mut state)),
                            _ => break,
                        }
                    }
                    for a in actions {
                        for (feed, seq) in &a.fetch_newest {
                            let _ = wants.try_send(Want::Newest(*feed, *seq));
                        }
                        outbox.apply(a);
                    }
                    let claimed_own = own_claim.swap(0, std::sync::atomic::Ordering::Relaxed);
                    if claimed_own > 0
                        && self.own_claimed(peer, claimed_own)
                        && own_fetch.as_ref().is_none_or(|f| f.is_finished())
                    {
                        let fetch = self.clone().fetch_own(peer, rpc.clone(), claimed_own);
                        own_fetch = Some(tokio::spawn(fetch));
                    }
                    if !batch.is_empty() && !self.admit(peer, &batch, &rate).await {
                        rpc.goodbye().await;
                        break;
                    }
                    if !batch.is_empty() {
                        // Drop messages of feeds this peer is no longer trusted for.
                        let accepted: Vec<Bytes> = if state.any_refused() {
                            batch
                                .into_iter()
                                .filter(|b| claimed(b).is_none_or(|f| state.accepts(&f)))
                                .collect()
                        } else {
                            batch
                        };
                        let pipeline = self.pipeline.clone();
                        let refused = refused.clone();
                        let wanted = wanted.clone();
                        flight.sent(&accepted);
                        in_flight.push_back(async move {
                            // The same buffers (not copies): kept to
                            // name the feed of any the checker refuses.
                            let results = pipeline
                                .submit_from(accepted.clone(), Some(refused), Some(wanted))
                                .await;
                            (accepted, results)
                        });
                    }
                }
                _ = graph.tick() => {
                    if self.store.contacts_generation() != generation {
                        let all;
                        (generation, all) = self.wanted_now_all();
                        wanted = all.all.clone();
                        newest_first(&mut state, &all.direct);
                        outbox.apply(state.want((*wanted).clone()));
                    }
                    // Newest messages another session fetched meanwhile.
                    for feed in state.waiting_newest() {
                        if let Ok(Some(s)) = self.store.latest(&feed) {
                            outbox.apply(state.newest_held(&feed, s.sequence));
                            // Its older history, should that session end
                            // before it is in.
                            let _ = wants.try_send(Want::Older(feed));
                        }
                    }
                }
                Some((feed, held)) = fetched.recv() => {
                    outbox.apply(match held {
                        Some(seq) => state.newest_held(&feed, seq),
                        None => state.newest_failed(&feed),
                    });
                }
                Some((items, results)) = futures::StreamExt::next(&mut in_flight) => {
                    flight.back(&items);
                    let mut has = Vec::new();
                    let mut served: HashMap<FeedId, u64> = HashMap::new();
                    for (item, r) in items.iter().zip(results) {
                        if let LineResult::Stored(feed, _) = r {
                            *served.entry(feed).or_default() += 1;
                        }
                        match r {
                            LineResult::Stored(feed, seq) | LineResult::Duplicate(feed, seq) => {
                                state.received(&feed, seq);
                                has.push((feed, seq));
                            }
                            LineResult::Rejected(reason) => {
                                let Some(feed) = claimed(item) else { continue };
                                if state.accepts(&feed) {
                                    // Kept only for feeds we asked for: a
                                    // peer naming any feed it likes cannot
                                    // fill the table.
                                    if wanted.contains(&feed) {
                                        self.watch.error(feed, peer, &reason, now_ms());
                                    }
                                    tracing::warn!("{peer}: rejected a message of {feed}: {reason}; no longer taking it from this peer");
                                    outbox.apply(state.refuse(&feed));
                                }
                            }
                        }
                    }
                    let now = now_ms();
                    for (feed, n) in served {
                        self.watch.served(peer, feed, n, now);
                    }
                    self.own_served(peer, &has);
                    outbox.peer_has(has);
                    let bad = refused.lock().unwrap_or_else(PoisonError::into_inner).len();
                    if bad > MAX_REFUSED_FEEDS {
                        tracing::warn!(
                            "{peer}: sent invalid messages of {bad} feeds (limit {MAX_REFUSED_FEEDS}); closing the connection"
                        );
                        rpc.goodbye().await;
                        break;
                    }
                }
            }
        }
        while futures::StreamExt::next(&mut in_flight).await.is_some() {}
        end
    }
}

/// The bytes of the batches one EBT session has handed to the pipeline
/// and not yet had back: it gathers another batch only while it has fewer
/// than [`EBT_IN_FLIGHT`] and these are under [`EBT_IN_FLIGHT_BYTES`].
#[derive(Debug, Default)]
struct InFlight {
    bytes: usize,
}

impl InFlight {
    fn may_gather(&self, batches: usize) -> bool {
        batches < EBT_IN_FLIGHT && self.bytes < EBT_IN_FLIGHT_BYTES
    }

    fn sent(&mut self, batch: &[Bytes]) {
        self.bytes += batch.iter().map(Bytes::len).sum::<usize>();
    }

    fn back(&mut self, batch: &[Bytes]) {
        self.bytes -= batch.iter().map(Bytes::len).sum::<usize>();
    }
}

/// How an EBT stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EbtEnd {
    /// The peer refused the stream we opened at once (no such method):
    /// we pull with `createHistoryStream` instead.
    Refused,
    /// The peer ended it because another connection of ours opened one
    /// (see [`EBT_REPLACED`]).
    Replaced,
    /// It ended otherwise: the peer ended it or the connection closes.
    Ended,
}

/// What ssb-ebt ends a peer's EBT stream with when another connection
/// of the same peer opens one (it keeps one stream per peer): "Error:
/// reconnected to peer". Two connections opened at once, as two peers
/// meeting in a room each open a tunnel, leave one stream on the
/// connection that lives on ended this way after the other closed; the
/// dialler opens it again there, or neither side replicates for the rest
/// of the connection.
const EBT_REPLACED: &str = "reconnected to peer";
/// How long the dialler waits before opening an EBT stream the peer
/// replaced (the other connection is closing meanwhile).
const EBT_REOPEN_WAIT: Duration = Duration::from_secs(1);
/// How many times one connection opens a replaced EBT stream again.
const EBT_REOPENS: u32 = 3;

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What an EBT session's sending task has to do, coalesced per feed: it
/// holds at most one note and one cursor per feed of the session, however
/// much the peer sends and however little it reads.
#[derive(Default)]
struct Outbox {
    todo: Mutex<Todo>,
    /// Wakes the sending task after a change.
    wake: Notify,
}

#[derive(Default)]
struct Todo {
    /// Notes to send before any further message: the latest per feed.
    notes: BTreeMap<FeedId, Note>,
    /// Feeds to stream, with the next sequence to send.
    cursors: HashMap<FeedId, u64>,
}

impl Outbox {
    fn update(&self, change: impl FnOnce(&mut Todo)) {
        change(&mut self.todo.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_one();
    }

    /// Notes to send, feeds to stream from a sequence on, feeds to stop.
    fn apply(&self, a: Actions) {
        if a == Actions::default() {
            return;
        }
        self.update(|t| {
            t.notes.extend(a.notes);
            for (f, from) in a.send_from {
                let c = t.cursors.entry(f).or_insert(from);
                *c = (*c).min(from).max(1);
            }
            for f in a.stop {
                t.cursors.remove(&f);
            }
        });
    }

    /// The peer holds these feeds up to these sequences: do not send them
    /// that far again.
    fn peer_has(&self, has: Vec<(FeedId, u64)>) {
        if has.is_empty() {
            return;
        }
        self.update(|t| {
            for (f, seq) in has {
                if let Some(c) = t.cursors.get_mut(&f)
                    && *c <= seq
                {
                    *c = seq + 1;
                }
            }
        });
    }
}

/// Streams the feeds the peer wants: notes first, then old messages page
/// by page, then live ones as they are stored, round-robin across feeds.
async fn send_loop(
    store: Arc<Store>,
    mut appended: broadcast::Receiver<Committed>,
    sink: Arc<DuplexSink>,
    mut latest: HashMap<FeedId, u64>,
    outbox: Arc<Outbox>,
) {
    loop {
        let (notes, ready) = {
            let mut t = outbox.todo.lock().unwrap_or_else(PoisonError::into_inner);
            // Feeds with something to send.
            let ready: Vec<(FeedId, u64)> = t
                .cursors
                .iter()
                .filter(|(f, next)| latest.get(*f).is_some_and(|l| l >= *next))
                .map(|(f, n)| (*f, *n))
                .collect();
            (std::mem::take(&mut t.notes), ready)
        };
        let notes: Vec<(FeedId, Note)> = notes.into_iter().collect();
        for chunk in notes.chunks(NOTES_PER_PACKET) {
            if send_notes(&sink, chunk).await.is_err() {
                return;
            }
        }
        if ready.is_empty() {
            tokio::select! {
                () = outbox.wake.notified() => {}
                a = appended.recv() => match a {
                    Ok(c) => note_stored(&mut latest, &c),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let store = store.clone();
                        if let Ok(Ok(feeds)) = tokio::task::spawn_blocking(move || store.feeds()).await {
                            latest = feeds.into_iter().map(|(f, s)| (f, s.sequence)).collect();
                        }
                    }
                    Err(_) => return,
                },
            }
            continue;
        }
        for (feed, next) in ready {
            let store = store.clone();
            let page = match tokio::task::spawn_blocking(move || store.feed(&feed, next - 1, PAGE))
                .await
            {
                Ok(Ok(p)) => p,
                _ => return,
            };
            let got = page.len();
            let bodies = page
                .into_iter()
                .map(|m| Body::Json(Bytes::from(m.json)))
                .collect();
            if sink.send_all(bodies).await.is_err() {
                return;
            }
            {
                let mut t = outbox.todo.lock().unwrap_or_else(PoisonError::into_inner);
                // Unless the peer asked meanwhile to start further back.
                if let Some(c) = t.cursors.get_mut(&feed)
                    && *c >= next
                {
                    *c = (*c).max(next + got as u64);
                }
            }
            if got == 0 {
                // The store holds less than we thought.
                latest.insert(feed, next - 1);
            }
        }
        while let Ok(c) = appended.try_recv() {
            note_stored(&mut latest, &c);
        }
    }
}

/// Raises `latest` to what a commit stored.
fn note_stored(latest: &mut HashMap<FeedId, u64>, stored: &Committed) {
    for &(f, s) in stored.iter() {
        let l = latest.entry(f).or_insert(0);
        *l = (*l).max(s);
    }
}

async fn send_notes(
    sink: &DuplexSink,
    notes: &[(FeedId, Note)],
) -> Result<(), crate::rpc::RpcError> {
    if notes.is_empty() {
        return Ok(());
    }
    let map: serde_json::Map<String, Json> = notes
        .iter()
        .map(|(f, n)| (f.to_string(), Json::from(n.encode())))
        .collect();
    sink.send(Body::Json(Bytes::from(Json::Object(map).to_string())))
        .await
}

pub(super) fn body_bytes(b: Body) -> Bytes {
    match b {
        Body::Json(b) | Body::Text(b) | Body::Binary(b) => b,
    }
}

/// Whether an EBT item is a message rather than notes: notes are an object
/// whose keys are feed ids (`{"@…": n}`), a message's first key is
/// `previous`. Only the first key is looked at, so this costs nothing per
/// byte of the message.
fn is_message(b: &[u8]) -> bool {
    let mut rest = b.iter().skip_while(|c| c.is_ascii_whitespace());
    if rest.next() != Some(&b'{') {
        return false;
    }
    let mut rest = rest.skip_while(|c| c.is_ascii_whitespace());
    rest.next() == Some(&b'"') && rest.next() != Some(&b'@')
}

/// Pings the peer every `every`, from `every` after the connection opened,
/// on a `gossip.ping` stream of ours (the answers are read and dropped), until the peer ends the stream or does
/// not know the method; then a quiet connection is left to the timeouts.
async fn keep_alive(peer: FeedId, rpc: &RpcHandle, every: Duration) {
    tokio::time::sleep(every).await;
    let args = json!([{ "timeout": every.as_millis() as u64 }]);
    let (sink, mut source) = match rpc.call_duplex(&["gossip", "ping"], args).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("{peer}: gossip.ping: {e}");
            return;
        }
    };
    let answers = async { while let Some(Ok(_)) = source.recv().await {} };
    let pings = async {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = crate::store::now_ms() as u64;
            if sink
                .send(Body::Json(Bytes::from(now.to_string())))
                .await
                .is_err()
            {
                return;
            }
        }
    };
    tokio::select! {
        _ = answers => {}
        _ = pings => {}
    }
}

/// The feed a message (or `{key, value}`) claims, for bookkeeping, not trust.
fn claimed(b: &[u8]) -> Option<FeedId> {
    crate::ingest::claimed_author(&feed::json::parse(b).ok()?)
}

fn parse_notes(b: &[u8]) -> Vec<(FeedId, Note)> {
    let Ok(Json::Object(map)) = serde_json::from_slice::<Json>(b) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let feed = FeedId::parse(k)?;
            let note = Note::decode(v.as_i64()?)?;
            Some((feed, note))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_and_messages_are_told_apart() {
        assert!(!is_message(br#"{"@AAAA=.ed25519": 4}"#));
        assert!(!is_message(b" { \"@x\": -1 }"));
        assert!(!is_message(b"{}"));
        assert!(is_message(
            br#"{"previous":null,"author":"@x","sequence":1}"#
        ));
        assert!(is_message(b"{ \"previous\": \"%x\" }"));
        assert!(!is_message(b"[1]"));
    }

    /// A session gathers more while few small batches are in flight, but
    /// not past [`EBT_IN_FLIGHT`] batches, nor once those hold
    /// [`EBT_IN_FLIGHT_BYTES`] (a peer sending the largest messages).
    #[test]
    fn a_session_gathers_while_few_batches_and_bytes_are_in_flight() {
        let small: Vec<Bytes> = vec![Bytes::from(vec![b'x'; 700]); SUBMIT_MAX];
        let mut flight = InFlight::default();
        for n in 0..EBT_IN_FLIGHT {
            assert!(flight.may_gather(n), "{n} batches: {flight:?}");
            flight.sent(&small);
        }
        assert!(
            !flight.may_gather(EBT_IN_FLIGHT),
            "{EBT_IN_FLIGHT} batches: {flight:?}"
        );
        flight.back(&small);
        assert!(
            flight.may_gather(EBT_IN_FLIGHT - 1),
            "one came back: {flight:?}"
        );

        let large: Vec<Bytes> =
            vec![Bytes::from(vec![b'x'; feed::msg::MAX_MESSAGE_BYTES]); SUBMIT_MAX];
        let mut flight = InFlight::default();
        flight.sent(&large);
        assert!(
            !flight.may_gather(1),
            "one batch of the largest: {flight:?}"
        );
        flight.back(&large);
        assert!(flight.may_gather(0), "{flight:?}");
        assert_eq!(flight.bytes, 0);
    }
}
