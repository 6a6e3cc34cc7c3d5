//! Data shared by the benchmarks: a deterministic dump of signed messages.
// Each benchmark uses only part of this module.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use shoal::crypto::Keypair;
use shoal::feed::{self, FeedState, Object, Value};

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

/// Writes `total` messages of [`AUTHORS`] feeds as `{key, value, timestamp}`
/// lines, interleaved round-robin as a peer's receive log would be.
pub fn generate(path: &Path, total: usize) {
    let keys: Vec<Keypair> = (0..AUTHORS).map(author_key).collect();
    let per = total / AUTHORS;
    // Each author's feed is built in parallel, then lines are interleaved
    // round-robin as a peer's receive log would be.
    let feeds: Vec<Vec<Vec<u8>>> = keys
        .par_iter()
        .enumerate()
        .map(|(a, kp)| {
            let mut state: Option<FeedState> = None;
            let mut lines = Vec::with_capacity(per);
            for s in 0..per {
                let mut c = Object::new();
                c.insert("type", Value::from("post"));
                c.insert("text", Value::from(text_for(a * per + s)));
                if s > 0 && s % 5 == 0 {
                    if let Some(st) = &state {
                        c.insert("root", Value::from(st.id.to_string()));
                    }
                }
                let ts = 1_600_000_000_000.0 + (s * AUTHORS + a) as f64;
                let v = feed::build(kp, state.as_ref(), ts, Value::Object(c), None);
                let m =
                    feed::validate(state.as_ref(), None, v).expect("generated message is valid");
                state = Some(m.state());
                let mut line = b"{\"key\":\"".to_vec();
                line.extend_from_slice(m.id().to_string().as_bytes());
                line.extend_from_slice(b"\",\"value\":");
                line.extend_from_slice(m.json());
                line.extend_from_slice(format!(",\"timestamp\":{ts}}}").as_bytes());
                lines.push(line);
            }
            lines
        })
        .collect();
    let mut w = std::io::BufWriter::new(fs::File::create(path).unwrap());
    for s in 0..per {
        for f in &feeds {
            w.write_all(&f[s]).unwrap();
            w.write_all(b"\n").unwrap();
        }
    }
    w.flush().unwrap();
}

/// The deterministic identity of author `a` of a generated dump.
pub fn author_key(a: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(a as u64 + 1).to_le_bytes());
    Keypair::from_seed(&seed)
}
