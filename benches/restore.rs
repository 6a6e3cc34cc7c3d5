//! Restoring an identity from its recovery phrase, on loopback: a feed of
//! 20,000 messages is given to a friend's node (the anchor: a plain
//! replication of that feed), the original home is gone, and a new home
//! made with `shoal init --phrase` fetches it back from the friend. Timed:
//! from connecting until the home may publish (its feed back, whole), and
//! the next message it publishes is checked to chain on the restored one.
//!
//! Run: `cargo bench --bench restore`. `SHOAL_BENCH_MSGS` changes the
//! count. Prints one table.

mod common;
mod nodes;

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{sign_feed, text_for};
use nodes::{Serve, free_port, messages_of, shoal, wait_messages};
use shoal::crypto::Keypair;
use shoal::feed::{Object, Value};

fn main() {
    let total: usize = std::env::var("SHOAL_BENCH_MSGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-restore");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let me = Keypair::from_seed(&[0x42; 32]);
    let id = me.id().to_string();

    // The old home: our feed of `total` posts.
    let dump = work.join("ours.ndjson");
    {
        let msgs = sign_feed(
            &me,
            total,
            |s| 1_600_000_000_000.0 + s as f64,
            |s, _| {
                let mut c = Object::new();
                c.insert("type", Value::from("post"));
                c.insert("text", Value::from(text_for(s)));
                Value::Object(c)
            },
        );
        let mut w = std::io::BufWriter::new(fs::File::create(&dump).unwrap());
        for m in &msgs {
            w.write_all(m.json()).unwrap();
            w.write_all(b"\n").unwrap();
        }
    }
    let secret = work.join("me.secret");
    shoal::crypto::write_secret_file(&secret, &me).unwrap();
    let old = work.join("old");
    shoal(&old, &["init", "--secret", secret.to_str().unwrap()]);
    shoal(&old, &["restore", "--done", "--yes"]);
    shoal(&old, &["import", dump.to_str().unwrap()]);

    // The anchor: a friend replicates it, as any follower would.
    let friend = work.join("friend");
    shoal(&friend, &["init"]);
    shoal(
        &friend,
        &[
            "publish",
            &format!(r#"{{"type":"contact","contact":"{id}","following":true}}"#),
        ],
    );
    let node_old = Serve::start(&old, free_port());
    let node_friend = Serve::start(&friend, free_port());
    shoal(&friend, &["connect", &shoal(&old, &["address"])]);
    let replicated = wait_messages(&friend, 1 + total as u64, Duration::from_secs(600));
    drop(node_old);

    // The old home is lost; the phrase restores the identity elsewhere.
    let phrase = shoal::crypto::phrase_of(&me);
    let new = work.join("new");
    shoal(&new, &["init", "--phrase", &phrase]);
    let node_new = Serve::start(&new, free_port());
    let t0 = Instant::now();
    shoal(&new, &["connect", &shoal(&friend, &["address"])]);
    let restored = loop {
        let status = shoal(&new, &["--json", "status"]);
        let v: serde_json::Value = serde_json::from_str(&status).unwrap();
        if v.get("publishing_held").is_none() {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "not restored: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(messages_of(&new), total as u64);
    shoal(&new, &["post", "the first post after the restore"]);
    let since = total.to_string();
    let last = shoal(&new, &["log", "--author", &id, "--since", &since]);
    assert!(
        last.contains(&format!("\"sequence\":{}", total + 1)),
        "{last}"
    );
    drop((node_new, node_friend));

    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!("restore: our feed of {total} messages, shoal to shoal on loopback");
    println!("| run | time | rate |");
    println!("| --- | ---: | ---: |");
    println!(
        "| a friend replicates the feed (anchor) | {:.2} s | {:.0} msg/s |",
        replicated.as_secs_f64(),
        rate(replicated)
    );
    println!(
        "| a home restored from the phrase fetches it, until it may publish | {:.2} s | {:.0} msg/s ({:.0}% of the anchor's rate) |",
        restored.as_secs_f64(),
        rate(restored),
        100.0 * rate(restored) / rate(replicated)
    );
}
