//! The one typed API from the keyboard to the store: every command the
//! CLI and the terminal client give is a [`Request`], answered by
//! [`execute`] with a [`Response`] or an [`ApiError`].
//!
//! The same `execute` serves a `shoal` command that opened the home itself
//! (a [`Local`] host), a running node (the [`Host`] impl of
//! [`crate::node::Node`]), the control socket ([`crate::local`], which
//! carries these types as JSON lines) and the terminal client (in-process
//! or through that socket). The read models it answers with ([`Item`],
//! [`Thread`], [`Profile`], [`GroupInfo`], …) are defined once, in
//! `social` and `store`, and shared by all of them.
//!
//! Synchronous: called on blocking threads (a running node's async parts
//! are waited for here). Imports `node`, `home`, `ingest`, `social`,
//! `store`, `feed` and `crypto`; nothing imports it but `local` and the
//! binaries.

mod host;

pub use host::{Host, Local};

use serde::{Deserialize, Serialize};

use crate::crypto::{FeedId, MsgId};
use crate::feed::VerifiedMsg;
use crate::feed::json::{self as sjson, Value};
use crate::social::{View, compose};
use crate::store::{GroupOp, Store, StoreError, StoredMsg};

pub use crate::node::PeerInfo;
pub use crate::social::{Contacts, Entry, Item, Person, Profile, Thread};
pub use crate::store::{Cursor, EpochInfo, GroupInfo, PeerRecord};

/// The version of the wire form of requests and answers (the control
/// socket checks it on every line).
pub const VERSION: u32 = 1;

/// Most items one page answers.
pub const MAX_PAGE: usize = 10_000;

/// Everything a user can ask of shoal. On the wire: `{"cmd": NAME, …}`,
/// names in kebab-case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Request {
    /// Our feed id.
    Whoami,
    /// The multiserver address peers dial.
    Address,
    /// Publish any content object, given as JSON text (kept to the byte).
    Publish {
        /// The content.
        content: String,
    },
    /// Publish a post.
    Post {
        /// Its text.
        text: String,
    },
    /// Reply in the thread of a message (private when it is).
    Reply {
        /// The message replied to.
        id: MsgId,
        /// The text.
        text: String,
    },
    /// Like a message, or take the like back.
    Like {
        /// The message.
        id: MsgId,
        /// Take it back.
        #[serde(default)]
        undo: bool,
    },
    /// Set our name.
    Name {
        /// The name.
        name: String,
    },
    /// Follow a feed.
    Follow {
        /// The feed.
        id: FeedId,
    },
    /// Stop following a feed.
    Unfollow {
        /// The feed.
        id: FeedId,
    },
    /// Block a feed.
    Block {
        /// The feed.
        id: FeedId,
    },
    /// A private message to 1..7 feeds besides us.
    Dm {
        /// The recipients.
        to: Vec<FeedId>,
        /// The text.
        text: String,
    },
    /// Timeline posts older than `before`, newest first.
    Feed {
        /// The page position.
        #[serde(default)]
        before: Option<Cursor>,
        /// At most this many.
        limit: usize,
    },
    /// Private messages older than `before`, newest first.
    Inbox {
        /// The page position.
        #[serde(default)]
        before: Option<Cursor>,
        /// At most this many.
        limit: usize,
    },
    /// The thread of a message.
    Thread {
        /// Any message of it.
        id: MsgId,
    },
    /// Whom a feed follows and blocks, and its followers (default: us).
    Contacts {
        /// The feed.
        #[serde(default)]
        id: Option<FeedId>,
    },
    /// A feed's profile (default: us).
    Profile {
        /// The feed.
        #[serde(default)]
        id: Option<FeedId>,
    },
    /// A feed's public posts older than `before`, newest first.
    PostsBy {
        /// The feed.
        id: FeedId,
        /// The page position.
        #[serde(default)]
        before: Option<Cursor>,
        /// At most this many.
        limit: usize,
    },
    /// One message as stored, `{key, value, timestamp}` (with
    /// `decrypted` content when we opened it).
    Get {
        /// The message.
        id: MsgId,
    },
    /// Stored messages as `{key, value, timestamp}` lines, streamed to the
    /// caller's [`Sink`].
    Log {
        /// Only this feed, in feed order (else every feed in receive order).
        #[serde(default)]
        author: Option<FeedId>,
        /// Only after this sequence (feed or receive sequence).
        #[serde(default)]
        since: u64,
        /// At most this many.
        #[serde(default)]
        limit: Option<u64>,
    },
    /// Verify and store messages from a file of JSON lines (`-`: standard
    /// input, for a `shoal` command without a node only); rejections go to
    /// the caller's [`Sink`].
    Import {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A new private group with us as its admin.
    GroupCreate {
        /// Its name.
        name: String,
    },
    /// Add members to a group.
    GroupAdd {
        /// The group.
        group: MsgId,
        /// The feeds.
        members: Vec<FeedId>,
        /// Make them admins too.
        #[serde(default)]
        admin: bool,
    },
    /// Remove members (a rekey).
    GroupRemove {
        /// The group.
        group: MsgId,
        /// The feeds.
        members: Vec<FeedId>,
    },
    /// Take admin rights from junior admins.
    GroupDemote {
        /// The group.
        group: MsgId,
        /// The feeds.
        members: Vec<FeedId>,
    },
    /// Make members admins.
    GroupPromote {
        /// The group.
        group: MsgId,
        /// The feeds.
        members: Vec<FeedId>,
    },
    /// Post to a group.
    GroupPost {
        /// The group.
        group: MsgId,
        /// The text.
        text: String,
    },
    /// Our groups.
    GroupList,
    /// A group's members, admins and epochs.
    GroupMembers {
        /// The group.
        group: MsgId,
    },
    /// A group's posts older than `before`, newest first.
    GroupRead {
        /// The group.
        group: MsgId,
        /// The page position.
        #[serde(default)]
        before: Option<Cursor>,
        /// At most this many.
        limit: usize,
    },
    /// Mark messages (by receive sequence) read.
    MarkRead {
        /// Their receive sequences.
        rxs: Vec<u64>,
    },
    /// Dial a peer and keep it connected (without a node: remember it).
    Connect {
        /// Its multiserver address.
        address: String,
    },
    /// Known peers and live connections.
    Peers,
    /// Replication progress and limits.
    Status,
}

impl Request {
    /// Checks what can be checked without the store: a clear usage error
    /// before anything is opened.
    pub fn check(&self) -> Result<(), ApiError> {
        match self {
            Request::Publish { content } => {
                parse_content(content)?;
            }
            Request::Name { name } if name.trim().is_empty() => {
                return Err(ApiError::Usage("the name is empty".into()));
            }
            Request::GroupCreate { name } if name.trim().is_empty() => {
                return Err(ApiError::Usage("the group name is empty".into()));
            }
            Request::Connect { address } => {
                address.parse::<crate::net::MultiAddr>().map_err(|e| {
                    ApiError::Usage(format!("not a multiserver address {address}: {e}"))
                })?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether it publishes on our feed.
    pub fn publishes(&self) -> bool {
        matches!(
            self,
            Request::Publish { .. }
                | Request::Post { .. }
                | Request::Reply { .. }
                | Request::Like { .. }
                | Request::Name { .. }
                | Request::Follow { .. }
                | Request::Unfollow { .. }
                | Request::Block { .. }
                | Request::Dm { .. }
                | Request::GroupCreate { .. }
                | Request::GroupAdd { .. }
                | Request::GroupRemove { .. }
                | Request::GroupDemote { .. }
                | Request::GroupPromote { .. }
                | Request::GroupPost { .. }
        )
    }
}

fn parse_content(text: &str) -> Result<Value, ApiError> {
    let value = sjson::parse(text.as_bytes())
        .map_err(|e| ApiError::Usage(format!("content is not JSON: {e}")))?;
    if !matches!(value, Value::Object(_)) {
        return Err(ApiError::Usage(
            "content must be a JSON object with a \"type\"".into(),
        ));
    }
    Ok(value)
}

/// What a request is answered with. On the wire `{"kind": NAME, "body":
/// …}`; [`Response::body`] is what `shoal --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Response {
    /// Our feed id (`whoami`).
    Id {
        /// It.
        id: FeedId,
    },
    /// Where peers dial us, when known.
    Address {
        /// `net:HOST:PORT~shs:KEY`.
        address: Option<String>,
    },
    /// A message we published.
    Published {
        /// Its id.
        key: MsgId,
        /// Its sequence.
        sequence: u64,
    },
    /// A page of items.
    Items {
        /// Newest first.
        items: Vec<Item>,
    },
    /// A thread.
    Thread(Thread),
    /// A feed's contacts.
    Contacts {
        /// The feed.
        id: FeedId,
        /// Its name.
        name: Option<String>,
        /// Its contacts.
        contacts: Contacts,
    },
    /// A profile.
    Profile(Profile),
    /// Our groups.
    Groups {
        /// Each.
        groups: Vec<GroupInfo>,
    },
    /// One group.
    Group(GroupInfo),
    /// A page of a group's posts.
    GroupPosts {
        /// The group.
        group: String,
        /// Its name.
        name: Option<String>,
        /// Newest first.
        items: Vec<Item>,
    },
    /// A group created.
    GroupCreated {
        /// Its id.
        group: MsgId,
        /// The message creating it (its id).
        key: MsgId,
    },
    /// A group operation published.
    GroupWritten {
        /// The group.
        group: Option<MsgId>,
        /// The last message written.
        key: MsgId,
        /// Its sequence.
        sequence: u64,
    },
    /// One stored message.
    Message {
        /// `{key, value, timestamp}` (and `decrypted`), as JSON text.
        line: String,
    },
    /// Done; what there was went to the sink.
    Done,
    /// What an import did.
    Imported {
        /// Messages stored.
        imported: u64,
        /// Lines refused.
        rejected: u64,
        /// Messages already held.
        duplicates: u64,
    },
    /// A peer connected.
    Connected {
        /// Its feed id.
        connected: FeedId,
    },
    /// A peer remembered (no node runs to dial it now).
    Remembered {
        /// Its address.
        address: String,
    },
    /// Live connections and known peers.
    Peers {
        /// Live connections.
        connected: Vec<PeerInfo>,
        /// The peer table.
        known: Vec<KnownPeer>,
    },
    /// Replication progress.
    Status(Status),
}

impl Response {
    /// The answer as `shoal --json` prints it: the body alone.
    pub fn body(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut o)) => {
                o.remove("body").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// The id of the message a publishing request wrote.
    pub fn key(&self) -> Option<MsgId> {
        match self {
            Response::Published { key, .. }
            | Response::GroupWritten { key, .. }
            | Response::GroupCreated { key, .. } => Some(*key),
            _ => None,
        }
    }
}

/// A peer of the peer table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// Its multiserver address.
    pub address: String,
    /// What the table says.
    pub record: PeerRecord,
    /// Failed dials counted by the running node (none without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dial_failures: Option<u32>,
}

/// Replication progress, connections and limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Our feed id.
    pub id: String,
    /// Where peers dial us, when listening.
    pub address: Option<String>,
    /// Live connections.
    pub peers: usize,
    /// Feeds replication wants.
    pub feeds_wanted: u64,
    /// Of those, feeds we hold something of.
    pub feeds_held: u64,
    /// Messages stored.
    pub messages: u64,
    /// Feeds with a message.
    pub feeds_stored: u64,
    /// Recorded forks.
    pub forks: u64,
    /// Messages for us not yet read.
    pub unread: u64,
    /// Whether a node runs (said only by a `shoal` command without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// `max_connections` of the config.
    pub max_connections: usize,
    /// How many of them incoming connections may take (a running node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_incoming: Option<usize>,
    /// Hops replicated.
    pub hops: u8,
    /// The limits on peers, and with a running node today's usage.
    pub limits: serde_json::Value,
}

/// What a running node tells its watchers: ids only, a watcher asks for
/// what it needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// A message was stored (ours or a peer's).
    Appended {
        /// The feed.
        author: FeedId,
        /// Its sequence.
        seq: u64,
    },
    /// A peer connected.
    Connected {
        /// It.
        peer: FeedId,
    },
    /// A peer disconnected.
    Disconnected {
        /// It.
        peer: FeedId,
    },
    /// A line for a log view.
    Log {
        /// The line.
        line: String,
    },
    /// The watcher fell behind and missed events: whatever it shows may
    /// be stale.
    Lagged,
}

impl From<crate::node::NodeEvent> for Event {
    fn from(e: crate::node::NodeEvent) -> Event {
        use crate::node::NodeEvent as N;
        match e {
            N::Appended { author, seq } => Event::Appended { author, seq },
            N::Connected(peer) => Event::Connected { peer },
            N::Disconnected(peer) => Event::Disconnected { peer },
            N::Log(line) => Event::Log { line },
        }
    }
}

/// Why a request failed: one line for a person, and the exit code a
/// `shoal` command ends with ([`ApiError::exit_code`], the one place that
/// maps them).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ApiError {
    /// The request itself is wrong (a bad id, a missing argument).
    #[error("{0}")]
    Usage(String),
    /// A rule of the group refuses it (not an admin, not senior).
    #[error("{0}")]
    Refused(String),
    /// The message is not in the store.
    #[error("message {0} is not in the store")]
    NotFound(MsgId),
    /// A group epoch's key has not reached us.
    #[error(
        "cannot post yet: the key of epoch {0} has not reached us (it is asked for; an admin answers)"
    )]
    KeyMissing(String),
    /// Another process holds the store.
    #[error(
        "the store is in use by another shoal process (a running `shoal serve`?); stop it or run the command through it"
    )]
    Locked,
    /// A running node's control socket refused or failed.
    #[error("control socket: {0}")]
    Control(String),
    /// Where the output went was closed (a pipe's reader left).
    #[error("the output was closed")]
    OutputClosed,
    /// Anything else that went wrong while running it.
    #[error("{0}")]
    Failed(String),
}

impl ApiError {
    /// The exit code of a `shoal` command failing this way: 2 for usage
    /// errors, 1 for a command that ran and found a problem.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApiError::Usage(_) | ApiError::Refused(_) => 2,
            _ => 1,
        }
    }

    fn failed(e: impl std::fmt::Display) -> ApiError {
        ApiError::Failed(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use crate::private::groups::GroupError as G;
        use crate::store::GroupWriteError as W;
        match &e {
            StoreError::Locked => ApiError::Locked,
            StoreError::Group(W::Rule(
                G::NotAdmin(_) | G::NotSenior(_) | G::RemovesAuthor | G::NoNewMembers,
            )) => ApiError::Refused(e.to_string()),
            StoreError::Group(W::Rule(G::MissingKey(k))) => ApiError::KeyMissing(k.to_string()),
            _ => ApiError::Failed(e.to_string()),
        }
    }
}

impl From<crate::home::HomeError> for ApiError {
    fn from(e: crate::home::HomeError) -> Self {
        match e {
            crate::home::HomeError::Store(s) => s.into(),
            other => ApiError::failed(other),
        }
    }
}

impl From<crate::node::NodeError> for ApiError {
    fn from(e: crate::node::NodeError) -> Self {
        match e {
            crate::node::NodeError::Store(s) => s.into(),
            other => ApiError::failed(other),
        }
    }
}

impl From<compose::ComposeError> for ApiError {
    fn from(e: compose::ComposeError) -> Self {
        use compose::ComposeError::*;
        match e {
            NoRecipients | TooManyRecipients(_) => ApiError::Usage(e.to_string()),
            _ => ApiError::failed(e),
        }
    }
}

/// Where a request's streamed output goes: `log` lines, and lines for a
/// person (an import's rejections).
pub trait Sink {
    /// One output line (no newline). An error stops the request.
    fn out(&mut self, line: &[u8]) -> Result<(), ApiError>;
    /// One line for a person, beside the answer.
    fn note(&mut self, line: &str);
}

/// A sink that keeps nothing.
pub struct Discard;

impl Sink for Discard {
    fn out(&mut self, _: &[u8]) -> Result<(), ApiError> {
        Ok(())
    }
    fn note(&mut self, _: &str) {}
}

/// Answers a request on a host: the one dispatcher of every command.
pub fn execute(host: &dyn Host, req: Request, sink: &mut dyn Sink) -> Result<Response, ApiError> {
    req.check()?;
    let me = || Ok::<_, ApiError>(host.id());
    let publish = |content: Value| -> Result<Response, ApiError> {
        let m = host.publish(content)?;
        Ok(Response::Published {
            key: m.id(),
            sequence: m.sequence(),
        })
    };
    let store = || host.store();
    match req {
        Request::Whoami => Ok(Response::Id { id: me()? }),
        Request::Address => Ok(Response::Address {
            address: host.address(),
        }),
        Request::Publish { content } => publish(parse_content(&content)?),
        Request::Post { text } => publish(compose::post(&text)),
        Request::Name { name } => publish(compose::name(&me()?, &name)),
        Request::Follow { id } => {
            publish(compose::contact(&id, crate::feed::content::Edge::Follow))
        }
        Request::Unfollow { id } => {
            publish(compose::contact(&id, crate::feed::content::Edge::None))
        }
        Request::Block { id } => publish(compose::contact(&id, crate::feed::content::Edge::Block)),
        Request::Reply { id, text } => {
            let content = {
                let r = store()?.reader()?;
                compose::reply(&r, &me()?, &id, &text)?
            };
            publish(content)
        }
        Request::Like { id, undo } => {
            let content = {
                let r = store()?.reader()?;
                compose::like(&r, &me()?, &id, !undo)?
            };
            publish(content)
        }
        Request::Dm { to, text } => publish(compose::dm(&me()?, &to, &text)?),
        Request::Feed { before, limit } => page(host, |v| v.timeline(before, limit.min(MAX_PAGE))),
        Request::Inbox { before, limit } => page(host, |v| v.inbox(before, limit.min(MAX_PAGE))),
        Request::PostsBy { id, before, limit } => {
            let r = store()?.reader()?;
            let mut view = View::new(&r)?;
            let mut items = Vec::new();
            for p in r.posts_before(&[id], before, limit.min(MAX_PAGE))? {
                if let Some(m) = r.at(p.rx)? {
                    items.push(view.item(&m)?);
                }
            }
            Ok(Response::Items { items })
        }
        Request::Thread { id } => {
            let thread = {
                let r = store()?.reader()?;
                View::new(&r)?.thread(&id)?
            };
            let shown: Vec<u64> = thread
                .entries
                .iter()
                .filter_map(|e| match e {
                    Entry::Message { item, .. } => Some(item.rx),
                    Entry::Missing { .. } => None,
                })
                .collect();
            host.mark_read(&shown)?;
            Ok(Response::Thread(thread))
        }
        Request::Contacts { id } => {
            let feed = match id {
                Some(f) => f,
                None => me()?,
            };
            let r = store()?.reader()?;
            let mut view = View::new(&r)?;
            Ok(Response::Contacts {
                id: feed,
                name: view.name(&feed)?,
                contacts: view.contacts(&feed)?,
            })
        }
        Request::Profile { id } => {
            let feed = match id {
                Some(f) => f,
                None => me()?,
            };
            let r = store()?.reader()?;
            Ok(Response::Profile(View::new(&r)?.profile(&feed)?))
        }
        Request::Get { id } => {
            let m = store()?.get(&id)?.ok_or(ApiError::NotFound(id))?;
            let line = message_line(store()?, &m)?;
            Ok(Response::Message {
                line: String::from_utf8_lossy(&line).into_owned(),
            })
        }
        Request::Log {
            author,
            since,
            limit,
        } => {
            const PAGE: u64 = 1000;
            let mut after = since;
            let mut left = limit.unwrap_or(u64::MAX);
            while left > 0 {
                let n = left.min(PAGE) as usize;
                let (page, next) = store()?.messages_after(author.as_ref(), after, n)?;
                for m in &page {
                    sink.out(&m.to_kvt())?;
                }
                after = next;
                left -= page.len() as u64;
                if page.len() < n {
                    break;
                }
            }
            Ok(Response::Done)
        }
        Request::Import { path } => {
            let s = host.import(&path, &mut |line, reason| {
                sink.note(&format!("rejected line {line}: {reason}"));
            })?;
            Ok(Response::Imported {
                imported: s.imported,
                rejected: s.rejected,
                duplicates: s.duplicates,
            })
        }
        Request::GroupCreate { name } => {
            let created = last(host.group_write(&GroupOp::Create)?)?;
            let group = created.id();
            let mut about = crate::feed::Object::new();
            about.insert("type", Value::from("about"));
            about.insert("about", Value::from(group.to_string()));
            about.insert("name", Value::from(name.as_str()));
            host.group_write(&GroupOp::Post {
                group,
                content: Value::Object(about),
            })?;
            Ok(Response::GroupCreated { group, key: group })
        }
        Request::GroupAdd {
            group,
            members,
            admin,
        } => group_op(
            host,
            GroupOp::Add {
                group,
                admins: if admin { members.clone() } else { Vec::new() },
                members,
            },
        ),
        Request::GroupRemove { group, members } => {
            group_op(host, GroupOp::Remove { group, members })
        }
        Request::GroupDemote { group, members } => {
            group_op(host, GroupOp::Demote { group, members })
        }
        Request::GroupPromote { group, members } => {
            group_op(host, GroupOp::Promote { group, members })
        }
        Request::GroupPost { group, text } => group_op(
            host,
            GroupOp::Post {
                group,
                content: compose::post(&text),
            },
        ),
        Request::GroupList => Ok(Response::Groups {
            groups: store()?.groups()?,
        }),
        Request::GroupMembers { group } => Ok(Response::Group(store()?.group(&group)?)),
        Request::GroupRead {
            group,
            before,
            limit,
        } => {
            let info = store()?.group(&group)?;
            let Response::Items { items } =
                page(host, |v| v.group_posts(&group, before, limit.min(MAX_PAGE)))?
            else {
                unreachable!("a page answers items")
            };
            Ok(Response::GroupPosts {
                group: info.id,
                name: info.name,
                items,
            })
        }
        Request::MarkRead { rxs } => {
            host.mark_read(&rxs)?;
            Ok(Response::Done)
        }
        Request::Connect { address } => host.connect(&address),
        Request::Peers => host.peers(),
        Request::Status => Ok(Response::Status(host.status()?)),
    }
}

/// A page of items from a view; what it shows is marked read.
fn page(
    host: &dyn Host,
    read: impl FnOnce(&mut View<'_>) -> crate::store::Result<Vec<Item>>,
) -> Result<Response, ApiError> {
    let items = {
        let r = host.store()?.reader()?;
        let mut view = View::new(&r)?;
        read(&mut view)?
    };
    let shown: Vec<u64> = items.iter().map(|i| i.rx).collect();
    host.mark_read(&shown)?;
    Ok(Response::Items { items })
}

fn last(msgs: Vec<VerifiedMsg>) -> Result<VerifiedMsg, ApiError> {
    msgs.last()
        .cloned()
        .ok_or_else(|| ApiError::Failed("nothing was written".into()))
}

fn group_op(host: &dyn Host, op: GroupOp) -> Result<Response, ApiError> {
    let m = last(host.group_write(&op)?)?;
    Ok(Response::GroupWritten {
        group: op.group(),
        key: m.id(),
        sequence: m.sequence(),
    })
}

/// The `{key, value, timestamp}` line of a message, with `"decrypted"`
/// content added when it is a box we opened.
pub fn message_line(store: &Store, m: &StoredMsg) -> Result<Vec<u8>, ApiError> {
    let mut line = m.to_kvt();
    let r = store.reader()?;
    if let Some(plain) = r.private_content(&m.key)? {
        line.pop();
        line.extend_from_slice(b",\"decrypted\":");
        line.extend_from_slice(&sjson::to_compact(&plain));
        line.push(b'}');
    }
    Ok(line)
}

#[cfg(test)]
mod tests;
