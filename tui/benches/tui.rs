//! The terminal client on a home with 100,000 messages (100 feeds we
//! follow, 1,000 messages each, every fifth a reply):
//!
//! - time to first frame: from opening the node on the home to the first
//!   frame drawn with the timeline, contacts and inbox loaded (target
//!   under 300 ms);
//! - frame render time: drawing a 120x40 screen while moving through the
//!   timeline (target under 5 ms);
//! - timeline page load: the next 50 posts by cursor;
//! - memory: peak resident set size of a process that did all of that
//!   (target under 150 MB).
//!
//! The home is generated once (deterministic keys and texts, as in the
//! root package's benchmarks) under `target/tui-bench/`. The measuring
//! runs in a fresh child process, so the generator's memory does not
//! count. Run with `cargo bench -p shoal-tui`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rayon::prelude::*;

use shoal::crypto::Keypair;
use shoal::feed::content::Edge;
use shoal::feed::{Object, Value, VerifiedMsg};
use shoal::home::Home;
use shoal::social::compose;
use shoal_tui::app::{App, update};
use shoal_tui::backend::{Backend, Embedded};
use shoal_tui::event::{Effect, Event, Loaded};

#[path = "../../benches/common/mod.rs"]
mod common;

use common::{author_key, sign_feed, text_for};

/// Feeds in the generated home.
const AUTHORS: usize = 100;
/// Messages in all.
const TOTAL: usize = 100_000;
/// The screen drawn.
const SIZE: (u16, u16) = (120, 40);

/// Makes the home (once): our identity follows every author.
fn generate(home: &Path) {
    let t = Instant::now();
    let me = Keypair::from_seed(&[200; 32]);
    std::fs::create_dir_all(home.parent().expect("parent")).expect("dir");
    let secret = home.with_extension("secret");
    let _ = std::fs::remove_file(&secret);
    shoal::crypto::write_secret_file(&secret, &me).expect("secret");
    Home::init(home, shoal::home::Identity::SecretFile(&secret))
        .expect("init")
        .store()
        .expect("store")
        .release_own_holds()
        .expect("a bench identity has nothing to restore");
    std::fs::write(home.join("config.toml"), "listen = \"127.0.0.1:0\"\n").expect("config");
    let per = TOTAL / AUTHORS - 1;
    let feeds: Vec<Vec<VerifiedMsg>> = (0..AUTHORS)
        .into_par_iter()
        .map(|a| {
            let ts = |s: usize| 1_600_000_000_000.0 + (s * AUTHORS + a) as f64 * 1000.0;
            let kp = author_key(a);
            let id = kp.id();
            sign_feed(&kp, per + 1, ts, |s, state| {
                if s == 0 {
                    return compose::name(&id, &format!("author {a}"));
                }
                let mut c = Object::new();
                c.insert("type", Value::from("post"));
                c.insert("text", Value::from(text_for(a * per + s)));
                if s % 5 == 0
                    && let Some(st) = state
                {
                    c.insert("root", Value::from(st.id.to_string()));
                }
                Value::Object(c)
            })
        })
        .collect();
    let h = Home::open(home).expect("open");
    let store = h.store().expect("store");
    let mut mine = Vec::new();
    for a in 0..AUTHORS {
        mine.push(compose::contact(&author_key(a).id(), Edge::Follow));
    }
    for c in mine {
        store.append_local(h.keys(), c, None).expect("follow");
    }
    // Interleaved, as a peer's log would arrive, in batches.
    let mut batch = Vec::with_capacity(5000);
    for s in 0..=per {
        for f in &feeds {
            batch.push(f[s].clone());
            if batch.len() == 5000 {
                store.ingest(std::mem::take(&mut batch)).expect("ingest");
            }
        }
    }
    store.ingest(batch).expect("ingest");
    let stats = store.stats().expect("stats");
    std::fs::write(home.join("READY"), stats.messages.to_string()).expect("marker");
    eprintln!(
        "generated {} messages in {:?} at {}",
        stats.messages,
        t.elapsed(),
        home.display()
    );
}

/// `VmHWM` and `VmRSS` of this process, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmHWM:"), kb("VmRSS:"))
}

/// Carries out load effects with the backend, feeding results back, until
/// none are left.
fn settle(app: &mut App, backend: &Embedded, mut effects: Vec<Effect>) {
    while let Some(e) = effects.pop() {
        let s = |e: shoal_tui::backend::BackendError| e.to_string();
        let loaded = match e {
            Effect::LoadTimeline(page) => Loaded::Timeline {
                page,
                result: backend.timeline(page.before, page.limit).map_err(s),
            },
            Effect::LoadInbox(page) => Loaded::Inbox {
                page,
                result: backend.inbox(page.before, page.limit).map_err(s),
            },
            Effect::LoadProfile(id) => Loaded::Profile {
                result: backend.profile(&id).map(Box::new).map_err(s),
                why: backend.why(&id).ok().map(Box::new),
                id,
            },
            Effect::LoadThread(id) => Loaded::Thread {
                result: backend.thread(&id).map_err(s),
                id,
            },
            _ => continue,
        };
        effects.extend(update(app, Event::Loaded(loaded)));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The measuring process.
fn measure(home: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let t0 = Instant::now();
    let backend = rt.block_on(Embedded::start(home)).expect("node");
    let opened = t0.elapsed();
    let now = shoal_tui::runtime::now_ms();
    let mut app = App::new(backend.me(), now, SIZE);
    let effects = app.start();
    settle(&mut app, &backend, effects);
    let mut term = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("terminal");
    term.draw(|f| shoal_tui::ui::draw(f, &app)).expect("draw");
    let first_frame = t0.elapsed();
    assert_eq!(app.timeline.list.posts.len(), 50, "the first page is shown");

    // Frames while moving down the timeline; pages load on the way.
    let mut frames = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..1000 {
        let effects = update(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE)),
        );
        // Moving onto a post marks it read (the runtime does that in the
        // background); a page load is timed.
        let page = effects.iter().any(|e| matches!(e, Effect::LoadTimeline(_)));
        let t = Instant::now();
        settle(&mut app, &backend, effects);
        if page {
            pages.push(t.elapsed());
        }
        let t = Instant::now();
        term.draw(|f| shoal_tui::ui::draw(f, &app)).expect("draw");
        frames.push(t.elapsed());
    }
    // A thread of one of the posts.
    let t = Instant::now();
    let effects = update(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    settle(&mut app, &backend, effects);
    term.draw(|f| shoal_tui::ui::draw(f, &app)).expect("draw");
    let thread = t.elapsed();
    frames.sort();
    pages.sort();
    let (hwm, rss) = memory_mb();
    let messages = backend.status().map(|s| s.messages).unwrap_or(0);
    println!("messages in the home       {messages}");
    println!("node opened                {opened:.1?}");
    println!("time to first frame        {first_frame:.1?}   (target < 300 ms)");
    println!(
        "frame render (120x40)      median {:.2?}, p99 {:.2?}, max {:.2?} over {} frames   (target < 5 ms)",
        percentile(&frames, 0.5),
        percentile(&frames, 0.99),
        frames.last().copied().unwrap_or_default(),
        frames.len()
    );
    if !pages.is_empty() {
        println!(
            "timeline page of 50        median {:.1?}, max {:.1?} over {} pages ({} posts loaded)",
            percentile(&pages, 0.5),
            pages.last().copied().unwrap_or_default(),
            pages.len(),
            app.timeline.list.posts.len()
        );
    }
    println!("open a thread and draw     {thread:.1?}");
    println!(
        "memory                     peak RSS {hwm:.1} MB, RSS now {rss:.1} MB   (target < 150 MB)"
    );
    // As the binary ends: the node stopped, the store closed cleanly.
    rt.block_on(backend.stop());
    drop(backend);
    rt.shutdown_timeout(Duration::from_secs(2));
    assert!(
        Embedded::wait_closed(home, Duration::from_secs(5)),
        "the store closes"
    );
}

fn bench_home() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("tui-bench").join("home-100k")
}

fn main() {
    if let Some(home) = std::env::var_os("SHOAL_TUI_BENCH_HOME") {
        measure(Path::new(&home));
        return;
    }
    // `cargo test --benches` runs benches with no arguments of interest;
    // a quick check there would still generate 100,000 messages, so only
    // `cargo bench` (which passes --bench) measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let home = bench_home();
    if !home.join("READY").exists() {
        let _ = std::fs::remove_dir_all(&home);
        generate(&home);
    }
    // Twice: the first run may find the store as a killed process left it
    // (redb then repairs it on open); the second opens a cleanly closed one.
    for run in 1..=2 {
        println!("--- run {run}");
        let status = Command::new(std::env::current_exe().expect("own path"))
            .env("SHOAL_TUI_BENCH_HOME", &home)
            .status()
            .expect("measuring process");
        assert!(status.success(), "measuring failed: {status}");
    }
}
