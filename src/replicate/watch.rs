//! What the sessions saw of each feed we replicate: what each connected
//! peer claims to hold of it (its EBT clock), since when, and the last
//! error a peer gave us with it, which `shoal why` and `shoal status`
//! report; and, per peer, which of those feeds it held and how many
//! messages it gave us, which the peer picker ([`crate::dialer::pick`])
//! chooses peers by.
//!
//! Bounded: claims and errors are kept only for feeds a session asked
//! for, claims go when the peer's session ends, at most [`MAX_ERRORS`]
//! feeds keep a last error, and at most [`MAX_PEERS_SEEN`] peers are
//! remembered (the least recently seen go first). Pure bookkeeping behind
//! a lock; imports `crypto` only.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use crate::crypto::FeedId;

/// Most feeds whose last error is kept.
pub const MAX_ERRORS: usize = 4096;

/// Most peers whose holdings are remembered after their session ends.
pub const MAX_PEERS_SEEN: usize = 64;

/// What a peer held of the feeds we asked it for, when last connected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The feeds it holds messages of (its clock said more than 0, or it
    /// gave us some).
    pub holds: HashSet<FeedId>,
    /// Messages it gave us that we stored.
    pub served: u64,
    /// When it last claimed or gave us something (ms since the epoch).
    pub at_ms: u64,
}

/// What one peer claims to hold of a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The peer.
    pub peer: FeedId,
    /// The latest sequence it says it holds.
    pub seq: u64,
    /// When it first claimed that sequence (ms since the epoch).
    pub since_ms: u64,
}

/// The last error a peer gave us with a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedError {
    /// The peer.
    pub peer: FeedId,
    /// Why its message of the feed was refused.
    pub reason: String,
    /// When (ms since the epoch).
    pub at_ms: u64,
}

/// A feed a peer has more of than we hold, for a while.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behind {
    /// The feed.
    pub feed: FeedId,
    /// What we hold.
    pub held: u64,
    /// The peer claiming the most.
    pub claim: Claim,
}

/// Per feed, per peer: the sequence claimed and since when (ms).
type Claims = HashMap<FeedId, HashMap<FeedId, (u64, u64)>>;

/// The sessions' observations, shared by every session of a node.
#[derive(Debug, Default)]
pub struct Watch {
    claims: Mutex<Claims>,
    errors: Mutex<HashMap<FeedId, FeedError>>,
    seen: Mutex<HashMap<FeedId, Seen>>,
}

impl Watch {
    /// `peer` says it holds `feed` up to `seq` (`None`: it does not
    /// replicate it).
    pub fn claim(&self, peer: FeedId, feed: FeedId, seq: Option<u64>, now_ms: u64) {
        self.saw(peer, now_ms, |seen| {
            if seq.unwrap_or(0) > 0 {
                seen.holds.insert(feed);
            } else {
                seen.holds.remove(&feed);
            }
        });
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        match seq {
            Some(seq) => {
                let by = claims.entry(feed).or_default();
                match by.get_mut(&peer) {
                    Some((s, _)) if *s == seq => {}
                    Some(entry) => *entry = (seq, now_ms),
                    None => {
                        by.insert(peer, (seq, now_ms));
                    }
                }
            }
            None => {
                if let Some(by) = claims.get_mut(&feed) {
                    by.remove(&peer);
                    if by.is_empty() {
                        claims.remove(&feed);
                    }
                }
            }
        }
    }

    /// `peer` gave us `stored` new messages of `feed`.
    pub fn served(&self, peer: FeedId, feed: FeedId, stored: u64, now_ms: u64) {
        self.saw(peer, now_ms, |seen| {
            seen.holds.insert(feed);
            seen.served = seen.served.saturating_add(stored);
        });
    }

    fn saw(&self, peer: FeedId, now_ms: u64, change: impl FnOnce(&mut Seen)) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_PEERS_SEEN && !seen.contains_key(&peer) {
            if let Some(oldest) = seen.iter().min_by_key(|(_, s)| s.at_ms).map(|(p, _)| *p) {
                seen.remove(&oldest);
            }
        }
        let entry = seen.entry(peer).or_default();
        change(entry);
        entry.at_ms = entry.at_ms.max(now_ms);
    }

    /// What `peer` held of the feeds we asked it for, when last connected.
    pub fn seen(&self, peer: &FeedId) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(peer)
            .cloned()
    }

    /// The peer's session ended: its claims go (what it held is
    /// remembered, see [`Watch::seen`]).
    pub fn forget_peer(&self, peer: &FeedId) {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims.retain(|_, by| {
            by.remove(peer);
            !by.is_empty()
        });
    }

    /// A message of `feed` from `peer` was refused.
    pub fn error(&self, feed: FeedId, peer: FeedId, reason: &str, now_ms: u64) {
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if errors.len() >= MAX_ERRORS && !errors.contains_key(&feed) {
            // Keep the newest: drop the oldest one.
            if let Some(oldest) = errors.iter().min_by_key(|(_, e)| e.at_ms).map(|(f, _)| *f) {
                errors.remove(&oldest);
            }
        }
        errors.insert(
            feed,
            FeedError {
                peer,
                reason: reason.to_string(),
                at_ms: now_ms,
            },
        );
    }

    /// What the connected peers claim of `feed`, most first.
    pub fn claims_of(&self, feed: &FeedId) -> Vec<Claim> {
        let claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Claim> = claims
            .get(feed)
            .map(|by| {
                by.iter()
                    .map(|(peer, (seq, since_ms))| Claim {
                        peer: *peer,
                        seq: *seq,
                        since_ms: *since_ms,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| b.seq.cmp(&a.seq).then(a.peer.cmp(&b.peer)));
        out
    }

    /// The last error with `feed`.
    pub fn last_error(&self, feed: &FeedId) -> Option<FeedError> {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(feed)
            .cloned()
    }

    /// Feeds of which a peer has claimed more than we hold (`held`) for at
    /// least `for_ms`, with the longest-standing such claim, by feed.
    pub fn behind(&self, held: impl Fn(&FeedId) -> u64, for_ms: u64, now_ms: u64) -> Vec<Behind> {
        let claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for (feed, by) in claims.iter() {
            let have = held(feed);
            let oldest = by
                .iter()
                .filter(|(_, (seq, since))| *seq > have && now_ms.saturating_sub(*since) >= for_ms)
                .min_by_key(|(peer, (_, since))| (*since, **peer));
            if let Some((peer, (seq, since_ms))) = oldest {
                out.push(Behind {
                    feed: *feed,
                    held: have,
                    claim: Claim {
                        peer: *peer,
                        seq: *seq,
                        since_ms: *since_ms,
                    },
                });
            }
        }
        out.sort_by_key(|b| b.feed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    #[test]
    fn claims_keep_since_when_and_go_with_the_peer() {
        let w = Watch::default();
        w.claim(id(1), id(9), Some(5), 1000);
        w.claim(id(1), id(9), Some(5), 2000);
        w.claim(id(2), id(9), Some(7), 1500);
        let c = w.claims_of(&id(9));
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].peer, c[0].seq, c[0].since_ms), (id(2), 7, 1500));
        assert_eq!(c[1].since_ms, 1000, "the same claim keeps its first time");
        w.claim(id(1), id(9), Some(6), 3000);
        assert_eq!(
            w.claims_of(&id(9))[1].since_ms,
            3000,
            "a new sequence, a new time"
        );
        w.forget_peer(&id(2));
        assert_eq!(w.claims_of(&id(9)).len(), 1);
        w.claim(id(1), id(9), None, 4000);
        assert!(w.claims_of(&id(9)).is_empty());
    }

    #[test]
    fn what_a_peer_held_and_served_is_remembered_after_it_goes_and_bounded() {
        let w = Watch::default();
        w.claim(id(1), id(9), Some(5), 1000);
        w.claim(id(1), id(8), Some(0), 1000);
        w.served(id(1), id(7), 3, 1100);
        w.served(id(1), id(7), 2, 1200);
        w.forget_peer(&id(1));
        let seen = w.seen(&id(1)).expect("remembered");
        assert_eq!(
            seen.holds,
            HashSet::from([id(9), id(7)]),
            "0 is not holding"
        );
        assert_eq!((seen.served, seen.at_ms), (5, 1200));
        w.claim(id(1), id(9), None, 1300);
        assert_eq!(w.seen(&id(1)).unwrap().holds, HashSet::from([id(7)]));
        // A crowd of peers: the least recently seen go.
        for n in 0..(MAX_PEERS_SEEN as u8 + 10) {
            let mut key = [0xee; 32];
            key[0] = n;
            w.claim(FeedId(key), id(9), Some(1), 2000 + u64::from(n));
        }
        assert_eq!(w.seen.lock().unwrap().len(), MAX_PEERS_SEEN);
        assert!(w.seen(&id(1)).is_none(), "the oldest went first");
    }

    #[test]
    fn behind_lists_claims_above_what_we_hold_for_long_enough() {
        let w = Watch::default();
        w.claim(id(1), id(9), Some(10), 0);
        w.claim(id(2), id(8), Some(3), 0);
        w.claim(id(3), id(7), Some(4), 50_000);
        let held = |f: &FeedId| if *f == id(8) { 3 } else { 1 };
        let b = w.behind(held, 60_000, 100_000);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!((b[0].feed, b[0].held, b[0].claim.seq), (id(9), 1, 10));
    }

    #[test]
    fn errors_are_bounded_and_keep_the_newest() {
        let w = Watch::default();
        for i in 0..(MAX_ERRORS as u64 + 10) {
            let mut f = [0u8; 32];
            f[..8].copy_from_slice(&i.to_le_bytes());
            w.error(FeedId(f), id(1), "bad", i);
        }
        assert_eq!(w.errors.lock().unwrap().len(), MAX_ERRORS);
        let mut last = [0u8; 32];
        last[..8].copy_from_slice(&(MAX_ERRORS as u64 + 9).to_le_bytes());
        assert_eq!(w.last_error(&FeedId(last)).unwrap().reason, "bad");
        assert!(w.last_error(&FeedId([0; 32])).is_none(), "the oldest went");
    }
}
