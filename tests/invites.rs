//! Pub invites, both roles, both code forms, with the real ssb-server.
//!
//! - An ssb-server invite (its `invite.create`, the legacy form
//!   `HOST:PORT:@KEY.ed25519~SEED`) redeemed by `shoal invite accept`
//!   through a running node: the pub follows shoal (`pub: true`), shoal
//!   publishes the follow (`autofollow: true`) and the `pub` announcement
//!   as ssb-invite's client does, keeps the pub in its peer table (source
//!   `invite`), dials it, and the two replicate each other's feeds. The
//!   used-up invite is refused with the pub's own words, nothing stored.
//! - A shoal invite (`shoal invite create --note`, the multiserver form)
//!   redeemed by ssb-server's `invite.accept`: shoal follows it with the
//!   note, ssb-server follows and announces shoal, and they replicate; a
//!   second redeemer of the used-up invite is told `invite has expired`.
//! - Between shoal homes: redeemed without a running node (the next
//!   `shoal serve` dials the pub), in both forms (the multiserver code
//!   rewritten in the legacy form redeems it too), until its uses are gone.
//! - Bad input: malformed codes (empty, garbage, an address without a seed,
//!   a truncated seed, a key of 31 bytes, ports 0 and 70000) are usage
//!   errors (exit 2) with nothing stored; an unreachable pub is exit 1;
//!   `invite create` without a node says to start one.
//! - On the wire, with the library's own handshake and muxrpc: a connection
//!   with an invite's key may call `invite.use` and `getAddress` only, every
//!   other method is refused with muxrpc's words and the connection goes
//!   on; it is never among the node's peers; bad arguments are refused; a
//!   key with no invite calling `invite.use` is told so; two connections
//!   redeeming the last use at once: exactly one wins.
//!
//! ssb-server 16's gossip plugin records the pub of an invite it redeemed
//! without a host (`gossip.add` of a multiserver address), and its
//! scheduler then crashes (`ip.isPrivate(undefined)`) as soon as that peer
//! connects. The test removes that record (`gossip.remove`) before
//! connecting; it happens between two ssb-servers alike.

use std::path::Path;

use serde_json::json;
use shoal::crypto::{FeedId, Keypair};
use shoal::invite::Code;
use shoal::rpc::{self, RpcError};

use crate::cli::{LogLine, init_home, one_line_error, shoal};
use crate::common::runtime;
use crate::common::test_key;
use crate::jsenv::JsPeer;
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, free_port};

/// How long replication may take before the test fails.
const REPLICATION_SECS: u64 = 60;

/// The content of a log line, as compact JSON.
fn content(l: &LogLine) -> String {
    let c = l.value.get("content").expect("a content");
    String::from_utf8(shoal::feed::json::to_compact(c)).unwrap()
}

/// The lines of `shoal log` (of every feed) on a home without a node.
fn stored(home: &Path) -> String {
    let out = shoal(home, ["log"]);
    assert_eq!(out.code, 0, "shoal log: {}", out.stderr);
    out.text()
}

/// The lines of `shoal peers` on a home without a node.
fn known(home: &Path) -> String {
    let out = shoal(home, ["peers"]);
    assert_eq!(out.code, 0, "shoal peers: {}", out.stderr);
    out.text()
}

/// Makes an invite on a running node: its code (the note about a
/// loopback address on stderr is expected).
fn create(node: &ServeNode, args: &[&str]) -> String {
    let mut all = vec!["invite", "create"];
    all.extend_from_slice(args);
    let out = node.run(&all);
    assert_eq!(out.code, 0, "shoal invite create: {}", out.stderr);
    assert!(
        out.stderr.contains("127.0.0.1, not a public address"),
        "a loopback code is pointed out: {}",
        out.stderr
    );
    let code = out.text().trim().to_string();
    assert!(
        code.starts_with(&format!(
            "net:127.0.0.1:{}~shs:{}:",
            node.port,
            node.id.b64()
        )),
        "{code}"
    );
    code
}

/// Dials `node` as `keys` and starts muxrpc on the connection.
async fn dial(node: &ServeNode, keys: &Keypair) -> rpc::RpcHandle {
    let addr = node.address().parse().unwrap();
    let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), keys)
        .await
        .expect("the node takes the handshake");
    let (handle, _incoming, _task) = rpc::start(r, w, rpc::Options::default());
    handle
}

/// The message of the error a call was answered with.
#[track_caller]
fn remote_message(r: Result<rpc::Body, RpcError>) -> String {
    match r {
        Err(RpcError::Remote(e)) => e.message,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

#[test]
fn an_ssb_server_invite_is_redeemed_by_shoal_and_they_replicate() {
    let dir = tempfile::tempdir().unwrap();
    let js = JsPeer::start_with("invpub", 300, |c| {
        // Invites for a loopback address need this.
        c["allowPrivate"] = true.into();
    });
    let js_id = js.info("id");
    let js_port = js.info("port");
    let mut alice = ServeNode::init(dir.path(), "alice", &test_key(141));
    let alice_id = alice.id.to_string();
    alice.post("alice before the invite");
    alice.start();

    let code: String = serde_json::from_str(&js.sbot(&["invite.create", "1"])).unwrap();
    assert_eq!(
        code.split('~').next().unwrap(),
        format!("127.0.0.1:{js_port}:{js_id}"),
        "ssb-server prints the legacy form"
    );
    let out = alice.run(["invite", "accept", code.as_str()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, alice.log_tail(30));
    assert_eq!(out.text().trim(), js_id);
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // What ssb-invite's client publishes, in its key order.
    let mine = alice.log_of(&alice_id);
    assert_eq!(mine.len(), 3);
    assert_eq!(
        content(&mine[1]),
        format!(r#"{{"type":"contact","following":true,"autofollow":true,"contact":"{js_id}"}}"#)
    );
    assert_eq!(
        content(&mine[2]),
        format!(
            r#"{{"type":"pub","address":{{"host":"127.0.0.1","port":{js_port},"key":"{js_id}"}}}}"#
        )
    );
    let peers = alice.peers();
    let pub_addr = js.info("address");
    let record = peers["known"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["address"] == pub_addr.as_str())
        .unwrap_or_else(|| panic!("the pub in the peer table: {peers}"));
    assert_eq!(record["record"]["source"], "invite");

    // The node dials the pub as itself; each replicates the other.
    js.sbot(&["publish", "--type", "post", "--text", "from the pub"]);
    alice.wait_count(&js_id, 2, REPLICATION_SECS);
    let theirs = alice.log_of(&js_id);
    assert_eq!(
        content(&theirs[0]),
        format!(r#"{{"type":"contact","contact":"{alice_id}","following":true,"pub":true}}"#),
        "the pub follows the redeemer as ssb-invite does"
    );
    js.wait_seq(&alice_id, 3);
    alice.post("alice after the invite");
    js.wait_seq(&alice_id, 4);

    // Used up: the pub's own words, nothing published.
    let again = alice.run(["invite", "accept", code.as_str()]);
    assert_eq!(
        one_line_error(&again, 1),
        "error: the pub refused the invite: method:invite,use is not in list of allowed methods"
    );
    assert_eq!(alice.count(&alice_id), 4);
}

#[test]
fn a_shoal_invite_is_redeemed_by_ssb_server_and_they_replicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "pub", &test_key(143));
    let node_id = node.id.to_string();
    node.post("the pub's first post");
    node.start();
    let code = create(&node, &["--note", "welcome aboard"]);

    let js = JsPeer::start("invitee", 300);
    let js_id = js.info("id");
    js.sbot(&["invite.accept", &code]);

    // The node followed the redeemer with the invite's note, in the same
    // write that took the use.
    let mine = node.log_of(&node_id);
    assert_eq!(mine.len(), 2);
    assert_eq!(
        content(&mine[1]),
        format!(
            r#"{{"type":"contact","contact":"{js_id}","following":true,"pub":true,"note":"welcome aboard"}}"#
        )
    );
    assert!(
        node.connected().is_empty(),
        "an invite's connection is no peer"
    );

    js.sbot(&["gossip.remove", &node_id]);
    js.sbot(&["publish", "--type", "post", "--text", "from the invitee"]);
    js.sbot(&["gossip.connect", &node.address()]);
    node.wait_count(&js_id, 3, REPLICATION_SECS);
    let theirs = node.log_of(&js_id);
    assert_eq!(
        content(&theirs[0]),
        format!(r#"{{"type":"contact","following":true,"autofollow":true,"contact":"{node_id}"}}"#)
    );
    assert_eq!(
        content(&theirs[1]),
        format!(
            r#"{{"type":"pub","address":{{"host":"127.0.0.1","port":{},"key":"{node_id}"}}}}"#,
            node.port
        )
    );
    js.wait_seq(&node_id, 2);
    node.post("the pub after the invite");
    js.wait_seq(&node_id, 3);

    // A second redeemer of the used-up invite.
    let bob = init_home(dir.path(), "bob", &test_key(144));
    let out = shoal(&bob, ["invite", "accept", code.as_str()]);
    assert_eq!(
        one_line_error(&out, 1),
        "error: the pub refused the invite: invite has expired"
    );
    assert_eq!(stored(&bob), "");
    assert_eq!(known(&bob), "");
}

#[test]
fn shoal_invites_between_shoal_homes_in_both_forms_and_without_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = ServeNode::init(dir.path(), "host", &test_key(145));
    let host_id = host.id.to_string();
    host.start();
    // --external with a host only keeps the port the node listens on.
    let code = create(&host, &["--uses", "2", "--external", "127.0.0.1"]);
    let seed = code.rsplit(':').next().unwrap();
    let legacy = format!("127.0.0.1:{}:{host_id}~{seed}", host.port);

    // Not by the identity that made it.
    let out = host.run(["invite", "accept", code.as_str()]);
    assert!(one_line_error(&out, 2).contains("an invite of your own identity"));

    // Redeemed without a node: the pub is remembered, the next `serve`
    // dials it.
    let mut bob = ServeNode::init(dir.path(), "bob", &test_key(146));
    let bob_id = bob.id.to_string();
    let out = bob.run(["invite", "accept", code.as_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.text().trim(), host_id);
    assert_eq!(
        out.stderr.trim(),
        format!("no node is running on this home: `shoal serve` will connect to the pub {host_id}")
    );
    assert_eq!(
        known(&bob.home),
        format!("known {} invite failures=0\n", host.address())
    );
    assert_eq!(bob.count(&bob_id), 2);
    bob.start();
    host.wait_count(&bob_id, 2, REPLICATION_SECS);
    bob.wait_count(&host_id, 1, REPLICATION_SECS);

    // The same invite in the legacy form.
    let carol = init_home(dir.path(), "carol", &test_key(147));
    let out = shoal(&carol, ["invite", "accept", legacy.as_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Its two uses are gone.
    let dan = init_home(dir.path(), "dan", &test_key(148));
    let out = shoal(&dan, ["invite", "accept", code.as_str()]);
    assert_eq!(
        one_line_error(&out, 1),
        "error: the pub refused the invite: invite has expired"
    );
    assert_eq!(stored(&dan), "");
    assert_eq!(known(&dan), "");

    let follows: Vec<String> = host.log_of(&host_id).iter().map(content).collect();
    let carol_id = test_key(147).id();
    assert_eq!(
        follows,
        [
            format!(r#"{{"type":"contact","contact":"{bob_id}","following":true,"pub":true}}"#),
            format!(r#"{{"type":"contact","contact":"{carol_id}","following":true,"pub":true}}"#),
        ]
    );
}

#[test]
fn malformed_codes_are_usage_errors_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = init_home(dir.path(), "home", &test_key(149));
    let key = test_key(150).id();
    let k = key.b64();
    let seed = shoal::crypto::b64_encode(&[9; 32]);
    let truncated = &seed[..seed.len() - 4];
    let short_key = shoal::crypto::b64_encode(&[7; 31]);
    let cases = [
        (String::new(), "the invite code is empty"),
        ("hello".to_string(), "not an invite code"),
        (format!("net:127.0.0.1:8008~shs:{k}"), "has no seed"),
        (
            format!("net:127.0.0.1:8008~shs:{k}:{truncated}"),
            "bad seed",
        ),
        (format!("127.0.0.1:8008:{key}~{truncated}"), "bad seed"),
        (
            format!("net:127.0.0.1:8008~shs:{short_key}:{seed}"),
            "bad shs key",
        ),
        (
            format!("127.0.0.1:8008:@{short_key}.ed25519~{seed}"),
            "bad pub key",
        ),
        (format!("net:127.0.0.1:70000~shs:{k}:{seed}"), "bad port"),
        (format!("127.0.0.1:0:{key}~{seed}"), "bad port"),
        (format!("ws://h:80~shs:{k}:{seed}"), "no net: address"),
    ];
    for (code, reason) in &cases {
        let out = shoal(&home, ["invite", "accept", code.as_str()]);
        let line = one_line_error(&out, 2);
        assert!(line.contains(reason), "{code:?}: {line}");
    }
    let out = shoal(&home, ["invite", "create", "--uses", "0"]);
    assert!(one_line_error(&out, 2).contains("at least one use"));
    let out = shoal(&home, ["invite", "create", "--external", "h:99999"]);
    assert!(one_line_error(&out, 2).contains("is not a port"));
    let out = shoal(&home, ["invite", "create"]);
    assert_eq!(
        one_line_error(&out, 1),
        "error: invites are redeemed at a running node: start `shoal serve`"
    );
    // A well-formed code whose pub does not answer.
    let port = free_port();
    let out = shoal(
        &home,
        [
            "invite",
            "accept",
            &format!("net:127.0.0.1:{port}~shs:{k}:{seed}"),
        ],
    );
    let line = one_line_error(&out, 1);
    assert!(
        line.starts_with(&format!(
            "error: cannot reach the pub at net:127.0.0.1:{port}~shs:{k}: "
        )),
        "{line}"
    );
    assert_eq!(stored(&home), "");
    assert_eq!(known(&home), "");
}

#[test]
fn an_invite_key_may_call_only_invite_use_and_get_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(151));
    let node_id = node.id.to_string();
    node.start();
    let code: Code = create(&node, &[]).parse().unwrap();
    let last: Code = create(&node, &["--uses", "1"]).parse().unwrap();
    let feeds: Vec<FeedId> = (152..156).map(|n| test_key(n).id()).collect();
    let rt = runtime();
    rt.block_on(async {
        let h = dial(&node, &code.keys()).await;
        let refused = |m: &str| format!("method:{m} is not in list of allowed methods");
        assert_eq!(
            remote_message(h.call_async(&["whoami"], json!([])).await),
            refused("whoami")
        );
        let mut history = h
            .call_source(&["createHistoryStream"], json!([{ "id": node_id }]))
            .await
            .unwrap();
        match history.recv().await {
            Some(Err(RpcError::Remote(e))) => assert_eq!(e.message, refused("createHistoryStream")),
            other => panic!("createHistoryStream: {other:?}"),
        }
        let (_sink, mut ebt) = h
            .call_duplex(&["ebt", "replicate"], json!([{ "version": 3 }]))
            .await
            .unwrap();
        match ebt.recv().await {
            Some(Err(RpcError::Remote(e))) => assert_eq!(e.message, refused("ebt,replicate")),
            other => panic!("ebt.replicate: {other:?}"),
        }
        // The connection goes on, and is never one of the node's peers.
        let address = h.call_async(&["getAddress"], json!([])).await.unwrap();
        assert_eq!(
            address.parse_json::<String>().unwrap(),
            node.address(),
            "getAddress"
        );
        assert!(node.connected().is_empty(), "{}", node.explain());
        assert_eq!(
            remote_message(h.call_async(&["invite", "use"], json!([{}])).await),
            "feed to follow is missing"
        );
        assert_eq!(
            remote_message(
                h.call_async(&["invite", "use"], json!([{ "feed": "@nobody" }]))
                    .await
            ),
            "feed to follow is not a feed id: @nobody"
        );
        let answer = h
            .call_async(&["invite", "use"], json!([{ "feed": feeds[0].to_string() }]))
            .await
            .unwrap();
        let kvt: serde_json::Value = answer.parse_json().unwrap();
        assert_eq!(kvt["value"]["author"], node_id.as_str());
        assert_eq!(
            kvt["value"]["content"],
            json!({"type": "contact", "contact": feeds[0].to_string(), "following": true, "pub": true})
        );
        assert!(kvt["key"].is_string() && kvt["timestamp"].is_number());
        // One use only: the next feed is refused on the same connection.
        assert_eq!(
            remote_message(
                h.call_async(&["invite", "use"], json!([{ "feed": feeds[1].to_string() }]))
                    .await
            ),
            "invite has expired"
        );
        h.goodbye().await;

        // A key that is no invite here.
        let stranger = dial(&node, &test_key(156)).await;
        assert_eq!(
            remote_message(
                stranger
                    .call_async(&["invite", "use"], json!([{ "feed": feeds[1].to_string() }]))
                    .await
            ),
            "invite not found"
        );
        stranger.goodbye().await;

        // Two connections redeeming the last use at once: one wins.
        let last_keys = last.keys();
        let (a, b) = tokio::join!(dial(&node, &last_keys), dial(&node, &last_keys));
        let (ra, rb) = tokio::join!(
            a.call_async(&["invite", "use"], json!([{ "feed": feeds[2].to_string() }])),
            b.call_async(&["invite", "use"], json!([{ "feed": feeds[3].to_string() }])),
        );
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{ra:?} {rb:?}");
        let lost = if ra.is_ok() { rb } else { ra };
        assert_eq!(remote_message(lost), "invite has expired");
        a.goodbye().await;
        b.goodbye().await;
    });
    // Two follows in all, one per use.
    let follows = node.log_of(&node_id);
    assert_eq!(follows.len(), 2, "{}", node.explain());
}
