//! The data the screens show: posts, threads, profiles, node status.
//!
//! These are the JSON shapes of shoal's read models (`shoal::social::Item`,
//! `Thread`, `Profile`, the `status` answer), read with serde, so a page
//! that came from the store of an embedded node and one that came through a
//! running node's control socket are the same values. Strings here are as
//! peers wrote them: unsafe to draw until passed through `text`. Plain data;
//! imports nothing of the UI, the node or I/O.

use serde::Deserialize;
use serde_json::Value as Json;

/// A page position: entries strictly older than `(time, rx)`.
pub type Cursor = (u64, u64);

/// One message as the screens show it (a timeline, inbox or thread item).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Post {
    /// Message id `%….sha256`.
    pub key: String,
    /// Author's feed id.
    pub author: String,
    /// Author's current name, if known.
    pub name: Option<String>,
    /// Sequence in the author's feed.
    pub sequence: u64,
    /// The time it sorts by, ms since the epoch.
    pub time: u64,
    /// Local receive sequence.
    pub rx: u64,
    /// Content type (`post`, `vote`, …).
    pub kind: Option<String>,
    /// The text of a post.
    pub text: Option<String>,
    /// The thread root of a reply.
    pub root: Option<String>,
    /// Whether it was a private message we opened.
    pub private: bool,
    /// Recipients of a private message.
    pub recps: Vec<String>,
    /// Replies in its thread.
    pub replies: usize,
    /// Feeds that like it.
    pub likes: usize,
    /// Not yet read.
    pub unread: bool,
    /// Why content of a known type is malformed.
    pub invalid: Option<String>,
    /// The content as JSON (what to show for something that is not a post).
    pub content: Json,
}

impl Post {
    /// Its page position.
    pub fn cursor(&self) -> Cursor {
        (self.time, self.rx)
    }

    /// The author's name, or the start of the feed id.
    pub fn who(&self) -> String {
        match &self.name {
            Some(n) if !crate::text::one_line(n).is_empty() => crate::text::one_line(n),
            _ => crate::text::short_id(&self.author),
        }
    }

    /// What to show as its body (not yet cleaned): the post text, or a
    /// description of other or malformed content.
    pub fn body(&self) -> String {
        if let Some(t) = &self.text {
            return t.clone();
        }
        if self.kind.as_deref() == Some("about")
            && self.invalid.is_none()
            && let Some(name) = self.content.get("name").and_then(Json::as_str)
            && self
                .content
                .get("about")
                .and_then(Json::as_str)
                .is_some_and(|a| a.starts_with('%'))
        {
            return format!("named the group “{name}”");
        }
        let raw = self.content.to_string();
        let raw: String = raw.chars().take(300).collect();
        match (&self.invalid, self.kind.as_deref()) {
            (Some(why), _) => format!("(unreadable content: {why}) {raw}"),
            (None, Some(kind)) => format!("({kind}) {raw}"),
            (None, None) => format!("(no content type) {raw}"),
        }
    }
}

/// A thread: its root, then every reply we know of, in thread order.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ThreadView {
    /// The root's id.
    pub root: String,
    /// Root first, then replies depth-first.
    pub entries: Vec<ThreadEntry>,
    /// Replies hidden because we block their authors.
    pub hidden: usize,
}

/// One line of a thread.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "entry", rename_all = "lowercase")]
pub enum ThreadEntry {
    /// A message we hold.
    Message {
        /// Nesting under the root.
        depth: usize,
        /// The message.
        #[serde(flatten)]
        post: Box<Post>,
    },
    /// A message replies point at that we do not hold (yet).
    Missing {
        /// Nesting under the root.
        depth: usize,
        /// Its id.
        key: String,
    },
}

impl ThreadEntry {
    /// Its nesting depth.
    pub fn depth(&self) -> usize {
        match self {
            ThreadEntry::Message { depth, .. } | ThreadEntry::Missing { depth, .. } => *depth,
        }
    }

    /// The message, when we hold it.
    pub fn post(&self) -> Option<&Post> {
        match self {
            ThreadEntry::Message { post, .. } => Some(post),
            ThreadEntry::Missing { .. } => None,
        }
    }
}

/// A feed with its name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Person {
    /// Feed id.
    pub id: String,
    /// Current name.
    pub name: Option<String>,
}

impl Person {
    /// The name, or the start of the feed id.
    pub fn who(&self) -> String {
        match &self.name {
            Some(n) if !crate::text::one_line(n).is_empty() => crate::text::one_line(n),
            _ => crate::text::short_id(&self.id),
        }
    }
}

/// Whom a feed follows and blocks, and who follows and blocks it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Contacts {
    /// Feeds it follows.
    pub follows: Vec<Person>,
    /// Feeds it blocks.
    pub blocks: Vec<Person>,
    /// Feeds following it.
    pub followers: Vec<Person>,
    /// Feeds blocking it.
    pub blocked_by: Vec<Person>,
}

/// A profile: name, description, contacts.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// Feed id.
    pub id: String,
    /// The name shown.
    pub name: Option<String>,
    /// Every name given to it: `(namer, name)`.
    pub names: Vec<(String, String)>,
    /// Its own description.
    pub description: Option<String>,
    /// Its contacts.
    pub contacts: Contacts,
}

impl Profile {
    /// The name, or the start of the feed id.
    pub fn who(&self) -> String {
        Person {
            id: self.id.clone(),
            name: self.name.clone(),
        }
        .who()
    }
}

/// What the node says about itself (the `status` answer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Live connections.
    pub peers: usize,
    /// Feeds replication wants.
    pub feeds_wanted: u64,
    /// Of those, feeds we hold something of.
    pub feeds_held: u64,
    /// Messages stored.
    pub messages: u64,
    /// Messages not yet read.
    pub unread: u64,
    /// Where the node listens, when it does.
    pub address: Option<String>,
}

/// A private group as the node knows it (the `group-list` entries and the
/// `group-members` answer) and its epochs: the library's own types, read
/// back from that JSON.
pub use shoal::store::{EpochInfo, GroupInfo};

/// A group's name (clean, one line), or the start of its id.
pub fn group_title(g: &GroupInfo) -> String {
    match &g.name {
        Some(n) if !crate::text::one_line(n).is_empty() => crate::text::one_line(n),
        _ => crate::text::short_id(&g.id),
    }
}

/// The groups of a `{"groups": […]}` answer.
pub fn groups(v: Json) -> Result<Vec<GroupInfo>, String> {
    match v {
        Json::Object(mut o) => from_json(o.remove("groups").unwrap_or(Json::Array(Vec::new()))),
        other => Err(format!("expected an object with groups, got {other}")),
    }
}

/// The request listing our groups.
pub fn group_list_request() -> Json {
    serde_json::json!({"cmd": "group-list"})
}

/// The request for a page of a group's posts.
pub fn group_read_request(group: &str, before: Option<Cursor>, limit: usize) -> Json {
    let mut req = serde_json::json!({"cmd": "group-read", "group": group, "limit": limit});
    if let Some((t, rx)) = before {
        req["before"] = serde_json::json!([t, rx]);
    }
    req
}

/// Reads a model value from JSON, naming what did not fit.
pub fn from_json<T: for<'de> Deserialize<'de>>(v: Json) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("unexpected answer shape: {e}"))
}

/// The items of a `{"items": […]}` answer.
pub fn items(v: Json) -> Result<Vec<Post>, String> {
    match v {
        Json::Object(mut o) => from_json(o.remove("items").unwrap_or(Json::Array(Vec::new()))),
        other => Err(format!("expected an object with items, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thread_entries_read_both_kinds() {
        let v = json!({"root": "%r", "hidden": 1, "entries": [
            {"entry": "message", "depth": 0, "key": "%r", "author": "@a", "time": 5, "rx": 7,
             "text": "hi", "replies": 1, "likes": 2, "unread": true, "content": {"type": "post"}},
            {"entry": "missing", "depth": 1, "key": "%m"}
        ]});
        let t: ThreadView = from_json(v).unwrap();
        assert_eq!(t.hidden, 1);
        assert_eq!(t.entries.len(), 2);
        let p = t.entries[0].post().unwrap();
        assert_eq!((p.time, p.rx, p.likes, p.unread), (5, 7, 2, true));
        assert_eq!(
            t.entries[1],
            ThreadEntry::Missing {
                depth: 1,
                key: "%m".into()
            }
        );
    }

    #[test]
    fn unknown_content_has_a_safe_body() {
        let p = Post {
            kind: Some("vote".into()),
            content: json!({"type": "vote"}),
            ..Post::default()
        };
        assert_eq!(p.body(), "(vote) {\"type\":\"vote\"}");
        let p = Post {
            invalid: Some("text is not a string".into()),
            ..Post::default()
        };
        assert!(
            p.body()
                .starts_with("(unreadable content: text is not a string)")
        );
    }
}

/// Something to publish on our feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publish {
    /// A public post.
    Post {
        /// Its text.
        text: String,
    },
    /// A reply in the thread of `to` (private when `to` is).
    Reply {
        /// The message replied to.
        to: String,
        /// Its text.
        text: String,
    },
    /// A like of a message.
    Like {
        /// The message.
        id: String,
    },
    /// A private message.
    Dm {
        /// Recipients besides us.
        to: Vec<String>,
        /// Its text.
        text: String,
    },
    /// Follow a feed.
    Follow {
        /// The feed.
        id: String,
    },
    /// Stop following a feed.
    Unfollow {
        /// The feed.
        id: String,
    },
    /// Block a feed.
    Block {
        /// The feed.
        id: String,
    },
    /// A new private group, with us as its admin.
    GroupCreate {
        /// Its name.
        name: String,
    },
    /// Add a member to a group.
    GroupAdd {
        /// The group.
        group: String,
        /// The feed.
        id: String,
    },
    /// Remove a member from a group (a rekey).
    GroupRemove {
        /// The group.
        group: String,
        /// The feed.
        id: String,
    },
    /// A post to a group.
    GroupPost {
        /// The group.
        group: String,
        /// Its text.
        text: String,
    },
}

impl Publish {
    /// The request of shoal's command layer (`shoal::commands`, the control
    /// socket) that publishes it.
    pub fn request(&self) -> Json {
        use serde_json::json;
        match self {
            Publish::Post { text } => json!({
                "cmd": "publish",
                "content": json!({"type": "post", "text": text}).to_string(),
            }),
            Publish::Reply { to, text } => json!({"cmd": "reply", "id": to, "text": text}),
            Publish::Like { id } => json!({"cmd": "like", "id": id}),
            Publish::Dm { to, text } => json!({"cmd": "dm", "to": to, "text": text}),
            Publish::Follow { id } => json!({"cmd": "follow", "id": id}),
            Publish::Unfollow { id } => json!({"cmd": "unfollow", "id": id}),
            Publish::Block { id } => json!({"cmd": "block", "id": id}),
            Publish::GroupCreate { name } => json!({"cmd": "group-create", "name": name}),
            Publish::GroupAdd { group, id } => {
                json!({"cmd": "group-add", "group": group, "members": [id]})
            }
            Publish::GroupRemove { group, id } => {
                json!({"cmd": "group-remove", "group": group, "members": [id]})
            }
            Publish::GroupPost { group, text } => {
                json!({"cmd": "group-post", "group": group, "text": text})
            }
        }
    }

    /// What it did, in the past tense, for a notice.
    pub fn done(&self) -> &'static str {
        match self {
            Publish::Post { .. } => "posted",
            Publish::Reply { .. } => "replied",
            Publish::Like { .. } => "liked",
            Publish::Dm { .. } => "sent privately",
            Publish::Follow { .. } => "followed",
            Publish::Unfollow { .. } => "unfollowed",
            Publish::Block { .. } => "blocked",
            Publish::GroupCreate { .. } => "created the group",
            Publish::GroupAdd { .. } => "added to the group",
            Publish::GroupRemove { .. } => "removed; the group was rekeyed",
            Publish::GroupPost { .. } => "posted to the group",
        }
    }

    /// Whether it is a group operation.
    pub fn is_group(&self) -> bool {
        matches!(
            self,
            Publish::GroupCreate { .. }
                | Publish::GroupAdd { .. }
                | Publish::GroupRemove { .. }
                | Publish::GroupPost { .. }
        )
    }

    /// Whether it changes our contacts.
    pub fn is_contact(&self) -> bool {
        matches!(
            self,
            Publish::Follow { .. } | Publish::Unfollow { .. } | Publish::Block { .. }
        )
    }
}
