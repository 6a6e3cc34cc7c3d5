//! `Node`: the one async facade over identity, store, network and
//! replication.
//!
//! Owns the running parts of a peer: the ingest pipeline and the one store
//! writer (both in [`crate::ingest`]: every store write of a running node,
//! ours and peers', goes through that writer, never on an async thread; the
//! control socket's read commands still mark what they showed as read
//! themselves, on a blocking thread),
//! the listener, outgoing connections with reconnect and backoff, the
//! connection table and limits, and the events the UI and the CLI watch.
//! The writer announces each message it stores to the replication sessions
//! and to [`NodeEvent`] subscribers, and wakes the thread that keeps the
//! search index ([`crate::search`]) in step with the store. Everything slow
//! runs off the async threads. Imports every lower layer; only `api` and `local` import it.
//!
//! Connection limits: `max_connections` in all, of which incoming ones may
//! take all but a quarter ([`incoming_limit`]), so strangers who connect to
//! us can never take the slots of the peers we dial; sockets still in the
//! secret handshake are counted apart; one remote address (an IPv6 /64)
//! holds at most `max_connections_per_ip` incoming sockets at once; a
//! connection on which nothing arrives for `idle_timeout` is closed, and
//! each side pings the other a few times within it so that a quiet healthy
//! connection stays open.
//!
//! Invites: an incoming connection whose key is one of our invites (see
//! [`crate::invite`]) may call `invite.use` and `getAddress` only; it is
//! not replicated with, not counted among the peers, and every other
//! method is refused. A use is taken and our follow of the redeeming feed
//! published in one write of the writer.
//!
//! Dialling: the peers of the config, those added with `shoal connect` and
//! the pubs whose invites we redeemed are kept connected whatever their
//! address. The other peers we know of, `pub` announcements and peers
//! heard on the LAN ([`crate::lan`], when `lan` is on and the listener is
//! not on loopback only), are the peer picker's: one task asks
//! [`crate::dialer::pick`] every few seconds which to keep connected (a
//! few that together hold every feed we replicate, by what each held and
//! served when last connected), dials them within a dial budget, and
//! closes the connections it made that serve nothing the others do not.
//! Pubs (announced by us or a feed we follow) are dialled only at public
//! addresses unless `dial_private` is set: a host name is resolved and
//! each address it gives checked, and the dial goes to the checked
//! addresses only. Failed dials are counted in memory.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::crypto::{FeedId, Keypair};
use crate::dialer;
use crate::feed::{Value, VerifiedMsg};
use crate::home::{Home, HomeError};
use crate::ingest::limits::Usage;
use crate::ingest::{FeedCap, LineResult, Pipeline, PublishError, Writer};
use crate::invite::{self, Code, External};
use crate::net::{self, MultiAddr};
use crate::replicate::session::Replicator;
use crate::rpc;
use crate::store::{Store, StoreError};

/// What a node reports to whoever watches it. Ids only, never bodies: a
/// watcher reads what it needs from the store.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// Messages were stored (ours or a peer's), all in one commit, in the
    /// order stored: one event per commit, however many messages, so a
    /// first sync wakes each watcher a few dozen times, not once per
    /// message. The control socket still says one
    /// [`Event::Appended`](crate::api::Event::Appended) per message.
    Stored(Arc<[crate::ingest::Appended]>),
    /// A peer connected.
    Connected(FeedId),
    /// A peer disconnected.
    Disconnected(FeedId),
    /// Something worth a line in a log view.
    Log(String),
    /// A blob was stored.
    Blob(crate::crypto::BlobId),
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The home directory.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// An I/O error (listener, socket).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A bad address or setting.
    #[error("{0}")]
    Invalid(String),
    /// Too many connections.
    #[error("connection limit of {0} reached (max_connections in config.toml)")]
    TooManyConnections(usize),
    /// A pub's address is not public, and `dial_private` is off.
    #[error(
        "{address} is at {ip}, a loopback, link-local or private address: pubs are dialled there only with dial_private = true"
    )]
    NotPublic {
        /// The multiserver address announced.
        address: String,
        /// What its host is or resolves to.
        ip: IpAddr,
    },
    /// We block this peer.
    #[error("{0} is blocked")]
    Blocked(FeedId),
}

/// Which addresses a dial may go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Any (a peer the user chose).
    Any,
    /// Public ones only (a pub announced on the network).
    Public,
}

/// One live connection, as `shoal peers` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PeerInfo {
    /// The peer's feed id.
    pub id: String,
    /// Its socket address.
    pub addr: String,
    /// Whether we dialled it.
    pub outgoing: bool,
    /// Seconds since it connected.
    pub connected_secs: u64,
}

/// Replication progress of a running node (see [`Node::progress`]).
#[derive(Clone, Debug)]
pub struct Progress {
    /// Live connections.
    pub peers: usize,
    /// Feeds replication wants.
    pub feeds_wanted: u64,
    /// Of those, feeds we hold something of.
    pub feeds_held: u64,
    /// `max_connections` of the config.
    pub max_connections: usize,
    /// How many of them incoming connections may take.
    pub max_incoming: usize,
    /// Hops replicated.
    pub hops: u8,
    /// The limits on peers and today's usage.
    pub limits: serde_json::Value,
}

/// How many of `max_connections` connections incoming ones may take: all
/// but a quarter (rounded down), which is kept for the peers we dial.
pub fn incoming_limit(max_connections: usize) -> usize {
    max_connections - max_connections / 4
}

/// Incoming sockets open from each remote address, for
/// `max_connections_per_ip`.
#[derive(Debug, Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// What an address is counted as: an IPv4 address (also when written as
/// an IPv4-mapped IPv6 one) as itself; an IPv6 address by its /64, which a
/// single host is given whole.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

impl PerAddress {
    /// One more socket from `ip`, unless `max` are open from its address
    /// already (0: no limit). The slot is given back when dropped.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(key).or_default();
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

/// One incoming socket counted against its address.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Marks a peer's tunnel to us as in its handshake while it lives.
struct Arriving<'a> {
    set: &'a Mutex<std::collections::HashSet<FeedId>>,
    peer: FeedId,
    marked: bool,
}

impl<'a> Arriving<'a> {
    fn new(set: &'a Mutex<std::collections::HashSet<FeedId>>, peer: FeedId) -> Self {
        let marked = set.lock().expect("lock").insert(peer);
        Arriving { set, peer, marked }
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        if self.marked {
            self.set.lock().expect("lock").remove(&self.peer);
        }
    }
}

struct Conn {
    /// Where it is: a socket address, or `tunnel:@ROOM:@PEER~shs:KEY`.
    addr: String,
    outgoing: bool,
    /// Whether the peer picker made it (and may close it).
    picked: bool,
    since: Instant,
    rpc: rpc::RpcHandle,
}

struct Inner {
    /// The home directory.
    dir: std::path::PathBuf,
    keys: Keypair,
    /// What of the feeds far from us is kept (the `[retention]` section).
    retention: crate::store::Retention,
    /// Whether the pruning task runs.
    pruner_started: std::sync::atomic::AtomicBool,
    net_key: [u8; 32],
    store: Arc<Store>,
    repl: Arc<Replicator>,
    events: broadcast::Sender<NodeEvent>,
    conns: Mutex<HashMap<FeedId, Conn>>,
    /// Connections, incoming and outgoing, once authenticated.
    slots: Arc<Semaphore>,
    /// Incoming connections once authenticated: fewer than `slots`, so
    /// that they never take the slots kept for our dials.
    incoming: Arc<Semaphore>,
    /// Incoming sockets still in the handshake: counted apart, so that
    /// strangers who never finish it cannot keep peers out.
    handshakes: Arc<Semaphore>,
    /// Incoming sockets open per remote address.
    per_address: Arc<PerAddress>,
    max_connections: usize,
    max_per_address: usize,
    /// How long a connection may stay silent (none: for ever).
    idle_timeout: Option<Duration>,
    config_peers: Vec<String>,
    /// Whether pubs may be dialled at loopback, link-local and private
    /// addresses.
    dial_private: bool,
    /// Failed dials and when pubs may be dialled again (memory only).
    attempts: Mutex<dialer::Attempts>,
    /// Whether the peer picker's task runs.
    picker_started: std::sync::atomic::AtomicBool,
    /// Wakes the picker before its next round (a new LAN peer).
    pick_now: Arc<tokio::sync::Notify>,
    /// Whether LAN discovery may run (`lan` in the config).
    lan: bool,
    /// The peers heard on the LAN lately.
    heard: Arc<Mutex<crate::lan::Heard>>,
    /// Blobs of feeds this many hops away are fetched as their messages
    /// arrive (`blob_hops`), within `blob_budget` bytes of blobs held.
    blob_hops: u8,
    blob_budget: u64,
    /// Whether the blob fetcher's task runs.
    blobs_fetched: std::sync::atomic::AtomicBool,
    /// The room this node runs, once [`Node::serve_room`] is called.
    room: std::sync::OnceLock<Arc<crate::room::RoomServer>>,
    /// The connected peers that are rooms, and who attends each: only
    /// they may open tunnels to us.
    rooms: Mutex<HashMap<FeedId, std::collections::BTreeSet<FeedId>>>,
    /// Peers whose tunnel to us is in its handshake: we do not open one
    /// to them meanwhile.
    tunnels_arriving: Mutex<std::collections::HashSet<FeedId>>,
    shutdown: watch::Sender<bool>,
    listen_addr: Mutex<Option<SocketAddr>>,
    /// Makes every store write of the node, one at a time.
    writer: Writer,
    /// The search index, kept in step by the `shoal-search` thread (none
    /// when `[search] enabled` is off or the index could not be opened).
    search: Option<Arc<crate::search::SearchIndex>>,
}

/// Tells the replication sessions and the event subscribers of the
/// messages stored, whoever stored them (a peer, an import, a publish, a
/// group operation or duty): called by the writer after each commit, once
/// for all the messages of that commit.
struct Announce {
    appended: broadcast::Sender<crate::replicate::session::Committed>,
    events: broadcast::Sender<NodeEvent>,
}

impl Announce {
    fn stored(&self, stored: &[crate::ingest::Appended]) {
        if stored.is_empty() {
            return;
        }
        let mut top: Vec<(FeedId, u64)> = stored.iter().map(|a| (a.author, a.seq)).collect();
        // Each feed once, with its highest sequence first.
        top.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        top.dedup_by_key(|a| a.0);
        let _ = self.appended.send(top.into());
        let _ = self.events.send(NodeEvent::Stored(stored.into()));
    }
}

/// How long the search index waits at least between two commits: what
/// arrives meanwhile is committed together.
const SEARCH_COMMIT_EVERY: Duration = Duration::from_millis(500);

/// How often the search index looks at the store without being woken.
const SEARCH_RECHECK: Duration = Duration::from_secs(10);

/// Starts the thread (`shoal-search`) that keeps `index` in step with the
/// store: it catches up when it starts, then whenever the writer wakes it
/// after a commit (and every [`SEARCH_RECHECK`] regardless), committing
/// at most every [`SEARCH_COMMIT_EVERY`], so a stored message is
/// searchable within a second. It ends once the node and its store are
/// gone. Answers the waker.
fn start_indexer(
    index: Arc<crate::search::SearchIndex>,
    store: std::sync::Weak<Store>,
) -> std::sync::mpsc::SyncSender<()> {
    use std::sync::mpsc::RecvTimeoutError;
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("shoal-search".into())
        .spawn(move || {
            let mut last: Option<Instant> = None;
            loop {
                if let Some(last) = last {
                    match woken.recv_timeout(SEARCH_RECHECK) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let since = last.elapsed();
                    if since < SEARCH_COMMIT_EVERY {
                        std::thread::sleep(SEARCH_COMMIT_EVERY - since);
                    }
                    while woken.try_recv().is_ok() {}
                }
                let Some(store) = store.upgrade() else { return };
                if let Err(e) = index.catch_up(&store) {
                    tracing::warn!(error = %e, "search index: cannot catch up");
                }
                drop(store);
                last = Some(Instant::now());
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the search indexer");
    }
    wake
}

/// The node's answers to `tunnel.*` and `room.*`: a tunnel a room opens
/// to us (its `tunnel.connect` names the origin), and, when the node runs
/// a room, the room's methods.
struct Tunnels {
    node: std::sync::Weak<Inner>,
}

impl crate::replicate::session::Service for Tunnels {
    fn handles(&self, name: &[String]) -> bool {
        matches!(name.first().map(String::as_str), Some("tunnel" | "room"))
    }

    fn answer(
        self: Arc<Self>,
        peer: FeedId,
        rpc: rpc::RpcHandle,
        req: rpc::Incoming,
    ) -> futures::future::BoxFuture<'static, ()> {
        use futures::FutureExt as _;
        let node = self.node.upgrade().map(|inner| Node { inner });
        async move {
            let Some(node) = node else { return };
            let origin = req
                .args
                .get(0)
                .and_then(|a| a.get("origin"))
                .and_then(|o| o.as_str())
                .and_then(FeedId::parse);
            let connect = req
                .name
                .iter()
                .map(String::as_str)
                .eq(["tunnel", "connect"]);
            let rpc::Incoming {
                name,
                kind,
                args,
                body,
                responder,
            } = req;
            let from_room = node.inner.rooms.lock().expect("lock").contains_key(&peer);
            match (connect && from_room, origin, responder) {
                (true, Some(origin), rpc::Responder::Stream(s)) => {
                    node.accept_tunnel(peer, origin, s).await;
                }
                (_, _, responder) => match node.inner.room.get().cloned() {
                    Some(room) => {
                        let req = rpc::Incoming {
                            name,
                            kind,
                            args,
                            body,
                            responder,
                        };
                        crate::replicate::session::Service::answer(room, peer, rpc, req).await;
                    }
                    None => {
                        let _ = responder.not_found().await;
                    }
                },
            }
        }
        .boxed()
    }
}

/// How often the attendants of a room we are in that we are not
/// connected to are tried again.
const ROOM_RECHECK: Duration = Duration::from_secs(10);

/// How long the peer with the larger key waits before opening a tunnel to
/// a peer that may be opening one to it. Past the window in which the
/// JavaScript connection scheduler dials a new attendant (its updates come
/// every 2 s, each delayed 0.5 to 1.5 s): at 3 s, a shoal node and a
/// JavaScript peer could open two tunnels to each other at once, and
/// `ssb-conn-hub`, which keys connections by address (the same for both),
/// forgets the survivor when the other is closed.
const TUNNEL_SECOND_DIAL: Duration = Duration::from_secs(6);

/// Attendants remembered per room we are in.
const MAX_ATTENDANTS_KEPT: usize = 4096;

/// How many times a connection pings its peer within the idle timeout:
/// enough that a ping or its answer lost or late does not close it.
const PINGS_PER_IDLE_TIMEOUT: u32 = 3;

/// How long after it starts a node with retention limits first prunes.
pub const PRUNE_FIRST: Duration = Duration::from_secs(5);

/// How often a node with retention limits prunes after that.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A running Scuttlebutt peer. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// Opens a node on a home directory (its store stays locked while the
    /// node lives).
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        let home = Home::open(dir)?;
        let net_key = home.network_key()?;
        let store = Arc::new(home.store()?);
        let (events, _) = broadcast::channel(4096);
        let (appended, _) = broadcast::channel(1024);
        let usage = Arc::new(Usage::default());
        let announce = Announce {
            appended: appended.clone(),
            events: events.clone(),
        };
        let keys = home.keys().clone();
        let search = match home.config().search.enabled {
            true => match home.search(&store) {
                Ok(ix) => Some(Arc::new(ix)),
                Err(e) => {
                    tracing::warn!(error = %e, "search index unavailable: search is off");
                    None
                }
            },
            false => None,
        };
        let wake_search = search
            .as_ref()
            .map(|ix| start_indexer(ix.clone(), Arc::downgrade(&store)));
        let writer = Writer::start(
            store.clone(),
            keys.clone(),
            home.sign_cap().copied(),
            move |stored| {
                announce.stored(stored);
                if let Some(wake) = &wake_search {
                    // Full: a wake is already queued.
                    let _ = wake.try_send(());
                }
            },
        )
        .map_err(|e| NodeError::Invalid(format!("cannot start the store writer: {e}")))?;
        let cap = FeedCap {
            max_bytes: home.config().max_feed_bytes,
            max_bytes_per_day: home.config().max_feed_bytes_per_day,
            usage: usage.clone(),
        };
        let pipeline =
            Pipeline::start(store.clone(), home.sign_cap().copied(), cap, writer.clone())
                .map_err(|e| NodeError::Invalid(format!("cannot start the checker: {e}")))?;
        let idle_timeout = (home.config().idle_timeout > 0)
            .then(|| Duration::from_secs(home.config().idle_timeout));
        let blobs = Arc::new(
            home.blobs()
                .map_err(|e| NodeError::Invalid(format!("cannot open the blob store: {e}")))?,
        );
        let blob_events = events.clone();
        let blob_sync = Arc::new(crate::replicate::blobs::BlobSync::new(blobs, move |id| {
            let _ = blob_events.send(NodeEvent::Blob(id));
        }));
        let repl = Arc::new(Replicator {
            store: store.clone(),
            pipeline,
            me: keys.id(),
            hops: home.config().hops,
            appended,
            limits: home.config().limits(),
            usage,
            ping_every: idle_timeout.map(|t| t / PINGS_PER_IDLE_TIMEOUT),
            watch: Arc::default(),
            wanted_now: Default::default(),
            newest_count: home.config().newest_first,
            fetching: Default::default(),
            range_budget: Default::default(),
            blobs: blob_sync,
            services: Default::default(),
        });
        let (shutdown, _) = watch::channel(false);
        let node = Node {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                keys,
                retention: home.retention(),
                pruner_started: std::sync::atomic::AtomicBool::new(false),
                net_key,
                store,
                repl,
                events,
                conns: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(home.config().max_connections)),
                incoming: Arc::new(Semaphore::new(incoming_limit(
                    home.config().max_connections,
                ))),
                handshakes: Arc::new(Semaphore::new(home.config().max_connections)),
                per_address: Arc::default(),
                max_connections: home.config().max_connections,
                max_per_address: home.config().max_connections_per_ip,
                idle_timeout,
                config_peers: home.config().peers.clone(),
                dial_private: home.config().dial_private,
                attempts: Mutex::default(),
                picker_started: std::sync::atomic::AtomicBool::new(false),
                pick_now: Arc::default(),
                lan: home.config().lan,
                heard: Arc::default(),
                blob_hops: home.config().blob_hops,
                blob_budget: home.config().blob_budget,
                blobs_fetched: std::sync::atomic::AtomicBool::new(false),
                room: std::sync::OnceLock::new(),
                rooms: Mutex::default(),
                tunnels_arriving: Mutex::default(),
                shutdown,
                listen_addr: Mutex::new(None),
                writer,
                search,
            }),
        };
        let tunnels: Arc<dyn crate::replicate::session::Service> = Arc::new(Tunnels {
            node: Arc::downgrade(&node.inner),
        });
        let _ = node.inner.repl.services.set(vec![tunnels]);
        Ok(node)
    }

    /// Our feed id.
    pub fn id(&self) -> FeedId {
        self.inner.keys.id()
    }

    /// The store, for reads.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The home directory.
    pub fn home_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The search index the node keeps in step with its store (none when
    /// search is off).
    pub fn search_index(&self) -> Option<&Arc<crate::search::SearchIndex>> {
        self.inner.search.as_ref()
    }

    /// How many hops of follows the node replicates.
    pub fn hops(&self) -> u8 {
        self.inner.repl.hops
    }

    /// What the replication sessions saw of each feed: peers' claims and
    /// the last errors.
    pub fn watch(&self) -> &crate::replicate::watch::Watch {
        &self.inner.repl.watch
    }

    /// Watches what the node does.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    fn log(&self, line: String) {
        tracing::info!("{line}");
        let _ = self.inner.events.send(NodeEvent::Log(line));
    }

    /// Appends a message to our feed and tells every session. Publishes
    /// that arrive together share one write transaction; each is answered
    /// once it is committed.
    pub async fn publish(&self, content: Value) -> Result<VerifiedMsg, NodeError> {
        self.inner
            .writer
            .publish(content)
            .await
            .map_err(|e| match e {
                PublishError::Store(e) => NodeError::Store(e),
                other => NodeError::Invalid(other.to_string()),
            })
    }

    /// Runs a room here (see [`crate::room`]) as `config` says: peers that
    /// connect attend it (all of them, or members only, as its mode says)
    /// and may open tunnels to each other; with `http`, invites are claimed
    /// and aliases resolved there. Call before peers connect.
    pub fn serve_room(&self, config: &crate::home::RoomConfig) -> Result<(), NodeError> {
        let mode: crate::room::Mode = config.mode.parse().map_err(NodeError::Invalid)?;
        let admins = config
            .admins
            .iter()
            .map(|a| {
                crate::uri::parse_feed(a).ok_or_else(|| {
                    NodeError::Invalid(format!("[room] admins: {a:?} is not a feed id"))
                })
            })
            .collect::<Result<Vec<FeedId>, NodeError>>()?;
        let mut server = None;
        let mut post_to = None;
        if let Some(addr) = &config.http {
            let http = tiny_http::Server::http(addr.as_str()).map_err(|e| {
                NodeError::Invalid(format!("the room cannot listen for HTTP on {addr}: {e}"))
            })?;
            let local = http
                .server_addr()
                .to_ip()
                .ok_or_else(|| NodeError::Invalid(format!("{addr} is not an IP address")))?;
            let host = crate::lan::reachable_at(local.ip());
            post_to = Some(format!(
                "http://{}/invite/consume",
                SocketAddr::new(host, local.port())
            ));
            server = Some(http);
        }
        let settings = crate::room::Settings {
            name: config.name.clone(),
            mode,
            admins,
            tunnel_idle: Duration::from_secs(config.tunnel_idle_secs.max(1)),
            post_to,
        };
        let node = self.clone();
        let room = Arc::new(crate::room::RoomServer::new(
            self.id(),
            settings,
            self.inner.store.clone(),
            move || node.address(),
        ));
        if let Some(http) = server {
            room.clone().serve_http(http);
        }
        let _ = self.inner.room.set(room);
        Ok(())
    }

    /// Makes an invite: to the room this node runs (`room` none), or,
    /// asked of a room we are in, to that one (`room.createInvite`, which
    /// it allows its members, or only its admins, as its mode says). Its
    /// rooms 2.0 link.
    pub async fn room_invite(&self, room: Option<FeedId>) -> Result<String, NodeError> {
        let Some(room) = room else {
            let Some(ours) = self.inner.room.get() else {
                return Err(NodeError::Invalid(
                    "this node runs no room: start it with `shoal room serve` (or name a room we are in with --room)".into(),
                ));
            };
            return ours.make_invite(None).map_err(NodeError::Invalid);
        };
        let rpc = self.room_rpc(Some(room))?.1;
        let answer = rpc
            .call_async(&["room", "createInvite"], serde_json::json!([]))
            .await
            .map_err(|e| NodeError::Invalid(format!("the room made no invite: {e}")))?;
        match answer {
            rpc::Body::Json(b) => serde_json::from_slice::<String>(&b)
                .map_err(|_| NodeError::Invalid("the room's answer is not an invite link".into())),
            _ => Err(NodeError::Invalid(
                "the room's answer is not an invite link".into(),
            )),
        }
    }

    /// The connection to `room` (a peer we are connected to, which may
    /// be a room that does not let us attend), or to the only room we
    /// are in.
    fn room_rpc(&self, room: Option<FeedId>) -> Result<(FeedId, rpc::RpcHandle), NodeError> {
        let rooms: Vec<FeedId> = self
            .inner
            .rooms
            .lock()
            .expect("lock")
            .keys()
            .copied()
            .collect();
        let room = match (room, rooms.as_slice()) {
            (Some(r), _) => r,
            (None, [only]) => *only,
            (None, []) => {
                return Err(NodeError::Invalid(
                    "we are connected to no room (`shoal room join` one)".into(),
                ));
            }
            (None, _) => {
                return Err(NodeError::Invalid(
                    "we are in several rooms: name one with --room".into(),
                ));
            }
        };
        let rpc = self
            .inner
            .conns
            .lock()
            .expect("lock")
            .get(&room)
            .map(|c| c.rpc.clone())
            .ok_or_else(|| {
                NodeError::Invalid(format!(
                    "{room} is not connected (`shoal room join` it first)"
                ))
            })?;
        Ok((room, rpc))
    }

    /// Registers `alias` for us at a room we are in (`room`, or the only
    /// one), signed by us; or, with `revoke`, removes it. The alias's
    /// `consume-alias` link.
    pub async fn room_alias(
        &self,
        room: Option<FeedId>,
        alias: &str,
        revoke: bool,
    ) -> Result<Option<String>, NodeError> {
        crate::room::check_alias(alias).map_err(NodeError::Invalid)?;
        let (room, rpc) = self.room_rpc(room)?;
        if revoke {
            rpc.call_async(&["room", "revokeAlias"], serde_json::json!([alias]))
                .await
                .map_err(|e| NodeError::Invalid(format!("the room kept the alias: {e}")))?;
            return Ok(None);
        }
        let sig = crate::room::sign_alias(&self.inner.keys, &room, alias);
        let answer = rpc
            .call_async(&["room", "registerAlias"], serde_json::json!([alias, sig]))
            .await
            .map_err(|e| NodeError::Invalid(format!("the room refused the alias: {e}")))?;
        let link = match answer {
            rpc::Body::Json(b) => serde_json::from_slice::<String>(&b).ok(),
            _ => None,
        };
        Ok(link)
    }

    /// Connects to `target` through the room at `room_address`: dials the
    /// room (and keeps it, as a room joined), then opens a tunnel to
    /// `target` through it and runs a peer connection inside. Answers once
    /// the connection is up, or why it is not.
    pub async fn connect_through(
        &self,
        room_address: &str,
        target: FeedId,
    ) -> Result<FeedId, NodeError> {
        if self.inner.conns.lock().expect("lock").contains_key(&target) {
            return Ok(target);
        }
        let room = self.connect(room_address).await?;
        self.remember(room_address);
        // The connection is in the table once its session starts.
        let deadline = Instant::now() + Duration::from_secs(15);
        let rpc = loop {
            if let Ok((_, rpc)) = self.room_rpc(Some(room)) {
                break rpc;
            }
            if Instant::now() > deadline {
                return Err(NodeError::Invalid(format!(
                    "the connection to {room} did not stay up"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (up_tx, mut up_rx) = tokio::sync::oneshot::channel();
        let node = self.clone();
        tokio::spawn(async move {
            let outcome = node.dial_tunnel(room, &rpc, target).await;
            let _ = up_tx.send(outcome);
        });
        loop {
            if self.inner.conns.lock().expect("lock").contains_key(&target) {
                return Ok(target);
            }
            if Instant::now() > deadline {
                return Err(NodeError::Invalid(format!(
                    "no connection to {target} through {room} in time"
                )));
            }
            match tokio::time::timeout(Duration::from_millis(50), &mut up_rx).await {
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Ok(Ok(()))) | Ok(Err(_)) => {
                    return Err(NodeError::Invalid(format!(
                        "{target} closed the tunnel through {room} (a peer takes tunnels only from feeds it replicates)"
                    )));
                }
                Err(_) => {}
            }
        }
    }

    /// Whether `peer` is a room, and if so, meets the attendants we
    /// replicate through it: every one attending now and as they join.
    async fn meet_through(&self, room: FeedId, rpc: rpc::RpcHandle) {
        let asked = tokio::time::timeout(
            Duration::from_secs(10),
            rpc.call_async(&["tunnel", "isRoom"], serde_json::json!([])),
        )
        .await;
        let is_room = match asked {
            Ok(Ok(rpc::Body::Json(b))) => {
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                v.is_object() || v == serde_json::Value::Bool(true)
            }
            _ => false,
        };
        if !is_room {
            return;
        }
        self.log(format!(
            "{room} is a room: meeting its attendants through it"
        ));
        self.inner
            .rooms
            .lock()
            .expect("lock")
            .insert(room, Default::default());
        // Forgotten when the connection ends (this future is dropped).
        struct Left(Node, FeedId);
        impl Drop for Left {
            fn drop(&mut self) {
                self.0.inner.rooms.lock().expect("lock").remove(&self.1);
            }
        }
        let _left = Left(self.clone(), room);
        let Ok(mut events) = rpc
            .call_source(&["room", "attendants"], serde_json::json!([]))
            .await
        else {
            return;
        };
        // A rooms 1.0 server (the JavaScript `ssb-room`) has no
        // `room.attendants`: there we announce ourselves and read
        // `tunnel.endpoints`, whose items are whole lists of attendants.
        let mut whole_lists = false;
        let mut heard = false;
        // Tunnels being opened or open from here, so that none is opened
        // twice.
        let busy: Arc<Mutex<std::collections::HashSet<FeedId>>> = Arc::default();
        let mut recheck = tokio::time::interval(ROOM_RECHECK);
        recheck.tick().await;
        loop {
            let ids: Vec<FeedId> = tokio::select! {
                got = events.recv() => {
                    let b = match got {
                        Some(Ok(rpc::Body::Json(b))) => b,
                        Some(Err(_)) if !heard && !whole_lists => {
                            whole_lists = true;
                            let _ = rpc
                                .call_async(&["tunnel", "announce"], serde_json::json!([]))
                                .await;
                            match rpc
                                .call_source(&["tunnel", "endpoints"], serde_json::json!([]))
                                .await
                            {
                                Ok(e) => events = e,
                                Err(_) => break,
                            }
                            continue;
                        }
                        _ => break,
                    };
                    heard = true;
                    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                    let v = match v {
                        serde_json::Value::Array(ids) if whole_lists => {
                            serde_json::json!({"type": "state", "ids": ids})
                        }
                        v => v,
                    };
                    let ids: Vec<FeedId> = match v.get("type").and_then(|t| t.as_str()) {
                        Some("state") => v["ids"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|i| i.as_str())
                                    .filter_map(FeedId::parse)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        Some("joined") => v["id"]
                            .as_str()
                            .and_then(FeedId::parse)
                            .into_iter()
                            .collect(),
                        _ => Vec::new(),
                    };
                    {
                        let mut rooms = self.inner.rooms.lock().expect("lock");
                        let attending = rooms.entry(room).or_default();
                        match v.get("type").and_then(|t| t.as_str()) {
                            Some("state") => *attending = ids.iter().copied().collect(),
                            Some("joined") => attending.extend(ids.iter().copied()),
                            Some("left") => {
                                if let Some(gone) = v["id"].as_str().and_then(FeedId::parse) {
                                    attending.remove(&gone);
                                }
                            }
                            _ => {}
                        }
                        // Bounded whatever the room says.
                        while attending.len() > MAX_ATTENDANTS_KEPT {
                            attending.pop_last();
                        }
                    }
                    ids
                }
                // Whoever attends and is not connected (a tunnel that
                // failed or ended) is tried again.
                _ = recheck.tick() => self
                    .inner
                    .rooms
                    .lock()
                    .expect("lock")
                    .get(&room)
                    .map(|a| a.iter().copied().collect())
                    .unwrap_or_default(),
            };
            self.meet(room, &rpc, ids, &busy);
        }
    }

    /// Opens tunnels through `room` to those of `ids` we replicate and are
    /// not connected to. Of two peers that replicate each other, the one
    /// with the smaller key dials at once and the other a few seconds
    /// later if still unconnected, so that they do not open two tunnels at
    /// once and each close the other's.
    fn meet(
        &self,
        room: FeedId,
        rpc: &rpc::RpcHandle,
        ids: Vec<FeedId>,
        busy: &Arc<Mutex<std::collections::HashSet<FeedId>>>,
    ) {
        let wanted = self.inner.repl.wanted_now().1;
        for target in ids {
            let connected = self.inner.conns.lock().expect("lock").contains_key(&target);
            if target == self.id() || target == room || connected || !wanted.contains(&target) {
                continue;
            }
            if !busy.lock().expect("lock").insert(target) {
                continue;
            }
            let (node, rpc, busy) = (self.clone(), rpc.clone(), busy.clone());
            let wait = if node.id() < target {
                Duration::ZERO
            } else {
                TUNNEL_SECOND_DIAL
            };
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let connected = node.inner.conns.lock().expect("lock").contains_key(&target)
                    || node
                        .inner
                        .tunnels_arriving
                        .lock()
                        .expect("lock")
                        .contains(&target);
                if !connected && let Err(e) = node.dial_tunnel(room, &rpc, target).await {
                    tracing::info!("{target} through the room {room}: {e}");
                }
                busy.lock().expect("lock").remove(&target);
            });
        }
    }

    /// The rooms we are in, and who attends each.
    pub fn rooms(&self) -> Vec<(FeedId, Vec<FeedId>)> {
        let rooms = self.inner.rooms.lock().expect("lock");
        let mut out: Vec<(FeedId, Vec<FeedId>)> = rooms
            .iter()
            .map(|(r, a)| (*r, a.iter().copied().collect()))
            .collect();
        out.sort_by_key(|(r, _)| *r);
        out
    }

    /// Opens a tunnel to `target` through the room on `rpc` and runs a
    /// peer connection inside it (we are the handshake's client).
    async fn dial_tunnel(
        &self,
        room: FeedId,
        rpc: &rpc::RpcHandle,
        target: FeedId,
    ) -> Result<(), NodeError> {
        let _permit = self
            .inner
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| NodeError::TooManyConnections(self.inner.max_connections))?;
        let args = serde_json::json!([{"portal": room.to_string(), "target": target.to_string()}]);
        let (sink, source) = rpc
            .call_duplex(&["tunnel", "connect"], args)
            .await
            .map_err(|e| NodeError::Invalid(format!("the room refused the tunnel: {e}")))?;
        let stream = crate::room::byte_stream(sink, source);
        let (r, w, peer) =
            net::handshake(stream, &self.inner.net_key, &self.inner.keys, Some(&target)).await?;
        let addr = format!("tunnel:{room}:{peer}~shs:{}", peer.b64());
        self.run_conn_boxed(peer, addr, r, w, true).await;
        Ok(())
    }

    /// [`Node::run_conn`] for a connection inside a tunnel, as a boxed
    /// future: a tunnel's connection may find a room and open tunnels in
    /// turn, and the box is what makes that recursion's future `Send`.
    fn run_conn_boxed(
        &self,
        peer: FeedId,
        addr: String,
        r: net::PeerReader,
        w: net::PeerWriter,
        outgoing: bool,
    ) -> futures::future::BoxFuture<'static, ()> {
        let node = self.clone();
        Box::pin(async move { node.run_conn(peer, addr, r, w, outgoing, false).await })
    }

    /// A room asks us for a tunnel from `origin`: we run the handshake's
    /// server inside it, and a peer connection when the peer is whom the
    /// room says and one we replicate; strangers are refused (logged).
    async fn accept_tunnel(&self, room: FeedId, origin: FeedId, s: rpc::StreamResponder) {
        let nested = self
            .inner
            .conns
            .lock()
            .expect("lock")
            .get(&room)
            .is_some_and(|c| c.addr.starts_with("tunnel:"));
        if nested {
            let _ = s.error("no tunnels inside a tunnel").await;
            return;
        }
        // Counted as TCP connections are: a room cannot make us hold more
        // handshakes or connections than strangers dialling us could.
        let Ok(handshake) = self.inner.handshakes.clone().try_acquire_owned() else {
            tracing::warn!(
                "a tunnel from {origin} through {room}: refused, {} handshakes in progress",
                self.inner.max_connections
            );
            let _ = s.error("too many handshakes in progress").await;
            return;
        };
        let (sink, source) = s.into_parts();
        let stream = crate::room::byte_stream(sink, source);
        let arriving = Arriving::new(&self.inner.tunnels_arriving, origin);
        let shaken = net::handshake(stream, &self.inner.net_key, &self.inner.keys, None).await;
        drop(handshake);
        let (r, w, peer) = match shaken {
            Ok(x) => x,
            Err(e) => {
                tracing::info!("a tunnel from {origin} through {room}: {e}");
                return;
            }
        };
        if peer != origin {
            tracing::warn!(
                "a tunnel through {room} claimed to be from {origin} but is {peer}: refused"
            );
            return;
        }
        if !self.inner.repl.wanted_now().1.contains(&peer) {
            tracing::info!(
                "{peer} through the room {room}: refused, a stranger (not within our hops)"
            );
            return;
        }
        let Ok(_incoming) = self.inner.incoming.clone().try_acquire_owned() else {
            tracing::warn!(
                "{peer} through the room {room}: refused, {} incoming connections open (the rest of max_connections is kept for dialling)",
                incoming_limit(self.inner.max_connections)
            );
            return;
        };
        let Ok(_permit) = self.inner.slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "{peer} through the room {room}: refused, {} connections open",
                self.inner.max_connections
            );
            return;
        };
        let addr = format!("tunnel:{room}:{peer}~shs:{}", peer.b64());
        drop(arriving);
        self.run_conn_boxed(peer, addr, r, w, false).await;
    }

    /// The blob store.
    pub fn blobs(&self) -> &crate::blobs::Blobs {
        self.inner.repl.blobs.store()
    }

    /// Asks peers for a blob (unless we hold it) and waits up to `within`
    /// for it: whether it is here.
    pub async fn want_blob(&self, id: crate::crypto::BlobId, within: Duration) -> bool {
        let sync = &self.inner.repl.blobs;
        let mut stored = sync.subscribe();
        sync.want(id);
        let arrived = async {
            loop {
                if sync.store().size(&id).is_some() {
                    return;
                }
                match stored.recv().await {
                    Ok(got) if got == id => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    _ => {}
                }
            }
        };
        let _ = tokio::time::timeout(within, arrived).await;
        sync.store().size(&id).is_some()
    }

    /// A blob of ours was added: peers are told.
    pub fn blob_added(&self, id: crate::crypto::BlobId, size: u64) {
        self.inner.repl.blobs.added(id, size);
        let _ = self.inner.events.send(NodeEvent::Blob(id));
    }

    /// Publishes a group operation of ours (with any forward it needs
    /// first) through the node's writer, blocking: call it off the async
    /// threads (on one that drives async tasks it panics). Every session is
    /// told of each message written.
    pub fn group_write(&self, op: &crate::store::GroupOp) -> Result<Vec<VerifiedMsg>, StoreError> {
        self.inner.writer.group_write(op)
    }

    /// Marks messages (by receive sequence) as read, through the node's
    /// writer, blocking: call it off the async threads (on one that drives
    /// async tasks it panics).
    pub fn mark_read(&self, rxs: &[u64]) -> Result<(), StoreError> {
        self.inner.writer.mark_read(rxs)
    }

    /// Mutes (`on`) or unmutes something, locally, through the writer:
    /// answers whether it changed.
    pub fn set_mute(&self, what: &crate::store::Mute, on: bool) -> Result<bool, StoreError> {
        self.inner.writer.set_mute(what, on)
    }

    /// Checks and stores messages from outside (an import through the
    /// control socket) with the same pipeline as peers' messages.
    pub async fn submit(&self, items: &[&[u8]]) -> Vec<LineResult> {
        let items = items.iter().map(|i| bytes::Bytes::copy_from_slice(i));
        self.inner.repl.pipeline.submit(items.collect()).await
    }

    /// Remembers a peer address in the peer table and keeps dialling it:
    /// the user chose it, so it is dialled whatever its address, also when
    /// it was known as a pub announcement.
    pub fn remember(&self, addr: &str) {
        // Written by the writer; nothing here waits for it.
        drop(self.inner.writer.note_peer(addr, |rec| {
            if rec.source.is_empty() || rec.source == dialer::PUB_SOURCE {
                rec.source = "connect".into();
            }
        }));
        self.keep_connected(addr.to_string(), Duration::from_secs(2));
    }

    /// Remembers the pub of an invite we redeemed (source `invite`, unless
    /// the user added it) and starts dialling it now, as ourselves, and
    /// whenever the connection drops. Returns once the note is written.
    pub async fn keep_invited(&self, addr: &str) -> Result<(), NodeError> {
        let noted = self.inner.writer.note_peer(addr, |rec| {
            if rec.source.is_empty() || rec.source == dialer::PUB_SOURCE {
                rec.source = invite::PEER_SOURCE.into();
            }
        });
        noted
            .await
            .map_err(|_| NodeError::Store(StoreError::WriterStopped))??;
        self.keep_connected(addr.to_string(), Duration::ZERO);
        Ok(())
    }

    /// The network key of the secret handshake.
    pub fn network_key(&self) -> &[u8; 32] {
        &self.inner.net_key
    }

    /// Makes an invite of `uses` uses: records the public key of a fresh
    /// seed (never the seed) and returns the code, naming `external` or
    /// else the address the node listens on.
    pub async fn create_invite(
        &self,
        uses: u32,
        note: &str,
        external: Option<&External>,
    ) -> Result<Code, NodeError> {
        let listen = *self.inner.listen_addr.lock().expect("lock");
        let (host, port) = match (external, listen) {
            (Some(e), l) => match (e.port, l) {
                (Some(p), _) => (e.host.clone(), p),
                (None, Some(l)) => (e.host.clone(), l.port()),
                (None, None) => {
                    return Err(NodeError::Invalid(
                        "the node does not listen: give the port too, --external HOST:PORT".into(),
                    ));
                }
            },
            (None, Some(l)) if l.ip().is_unspecified() => {
                return Err(NodeError::Invalid(format!(
                    "the node listens on {l}, on every address: say where peers reach it with --external HOST[:PORT]"
                )));
            }
            (None, Some(l)) => (l.ip().to_string(), l.port()),
            (None, None) => {
                return Err(NodeError::Invalid(
                    "the node does not listen: say where peers reach it with --external HOST:PORT"
                        .into(),
                ));
            }
        };
        let pub_addr: MultiAddr = format!("net:{host}:{port}~shs:{}", self.id().b64())
            .parse()
            .map_err(|e| {
                NodeError::Invalid(format!("cannot make an invite for {host}:{port}: {e}"))
            })?;
        let seed: [u8; 32] = crate::crypto::random_bytes();
        let code = Code::new(pub_addr, seed);
        self.inner
            .writer
            .add_invite(code.keys().id(), uses, note)
            .await?;
        let plural = if uses == 1 { "" } else { "s" };
        self.log(format!(
            "made an invite of {uses} use{plural} for {host}:{port}"
        ));
        Ok(code)
    }

    /// Redeems our invite `key` for `feed`: takes a use and publishes our
    /// follow of `feed` in one write. Answers the follow as
    /// `{key, value, timestamp}`, or the refusal's message.
    async fn redeem(&self, key: FeedId, feed: FeedId) -> Result<rpc::Body, String> {
        let content =
            Box::new(move |note: &str| crate::social::compose::invite_follow(&feed, note));
        match self.inner.writer.redeem_invite(key, feed, content).await {
            Ok(Ok(msg)) => {
                self.log(format!("{feed} redeemed an invite; following it"));
                match self.inner.store.get(&msg.id()) {
                    Ok(Some(m)) => Ok(rpc::Body::json_raw(m.to_kvt())),
                    _ => Ok(rpc::Body::json_true()),
                }
            }
            Ok(Err(refusal)) => {
                tracing::info!("{feed}: invite refused: {refusal}");
                Err(refusal.to_string())
            }
            Err(e) => {
                tracing::warn!("{feed}: invite not redeemed: {e}");
                Err(format!("the invite could not be redeemed: {e}"))
            }
        }
    }

    /// Serves a connection authenticated with an invite's key until it
    /// ends: `invite.use` and `getAddress` only, no replication.
    async fn serve_invitee(
        &self,
        key: FeedId,
        addr: String,
        reader: net::PeerReader,
        writer: net::PeerWriter,
        opts: rpc::Options,
    ) {
        let span = tracing::info_span!("invite", key = %key);
        let (handle, incoming, task) = span.in_scope(|| rpc::start(reader, writer, opts));
        tracing::info!("{addr}: connected with the key of an invite");
        let node = self.clone();
        let serve = invite::serve(incoming, self.address(), move |feed| {
            let node = node.clone();
            async move { node.redeem(key, feed).await }
        });
        let mut shutdown = self.inner.shutdown.subscribe();
        tokio::select! {
            _ = serve => {}
            _ = shutdown.changed() => handle.goodbye().await,
        }
        let _ = task.await;
        tracing::info!("{addr}: the invite's connection ended");
    }

    /// Dials every peer in the config and every one added with `shoal
    /// connect`, and keeps those connections up; starts the peer picker
    /// (see [`crate::dialer::pick`]).
    pub fn dial_known_peers(&self) {
        let mut addrs: Vec<String> = self.inner.config_peers.clone();
        if let Ok(peers) = self.inner.store.peers() {
            addrs.extend(
                peers
                    .into_iter()
                    .filter(|(_, rec)| rec.source != dialer::PUB_SOURCE)
                    .map(|(a, _)| a),
            );
        }
        addrs.sort();
        addrs.dedup();
        for addr in addrs {
            self.keep_connected(addr, Duration::ZERO);
        }
        self.start_picker();
        self.start_blob_fetcher();
        self.start_pruner();
    }

    /// The retention rules of the config.
    pub fn retention(&self) -> crate::store::Retention {
        self.inner.retention
    }

    /// Prunes what the retention rules say now (see `store::prune`), or
    /// with `dry_run` only says what would go. Blocking.
    pub fn prune_now(
        &self,
        dry_run: bool,
    ) -> Result<(crate::store::PrunePlan, Option<crate::store::Pruned>), StoreError> {
        let (plan, done) =
            self.inner
                .store
                .apply_retention(&self.id(), &self.inner.retention, dry_run)?;
        if let Some(done) = &done
            && done.messages > 0
        {
            if let Some(ix) = self.search_index()
                && let Err(e) = ix.remove(&done.rxs)
            {
                tracing::warn!("the search index keeps pruned messages: {e}");
            }
            self.log(format!(
                "pruned {} messages ({} bytes) of {} feeds",
                done.messages,
                done.bytes,
                done.feeds.len()
            ));
        }
        Ok((plan, done))
    }

    /// Starts (once, when the config sets retention limits) the task that
    /// prunes [`PRUNE_FIRST`] after the node starts and every
    /// [`PRUNE_EVERY`] after that.
    fn start_pruner(&self) {
        use std::sync::atomic::Ordering;
        if !self.inner.retention.prunes() || self.inner.pruner_started.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let node = self.clone();
        let mut shutdown = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            let mut wait = PRUNE_FIRST;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = PRUNE_EVERY;
                let n = node.clone();
                match tokio::task::spawn_blocking(move || n.prune_now(false)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!("pruning failed: {e}"),
                    Err(e) => tracing::warn!("pruning stopped: {e}"),
                }
            }
        });
    }

    /// Starts (once) the task that wants the blobs linked by messages of
    /// feeds within `blob_hops` as they are stored, and, when blobs arrive,
    /// evicts the least recently used blobs not ours past `blob_budget`
    /// bytes (at most every 5 s). Messages it misses (it fell behind a
    /// burst) have their blobs fetched when shown.
    fn start_blob_fetcher(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.blobs_fetched.swap(true, Ordering::SeqCst) {
            return;
        }
        let node = self.clone();
        let mut events = self.subscribe();
        tokio::spawn(async move {
            // (contacts generation, feeds within blob_hops)
            let mut near: Option<(u64, Arc<std::collections::HashSet<FeedId>>)> = None;
            let mut evicted: Option<Instant> = None;
            loop {
                let first = match events.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let mut stored = Vec::new();
                let mut fetched = false;
                let mut next = Some(first);
                while let Some(e) = next.take() {
                    match e {
                        // Only a message with an `&` can link a blob: the
                        // others are not read back.
                        NodeEvent::Stored(all) => stored.extend(
                            all.iter()
                                .filter(|a| a.may_link_blob)
                                .map(|a| (a.author, a.seq)),
                        ),
                        NodeEvent::Blob(_) => fetched = true,
                        _ => {}
                    }
                    if stored.len() < 1024 {
                        next = futures::FutureExt::now_or_never(events.recv()).and_then(Result::ok);
                    }
                }
                if fetched && evicted.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                    evicted = Some(Instant::now());
                    node.evict_blobs().await;
                }
                if stored.is_empty() {
                    continue;
                }
                let n = node.clone();
                let cached = near.clone();
                let found =
                    tokio::task::spawn_blocking(move || n.blobs_to_fetch(&stored, cached)).await;
                let Ok((set, ids)) = found else {
                    continue;
                };
                near = Some(set);
                for id in ids {
                    node.inner.repl.blobs.want(id);
                }
            }
        });
    }

    /// Brings the blobs held within `blob_budget`: the least recently used
    /// that are not ours go.
    async fn evict_blobs(&self) {
        let n = self.clone();
        let budget = self.inner.blob_budget;
        let removed = tokio::task::spawn_blocking(move || n.blobs().evict_to(budget)).await;
        match removed {
            Ok(Ok(removed)) if !removed.is_empty() => {
                let bytes: u64 = removed.iter().map(|(_, s)| s).sum();
                tracing::info!(
                    "evicted {} blobs ({bytes} bytes), the least recently used, to stay within blob_budget",
                    removed.len()
                );
            }
            Ok(Err(e)) => tracing::warn!("cannot evict blobs: {e}"),
            _ => {}
        }
    }

    /// Of the messages `stored` (those that may link a blob, see
    /// [`crate::ingest::Appended`]), the blobs linked by those of feeds
    /// within `blob_hops` that we do not hold.
    #[allow(clippy::type_complexity)]
    fn blobs_to_fetch(
        &self,
        stored: &[(FeedId, u64)],
        near: Option<(u64, Arc<std::collections::HashSet<FeedId>>)>,
    ) -> (
        (u64, Arc<std::collections::HashSet<FeedId>>),
        Vec<crate::crypto::BlobId>,
    ) {
        let store = &self.inner.store;
        let generation = store.contacts_generation();
        let near = match near {
            Some((g, set)) if g == generation => (g, set),
            _ => {
                let set = store
                    .replication_set(&self.id(), self.inner.blob_hops)
                    .map(|m| m.into_keys().collect())
                    .unwrap_or_default();
                (generation, Arc::new(set))
            }
        };
        let blobs = self.blobs();
        let mut ids = Vec::new();
        let near_ones: Vec<(FeedId, u64)> = stored
            .iter()
            .filter(|(author, _)| near.1.contains(author))
            .copied()
            .collect();
        let Ok(msgs) = store.messages_at(&near_ones) else {
            return (near, ids);
        };
        for m in msgs {
            let Ok(value) = m.value() else { continue };
            let Some(content) = value.get("content") else {
                continue;
            };
            for id in crate::social::blob_links(content) {
                if blobs.size(&id).is_none() && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        (near, ids)
    }

    /// Starts (once) the peer picker's task: a round every
    /// [`dialer::PICK_EVERY`], or sooner when a LAN peer is first heard,
    /// until shutdown.
    fn start_picker(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.picker_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let mut shutdown = node.inner.shutdown.subscribe();
            let mut budget = dialer::DialBudget::new(dialer::PICKER_DIALS_PER_MINUTE);
            loop {
                if *shutdown.borrow() {
                    return;
                }
                node.pick_round(&mut budget).await;
                tokio::select! {
                    _ = tokio::time::sleep(dialer::PICK_EVERY) => {}
                    _ = node.inner.pick_now.notified() => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// One round of the picker: gathers the candidates (pubs that may be
    /// dialled, LAN peers heard lately) with what each held when last
    /// connected, asks [`dialer::pick`], closes the connections it no
    /// longer needs and starts the dials it wants, within `budget`.
    async fn pick_round(&self, budget: &mut dialer::DialBudget) {
        let (store, me) = (self.inner.store.clone(), self.id());
        let repl = self.inner.repl.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let wanted = repl.wanted_now().1;
            Ok((store.peers()?, store.contacts_of(&me)?, wanted))
        })
        .await;
        let (records, contacts, wanted) = match read {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                tracing::warn!("cannot read the peer table: {e}");
                return;
            }
            Err(_) => return,
        };
        let mut trusted = std::collections::HashSet::from([me]);
        let mut blocked = std::collections::HashSet::new();
        for (feed, edge) in contacts {
            match edge {
                crate::store::Contact::Follow => trusted.insert(feed),
                crate::store::Contact::Block => blocked.insert(feed),
            };
        }
        let now = Instant::now();
        let now_ms = crate::store::now_ms() as u64;
        let lan: Vec<MultiAddr> = self
            .inner
            .heard
            .lock()
            .expect("lock")
            .current(now)
            .into_iter()
            .filter(|a| !blocked.contains(&a.key))
            .collect();
        let pubs = dialer::pub_candidates(&records, &trusted, &blocked, &me);
        // Our own feed among them: a peer that holds it carries what we
        // publish to the others.
        let wanted: std::collections::HashSet<FeedId> = (*wanted).clone();
        let watch = self.inner.repl.watch.clone();
        let held = |key: &FeedId, connected: bool| {
            let seen = watch.seen(key);
            let fresh = seen.as_ref().is_some_and(|s| {
                now_ms.saturating_sub(s.at_ms) < dialer::REMEMBER_FOR.as_millis() as u64
            });
            if connected || fresh {
                let holds = seen.map(|s| s.holds).unwrap_or_default();
                Some(holds.intersection(&wanted).copied().collect())
            } else {
                None
            }
        };
        // What the connections the picker did not make hold.
        let mut covered = std::collections::HashSet::new();
        let mut candidates: Vec<dialer::Candidate> = Vec::new();
        let conns: HashMap<FeedId, (bool, Duration)> = self
            .inner
            .conns
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, c)| (*k, (c.picked, c.since.elapsed())))
            .collect();
        for (k, (picked, _)) in &conns {
            if !picked {
                covered.extend(held(k, true).unwrap_or_default());
            }
        }
        let mut seen_keys = std::collections::HashSet::new();
        let lan = lan.into_iter().map(|a| (a, dialer::Origin::Lan));
        let pubs = pubs.into_iter().map(|a| (a, dialer::Origin::Pub));
        for (addr, origin) in lan.chain(pubs) {
            let first = seen_keys.insert(addr.key);
            let connected_for = match conns.get(&addr.key) {
                // At one of its addresses.
                Some((true, since)) if first => Some(*since),
                // Connected some other way: not the picker's.
                Some(_) => continue,
                None => None,
            };
            let text = addr.to_string();
            let (due, failures) = {
                let attempts = self.inner.attempts.lock().expect("lock");
                (attempts.due(&text, now), attempts.failures(&text))
            };
            let seen = watch.seen(&addr.key);
            candidates.push(dialer::Candidate {
                holds: held(&addr.key, connected_for.is_some()),
                served: seen.map_or(0, |s| s.served),
                addr,
                origin,
                connected_for,
                due,
                failures,
            });
        }
        let slots = dialer::PICKED_CONNECTIONS.min(self.inner.max_connections / 4);
        let plan = dialer::pick(&wanted, &covered, &candidates, slots.max(1));
        // Connections the picker made to peers that are no candidates any
        // more (a pub no longer announced by whom we follow) go too.
        let stale = conns.iter().filter(|(k, (picked, since))| {
            *picked && *since >= dialer::GRACE && !seen_keys.contains(*k)
        });
        let close: Vec<FeedId> = plan
            .drop
            .iter()
            .copied()
            .chain(stale.map(|(k, _)| *k))
            .collect();
        for key in close {
            let handle = self
                .inner
                .conns
                .lock()
                .expect("lock")
                .get(&key)
                .map(|c| c.rpc.clone());
            if let Some(handle) = handle {
                tracing::info!("{key}: closing, it serves nothing the other peers do not");
                tokio::spawn(async move { handle.goodbye().await });
            }
        }
        for ma in plan.dial {
            let origin = candidates
                .iter()
                .find(|c| c.addr == ma)
                .map_or(dialer::Origin::Pub, |c| c.origin);
            if !budget.take(now) {
                return;
            }
            let addr = ma.to_string();
            self.inner
                .attempts
                .lock()
                .expect("lock")
                .started(&addr, now);
            let node = self.clone();
            tokio::spawn(async move {
                // A LAN peer's address is the one its packet came from.
                let scope = if node.inner.dial_private || origin == dialer::Origin::Lan {
                    Scope::Any
                } else {
                    Scope::Public
                };
                match node.dial(&ma, scope, Some(origin)).await {
                    Ok(_) => node.inner.attempts.lock().expect("lock").succeeded(&addr),
                    Err(e) => {
                        let now = std::time::Instant::now();
                        let n = node.inner.attempts.lock().expect("lock").failed(&addr, now);
                        tracing::info!("{addr}: {e} ({n} failed dials)");
                    }
                }
            });
        }
    }

    /// Failed dials of each known address since its last success, as this
    /// node counted them (they are not written to the store).
    pub fn dial_failures(&self, addr: &str) -> u32 {
        self.inner.attempts.lock().expect("lock").failures(addr)
    }

    /// Whether we block this feed.
    fn blocks(&self, peer: &FeedId) -> bool {
        self.inner
            .store
            .contacts_of(&self.id())
            .map(|c| {
                c.iter()
                    .any(|(f, k)| f == peer && *k == crate::store::Contact::Block)
            })
            .unwrap_or(false)
    }

    /// The address peers dial: `net:HOST:PORT~shs:KEY`, once listening.
    /// For a listener on every address, HOST is this machine's public
    /// address, else its LAN one (see [`crate::lan::reachable_at`]).
    pub fn address(&self) -> Option<String> {
        let addr = (*self.inner.listen_addr.lock().expect("lock"))?;
        let host = crate::lan::reachable_at(addr.ip());
        Some(
            MultiAddr {
                host: host.to_string(),
                port: addr.port(),
                key: self.id(),
            }
            .to_string(),
        )
    }

    /// Starts LAN discovery for a listener at `local` (see [`crate::lan`]),
    /// when `lan` is on and the listener is not on loopback only: a node
    /// that serves only its own machine has nothing to say to the LAN.
    fn start_lan(&self, local: SocketAddr) {
        if !self.inner.lan || local.ip().is_loopback() {
            return;
        }
        let socket = match crate::lan::bind(local.port()) {
            Ok(s) => s,
            Err(e) => {
                self.log(format!(
                    "LAN discovery is off: cannot use UDP port {}: {e}",
                    local.port()
                ));
                return;
            }
        };
        let (heard, wake) = (self.inner.heard.clone(), self.inner.pick_now.clone());
        let shutdown = self.inner.shutdown.subscribe();
        tokio::spawn(crate::lan::run(
            socket,
            local,
            self.id(),
            heard,
            move || wake.notify_one(),
            shutdown,
        ));
    }

    /// Accepts connections on `listener` until shutdown.
    pub async fn serve(&self, listener: TcpListener) -> Result<(), NodeError> {
        let local = listener.local_addr()?;
        *self.inner.listen_addr.lock().expect("lock") = Some(local);
        self.log(format!("listening on {local} as {}", self.id()));
        self.start_lan(local);
        let mut shutdown = self.inner.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                accepted = listener.accept() => {
                    let (stream, addr) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let max = self.inner.max_per_address;
                    let Some(from_address) = self.inner.per_address.take(addr.ip(), max) else {
                        tracing::warn!(
                            "{addr}: refused, {max} connections open from its address (max_connections_per_ip)"
                        );
                        continue;
                    };
                    let Ok(handshake) = self.inner.handshakes.clone().try_acquire_owned() else {
                        tracing::warn!(
                            "{addr}: refused, {} handshakes in progress",
                            self.inner.max_connections
                        );
                        continue;
                    };
                    let node = self.clone();
                    tokio::spawn(async move {
                        let _from_address = from_address;
                        let accepted =
                            net::accept(stream, &node.inner.net_key, &node.inner.keys).await;
                        drop(handshake);
                        let (r, w, peer) = match accepted {
                            Ok(x) => x,
                            Err(e) => {
                                tracing::info!("{addr}: handshake failed: {e}");
                                return;
                            }
                        };
                        let Ok(_incoming) = node.inner.incoming.clone().try_acquire_owned() else {
                            tracing::warn!(
                                "{peer} at {addr}: refused, {} incoming connections open (the rest of max_connections is kept for dialling)",
                                incoming_limit(node.inner.max_connections)
                            );
                            return;
                        };
                        let Ok(_permit) = node.inner.slots.clone().try_acquire_owned() else {
                            tracing::warn!(
                                "{peer} at {addr}: refused, {} connections open",
                                node.inner.max_connections
                            );
                            return;
                        };
                        node.run_conn(peer, addr.to_string(), r, w, false, false).await;
                    });
                }
            }
        }
    }

    /// Dials a peer and replicates with it until the connection ends.
    /// Returns once connected; the session runs in the background.
    pub async fn connect(&self, addr: &str) -> Result<FeedId, NodeError> {
        let ma: MultiAddr = addr
            .parse()
            .map_err(|e| NodeError::Invalid(format!("not a multiserver address {addr}: {e}")))?;
        self.dial(&ma, Scope::Any, None).await
    }

    /// Dials `ma` at the addresses its host resolves to (within `scope`),
    /// and replicates with it in the background. `picked`: for the peer
    /// picker (which may close it), a peer learnt from `origin`; a peer
    /// heard on the LAN is not written to the peer table.
    async fn dial(
        &self,
        ma: &MultiAddr,
        scope: Scope,
        picked: Option<dialer::Origin>,
    ) -> Result<FeedId, NodeError> {
        if self.blocks(&ma.key) {
            return Err(NodeError::Blocked(ma.key));
        }
        if self.inner.conns.lock().expect("lock").contains_key(&ma.key) {
            return Ok(ma.key);
        }
        let permit = self
            .inner
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| NodeError::TooManyConnections(self.inner.max_connections))?;
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((ma.host.as_str(), ma.port))
            .await
            .map_err(|e| NodeError::Invalid(format!("cannot resolve {}: {e}", ma.host)))?
            .collect();
        let (public, local): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
            .into_iter()
            .partition(|a| net::scope::is_public(a.ip()));
        let addrs = match scope {
            Scope::Any => [public, local].concat(),
            Scope::Public if public.is_empty() => {
                return Err(match local.first() {
                    Some(a) => NodeError::NotPublic {
                        address: ma.to_string(),
                        ip: a.ip(),
                    },
                    None => NodeError::Invalid(format!("cannot resolve {}", ma.host)),
                });
            }
            Scope::Public => public,
        };
        let Some(&sock) = addrs.first() else {
            return Err(NodeError::Invalid(format!("cannot resolve {}", ma.host)));
        };
        let (r, w, peer) =
            net::connect(&addrs[..], &self.inner.net_key, &self.inner.keys, &ma.key).await?;
        let noted = (picked != Some(dialer::Origin::Lan)).then(|| {
            self.inner.writer.note_peer(&ma.to_string(), |rec| {
                rec.failures = 0;
                rec.last_seen = Some(crate::store::now_ms());
                if rec.source.is_empty() {
                    rec.source = "connect".into();
                }
            })
        });
        let node = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            node.run_conn(peer, sock.to_string(), r, w, true, picked.is_some())
                .await;
        });
        // Waited for (by this task, not its thread; the session has
        // started), so that whoever asked for the dial reads the peer table
        // with it.
        if let Some(noted) = noted {
            let _ = noted.await;
        }
        Ok(peer)
    }

    /// Keeps dialling a peer (after `first_wait`): reconnects whenever the
    /// connection drops, with exponential backoff and jitter
    /// ([`dialer::redial_after`]: 1 s to 5 min), until shutdown.
    pub fn keep_connected(&self, addr: String, first_wait: Duration) {
        let node = self.clone();
        tokio::spawn(async move {
            let mut shutdown = node.inner.shutdown.subscribe();
            let mut failures = 0u32;
            tokio::select! {
                _ = tokio::time::sleep(first_wait) => {}
                _ = shutdown.changed() => return,
            }
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let key = addr.parse::<MultiAddr>().ok().map(|m| m.key);
                let connected =
                    key.is_some_and(|k| node.inner.conns.lock().expect("lock").contains_key(&k));
                if connected {
                    // Connected some other way (it dialled us): a later
                    // drop is redialled soon, whatever failed before.
                    failures = 0;
                }
                let mut delay = dialer::redial_after(failures, rand::random::<f64>());
                if !connected {
                    match node.connect(&addr).await {
                        Ok(_) => {
                            node.inner.attempts.lock().expect("lock").succeeded(&addr);
                            failures = 0;
                            delay = dialer::redial_after(0, rand::random::<f64>());
                        }
                        Err(e) => {
                            // Counted in memory: a peer that never answers
                            // costs no store write.
                            let now = std::time::Instant::now();
                            node.inner.attempts.lock().expect("lock").failed(&addr, now);
                            tracing::info!("{addr}: {e}; retrying in {delay:?}");
                            failures = failures.saturating_add(1);
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    async fn run_conn(
        &self,
        peer: FeedId,
        addr: String,
        reader: net::PeerReader,
        writer: net::PeerWriter,
        outgoing: bool,
        picked: bool,
    ) {
        let opts = rpc::Options {
            idle_timeout: self.inner.idle_timeout,
            // Replication streams carry thousands of messages: let enough
            // queue up that each check batch is large.
            stream_queue: 2048,
            ..rpc::Options::default()
        };
        if self.blocks(&peer) {
            tracing::info!("{peer}: blocked, closing the connection");
            let (handle, _incoming, _task) = rpc::start(reader, writer, opts);
            handle.goodbye().await;
            return;
        }
        if !outgoing {
            match self.inner.store.invite(&peer) {
                Ok(Some(_)) => return self.serve_invitee(peer, addr, reader, writer, opts).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("{peer}: cannot read the invites, closing the connection: {e}");
                    let (handle, _incoming, _task) = rpc::start(reader, writer, opts);
                    handle.goodbye().await;
                    return;
                }
            }
        }
        // What muxrpc logs about this connection names the peer.
        let span = tracing::info_span!("conn", peer = %peer);
        let (handle, incoming, task) = span.in_scope(|| rpc::start(reader, writer, opts));
        let duplicate = {
            let mut conns = self.inner.conns.lock().expect("lock");
            match conns.entry(peer) {
                std::collections::hash_map::Entry::Occupied(_) => true,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(Conn {
                        addr: addr.clone(),
                        outgoing,
                        picked,
                        since: Instant::now(),
                        rpc: handle.clone(),
                    });
                    false
                }
            }
        };
        if duplicate {
            tracing::info!("{peer}: already connected, closing the new connection");
            handle.goodbye().await;
            return;
        }
        self.log(format!(
            "connected to {peer} at {addr} ({})",
            if outgoing { "outgoing" } else { "incoming" }
        ));
        let _ = self.inner.events.send(NodeEvent::Connected(peer));
        let mut shutdown = self.inner.shutdown.subscribe();
        // An incoming key without an invite here that calls `invite.use`
        // is told so, rather than that no such method exists.
        let incoming = if outgoing {
            incoming
        } else {
            invite::refuse_use(incoming, crate::store::InviteRefusal::Unknown.to_string())
        };
        let session = self
            .inner
            .repl
            .clone()
            .run(peer, handle.clone(), incoming, outgoing);
        let room = self.inner.room.get().cloned();
        if let Some(room) = &room {
            room.arrived(peer, handle.clone());
        }
        // Whether the peer is a room: then we meet its attendants through it.
        let tunnelled = addr.starts_with("tunnel:");
        let meet = async {
            if !tunnelled {
                self.meet_through(peer, handle.clone()).await;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = session => {}
            _ = meet => {}
            _ = shutdown.changed() => handle.goodbye().await,
        }
        if let Some(room) = &room {
            room.left(&peer);
        }
        let result = task.await;
        self.inner.conns.lock().expect("lock").remove(&peer);
        match result {
            Ok(Ok(())) => self.log(format!("{peer} disconnected")),
            Ok(Err(e)) => self.log(format!("{peer} disconnected: {e}")),
            Err(e) => self.log(format!("{peer} connection task failed: {e}")),
        }
        let _ = self.inner.events.send(NodeEvent::Disconnected(peer));
    }

    /// The live connections.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let conns = self.inner.conns.lock().expect("lock");
        let mut out: Vec<PeerInfo> = conns
            .iter()
            .map(|(id, c)| PeerInfo {
                id: id.to_string(),
                addr: c.addr.clone(),
                outgoing: c.outgoing,
                connected_secs: c.since.elapsed().as_secs(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Replication progress: feeds wanted and held, connections, limits
    /// and today's usage.
    pub fn progress(&self) -> Result<Progress, NodeError> {
        let wanted = self.inner.repl.wanted_now().1;
        let feeds = self.inner.store.feeds()?;
        let held: HashMap<FeedId, u64> = feeds.iter().map(|(f, s)| (*f, s.sequence)).collect();
        Ok(Progress {
            peers: self.inner.conns.lock().expect("lock").len(),
            feeds_wanted: wanted.len() as u64,
            feeds_held: wanted.iter().filter(|f| held.contains_key(f)).count() as u64,
            max_connections: self.inner.max_connections,
            max_incoming: incoming_limit(self.inner.max_connections),
            hops: self.inner.repl.hops,
            limits: self.inner.repl.usage.to_json(&self.inner.repl.limits),
        })
    }

    /// Stops listening, says goodbye to every peer and stops reconnecting.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let handles: Vec<rpc::RpcHandle> = self
            .inner
            .conns
            .lock()
            .expect("lock")
            .values()
            .map(|c| c.rpc.clone())
            .collect();
        for h in handles {
            h.goodbye().await;
        }
        // What was queued for the store (a peer note nobody waits for) is
        // written before the process may end.
        self.inner.writer.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Publishes, a group operation, peer notes and read marks asked for
    /// at once, from async tasks and blocking threads: every one is
    /// written, and each message stored is announced exactly once, to the
    /// sessions and to the event subscribers.
    #[test]
    fn concurrent_writes_are_all_made_and_each_announced_once() {
        let dir = tempfile::tempdir().unwrap();
        Home::init(dir.path(), crate::home::Identity::New).unwrap();
        let node = Node::open(dir.path()).unwrap();
        let mut events = node.subscribe();
        let mut appended = node.inner.repl.appended.subscribe();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        const POSTS: u64 = 60;
        const PEERS: usize = 20;
        let group = rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..POSTS {
                let node = node.clone();
                tasks.push(tokio::spawn(async move {
                    let content = crate::feed::json::parse(
                        format!(r#"{{"type":"post","text":"{i}"}}"#).as_bytes(),
                    )
                    .unwrap();
                    vec![node.publish(content).await.unwrap()]
                }));
            }
            let group = {
                let node = node.clone();
                tokio::task::spawn_blocking(move || {
                    node.group_write(&crate::store::GroupOp::Create).unwrap()
                })
            };
            let marks = {
                let node = node.clone();
                tokio::task::spawn_blocking(move || node.mark_read(&[1, 2, 3]))
            };
            for i in 0..PEERS {
                node.remember(&format!("net:192.0.2.1:{}~shs:{}", 8000 + i, node.id()));
            }
            let mut published = Vec::new();
            for t in tasks {
                published.extend(t.await.unwrap());
            }
            marks.await.unwrap().unwrap();
            let group = group.await.unwrap();
            // Stops the dials `remember` started before they begin, and
            // waits for the notes nobody waited for.
            node.shutdown().await;
            assert_eq!(published.len() as u64, POSTS);
            group
        });
        assert_eq!(group.len(), 1, "a creation is one message");
        let me = node.id();
        let total = POSTS + 1;
        assert_eq!(node.store().latest(&me).unwrap().unwrap().sequence, total);
        let mut from_sessions = Vec::new();
        while let Ok(a) = appended.try_recv() {
            from_sessions.push(a);
        }
        let mut from_events = Vec::new();
        let mut commits = 0;
        while let Ok(e) = events.try_recv() {
            if let NodeEvent::Stored(all) = e {
                commits += 1;
                from_events.extend(all.iter().map(|a| (a.author, a.seq)));
            }
        }
        let every: Vec<(FeedId, u64)> = (1..=total).map(|s| (me, s)).collect();
        from_events.sort();
        assert_eq!(from_events, every, "each message told to subscribers once");
        // The sessions hear of each commit once, with the feed's highest
        // sequence in it: rising from commit to commit, up to the last.
        assert_eq!(from_sessions.len(), commits, "one notice per commit");
        let tops: Vec<u64> = from_sessions
            .iter()
            .map(|n| {
                assert_eq!(n.len(), 1, "one feed, named once: {n:?}");
                assert_eq!(n[0].0, me);
                n[0].1
            })
            .collect();
        assert!(tops.windows(2).all(|w| w[0] < w[1]), "{tops:?}");
        assert_eq!(tops.last(), Some(&total));
        let peers = node.store().peers().unwrap();
        assert_eq!(peers.len(), PEERS);
        assert!(peers.iter().all(|(_, r)| r.source == "connect"));
    }

    #[test]
    fn a_quarter_of_the_slots_is_kept_for_dialling() {
        assert_eq!(incoming_limit(64), 48);
        assert_eq!(incoming_limit(16), 12);
        assert_eq!(incoming_limit(266), 200);
        assert_eq!(incoming_limit(3), 3, "too few to keep any");
        assert_eq!(incoming_limit(0), 0);
    }

    #[test]
    fn each_address_holds_at_most_its_share_of_sockets() {
        let table = Arc::new(PerAddress::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let held: Vec<AddressSlot> = (0..4).map(|_| table.take(a, 4).unwrap()).collect();
        assert!(table.take(a, 4).is_none(), "the fifth from one address");
        let other = table.take(b, 4).expect("another address is let in");
        // The same address written as IPv4-mapped IPv6 is the same address.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(table.take(mapped, 4).is_none());
        drop(held);
        assert!(table.take(a, 4).is_some(), "slots come back when closed");
        drop(other);
        // One IPv6 host owns a /64: its addresses share one count.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _x = table.take(v6("2001:db8:1:2::1"), 2).unwrap();
        let _y = table.take(v6("2001:db8:1:2:ffff::9"), 2).unwrap();
        assert!(table.take(v6("2001:db8:1:2:abcd::1"), 2).is_none());
        assert!(table.take(v6("2001:db8:1:3::1"), 2).is_some());
        // 0 is no limit.
        let many: Vec<_> = (0..100).map(|_| table.take(b, 0).unwrap()).collect();
        assert_eq!(many.len(), 100);
    }
}
