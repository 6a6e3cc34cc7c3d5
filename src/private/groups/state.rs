//! Membership as a pure function of the set of control messages, and the
//! writers that make new control messages and posts from that state.
//!
//! An operation (epoch or add) is evaluated only once its causal
//! predecessors (an epoch's parents and adds, an add's heads) are accepted,
//! and its validity depends only on its causal past. So the accepted set,
//! the members and the heads are the same whatever order the messages
//! arrive in: no clock, no arrival order, no winner.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::crypto::{
    AEAD_NONCE_LEN, FeedId, MsgId, aead_seal, blake2b, ed25519_pk_to_curve25519, random_bytes,
    sealed_box_seal,
};

use super::GroupError;
use super::keys::{EpochKey, KeyStore, LABEL_BACK, LABEL_POST, PostKey, Subkey};
use super::wire::{
    Add, Control, ControlMsg, EPOCH_SLOT_LEN, Epoch, Forward, GroupContent, Position, Post,
    key_pairs_to_bytes,
};

/// What the membership rules keep of an accepted operation.
#[derive(Clone, Debug)]
enum Op {
    Epoch {
        parents: BTreeSet<MsgId>,
        removed: BTreeSet<FeedId>,
        recipients: BTreeSet<FeedId>,
        commitment: [u8; 32],
    },
    Add {
        heads: BTreeSet<MsgId>,
        members: BTreeSet<FeedId>,
        admins: BTreeSet<FeedId>,
    },
}

#[derive(Clone, Debug)]
struct Accepted {
    op: Op,
    /// Every operation causally before this one.
    past: HashSet<MsgId>,
}

/// The state of one group as seen from a set of control messages.
#[derive(Clone, Debug)]
pub struct GroupState {
    group: MsgId,
    /// The creator and the admins the creation names.
    founders: BTreeSet<FeedId>,
    accepted: HashMap<MsgId, Accepted>,
    /// Epochs whose keys a forward carried to each member.
    forwarded: HashMap<FeedId, BTreeSet<MsgId>>,
    /// Waiting for a causal predecessor.
    pending: BTreeMap<MsgId, ControlMsg>,
    /// A missing predecessor -> the pending operations waiting on it (each
    /// waits on one at a time), so an arrival wakes only what it unblocks.
    waiting: HashMap<MsgId, Vec<MsgId>>,
    /// Invalid, with the reason; never reconsidered.
    rejected: BTreeMap<MsgId, GroupError>,
    /// What the writers ask for most, recomputed whenever an operation is
    /// accepted, so making an add or a post does not walk the history.
    derived: Derived,
}

#[derive(Clone, Debug, Default)]
struct Derived {
    heads: BTreeSet<MsgId>,
    members: BTreeSet<FeedId>,
    /// Members and admins as of the heads' causal past (how a new add is
    /// judged).
    head_members: BTreeSet<FeedId>,
    head_admins: BTreeSet<FeedId>,
}

/// An epoch made but not yet published: the content to write and its key.
/// Record the key with [`KeyStore::insert_own`] only once the message is in
/// your feed; until then, nothing may be encrypted under it.
#[derive(Debug)]
pub struct NewEpoch {
    /// The content string to publish.
    pub content: String,
    /// The new epoch key.
    pub key: EpochKey,
}

/// Makes the epoch that creates a group: the author, `members` and `admins`
/// (besides the author) are the recipients; `admins` may add and remove.
/// The group id is the id this message gets.
pub fn create(
    pos: &Position,
    members: &[FeedId],
    admins: &[FeedId],
) -> Result<NewEpoch, GroupError> {
    let mut recipients: BTreeSet<FeedId> = members.iter().chain(admins).copied().collect();
    recipients.insert(pos.author);
    let admins: BTreeSet<FeedId> = admins
        .iter()
        .filter(|a| **a != pos.author)
        .copied()
        .collect();
    seal_epoch(
        pos,
        None,
        Vec::new(),
        Vec::new(),
        admins.into_iter().collect(),
        Vec::new(),
        recipients.into_iter().collect(),
        Vec::new(),
    )
}

impl GroupState {
    /// The empty state of the group whose creating epoch has id `group`.
    pub fn new(group: MsgId) -> GroupState {
        GroupState {
            group,
            founders: BTreeSet::new(),
            accepted: HashMap::new(),
            forwarded: HashMap::new(),
            pending: BTreeMap::new(),
            waiting: HashMap::new(),
            rejected: BTreeMap::new(),
            derived: Derived::default(),
        }
    }

    /// The state computed from a set of messages (any order).
    pub fn from_messages<'a>(
        group: MsgId,
        msgs: impl IntoIterator<Item = &'a ControlMsg>,
    ) -> GroupState {
        let mut s = GroupState::new(group);
        for m in msgs {
            s.apply(m.clone());
        }
        s
    }

    /// Takes one more control message into account. Messages of other
    /// groups are ignored; a forward only records which epochs its member
    /// no longer misses; an operation whose predecessors are not all here
    /// waits for them.
    pub fn apply(&mut self, msg: ControlMsg) {
        if msg.body.group(&msg.id) != self.group {
            return;
        }
        if let Control::Forward(f) = &msg.body {
            self.forwarded
                .entry(f.to)
                .or_default()
                .extend(f.epochs.iter().copied());
            return;
        }
        if self.accepted.contains_key(&msg.id)
            || self.pending.contains_key(&msg.id)
            || self.rejected.contains_key(&msg.id)
        {
            return;
        }
        let id = msg.id;
        self.pending.insert(id, msg);
        self.settle(id);
    }

    /// Decides `id` if its predecessors are, then everything that waited on
    /// what got decided; keeps what the writers need up to date.
    fn settle(&mut self, id: MsgId) {
        let before = self.accepted.len();
        self.settle_from(id);
        if self.accepted.len() != before {
            let all = self.all();
            let heads = self.heads_in(&all);
            let past = self.closure(&heads);
            self.derived = Derived {
                members: self.members_in(&all),
                head_members: self.members_in(&past),
                head_admins: self.admins_in(&past),
                heads,
            };
        }
    }

    fn settle_from(&mut self, id: MsgId) {
        let mut work = vec![id];
        while let Some(id) = work.pop() {
            let Some(msg) = self.pending.get(&id) else {
                continue;
            };
            let deps = deps(&msg.body);
            if let Some(bad) = deps.iter().find(|d| self.rejected.contains_key(*d)) {
                self.pending.remove(&id);
                self.rejected
                    .insert(id, GroupError::DependencyRejected(*bad));
            } else if let Some(missing) = deps.iter().find(|d| !self.accepted.contains_key(*d)) {
                self.waiting.entry(*missing).or_default().push(id);
                continue;
            } else {
                let msg = self.pending.remove(&id).expect("pending id");
                match self.evaluate(&msg) {
                    Ok(acc) => {
                        if let Control::Epoch(e) = &msg.body
                            && e.group.is_none()
                        {
                            self.founders = e.admins.iter().copied().collect();
                            self.founders.insert(msg.position.author);
                        }
                        self.accepted.insert(id, acc);
                    }
                    Err(err) => {
                        self.rejected.insert(id, err);
                    }
                }
            }
            // Decided: wake what waited on it.
            if let Some(waiters) = self.waiting.remove(&id) {
                work.extend(waiters);
            }
        }
    }

    /// Whether an operation whose predecessors are all accepted is valid.
    fn evaluate(&self, msg: &ControlMsg) -> Result<Accepted, GroupError> {
        let author = msg.position.author;
        match &msg.body {
            Control::Epoch(e) => {
                let recipients = unique(&e.recipients, "recipient")?;
                let removed = unique(&e.removed, "removed feed")?;
                let parents = unique(&e.parents, "parent")?;
                unique(&e.adds, "add")?;
                unique(&e.admins, "admin")?;
                if e.group.is_none() {
                    if !e.parents.is_empty() || !e.adds.is_empty() {
                        return Err(GroupError::CreateWithParents);
                    }
                    if !removed.is_empty() {
                        return Err(GroupError::Malformed("a creation removes no one"));
                    }
                    if !recipients.contains(&author) {
                        return Err(GroupError::AuthorNotRecipient);
                    }
                    return Ok(Accepted {
                        op: Op::Epoch {
                            parents,
                            removed,
                            recipients,
                            commitment: e.commitment,
                        },
                        past: HashSet::new(),
                    });
                }
                if parents.is_empty() {
                    return Err(GroupError::NoParents);
                }
                if !e.admins.is_empty() {
                    return Err(GroupError::AdminsOutsideCreate);
                }
                self.check_kinds(&e.parents, true)?;
                self.check_kinds(&e.adds, false)?;
                let past = self.closure(e.parents.iter().chain(&e.adds));
                if self.heads_in(&past) != parents {
                    return Err(GroupError::ParentsNotHeads);
                }
                let members = self.members_in(&past);
                if !members.contains(&author) {
                    return Err(GroupError::AuthorNotMember(author));
                }
                if !removed.is_empty() && !self.admins_in(&past).contains(&author) {
                    return Err(GroupError::NotAdmin(author));
                }
                if removed.contains(&author) {
                    return Err(GroupError::RemovesAuthor);
                }
                if let Some(r) = removed.iter().find(|r| !members.contains(*r)) {
                    return Err(GroupError::NotAMember(*r));
                }
                if recipients != &members - &removed {
                    return Err(GroupError::RecipientsMismatch);
                }
                Ok(Accepted {
                    op: Op::Epoch {
                        parents,
                        removed,
                        recipients,
                        commitment: e.commitment,
                    },
                    past,
                })
            }
            Control::Add(a) => {
                let heads = unique(&a.heads, "head")?;
                let added = unique(&a.members, "member")?;
                let admins = unique(&a.admins, "admin")?;
                if !admins.is_subset(&added) {
                    return Err(GroupError::Malformed("an add names admins it does not add"));
                }
                if heads.is_empty() {
                    return Err(GroupError::NoParents);
                }
                if added.is_empty() {
                    return Err(GroupError::NoNewMembers);
                }
                self.check_kinds(&a.heads, true)?;
                let past = self.closure(&a.heads);
                if self.heads_in(&past) != heads {
                    return Err(GroupError::ParentsNotHeads);
                }
                if !self.members_in(&past).contains(&author) {
                    return Err(GroupError::AuthorNotMember(author));
                }
                if !self.admins_in(&past).contains(&author) {
                    return Err(GroupError::NotAdmin(author));
                }
                Ok(Accepted {
                    op: Op::Add {
                        heads,
                        members: added,
                        admins,
                    },
                    past,
                })
            }
            Control::Forward(_) => Err(GroupError::Malformed("a forward is not an operation")),
        }
    }

    /// Refuses ids that are not accepted epochs (`epochs`) or adds.
    fn check_kinds(&self, ids: &[MsgId], epochs: bool) -> Result<(), GroupError> {
        for id in ids {
            let ok = match self.accepted.get(id).map(|a| &a.op) {
                Some(Op::Epoch { .. }) => epochs,
                Some(Op::Add { .. }) => !epochs,
                None => false,
            };
            if !ok {
                return Err(GroupError::WrongDependency(*id));
            }
        }
        Ok(())
    }

    /// The ids and everything causally before them.
    fn closure<'a>(&self, ids: impl IntoIterator<Item = &'a MsgId>) -> HashSet<MsgId> {
        let mut out = HashSet::new();
        for id in ids {
            if out.insert(*id) {
                out.extend(self.accepted[id].past.iter().copied());
            }
        }
        out
    }

    /// The epochs of a causally closed set that no other epoch in it succeeds.
    fn heads_in(&self, set: &HashSet<MsgId>) -> BTreeSet<MsgId> {
        let epochs: Vec<&MsgId> = set
            .iter()
            .filter(|id| matches!(self.accepted[*id].op, Op::Epoch { .. }))
            .collect();
        let mut heads: BTreeSet<MsgId> = epochs.iter().map(|id| **id).collect();
        for id in &epochs {
            for p in &self.accepted[*id].past {
                heads.remove(p);
            }
        }
        heads
    }

    /// The members of a causally closed set, removal winning: a feed is a
    /// member when one of its adds (or the creation) causally follows every
    /// removal of it in the set.
    fn members_in(&self, set: &HashSet<MsgId>) -> BTreeSet<FeedId> {
        let mut adds: Vec<(FeedId, MsgId)> = Vec::new();
        let mut removals: HashMap<FeedId, Vec<MsgId>> = HashMap::new();
        for id in set {
            match &self.accepted[id].op {
                Op::Epoch {
                    parents,
                    removed,
                    recipients,
                    ..
                } => {
                    if parents.is_empty() {
                        adds.extend(recipients.iter().map(|r| (*r, *id)));
                    }
                    for r in removed {
                        removals.entry(*r).or_default().push(*id);
                    }
                }
                Op::Add { members, .. } => adds.extend(members.iter().map(|m| (*m, *id))),
            }
        }
        adds.into_iter()
            .filter(|(f, add)| {
                removals.get(f).is_none_or(|rs| {
                    let past = &self.accepted[add].past;
                    rs.iter().all(|r| past.contains(r))
                })
            })
            .map(|(f, _)| f)
            .collect()
    }

    /// Everyone made an admin in a causally closed set: the founders and
    /// those adds named. Whether they still are members is checked apart.
    fn admins_in(&self, set: &HashSet<MsgId>) -> BTreeSet<FeedId> {
        let mut admins = self.founders.clone();
        for id in set {
            if let Op::Add { admins: named, .. } = &self.accepted[id].op {
                admins.extend(named.iter().copied());
            }
        }
        admins
    }

    fn all(&self) -> HashSet<MsgId> {
        self.accepted.keys().copied().collect()
    }

    /// The group id.
    pub fn group(&self) -> MsgId {
        self.group
    }

    /// The current admins: the creator, those the creation or an add
    /// named, who are still members (empty before the creation is seen).
    pub fn admins(&self) -> BTreeSet<FeedId> {
        let members = self.members();
        self.admins_in(&self.all())
            .into_iter()
            .filter(|a| members.contains(a))
            .collect()
    }

    /// Everyone who has been a member at some point: the recipients of every
    /// epoch and every feed added. Their posts are looked for (a removed
    /// member's last posts may have been written before it saw the removal).
    pub fn ever_members(&self) -> BTreeSet<FeedId> {
        let mut out = BTreeSet::new();
        for acc in self.accepted.values() {
            match &acc.op {
                Op::Epoch { recipients, .. } => out.extend(recipients.iter().copied()),
                Op::Add { members, .. } => out.extend(members.iter().copied()),
            }
        }
        out
    }

    /// The accepted epochs, oldest first by causal depth then id: `(id,
    /// removed, recipients)`.
    pub fn epochs(&self) -> Vec<(MsgId, BTreeSet<FeedId>, BTreeSet<FeedId>)> {
        let mut out: Vec<_> = self
            .accepted
            .iter()
            .filter_map(|(id, acc)| match &acc.op {
                Op::Epoch {
                    removed,
                    recipients,
                    ..
                } => Some((acc.past.len(), *id, removed.clone(), recipients.clone())),
                Op::Add { .. } => None,
            })
            .collect();
        out.sort_by_key(|e| (e.0, e.1));
        out.into_iter().map(|(_, id, r, m)| (id, r, m)).collect()
    }

    /// The current members.
    pub fn members(&self) -> BTreeSet<FeedId> {
        self.derived.members.clone()
    }

    /// Whether `f` is a current member.
    pub fn is_member(&self, f: &FeedId) -> bool {
        self.derived.members.contains(f)
    }

    /// The heads: the epochs no accepted epoch succeeds.
    pub fn heads(&self) -> BTreeSet<MsgId> {
        self.derived.heads.clone()
    }

    /// A commitment to the current key that anyone can compute from the clear
    /// fields: `BLAKE2b-256("heads" || sorted (id || C(K)) of the heads)`.
    /// Replicas agree on it exactly when they agree on the heads.
    pub fn heads_commitment(&self) -> [u8; 32] {
        let mut input = Vec::new();
        for h in self.heads() {
            input.extend_from_slice(&h.0);
            if let Op::Epoch { commitment, .. } = &self.accepted[&h].op {
                input.extend_from_slice(commitment);
            }
        }
        blake2b(&[b"heads", &input])
    }

    /// The recipients of an accepted epoch.
    pub fn recipients(&self, epoch: &MsgId) -> Option<&BTreeSet<FeedId>> {
        match &self.accepted.get(epoch)?.op {
            Op::Epoch { recipients, .. } => Some(recipients),
            Op::Add { .. } => None,
        }
    }

    /// Operations accepted so far.
    pub fn accepted_len(&self) -> usize {
        self.accepted.len()
    }

    /// Operations waiting for a predecessor.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Operations refused, with why.
    pub fn rejected(&self) -> &BTreeMap<MsgId, GroupError> {
        &self.rejected
    }

    /// Every set of heads a post can have been written under: the current
    /// heads, each single epoch, each epoch's parents, and the heads of the
    /// union of any two concurrent epochs' pasts. A writer's view with three
    /// or more concurrent heads is only covered once it is one of these (the
    /// current heads or the parents of a later epoch).
    pub fn candidate_head_sets(&self) -> BTreeSet<BTreeSet<MsgId>> {
        let mut sets = BTreeSet::new();
        let mut epochs: Vec<MsgId> = Vec::new();
        for (id, acc) in &self.accepted {
            if let Op::Epoch { parents, .. } = &acc.op {
                epochs.push(*id);
                sets.insert(BTreeSet::from([*id]));
                if !parents.is_empty() {
                    sets.insert(parents.clone());
                }
            }
        }
        epochs.sort();
        for (i, a) in epochs.iter().enumerate() {
            for b in &epochs[i + 1..] {
                let (pa, pb) = (&self.accepted[a].past, &self.accepted[b].past);
                if !pa.contains(b) && !pb.contains(a) {
                    sets.insert(self.heads_in(&self.closure([a, b])));
                }
            }
        }
        let heads = self.heads();
        if !heads.is_empty() {
            sets.insert(heads);
        }
        sets
    }

    /// The heads whose key `member` was never sealed (it was added
    /// concurrently with their epoch): what a [`GroupState::forward`] to it
    /// must carry before it can post.
    pub fn missing_for(&self, member: &FeedId) -> Vec<MsgId> {
        if !self.is_member(member) {
            return Vec::new();
        }
        self.heads()
            .into_iter()
            .filter(|h| {
                let sealed = self.recipients(h).is_some_and(|r| r.contains(member));
                let added = self.accepted.values().any(|a| match &a.op {
                    Op::Add { heads, members, .. } => heads.contains(h) && members.contains(member),
                    Op::Epoch { .. } => false,
                });
                let forwarded = self.forwarded.get(member).is_some_and(|f| f.contains(h));
                !sealed && !added && !forwarded
            })
            .collect()
    }

    /// Makes an epoch succeeding the current heads that removes `removed`
    /// (a refresh when empty): a new key sealed to every remaining member,
    /// the heads' keys wrapped in `back`.
    pub fn rekey(
        &self,
        keys: &KeyStore,
        pos: &Position,
        removed: &[FeedId],
    ) -> Result<NewEpoch, GroupError> {
        let members = self.members();
        let removed = unique(removed, "removed feed")?;
        if !members.contains(&pos.author) {
            return Err(GroupError::AuthorNotMember(pos.author));
        }
        if !removed.is_empty() && !self.admins().contains(&pos.author) {
            return Err(GroupError::NotAdmin(pos.author));
        }
        if removed.contains(&pos.author) {
            return Err(GroupError::RemovesAuthor);
        }
        if let Some(r) = removed.iter().find(|r| !members.contains(*r)) {
            return Err(GroupError::NotAMember(*r));
        }
        let heads = self.heads();
        let before = self.closure(&heads);
        let mut adds: Vec<MsgId> = self
            .accepted
            .iter()
            .filter(|(id, a)| matches!(a.op, Op::Add { .. }) && !before.contains(*id))
            .map(|(id, _)| *id)
            .collect();
        adds.sort();
        let back = self.key_pairs(keys, &heads)?;
        seal_epoch(
            pos,
            Some(self.group),
            heads.iter().copied().collect(),
            adds,
            Vec::new(),
            removed.iter().copied().collect(),
            (&members - &removed).into_iter().collect(),
            back,
        )
    }

    /// Makes an add of `new` members, of whom `admins` become admins: each
    /// gets the current heads' ids and keys (older keys are reached through
    /// `back`), so its cost does not depend on the history's length.
    pub fn add(
        &self,
        keys: &KeyStore,
        pos: &Position,
        new: &[FeedId],
        admins: &[FeedId],
    ) -> Result<String, GroupError> {
        let new = unique(new, "member")?;
        let admins = unique(admins, "admin")?;
        if new.is_empty() {
            return Err(GroupError::NoNewMembers);
        }
        if !admins.is_subset(&new) {
            return Err(GroupError::Malformed("an add names admins it does not add"));
        }
        let heads = self.heads();
        // As the add's validity is judged: membership in its causal past,
        // the heads and what precedes them.
        if !self.derived.head_members.contains(&pos.author) {
            return Err(GroupError::AuthorNotMember(pos.author));
        }
        if !self.derived.head_admins.contains(&pos.author) {
            return Err(GroupError::NotAdmin(pos.author));
        }
        let plain = zeroize::Zeroizing::new(self.key_pairs(keys, &heads)?);
        let slots = new
            .iter()
            .map(|m| seal_to(m, &plain))
            .collect::<Result<_, _>>()?;
        GroupContent::Add(Add {
            group: self.group,
            heads: heads.into_iter().collect(),
            members: new.into_iter().collect(),
            admins: admins.into_iter().collect(),
            slots,
        })
        .encode()
    }

    /// Seals the keys of `epochs` to the member `to` (who missed them, see
    /// [`GroupState::missing_for`]). Idempotent for the receiver.
    pub fn forward(
        &self,
        keys: &KeyStore,
        to: &FeedId,
        epochs: &[MsgId],
    ) -> Result<String, GroupError> {
        if !self.is_member(to) {
            return Err(GroupError::NotAMember(*to));
        }
        let epochs: BTreeSet<MsgId> = epochs.iter().copied().collect();
        let plain = zeroize::Zeroizing::new(self.key_pairs(keys, &epochs)?);
        GroupContent::Forward(Forward {
            group: self.group,
            to: *to,
            epochs: epochs.iter().copied().collect(),
            slot: seal_to(to, &plain)?,
        })
        .encode()
    }

    /// Encrypts a post body (compact JSON of the inner content) for the
    /// group at `pos`, under the merged key of the current heads. Refused
    /// unless the author is a member holding every head key.
    pub fn seal_post(
        &self,
        keys: &KeyStore,
        pos: &Position,
        plain: &[u8],
    ) -> Result<String, GroupError> {
        if !self.is_member(&pos.author) {
            return Err(GroupError::AuthorNotMember(pos.author));
        }
        let heads = self.heads();
        if let Some(h) = heads.iter().find(|h| !keys.has(h)) {
            return Err(GroupError::MissingKey(*h));
        }
        let key = keys.post_key(&heads).ok_or(GroupError::NoParents)?;
        GroupContent::Post(seal_post_with(&key, pos, plain)).encode()
    }

    fn key_pairs(&self, keys: &KeyStore, ids: &BTreeSet<MsgId>) -> Result<Vec<u8>, GroupError> {
        let pairs = ids
            .iter()
            .map(|h| {
                keys.get(h)
                    .map(|k| (h, k.bytes()))
                    .ok_or(GroupError::MissingKey(*h))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(key_pairs_to_bytes(pairs))
    }
}

/// A post under a given key at `pos`.
pub(super) fn seal_post_with(key: &PostKey, pos: &Position, plain: &[u8]) -> Post {
    let tag = key.tag(&pos.author, pos.sequence);
    let nonce: [u8; AEAD_NONCE_LEN] = random_bytes();
    let sealed = aead_seal(
        plain,
        &pos.additional_data(LABEL_POST, &tag),
        &nonce,
        &key.key().subkey(Subkey::Post),
    );
    Post { tag, nonce, sealed }
}

/// Everything an operation needs before it can be evaluated.
fn deps(c: &Control) -> Vec<MsgId> {
    match c {
        Control::Epoch(e) => e.parents.iter().chain(&e.adds).copied().collect(),
        Control::Add(a) => a.heads.clone(),
        Control::Forward(_) => Vec::new(),
    }
}

/// The items as a set, refusing duplicates.
fn unique<T: Ord + Copy>(items: &[T], what: &'static str) -> Result<BTreeSet<T>, GroupError> {
    let set: BTreeSet<T> = items.iter().copied().collect();
    if set.len() != items.len() {
        return Err(GroupError::Duplicate(what));
    }
    Ok(set)
}

/// A sealed box of `plain` to a feed's curve25519 key.
fn seal_to(to: &FeedId, plain: &[u8]) -> Result<Vec<u8>, GroupError> {
    let pk = ed25519_pk_to_curve25519(to).map_err(|_| GroupError::BadRecipient(*to))?;
    Ok(sealed_box_seal(plain, &pk))
}

/// A new epoch with a fresh key: slots for the recipients, and `back`
/// wrapping `back_plain` (the parents' `(id || K)`) when there are parents.
#[allow(clippy::too_many_arguments)]
fn seal_epoch(
    pos: &Position,
    group: Option<MsgId>,
    parents: Vec<MsgId>,
    adds: Vec<MsgId>,
    admins: Vec<FeedId>,
    removed: Vec<FeedId>,
    recipients: Vec<FeedId>,
    back_plain: Vec<u8>,
) -> Result<NewEpoch, GroupError> {
    let back_plain = zeroize::Zeroizing::new(back_plain);
    let key = EpochKey::random();
    let commitment = key.commitment();
    let slots = recipients
        .iter()
        .map(|r| {
            let sealed = seal_to(r, key.bytes())?;
            let mut slot = [0u8; EPOCH_SLOT_LEN];
            slot.copy_from_slice(&sealed);
            Ok(slot)
        })
        .collect::<Result<_, GroupError>>()?;
    let back = if parents.is_empty() {
        Vec::new()
    } else {
        let nonce: [u8; AEAD_NONCE_LEN] = random_bytes();
        let mut back = nonce.to_vec();
        back.extend(aead_seal(
            &back_plain,
            &pos.additional_data(LABEL_BACK, &commitment),
            &nonce,
            &key.subkey(Subkey::Back),
        ));
        back
    };
    let content = GroupContent::Epoch(Epoch {
        group,
        parents,
        adds,
        admins,
        removed,
        recipients,
        commitment,
        slots,
        back,
    })
    .encode()?;
    Ok(NewEpoch { content, key })
}
