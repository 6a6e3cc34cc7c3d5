//! Replication benchmark, side by side with the JavaScript ssb-server in
//! one run:
//! 1. shoal to shoal: 100,000 messages of 100 feeds over loopback (secret
//!    handshake, box stream, muxrpc, EBT, batch validation, storage), with
//!    both nodes' peak memory;
//! 2. the anchor: ssb-server to ssb-server, 10,000 messages by EBT (the kit's
//!    `replicate-bench.js`), stock (as the kit's figure of about 2,150
//!    msg/s was measured) and again with TCP_NODELAY on both peers;
//! 3. ssb-server (with TCP_NODELAY) to shoal: the same 10,000 messages.
//!
//! Run: `cargo bench --bench replicate` (needs node and the refpeer kit at
//! `SHOAL_REFPEER`, default `../shared/refpeer`). `SHOAL_BENCH_MSGS` and
//! `SHOAL_BENCH_JS_MSGS` change the counts. Prints one table.

mod common;
mod nodes;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{AUTHORS, author_key, generate};
use nodes::{Serve, free_port, js, kit, messages_of, shoal, wait_messages as wait_for};

fn node_script(kit: &Path, home: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new("node")
        .arg("-r")
        .arg(kit.join("scripts/nodelay.js"))
        .arg(kit.join("scripts").join(script))
        .args(args)
        .env("REFPEER_HOME", home)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn main() {
    let total: usize = std::env::var("SHOAL_BENCH_MSGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let js_total: usize = std::env::var("SHOAL_BENCH_JS_MSGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-replicate");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();

    // 1. shoal to shoal.
    let dump = work.join("dump.jsonl");
    generate(&dump, total);
    let a = work.join("a");
    let b = work.join("b");
    shoal(&a, &["init"]);
    shoal(&b, &["init"]);
    shoal(&a, &["import", dump.to_str().unwrap()]);
    {
        // B follows every author: its own messages, published through the CLI.
        for i in 0..AUTHORS {
            let id = author_key(i).id();
            shoal(
                &b,
                &[
                    "publish",
                    &format!(r#"{{"type":"contact","contact":"{id}","following":true}}"#),
                ],
            );
        }
    }
    let before_b = messages_of(&b);
    let (pa, pb) = (free_port(), free_port());
    let node_a = Serve::start(&a, pa);
    let node_b = Serve::start(&b, pb);
    let a_addr = shoal(&a, &["address"]);
    shoal(&b, &["connect", &a_addr]);
    let took = wait_for(&b, before_b + total as u64, Duration::from_secs(600));
    let rate_ss = total as f64 / took.as_secs_f64();
    let mem_b = node_b.stop();
    let mem_a = node_a.stop();
    eprintln!("shoal -> shoal: {total} in {took:?} ({rate_ss:.0} msg/s)");

    // 2. ssb-server to ssb-server (the anchor), twice: stock, as the kit
    // measured it (neither side sets TCP_NODELAY), and with TCP_NODELAY on
    // both sides. 3. ssb-server (with TCP_NODELAY) to shoal.
    let kit = kit();
    let rp = work.join("refpeer");
    fs::create_dir_all(&rp).unwrap();
    js(&kit, &rp, &["bin/install.sh"], &[]);
    let pbig = free_port();
    js(&kit, &rp, &["bin/mkpeer.sh", "big", &pbig.to_string()], &[]);
    for (name, port) in [("c", free_port()), ("d", free_port())] {
        js(&kit, &rp, &["bin/mkpeer.sh", name, &port.to_string()], &[]);
    }
    struct Stop(PathBuf, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            for p in ["big", "c", "d"] {
                let _ = Command::new(self.0.join("bin/stop.sh"))
                    .arg(p)
                    .env("REFPEER_HOME", &self.1)
                    .output();
            }
        }
    }
    let _stop = Stop(kit.clone(), rp.clone());
    js(
        &kit,
        &rp,
        &["bin/start.sh", "big", "900"],
        &[("NODELAY", "1")],
    );
    node_script(
        &kit,
        &rp,
        "bulk-publish.js",
        &["big", &js_total.to_string(), "100"],
    );
    // Restart big stock for the stock anchor.
    js(&kit, &rp, &["bin/stop.sh", "big"], &[]);
    js(&kit, &rp, &["bin/start.sh", "big", "900"], &[]);
    js(&kit, &rp, &["bin/start.sh", "c", "900"], &[]);
    let anchor_ms = |to: &str| -> f64 {
        let out = node_script(&kit, &rp, "replicate-bench.js", &["big", to, "600"]);
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        eprintln!("ssb-server -> ssb-server ({to}): {v}");
        v["ms"].as_f64().unwrap()
    };
    let stock_ms = anchor_ms("c");
    js(&kit, &rp, &["bin/stop.sh", "big"], &[]);
    js(&kit, &rp, &["bin/stop.sh", "c"], &[]);
    js(
        &kit,
        &rp,
        &["bin/start.sh", "big", "900"],
        &[("NODELAY", "1")],
    );
    js(
        &kit,
        &rp,
        &["bin/start.sh", "d", "900"],
        &[("NODELAY", "1")],
    );
    let nodelay_ms = anchor_ms("d");
    let rate_stock = js_total as f64 / (stock_ms / 1000.0);
    let rate_nodelay = js_total as f64 / (nodelay_ms / 1000.0);

    let big_id = js(&kit, &rp, &["bin/info.sh", "big", "id"], &[]);
    let big_addr = js(&kit, &rp, &["bin/info.sh", "big", "address"], &[]);
    let c = work.join("shoal-c");
    shoal(&c, &["init"]);
    shoal(
        &c,
        &[
            "publish",
            &format!(r#"{{"type":"contact","contact":"{big_id}","following":true}}"#),
        ],
    );
    let node_c = Serve::start(&c, free_port());
    let before_c = messages_of(&c);
    shoal(&c, &["connect", &big_addr]);
    let took_c = wait_for(&c, before_c + js_total as u64, Duration::from_secs(600));
    let rate_jc = js_total as f64 / took_c.as_secs_f64();
    let mem_c = node_c.stop();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| shoal -> shoal, {total} messages of {AUTHORS} feeds | {:.2} s, **{rate_ss:.0} msg/s** |",
        took.as_secs_f64()
    );
    println!("| peak memory, receiving / sending shoal | {mem_b:.0} MB / {mem_a:.0} MB |");
    println!(
        "| anchor: ssb-server -> ssb-server (EBT, stock), {js_total} messages | {:.2} s, {rate_stock:.0} msg/s |",
        stock_ms / 1000.0
    );
    println!(
        "| ssb-server -> ssb-server (EBT, TCP_NODELAY both sides), {js_total} messages | {:.2} s, {rate_nodelay:.0} msg/s |",
        nodelay_ms / 1000.0
    );
    println!(
        "| shoal -> shoal / anchor (stock; TCP_NODELAY) | **{:.1}x**; {:.1}x |",
        rate_ss / rate_stock,
        rate_ss / rate_nodelay
    );
    println!(
        "| ssb-server (TCP_NODELAY) -> shoal (EBT), {js_total} messages | {:.2} s, **{rate_jc:.0} msg/s** (peak memory {mem_c:.0} MB) |",
        took_c.as_secs_f64()
    );
    println!(
        "| ssb-server -> shoal / ssb-server -> ssb-server (stock; TCP_NODELAY) | **{:.1}x**; {:.1}x |",
        rate_jc / rate_stock,
        rate_jc / rate_nodelay
    );
}
