//! Invites this node redeems: the [`INVITES`] table, written only here.
//!
//! Owns what is kept of an invite once made (the public key of its seed,
//! its uses left, its note and when it was made; never the seed), reading
//! one, and redeeming one: ONE write transaction that takes a use and
//! publishes our follow of the redeeming feed together, so that of two
//! redeemers racing for the last use exactly one wins, and a use is
//! counted exactly when the follow is written. Imports `crypto` and `feed`
//! only, like the rest of the store.

use redb::{ReadableDatabase as _, ReadableTable as _};

use super::schema::{CONTACT_BLOCK, CONTACT_FOLLOW, INVITES};
use super::{Result, Store, StoreError, Writer};
use crate::crypto::{FeedId, Keypair};
use crate::feed::{Value, VerifiedMsg};

/// An invite as kept in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// How many more times it may be redeemed (0: used up).
    pub uses_left: u32,
    /// When it was made, ms since the epoch.
    pub created: u64,
    /// The note it was made with (empty: none).
    pub note: String,
}

impl Invite {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(12 + self.note.len());
        v.extend_from_slice(&self.uses_left.to_be_bytes());
        v.extend_from_slice(&self.created.to_be_bytes());
        v.extend_from_slice(self.note.as_bytes());
        v
    }

    fn decode(b: &[u8]) -> Result<Invite> {
        if b.len() < 12 {
            return Err(StoreError::Corrupt("invite record shorter than its header"));
        }
        Ok(Invite {
            uses_left: u32::from_be_bytes(b[..4].try_into().expect("4 bytes")),
            created: u64::from_be_bytes(b[4..12].try_into().expect("8 bytes")),
            note: String::from_utf8(b[12..].to_vec())
                .map_err(|_| StoreError::Corrupt("invite note is not UTF-8"))?,
        })
    }
}

/// Why an invite was not redeemed. The messages are what the redeemer is
/// answered (the first three as ssb-invite words them).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteRefusal {
    /// No invite has this key.
    #[error("invite not found")]
    Unknown,
    /// Every use of it is taken.
    #[error("invite has expired")]
    Expired,
    /// We follow the redeeming feed already (no use is taken).
    #[error("already following")]
    AlreadyFollowing,
    /// We block the redeeming feed (no use is taken).
    #[error("this pub blocks the redeeming feed")]
    Blocked,
}

impl Store {
    /// Records a new invite with `uses` uses under the public key of its
    /// seed. Refuses a key already recorded (keys come from fresh random
    /// seeds, so this does not happen): its uses are never reset.
    pub fn add_invite(&self, key: &FeedId, uses: u32, note: &str, created: u64) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(INVITES)?;
            if t.get(&key.0)?.is_some() {
                return Err(StoreError::InviteExists);
            }
            let rec = Invite {
                uses_left: uses,
                created,
                note: note.to_string(),
            };
            t.insert(&key.0, rec.encode().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The invite whose seed's public key is `key`, used up or not.
    pub fn invite(&self, key: &FeedId) -> Result<Option<Invite>> {
        let txn = self.db().begin_read()?;
        let t = txn.open_table(INVITES)?;
        t.get(&key.0)?
            .map(|v| Invite::decode(v.value()))
            .transpose()
    }

    /// Redeems the invite `invite` for `feed`: takes one use and publishes
    /// `content(note)` (our follow of `feed`) as the next message of our
    /// feed, both in ONE write transaction. Refused, nothing is written.
    pub fn redeem_invite(
        &self,
        keys: &Keypair,
        hmac: Option<&[u8; 32]>,
        invite: &FeedId,
        feed: &FeedId,
        content: impl FnOnce(&str) -> Value,
    ) -> Result<Result<VerifiedMsg, InviteRefusal>> {
        let txn = self.db().begin_write()?;
        self.check_own_hold(&txn, &keys.id())?;
        self.with_book(|book| {
            let mut w = Writer::open(&txn, self.me.as_ref())?;
            let Some(mut rec) = w
                .invites
                .get(&invite.0)?
                .map(|v| Invite::decode(v.value()))
                .transpose()?
            else {
                return Ok(Err(InviteRefusal::Unknown));
            };
            match w.my_edge(feed)? {
                Some(CONTACT_FOLLOW) => return Ok(Err(InviteRefusal::AlreadyFollowing)),
                Some(CONTACT_BLOCK) => return Ok(Err(InviteRefusal::Blocked)),
                _ => {}
            }
            if rec.uses_left == 0 {
                return Ok(Err(InviteRefusal::Expired));
            }
            rec.uses_left -= 1;
            w.invites.insert(&invite.0, rec.encode().as_slice())?;
            let msg = self.put_own(&mut w, keys, hmac, content(&rec.note))??;
            self.process_groups(&mut w, book)?;
            let touched = w.contacts_touched;
            w.finish()?;
            txn.commit()?;
            self.committed(touched);
            Ok(Ok(msg))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::json;

    fn follow(feed: &FeedId, note: &str) -> Value {
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(r#","note":"{note}""#)
        };
        json::parse(
            format!(r#"{{"type":"contact","contact":"{feed}","following":true,"pub":true{note}}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    /// An invite of two uses: two feeds redeem it, each followed in the
    /// same write as its use; the third is refused and nothing is written;
    /// a feed already followed takes no use; an unknown key is refused.
    #[test]
    fn each_use_is_taken_with_its_follow_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let me = Keypair::from_seed(&[1; 32]);
        let store = Store::open_as(&dir.path().join("s.redb"), &me).unwrap();
        let invite = Keypair::from_seed(&[2; 32]).id();
        let feeds: Vec<FeedId> = (3..6).map(|n| Keypair::from_seed(&[n; 32]).id()).collect();
        store.add_invite(&invite, 2, "hello", 1000).unwrap();
        assert!(matches!(
            store.add_invite(&invite, 2, "", 1000),
            Err(StoreError::InviteExists)
        ));
        let redeem = |feed: &FeedId| {
            store
                .redeem_invite(&me, None, &invite, feed, |note| follow(feed, note))
                .unwrap()
        };
        let generation = store.contacts_generation();
        let first = redeem(&feeds[0]).unwrap();
        assert_eq!(first.sequence(), 1);
        // Regression: the redeem's follow moved the contact graph without
        // saying so, and a cached set of feeds to replicate went stale.
        assert!(
            store.contacts_generation() > generation,
            "the follow a redeem publishes changes the contact graph"
        );
        assert!(
            store
                .replication_set(&me.id(), 1)
                .unwrap()
                .contains_key(&feeds[0])
        );
        assert_eq!(
            first.content().get("note").and_then(Value::as_str),
            Some("hello")
        );
        assert_eq!(
            redeem(&feeds[0]).unwrap_err(),
            InviteRefusal::AlreadyFollowing
        );
        assert_eq!(store.invite(&invite).unwrap().unwrap().uses_left, 1);
        redeem(&feeds[1]).unwrap();
        assert_eq!(redeem(&feeds[2]).unwrap_err(), InviteRefusal::Expired);
        let rec = store.invite(&invite).unwrap().unwrap();
        assert_eq!(
            rec,
            Invite {
                uses_left: 0,
                created: 1000,
                note: "hello".into()
            }
        );
        assert_eq!(store.latest(&me.id()).unwrap().unwrap().sequence, 2);
        let unknown = Keypair::from_seed(&[9; 32]).id();
        assert_eq!(store.invite(&unknown).unwrap(), None);
        assert_eq!(
            store
                .redeem_invite(&me, None, &unknown, &feeds[2], |n| follow(&feeds[2], n))
                .unwrap()
                .unwrap_err(),
            InviteRefusal::Unknown
        );
        assert_eq!(store.latest(&me.id()).unwrap().unwrap().sequence, 2);
    }

    /// Threads racing for the last use of an invite: exactly one wins,
    /// and exactly one follow is published.
    #[test]
    fn racing_redeemers_of_the_last_use_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let me = Keypair::from_seed(&[1; 32]);
        let store = Store::open_as(&dir.path().join("s.redb"), &me).unwrap();
        let invite = Keypair::from_seed(&[2; 32]).id();
        store.add_invite(&invite, 1, "", 0).unwrap();
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (10..18u8)
                .map(|n| {
                    let (store, me) = (&store, &me);
                    s.spawn(move || {
                        let feed = Keypair::from_seed(&[n; 32]).id();
                        store
                            .redeem_invite(me, None, &invite, &feed, |note| follow(&feed, note))
                            .unwrap()
                            .is_ok()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap() as usize)
                .sum()
        });
        assert_eq!(wins, 1);
        assert_eq!(store.latest(&me.id()).unwrap().unwrap().sequence, 1);
        assert_eq!(store.invite(&invite).unwrap().unwrap().uses_left, 0);
    }
}
