//! Replication through a room against direct, and a room's cost, on
//! loopback:
//! 1. 20,000 messages of 100 feeds from one shoal node to another, direct,
//!    then through a shoal room (both join it; the only way they meet);
//! 2. the room's CPU time per relayed MB in that run (utime + stime of its
//!    process over the messages' JSON bytes);
//! 3. the room's resident memory with 500 attendants holding one idle
//!    tunnel each (250 pairs, clients made with the library in this
//!    process).
//!
//! Run: `cargo bench --bench room`. `SHOAL_BENCH_MSGS` changes the count.
//! Prints one table.

mod common;
mod nodes;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{AUTHORS, author_key, generate};
use nodes::{Serve, free_port, messages_of, shoal, wait_messages};
use shoal::crypto::Keypair;
use shoal::rpc;

/// A fetching home following every author of the dump and the node that
/// serves them (`source`): a node opens tunnels only to feeds it
/// replicates.
fn fetcher(work: &Path, name: &str, source: &str) -> PathBuf {
    let home = work.join(name);
    shoal(&home, &["init"]);
    shoal(
        &home,
        &[
            "publish",
            &format!(r#"{{"type":"contact","contact":"{source}","following":true}}"#),
        ],
    );
    for i in 0..AUTHORS {
        let id = author_key(i).id();
        shoal(
            &home,
            &[
                "publish",
                &format!(r#"{{"type":"contact","contact":"{id}","following":true}}"#),
            ],
        );
    }
    home
}

/// 500 attendants as 250 pairs, each pair with one tunnel open and idle:
/// the room's resident memory, MiB.
fn attendants(room_home: &Path, room: &Serve) -> f64 {
    let addr: shoal::net::MultiAddr = shoal(room_home, &["address"]).parse().unwrap();
    let room_id = addr.key;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let net_key: [u8; 32] = shoal::crypto::b64_decode(shoal::home::MAIN_NETWORK_KEY)
        .unwrap()
        .try_into()
        .unwrap();
    let rss = rt.block_on(async {
        let mut keep = Vec::new();
        for pair in 0..250u32 {
            let keys: Vec<Keypair> = (0..2u32)
                .map(|k| {
                    let mut seed = [0u8; 32];
                    seed[..4].copy_from_slice(&(pair * 2 + k).to_be_bytes());
                    seed[31] = 0x7e;
                    Keypair::from_seed(&seed)
                })
                .collect();
            let mut handles = Vec::new();
            for k in &keys {
                let (r, w, _) = shoal::net::connect_to(&addr, &net_key, k).await.unwrap();
                let (handle, mut incoming, task) = rpc::start(r, w, rpc::Options::default());
                // The target side: accept a tunnel, keep it open, say nothing.
                tokio::spawn(async move {
                    let mut held = Vec::new();
                    while let Some(req) = incoming.recv().await {
                        match req.responder {
                            rpc::Responder::Stream(s) if req.name.join(".") == "tunnel.connect" => {
                                held.push(s.into_parts());
                            }
                            other => {
                                let _ = other.not_found().await;
                            }
                        }
                    }
                });
                handles.push((handle, task));
            }
            let target = keys[1].id().to_string();
            let args = serde_json::json!([{"portal": room_id.to_string(), "target": target}]);
            let tunnel = handles[0]
                .0
                .call_duplex(&["tunnel", "connect"], args)
                .await
                .expect("a tunnel");
            keep.push((handles, tunnel));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = room.rss_mib();
        drop(keep);
        rss
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    rss
}

fn main() {
    let total: usize = std::env::var("SHOAL_BENCH_MSGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-room");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let dump = work.join("dump.ndjson");
    generate(&dump, total);
    let a = work.join("a");
    shoal(&a, &["init"]);
    shoal(&a, &["import", dump.to_str().unwrap()]);

    // Direct.
    let a_id = shoal(&a, &["whoami"]);
    let b = fetcher(&work, "b", &a_id);
    let before = messages_of(&b);
    let node_a = Serve::start(&a, free_port());
    let node_b = Serve::start(&b, free_port());
    shoal(&b, &["connect", &shoal(&a, &["address"])]);
    let direct = wait_messages(&b, before + total as u64, Duration::from_secs(600));
    drop(node_b);

    // Through a room.
    let r = work.join("room");
    shoal(&r, &["init"]);
    // A room's many attendants all come from 127.0.0.1 here.
    let config: String = fs::read_to_string(r.join("config.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("max_connections"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(
        r.join("config.toml"),
        config + "room = { name = \"bench room\" }\nmax_connections = 1200\nmax_connections_per_ip = 0\n",
    )
    .unwrap();
    let room = Serve::start(&r, free_port());
    let c = fetcher(&work, "c", &a_id);
    // A node accepts tunnels only from feeds within its hops.
    let c_id = shoal(&c, &["whoami"]);
    shoal(
        &a,
        &[
            "publish",
            &format!(r#"{{"type":"contact","contact":"{c_id}","following":true}}"#),
        ],
    );
    let before = messages_of(&c);
    let node_c = Serve::start(&c, free_port());
    let room_addr = shoal(&r, &["address"]);
    let cpu0 = room.cpu_secs();
    shoal(&a, &["room", "join", &room_addr]);
    shoal(&c, &["room", "join", &room_addr]);
    let through = wait_messages(&c, before + total as u64, Duration::from_secs(600));
    let cpu = room.cpu_secs() - cpu0;
    let payload_mb = fs::metadata(&dump).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    drop((node_a, node_c));
    let idle_rss = room.rss_mib();
    let rss_500 = attendants(&r, &room);

    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!("room: {total} messages of {AUTHORS} feeds, shoal to shoal on loopback");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| direct | {:.2} s, {:.0} msg/s |",
        direct.as_secs_f64(),
        rate(direct)
    );
    println!(
        "| through a shoal room | {:.2} s, {:.0} msg/s ({:.0}% of direct) |",
        through.as_secs_f64(),
        rate(through),
        100.0 * rate(through) / rate(direct)
    );
    println!(
        "| room CPU per relayed MB of messages | {:.3} s ({cpu:.2} s for {payload_mb:.1} MB) |",
        cpu / payload_mb.max(0.001)
    );
    println!("| room memory, no attendant | {idle_rss:.0} MiB |");
    println!("| room memory, 500 attendants with an idle tunnel each | {rss_500:.0} MiB |");
}
