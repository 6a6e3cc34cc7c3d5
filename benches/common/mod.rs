//! Data shared by the benchmarks: a deterministic dump of signed messages.
//! The integration tests include it too (as `dumps`), for their own dumps.
// Each benchmark (and the tests) use only part of this module.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use shoal::crypto::Keypair;
use shoal::feed::{self, FeedState, Object, Value, VerifiedMsg};

/// Authors in a generated dump.
pub const AUTHORS: usize = 100;

/// A number from the environment variable `name`, else `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A JSON object of these fields, in this order.
pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut o = Object::new();
    for (k, v) in pairs {
        o.insert(k, v);
    }
    Value::Object(o)
}

/// Deterministic words for post texts (mixed lengths, some non-ASCII).
pub const WORDS: &[&str] = &[
    "shoal", "gossip", "feed", "peer", "sea", "tide", "boat", "harbour", "käse", "über", "signal",
    "trust", "log", "append", "verify", "🐟", "波", "reef", "current", "drift",
];

/// A post text of mixed length.
pub fn text_for(i: usize) -> String {
    let mut x = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let n = 8 + (x % 40) as usize;
    let mut s = String::new();
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
    }
    s
}

/// Signs feed `kp` of `n` messages: message `s` (from 0) claims time
/// `ts(s)` and says `content(s, state before it)`.
pub fn sign_feed(
    kp: &Keypair,
    n: usize,
    ts: impl Fn(usize) -> f64,
    mut content: impl FnMut(usize, Option<&FeedState>) -> Value,
) -> Vec<VerifiedMsg> {
    let mut state: Option<FeedState> = None;
    let mut out = Vec::with_capacity(n);
    for s in 0..n {
        let c = content(s, state.as_ref());
        let v = feed::build(kp, state.as_ref(), ts(s), c, None);
        let m = feed::validate(state.as_ref(), None, v).expect("generated message is valid");
        state = Some(m.state());
        out.push(m);
    }
    out
}

/// Writes the feeds' lines interleaved round-robin, as a peer's receive
/// log would hold them (every feed has the same length).
pub fn write_interleaved(path: &Path, feeds: &[Vec<Vec<u8>>]) {
    let mut w = std::io::BufWriter::new(fs::File::create(path).unwrap());
    for s in 0..feeds.first().map_or(0, Vec::len) {
        for f in feeds {
            w.write_all(&f[s]).unwrap();
            w.write_all(b"\n").unwrap();
        }
    }
    w.flush().unwrap();
}

/// Writes `total` messages of [`AUTHORS`] feeds as `{key, value, timestamp}`
/// lines, interleaved round-robin as a peer's receive log would be.
pub fn generate(path: &Path, total: usize) {
    let per = total / AUTHORS;
    // Each author's feed is built in parallel.
    let feeds: Vec<Vec<Vec<u8>>> = (0..AUTHORS)
        .into_par_iter()
        .map(|a| {
            let ts = |s: usize| 1_600_000_000_000.0 + (s * AUTHORS + a) as f64;
            let msgs = sign_feed(&author_key(a), per, ts, |s, state| {
                let mut c = Object::new();
                c.insert("type", Value::from("post"));
                c.insert("text", Value::from(text_for(a * per + s)));
                if s > 0
                    && s % 5 == 0
                    && let Some(st) = state
                {
                    c.insert("root", Value::from(st.id.to_string()));
                }
                Value::Object(c)
            });
            msgs.iter()
                .enumerate()
                .map(|(s, m)| kvt_line(m, ts(s)))
                .collect()
        })
        .collect();
    write_interleaved(path, &feeds);
}

/// A dump line: `{"key":ID,"value":MESSAGE,"timestamp":TIME}`.
pub fn kvt_line(m: &VerifiedMsg, timestamp: f64) -> Vec<u8> {
    let mut line = b"{\"key\":\"".to_vec();
    line.extend_from_slice(m.id().to_string().as_bytes());
    line.extend_from_slice(b"\",\"value\":");
    line.extend_from_slice(m.json());
    line.extend_from_slice(format!(",\"timestamp\":{timestamp}}}").as_bytes());
    line
}

/// splitmix64: a small seeded generator, so that what a benchmark
/// chooses is the same every run.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `k` distinct values of `0..n`, none equal to `not`.
    pub fn pick(&mut self, n: usize, k: usize, not: Option<usize>) -> Vec<usize> {
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let x = self.below(n);
            if Some(x) != not && !out.contains(&x) {
                out.push(x);
            }
        }
        out
    }
}

/// The deterministic identity of author `a` of a generated dump.
pub fn author_key(a: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(a as u64 + 1).to_le_bytes());
    Keypair::from_seed(&seed)
}
