//! The control socket: how `shoal` commands drive a running node.
//!
//! Owns the Unix socket `<home>/shoal.sock` and its line protocol. One
//! process owns a home (redb locks the store); while `shoal serve` runs,
//! every other command on that home sends its request here instead of
//! opening the store. Requests and replies are JSON, one per line:
//! a request `{"cmd": NAME, …args}`; replies are any number of
//! `{"out": TEXT}` (a line for stdout) and `{"err": TEXT}` (a line for
//! stderr), then one final `{"ok": VALUE}` or `{"error": TEXT, "code": N}`.
//!
//! The socket drives the node as its owner (publish, read private
//! messages), so it is the owner's alone: mode 0600 in a 0700 home, and
//! every connection from another user is refused (checked with the
//! kernel's credentials of the peer, see [`check_peer`]).

use std::io::{BufRead as _, BufReader as StdBufReader};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::commands::{self, Social};
use crate::crypto::{FeedId, MsgId};
use crate::feed::json as sjson;
use crate::ingest::{BATCH_LINES, LineResult, MAX_LINE_BYTES, read_line_bounded};
use crate::node::Node;

/// The socket's path in a home directory.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("shoal.sock")
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
    let mut line = json!({"error": why.to_string(), "code": 1})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    let _ = stream.write_all(&line).await;
    let _ = stream.shutdown().await;
}

struct Reply {
    w: tokio::net::unix::OwnedWriteHalf,
}

impl Reply {
    async fn send(&mut self, v: Json) -> std::io::Result<()> {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        self.w.write_all(&line).await
    }
    async fn out(&mut self, text: String) -> std::io::Result<()> {
        self.send(json!({ "out": text })).await
    }
}

async fn handle(node: Node, stream: UnixStream) -> std::io::Result<()> {
    let (r, w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut reply = Reply { w };
    while let Some(line) = lines.next_line().await? {
        let req: Json = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                reply
                    .send(json!({"error": format!("bad request: {e}"), "code": 2}))
                    .await?;
                continue;
            }
        };
        let result = run(&node, &req, &mut reply).await;
        match result {
            Ok(v) => reply.send(json!({ "ok": v })).await?,
            Err((code, msg)) => reply.send(json!({"error": msg, "code": code})).await?,
        }
    }
    Ok(())
}

type CmdResult = Result<Json, (u8, String)>;

fn problem(e: impl std::fmt::Display) -> (u8, String) {
    (1, e.to_string())
}

async fn run(node: &Node, req: &Json, reply: &mut Reply) -> CmdResult {
    let arg = |k: &str| req.get(k).and_then(Json::as_str);
    let store = node.store().clone();
    // The social commands: content made (or queries answered) from the
    // store on a blocking thread, exactly as the CLI does without a node.
    let social = {
        let (store, req) = (store.clone(), req.clone());
        tokio::task::spawn_blocking(move || commands::handle(&store, &req))
            .await
            .map_err(problem)?
    };
    match social.transpose()? {
        Some(Social::Publish(content)) => {
            let msg = node.publish(content).await.map_err(problem)?;
            return Ok(json!({"key": msg.id().to_string(), "sequence": msg.sequence()}));
        }
        Some(Social::Answer(answer)) => return Ok(answer),
        Some(Social::Group(cmd)) => {
            let node = node.clone();
            return tokio::task::spawn_blocking(move || {
                commands::group_publish(&cmd, |op| node.group_write(op))
            })
            .await
            .map_err(problem)?;
        }
        None => {}
    }
    match req.get("cmd").and_then(Json::as_str).unwrap_or("") {
        "whoami" => Ok(json!({ "id": node.id().to_string() })),
        "address" => Ok(json!({ "address": node.address() })),
        "publish" => {
            let text = arg("content").ok_or((2, "publish needs content".to_string()))?;
            let content = sjson::parse(text.as_bytes())
                .map_err(|e| (2, format!("content is not JSON: {e}")))?;
            let msg = node.publish(content).await.map_err(problem)?;
            Ok(json!({"key": msg.id().to_string(), "sequence": msg.sequence()}))
        }
        "get" => {
            let id = arg("id")
                .and_then(MsgId::parse)
                .ok_or((2, "not a message id".to_string()))?;
            let msg = store
                .get(&id)
                .map_err(problem)?
                .ok_or_else(|| (1, format!("message {id} is not in the store")))?;
            let line = commands::message_line(&store, &msg)?;
            reply
                .out(String::from_utf8_lossy(&line).into_owned())
                .await
                .map_err(problem)?;
            Ok(Json::Null)
        }
        "log" => {
            let author = match arg("author") {
                Some(a) => Some(FeedId::parse(a).ok_or((2, format!("not a feed id: {a}")))?),
                None => None,
            };
            let mut after = req.get("since").and_then(Json::as_u64).unwrap_or(0);
            let mut left = req.get("limit").and_then(Json::as_u64).unwrap_or(u64::MAX);
            while left > 0 {
                let n = left.min(1000) as usize;
                let (page, next) = store
                    .messages_after(author.as_ref(), after, n)
                    .map_err(problem)?;
                for m in &page {
                    reply
                        .out(String::from_utf8_lossy(&m.to_kvt()).into_owned())
                        .await
                        .map_err(problem)?;
                }
                after = next;
                left -= page.len() as u64;
                if page.len() < n {
                    break;
                }
            }
            Ok(Json::Null)
        }
        "import" => {
            let path = arg("path").ok_or((2, "import needs a path".to_string()))?;
            let file =
                std::fs::File::open(path).map_err(|e| (1, format!("cannot open {path}: {e}")))?;
            let mut reader = StdBufReader::with_capacity(1 << 20, file);
            let (mut imported, mut rejected, mut duplicates) = (0u64, 0u64, 0u64);
            let mut line_no = 0u64;
            loop {
                let mut items: Vec<(u64, Vec<u8>)> = Vec::new();
                let mut buf = Vec::new();
                while items.len() < BATCH_LINES {
                    let Some(ok) = read_line_bounded(&mut reader, &mut buf).map_err(problem)?
                    else {
                        break;
                    };
                    line_no += 1;
                    if !ok {
                        // Longer than any message can be: rejected, not kept.
                        rejected += 1;
                        let reason = format!("line longer than {MAX_LINE_BYTES} bytes");
                        reply
                            .send(json!({"err": format!("rejected line {line_no}: {reason}")}))
                            .await
                            .map_err(problem)?;
                    } else if !buf.iter().all(u8::is_ascii_whitespace) {
                        items.push((line_no, std::mem::take(&mut buf)));
                    }
                }
                if items.is_empty() {
                    break;
                }
                let refs: Vec<&[u8]> = items.iter().map(|(_, b)| b.as_slice()).collect();
                let results = node.submit(&refs).await;
                for ((n, _), r) in items.iter().zip(results) {
                    match r {
                        LineResult::Stored(..) => imported += 1,
                        LineResult::Duplicate(..) => duplicates += 1,
                        LineResult::Rejected(reason) => {
                            rejected += 1;
                            reply
                                .send(json!({"err": format!("rejected line {n}: {reason}")}))
                                .await
                                .map_err(problem)?;
                        }
                    }
                }
            }
            Ok(json!({"imported": imported, "rejected": rejected, "duplicates": duplicates}))
        }
        "connect" => {
            let addr = arg("address").ok_or((2, "connect needs an address".to_string()))?;
            let peer = node.connect(addr).await.map_err(problem)?;
            node.remember(addr);
            Ok(json!({ "connected": peer.to_string() }))
        }
        "peers" => {
            let known: Vec<Json> = store
                .peers()
                .map_err(problem)?
                .into_iter()
                .map(|(a, r)| {
                    let failures = node.dial_failures(&a);
                    json!({"address": a, "record": r, "dial_failures": failures})
                })
                .collect();
            Ok(json!({ "connected": node.peers(), "known": known }))
        }
        "status" => node.status().map_err(problem),
        other => Err((2, format!("unknown command {other:?}"))),
    }
}

/// Sends one request to a running node. `Ok(None)` when no node runs on this
/// home (no socket, or nobody answers it). Output lines go to `on_out` /
/// `on_err`; the final answer is returned as `Ok(Some(Ok(value)))` or
/// `Ok(Some(Err((code, message))))`.
pub fn request(
    home: &Path,
    req: &Json,
    mut on_out: impl FnMut(&str),
    mut on_err: impl FnMut(&str),
) -> std::io::Result<Option<Result<Json, (u8, String)>>> {
    use std::io::Write as _;
    let path = socket_path(home);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    let mut line = req.to_string().into_bytes();
    line.push(b'\n');
    stream.write_all(&line)?;
    let reader = StdBufReader::new(stream);
    for line in reader.lines() {
        let line = line?;
        let v: Json = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        if let Some(t) = v.get("out").and_then(Json::as_str) {
            on_out(t);
        } else if let Some(t) = v.get("err").and_then(Json::as_str) {
            on_err(t);
        } else if let Some(ok) = v.get("ok") {
            return Ok(Some(Ok(ok.clone())));
        } else if let Some(e) = v.get("error").and_then(Json::as_str) {
            let code = v.get("code").and_then(Json::as_u64).unwrap_or(1) as u8;
            return Ok(Some(Err((code, e.to_string()))));
        }
    }
    Err(std::io::Error::other(
        "the node closed the control connection",
    ))
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
