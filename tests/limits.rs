//! Resource limits against real nodes: a peer over `peer_rate` is slowed,
//! a feed past `max_feed_bytes` stops growing, and past `max_bytes_per_day`
//! peers are dropped; the node keeps answering and `shoal status` shows
//! what the limits did. A feed past `max_feed_bytes_per_day` stops growing
//! from peers for the day, while the same messages imported by the user
//! through the node are taken; a new home has non-zero defaults for
//! `peer_rate` and `max_feed_bytes_per_day`.

use std::time::Duration;

use shoal::store::Store;

use crate::cli::write_lines;
use crate::common::test_key;
use crate::nodes::{ServeNode, wait_for};

fn limits(node: &ServeNode) -> serde_json::Value {
    node.status()["limits"].clone()
}

#[test]
fn peers_over_the_limits_are_slowed_or_dropped_and_feeds_capped() {
    let dir = tempfile::tempdir().unwrap();
    let ka = test_key(120);
    let mut a = ServeNode::init(dir.path(), "a", &ka);
    {
        let store = Store::open_as(&a.home.join("store.redb"), &ka).unwrap();
        for i in 0..600 {
            let text = format!("post number {i} of a feed that is longer than its readers allow");
            store
                .append_local(&ka, shoal::social::compose::post(&text), None)
                .unwrap();
        }
    }
    let ia = a.id.to_string();
    let total = 600;
    // B takes at most 200 messages a second from a peer and 50 kB of a feed.
    let mut b = ServeNode::init(dir.path(), "b", &test_key(121));
    b.configure("peer_rate", "200");
    b.configure("max_feed_bytes", "50000");
    b.follow(&ia);
    // C takes at most 30 kB a day from all peers.
    let mut c = ServeNode::init(dir.path(), "c", &test_key(122));
    c.configure("max_bytes_per_day", "30000");
    c.follow(&ia);
    // D has no limits: it gets everything.
    let mut d = ServeNode::init(dir.path(), "d", &test_key(123));
    d.configure("peer_rate", "400");
    d.follow(&ia);
    for n in [&mut a, &mut b, &mut c, &mut d] {
        n.start();
    }
    for n in [&b, &c, &d] {
        n.ok(["connect", a.address().as_str()]);
    }
    wait_for(
        60,
        Duration::from_millis(200),
        "B to cap A's feed",
        || (limits(&b)["feeds_capped"] == 1).then_some(()),
        || b.explain(),
    );
    let held = b.count(&ia);
    assert!(held > 0 && held < total, "B holds {held} of {total}");
    let bytes: usize = b.log_of(&ia).iter().map(|l| l.value_raw.len()).sum();
    assert!(bytes <= 50_000, "B stores {bytes} bytes of A's feed");
    wait_for(
        60,
        Duration::from_millis(200),
        "C to drop the peer",
        || (limits(&c)["peers_dropped"].as_u64() >= Some(1)).then_some(()),
        || c.explain(),
    );
    let l = limits(&c);
    assert!(l["bytes_today"].as_u64().unwrap() <= 30_000, "{l}");
    assert!(c.count(&ia) < total);
    // D is slowed, not dropped, and gets all of it.
    d.wait_count(&ia, total, 60);
    let l = limits(&d);
    assert!(l["peers_slowed"].as_u64().unwrap() >= 1, "{l}");
    assert_eq!(l["peers_dropped"], 0);
    let text = d.ok(["status"]).text();
    assert!(text.contains("per peer 400 msg/s"), "{text}");
}

#[test]
fn a_feed_past_its_bytes_for_the_day_stops_growing_from_peers() {
    let dir = tempfile::tempdir().unwrap();
    let ka = test_key(124);
    let mut a = ServeNode::init(dir.path(), "a", &ka);
    let total = 400;
    {
        let store = Store::open_as(&a.home.join("store.redb"), &ka).unwrap();
        for i in 0..total {
            let text = format!("post number {i} of a feed that grows faster than a day allows");
            store
                .append_local(&ka, shoal::social::compose::post(&text), None)
                .unwrap();
        }
    }
    let ia = a.id.to_string();
    let mut b = ServeNode::init(dir.path(), "b", &test_key(125));
    // The defaults of a new home are limits, not "none".
    let config = std::fs::read_to_string(b.home.join("config.toml")).unwrap();
    assert!(config.contains("peer_rate = 100000"), "{config}");
    assert!(
        config.contains("max_feed_bytes_per_day = 67108864"),
        "{config}"
    );
    b.configure("max_feed_bytes_per_day", "20000");
    b.follow(&ia);
    a.start();
    b.start();
    let text = b.ok(["status"]).text();
    assert!(
        text.contains("per peer 100000 msg/s") && text.contains("per feed a day 20000 bytes"),
        "{text}"
    );
    b.ok(["connect", a.address().as_str()]);
    wait_for(
        60,
        Duration::from_millis(200),
        "B to cap A's feed for the day, holding some of it",
        // (Its newest 50 are refused whole, being over the day's bytes:
        // the feed then comes from its first message until the cap.)
        || (limits(&b)["feeds_capped_today"] == 1 && b.count(&ia) > 0).then_some(()),
        || b.explain(),
    );
    // Nothing more comes once capped.
    std::thread::sleep(Duration::from_millis(500));
    let held = b.count(&ia);
    let bytes: usize = b.log_of(&ia).iter().map(|l| l.value_raw.len()).sum();
    assert!(held > 0 && held < total, "B holds {held} of {total}");
    assert!(bytes <= 20_000, "B took {bytes} bytes of A's feed today");
    assert_eq!(limits(&b)["feeds_capped"], 0, "no cap on the feed in all");
    // What the user imports is not a peer's doing: all of it is taken.
    let dump = dir.path().join("a.jsonl");
    let lines: Vec<Vec<u8>> = a.log_of(&ia).into_iter().map(|l| l.value_raw).collect();
    write_lines(&dump, &lines);
    b.ok([std::ffi::OsStr::new("import"), dump.as_os_str()]);
    assert_eq!(b.count(&ia), total);
}
