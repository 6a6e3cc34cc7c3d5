//! Retention: what of the feeds far from us is kept, and pruning the rest.
//!
//! A pruned feed is a feed held from some sequence on, the same held range
//! (the [`HELD`] table) a feed fetched newest first has; the [`PRUNED`]
//! table marks it held so by choice, so that its older history is never
//! fetched again. Owns the plan (which feeds lose which messages, read in
//! one snapshot), the pruning writes (bottom-up, at most
//! [`PRUNE_CHUNK`] messages a transaction, each leaving every feed held
//! from one sequence to its latest, so a kill at any moment leaves a
//! consistent store), and the storage report. Imports `crypto`, `feed`
//! and the store's own tables; nothing else.
//!
//! What is kept: every message of the feeds within `keep_hops` follows
//! (ours and our other devices' always), each feed's latest message, and
//! every message we opened (a private message to us, a group message we
//! read) with everything above it in its feed. What a pruned message set
//! stays set: a follow, a block, a name, a device link, a like (only the
//! message and its listings go), so pruning never changes who is
//! replicated or how anyone is named.

use std::collections::HashMap;

use redb::{
    ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _, TableHandle as _,
};

use super::index::sort_time;
use super::schema::*;
use super::{Result, StoreError, StoredMsg};
use crate::crypto::{FeedId, MsgId};
use crate::feed::Value;
use crate::feed::content::{self, Content, Link};

/// Most messages one pruning transaction deletes.
pub const PRUNE_CHUNK: u64 = 5_000;

/// Follows looked along for the hop distances of a report or a plan.
const REPORT_HOPS: u8 = 6;

/// What the person keeps (the `[retention]` section of the config). None
/// of the limits set keeps everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Feeds within this many follows are never pruned (0: ours only).
    pub keep_hops: u8,
    /// Messages of the other feeds older than this are pruned (their age
    /// is their claimed time capped by their receive time, as the timeline
    /// sorts them).
    pub max_age_ms: Option<u64>,
    /// A feed beyond `keep_hops` keeps at most this many bytes of
    /// messages, newest first.
    pub max_feed_bytes: Option<u64>,
}

impl Retention {
    /// Whether these rules prune anything at all.
    pub fn prunes(&self) -> bool {
        self.max_age_ms.is_some() || self.max_feed_bytes.is_some()
    }
}

/// What a plan takes of one feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedPrune {
    /// The feed.
    pub feed: FeedId,
    /// Its distance in follows (`None`: further than the report looks, or
    /// not followed by anyone we replicate).
    pub hops: Option<u8>,
    /// The lowest sequence held now.
    pub from: u64,
    /// The lowest sequence kept: everything from `from` below it goes.
    pub keep_from: u64,
    /// Messages that go.
    pub messages: u64,
    /// Their bytes in the log.
    pub bytes: u64,
}

/// What pruning under some rules takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Feeds that lose messages, largest loss first.
    pub feeds: Vec<FeedPrune>,
    /// Messages that go, in all.
    pub messages: u64,
    /// Their bytes in the log.
    pub bytes: u64,
}

/// What a prune did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// `(feed, lowest sequence now held)` of every feed pruned.
    pub feeds: Vec<(FeedId, u64)>,
    /// Messages deleted.
    pub messages: u64,
    /// Their bytes in the log.
    pub bytes: u64,
    /// Their receive sequences (for indexes kept beside the store).
    pub rxs: Vec<u64>,
}

/// Bytes of the store by kind, by distance and by feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageReport {
    /// The database file.
    pub file_bytes: u64,
    /// Messages: the log and the tables placing them in their feeds.
    pub message_bytes: u64,
    /// Every other table: the content indexes, groups, peers.
    pub index_bytes: u64,
    /// Pages the database holds but no table uses (what `compact` gives
    /// back, as far as the file can shrink).
    pub free_bytes: u64,
    /// Messages held in all.
    pub messages: u64,
    /// `(hops, feeds, messages, log bytes)`, nearest first; `None` last:
    /// further than [`REPORT_HOPS`] or followed by nobody replicated.
    pub by_hops: Vec<(Option<u8>, u64, u64, u64)>,
    /// The largest feeds: `(feed, hops, messages, log bytes)`.
    pub largest: Vec<(FeedId, Option<u8>, u64, u64)>,
}

/// The tables placing messages in their feeds: the rest are indexes.
const MESSAGE_TABLES: [&str; 6] = ["log", "ids8", "ids_more", "feeds", "latest", "held"];

impl super::Store {
    /// The feeds never pruned: ours, our other devices', and those within
    /// `keep_hops` follows of them.
    fn kept_feeds(&self, me: &FeedId, keep_hops: u8) -> Result<HashMap<FeedId, u8>> {
        let mut kept = self.replication_set(me, keep_hops)?;
        for d in self.devices(me)?.person {
            kept.entry(d).or_insert(0);
            for (f, h) in self.replication_set(&d, keep_hops)? {
                let e = kept.entry(f).or_insert(h);
                *e = (*e).min(h);
            }
        }
        Ok(kept)
    }

    /// What pruning under `rules` would take now, read in one snapshot:
    /// `shoal prune --dry-run` shows it, [`Store::prune`] takes it.
    pub fn prune_plan(&self, me: &FeedId, rules: &Retention, now_ms: f64) -> Result<PrunePlan> {
        let mut plan = PrunePlan::default();
        if !rules.prunes() {
            return Ok(plan);
        }
        let kept = self.kept_feeds(me, rules.keep_hops)?;
        let hops = self.replication_set(me, REPORT_HOPS)?;
        let cutoff = rules
            .max_age_ms
            .map(|age| (now_ms.max(0.0) as u64).saturating_sub(age));
        let txn = self.db().begin_read()?;
        let latest = txn.open_table(LATEST)?;
        let held = txn.open_table(HELD)?;
        let feeds = txn.open_table(FEEDS)?;
        let log = txn.open_table(LOG)?;
        let private = txn.open_table(PRIVATE)?;
        let opened = txn.open_table(GROUP_OPENED)?;
        for e in latest.iter()? {
            let (k, v) = e?;
            let feed = FeedId(*k.value());
            if kept.contains_key(&feed) {
                continue;
            }
            let top = super::decode_latest(v.value()).sequence;
            let from = held
                .get(&feed.0)?
                .map_or(1, |v| super::held::decode(v.value()).0);
            // Downwards from the latest: the highest message that breaks a
            // rule, and everything below it, goes.
            let mut floor = None;
            let mut kept_bytes = 0u64;
            let lo = feed_key(&feed.0, from);
            let hi = feed_key(&feed.0, top);
            for e in feeds.range::<&[u8; 40]>(&lo..=&hi)?.rev() {
                let (k, rx) = e?;
                let seq = u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
                let rx = rx.value();
                let rec = log.get(rx)?.ok_or(StoreError::Corrupt(
                    "feed index points at a missing log entry",
                ))?;
                let rec = rec.value();
                kept_bytes += rec.len() as u64;
                if seq == top {
                    continue;
                }
                let too_big = rules.max_feed_bytes.is_some_and(|max| kept_bytes > max);
                let too_old = match cutoff {
                    Some(cutoff) => {
                        let m = StoredMsg::decode(rx, rec)?;
                        let claimed = m.value()?.get("timestamp").and_then(Value::as_f64);
                        sort_time(claimed, m.received) < cutoff
                    }
                    None => false,
                };
                if too_big || too_old {
                    floor = Some(seq);
                    break;
                }
            }
            let Some(mut floor) = floor else { continue };
            // Upwards from the lowest held: what goes, up to the first
            // message we opened (it and all above it stay).
            let (mut messages, mut bytes) = (0u64, 0u64);
            let hi = feed_key(&feed.0, floor);
            for e in feeds.range::<&[u8; 40]>(&lo..=&hi)? {
                let (k, rx) = e?;
                let seq = u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
                let rec = log.get(rx.value())?.ok_or(StoreError::Corrupt(
                    "feed index points at a missing log entry",
                ))?;
                let id: [u8; 32] = rec.value()[..32].try_into().expect("32 bytes");
                if private.get(&id)?.is_some() || opened.get(&id)?.is_some() {
                    floor = seq - 1;
                    break;
                }
                messages += 1;
                bytes += rec.value().len() as u64;
            }
            if messages == 0 || floor < from {
                continue;
            }
            plan.messages += messages;
            plan.bytes += bytes;
            plan.feeds.push(FeedPrune {
                feed,
                hops: hops.get(&feed).copied(),
                from,
                keep_from: floor + 1,
                messages,
                bytes,
            });
        }
        plan.feeds
            .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.feed.0.cmp(&b.feed.0)));
        Ok(plan)
    }

    /// Prunes what `plan` names, bottom-up, at most [`PRUNE_CHUNK`]
    /// messages a write transaction. Each feed is checked again as it is
    /// pruned: never its latest message, never a message we opened or any
    /// above it, never below what it holds now. After each transaction the
    /// feed is held from the lowest message it kept, and marked pruned so
    /// its older history is not fetched again.
    pub fn prune(&self, plan: &PrunePlan) -> Result<Pruned> {
        let mut done = Pruned::default();
        let mut work = plan.feeds.iter().map(|f| (f.feed, f.keep_from)).peekable();
        while work.peek().is_some() {
            let txn = self.db().begin_write()?;
            let mut t = PruneTables::open(&txn)?;
            let mut budget = PRUNE_CHUNK;
            while budget > 0 {
                let Some((feed, keep_from)) = work.peek().copied() else {
                    break;
                };
                let (n, bytes, now_from, finished) =
                    t.prune_feed(&feed, keep_from, budget, &mut done.rxs)?;
                budget = budget.saturating_sub(n.max(1));
                done.messages += n;
                done.bytes += bytes;
                if n > 0 {
                    match done.feeds.last_mut() {
                        Some((f, from)) if *f == feed => *from = now_from,
                        _ => done.feeds.push((feed, now_from)),
                    }
                }
                if finished {
                    work.next();
                }
            }
            drop(t);
            txn.commit()?;
        }
        Ok(done)
    }

    /// What `shoal prune` and a running node's pruning do: feeds that
    /// came within `keep_hops` are no longer held pruned (their history
    /// is fetched again), then what `rules` take now goes (unless
    /// `dry_run`: then it is only planned).
    pub fn apply_retention(
        &self,
        me: &FeedId,
        rules: &Retention,
        dry_run: bool,
    ) -> Result<(PrunePlan, Option<Pruned>)> {
        if !dry_run {
            self.unprune_kept(me, rules.keep_hops)?;
        }
        let plan = self.prune_plan(me, rules, super::now_ms())?;
        if dry_run {
            return Ok((plan, None));
        }
        let done = self.prune(&plan)?;
        Ok((plan, Some(done)))
    }

    /// Feeds held from above sequence 1 by pruning: their older history
    /// is not fetched again.
    pub fn pruned_feeds(&self) -> Result<Vec<(FeedId, u64)>> {
        let txn = self.db().begin_read()?;
        let pruned = match txn.open_table(PRUNED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for e in pruned.iter()? {
            let (k, v) = e?;
            out.push((FeedId(*k.value()), v.value()));
        }
        Ok(out)
    }

    /// Forgets that the feeds now within `keep_hops` were pruned: their
    /// older history is fetched again, as for any partial feed.
    pub fn unprune_kept(&self, me: &FeedId, keep_hops: u8) -> Result<Vec<FeedId>> {
        let pruned = self.pruned_feeds()?;
        if pruned.is_empty() {
            return Ok(Vec::new());
        }
        let kept = self.kept_feeds(me, keep_hops)?;
        let back: Vec<FeedId> = pruned
            .into_iter()
            .map(|(f, _)| f)
            .filter(|f| kept.contains_key(f))
            .collect();
        if !back.is_empty() {
            let txn = self.db().begin_write()?;
            {
                let mut t = txn.open_table(PRUNED)?;
                for f in &back {
                    t.remove(&f.0)?;
                }
            }
            txn.commit()?;
        }
        Ok(back)
    }

    /// Bytes of the store by kind, by distance from `me` and by feed
    /// (the `largest` feeds), read in one snapshot.
    pub fn storage(&self, me: &FeedId, largest: usize) -> Result<StorageReport> {
        let hops = self.replication_set(me, REPORT_HOPS)?;
        let mut report = StorageReport::default();
        {
            let txn = self.db().begin_write()?;
            let stats = txn.stats()?;
            report.file_bytes = stats.allocated_pages() * stats.page_size() as u64;
            txn.abort()?;
        }
        let txn = self.db().begin_read()?;
        let mut used = 0u64;
        for handle in txn.list_tables()? {
            let table = txn.open_untyped_table(handle.clone())?;
            let s = table.stats()?;
            let bytes = s.stored_bytes() + s.metadata_bytes() + s.fragmented_bytes();
            used += bytes;
            if MESSAGE_TABLES.contains(&handle.name()) {
                report.message_bytes += bytes;
            } else {
                report.index_bytes += bytes;
            }
        }
        report.free_bytes = report.file_bytes.saturating_sub(used);
        // The log in its order (sequential pages), each message's author
        // read from its head.
        let log = txn.open_table(LOG)?;
        let mut sizes: HashMap<FeedId, (u64, u64)> = HashMap::new();
        for e in log.iter()? {
            let (rx, rec) = e?;
            let rec = rec.value();
            let author = match author_of(rec) {
                Some(a) => a,
                None => {
                    let m = StoredMsg::decode(rx.value(), rec)?;
                    let v = m.value()?;
                    match StoredMsg::author_in(&v) {
                        Some(a) => a,
                        None => continue,
                    }
                }
            };
            let e = sizes.entry(author).or_default();
            e.0 += 1;
            e.1 += rec.len() as u64;
        }
        let mut per_feed: Vec<(FeedId, u64, u64)> =
            sizes.into_iter().map(|(f, (n, b))| (f, n, b)).collect();
        let mut by_hops: HashMap<Option<u8>, (u64, u64, u64)> = HashMap::new();
        for (f, n, b) in &per_feed {
            report.messages += n;
            let e = by_hops.entry(hops.get(f).copied()).or_default();
            e.0 += 1;
            e.1 += n;
            e.2 += b;
        }
        report.by_hops = by_hops
            .into_iter()
            .map(|(h, (f, n, b))| (h, f, n, b))
            .collect();
        report
            .by_hops
            .sort_by_key(|(h, ..)| h.map_or(u16::MAX, u16::from));
        per_feed.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.0.cmp(&b.0.0)));
        report.largest = per_feed
            .into_iter()
            .take(largest)
            .map(|(f, n, b)| (f, hops.get(&f).copied(), n, b))
            .collect();
        Ok(report)
    }
}

/// The author of a log record, read from the head of its JSON (classic
/// messages name it within their first fields); `None` when it is not
/// found there.
fn author_of(rec: &[u8]) -> Option<FeedId> {
    const KEY: &[u8] = b"\"author\":\"";
    let head = &rec[40.min(rec.len())..rec.len().min(40 + 256)];
    let at = head.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &head[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    FeedId::parse(std::str::from_utf8(&rest[..end]).ok()?)
}

/// The tables a pruning transaction writes.
struct PruneTables<'t> {
    log: redb::Table<'t, u64, &'static [u8]>,
    ids: super::ids::IdsMut<'t>,
    feeds: redb::Table<'t, &'static [u8; 40], u64>,
    latest: redb::Table<'t, &'static [u8; 32], &'static [u8; 40]>,
    held: redb::Table<'t, &'static [u8; 32], &'static [u8; 40]>,
    pruned: redb::Table<'t, &'static [u8; 32], u64>,
    forks: redb::Table<'t, &'static [u8; 40], &'static [u8]>,
    links: redb::Table<'t, &'static [u8; 42], &'static [u8; 33]>,
    posts: redb::Table<'t, &'static [u8; 48], u8>,
    revisions: redb::Table<'t, &'static [u8; 72], u8>,
    unread: redb::Table<'t, u64, u8>,
    private: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    group_opened: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    group_pending: redb::Table<'t, &'static [u8; 40], u64>,
}

impl<'t> PruneTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        let mut meta = txn.open_table(META)?;
        let log = txn.open_table(LOG)?;
        // Receive sequences are never given twice, also when the highest
        // ones are pruned (the search index and unread marks name them).
        let next = log.last()?.map_or(1, |(k, _)| k.value() + 1);
        if meta.get(NEXT_RX)?.map_or(0, |v| v.value()) < next {
            meta.insert(NEXT_RX, next)?;
        }
        Ok(PruneTables {
            log,
            ids: super::ids::IdsMut::open(txn)?,
            feeds: txn.open_table(FEEDS)?,
            latest: txn.open_table(LATEST)?,
            held: txn.open_table(HELD)?,
            pruned: txn.open_table(PRUNED)?,
            forks: txn.open_table(FORKS)?,
            links: txn.open_table(LINKS)?,
            posts: txn.open_table(POSTS)?,
            revisions: txn.open_table(REVISIONS)?,
            unread: txn.open_table(UNREAD)?,
            private: txn.open_table(PRIVATE)?,
            group_opened: txn.open_table(GROUP_OPENED)?,
            group_pending: txn.open_table(GROUP_PENDING)?,
        })
    }

    /// Deletes at most `budget` messages of `feed` from the lowest held
    /// up, stopping below `keep_from`, its latest, or a message we opened.
    /// Returns `(deleted, bytes, lowest now held, whether the feed is
    /// done)`.
    fn prune_feed(
        &mut self,
        feed: &FeedId,
        keep_from: u64,
        budget: u64,
        rxs: &mut Vec<u64>,
    ) -> Result<(u64, u64, u64, bool)> {
        let Some(top) = self
            .latest
            .get(&feed.0)?
            .map(|v| super::decode_latest(v.value()).sequence)
        else {
            return Ok((0, 0, 1, true));
        };
        let from = self
            .held
            .get(&feed.0)?
            .map_or(1, |v| super::held::decode(v.value()).0);
        let stop = keep_from.min(top);
        let mut seq = from;
        let (mut n, mut bytes) = (0u64, 0u64);
        let mut last_id: Option<MsgId> = None;
        while seq < stop && n < budget {
            let key = feed_key(&feed.0, seq);
            let Some(rx) = self.feeds.get(&key)?.map(|v| v.value()) else {
                break;
            };
            let m = {
                let rec = self.log.get(rx)?.ok_or(StoreError::Corrupt(
                    "feed index points at a missing log entry",
                ))?;
                StoredMsg::decode(rx, rec.value())?
            };
            if self.private.get(&m.key.0)?.is_some() || self.group_opened.get(&m.key.0)?.is_some() {
                break;
            }
            self.unindex(feed, seq, &m)?;
            rxs.push(m.rx);
            bytes += 40 + m.json.len() as u64;
            n += 1;
            last_id = Some(m.key);
            seq += 1;
        }
        if let Some(previous) = last_id {
            let mut v = [0u8; 40];
            v[..8].copy_from_slice(&seq.to_be_bytes());
            v[8..].copy_from_slice(&previous.0);
            self.held.insert(&feed.0, &v)?;
            self.pruned.insert(&feed.0, seq)?;
        }
        let finished = n < budget || seq >= stop;
        Ok((n, bytes, seq, finished))
    }

    /// Deletes one message and its listings (not what it set: see the
    /// module's doc).
    fn unindex(&mut self, feed: &FeedId, seq: u64, m: &StoredMsg) -> Result<()> {
        let value = m.value()?;
        let time = sort_time(value.get("timestamp").and_then(Value::as_f64), m.received);
        let content = value.get("content").unwrap_or(&Value::Null);
        let link = |target: &Link, kind: u8| link_key(&target_key(target), kind, m.rx);
        match content::parse(content) {
            // A revision is listed as one, nothing else (as `index` does).
            Content::Post(p) if p.revision_root.is_some() => {
                if let Some(root) = p.revision_root {
                    self.revisions
                        .remove(&revision_key(&root.0, &feed.0, m.rx))?;
                }
            }
            Content::Post(p) => {
                self.posts.remove(&post_key(&feed.0, time, m.rx))?;
                if let Some(root) = p.root {
                    self.links.remove(&link(&Link::Msg(root), LINK_ROOT))?;
                }
                for b in &p.branch {
                    self.links.remove(&link(&Link::Msg(*b), LINK_BRANCH))?;
                }
                for mention in &p.mentions {
                    self.links.remove(&link(&mention.link, LINK_MENTION))?;
                }
            }
            Content::Vote(v) => {
                self.links.remove(&link(&v.link, LINK_VOTE))?;
            }
            Content::About(a) => {
                self.links.remove(&link(&a.about, LINK_ABOUT))?;
            }
            Content::Invalid { kind, .. } if kind == "post" => {
                self.posts.remove(&post_key(&feed.0, time, m.rx))?;
            }
            _ => {}
        }
        let key = feed_key(&feed.0, seq);
        self.group_pending.remove(&key)?;
        self.forks.remove(&key)?;
        self.unread.remove(m.rx)?;
        self.feeds.remove(&key)?;
        self.ids.remove(&m.key, m.rx)?;
        self.log.remove(m.rx)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::feed::{self, RangeAnchor, VerifiedMsg};
    use crate::store::Store;
    use crate::store::tests::feed_of;

    const DAY: f64 = 86_400_000.0;

    fn json(s: &str) -> Value {
        feed::json::parse(s.as_bytes()).unwrap()
    }

    /// `old` posts 60 days old, then `young` posts a day old.
    fn aged_posts(kp: &Keypair, old: usize, young: usize) -> Vec<VerifiedMsg> {
        // Whole days: the same feed is built again the same within a test.
        let now = (super::super::now_ms() / DAY).floor() * DAY;
        let items: Vec<(f64, Value)> = (0..old + young)
            .map(|i| {
                let t = if i < old { now - 60.0 * DAY } else { now - DAY };
                (
                    t + i as f64,
                    json(&format!(r#"{{"type":"post","text":"m{i}"}}"#)),
                )
            })
            .collect();
        feed_of(kp, &items)
    }

    fn follow(kp: &Keypair, whom: &FeedId) -> Vec<VerifiedMsg> {
        let c = json(&format!(
            r#"{{"type":"contact","contact":"{whom}","following":true}}"#
        ));
        feed_of(kp, &[(super::super::now_ms() - DAY, c)])
    }

    fn month() -> Retention {
        Retention {
            keep_hops: 1,
            max_age_ms: Some(30 * DAY as u64),
            max_feed_bytes: None,
        }
    }

    struct World {
        _dir: tempfile::TempDir,
        store: Store,
        me: Keypair,
        friend: Keypair,
        stranger: Keypair,
    }

    /// We follow `friend`; `stranger` is followed by nobody. Both have 6
    /// old posts and 4 young ones.
    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let me = Keypair::from_seed(&[0x70; 32]);
        let friend = Keypair::from_seed(&[0x71; 32]);
        let stranger = Keypair::from_seed(&[0x72; 32]);
        let store = Store::open_as(&dir.path().join("s.redb"), &me).unwrap();
        store.ingest(follow(&me, &friend.id())).unwrap();
        store.ingest(aged_posts(&friend, 6, 4)).unwrap();
        store.ingest(aged_posts(&stranger, 6, 4)).unwrap();
        World {
            _dir: dir,
            store,
            me,
            friend,
            stranger,
        }
    }

    #[test]
    fn a_feed_beyond_keep_hops_loses_its_old_messages_and_replication_goes_on() {
        let w = world();
        let s = &w.store;
        let plan = s
            .prune_plan(&w.me.id(), &month(), super::super::now_ms())
            .unwrap();
        assert_eq!(plan.feeds.len(), 1, "only the stranger: {plan:?}");
        let p = &plan.feeds[0];
        assert_eq!(
            (p.feed, p.from, p.keep_from, p.messages),
            (w.stranger.id(), 1, 7, 6)
        );
        let before = s.stats().unwrap().messages;
        let done = s.prune(&plan).unwrap();
        assert_eq!(done.messages, 6);
        assert_eq!(done.feeds, vec![(w.stranger.id(), 7)]);
        assert_eq!(s.stats().unwrap().messages, before - 6);
        // Held from 7 by choice: not partial, never fetched again.
        assert_eq!(s.held_range(&w.stranger.id()).unwrap().unwrap().from, 7);
        assert_eq!(s.pruned_feeds().unwrap(), vec![(w.stranger.id(), 7)]);
        assert!(s.partial_feeds().unwrap().is_empty());
        // The friend's feed is whole; the stranger's serves from 7.
        assert_eq!(s.feed(&w.friend.id(), 0, 100).unwrap().len(), 10);
        assert_eq!(s.feed(&w.stranger.id(), 6, 100).unwrap().len(), 4);
        // Nothing more to prune; the pruned posts left the timeline index.
        let again = s
            .prune_plan(&w.me.id(), &month(), super::super::now_ms())
            .unwrap();
        assert!(again.feeds.is_empty(), "{again:?}");
        let txn = s.db().begin_read().unwrap();
        let posts = txn.open_table(POSTS).unwrap();
        let n = posts
            .iter()
            .unwrap()
            .filter(|e| e.as_ref().unwrap().0.value()[..32] == w.stranger.id().0)
            .count();
        assert_eq!(n, 4);
        drop((posts, txn));
        // Its next message is taken as any other's.
        let all = aged_posts(&w.stranger, 6, 5);
        let out = s.ingest(vec![all[10].clone()]).unwrap();
        assert_eq!(out, vec![crate::store::Outcome::Stored]);
        // A range below what was pruned is not taken back.
        let held = s.held_range(&w.stranger.id()).unwrap().unwrap();
        assert_eq!(
            s.ingest_range(held.anchor(), &all[..6]).unwrap(),
            crate::store::RangeOutcome::Stale
        );
    }

    #[test]
    fn nothing_set_prunes_nothing_and_our_own_feed_is_never_pruned() {
        let w = world();
        let s = &w.store;
        let none = Retention::default();
        assert!(
            s.prune_plan(&w.me.id(), &none, super::super::now_ms())
                .unwrap()
                .feeds
                .is_empty()
        );
        s.ingest(aged_posts(&w.me, 0, 0)).unwrap();
        // keep_hops 0 with tiny budgets: only others go, and each keeps
        // its latest message.
        let harsh = Retention {
            keep_hops: 0,
            max_age_ms: Some(0),
            max_feed_bytes: Some(1),
        };
        let plan = s
            .prune_plan(&w.me.id(), &harsh, super::super::now_ms())
            .unwrap();
        let feeds: Vec<FeedId> = plan.feeds.iter().map(|f| f.feed).collect();
        assert!(!feeds.contains(&w.me.id()));
        assert_eq!(feeds.len(), 2);
        assert!(plan.feeds.iter().all(|f| f.keep_from == 10));
        s.prune(&plan).unwrap();
        assert_eq!(s.feed(&w.me.id(), 0, 100).unwrap().len(), 1);
        assert_eq!(s.feed(&w.friend.id(), 9, 100).unwrap().len(), 1);
    }

    #[test]
    fn max_feed_bytes_keeps_the_newest_that_fit() {
        let w = world();
        let s = &w.store;
        let sizes: Vec<u64> = s
            .feed(&w.stranger.id(), 0, 100)
            .unwrap()
            .iter()
            .map(|m| 40 + m.json.len() as u64)
            .collect();
        // Room for the newest three, not four.
        let budget = sizes[7..].iter().sum::<u64>() + sizes[6] / 2;
        let rules = Retention {
            keep_hops: 1,
            max_age_ms: None,
            max_feed_bytes: Some(budget),
        };
        let plan = s
            .prune_plan(&w.me.id(), &rules, super::super::now_ms())
            .unwrap();
        assert_eq!(plan.feeds.len(), 1);
        assert_eq!(plan.feeds[0].keep_from, 8);
        assert_eq!(plan.feeds[0].bytes, sizes[..7].iter().sum::<u64>());
    }

    #[test]
    fn a_private_message_we_opened_stays_with_all_above_it() {
        let w = world();
        let s = &w.store;
        let other = Keypair::from_seed(&[0x73; 32]);
        let now = super::super::now_ms();
        let mut items: Vec<(f64, Value)> = Vec::new();
        for i in 0..8 {
            let c = if i == 3 {
                let plain = format!(
                    r#"{{"type":"post","text":"secret","recps":["{}"]}}"#,
                    w.me.id()
                );
                Value::from(crate::private::box_message(plain.as_bytes(), &[w.me.id()]).unwrap())
            } else {
                json(&format!(r#"{{"type":"post","text":"p{i}"}}"#))
            };
            items.push((now - 60.0 * DAY + i as f64, c));
        }
        s.ingest(feed_of(&other, &items)).unwrap();
        let plan = s.prune_plan(&w.me.id(), &month(), now).unwrap();
        let p = plan.feeds.iter().find(|f| f.feed == other.id()).unwrap();
        assert_eq!((p.keep_from, p.messages), (4, 3));
        s.prune(&plan).unwrap();
        assert_eq!(s.held_range(&other.id()).unwrap().unwrap().from, 4);
    }

    #[test]
    fn receive_sequences_are_not_given_twice_when_the_highest_are_pruned() {
        let w = world();
        let s = &w.store;
        let late = Keypair::from_seed(&[0x74; 32]);
        let all = aged_posts(&late, 6, 4);
        // Newest first, then the older history: the old messages get the
        // highest receive sequences.
        s.ingest_range(RangeAnchor::Newest, &all[6..]).unwrap();
        let held = s.held_range(&late.id()).unwrap().unwrap();
        s.ingest_range(held.anchor(), &all[..6]).unwrap();
        let highest = s.log(0, 1000).unwrap().last().unwrap().rx;
        let plan = s
            .prune_plan(&w.me.id(), &month(), super::super::now_ms())
            .unwrap();
        s.prune(&plan).unwrap();
        assert!(s.log(0, 1000).unwrap().last().unwrap().rx < highest);
        let more = aged_posts(&w.friend, 6, 5);
        s.ingest(vec![more[10].clone()]).unwrap();
        assert_eq!(s.log(0, 1000).unwrap().last().unwrap().rx, highest + 1);
    }

    #[test]
    fn a_feed_pruned_then_followed_has_its_history_fetched_again() {
        let w = world();
        let s = &w.store;
        let plan = s
            .prune_plan(&w.me.id(), &month(), super::super::now_ms())
            .unwrap();
        s.prune(&plan).unwrap();
        assert!(s.partial_feeds().unwrap().is_empty());
        let mut f = follow(&w.me, &w.stranger.id());
        // Our second message: rebuild on our feed.
        let state = s.latest(&w.me.id()).unwrap();
        let c = json(&format!(
            r#"{{"type":"contact","contact":"{}","following":true}}"#,
            w.stranger.id()
        ));
        let v = feed::build(&w.me, state.as_ref(), super::super::now_ms(), c, None);
        f[0] = feed::validate(state.as_ref(), None, v).unwrap();
        s.ingest(f).unwrap();
        assert_eq!(
            s.unprune_kept(&w.me.id(), 1).unwrap(),
            vec![w.stranger.id()]
        );
        assert_eq!(s.partial_feeds().unwrap().len(), 1);
    }

    #[test]
    fn every_listing_of_a_pruned_message_goes_with_it() {
        let w = world();
        let s = &w.store;
        let odd = Keypair::from_seed(&[0x75; 32]);
        let now = (super::super::now_ms() / DAY).floor() * DAY;
        let old = now - 60.0 * DAY;
        let first = feed_of(&odd, &[(old, json(r#"{"type":"post","text":"first"}"#))]);
        let root = first[0].id();
        let me = w.me.id();
        let contents = [
            r#"{"type":"post","text":"first"}"#.to_string(),
            format!(r#"{{"type":"post","text":"re","root":"{root}","branch":"{root}"}}"#),
            format!(
                r#"{{"type":"vote","vote":{{"link":"{root}","value":1,"expression":"Like"}}}}"#
            ),
            format!(r#"{{"type":"about","about":"{}","name":"odd"}}"#, odd.id()),
            format!(
                r#"{{"type":"post","text":"edited","revisionRoot":"{root}","revisionBranch":"{root}"}}"#
            ),
            format!(r#"{{"type":"post","text":"hi","mentions":[{{"link":"{me}"}}]}}"#),
            r#"{"type":"post","text":"young"}"#.to_string(),
        ];
        let items: Vec<(f64, Value)> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| (if i < 6 { old + i as f64 } else { now - DAY }, json(c)))
            .collect();
        s.ingest(feed_of(&odd, &items)).unwrap();
        let plan = s.prune_plan(&me, &month(), super::super::now_ms()).unwrap();
        s.prune(&plan).unwrap();
        assert_eq!(s.held_range(&odd.id()).unwrap().unwrap().from, 7);
        let txn = s.db().begin_read().unwrap();
        let log = txn.open_table(LOG).unwrap();
        let held = |rx: u64| log.get(rx).unwrap().is_some();
        let rx_at = |k: &[u8]| u64::from_be_bytes(k[k.len() - 8..].try_into().unwrap());
        for e in txn.open_table(POSTS).unwrap().iter().unwrap() {
            assert!(held(rx_at(e.unwrap().0.value())), "a post listed is held");
        }
        for e in txn.open_table(LINKS).unwrap().iter().unwrap() {
            assert!(
                held(rx_at(e.unwrap().0.value())),
                "a backlink's message is held"
            );
        }
        for e in txn.open_table(REVISIONS).unwrap().iter().unwrap() {
            assert!(
                held(rx_at(e.unwrap().0.value())),
                "a revision listed is held"
            );
        }
        for e in txn.open_table(UNREAD).unwrap().iter().unwrap() {
            assert!(
                held(e.unwrap().0.value()),
                "an unread mark's message is held"
            );
        }
        // What the pruned messages set stays: the name, the like.
        drop((log, txn));
        let r = s.reader().unwrap();
        assert_eq!(r.likes(&Link::Msg(root)).unwrap(), 1);
    }

    #[test]
    fn the_storage_report_counts_every_feed_by_distance() {
        let w = world();
        let r = w.store.storage(&w.me.id(), 10).unwrap();
        assert_eq!(r.messages, 21);
        assert!(r.file_bytes > 0 && r.message_bytes > 0 && r.index_bytes > 0);
        let hops: Vec<(Option<u8>, u64, u64)> =
            r.by_hops.iter().map(|(h, f, n, _)| (*h, *f, *n)).collect();
        assert_eq!(hops, vec![(Some(0), 1, 1), (Some(1), 1, 10), (None, 1, 10)]);
        assert_eq!(r.largest.len(), 3);
    }
}
