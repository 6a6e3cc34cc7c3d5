//! Streaming import of JSON lines into the store.
//!
//! Owns the pipeline behind `shoal import`: read a bounded batch of lines,
//! parse and check them in parallel, verify signatures with batch
//! verification in parallel, place each message in its feed in line order,
//! and store the batch in one write transaction. Memory is bounded by the
//! batch size, never by the file. Imports `crypto`, `feed` and `store`.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use rayon::prelude::*;

use crate::crypto::FeedId;
use crate::feed::{self, FeedState, KeyCache, SignedMsg, Unverified, ValidationError, Value};
use crate::store::{Outcome, Store, StoreError};
use std::sync::{Arc, Mutex};

/// Lines per batch: one write transaction each.
pub const BATCH_LINES: usize = 4096;
/// Most messages per batch-verification equation.
const VERIFY_CHUNK: usize = 1024;
/// Fewest messages per batch-verification equation.
const MIN_VERIFY_CHUNK: usize = 32;
/// Longest line read; longer lines are rejected without being kept.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Feeds the long-lived checker of a [`Pipeline`] may remember besides
/// those with messages checked ahead of the store; past that it forgets
/// them (see [`Checker::trim`]), so that peers naming ever new feeds cannot
/// make it grow without bound.
const PIPELINE_CACHED_FEEDS: usize = 1 << 16;

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

/// Totals of one import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages newly stored.
    pub imported: u64,
    /// Messages the store already held.
    pub duplicates: u64,
    /// Lines rejected.
    pub rejected: u64,
}

/// Why one line is rejected before its feed position is known.
#[derive(Debug)]
enum LineError {
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

/// Parses one line: a message value or a `{key, value, timestamp}` wrapper.
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
    if let Some(key) = key {
        let id = u.id().to_string();
        if key != id {
            return Err(LineError::KeyMismatch { key, id });
        }
    }
    Ok(u)
}

/// Reads one line of at most [`MAX_LINE_BYTES`] into `buf` (without the
/// newline). Returns `None` at end of input, `Some(false)` for a line that was
/// too long (its bytes are skipped, not kept).
pub(crate) fn read_line_bounded(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if any { Some(!too_long) } else { None });
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > MAX_LINE_BYTES {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(!too_long));
        }
    }
}

/// One batch, checked and placed, ready for the store.
struct Batch {
    fresh: Vec<feed::VerifiedMsg>,
    fresh_lines: Vec<u64>,
    known: Vec<SignedMsg>,
    known_lines: Vec<u64>,
    rejections: Vec<Rejection>,
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

/// What the store made of a batch, in line order, and the feeds whose
/// checked-ahead state the store did not confirm.
struct Stored {
    results: Vec<(u64, LineResult)>,
    refused_feeds: Vec<FeedId>,
}

fn store_batch(store: &Store, b: Batch) -> Result<Stored, StoreError> {
    let mut results: Vec<(u64, LineResult)> = b
        .rejections
        .into_iter()
        .map(|r| (r.line, LineResult::Rejected(r.reason)))
        .collect();
    let mut refused_feeds = Vec::new();
    let places: Vec<(FeedId, u64)> = b.fresh.iter().map(|m| (m.author(), m.sequence())).collect();
    for ((n, (author, seq)), o) in b
        .fresh_lines
        .into_iter()
        .zip(places)
        .zip(store.ingest(b.fresh)?)
    {
        results.push((
            n,
            match o {
                Outcome::Stored => LineResult::Stored(author, seq),
                Outcome::Duplicate => LineResult::Duplicate(author, seq),
                Outcome::Refused(e) => {
                    refused_feeds.push(author);
                    LineResult::Rejected(e.to_string())
                }
            },
        ));
    }
    if !b.known.is_empty() {
        let places: Vec<(FeedId, u64)> =
            b.known.iter().map(|m| (m.author(), m.sequence())).collect();
        for ((n, (author, seq)), o) in b
            .known_lines
            .into_iter()
            .zip(places)
            .zip(store.check_known(&b.known)?)
        {
            results.push((
                n,
                match o {
                    Outcome::Duplicate | Outcome::Stored => LineResult::Duplicate(author, seq),
                    Outcome::Refused(e) => LineResult::Rejected(e.to_string()),
                },
            ));
        }
    }
    results.sort_by_key(|r| r.0);
    Ok(Stored {
        results,
        refused_feeds,
    })
}

/// Imports JSON lines from `input` into `store`. Every message is verified
/// (format, signature, chain, id = key where given); valid ones are stored
/// one batch per transaction; each rejected line is reported through
/// `on_reject` in line order. A rejected message does not stop other feeds;
/// later messages of its own feed are rejected as depending on it.
///
/// Three stages overlap: a reader thread reads batch k+2, the caller's
/// thread and the rayon pool check batch k+1, and a writer thread commits
/// batch k (its fsync costs no CPU). Each hand-over holds at most one batch.
pub fn import(
    store: &Store,
    input: impl BufRead + Send,
    hmac: Option<&[u8; 32]>,
    mut on_reject: impl FnMut(Rejection),
) -> Result<Summary, ImportError> {
    std::thread::scope(|scope| {
        let (to_checker, line_batches) =
            std::sync::mpsc::sync_channel::<std::io::Result<LineBatch>>(1);
        let (recycle, recycled) = std::sync::mpsc::sync_channel::<LineBatch>(2);
        scope.spawn(move || {
            let mut lines = Lines {
                input,
                line_no: 0,
                buf: Vec::new(),
                eof: false,
                recycled,
            };
            loop {
                let next = lines.next_batch().transpose();
                let Some(next) = next else { break };
                let failed = next.is_err();
                if to_checker.send(next).is_err() || failed {
                    break;
                }
            }
        });
        let (to_writer, jobs) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (done, results) = std::sync::mpsc::channel::<Result<Stored, StoreError>>();
        let writer = scope.spawn(move || {
            for job in jobs {
                if done.send(store_batch(store, job)).is_err() {
                    break;
                }
            }
        });
        let mut summary = Summary::default();
        let mut in_flight = false;
        let mut collect = |summary: &mut Summary| -> Result<(), ImportError> {
            let stored = results
                .recv()
                .map_err(|_| std::io::Error::other("store writer stopped"))??;
            for (line, r) in stored.results {
                match r {
                    LineResult::Stored(..) => summary.imported += 1,
                    LineResult::Duplicate(..) => summary.duplicates += 1,
                    LineResult::Rejected(reason) => {
                        summary.rejected += 1;
                        on_reject(Rejection { line, reason });
                    }
                }
            }
            Ok(())
        };
        let mut checker = Checker::new(store, hmac);
        let result = (|| {
            for lines in line_batches.iter() {
                let (batch, used) = checker.check(lines?)?;
                let _ = recycle.try_send(used);
                if in_flight {
                    collect(&mut summary)?;
                }
                to_writer
                    .send(batch)
                    .map_err(|_| std::io::Error::other("store writer stopped"))?;
                in_flight = true;
            }
            if in_flight {
                collect(&mut summary)?;
            }
            Ok(summary)
        })();
        drop(to_writer);
        let _ = writer.join();
        result
    })
}

/// A batch of lines in one buffer: each numbered line is a range of `text`,
/// or why it was not kept.
struct LineBatch {
    text: Vec<u8>,
    lines: Vec<(u64, Result<std::ops::Range<usize>, LineError>)>,
}

/// The reading stage: bounded batches of numbered, non-blank lines.
struct Lines<R> {
    input: R,
    line_no: u64,
    buf: Vec<u8>,
    eof: bool,
    /// Batches the checker is done with, reused so that their memory is not
    /// returned to the system and faulted in again for every batch.
    recycled: std::sync::mpsc::Receiver<LineBatch>,
}

impl<R: BufRead> Lines<R> {
    fn next_batch(&mut self) -> std::io::Result<Option<LineBatch>> {
        let mut b = match self.recycled.try_recv() {
            Ok(mut b) => {
                b.text.clear();
                b.lines.clear();
                b
            }
            Err(_) => LineBatch {
                text: Vec::with_capacity(BATCH_LINES * 700),
                lines: Vec::with_capacity(BATCH_LINES),
            },
        };
        while !self.eof && b.lines.len() < BATCH_LINES {
            match read_line_bounded(&mut self.input, &mut self.buf)? {
                None => self.eof = true,
                Some(ok) => {
                    self.line_no += 1;
                    if !ok {
                        b.lines.push((self.line_no, Err(LineError::TooLong)));
                    } else if !self.buf.iter().all(u8::is_ascii_whitespace) {
                        let start = b.text.len();
                        b.text.extend_from_slice(&self.buf);
                        b.lines.push((self.line_no, Ok(start..b.text.len())));
                    }
                }
            }
        }
        Ok(if b.lines.is_empty() { None } else { Some(b) })
    }
}

/// The most bytes of one feed the node stores (`max_feed_bytes`) and takes
/// from peers in a UTC day (`max_feed_bytes_per_day`), and where to count
/// the feeds that reached them.
#[derive(Clone, Debug, Default)]
pub struct FeedCap {
    /// Bytes of one feed (the JSON of its messages); 0: no limit.
    pub max_bytes: u64,
    /// Bytes of one feed taken from peers in a UTC day (what is imported
    /// through the node is not counted); 0: no limit.
    pub max_bytes_per_day: u64,
    /// Counts the feeds capped.
    pub usage: Arc<crate::replicate::limits::Usage>,
}

/// The checking stage: parses, verifies and places messages.
struct Checker<'a> {
    store: &'a Store,
    hmac: Option<&'a [u8; 32]>,
    keys: KeyCache,
    states: HashMap<FeedId, Option<FeedState>>,
    /// Feeds with a rejected message in this import: author -> its line.
    broken: HashMap<FeedId, u64>,
    cap: FeedCap,
    /// Bytes of each feed, once counted, while there is a cap.
    feed_bytes: HashMap<FeedId, u64>,
    /// Bytes of each feed taken from peers today (never trimmed: it is a
    /// limit, not a cache).
    feed_day: crate::replicate::limits::FeedDay,
}

impl<'a> Checker<'a> {
    fn new(store: &'a Store, hmac: Option<&'a [u8; 32]>) -> Self {
        Checker {
            store,
            hmac,
            keys: KeyCache::default(),
            states: HashMap::new(),
            broken: HashMap::new(),
            cap: FeedCap::default(),
            feed_bytes: HashMap::new(),
            feed_day: Default::default(),
        }
    }

    /// Whether a fresh message of `author` of `len` bytes from a peer fits
    /// the feed's budget for today; counts it when it does.
    fn fits_day(&mut self, author: FeedId, len: u64) -> bool {
        let max = self.cap.max_bytes_per_day;
        let day = crate::replicate::limits::utc_day();
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
    fn trim(&mut self, max: usize) {
        if self.keys.len() > max {
            self.keys = KeyCache::default();
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

    /// Checks a batch of lines; gives the emptied line batch back for reuse.
    /// With `refused` (messages from one peer), once a message of a feed is
    /// rejected every later one of that feed is rejected too, in this batch
    /// and in later ones: a peer that sent one invalid message of a feed is
    /// not trusted for the rest of it.
    ///
    /// With `wanted`, messages of other feeds are refused before their
    /// signature is checked: a peer sends only the feeds we asked it for.
    fn check_from(
        &mut self,
        batch: LineBatch,
        refused: Option<&Mutex<HashSet<FeedId>>>,
        wanted: Option<&HashSet<FeedId>>,
    ) -> Result<(Batch, LineBatch), ImportError> {
        let mut refused = refused.map(|m| m.lock().expect("refused feeds lock"));
        self.check_inner(batch, refused.as_deref_mut(), wanted)
    }

    fn check(&mut self, batch: LineBatch) -> Result<(Batch, LineBatch), ImportError> {
        self.check_inner(batch, None, None)
    }

    fn check_inner(
        &mut self,
        mut batch: LineBatch,
        mut refused: Option<&mut HashSet<FeedId>>,
        wanted: Option<&HashSet<FeedId>>,
    ) -> Result<(Batch, LineBatch), ImportError> {
        let hmac = self.hmac;
        let text = &batch.text;
        // 2. Parse and check in parallel.
        let parsed: Vec<(u64, Result<Unverified, Failed>)> = batch
            .lines
            .par_drain(..)
            .map(|(n, l)| {
                let r = l.map_err(|e| (None, e));
                (n, r.and_then(|range| parse_line(&text[range], hmac)))
            })
            .collect();
        let authors: Vec<FeedId> = parsed
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(Unverified::author))
            .collect();
        self.keys.prime(&authors);
        // 3. Batch signature verification in parallel chunks. `order` keeps
        // every line in input order: a parse failure, or a place in `todo`.
        let mut order: Vec<(u64, Result<FeedId, Failed>)> = Vec::with_capacity(parsed.len());
        let mut todo = Vec::with_capacity(parsed.len());
        for (n, r) in parsed {
            match r {
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
        // Split so that every core gets a share, however small the batch
        // (messages from peers arrive in batches of a few hundred).
        let per_chunk = todo
            .len()
            .div_ceil(rayon::current_num_threads())
            .clamp(MIN_VERIFY_CHUNK, VERIFY_CHUNK);
        let mut chunks: Vec<Vec<Unverified>> = Vec::new();
        let mut it = todo.into_iter().peekable();
        while it.peek().is_some() {
            chunks.push(it.by_ref().take(per_chunk).collect());
        }
        let keys = &self.keys;
        let verified: Vec<Result<SignedMsg, ValidationError>> = chunks
            .into_par_iter()
            .flat_map_iter(|c| feed::verify_many(c, keys))
            .collect();
        // 4. Place each message in its feed, in line order.
        let mut b = Batch {
            fresh: Vec::with_capacity(verified.len()),
            fresh_lines: Vec::with_capacity(verified.len()),
            known: Vec::new(),
            known_lines: Vec::new(),
            rejections: Vec::new(),
        };
        let mut verified = verified.into_iter();
        for (n, slot) in order {
            let result = match slot {
                Err((author, e)) => Err((author, e.to_string())),
                Ok(author) => verified
                    .next()
                    .expect("one result per parsed line")
                    .map_err(|e| (Some(author), e.to_string())),
            };
            let signed = match result {
                Ok(s) => s,
                Err((author, reason)) => {
                    if let Some(a) = author {
                        self.broken.entry(a).or_insert(n);
                        if let Some(r) = refused.as_deref_mut() {
                            r.insert(a);
                        }
                    }
                    b.rejections.push(Rejection { line: n, reason });
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
                    if wanted.is_some() && !self.fits_day(author, len) {
                        if let Some(r) = refused.as_deref_mut() {
                            r.insert(author);
                        }
                        b.rejections.push(Rejection {
                            line: n,
                            reason: format!(
                                "the feed is over max_feed_bytes_per_day ({} bytes today)",
                                self.cap.max_bytes_per_day
                            ),
                        });
                        continue;
                    }
                    if !self.fits_cap(author, len)? {
                        if let Some(r) = refused.as_deref_mut() {
                            r.insert(author);
                        }
                        b.rejections.push(Rejection {
                            line: n,
                            reason: format!(
                                "the feed is over max_feed_bytes ({} bytes)",
                                self.cap.max_bytes
                            ),
                        });
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
        Ok((b, batch))
    }
}

/// One submission to a [`Pipeline`].
struct Job {
    batch: LineBatch,
    count: usize,
    refused: Option<Arc<Mutex<HashSet<FeedId>>>>,
    wanted: Option<Arc<HashSet<FeedId>>>,
    reply: tokio::sync::oneshot::Sender<Vec<LineResult>>,
}

/// A long-lived checking and storing pipeline for messages that arrive from
/// peers: the same stages as [`import`] (parallel parse and batch
/// verification, feed placement, one transaction per batch), shared by every
/// replication session of a node so that each feed is placed by one thread.
#[derive(Clone)]
pub struct Pipeline {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

impl Pipeline {
    /// Starts the checker and writer threads. `on_stored` is called by the
    /// writer after each commit with the feeds and sequences it stored.
    pub fn start(
        store: Arc<Store>,
        hmac: Option<[u8; 32]>,
        cap: FeedCap,
        on_stored: impl Fn(&[(FeedId, u64)]) + Send + 'static,
    ) -> Pipeline {
        let (jobs, mut incoming) = tokio::sync::mpsc::channel::<Job>(8);
        let (to_writer, for_writer) = std::sync::mpsc::sync_channel::<(
            Batch,
            usize,
            tokio::sync::oneshot::Sender<Vec<LineResult>>,
        )>(1);
        let (invalidate, invalidated) = std::sync::mpsc::channel::<FeedId>();
        let writer_store = store.clone();
        std::thread::Builder::new()
            .name("shoal-writer".into())
            .spawn(move || {
                // Group commit: everything the checker has ready goes into one
                // transaction, so small batches from many sessions share a fsync.
                while let Ok(first) = for_writer.recv() {
                    let mut jobs = vec![first];
                    let mut lines = jobs[0].1;
                    while lines < BATCH_LINES {
                        match for_writer.try_recv() {
                            Ok(j) => {
                                lines += j.1;
                                jobs.push(j);
                            }
                            Err(_) => break,
                        }
                    }
                    // Line numbers become (job << 32 | line) in the merged batch.
                    let mut merged = Batch {
                        fresh: Vec::new(),
                        fresh_lines: Vec::new(),
                        known: Vec::new(),
                        known_lines: Vec::new(),
                        rejections: Vec::new(),
                    };
                    let mut replies = Vec::with_capacity(jobs.len());
                    for (j, (batch, count, reply)) in jobs.into_iter().enumerate() {
                        let tag = |line: u64| ((j as u64) << 32) | line;
                        merged.fresh.extend(batch.fresh);
                        merged
                            .fresh_lines
                            .extend(batch.fresh_lines.into_iter().map(tag));
                        merged.known.extend(batch.known);
                        merged
                            .known_lines
                            .extend(batch.known_lines.into_iter().map(tag));
                        merged
                            .rejections
                            .extend(batch.rejections.into_iter().map(|r| Rejection {
                                line: tag(r.line),
                                reason: r.reason,
                            }));
                        replies.push((count, reply));
                    }
                    let results = match store_batch(&writer_store, merged) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!("store write failed: {e}");
                            for (count, reply) in replies {
                                let _ =
                                    reply.send(vec![LineResult::Rejected(e.to_string()); count]);
                            }
                            continue;
                        }
                    };
                    for f in &results.refused_feeds {
                        let _ = invalidate.send(*f);
                    }
                    let mut outs: Vec<Vec<LineResult>> = replies
                        .iter()
                        .map(|(count, _)| {
                            vec![LineResult::Rejected("not processed".into()); *count]
                        })
                        .collect();
                    let mut stored = Vec::new();
                    for (key, r) in results.results {
                        if let LineResult::Stored(a, s) = &r {
                            stored.push((*a, *s));
                        }
                        let (j, line) = ((key >> 32) as usize, key & 0xffff_ffff);
                        if let Some(slot) =
                            outs.get_mut(j).and_then(|o| o.get_mut(line as usize - 1))
                        {
                            *slot = r;
                        }
                    }
                    if !stored.is_empty() {
                        on_stored(&stored);
                    }
                    for ((_, reply), out) in replies.into_iter().zip(outs) {
                        let _ = reply.send(out);
                    }
                }
            })
            .expect("spawn writer thread");
        std::thread::Builder::new()
            .name("shoal-checker".into())
            .spawn(move || {
                let hmac = hmac;
                let mut checker = Checker::new(&store, hmac.as_ref());
                checker.cap = cap;
                while let Some(job) = incoming.blocking_recv() {
                    while let Ok(f) = invalidated.try_recv() {
                        checker.states.remove(&f);
                        checker.broken.remove(&f);
                        checker.feed_bytes.remove(&f);
                    }
                    checker.trim(PIPELINE_CACHED_FEEDS);
                    match checker.check_from(
                        job.batch,
                        job.refused.as_deref(),
                        job.wanted.as_deref(),
                    ) {
                        Ok((batch, _)) => {
                            if to_writer.send((batch, job.count, job.reply)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::error!("checking failed: {e}");
                            let _ = job
                                .reply
                                .send(vec![LineResult::Rejected(e.to_string()); job.count]);
                        }
                    }
                }
            })
            .expect("spawn checker thread");
        Pipeline { jobs }
    }

    /// Checks and stores messages (each a JSON message value or a
    /// `{key, value, timestamp}`), returning what became of each, in order.
    pub async fn submit(&self, items: &[&[u8]]) -> Vec<LineResult> {
        self.submit_from(items, None, None).await
    }

    /// [`Pipeline::submit`] for messages from one peer: `refused` holds the
    /// feeds that peer sent an invalid message of; later messages of those
    /// feeds from it are rejected, even those submitted before the rejection
    /// was known (the checker places submissions in order). With `wanted`,
    /// messages of any other feed are refused unverified, and the bytes of
    /// each feed count against its budget for the day
    /// ([`FeedCap::max_bytes_per_day`]).
    pub async fn submit_from(
        &self,
        items: &[&[u8]],
        refused: Option<Arc<Mutex<HashSet<FeedId>>>>,
        wanted: Option<Arc<HashSet<FeedId>>>,
    ) -> Vec<LineResult> {
        let mut batch = LineBatch {
            text: Vec::with_capacity(items.iter().map(|i| i.len()).sum()),
            lines: Vec::with_capacity(items.len()),
        };
        for (i, item) in items.iter().enumerate() {
            let start = batch.text.len();
            if item.len() > MAX_LINE_BYTES {
                batch.lines.push((i as u64 + 1, Err(LineError::TooLong)));
                continue;
            }
            batch.text.extend_from_slice(item);
            batch
                .lines
                .push((i as u64 + 1, Ok(start..batch.text.len())));
        }
        let (reply, result) = tokio::sync::oneshot::channel();
        let job = Job {
            batch,
            count: items.len(),
            refused,
            wanted,
            reply,
        };
        if self.jobs.send(job).await.is_err() {
            return vec![LineResult::Rejected("the node is shutting down".into()); items.len()];
        }
        result.await.unwrap_or_else(|_| {
            vec![LineResult::Rejected("the node is shutting down".into()); items.len()]
        })
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
            b.lines.push((i as u64 + 1, Ok(start..b.text.len())));
        }
        b
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
