//! Private groups across real nodes: `shoal serve` processes replicating by
//! gossip on 127.0.0.1, each with its full store, driven by `shoal group`.
//!
//! - A creates a group and adds B, C, E and D (an admin), plus X and Y
//!   (identities without a node); A, B, C, D and E post.
//! - E goes offline. A removes C; A and B post. C, a real node that keeps
//!   replicating A's and B's feeds, reads every post from before its removal
//!   and none after, though it holds them.
//! - D goes offline and removes X while A removes Y: two concurrent rekeys.
//!   Once D is back, A and D agree on members and heads with no extra
//!   message; A, B and D read each other's new posts; X and Y, given every
//!   message, read none of them.
//! - E comes back after three epochs it missed, reads everything it is
//!   entitled to, and posts under the merged key, which the others read.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::test_key;
use crate::jsenv::{JsPeer, run};
use crate::nodes::{ServeNode, wait_for};

fn group_json(node: &ServeNode, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "group"];
    all.extend_from_slice(args);
    let out = node.ok(&all);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: group {args:?} is not JSON ({e})", node.name))
}

/// `shoal group list --json`: one group a line.
fn groups(node: &ServeNode) -> Vec<serde_json::Value> {
    let out = node.ok(["--json", "group", "list"]);
    out.text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("list --json lines"))
        .collect()
}

/// The texts of the group's posts a node can read.
fn readable(node: &ServeNode, group: &str) -> BTreeSet<String> {
    let out = node.ok(["--json", "group", "read", group, "--limit", "1000"]);
    out.text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("read --json lines");
            v["text"].as_str().map(str::to_string)
        })
        .collect()
}

/// What `node` reads of the group so far: nothing while the group has not
/// reached it (regression: a member that had not yet received the group
/// made the wait fail at once with "unknown group").
fn readable_yet(node: &ServeNode, group: &str) -> BTreeSet<String> {
    let out = node.run(["--json", "group", "read", group, "--limit", "1000"]);
    if out.code == 1 && out.stderr.contains("unknown group") {
        return BTreeSet::new();
    }
    readable(node, group)
}

/// Waits until `node` reads every text of `want`.
#[track_caller]
fn wait_reads(node: &ServeNode, group: &str, want: &[&str]) {
    wait_for(
        60,
        Duration::from_millis(200),
        &format!("{} to read {want:?}", node.name),
        || {
            let got = readable_yet(node, group);
            want.iter().all(|w| got.contains(*w)).then_some(())
        },
        || format!("it reads {:?}\n{}", readable(node, group), node.explain()),
    );
}

fn post(node: &ServeNode, group: &str, text: &str) -> String {
    node.ok(["group", "post", group, text])
        .text()
        .trim()
        .to_string()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn sorted(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn groups_rekey_on_removal_converge_and_catch_up_across_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<ServeNode> = ["a", "b", "c", "d", "e"]
        .iter()
        .enumerate()
        .map(|(i, n)| ServeNode::init(dir.path(), n, &test_key(90 + i as u8)))
        .collect();
    let (x, y) = (test_key(98).id().to_string(), test_key(99).id().to_string());
    let ids: Vec<String> = nodes.iter().map(|n| n.id.to_string()).collect();
    for (i, n) in nodes.iter().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                n.follow(id);
            }
        }
    }
    for n in nodes.iter_mut() {
        n.start();
    }
    let a_addr = nodes[0].address();
    for n in &nodes[1..] {
        n.ok(["connect", a_addr.as_str()]);
    }
    let [a, b, c, d, e] = &mut nodes[..] else {
        unreachable!()
    };

    // A creates the group and adds everyone; D as an admin.
    let g = a.ok(["group", "create", "crew"]).text().trim().to_string();
    assert!(
        g.starts_with('%') && g.ends_with(".sha256"),
        "group id: {g}"
    );
    a.ok(["group", "add", &g, &ids[1], &ids[2], &ids[4], &x, &y]);
    a.ok(["group", "add", &g, &ids[3], "--admin"]);
    let info = group_json(a, &["members", &g]);
    assert_eq!(
        sorted(&info["admins"]),
        {
            let mut v = vec![ids[0].clone(), ids[3].clone()];
            v.sort();
            v
        },
        "A and D are admins"
    );
    assert_eq!(info["members"].as_array().unwrap().len(), 7);

    // Everyone learns of the group by gossip, and can post once it has.
    for n in [&*b, &*c, &*d, &*e] {
        wait_for(
            60,
            Duration::from_millis(200),
            &format!("{} to be able to post", n.name),
            || {
                let can = groups(n)
                    .iter()
                    .any(|x| x["id"] == g.as_str() && x["can_post"] == true);
                can.then_some(())
            },
            || n.explain(),
        );
    }
    let first = ["a1", "b1", "c1", "d1", "e1"];
    for (n, text) in [&*a, &*b, &*c, &*d, &*e].iter().zip(first) {
        post(n, &g, text);
    }
    for n in [&*a, &*b, &*c, &*d, &*e] {
        wait_reads(n, &g, &first);
    }
    assert_eq!(groups(b)[0]["name"], "crew", "the name reaches members");

    // E goes offline. A removes C: one epoch; A and B post after it.
    e.stop();
    a.ok(["group", "remove", &g, &ids[2]]);
    wait_for(
        60,
        Duration::from_millis(200),
        "B to see C removed",
        || {
            let m = group_json(b, &["members", &g]);
            (!sorted(&m["members"]).contains(&ids[2])).then_some(())
        },
        || b.explain(),
    );
    post(a, &g, "a2");
    post(b, &g, "b2");
    wait_reads(a, &g, &["a2", "b2"]);
    wait_reads(b, &g, &["a2", "b2"]);
    // C holds every message of A and B but reads only what came before.
    let a_count = a.count(&ids[0]);
    let b_count = b.count(&ids[1]);
    c.wait_count(&ids[0], a_count, 60);
    c.wait_count(&ids[1], b_count, 60);
    assert_eq!(
        readable(c, &g),
        set(&first),
        "C reads all before, none after"
    );
    assert_eq!(groups(c)[0]["member"], false, "C knows it is out");
    let refused = c.run(["group", "post", &g, "c2"]);
    assert_eq!(
        refused.code, 1,
        "a removed member cannot post: {}",
        refused.stderr
    );

    // D goes offline and removes X while A removes Y: concurrent rekeys.
    wait_for(
        60,
        Duration::from_millis(200),
        "D to see C's removal",
        || {
            let m = group_json(d, &["members", &g]);
            (!sorted(&m["members"]).contains(&ids[2])).then_some(())
        },
        || d.explain(),
    );
    d.stop();
    d.ok(["group", "remove", &g, &x]);
    a.ok(["group", "remove", &g, &y]);
    d.start();
    let d_count = d.count(&ids[3]);
    a.wait_count(&ids[3], d_count, 60);
    let a_count = a.count(&ids[0]);
    d.wait_count(&ids[0], a_count, 60);
    let (ma, md) = (
        group_json(a, &["members", &g]),
        group_json(d, &["members", &g]),
    );
    assert_eq!(ma["members"], md["members"], "A and D agree on members");
    assert_eq!(ma["heads"], md["heads"], "A and D agree on the heads");
    assert_eq!(
        ma["heads"].as_array().unwrap().len(),
        2,
        "two concurrent heads"
    );
    assert_eq!(
        sorted(&ma["members"]),
        {
            let mut v = vec![
                ids[0].clone(),
                ids[1].clone(),
                ids[3].clone(),
                ids[4].clone(),
            ];
            v.sort();
            v
        },
        "both X and Y are out, and only they (and C)"
    );
    assert_eq!(ma["can_post"], true);
    post(a, &g, "a3");
    post(d, &g, "d3");
    wait_reads(b, &g, &["a3", "d3"]);
    post(b, &g, "b3");
    for n in [&*a, &*d] {
        wait_reads(n, &g, &["a3", "d3", "b3"]);
    }

    // E comes back across three epochs it missed and reads what it may.
    e.start();
    let everything = ["a1", "b1", "c1", "d1", "e1", "a2", "b2", "a3", "d3", "b3"];
    wait_reads(e, &g, &everything);
    post(e, &g, "e4");
    for n in [&*a, &*b, &*d] {
        wait_reads(n, &g, &["e4"]);
    }
    let b_count = b.count(&ids[1]);
    let e_count = e.count(&ids[4]);
    c.wait_count(&ids[1], b_count, 60);
    c.wait_count(&ids[4], e_count, 60);
    assert_eq!(readable(c, &g), set(&first), "C still reads nothing after");

    // X and Y, given every message A holds, read only what came before
    // their removal: the merged key excludes both.
    let dump = a.ok(["export"]).stdout;
    let dump_path = dir.path().join("a.jsonl");
    std::fs::write(&dump_path, dump).unwrap();
    for (n, k) in [("x", 98u8), ("y", 99u8)] {
        let outsider = ServeNode::init(dir.path(), n, &test_key(k));
        let imported = outsider.run(["import", dump_path.to_str().unwrap()]);
        assert_eq!(imported.code, 0, "{n}: import: {}", imported.stderr);
        let got = readable(&outsider, &g);
        assert_eq!(
            got,
            set(&["a1", "b1", "c1", "d1", "e1", "a2", "b2"]),
            "{n} reads"
        );
    }
}

/// Group messages cross the real `ssb-server`: A and B reach each other
/// only through it, and B reads A's group (ssb-validate accepts the
/// `.boxg` content and ssb-server stores and forwards it unread).
#[test]
fn group_messages_travel_through_ssb_server() {
    let js = JsPeer::start("groupjs", 300);
    let (js_id, js_addr) = (js.info("id"), js.info("address"));
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(110));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(111));
    let (ia, ib) = (a.id.to_string(), b.id.to_string());
    a.follow(&ib);
    a.follow(&js_id);
    b.follow(&ia);
    b.follow(&js_id);
    for feed in [&ia, &ib] {
        run(
            js.bin("sbot.sh", 60).args([
                "publish",
                "--type",
                "contact",
                "--contact",
                feed,
                "--following",
            ]),
            "bin/sbot.sh",
        );
    }
    a.start();
    b.start();
    a.ok(["connect", js_addr.as_str()]);
    b.ok(["connect", js_addr.as_str()]);
    let g = a
        .ok(["group", "create", "across"])
        .text()
        .trim()
        .to_string();
    a.ok(["group", "add", &g, &ib]);
    post(&a, &g, "through the javascript peer");
    wait_reads(&b, &g, &["through the javascript peer"]);
    post(&b, &g, "and back");
    wait_reads(&a, &g, &["and back"]);
    // ssb-server holds them as private content it cannot read.
    let out = run(
        js.bin("sbot.sh", 60)
            .args(["createHistoryStream", "--id", ia.as_str()]),
        "bin/sbot.sh",
    );
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(
        history.contains(".boxg\""),
        "ssb-server stores the group messages: {history}"
    );
    assert!(!history.contains("through the javascript peer"));
}

mod store_level {
    //! The store's side of groups, without the network: posts that arrive
    //! before their key, hostile control messages, and a rekey that cannot
    //! be published.

    use std::collections::BTreeSet;

    use shoal::crypto::{Keypair, MsgId};
    use shoal::feed::Value;
    use shoal::private::groups::{EntryKey, GroupContent, KeyStore, Position, envelope};
    use shoal::store::{GroupOp, Store, StoreError};

    use crate::common::test_key;

    pub(super) struct Person {
        pub(super) keys: Keypair,
        pub(super) store: Store,
        pub(super) _dir: tempfile::TempDir,
    }

    /// Where the next message of `p`'s own feed goes.
    pub(super) fn next(p: &Person) -> Position {
        let latest = p.store.latest(&p.keys.id()).unwrap();
        Position {
            author: p.keys.id(),
            sequence: latest.map_or(1, |s| s.sequence + 1),
            previous: latest.map(|s| s.id),
        }
    }

    /// `p`'s key store, from the control messages of `g` its store opened.
    pub(super) fn keys_of(p: &Person, g: &MsgId) -> KeyStore {
        let mut keys = KeyStore::new(&p.keys);
        keys.absorb(&p.store.group_controls(g).unwrap());
        keys
    }

    /// A control message sealed as `p`'s next message, for whoever holds
    /// the keys of `heads` (the members' entry), and for `p` itself: what
    /// any member's client can write, whatever the message says.
    pub(super) fn seal_as(p: &Person, g: &MsgId, inner: &GroupContent, heads: &[MsgId]) -> String {
        let keys = keys_of(p, g);
        let heads: BTreeSet<MsgId> = heads.iter().copied().collect();
        let members = keys.post_key(&heads).expect("the heads' keys");
        let own = keys.pairwise(&p.keys.id()).unwrap();
        envelope::seal_control(inner, &next(p), &[EntryKey::members(&members), own]).unwrap()
    }

    /// The inner message of a control message `p` wrote at `pos`.
    pub(super) fn open_own(p: &Person, pos: &Position, content: &str) -> GroupContent {
        let own = KeyStore::new(&p.keys).pairwise(&p.keys.id()).unwrap();
        envelope::open_with(content, pos, &own).unwrap()
    }

    pub(super) fn person(n: u8) -> Person {
        let dir = tempfile::tempdir().unwrap();
        let keys = test_key(n);
        let store = Store::open_as(&dir.path().join("s.redb"), &keys).unwrap();
        Person {
            keys,
            store,
            _dir: dir,
        }
    }

    impl Person {
        pub(super) fn write(&self, op: GroupOp) -> Result<MsgId, StoreError> {
            let msgs = self.store.group_write(&self.keys, &op, None)?;
            Ok(msgs.last().expect("a message").id())
        }

        pub(super) fn post(&self, group: MsgId, text: &str) -> MsgId {
            self.write(GroupOp::Post {
                group,
                content: shoal::social::compose::post(text),
            })
            .unwrap()
        }

        /// Every message of `from`'s own feed, in order, into this store.
        pub(super) fn take_feed(&self, from: &Person) {
            let msgs = from.store.feed(&from.keys.id(), 0, usize::MAX).unwrap();
            let mut state = None;
            let mut batch = Vec::new();
            for m in msgs {
                let v = shoal::feed::json::parse(&m.json).unwrap();
                let msg = shoal::feed::validate(state.as_ref(), None, v).unwrap();
                state = Some(msg.state());
                batch.push(msg);
            }
            self.store.ingest(batch).unwrap();
        }

        pub(super) fn texts(&self, group: &MsgId) -> Vec<String> {
            let r = self.store.reader().unwrap();
            let mut view = shoal::social::View::new(&r).unwrap();
            let mut t: Vec<String> = view
                .group_posts(group, None, 1000)
                .unwrap()
                .into_iter()
                .filter_map(|i| i.text)
                .collect();
            t.sort();
            t
        }
    }

    #[test]
    fn posts_wait_for_their_key_and_hostile_control_messages_change_nothing() {
        let (a, b, c) = (person(101), person(102), person(103));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![c.keys.id()],
            admins: vec![],
        })
        .unwrap();
        c.take_feed(&a);
        c.post(g, "c1");
        // B learns of C's post before the add that lets it in.
        b.take_feed(&c);
        assert!(b.store.groups().unwrap().is_empty());
        a.write(GroupOp::Add {
            group: g,
            members: vec![b.keys.id()],
            admins: vec![],
        })
        .unwrap();
        b.take_feed(&a);
        assert_eq!(
            b.texts(&g),
            ["c1"],
            "the waiting post opens once the key arrives"
        );
        let before = b.store.group(&g).unwrap();
        assert!(before.can_post);

        // C, not an admin, republishes A's removal of B as its own, and
        // floods garbage and epochs with unknown parents.
        let removal = a
            .write(GroupOp::Remove {
                group: g,
                members: vec![b.keys.id()],
            })
            .unwrap();
        c.take_feed(&a);
        let inner = c
            .store
            .group_controls(&g)
            .unwrap()
            .into_iter()
            .find(|m| m.id == removal)
            .expect("c opened the removal");
        let heads = match &inner.body {
            shoal::private::groups::Control::Epoch(e) => e.parents.clone(),
            _ => unreachable!("a removal is an epoch"),
        };
        let content = seal_as(&c, &g, &GroupContent::from(inner.body), &heads);
        c.store
            .append_local(&c.keys, Value::from(content.as_str()), None)
            .unwrap();
        for i in 0..50u8 {
            let junk = format!("{}.boxg", shoal::crypto::b64_encode(&[1, i, 2, 3]));
            c.store
                .append_local(&c.keys, Value::from(junk.as_str()), None)
                .unwrap();
        }
        for i in 0..200u8 {
            let e = shoal::private::groups::Epoch {
                group: Some(g),
                parents: vec![MsgId([i; 32])],
                adds: vec![],
                admins: vec![],
                removed: vec![],
                recipients: vec![],
                commitment: [0; 32],
                slots: vec![],
                back: vec![],
            };
            let content = seal_as(&c, &g, &GroupContent::Epoch(e), &heads);
            c.store
                .append_local(&c.keys, Value::from(content.as_str()), None)
                .unwrap();
        }
        b.take_feed(&c);
        let after = b.store.group(&g).unwrap();
        assert_eq!(after.waiting, 200, "epochs with unknown parents wait");
        assert_eq!(after.members, before.members, "a non-admin removes no one");
        assert_eq!(after.heads, before.heads);
        assert_eq!(after.rejected.len(), 1, "{:?}", after.rejected);
        assert!(
            after.rejected[0].contains("not an admin"),
            "{:?}",
            after.rejected
        );
        // B, not yet aware of its removal, posts under the key it holds:
        // A cut B at the last message of it A had (none), so the post is
        // void for A, and for B too once B sees the removal.
        b.post(g, "b1");
        assert_eq!(b.texts(&g), ["b1", "c1"]);
        a.take_feed(&b);
        assert!(a.texts(&g).is_empty());
        // Once B sees its removal it cannot post, and reads nothing new.
        b.take_feed(&a);
        assert!(!b.store.group(&g).unwrap().member);
        assert!(matches!(
            b.write(GroupOp::Post {
                group: g,
                content: shoal::social::compose::post("b2"),
            }),
            Err(StoreError::Group(_))
        ));
        a.post(g, "a2");
        b.take_feed(&a);
        assert_eq!(b.texts(&g), ["c1"], "b1 is taken back, a2 never opens");
    }

    #[test]
    fn a_rekey_too_large_to_publish_changes_nothing() {
        let a = person(104);
        let g = a.write(GroupOp::Create).unwrap();
        for chunk in 0..3u8 {
            a.write(GroupOp::Add {
                group: g,
                members: (0..20)
                    .map(|i| test_key(150 + chunk * 20 + i).id())
                    .collect(),
                admins: vec![],
            })
            .unwrap();
        }
        let before = a.store.group(&g).unwrap();
        assert_eq!(before.members.len(), 61);
        let err = a
            .write(GroupOp::Remove {
                group: g,
                members: vec![test_key(150).id()],
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        let after = a.store.group(&g).unwrap();
        assert_eq!(
            after.heads, before.heads,
            "the unpublished epoch is not used"
        );
        assert_eq!(after.members, before.members);
        a.post(g, "still here");
        assert_eq!(a.texts(&g), ["still here"]);
    }

    /// Regression: an admin demoted while it adds someone (neither has
    /// seen the other's message) writes a void add whose slot still gives
    /// the new feed the key of the heads, which a demotion does not
    /// change. Every member posted under that key, so the feed, which
    /// never was a member, read them. Now nobody posts under it, and the
    /// senior admin's node refreshes the group by itself.
    #[test]
    fn a_void_add_by_a_demoted_admin_makes_the_admin_refresh() {
        let (a, d, m, z) = (person(106), person(107), person(108), person(109));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![d.keys.id(), m.keys.id()],
            admins: vec![d.keys.id()],
        })
        .unwrap();
        d.take_feed(&a);
        m.take_feed(&a);
        a.write(GroupOp::Demote {
            group: g,
            members: vec![d.keys.id()],
        })
        .unwrap();
        d.write(GroupOp::Add {
            group: g,
            members: vec![z.keys.id()],
            admins: vec![],
        })
        .unwrap();
        for p in [&m, &z] {
            p.take_feed(&a);
            p.take_feed(&d);
        }
        let info = m.store.group(&g).unwrap();
        assert!(!info.members.contains(&z.keys.id().to_string()));
        assert!(info.rejected.iter().any(|r| r.contains("not an admin")));
        assert!(!info.can_post);
        let err = m
            .write(GroupOp::Post {
                group: g,
                content: shoal::social::compose::post("under the old key"),
            })
            .unwrap_err();
        assert!(err.to_string().contains("must refresh"), "{err}");
        // A, the admin, refreshes as soon as it sees the add.
        a.take_feed(&d);
        let duties = a.store.group_duties(&a.keys, None, None).unwrap();
        assert_eq!(duties.len(), 1, "one refresh");
        assert!(
            a.store
                .group_duties(&a.keys, None, None)
                .unwrap()
                .is_empty()
        );
        for p in [&m, &z] {
            p.take_feed(&a);
        }
        assert!(m.store.group(&g).unwrap().can_post);
        m.post(g, "after the refresh");
        a.take_feed(&m);
        z.take_feed(&m);
        assert_eq!(a.texts(&g), ["after the refresh"]);
        assert!(z.texts(&g).is_empty());
    }

    #[test]
    fn a_version_2_store_gets_its_groups_on_upgrade() {
        use redb::ReadableDatabase as _;
        use shoal::store::schema::*;
        let a = person(105);
        let g = a.write(GroupOp::Create).unwrap();
        a.post(g, "kept");
        let Person { keys, store, _dir } = a;
        drop(store);
        let path = _dir.path().join("s.redb");
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 2)
                .unwrap();
            assert!(txn.delete_table(GROUP_CTRL).unwrap());
            assert!(txn.delete_table(GROUP_POSTS).unwrap());
            assert!(txn.delete_table(GROUP_NAMES).unwrap());
            assert!(txn.delete_table(GROUP_KEYS).unwrap());
            assert!(txn.delete_table(GROUP_PENDING).unwrap());
            txn.commit().unwrap();
        }
        let store = Store::open_as(&path, &keys).unwrap();
        let a = Person { keys, store, _dir };
        assert_eq!(a.texts(&g), ["kept"]);
        assert!(a.store.group(&g).unwrap().can_post);
        drop(a.store);
        let db = redb::Database::create(&path).unwrap();
        let v = db
            .begin_read()
            .unwrap()
            .open_table(META)
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap()
            .value();
        assert_eq!(v, SCHEMA_VERSION);
    }
}

mod attacks {
    //! The ways a removed or hostile member got back into a group, each
    //! written as the attacker would: real signed feeds in real stores
    //! (`group_write` and `ingest`), the attacker's messages made with the
    //! public group API from the view it had before its removal. Each of
    //! these was accepted by the rules before removals cut the removed feed,
    //! admins were ranked, and only admins' epochs and forwards counted.

    use std::collections::BTreeSet;

    use shoal::crypto::{Keypair, MsgId, ed25519_pk_to_curve25519, sealed_box_seal};
    use shoal::feed::Value;
    use shoal::private::groups::{
        ControlMsg, Cut, EntryKey, Epoch, Forward, GroupContent, GroupState, KeyStore, envelope,
    };
    use shoal::store::GroupOp;

    use super::store_level::{Person, next, open_own, person, seal_as};

    /// The control messages of `g` by `feeds` that `p`'s store opened,
    /// leaving out `skip` (what the attacker had not seen).
    fn controls(p: &Person, g: &MsgId, feeds: &[&Keypair], skip: &[MsgId]) -> Vec<ControlMsg> {
        p.store
            .group_controls(g)
            .unwrap()
            .into_iter()
            .filter(|m| feeds.iter().any(|f| f.id() == m.position.author) && !skip.contains(&m.id))
            .collect()
    }

    /// A refresh as the admin `a`'s writer makes it from what `y` holds
    /// (the writer would refuse `y` itself): what `y` then changes and
    /// signs by hand.
    fn refresh_by_hand(a: &Person, y: &Person, g: &MsgId) -> Epoch {
        let msgs = controls(y, g, &[&a.keys], &[]);
        let (state, keys) = view(*g, &a.keys, &msgs);
        let apos = next(a);
        let made = state.rekey(&keys, &apos, &[]).unwrap();
        match open_own(a, &apos, &made.content) {
            GroupContent::Epoch(e) => e,
            _ => panic!("an epoch"),
        }
    }

    /// Appends a content string to `p`'s feed, signed, as any client can.
    fn publish(p: &Person, content: &str) -> MsgId {
        p.store
            .append_local(&p.keys, Value::from(content), None)
            .unwrap()
            .id()
    }

    /// The view (state and keys) of `who` from the given messages.
    fn view(group: MsgId, who: &Keypair, msgs: &[ControlMsg]) -> (GroupState, KeyStore) {
        let state = GroupState::from_messages(group, msgs);
        let mut keys = KeyStore::new(who);
        keys.absorb(msgs);
        (state, keys)
    }

    fn members(p: &Person, g: &MsgId) -> BTreeSet<String> {
        p.store.group(g).unwrap().members.into_iter().collect()
    }

    fn ids(ps: &[&Person]) -> BTreeSet<String> {
        ps.iter().map(|p| p.keys.id().to_string()).collect()
    }

    /// Attack 1: a removed admin adds a sock puppet as admin through an add
    /// that names the heads from before its removal; the puppet asks for
    /// keys and re-adds the attacker. Nobody accepts any of it, no admin
    /// answers the puppet, and the puppet reads nothing posted after.
    #[test]
    fn a_removed_admin_cannot_get_back_in_through_a_sock_puppet() {
        let (a, m, x, s) = (person(111), person(112), person(113), person(114));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![x.keys.id(), m.keys.id()],
            admins: vec![x.keys.id()],
        })
        .unwrap();
        x.take_feed(&a);
        let before = controls(&x, &g, &[&a.keys], &[]);
        a.take_feed(&x);
        let removal = a
            .write(GroupOp::Remove {
                group: g,
                members: vec![x.keys.id()],
            })
            .unwrap();
        x.take_feed(&a);
        // X's add of S, from its view before the removal.
        let (old, xkeys) = view(g, &x.keys, &before);
        let add = old
            .add(&xkeys, &next(&x), &[s.keys.id()], &[s.keys.id()])
            .unwrap();
        publish(&x, &add);
        // S, holding the old heads' keys, re-adds X... and asks for keys.
        s.take_feed(&a);
        s.take_feed(&x);
        let seen = controls(&s, &g, &[&a.keys, &x.keys], &[removal]);
        let (s_view, s_keys) = view(g, &s.keys, &seen);
        assert!(s_view.is_member(&s.keys.id()), "the puppet's own view");
        let readd = s_view
            .add(
                &s_keys,
                &next(&s),
                &[shoal::crypto::Keypair::from_seed(&[9; 32]).id()],
                &[],
            )
            .unwrap();
        publish(&s, &readd);
        let req = s_view.request(&s_keys, &next(&s), &[removal]).unwrap();
        publish(&s, &req);
        for honest in [&a, &m] {
            honest.take_feed(&a);
            honest.take_feed(&x);
            honest.take_feed(&s);
            let info = honest.store.group(&g).unwrap();
            assert_eq!(members(honest, &g), ids(&[&a, &m]), "{:?}", info.rejected);
            assert_eq!(info.admins, vec![a.keys.id().to_string()]);
            assert!(
                info.rejected
                    .iter()
                    .any(|r| r.contains("after it was removed"))
            );
        }
        // No admin answers the puppet: A owes nothing.
        assert!(
            a.store
                .group_duties(&a.keys, None, None)
                .unwrap()
                .is_empty()
        );
        a.post(g, "after x");
        s.take_feed(&a);
        x.take_feed(&a);
        m.take_feed(&a);
        assert_eq!(m.texts(&g), ["after x"]);
        assert!(s.texts(&g).is_empty());
        assert!(x.texts(&g).is_empty());
    }

    /// Attack 2: a removed admin removes everyone else from its old view
    /// (and forges the removal of the more senior admins its writer
    /// refuses). Every replica keeps the group, its founder and its admins.
    #[test]
    fn a_removed_admin_cannot_destroy_the_group() {
        let (a, b, x, m) = (person(121), person(122), person(123), person(124));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![b.keys.id()],
            admins: vec![b.keys.id()],
        })
        .unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![x.keys.id(), m.keys.id()],
            admins: vec![x.keys.id()],
        })
        .unwrap();
        x.take_feed(&a);
        let before = controls(&x, &g, &[&a.keys], &[]);
        a.take_feed(&x);
        a.write(GroupOp::Remove {
            group: g,
            members: vec![x.keys.id()],
        })
        .unwrap();
        let (old, xkeys) = view(g, &x.keys, &before);
        let pos = next(&x);
        let senior = old.rekey(
            &xkeys,
            &pos,
            &[Cut {
                feed: a.keys.id(),
                seq: 99,
            }],
        );
        assert!(senior.is_err(), "the writer refuses to remove a senior");
        // What its writer allows: the removal of a junior.
        let junior = old
            .rekey(
                &xkeys,
                &pos,
                &[Cut {
                    feed: m.keys.id(),
                    seq: 0,
                }],
            )
            .unwrap();
        publish(&x, &junior.content);
        let pos = next(&x);
        // Forged: everyone else removed in one epoch.
        let refresh = old.rekey(&xkeys, &pos, &[]).unwrap();
        let GroupContent::Epoch(mut e) = open_own(&x, &pos, &refresh.content) else {
            panic!("an epoch")
        };
        let keep: Vec<usize> = (0..e.recipients.len())
            .filter(|i| e.recipients[*i] == x.keys.id())
            .collect();
        e.removed = e
            .recipients
            .iter()
            .filter(|r| **r != x.keys.id())
            .map(|f| Cut { feed: *f, seq: 0 })
            .collect();
        e.slots = keep.iter().map(|i| e.slots[*i]).collect();
        e.recipients = vec![x.keys.id()];
        let parents = e.parents.clone();
        publish(&x, &seal_as(&x, &g, &GroupContent::Epoch(e), &parents));
        for honest in [&a, &b, &m] {
            honest.take_feed(&a);
            honest.take_feed(&x);
            assert_eq!(members(honest, &g), ids(&[&a, &b, &m]));
            let info = honest.store.group(&g).unwrap();
            let admins: BTreeSet<String> = info.admins.into_iter().collect();
            assert_eq!(admins, ids(&[&a, &b]));
        }
        a.post(g, "still ours");
        m.take_feed(&a);
        b.take_feed(&a);
        assert_eq!(m.texts(&g), ["still ours"]);
        assert_eq!(b.texts(&g), ["still ours"]);
    }

    /// Attack 3: a removed member keeps posting under the keys it holds
    /// (the creation key). Its posts from before the cut stay; those after
    /// are void, whether they arrive before the removal (then they are
    /// taken back) or after it.
    #[test]
    fn a_removed_member_cannot_keep_posting() {
        let (a, m, x) = (person(131), person(132), person(133));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![x.keys.id(), m.keys.id()],
            admins: vec![],
        })
        .unwrap();
        x.take_feed(&a);
        m.take_feed(&a);
        x.post(g, "before");
        a.take_feed(&x);
        let before = controls(&x, &g, &[&a.keys], &[]);
        a.write(GroupOp::Remove {
            group: g,
            members: vec![x.keys.id()],
        })
        .unwrap();
        // X writes under the creation key with the old view.
        let (old, xkeys) = view(g, &x.keys, &before);
        for i in 0..3 {
            let text = format!(r#"{{"type":"post","text":"after {i}"}}"#);
            let c = old.seal_post(&xkeys, &next(&x), text.as_bytes()).unwrap();
            publish(&x, &c);
        }
        // And renames the group.
        let rename = format!(r#"{{"type":"about","about":"{g}","name":"pwned"}}"#);
        let c = old.seal_post(&xkeys, &next(&x), rename.as_bytes()).unwrap();
        publish(&x, &c);
        // M, who has not seen the removal yet, shows them...
        m.take_feed(&x);
        assert_eq!(m.texts(&g), ["after 0", "after 1", "after 2", "before"]);
        assert_eq!(m.store.group(&g).unwrap().name.as_deref(), Some("pwned"));
        // ...and takes them back when it arrives, the name they gave too.
        m.take_feed(&a);
        assert_eq!(m.texts(&g), ["before"]);
        assert_eq!(m.store.group(&g).unwrap().name, None);
        // A, who knew of the removal first, never shows them.
        a.take_feed(&x);
        assert_eq!(a.texts(&g), ["before"]);
    }

    /// Attack 4: a member floods a chain of refresh epochs. They are void
    /// (only admins refresh) and cost the replicas a constant each; the
    /// group is unchanged. (The costs are measured in `cargo bench --bench
    /// groups`; an admin's chain of 10,000 is judged in place, see
    /// `a_chain_of_operations_is_judged_in_place` in the core.)
    #[test]
    fn a_member_cannot_stall_the_group_with_refreshes() {
        let (a, m, y) = (person(141), person(142), person(143));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![m.keys.id(), y.keys.id()],
            admins: vec![],
        })
        .unwrap();
        y.take_feed(&a);
        // Y writes a chain of refreshes, each on the last, sealed so that
        // every member opens them.
        let template = refresh_by_hand(&a, &y, &g);
        let mut prev = g;
        for _ in 0..400 {
            let mut e = template.clone();
            e.parents = vec![prev];
            prev = publish(&y, &seal_as(&y, &g, &GroupContent::Epoch(e), &[g]));
        }
        m.take_feed(&a);
        m.take_feed(&y);
        let info = m.store.group(&g).unwrap();
        assert_eq!(info.heads, vec![g.to_string()]);
        assert_eq!(members(&m, &g), ids(&[&a, &m, &y]));
        assert_eq!(info.rejected.len(), 400);
        a.post(g, "unstalled");
        m.take_feed(&a);
        assert_eq!(m.texts(&g), ["unstalled"]);
    }

    /// Attack 5: a forward from a non-admin, with a junk slot, used to mark
    /// the key as delivered so that no admin forwarded it. Now the member
    /// asks, an admin answers, and the junk changes nothing.
    #[test]
    fn a_junk_forward_does_not_block_a_key_delivery() {
        let (a, b, z, y) = (person(151), person(152), person(153), person(154));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![b.keys.id(), y.keys.id()],
            admins: vec![b.keys.id()],
        })
        .unwrap();
        b.take_feed(&a);
        y.take_feed(&a);
        // B refreshes while A adds Z: Z misses B's key.
        let refresh = b
            .write(GroupOp::Remove {
                group: g,
                members: vec![],
            })
            .unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![z.keys.id()],
            admins: vec![],
        })
        .unwrap();
        y.take_feed(&b);
        // Y, a plain member, "forwards" junk to Z for B's epoch.
        let fwd = Forward {
            group: g,
            to: z.keys.id(),
            request: refresh,
            keys: vec![(refresh, [7; 32])],
        };
        let ykeys = KeyStore::new(&y.keys);
        let entries = [
            ykeys.pairwise(&z.keys.id()).unwrap(),
            ykeys.pairwise(&y.keys.id()).unwrap(),
        ];
        let sealed = envelope::seal_control(&GroupContent::Forward(fwd), &next(&y), &entries);
        publish(&y, &sealed.unwrap());
        for p in [&a, &b, &y] {
            z.take_feed(p);
        }
        let info = z.store.group(&g).unwrap();
        assert!(!info.can_post);
        assert_eq!(info.missing, vec![refresh.to_string()]);
        // Z asks; A, an admin who holds the key, answers.
        let asked = z.store.group_duties(&z.keys, None, None).unwrap();
        assert_eq!(asked.len(), 1, "one request");
        assert!(
            z.store
                .group_duties(&z.keys, None, None)
                .unwrap()
                .is_empty(),
            "asked once"
        );
        a.take_feed(&b);
        a.take_feed(&z);
        let answered = a.store.group_duties(&a.keys, None, None).unwrap();
        assert_eq!(answered.len(), 1, "one answer");
        z.take_feed(&a);
        assert!(z.store.group(&g).unwrap().can_post);
        z.post(g, "in at last");
        a.take_feed(&z);
        assert_eq!(a.texts(&g), ["in at last"]);
    }

    /// Attack 6: a non-admin locks a member out with a refresh whose slot
    /// for the victim is junk. The refresh is void: heads unchanged, the
    /// victim posts and everyone reads it.
    #[test]
    fn a_junk_refresh_by_a_non_admin_locks_no_one_out() {
        let (a, v, y) = (person(161), person(162), person(163));
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![v.keys.id(), y.keys.id()],
            admins: vec![],
        })
        .unwrap();
        y.take_feed(&a);
        // Y makes a refresh by hand: the real key sealed to A and itself,
        // junk to V.
        let mut e = refresh_by_hand(&a, &y, &g);
        let i = e.recipients.iter().position(|r| *r == v.keys.id()).unwrap();
        let junk = sealed_box_seal(&[3; 32], &ed25519_pk_to_curve25519(&v.keys.id()).unwrap());
        e.slots[i].copy_from_slice(&junk);
        publish(&y, &seal_as(&y, &g, &GroupContent::Epoch(e), &[g]));
        for p in [&a, &v] {
            p.take_feed(&a);
            p.take_feed(&y);
            let info = p.store.group(&g).unwrap();
            assert_eq!(info.heads, vec![g.to_string()], "the refresh is void");
            assert!(info.rejected.iter().any(|r| r.contains("not an admin")));
        }
        assert!(v.store.group(&g).unwrap().can_post);
        v.post(g, "not locked out");
        a.take_feed(&v);
        assert_eq!(a.texts(&g), ["not locked out"]);
    }

    /// Membership hidden: a peer that replicates every member's feed (an
    /// outsider, or `ssb-server`) learns no more than that group messages
    /// exist: no group, no kind, no feed id in them; and a removed member
    /// learns nothing of what the group does after its removal (here, who
    /// joins next).
    #[test]
    fn an_outsider_learns_only_that_group_messages_exist() {
        let (a, b, c, d, o) = (
            person(171),
            person(172),
            person(173),
            person(174),
            person(175),
        );
        let g = a.write(GroupOp::Create).unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![b.keys.id(), c.keys.id()],
            admins: vec![],
        })
        .unwrap();
        b.take_feed(&a);
        b.post(g, "hello");
        a.take_feed(&b);
        a.write(GroupOp::Remove {
            group: g,
            members: vec![c.keys.id()],
        })
        .unwrap();
        a.write(GroupOp::Add {
            group: g,
            members: vec![d.keys.id()],
            admins: vec![],
        })
        .unwrap();
        for p in [&a, &b] {
            o.take_feed(p);
            c.take_feed(p);
        }
        assert!(
            o.store.groups().unwrap().is_empty(),
            "the outsider sees no group"
        );
        let hidden: Vec<[u8; 32]> = [&a, &b, &c, &d]
            .iter()
            .map(|p| p.keys.id().0)
            .chain([g.0])
            .collect();
        for p in [&a, &b] {
            for m in p.store.feed(&p.keys.id(), 0, usize::MAX).unwrap() {
                let v = m.value().unwrap();
                let content = v.get("content").and_then(Value::as_str).unwrap();
                let raw = envelope::decode(content).unwrap();
                for id in &hidden {
                    assert!(
                        !raw.windows(32).any(|w| w == id),
                        "an id shows in {}",
                        m.key
                    );
                }
            }
        }
        // C knows it was removed, but not who joined after.
        let seen_by_c = members(&c, &g);
        assert!(!seen_by_c.contains(&d.keys.id().to_string()));
        assert!(!c.store.group(&g).unwrap().member);
        // D, added after, reads the history it was given.
        d.take_feed(&a);
        d.take_feed(&b);
        assert_eq!(d.texts(&g), ["hello"]);
        assert_eq!(members(&d, &g), ids(&[&a, &b, &d]));
    }

    /// Regression: any feed can claim a key for any epoch id. A stranger
    /// invited a new member to a group of its own with a junk key for the
    /// id of the real group's creation, ahead of the real invitation; the
    /// first claim used to be the only one tried, so the member never
    /// opened the real group's history. Every claim is tried now.
    #[test]
    fn a_junk_key_claimed_first_does_not_keep_a_new_member_out() {
        let (a, v, y) = (person(181), person(182), person(183));
        let g = a.write(GroupOp::Create).unwrap();
        let yg = y.write(GroupOp::Create).unwrap();
        // Y's add of V to Y's own group, carrying a junk key for `g`.
        let ykeys = super::store_level::keys_of(&y, &yg);
        let heads = BTreeSet::from([yg]);
        let members = ykeys.post_key(&heads).unwrap();
        let add = GroupContent::Add(shoal::private::groups::Add {
            group: yg,
            heads: vec![yg],
            ops: vec![],
            members: vec![v.keys.id()],
            admins: vec![],
            keys: vec![(yg, *ykeys.get(&yg).unwrap().bytes()), (g, [9; 32])],
        });
        let entries = [
            EntryKey::members(&members),
            ykeys.pairwise(&v.keys.id()).unwrap(),
            ykeys.pairwise(&y.keys.id()).unwrap(),
        ];
        publish(
            &y,
            &envelope::seal_control(&add, &next(&y), &entries).unwrap(),
        );
        v.take_feed(&y);
        a.write(GroupOp::Add {
            group: g,
            members: vec![v.keys.id()],
            admins: vec![],
        })
        .unwrap();
        a.post(g, "welcome");
        v.take_feed(&a);
        let info = v.store.group(&g).unwrap();
        assert!(info.member, "{info:?}");
        assert_eq!(v.texts(&g), ["welcome"]);
    }
}
