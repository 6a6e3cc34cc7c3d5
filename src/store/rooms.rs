//! The room this node runs: its members, its invites and its aliases, the
//! [`ROOM_MEMBERS`], [`ROOM_INVITES`], [`ROOM_ALIASES`] and
//! [`ROOM_ALIAS_OF`] tables, written only here.
//!
//! Owns making an invite (only the sha256 of its token is kept, with when
//! it expires), and claiming one: ONE write transaction that checks the
//! invite is known, unclaimed and unexpired, marks it claimed and adds the
//! member, so that a token is used exactly once. And registering an alias:
//! one write that checks the alias is free and the feed has no other, so
//! that two racing registrations get one alias each at most. The room
//! checks an alias's signature before it comes here. Imports `crypto`
//! only.

use redb::{ReadableDatabase as _, ReadableTable as _};

use super::schema::{ROOM_ALIAS_OF, ROOM_ALIASES, ROOM_INVITES, ROOM_MEMBERS};
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

/// Why an alias was not registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AliasRefusal {
    /// Another feed has it.
    #[error("the alias {0:?} is taken")]
    Taken(String),
    /// This feed has another one.
    #[error("you have the alias {0:?} in this room already: revoke it first")]
    HasOther(String),
}

/// A registered alias: whose, and their signature of the alias
/// confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomAlias {
    /// The feed it names.
    pub feed: FeedId,
    /// Its signature of `=room-alias-registration:ROOM:FEED:ALIAS`.
    pub signature: [u8; 64],
}

impl Store {
    /// Registers `alias` for `feed` with `signature` (checked by the
    /// caller): refused when another feed has it or `feed` has another.
    /// Registering a feed's own alias again is allowed.
    pub fn register_room_alias(
        &self,
        alias: &str,
        feed: &FeedId,
        signature: &[u8; 64],
    ) -> Result<std::result::Result<(), AliasRefusal>> {
        let txn = self.db().begin_write()?;
        let outcome = {
            let mut aliases = txn.open_table(ROOM_ALIASES)?;
            let mut of = txn.open_table(ROOM_ALIAS_OF)?;
            let owner = aliases
                .get(alias)?
                .map(|v| v.value()[..32].to_vec())
                .filter(|o| o.len() == 32);
            let theirs = of.get(&feed.0)?.map(|v| v.value().to_string());
            match (owner, theirs) {
                (Some(o), _) if o != feed.0 => Err(AliasRefusal::Taken(alias.to_string())),
                (_, Some(other)) if other != alias => Err(AliasRefusal::HasOther(other)),
                _ => {
                    let mut rec = feed.0.to_vec();
                    rec.extend_from_slice(signature);
                    aliases.insert(alias, rec.as_slice())?;
                    of.insert(&feed.0, alias)?;
                    Ok(())
                }
            }
        };
        if outcome.is_ok() {
            txn.commit()?;
        }
        Ok(outcome)
    }

    /// Removes `feed`'s alias `alias`: whether it had it.
    pub fn revoke_room_alias(&self, alias: &str, feed: &FeedId) -> Result<bool> {
        let txn = self.db().begin_write()?;
        let had = {
            let mut aliases = txn.open_table(ROOM_ALIASES)?;
            let owned = aliases
                .get(alias)?
                .is_some_and(|v| v.value().get(..32) == Some(&feed.0[..]));
            if owned {
                aliases.remove(alias)?;
                txn.open_table(ROOM_ALIAS_OF)?.remove(&feed.0)?;
            }
            owned
        };
        if had {
            txn.commit()?;
        }
        Ok(had)
    }

    /// Whom `alias` names in the room this node runs.
    pub fn room_alias(&self, alias: &str) -> Result<Option<RoomAlias>> {
        let txn = self.db().begin_read()?;
        let t = match txn.open_table(ROOM_ALIASES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(t.get(alias)?.and_then(|v| {
            let v = v.value();
            (v.len() == 96).then(|| RoomAlias {
                feed: FeedId(v[..32].try_into().expect("32 bytes")),
                signature: v[32..].try_into().expect("64 bytes"),
            })
        }))
    }

    /// The alias `feed` has in the room this node runs.
    pub fn room_alias_of(&self, feed: &FeedId) -> Result<Option<String>> {
        let txn = self.db().begin_read()?;
        match txn.open_table(ROOM_ALIAS_OF) {
            Ok(t) => Ok(t.get(&feed.0)?.map(|v| v.value().to_string())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a room invite by the sha256 of its token, valid until
    /// `expires_ms`.
    pub fn add_room_invite(&self, token_hash: &[u8; 32], expires_ms: u64) -> Result<()> {
        let txn = self.db().begin_write()?;
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
        let txn = self.db().begin_write()?;
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
        let txn = self.db().begin_read()?;
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

    #[test]
    fn an_alias_names_one_feed_and_a_feed_has_one_alias_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let me = Keypair::from_seed(&[1; 32]);
        let alice = Keypair::from_seed(&[2; 32]).id();
        let bob = Keypair::from_seed(&[3; 32]).id();
        {
            let store = Store::open_as(&path, &me).unwrap();
            assert_eq!(store.room_alias("alice").unwrap(), None);
            store
                .register_room_alias("alice", &alice, &[5; 64])
                .unwrap()
                .unwrap();
            // Again, by its owner: allowed, the signature replaced.
            store
                .register_room_alias("alice", &alice, &[6; 64])
                .unwrap()
                .unwrap();
            assert_eq!(
                store.register_room_alias("alice", &bob, &[7; 64]).unwrap(),
                Err(AliasRefusal::Taken("alice".into()))
            );
            assert_eq!(
                store.register_room_alias("al", &alice, &[7; 64]).unwrap(),
                Err(AliasRefusal::HasOther("alice".into()))
            );
            assert_eq!(store.room_alias("al").unwrap(), None);
            // Only its owner revokes it.
            assert!(!store.revoke_room_alias("alice", &bob).unwrap());
        }
        // Kept across a restart.
        let store = Store::open_as(&path, &me).unwrap();
        assert_eq!(
            store.room_alias("alice").unwrap(),
            Some(RoomAlias {
                feed: alice,
                signature: [6; 64]
            })
        );
        assert_eq!(store.room_alias_of(&alice).unwrap(), Some("alice".into()));
        assert!(store.revoke_room_alias("alice", &alice).unwrap());
        assert_eq!(store.room_alias("alice").unwrap(), None);
        assert_eq!(store.room_alias_of(&alice).unwrap(), None);
        store
            .register_room_alias("alice", &bob, &[8; 64])
            .unwrap()
            .unwrap();
    }
}
