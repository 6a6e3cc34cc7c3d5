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
//! Clients that must come from a given loopback address bind it before
//! connecting (Linux routes all of 127.0.0.0/8 to the loopback interface).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use shoal::crypto::Keypair;
use shoal::net::shs::{self, Handshaked};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpSocket, TcpStream};

use crate::common::test_key;
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, wait_for};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

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
    rt.block_on(async {
        let mut held = Vec::new();
        for i in 0..4 {
            let h = handshake_from("127.0.0.1", &node, &test_key(0xb0 + i)).await;
            held.push(h.unwrap_or_else(|e| panic!("connection {i} from 127.0.0.1: {e}")));
        }
        let fifth = handshake_from("127.0.0.1", &node, &test_key(0xb4)).await;
        assert!(fifth.is_err(), "a fifth socket from 127.0.0.1 was let in");
        let other = test_key(0xb5);
        let served = handshake_from("127.0.0.2", &node, &other).await;
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
            || rt_handshake_ok(&node, &test_key(0xb6)).then_some(()),
            || node.explain(),
        );
    });
}

/// Whether a handshake from 127.0.0.1 succeeds, run on its own runtime
/// (for polling from inside another).
fn rt_handshake_ok(node: &ServeNode, keys: &Keypair) -> bool {
    std::thread::scope(|s| {
        s.spawn(|| {
            runtime()
                .block_on(handshake_from("127.0.0.1", node, keys))
                .is_ok()
        })
        .join()
        .unwrap()
    })
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
    let since = |n: &ServeNode| -> Option<u64> {
        n.peers()["connected"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == f.as_str())?["connected_secs"]
            .as_u64()
    };
    wait_for(
        30,
        Duration::from_millis(250),
        "the quiet connection to outlive three idle timeouts",
        || (since(&node)? >= 7).then_some(()),
        || node.explain(),
    );
}
