//! Social-layer benchmarks:
//!
//! 1. Read models on a store of 1,000,000 messages (1,000 feeds of 1,000;
//!    posts, replies, votes, names; we follow 200 feeds): a timeline page
//!    of 50 (first page and a page 20 pages deep), and a thread of 1,000
//!    replies of which 100 are forked (each the root of a reply of its
//!    own: the thread counts each one's own thread), and one fork opened.
//!    Each query opens its own read snapshot, as the CLI and the
//!    terminal client do. Median and worst of many runs.
//! 2. `shoal import` of 100,000 messages of which 20% are private boxes
//!    not meant for us (1 to 7 recipient slots each), beside the same
//!    import with no boxes, in one run.
//!
//! 3. Full-text search on the store of 1.: indexing it whole (time,
//!    index bytes per message), then a one-word and a three-word query
//!    (top 20, read back from the store with snippets), median and worst
//!    of many runs; and the import of 2. (no boxes) with `[search]
//!    enabled` off and on (on: the command indexes what it imported
//!    before it ends), same dump, same run.
//!
//! Run: `cargo bench --bench social` (env `SHOAL_BENCH_SOCIAL_FEEDS`,
//! `SHOAL_BENCH_SOCIAL_PER_FEED` to change the store size,
//! `SHOAL_BENCH_SOCIAL_FORKS` the forked replies). Prints one
//! table; the README quotes it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use shoal::crypto::{FeedId, Keypair, MsgId};
use shoal::feed::{self, Value, VerifiedMsg};
use shoal::social::View;
use shoal::store::Store;

mod common;

use common::{author_key, env_num, obj, sign_feed, text_for, write_interleaved};

fn post(text: String) -> Value {
    obj(vec![("type", "post".into()), ("text", text.into())])
}

fn median_and_max(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    (
        d[d.len() / 2].as_secs_f64() * 1000.0,
        d[d.len() - 1].as_secs_f64() * 1000.0,
    )
}

/// Builds the big store; returns (store, thread root, a forked reply,
/// messages stored). The first `forks` feeds fork their reply: their next
/// message names it as its root.
fn build_store(
    path: &Path,
    me: &Keypair,
    feeds: usize,
    per: usize,
    forks: usize,
) -> (Store, MsgId, Option<MsgId>, u64) {
    let store = Store::open_as(path, me).unwrap();
    let t = Instant::now();
    // The thread root: the only message of a feed of its own.
    let root_msg = sign_feed(
        &author_key(99_999),
        1,
        |_| 1_600_000_000_000.0,
        |_, _| post("The thread everyone answers".into()),
    );
    let root = root_msg[0].id();
    store.ingest(root_msg).unwrap();
    let mut stored = 1u64;
    // Feeds in chunks, signed on every core, ingested in batches.
    let chunk = 50;
    for start in (0..feeds).step_by(chunk) {
        let msgs: Vec<Vec<VerifiedMsg>> = (start..(start + chunk).min(feeds))
            .into_par_iter()
            .map(|a| {
                let kp = author_key(a);
                let id = kp.id().to_string();
                // Authors interleave in time as a real log would.
                let t0 = 1_600_000_000_000.0 + a as f64;
                sign_feed(
                    &kp,
                    per,
                    |s| t0 + (s * feeds) as f64,
                    |s, st| {
                        let i = a * per + s;
                        match s {
                            0 => obj(vec![
                                ("type", "about".into()),
                                ("about", id.clone().into()),
                                ("name", format!("person{a}").into()),
                            ]),
                            2 => obj(vec![
                                ("type", "post".into()),
                                ("text", text_for(i).into()),
                                ("root", root.to_string().into()),
                                ("branch", root.to_string().into()),
                            ]),
                            3 if a < forks => {
                                let reply = st.expect("after the reply").id.to_string();
                                obj(vec![
                                    ("type", "post".into()),
                                    ("text", text_for(i).into()),
                                    ("root", reply.clone().into()),
                                    ("branch", reply.into()),
                                ])
                            }
                            _ if s % 10 == 7 => obj(vec![
                                ("type", "vote".into()),
                                (
                                    "vote",
                                    obj(vec![
                                        ("link", root.to_string().into()),
                                        ("value", Value::Number(1.0)),
                                        ("expression", "Like".into()),
                                    ]),
                                ),
                            ]),
                            _ => post(text_for(i)),
                        }
                    },
                )
            })
            .collect();
        let all: Vec<VerifiedMsg> = msgs.into_iter().flatten().collect();
        for batch in all.chunks(4096) {
            stored += store.ingest(batch.to_vec()).unwrap().len() as u64;
        }
        eprint!(
            "\rbuilt {} of {feeds} feeds ({:.0} s)",
            (start + chunk).min(feeds),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    // We follow every fifth feed and post a little ourselves.
    for a in (0..feeds).step_by(5) {
        let c = obj(vec![
            ("type", "contact".into()),
            ("contact", author_key(a).id().to_string().into()),
            ("following", Value::Bool(true)),
        ]);
        store.append_local(me, c, None).unwrap();
        stored += 1;
    }
    for i in 0..50 {
        store.append_local(me, post(text_for(i)), None).unwrap();
        stored += 1;
    }
    // A forked reply: the reply of the first feed.
    let fork = (forks > 0 && per > 3)
        .then(|| store.feed(&author_key(0).id(), 2, 1).unwrap())
        .and_then(|m| m.first().map(|m| m.key));
    (store, root, fork, stored)
}

fn queries(store: &Store, root: &MsgId, fork: Option<&MsgId>) -> Vec<(String, f64, f64, usize)> {
    let mut rows = Vec::new();
    // Warm the page cache the way a running client would be.
    for _ in 0..3 {
        let r = store.reader().unwrap();
        let mut v = View::new(&r).unwrap();
        v.timeline(None, 50).unwrap();
        v.thread(root).unwrap();
    }
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..200 {
        let t = Instant::now();
        let r = store.reader().unwrap();
        let mut v = View::new(&r).unwrap();
        n = v.timeline(None, 50).unwrap().len();
        times.push(t.elapsed());
    }
    let (med, max) = median_and_max(times);
    rows.push(("timeline, first page of 50".to_string(), med, max, n));

    // The cursor of page 20.
    let cursor = {
        let r = store.reader().unwrap();
        let mut v = View::new(&r).unwrap();
        let mut cursor = None;
        for _ in 0..20 {
            let page = v.timeline(cursor, 50).unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some((last.time, last.rx));
        }
        cursor
    };
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = store.reader().unwrap();
        let mut v = View::new(&r).unwrap();
        n = v.timeline(cursor, 50).unwrap().len();
        times.push(t.elapsed());
    }
    let (med, max) = median_and_max(times);
    rows.push(("timeline, page 21 of 50".to_string(), med, max, n));

    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let r = store.reader().unwrap();
        let mut v = View::new(&r).unwrap();
        let th = v.thread(root).unwrap();
        n = th.entries.len() - 1;
        times.push(t.elapsed());
    }
    let (med, max) = median_and_max(times);
    rows.push((
        "thread of 1,000 replies, 100 forked".to_string(),
        med,
        max,
        n,
    ));
    if let Some(fork) = fork {
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let r = store.reader().unwrap();
            let mut v = View::new(&r).unwrap();
            let th = v.thread(fork).unwrap();
            assert!(th.forked_from.is_some(), "a forked thread");
            n = th.entries.len() - 1;
            times.push(t.elapsed());
        }
        let (med, max) = median_and_max(times);
        rows.push(("a forked thread of that thread".to_string(), med, max, n));
    }
    rows
}

/// A dump of `total` messages of 100 feeds where every fifth message's
/// content is a box to 1..=7 feeds that are not us (when `boxed`).
fn boxed_dump(path: &Path, total: usize, boxed: bool) -> usize {
    let authors = 100;
    let per = total / authors;
    let strangers: Vec<FeedId> = (0..16).map(|i| author_key(10_000 + i).id()).collect();
    let feeds: Vec<Vec<Vec<u8>>> = (0..authors)
        .into_par_iter()
        .map(|a| {
            let ts = |s: usize| 1_600_000_000_000.0 + (s * authors + a) as f64;
            let msgs = sign_feed(&author_key(a), per, ts, |s, _| {
                let i = a * per + s;
                if boxed && i % 5 == 0 {
                    let n = 1 + i % 7;
                    let recps: Vec<FeedId> = (0..n)
                        .map(|k| strangers[(i + k) % strangers.len()])
                        .collect();
                    let plain = feed::json::to_compact(&post(text_for(i)));
                    Value::from(shoal::private::box_message(&plain, &recps).unwrap())
                } else {
                    post(text_for(i))
                }
            });
            msgs.iter().map(|m| m.json().to_vec()).collect()
        })
        .collect();
    write_interleaved(path, &feeds);
    per * authors
}

fn import_rate(work: &Path, name: &str, dump: &Path, n: usize, search: bool) -> f64 {
    let bin = env!("CARGO_BIN_EXE_shoal");
    let mut secs = Vec::new();
    for run in 0..3 {
        let home = work.join(format!("{name}-{run}"));
        let st = Command::new(bin)
            .arg("--home")
            .arg(&home)
            .arg("init")
            .output()
            .unwrap();
        assert!(st.status.success());
        if !search {
            let config = home.join("config.toml");
            let text = fs::read_to_string(&config).unwrap();
            assert!(!text.contains("[search]"), "search is on by default");
            fs::write(&config, text + "\n[search]\nenabled = false\n").unwrap();
        }
        let t = Instant::now();
        let out = Command::new(bin)
            .arg("--home")
            .arg(&home)
            .arg("import")
            .arg(dump)
            .output()
            .unwrap();
        let s = t.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("imported {n}, rejected 0")),
            "import failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        secs.push(s);
    }
    secs.sort_by(f64::total_cmp);
    n as f64 / secs[1]
}

fn main() {
    let feeds = env_num("SHOAL_BENCH_SOCIAL_FEEDS", 1000);
    let per = env_num("SHOAL_BENCH_SOCIAL_PER_FEED", 1000);
    let forks = env_num("SHOAL_BENCH_SOCIAL_FORKS", 100);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-social");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();

    // 2. first: it is quick (`SHOAL_BENCH_SOCIAL_IMPORT=0` skips it).
    let total = env_num("SHOAL_BENCH_SOCIAL_IMPORT", 100_000);
    let plain = work.join("plain.jsonl");
    let boxed = work.join("boxed.jsonl");
    let (mut rate_plain, mut rate_search, mut rate_boxed, mut n) = (0.0, 0.0, 0.0, 0);
    if total > 0 {
        n = boxed_dump(&plain, total, false);
        boxed_dump(&boxed, total, true);
        rate_plain = import_rate(&work, "plain", &plain, n, false);
        rate_search = import_rate(&work, "search", &plain, n, true);
        rate_boxed = import_rate(&work, "boxed", &boxed, n, false);
        eprintln!("import: {rate_plain:.0} msg/s plain, {rate_boxed:.0} msg/s with 20% boxes");
    }

    // 1.
    let me = Keypair::from_seed(&[42; 32]);
    let t = Instant::now();
    let (store, root, fork, stored) = build_store(&work.join("big.redb"), &me, feeds, per, forks);
    let build = t.elapsed().as_secs_f64();
    let rows = queries(&store, &root, fork.as_ref());
    let size = fs::metadata(work.join("big.redb")).unwrap().len();
    let search = search_figures(&work.join("search"), &store, stored);

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| store | {stored} messages of {} feeds, {:.0} MB (built in {build:.0} s) |",
        feeds + 2,
        size as f64 / 1e6
    );
    for (what, med, max, n) in rows {
        println!("| {what} ({n} items) | **{med:.2} ms** median, {max:.2} ms worst |");
    }
    println!("| `shoal import`, {n} messages, no boxes | {rate_plain:.0} msg/s (median of 3) |");
    println!(
        "| `shoal import`, {n} messages, 20% boxes not for us | **{rate_boxed:.0} msg/s** (median of 3) |"
    );
    for line in search {
        println!("{line}");
    }
    if rate_plain > 0.0 {
        println!(
            "| `shoal import`, {n} messages, no boxes, search on (indexed before it ends) | **{rate_search:.0} msg/s** (median of 3): {:.0}% slower than search off |",
            (1.0 - rate_search / rate_plain) * 100.0
        );
    }
}

/// 3.: indexes the big store whole, then times queries; the table rows.
fn search_figures(dir: &Path, store: &Store, stored: u64) -> Vec<String> {
    use shoal::search::{SearchIndex, SearchQuery};
    let t = Instant::now();
    let index = SearchIndex::open(dir, store).unwrap();
    let docs = index.catch_up(store).unwrap();
    let took = t.elapsed().as_secs_f64();
    let stats = index.stats().unwrap();
    eprintln!("indexed {docs} documents in {took:.1} s");
    let mut rows = vec![format!(
        "| search index of the store | {docs} documents in {took:.1} s ({:.0} msg/s), {:.1} MB: **{:.0} bytes per message** stored ({:.0} per document) |",
        stored as f64 / took,
        stats.bytes as f64 / 1e6,
        stats.bytes as f64 / stored as f64,
        stats.bytes as f64 / docs.max(1) as f64
    )];
    let words = &common::WORDS;
    for (what, text) in [
        ("one-word", words[3].to_string()),
        (
            "three-word",
            format!("{} {} {}", words[1], words[5], words[9]),
        ),
    ] {
        let q = SearchQuery {
            text: text.clone(),
            ..SearchQuery::default()
        };
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..100 {
            let t = Instant::now();
            n = index.search(store, &q).unwrap().hits.len();
            times.push(t.elapsed());
        }
        let (med, max) = median_and_max(times);
        rows.push(format!(
            "| search, {what} query `{text}`, top 20 with snippets ({n} hits) | **{med:.2} ms** median, {max:.2} ms worst |"
        ));
    }
    rows
}
