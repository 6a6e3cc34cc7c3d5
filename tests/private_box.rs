//! private-box (DM content) against the JavaScript implementation:
//! - the shared vector `private-box/simple.json` (from private-box-rs, made
//!   by the JavaScript package) opens with each of its two keys to its
//!   message, and not with a third key;
//! - boxes made by shoal open with ssb-keys (the refpeer oracle's `unbox`)
//!   for each recipient to the very same JSON, and not for anyone else;
//! - boxes made by ssb-keys (the oracle's `box`) open with shoal's
//!   [`Unboxer`] for each of up to seven recipients;
//! - properties: box then open gives back any bytes for 1 to 7 recipients
//!   and nothing for a stranger; a box with any byte changed never panics
//!   the reader and never opens to anything but the original plaintext,
//!   nor does any character changed in its `<base64>.box` string.

use std::path::Path;
use std::process::Stdio;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

use shoal::crypto::{FeedId, Keypair, b64_decode, write_secret_file};
use shoal::private::{BoxError, Unboxer, box_message, is_boxed};

use crate::common::{read_vector, test_key};
use crate::jsenv::{bounded, refpeer};

/// Compact JSON content addressed to `recps`, with non-ASCII text.
fn content(recps: &[FeedId]) -> String {
    let list: Vec<String> = recps.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        r#"{{"type":"post","text":"private: ü ✓ 🐟 \"quoted\"","recps":[{}]}}"#,
        list.join(",")
    )
}

/// The oracle's answer to `args` with `input` on stdin: `Some(stdout)` when
/// it succeeds, `None` when `unbox` says the key cannot open the box. Any
/// other failure fails the test.
fn oracle(dir: &Path, args: &[&str], input: &str) -> Option<String> {
    let file = dir.join("oracle-input");
    std::fs::write(&file, input).unwrap();
    let mut cmd = bounded(60, "node");
    cmd.arg(refpeer().join("oracle/oracle.js"))
        .args(args)
        .stdin(Stdio::from(std::fs::File::open(&file).unwrap()));
    let out = cmd.output().expect("run oracle/oracle.js");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(1) && stderr.contains("cannot unbox with this key") {
        return None;
    }
    assert!(
        out.status.success(),
        "oracle {args:?} failed with {}:\n{stderr}",
        out.status
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string(),
    )
}

/// A secret file in the ssb-keys format for `kp`.
fn secret_file(dir: &Path, name: &str, kp: &Keypair) -> String {
    let path = dir.join(name);
    write_secret_file(&path, kp).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn simple_vector_opens_with_both_keys() {
    let v: serde_json::Value = serde_json::from_slice(&read_vector("private-box/simple.json"))
        .expect("simple.json is JSON");
    let bytes = b64_decode(v["cypher_text"].as_str().unwrap()).unwrap();
    let boxed = format!("{}.box", v["cypher_text"].as_str().unwrap());
    let msg = v["msg"].as_str().unwrap().as_bytes();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    // Two slots and the body.
    assert_eq!(bytes.len(), 24 + 32 + 2 * 49 + 16 + msg.len());
    for k in keys {
        let secret: [u8; 64] = b64_decode(k["secret"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let kp = Keypair::from_keypair_bytes(&secret).expect("secret matches its public key");
        assert_eq!(kp.id().b64(), k["public"].as_str().unwrap());
        let unboxer = Unboxer::new(&kp);
        assert_eq!(unboxer.open_raw(&bytes).as_deref(), Some(msg));
        assert_eq!(unboxer.open(&boxed), Ok(Some(msg.to_vec())));
    }
    assert_eq!(Unboxer::new(&test_key(1)).open(&boxed), Ok(None));
}

#[test]
fn shoal_boxes_open_in_javascript() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, stranger) = (test_key(1), test_key(2), test_key(3));
    let json = content(&[a.id(), b.id()]);
    let boxed = box_message(json.as_bytes(), &[a.id(), b.id()]).unwrap();
    assert!(is_boxed(&boxed));
    for (name, kp) in [("a", &a), ("b", &b)] {
        let secret = secret_file(dir.path(), name, kp);
        let opened = oracle(dir.path(), &["unbox", &secret], &boxed);
        assert_eq!(
            opened.as_deref(),
            Some(json.as_str()),
            "ssb-keys unbox as {name}"
        );
    }
    let secret = secret_file(dir.path(), "stranger", &stranger);
    assert_eq!(oracle(dir.path(), &["unbox", &secret], &boxed), None);
}

#[test]
fn javascript_boxes_open_in_shoal() {
    let dir = tempfile::tempdir().unwrap();
    for n in [1u8, 7] {
        let keys: Vec<Keypair> = (1..=n).map(test_key).collect();
        let ids: Vec<FeedId> = keys.iter().map(Keypair::id).collect();
        let json = content(&ids);
        let id_args: Vec<String> = ids.iter().map(FeedId::to_string).collect();
        let mut args = vec!["box"];
        args.extend(id_args.iter().map(String::as_str));
        let boxed = oracle(dir.path(), &args, &json).expect("ssb-keys box");
        assert!(is_boxed(&boxed), "{boxed}");
        for kp in &keys {
            let opened = Unboxer::new(kp).open(&boxed);
            assert_eq!(
                opened,
                Ok(Some(json.clone().into_bytes())),
                "{n} recipients"
            );
        }
        assert_eq!(Unboxer::new(&test_key(8)).open(&boxed), Ok(None));
    }
}

fn config(seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(0x5107_0b01))]

    #[test]
    fn box_then_open_round_trips(
        plain in prop::collection::vec(any::<u8>(), 0..600),
        n in 1u8..=7,
        flips in prop::collection::vec((any::<Index>(), 1u8..=255), 8),
    ) {
        let keys: Vec<Keypair> = (1..=n).map(test_key).collect();
        let ids: Vec<FeedId> = keys.iter().map(Keypair::id).collect();
        let boxed = box_message(&plain, &ids).unwrap();
        for kp in &keys {
            prop_assert_eq!(Unboxer::new(kp).open(&boxed), Ok(Some(plain.clone())));
        }
        prop_assert_eq!(Unboxer::new(&test_key(8)).open(&boxed), Ok(None));

        let bytes = b64_decode(boxed.strip_suffix(".box").unwrap()).unwrap();
        let me = Unboxer::new(&keys[0]);
        for (at, mask) in flips {
            let mut bad = bytes.clone();
            let i = at.index(bad.len());
            bad[i] ^= mask;
            let opened = me.open_raw(&bad);
            prop_assert!(
                opened.is_none() || opened.as_ref() == Some(&plain),
                "byte {} ^ {:#x} opened to other bytes", i, mask
            );
            let cut = &bytes[..at.index(bytes.len())];
            prop_assert_eq!(me.open_raw(cut), None);

            // The same at the string level, with any ASCII character.
            let mut text = boxed.clone().into_bytes();
            let i = at.index(text.len());
            text[i] = mask & 0x7f;
            let opened = me.open(std::str::from_utf8(&text).unwrap());
            prop_assert!(
                matches!(&opened, Err(_) | Ok(None)) || opened == Ok(Some(plain.clone())),
                "char {} = {:#x}: {:?}", i, mask & 0x7f, opened
            );
            if i >= text.len() - 4 && text[i] != boxed.as_bytes()[i] {
                prop_assert_eq!(opened, Err(BoxError::NotBoxed));
            }
        }
    }
}
