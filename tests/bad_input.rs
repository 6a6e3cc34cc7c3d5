//! `shoal import` stays correct on hostile input, and a broken identity or
//! configuration stops every command with one clear line.
//!
//! - One file mixes valid messages of several feeds (plain values,
//!   `{key, value, timestamp}` wrappers, a CRLF line, a duplicate, a last
//!   line without newline) with garbage: non-JSON, JSON of the wrong types,
//!   invalid UTF-8, a line over 1 MiB, a message over 8192 UTF-16 units, a bad
//!   signature, a wrapper whose key is not the id, a fork, and a feed whose
//!   message 3 is bad (4 and 5 depend on it). Exactly the bad lines are
//!   rejected, with reasons; the summary counts right; the exit code is 1;
//!   every valid message of the other feeds is stored byte for byte; nothing
//!   of a rejected message is; the fork is recorded in the store.
//! - Whatever makes message 3 of a feed bad, the rejections of 4 and 5 name
//!   line 3 as what they depend on.
//! - A secret file others can read, a corrupt secret file and a malformed
//!   `config.toml` make commands fail with exit 1 and one line on stderr.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use shoal::crypto::MsgId;
use shoal::feed::json::{self, Object, Value};
use shoal::feed::{self, FeedState};
use shoal::store::Store;

use crate::cli::{
    Out, init_home, make_feed, msg_id, next_msg, ok, one_line_error, post, shoal, write_lines,
    write_secret,
};
use crate::common::test_key;

/// What must become of one line.
enum Expect {
    /// Stored: this message.
    Stored(Value),
    /// Already in the store (not a rejection).
    Duplicate,
    /// Blank: skipped, but counted in line numbers.
    Blank,
    /// Rejected with a reason containing the text; the message, when the
    /// line holds one, must not be in the store.
    Rejected(String, Option<Value>),
}

fn rejected(reason: &str) -> Expect {
    Expect::Rejected(reason.to_string(), None)
}

fn rejected_msg(reason: &str, v: &Value) -> Expect {
    Expect::Rejected(reason.to_string(), Some(v.clone()))
}

/// `{key, value, timestamp}` with the message's own id.
fn wrapped(v: &Value) -> Vec<u8> {
    wrapped_as(&msg_id(v).to_string(), v)
}

fn wrapped_as(key: &str, v: &Value) -> Vec<u8> {
    let mut o = Object::new();
    o.insert("key", Value::from(key));
    o.insert("value", v.clone());
    o.insert("timestamp", Value::Number(1_700_000_000_123.25));
    json::to_compact(&Value::Object(o))
}

fn compact(v: &Value) -> Vec<u8> {
    json::to_compact(v)
}

/// Replaces the text of a signed post: its signature no longer verifies.
fn tampered(v: &Value) -> Value {
    let mut o = v.as_object().unwrap().clone();
    let mut content = o.get("content").unwrap().as_object().unwrap().clone();
    content.insert("text", Value::from("tampered"));
    o.insert("content", Value::Object(content));
    Value::Object(o)
}

/// Runs `shoal import FILE` and returns its output and the rejections by
/// line number, checking that stderr holds nothing but rejection lines.
fn import(home: &Path, file: &Path) -> (Out, BTreeMap<u64, String>) {
    let out = shoal(home, [OsStr::new("import"), file.as_ref()]);
    let mut rejections = BTreeMap::new();
    for line in out.stderr.lines() {
        let rest = line
            .strip_prefix("rejected line ")
            .unwrap_or_else(|| panic!("not a rejection line on stderr: {line}"));
        let (n, reason) = rest
            .split_once(": ")
            .unwrap_or_else(|| panic!("rejection without a reason: {line}"));
        let n: u64 = n
            .parse()
            .unwrap_or_else(|_| panic!("bad line number: {line}"));
        assert!(
            rejections.insert(n, reason.to_string()).is_none(),
            "line {n} rejected twice"
        );
    }
    (out, rejections)
}

#[test]
fn import_of_mixed_garbage_rejects_exactly_the_bad_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let home = init_home(tmp.path(), "h", &test_key(60));

    let a = make_feed(&test_key(61), 5, "a");
    let b = make_feed(&test_key(62), 5, "b");
    let c = make_feed(&test_key(63), 3, "c");
    let d = make_feed(&test_key(64), 1, "d");
    let f = make_feed(&test_key(66), 3, "f");
    let g = make_feed(&test_key(67), 1, "g");
    let v = |feed: &[(Value, FeedState)], seq: usize| feed[seq - 1].0.clone();

    // Feed B: message 3 tampered after signing; 4 and 5 chain on the real 3.
    let b3_bad = tampered(&v(&b, 3));
    // Feed C: a different, validly signed message at sequence 2.
    let c2_fork = next_msg(&test_key(63), Some(&c[0].1), post("the other c 2"));
    assert!(feed::validate(Some(&c[0].1), None, c2_fork.clone()).is_ok());
    // Feed E: one message over 8192 UTF-16 units (signed all the same).
    let e1_big = next_msg(&test_key(65), None, post(&"x".repeat(8200)));
    // A copy of A5 with an invalid UTF-8 byte inside a string.
    let mut a5_broken = compact(&v(&a, 5));
    let at = a5_broken.windows(4).position(|w| w == b"a 5 ").unwrap();
    a5_broken[at + 1] = 0xFF;
    let mut oversize = b"{\"type\":\"post\",\"text\":\"".to_vec();
    oversize.resize(oversize.len() + (1 << 20) + 1000, b'z');
    oversize.extend_from_slice(b"\"}");
    let mut crlf = compact(&v(&a, 4));
    crlf.push(b'\r');

    let lines: Vec<(Vec<u8>, Expect)> = vec![
        (compact(&v(&a, 1)), Expect::Stored(v(&a, 1))),
        (b"this is not json".to_vec(), rejected("not JSON")),
        (wrapped(&v(&b, 1)), Expect::Stored(v(&b, 1))),
        (b"".to_vec(), Expect::Blank),
        (b"42".to_vec(), rejected("must be an object, got number")),
        (compact(&v(&a, 2)), Expect::Stored(v(&a, 2))),
        (
            b"[1,2,3]".to_vec(),
            rejected("must be an object, got array"),
        ),
        (compact(&v(&b, 2)), Expect::Stored(v(&b, 2))),
        (
            b"\"a string\"".to_vec(),
            rejected("must be an object, got string"),
        ),
        (wrapped(&v(&c, 1)), Expect::Stored(v(&c, 1))),
        (b"\xff\xfe garbage \xc3".to_vec(), rejected("invalid UTF-8")),
        (
            compact(&b3_bad),
            rejected_msg("signature does not verify", &b3_bad),
        ),
        (compact(&v(&a, 3)), Expect::Stored(v(&a, 3))),
        (oversize, rejected("longer than")),
        (
            compact(&v(&b, 4)),
            rejected_msg("depends on rejected line 12", &v(&b, 4)),
        ),
        (wrapped(&v(&c, 2)), Expect::Stored(v(&c, 2))),
        (b"   \t ".to_vec(), Expect::Blank),
        (
            compact(&e1_big),
            rejected_msg("over the limit of 8192", &e1_big),
        ),
        (wrapped(&v(&c, 3)), Expect::Stored(v(&c, 3))),
        (
            compact(&v(&b, 5)),
            rejected_msg("depends on rejected line 12", &v(&b, 5)),
        ),
        (
            wrapped_as(&msg_id(&v(&c, 1)).to_string(), &v(&d, 1)),
            rejected_msg("does not match the message id", &v(&d, 1)),
        ),
        (crlf, Expect::Stored(v(&a, 4))),
        (compact(&c2_fork), rejected_msg("fork", &c2_fork)),
        (b"null".to_vec(), rejected("must be an object, got null")),
        (b"{\"previous\":".to_vec(), rejected("not JSON")),
        (b"{}".to_vec(), rejected("fields must be exactly")),
        (compact(&v(&a, 2)), Expect::Duplicate),
        (a5_broken, rejected("invalid UTF-8")),
        (compact(&v(&a, 5)), Expect::Stored(v(&a, 5))),
        (b"true".to_vec(), rejected("must be an object, got boolean")),
        (
            b"{\"key\":\"%x\",\"value\":42,\"timestamp\":1}".to_vec(),
            rejected("must be an object, got number"),
        ),
        (
            [
                b"{\"key\":5,\"value\":".as_slice(),
                &compact(&v(&f, 1)),
                b"}",
            ]
            .concat(),
            rejected("\"key\" must be a message id string"),
        ),
        (compact(&v(&f, 1)), Expect::Stored(v(&f, 1))),
        (wrapped(&v(&f, 2)), Expect::Stored(v(&f, 2))),
        (compact(&v(&f, 3)), Expect::Stored(v(&f, 3))),
        (compact(&v(&g, 1)), Expect::Stored(v(&g, 1))),
    ];
    let file = tmp.path().join("mixed.ndjson");
    let mut text: Vec<u8> = Vec::new();
    for (i, (l, _)) in lines.iter().enumerate() {
        text.extend_from_slice(l);
        if i + 1 < lines.len() {
            text.push(b'\n'); // the last line has no newline
        }
    }
    std::fs::write(&file, text).unwrap();

    let (out, rejections) = import(&home, &file);
    let line_no = |i: usize| i as u64 + 1;
    let want_rejected: Vec<u64> = lines
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| matches!(e, Expect::Rejected(..)))
        .map(|(i, _)| line_no(i))
        .collect();
    let stored: Vec<&Value> = lines
        .iter()
        .filter_map(|(_, e)| match e {
            Expect::Stored(v) => Some(v),
            _ => None,
        })
        .collect();
    let got_rejected: Vec<u64> = rejections.keys().copied().collect();
    assert_eq!(
        got_rejected, want_rejected,
        "rejected lines; stderr:\n{}",
        out.stderr
    );
    assert_eq!(
        out.text(),
        format!(
            "imported {}, rejected {}, already present 1\n",
            stored.len(),
            want_rejected.len()
        ),
        "summary"
    );
    assert_eq!(out.code, 1, "exit code");

    // The store, now that the process is gone.
    let store = Store::open(&home.join("store.redb")).unwrap();
    for v in &stored {
        let id = msg_id(v);
        let m = store
            .get(&id)
            .unwrap()
            .unwrap_or_else(|| panic!("valid message {id} was not stored"));
        assert_eq!(m.json, compact(v), "{id} stored byte for byte");
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.messages, stored.len() as u64, "nothing else stored");
    assert_eq!(stats.feeds, 5, "feeds A, B, C, F, G");
    assert_eq!(
        store.latest(&test_key(62).id()).unwrap(),
        Some(b[1].1),
        "feed B ends at 2"
    );
    assert_eq!(store.latest(&test_key(64).id()).unwrap(), None, "feed D");
    assert_eq!(store.latest(&test_key(65).id()).unwrap(), None, "feed E");
    assert_eq!(
        store.forks().unwrap(),
        vec![(test_key(63).id(), 2, compact(&c2_fork))],
        "the fork is recorded"
    );
    let mut gone = Vec::new();
    for (_, e) in &lines {
        if let Expect::Rejected(_, Some(v)) = e {
            let id = msg_id(v);
            assert!(store.get(&id).unwrap().is_none(), "rejected {id} is stored");
            gone.push(id);
        }
    }
    drop(store);
    for id in gone {
        let err = one_line_error(&shoal(&home, ["get", &id.to_string()]), 1);
        assert!(err.contains("not in the store"), "{err}");
    }

    // The reasons, last: each names what is wrong.
    let mut wrong = Vec::new();
    for (i, (_, e)) in lines.iter().enumerate() {
        if let Expect::Rejected(want, _) = e {
            let got = &rejections[&line_no(i)];
            if !got.contains(want.as_str()) {
                wrong.push(format!(
                    "line {}: {got:?} does not say {want:?}",
                    line_no(i)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "rejection reasons:\n{}", wrong.join("\n"));
}

#[test]
fn dependents_of_a_rejected_message_name_it() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = test_key(70);
    let good = make_feed(&keys, 5, "dep");
    let line = |v: &Value| compact(v);
    // Message 3 made bad in each way a line can be bad while still naming its
    // feed; messages 4 and 5 chain on the good message 3.
    let wrong_previous = next_msg(
        &keys,
        Some(&FeedState {
            sequence: 2,
            id: MsgId([1; 32]),
        }),
        post("wrong previous"),
    );
    let mut short_type = Object::new();
    short_type.insert("type", Value::from("x"));
    let short_type = next_msg(&keys, Some(&good[1].1), Value::Object(short_type));
    let too_large = next_msg(&keys, Some(&good[1].1), post(&"y".repeat(8300)));
    let bad_sig = tampered(&good[2].0);
    let kinds: Vec<(&str, Vec<u8>)> = vec![
        ("a previous that is not message 2", line(&wrong_previous)),
        ("a bad signature", line(&bad_sig)),
        (
            "a key that is not its id",
            wrapped_as(&msg_id(&good[0].0).to_string(), &good[2].0),
        ),
        ("a content type of one character", line(&short_type)),
        ("a message over 8192 UTF-16 units", line(&too_large)),
    ];
    let mut wrong = Vec::new();
    for (n, (kind, bad)) in kinds.into_iter().enumerate() {
        let home = init_home(tmp.path(), &format!("h{n}"), &test_key(71));
        let file = tmp.path().join(format!("dep{n}.ndjson"));
        let lines = vec![
            line(&good[0].0),
            line(&good[1].0),
            bad,
            line(&good[3].0),
            line(&good[4].0),
        ];
        write_lines(&file, &lines);
        let (out, rejections) = import(&home, &file);
        assert_eq!(out.code, 1, "{kind}");
        assert_eq!(out.text(), "imported 2, rejected 3\n", "{kind}");
        assert_eq!(
            rejections.keys().copied().collect::<Vec<_>>(),
            [3, 4, 5],
            "{kind}"
        );
        for n in [4, 5] {
            let reason = &rejections[&n];
            if !reason.contains("depends on rejected line 3") {
                wrong.push(format!("message 3 with {kind}: line {n} says {reason:?}"));
            }
        }
        let log = ok(&home, ["log", "--author", &keys.id().to_string()]);
        assert_eq!(log.lines().len(), 2, "{kind}");
    }
    assert!(
        wrong.is_empty(),
        "rejections that do not name the message they depend on:\n{}",
        wrong.join("\n")
    );
}

/// Commands that need the identity, with what they need to run.
fn commands(dir: &Path) -> Vec<Vec<String>> {
    let file = dir.join("one.ndjson");
    write_lines(&file, &[compact(&make_feed(&test_key(72), 1, "x")[0].0)]);
    let file = file.to_str().unwrap().to_string();
    [
        vec!["whoami"],
        vec!["log"],
        vec!["post", "should not be published"],
        vec!["publish", r#"{"type":"post","text":"nor this"}"#],
        vec!["get", &MsgId([3; 32]).to_string()],
        vec!["import", &file],
        vec!["export"],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect()
}

/// Every command fails with exit 1 and one line containing `needle`.
fn all_fail(home: &Path, dir: &Path, needle: &str, what: &str) {
    for cmd in commands(dir) {
        let err = one_line_error(&shoal(home, &cmd), 1);
        assert!(
            err.contains(needle),
            "{what}: `shoal {}` says {err:?}, which does not mention {needle:?}",
            cmd.join(" ")
        );
    }
}

#[test]
fn a_secret_file_others_can_read_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = init_home(tmp.path(), "h", &test_key(73));
    let secret = home.join("secret");
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o611] {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
        all_fail(
            &home,
            tmp.path(),
            "chmod 600",
            &format!("secret mode {mode:o}"),
        );
    }
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(
        ok(&home, ["log"]).stdout.is_empty(),
        "nothing was published or imported"
    );
    assert_eq!(
        ok(&home, ["whoami"]).text(),
        format!("{}\n", test_key(73).id())
    );

    // `init --secret` with such a file: refused, and no home is made.
    let file = write_secret(tmp.path(), "open.secret", &test_key(74));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fresh = tmp.path().join("fresh");
    let err = one_line_error(
        &shoal(
            &fresh,
            [OsStr::new("init"), "--secret".as_ref(), file.as_ref()],
        ),
        1,
    );
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!fresh.exists(), "a home was made");
}

/// The ssb-keys text with the string value of one field replaced.
fn with_field(text: &str, name: &str, value: &str) -> Vec<u8> {
    let start = text.find(&format!("\"{name}\": \"")).unwrap() + name.len() + 5;
    let end = start + text[start..].find('"').unwrap();
    format!("{}{value}{}", &text[..start], &text[end..]).into_bytes()
}

/// ssb-keys texts that are not a usable secret.
fn corrupt_secrets() -> Vec<(&'static str, Vec<u8>)> {
    let good = shoal::crypto::secret::format_secret(&test_key(75));
    let other = test_key(76).id();
    let half = good.find("\"private\"").unwrap() + 30;
    vec![
        ("empty", b"".to_vec()),
        ("only comments", b"# nothing here\n#\n".to_vec()),
        ("truncated JSON", good.as_bytes()[..half].to_vec()),
        ("not JSON", b"{curve: ed25519}".to_vec()),
        ("invalid UTF-8", b"{\"curve\":\"ed25519\",\xff}".to_vec()),
        ("a JSON array", b"[1,2,3]".to_vec()),
        (
            "no private key",
            b"{\"curve\":\"ed25519\",\"public\":\"x\"}".to_vec(),
        ),
        (
            "a short private key",
            with_field(&good, "private", "AAAA.ed25519"),
        ),
        (
            "a private key that is not base64",
            with_field(&good, "private", "%%%%.ed25519"),
        ),
        (
            "another feed's public key",
            with_field(&good, "public", &format!("{}.ed25519", other.b64())),
        ),
        (
            "another feed's id",
            with_field(&good, "id", &other.to_string()),
        ),
        ("another curve", with_field(&good, "curve", "k256")),
    ]
}

#[test]
fn a_corrupt_secret_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = init_home(tmp.path(), "h", &test_key(75));
    let secret = home.join("secret");
    let good = std::fs::read(&secret).unwrap();
    for (what, text) in corrupt_secrets() {
        assert_ne!(text, good, "{what}");
        std::fs::write(&secret, &text).unwrap();
        all_fail(&home, tmp.path(), "secret", what);

        let file = tmp.path().join("corrupt.secret");
        std::fs::write(&file, &text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let fresh = tmp.path().join("fresh");
        let err = one_line_error(
            &shoal(
                &fresh,
                [OsStr::new("init"), "--secret".as_ref(), file.as_ref()],
            ),
            1,
        );
        assert!(err.contains("secret"), "init --secret with {what}: {err}");
        assert!(!fresh.exists(), "init --secret with {what} made a home");
    }
    std::fs::write(&secret, &good).unwrap();
    assert!(
        ok(&home, ["log"]).stdout.is_empty(),
        "nothing was published or imported"
    );
}

#[test]
fn a_malformed_config_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = init_home(tmp.path(), "h", &test_key(77));
    let config = home.join("config.toml");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unclosed array", b"listen = [\n".to_vec()),
        ("not TOML", b"this is not toml\n".to_vec()),
        (
            "an unknown setting",
            b"listne = \"127.0.0.1:8008\"\n".to_vec(),
        ),
        ("a string for a number", b"hops = \"two\"\n".to_vec()),
        ("a number out of range", b"hops = 300\n".to_vec()),
        ("a bad sign-cap", b"sign_cap = \"not base64\"\n".to_vec()),
        ("a duplicate key", b"hops = 1\nhops = 2\n".to_vec()),
        ("invalid UTF-8", b"listen = \"\xff\"\n".to_vec()),
    ];
    for (what, text) in cases {
        std::fs::write(&config, &text).unwrap();
        all_fail(&home, tmp.path(), "config.toml", what);
    }
    std::fs::remove_file(&config).unwrap();
    assert!(
        ok(&home, ["log"]).stdout.is_empty(),
        "nothing was published or imported"
    );
}
