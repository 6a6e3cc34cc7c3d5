//! The one writer of a running node's store.
//!
//! Owns the thread (`shoal-writer`) that makes every store write of a
//! running node, one job at a time: the batches the pipeline checked, our
//! publishes, our group operations and the group duties that arriving
//! messages give us, notes in the peer table, read marks, and the invites
//! we make and redeem. Whatever queued while it wrote is taken together:
//! checked batches share one transaction (up to [`ROUND_LINES`] lines),
//! each written into it as it comes, so that writing overlaps with the
//! checking of the next; publishes share another (up to
//! [`PUBLISH_BATCH`]), so that many small writes cost one fsync. When the
//! checker says, with a range of one feed, that it has more in hand, the
//! round waits for the next batch (or its word that none comes) before it
//! commits, unless something else is waiting to be written. After each
//! commit it tells the node, through `on_stored`, of each message stored,
//! in one call, before it answers whoever asked:
//! one announcer for every message, whoever stored it. Nothing else of a
//! running node writes its store (the API's read marks come here too,
//! through `Node::mark_read`). Reads go to the store directly, from any
//! thread.
//!
//! Callers on the async threads hand a job over and await the answer
//! ([`Writer::publish`], [`Writer::flush`]) or do not wait at all
//! ([`Writer::note_peer`]); the calls that block ([`Writer::group_write`],
//! [`Writer::mark_read`]) panic on a thread that drives async tasks, as
//! tokio's own blocking calls do, so no async worker ever waits on a
//! write. Checked batches wait for room: at most [`CHECKED_QUEUE`] queued
//! besides the ones being written, which holds the checker back when the
//! disk is slower; what is queued is written together.
//!
//! Also owns what a written batch comes to ([`finish_batch`]), which the
//! file import's own writer thread shares. Imports `crypto`, `feed`,
//! `store` and `check`; never `replicate`, `node`, `home` or
//! `local`: the node hands it the announcer as a callback.

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::check::{BATCH_LINES, Batch, LineResult};
use crate::crypto::{FeedId, Keypair};
use crate::feed::{Value, VerifiedMsg};
use crate::store::{
    GroupOp, InviteRefusal, Outcome, PeerRecord, RangeOutcome, Store, StoreError, Written,
};

/// Most publishes appended in one transaction.
pub const PUBLISH_BATCH: usize = 512;
/// Checked batches queued for the writer at most: a round writes what is
/// queued (up to [`ROUND_LINES`] messages) in one transaction, so the more
/// may queue while it writes, the fewer commits when peers stream.
const CHECKED_QUEUE: usize = 6;
/// Messages one round writes at most: eight import batches, as many as
/// the file import commits at once. Each commit rewrites the pages of the
/// indexes whose keys are random (message ids, link targets), whatever
/// it writes; a first sync whose rounds took only what had queued made
/// 75 to 139 commits of 100,000 messages, the import 9. A round
/// waits for the batches the checker has in hand after a range (see
/// [`Checked::waits_for_more`]), so a first sync now makes about 13
/// (README "Import").
const ROUND_LINES: usize = 8 * BATCH_LINES;

/// Why a publish was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message was refused (too large) or the store failed on it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transaction of the publishes it was queued with failed.
    #[error("{0}")]
    Batch(String),
    /// The writer has stopped: the node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

/// What the store made of a batch, in line order, and the feeds whose
/// checked-ahead state the store did not confirm.
pub(super) struct Stored {
    pub(super) results: Vec<(u64, LineResult)>,
    pub(super) refused_feeds: Vec<FeedId>,
}

/// What became of each line of a checked batch whose fresh messages were
/// written with these `outcomes`, and whose messages the store already
/// held (or refuses) came to `known`, in order ([`Written::Each`]).
pub(super) fn finish_batch(b: Batch, outcomes: Vec<Outcome>, known: Vec<Outcome>) -> Stored {
    let mut results: Vec<(u64, LineResult)> = b
        .rejections
        .into_iter()
        .map(|r| (r.line, LineResult::Rejected(r.reason)))
        .collect();
    let mut refused_feeds = Vec::new();
    for ((n, m), o) in b.fresh_lines.into_iter().zip(&b.fresh).zip(outcomes) {
        let (author, seq) = (m.author(), m.sequence());
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
    for ((n, m), o) in b.known_lines.into_iter().zip(&b.known).zip(known) {
        results.push((
            n,
            match o {
                Outcome::Duplicate | Outcome::Stored => {
                    LineResult::Duplicate(m.author(), m.sequence())
                }
                Outcome::Refused(e) => LineResult::Rejected(e.to_string()),
            },
        ));
    }
    results.sort_by_key(|r| r.0);
    Stored {
        results,
        refused_feeds,
    }
}

/// A batch the pipeline's checker placed, for the writer.
pub(super) struct Checked {
    /// The batch.
    pub(super) batch: Batch,
    /// Lines submitted (the answer has one result for each).
    pub(super) count: usize,
    /// Where to answer.
    pub(super) reply: oneshot::Sender<Vec<LineResult>>,
    /// Where to name the feeds the store refused a placed message of, so
    /// that the checker reads their state again.
    pub(super) invalidate: mpsc::Sender<FeedId>,
    /// Whether the checker had more in hand when it queued this batch: it
    /// then queues another checked batch or says that none comes
    /// ([`Writer::nothing_more`]).
    pub(super) more: bool,
}

impl Checked {
    /// Whether a round that took this batch waits for the checker's next
    /// one: only after a range (newest messages or older history), when
    /// the checker has more in hand. Many ranges are fetched at once, more
    /// than a round holds, so the fetches keep the checker busy while a
    /// round is written. Other batches come from EBT sessions, each of
    /// which gathers no more while four of its batches wait to be
    /// written: a round that waited for all four left the checker with
    /// nothing to do while it was written, and a first sync over EBT alone
    /// took about a quarter longer (README "Import").
    fn waits_for_more(&self) -> bool {
        self.more && self.batch.range.is_some()
    }
}

/// One message the writer stored, as it tells the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its feed.
    pub author: FeedId,
    /// Its sequence.
    pub seq: u64,
    /// Whether its text holds an `&`: every blob id starts with one, and
    /// JSON.stringify never escapes it, so a message without one links no
    /// blob (the blob fetcher reads only the others back).
    pub may_link_blob: bool,
}

impl Appended {
    fn of(m: &VerifiedMsg) -> Appended {
        Appended {
            author: m.author(),
            seq: m.sequence(),
            may_link_blob: m.json().contains(&b'&'),
        }
    }
}

/// What a peer-table note changes in the record.
type PeerUpdate = Box<dyn FnOnce(&mut PeerRecord) + Send>;

/// The content a redeemed invite publishes, made from the invite's note.
pub type InviteContent = Box<dyn FnOnce(&str) -> Value + Send>;

/// What redeeming an invite came to: our follow published, or why not.
pub type Redeemed = Result<Result<VerifiedMsg, InviteRefusal>, StoreError>;

/// A redemption for the writer: the invite's key, the redeeming feed and
/// the content to publish.
struct Redeem {
    invite: FeedId,
    feed: FeedId,
    content: InviteContent,
}

/// One job for the writer.
enum Job {
    Checked(Checked),
    Publish(Value, oneshot::Sender<Result<VerifiedMsg, PublishError>>),
    Group(
        Box<GroupOp>,
        oneshot::Sender<Result<Vec<VerifiedMsg>, StoreError>>,
    ),
    NotePeer(
        String,
        PeerUpdate,
        oneshot::Sender<Result<PeerRecord, StoreError>>,
    ),
    MarkRead(Vec<u64>, oneshot::Sender<Result<(), StoreError>>),
    Mute(
        crate::store::Mute,
        bool,
        oneshot::Sender<Result<bool, StoreError>>,
    ),
    AddInvite(FeedId, u32, String, oneshot::Sender<Result<(), StoreError>>),
    RedeemInvite(Box<Redeem>, oneshot::Sender<Redeemed>),
    Flush(oneshot::Sender<()>),
    /// The checker's word that the batch it said would follow does not.
    NothingMore,
}

/// A handle on the writer thread of a running node. Cheap to clone; the
/// thread ends, after the jobs queued, once every handle is gone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// One token for each checked batch queued and not yet taken: the
    /// checker waits for room here before it queues the next.
    room: mpsc::SyncSender<()>,
}

/// What the writer thread holds.
struct Thread<F> {
    store: Arc<Store>,
    keys: Keypair,
    sign_cap: Option<[u8; 32]>,
    on_stored: F,
    jobs: mpsc::Receiver<Job>,
    room: mpsc::Receiver<()>,
}

/// The jobs of one round besides its checked batches (which are written
/// as they are taken): what queued while the last round was written.
#[derive(Default)]
struct Round {
    /// Lines of the checked batches taken.
    lines: usize,
    publishes: Vec<(Value, oneshot::Sender<Result<VerifiedMsg, PublishError>>)>,
    /// Every other job, in the order it came.
    others: Vec<Job>,
}

impl Round {
    /// Adds `job` (not a checked batch), or gives it back when its kind's
    /// share of the round is full (it starts the next round).
    fn add(&mut self, job: Job) -> Option<Job> {
        match job {
            Job::Checked(c) => return Some(Job::Checked(c)),
            Job::Publish(v, r) if self.publishes.len() >= PUBLISH_BATCH => {
                return Some(Job::Publish(v, r));
            }
            Job::Publish(v, r) => self.publishes.push((v, r)),
            Job::NothingMore => {}
            other => self.others.push(other),
        }
        None
    }

    /// Whether the round may wait for a checked batch the checker has in
    /// hand: it has room for one, and nothing else in it waits.
    fn may_wait(&self) -> bool {
        self.lines < ROUND_LINES && self.publishes.is_empty() && self.others.is_empty()
    }
}

/// Panics on a thread that drives async tasks, before anything is sent:
/// a blocking call there would hold up every task of that thread while
/// the writer works. (tokio's blocking receive makes the check, and
/// returns at once here: the channel is closed.)
fn refuse_async_worker() {
    let (_, closed) = oneshot::channel::<()>();
    let _ = closed.blocking_recv();
}

impl Writer {
    /// Starts the writer thread of a node whose feed is `keys`' (signed
    /// with `sign_cap`, if the network has one). `on_stored` is called on
    /// that thread after each commit with the feeds and sequences stored.
    pub fn start(
        store: Arc<Store>,
        keys: Keypair,
        sign_cap: Option<[u8; 32]>,
        on_stored: impl Fn(&[Appended]) + Send + 'static,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel();
        let (room, taken) = mpsc::sync_channel(CHECKED_QUEUE);
        let thread = Thread {
            store,
            keys,
            sign_cap,
            on_stored,
            jobs: queue,
            room: taken,
        };
        std::thread::Builder::new()
            .name("shoal-writer".into())
            .spawn(move || thread.run())?;
        Ok(Writer { jobs, room })
    }

    /// Appends a message to our feed. Publishes that queue together share
    /// one write transaction; each is answered once it is committed (and
    /// announced).
    pub async fn publish(&self, content: Value) -> Result<VerifiedMsg, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Publish(content, reply))
            .map_err(|_| PublishError::Stopped)?;
        answer.await.map_err(|_| PublishError::Stopped)?
    }

    /// Publishes a group operation of ours (with what we owe the group
    /// first, see [`Store::group_write`]) and returns the messages written,
    /// once announced. Blocking: panics on a thread that drives async
    /// tasks.
    pub fn group_write(&self, op: &GroupOp) -> Result<Vec<VerifiedMsg>, StoreError> {
        refuse_async_worker();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Group(Box::new(op.clone()), reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer
            .blocking_recv()
            .map_err(|_| StoreError::WriterStopped)?
    }

    /// Remembers a peer address in the peer table (see
    /// [`Store::note_peer`]). Does not wait: await the answer to know it
    /// is written, or drop it.
    pub fn note_peer(
        &self,
        addr: &str,
        update: impl FnOnce(&mut PeerRecord) + Send + 'static,
    ) -> oneshot::Receiver<Result<PeerRecord, StoreError>> {
        let (reply, answer) = oneshot::channel();
        // A stopped writer drops the reply: the answer says so.
        let _ = self
            .jobs
            .send(Job::NotePeer(addr.to_string(), Box::new(update), reply));
        answer
    }

    /// Marks messages (by receive sequence) as read. Blocking: panics on a
    /// thread that drives async tasks.
    pub fn mark_read(&self, rxs: &[u64]) -> Result<(), StoreError> {
        refuse_async_worker();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::MarkRead(rxs.to_vec(), reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer
            .blocking_recv()
            .map_err(|_| StoreError::WriterStopped)?
    }

    /// Mutes (`on`) or unmutes something (see [`Store::mute`]): answers
    /// whether it changed.
    pub fn set_mute(&self, what: &crate::store::Mute, on: bool) -> Result<bool, StoreError> {
        refuse_async_worker();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Mute(what.clone(), on, reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer
            .blocking_recv()
            .map_err(|_| StoreError::WriterStopped)?
    }

    /// Records a new invite of `uses` uses under the public key of its
    /// seed (see [`Store::add_invite`]).
    pub async fn add_invite(&self, key: FeedId, uses: u32, note: &str) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::AddInvite(key, uses, note.to_string(), reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Redeems the invite `invite` for `feed`: one use taken and
    /// `content(note)` published in one transaction (see
    /// [`Store::redeem_invite`]); the message is announced before the
    /// answer. Redemptions are written one at a time, so of two racing for
    /// the last use exactly one wins.
    pub async fn redeem_invite(
        &self,
        invite: FeedId,
        feed: FeedId,
        content: InviteContent,
    ) -> Redeemed {
        let (reply, answer) = oneshot::channel();
        let job = Redeem {
            invite,
            feed,
            content,
        };
        self.jobs
            .send(Job::RedeemInvite(Box::new(job), reply))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Waits until every job queued before it is written.
    pub async fn flush(&self) {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job::Flush(reply)).is_ok() {
            let _ = answer.await;
        }
    }

    /// Queues a checked batch, once there is room (blocking: the checker's
    /// thread calls it). Gives it back when the writer has stopped.
    pub(super) fn queue_checked(&self, c: Checked) -> Result<(), Box<Checked>> {
        if self.room.send(()).is_err() {
            return Err(Box::new(c));
        }
        self.jobs.send(Job::Checked(c)).map_err(|e| match e.0 {
            Job::Checked(c) => Box::new(c),
            _ => unreachable!("sent a checked batch"),
        })
    }

    /// Tells the writer that no checked batch follows the last one queued,
    /// which said one would ([`Checked::more`]): its round commits.
    pub(super) fn nothing_more(&self) {
        let _ = self.jobs.send(Job::NothingMore);
    }
}

impl<F: Fn(&[Appended])> Thread<F> {
    /// Writes rounds of jobs until every handle is gone.
    fn run(self) {
        let mut next: Option<Job> = None;
        loop {
            let first = match next.take() {
                Some(j) => j,
                None => match self.jobs.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            let mut round = Round::default();
            // What is queued, up to the first checked batch: that one and
            // the checked batches after it are written as they are taken.
            let mut job = Some(first);
            while let Some(j) = job.take() {
                if let Job::Checked(c) = j {
                    next = self.write_checked(c, &mut round);
                    break;
                }
                if let Some(j) = round.add(j) {
                    next = Some(j);
                    break;
                }
                job = self.jobs.try_recv().ok();
            }
            self.write(round);
        }
    }

    /// Writes the rest of a round, after its checked batches (sessions
    /// wait on them): publishes, then the rest in the order they came.
    fn write(&self, round: Round) {
        if !round.publishes.is_empty() {
            self.write_publishes(round.publishes);
        }
        for job in round.others {
            match job {
                Job::Group(op, reply) => {
                    let r = self
                        .store
                        .group_write(&self.keys, &op, self.sign_cap.as_ref());
                    if let Ok(msgs) = &r {
                        self.announce(msgs);
                    }
                    let _ = reply.send(r);
                }
                Job::NotePeer(addr, update, reply) => {
                    let r = self.store.note_peer(&addr, update);
                    if let Err(e) = &r {
                        tracing::warn!("peer {addr} not noted: {e}");
                    }
                    let _ = reply.send(r);
                }
                Job::MarkRead(rxs, reply) => {
                    let _ = reply.send(self.store.mark_read(&rxs));
                }
                Job::Mute(what, on, reply) => {
                    let r = if on {
                        self.store.mute(&what, crate::store::now_ms() as u64)
                    } else {
                        self.store.unmute(&what)
                    };
                    let _ = reply.send(r);
                }
                Job::AddInvite(key, uses, note, reply) => {
                    let created = crate::store::now_ms() as u64;
                    let _ = reply.send(self.store.add_invite(&key, uses, &note, created));
                }
                Job::RedeemInvite(job, reply) => {
                    let Redeem {
                        invite,
                        feed,
                        content,
                    } = *job;
                    let r = self.store.redeem_invite(
                        &self.keys,
                        self.sign_cap.as_ref(),
                        &invite,
                        &feed,
                        content,
                    );
                    if let Ok(Ok(msg)) = &r {
                        self.announce(std::slice::from_ref(msg));
                    }
                    let _ = reply.send(r);
                }
                Job::Flush(reply) => {
                    let _ = reply.send(());
                }
                Job::Checked(_) | Job::Publish(..) | Job::NothingMore => {
                    unreachable!("taken apart by Round::add")
                }
            }
        }
    }

    /// Tells the node of messages we wrote ourselves.
    fn announce(&self, msgs: &[VerifiedMsg]) {
        if !msgs.is_empty() {
            let stored: Vec<Appended> = msgs.iter().map(Appended::of).collect();
            (self.on_stored)(&stored);
        }
    }

    /// Group commit of publishes: all of them in one transaction.
    fn write_publishes(
        &self,
        batch: Vec<(Value, oneshot::Sender<Result<VerifiedMsg, PublishError>>)>,
    ) {
        let (contents, replies): (Vec<Value>, Vec<_>) = batch.into_iter().unzip();
        match self
            .store
            .append_local_many(&self.keys, contents, self.sign_cap.as_ref())
        {
            Ok(results) => {
                let stored: Vec<Appended> = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .map(Appended::of)
                    .collect();
                if !stored.is_empty() {
                    (self.on_stored)(&stored);
                }
                for (r, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(r.map_err(PublishError::from));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(PublishError::Batch(why.clone())));
                }
            }
        }
    }

    /// Writes `first` and the checked batches that follow it into one
    /// transaction, each as it is taken ([`Store::ingest_stream`]): ranges
    /// of one feed whole or not at all, other batches message by message.
    /// The round takes them while they are queued, and waits for the next
    /// while the checker has promised one and nothing else waits; other
    /// jobs taken meanwhile go to `round`. Then it announces what was
    /// stored, does the group duties that may give us, and answers each
    /// batch. Gives back the job that starts the next round, if one was
    /// taken.
    fn write_checked(&self, first: Checked, round: &mut Round) -> Option<Job> {
        let mut next = None;
        let mut answers: Vec<Answer> = Vec::new();
        let mut first = Some(first);
        // Whether the checker said another checked batch follows.
        let mut promised = false;
        let mut ended = false;
        let batches = std::iter::from_fn(|| {
            loop {
                let job = match first.take() {
                    Some(c) => Job::Checked(c),
                    None if ended => return None,
                    None => match self.jobs.try_recv() {
                        Ok(j) => j,
                        // The checker's next batch, or its word that none
                        // comes, or whatever else comes first.
                        Err(_) if promised && round.may_wait() => self.jobs.recv().ok()?,
                        Err(_) => return None,
                    },
                };
                let c = match job {
                    Job::Checked(c) if round.lines < ROUND_LINES => c,
                    Job::NothingMore => {
                        promised = false;
                        continue;
                    }
                    other => match round.add(other) {
                        None => continue,
                        Some(j) => {
                            next = Some(j);
                            ended = true;
                            return None;
                        }
                    },
                };
                // Taken: room for the checker's next batch.
                let _ = self.room.try_recv();
                round.lines += c.count;
                promised = c.waits_for_more();
                let Checked {
                    batch,
                    count,
                    reply,
                    invalidate,
                    ..
                } = c;
                if batch.range.is_some() && (!batch.rejections.is_empty() || batch.fresh.is_empty())
                {
                    // A range refused while it was checked: nothing of it
                    // is written.
                    let mut out =
                        vec![LineResult::Rejected("refused with its range".into()); count];
                    for r in batch.rejections {
                        if let Some(slot) = out.get_mut(r.line as usize - 1) {
                            *slot = LineResult::Rejected(r.reason);
                        }
                    }
                    let _ = reply.send(out);
                    continue;
                }
                answers.push(Answer {
                    count,
                    reply,
                    invalidate,
                    range_of: batch
                        .range
                        .and_then(|_| batch.fresh.first().map(VerifiedMsg::author)),
                });
                return Some(batch);
            }
        });
        let written = self.store.ingest_stream(batches);
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("store write failed: {e}");
                for a in answers {
                    if let Some(author) = a.range_of {
                        let _ = a.invalidate.send(author);
                    }
                    let _ = a
                        .reply
                        .send(vec![LineResult::Rejected(e.to_string()); a.count]);
                }
                return next;
            }
        };
        let mut stored: Vec<Appended> = Vec::new();
        let mut refused_feeds = Vec::new();
        let mut outs = Vec::with_capacity(answers.len());
        for ((batch, w), a) in written.into_iter().zip(&answers) {
            outs.push(match w {
                Written::Range(RangeOutcome::Stored { .. }) => batch
                    .fresh
                    .iter()
                    .map(|m| {
                        stored.push(Appended::of(m));
                        LineResult::Stored(m.author(), m.sequence())
                    })
                    .collect(),
                Written::Range(RangeOutcome::Stale) => {
                    if let Some(author) = a.range_of {
                        let _ = a.invalidate.send(author);
                    }
                    vec![
                        LineResult::Rejected(
                            "the store no longer holds the feed as this range expected".into()
                        );
                        a.count
                    ]
                }
                Written::Each { fresh, known } => {
                    stored.extend(
                        batch
                            .fresh
                            .iter()
                            .zip(&fresh)
                            .filter(|(_, o)| matches!(o, Outcome::Stored))
                            .map(|(m, _)| Appended::of(m)),
                    );
                    let s = finish_batch(batch, fresh, known);
                    refused_feeds.extend(s.refused_feeds);
                    let mut out = vec![LineResult::Rejected("not processed".into()); a.count];
                    for (line, r) in s.results {
                        if let Some(slot) = out.get_mut(line as usize - 1) {
                            *slot = r;
                        }
                    }
                    out
                }
            });
        }
        // Each checker that placed a batch of the round forgets the feeds
        // the store refused a message of.
        for f in &refused_feeds {
            for a in &answers {
                let _ = a.invalidate.send(*f);
            }
        }
        if !stored.is_empty() {
            (self.on_stored)(&stored);
            // What arrived may be a member's request we answer, or an epoch
            // whose key we must ask for.
            if self.store.take_groups_changed() {
                match self
                    .store
                    .group_duties(&self.keys, self.sign_cap.as_ref(), None)
                {
                    Ok(msgs) => self.announce(&msgs),
                    Err(e) => tracing::warn!("group duties not published: {e}"),
                }
            }
        }
        for (a, out) in answers.into_iter().zip(outs) {
            let _ = a.reply.send(out);
        }
        next
    }
}

/// Where to answer a checked batch written in a round.
struct Answer {
    /// Lines submitted.
    count: usize,
    reply: oneshot::Sender<Vec<LineResult>>,
    invalidate: mpsc::Sender<FeedId>,
    /// The feed, for a range.
    range_of: Option<FeedId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::RangeAnchor;
    use std::sync::Mutex;

    /// Each message announced, and the thread that announced it.
    type Announced = Arc<Mutex<Vec<(String, FeedId, u64)>>>;

    /// A writer on a fresh store, and what its announcer was called with.
    fn writer(dir: &std::path::Path) -> (Writer, Arc<Store>, Keypair, Announced) {
        let keys = Keypair::from_seed(&[7; 32]);
        let store = Arc::new(Store::open_as(&dir.join("store.redb"), &keys).unwrap());
        let announced: Announced = Arc::default();
        let seen = announced.clone();
        let writer = Writer::start(store.clone(), keys.clone(), None, move |stored| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            let mut seen = seen.lock().unwrap();
            for a in stored {
                seen.push((thread.clone(), a.author, a.seq));
            }
        })
        .unwrap();
        (writer, store, keys, announced)
    }

    fn post(text: &str) -> Value {
        crate::feed::json::parse(format!(r#"{{"type":"post","text":"{text}"}}"#).as_bytes())
            .unwrap()
    }

    /// Writes asked for on the async threads are made on the writer's own
    /// thread, and so are the announcements.
    #[test]
    fn every_write_runs_on_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, store, keys, announced) = writer(dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (noted_on, msg) = rt.block_on(async {
            let noted_on = Arc::new(Mutex::new(None));
            let on = noted_on.clone();
            let rec = writer
                .note_peer("net:127.0.0.1:1~shs:x", move |r| {
                    *on.lock().unwrap() = std::thread::current().name().map(str::to_string);
                    r.source = "connect".into();
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(rec.source, "connect");
            let msg = writer.publish(post("a")).await.unwrap();
            let noted_on = noted_on.lock().unwrap().clone();
            (noted_on, msg)
        });
        assert_eq!(noted_on.as_deref(), Some("shoal-writer"));
        let group = {
            let writer = writer.clone();
            rt.block_on(rt.spawn_blocking(move || writer.group_write(&GroupOp::Create)))
                .unwrap()
                .unwrap()
        };
        assert_eq!(group.len(), 1);
        assert_eq!(
            *announced.lock().unwrap(),
            [
                ("shoal-writer".to_string(), keys.id(), msg.sequence()),
                ("shoal-writer".to_string(), keys.id(), group[0].sequence()),
            ]
        );
        assert_eq!(store.latest(&keys.id()).unwrap().unwrap().sequence, 2);
        assert_eq!(store.peers().unwrap().len(), 1);
    }

    /// The writer tells which stored messages may link a blob (their text
    /// holds an `&`), so that the blob fetcher reads back only those; a
    /// message naming a blob is never announced as one that cannot, not
    /// even when the sigil came written as an escape.
    #[test]
    fn a_stored_message_is_announced_as_linking_a_blob_only_when_it_may() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keypair::from_seed(&[7; 32]);
        let store = Arc::new(Store::open_as(&dir.path().join("store.redb"), &keys).unwrap());
        let seen: Arc<Mutex<Vec<Appended>>> = Arc::default();
        let into = seen.clone();
        let writer = Writer::start(store, keys.clone(), None, move |stored| {
            into.lock().unwrap().extend_from_slice(stored);
        })
        .unwrap();
        let blob = format!("&{}.sha256", crate::crypto::b64_encode(&[9; 32]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            writer.publish(post("no link here")).await.unwrap();
            writer
                .publish(post(&format!("a photo {blob}")))
                .await
                .unwrap();
            // The sigil written as an escape in the text given: the stored
            // text is JSON.stringify's, which never escapes `&`.
            let escaped = format!("another \\u0026{}", &blob[1..]);
            writer.publish(post(&escaped)).await.unwrap();
            writer.flush().await;
        });
        let me = keys.id();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Appended {
                    author: me,
                    seq: 1,
                    may_link_blob: false
                },
                Appended {
                    author: me,
                    seq: 2,
                    may_link_blob: true
                },
                Appended {
                    author: me,
                    seq: 3,
                    may_link_blob: true
                },
            ]
        );
    }

    /// Message 1 of the feed of `seed`, checked (ahead of the store) by
    /// `checker`, as the pipeline hands it to the writer.
    fn checked(
        checker: &mut super::super::check::Checker<'_>,
        seed: u8,
        more: bool,
        range: bool,
    ) -> (Checked, oneshot::Receiver<Vec<LineResult>>) {
        let keys = Keypair::from_seed(&[seed; 32]);
        let msg =
            crate::feed::json::to_compact(&crate::feed::build(&keys, None, 1.0, post("a"), None));
        let batch = super::super::check::LineBatch {
            lines: vec![(1, Ok(super::super::check::Line::In(0..msg.len())))],
            text: msg,
        };
        let (mut batch, _) = checker.check(batch).unwrap();
        assert_eq!(batch.fresh.len(), 1);
        // A feed's first message is also its newest, as a range.
        batch.range = range.then_some(RangeAnchor::Newest);
        let (reply, answer) = oneshot::channel();
        let (invalidate, _) = mpsc::channel();
        let c = Checked {
            batch,
            count: 1,
            reply,
            invalidate,
            more,
        };
        (c, answer)
    }

    /// A writer on a fresh store, and the number of messages of each
    /// commit it announced.
    fn counting_writer(dir: &std::path::Path) -> (Writer, Arc<Store>, Arc<Mutex<Vec<usize>>>) {
        let keys = Keypair::from_seed(&[7; 32]);
        let store = Arc::new(Store::open_as(&dir.join("store.redb"), &keys).unwrap());
        let commits: Arc<Mutex<Vec<usize>>> = Arc::default();
        let into = commits.clone();
        let writer = Writer::start(store.clone(), keys, None, move |stored| {
            into.lock().unwrap().push(stored.len());
        })
        .unwrap();
        (writer, store, commits)
    }

    /// A checked range that says the checker has more in hand is not
    /// committed alone: its round waits for the next batch, and neither is
    /// answered before that batch comes. (A first sync whose rounds took
    /// only what had queued committed up to 139 times for 100,000
    /// messages.)
    #[test]
    fn a_round_waits_for_the_batch_the_checker_has_in_hand() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, store, commits) = counting_writer(dir.path());
        let mut checker = super::super::check::Checker::new(&store, None);
        let (first, mut first_answer) = checked(&mut checker, 1, true, true);
        let (second, second_answer) = checked(&mut checker, 2, false, true);
        writer.queue_checked(first).ok().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            commits.lock().unwrap().is_empty(),
            "committed before the promised batch came"
        );
        assert!(
            first_answer.try_recv().is_err(),
            "answered before it was written"
        );
        writer.queue_checked(second).ok().unwrap();
        let second = second_answer.blocking_recv().unwrap();
        assert!(
            matches!(second[..], [LineResult::Stored(_, 1)]),
            "{second:?}"
        );
        assert!(matches!(
            first_answer.try_recv().unwrap()[..],
            [LineResult::Stored(_, 1)]
        ));
        // The round's messages are announced together, once it committed.
        assert_eq!(*commits.lock().unwrap(), [2]);
    }

    /// A range and a batch that is not one, taken in one round, are
    /// written in one transaction and announced together: ranges once had
    /// a commit (and fsync) of their own.
    #[test]
    fn a_round_writes_ranges_and_batches_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, store, commits) = counting_writer(dir.path());
        let mut checker = super::super::check::Checker::new(&store, None);
        let (range, range_answer) = checked(&mut checker, 1, true, true);
        let (batch, batch_answer) = checked(&mut checker, 2, false, false);
        writer.queue_checked(range).ok().unwrap();
        writer.queue_checked(batch).ok().unwrap();
        for answer in [range_answer, batch_answer] {
            let got = answer.blocking_recv().unwrap();
            assert!(matches!(got[..], [LineResult::Stored(_, 1)]), "{got:?}");
        }
        assert_eq!(*commits.lock().unwrap(), [2]);
        assert_eq!(
            store
                .latest(&Keypair::from_seed(&[2; 32]).id())
                .unwrap()
                .unwrap()
                .sequence,
            1
        );
    }

    /// Messages at sequences the store already holds, in several batches
    /// of one round, are checked against it with the round, and each batch is
    /// answered with its own: a fork refused in the first, a duplicate
    /// in the second, each beside a fresh message that is stored.
    #[test]
    fn held_messages_of_a_rounds_batches_are_each_answered_with_their_own() {
        use super::super::check::{Checker, Line, LineBatch};
        let dir = tempfile::tempdir().unwrap();
        let (writer, store, _) = counting_writer(dir.path());
        let first = |seed: u8, text: &str| {
            crate::feed::json::to_compact(&crate::feed::build(
                &Keypair::from_seed(&[seed; 32]),
                None,
                1.0,
                post(text),
                None,
            ))
        };
        let batch_of = |checker: &mut Checker<'_>, msgs: [Vec<u8>; 2], more: bool| {
            let mut text = msgs[0].clone();
            text.extend_from_slice(&msgs[1]);
            let lines = vec![
                (1, Ok(Line::In(0..msgs[0].len()))),
                (2, Ok(Line::In(msgs[0].len()..text.len()))),
            ];
            let (batch, _) = checker.check(LineBatch { text, lines }).unwrap();
            let (reply, answer) = oneshot::channel();
            let (invalidate, _) = mpsc::channel();
            let c = Checked {
                batch,
                count: 2,
                reply,
                invalidate,
                more,
            };
            (c, answer)
        };
        // Feeds 1 and 2 hold their first message.
        let (c, answer) = batch_of(
            &mut Checker::new(&store, None),
            [first(1, "a"), first(2, "a")],
            false,
        );
        writer.queue_checked(c).ok().unwrap();
        answer.blocking_recv().unwrap();
        // A range that says more follows keeps the round open for the two
        // batches queued after it.
        let mut checker = Checker::new(&store, None);
        let (range, range_answer) = checked(&mut checker, 5, true, true);
        let (a, a_answer) = batch_of(&mut checker, [first(1, "fork"), first(3, "a")], false);
        let (b, b_answer) = batch_of(&mut checker, [first(4, "a"), first(2, "a")], false);
        for c in [range, a, b] {
            writer.queue_checked(c).ok().unwrap();
        }
        writer.nothing_more();
        assert!(matches!(
            range_answer.blocking_recv().unwrap()[..],
            [LineResult::Stored(_, 1)]
        ));
        let a = a_answer.blocking_recv().unwrap();
        assert!(
            matches!(a[..], [LineResult::Rejected(_), LineResult::Stored(_, 1)]),
            "{a:?}"
        );
        let b = b_answer.blocking_recv().unwrap();
        assert!(
            matches!(
                b[..],
                [LineResult::Stored(_, 1), LineResult::Duplicate(_, 1)]
            ),
            "{b:?}"
        );
        let forks = store.forks().unwrap();
        assert_eq!(forks.len(), 1);
        assert_eq!(forks[0].0, Keypair::from_seed(&[1; 32]).id());
    }

    /// A round that waits for the checker's next batch commits at the
    /// checker's word that none comes, or as soon as anything else is to
    /// be written (a publish does not wait on the checker).
    #[test]
    fn a_waiting_round_commits_when_nothing_more_comes_or_a_publish_does() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, store, commits) = counting_writer(dir.path());
        let mut checker = super::super::check::Checker::new(&store, None);
        let (first, first_answer) = checked(&mut checker, 1, true, true);
        writer.queue_checked(first).ok().unwrap();
        writer.nothing_more();
        assert!(matches!(
            first_answer.blocking_recv().unwrap()[..],
            [LineResult::Stored(_, 1)]
        ));
        assert_eq!(*commits.lock().unwrap(), [1]);

        let (second, second_answer) = checked(&mut checker, 2, true, true);
        writer.queue_checked(second).ok().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let published = rt
            .block_on(writer.publish(post("not kept waiting")))
            .unwrap();
        assert_eq!(published.sequence(), 1);
        assert!(matches!(
            second_answer.blocking_recv().unwrap()[..],
            [LineResult::Stored(_, 1)]
        ));
        assert_eq!(*commits.lock().unwrap(), [1, 1, 1]);
    }

    /// Regression: a batch of an EBT session is committed without waiting
    /// for the checker's next one, even when the checker has more in hand.
    /// The session gathers no more while four of its batches wait to be
    /// written; a round that waited for all of them left the checker idle
    /// while it was written, and a first sync over EBT alone took about a
    /// quarter longer.
    #[test]
    fn a_round_does_not_wait_after_a_batch_that_is_not_a_range() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, store, commits) = counting_writer(dir.path());
        let mut checker = super::super::check::Checker::new(&store, None);
        let (first, mut first_answer) = checked(&mut checker, 1, true, false);
        writer.queue_checked(first).ok().unwrap();
        // Only so that a writer that waits fails instead of hanging.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let answer = loop {
            match first_answer.try_recv() {
                Ok(a) => break a,
                Err(oneshot::error::TryRecvError::Empty) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the round waited for a batch the checker had in hand"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("no answer: {e}"),
            }
        };
        assert!(
            matches!(answer[..], [LineResult::Stored(_, 1)]),
            "{answer:?}"
        );
        assert_eq!(*commits.lock().unwrap(), [1]);
    }

    /// A blocking write asked for on a thread that drives async tasks is
    /// refused: it would stall every task of that thread.
    #[test]
    #[should_panic(expected = "Cannot block the current thread")]
    fn a_blocking_write_on_an_async_worker_panics() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, ..) = writer(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _ = rt.block_on(async { writer.mark_read(&[1]) });
    }
}
