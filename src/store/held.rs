//! Held ranges: feeds held from above sequence 1.
//!
//! A feed fetched newest first is held from some sequence on, its older
//! history filled in later, a range at a time, downwards. Owns the
//! [`HELD`] table (the lowest message held and the `previous` it names,
//! for each such feed) and the writes of such ranges: the newest range of
//! a feed of which nothing is held, and each range just below the lowest
//! held. Ranges come placed by [`crate::feed::chain_range`]; here they are
//! checked against what the store holds at the moment of the write, and
//! written whole in one transaction or not at all. Imports `crypto`,
//! `feed` and the store's own tables; nothing else.

use redb::{ReadableDatabase as _, ReadableTable as _};

use super::schema::*;
use super::{Placed, Result, Store, Writer, Written};
use crate::crypto::{FeedId, MsgId};
use crate::feed::{RangeAnchor, VerifiedMsg};

/// What we hold of a feed that is held from above sequence 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldRange {
    /// The lowest sequence held.
    pub from: u64,
    /// The `previous` its message names: what the range below must end in.
    pub previous: MsgId,
    /// The latest sequence held.
    pub to: u64,
}

impl HeldRange {
    /// Where the range just below it is to sit.
    pub fn anchor(&self) -> RangeAnchor {
        RangeAnchor::Below {
            sequence: self.from,
            previous: self.previous,
        }
    }
}

/// What became of a range handed to [`Store::ingest_range`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Written: the feed is now held from `from` (1 when whole).
    Stored {
        /// The lowest sequence now held.
        from: u64,
    },
    /// Not written: the store no longer holds the feed as the range
    /// expected (a newest range of a feed something of which arrived
    /// meanwhile, or a range below that no longer meets the held range).
    Stale,
}

fn encode(from: u64, previous: &MsgId) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&from.to_be_bytes());
    v[8..].copy_from_slice(&previous.0);
    v
}

pub(super) fn decode(v: &[u8; 40]) -> (u64, MsgId) {
    (
        u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        MsgId(v[8..].try_into().expect("32 bytes")),
    )
}

/// Whether `feed` is held from above sequence 1 by pruning: what was
/// pruned is not taken back.
fn was_pruned(txn: &redb::WriteTransaction, feed: &FeedId) -> Result<bool> {
    Ok(txn.open_table(PRUNED)?.get(&feed.0)?.is_some())
}

impl Store {
    /// The range held of `feed`, when it is held from above sequence 1.
    pub fn held_range(&self, feed: &FeedId) -> Result<Option<HeldRange>> {
        let txn = self.db().begin_read()?;
        let held = txn.open_table(HELD)?;
        let Some((from, previous)) = held.get(&feed.0)?.map(|v| decode(v.value())) else {
            return Ok(None);
        };
        let to = txn
            .open_table(LATEST)?
            .get(&feed.0)?
            .map_or(from, |v| super::decode_latest(v.value()).sequence);
        Ok(Some(HeldRange { from, previous, to }))
    }

    /// Every feed held from above sequence 1 whose older history is still
    /// to come, with its range: not the feeds pruned (held so by choice).
    pub fn partial_feeds(&self) -> Result<Vec<(FeedId, HeldRange)>> {
        let txn = self.db().begin_read()?;
        let held = txn.open_table(HELD)?;
        let latest = txn.open_table(LATEST)?;
        let pruned = match txn.open_table(PRUNED) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for e in held.iter()? {
            let (k, v) = e?;
            if let Some(p) = &pruned
                && p.get(k.value())?.is_some()
            {
                continue;
            }
            let (from, previous) = decode(v.value());
            let to = latest
                .get(k.value())?
                .map_or(from, |v| super::decode_latest(v.value()).sequence);
            out.push((FeedId(*k.value()), HeldRange { from, previous, to }));
        }
        Ok(out)
    }

    /// The lowest sequence held of `feed` (1 for a whole feed, and for a
    /// feed not held at all).
    pub fn held_from(&self, feed: &FeedId) -> Result<u64> {
        let txn = self.db().begin_read()?;
        let held = txn.open_table(HELD)?;
        Ok(held.get(&feed.0)?.map_or(1, |v| decode(v.value()).0))
    }

    /// Writes a range of one feed, placed by
    /// [`chain_range`](crate::feed::chain_range) at `anchor`, in ONE write
    /// transaction: the newest messages of a feed of which nothing is held
    /// ([`RangeAnchor::Newest`]; they become its latest), or the messages
    /// just below the lowest held ([`RangeAnchor::Below`]; never replacing
    /// a contact edge, profile field, device link or vote of a newer
    /// message of the same author). Either is marked unread as any message
    /// that arrives is. The held range is recorded with it. When the
    /// store does not hold the feed as `anchor` says (something changed
    /// since), nothing is written: [`RangeOutcome::Stale`].
    pub fn ingest_range(&self, anchor: RangeAnchor, msgs: &[VerifiedMsg]) -> Result<RangeOutcome> {
        match self.ingest_stream([(anchor, msgs)])?.pop() {
            Some((_, Written::Range(o))) => Ok(o),
            _ => unreachable!("one range, one outcome"),
        }
    }
}

impl Placed for (RangeAnchor, &[VerifiedMsg]) {
    fn msgs(&self) -> &[VerifiedMsg] {
        self.1
    }

    fn range(&self) -> Option<RangeAnchor> {
        Some(self.0)
    }
}

impl Writer<'_> {
    /// Writes one range at `anchor` when the store holds its feed as the
    /// anchor says; else nothing ([`RangeOutcome::Stale`]).
    pub(super) fn put_range(
        &mut self,
        txn: &redb::WriteTransaction,
        anchor: RangeAnchor,
        msgs: &[VerifiedMsg],
        opened: &[Option<(Vec<u8>, crate::feed::json::Value)>],
        received: f64,
    ) -> Result<RangeOutcome> {
        let (Some(first), Some(last)) = (msgs.first(), msgs.last()) else {
            return Ok(RangeOutcome::Stale);
        };
        let author = first.author();
        let held = self.held.get(&author.0)?.map(|v| decode(v.value()));
        let latest = self.latest(&author)?;
        let fits = match anchor {
            RangeAnchor::Newest => latest.is_none(),
            RangeAnchor::Below { sequence, previous } => {
                held == Some((sequence, previous))
                    && last.sequence() + 1 == sequence
                    && !was_pruned(txn, &author)?
            }
        };
        if !fits {
            return Ok(RangeOutcome::Stale);
        }
        self.older_than = match anchor {
            RangeAnchor::Newest => None,
            RangeAnchor::Below { .. } => Some(self.next_rx),
        };
        for (i, m) in msgs.iter().enumerate() {
            let o = opened.get(i).and_then(Option::as_ref);
            self.store_msg(m, received, o, true)?;
        }
        self.older_than = None;
        let from = first.sequence();
        match first.previous() {
            Some(previous) if from > 1 => {
                self.held.insert(&author.0, &encode(from, &previous))?;
            }
            _ => {
                self.held.remove(&author.0)?;
            }
        }
        Ok(RangeOutcome::Stored { from })
    }

    /// Whether an author's latest-wins entry written at `rx` is to be kept
    /// over the message being written: it is when this write is a range
    /// below what the feed held and the entry is older than the write
    /// (so it came from a newer message of the author).
    pub(super) fn keeps_newer(&self, rx: u64) -> bool {
        self.older_than.is_some_and(|first| rx < first)
    }

    /// Whether a vote entry (which keeps no receive sequence) is to be
    /// kept over the vote being written: see [`Writer::keeps_newer`].
    pub(super) fn keeps_newer_vote(&mut self, key: &[u8; 65]) -> Result<bool> {
        if self.older_than.is_none() {
            return Ok(false);
        }
        if self.older_votes.contains(key) {
            return Ok(false);
        }
        let exists = self.votes.get(key)?.is_some();
        if !exists {
            self.older_votes.insert(*key);
        }
        Ok(exists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::feed::{self, Value};

    fn json(s: &str) -> Value {
        feed::json::parse(s.as_bytes()).unwrap()
    }

    /// A feed of `kp` whose contents are `contents`, each message placed
    /// on its own (as a peer would serve it).
    fn feed_of(kp: &Keypair, contents: &[Value]) -> Vec<VerifiedMsg> {
        let items: Vec<(f64, Value)> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| (1000.0 + i as f64, c.clone()))
            .collect();
        crate::store::tests::feed_of(kp, &items)
    }

    fn posts(n: usize) -> Vec<Value> {
        (1..=n)
            .map(|i| json(&format!(r#"{{"type":"post","text":"m{i}"}}"#)))
            .collect()
    }

    #[test]
    fn a_feed_fetched_newest_first_is_held_from_its_range_and_filled_downwards() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let kp = Keypair::from_seed(&[0x61; 32]);
        let feed = feed_of(&kp, &posts(10));
        let id = kp.id();
        assert_eq!(
            store.ingest_range(RangeAnchor::Newest, &feed[6..]).unwrap(),
            RangeOutcome::Stored { from: 7 }
        );
        let held = store.held_range(&id).unwrap().unwrap();
        assert_eq!((held.from, held.to), (7, 10));
        assert_eq!(held.previous, feed[5].id());
        assert_eq!(store.latest(&id).unwrap().unwrap().sequence, 10);
        // Nothing is served from below what is held: it would not chain.
        assert!(store.feed(&id, 0, 100).unwrap().is_empty());
        assert_eq!(store.feed(&id, 6, 100).unwrap().len(), 4);
        // The log of the feed starts where it is held.
        let (page, next) = store.messages_after(Some(&id), 0, 100).unwrap();
        assert_eq!((page.len(), next), (4, 10));
        // A second newest range, or one that does not meet the held one,
        // is stale: nothing written.
        assert_eq!(
            store.ingest_range(RangeAnchor::Newest, &feed[8..]).unwrap(),
            RangeOutcome::Stale
        );
        assert_eq!(
            store.ingest_range(held.anchor(), &feed[2..5]).unwrap(),
            RangeOutcome::Stale
        );
        assert_eq!(
            store.ingest_range(held.anchor(), &feed[3..6]).unwrap(),
            RangeOutcome::Stored { from: 4 }
        );
        let held = store.held_range(&id).unwrap().unwrap();
        assert_eq!(store.partial_feeds().unwrap(), vec![(id, held)]);
        assert_eq!(
            store.ingest_range(held.anchor(), &feed[..3]).unwrap(),
            RangeOutcome::Stored { from: 1 }
        );
        assert_eq!(store.held_range(&id).unwrap(), None);
        assert!(store.partial_feeds().unwrap().is_empty());
        let all = store.feed(&id, 0, 100).unwrap();
        let seqs: Vec<MsgId> = all.iter().map(|m| m.key).collect();
        let want: Vec<MsgId> = feed.iter().map(VerifiedMsg::id).collect();
        assert_eq!(seqs, want);
        // The feed continues from its latest as any other.
        let next = feed::build(
            &kp,
            Some(&feed[9].state()),
            2000.0,
            json(r#"{"type":"post","text":"m11"}"#),
            None,
        );
        let next = feed::validate(Some(&feed[9].state()), None, next).unwrap();
        assert_eq!(
            store.ingest(vec![next]).unwrap(),
            vec![super::super::Outcome::Stored]
        );
    }

    /// Ranges written together are each placed against what the ones
    /// before them wrote, and a stale one among them writes nothing while
    /// the others are stored.
    #[test]
    fn ranges_written_together_are_placed_in_order_and_each_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let a = Keypair::from_seed(&[0x62; 32]);
        let b = Keypair::from_seed(&[0x63; 32]);
        let fa = feed_of(&a, &posts(8));
        let fb = feed_of(&b, &posts(4));
        let below_a = RangeAnchor::Below {
            sequence: 5,
            previous: fa[3].id(),
        };
        let stale_b = RangeAnchor::Below {
            sequence: 3,
            previous: fb[1].id(),
        };
        let ranges: [(RangeAnchor, &[VerifiedMsg]); 4] = [
            (RangeAnchor::Newest, &fa[4..]),
            (below_a, &fa[..4]),
            (stale_b, &fb[..2]),
            (RangeAnchor::Newest, &fb[2..]),
        ];
        let out: Vec<Written> = store
            .ingest_stream(ranges)
            .unwrap()
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(
            out,
            vec![
                Written::Range(RangeOutcome::Stored { from: 5 }),
                Written::Range(RangeOutcome::Stored { from: 1 }),
                Written::Range(RangeOutcome::Stale),
                Written::Range(RangeOutcome::Stored { from: 3 }),
            ]
        );
        assert_eq!(store.held_range(&a.id()).unwrap(), None);
        assert_eq!(store.feed(&a.id(), 0, 100).unwrap().len(), 8);
        assert_eq!(store.latest(&a.id()).unwrap().unwrap().sequence, 8);
        // b's stale range wrote nothing: b is held from 3 only.
        assert_eq!(store.held_range(&b.id()).unwrap().unwrap().from, 3);
        assert_eq!(store.feed(&b.id(), 2, 100).unwrap().len(), 2);
        // A newest range after a range below is its feed's latest.
        assert_eq!(store.latest(&b.id()).unwrap().unwrap().sequence, 4);
        // Nothing stored: nothing committed, every range answered.
        let again = store.ingest_range(RangeAnchor::Newest, &fa[6..]).unwrap();
        assert_eq!(again, RangeOutcome::Stale);
    }

    #[test]
    fn older_history_never_replaces_what_newer_messages_of_the_author_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let kp = Keypair::from_seed(&[0x62; 32]);
        let friend = Keypair::from_seed(&[0x63; 32]).id();
        let follow = |on: bool| {
            json(&format!(
                r#"{{"type":"contact","contact":"{friend}","following":{on}}}"#
            ))
        };
        let name = |n: &str| {
            json(&format!(
                r#"{{"type":"about","about":"{}","name":"{n}"}}"#,
                kp.id()
            ))
        };
        let target = "%AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=.sha256";
        let vote = |v: u8| {
            json(&format!(
                r#"{{"type":"vote","vote":{{"link":"{target}","value":{v},"expression":"Like"}}}}"#
            ))
        };
        // Old: follows, is called "old", likes; later (within the old
        // range) likes again. New: unfollows, is called "new", unlikes.
        let contents = vec![
            follow(true),
            name("old"),
            vote(1),
            vote(1),
            follow(false),
            name("new"),
            vote(0),
        ];
        let feed = feed_of(&kp, &contents);
        store.ingest_range(RangeAnchor::Newest, &feed[4..]).unwrap();
        let held = store.held_range(&kp.id()).unwrap().unwrap();
        store.ingest_range(held.anchor(), &feed[..4]).unwrap();
        assert!(
            store.contacts_of(&kp.id()).unwrap().is_empty(),
            "the newer unfollow stands"
        );
        let reader = store.reader().unwrap();
        let names: Vec<String> = reader
            .about_fields(&crate::feed::content::Link::Feed(kp.id()))
            .unwrap()
            .into_iter()
            .filter(|f| f.field == ABOUT_NAME)
            .map(|f| f.text)
            .collect();
        assert_eq!(names, vec!["new".to_string()]);
        let likes = reader
            .likes(&crate::feed::content::Link::Msg(
                MsgId::parse(target).unwrap(),
            ))
            .unwrap();
        assert_eq!(likes, 0, "the newer unlike stands");
    }
}
