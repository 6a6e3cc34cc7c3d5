//! One pub, a thousand peers (issue 18, item 4), on loopback.
//!
//! One `shoal serve` (the pub) holds 1,000 feeds of 100 messages, imported
//! before it starts, and follows 1,000 members (its own contact messages).
//! The members are lightweight clients in this process, each its own
//! identity from a fixed seed, each a real TCP connection, secret handshake,
//! box stream, muxrpc and `ebt.replicate` session made with shoal's library:
//! a client asks for 10 of the feeds (fixed-seed choice) from sequence 0,
//! counts what arrives and checks that each feed's sequence numbers come in
//! order; it answers the pub's `gossip.ping` and nothing else.
//!
//! - Ramp: 250, then 250 more, then 500 more clients connect at once; after
//!   each step, once every well-behaved client holds every message it
//!   wants, the pub's resident memory and open file descriptors are read
//!   with all of them connected and idle.
//! - Publishing: with all 1,000 connected, each well-behaved client
//!   publishes one post at a random moment within a window (60 s,
//!   `SHOAL_BENCH_PUBLISH_SECS`), sent to the pub over EBT; each client also
//!   follows one other client, so every post goes client -> pub -> client,
//!   and its latency is measured in this process.
//! - One client in 20 misbehaves: it stalls after the handshake (never
//!   reads or writes), or sends garbage after it (raw bytes, or junk inside
//!   the box stream), or opens EBT and 100 live history streams asking for
//!   everything and never reads.
//! - Then every client leaves, and the pub's descriptors and connections
//!   are read again.
//!
//! The clients come from 500 loopback addresses (127.1.x.y, two each), so
//! the pub keeps its default `max_connections_per_ip`; its
//! `max_connections` is raised from the default 64 to 1,400 (incoming
//! connections may take three quarters: 1,050). The soft open-file limit is
//! raised to the hard one; the pub inherits it.
//!
//! Run: `cargo bench --bench pub_load` (about two minutes once built; it
//! stops by itself, at the latest after [`DEADLINE`]). Prints one table; the
//! pub's warnings are left in its home's `serve.log`.

mod common;
mod nodes;

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rayon::prelude::*;
use serde_json::json;
use shoal::crypto::{FeedId, Keypair};
use shoal::feed::{Object, Value};
use shoal::net::{BoxReader, BoxWriter, Handshaked, shs};
use shoal::rpc::{self, Body, Incoming, Responder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use common::{Rng, author_key, kvt_line, sign_feed, text_for, write_interleaved};
use nodes::{Serve, free_port, shoal};

/// Feeds the pub holds, and messages in each.
const FEEDS: usize = 1000;
const PER_FEED: usize = 100;
/// Clients, and the feeds each asks for.
const CLIENTS: usize = 1000;
const WANTS: usize = 10;
/// Clients connected after each step of the ramp.
const STEPS: [usize; 3] = [250, 500, 1000];
/// Clients per loopback source address (the pub's default
/// `max_connections_per_ip` is 4).
const PER_SOURCE: usize = 2;
/// The pub's `max_connections`: incoming ones may take 1,050 of it.
const PUB_MAX_CONNECTIONS: usize = 1400;
/// The longest one step may take before the benchmark gives up.
const STEP_LIMIT: Duration = Duration::from_secs(300);
/// How long the clients are left idle before memory is read.
const SETTLE: Duration = Duration::from_secs(3);
/// The whole run, after which the pub is killed and the benchmark fails.
const DEADLINE: Duration = Duration::from_secs(20 * 60);

/// What a client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Replicates, publishes, answers pings.
    Good,
    /// Finishes the handshake, then neither reads nor writes.
    Stall,
    /// Finishes the handshake, then sends 64 KiB of junk.
    Garbage,
    /// Opens EBT and 100 live history streams asking for every feed, and
    /// never reads.
    Hoard,
}

/// One client in 20 misbehaves, the three ways in turn.
fn role(i: usize) -> Role {
    if i % 20 != 19 {
        return Role::Good;
    }
    match (i / 20) % 3 {
        0 => Role::Stall,
        1 => Role::Garbage,
        _ => Role::Hoard,
    }
}

/// Client `i`'s identity (distinct from the authors' keys).
fn client_key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    seed[31] = 0xc1;
    Keypair::from_seed(&seed)
}

/// What one client will do.
struct Plan {
    i: usize,
    role: Role,
    keys: Keypair,
    /// Imported feeds it asks for.
    wants: Vec<FeedId>,
    /// The client it follows (good clients: the next good one).
    follows: Option<FeedId>,
    /// When it publishes, from the start of the publishing window.
    publish_after: Duration,
}

fn plans(window: Duration) -> Vec<Plan> {
    let mut rng = Rng(18_004);
    let authors: Vec<FeedId> = (0..FEEDS).map(|a| author_key(a).id()).collect();
    let mut plans: Vec<Plan> = (0..CLIENTS)
        .map(|i| {
            let mut wants = Vec::with_capacity(WANTS);
            while wants.len() < WANTS {
                let f = authors[rng.below(FEEDS)];
                if !wants.contains(&f) {
                    wants.push(f);
                }
            }
            let publish_after = Duration::from_millis(rng.next() % window.as_millis() as u64);
            Plan {
                i,
                role: role(i),
                keys: client_key(i),
                wants,
                follows: None,
                publish_after,
            }
        })
        .collect();
    let good: Vec<usize> = (0..CLIENTS).filter(|&i| role(i) == Role::Good).collect();
    for (k, &i) in good.iter().enumerate() {
        plans[i].follows = Some(plans[good[(k + 1) % good.len()]].keys.id());
    }
    plans
}

/// What the clients found, shared by all of them.
struct Shared {
    pub_addr: SocketAddr,
    pub_id: FeedId,
    net_key: [u8; 32],
    /// Good clients holding every message they want.
    converged: AtomicUsize,
    /// Messages of wanted feeds received by good clients.
    delivered: AtomicU64,
    /// Messages that were not the next of their feed.
    out_of_order: AtomicU64,
    /// Good clients whose connection or session failed, and why.
    failed: Mutex<Vec<String>>,
    /// When each good client published.
    published: Mutex<HashMap<FeedId, Instant>>,
    /// From a post's publishing to its arrival at the follower.
    latencies: Mutex<Vec<Duration>>,
    /// Good clients whose feed the pub did not ask for.
    unwanted: AtomicUsize,
    /// Garbage clients whose connection the pub closed.
    garbage_closed: AtomicUsize,
    /// What the pub asked the clients, by method.
    asked: Mutex<HashMap<String, u64>>,
}

/// Dials the pub from client `i`'s loopback address and runs the client
/// handshake.
async fn dial(sh: &Shared, i: usize, keys: &Keypair) -> Result<Handshaked<TcpStream>, String> {
    let n = i / PER_SOURCE;
    let source = Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8);
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(source.into(), 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = tokio::time::timeout(Duration::from_secs(30), socket.connect(sh.pub_addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    shs::client(stream, &sh.net_key, keys, &sh.pub_id)
        .await
        .map_err(|e| format!("handshake: {e}"))
}

/// muxrpc over a handshaked stream.
fn start_rpc(
    h: Handshaked<TcpStream>,
) -> (
    rpc::RpcHandle,
    mpsc::Receiver<Incoming>,
    tokio::task::JoinHandle<Result<(), rpc::RpcError>>,
) {
    let (r, w) = h.stream.into_split();
    let reader = BoxReader::new(r, h.keys.decrypt_key, h.keys.decrypt_nonce);
    let writer = BoxWriter::new(w, h.keys.encrypt_key, h.keys.encrypt_nonce);
    rpc::start(reader, writer, rpc::Options::default())
}

/// Answers the pub's `gossip.ping` (echoing it), and anything else with
/// "no such method".
async fn answer(mut incoming: mpsc::Receiver<Incoming>, sh: Arc<Shared>) {
    while let Some(req) = incoming.recv().await {
        *sh.asked.lock().unwrap().entry(req.method()).or_default() += 1;
        let ping = req.is(&["gossip", "ping"]);
        match req.responder {
            Responder::Stream(s) if ping => {
                tokio::spawn(async move {
                    let (sink, mut source) = s.into_parts();
                    while let Some(Ok(b)) = source.recv().await {
                        if sink.send(b).await.is_err() {
                            return;
                        }
                    }
                    let _ = sink.end().await;
                });
            }
            other => {
                let _ = other.not_found().await;
            }
        }
    }
}

/// The first fields of a message, enough to count it.
#[derive(serde::Deserialize)]
struct Head {
    author: String,
    sequence: u64,
}

/// Waits until the publishing window opens and this client's moment in it.
async fn publish_moment(window: &mut watch::Receiver<Option<Instant>>, after: Duration) {
    loop {
        let start = *window.borrow_and_update();
        if let Some(start) = start {
            tokio::time::sleep_until((start + after).into()).await;
            return;
        }
        if window.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A well-behaved member: replicates its wanted feeds and the client it
/// follows over EBT, publishes once, until `stop`.
async fn good(
    sh: Arc<Shared>,
    plan: Plan,
    mut window: watch::Receiver<Option<Instant>>,
    stop: CancellationToken,
) -> Result<(), String> {
    let h = dial(&sh, plan.i, &plan.keys).await?;
    let (rpc, incoming, conn) = start_rpc(h);
    tokio::spawn(answer(incoming, sh.clone()));
    let (sink, mut source) = rpc
        .call_duplex(
            &["ebt", "replicate"],
            json!([{"version": 3, "format": "classic"}]),
        )
        .await
        .map_err(|e| format!("ebt.replicate: {e}"))?;
    let me = plan.keys.id();
    let me_text = me.to_string();
    // Our clock: our own feed (nothing held, nothing to receive: we are
    // its author), and from 0 every feed we want.
    let mut clock = serde_json::Map::new();
    clock.insert(me_text.clone(), json!(1));
    let mut got: HashMap<FeedId, u64> = HashMap::new();
    for f in plan.wants.iter().chain(&plan.follows) {
        clock.insert(f.to_string(), json!(0));
        got.insert(*f, 0);
    }
    sink.send(Body::json(&clock).unwrap())
        .await
        .map_err(|e| format!("sending our clock: {e}"))?;
    let mut converged = false;
    let mut published = false;
    let mut pub_wants_us = false;
    loop {
        tokio::select! {
            item = source.recv() => {
                let body = match item {
                    Some(Ok(b)) => b.into_bytes(),
                    Some(Err(e)) => return Err(format!("ebt ended: {e}")),
                    None => return Err("ebt ended by the pub".into()),
                };
                if body.starts_with(b"{\"previous\"") {
                    let head: Head = serde_json::from_slice(&body)
                        .map_err(|e| format!("a message that is not JSON: {e}"))?;
                    let Some(author) = FeedId::parse(&head.author) else {
                        return Err(format!("a message by {}", head.author));
                    };
                    let Some(last) = got.get_mut(&author) else {
                        return Err(format!("a message of {author}, which we did not ask for"));
                    };
                    if head.sequence != *last + 1 {
                        sh.out_of_order.fetch_add(1, Ordering::Relaxed);
                    }
                    *last = (*last).max(head.sequence);
                    sh.delivered.fetch_add(1, Ordering::Relaxed);
                    if Some(author) == plan.follows
                        && let Some(at) = sh.published.lock().unwrap().get(&author)
                    {
                        let latency = at.elapsed();
                        sh.latencies.lock().unwrap().push(latency);
                    }
                    if !converged && plan.wants.iter().all(|f| got[f] >= PER_FEED as u64) {
                        converged = true;
                        sh.converged.fetch_add(1, Ordering::Relaxed);
                    }
                } else if let Ok(notes) = serde_json::from_slice::<HashMap<String, i64>>(&body)
                    && let Some(n) = notes.get(&me_text)
                {
                    // Even: the pub wants what follows that sequence.
                    pub_wants_us = *n >= 0 && n & 1 == 0;
                }
            }
            () = publish_moment(&mut window, plan.publish_after), if !published => {
                published = true;
                if !pub_wants_us {
                    sh.unwanted.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let text = format!("member {} says hello", plan.i);
                let ts = shoal::store::now_ms();
                let msg = sign_feed(&plan.keys, 1, |_| ts, |_, _| {
                    let mut c = Object::new();
                    c.insert("type", Value::from("post"));
                    c.insert("text", Value::from(text.as_str()));
                    Value::Object(c)
                });
                sh.published.lock().unwrap().insert(me, Instant::now());
                sink.send(Body::json_raw(Bytes::copy_from_slice(msg[0].json())))
                    .await
                    .map_err(|e| format!("publishing: {e}"))?;
            }
            () = stop.cancelled() => break,
        }
    }
    rpc.goodbye().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
    Ok(())
}

/// A misbehaving client, until `stop`.
async fn bad(sh: Arc<Shared>, plan: Plan, all_feeds: Arc<Vec<FeedId>>, stop: CancellationToken) {
    let Ok(h) = dial(&sh, plan.i, &plan.keys).await else {
        return;
    };
    match plan.role {
        Role::Good => unreachable!("a good client is not bad"),
        Role::Stall => {
            stop.cancelled().await;
            drop(h);
        }
        Role::Garbage => {
            let mut rng = Rng(plan.i as u64);
            let junk: Vec<u8> = (0..64 * 1024).map(|_| rng.next() as u8).collect();
            // Raw junk where a box is due, or junk muxrpc inside a valid box.
            let (mut r, w) = h.stream.into_split();
            if plan.i % 2 == 0 {
                let mut w = w;
                let _ = w.write_all(&junk).await;
                let _ = w.flush().await;
                wait_closed(&sh, &mut r, &stop).await;
            } else {
                let mut w = BoxWriter::new(w, h.keys.encrypt_key, h.keys.encrypt_nonce);
                let _ = w.write_all(&junk).await;
                let _ = w.flush().await;
                wait_closed(&sh, &mut r, &stop).await;
            }
        }
        Role::Hoard => {
            // `incoming` is kept and never read, like every stream here.
            let (rpc, incoming, conn) = start_rpc(h);
            let Ok((sink, source)) = rpc
                .call_duplex(
                    &["ebt", "replicate"],
                    json!([{"version": 3, "format": "classic"}]),
                )
                .await
            else {
                return;
            };
            let clock: serde_json::Map<String, serde_json::Value> = all_feeds
                .iter()
                .map(|f| (f.to_string(), json!(0)))
                .collect();
            let _ = sink.send(Body::json(&clock).unwrap()).await;
            let mut held = Vec::new();
            for f in all_feeds.iter().take(100) {
                let args = json!([{"id": f.to_string(), "seq": 1, "live": true, "keys": true}]);
                if let Ok(s) = rpc.call_source(&["createHistoryStream"], args).await {
                    held.push(s);
                }
            }
            stop.cancelled().await;
            // Gone at once, without a goodbye.
            conn.abort();
            drop((held, sink, source, incoming));
        }
    }
}

/// Reads (and drops) what the pub sends until it closes the connection.
async fn wait_closed(
    sh: &Shared,
    r: &mut tokio::net::tcp::OwnedReadHalf,
    stop: &CancellationToken,
) {
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            n = r.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    sh.garbage_closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(_) => {}
            },
            () = stop.cancelled() => return,
        }
    }
}

/// The number of open file descriptors of a process.
fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Raises the soft open-file limit to the hard one; the limit now.
fn raise_nofile() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: now.maximum,
        maximum: now.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        eprintln!("cannot raise the open-file limit: {e}");
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The pub's store: `FEEDS` feeds of `PER_FEED` posts as a dump to import.
fn write_dump(path: &Path) {
    let feeds: Vec<Vec<Vec<u8>>> = (0..FEEDS)
        .into_par_iter()
        .map(|a| {
            let ts = |s: usize| 1_600_000_000_000.0 + (s * FEEDS + a) as f64;
            sign_feed(&author_key(a), PER_FEED, ts, |s, _| {
                let mut c = Object::new();
                c.insert("type", Value::from("post"));
                c.insert("text", Value::from(text_for(a * PER_FEED + s)));
                Value::Object(c)
            })
            .iter()
            .enumerate()
            .map(|(s, m)| kvt_line(m, ts(s)))
            .collect()
        })
        .collect();
    write_interleaved(path, &feeds);
}

/// Sets `key = value` lines of a home's `config.toml`.
fn set_config(home: &Path, settings: &[(&str, &str)]) {
    let path = home.join("config.toml");
    let mut text: String = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| {
            !settings
                .iter()
                .any(|(k, _)| l.starts_with(&format!("{k} =")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    // Top-level keys go before any table.
    let table = text.find("\n[").map_or(text.len(), |p| p + 1);
    let lines: String = settings
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    text.insert_str(table, &lines);
    fs::write(&path, text).unwrap();
}

/// The pub follows every client: its members.
fn follow_members(home: &Path) {
    let home = shoal::home::Home::open(home).unwrap();
    let store = home.store().unwrap();
    let contents = (0..CLIENTS)
        .map(|i| {
            let mut c = Object::new();
            c.insert("type", Value::from("contact"));
            c.insert("contact", Value::from(client_key(i).id().to_string()));
            c.insert("following", Value::from(true));
            Value::Object(c)
        })
        .collect();
    for r in store
        .append_local_many(home.keys(), contents, home.sign_cap())
        .unwrap()
    {
        r.unwrap();
    }
}

/// What the pub looked like with some clients connected.
struct Step {
    connections: usize,
    /// Until every good client connected so far held what it wants.
    secs: f64,
    /// The pub's CPU meanwhile.
    cpu: f64,
    rss_mib: f64,
    fds: usize,
    /// The pub's CPU share while the clients sat idle, connected.
    idle_cpu: f64,
}

/// Everything measured.
struct Figures {
    steps: Vec<Step>,
    /// Messages delivered to good clients during the ramp.
    delivered: u64,
    publish: Option<(f64, f64)>,
    after: (usize, f64),
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k].as_secs_f64()
}

async fn run(sh: Arc<Shared>, plans: Vec<Plan>, serve: &Serve, window: Duration) -> Figures {
    let pid = serve.pid();
    let all_feeds: Arc<Vec<FeedId>> = Arc::new((0..FEEDS).map(|a| author_key(a).id()).collect());
    let stop = CancellationToken::new();
    let (window_tx, window_rx) = watch::channel(None);
    let mut tasks = tokio::task::JoinSet::new();
    let mut steps = vec![Step {
        connections: 0,
        secs: 0.0,
        cpu: 0.0,
        rss_mib: serve.rss_mib(),
        fds: fd_count(pid),
        idle_cpu: 0.0,
    }];
    let mut plans = plans.into_iter();
    let mut good_so_far = 0;
    let mut lo = 0;
    for hi in STEPS {
        let (t0, cpu0) = (Instant::now(), serve.cpu_secs());
        for plan in plans.by_ref().take(hi - lo) {
            let (sh, stop) = (sh.clone(), stop.clone());
            if plan.role == Role::Good {
                good_so_far += 1;
                let window = window_rx.clone();
                tasks.spawn(async move {
                    let i = plan.i;
                    if let Err(e) = good(sh.clone(), plan, window, stop).await {
                        sh.failed.lock().unwrap().push(format!("client {i}: {e}"));
                    }
                });
            } else {
                tasks.spawn(bad(sh, plan, all_feeds.clone(), stop));
            }
        }
        lo = hi;
        while sh.converged.load(Ordering::Relaxed) < good_so_far {
            if t0.elapsed() > STEP_LIMIT || sh.failed.lock().unwrap().len() > 10 {
                eprintln!(
                    "step to {hi} connections: {} of {good_so_far} well-behaved clients done after {:.0?}; failures: {:?}",
                    sh.converged.load(Ordering::Relaxed),
                    t0.elapsed(),
                    sh.failed.lock().unwrap()
                );
                panic!("the pub did not serve every well-behaved client");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (secs, cpu) = (t0.elapsed().as_secs_f64(), serve.cpu_secs() - cpu0);
        let idle0 = serve.cpu_secs();
        tokio::time::sleep(SETTLE).await;
        steps.push(Step {
            connections: hi,
            secs,
            cpu,
            rss_mib: serve.rss_mib(),
            fds: fd_count(pid),
            idle_cpu: (serve.cpu_secs() - idle0) / SETTLE.as_secs_f64(),
        });
        eprintln!("{hi} connections: done in {secs:.2} s");
    }

    let delivered = sh.delivered.load(Ordering::Relaxed);
    // Every good client publishes once within the window.
    let cpu0 = serve.cpu_secs();
    let _ = window_tx.send(Some(Instant::now()));
    let end = Instant::now() + window + Duration::from_secs(60);
    while sh.latencies.lock().unwrap().len() < good_so_far && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let publish_cpu = serve.cpu_secs() - cpu0;
    let arrived = sh.latencies.lock().unwrap().len();
    let publish = (arrived == good_so_far).then_some((publish_cpu, window.as_secs_f64()));
    if publish.is_none() {
        eprintln!("only {arrived} of {good_so_far} posts reached their follower");
    }

    // Everyone leaves.
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    Figures {
        steps,
        delivered,
        publish,
        after: (fd_count(pid), serve.rss_mib()),
    }
}

fn main() {
    let window = Duration::from_secs(
        std::env::var("SHOAL_BENCH_PUBLISH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let nofile = raise_nofile();
    assert!(
        nofile > (CLIENTS + 200) as u64,
        "the open-file limit ({nofile}) is too low for {CLIENTS} connections; see `ulimit -Hn`"
    );
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-pub-load");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();

    eprintln!("signing {FEEDS} feeds of {PER_FEED} messages");
    let dump = work.join("dump.ndjson");
    write_dump(&dump);
    let home = work.join("pub");
    shoal(&home, &["init"]);
    let max = PUB_MAX_CONNECTIONS.to_string();
    set_config(&home, &[("max_connections", &max), ("lan", "false")]);
    shoal(&home, &["import", dump.to_str().unwrap()]);
    follow_members(&home);
    let port = free_port();
    // Its warnings (refused connections, closed peers) in pub/serve.log.
    let serve = Serve::start_logged(&home, port, "warn");
    let pid = serve.pid();

    // The hard deadline: kill the pub, fail.
    std::thread::spawn(move || {
        std::thread::sleep(DEADLINE);
        eprintln!("pub_load: past the deadline of {DEADLINE:?}; stopping");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        std::process::exit(2);
    });
    // The most descriptors the pub held, sampled.
    let fds_peak = Arc::new(AtomicUsize::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, on) = (fds_peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while on.load(Ordering::Relaxed) {
                peak.fetch_max(fd_count(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let pub_id = FeedId::parse(&shoal(&home, &["whoami"])).unwrap();
    let net_key: [u8; 32] = shoal::crypto::b64_decode(shoal::home::MAIN_NETWORK_KEY)
        .unwrap()
        .try_into()
        .unwrap();
    let sh = Arc::new(Shared {
        pub_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pub_id,
        net_key,
        converged: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        failed: Mutex::new(Vec::new()),
        published: Mutex::new(HashMap::new()),
        latencies: Mutex::new(Vec::new()),
        unwanted: AtomicUsize::new(0),
        garbage_closed: AtomicUsize::new(0),
        asked: Mutex::new(HashMap::new()),
    });
    let plans = plans(window);
    let count = |r: Role| plans.iter().filter(|p| p.role == r).count();
    let (goods, stalls, garbages, hoards) = (
        count(Role::Good),
        count(Role::Stall),
        count(Role::Garbage),
        count(Role::Hoard),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let figures = rt.block_on(run(sh.clone(), plans, &serve, window));
    rt.shutdown_timeout(Duration::from_secs(5));
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = serve.stop();

    let f = &figures;
    let s = &f.steps;
    let delivered = f.delivered;
    let (secs, cpu): (f64, f64) = (
        s.iter().map(|x| x.secs).sum(),
        s.iter().map(|x| x.cpu).sum(),
    );
    let mut lat = sh.latencies.lock().unwrap().clone();
    lat.sort();
    let per_conn = |a: &Step, b: &Step| {
        (b.rss_mib - a.rss_mib) * 1024.0 / (b.connections - a.connections) as f64
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "pub_load: one shoal pub, {FEEDS} feeds of {PER_FEED} messages; {CLIENTS} clients in one process ({goods} well-behaved, each asking for {WANTS} feeds; {stalls} stall, {garbages} send garbage, {hoards} open streams and never read); loopback; open-file limit {nofile}"
    );
    let _ = writeln!(out, "| measure | value |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(
        out,
        "| pub memory (RSS), {} connections, each step settled | {} MiB |",
        s.iter()
            .map(|x| x.connections.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        s.iter()
            .map(|x| format!("{:.0}", x.rss_mib))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    let _ = writeln!(
        out,
        "| growth per connection, each step | {} KiB |",
        s.windows(2)
            .map(|w| format!("{:.0}", per_conn(&w[0], &w[1])))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    let _ = writeln!(
        out,
        "| pub CPU while the clients sit connected and idle, {} connections | {} % of a core |",
        s.iter()
            .map(|x| x.connections.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        s.iter()
            .map(|x| format!("{:.0}", x.idle_cpu * 100.0))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    let _ = writeln!(
        out,
        "| pub peak memory (VmHWM) | **{peak:.0} MiB** (target: under 1 GB) |"
    );
    let _ = writeln!(
        out,
        "| pub open file descriptors, {} connections / at peak | {} / **{}** |",
        s.iter()
            .map(|x| x.connections.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        s.iter()
            .map(|x| x.fds.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        fds_peak.load(Ordering::Relaxed)
    );
    for w in s.windows(2) {
        let _ = writeln!(
            out,
            "| {} more clients connect at once ({} in all): every well-behaved one holds what it wants after | {:.2} s (pub CPU {:.2} s) |",
            w[1].connections - w[0].connections,
            w[1].connections,
            w[1].secs,
            w[1].cpu
        );
    }
    let _ = writeln!(
        out,
        "| messages delivered to well-behaved clients | {delivered} ({} out of order), in {secs:.2} s: {:.0} msg/s |",
        sh.out_of_order.load(Ordering::Relaxed),
        delivered as f64 / secs
    );
    let _ = writeln!(
        out,
        "| pub CPU per delivered message | **{:.1} µs** ({cpu:.2} s, handshakes included) |",
        cpu * 1e6 / delivered.max(1) as f64
    );
    match f.publish {
        Some((pcpu, w)) => {
            let _ = writeln!(
                out,
                "| {} posts, one per well-behaved client at random within {w:.0} s, client -> pub -> its follower | all arrived; latency median {:.1} ms, p99 {:.1} ms, max {:.1} ms; pub CPU {pcpu:.2} s |",
                lat.len(),
                percentile(&lat, 0.5) * 1e3,
                percentile(&lat, 0.99) * 1e3,
                percentile(&lat, 1.0) * 1e3
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| posts published | only {} of {goods} arrived ({} not asked for by the pub) |",
                lat.len(),
                sh.unwanted.load(Ordering::Relaxed)
            );
        }
    }
    let _ = writeln!(
        out,
        "| garbage connections closed by the pub | {} of {garbages} |",
        sh.garbage_closed.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "| after every client left: pub file descriptors / memory | {} (before any: {}) / {:.0} MiB |",
        f.after.0, s[0].fds, f.after.1
    );
    let failed = sh.failed.lock().unwrap();
    let _ = writeln!(
        out,
        "| well-behaved clients that failed | {} |",
        failed.len()
    );
    let mut asked: Vec<(String, u64)> = sh.asked.lock().unwrap().clone().into_iter().collect();
    asked.sort();
    let _ = writeln!(
        out,
        "requests the pub made of well-behaved clients: {asked:?}"
    );
    for e in failed.iter().take(5) {
        let _ = writeln!(out, "failed: {e}");
    }
}
