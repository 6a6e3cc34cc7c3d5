//! What keeps our own feed from forking: the [`OWN_FEED`] table, written
//! only here, and the check every publish makes ([`Store::own_hold`]).
//!
//! A feed forks when two messages of it have the same sequence: a home
//! restored from a secret or a recovery phrase that publishes sequence 1
//! while peers hold 500, or two homes of one identity that each publish
//! the next message. So we publish nothing while:
//! - the home is *restoring* (made from an existing secret) and no peer
//!   holding our feed has given it to us yet;
//! - a peer has claimed more of our feed than we hold (an EBT note, a
//!   message of ours that does not chain), until we hold that much;
//! - a peer sent a message of ours that conflicts with one we hold (a
//!   real fork, kept in `forks`): the person decides;
//! - another home of our identity, made later than this one, has met it
//!   (a connection whose peer is ourselves): the later home publishes, so
//!   that two homes of one identity that have met never both do.
//!
//! The person may lift them all (`shoal restore --done`), which records
//! the claim it overrode so that the same claim does not hold us again.
//! Imports `crypto` only.

use redb::{ReadableDatabase as _, ReadableTable as _};

use super::schema::{FEEDS, FORKS, LATEST, LOG, OWN_FEED, feed_key};
use super::{Result, Store, StoreError};
use crate::crypto::{FeedId, MsgId};

/// Why we may not publish now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnHold {
    /// Made from an existing identity: its feed has not come back from a
    /// peer yet. `claim`: the most a peer has claimed so far.
    Restoring {
        /// What we hold of our feed.
        held: u64,
        /// The highest claim of a peer, if any.
        claim: Option<Claim>,
    },
    /// A peer claims more of our feed than we hold.
    Behind {
        /// What we hold.
        held: u64,
        /// The claim.
        claim: Claim,
    },
    /// Another home of our identity, made later than this one, has met
    /// it: that one publishes now, this one no more (two homes that both
    /// publish fork the feed).
    Moved {
        /// When they met (ms since the epoch).
        at_ms: u64,
    },
    /// A peer sent a message of ours that conflicts with ours.
    Forked {
        /// The sequence.
        sequence: u64,
        /// Our message there.
        ours: Option<MsgId>,
        /// The other one, as received (compact JSON).
        theirs: Vec<u8>,
    },
}

impl std::fmt::Display for OwnHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OwnHold::Restoring { held, claim: None } => write!(
                f,
                "restoring: no peer has given us our feed yet (we hold {held}); connect to a peer that has it, or `shoal restore --done` if none has"
            ),
            OwnHold::Restoring {
                held,
                claim: Some(c),
            } => write!(
                f,
                "restoring: {} holds our feed up to {}, we have {held} of it so far",
                c.peer, c.sequence
            ),
            OwnHold::Behind { held, claim } => write!(
                f,
                "{} claims our feed up to {}, we hold {held}: fetching it before we publish again",
                claim.peer, claim.sequence
            ),
            OwnHold::Moved { .. } => write!(
                f,
                "another home of this identity, made later than this one, has met it: that home publishes now, this one no more (`shoal restore --done --yes` takes it back, and then the other must stop)"
            ),
            OwnHold::Forked { sequence, .. } => write!(
                f,
                "our feed is forked at {sequence}: a peer has another message of ours there; see `shoal status`, then `shoal restore --done` to go on"
            ),
        }
    }
}

/// A peer's claim of how much of our feed it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The peer.
    pub peer: FeedId,
    /// The sequence it claims.
    pub sequence: u64,
    /// When (ms since the epoch).
    pub at_ms: u64,
}

fn encode_claim(c: &Claim) -> Vec<u8> {
    let mut v = c.sequence.to_be_bytes().to_vec();
    v.extend_from_slice(&c.peer.0);
    v.extend_from_slice(&c.at_ms.to_be_bytes());
    v
}

fn decode_claim(v: &[u8]) -> Option<Claim> {
    (v.len() == 48).then(|| Claim {
        sequence: u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        peer: FeedId(v[8..40].try_into().expect("32 bytes")),
        at_ms: u64::from_be_bytes(v[40..].try_into().expect("8 bytes")),
    })
}

const RESTORING: &str = "restoring";
/// When this home was made and a random tie-break: `ms u64 BE | 8 bytes`.
const MADE: &str = "made";
/// When a later home of our identity met this one: `ms u64 BE`.
const MOVED: &str = "moved";
const CLAIM: &str = "claim";
/// The claim the person overrode: claims up to it hold us no more.
const WAIVED: &str = "waived";

impl Store {
    /// Marks the home as restoring (made from an existing identity).
    pub fn set_restoring(&self) -> Result<()> {
        let txn = self.db().begin_write()?;
        txn.open_table(OWN_FEED)?.insert(RESTORING, &[][..])?;
        txn.commit()?;
        Ok(())
    }

    /// Records when this home was made (once; at `shoal init`): of two
    /// homes of one identity that meet, the later one publishes.
    pub fn stamp_home(&self, now_ms: u64) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(OWN_FEED)?;
            if t.get(MADE)?.is_none() {
                let mut v = now_ms.to_be_bytes().to_vec();
                v.extend_from_slice(&crate::crypto::random_bytes::<8>());
                t.insert(MADE, v.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// When this home was made, with its tie-break (a home made before
    /// stamps were kept: zeros, the earliest).
    pub fn home_stamp(&self) -> Result<[u8; 16]> {
        let txn = self.db().begin_read()?;
        match txn.open_table(OWN_FEED) {
            Ok(t) => Ok(t
                .get(MADE)?
                .and_then(|v| v.value().try_into().ok())
                .unwrap_or([0; 16])),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok([0; 16]),
            Err(e) => Err(e.into()),
        }
    }

    /// Another home of our identity, made later, met this one: this one
    /// publishes no more (until the person lifts it).
    pub fn note_moved(&self, at_ms: u64) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(OWN_FEED)?;
            if t.get(MOVED)?.is_none() {
                t.insert(MOVED, &at_ms.to_be_bytes()[..])?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// A peer claims to hold our feed up to `sequence`: kept when it is
    /// more than we hold (or we are restoring) and than any claim kept or
    /// waived.
    pub fn note_own_claim(&self, peer: &FeedId, sequence: u64, at_ms: u64) -> Result<()> {
        let me = self
            .me
            .as_ref()
            .map(|m| m.id)
            .ok_or(StoreError::NoIdentity)?;
        let known = {
            let txn = self.db().begin_read()?;
            self.own_state(&txn, &me)?
        };
        // Restoring, what a peer gave us counts too (it holds our feed),
        // once: a claim within what we hold already completes the restore.
        if (sequence <= known.held && (!known.restoring || known.claim.is_some()))
            || known.claim.is_some_and(|c| c.sequence >= sequence)
            || known.waived >= sequence
        {
            return Ok(());
        }
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(OWN_FEED)?;
            let kept = t.get(CLAIM)?.and_then(|v| decode_claim(v.value()));
            if kept.is_none_or(|c| c.sequence < sequence) {
                let claim = Claim {
                    peer: *peer,
                    sequence,
                    at_ms,
                };
                t.insert(CLAIM, encode_claim(&claim).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Why we may not publish now, if we may not.
    pub fn own_hold(&self) -> Result<Option<OwnHold>> {
        let Some(me) = self.me.as_ref().map(|m| m.id) else {
            return Ok(None);
        };
        let txn = self.db().begin_read()?;
        Ok(self.own_state(&txn, &me)?.hold())
    }

    /// Lifts every hold on publishing (`shoal restore --done`): the home is
    /// no longer restoring, the claim kept is waived, forks of our feed
    /// are forgotten (the messages we hold stay ours). Answers what held
    /// us.
    pub fn release_own_holds(&self) -> Result<Option<OwnHold>> {
        let me = self
            .me
            .as_ref()
            .map(|m| m.id)
            .ok_or(StoreError::NoIdentity)?;
        let txn = self.db().begin_write()?;
        let was = {
            let state = self.own_state(&txn, &me)?;
            let was = state.hold();
            let mut t = txn.open_table(OWN_FEED)?;
            t.remove(RESTORING)?;
            t.remove(MOVED)?;
            let removed = t.remove(CLAIM)?.and_then(|v| decode_claim(v.value()));
            if let Some(c) = removed {
                let waived = c.sequence.max(state.waived);
                t.insert(WAIVED, &waived.to_be_bytes()[..])?;
            }
            let mut forks = txn.open_table(FORKS)?;
            let (lo, hi) = own_range(&me);
            let keys: Vec<[u8; 40]> = forks
                .range::<&[u8; 40]>(&lo..=&hi)?
                .map(|e| e.map(|(k, _)| *k.value()))
                .collect::<std::result::Result<_, _>>()?;
            for k in keys {
                forks.remove(&k)?;
            }
            was
        };
        txn.commit()?;
        Ok(was)
    }

    /// In a write about to publish: refuses with the hold, if any; clears
    /// a restore that is complete.
    pub(super) fn check_own_hold(&self, txn: &redb::WriteTransaction, me: &FeedId) -> Result<()> {
        let state = self.own_state(txn, me)?;
        if let Some(hold) = state.hold() {
            return Err(StoreError::Held(hold.to_string()));
        }
        if state.restoring {
            txn.open_table(OWN_FEED)?.remove(RESTORING)?;
        }
        Ok(())
    }

    fn own_state(&self, txn: &impl OwnReads, me: &FeedId) -> Result<OwnState> {
        txn.own_state(me)
    }
}

/// The keys of `me`'s entries in `forks`.
fn own_range(me: &FeedId) -> ([u8; 40], [u8; 40]) {
    let mut lo = [0u8; 40];
    lo[..32].copy_from_slice(&me.0);
    let mut hi = [0xffu8; 40];
    hi[..32].copy_from_slice(&me.0);
    (lo, hi)
}

/// What the store says of our feed's safety.
struct OwnState {
    held: u64,
    restoring: bool,
    moved: Option<u64>,
    claim: Option<Claim>,
    waived: u64,
    fork: Option<(u64, Vec<u8>)>,
    ours_at_fork: Option<MsgId>,
}

impl OwnState {
    fn hold(&self) -> Option<OwnHold> {
        if let Some(at_ms) = self.moved {
            return Some(OwnHold::Moved { at_ms });
        }
        if let Some((sequence, theirs)) = &self.fork {
            return Some(OwnHold::Forked {
                sequence: *sequence,
                ours: self.ours_at_fork,
                theirs: theirs.clone(),
            });
        }
        let claim = self.claim.filter(|c| c.sequence > self.waived);
        // Complete: a peer that holds our feed gave us all it claimed.
        let restored = claim.is_some_and(|c| self.held >= c.sequence);
        if self.restoring && !restored {
            return Some(OwnHold::Restoring {
                held: self.held,
                claim,
            });
        }
        match claim {
            Some(c) if c.sequence > self.held => Some(OwnHold::Behind {
                held: self.held,
                claim: c,
            }),
            _ => None,
        }
    }
}

/// Reading [`OwnState`] in a read or a write transaction.
trait OwnReads {
    fn own_state(&self, me: &FeedId) -> Result<OwnState>;
}

macro_rules! own_reads {
    ($t:ty) => {
        impl OwnReads for $t {
            fn own_state(&self, me: &FeedId) -> Result<OwnState> {
                let latest = match self.open_table(LATEST) {
                    Ok(t) => t.get(&me.0)?.map(|v| *v.value()),
                    Err(redb::TableError::TableDoesNotExist(_)) => None,
                    Err(e) => return Err(e.into()),
                };
                let held = latest.map_or(0, |v| {
                    u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
                });
                let (restoring, moved, claim, waived) = match self.open_table(OWN_FEED) {
                    Ok(t) => (
                        t.get(RESTORING)?.is_some(),
                        t.get(MOVED)?
                            .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes)),
                        t.get(CLAIM)?.and_then(|v| decode_claim(v.value())),
                        t.get(WAIVED)?
                            .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
                            .unwrap_or(0),
                    ),
                    Err(redb::TableError::TableDoesNotExist(_)) => (false, None, None, 0),
                    Err(e) => return Err(e.into()),
                };
                let fork = match self.open_table(FORKS) {
                    Ok(t) => {
                        let (lo, hi) = own_range(me);
                        let first = t.range::<&[u8; 40]>(&lo..=&hi)?.next().transpose()?;
                        first.map(|(k, v)| {
                            let seq =
                                u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
                            (seq, v.value().to_vec())
                        })
                    }
                    Err(redb::TableError::TableDoesNotExist(_)) => None,
                    Err(e) => return Err(e.into()),
                };
                let ours_at_fork = match &fork {
                    Some((seq, _)) => {
                        let rx = self
                            .open_table(FEEDS)?
                            .get(&feed_key(&me.0, *seq))?
                            .map(|v| v.value());
                        match rx {
                            Some(rx) => self.open_table(LOG)?.get(rx)?.and_then(|rec| {
                                rec.value()
                                    .get(..32)
                                    .map(|id| MsgId(id.try_into().expect("32 bytes")))
                            }),
                            None => None,
                        }
                    }
                    None => None,
                };
                Ok(OwnState {
                    held,
                    restoring,
                    moved,
                    claim,
                    waived,
                    fork,
                    ours_at_fork,
                })
            }
        }
    };
}
own_reads!(redb::ReadTransaction);
own_reads!(redb::WriteTransaction);
