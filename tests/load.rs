//! Load: two hundred peers at once against one running node, whose own
//! command line keeps answering.
//!
//! Owns the test that opens 200 concurrent incoming connections to one
//! `shoal serve`, each a real peer with its own identity: TCP, secret
//! handshake, box stream, muxrpc, and one `createHistoryStream` of a
//! 1000-message feed read to its end and checked message by message. All 200
//! stay open together, then say goodbye. It asserts:
//! - the node is set to `max_connections = 266`, of which incoming peers
//!   may take 200 (a quarter is kept for dialling), and to no limit per
//!   address (all 200 come from 127.0.0.1), so it accepts all 200
//!   (it lists 200 peers and holds a socket for each); a 201st peer arriving
//!   while they are held gets through the handshake and is then closed by
//!   the node, unserved, with the reason in its log; beyond that the node is
//!   not disturbed (the 200 were already served, and a new peer is served
//!   once they have left);
//! - meanwhile `shoal status` keeps answering through the control socket
//!   within a second (each probe is the median of three calls, see
//!   [`CLI_BOUND`]);
//! - the node's resident memory stays under 300 MB throughout;
//! - once the peers have left, the node holds no connection and, within a
//!   few seconds, no more file descriptors than before the load (a small
//!   slack for what the runtime opens lazily).
//!
//! And one regression test found by `cargo bench --bench pub_load`: a peer
//! whose `ebt.replicate` reaches a busy node after its grace is replicated by
//! EBT alone from then on; and one that a node checks messages on threads
//! below its own priority (README "Import": without it, its writer fell
//! behind two busy checking threads).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use shoal::crypto::{FeedId, Keypair};
use shoal::feed::json as sjson;
use shoal::rpc::{Options, RpcError, RpcHandle};

use crate::cli::{make_feed, write_lines};
use crate::common::test_key;
use crate::multinode::main_net_key;
use crate::nodes::{ServeNode, rss_kib, wait_for};

/// Peers connected at once.
const PEERS: usize = 200;
/// Feeds on the node, and messages in each: peer `i` reads feed `i % FEEDS`.
const FEEDS: usize = 10;
const PER_FEED: usize = 1000;
/// How long `shoal status` may take while the node is under load. A single
/// call can be stalled by the scheduler of a loaded two-core machine for
/// reasons that have nothing to do with the node, so each probe makes three
/// calls in a row and the bound applies to their median: one slow call in
/// three passes, a node that keeps its command line waiting does not.
const CLI_BOUND: Duration = Duration::from_secs(1);
/// Most resident memory the node may use under the load.
const RSS_BOUND_KIB: u64 = 300 << 10;
/// File descriptors the node may hold after the load beyond what it held
/// before.
const FD_SLACK: usize = 4;

/// The number of open file descriptors of a process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd of the node")
        .count()
}

/// A peer's identity, distinct for each `i`.
fn peer_key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    seed[31] = 0x10;
    Keypair::from_seed(&seed)
}

/// An open peer connection: its muxrpc handle and tasks.
struct Peer {
    rpc: RpcHandle,
    conn: tokio::task::JoinHandle<Result<(), RpcError>>,
    answering: tokio::task::JoinHandle<()>,
}

/// Connects as `keys`, and answers every request of the node with "no such
/// method" (the node asks for EBT, then pulls its own feed).
async fn connect(port: u16, node: FeedId, keys: &Keypair) -> Result<Peer, String> {
    let addr = format!("127.0.0.1:{port}");
    let (r, w, peer) = shoal::net::connect(addr.as_str(), &main_net_key(), keys, &node)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if peer != node {
        return Err(format!("handshake with {peer}, not {node}"));
    }
    let (rpc, mut incoming, conn) = shoal::rpc::start(r, w, Options::default());
    let answering = tokio::spawn(async move {
        while let Some(req) = incoming.recv().await {
            let _ = req.not_found().await;
        }
    });
    Ok(Peer {
        rpc,
        conn,
        answering,
    })
}

/// Reads `feed` with `createHistoryStream` to its end; checks that it is
/// messages 1..=n of that feed in order; returns how many came.
async fn read_feed(rpc: &RpcHandle, feed: &FeedId) -> Result<usize, String> {
    let args = json!([{"id": feed.to_string(), "seq": 1, "keys": true, "live": false}]);
    let mut source = rpc
        .call_source(&["createHistoryStream"], args)
        .await
        .map_err(|e| format!("createHistoryStream: {e}"))?;
    let mut n = 0;
    while let Some(item) = source.recv().await {
        let body = item.map_err(|e| format!("after {n} messages: {e}"))?;
        let v: serde_json::Value = body
            .parse_json()
            .map_err(|e| format!("message {} is not JSON: {e}", n + 1))?;
        let value = &v["value"];
        if value["author"] != json!(feed.to_string()) || value["sequence"] != json!(n + 1) {
            return Err(format!("message {} is not the next of {feed}: {v}", n + 1));
        }
        n += 1;
    }
    Ok(n)
}

/// One `shoal --json status` through the running node: its duration, or
/// what went wrong.
fn timed_status(home: &Path) -> Result<Duration, String> {
    let t = Instant::now();
    let out = std::process::Command::new("timeout")
        .args(["-k", "2", "20"])
        .arg(env!("CARGO_BIN_EXE_shoal"))
        .arg("--home")
        .arg(home)
        .args(["--json", "status"])
        .env_remove("SHOAL_HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run shoal: {e}"))?;
    let took = t.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "status is not JSON ({e}), exit {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if !out.status.success() || v["address"].is_null() {
        return Err(format!("status did not come from the running node: {v}"));
    }
    Ok(took)
}

/// One probe: when it began, and its three calls' durations in order (or
/// what went wrong).
type Probe = (Instant, Result<[Duration; 3], String>);

/// Probes `shoal status` until stopped: each probe the median of three calls.
struct CliProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Probe>>,
}

impl CliProbe {
    fn start(home: &Path) -> CliProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, home) = (stop.clone(), home.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut probes = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let at = Instant::now();
                let calls: Result<Vec<Duration>, String> =
                    (0..3).map(|_| timed_status(&home)).collect();
                probes.push((
                    at,
                    calls.map(|mut c| {
                        c.sort();
                        [c[0], c[1], c[2]]
                    }),
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            probes
        });
        CliProbe { stop, thread }
    }

    /// Stops probing; fails unless every probe answered with a median
    /// under [`CLI_BOUND`]. Returns the number of probes begun before
    /// `until`, the slowest median and the slowest call.
    #[track_caller]
    fn finish(self, until: Instant) -> (usize, Duration, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let probes = self.thread.join().expect("the CLI probe");
        let (mut slowest, mut slowest_call) = (Duration::ZERO, Duration::ZERO);
        for (i, (_, p)) in probes.iter().enumerate() {
            let calls = p
                .as_ref()
                .unwrap_or_else(|e| panic!("`shoal status` failed under load (probe {i}): {e}"));
            assert!(
                calls[1] < CLI_BOUND,
                "`shoal status` under load: probe {i} took {:?} / {:?} / {:?}, the median over \
                 {CLI_BOUND:?}",
                calls[0],
                calls[1],
                calls[2]
            );
            slowest = slowest.max(calls[1]);
            slowest_call = slowest_call.max(calls[2]);
        }
        let during = probes.iter().filter(|(at, _)| *at < until).count();
        (during, slowest, slowest_call)
    }
}

/// Samples a process's resident memory until stopped; the peak, in KiB.
struct RssPeak {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssPeak {
    fn start(pid: u32) -> RssPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(25));
            }
            peak.max(rss_kib(pid).unwrap_or(0))
        });
        RssPeak { stop, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the memory sampler")
    }
}

#[test]
fn two_hundred_peers_at_once_leave_the_cli_answering_and_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0x70));
    let authors: Vec<Keypair> = (0..FEEDS).map(|f| test_key(0x71 + f as u8)).collect();
    let feeds: Vec<FeedId> = authors.iter().map(Keypair::id).collect();
    let lines: Vec<Vec<u8>> = authors
        .iter()
        .flat_map(|k| make_feed(k, PER_FEED, "load"))
        .map(|(v, _)| sjson::to_compact(&v))
        .collect();
    let file = dir.path().join("feeds.jsonl");
    write_lines(&file, &lines);
    node.ok([std::ffi::OsStr::new("import"), file.as_os_str()]);
    // 266 in all leaves 200 to incoming peers.
    assert_eq!(shoal::node::incoming_limit(266), PEERS);
    node.configure("max_connections", "266");
    node.configure("max_connections_per_ip", "0");
    node.start();
    let pid = node.pid();
    // The node at rest, after a first status call. The control connection
    // of that call closes once the node reads its end: the count at rest
    // is the lowest of a few readings, not one taken while it still closes
    // (regression: an fd still closing counted as one at rest).
    node.status();
    let fds_before = (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            fd_count(pid)
        })
        .min()
        .unwrap();
    let rss_before = node.rss_kib();
    let (port, id) = (node.port, node.id);

    let rt = crate::common::runtime();
    let probe = CliProbe::start(&node.home);
    let rss = RssPeak::start(pid);
    let t0 = Instant::now();
    // All 200 at once; each reads its feed, and all stay open.
    let results: Vec<Result<Peer, String>> = rt.block_on(async {
        let tasks: Vec<_> = (0..PEERS)
            .map(|i| {
                let feed = feeds[i % FEEDS];
                tokio::spawn(async move {
                    let peer = connect(port, id, &peer_key(i)).await?;
                    let n = read_feed(&peer.rpc, &feed).await?;
                    if n != PER_FEED {
                        return Err(format!("{n} messages of {PER_FEED}"));
                    }
                    Ok(peer)
                })
            })
            .collect();
        let all = async {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap_or_else(|e| Err(format!("peer task: {e}"))));
            }
            out
        };
        tokio::time::timeout(Duration::from_secs(90), all)
            .await
            .expect("the 200 peers are served within 90 s")
    });
    let served = t0.elapsed();
    let served_at = Instant::now();
    let failed: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| format!("peer {i}: {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {PEERS} peers were not served:\n{}\nnode log:\n{}",
        failed.len(),
        failed.join("\n"),
        node.log_tail(30)
    );
    let peers: Vec<Peer> = results.into_iter().map(Result::unwrap).collect();

    // All 200 are held at once: listed, each with its socket.
    let connected = node.connected();
    assert_eq!(connected.len(), PEERS, "the node lists every peer");
    let fds_loaded = fd_count(pid);
    assert!(
        fds_loaded >= fds_before + PEERS,
        "the node holds a socket per peer: {fds_loaded} fds, {fds_before} at rest"
    );

    // One more: through the handshake, then closed by the node, unserved.
    rt.block_on(async {
        let extra = connect(port, id, &peer_key(PEERS))
            .await
            .expect("the 201st peer's handshake");
        let read = tokio::time::timeout(Duration::from_secs(15), read_feed(&extra.rpc, &feeds[0]))
            .await
            .expect("the node closes the 201st connection within 15 s");
        assert!(read.is_err(), "the 201st peer must not be served: {read:?}");
        let _ = extra.conn.await;
        extra.answering.abort();
    });
    wait_for(
        10,
        Duration::from_millis(100),
        "the node to log why it refused the 201st peer",
        || {
            node.log_text()
                .contains(&format!("refused, {PEERS} incoming connections open"))
                .then_some(())
        },
        || node.log_tail(20),
    );
    let (probes, slowest, slowest_call) = probe.finish(served_at);
    assert!(
        probes >= 2,
        "`shoal status` was probed while the peers were served ({probes} probes)"
    );

    // The peers leave.
    rt.block_on(async {
        for p in &peers {
            p.rpc.goodbye().await;
        }
        for p in peers {
            let _ = p.conn.await;
            p.answering.abort();
        }
    });
    let rss_peak = rss.finish();
    eprintln!(
        "load: {PEERS} peers served in {served:?}; `shoal status` {probes} probes meanwhile, \
         slowest median {slowest:?} (slowest call {slowest_call:?}); node VmRSS {rss_before} KiB at rest, peak {rss_peak} KiB; fds \
         {fds_before} at rest, {fds_loaded} loaded"
    );
    assert!(
        rss_peak < RSS_BOUND_KIB,
        "the node's resident memory reached {rss_peak} KiB under load (bound {RSS_BOUND_KIB} KiB)"
    );
    wait_for(
        20,
        Duration::from_millis(100),
        "the node to drop every connection",
        || node.connected().is_empty().then_some(()),
        || node.explain(),
    );
    let fds_after = wait_for(
        20,
        Duration::from_millis(100),
        &format!("the node's file descriptors to settle to at most {fds_before} + {FD_SLACK}"),
        || Some(fd_count(pid)).filter(|&n| n <= fds_before + FD_SLACK),
        || {
            let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                        .map(|p| p.display().to_string())
                        .collect()
                })
                .unwrap_or_default();
            format!("{} open: {fds:?}", fds.len())
        },
    );
    eprintln!("load: fds {fds_after} after the peers left");

    // The node serves a new peer as before.
    rt.block_on(async {
        let p = connect(port, id, &peer_key(PEERS + 1))
            .await
            .expect("a new peer's handshake");
        assert_eq!(read_feed(&p.rpc, &feeds[1]).await, Ok(PER_FEED));
        p.rpc.goodbye().await;
        let _ = p.conn.await;
        p.answering.abort();
    });
    assert!(node.running(), "the node is still running");
    assert!(
        !node.log_text().contains("panicked"),
        "the node panicked:\n{}",
        node.log_tail(40)
    );
    node.stop();
}

/// Regression, found by `cargo bench --bench pub_load` when the pub ran
/// slowly: a node that accepts a connection and hears no `ebt.replicate`
/// within its 1.5 s grace pulls every feed it replicates with a live
/// `createHistoryStream`, and it kept all those streams open after the
/// peer's EBT request arrived late. A pub following 1,000 members, slowed
/// by a crowd of new connections, held 1,001 history streams beside EBT on
/// each late connection (about 2 MB of its memory per connection, and as
/// many requests for each peer to answer). Now a late `ebt.replicate` ends
/// the pull: the node ends every history stream it opened.
#[test]
fn a_late_ebt_request_ends_the_history_stream_pull() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0x90));
    // Feeds to replicate, so that the pull opens a stream for each.
    let followed = 5;
    for f in 0..followed {
        node.follow(&test_key(0x91 + f).id().to_string());
    }
    node.start();
    let rt = crate::common::runtime();
    rt.block_on(async {
        let addr = format!("127.0.0.1:{}", node.port);
        let (r, w, _) =
            shoal::net::connect(addr.as_str(), &main_net_key(), &peer_key(0x90), &node.id)
                .await
                .expect("connect");
        let (rpc, mut incoming, _conn) = shoal::rpc::start(r, w, Options::default());
        // Every history stream the node opens is held, never answered.
        let (tx, mut opened) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(req) = incoming.recv().await {
                match req.responder {
                    shoal::rpc::Responder::Stream(s) if req.name == ["createHistoryStream"] => {
                        let _ = tx.send(s.into_parts());
                    }
                    other => {
                        let _ = other.not_found().await;
                    }
                }
            }
        });
        // Past the grace: one stream per feed it replicates (those it
        // follows and its own).
        let mut held = Vec::new();
        while held.len() < usize::from(followed) + 1 {
            let stream = tokio::time::timeout(Duration::from_secs(10), opened.recv())
                .await
                .expect("the node pulls with history streams after its grace")
                .expect("the connection lives");
            held.push(stream);
        }
        // Now EBT, late.
        let _ebt = rpc
            .call_duplex(
                &["ebt", "replicate"],
                json!([{"version": 3, "format": "classic"}]),
            )
            .await
            .expect("ebt.replicate");
        for (_sink, mut source) in held {
            let ended = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(_)) = source.recv().await {}
            })
            .await;
            assert!(ended.is_ok(), "a history stream stayed open beside EBT");
        }
    });
    node.stop();
}

/// The name and nice value of each thread of process `pid`, from
/// `/proc/PID/task/*/stat` (the nice value is the 19th field).
fn thread_nices(pid: u32) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the name in parentheses, which may hold spaces.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let nice = after.split(' ').nth(16).unwrap().parse().unwrap();
        out.push((name.trim().to_string(), nice));
    }
    out
}

/// A running node checks messages on threads at nice 5, below its other
/// threads (its writer, its network), so that those run as soon as they
/// have work.
#[test]
fn a_node_checks_messages_below_the_priority_of_its_writer_and_network() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = crate::nodes::ServeNode::init(dir.path(), "a", &test_key(0x9c));
    node.start();
    let threads = thread_nices(node.pid());
    let checking: Vec<_> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("shoal-check-"))
        .collect();
    assert!(!checking.is_empty(), "no checking threads: {threads:?}");
    assert!(
        checking.iter().all(|(_, nice)| *nice == 5),
        "checking threads not at nice 5: {threads:?}"
    );
    assert!(
        threads
            .iter()
            .any(|(name, nice)| name == "shoal-writer" && *nice == 0),
        "the writer is not at nice 0: {threads:?}"
    );
    assert!(
        threads
            .iter()
            .filter(|(name, _)| !name.starts_with("shoal-check-"))
            .all(|(_, nice)| *nice == 0),
        "{threads:?}"
    );
    node.stop();
}
