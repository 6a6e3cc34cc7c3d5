//! First sync of a fresh node, beside the JavaScript ssb-server: how long
//! someone who just followed 20 people waits for their timeline.
//!
//! 1. A network is generated with a fixed seed: 100,000 messages of 100
//!    authors whose feeds run from about 260 to about 9,000 messages
//!    (Zipf-like), spread over the year before 2026-12-01: names, follows
//!    among the authors, posts, reply trees (replies to replies, with
//!    `root` and `branch`), likes, and private-box DMs between authors
//!    (after each feed's first follows: about 25% posts, 25% replies, 38%
//!    likes, 9% DMs, 3% abouts).
//! 2. A `shoal serve` pub holds all of it (`shoal import`). A fresh node
//!    (a new home, `hops = 1`) publishes follows of 20 of the authors,
//!    starts, and dials the pub (`shoal connect`).
//! 3. From the connect, polling every 20 ms through the node's control
//!    socket (the requests `shoal status` and `shoal feed --limit 20`
//!    send): (a) the first full timeline page, when the first page is the
//!    page the node shows once the sync is done (the 20 newest posts and
//!    replies of the 20 feeds, computed from the data and checked against
//!    the node's final page); (b) every message of the 20 feeds held.
//!    Median of 3 runs, each with a new fresh node.
//! 4. The same with ssb-server 16 (the refpeer kit, TCP_NODELAY): a pub
//!    loaded through its `add` RPC, a fresh ssb-server (`friends.hops` 1)
//!    following the same 20 and dialling it; (a) is when it holds every
//!    message of the page (it replicates each feed in order, so then the
//!    newest 20 posts are there), (b) every message of the 20 feeds.
//!
//! Run: `cargo bench --bench first_sync` (needs node and the refpeer kit at
//! `SHOAL_REFPEER`, default `../shared/refpeer`). For a quick run:
//! `SHOAL_BENCH_MSGS=10000 SHOAL_BENCH_RUNS=1 cargo bench --bench
//! first_sync`; `SHOAL_BENCH_JS=0` leaves out ssb-server. Prints one table.

mod common;
mod nodes;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{AUTHORS, Rng, author_key, env_num, obj, text_for};
use nodes::{Serve, free_port, js, kit, messages_of, shoal};
use shoal::api::{Request, Response, Status};
use shoal::crypto::{FeedId, MsgId};
use shoal::feed::{self, FeedState, Value};

/// Authors the fresh node follows.
const FOLLOWED: usize = 20;
/// The timeline page waited for.
const PAGE: usize = 20;
/// Time between two polls of a syncing node.
const POLL: Duration = Duration::from_millis(20);
/// The newest message is just before 2026-12-01 00:00 UTC (ms).
const END_MS: u64 = 1_796_083_200_000;
const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

/// What the generated network holds.
#[derive(Default)]
struct Counts {
    posts: usize,
    replies: usize,
    votes: usize,
    private: usize,
    contacts: usize,
    abouts: usize,
}

/// The generated network.
struct Network {
    ids: Vec<FeedId>,
    /// Messages of each feed.
    lengths: Vec<usize>,
    /// Public posts and replies: (claimed time, author, sequence, id).
    posts: Vec<(u64, usize, usize, MsgId)>,
    counts: Counts,
    bytes: u64,
}

/// Feed lengths: Zipf-like over a shuffled order of the authors, summing
/// to `total`.
fn feed_lengths(rng: &mut Rng, total: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..AUTHORS).collect();
    for i in (1..AUTHORS).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let weights: Vec<f64> = (0..AUTHORS).map(|r| 1.0 / (r + 3) as f64).collect();
    let sum: f64 = weights.iter().sum();
    let mut lengths = vec![0; AUTHORS];
    for (rank, &a) in order.iter().enumerate() {
        lengths[a] = ((total as f64 * weights[rank] / sum) as usize).max(2);
    }
    // Rounding: what is left goes to the longest feed.
    let left = total as isize - lengths.iter().sum::<usize>() as isize;
    lengths[order[0]] = (lengths[order[0]] as isize + left) as usize;
    lengths
}

/// Generates the network into `path` as `{key, value, timestamp}` lines
/// in the order the messages were written (claimed time), as a pub's log
/// holds them.
fn generate(path: &Path, total: usize, rng: &mut Rng) -> Network {
    let keys: Vec<_> = (0..AUTHORS).map(author_key).collect();
    let ids: Vec<FeedId> = keys.iter().map(|k| k.id()).collect();
    let lengths = feed_lengths(rng, total);

    // Each feed starts between 4 and 12 months ago; its messages fall at
    // random after that, in steps of 100 ms ending with the author's index,
    // so no two messages of the network claim the same time.
    let mut schedule: Vec<(u64, usize)> = Vec::with_capacity(total);
    for (a, &n) in lengths.iter().enumerate() {
        let slots = |ms: u64| ms / 100;
        let start = slots(END_MS - (YEAR_MS as f64 * (0.33 + 0.67 * rng.unit())) as u64);
        let span = slots(END_MS) - start;
        let mut times: Vec<u64> = (0..n).map(|_| start + rng.next() % span).collect();
        times.sort_unstable();
        for i in 1..n {
            times[i] = times[i].max(times[i - 1] + 1);
        }
        schedule.extend(times.iter().map(|s| (s * 100 + a as u64, a)));
    }
    schedule.sort_unstable();

    // Whom each author follows (5 to 30 others), published early on.
    let mut to_follow: Vec<Vec<usize>> = (0..AUTHORS)
        .map(|a| {
            let k = 5 + rng.below(26);
            rng.pick(AUTHORS, k, Some(a))
        })
        .collect();
    let mut states: Vec<Option<FeedState>> = vec![None; AUTHORS];
    // Recent threads (root, then its replies) and recent public posts.
    let mut threads: Vec<Vec<MsgId>> = Vec::new();
    let mut recent: Vec<MsgId> = Vec::new();
    let mut net = Network {
        ids: ids.clone(),
        lengths,
        posts: Vec::new(),
        counts: Counts::default(),
        bytes: 0,
    };
    let mut w = std::io::BufWriter::new(fs::File::create(path).unwrap());
    for (i, &(ts, a)) in schedule.iter().enumerate() {
        let seq = states[a].as_ref().map_or(1, |s| s.sequence + 1) as usize;
        let text = text_for(i);
        let roll = rng.unit();
        let mut public_post = false;
        // The thread a reply goes into.
        let mut thread = None;
        let content = if seq == 1 {
            net.counts.abouts += 1;
            obj(vec![
                ("type", "about".into()),
                ("about", ids[a].to_string().into()),
                ("name", format!("author {a}").into()),
            ])
        } else if !to_follow[a].is_empty() && rng.unit() < 0.1 {
            net.counts.contacts += 1;
            let b = to_follow[a].pop().unwrap();
            obj(vec![
                ("type", "contact".into()),
                ("contact", ids[b].to_string().into()),
                ("following", true.into()),
            ])
        } else if roll < 0.25 || recent.is_empty() {
            // A post: a new thread.
            net.counts.posts += 1;
            public_post = true;
            obj(vec![("type", "post".into()), ("text", text.into())])
        } else if roll < 0.50 {
            // A reply to a recent thread, to its root or to one of its
            // replies: the trees nest.
            net.counts.replies += 1;
            public_post = true;
            let t = threads.len() - 1 - rng.below(threads.len().min(300));
            thread = Some(t);
            let branch = threads[t][rng.below(threads[t].len())];
            obj(vec![
                ("type", "post".into()),
                ("text", text.into()),
                ("root", threads[t][0].to_string().into()),
                ("branch", branch.to_string().into()),
            ])
        } else if roll < 0.88 {
            net.counts.votes += 1;
            let link = recent[recent.len() - 1 - rng.below(recent.len().min(2000))];
            obj(vec![
                ("type", "vote".into()),
                (
                    "vote",
                    obj(vec![
                        ("link", link.to_string().into()),
                        ("value", 1.0.into()),
                        ("expression", "Like".into()),
                    ]),
                ),
            ])
        } else if roll < 0.97 {
            // A DM to 1 to 3 other authors, boxed to them and the author
            // as `shoal dm` does.
            net.counts.private += 1;
            let mut recps = vec![ids[a]];
            let others = 1 + rng.below(3);
            recps.extend(rng.pick(AUTHORS, others, Some(a)).iter().map(|&b| ids[b]));
            let plain = obj(vec![
                ("type", "post".into()),
                ("text", text.into()),
                (
                    "recps",
                    Value::Array(recps.iter().map(|r| r.to_string().into()).collect()),
                ),
            ]);
            let boxed = shoal::private::box_message(&feed::json::to_compact(&plain), &recps);
            Value::from(boxed.unwrap())
        } else {
            net.counts.abouts += 1;
            obj(vec![
                ("type", "about".into()),
                ("about", ids[a].to_string().into()),
                ("description", text.into()),
            ])
        };
        let v = feed::build(&keys[a], states[a].as_ref(), ts as f64, content, None);
        let m = feed::validate(states[a].as_ref(), None, v).expect("generated message is valid");
        states[a] = Some(m.state());
        let id = m.id();
        if public_post {
            net.posts.push((ts, a, seq, id));
            recent.push(id);
            match thread {
                Some(t) => threads[t].push(id),
                None => threads.push(vec![id]),
            }
        }
        let line = format!(
            "{{\"key\":\"{id}\",\"value\":{},\"timestamp\":{ts}}}\n",
            String::from_utf8_lossy(m.json())
        );
        net.bytes += line.len() as u64;
        w.write_all(line.as_bytes()).unwrap();
    }
    w.flush().unwrap();
    net
}

/// What the fresh node is to end up with.
struct Want {
    /// The followed authors.
    followed: Vec<usize>,
    /// The first timeline page once synced: its ids, newest first.
    page: Vec<String>,
    /// Per followed author: the sequence the page needs, and its last.
    seqs: Vec<(FeedId, usize, usize)>,
    /// Messages of the followed feeds.
    messages: u64,
}

impl Want {
    fn new(net: &Network, rng: &mut Rng) -> Want {
        let mut followed = rng.pick(AUTHORS, FOLLOWED, None);
        followed.sort_unstable();
        let mut posts: Vec<_> = net
            .posts
            .iter()
            .filter(|p| followed.contains(&p.1))
            .collect();
        posts.sort_by_key(|p| std::cmp::Reverse(p.0));
        posts.truncate(PAGE);
        let seqs = followed
            .iter()
            .map(|&a| {
                let need = posts.iter().filter(|p| p.1 == a).map(|p| p.2).max();
                (net.ids[a], need.unwrap_or(0), net.lengths[a])
            })
            .collect();
        Want {
            page: posts.iter().map(|p| p.3.to_string()).collect(),
            messages: followed.iter().map(|&a| net.lengths[a] as u64).sum(),
            followed,
            seqs,
        }
    }
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Asks the node running on `home` through its control socket, as the
/// CLI and the terminal client do (without starting a process per poll).
fn ask(home: &Path, req: &Request) -> Response {
    match shoal::local::call(home, req, &mut shoal::api::Discard) {
        Ok(Some(Ok(r))) => r,
        other => panic!("{req:?} failed: {other:?}"),
    }
}

/// The ids of the first timeline page of the node running on `home`.
fn first_page(home: &Path) -> Vec<String> {
    let req = Request::Feed {
        before: None,
        limit: PAGE,
    };
    match ask(home, &req) {
        Response::Items { items } => items.into_iter().map(|i| i.key).collect(),
        other => panic!("a page, not {other:?}"),
    }
}

/// The replication status of the node running on `home`.
fn status(home: &Path) -> Status {
    match ask(home, &Request::Status) {
        Response::Status(s) => s,
        other => panic!("a status, not {other:?}"),
    }
}

/// One first sync of a fresh shoal node from the pub at `pub_addr`:
/// seconds to the first full page, to every message, and the mean time
/// between two polls.
/// `newest` is the node's `newest_first` (0: every feed from its start).
fn shoal_run(
    home: &Path,
    pub_addr: &str,
    net: &Network,
    want: &Want,
    newest: u64,
) -> (f64, f64, f64) {
    shoal(home, &["init"]);
    let config = home.join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("hops =") {
                "hops = 1".to_string()
            } else if l.starts_with("newest_first =") {
                format!("newest_first = {newest}")
            } else {
                l.to_string()
            }
        })
        .collect();
    fs::write(&config, text.join("\n") + "\n").unwrap();
    for &a in &want.followed {
        let c = format!(
            r#"{{"type":"contact","contact":"{}","following":true}}"#,
            net.ids[a]
        );
        shoal(home, &["publish", &c]);
    }
    let target = messages_of(home) + want.messages;
    let node = Serve::start(home, free_port());
    let t0 = Instant::now();
    shoal(home, &["connect", pub_addr]);
    // Each finding counts from the moment its query was sent.
    let (mut page_at, mut done_at, mut polls) = (None, None, 0u32);
    while page_at.is_none() || done_at.is_none() {
        polls += 1;
        let at = t0.elapsed();
        if done_at.is_none() && status(home).messages >= target {
            done_at = Some(at);
        }
        let at = t0.elapsed();
        if page_at.is_none() && first_page(home) == want.page {
            page_at = Some(at);
        }
        assert!(at < Duration::from_secs(900), "first sync timed out");
        std::thread::sleep(POLL);
    }
    let spent = t0.elapsed().as_secs_f64();
    // The page waited for is the page the node shows once synced.
    assert_eq!(first_page(home), want.page, "the final first page");
    // Hops 1: the followed feeds and ours, nothing else.
    assert_eq!(status(home).feeds_wanted, FOLLOWED as u64 + 1);
    node.stop();
    let secs = |d: Option<Duration>| d.unwrap().as_secs_f64();
    (secs(page_at), secs(done_at), spent / f64::from(polls))
}

/// The ssb-server steps, over one RPC connection each (the kit's
/// `scripts/lib.js`, found through env KIT). Prints one JSON line.
///   ingest PEER DUMP IDS: replicate.request every id, `add` every
///     message (20 in flight), then wait for the indexes;
///   follow PEER WANT: follow the feeds of WANT;
///   sync PEER ADDR WANT: dial ADDR, poll its vector clock every 20 ms
///     until each feed of WANT (lines `ID PAGE_SEQ LAST_SEQ`) holds
///     PAGE_SEQ (the page) and LAST_SEQ (everything).
const JS_STEPS: &str = r#"
const fs = require('fs')
const { connect, seqOf } = require(process.env.KIT + '/scripts/lib')
const [cmd, peer, ...args] = process.argv.slice(2)
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean)
const wants = (f) => lines(f).map(l => l.split(' ')).map(([id, page, last]) => ({ id, page: +page, last: +last }))
const fail = (e) => { console.error(e && e.stack || e); process.exit(1) }
function each (list, f, cb) {
  let i = 0
  ;(function next (err) { if (err) return fail(err); if (i >= list.length) return cb(); f(list[i++], next) })()
}
connect(peer, (err, sbot) => {
  if (err) fail(err)
  const done = (out) => { console.log(JSON.stringify(out)); sbot.close(true, () => process.exit(0)) }
  if (cmd === 'ingest') {
    const [file, idFile] = args
    const t0 = Date.now()
    each(lines(idFile), (id, cb) => sbot.replicate.request(id, () => cb()), () => {
      const msgs = lines(file).map(l => JSON.parse(l).value)
      let started = 0, added = 0
      function next () {
        if (started >= msgs.length) return
        sbot.add(msgs[started++], (err) => {
          if (err) fail(err)
          if (++added === msgs.length) return indexed()
          next()
        })
      }
      function indexed () {
        sbot.progress((err, p) => {
          if (err) fail(err)
          const i = p.indexes || {}
          if (i.target > 0 && i.current >= i.target) return done({ added, ms: Date.now() - t0 })
          setTimeout(indexed, 100)
        })
      }
      for (let k = 0; k < 20; k++) next()
    })
  } else if (cmd === 'follow') {
    each(wants(args[0]), (w, cb) => sbot.publish({ type: 'contact', contact: w.id, following: true }, cb),
      () => done({ followed: true }))
  } else if (cmd === 'sync') {
    const [addr, wantFile] = args
    const ws = wants(wantFile)
    let pageMs = null, polls = 0
    const t0 = Date.now()
    sbot.gossip.connect(addr, (err) => {
      if (err) fail(err)
      ;(function poll () {
        polls++
        sbot.getVectorClock((err, clock) => {
          if (err) fail(err)
          const ms = Date.now() - t0
          if (pageMs === null && ws.every(w => (clock[w.id] || 0) >= w.page)) pageMs = ms
          if (ws.every(w => (clock[w.id] || 0) >= w.last)) return done({ page_ms: pageMs, done_ms: ms, poll_ms: ms / polls })
          if (ms > 900000) fail('first sync timed out')
          setTimeout(poll, 20)
        })
      })()
    })
  } else fail('unknown command ' + cmd)
})
"#;

/// The refpeer kit's ssb-server peers of this benchmark, stopped on drop.
struct JsPeers {
    kit: PathBuf,
    home: PathBuf,
    names: Vec<String>,
}

impl JsPeers {
    /// Makes and starts peer `name` (TCP_NODELAY) with `friends.hops`
    /// `hops`.
    fn start(&mut self, name: &str, hops: u8) {
        js(
            &self.kit,
            &self.home,
            &["bin/mkpeer.sh", name, &free_port().to_string()],
            &[],
        );
        let config = self.home.join(name).join("config");
        let text = fs::read_to_string(&config).unwrap();
        fs::write(
            &config,
            text.replace("\"hops\": 2", &format!("\"hops\": {hops}")),
        )
        .unwrap();
        js(
            &self.kit,
            &self.home,
            &["bin/start.sh", name, "3600"],
            &[("NODELAY", "1")],
        );
        self.names.push(name.to_string());
    }

    /// Runs a step of [`JS_STEPS`]; its JSON answer.
    fn step(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new("node")
            .arg("-r")
            .arg(self.kit.join("scripts/nodelay.js"))
            .arg(self.home.join("steps.js"))
            .args(args)
            .env("REFPEER_HOME", &self.home)
            .env("KIT", &self.kit)
            .output()
            .expect("run node");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap_or("")).expect("a JSON answer")
    }

    fn stop(&mut self, name: &str) {
        js(&self.kit, &self.home, &["bin/stop.sh", name], &[]);
        self.names.retain(|n| n != name);
    }
}

impl Drop for JsPeers {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new(self.kit.join("bin/stop.sh"))
                .arg(name)
                .env("REFPEER_HOME", &self.home)
                .output();
        }
    }
}

/// The ssb-server side: seconds to load the pub, and per run the seconds
/// to the page, to every message, and between two polls.
fn js_side(
    work: &Path,
    dump: &Path,
    net: &Network,
    want: &Want,
    runs: usize,
) -> (f64, Vec<(f64, f64, f64)>) {
    let rp = work.join("refpeer");
    fs::create_dir_all(&rp).unwrap();
    let kit = kit();
    js(&kit, &rp, &["bin/install.sh"], &[]);
    fs::write(rp.join("steps.js"), JS_STEPS).unwrap();
    let ids = rp.join("ids.txt");
    let all: Vec<String> = net.ids.iter().map(ToString::to_string).collect();
    fs::write(&ids, all.join("\n") + "\n").unwrap();
    let wants = rp.join("want.txt");
    let lines: Vec<String> = want
        .seqs
        .iter()
        .map(|(id, page, last)| format!("{id} {page} {last}"))
        .collect();
    fs::write(&wants, lines.join("\n") + "\n").unwrap();

    let mut peers = JsPeers {
        kit: kit.clone(),
        home: rp.clone(),
        names: Vec::new(),
    };
    peers.start("pub", 2);
    let loaded = peers.step(&[
        "ingest",
        "pub",
        dump.to_str().unwrap(),
        ids.to_str().unwrap(),
    ]);
    let load_s = loaded["ms"].as_f64().unwrap() / 1000.0;
    eprintln!("ssb-server pub loaded in {load_s:.1} s: {loaded}");
    let pub_addr = js(&kit, &rp, &["bin/info.sh", "pub", "address"], &[]);
    let mut out = Vec::new();
    for run in 0..runs {
        let name = format!("fresh{run}");
        peers.start(&name, 1);
        peers.step(&["follow", &name, wants.to_str().unwrap()]);
        let v = peers.step(&["sync", &name, &pub_addr, wants.to_str().unwrap()]);
        eprintln!("ssb-server first sync {run}: {v}");
        let s = |k: &str| v[k].as_f64().unwrap() / 1000.0;
        out.push((s("page_ms"), s("done_ms"), s("poll_ms")));
        peers.stop(&name);
    }
    (load_s, out)
}

/// `s` seconds with two decimals, and the runs behind a median.
fn runs_text(median: f64, runs: &[f64]) -> String {
    let each: Vec<String> = runs.iter().map(|s| format!("{s:.2}")).collect();
    format!("**{median:.2} s** ({} s)", each.join(" / "))
}

fn main() {
    let total = env_num("SHOAL_BENCH_MSGS", 100_000);
    let runs = env_num("SHOAL_BENCH_RUNS", 3);
    let with_js = env_num("SHOAL_BENCH_JS", 1) != 0;
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-first-sync");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();

    let mut rng = Rng(18);
    let dump = work.join("network.jsonl");
    let t = Instant::now();
    let net = generate(&dump, total, &mut rng);
    let want = Want::new(&net, &mut rng);
    let c = &net.counts;
    eprintln!(
        "network: {total} messages in {:.1} s; {} posts, {} replies, {} votes, {} private, {} contacts, {} abouts; followed feeds hold {}",
        t.elapsed().as_secs_f64(),
        c.posts,
        c.replies,
        c.votes,
        c.private,
        c.contacts,
        c.abouts,
        want.messages
    );

    // shoal: the pub, then a fresh node per run.
    let pub_home = work.join("pub");
    shoal(&pub_home, &["init"]);
    let t = Instant::now();
    let imported = shoal(&pub_home, &["import", dump.to_str().unwrap()]);
    let import_s = t.elapsed().as_secs_f64();
    assert!(
        imported.contains(&format!("imported {total}, rejected 0")),
        "{imported}"
    );
    let pub_node = Serve::start(&pub_home, free_port());
    let pub_addr = shoal(&pub_home, &["address"]);
    // Newest first (the default) and from each feed's start, alternately.
    let (mut shoal_runs, mut start_runs) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for (newest, into) in [(50, &mut shoal_runs), (0, &mut start_runs)] {
            let home = work.join(format!("fresh{run}-{newest}"));
            let r = shoal_run(&home, &pub_addr, &net, &want, newest);
            eprintln!(
                "shoal first sync {run} (newest_first = {newest}): page {:.2} s, all {:.2} s, a poll every {:.0} ms",
                r.0,
                r.1,
                r.2 * 1000.0
            );
            into.push(r);
        }
    }
    pub_node.stop();

    let (js_load, js_runs) = if with_js {
        js_side(&work, &dump, &net, &want, runs)
    } else {
        (0.0, Vec::new())
    };

    // The table.
    let lens: Vec<usize> = want.followed.iter().map(|&a| net.lengths[a]).collect();
    let column = |rs: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| -> (f64, Vec<f64>) {
        let v: Vec<f64> = rs.iter().map(f).collect();
        (median(&mut v.clone()), v)
    };
    let cell = |rs: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
        if rs.is_empty() {
            return "not run".to_string();
        }
        let (m, v) = column(rs, f);
        runs_text(m, &v)
    };
    let rate = |rs: &[(f64, f64, f64)]| {
        if rs.is_empty() {
            return "not run".to_string();
        }
        let (m, _) = column(rs, |r| r.1);
        format!("{:.0} msg/s", want.messages as f64 / m)
    };
    let poll = |rs: &[(f64, f64, f64)]| {
        if rs.is_empty() {
            return "not run".to_string();
        }
        let (m, _) = column(rs, |r| r.2);
        format!("{:.0} ms", m * 1000.0)
    };
    println!(
        "Network: {total} messages of {AUTHORS} feeds ({:.1} MB as JSON lines; feeds of {} to {} messages): {} posts, {} replies, {} likes, {} private messages, {} follows, {} abouts. The fresh node follows {FOLLOWED} feeds holding {} messages ({} to {} each); hops 1.",
        net.bytes as f64 / 1e6,
        net.lengths.iter().min().unwrap(),
        net.lengths.iter().max().unwrap(),
        c.posts,
        c.replies,
        c.votes,
        c.private,
        c.contacts,
        c.abouts,
        want.messages,
        lens.iter().min().unwrap(),
        lens.iter().max().unwrap(),
    );
    println!(
        "Load average at the start: {}.",
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    println!();
    println!(
        "| measure | shoal, newest first | shoal, each feed from its start (`newest_first = 0`) | ssb-server |"
    );
    println!("|---|---|---|---|");
    println!(
        "| load the pub with the {total} messages | {import_s:.2} s (`shoal import`) | the same pub | {} |",
        if with_js {
            format!("{js_load:.2} s (`add` RPC, 20 in flight, until indexed)")
        } else {
            "not run".into()
        }
    );
    println!(
        "| first full timeline page ({PAGE} newest posts and replies of the {FOLLOWED} feeds), median of {runs} | {} | {} | {} |",
        cell(&shoal_runs, |r| r.0),
        cell(&start_runs, |r| r.0),
        cell(&js_runs, |r| r.0)
    );
    println!(
        "| every message of the {FOLLOWED} feeds ({}), median of {runs} | {} | {} | {} |",
        want.messages,
        cell(&shoal_runs, |r| r.1),
        cell(&start_runs, |r| r.1),
        cell(&js_runs, |r| r.1)
    );
    println!(
        "| rate to complete | {} | {} | {} |",
        rate(&shoal_runs),
        rate(&start_runs),
        rate(&js_runs)
    );
    println!(
        "| time between two polls (resolution) | {} | {} | {} |",
        poll(&shoal_runs),
        poll(&start_runs),
        poll(&js_runs)
    );
}
