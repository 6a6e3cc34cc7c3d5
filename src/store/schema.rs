//! Every redb table of the store, declared once.
//!
//! Keys and values are fixed binary layouts (ids as 32 raw bytes, integers
//! big-endian inside composite keys so they sort numerically). Bump
//! [`SCHEMA_VERSION`] whenever a layout changes.

use redb::TableDefinition;

/// Version of the layouts below, kept in [`META`] under `"schema_version"`.
pub const SCHEMA_VERSION: u64 = 8;

/// Store-wide counters and the schema version.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The key in [`META`] of the store's random identity (see
/// `Store::store_id`).
pub const STORE_ID: &str = "store_id";

/// Local receive sequence -> the message: `id (32) | receive time ms, f64 LE
/// (8) | compact JSON of the value`. Keys only grow, so the table is filled
/// by appends (dense pages) and iterates in receive order.
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

/// The first 8 bytes of a message id, big-endian -> the receive sequence
/// of the first message stored with that prefix (see `store::ids`).
/// (Version 8; version 7 and before kept [`IDS_V7`].)
pub const IDS: TableDefinition<u64, u64> = TableDefinition::new("ids8");

/// Message id -> receive sequence, for a message whose id's first 8 bytes
/// [`IDS`] already gives to another (see `store::ids`). (Version 8.)
pub const IDS_MORE: TableDefinition<&[u8; 32], u64> = TableDefinition::new("ids_more");

/// Message id -> receive sequence: the id index up to version 7, moved
/// into [`IDS`] and [`IDS_MORE`] when the store is opened.
pub const IDS_V7: TableDefinition<&[u8; 32], u64> = TableDefinition::new("ids");

/// `author (32) | sequence u64 BE (8)` -> receive sequence: a feed in order.
pub const FEEDS: TableDefinition<&[u8; 40], u64> = TableDefinition::new("feeds");

/// Author -> `sequence u64 LE (8) | id (32)` of its latest message.
pub const LATEST: TableDefinition<&[u8; 32], &[u8; 40]> = TableDefinition::new("latest");

/// Author -> `sequence u64 BE (8) | previous (32)` of the lowest message
/// held, for a feed held from above sequence 1 (fetched newest first, its
/// older history not yet in): the held range is from there to its
/// [`LATEST`]. A feed held from sequence 1 has no entry. (Version 6.)
pub const HELD: TableDefinition<&[u8; 32], &[u8; 40]> = TableDefinition::new("held");

/// Feeds held from above sequence 1 by pruning (see `store::prune`):
/// author -> the lowest sequence kept. Their older history is not fetched
/// again. Created when first written.
pub const PRUNED: TableDefinition<&[u8; 32], u64> = TableDefinition::new("pruned");

/// The [`META`] key of the next receive sequence, once pruning deleted the
/// highest: receive sequences are never given twice.
pub const NEXT_RX: &str = "next_rx";

/// `author (32) | sequence u64 BE (8)` -> compact JSON of a valid message we
/// refused because the feed already holds a different one at that sequence.
pub const FORKS: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("forks");

/// What keeps our own feed from forking (see `store::own`): `restoring` ->
/// empty while the home waits for its feed from a peer; `claim` -> `seq
/// u64 BE | peer (32) | at ms u64 BE`, the highest a peer claims of our
/// feed; `waived` -> `seq u64 BE`, the claim the person overrode. Created
/// when first written.
pub const OWN_FEED: TableDefinition<&str, &[u8]> = TableDefinition::new("own_feed");

/// `author (32) | target (32)` -> `state (1) | receive sequence u64 BE (8)`
/// of the contact message that set it: who follows and blocks whom.
/// States are [`CONTACT_NONE`], [`CONTACT_FOLLOW`], [`CONTACT_BLOCK`].
pub const CONTACTS: TableDefinition<&[u8; 64], &[u8; 9]> = TableDefinition::new("contacts");

/// Contact state: neither following nor blocking (after an unfollow or unblock).
pub const CONTACT_NONE: u8 = 0;
/// Contact state: following.
pub const CONTACT_FOLLOW: u8 = 1;
/// Contact state: blocking.
pub const CONTACT_BLOCK: u8 = 2;

/// `author (32) | target (32)` -> `linked (1: 1 or 0) | receive sequence
/// u64 BE (8)` of the latest public contact message of `author` with a
/// `sameAs` about `target`: who says which feed is another device of
/// theirs. A link counts only when both feeds say it (`store::devices`).
pub const SAME_AS: TableDefinition<&[u8; 64], &[u8; 9]> = TableDefinition::new("same_as");

/// Peer address (multiserver form) -> JSON record of what we know of it.
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");

/// `target (32) | author (32)` -> contact state: the contact graph
/// reversed, to find a feed's followers and blockers.
pub const FOLLOWERS: TableDefinition<&[u8; 64], u8> = TableDefinition::new("followers");

/// Backlinks: `target (33: sigil + id) | kind (1) | receive sequence u64 BE
/// (8)` -> `author (32) | flag (1)` of the linking message. Kinds are the
/// `LINK_*` constants; the flag is 1 for a vote that likes, else 0.
pub const LINKS: TableDefinition<&[u8; 42], &[u8; 33]> = TableDefinition::new("links");

/// A reply's `root`.
pub const LINK_ROOT: u8 = 1;
/// A reply's `branch`.
pub const LINK_BRANCH: u8 = 2;
/// A post's `mentions`.
pub const LINK_MENTION: u8 = 3;
/// A vote's `vote.link`.
pub const LINK_VOTE: u8 = 4;
/// An about's `about`.
pub const LINK_ABOUT: u8 = 5;

/// Revisions (the `ssb-revisions` convention: a post with
/// `revisionRoot`): `revision root (32) | author (32) | receive sequence
/// u64 BE (8)` -> 0. Every revision is listed, whoever wrote it, by
/// author, so the read models read those of the root's own author alone
/// (however many others wrote). A revision is indexed here only: never
/// among posts, the inbox or the backlinks, so it never shows as a post
/// or a reply of its own. (Version 7.)
pub const REVISIONS: TableDefinition<&[u8; 72], u8> = TableDefinition::new("revisions");

/// The composite key of a revision.
pub fn revision_key(root: &[u8; 32], author: &[u8; 32], rx: u64) -> [u8; 72] {
    let mut k = [0u8; 72];
    k[..32].copy_from_slice(root);
    k[32..64].copy_from_slice(author);
    k[64..].copy_from_slice(&rx.to_be_bytes());
    k
}

/// What the person muted, locally (never published, never sent to
/// peers): `kind (1: MUTE_*) | key` -> when it was muted, ms. The key is
/// a lower-case word's UTF-8, or the 32 bytes of a feed or of a thread's
/// root. Created when first written; a store without it mutes nothing.
pub const MUTES: TableDefinition<&[u8], u64> = TableDefinition::new("mutes");

/// Mute kind: a word.
pub const MUTE_WORD: u8 = 1;
/// Mute kind: a feed.
pub const MUTE_FEED: u8 = 2;
/// Mute kind: a thread, by its root.
pub const MUTE_THREAD: u8 = 3;

/// The latest vote of each voter: `target (33) | voter (32)` -> 1 when it
/// likes, else 0.
pub const VOTES: TableDefinition<&[u8; 65], u8> = TableDefinition::new("votes");

/// Target (33) -> how many voters like it now: kept with [`VOTES`], so a
/// like count is one lookup however many votes a message got.
pub const LIKES: TableDefinition<&[u8; 33], u64> = TableDefinition::new("likes");

/// The composite key of a voter's latest vote.
pub fn vote_key(target: &[u8; 33], voter: &[u8; 32]) -> [u8; 65] {
    let mut k = [0u8; 65];
    k[..33].copy_from_slice(target);
    k[33..].copy_from_slice(voter);
    k
}

/// Public posts per author by time: `author (32) | sort time ms u64 BE (8) |
/// receive sequence u64 BE (8)` -> `1` for a reply, `0` for a thread start.
/// The sort time is the claimed time, never later than the receive time.
pub const POSTS: TableDefinition<&[u8; 48], u8> = TableDefinition::new("posts");

/// Current profile fields: `about target (33) | namer (32) | field (1)` ->
/// `receive sequence u64 BE (8) | UTF-8 text`. Fields are the `ABOUT_*`
/// constants; a later about of the same namer replaces the value.
pub const ABOUTS: TableDefinition<&[u8; 66], &[u8]> = TableDefinition::new("abouts");

/// About field: name.
pub const ABOUT_NAME: u8 = 1;
/// About field: description.
pub const ABOUT_DESCRIPTION: u8 = 2;
/// About field: image blob id.
pub const ABOUT_IMAGE: u8 = 3;

/// Message id -> the decrypted content (compact JSON) of a box we opened.
pub const PRIVATE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("private");

/// Private posts we can read: `sort time ms u64 BE (8) | receive sequence
/// u64 BE (8)` -> message id.
pub const INBOX: TableDefinition<&[u8; 16], &[u8; 32]> = TableDefinition::new("inbox");

/// Receive sequence -> why it is for us (`UNREAD_*`): messages of others
/// meant for us that we have not opened yet.
pub const UNREAD: TableDefinition<u64, u8> = TableDefinition::new("unread");

/// Unread: a post of a feed we follow.
pub const UNREAD_POST: u8 = 1;
/// Unread: a private message to us.
pub const UNREAD_PRIVATE: u8 = 2;
/// Unread: a message that mentions us.
pub const UNREAD_MENTION: u8 = 3;

/// Group control messages we opened: `group (32) | receive sequence u64 BE (8)` ->
/// kind (the first byte of the group format: 1 epoch, 2 add, 4 forward,
/// 5 roles, 6 request).
/// Every one seen, of any group: membership is computed from them.
pub const GROUP_CTRL: TableDefinition<&[u8; 40], u8> = TableDefinition::new("group_ctrl");

/// Epoch keys we were given: epoch id -> `group (32) | key (32)`. Only
/// epochs sealed to us (directly, by an add or forward, or through `back`),
/// each checked against its commitment.
pub const GROUP_KEYS: TableDefinition<&[u8; 32], &[u8; 64]> = TableDefinition::new("group_keys");

/// Group posts we opened: `group (32) | sort time ms u64 BE (8) | receive
/// sequence u64 BE (8)` -> message id. Their plaintext is in [`PRIVATE`].
pub const GROUP_POSTS: TableDefinition<&[u8; 48], &[u8; 32]> = TableDefinition::new("group_posts");

/// Group control messages we opened: message id -> their inner bytes (the
/// group format once the envelope is off), so reopening needs no
/// decryption.
pub const GROUP_OPENED: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("group_opened");

/// Group posts we opened, by author: `group (32) | author (32) | sequence
/// u64 BE (8)` -> `receive sequence u64 BE (8) | the head ids (32 each) of
/// the key that opened it`. What a later cut or a voided add takes back.
pub const GROUP_AUTHORED: TableDefinition<&[u8; 72], &[u8]> =
    TableDefinition::new("group_authored");

/// Group messages (posts and control messages: from outside they look the
/// same) no key we hold opens yet: `author (32) | sequence u64 BE (8)` ->
/// receive sequence. Retried when a group we read gains a key or a member.
pub const GROUP_PENDING: TableDefinition<&[u8; 40], u64> = TableDefinition::new("group_pending");

/// Group posts in the order they were opened: a counter (from 1) ->
/// receive sequence. A post opened when it is stored and one a later key
/// opens alike, so that a follower of the log (the search index) learns of
/// content that became readable after it passed the post. Created when
/// first written, without a version bump: a store without it simply lists
/// nothing opened late.
pub const OPENED: TableDefinition<u64, u64> = TableDefinition::new("opened");

/// A group's name, from the latest `about` of it posted inside the group:
/// group (32) -> `receive sequence u64 BE (8) | UTF-8 name`.
pub const GROUP_NAMES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("group_names");

/// Invites this node redeems, by the public key of the invite's seed
/// (the seed itself is never stored): `uses left u32 BE (4) | created ms
/// u64 BE (8) | UTF-8 note`. A used-up invite keeps its row with 0 uses
/// left, so that its key stays restricted to `invite.use` and is answered
/// "invite has expired". New in this layout without a version bump: the
/// table is created when a store is opened, and a store without it holds
/// no invites.
pub const INVITES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("invites");

/// The 33-byte form of a link target: its sigil, then the 32 raw bytes. Blob
/// ids are hashed to fit.
pub fn target_key(link: &crate::feed::content::Link) -> [u8; 33] {
    use crate::feed::content::Link;
    let mut k = [0u8; 33];
    match link {
        Link::Feed(f) => {
            k[0] = b'@';
            k[1..].copy_from_slice(&f.0);
        }
        Link::Msg(m) => {
            k[0] = b'%';
            k[1..].copy_from_slice(&m.0);
        }
        Link::Blob(b) => {
            k[0] = b'&';
            k[1..].copy_from_slice(&crate::crypto::sha256(b.as_bytes()));
        }
    }
    k
}

/// The composite key of a backlink.
pub fn link_key(target: &[u8; 33], kind: u8, rx: u64) -> [u8; 42] {
    let mut k = [0u8; 42];
    k[..33].copy_from_slice(target);
    k[33] = kind;
    k[34..].copy_from_slice(&rx.to_be_bytes());
    k
}

/// The composite key of a post by time.
pub fn post_key(author: &[u8; 32], time: u64, rx: u64) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(author);
    k[32..40].copy_from_slice(&time.to_be_bytes());
    k[40..].copy_from_slice(&rx.to_be_bytes());
    k
}

/// The composite key of a profile field.
pub fn about_key(target: &[u8; 33], namer: &[u8; 32], field: u8) -> [u8; 66] {
    let mut k = [0u8; 66];
    k[..33].copy_from_slice(target);
    k[33..65].copy_from_slice(namer);
    k[65] = field;
    k
}

/// The composite key of an inbox entry.
pub fn time_key(time: u64, rx: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&time.to_be_bytes());
    k[8..].copy_from_slice(&rx.to_be_bytes());
    k
}

/// The composite key of a contact edge.
pub fn contact_key(author: &[u8; 32], target: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(author);
    k[32..].copy_from_slice(target);
    k
}

/// The composite key of a feed position.
pub fn feed_key(author: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(author);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The members of the room this node runs: feed (32) -> `joined ms u64 BE`.
/// Created when first written; a store without it has no members.
pub const ROOM_MEMBERS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("room_members");

/// The room's invites, by the sha256 of their token (the token itself is
/// never stored): `expires ms u64 BE (8) | claimed by feed (32, zeros while
/// unclaimed)`.
pub const ROOM_INVITES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("room_invites");

/// The room's aliases: alias -> `feed (32) | its signature of the alias
/// confirmation (64)`. Created when first written.
pub const ROOM_ALIASES: TableDefinition<&str, &[u8]> = TableDefinition::new("room_aliases");

/// The alias of each feed that has one (the index of [`ROOM_ALIASES`] by
/// feed): feed (32) -> alias.
pub const ROOM_ALIAS_OF: TableDefinition<&[u8; 32], &str> = TableDefinition::new("room_alias_of");
