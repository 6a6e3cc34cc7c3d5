//! Newest first, on real nodes: a followed feed we hold nothing of arrives
//! newest messages first, then its older history, downwards, until it is
//! whole and identical to the peer's; and a peer (written with the
//! library) that serves a newest range that does not chain, is of another
//! feed, is less than it claims, or older history that forks has the range
//! discarded, is named with the reason, and nothing of the range is stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value as Json, json};
use shoal::crypto::{FeedId, Keypair};
use shoal::feed::VerifiedMsg;
use shoal::rpc::{self, Body, Responder};

use crate::common::test_key;
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, wait_for};

/// `n` posts of `kp`, each a valid message of its feed.
fn feed_of(kp: &Keypair, n: usize, tag: &str) -> Vec<VerifiedMsg> {
    let ts = |s: usize| 1_000_001.0 + s as f64;
    crate::dumps::sign_feed(kp, n, ts, |s, _| {
        shoal::social::compose::post(&format!("{tag} post {}", s + 1))
    })
}

fn line(m: &VerifiedMsg) -> Bytes {
    Bytes::from(m.json().to_vec())
}

/// The sequences of `feed`'s messages in the order the node stored them
/// (`shoal log` lists the store in receive order).
pub(crate) fn arrival_order(node: &ServeNode, feed: &FeedId) -> Vec<u64> {
    let out = node.ok(["log"]);
    let author = feed.to_string();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|v| v["value"]["author"] == author.as_str())
        .map(|v| v["value"]["sequence"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_followed_feed_arrives_newest_first_then_its_history_downwards() {
    let dir = tempfile::tempdir().unwrap();
    let author = test_key(0x71);
    let mut pub_ = ServeNode::init(dir.path(), "pub", &test_key(0x72));
    let mut fresh = ServeNode::init(dir.path(), "fresh", &test_key(0x73));
    // 2,120 messages: the newest 50, then three chunks of 1,000 below
    // (the last one shorter).
    let msgs = feed_of(&author, 2120, "history");
    pub_.import_msgs("feed", &msgs);
    let id = author.id().to_string();
    fresh.follow(&id);
    pub_.start();
    fresh.start();
    fresh.ok(["connect", pub_.address().as_str()]);
    fresh.wait_count(&id, 2120, 60);
    let order = arrival_order(&fresh, &author.id());
    let mut expected: Vec<u64> = (2071..=2120).collect();
    expected.extend(1071..=2070);
    expected.extend(71..=1070);
    expected.extend(1..=70);
    assert!(
        order == expected,
        "newest 50 first, then 1,000 at a time downwards: {order:?}"
    );
    // Whole, and identical to the pub's copy.
    let ours: Vec<String> = fresh.log_of(&id).into_iter().map(|l| l.key).collect();
    let theirs: Vec<String> = pub_.log_of(&id).into_iter().map(|l| l.key).collect();
    assert_eq!(ours, theirs);
    assert!(
        fresh.status().get("partial").is_none(),
        "{}",
        fresh.status()
    );
    // Live messages continue from the top.
    let more = feed_of(&author, 2121, "history");
    let last = dir.path().join("last.jsonl");
    std::fs::write(&last, [more[2120].json(), b"\n"].concat()).unwrap();
    pub_.ok(["import", last.to_str().unwrap()]);
    fresh.wait_count(&id, 2121, 30);
}

#[test]
fn two_peers_holding_a_feed_fetch_each_range_once_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let author = test_key(0x7a);
    let msgs = feed_of(&author, 3050, "twice");
    let mut pubs = Vec::new();
    for (i, seed) in [0x7b, 0x7c].into_iter().enumerate() {
        let mut p = ServeNode::init(dir.path(), &format!("pub{i}"), &test_key(seed));
        p.import_msgs("feed", &msgs);
        p.start();
        pubs.push(p);
    }
    let mut fresh = ServeNode::init(dir.path(), "fresh", &test_key(0x7d));
    let id = author.id().to_string();
    fresh.follow(&id);
    fresh.start();
    for p in &pubs {
        fresh.ok(["connect", p.address().as_str()]);
    }
    fresh.wait_count(&id, 3050, 60);
    // Whole, newest first, whichever session fetched which range.
    let order = arrival_order(&fresh, &author.id());
    assert_eq!(order.len(), 3050);
    let newest: Vec<u64> = (3001..=3050).collect();
    assert_eq!(order[..50], newest[..], "newest 50 first");
    let ours: Vec<String> = fresh.log_of(&id).into_iter().map(|l| l.key).collect();
    let want: Vec<String> = msgs.iter().map(|m| m.id().to_string()).collect();
    assert_eq!(ours, want);
    assert!(fresh.status().get("partial").is_none());
}

/// What the fake peer serves of its one feed.
#[derive(Clone)]
struct Serves {
    feed: FeedId,
    /// The latest sequence it claims over EBT.
    claim: u64,
    /// What it answers `createHistoryStream` with, by sequence (1-based):
    /// `None` where it has nothing.
    history: Vec<Option<Bytes>>,
}

/// A peer written with the library on 127.0.0.1: over EBT it claims
/// `claim` of each of its feeds and streams nothing; `createHistoryStream`
/// gets what `history` holds in the range asked for. Runs until dropped.
struct FakePeer {
    rt: Option<tokio::runtime::Runtime>,
    id: FeedId,
    port: u16,
    /// History streams from sequence 1 open now, and the most at once
    /// (counted only when they are held open, see [`FakePeer::start_many`]).
    from_first: Arc<(AtomicUsize, AtomicUsize)>,
}

impl FakePeer {
    fn start(keys: Keypair, serves: Serves) -> FakePeer {
        Self::start_many(keys, vec![serves], false)
    }

    /// Serves several feeds; with `hold_first`, a history stream from
    /// sequence 1 sends nothing and is never ended (and is counted).
    fn start_many(keys: Keypair, serves: Vec<Serves>, hold_first: bool) -> FakePeer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let id = keys.id();
        let keys = Arc::new(keys);
        let serves = Arc::new(serves);
        let from_first: Arc<(AtomicUsize, AtomicUsize)> = Arc::default();
        let counts = from_first.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (keys, serves, counts) = (keys.clone(), serves.clone(), counts.clone());
                tokio::spawn(async move {
                    let Ok((r, w, _)) = shoal::net::accept(stream, &main_net_key(), &keys).await
                    else {
                        return;
                    };
                    let (_handle, mut incoming, task) = rpc::start(r, w, rpc::Options::default());
                    while let Some(req) = incoming.recv().await {
                        let name = req.method();
                        let args = req.args.clone();
                        let (serves, counts) = (serves.clone(), counts.clone());
                        match (name.as_str(), req.responder) {
                            ("ebt.replicate", Responder::Stream(s)) => {
                                tokio::spawn(async move {
                                    let (sink, mut source) = s.into_parts();
                                    let ours: serde_json::Map<String, Json> = serves
                                        .iter()
                                        .map(|f| (f.feed.to_string(), json!(f.claim << 1)))
                                        .collect();
                                    let _ = sink.send(Body::json(&ours).unwrap()).await;
                                    while let Some(Ok(_)) = source.recv().await {}
                                });
                            }
                            ("createHistoryStream", Responder::Stream(s)) => {
                                tokio::spawn(async move {
                                    let (sink, _source) = s.into_parts();
                                    let from = args[0]["seq"].as_u64().unwrap_or(1).max(1);
                                    let limit = args[0]["limit"].as_u64().unwrap_or(u64::MAX);
                                    let Some(serves) = serves
                                        .iter()
                                        .find(|f| args[0]["id"] == f.feed.to_string().as_str())
                                    else {
                                        let _ = sink.end().await;
                                        return;
                                    };
                                    if hold_first && from == 1 {
                                        let (now, most) = &*counts;
                                        let open = now.fetch_add(1, Ordering::SeqCst) + 1;
                                        most.fetch_max(open, Ordering::SeqCst);
                                        // Held open (the sink kept) until the
                                        // connection ends.
                                        std::future::pending::<()>().await;
                                        return;
                                    }
                                    let end = from
                                        .saturating_add(limit)
                                        .min(serves.history.len() as u64 + 1);
                                    for seq in from..end {
                                        let Some(item) = &serves.history[seq as usize - 1] else {
                                            continue;
                                        };
                                        if sink.send(Body::Json(item.clone())).await.is_err() {
                                            return;
                                        }
                                    }
                                    let _ = sink.end().await;
                                });
                            }
                            (_, responder) => {
                                let _ = responder.not_found().await;
                            }
                        }
                    }
                    let _ = task.await;
                });
            }
        });
        FakePeer {
            rt: Some(rt),
            id,
            port,
            from_first,
        }
    }

    fn address(&self) -> String {
        format!("net:127.0.0.1:{}~shs:{}", self.port, self.id.b64())
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// A fresh node follows `author`, meets a fake peer serving `serves`, and
/// the reason shoal gives for what it discarded is returned once it
/// contains `expect`.
fn discarded(
    seed: u8,
    author: &Keypair,
    serves: Serves,
    expect: &str,
) -> (tempfile::TempDir, ServeNode, String) {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakePeer::start(test_key(seed), serves);
    let mut node = ServeNode::init(dir.path(), "fresh", &test_key(seed + 1));
    let id = author.id().to_string();
    node.follow(&id);
    node.start();
    node.ok(["connect", fake.address().as_str()]);
    let reason = wait_for(
        30,
        Duration::from_millis(100),
        "the range discarded with its reason",
        || {
            let why: Json =
                serde_json::from_slice(&node.ok(["--json", "why", id.as_str()]).stdout).ok()?;
            let reason = why["last_error"]["reason"].as_str()?.to_string();
            assert_eq!(
                why["last_error"]["peer"],
                fake.id.to_string().as_str(),
                "the peer is named"
            );
            reason.contains(expect).then_some(reason)
        },
        || node.explain(),
    );
    drop(fake);
    (dir, node, reason)
}

/// The node holds nothing of `author`'s feed.
#[track_caller]
fn nothing_stored(node: &ServeNode, author: &Keypair) {
    assert_eq!(
        node.count(&author.id().to_string()),
        0,
        "nothing of the feed is stored"
    );
}

#[test]
fn a_newest_range_that_does_not_chain_is_discarded_whole() {
    let author = test_key(0x74);
    let msgs = feed_of(&author, 200, "real");
    let forked = feed_of(&author, 200, "fork");
    // The newest 50, with message 180 from another branch of the feed.
    let mut history: Vec<Option<Bytes>> = msgs.iter().map(|m| Some(line(m))).collect();
    history[179] = Some(line(&forked[179]));
    let serves = Serves {
        feed: author.id(),
        claim: 200,
        history,
    };
    let (_dir, node, reason) = discarded(0x75, &author, serves, "newest messages discarded");
    assert!(reason.contains("previous must be"), "{reason}");
    nothing_stored(&node, &author);
}

/// The peer answers for the followed feed with valid messages of another
/// feed, chained among themselves: every signature checks (the range's
/// author is checked once they are), yet nothing of either feed is kept.
#[test]
fn a_newest_range_of_another_feed_is_discarded_whole() {
    let author = test_key(0x60);
    let other = test_key(0x61);
    let history = feed_of(&other, 200, "other")
        .iter()
        .map(|m| Some(line(m)))
        .collect();
    let serves = Serves {
        feed: author.id(),
        claim: 200,
        history,
    };
    let (_dir, node, reason) = discarded(0x62, &author, serves, "newest messages discarded");
    assert!(
        reason.contains("a range of one feed holds a message of another"),
        "{reason}"
    );
    nothing_stored(&node, &author);
    nothing_stored(&node, &other);
}

#[test]
fn a_range_with_a_message_larger_than_any_valid_one_is_discarded_as_it_arrives() {
    let author = test_key(0x7e);
    let msgs = feed_of(&author, 200, "real");
    let mut history: Vec<Option<Bytes>> = msgs.iter().map(|m| Some(line(m))).collect();
    // 30,000 bytes: no valid message is that large.
    let big = json!({"padding": "x".repeat(30_000)}).to_string();
    history[179] = Some(Bytes::from(big));
    let serves = Serves {
        feed: author.id(),
        claim: 200,
        history,
    };
    let (_dir, node, reason) = discarded(0x7f, &author, serves, "newest messages discarded");
    assert!(
        reason.contains("bytes as one message, more than any valid message"),
        "{reason}"
    );
    nothing_stored(&node, &author);
}

#[test]
fn a_peer_claiming_more_than_it_serves_has_its_range_discarded() {
    let author = test_key(0x76);
    let msgs = feed_of(&author, 200, "real");
    // Claims 300, holds 200.
    let serves = Serves {
        feed: author.id(),
        claim: 300,
        history: msgs.iter().map(|m| Some(line(m))).collect(),
    };
    let (_dir, node, reason) = discarded(0x77, &author, serves, "newest messages discarded");
    assert!(
        reason.contains("claimed messages 251 to 300 but served 0"),
        "{reason}"
    );
    nothing_stored(&node, &author);
}

#[test]
fn older_history_that_forks_below_the_newest_is_discarded_and_the_feed_stays_partial() {
    let author = test_key(0x78);
    let msgs = feed_of(&author, 200, "real");
    let forked = feed_of(&author, 200, "fork");
    // The newest 50 are real; everything below them is of another branch.
    let history: Vec<Option<Bytes>> = (0..200)
        .map(|i| Some(line(if i >= 150 { &msgs[i] } else { &forked[i] })))
        .collect();
    let serves = Serves {
        feed: author.id(),
        claim: 200,
        history,
    };
    let (_dir, node, reason) = discarded(0x79, &author, serves, "older history 1 to 150 discarded");
    assert!(reason.contains("the range ends in"), "{reason}");
    let id = author.id().to_string();
    let held: Vec<String> = node.log_of(&id).into_iter().map(|l| l.key).collect();
    let newest: Vec<String> = msgs[150..].iter().map(|m| m.id().to_string()).collect();
    assert_eq!(held, newest, "only the newest 50, which chain, are held");
    let status = node.status();
    assert_eq!(
        status["partial"],
        json!([{"feed": id, "from": 151, "to": 200}]),
        "{status}"
    );
    let text = node.ok(["status"]).text();
    assert!(
        text.contains(&format!("partial: {id} held from 151 to 200")),
        "{text}"
    );
    let why = node.ok(["why", id.as_str()]).text();
    assert!(
        why.contains("held: up to sequence 200")
            && why.contains("from sequence 151 only (fetched newest first"),
        "{why}"
    );
    // The timeline says so too.
    let feed = node.ok(["feed", "--limit", "5"]).text();
    assert!(
        feed.contains("real post 200")
            && feed.contains("(older posts of 1 feed here still arriving: fetched newest first)"),
        "{feed}"
    );
}

/// A session reads at most eight ranges from its peer at once, however
/// many feeds wait for their older history: a peer that holds every
/// older range open (and so holds the node's memory for each) gets eight
/// such streams open from one node, never more.
#[test]
fn a_session_reads_at_most_eight_ranges_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Twenty feeds of 60: the newest 50 of each are served, the older 10
    // (asked from sequence 1) are held open.
    let authors: Vec<Keypair> = (0..20).map(|i| test_key(0x90 + i)).collect();
    let serves: Vec<Serves> = authors
        .iter()
        .map(|a| Serves {
            feed: a.id(),
            claim: 60,
            history: feed_of(a, 60, "held")
                .iter()
                .map(|m| Some(line(m)))
                .collect(),
        })
        .collect();
    let fake = FakePeer::start_many(test_key(0xb0), serves, true);
    let mut node = ServeNode::init(dir.path(), "fresh", &test_key(0xb1));
    for a in &authors {
        node.follow(&a.id().to_string());
    }
    node.start();
    node.ok(["connect", fake.address().as_str()]);
    for a in &authors {
        node.wait_count(&a.id().to_string(), 50, 30);
    }
    let (now, most) = &*fake.from_first;
    wait_for(
        10,
        Duration::from_millis(50),
        "eight older ranges asked for",
        || (now.load(Ordering::SeqCst) >= 8).then_some(()),
        || node.explain(),
    );
    // Time for more to be asked, were they allowed.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(most.load(Ordering::SeqCst), 8, "older ranges read at once");
    assert_eq!(now.load(Ordering::SeqCst), 8);
}
