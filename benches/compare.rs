//! The Rust steps of `bench/compare.sh`, which runs shoal and ssb-server
//! side by side on the same data (not a benchmark by itself):
//! - `gen FILE N`: writes the benchmarks' dump of N messages of 100 authors
//!   (the data of `cargo bench --bench import`) and prints the authors'
//!   feed ids, one per line;
//! - `publish HOME N INFLIGHT`: publishes N posts (the texts of the refpeer
//!   kit's `bulk-publish.js`) through the control socket of the node running
//!   on HOME, over INFLIGHT connections each sending its share back to back
//!   without waiting for answers; prints
//!   `{"published":N,"inflight":W,"ms":…,"msgs_per_s":…}`.
//!
//! Run through cargo: `cargo bench --bench compare -- gen FILE N` (cargo adds
//! `--bench`, which is ignored).

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use common::{AUTHORS, author_key, generate};

fn usage() -> ! {
    eprintln!("usage: compare gen FILE N | compare publish HOME N INFLIGHT");
    std::process::exit(2)
}

/// Publishes posts `from..to` over one control connection; the number of
/// answers that were not `ok`.
fn publish_share(home: &Path, from: usize, to: usize) -> usize {
    let stream = UnixStream::connect(home.join("shoal.sock")).expect("the node's control socket");
    let mut w = stream.try_clone().expect("socket clone");
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in from..to {
            let text = format!("bulk message #{i} {}", "x".repeat(i % 50));
            let content = serde_json::json!({"type": "post", "text": text}).to_string();
            buf.extend_from_slice(
                serde_json::json!({"cmd": "publish", "content": content})
                    .to_string()
                    .as_bytes(),
            );
            buf.push(b'\n');
            if buf.len() > 1 << 16 {
                w.write_all(&buf).expect("write to the control socket");
                buf.clear();
            }
        }
        w.write_all(&buf).expect("write to the control socket");
    });
    let mut failed = 0;
    let mut lines = BufReader::new(stream).lines();
    for _ in from..to {
        let line = lines
            .next()
            .expect("an answer per request")
            .expect("read from the control socket");
        let v: serde_json::Value = serde_json::from_str(&line).expect("answers are JSON");
        if v.get("ok").is_none() {
            eprintln!("publish failed: {line}");
            failed += 1;
        }
    }
    writer.join().expect("writer");
    failed
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["gen", file, n] => {
            let n: usize = n.parse().unwrap_or_else(|_| usage());
            generate(Path::new(file), n);
            for a in 0..AUTHORS {
                println!("{}", author_key(a).id());
            }
        }
        ["publish", home, n, inflight] => {
            let n: usize = n.parse().unwrap_or_else(|_| usage());
            let w: usize = inflight.parse().unwrap_or_else(|_| usage());
            let w = w.clamp(1, n.max(1));
            let home = Path::new(home);
            let t = Instant::now();
            let failed: usize = std::thread::scope(|s| {
                let shares: Vec<_> = (0..w)
                    .map(|k| {
                        let (from, to) = (n * k / w, n * (k + 1) / w);
                        s.spawn(move || publish_share(home, from, to))
                    })
                    .collect();
                shares.into_iter().map(|h| h.join().expect("share")).sum()
            });
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if failed > 0 {
                eprintln!("{failed} of {n} publishes failed");
                std::process::exit(1);
            }
            println!(
                "{}",
                serde_json::json!({
                    "published": n,
                    "inflight": w,
                    "ms": (ms * 10.0).round() / 10.0,
                    "msgs_per_s": (n as f64 / ms * 1000.0).round(),
                })
            );
        }
        _ => usage(),
    }
}
