//! What flows between the pure core and the runtime: [`Event`]s go into
//! `app::update`, [`Effect`]s come out of it, and the runtime turns effects
//! into backend calls whose results come back as [`Loaded`] events.
//!
//! Plain data; imports `model`, `compose` and crossterm's input types;
//! never the backend, the terminal or I/O.

use ratatui::crossterm::event::KeyEvent;

use std::path::PathBuf;

use crate::compose::Target;
use crate::images::Ready;
use crate::model::{
    BlobState, Cursor, GroupInfo, Post, Profile, Publish, RoomView, Status, ThreadView, Why,
};

/// A page to load: entries older than `before` (from the newest when
/// `None`, a refresh), at most `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Older than this.
    pub before: Option<Cursor>,
    /// At most this many.
    pub limit: usize,
}

/// Something that happened, for `update`.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A key press.
    Key(KeyEvent),
    /// Pasted text (bracketed paste).
    Paste(String),
    /// The terminal's new size: columns, rows.
    Resize(u16, u16),
    /// The clock, ms since the epoch (for relative times and notices).
    Tick(u64),
    /// A backend call finished.
    Loaded(Loaded),
    /// The node did something.
    Node(Note),
    /// `$EDITOR` finished: the text it left, or why it failed.
    Editor(Result<String, String>),
}

/// What the node reports, already thinned out by the runtime.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// Messages were stored: views may be out of date.
    Stale,
    /// A line for the log view.
    Log(String),
    /// The node's status.
    Status(Result<Box<Status>, String>),
    /// Something wrong with the node the user should see.
    Problem(String),
    /// A blob was stored (fetched from a peer, or added).
    Blob(String),
    /// Peers connected or disconnected: who is reachable may have changed.
    Peers,
}

/// The result of a backend call, with what was asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Loaded {
    /// A timeline page.
    Timeline {
        /// The page asked for.
        page: Page,
        /// The posts.
        result: Result<Vec<Post>, String>,
    },
    /// A page of private messages.
    Inbox {
        /// The page asked for.
        page: Page,
        /// The messages.
        result: Result<Vec<Post>, String>,
    },
    /// A thread.
    Thread {
        /// The message asked for.
        id: String,
        /// The thread.
        result: Result<ThreadView, String>,
    },
    /// A profile.
    Profile {
        /// The feed asked for.
        id: String,
        /// The profile.
        result: Result<Box<Profile>, String>,
        /// How the feed replicates, when that could be read.
        why: Option<Box<Why>>,
    },
    /// A page of one feed's posts.
    PostsBy {
        /// The feed.
        id: String,
        /// The page asked for.
        page: Page,
        /// The posts.
        result: Result<Vec<Post>, String>,
    },
    /// A message's raw JSON.
    Raw {
        /// The message.
        id: String,
        /// Its JSON, pretty-printed.
        result: Result<String, String>,
    },
    /// What a search of the whole store found.
    Search {
        /// The query.
        query: String,
        /// The hits.
        result: Result<shoal::api::SearchResults, String>,
    },
    /// The saved searches (after a change, when one was asked).
    Searches {
        /// A query just saved, if one was.
        saved: Option<String>,
        /// The saved searches.
        result: Result<Vec<String>, String>,
    },
    /// Our groups.
    Groups {
        /// The groups.
        result: Result<Vec<GroupInfo>, String>,
    },
    /// A page of a group's posts.
    GroupPosts {
        /// The group.
        group: String,
        /// The page asked for.
        page: Page,
        /// The posts.
        result: Result<Vec<Post>, String>,
    },
    /// The rooms we are in and who attends each.
    Rooms {
        /// The rooms.
        result: Result<Vec<RoomView>, String>,
    },
    /// What the node knows of a blob shown as a picture.
    Blob {
        /// The blob.
        id: String,
        /// Held (where) or on its way, or why it could not be asked.
        result: Result<BlobState, String>,
    },
    /// A picture decoded for the terminal, or why it cannot be shown.
    Picture {
        /// The blob.
        id: String,
        /// The picture.
        result: Result<Ready, String>,
    },
    /// Something was handed to the system opener.
    Opened {
        /// What (a file name, a web address), for the notice.
        what: String,
        /// Done, or why not.
        result: Result<(), String>,
    },
    /// A file to attach, checked.
    Attached {
        /// The file, as found, or why it cannot be attached.
        result: Result<PathBuf, String>,
    },
    /// A mute toggled (local, never published).
    Muted {
        /// What, for the notice (`the thread`, `Alice`).
        what: String,
        /// Muted now (else unmuted), or why it failed.
        result: Result<bool, String>,
    },
    /// A publish finished.
    Published {
        /// What was published.
        what: Publish,
        /// The draft it came from and the text sent, if any.
        draft: Option<(Target, String)>,
        /// The new message's id.
        result: Result<String, String>,
    },
}

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Switch to the next account (the runtime's; a single home ignores
    /// it).
    NextAccount,
    /// Load a timeline page.
    LoadTimeline(Page),
    /// Load a page of private messages.
    LoadInbox(Page),
    /// Load the thread of a message.
    LoadThread(String),
    /// Load a profile.
    LoadProfile(String),
    /// Load a page of one feed's posts.
    LoadPostsBy {
        /// The feed.
        id: String,
        /// The page.
        page: Page,
    },
    /// Load a message's raw JSON.
    LoadRaw(String),
    /// Search the whole store.
    Search(String),
    /// Load the saved searches, saving or forgetting one first.
    Searches {
        /// A query to save.
        save: Option<String>,
        /// A saved query to forget.
        forget: Option<String>,
    },
    /// Load our groups.
    LoadGroups,
    /// Load a page of a group's posts.
    LoadGroupPosts {
        /// The group.
        group: String,
        /// The page.
        page: Page,
    },
    /// Load the rooms we are in and their attendants.
    LoadRooms,
    /// Publish.
    Publish {
        /// What.
        what: Publish,
        /// The draft it came from and the text sent, if any.
        draft: Option<(Target, String)>,
    },
    /// Mark messages (by receive sequence) read.
    MarkRead(Vec<u64>),
    /// Mute `target` (a feed id, or a message id for its thread), or
    /// unmute it when it is muted already.
    ToggleMute {
        /// The feed or message id.
        target: String,
        /// What it is, for the notice.
        what: String,
    },
    /// Load a message's history (its revisions), shown like raw JSON.
    LoadHistory(String),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Edit a draft in `$EDITOR`.
    Editor(String),
    /// Ask the node for a blob shown as a picture (it fetches it from
    /// peers when it does not hold it).
    GetBlob(String),
    /// Decode a held blob into a picture.
    Decode {
        /// The blob.
        id: String,
        /// Its file.
        path: PathBuf,
    },
    /// Hand a blob or a web page to the system opener.
    Open(Openable),
    /// Check a file to attach to the new post (a path as typed).
    Attach(String),
}

/// What the system opener is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Openable {
    /// A blob: its file, once held.
    Blob(String),
    /// A web page (`http:` or `https:`).
    Web(String),
}
