//! Checking: lines parsed, messages verified and placed in their feeds.
//!
//! Owns what a line may be (a message value or a `{key, value,
//! timestamp}` wrapper, at most [`MAX_LINE_BYTES`]), the rayon pool that
//! checks ([`start_check_pool`]), and the [`Checker`] in its two halves:
//! [`Checker::precheck`] parses a batch of lines and batch-verifies their
//! signatures on the pool, in parts, needing no feed state, so that it can
//! run ahead; [`Checker::place`] then places each message in its feed in
//! line order (refusing what goes past a [`FeedCap`]), batches in the order
//! they were prechecked. Also what becomes of each line ([`LineResult`],
//! [`Rejection`]). Reads the store (feed states, feed sizes); never writes
//! it: a checked [`Batch`] is written by `writer`. Imports `crypto`,
//! `feed`, `store` and `limits`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::limits::{FeedCap, FeedDay, utc_day};
use crate::crypto::{FeedId, FeedMap, MsgId};
use crate::feed::{
    self, FeedState, KeyCache, RangeAnchor, SignedMsg, Unverified, ValidationError, Value,
};
use crate::store::{Store, StoreError};

/// Lines per batch: what is read, checked and handed to the writer at
/// once (an import commits `IMPORT_GROUP`, eight, of them
/// together). The smaller, the less the writer has left to do alone after
/// the last batch is checked (README "Import": 2,048 instead of 4,096 took
/// about 2% off the import and 14 MB off its peak memory).
pub const BATCH_LINES: usize = 2048;
/// Most messages per batch-verification equation: a batch is checked in
/// parts of this many, one task on the rayon pool each, and a smaller
/// batch in one part. An equation costs less per message the more it
/// holds, and the two cores share batches rather than halves of one: the
/// node's pipeline prechecks several at once (README "Import", "One
/// equation per range").
const VERIFY_CHUNK: usize = 1024;
/// Longest line read; longer lines are rejected without being kept.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Why an import stopped early (rejected lines do not stop it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("cannot read input: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// 1-based line number.
    pub line: u64,
    /// What was wrong, for a person.
    pub reason: String,
}

/// Why one line is rejected before its feed position is known.
#[derive(Debug)]
pub(super) enum LineError {
    TooLong,
    Invalid(ValidationError),
    Shape(&'static str),
    KeyMismatch { key: String, id: String },
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::TooLong => write!(f, "line longer than {MAX_LINE_BYTES} bytes"),
            LineError::Invalid(e) => write!(f, "{e}"),
            LineError::Shape(s) => f.write_str(s),
            LineError::KeyMismatch { key, id } => {
                write!(f, "key {key} does not match the message id {id}")
            }
        }
    }
}

/// A line that failed before its signature was checked: the feed it claims
/// (when it names one) and why it failed.
type Failed = (Option<FeedId>, LineError);

/// The feed a rejected line claims to belong to, when it names one.
pub(crate) fn claimed_author(v: &Value) -> Option<FeedId> {
    let msg = match v.get("value") {
        Some(inner) if v.get("signature").is_none() => inner,
        _ => v,
    };
    msg.get("author")
        .and_then(Value::as_str)
        .and_then(FeedId::parse)
}

/// Parses and checks one line; on failure, also returns the feed the line
/// claims, so later messages of that feed can name it.
fn parse_line(line: &[u8], hmac: Option<&[u8; 32]>) -> Result<Unverified, Failed> {
    let v = feed::json::parse(line).map_err(|e| (None, LineError::Invalid(e.into())))?;
    let author = claimed_author(&v);
    parse_value(v, hmac).map_err(|e| (author, e))
}

fn parse_value(v: Value, hmac: Option<&[u8; 32]>) -> Result<Unverified, LineError> {
    let (value, key) = match v {
        Value::Object(mut o) if o.get("value").is_some() && o.get("signature").is_none() => {
            let key = match o.get("key") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.to_string_lossy()),
                Some(_) => return Err(LineError::Shape("\"key\" must be a message id string")),
            };
            (o.remove("value").expect("checked"), key)
        }
        other => (other, None),
    };
    let u = feed::prepare(value, hmac).map_err(LineError::Invalid)?;
    if let Some(key) = key
        && MsgId::parse(&key) != Some(u.id())
    {
        // The parse is strict (canonical base64 only): a key that parses
        // to the id is the id's one spelling.
        return Err(LineError::KeyMismatch {
            key,
            id: u.id().to_string(),
        });
    }
    Ok(u)
}

/// How far below the rest of the process the threads that check messages
/// run: the value [`thread_priority`] maps to nice 5 on Linux.
const CHECK_PRIORITY: u8 = 35;

/// Starts the rayon pool that checks messages, its threads at nice 5,
/// below the rest of the process: the store's writer (and a node's
/// network) then run as soon as they have work, and checking fills the
/// cores' remaining time. Without it, a writer that competes with two busy
/// checking threads for two cores falls behind, and is left with a backlog
/// to write alone at the end. Call before anything uses rayon; an error
/// when the pool has started already.
pub fn start_check_pool() -> Result<(), rayon::ThreadPoolBuildError> {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("shoal-check-{i}"))
        .start_handler(|_| {
            // A lower priority needs no privilege; if the system refuses
            // it anyway, checking runs at the normal one.
            if let Ok(p) = ThreadPriorityValue::try_from(CHECK_PRIORITY) {
                let _ = set_current_thread_priority(ThreadPriority::Crossplatform(p));
            }
        })
        .build_global()
}

/// One line after the half of checking that needs no feed state: its
/// message, signature checked, or why it failed.
type Prechecked = (u64, Result<SignedMsg, Failed>);

/// Parses, prepares and signature-checks one part of a batch with one batch
/// equation: each line's result, in line order. With `wanted`, messages of
/// other feeds fail before their signature is checked.
fn precheck_part(
    text: &[u8],
    lines: Vec<(u64, Result<Line, LineError>)>,
    hmac: Option<&[u8; 32]>,
    keys: &KeyCache,
    wanted: Option<&HashSet<FeedId>>,
) -> Vec<Prechecked> {
    // Each line in order: why it failed, or the author of a message whose
    // verdict is the next of `verified`.
    let mut order: Vec<(u64, Result<FeedId, Failed>)> = Vec::with_capacity(lines.len());
    let mut todo = Vec::with_capacity(lines.len());
    for (n, line) in lines {
        match line
            .map_err(|e| (None, e))
            .and_then(|l| parse_line(l.of(text), hmac))
        {
            Ok(u) if wanted.is_some_and(|w| !w.contains(&u.author())) => order.push((
                n,
                Err((
                    None,
                    LineError::Shape("a feed we did not ask this peer for"),
                )),
            )),
            Ok(u) => {
                order.push((n, Ok(u.author())));
                todo.push(u);
            }
            Err(e) => order.push((n, Err(e))),
        }
    }
    let mut verified = feed::verify_many(todo, keys).into_iter();
    order
        .into_iter()
        .map(|(n, slot)| {
            let result = slot.and_then(|author| {
                verified
                    .next()
                    .expect("one verdict per message")
                    .map_err(|e| (Some(author), LineError::Invalid(e)))
            });
            (n, result)
        })
        .collect()
}

/// A batch whose lines are being prechecked ([`precheck_part`]) on the
/// rayon pool, one task per part, while the checker places earlier ones.
pub(super) struct Prechecking {
    parts: Vec<std::sync::mpsc::Receiver<Vec<Prechecked>>>,
    text: Arc<Vec<u8>>,
    /// Whether the lines came from a peer (a `wanted` set was given).
    from_peer: bool,
}

impl Prechecking {
    /// Waits for every part: the lines in order, and the batch's text
    /// buffer for reuse (a new one if a part still holds it). Blocks: never
    /// called on the rayon pool itself (the import's caller and the
    /// pipeline's `shoal-checker` thread call it), where a wait for parts
    /// queued behind it could take every thread of the pool.
    fn wait(self) -> Result<(Vec<Prechecked>, Vec<u8>), ImportError> {
        let mut lines = Vec::new();
        for part in self.parts {
            // A part's task that panicked dropped its sender.
            let done = part
                .recv()
                .map_err(|_| std::io::Error::other("checking a batch failed"))?;
            lines.extend(done);
        }
        let text = Arc::try_unwrap(self.text).unwrap_or_default();
        Ok((lines, text))
    }
}

/// One batch, checked and placed, ready for the store.
pub(super) struct Batch {
    /// For a range of one feed (see [`Checker::check_range`]): where it
    /// sits; `fresh` then holds the whole range, to be written together.
    pub(super) range: Option<RangeAnchor>,
    pub(super) fresh: Vec<feed::VerifiedMsg>,
    pub(super) fresh_lines: Vec<u64>,
    pub(super) known: Vec<SignedMsg>,
    pub(super) known_lines: Vec<u64>,
    pub(super) rejections: Vec<Rejection>,
}

impl crate::store::Placed for Batch {
    /// The messages to write.
    fn msgs(&self) -> &[feed::VerifiedMsg] {
        &self.fresh
    }

    fn range(&self) -> Option<RangeAnchor> {
        self.range
    }

    fn known(&self) -> &[SignedMsg] {
        &self.known
    }
}

/// What became of one line (or one message from a peer).
#[derive(Clone, Debug, PartialEq)]
pub enum LineResult {
    /// Stored: the feed and sequence.
    Stored(FeedId, u64),
    /// The store already held it: the feed and sequence.
    Duplicate(FeedId, u64),
    /// Rejected, with the reason for a person.
    Rejected(String),
}

/// A batch of numbered lines: each one's bytes (see [`Line`]), or why it
/// was not kept.
#[derive(Default)]
pub(super) struct LineBatch {
    pub(super) text: Vec<u8>,
    pub(super) lines: Vec<(u64, Result<Line, LineError>)>,
}

/// Where a line's bytes are.
pub(super) enum Line {
    /// A range of its batch's `text`: a file import reads its lines into one
    /// buffer, reused from batch to batch.
    In(std::ops::Range<usize>),
    /// Its own buffer: a message from a peer, as the connection received it
    /// (not copied again on its way to the checker).
    Own(bytes::Bytes),
}

impl Line {
    /// The line's bytes, of its batch's `text`.
    pub(super) fn of<'a>(&'a self, text: &'a [u8]) -> &'a [u8] {
        match self {
            Line::In(r) => &text[r.clone()],
            Line::Own(b) => b,
        }
    }
}

/// The checking stage: parses, verifies and places messages.
pub(super) struct Checker<'a> {
    store: &'a Store,
    hmac: Option<&'a [u8; 32]>,
    keys: Arc<KeyCache>,
    states: FeedMap<Option<FeedState>>,
    /// Feeds with a rejected message in this import: author -> its line.
    broken: HashMap<FeedId, u64>,
    cap: FeedCap,
    /// Bytes of each feed, once counted, while there is a cap.
    feed_bytes: HashMap<FeedId, u64>,
    /// Bytes of each feed taken from peers today (never trimmed: it is a
    /// limit, not a cache).
    feed_day: FeedDay,
}

impl<'a> Checker<'a> {
    pub(super) fn new(store: &'a Store, hmac: Option<&'a [u8; 32]>) -> Self {
        Checker {
            store,
            hmac,
            keys: Arc::default(),
            states: FeedMap::default(),
            broken: HashMap::new(),
            cap: FeedCap::default(),
            feed_bytes: HashMap::new(),
            feed_day: Default::default(),
        }
    }

    /// A checker that refuses what goes past `cap`.
    pub(super) fn with_cap(store: &'a Store, hmac: Option<&'a [u8; 32]>, cap: FeedCap) -> Self {
        Checker {
            cap,
            ..Checker::new(store, hmac)
        }
    }

    /// Forgets what it assumed of `feed`: the store refused a message of
    /// it that this checker had placed, so its state is read again.
    pub(super) fn forget(&mut self, feed: &FeedId) {
        self.states.remove(feed);
        self.broken.remove(feed);
        self.feed_bytes.remove(feed);
    }

    /// Whether a fresh message of `author` of `len` bytes from a peer fits
    /// the feed's budget for today; counts it when it does.
    fn fits_day(&mut self, author: FeedId, len: u64) -> bool {
        let max = self.cap.max_bytes_per_day;
        let day = utc_day();
        if self.feed_day.charge(author, len, max, day) {
            return true;
        }
        self.cap.usage.capped_today(author);
        false
    }

    /// Whether a fresh message of `author` of `len` bytes fits the feed's
    /// byte cap; counts it when it does.
    fn fits_cap(&mut self, author: FeedId, len: u64) -> Result<bool, ImportError> {
        if self.cap.max_bytes == 0 {
            return Ok(true);
        }
        let used = match self.feed_bytes.get(&author) {
            Some(u) => *u,
            None => self.store.feed_bytes(&author)?,
        };
        if used + len > self.cap.max_bytes {
            self.cap.usage.capped(author);
            self.feed_bytes.insert(author, used);
            return Ok(false);
        }
        self.feed_bytes.insert(author, used + len);
        Ok(true)
    }

    /// Forgets what it keeps only to save work or word reasons once it holds
    /// more than `max` feeds: prepared keys, rejected lines, and feeds it
    /// has placed no message of. Never the state of a feed it placed
    /// messages of, which the store may not hold yet.
    pub(super) fn trim(&mut self, max: usize) {
        if self.keys.len() > max {
            self.keys = Arc::default();
        }
        if self.broken.len() > max {
            self.broken = HashMap::new();
        }
        if self.states.len() > max {
            self.states.retain(|_, s| s.is_some());
        }
        if self.feed_bytes.len() > max {
            self.feed_bytes = HashMap::new();
        }
    }

    /// Starts the half of checking `batch` that needs no feed state on the
    /// rayon pool: lines parsed and prepared, signatures batch-verified,
    /// in parts of at most [`VERIFY_CHUNK`] (a range of a feed, or an EBT
    /// batch, in one). With `wanted` (messages
    /// from a peer), messages of other feeds are refused before their
    /// signature is checked: a peer sends only the feeds we asked it for.
    /// [`Checker::place`] or [`Checker::place_range`] finishes it, in the
    /// order batches were started.
    pub(super) fn precheck(
        &self,
        batch: LineBatch,
        wanted: Option<Arc<HashSet<FeedId>>>,
    ) -> Prechecking {
        let text = Arc::new(batch.text);
        let hmac = self.hmac.copied();
        let mut parts = Vec::new();
        let mut lines = batch.lines.into_iter();
        loop {
            let part: Vec<_> = lines.by_ref().take(VERIFY_CHUNK).collect();
            if part.is_empty() {
                break;
            }
            let (done, result) = std::sync::mpsc::sync_channel(1);
            let (text, keys, wanted) = (text.clone(), self.keys.clone(), wanted.clone());
            rayon::spawn(move || {
                let out = precheck_part(&text, part, hmac.as_ref(), &keys, wanted.as_deref());
                // The buffer goes back to the reader once no part holds it.
                drop(text);
                let _ = done.send(out);
            });
            parts.push(result);
        }
        Prechecking {
            parts,
            text,
            from_peer: wanted.is_some(),
        }
    }

    /// Checks a batch of lines at once: [`Checker::precheck`], then
    /// [`Checker::place`].
    #[cfg(test)]
    pub(super) fn check(&mut self, batch: LineBatch) -> Result<(Batch, LineBatch), ImportError> {
        let pre = self.precheck(batch, None);
        self.place(pre, None)
    }

    /// Places a range of `feed` (its messages in ascending order), once
    /// prechecked, at `anchor`: every message signature-checked and of
    /// `feed`, the whole chained by [`feed::chain_range`], within the feed's
    /// byte cap and its bytes for the day (a range comes from a peer).
    /// Any failure refuses the whole range, every line with the reason (the
    /// first failing line's, in order).
    /// A newest range becomes the feed's state here at once (the store
    /// tells the checker to forget it if it does not take it).
    pub(super) fn place_range(
        &mut self,
        feed: FeedId,
        anchor: RangeAnchor,
        pre: Prechecking,
    ) -> Result<Batch, ImportError> {
        let (checked, _) = pre.wait()?;
        let lines: Vec<u64> = checked.iter().map(|(n, _)| *n).collect();
        let signed: Result<Vec<SignedMsg>, String> = checked
            .into_iter()
            .map(|(_, r)| r.map_err(|(_, e)| e.to_string()))
            .collect();
        let placed = signed.and_then(|msgs| {
            if msgs.iter().any(|m| m.author() != feed) {
                return Err(ValidationError::RangeAuthor.to_string());
            }
            feed::chain_range(anchor, msgs).map_err(|e| e.to_string())
        });
        let placed = match placed {
            Ok(range) => {
                let bytes = range.iter().map(|m| m.json().len() as u64).sum();
                if !self.fits_day(feed, bytes) {
                    Err(format!(
                        "the feed is over max_feed_bytes_per_day ({} bytes today)",
                        self.cap.max_bytes_per_day
                    ))
                } else if self.fits_cap(feed, bytes)? {
                    Ok(range)
                } else {
                    Err(format!(
                        "the feed is over max_feed_bytes ({} bytes)",
                        self.cap.max_bytes
                    ))
                }
            }
            Err(e) => Err(e),
        };
        let mut b = Batch {
            range: Some(anchor),
            fresh: Vec::new(),
            fresh_lines: Vec::new(),
            known: Vec::new(),
            known_lines: Vec::new(),
            rejections: Vec::new(),
        };
        match placed {
            Ok(range) => {
                if anchor == RangeAnchor::Newest
                    && let Some(last) = range.last()
                {
                    self.states.insert(feed, Some(last.state()));
                }
                b.fresh_lines = lines;
                b.fresh = range;
            }
            Err(reason) => {
                b.rejections = lines
                    .into_iter()
                    .map(|line| Rejection {
                        line,
                        reason: reason.clone(),
                    })
                    .collect();
            }
        }
        Ok(b)
    }

    /// Places a prechecked batch: each message in its feed, in line order.
    /// Gives the emptied line batch back for reuse.
    /// With `refused` (messages from one peer), once a message of a feed is
    /// rejected every later one of that feed is rejected too, in this batch
    /// and in later ones: a peer that sent one invalid message of a feed is
    /// not trusted for the rest of it.
    pub(super) fn place(
        &mut self,
        pre: Prechecking,
        refused: Option<&Mutex<HashSet<FeedId>>>,
    ) -> Result<(Batch, LineBatch), ImportError> {
        let from_peer = pre.from_peer;
        let (checked, text) = pre.wait()?;
        let mut refused = refused.map(|m| m.lock().expect("refused feeds lock"));
        let mut refused = refused.as_deref_mut();
        let mut b = Batch {
            range: None,
            fresh: Vec::with_capacity(checked.len()),
            fresh_lines: Vec::with_capacity(checked.len()),
            known: Vec::new(),
            known_lines: Vec::new(),
            rejections: Vec::new(),
        };
        for (n, result) in checked {
            let signed = match result {
                Ok(s) => s,
                Err((author, e)) => {
                    if let Some(a) = author {
                        self.broken.entry(a).or_insert(n);
                        if let Some(r) = refused.as_deref_mut() {
                            r.insert(a);
                        }
                    }
                    b.rejections.push(Rejection {
                        line: n,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let author = signed.author();
            if refused.as_deref().is_some_and(|r| r.contains(&author)) {
                b.rejections.push(Rejection {
                    line: n,
                    reason: "this peer sent an invalid message of this feed earlier".into(),
                });
                continue;
            }
            let state = match self.states.get(&author) {
                // Our own feed also grows by our publishes, which do not
                // pass here: when the store is ahead of what was assumed,
                // it is read again (else a peer's next message of ours
                // would be refused as out of sequence).
                Some(s) if Some(author) == self.store.me() => {
                    let stored = self.store.latest(&author)?;
                    let newer = stored.map(|x| x.sequence) > s.map(|x| x.sequence);
                    let s = if newer { stored } else { *s };
                    self.states.insert(author, s);
                    s
                }
                Some(s) => *s,
                None => {
                    let s = self.store.latest(&author)?;
                    self.states.insert(author, s);
                    s
                }
            };
            if state.is_some_and(|s| signed.sequence() <= s.sequence) {
                b.known.push(signed);
                b.known_lines.push(n);
                continue;
            }
            match feed::chain(state.as_ref(), signed) {
                Ok(v) => {
                    let len = v.json().len() as u64;
                    // Only what peers send counts against the day's budget:
                    // their messages come with the feeds we asked for.
                    let over = if from_peer && !self.fits_day(author, len) {
                        Some(format!(
                            "the feed is over max_feed_bytes_per_day ({} bytes today)",
                            self.cap.max_bytes_per_day
                        ))
                    } else if !self.fits_cap(author, len)? {
                        Some(format!(
                            "the feed is over max_feed_bytes ({} bytes)",
                            self.cap.max_bytes
                        ))
                    } else {
                        None
                    };
                    if let Some(reason) = over {
                        if let Some(r) = refused.as_deref_mut() {
                            r.insert(author);
                        }
                        b.rejections.push(Rejection { line: n, reason });
                        continue;
                    }
                    self.states.insert(author, Some(v.state()));
                    b.fresh.push(v);
                    b.fresh_lines.push(n);
                }
                Err(e) => {
                    let reason = match (self.broken.get(&author), &e) {
                        (Some(bad), ValidationError::SeqMismatch { .. }) => {
                            format!("depends on rejected line {bad} of the same feed ({e})")
                        }
                        _ => e.to_string(),
                    };
                    self.broken.entry(author).or_insert(n);
                    if let Some(r) = refused.as_deref_mut() {
                        r.insert(author);
                    }
                    b.rejections.push(Rejection { line: n, reason });
                }
            }
        }
        Ok((
            b,
            LineBatch {
                text,
                lines: Vec::new(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keypair, MsgId};

    /// Message `seq` (1 or 2) of the feed of seed `n`, as JSON text.
    fn message(n: u32, seq: u64, text: &str) -> Vec<u8> {
        let mut seed = [0x77u8; 32];
        seed[..4].copy_from_slice(&n.to_be_bytes());
        let keys = Keypair::from_seed(&seed);
        let state = (seq == 2).then_some(FeedState {
            sequence: 1,
            id: MsgId([1; 32]),
        });
        let content = feed::json::parse(br#"{"type":"post","text":"a"}"#).unwrap();
        let v = feed::build(&keys, state.as_ref(), 1.0, content, None);
        let text = format!(r#""text":"{text}""#);
        String::from_utf8(feed::json::to_compact(&v))
            .unwrap()
            .replace(r#""text":"a""#, &text)
            .into_bytes()
    }

    fn batch_of(lines: &[Vec<u8>]) -> LineBatch {
        let mut b = LineBatch {
            text: Vec::new(),
            lines: Vec::new(),
        };
        for (i, l) in lines.iter().enumerate() {
            let start = b.text.len();
            b.text.extend_from_slice(l);
            b.lines
                .push((i as u64 + 1, Ok(Line::In(start..b.text.len()))));
        }
        b
    }

    /// The bug: two homes of one identity; one took message 1 of its
    /// feed from the other (through the long-lived checker), published 2
    /// itself (not through the checker), then was sent 3 and refused it,
    /// "expected sequence 2 but got 3", and took no more of its own feed
    /// from that peer.
    #[test]
    fn our_own_publishes_do_not_leave_the_checker_behind_on_our_feed() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keypair::from_seed(&[0x31; 32]);
        let store = Store::open_as(&dir.path().join("store.redb"), &keys).unwrap();
        let post = |t: &str| {
            feed::json::parse(format!(r#"{{"type":"post","text":"{t}"}}"#).as_bytes()).unwrap()
        };
        let first = feed::build(&keys, None, 1.0, post("one"), None);
        let first = feed::validate(None, None, first).unwrap();
        let mut checker = Checker::new(&store, None);
        let (b, _) = checker
            .check(batch_of(&[feed::json::to_compact(first.value())]))
            .unwrap();
        assert_eq!(b.fresh.len(), 1);
        store.ingest(b.fresh).unwrap();
        // Ours, published here.
        let second = store.append_local(&keys, post("two"), None).unwrap();
        // The other home's next, on top of it.
        let state = FeedState {
            sequence: 2,
            id: second.id(),
        };
        let third = feed::build(&keys, Some(&state), 3.0, post("three"), None);
        let (b, _) = checker
            .check(batch_of(&[feed::json::to_compact(&third)]))
            .unwrap();
        assert!(b.rejections.is_empty(), "{:?}", b.rejections);
        assert_eq!(b.fresh.len(), 1);
    }

    /// A range of a feed (a thousand messages at most) or an EBT batch is
    /// one batch equation, however many cores: split between them, the
    /// halves cost more per message (README "One equation per range").
    /// An import's batch of 2,048 lines is two.
    #[test]
    fn a_batch_is_checked_in_parts_of_at_most_a_verify_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let checker = Checker::new(&store, None);
        for (lines, parts) in [(1, 1), (50, 1), (950, 1), (1024, 1), (1025, 2), (2048, 2)] {
            let batch = LineBatch {
                text: Vec::new(),
                lines: (1..=lines).map(|n| (n, Err(LineError::TooLong))).collect(),
            };
            let pre = checker.precheck(batch, None);
            assert_eq!(pre.parts.len(), parts, "{lines} lines");
            let (checked, _) = pre.wait().unwrap();
            assert_eq!(checked.len() as u64, lines);
        }
    }

    #[test]
    fn the_pipeline_checker_forgets_feeds_it_placed_nothing_of() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let mut checker = Checker::new(&store, None);
        // One feed placed (checked ahead of the store), then rounds of new
        // feeds: a forged signature, and a valid one that does not chain.
        let (b, _) = checker.check(batch_of(&[message(0, 1, "a")])).unwrap();
        assert_eq!(b.fresh.len(), 1);
        let placed = b.fresh[0].author();
        let max = 50;
        for round in 0..5 {
            checker.trim(max);
            assert!(checker.keys.len() <= max, "{} keys", checker.keys.len());
            assert!(checker.broken.len() <= max);
            assert!(checker.states.len() <= max);
            assert!(checker.states[&placed].is_some(), "a placed feed is kept");
            let lines: Vec<Vec<u8>> = (1..=20)
                .flat_map(|i| {
                    [
                        message(round * 20 + i, 1, "b"),
                        message(round * 20 + i + 1000, 2, "a"),
                    ]
                })
                .collect();
            let (b, _) = checker.check(batch_of(&lines)).unwrap();
            assert_eq!(b.rejections.len(), lines.len());
        }
    }
}
