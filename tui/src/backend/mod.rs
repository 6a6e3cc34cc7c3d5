//! Where the screens' data comes from: one small trait, [`Backend`], with
//! two implementations that the UI cannot tell apart.
//!
//! - [`Embedded`]: this process owns the home. It opens a `shoal::node::Node`
//!   on it, listens and replicates as `shoal serve` does, and serves the
//!   control socket so `shoal` commands keep working while the client runs.
//! - [`Attached`]: a `shoal serve` already owns the home; every read and
//!   write goes through its control socket.
//!
//! Both answer with the JSON shapes of shoal's read models, read into
//! [`crate::model`]. Every method is synchronous and may block (store reads,
//! a socket round trip, a publish): the runtime calls them on blocking
//! threads, never on the UI loop. Imports `shoal` and `model`; never the UI.

mod attached;
mod embedded;

pub use attached::Attached;
pub use embedded::Embedded;

use tokio::sync::broadcast;

use crate::model::{Cursor, GroupInfo, Post, Profile, Publish, Status, ThreadView};
use shoal::node::NodeEvent;

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// Opening or running the node.
    #[error(transparent)]
    Node(#[from] shoal::node::NodeError),
    /// The home directory.
    #[error(transparent)]
    Home(#[from] shoal::home::HomeError),
    /// Reading the store.
    #[error(transparent)]
    Store(#[from] shoal::store::StoreError),
    /// Listening for peers.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The configured address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The command layer refused the request (a bad id, no recipients).
    #[error("{0}")]
    Refused(String),
    /// Talking to the running node failed.
    #[error("control socket: {0}")]
    Control(#[source] std::io::Error),
    /// The running node went away.
    #[error("the running shoal node stopped answering on its control socket")]
    Gone,
    /// An answer was not what this client understands.
    #[error("{0}")]
    Shape(String),
    /// Not a valid id.
    #[error("not a valid id: {0}")]
    BadId(String),
    /// The message is not in the store.
    #[error("message {0} is not in the store")]
    NotFound(String),
}

/// Results of backend calls.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;

/// The data access the screens need. Calls may block.
pub trait Backend: Send + Sync + 'static {
    /// Our feed id.
    fn me(&self) -> &str;
    /// Timeline posts older than `before`, newest first.
    fn timeline(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>>;
    /// Private messages older than `before`, newest first.
    fn inbox(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>>;
    /// The thread of a message.
    fn thread(&self, id: &str) -> Result<ThreadView>;
    /// A feed's profile and contacts.
    fn profile(&self, id: &str) -> Result<Profile>;
    /// A feed's public posts older than `before`, newest first.
    fn posts_by(&self, id: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>>;
    /// One message as stored, pretty-printed JSON (decrypted content added).
    fn raw(&self, id: &str) -> Result<String>;
    /// Our private groups (and those we were removed from).
    fn groups(&self) -> Result<Vec<GroupInfo>>;
    /// A group's posts older than `before`, newest first.
    fn group_posts(&self, group: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>>;
    /// Publishes (group operations too); answers the new message's id.
    fn publish(&self, what: &Publish) -> Result<String>;
    /// Marks messages (by receive sequence) read.
    fn mark_read(&self, rxs: &[u64]) -> Result<()>;
    /// What the node says about itself.
    fn status(&self) -> Result<Status>;
    /// The node's events, when this process runs the node; `None` when
    /// attached (the runtime then polls [`Backend::status`] for changes).
    fn watch(&self) -> Option<broadcast::Receiver<NodeEvent>>;
    /// A line saying how this client reaches its node.
    fn describe(&self) -> String;
    /// Something wrong from the start that the user should see (the node
    /// could not listen).
    fn warning(&self) -> Option<String> {
        None
    }
}

/// `{"key", "value", "timestamp"}` (with `"decrypted"`) as indented JSON.
fn pretty(line: &[u8]) -> Result<String> {
    let v: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| BackendError::Shape(format!("stored message is not JSON: {e}")))?;
    serde_json::to_string_pretty(&v).map_err(|e| BackendError::Shape(e.to_string()))
}
