//! Both backends on a real home with fixture data: the embedded node reads
//! the store and publishes through `Node::publish`; while it runs, its
//! control socket answers, and an attached client gets the same pages,
//! threads, profiles and posts, and publishes through it.

use std::sync::Arc;

use shoal_tui::backend::{Attached, Backend, Embedded};
use shoal_tui::model::{EntryView as _, PostView as _};
use shoal_tui::model::{Post, Publish, ThreadEntry};

use crate::home::{fixture_home, group_home};

/// Runs a (blocking) backend call off the async threads.
async fn call<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("backend call")
}

fn keys(posts: &[Post]) -> Vec<String> {
    posts.iter().map(|p| p.key.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_and_attached_agree_and_both_publish() {
    let fx = fixture_home();
    let emb = Arc::new(Embedded::start(&fx.home).await.expect("embedded node"));
    assert_eq!(emb.me(), fx.me.to_string());
    let home = fx.home.clone();
    let att = Arc::new(
        call(move || Attached::probe(&home))
            .await
            .expect("probe")
            .expect("the embedded node answers on the control socket"),
    );
    assert_eq!(att.me(), emb.me());

    // Unread marks: followed feeds' posts start unread; the embedded node
    // marks what it is told (an attached client's pages are marked read by
    // the node that answers them).
    let e = emb.clone();
    let (before, after) = call(move || {
        let before = e.status().unwrap().unread;
        let rx = e.timeline(None, 1).unwrap()[0].rx;
        e.mark_read(&[rx]).unwrap();
        (before, e.status().unwrap().unread)
    })
    .await;
    assert_eq!((before, after), (4, 3));

    // Timeline pages, newest first, with names and counts.
    let (e, a) = (emb.clone(), att.clone());
    let (et, at) = call(move || {
        (
            e.timeline(None, 10).expect("embedded timeline"),
            a.timeline(None, 10).expect("attached timeline"),
        )
    })
    .await;
    assert_eq!(keys(&et), keys(&at));
    let texts: Vec<&str> = et.iter().filter_map(|p| p.text.as_deref()).collect();
    assert_eq!(
        texts,
        [
            "Bob's own post",
            "A second post from Alice",
            "Replying to Alice: welcome!",
            "Hello from Alice, the first post"
        ]
    );
    assert_eq!(et[1].name.as_deref(), Some("Alice"));
    assert_eq!(et[3].replies, 1);
    assert_eq!(at[3].replies, 1);
    assert_eq!(
        et.iter().map(|p| p.unread).collect::<Vec<_>>(),
        [false, true, true, true]
    );

    // The cursor pages on from the last post of a page.
    let (e, a) = (emb.clone(), att.clone());
    let (first, second, asecond) = call(move || {
        let first = e.timeline(None, 2).unwrap();
        let c = first.last().unwrap().cursor();
        (
            first,
            e.timeline(Some(c), 2).unwrap(),
            a.timeline(Some(c), 2).unwrap(),
        )
    })
    .await;
    assert_eq!([keys(&first), keys(&second)].concat(), keys(&et));
    assert_eq!(keys(&second), keys(&asecond));

    // A thread: the root, then the reply.
    let (e, a, root) = (emb.clone(), att.clone(), fx.root.clone());
    let (eth, ath) = call(move || (e.thread(&root).unwrap(), a.thread(&root).unwrap())).await;
    assert_eq!(eth, ath);
    let depths: Vec<usize> = eth.entries.iter().map(ThreadEntry::depth).collect();
    assert_eq!(depths, [0, 1]);
    assert_eq!(
        eth.entries[1].post().and_then(|p| p.text.as_deref()),
        Some("Replying to Alice: welcome!")
    );

    // Our profile: whom we follow.
    let (e, a, me) = (emb.clone(), att.clone(), fx.me.to_string());
    let (ep, ap) = call(move || (e.profile(&me).unwrap(), a.profile(&me).unwrap())).await;
    assert_eq!(ep, ap);
    let mut follows: Vec<String> = ep.contacts.follows.iter().map(|p| p.id.clone()).collect();
    follows.sort();
    let mut want = vec![fx.alice.to_string(), fx.bob.to_string()];
    want.sort();
    assert_eq!(follows, want);

    // How a feed replicates, the same through either.
    let (e, a, alice) = (emb.clone(), att.clone(), fx.alice.to_string());
    let (ew, aw) = call(move || (e.why(&alice).unwrap(), a.why(&alice).unwrap())).await;
    assert_eq!(ew, aw);
    assert!(ew.wanted && ew.running, "{ew:?}");
    assert_eq!(ew.path.len(), 2, "we follow alice: {ew:?}");
    assert_eq!(
        shoal_tui::screens::contacts::replication(&ew),
        format!("replicated, {} held", ew.held)
    );

    // One person's posts, newest first (attached: read from their log).
    let (e, a, alice) = (emb.clone(), att.clone(), fx.alice.to_string());
    let (eposts, aposts) = call(move || {
        (
            e.posts_by(&alice, None, 10).unwrap(),
            a.posts_by(&alice, None, 10).unwrap(),
        )
    })
    .await;
    assert_eq!(keys(&eposts), keys(&aposts));
    assert_eq!(eposts.len(), 2);
    assert_eq!(aposts[0].name.as_deref(), Some("Alice"));

    // Raw JSON of a message.
    let (e, a, root) = (emb.clone(), att.clone(), fx.root.clone());
    let (er, ar) = call(move || (e.raw(&root).unwrap(), a.raw(&root).unwrap())).await;
    assert_eq!(er, ar);
    assert!(
        er.contains("\"value\"") && er.contains("Hello from Alice"),
        "{er}"
    );

    // Both are pushed the node's events: the attached client through its
    // subscription on the control socket, no polling.
    let mut e_events = emb.events();
    let mut a_events = att.events();

    // Publishing through either.
    let (e, a, bob) = (emb.clone(), att.clone(), fx.bob.to_string());
    let root = fx.root.clone();
    let (k1, k2, k3) = call(move || {
        let k1 = a
            .publish(&Publish::Post {
                text: "through the socket".into(),
                attach: Vec::new(),
            })
            .expect("attached publish");
        let k2 = e
            .publish(&Publish::Reply {
                to: root,
                text: "through the node".into(),
            })
            .expect("embedded publish");
        let k3 = e
            .publish(&Publish::Dm {
                to: vec![bob],
                text: "just for Bob".into(),
            })
            .expect("dm");
        (k1, k2, k3)
    })
    .await;
    let (e, a) = (emb.clone(), att.clone());
    let (top, inbox, status) = call(move || {
        (
            e.timeline(None, 2).unwrap(),
            a.inbox(None, 10).unwrap(),
            e.status().unwrap(),
        )
    })
    .await;
    assert_eq!(keys(&top), [k2, k1]);
    assert_eq!(keys(&inbox), [k3]);
    assert!(inbox[0].private && inbox[0].text.as_deref() == Some("just for Bob"));
    assert_eq!(status.messages, 12);
    for events in [&mut e_events, &mut a_events] {
        let mut appended = Vec::new();
        while appended.len() < 3 {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(20), events.recv())
                .await
                .expect("an event within 20 s")
                .expect("the event stream is open");
            if let shoal::api::Event::Appended { author, seq } = ev {
                appended.push((author, seq));
            }
        }
        assert!(appended.iter().all(|(a, _)| *a == fx.me), "{appended:?}");
        let first = appended[0].1;
        assert_eq!(
            appended.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            [first, first + 1, first + 2],
            "each publish is pushed once, in order"
        );
    }

    // Bad ids are errors, not panics.
    let a = att.clone();
    let e = emb.clone();
    call(move || {
        assert!(e.thread("%nope").is_err());
        assert!(a.thread("%nope").is_err());
        assert!(e.profile("@nope").is_err());
        assert!(e.raw(&format!("%{}=.sha256", "A".repeat(43))).is_err());
    })
    .await;

    emb.stop().await;
    // Stopped: the control socket is gone.
    let home = fx.home.clone();
    assert!(
        call(move || Attached::probe(&home))
            .await
            .unwrap()
            .is_none()
    );
}

/// A home whose listen address is taken still runs (reads, publishes),
/// and says why it does not listen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_listen_address_is_a_warning_not_a_failure() {
    let fx = fixture_home();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("address");
    std::fs::write(
        fx.home.join("config.toml"),
        format!("listen = \"{addr}\"\n"),
    )
    .expect("config");
    let emb = Arc::new(Embedded::start(&fx.home).await.expect("runs anyway"));
    let warning = emb.warning().expect("a warning");
    assert!(
        warning.contains(&format!("cannot listen on {addr}")),
        "{warning}"
    );
    let e = emb.clone();
    let posts = call(move || e.timeline(None, 10).expect("reads")).await;
    assert_eq!(posts.len(), 4);
    emb.stop().await;
}

/// Both backends list the fixture group and its posts, and post to it,
/// add and remove a member (a rekey), and make a new group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_list_and_post_to_groups() {
    let (fx, group) = group_home();
    let emb = Arc::new(Embedded::start(&fx.home).await.expect("embedded node"));
    let home = fx.home.clone();
    let att = Arc::new(
        call(move || Attached::probe(&home))
            .await
            .expect("probe")
            .expect("attached"),
    );
    let (e, a, g) = (emb.clone(), att.clone(), group.clone());
    let (eg, ag, eposts, aposts) = call(move || {
        (
            e.groups().expect("embedded groups"),
            a.groups().expect("attached groups"),
            e.group_posts(&g, None, 10).expect("embedded group posts"),
            a.group_posts(&g, None, 10).expect("attached group posts"),
        )
    })
    .await;
    assert_eq!(eg, ag);
    assert_eq!(eg.len(), 1);
    assert_eq!(eg[0].id, group);
    assert_eq!(eg[0].name.as_deref(), Some("harbour crew"));
    assert!(eg[0].member && eg[0].can_post);
    let mut members = eg[0].members.clone();
    members.sort();
    let mut want = vec![fx.me.to_string(), fx.alice.to_string()];
    want.sort();
    assert_eq!(members, want);
    assert_eq!(keys(&eposts), keys(&aposts));
    let texts: Vec<&str> = eposts.iter().filter_map(|p| p.text.as_deref()).collect();
    assert_eq!(texts, ["Welcome aboard, Alice"]);
    assert!(eposts[0].private);
    // The group's name was posted inside it, first.
    assert_eq!(eposts.len(), 2);
    assert_eq!(eposts[1].body(), "named the group “harbour crew”");

    // Posting through either, then paging by cursor.
    let (e, a, g) = (emb.clone(), att.clone(), group.clone());
    let (k1, k2) = call(move || {
        let k1 = e
            .publish(&Publish::GroupPost {
                group: g.clone(),
                text: "through the node".into(),
            })
            .expect("embedded group post");
        let k2 = a
            .publish(&Publish::GroupPost {
                group: g,
                text: "through the socket".into(),
            })
            .expect("attached group post");
        (k1, k2)
    })
    .await;
    let (e, a, g) = (emb.clone(), att.clone(), group.clone());
    let (top, older) = call(move || {
        let top = a.group_posts(&g, None, 2).unwrap();
        let c = top.last().unwrap().cursor();
        (top, e.group_posts(&g, Some(c), 2).unwrap())
    })
    .await;
    assert_eq!(keys(&top), [k2, k1]);
    assert_eq!(
        older
            .iter()
            .filter_map(|p| p.text.as_deref())
            .collect::<Vec<_>>(),
        ["Welcome aboard, Alice"]
    );

    // Add Bob through the socket, remove Alice through the node (a
    // rekey: a second epoch that removed her).
    let (e, a, g) = (emb.clone(), att.clone(), group.clone());
    let (bob, alice) = (fx.bob.to_string(), fx.alice.to_string());
    let info = call(move || {
        a.publish(&Publish::GroupAdd {
            group: g.clone(),
            id: bob,
        })
        .expect("add");
        e.publish(&Publish::GroupRemove {
            group: g.clone(),
            id: alice.clone(),
        })
        .expect("remove");
        e.groups().unwrap()
    })
    .await;
    assert_eq!(info[0].members.len(), 2);
    assert!(!info[0].members.contains(&fx.alice.to_string()));
    assert!(
        info[0]
            .epochs
            .iter()
            .any(|ep| ep.removed == [fx.alice.to_string()]),
        "{:?}",
        info[0].epochs
    );

    // A new group, named; errors are errors, not panics.
    let (e, a) = (emb.clone(), att.clone());
    let (made, listed, bad) = call(move || {
        let made = a
            .publish(&Publish::GroupCreate {
                name: "deck hands".into(),
            })
            .expect("create");
        let bad = e.publish(&Publish::GroupPost {
            group: "%nope".into(),
            text: "x".into(),
        });
        (made, e.groups().unwrap(), bad)
    })
    .await;
    assert!(
        listed
            .iter()
            .any(|g| g.id == made && g.name.as_deref() == Some("deck hands")),
        "{listed:?}"
    );
    assert!(bad.is_err());

    emb.stop().await;
}
