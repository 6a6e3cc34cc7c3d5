//! LAN discovery on a virtual LAN each test makes itself: two network
//! namespaces joined by a veth pair (10.N.0.1/24 and 10.N.0.2/24, the
//! default route through it), with nothing else in them, so that no packet
//! can leave the pair.
//!
//! - Two shoal nodes, each started in its own namespace with no peer
//!   given, find each other by their broadcasts, connect and replicate the
//!   feeds they follow; neither writes the other into its peer table.
//! - shoal and the real `ssb-server` with its `ssb-local` plugin find each
//!   other (shoal dials: `ssb-server` 16 never dials LAN peers itself) and
//!   replicate both ways. The server gets a shim preloaded
//!   (`tests/js/ip-shim.js`) for its `ip.isPrivate(undefined)` crash.
//! - A neighbour flooding the port with a thousand made-up peers and junk:
//!   the node stays up, answers, says so in a log line, and starts at most
//!   the picker's dial budget of dials.
//!
//! These need root (network namespaces); they fail, never skip, without it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::test_key;
use crate::jsenv::{JsPeer, run};
use crate::nodes::{ServeNode, wait_for};

/// The port every node listens on: each has a namespace of its own.
const PORT: u16 = 8008;

/// Network namespaces a test makes, each with its loopback up; deleted on
/// drop, whatever happened.
pub struct Namespaces {
    /// Their names, in the order asked.
    pub names: Vec<String>,
}

impl Namespaces {
    /// Makes `shoal-TAG-PID-NAME` for each of `names`.
    pub fn new(tag: &str, names: &[&str]) -> Namespaces {
        let id = std::process::id();
        let made = Namespaces {
            names: names
                .iter()
                .map(|n| format!("shoal-{tag}-{id}-{n}"))
                .collect(),
        };
        for ns in &made.names {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        made
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// Two network namespaces joined by a veth pair.
struct Lan {
    ns: Namespaces,
    subnet: u8,
}

impl Lan {
    /// Makes the pair for subnet 10.`subnet`.0.0/24.
    fn new(tag: &str, subnet: u8) -> Lan {
        let lan = Lan {
            ns: Namespaces::new(tag, &["a", "b"]),
            subnet,
        };
        let ns = &lan.ns.names;
        ip(&[
            "link", "add", "lan0", "netns", &ns[0], "type", "veth", "peer", "name", "lan0",
            "netns", &ns[1],
        ]);
        for (i, ns) in ns.iter().enumerate() {
            let addr = format!("{}/24", lan.ip(i));
            ip(&["-n", ns, "addr", "add", &addr, "brd", "+", "dev", "lan0"]);
            ip(&["-n", ns, "link", "set", "lan0", "up"]);
            // As on a real LAN: ssb-local sends to 255.255.255.255, which
            // goes out by the default route (here the pair's only link).
            ip(&["-n", ns, "route", "add", "default", "dev", "lan0"]);
        }
        lan
    }

    /// The address of host `i` (0 or 1).
    fn ip(&self, i: usize) -> String {
        format!("10.{}.0.{}", self.subnet, i + 1)
    }
}

/// Runs `ip ARGS…` (iproute2), failing the test when it fails.
#[track_caller]
pub fn ip(args: &[&str]) {
    run(
        Command::new("ip").args(args),
        "iproute2 (these tests need root for network namespaces)",
    );
}

/// Whether `node` runs a connection with `peer`.
fn connected_to(node: &ServeNode, peer: &str) -> bool {
    node.connected().iter().any(|p| p == peer)
}

/// The addresses in the node's peer table.
fn table(node: &ServeNode) -> Vec<String> {
    node.peers()["known"]
        .as_array()
        .map(|k| {
            k.iter()
                .filter_map(|r| r["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_shoal_nodes_on_a_lan_find_each_other_and_replicate() {
    let lan = Lan::new("two", 77);
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0x61));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0x62));
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    a.follow(&b_id);
    b.follow(&a_id);
    a.post("from a, on the LAN");
    b.post("from b, on the LAN");
    a.in_netns(&lan.ns.names[0], &lan.ip(0), PORT);
    b.in_netns(&lan.ns.names[1], &lan.ip(1), PORT);
    a.start();
    b.start();
    wait_for(
        30,
        Duration::from_millis(200),
        "the nodes to find each other on the LAN",
        || (connected_to(&a, &b_id) || connected_to(&b, &a_id)).then_some(()),
        || format!("{}\n{}", a.explain(), b.explain()),
    );
    a.wait_count(&b_id, 2, 30);
    b.wait_count(&a_id, 2, 30);
    // Heard on the LAN, never remembered.
    assert!(table(&a).is_empty(), "{:?}", table(&a));
    assert!(table(&b).is_empty(), "{:?}", table(&b));
    // `shoal address` names the LAN address of a node listening on every
    // address.
    assert_eq!(a.ok(["address"]).text().trim(), a.address());
}

#[test]
fn shoal_and_ssb_server_on_a_lan_find_each_other_and_replicate_both_ways() {
    let lan = Lan::new("js", 78);
    let kit = crate::jsenv::refpeer();
    let shim = crate::jsenv::repo_dir().join("tests/js/ip-shim.js");
    let preload = format!("--require={}", shim.display());
    let js_ip = lan.ip(1);
    let js = JsPeer::start_in(
        Some(&lan.ns.names[1]),
        PORT,
        "lanjs",
        300,
        &[
            ("NODE_OPTIONS", preload.as_str()),
            ("SHOAL_REFPEER", kit.to_str().unwrap()),
        ],
        |c| {
            // ssb-local on: it announces its `private` address each second.
            c["local"] = true.into();
            c["gossip"]["local"] = true.into();
            c["connections"]["incoming"]["net"] = serde_json::json!([
                { "host": js_ip, "port": PORT, "scope": ["local", "private", "public"], "transform": "shs" },
                { "host": "127.0.0.1", "port": PORT, "scope": "device", "transform": "shs" }
            ]);
        },
    );
    let js_id = js.info("id");
    let dir = tempfile::tempdir().unwrap();
    let mut alice = ServeNode::init(dir.path(), "alice", &test_key(0x63));
    let alice_id = alice.id.to_string();
    alice.follow(&js_id);
    alice.post("alice on the LAN");
    js.sbot(&[
        "publish",
        "--type",
        "contact",
        "--contact",
        &alice_id,
        "--following",
    ]);
    js.sbot(&[
        "publish",
        "--type",
        "post",
        "--text",
        "ssb-server on the LAN",
    ]);
    alice.in_netns(&lan.ns.names[0], &lan.ip(0), PORT);
    alice.start();
    wait_for(
        30,
        Duration::from_millis(200),
        "shoal to find ssb-server on the LAN",
        || connected_to(&alice, &js_id).then_some(()),
        || alice.explain(),
    );
    alice.wait_count(&js_id, 2, 30);
    js.wait_seq(&alice_id, 2);
    alice.post("alice, later");
    js.wait_seq(&alice_id, 3);
    assert!(table(&alice).is_empty(), "{:?}", table(&alice));
    // The server is still up (the shim holds) and heard shoal: its status
    // lists it among its LAN peers.
    let status = js.sbot(&["status"]);
    assert!(
        status.contains(&alice_id),
        "ssb-server heard shoal's announcement: {status}"
    );
}

#[test]
fn a_lan_flood_keeps_the_node_up_and_its_dials_within_the_budget() {
    let lan = Lan::new("flood", 79);
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0x64));
    node.in_netns(&lan.ns.names[0], &lan.ip(0), PORT);
    node.start();
    let kit = crate::jsenv::refpeer();
    let flood = crate::jsenv::repo_dir().join("tests/js/lan-flood.js");
    let neighbour = lan.ip(1);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lan.ns.names[1], "timeout", "60", "node"])
        .arg(&flood)
        .args([neighbour.as_str(), &lan.ip(0), &PORT.to_string(), "1000"])
        .current_dir(kit)
        .stdin(Stdio::null());
    run(&mut cmd, "tests/js/lan-flood.js");
    wait_for(
        90,
        Duration::from_millis(500),
        "the node to say it ignored LAN packets",
        || {
            node.log_text()
                .contains("LAN packets (the last:")
                .then_some(())
        },
        || node.log_tail(30),
    );
    // Two rounds of the picker later: still up, answering, and the dials
    // to made-up peers within the budget (nothing listens at them).
    std::thread::sleep(Duration::from_secs(5));
    assert!(node.running(), "{}", node.log_tail(30));
    assert_eq!(node.status()["id"], node.id.to_string());
    let prefix = format!("net:{neighbour}:");
    let dials = node
        .log_text()
        .lines()
        .filter(|l| l.contains(&prefix) && l.contains("failed dials"))
        .count();
    assert!(
        (1..=shoal::dialer::PICKER_DIALS_PER_MINUTE).contains(&dials),
        "{dials} dials:\n{}",
        node.log_tail(40)
    );
    assert!(table(&node).is_empty(), "{:?}", table(&node));
}
