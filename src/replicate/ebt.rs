//! Epidemic broadcast trees (ssb-ebt 5, epidemic-broadcast-trees 7): the
//! per-peer state machine, pure.
//!
//! Owns the notes (vector clock entries) exchanged on an `ebt.replicate`
//! duplex stream and the decision of what to send the peer: no I/O, no
//! store, no clocks. A session feeds it what the peer says and what the
//! store holds, and carries out the actions it returns. Imports only
//! `crypto` (feed ids).
//!
//! A note is a JSON integer per feed: `-1` means "I do not replicate this
//! feed"; otherwise `seq << 1 | flag`, where `seq` is the latest sequence the
//! sender holds and `flag` 0 asks the other side to send what comes after it
//! (1 asks it not to).
//!
//! The state grows with the feeds we replicate or hold, and with at most
//! [`MAX_UNKNOWN_FEEDS`] others the peer names: notes about further feeds
//! we neither replicate nor hold are ignored, so a peer naming ever new
//! feeds cannot make a session grow without bound.

use std::collections::{HashMap, HashSet};

use crate::crypto::FeedId;

/// Feeds we neither replicate nor hold that one session answers and keeps
/// track of (to stream them should we come to hold them); notes about any
/// further such feeds are ignored.
pub const MAX_UNKNOWN_FEEDS: usize = 4096;

/// One feed's entry in a vector clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// `-1`: the sender does not replicate this feed.
    Skip,
    /// The sender holds the feed up to `seq` (0 = nothing) and wants the
    /// messages after it when `receive` is set.
    Have {
        /// Latest sequence held.
        seq: u64,
        /// Whether the sender wants the messages after `seq`.
        receive: bool,
    },
}

impl Note {
    /// The integer on the wire.
    pub fn encode(self) -> i64 {
        match self {
            Note::Skip => -1,
            Note::Have { seq, receive } => ((seq as i64) << 1) | i64::from(!receive),
        }
    }

    /// Reads a wire integer; `None` for values no peer may send (below -1).
    pub fn decode(n: i64) -> Option<Note> {
        match n {
            -1 => Some(Note::Skip),
            n if n >= 0 => Some(Note::Have {
                seq: (n >> 1) as u64,
                receive: n & 1 == 0,
            }),
            _ => None,
        }
    }
}

/// What a session must do after an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    /// Notes to send the peer (one JSON object).
    pub notes: Vec<(FeedId, Note)>,
    /// Feeds to stream to the peer from this sequence on (inclusive), old
    /// messages first, then live ones as they are stored.
    pub send_from: Vec<(FeedId, u64)>,
    /// Feeds the peer no longer wants: stop streaming them.
    pub stop: Vec<FeedId>,
    /// Feeds to fetch newest first (see [`Ebt::newest_first`]), each with
    /// the latest sequence the peer holds.
    pub fetch_newest: Vec<(FeedId, u64)>,
}

/// The state of one EBT session with one peer.
#[derive(Debug, Default)]
pub struct Ebt {
    /// Latest sequence we hold per feed we know of.
    local: HashMap<FeedId, u64>,
    /// Feeds we replicate: we ask the peer for them.
    wanted: HashSet<FeedId>,
    /// What we last told the peer.
    told: HashMap<FeedId, Note>,
    /// Feeds we stream to the peer, with the next sequence to send.
    streaming: HashMap<FeedId, u64>,
    /// Feeds whose messages we no longer accept from this peer (it sent an
    /// invalid one).
    refused: HashSet<FeedId>,
    /// How many feeds the peer named that we neither replicate nor held
    /// when it first named them (at most [`MAX_UNKNOWN_FEEDS`]).
    unknown: usize,
    /// Feeds of which we hold nothing that are to be fetched newest first:
    /// we tell the peer we replicate them but want nothing streamed yet,
    /// until their newest messages are in (or that failed).
    newest: HashSet<FeedId>,
    /// How many messages a newest-first fetch takes: a peer holding no more
    /// than this of a feed streams it from the start instead.
    newest_count: u64,
}

impl Ebt {
    /// A session replicating `wanted`, given what we hold (`local`, which may
    /// hold more feeds than `wanted`: those we serve but do not ask for).
    pub fn new(wanted: HashSet<FeedId>, local: HashMap<FeedId, u64>) -> Ebt {
        Ebt {
            local,
            wanted,
            ..Ebt::default()
        }
    }

    fn our_note(&self, feed: &FeedId) -> Note {
        let seq = self.local.get(feed).copied().unwrap_or(0);
        if self.refused.contains(feed) || self.newest.contains(feed) {
            // Ask for nothing more from this peer, but keep serving it.
            return Note::Have {
                seq,
                receive: false,
            };
        }
        if self.wanted.contains(feed) {
            Note::Have { seq, receive: true }
        } else if self.local.contains_key(feed) {
            Note::Have {
                seq,
                receive: false,
            }
        } else {
            Note::Skip
        }
    }

    /// Marks wanted feeds of which we hold nothing to be fetched newest
    /// first, `count` messages: call before [`Ebt::start`] (or
    /// [`Ebt::want`], for feeds that become wanted). When the peer's note
    /// says it holds more than `count` of one, [`Actions::fetch_newest`]
    /// names it; the session fetches its newest messages and calls
    /// [`Ebt::newest_held`] (or [`Ebt::newest_failed`]). A peer holding
    /// less streams it from the start, as any feed.
    pub fn newest_first(&mut self, feeds: impl IntoIterator<Item = FeedId>, count: u64) {
        self.newest_count = count;
        for f in feeds {
            if self.local.get(&f).is_none_or(|s| *s == 0) {
                self.newest.insert(f);
            }
        }
    }

    /// Whether `feed` waits for its newest messages.
    pub fn waits_newest(&self, feed: &FeedId) -> bool {
        self.newest.contains(feed)
    }

    /// The feeds that wait for their newest messages.
    pub fn waiting_newest(&self) -> Vec<FeedId> {
        self.newest.iter().copied().collect()
    }

    /// The newest messages of `feed` are held, up to `seq` (fetched by this
    /// session or another): ask the peer for what comes after.
    pub fn newest_held(&mut self, feed: &FeedId, seq: u64) -> Actions {
        self.newest.remove(feed);
        let held = self.local.entry(*feed).or_insert(0);
        *held = (*held).max(seq);
        self.tell(feed)
    }

    /// Fetching `feed` newest first from this peer failed: ask the peer
    /// for it from what we hold, as any feed.
    pub fn newest_failed(&mut self, feed: &FeedId) -> Actions {
        self.newest.remove(feed);
        self.tell(feed)
    }

    /// Our note about `feed`, when it changed.
    fn tell(&mut self, feed: &FeedId) -> Actions {
        let note = self.our_note(feed);
        let mut out = Actions::default();
        if self.told.get(feed) != Some(&note) {
            self.told.insert(*feed, note);
            out.notes.push((*feed, note));
        }
        out
    }

    /// Our opening clock: every feed we replicate.
    pub fn start(&mut self) -> Actions {
        let mut feeds: Vec<FeedId> = self.wanted.iter().copied().collect();
        feeds.sort();
        let notes: Vec<(FeedId, Note)> = feeds.iter().map(|f| (*f, self.our_note(f))).collect();
        for (f, n) in &notes {
            self.told.insert(*f, *n);
        }
        Actions {
            notes,
            ..Actions::default()
        }
    }

    /// The peer sent notes.
    pub fn on_notes(&mut self, notes: &[(FeedId, Note)]) -> Actions {
        let mut out = Actions::default();
        for (feed, note) in notes {
            // Answer feeds we have not told the peer about yet.
            if !self.told.contains_key(feed) {
                if !self.wanted.contains(feed) && !self.local.contains_key(feed) {
                    if self.unknown >= MAX_UNKNOWN_FEEDS {
                        continue;
                    }
                    self.unknown += 1;
                }
                let ours = self.our_note(feed);
                self.told.insert(*feed, ours);
                out.notes.push((*feed, ours));
            }
            if self.newest.contains(feed)
                && let Note::Have { seq, .. } = *note
                && seq > 0
            {
                if seq > self.newest_count {
                    out.fetch_newest.push((*feed, seq));
                } else {
                    let plain = self.newest_failed(feed);
                    out.notes.extend(plain.notes);
                }
            }
            match *note {
                Note::Have { seq, receive: true } => {
                    let next = seq + 1;
                    let ours = self.local.get(feed).copied().unwrap_or(0);
                    let already = self.streaming.get(feed).copied();
                    // Start (or restart further back) when we hold more.
                    if ours >= next && already.is_none_or(|n| n > next) {
                        self.streaming.insert(*feed, next);
                        out.send_from.push((*feed, next));
                    } else if already.is_none() {
                        // Nothing to send yet: stream it once we hold it (it
                        // may reach us from another peer).
                        self.streaming.insert(*feed, next);
                        out.send_from.push((*feed, next));
                    }
                }
                Note::Have { receive: false, .. } | Note::Skip => {
                    if self.streaming.remove(feed).is_some() {
                        out.stop.push(*feed);
                    }
                }
            }
        }
        out
    }

    /// The feeds we replicate changed during the session (a follow, an
    /// unfollow, a block, a followed feed's follows): tell the peer at once
    /// what we now want of each feed that changed, rather than on the next
    /// connection.
    pub fn want(&mut self, wanted: HashSet<FeedId>) -> Actions {
        let mut changed: Vec<FeedId> = wanted.symmetric_difference(&self.wanted).copied().collect();
        changed.sort();
        self.wanted = wanted;
        let mut notes = Vec::new();
        for f in changed {
            let note = self.our_note(&f);
            if self.told.get(&f) != Some(&note) {
                self.told.insert(f, note);
                notes.push((f, note));
            }
        }
        Actions {
            notes,
            ..Actions::default()
        }
    }

    /// We sent the peer a message of `feed` at `seq`.
    fn sent(&mut self, feed: &FeedId, seq: u64) {
        if let Some(next) = self.streaming.get_mut(feed)
            && seq >= *next
        {
            *next = seq + 1;
        }
    }

    /// The peer sent a message that was stored, or that we already held:
    /// it holds the feed up to there, so never send it that far again.
    pub fn received(&mut self, feed: &FeedId, seq: u64) {
        let held = self.local.entry(*feed).or_insert(0);
        if seq > *held {
            *held = seq;
        }
        self.sent(feed, seq);
    }

    /// The peer sent an invalid message of `feed`: accept nothing more of
    /// it from this peer, and tell the peer.
    pub fn refuse(&mut self, feed: &FeedId) -> Actions {
        self.refused.insert(*feed);
        let note = self.our_note(feed);
        self.told.insert(*feed, note);
        Actions {
            notes: vec![(*feed, note)],
            ..Actions::default()
        }
    }

    /// Whether some feed is no longer accepted from this peer.
    pub fn any_refused(&self) -> bool {
        !self.refused.is_empty()
    }

    /// Whether messages of `feed` from this peer are still accepted.
    pub fn accepts(&self, feed: &FeedId) -> bool {
        !self.refused.contains(feed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    #[test]
    fn a_feed_fetched_newest_first_is_asked_for_only_once_its_newest_are_held() {
        let (a, b) = (id(1), id(2));
        let mut s = Ebt::new(HashSet::from([a, b]), HashMap::new());
        s.newest_first([a, b], 50);
        let start = s.start();
        // We replicate both, but want nothing streamed yet.
        for (_, n) in &start.notes {
            assert_eq!(
                *n,
                Note::Have {
                    seq: 0,
                    receive: false
                }
            );
        }
        // The peer holds 500 of `a` (fetch it newest first) and 20 of `b`
        // (stream it from the start).
        let act = s.on_notes(&[
            (
                a,
                Note::Have {
                    seq: 500,
                    receive: true,
                },
            ),
            (
                b,
                Note::Have {
                    seq: 20,
                    receive: true,
                },
            ),
        ]);
        assert_eq!(act.fetch_newest, vec![(a, 500)]);
        assert_eq!(
            act.notes,
            vec![(
                b,
                Note::Have {
                    seq: 0,
                    receive: true
                }
            )]
        );
        assert!(s.waits_newest(&a) && !s.waits_newest(&b));
        // Held: now ask for what comes after.
        let act = s.newest_held(&a, 500);
        assert_eq!(
            act.notes,
            vec![(
                a,
                Note::Have {
                    seq: 500,
                    receive: true
                }
            )]
        );
        assert!(s.waiting_newest().is_empty());
        // A failed fetch falls back to the whole feed from what we hold.
        let mut s = Ebt::new(HashSet::from([a]), HashMap::new());
        s.newest_first([a], 50);
        s.start();
        let act = s.newest_failed(&a);
        assert_eq!(
            act.notes,
            vec![(
                a,
                Note::Have {
                    seq: 0,
                    receive: true
                }
            )]
        );
    }

    #[test]
    fn notes_encode_as_ssb_ebt_does() {
        assert_eq!(Note::Skip.encode(), -1);
        assert_eq!(
            Note::Have {
                seq: 0,
                receive: true
            }
            .encode(),
            0
        );
        assert_eq!(
            Note::Have {
                seq: 5,
                receive: true
            }
            .encode(),
            10
        );
        assert_eq!(
            Note::Have {
                seq: 5,
                receive: false
            }
            .encode(),
            11
        );
        for n in [-1i64, 0, 1, 10, 11, 1 << 40] {
            assert_eq!(Note::decode(n).unwrap().encode(), n);
        }
        assert_eq!(Note::decode(-2), None);
    }

    #[test]
    fn two_sessions_agree_on_what_to_send() {
        // A holds feed 1 up to 10 and wants feed 2; B holds feed 2 up to 3
        // and wants feed 1 (has 4 of it).
        let mut a = Ebt::new(HashSet::from([id(1), id(2)]), HashMap::from([(id(1), 10)]));
        let mut b = Ebt::new(
            HashSet::from([id(1), id(2)]),
            HashMap::from([(id(1), 4), (id(2), 3)]),
        );
        let a0 = a.start();
        let b0 = b.start();
        let at_b = b.on_notes(&a0.notes);
        let at_a = a.on_notes(&b0.notes);
        // A streams feed 1 from 5, and feed 2 once it gets any (B holds 3).
        assert_eq!(at_a.send_from, vec![(id(1), 5), (id(2), 4)]);
        assert_eq!(at_b.send_from, vec![(id(1), 11), (id(2), 1)]);
    }

    #[test]
    fn skip_and_refuse() {
        let mut a = Ebt::new(HashSet::from([id(1)]), HashMap::from([(id(1), 3)]));
        a.start();
        let act = a.on_notes(&[(
            id(1),
            Note::Have {
                seq: 0,
                receive: true,
            },
        )]);
        assert_eq!(act.send_from, vec![(id(1), 1)]);
        let act = a.on_notes(&[(id(1), Note::Skip)]);
        assert_eq!(act.stop, vec![id(1)]);
        // A feed the peer asks about that we neither hold nor want: Skip.
        let act = a.on_notes(&[(
            id(9),
            Note::Have {
                seq: 0,
                receive: true,
            },
        )]);
        assert_eq!(act.notes, vec![(id(9), Note::Skip)]);
        assert_eq!(act.send_from, vec![(id(9), 1)]);
        let act = a.refuse(&id(1));
        assert_eq!(
            act.notes,
            vec![(
                id(1),
                Note::Have {
                    seq: 3,
                    receive: false
                }
            )]
        );
        assert!(!a.accepts(&id(1)));
    }

    #[test]
    fn feeds_the_peer_names_beyond_the_limit_are_ignored() {
        let mut a = Ebt::new(HashSet::from([id(1)]), HashMap::from([(id(2), 3)]));
        a.start();
        let ask = Note::Have {
            seq: 0,
            receive: true,
        };
        let unknown = |n: usize| {
            let mut b = [0xffu8; 32];
            b[..8].copy_from_slice(&(n as u64).to_be_bytes());
            FeedId(b)
        };
        let notes: Vec<(FeedId, Note)> = (0..MAX_UNKNOWN_FEEDS + 10)
            .map(|n| (unknown(n), ask))
            .collect();
        let act = a.on_notes(&notes);
        assert_eq!(act.notes.len(), MAX_UNKNOWN_FEEDS);
        assert_eq!(act.send_from.len(), MAX_UNKNOWN_FEEDS);
        assert!(act.notes.iter().all(|(_, n)| *n == Note::Skip));
        // Over the limit: nothing, however often; feeds we want or hold are
        // still answered and served.
        let act = a.on_notes(&[(unknown(MAX_UNKNOWN_FEEDS + 20), ask)]);
        assert_eq!(act, Actions::default());
        let act = a.on_notes(&[(id(1), ask), (id(2), ask)]);
        assert_eq!(act.send_from, vec![(id(1), 1), (id(2), 1)]);
        assert_eq!(
            act.notes,
            vec![(
                id(2),
                Note::Have {
                    seq: 3,
                    receive: false
                }
            )]
        );
        assert_eq!(a.told.len(), 2 + MAX_UNKNOWN_FEEDS);
        assert_eq!(a.streaming.len(), 2 + MAX_UNKNOWN_FEEDS);
    }

    #[test]
    fn a_feed_wanted_during_the_session_is_asked_for_at_once() {
        let local = HashMap::from([(id(1), 5), (id(3), 2)]);
        let mut e = Ebt::new(HashSet::from([id(1)]), local);
        e.start();
        // Following 2 and 3 mid-session: both asked for, from what we hold.
        let a = e.want(HashSet::from([id(1), id(2), id(3)]));
        assert_eq!(
            a.notes,
            [
                (
                    id(2),
                    Note::Have {
                        seq: 0,
                        receive: true
                    }
                ),
                (
                    id(3),
                    Note::Have {
                        seq: 2,
                        receive: true
                    }
                )
            ]
        );
        // Nothing changed: nothing to say.
        assert_eq!(
            e.want(HashSet::from([id(1), id(2), id(3)])),
            Actions::default()
        );
        // Unfollowing 3 (held) and 2 (not held): no longer asked for.
        let a = e.want(HashSet::from([id(1)]));
        assert_eq!(
            a.notes,
            [
                (id(2), Note::Skip),
                (
                    id(3),
                    Note::Have {
                        seq: 2,
                        receive: false
                    }
                )
            ]
        );
        // A feed refused from this peer stays refused when wanted again.
        e.refuse(&id(2));
        let a = e.want(HashSet::from([id(1), id(2)]));
        assert!(
            a.notes.iter().all(|(_, n)| *n
                != Note::Have {
                    seq: 0,
                    receive: true
                }),
            "{a:?}"
        );
    }
}
