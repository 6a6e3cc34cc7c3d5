//! Classic Scuttlebutt messages: build, sign, id and validate.
//!
//! Owns the one way a [`VerifiedMsg`] comes to exist. The rules are those of
//! ssb-validate 4.1.4 and ssb-keys, read from their source:
//! - keys exactly `previous, author|sequence, sequence|author, timestamp,
//!   hash, content, signature`;
//! - `author` is `@` + canonical base64 of 32 bytes + `.ed25519`;
//! - `sequence` an integer in int32 range (`~~n === n`), 1 for the first
//!   message, else one more than the feed's latest;
//! - `previous` null for the first message, else the id of the latest;
//! - `timestamp` a number on the first message (ssb-validate checks no more);
//! - `hash` is `"sha256"`; `content` an object with a string `type` of 3..52
//!   UTF-16 units, or a string of canonical base64 + `.box` + a suffix
//!   without line terminators;
//! - `signature` is 88 characters of canonical base64 + `.sig.ed25519`,
//!   ed25519 over the UTF-8 of `JSON.stringify(msg without signature, null, 2)`
//!   (or over its HMAC-SHA-512-256 under a sign-cap);
//! - the signed text is at most 8192 UTF-16 units;
//! - the id is sha256 over the latin1 bytes of the signed text.
//!
//! Pure: imports `crypto` and `feed::json` only.

use super::json::{self, JsString, Object, Value};
use crate::crypto::{self, FeedId, FeedMap, Keypair, MsgId, SigBytes, VerifyKey};

/// Largest signed message, in UTF-16 code units.
pub const MAX_MESSAGE_UTF16: usize = 8192;
/// The most bytes a valid message's JSON takes, as a peer sends it: each
/// UTF-16 unit of its signed text is at most 3 bytes of UTF-8, and the
/// compact form is no longer than the signed one.
pub const MAX_MESSAGE_BYTES: usize = 3 * MAX_MESSAGE_UTF16;

/// What the validator needs to know about a feed: its latest message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedState {
    /// Sequence of the latest message.
    pub sequence: u64,
    /// Id of the latest message.
    pub id: MsgId,
}

/// Why a message is not valid. Each variant names one rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] json::JsonError),
    /// The message is not a JSON object.
    #[error("message must be an object, got {0}")]
    NotObject(&'static str),
    /// Fields missing, extra or out of order.
    #[error(
        "message fields must be exactly previous, author, sequence, timestamp, hash, content, signature in that order (got {0})"
    )]
    FieldOrder(String),
    /// `author` is not a canonical ed25519 feed id.
    #[error("author is not a valid ed25519 feed id")]
    BadAuthor,
    /// The author's public key is one libsodium refuses to verify with.
    #[error("author key is not a usable ed25519 public key")]
    UnusableKey,
    /// `sequence` is not an integer in range.
    #[error("sequence must be an integer, got {0}")]
    BadSequence(String),
    /// `sequence` does not follow the feed's latest.
    #[error("expected sequence {expected} but got {got}")]
    SeqMismatch {
        /// The next sequence of the feed.
        expected: u64,
        /// What the message says.
        got: u64,
    },
    /// `previous` is not the id of the feed's latest message.
    #[error("previous must be {expected}, got {got}")]
    PreviousMismatch {
        /// Id of the feed's latest message.
        expected: MsgId,
        /// What the message says (printed as JSON).
        got: String,
    },
    /// The first message of a feed must have `previous: null`.
    #[error("first message must have previous null")]
    FirstPrevious,
    /// `timestamp` is not a number on the first message.
    #[error("timestamp must be a number")]
    BadTimestamp,
    /// `hash` is not `"sha256"`.
    #[error("hash must be \"sha256\"")]
    BadHash,
    /// `content` is neither an object nor a boxed string.
    #[error("content must be an object or a boxed string, got {0}")]
    BadContent(&'static str),
    /// A string content that is not canonical base64 followed by `.box`.
    #[error("string content must be canonical base64 followed by .box")]
    BadBox,
    /// `content.type` is not a string.
    #[error("content type must be a string")]
    TypeNotString,
    /// `content.type` is too short or too long.
    #[error("content type must be 3 to 52 characters, got {0}")]
    TypeLength(usize),
    /// `signature` is not canonical base64 of 64 bytes + `.sig.ed25519`.
    #[error("signature must be canonical base64 of 64 bytes ending in .sig.ed25519")]
    BadSignatureFormat,
    /// The signature does not verify.
    #[error("signature does not verify")]
    SignatureInvalid,
    /// The signed text is over the size limit.
    #[error("message is {0} UTF-16 units, over the limit of 8192")]
    TooLarge(usize),
    /// The HMAC sign-cap is not canonical base64 of 32 bytes.
    #[error("HMAC key must be canonical base64 of 32 bytes")]
    BadHmacKey,
    /// The message itself is valid, but the feed holds a different message
    /// at this sequence: the author forked the feed.
    #[error("fork: feed already holds {existing} at sequence {sequence}")]
    Fork {
        /// The sequence.
        sequence: u64,
        /// Id of the message we have.
        existing: MsgId,
    },
    /// An earlier message of the same feed was rejected.
    #[error("depends on a rejected earlier message of the same feed")]
    BrokenChain,
    /// A range of a feed ([`chain_range`]) holds a message of another feed.
    #[error("a range of one feed holds a message of another")]
    RangeAuthor,
    /// A range of a feed holds no message.
    #[error("an empty range")]
    RangeEmpty,
    /// The lowest message of a range that does not start the feed names
    /// no previous message, so nothing older can chain to it.
    #[error("message {0} names no previous message")]
    RangeNoPrevious(u64),
    /// A range fetched below what we hold does not end in the message our
    /// lowest one names as previous: a fork, or not this feed's history.
    #[error("the range ends in {got}, but the message above it names {expected} as previous")]
    RangeTop {
        /// The `previous` of the lowest message we hold.
        expected: MsgId,
        /// The id of the range's highest message.
        got: MsgId,
    },
}

/// A message whose format, size and signature are checked, but not yet its
/// place in the feed (sequence and previous). Cheap to make in parallel.
#[derive(Clone, Debug)]
pub struct SignedMsg {
    id: MsgId,
    author: FeedId,
    sequence: u64,
    previous: Option<MsgId>,
    value: Value,
    json: Vec<u8>,
}

impl SignedMsg {
    /// The message id.
    pub fn id(&self) -> MsgId {
        self.id
    }
    /// The feed.
    pub fn author(&self) -> FeedId {
        self.author
    }
    /// Its sequence in the feed.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
    /// Compact JSON of the whole message value.
    pub fn json(&self) -> &[u8] {
        &self.json
    }
    /// A field of the message value (null when absent).
    fn field(&self, name: &str) -> &Value {
        self.value.get(name).unwrap_or(&Value::Null)
    }
}

/// A message that passed every rule, including its place in its feed. Only
/// this module makes one; the store only accepts these.
#[derive(Clone, Debug)]
pub struct VerifiedMsg(SignedMsg);

impl VerifiedMsg {
    /// The message id `%….sha256`.
    pub fn id(&self) -> MsgId {
        self.0.id
    }
    /// The author's feed id.
    pub fn author(&self) -> FeedId {
        self.0.author
    }
    /// Position in the author's feed, from 1.
    pub fn sequence(&self) -> u64 {
        self.0.sequence
    }
    /// The previous message of the feed (none for sequence 1).
    pub fn previous(&self) -> Option<MsgId> {
        self.0.previous
    }
    /// The claimed creation time in ms, when it is a finite number. Authors
    /// choose it freely; never trust it for ordering beyond display.
    pub fn timestamp(&self) -> Option<f64> {
        self.0.field("timestamp").as_f64().filter(|t| t.is_finite())
    }
    /// The whole message value, keys in received order.
    pub fn value(&self) -> &Value {
        &self.0.value
    }
    /// The `content` field: an object, or a boxed string.
    pub fn content(&self) -> &Value {
        self.0.value.get("content").unwrap_or(&Value::Null)
    }
    /// Compact JSON of the value (`JSON.stringify(value)`), as stored and
    /// served. `JSON.stringify(value, null, 2)` of the same value, from which
    /// signature and id are computed, follows from it exactly.
    pub fn json(&self) -> &[u8] {
        &self.0.json
    }
    /// The feed state this message leaves behind.
    pub fn state(&self) -> FeedState {
        FeedState {
            sequence: self.0.sequence,
            id: self.0.id,
        }
    }
}

/// A message with everything but the signature checked: the input to
/// (batch) signature verification.
#[derive(Clone, Debug)]
pub struct Unverified {
    msg: SignedMsg,
    signed_data: Vec<u8>,
    sig: SigBytes,
}

impl Unverified {
    /// The author.
    pub fn author(&self) -> FeedId {
        self.msg.author
    }
    /// The message id computed from the message.
    pub fn id(&self) -> MsgId {
        self.msg.id
    }
    /// The bytes its signature is over, and the signature.
    pub fn signed(&self) -> (&[u8], &SigBytes) {
        (&self.signed_data, &self.sig)
    }
}

/// Parses an HMAC sign-cap given as base64, as ssb-validate checks it.
pub fn parse_hmac_key(b64: &str) -> Result<[u8; 32], ValidationError> {
    crypto::b64_decode(b64)
        .and_then(|b| b.try_into().ok())
        .ok_or(ValidationError::BadHmacKey)
}

fn check_sequence(v: &Value) -> Result<u64, ValidationError> {
    match v {
        // ~~n === n: an integer within int32.
        Value::Number(n) if n.fract() == 0.0 && *n >= -2147483648.0 && *n <= 2147483647.0 => {
            if *n >= 1.0 {
                Ok(*n as u64)
            } else {
                // An integer, but no feed state can ever be followed by it.
                Err(ValidationError::BadSequence(format!("{n}")))
            }
        }
        other => Err(ValidationError::BadSequence(
            String::from_utf8_lossy(&json::to_compact(other)).into_owned(),
        )),
    }
}

/// `^<canonical base64>\.box.*$` where `.` matches no line terminator.
fn is_boxed(s: &JsString) -> bool {
    let b = s.as_wtf8();
    let Some(dot) = b.iter().position(|&c| c == b'.') else {
        return false;
    };
    let (b64, rest) = b.split_at(dot);
    if !rest.starts_with(b".box") {
        return false;
    }
    let tail = &rest[4..];
    // Line terminators: \n, \r, U+2028, U+2029 (E2 80 A8 / E2 80 A9).
    if tail.iter().any(|&c| c == b'\n' || c == b'\r')
        || tail
            .windows(3)
            .any(|w| w == [0xE2, 0x80, 0xA8] || w == [0xE2, 0x80, 0xA9])
    {
        return false;
    }
    b64.is_empty()
        || std::str::from_utf8(b64)
            .ok()
            .and_then(crypto::b64_decode)
            .is_some()
}

/// The string a value equals under JavaScript's loose `!=` against a
/// string, as ssb-validate compares `previous`: the string itself, or an
/// array of exactly one such element (arrays compare through `join`).
fn loose_string(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => s.as_str(),
        Value::Array(items) if items.len() == 1 => loose_string(&items[0]),
        _ => None,
    }
}

fn parse_signature(v: &Value) -> Result<SigBytes, ValidationError> {
    let s = v.as_str().ok_or(ValidationError::BadSignatureFormat)?;
    let b64 = s
        .strip_suffix(".sig.ed25519")
        .filter(|b| b.len() == 88)
        .ok_or(ValidationError::BadSignatureFormat)?;
    crypto::b64_decode(b64)
        .and_then(|b| b.try_into().ok())
        .ok_or(ValidationError::BadSignatureFormat)
}

/// Checks everything that does not depend on the feed's state or the
/// signature's validity, and computes the signed bytes and the id.
pub fn prepare(value: Value, hmac: Option<&[u8; 32]>) -> Result<Unverified, ValidationError> {
    let obj = match &value {
        Value::Object(o) => o,
        other => return Err(ValidationError::NotObject(other.kind())),
    };
    check_order(obj)?;
    let field = |name: &str| obj.get(name).unwrap_or(&Value::Null);
    let author = field("author")
        .as_str()
        .and_then(FeedId::parse)
        .ok_or(ValidationError::BadAuthor)?;
    let sig = parse_signature(field("signature"))?;
    let sequence = check_sequence(field("sequence"))?;
    if field("hash").as_str() != Some("sha256") {
        return Err(ValidationError::BadHash);
    }
    match field("content") {
        Value::Object(c) => match c.get("type") {
            Some(Value::String(t)) => {
                let n = t.utf16_len();
                if !(3..=52).contains(&n) {
                    return Err(ValidationError::TypeLength(n));
                }
            }
            _ => return Err(ValidationError::TypeNotString),
        },
        Value::Array(_) => return Err(ValidationError::TypeNotString),
        Value::String(s) => {
            if !is_boxed(s) {
                return Err(ValidationError::BadBox);
            }
        }
        other => return Err(ValidationError::BadContent(other.kind())),
    }
    let previous = loose_string(field("previous")).and_then(MsgId::parse);

    // The signed text, JSON.stringify(msg, null, 2), is built first; the
    // text the signature covers, the same without the signature, is then
    // cut from it in place (no second copy).
    let mut text = Vec::with_capacity(700);
    text.push(b'{');
    for i in 0..6 {
        let (k, v) = obj.entry_at(i).expect("order checked");
        if i > 0 {
            text.push(b',');
        }
        text.extend_from_slice(b"\n  ");
        json::write_js_string(&mut text, k);
        text.extend_from_slice(b": ");
        json::write_pretty(&mut text, v, 1);
    }
    let body = text.len();
    text.extend_from_slice(b",\n  \"signature\": ");
    json::write_compact(&mut text, field("signature"));
    text.extend_from_slice(b"\n}");

    // The id hashes the text's latin-1 view (one byte per UTF-16 unit), so
    // that view's length is also the text's length in UTF-16 units.
    let latin1 = if text.is_ascii() {
        None
    } else {
        let mut latin1 = Vec::with_capacity(text.len());
        json::latin1_bytes(&text, &mut latin1);
        Some(latin1)
    };
    let units = latin1.as_ref().map_or(text.len(), Vec::len);
    if units > MAX_MESSAGE_UTF16 {
        return Err(ValidationError::TooLarge(units));
    }
    let id = MsgId(crypto::sha256(latin1.as_deref().unwrap_or(&text)));
    let mut json = Vec::with_capacity(text.len());
    json::minify_pretty(&text, &mut json);
    // JSON.stringify(msg without signature, null, 2): the first six entries.
    text.truncate(body);
    text.extend_from_slice(b"\n}");
    let signed_data = match hmac {
        Some(key) => crypto::hmac_sha512_256(key, &text).to_vec(),
        None => text,
    };
    Ok(Unverified {
        msg: SignedMsg {
            id,
            author,
            sequence,
            previous,
            value,
            json,
        },
        signed_data,
        sig,
    })
}

fn check_order(obj: &Object) -> Result<(), ValidationError> {
    // The two orders JavaScript clients write (no list built: this runs
    // for every message).
    const ORDERS: [[&str; 7]; 2] = [
        [
            "previous",
            "author",
            "sequence",
            "timestamp",
            "hash",
            "content",
            "signature",
        ],
        [
            "previous",
            "sequence",
            "author",
            "timestamp",
            "hash",
            "content",
            "signature",
        ],
    ];
    let ok = obj.len() == 7
        && ORDERS
            .iter()
            .any(|order| obj.keys().zip(order).all(|(k, name)| *k == **name));
    if ok {
        Ok(())
    } else {
        let names: Vec<String> = obj.keys().map(|k| k.to_string_lossy()).collect();
        Err(ValidationError::FieldOrder(names.join(", ")))
    }
}

/// Public keys prepared for verification, remembered per author: the
/// decompression of a key costs as much as a quarter of a verification.
/// Shared by the threads that verify (behind an `Arc`): a key not yet
/// remembered is prepared by whichever thread needs it first.
#[derive(Default)]
pub struct KeyCache(std::sync::RwLock<FeedMap<Option<VerifyKey>>>);

impl KeyCache {
    /// The prepared key of an author, or `None` when libsodium would refuse
    /// it; remembered from now on.
    pub fn get(&self, id: &FeedId) -> Option<VerifyKey> {
        let known = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied();
        match known {
            Some(k) => k,
            None => {
                let k = VerifyKey::new(id);
                self.0
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(*id, k);
                k
            }
        }
    }

    /// Number of authors remembered.
    pub fn len(&self) -> usize {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no author is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Verifies the signature of one prepared message.
pub fn verify_one(u: Unverified, keys: &KeyCache) -> Result<SignedMsg, ValidationError> {
    let key = keys
        .get(&u.msg.author)
        .ok_or(ValidationError::UnusableKey)?;
    if crypto::verify(&key, &u.signed_data, &u.sig) {
        Ok(u.msg)
    } else {
        Err(ValidationError::SignatureInvalid)
    }
}

/// Verifies the signatures of many prepared messages with one batch
/// equation; when the batch fails, each is checked alone to find the bad
/// ones. Results are in input order.
pub fn verify_many(
    batch: Vec<Unverified>,
    keys: &KeyCache,
) -> Vec<Result<SignedMsg, ValidationError>> {
    let mut early: Vec<Option<ValidationError>> = Vec::with_capacity(batch.len());
    let mut vkeys = Vec::with_capacity(batch.len());
    // Each author's key from the shared cache once per call: the checking
    // threads then do not take its lock for every message.
    let mut mine: FeedMap<Option<VerifyKey>> = FeedMap::default();
    for u in &batch {
        let key = *mine
            .entry(u.msg.author)
            .or_insert_with(|| keys.get(&u.msg.author));
        match key {
            None => early.push(Some(ValidationError::UnusableKey)),
            Some(_) if !crypto::signature_well_formed(&u.sig) => {
                early.push(Some(ValidationError::SignatureInvalid))
            }
            Some(k) => {
                early.push(None);
                vkeys.push(k);
            }
        }
    }
    let all_good = {
        let candidates = || batch.iter().zip(&early).filter(|(_, e)| e.is_none());
        let data: Vec<&[u8]> = candidates()
            .map(|(u, _)| u.signed_data.as_slice())
            .collect();
        let sigs: Vec<SigBytes> = candidates().map(|(u, _)| u.sig).collect();
        crypto::verify_batch(&data, &sigs, &vkeys)
    };
    let mut vkeys = vkeys.into_iter();
    batch
        .into_iter()
        .zip(early)
        .map(|(u, e)| {
            if let Some(e) = e {
                return Err(e);
            }
            let key = vkeys.next().expect("one key per candidate");
            if all_good || crypto::verify(&key, &u.signed_data, &u.sig) {
                Ok(u.msg)
            } else {
                Err(ValidationError::SignatureInvalid)
            }
        })
        .collect()
}

/// Places a signature-checked message in its feed: the first message needs
/// `previous: null`, sequence 1 and a numeric timestamp; any later one needs
/// the sequence after `state` and its id as `previous`.
pub fn chain(state: Option<&FeedState>, msg: SignedMsg) -> Result<VerifiedMsg, ValidationError> {
    match state {
        None => {
            if *msg.field("previous") != Value::Null {
                return Err(ValidationError::FirstPrevious);
            }
            if msg.sequence != 1 {
                return Err(ValidationError::SeqMismatch {
                    expected: 1,
                    got: msg.sequence,
                });
            }
            if msg.field("timestamp").as_f64().is_none() {
                return Err(ValidationError::BadTimestamp);
            }
        }
        Some(st) => {
            if msg.sequence != st.sequence + 1 {
                return Err(ValidationError::SeqMismatch {
                    expected: st.sequence + 1,
                    got: msg.sequence,
                });
            }
            if msg.previous != Some(st.id) {
                return Err(ValidationError::PreviousMismatch {
                    expected: st.id,
                    got: String::from_utf8_lossy(&json::to_compact(msg.field("previous")))
                        .into_owned(),
                });
            }
        }
    }
    Ok(VerifiedMsg(msg))
}

/// Where a range of a feed ([`chain_range`]) is to sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAnchor {
    /// The newest messages of a feed of which nothing is held: the range
    /// stands on its own (its lowest message's `previous` is taken as it
    /// claims, to be met by the range below it later).
    Newest,
    /// Just below the lowest message held, at `sequence`, which names
    /// `previous`: the range must end in exactly that message.
    Below {
        /// Sequence of the lowest message held.
        sequence: u64,
        /// Its `previous`.
        previous: MsgId,
    },
}

/// Places signature-checked messages of one feed, in ascending order, as a
/// range of it: consecutive sequences, each naming the one before as
/// `previous`; the lowest one either starts the feed ([`chain`]'s rules for
/// sequence 1) or names a previous message; and, below what is held, the
/// highest one is the message the held range names. The whole range is
/// refused on the first break: a part of it is never placed.
pub fn chain_range(
    anchor: RangeAnchor,
    msgs: Vec<SignedMsg>,
) -> Result<Vec<VerifiedMsg>, ValidationError> {
    let first = msgs.first().ok_or(ValidationError::RangeEmpty)?;
    let author = first.author;
    if msgs.iter().any(|m| m.author != author) {
        return Err(ValidationError::RangeAuthor);
    }
    if let RangeAnchor::Below { sequence, previous } = anchor {
        let last = msgs.last().expect("not empty");
        if last.sequence + 1 != sequence {
            return Err(ValidationError::SeqMismatch {
                expected: sequence - 1,
                got: last.sequence,
            });
        }
        if last.id != previous {
            return Err(ValidationError::RangeTop {
                expected: previous,
                got: last.id,
            });
        }
    }
    let mut out: Vec<VerifiedMsg> = Vec::with_capacity(msgs.len());
    for m in msgs {
        let placed = match out.last() {
            Some(before) => chain(Some(&before.state()), m)?,
            None if m.sequence == 1 => chain(None, m)?,
            None if m.previous.is_none() => {
                return Err(ValidationError::RangeNoPrevious(m.sequence));
            }
            None => VerifiedMsg(m),
        };
        out.push(placed);
    }
    Ok(out)
}

/// Validates one message value against its feed's state: every rule.
pub fn validate(
    state: Option<&FeedState>,
    hmac: Option<&[u8; 32]>,
    value: Value,
) -> Result<VerifiedMsg, ValidationError> {
    let u = prepare(value, hmac)?;
    let signed = verify_one(u, &KeyCache::default())?;
    chain(state, signed)
}

/// Builds and signs the next message of `keys`' feed. The result goes
/// through [`validate`] like any other message before it can be stored.
pub fn build(
    keys: &Keypair,
    state: Option<&FeedState>,
    timestamp: f64,
    content: Value,
    hmac: Option<&[u8; 32]>,
) -> Value {
    let mut msg = Object::new();
    msg.insert(
        "previous",
        match state {
            Some(s) => Value::String(s.id.to_string().into()),
            None => Value::Null,
        },
    );
    msg.insert(
        "sequence",
        Value::Number(state.map_or(1, |s| s.sequence + 1) as f64),
    );
    msg.insert("author", Value::String(keys.id().to_string().into()));
    msg.insert("timestamp", Value::Number(timestamp));
    msg.insert("hash", Value::from("sha256"));
    msg.insert("content", content);
    let unsigned = json::to_pretty(&Value::Object(msg.clone()));
    let sig = match hmac {
        Some(k) => keys.sign(&crypto::hmac_sha512_256(k, &unsigned)),
        None => keys.sign(&unsigned),
    };
    msg.insert(
        "signature",
        Value::String(format!("{}.sig.ed25519", crypto::b64_encode(&sig)).into()),
    );
    Value::Object(msg)
}

/// Signed text of a message value: `JSON.stringify(value, null, 2)`.
pub fn signed_text(value: &Value) -> Vec<u8> {
    json::to_pretty(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(text: &str) -> Value {
        let mut c = Object::new();
        c.insert("type", Value::from("post"));
        c.insert("text", Value::from(text));
        Value::Object(c)
    }

    /// A feed of `n` messages of `seed`'s key, signature-checked.
    fn signed_feed(seed: u8, n: u64) -> Vec<SignedMsg> {
        let kp = Keypair::from_seed(&[seed; 32]);
        let mut state: Option<FeedState> = None;
        let mut out = Vec::new();
        for i in 1..=n {
            let v = build(&kp, state.as_ref(), i as f64, post(&format!("m{i}")), None);
            let m = validate(state.as_ref(), None, v).unwrap();
            state = Some(m.state());
            out.push(m.0);
        }
        out
    }

    #[test]
    fn a_newest_range_chains_among_itself_and_is_refused_whole_on_a_break() {
        let feed = signed_feed(3, 10);
        let top = chain_range(RangeAnchor::Newest, feed[6..].to_vec()).unwrap();
        assert_eq!(top.len(), 4);
        assert_eq!(top[0].sequence(), 7);
        // A gap: one message left out.
        let mut gap = feed[5..].to_vec();
        gap.remove(2);
        assert!(matches!(
            chain_range(RangeAnchor::Newest, gap),
            Err(ValidationError::SeqMismatch { .. })
        ));
        // A message of another feed inside it.
        let mut mixed = feed[6..].to_vec();
        mixed[1] = signed_feed(4, 8)[7].clone();
        assert_eq!(
            chain_range(RangeAnchor::Newest, mixed).unwrap_err(),
            ValidationError::RangeAuthor
        );
        // A fork of the same feed: same key, other messages from 8 on.
        let kp = Keypair::from_seed(&[3; 32]);
        let seventh = VerifiedMsg(feed[6].clone()).state();
        let other = build(&kp, Some(&seventh), 99.0, post("fork"), None);
        let other = validate(Some(&seventh), None, other).unwrap();
        let mut forked = feed[5..7].to_vec();
        forked.push(other.0.clone());
        forked.push(feed[8].clone());
        assert!(matches!(
            chain_range(RangeAnchor::Newest, forked),
            Err(ValidationError::PreviousMismatch { .. })
        ));
        assert_eq!(
            chain_range(RangeAnchor::Newest, Vec::new()).unwrap_err(),
            ValidationError::RangeEmpty
        );
    }

    #[test]
    fn a_range_below_must_end_in_the_message_the_held_range_names() {
        let feed = signed_feed(5, 10);
        let held = VerifiedMsg(feed[6].clone());
        let below = RangeAnchor::Below {
            sequence: held.sequence(),
            previous: held.previous().unwrap(),
        };
        // Down to sequence 1: the first message's own rules apply.
        let all = chain_range(below, feed[..6].to_vec()).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(chain_range(below, feed[3..6].to_vec()).unwrap().len(), 3);
        // Not reaching the held range.
        assert!(matches!(
            chain_range(below, feed[..5].to_vec()),
            Err(ValidationError::SeqMismatch { .. })
        ));
        // A fork below: a valid message 6 of the same key that is not the
        // one message 7 names.
        let kp = Keypair::from_seed(&[5; 32]);
        let fifth = VerifiedMsg(feed[4].clone()).state();
        let other = validate(
            Some(&fifth),
            None,
            build(&kp, Some(&fifth), 50.0, post("other"), None),
        )
        .unwrap();
        let mut forked = feed[3..5].to_vec();
        forked.push(other.0);
        assert!(matches!(
            chain_range(below, forked),
            Err(ValidationError::RangeTop { .. })
        ));
    }

    #[test]
    fn build_then_validate_chains() {
        let kp = Keypair::from_seed(&[9; 32]);
        let m1 = validate(None, None, build(&kp, None, 1.0, post("a"), None)).unwrap();
        assert_eq!(m1.sequence(), 1);
        let m2 = validate(
            Some(&m1.state()),
            None,
            build(&kp, Some(&m1.state()), 2.0, post("b"), None),
        )
        .unwrap();
        assert_eq!(m2.previous(), Some(m1.id()));
        // Replaying m2 after itself is a sequence error.
        let again = validate(Some(&m2.state()), None, m2.value().clone());
        assert!(matches!(
            again,
            Err(ValidationError::SeqMismatch {
                expected: 3,
                got: 2
            })
        ));
    }

    #[test]
    fn hmac_signed_messages_need_the_key() {
        let kp = Keypair::from_seed(&[2; 32]);
        let key = [7u8; 32];
        let v = build(&kp, None, 1.0, post("x"), Some(&key));
        assert!(validate(None, Some(&key), v.clone()).is_ok());
        assert_eq!(
            validate(None, None, v).unwrap_err(),
            ValidationError::SignatureInvalid
        );
    }

    #[test]
    fn boxed_strings() {
        let b = |s: &str| is_boxed(&JsString::from(s));
        assert!(b("QUJD.box"));
        assert!(b(".box"));
        assert!(b("QUJD.box2.anything"));
        assert!(!b("aab.box"));
        assert!(!b("QUJD.box\n"));
        assert!(!b("QUJD.bo"));
        assert!(b("QUI=.box"));
        assert!(!b("QUJ=.box")); // stray bits in the last character
    }
}
