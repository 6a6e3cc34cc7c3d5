//! Rooms against the JavaScript room stack (the pinned kit in
//! `tests/js/rooms`, see `jsenv::room_kit`): two shoal nodes on networks
//! that cannot reach each other replicate both ways through the
//! JavaScript rooms 1.0 server `ssb-room` 1.3.0, which shoal's client
//! meets with `tunnel.announce` and `tunnel.endpoints`; and a
//! Manyverse-style JavaScript peer (secret-stack, ssb-db2, ssb-friends,
//! ssb-ebt, ssb-replication-scheduler, ssb-conn, ssb-room-client 2) joins
//! an open shoal room by its address and replicates both ways with a
//! shoal node through it, over a `tunnel:` connection; and that peer and
//! a shoal node replicate through `ssb-room`.
//!
//! Every process is real and bounded: the JavaScript ones exit when their
//! TTL elapses (and are sent SIGTERM when the test ends), and every wait
//! has a deadline that fails with what each side saw.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as Json;

use crate::common::test_key;
use crate::jsenv::room_kit;
use crate::nodes::{ServeNode, file_tail, wait_for};
use crate::rooms::apart;

/// Seconds a JavaScript process of these tests may live at most.
const JS_TTL_SECS: u32 = 240;

/// How long a wait for replication may take: generous for two loaded
/// cores, and each wait returns as soon as its condition holds.
const WAIT_SECS: u64 = 90;

/// The 32-byte seed of `crate::common::test_key(n)`, in hex, for a
/// JavaScript peer to have the same key.
fn seed_hex(n: u8) -> String {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[31] = 0x5e;
    hex::encode(seed)
}

/// A script of the room kit running in the background (under `timeout`,
/// in a network namespace or not), its stdout's JSON lines collected as
/// they come; sent SIGTERM on drop.
struct JsProcess {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<Json>>>,
    stderr: std::path::PathBuf,
}

impl JsProcess {
    /// Runs `node SCRIPT ARGS…` from the kit, in `netns` if given, its
    /// stderr in `dir/NAME.stderr`.
    fn start(name: &str, netns: Option<&str>, dir: &Path, script: &str, args: &[String]) -> Self {
        let kit = room_kit();
        let mut cmd = match netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "timeout"]);
                cmd
            }
            None => Command::new("timeout"),
        };
        let stderr = dir.join(format!("{name}.stderr"));
        let mut child = cmd
            .args(["-k", "5", &(JS_TTL_SECS + 20).to_string(), "node"])
            .arg(kit.join(script))
            .args(args)
            .current_dir(kit)
            // What the room client and server do, in the stderr a failed
            // wait prints.
            .env("DEBUG", "ssb:room-client,ssb:room:tunnel:server")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("a stderr file"))
            .spawn()
            .expect("`timeout` (coreutils), `ip` and `node` run");
        let lines: Arc<Mutex<Vec<Json>>> = Arc::default();
        let out = child.stdout.take().expect("piped stdout");
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line) {
                    collected.lock().expect("lock").push(v);
                }
            }
        });
        JsProcess {
            name: name.to_string(),
            child,
            lines,
            stderr,
        }
    }

    /// The last line printed that `keep` accepts.
    fn last(&self, keep: impl Fn(&Json) -> bool) -> Option<Json> {
        let lines = self.lines.lock().expect("lock");
        lines.iter().rev().find(|l| keep(l)).cloned()
    }

    /// Waits (at most `secs`) for a line that `keep` accepts.
    #[track_caller]
    fn wait_line(&mut self, secs: u64, what: &str, keep: impl Fn(&Json) -> bool) -> Json {
        let (name, lines, stderr) = (self.name.clone(), self.lines.clone(), self.stderr.clone());
        let exited = std::cell::Cell::new(None);
        let found = wait_for(
            secs,
            Duration::from_millis(100),
            &format!("{name}: {what}"),
            || {
                if let Ok(Some(status)) = self.child.try_wait() {
                    exited.set(Some(status));
                    return Some(None);
                }
                self.last(&keep).map(Some)
            },
            || explain(&name, &lines, &stderr),
        );
        found.unwrap_or_else(|| {
            panic!(
                "{name} exited with {:?} before {what}\n{}",
                exited.get(),
                self.explain()
            )
        })
    }

    /// What it printed last and its stderr's tail.
    fn explain(&self) -> String {
        explain(&self.name, &self.lines, &self.stderr)
    }
}

/// What a [`JsProcess`] printed last and its stderr's tail.
fn explain(name: &str, lines: &Mutex<Vec<Json>>, stderr: &Path) -> String {
    let lines = lines.lock().expect("lock");
    let last: Vec<String> = lines
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(Json::to_string)
        .collect();
    format!(
        "{name}: last said:\n{}\nstderr:\n{}",
        last.join("\n"),
        file_tail(stderr, 30)
    )
}

impl Drop for JsProcess {
    fn drop(&mut self) {
        // `timeout` passes SIGTERM on to node.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        while std::time::Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `room-server.js` in `netns` (if given) on HOST:PORT: the process and
/// the room's feed id.
fn js_room(dir: &Path, netns: Option<&str>, host: &str, port: u16) -> (JsProcess, String) {
    let mut room = JsProcess::start(
        "ssb-room",
        netns,
        dir,
        "room-server.js",
        &[
            dir.join("ssb-room").display().to_string(),
            port.to_string(),
            JS_TTL_SECS.to_string(),
            host.to_string(),
        ],
    );
    let said = room.wait_line(60, "to listen", |l| l["id"].is_string());
    let id = said["id"].as_str().expect("the room's id").to_string();
    (room, id)
}

/// A report of `room-peer.js` in which it holds `feed` up to `seq` at
/// least.
fn holds(feed: &str, seq: u64) -> impl Fn(&Json) -> bool {
    move |l| l["event"] == "report" && l["feed"] == feed && l["seq"].as_u64() >= Some(seq)
}

#[test]
fn shoal_nodes_that_cannot_reach_each_other_replicate_through_the_js_room_server() {
    // a - room - b in network namespaces: ssb-room runs on the room's
    // host, on both networks; a and b reach only it.
    let apart = apart("jsroom");
    let dir = tempfile::tempdir().unwrap();
    let (_room, room_id) = js_room(dir.path(), Some(&apart.names[1]), "0.0.0.0", 8008);
    let key = room_id
        .strip_prefix('@')
        .and_then(|k| k.strip_suffix(".ed25519"))
        .expect("an ed25519 feed id");
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0x3a));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0x3b));
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    for n in [&a, &b] {
        n.configure("lan", "false");
    }
    a.follow(&b_id);
    b.follow(&a_id);
    a.post("a, through ssb-room");
    b.post("b, through ssb-room");
    a.in_netns(&apart.names[0], "10.81.1.2", 8008);
    b.in_netns(&apart.names[2], "10.81.2.2", 8008);
    a.start();
    b.start();
    let direct = a.run(["connect", b.address().as_str()]);
    assert_ne!(direct.code, 0, "a reached b directly: {}", direct.text());
    a.ok(["room", "join", &format!("net:10.81.1.1:8008~shs:{key}")]);
    b.ok(["room", "join", &format!("net:10.81.2.1:8008~shs:{key}")]);
    a.wait_count(&b_id, 2, WAIT_SECS);
    b.wait_count(&a_id, 2, WAIT_SECS);
    // Live, through the same tunnel.
    b.post("b, later");
    a.wait_count(&b_id, 3, WAIT_SECS);
    let tunnel = a
        .connection(&b_id)
        .unwrap_or_else(|| panic!("a connection to b: {}", a.explain()));
    let addr = tunnel["addr"].as_str().unwrap();
    assert!(
        addr.starts_with(&format!("tunnel:{room_id}:{b_id}~shs:")),
        "{addr}"
    );
}

#[test]
fn a_js_peer_joins_a_shoal_room_and_replicates_with_a_shoal_node_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0x3c));
    room.configure("room", "{ name = \"shoal room\" }");
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0x3d));
    let js_id = test_key(0x3e).id().to_string();
    let node_id = node.id.to_string();
    node.follow(&js_id);
    node.post("from shoal, 1");
    node.post("from shoal, 2");
    room.start();
    node.start();
    node.ok(["room", "join", room.address().as_str()]);
    let mut js = JsProcess::start(
        "js-peer",
        None,
        dir.path(),
        "room-peer.js",
        &[
            dir.path().join("js-peer").display().to_string(),
            JS_TTL_SECS.to_string(),
            "--seed".into(),
            seed_hex(0x3e),
            "--follow".into(),
            node_id.clone(),
            "--post".into(),
            "from js, 1".into(),
            "--post".into(),
            "from js, 2".into(),
            "--room".into(),
            room.address(),
            "--watch".into(),
            node_id.clone(),
        ],
    );
    let ready = js.wait_line(60, "to start", |l| l["event"] == "ready");
    assert_eq!(ready["id"], js_id, "the seed gives test_key(0x3e)'s id");
    // Its contact message and two posts; the node's two posts.
    node.wait_count(&js_id, 3, WAIT_SECS);
    let got = js.wait_line(
        WAIT_SECS,
        "to hold the node's two posts",
        holds(&node_id, 2),
    );
    assert_eq!(
        got["texts"],
        serde_json::json!(["from shoal, 1", "from shoal, 2"])
    );
    let texts: Vec<String> = node
        .log_of(&js_id)
        .iter()
        .filter_map(|l| {
            let v: Json = serde_json::from_slice(&l.value_raw).ok()?;
            v["content"]["text"].as_str().map(str::to_string)
        })
        .collect();
    assert_eq!(texts, ["from js, 1", "from js, 2"]);
    // Both sides see a tunnel through the room, not a direct connection
    // (the JavaScript peer listens for none).
    let tunnel = node
        .connection(&js_id)
        .unwrap_or_else(|| panic!("a connection to the js peer: {}", node.explain()));
    let addr = tunnel["addr"].as_str().unwrap();
    assert!(
        addr.starts_with(&format!("tunnel:{}:{js_id}~shs:", room.id)),
        "{addr}"
    );
    // Its reports come every few hundred ms and may predate the tunnel
    // (or catch one of two tunnels opened at once being closed): the next
    // ones are waited for.
    let tunnel_to_node = |report: &Json| {
        report["event"] == "report"
            && report["peers"].as_array().is_some_and(|peers| {
                peers.iter().any(|p| {
                    p["key"] == node_id
                        && p["address"].as_str().is_some_and(|a| {
                            a.starts_with(&format!("tunnel:{}:{node_id}", room.id))
                        })
                })
            })
    };
    js.wait_line(
        30,
        "a report with a tunnel to the shoal node",
        tunnel_to_node,
    );
    // Live, through the same tunnel.
    node.post("from shoal, 3");
    js.wait_line(
        WAIT_SECS,
        "to hold the node's third post",
        holds(&node_id, 3),
    );
}

#[test]
fn a_js_peer_and_a_shoal_node_replicate_through_the_js_room_server() {
    // On loopback: the JavaScript peer listens for no connections at
    // all, so the only way between the two is a tunnel through ssb-room.
    let dir = tempfile::tempdir().unwrap();
    let port = crate::nodes::free_port();
    let (_room, room_id) = js_room(dir.path(), None, "127.0.0.1", port);
    let key = room_id
        .strip_prefix('@')
        .and_then(|k| k.strip_suffix(".ed25519"))
        .expect("an ed25519 feed id");
    let room_addr = format!("net:127.0.0.1:{port}~shs:{key}");
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0x3f));
    let js_id = test_key(0x39).id().to_string();
    let node_id = node.id.to_string();
    node.configure("lan", "false");
    node.follow(&js_id);
    node.post("from shoal, through ssb-room");
    node.start();
    node.ok(["room", "join", room_addr.as_str()]);
    let mut js = JsProcess::start(
        "js-peer",
        None,
        dir.path(),
        "room-peer.js",
        &[
            dir.path().join("js-peer").display().to_string(),
            JS_TTL_SECS.to_string(),
            "--seed".into(),
            seed_hex(0x39),
            "--follow".into(),
            node_id.clone(),
            "--post".into(),
            "from js, through ssb-room".into(),
            "--room".into(),
            room_addr.clone(),
            "--watch".into(),
            node_id.clone(),
        ],
    );
    // Its contact message and its post.
    node.wait_count(&js_id, 2, WAIT_SECS);
    let got = js.wait_line(WAIT_SECS, "to hold the node's post", holds(&node_id, 1));
    assert_eq!(
        got["texts"],
        serde_json::json!(["from shoal, through ssb-room"])
    );
    let tunnel = node
        .connection(&js_id)
        .unwrap_or_else(|| panic!("a connection to the js peer: {}", node.explain()));
    let addr = tunnel["addr"].as_str().unwrap();
    assert!(
        addr.starts_with(&format!("tunnel:{room_id}:{js_id}~shs:")),
        "{addr}"
    );
    node.post("from shoal, later");
    js.wait_line(
        WAIT_SECS,
        "to hold the node's second post",
        holds(&node_id, 2),
    );
}
