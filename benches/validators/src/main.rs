//! `shoal-validators DUMP`: the validation-only rates (no storage) of the
//! Rust crates `ssb-validate` and `ssb-verify-signatures` on a dump of
//! `{key, value, timestamp}` JSON lines, for `cargo bench --bench import`.
//!
//! The file is read into memory and split into lines once, before any
//! timing; each measure is then the best of 3 runs on every core (rayon's
//! default pool), and prints one JSON line `{"name", "label", "count",
//! "ms"}`. What each timing includes:
//!
//! - `ssb-validate`: `par_validate_message_hash_chain_of_feed` on each
//!   author's messages (in dump order), the authors in parallel too. Per
//!   message: its JSON parsed three times (as a message, as a generic value,
//!   and again as the next message's previous), field order, shape, `hash`,
//!   sequence, author and previous checked against the message before, the
//!   value re-encoded and hashed with SHA-256 and the hash compared with
//!   `key`. Not timed: grouping the lines by author (one `serde_json` parse
//!   of each line, done once beforehand). No signature is checked.
//! - `ssb-validate-multi-author`: `par_validate_multi_author_message_hash_chain_of_feed`
//!   over all lines: the same per-message checks but no previous, sequence
//!   or author check (it validates no chain), so less work.
//! - `ssb-verify-signatures`: `par_verify_messages(lines, None)`, i.e. its
//!   default chunk of 50 messages per `ed25519_dalek::verify_batch`: JSON
//!   parsed twice, the value re-encoded without its signature, author and
//!   signature decoded from base64, batch verification. No hash, chain or
//!   shape check. (Version 1.1.1 silently skips every message after the
//!   50th of a chunk when given a larger chunk size, so none is passed.)
//! - `ssb-validate+ssb-verify-signatures`: both of the above in turn (the
//!   per-feed chains, then the signatures): what the two crates need to
//!   check everything a peer checks when it takes in a feed.
//!
//! Before timing, a copy of the dump with one signature byte changed must
//! be refused by both crates (by `ssb-verify-signatures` for its signature,
//! by `ssb-validate` because `key` is no longer the hash of the value), so
//! the rates are of real work.

use std::collections::HashMap;
use std::time::Instant;

use rayon::prelude::*;
use ssb_validate::message::{
    par_validate_message_hash_chain_of_feed, par_validate_multi_author_message_hash_chain_of_feed,
};
use ssb_verify_signatures::par_verify_messages;

/// Runs per measure; the fastest is reported.
const RUNS: usize = 3;

/// The dump's lines grouped by author, each feed in dump order.
fn feeds<'a>(lines: &[&'a [u8]]) -> Vec<Vec<&'a [u8]>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut feeds: Vec<Vec<&[u8]>> = Vec::new();
    for line in lines {
        let v: serde_json::Value = serde_json::from_slice(line).expect("a JSON line");
        let author = v["value"]["author"]
            .as_str()
            .expect("an author")
            .to_string();
        let i = *index.entry(author).or_insert_with(|| {
            feeds.push(Vec::new());
            feeds.len() - 1
        });
        feeds[i].push(line);
    }
    feeds
}

/// Every feed's hash chain, the feeds in parallel.
fn validate_chains(feeds: &[Vec<&[u8]>]) -> bool {
    feeds
        .par_iter()
        .all(|f| par_validate_message_hash_chain_of_feed::<_, &[u8]>(f, None).is_ok())
}

/// Every message's signature, with the crate's default chunk size.
fn verify_signatures(lines: &[&[u8]]) -> bool {
    par_verify_messages(lines, None).is_ok()
}

/// A copy of `line` whose signature has its 16th byte changed: the 21st
/// base64 character starts a group of four, so it holds the top 6 bits of
/// byte 15 only, and the signature stays well-formed base64.
fn tamper(line: &[u8]) -> Vec<u8> {
    const FIELD: &[u8] = b"\"signature\":\"";
    let at = line
        .windows(FIELD.len())
        .position(|w| w == FIELD)
        .expect("a signature")
        + FIELD.len()
        + 20;
    let mut out = line.to_vec();
    out[at] = if out[at] == b'A' { b'B' } else { b'A' };
    out
}

/// The fastest of [`RUNS`] runs of `f`, in milliseconds; each must succeed.
fn best_ms(name: &str, mut f: impl FnMut() -> bool) -> f64 {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            assert!(f(), "{name} refused the dump");
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let path = std::env::args_os()
        .nth(1)
        .expect("usage: shoal-validators DUMP.jsonl");
    let text = std::fs::read(&path).expect("read the dump");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let n = lines.len();
    let by_author = feeds(&lines);

    // The message changed is past the 50th of its chunk for any
    // power-of-two chunk size of 64 or more (its index is 63 mod 64).
    let bad = (n / 2) | 63;
    assert!(bad < n, "the dump is too small to tamper with");
    let changed = tamper(lines[bad]);
    let mut tampered = lines.clone();
    tampered[bad] = &changed;
    assert!(
        !verify_signatures(&tampered),
        "ssb-verify-signatures accepted a changed signature"
    );
    assert!(
        !validate_chains(&feeds(&tampered)),
        "ssb-validate accepted a message whose key is not its hash"
    );

    let report = |name: &str, label: &str, ms: f64| {
        println!(
            "{}",
            serde_json::json!({"name": name, "label": label, "count": n, "ms": ms})
        );
    };
    report(
        "ssb-validate",
        "ssb-validate 1.4.2 (Rust), each author's hash chain, authors in parallel",
        best_ms("ssb-validate", || validate_chains(&by_author)),
    );
    report(
        "ssb-validate-multi-author",
        "ssb-validate 1.4.2 (Rust), multi-author (no chain checks)",
        best_ms("ssb-validate multi-author", || {
            par_validate_multi_author_message_hash_chain_of_feed(&lines).is_ok()
        }),
    );
    report(
        "ssb-verify-signatures",
        "ssb-verify-signatures 1.1.1 (Rust), par_verify_messages, default chunk of 50",
        best_ms("ssb-verify-signatures", || verify_signatures(&lines)),
    );
    report(
        "ssb-validate+ssb-verify-signatures",
        "ssb-validate chains + ssb-verify-signatures, in turn",
        best_ms("both crates", || {
            validate_chains(&by_author) && verify_signatures(&lines)
        }),
    );
}
