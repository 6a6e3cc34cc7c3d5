//! The redb store: messages exactly as verified, and their indexes.
//!
//! Owns the database file and every write to it. Synchronous (callers in
//! async code run it on a blocking thread). Accepts only
//! [`VerifiedMsg`](crate::feed::VerifiedMsg): nothing unverified can be
//! stored. Each public write is ONE redb write transaction, so a reader or a
//! crash sees all of it or none of it. Imports `crypto` and `feed`; never
//! imports networking or UI code.

mod devices;
mod groups;
mod held;
mod ids;
pub use held::{HeldRange, RangeOutcome};
mod index;
mod invites;
mod mutes;
pub use mutes::{MAX_MUTE_WORD, MAX_MUTES, Mute, MuteError, Mutes};
mod own;
pub use own::{Claim, OwnHold};
mod prune;
pub use prune::{FeedPrune, PRUNE_CHUNK, PrunePlan, Pruned, Retention, StorageReport};
mod rooms;
pub use rooms::{AliasRefusal, RoomAlias, RoomInviteRefusal};
mod query;
mod revisions;
pub use revisions::MAX_REVISIONS;
pub mod schema;

pub use devices::{Devices, MAX_DEVICES};
pub use groups::{EpochInfo, GroupInfo, GroupOp, GroupWriteError};
pub use index::sort_time;
pub use invites::{Invite, InviteRefusal};
pub use query::*;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _};

use crate::crypto::{FeedId, FeedMap, FeedSet, Keypair, MsgId};
use crate::feed::{self, FeedState, SignedMsg, ValidationError, Value, VerifiedMsg};
use crate::private::groups::Position;
use crate::private::{self, Unboxer};
use schema::*;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb failed (I/O, corruption, a full disk).
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    /// Another process holds the database.
    #[error("the store is in use by another shoal process")]
    Locked,
    /// The file was written by a newer or older, incompatible shoal.
    #[error(
        "store schema version {found} is not supported (this shoal reads version {SCHEMA_VERSION})"
    )]
    Schema {
        /// The version found in the file.
        found: u64,
    },
    /// A message we built ourselves did not validate (e.g. too large).
    #[error("cannot publish: {0}")]
    Invalid(#[from] ValidationError),
    /// A stored record is not in the expected layout.
    #[error("corrupt record in the store: {0}")]
    Corrupt(&'static str),
    /// A group operation of ours was refused.
    #[error("{0}")]
    Group(#[from] GroupWriteError),
    /// The store was opened without an identity, and this needs one.
    #[error("the store was opened without an identity")]
    NoIdentity,
    /// An invite was to be recorded under a key that already has one
    /// (keys come from fresh random seeds: this does not happen).
    #[error("an invite with this key is already recorded")]
    InviteExists,
    /// The thread that makes a running node's writes has stopped, so the
    /// write was not made.
    #[error("the node's store writer has stopped")]
    WriterStopped,
    /// Publishing is held so that our feed does not fork (see
    /// [`OwnHold`]): why.
    #[error("not published: {0}")]
    Held(String),
    /// Compaction waited this long for the transactions in progress to
    /// end, and they did not.
    #[error("the store stayed busy for {0} s; compaction not done, nothing changed")]
    Busy(u64),
    /// A mute was refused.
    #[error("{0}")]
    Mute(#[from] MuteError),
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
redb_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CursorError
);

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
            other => StoreError::Db(other.into()),
        }
    }
}

/// Result type of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A message as stored: its id, where it sits in the local log, when it
/// arrived, and the compact JSON of its value.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMsg {
    /// Message id.
    pub key: MsgId,
    /// Local receive sequence.
    pub rx: u64,
    /// Receive time, ms since the epoch.
    pub received: f64,
    /// `JSON.stringify(value)`.
    pub json: Vec<u8>,
}

impl StoredMsg {
    fn decode(rx: u64, rec: &[u8]) -> Result<StoredMsg> {
        if rec.len() < LOG_RECORD_HEAD {
            return Err(StoreError::Corrupt("log record shorter than its header"));
        }
        Ok(StoredMsg {
            key: MsgId(rec[..32].try_into().expect("32 bytes")),
            rx,
            received: f64::from_le_bytes(rec[32..40].try_into().expect("8 bytes")),
            json: rec[LOG_RECORD_HEAD..].to_vec(),
        })
    }

    /// The `{"key":…,"value":…,"timestamp":…}` line of `shoal log`.
    pub fn to_kvt(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json.len() + 100);
        out.extend_from_slice(b"{\"key\":\"");
        out.extend_from_slice(self.key.to_string().as_bytes());
        out.extend_from_slice(b"\",\"value\":");
        out.extend_from_slice(&self.json);
        out.extend_from_slice(b",\"timestamp\":");
        feed::json::write_number(&mut out, self.received);
        out.push(b'}');
        out
    }

    /// The author a parsed message value names (`None`: not a feed id).
    pub fn author_in(value: &Value) -> Option<FeedId> {
        value
            .get("author")
            .and_then(Value::as_str)
            .and_then(FeedId::parse)
    }

    /// The parsed value.
    pub fn value(&self) -> Result<Value> {
        feed::json::parse(&self.json).map_err(|_| StoreError::Corrupt("stored JSON does not parse"))
    }
}

/// Appends to `out` the messages of `author` with sequence > `since`, at
/// most `limit`, in feed order. A run of them at consecutive receive
/// sequences (as a range, or one feed's messages of a batch, is stored:
/// see [`Store::ingest_stream`]) is read with one walk along the log
/// instead of one descent of its tree for each message: the descents were
/// about half of what a node serving a first sync spent (README "Import").
fn feed_range(
    feeds: &impl redb::ReadableTable<&'static [u8; 40], u64>,
    log: &impl redb::ReadableTable<u64, &'static [u8]>,
    author: &FeedId,
    since: u64,
    limit: usize,
    out: &mut Vec<StoredMsg>,
) -> Result<()> {
    const MISSING: StoreError = StoreError::Corrupt("feed index points at a missing log entry");
    let from = feed_key(&author.0, since.saturating_add(1));
    let to = feed_key(&author.0, u64::MAX);
    let mut rxs = Vec::new();
    for entry in feeds.range::<&[u8; 40]>(&from..=&to)?.take(limit) {
        rxs.push(entry?.1.value());
    }
    let mut rest = &rxs[..];
    while let Some(&first) = rest.first() {
        let run = 1 + rest
            .windows(2)
            .take_while(|w| w[1] == w[0].wrapping_add(1))
            .count();
        if run == 1 {
            let rec = log.get(first)?.ok_or(MISSING)?;
            out.push(StoredMsg::decode(first, rec.value())?);
        } else {
            let mut read = 0;
            for (entry, &rx) in log.range(first..=rest[run - 1])?.zip(&rest[..run]) {
                let (key, rec) = entry?;
                if key.value() != rx {
                    return Err(MISSING);
                }
                out.push(StoredMsg::decode(rx, rec.value())?);
                read += 1;
            }
            if read != run {
                return Err(MISSING);
            }
        }
        rest = &rest[run..];
    }
    Ok(())
}

/// What became of one message handed to [`Store::ingest`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Stored and indexed.
    Stored,
    /// The store already holds this very message.
    Duplicate,
    /// Refused: not the next message of its feed as the store has it (a
    /// fork is recorded in the forks table).
    Refused(ValidationError),
}

/// Checked messages for [`Store::ingest_stream`]: a batch of messages
/// that each follow their feed's latest, or a range of one feed placed at
/// an anchor, written whole or not at all.
pub trait Placed {
    /// The messages, in order.
    fn msgs(&self) -> &[VerifiedMsg];
    /// Messages of a batch (not a range) at sequences the store already
    /// holds: each is checked against it in the same transaction, a
    /// duplicate when identical, else a fork, recorded and refused.
    fn known(&self) -> &[SignedMsg] {
        &[]
    }
    /// Where they sit when they are a range of one feed
    /// ([`Store::ingest_range`]); `None` for a batch.
    fn range(&self) -> Option<crate::feed::RangeAnchor> {
        None
    }
}

impl Placed for Vec<VerifiedMsg> {
    fn msgs(&self) -> &[VerifiedMsg] {
        self
    }
}

/// What became of one [`Placed`] that [`Store::ingest_stream`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// A batch: each message's outcome, in order, and each known one's.
    Each {
        /// Of [`Placed::msgs`].
        fresh: Vec<Outcome>,
        /// Of [`Placed::known`]: `Duplicate`, or a refused fork.
        known: Vec<Outcome>,
    },
    /// A range: written whole, or not at all.
    Range(RangeOutcome),
}

/// One edge of the contact graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact {
    /// The author follows the target.
    Follow,
    /// The author blocks the target.
    Block,
}

/// A peer we know of, as kept in the peers table.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PeerRecord {
    /// When we last had a connection with it (ms since the epoch).
    pub last_seen: Option<f64>,
    /// Failed connection attempts since the last success, as written by
    /// earlier versions (a running node now counts failed dials in memory,
    /// so that a failing peer costs no write).
    pub failures: u32,
    /// Where it came from: `connect`, `config`, `pub`, `incoming`.
    pub source: String,
    /// For a `pub` announcement: the feeds that announced it (at most
    /// [`MAX_ANNOUNCERS`], the latest), so that the node dials only what
    /// feeds it follows announced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub announced_by: Vec<String>,
}

/// The most announcers kept for one pub address.
pub const MAX_ANNOUNCERS: usize = 16;

/// The wall clock in ms since the epoch, whole milliseconds.
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
        .floor()
}

fn decode_latest(v: &[u8; 40]) -> FeedState {
    FeedState {
        sequence: u64::from_le_bytes(v[..8].try_into().expect("8 bytes")),
        id: MsgId(v[8..].try_into().expect("32 bytes")),
    }
}

fn encode_latest(s: &FeedState) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&s.sequence.to_le_bytes());
    v[8..].copy_from_slice(&s.id.0);
    v
}

/// Counts of what the store holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Messages stored.
    pub messages: u64,
    /// Feeds with at least one message.
    pub feeds: u64,
    /// Recorded forks.
    pub forks: u64,
    /// Messages for us not yet read.
    pub unread: u64,
}

/// The store: one redb database file, and the identity it indexes for.
pub struct Store {
    /// The database, behind a lock only [`Store::compact`] takes for
    /// writing: every transaction begins under a read lock, released as
    /// soon as it has begun.
    db: std::sync::RwLock<Database>,
    me: Option<Me>,
    /// A write processed group messages since [`Store::take_groups_changed`]
    /// last looked: we may owe a group a request or an answer.
    groups_changed: std::sync::atomic::AtomicBool,
    /// Bumped by every write that changed the contact graph: who is
    /// replicated may have changed (see [`Store::contacts_generation`]).
    contacts_generation: std::sync::atomic::AtomicU64,
}

/// Whose store this is: private messages to this feed are opened at ingest,
/// and messages for it are marked unread.
struct Me {
    id: FeedId,
    unboxer: Unboxer,
    keys: Keypair,
    /// Group states and keys; `None` until first needed, and again after a
    /// write failed half-way (it is then rebuilt from the committed tables).
    book: Mutex<Option<groups::Book>>,
}

/// Opens (creating if needed) the database file readable and writable by
/// its owner only (0600), tightening a file others could read: it holds
/// opened private messages and group keys.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Page cache for redb: enough for the indexes of a few million messages,
/// small enough to keep a node's memory bounded. A node serving history
/// reads a feed's messages from all over the log (it is in receive order):
/// with 32 MB a 100,000-message log did not fit, and serving it cost a
/// replicating pair 0.2 core-seconds more (README "Import").
const CACHE_BYTES: usize = 128 * 1024 * 1024;

impl Store {
    /// Gives the space pruning freed back to the file system (redb
    /// compaction), also in a running node: new transactions wait while it
    /// runs (writes wait, none is lost), and it starts once those in
    /// progress have ended, waiting at most `wait` for them.
    pub fn compact(&self, wait: std::time::Duration) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            {
                let mut db = self
                    .db
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match db.compact() {
                    Ok(_) => return Ok(()),
                    Err(redb::CompactionError::TransactionInProgress) => {}
                    Err(e) => return Err(redb::Error::from(e).into()),
                }
            }
            if started.elapsed() >= wait {
                return Err(StoreError::Busy(wait.as_secs()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The database, to begin a transaction on (see [`Store::compact`]).
    fn db(&self) -> std::sync::RwLockReadGuard<'_, Database> {
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens (creating if needed) the store at `path`, indexing for nobody
    /// in particular: boxes stay closed and nothing is marked unread. A
    /// version-1 store is upgraded only by [`Store::open_as`].
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with(path, None)
    }

    /// Opens the store of the identity `keys`: private messages to it are
    /// opened at ingest, and messages for it are marked unread.
    pub fn open_as(path: &Path, keys: &Keypair) -> Result<Store> {
        Self::open_with(
            path,
            Some(Me {
                id: keys.id(),
                unboxer: Unboxer::new(keys),
                keys: keys.clone(),
                book: Mutex::new(None),
            }),
        )
    }

    fn open_with(path: &Path, me: Option<Me>) -> Result<Store> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_file(private_file(path).map_err(redb::Error::Io)?)?;
        let store = Store {
            db: std::sync::RwLock::new(db),
            me,
            groups_changed: std::sync::atomic::AtomicBool::new(true),
            contacts_generation: std::sync::atomic::AtomicU64::new(0),
        };
        let txn = store.db().begin_write()?;
        let found = txn
            .open_table(META)?
            .get("schema_version")?
            .map(|v| v.value());
        // Version 7 and before kept ids whole (in every version's store,
        // also one that stays at its version below).
        ids::upgrade(&txn)?;
        // Creates every table that does not exist yet.
        Writer::open(&txn, None)?.finish()?;
        let upgrade = match found {
            None | Some(SCHEMA_VERSION) => true,
            // Version 1 lacked the content indexes, version 2 the group
            // tables: they are built in this transaction, so the new version
            // is written with them or not at all. Only for an identity:
            // without one, boxes to it would stay closed for good; the store
            // stays at its version until it is opened as its owner
            // (reindexing again then is harmless). Version 3 groups used
            // a format without cuts, in the clear: their tables are rebuilt
            // from the log under the current rules (the old messages no
            // longer open).
            Some(1..=3) if store.me.is_some() => {
                txn.delete_table(GROUP_CTRL)?;
                txn.delete_table(GROUP_PENDING)?;
                txn.delete_table(GROUP_KEYS)?;
                txn.delete_table(GROUP_POSTS)?;
                Writer::open(&txn, None)?.finish()?;
                store.reindex(&txn)?;
                true
            }
            Some(1..=3) => false,
            // Version 4 did not index device links: read them from the log.
            Some(4) => {
                store.index_same_as(&txn)?;
                revisions::index_revisions(&txn)?;
                true
            }
            // Version 5 held every feed from sequence 1: no held ranges.
            // Versions 5 and 6 indexed revisions as posts: moved to their
            // own index.
            Some(5 | 6) => {
                revisions::index_revisions(&txn)?;
                true
            }
            // Version 7 differs only in its id index, moved above.
            Some(7) => true,
            Some(found) => return Err(StoreError::Schema { found }),
        };
        if upgrade {
            txn.open_table(META)?
                .insert("schema_version", SCHEMA_VERSION)?;
        }
        {
            let mut meta = txn.open_table(META)?;
            if meta.get(STORE_ID)?.is_none() {
                let id = u64::from_le_bytes(crate::crypto::random_bytes::<8>());
                meta.insert(STORE_ID, id)?;
            }
        }
        txn.commit()?;
        Ok(store)
    }

    /// Indexes the device links (`sameAs`) of the public contact messages
    /// in the log: the upgrade from version 4, which kept none.
    fn index_same_as(&self, txn: &redb::WriteTransaction) -> Result<()> {
        let log = txn.open_table(LOG)?;
        let mut same_as = txn.open_table(SAME_AS)?;
        for e in log.iter()? {
            let (rx, rec) = e?;
            let m = StoredMsg::decode(rx.value(), rec.value())?;
            let value = m.value()?;
            let Some(author) = StoredMsg::author_in(&value) else {
                continue;
            };
            let content = value.get("content").unwrap_or(&Value::Null);
            if let crate::feed::content::Content::Contact(c) = crate::feed::content::parse(content)
                && let Some((k, v)) = index::same_as_entry(&author, &c, m.rx)
            {
                same_as.insert(&k, &v)?;
            }
        }
        Ok(())
    }

    /// Rebuilds the content indexes from the log, inside `txn`.
    fn reindex(&self, txn: &redb::WriteTransaction) -> Result<()> {
        let mut w = Writer::open(txn, self.me.as_ref())?;
        let mut book = self.me.as_ref().map(|me| groups::Book::new(&me.keys));
        let mut after = 0u64;
        loop {
            let page: Vec<(u64, Vec<u8>)> = w
                .log
                .range(after + 1..)?
                .take(10_000)
                .map(|e| e.map(|(k, v)| (k.value(), v.value().to_vec())))
                .collect::<Result<_, _>>()?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            for (rx, rec) in page {
                let m = StoredMsg::decode(rx, &rec)?;
                let value = m.value()?;
                let author = StoredMsg::author_in(&value)
                    .ok_or(StoreError::Corrupt("stored message without an author"))?;
                let content = value.get("content").unwrap_or(&Value::Null);
                let opened = self.open_box(content);
                w.index(&index::Indexed {
                    rx,
                    id: m.key,
                    author,
                    claimed: value
                        .get("timestamp")
                        .and_then(Value::as_f64)
                        .filter(|t| t.is_finite()),
                    received: m.received,
                    content,
                    opened: opened.as_ref().map(|(b, v)| (b.as_slice(), v)),
                    fresh: false,
                })?;
                if let (Some(book), Some(item)) = (book.as_mut(), groups::item_of(&m, &value)?) {
                    book.process(&mut w, vec![item])?;
                }
            }
        }
        w.finish()?;
        if let (Some(me), Some(book)) = (self.me.as_ref(), book) {
            *me.book.lock().expect("group book lock") = Some(book);
        }
        Ok(())
    }

    /// The group book, loaded if needed and locked; `None` without an
    /// identity.
    fn book(&self) -> Result<Option<std::sync::MutexGuard<'_, Option<groups::Book>>>> {
        let Some(me) = self.me.as_ref() else {
            return Ok(None);
        };
        let mut guard = me.book.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(groups::Book::load(&self.db(), &me.keys)?);
        }
        Ok(Some(guard))
    }

    /// Runs `f` with the group book (loaded if needed; `None` without an
    /// identity). When `f` fails, the book may be ahead of the committed
    /// tables, so it is dropped and rebuilt on next use.
    fn with_book<T>(&self, f: impl FnOnce(Option<&mut groups::Book>) -> Result<T>) -> Result<T> {
        let Some(mut guard) = self.book()? else {
            return f(None);
        };
        let r = f(guard.as_mut());
        if r.is_err() {
            *guard = None;
        }
        r
    }

    /// Stores the group messages a write queued, with the book.
    fn process_groups(&self, w: &mut Writer<'_>, book: Option<&mut groups::Book>) -> Result<()> {
        let queue = std::mem::take(&mut w.group_queue);
        if let (Some(book), false) = (book, queue.is_empty()) {
            book.process(w, queue)?;
            self.groups_changed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// How many writes changed the contact graph since the store was
    /// opened: when it moves, the feeds to replicate may have changed.
    pub fn contacts_generation(&self) -> u64 {
        self.contacts_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Tells watchers of the contact graph that a committed write changed
    /// it (`touched`: the write's [`Writer::contacts_touched`]).
    fn committed(&self, touched: bool) {
        if touched {
            self.contacts_generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Whether group messages were stored since the last call (then
    /// [`Store::group_duties`] may have something to publish).
    pub fn take_groups_changed(&self) -> bool {
        self.groups_changed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Opens a boxed content string with our key, when it is one for us.
    /// The opened content of each box of `batch` we can open (an empty
    /// list when there is none), before a write transaction, on every
    /// core: one key agreement each. A batch without boxes does not touch
    /// the thread pool, whose workers may be busy verifying the next batch.
    fn open_boxes(&self, batch: &[VerifiedMsg]) -> Vec<Option<(Vec<u8>, Value)>> {
        use rayon::prelude::*;
        let mut opened = Vec::new();
        if self.me.is_none() {
            return opened;
        }
        let boxed: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i].content().as_str().is_some_and(private::is_boxed))
            .collect();
        if !boxed.is_empty() {
            opened.resize_with(batch.len(), || None);
            let got: Vec<_> = boxed
                .par_iter()
                .map(|&i| (i, self.open_box(batch[i].content())))
                .collect();
            for (i, o) in got {
                opened[i] = o;
            }
        }
        opened
    }

    fn open_box(&self, content: &Value) -> Option<(Vec<u8>, Value)> {
        let me = self.me.as_ref()?;
        let s = content.as_str()?;
        if !private::is_boxed(s) {
            return None;
        }
        index::opened_content(me.unboxer.open(s).ok()??)
    }

    /// Our feed id, when the store was opened for an identity.
    pub fn me(&self) -> Option<FeedId> {
        self.me.as_ref().map(|m| m.id)
    }

    /// The bytes of a feed's messages we hold (their JSON).
    pub fn feed_bytes(&self, author: &FeedId) -> Result<u64> {
        let txn = self.db().begin_read()?;
        let feeds = txn.open_table(FEEDS)?;
        let log = txn.open_table(LOG)?;
        let mut total = 0u64;
        for e in
            feeds.range::<&[u8; 40]>(&feed_key(&author.0, 0)..=&feed_key(&author.0, u64::MAX))?
        {
            let rx = e?.1.value();
            if let Some(rec) = log.get(rx)? {
                total += rec.value().len().saturating_sub(40) as u64;
            }
        }
        Ok(total)
    }

    /// The latest message of a feed, if we hold any.
    pub fn latest(&self, author: &FeedId) -> Result<Option<FeedState>> {
        let txn = self.db().begin_read()?;
        let t = txn.open_table(LATEST)?;
        Ok(t.get(&author.0)?.map(|v| decode_latest(v.value())))
    }

    /// Builds, signs, validates and stores the next message of our own feed,
    /// in ONE write transaction: nothing half-written is ever visible, and two
    /// concurrent publishers cannot both take the same sequence.
    pub fn append_local(
        &self,
        keys: &Keypair,
        content: Value,
        hmac: Option<&[u8; 32]>,
    ) -> Result<VerifiedMsg> {
        self.append_with(keys, hmac, |_, _| Ok(Some(content)))?
            .ok_or(StoreError::Corrupt("content vanished"))
    }

    /// [`Store::append_local`] for several contents in ONE write
    /// transaction (one commit, one fsync, however many): what a node does
    /// with the publishes that queued while the last commit ran. Each
    /// content gets its own outcome; one that does not validate (too large)
    /// takes no sequence and does not stop the others.
    pub fn append_local_many(
        &self,
        keys: &Keypair,
        contents: Vec<Value>,
        hmac: Option<&[u8; 32]>,
    ) -> Result<Vec<Result<VerifiedMsg>>> {
        let txn = self.db().begin_write()?;
        self.check_own_hold(&txn, &keys.id())?;
        self.with_book(|book| {
            let mut w = Writer::open(&txn, self.me.as_ref())?;
            let mut out = Vec::with_capacity(contents.len());
            for content in contents {
                out.push(self.put_own(&mut w, keys, hmac, content)?);
            }
            self.process_groups(&mut w, book)?;
            let touched = w.contacts_touched;
            w.finish()?;
            txn.commit()?;
            self.committed(touched);
            Ok(out)
        })
    }

    /// Builds, signs, validates and puts the next message of our feed in a
    /// write; the inner error is this message's own (it is not stored).
    fn put_own(
        &self,
        w: &mut Writer<'_>,
        keys: &Keypair,
        hmac: Option<&[u8; 32]>,
        content: Value,
    ) -> Result<Result<VerifiedMsg>> {
        let author = keys.id();
        let state = w.latest(&author)?;
        let ts = now_ms();
        // Claimed times of one feed should not go backwards.
        let ts = match state {
            Some(_) => ts.max(w.latest_timestamp(&author)?.unwrap_or(0.0)),
            None => ts,
        };
        let value = feed::build(keys, state.as_ref(), ts, content, hmac);
        let msg = match feed::validate(state.as_ref(), hmac, value) {
            Ok(m) => m,
            Err(e) => return Ok(Err(StoreError::Invalid(e))),
        };
        let opened = self.open_box(msg.content());
        Ok(match w.put(&msg, ts, opened.as_ref())? {
            Outcome::Stored => Ok(msg),
            Outcome::Duplicate => Err(StoreError::Corrupt("own message already stored")),
            Outcome::Refused(e) => Err(StoreError::Invalid(e)),
        })
    }

    /// Like [`Store::append_local`], with content made inside the write
    /// transaction from the group book and the exact position the message
    /// gets (group messages are bound to it). `make` returning `None`
    /// writes nothing.
    fn append_with(
        &self,
        keys: &Keypair,
        hmac: Option<&[u8; 32]>,
        make: impl FnOnce(Option<&groups::Book>, &Position) -> Result<Option<Value>>,
    ) -> Result<Option<VerifiedMsg>> {
        let txn = self.db().begin_write()?;
        self.check_own_hold(&txn, &keys.id())?;
        self.with_book(|book| {
            let mut w = Writer::open(&txn, self.me.as_ref())?;
            let author = keys.id();
            let state = w.latest(&author)?;
            let pos = Position {
                author,
                sequence: state.map_or(1, |s| s.sequence + 1),
                previous: state.map(|s| s.id),
            };
            let Some(content) = make(book.as_deref(), &pos)? else {
                return Ok(None);
            };
            let msg = self.put_own(&mut w, keys, hmac, content)??;
            self.process_groups(&mut w, book)?;
            let touched = w.contacts_touched;
            w.finish()?;
            txn.commit()?;
            self.committed(touched);
            Ok(Some(msg))
        })
    }

    /// Publishes a group operation of ours: first whatever we owe the group
    /// (a request for keys we miss, answers to members' requests), then the
    /// operation, each in its own transaction and made from the group
    /// state as that transaction sees it. A removal or demotion cuts each
    /// feed at the last message of it we hold. Returns the messages
    /// written, the operation's last.
    pub fn group_write(
        &self,
        keys: &Keypair,
        op: &GroupOp,
        hmac: Option<&[u8; 32]>,
    ) -> Result<Vec<VerifiedMsg>> {
        let mut msgs = match op.group() {
            Some(group) => self.group_duties(keys, hmac, Some(&group))?,
            None => Vec::new(),
        };
        let seen = |f: &FeedId| {
            self.latest(f)
                .ok()
                .flatten()
                .map_or(0, |s: FeedState| s.sequence)
        };
        let msg = self.append_with(keys, hmac, |book, pos| {
            let book = book.ok_or(StoreError::NoIdentity)?;
            Ok(Some(Value::from(book.make(op, pos, &seen)?)))
        })?;
        msgs.extend(msg);
        Ok(msgs)
    }

    /// Publishes what we owe our groups (`group`, or all): requests for
    /// head keys we miss, and, as an admin, a refresh of a group whose head
    /// keys a non-member holds and answers to members' requests.
    /// Each in its own transaction; bounded.
    pub fn group_duties(
        &self,
        keys: &Keypair,
        hmac: Option<&[u8; 32]>,
        group: Option<&MsgId>,
    ) -> Result<Vec<VerifiedMsg>> {
        let mut msgs = Vec::new();
        for _ in 0..1000 {
            let duty = self.append_with(keys, hmac, |book, pos| {
                Ok(book.and_then(|b| b.duty(group, pos)).map(Value::from))
            })?;
            match duty {
                Some(m) => msgs.push(m),
                None => break,
            }
        }
        Ok(msgs)
    }

    /// The control messages of `group` we opened, in the order we stored
    /// them: what our view of the group is computed from.
    pub fn group_controls(&self, group: &MsgId) -> Result<Vec<crate::private::groups::ControlMsg>> {
        let txn = self.db().begin_read()?;
        let ctrl = txn.open_table(GROUP_CTRL)?;
        let opened = txn.open_table(GROUP_OPENED)?;
        let log = txn.open_table(LOG)?;
        let mut lo = [0u8; 40];
        lo[..32].copy_from_slice(&group.0);
        let mut hi = lo;
        hi[32..].copy_from_slice(&u64::MAX.to_be_bytes());
        let mut out = Vec::new();
        for e in ctrl.range::<&[u8; 40]>(&lo..=&hi)? {
            let rx = u64::from_be_bytes(e?.0.value()[32..].try_into().expect("8 bytes"));
            let rec = log.get(rx)?.ok_or(StoreError::Corrupt(
                "group index points at a missing message",
            ))?;
            let m = StoredMsg::decode(rx, rec.value())?;
            let Some(item) = groups::item_of(&m, &m.value()?)? else {
                continue;
            };
            let Some(inner) = opened.get(&item.id.0)? else {
                continue;
            };
            if let Ok(inner) = crate::private::groups::GroupContent::from_bytes(inner.value()) {
                out.push(crate::private::groups::ControlMsg {
                    id: item.id,
                    position: item.position,
                    body: inner.into_control(),
                });
            }
        }
        Ok(out)
    }

    /// Every group we can read or are a member of.
    pub fn groups(&self) -> Result<Vec<GroupInfo>> {
        let names = self.reader()?;
        self.with_book(|book| {
            let Some(book) = book else {
                return Ok(Vec::new());
            };
            book.list()
                .iter()
                .map(|g| Ok(book.info(g, names.group_name(g)?)?))
                .collect()
        })
    }

    /// One group, as we see it.
    pub fn group(&self, id: &MsgId) -> Result<GroupInfo> {
        let name = self.reader()?.group_name(id)?;
        self.with_book(|book| Ok(book.ok_or(StoreError::NoIdentity)?.info(id, name)?))
    }

    /// Stores a batch of verified messages in ONE write transaction. Each
    /// must follow its feed's latest message as the store holds it at that
    /// moment (earlier messages of the same batch included); a message at a
    /// sequence the store already holds is a duplicate when identical, else a
    /// fork, recorded and refused. Outcomes are in input order.
    pub fn ingest(&self, batch: Vec<VerifiedMsg>) -> Result<Vec<Outcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match self.ingest_stream([batch])?.pop() {
            Some((_, Written::Each { fresh, .. })) => Ok(fresh),
            _ => unreachable!("one batch, not a range, one outcome list"),
        }
    }

    /// [`Store::ingest`] for batches that come one after another (an
    /// import's or a running node's checked batches), some of which may be
    /// ranges of one feed ([`Placed::range`], see
    /// [`Store::ingest_range`]): each is written as soon as the iterator
    /// yields it, all of them in ONE write transaction, committed once the
    /// iterator ends, so that writing overlaps with checking what comes
    /// next. Each back with what became of it, in order. Each feed's
    /// messages of a batch get consecutive receive sequences, the feeds
    /// one after another (in the order of their ids), so that serving a
    /// feed reads them in one walk; a batch that holds a message of our own
    /// feed keeps its order (what we follow or block changes how the
    /// messages after it are indexed). When nothing was written
    /// (everything was known or refused before it came here, or every
    /// range was stale) the transaction is dropped: nothing is committed,
    /// no fsync. The group book is locked only for the commit, not while
    /// the iterator waits. On an error, nothing is written, and what the
    /// iterator yielded is dropped.
    pub fn ingest_stream<B: Placed>(
        &self,
        batches: impl IntoIterator<Item = B>,
    ) -> Result<Vec<(B, Written)>> {
        let txn = self.db().begin_write()?;
        let mut w = Writer::open(&txn, self.me.as_ref())?;
        let mut all = Vec::new();
        let mut any = false;
        for batch in batches {
            let msgs = batch.msgs();
            let received = now_ms();
            let opened = self.open_boxes(msgs);
            let written = match batch.range() {
                Some(anchor) => {
                    let o = w.put_range(&txn, anchor, msgs, &opened, received)?;
                    any |= matches!(o, RangeOutcome::Stored { .. });
                    Written::Range(o)
                }
                None => {
                    any |= !msgs.is_empty();
                    let fresh = self.put_batch(&mut w, msgs, &opened, received)?;
                    let known = batch
                        .known()
                        .iter()
                        .map(|m| w.known(m.author(), m.sequence(), m.id(), m.json()))
                        .collect::<Result<Vec<Outcome>>>()?;
                    // A fork is recorded: that is a write to commit.
                    any |= known
                        .iter()
                        .any(|o| matches!(o, Outcome::Refused(ValidationError::Fork { .. })));
                    Written::Each { fresh, known }
                }
            };
            all.push((batch, written));
        }
        if !any {
            return Ok(all);
        }
        let mut book = self.book()?;
        let finished = self
            .process_groups(&mut w, book.as_mut().and_then(|g| g.as_mut()))
            .and_then(|()| {
                let touched = w.contacts_touched;
                w.finish().map(|()| touched)
            });
        match finished.and_then(|touched| Ok(txn.commit().map(|()| touched)?)) {
            Ok(touched) => {
                self.committed(touched);
                Ok(all)
            }
            Err(e) => {
                // The book may be ahead of the tables: rebuilt on next use.
                if let Some(g) = book.as_mut() {
                    **g = None;
                }
                Err(e)
            }
        }
    }

    /// Writes a batch of messages that each follow their feed's latest (see
    /// [`Store::ingest_stream`]): their outcomes, in order.
    fn put_batch(
        &self,
        w: &mut Writer<'_>,
        msgs: &[VerifiedMsg],
        opened: &[Option<(Vec<u8>, Value)>],
        received: f64,
    ) -> Result<Vec<Outcome>> {
        // Each feed's messages of the batch at consecutive receive
        // sequences, in feed order (a stable sort), so that serving the
        // feed reads them in one walk (see `feed_range`). Not when the
        // batch holds one of our own: our follows and blocks decide how the
        // others after them are indexed (marked unread or not), so their
        // order is kept.
        let mut order: Vec<usize> = (0..msgs.len()).collect();
        let me = self.me.as_ref().map(|m| m.id);
        if msgs.iter().all(|m| Some(m.author()) != me) {
            order.sort_by_key(|&i| msgs[i].author().0);
        }
        let mut out: Vec<Option<Outcome>> = vec![None; msgs.len()];
        for i in order {
            let opened = opened.get(i).and_then(Option::as_ref);
            out[i] = Some(w.put(&msgs[i], received, opened)?);
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every message put"))
            .collect())
    }

    /// One message by id.
    pub fn get(&self, id: &MsgId) -> Result<Option<StoredMsg>> {
        let txn = self.db().begin_read()?;
        let log = txn.open_table(LOG)?;
        match ids::IdsRead::open(&txn)?.find(&log, id)? {
            Some((rx, rec)) => Ok(Some(StoredMsg::decode(rx, rec.value())?)),
            None => Ok(None),
        }
    }

    /// Messages of one feed with sequence > `since`, in feed order, at most
    /// `limit`: a run that continues from `since`, so nothing when the feed
    /// is held only from above `since + 1` (its history there is not in
    /// yet; what we hold would not chain for whoever asked).
    pub fn feed(&self, author: &FeedId, since: u64, limit: usize) -> Result<Vec<StoredMsg>> {
        let txn = self.db().begin_read()?;
        let held = txn.open_table(HELD)?;
        if let Some(v) = held.get(&author.0)? {
            let (from, _) = held::decode(v.value());
            if since.saturating_add(1) < from {
                return Ok(Vec::new());
            }
        }
        let feeds = txn.open_table(FEEDS)?;
        let log = txn.open_table(LOG)?;
        let mut out = Vec::new();
        feed_range(&feeds, &log, author, since, limit, &mut out)?;
        Ok(out)
    }

    /// The messages at these (feed, sequence) positions that we hold, in
    /// one read transaction.
    pub fn messages_at(&self, at: &[(FeedId, u64)]) -> Result<Vec<StoredMsg>> {
        let txn = self.db().begin_read()?;
        let feeds = txn.open_table(FEEDS)?;
        let log = txn.open_table(LOG)?;
        let mut out = Vec::with_capacity(at.len());
        for (author, seq) in at {
            feed_range(&feeds, &log, author, seq.saturating_sub(1), 1, &mut out)?;
        }
        Ok(out)
    }

    /// A random number drawn when the store file was made: what an index
    /// kept beside the store (the search index) checks that it follows
    /// this very store and not an older or a replaced one.
    pub fn store_id(&self) -> Result<u64> {
        let txn = self.db().begin_read()?;
        Ok(txn
            .open_table(META)?
            .get(STORE_ID)?
            .map_or(0, |v| v.value()))
    }

    /// The highest receive sequence in the log (0 when it is empty).
    pub fn last_rx(&self) -> Result<u64> {
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(LOG)?.last()?.map_or(0, |(k, _)| k.value()))
    }

    /// Messages in local receive order with receive sequence > `after_rx`,
    /// at most `limit`.
    pub fn log(&self, after_rx: u64, limit: usize) -> Result<Vec<StoredMsg>> {
        let txn = self.db().begin_read()?;
        let log = txn.open_table(LOG)?;
        let mut out = Vec::new();
        for entry in log.range(after_rx.saturating_add(1)..)?.take(limit) {
            let (rx, rec) = entry?;
            out.push(StoredMsg::decode(rx.value(), rec.value())?);
        }
        Ok(out)
    }

    /// A page of messages after a cursor: of one feed in feed order when
    /// `author` is given (`after` a feed sequence), else of every feed in
    /// receive order (`after` a receive sequence). Returns the page and the
    /// cursor after it.
    pub fn messages_after(
        &self,
        author: Option<&FeedId>,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredMsg>, u64)> {
        let after = match author {
            Some(a) => after.max(self.held_from(a)? - 1),
            None => after,
        };
        let page = match author {
            Some(a) => self.feed(a, after, limit)?,
            None => self.log(after, limit)?,
        };
        let next = match (author, page.last()) {
            (_, None) => after,
            // Feeds are stored without gaps.
            (Some(_), Some(_)) => after + page.len() as u64,
            (None, Some(last)) => last.rx,
        };
        Ok((page, next))
    }

    /// Every feed we hold with its latest state.
    pub fn feeds(&self) -> Result<Vec<(FeedId, FeedState)>> {
        let txn = self.db().begin_read()?;
        let t = txn.open_table(LATEST)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            out.push((FeedId(*k.value()), decode_latest(v.value())));
        }
        Ok(out)
    }

    /// Recorded forks: author, sequence and the refused message's JSON.
    pub fn forks(&self) -> Result<Vec<(FeedId, u64, Vec<u8>)>> {
        let txn = self.db().begin_read()?;
        let t = txn.open_table(FORKS)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            let k = k.value();
            let author = FeedId(k[..32].try_into().expect("32 bytes"));
            let seq = u64::from_be_bytes(k[32..].try_into().expect("8 bytes"));
            out.push((author, seq, v.value().to_vec()));
        }
        Ok(out)
    }

    /// The contact edges an author has set (follows and blocks).
    pub fn contacts_of(&self, author: &FeedId) -> Result<Vec<(FeedId, Contact)>> {
        self.reader()?.contacts_of(author)
    }

    /// The feeds to replicate for `me` with their distance in follows:
    /// `me` at 0, those it follows at 1, and so on up to `hops`; never a
    /// feed `me` blocks. One read snapshot, one range read per feed visited.
    pub fn replication_set(&self, me: &FeedId, hops: u8) -> Result<HashMap<FeedId, u8>> {
        Ok(self
            .follow_tree(me, hops)?
            .into_iter()
            .map(|(f, (d, _))| (f, d))
            .collect())
    }

    /// The follows that make `me` replicate `target`: `[me, …, target]`,
    /// shortest first found; `None` when it is not within `hops` (or
    /// blocked by `me`).
    pub fn follow_path(
        &self,
        me: &FeedId,
        target: &FeedId,
        hops: u8,
    ) -> Result<Option<Vec<FeedId>>> {
        let tree = self.follow_tree(me, hops)?;
        if !tree.contains_key(target) {
            return Ok(None);
        }
        let mut path = vec![*target];
        let mut at = *target;
        while let Some((_, Some(parent))) = tree.get(&at) {
            path.push(*parent);
            at = *parent;
        }
        path.reverse();
        Ok(Some(path))
    }

    /// Breadth-first over follows from `me`: each feed reached within
    /// `hops` with its distance and the feed it was reached from.
    fn follow_tree(&self, me: &FeedId, hops: u8) -> Result<HashMap<FeedId, (u8, Option<FeedId>)>> {
        let r = self.reader()?;
        let blocked: HashSet<FeedId> = r
            .contacts_of(me)?
            .into_iter()
            .filter(|(_, c)| *c == Contact::Block)
            .map(|(f, _)| f)
            .collect();
        let mut tree: HashMap<FeedId, (u8, Option<FeedId>)> = HashMap::from([(*me, (0, None))]);
        let mut frontier = vec![*me];
        for d in 1..=hops {
            let mut next = Vec::new();
            for f in &frontier {
                for (target, c) in r.contacts_of(f)? {
                    if c == Contact::Follow
                        && !blocked.contains(&target)
                        && !tree.contains_key(&target)
                    {
                        tree.insert(target, (d, Some(*f)));
                        next.push(target);
                    }
                }
            }
            frontier = next;
        }
        Ok(tree)
    }

    /// Remembers a peer address (keeping what we knew of it) and returns its record.
    pub fn note_peer(
        &self,
        addr: &str,
        update: impl FnOnce(&mut PeerRecord),
    ) -> Result<PeerRecord> {
        let txn = self.db().begin_write()?;
        let rec = {
            let mut t = txn.open_table(PEERS)?;
            let mut rec: PeerRecord = t
                .get(addr)?
                .and_then(|v| serde_json::from_slice(v.value()).ok())
                .unwrap_or_default();
            update(&mut rec);
            let bytes = serde_json::to_vec(&rec).expect("peer record serialises");
            t.insert(addr, bytes.as_slice())?;
            rec
        };
        txn.commit()?;
        Ok(rec)
    }

    /// Every known peer address with its record.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>> {
        let txn = self.db().begin_read()?;
        let t = txn.open_table(PEERS)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            let rec = serde_json::from_slice(v.value()).unwrap_or_default();
            out.push((k.value().to_string(), rec));
        }
        Ok(out)
    }

    /// How much the store holds.
    pub fn stats(&self) -> Result<Stats> {
        let txn = self.db().begin_read()?;
        Ok(Stats {
            messages: txn.open_table(LOG)?.len()?,
            feeds: txn.open_table(LATEST)?.len()?,
            forks: txn.open_table(FORKS)?.len()?,
            unread: txn.open_table(UNREAD)?.len()?,
        })
    }
}

/// Index entries of one kind that wait in a write transaction, at most,
/// before they go in (sorted) together.
const PENDING_ENTRIES: usize = 1 << 16;

/// Bytes of log records that wait in a write transaction, at most,
/// before they go in together (see [`Writer::flush_log`]).
const PENDING_LOG_BYTES: usize = 2 << 20;

/// A log record's head: the message id, then the time it was received.
const LOG_RECORD_HEAD: usize = 40;

/// Writes the index entries that waited in `pending` (emptying it) into
/// `table`, in key order. The keys that fall between the same two stored
/// entries (a feed's new sequences, an author's new posts) go in as one
/// run through a cursor, which redb splices into the tree at once instead
/// of walking it from the root for every key (README "Import"). A key the
/// table already holds is replaced, as `insert` replaces it.
fn insert_sorted<const N: usize, V>(
    table: &mut redb::Table<'_, &'static [u8; N], V>,
    pending: &mut Vec<([u8; N], V)>,
) -> Result<()>
where
    V: redb::Value + Ord + Copy + 'static + for<'v> std::borrow::Borrow<V::SelfType<'v>>,
{
    let mut entries = std::mem::take(pending);
    entries.sort_unstable();
    let mut next = 0;
    while next < entries.len() {
        let first = next;
        let mut cursor = table.lower_bound_mut(std::ops::Bound::Included(&entries[first].0))?;
        while let Some((key, value)) = entries.get(next) {
            match cursor.insert_before(key, *value) {
                Ok(()) => next += 1,
                // Past the stored entry after the gap: a new run.
                Err(redb::CursorError::UnorderedKey) => break,
                Err(e) => return Err(e.into()),
            }
        }
        cursor.close()?;
        if next == first {
            // Not even the first key fits the gap before the entry at or
            // after it: the table holds that key already.
            let (key, value) = &entries[first];
            table.insert(key, *value)?;
            next += 1;
        }
    }
    Ok(())
}

/// The tables of one write transaction, with a small cache of feed states
/// so a batch reads each feed's latest entry once.
struct Writer<'t> {
    log: redb::Table<'t, u64, &'static [u8]>,
    ids: ids::IdsMut<'t>,
    feeds: redb::Table<'t, &'static [u8; 40], u64>,
    latest: redb::Table<'t, &'static [u8; 32], &'static [u8; 40]>,
    held: redb::Table<'t, &'static [u8; 32], &'static [u8; 40]>,
    forks: redb::Table<'t, &'static [u8; 40], &'static [u8]>,
    contacts: redb::Table<'t, &'static [u8; 64], &'static [u8; 9]>,
    followers: redb::Table<'t, &'static [u8; 64], u8>,
    same_as: redb::Table<'t, &'static [u8; 64], &'static [u8; 9]>,
    links: redb::Table<'t, &'static [u8; 42], &'static [u8; 33]>,
    posts: redb::Table<'t, &'static [u8; 48], u8>,
    abouts: redb::Table<'t, &'static [u8; 66], &'static [u8]>,
    private: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    inbox: redb::Table<'t, &'static [u8; 16], &'static [u8; 32]>,
    unread: redb::Table<'t, u64, u8>,
    group_ctrl: redb::Table<'t, &'static [u8; 40], u8>,
    group_keys: redb::Table<'t, &'static [u8; 32], &'static [u8; 64]>,
    group_posts: redb::Table<'t, &'static [u8; 48], &'static [u8; 32]>,
    group_pending: redb::Table<'t, &'static [u8; 40], u64>,
    group_authored: redb::Table<'t, &'static [u8; 72], &'static [u8]>,
    group_opened: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    group_names: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    opened: redb::Table<'t, u64, u64>,
    /// Group messages stored by this write, processed before it finishes.
    group_queue: Vec<groups::GroupItem>,
    votes: redb::Table<'t, &'static [u8; 65], u8>,
    likes: redb::Table<'t, &'static [u8; 33], u64>,
    revisions: redb::Table<'t, &'static [u8; 72], u8>,
    peers: redb::Table<'t, &'static str, &'static [u8]>,
    invites: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    /// Whose store this is, for unread marks.
    me: Option<FeedId>,
    /// The receive sequence last marked unread in this write.
    unread_marked: Option<u64>,
    /// Unread marks of this write not yet in [`UNREAD`], in the order they
    /// were made: written by [`Writer::flush_unread`]. Only fresh messages
    /// are marked, so they all go after the table's last entry; a first
    /// sync of followed feeds marks nearly every message.
    unread_pending: Vec<(u64, u8)>,
    /// Our contact states read or written in this transaction.
    my_edges: HashMap<FeedId, Option<u8>>,
    /// Whether this write changed the contact graph.
    contacts_touched: bool,
    states: FeedMap<Option<FeedState>>,
    /// Writing a range below what a feed held (see `held`): the first
    /// receive sequence of this write. Entries that keep an author's latest
    /// (contact edges, profile fields, device links, votes) written before
    /// it came from newer messages of that author and are kept.
    older_than: Option<u64>,
    /// The votes written by the range of `older_than` (a vote entry keeps
    /// no receive sequence).
    older_votes: HashSet<[u8; 65]>,
    /// Feeds whose latest entry changed in this transaction, written once
    /// by [`Writer::finish`] instead of once per message.
    dirty: FeedSet,
    next_rx: u64,
    /// Log records of this write not yet in [`LOG`], one after another in
    /// `log_bytes`: each receive sequence with where its record ends. They
    /// go in together at the end of the log ([`Writer::flush_log`]); every
    /// read of the log in a write flushes them first.
    log_pending: Vec<(u64, usize)>,
    log_bytes: Vec<u8>,
    /// Feed index entries of this write not yet in [`FEEDS`]: written in
    /// key order by [`Writer::flush_feeds`] (at the latest once
    /// [`PENDING_ENTRIES`] wait: a reindex writes the whole log at once).
    feeds_pending: Vec<([u8; 40], u64)>,
    /// Post index entries of this write not yet in [`POSTS`], likewise.
    posts_pending: Vec<([u8; 48], u8)>,
}

impl<'t> Writer<'t> {
    fn open(txn: &'t redb::WriteTransaction, me: Option<&Me>) -> Result<Writer<'t>> {
        let log = txn.open_table(LOG)?;
        let after_log = log.last()?.map_or(1, |(k, _)| k.value() + 1);
        let after_pruned = txn.open_table(META)?.get(NEXT_RX)?.map_or(0, |v| v.value());
        let next_rx = after_log.max(after_pruned);
        Ok(Writer {
            log,
            ids: ids::IdsMut::open(txn)?,
            feeds: txn.open_table(FEEDS)?,
            latest: txn.open_table(LATEST)?,
            held: txn.open_table(HELD)?,
            forks: txn.open_table(FORKS)?,
            contacts: txn.open_table(CONTACTS)?,
            followers: txn.open_table(FOLLOWERS)?,
            same_as: txn.open_table(SAME_AS)?,
            links: txn.open_table(LINKS)?,
            posts: txn.open_table(POSTS)?,
            abouts: txn.open_table(ABOUTS)?,
            private: txn.open_table(PRIVATE)?,
            inbox: txn.open_table(INBOX)?,
            unread: txn.open_table(UNREAD)?,
            group_ctrl: txn.open_table(GROUP_CTRL)?,
            group_keys: txn.open_table(GROUP_KEYS)?,
            group_posts: txn.open_table(GROUP_POSTS)?,
            group_pending: txn.open_table(GROUP_PENDING)?,
            group_authored: txn.open_table(GROUP_AUTHORED)?,
            group_opened: txn.open_table(GROUP_OPENED)?,
            group_names: txn.open_table(GROUP_NAMES)?,
            opened: txn.open_table(OPENED)?,
            group_queue: Vec::new(),
            votes: txn.open_table(VOTES)?,
            likes: txn.open_table(LIKES)?,
            revisions: txn.open_table(REVISIONS)?,
            peers: txn.open_table(PEERS)?,
            invites: txn.open_table(INVITES)?,
            me: me.map(|m| m.id),
            unread_marked: None,
            unread_pending: Vec::new(),
            my_edges: HashMap::new(),
            contacts_touched: false,
            states: FeedMap::default(),
            older_than: None,
            older_votes: HashSet::new(),
            dirty: FeedSet::default(),
            next_rx,
            log_pending: Vec::new(),
            log_bytes: Vec::new(),
            feeds_pending: Vec::new(),
            posts_pending: Vec::new(),
        })
    }

    fn latest(&mut self, author: &FeedId) -> Result<Option<FeedState>> {
        if let Some(s) = self.states.get(author) {
            return Ok(*s);
        }
        let s = self
            .latest
            .get(&author.0)?
            .map(|v| decode_latest(v.value()));
        self.states.insert(*author, s);
        Ok(s)
    }

    fn latest_timestamp(&mut self, author: &FeedId) -> Result<Option<f64>> {
        let Some(state) = self.latest(author)? else {
            return Ok(None);
        };
        // In a batch of our publishes the latest is the record waiting
        // last: read there, so that the batch's records still go in
        // together instead of one flush per publish.
        if let Some(&(rx, end)) = self.log_pending.last() {
            let start = self
                .log_pending
                .len()
                .checked_sub(2)
                .map_or(0, |i| self.log_pending[i].1);
            let rec = &self.log_bytes[start..end];
            if rec[..32] == state.id.0 {
                let msg = StoredMsg::decode(rx, rec)?;
                return Ok(msg.value()?.get("timestamp").and_then(Value::as_f64));
            }
        }
        self.flush_log()?;
        let Some((rx, rec)) = self.ids.find(&self.log, &state.id)? else {
            return Ok(None);
        };
        let msg = StoredMsg::decode(rx, rec.value())?;
        Ok(msg.value()?.get("timestamp").and_then(Value::as_f64))
    }

    /// Stores `msg` if it is the next of its feed, with its index entries.
    /// `opened` is its decrypted content, when it is a box we could open.
    fn put(
        &mut self,
        msg: &VerifiedMsg,
        received: f64,
        opened: Option<&(Vec<u8>, Value)>,
    ) -> Result<Outcome> {
        let author = msg.author();
        let state = self.latest(&author)?;
        let expected = state.map_or(1, |s| s.sequence + 1);
        if msg.sequence() < expected {
            return self.known(author, msg.sequence(), msg.id(), msg.json());
        }
        let links = match state {
            None => msg.sequence() == 1 && msg.previous().is_none(),
            Some(s) => msg.sequence() == expected && msg.previous() == Some(s.id),
        };
        if !links {
            let err = match state {
                Some(s) if msg.sequence() == expected => ValidationError::PreviousMismatch {
                    expected: s.id,
                    got: msg.previous().map_or("null".into(), |p| p.to_string()),
                },
                _ => ValidationError::SeqMismatch {
                    expected,
                    got: msg.sequence(),
                },
            };
            return Ok(Outcome::Refused(err));
        }
        self.store_msg(msg, received, opened, true)?;
        Ok(Outcome::Stored)
    }

    /// Writes `msg`, placed by the caller, with its index entries (marked
    /// unread when `fresh` and for us), and makes it its feed's latest
    /// (unless it is written below what the feed held: `older_than`).
    fn store_msg(
        &mut self,
        msg: &VerifiedMsg,
        received: f64,
        opened: Option<&(Vec<u8>, Value)>,
        fresh: bool,
    ) -> Result<u64> {
        let author = msg.author();
        let rx = self.next_rx;
        self.next_rx += 1;
        if self.log_bytes.capacity() == 0 {
            // About the most it holds before a flush, at once: grown by
            // doubling, it copied up to twice that again in every write.
            self.log_bytes
                .reserve(PENDING_LOG_BYTES + LOG_RECORD_HEAD + feed::MAX_MESSAGE_BYTES);
        }
        self.log_bytes.extend_from_slice(&msg.id().0);
        self.log_bytes.extend_from_slice(&received.to_le_bytes());
        self.log_bytes.extend_from_slice(msg.json());
        self.log_pending.push((rx, self.log_bytes.len()));
        if self.log_bytes.len() >= PENDING_LOG_BYTES {
            self.flush_log()?;
        }
        self.ids.insert(&msg.id(), rx)?;
        self.feeds_pending
            .push((feed_key(&author.0, msg.sequence()), rx));
        if self.feeds_pending.len() >= PENDING_ENTRIES {
            self.flush_feeds()?;
        }
        if self.older_than.is_none() {
            self.states.insert(author, Some(msg.state()));
            self.dirty.insert(author);
        }
        self.index(&index::Indexed {
            rx,
            id: msg.id(),
            author,
            claimed: msg.timestamp(),
            received,
            content: msg.content(),
            opened: opened.map(|(b, v)| (b.as_slice(), v)),
            fresh,
        })?;
        if self.me.is_some()
            && let Some(s) = msg.content().as_str()
            && private::groups::is_group_content(s)
        {
            self.group_queue.push(groups::GroupItem {
                rx,
                id: msg.id(),
                position: Position {
                    author,
                    sequence: msg.sequence(),
                    previous: msg.previous(),
                },
                claimed: msg.timestamp(),
                received,
                content: s.to_string(),
            });
        }
        Ok(rx)
    }

    /// Writes the latest entry of every feed changed in this transaction.
    fn finish(mut self) -> Result<()> {
        self.flush_log()?;
        self.ids.flush()?;
        self.flush_feeds()?;
        self.flush_posts()?;
        self.flush_unread()?;
        for author in std::mem::take(&mut self.dirty) {
            if let Some(Some(state)) = self.states.get(&author) {
                self.latest.insert(&author.0, &encode_latest(state))?;
            }
        }
        Ok(())
    }

    /// Writes the log records of this write. Receive sequences only grow,
    /// so they all go after the last record, as one run through a cursor
    /// at the end of the log: redb builds their pages at once instead of
    /// walking the tree for each (README "Import").
    fn flush_log(&mut self) -> Result<()> {
        if self.log_pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.log_pending);
        let mut cursor = self
            .log
            .upper_bound_mut(std::ops::Bound::<u64>::Unbounded)?;
        let mut start = 0;
        for (rx, end) in pending {
            let rec = &self.log_bytes[start..end];
            start = end;
            match cursor.insert_before(rx, rec) {
                Ok(()) => {}
                Err(redb::CursorError::UnorderedKey) => {
                    return Err(StoreError::Corrupt(
                        "a new receive sequence is not after the log's last",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        cursor.close()?;
        self.log_bytes.clear();
        Ok(())
    }

    /// Writes the unread marks of this write. A message marked twice keeps
    /// the reason marked last, as two inserts would leave it. The marks are
    /// of receive sequences new in this write, so they go in as one run
    /// through a cursor at the end of the table; one that does not fit
    /// there (marked after an earlier flush of larger ones) goes in alone.
    fn flush_unread(&mut self) -> Result<()> {
        if self.unread_pending.is_empty() {
            return Ok(());
        }
        let mut marks = std::mem::take(&mut self.unread_pending);
        // Stable: of the marks of one message, the last made stays last.
        marks.sort_by_key(|&(rx, _)| rx);
        marks.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        let mut alone = Vec::new();
        let mut cursor = self
            .unread
            .upper_bound_mut(std::ops::Bound::<u64>::Unbounded)?;
        for &(rx, why) in &marks {
            match cursor.insert_before(rx, why) {
                Ok(()) => {}
                Err(redb::CursorError::UnorderedKey) => alone.push((rx, why)),
                Err(e) => return Err(e.into()),
            }
        }
        cursor.close()?;
        for (rx, why) in alone {
            self.unread.insert(rx, why)?;
        }
        Ok(())
    }

    /// Writes the feed index entries of this write, in key order.
    fn flush_feeds(&mut self) -> Result<()> {
        insert_sorted(&mut self.feeds, &mut self.feeds_pending)
    }

    /// Writes the post index entries of this write, in key order.
    fn flush_posts(&mut self) -> Result<()> {
        insert_sorted(&mut self.posts, &mut self.posts_pending)
    }

    /// A message at a sequence we already hold: duplicate or fork.
    fn known(&mut self, author: FeedId, seq: u64, id: MsgId, json: &[u8]) -> Result<Outcome> {
        self.flush_log()?;
        self.flush_feeds()?;
        let key = feed_key(&author.0, seq);
        let Some(rx) = self.feeds.get(&key)?.map(|v| v.value()) else {
            let expected = self.latest(&author)?.map_or(1, |s| s.sequence + 1);
            return Ok(Outcome::Refused(ValidationError::SeqMismatch {
                expected,
                got: seq,
            }));
        };
        let rec = self.log.get(rx)?.ok_or(StoreError::Corrupt(
            "feed index points at a missing log entry",
        ))?;
        let existing = MsgId(rec.value()[..32].try_into().expect("32 bytes"));
        drop(rec);
        if existing == id {
            return Ok(Outcome::Duplicate);
        }
        if self.forks.get(&key)?.is_none() {
            self.forks.insert(&key, json)?;
        }
        Ok(Outcome::Refused(ValidationError::Fork {
            sequence: seq,
            existing,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Object;

    fn post(text: &str) -> Value {
        let mut c = Object::new();
        c.insert("type", Value::from("post"));
        c.insert("text", Value::from(text));
        Value::Object(c)
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn append_local_chains_and_reads_back() {
        let (_d, store) = open();
        let kp = Keypair::from_seed(&[1; 32]);
        let m1 = store.append_local(&kp, post("one"), None).unwrap();
        let m2 = store.append_local(&kp, post("two"), None).unwrap();
        assert_eq!(m2.previous(), Some(m1.id()));
        assert_eq!(store.latest(&kp.id()).unwrap(), Some(m2.state()));
        let got = store.get(&m2.id()).unwrap().unwrap();
        assert_eq!(got.json, m2.json());
        let feed = store.feed(&kp.id(), 0, 10).unwrap();
        assert_eq!(
            feed.iter().map(|m| m.key).collect::<Vec<_>>(),
            vec![m1.id(), m2.id()]
        );
        assert_eq!(store.feed(&kp.id(), 1, 10).unwrap().len(), 1);
        assert_eq!(store.log(0, 10).unwrap().len(), 2);
    }

    /// Regression: writing a checked batch with no message in it (all
    /// known or refused before it came to the store) opened a write
    /// transaction and committed it, with its fsync, for nothing.
    #[test]
    fn batches_with_no_message_commit_nothing() {
        let (d, store) = open();
        let kp = Keypair::from_seed(&[3; 32]);
        store.append_local(&kp, post("one"), None).unwrap();
        let path = d.path().join("store.redb");
        let modified = || std::fs::metadata(&path).unwrap().modified().unwrap();
        let before = modified();
        // Past the file system's timestamp granularity, so that a write
        // would show.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let out = store
            .ingest_stream([Vec::<VerifiedMsg>::new(), Vec::new()])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(_, o)| *o
            == Written::Each {
                fresh: Vec::new(),
                known: Vec::new()
            }));
        assert_eq!(modified(), before, "the store file was written");
        // A batch with a message is written as before.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let m = feed::validate(
            None,
            None,
            feed::build(&Keypair::from_seed(&[4; 32]), None, 1.0, post("a"), None),
        )
        .unwrap();
        assert_eq!(store.ingest(vec![m]).unwrap(), vec![Outcome::Stored]);
        assert_ne!(modified(), before);
    }

    /// Checked messages at sequences the store already holds, with no
    /// fresh ones: for [`Store::ingest_stream`].
    struct KnownOnly(Vec<SignedMsg>);

    impl Placed for KnownOnly {
        fn msgs(&self) -> &[VerifiedMsg] {
            &[]
        }

        fn known(&self) -> &[SignedMsg] {
            &self.0
        }
    }

    /// Messages the store already holds are checked in the batch's own
    /// transaction: a batch of duplicates alone commits nothing (they were
    /// checked in a transaction of their own, committed with its fsync
    /// every time), and a fork is recorded and refused.
    #[test]
    fn known_messages_are_checked_in_the_batchs_transaction() {
        let (d, store) = open();
        let kp = Keypair::from_seed(&[5; 32]);
        let signed = |text: &str| {
            let v = feed::build(&kp, None, 1.0, post(text), None);
            feed::verify_one(feed::prepare(v, None).unwrap(), &feed::KeyCache::default()).unwrap()
        };
        let held =
            feed::validate(None, None, feed::build(&kp, None, 1.0, post("a"), None)).unwrap();
        assert_eq!(store.ingest(vec![held]).unwrap(), vec![Outcome::Stored]);
        let path = d.path().join("store.redb");
        let modified = || std::fs::metadata(&path).unwrap().modified().unwrap();
        let before = modified();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let out = store.ingest_stream([KnownOnly(vec![signed("a")])]).unwrap();
        assert_eq!(
            out[0].1,
            Written::Each {
                fresh: Vec::new(),
                known: vec![Outcome::Duplicate]
            }
        );
        assert_eq!(modified(), before, "a duplicate was committed");
        let out = store.ingest_stream([KnownOnly(vec![signed("b")])]).unwrap();
        assert!(
            matches!(
                out[0].1,
                Written::Each { ref known, .. }
                    if matches!(known[..], [Outcome::Refused(ValidationError::Fork { sequence: 1, .. })])
            ),
            "{:?}",
            out[0].1
        );
        assert_eq!(store.forks().unwrap().len(), 1);
    }

    /// A feed of `kp`, validated: one message per `(claimed time,
    /// content)`. Shared by the store's test modules.
    pub(super) fn feed_of(kp: &Keypair, items: &[(f64, Value)]) -> Vec<VerifiedMsg> {
        let mut state: Option<FeedState> = None;
        items
            .iter()
            .map(|(t, c)| {
                let v = feed::build(kp, state.as_ref(), *t, c.clone(), None);
                let m = feed::validate(state.as_ref(), None, v).unwrap();
                state = Some(m.state());
                m
            })
            .collect()
    }

    /// The first `n` posts of the feed of `seed`.
    fn chain(seed: u8, n: usize) -> Vec<VerifiedMsg> {
        let items: Vec<(f64, Value)> = (0..n).map(|i| (i as f64, post(&format!("{i}")))).collect();
        feed_of(&Keypair::from_seed(&[seed; 32]), &items)
    }

    /// A batch's messages of each feed get consecutive receive sequences
    /// (so that serving the feed reads them in one walk), in feed order,
    /// whatever order they came in; the outcomes stay in the order given;
    /// and a feed read back across runs, a message alone and from inside
    /// a run is whole and in order.
    #[test]
    fn each_feeds_messages_of_a_batch_are_stored_together_and_read_back_whole() {
        let (_d, store) = open();
        let (a, b) = (chain(5, 5), chain(6, 4));
        let interleaved = vec![
            a[0].clone(),
            b[0].clone(),
            a[1].clone(),
            b[1].clone(),
            a[2].clone(),
            b[2].clone(),
        ];
        assert_eq!(store.ingest(interleaved).unwrap(), vec![Outcome::Stored; 6]);
        assert_eq!(
            store
                .ingest(vec![b[3].clone(), a[0].clone(), a[3].clone()])
                .unwrap(),
            [Outcome::Stored, Outcome::Duplicate, Outcome::Stored]
        );
        assert_eq!(store.ingest(vec![a[4].clone()]).unwrap(), [Outcome::Stored]);
        for (msgs, seed) in [(&a, 5u8), (&b, 6)] {
            let author = Keypair::from_seed(&[seed; 32]).id();
            let held = store.feed(&author, 0, 100).unwrap();
            assert_eq!(
                held.iter().map(|m| m.key).collect::<Vec<_>>(),
                msgs.iter().map(VerifiedMsg::id).collect::<Vec<_>>()
            );
            assert_eq!(held[0].json, msgs[0].json());
            // The first batch's three of this feed, one after another.
            assert_eq!([held[1].rx, held[2].rx], [held[0].rx + 1, held[0].rx + 2]);
            // From inside a run, and at most `limit`.
            let inside = store.feed(&author, 1, 2).unwrap();
            assert_eq!(inside, held[1..3]);
        }
    }

    /// Regression: a batch holding our follow of a feed and then that
    /// feed's post was stored feed by feed, and when the feed's id sorted
    /// before ours its post went in before the follow and was not marked
    /// unread (a terminal-client test of an imported home saw 2 unread
    /// where 4 were). A batch with a message of ours keeps its order.
    #[test]
    fn a_batch_with_our_follow_keeps_its_order_and_the_post_after_it_is_unread() {
        let dir = tempfile::tempdir().unwrap();
        let me = Keypair::from_seed(&[0x21; 32]);
        // A feed whose id sorts before ours.
        let other = (0x22u8..)
            .map(|n| Keypair::from_seed(&[n; 32]))
            .find(|k| k.id().0 < me.id().0)
            .unwrap();
        let store = Store::open_as(&dir.path().join("store.redb"), &me).unwrap();
        let follow = content(&format!(
            r#"{{"type":"contact","contact":"{}","following":true}}"#,
            other.id()
        ));
        let follow = feed::validate(None, None, feed::build(&me, None, 1.0, follow, None)).unwrap();
        let theirs =
            feed::validate(None, None, feed::build(&other, None, 2.0, post("hi"), None)).unwrap();
        assert_eq!(
            store.ingest(vec![follow.clone(), theirs.clone()]).unwrap(),
            [Outcome::Stored, Outcome::Stored]
        );
        assert_eq!(store.reader().unwrap().unread_count().unwrap(), 1);
        let log = store.log(0, 10).unwrap();
        assert_eq!(
            log.iter().map(|m| m.key).collect::<Vec<_>>(),
            [follow.id(), theirs.id()]
        );
    }

    /// Sorted index entries go in as runs through a cursor: what the
    /// table holds afterwards is what inserting them one by one gives,
    /// with runs in several gaps, keys before and after every stored one,
    /// a key the table holds already (replaced) and a key given twice.
    #[test]
    fn sorted_index_entries_end_as_inserted_one_by_one() {
        const T: redb::TableDefinition<&[u8; 4], u64> = redb::TableDefinition::new("t");
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let key = |feed: u8, seq: u16| [feed, 0, (seq >> 8) as u8, seq as u8];
        let mut model = std::collections::BTreeMap::new();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(T).unwrap();
            for feed in [2u8, 4, 6] {
                for seq in 1..=300u16 {
                    table.insert(&key(feed, seq), u64::from(seq)).unwrap();
                    model.insert(key(feed, seq), u64::from(seq));
                }
            }
            let mut pending = Vec::new();
            for feed in 1u8..=7 {
                for seq in 301..=700u16 {
                    pending.push((key(feed, seq), 1000 + u64::from(seq)));
                }
            }
            // Held already, and given twice (entries go in sorted by key,
            // then value: of the two, the one sorted last wins).
            pending.push((key(4, 150), 7));
            pending.push((key(5, 500), 3));
            pending.push((key(5, 500), 9));
            pending.reverse();
            let mut one_by_one = pending.clone();
            one_by_one.sort_unstable();
            for (k, v) in one_by_one {
                model.insert(k, v);
            }
            insert_sorted(&mut table, &mut pending).unwrap();
            assert!(pending.is_empty());
        }
        txn.commit().unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(T).unwrap();
        let got: Vec<([u8; 4], u64)> = table
            .iter()
            .unwrap()
            .map(|e| e.map(|(k, v)| (*k.value(), v.value())).unwrap())
            .collect();
        assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }

    /// Log records wait in the write and go in at its end; every read of
    /// the log in the same write sees them: a message given again in the
    /// batch that stores it is found a duplicate through its record, and
    /// many feeds' records read back in receive order (each feed's
    /// together, the feeds in the order of their ids).
    #[test]
    fn log_records_waiting_in_a_write_are_read_back() {
        let (_d, store) = open();
        let keys: Vec<Keypair> = (0..5u8)
            .map(|n| Keypair::from_seed(&[40 + n; 32]))
            .collect();
        let mut states: Vec<Option<FeedState>> = vec![None; keys.len()];
        let mut batch = Vec::new();
        for round in 0..40 {
            for (kp, state) in keys.iter().zip(&mut states) {
                let m = feed::validate(
                    state.as_ref(),
                    None,
                    feed::build(kp, state.as_ref(), 1.0 + round as f64, post("x"), None),
                )
                .unwrap();
                *state = Some(m.state());
                batch.push(m);
            }
        }
        let again = batch[7].clone();
        batch.push(again);
        let out = store.ingest(batch.clone()).unwrap();
        assert_eq!(out.iter().filter(|o| **o == Outcome::Stored).count(), 200);
        assert_eq!(out.last(), Some(&Outcome::Duplicate));
        let log = store.log(0, 1000).unwrap();
        let mut stored = batch[..200].to_vec();
        stored.sort_by_key(|m| m.author().0);
        assert_eq!(
            log.iter().map(|m| m.key).collect::<Vec<_>>(),
            stored.iter().map(|m| m.id()).collect::<Vec<_>>()
        );
        for (i, m) in log.iter().enumerate() {
            assert_eq!(m.rx, i as u64 + 1);
            assert_eq!(m.json, stored[i].json());
        }
    }

    /// Unread marks wait and go in together: in order of receive sequence,
    /// after what the table holds, and one below the table's last entry
    /// (marked after an earlier flush) goes in too. A message marked twice
    /// keeps the reason marked last, as two inserts left it.
    #[test]
    fn unread_marks_go_in_together_and_the_last_reason_stays() {
        let (_d, store) = open();
        let txn = store.db().begin_write().unwrap();
        {
            let mut w = Writer::open(&txn, None).unwrap();
            w.unread.insert(10, UNREAD_POST).unwrap();
            w.unread_pending = vec![
                (12, UNREAD_POST),
                (5, UNREAD_MENTION),
                (12, UNREAD_PRIVATE),
                (11, UNREAD_POST),
                (5, UNREAD_POST),
            ];
            w.finish().unwrap();
        }
        txn.commit().unwrap();
        let read = store.db().begin_read().unwrap();
        let marks: Vec<(u64, u8)> = read
            .open_table(UNREAD)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value())
            })
            .collect();
        assert_eq!(
            marks,
            vec![
                (5, UNREAD_POST),
                (10, UNREAD_POST),
                (11, UNREAD_POST),
                (12, UNREAD_PRIVATE)
            ]
        );
    }

    /// Past `PENDING_LOG_BYTES`, waiting records go in during the write
    /// and the next ones wait again from the start of the buffer: every
    /// record reads back whole, in receive order, on both sides of the
    /// flush.
    #[test]
    fn log_records_past_the_waiting_limit_read_back_whole() {
        let (_d, store) = open();
        let kp = Keypair::from_seed(&[50; 32]);
        let text = "x".repeat(7000);
        let mut state: Option<FeedState> = None;
        let mut batch = Vec::new();
        while batch
            .iter()
            .map(|m: &VerifiedMsg| m.json().len())
            .sum::<usize>()
            < PENDING_LOG_BYTES + PENDING_LOG_BYTES / 2
        {
            let value = feed::build(&kp, state.as_ref(), 1.0, post(&text), None);
            let m = feed::validate(state.as_ref(), None, value).unwrap();
            state = Some(m.state());
            batch.push(m);
        }
        let out = store.ingest(batch.clone()).unwrap();
        assert!(out.iter().all(|o| *o == Outcome::Stored));
        let log = store.log(0, batch.len() + 1).unwrap();
        assert_eq!(log.len(), batch.len());
        for (m, b) in log.iter().zip(&batch) {
            assert_eq!((m.key, m.json.as_slice()), (b.id(), b.json()));
        }
        assert_eq!(
            store.feed(&kp.id(), 0, usize::MAX).unwrap().len(),
            batch.len()
        );
    }

    /// A batch of our publishes reads each one's predecessor from the
    /// record still waiting (not flushed one publish at a time): the
    /// claimed times never go backwards and the feed chains.
    #[test]
    fn a_batch_of_publishes_chains_with_times_that_never_go_back() {
        let (_d, store) = open();
        let kp = Keypair::from_seed(&[51; 32]);
        // Our latest message claims a time a day ahead of the clock: every
        // publish after it must claim at least that.
        let ahead = now_ms() + 86_400_000.0;
        let first = feed::validate(None, None, feed::build(&kp, None, ahead, post("a"), None));
        assert_eq!(
            store.ingest(vec![first.unwrap()]).unwrap(),
            vec![Outcome::Stored]
        );
        let posts: Vec<Value> = (0..50).map(|i| post(&format!("p{i}"))).collect();
        let out = store.append_local_many(&kp, posts, None).unwrap();
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(Result::is_ok));
        let feed = store.feed(&kp.id(), 0, 100).unwrap();
        assert_eq!(feed.len(), 51);
        let mut last = ahead;
        for m in &feed {
            let t = m
                .value()
                .unwrap()
                .get("timestamp")
                .and_then(Value::as_f64)
                .unwrap();
            assert!(t >= last, "{t} after {last}");
            last = t;
        }
    }

    #[test]
    fn ingest_detects_duplicates_gaps_and_forks() {
        let (_d, store) = open();
        let kp = Keypair::from_seed(&[2; 32]);
        let m1 = feed::validate(None, None, feed::build(&kp, None, 1.0, post("a"), None)).unwrap();
        let m2 = feed::validate(
            Some(&m1.state()),
            None,
            feed::build(&kp, Some(&m1.state()), 2.0, post("b"), None),
        )
        .unwrap();
        let m2_fork = feed::validate(
            Some(&m1.state()),
            None,
            feed::build(&kp, Some(&m1.state()), 2.0, post("other"), None),
        )
        .unwrap();
        // A gap: seq 2 before seq 1.
        assert!(matches!(
            store.ingest(vec![m2.clone()]).unwrap()[0],
            Outcome::Refused(ValidationError::SeqMismatch {
                expected: 1,
                got: 2
            })
        ));
        assert_eq!(store.stats().unwrap().messages, 0);
        // The third is found a duplicate through the feed index entry the
        // first wrote in the same transaction (entries wait to be written
        // in key order; a lookup writes them first).
        let out = store
            .ingest(vec![m1.clone(), m2.clone(), m1.clone()])
            .unwrap();
        assert_eq!(
            out,
            vec![Outcome::Stored, Outcome::Stored, Outcome::Duplicate]
        );
        let out = store.ingest(vec![m2_fork.clone()]).unwrap();
        assert!(matches!(
            out[0],
            Outcome::Refused(ValidationError::Fork { sequence: 2, .. })
        ));
        let forks = store.forks().unwrap();
        assert_eq!(forks.len(), 1);
        assert_eq!(forks[0].2, m2_fork.json());
        // The stored feed is untouched by the fork.
        assert_eq!(store.latest(&kp.id()).unwrap(), Some(m2.state()));
        assert!(store.get(&m2_fork.id()).unwrap().is_none());
    }

    fn content(json: &str) -> Value {
        crate::feed::json::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn contacts_are_indexed_and_give_hops() {
        let (_d, store) = open();
        let [a, b, c, d, x] = [11u8, 12, 13, 14, 15].map(|n| Keypair::from_seed(&[n; 32]));
        let follow = |_who: &Keypair, whom: &Keypair, f: bool| {
            content(&format!(
                r#"{{"type":"contact","contact":"{}","following":{f}}}"#,
                whom.id()
            ))
        };
        store.append_local(&a, follow(&a, &b, true), None).unwrap();
        store.append_local(&b, follow(&b, &c, true), None).unwrap();
        store.append_local(&c, follow(&c, &d, true), None).unwrap();
        store.append_local(&b, follow(&b, &x, true), None).unwrap();
        let block = content(&format!(
            r#"{{"type":"contact","contact":"{}","blocking":true}}"#,
            x.id()
        ));
        store.append_local(&a, block, None).unwrap();
        let set = store.replication_set(&a.id(), 2).unwrap();
        assert_eq!(set.get(&a.id()), Some(&0));
        assert_eq!(set.get(&b.id()), Some(&1));
        assert_eq!(set.get(&c.id()), Some(&2));
        assert_eq!(set.get(&d.id()), None, "three hops away");
        assert_eq!(set.get(&x.id()), None, "blocked by a");
        assert_eq!(store.contacts_of(&a.id()).unwrap().len(), 2);
        // Unfollow clears the edge.
        store.append_local(&a, follow(&a, &b, false), None).unwrap();
        let set = store.replication_set(&a.id(), 2).unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn pub_announcements_feed_the_peer_table() {
        let (_d, store) = open();
        let kp = Keypair::from_seed(&[21; 32]);
        let key = Keypair::from_seed(&[22; 32]).id();
        let announce = |host: &str, port: &str| {
            content(&format!(
                r#"{{"type":"pub","address":{{"host":"{host}","port":{port},"key":"{key}"}}}}"#
            ))
        };
        store
            .append_local(&kp, announce("pub.example.org", "8008"), None)
            .unwrap();
        // Malformed announcements are stored but give no address.
        store
            .append_local(&kp, announce("bad host", "8008"), None)
            .unwrap();
        store
            .append_local(&kp, announce("h", "\"8008\""), None)
            .unwrap();
        let peers = store.peers().unwrap();
        let addr = format!("net:pub.example.org:8008~shs:{}", key.b64());
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert_eq!(peers[0].0, addr);
        assert_eq!(peers[0].1.source, "pub");
        assert_eq!(peers[0].1.announced_by, [kp.id().to_string()]);
        // A peer we already know keeps its record.
        store.note_peer(&addr, |r| r.failures = 3).unwrap();
        store
            .append_local(&kp, announce("pub.example.org", "8008"), None)
            .unwrap();
        assert_eq!(store.peers().unwrap()[0].1.failures, 3);
        assert_eq!(store.stats().unwrap().messages, 4);
        // Each announcer is recorded once, the latest MAX_ANNOUNCERS kept.
        let others: Vec<Keypair> = (0..MAX_ANNOUNCERS as u8 + 1)
            .map(|i| Keypair::from_seed(&[100 + i; 32]))
            .collect();
        for k in others.iter().chain(&others) {
            store
                .append_local(k, announce("pub.example.org", "8008"), None)
                .unwrap();
        }
        let rec = &store.peers().unwrap()[0].1;
        assert_eq!(rec.announced_by.len(), MAX_ANNOUNCERS);
        assert!(!rec.announced_by.contains(&kp.id().to_string()));
        assert_eq!(
            rec.announced_by.last(),
            Some(&others[MAX_ANNOUNCERS].id().to_string())
        );
        // An address the user added is theirs: announcing it changes nothing.
        let mine = format!("net:mine.example.org:8008~shs:{}", key.b64());
        store
            .note_peer(&mine, |r| r.source = "connect".into())
            .unwrap();
        store
            .append_local(&kp, announce("mine.example.org", "8008"), None)
            .unwrap();
        let rec = store
            .peers()
            .unwrap()
            .into_iter()
            .find(|(a, _)| *a == mine)
            .unwrap()
            .1;
        assert_eq!(rec.source, "connect");
        assert!(rec.announced_by.is_empty());
        // A record written before announcers were kept still reads.
        let old: PeerRecord =
            serde_json::from_str(r#"{"last_seen":null,"failures":2,"source":"pub"}"#).unwrap();
        assert_eq!(old.failures, 2);
        assert!(old.announced_by.is_empty());
    }

    #[test]
    fn the_store_file_is_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600, "created 0600");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open_as(&path, &Keypair::from_seed(&[1; 32])).unwrap());
        assert_eq!(mode(&path), 0o600, "tightened when opened");
    }

    #[test]
    fn reopen_keeps_everything_and_checks_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let kp = Keypair::from_seed(&[3; 32]);
        {
            let store = Store::open(&path).unwrap();
            store.append_local(&kp, post("x"), None).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.stats().unwrap().messages, 1);
        assert!(matches!(Store::open(&path), Err(StoreError::Locked)));
        drop(store);
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 99)
                .unwrap();
            txn.commit().unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Schema { found: 99 })
        ));
    }

    #[test]
    fn the_upgrade_from_version_4_indexes_the_device_links_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let (a, b) = (Keypair::from_seed(&[4; 32]), Keypair::from_seed(&[5; 32]));
        let same_as = |to: &Keypair| {
            let c = format!(
                r#"{{"type":"contact","contact":"{}","following":true,"sameAs":true}}"#,
                to.id()
            );
            crate::feed::json::parse(c.as_bytes()).unwrap()
        };
        {
            let store = Store::open_as(&path, &a).unwrap();
            store.append_local(&a, same_as(&b), None).unwrap();
            store.append_local(&b, same_as(&a), None).unwrap();
            assert_eq!(store.devices(&a.id()).unwrap().person.len(), 2);
        }
        // As version 4 left it: the same log, no device links indexed.
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(SAME_AS).unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 4)
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open_as(&path, &a).unwrap();
        assert_eq!(store.devices(&a.id()).unwrap().person, vec![a.id(), b.id()]);
    }
}
