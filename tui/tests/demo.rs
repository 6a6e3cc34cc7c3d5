//! `--demo` works for real: the demo peers' posts, names and a private
//! message reach a node opened on the demo home within seconds, over
//! loopback connections, and a post of ours gets an answer; the demo group
//! reaches it with posts, and after Ada removes 美咲 it has one member
//! fewer and an epoch that removed her.

use std::time::{Duration, Instant};

use shoal_tui::backend::{Backend, Embedded};
use shoal_tui::demo;
use shoal_tui::model::Publish;

/// How long the demo may take to show each thing.
const SECS: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_peers_reach_a_new_home_and_answer() {
    let d = demo::start().await.expect("demo starts");
    assert_eq!(d.peers.len(), 3);
    let node = std::sync::Arc::new(
        Embedded::start(d.home())
            .await
            .expect("node on the demo home"),
    );
    let names: Vec<&str> = d.peers.iter().map(|p| p.name).collect();

    let wait = |what: &'static str, check: Box<dyn Fn(&Embedded) -> bool + Send + Sync>| {
        let node = node.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(SECS);
            loop {
                let n = node.clone();
                let ok = {
                    let check = &check;
                    tokio::task::block_in_place(|| check(&n))
                };
                if ok {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out after {SECS} s waiting for {what}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    // Every peer's first post, under its name.
    let want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    wait(
        "a post from every demo peer",
        Box::new(move |n| {
            let posts = n.timeline(None, 50).unwrap_or_default();
            want.iter()
                .all(|name| posts.iter().any(|p| p.name.as_deref() == Some(name)))
        }),
    )
    .await;
    // A private message for us.
    wait(
        "a private message",
        Box::new(|n| {
            n.inbox(None, 10)
                .unwrap_or_default()
                .iter()
                .any(|p| p.private && p.author != n.me())
        }),
    )
    .await;
    // We are followed back and shown as connected.
    wait(
        "peers connected",
        Box::new(|n| n.status().is_ok_and(|s| s.peers >= 1)),
    )
    .await;

    // A post of ours gets a reply.
    let n = node.clone();
    let key = tokio::task::spawn_blocking(move || {
        n.publish(&Publish::Post {
            text: "hello, demo".into(),
            attach: Vec::new(),
        })
    })
    .await
    .unwrap()
    .expect("publish");
    wait(
        "a reply to our post",
        Box::new(move |n| n.thread(&key).is_ok_and(|t| t.entries.len() >= 2)),
    )
    .await;

    // The demo group, with posts we can read.
    wait(
        "the demo group with posts",
        Box::new(|n| {
            let Some(g) = n
                .groups()
                .unwrap_or_default()
                .into_iter()
                .find(|g| g.name.as_deref() == Some(demo::GROUP_NAME))
            else {
                return false;
            };
            let posts = n.group_posts(&g.id, None, 20).unwrap_or_default();
            g.member && posts.iter().filter(|p| p.text.is_some()).count() >= 2
        }),
    )
    .await;
    // After the removal: three members left, and an epoch that removed
    // one; posts from before and after it.
    wait(
        "the removal from the demo group",
        Box::new(|n| {
            n.groups().unwrap_or_default().into_iter().any(|g| {
                g.name.as_deref() == Some(demo::GROUP_NAME)
                    && g.members.len() == 3
                    && g.epochs.iter().any(|e| e.removed.len() == 1)
                    && n.group_posts(&g.id, None, 50)
                        .unwrap_or_default()
                        .iter()
                        .any(|p| p.text.as_deref().is_some_and(|t| t.contains("New key")))
            })
        }),
    )
    .await;

    node.stop().await;
    d.stop().await;
}
