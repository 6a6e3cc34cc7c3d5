//! private-box (box1): the encrypted content of Scuttlebutt direct messages,
//! byte-compatible with the JavaScript `private-box` package as `ssb-keys`
//! uses it.
//!
//! Layout, with one nonce for every secret box in it:
//!
//! ```text
//! nonce (24) || ephemeral curve25519 public key (32)
//!   || one 49-byte slot per recipient:
//!        secretbox([recipient count (1) || body key (32)], nonce,
//!                  scalarmult(ephemeral secret, recipient's curve25519 key))
//!   || secretbox(plaintext, nonce, body key)
//! ```
//!
//! The plaintext is the compact JSON of the message content; the content
//! field of the message is then the string `<base64>.box`. A writer puts at
//! most [`MAX_RECIPIENTS`] (8) slots; a reader, like the JavaScript one
//! (`for (i = 0; i <= 7; i++)`), tries exactly the first 8 slots (never one
//! without room for the body's tag after it) and takes the body to start
//! after as many slots as the count byte of the slot it opened says. So a
//! direct message reaches its author and up to 7 others.

use zeroize::Zeroizing;

use crate::crypto::boxes::{NONCE_LEN, SECRETBOX_KEY_LEN, TAG_LEN};
use crate::crypto::{
    CurveKeypair, CurveSecret, FeedId, Keypair, Nonce, b64_decode, b64_encode,
    ed25519_pk_to_curve25519, ed25519_sk_to_curve25519, random_bytes, scalarmult, secretbox_open,
    secretbox_seal,
};

/// The most recipients [`box_message`] encrypts to: as many slots as a
/// reader tries.
pub const MAX_RECIPIENTS: usize = MAX_SLOTS;

/// Slots a reader tries, as the JavaScript reader does: exactly 8.
const MAX_SLOTS: usize = 8;
/// Nonce and ephemeral public key.
const HEADER_LEN: usize = NONCE_LEN + 32;
/// One recipient slot: a sealed count byte and body key.
const SLOT_LEN: usize = 1 + SECRETBOX_KEY_LEN + TAG_LEN;
/// The smallest box: one slot and an empty body.
const MIN_LEN: usize = HEADER_LEN + SLOT_LEN + TAG_LEN;
/// What follows the base64 in the content string.
const SUFFIX: &str = ".box";

/// Why content could not be boxed, or is not a private box at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BoxError {
    /// No recipients were given.
    #[error("a private box needs at least one recipient")]
    NoRecipients,
    /// More than [`MAX_RECIPIENTS`] recipients were given.
    #[error("{0} recipients given, a private box has at most {MAX_RECIPIENTS}")]
    TooManyRecipients(usize),
    /// This feed id has no curve25519 counterpart to encrypt to.
    #[error("recipient {0} cannot be encrypted to (not a valid ed25519 key)")]
    BadRecipient(String),
    /// The string does not end with `.box`.
    #[error("content is not a private box (no \".box\" suffix)")]
    NotBoxed,
    /// The part before `.box` is not canonical base64.
    #[error("private box is not canonical base64")]
    BadBase64,
    /// Too few bytes for even one recipient and an empty body.
    #[error("private box of {len} bytes is shorter than the minimum of {MIN_LEN}")]
    Truncated {
        /// The decoded length.
        len: usize,
    },
}

/// Encrypts `plain` (bytes of compact JSON content) to the recipients (1..=8,
/// caller includes itself if wanted). Returns "<base64>.box".
pub fn box_message(plain: &[u8], recipients: &[FeedId]) -> Result<String, BoxError> {
    if recipients.is_empty() {
        return Err(BoxError::NoRecipients);
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(BoxError::TooManyRecipients(recipients.len()));
    }
    let bytes = seal(
        plain,
        recipients,
        &random_bytes(),
        &CurveKeypair::generate(),
        Zeroizing::new(random_bytes()),
    )?;
    let mut s = b64_encode(&bytes);
    s.push_str(SUFFIX);
    Ok(s)
}

/// The box of `plain` under the given nonce, ephemeral key pair and body key,
/// with one slot per recipient in order. Checks the recipient keys, not
/// their number (at most 255 fit the count byte).
fn seal(
    plain: &[u8],
    recipients: &[FeedId],
    nonce: &Nonce,
    ephemeral: &CurveKeypair,
    body_key: Zeroizing<[u8; 32]>,
) -> Result<Vec<u8>, BoxError> {
    let count = u8::try_from(recipients.len())
        .map_err(|_| BoxError::TooManyRecipients(recipients.len()))?;
    let shared = recipients
        .iter()
        .map(|r| {
            ed25519_pk_to_curve25519(r)
                .and_then(|pk| scalarmult(&ephemeral.secret, &pk))
                .map(Zeroizing::new)
                .map_err(|_| BoxError::BadRecipient(r.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut slot_plain = Zeroizing::new([0u8; 1 + SECRETBOX_KEY_LEN]);
    slot_plain[0] = count;
    slot_plain[1..].copy_from_slice(&*body_key);

    let mut out =
        Vec::with_capacity(HEADER_LEN + recipients.len() * SLOT_LEN + TAG_LEN + plain.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ephemeral.public);
    for key in &shared {
        out.extend_from_slice(&secretbox_seal(&*slot_plain, nonce, key));
    }
    out.extend_from_slice(&secretbox_seal(plain, nonce, &body_key));
    Ok(out)
}

/// Holds our curve25519 secret (converted once from the ed25519 keypair); opens
/// boxes with ONE scalarmult and at most 8 slot attempts.
#[derive(Debug)]
pub struct Unboxer {
    secret: CurveSecret,
}

impl Unboxer {
    /// The opener for boxes addressed to `me`.
    pub fn new(me: &Keypair) -> Unboxer {
        Unboxer {
            secret: ed25519_sk_to_curve25519(me),
        }
    }

    /// Opens a `<base64>.box` content string. `Ok(None)`: a well-formed box
    /// that is not for us (or does not authenticate); `Err`: not a box, bad
    /// base64, or too short to be one.
    pub fn open(&self, boxed: &str) -> Result<Option<Vec<u8>>, BoxError> {
        let b64 = boxed.strip_suffix(SUFFIX).ok_or(BoxError::NotBoxed)?;
        let bytes = b64_decode(b64).ok_or(BoxError::BadBase64)?;
        if bytes.len() < MIN_LEN {
            return Err(BoxError::Truncated { len: bytes.len() });
        }
        Ok(self.open_raw(&bytes))
    }

    /// Opens the decoded bytes of a box: the plaintext, or `None` when it is
    /// not for us or malformed in any way.
    pub fn open_raw(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if bytes.len() < MIN_LEN {
            return None;
        }
        let nonce: Nonce = bytes[..NONCE_LEN].try_into().ok()?;
        let ephemeral: [u8; 32] = bytes[NONCE_LEN..HEADER_LEN].try_into().ok()?;
        let shared = Zeroizing::new(scalarmult(&self.secret, &ephemeral).ok()?);
        let slot = (0..MAX_SLOTS)
            .map(|i| HEADER_LEN + i * SLOT_LEN)
            .take_while(|&start| start + SLOT_LEN + TAG_LEN <= bytes.len())
            .find_map(|start| secretbox_open(&bytes[start..start + SLOT_LEN], &nonce, &shared).ok())
            .map(Zeroizing::new)?;
        let body_key: Zeroizing<[u8; 32]> = Zeroizing::new(slot.get(1..)?.try_into().ok()?);
        let body = bytes.get(HEADER_LEN + usize::from(slot[0]) * SLOT_LEN..)?;
        secretbox_open(body, &nonce, &body_key).ok()
    }
}

/// Whether content is a private-box string: it ends with `.box`, which is what
/// Scuttlebutt treats as private content.
pub fn is_boxed(s: &str) -> bool {
    s.ends_with(SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Keypair {
        let mut seed = [n; 32];
        seed[31] = 0xb0;
        Keypair::from_seed(&seed)
    }

    fn keys(n: u8) -> Vec<Keypair> {
        (1..=n).map(key).collect()
    }

    fn ids(keys: &[Keypair]) -> Vec<FeedId> {
        keys.iter().map(Keypair::id).collect()
    }

    /// A box with fixed randomness and any number of slots.
    fn fixed_box(plain: &[u8], recipients: &[FeedId]) -> Vec<u8> {
        seal(
            plain,
            recipients,
            &[7; NONCE_LEN],
            &CurveKeypair::from_secret([9; 32]),
            Zeroizing::new([5; 32]),
        )
        .unwrap()
    }

    const PLAIN: &[u8] = br#"{"type":"post","text":"hello","recps":["a","b"]}"#;

    #[test]
    fn round_trip_one_recipient() {
        let me = key(1);
        let boxed = box_message(PLAIN, &[me.id()]).unwrap();
        assert!(is_boxed(&boxed));
        let len = b64_decode(boxed.strip_suffix(".box").unwrap())
            .unwrap()
            .len();
        assert_eq!(len, HEADER_LEN + SLOT_LEN + TAG_LEN + PLAIN.len());
        assert_eq!(len, 121 + PLAIN.len());
        assert_eq!(Unboxer::new(&me).open(&boxed), Ok(Some(PLAIN.to_vec())));
    }

    #[test]
    fn round_trip_eight_recipients_and_strangers_get_none() {
        let all = keys(8);
        let boxed = box_message(PLAIN, &ids(&all)).unwrap();
        let len = b64_decode(boxed.strip_suffix(".box").unwrap())
            .unwrap()
            .len();
        assert_eq!(len, 56 + 8 * 49 + 16 + PLAIN.len());
        // Every slot opens, the eighth (last a reader tries) included.
        for k in &all {
            assert_eq!(Unboxer::new(k).open(&boxed), Ok(Some(PLAIN.to_vec())));
        }
        assert_eq!(Unboxer::new(&key(9)).open(&boxed), Ok(None));
        // Fresh randomness each time.
        assert_ne!(boxed, box_message(PLAIN, &ids(&all)).unwrap());
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let me = key(1);
        let boxed = box_message(b"", &[me.id()]).unwrap();
        assert_eq!(Unboxer::new(&me).open(&boxed), Ok(Some(Vec::new())));
    }

    #[test]
    fn recipient_counts_and_keys_are_checked() {
        assert_eq!(box_message(PLAIN, &[]), Err(BoxError::NoRecipients));
        assert!(box_message(PLAIN, &ids(&keys(8))).is_ok());
        assert_eq!(
            box_message(PLAIN, &ids(&keys(9))),
            Err(BoxError::TooManyRecipients(9))
        );
        let bad = FeedId([0; 32]);
        assert_eq!(
            box_message(PLAIN, &[key(1).id(), bad]),
            Err(BoxError::BadRecipient(bad.to_string()))
        );
    }

    /// A reader tries exactly eight slots: a ninth is never looked at, even
    /// in a box some other writer made with more.
    #[test]
    fn reader_tries_eight_slots() {
        let all = keys(9);
        let eight = fixed_box(PLAIN, &ids(&all[..8]));
        assert_eq!(Unboxer::new(&all[7]).open_raw(&eight), Some(PLAIN.to_vec()));
        let nine = fixed_box(PLAIN, &ids(&all));
        assert_eq!(Unboxer::new(&all[7]).open_raw(&nine), Some(PLAIN.to_vec()));
        assert_eq!(Unboxer::new(&all[8]).open_raw(&nine), None);
    }

    /// The body starts after as many slots as the opened slot's count byte
    /// says, whatever the number of slots present.
    #[test]
    fn count_byte_places_the_body() {
        let me = key(1);
        let mut two = fixed_box(PLAIN, &[me.id(), key(2).id()]);
        assert_eq!(Unboxer::new(&me).open_raw(&two), Some(PLAIN.to_vec()));
        // Drop the second slot: the count byte still says two, so the body
        // is looked for one slot too far and does not authenticate.
        two.drain(HEADER_LEN + SLOT_LEN..HEADER_LEN + 2 * SLOT_LEN);
        assert_eq!(Unboxer::new(&me).open_raw(&two), None);
    }

    #[test]
    fn every_truncation_and_byte_flip_fails_cleanly() {
        let me = key(1);
        let unboxer = Unboxer::new(&me);
        let bytes = fixed_box(PLAIN, &[me.id()]);
        assert_eq!(unboxer.open_raw(&bytes), Some(PLAIN.to_vec()));
        for len in 0..bytes.len() {
            assert_eq!(unboxer.open_raw(&bytes[..len]), None, "prefix of {len}");
            let s = format!("{}.box", b64_encode(&bytes[..len]));
            let want = if len < MIN_LEN {
                Err(BoxError::Truncated { len })
            } else {
                Ok(None)
            };
            assert_eq!(unboxer.open(&s), want, "prefix of {len}");
        }
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                // X25519 ignores the top bit of a public key, so that one
                // flip of the ephemeral key still opens (in JavaScript too).
                let want = (i == HEADER_LEN - 1 && bit == 0x80).then(|| PLAIN.to_vec());
                assert_eq!(unboxer.open_raw(&bad), want, "byte {i} ^ {bit:#x}");
            }
        }
        // Trailing bytes after the body make it fail too.
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(unboxer.open_raw(&long), None);
    }

    #[test]
    fn strings_that_are_not_boxes() {
        let unboxer = Unboxer::new(&key(1));
        assert_eq!(unboxer.open("hello"), Err(BoxError::NotBoxed));
        assert_eq!(unboxer.open(""), Err(BoxError::NotBoxed));
        assert_eq!(unboxer.open("abcd.box2"), Err(BoxError::NotBoxed));
        assert_eq!(unboxer.open("not base64!.box"), Err(BoxError::BadBase64));
        assert_eq!(unboxer.open("abc.box"), Err(BoxError::BadBase64));
        assert_eq!(unboxer.open(".box"), Err(BoxError::Truncated { len: 0 }));
        assert!(!is_boxed("{\"type\":\"post\"}"));
        assert!(is_boxed("abcd.box"));
    }
}
