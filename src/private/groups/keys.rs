//! Epoch keys, their commitments and subkeys, the merged key of a set of
//! heads, and a member's key store (which epoch keys it holds, and how it
//! gets them from slots, `back` wraps and forwards).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use zeroize::Zeroizing;

use crate::crypto::{
    AEAD_NONCE_LEN, CurveKeypair, FeedId, Keypair, MsgId, aead_open, blake2b, blake2b_keyed,
    kdf_subkey, random_bytes, sealed_box_open,
};

use super::GroupError;
use super::envelope::EntryKey;
use super::state::GroupState;
use super::wire::{Control, ControlMsg, Epoch, Position, Post, TAG_LEN, key_pairs_from_bytes};

/// The kdf context of every group subkey.
const KDF_CONTEXT: &[u8; 8] = b"shoalgrp";
/// Additional-data label of post bodies.
pub(super) const LABEL_POST: &[u8] = b"shoal-group-post";
/// Additional-data label of `back` wraps.
pub(super) const LABEL_BACK: &[u8] = b"shoal-group-back";

/// The distinct subkeys of an epoch key (or of a merged key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subkey {
    /// Keys the 16-byte post tags.
    Tag = 1,
    /// Encrypts post bodies.
    Post = 2,
    /// Wraps the message key of control messages (envelope entries).
    Ctrl = 3,
    /// Wraps the parents' keys in an epoch's `back`.
    Back = 4,
}

/// A 32-byte epoch key `K`, wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct EpochKey(Zeroizing<[u8; 32]>);

impl EpochKey {
    /// A fresh random key.
    pub fn random() -> EpochKey {
        EpochKey(Zeroizing::new(random_bytes()))
    }

    /// Wraps raw key bytes (from a slot, or fixed bytes in tests).
    pub fn from_bytes(bytes: [u8; 32]) -> EpochKey {
        EpochKey(Zeroizing::new(bytes))
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `C(K) = BLAKE2b-256("commit" || K)`, carried in the epoch for
    /// whoever opens it to check a key given to it.
    pub fn commitment(&self) -> [u8; 32] {
        blake2b(&[b"commit", &self.0[..]])
    }

    /// One of the kdf subkeys of `K`.
    pub fn subkey(&self, which: Subkey) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(kdf_subkey(&self.0, which as u64, KDF_CONTEXT))
    }
}

impl fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EpochKey(..)")
    }
}

/// The key posts are written under for one set of heads:
/// `merge(heads) = BLAKE2b-256(sorted (id || K) of every head)`, and its tag
/// and post subkeys.
#[derive(Clone, PartialEq, Eq)]
pub struct PostKey {
    /// The sorted head ids it merges.
    heads: Vec<MsgId>,
    merged: EpochKey,
    /// `K_tag` of the merged key, derived once: a reader computes a tag
    /// for every post of a co-member, so this is the hot path.
    tag_key: Zeroizing<[u8; 32]>,
}

impl PostKey {
    /// Merges the given heads and their keys (any order).
    pub fn merge<'a>(heads: impl IntoIterator<Item = (&'a MsgId, &'a EpochKey)>) -> PostKey {
        let sorted: BTreeMap<&MsgId, &EpochKey> = heads.into_iter().collect();
        let mut input = Zeroizing::new(Vec::with_capacity(sorted.len() * 64));
        for (id, k) in &sorted {
            input.extend_from_slice(&id.0);
            input.extend_from_slice(k.bytes());
        }
        let merged = EpochKey::from_bytes(blake2b(&[&input[..]]));
        PostKey {
            heads: sorted.keys().map(|id| **id).collect(),
            tag_key: merged.subkey(Subkey::Tag),
            merged,
        }
    }

    /// A merged key given as such (the key of an operation's heads, as adds
    /// and `back` carry it), without the ids it merges.
    pub fn from_merged(merged: EpochKey) -> PostKey {
        PostKey {
            heads: Vec::new(),
            tag_key: merged.subkey(Subkey::Tag),
            merged,
        }
    }

    /// The sorted ids of the heads merged.
    pub fn heads(&self) -> &[MsgId] {
        &self.heads
    }

    /// The merged key itself.
    pub fn key(&self) -> &EpochKey {
        &self.merged
    }

    /// The tag of a post at `(author, sequence)`: the first half of
    /// `BLAKE2b-256(K_tag, author || sequence BE)`.
    pub fn tag(&self, author: &FeedId, sequence: u64) -> [u8; TAG_LEN] {
        self.tags(author, sequence).0
    }

    /// The post tag and the members' entry tag of a control message at
    /// `(author, sequence)` under this key, from one hash: the two halves
    /// of `BLAKE2b-256(K_tag, author || sequence BE)`.
    pub fn tags(&self, author: &FeedId, sequence: u64) -> ([u8; TAG_LEN], [u8; TAG_LEN]) {
        tag_pair(&self.tag_key, author, sequence)
    }

    /// Opens a post written under this key at `pos` (one AEAD open).
    pub fn open(&self, post: &Post, pos: &Position) -> Result<Vec<u8>, GroupError> {
        aead_open(
            &post.sealed,
            &pos.additional_data(LABEL_POST, &post.tag),
            &post.nonce,
            &self.merged.subkey(Subkey::Post),
        )
        .map_err(|_| GroupError::PostDoesNotOpen)
    }
}

impl fmt::Debug for PostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostKey({:?})", self.heads)
    }
}

/// Both halves of `BLAKE2b-256(key, author || sequence BE)`: the post tag
/// and the entry tag of a message at that position.
pub(super) fn tag_pair(
    key: &[u8; 32],
    author: &FeedId,
    sequence: u64,
) -> ([u8; TAG_LEN], [u8; TAG_LEN]) {
    let h: [u8; 32] = blake2b_keyed(key, &[&author.0, &sequence.to_be_bytes()]);
    (
        h[..TAG_LEN].try_into().expect("16 bytes"),
        h[TAG_LEN..].try_into().expect("16 bytes"),
    )
}

/// A map from the tags expected at some positions to the keys that made
/// them: the reader's path to a post's key is one lookup, then one AEAD open.
#[derive(Debug, Default)]
pub struct TagIndex {
    map: HashMap<[u8; TAG_LEN], usize>,
    keys: Vec<PostKey>,
}

impl TagIndex {
    /// Indexes the tag of every key at every `(author, sequence)` expected
    /// (typically each member's next few sequence numbers).
    pub fn new(keys: Vec<PostKey>, expected: impl IntoIterator<Item = (FeedId, u64)>) -> TagIndex {
        let mut map = HashMap::new();
        for (author, seq) in expected {
            for (i, k) in keys.iter().enumerate() {
                map.insert(k.tag(&author, seq), i);
            }
        }
        TagIndex { map, keys }
    }

    /// The key whose tag this post carries, if indexed.
    pub fn find(&self, post: &Post) -> Option<&PostKey> {
        self.map.get(&post.tag).map(|&i| &self.keys[i])
    }

    /// Finds the key by the post's tag, then opens the post with it.
    pub fn open(&self, post: &Post, pos: &Position) -> Result<Vec<u8>, GroupError> {
        self.find(post)
            .ok_or(GroupError::NoKeyForTag)?
            .open(post, pos)
    }
}

/// What a member knows of one epoch it has seen, enough to check keys
/// against the commitment and to open `back` once the key is held.
#[derive(Clone, Debug)]
struct SeenEpoch {
    position: Position,
    commitment: [u8; 32],
    has_parents: bool,
    /// The operations it names: their keys in `back` are merged keys.
    ops: Vec<MsgId>,
    back: Vec<u8>,
}

/// The epoch keys one member holds, across groups, and how it learns more.
///
/// [`KeyStore::absorb`] is idempotent and order-independent: feeding it the
/// same messages in any order and any batches ends with the same keys, so a
/// member recovers every key it was entitled to from its secret key and the
/// replicated feeds alone.
pub struct KeyStore {
    me: FeedId,
    curve: CurveKeypair,
    keys: BTreeMap<MsgId, EpochKey>,
    epochs: HashMap<MsgId, SeenEpoch>,
    /// Messages whose slot for us has been opened already.
    opened: HashSet<MsgId>,
    /// Epochs whose `back` has been opened already.
    backs_opened: HashSet<MsgId>,
    /// Keys received for epochs not yet seen, checked when they arrive.
    unverified: Vec<(MsgId, EpochKey)>,
    /// The merged keys of operations' heads, by operation: what opens an
    /// add or role change a member did not see written.
    op_keys: HashMap<MsgId, EpochKey>,
    /// Epochs and operations whose key arrived since [`KeyStore::take_fresh`].
    fresh: Vec<MsgId>,
    /// Keys given for epochs since [`KeyStore::take_claims`], checked or not.
    claims: Vec<(MsgId, EpochKey)>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyStore({}, {} keys)", self.me, self.keys.len())
    }
}

impl KeyStore {
    /// An empty store for the identity `me`.
    pub fn new(me: &Keypair) -> KeyStore {
        KeyStore {
            me: me.id(),
            curve: CurveKeypair::of_identity(me),
            keys: BTreeMap::new(),
            epochs: HashMap::new(),
            opened: HashSet::new(),
            backs_opened: HashSet::new(),
            unverified: Vec::new(),
            op_keys: HashMap::new(),
            fresh: Vec::new(),
            claims: Vec::new(),
        }
    }

    /// The keys given for epochs since the last call (by slots, adds,
    /// forwards and `back`), before they are checked: what may open those
    /// epochs by their own entry. Any feed can claim any key for any id, so
    /// a reader tries every claim, not only the first.
    pub fn take_claims(&mut self) -> Vec<(MsgId, EpochKey)> {
        std::mem::take(&mut self.claims)
    }

    /// A merged key given for an operation: kept (the first one, for our
    /// own adds to pass on) and offered as a claim like any other.
    fn claim_op(&mut self, id: MsgId, key: EpochKey) {
        self.claims.push((id, key.clone()));
        self.op_keys.entry(id).or_insert(key);
    }

    fn claim(&mut self, id: MsgId, key: EpochKey) {
        if !self.keys.contains_key(&id) {
            self.claims.push((id, key.clone()));
        }
        self.unverified.push((id, key));
    }

    /// The epochs and operations whose key arrived since the last call.
    pub fn take_fresh(&mut self) -> Vec<MsgId> {
        std::mem::take(&mut self.fresh)
    }

    /// The pairwise entry key of us and `them`.
    pub fn pairwise(&self, them: &FeedId) -> Result<EntryKey, GroupError> {
        EntryKey::pairwise(&self.curve, &self.me, them)
    }

    /// The merged key an operation was sealed under, when given (by an add
    /// or `back`).
    pub fn op_key(&self, id: &MsgId) -> Option<&EpochKey> {
        self.op_keys.get(id)
    }

    /// The identity the store belongs to.
    pub fn me(&self) -> FeedId {
        self.me
    }

    /// Whether the key of epoch `id` is held.
    pub fn has(&self, id: &MsgId) -> bool {
        self.keys.contains_key(id)
    }

    /// The key of epoch `id`, if held.
    pub fn get(&self, id: &MsgId) -> Option<&EpochKey> {
        self.keys.get(id)
    }

    /// The ids of every epoch whose key is held.
    pub fn epochs(&self) -> BTreeSet<MsgId> {
        self.keys.keys().copied().collect()
    }

    /// Records the key of an epoch we wrote, once its message is in our feed
    /// with id `id` (never before: a key is used only once published).
    pub fn insert_own(&mut self, id: MsgId, key: EpochKey) {
        self.fresh.push(id);
        self.keys.insert(id, key);
    }

    /// The merged post key of `heads`, if every head's key is held.
    pub fn post_key(&self, heads: &BTreeSet<MsgId>) -> Option<PostKey> {
        let pairs = heads
            .iter()
            .map(|h| self.keys.get(h).map(|k| (h, k)))
            .collect::<Option<Vec<_>>>()?;
        Some(PostKey::merge(pairs))
    }

    /// Every post key a post of this group can have been written under (see
    /// [`GroupState::candidate_head_sets`]) whose head keys are all held.
    pub fn post_keys(&self, state: &GroupState) -> Vec<PostKey> {
        state
            .candidate_head_sets()
            .iter()
            .filter_map(|heads| self.post_key(heads))
            .collect()
    }

    /// Opens a post of this group at `pos`: the key is found by the tag
    /// (hashes only), then at most one AEAD open.
    pub fn open_post(
        &self,
        state: &GroupState,
        post: &Post,
        pos: &Position,
    ) -> Result<Vec<u8>, GroupError> {
        self.post_keys(state)
            .into_iter()
            .find(|k| k.tag(&pos.author, pos.sequence) == post.tag)
            .ok_or(GroupError::NoKeyForTag)?
            .open(post, pos)
    }

    /// Learns every key these control messages give us: our slots in epochs,
    /// adds and forwards (each key checked against its epoch's commitment),
    /// then the parents' keys in the `back` of each epoch we hold, until
    /// nothing more opens. Returns the problems found, each with the message
    /// (or, for a key that does not match its commitment, the epoch) it is
    /// about: slots that do not open, keys that do not match.
    pub fn absorb<'a>(
        &mut self,
        msgs: impl IntoIterator<Item = &'a ControlMsg>,
    ) -> Vec<(MsgId, GroupError)> {
        let mut problems = Vec::new();
        // Keys held before their epoch was seen get their back opened once
        // the epoch is here.
        let mut held_early = Vec::new();
        for m in msgs {
            if let Control::Epoch(e) = &m.body
                && let std::collections::hash_map::Entry::Vacant(slot) = self.epochs.entry(m.id)
            {
                slot.insert(SeenEpoch {
                    position: m.position,
                    commitment: e.commitment,
                    has_parents: !e.parents.is_empty(),
                    ops: e.adds.clone(),
                    back: e.back.clone(),
                });
                if self.keys.contains_key(&m.id) {
                    held_early.push(m.id);
                }
            }
            if self.opened.contains(&m.id) {
                continue;
            }
            match &m.body {
                Control::Epoch(e) => {
                    // A key held already (stored, or our own) is not
                    // unsealed again.
                    if self.keys.contains_key(&m.id) {
                        self.opened.insert(m.id);
                        continue;
                    }
                    if let Some(i) = e.recipients.iter().position(|r| *r == self.me) {
                        self.opened.insert(m.id);
                        match self.open_epoch_slot(e, i) {
                            Ok(k) => self.claim(m.id, k),
                            Err(err) => problems.push((m.id, err)),
                        }
                    }
                }
                Control::Add(a) => {
                    if a.members.contains(&self.me) {
                        self.opened.insert(m.id);
                        for (id, k) in &a.keys {
                            if a.ops.contains(id) {
                                self.claim_op(*id, EpochKey::from_bytes(*k));
                            } else {
                                self.claim(*id, EpochKey::from_bytes(*k));
                            }
                        }
                    }
                }
                Control::Roles(_) | Control::Request(_) => {}
                Control::Forward(f) => {
                    if f.to == self.me {
                        self.opened.insert(m.id);
                        for (id, k) in &f.keys {
                            self.claim(*id, EpochKey::from_bytes(*k));
                        }
                    }
                }
            }
        }
        self.settle(&mut problems, held_early);
        problems
    }

    /// Checks waiting keys against the commitments of the epochs seen and
    /// opens the `back` of every newly held epoch, until nothing changes:
    /// each key and each `back` is handled once.
    fn settle(&mut self, problems: &mut Vec<(MsgId, GroupError)>, mut fresh: Vec<MsgId>) {
        loop {
            let waiting = std::mem::take(&mut self.unverified);
            for (id, key) in waiting {
                let Some(seen) = self.epochs.get(&id) else {
                    self.unverified.push((id, key));
                    continue;
                };
                if key.commitment() != seen.commitment {
                    problems.push((id, GroupError::CommitmentMismatch));
                } else if let std::collections::btree_map::Entry::Vacant(slot) = self.keys.entry(id)
                {
                    slot.insert(key);
                    fresh.push(id);
                    self.fresh.push(id);
                }
            }
            let mut progress = false;
            let (mut epoch_claims, mut op_claims) = (Vec::new(), Vec::new());
            for id in std::mem::take(&mut fresh) {
                let Some(seen) = self.epochs.get(&id) else {
                    continue;
                };
                if !seen.has_parents || !self.backs_opened.insert(id) {
                    continue;
                }
                match open_back(
                    &seen.back,
                    &seen.position,
                    &seen.commitment,
                    &self.keys[&id],
                ) {
                    Ok(pairs) => {
                        for (pid, k) in pairs {
                            if seen.ops.contains(&pid) {
                                op_claims.push((pid, k));
                            } else {
                                progress = true;
                                epoch_claims.push((pid, k));
                            }
                        }
                    }
                    Err(err) => problems.push((id, err)),
                }
            }
            for (id, k) in epoch_claims {
                self.claim(id, k);
            }
            for (id, k) in op_claims {
                self.claim_op(id, k);
            }
            if !progress {
                return;
            }
        }
    }

    fn open_epoch_slot(&self, e: &Epoch, i: usize) -> Result<EpochKey, GroupError> {
        let plain = Zeroizing::new(
            sealed_box_open(&e.slots[i], &self.curve).map_err(|_| GroupError::SlotDoesNotOpen)?,
        );
        let bytes: [u8; 32] = plain[..]
            .try_into()
            .map_err(|_| GroupError::Malformed("epoch slot is not a 32-byte key"))?;
        Ok(EpochKey::from_bytes(bytes))
    }
}

/// Opens the `back` of an epoch at `pos` with commitment `commitment` under
/// `K_back` of its key: the parents' `(id, K)`.
pub(super) fn open_back(
    back: &[u8],
    pos: &Position,
    commitment: &[u8; 32],
    key: &EpochKey,
) -> Result<Vec<(MsgId, EpochKey)>, GroupError> {
    if back.len() < AEAD_NONCE_LEN {
        return Err(GroupError::Truncated);
    }
    let (nonce, sealed) = back.split_at(AEAD_NONCE_LEN);
    let nonce: [u8; AEAD_NONCE_LEN] = nonce.try_into().map_err(|_| GroupError::Truncated)?;
    let plain = Zeroizing::new(
        aead_open(
            sealed,
            &pos.additional_data(LABEL_BACK, commitment),
            &nonce,
            &key.subkey(Subkey::Back),
        )
        .map_err(|_| GroupError::BackDoesNotOpen)?,
    );
    Ok(key_pairs_from_bytes(&plain)?
        .into_iter()
        .map(|(id, k)| (id, EpochKey::from_bytes(k)))
        .collect())
}
