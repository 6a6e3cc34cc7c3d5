//! Blobs between real peers on loopback.
//!
//! - Between shoal nodes: a post's attachment reaches a follower by itself
//!   (`blob_hops` 1), byte for byte; a blob nobody links is fetched when
//!   asked for with `shoal blob get --wait`; one nobody has is exit 1.
//! - With the real `ssb-server` (`ssb-blobs`), both ways: a blob it adds
//!   and links from a post reaches shoal through the follow, and a blob
//!   shoal adds reaches it through `blobs.want`, byte-identical. Sizes are
//!   not multiples of 64 KiB, which JavaScript peers cannot send each other.
//! - A hostile peer (the library's own handshake and muxrpc): claiming a
//!   blob the node wants and serving other bytes, or more bytes than
//!   `max_blob_bytes`, stores nothing and is logged; a flood of ten
//!   thousand made-up wants leaves the node answering and its memory
//!   bounded. What the node serves: `blobs.get`, `getSlice`, `has` and
//!   `size` right, and a bad id, a slice out of range, a blob over `max`
//!   or not of the `size` given refused with an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use shoal::crypto::{BlobId, Keypair};
use shoal::rpc::{self, Body, Responder};

use crate::common::test_key;
use crate::jsenv::{JsPeer, repo_dir, run};
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, wait_for};

/// A file of `len` bytes from a fixed seed.
fn file(dir: &Path, name: &str, len: usize, seed: u8) -> (PathBuf, Vec<u8>) {
    let mut x = u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// Waits until `node` holds blob `id`.
fn wait_blob(node: &ServeNode, id: &str, secs: u64) {
    wait_for(
        secs,
        Duration::from_millis(200),
        &format!("{} to hold blob {id}", node.name),
        || (node.run(["blob", "has", id]).code == 0).then_some(()),
        || node.explain(),
    );
}

/// The bytes of a blob `node` holds.
fn blob_bytes(node: &ServeNode, id: &str, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!("{}-{}.out", node.name, &id[1..9].replace('/', "_")));
    node.ok(["blob", "get", id, "--out", out.to_str().unwrap()]);
    std::fs::read(out).unwrap()
}

#[test]
fn an_attachment_reaches_a_follower_and_a_blob_asked_for_is_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0xb1));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0xb2));
    b.follow(&a.id.to_string());
    let (photo, photo_bytes) = file(dir.path(), "photo.png", 300_001, 1);
    let key = a
        .ok(["post", "a photo", "--attach", photo.to_str().unwrap()])
        .text()
        .trim()
        .to_string();
    // The post as Patchwork and Manyverse write one.
    let id = BlobId::of(&photo_bytes).to_string();
    let line = a.ok(["get", key.as_str()]).text();
    let msg: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        msg["value"]["content"],
        json!({
            "type": "post",
            "text": format!("a photo\n\n![photo.png]({id})"),
            "mentions": [{"link": id, "name": "photo.png", "size": 300_001, "type": "image/png"}]
        })
    );
    a.start();
    b.start();
    b.ok(["connect", a.address().as_str()]);
    wait_blob(&b, &id, 30);
    assert_eq!(blob_bytes(&b, &id, dir.path()), photo_bytes);

    // Not linked by anything: fetched when asked for.
    let (other, other_bytes) = file(dir.path(), "notes.txt", 70_001, 2);
    let other_id = a
        .ok(["blob", "add", other.to_str().unwrap()])
        .text()
        .trim()
        .to_string();
    assert_eq!(other_id, BlobId::of(&other_bytes).to_string());
    assert_ne!(b.run(["blob", "has", other_id.as_str()]).code, 0);
    let out = dir.path().join("fetched.txt");
    b.ok([
        "blob",
        "get",
        other_id.as_str(),
        "--wait",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), other_bytes);
    let listed = b.ok(["blob", "ls"]).text();
    assert!(listed.contains(&format!("{other_id} 70001")), "{listed}");

    // Nobody has it: a problem, said in one line.
    let nobody = BlobId::of(b"nobody has this").to_string();
    let out = b.run([
        "blob",
        "get",
        nobody.as_str(),
        "--wait",
        "1",
        "--out",
        "/dev/null",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("is not here"), "{}", out.stderr);
    let bad = b.run(["blob", "has", "&short.sha256"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn blobs_go_between_ssb_server_and_shoal_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let js = JsPeer::start("blobjs", 300);
    let js_id = js.info("id");
    let mut alice = ServeNode::init(dir.path(), "alice", &test_key(0xb3));
    let alice_id = alice.id.to_string();
    alice.follow(&js_id);
    js.sbot(&[
        "publish",
        "--type",
        "contact",
        "--contact",
        &alice_id,
        "--following",
    ]);
    // ssb-server adds a blob and links it from a post.
    let (js_file, js_bytes) = file(dir.path(), "from-js.png", 200_001, 3);
    let added = run(
        js.node(&repo_dir().join("tests/js/blobs.js"), 60)
            .args(["add", js_file.to_str().unwrap()]),
        "tests/js/blobs.js add",
    );
    let added: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    let js_blob = added["id"].as_str().unwrap().to_string();
    assert_eq!(js_blob, BlobId::of(&js_bytes).to_string());
    alice.start();
    alice.ok(["connect", js.info("address").as_str()]);
    alice.wait_count(&js_id, 2, 60);
    wait_blob(&alice, &js_blob, 60);
    assert_eq!(blob_bytes(&alice, &js_blob, dir.path()), js_bytes);

    // shoal adds one; ssb-server asks for it.
    let (mine, my_bytes) = file(dir.path(), "from-shoal.bin", 150_001, 4);
    let my_blob = alice
        .ok(["blob", "add", mine.to_str().unwrap()])
        .text()
        .trim()
        .to_string();
    let out = dir.path().join("js-got.bin");
    run(
        js.node(&repo_dir().join("tests/js/blobs.js"), 90).args([
            "want",
            my_blob.as_str(),
            out.to_str().unwrap(),
            "60",
        ]),
        "tests/js/blobs.js want",
    );
    assert_eq!(std::fs::read(&out).unwrap(), my_bytes);
}

/// How a hostile peer answers the node's `blobs.get`.
#[derive(Clone, Copy)]
enum Serve {
    /// Other bytes than the blob's.
    Forged,
    /// More bytes than the node takes.
    Oversized,
}

/// Dials `node` as `keys`, tells it (on the want stream it reads from us)
/// that we have `claimed`, and answers its `blobs.get` as `how` says;
/// also sends `flood` made-up wants. Runs until `secs` have passed.
async fn hostile_peer(
    node: &ServeNode,
    keys: &Keypair,
    claimed: BlobId,
    how: Serve,
    flood: usize,
    secs: u64,
) {
    let addr = node.address().parse().unwrap();
    let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), keys)
        .await
        .expect("the node takes the handshake");
    let (_handle, mut incoming, _task) = rpc::start(r, w, rpc::Options::default());
    let serve = async {
        while let Some(req) = incoming.recv().await {
            let name = req.name.join(".");
            match (name.as_str(), req.responder) {
                ("blobs.createWants", Responder::Stream(s)) => {
                    // Kept open: answered on a task of its own.
                    tokio::spawn(async move {
                        let (sink, _src) = s.into_parts();
                        let have = json!({ claimed.to_string(): 1000 });
                        let _ = sink.send(Body::Json(Bytes::from(have.to_string()))).await;
                        for round in 0..flood / 1000 {
                            let wants: serde_json::Map<String, serde_json::Value> = (0..1000)
                                .map(|i| {
                                    let n = (round * 1000 + i) as u32;
                                    (BlobId::of(&n.to_be_bytes()).to_string(), json!(-1))
                                })
                                .collect();
                            let body = serde_json::Value::Object(wants).to_string();
                            if sink.send(Body::Json(Bytes::from(body))).await.is_err() {
                                break;
                            }
                        }
                        std::future::pending::<()>().await;
                    });
                }
                ("blobs.get", Responder::Stream(s)) => {
                    let (sink, _src) = s.into_parts();
                    let piece = Bytes::from(vec![7u8; 64 * 1024]);
                    let pieces = match how {
                        Serve::Forged => 1,
                        Serve::Oversized => 4,
                    };
                    for _ in 0..pieces {
                        if sink.send(Body::Binary(piece.clone())).await.is_err() {
                            break;
                        }
                    }
                    let _ = sink.end().await;
                }
                (_, responder) => {
                    let _ = responder.not_found().await;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(secs), serve).await;
}

#[test]
fn forged_or_oversized_blobs_store_nothing_and_a_want_flood_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xb4));
    node.configure("max_blob_bytes", "131072");
    node.start();
    let rt = crate::common::runtime();
    for (i, how) in [Serve::Forged, Serve::Oversized].into_iter().enumerate() {
        let wanted = BlobId::of(format!("wanted {i}").as_bytes());
        let id = wanted.to_string();
        // The node asks its peers for it (none yet).
        let out = node.run(["blob", "get", id.as_str()]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        let rss_before = node.rss_kib();
        let flood = if i == 0 { 10_000 } else { 0 };
        rt.block_on(hostile_peer(
            &node,
            &test_key(0xc0 + i as u8),
            wanted,
            how,
            flood,
            4,
        ));
        let expected = match how {
            Serve::Forged => "the bytes received hash to",
            Serve::Oversized => "is over 131072 bytes",
        };
        wait_for(
            10,
            Duration::from_millis(100),
            &format!("the node to refuse the blob: {expected}"),
            || {
                node.log_text()
                    .lines()
                    .any(|l| l.contains(&id) && l.contains(expected))
                    .then_some(())
            },
            || node.log_tail(30),
        );
        assert_ne!(node.run(["blob", "has", id.as_str()]).code, 0);
        assert_eq!(node.ok(["blob", "ls"]).text(), "");
        assert!(
            node.rss_kib() < rss_before + 64 * 1024,
            "memory grew from {rss_before} KiB to {} KiB",
            node.rss_kib()
        );
        assert_eq!(node.status()["id"], node.id.to_string());
    }
    let tmp: Vec<_> = std::fs::read_dir(node.home.join("blobs/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "nothing half-written: {tmp:?}");

    // What the node serves, asked wrongly and rightly.
    let (small, small_bytes) = file(dir.path(), "small.txt", 1000, 9);
    let id = node
        .ok(["blob", "add", small.to_str().unwrap()])
        .text()
        .trim()
        .to_string();
    rt.block_on(async {
        let addr = node.address().parse().unwrap();
        let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), &test_key(0xcf))
            .await
            .unwrap();
        let (rpc, _incoming, _task) = rpc::start(r, w, rpc::Options::default());
        let collect = |args: serde_json::Value, method: &'static str| {
            let rpc = rpc.clone();
            async move {
                let mut source = rpc.call_source(&["blobs", method], args).await.unwrap();
                let mut got = Vec::new();
                while let Some(item) = source.recv().await {
                    match item {
                        Ok(Body::Binary(b)) => got.extend_from_slice(&b),
                        Ok(other) => panic!("not bytes: {other:?}"),
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(got)
            }
        };
        assert_eq!(collect(json!([id]), "get").await.unwrap(), small_bytes);
        let slice = collect(json!([{"key": id, "start": 10, "end": 20}]), "getSlice").await;
        assert_eq!(slice.unwrap(), &small_bytes[10..20]);
        for (args, method, why) in [
            (
                json!([{"key": id, "start": 20, "end": 10}]),
                "getSlice",
                "out of range",
            ),
            (
                json!([{"key": id, "start": 5000}]),
                "getSlice",
                "out of range",
            ),
            (json!(["&short.sha256"]), "get", "invalid blob id"),
            (json!([{"key": id, "max": 10}]), "get", "too long"),
            (
                json!([{"key": id, "size": 999}]),
                "get",
                "incorrect file length",
            ),
        ] {
            let err = collect(args.clone(), method).await.unwrap_err();
            assert!(err.contains(why), "{method} {args}: {err}");
        }
        let has = rpc
            .call_async(
                &["blobs", "has"],
                json!([[id, BlobId::of(b"none").to_string()]]),
            )
            .await
            .unwrap();
        assert_eq!(has, Body::Json(Bytes::from("[true,false]")));
        let size = rpc
            .call_async(&["blobs", "size"], json!([id]))
            .await
            .unwrap();
        assert_eq!(size, Body::Json(Bytes::from("1000")));
        assert!(
            rpc.call_async(&["blobs", "has"], json!(["nonsense"]))
                .await
                .is_err()
        );
    });
    assert_eq!(node.status()["id"], node.id.to_string());
}
