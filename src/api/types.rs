//! What is asked and answered: [`Request`], [`Response`] and the shapes
//! inside them ([`Status`], [`KnownPeer`]), and the [`Event`]s a running
//! node pushes. Their serde form is the control socket's wire form.

use serde::{Deserialize, Serialize};

use super::{
    ApiError, Contacts, Cursor, GroupInfo, History, Item, PeerInfo, PeerRecord, Profile,
    SearchQuery, SearchResults, Thread,
};
use crate::crypto::{BlobId, FeedId, MsgId};
use crate::feed::json::{self as sjson, Value};

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
        /// Files to attach: each is added as a blob, linked from the text
        /// and listed in `mentions`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Add a file to the blob store.
    BlobAdd {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A blob: where it is, when we hold it; else, with a running node,
    /// it is wanted from peers and waited for up to `wait_secs`. With
    /// `out`, its bytes are also copied there.
    BlobGet {
        /// The blob.
        id: BlobId,
        /// Where to copy it.
        #[serde(default)]
        out: Option<std::path::PathBuf>,
        /// How long to wait for it (0: answer at once).
        #[serde(default)]
        wait_secs: u64,
    },
    /// Whether we hold a blob, without asking peers for it.
    BlobHas {
        /// The blob.
        id: BlobId,
    },
    /// The blobs we hold.
    BlobList,
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
    /// A full-text search of everything we can read.
    Search(SearchQuery),
    /// The saved searches, after saving `save` (added last) and
    /// forgetting `forget`, when given.
    Searches {
        /// A query to save.
        #[serde(default)]
        save: Option<String>,
        /// A saved query to forget.
        #[serde(default)]
        forget: Option<String>,
    },
    /// The thread of a message.
    Thread {
        /// Any message of it.
        id: MsgId,
    },
    /// Mute a word, a feed or a thread, locally (never published).
    /// `target` is a feed id (or `ssb:` URI of one), a message id (its
    /// thread is muted) or else a word; with `word`, always a word.
    Mute {
        /// What to mute.
        target: String,
        /// Take `target` as a word whatever it looks like.
        #[serde(default)]
        word: bool,
    },
    /// Take a mute back (`target` as for [`Request::Mute`]).
    Unmute {
        /// What to unmute.
        target: String,
        /// Take `target` as a word whatever it looks like.
        #[serde(default)]
        word: bool,
    },
    /// Everything muted.
    Mutes,
    /// Publish a revision of our post `id` with a new text (as
    /// `ssb-revisions` writes one).
    Edit {
        /// The post (or one of its revisions).
        id: MsgId,
        /// The new text.
        text: String,
    },
    /// A post and its revisions by its author, oldest first.
    History {
        /// The post (or one of its revisions).
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
    /// Dial a peer and keep it connected (without a node: remember it);
    /// or, given a room alias (its `consume-alias` link, or its
    /// `http(s)://` page), connect to whom it names through its room.
    Connect {
        /// Its multiserver address, or an alias link.
        address: String,
    },
    /// Known peers and live connections.
    Peers,
    /// The rooms we are in (connected to), and who attends each.
    Rooms,
    /// Join a room: by its multiserver address, or by claiming a rooms
    /// 2.0 invite (`ssb:experimental?action=claim-http-invite&…`) at its
    /// HTTP endpoint, which makes us a member and gives its address; then
    /// the node keeps it connected.
    RoomJoin {
        /// The address or the invite link.
        target: String,
    },
    /// Make an invite: to the room this node runs, or (`room`) asked of a
    /// room we are in (its members, or admins, may).
    RoomInvite {
        /// The room we are in to ask (none: ours).
        #[serde(default)]
        room: Option<FeedId>,
    },
    /// Register (or, with `revoke`, remove) our alias at a room we are in
    /// (`room`, or the only one).
    RoomAlias {
        /// The alias: a domain label, lower case.
        alias: String,
        /// The room (none: the only one we are in).
        #[serde(default)]
        room: Option<FeedId>,
        /// Remove it instead.
        #[serde(default)]
        revoke: bool,
    },
    /// Replication progress and limits.
    Status,
    /// Say `feed` is another device of ours (a contact message with
    /// `sameAs: true`, which also follows it); it counts once `feed` says
    /// the same of us.
    DeviceLink {
        /// The other device's feed.
        feed: FeedId,
    },
    /// End a device link (`sameAs: false`; the follow stays).
    DeviceUnlink {
        /// The other device's feed.
        feed: FeedId,
    },
    /// The devices of a person (ours when `feed` is none).
    Devices {
        /// Whose.
        #[serde(default)]
        feed: Option<FeedId>,
    },
    /// Lift what holds publishing (restoring, a peer's claim, a fork of
    /// our feed): with `confirmed`, after the person was warned that
    /// publishing before our feed came back may fork it.
    RestoreDone {
        /// The person has seen the warning.
        #[serde(default)]
        confirmed: bool,
    },
    /// Why a feed replicates or not: whether we want it and through
    /// whom, what we hold, what each connected peer claims, the last error.
    Why {
        /// The feed.
        id: FeedId,
    },
    /// Bytes held by kind (messages, indexes, blobs), by distance in
    /// follows, and the largest feeds.
    Storage,
    /// Prunes what the `[retention]` rules of the config say (with
    /// `dry_run`, only says what would go).
    Prune {
        /// Only say what would go.
        #[serde(default)]
        dry_run: bool,
    },
    /// Gives the space pruning freed back to the file system.
    Compact,
    /// The `ssb:` URI of an id or address (or a URI, made canonical).
    Uri {
        /// A feed, message or blob id, a multiserver address or a URI.
        text: String,
    },
    /// Redeem a pub's invite code (either form, see [`crate::invite::Code`]),
    /// then follow the pub, announce it and keep it connected.
    InviteAccept {
        /// The code.
        code: String,
    },
    /// Make an invite of this node's (a running node only); answered with
    /// its code.
    InviteCreate {
        /// How many times it may be redeemed (at least 1).
        #[serde(default = "one")]
        uses: u32,
        /// A note kept with it and put in the follow of each redeemer.
        #[serde(default)]
        note: Option<String>,
        /// Where peers reach the node, `HOST[:PORT]`, when not where it
        /// listens.
        #[serde(default)]
        external: Option<String>,
    },
}

fn one() -> u32 {
    1
}

impl Request {
    /// Checks what can be checked without the store: a clear usage error
    /// before anything is opened.
    pub fn check(&self) -> Result<(), ApiError> {
        match self {
            Request::Publish { content } => {
                parse_content(content)?;
            }
            Request::Edit { text, .. } if text.trim().is_empty() => {
                return Err(ApiError::Usage("the new text is empty".into()));
            }
            Request::Mute { target, word: true } | Request::Unmute { target, word: true } => {
                crate::store::Mute::word(target).map_err(|e| ApiError::Usage(e.to_string()))?;
            }
            Request::Name { name } if name.trim().is_empty() => {
                return Err(ApiError::Usage("the name is empty".into()));
            }
            Request::GroupCreate { name } if name.trim().is_empty() => {
                return Err(ApiError::Usage("the group name is empty".into()));
            }
            Request::Uri { text } => {
                crate::uri::of(text).map_err(|e| ApiError::Usage(e.to_string()))?;
            }
            Request::Connect { address } if !is_alias_link(address) => {
                address.parse::<crate::net::MultiAddr>().map_err(|e| {
                    ApiError::Usage(format!(
                        "not a multiserver address or a room alias link {address}: {e}"
                    ))
                })?;
            }
            Request::RoomAlias { alias, .. } => {
                crate::room::check_alias(alias).map_err(ApiError::Usage)?;
            }
            Request::InviteAccept { code } => {
                parse_code(code)?;
            }
            Request::InviteCreate { uses, external, .. } => {
                if *uses == 0 {
                    return Err(ApiError::Usage(
                        "an invite needs at least one use (--uses N, N >= 1)".into(),
                    ));
                }
                if let Some(e) = external {
                    parse_external(e)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// An invite code as such, or inside the `ssb:experimental?action=consume-invite&invite=…`
/// link apps share it as.
pub(super) fn parse_code(code: &str) -> Result<crate::invite::Code, ApiError> {
    let code = match crate::uri::parse(code.trim()) {
        Ok(crate::uri::Uri::Experimental { action, params }) if action == "consume-invite" => {
            params
                .into_iter()
                .find(|(k, _)| k == "invite")
                .map(|(_, v)| v)
                .ok_or_else(|| ApiError::Usage(format!("no invite in {code}")))?
        }
        Ok(_) => return Err(ApiError::Usage(format!("not an invite link: {code}"))),
        Err(_) => code.to_string(),
    };
    code.parse().map_err(|e| ApiError::Usage(format!("{e}")))
}

pub(super) fn parse_external(external: &str) -> Result<crate::invite::External, ApiError> {
    external
        .parse()
        .map_err(|e| ApiError::Usage(format!("{e}")))
}

pub(super) fn parse_content(text: &str) -> Result<Value, ApiError> {
    let value = sjson::parse(text.as_bytes())
        .map_err(|e| ApiError::Usage(format!("content is not JSON: {e}")))?;
    if !matches!(value, Value::Object(_)) {
        return Err(ApiError::Usage(
            "content must be a JSON object with a \"type\"".into(),
        ));
    }
    Ok(value)
}

/// Whether `text` names a room alias: a `consume-alias` link, or an
/// `http(s)://` alias page.
pub fn is_alias_link(text: &str) -> bool {
    text.starts_with("http://")
        || text.starts_with("https://")
        || matches!(
            crate::uri::parse(text),
            Ok(crate::uri::Uri::Experimental { action, .. }) if action == "consume-alias"
        )
}

/// A room we are in, and who attends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    /// The room's feed id.
    pub room: FeedId,
    /// Its attendants besides us, by id.
    pub attendants: Vec<Attendant>,
}

/// Someone attending a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendant {
    /// Their feed.
    pub id: FeedId,
    /// Their name, when we know it.
    pub name: Option<String>,
    /// Whether we follow them (then we meet them through the room).
    pub following: bool,
    /// Whether we are connected to them now.
    pub connected: bool,
}

/// What we know of a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobState {
    /// The blob.
    pub id: BlobId,
    /// Its size, when we hold it.
    pub size: Option<u64>,
    /// The file holding it, when we do (read it; never write it).
    pub path: Option<std::path::PathBuf>,
    /// Whether a running node is asking peers for it.
    pub wanted: bool,
}

/// What a request is answered with. On the wire `{"kind": NAME, "body":
/// …}`; [`Response::body`] is what `shoal --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Response {
    /// A blob, held or not.
    Blob(BlobState),
    /// The blobs we hold.
    Blobs {
        /// Each, in id order.
        blobs: Vec<BlobState>,
    },
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
    /// What a search found.
    Search(SearchResults),
    /// The saved searches, oldest first.
    Searches {
        /// Each query.
        searches: Vec<String>,
    },
    /// A thread.
    Thread(Thread),
    /// A mute set or taken back.
    Muted {
        /// What.
        mute: MuteInfo,
        /// Muted (else unmuted).
        on: bool,
        /// Whether anything changed (not already so).
        changed: bool,
    },
    /// Everything muted.
    Mutes {
        /// Words first, then feeds, then threads.
        mutes: Vec<MuteInfo>,
    },
    /// A post's history.
    History(History),
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
    /// An invite to a room.
    RoomInvite {
        /// Its `ssb:experimental?action=claim-http-invite&…` link.
        invite: String,
    },
    /// Our alias at a room, registered (or revoked: no link).
    RoomAlias {
        /// The alias.
        alias: String,
        /// The room.
        room: Option<FeedId>,
        /// Its `ssb:experimental?action=consume-alias&…` link, as the
        /// room answered it (none when revoked).
        link: Option<String>,
    },
    /// The rooms we are in.
    Rooms {
        /// Each, by id.
        rooms: Vec<RoomView>,
    },
    /// Replication progress.
    Status(Status),
    /// A person's devices.
    Devices {
        /// Its feeds, the one asked about first.
        devices: Vec<crate::social::Person>,
        /// Feeds one of them says are its devices that have not said so
        /// back (not honoured): `(claimant, claimed)`.
        one_sided: Vec<(crate::social::Person, crate::social::Person)>,
    },
    /// Publishing is no longer held; what held it.
    Restored {
        /// What held it (none: nothing did).
        was: Option<String>,
    },
    /// An `ssb:` URI.
    Uri {
        /// It.
        uri: String,
    },
    /// Why a feed replicates or not.
    Why(Why),
    /// What the store holds, by kind, distance and feed.
    Storage(Storage),
    /// What pruning took (or would take).
    Pruned(PruneReport),
    /// The store compacted.
    Compacted {
        /// The store file's bytes before.
        before: u64,
        /// And after.
        after: u64,
        /// How long it took, ms.
        millis: u64,
    },
    /// An invite redeemed: the pub follows us, we follow it and announced
    /// it.
    InviteAccepted {
        /// The pub's feed id.
        #[serde(rename = "pub")]
        pub_id: FeedId,
        /// Its address, kept connected.
        address: String,
        /// Our follow of the pub.
        follow: MsgId,
        /// Our announcement of its address.
        announcement: MsgId,
        /// Whether a running node dials it now (else the next `shoal
        /// serve` does).
        dialling: bool,
    },
    /// An invite made.
    Invite {
        /// Its code, `net:HOST:PORT~shs:KEY:SEED`.
        code: String,
        /// How many times it may be redeemed.
        uses: u32,
    },
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
    /// Feeds a connected peer has had more of than we hold for over a
    /// minute (a running node; listed only when there are some).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub behind: Vec<Behind>,
    /// Feeds held from above their first message: fetched newest first,
    /// their older history still to come (listed only when there are some).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<Partial>,
    /// Why we may not publish now, so that our feed does not fork
    /// (restoring, a peer claims more of it, or it is forked); none: we
    /// may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publishing_held: Option<String>,
    /// Whether the home is restoring (made from an existing identity and
    /// waiting for its feed from a peer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restoring: bool,
    /// Our feed's fork, when a peer has another message of ours at a
    /// sequence we hold: both messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_fork: Option<OwnFork>,
}

/// Our feed forked: two messages of ours at one sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnFork {
    /// The sequence.
    pub sequence: u64,
    /// Ours there (its JSON), if we still hold it.
    pub ours: Option<serde_json::Value>,
    /// The other one, as a peer sent it.
    pub theirs: serde_json::Value,
}

/// Why a feed replicates or not (`shoal why`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Why {
    /// The feed.
    pub id: String,
    /// Whether we replicate it.
    pub wanted: bool,
    /// Whether we block it.
    pub blocked: bool,
    /// The follows that make us want it, from us to it (empty when not
    /// wanted).
    pub path: Vec<String>,
    /// How many hops we replicate.
    pub hops: u8,
    /// The latest sequence we hold (0: none).
    pub held: u64,
    /// The lowest sequence we hold, when the feed is held from above its
    /// first message (fetched newest first, its older history to come).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_from: Option<u64>,
    /// Whether what is below `held_from` was pruned by the retention
    /// rules (else it is still to come).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
    /// When the latest message we hold of it arrived (ms since the epoch).
    pub last_moved_ms: Option<u64>,
    /// Whether a node runs (without one, nothing is known of peers).
    pub running: bool,
    /// What each connected peer claims to hold of it, most first.
    pub peers: Vec<PeerClaim>,
    /// The last message of it a peer sent that was refused, and why.
    pub last_error: Option<FeedProblem>,
}

/// What a connected peer claims to hold of a feed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerClaim {
    /// The peer.
    pub peer: String,
    /// The latest sequence it says it holds.
    pub seq: u64,
    /// Since when it has said so (ms since the epoch).
    pub since_ms: u64,
}

/// A refused message of a feed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedProblem {
    /// The peer that sent it.
    pub peer: String,
    /// Why it was refused.
    pub reason: String,
    /// When (ms since the epoch).
    pub at_ms: u64,
}

/// A feed a connected peer has had more of than we hold for over a minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Behind {
    /// The feed.
    pub feed: String,
    /// What we hold.
    pub held: u64,
    /// The peer's claim.
    pub claim: PeerClaim,
}

/// What the store holds (`shoal storage`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Storage {
    /// The store file's bytes.
    pub file_bytes: u64,
    /// Of which messages (the log and the tables placing them in feeds).
    pub message_bytes: u64,
    /// Of which indexes (every other table).
    pub index_bytes: u64,
    /// Of which free pages (what `shoal compact` gives back).
    pub free_bytes: u64,
    /// Of which not yet allocated (redb grows the file in steps ahead of
    /// its use).
    pub unallocated_bytes: u64,
    /// Other indexes kept beside the store, by name (bytes on disk).
    pub beside: Vec<(String, u64)>,
    /// The blobs' bytes on disk.
    pub blob_bytes: u64,
    /// Messages held.
    pub messages: u64,
    /// By distance in follows, nearest first.
    pub by_hops: Vec<HopBytes>,
    /// The largest feeds, largest first.
    pub largest: Vec<FeedBytes>,
    /// The retention rules in force, in words (none: everything is kept).
    pub retention: Option<String>,
}

/// What the feeds at one distance hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopBytes {
    /// Follows away (none: further than counted, or followed by nobody
    /// replicated).
    pub hops: Option<u8>,
    /// Feeds.
    pub feeds: u64,
    /// Their messages.
    pub messages: u64,
    /// Their bytes in the log.
    pub bytes: u64,
}

/// What one feed holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedBytes {
    /// The feed, named.
    pub feed: crate::social::Person,
    /// Follows away.
    pub hops: Option<u8>,
    /// Messages held.
    pub messages: u64,
    /// Their bytes in the log.
    pub bytes: u64,
    /// The lowest sequence held, when held from above 1.
    pub from: Option<u64>,
}

/// What pruning took, or would take (`shoal prune`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneReport {
    /// Only planned: nothing was deleted.
    pub dry_run: bool,
    /// The rules, in words.
    pub retention: Option<String>,
    /// Messages that went (or would go).
    pub messages: u64,
    /// Their bytes in the log.
    pub bytes: u64,
    /// The feeds pruned, most bytes first: each with what it keeps.
    pub feeds: Vec<FeedPruned>,
}

/// One feed's part of a prune.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPruned {
    /// The feed, named.
    pub feed: crate::social::Person,
    /// Follows away.
    pub hops: Option<u8>,
    /// Messages that go.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The lowest sequence kept.
    pub keep_from: u64,
}

/// A feed held from above its first message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// The feed.
    pub feed: String,
    /// The lowest sequence held.
    pub from: u64,
    /// The latest sequence held.
    pub to: u64,
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
    /// A blob was stored (ours or fetched from a peer).
    Blob {
        /// It.
        id: BlobId,
    },
    /// The watcher fell behind and missed events: whatever it shows may
    /// be stale.
    Lagged,
}

impl Event {
    /// What a node event says to a watcher: one [`Event::Appended`] per
    /// message of a commit, in the order stored; one event for the rest.
    pub fn of(e: crate::node::NodeEvent) -> Vec<Event> {
        use crate::node::NodeEvent as N;
        match e {
            N::Stored(all) => all
                .iter()
                .map(|a| Event::Appended {
                    author: a.author,
                    seq: a.seq,
                })
                .collect(),
            N::Connected(peer) => vec![Event::Connected { peer }],
            N::Disconnected(peer) => vec![Event::Disconnected { peer }],
            N::Log(line) => vec![Event::Log { line }],
            N::Blob(id) => vec![Event::Blob { id }],
        }
    }
}

/// One thing muted, as answered and listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuteInfo {
    /// `word`, `feed` or `thread`.
    pub kind: String,
    /// The word, the feed's id or the thread root's id.
    pub value: String,
    /// When it was muted, ms (0 when not known).
    #[serde(default)]
    pub since: u64,
}

impl MuteInfo {
    /// The info of a mute.
    pub fn of(m: &crate::store::Mute, since: u64) -> MuteInfo {
        use crate::store::Mute;
        let (kind, value) = match m {
            Mute::Word(w) => ("word", w.clone()),
            Mute::Feed(f) => ("feed", f.to_string()),
            Mute::Thread(t) => ("thread", t.to_string()),
        };
        MuteInfo {
            kind: kind.into(),
            value,
            since,
        }
    }
}
