//! Messages signed by the real JavaScript stack, with unusual content, are
//! judged by shoal exactly as ssb-validate judges them.
//!
//! - `tests/js/unusual-feed.js` signs a deterministic 300-message feed with
//!   ssb-keys (lone surrogates, every control character, integer-like keys,
//!   odd numbers, deep nesting, texts of exactly 8192 UTF-16 units whose UTF-8
//!   is far longer, 3- and 52-unit types, boxed content, float timestamps),
//!   checked by ssb-validate. shoal must accept every message in order with
//!   the id JavaScript computed, and re-encode every line byte for byte.
//! - The same script makes variants of the next message that ssb-validate
//!   rejects (tampered text, wrong previous, 2-char type, 8193 units,
//!   non-canonical signature base64, bad boxes): shoal must reject them; and
//!   variants it accepts (a previous wrapped in an array, non-number
//!   timestamps after the first message): shoal must accept them.
//! - A real ssb-server publishes unusual content itself (one private message)
//!   and serves its feed with `createHistoryStream`; shoal must validate the
//!   whole chain with the server's ids.
//! - A real ssb-server stores and serves a feed of the odd messages
//!   ssb-validate accepts, taken through its legacy replication sink; shoal
//!   must validate that chain too.

use std::sync::OnceLock;

use shoal::crypto::MsgId;
use shoal::feed::json::{self, Value};
use shoal::feed::{self, FeedState};

use crate::jsenv::{JsPeer, bounded, refpeer, repo_dir, run};

/// Output of `tests/js/unusual-feed.js`, run once per test binary.
fn unusual_feed_output() -> &'static str {
    static OUT: OnceLock<String> = OnceLock::new();
    OUT.get_or_init(|| {
        let kit = refpeer();
        let out = run(
            bounded(60, "node")
                .arg(repo_dir().join("tests/js/unusual-feed.js"))
                .env("SHOAL_REFPEER", kit),
            "tests/js/unusual-feed.js",
        );
        String::from_utf8(out.stdout).expect("the script prints UTF-8")
    })
}

fn str_field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or_else(|| {
        panic!(
            "no string {name} in {}",
            String::from_utf8_lossy(&json::to_compact(v))
        )
    })
}

/// The feed lines (`{key, value, timestamp}`), in order.
fn feed_lines() -> Vec<&'static str> {
    unusual_feed_output()
        .lines()
        .filter(|l| !l.starts_with("{\"case\""))
        .collect()
}

/// A variant of the message after the feed's last one.
struct Case {
    name: String,
    valid: bool,
    state: Option<FeedState>,
    key: String,
    value: Value,
}

fn cases() -> Vec<Case> {
    unusual_feed_output()
        .lines()
        .filter(|l| l.starts_with("{\"case\""))
        .map(|l| {
            let c = json::parse(l.as_bytes()).unwrap();
            let state = match c.get("state") {
                Some(s @ Value::Object(_)) => Some(FeedState {
                    sequence: s.get("sequence").and_then(Value::as_f64).unwrap() as u64,
                    id: MsgId::parse(str_field(s, "id")).unwrap(),
                }),
                _ => None,
            };
            Case {
                name: str_field(&c, "case").to_string(),
                valid: c.get("valid") == Some(&Value::Bool(true)),
                state,
                key: str_field(&c, "key").to_string(),
                value: c.get("value").unwrap().clone(),
            }
        })
        .collect()
}

/// Validates `{key, value, ...}` lines as one feed, in order: every message
/// must be valid, chain on the previous one and have the id given as `key`.
/// Returns the values.
fn validate_feed(lines: &[&str], what: &str) -> Vec<Value> {
    let mut state: Option<FeedState> = None;
    let mut values = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let kvt = json::parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("{what} line {}: not JSON to shoal: {e}", i + 1));
        assert_eq!(
            String::from_utf8_lossy(&json::to_compact(&kvt)),
            *line,
            "{what} line {}: shoal re-encodes it differently",
            i + 1
        );
        let key = str_field(&kvt, "key");
        let value = kvt.get("value").unwrap().clone();
        let msg = feed::validate(state.as_ref(), None, value.clone())
            .unwrap_or_else(|e| panic!("{what} message {} ({key}) rejected by shoal: {e}", i + 1));
        assert_eq!(msg.id().to_string(), key, "{what} message {}: id", i + 1);
        state = Some(msg.state());
        values.push(value);
    }
    values
}

#[test]
fn js_signed_unusual_feed_is_valid_with_the_same_ids() {
    let lines = feed_lines();
    assert_eq!(lines.len(), 300, "feed length");
    let values = validate_feed(&lines, "unusual feed");

    // The feed covers what it claims to.
    let signed: Vec<Vec<u8>> = values.iter().map(json::to_pretty).collect();
    let units: Vec<usize> = signed.iter().map(|s| json::utf16_len_wtf8(s)).collect();
    let at_limit = units.iter().filter(|&&u| u == 8192).count();
    let big_bytes = signed
        .iter()
        .zip(&units)
        .filter(|(s, u)| **u > 8000 && s.len() > 16000)
        .count();
    let boxed = values
        .iter()
        .filter(|v| matches!(v.get("content"), Some(Value::String(_))))
        .count();
    let float_ts = values
        .iter()
        .filter(|v| {
            v.get("timestamp")
                .and_then(Value::as_f64)
                .is_some_and(|t| t.fract() != 0.0)
        })
        .count();
    assert!(at_limit >= 5, "{at_limit} messages of exactly 8192 units");
    assert!(
        big_bytes >= 5,
        "{big_bytes} near-limit messages over 16000 UTF-8 bytes"
    );
    assert!(boxed >= 20, "{boxed} boxed messages");
    assert!(float_ts >= 200, "{float_ts} float timestamps");
}

#[test]
fn what_ssb_validate_rejects_shoal_rejects() {
    let cases: Vec<Case> = cases().into_iter().filter(|c| !c.valid).collect();
    assert!(cases.len() >= 15, "{} rejected variants", cases.len());
    let accepted: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            feed::validate(c.state.as_ref(), None, c.value.clone())
                .ok()
                .map(|m| format!("{} (accepted as {})", c.name, m.id()))
        })
        .collect();
    assert!(
        accepted.is_empty(),
        "shoal accepts messages ssb-validate rejects:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn what_ssb_validate_accepts_shoal_accepts() {
    let cases: Vec<Case> = cases().into_iter().filter(|c| c.valid).collect();
    assert!(cases.len() >= 8, "{} accepted variants", cases.len());
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(
            |c| match feed::validate(c.state.as_ref(), None, c.value.clone()) {
                Ok(m) if m.id().to_string() == c.key => None,
                Ok(m) => Some(format!(
                    "{}: id {} but JavaScript says {}",
                    c.name,
                    m.id(),
                    c.key
                )),
                Err(e) => Some(format!(
                    "{}: rejected ({e}); message {}",
                    c.name,
                    String::from_utf8_lossy(&json::to_compact(&c.value))
                )),
            },
        )
        .collect();
    assert!(
        wrong.is_empty(),
        "shoal disagrees with ssb-validate on messages it accepts:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn real_ssb_server_feed_with_unusual_content_validates() {
    let peer = JsPeer::start("unusual", 300);
    let published = run(
        &mut peer.node(&repo_dir().join("tests/js/publish-unusual.js"), 120),
        "tests/js/publish-unusual.js",
    );
    let published = String::from_utf8(published.stdout).unwrap();
    let published: Vec<Value> = published
        .lines()
        .map(|l| json::parse(l.as_bytes()).unwrap())
        .collect();
    assert!(
        published.len() >= 45,
        "{} messages published",
        published.len()
    );

    let text = peer.dump(None, true);
    let lines: Vec<&str> = text.lines().collect();
    let values = validate_feed(&lines, "ssb-server feed");
    assert_eq!(
        values.len(),
        published.len(),
        "the feed holds what was published"
    );

    // Each message is the one published, with its content as sent.
    for (i, (value, sent)) in values.iter().zip(&published).enumerate() {
        let key = str_field(&json::parse(lines[i].as_bytes()).unwrap(), "key").to_string();
        assert_eq!(key, str_field(sent, "key"), "message {}", i + 1);
        let content = value.get("content").unwrap();
        if sent.get("private") == Some(&Value::Bool(true)) {
            let boxed = content.as_str().expect("private content is a string");
            assert!(boxed.ends_with(".box"), "private content {boxed}");
        } else {
            assert_eq!(
                String::from_utf8_lossy(&json::to_compact(content)),
                String::from_utf8_lossy(&json::to_compact(sent.get("content").unwrap())),
                "content of message {}",
                i + 1
            );
        }
    }
}

/// A real ssb-server stores and serves a feed of odd messages that
/// ssb-validate accepts (previous wrapped in one or two arrays, timestamps
/// that are not numbers after the first message) when they come through the
/// sink its legacy replication writes into. A peer replicating that feed from
/// it must accept every message, with the server's ids.
#[test]
fn odd_feed_a_real_ssb_server_serves_is_valid() {
    let peer = JsPeer::start("odd", 300);
    let signed = run(
        bounded(60, "node")
            .arg(repo_dir().join("tests/js/unusual-feed.js"))
            .arg("--quirk-feed")
            .env("SHOAL_REFPEER", &peer.kit),
        "tests/js/unusual-feed.js --quirk-feed",
    );
    let signed = String::from_utf8(signed.stdout).unwrap();
    let file = peer.home.path().join("odd.ndjson");
    std::fs::write(&file, &signed).unwrap();
    run(
        peer.node(&repo_dir().join("tests/js/write-stream.js"), 60)
            .arg(&file),
        "tests/js/write-stream.js",
    );

    let first = json::parse(signed.lines().next().unwrap().as_bytes()).unwrap();
    let author = str_field(first.get("value").unwrap(), "author").to_string();
    let served = peer.dump(Some(&author), true);
    let lines: Vec<&str> = served.lines().collect();
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| str_field(&json::parse(l.as_bytes()).unwrap(), "key").to_string())
            .collect()
    };
    assert_eq!(
        keys(&served),
        keys(&signed),
        "the server serves the feed it was given"
    );
    validate_feed(&lines, "odd feed served by ssb-server");
}
