//! The content of social actions: post, reply, like, name, follow /
//! unfollow / block, direct message, and the three messages of an invite
//! (the pub's follow of whoever redeems it; the redeemer's follow of the
//! pub and its announcement of the pub's address, as ssb-invite writes
//! them). Pure apart from reading the store to
//! find a reply's thread and whether it is private; the caller publishes
//! what these return.
//!
//! A reply or like to a private message stays private: it is boxed to the
//! same recipients. So is an edit: a revision as `ssb-revisions` writes
//! it, the original's content with the new `text`, its `revisionRoot`
//! and `revisionBranch`.

use crate::crypto::{BlobId, FeedId, MsgId};
use crate::feed::content::{self, Content, Edge};
use crate::feed::json::{self, Object, Value};
use crate::private::{self, BoxError};
use crate::store::{Reader, StoreError};

/// The most recipients of a direct message besides its author (the author
/// is always a recipient too, filling the eighth slot).
pub const MAX_DM_RECIPIENTS: usize = private::MAX_RECIPIENTS - 1;

/// Why an action's content could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A direct message without anyone to send it to.
    #[error("a private message needs at least one recipient besides you")]
    NoRecipients,
    /// Too many recipients.
    #[error(
        "{0} recipients besides you: a private message has at most {MAX_DM_RECIPIENTS} (plus you)"
    )]
    TooManyRecipients(usize),
    /// Boxing failed (a recipient that is not a valid key).
    #[error("{0}")]
    Box(#[from] BoxError),
    /// Reading the store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The message to edit is not in the store.
    #[error("message {0} is not in the store")]
    NotFound(MsgId),
    /// The message to edit is someone else's.
    #[error("message {0} is not yours: only its author can edit it")]
    NotOurs(MsgId),
    /// The message to edit is not a post.
    #[error("message {0} is not a post: only posts are edited")]
    NotAPost(MsgId),
    /// An edit without text.
    #[error("the new text is empty")]
    EmptyText,
    /// The message to edit is a private group's post.
    #[error("message {0} is a group post: group posts are not edited")]
    GroupPost(MsgId),
}

fn object(kind: &str) -> Object {
    let mut c = Object::new();
    c.insert("type", Value::from(kind));
    c
}

/// `{type: post, text}`.
pub fn post(text: &str) -> Value {
    let mut c = object("post");
    c.insert("text", Value::from(text));
    Value::Object(c)
}

/// A file attached to a post: a blob of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The blob.
    pub id: BlobId,
    /// The file's name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Its media type, when its name tells (`image/png`, …).
    pub mime: Option<&'static str>,
}

/// The media type a file name's extension says, for the few kinds a post
/// carries (images first: they are drawn inline).
pub fn media_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain",
        "pdf" => "application/pdf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => return None,
    })
}

/// `{type: post, text, mentions}` with files attached as Patchwork and
/// Manyverse write them: each is linked at the end of the text
/// (`![name](&id)` for an image, `[name](&id)` otherwise) and listed in
/// `mentions` as `{link, name, size, type}`.
pub fn post_with(text: &str, attached: &[Attachment]) -> Value {
    if attached.is_empty() {
        return post(text);
    }
    let mut text = text.to_string();
    let mut mentions = Vec::new();
    for a in attached {
        // Brackets in a name would end the link text early.
        let label: String = a
            .name
            .chars()
            .map(|c| if matches!(c, '[' | ']') { '_' } else { c })
            .collect();
        let image = a.mime.is_some_and(|m| m.starts_with("image/"));
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&format!(
            "{}[{label}]({})",
            if image { "!" } else { "" },
            a.id
        ));
        let mut m = Object::new();
        m.insert("link", Value::from(a.id.to_string()));
        m.insert("name", Value::from(a.name.as_str()));
        m.insert("size", Value::from(a.size as f64));
        if let Some(t) = a.mime {
            m.insert("type", Value::from(t));
        }
        mentions.push(Value::Object(m));
    }
    let mut c = object("post");
    c.insert("text", Value::from(text));
    c.insert("mentions", Value::Array(mentions));
    Value::Object(c)
}

/// `{type: about, about: me, name}`.
pub fn name(me: &FeedId, name: &str) -> Value {
    let mut c = object("about");
    c.insert("about", Value::from(me.to_string()));
    c.insert("name", Value::from(name));
    Value::Object(c)
}

/// A contact message setting our edge towards `target`.
pub fn contact(target: &FeedId, edge: Edge) -> Value {
    let mut c = object("contact");
    c.insert("contact", Value::from(target.to_string()));
    let (following, blocking) = match edge {
        Edge::Follow => (true, false),
        Edge::None => (false, false),
        Edge::Block => (false, true),
    };
    c.insert("following", Value::Bool(following));
    if blocking {
        c.insert("blocking", Value::Bool(true));
    }
    Value::Object(c)
}

/// A device link (`linked`) or its end: a contact message that follows
/// `other` and says, with `sameAs`, whether it is another device of ours
/// (the field proposed for ssb-friends; other clients see a follow).
pub fn same_as(other: &FeedId, linked: bool) -> Value {
    let mut c = object("contact");
    c.insert("contact", Value::from(other.to_string()));
    c.insert("following", Value::Bool(true));
    c.insert("sameAs", Value::Bool(linked));
    Value::Object(c)
}

/// The follow a pub publishes when `feed` redeems one of its invites, as
/// ssb-invite writes it: `{type: contact, contact, following: true, pub:
/// true, note}` (no `note` when the invite has none).
pub fn invite_follow(feed: &FeedId, note: &str) -> Value {
    let mut c = object("contact");
    c.insert("contact", Value::from(feed.to_string()));
    c.insert("following", Value::Bool(true));
    c.insert("pub", Value::Bool(true));
    if !note.is_empty() {
        c.insert("note", Value::from(note));
    }
    Value::Object(c)
}

/// The follow of a pub whose invite we redeemed, as ssb-invite's
/// `invite.accept` writes it: `{type: contact, following: true,
/// autofollow: true, contact}`.
pub fn pub_follow(key: &FeedId) -> Value {
    let mut c = object("contact");
    c.insert("following", Value::Bool(true));
    c.insert("autofollow", Value::Bool(true));
    c.insert("contact", Value::from(key.to_string()));
    Value::Object(c)
}

/// The announcement of a pub's address: `{type: pub, address: {host,
/// port, key}}`.
pub fn pub_announcement(host: &str, port: u16, key: &FeedId) -> Value {
    let mut a = Object::new();
    a.insert("host", Value::from(host));
    a.insert("port", Value::Number(f64::from(port)));
    a.insert("key", Value::from(key.to_string()));
    let mut c = object("pub");
    c.insert("address", Value::Object(a));
    Value::Object(c)
}

/// Recipients of the private message `id`, when we hold it opened.
fn private_recps(r: &Reader, id: &MsgId) -> Result<Option<Vec<FeedId>>, StoreError> {
    Ok(r.private_content(id)?.map(|c| content::recps(&c)))
}

/// Boxes `c` to `recps` (which it lists as `recps`).
fn seal(mut c: Object, recps: &[FeedId]) -> Result<Value, ComposeError> {
    let list = recps
        .iter()
        .map(|f| Value::from(f.to_string()))
        .collect::<Vec<_>>();
    c.insert("recps", Value::Array(list));
    let plain = json::to_compact(&Value::Object(c));
    Ok(Value::from(private::box_message(&plain, recps)?))
}

/// A reply to `to`: in its thread (`root` is its root, or itself), branching
/// from it; private to the same recipients when `to` is private.
pub fn reply(r: &Reader, me: &FeedId, to: &MsgId, text: &str) -> Result<Value, ComposeError> {
    let mut root = *to;
    if let Some(m) = r.get(to)? {
        let content = match r.private_content(to)? {
            Some(c) => c,
            None => m.value()?.get("content").cloned().unwrap_or(Value::Null),
        };
        if let Content::Post(p) = content::parse(&content)
            && let Some(rt) = p.root
        {
            root = rt;
        }
    }
    let mut c = object("post");
    c.insert("text", Value::from(text));
    c.insert("root", Value::from(root.to_string()));
    c.insert("branch", Value::from(to.to_string()));
    match private_recps(r, to)? {
        Some(recps) => seal(c, &recipients(me, recps)?),
        None => Ok(Value::Object(c)),
    }
}

/// A like (or, with `liked` false, taking it back) of `to`.
pub fn like(r: &Reader, me: &FeedId, to: &MsgId, liked: bool) -> Result<Value, ComposeError> {
    let mut vote = Object::new();
    vote.insert("link", Value::from(to.to_string()));
    vote.insert("value", Value::Number(if liked { 1.0 } else { 0.0 }));
    vote.insert(
        "expression",
        Value::from(if liked { "Like" } else { "Unlike" }),
    );
    let mut c = object("vote");
    c.insert("vote", Value::Object(vote));
    match private_recps(r, to)? {
        Some(recps) => seal(c, &recipients(me, recps)?),
        None => Ok(Value::Object(c)),
    }
}

fn with_me(me: &FeedId, mut recps: Vec<FeedId>) -> Vec<FeedId> {
    if !recps.contains(me) {
        recps.insert(0, *me);
    }
    let mut seen = std::collections::HashSet::new();
    recps.retain(|f| seen.insert(*f));
    recps
}

/// Whom a private message of ours is boxed to: us first (unless listed
/// already), then each other feed once; refused past
/// [`MAX_DM_RECIPIENTS`] others, so we are never the one left out.
fn recipients(me: &FeedId, list: Vec<FeedId>) -> Result<Vec<FeedId>, ComposeError> {
    let recps = with_me(me, list);
    let others = recps.len() - 1;
    if others > MAX_DM_RECIPIENTS {
        return Err(ComposeError::TooManyRecipients(others));
    }
    Ok(recps)
}

/// A private post to `to` (1..=7 feeds besides us), boxed to them and us.
pub fn dm(me: &FeedId, to: &[FeedId], text: &str) -> Result<Value, ComposeError> {
    let recps = recipients(me, to.to_vec())?;
    if recps.len() == 1 {
        return Err(ComposeError::NoRecipients);
    }
    let mut c = object("post");
    c.insert("text", Value::from(text));
    seal(c, &recps)
}

/// A revision of our post `id` (or of the post a revision `id` revises)
/// with the new `text`, as `ssb-revisions` writes one: the original's
/// content as it was (type, root, branch, channel, recps, …) with the new
/// `text` (its old `mentions` dropped: they were the old text's), then
/// `revisionRoot` (the original) and `revisionBranch` (the latest
/// revision it replaces, or the original for a first edit). Private to
/// the same recipients when the original is.
pub fn edit(r: &Reader, me: &FeedId, id: &MsgId, text: &str) -> Result<Value, ComposeError> {
    if text.trim().is_empty() {
        return Err(ComposeError::EmptyText);
    }
    let (mut root, mut content, mut private) = held_content(r, id)?;
    if let Content::Post(p) = content::parse(&content)
        && let Some(original) = p.revision_root
    {
        root = original;
        (_, content, private) = held_content(r, &root)?;
    }
    let Some(m) = r.get(&root)? else {
        return Err(ComposeError::NotFound(root));
    };
    let value = m.value()?;
    let author = value
        .get("author")
        .and_then(Value::as_str)
        .and_then(FeedId::parse);
    if author != Some(*me) {
        return Err(ComposeError::NotOurs(root));
    }
    // Its revision would have to go to the group, not to feeds.
    if value
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(private::groups::is_group_content)
    {
        return Err(ComposeError::GroupPost(root));
    }
    let Content::Post(post) = content::parse(&content) else {
        return Err(ComposeError::NotAPost(root));
    };
    let Value::Object(mut c) = content else {
        return Err(ComposeError::NotAPost(root));
    };
    let branch = super::View::new(r)?
        .latest_revision(&root, me)?
        .unwrap_or(root);
    c.insert("text", Value::from(text));
    c.remove("mentions");
    c.remove("recps");
    c.insert("revisionRoot", Value::from(root.to_string()));
    c.insert("revisionBranch", Value::from(branch.to_string()));
    if private {
        seal(c, &recipients(me, post.recps)?)
    } else {
        Ok(Value::Object(c))
    }
}

/// The id, content (opened when private) and privacy of a message we hold.
fn held_content(r: &Reader, id: &MsgId) -> Result<(MsgId, Value, bool), ComposeError> {
    let Some(m) = r.get(id)? else {
        return Err(ComposeError::NotFound(*id));
    };
    Ok(match r.private_content(id)? {
        Some(c) => (*id, c, true),
        None => (
            *id,
            m.value()?.get("content").cloned().unwrap_or(Value::Null),
            false,
        ),
    })
}
