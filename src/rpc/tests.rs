//! Tests of the multiplexer: two connections joined by `tokio::io::duplex`,
//! or one connection facing raw bytes written the way JavaScript muxrpc
//! frames them. Every test runs under a time limit, so a bug fails instead
//! of hanging.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;

const LIMIT: Duration = Duration::from_secs(20);
const RAW: &str = r#"{"b":1,"a":[1.0]}"#;

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("timed out: something hangs")
}

async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let wait = async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    if tokio::time::timeout(LIMIT / 2, wait).await.is_err() {
        panic!("never happened: {what}");
    }
}

struct Peer {
    rpc: RpcHandle,
    incoming: mpsc::Receiver<Incoming>,
    task: JoinHandle<Result<(), RpcError>>,
}

fn peer(io: DuplexStream, opts: Options) -> Peer {
    let (r, w) = tokio::io::split(io);
    let (rpc, incoming, task) = start(r, w, opts);
    Peer {
        rpc,
        incoming,
        task,
    }
}

fn pair_with(a: Options, b: Options) -> (Peer, Peer) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    (peer(x, a), peer(y, b))
}

fn pair() -> (Peer, Peer) {
    pair_with(Options::default(), Options::default())
}

fn jb(v: impl serde::Serialize) -> Body {
    Body::json(&v).unwrap()
}

type Held = Arc<Mutex<Vec<Responder>>>;

/// The test API, served one task per request; reports on `events`.
async fn handle(req: Incoming, events: mpsc::UnboundedSender<String>, held: Held) {
    let Incoming {
        name,
        args,
        responder,
        ..
    } = req;
    let name: Vec<&str> = name.iter().map(String::as_str).collect();
    let n = args[0].as_u64().unwrap_or(0);
    match (name.as_slice(), responder) {
        (["whoami"], Responder::Async(r)) => r.ok(jb(json!({"id": "@me"}))).await.unwrap(),
        (["fail"], Responder::Async(r)) => r.err("boom").await.unwrap(),
        (["raw"], Responder::Async(r)) => r.ok(Body::json_raw(RAW)).await.unwrap(),
        (["delay"], Responder::Async(r)) => {
            tokio::time::sleep(Duration::from_millis((n * 7) % 13)).await;
            r.ok(jb(n)).await.unwrap()
        }
        (["hang"], r) => {
            held.lock().unwrap().push(r);
            let _ = events.send("held".to_owned());
        }
        (["drop" | "dropstream"], r) => drop(r),
        (["count"], Responder::Stream(s)) => {
            for i in 0..n {
                s.send(jb(i)).await.unwrap();
            }
            s.end().await.unwrap();
        }
        (["countall"], Responder::Stream(s)) => {
            let (sink, _source) = s.into_parts();
            sink.send_all((0..n).map(jb).collect()).await.unwrap();
            sink.end().await.unwrap();
        }
        (["countall_empty_last"], Responder::Stream(s)) => {
            // `n` items and an empty one: refused before any is sent.
            let (sink, _source) = s.into_parts();
            let mut items: Vec<Body> = (0..n).map(jb).collect();
            items.push(Body::Json(bytes::Bytes::new()));
            let err = sink.send_all(items).await.unwrap_err();
            let _ = events.send(format!("send_all: {err}"));
            sink.end().await.unwrap();
        }
        (["forever"], Responder::Stream(s)) => {
            let mut i = 0u64;
            let err = loop {
                if let Err(e) = s.send(jb(i)).await {
                    break e;
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            let _ = events.send(format!("forever stopped: {err}"));
        }
        (["echo"], Responder::Stream(s)) => {
            let (sink, mut source) = s.into_parts();
            while let Some(Ok(item)) = source.next().await {
                if sink.send(item).await.is_err() {
                    break;
                }
            }
            let _ = sink.end().await;
        }
        (["talk"], Responder::Stream(s)) => {
            for i in 0..3 {
                s.send(jb(i)).await.unwrap();
            }
            let (sink, mut source) = s.into_parts();
            sink.end().await.unwrap();
            let end = source.next().await;
            let _ = events.send(format!("talk source: {end:?}"));
        }
        (["collect"], Responder::Stream(mut s)) => {
            let mut got = Vec::new();
            while let Some(item) = s.source().next().await {
                got.push(item.unwrap().as_str().unwrap().to_owned());
            }
            let _ = events.send(format!("collected {}", got.join(",")));
            s.end().await.unwrap();
        }
        (_, r) => r.not_found().await.unwrap(),
    }
}

fn serve(mut incoming: mpsc::Receiver<Incoming>) -> (mpsc::UnboundedReceiver<String>, Held) {
    let (tx, rx) = mpsc::unbounded_channel();
    let held = Held::default();
    let h = held.clone();
    tokio::spawn(async move {
        while let Some(req) = incoming.recv().await {
            tokio::spawn(handle(req, tx.clone(), h.clone()));
        }
    });
    (rx, held)
}

/// A packet as JavaScript's packet-stream-codec writes it.
fn frame(flags: u8, req: i32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(&req.to_be_bytes());
    v.extend_from_slice(body);
    v
}

async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut v = vec![0u8; HEADER_LEN];
    r.read_exact(&mut v).await.unwrap();
    let len = u32::from_be_bytes([v[1], v[2], v[3], v[4]]) as usize;
    v.resize(HEADER_LEN + len, 0);
    r.read_exact(&mut v[HEADER_LEN..]).await.unwrap();
    v
}

fn remote(r: Result<Body, RpcError>) -> RemoteError {
    match r {
        Err(RpcError::Remote(e)) => e,
        other => panic!("expected a peer error, got {other:?}"),
    }
}

#[tokio::test]
async fn async_call_ok_and_error() {
    within(async {
        let (a, b) = pair();
        serve(b.incoming);
        let body = a.rpc.call_async(&["whoami"], json!([])).await.unwrap();
        assert_eq!(body, Body::json_raw(r#"{"id":"@me"}"#));

        let e = remote(a.rpc.call_async(&["fail"], json!([])).await);
        assert_eq!((e.name.as_str(), e.message.as_str()), ("Error", "boom"));
        assert_eq!(
            e.body,
            Body::json_raw(r#"{"name":"Error","message":"boom","stack":""}"#)
        );
        assert!(matches!(
            a.rpc.call_async(&["whoami"], json!({})).await,
            Err(RpcError::ArgsNotArray)
        ));
        assert_eq!(a.rpc.live_entries(), 0);
        eventually("slots released", || b.rpc.live_incoming() == 0).await;
    })
    .await
}

#[tokio::test]
async fn source_stream_of_many_items_then_end() {
    within(async {
        let (a, b) = pair();
        serve(b.incoming);
        let mut s = a.rpc.call_source(&["count"], json!([2000])).await.unwrap();
        let mut n = 0u64;
        while let Some(item) = s.next().await {
            assert_eq!(item.unwrap(), jb(n));
            n += 1;
        }
        assert_eq!(n, 2000);
        assert!(s.next().await.is_none());
        // Both ends exchanged: the request number is free on both sides.
        eventually("numbers freed", || {
            a.rpc.live_entries() == 0 && b.rpc.live_entries() == 0 && b.rpc.live_incoming() == 0
        })
        .await;
    })
    .await
}

#[tokio::test]
async fn duplex_both_directions_and_both_ends() {
    within(async {
        let (a, b) = pair();
        let (mut events, _) = serve(b.incoming);

        // We end first.
        let (sink, mut src) = a.rpc.call_duplex(&["echo"], json!([])).await.unwrap();
        for i in 0..50 {
            sink.send(jb(i)).await.unwrap();
            assert_eq!(src.next().await.unwrap().unwrap(), jb(i));
        }
        for i in 50..100 {
            sink.send(jb(i)).await.unwrap();
        }
        for i in 50..100 {
            assert_eq!(src.next().await.unwrap().unwrap(), jb(i));
        }
        sink.end().await.unwrap();
        assert!(src.next().await.is_none());
        eventually("numbers freed", || {
            a.rpc.live_entries() == 0 && b.rpc.live_entries() == 0
        })
        .await;

        // The peer ends first: we answer with our end at once.
        let (sink, mut src) = a.rpc.call_duplex(&["talk"], json!([])).await.unwrap();
        for i in 0..3 {
            assert_eq!(src.next().await.unwrap().unwrap(), jb(i));
        }
        assert!(src.next().await.is_none());
        assert!(matches!(sink.send(jb(9)).await, Err(RpcError::StreamEnded)));
        assert!(!sink.is_open());
        sink.end().await.unwrap();
        assert_eq!(events.recv().await.unwrap(), "talk source: None");
        eventually("numbers freed", || {
            a.rpc.live_entries() == 0 && b.rpc.live_entries() == 0
        })
        .await;
    })
    .await
}

#[tokio::test]
async fn sink_call() {
    within(async {
        let (a, b) = pair();
        let (mut events, _) = serve(b.incoming);
        let (sink, mut done) = a.rpc.call_sink(&["collect"], json!([])).await.unwrap();
        for i in 0..20 {
            sink.send(jb(i)).await.unwrap();
        }
        sink.end().await.unwrap();
        assert!(done.next().await.is_none());
        let want: Vec<String> = (0..20).map(|i: u32| i.to_string()).collect();
        assert_eq!(
            events.recv().await.unwrap(),
            format!("collected {}", want.join(","))
        );
    })
    .await
}

#[tokio::test]
async fn unknown_methods_get_the_error_object() {
    within(async {
        let (a, b) = pair();
        serve(b.incoming);
        let e = remote(a.rpc.call_async(&["nope"], json!([])).await);
        assert_eq!(e.message, "no such method: nope");

        let (sink, mut src) = a
            .rpc
            .call_duplex(&["ebt", "replicate"], json!([{"version": 3}]))
            .await
            .unwrap();
        match src.next().await {
            Some(Err(RpcError::Remote(e))) => assert_eq!(
                e.body.as_str(),
                Some(r#"{"name":"Error","message":"no such method: ebt.replicate","stack":""}"#)
            ),
            other => panic!("{other:?}"),
        }
        assert!(src.next().await.is_none());
        assert!(matches!(sink.send(jb(1)).await, Err(RpcError::StreamEnded)));
    })
    .await
}

#[tokio::test]
async fn not_found_bytes_on_the_wire() {
    within(async {
        let (mut raw, y) = tokio::io::duplex(64 * 1024);
        let mut b = peer(y, Options::default());
        let mut incoming = std::mem::replace(&mut b.incoming, mpsc::channel(1).1);
        tokio::spawn(async move {
            while let Some(r) = incoming.recv().await {
                r.not_found().await.unwrap();
            }
        });

        raw.write_all(&frame(0b0010, 1, br#"{"name":["whoami"],"args":[]}"#))
            .await
            .unwrap();
        let body = br#"{"name":"Error","message":"no such method: whoami","stack":""}"#;
        assert_eq!(body.len(), 0x3e);
        let mut want = vec![0x06, 0, 0, 0, 0x3e, 0xff, 0xff, 0xff, 0xff];
        want.extend_from_slice(body);
        assert_eq!(read_frame(&mut raw).await, want);

        // A JavaScript duplex call sends its first item before any answer.
        let request = br#"{"name":["ebt","replicate"],"args":[{"version":3}],"type":"duplex"}"#;
        raw.write_all(&frame(0b1010, 2, request)).await.unwrap();
        raw.write_all(&frame(0b1010, 2, br#"{"@a":1}"#))
            .await
            .unwrap();
        let body = br#"{"name":"Error","message":"no such method: ebt.replicate","stack":""}"#;
        assert_eq!(read_frame(&mut raw).await, frame(0x0e, -2, body));
        // Our end frees the number; nothing else was sent.
        raw.write_all(&frame(0b1110, 2, b"true")).await.unwrap();
        eventually("numbers freed", || {
            b.rpc.live_entries() == 0 && b.rpc.live_incoming() == 0
        })
        .await;

        // Malformed requests are answered with an error, not handed on.
        raw.write_all(&frame(0b0010, 3, br#"{"name":["x"],"args":{}}"#))
            .await
            .unwrap();
        let body =
            br#"{"name":"Error","message":"invalid request, args should be array","stack":""}"#;
        assert_eq!(read_frame(&mut raw).await, frame(0x06, -3, body));
        raw.write_all(&frame(0b1001, 4, b"hello")).await.unwrap();
        let body = br#"{"name":"Error","message":"invalid request: body is not JSON","stack":""}"#;
        assert_eq!(read_frame(&mut raw).await, frame(0x0e, -4, body));
        raw.write_all(&frame(
            0b1010,
            5,
            br#"{"name":["x"],"args":[],"type":"weird"}"#,
        ))
        .await
        .unwrap();
        let body = br#"{"name":"Error","message":"unsupported stream type: weird","stack":""}"#;
        assert_eq!(read_frame(&mut raw).await, frame(0x0e, -5, body));

        // Goodbye is answered with goodbye, and the connection ends cleanly.
        raw.write_all(&[0; 9]).await.unwrap();
        assert_eq!(read_frame(&mut raw).await, vec![0; 9]);
        assert!(b.task.await.unwrap().is_ok());
    })
    .await
}

#[tokio::test]
async fn serves_a_javascript_history_stream_request() {
    within(async {
        let (mut raw, y) = tokio::io::duplex(64 * 1024);
        let mut b = peer(y, Options::default());
        let request = br#"{"name":["createHistoryStream"],"type":"source","args":[{"id":"@FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=.ed25519","seq":1}]}"#;
        raw.write_all(&frame(0b1010, 1, request)).await.unwrap();

        let req = b.incoming.recv().await.unwrap();
        assert!(req.is(&["createHistoryStream"]));
        assert_eq!(req.kind, Kind::Source);
        assert_eq!(
            req.args,
            json!([{"id": "@FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=.ed25519", "seq": 1}])
        );
        assert_eq!(&req.body[..], &request[..]);
        let Responder::Stream(s) = req.responder else {
            panic!("not a stream")
        };
        s.send(Body::json_raw(RAW)).await.unwrap();
        s.send(Body::json_raw("[2]")).await.unwrap();
        s.end().await.unwrap();

        assert_eq!(read_frame(&mut raw).await, frame(0b1010, -1, RAW.as_bytes()));
        assert_eq!(read_frame(&mut raw).await, frame(0b1010, -1, b"[2]"));
        assert_eq!(read_frame(&mut raw).await, frame(0b1110, -1, b"true"));
        assert_eq!(b.rpc.live_entries(), 1);
        raw.write_all(&frame(0b1110, 1, b"true")).await.unwrap();
        eventually("number freed", || b.rpc.live_entries() == 0).await;
        eventually("slot freed", || b.rpc.live_incoming() == 0).await;
    })
    .await
}

#[tokio::test]
async fn peer_vanishing_mid_stream_ends_everything_with_errors() {
    within(async {
        let (a, b) = pair();
        let (mut events, _held) = serve(b.incoming);
        let mut s = a.rpc.call_source(&["forever"], json!([])).await.unwrap();
        for _ in 0..5 {
            s.next().await.unwrap().unwrap();
        }
        let rpc = a.rpc.clone();
        let pending = tokio::spawn(async move { rpc.call_async(&["hang"], json!([])).await });
        assert_eq!(events.recv().await.unwrap(), "held");

        b.task.abort();
        let mut last = None;
        while let Some(item) = s.next().await {
            if let Err(e) = item {
                last = Some(e);
            }
        }
        assert!(matches!(last, Some(RpcError::Closed)), "{last:?}");
        assert!(matches!(pending.await.unwrap(), Err(RpcError::Closed)));
        // The connection task finishes (cleanly, or with a packet cut short).
        let _ = a.task.await.unwrap();
        assert!(a.rpc.is_closed());
        assert!(matches!(
            a.rpc.call_async(&["whoami"], json!([])).await,
            Err(RpcError::Closed)
        ));
        assert!(matches!(
            a.rpc.call_source(&["count"], json!([1])).await,
            Err(RpcError::Closed)
        ));
        // The vanished side's own server sees its sends fail too.
        assert_eq!(
            events.recv().await.unwrap(),
            "forever stopped: connection closed"
        );
    })
    .await
}

/// Feeds `bytes` to a connection (then closes the input if `eof`); returns
/// how the connection ended, after checking that a pending call failed and
/// the request receiver ended.
async fn bad_input(bytes: &[u8], eof: bool) -> RpcError {
    let (mut raw, x) = tokio::io::duplex(64 * 1024);
    let mut a = peer(
        x,
        Options {
            max_body: 1000,
            ..Options::default()
        },
    );
    let rpc = a.rpc.clone();
    let pending = tokio::spawn(async move { rpc.call_async(&["hang"], json!([])).await });
    // Our request is on the wire before the bad bytes arrive.
    read_frame(&mut raw).await;
    raw.write_all(bytes).await.unwrap();
    if eof {
        raw.shutdown().await.unwrap();
    }
    let err = a.task.await.unwrap().unwrap_err();
    assert!(matches!(pending.await.unwrap(), Err(RpcError::Closed)));
    assert!(a.incoming.recv().await.is_none());
    drop(raw);
    err
}

#[tokio::test]
async fn bad_bytes_from_the_peer_end_the_connection() {
    within(async {
        let e = bad_input(&frame(0b0011, 1, b"hello"), false).await;
        assert!(
            matches!(e, RpcError::Codec(CodecError::BadBodyType { flags: 3 })),
            "{e:?}"
        );
        let e = bad_input(b"GET / HTTP/1.1\r\n\r\n", false).await;
        assert!(
            matches!(e, RpcError::Codec(CodecError::UnknownFlags { flags: b'G' })),
            "{e:?}"
        );
        let e = bad_input(&[0b0010, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1], false).await;
        assert!(
            matches!(
                e,
                RpcError::Codec(CodecError::BodyTooLarge {
                    len: 0x7fff_ffff,
                    max: 1000
                })
            ),
            "{e:?}"
        );
        let e = bad_input(&[0b1010, 0, 0, 0, 9], true).await;
        assert!(
            matches!(e, RpcError::Codec(CodecError::Truncated { buffered: 5 })),
            "{e:?}"
        );
        let e = bad_input(&frame(0b0001, -1, &[0xc3, 0x28]), false).await;
        assert!(
            matches!(e, RpcError::Codec(CodecError::InvalidUtf8 { req: -1 })),
            "{e:?}"
        );
    })
    .await
}

#[tokio::test]
async fn json_bodies_arrive_byte_identical() {
    within(async {
        let (a, b) = pair();
        serve(b.incoming);
        let body = a.rpc.call_async(&["raw"], json!([])).await.unwrap();
        assert_eq!(body, Body::Json(RAW.into()));

        let (sink, mut src) = a.rpc.call_duplex(&["echo"], json!([])).await.unwrap();
        let bodies = [
            Body::json_raw(RAW),
            Body::json_raw("  [1e3, \"\\u00e9\"] "),
            Body::text("plain"),
            Body::binary(vec![0u8, 1, 255]),
        ];
        for body in &bodies {
            sink.send(body.clone()).await.unwrap();
        }
        for body in &bodies {
            assert_eq!(&src.next().await.unwrap().unwrap(), body);
        }
        sink.end().await.unwrap();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_calls_and_parallel_streams() {
    within(async {
        let (a, b) = pair();
        serve(b.incoming);
        let calls = (0..100u64).map(|i| {
            let rpc = a.rpc.clone();
            async move {
                let body = rpc.call_async(&["delay"], json!([i])).await.unwrap();
                assert_eq!(body, jb(i));
            }
        });
        let streams = (0..10u64).map(|k| {
            let rpc = a.rpc.clone();
            tokio::spawn(async move {
                let mut s = rpc.call_source(&["count"], json!([100 + k])).await.unwrap();
                let mut n = 0;
                while let Some(item) = s.next().await {
                    assert_eq!(item.unwrap(), jb(n));
                    n += 1;
                }
                assert_eq!(n, 100 + k);
            })
        });
        let (_, streams) = tokio::join!(join_all(calls), join_all(streams));
        for s in streams {
            s.unwrap();
        }
        eventually("numbers freed", || {
            a.rpc.live_entries() == 0 && b.rpc.live_entries() == 0 && b.rpc.live_incoming() == 0
        })
        .await;
    })
    .await
}

#[tokio::test]
async fn dropped_responders_answer_with_errors() {
    within(async {
        let (a, b) = pair();
        serve(b.incoming);
        let e = remote(a.rpc.call_async(&["drop"], json!([])).await);
        assert_eq!(e.message, "request dropped without an answer: drop");
        let mut s = a.rpc.call_source(&["dropstream"], json!([])).await.unwrap();
        match s.next().await {
            Some(Err(RpcError::Remote(e))) => {
                assert_eq!(e.message, "stream dropped without end: dropstream")
            }
            other => panic!("{other:?}"),
        }
        assert!(s.next().await.is_none());
    })
    .await
}

#[tokio::test]
async fn dropping_a_source_aborts_it() {
    within(async {
        let (a, b) = pair();
        let (mut events, _) = serve(b.incoming);
        let mut s = a.rpc.call_source(&["forever"], json!([])).await.unwrap();
        for _ in 0..3 {
            s.next().await.unwrap().unwrap();
        }
        drop(s);
        assert_eq!(
            events.recv().await.unwrap(),
            "forever stopped: stream already ended"
        );
        eventually("numbers freed", || {
            a.rpc.live_entries() == 0 && b.rpc.live_entries() == 0
        })
        .await;
    })
    .await
}

#[tokio::test]
async fn requests_over_the_limit_get_an_error() {
    within(async {
        let (a, b) = pair_with(
            Options::default(),
            Options {
                max_incoming: 2,
                ..Options::default()
            },
        );
        let (mut events, held) = serve(b.incoming);
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let rpc = a.rpc.clone();
                tokio::spawn(async move { rpc.call_async(&["hang"], json!([])).await })
            })
            .collect();
        for _ in 0..2 {
            assert_eq!(events.recv().await.unwrap(), "held");
        }
        let e = remote(a.rpc.call_async(&["whoami"], json!([])).await);
        assert_eq!(e.message, "too many concurrent requests (limit 2)");
        let mut s = a.rpc.call_source(&["count"], json!([3])).await.unwrap();
        assert!(matches!(s.next().await, Some(Err(RpcError::Remote(_)))));

        let waiting: Vec<Responder> = std::mem::take(&mut *held.lock().unwrap());
        for r in waiting {
            r.error("later").await.unwrap();
        }
        for c in calls {
            assert_eq!(remote(c.await.unwrap()).message, "later");
        }
        eventually("slots freed", || b.rpc.live_incoming() == 0).await;
        a.rpc.call_async(&["whoami"], json!([])).await.unwrap();
        eventually("numbers freed", || {
            a.rpc.live_entries() == 0 && b.rpc.live_entries() == 0
        })
        .await;
    })
    .await
}

#[tokio::test]
async fn items_sent_all_at_once_arrive_in_order_whatever_the_send_queue() {
    // Groups of one (queues under 32) up to sixteen (the default 256): a
    // group asking for more room than the queue has would never be sent.
    for send_queue in [1, 20, 256] {
        within(async {
            let opts = Options {
                send_queue,
                ..Options::default()
            };
            let (a, b) = pair_with(Options::default(), opts);
            serve(b.incoming);
            for n in [0u64, 1, 17, 300] {
                let mut s = a.rpc.call_source(&["countall"], json!([n])).await.unwrap();
                let mut got = 0u64;
                while let Some(item) = s.next().await {
                    assert_eq!(item.unwrap(), jb(got), "queue {send_queue}");
                    got += 1;
                }
                assert_eq!(got, n, "queue {send_queue}");
            }
        })
        .await
    }
}

#[tokio::test]
async fn items_sent_all_at_once_with_an_empty_one_are_none_of_them_sent() {
    within(async {
        let (a, b) = pair();
        let (mut events, _held) = serve(b.incoming);
        let mut s = a
            .rpc
            .call_source(&["countall_empty_last"], json!([40]))
            .await
            .unwrap();
        assert!(s.next().await.is_none(), "an item was sent");
        let said = events.recv().await.unwrap();
        assert!(said.starts_with("send_all: "), "{said}");
        assert!(said.contains("empty"), "{said}");
    })
    .await
}

#[tokio::test]
async fn a_slow_reader_gets_everything_in_order() {
    // Bounded by items per stream, then by bytes over all streams.
    let small_queue = Options {
        stream_queue: 4,
        ..Options::default()
    };
    let small_budget = Options {
        max_body: 64,
        inbound_bytes: 0,
        ..Options::default()
    };
    for opts in [small_queue, small_budget] {
        within(async {
            let (a, b) = pair_with(opts, Options::default());
            serve(b.incoming);
            let read = |k: u64| {
                let rpc = a.rpc.clone();
                async move {
                    let mut s = rpc.call_source(&["count"], json!([300 + k])).await.unwrap();
                    let mut n = 0u64;
                    while let Some(item) = s.next().await {
                        assert_eq!(item.unwrap(), jb(n));
                        n += 1;
                        if n % 50 == 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                    assert_eq!(n, 300 + k);
                }
            };
            tokio::join!(read(0), read(1));
            a.rpc.call_async(&["whoami"], json!([])).await.unwrap();
        })
        .await
    }
}

#[tokio::test]
async fn goodbye_closes_both_sides() {
    within(async {
        let (a, mut b) = pair();
        let rpc = a.rpc.clone();
        let pending = tokio::spawn(async move { rpc.call_async(&["hang"], json!([])).await });
        let req = b.incoming.recv().await.unwrap();
        a.rpc.goodbye().await;
        assert!(matches!(pending.await.unwrap(), Err(RpcError::Closed)));
        assert!(b.incoming.recv().await.is_none());
        assert!(a.task.await.unwrap().is_ok());
        assert!(b.task.await.unwrap().is_ok());
        assert!(b.rpc.is_closed());
        drop(req);
        assert!(matches!(
            b.rpc.call_async(&["whoami"], json!([])).await,
            Err(RpcError::Closed)
        ));
    })
    .await
}

/// Sends on a duplex stream until that fails.
async fn flood(rpc: RpcHandle) -> Result<(), RpcError> {
    let (sink, _src) = rpc.call_duplex(&["x"], json!([])).await?;
    loop {
        sink.send(Body::json_raw(RAW)).await?;
    }
}

#[tokio::test]
async fn goodbye_does_not_wait_forever_for_a_peer_that_does_not_read() {
    within(async {
        // A 64-byte pipe nobody reads: our writer blocks at once.
        let (_raw, x) = tokio::io::duplex(64);
        let a = peer(
            x,
            Options {
                close_timeout: Duration::from_millis(100),
                ..Options::default()
            },
        );
        let rpc = a.rpc.clone();
        let pending = tokio::spawn(flood(rpc));
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.rpc.goodbye().await;
        assert!(matches!(pending.await.unwrap(), Err(RpcError::Closed)));
        assert!(a.task.await.unwrap().is_ok());
    })
    .await
}

#[tokio::test]
async fn idle_timeout_closes_a_silent_connection() {
    within(async {
        let (a, _b) = pair_with(
            Options {
                idle_timeout: Some(Duration::from_millis(100)),
                ..Options::default()
            },
            Options::default(),
        );
        assert!(matches!(a.task.await.unwrap(), Err(RpcError::Idle(_))));
    })
    .await
}

#[test]
fn remote_error_from_any_body() {
    let e = RemoteError::from_body(Body::json_raw(
        r#"{"message":"no async:x","name":"TypeError","stack":"..."}"#,
    ));
    assert_eq!(e.to_string(), "TypeError: no async:x");
    let e = RemoteError::from_body(Body::text("oops"));
    assert_eq!((e.name.as_str(), e.message.as_str()), ("Error", "oops"));
    let e = RemoteError::from_body(Body::json_raw("false"));
    assert_eq!(e.message, "false");
    let v: Value = error_body("x").parse_json().unwrap();
    assert_eq!(v, json!({"name": "Error", "message": "x", "stack": ""}));
}

/// The handles and their futures can move between threads.
#[allow(dead_code, clippy::manual_async_fn)]
fn handles_and_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RpcHandle>();
    send_sync::<DuplexSink>();
    send_sync::<Incoming>();
    send_sync::<RpcError>();
    fn check(rpc: RpcHandle, sink: DuplexSink, src: SourceStream, r: Responder) {
        send(&rpc.call_async(&["a"], Value::Null));
        send(&rpc.call_source(&["a"], Value::Null));
        send(&rpc.call_duplex(&["a"], Value::Null));
        send(&rpc.goodbye());
        send(&sink.send(Body::json_true()));
        send(&sink.end());
        send(&src);
        send(&r.not_found());
    }
    let _ = check;
}
