//! The byte layout of group control messages, as they are once opened
//! (see [`envelope`](super::envelope) for the outer form that every replica
//! sees). The first byte says the kind. Integers are big-endian; a list is
//! a `u16` count then its items; ids and feeds are their 32 raw bytes; a
//! key list is a `u16` count of `(id 32 || key 32)` pairs.
//!
//! ```text
//! epoch   1 || has_group u8 || [group 32] || parents list || ops list
//!           || admins list || removed cuts list || recipients list || C(K) 32
//!           || one sealed slot per recipient, in recipient order (80 each:
//!              sealed box of K)
//!           || back: u16 length || [nonce 24 || AEAD(parents' (id || K),
//!              then the ops' (id || merged key of their heads))]
//! add     2 || group 32 || heads list || ops list || members list
//!           || admins list || keys: the heads' (id || K), then the ops'
//!              (id || merged key of their heads)
//! forward 4 || group 32 || to 32 || request 32 || keys: (id || K) per epoch
//! roles   5 || group 32 || heads list || ops list || promote list
//!           || demote cuts list
//! request 6 || group 32 || epochs list
//! ```
//!
//! A cut is a feed (32) and a sequence (u64): the last message of that feed
//! the author had seen when it removed or demoted it. The `ops` lists name
//! the adds and role changes the author had seen that no parent already
//! includes, so every operation is ordered after what it knew. Keys in adds
//! and forwards are in the clear here: the envelope seals them to the
//! people meant to read them.

use crate::crypto::{AEAD_NONCE_LEN, AEAD_TAG_LEN, FeedId, MsgId, SEAL_OVERHEAD};

use super::GroupError;

/// What follows the base64 in a group content string. It starts with `.box`
/// so Scuttlebutt peers (ssb-validate accepts `^<base64>\.box.*`) store and
/// forward it as private content without reading it, and it differs from
/// private-box's exact `.box` so neither format mistakes the other.
pub const SUFFIX: &str = ".boxg";

/// Bytes of one epoch slot: a sealed box of a 32-byte key.
pub const EPOCH_SLOT_LEN: usize = SEAL_OVERHEAD + 32;
/// Bytes of a post tag.
pub const TAG_LEN: usize = 16;
/// Bytes a post adds to its plaintext: tag, nonce and AEAD tag (56).
pub const POST_OVERHEAD: usize = TAG_LEN + AEAD_NONCE_LEN + AEAD_TAG_LEN;

/// An `(id, key)` pair as adds, forwards and `back` carry them.
pub type KeyPair = (MsgId, [u8; 32]);

const KIND_EPOCH: u8 = 1;
const KIND_ADD: u8 = 2;
const KIND_FORWARD: u8 = 4;
const KIND_ROLES: u8 = 5;
const KIND_REQUEST: u8 = 6;

/// A feed cut at a sequence: its last message the author had seen when it
/// removed (or demoted) the feed. Everything the feed writes after it is
/// void for the group (or, for a demotion, has no admin rights).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cut {
    /// The feed removed or demoted.
    pub feed: FeedId,
    /// Its last sequence the author had seen (0: none).
    pub seq: u64,
}

/// Where a message sits in its feed: what every encrypted part is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The feed that signs the message.
    pub author: FeedId,
    /// Its sequence number in that feed.
    pub sequence: u64,
    /// The id of the message before it (`None` at sequence 1).
    pub previous: Option<MsgId>,
}

impl Position {
    /// The AEAD additional data for a part labelled `label` at this position:
    /// `label || author || sequence (u64 BE) || previous (32 zero bytes at
    /// sequence 1) || extra`.
    pub fn additional_data(&self, label: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(label.len() + 72 + extra.len());
        ad.extend_from_slice(label);
        ad.extend_from_slice(&self.author.0);
        ad.extend_from_slice(&self.sequence.to_be_bytes());
        ad.extend_from_slice(&self.previous.map_or([0; 32], |p| p.0));
        ad.extend_from_slice(extra);
        ad
    }
}

/// An epoch: the group's creation, a removal or a refresh. Its key `K` is
/// sealed to every recipient; everything but the slots and `back` is clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epoch {
    /// The group (the id of its creating epoch); `None` for the creation.
    pub group: Option<MsgId>,
    /// The heads the author saw: the epochs this one succeeds.
    pub parents: Vec<MsgId>,
    /// Adds and role changes the author saw that no parent already
    /// includes.
    pub adds: Vec<MsgId>,
    /// Creation only: the admins besides the creator.
    pub admins: Vec<FeedId>,
    /// Members this epoch removes, each cut where the author had seen it.
    pub removed: Vec<Cut>,
    /// Everyone `K` is sealed to, the author included.
    pub recipients: Vec<FeedId>,
    /// `C(K)`.
    pub commitment: [u8; 32],
    /// One sealed box of `K` per recipient, in the same order.
    pub slots: Vec<[u8; EPOCH_SLOT_LEN]>,
    /// `nonce || AEAD` of the parents' `(id || K)` under `K_back`; empty for
    /// the creation.
    pub back: Vec<u8>,
}

/// New members and, sealed to each, the ids and keys of the heads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Add {
    /// The group.
    pub group: MsgId,
    /// The heads the author saw (causal predecessors of the add).
    pub heads: Vec<MsgId>,
    /// Adds and role changes the author saw that no head includes.
    pub ops: Vec<MsgId>,
    /// The feeds added.
    pub members: Vec<FeedId>,
    /// Those of `members` who become admins (may add and remove).
    pub admins: Vec<FeedId>,
    /// The heads' `(id, K)`, then the ops' `(id, merged key of their
    /// heads)`: what the new members need to read the group.
    pub keys: Vec<KeyPair>,
}

/// Epoch keys sealed by an admin to one member who asked for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The group.
    pub group: MsgId,
    /// The member the keys are for.
    pub to: FeedId,
    /// The request this answers.
    pub request: MsgId,
    /// The epochs' `(id, K)`.
    pub keys: Vec<KeyPair>,
}

/// A change of admin rights: members made admins, admins demoted (each cut
/// where the author had seen it: its later operations have no rights).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles {
    /// The group.
    pub group: MsgId,
    /// The heads the author saw.
    pub heads: Vec<MsgId>,
    /// Adds and role changes the author saw that no head includes.
    pub ops: Vec<MsgId>,
    /// Members who become admins.
    pub promote: Vec<FeedId>,
    /// Admins who stop being admins.
    pub demote: Vec<Cut>,
}

/// A member's signed request for epoch keys it lacks; any admin answers
/// it with a [`Forward`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The group.
    pub group: MsgId,
    /// The epochs whose keys the author lacks.
    pub epochs: Vec<MsgId>,
}

/// A post: its body under `K_post` of the merged key of the heads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    /// `BLAKE2b(K_tag, author || sequence)`, truncated to 16 bytes.
    pub tag: [u8; TAG_LEN],
    /// The AEAD nonce.
    pub nonce: [u8; AEAD_NONCE_LEN],
    /// The AEAD ciphertext and tag.
    pub sealed: Vec<u8>,
}

/// Any group control message, as its bytes are once opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupContent {
    /// See [`Epoch`].
    Epoch(Epoch),
    /// See [`Add`].
    Add(Add),
    /// See [`Forward`].
    Forward(Forward),
    /// See [`Roles`].
    Roles(Roles),
    /// See [`Request`].
    Request(Request),
}

/// A group message that is not a post: what membership and keys are
/// computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// See [`Epoch`].
    Epoch(Epoch),
    /// See [`Add`].
    Add(Add),
    /// See [`Forward`].
    Forward(Forward),
    /// See [`Roles`].
    Roles(Roles),
    /// See [`Request`].
    Request(Request),
}

/// A control message as it sits in a feed: its id, its position and what it
/// says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlMsg {
    /// The message id.
    pub id: MsgId,
    /// Author, sequence and previous.
    pub position: Position,
    /// The parsed content.
    pub body: Control,
}

impl Control {
    /// The group this message belongs to (for a creation: its own id).
    pub fn group(&self, own_id: &MsgId) -> MsgId {
        match self {
            Control::Epoch(e) => e.group.unwrap_or(*own_id),
            Control::Add(a) => a.group,
            Control::Forward(f) => f.group,
            Control::Roles(r) => r.group,
            Control::Request(r) => r.group,
        }
    }
}

impl From<Control> for GroupContent {
    fn from(c: Control) -> GroupContent {
        match c {
            Control::Epoch(e) => GroupContent::Epoch(e),
            Control::Add(a) => GroupContent::Add(a),
            Control::Forward(f) => GroupContent::Forward(f),
            Control::Roles(r) => GroupContent::Roles(r),
            Control::Request(r) => GroupContent::Request(r),
        }
    }
}

/// Whether a content string is in the group format (by its suffix only).
pub fn is_group_content(s: &str) -> bool {
    s.ends_with(SUFFIX)
}

impl GroupContent {
    /// Parses the decoded bytes; refuses trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<GroupContent, GroupError> {
        let mut r = Reader { b: bytes, at: 0 };
        let content = match r.u8()? {
            KIND_EPOCH => {
                let group = match r.u8()? {
                    0 => None,
                    1 => Some(r.msg_id()?),
                    _ => return Err(GroupError::Malformed("group flag is neither 0 nor 1")),
                };
                let parents = r.msg_ids()?;
                let adds = r.msg_ids()?;
                let admins = r.feeds()?;
                let removed = r.cuts()?;
                let recipients = r.feeds()?;
                let commitment = r.array()?;
                let slots = (0..recipients.len())
                    .map(|_| r.array())
                    .collect::<Result<_, _>>()?;
                let back = r.bytes()?.to_vec();
                GroupContent::Epoch(Epoch {
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
            }
            KIND_ADD => {
                let group = r.msg_id()?;
                let heads = r.msg_ids()?;
                let ops = r.msg_ids()?;
                let members = r.feeds()?;
                let admins = r.feeds()?;
                let keys = r.key_pairs()?;
                GroupContent::Add(Add {
                    group,
                    heads,
                    ops,
                    members,
                    admins,
                    keys,
                })
            }
            KIND_FORWARD => GroupContent::Forward(Forward {
                group: r.msg_id()?,
                to: FeedId(r.array()?),
                request: r.msg_id()?,
                keys: r.key_pairs()?,
            }),
            KIND_ROLES => GroupContent::Roles(Roles {
                group: r.msg_id()?,
                heads: r.msg_ids()?,
                ops: r.msg_ids()?,
                promote: r.feeds()?,
                demote: r.cuts()?,
            }),
            KIND_REQUEST => GroupContent::Request(Request {
                group: r.msg_id()?,
                epochs: r.msg_ids()?,
            }),
            kind => return Err(GroupError::UnknownKind(kind)),
        };
        if r.at != bytes.len() {
            return Err(GroupError::Malformed("trailing bytes"));
        }
        Ok(content)
    }

    /// The control message this is.
    pub fn into_control(self) -> Control {
        match self {
            GroupContent::Epoch(e) => Control::Epoch(e),
            GroupContent::Add(a) => Control::Add(a),
            GroupContent::Forward(f) => Control::Forward(f),
            GroupContent::Roles(r) => Control::Roles(r),
            GroupContent::Request(r) => Control::Request(r),
        }
    }

    /// The bytes of the layout above. Fails only on a list or part too long
    /// for its `u16` length, or slots that do not match their recipients.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GroupError> {
        let mut w = Writer(Vec::new());
        match self {
            GroupContent::Epoch(e) => {
                if e.slots.len() != e.recipients.len() {
                    return Err(GroupError::Malformed("one slot per recipient"));
                }
                w.0.push(KIND_EPOCH);
                match e.group {
                    None => w.0.push(0),
                    Some(g) => {
                        w.0.push(1);
                        w.0.extend_from_slice(&g.0);
                    }
                }
                w.msg_ids(&e.parents)?;
                w.msg_ids(&e.adds)?;
                w.feeds(&e.admins)?;
                w.cuts(&e.removed)?;
                w.feeds(&e.recipients)?;
                w.0.extend_from_slice(&e.commitment);
                for slot in &e.slots {
                    w.0.extend_from_slice(slot);
                }
                w.bytes(&e.back)?;
            }
            GroupContent::Add(a) => {
                w.0.push(KIND_ADD);
                w.0.extend_from_slice(&a.group.0);
                w.msg_ids(&a.heads)?;
                w.msg_ids(&a.ops)?;
                w.feeds(&a.members)?;
                w.feeds(&a.admins)?;
                w.key_pairs(&a.keys)?;
            }
            GroupContent::Forward(f) => {
                w.0.push(KIND_FORWARD);
                w.0.extend_from_slice(&f.group.0);
                w.0.extend_from_slice(&f.to.0);
                w.0.extend_from_slice(&f.request.0);
                w.key_pairs(&f.keys)?;
            }
            GroupContent::Roles(r) => {
                w.0.push(KIND_ROLES);
                w.0.extend_from_slice(&r.group.0);
                w.msg_ids(&r.heads)?;
                w.msg_ids(&r.ops)?;
                w.feeds(&r.promote)?;
                w.cuts(&r.demote)?;
            }
            GroupContent::Request(r) => {
                w.0.push(KIND_REQUEST);
                w.0.extend_from_slice(&r.group.0);
                w.msg_ids(&r.epochs)?;
            }
        }
        Ok(w.0)
    }
}

/// Encodes `(id || K)` pairs, the plaintext of add and forward slots and of
/// `back`.
pub(super) fn key_pairs_to_bytes<'a>(
    pairs: impl IntoIterator<Item = (&'a MsgId, &'a [u8; 32])>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, k) in pairs {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(k);
    }
    out
}

/// Decodes what [`key_pairs_to_bytes`] made.
pub(super) fn key_pairs_from_bytes(b: &[u8]) -> Result<Vec<(MsgId, [u8; 32])>, GroupError> {
    if b.len() % 64 != 0 {
        return Err(GroupError::Malformed(
            "key list is not whole (id, key) pairs",
        ));
    }
    Ok(b.chunks_exact(64)
        .map(|c| {
            let mut id = [0u8; 32];
            let mut k = [0u8; 32];
            id.copy_from_slice(&c[..32]);
            k.copy_from_slice(&c[32..]);
            (MsgId(id), k)
        })
        .collect())
}

struct Writer(Vec<u8>);

impl Writer {
    fn count(&mut self, n: usize) -> Result<(), GroupError> {
        let n = u16::try_from(n).map_err(|_| GroupError::TooLong(n))?;
        self.0.extend_from_slice(&n.to_be_bytes());
        Ok(())
    }

    fn msg_ids(&mut self, ids: &[MsgId]) -> Result<(), GroupError> {
        self.count(ids.len())?;
        for id in ids {
            self.0.extend_from_slice(&id.0);
        }
        Ok(())
    }

    fn feeds(&mut self, feeds: &[FeedId]) -> Result<(), GroupError> {
        self.count(feeds.len())?;
        for f in feeds {
            self.0.extend_from_slice(&f.0);
        }
        Ok(())
    }

    fn key_pairs(&mut self, pairs: &[KeyPair]) -> Result<(), GroupError> {
        self.count(pairs.len())?;
        for (id, k) in pairs {
            self.0.extend_from_slice(&id.0);
            self.0.extend_from_slice(k);
        }
        Ok(())
    }

    fn cuts(&mut self, cuts: &[Cut]) -> Result<(), GroupError> {
        self.count(cuts.len())?;
        for c in cuts {
            self.0.extend_from_slice(&c.feed.0);
            self.0.extend_from_slice(&c.seq.to_be_bytes());
        }
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), GroupError> {
        self.count(b.len())?;
        self.0.extend_from_slice(b);
        Ok(())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], GroupError> {
        let end = self.at.checked_add(n).ok_or(GroupError::Truncated)?;
        let s = self.b.get(self.at..end).ok_or(GroupError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, GroupError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, GroupError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GroupError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn msg_id(&mut self) -> Result<MsgId, GroupError> {
        Ok(MsgId(self.array()?))
    }

    fn msg_ids(&mut self) -> Result<Vec<MsgId>, GroupError> {
        let n = self.u16()?;
        (0..n).map(|_| self.msg_id()).collect()
    }

    fn feeds(&mut self) -> Result<Vec<FeedId>, GroupError> {
        let n = self.u16()?;
        (0..n).map(|_| self.array().map(FeedId)).collect()
    }

    fn key_pairs(&mut self) -> Result<Vec<KeyPair>, GroupError> {
        let n = self.u16()?;
        (0..n)
            .map(|_| Ok((MsgId(self.array()?), self.array()?)))
            .collect()
    }

    fn cuts(&mut self) -> Result<Vec<Cut>, GroupError> {
        let n = self.u16()?;
        (0..n)
            .map(|_| {
                let feed = FeedId(self.array()?);
                let seq = u64::from_be_bytes(self.array()?);
                Ok(Cut { feed, seq })
            })
            .collect()
    }

    fn bytes(&mut self) -> Result<&'a [u8], GroupError> {
        let n = self.u16()?;
        self.take(n)
    }
}
