//! Rooms on loopback: a shoal node runs a room (`[room]` in its
//! config, as `shoal room serve` does), two shoal nodes that know only the
//! room's address join it, meet through tunnels it relays, and replicate
//! both ways; the room stores none of their messages. Against the room on
//! the wire: a tunnel to a feed not attending, to oneself, or with an
//! `origin` (a tunnel inside a tunnel) is refused with an error, not a
//! hang, and so is one past the tunnels one attendant may hold open. And in network namespaces the test makes (as root): two nodes on
//! separate networks that only the room's host joins (it forwards
//! nothing) replicate through the room.

use std::time::Duration;

use serde_json::json;
use shoal::rpc;

use crate::common::test_key;
use crate::lan::{Namespaces, ip};
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, wait_for};

#[test]
fn two_nodes_meet_through_a_shoal_room_and_replicate_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0xd0));
    room.configure("room", "{ name = \"test room\" }");
    // Every item the room relays, in hex, in its log.
    room.log_filter = "info,shoal=debug,shoal::room=trace".into();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0xd1));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0xd2));
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    a.follow(&b_id);
    b.follow(&a_id);
    a.post("a, through the room");
    b.post("b, through the room");
    room.start();
    a.start();
    b.start();
    a.ok(["room", "join", room.address().as_str()]);
    b.ok(["room", "join", room.address().as_str()]);
    a.wait_count(&b_id, 2, 30);
    b.wait_count(&a_id, 2, 30);
    // Live, through the same tunnel.
    a.post("a, later");
    b.wait_count(&a_id, 3, 30);
    let tunnel = a
        .connection(&b_id)
        .unwrap_or_else(|| panic!("a connection to b: {}", a.explain()));
    let addr = tunnel["addr"].as_str().unwrap();
    assert!(
        addr.starts_with(&format!("tunnel:{}:{b_id}~shs:", room.id)),
        "{addr}"
    );
    // Who attends, as a sees it.
    let listed = a.ok(["room", "list"]).text();
    assert_eq!(
        listed.trim(),
        format!("{} 1 attending", room.id),
        "{listed}"
    );
    let attendants = a.ok(["room", "attendants"]).text();
    assert!(
        attendants
            .lines()
            .any(|l| l.contains(&b_id) && l.ends_with("following connected")),
        "{attendants}"
    );
    // The room holds nothing of theirs, and what it relayed is
    // ciphertext: none of their posts' text, message ids, feed ids or keys.
    let status = room.status();
    assert_eq!(status["messages"], 0, "{status}");
    let log = room.log_text();
    // Each direction's bytes in order, so that nothing straddling two
    // items is missed.
    let direction = |dir: &str| -> String {
        log.lines()
            .filter_map(|l| l.split_once("relayed ").map(|(_, r)| r))
            .filter_map(|r| r.split_once(' '))
            .filter(|(d, _)| *d == dir)
            .map(|(_, hex)| hex.trim())
            .collect()
    };
    let (there, back) = (direction(">"), direction("<"));
    // Not a vacuous check: the room relayed at least the messages' bytes.
    let carried: usize = [&a, &b]
        .iter()
        .flat_map(|n| n.log_of(&n.id.to_string()))
        .map(|l| l.value_raw.len())
        .sum();
    assert!(
        (there.len() + back.len()) / 2 >= carried,
        "the room relayed {} bytes, the messages are {carried}",
        (there.len() + back.len()) / 2
    );
    let mut secrets: Vec<Vec<u8>> = vec![
        b"a, through the room".to_vec(),
        b"b, through the room".to_vec(),
        b"a, later".to_vec(),
        a.id.0.to_vec(),
        b.id.0.to_vec(),
        a_id.clone().into_bytes(),
        b_id.clone().into_bytes(),
    ];
    for node in [&a, &b] {
        for line in node.log_of(&node.id.to_string()) {
            secrets.push(line.key.clone().into_bytes());
        }
    }
    for secret in secrets {
        let hex = hex::encode(&secret);
        assert!(
            !there.contains(&hex) && !back.contains(&hex),
            "the room saw {:?} in the clear",
            String::from_utf8_lossy(&secret)
        );
    }
}

#[test]
fn tunnels_to_the_absent_to_oneself_or_inside_a_tunnel_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0xd3));
    room.configure("room", "{ name = \"test room\" }");
    room.start();
    let rt = crate::common::runtime();
    rt.block_on(async {
        let me = test_key(0xd4);
        let addr = room.address().parse().unwrap();
        let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), &me)
            .await
            .unwrap();
        let (rpc, _incoming, _task) = rpc::start(r, w, rpc::Options::default());
        let meta = rpc
            .call_async(&["room", "metadata"], json!([]))
            .await
            .unwrap();
        let meta: serde_json::Value = match meta {
            rpc::Body::Json(b) => serde_json::from_slice(&b).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(meta["name"], "test room");
        let absent = test_key(0xd5).id().to_string();
        for (args, why) in [
            (
                json!({"portal": room.id.to_string(), "target": absent}),
                "not attending",
            ),
            (
                json!({"portal": room.id.to_string(), "target": me.id().to_string()}),
                "yourself",
            ),
            (
                json!({"portal": room.id.to_string(), "target": absent, "origin": absent}),
                "inside a tunnel",
            ),
        ] {
            let (_sink, mut source) = rpc
                .call_duplex(&["tunnel", "connect"], json!([args]))
                .await
                .unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), source.recv())
                .await
                .expect("an answer, not a hang");
            let err = match got {
                Some(Err(e)) => e.to_string(),
                other => panic!("{args}: {other:?}"),
            };
            assert!(err.contains(why), "{args}: {err}");
        }
        // A target that holds every tunnel open: the origin gets
        // MAX_TUNNELS_PER_ATTENDANT, and the next is refused.
        let target = test_key(0xd9);
        let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), &target)
            .await
            .unwrap();
        let (_t_rpc, mut t_incoming, _t_task) = rpc::start(r, w, rpc::Options::default());
        let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(req) = t_incoming.recv().await {
                if let rpc::Responder::Stream(s) = req.responder {
                    held.push(s.into_parts());
                    let _ = arrived_tx.send(());
                }
            }
        });
        until_attending(&rpc, &target.id()).await;
        let cap = shoal::room::MAX_TUNNELS_PER_ATTENDANT;
        let args = json!([{"portal": room.id.to_string(), "target": target.id().to_string()}]);
        let mut open = Vec::new();
        for _ in 0..cap {
            open.push(
                rpc.call_duplex(&["tunnel", "connect"], args.clone())
                    .await
                    .unwrap(),
            );
        }
        // The room answers each request in a task of its own, so the next
        // is sent only once all `cap` have reached the target: sent at
        // once, any one of the `cap + 1` could be the one refused (the
        // race that once failed this test in CI).
        for n in 0..cap {
            tokio::time::timeout(Duration::from_secs(10), arrived.recv())
                .await
                .unwrap_or_else(|_| panic!("tunnel {} of {cap} reaches the target", n + 1))
                .expect("the target's task runs");
        }
        let (_sink, mut source) = rpc
            .call_duplex(&["tunnel", "connect"], args.clone())
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), source.recv())
            .await
            .expect("an answer, not a hang");
        match got {
            Some(Err(e)) => assert!(e.to_string().contains("tunnels are open"), "{e}"),
            other => panic!("tunnel {} of {cap}: {other:?}", cap + 1),
        }
    });
    wait_for(
        5,
        Duration::from_millis(100),
        "the room to keep serving",
        || (room.status()["id"] == room.id.to_string()).then_some(()),
        || room.log_tail(20),
    );
}

/// Three network namespaces, `a - room - b` (named after `tag`, which
/// tests running at once must not share): the room's host is on both
/// networks (10.81.1.1 towards `a` at 10.81.1.2, 10.81.2.1 towards `b`
/// at 10.81.2.2) and forwards nothing, so `a` and `b` cannot reach each
/// other.
pub(crate) fn apart(tag: &str) -> Namespaces {
    let made = Namespaces::new(tag, &["a", "room", "b"]);
    let ns = &made.names;
    ip(&[
        "link", "add", "lan0", "netns", &ns[0], "type", "veth", "peer", "name", "lana", "netns",
        &ns[1],
    ]);
    ip(&[
        "link", "add", "lan0", "netns", &ns[2], "type", "veth", "peer", "name", "lanb", "netns",
        &ns[1],
    ]);
    for (n, dev, addr) in [
        (&ns[0], "lan0", "10.81.1.2/24"),
        (&ns[1], "lana", "10.81.1.1/24"),
        (&ns[1], "lanb", "10.81.2.1/24"),
        (&ns[2], "lan0", "10.81.2.2/24"),
    ] {
        ip(&["-n", n, "addr", "add", addr, "dev", dev]);
        ip(&["-n", n, "link", "set", dev, "up"]);
    }
    made
}

#[test]
fn nodes_that_cannot_reach_each_other_replicate_through_a_room() {
    let apart = apart("apart");
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0xd6));
    room.configure("room", "{ name = \"apart\" }");
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0xd7));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0xd8));
    for n in [&room, &a, &b] {
        n.configure("lan", "false");
    }
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    a.follow(&b_id);
    b.follow(&a_id);
    a.post("a, on its own network");
    b.post("b, on its own network");
    room.in_netns(&apart.names[1], "10.81.1.1", 8008);
    a.in_netns(&apart.names[0], "10.81.1.2", 8008);
    b.in_netns(&apart.names[2], "10.81.2.2", 8008);
    room.start();
    a.start();
    b.start();
    // Not reachable from a: b's own address.
    let direct = a.run(["connect", b.address().as_str()]);
    assert_ne!(direct.code, 0, "a reached b directly: {}", direct.text());
    let key = room.id.b64();
    a.ok(["room", "join", &format!("net:10.81.1.1:8008~shs:{key}")]);
    b.ok(["room", "join", &format!("net:10.81.2.1:8008~shs:{key}")]);
    a.wait_count(&b_id, 2, 30);
    b.wait_count(&a_id, 2, 30);
    b.post("b, later");
    a.wait_count(&b_id, 3, 30);
}

#[test]
fn a_community_room_admits_only_members_who_claimed_an_invite_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0xe0));
    let http = format!("127.0.0.1:{}", crate::nodes::free_port());
    room.configure(
        "room",
        &format!("{{ name = \"members\", mode = \"community\", http = \"{http}\" }}"),
    );
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0xe1));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0xe2));
    let mut stranger = ServeNode::init(dir.path(), "stranger", &test_key(0xe3));
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    a.follow(&b_id);
    b.follow(&a_id);
    stranger.follow(&a_id);
    a.post("for members");
    room.start();
    for n in [&mut a, &mut b, &mut stranger] {
        n.start();
    }
    // Only the room's node makes invites.
    let refused = a.run(["room", "invite"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let invite_a = room.ok(["room", "invite"]).text().trim().to_string();
    let invite_b = room.ok(["room", "invite"]).text().trim().to_string();
    assert!(
        invite_a.starts_with("ssb:experimental?action=claim-http-invite&invite="),
        "{invite_a}"
    );
    assert!(
        invite_a.contains("postTo=http%3A%2F%2F127.0.0.1"),
        "{invite_a}"
    );
    a.ok(["room", "join", invite_a.as_str()]);
    b.ok(["room", "join", invite_b.as_str()]);
    // An invite is claimed once.
    let again = stranger.run(["room", "join", invite_a.as_str()]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("used already"), "{}", again.stderr);
    // A forged one is refused too.
    let forged = invite_a.replace("invite=", "invite=x");
    let out = stranger.run(["room", "join", forged.as_str()]);
    assert!(out.stderr.contains("no such invite"), "{}", out.stderr);
    // The stranger connects by address: it attends nothing.
    stranger.ok(["room", "join", room.address().as_str()]);
    a.wait_count(&b_id, 1, 30);
    b.wait_count(&a_id, 2, 30);
    wait_for(
        10,
        Duration::from_millis(100),
        "a to see b attending",
        || {
            a.ok(["room", "attendants"])
                .text()
                .contains(&b_id)
                .then_some(())
        },
        || a.explain(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let attending = a.ok(["room", "attendants"]).text();
    assert!(!attending.contains(&stranger.id.to_string()), "{attending}");
    assert_eq!(
        stranger.count(&a_id),
        0,
        "the stranger met a through the room"
    );
    assert!(
        room.log_text().contains("not a member of the room"),
        "{}",
        room.log_tail(20)
    );
}

#[test]
fn a_room_opening_many_tunnels_gets_no_more_connections_than_strangers_could() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xe4));
    node.configure("max_connections", "8");
    let origins: Vec<shoal::crypto::Keypair> = (0..12).map(|i| test_key(0xf0 + i)).collect();
    for o in &origins {
        node.follow(&o.id().to_string());
    }
    node.start();
    let node_id = node.id;
    let room_keys = test_key(0xe5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let room_addr = format!(
        "net:127.0.0.1:{}~shs:{}",
        listener.local_addr().unwrap().port(),
        room_keys.id().b64()
    );
    // A hostile room: it says it is one, then opens a tunnel from each
    // origin and completes each inner handshake.
    let room = rt.spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, w, _) = shoal::net::accept(stream, &main_net_key(), &room_keys)
            .await
            .unwrap();
        let (rpc, mut incoming, _task) = rpc::start(r, w, rpc::Options::default());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(req) = incoming.recv().await {
                let name = req.name.join(".");
                match (name.as_str(), req.responder) {
                    ("tunnel.isRoom", rpc::Responder::Async(a)) => {
                        let _ = a.ok(rpc::Body::Json(bytes::Bytes::from("{}"))).await;
                    }
                    ("room.attendants", rpc::Responder::Stream(s)) => {
                        let (sink, source) = s.into_parts();
                        let state = json!({"type": "state", "ids": []}).to_string();
                        let _ = sink.send(rpc::Body::Json(bytes::Bytes::from(state))).await;
                        held.push((sink, source));
                    }
                    (_, responder) => {
                        let _ = responder.not_found().await;
                    }
                }
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut inner = Vec::new();
        for o in &origins {
            let args = json!([{
                "portal": test_key(0xe5).id().to_string(),
                "target": node_id.to_string(),
                "origin": o.id().to_string(),
            }]);
            let Ok((sink, source)) = rpc.call_duplex(&["tunnel", "connect"], args).await else {
                continue;
            };
            let stream = shoal::room::byte_stream(sink, source);
            if let Ok(c) = shoal::net::handshake(stream, &main_net_key(), o, Some(&node_id)).await {
                inner.push(c);
            }
        }
        inner
    });
    node.ok(["room", "join", room_addr.as_str()]);
    let inner = rt.block_on(room).unwrap();
    assert!(inner.len() >= 6, "the inner handshakes: {}", inner.len());
    wait_for(
        10,
        Duration::from_millis(100),
        "the node to refuse the tunnels past its incoming connections",
        || {
            node.log_text()
                .contains("through the room")
                .then_some(())
                .filter(|_| node.log_text().contains("incoming connections open"))
        },
        || node.log_tail(30),
    );
    let connected = node.connected();
    let most = 1 + shoal::node::incoming_limit(8);
    assert!(
        connected.len() <= most,
        "{} connections, at most {most}: {connected:?}",
        connected.len()
    );
    assert!(
        connected.len() >= 2,
        "some tunnels are taken: {connected:?}"
    );
    drop(inner);
}

/// One HTTP/1.1 request to `addr`: the status code and the body.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn the_room_http_endpoint_refuses_what_is_not_a_claim_and_so_does_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0xe6));
    let addr = format!("127.0.0.1:{}", crate::nodes::free_port());
    room.configure(
        "room",
        &format!("{{ name = \"members\", mode = \"restricted\", http = \"{addr}\" }}"),
    );
    room.start();
    let someone = test_key(0xe7).id().to_string();
    let claim = |token: &str| json!({"id": someone, "invite": token}).to_string();
    for (method, path, body, code) in [
        ("GET", "/", b"".to_vec(), 404),
        ("GET", "/invite/consume", b"".to_vec(), 404),
        ("POST", "/invite/consume", b"not json".to_vec(), 400),
        (
            "POST",
            "/invite/consume",
            br#"{"id":"@nope","invite":"x"}"#.to_vec(),
            400,
        ),
        ("POST", "/invite/consume", vec![b'{'; 100_000], 400),
        ("POST", "/invite/consume", claim("forged").into_bytes(), 403),
    ] {
        let (got, answer) = http(&addr, method, path, &body);
        assert_eq!(got, code, "{method} {path}: {answer}");
        assert!(answer.contains("\"status\":\"error\""), "{answer}");
    }
    // A real invite still works after all that.
    let invite = room.ok(["room", "invite"]).text().trim().to_string();
    let token = invite
        .split("invite=")
        .nth(1)
        .and_then(|t| t.split('&').next())
        .unwrap();
    let (got, answer) = http(&addr, "POST", "/invite/consume", claim(token).as_bytes());
    assert_eq!(got, 200, "{answer}");
    assert!(answer.contains(&room.address()), "{answer}");
    // A link whose postTo is not http(s) is not followed.
    let other = ServeNode::init(dir.path(), "other", &test_key(0xe8));
    let out = other.run([
        "room",
        "join",
        "ssb:experimental?action=claim-http-invite&invite=x&postTo=file%3A%2F%2F%2Fetc%2Fpasswd",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not an http"), "{}", out.stderr);
    assert_eq!(room.status()["id"], room.id.to_string());
}

/// A room's `[room]` config: `name`, then `key = value` pairs as written.
fn room_config(name: &str, rest: &[(&str, String)]) -> String {
    let mut parts = vec![format!("name = \"{name}\"")];
    parts.extend(rest.iter().map(|(k, v)| format!("{k} = {v}")));
    format!("{{ {} }}", parts.join(", "))
}

#[test]
fn members_make_invites_to_a_community_room_and_only_admins_to_a_restricted_one() {
    let dir = tempfile::tempdir().unwrap();
    let community_http = format!("127.0.0.1:{}", crate::nodes::free_port());
    let restricted_http = format!("127.0.0.1:{}", crate::nodes::free_port());
    let mut community = ServeNode::init(dir.path(), "community", &test_key(0x40));
    let mut restricted = ServeNode::init(dir.path(), "restricted", &test_key(0x41));
    let mut member = ServeNode::init(dir.path(), "member", &test_key(0x42));
    let mut newcomer = ServeNode::init(dir.path(), "newcomer", &test_key(0x43));
    let mut admin = ServeNode::init(dir.path(), "admin", &test_key(0x44));
    community.configure(
        "room",
        &room_config(
            "community",
            &[
                ("mode", "\"community\"".into()),
                ("http", format!("\"{community_http}\"")),
            ],
        ),
    );
    restricted.configure(
        "room",
        &room_config(
            "restricted",
            &[
                ("mode", "\"restricted\"".into()),
                ("http", format!("\"{restricted_http}\"")),
                ("admins", format!("[\"{}\"]", admin.id)),
            ],
        ),
    );
    for n in [
        &mut community,
        &mut restricted,
        &mut member,
        &mut newcomer,
        &mut admin,
    ] {
        n.start();
    }
    let (community_id, restricted_id) = (community.id.to_string(), restricted.id.to_string());
    // Not yet a member: connected by address, it may not make invites.
    newcomer.ok(["room", "join", community.address().as_str()]);
    wait_for(
        10,
        Duration::from_millis(100),
        "the newcomer to be connected to the room",
        || newcomer.connection(&community_id).map(drop),
        || newcomer.explain(),
    );
    let refused = newcomer.run(["room", "invite", "--room", &community_id]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not a member of this room"),
        "{}",
        refused.stderr
    );
    // A member, who joined with the operator's invite, makes one, and the
    // newcomer who claims it becomes a member and attends.
    let first = community.ok(["room", "invite"]).text().trim().to_string();
    member.ok(["room", "join", first.as_str()]);
    wait_for(
        10,
        Duration::from_millis(100),
        "the member to be in the room",
        || (member.ok(["room", "list"]).text().contains(&community_id)).then_some(()),
        || member.explain(),
    );
    let second = member
        .ok(["room", "invite", "--room", &community_id])
        .text()
        .trim()
        .to_string();
    assert!(
        second.starts_with("ssb:experimental?action=claim-http-invite&invite="),
        "{second}"
    );
    newcomer.ok(["room", "join", second.as_str()]);
    assert!(
        community
            .log_text()
            .contains(&format!("{} made an invite", member.id)),
        "{}",
        community.log_tail(20)
    );
    assert!(
        community
            .log_text()
            .contains(&format!("{} joined the room with an invite", newcomer.id)),
        "{}",
        community.log_tail(20)
    );
    // A member may invite now.
    newcomer.ok(["room", "invite", "--room", &community_id]);

    // Restricted: a member may not make invites, an admin may; and the
    // room keeps no aliases.
    let for_member = restricted.ok(["room", "invite"]).text().trim().to_string();
    let for_admin = restricted.ok(["room", "invite"]).text().trim().to_string();
    member.ok(["room", "join", for_member.as_str()]);
    admin.ok(["room", "join", for_admin.as_str()]);
    for n in [&member, &admin] {
        wait_for(
            10,
            Duration::from_millis(100),
            "the restricted room to be joined",
            || (n.ok(["room", "list"]).text().contains(&restricted_id)).then_some(()),
            || n.explain(),
        );
    }
    let refused = member.run(["room", "invite", "--room", &restricted_id]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("admins"), "{}", refused.stderr);
    let made = admin
        .ok(["room", "invite", "--room", &restricted_id])
        .text()
        .trim()
        .to_string();
    assert!(
        made.contains(&shoal::uri::encode_component(&restricted_http)),
        "{made}"
    );
    let alias = admin.run(["room", "alias", "admin", "--room", &restricted_id]);
    assert_eq!(alias.code, 1, "{}", alias.stderr);
    assert!(alias.stderr.contains("no aliases"), "{}", alias.stderr);
}

#[test]
fn an_alias_connects_others_to_whom_it_names_and_a_forged_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", crate::nodes::free_port());
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0x45));
    room.configure(
        "room",
        &room_config("aliases", &[("http", format!("\"{http}\""))]),
    );
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0x46));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0x47));
    let mut c = ServeNode::init(dir.path(), "c", &test_key(0x48));
    // b takes tunnels from a (b follows a), not from c; a does not follow
    // b, so nothing but the alias brings them together.
    b.follow(&a.id.to_string());
    for n in [&mut room, &mut a, &mut b, &mut c] {
        n.start();
    }
    let room_id = room.id.to_string();
    for n in [&a, &b, &c] {
        n.ok(["room", "join", room.address().as_str()]);
        wait_for(
            10,
            Duration::from_millis(100),
            "the room to be joined",
            || (n.ok(["room", "list"]).text().contains(&room_id)).then_some(()),
            || n.explain(),
        );
    }
    // Not a domain label: refused before anything is asked.
    let bad = b.run(["room", "alias", "Bob!"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let link = b.ok(["room", "alias", "bob"]).text().trim().to_string();
    assert!(
        link.starts_with("ssb:experimental?action=consume-alias&alias=bob&userId="),
        "{link}"
    );
    // Taken: c cannot have it.
    let taken = c.run(["room", "alias", "bob"]);
    assert_eq!(taken.code, 1, "{}", taken.stderr);
    assert!(taken.stderr.contains("taken"), "{}", taken.stderr);
    // The room's alias endpoint says the same, signature and all.
    let (code, answer) = http_get(&http, "/bob?encoding=json");
    assert_eq!(code, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["userId"], b.id.to_string(), "{v}");
    assert_eq!(v["roomId"], room_id, "{v}");
    assert!(link.contains(&shoal::uri::encode_component(
        v["signature"].as_str().unwrap()
    )));
    let (code, page) = http_get(&http, "/bob");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("consume-alias"), "{page}");
    assert_eq!(http_get(&http, "/nobody?encoding=json").0, 404);
    // A link whose user was swapped (the room or anyone forging it) is
    // refused: the signature is b's, of b.
    let forged = link.replace(
        &shoal::uri::encode_component(&b.id.to_string()),
        &shoal::uri::encode_component(&c.id.to_string()),
    );
    assert_ne!(forged, link);
    let out = a.run(["connect", forged.as_str()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("forged"), "{}", out.stderr);
    // The real one: a meets b through the room.
    assert!(a.connection(&b.id.to_string()).is_none());
    let out = a.run(["connect", link.as_str()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, a.log_tail(30));
    assert!(
        out.stderr
            .contains(&format!("bob at {room_id} is {} (signed by them)", b.id)),
        "{}",
        out.stderr
    );
    let tunnel = a
        .connection(&b.id.to_string())
        .unwrap_or_else(|| panic!("a connection to b: {}", a.explain()));
    assert!(
        tunnel["addr"]
            .as_str()
            .unwrap()
            .starts_with(&format!("tunnel:{room_id}:{}", b.id)),
        "{tunnel}"
    );
    // By the alias's web address too; b takes no tunnel from c, and c is
    // told so, not left waiting.
    let out = c.run(["connect", &format!("http://{http}/bob")]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("closed the tunnel"), "{}", out.stderr);
    // Revoked, it is gone.
    b.ok(["room", "alias", "bob", "--revoke"]);
    assert_eq!(http_get(&http, "/bob?encoding=json").0, 404);
}

#[test]
fn a_tunnel_that_carries_nothing_is_closed_after_the_idle_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0x49));
    room.configure(
        "room",
        &room_config("idle", &[("tunnel_idle_secs", "2".into())]),
    );
    room.start();
    let rt = crate::common::runtime();
    rt.block_on(async {
        let addr: shoal::net::MultiAddr = room.address().parse().unwrap();
        let origin = test_key(0x4a);
        let target = test_key(0x4b);
        let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), &origin)
            .await
            .unwrap();
        let (rpc, _incoming, _task) = rpc::start(r, w, rpc::Options::default());
        // A target that takes every tunnel and sends nothing.
        let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), &target)
            .await
            .unwrap();
        let (_t_rpc, mut t_incoming, _t_task) = rpc::start(r, w, rpc::Options::default());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(req) = t_incoming.recv().await {
                if let rpc::Responder::Stream(s) = req.responder {
                    held.push(s.into_parts());
                }
            }
        });
        until_attending(&rpc, &target.id()).await;
        let args = json!([{"portal": room.id.to_string(), "target": target.id().to_string()}]);
        // Every tunnel one may hold, all silent: each is closed by the
        // room, and then as many can be opened again.
        for round in 0..2 {
            let mut open = Vec::new();
            for _ in 0..shoal::room::MAX_TUNNELS_PER_ATTENDANT {
                open.push(
                    rpc.call_duplex(&["tunnel", "connect"], args.clone())
                        .await
                        .unwrap(),
                );
            }
            for (_sink, source) in &mut open {
                let ended = tokio::time::timeout(Duration::from_secs(20), source.recv())
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: a silent tunnel still open"));
                assert!(
                    !matches!(ended, Some(Ok(_))),
                    "round {round}: the tunnel carried {ended:?}"
                );
            }
        }
    });
}

/// Waits until the room that `rpc` is connected to lists `who` among
/// its attendants (through `room.attendants`, whose first item is the
/// whole list and the rest each one change).
async fn until_attending(rpc: &rpc::RpcHandle, who: &shoal::crypto::FeedId) {
    let mut changes = rpc
        .call_source(&["room", "attendants"], json!([]))
        .await
        .unwrap();
    let who = who.to_string();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(item)) = changes.recv().await {
            let item: serde_json::Value = serde_json::from_slice(item.bytes()).unwrap();
            let listed = item["ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|i| *i == who));
            if listed || (item["type"] == "joined" && item["id"] == who) {
                return;
            }
        }
        panic!("the room's list of attendants ended without {who}");
    })
    .await
    .unwrap_or_else(|_| panic!("{who} not listed as attending the room within 10 s"));
}

/// `GET path` at `addr`: the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    http(addr, "GET", path, b"")
}

/// Regression: two peers that meet in a room may each open a tunnel to
/// the other at once. shoal keeps one connection and closes the other,
/// but ssb-ebt keeps one EBT stream per peer: the stream the closed
/// connection opened had already replaced the one on the connection that
/// lives on, which ssb-ebt ends with "reconnected to peer". shoal, the
/// dialler there, took that for a refusal and pulled with history streams
/// (a peer running ssb-ebt alone serves none), or, had anything arrived, stopped
/// replicating: neither side got the other's messages until they met
/// again. Now the dialler opens EBT again on that connection. Here a
/// peer written with the library ends shoal's first `ebt.replicate` as
/// ssb-ebt does, and serves its feed on the next.
#[test]
fn an_ebt_stream_the_peer_replaced_is_opened_again() {
    use bytes::Bytes;
    use shoal::feed::json as sjson;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0x38));
    let peer_keys = test_key(0x37);
    let peer_id = peer_keys.id();
    let items: Vec<Bytes> = crate::cli::make_feed(&peer_keys, 3, "replaced")
        .iter()
        .map(|(v, _)| Bytes::from(sjson::to_compact(v)))
        .collect();
    node.follow(&peer_id.to_string());
    node.start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = format!(
        "net:127.0.0.1:{}~shs:{}",
        listener.local_addr().unwrap().port(),
        peer_id.b64()
    );
    let opened = Arc::new(AtomicUsize::new(0));
    let pulled = Arc::new(AtomicUsize::new(0));
    let (opened2, pulled2) = (opened.clone(), pulled.clone());
    rt.spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, w, _) = shoal::net::accept(stream, &main_net_key(), &peer_keys)
            .await
            .unwrap();
        let (_rpc, mut incoming, _task) = rpc::start(r, w, rpc::Options::default());
        while let Some(req) = incoming.recv().await {
            let name = req.method();
            match (name.as_str(), req.responder) {
                ("ebt.replicate", rpc::Responder::Stream(s)) => {
                    if opened2.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _ = s.error("Error: reconnected to peer").await;
                        continue;
                    }
                    let items = items.clone();
                    tokio::spawn(async move {
                        let (sink, mut source) = s.into_parts();
                        // shoal's clock first, then ours and the feed.
                        let _ = source.recv().await;
                        let ours = json!({ peer_id.to_string(): 3 << 1 });
                        let _ = sink.send(rpc::Body::json(&ours).unwrap()).await;
                        for item in items {
                            let _ = sink.send(rpc::Body::Json(item)).await;
                        }
                        while let Some(Ok(_)) = source.recv().await {}
                    });
                }
                ("createHistoryStream", rpc::Responder::Stream(s)) => {
                    pulled2.fetch_add(1, Ordering::SeqCst);
                    let _ = s.into_parts().0.end().await;
                }
                (_, responder) => {
                    let _ = responder.not_found().await;
                }
            }
        }
    });
    node.ok(["connect", addr.as_str()]);
    node.wait_count(&peer_id.to_string(), 3, 30);
    assert_eq!(opened.load(Ordering::SeqCst), 2, "ebt.replicate opened");
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "no history streams: the peer serves EBT"
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Regression: a shoal node and a JavaScript peer opened tunnels to each
/// other at once (the node's second dial, 3 s after a new attendant, fell
/// in the window where `ssb-conn`'s scheduler dials one), and the
/// JavaScript side forgot the tunnel that survived. The node with the
/// larger key now does not dial a peer whose tunnel to it is in its
/// handshake. Here `p` opens a tunnel to the node and stalls its handshake
/// past the node's second dial; `q`, attending alike, is dialled, `p` not.
#[test]
fn a_node_does_not_dial_a_peer_whose_tunnel_to_it_is_arriving() {
    let dir = tempfile::tempdir().unwrap();
    let mut room = ServeNode::init(dir.path(), "room", &test_key(0x61));
    room.configure("room", "{ name = \"crossing room\" }");
    let (p, q) = (test_key(0x63), test_key(0x64));
    // The node has the larger key, so that it waits before dialling.
    let node_key = (0x70..=0xff)
        .map(test_key)
        .find(|k| k.id() > p.id() && k.id() > q.id())
        .unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &node_key);
    node.configure("lan", "false");
    node.follow(&p.id().to_string());
    node.follow(&q.id().to_string());
    room.start();
    node.start();
    node.ok(["room", "join", room.address().as_str()]);
    let rt = crate::common::runtime();
    rt.block_on(async {
        let addr: shoal::net::MultiAddr = room.address().parse().unwrap();
        // Each attendant reports the tunnels the room brings it.
        let (dialled, mut dials) = tokio::sync::mpsc::unbounded_channel();
        let mut rpcs = Vec::new();
        for k in [&p, &q] {
            let (r, w, _) = shoal::net::connect_to(&addr, &main_net_key(), k)
                .await
                .unwrap();
            let (rpc, mut incoming, task) = rpc::start(r, w, rpc::Options::default());
            let (dialled, who) = (dialled.clone(), k.id());
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Some(req) = incoming.recv().await {
                    if req.name == ["tunnel", "connect"] {
                        let _ = dialled.send((who, req.args.to_string()));
                    }
                    if let rpc::Responder::Stream(s) = req.responder {
                        held.push(s.into_parts());
                    }
                }
            });
            rpcs.push((rpc, task));
        }
        // `p` opens a tunnel to the node and says nothing in it: the
        // node's handshake waits for it (up to HANDSHAKE_TIMEOUT, 10 s).
        let args = json!([{"portal": room.id.to_string(), "target": node.id.to_string()}]);
        let _stalled = rpcs[0]
            .0
            .call_duplex(&["tunnel", "connect"], args)
            .await
            .unwrap();
        let (who, args) = tokio::time::timeout(Duration::from_secs(9), dials.recv())
            .await
            .unwrap_or_else(|_| panic!("the node dialled no one: {}", node.log_tail(30)))
            .unwrap();
        assert_eq!(
            who,
            q.id(),
            "the node dialled the peer whose tunnel was arriving: {args}"
        );
        assert!(args.contains(&node.id.to_string()), "{args}");
        // And not `p` a moment later either.
        let more = tokio::time::timeout(Duration::from_millis(1500), dials.recv()).await;
        assert!(more.is_err(), "{more:?}");
    });
}
