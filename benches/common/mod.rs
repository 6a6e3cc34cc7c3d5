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

/// Deterministic words for post texts (mixed lengths, some non-ASCII).
const WORDS: &[&str] = &[
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
                .map(|(s, m)| {
                    let mut line = b"{\"key\":\"".to_vec();
                    line.extend_from_slice(m.id().to_string().as_bytes());
                    line.extend_from_slice(b"\",\"value\":");
                    line.extend_from_slice(m.json());
                    line.extend_from_slice(format!(",\"timestamp\":{}}}", ts(s)).as_bytes());
                    line
                })
                .collect()
        })
        .collect();
    write_interleaved(path, &feeds);
}

/// The deterministic identity of author `a` of a generated dump.
pub fn author_key(a: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(a as u64 + 1).to_le_bytes());
    Keypair::from_seed(&seed)
}
