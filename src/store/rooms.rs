//! The room this node runs: its members and its invites, the
//! [`ROOM_MEMBERS`] and [`ROOM_INVITES`] tables, written only here.
//!
//! Owns making an invite (only the sha256 of its token is kept, with when
//! it expires), and claiming one: ONE write transaction that checks the
//! invite is known, unclaimed and unexpired, marks it claimed and adds the
//! member, so that a token is used exactly once. Imports `crypto` only.

use redb::{ReadableDatabase as _, ReadableTable as _};

use super::schema::{ROOM_INVITES, ROOM_MEMBERS};
use super::{Result, Store};
use crate::crypto::FeedId;

/// Why a room invite was not claimed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomInviteRefusal {
    /// No invite has this token.
    #[error("no such invite")]
    Unknown,
    /// It was claimed already.
    #[error("this invite was used already")]
    Used,
    /// Its time is over.
    #[error("this invite has expired")]
    Expired,
}

impl Store {
    /// Records a room invite by the sha256 of its token, valid until
    /// `expires_ms`.
    pub fn add_room_invite(&self, token_hash: &[u8; 32], expires_ms: u64) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(ROOM_INVITES)?;
            let mut rec = expires_ms.to_be_bytes().to_vec();
            rec.extend_from_slice(&[0u8; 32]);
            t.insert(token_hash, rec.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Claims the invite whose token hashes to `token_hash` for `feed` at
    /// `now_ms`: marks it claimed and makes `feed` a member, in one write.
    pub fn claim_room_invite(
        &self,
        token_hash: &[u8; 32],
        feed: &FeedId,
        now_ms: u64,
    ) -> Result<std::result::Result<(), RoomInviteRefusal>> {
        let txn = self.db.begin_write()?;
        let outcome = {
            let mut invites = txn.open_table(ROOM_INVITES)?;
            let rec = invites.get(token_hash)?.map(|v| v.value().to_vec());
            match rec {
                None => Err(RoomInviteRefusal::Unknown),
                Some(rec) if rec.len() != 40 => Err(RoomInviteRefusal::Unknown),
                Some(rec) if rec[8..] != [0u8; 32] => Err(RoomInviteRefusal::Used),
                Some(rec) => {
                    let expires = u64::from_be_bytes(rec[..8].try_into().expect("8 bytes"));
                    if now_ms >= expires {
                        Err(RoomInviteRefusal::Expired)
                    } else {
                        let mut claimed = rec[..8].to_vec();
                        claimed.extend_from_slice(&feed.0);
                        invites.insert(token_hash, claimed.as_slice())?;
                        let mut members = txn.open_table(ROOM_MEMBERS)?;
                        if members.get(&feed.0)?.is_none() {
                            members.insert(&feed.0, now_ms)?;
                        }
                        Ok(())
                    }
                }
            }
        };
        if outcome.is_ok() {
            txn.commit()?;
        }
        Ok(outcome)
    }

    /// Whether `feed` is a member of the room this node runs.
    pub fn is_room_member(&self, feed: &FeedId) -> Result<bool> {
        let txn = self.db.begin_read()?;
        match txn.open_table(ROOM_MEMBERS) {
            Ok(t) => Ok(t.get(&feed.0)?.is_some()),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    #[test]
    fn a_room_invite_is_claimed_once_before_it_expires_and_the_member_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let me = Keypair::from_seed(&[1; 32]);
        let alice = Keypair::from_seed(&[2; 32]).id();
        let bob = Keypair::from_seed(&[3; 32]).id();
        {
            let store = Store::open_as(&path, &me).unwrap();
            assert!(!store.is_room_member(&alice).unwrap());
            store.add_room_invite(&[7; 32], 1000).unwrap();
            store.add_room_invite(&[8; 32], 1000).unwrap();
            assert_eq!(
                store.claim_room_invite(&[9; 32], &alice, 10).unwrap(),
                Err(RoomInviteRefusal::Unknown)
            );
            assert_eq!(
                store.claim_room_invite(&[8; 32], &alice, 1000).unwrap(),
                Err(RoomInviteRefusal::Expired)
            );
            assert!(!store.is_room_member(&alice).unwrap());
            store
                .claim_room_invite(&[7; 32], &alice, 999)
                .unwrap()
                .unwrap();
            assert_eq!(
                store.claim_room_invite(&[7; 32], &bob, 999).unwrap(),
                Err(RoomInviteRefusal::Used)
            );
            assert!(!store.is_room_member(&bob).unwrap());
        }
        // Kept across a restart.
        let store = Store::open_as(&path, &me).unwrap();
        assert!(store.is_room_member(&alice).unwrap());
        assert_eq!(
            store.claim_room_invite(&[7; 32], &bob, 5).unwrap(),
            Err(RoomInviteRefusal::Used)
        );
    }
}
