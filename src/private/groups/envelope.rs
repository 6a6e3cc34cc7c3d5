//! The outer form of every group message: what a feed shows to anyone who
//! is not meant to read it. A non-member (and a removed member, for
//! everything after its removal) sees `<base64>.boxg` of random-looking
//! bytes: not the kind of message, not the group, not who is in it.
//!
//! ```text
//! post     tag 16 || nonce 24 || AEAD(body under K_post of the merged key)
//! control  nonce 24 || entries || AEAD(inner bytes under K_msg)
//!          entry   = tag 16 || wrap 33
//!          wrap    = (K_msg 32 || entry count u8)
//!                    XOR BLAKE2b-264(wrap key, nonce || index)
//! ```
//!
//! Both are bound to their position (author, sequence, previous) as AEAD
//! additional data. A control message carries one entry per audience, each
//! found by its 16-byte tag (the second half of `BLAKE2b-256(tag key,
//! author || sequence)`; the first half is the post tag) and opened with its
//! wrap key:
//!
//! - **members**: the merged key of the heads (or parents) its author saw,
//!   so every member holding them finds it among its post keys;
//! - **own**: the epoch's own key, so whoever is given that key later (a new
//!   member, through an add or `back`) opens the epoch by its id;
//! - **pairwise**: the key of two feeds `BLAKE2b-256(X25519(a, b) || sorted
//!   public keys)`, for a new member (an invitation), an admin (a request),
//!   a member (a forward), and the author itself (so it recovers its own
//!   messages from its secret key alone).
//!
//! A reader compares tags (hashes only) and opens at most the entries that
//! match: no trial decryption.

use zeroize::Zeroizing;

use crate::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, CurveKeypair, FeedId, aead_open, aead_seal, b64_decode,
    b64_encode, blake2b, blake2b_keyed, ed25519_pk_to_curve25519, random_bytes, scalarmult,
};

use super::GroupError;
use super::keys::{EpochKey, PostKey, Subkey, tag_pair};
use super::wire::{GroupContent, Position, Post, SUFFIX, TAG_LEN};

/// Additional-data label of control bodies.
const LABEL_CTRL: &[u8] = b"shoal-group-ctrl";

/// Bytes of one entry: tag and wrap.
pub const ENTRY_LEN: usize = TAG_LEN + 33;
/// The most entries a control message has (and a reader looks at).
pub const MAX_ENTRIES: usize = 64;

/// The two keys of one audience of a control message.
#[derive(Clone)]
pub struct EntryKey {
    tag: Zeroizing<[u8; 32]>,
    wrap: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for EntryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntryKey(..)")
    }
}

impl EntryKey {
    /// The members' entry: the merged key of a set of heads.
    pub fn members(key: &PostKey) -> EntryKey {
        EntryKey {
            tag: key.key().subkey(Subkey::Tag),
            wrap: key.key().subkey(Subkey::Ctrl),
        }
    }

    /// The entry of an epoch's own key.
    pub fn own(key: &EpochKey) -> EntryKey {
        EntryKey {
            tag: key.subkey(Subkey::Tag),
            wrap: key.subkey(Subkey::Ctrl),
        }
    }

    /// The pairwise entry of `me` and `them` (the same key both ways; with
    /// `them` our own id, the entry that lets us recover our messages).
    pub fn pairwise(
        me: &CurveKeypair,
        my_id: &FeedId,
        them: &FeedId,
    ) -> Result<EntryKey, GroupError> {
        let their_pk =
            ed25519_pk_to_curve25519(them).map_err(|_| GroupError::BadRecipient(*them))?;
        let shared = Zeroizing::new(
            scalarmult(&me.secret, &their_pk).map_err(|_| GroupError::BadRecipient(*them))?,
        );
        let (lo, hi) = if my_id.0 <= them.0 {
            (my_id, them)
        } else {
            (them, my_id)
        };
        let key = EpochKey::from_bytes(blake2b(&[&shared[..], &lo.0, &hi.0]));
        Ok(EntryKey::own(&key))
    }

    /// The tag of this entry in the message at `(author, sequence)`: the
    /// second half of `BLAKE2b-256(tag key, author || sequence BE)` (the
    /// first half is the post tag under the same key, so a reader gets both
    /// from one hash).
    pub fn tag(&self, author: &FeedId, sequence: u64) -> [u8; TAG_LEN] {
        tag_pair(&self.tag, author, sequence).1
    }
}

/// The bytes of a `.boxg` content string.
pub fn decode(content: &str) -> Result<Vec<u8>, GroupError> {
    let b64 = content
        .strip_suffix(SUFFIX)
        .ok_or(GroupError::NotGroupContent)?;
    b64_decode(b64).ok_or(GroupError::BadBase64)
}

fn encode(bytes: &[u8]) -> String {
    let mut s = b64_encode(bytes);
    s.push_str(SUFFIX);
    s
}

/// The content string of a post.
pub fn post_content(post: &Post) -> String {
    let mut b = Vec::with_capacity(TAG_LEN + AEAD_NONCE_LEN + post.sealed.len());
    b.extend_from_slice(&post.tag);
    b.extend_from_slice(&post.nonce);
    b.extend_from_slice(&post.sealed);
    encode(&b)
}

/// Reads the bytes as a post (any bytes long enough are one, to a reader
/// without the key).
pub fn as_post(bytes: &[u8]) -> Result<Post, GroupError> {
    if bytes.len() < TAG_LEN + AEAD_NONCE_LEN + AEAD_TAG_LEN {
        return Err(GroupError::Truncated);
    }
    Ok(Post {
        tag: bytes[..TAG_LEN].try_into().expect("16 bytes"),
        nonce: bytes[TAG_LEN..TAG_LEN + AEAD_NONCE_LEN]
            .try_into()
            .expect("24 bytes"),
        sealed: bytes[TAG_LEN + AEAD_NONCE_LEN..].to_vec(),
    })
}

/// Seals a control message at `pos` for the given audiences (at most
/// [`MAX_ENTRIES`]): its content string.
pub fn seal_control(
    inner: &GroupContent,
    pos: &Position,
    entries: &[EntryKey],
) -> Result<String, GroupError> {
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(GroupError::TooLong(entries.len()));
    }
    let plain = Zeroizing::new(inner.to_bytes()?);
    let k_msg: Zeroizing<[u8; 32]> = Zeroizing::new(random_bytes());
    let nonce: [u8; AEAD_NONCE_LEN] = random_bytes();
    let mut out = nonce.to_vec();
    let mut lead = Zeroizing::new([0u8; 33]);
    lead[..32].copy_from_slice(&k_msg[..]);
    lead[32] = entries.len() as u8;
    for (i, e) in entries.iter().enumerate() {
        out.extend_from_slice(&e.tag(&pos.author, pos.sequence));
        let stream: [u8; 33] = blake2b_keyed(&e.wrap, &[&nonce, &[i as u8]]);
        out.extend(lead.iter().zip(stream).map(|(a, b)| a ^ b));
    }
    out.extend(aead_seal(
        &plain,
        &pos.additional_data(LABEL_CTRL, &[]),
        &nonce,
        &k_msg,
    ));
    Ok(encode(&out))
}

/// The entry tags a message's bytes may hold, with their index: every
/// 49-byte slot after the nonce that leaves room for a body.
pub fn entry_tags(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    (0..MAX_ENTRIES)
        .take_while(move |i| AEAD_NONCE_LEN + (i + 1) * ENTRY_LEN + AEAD_TAG_LEN <= bytes.len())
        .map(move |i| {
            let at = AEAD_NONCE_LEN + i * ENTRY_LEN;
            (i, &bytes[at..at + TAG_LEN])
        })
}

/// Whether an entry of `key` is in the message at `pos`, and at which
/// index.
pub fn find_entry(bytes: &[u8], pos: &Position, key: &EntryKey) -> Option<usize> {
    entry_index(bytes, &key.tag(&pos.author, pos.sequence))
}

/// The index of the entry with this tag, if the bytes hold one.
pub fn entry_index(bytes: &[u8], tag: &[u8; TAG_LEN]) -> Option<usize> {
    entry_tags(bytes).find(|(_, t)| *t == tag).map(|(i, _)| i)
}

/// Opens a control message at `pos` through its entry `index` with `key`.
pub fn open_control(
    bytes: &[u8],
    pos: &Position,
    index: usize,
    key: &EntryKey,
) -> Result<GroupContent, GroupError> {
    let nonce: [u8; AEAD_NONCE_LEN] = bytes
        .get(..AEAD_NONCE_LEN)
        .ok_or(GroupError::Truncated)?
        .try_into()
        .expect("24 bytes");
    let at = AEAD_NONCE_LEN + index * ENTRY_LEN + TAG_LEN;
    let wrap = bytes.get(at..at + 33).ok_or(GroupError::Truncated)?;
    let stream: [u8; 33] = blake2b_keyed(&key.wrap, &[&nonce, &[index as u8]]);
    let mut lead = Zeroizing::new([0u8; 33]);
    for (i, (a, b)) in wrap.iter().zip(stream).enumerate() {
        lead[i] = a ^ b;
    }
    let count = usize::from(lead[32]);
    if count == 0 || count > MAX_ENTRIES || index >= count {
        return Err(GroupError::PostDoesNotOpen);
    }
    let body = bytes
        .get(AEAD_NONCE_LEN + count * ENTRY_LEN..)
        .ok_or(GroupError::Truncated)?;
    let k_msg: [u8; 32] = lead[..32].try_into().expect("32 bytes");
    let k_msg = Zeroizing::new(k_msg);
    let plain = Zeroizing::new(
        aead_open(body, &pos.additional_data(LABEL_CTRL, &[]), &nonce, &k_msg)
            .map_err(|_| GroupError::PostDoesNotOpen)?,
    );
    GroupContent::from_bytes(&plain)
}

/// Finds an entry of `key` in a content string at `pos` and opens it.
pub fn open_with(
    content: &str,
    pos: &Position,
    key: &EntryKey,
) -> Result<GroupContent, GroupError> {
    let bytes = decode(content)?;
    let i = find_entry(&bytes, pos, key).ok_or(GroupError::NoKeyForTag)?;
    open_control(&bytes, pos, i, key)
}
