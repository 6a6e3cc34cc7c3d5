//! Conformance with the JavaScript implementation, through shared vectors.

use shoal::crypto::MsgId;
use shoal::feed::json::{self, Value};
use shoal::feed::{self, FeedState, ValidationError};

use crate::common::read_vector;

/// ssb-validation-dataset: 126 cases, valid ones with their ids.
#[test]
fn validation_dataset_all_cases() {
    let data = json::parse(&read_vector("ssb-validation-dataset/data.json")).unwrap();
    let Value::Array(cases) = data else {
        panic!("dataset is not an array")
    };
    assert_eq!(cases.len(), 126);
    let (mut valid, mut invalid) = (0, 0);
    for (i, case) in cases.iter().enumerate() {
        let state = match case.get("state") {
            Some(Value::Object(s)) => Some(FeedState {
                sequence: s.get("sequence").and_then(Value::as_f64).unwrap() as u64,
                id: MsgId::parse(s.get("id").and_then(Value::as_str).unwrap()).unwrap(),
            }),
            _ => None,
        };
        let hmac: Result<Option<[u8; 32]>, ValidationError> = match case.get("hmacKey") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => match s.as_str() {
                Some(s) => feed::parse_hmac_key(s).map(Some),
                None => Err(ValidationError::BadHmacKey),
            },
            Some(_) => Err(ValidationError::BadHmacKey),
        };
        let message = case.get("message").cloned().unwrap_or(Value::Null);
        let result = hmac.and_then(|h| feed::validate(state.as_ref(), h.as_ref(), message));
        let expect_valid = case.get("valid") == Some(&Value::Bool(true));
        match (expect_valid, result) {
            (true, Ok(msg)) => {
                let want = case.get("id").and_then(Value::as_str).unwrap();
                assert_eq!(msg.id().to_string(), want, "case {i}: id");
                valid += 1;
            }
            (false, Err(_)) => invalid += 1,
            (true, Err(e)) => panic!("case {i}: valid message rejected: {e}"),
            (false, Ok(_)) => panic!(
                "case {i}: invalid message accepted (expected error {:?})",
                case.get("error")
            ),
        }
    }
    assert_eq!((valid, invalid), (27, 99));
}

/// go-ssb legacy: 235 messages of one feed re-encode byte for byte, their ids
/// match and the whole feed chains.
#[test]
fn go_ssb_legacy_reencodes_exactly() {
    let text = read_vector("go-ssb-legacy.jsonl");
    let mut state: Option<FeedState> = None;
    let mut n = 0;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let rec = json::parse(line).unwrap();
        let kvt = rec.get("kvt").unwrap();
        let value = kvt.get("value").unwrap().clone();
        let signed = rec.get("signed_text").and_then(Value::as_js_str).unwrap();
        let unsigned = rec.get("unsigned_text").and_then(Value::as_js_str).unwrap();
        assert_eq!(
            json::to_pretty(&value),
            signed.as_wtf8(),
            "signed text of {n}"
        );
        let mut without_sig = value.as_object().unwrap().clone();
        without_sig.remove("signature");
        assert_eq!(
            json::to_pretty(&Value::Object(without_sig)),
            unsigned.as_wtf8(),
            "unsigned text of {n}"
        );
        let msg = feed::validate(state.as_ref(), None, value)
            .unwrap_or_else(|e| panic!("message {n} rejected: {e}"));
        assert_eq!(
            msg.id().to_string(),
            kvt.get("key").and_then(Value::as_str).unwrap()
        );
        state = Some(msg.state());
        n += 1;
    }
    assert_eq!(n, 235);
}

/// ssb-keys weird.js: the id is over latin1, not UTF-8.
#[test]
fn weird_hash_uses_latin1() {
    let v = json::parse(&read_vector("ssb-keys/weird-hash.json")).unwrap();
    let message = v.get("message").unwrap().clone();
    let u = feed::prepare(message, None).unwrap();
    let msg = feed::verify_one(u, &feed::KeyCache::default()).unwrap();
    assert_eq!(
        msg.id().to_string(),
        v.get("expected_id").and_then(Value::as_str).unwrap()
    );
    assert_ne!(
        msg.id().to_string(),
        v.get("wrong_id_if_utf8").and_then(Value::as_str).unwrap()
    );
}
