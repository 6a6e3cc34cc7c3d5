//! Newest first: a followed feed's latest messages at once, its older
//! history behind them.
//!
//! Owns the fetches one session makes besides EBT: for a feed we follow
//! directly and hold nothing of, its newest [`Replicator::newest_count`]
//! messages by `createHistoryStream` (`seq: latest - N + 1, limit: N`),
//! checked as a range that chains among itself; then, for each feed held
//! from above sequence 1, its older history a [`BACKFILL_CHUNK`] at a time,
//! downwards, each chunk checked to end in the message the held range
//! names as `previous`. What the pure state machine ([`super::ebt::Ebt`])
//! asks for comes in through a channel; what became of each newest fetch
//! goes back through another, so that the session asks EBT for what comes
//! after it. One fetch of a feed at a time in the whole node. A peer that
//! serves a range that does not chain, less than it claims, or nothing
//! within [`FETCH_TIMEOUT`] has the range discarded and is noted in the
//! [`super::watch::Watch`] with the reason; nothing of the range is
//! stored or shown. Uses `rpc`, the ingest `Pipeline` and `store` reads.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::session::Replicator;
use crate::crypto::FeedId;
use crate::feed::{MAX_MESSAGE_BYTES, RangeAnchor};
use crate::ingest::limits::Rate;
use crate::rpc::RpcHandle;

/// Messages asked for per chunk of older history.
pub const BACKFILL_CHUNK: u64 = 1000;
/// Ranges one session reads from its peer at once (newest or older): with
/// [`BACKFILL_CHUNK`] and the largest message, at most 64 MiB being read
/// (and never more than [`RANGE_BUDGET_KIB`] held in the whole node).
const READS_AT_ONCE: usize = 8;
/// Chunks of older history (of as many feeds) one session has under way
/// at once: being read, or read and waiting to be checked and stored. A
/// range's read slot is given back as soon as it is read, so the next
/// range crosses the network while the ones before it are checked: when
/// a fetch held its slot until its range was stored, every commit left
/// the checker idle for the next ranges' round trip. With the writer's
/// larger rounds, about a tenth off a first sync (README "Import"). What
/// waits is bounded by [`RANGE_BUDGET_KIB`] and the pipeline's queue.
const OLDER_AT_ONCE: usize = 32;
/// Newest-first fetches one session has under way at once.
const NEWEST_AT_ONCE: usize = 32;
/// How long one range may take to arrive.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a session waits before looking again at a feed whose older
/// history another session is fetching.
const BUSY_WAIT: Duration = Duration::from_secs(1);
/// Bytes of ranges read and not yet stored, in the whole node, in KiB.
const RANGE_BUDGET_KIB: u32 = 64 * 1024;

/// What the ranges read and not yet stored may take, in the whole node
/// (see [`RANGE_BUDGET_KIB`]): a read waits for room, so however many
/// peers serve ranges of messages at the largest valid size, they hold
/// at most this much memory.
pub struct RangeBudget(Arc<Semaphore>);

impl Default for RangeBudget {
    fn default() -> Self {
        RangeBudget(Arc::new(Semaphore::new(RANGE_BUDGET_KIB as usize)))
    }
}

/// Requests one session may have queued for its fetcher.
pub const QUEUED: usize = 4096;

/// What a session asks its fetcher for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// The newest messages of a feed we hold nothing of; the peer holds
    /// it up to this sequence.
    Newest(FeedId, u64),
    /// The older history of a feed held from above sequence 1.
    Older(FeedId),
}

/// What became of a newest-first fetch: the feed and, when its newest
/// messages are held, the latest sequence held.
pub type Fetched = (FeedId, Option<u64>);

/// One feed being fetched, in the whole node: released when dropped.
struct Busy<'a> {
    set: &'a Mutex<HashSet<FeedId>>,
    feed: FeedId,
}

impl<'a> Busy<'a> {
    fn take(set: &'a Mutex<HashSet<FeedId>>, feed: FeedId) -> Option<Busy<'a>> {
        let fresh = set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(feed);
        fresh.then_some(Busy { set, feed })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.feed);
    }
}

fn now_ms() -> u64 {
    crate::store::now_ms() as u64
}

/// Runs the fetches of one session with `peer` until `wants` closes (the
/// session ended) and its fetches are done: newest ranges first, several
/// under way at once; then older history, a chunk each of several feeds
/// under way at once, the feeds in turn.
pub async fn run(
    repl: Arc<Replicator>,
    peer: FeedId,
    rpc: RpcHandle,
    mut wants: mpsc::Receiver<Want>,
    fetched: mpsc::Sender<Fetched>,
) {
    let gate = Gate {
        rate: Mutex::new(Rate::new(repl.limits.peer_rate)),
        reads: Semaphore::new(READS_AT_ONCE),
    };
    let (repl, rpc, gate) = (&*repl, &rpc, &gate);
    let mut newest: VecDeque<(FeedId, u64)> = VecDeque::new();
    let mut older: VecDeque<FeedId> = VecDeque::new();
    // Feeds this peer failed to serve: not asked of it again.
    let mut failed: HashSet<FeedId> = HashSet::new();
    // Fetches under way (kept full as each ends, so that fetching,
    // checking and writing overlap), and the feeds they are of.
    let mut running = FuturesUnordered::new();
    let mut busy_feeds: HashSet<FeedId> = HashSet::new();
    let (mut newest_running, mut older_running) = (0usize, 0usize);
    let mut open = true;
    loop {
        while let Ok(w) = wants.try_recv() {
            take(w, &mut newest, &mut older);
        }
        // Newest ranges first; older history once none waits.
        while newest_running < NEWEST_AT_ONCE
            && let Some((f, seq)) = newest.pop_front()
        {
            if failed.contains(&f) || !busy_feeds.insert(f) {
                continue;
            }
            newest_running += 1;
            let fetch: Fetch<'_> =
                Box::pin(
                    async move { (true, f, fetch_newest(repl, peer, rpc, f, seq, gate).await) },
                );
            running.push(fetch);
        }
        while newest.is_empty() && older_running < OLDER_AT_ONCE {
            let Some(f) = older.pop_front() else { break };
            if failed.contains(&f) || !busy_feeds.insert(f) {
                continue;
            }
            older_running += 1;
            let fetch: Fetch<'_> =
                Box::pin(async move { (false, f, fetch_older(repl, peer, rpc, f, gate).await) });
            running.push(fetch);
        }
        if running.is_empty() && !open {
            return;
        }
        tokio::select! {
            w = wants.recv(), if open => match w {
                Some(w) => take(w, &mut newest, &mut older),
                None => open = false,
            },
            Some((was_newest, f, outcome)) = running.next(), if !running.is_empty() => {
                busy_feeds.remove(&f);
                if was_newest {
                    newest_running -= 1;
                } else {
                    older_running -= 1;
                }
                match (was_newest, outcome) {
                    (true, Outcome::Held(seq)) => {
                        older.push_back(f);
                        if fetched.send((f, Some(seq))).await.is_err() {
                            return;
                        }
                    }
                    (true, Outcome::Failed) => {
                        failed.insert(f);
                        if fetched.send((f, None)).await.is_err() {
                            return;
                        }
                    }
                    (true, Outcome::Busy | Outcome::Again) | (false, Outcome::Held(1)) => {}
                    (false, Outcome::Held(_) | Outcome::Again) => older.push_back(f),
                    // Another session fetches it: this one takes over
                    // should that one end first.
                    (false, Outcome::Busy) => {
                        older_running += 1;
                        busy_feeds.insert(f);
                        running.push(Box::pin(async move {
                            tokio::time::sleep(BUSY_WAIT).await;
                            (false, f, Outcome::Again)
                        }));
                    }
                    (false, Outcome::Failed) => {
                        failed.insert(f);
                    }
                }
            }
        }
    }
}

/// What one session's fetches take from its peer: messages at most at the
/// peer's rate, and at most [`READS_AT_ONCE`] ranges being read.
struct Gate {
    rate: Mutex<Rate>,
    reads: Semaphore,
}

/// A fetch under way: whether it is of newest messages, the feed, and
/// what it came to.
type Fetch<'a> = Pin<Box<dyn Future<Output = (bool, FeedId, Outcome)> + Send + 'a>>;

/// Queues what a session asks for, once per feed.
fn take(w: Want, newest: &mut VecDeque<(FeedId, u64)>, older: &mut VecDeque<FeedId>) {
    match w {
        Want::Newest(f, seq) if !newest.iter().any(|(g, _)| *g == f) => newest.push_back((f, seq)),
        Want::Older(f) if !older.contains(&f) => older.push_back(f),
        _ => {}
    }
}

/// What one fetch came to.
enum Outcome {
    /// Stored: for a newest range, the latest sequence now held; for older
    /// history, the lowest.
    Held(u64),
    /// Another session fetches this feed, or there is nothing to fetch.
    Busy,
    /// The peer did not serve a range that chains (noted in the watch).
    Failed,
    /// A wait for another session's fetch is over: look again.
    Again,
}

/// Reads a range of `feed` from `peer`: `createHistoryStream` from `seq`,
/// at most `limit` messages, within [`FETCH_TIMEOUT`]; charged to the
/// peer's limits, and held within the node's [`RangeBudget`] (the permit
/// comes with the messages: keep it until they are stored), one of the
/// session's reads at once ([`Gate`]). `Err` says why, for a person.
async fn read_range(
    repl: &Replicator,
    peer: FeedId,
    rpc: &RpcHandle,
    feed: FeedId,
    seq: u64,
    limit: u64,
    gate: &Gate,
) -> Result<(Vec<Bytes>, Option<OwnedSemaphorePermit>), String> {
    let _reading = gate
        .reads
        .acquire()
        .await
        .map_err(|_| "the session is ending".to_string())?;
    let args =
        json!([{"id": feed.to_string(), "seq": seq, "limit": limit, "live": false, "keys": false}]);
    let read = async {
        let mut source = rpc
            .call_source(&["createHistoryStream"], args)
            .await
            .map_err(|e| format!("createHistoryStream refused: {e}"))?;
        let mut items = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(item) = source.recv().await {
            let b = item.map_err(|e| format!("the history stream failed: {e}"))?;
            if items.len() as u64 >= limit {
                return Err(format!("served more than the {limit} messages asked for"));
            }
            let b = super::session::body_bytes(b);
            if b.len() > MAX_MESSAGE_BYTES {
                return Err(format!(
                    "served {} bytes as one message, more than any valid message",
                    b.len()
                ));
            }
            let kib = (b.len() / 1024 + 1) as u32;
            let permit = repl
                .range_budget
                .0
                .clone()
                .acquire_many_owned(kib)
                .await
                .map_err(|_| "the node is shutting down".to_string())?;
            match held.as_mut() {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
            items.push(b);
        }
        Ok((items, held))
    };
    let (items, held) = tokio::time::timeout(FETCH_TIMEOUT, read)
        .await
        .map_err(|_| format!("served no whole range within {FETCH_TIMEOUT:?}"))??;
    if (items.len() as u64) < limit {
        return Err(format!(
            "claimed messages {seq} to {} but served {}",
            seq + limit - 1,
            items.len()
        ));
    }
    if !repl.admit(peer, &items, &gate.rate).await {
        return Err("over the day's byte budget".into());
    }
    Ok((items, held))
}

/// Fetches the newest [`Replicator::newest_count`] messages of `feed`,
/// which `peer` holds up to `latest`, and stores them as a range.
async fn fetch_newest(
    repl: &Replicator,
    peer: FeedId,
    rpc: &RpcHandle,
    feed: FeedId,
    latest: u64,
    gate: &Gate,
) -> Outcome {
    let Some(_busy) = Busy::take(&repl.fetching, feed) else {
        return Outcome::Busy;
    };
    if repl.store.latest(&feed).ok().flatten().is_some() {
        return Outcome::Busy;
    }
    let n = repl.newest_count.min(latest);
    let from = latest - n + 1;
    let stored = match read_range(repl, peer, rpc, feed, from, n, gate).await {
        Ok((items, _held)) => {
            repl.pipeline
                .submit_range(feed, RangeAnchor::Newest, items)
                .await
        }
        Err(e) => Err(e),
    };
    match stored {
        Ok(_) => {
            tracing::debug!("{peer}: fetched {feed} newest first: {from} to {latest}");
            Outcome::Held(latest)
        }
        Err(reason) => {
            let reason = format!("newest messages discarded: {reason}");
            tracing::warn!("{peer}: {feed}: {reason}");
            repl.watch.error(feed, peer, &reason, now_ms());
            Outcome::Failed
        }
    }
}

/// Fetches the chunk of `feed`'s history just below what we hold, and
/// stores it if it ends in the message our lowest one names.
async fn fetch_older(
    repl: &Replicator,
    peer: FeedId,
    rpc: &RpcHandle,
    feed: FeedId,
    gate: &Gate,
) -> Outcome {
    let Some(_busy) = Busy::take(&repl.fetching, feed) else {
        return Outcome::Busy;
    };
    let Ok(Some(held)) = repl.store.held_range(&feed) else {
        return Outcome::Held(1);
    };
    let start = held.from.saturating_sub(BACKFILL_CHUNK).max(1);
    let limit = held.from - start;
    let stored = match read_range(repl, peer, rpc, feed, start, limit, gate).await {
        Ok((items, _held)) => repl.pipeline.submit_range(feed, held.anchor(), items).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(from) => Outcome::Held(from),
        Err(reason) => {
            let reason = format!(
                "older history {start} to {} discarded: {reason}",
                held.from - 1
            );
            tracing::warn!("{peer}: {feed}: {reason}");
            repl.watch.error(feed, peer, &reason, now_ms());
            Outcome::Failed
        }
    }
}
