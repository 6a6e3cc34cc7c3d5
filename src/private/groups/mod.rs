//! Private groups with rotatable keys ("sealed epochs", revision 2, design
//! in `docs/GROUPS.md`): the pure core, no I/O and no store.
//!
//! Owns: the sealed outer form every replica sees ([`envelope`]), the inner
//! formats of control messages ([`wire`]), epoch keys, their commitments,
//! merged post keys, tags and a member's key store ([`keys`]), and
//! membership as a pure function of the set of control messages, with the
//! writers of epochs, adds, role changes, requests, forwards and posts
//! ([`state`]). May import only [`crate::crypto`] (every primitive comes
//! from there) and [`crate::feed`]; never `store` or anything doing I/O.
//! Callers open verified feed messages into [`ControlMsg`]s and posts, and
//! post bodies are the compact JSON of the inner content.
//!
//! # Encoding
//!
//! Every group message is a content string `<base64>.boxg`, not a JSON
//! object, because (1) ssb-validate and real Scuttlebutt peers store and
//! forward any `^<base64>\.box.*` string as private content without reading
//! or indexing it, while an object would need a `type` they would index and
//! show; (2) binary fields cost 4/3 in base64 instead of the 4/3 plus quoting
//! and field names of base64 strings inside JSON, which matters under the
//! 8192-character message limit (about 100 bytes per recipient of an epoch);
//! (3) one parser serves every kind. What the string holds is sealed: to
//! anyone without a key that fits, random-looking bytes with no kind, group
//! or feed id. Those who can open a control message (members holding the
//! keys of the heads it was written under, and those it names through an
//! entry of their own) all read the same fields, so every one of them
//! computes the same membership.
//!
//! # Binding
//!
//! Post bodies, control bodies and `back` wraps are XChaCha20-Poly1305 with
//! additional data `label || author || sequence || previous || extra`
//! ([`Position`]), so a ciphertext republished anywhere else does not open.
//! Slots are sealed boxes of `K` and are tied to their epoch by its
//! commitment `C(K)`.

pub mod envelope;
pub mod keys;
pub mod state;
pub mod wire;

#[cfg(test)]
mod tests;

use crate::crypto::{FeedId, MsgId};

pub use envelope::EntryKey;
pub use keys::{EpochKey, KeyStore, PostKey, Subkey, TagIndex};
pub use state::RECENT_VIEWS;
pub use state::{GroupState, NewEpoch, create};
pub use wire::{
    Add, Control, ControlMsg, Cut, Epoch, Forward, GroupContent, KeyPair, POST_OVERHEAD, Position,
    Post, Request, Roles, SUFFIX, is_group_content,
};

/// Why group content could not be parsed, made or opened, or why a control
/// message is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The string does not end with [`SUFFIX`].
    #[error("content is not a group message (no \".boxg\" suffix)")]
    NotGroupContent,
    /// The part before the suffix is not canonical base64.
    #[error("group message is not canonical base64")]
    BadBase64,
    /// The bytes end in the middle of a field.
    #[error("group message is truncated")]
    Truncated,
    /// The first byte names no known kind.
    #[error("unknown group message kind {0}")]
    UnknownKind(u8),
    /// The bytes parse but break a rule of the layout.
    #[error("malformed group message: {0}")]
    Malformed(&'static str),
    /// A list or part is longer than its `u16` length allows.
    #[error("{0} items or bytes do not fit a group message field")]
    TooLong(usize),
    /// A list holds the same item twice.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// This feed id has no curve25519 counterpart to seal to.
    #[error("cannot seal to {0} (not a valid ed25519 key)")]
    BadRecipient(FeedId),
    /// The key of this epoch is not held.
    #[error("the key of epoch {0} is not held")]
    MissingKey(MsgId),
    /// Our slot does not open with our key.
    #[error("slot does not open")]
    SlotDoesNotOpen,
    /// An epoch's `back` does not open under its key at its position.
    #[error("back wrap does not open")]
    BackDoesNotOpen,
    /// A key does not match its epoch's commitment.
    #[error("key does not match its epoch's commitment")]
    CommitmentMismatch,
    /// No key held gives the post's tag.
    #[error("no key held matches the post's tag")]
    NoKeyForTag,
    /// The key the tag names does not open the post (tampered or moved).
    #[error("post does not open at this position")]
    PostDoesNotOpen,
    /// A causal predecessor was rejected.
    #[error("depends on rejected message {0}")]
    DependencyRejected(MsgId),
    /// A predecessor is not the kind expected (an epoch or an add).
    #[error("predecessor {0} is not of the expected kind")]
    WrongDependency(MsgId),
    /// A creation with parents or adds.
    #[error("a creation has no parents")]
    CreateWithParents,
    /// An epoch or add other than the creation without heads.
    #[error("epoch or add without parent epochs")]
    NoParents,
    /// Admins named outside the creation.
    #[error("only the creation names admins")]
    AdminsOutsideCreate,
    /// The parents (or heads) are not the heads of the causal past.
    #[error("parents are not the heads of the causal past")]
    ParentsNotHeads,
    /// The author is not a member in the operation's causal past.
    #[error("{0} is not a member")]
    AuthorNotMember(FeedId),
    /// An operation by someone who is not an admin (only admins add,
    /// remove, refresh, change roles and forward keys).
    #[error("{0} is not an admin")]
    NotAdmin(FeedId),
    /// An operation its author wrote after a removal cut it.
    #[error("{0} wrote this after it was removed")]
    AfterRemoval(FeedId),
    /// A removal or demotion of an admin senior to the author.
    #[error("{0} is a more senior admin")]
    NotSenior(FeedId),
    /// An epoch removes its own author.
    #[error("an epoch cannot remove its author")]
    RemovesAuthor,
    /// A feed removed (or forwarded to) is not a member.
    #[error("{0} is not a member")]
    NotAMember(FeedId),
    /// The recipients are not exactly the members left.
    #[error("recipients are not exactly the remaining members")]
    RecipientsMismatch,
    /// A creation whose author is not a recipient.
    #[error("the creator is not a recipient")]
    AuthorNotRecipient,
    /// An add of someone who is a member already.
    #[error("{0} is a member already")]
    AlreadyMember(FeedId),
    /// An add without members.
    #[error("an add needs at least one new member")]
    NoNewMembers,
    /// The messages gave every key the current post key is merged from to
    /// this feed, which is not a member (a void add or epoch by an admin
    /// that had not seen its own removal or demotion): nothing may be
    /// sealed under it until an admin refreshes the group.
    #[error(
        "the current key was given to {0}, who is not a member: an admin must refresh the group"
    )]
    KeyExposed(FeedId),
}
