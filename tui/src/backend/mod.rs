//! Where the screens' data comes from: one small trait, [`Backend`], whose
//! one way in is [`Backend::call`] with a `shoal::api::Request`, and two
//! implementations that the UI cannot tell apart.
//!
//! - [`Embedded`]: this process owns the home. It runs the node as `shoal
//!   serve` would (`shoal::local::Running`: listener, control socket,
//!   known peers) and answers requests with `shoal::api::execute`.
//! - [`Attached`]: a `shoal serve` already owns the home; every request
//!   goes through its control socket (`shoal::local::call`), and its events
//!   are pushed through a subscription there.
//!
//! The typed reads the screens use ([`Backend::timeline`], …) are each one
//! request, written once here for both. Every call is synchronous and may
//! block (a store read, a socket round trip, a publish): the runtime makes
//! them on blocking threads, never on the UI loop. Imports `shoal::api`,
//! `shoal::local` and `model`; never the UI.

mod attached;
mod embedded;

pub use attached::Attached;
pub use embedded::Embedded;

use shoal::api::{ApiError, Event, Request, Response};
use tokio::sync::broadcast;

use crate::model::{
    BlobState, Cursor, GroupInfo, Post, Profile, Publish, RoomView, Status, ThreadView,
};

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The request failed (a bad id, no recipients, a store error).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Starting the node failed.
    #[error(transparent)]
    Start(#[from] shoal::local::StartError),
    /// The running node went away.
    #[error("the running shoal node stopped answering on its control socket")]
    Gone,
    /// Talking to the running node failed.
    #[error("control socket: {0}")]
    Control(#[source] std::io::Error),
    /// An answer was not the one its request has.
    #[error("unexpected answer: {0}")]
    Shape(String),
    /// Not a valid id.
    #[error("{0}")]
    BadId(String),
}

/// Results of backend calls.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;

fn unexpected(r: Response) -> BackendError {
    BackendError::Shape(format!("{r:?}").chars().take(200).collect())
}

fn msg_id(s: &str) -> Result<shoal::crypto::MsgId> {
    shoal::crypto::MsgId::parse(s)
        .ok_or_else(|| BackendError::BadId(format!("not a message id: {s}")))
}

fn feed_id(s: &str) -> Result<shoal::crypto::FeedId> {
    shoal::crypto::FeedId::parse(s)
        .ok_or_else(|| BackendError::BadId(format!("not a feed id: {s}")))
}

/// The node the screens show. Calls may block.
pub trait Backend: Send + Sync + 'static {
    /// Our feed id.
    fn me(&self) -> &str;
    /// Runs one request.
    fn call(&self, req: Request) -> Result<Response>;
    /// The node's events, pushed as they happen.
    fn events(&self) -> broadcast::Receiver<Event>;
    /// A line saying how this client reaches its node.
    fn describe(&self) -> String;
    /// Something wrong from the start that the user should see (the node
    /// could not listen).
    fn warning(&self) -> Option<String> {
        None
    }

    /// Timeline posts older than `before`, newest first.
    fn timeline(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        items(self.call(Request::Feed { before, limit })?)
    }
    /// Private messages older than `before`, newest first.
    fn inbox(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        items(self.call(Request::Inbox { before, limit })?)
    }
    /// The thread of a message.
    fn thread(&self, id: &str) -> Result<ThreadView> {
        match self.call(Request::Thread { id: msg_id(id)? })? {
            Response::Thread(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }
    /// A feed's profile and contacts.
    fn profile(&self, id: &str) -> Result<Profile> {
        match self.call(Request::Profile {
            id: Some(feed_id(id)?),
        })? {
            Response::Profile(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }
    /// How a feed replicates: whether we want it, what we hold, what
    /// peers claim.
    fn why(&self, id: &str) -> Result<crate::model::Why> {
        match self.call(Request::Why { id: feed_id(id)? })? {
            Response::Why(w) => Ok(w),
            other => Err(unexpected(other)),
        }
    }
    /// A feed's public posts older than `before`, newest first.
    fn posts_by(&self, id: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        items(self.call(Request::PostsBy {
            id: feed_id(id)?,
            before,
            limit,
        })?)
    }
    /// One message as stored, pretty-printed JSON (decrypted content added).
    fn raw(&self, id: &str) -> Result<String> {
        match self.call(Request::Get { id: msg_id(id)? })? {
            Response::Message { line } => {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| BackendError::Shape(format!("stored message is not JSON: {e}")))?;
                serde_json::to_string_pretty(&v).map_err(|e| BackendError::Shape(e.to_string()))
            }
            other => Err(unexpected(other)),
        }
    }
    /// A search of the whole store (default limit).
    fn search(&self, query: &str) -> Result<shoal::api::SearchResults> {
        match self.call(Request::Search(shoal::api::SearchQuery {
            text: query.to_string(),
            limit: Some(50),
            ..Default::default()
        }))? {
            Response::Search(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }
    /// The saved searches, saving or forgetting one first.
    fn searches(&self, save: Option<String>, forget: Option<String>) -> Result<Vec<String>> {
        match self.call(Request::Searches { save, forget })? {
            Response::Searches { searches } => Ok(searches),
            other => Err(unexpected(other)),
        }
    }
    /// Our private groups (and those we were removed from).
    fn groups(&self) -> Result<Vec<GroupInfo>> {
        match self.call(Request::GroupList)? {
            Response::Groups { groups } => Ok(groups),
            other => Err(unexpected(other)),
        }
    }
    /// A group's posts older than `before`, newest first.
    fn group_posts(&self, group: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        match self.call(Request::GroupRead {
            group: msg_id(group)?,
            before,
            limit,
        })? {
            Response::GroupPosts { items, .. } => Ok(items),
            other => Err(unexpected(other)),
        }
    }
    /// Publishes (group operations too); answers the new message's id.
    fn publish(&self, what: &Publish) -> Result<String> {
        let answer = self.call(what.request().map_err(BackendError::BadId)?)?;
        match answer.key() {
            Some(k) => Ok(k.to_string()),
            None => Err(unexpected(answer)),
        }
    }
    /// What we know of a blob: its file when held; when not, a running
    /// node starts asking peers for it (and says so when it arrives).
    fn blob(&self, id: &str) -> Result<BlobState> {
        let id = shoal::crypto::BlobId::parse(id)
            .ok_or_else(|| BackendError::BadId(format!("not a blob id: {id}")))?;
        match self.call(Request::BlobGet {
            id,
            out: None,
            wait_secs: 0,
        })? {
            Response::Blob(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }
    /// Mutes `target` (a feed id, or a message id: its thread), locally;
    /// unmutes it when it was muted already. Answers whether it is muted
    /// now.
    fn toggle_mute(&self, target: &str) -> Result<bool> {
        let mute = Request::Mute {
            target: target.to_string(),
            word: false,
        };
        match self.call(mute)? {
            Response::Muted { changed: true, .. } => Ok(true),
            Response::Muted { .. } => {
                self.call(Request::Unmute {
                    target: target.to_string(),
                    word: false,
                })?;
                Ok(false)
            }
            other => Err(unexpected(other)),
        }
    }
    /// A message's history, as lines: the original, then each revision
    /// by its author, oldest first.
    fn history(&self, id: &str) -> Result<String> {
        match self.call(Request::History { id: msg_id(id)? })? {
            Response::History(h) => {
                let mut out = String::new();
                for (i, v) in h.versions.iter().enumerate() {
                    let label = if i == 0 {
                        "original".to_string()
                    } else {
                        format!("revision {i}")
                    };
                    out.push_str(&format!(
                        "{label} · {} · {}\n",
                        crate::text::date(v.time),
                        v.key
                    ));
                    for line in v.text.as_deref().unwrap_or("").lines() {
                        out.push_str(&format!("  {line}\n"));
                    }
                    out.push('\n');
                }
                if h.ignored > 0 {
                    out.push_str(&format!(
                        "({} ignored: revisions by feeds other than its author)\n",
                        h.ignored
                    ));
                }
                Ok(out)
            }
            other => Err(unexpected(other)),
        }
    }
    /// Marks messages (by receive sequence) read.
    fn mark_read(&self, rxs: &[u64]) -> Result<()> {
        self.call(Request::MarkRead { rxs: rxs.to_vec() })?;
        Ok(())
    }
    /// The rooms the node is in and who attends each (us excluded).
    fn rooms(&self) -> Result<Vec<RoomView>> {
        match self.call(Request::Rooms)? {
            Response::Rooms { rooms } => Ok(rooms),
            other => Err(unexpected(other)),
        }
    }
    /// What the node says about itself.
    fn status(&self) -> Result<Status> {
        match self.call(Request::Status)? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

fn items(r: Response) -> Result<Vec<Post>> {
    match r {
        Response::Items { items } => Ok(items),
        other => Err(unexpected(other)),
    }
}
