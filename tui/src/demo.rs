//! `shoal-tui --demo`: a throwaway home and a few demo peers, each a real
//! `shoal::node::Node` on its own temporary home, listening on an
//! ephemeral loopback port in this process. They follow you and each other,
//! set their names, post, reply, like, write to you privately, and answer
//! what you post or send them, a step every few seconds; so a newcomer sees
//! the real system (signing, replication, private boxes) work at once.
//!
//! A second driver plays a private group: Ada creates "harbour crew" and
//! adds you and the other two peers; they post in it; after a while Ada
//! removes 美咲 (a rekey) and posts again, so the groups screen shows the
//! epochs, the removal, and posts from before and after it.
//!
//! [`start`] makes the homes and peers and returns a [`Demo`] whose
//! [`Demo::home`] the client then opens like any other. The driver picks
//! an [`Act`] at each step and performs it. What fails (a peer that has
//! not yet received a group key) is retried and written to
//! [`Demo::log_path`], never to the terminal. Imports `shoal` and tokio;
//! never the UI.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use shoal::api::{self, ApiError, Request, Response};
use shoal::crypto::{FeedId, MsgId};
use shoal::home::Home;
use shoal::local::Running;
use shoal::node::Node;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Making a temporary directory or a listener.
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    /// Making a home.
    #[error("demo: {0}")]
    Home(#[from] shoal::home::HomeError),
    /// Running a peer.
    #[error("demo: {0}")]
    Start(#[from] shoal::local::StartError),
    /// A request of a peer.
    #[error("demo: {0}")]
    Api(#[from] ApiError),
}

/// One demo peer.
pub struct DemoPeer {
    /// Its name.
    pub name: &'static str,
    /// Its node.
    pub node: Node,
    /// Its multiserver address.
    pub address: String,
    running: Running,
}

/// A running demo: your home and the peers.
pub struct Demo {
    dir: tempfile::TempDir,
    home: PathBuf,
    me: FeedId,
    /// The demo peers.
    pub peers: Vec<DemoPeer>,
    stop: watch::Sender<bool>,
    driver: Option<JoinHandle<()>>,
    group_driver: Option<JoinHandle<()>>,
}

/// The peers: a name each, and what they say first.
const PEERS: [(&str, &str); 3] = [
    (
        "Ada",
        "Good morning, harbour! Every message here is signed and chained to the one before it.",
    ),
    (
        "Björn",
        "Gossip protocols are just rumours with signatures 🐟",
    ),
    ("美咲", "今日は海がとても静かです。Quiet sea today 🌊"),
];

const POSTS: &[&str] = &[
    "Low tide this morning. Found three crabs and a very confused gull.",
    "Offline-first means my boat syncs when it gets back to the harbour ⛵",
    "Does anyone have a good recipe for fish soup? Asking for a friend 🍲",
    "Replication is the sound of many small boats talking.",
    "Wrote a long post, deleted it, wrote this one instead.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "Tried this client at 40 columns. Still readable!",
    "雨の日はコードを書くのにちょうどいい。",
    "No servers, no accounts: just feeds, and friends who carry them.",
    "Reminder: you can press ? for the keys.",
];

const REPLIES: &[&str] = &[
    "Agreed!",
    "Ha, same here.",
    "That's lovely 😊",
    "Tell me more?",
    "素晴らしい！",
    "I was thinking the same thing this morning.",
    "Welcome aboard!",
];

const DMS: &[&str] = &[
    "Psst, this one is private: only you and I can read it.",
    "Are you coming to the harbour meetup on Saturday?",
    "Thanks for the follow!",
    "秘密のメッセージです 🤫",
];

/// One step of the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// A peer posts.
    Post {
        /// Which peer.
        peer: usize,
    },
    /// A peer replies to a recent post it holds.
    Reply {
        /// Which peer.
        peer: usize,
    },
    /// A peer likes a recent post it holds.
    Like {
        /// Which peer.
        peer: usize,
    },
    /// A peer writes to you privately.
    Dm {
        /// Which peer.
        peer: usize,
    },
}

/// A small deterministic generator, enough to vary the demo.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The opening moves, so something happens within seconds.
const OPENING: [Act; 4] = [
    Act::Dm { peer: 0 },
    Act::Post { peer: 1 },
    Act::Reply { peer: 2 },
    Act::Like { peer: 0 },
];

/// Seconds between steps.
const STEP_SECS: u64 = 4;

impl Demo {
    /// Your home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The temporary directory holding every demo home.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the driver and the peers; the homes go with the [`Demo`].
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for d in [self.driver.take(), self.group_driver.take()]
            .into_iter()
            .flatten()
        {
            d.abort();
        }
        for p in &self.peers {
            p.running.stop().await;
        }
    }

    /// Your feed id.
    pub fn me(&self) -> FeedId {
        self.me
    }

    /// Where the demo notes what went wrong (a step retried, skipped).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("demo.log")
    }
}

/// Runs one request on a peer's node, on a blocking thread.
async fn ask(node: &Node, req: Request) -> Result<Response, ApiError> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || api::execute(&node, req, &mut api::Discard))
        .await
        .map_err(|e| ApiError::Failed(e.to_string()))?
}

/// Makes the homes, starts the peers and the driver. Your node is not
/// started: the client opens [`Demo::home`], whose config lists the peers
/// and listens on an ephemeral loopback port.
pub async fn start() -> Result<Demo, DemoError> {
    let dir = tempfile::Builder::new().prefix("shoal-demo-").tempdir()?;
    let mut peers = Vec::new();
    for (i, (name, first)) in PEERS.iter().enumerate() {
        let home = dir.path().join(format!("peer{i}"));
        Home::init(&home, shoal::home::Identity::New)?;
        let running = Running::start(&home, Some("127.0.0.1:0".into()), true).await?;
        let node = running.node().clone();
        ask(
            &node,
            Request::Name {
                name: name.to_string(),
            },
        )
        .await?;
        ask(
            &node,
            Request::Post {
                text: first.to_string(),
                attach: Vec::new(),
            },
        )
        .await?;
        let address = node
            .address()
            .ok_or_else(|| ApiError::Failed("a demo peer does not listen".into()))?;
        peers.push(DemoPeer {
            name,
            address,
            node,
            running,
        });
    }
    // Your home: it follows the peers, has a name, and dials them.
    let home = dir.path().join("you");
    let me = {
        Home::init(&home, shoal::home::Identity::New)?;
        let you = api::Local::open(&home)?;
        let ask_here = |req| api::execute(&you, req, &mut api::Discard);
        ask_here(Request::Name {
            name: "you (demo)".into(),
        })?;
        for p in &peers {
            ask_here(Request::Follow { id: p.node.id() })?;
        }
        you.home().keys().id()
    };
    let addresses: Vec<String> = peers.iter().map(|p| format!("{:?}", p.address)).collect();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "# A demo home: listens on a free loopback port, dials the demo peers.\nlisten = \"127.0.0.1:0\"\npeers = [{}]\n",
            addresses.join(", ")
        ),
    )?;
    // The peers follow you and each other, and keep in touch directly too.
    for (i, p) in peers.iter().enumerate() {
        ask(&p.node, Request::Follow { id: me }).await?;
        for (j, q) in peers.iter().enumerate() {
            if i != j {
                ask(&p.node, Request::Follow { id: q.node.id() }).await?;
            }
        }
        if i > 0 {
            let address = peers[i - 1].address.clone();
            ask(&p.node, Request::Connect { address }).await?;
        }
    }
    let (stop, stopped) = watch::channel(false);
    let nodes: Vec<Node> = peers.iter().map(|p| p.node.clone()).collect();
    let driver = tokio::spawn(drive(nodes.clone(), me, stopped.clone()));
    let log = dir.path().join("demo.log");
    let group_driver = tokio::spawn(drive_group(nodes, me, log, stopped));
    Ok(Demo {
        dir,
        home,
        me,
        peers,
        stop,
        driver: Some(driver),
        group_driver: Some(group_driver),
    })
}

/// Steps the demo until stopped: the opening moves, then answers to what
/// you did, else a random act.
async fn drive(peers: Vec<Node>, me: FeedId, mut stopped: watch::Receiver<bool>) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let mut answered: HashSet<MsgId> = HashSet::new();
    let mut step = 0usize;
    // A moment for the peers to connect before the first step.
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(1500)) => {}
        _ = stopped.changed() => return,
    }
    loop {
        let done = match answer_you(&peers, &me, &mut answered, &mut rng).await {
            Some(true) => true,
            _ => {
                let act = OPENING.get(step).copied().unwrap_or_else(|| {
                    let peer = rng.next(peers.len());
                    match rng.next(10) {
                        0..=3 => Act::Post { peer },
                        4..=6 => Act::Reply { peer },
                        7..=8 => Act::Like { peer },
                        _ => Act::Dm { peer },
                    }
                });
                step += 1;
                perform(&peers, &me, act, &mut rng).await.is_ok()
            }
        };
        let wait = if step <= OPENING.len() && done {
            Duration::from_millis(2000)
        } else {
            Duration::from_secs(STEP_SECS + rng.next(3) as u64)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// A page of items a peer's node answers (none when it fails).
async fn page(peer: &Node, req: Request) -> Vec<api::Item> {
    match ask(peer, req).await {
        Ok(Response::Items { items }) => items,
        _ => Vec::new(),
    }
}

/// Your latest public post and latest private message to `peer`, as the
/// peer's store holds them.
async fn yours(peer: &Node, me: &FeedId) -> (Option<MsgId>, Option<MsgId>) {
    let me_s = me.to_string();
    let latest = |items: Vec<api::Item>| {
        items
            .into_iter()
            .find(|i| i.author == me_s)
            .and_then(|i| MsgId::parse(&i.key))
    };
    let feed = Request::Feed {
        before: None,
        limit: 20,
    };
    let inbox = Request::Inbox {
        before: None,
        limit: 20,
    };
    (
        latest(page(peer, feed).await),
        latest(page(peer, inbox).await),
    )
}

/// When you posted or wrote privately since the last answer, a peer
/// answers (a reply, private when yours was). `Some(true)` when it did.
async fn answer_you(
    peers: &[Node],
    me: &FeedId,
    answered: &mut HashSet<MsgId>,
    rng: &mut Rng,
) -> Option<bool> {
    for peer in peers {
        let (post, dm) = yours(peer, me).await;
        for id in [dm, post].into_iter().flatten() {
            if !answered.insert(id) {
                continue;
            }
            let text = if Some(id) == dm {
                "Got your private message, thanks! (This answer is private too.)"
            } else {
                REPLIES[rng.next(REPLIES.len())]
            };
            let reply = Request::Reply {
                id,
                text: text.to_string(),
            };
            return Some(ask(peer, reply).await.is_ok());
        }
    }
    Some(false)
}

/// The latest posts `peer` holds that are not its own.
async fn others_posts(peer: &Node) -> Vec<MsgId> {
    let me = peer.id().to_string();
    let feed = Request::Feed {
        before: None,
        limit: 10,
    };
    page(peer, feed)
        .await
        .into_iter()
        .filter(|i| i.author != me)
        .filter_map(|i| MsgId::parse(&i.key))
        .collect()
}

/// Performs one act.
async fn perform(peers: &[Node], me: &FeedId, act: Act, rng: &mut Rng) -> Result<(), DemoError> {
    let pick = |rng: &mut Rng, from: &[&str]| from[rng.next(from.len())].to_string();
    let (peer, req) = match act {
        Act::Post { peer } => (
            peer,
            Request::Post {
                text: pick(rng, POSTS),
                attach: Vec::new(),
            },
        ),
        Act::Dm { peer } => (
            peer,
            Request::Dm {
                to: vec![*me],
                text: pick(rng, DMS),
            },
        ),
        Act::Reply { peer } | Act::Like { peer } => {
            let candidates = others_posts(&peers[peer]).await;
            let Some(id) = candidates.get(rng.next(candidates.len())).copied() else {
                return Ok(());
            };
            let req = if matches!(act, Act::Reply { .. }) {
                Request::Reply {
                    id,
                    text: pick(rng, REPLIES),
                }
            } else {
                Request::Like { id, undo: false }
            };
            (peer, req)
        }
    };
    ask(&peers[peer], req).await?;
    Ok(())
}

/// The demo group's name.
pub const GROUP_NAME: &str = "harbour crew";

/// The peer who runs the group (Ada) and the one removed (美咲).
const ADMIN: usize = 0;
const REMOVED: usize = 2;

/// The group's story before the removal: who posts what.
const GROUP_BEFORE: &[(usize, &str)] = &[
    (
        0,
        "Welcome aboard the harbour crew! Only members can read this.",
    ),
    (1, "Nets mended, boat ready ⛵"),
    (2, "今夜は私が見張りをします 🌙 (I'll keep watch tonight)"),
    (0, "Who's bringing the lanterns on Saturday?"),
];

/// Ada's first post after the removal.
const AFTER_REMOVAL: &str =
    "New key for the crew: 美咲 keeps what was posted before, but cannot read this.";

/// What members still post later, now and then.
const GROUP_CHATTER: &[&str] = &[
    "Tide turns at six.",
    "I'll bring the lanterns.",
    "Anyone seen my good rope?",
    "Crew meeting moved to the boathouse.",
];

/// A step of the group story that failed this many times is skipped.
const GROUP_TRIES: usize = 15;

/// Appends a line to the demo log (best effort: the demo never fails for
/// its log).
fn note(log: &Path, line: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Plays the group story until stopped: create and add, posts, the
/// removal, a post after it, then a post now and then.
async fn drive_group(
    peers: Vec<Node>,
    me: FeedId,
    log: PathBuf,
    mut stopped: watch::Receiver<bool>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pause = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    // Let the peers connect first.
    tokio::select! {
        _ = pause(2000) => {}
        _ = stopped.changed() => return,
    }
    let admin = &peers[ADMIN];
    let create = Request::GroupCreate {
        name: GROUP_NAME.into(),
    };
    let group = match ask(admin, create).await {
        Ok(Response::GroupCreated { group, .. }) => group,
        Ok(other) => {
            note(&log, &format!("group: unexpected answer {other:?}"));
            return;
        }
        Err(e) => {
            note(&log, &format!("group: cannot create: {e}"));
            return;
        }
    };
    let members: Vec<FeedId> = std::iter::once(me)
        .chain(peers.iter().skip(1).map(Node::id))
        .collect();
    let add = Request::GroupAdd {
        group,
        members,
        admin: false,
    };
    if let Err(e) = ask(admin, add).await {
        note(&log, &format!("group: cannot add the members: {e}"));
        return;
    }
    let post = |peer: usize, text: &str| {
        (
            peer,
            Request::GroupPost {
                group,
                text: text.to_string(),
            },
        )
    };
    let mut story: Vec<(usize, Request)> = GROUP_BEFORE.iter().map(|(p, t)| post(*p, t)).collect();
    story.push((
        ADMIN,
        Request::GroupRemove {
            group,
            members: vec![peers[REMOVED].id()],
        },
    ));
    story.push(post(ADMIN, AFTER_REMOVAL));
    let mut step = 0usize;
    let mut tries = 0usize;
    loop {
        let (peer, cmd) = match story.get(step) {
            Some((p, c)) => (*p, c.clone()),
            None => {
                // After the story: the members left chat now and then.
                let peer = [ADMIN, 1][rng.next(2)];
                post(peer, GROUP_CHATTER[rng.next(GROUP_CHATTER.len())])
            }
        };
        let wait = match ask(&peers[peer], cmd).await {
            Ok(_) => {
                step += 1;
                tries = 0;
                if step <= story.len() {
                    3000
                } else {
                    12_000 + 1000 * rng.next(8) as u64
                }
            }
            Err(e) => {
                // Most likely the peer has not received the key yet.
                tries += 1;
                note(
                    &log,
                    &format!("group: step {step} by peer {peer} failed (try {tries}): {e}"),
                );
                if tries >= GROUP_TRIES {
                    step += 1;
                    tries = 0;
                }
                1000
            }
        };
        tokio::select! {
            _ = pause(wait) => {}
            _ = stopped.changed() => return,
        }
    }
}
