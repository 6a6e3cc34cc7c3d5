//! What a request runs on: the [`Host`] trait, and its two hosts — a
//! home opened by a `shoal` command while no node runs ([`Local`]), and a
//! running [`Node`], whose writes go through its one writer and whose
//! sessions are told of each message.
//!
//! Everything here may block; a node's async parts are waited for on the
//! calling (blocking) thread.

use std::io::BufRead;
use std::path::Path;

use super::{ApiError, KnownPeer, Response, Status};
use std::time::Duration;

use crate::blobs::Blobs;
use crate::crypto::{BlobId, FeedId};
use crate::feed::{Value, VerifiedMsg};
use crate::home::Home;
use crate::ingest::Summary;
use crate::invite::{self, Code, External};
use crate::node::Node;
use crate::replicate::watch::Watch;
use crate::store::{GroupOp, Mute, Store};

/// What `execute` needs of whoever owns the home.
pub trait Host {
    /// Our feed id.
    fn id(&self) -> FeedId;
    /// The store, for reads (opened when first needed).
    fn store(&self) -> Result<&Store, ApiError>;
    /// Appends content to our feed.
    fn publish(&self, content: Value) -> Result<VerifiedMsg, ApiError>;
    /// Publishes a group operation (with any forward it needs first).
    fn group_write(&self, op: &GroupOp) -> Result<Vec<VerifiedMsg>, ApiError>;
    /// Marks messages read.
    fn mark_read(&self, rxs: &[u64]) -> Result<(), ApiError>;
    /// Mutes (`on`) or unmutes something, locally: answers whether it
    /// changed.
    fn set_mute(&self, what: &Mute, on: bool) -> Result<bool, ApiError>;
    /// Verifies and stores the JSON lines of a file; each rejection is
    /// told to `reject` with its line number.
    fn import(&self, path: &Path, reject: &mut dyn FnMut(u64, &str)) -> Result<Summary, ApiError>;
    /// Where peers dial us.
    fn address(&self) -> Option<String>;
    /// Dials a peer and keeps it connected, or remembers it.
    fn connect(&self, address: &str) -> Result<Response, ApiError>;
    /// Live connections and known peers.
    fn peers(&self) -> Result<Response, ApiError>;
    /// Replication progress.
    fn status(&self) -> Result<Status, ApiError>;
    /// How many hops of follows are replicated.
    fn hops(&self) -> u8;
    /// What a running node's sessions saw of each feed (none without one).
    fn watch(&self) -> Option<&Watch>;
    /// The rooms a running node is in, and who attends each (none
    /// without a node).
    fn rooms(&self) -> Vec<(FeedId, Vec<FeedId>)>;
    /// Makes an invite to the room a running node runs, or asks a room
    /// it is in (`room`) for one.
    fn room_invite(&self, room: Option<FeedId>) -> Result<String, ApiError>;
    /// Registers (or revokes) our alias at a room a running node is in:
    /// the alias's link.
    fn room_alias(
        &self,
        room: Option<FeedId>,
        alias: &str,
        revoke: bool,
    ) -> Result<Option<String>, ApiError>;
    /// Connects to `target` through the room at `room_address` (a running
    /// node).
    fn connect_through(&self, room_address: &str, target: FeedId) -> Result<Response, ApiError>;
    /// Redeems an invite at its pub for our feed (nothing is stored).
    fn use_invite(&self, code: &Code) -> Result<(), ApiError>;
    /// Remembers the pub of a redeemed invite and keeps it connected;
    /// answers whether a running node dials it now.
    fn keep_invited(&self, address: &str) -> Result<bool, ApiError>;
    /// The blob store (opened when first needed).
    fn blobs(&self) -> Result<&Blobs, ApiError>;
    /// Asks peers for a blob and waits up to `wait` for it to arrive:
    /// whether anyone is asked (a running node; without one, nobody).
    fn want_blob(&self, id: &BlobId, wait: Duration) -> bool;
    /// A blob of ours was added: a running node tells its peers.
    fn blob_added(&self, id: &BlobId, size: u64);
    /// The retention rules of the config.
    fn retention(&self) -> crate::store::Retention;
    /// Prunes what the retention rules say (with `dry_run`, only plans).
    fn prune(
        &self,
        dry_run: bool,
    ) -> Result<(crate::store::PrunePlan, Option<crate::store::Pruned>), ApiError>;
    /// Searches the store's full-text index (caught up first when no
    /// node keeps it in step).
    fn search(&self, q: &crate::search::SearchQuery) -> Result<crate::search::Results, ApiError>;
    /// The home directory.
    fn home_dir(&self) -> &Path;
    /// Makes an invite this node redeems.
    fn create_invite(
        &self,
        uses: u32,
        note: &str,
        external: Option<&External>,
    ) -> Result<Code, ApiError>;
}

/// What `shoal invite create` says without a running node.
const INVITES_NEED_A_NODE: &str = "invites are redeemed at a running node: start `shoal serve`";

/// Redeems `code` for `feed` on a runtime of its own, on a thread of its
/// own (so that it works whether or not the caller is inside one).
fn redeem_on_own_runtime(code: &Code, net_key: &[u8; 32], feed: &FeedId) -> Result<(), ApiError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ApiError::Failed(format!("cannot start the network: {e}")))?;
            rt.block_on(invite::redeem(code, net_key, feed))
                .map(drop)
                .map_err(|e| ApiError::Failed(e.to_string()))
        })
        .join()
        .unwrap_or_else(|_| Err(ApiError::Failed("redeeming the invite failed".into())))
    })
}

/// A home opened by a `shoal` command while no node runs on it. Its
/// store is opened (and locked) only by the requests that need it, so
/// that `whoami` or `address` never keep a starting node from its store.
pub struct Local {
    home: Home,
    store: std::sync::OnceLock<Store>,
    search: std::sync::OnceLock<crate::search::SearchIndex>,
    blobs: std::sync::OnceLock<Blobs>,
}

impl Local {
    /// Opens the home.
    pub fn open(dir: &Path) -> Result<Local, ApiError> {
        Ok(Local {
            home: Home::open(dir)?,
            store: std::sync::OnceLock::new(),
            search: std::sync::OnceLock::new(),
            blobs: std::sync::OnceLock::new(),
        })
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The search index (opened when first needed; not caught up).
    fn search_index(&self) -> Result<&crate::search::SearchIndex, ApiError> {
        if let Some(ix) = self.search.get() {
            return Ok(ix);
        }
        let ix = self.home.search(self.store()?)?;
        Ok(self.search.get_or_init(|| ix))
    }
}

/// Opens a file to import, or standard input for `-`.
fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>, ApiError> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::io::stdin(),
        )));
    }
    let f = std::fs::File::open(path)
        .map_err(|e| ApiError::Failed(format!("cannot open {}: {e}", path.display())))?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
}

impl Host for Local {
    fn id(&self) -> FeedId {
        self.home.keys().id()
    }

    fn store(&self) -> Result<&Store, ApiError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let store = self.home.store()?;
        Ok(self.store.get_or_init(|| store))
    }

    fn home_dir(&self) -> &Path {
        self.home.dir()
    }

    fn search(&self, q: &crate::search::SearchQuery) -> Result<crate::search::Results, ApiError> {
        let store = self.store()?;
        let index = self.search_index()?;
        index.catch_up(store)?;
        Ok(index.search(store, q)?)
    }

    fn publish(&self, content: Value) -> Result<VerifiedMsg, ApiError> {
        Ok(self
            .store()?
            .append_local(self.home.keys(), content, self.home.sign_cap())?)
    }

    fn blobs(&self) -> Result<&Blobs, ApiError> {
        if let Some(b) = self.blobs.get() {
            return Ok(b);
        }
        let blobs = self.home.blobs()?;
        Ok(self.blobs.get_or_init(|| blobs))
    }

    fn want_blob(&self, _: &BlobId, _: Duration) -> bool {
        false
    }

    fn blob_added(&self, _: &BlobId, _: u64) {}

    fn group_write(&self, op: &GroupOp) -> Result<Vec<VerifiedMsg>, ApiError> {
        Ok(self
            .store()?
            .group_write(self.home.keys(), op, self.home.sign_cap())?)
    }

    fn mark_read(&self, rxs: &[u64]) -> Result<(), ApiError> {
        if !rxs.is_empty() {
            self.store()?.mark_read(rxs)?;
        }
        Ok(())
    }

    fn set_mute(&self, what: &Mute, on: bool) -> Result<bool, ApiError> {
        let store = self.store()?;
        Ok(if on {
            store.mute(what, crate::store::now_ms() as u64)?
        } else {
            store.unmute(what)?
        })
    }

    fn import(&self, path: &Path, reject: &mut dyn FnMut(u64, &str)) -> Result<Summary, ApiError> {
        let input = open_input(path)?;
        let store = self.store()?;
        let index = match self.home.config().search.enabled {
            true => Some(self.search_index()?),
            false => None,
        };
        let done = std::sync::atomic::AtomicBool::new(false);
        let summary = std::thread::scope(|s| {
            // What is imported is indexed as it is stored, beside the
            // import (on the cores it leaves idle), and committed once.
            let follower = index.map(|ix| {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        if let Err(e) = ix.index_new(store) {
                            tracing::warn!(error = %e, "search index: cannot follow the import");
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            });
            let summary = crate::ingest::import(store, input, self.home.sign_cap(), |r| {
                reject(r.line, &r.reason)
            });
            done.store(true, std::sync::atomic::Ordering::Release);
            if let Some(f) = follower {
                let _ = f.join();
            }
            summary
        })
        .map_err(|e| ApiError::Failed(e.to_string()))?;
        // What was imported is searchable before the command ends.
        if let Some(ix) = index {
            ix.catch_up(store)?;
        }
        Ok(summary)
    }

    fn address(&self) -> Option<String> {
        let listen = &self.home.config().listen;
        let (host, port) = listen.rsplit_once(':')?;
        // As a running node says it (see `Node::address`).
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => crate::lan::reachable_at(ip).to_string(),
            Err(_) => host.to_string(),
        };
        Some(format!(
            "net:{host}:{port}~shs:{}",
            self.home.keys().id().b64()
        ))
    }

    fn connect(&self, address: &str) -> Result<Response, ApiError> {
        // The user's choice: dialled whatever its address, also when it
        // was known as a pub announcement.
        self.store()?.note_peer(address, |rec| {
            if rec.source.is_empty() || rec.source == crate::dialer::PUB_SOURCE {
                rec.source = "connect".into();
            }
        })?;
        Ok(Response::Remembered {
            address: address.to_string(),
        })
    }

    fn peers(&self) -> Result<Response, ApiError> {
        let known = self
            .store()?
            .peers()?
            .into_iter()
            .map(|(address, record)| KnownPeer {
                address,
                record,
                dial_failures: None,
            })
            .collect();
        Ok(Response::Peers {
            connected: Vec::new(),
            known,
        })
    }

    fn status(&self) -> Result<Status, ApiError> {
        let config = self.home.config();
        let wanted = self
            .store()?
            .replication_set(&self.home.keys().id(), config.hops)?;
        let store = self.store()?;
        let stats = store.stats()?;
        let held = store.feeds()?;
        let own = own_status(store)?;
        Ok(Status {
            id: self.home.keys().id().to_string(),
            address: None,
            peers: 0,
            feeds_wanted: wanted.len() as u64,
            feeds_held: wanted
                .keys()
                .filter(|f| held.iter().any(|(h, _)| h == *f))
                .count() as u64,
            messages: stats.messages,
            feeds_stored: stats.feeds,
            forks: stats.forks,
            unread: stats.unread,
            running: Some(false),
            max_connections: config.max_connections,
            max_incoming: None,
            hops: config.hops,
            limits: config.limits().to_json(),
            behind: Vec::new(),
            partial: partial(store)?,
            publishing_held: own.publishing_held,
            restoring: own.restoring,
            own_fork: own.own_fork,
        })
    }

    fn hops(&self) -> u8 {
        self.home.config().hops
    }

    fn watch(&self) -> Option<&Watch> {
        None
    }

    fn rooms(&self) -> Vec<(FeedId, Vec<FeedId>)> {
        Vec::new()
    }

    fn room_invite(&self, _room: Option<FeedId>) -> Result<String, ApiError> {
        Err(ApiError::Failed(
            "invites to a room are made by the running room: start `shoal room serve`".into(),
        ))
    }

    fn room_alias(
        &self,
        _room: Option<FeedId>,
        _alias: &str,
        _revoke: bool,
    ) -> Result<Option<String>, ApiError> {
        Err(ApiError::Failed(
            "aliases are registered at a room the running node is in: start `shoal serve`".into(),
        ))
    }

    fn connect_through(&self, _room_address: &str, _target: FeedId) -> Result<Response, ApiError> {
        Err(ApiError::Failed(
            "connecting through a room needs the running node: start `shoal serve`".into(),
        ))
    }

    fn use_invite(&self, code: &Code) -> Result<(), ApiError> {
        redeem_on_own_runtime(code, &self.home.network_key()?, &self.id())
    }

    fn keep_invited(&self, address: &str) -> Result<bool, ApiError> {
        self.store()?.note_peer(address, |rec| {
            if rec.source.is_empty() || rec.source == crate::dialer::PUB_SOURCE {
                rec.source = invite::PEER_SOURCE.into();
            }
        })?;
        Ok(false)
    }

    fn create_invite(&self, _: u32, _: &str, _: Option<&External>) -> Result<Code, ApiError> {
        Err(ApiError::Failed(INVITES_NEED_A_NODE.into()))
    }

    fn retention(&self) -> crate::store::Retention {
        self.home.retention()
    }

    fn prune(
        &self,
        dry_run: bool,
    ) -> Result<(crate::store::PrunePlan, Option<crate::store::Pruned>), ApiError> {
        let (plan, done) =
            self.store()?
                .apply_retention(&self.id(), &self.home.retention(), dry_run)?;
        // An index built earlier forgets what went (searches skip it
        // anyway: this gives its space back).
        if let Some(done) = &done
            && !done.rxs.is_empty()
            && self.home.dir().join("search").exists()
        {
            self.search_index()?.remove(&done.rxs)?;
        }
        Ok((plan, done))
    }
}

/// Waits for a node's future on this (blocking) thread.
fn wait<T>(f: impl std::future::Future<Output = T>) -> Result<T, ApiError> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|_| ApiError::Failed("the node's runtime is gone".into()))?;
    Ok(rt.block_on(f))
}

impl Host for Node {
    fn id(&self) -> FeedId {
        Node::id(self)
    }

    fn retention(&self) -> crate::store::Retention {
        Node::retention(self)
    }

    fn prune(
        &self,
        dry_run: bool,
    ) -> Result<(crate::store::PrunePlan, Option<crate::store::Pruned>), ApiError> {
        Ok(self.prune_now(dry_run)?)
    }

    fn store(&self) -> Result<&Store, ApiError> {
        Ok(Node::store(self))
    }

    fn home_dir(&self) -> &Path {
        Node::home_dir(self)
    }

    fn search(&self, q: &crate::search::SearchQuery) -> Result<crate::search::Results, ApiError> {
        let Some(index) = self.search_index() else {
            return Err(ApiError::Failed(
                "search is off in this running node (`[search] enabled` in config.toml, or its index could not be opened: see its log)".into(),
            ));
        };
        Ok(index.search(Node::store(self), q)?)
    }

    fn publish(&self, content: Value) -> Result<VerifiedMsg, ApiError> {
        Ok(wait(Node::publish(self, content))??)
    }

    fn blobs(&self) -> Result<&Blobs, ApiError> {
        Ok(Node::blobs(self))
    }

    fn want_blob(&self, id: &BlobId, within: Duration) -> bool {
        let _ = wait(Node::want_blob(self, *id, within));
        true
    }

    fn blob_added(&self, id: &BlobId, size: u64) {
        Node::blob_added(self, *id, size);
    }

    fn group_write(&self, op: &GroupOp) -> Result<Vec<VerifiedMsg>, ApiError> {
        Ok(Node::group_write(self, op)?)
    }

    fn mark_read(&self, rxs: &[u64]) -> Result<(), ApiError> {
        if !rxs.is_empty() {
            Node::mark_read(self, rxs)?;
        }
        Ok(())
    }

    fn set_mute(&self, what: &Mute, on: bool) -> Result<bool, ApiError> {
        Ok(Node::set_mute(self, what, on)?)
    }

    fn import(&self, path: &Path, reject: &mut dyn FnMut(u64, &str)) -> Result<Summary, ApiError> {
        if path == Path::new("-") {
            return Err(ApiError::Failed(
                "a node is running on this home: import a file path, not standard input".into(),
            ));
        }
        let input = open_input(path)?;
        crate::ingest::import_through(
            input,
            |items| {
                wait(self.submit(items)).unwrap_or_else(|e| {
                    vec![crate::ingest::LineResult::Rejected(e.to_string()); items.len()]
                })
            },
            |r| reject(r.line, &r.reason),
        )
        .map_err(|e| ApiError::Failed(e.to_string()))
    }

    fn address(&self) -> Option<String> {
        Node::address(self)
    }

    fn connect(&self, address: &str) -> Result<Response, ApiError> {
        let peer = wait(Node::connect(self, address))??;
        self.remember(address);
        Ok(Response::Connected { connected: peer })
    }

    fn peers(&self) -> Result<Response, ApiError> {
        let known = Node::store(self)
            .peers()?
            .into_iter()
            .map(|(address, record)| KnownPeer {
                dial_failures: Some(self.dial_failures(&address)),
                address,
                record,
            })
            .collect();
        Ok(Response::Peers {
            connected: Node::peers(self),
            known,
        })
    }

    fn status(&self) -> Result<Status, ApiError> {
        let p = self.progress()?;
        let stats = Node::store(self).stats()?;
        let own = own_status(Node::store(self))?;
        Ok(Status {
            id: self.id().to_string(),
            address: Node::address(self),
            peers: p.peers,
            feeds_wanted: p.feeds_wanted,
            feeds_held: p.feeds_held,
            messages: stats.messages,
            feeds_stored: stats.feeds,
            forks: stats.forks,
            unread: stats.unread,
            running: None,
            max_connections: p.max_connections,
            max_incoming: Some(p.max_incoming),
            hops: p.hops,
            limits: p.limits,
            behind: behind(self)?,
            partial: partial(Node::store(self))?,
            publishing_held: own.publishing_held,
            restoring: own.restoring,
            own_fork: own.own_fork,
        })
    }

    fn use_invite(&self, code: &Code) -> Result<(), ApiError> {
        wait(invite::redeem(code, self.network_key(), &self.id()))?
            .map(drop)
            .map_err(|e| ApiError::Failed(e.to_string()))
    }

    fn keep_invited(&self, address: &str) -> Result<bool, ApiError> {
        wait(Node::keep_invited(self, address))??;
        Ok(true)
    }

    fn create_invite(
        &self,
        uses: u32,
        note: &str,
        external: Option<&External>,
    ) -> Result<Code, ApiError> {
        Ok(wait(Node::create_invite(self, uses, note, external))??)
    }

    fn hops(&self) -> u8 {
        Node::hops(self)
    }

    fn watch(&self) -> Option<&Watch> {
        Some(Node::watch(self))
    }

    fn rooms(&self) -> Vec<(FeedId, Vec<FeedId>)> {
        Node::rooms(self)
    }

    fn room_invite(&self, room: Option<FeedId>) -> Result<String, ApiError> {
        Ok(wait(Node::room_invite(self, room))??)
    }

    fn room_alias(
        &self,
        room: Option<FeedId>,
        alias: &str,
        revoke: bool,
    ) -> Result<Option<String>, ApiError> {
        Ok(wait(Node::room_alias(self, room, alias, revoke))??)
    }

    fn connect_through(&self, room_address: &str, target: FeedId) -> Result<Response, ApiError> {
        let peer = wait(Node::connect_through(self, room_address, target))??;
        Ok(Response::Connected { connected: peer })
    }
}

/// What `shoal status` says of our own feed's safety.
struct OwnStatus {
    publishing_held: Option<String>,
    restoring: bool,
    own_fork: Option<super::OwnFork>,
}

/// The feeds held from above their first message.
fn partial(store: &crate::store::Store) -> Result<Vec<super::Partial>, ApiError> {
    Ok(store
        .partial_feeds()?
        .into_iter()
        .map(|(f, r)| super::Partial {
            feed: f.to_string(),
            from: r.from,
            to: r.to,
        })
        .collect())
}

fn own_status(store: &crate::store::Store) -> Result<OwnStatus, ApiError> {
    let hold = store.own_hold()?;
    let json = |b: &[u8]| serde_json::from_slice(b).unwrap_or(serde_json::Value::Null);
    let own_fork = match &hold {
        Some(crate::store::OwnHold::Forked {
            sequence,
            ours,
            theirs,
        }) => {
            let ours = match ours {
                Some(id) => store.get(id)?.map(|m| json(&m.json)),
                None => None,
            };
            Some(super::OwnFork {
                sequence: *sequence,
                ours,
                theirs: json(theirs),
            })
        }
        _ => None,
    };
    Ok(OwnStatus {
        restoring: matches!(hold, Some(crate::store::OwnHold::Restoring { .. })),
        publishing_held: hold.map(|h| h.to_string()),
        own_fork,
    })
}

/// How long a peer's claim must stand above what we hold before `shoal
/// status` lists the feed as behind.
const BEHIND_AFTER_MS: u64 = 60_000;

/// Feeds a connected peer has claimed more of than we hold for over a
/// minute.
fn behind(node: &Node) -> Result<Vec<super::Behind>, ApiError> {
    let held: std::collections::HashMap<FeedId, u64> = Node::store(node)
        .feeds()?
        .into_iter()
        .map(|(f, s)| (f, s.sequence))
        .collect();
    let now = crate::store::now_ms() as u64;
    Ok(Node::watch(node)
        .behind(|f| held.get(f).copied().unwrap_or(0), BEHIND_AFTER_MS, now)
        .into_iter()
        .map(|b| super::Behind {
            feed: b.feed.to_string(),
            held: b.held,
            claim: super::PeerClaim {
                peer: b.claim.peer.to_string(),
                seq: b.claim.seq,
                since_ms: b.claim.since_ms,
            },
        })
        .collect())
}
