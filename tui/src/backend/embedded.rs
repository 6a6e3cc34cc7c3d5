//! The embedded node: this process owns the home, as `shoal serve` would.
//!
//! Opens the node, listens on the configured address, dials known peers,
//! and serves the control socket so `shoal` commands on the same home keep
//! working. Reads go straight to the store through `shoal::social::View`;
//! writes go through `Node::publish` (group operations through
//! `Node::group_write`, read marks through `Node::mark_read`: the node's
//! one writer makes them), so replication sessions push them. Groups are read
//! with the command layer's `group-list` and `group-read`.
//! Imports `shoal`; never the UI.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use shoal::crypto::{FeedId, MsgId};
use shoal::node::{Node, NodeEvent};
use shoal::social::{View, compose};

use super::{Backend, BackendError, Result, pretty};
use crate::model::{self, Cursor, GroupInfo, Post, Profile, Publish, Status, ThreadView};

/// A node run by this process.
pub struct Embedded {
    node: Node,
    me: String,
    home: PathBuf,
    rt: Handle,
    /// The listener and the control socket, stopped by [`Embedded::stop`].
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Why we are not listening, when the configured address was taken.
    listen_error: Option<String>,
    /// Events from the start (the listener's first line), for the first
    /// watcher.
    first_watch: Mutex<Option<broadcast::Receiver<NodeEvent>>>,
}

fn json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| BackendError::Shape(e.to_string()))
}

fn feed_id(s: &str) -> Result<FeedId> {
    FeedId::parse(s).ok_or_else(|| BackendError::BadId(s.to_string()))
}

fn msg_id(s: &str) -> Result<MsgId> {
    MsgId::parse(s).ok_or_else(|| BackendError::BadId(s.to_string()))
}

impl Embedded {
    /// Opens the node on `home` and starts it: listener (when the configured
    /// address is free), control socket, known peers. Must run inside the
    /// tokio runtime.
    pub async fn start(home: &Path) -> Result<Embedded> {
        let listen = shoal::home::Home::open(home)?.config().listen.clone();
        let node = {
            let home = home.to_owned();
            tokio::task::spawn_blocking(move || Node::open(&home))
                .await
                .map_err(|e| BackendError::Shape(format!("opening the node: {e}")))??
        };
        let first_watch = Mutex::new(Some(node.subscribe()));
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
            Err(source) => Some(
                BackendError::Listen {
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
                // Without the socket, `shoal` commands on this home say the
                // store is in use; the client itself works on.
                let _ = shoal::local::serve(node, &home).await;
            }));
        }
        // `shoal` commands on this home work as soon as this returns.
        let socket = shoal::local::socket_path(home);
        let deadline = Instant::now() + Duration::from_secs(2);
        while tokio::net::UnixStream::connect(&socket).await.is_err() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        node.dial_known_peers();
        Ok(Embedded {
            me: node.id().to_string(),
            node,
            home: home.to_owned(),
            rt: Handle::current(),
            tasks: Mutex::new(tasks),
            listen_error,
            first_watch,
        })
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Why the node does not listen, when the configured address was taken.
    pub fn listen_error(&self) -> Option<&str> {
        self.listen_error.as_deref()
    }

    /// Says goodbye to peers, stops listening and removes the control
    /// socket.
    pub async fn stop(&self) {
        self.node.shutdown().await;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
        }
        let _ = std::fs::remove_file(shoal::local::socket_path(&self.home));
    }

    /// Waits (up to `within`) until the node's store is closed, then opens
    /// and closes it once more: a store left open when the process ends is
    /// repaired on its next open, which takes long on a big store. The
    /// node closes its store once every handle on it is gone (its tasks
    /// ended, the runtime shut down). Answers whether it was closed.
    pub fn wait_closed(home: &Path, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match shoal::home::Home::open(home).and_then(|h| Ok(h.store()?)) {
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

    /// A reading request of shoal's command layer, answered from the store.
    fn query(&self, req: &serde_json::Value) -> Result<serde_json::Value> {
        shoal::commands::query(self.node.store(), req)
            .ok_or_else(|| BackendError::Shape("not a reading request".into()))?
            .map_err(|(_, e)| BackendError::Refused(e))
    }

    fn posts(items: Vec<shoal::social::Item>) -> Result<Vec<Post>> {
        model::from_json(json(&items)?).map_err(BackendError::Shape)
    }
}

impl Backend for Embedded {
    fn me(&self) -> &str {
        &self.me
    }

    fn timeline(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        let r = self.node.store().reader()?;
        let items = View::new(&r)?.timeline(before, limit)?;
        Self::posts(items)
    }

    fn inbox(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        let r = self.node.store().reader()?;
        let items = View::new(&r)?.inbox(before, limit)?;
        Self::posts(items)
    }

    fn thread(&self, id: &str) -> Result<ThreadView> {
        let r = self.node.store().reader()?;
        let t = View::new(&r)?.thread(&msg_id(id)?)?;
        model::from_json(json(&t)?).map_err(BackendError::Shape)
    }

    fn profile(&self, id: &str) -> Result<Profile> {
        let r = self.node.store().reader()?;
        let p = View::new(&r)?.profile(&feed_id(id)?)?;
        model::from_json(json(&p)?).map_err(BackendError::Shape)
    }

    fn posts_by(&self, id: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        let feed = feed_id(id)?;
        let r = self.node.store().reader()?;
        let mut view = View::new(&r)?;
        let mut items = Vec::new();
        for p in r.posts_before(&[feed], before, limit)? {
            if let Some(m) = r.at(p.rx)? {
                items.push(view.item(&m)?);
            }
        }
        Self::posts(items)
    }

    fn raw(&self, id: &str) -> Result<String> {
        let store = self.node.store();
        let m = store
            .get(&msg_id(id)?)?
            .ok_or_else(|| BackendError::NotFound(id.to_string()))?;
        let line =
            shoal::commands::message_line(store, &m).map_err(|(_, e)| BackendError::Refused(e))?;
        pretty(&line)
    }

    fn groups(&self) -> Result<Vec<GroupInfo>> {
        model::groups(self.query(&model::group_list_request())?).map_err(BackendError::Shape)
    }

    fn group_posts(&self, group: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        let req = model::group_read_request(group, before, limit);
        model::items(self.query(&req)?).map_err(BackendError::Shape)
    }

    fn publish(&self, what: &Publish) -> Result<String> {
        if what.is_group() {
            // Group messages are made inside the write that stores them.
            let req = what.request();
            let cmd = match shoal::commands::handle(self.node.store(), &req) {
                Some(Ok(shoal::commands::Social::Group(cmd))) => cmd,
                Some(Err((_, e))) => return Err(BackendError::Refused(e)),
                _ => return Err(BackendError::Shape("not a group request".into())),
            };
            let v = shoal::commands::group_publish(&cmd, |op| self.node.group_write(op))
                .map_err(|(_, e)| BackendError::Refused(e))?;
            return v
                .get("key")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| BackendError::Shape(format!("group operation answered {v}")));
        }
        let content = match what {
            Publish::Post { text } => compose::post(text),
            other => shoal::commands::compose(self.node.store(), &other.request())
                .ok_or_else(|| BackendError::Shape("not a publishing request".into()))?
                .map_err(|(_, e)| BackendError::Refused(e))?,
        };
        // Called on a blocking thread: wait for the publish there.
        let msg = self.rt.block_on(self.node.publish(content))?;
        Ok(msg.id().to_string())
    }

    fn mark_read(&self, rxs: &[u64]) -> Result<()> {
        Ok(self.node.mark_read(rxs)?)
    }

    fn status(&self) -> Result<Status> {
        model::from_json(self.node.status()?).map_err(BackendError::Shape)
    }

    fn watch(&self) -> Option<broadcast::Receiver<NodeEvent>> {
        let first = self
            .first_watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        Some(first.unwrap_or_else(|| self.node.subscribe()))
    }

    fn warning(&self) -> Option<String> {
        self.listen_error.clone()
    }

    fn describe(&self) -> String {
        match self.node.address() {
            Some(a) => format!(
                "running the node for {}, reachable at {a}",
                self.home.display()
            ),
            None => format!("running the node for {}", self.home.display()),
        }
    }
}
