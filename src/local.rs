//! The control socket, and a node running for a home.
//!
//! Owns the Unix socket `<home>/shoal.sock` and its wire form, and
//! [`Running`]: a node started for a home as `shoal serve` and the
//! terminal client start it (listener, control socket, known peers). One
//! process owns a home (redb locks the store); while a node runs, every
//! other command on that home is sent here instead of opening the store.
//!
//! The wire carries the typed API ([`crate::api`]) as JSON, one object a
//! line. A client sends `{"v": 1, "call": REQUEST}` and reads any number
//! of `{"out": TEXT}` (streamed output) and `{"note": TEXT}` (a line for a
//! person), then one `{"ok": RESPONSE}` or `{"error": APIERROR}`; or it
//! sends `{"v": 1, "subscribe": {}}`, reads `{"ok": {"kind": "done"}}` once
//! the subscription is live, then `{"event": EVENT}` lines for as long as
//! it stays connected (the node pushes each as it happens).
//!
//! The socket drives the node as its owner (publish, read private
//! messages), so it is the owner's alone: mode 0600 in a 0700 home, and
//! every connection from another user is refused (checked with the
//! kernel's credentials of the peer, see [`check_peer`]). Imports `api`,
//! `node` and `home`; nothing imports it but the binaries.

use std::io::{BufRead as _, BufReader as StdBufReader, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::api::{self, ApiError, Event, Request, Response, Sink};
use crate::node::{Node, NodeError};

/// The socket's path in a home directory.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("shoal.sock")
}

/// What a client asks on one line.
#[derive(Debug, Serialize, Deserialize)]
struct Ask {
    /// The wire version, [`api::VERSION`].
    v: u32,
    #[serde(flatten)]
    what: Asked,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Asked {
    /// Run a request.
    Call(Request),
    /// Stream the node's events.
    Subscribe {},
}

/// One line the node sends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Reply {
    /// A line of streamed output.
    Out(String),
    /// A line for a person.
    Note(String),
    /// The answer.
    Ok(Box<Response>),
    /// The failure.
    Error(ApiError),
    /// An event of the node.
    Event(Event),
}

fn line_of(reply: &Reply) -> Vec<u8> {
    let mut line = serde_json::to_vec(reply).unwrap_or_else(|e| {
        serde_json::to_vec(&Reply::Error(ApiError::Failed(e.to_string()))).unwrap_or_default()
    });
    line.push(b'\n');
    line
}

/// Why a connection to the control socket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlRefusal {
    /// The peer runs as another user.
    #[error("refused a connection from user {peer}: the control socket serves only user {owner}")]
    OtherUser {
        /// The connecting process's user id.
        peer: u32,
        /// The user the node runs as.
        owner: u32,
    },
    /// The kernel did not say who connected.
    #[error("refused a connection whose user cannot be told: {0}")]
    Unknown(String),
}

/// Whether a process of user `peer` (as the kernel reports it, or why it
/// could not) may use the control socket of a node run by user `owner`:
/// only the same user may.
pub fn check_peer(peer: std::io::Result<u32>, owner: u32) -> Result<(), ControlRefusal> {
    match peer {
        Ok(peer) if peer == owner => Ok(()),
        Ok(peer) => Err(ControlRefusal::OtherUser { peer, owner }),
        Err(e) => Err(ControlRefusal::Unknown(e.to_string())),
    }
}

/// Serves the control socket until the node shuts down. Removes a stale
/// socket file first (we hold the store lock, so no other node is running).
/// The socket is made 0600; it serves only the user who owns it.
pub async fn serve(node: Node, home: &Path) -> std::io::Result<()> {
    let path = socket_path(home);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    // The socket file is ours: its owner is the user we run as.
    let owner = std::fs::metadata(&path)?.uid();
    loop {
        let (stream, _) = listener.accept().await?;
        let peer = stream.peer_cred().map(|c| c.uid());
        if let Err(why) = check_peer(peer, owner) {
            tracing::warn!("control socket: {why}");
            tokio::spawn(refuse(stream, why));
            continue;
        }
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(node, stream).await {
                tracing::debug!("control connection: {e}");
            }
        });
    }
}

/// Tells a refused client why, in the reply shape, and closes.
async fn refuse(mut stream: UnixStream, why: ControlRefusal) {
    let line = line_of(&Reply::Error(ApiError::Control(why.to_string())));
    let _ = stream.write_all(&line).await;
    let _ = stream.shutdown().await;
}

/// Streamed output of a request, handed to the connection's writer (which
/// holds at most a few lines: a slow reader slows the request).
struct ToClient(mpsc::Sender<Reply>);

impl Sink for ToClient {
    fn out(&mut self, line: &[u8]) -> Result<(), ApiError> {
        let text = String::from_utf8_lossy(line).into_owned();
        self.0
            .blocking_send(Reply::Out(text))
            .map_err(|_| ApiError::OutputClosed)
    }
    fn note(&mut self, line: &str) {
        let _ = self.0.blocking_send(Reply::Note(line.to_string()));
    }
}

async fn handle(node: Node, stream: UnixStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let ask: Ask = match serde_json::from_str(&line) {
            Ok(a) => a,
            Err(e) => {
                let why = ApiError::Usage(format!("bad request: {e}"));
                w.write_all(&line_of(&Reply::Error(why))).await?;
                continue;
            }
        };
        if ask.v != api::VERSION {
            let why = ApiError::Usage(format!(
                "this node speaks version {} of the control socket, not {}",
                api::VERSION,
                ask.v
            ));
            w.write_all(&line_of(&Reply::Error(why))).await?;
            continue;
        }
        match ask.what {
            Asked::Call(req) => {
                let (tx, mut rx) = mpsc::channel::<Reply>(64);
                let node = node.clone();
                let job = tokio::task::spawn_blocking(move || {
                    let mut sink = ToClient(tx.clone());
                    let reply = match api::execute(&node, req, &mut sink) {
                        Ok(r) => Reply::Ok(Box::new(r)),
                        Err(e) => Reply::Error(e),
                    };
                    let _ = tx.blocking_send(reply);
                });
                while let Some(reply) = rx.recv().await {
                    w.write_all(&line_of(&reply)).await?;
                }
                let _ = job.await;
            }
            Asked::Subscribe {} => return push_events(&node, lines, w).await,
        }
    }
    Ok(())
}

/// Sends the node's events as they happen, until the client goes.
async fn push_events(
    node: &Node,
    mut lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    mut w: tokio::net::unix::OwnedWriteHalf,
) -> std::io::Result<()> {
    let mut events = node.subscribe();
    // Live from here on: say so, so the client knows what it will see.
    w.write_all(&line_of(&Reply::Ok(Box::new(Response::Done))))
        .await?;
    loop {
        let said = tokio::select! {
            e = events.recv() => match e {
                Ok(e) => Event::of(e),
                Err(broadcast::error::RecvError::Lagged(_)) => vec![Event::Lagged],
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // The client closed (or sent something: a subscription only
            // listens).
            _ = lines.next_line() => return Ok(()),
        };
        for event in said {
            w.write_all(&line_of(&Reply::Event(event))).await?;
        }
    }
}

/// Sends one request to the node running on this home. `Ok(None)` when no
/// node runs there (no socket, or nobody answers it); streamed output goes
/// to `sink`.
pub fn call(
    home: &Path,
    req: &Request,
    sink: &mut dyn Sink,
) -> std::io::Result<Option<Result<Response, ApiError>>> {
    let Some(stream) = connect(home)? else {
        return Ok(None);
    };
    send(&stream, Asked::Call(req.clone()))?;
    for line in StdBufReader::new(stream).lines() {
        match parse_reply(&line?)? {
            Reply::Out(t) => {
                if let Err(e) = sink.out(t.as_bytes()) {
                    return Ok(Some(Err(e)));
                }
            }
            Reply::Note(t) => sink.note(&t),
            Reply::Ok(r) => return Ok(Some(Ok(*r))),
            Reply::Error(e) => return Ok(Some(Err(e))),
            Reply::Event(_) => {}
        }
    }
    Err(std::io::Error::other(
        "the node closed the control connection",
    ))
}

/// The events of the node running on this home, read on the calling
/// thread as they come (the iterator ends when the node stops); `None`
/// when no node runs there. Every event after this returns is seen.
pub fn subscribe(home: &Path) -> std::io::Result<Option<impl Iterator<Item = Event> + use<>>> {
    let Some(stream) = connect(home)? else {
        return Ok(None);
    };
    send(&stream, Asked::Subscribe {})?;
    let mut lines = StdBufReader::new(stream).lines();
    match lines
        .next()
        .transpose()?
        .map(|l| parse_reply(&l))
        .transpose()?
    {
        Some(Reply::Ok(_)) => {}
        Some(Reply::Error(e)) => return Err(std::io::Error::other(e.to_string())),
        _ => {
            return Err(std::io::Error::other(
                "the node did not take the subscription",
            ));
        }
    }
    Ok(Some(lines.map_while(
        |l| match parse_reply(&l.ok()?).ok()? {
            Reply::Event(e) => Some(e),
            _ => None,
        },
    )))
}

fn connect(home: &Path) -> std::io::Result<Option<std::os::unix::net::UnixStream>> {
    match std::os::unix::net::UnixStream::connect(socket_path(home)) {
        Ok(s) => Ok(Some(s)),
        Err(_) => Ok(None),
    }
}

fn send(mut stream: &std::os::unix::net::UnixStream, what: Asked) -> std::io::Result<()> {
    let ask = Ask {
        v: api::VERSION,
        what,
    };
    let mut line = serde_json::to_vec(&ask).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

fn parse_reply(line: &str) -> std::io::Result<Reply> {
    serde_json::from_str(line).map_err(|e| {
        std::io::Error::other(format!(
            "the node answered in a form this shoal does not read: {e}"
        ))
    })
}

/// Why a node could not be started for a home.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Opening the node.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The listen address is taken or invalid.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A node running for a home: its listener, its control socket and its
/// dials of known peers.
pub struct Running {
    node: Node,
    home: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    listen_error: Option<String>,
    first_events: std::sync::Mutex<Option<broadcast::Receiver<crate::node::NodeEvent>>>,
}

/// How `shoal room serve` runs its room (what is not given comes from the
/// config).
#[derive(Clone, Debug, Default)]
pub struct RoomOptions {
    /// The room's name.
    pub name: Option<String>,
    /// Who may attend: `open`, `community` or `restricted`.
    pub mode: Option<String>,
    /// Where invites are claimed over HTTP.
    pub http: Option<String>,
}

impl Running {
    /// Opens the node on `home` and starts it: listens on `listen` (else
    /// the configured address), serves the control socket (so `shoal`
    /// commands on this home work as soon as this returns) and dials the
    /// known peers. When the address is taken, fails if `must_listen`,
    /// else runs without listening and says why in
    /// [`Running::listen_error`]. Must run inside the tokio runtime.
    pub async fn start(
        home: &Path,
        listen: Option<String>,
        must_listen: bool,
    ) -> Result<Running, StartError> {
        Running::start_with(home, listen, must_listen, None).await
    }

    /// [`Running::start`], running a room too when `room` is given (its
    /// settings over the config's `[room]`) or the config has a `[room]`:
    /// see [`crate::room`].
    pub async fn start_with(
        home: &Path,
        listen: Option<String>,
        must_listen: bool,
        room: Option<RoomOptions>,
    ) -> Result<Running, StartError> {
        let config = crate::home::Home::open(home)
            .map_err(NodeError::from)?
            .config()
            .clone();
        let listen = listen.unwrap_or(config.listen);
        let node = {
            let home = home.to_owned();
            tokio::task::spawn_blocking(move || Node::open(&home))
                .await
                .map_err(|e| NodeError::Invalid(format!("opening the node: {e}")))??
        };
        // What the command line says, over the config's `[room]`.
        let room = match (room, config.room) {
            (None, config) => config,
            (Some(given), config) => {
                let mut room = config.unwrap_or_default();
                room.name = given.name.unwrap_or(room.name);
                room.mode = given.mode.unwrap_or(room.mode);
                room.http = given.http.or(room.http);
                Some(room)
            }
        };
        if let Some(room) = room {
            node.serve_room(&room)?;
        }
        let first_events = std::sync::Mutex::new(Some(node.subscribe()));
        let mut tasks = Vec::new();
        let listen_error = match tokio::net::TcpListener::bind(&listen).await {
            Ok(listener) => {
                let node = node.clone();
                tasks.push(tokio::spawn(async move {
                    // It only returns at shutdown.
                    let _ = node.serve(listener).await;
                }));
                None
            }
            Err(source) if must_listen => {
                node.shutdown().await;
                return Err(StartError::Listen {
                    addr: listen,
                    source,
                });
            }
            Err(source) => Some(
                StartError::Listen {
                    addr: listen,
                    source,
                }
                .to_string(),
            ),
        };
        {
            let node = node.clone();
            let home = home.to_owned();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = serve(node, &home).await {
                    tracing::warn!("control socket: {e}");
                }
            }));
        }
        let socket = socket_path(home);
        let deadline = Instant::now() + Duration::from_secs(2);
        while UnixStream::connect(&socket).await.is_err() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        node.dial_known_peers();
        Ok(Running {
            node,
            home: home.to_owned(),
            tasks,
            listen_error,
            first_events,
        })
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Why the node does not listen, when the address was taken.
    pub fn listen_error(&self) -> Option<&str> {
        self.listen_error.as_deref()
    }

    /// The node's events, from its start for the first caller.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        let first = self
            .first_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut rx = first.unwrap_or_else(|| self.node.subscribe());
        let (tx, out) = broadcast::channel(4096);
        tokio::spawn(async move {
            loop {
                let said = match rx.recv().await {
                    Ok(e) => Event::of(e),
                    Err(broadcast::error::RecvError::Lagged(_)) => vec![Event::Lagged],
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                for e in said {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
            }
        });
        out
    }

    /// Says goodbye to peers, stops listening and removes the control
    /// socket.
    pub async fn stop(&self) {
        self.node.shutdown().await;
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_file(socket_path(&self.home));
    }
}

/// Waits (up to `within`) until the store of `home` is closed, then opens
/// and closes it once more: a store left open when the process ends is
/// repaired on its next open, which takes long on a big store. A node
/// closes its store once every handle on it is gone. Answers whether it
/// was closed.
pub fn wait_closed(home: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match crate::home::Home::open(home).and_then(|h| Ok(h.store()?)) {
            Ok(store) => {
                drop(store);
                return true;
            }
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_may_use_the_control_socket() {
        assert_eq!(check_peer(Ok(1000), 1000), Ok(()));
        assert_eq!(check_peer(Ok(0), 0), Ok(()));
        assert_eq!(
            check_peer(Ok(1001), 1000),
            Err(ControlRefusal::OtherUser {
                peer: 1001,
                owner: 1000
            })
        );
        // Not even root is let in to a user's node.
        assert!(matches!(
            check_peer(Ok(0), 1000),
            Err(ControlRefusal::OtherUser { .. })
        ));
        let unknown = check_peer(Err(std::io::Error::other("no credentials")), 1000);
        assert!(matches!(unknown, Err(ControlRefusal::Unknown(_))));
        let line = ControlRefusal::OtherUser {
            peer: 1001,
            owner: 1000,
        }
        .to_string();
        assert!(
            line.contains("1001") && line.contains("only user 1000"),
            "{line}"
        );
    }
}
