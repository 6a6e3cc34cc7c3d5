//! The control socket speaks the typed API: a running `shoal serve`
//! answers versioned requests, refuses other versions and malformed lines
//! with a typed error (the connection stays usable), and pushes its events
//! to a subscriber as they happen, so a client need not poll.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::test_key;
use crate::nodes::ServeNode;

fn send(s: &mut UnixStream, v: &Value) {
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    s.write_all(&line).unwrap();
}

fn read(r: &mut impl BufRead) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn the_control_socket_answers_typed_requests_and_pushes_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "ctl", &test_key(61));
    node.start();

    let mut s = UnixStream::connect(node.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());

    // A request of this version is answered.
    send(&mut s, &json!({"v": 1, "call": {"cmd": "whoami"}}));
    let a = read(&mut r);
    assert_eq!(a["ok"]["kind"], "id", "{a}");
    assert_eq!(a["ok"]["body"]["id"], node.id.to_string(), "{a}");

    // Another version, a malformed line, a bad id: typed errors, and the
    // connection goes on.
    send(&mut s, &json!({"v": 2, "call": {"cmd": "whoami"}}));
    let a = read(&mut r);
    assert_eq!(a["error"]["error"], "usage", "{a}");
    assert!(
        a["error"]["reason"].as_str().unwrap().contains("version"),
        "{a}"
    );
    s.write_all(b"{not json\n").unwrap();
    assert_eq!(read(&mut r)["error"]["error"], "usage");
    send(
        &mut s,
        &json!({"v": 1, "call": {"cmd": "thread", "id": "%nope"}}),
    );
    assert_eq!(read(&mut r)["error"]["error"], "usage");
    send(
        &mut s,
        &json!({"v": 1, "call": {"cmd": "get", "id": format!("%{}.sha256", "A".repeat(43) + "=")}}),
    );
    let a = read(&mut r);
    assert_eq!(a["error"]["error"], "not-found", "{a}");

    // A subscriber is pushed each message stored, and a publish through
    // the API is one.
    let mut sub = UnixStream::connect(node.socket()).unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut events = BufReader::new(sub.try_clone().unwrap());
    send(&mut sub, &json!({"v": 1, "subscribe": {}}));
    let live = read(&mut events);
    assert_eq!(
        live["ok"]["kind"], "done",
        "the subscription is live: {live}"
    );
    let key = node.post("pushed, not polled");
    let e = read(&mut events);
    assert_eq!(e["event"]["event"], "appended", "{e}");
    assert_eq!(e["event"]["author"], node.id.to_string(), "{e}");
    assert_eq!(e["event"]["seq"], 1, "{e}");
    assert!(key.starts_with('%'));

    node.stop();
}
