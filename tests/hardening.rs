//! Node hardening, against the real binary and real sockets on loopback.
//!
//! - The home is its owner's alone: `shoal init` makes the directory 0700
//!   and the secret, config and store 0600; the control socket of a running
//!   node is 0600; exports written into the home are 0600, whether the node
//!   runs or not.
//! - Connection slots: one address holds at most 4 sockets (the default
//!   `max_connections_per_ip`), the fifth from it is closed before the
//!   handshake while another address (127.0.0.2) is served; incoming
//!   connections never take the quarter of `max_connections` kept for the
//!   node's own dials; a connection silent for `idle_timeout` is closed,
//!   while two nodes with nothing to say keep theirs open by pinging.
//!
//! - `pub` announcements: a node dials the pub a feed it follows announced,
//!   and neither one announced by a stranger nor by a feed two hops away;
//!   without `dial_private` it dials no pub at a loopback address, given as
//!   an IP or as a name that resolves to one, while `shoal connect` to the
//!   same address works; failed dials are counted in memory and never
//!   written to the store; at most 12 new dials of the peer picker start in
//!   a minute.
//!
//! Clients that must come from a given loopback address bind it before
//! connecting (Linux routes all of 127.0.0.0/8 to the loopback interface).
//! Announcements reach a node by `shoal import` of the announcers' feeds,
//! built with the library.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use shoal::crypto::{FeedId, Keypair};
use shoal::feed::{self, Value, json};
use shoal::net::shs::{self, Handshaked};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpSocket, TcpStream};

use crate::cli::{next_msg, write_lines};
use crate::common::runtime;
use crate::common::test_key;
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, free_port, wait_for};

/// A secret handshake with `node` as `keys`, from the loopback address
/// `from`; the error says where it failed.
async fn handshake_from(
    from: &str,
    node: &ServeNode,
    keys: &Keypair,
) -> Result<Handshaked<TcpStream>, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket
        .bind(local)
        .map_err(|e| format!("bind {from}: {e}"))?;
    let to: SocketAddr = format!("127.0.0.1:{}", node.port).parse().unwrap();
    let stream = socket.connect(to).await.map_err(|e| e.to_string())?;
    let net_key = main_net_key();
    let handshake = shs::client(stream, &net_key, keys, &node.id);
    match tokio::time::timeout(Duration::from_secs(15), handshake).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the handshake timed out".into()),
    }
}

/// Waits until the node closes `stream` (reads to its end), at most `secs`.
async fn closed_by_node(stream: &mut TcpStream, secs: u64) -> Result<(), String> {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(secs), read_all)
        .await
        .map_err(|_| format!("still open after {secs} s"))
}

fn assert_logged(node: &ServeNode, parts: &[&str]) {
    let log = node.log_text();
    assert!(
        log.lines().any(|l| parts.iter().all(|p| l.contains(p))),
        "no line of the node's log has all of {parts:?}:\n{}",
        node.log_tail(40)
    );
}

/// A file's permission bits, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:o}", meta.permissions().mode() & 0o777)
}

#[test]
fn the_home_and_its_control_socket_are_the_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xa0));
    let home = node.home.clone();
    assert_eq!(mode(&home), "700", "the home directory");
    for f in ["secret", "config.toml", "store.redb"] {
        assert_eq!(mode(&home.join(f)), "600", "{f}");
    }
    node.post("something to export");
    node.start();
    assert_eq!(mode(&node.socket()), "600", "the control socket");
    // An export through the running node, into the home.
    let through_node = home.join("through-node.jsonl");
    node.ok([std::ffi::OsStr::new("export"), through_node.as_os_str()]);
    assert_eq!(mode(&through_node), "600", "an export through the node");
    node.stop();
    // And one with no node running.
    let direct = home.join("direct.jsonl");
    node.ok([std::ffi::OsStr::new("export"), direct.as_os_str()]);
    assert_eq!(mode(&direct), "600", "an export without a node");
    assert_eq!(
        std::fs::read(&direct).unwrap(),
        std::fs::read(&through_node).unwrap()
    );
    for f in ["secret", "config.toml", "store.redb"] {
        assert_eq!(mode(&home.join(f)), "600", "{f} after serving");
    }
}

#[test]
fn one_address_holds_four_sockets_and_another_is_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xa1));
    node.start();
    let rt = runtime();
    let mut held = rt.block_on(async {
        let mut held = Vec::new();
        for i in 0..4 {
            let h = handshake_from("127.0.0.1", &node, &test_key(0xb0 + i)).await;
            held.push(h.unwrap_or_else(|e| panic!("connection {i} from 127.0.0.1: {e}")));
        }
        let fifth = handshake_from("127.0.0.1", &node, &test_key(0xb4)).await;
        assert!(fifth.is_err(), "a fifth socket from 127.0.0.1 was let in");
        held
    });
    let other = test_key(0xb5);
    let served = rt.block_on(handshake_from("127.0.0.2", &node, &other));
    let _served = served.unwrap_or_else(|e| panic!("127.0.0.2 was refused: {e}"));
    let other = other.id().to_string();
    wait_for(
        20,
        Duration::from_millis(100),
        "the node to list the peer at 127.0.0.2",
        || node.connected().contains(&other).then_some(()),
        || node.explain(),
    );
    assert_logged(
        &node,
        &["127.0.0.1", "refused, 4 connections open from its address"],
    );
    // Once one of the four leaves, 127.0.0.1 is let in again.
    drop(held.pop());
    wait_for(
        20,
        Duration::from_millis(200),
        "a new socket from 127.0.0.1 to be let in",
        || {
            rt.block_on(handshake_from("127.0.0.1", &node, &test_key(0xb6)))
                .ok()
        },
        || node.explain(),
    );
    drop(held);
}

#[test]
fn incoming_connections_leave_the_node_room_to_dial() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xa2));
    let mut friend = ServeNode::init(dir.path(), "friend", &test_key(0xa3));
    // 4 in all: 3 for incoming connections, 1 kept for dialling.
    node.configure("max_connections", "4");
    node.start();
    friend.start();
    let rt = runtime();
    rt.block_on(async {
        // Three strangers from three addresses fill the incoming slots.
        let mut held = Vec::new();
        for i in 0..3u8 {
            let from = format!("127.0.0.{}", 2 + i);
            let h = handshake_from(&from, &node, &test_key(0xc0 + i)).await;
            held.push(h.unwrap_or_else(|e| panic!("stranger from {from}: {e}")));
        }
        wait_for(
            20,
            Duration::from_millis(100),
            "three incoming connections",
            || (node.connected().len() == 3).then_some(()),
            || node.explain(),
        );
        // A fourth stranger is let through the handshake, then closed.
        let extra = test_key(0xc3);
        let mut h = handshake_from("127.0.0.5", &node, &extra)
            .await
            .expect("the handshake of the fourth stranger");
        closed_by_node(&mut h.stream, 15)
            .await
            .expect("the fourth incoming connection is closed");
        assert_logged(
            &node,
            &[
                &extra.id().to_string(),
                "refused, 3 incoming connections open",
            ],
        );
        // The node still dials the peer it chooses.
        node.ok(["connect", friend.address().as_str()]);
        let f = friend.id.to_string();
        assert!(node.connected().contains(&f), "{}", node.explain());
        drop(held);
    });
}

#[test]
fn silent_connections_close_and_quiet_peers_stay_connected() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xa4));
    let mut friend = ServeNode::init(dir.path(), "friend", &test_key(0xa5));
    node.configure("idle_timeout", "2");
    friend.configure("idle_timeout", "2");
    node.start();
    friend.start();
    let rt = runtime();
    rt.block_on(async {
        // A client that completes the handshake and then says nothing,
        // nor answers anything, is closed once the idle timeout passes.
        let t0 = Instant::now();
        let mut h = handshake_from("127.0.0.1", &node, &test_key(0xd0))
            .await
            .expect("the silent client's handshake");
        closed_by_node(&mut h.stream, 20)
            .await
            .expect("a silent connection is closed");
        assert!(
            t0.elapsed() >= Duration::from_secs(2),
            "closed before its idle timeout: {:?}",
            t0.elapsed()
        );
    });
    // Two nodes with nothing to say keep their connection: they ping.
    friend.ok(["connect", node.address().as_str()]);
    let f = friend.id.to_string();
    let since = |n: &ServeNode| -> Option<u64> { n.connection(&f)?["connected_secs"].as_u64() };
    wait_for(
        30,
        Duration::from_millis(250),
        "the quiet connection to outlive three idle timeouts",
        || (since(&node)? >= 7).then_some(()),
        || node.explain(),
    );
}

/// `{type: pub, address: {host, port, key}}`.
fn pub_at(host: &str, port: u16, key: &FeedId) -> Value {
    let text =
        format!(r#"{{"type":"pub","address":{{"host":"{host}","port":{port},"key":"{key}"}}}}"#);
    json::parse(text.as_bytes()).unwrap()
}

/// `{type: contact, contact, following: true}`.
fn follow(who: &FeedId) -> Value {
    let text = format!(r#"{{"type":"contact","contact":"{who}","following":true}}"#);
    json::parse(text.as_bytes()).unwrap()
}

/// Imports into `node` (not running) a feed of `keys` with these contents.
fn give_feed(node: &ServeNode, keys: &Keypair, contents: Vec<Value>) {
    let mut state = None;
    let mut lines = Vec::new();
    for c in contents {
        let v = next_msg(keys, state.as_ref(), c);
        let m = feed::validate(state.as_ref(), None, v.clone()).expect("a valid message");
        state = Some(m.state());
        lines.push(json::to_compact(&v));
    }
    let file = node
        .home
        .with_extension(format!("{}.jsonl", keys.id().b64().replace('/', "_")));
    write_lines(&file, &lines);
    node.ok([std::ffi::OsStr::new("import"), file.as_os_str()]);
}

/// The known peers of a node: address -> (stored record, failed dials
/// the running node counted).
fn known(node: &ServeNode) -> Vec<(String, serde_json::Value, u64)> {
    node.peers()["known"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["address"].as_str().unwrap().to_string(),
                k["record"].clone(),
                k["dial_failures"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn pubs_announced_by_a_followed_feed_are_dialled_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xe0));
    let mut near = ServeNode::init(dir.path(), "near", &test_key(0xe1));
    let mut far = ServeNode::init(dir.path(), "far", &test_key(0xe2));
    let mut odd = ServeNode::init(dir.path(), "odd", &test_key(0xe3));
    let (friend, hop2, stranger) = (test_key(0xe4), test_key(0xe5), test_key(0xe6));
    node.follow(&friend.id().to_string());
    // The friend (hop 1) announces `near` and follows hop2, who announces
    // `far`; a stranger announces `odd`.
    give_feed(
        &node,
        &friend,
        vec![follow(&hop2.id()), pub_at("127.0.0.1", near.port, &near.id)],
    );
    give_feed(&node, &hop2, vec![pub_at("127.0.0.1", far.port, &far.id)]);
    give_feed(
        &node,
        &stranger,
        vec![pub_at("127.0.0.1", odd.port, &odd.id)],
    );
    node.configure("dial_private", "true");
    for n in [&mut near, &mut far, &mut odd, &mut node] {
        n.start();
    }
    let near_id = near.id.to_string();
    wait_for(
        30,
        Duration::from_millis(200),
        "the node to dial the pub its friend announced",
        || node.connected().contains(&near_id).then_some(()),
        || node.explain(),
    );
    // More than one round of the pub dialler later, still only `near`.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(node.connected(), vec![near_id], "{}", node.explain());
    for other in [&far, &odd] {
        assert!(other.connected().is_empty(), "{}", other.explain());
        let addr = format!("127.0.0.1:{}", other.port);
        assert!(
            !node.log_text().contains(&addr),
            "the node dialled {}:\n{}",
            other.name,
            node.log_tail(30)
        );
    }
}

#[test]
fn pubs_at_local_addresses_are_not_dialled_and_failures_cost_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xe8));
    let mut host = ServeNode::init(dir.path(), "pub", &test_key(0xe9));
    let friend = test_key(0xea);
    node.follow(&friend.id().to_string());
    // The same pub, once as an IP, once as a name that resolves to it.
    give_feed(
        &node,
        &friend,
        vec![
            pub_at("127.0.0.1", host.port, &host.id),
            pub_at("localhost", host.port, &host.id),
        ],
    );
    let by_ip = format!("net:127.0.0.1:{}~shs:{}", host.port, host.id.b64());
    let by_name = format!("net:localhost:{}~shs:{}", host.port, host.id.b64());
    host.start();
    node.start();
    for addr in [&by_ip, &by_name] {
        wait_for(
            30,
            Duration::from_millis(200),
            &format!("the node to refuse to dial {addr}"),
            || {
                node.log_text()
                    .lines()
                    .any(|l| l.contains(addr.as_str()) && l.contains("dial_private = true"))
                    .then_some(())
            },
            || node.explain(),
        );
    }
    assert!(node.connected().is_empty(), "{}", node.explain());
    assert!(host.connected().is_empty(), "{}", host.explain());
    // The running node counts the failures; the store has none of them.
    let peers = known(&node);
    for addr in [&by_ip, &by_name] {
        let (_, rec, failures) = peers.iter().find(|(a, ..)| a == addr).unwrap();
        assert!(*failures >= 1, "{addr}: {peers:?}");
        assert_eq!(rec["failures"], 0, "{addr}: {peers:?}");
        assert_eq!(rec["source"], "pub");
    }
    // The user may still connect there: their choice.
    node.ok(["connect", by_ip.as_str()]);
    assert_eq!(node.connected(), vec![host.id.to_string()]);
    node.stop();
    let stored = known(&node);
    let (_, rec, _) = stored.iter().find(|(a, ..)| *a == by_name).unwrap();
    assert_eq!(
        rec["failures"], 0,
        "failed dials are not written: {stored:?}"
    );
    let (_, rec, _) = stored.iter().find(|(a, ..)| *a == by_ip).unwrap();
    assert_eq!(
        rec["source"], "connect",
        "connecting makes it the user's peer"
    );
}

#[test]
fn at_most_twelve_new_pub_dials_start_in_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xec));
    let friend = test_key(0xed);
    node.follow(&friend.id().to_string());
    // Sixteen pubs that refuse every connection (nothing listens there).
    let dead: Vec<Value> = (0..16u8)
        .map(|i| pub_at("127.0.0.1", free_port(), &test_key(0x40 + i).id()))
        .collect();
    give_feed(&node, &friend, dead);
    node.configure("dial_private", "true");
    node.start();
    let dialled = |node: &ServeNode| -> u64 { known(node).iter().map(|(_, _, f)| f).sum() };
    wait_for(
        30,
        Duration::from_millis(200),
        "twelve failed pub dials",
        || (dialled(&node) >= 12).then_some(()),
        || node.explain(),
    );
    // More rounds of the picker: no thirteenth within the minute.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(dialled(&node), 12, "{:?}", known(&node));
    node.stop();
    assert!(
        known(&node).iter().all(|(_, rec, _)| rec["failures"] == 0),
        "failed dials are not written: {:?}",
        known(&node)
    );
}
