//! Full-text search over what the store lets us read: public posts and
//! replies, the names and descriptions of `about` messages, and the
//! private messages and group posts we opened.
//!
//! Owns the search index, a tantivy index in its own directory (the home
//! puts it in `search/`), and everything about it: which messages become
//! documents ([`readable`]), the bounds on what one message and one feed
//! may add, catching up with the store, queries, snippets with marked
//! words. The store stays the truth: the index keeps no text of its own
//! (only the postings), so a hit is read back from the store and one the
//! store no longer holds (pruned, or a group post taken back) is skipped.
//!
//! Keeping in step: the index follows the store's log by receive
//! sequence, and the store's [`OPENED`](crate::store::schema::OPENED) list
//! for group posts that a key arriving later opened; each commit records
//! how far it got and which store it follows (its random id), so an index
//! that is lost, unreadable, of another store or ahead of it is rebuilt,
//! and one behind it catches up, when opened. A running node calls
//! [`SearchIndex::catch_up`] after each store commit (see `node`).
//!
//! Synchronous; imports `crypto`, `feed`, `private`, `store` and
//! `social`; never networking, `ingest`, `node` or UI code.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::indexer::UserOperation;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TantivyDocument, TextFieldIndexing,
    TextOptions,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenStream as _, Tokenizer as _,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

use crate::crypto::{FeedId, MsgId};
use crate::feed::content::{self, Content};
use crate::feed::json::Value;
use crate::store::{Reader, Store, StoreError, StoredMsg, sort_time};

/// The most text of one message that is indexed (bytes, cut at a
/// character boundary): the rest of a long message is not searchable.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// Words longer than this (bytes) are not indexed, and a query naming one
/// is refused.
pub const MAX_WORD_BYTES: usize = 40;

/// The most text one feed gets indexed in all (bytes; about 25,000 posts
/// of a usual length, more than nearly any feed holds): past it, that
/// feed's further messages are not indexed (they stay in the store and in
/// every other view). What one feed adds to the index is so bounded by
/// this budget, whatever it posts, and a feed's whole history, however
/// fast it arrives, is searchable up to it.
pub const FEED_TEXT_BYTES: u64 = 8 * 1024 * 1024;

/// The longest query (bytes).
pub const MAX_QUERY_BYTES: usize = 1_000;

/// The most words in a query.
pub const MAX_QUERY_WORDS: usize = 32;

/// The most hits one search returns.
pub const MAX_LIMIT: usize = 500;

/// The hits a search returns when not told.
pub const DEFAULT_LIMIT: usize = 20;

/// The heap of the index writer (bytes), on one thread.
const WRITER_HEAP: usize = 32 * 1024 * 1024;

/// Messages read from the store per step of a catch-up.
const PAGE: usize = 2_000;

/// Messages a long catch-up reads between two commits.
const COMMIT_EVERY: usize = 100_000;

/// The longest snippet (characters).
const SNIPPET_CHARS: usize = 200;

/// Version of the documents' layout; a different one is rebuilt.
const LAYOUT: u32 = 3;

/// Everything that can go wrong in a search.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The query has no word to look for.
    #[error("the query is empty: give at least one word")]
    Empty,
    /// The query is longer than [`MAX_QUERY_BYTES`].
    #[error("the query is {0} bytes long; at most {MAX_QUERY_BYTES} are allowed")]
    TooLong(usize),
    /// The query has more than [`MAX_QUERY_WORDS`] words.
    #[error("the query has {0} words; at most {MAX_QUERY_WORDS} are allowed")]
    TooManyWords(usize),
    /// A word of the query is longer than [`MAX_WORD_BYTES`].
    #[error(
        "the word {0:?} is longer than {MAX_WORD_BYTES} bytes: words that long are not indexed"
    )]
    WordTooLong(String),
    /// Another holder in this process keeps the index open.
    #[error("the search index is in use")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index failed (I/O, a full disk).
    #[error("search index: {0}")]
    Index(String),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Index(e.to_string())
    }
}

/// Result type of the search.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;

/// Where a message was said: its audience.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A public message.
    Public,
    /// A private message (private box) we opened.
    Private,
    /// A post of a private group we read.
    Group,
}

impl Kind {
    fn code(self) -> u64 {
        match self {
            Kind::Public => 0,
            Kind::Private => 1,
            Kind::Group => 2,
        }
    }

    /// Reads `public`, `private` or `group`.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "public" => Some(Kind::Public),
            "private" => Some(Kind::Private),
            "group" => Some(Kind::Group),
            _ => None,
        }
    }

    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Public => "public",
            Kind::Private => "private",
            Kind::Group => "group",
        }
    }
}

/// What a search asks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    /// The words: every one must match (`a OR b`, `-a`, `"a phrase"` as
    /// tantivy's query language reads them; what it cannot read is looked
    /// for word by word).
    pub text: String,
    /// Only messages of this feed.
    pub from: Option<FeedId>,
    /// Only messages of this audience.
    pub kind: Option<Kind>,
    /// Only messages sorting at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// The most hits (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    pub limit: Option<usize>,
}

/// One message found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hit {
    /// Message id.
    pub key: String,
    /// Local receive sequence.
    pub rx: u64,
    /// Author's feed id.
    pub author: String,
    /// Author's current name, if known.
    pub name: Option<String>,
    /// The time it sorts by (claimed, never after arrival), ms.
    pub time: u64,
    /// `public`, `private` or `group`.
    pub kind: String,
    /// Content type: `post` or `about`.
    pub content_type: String,
    /// The thread root of a reply.
    pub root: Option<String>,
    /// How well it matches (BM25; higher is better).
    pub score: f32,
    /// The part of its text that matches best.
    pub snippet: String,
    /// The matching words in `snippet`: byte ranges.
    pub marks: Vec<(usize, usize)>,
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Results {
    /// Best first.
    pub hits: Vec<Hit>,
    /// The query was not valid query syntax, so its words were looked for
    /// as they are (every one must match).
    pub literal: bool,
}

/// How big the index is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Documents (messages) indexed.
    pub docs: u64,
    /// Bytes of the index's files.
    pub bytes: u64,
    /// The receive sequence indexed up to.
    pub indexed_rx: u64,
}

/// The readable text of a message, the way the index takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Readable {
    /// Its audience.
    pub kind: Kind,
    /// `post` or `about`.
    pub content_type: &'static str,
    /// Its text (a post's text; an about's name and description), whole.
    pub text: String,
    /// A reply's thread root.
    pub root: Option<MsgId>,
}

/// The readable text of a stored message, if it has any we may read: a
/// post or an about, public or opened (`opened`: the store's plaintext of
/// a box).
pub fn readable(value: &Value, opened: Option<&Value>) -> Option<Readable> {
    let raw = value.get("content").unwrap_or(&Value::Null);
    let (kind, content) = match raw.as_str() {
        Some(s) => {
            let kind = if crate::private::groups::wire::is_group_content(s) {
                Kind::Group
            } else {
                Kind::Private
            };
            (kind, opened?)
        }
        None => (Kind::Public, raw),
    };
    match content::parse(content) {
        Content::Post(p) => Some(Readable {
            kind,
            content_type: "post",
            text: p.text.to_string_lossy(),
            root: p.root,
        }),
        Content::About(a) if a.name.is_some() || a.description.is_some() => {
            let text = [a.name, a.description]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n");
            Some(Readable {
                kind,
                content_type: "about",
                text,
                root: None,
            })
        }
        _ => None,
    }
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The name the text's analyzer is registered under.
const TOKENIZER: &str = "shoal";

/// How text is cut into words: at every character that is not a letter or
/// a digit, words longer than [`MAX_WORD_BYTES`] dropped, lower-cased.
fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES + 1))
        .filter(LowerCaser)
        .build()
}

/// The fields of a document. The message's id and thread root are not
/// among them: they are read back from the store by receive sequence, and
/// a unique term per message would make every segment's term dictionary
/// (and so indexing) markedly costlier.
struct Fields {
    rx: Field,
    author: Field,
    kind: Field,
    time: Field,
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        rx: b.add_u64_field("rx", INDEXED | FAST),
        author: b.add_text_field("author", STRING),
        kind: b.add_u64_field("kind", INDEXED),
        time: b.add_u64_field("time", FAST),
        text: b.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        ),
    };
    (b.build(), f)
}

/// What a commit of the index records (its payload), and what the
/// indexer carries between catch-ups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Progress {
    /// [`LAYOUT`] of the documents.
    layout: u32,
    /// The id of the store followed.
    store: u64,
    /// Receive sequences up to this one are indexed.
    rx: u64,
    /// Positions of the store's opened list up to this one are indexed.
    opened: u64,
    /// Bytes indexed per feed.
    spent: HashMap<String, u64>,
}

struct Writing {
    writer: IndexWriter,
    progress: Progress,
    /// Operations not yet handed to the writer: handed over a page at a
    /// time, which costs far less than one hand-over each.
    ops: Vec<UserOperation>,
    /// Documents were added or deleted since the last commit.
    dirty: bool,
    /// Messages read since the last commit.
    uncommitted: usize,
}

/// The search index of one store.
pub struct SearchIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    writing: Mutex<Writing>,
    feed_budget: u64,
}

impl SearchIndex {
    /// Opens the index in `dir` (creating it) for `store`, rebuilding it
    /// when it is unreadable, of another layout or store, or ahead of the
    /// store. It is not caught up here: call [`SearchIndex::catch_up`].
    pub fn open(dir: &Path, store: &Store) -> Result<SearchIndex> {
        Self::open_with_budget(dir, store, FEED_TEXT_BYTES)
    }

    /// [`SearchIndex::open`] with another per-feed budget (bytes).
    pub fn open_with_budget(dir: &Path, store: &Store, feed_budget: u64) -> Result<SearchIndex> {
        let store_id = store.store_id()?;
        let last_rx = store.last_rx()?;
        match Self::try_open(dir, feed_budget) {
            Ok(ix) => {
                let fits = {
                    let p = &ix.lock().progress;
                    p.layout == LAYOUT && p.store == store_id && p.rx <= last_rx
                };
                if fits {
                    return Ok(ix);
                }
                tracing::info!(dir = %dir.display(), "search index is of another store or layout: rebuilding it");
            }
            // Another holder (in this process) has it: never wiped.
            Err(SearchError::Busy) => return Err(SearchError::Busy),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "search index unreadable: rebuilding it");
            }
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| SearchError::Index(e.to_string()))?;
        }
        let ix = Self::try_open(dir, feed_budget)?;
        ix.lock().progress = Progress {
            layout: LAYOUT,
            store: store_id,
            ..Progress::default()
        };
        Ok(ix)
    }

    fn try_open(dir: &Path, feed_budget: u64) -> Result<SearchIndex> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SearchError::Index(format!("cannot make {}: {e}", dir.display())))?;
        let (schema, fields) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| SearchError::Index(e.to_string()))?;
        let index = Index::open_or_create(mmap, schema.clone())?;
        index.tokenizers().register(TOKENIZER, analyzer());
        if index.schema() != schema {
            return Err(SearchError::Index("the index has another schema".into()));
        }
        let progress = match index.load_metas()?.payload {
            Some(p) => serde_json::from_str(&p)
                .map_err(|e| SearchError::Index(format!("bad progress record: {e}")))?,
            None => Progress::default(),
        };
        let writer = match index.writer_with_num_threads(1, WRITER_HEAP) {
            Ok(w) => w,
            Err(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _,
            )) => {
                return Err(SearchError::Busy);
            }
            Err(e) => return Err(e.into()),
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            dir: dir.to_owned(),
            index,
            reader,
            fields,
            writing: Mutex::new(Writing {
                writer,
                progress,
                ops: Vec::new(),
                dirty: false,
                uncommitted: 0,
            }),
            feed_budget,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writing> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Indexes what the store holds that the index does not yet, and
    /// commits: the messages after the last one indexed, and the group
    /// posts opened since. Answers how many documents it added.
    pub fn catch_up(&self, store: &Store) -> Result<u64> {
        self.step(store, true)
    }

    /// Indexes what the store holds that the index does not yet, without
    /// committing (but every [`COMMIT_EVERY`] messages): for a caller
    /// following a store being written (an import), which commits with
    /// [`SearchIndex::catch_up`] when the writing ends.
    pub fn index_new(&self, store: &Store) -> Result<u64> {
        self.step(store, false)
    }

    fn step(&self, store: &Store, commit: bool) -> Result<u64> {
        let mut w = self.lock();
        let mut added = 0u64;
        loop {
            let r = store.reader()?;
            let opened = r.opened_after(w.progress.opened, PAGE)?;
            let log = r.log_after(w.progress.rx, PAGE)?;
            if opened.is_empty() && log.is_empty() {
                break;
            }
            w.dirty = true;
            for (pos, rx) in opened {
                w.progress.opened = pos;
                if rx > w.progress.rx {
                    // Met in the log below, opened already.
                    continue;
                }
                if let Some(m) = r.at(rx)? {
                    w.ops.push(UserOperation::Delete(Term::from_field_u64(
                        self.fields.rx,
                        rx,
                    )));
                    added += u64::from(self.add(&mut w, &r, &m)?);
                }
            }
            w.uncommitted += log.len();
            for m in log {
                w.progress.rx = m.rx;
                added += u64::from(self.add(&mut w, &r, &m)?);
            }
            let ops = std::mem::take(&mut w.ops);
            if !ops.is_empty() {
                w.writer.run(ops)?;
            }
            // A long catch-up (a rebuild) is committed as it goes: searches
            // see it grow, and a stop loses little of it.
            if w.uncommitted >= COMMIT_EVERY {
                self.commit(&mut w)?;
            }
        }
        if commit && w.dirty {
            self.commit(&mut w)?;
        }
        Ok(added)
    }

    /// Adds the document of one message, within its feed's budget:
    /// whether it was added.
    fn add(&self, w: &mut Writing, r: &Reader, m: &StoredMsg) -> Result<bool> {
        let value = m.value()?;
        let raw = value.get("content").unwrap_or(&Value::Null);
        let opened = match raw.as_str() {
            Some(_) => match r.private_content(&m.key)? {
                Some(v) => Some(v),
                None => return Ok(false),
            },
            None => None,
        };
        let Some(doc) = readable(&value, opened.as_ref()) else {
            return Ok(false);
        };
        let Some(author) = value.get("author").and_then(Value::as_str) else {
            return Ok(false);
        };
        let text = cap(&doc.text, MAX_TEXT_BYTES);
        let spent = w.progress.spent.entry(author.to_owned()).or_default();
        if *spent + text.len() as u64 > self.feed_budget {
            return Ok(false);
        }
        *spent += text.len() as u64;
        let claimed = value
            .get("timestamp")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite());
        let f = &self.fields;
        let mut d = TantivyDocument::default();
        d.add_u64(f.rx, m.rx);
        d.add_text(f.author, author);
        d.add_u64(f.kind, doc.kind.code());
        d.add_u64(f.time, sort_time(claimed, m.received));
        d.add_text(f.text, text);
        w.ops.push(UserOperation::Add(d));
        Ok(true)
    }

    fn commit(&self, w: &mut Writing) -> Result<()> {
        w.dirty = false;
        w.uncommitted = 0;
        let payload =
            serde_json::to_string(&w.progress).map_err(|e| SearchError::Index(e.to_string()))?;
        let mut prepared = w.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Removes the documents of these messages (by receive sequence) and
    /// commits: for whoever deletes messages from the store.
    pub fn remove(&self, rxs: &[u64]) -> Result<()> {
        let mut w = self.lock();
        for rx in rxs {
            w.writer
                .delete_term(Term::from_field_u64(self.fields.rx, *rx));
        }
        self.commit(&mut w)
    }

    /// How big the index is now.
    pub fn stats(&self) -> Result<IndexStats> {
        let searcher = self.reader.searcher();
        Ok(IndexStats {
            docs: searcher.num_docs(),
            bytes: dir_bytes(&self.dir),
            indexed_rx: self.lock().progress.rx,
        })
    }

    /// Searches: the best hits first, each read back from the store (a
    /// message the store no longer holds, or whose author we block, is
    /// left out).
    pub fn search(&self, store: &Store, q: &SearchQuery) -> Result<Results> {
        let (text_query, literal) = self.parse(&q.text)?;
        let mut parts: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query)];
        let f = &self.fields;
        if let Some(from) = &q.from {
            parts.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.author, &from.to_string()),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(kind) = q.kind {
            parts.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.kind, kind.code()),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(since) = q.since {
            parts.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    std::ops::Bound::Included(Term::from_field_u64(f.time, since)),
                    std::ops::Bound::Unbounded,
                )),
            ));
        }
        let query = BooleanQuery::new(parts);
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let searcher = self.reader.searcher();
        // A few more than asked, for those the store no longer holds.
        let top = searcher.search(&query, &TopDocs::with_limit(limit + 16))?;
        let mut snippets = SnippetGenerator::create(&searcher, &query, f.text)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let mut terms = std::collections::HashSet::new();
        query.query_terms(&mut |t, _| {
            if t.field() == f.text
                && let Some(s) = t.value().as_str()
            {
                terms.insert(s.to_owned());
            }
        });
        let r = store.reader()?;
        let mut view = crate::social::View::new(&r)?;
        let mut hits = Vec::new();
        for (score, addr) in top {
            let seg = searcher.segment_reader(addr.segment_ord);
            let Some(rx) = seg.fast_fields().u64("rx")?.first(addr.doc_id) else {
                continue;
            };
            let Some(m) = r.at(rx)? else { continue };
            let value = m.value()?;
            let Some(author) = crate::store::StoredMsg::author_in(&value) else {
                continue;
            };
            if view.blocks(&author) {
                continue;
            }
            let opened = r.private_content(&m.key)?;
            let Some(doc) = readable(&value, opened.as_ref()) else {
                continue;
            };
            let (snippet, marks) = snippet(&snippets, &terms, cap(&doc.text, MAX_TEXT_BYTES));
            let claimed = value
                .get("timestamp")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite());
            hits.push(Hit {
                key: m.key.to_string(),
                rx,
                author: author.to_string(),
                name: view.name(&author)?,
                time: sort_time(claimed, m.received),
                kind: doc.kind.as_str().to_owned(),
                content_type: doc.content_type.to_owned(),
                root: doc.root.map(|r| r.to_string()),
                score,
                snippet,
                marks,
            });
        }
        // Best score first; among equal scores, the newest.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.time.cmp(&a.time)));
        hits.truncate(limit);
        Ok(Results { hits, literal })
    }

    /// The query over the text, after its bounds are checked: parsed, or
    /// word by word when it does not parse (then `true`).
    fn parse(&self, text: &str) -> Result<(Box<dyn Query>, bool)> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(SearchError::TooLong(text.len()));
        }
        let mut words = Vec::new();
        let mut tok = SimpleTokenizer::default();
        let mut stream = tok.token_stream(text);
        while let Some(t) = stream.next() {
            if t.text.len() > MAX_WORD_BYTES {
                return Err(SearchError::WordTooLong(
                    cap(&t.text, MAX_WORD_BYTES).to_owned() + "…",
                ));
            }
            words.push(t.text.to_lowercase());
        }
        if words.is_empty() {
            return Err(SearchError::Empty);
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err(SearchError::TooManyWords(words.len()));
        }
        let mut parser = QueryParser::for_index(&self.index, vec![self.fields.text]);
        parser.set_conjunction_by_default();
        match parser.parse_query(text) {
            Ok(q) if only_text(&*q, self.fields.text) => Ok((q, false)),
            _ => {
                let terms: Vec<(Occur, Box<dyn Query>)> = words
                    .iter()
                    .map(|w| {
                        let q: Box<dyn Query> = Box::new(TermQuery::new(
                            Term::from_field_text(self.fields.text, w),
                            IndexRecordOption::WithFreqs,
                        ));
                        (Occur::Must, q)
                    })
                    .collect();
                Ok((Box::new(BooleanQuery::new(terms)), true))
            }
        }
    }
}

/// The part of `text` to show and its matching words (byte ranges in
/// it): a short text whole, with every word of `terms` marked; of a long
/// one, the part tantivy finds best (or its start when no word shows).
fn snippet(
    generator: &SnippetGenerator,
    terms: &std::collections::HashSet<String>,
    text: &str,
) -> (String, Vec<(usize, usize)>) {
    if text.chars().count() <= SNIPPET_CHARS {
        let mut marks = Vec::new();
        let mut a = analyzer();
        let mut stream = a.token_stream(text);
        while let Some(t) = stream.next() {
            if terms.contains(&t.text) {
                marks.push((t.offset_from, t.offset_to));
            }
        }
        return (text.to_owned(), marks);
    }
    let s = generator.snippet(text);
    if s.fragment().is_empty() {
        let start: String = text.chars().take(SNIPPET_CHARS).collect();
        return (start, Vec::new());
    }
    let marks = s.highlighted().iter().map(|h| (h.start, h.end)).collect();
    (s.fragment().to_owned(), marks)
}

/// Whether every term of `q` is of the text field (a query naming the
/// index's other fields, `rx:3`, is read literally instead).
fn only_text(q: &dyn Query, text: Field) -> bool {
    let mut only = true;
    let mut any = false;
    q.query_terms(&mut |t, _| {
        any = true;
        only &= t.field() == text && t.value().as_str().is_some_and(|s| !s.is_empty());
    });
    only && any
}

/// The bytes of the files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
