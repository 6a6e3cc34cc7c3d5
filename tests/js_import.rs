//! A feed dumped from the real JavaScript peer imports completely, through
//! the `shoal` command line, with identical ids and values.
//!
//! One refpeer ssb-server is started for the whole file; it publishes the
//! unusual messages of `tests/js/publish-unusual.js` (lone surrogates,
//! control characters, integer-like keys, odd numbers, deep nesting, a
//! private message, one just under the size limit) and serves its feed with
//! the kit's `scripts/dump.js`, once as `{key, value, timestamp}` lines and
//! once as bare values. `shoal import` of either into a fresh home must
//! accept every line, and `shoal log --author` / `shoal get` must list the
//! same keys in the same order with values byte-identical to what the
//! JavaScript peer served.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::OnceLock;

use shoal::crypto::FeedId;
use shoal::feed::json::Value;

use crate::cli::{LogLine, check_feed_output, init_home, ok, parse_log_line};
use crate::common::test_key;
use crate::jsenv::{JsPeer, repo_dir, run};

/// What the JavaScript peer served.
struct Dump {
    /// `{key, value, timestamp}` lines.
    keyed: String,
    /// Bare value lines.
    values: String,
    /// Messages `publish-unusual.js` reported.
    published: usize,
}

/// Starts one server, publishes, dumps twice, stops it: once per test run.
fn js_dump() -> &'static Dump {
    static DUMP: OnceLock<Dump> = OnceLock::new();
    DUMP.get_or_init(|| {
        let peer = JsPeer::start("jsimport", 120);
        let published = run(
            &mut peer.node(&repo_dir().join("tests/js/publish-unusual.js"), 60),
            "tests/js/publish-unusual.js",
        );
        let published = String::from_utf8(published.stdout).unwrap().lines().count();
        let dump = Dump {
            keyed: peer.dump(None, true),
            values: peer.dump(None, false),
            published,
        };
        drop(peer);
        dump
    })
}

/// The dump's lines, split, and the feed's author.
fn dumped() -> (Vec<LogLine>, FeedId) {
    let d = js_dump();
    let lines: Vec<LogLine> = d
        .keyed
        .lines()
        .map(|l| parse_log_line(l.as_bytes()))
        .collect();
    assert!(
        lines.len() >= 45 && lines.len() == d.published,
        "{} messages dumped, {} published",
        lines.len(),
        d.published
    );
    let author = lines[0]
        .value
        .get("author")
        .and_then(Value::as_str)
        .unwrap();
    let author = FeedId::parse(author).unwrap();
    assert!(
        lines
            .iter()
            .all(|l| l.value.get("author").and_then(Value::as_str) == Some(&author.to_string())),
        "one feed"
    );
    (lines, author)
}

/// `log --author` in `home` lists exactly the dumped messages: same keys in
/// the same order, values byte for byte.
fn assert_same_feed(home: &Path, dump: &[LogLine], author: &FeedId) {
    let log = ok(home, ["log", "--author", &author.to_string()]);
    let lines = check_feed_output(&log.stdout, author);
    let keys = |ls: &[LogLine]| ls.iter().map(|l| l.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&lines), keys(dump), "keys, in feed order");
    for (i, (ours, theirs)) in lines.iter().zip(dump).enumerate() {
        assert!(
            ours.value_raw == theirs.value_raw,
            "message {} ({}): shoal prints\n{}\nthe JavaScript peer served\n{}",
            i + 1,
            ours.key,
            String::from_utf8_lossy(&ours.value_raw),
            String::from_utf8_lossy(&theirs.value_raw)
        );
    }
}

#[test]
fn js_peer_dump_imports_completely_with_identical_ids() {
    let (dump, author) = dumped();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("out.ndjson");
    std::fs::write(&file, &js_dump().keyed).unwrap();
    let home = init_home(tmp.path(), "h", &test_key(80));
    let out = ok(&home, [OsStr::new("import"), file.as_ref()]);
    assert_eq!(out.text(), format!("imported {}, rejected 0\n", dump.len()));
    assert_same_feed(&home, &dump, &author);

    // `get` of each key prints the same value; `export` the same feed.
    for theirs in &dump {
        let got = ok(&home, ["get", &theirs.key]);
        let line = parse_log_line(got.stdout.strip_suffix(b"\n").unwrap());
        assert_eq!(line.key, theirs.key);
        assert!(line.value_raw == theirs.value_raw, "get {}", theirs.key);
    }
    let export = ok(&home, ["export", "--author", &author.to_string()]);
    let exported: Vec<LogLine> = export
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(parse_log_line)
        .collect();
    assert_eq!(exported.len(), dump.len());
    assert!(
        exported
            .iter()
            .zip(&dump)
            .all(|(a, b)| a.key == b.key && a.value_raw == b.value_raw),
        "export lists the dumped messages"
    );
}

#[test]
fn js_peer_bare_values_import_to_the_same_ids() {
    let (dump, author) = dumped();
    let values = &js_dump().values;
    // The bare values are the dumped values, byte for byte.
    let bare: Vec<&str> = values.lines().collect();
    assert_eq!(bare.len(), dump.len());
    for (b, d) in bare.iter().zip(&dump) {
        assert!(b.as_bytes() == d.value_raw, "bare value of {}", d.key);
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("values.ndjson");
    std::fs::write(&file, values).unwrap();
    let home = init_home(tmp.path(), "h", &test_key(81));
    let out = ok(&home, [OsStr::new("import"), file.as_ref()]);
    assert_eq!(out.text(), format!("imported {}, rejected 0\n", dump.len()));
    assert_same_feed(&home, &dump, &author);

    // The keyed dump now finds every message present.
    let keyed = tmp.path().join("keyed.ndjson");
    std::fs::write(&keyed, &js_dump().keyed).unwrap();
    let again = ok(&home, [OsStr::new("import"), keyed.as_ref()]);
    assert_eq!(
        again.text(),
        format!("imported 0, rejected 0, already present {}\n", dump.len())
    );
}
