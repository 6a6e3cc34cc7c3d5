//! Rooms on loopback: a shoal node runs a room (`room = "…"` in its
//! config, as `shoal room serve` does), two shoal nodes that know only the
//! room's address join it, meet through tunnels it relays, and replicate
//! both ways; the room stores none of their messages. Against the room on
//! the wire: a tunnel to a feed not attending, to oneself, or with an
//! `origin` (a tunnel inside a tunnel) is refused with an error, not a
//! hang.

use std::time::Duration;

use serde_json::json;
use shoal::rpc;

use crate::common::test_key;
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, wait_for};

#[test]
fn two_nodes_meet_through_a_shoal_room_and_replicate_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0xd0));
    room.configure("room", "\"test room\"");
    // Every item the room relays, in hex, in its log.
    room.log_filter = "info,shoal=debug,shoal::room=trace".into();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0xd1));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0xd2));
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    a.follow(&b_id);
    b.follow(&a_id);
    a.post("a, through the room");
    b.post("b, through the room");
    room.start();
    a.start();
    b.start();
    a.ok(["room", "join", room.address().as_str()]);
    b.ok(["room", "join", room.address().as_str()]);
    a.wait_count(&b_id, 2, 30);
    b.wait_count(&a_id, 2, 30);
    // Live, through the same tunnel.
    a.post("a, later");
    b.wait_count(&a_id, 3, 30);
    let tunnel = a
        .connection(&b_id)
        .unwrap_or_else(|| panic!("a connection to b: {}", a.explain()));
    let addr = tunnel["addr"].as_str().unwrap();
    assert!(
        addr.starts_with(&format!("tunnel:{}:{b_id}~shs:", room.id)),
        "{addr}"
    );
    // Who attends, as a sees it.
    let listed = a.ok(["room", "list"]).text();
    assert_eq!(
        listed.trim(),
        format!("{} 1 attending", room.id),
        "{listed}"
    );
    let attendants = a.ok(["room", "attendants"]).text();
    assert!(
        attendants
            .lines()
            .any(|l| l.contains(&b_id) && l.ends_with("following connected")),
        "{attendants}"
    );
    // The room holds nothing of theirs, and what it relayed is
    // ciphertext: none of their posts' text, message ids, feed ids or keys.
    let status = room.status();
    assert_eq!(status["messages"], 0, "{status}");
    let log = room.log_text();
    // Each direction's bytes in order, so that nothing straddling two
    // items is missed.
    let direction = |dir: &str| -> String {
        log.lines()
            .filter_map(|l| l.split_once("relayed ").map(|(_, r)| r))
            .filter_map(|r| r.split_once(' '))
            .filter(|(d, _)| *d == dir)
            .map(|(_, hex)| hex.trim())
            .collect()
    };
    let (there, back) = (direction(">"), direction("<"));
    // Not a vacuous check: the room relayed at least the messages' bytes.
    let carried: usize = [&a, &b]
        .iter()
        .flat_map(|n| n.log_of(&n.id.to_string()))
        .map(|l| l.value_raw.len())
        .sum();
    assert!(
        (there.len() + back.len()) / 2 >= carried,
        "the room relayed {} bytes, the messages are {carried}",
        (there.len() + back.len()) / 2
    );
    let mut secrets: Vec<Vec<u8>> = vec![
        b"a, through the room".to_vec(),
        b"b, through the room".to_vec(),
        b"a, later".to_vec(),
        a.id.0.to_vec(),
        b.id.0.to_vec(),
        a_id.clone().into_bytes(),
        b_id.clone().into_bytes(),
    ];
    for node in [&a, &b] {
        for line in node.log_of(&node.id.to_string()) {
            secrets.push(line.key.clone().into_bytes());
        }
    }
    for secret in secrets {
        let hex = hex::encode(&secret);
        assert!(
            !there.contains(&hex) && !back.contains(&hex),
            "the room saw {:?} in the clear",
            String::from_utf8_lossy(&secret)
        );
    }
}

#[test]
fn tunnels_to_the_absent_to_oneself_or_inside_a_tunnel_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0xd3));
    room.configure("room", "\"test room\"");
    room.start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let me = test_key(0xd4);
        let addr = room.address().parse().unwrap();
        let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), &me)
            .await
            .unwrap();
        let (rpc, _incoming, _task) = rpc::start(r, w, rpc::Options::default());
        let meta = rpc
            .call_async(&["room", "metadata"], json!([]))
            .await
            .unwrap();
        let meta: serde_json::Value = match meta {
            rpc::Body::Json(b) => serde_json::from_slice(&b).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(meta["name"], "test room");
        let absent = test_key(0xd5).id().to_string();
        for (args, why) in [
            (
                json!({"portal": room.id.to_string(), "target": absent}),
                "not attending",
            ),
            (
                json!({"portal": room.id.to_string(), "target": me.id().to_string()}),
                "yourself",
            ),
            (
                json!({"portal": room.id.to_string(), "target": absent, "origin": absent}),
                "inside a tunnel",
            ),
        ] {
            let (_sink, mut source) = rpc
                .call_duplex(&["tunnel", "connect"], json!([args]))
                .await
                .unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), source.recv())
                .await
                .expect("an answer, not a hang");
            let err = match got {
                Some(Err(e)) => e.to_string(),
                other => panic!("{args}: {other:?}"),
            };
            assert!(err.contains(why), "{args}: {err}");
        }
    });
    wait_for(
        5,
        Duration::from_millis(100),
        "the room to keep serving",
        || (room.status()["id"] == room.id.to_string()).then_some(()),
        || room.log_tail(20),
    );
}
