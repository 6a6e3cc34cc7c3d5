//! Blob transfer on loopback, side by side with the JavaScript ssb-server
//! in one run: 8 blobs of 5 MiB less a byte (5,242,879 bytes: not a
//! multiple of 64 KiB, which JavaScript peers cannot send each other)
//! fetched one after the other
//! 1. shoal to shoal (`shoal blob get --wait` for each, through the
//!    fetching node's control socket),
//! 2. ssb-server to shoal (the same),
//! 3. ssb-server to ssb-server (`blobs.want` of each over one client
//!    connection, `tests/js/blobs.js want-all`),
//!
//! with the peak resident memory of each shoal node. Both ssb-servers run
//! with TCP_NODELAY.
//!
//! Run: `cargo bench --bench blobs` (needs node and the refpeer kit at
//! `SHOAL_REFPEER`, default `../shared/refpeer`). Prints one table.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod nodes;

use nodes::{Serve, free_port, js, kit, shoal};

/// Both ssb-servers run with TCP_NODELAY.
const NODELAY: &[(&str, &str)] = &[("NODELAY", "1")];

const BLOBS: usize = 8;
const SIZE: usize = 5 * 1024 * 1024 - 1;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/js/blobs.js PEER ARGS…`: its JSON answer.
fn blobs_js(kit: &Path, home: &Path, peer: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("node")
        .arg("-r")
        .arg(kit.join("scripts/nodelay.js"))
        .arg(repo().join("tests/js/blobs.js"))
        .arg(peer)
        .args(args)
        .env("REFPEER_HOME", home)
        .env("SHOAL_REFPEER", kit)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "blobs.js {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("blobs.js prints JSON")
}

/// `BLOBS` files of `SIZE` bytes, each different.
fn files(dir: &Path) -> Vec<PathBuf> {
    (0..BLOBS)
        .map(|i| {
            let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let bytes: Vec<u8> = (0..SIZE)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let path = dir.join(format!("blob{i}.png"));
            fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

/// `shoal blob get --wait` of each id through `home`'s node: the time.
fn fetch_all(home: &Path, ids: &[String]) -> Duration {
    let t0 = Instant::now();
    for id in ids {
        shoal(home, &["blob", "get", id, "--wait", "300"]);
    }
    t0.elapsed()
}

fn mb_s(d: Duration) -> f64 {
    (BLOBS * SIZE) as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-blobs");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let files = files(&work);
    let kit = kit();
    let rp = work.join("refpeer");
    fs::create_dir_all(&rp).unwrap();
    js(&kit, &rp, &["bin/install.sh"], NODELAY);

    // 1. shoal to shoal.
    let (a, b) = (work.join("a"), work.join("b"));
    shoal(&a, &["init"]);
    shoal(&b, &["init"]);
    let ids: Vec<String> = files
        .iter()
        .map(|f| shoal(&a, &["blob", "add", f.to_str().unwrap()]))
        .collect();
    let (pa, pb) = (free_port(), free_port());
    let sa = Serve::start(&a, pa);
    let sb = Serve::start(&b, pb);
    shoal(&b, &["connect", &shoal(&a, &["address"])]);
    let shoal_shoal = fetch_all(&b, &ids);
    let (peak_sender, peak_fetcher) = (sa.peak_mib(), sb.peak_mib());
    drop((sa, sb));

    // 2. ssb-server to shoal, 3. ssb-server to ssb-server.
    js(
        &kit,
        &rp,
        &["bin/mkpeer.sh", "src", &free_port().to_string()],
        NODELAY,
    );
    js(
        &kit,
        &rp,
        &["bin/mkpeer.sh", "dst", &free_port().to_string()],
        NODELAY,
    );
    js(&kit, &rp, &["bin/start.sh", "src", "900"], NODELAY);
    js(&kit, &rp, &["bin/start.sh", "dst", "900"], NODELAY);
    let js_ids: Vec<String> = files
        .iter()
        .map(|f| {
            let out = blobs_js(&kit, &rp, "src", &["add", f.to_str().unwrap()]);
            out["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(js_ids, ids, "the same bytes, the same ids");
    let src_addr = js(&kit, &rp, &["bin/info.sh", "src", "address"], NODELAY);
    let c = work.join("c");
    shoal(&c, &["init"]);
    let sc = Serve::start(&c, free_port());
    shoal(&c, &["connect", &src_addr]);
    let js_shoal = fetch_all(&c, &js_ids);
    let peak_from_js = sc.peak_mib();
    drop(sc);
    js(
        &kit,
        &rp,
        &["bin/sbot.sh", "dst", "gossip.connect", &src_addr],
        NODELAY,
    );
    let mut args = vec!["want-all"];
    args.extend(js_ids.iter().map(String::as_str));
    let out = blobs_js(&kit, &rp, "dst", &args);
    let js_js = Duration::from_millis(out["ms"].as_u64().unwrap());
    js(&kit, &rp, &["bin/stop.sh", "src"], NODELAY);
    js(&kit, &rp, &["bin/stop.sh", "dst"], NODELAY);

    println!(
        "blobs: {BLOBS} blobs of {SIZE} bytes ({:.1} MB) fetched one after the other on loopback",
        (BLOBS * SIZE) as f64 / 1e6
    );
    println!("| from -> to | time | MB/s | peak memory of the shoal nodes |");
    println!("|---|---|---|---|");
    println!(
        "| shoal -> shoal | {:.2} s | {:.1} | sender {peak_sender:.0} MiB, fetcher {peak_fetcher:.0} MiB |",
        shoal_shoal.as_secs_f64(),
        mb_s(shoal_shoal)
    );
    println!(
        "| ssb-server -> shoal | {:.2} s | {:.1} | fetcher {peak_from_js:.0} MiB |",
        js_shoal.as_secs_f64(),
        mb_s(js_shoal)
    );
    println!(
        "| ssb-server -> ssb-server | {:.2} s | {:.1} | |",
        js_js.as_secs_f64(),
        mb_s(js_js)
    );
}
