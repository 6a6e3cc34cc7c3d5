//! Several `shoal serve` processes on 127.0.0.1 replicate with each other,
//! survive restarts, and stay correct and available when a peer lies or the
//! wire carries garbage.
//!
//! - A line of five nodes, each connected only to its neighbours and
//!   following every other: a post from one end reaches the other end by
//!   gossip, both ways, and every node ends up with every feed.
//! - A node stopped with SIGTERM exits 0 and removes its control socket;
//!   restarted, it redials the peer it knew (its peer table) without a new
//!   `connect`, gets what its peer published meanwhile, sends what it
//!   published offline, and stores each message once.
//! - A fake peer (written here with the library: `net::accept`, `rpc::start`,
//!   `feed::build`) serves a feed whose message 6 was altered after signing,
//!   followed by the genuine messages 6 to 10; once over EBT, once over
//!   `createHistoryStream`. shoal stores 1 to 5, neither the forged message
//!   nor anything after it from that peer, tells the peer it stops taking
//!   the feed, answers `shoal status` all along, and still replicates with a
//!   good peer (which then supplies the genuine rest of the feed).
//! - Garbage before the handshake, a client on another network key, a
//!   handshake cut after the first message, and garbage inside an
//!   authenticated box stream: each connection is closed, none lingers in
//!   the node's table, and the node then replicates with a good peer.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use shoal::crypto::{FeedId, Keypair};
use shoal::feed::json::{self as sjson, Value};
use shoal::feed::{self, FeedState};
use shoal::rpc::{self, Body, Responder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::cli::{LogLine, make_feed, msg_id, parse_log_line, write_lines};
use crate::common::test_key;
use crate::nodes::{ServeNode, wait_for};

/// How long any replication may take before the test fails.
const REPLICATION_SECS: u64 = 30;

/// The SSB main network key.
pub(crate) fn main_net_key() -> [u8; 32] {
    shoal::crypto::b64_decode(shoal::home::MAIN_NETWORK_KEY)
        .and_then(|b| b.try_into().ok())
        .expect("the main network key is base64 of 32 bytes")
}

/// Sequences of a feed's log lines.
fn sequences(lines: &[LogLine]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| l.value.get("sequence").and_then(Value::as_f64).unwrap() as u64)
        .collect()
}

/// Fails unless `node` lists `feed` as exactly the sequences 1..=n, each once.
#[track_caller]
fn assert_feed_once(node: &ServeNode, feed: &FeedId, n: u64) {
    let seqs = sequences(&node.log_of(&feed.to_string()));
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "{} must hold {feed} as sequences 1..={n}, each once",
        node.name
    );
}

/// `shoal status` run again and again on a node until stopped: how many
/// answers came and what went wrong.
pub(crate) struct StatusPoller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl StatusPoller {
    pub(crate) fn start(node: &ServeNode) -> StatusPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let home = node.home.clone();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut answers, mut problems) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                match status_once(&home) {
                    Ok(()) => answers += 1,
                    Err(e) => problems.push(e),
                }
                if t0.elapsed() > Duration::from_secs(5) {
                    problems.push(format!("`shoal status` took {:?}", t0.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            (answers, problems)
        });
        StatusPoller { stop, thread }
    }

    /// Stops polling; fails unless every `shoal status` answered.
    #[track_caller]
    pub(crate) fn finish(self, what: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let (answers, problems) = self.thread.join().expect("status poller");
        assert!(
            problems.is_empty(),
            "{what}: `shoal status` failed while the test ran:\n{}",
            problems.join("\n")
        );
        assert!(answers > 0, "{what}: `shoal status` never answered");
    }
}

/// One bounded `shoal --json status` through the control socket.
fn status_once(home: &std::path::Path) -> Result<(), String> {
    let out = std::process::Command::new("timeout")
        .args(["-k", "2", "20"])
        .arg(env!("CARGO_BIN_EXE_shoal"))
        .arg("--home")
        .arg(home)
        .args(["--json", "status"])
        .env_remove("SHOAL_HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run shoal: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "status exited with {}: {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("status is not JSON ({e}): {text}"))?;
    if v.get("running") == Some(&json!(false)) || v["address"].is_null() {
        return Err(format!(
            "status came from the store, not the running node: {text}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// a. A line of five nodes.

#[test]
fn a_line_of_five_nodes_gossips_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<ServeNode> = (0..5u8)
        .map(|i| ServeNode::init(dir.path(), &format!("n{}", i + 1), &test_key(0x50 + i)))
        .collect();
    let ids: Vec<FeedId> = nodes.iter().map(|n| n.id).collect();
    for n in &nodes {
        for id in &ids {
            if *id != n.id {
                n.follow(&id.to_string());
            }
        }
    }
    for n in &mut nodes {
        n.start();
    }
    for i in 0..4 {
        let out = nodes[i].ok(["connect", nodes[i + 1].address().as_str()]);
        assert_eq!(out.text().trim(), ids[i + 1].to_string());
    }
    let first = nodes[0].post("from n1 to the far end");
    let last = nodes[4].post("from n5 to the far end");

    // Every node ends up with every feed: four contacts each, and a post
    // in n1's and n5's.
    let expected: Vec<usize> = vec![5, 4, 4, 4, 5];
    let held =
        |n: &ServeNode| -> Vec<usize> { ids.iter().map(|id| n.count(&id.to_string())).collect() };
    wait_for(
        REPLICATION_SECS,
        Duration::from_millis(200),
        "n1's post to reach n5, n5's post to reach n1, and every node to hold every feed",
        || {
            nodes
                .iter()
                .all(|n| held(n).iter().zip(&expected).all(|(c, e)| c >= e))
                .then_some(())
        },
        || {
            let table: Vec<String> = nodes
                .iter()
                .map(|n| format!("{}: {:?}", n.name, held(n)))
                .collect();
            format!(
                "messages held of n1..n5 (complete: {expected:?}):\n{}\n{}\n{}",
                table.join("\n"),
                nodes[1].explain(),
                nodes[4].explain()
            )
        },
    );
    // Byte for byte what the authors signed, each message once.
    for (from, to, id) in [(0, 4, &first), (4, 0, &last)] {
        let get = |n: &ServeNode| {
            let l = parse_log_line(n.ok(["get", id.as_str()]).text().trim_end().as_bytes());
            (l.key, l.value_raw)
        };
        assert_eq!(get(&nodes[to]), get(&nodes[from]), "{id} as received");
    }
    for n in &nodes {
        for (id, e) in ids.iter().zip(&expected) {
            assert_feed_once(n, id, *e as u64);
        }
    }
    // It went by gossip: the ends only ever talked to their neighbours.
    assert_eq!(nodes[0].connected(), vec![ids[1].to_string()]);
    assert_eq!(nodes[4].connected(), vec![ids[3].to_string()]);
}

// ---------------------------------------------------------------------------
// b. Stop and restart.

#[test]
fn a_restarted_node_redials_its_peer_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0x81));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0x82));
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    a.follow(&b_id);
    b.follow(&a_id);
    for i in 1..=3 {
        a.post(&format!("a before {i}"));
        b.post(&format!("b before {i}"));
    }
    a.start();
    b.start();
    a.ok(["connect", b.address().as_str()]);
    a.wait_count(&b_id, 4, REPLICATION_SECS);
    b.wait_count(&a_id, 4, REPLICATION_SECS);

    let status = a.stop();
    assert!(
        status.success(),
        "SIGTERM: `shoal serve` exits 0, not {status}\n{}",
        a.log_tail(20)
    );
    assert!(
        !a.socket().exists(),
        "the control socket is removed on exit"
    );

    // Meanwhile: b publishes live, a offline (straight into its store).
    for i in 1..=5 {
        b.post(&format!("b while a is down {i}"));
    }
    for i in 1..=2 {
        a.post(&format!("a while down {i}"));
    }

    a.start();
    a.wait_count(&b_id, 9, REPLICATION_SECS);
    b.wait_count(&a_id, 6, REPLICATION_SECS);
    // a dialled b again by itself.
    let peers = a.peers();
    let conn = a
        .connection(&b_id)
        .unwrap_or_else(|| panic!("a is connected to b again: {peers}"));
    assert_eq!(conn["outgoing"], true, "a redialled b: {peers}");
    assert!(
        peers["known"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["address"] == b.address().as_str()),
        "b is in a's peer table: {peers}"
    );

    // Nothing duplicated, nothing missing.
    assert_feed_once(&a, &b.id, 9);
    assert_feed_once(&a, &a.id, 6);
    assert_feed_once(&b, &a.id, 6);
    assert_feed_once(&b, &b.id, 9);
    let all: Vec<String> = a
        .ok(["log"])
        .lines()
        .iter()
        .map(|l| parse_log_line(l.as_bytes()).key)
        .collect();
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 15, "a's whole log: 6 + 9 messages");
    assert_eq!(distinct.len(), 15, "a's whole log lists each message once");
}

// ---------------------------------------------------------------------------
// c. A peer serving a forged message.

/// How the fake peer serves its feed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Serve {
    /// Over `ebt.replicate` (shoal dials and opens it).
    Ebt,
    /// Over `createHistoryStream` (it refuses `ebt.replicate`, so shoal falls
    /// back to pulling).
    History,
}

/// A peer written with the library, listening on 127.0.0.1, that serves
/// one feed as the given items, whatever is asked. Reports what happens on
/// a channel.
struct FakePeer {
    rt: Option<tokio::runtime::Runtime>,
    id: FeedId,
    port: u16,
    events: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl FakePeer {
    fn start(how: Serve, keys: Keypair, feed: FeedId, items: Vec<Bytes>) -> FakePeer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, events) = mpsc::channel();
        let id = keys.id();
        let keys = Arc::new(keys);
        let items = Arc::new(items);
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (keys, items, tx) = (keys.clone(), items.clone(), tx.clone());
                tokio::spawn(async move {
                    fake_connection(how, stream, &keys, feed, items, tx).await;
                });
            }
        });
        FakePeer {
            rt: Some(rt),
            id,
            port,
            events,
            seen: Vec::new(),
        }
    }

    fn address(&self) -> String {
        format!("net:127.0.0.1:{}~shs:{}", self.port, self.id.b64())
    }

    /// Waits until an event starting with `prefix` is reported.
    #[track_caller]
    fn wait_event(&mut self, prefix: &str, secs: u64, node: &ServeNode) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.seen.iter().find(|e| e.starts_with(prefix)) {
                return e.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .events
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(e) => self.seen.push(e),
                Err(_) if Instant::now() >= deadline => panic!(
                    "timed out after {secs} s waiting for the fake peer to see {prefix:?}; \
                     it saw:\n{}\n{}",
                    self.seen.join("\n"),
                    node.explain()
                ),
                Err(_) => {}
            }
        }
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        // Stops the listener and every connection task.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// One connection of the fake peer: answers shoal's requests.
async fn fake_connection(
    how: Serve,
    stream: tokio::net::TcpStream,
    keys: &Keypair,
    feed: FeedId,
    items: Arc<Vec<Bytes>>,
    tx: mpsc::Sender<String>,
) {
    let (r, w, peer) = match shoal::net::accept(stream, &main_net_key(), keys).await {
        Ok(x) => x,
        Err(e) => {
            let _ = tx.send(format!("handshake failed: {e}"));
            return;
        }
    };
    let _ = tx.send(format!("connected: {peer}"));
    let (_handle, mut incoming, task) = rpc::start(r, w, rpc::Options::default());
    while let Some(req) = incoming.recv().await {
        let (tx, items) = (tx.clone(), items.clone());
        let name = req.method();
        let args = req.args.clone();
        let _ = tx.send(format!("request: {name} {args}"));
        match (how, name.as_str(), req.responder) {
            (Serve::Ebt, "ebt.replicate", Responder::Stream(s)) => {
                tokio::spawn(async move {
                    let (sink, mut source) = s.into_parts();
                    // Wait for shoal's clock, say what we hold, send it all.
                    let (mut told, mut asked) = (false, false);
                    while let Some(Ok(body)) = source.recv().await {
                        let notes: serde_json::Value =
                            body.parse_json().unwrap_or(serde_json::Value::Null);
                        let _ = tx.send(format!("ebt notes: {notes}"));
                        let Some(n) = notes.get(feed.to_string()).and_then(|n| n.as_i64()) else {
                            continue;
                        };
                        if !told {
                            // Say what we hold, as an EBT peer does, whether
                            // or not shoal asks for it yet (it asks for a feed
                            // it fetches newest first only once it knows).
                            told = true;
                            let ours = json!({ feed.to_string(): (10 << 1) | 1 });
                            let _ = sink.send(Body::json(&ours).unwrap()).await;
                        }
                        if !asked {
                            if n < 0 || n & 1 == 1 {
                                let _ = tx.send(format!("shoal does not ask for the feed: {n}"));
                                continue;
                            }
                            asked = true;
                            for item in items.iter() {
                                if sink.send(Body::Json(item.clone())).await.is_err() {
                                    break;
                                }
                            }
                            let _ = tx.send("sent everything".to_string());
                        } else if n < 0 || n & 1 == 1 {
                            let _ = tx.send(format!("cut off: shoal's note for the feed is {n}"));
                        }
                    }
                    let _ = tx.send("ebt stream ended".to_string());
                });
            }
            (_, "createHistoryStream", Responder::Stream(s)) => {
                let wanted = args[0]["id"].as_str() == Some(feed.to_string().as_str());
                tokio::spawn(async move {
                    let (sink, mut source) = s.into_parts();
                    if !wanted {
                        let _ = sink.end().await;
                        return;
                    }
                    for item in items.iter() {
                        if sink.send(Body::Json(item.clone())).await.is_err() {
                            break;
                        }
                    }
                    let _ = tx.send("sent everything".to_string());
                    // Keep the stream open (live) until shoal ends it.
                    match source.recv().await {
                        None => {
                            let _ = tx.send("cut off: shoal ended the history stream".to_string());
                        }
                        Some(Ok(b)) => {
                            let _ = tx.send(format!("unexpected item from shoal: {b:?}"));
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(format!("history stream closed: {e}"));
                        }
                    }
                    drop(sink);
                });
            }
            (_, _, responder) => {
                let _ = responder.not_found().await;
            }
        }
    }
    let result = task.await;
    let _ = tx.send(format!("disconnected: {result:?}"));
}

/// A signed post with its text replaced: the signature no longer verifies.
fn tampered(v: &Value) -> Value {
    let mut o = v.as_object().unwrap().clone();
    let mut content = o.get("content").unwrap().as_object().unwrap().clone();
    content.insert("text", Value::from("forged: send 100 coins to mallory"));
    o.insert("content", Value::Object(content));
    Value::Object(o)
}

fn forged_message_is_refused(how: Serve, seed: u8) {
    let dir = tempfile::tempdir().unwrap();
    let author = test_key(seed);
    let fake_keys = test_key(seed + 1);
    let genuine: Vec<(Value, FeedState)> = make_feed(&author, 10, "genuine");
    let forged = tampered(&genuine[5].0);
    assert!(
        feed::validate(Some(&genuine[4].1), None, forged.clone()).is_err(),
        "the tampered message must be invalid"
    );
    let mut items: Vec<Bytes> = genuine[..5]
        .iter()
        .map(|(v, _)| Bytes::from(sjson::to_compact(v)))
        .collect();
    items.push(Bytes::from(sjson::to_compact(&forged)));
    items.extend(
        genuine[5..]
            .iter()
            .map(|(v, _)| Bytes::from(sjson::to_compact(v))),
    );

    let mut node = ServeNode::init(dir.path(), "node", &test_key(seed + 2));
    let mut good = ServeNode::init(dir.path(), "good", &test_key(seed + 3));
    let x = author.id().to_string();
    node.follow(&x);
    node.follow(&good.id.to_string());
    // The good peer holds the genuine feed.
    let file = dir.path().join("genuine.ndjson");
    write_lines(
        &file,
        &genuine
            .iter()
            .map(|(v, _)| sjson::to_compact(v))
            .collect::<Vec<_>>(),
    );
    good.ok([std::ffi::OsStr::new("import"), file.as_os_str()]);
    good.follow(&node.id.to_string());
    good.follow(&x);
    node.start();
    good.start();
    let poller = StatusPoller::start(&node);

    let mut fake = FakePeer::start(how, fake_keys, author.id(), items);
    let out = node.ok(["connect", fake.address().as_str()]);
    assert_eq!(out.text().trim(), fake.id.to_string());
    fake.wait_event("sent everything", REPLICATION_SECS, &node);
    let cut = fake.wait_event("cut off", REPLICATION_SECS, &node);
    node.wait_count(&x, 5, REPLICATION_SECS);
    // Let anything already received settle before looking.
    std::thread::sleep(Duration::from_secs(1));

    let forged_id = msg_id(&forged).to_string();
    let got = node.run(["get", forged_id.as_str()]);
    assert_eq!(
        got.code,
        1,
        "{how:?}: the forged message must not be stored: {}",
        got.text()
    );
    let stored = node.log_of(&x);
    for (i, l) in stored.iter().enumerate() {
        assert!(
            l.value_raw == sjson::to_compact(&genuine[i].0),
            "{how:?}: message {} of the feed is not the genuine one: {}",
            i + 1,
            String::from_utf8_lossy(&l.value_raw)
        );
    }
    // Nothing after the forged message from that peer (checked at the end,
    // so the rest of the test runs either way).
    let after_forged = (stored.len() != 5).then(|| {
        format!(
            "{how:?}: after the forged message 6, shoal stored {} more message(s) of that \
             feed from the same peer (sequences {:?}); it must store only 1..=5 from it \
             (the fake peer saw: {cut})",
            stored.len().saturating_sub(5),
            &sequences(&stored)[5.min(stored.len())..]
        )
    });
    assert!(node.running(), "{how:?}: the node is still running");
    // `shoal why` names the peer and the reason.
    let why: serde_json::Value =
        serde_json::from_str(&node.ok(["--json", "why", x.as_str()]).text()).unwrap();
    assert_eq!(
        why["last_error"]["peer"],
        fake.id.to_string(),
        "{how:?}: {why}"
    );
    assert!(
        !why["last_error"]["reason"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{how:?}: {why}"
    );
    assert_eq!(
        (why["wanted"].as_bool(), why["held"].as_u64()),
        (Some(true), Some(5))
    );

    // It keeps serving other peers: the good one gets our feed and gives
    // us its own and the genuine rest of the feed.
    node.ok(["connect", good.address().as_str()]);
    node.wait_count(&good.id.to_string(), 2, REPLICATION_SECS);
    good.wait_count(&node.id.to_string(), 2, REPLICATION_SECS);
    node.wait_count(&x, 10, REPLICATION_SECS);
    let stored = node.log_of(&x);
    for (i, l) in stored.iter().enumerate() {
        assert!(
            l.value_raw == sjson::to_compact(&genuine[i].0),
            "{how:?}: message {} of the feed is not the genuine one: {}",
            i + 1,
            String::from_utf8_lossy(&l.value_raw)
        );
    }
    assert_feed_once(&node, &author.id(), 10);
    poller.finish(&format!("{how:?}"));
    assert!(node.running(), "{how:?}: the node is still running");
    if let Some(problem) = after_forged {
        panic!("{problem}");
    }
}

#[test]
fn a_forged_message_over_ebt_is_refused() {
    forged_message_is_refused(Serve::Ebt, 0x90);
}

#[test]
fn a_forged_message_over_history_streams_is_refused() {
    forged_message_is_refused(Serve::History, 0xa0);
}

// ---------------------------------------------------------------------------
// d. Garbage on the wire.

/// Deterministic noise.
pub(crate) fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Fails unless the node closes `stream` within `secs` (end of file or a
/// reset), reading and discarding whatever it sends first.
#[track_caller]
pub(crate) fn assert_closed_by_node(mut stream: TcpStream, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{what}: the node kept the connection open for {secs} s"
        );
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
    }
}

#[test]
fn garbage_on_the_wire_leaves_the_node_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xb1));
    let mut good = ServeNode::init(dir.path(), "good", &test_key(0xb2));
    node.follow(&good.id.to_string());
    good.follow(&node.id.to_string());
    node.post("still here");
    good.post("hello from the good peer");
    node.start();
    good.start();
    let poller = StatusPoller::start(&node);
    let addr = format!("127.0.0.1:{}", node.port);
    let net = main_net_key();

    // Random bytes instead of a handshake, many times over (more than the
    // node's connection limit, so a leaked slot would show below).
    for i in 0..80u64 {
        let mut s = TcpStream::connect(&addr).unwrap();
        let _ = s.write_all(&noise(256 + i as usize, i));
        assert_closed_by_node(s, 15, &format!("random bytes #{i}"));
    }

    // 64 random bytes, then close.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&noise(64, 1000)).unwrap();
    drop(s);

    // A valid first handshake message, then close: the node answers with
    // its own (64 bytes) and must then give up on us.
    let eph = noise(32, 1001);
    let mut hello = shoal::crypto::hmac_sha512_256(&net, &eph).to_vec();
    hello.extend_from_slice(&eph);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&hello).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut answer = [0u8; 64];
    s.read_exact(&mut answer)
        .expect("the node answers a valid hello with its own");
    drop(s);

    let rt = crate::common::runtime();
    rt.block_on(async {
        let stranger = test_key(0xb3);
        // Another network key: the handshake fails, nothing is connected.
        let other = [0x42u8; 32];
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            shoal::net::connect(addr.as_str(), &other, &stranger, &node.id),
        )
        .await
        .expect("a handshake on another network key ends in time");
        assert!(
            r.is_err(),
            "a client on another network key must not get through"
        );

        // Authenticated, then garbage inside the box stream: the node must
        // close the connection.
        let (mut r, mut w, peer) = shoal::net::connect(addr.as_str(), &net, &stranger, &node.id)
            .await
            .expect("a handshake on the right network key succeeds");
        assert_eq!(peer, node.id);
        let mut junk = vec![0xf7u8];
        junk.extend(noise(4000, 1002));
        let _ = w.write_all(&junk).await;
        let _ = w.flush().await;
        let mut buf = vec![0u8; 4096];
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the node kept an authenticated connection open 15 s after it sent garbage"
        );
    });
    drop(rt);

    // The node is fine: nobody lingers in its table, and it replicates.
    assert!(node.running(), "the node survived the garbage");
    wait_for(
        15,
        Duration::from_millis(100),
        "the node to drop every bad connection from its table",
        || node.connected().is_empty().then_some(()),
        || node.explain(),
    );
    good.ok(["connect", node.address().as_str()]);
    node.wait_count(&good.id.to_string(), 2, REPLICATION_SECS);
    good.wait_count(&node.id.to_string(), 2, REPLICATION_SECS);
    assert_eq!(node.connected(), vec![good.id.to_string()]);
    poller.finish("garbage on the wire");
    assert!(node.running(), "the node is still running");
}

/// `shoal serve` stopped by SIGTERM while replicating closes its store
/// cleanly: the next open needs no repair (which takes long on a big store).
#[test]
fn a_stopped_node_leaves_its_store_closed_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(140));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(141));
    a.follow(&b.id.to_string());
    b.follow(&a.id.to_string());
    a.start();
    b.start();
    b.ok(["connect", a.address().as_str()]);
    b.post("one");
    a.wait_count(&b.id.to_string(), 2, 30);
    a.post("two");
    assert!(a.stop().success());
    let repaired = Arc::new(AtomicBool::new(false));
    let flag = repaired.clone();
    let db = redb::Database::builder()
        .set_repair_callback(move |_| flag.store(true, Ordering::SeqCst))
        .create(a.home.join("store.redb"))
        .expect("the store opens");
    drop(db);
    assert!(
        !repaired.load(Ordering::SeqCst),
        "the store was left open: it needed a repair"
    );
}

// ---------------------------------------------------------------------------
// A feed that becomes wanted during a session.

/// Regression: a feed that became wanted while connected (we followed it)
/// was asked for only on the next connection. Now the session asks at once:
/// the feed arrives over the connection that was already open.
#[test]
fn a_feed_followed_during_a_session_arrives_in_that_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0x91));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0x92));
    let c = test_key(0x93);
    let (b_id, c_id) = (b.id.to_string(), c.id().to_string());
    // b holds c's feed; a follows only b, for now.
    let file = dir.path().join("c.jsonl");
    let lines: Vec<Vec<u8>> = make_feed(&c, 5, "c")
        .into_iter()
        .map(|(v, _)| sjson::to_compact(&v))
        .collect();
    write_lines(&file, &lines);
    b.ok([std::ffi::OsStr::new("import"), file.as_os_str()]);
    a.follow(&b_id);
    b.post("b is here");
    a.start();
    b.start();
    a.ok(["connect", b.address().as_str()]);
    a.wait_count(&b_id, 1, REPLICATION_SECS);
    let connected_at = Instant::now();
    assert_eq!(a.count(&c_id), 0, "a does not want c yet");
    // `shoal why` says so, and what it knows of b's claims on b's feed.
    let why = |feed: &str| -> serde_json::Value {
        serde_json::from_str(&a.ok(["--json", "why", feed]).text()).unwrap()
    };
    let w = why(&c_id);
    assert_eq!(
        (w["wanted"].as_bool(), w["held"].as_u64()),
        (Some(false), Some(0)),
        "{w}"
    );
    let text = a.ok(["why", c_id.as_str()]).text();
    assert!(
        text.contains("not replicated: no follow path within 2 hops"),
        "{text}"
    );
    let w = why(&b_id);
    assert_eq!(w["path"], json!([a.id.to_string(), b_id]), "{w}");
    assert_eq!(
        w["peers"][0]["peer"],
        b_id.as_str(),
        "b claims its own feed: {w}"
    );
    assert_eq!(w["peers"][0]["seq"], 1, "{w}");

    a.follow(&c_id);
    a.wait_count(&c_id, 5, REPLICATION_SECS);
    assert_feed_once(&a, &c.id(), 5);
    // Over the same connection: it has been open since before the follow.
    let conn = a
        .connection(&b_id)
        .unwrap_or_else(|| panic!("a is still connected to b: {}", a.peers()));
    let w = why(&c_id);
    assert_eq!(
        (w["wanted"].as_bool(), w["held"].as_u64()),
        (Some(true), Some(5)),
        "{w}"
    );
    assert_eq!(w["path"], json!([a.id.to_string(), c_id]), "{w}");
    assert_eq!(
        (
            w["peers"][0]["peer"].as_str(),
            w["peers"][0]["seq"].as_u64()
        ),
        (Some(b_id.as_str()), Some(5)),
        "{w}"
    );
    let text = a.ok(["why", c_id.as_str()]).text();
    assert!(
        text.contains("replicated, 1 hop away") && text.contains("(as far as we)"),
        "{text}"
    );
    let open_for = conn["connected_secs"].as_u64().unwrap();
    assert!(
        open_for + 1 >= connected_at.elapsed().as_secs(),
        "the connection was not replaced: open {open_for} s, {} s since the follow's session began\n{}",
        connected_at.elapsed().as_secs(),
        a.log_tail(20)
    );
}
