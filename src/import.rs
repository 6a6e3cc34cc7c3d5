//! Streaming import of JSON lines into the store.
//!
//! Owns the pipeline behind `shoal import`: read a bounded batch of lines,
//! parse and check them in parallel, verify signatures with batch
//! verification in parallel, place each message in its feed in line order,
//! and store the batch in one write transaction. Memory is bounded by the
//! batch size, never by the file. Imports `crypto`, `feed` and `store`.

use std::collections::HashMap;
use std::io::BufRead;

use rayon::prelude::*;

use crate::crypto::FeedId;
use crate::feed::{self, FeedState, KeyCache, SignedMsg, Unverified, ValidationError, Value};
use crate::store::{Outcome, Store, StoreError};

/// Lines per batch: one write transaction each.
pub const BATCH_LINES: usize = 4096;
/// Messages per batch-verification equation.
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
fn claimed_author(v: &Value) -> Option<FeedId> {
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
fn read_line_bounded(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
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

/// What the store made of a batch.
struct Stored {
    rejections: Vec<Rejection>,
    summary: Summary,
}

fn store_batch(store: &Store, b: Batch) -> Result<Stored, StoreError> {
    let mut out = Stored {
        rejections: b.rejections,
        summary: Summary::default(),
    };
    for (n, o) in b.fresh_lines.into_iter().zip(store.ingest(b.fresh)?) {
        tally(&mut out.summary, &mut out.rejections, n, o);
    }
    if !b.known.is_empty() {
        for (n, o) in b.known_lines.into_iter().zip(store.check_known(&b.known)?) {
            tally(&mut out.summary, &mut out.rejections, n, o);
        }
    }
    out.rejections.sort_by_key(|r| r.line);
    Ok(out)
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
            summary.imported += stored.summary.imported;
            summary.duplicates += stored.summary.duplicates;
            summary.rejected += stored.rejections.len() as u64;
            stored.rejections.into_iter().for_each(&mut on_reject);
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

/// The checking stage: parses, verifies and places messages.
struct Checker<'a> {
    store: &'a Store,
    hmac: Option<&'a [u8; 32]>,
    keys: KeyCache,
    states: HashMap<FeedId, Option<FeedState>>,
    /// Feeds with a rejected message in this import: author -> its line.
    broken: HashMap<FeedId, u64>,
}

impl<'a> Checker<'a> {
    fn new(store: &'a Store, hmac: Option<&'a [u8; 32]>) -> Self {
        Checker {
            store,
            hmac,
            keys: KeyCache::default(),
            states: HashMap::new(),
            broken: HashMap::new(),
        }
    }

    /// Checks a batch of lines; gives the emptied line batch back for reuse.
    fn check(&mut self, mut batch: LineBatch) -> Result<(Batch, LineBatch), ImportError> {
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
                Ok(u) => {
                    order.push((n, Ok(u.author())));
                    todo.push(u);
                }
                Err(e) => order.push((n, Err(e))),
            }
        }
        let mut chunks: Vec<Vec<Unverified>> = Vec::new();
        let mut it = todo.into_iter().peekable();
        while it.peek().is_some() {
            chunks.push(it.by_ref().take(VERIFY_CHUNK).collect());
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
                    }
                    b.rejections.push(Rejection { line: n, reason });
                    continue;
                }
            };
            let author = signed.author();
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
                    b.rejections.push(Rejection { line: n, reason });
                }
            }
        }
        Ok((b, batch))
    }
}

fn tally(summary: &mut Summary, rejections: &mut Vec<Rejection>, line: u64, o: Outcome) {
    match o {
        Outcome::Stored => summary.imported += 1,
        Outcome::Duplicate => summary.duplicates += 1,
        Outcome::Refused(e) => rejections.push(Rejection {
            line,
            reason: e.to_string(),
        }),
    }
}
