//! Restoring an identity without forking its feed, on real nodes: a home
//! made from a recovery phrase publishes nothing until a peer that holds
//! its feed has given it back, then continues at the right sequence; a
//! peer that claims more of our feed than it serves holds publishing with
//! a reason naming it, until the person lifts it; a phrase with a wrong
//! word is refused naming it, and one for a home that exists overwrites
//! nothing.

use std::time::Duration;

use serde_json::json;
use shoal::rpc;

use crate::common::test_key;
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, wait_for};

#[test]
fn a_restored_identity_publishes_only_after_its_feed_came_back_and_then_at_the_next_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let keys = test_key(0x30);
    let mut laptop = ServeNode::init(dir.path(), "laptop", &keys);
    let mut friend = ServeNode::init(dir.path(), "friend", &test_key(0x31));
    let id = keys.id().to_string();
    friend.follow(&id);
    for text in ["one", "two", "three"] {
        laptop.post(text);
    }
    laptop.start();
    friend.start();
    friend.ok(["connect", laptop.address().as_str()]);
    friend.wait_count(&id, 3, 30);
    // The phrase, written down before the laptop is lost.
    let out = laptop.run(["identity", "phrase"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("anyone who reads them"),
        "{}",
        out.stderr
    );
    let phrase = out.text().trim().to_string();
    assert_eq!(phrase.split(' ').count(), 24, "{phrase}");
    laptop.stop();

    let mut phone = ServeNode::restore(dir.path(), "phone", keys.id(), &phrase);
    // Not running yet: nothing is published.
    let held = phone.run(["post", "too early"]);
    assert_eq!(held.code, 1, "{}", held.stderr);
    assert!(
        held.stderr.contains("not published: restoring"),
        "{}",
        held.stderr
    );
    phone.start();
    let status = phone.status();
    assert_eq!(status["restoring"], true, "{status}");
    assert!(phone.run(["post", "still too early"]).code != 0);
    // A peer that holds our feed gives it back; then we may publish.
    phone.ok(["connect", friend.address().as_str()]);
    wait_for(
        30,
        Duration::from_millis(100),
        "the restore to complete",
        || {
            phone
                .status()
                .get("publishing_held")
                .is_none()
                .then_some(())
        },
        || format!("{}\n{}", phone.status(), phone.log_tail(30)),
    );
    assert_eq!(phone.count(&id), 3);
    phone.post("four, from the phone");
    let log = phone.log_of(&id);
    assert_eq!(log.len(), 4);
    let last: serde_json::Value = serde_json::from_slice(&log[3].value_raw).unwrap();
    assert_eq!(last["sequence"], 4, "{last}");
    assert_eq!(
        last["previous"].as_str(),
        Some(log[2].key.as_str()),
        "the new message chains on the restored feed"
    );
    // And the friend takes it: the feed continues, unforked.
    friend.wait_count(&id, 4, 30);
    assert_eq!(friend.status()["forks"], 0);
}

#[test]
fn a_peer_claiming_more_of_our_feed_than_it_serves_holds_publishing_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let keys = test_key(0x32);
    let phrase = shoal::crypto::phrase_of(&keys).to_string();
    let mut home = ServeNode::restore(dir.path(), "home", keys.id(), &phrase);
    home.start();
    let liar = test_key(0x33);
    // Its own threads: the connection lives on while the test waits.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr: shoal::net::MultiAddr = home.address().parse().unwrap();
    let id = keys.id().to_string();
    // It claims our feed up to 900 over EBT, and answers every history
    // stream with nothing.
    let conn = rt.block_on(async {
        let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), &liar)
            .await
            .unwrap();
        let (rpc, mut incoming, task) = rpc::start(r, w, rpc::Options::default());
        tokio::spawn(async move {
            while let Some(req) = incoming.recv().await {
                match req.responder {
                    rpc::Responder::Stream(s) => {
                        let (sink, _source) = s.into_parts();
                        let _ = sink.end().await;
                    }
                    other => {
                        let _ = other.not_found().await;
                    }
                }
            }
        });
        let (sink, source) = rpc
            .call_duplex(
                &["ebt", "replicate"],
                json!([{"version": 3, "format": "classic"}]),
            )
            .await
            .unwrap();
        let notes = json!({ id.clone(): 900 << 1 }).to_string();
        sink.send(rpc::Body::Json(bytes::Bytes::from(notes)))
            .await
            .unwrap();
        (rpc, task, sink, source)
    });
    wait_for(
        20,
        Duration::from_millis(100),
        "the claim to be kept",
        || {
            let s = held_because(&home);
            s.contains("900").then_some(s)
        },
        || home.log_tail(30),
    );
    let held = home.status()["publishing_held"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(held.contains(&liar.id().to_string()), "{held}");
    assert!(held.contains("900"), "{held}");
    let out = home.run(["post", "not yet"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("900"), "{}", out.stderr);
    // Still held after a restart: the claim is kept.
    home.stop();
    home.start();
    assert!(home.run(["post", "still not"]).code != 0);
    drop(conn);
    // The person lifts it, knowing no peer really has the feed.
    home.ok(["restore", "--done", "--yes"]);
    let first = home.post("first, after all");
    let log = home.log_of(&id);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].key, first);
}

/// What `shoal status` says of publishing, as text.
fn held_because(node: &ServeNode) -> String {
    node.status()["publishing_held"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_phrase_with_a_wrong_word_is_refused_naming_it_and_an_existing_home_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let keys = test_key(0x34);
    let phrase = shoal::crypto::phrase_of(&keys).to_string();
    let mut words: Vec<&str> = phrase.split(' ').collect();
    words[4] = "notaword";
    let home = dir.path().join("h");
    let out = crate::cli::shoal(&home, ["init", "--phrase", &words.join(" ")]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("word 5 of the phrase, \"notaword\""),
        "{}",
        out.stderr
    );
    assert!(!home.exists(), "a home was made");
    let out = crate::cli::shoal(&home, ["init", "--phrase", &words[..12].join(" ")]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("has 12"), "{}", out.stderr);
    // A home that exists: refused, its identity kept.
    let other = ServeNode::init(dir.path(), "other", &test_key(0x35));
    let out = crate::cli::shoal(&other.home, ["init", "--phrase", &phrase]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing to overwrite"),
        "{}",
        out.stderr
    );
    assert_eq!(
        other.ok(["whoami"]).text().trim(),
        test_key(0x35).id().to_string()
    );
}

#[test]
fn a_feed_held_by_the_real_ssb_server_is_fetched_before_a_restored_home_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = test_key(0x36);
    let id = keys.id().to_string();
    let mut laptop = ServeNode::init(dir.path(), "laptop", &keys);
    for text in ["one", "two", "three"] {
        laptop.post(text);
    }
    laptop.start();
    let js = crate::jsenv::JsPeer::start("restore", 300);
    js.sbot(&[
        "publish",
        "--type",
        "contact",
        "--contact",
        &id,
        "--following",
    ]);
    let js_addr = js.info("address");
    laptop.ok(["connect", js_addr.as_str()]);
    js.wait_seq(&id, 3);
    laptop.stop();

    let phrase = shoal::crypto::phrase_of(&keys).to_string();
    let mut phone = ServeNode::restore(dir.path(), "phone", keys.id(), &phrase);
    phone.start();
    phone.ok(["connect", js_addr.as_str()]);
    // ssb-server remembers the clock it saw of this feed, so over EBT it
    // claims 3 and sends nothing: the feed comes by a history stream.
    wait_for(
        60,
        Duration::from_millis(200),
        "the restore from ssb-server to complete",
        || phone.status().get("publishing_held").is_none().then_some(()),
        || format!("{}\n{}", phone.status(), phone.log_tail(40)),
    );
    assert_eq!(phone.count(&id), 3);
    assert!(
        phone.log_text().contains("claims our own feed up to 3, we hold 0"),
        "{}",
        phone.log_tail(40)
    );
    phone.post("four, after the restore");
    js.wait_seq(&id, 4);
    let theirs = js.dump(Some(&id), false);
    assert_eq!(theirs.lines().count(), 4, "{theirs}");
}
