//! Hostile peers on the wire against a running `shoal serve`: the node
//! keeps serving everyone else, its memory stays bounded, and each bad
//! connection is closed (or each bad request refused) with a reason in its
//! log.
//!
//! The hostile client authenticates with the library's own handshake and
//! box stream (`shoal::net::connect`) and then writes raw muxrpc packets
//! (`shoal::rpc::PacketCodec`), so it can send exactly what it wants.
//!
//! - Invalid requests (truncated JSON, JSON that is not an object, no
//!   `name`, a `name` that is not strings, `args` that are not an array, an
//!   unknown stream `type`, a body that is not JSON) each get an error
//!   answer and a log line with the reason, and the connection still answers
//!   a good request; packets that break the framing (a header claiming a
//!   4 GiB body, unknown flag bits, body type 3, a JSON body that is not
//!   UTF-8) close that connection with the reason logged. Then a good peer
//!   still replicates both ways.
//! - A peer that opens `ebt.replicate` and writes, as fast as it can for
//!   5 s and never reading, notes naming ever new feeds, notes asking for
//!   the node's feed and then not, a message the node holds, a forged
//!   message and junk: the node's resident memory stays within a bound, it
//!   keeps answering `shoal status`, and a good peer's new post reaches it
//!   meanwhile. A second `ebt.replicate` on one connection is refused, and
//!   a peer sending invalid messages of ever new feeds loses its connection,
//!   with the reason logged.
//! - A peer that opens a thousand live `createHistoryStream`s of a feed of
//!   3000 messages of about 1 KiB and never reads: the node's memory stays
//!   within a bound and a good peer is served both ways meanwhile.
//! - Hundreds of TCP connections (idle ones, random bytes, handshakes cut
//!   after the server's hello) on a node with `max_connections = 16` (and
//!   no limit per address: they all come from 127.0.0.1): a connected good
//!   peer still gets through, the node can still dial a peer, memory stays
//!   bounded, the failed handshakes are logged with their reasons, and once
//!   the flood is closed the node accepts new connections, up to 12
//!   authenticated incoming ones (a quarter of 16 is kept for dialling);
//!   the next is closed with a reason.
//! - A recorded client hello and authentication replayed on a new
//!   connection: the node answers the hello with a fresh one, refuses the
//!   authentication, logs why, and serves the genuine client as before.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use shoal::crypto::{CurveKeypair, Keypair};
use shoal::feed::json as sjson;
use shoal::net::shs::{ClientStart, SERVER_ACCEPT_LEN, SERVER_HELLO_LEN};
use shoal::net::{PeerReader, PeerWriter};
use shoal::rpc::{Body, Frame, Packet, PacketCodec};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::codec::{Decoder as _, Encoder as _};

use crate::cli::{msg_id, next_msg, post, write_lines};
use crate::common::runtime;
use crate::common::test_key;
use crate::multinode::{StatusPoller, assert_closed_by_node, main_net_key, noise};
use crate::nodes::{ServeNode, rss_kib, wait_for};

/// How long any replication may take before the test fails.
const REPLICATION_SECS: u64 = 30;

/// How much the node's resident memory may grow over a flood, in KiB: a
/// connection may buffer 16 MiB of received items, the ingest pipeline
/// holds two batches per session, and the search index's writer takes
/// about 20 MiB more once it indexes after start (measured: 22 MiB of
/// growth with search off, 42 MiB on; what a flood adds is unbounded).
const RSS_GROWTH_KIB: u64 = 64 << 10;

/// A node and a good peer that follow each other, each with one post,
/// connected (the good peer dialled) and caught up.
fn node_and_good_peer(dir: &std::path::Path, seed: u8) -> (ServeNode, ServeNode) {
    let mut node = ServeNode::init(dir, "node", &test_key(seed));
    let mut good = ServeNode::init(dir, "good", &test_key(seed + 1));
    node.follow(&good.id.to_string());
    good.follow(&node.id.to_string());
    node.post("the node's first post");
    good.post("the good peer's first post");
    node.start();
    good.start();
    good.ok(["connect", node.address().as_str()]);
    node.wait_count(&good.id.to_string(), 2, REPLICATION_SECS);
    good.wait_count(&node.id.to_string(), 2, REPLICATION_SECS);
    (node, good)
}

/// The good peer and the node still replicate a new post each way, and
/// nobody else is left in the node's connection table.
fn still_replicates(node: &ServeNode, good: &ServeNode, what: &str) {
    let (n, g) = (node.id.to_string(), good.id.to_string());
    let (have_n, have_g) = (good.count(&n), node.count(&g));
    good.post(&format!("the good peer after {what}"));
    node.post(&format!("the node after {what}"));
    node.wait_count(&g, have_g + 1, REPLICATION_SECS);
    good.wait_count(&n, have_n + 1, REPLICATION_SECS);
    wait_for(
        20,
        Duration::from_millis(100),
        &format!("after {what}: the node to be connected to the good peer only"),
        || (node.connected() == vec![g.clone()]).then_some(()),
        || node.explain(),
    );
}

/// The largest VmRSS of a process seen while sampling, in KiB.
struct RssWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(50));
            }
            max.max(rss_kib(pid).unwrap_or(0))
        });
        RssWatch { stop, thread }
    }

    /// Stops sampling; the largest VmRSS seen.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("rss sampler")
    }
}

/// Fails unless the node's memory grew by at most [`RSS_GROWTH_KIB`].
#[track_caller]
fn assert_rss_bounded(node: &ServeNode, before: u64, peak: u64, what: &str) {
    eprintln!(
        "{what}: node VmRSS {before} KiB before, peak {peak} KiB (+{} KiB)",
        peak.saturating_sub(before)
    );
    assert!(
        peak <= before + RSS_GROWTH_KIB,
        "{what}: the node's resident memory grew from {before} KiB to {peak} KiB, more than \
         {RSS_GROWTH_KIB} KiB\n{}",
        node.log_tail(20)
    );
}

/// Log lines containing every one of `parts`.
fn log_lines_with<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

/// Fails unless some line of the node's log contains every one of `parts`.
#[track_caller]
fn assert_logged(node: &ServeNode, parts: &[&str], what: &str) {
    let log = node.log_text();
    assert!(
        !log_lines_with(&log, parts).is_empty(),
        "{what}: no line of the node's log contains all of {parts:?}; its log:\n{}",
        node.log_tail(60)
    );
}

// ---------------------------------------------------------------------------
// The hostile client.

/// One muxrpc packet as bytes, whatever the size of its body.
fn encode(stream: bool, end: bool, body: Body, req: i32) -> Vec<u8> {
    let mut out = BytesMut::new();
    PacketCodec::new(u32::MAX as usize)
        .encode(
            Frame::Packet(Packet {
                stream,
                end,
                body,
                req,
            }),
            &mut out,
        )
        .expect("a packet encodes");
    out.to_vec()
}

/// A muxrpc header with whatever flags and length.
fn header(flags: u8, len: u32, req: i32) -> Vec<u8> {
    let mut h = vec![flags];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&req.to_be_bytes());
    h
}

/// An authenticated connection to a node that sends raw muxrpc bytes.
struct Hostile {
    r: PeerReader,
    w: PeerWriter,
    inbox: BytesMut,
    codec: PacketCodec,
}

impl Hostile {
    async fn connect(node: &ServeNode, keys: &Keypair) -> Hostile {
        let addr = format!("127.0.0.1:{}", node.port);
        let (r, w, peer) = tokio::time::timeout(
            Duration::from_secs(20),
            shoal::net::connect(addr.as_str(), &main_net_key(), keys, &node.id),
        )
        .await
        .expect("the handshake ends in time")
        .expect("the handshake succeeds");
        assert_eq!(peer, node.id);
        Hostile {
            r,
            w,
            inbox: BytesMut::new(),
            codec: PacketCodec::default(),
        }
    }

    /// Writes bytes through the box stream; `false` once the node is gone.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.w.write_all(bytes).await.is_ok() && self.w.flush().await.is_ok()
    }

    /// The next frame from the node; `None` once it closed the connection.
    /// Fails the test after `secs` seconds without either.
    async fn next_frame(&mut self, secs: u64, what: &str) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match self.codec.decode(&mut self.inbox) {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) => {}
                Err(e) => panic!("{what}: the node sent a bad packet: {e}"),
            }
            match tokio::time::timeout_at(deadline, self.r.read_buf(&mut self.inbox)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("{what}: nothing from the node for {secs} s"),
            }
        }
    }

    /// The node's answer to our request `req`, skipping everything else
    /// (the node's own requests); `None` if it closed the connection.
    async fn answer(&mut self, req: i32, what: &str) -> Option<Packet> {
        loop {
            match self.next_frame(15, what).await? {
                Frame::Packet(p) if p.req == -req => return Some(p),
                Frame::Packet(_) => {}
                Frame::Goodbye => return None,
            }
        }
    }

    /// Waits (reading and discarding) until the node closes the connection.
    async fn closed_by_node(&mut self, what: &str) {
        while self.next_frame(15, what).await.is_some() {}
    }
}

/// A request packet with a raw body.
fn request(req: i32, stream: bool, body: Body) -> Vec<u8> {
    encode(stream, false, body, req)
}

// ---------------------------------------------------------------------------
// 1. Invalid requests and packets that break the framing.

#[test]
fn invalid_requests_get_errors_and_broken_packets_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, good) = node_and_good_peer(dir.path(), 0xc0);
    let poller = StatusPoller::start(&node);
    let hostile = test_key(0xc2);

    // (what, stream flag, body, what the error answer and the log line say)
    let json = |s: &str| Body::json_raw(s.to_string());
    let invalid: Vec<(&str, bool, Body, &str)> = vec![
        (
            "truncated JSON",
            false,
            json(r#"{"name":["whoami"],"args":["#),
            "EOF while parsing",
        ),
        ("a JSON array", false, json("[1,2,3]"), "invalid request"),
        ("a JSON number", false, json("42"), "invalid request"),
        (
            "a JSON string",
            true,
            json(r#""whoami""#),
            "invalid request",
        ),
        (
            "an object without name",
            false,
            json(r#"{"args":[]}"#),
            "missing field `name`",
        ),
        (
            "a name of numbers",
            false,
            json(r#"{"name":[1,2],"args":[]}"#),
            "invalid request",
        ),
        (
            "a name that is an object",
            true,
            json(r#"{"name":{"ebt":"replicate"},"args":[],"type":"duplex"}"#),
            "invalid request",
        ),
        (
            "args that are an object",
            false,
            json(r#"{"name":["whoami"],"args":{"a":1}}"#),
            "args should be array",
        ),
        (
            "an unknown stream type",
            true,
            json(r#"{"name":["createHistoryStream"],"args":[{}],"type":"banana"}"#),
            "unsupported stream type: banana",
        ),
        (
            "a stream request without type",
            true,
            json(r#"{"name":["createHistoryStream"],"args":[{}]}"#),
            "unsupported stream type: undefined",
        ),
        (
            "a type that is a number",
            true,
            json(r#"{"name":["createHistoryStream"],"args":[{}],"type":7}"#),
            "invalid request",
        ),
        (
            "a request as a string body",
            false,
            Body::text(r#"{"name":["whoami"],"args":[]}"#),
            "body is not JSON",
        ),
        (
            "a request as a binary body",
            true,
            Body::binary(noise(300, 7)),
            "body is not JSON",
        ),
    ];
    let rt = runtime();
    rt.block_on(async {
        let mut h = Hostile::connect(&node, &hostile).await;
        for (i, (what, stream, body, reason)) in invalid.iter().enumerate() {
            let req = i as i32 + 1;
            assert!(h.send(&request(req, *stream, body.clone())).await, "{what}");
            let answer = h
                .answer(req, what)
                .await
                .unwrap_or_else(|| panic!("{what}: the node closed instead of answering"));
            assert!(answer.end, "{what}: answered with an error: {answer:?}");
            assert_eq!(answer.stream, *stream, "{what}: {answer:?}");
            let text = answer.body.as_str().unwrap_or_default();
            assert!(
                text.contains(reason),
                "{what}: the error {text:?} does not say {reason:?}"
            );
        }
        // The same connection still answers a good request.
        let whoami = request(100, false, json(r#"{"name":["whoami"],"args":[]}"#));
        assert!(h.send(&whoami).await);
        let answer = h.answer(100, "whoami").await.expect("an answer to whoami");
        assert!(!answer.end, "whoami answered: {answer:?}");
        assert!(
            answer
                .body
                .as_str()
                .is_some_and(|t| t.contains(&node.id.to_string())),
            "whoami answered {answer:?}"
        );

        // Packets that break the framing: each closes its connection.
        let mut bad_utf8 = header(0b0010, 4, 1);
        bad_utf8.extend_from_slice(&[b'"', 0xff, 0xfe, b'"']);
        let broken: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "a header claiming a 4 GiB body",
                header(0b0010, 0xffff_fff0, 1),
                "body of 4294967280 bytes exceeds the 1048576 byte limit",
            ),
            (
                "a header one byte over the limit, with its body",
                [header(0b1010, (1 << 20) + 1, 1), vec![b' '; (1 << 20) + 1]].concat(),
                "body of 1048577 bytes exceeds",
            ),
            (
                "unknown flag bits",
                [header(0x42, 2, 1), b"{}".to_vec()].concat(),
                "unknown bits in header flags 0x42",
            ),
            (
                "body type 3",
                [header(0b0011, 2, 1), b"{}".to_vec()].concat(),
                "unknown body type 3",
            ),
            (
                "a JSON body that is not UTF-8",
                bad_utf8,
                "body of packet 1 is not valid UTF-8",
            ),
        ];
        for (i, (what, bytes, reason)) in broken.iter().enumerate() {
            let keys = test_key(0xc3 + i as u8);
            let mut h = Hostile::connect(&node, &keys).await;
            // The node may close before it has read all of a long packet.
            let _ = h.send(bytes).await;
            h.closed_by_node(what).await;
            let id = keys.id().to_string();
            wait_for(
                15,
                Duration::from_millis(100),
                &format!("{what}: a log line saying why {id} was disconnected"),
                || {
                    let log = node.log_text();
                    (!log_lines_with(&log, &[&id, "disconnected", reason]).is_empty()).then_some(())
                },
                || node.log_tail(40),
            );
        }
        drop(h);
    });

    // One log line per refused request, with its reason.
    let log = node.log_text();
    let rejections = log_lines_with(&log, &["rejecting request"]);
    assert_eq!(
        rejections.len(),
        invalid.len(),
        "one log line per refused request:\n{}",
        rejections.join("\n")
    );
    let id = hostile.id().to_string();
    assert!(
        rejections.iter().all(|l| l.contains(&id)),
        "each names the peer {id}:\n{}",
        rejections.join("\n")
    );
    for (what, _, _, reason) in &invalid {
        assert!(
            rejections.iter().any(|l| l.contains(reason)),
            "{what}: no log line says {reason:?}:\n{}",
            rejections.join("\n")
        );
    }
    assert!(node.running(), "the node survived");
    still_replicates(&node, &good, "invalid requests");
    poller.finish("invalid requests");
    assert!(node.running(), "the node is still running");
}

// ---------------------------------------------------------------------------
// 2. Streams that never end.

/// A feed id that differs from all others with another `n`.
fn fresh_feed(n: u64) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const KEY: &str = "FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=";
    let mut s = String::with_capacity(53);
    s.push('@');
    for i in 0..8 {
        s.push(B64[((n >> (6 * i)) & 63) as usize] as char);
    }
    s.push_str(&KEY[8..]);
    s.push_str(".ed25519");
    s
}

/// One round of EBT junk on stream `req`: notes asking for 256 feeds never
/// named before, notes asking for the node's feed and then not, a genuine
/// message the node holds (`known`), a message of one feed with a garbage
/// signature, and items that are neither notes nor messages.
fn ebt_junk(req: i32, round: u64, node: &str, known: &[u8]) -> Vec<u8> {
    let item = |body: String| encode(true, false, Body::json_raw(body), req);
    let mut out = Vec::new();
    let fresh: Vec<String> = (0..256)
        .map(|i| format!("\"{}\":0", fresh_feed(round * 256 + i)))
        .collect();
    out.extend(item(format!("{{{}}}", fresh.join(","))));
    out.extend(item(format!(r#"{{"{node}":0}}"#)));
    out.extend(item(format!(r#"{{"{node}":-1}}"#)));
    out.extend(item(String::from_utf8(known.to_vec()).unwrap()));
    out.extend(item(format!(
        r#"{{"previous":null,"author":"{}","sequence":{},"timestamp":1,"hash":"sha256","content":{{"type":"post","text":"junk"}},"signature":"{}.sig.ed25519"}}"#,
        fresh_feed(u64::MAX),
        round + 1,
        shoal::crypto::b64_encode(&[7u8; 64]),
    )));
    for junk in [r#"[1,2,3]"#, r#""a string""#, r#"{"@nobody":"x"}"#, "{}"] {
        out.extend(item(junk.to_string()));
    }
    out
}

/// Eight unsigned "messages" of as many feeds never named before.
fn invalid_messages_of_new_feeds(req: i32, round: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..8 {
        let msg = format!(
            r#"{{"previous":null,"author":"{}","sequence":1,"timestamp":1,"hash":"sha256","content":{{"type":"post","text":"junk"}},"signature":"AAAA.sig.ed25519"}}"#,
            fresh_feed((1 << 40) + round * 8 + i)
        );
        out.extend(encode(true, false, Body::json_raw(msg), req));
    }
    out
}

/// Opens `ebt.replicate` as request `req`.
fn open_ebt(req: i32) -> Vec<u8> {
    request(
        req,
        true,
        Body::json_raw(r#"{"name":["ebt","replicate"],"args":[{"version":3}],"type":"duplex"}"#),
    )
}

/// Writes what `next` makes, as fast as the node takes it and without ever
/// reading, while `go` says so; returns the bytes written and whether the
/// node closed the connection.
async fn flood(
    h: &mut Hostile,
    mut go: impl FnMut() -> bool,
    mut next: impl FnMut(u64) -> Vec<u8>,
) -> (usize, bool) {
    let (mut chunk, mut pos, mut sent, mut round) = (Vec::new(), 0, 0usize, 0);
    while go() {
        if pos == chunk.len() {
            chunk.clear();
            pos = 0;
            while chunk.len() < 256 << 10 {
                chunk.extend(next(round));
                round += 1;
            }
        }
        // `write` takes nothing when it does not finish, so a write cut by
        // the timeout leaves the stream whole.
        let write = h.w.write(&chunk[pos..]);
        match tokio::time::timeout(Duration::from_millis(200), write).await {
            Ok(Ok(n)) => {
                pos += n;
                sent += n;
            }
            Ok(Err(_)) => return (sent, true),
            Err(_) => {} // the node is not reading just now
        }
    }
    (sent, false)
}

#[test]
fn an_endless_ebt_stream_leaves_memory_bounded_and_peers_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, good) = node_and_good_peer(dir.path(), 0xd0);
    let n = node.id.to_string();
    let known = node.log_of(&n)[0].value_raw.clone();
    let poller = StatusPoller::start(&node);
    let before = node.rss_kib();
    let watch = RssWatch::start(node.pid());
    let received = AtomicBool::new(false);
    let hostile = test_key(0xd2);

    // Notes and junk as fast as it goes, never reading: for 5 s, and until
    // the good peer's post has reached the node (at most a minute).
    let sent = std::thread::scope(|s| {
        let flooding = s.spawn(|| {
            runtime().block_on(async {
                let mut h = Hostile::connect(&node, &hostile).await;
                assert!(h.send(&open_ebt(1)).await, "opening ebt.replicate");
                let started = Instant::now();
                let go = || {
                    (started.elapsed() < Duration::from_secs(5)
                        || !received.load(Ordering::Relaxed))
                        && started.elapsed() < Duration::from_secs(60)
                };
                let (sent, closed) = flood(&mut h, go, |r| ebt_junk(1, r, &n, &known)).await;
                assert!(!closed, "the node closed the EBT stream of notes");
                // Still not reading, for a moment more.
                tokio::time::sleep(Duration::from_secs(1)).await;
                sent
            })
        });
        std::thread::sleep(Duration::from_secs(1));
        good.post("during the flood");
        node.wait_count(&good.id.to_string(), 3, REPLICATION_SECS);
        received.store(true, Ordering::Relaxed);
        flooding.join().expect("the flood")
    });
    eprintln!("ebt flood: {} KiB sent", sent >> 10);

    // Invalid messages of ever new feeds: the node closes the connection,
    // saying why. A second ebt.replicate on it is refused first.
    let hostile = test_key(0xd3);
    runtime().block_on(async {
        let mut h = Hostile::connect(&node, &hostile).await;
        assert!(h.send(&[open_ebt(1), open_ebt(2)].concat()).await);
        // One of the two (they are answered concurrently) is refused.
        let refused = loop {
            match h.next_frame(15, "a second ebt.replicate").await {
                Some(Frame::Packet(p)) if p.end && (p.req == -1 || p.req == -2) => break p,
                Some(_) => {}
                None => panic!("the node closed the connection"),
            }
        };
        assert!(
            refused
                .body
                .as_str()
                .is_some_and(|t| t.contains("already open")),
            "a second ebt.replicate is refused: {refused:?}"
        );
        let open = if refused.req == -1 { 2 } else { 1 };
        let started = Instant::now();
        let go = || started.elapsed() < Duration::from_secs(60);
        let (sent, closed) = flood(&mut h, go, |r| invalid_messages_of_new_feeds(open, r)).await;
        assert!(
            closed,
            "the node kept taking invalid messages of new feeds ({} KiB)",
            sent >> 10
        );
    });
    assert_logged(
        &node,
        &[
            &hostile.id().to_string(),
            "sent invalid messages of",
            "closing the connection",
        ],
        "invalid messages of ever new feeds",
    );
    let peak = watch.finish();
    assert!(node.running(), "the node survived the flood");
    assert_rss_bounded(&node, before, peak, "an endless EBT stream");
    still_replicates(&node, &good, "an endless EBT stream");
    poller.finish("an endless EBT stream");
}

#[test]
fn a_live_history_stream_never_read_leaves_memory_bounded_and_peers_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xe0));
    let mut good = ServeNode::init(dir.path(), "good", &test_key(0xe1));
    // A big feed: 3000 messages of about 1 KiB.
    let author = test_key(0xe2);
    let filler = "x".repeat(900);
    let big: Vec<Vec<u8>> = {
        let mut out = Vec::new();
        let mut state = None;
        for i in 1..=3000 {
            let v = next_msg(&author, state.as_ref(), post(&format!("{i} {filler}")));
            state = Some(shoal::feed::FeedState {
                sequence: i,
                id: msg_id(&v),
            });
            out.push(sjson::to_compact(&v));
        }
        out
    };
    let file = dir.path().join("big.ndjson");
    write_lines(&file, &big);
    node.ok([std::ffi::OsStr::new("import"), file.as_os_str()]);
    node.follow(&good.id.to_string());
    good.follow(&node.id.to_string());
    node.start();
    good.start();
    good.ok(["connect", node.address().as_str()]);
    node.wait_count(&good.id.to_string(), 1, REPLICATION_SECS);
    good.wait_count(&node.id.to_string(), 1, REPLICATION_SECS);
    let poller = StatusPoller::start(&node);
    let before = node.rss_kib();
    let watch = RssWatch::start(node.pid());

    let rt = runtime();
    let hostile = test_key(0xe3);
    let mut h = rt.block_on(async {
        let mut h = Hostile::connect(&node, &hostile).await;
        let mut all = Vec::new();
        for req in 1..=1000 {
            let body = format!(
                r#"{{"name":["createHistoryStream"],"args":[{{"id":"{}","seq":1,"live":true,"keys":true}}],"type":"source"}}"#,
                author.id()
            );
            all.extend(request(req, true, Body::json_raw(body)));
        }
        assert!(h.send(&all).await, "the requests are sent");
        h
    });
    // Never reading: the node must stop producing, not buffer 1000 copies
    // of the feed. Meanwhile the good peer is served both ways.
    let g = good.id.to_string();
    let n = node.id.to_string();
    for i in 0..3 {
        good.post(&format!("good while the stream is stuck {i}"));
        node.post(&format!("node while the stream is stuck {i}"));
    }
    node.wait_count(&g, 4, REPLICATION_SECS);
    good.wait_count(&n, 4, REPLICATION_SECS);
    std::thread::sleep(Duration::from_secs(4));
    let peak = watch.finish();
    assert!(node.running(), "the node survived");
    assert_rss_bounded(&node, before, peak, "1000 live history streams never read");
    // The streams were being served: what waited for us is the feed.
    let item = rt.block_on(async {
        loop {
            match h.next_frame(15, "a history item").await {
                Some(Frame::Packet(p)) if p.req < 0 && p.stream => break p,
                Some(_) => {}
                None => panic!("the node closed the connection"),
            }
        }
    });
    assert!(
        !item.end
            && item
                .body
                .as_str()
                .is_some_and(|t| t.contains(&author.id().to_string())),
        "a message of the feed: {item:?}"
    );
    drop(h);
    drop(rt);
    still_replicates(&node, &good, "history streams never read");
    poller.finish("history streams never read");
}

// ---------------------------------------------------------------------------
// 3. A flood of connection attempts.

/// One flood connection: idle, random bytes, or a handshake cut after the
/// server's hello. Returns the socket when it is to stay open.
fn flood_connection(addr: &str, i: u64) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).ok()?;
    match i % 3 {
        0 => Some(s),
        1 => {
            let _ = s.write_all(&noise(64 + (i as usize % 200), i));
            Some(s)
        }
        _ => {
            let eph = noise(32, i);
            let mut hello = shoal::crypto::hmac_sha512_256(&main_net_key(), &eph).to_vec();
            hello.extend_from_slice(&eph);
            let _ = s.write_all(&hello);
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = s.read(&mut [0u8; 64]);
            None
        }
    }
}

#[test]
fn a_flood_of_connections_does_not_lock_out_peers() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xf0));
    let mut good = ServeNode::init(dir.path(), "good", &test_key(0xf1));
    let mut other = ServeNode::init(dir.path(), "other", &test_key(0xf2));
    node.configure("max_connections", "16");
    node.configure("max_connections_per_ip", "0");
    let (n, g, o) = (
        node.id.to_string(),
        good.id.to_string(),
        other.id.to_string(),
    );
    node.follow(&g);
    node.follow(&o);
    good.follow(&n);
    other.follow(&n);
    other.post("the other peer's first post");
    node.start();
    good.start();
    other.start();
    good.ok(["connect", node.address().as_str()]);
    node.wait_count(&g, 1, REPLICATION_SECS);
    good.wait_count(&n, 2, REPLICATION_SECS);
    let poller = StatusPoller::start(&node);
    let before = node.rss_kib();
    let watch = RssWatch::start(node.pid());

    // 450 connections, as fast as they open; those kept stay open until the
    // checks below are done.
    let addr = format!("127.0.0.1:{}", node.port);
    let kept: Vec<TcpStream> = (0..450u64)
        .filter_map(|i| flood_connection(&addr, i))
        .collect();
    assert!(
        kept.len() >= 100,
        "only {} flood sockets opened",
        kept.len()
    );

    // The connected peer is still served, and the node can still dial out.
    good.post("the good peer during the flood");
    node.wait_count(&g, 2, REPLICATION_SECS);
    node.ok(["connect", other.address().as_str()]);
    node.wait_count(&o, 1, REPLICATION_SECS);
    other.wait_count(&n, 2, REPLICATION_SECS);
    node.post("the node during the flood");
    good.wait_count(&n, 3, REPLICATION_SECS);
    other.wait_count(&n, 3, REPLICATION_SECS);
    let peak = watch.finish();
    drop(kept);

    // Once the flood is closed, the node accepts new connections.
    let rt = runtime();
    let newcomer = test_key(0xf3);
    wait_for(
        30,
        Duration::from_millis(200),
        "the node to accept a new connection after the flood",
        || {
            rt.block_on(async {
                let addr = format!("127.0.0.1:{}", node.port);
                let c = tokio::time::timeout(
                    Duration::from_secs(15),
                    shoal::net::connect(addr.as_str(), &main_net_key(), &newcomer, &node.id),
                )
                .await;
                matches!(c, Ok(Ok(_))).then_some(())
            })
        },
        || node.log_tail(40),
    );
    assert!(node.running(), "the node survived the flood");
    assert_rss_bounded(&node, before, peak, "a flood of connections");
    // The failed handshakes were logged with their reasons.
    for reason in [
        "wrong network key",
        "connection closed during msg3",
        "handshake failed",
    ] {
        assert_logged(&node, &[reason], "the flood");
    }

    // Authenticated incoming connections take at most 12 of the 16 slots
    // (the good peer and 11 more; `other` is dialled by the node): the
    // next is closed after its handshake, with a reason.
    let mut want = vec![g.clone(), o.clone()];
    want.sort();
    wait_for(
        20,
        Duration::from_millis(100),
        "the node to be connected to the good peers only",
        || (node.connected() == want).then_some(()),
        || node.explain(),
    );
    rt.block_on(async {
        let mut held = Vec::new();
        for i in 0..11 {
            held.push(Hostile::connect(&node, &test_key(0x10 + i)).await);
        }
        wait_for(
            20,
            Duration::from_millis(100),
            "13 connections in the node's table",
            || (node.connected().len() == 13).then_some(()),
            || node.explain(),
        );
        let extra = test_key(0x1e);
        let mut h = Hostile::connect(&node, &extra).await;
        h.closed_by_node("a connection over the incoming slots")
            .await;
        assert_logged(
            &node,
            &[
                &extra.id().to_string(),
                "refused, 12 incoming connections open",
            ],
            "a connection over the incoming slots",
        );
        drop(held);
    });
    still_replicates_with(&node, &[&good, &other], "a flood of connections");
    poller.finish("a flood of connections");
}

/// Like [`still_replicates`], with several good peers.
fn still_replicates_with(node: &ServeNode, peers: &[&ServeNode], what: &str) {
    let n = node.id.to_string();
    let had: Vec<usize> = peers.iter().map(|p| p.count(&n)).collect();
    node.post(&format!("the node after {what}"));
    for (p, had) in peers.iter().zip(had) {
        p.wait_count(&n, had + 1, REPLICATION_SECS);
    }
    let mut want: Vec<String> = peers.iter().map(|p| p.id.to_string()).collect();
    want.sort();
    wait_for(
        20,
        Duration::from_millis(100),
        &format!("after {what}: the node to be connected to the good peers only"),
        || (node.connected() == want).then_some(()),
        || node.explain(),
    );
}

// ---------------------------------------------------------------------------
// 4. A replayed handshake.

#[test]
fn a_replayed_handshake_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, good) = node_and_good_peer(dir.path(), 0xa8);
    let addr = format!("127.0.0.1:{}", node.port);
    let net = main_net_key();
    let client = test_key(0xaa);

    // A genuine handshake, recorded.
    let start = ClientStart::new(&net, &client, &node.id, CurveKeypair::generate())
        .expect("a valid server key");
    let msg1 = start.hello();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(&msg1).unwrap();
    let mut msg2 = [0u8; SERVER_HELLO_LEN];
    s.read_exact(&mut msg2).expect("the server hello");
    let (wait, msg3) = start.read_server_hello(&msg2).expect("a genuine hello");
    s.write_all(&msg3).unwrap();
    let mut msg4 = [0u8; SERVER_ACCEPT_LEN];
    s.read_exact(&mut msg4).expect("the server's acceptance");
    let outcome = wait
        .read_server_accept(&msg4)
        .expect("the server authenticates");
    assert_eq!(outcome.peer, node.id);
    wait_for(
        15,
        Duration::from_millis(100),
        "the genuine client to be connected",
        || {
            node.connected()
                .contains(&client.id().to_string())
                .then_some(())
        },
        || node.explain(),
    );

    // Replayed on new connections: hello and authentication in turn, then
    // both at once. The node answers the hello with a fresh one and refuses
    // the authentication, which was for another exchange.
    let mut s2 = TcpStream::connect(&addr).unwrap();
    s2.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s2.write_all(&msg1).unwrap();
    let mut again = [0u8; SERVER_HELLO_LEN];
    s2.read_exact(&mut again)
        .expect("the node answers the hello");
    assert_ne!(again, msg2, "the node's hello is fresh");
    s2.write_all(&msg3).unwrap();
    assert_closed_by_node(s2, 15, "msg3 replayed after a fresh hello");
    let mut s3 = TcpStream::connect(&addr).unwrap();
    s3.write_all(&[msg1.as_slice(), msg3.as_slice()].concat())
        .unwrap();
    assert_closed_by_node(s3, 15, "msg1 and msg3 replayed at once");
    wait_for(
        15,
        Duration::from_millis(100),
        "two log lines refusing the replayed authentication",
        || {
            let log = node.log_text();
            let refused = log_lines_with(
                &log,
                &[
                    "handshake failed",
                    "msg3 (client authentication) does not authenticate",
                ],
            );
            (refused.len() == 2).then_some(())
        },
        || node.log_tail(40),
    );

    // The genuine connection was not disturbed: it is still in the table.
    let mut want = vec![client.id().to_string(), good.id.to_string()];
    want.sort();
    assert_eq!(node.connected(), want);
    drop(s);
    assert!(node.running(), "the node survived");
    still_replicates(&node, &good, "a replayed handshake");
}

// ---------------------------------------------------------------------------
// 5. Feeds nobody asked for.

/// A peer takes from another only the feeds it asked for: a validly signed
/// message of a feed the node does not replicate is refused before its
/// signature is checked, while one of a feed it follows, sent on the same
/// stream, is stored.
#[test]
fn messages_of_feeds_not_asked_for_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xe0));
    let (asked, stranger) = (test_key(0xe1), test_key(0xe2));
    node.follow(&asked.id().to_string());
    node.start();
    let signed = |k: &Keypair, text: &str| {
        let mut c = shoal::feed::Object::new();
        c.insert("type", shoal::feed::Value::from("post"));
        c.insert("text", shoal::feed::Value::from(text));
        let v = shoal::feed::build(k, None, 1.0, shoal::feed::Value::Object(c), None);
        String::from_utf8(shoal::feed::json::to_compact(&v)).unwrap()
    };
    let hostile = test_key(0xe3);
    runtime().block_on(async {
        let mut h = Hostile::connect(&node, &hostile).await;
        let item = |body: String| encode(true, false, Body::json_raw(body), 1);
        let mut out = open_ebt(1);
        out.extend(item(signed(&stranger, "nobody asked for this")));
        out.extend(item(signed(&asked, "this was asked for")));
        assert!(h.send(&out).await);
        node.wait_count(&asked.id().to_string(), 1, REPLICATION_SECS);
    });
    assert_eq!(node.count(&stranger.id().to_string()), 0);
    assert_logged(
        &node,
        &[&stranger.id().to_string(), "did not ask this peer for"],
        "a feed not asked for",
    );
}
