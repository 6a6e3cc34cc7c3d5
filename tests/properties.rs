//! Property tests of the message rules, over random content from fixed seeds
//! (so every run checks the same cases):
//! - sign then validate: a message made with `feed::build` from any content
//!   (nested values, any UTF-16 strings including lone surrogates and
//!   control characters, any finite numbers, integer-like keys), any
//!   timestamp, any feed state and with or without an HMAC sign-cap
//!   validates with the id JavaScript would compute, unless it is over 8192
//!   UTF-16 units; its printed form parses back to a message with the same
//!   id; under another sign-cap it does not validate;
//! - tamper evidence: changing any single byte of the printed signed message
//!   makes it unparseable or invalid, except when the changed text parses to
//!   the very same message (whitespace, the case of a `\u` escape, `e`/`E`),
//!   which must then still validate with the same id;
//! - chain: in a feed of n messages, message k validates against the state
//!   after message j iff j == k - 1, and only with the right previous id.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::RngSeed;

use shoal::crypto::{Keypair, MsgId};
use shoal::feed::json::{self, JsString, Object, Value};
use shoal::feed::{self, FeedState, ValidationError};

use crate::common::test_key;

fn config(seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A JavaScript string of these UTF-16 code units (lone surrogates kept).
fn js_string_of(units: &[u16]) -> JsString {
    let mut lit = String::from("\"");
    for u in units {
        lit.push_str(&format!("\\u{u:04x}"));
    }
    lit.push('"');
    match json::parse(lit.as_bytes()) {
        Ok(Value::String(s)) => s,
        other => panic!("{lit} parsed as {other:?}"),
    }
}

fn js_string() -> impl Strategy<Value = JsString> {
    let special = prop_oneof![
        0u16..0x20,
        0xd800u16..0xe000,
        select(vec![
            0x22u16, 0x5c, 0x7f, 0x80, 0xff, 0x2028, 0x2029, 0xfeff, 0xffff
        ]),
    ];
    prop_oneof![
        3 => "(?s).{0,12}".prop_map(JsString::from),
        2 => prop::collection::vec(any::<u16>(), 0..8).prop_map(|u| js_string_of(&u)),
        2 => prop::collection::vec(special, 0..6).prop_map(|u| js_string_of(&u)),
        1 => select(vec!["", "é", "😀", "\u{10ffff}", "日本語", "\"\\/", "e\u{301}", "a\u{0}b"])
            .prop_map(JsString::from),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("JSON numbers are finite", |n| n.is_finite()),
        any::<i64>().prop_map(|n| n as f64),
        -1e6..1e6f64,
        select(vec![
            0.0,
            -0.0,
            0.1,
            1e21,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            9007199254740993.0,
            123e-20,
            1.0 / 3.0,
        ]),
    ]
}

/// Object keys, many of them integer-like (V8 lists array indices first).
fn key() -> impl Strategy<Value = JsString> {
    prop_oneof![
        2 => js_string(),
        1 => (0u64..20).prop_map(|n| JsString::from(n.to_string())),
        1 => (4294967290u64..4294967300).prop_map(|n| JsString::from(n.to_string())),
        1 => any::<u32>().prop_map(|n| JsString::from(n.to_string())),
        1 => select(vec!["01", "-1", "1.5", "", "00", "1e3", " 1", "-0"]).prop_map(JsString::from),
    ]
}

fn object(entries: Vec<(JsString, Value)>) -> Value {
    let mut o = Object::new();
    for (k, v) in entries {
        o.insert(k, v);
    }
    Value::Object(o)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        js_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(object),
        ]
    })
}

/// A content type of 3..=52 UTF-16 units.
fn content_type() -> impl Strategy<Value = JsString> {
    prop_oneof![
        "[a-z-]{3,20}".prop_map(JsString::from),
        "(?s).{3,26}".prop_map(JsString::from),
        prop::collection::vec(any::<u16>(), 3..=52).prop_map(|u| js_string_of(&u)),
    ]
}

fn content() -> impl Strategy<Value = Value> {
    (
        content_type(),
        prop::collection::vec((key(), json_value()), 0..6),
    )
        .prop_map(|(t, rest)| {
            let mut entries = vec![(JsString::from("type"), Value::String(t))];
            entries.extend(rest.into_iter().filter(|(k, _)| *k != *"type"));
            object(entries)
        })
}

fn state() -> impl Strategy<Value = Option<FeedState>> {
    prop::option::of(
        (1u64..100_000, any::<[u8; 32]>()).prop_map(|(sequence, id)| FeedState {
            sequence,
            id: MsgId(id),
        }),
    )
}

/// Everything one message is made from.
#[derive(Debug, Clone)]
struct Recipe {
    key: u8,
    state: Option<FeedState>,
    timestamp: f64,
    content: Value,
    hmac: Option<[u8; 32]>,
}

impl Recipe {
    fn keys(&self) -> Keypair {
        test_key(self.key)
    }

    fn build(&self) -> Value {
        feed::build(
            &self.keys(),
            self.state.as_ref(),
            self.timestamp,
            self.content.clone(),
            self.hmac.as_ref(),
        )
    }

    fn validate(&self, v: Value) -> Result<feed::VerifiedMsg, ValidationError> {
        feed::validate(self.state.as_ref(), self.hmac.as_ref(), v)
    }
}

fn recipe() -> impl Strategy<Value = Recipe> {
    (
        100u8..108,
        state(),
        number(),
        content(),
        prop::option::of(any::<[u8; 32]>()),
    )
        .prop_map(|(key, state, timestamp, content, hmac)| Recipe {
            key,
            state,
            timestamp,
            content,
            hmac,
        })
}

/// The id JavaScript computes: sha256 of the latin1 of the pretty JSON.
fn js_id(v: &Value) -> MsgId {
    let mut latin1 = Vec::new();
    json::latin1_bytes(&json::to_pretty(v), &mut latin1);
    MsgId(shoal::crypto::sha256(&latin1))
}

fn units(v: &Value) -> usize {
    json::utf16_len_wtf8(&json::to_pretty(v))
}

proptest! {
    #![proptest_config(config(0x5107_0001))]

    #[test]
    fn signed_messages_validate(r in recipe()) {
        let v = r.build();
        let n = units(&v);
        let result = r.validate(v.clone());
        if n > feed::msg::MAX_MESSAGE_UTF16 {
            prop_assert!(
                matches!(result, Err(ValidationError::TooLarge(u)) if u == n),
                "{n} units: {result:?}"
            );
            return Ok(());
        }
        let m = result.map_err(|e| TestCaseError::fail(format!("rejected: {e}")))?;
        prop_assert_eq!(m.id(), js_id(&v));
        prop_assert_eq!(m.json(), &json::to_compact(&v)[..]);
        prop_assert_eq!(m.author(), r.keys().id());
        prop_assert_eq!(m.sequence(), r.state.map_or(1, |s| s.sequence + 1));

        // The printed message, parsed again, is the same message.
        let text = json::to_pretty(&v);
        let parsed = json::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("printed message does not parse: {e}")))?;
        prop_assert_eq!(json::to_compact(&parsed), json::to_compact(&v));
        prop_assert_eq!(json::to_pretty(&parsed), text);
        let again = r.validate(parsed)
            .map_err(|e| TestCaseError::fail(format!("re-parsed message rejected: {e}")))?;
        prop_assert_eq!(again.id(), m.id());

        // Under another sign-cap (or none) the signature does not verify.
        let other = match r.hmac {
            Some(_) => None,
            None => Some([0x42; 32]),
        };
        prop_assert_eq!(
            feed::validate(r.state.as_ref(), other.as_ref(), v).unwrap_err(),
            ValidationError::SignatureInvalid
        );
    }
}

/// What a mutated text turned out to be.
#[derive(Debug, PartialEq)]
enum Judged {
    NotJson,
    SameMessage,
    Rejected,
}

/// Judges one mutated text of the message `original` (valid, with id
/// `id`): it must not parse, or parse to the same message (and validate
/// with the same id), or parse to another value that does not validate.
fn judge(r: &Recipe, original: &Value, id: MsgId, mutated: &[u8]) -> Result<Judged, String> {
    let Ok(parsed) = json::parse(mutated) else {
        return Ok(Judged::NotJson);
    };
    let same = json::to_compact(&parsed) == json::to_compact(original);
    match (same, r.validate(parsed)) {
        (true, Ok(m)) if m.id() == id => Ok(Judged::SameMessage),
        (true, Ok(m)) => Err(format!("same message, other id {}", m.id())),
        (true, Err(e)) => Err(format!("same message rejected: {e}")),
        (false, Err(_)) => Ok(Judged::Rejected),
        (false, Ok(m)) => Err(format!("a changed message is accepted as {}", m.id())),
    }
}

proptest! {
    #![proptest_config(config(0x5107_0002))]

    #[test]
    fn any_changed_byte_is_detected(
        r in recipe(),
        changes in prop::collection::vec((any::<Index>(), 1u8..=255), 24),
    ) {
        let v = r.build();
        prop_assume!(units(&v) <= feed::msg::MAX_MESSAGE_UTF16);
        let id = r.validate(v.clone())
            .map_err(|e| TestCaseError::fail(format!("rejected: {e}")))?
            .id();
        let text = json::to_pretty(&v);
        for (at, xor) in changes {
            let pos = at.index(text.len());
            let mut mutated = text.clone();
            mutated[pos] ^= xor;
            if let Err(e) = judge(&r, &v, id, &mutated) {
                return Err(TestCaseError::fail(format!(
                    "byte {pos} xor {xor:#04x}: {e}\n{}",
                    String::from_utf8_lossy(&mutated)
                )));
            }
        }
    }
}

/// Every byte of one message with escapes, surrogates, numbers, integer
/// keys and a previous id, changed in several ways: the rule holds at each
/// position, and both outcomes occur.
#[test]
fn every_byte_of_a_message_is_covered() {
    let content = json::parse(
        r#"{"type":"sweep","2":"two","10":[1e21,-0.5,1E-7],"text":"\u0001\n\"\\ \ud800 \u00e9 \u2028 😀","o":{"":null,"a":true}}"#
            .as_bytes(),
    )
    .unwrap();
    let r = Recipe {
        key: 110,
        state: Some(FeedState {
            sequence: 41,
            id: MsgId([0x5a; 32]),
        }),
        timestamp: 1_700_000_000_000.25,
        content,
        hmac: None,
    };
    let v = r.build();
    let id = r.validate(v.clone()).unwrap().id();
    let text = json::to_pretty(&v);
    let mut seen = std::collections::HashMap::new();
    let mut broken = Vec::new();
    // 0x29: ' ' <-> '\t'; 0x2a: ' ' <-> '\n'; 0x20: letter case.
    for xor in [0x01u8, 0x02, 0x20, 0x29, 0x2a, 0x80] {
        for pos in 0..text.len() {
            let mut mutated = text.clone();
            mutated[pos] ^= xor;
            match judge(&r, &v, id, &mutated) {
                Ok(j) => *seen.entry(format!("{j:?}")).or_insert(0) += 1,
                Err(e) => broken.push(format!("byte {pos} xor {xor:#04x}: {e}")),
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    for outcome in ["NotJson", "SameMessage", "Rejected"] {
        assert!(seen.get(outcome).is_some_and(|&n| n > 10), "{seen:?}");
    }
}

proptest! {
    #![proptest_config(config(0x5107_0003))]

    #[test]
    fn only_the_next_message_follows_a_state(
        n in 2usize..=6,
        key in 100u8..108,
        texts in prop::collection::vec(js_string(), 6),
        t0 in number(),
        hmac in prop::option::of(any::<[u8; 32]>()),
        other_id in any::<[u8; 32]>(),
    ) {
        let keys = test_key(key);
        let mut msgs: Vec<Value> = Vec::new();
        let mut states: Vec<FeedState> = Vec::new();
        for (i, text) in texts.iter().take(n).enumerate() {
            let mut c = Object::new();
            c.insert("type", Value::from("post"));
            c.insert("text", Value::String(text.clone()));
            let v = feed::build(&keys, states.last(), t0 + i as f64, Value::Object(c), hmac.as_ref());
            let m = feed::validate(states.last(), hmac.as_ref(), v.clone())
                .map_err(|e| TestCaseError::fail(format!("message {}: {e}", i + 1)))?;
            states.push(m.state());
            msgs.push(v);
        }
        for (k, msg) in msgs.iter().enumerate().map(|(i, m)| (i + 1, m)) {
            for j in 0..=n {
                let state = if j == 0 { None } else { Some(states[j - 1]) };
                let ok = feed::validate(state.as_ref(), hmac.as_ref(), msg.clone()).is_ok();
                prop_assert_eq!(ok, j == k - 1, "message {} against the state after {}", k, j);
            }
            if k > 1 {
                // The right sequence with another previous id.
                let other = FeedState { sequence: k as u64 - 1, id: MsgId(other_id) };
                prop_assume!(other.id != states[k - 2].id);
                let r = feed::validate(Some(&other), hmac.as_ref(), msg.clone());
                prop_assert!(
                    matches!(r, Err(ValidationError::PreviousMismatch { .. })),
                    "message {} after a state with another id: {:?}", k, r
                );
            }
        }
    }
}
