//! Storage under retention rules: a store of 1,000 feeds (posts, votes
//! and names spread over the past year; we follow 100 of them) pruned to
//! "hop 1 forever, others 30 days", then compacted.
//!
//! Prints: the store's size and bytes per message before; the plan and
//! the prune (messages, time); the file after pruning and after
//! `compact` (and how long compaction took); bytes per message after;
//! how long `storage` takes to report. Each step is what `shoal prune`
//! and `shoal compact` run (`Store::apply_retention`, `Store::compact`).
//!
//! Run: `cargo bench --bench retention` (env `SHOAL_BENCH_RET_FEEDS`,
//! `SHOAL_BENCH_RET_PER_FEED` change the store's size).

use std::time::{Duration, Instant};

use rayon::prelude::*;
use shoal::crypto::Keypair;
use shoal::feed::{Value, VerifiedMsg};
use shoal::store::{Retention, Store};

mod common;

use common::{author_key, env_num, obj, sign_feed, text_for};

const DAY: f64 = 86_400_000.0;

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn main() {
    let feeds = env_num("SHOAL_BENCH_RET_FEEDS", 1000);
    let per = env_num("SHOAL_BENCH_RET_PER_FEED", 1000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let me = Keypair::from_seed(&[0x42; 32]);
    let store = Store::open_as(&path, &me).unwrap();
    let now = shoal::store::now_ms();
    let t = Instant::now();
    // Message s of a feed claims a time spread over the past year.
    let span = 365.0 * DAY;
    for start in (0..feeds).step_by(50) {
        let msgs: Vec<Vec<VerifiedMsg>> = (start..(start + 50).min(feeds))
            .into_par_iter()
            .map(|a| {
                let kp = author_key(a);
                let id = kp.id().to_string();
                sign_feed(
                    &kp,
                    per,
                    |s| now - span + span * s as f64 / per as f64 + a as f64,
                    |s, st| match s {
                        0 => obj(vec![
                            ("type", "about".into()),
                            ("about", id.clone().into()),
                            ("name", format!("person{a}").into()),
                        ]),
                        _ if s % 10 == 7 => obj(vec![
                            ("type", "vote".into()),
                            (
                                "vote",
                                obj(vec![
                                    ("link", st.expect("after one").id.to_string().into()),
                                    ("value", Value::Number(1.0)),
                                    ("expression", "Like".into()),
                                ]),
                            ),
                        ]),
                        _ => obj(vec![
                            ("type", "post".into()),
                            ("text", text_for(a * per + s).into()),
                        ]),
                    },
                )
            })
            .collect();
        let all: Vec<VerifiedMsg> = msgs.into_iter().flatten().collect();
        for batch in all.chunks(4096) {
            store.ingest(batch.to_vec()).unwrap();
        }
        eprint!(
            "\rbuilt {} of {feeds} feeds ({:.0} s)",
            (start + 50).min(feeds),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    for a in (0..feeds).step_by(10) {
        let c = obj(vec![
            ("type", "contact".into()),
            ("contact", author_key(a).id().to_string().into()),
            ("following", Value::Bool(true)),
        ]);
        store.append_local(&me, c, None).unwrap();
    }
    let messages = store.stats().unwrap().messages;
    // Compacted first, so that "before" is a store as tight as redb makes it.
    store.compact(Duration::from_secs(60)).unwrap();
    let before = file_len(&path);
    let t = Instant::now();
    let report = store.storage(&me.id(), 10).unwrap();
    let storage_ms = t.elapsed().as_secs_f64() * 1000.0;

    let rules = Retention {
        keep_hops: 1,
        max_age_ms: Some((30.0 * DAY) as u64),
        max_feed_bytes: None,
    };
    let t = Instant::now();
    let (plan, _) = store.apply_retention(&me.id(), &rules, true).unwrap();
    let plan_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (_, done) = store.apply_retention(&me.id(), &rules, false).unwrap();
    let prune_s = t.elapsed().as_secs_f64();
    let done = done.unwrap();
    let pruned_file = file_len(&path);
    let left = store.stats().unwrap().messages;
    let t = Instant::now();
    store.compact(Duration::from_secs(60)).unwrap();
    let compact_s = t.elapsed().as_secs_f64();
    let after = file_len(&path);

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| store | {messages} messages of {} feeds, {:.0} MB ({:.0} bytes a message; messages {:.0} MB, indexes {:.0} MB) |",
        feeds + 1,
        mb(before),
        before as f64 / messages as f64,
        mb(report.message_bytes),
        mb(report.index_bytes)
    );
    println!("| `storage` report | {storage_ms:.0} ms |");
    println!(
        "| `prune --dry-run` (hop 1 kept, others 30 days) | {} messages of {} feeds, planned in {plan_s:.2} s |",
        plan.messages,
        plan.feeds.len()
    );
    println!(
        "| `prune` | {} messages deleted in {prune_s:.2} s ({:.0} msg/s); {left} left |",
        done.messages,
        done.messages as f64 / prune_s
    );
    println!(
        "| file after pruning | {:.0} MB (pages freed, not yet given back) |",
        mb(pruned_file)
    );
    println!(
        "| `compact` | {compact_s:.2} s on {:.0} MB: {:.0} MB -> {:.0} MB |",
        mb(pruned_file),
        mb(pruned_file),
        mb(after)
    );
    println!(
        "| bytes per message held | {:.0} before, {:.0} after; the store {:.1}x smaller |",
        before as f64 / messages as f64,
        after as f64 / left as f64,
        before as f64 / after as f64
    );
}
