//! Membership as a pure function of the set of control messages, and the
//! writers that make new control messages and posts from that state.
//!
//! Operations (epochs, adds, role changes) form a graph through what each
//! names as seen (parent epochs, loose adds). Every operation is judged in
//! one canonical order of that graph, by causal depth then id, by a
//! sequential machine; so the result is a function of the set of messages
//! alone: no clock, no arrival order. Where the machine's answer could hang
//! on that order, the rules make it not matter:
//!
//! - a removal or demotion names, for each feed it cuts, the last sequence
//!   of that feed its author had seen; everything the feed wrote after it
//!   is void (for a demotion: has no admin rights), wherever it sits in the
//!   order, unless it causally follows a re-add (re-grant) that follows the
//!   cut;
//! - removal wins: an add of a feed counts only when it causally follows
//!   every removal of that feed;
//! - an admin may remove or demote only admins junior to it (seniority is
//!   the position of the grant; the creator is the most senior), so mutual
//!   removals cannot both hold and the creator always remains an admin.
//!
//! A cut found after the operations it voids were judged ("retroactive")
//! makes the machine run again with every known cut applied from the start,
//! until the set of cutting operations is stable. An operation arriving at
//! the end of the order is applied in place: a chain of operations costs a
//! constant amount each.
//!
//! Voiding an operation decides membership, not who holds a key: the slots
//! of a void add or epoch still open for the feeds they name. When that
//! leaves a feed that is not a member holding every head key
//! ([`GroupState::exposed_to`]), nothing is sealed under the heads (posts,
//! adds, role changes) until an admin refreshes the group.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::crypto::{
    AEAD_NONCE_LEN, FeedId, MsgId, aead_seal, blake2b, ed25519_pk_to_curve25519, random_bytes,
    sealed_box_seal,
};

use super::GroupError;
use super::envelope::{EntryKey, MAX_ENTRIES, post_content, seal_control};
use super::keys::{EpochKey, KeyStore, LABEL_BACK, LABEL_POST, PostKey, Subkey};
use super::wire::{
    Add, Control, ControlMsg, Cut, EPOCH_SLOT_LEN, Epoch, Forward, GroupContent, KeyPair, Position,
    Post, Request, Roles, key_pairs_to_bytes,
};

/// How many recent views (head sets) a post is looked for under, besides
/// the current heads: a post written by a member more than this many
/// operations behind the group is not found.
pub const RECENT_VIEWS: usize = 64;

/// Runs of the machine before it stops looking for more cuts.
const MAX_PASSES: usize = 8;

/// Seniority of an admin grant: smaller is more senior. The creator is
/// `(0, group, zero feed)`, the admins the creation names `(0, group,
/// feed)`, later grants `(depth, op, feed)`.
type Rank = (u32, MsgId, FeedId);

const NO_FEED: FeedId = FeedId([0; 32]);

/// What the rules keep of an operation whose predecessors are all here.
#[derive(Clone, Debug)]
enum Body {
    Create {
        admins: BTreeSet<FeedId>,
        recipients: BTreeSet<FeedId>,
        commitment: [u8; 32],
    },
    Epoch {
        parents: BTreeSet<MsgId>,
        removed: Vec<Cut>,
        recipients: BTreeSet<FeedId>,
        commitment: [u8; 32],
    },
    Add {
        members: BTreeSet<FeedId>,
        admins: BTreeSet<FeedId>,
    },
    Roles {
        promote: BTreeSet<FeedId>,
        demote: Vec<Cut>,
    },
}

#[derive(Clone, Debug)]
struct Node {
    author: FeedId,
    seq: u64,
    /// 0 for the creation, else one more than the deepest predecessor.
    depth: u32,
    /// Parent epochs and loose operations named.
    deps: Vec<MsgId>,
    /// How many of `deps` are parent epochs (the heads it was written
    /// under).
    parents: usize,
    body: Body,
}

impl Node {
    fn is_epoch(&self) -> bool {
        matches!(self.body, Body::Create { .. } | Body::Epoch { .. })
    }

    /// The cuts it makes, and whether they remove (else demote).
    fn cuts(&self) -> Option<(&[Cut], bool)> {
        match &self.body {
            Body::Epoch { removed, .. } if !removed.is_empty() => Some((removed, true)),
            Body::Roles { demote, .. } if !demote.is_empty() => Some((demote, false)),
            _ => None,
        }
    }
}

/// One run of the machine over the canonical order.
#[derive(Clone, Debug, Default)]
struct Eval {
    /// Cuts known before the run, from the cutting operations a previous
    /// run found valid: feed -> (cut, operation, whether a removal).
    ahead: HashMap<FeedId, Vec<(u64, MsgId, bool)>>,
    valid: HashSet<MsgId>,
    void: BTreeMap<MsgId, GroupError>,
    founder: Option<FeedId>,
    /// Current members; `Some(rank)` for admins.
    members: BTreeMap<FeedId, Option<Rank>>,
    ever: BTreeSet<FeedId>,
    /// Each feed's latest admin grant.
    ever_admin: HashMap<FeedId, Rank>,
    removals: HashMap<FeedId, Vec<(u64, MsgId)>>,
    /// Removals and demotions of feeds that held admin rights.
    admin_cuts: HashMap<FeedId, Vec<(u64, MsgId)>>,
    /// Valid creation and adds of each feed.
    joins: HashMap<FeedId, Vec<MsgId>>,
    /// Valid admin grants of each feed.
    grants: HashMap<FeedId, Vec<MsgId>>,
    /// Valid operations by author: (sequence, id).
    by_author: HashMap<FeedId, Vec<(u64, MsgId)>>,
    heads: BTreeSet<MsgId>,
    /// Valid adds and role changes no valid epoch includes yet.
    loose: BTreeSet<MsgId>,
    /// Recent head sets, parent sets and single epochs, newest last.
    views: VecDeque<BTreeSet<MsgId>>,
    last: Option<(u32, MsgId)>,
    /// A cut voided an operation judged valid before it.
    retro: bool,
}

/// The state of one group as seen from a set of control messages.
#[derive(Clone, Debug)]
pub struct GroupState {
    group: MsgId,
    nodes: HashMap<MsgId, Node>,
    /// An operation -> the operations (valid or void) that name it: where
    /// its key went on to (see [`GroupState::exposed_to`]).
    children: HashMap<MsgId, Vec<MsgId>>,
    /// The canonical order: (depth, id).
    order: BTreeSet<(u32, MsgId)>,
    /// Waiting for a predecessor.
    pending: BTreeMap<MsgId, ControlMsg>,
    /// A missing predecessor -> the operations waiting on it.
    waiting: HashMap<MsgId, Vec<MsgId>>,
    /// Malformed, or depending on a malformed one; never reconsidered.
    rejected: BTreeMap<MsgId, GroupError>,
    /// Key requests: id -> (author, sequence, epochs).
    requests: BTreeMap<MsgId, (FeedId, u64, Vec<MsgId>)>,
    /// Request id -> the feeds that answered it.
    answers: HashMap<MsgId, BTreeSet<FeedId>>,
    /// (admin, member) -> the epochs whose keys that admin forwarded to
    /// that member: an honest forward works, so an admin gives each key
    /// to each member once, however often the member asks.
    forwarded: HashMap<(FeedId, FeedId), BTreeSet<MsgId>>,
    eval: Eval,
    /// Bumped whenever the evaluation changes.
    version: u64,
    /// Operations judged so far, counting every judgement again after a
    /// late cut: the work the state has done.
    work: u64,
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
/// The group id is the id this message gets. Each recipient other than
/// the author finds it through a pairwise entry (an invitation).
pub fn create(
    keys: &KeyStore,
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
    let mut entries = vec![keys.pairwise(&pos.author)?];
    for r in recipients.iter().filter(|r| **r != pos.author) {
        entries.push(keys.pairwise(r)?);
    }
    seal_epoch(
        pos,
        None,
        Vec::new(),
        Vec::new(),
        admins.into_iter().collect(),
        Vec::new(),
        recipients.into_iter().collect(),
        Vec::new(),
        entries,
    )
}

impl GroupState {
    /// The empty state of the group whose creating epoch has id `group`.
    pub fn new(group: MsgId) -> GroupState {
        GroupState {
            group,
            nodes: HashMap::new(),
            children: HashMap::new(),
            order: BTreeSet::new(),
            pending: BTreeMap::new(),
            waiting: HashMap::new(),
            rejected: BTreeMap::new(),
            requests: BTreeMap::new(),
            answers: HashMap::new(),
            forwarded: HashMap::new(),
            eval: Eval::default(),
            version: 0,
            work: 0,
        }
    }

    /// The state computed from a set of messages (any order).
    pub fn from_messages<'a>(
        group: MsgId,
        msgs: impl IntoIterator<Item = &'a ControlMsg>,
    ) -> GroupState {
        let mut s = GroupState::new(group);
        s.apply_all(msgs.into_iter().cloned());
        s
    }

    /// Takes one more control message into account.
    pub fn apply(&mut self, msg: ControlMsg) {
        self.apply_all([msg]);
    }

    /// Takes more control messages into account, judging once at the end
    /// where the new operations do not simply follow the old ones.
    /// Messages of other groups are ignored; an operation whose
    /// predecessors are not all here waits for them.
    pub fn apply_all(&mut self, msgs: impl IntoIterator<Item = ControlMsg>) {
        let mut fresh = Vec::new();
        for msg in msgs {
            if msg.body.group(&msg.id) != self.group {
                continue;
            }
            match &msg.body {
                Control::Request(r) => {
                    self.requests.entry(msg.id).or_insert((
                        msg.position.author,
                        msg.position.sequence,
                        r.epochs.clone(),
                    ));
                    continue;
                }
                Control::Forward(f) => {
                    self.answers
                        .entry(f.request)
                        .or_default()
                        .insert(msg.position.author);
                    self.forwarded
                        .entry((msg.position.author, f.to))
                        .or_default()
                        .extend(f.keys.iter().map(|(id, _)| *id));
                    continue;
                }
                _ => {}
            }
            let id = msg.id;
            if self.nodes.contains_key(&id)
                || self.pending.contains_key(&id)
                || self.rejected.contains_key(&id)
            {
                continue;
            }
            self.pending.insert(id, msg);
            self.settle_from(id, &mut fresh);
        }
        if fresh.is_empty() {
            return;
        }
        self.version += 1;
        fresh.sort();
        // An operation that lands inside the order but cannot count
        // wherever it lands (its author never held admin rights, or wrote
        // it after being removed for good) changes nothing: it is voided
        // without judging the history again. So a flood of operations
        // naming old heads costs a constant each.
        if let Some(last) = self.eval.last {
            let mut inert = Vec::new();
            fresh.retain(|(depth, id)| {
                if (*depth, *id) > last {
                    return true;
                }
                match self.inert(&self.nodes[id]) {
                    Some(why) => {
                        inert.push((*id, why));
                        false
                    }
                    None => true,
                }
            });
            self.work += inert.len() as u64;
            self.eval.void.extend(inert);
            if fresh.is_empty() {
                return;
            }
        }
        let in_place = self.eval.last.is_none_or(|last| fresh[0] > last);
        if in_place {
            let mut ev = std::mem::take(&mut self.eval);
            ev.retro = false;
            for (_, id) in &fresh {
                ev.step(self, *id);
            }
            self.work += fresh.len() as u64;
            let retro = ev.retro;
            self.eval = ev;
            if !retro {
                return;
            }
        }
        self.recompute();
    }

    /// Accepts `id` (and what waited on it) once its predecessors are here.
    fn settle_from(&mut self, id: MsgId, fresh: &mut Vec<(u32, MsgId)>) {
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
            } else if let Some(missing) = deps.iter().find(|d| !self.nodes.contains_key(*d)) {
                self.waiting.entry(*missing).or_default().push(id);
                continue;
            } else {
                let msg = self.pending.remove(&id).expect("pending id");
                match self.node_of(&msg) {
                    Ok(node) => {
                        fresh.push((node.depth, id));
                        self.order.insert((node.depth, id));
                        for d in &node.deps {
                            self.children.entry(*d).or_default().push(id);
                        }
                        self.nodes.insert(id, node);
                    }
                    Err(err) => {
                        self.rejected.insert(id, err);
                    }
                }
            }
            if let Some(waiters) = self.waiting.remove(&id) {
                work.extend(waiters);
            }
        }
    }

    /// The form rules of an operation whose predecessors are here.
    fn node_of(&self, msg: &ControlMsg) -> Result<Node, GroupError> {
        let (parents, ops) = match &msg.body {
            Control::Epoch(e) => (&e.parents, &e.adds),
            Control::Add(a) => (&a.heads, &a.ops),
            Control::Roles(r) => (&r.heads, &r.ops),
            Control::Forward(_) | Control::Request(_) => {
                return Err(GroupError::Malformed("not an operation"));
            }
        };
        let parent_set = unique(parents, "parent")?;
        unique(ops, "operation")?;
        self.check_kinds(parents, true)?;
        self.check_kinds(ops, false)?;
        let body = match &msg.body {
            Control::Epoch(e) => {
                let recipients = unique(&e.recipients, "recipient")?;
                let removed: BTreeSet<FeedId> = e.removed.iter().map(|c| c.feed).collect();
                if removed.len() != e.removed.len() {
                    return Err(GroupError::Duplicate("removed feed"));
                }
                let admins = unique(&e.admins, "admin")?;
                if e.group.is_none() {
                    if !parents.is_empty() || !ops.is_empty() {
                        return Err(GroupError::CreateWithParents);
                    }
                    if !removed.is_empty() {
                        return Err(GroupError::Malformed("a creation removes no one"));
                    }
                    if !recipients.contains(&msg.position.author) {
                        return Err(GroupError::AuthorNotRecipient);
                    }
                    Body::Create {
                        admins,
                        recipients,
                        commitment: e.commitment,
                    }
                } else {
                    if !admins.is_empty() {
                        return Err(GroupError::AdminsOutsideCreate);
                    }
                    Body::Epoch {
                        parents: parent_set.clone(),
                        removed: e.removed.clone(),
                        recipients,
                        commitment: e.commitment,
                    }
                }
            }
            Control::Add(a) => {
                let members = unique(&a.members, "member")?;
                let admins = unique(&a.admins, "admin")?;
                if !admins.is_subset(&members) {
                    return Err(GroupError::Malformed("an add names admins it does not add"));
                }
                if members.is_empty() {
                    return Err(GroupError::NoNewMembers);
                }
                Body::Add { members, admins }
            }
            Control::Roles(r) => {
                let promote = unique(&r.promote, "promoted feed")?;
                let demoted: BTreeSet<FeedId> = r.demote.iter().map(|c| c.feed).collect();
                if demoted.len() != r.demote.len() {
                    return Err(GroupError::Duplicate("demoted feed"));
                }
                if promote.is_empty() && demoted.is_empty() {
                    return Err(GroupError::Malformed("a role change changes nothing"));
                }
                Body::Roles {
                    promote,
                    demote: r.demote.clone(),
                }
            }
            Control::Forward(_) | Control::Request(_) => unreachable!("refused above"),
        };
        if !matches!(body, Body::Create { .. }) && parents.is_empty() {
            return Err(GroupError::NoParents);
        }
        let deps: Vec<MsgId> = parents.iter().chain(ops).copied().collect();
        let depth = deps
            .iter()
            .map(|d| self.nodes[d].depth + 1)
            .max()
            .unwrap_or(0);
        Ok(Node {
            author: msg.position.author,
            seq: msg.position.sequence,
            depth,
            parents: parents.len(),
            deps,
            body,
        })
    }

    /// Refuses ids that are not epochs (`epochs`) or adds and role changes.
    fn check_kinds(&self, ids: &[MsgId], epochs: bool) -> Result<(), GroupError> {
        for id in ids {
            if self.nodes.get(id).is_none_or(|n| n.is_epoch() != epochs) {
                return Err(GroupError::WrongDependency(*id));
            }
        }
        Ok(())
    }

    /// Why an operation is void wherever the order puts it, judged from the
    /// evaluation of everything else: an author that no valid operation
    /// ever made an admin, or one removed (and not back) before it wrote.
    fn inert(&self, node: &Node) -> Option<GroupError> {
        let a = node.author;
        if !self.eval.ever.contains(&a) {
            return Some(GroupError::AuthorNotMember(a));
        }
        if let Some(cuts) = self.eval.removals.get(&a)
            && !self.is_member(&a)
            && cuts.iter().all(|(cut, _)| node.seq > *cut)
        {
            return Some(GroupError::AfterRemoval(a));
        }
        if !self.eval.ever_admin.contains_key(&a) {
            return Some(GroupError::NotAdmin(a));
        }
        None
    }

    /// Whether the operation `id` was judged void because its author never
    /// was an admin: its epochs and adds can give nobody a key that counts.
    pub fn void_by_non_admin(&self, id: &MsgId, author: &FeedId) -> bool {
        self.eval.void.contains_key(id) && !self.eval.ever_admin.contains_key(author)
    }

    /// Runs the machine from the start, each run with the cuts the last
    /// one found, until the cutting operations are the same twice.
    fn recompute(&mut self) {
        let mut ahead: Option<BTreeSet<MsgId>> = None;
        for _ in 0..MAX_PASSES {
            let mut ev = Eval::default();
            for id in ahead.iter().flatten() {
                let node = &self.nodes[id];
                let (cuts, removal) = node.cuts().expect("a cutting operation");
                for c in cuts {
                    ev.ahead
                        .entry(c.feed)
                        .or_default()
                        .push((c.seq, *id, removal));
                }
            }
            for (_, id) in &self.order {
                ev.step(self, *id);
            }
            self.work += self.order.len() as u64;
            let cutters: BTreeSet<MsgId> = ev
                .valid
                .iter()
                .filter(|id| self.nodes[*id].cuts().is_some())
                .copied()
                .collect();
            let stable = match &ahead {
                None => !ev.retro,
                Some(before) => *before == cutters,
            };
            self.eval = ev;
            if stable {
                return;
            }
            ahead = Some(cutters);
        }
    }

    /// Whether `x` is `from` or causally before one of `from`.
    fn in_past(&self, x: &MsgId, from: &[MsgId]) -> bool {
        let Some(depth) = self.nodes.get(x).map(|n| n.depth) else {
            return false;
        };
        let mut seen = HashSet::new();
        let mut work: Vec<MsgId> = from.to_vec();
        while let Some(id) = work.pop() {
            if id == *x {
                return true;
            }
            let Some(n) = self.nodes.get(&id) else {
                continue;
            };
            if n.depth <= depth || !seen.insert(id) {
                continue;
            }
            work.extend(n.deps.iter().copied());
        }
        false
    }

    /// The group id.
    pub fn group(&self) -> MsgId {
        self.group
    }

    /// The current admins, most senior first.
    pub fn admins(&self) -> BTreeSet<FeedId> {
        self.eval
            .members
            .iter()
            .filter(|(_, r)| r.is_some())
            .map(|(f, _)| *f)
            .collect()
    }

    /// Everyone who has been a member at some point.
    pub fn ever_members(&self) -> BTreeSet<FeedId> {
        self.eval.ever.clone()
    }

    /// The valid epochs, oldest first by causal depth then id: `(id,
    /// removed, recipients)`.
    pub fn epochs(&self) -> Vec<(MsgId, BTreeSet<FeedId>, BTreeSet<FeedId>)> {
        self.order
            .iter()
            .filter(|(_, id)| self.eval.valid.contains(id))
            .filter_map(|(_, id)| match &self.nodes[id].body {
                Body::Create { recipients, .. } => Some((*id, BTreeSet::new(), recipients.clone())),
                Body::Epoch {
                    removed,
                    recipients,
                    ..
                } => Some((
                    *id,
                    removed.iter().map(|c| c.feed).collect(),
                    recipients.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    /// The current members.
    pub fn members(&self) -> BTreeSet<FeedId> {
        self.eval.members.keys().copied().collect()
    }

    /// Whether `f` is a current member.
    pub fn is_member(&self, f: &FeedId) -> bool {
        self.eval.members.contains_key(f)
    }

    /// The heads: the valid epochs no valid epoch succeeds.
    pub fn heads(&self) -> BTreeSet<MsgId> {
        self.eval.heads.clone()
    }

    /// A commitment to the current key that anyone can compute from the clear
    /// fields: `BLAKE2b-256("heads" || sorted (id || C(K)) of the heads)`.
    /// Replicas agree on it exactly when they agree on the heads.
    pub fn heads_commitment(&self) -> [u8; 32] {
        let mut input = Vec::new();
        for h in &self.eval.heads {
            input.extend_from_slice(&h.0);
            match &self.nodes[h].body {
                Body::Create { commitment, .. } | Body::Epoch { commitment, .. } => {
                    input.extend_from_slice(commitment)
                }
                _ => {}
            }
        }
        blake2b(&[b"heads", &input])
    }

    /// The feeds that are not members but were given, by the messages
    /// here, every key the current post key is merged from (or that merged
    /// key itself): nothing may be sealed under the heads while this is not
    /// empty, and an admin's refresh (an epoch sealed to the members alone)
    /// closes it.
    ///
    /// The heads' keys reach a feed through the slots of the heads
    /// themselves and, since no valid epoch names a head, through
    /// operations the rules void: an add's slots carry the keys of the
    /// heads it names, and an epoch's `back` its parents' keys, to whoever
    /// holds that epoch's key. An admin that has not yet seen its own
    /// removal or demotion writes such operations in good faith, and
    /// removal wins does not take back a key once sealed. Only operations
    /// and forwards by feeds that have been admins are counted (honest
    /// plain members write none, and a member can leak a key by other means
    /// anyway). Costs a walk over what names the heads: the void operations
    /// and the loose ones.
    pub fn exposed_to(&self) -> BTreeSet<FeedId> {
        let heads = &self.eval.heads;
        let Some(first) = heads.first() else {
            return BTreeSet::new();
        };
        let by_admin = |author: &FeedId| self.eval.ever_admin.contains_key(author);
        // Everything that names a head, directly or through others.
        let mut below: Vec<(u32, MsgId)> = Vec::new();
        let mut seen: HashSet<MsgId> = HashSet::new();
        let mut work: Vec<MsgId> = heads.iter().copied().collect();
        while let Some(id) = work.pop() {
            if !seen.insert(id) {
                continue;
            }
            below.push((self.nodes[&id].depth, id));
            work.extend(self.children.get(&id).into_iter().flatten().copied());
        }
        // Who holds each key: its recipients, those a forward gave it to,
        // and those the operations naming it gave it to. What names an
        // operation is deeper, so it is done first.
        let mut holders: HashMap<MsgId, BTreeSet<FeedId>> = HashMap::new();
        for ((author, to), epochs) in &self.forwarded {
            if by_admin(author) {
                for e in epochs.iter().filter(|e| seen.contains(*e)) {
                    holders.entry(*e).or_default().insert(*to);
                }
            }
        }
        below.sort_unstable_by(|x, y| y.cmp(x));
        for (_, id) in &below {
            let mut got = holders.remove(id).unwrap_or_default();
            if let Body::Create { recipients, .. } | Body::Epoch { recipients, .. } =
                &self.nodes[id].body
            {
                got.extend(recipients);
            }
            for c in self.children.get(id).into_iter().flatten() {
                let child = &self.nodes[c];
                if !by_admin(&child.author) {
                    continue;
                }
                match &child.body {
                    Body::Create { .. } | Body::Epoch { .. } => got.extend(&holders[c]),
                    Body::Add { members, .. } => got.extend(members),
                    Body::Roles { .. } => {}
                }
            }
            holders.insert(*id, got);
        }
        let mut out = holders[first].clone();
        for h in heads {
            out.retain(|f| holders[h].contains(f));
        }
        // The merged key of the heads itself, as an add or `back` gives it
        // for an operation written under exactly these heads.
        for (_, id) in &below {
            let node = &self.nodes[id];
            if !node.is_epoch()
                && node.parents == heads.len()
                && node.deps[..node.parents].iter().all(|p| heads.contains(p))
            {
                out.extend(&holders[id]);
            }
        }
        out.retain(|f| !self.is_member(f));
        out
    }

    /// Refuses to seal anything under the current heads while a feed that
    /// is not a member holds their key (see [`GroupState::exposed_to`]).
    fn check_not_exposed(&self) -> Result<(), GroupError> {
        match self.exposed_to().first() {
            Some(f) => Err(GroupError::KeyExposed(*f)),
            None => Ok(()),
        }
    }

    /// The recipients of a known epoch.
    pub fn recipients(&self, epoch: &MsgId) -> Option<&BTreeSet<FeedId>> {
        match &self.nodes.get(epoch)?.body {
            Body::Create { recipients, .. } | Body::Epoch { recipients, .. } => Some(recipients),
            _ => None,
        }
    }

    /// Whether `id` is a valid epoch.
    pub fn is_valid_epoch(&self, id: &MsgId) -> bool {
        self.eval.valid.contains(id) && self.nodes[id].is_epoch()
    }

    /// Operations whose predecessors are all here (valid or void).
    pub fn accepted_len(&self) -> usize {
        self.nodes.len()
    }

    /// Operations waiting for a predecessor.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// How many judgements of an operation the state has made: equal to
    /// the number of operations when each arrived at the end of the order.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// A number that changes whenever the evaluation may have changed.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many operations are refused (see [`GroupState::rejected`]).
    pub fn rejected_len(&self) -> usize {
        self.rejected.len() + self.eval.void.len()
    }

    /// Operations refused, with why: malformed ones, and valid-looking ones
    /// the rules void (after a cut, by a non-admin, ...).
    pub fn rejected(&self) -> BTreeMap<MsgId, GroupError> {
        let mut out = self.rejected.clone();
        out.extend(self.eval.void.iter().map(|(k, v)| (*k, v.clone())));
        out
    }

    /// Every set of heads a post can have been written under that a reader
    /// looks for: the current heads (and their subsets, up to four heads),
    /// and the heads, parents and single epochs of the last
    /// [`RECENT_VIEWS`] epochs. Bounded, whatever the history's length.
    pub fn candidate_head_sets(&self) -> BTreeSet<BTreeSet<MsgId>> {
        let mut sets: BTreeSet<BTreeSet<MsgId>> = self.eval.views.iter().cloned().collect();
        let heads: Vec<MsgId> = self.eval.heads.iter().copied().collect();
        if !heads.is_empty() {
            if heads.len() <= 4 {
                for mask in 1u32..(1 << heads.len()) {
                    sets.insert(
                        (0..heads.len())
                            .filter(|i| mask & (1 << i) != 0)
                            .map(|i| heads[i])
                            .collect(),
                    );
                }
            }
            sets.insert(self.eval.heads.clone());
        }
        sets
    }

    /// Whether a post by `author` at `seq`, under the merged key of
    /// `heads`, counts: an author cut by a removal counts after its cut only
    /// while it is a member again and writes under epochs that follow that
    /// removal (keys it can only have had from a re-add).
    pub fn post_allowed(&self, author: &FeedId, seq: u64, heads: &[MsgId]) -> bool {
        if !self.eval.ever.contains(author) {
            return false;
        }
        let cuts = self.eval.removals.get(author).into_iter().flatten();
        for (cut, removal) in cuts {
            if seq > *cut && (!self.is_member(author) || !self.in_past(removal, heads)) {
                return false;
            }
        }
        true
    }

    /// Feeds some valid removal cut.
    pub fn cut_feeds(&self) -> BTreeSet<FeedId> {
        self.eval.removals.keys().copied().collect()
    }

    /// Whether a forward by `author` at `seq` counts: only admins' do.
    pub fn forward_counts(&self, author: &FeedId, seq: u64) -> bool {
        let deps: Vec<MsgId> = self
            .eval
            .heads
            .iter()
            .chain(&self.eval.loose)
            .copied()
            .collect();
        self.eval.alive(self, author, seq, &deps)
            && self.eval.admin_at(self, author, seq, &deps).is_some()
    }

    /// Requests of current members that `admin` has not answered yet:
    /// `(request, member, epochs)`, the epochs limited to valid ones that
    /// `admin` has not forwarded to that member before (so a member asking
    /// again and again gets each key from each admin once).
    pub fn open_requests(&self, admin: &FeedId) -> Vec<(MsgId, FeedId, Vec<MsgId>)> {
        self.requests
            .iter()
            .filter(|(id, (author, seq, _))| {
                self.is_member(author)
                    && self.post_allowed(
                        author,
                        *seq,
                        &self.eval.heads.iter().copied().collect::<Vec<_>>(),
                    )
                    && !self.answers.get(*id).is_some_and(|a| a.contains(admin))
            })
            .map(|(id, (author, _, epochs))| {
                let given = self.forwarded.get(&(*admin, *author));
                let epochs = epochs
                    .iter()
                    .filter(|e| self.is_valid_epoch(e) && !given.is_some_and(|g| g.contains(*e)))
                    .copied()
                    .collect();
                (*id, *author, epochs)
            })
            .filter(|(_, _, epochs): &(MsgId, FeedId, Vec<MsgId>)| !epochs.is_empty())
            .collect()
    }

    /// The epochs `member` has asked for in requests nobody answered yet.
    pub fn asked(&self, member: &FeedId) -> BTreeSet<MsgId> {
        self.requests
            .iter()
            .filter(|(id, (author, _, _))| author == member && !self.answers.contains_key(*id))
            .flat_map(|(_, (_, _, epochs))| epochs.iter().copied())
            .collect()
    }

    /// The dependencies a new operation of ours names: the heads and the
    /// loose operations.
    fn view(&self) -> (Vec<MsgId>, Vec<MsgId>) {
        (
            self.eval.heads.iter().copied().collect(),
            self.eval.loose.iter().copied().collect(),
        )
    }

    /// Judges an operation of ours at `pos` before it is made, by the same
    /// rules every replica will apply.
    fn check_own(&self, pos: &Position, body: Body) -> Result<(), GroupError> {
        let (heads, ops) = self.view();
        let deps: Vec<MsgId> = heads.iter().chain(&ops).copied().collect();
        let depth = deps
            .iter()
            .map(|d| self.nodes[d].depth + 1)
            .max()
            .unwrap_or(0);
        let node = Node {
            author: pos.author,
            seq: pos.sequence,
            depth,
            parents: heads.len(),
            deps,
            body,
        };
        self.eval.check(self, &MsgId([0; 32]), &node)
    }

    /// Makes an epoch succeeding the current heads that removes the feeds
    /// of `removed`, each cut at the last sequence of it we have seen (a
    /// refresh when empty): a new key sealed to every remaining member,
    /// the heads' keys wrapped in `back`. Only admins make epochs.
    pub fn rekey(
        &self,
        keys: &KeyStore,
        pos: &Position,
        removed: &[Cut],
    ) -> Result<NewEpoch, GroupError> {
        let members = self.members();
        let gone: BTreeSet<FeedId> = removed.iter().map(|c| c.feed).collect();
        if gone.len() != removed.len() {
            return Err(GroupError::Duplicate("removed feed"));
        }
        if let Some(r) = gone.iter().find(|r| !members.contains(*r)) {
            return Err(GroupError::NotAMember(*r));
        }
        let recipients: BTreeSet<FeedId> = &members - &gone;
        self.check_own(
            pos,
            Body::Epoch {
                parents: self.eval.heads.clone(),
                removed: removed.to_vec(),
                recipients: recipients.clone(),
                commitment: [0; 32],
            },
        )?;
        let (heads, ops) = self.view();
        let mut back = self.key_pairs(keys, &heads)?;
        back.extend(self.op_key_pairs(keys, &ops)?);
        let members_key = keys
            .post_key(&self.eval.heads)
            .ok_or(GroupError::NoParents)?;
        let entries = vec![EntryKey::members(&members_key), keys.pairwise(&pos.author)?];
        seal_epoch(
            pos,
            Some(self.group),
            heads,
            ops,
            Vec::new(),
            removed.to_vec(),
            recipients.into_iter().collect(),
            key_pairs_to_bytes(back.iter().map(|(id, k)| (id, k))),
            entries,
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
        let new_set = unique(new, "member")?;
        let admin_set = unique(admins, "admin")?;
        if new_set.is_empty() {
            return Err(GroupError::NoNewMembers);
        }
        if !admin_set.is_subset(&new_set) {
            return Err(GroupError::Malformed("an add names admins it does not add"));
        }
        if let Some(m) = new_set.iter().find(|m| self.is_member(m)) {
            return Err(GroupError::AlreadyMember(*m));
        }
        self.check_own(
            pos,
            Body::Add {
                members: new_set.clone(),
                admins: admin_set.clone(),
            },
        )?;
        let (heads, ops) = self.view();
        let mut pairs = self.key_pairs(keys, &heads)?;
        pairs.extend(self.op_key_pairs(keys, &ops)?);
        let mut entries = self.members_entries(keys, pos)?;
        for m in &new_set {
            entries.push(keys.pairwise(m)?);
        }
        let add = GroupContent::Add(Add {
            group: self.group,
            heads,
            ops,
            members: new_set.into_iter().collect(),
            admins: admin_set.into_iter().collect(),
            keys: pairs,
        });
        seal_control(&add, pos, &entries)
    }

    /// Makes a change of admin rights: `promote` (members) become admins,
    /// the admins of `demote` (each cut at the last sequence of it we have
    /// seen) stop being admins. Only admins may, and only over juniors.
    pub fn roles(
        &self,
        keys: &KeyStore,
        pos: &Position,
        promote: &[FeedId],
        demote: &[Cut],
    ) -> Result<String, GroupError> {
        let promote_set = unique(promote, "promoted feed")?;
        if let Some(p) = promote_set.iter().find(|p| !self.is_member(p)) {
            return Err(GroupError::NotAMember(*p));
        }
        let admins = self.admins();
        if let Some(d) = demote.iter().find(|d| !admins.contains(&d.feed)) {
            return Err(GroupError::NotAdmin(d.feed));
        }
        self.check_own(
            pos,
            Body::Roles {
                promote: promote_set.clone(),
                demote: demote.to_vec(),
            },
        )?;
        let (heads, ops) = self.view();
        let roles = GroupContent::Roles(Roles {
            group: self.group,
            heads,
            ops,
            promote: promote_set.into_iter().collect(),
            demote: demote.to_vec(),
        });
        seal_control(&roles, pos, &self.members_entries(keys, pos)?)
    }

    /// The entries of an operation of ours: the members' (the merged key
    /// of the current heads) and our own.
    fn members_entries(
        &self,
        keys: &KeyStore,
        pos: &Position,
    ) -> Result<Vec<EntryKey>, GroupError> {
        if let Some(h) = self.eval.heads.iter().find(|h| !keys.has(h)) {
            return Err(GroupError::MissingKey(*h));
        }
        self.check_not_exposed()?;
        let key = keys
            .post_key(&self.eval.heads)
            .ok_or(GroupError::NoParents)?;
        Ok(vec![EntryKey::members(&key), keys.pairwise(&pos.author)?])
    }

    /// The merged keys of the heads of the operations `ops` (ours to give:
    /// we hold their heads' keys, or were given the merged key).
    fn op_key_pairs(&self, keys: &KeyStore, ops: &[MsgId]) -> Result<Vec<KeyPair>, GroupError> {
        ops.iter()
            .map(|o| {
                let merged = self
                    .nodes
                    .get(o)
                    .and_then(|n| {
                        let heads: BTreeSet<MsgId> = n.deps[..n.parents].iter().copied().collect();
                        keys.post_key(&heads).map(|k| *k.key().bytes())
                    })
                    .or_else(|| keys.op_key(o).map(|k| *k.bytes()))
                    .ok_or(GroupError::MissingKey(*o))?;
                Ok((*o, merged))
            })
            .collect()
    }

    /// Asks the admins for the keys of `epochs`: sealed to each current
    /// admin (a pairwise entry) and to ourselves, so it needs no key.
    pub fn request(
        &self,
        keys: &KeyStore,
        pos: &Position,
        epochs: &[MsgId],
    ) -> Result<String, GroupError> {
        if !self.is_member(&pos.author) {
            return Err(GroupError::NotAMember(pos.author));
        }
        let mut entries = vec![keys.pairwise(&pos.author)?];
        for a in self.admins().iter().take(MAX_ENTRIES - 1) {
            if *a != pos.author {
                entries.push(keys.pairwise(a)?);
            }
        }
        let req = GroupContent::Request(Request {
            group: self.group,
            epochs: epochs.to_vec(),
        });
        seal_control(&req, pos, &entries)
    }

    /// Gives the keys of `epochs` to the member `to`, answering its
    /// `request`: sealed to it and to ourselves. Only an admin's forward
    /// counts.
    pub fn forward(
        &self,
        keys: &KeyStore,
        pos: &Position,
        to: &FeedId,
        request: MsgId,
        epochs: &[MsgId],
    ) -> Result<String, GroupError> {
        if !self.is_member(to) {
            return Err(GroupError::NotAMember(*to));
        }
        let epochs: Vec<MsgId> = epochs
            .iter()
            .copied()
            .collect::<BTreeSet<MsgId>>()
            .into_iter()
            .collect();
        let fwd = GroupContent::Forward(Forward {
            group: self.group,
            to: *to,
            request,
            keys: self.key_pairs(keys, &epochs)?,
        });
        seal_control(
            &fwd,
            pos,
            &[keys.pairwise(&pos.author)?, keys.pairwise(to)?],
        )
    }

    /// Encrypts a post body (compact JSON of the inner content) for the
    /// group at `pos`, under the merged key of the current heads. Refused
    /// unless the author is a member holding every head key, and while a
    /// non-member holds them too ([`GroupState::exposed_to`]).
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
        self.check_not_exposed()?;
        let key = keys.post_key(&heads).ok_or(GroupError::NoParents)?;
        Ok(post_content(&seal_post_with(&key, pos, plain)))
    }

    /// The `(id, K)` of the given epochs.
    fn key_pairs(&self, keys: &KeyStore, ids: &[MsgId]) -> Result<Vec<KeyPair>, GroupError> {
        ids.iter()
            .map(|h| {
                keys.get(h)
                    .map(|k| (*h, *k.bytes()))
                    .ok_or(GroupError::MissingKey(*h))
            })
            .collect()
    }
}

impl Eval {
    /// Judges the next operation of the order and applies it when valid.
    fn step(&mut self, st: &GroupState, id: MsgId) {
        let node = &st.nodes[&id];
        self.last = Some((node.depth, id));
        match self.check(st, &id, node) {
            Ok(()) => {
                self.valid.insert(id);
                self.by_author
                    .entry(node.author)
                    .or_default()
                    .push((node.seq, id));
                self.apply(st, id, node);
            }
            Err(e) => {
                self.void.insert(id, e);
            }
        }
    }

    /// Every cut of `f` known now: (cut, operation, removal?).
    fn cuts_of(&self, f: &FeedId) -> Vec<(u64, MsgId, bool)> {
        let mut out: Vec<(u64, MsgId, bool)> = self.ahead.get(f).cloned().unwrap_or_default();
        out.extend(
            self.removals
                .get(f)
                .into_iter()
                .flatten()
                .map(|(c, r)| (*c, *r, true)),
        );
        out.extend(
            self.admin_cuts
                .get(f)
                .into_iter()
                .flatten()
                .map(|(c, r)| (*c, *r, false)),
        );
        out
    }

    /// Whether an operation of `f` at `seq` naming `deps` is not voided by
    /// a removal: before every cut, or after a re-add that follows it.
    fn alive(&self, st: &GroupState, f: &FeedId, seq: u64, deps: &[MsgId]) -> bool {
        self.cuts_of(f)
            .into_iter()
            .filter(|(cut, _, removal)| *removal && seq > *cut)
            .all(|(_, r, _)| covered(st, self.joins.get(f), &r, deps))
    }

    /// The admin rank of `f` for an operation at `seq` naming `deps`: a
    /// grant not undone by a removal or demotion cut before `seq` (unless
    /// granted again after it).
    fn admin_at(&self, st: &GroupState, f: &FeedId, seq: u64, deps: &[MsgId]) -> Option<Rank> {
        let rank = *self.ever_admin.get(f)?;
        let fine = self
            .cuts_of(f)
            .into_iter()
            .filter(|(cut, _, _)| seq > *cut)
            .all(|(_, d, _)| covered(st, self.grants.get(f), &d, deps));
        fine.then_some(rank)
    }

    /// Whether an admin of rank `rank` may remove or demote `target`: only
    /// a current admin junior to it, or a plain member.
    fn may_cut(&self, rank: Rank, target: &FeedId) -> Result<(), GroupError> {
        match self.members.get(target) {
            Some(Some(t)) if *t < rank => Err(GroupError::NotSenior(*target)),
            _ => Ok(()),
        }
    }

    fn check(&self, st: &GroupState, id: &MsgId, node: &Node) -> Result<(), GroupError> {
        let a = node.author;
        if let Body::Create { .. } = node.body {
            return if *id != st.group || self.founder.is_some() {
                Err(GroupError::Malformed("a second creation"))
            } else {
                Ok(())
            };
        }
        if !self.ever.contains(&a) {
            return Err(GroupError::AuthorNotMember(a));
        }
        if !self.alive(st, &a, node.seq, &node.deps) {
            return Err(GroupError::AfterRemoval(a));
        }
        let rank = self
            .admin_at(st, &a, node.seq, &node.deps)
            .ok_or(GroupError::NotAdmin(a))?;
        match &node.body {
            Body::Epoch {
                removed,
                recipients,
                ..
            } => {
                if !recipients.contains(&a) {
                    return Err(GroupError::AuthorNotRecipient);
                }
                for c in removed {
                    if c.feed == a {
                        return Err(GroupError::RemovesAuthor);
                    }
                    // A feed that is no member (its add turned out void)
                    // is removed all the same: a no-op for it, and the
                    // epoch stands.
                    if recipients.contains(&c.feed) {
                        return Err(GroupError::RecipientsMismatch);
                    }
                    self.may_cut(rank, &c.feed)?;
                }
            }
            Body::Roles { demote, .. } => {
                for c in demote {
                    if c.feed == a {
                        return Err(GroupError::Malformed("an admin cannot demote itself"));
                    }
                    self.may_cut(rank, &c.feed)?;
                }
            }
            Body::Add { .. } | Body::Create { .. } => {}
        }
        Ok(())
    }

    fn apply(&mut self, st: &GroupState, id: MsgId, node: &Node) {
        match &node.body {
            Body::Create {
                admins, recipients, ..
            } => {
                self.founder = Some(node.author);
                for r in recipients {
                    self.ever.insert(*r);
                    self.joins.entry(*r).or_default().push(id);
                    self.members.insert(*r, None);
                }
                self.grant(node.author, (0, id, NO_FEED), id);
                for a in admins {
                    self.grant(*a, (0, id, *a), id);
                }
                self.heads = BTreeSet::from([id]);
                self.view(BTreeSet::from([id]));
            }
            Body::Epoch {
                parents, removed, ..
            } => {
                for c in removed {
                    self.cut(st, c, id, true);
                }
                self.heads
                    .retain(|h| !parents.contains(h) && !st.in_past(h, &node.deps));
                self.heads.insert(id);
                self.loose
                    .retain(|o| !node.deps.contains(o) && !st.in_past(o, &node.deps));
                self.view(parents.clone());
                self.view(BTreeSet::from([id]));
                self.view(self.heads.clone());
            }
            Body::Add { members, admins } => {
                for m in members {
                    if self.members.contains_key(m) {
                        continue;
                    }
                    // Removal wins: only an add after every removal counts.
                    let removed_since = self
                        .removals
                        .get(m)
                        .into_iter()
                        .flatten()
                        .any(|(_, r)| !st.in_past(r, &[id]));
                    if removed_since {
                        continue;
                    }
                    self.ever.insert(*m);
                    self.joins.entry(*m).or_default().push(id);
                    self.members.insert(*m, None);
                    if admins.contains(m) {
                        self.grant(*m, (node.depth, id, *m), id);
                    }
                }
                self.loose.insert(id);
            }
            Body::Roles { promote, demote } => {
                for c in demote {
                    self.cut(st, c, id, false);
                }
                for p in promote {
                    if !matches!(self.members.get(p), Some(None)) {
                        continue;
                    }
                    let demoted_since = self
                        .admin_cuts
                        .get(p)
                        .into_iter()
                        .flatten()
                        .any(|(_, d)| !st.in_past(d, &[id]));
                    if !demoted_since {
                        self.grant(*p, (node.depth, id, *p), id);
                    }
                }
                self.loose.insert(id);
            }
        }
    }

    fn grant(&mut self, f: FeedId, rank: Rank, op: MsgId) {
        self.members.insert(f, Some(rank));
        self.ever_admin.insert(f, rank);
        self.grants.entry(f).or_default().push(op);
    }

    /// Applies one cut of a removal (or demotion) `op`; notes whether it
    /// voids an operation already judged valid.
    fn cut(&mut self, st: &GroupState, c: &Cut, op: MsgId, removal: bool) {
        let f = c.feed;
        if removal {
            self.removals.entry(f).or_default().push((c.seq, op));
            self.members.remove(&f);
        } else if let Some(r) = self.members.get_mut(&f) {
            *r = None;
        }
        if self.ever_admin.contains_key(&f) {
            self.admin_cuts.entry(f).or_default().push((c.seq, op));
        }
        let later: Vec<MsgId> = self
            .by_author
            .get(&f)
            .into_iter()
            .flatten()
            .filter(|(seq, _)| *seq > c.seq)
            .map(|(_, id)| *id)
            .collect();
        for v in later {
            let deps = &st.nodes[&v].deps;
            let list = if removal {
                self.joins.get(&f)
            } else {
                self.grants.get(&f)
            };
            if !covered(st, list, &op, deps) {
                self.retro = true;
            }
        }
    }

    fn view(&mut self, set: BTreeSet<MsgId>) {
        if set.is_empty() || self.views.iter().rev().take(3).any(|v| *v == set) {
            return;
        }
        self.views.push_back(set);
        while self.views.len() > 3 * RECENT_VIEWS {
            self.views.pop_front();
        }
    }
}

/// Whether one of `list` (re-adds or re-grants) follows `cut_op` and is
/// itself in the past of `deps`.
fn covered(st: &GroupState, list: Option<&Vec<MsgId>>, cut_op: &MsgId, deps: &[MsgId]) -> bool {
    list.into_iter()
        .flatten()
        .any(|a| a != cut_op && st.in_past(cut_op, &[*a]) && st.in_past(a, deps))
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
        Control::Add(a) => a.heads.iter().chain(&a.ops).copied().collect(),
        Control::Roles(r) => r.heads.iter().chain(&r.ops).copied().collect(),
        Control::Forward(_) | Control::Request(_) => Vec::new(),
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
    removed: Vec<Cut>,
    recipients: Vec<FeedId>,
    back_plain: Vec<u8>,
    mut entries: Vec<EntryKey>,
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
    let epoch = GroupContent::Epoch(Epoch {
        group,
        parents,
        adds,
        admins,
        removed,
        recipients,
        commitment,
        slots,
        back,
    });
    entries.push(EntryKey::own(&key));
    let content = seal_control(&epoch, pos, &entries)?;
    Ok(NewEpoch { content, key })
}
