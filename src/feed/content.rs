//! Typed views of message content: `post`, `vote`, `about`, `contact`, `pub`.
//!
//! Pure: reads a parsed [`Value`] and imports only `crypto` and
//! [`json`](super::json). Content of a type we do not know is kept as it is
//! ([`Content::Other`]); content that claims a known type but has a field of
//! the wrong type, or a link that is not an id, is [`Content::Invalid`] with
//! the reason, so readers can show it raw instead of guessing.
//!
//! Lenient where the network is: `branch` may be one id or a list,
//! `mentions` entries whose `link` is not an id (hashtags like `#ssb`) are
//! skipped, `recps` entries may be ids or `{link}` objects.

use crate::crypto::{FeedId, MsgId};

use super::json::{JsString, Value};

/// Something a message can point at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// A feed `@….ed25519`.
    Feed(FeedId),
    /// A message `%….sha256`.
    Msg(MsgId),
    /// A blob `&….sha256`, kept as its text.
    Blob(String),
}

impl Link {
    /// Parses an id of any of the three kinds.
    pub fn parse(s: &str) -> Option<Link> {
        if let Some(f) = FeedId::parse(s) {
            return Some(Link::Feed(f));
        }
        if let Some(m) = MsgId::parse(s) {
            return Some(Link::Msg(m));
        }
        blob_id(s).map(|b| Link::Blob(b.to_string()))
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Feed(id) => id.fmt(f),
            Link::Msg(id) => id.fmt(f),
            Link::Blob(b) => f.write_str(b),
        }
    }
}

/// `&` + base64 of 32 bytes + `.sha256`.
fn blob_id(s: &str) -> Option<&str> {
    let b64 = s.strip_prefix('&')?.strip_suffix(".sha256")?;
    let raw = crate::crypto::b64_decode(b64)?;
    (raw.len() == 32).then_some(s)
}

/// A mention inside a post.
#[derive(Clone, Debug, PartialEq)]
pub struct Mention {
    /// What is mentioned.
    pub link: Link,
    /// The name it was mentioned by, if given.
    pub name: Option<String>,
}

/// A post or a reply.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Post {
    /// The text (markdown), as JavaScript has it: [`JsString::to_string_lossy`]
    /// for display (the indexer never needs it as a `String`).
    pub text: JsString,
    /// The thread's first message, for replies.
    pub root: Option<MsgId>,
    /// The message(s) this one answers directly.
    pub branch: Vec<MsgId>,
    /// Feeds, messages and blobs mentioned.
    pub mentions: Vec<Mention>,
    /// Recipients, for private posts.
    pub recps: Vec<FeedId>,
    /// A channel name, if any.
    pub channel: Option<String>,
    /// For a revision (the `ssb-revisions` convention): the message it
    /// revises, `revisionRoot`.
    pub revision_root: Option<MsgId>,
    /// For a revision: the revision(s) it replaces, `revisionBranch` (the
    /// root itself for a first edit; a string, or a list for a merge).
    pub revision_branch: Vec<MsgId>,
}

/// A vote: `value > 0` likes, `0` takes a like back.
#[derive(Clone, Debug, PartialEq)]
pub struct Vote {
    /// What is voted on.
    pub link: Link,
    /// The vote's value.
    pub value: f64,
    /// How the client showed it ("Like", "Unlike", an emoji).
    pub expression: Option<String>,
}

impl Vote {
    /// Whether this vote counts as a like.
    pub fn likes(&self) -> bool {
        self.value > 0.0
    }
}

/// Information about a feed (or a message): name, description, image.
#[derive(Clone, Debug, PartialEq)]
pub struct About {
    /// What this is about.
    pub about: Link,
    /// A name.
    pub name: Option<String>,
    /// A description (markdown).
    pub description: Option<String>,
    /// An image blob id.
    pub image: Option<String>,
}

/// A change of follow / block state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactChange {
    /// Whom it is about.
    pub contact: FeedId,
    /// `following`, when given.
    pub following: Option<bool>,
    /// `blocking`, when given.
    pub blocking: Option<bool>,
    /// `sameAs`, when a boolean: whether `contact` is another device of
    /// the author's (the `sameAs` contact field proposed for ssb-friends;
    /// any other value is ignored, the follow still read).
    pub same_as: Option<bool>,
}

/// The follow / block edge a contact message leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Neither following nor blocking.
    None,
    /// Following.
    Follow,
    /// Blocking.
    Block,
}

impl ContactChange {
    /// The edge as ssb-friends reads it: `blocking: true` blocks; otherwise
    /// `following: true` follows; an explicit `false` clears the edge;
    /// neither field changes nothing.
    pub fn edge(&self) -> Option<Edge> {
        match (self.following, self.blocking) {
            (_, Some(true)) => Some(Edge::Block),
            (Some(true), _) => Some(Edge::Follow),
            (Some(false), _) | (_, Some(false)) => Some(Edge::None),
            (None, None) => None,
        }
    }
}

/// A pub announcing where it can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pub {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The pub's feed id (its secret-handshake key).
    pub key: FeedId,
}

impl Pub {
    /// The multiserver address `net:HOST:PORT~shs:KEY`.
    pub fn address(&self) -> String {
        format!("net:{}:{}~shs:{}", self.host, self.port, self.key.b64())
    }
}

/// Why content of a known type could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// A required field is absent.
    #[error("{kind}: missing field {field:?}")]
    Missing {
        /// The content type.
        kind: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("{kind}: field {field:?} should be {expected}, found {found}")]
    WrongType {
        /// The content type.
        kind: &'static str,
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A field that must be an id is not one.
    #[error("{kind}: field {field:?} is not a {expected} id: {got:?}")]
    NotALink {
        /// The content type.
        kind: &'static str,
        /// The field.
        field: &'static str,
        /// The kind of id expected.
        expected: &'static str,
        /// What was there (cut to 60 characters).
        got: String,
    },
}

/// A typed view of a message's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// `type: post`.
    Post(Post),
    /// `type: vote`.
    Vote(Vote),
    /// `type: about`.
    About(About),
    /// `type: contact`.
    Contact(ContactChange),
    /// `type: pub`.
    Pub(Pub),
    /// An encrypted string `<base64>.box`.
    Boxed,
    /// Any other type (or none): kept and shown raw.
    Other {
        /// The `type` field, when it is a string.
        kind: Option<String>,
    },
    /// A known type whose fields are not what the type requires.
    Invalid {
        /// The `type` field.
        kind: String,
        /// What is wrong.
        reason: ContentError,
    },
}

/// Reads content. Never fails: what is not understood is `Other` or `Invalid`.
pub fn parse(content: &Value) -> Content {
    let obj = match content {
        Value::String(s) if s.as_wtf8().ends_with(b".box") => return Content::Boxed,
        Value::Object(o) => o,
        _ => return Content::Other { kind: None },
    };
    let Some(kind) = obj.get("type").and_then(Value::as_str) else {
        return Content::Other { kind: None };
    };
    let parsed = match kind {
        "post" => post(content).map(Content::Post),
        "vote" => vote(content).map(Content::Vote),
        "about" => about(content).map(Content::About),
        "contact" => contact(content).map(Content::Contact),
        "pub" => pub_(content).map(Content::Pub),
        other => {
            return Content::Other {
                kind: Some(other.to_string()),
            };
        }
    };
    parsed.unwrap_or_else(|reason| Content::Invalid {
        kind: kind.to_string(),
        reason,
    })
}

/// The `type` field of content, when it is an object with a string type.
pub fn kind(content: &Value) -> Option<&str> {
    content.get("type").and_then(Value::as_str)
}

fn cut(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.to_string_lossy(),
        other => String::from_utf8_lossy(&super::json::to_compact(other)).into_owned(),
    };
    text.chars().take(60).collect()
}

type Res<T> = Result<T, ContentError>;

fn opt_string(c: &Value, kind: &'static str, field: &'static str) -> Res<Option<String>> {
    match c.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.to_string_lossy())),
        Some(other) => Err(ContentError::WrongType {
            kind,
            field,
            expected: "a string",
            found: other.kind(),
        }),
    }
}

fn opt_bool(c: &Value, kind: &'static str, field: &'static str) -> Res<Option<bool>> {
    match c.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ContentError::WrongType {
            kind,
            field,
            expected: "true or false",
            found: other.kind(),
        }),
    }
}

/// A link given as a string or as `{link: "…"}`.
fn link_text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => s.as_str(),
        Value::Object(_) => v.get("link").and_then(Value::as_str),
        _ => None,
    }
}

fn msg_link(v: &Value, kind: &'static str, field: &'static str) -> Res<MsgId> {
    link_text(v)
        .and_then(MsgId::parse)
        .ok_or_else(|| ContentError::NotALink {
            kind,
            field,
            expected: "message",
            got: cut(v),
        })
}

/// Most `revisionBranch` entries read from one revision.
pub const MAX_REVISION_BRANCHES: usize = 16;

fn post(c: &Value) -> Res<Post> {
    const K: &str = "post";
    let text = match c.get("text") {
        Some(Value::String(s)) => s.clone(),
        None => {
            return Err(ContentError::Missing {
                kind: K,
                field: "text",
            });
        }
        Some(other) => {
            return Err(ContentError::WrongType {
                kind: K,
                field: "text",
                expected: "a string",
                found: other.kind(),
            });
        }
    };
    let root = match c.get("root") {
        None | Some(Value::Null) => None,
        Some(v) => Some(msg_link(v, K, "root")?),
    };
    let branch = match c.get("branch") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| msg_link(v, K, "branch"))
            .collect::<Res<Vec<_>>>()?,
        Some(v) => vec![msg_link(v, K, "branch")?],
    };
    let mentions = match c.get("mentions") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|m| {
                let link = Link::parse(link_text(m)?)?;
                let name = m.get("name").and_then(Value::as_str).map(str::to_string);
                Some(Mention { link, name })
            })
            .collect(),
        _ => Vec::new(),
    };
    let revision_root = match c.get("revisionRoot") {
        None | Some(Value::Null) => None,
        Some(v) => Some(msg_link(v, K, "revisionRoot")?),
    };
    let revision_branch = match c.get("revisionBranch") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .take(MAX_REVISION_BRANCHES)
            .map(|v| msg_link(v, K, "revisionBranch"))
            .collect::<Res<Vec<_>>>()?,
        Some(v) => vec![msg_link(v, K, "revisionBranch")?],
    };
    Ok(Post {
        text,
        root,
        branch,
        mentions,
        recps: recps(c),
        channel: opt_string(c, K, "channel").ok().flatten(),
        revision_root,
        revision_branch,
    })
}

/// The feed ids in `recps` (strings or `{link}` objects); other entries skipped.
pub fn recps(c: &Value) -> Vec<FeedId> {
    match c.get("recps") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| FeedId::parse(link_text(v)?))
            .collect(),
        _ => Vec::new(),
    }
}

fn vote(c: &Value) -> Res<Vote> {
    const K: &str = "vote";
    let v = match c.get("vote") {
        Some(v @ Value::Object(_)) => v,
        None => {
            return Err(ContentError::Missing {
                kind: K,
                field: "vote",
            });
        }
        Some(other) => {
            return Err(ContentError::WrongType {
                kind: K,
                field: "vote",
                expected: "an object",
                found: other.kind(),
            });
        }
    };
    let link_v = v.get("link").ok_or(ContentError::Missing {
        kind: K,
        field: "vote.link",
    })?;
    let link = link_text(link_v)
        .and_then(Link::parse)
        .ok_or_else(|| ContentError::NotALink {
            kind: K,
            field: "vote.link",
            expected: "message or feed",
            got: cut(link_v),
        })?;
    let value = match v.get("value") {
        Some(Value::Number(n)) if n.is_finite() => *n,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        None => {
            return Err(ContentError::Missing {
                kind: K,
                field: "vote.value",
            });
        }
        Some(other) => {
            return Err(ContentError::WrongType {
                kind: K,
                field: "vote.value",
                expected: "a number",
                found: other.kind(),
            });
        }
    };
    Ok(Vote {
        link,
        value,
        expression: opt_string(v, K, "expression").ok().flatten(),
    })
}

fn about(c: &Value) -> Res<About> {
    const K: &str = "about";
    let about_v = c.get("about").ok_or(ContentError::Missing {
        kind: K,
        field: "about",
    })?;
    let about = link_text(about_v)
        .and_then(Link::parse)
        .ok_or_else(|| ContentError::NotALink {
            kind: K,
            field: "about",
            expected: "feed or message",
            got: cut(about_v),
        })?;
    let image = match c.get("image") {
        None | Some(Value::Null) => None,
        Some(v) => match link_text(v).and_then(blob_id) {
            Some(b) => Some(b.to_string()),
            None => {
                return Err(ContentError::NotALink {
                    kind: K,
                    field: "image",
                    expected: "blob",
                    got: cut(v),
                });
            }
        },
    };
    Ok(About {
        about,
        name: opt_string(c, K, "name")?,
        description: opt_string(c, K, "description")?,
        image,
    })
}

fn contact(c: &Value) -> Res<ContactChange> {
    const K: &str = "contact";
    let v = c.get("contact").ok_or(ContentError::Missing {
        kind: K,
        field: "contact",
    })?;
    let contact = link_text(v)
        .and_then(FeedId::parse)
        .ok_or_else(|| ContentError::NotALink {
            kind: K,
            field: "contact",
            expected: "feed",
            got: cut(v),
        })?;
    Ok(ContactChange {
        contact,
        following: opt_bool(c, K, "following")?,
        blocking: opt_bool(c, K, "blocking")?,
        same_as: match c.get("sameAs") {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        },
    })
}

fn pub_(c: &Value) -> Res<Pub> {
    const K: &str = "pub";
    let a = match c.get("address") {
        Some(a @ Value::Object(_)) => a,
        None => {
            return Err(ContentError::Missing {
                kind: K,
                field: "address",
            });
        }
        Some(other) => {
            return Err(ContentError::WrongType {
                kind: K,
                field: "address",
                expected: "an object",
                found: other.kind(),
            });
        }
    };
    let host = opt_string(a, K, "host")?.ok_or(ContentError::Missing {
        kind: K,
        field: "address.host",
    })?;
    let port = match a.get("port") {
        Some(Value::Number(n)) if n.fract() == 0.0 && (1.0..=65535.0).contains(n) => *n as u16,
        None => {
            return Err(ContentError::Missing {
                kind: K,
                field: "address.port",
            });
        }
        Some(other) => {
            return Err(ContentError::WrongType {
                kind: K,
                field: "address.port",
                expected: "a port number",
                found: other.kind(),
            });
        }
    };
    let key_v = a.get("key").ok_or(ContentError::Missing {
        kind: K,
        field: "address.key",
    })?;
    let key = link_text(key_v)
        .and_then(FeedId::parse)
        .ok_or_else(|| ContentError::NotALink {
            kind: K,
            field: "address.key",
            expected: "feed",
            got: cut(key_v),
        })?;
    if host.is_empty() || host.contains(['~', ' ', ';']) {
        return Err(ContentError::WrongType {
            kind: K,
            field: "address.host",
            expected: "a host name",
            found: "text with separators",
        });
    }
    Ok(Pub { host, port, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::json::parse as jparse;

    const FEED: &str = "@FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=.ed25519";
    const MSG: &str = "%R8heq/tQoxEIPkWf0Kxn1nCm/CsxG2CDpUYnAvdbXY8=.sha256";
    const BLOB: &str = "&RYnp9p24dlAPYGhrsFYdGGHIAYM2uM5pr1//RocCF/U=.sha256";

    fn c(text: &str) -> Content {
        parse(&jparse(text.as_bytes()).unwrap())
    }

    #[test]
    fn a_reply_reads_root_branch_and_mentions() {
        let got = c(&format!(
            r##"{{"type":"post","text":"hi","root":"{MSG}","branch":["{MSG}"],
               "mentions":[{{"link":"{FEED}","name":"al"}},{{"link":"#ssb"}},"{BLOB}"]}}"##
        ));
        let Content::Post(p) = got else {
            panic!("not a post: {got:?}")
        };
        assert_eq!(p.text.to_string_lossy(), "hi");
        assert_eq!(p.root.unwrap().to_string(), MSG);
        assert_eq!(p.branch.len(), 1);
        assert_eq!(p.mentions.len(), 2, "the hashtag is skipped");
        assert_eq!(p.mentions[0].name.as_deref(), Some("al"));
        assert_eq!(p.mentions[1].link, Link::Blob(BLOB.into()));
    }

    #[test]
    fn branch_may_be_a_single_id() {
        let Content::Post(p) = c(&format!(r#"{{"type":"post","text":"x","branch":"{MSG}"}}"#))
        else {
            panic!()
        };
        assert_eq!(p.branch.len(), 1);
    }

    #[test]
    fn wrong_field_types_are_invalid_with_a_reason() {
        for (text, needle) in [
            (r#"{"type":"post","text":5}"#.to_string(), "text"),
            (r#"{"type":"post"}"#.to_string(), "missing field \"text\""),
            (
                r#"{"type":"post","text":"x","root":"%nope"}"#.to_string(),
                "root",
            ),
            (r#"{"type":"vote","vote":"yes"}"#.to_string(), "vote"),
            (
                r#"{"type":"vote","vote":{"link":"x","value":1}}"#.to_string(),
                "vote.link",
            ),
            (
                format!(r#"{{"type":"vote","vote":{{"link":"{MSG}","value":"1"}}}}"#),
                "vote.value",
            ),
            (
                r#"{"type":"about","about":"bob","name":"b"}"#.to_string(),
                "about",
            ),
            (
                format!(r#"{{"type":"about","about":"{FEED}","name":7}}"#),
                "name",
            ),
            (
                r#"{"type":"contact","contact":"@x","following":true}"#.to_string(),
                "contact",
            ),
            (
                format!(r#"{{"type":"contact","contact":"{FEED}","following":"yes"}}"#),
                "following",
            ),
            (
                r#"{"type":"pub","address":{"host":"h","port":70000,"key":"k"}}"#.to_string(),
                "port",
            ),
        ] {
            match c(&text) {
                Content::Invalid { reason, .. } => {
                    assert!(reason.to_string().contains(needle), "{text}: {reason}")
                }
                other => panic!("{text}: accepted as {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_and_boxed_content_are_kept_apart() {
        assert_eq!(
            c(r#"{"type":"gathering","x":1}"#),
            Content::Other {
                kind: Some("gathering".into())
            }
        );
        assert_eq!(c(r#""abc.box""#), Content::Boxed);
        assert_eq!(c(r#"{"text":"no type"}"#), Content::Other { kind: None });
        assert_eq!(c("[1,2]"), Content::Other { kind: None });
    }

    #[test]
    fn contact_edges_follow_ssb_friends() {
        let edge = |f: &str| {
            let Content::Contact(cc) = c(&format!(r#"{{"type":"contact","contact":"{FEED}"{f}}}"#))
            else {
                panic!()
            };
            cc.edge()
        };
        assert_eq!(edge(r#","following":true"#), Some(Edge::Follow));
        assert_eq!(
            edge(r#","following":true,"blocking":true"#),
            Some(Edge::Block)
        );
        assert_eq!(edge(r#","following":false"#), Some(Edge::None));
        assert_eq!(edge(r#","blocking":false"#), Some(Edge::None));
        assert_eq!(edge(""), None);
    }

    #[test]
    fn pubs_give_multiserver_addresses() {
        let Content::Pub(p) = c(&format!(
            r#"{{"type":"pub","address":{{"host":"example.org","port":8008,"key":"{FEED}"}}}}"#
        )) else {
            panic!()
        };
        assert_eq!(
            p.address(),
            format!("net:example.org:8008~shs:{}", &FEED[1..FEED.len() - 8])
        );
    }

    #[test]
    fn votes_and_abouts() {
        let Content::Vote(v) = c(&format!(
            r#"{{"type":"vote","vote":{{"link":"{MSG}","value":1,"expression":"Like"}}}}"#
        )) else {
            panic!()
        };
        assert!(v.likes());
        let Content::About(a) = c(&format!(
            r#"{{"type":"about","about":"{FEED}","name":"al","image":{{"link":"{BLOB}"}}}}"#
        )) else {
            panic!()
        };
        assert_eq!(a.name.as_deref(), Some("al"));
        assert_eq!(a.image.as_deref(), Some(BLOB));
    }
}
