//! The data the screens show: shoal's own read models (`shoal::api`'s
//! `Item`, `Thread`, `Profile`, `Status`, …), the same values whether they
//! came from an embedded node or through a running node's control socket,
//! and what the screens ask of them ([`PostView`], [`EntryView`]). Strings here are as
//! peers wrote them: unsafe to draw until passed through `text`. Plain
//! data; imports `shoal::api` and `text`, nothing of the UI, the node or
//! I/O.

use serde_json::Value as Json;
use shoal::api::Request;

/// What we know of a blob: held (and where) or on its way.
pub use shoal::api::BlobState;
/// A page position: entries strictly older than `(time, rx)`.
pub use shoal::api::Cursor;
/// One line of a thread.
pub use shoal::api::Entry as ThreadEntry;
/// One message as the screens show it (a timeline, inbox or thread item).
pub use shoal::api::Item as Post;
/// What the node says about itself.
pub use shoal::api::Status;
/// A thread: its root, then every reply we know of, in thread order.
pub use shoal::api::Thread as ThreadView;
/// Why a feed replicates or not (`shoal why`).
pub use shoal::api::Why;
/// A room we are in and who attends it; someone attending a room.
pub use shoal::api::{Attendant, RoomView};
/// A private group as the node knows it, and its epochs.
pub use shoal::api::{Contacts, EpochInfo, GroupInfo, Person, Profile};

/// A name given (clean, one line), or the start of the id.
fn name_or_id(name: &Option<String>, id: &str) -> String {
    match name {
        Some(n) if !crate::text::one_line(n).is_empty() => crate::text::one_line(n),
        _ => crate::text::short_id(id),
    }
}

/// What the screens ask of a post.
pub trait PostView {
    /// Its page position.
    fn cursor(&self) -> Cursor;
    /// What to show as its body (not yet cleaned): the post text, or a
    /// description of other or malformed content.
    fn body(&self) -> String;
}

impl PostView for Post {
    fn cursor(&self) -> Cursor {
        (self.time, self.rx)
    }

    fn body(&self) -> String {
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

/// What the screens ask of a thread entry.
pub trait EntryView {
    /// Its nesting depth.
    fn depth(&self) -> usize;
    /// The message, when we hold it.
    fn post(&self) -> Option<&Post>;
}

impl EntryView for ThreadEntry {
    fn depth(&self) -> usize {
        match self {
            ThreadEntry::Message { depth, .. }
            | ThreadEntry::Missing { depth, .. }
            | ThreadEntry::Muted { depth, .. } => *depth,
        }
    }

    fn post(&self) -> Option<&Post> {
        match self {
            ThreadEntry::Message { item, .. } => Some(item),
            ThreadEntry::Missing { .. } | ThreadEntry::Muted { .. } => None,
        }
    }
}

/// A group's name (clean, one line), or the start of its id.
pub fn group_title(g: &GroupInfo) -> String {
    name_or_id(&g.name, &g.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        /// Files to attach (added as blobs; images shown in the post).
        attach: Vec<std::path::PathBuf>,
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
    /// The API request that publishes it; `Err` names an id that is not
    /// one.
    pub fn request(&self) -> Result<Request, String> {
        use shoal::crypto::{FeedId, MsgId};
        let msg = |s: &str| MsgId::parse(s).ok_or_else(|| format!("not a message id: {s}"));
        let feed = |s: &str| FeedId::parse(s).ok_or_else(|| format!("not a feed id: {s}"));
        Ok(match self {
            Publish::Post { text, attach } => Request::Post {
                text: text.clone(),
                attach: attach.clone(),
            },
            Publish::Reply { to, text } => Request::Reply {
                id: msg(to)?,
                text: text.clone(),
            },
            Publish::Like { id } => Request::Like {
                id: msg(id)?,
                undo: false,
            },
            Publish::Dm { to, text } => Request::Dm {
                to: to.iter().map(|t| feed(t)).collect::<Result<_, _>>()?,
                text: text.clone(),
            },
            Publish::Follow { id } => Request::Follow { id: feed(id)? },
            Publish::Unfollow { id } => Request::Unfollow { id: feed(id)? },
            Publish::Block { id } => Request::Block { id: feed(id)? },
            Publish::GroupCreate { name } => Request::GroupCreate { name: name.clone() },
            Publish::GroupAdd { group, id } => Request::GroupAdd {
                group: msg(group)?,
                members: vec![feed(id)?],
                admin: false,
            },
            Publish::GroupRemove { group, id } => Request::GroupRemove {
                group: msg(group)?,
                members: vec![feed(id)?],
            },
            Publish::GroupPost { group, text } => Request::GroupPost {
                group: msg(group)?,
                text: text.clone(),
            },
        })
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
