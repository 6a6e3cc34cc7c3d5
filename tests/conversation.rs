//! A conversation across two shoal nodes and the real JavaScript
//! ssb-server: posts, replies, likes, names and private messages, all by
//! gossip, and `shoal thread` / `shoal inbox` show it complete.
//!
//! - Alice (shoal) and Bob (shoal) follow each other and ssb-server ("js");
//!   js follows Alice. Alice dials js; Bob dials Alice.
//! - Alice names herself and posts; js names itself, replies (root and
//!   branch, with ssb-server's own CLI) and likes Alice's post; Bob replies
//!   to js's reply.
//! - Alice's `shoal thread` shows the root, js's reply and Bob's reply under
//!   it, with names, and one like; from Bob's node too.
//! - Private messages both ways: js boxes a message to Alice (ssb-server's
//!   own private-box via `publish-private.js`), which Alice's inbox shows
//!   decrypted and Bob's does not; Alice's `shoal dm` to js is readable by
//!   ssb-server (`get --private`) and equal to what Alice wrote; Alice's
//!   private reply to js's DM stays private and is threaded under it.

use crate::common::test_key;
use crate::jsenv::{JsPeer, run};
use crate::nodes::ServeNode;

/// The `key` of the JSON ssb-server prints for a publish.
fn key_of(published: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(published)
        .unwrap_or_else(|e| panic!("publish output is not JSON ({e}): {published}"));
    v["key"].as_str().expect("a key").to_string()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn a_conversation_between_shoal_nodes_and_ssb_server() {
    let js = JsPeer::start("js", 300);
    let js_id = js.info("id");
    let js_addr = js.info("address");
    let dir = tempfile::tempdir().unwrap();
    let mut alice = ServeNode::init(dir.path(), "alice", &test_key(71));
    let mut bob = ServeNode::init(dir.path(), "bob", &test_key(72));
    let (a, b) = (alice.id.to_string(), bob.id.to_string());

    alice.follow(&js_id);
    alice.follow(&b);
    bob.follow(&a);
    bob.follow(&js_id);
    alice.ok(["name", "alice"]);
    bob.ok(["name", "bob"]);
    js.sbot(&[
        "publish", "--type", "about", "--about", &js_id, "--name", "js",
    ]);
    js.sbot(&[
        "publish",
        "--type",
        "contact",
        "--contact",
        &a,
        "--following",
    ]);
    alice.start();
    bob.start();
    alice.ok(["connect", js_addr.as_str()]);
    bob.ok(["connect", alice.address().as_str()]);

    // Alice posts; js gets it, replies and likes it.
    // alice: follow, follow, name, post.
    let root = alice.post("Who is up for a walk on Saturday?");
    js.wait_seq(&a, 4);
    let js_reply = key_of(&js.sbot(&[
        "publish",
        "--type",
        "post",
        "--text",
        "Count me in!",
        "--root",
        &root,
        "--branch",
        &root,
    ]));
    js.sbot(&[
        "publish",
        "--type",
        "vote",
        "--vote.link",
        &root,
        "--vote.value",
        "1",
        "--vote.expression",
        "Like",
    ]);
    // js: about, contact, reply, vote.
    alice.wait_count(&js_id, 4, 60);

    // Bob gets js's messages through Alice, and replies to js's reply.
    bob.wait_count(&js_id, 4, 60);
    let bob_reply = bob.ok(["reply", js_reply.as_str(), "Me too, if it does not rain"]);
    let bob_reply = bob_reply.text().trim().to_string();
    alice.wait_count(&b, 4, 60);

    for (who, node) in [("alice", &alice), ("bob", &bob)] {
        let lines = json_lines(&node.ok(["--json", "thread", root.as_str()]).text());
        let keys: Vec<&str> = lines.iter().map(|e| e["key"].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            [root.as_str(), js_reply.as_str(), bob_reply.as_str()],
            "{who}: the thread in reply order"
        );
        let depths: Vec<u64> = lines.iter().map(|e| e["depth"].as_u64().unwrap()).collect();
        assert_eq!(depths, [0, 1, 2], "{who}: bob answers js, js answers alice");
        let names: Vec<&str> = lines.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["alice", "js", "bob"],
            "{who}: names from about messages"
        );
        assert_eq!(lines[0]["likes"], 1, "{who}: js's like");
        assert_eq!(lines[0]["replies"], 2, "{who}: two replies");
        let text = node.ok(["thread", root.as_str()]).text();
        assert!(
            text.contains("Count me in!") && text.contains("Me too, if it does not rain"),
            "{who}: the text form shows both replies:\n{text}"
        );
    }

    // js -> alice, private, boxed by ssb-server itself.
    let out = run(
        js.node(&js.kit.join("scripts/publish-private.js"), 60)
            .arg("Just between us: bring snacks")
            .arg(&a)
            .arg(&js_id),
        "scripts/publish-private.js",
    );
    let js_dm = key_of(String::from_utf8_lossy(&out.stdout).lines().last().unwrap());
    alice.wait_count(&js_id, 5, 60);
    let inbox = json_lines(&alice.ok(["--json", "inbox"]).text());
    let got = inbox
        .iter()
        .find(|i| i["key"] == js_dm.as_str())
        .unwrap_or_else(|| panic!("alice's inbox lacks js's message: {inbox:?}"));
    assert_eq!(got["text"], "Just between us: bring snacks");
    assert_eq!(got["private"], true);
    let raw = alice.ok(["get", js_dm.as_str()]).text();
    assert!(
        raw.contains(r#""decrypted":{"#) && raw.contains("bring snacks"),
        "get shows the decrypted content: {raw}"
    );
    bob.wait_count(&js_id, 5, 60);
    assert!(
        json_lines(&bob.ok(["--json", "inbox"]).text())
            .iter()
            .all(|i| i["key"] != js_dm.as_str()),
        "bob holds js's box but cannot read it"
    );
    assert!(
        !bob.ok(["get", js_dm.as_str()]).text().contains("decrypted"),
        "bob's get has nothing decrypted"
    );

    // alice -> js, private, read by ssb-server.
    let dm = alice.ok(["dm", "--to", js_id.as_str(), "Snacks: yes. Rain: no."]);
    let dm = dm.text().trim().to_string();
    // alice: 2 contacts, about, root post, dm.
    js.wait_seq(&a, 5);
    let read = js.sbot(&["get", "--id", &dm, "--private"]);
    let read: serde_json::Value =
        serde_json::from_str(&read).unwrap_or_else(|e| panic!("get --private: {e}: {read}"));
    let read = read.get("value").unwrap_or(&read).clone();
    assert_eq!(read["content"]["text"], "Snacks: yes. Rain: no.", "{read}");
    assert_eq!(read["content"]["type"], "post");
    let recps: Vec<&str> = read["content"]["recps"]
        .as_array()
        .expect("recps")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(recps.contains(&a.as_str()) && recps.contains(&js_id.as_str()));

    // A reply to a private message stays private and threads under it.
    let private_reply = alice.ok(["reply", js_dm.as_str(), "Snacks it is"]);
    let private_reply = private_reply.text().trim().to_string();
    let raw = alice.ok(["get", private_reply.as_str()]).text();
    let got: serde_json::Value = serde_json::from_str(&raw).expect("get prints JSON");
    assert!(
        got["value"]["content"]
            .as_str()
            .is_some_and(|c| c.ends_with(".box")),
        "the reply's public content is a box: {raw}"
    );
    assert_eq!(got["decrypted"]["text"], "Snacks it is");
    assert_eq!(got["decrypted"]["root"], js_dm.as_str());
    let lines = json_lines(&alice.ok(["--json", "thread", js_dm.as_str()]).text());
    let keys: Vec<&str> = lines.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [js_dm.as_str(), private_reply.as_str()]);
    js.wait_seq(&a, 6);
    let read = js.sbot(&["get", "--id", &private_reply, "--private"]);
    assert!(
        read.contains("Snacks it is") && read.contains(&js_dm),
        "ssb-server reads the private reply with its root: {read}"
    );

    alice.stop();
    bob.stop();
}
