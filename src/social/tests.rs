//! Tests of the read models over a real store in a temporary directory:
//! threads (order, placeholders, hidden replies), likes, names, the
//! timeline and its paging, the inbox and private threads, unread marks,
//! malformed content, contacts, and the migration of version-1 stores.
//!
//! Our feed is written with `append_local`; other feeds are built and
//! validated like any received message and go through `Store::ingest`,
//! with claimed times chosen by the test.

use std::collections::HashMap;

use super::*;
use crate::crypto::Keypair;
use crate::feed::{self, FeedState, json};
use crate::store::schema::{LINK_MENTION, LINK_VOTE};
use crate::store::{Outcome, Store, now_ms};

/// A fixed past time: claimed times below are this plus a few ms.
const T0: f64 = 1_600_000_000_000.0;

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

fn c(text: &str) -> Value {
    json::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn post(text: &str) -> Value {
    compose::post(text)
}

fn reply(root: &MsgId, branch: &MsgId, text: &str) -> Value {
    c(&format!(
        r#"{{"type":"post","text":"{text}","root":"{root}","branch":"{branch}"}}"#
    ))
}

fn vote(link: &str, value: u8) -> Value {
    c(&format!(
        r#"{{"type":"vote","vote":{{"link":"{link}","value":{value}}}}}"#
    ))
}

fn about(who: &FeedId, name: &str) -> Value {
    c(&format!(
        r#"{{"type":"about","about":"{who}","name":"{name}"}}"#
    ))
}

fn follow(who: &FeedId) -> Value {
    compose::contact(who, content::Edge::Follow)
}

fn unblock(who: &FeedId) -> Value {
    c(&format!(
        r#"{{"type":"contact","contact":"{who}","blocking":false}}"#
    ))
}

/// An id nobody's message has.
fn absent(n: u8) -> MsgId {
    MsgId([n; 32])
}

/// A store opened as `me`, and the state of the other feeds written into it.
struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
    me: Keypair,
    states: HashMap<FeedId, FeedState>,
}

impl World {
    fn new(me: u8) -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let me = key(me);
        World {
            store: Store::open_as(&path, &me).unwrap(),
            _dir: dir,
            path,
            me,
            states: HashMap::new(),
        }
    }

    fn id(&self) -> FeedId {
        self.me.id()
    }

    /// The next message of `who`'s feed, claiming `ts`, as received.
    fn msg(&mut self, who: &Keypair, ts: f64, content: Value) -> feed::VerifiedMsg {
        let st = self.states.get(&who.id()).copied();
        let value = feed::build(who, st.as_ref(), ts, content, None);
        let m = feed::validate(st.as_ref(), None, value).unwrap();
        self.states.insert(who.id(), m.state());
        m
    }

    /// Receives the next message of `who` (not us), claiming `ts`.
    fn got(&mut self, who: &Keypair, ts: f64, content: Value) -> MsgId {
        let m = self.msg(who, ts, content);
        assert_eq!(
            self.store.ingest(vec![m.clone()]).unwrap(),
            [Outcome::Stored]
        );
        m.id()
    }

    /// Publishes on our own feed.
    fn mine(&self, content: Value) -> MsgId {
        self.store
            .append_local(&self.me, content, None)
            .unwrap()
            .id()
    }

    /// Runs `f` on a fresh view (fresh name cache) of the store.
    fn view<T>(&self, f: impl FnOnce(&mut View<'_>) -> T) -> T {
        let r = self.store.reader().unwrap();
        let mut v = View::new(&r).unwrap();
        f(&mut v)
    }

    fn thread(&self, id: &MsgId) -> Thread {
        self.view(|v| v.thread(id).unwrap())
    }

    fn timeline(&self, limit: usize) -> Vec<Item> {
        self.view(|v| v.timeline(None, limit).unwrap())
    }

    fn inbox(&self) -> Vec<Item> {
        self.view(|v| v.inbox(None, 100).unwrap())
    }

    fn item(&self, id: &MsgId) -> Item {
        self.view(|v| {
            let m = v.reader().get(id).unwrap().expect("stored");
            v.item(&m).unwrap()
        })
    }
}

/// A thread as `(depth, key, held)` lines.
fn shape(t: &Thread) -> Vec<(usize, String, bool)> {
    t.entries
        .iter()
        .map(|e| match e {
            Entry::Message { depth, item } => (*depth, item.key.clone(), true),
            Entry::Missing { depth, key } => (*depth, key.clone(), false),
            Entry::Muted { depth, count } => (*depth, format!("({count} muted)"), false),
        })
        .collect()
}

fn held(depth: usize, id: &MsgId) -> (usize, String, bool) {
    (depth, id.to_string(), true)
}

fn missing(depth: usize, id: &MsgId) -> (usize, String, bool) {
    (depth, id.to_string(), false)
}

fn keys(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.key.clone()).collect()
}

#[test]
fn threads_are_depth_first_with_siblings_by_time() {
    let mut w = World::new(1);
    let (a, b, c) = (key(2), key(3), key(4));
    let root = w.got(&a, T0 + 1000.0, post("root"));
    let r1 = w.got(&b, T0 + 2000.0, reply(&root, &root, "first by time 2000"));
    // Received after r1 but claims an earlier time: it comes first.
    let r2 = w.got(&c, T0 + 1500.0, reply(&root, &root, "earlier sibling"));
    let r3 = w.got(&b, T0 + 3000.0, reply(&root, &r2, "under r2"));
    let r4 = w.got(&a, T0 + 2500.0, reply(&root, &r1, "under r1"));
    let r5 = w.got(&c, T0 + 2600.0, reply(&root, &r4, "under r4"));
    let want = vec![
        held(0, &root),
        held(1, &r2),
        held(2, &r3),
        held(1, &r1),
        held(2, &r4),
        held(3, &r5),
    ];
    let t = w.thread(&root);
    assert_eq!(shape(&t), want);
    assert_eq!(t.root, root.to_string());
    assert_eq!(t.hidden, 0);
    // Any reply leads to the root's whole thread.
    for id in [&r3, &r5] {
        assert_eq!(shape(&w.thread(id)), want, "thread of {id}");
    }
    // The root counts its replies; a reply knows its root.
    let root_item = w.item(&root);
    assert_eq!(root_item.replies, 5);
    assert_eq!(root_item.text.as_deref(), Some("root"));
    assert_eq!(w.item(&r4).root, Some(root.to_string()));
}

#[test]
fn missing_messages_get_placeholders_with_their_replies_under_them() {
    let mut w = World::new(1);
    let (a, b) = (key(2), key(3));
    let root = w.got(&a, T0 + 1.0, post("root"));
    let gap = absent(7);
    let under_gap = w.got(&b, T0 + 2.0, reply(&root, &gap, "answers what we lack"));
    let direct = w.got(&a, T0 + 3.0, reply(&root, &root, "direct"));
    let t = w.thread(&root);
    assert_eq!(
        shape(&t),
        vec![
            held(0, &root),
            missing(1, &gap),
            held(2, &under_gap),
            held(1, &direct),
        ]
    );
    let text = serde_json::to_value(&t).unwrap();
    assert_eq!(text["entries"][1]["entry"], "missing");
    assert_eq!(text["entries"][1]["key"], gap.to_string());

    // A thread whose root we do not hold starts with its placeholder.
    let lost_root = absent(8);
    let orphan = w.got(&b, T0 + 4.0, reply(&lost_root, &lost_root, "orphan"));
    let deeper = w.got(&a, T0 + 5.0, reply(&lost_root, &orphan, "deeper"));
    let want = vec![missing(0, &lost_root), held(1, &orphan), held(2, &deeper)];
    assert_eq!(shape(&w.thread(&orphan)), want);
    assert_eq!(shape(&w.thread(&lost_root)), want);
    assert_eq!(w.thread(&deeper).root, lost_root.to_string());
}

#[test]
fn replies_of_blocked_feeds_are_hidden_and_counted() {
    let mut w = World::new(1);
    let (a, b, troll) = (key(2), key(3), key(4));
    w.mine(compose::contact(&troll.id(), content::Edge::Block));
    let root = w.got(&a, T0 + 1.0, post("root"));
    let bad1 = w.got(&troll, T0 + 2.0, reply(&root, &root, "noise"));
    let good = w.got(&b, T0 + 3.0, reply(&root, &root, "fine"));
    let bad2 = w.got(&troll, T0 + 4.0, reply(&root, &good, "more noise"));
    // An answer to a hidden reply is kept (under the root).
    let answer = w.got(&b, T0 + 5.0, reply(&root, &bad1, "answering the troll"));
    let t = w.thread(&root);
    assert_eq!(t.hidden, 2);
    let shown: Vec<String> = shape(&t).into_iter().map(|(_, k, _)| k).collect();
    assert!(!shown.contains(&bad1.to_string()) && !shown.contains(&bad2.to_string()));
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(shown[0], root.to_string());
    assert!(shown.contains(&good.to_string()) && shown.contains(&answer.to_string()));
    // The root's reply count leaves the hidden replies out.
    assert_eq!(w.item(&root).replies, 2);
    // The blocked feed is not in our timeline even when followed before.
    let mut w = World::new(1);
    w.mine(follow(&troll.id()));
    w.got(&troll, T0 + 1.0, post("hi"));
    assert_eq!(w.timeline(10).len(), 1);
    w.mine(compose::contact(&troll.id(), content::Edge::Block));
    assert!(w.timeline(10).is_empty());
}

#[test]
fn likes_count_each_voters_latest_vote() {
    let mut w = World::new(1);
    let (a, b, c) = (key(2), key(3), key(4));
    let target = w.got(&a, T0 + 1.0, post("like me"));
    let other = w.got(&a, T0 + 2.0, post("unrelated"));
    assert_eq!(w.item(&target).likes, 0);
    // Like, then take it back: 0.
    w.got(&b, T0 + 3.0, vote(&target.to_string(), 1));
    assert_eq!(w.item(&target).likes, 1);
    w.got(&b, T0 + 4.0, vote(&target.to_string(), 0));
    assert_eq!(w.item(&target).likes, 0);
    // Two likers: 2; a liker liking twice still counts once.
    w.got(&c, T0 + 5.0, vote(&target.to_string(), 1));
    w.got(&b, T0 + 6.0, vote(&target.to_string(), 1));
    w.got(&c, T0 + 7.0, vote(&target.to_string(), 1));
    assert_eq!(w.item(&target).likes, 2);
    // Our own like through compose, then undone.
    let r = w.store.reader().unwrap();
    let like = compose::like(&r, &w.id(), &target, true).unwrap();
    drop(r);
    w.mine(like);
    assert_eq!(w.item(&target).likes, 3);
    let r = w.store.reader().unwrap();
    let unlike = compose::like(&r, &w.id(), &target, false).unwrap();
    drop(r);
    w.mine(unlike);
    assert_eq!(w.item(&target).likes, 2);
    assert_eq!(w.item(&other).likes, 0);
    // A vote whose link is not an id is stored, shown as invalid, and
    // counts for nothing.
    let junk = w.got(&c, T0 + 8.0, vote(&format!("{target}x"), 1));
    let item = w.item(&junk);
    assert!(
        item.invalid.as_deref().unwrap().contains("vote.link"),
        "{item:?}"
    );
    assert_eq!(w.item(&target).likes, 2);
    let r = w.store.reader().unwrap();
    assert_eq!(r.backlink_count(&Link::Msg(target), LINK_VOTE).unwrap(), 7);
}

#[test]
fn own_names_win_then_ours_then_the_latest_and_all_are_kept() {
    let mut w = World::new(1);
    let me = w.id();
    let (a, b, d, e) = (key(2), key(3), key(4), key(5));
    // A names itself; B and we name A too.
    w.got(&b, T0 + 1.0, about(&a.id(), "al-by-bob"));
    w.got(&a, T0 + 2.0, about(&a.id(), "alice"));
    w.mine(about(&a.id(), "my-alice"));
    w.got(&b, T0 + 3.0, about(&a.id(), "al-by-bob-again"));
    assert_eq!(
        w.view(|v| v.name(&a.id()).unwrap()).as_deref(),
        Some("alice")
    );
    // D never named itself: ours wins over B's, whichever came last.
    w.mine(about(&d.id(), "my-dee"));
    w.got(&b, T0 + 4.0, about(&d.id(), "dee-by-bob"));
    assert_eq!(
        w.view(|v| v.name(&d.id()).unwrap()).as_deref(),
        Some("my-dee")
    );
    // E is named by a third party only.
    w.got(&b, T0 + 5.0, about(&e.id(), "e-by-bob"));
    assert_eq!(
        w.view(|v| v.name(&e.id()).unwrap()).as_deref(),
        Some("e-by-bob")
    );
    // Renaming oneself replaces the old name.
    w.got(&a, T0 + 6.0, about(&a.id(), "alice2"));
    let p = w.view(|v| v.profile(&a.id()).unwrap());
    assert_eq!(p.name.as_deref(), Some("alice2"));
    let mut names = p.names.clone();
    names.sort();
    let mut want = vec![
        (a.id().to_string(), "alice2".to_string()),
        (b.id().to_string(), "al-by-bob-again".to_string()),
        (me.to_string(), "my-alice".to_string()),
    ];
    want.sort();
    assert_eq!(names, want);
    // Items carry the author's current name; our own name is ours.
    let post_id = w.got(&a, T0 + 7.0, post("hello"));
    assert_eq!(w.item(&post_id).name.as_deref(), Some("alice2"));
    w.mine(compose::name(&me, "me-myself"));
    w.got(&b, T0 + 8.0, about(&me, "not-my-name"));
    assert_eq!(
        w.view(|v| v.name(&me).unwrap()).as_deref(),
        Some("me-myself")
    );
    // An about with a name of the wrong type names nobody.
    w.got(
        &b,
        T0 + 9.0,
        c(&format!(
            r#"{{"type":"about","about":"{}","name":5}}"#,
            e.id()
        )),
    );
    assert_eq!(
        w.view(|v| v.name(&e.id()).unwrap()).as_deref(),
        Some("e-by-bob")
    );
}

#[test]
fn timeline_holds_us_and_whom_we_follow_newest_first_and_pages_cleanly() {
    let mut w = World::new(1);
    let me = w.id();
    let (a, b, gone, blocked, far) = (key(2), key(3), key(4), key(5), key(6));
    for f in [&a, &b, &gone, &blocked] {
        w.mine(follow(&f.id()));
    }
    w.mine(compose::contact(&gone.id(), content::Edge::None));
    w.mine(compose::contact(&blocked.id(), content::Edge::Block));
    // `far` is followed by A only: two hops away, replicated, not shown.
    w.got(&a, T0, follow(&far.id()));
    let mut want: Vec<(f64, MsgId)> = Vec::new();
    for i in 0..6 {
        let t = T0 + 100.0 * f64::from(i);
        want.push((t + 10.0, w.got(&a, t + 10.0, post(&format!("a{i}")))));
        want.push((t + 20.0, w.got(&b, t + 20.0, post(&format!("b{i}")))));
        w.got(&gone, t + 30.0, post("unfollowed"));
        w.got(&blocked, t + 40.0, post("blocked"));
        w.got(&far, t + 50.0, post("two hops"));
    }
    // B answers A: replies are in the timeline too.
    let first_a = want[0].1;
    want.push((
        T0 + 700.0,
        w.got(&b, T0 + 700.0, reply(&first_a, &first_a, "re")),
    ));
    // Claimed times out of order within the followed set.
    want.push((T0 + 55.0, w.got(&a, T0 + 55.0, post("late claim"))));
    want.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut want: Vec<String> = want.into_iter().map(|(_, id)| id.to_string()).collect();
    // A claim in the future sorts at its receive time; our own post after
    // it is newer still.
    let before = now_ms() as u64;
    let future = w.got(&a, now_ms() + 86_400_000.0, post("from the future"));
    let after = now_ms() as u64;
    let mine = w.mine(post("mine"));
    want.insert(0, future.to_string());
    want.insert(0, mine.to_string());

    let all = w.timeline(100);
    assert_eq!(keys(&all), want);
    let future_item = all.iter().find(|i| i.key == future.to_string()).unwrap();
    assert!(
        (before..=after).contains(&future_item.time),
        "{} not in {before}..={after}",
        future_item.time
    );
    let authors: std::collections::HashSet<&str> = all.iter().map(|i| i.author.as_str()).collect();
    let allowed = [me, a.id(), b.id()].map(|f| f.to_string());
    assert!(
        authors.iter().all(|x| allowed.iter().any(|y| y == x)),
        "{authors:?}"
    );
    assert!(
        all.windows(2)
            .all(|p| (p[0].time, p[0].rx) > (p[1].time, p[1].rx))
    );
    assert!(all.iter().any(|i| i.root.is_some()));

    // Pages of any size with the (time, rx) cursor: the same list, no duplicates,
    // no gaps; the page after the last is empty.
    for size in [1, 3, 4] {
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = w.view(|v| v.timeline(cursor, size).unwrap());
            assert!(page.len() <= size);
            let Some(last) = page.last() else { break };
            cursor = Some((last.time, last.rx));
            paged.extend(keys(&page));
        }
        assert_eq!(paged, want, "pages of {size}");
    }
    // A store opened for nobody has no timeline.
    let dir = tempfile::tempdir().unwrap();
    let anon = Store::open(&dir.path().join("s.redb")).unwrap();
    let r = anon.reader().unwrap();
    assert!(
        View::new(&r)
            .unwrap()
            .timeline(None, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn inbox_holds_messages_for_us_and_private_replies_thread_under_them() {
    let mut w = World::new(1);
    let me = w.id();
    let (b, c) = (key(2), key(3));
    let to_us = w.got(&b, T0 + 1.0, compose::dm(&b.id(), &[me], "psst").unwrap());
    let not_us = w.got(
        &b,
        T0 + 2.0,
        compose::dm(&b.id(), &[c.id()], "secret").unwrap(),
    );
    let inbox = w.inbox();
    assert_eq!(keys(&inbox), [to_us.to_string()]);
    let dm = &inbox[0];
    assert!(dm.private && dm.unread);
    assert_eq!(dm.text.as_deref(), Some("psst"));
    let mut recps = dm.recps.clone();
    recps.sort();
    let mut want = vec![b.id().to_string(), me.to_string()];
    want.sort();
    assert_eq!(recps, want);
    // The box for C stays closed: shown raw, not private, nothing decrypted.
    let closed = w.item(&not_us);
    assert!(!closed.private && closed.text.is_none() && closed.kind.is_none());
    assert!(closed.content.as_str().unwrap().ends_with(".box"));
    let r = w.store.reader().unwrap();
    assert!(r.private_content(&not_us).unwrap().is_none());
    // Private messages stay out of the public timeline.
    drop(r);
    w.mine(follow(&b.id()));
    assert!(w.timeline(10).is_empty());

    // Our reply to the DM is private to the same people, in its thread.
    let r = w.store.reader().unwrap();
    let content = compose::reply(&r, &me, &to_us, "got it").unwrap();
    drop(r);
    assert!(
        content.as_str().unwrap().ends_with(".box"),
        "replies stay private"
    );
    let ours = w.mine(content);
    let theirs = w.got(&b, T0 + 3.0, {
        let plain = reply(&to_us, &ours, "good");
        let mut o = plain.as_object().unwrap().clone();
        o.insert(
            "recps",
            Value::Array(vec![
                Value::from(b.id().to_string()),
                Value::from(me.to_string()),
            ]),
        );
        let bytes = json::to_compact(&Value::Object(o));
        Value::from(crate::private::box_message(&bytes, &[b.id(), me]).unwrap())
    });
    let t = w.thread(&to_us);
    assert_eq!(
        shape(&t),
        vec![held(0, &to_us), held(1, &ours), held(2, &theirs)]
    );
    let Entry::Message { item, .. } = &t.entries[1] else {
        panic!()
    };
    assert!(item.private);
    assert_eq!(item.text.as_deref(), Some("got it"));
    assert_eq!(w.thread(&theirs).root, to_us.to_string());
    // Every private post we can read is in the inbox, newest first (ours
    // was written now, theirs claims an older time).
    assert_eq!(
        keys(&w.inbox()),
        [ours.to_string(), theirs.to_string(), to_us.to_string()]
    );
    // A private like counts for those who can read it.
    let r = w.store.reader().unwrap();
    let like = compose::like(&r, &me, &to_us, true).unwrap();
    drop(r);
    assert!(like.as_str().unwrap().ends_with(".box"));
    w.mine(like);
    assert_eq!(w.item(&to_us).likes, 1);
    // Blocking the sender takes their messages out of the inbox.
    w.mine(compose::contact(&b.id(), content::Edge::Block));
    assert_eq!(keys(&w.inbox()), [ours.to_string()]);
}

/// Regression: a reply (or like) to a private message whose `recps` name
/// eight others and not us added us as a ninth recipient and failed in the
/// box layer with an error that did not say why; it is refused like a DM
/// to eight others, as a usage error.
#[test]
fn a_private_reply_never_goes_past_seven_others() {
    let mut w = World::new(1);
    let me = w.id();
    let b = key(2);
    let eight: Vec<FeedId> = (30..38).map(|n| key(n).id()).collect();
    // B boxes to us (slots) but lists eight others (plaintext recps).
    let mut o = post("to many").as_object().unwrap().clone();
    o.insert(
        "recps",
        Value::Array(eight.iter().map(|f| Value::from(f.to_string())).collect()),
    );
    let bytes = json::to_compact(&Value::Object(o));
    let boxed = crate::private::box_message(&bytes, &[b.id(), me]).unwrap();
    let theirs = w.got(&b, T0, Value::from(boxed));
    let r = w.store.reader().unwrap();
    assert!(matches!(
        compose::reply(&r, &me, &theirs, "me too"),
        Err(compose::ComposeError::TooManyRecipients(8))
    ));
    assert!(matches!(
        compose::like(&r, &me, &theirs, true),
        Err(compose::ComposeError::TooManyRecipients(8))
    ));
}

#[test]
fn a_dm_to_seven_others_opens_for_the_eighth_recipient() {
    let me = key(1);
    let others: Vec<Keypair> = (20..27).map(key).collect();
    let ids: Vec<FeedId> = others.iter().map(Keypair::id).collect();
    let content = compose::dm(&me.id(), &ids, "to all of you").unwrap();
    let mut eighth = World::new(26);
    assert_eq!(eighth.id(), ids[6]);
    let id = eighth.got(&me, T0, content.clone());
    let inbox = eighth.inbox();
    assert_eq!(keys(&inbox), [id.to_string()]);
    assert_eq!(inbox[0].text.as_deref(), Some("to all of you"));
    // Slot order: us first, then the others as given; the last is the 8th.
    assert_eq!(inbox[0].recps.len(), 8);
    assert_eq!(inbox[0].recps[0], me.id().to_string());
    assert_eq!(inbox[0].recps[7], ids[6].to_string());
    // And for the author and the first recipient too.
    for n in [1, 20] {
        let mut w = World::new(n);
        let id = if n == 1 {
            w.mine(content.clone())
        } else {
            w.got(&me, T0, content.clone())
        };
        assert_eq!(keys(&w.inbox()), [id.to_string()], "recipient {n}");
    }
    // An eighth other is one too many; none at all is not a message.
    let eight: Vec<FeedId> = (20..28).map(|n| key(n).id()).collect();
    assert!(matches!(
        compose::dm(&me.id(), &eight, "x"),
        Err(compose::ComposeError::TooManyRecipients(8))
    ));
    assert!(matches!(
        compose::dm(&me.id(), &[me.id()], "x"),
        Err(compose::ComposeError::NoRecipients)
    ));
    // Naming ourselves among the 7 does not use up a slot.
    let mut with_me = ids.clone();
    with_me.push(me.id());
    assert!(compose::dm(&me.id(), &with_me, "x").is_ok());
}

#[test]
fn mentions_dms_and_followed_posts_are_unread_until_marked_read() {
    let mut w = World::new(1);
    let me = w.id();
    let (friend, stranger) = (key(2), key(3));
    w.mine(follow(&friend.id()));
    let mine = w.mine(post("my own"));
    let followed = w.got(&friend, T0 + 1.0, post("friend's"));
    let mention = w.got(
        &stranger,
        T0 + 2.0,
        c(&format!(
            r#"{{"type":"post","text":"hey @me","mentions":[{{"link":"{me}","name":"me"}}]}}"#
        )),
    );
    let plain = w.got(&stranger, T0 + 3.0, post("not for you"));
    let dm = w.got(
        &stranger,
        T0 + 4.0,
        compose::dm(&stranger.id(), &[me], "hi").unwrap(),
    );
    let is_unread = |w: &World, id: &MsgId| w.item(id).unread;
    assert!(!is_unread(&w, &mine));
    assert!(!is_unread(&w, &plain));
    for id in [&followed, &mention, &dm] {
        assert!(is_unread(&w, id), "{id}");
    }
    // Nothing of a feed we block waits to be read: it is never shown.
    let troll = key(4);
    w.mine(compose::contact(&troll.id(), content::Edge::Block));
    let blocked_mention = w.got(
        &troll,
        T0 + 5.0,
        c(&format!(
            r#"{{"type":"post","text":"@me","mentions":["{me}"]}}"#
        )),
    );
    let blocked_dm = w.got(
        &troll,
        T0 + 6.0,
        compose::dm(&troll.id(), &[me], "hey").unwrap(),
    );
    assert!(!is_unread(&w, &blocked_mention) && !is_unread(&w, &blocked_dm));
    assert!(w.inbox().iter().all(|i| i.key != blocked_dm.to_string()));
    let r = w.store.reader().unwrap();
    assert_eq!(r.unread_count().unwrap(), 3);
    assert_eq!(r.backlinks(&Link::Feed(me), LINK_MENTION).unwrap().len(), 2);
    let shown = View::new(&r).unwrap().mentions(10).unwrap();
    assert_eq!(
        keys(&shown),
        [mention.to_string()],
        "the blocked feed's mention is not shown"
    );
    drop(r);
    let rxs: Vec<u64> = [&followed, &mention]
        .iter()
        .map(|id| w.item(id).rx)
        .collect();
    w.store.mark_read(&rxs).unwrap();
    assert!(!is_unread(&w, &followed) && !is_unread(&w, &mention));
    assert!(is_unread(&w, &dm));
    w.store.mark_read(&[w.item(&dm).rx]).unwrap();
    assert_eq!(w.store.reader().unwrap().unread_count().unwrap(), 0);
    // Receiving the same message again marks nothing.
    let again = w.store.get(&followed).unwrap().unwrap();
    let m = feed::validate(None, None, again.value().unwrap()).unwrap();
    assert_eq!(w.store.ingest(vec![m]).unwrap(), [Outcome::Duplicate]);
    assert_eq!(w.store.reader().unwrap().unread_count().unwrap(), 0);
}

#[test]
fn malformed_content_is_shown_with_its_reason_and_breaks_nothing() {
    let mut w = World::new(1);
    let a = key(2);
    w.mine(follow(&a.id()));
    let good = w.got(&a, T0 + 1.0, post("fine"));
    let bad = w.got(&a, T0 + 2.0, c(r#"{"type":"post","text":5}"#));
    let bad_root = w.got(
        &a,
        T0 + 3.0,
        c(r#"{"type":"post","text":"x","root":"%nope"}"#),
    );
    let unknown = w.got(&a, T0 + 4.0, c(r#"{"type":"gathering","when":5}"#));
    let own_bad = w.mine(c(r#"{"type":"post","text":["not","text"]}"#));
    // Malformed posts are listed (with the reason), other types are not.
    let tl = w.timeline(10);
    assert_eq!(
        keys(&tl),
        [&own_bad, &bad_root, &bad, &good].map(|k| k.to_string())
    );
    let item = &tl[2];
    assert_eq!(item.kind.as_deref(), Some("post"));
    assert!(item.text.is_none());
    let why = item.invalid.as_deref().unwrap();
    assert!(why.contains("\"text\"") && why.contains("number"), "{why}");
    assert_eq!(item.content, serde_json::json!({"type": "post", "text": 5}));
    assert!(tl[1].invalid.as_deref().unwrap().contains("root"));
    assert!(tl[3].invalid.is_none());
    // An unknown type is kept and shown raw, without complaint.
    let u = w.item(&unknown);
    assert_eq!(u.kind.as_deref(), Some("gathering"));
    assert!(u.invalid.is_none() && u.text.is_none());
    assert_eq!(u.content["when"], 5);
    // Threads: a malformed post is its own thread; replies to it thread.
    let b = key(3);
    let re = w.got(&b, T0 + 5.0, reply(&bad, &bad, "what is 5?"));
    let t = w.thread(&bad);
    assert_eq!(shape(&t), vec![held(0, &bad), held(1, &re)]);
    let Entry::Message { item, .. } = &t.entries[0] else {
        panic!()
    };
    assert!(item.invalid.is_some());
    // A malformed reply does not join the thread it claims (its links are
    // not trusted) but is not lost either.
    let bad_reply = w.got(
        &b,
        T0 + 6.0,
        c(&format!(r#"{{"type":"post","text":7,"root":"{good}"}}"#)),
    );
    assert_eq!(shape(&w.thread(&good)), vec![held(0, &good)]);
    assert!(w.item(&bad_reply).invalid.is_some());
}

#[test]
fn boxes_that_do_not_open_are_stored_and_shown_raw() {
    let mut w = World::new(1);
    let a = key(2);
    w.mine(follow(&a.id()));
    let empty = w.got(&a, T0 + 1.0, Value::from(".box"));
    let short = w.got(&a, T0 + 2.0, Value::from("QUJD.box"));
    // Long enough to be a box, but random bytes.
    let junk = crate::crypto::b64_encode(&[0x5a; 200]);
    let random = w.got(&a, T0 + 3.0, Value::from(format!("{junk}.box")));
    let suffixed = w.got(&a, T0 + 4.0, Value::from("QUJD.box2"));
    assert!(w.inbox().is_empty());
    assert!(w.timeline(10).is_empty());
    for id in [&empty, &short, &random, &suffixed] {
        let item = w.item(id);
        assert!(!item.private && item.kind.is_none() && item.invalid.is_none());
        assert!(item.content.is_string());
        assert_eq!(shape(&w.thread(id)), vec![held(0, id)]);
    }
}

#[test]
fn contacts_and_followers_both_ways_and_unfollow_clears() {
    let mut w = World::new(1);
    let me = w.id();
    let (a, b, c) = (key(2), key(3), key(4));
    w.mine(follow(&a.id()));
    w.got(&b, T0 + 1.0, follow(&a.id()));
    w.got(
        &c,
        T0 + 2.0,
        compose::contact(&a.id(), content::Edge::Block),
    );
    w.got(&a, T0 + 3.0, follow(&me));
    w.got(&a, T0 + 4.0, about(&a.id(), "alice"));
    let ids = |ps: &[Person]| {
        let mut v: Vec<String> = ps.iter().map(|p| p.id.clone()).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let ca = w.view(|v| v.contacts(&a.id()).unwrap());
    assert_eq!(
        ids(&ca.followers),
        sorted(vec![me.to_string(), b.id().to_string()])
    );
    assert_eq!(ids(&ca.blocked_by), [c.id().to_string()]);
    assert_eq!(ids(&ca.follows), [me.to_string()]);
    assert!(ca.blocks.is_empty());
    let mine = w.view(|v| v.contacts(&me).unwrap());
    assert_eq!(ids(&mine.follows), [a.id().to_string()]);
    assert_eq!(mine.follows[0].name.as_deref(), Some("alice"));
    assert_eq!(ids(&mine.followers), [a.id().to_string()]);
    let cc = w.view(|v| v.contacts(&c.id()).unwrap());
    assert_eq!(ids(&cc.blocks), [a.id().to_string()]);
    // Unfollow clears the edge both ways; a profile carries the contacts.
    w.mine(compose::contact(&a.id(), content::Edge::None));
    let ca = w.view(|v| v.contacts(&a.id()).unwrap());
    assert_eq!(ids(&ca.followers), [b.id().to_string()]);
    assert!(w.view(|v| v.contacts(&me).unwrap()).follows.is_empty());
    let p = w.view(|v| v.profile(&a.id()).unwrap());
    assert_eq!(p.contacts, ca);
    assert_eq!(p.name.as_deref(), Some("alice"));
    // Following again restores it; a later unblock clears C's block.
    w.mine(follow(&a.id()));
    w.got(&c, T0 + 5.0, unblock(&a.id()));
    let ca = w.view(|v| v.contacts(&a.id()).unwrap());
    assert_eq!(
        ids(&ca.followers),
        sorted(vec![me.to_string(), b.id().to_string()])
    );
    assert!(ca.blocked_by.is_empty());
}

/// Rewrites a store file as version 1 left it: the version says 1 and the
/// tables version 2 added are gone.
fn make_version_1(path: &std::path::Path) {
    use crate::store::schema::*;
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert("schema_version", 1)
        .unwrap();
    assert!(txn.delete_table(FOLLOWERS).unwrap());
    assert!(txn.delete_table(LINKS).unwrap());
    assert!(txn.delete_table(POSTS).unwrap());
    assert!(txn.delete_table(ABOUTS).unwrap());
    assert!(txn.delete_table(PRIVATE).unwrap());
    assert!(txn.delete_table(INBOX).unwrap());
    assert!(txn.delete_table(UNREAD).unwrap());
    txn.commit().unwrap();
}

fn schema_version(path: &std::path::Path) -> u64 {
    use redb::ReadableDatabase as _;
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(crate::store::schema::META).unwrap();
    meta.get("schema_version").unwrap().unwrap().value()
}

#[test]
fn version_1_stores_get_their_indexes_back() {
    let mut w = World::new(1);
    let me = w.id();
    let (a, b) = (key(2), key(3));
    w.mine(follow(&a.id()));
    w.mine(about(&me, "me"));
    let root = w.got(&a, T0 + 1.0, post("root"));
    w.got(&a, T0 + 2.0, about(&a.id(), "alice"));
    let re = w.got(&b, T0 + 3.0, reply(&root, &root, "re"));
    w.got(&b, T0 + 4.0, vote(&root.to_string(), 1));
    let dm = w.got(
        &b,
        T0 + 5.0,
        compose::dm(&b.id(), &[me], "private").unwrap(),
    );
    let before = (
        shape(&w.thread(&root)),
        keys(&w.timeline(10)),
        keys(&w.inbox()),
        w.view(|v| v.contacts(&a.id()).unwrap()),
    );
    assert_eq!(before.1.len(), 1);
    assert_eq!(before.2, [dm.to_string()]);
    let World {
        _dir, path, store, ..
    } = w;
    drop(store);
    make_version_1(&path);
    assert_eq!(schema_version(&path), 1);

    // Opened without an identity, it is not upgraded: boxes to its owner
    // could not be opened.
    drop(Store::open(&path).unwrap());
    assert_eq!(schema_version(&path), 1);

    let store = Store::open_as(&path, &key(1)).unwrap();
    let w = World {
        _dir,
        path: path.clone(),
        store,
        me: key(1),
        states: HashMap::new(),
    };
    let after = (
        shape(&w.thread(&root)),
        keys(&w.timeline(10)),
        keys(&w.inbox()),
        w.view(|v| v.contacts(&a.id()).unwrap()),
    );
    assert_eq!(after, before);
    assert_eq!(shape(&w.thread(&re))[1], held(1, &re));
    assert_eq!(
        w.view(|v| v.name(&a.id()).unwrap()).as_deref(),
        Some("alice")
    );
    assert_eq!(w.view(|v| v.name(&me).unwrap()).as_deref(), Some("me"));
    assert_eq!(w.item(&root).likes, 1);
    assert_eq!(w.item(&dm).text.as_deref(), Some("private"));
    // Reindexing marks nothing unread.
    assert_eq!(w.store.reader().unwrap().unread_count().unwrap(), 0);
    let World { _dir, store, .. } = w;
    drop(store);
    assert_eq!(schema_version(&path), crate::store::schema::SCHEMA_VERSION);
}

#[test]
fn blob_links_come_from_mentions_and_text_once_each_and_bounded() {
    use crate::crypto::BlobId;
    let a = BlobId::of(b"a");
    let b = BlobId::of(b"b");
    let c = BlobId::of(b"c");
    let content = crate::feed::json::parse(
        format!(
            r#"{{"type":"post","text":"look ![a]({a}) and {c}, &not-a-blob.sha256 &","mentions":[{{"link":"{a}","name":"a.png","size":1,"type":"image/png"}},{{"link":"{b}"}},{{"link":"@AAAA.ed25519"}},"{b}",5]}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(super::blob_links(&content), [a, b, c]);
    let many: String = (0..100u32)
        .map(|i| format!("{} ", BlobId::of(&i.to_be_bytes())))
        .collect();
    let content =
        crate::feed::json::parse(format!(r#"{{"type":"post","text":"{many}"}}"#).as_bytes())
            .unwrap();
    assert_eq!(super::blob_links(&content).len(), super::MAX_BLOB_LINKS);
}

/// An entry's item, by id.
fn entry_of<'t>(t: &'t Thread, id: &MsgId) -> &'t Item {
    t.entries
        .iter()
        .find_map(|e| match e {
            Entry::Message { item, .. } if item.key == id.to_string() => Some(&**item),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} in the thread"))
}

/// A reply naming `root` as its root and nothing as its branch.
fn rooted(root: &MsgId, text: &str) -> Value {
    c(&format!(
        r#"{{"type":"post","text":"{text}","root":"{root}"}}"#
    ))
}

/// Issue 19: a reply that other messages name as their root (a forked
/// thread, as Patchwork makes) showed its root's thread instead, so the
/// replies of the fork could not be reached; and the count beside it
/// counted the fork, not what was nested under it.
#[test]
fn a_reply_named_as_root_opens_its_own_forked_thread() {
    let mut w = World::new(1);
    let (a, b, c) = (key(2), key(3), key(4));
    let root = w.got(&a, T0 + 1.0, post("root"));
    let r1 = w.got(&b, T0 + 2.0, reply(&root, &root, "reply"));
    let fork = w.got(&c, T0 + 3.0, reply(&root, &r1, "the reply that forks"));
    let under = w.got(
        &a,
        T0 + 4.0,
        reply(&root, &fork, "in the root thread, under it"),
    );
    let f1 = w.got(&a, T0 + 5.0, reply(&fork, &fork, "in the fork"));
    let f2 = w.got(&b, T0 + 6.0, reply(&fork, &fork, "also in the fork"));
    let f3 = w.got(
        &c,
        T0 + 7.0,
        reply(&fork, &f1, "a reply to a reply in the fork"),
    );

    // The root thread: the fork is an entry with replies of its own.
    let t = w.thread(&root);
    assert_eq!(
        shape(&t),
        vec![
            held(0, &root),
            held(1, &r1),
            held(2, &fork),
            held(3, &under)
        ]
    );
    assert_eq!(t.forked_from, None);
    assert_eq!(entry_of(&t, &root).replies, 3);
    assert_eq!(entry_of(&t, &r1).replies, 2);
    assert_eq!(entry_of(&t, &fork).replies, 1, "what is nested under it");
    assert_eq!(entry_of(&t, &fork).own_thread, 3, "what opening it shows");
    assert_eq!(entry_of(&t, &under).own_thread, 0);
    // Opening any reply without replies of its own: the root's thread.
    assert_eq!(shape(&w.thread(&under)), shape(&t));
    assert_eq!(shape(&w.thread(&r1)), shape(&t));

    // The fork, from itself or any of its replies: its replies, and
    // where it forked from.
    let want = vec![held(0, &fork), held(1, &f1), held(2, &f3), held(1, &f2)];
    for id in [&fork, &f1, &f2, &f3] {
        let t = w.thread(id);
        assert_eq!(shape(&t), want, "thread of {id}");
        assert_eq!(t.root, fork.to_string());
        assert_eq!(t.forked_from, Some(root.to_string()));
        assert_eq!(entry_of(&t, &fork).replies, 3);
        assert_eq!(entry_of(&t, &f1).replies, 1);
    }
    // On its own, a message counts the replies opening it shows.
    assert_eq!(w.item(&fork).replies, 3);
    assert_eq!(w.item(&root).replies, 3);
    assert_eq!(w.item(&under).replies, 0);
}

#[test]
fn forks_nest_and_each_level_links_back_one_level() {
    let mut w = World::new(1);
    let a = key(2);
    let root = w.got(&a, T0 + 1.0, post("root"));
    let mut parent = root;
    let mut levels = vec![root];
    // Each level forks from the one above it.
    for i in 0..5 {
        let r = w.got(
            &a,
            T0 + 2.0 + i as f64 * 2.0,
            reply(&parent, &parent, "forks"),
        );
        w.got(&a, T0 + 3.0 + i as f64 * 2.0, reply(&r, &r, "in the fork"));
        levels.push(r);
        parent = r;
    }
    for (i, pair) in levels.windows(2).enumerate() {
        let t = w.thread(&pair[1]);
        assert_eq!(t.root, pair[1].to_string());
        assert_eq!(t.forked_from, Some(pair[0].to_string()));
        // Its own thread: its reply, and the next level forking from it.
        let deeper = usize::from(i + 2 < levels.len());
        assert_eq!(t.entries.len(), 2 + deeper);
        let t = w.thread(&pair[0]);
        assert_eq!(entry_of(&t, &pair[1]).own_thread, 1 + deeper);
    }
}

/// Thread order of synthetic links as `(depth, reply index or
/// placeholder id byte, replies under it)`.
fn arranged(ids: &[MsgId], branches: &[Vec<MsgId>]) -> (Vec<(usize, String, usize)>, usize) {
    let keys: Vec<(u64, u64)> = (0..ids.len() as u64).map(|i| (i, i)).collect();
    let Arranged {
        order,
        under,
        shown,
    } = arrange(absent(0), ids, branches, &keys, |k| Ok(ids.contains(k))).unwrap();
    let lines = order
        .iter()
        .zip(under)
        .map(|((node, depth), n)| match node {
            Node::Reply(i) => (*depth, format!("r{i}"), n),
            Node::Missing(k) => (*depth, format!("lost {}", k.0[0]), n),
        })
        .collect();
    (lines, shown)
}

/// Message ids cannot name themselves or later messages, but the view
/// does not lean on that: branches that name themselves or each other in
/// a circle still place every reply exactly once, and it ends.
#[test]
fn circles_of_branches_place_each_reply_once() {
    let ids: Vec<MsgId> = (1..=5).map(absent).collect();
    let root = absent(0);
    let branches = vec![
        vec![ids[1]],         // r0 under r1
        vec![ids[0]],         // r1 under r0: a circle
        vec![ids[2]],         // r2 names itself: under the root
        vec![root],           // r3 under the root
        vec![ids[3], ids[4]], // r4 under r3 (itself skipped)
    ];
    let (lines, shown) = arranged(&ids, &branches);
    assert_eq!(
        lines,
        vec![
            (1, "r2".into(), 0),
            (1, "r3".into(), 1),
            (2, "r4".into(), 0),
            (1, "r0".into(), 1),
            (2, "r1".into(), 0),
        ]
    );
    assert_eq!(shown, 5);
    // A long circle and a placeholder: still each once.
    let ids: Vec<MsgId> = (1..=100).map(absent).collect();
    let mut branches: Vec<Vec<MsgId>> = (0..100).map(|i| vec![ids[(i + 1) % 100]]).collect();
    branches[50] = vec![absent(200)];
    let (lines, shown) = arranged(&ids, &branches);
    assert_eq!(shown, 100);
    assert_eq!(lines.len(), 101);
    assert_eq!(lines[0], (1, "lost 200".into(), 100));
    let mut seen: Vec<&String> = lines.iter().map(|l| &l.1).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 101);
}

#[test]
fn deep_and_wide_forks_stay_bounded() {
    let mut w = World::new(1);
    let (a, b) = (key(2), key(3));
    let root = w.got(&a, T0, post("root"));
    // A chain deeper than the deepest nesting shown.
    let mut parent = root;
    let mut chain = Vec::new();
    for i in 0..(MAX_THREAD_DEPTH + 6) {
        parent = w.got(&a, T0 + 1.0 + i as f64, reply(&root, &parent, "deeper"));
        chain.push(parent);
    }
    let t = w.thread(&root);
    assert_eq!(t.entries.len(), chain.len() + 1);
    let depths: Vec<usize> = shape(&t).iter().map(|l| l.0).collect();
    assert_eq!(*depths.iter().max().unwrap(), MAX_THREAD_DEPTH);
    assert_eq!(entry_of(&t, &root).replies, chain.len());
    assert_eq!(entry_of(&t, &chain[0]).replies, chain.len() - 1);
    // Each link of the chain forks: every entry knows its own thread and
    // each fork opens to itself.
    for (i, r) in chain.iter().enumerate() {
        w.got(&b, T0 + 1000.0 + i as f64, rooted(r, "a fork"));
    }
    let t = w.thread(&root);
    assert_eq!(t.entries.len(), chain.len() + 1);
    for r in &chain {
        assert_eq!(entry_of(&t, r).own_thread, 1);
    }
    let f = w.thread(&chain[40]);
    assert_eq!(f.entries.len(), 2);
    assert_eq!(f.forked_from, Some(root.to_string()));
    // Past the cap, the rest is counted, not read.
    let capped = w.view(|v| v.thread_within(&root, 10).unwrap());
    assert_eq!(capped.entries.len(), 11);
    assert_eq!(capped.more, chain.len() - 10);
    assert_eq!(entry_of(&capped, &root).replies, 10);
}

// Mutes and edits.

fn mute(w: &World, m: crate::store::Mute) {
    assert!(w.store.mute(&m, 1).unwrap());
}

fn texts(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| i.text.clone().unwrap_or_default())
        .collect()
}

#[test]
fn muted_feeds_threads_and_words_are_hidden_from_timeline_and_inbox_until_unmuted() {
    use crate::store::Mute;
    let mut w = World::new(1);
    let me = w.id();
    let (b, c) = (key(2), key(3));
    w.mine(follow(&b.id()));
    w.mine(follow(&c.id()));
    let b1 = w.got(&b, T0 + 1.0, post("b one"));
    w.got(&c, T0 + 2.0, post("c one"));
    w.got(&c, T0 + 3.0, reply(&b1, &b1, "c in b's thread"));
    w.got(&c, T0 + 4.0, post("Cats are FINE"));
    w.got(&c, T0 + 5.0, post("concatenate"));
    w.got(
        &b,
        T0 + 6.0,
        compose::dm(&b.id(), &[me], "psst from b").unwrap(),
    );
    w.got(
        &c,
        T0 + 7.0,
        compose::dm(&c.id(), &[me], "a cats dm").unwrap(),
    );
    let mut hi = post("hi you").as_object().unwrap().clone();
    hi.insert(
        "mentions",
        Value::Array(vec![
            json::parse(format!(r#"{{"link":"{me}"}}"#).as_bytes()).unwrap(),
        ]),
    );
    w.got(&b, T0 + 8.0, Value::Object(hi));
    let mentions = |w: &World| w.view(|v| v.mentions(10).unwrap()).len();
    assert_eq!(mentions(&w), 1);
    let all = texts(&w.timeline(50));
    assert_eq!(all.len(), 6);

    mute(&w, Mute::Feed(b.id()));
    mute(&w, Mute::Thread(b1));
    mute(&w, Mute::word("cats").unwrap());
    assert_eq!(texts(&w.timeline(50)), ["concatenate", "c one"]);
    assert!(
        w.inbox().is_empty(),
        "b muted, the other holds a muted word"
    );
    assert_eq!(
        mentions(&w),
        0,
        "a muted feed's mention of us is hidden too"
    );
    // Following is untouched; the profile still opens.
    let r = w.store.reader().unwrap();
    assert!(
        r.contacts_of(&me)
            .unwrap()
            .contains(&(b.id(), crate::store::Contact::Follow))
    );
    drop(r);
    assert_eq!(
        w.view(|v| v.profile(&b.id()).unwrap()).id,
        b.id().to_string()
    );

    // Nothing was deleted: unmuting brings it all back.
    for m in w.store.mutes().unwrap() {
        assert!(w.store.unmute(&m.0).unwrap());
    }
    assert_eq!(texts(&w.timeline(50)), all);
    assert_eq!(w.inbox().len(), 2);
    assert_eq!(mentions(&w), 1);
}

#[test]
fn timeline_pages_stay_full_past_muted_posts() {
    use crate::store::Mute;
    let mut w = World::new(1);
    let (b, c) = (key(2), key(3));
    w.mine(follow(&b.id()));
    w.mine(follow(&c.id()));
    w.got(&c, T0, post("old 1"));
    w.got(&c, T0 + 1.0, post("old 2"));
    for i in 0..30 {
        w.got(&b, T0 + 10.0 + f64::from(i), post(&format!("noise {i}")));
    }
    w.got(&c, T0 + 100.0, post("new 1"));
    mute(&w, Mute::Feed(b.id()));
    let page = w.view(|v| v.timeline(None, 2).unwrap());
    assert_eq!(texts(&page), ["new 1", "old 2"]);
    let last = page.last().unwrap();
    let next = w.view(|v| v.timeline(Some((last.time, last.rx)), 2).unwrap());
    assert_eq!(texts(&next), ["old 1"]);
}

#[test]
fn muted_replies_collapse_in_threads_with_what_they_hide() {
    use crate::store::Mute;
    let mut w = World::new(1);
    let (b, c, d) = (key(2), key(3), key(4));
    let root = w.got(&b, T0, post("root"));
    let r1 = w.got(&c, T0 + 1.0, reply(&root, &root, "from c"));
    w.got(&d, T0 + 2.0, reply(&root, &r1, "under c's"));
    w.got(&d, T0 + 3.0, reply(&root, &root, "a Spoiler here"));
    let kept = w.got(&d, T0 + 4.0, reply(&root, &root, "kept"));
    mute(&w, Mute::Feed(c.id()));
    mute(&w, Mute::word("spoiler").unwrap());
    let t = w.thread(&root);
    let lines: Vec<String> = t
        .entries
        .iter()
        .map(|e| match e {
            Entry::Message { depth, item } => format!("{depth} {}", item.text.clone().unwrap()),
            Entry::Muted { depth, count } => format!("{depth} ({count} muted)"),
            Entry::Missing { depth, .. } => format!("{depth} missing"),
        })
        .collect();
    assert_eq!(lines, ["0 root", "1 (2 muted)", "1 (1 muted)", "1 kept"]);
    assert_eq!(t.muted, 3);
    assert!(!t.muted_thread);
    assert_eq!(entry_of(&t, &kept).text.as_deref(), Some("kept"));
    // The root still counts every reply: they are there, collapsed.
    assert_eq!(entry_of(&t, &root).replies, 4);

    // A muted thread opened directly shows, with a note.
    mute(&w, Mute::Thread(root));
    let t = w.thread(&root);
    assert!(t.muted_thread);
    assert_eq!(t.entries.len(), 4);
}

#[test]
fn a_reply_listed_counts_the_replies_its_thread_shows_under_it() {
    let mut w = World::new(1);
    let (b, c) = (key(2), key(3));
    w.mine(follow(&b.id()));
    let root = w.got(&c, T0, post("root"));
    let mid = w.got(&b, T0 + 1.0, reply(&root, &root, "mid"));
    let under = w.got(&c, T0 + 2.0, reply(&root, &mid, "under mid"));
    w.got(&c, T0 + 3.0, reply(&root, &under, "deeper"));
    w.got(&c, T0 + 4.0, reply(&root, &root, "beside"));
    let listed = w.timeline(10);
    let item = listed.iter().find(|i| i.key == mid.to_string()).unwrap();
    // Opening it shows its root's thread, with two replies under it.
    let t = w.thread(&mid);
    assert_eq!(t.root, root.to_string());
    assert_eq!(entry_of(&t, &mid).replies, 2);
    assert_eq!(item.replies, 2);
}

/// `{type: post, text, revisionRoot, revisionBranch}` (with `extra` fields).
fn revision(root: &MsgId, branch: &[MsgId], text: &str, extra: &str) -> Value {
    let branch = match branch {
        [one] => format!("\"{one}\""),
        many => format!(
            "[{}]",
            many.iter()
                .map(|b| format!("\"{b}\""))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    c(&format!(
        r#"{{"type":"post","text":"{text}"{extra},"revisionRoot":"{root}","revisionBranch":{branch}}}"#
    ))
}

#[test]
fn the_latest_revision_by_the_author_shows_edited_and_others_are_ignored() {
    let mut w = World::new(1);
    let (b, c) = (key(2), key(3));
    w.mine(follow(&b.id()));
    w.mine(follow(&c.id()));
    let root = w.got(&b, T0, post("root"));
    let orig = w.got(&b, T0 + 1.0, reply(&root, &root, "tpyo"));
    let r1 = w.got(
        &b,
        T0 + 2.0,
        revision(
            &orig,
            &[orig],
            "typo",
            &format!(r#","root":"{root}","branch":"{root}""#),
        ),
    );
    // Someone else's revision: ignored whatever it claims.
    w.got(&c, T0 + 9.0, revision(&orig, &[r1], "hijacked", ""));
    let r2 = w.got(&b, T0 + 3.0, revision(&orig, &[r1], "typo fixed", ""));

    let item = w.item(&orig);
    assert_eq!(item.text.as_deref(), Some("typo fixed"));
    assert!(item.edited);
    assert_eq!(item.revisions, 2);
    // Revisions are no posts of their own: not in the timeline, not
    // replies in the thread.
    let tl = w.timeline(10);
    assert_eq!(texts(&tl), ["typo fixed", "root"]);
    let t = w.thread(&root);
    assert_eq!(t.entries.len(), 2);
    assert_eq!(entry_of(&t, &orig).text.as_deref(), Some("typo fixed"));
    assert_eq!(entry_of(&t, &root).replies, 1);
    // The history: original, then the author's revisions in order.
    let h = w.view(|v| v.history(&r2).unwrap().unwrap());
    assert_eq!(h.root, orig.to_string());
    assert_eq!(texts(&h.versions), ["tpyo", "typo", "typo fixed"]);
    assert_eq!(h.ignored, 1);
    assert_eq!(
        h.versions[2].revises.as_deref(),
        Some(orig.to_string().as_str())
    );
    // Hostile revisions of an unedited post change nothing.
    let plain = w.got(&b, T0 + 4.0, post("untouched"));
    w.got(&c, T0 + 10.0, revision(&plain, &[plain], "mine now", ""));
    let item = w.item(&plain);
    assert_eq!(
        (item.text.as_deref(), item.edited),
        (Some("untouched"), false)
    );
}

#[test]
fn concurrent_revisions_resolve_to_the_head_claiming_the_latest_time() {
    let mut w = World::new(1);
    let b = key(2);
    let orig = w.got(&b, T0, post("v0"));
    let r1 = w.got(&b, T0 + 5.0, revision(&orig, &[orig], "late head", ""));
    // Same branch as r1 (a fork), claiming an earlier time: r1 stays.
    let r2 = w.got(&b, T0 + 3.0, revision(&orig, &[orig], "early head", ""));
    assert_eq!(w.item(&orig).text.as_deref(), Some("late head"));
    // A merge of both heads wins.
    w.got(&b, T0 + 6.0, revision(&orig, &[r1, r2], "merged", ""));
    assert_eq!(w.item(&orig).text.as_deref(), Some("merged"));
    assert_eq!(w.item(&orig).revisions, 3);
}

#[test]
fn edits_are_written_as_ssb_revisions_does_and_refused_for_others_posts() {
    let mut w = World::new(1);
    let me = w.id();
    let b = key(2);
    let root = w.got(&b, T0, post("theirs"));
    let mine = w.mine(reply(&root, &root, "first"));
    let r = w.store.reader().unwrap();
    let e1 = compose::edit(&r, &me, &mine, "second").unwrap();
    drop(r);
    assert_eq!(
        String::from_utf8(json::to_compact(&e1)).unwrap(),
        format!(
            r#"{{"type":"post","text":"second","root":"{root}","branch":"{root}","revisionRoot":"{mine}","revisionBranch":"{mine}"}}"#
        )
    );
    let r1 = w.mine(e1);
    let r = w.store.reader().unwrap();
    // A later edit branches from the latest revision (given the original
    // or a revision).
    let e2 = compose::edit(&r, &me, &r1, "third").unwrap();
    assert_eq!(
        e2.get("revisionRoot").and_then(Value::as_str),
        Some(mine.to_string().as_str())
    );
    assert_eq!(
        e2.get("revisionBranch").and_then(Value::as_str),
        Some(r1.to_string().as_str())
    );
    // Refused: someone else's post, one we do not hold, no text, no post.
    assert!(matches!(
        compose::edit(&r, &me, &root, "x"),
        Err(compose::ComposeError::NotOurs(_))
    ));
    assert!(matches!(
        compose::edit(&r, &me, &absent(9), "x"),
        Err(compose::ComposeError::NotFound(_))
    ));
    assert!(matches!(
        compose::edit(&r, &me, &mine, "  "),
        Err(compose::ComposeError::EmptyText)
    ));
    drop(r);
    let like = w.mine(vote(&root.to_string(), 1));
    let r = w.store.reader().unwrap();
    assert!(matches!(
        compose::edit(&r, &me, &like, "x"),
        Err(compose::ComposeError::NotAPost(_))
    ));
}

#[test]
fn a_private_post_gets_a_private_revision_shown_in_the_inbox() {
    let w = World::new(1);
    let me = w.id();
    let b = key(2);
    let dm = w.mine(compose::dm(&me, &[b.id()], "hello tehre").unwrap());
    let r = w.store.reader().unwrap();
    let e = compose::edit(&r, &me, &dm, "hello there").unwrap();
    drop(r);
    assert!(
        e.as_str().unwrap().ends_with(".box"),
        "private stays private"
    );
    let rev = w.mine(e);
    let r = w.store.reader().unwrap();
    let opened = r.private_content(&rev).unwrap().unwrap();
    let mut recps = content::recps(&opened);
    recps.sort();
    let mut want = vec![me, b.id()];
    want.sort();
    assert_eq!(recps, want);
    drop(r);
    let inbox = w.inbox();
    assert_eq!(texts(&inbox), ["hello there"]);
    assert!(inbox[0].edited && inbox[0].private);
}

#[test]
fn the_upgrade_from_version_6_moves_revisions_out_of_the_posts() {
    use crate::store::schema::*;
    let mut w = World::new(1);
    let b = key(2);
    w.mine(follow(&b.id()));
    let root = w.got(&b, T0, post("root"));
    let orig = w.got(&b, T0 + 1.0, reply(&root, &root, "old"));
    let rev = w.got(
        &b,
        T0 + 2.0,
        revision(
            &orig,
            &[orig],
            "new",
            &format!(r#","root":"{root}","branch":"{orig}""#),
        ),
    );
    let rx = w.store.reader().unwrap().rx_of(&rev).unwrap().unwrap();
    let received = w.store.get(&rev).unwrap().unwrap().received;
    let path = w.path.clone();
    drop(w.store);
    {
        // As version 6 left it: the revision indexed as a reply.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 6)
            .unwrap();
        txn.delete_table(REVISIONS).unwrap();
        let time = crate::store::sort_time(Some(T0 + 2.0), received);
        txn.open_table(POSTS)
            .unwrap()
            .insert(&post_key(&b.id().0, time, rx), 1)
            .unwrap();
        let mut links = txn.open_table(LINKS).unwrap();
        let mut v = [0u8; 33];
        v[..32].copy_from_slice(&b.id().0);
        for (target, kind) in [(root, LINK_ROOT), (orig, LINK_BRANCH)] {
            links
                .insert(&link_key(&target_key(&Link::Msg(target)), kind, rx), &v)
                .unwrap();
        }
        drop(links);
        txn.commit().unwrap();
    }
    {
        let store = Store::open_as(&path, &w.me).unwrap();
        let r = store.reader().unwrap();
        let mut v = View::new(&r).unwrap();
        assert_eq!(texts(&v.timeline(None, 10).unwrap()), ["new", "root"]);
        let t = v.thread(&root).unwrap();
        assert_eq!(t.entries.len(), 2);
        assert!(entry_of(&t, &orig).edited);
        assert_eq!(r.backlink_count(&Link::Msg(orig), LINK_BRANCH).unwrap(), 0);
    }
    assert_eq!(schema_version(&path), crate::store::schema::SCHEMA_VERSION);
}

/// Revisions are indexed by author: a flood of revisions by another feed
/// neither hides the author's own nor costs reading them.
#[test]
fn a_flood_of_others_revisions_does_not_hide_the_authors() {
    let mut w = World::new(1);
    let (b, c) = (key(2), key(3));
    let orig = w.got(&b, T0, post("v0"));
    let flood: Vec<_> = (0..crate::store::MAX_REVISIONS + 5)
        .map(|i| {
            w.msg(
                &c,
                T0 + 1.0,
                revision(&orig, &[orig], &format!("spam {i}"), ""),
            )
        })
        .collect();
    w.store.ingest(flood).unwrap();
    w.got(&b, T0 + 2.0, revision(&orig, &[orig], "v1", ""));
    let item = w.item(&orig);
    assert_eq!((item.text.as_deref(), item.revisions), (Some("v1"), 1));
    let h = w.view(|v| v.history(&orig).unwrap().unwrap());
    assert_eq!(texts(&h.versions), ["v0", "v1"]);
    assert_eq!(h.ignored, crate::store::MAX_REVISIONS);
}
