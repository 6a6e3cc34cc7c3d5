//! The peer picker on loopback: 50 feeds followed, 10 peers in the peer
//! table (announced by `pub` messages of ours), each holding a random
//! subset of the feeds (each feed on each peer with a given probability,
//! and on at least one; fixed seed). Eleven real `shoal serve` processes.
//!
//! Measures how long until the node holds every feed in full, how many
//! connections it keeps (at most at once, when every feed is current, and
//! once the picker has settled), against the smallest set of peers that
//! holds every feed (found by trying every subset) and against dialling
//! every peer (10).
//!
//! Run: `cargo bench --bench picker`. `SHOAL_BENCH_MSGS_PER_FEED` changes
//! the feeds' length (default 100), `SHOAL_BENCH_HOLD` the probability
//! that a peer holds a feed (default 0.3). Prints one table.

mod common;
mod nodes;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{author_key, sign_feed};
use nodes::{Serve, free_port, shoal};
use shoal::crypto::Keypair;
use shoal::feed::Value;

const FEEDS: usize = 50;
const PEERS: usize = 10;

/// A home with identity `seed`, its config lines appended.
fn home(root: &Path, name: &str, seed: u8, config: &str) -> PathBuf {
    let dir = root.join(name);
    let secret = root.join(format!("{name}.secret"));
    shoal::crypto::write_secret_file(&secret, &Keypair::from_seed(&[seed; 32])).unwrap();
    shoal(&dir, &["init", "--secret", secret.to_str().unwrap()]);
    shoal(&dir, &["restore", "--done", "--yes"]);
    let path = dir.join("config.toml");
    let set: Vec<&str> = config
        .lines()
        .filter_map(|l| l.split(" =").next())
        .collect();
    let mut text: String = fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !set.iter().any(|k| l.starts_with(&format!("{k} ="))))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(config);
    fs::write(&path, text).unwrap();
    dir
}

fn publish(home: &Path, content: &str) {
    shoal(home, &["publish", content]);
}

fn follow(home: &Path, feed: &str) {
    publish(
        home,
        &format!(r#"{{"type":"contact","contact":"{feed}","following":true}}"#),
    );
}

/// A deterministic generator (xorshift64*), so that every run places the
/// feeds on the same peers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The fewest peers whose subsets together hold every feed.
fn smallest_cover(holds: &[Vec<usize>]) -> usize {
    (1u32..1 << holds.len())
        .filter(|set| {
            let mut seen = [false; FEEDS];
            for (p, h) in holds.iter().enumerate() {
                if set & (1 << p) != 0 {
                    for &f in h {
                        seen[f] = true;
                    }
                }
            }
            seen.iter().all(|&s| s)
        })
        .map(u32::count_ones)
        .min()
        .unwrap() as usize
}

fn status(home: &Path) -> serde_json::Value {
    serde_json::from_str(&shoal(home, &["--json", "status"])).unwrap()
}

fn main() {
    let per_feed: usize = std::env::var("SHOAL_BENCH_MSGS_PER_FEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let hold: f64 = std::env::var("SHOAL_BENCH_HOLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.3);
    let root = tempfile::tempdir().unwrap();
    let root = root.path();

    // The feeds, and which peer holds which.
    let feeds: Vec<(String, Vec<Vec<u8>>)> = (0..FEEDS)
        .map(|a| {
            let kp = author_key(a);
            let ts = |s: usize| 1_600_000_000_000.0 + (s * FEEDS + a) as f64;
            let msgs = sign_feed(&kp, per_feed, ts, |s, _| {
                let mut c = shoal::feed::json::Object::new();
                c.insert("type", Value::from("post"));
                c.insert("text", Value::from(format!("feed {a}, message {s}")));
                Value::Object(c)
            });
            let lines = msgs
                .iter()
                .map(|m| {
                    let mut line = br#"{"value":"#.to_vec();
                    line.extend_from_slice(m.json());
                    line.push(b'}');
                    line
                })
                .collect();
            (kp.id().to_string(), lines)
        })
        .collect();
    let mut rng = Rng(0x05ee_d0f5_a0a1);
    let mut holds: Vec<Vec<usize>> = vec![Vec::new(); PEERS];
    for f in 0..FEEDS {
        let mut any = false;
        for h in holds.iter_mut() {
            if rng.next() < hold {
                h.push(f);
                any = true;
            }
        }
        if !any {
            holds[(rng.next() * PEERS as f64) as usize % PEERS].push(f);
        }
    }

    // The peers: each follows and holds its subset.
    let mut peers = Vec::new();
    for (p, subset) in holds.iter().enumerate() {
        let dir = home(root, &format!("peer{p}"), 0x70 + p as u8, "hops = 1\n");
        let dump = root.join(format!("peer{p}.ndjson"));
        let mut text = Vec::new();
        for &f in subset {
            follow(&dir, &feeds[f].0);
            for line in &feeds[f].1 {
                text.extend_from_slice(line);
                text.push(b'\n');
            }
        }
        fs::write(&dump, text).unwrap();
        shoal(&dir, &["import", dump.to_str().unwrap()]);
        peers.push((dir, free_port()));
    }

    // The node: follows every feed, announces every peer.
    let me = home(root, "me", 0x6f, "hops = 1\ndial_private = true\n");
    for (id, _) in &feeds {
        follow(&me, id);
    }
    for (p, (_, port)) in peers.iter().enumerate() {
        let key = Keypair::from_seed(&[0x70 + p as u8; 32]).id();
        publish(
            &me,
            &format!(
                r#"{{"type":"pub","address":{{"host":"127.0.0.1","port":{port},"key":"{key}"}}}}"#
            ),
        );
    }
    let own = status(&me)["messages"].as_u64().unwrap();
    let target = own + (FEEDS * per_feed) as u64;

    let _running: Vec<Serve> = peers
        .iter()
        .map(|(d, port)| Serve::start_logged(d, *port, "info"))
        .collect();
    let start = Instant::now();
    let _node = Serve::start_logged(&me, free_port(), "info");
    let (mut most, mut current_at, mut at_current) = (0u64, None, 0u64);
    let mut samples = Vec::new();
    loop {
        let s = status(&me);
        let (messages, connected) = (
            s["messages"].as_u64().unwrap(),
            s["peers"].as_u64().unwrap(),
        );
        let t = start.elapsed();
        most = most.max(connected);
        samples.push((t, connected, messages));
        if current_at.is_none() && messages >= target {
            current_at = Some(t);
            at_current = connected;
        }
        if let Some(c) = current_at
            && t >= c + Duration::from_secs(30)
        {
            break;
        }
        if t > Duration::from_secs(180) {
            let log = fs::read_to_string(me.join("serve.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "not every feed arrived within 3 minutes: {messages} of {target}\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let settled = samples.last().unwrap().1;
    let current_at = current_at.unwrap();
    let sizes: Vec<usize> = holds.iter().map(Vec::len).collect();

    println!(
        "peer picker, {FEEDS} feeds of {per_feed} messages followed, {PEERS} peers announced, each holding a feed with probability {hold}"
    );
    println!("feeds each peer holds: {sizes:?}");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| every feed current after | {:.1} s |",
        current_at.as_secs_f64()
    );
    println!("| connections at most at once | {most} |");
    println!("| connections when every feed was current | {at_current} |");
    println!("| connections 30 s later (settled) | {settled} |");
    println!(
        "| fewest peers that hold every feed | {} |",
        smallest_cover(&holds)
    );
    println!("| dialling every peer | {PEERS} |");
    let timeline: Vec<String> = samples
        .iter()
        .step_by(8)
        .map(|(t, c, m)| format!("{:.0}s:{c}c/{m}m", t.as_secs_f64()))
        .collect();
    println!(
        "timeline (time: connections/messages): {}",
        timeline.join(" ")
    );
}
