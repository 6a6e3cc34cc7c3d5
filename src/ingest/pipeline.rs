//! The long-lived pipeline of a running node: what peers send (and what is
//! imported through the node) checked by one thread, written by the node's
//! one [`Writer`].
//!
//! Owns the checker thread (`shoal-checker`) and its queue: submissions
//! from every replication session are placed in their feeds in the order
//! they come, by one thread, with the same stages as the file import: the
//! rayon pool prechecks (parses, batch-verifies) up to [`CHECK_AHEAD`]
//! submissions at once while the checker places the oldest. The
//! checker reads the store; its checked batches go to the writer, which
//! commits them (several at once when they queue, and after a range
//! waiting for the next when the checker has more in hand) and answers
//! each submission.
//! Imports `crypto`, `store` and the sibling modules `check`, `limits`
//! and `writer`; a submission's messages stay in the buffers (`Bytes`)
//! they came in.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::check::{Checker, Line, LineBatch, LineError, LineResult, MAX_LINE_BYTES, Prechecking};
use super::limits::FeedCap;
use super::writer::{Checked, Writer};
use crate::crypto::FeedId;
use crate::feed::RangeAnchor;
use crate::store::Store;

/// Feeds the long-lived checker of a [`Pipeline`] may remember besides
/// those with messages checked ahead of the store; past that it forgets
/// them (see [`Checker::trim`]), so that peers naming ever new feeds cannot
/// make it grow without bound.
const PIPELINE_CACHED_FEEDS: usize = 1 << 16;

/// Submissions whose lines are prechecked (parsed, signature-checked) on
/// the rayon pool at once, while the checker places the oldest in its
/// feeds: the pool's threads then never wait for each other at the end of
/// one small submission.
const CHECK_AHEAD: usize = 4;

/// One submission to a [`Pipeline`].
struct Job {
    batch: LineBatch,
    count: usize,
    refused: Option<Arc<Mutex<HashSet<FeedId>>>>,
    wanted: Option<Arc<HashSet<FeedId>>>,
    /// A range of one feed to place whole (see [`Pipeline::submit_range`]).
    range: Option<(FeedId, RangeAnchor)>,
    reply: tokio::sync::oneshot::Sender<Vec<LineResult>>,
}

/// A long-lived checking pipeline for messages that arrive from peers,
/// shared by every replication session of a node. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    jobs: tokio::sync::mpsc::Sender<Job>,
}

impl Pipeline {
    /// Starts the checker thread; what it checks is written by `writer`.
    pub fn start(
        store: Arc<Store>,
        hmac: Option<[u8; 32]>,
        cap: FeedCap,
        writer: Writer,
    ) -> std::io::Result<Pipeline> {
        let (jobs, mut incoming) = tokio::sync::mpsc::channel::<Job>(8);
        let (invalidate, invalidated) = std::sync::mpsc::channel::<FeedId>();
        std::thread::Builder::new()
            .name("shoal-checker".into())
            .spawn(move || {
                let mut checker = Checker::with_cap(&store, hmac.as_ref(), cap);
                // Jobs whose precheck runs while the one in front is placed.
                let mut ahead: VecDeque<(Job, Prechecking)> = VecDeque::new();
                // Whether the last batch queued for the writer said that
                // another follows (see `Checked::more`).
                let mut promised = false;
                let start = |checker: &Checker, mut job: Job| {
                    let batch = std::mem::take(&mut job.batch);
                    let pre = checker.precheck(batch, job.wanted.clone());
                    (job, pre)
                };
                loop {
                    if ahead.is_empty() {
                        match incoming.blocking_recv() {
                            Some(job) => ahead.push_back(start(&checker, job)),
                            None => break,
                        }
                    }
                    while ahead.len() < CHECK_AHEAD {
                        match incoming.try_recv() {
                            Ok(job) => ahead.push_back(start(&checker, job)),
                            Err(_) => break,
                        }
                    }
                    let (job, pre) = ahead.pop_front().expect("a job was queued");
                    while let Ok(f) = invalidated.try_recv() {
                        checker.forget(&f);
                    }
                    checker.trim(PIPELINE_CACHED_FEEDS);
                    let checked = match job.range {
                        Some((feed, anchor)) => checker.place_range(feed, anchor, pre),
                        None => checker
                            .place(pre, job.refused.as_deref())
                            .map(|(batch, _)| batch),
                    };
                    match checked {
                        Ok(batch) => {
                            promised = !ahead.is_empty() || !incoming.is_empty();
                            let checked = Checked {
                                batch,
                                count: job.count,
                                reply: job.reply,
                                invalidate: invalidate.clone(),
                                more: promised,
                            };
                            if writer.queue_checked(checked).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            if std::mem::take(&mut promised) {
                                writer.nothing_more();
                            }
                            tracing::error!("checking failed: {e}");
                            let _ = job
                                .reply
                                .send(vec![LineResult::Rejected(e.to_string()); job.count]);
                        }
                    }
                }
            })?;
        Ok(Pipeline { jobs })
    }

    /// Checks and stores messages (each a JSON message value or a
    /// `{key, value, timestamp}`), returning what became of each, in order.
    pub async fn submit(&self, items: Vec<Bytes>) -> Vec<LineResult> {
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
        items: Vec<Bytes>,
        refused: Option<Arc<Mutex<HashSet<FeedId>>>>,
        wanted: Option<Arc<HashSet<FeedId>>>,
    ) -> Vec<LineResult> {
        self.submit_job(items, refused, wanted, None).await
    }

    /// Checks and stores a range of `feed`, its messages in ascending
    /// order, placed at `anchor` (see [`crate::feed::chain_range`]): all of
    /// it, in one transaction, or none (every result then says why). The
    /// lowest sequence now held, or why the range was refused.
    pub async fn submit_range(
        &self,
        feed: FeedId,
        anchor: RangeAnchor,
        items: Vec<Bytes>,
    ) -> Result<u64, String> {
        let results = self
            .submit_job(items, None, None, Some((feed, anchor)))
            .await;
        let mut from = None;
        for r in results {
            match r {
                LineResult::Stored(_, seq) => {
                    from = Some(from.map_or(seq, |f: u64| f.min(seq)));
                }
                LineResult::Duplicate(..) => {}
                LineResult::Rejected(why) => return Err(why),
            }
        }
        from.ok_or_else(|| "an empty range".to_string())
    }

    async fn submit_job(
        &self,
        items: Vec<Bytes>,
        refused: Option<Arc<Mutex<HashSet<FeedId>>>>,
        wanted: Option<Arc<HashSet<FeedId>>>,
        range: Option<(FeedId, RangeAnchor)>,
    ) -> Vec<LineResult> {
        let count = items.len();
        // Each item stays in the buffer it came in.
        let batch = LineBatch {
            text: Vec::new(),
            lines: items
                .into_iter()
                .zip(1u64..)
                .map(|(item, n)| match item.len() > MAX_LINE_BYTES {
                    true => (n, Err(LineError::TooLong)),
                    false => (n, Ok(Line::Own(item))),
                })
                .collect(),
        };
        let (reply, result) = tokio::sync::oneshot::channel();
        let job = Job {
            batch,
            count,
            refused,
            wanted,
            range,
            reply,
        };
        if self.jobs.send(job).await.is_err() {
            return vec![LineResult::Rejected("the node is shutting down".into()); count];
        }
        result.await.unwrap_or_else(|_| {
            vec![LineResult::Rejected("the node is shutting down".into()); count]
        })
    }
}
