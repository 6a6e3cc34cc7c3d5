//! Read models over the store: the timeline, threads assembled from
//! backlinks, profiles and names, contacts and followers, the inbox of
//! private messages, unread marks; what the person muted hidden from the
//! timeline and the inbox and collapsed in threads; a post its author
//! revised (`ssb-revisions`) shown as its latest revision, with its
//! history; and [`compose`], the content of the social actions (reply,
//! like, edit, name, follow, block, direct message).
//!
//! Synchronous, served from the store's indexes through one
//! [`Reader`] snapshot; never scans the log. Imports `crypto`, `feed`,
//! `private` and `store`; never networking or UI code. Results are plain
//! serialisable structs, the same for the CLI, the control socket and the
//! terminal client.

pub mod compose;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::crypto::{FeedId, MsgId};
use crate::feed::content::{self, Content, Link};
use crate::feed::json::Value;
use crate::store::schema::{ABOUT_DESCRIPTION, ABOUT_IMAGE, ABOUT_NAME, LINK_MENTION, LINK_ROOT};
use crate::store::{Contact, Cursor, Reader, Result, StoredMsg, sort_time};

/// One message as the read models show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Item {
    /// Message id.
    pub key: String,
    /// Author's feed id.
    pub author: String,
    /// Author's current name, if known.
    pub name: Option<String>,
    /// Sequence in the author's feed.
    pub sequence: u64,
    /// The time it sorts by (claimed, never after arrival), ms.
    pub time: u64,
    /// Local receive sequence (also the paging cursor with `time`).
    pub rx: u64,
    /// Content type (`post`, `vote`, …), when there is one.
    pub kind: Option<String>,
    /// The text of a post.
    pub text: Option<String>,
    /// The thread root of a reply.
    pub root: Option<String>,
    /// Whether it was a private box we opened.
    pub private: bool,
    /// Recipients of a private message.
    pub recps: Vec<String>,
    /// The replies a person sees under it. On its own (timeline, inbox):
    /// those in its own thread, the messages naming it as their root,
    /// which opening it shows. As an entry of a thread: those nested
    /// under it there.
    pub replies: usize,
    /// As an entry of a thread other than its root: replies in its own
    /// thread (a forked thread, messages naming it as their root), which
    /// opening it shows.
    #[serde(skip_serializing_if = "is_zero")]
    pub own_thread: usize,
    /// Feeds that like it now.
    pub likes: usize,
    /// Not yet opened by us.
    pub unread: bool,
    /// For content of a known type that is malformed: why.
    pub invalid: Option<String>,
    /// Its author's feed is held from above its first message: fetched
    /// newest first, its older history still arriving.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Its author revised it (`ssb-revisions`): `text` is the latest
    /// revision's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
    /// How many revisions of it its author published.
    #[serde(skip_serializing_if = "is_zero")]
    pub revisions: usize,
    /// For a revision itself (shown in a history, or opened by its id):
    /// the message it revises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revises: Option<String>,
    /// The content as JSON (decrypted when private): how to show what
    /// is not a post.
    pub content: serde_json::Value,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Most replies one thread shows; the rest are counted in [`Thread::more`].
pub const MAX_THREAD_REPLIES: usize = 5_000;

/// Deepest nesting a thread gives; deeper replies line up at it.
pub const MAX_THREAD_DEPTH: usize = 64;

/// A thread: its root, then every reply we know of, in reply order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thread {
    /// The root's id.
    pub root: String,
    /// Root first, then replies depth-first, siblings oldest first.
    pub entries: Vec<Entry>,
    /// Replies hidden because we block their authors.
    pub hidden: usize,
    /// A forked thread (its root is itself a reply that other messages
    /// name as their root): the root of the thread it forked from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
    /// Replies not shown: past [`MAX_THREAD_REPLIES`].
    #[serde(skip_serializing_if = "is_zero")]
    pub more: usize,
    /// Replies collapsed because they are muted (by author, word or
    /// thread), each counted in an [`Entry::Muted`].
    #[serde(skip_serializing_if = "is_zero")]
    pub muted: usize,
    /// The thread itself is muted: it shows when opened, but not in the
    /// timeline or the inbox.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub muted_thread: bool,
}

/// One line of a thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "lowercase")]
pub enum Entry {
    /// A message we hold.
    Message {
        /// Nesting under the root (root is 0).
        depth: usize,
        /// The message.
        #[serde(flatten)]
        item: Box<Item>,
    },
    /// A message replies point at that we do not hold (yet).
    Missing {
        /// Nesting under the root.
        depth: usize,
        /// Its id.
        key: String,
    },
    /// Muted replies collapsed: a muted reply and those nested under it.
    Muted {
        /// Nesting of the muted reply.
        depth: usize,
        /// How many replies it hides.
        count: usize,
    },
}

impl Entry {
    /// Its nesting under the root.
    pub fn depth(&self) -> usize {
        match self {
            Entry::Message { depth, .. }
            | Entry::Missing { depth, .. }
            | Entry::Muted { depth, .. } => *depth,
        }
    }
}

/// A message and its revisions, oldest first: what `shoal history` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// The original's id.
    pub root: String,
    /// The original (with its own text), then each revision by its
    /// author in the order they published them.
    pub versions: Vec<Item>,
    /// Revisions by other feeds, ignored.
    #[serde(skip_serializing_if = "is_zero")]
    pub ignored: usize,
}

/// Most muted posts the timeline or the inbox reads past for one page.
pub const MAX_MUTED_SKIP: usize = 10_000;

/// A profile: names, description, image, and the contact graph around it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// Feed id.
    pub id: String,
    /// The name shown: its own, else one we gave, else the latest by others.
    pub name: Option<String>,
    /// Every name given to it: `(namer, name)`.
    pub names: Vec<(String, String)>,
    /// Its own description.
    pub description: Option<String>,
    /// Its own image blob.
    pub image: Option<String>,
    /// Its contacts (with linked devices: the person's, followers
    /// counted once for the person).
    pub contacts: Contacts,
    /// Its person's other feeds (devices linked both ways).
    #[serde(default)]
    pub devices: Vec<Person>,
    /// Feeds it says are its devices that have not said so back (not
    /// honoured): "claimed by one side".
    #[serde(default)]
    pub claimed_devices: Vec<Person>,
}

/// Whom a feed follows and blocks, and who follows and blocks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

/// A feed with its name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Person {
    /// Feed id.
    pub id: String,
    /// Current name.
    pub name: Option<String>,
}

/// Builds items, remembering names so each author is looked up once.
pub struct View<'r> {
    r: &'r Reader,
    me: Option<FeedId>,
    names: HashMap<FeedId, Option<String>>,
    blocked: HashSet<FeedId>,
    /// Replies nested under each reply of a thread, by thread root: what
    /// a listed reply's count says (its place in its root's thread).
    nested: HashMap<MsgId, HashMap<MsgId, usize>>,
}

impl<'r> View<'r> {
    /// A view for the store's owner (or for nobody when the store has none).
    pub fn new(r: &'r Reader) -> Result<View<'r>> {
        let me = r.me();
        let blocked = match me {
            Some(me) => r
                .contacts_of(&me)?
                .into_iter()
                .filter(|(_, c)| *c == Contact::Block)
                .map(|(f, _)| f)
                .collect(),
            None => HashSet::new(),
        };
        Ok(View {
            r,
            me,
            names: HashMap::new(),
            blocked,
            nested: HashMap::new(),
        })
    }

    /// The reader underneath.
    pub fn reader(&self) -> &Reader {
        self.r
    }

    /// Whether we block `feed`.
    pub fn blocks(&self, feed: &FeedId) -> bool {
        self.blocked.contains(feed)
    }

    /// The name shown for a feed: its person's own latest (the latest any
    /// of its linked devices gave itself), else the one we gave it, else
    /// the latest given by anyone.
    pub fn name(&mut self, feed: &FeedId) -> Result<Option<String>> {
        if let Some(n) = self.names.get(feed) {
            return Ok(n.clone());
        }
        let fields = self.r.about_fields(&Link::Feed(*feed))?;
        let names: Vec<_> = fields.iter().filter(|f| f.field == ABOUT_NAME).collect();
        let devices = self.r.devices(feed)?.person;
        if devices.len() > 1 {
            let mut own = Vec::new();
            for d in &devices {
                own.extend(
                    self.r
                        .about_fields(&Link::Feed(*d))?
                        .into_iter()
                        .filter(|f| f.field == ABOUT_NAME && f.namer == *d),
                );
            }
            if let Some(latest) = own.into_iter().max_by_key(|f| f.rx) {
                let name = Some(latest.text);
                self.names.insert(*feed, name.clone());
                return Ok(name);
            }
        }
        let own = names.iter().find(|f| f.namer == *feed);
        let mine = self.me.and_then(|me| names.iter().find(|f| f.namer == me));
        let latest = names.iter().max_by_key(|f| f.rx);
        let name = own.or(mine).or(latest).map(|f| f.text.clone());
        self.names.insert(*feed, name.clone());
        Ok(name)
    }

    /// A person: id and name.
    pub fn person(&mut self, feed: &FeedId) -> Result<Person> {
        Ok(Person {
            id: feed.to_string(),
            name: self.name(feed)?,
        })
    }

    /// Feeds that like `id` now: each voter's latest vote counts.
    pub fn likes(&self, id: &MsgId) -> Result<usize> {
        Ok(self.r.likes(&Link::Msg(*id))? as usize)
    }

    /// Replies in the thread of `id`: messages naming it as their root
    /// (not itself), not counting those of feeds we block.
    pub fn reply_count(&self, id: &MsgId) -> Result<usize> {
        let own = self.r.rx_of(id)?;
        self.own_replies(id, own)
    }

    /// [`reply_count`](View::reply_count) of `id`, stored at `rx`.
    fn own_replies(&self, id: &MsgId, rx: Option<u64>) -> Result<usize> {
        let mut n = 0;
        for b in self.r.backlink_range(&Link::Msg(*id), LINK_ROOT)? {
            let b = b?;
            if Some(b.rx) != rx && !self.blocks(&b.author) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Whether any message but itself (blocked or not) names `id`, stored
    /// at `rx`, as its root.
    fn named_as_root(&self, id: &MsgId, rx: Option<u64>) -> Result<bool> {
        for b in self.r.backlink_range(&Link::Msg(*id), LINK_ROOT)? {
            if Some(b?.rx) != rx {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The item for a stored message (a post its author revised shows
    /// the latest revision's text).
    pub fn item(&mut self, m: &StoredMsg) -> Result<Item> {
        Ok(self.item_and_branch(m)?.0)
    }

    /// The item for a stored message and, for a post, its `branch` ids.
    fn item_and_branch(&mut self, m: &StoredMsg) -> Result<(Item, Vec<MsgId>)> {
        let (mut item, branch) = self.item_as_written(m)?;
        if item.kind.as_deref() == Some("post") && item.revises.is_none() && item.invalid.is_none()
        {
            self.revise(&mut item, &m.key)?;
        }
        Ok((item, branch))
    }

    /// The item of a stored message as it was written (no revision applied).
    fn item_as_written(&mut self, m: &StoredMsg) -> Result<(Item, Vec<MsgId>)> {
        let value = m.value()?;
        let author = value
            .get("author")
            .and_then(Value::as_str)
            .and_then(FeedId::parse)
            .ok_or(crate::store::StoreError::Corrupt(
                "stored message without an author",
            ))?;
        let sequence = value.get("sequence").and_then(Value::as_f64).unwrap_or(0.0) as u64;
        let claimed = value
            .get("timestamp")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite());
        let opened = self.r.private_content(&m.key)?;
        let private = opened.is_some();
        let content_value = match &opened {
            Some(v) => v,
            None => value.get("content").unwrap_or(&Value::Null),
        };
        let mut item = Item {
            key: m.key.to_string(),
            author: author.to_string(),
            name: self.name(&author)?,
            sequence,
            time: sort_time(claimed, m.received),
            rx: m.rx,
            kind: content::kind(content_value).map(str::to_string),
            text: None,
            root: None,
            private,
            recps: content::recps(content_value)
                .iter()
                .map(ToString::to_string)
                .collect(),
            replies: self.own_replies(&m.key, Some(m.rx))?,
            own_thread: 0,
            likes: self.likes(&m.key)?,
            unread: self.r.is_unread(m.rx)?,
            invalid: None,
            partial: self.r.is_partial(&author)?,
            edited: false,
            revisions: 0,
            revises: None,
            content: to_serde(content_value),
        };
        let mut branch = Vec::new();
        match content::parse(content_value) {
            Content::Post(p) => {
                item.text = Some(p.text.to_string_lossy());
                item.root = p.root.map(|r| r.to_string());
                item.revises = p.revision_root.map(|r| r.to_string());
                branch = p.branch;
            }
            Content::Invalid { reason, .. } => item.invalid = Some(reason.to_string()),
            _ => {}
        }
        Ok((item, branch))
    }

    /// The revisions of `root` by `author`, oldest first (by their
    /// sequence in the author's feed): each with its id, its claimed
    /// time, its `revisionBranch` and its content.
    fn revisions_by(&self, root: &MsgId, author: &FeedId) -> Result<Vec<Revision>> {
        let mut out = Vec::new();
        for rx in self.r.revisions_of(root, author)? {
            let Some(m) = self.r.at(rx)? else {
                continue;
            };
            let value = m.value()?;
            let content = match self.r.private_content(&m.key)? {
                Some(c) => c,
                None => value.get("content").cloned().unwrap_or(Value::Null),
            };
            let Content::Post(p) = content::parse(&content) else {
                continue;
            };
            if p.revision_root != Some(*root) {
                continue;
            }
            out.push(Revision {
                id: m.key,
                sequence: value.get("sequence").and_then(Value::as_f64).unwrap_or(0.0) as u64,
                claimed: value
                    .get("timestamp")
                    .and_then(Value::as_f64)
                    .filter(|t| t.is_finite())
                    .unwrap_or(0.0),
                branch: p.revision_branch,
                text: p.text.to_string_lossy(),
                msg: m,
            });
        }
        out.sort_by_key(|r| r.sequence);
        Ok(out)
    }

    /// Shows the latest revision of a post by its author, if any: the
    /// head of its revisions (one no other revision names in its
    /// `revisionBranch`); of several heads (concurrent edits), the one
    /// claiming the latest time, then the greater id, as `ssb-revisions`
    /// breaks the tie.
    fn revise(&mut self, item: &mut Item, id: &MsgId) -> Result<()> {
        let Some(author) = FeedId::parse(&item.author) else {
            return Ok(());
        };
        let revs = self.revisions_by(id, &author)?;
        if let Some(latest) = latest_revision(&revs) {
            item.text = Some(latest.text.clone());
            item.edited = true;
            item.revisions = revs.len();
        }
        Ok(())
    }

    /// The latest revision of `id` by `author` (see [`View::item`]), if any.
    pub fn latest_revision(&self, id: &MsgId, author: &FeedId) -> Result<Option<MsgId>> {
        Ok(latest_revision(&self.revisions_by(id, author)?).map(|r| r.id))
    }

    /// `id` and its revisions by its author, oldest first: the original
    /// with its own text. The id of a revision gives the history of the
    /// message it revises.
    pub fn history(&mut self, id: &MsgId) -> Result<Option<History>> {
        let Some(m) = self.r.get(id)? else {
            return Ok(None);
        };
        let (first, _) = self.item_as_written(&m)?;
        let (root, first) = match first.revises.as_deref().and_then(MsgId::parse) {
            Some(root) => match self.r.get(&root)? {
                Some(m) => (root, self.item_as_written(&m)?.0),
                None => return Ok(None),
            },
            None => (*id, first),
        };
        let Some(author) = FeedId::parse(&first.author) else {
            return Ok(None);
        };
        let ignored = self.r.others_revisions(&root, &author)?;
        let mut versions = vec![first];
        for rev in self.revisions_by(&root, &author)? {
            versions.push(self.item_as_written(&rev.msg)?.0);
        }
        Ok(Some(History {
            root: root.to_string(),
            versions,
            ignored,
        }))
    }

    /// What the person muted.
    pub fn mutes(&self) -> &crate::store::Mutes {
        self.r.mutes()
    }

    /// Whether a listed item is muted: by its author, its thread (its
    /// root, or itself as a root) or a word of its (latest) text.
    pub fn muted(&self, item: &Item) -> bool {
        let mutes = self.r.mutes();
        if mutes.is_empty() {
            return false;
        }
        let thread = item
            .root
            .as_deref()
            .and_then(MsgId::parse)
            .or_else(|| MsgId::parse(&item.key));
        FeedId::parse(&item.author).is_some_and(|a| mutes.feeds.contains(&a))
            || thread.is_some_and(|t| mutes.threads.contains(&t))
            || MsgId::parse(&item.key).is_some_and(|k| mutes.threads.contains(&k))
            || item
                .text
                .as_deref()
                .and_then(|t| mutes.word_in(t))
                .is_some()
    }

    /// Whether a reply of the thread of `root` collapses as muted: by its
    /// author, a word, or as the root of a muted thread of its own (the
    /// thread opened shows whatever muted it).
    fn muted_in_thread(&self, item: &Item, root: &MsgId) -> bool {
        let mutes = self.r.mutes();
        if mutes.is_empty() {
            return false;
        }
        FeedId::parse(&item.author).is_some_and(|a| mutes.feeds.contains(&a))
            || MsgId::parse(&item.key).is_some_and(|k| k != *root && mutes.threads.contains(&k))
            || item
                .text
                .as_deref()
                .and_then(|t| mutes.word_in(t))
                .is_some()
    }

    /// A listed item's reply count made what opening it shows: a reply
    /// that is not a forked thread opens its root's thread, where the
    /// replies nested under it are what it shows.
    pub fn listed(&mut self, mut item: Item) -> Result<Item> {
        let (Some(root), Some(id)) = (
            item.root.as_deref().and_then(MsgId::parse),
            MsgId::parse(&item.key),
        ) else {
            return Ok(item);
        };
        if root == id || self.named_as_root(&id, Some(item.rx))? {
            return Ok(item);
        }
        if !self.nested.contains_key(&root) {
            let root_rx = self.r.rx_of(&root)?;
            let replies = self.replies(&root, root_rx, MAX_THREAD_REPLIES)?;
            let ids: Vec<MsgId> = replies.msgs.iter().map(|m| m.key).collect();
            let r = self.r;
            let arranged = arrange(root, &ids, &replies.branches, &replies.keys, |k| {
                Ok(r.rx_of(k)?.is_some())
            })?;
            let mut counts = HashMap::new();
            for (j, (node, _)) in arranged.order.iter().enumerate() {
                if let Node::Reply(i) = node {
                    counts.insert(ids[*i], arranged.under[j]);
                }
            }
            self.nested.insert(root, counts);
        }
        item.replies = self
            .nested
            .get(&root)
            .and_then(|c| c.get(&id))
            .copied()
            .unwrap_or(0);
        Ok(item)
    }

    /// The replies in the thread of `root` (stored at `root_rx`): those
    /// naming it as their root, not of feeds we block (counted in
    /// `hidden`), at most `cap` (the rest counted in `more`), with their
    /// branches and sort keys.
    fn replies(&self, root: &MsgId, root_rx: Option<u64>, cap: usize) -> Result<Replies> {
        let mut out = Replies::default();
        for b in self.r.backlink_range(&Link::Msg(*root), LINK_ROOT)? {
            let b = b?;
            if Some(b.rx) == root_rx {
                // It names itself as its root.
                continue;
            }
            if self.blocks(&b.author) {
                out.hidden += 1;
                continue;
            }
            if out.msgs.len() == cap {
                out.more += 1;
                continue;
            }
            let Some(m) = self.r.at(b.rx)? else { continue };
            let value = m.value()?;
            let content = match self.r.private_content(&m.key)? {
                Some(c) => c,
                None => value.get("content").cloned().unwrap_or(Value::Null),
            };
            let branch = match content::parse(&content) {
                Content::Post(p) => p.branch,
                _ => Vec::new(),
            };
            let claimed = value
                .get("timestamp")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite());
            out.keys.push((sort_time(claimed, m.received), m.rx));
            out.branches.push(branch);
            out.msgs.push(m);
        }
        Ok(out)
    }

    fn item_at(&mut self, rx: u64) -> Result<Option<Item>> {
        match self.r.at(rx)? {
            Some(m) => self.item(&m).map(Some),
            None => Ok(None),
        }
    }

    /// The timeline: public posts and replies of the feeds we follow and
    /// our own, newest first, strictly older than `before`.
    pub fn timeline(&mut self, before: Option<Cursor>, limit: usize) -> Result<Vec<Item>> {
        let Some(me) = self.me else {
            return Ok(Vec::new());
        };
        let mut authors = vec![me];
        for (f, c) in self.r.contacts_of(&me)? {
            if c == Contact::Follow && f != me {
                authors.push(f);
            }
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        let (mut cursor, mut skipped) = (before, 0);
        // Muted posts are skipped, so read on until the page is full
        // (past at most MAX_MUTED_SKIP of them).
        while out.len() < limit {
            let want = limit - out.len();
            let page = self.r.posts_before(&authors, cursor, want)?;
            let Some(last) = page.last() else { break };
            cursor = Some((last.time, last.rx));
            let ended = page.len() < want;
            for p in page {
                if let Some(item) = self.item_at(p.rx)? {
                    if self.muted(&item) {
                        skipped += 1;
                    } else {
                        out.push(self.listed(item)?);
                    }
                }
            }
            if ended || skipped >= MAX_MUTED_SKIP {
                break;
            }
        }
        Ok(out)
    }

    /// Private posts we can read, newest first (not those of feeds we block).
    pub fn inbox(&mut self, before: Option<Cursor>, limit: usize) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let (mut cursor, mut skipped) = (before, 0);
        // Blocked authors and muted posts are skipped, so read until the
        // page is full (past at most MAX_MUTED_SKIP muted ones).
        while out.len() < limit {
            let page = self.r.inbox_before(cursor, limit - out.len())?;
            let Some((last, _)) = page.last() else { break };
            cursor = Some(*last);
            for (_, id) in page {
                if let Some(m) = self.r.get(&id)? {
                    let item = self.item(&m)?;
                    if self.blocked_author(&item) {
                        continue;
                    }
                    if self.muted(&item) {
                        skipped += 1;
                    } else {
                        out.push(self.listed(item)?);
                    }
                }
            }
            if skipped >= MAX_MUTED_SKIP {
                break;
            }
        }
        Ok(out)
    }

    /// The posts of a group that we opened, newest first, strictly older
    /// than `before`. Members are shown whatever we block: they were let in
    /// by the group's admins, not by us.
    pub fn group_posts(
        &mut self,
        group: &MsgId,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        for (_, _, id) in self.r.group_posts(group, before, limit)? {
            if let Some(m) = self.r.get(&id)? {
                out.push(self.item(&m)?);
            }
        }
        Ok(out)
    }

    /// The latest messages that mention us, newest first (not those of
    /// feeds we block, nor muted ones).
    pub fn mentions(&mut self, limit: usize) -> Result<Vec<Item>> {
        let Some(me) = self.me else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for b in self
            .r
            .recent_backlinks(&Link::Feed(me), LINK_MENTION, limit)?
        {
            if self.blocks(&b.author) {
                continue;
            }
            if let Some(item) = self.item_at(b.rx)?
                && !self.muted(&item)
            {
                out.push(self.listed(item)?);
            }
        }
        Ok(out)
    }

    fn blocked_author(&self, item: &Item) -> bool {
        FeedId::parse(&item.author).is_some_and(|a| self.blocks(&a))
    }

    /// The thread of `id`: its own when it is not a reply or when other
    /// messages name it as their root (a forked thread, which says where
    /// it forked from), else the thread of its root.
    ///
    /// Bounded whatever feeds claim: a message is never its own reply,
    /// each reply is placed once (replies whose branches go round in a
    /// circle go under the root), at most [`MAX_THREAD_REPLIES`] replies
    /// are read (the rest counted in `more`) and nesting stops at
    /// [`MAX_THREAD_DEPTH`]. Each entry's `replies` counts the replies
    /// nested under it here; `own_thread` those of its own thread.
    pub fn thread(&mut self, id: &MsgId) -> Result<Thread> {
        self.thread_within(id, MAX_THREAD_REPLIES)
    }

    /// The root of the thread [`thread`](View::thread) shows for `id`:
    /// itself when it is no reply, or a forked thread's root; else its
    /// root. `id` itself when we do not hold it.
    pub fn thread_root(&mut self, id: &MsgId) -> Result<MsgId> {
        let Some(m) = self.r.get(id)? else {
            return Ok(*id);
        };
        let (first, _) = self.item_as_written(&m)?;
        Ok(match first.root.as_deref().and_then(MsgId::parse) {
            Some(k) if k != *id && !self.named_as_root(id, Some(m.rx))? => k,
            _ => *id,
        })
    }

    /// [`thread`](View::thread), reading at most `cap` replies.
    fn thread_within(&mut self, id: &MsgId, cap: usize) -> Result<Thread> {
        let r = self.r;
        let first = match r.get(id)? {
            Some(m) => Some(self.item(&m)?),
            None => None,
        };
        let its_root = first
            .as_ref()
            .and_then(|i| i.root.as_deref())
            .and_then(MsgId::parse)
            .filter(|k| k != id);
        let root = match its_root {
            Some(k) if !self.named_as_root(id, first.as_ref().map(|i| i.rx))? => k,
            _ => *id,
        };
        let root_item = if root == *id {
            first
        } else {
            match r.get(&root)? {
                Some(m) => Some(self.item(&m)?),
                None => None,
            }
        };
        let root_key = root.to_string();
        let forked_from = root_item
            .as_ref()
            .and_then(|i| i.root.clone())
            .filter(|k| *k != root_key);
        let root_rx = root_item.as_ref().map(|i| i.rx);
        // Replies: by their root backlink, each read once.
        let Replies {
            msgs,
            branches,
            keys,
            hidden,
            more,
        } = self.replies(&root, root_rx, cap)?;
        let ids: Vec<MsgId> = msgs.iter().map(|m| m.key).collect();
        let mut items = Vec::with_capacity(msgs.len());
        for m in &msgs {
            items.push(Some(self.item(m)?));
        }
        let Arranged {
            order,
            under,
            shown,
        } = arrange(root, &ids, &branches, &keys, |k| Ok(r.rx_of(k)?.is_some()))?;
        let muted_thread = self.r.mutes().threads.contains(&root);
        let mut muted = 0;
        // While inside a muted reply's collapsed replies: its depth.
        let mut collapsed: Option<usize> = None;
        let mut entries = Vec::with_capacity(order.len() + 1);
        entries.push(match root_item {
            Some(mut item) => {
                item.replies = shown;
                Entry::Message {
                    depth: 0,
                    item: Box::new(item),
                }
            }
            None => Entry::Missing {
                depth: 0,
                key: root_key.clone(),
            },
        });
        for (j, (node, depth)) in order.into_iter().enumerate() {
            match collapsed {
                Some(d) if depth > d => continue,
                _ => collapsed = None,
            }
            if let Node::Reply(i) = node
                && items[i]
                    .as_ref()
                    .is_some_and(|item| self.muted_in_thread(item, &root))
            {
                collapsed = Some(depth);
                muted += 1 + under[j];
                entries.push(Entry::Muted {
                    depth: depth.min(MAX_THREAD_DEPTH),
                    count: 1 + under[j],
                });
                continue;
            }
            let depth = depth.min(MAX_THREAD_DEPTH);
            entries.push(match node {
                Node::Reply(i) => {
                    let Some(mut item) = items[i].take() else {
                        continue;
                    };
                    item.own_thread = item.replies;
                    item.replies = under[j];
                    Entry::Message {
                        depth,
                        item: Box::new(item),
                    }
                }
                Node::Missing(k) => Entry::Missing {
                    depth,
                    key: k.to_string(),
                },
            });
        }
        Ok(Thread {
            root: root_key,
            entries,
            hidden,
            forked_from,
            more,
            muted,
            muted_thread,
        })
    }

    /// Whom `feed` follows and blocks, and who follows and blocks it.
    pub fn contacts(&mut self, feed: &FeedId) -> Result<Contacts> {
        let mut c = Contacts::default();
        for (f, kind) in self.r.contacts_of(feed)? {
            let p = self.person(&f)?;
            match kind {
                Contact::Follow => c.follows.push(p),
                Contact::Block => c.blocks.push(p),
            }
        }
        // Who follows or blocks the person: any of its devices, each
        // follower once, the devices themselves left out.
        let devices = self.r.devices(feed)?.person;
        let mut seen = HashSet::new();
        for d in &devices {
            for (f, kind) in self.r.followers_of(d)? {
                if devices.contains(&f) || !seen.insert((f, kind == Contact::Follow)) {
                    continue;
                }
                let p = self.person(&f)?;
                match kind {
                    Contact::Follow => c.followers.push(p),
                    Contact::Block => c.blocked_by.push(p),
                }
            }
        }
        Ok(c)
    }

    /// A feed's profile.
    pub fn profile(&mut self, feed: &FeedId) -> Result<Profile> {
        let fields = self.r.about_fields(&Link::Feed(*feed))?;
        let devices = self.r.devices(feed)?;
        let own = |field: u8| {
            fields
                .iter()
                .find(|f| f.field == field && f.namer == *feed)
                .map(|f| f.text.clone())
        };
        Ok(Profile {
            id: feed.to_string(),
            name: self.name(feed)?,
            names: fields
                .iter()
                .filter(|f| f.field == ABOUT_NAME)
                .map(|f| (f.namer.to_string(), f.text.clone()))
                .collect(),
            description: own(ABOUT_DESCRIPTION),
            image: own(ABOUT_IMAGE),
            contacts: self.contacts(feed)?,
            devices: devices
                .person
                .iter()
                .filter(|d| *d != feed)
                .map(|d| self.person(d))
                .collect::<Result<_>>()?,
            claimed_devices: devices
                .one_sided
                .iter()
                .filter(|(by, _)| by == feed)
                .map(|(_, d)| self.person(d))
                .collect::<Result<_>>()?,
        })
    }
}

/// Places the replies `ids` of `root` (with their `branches` and sort
/// `keys`) in thread order. `held` says
/// whether we hold a message (a branch we do not hold becomes a
/// placeholder). Pure and bounded whatever the links say: each reply is
/// placed exactly once, a reply is never its own parent, and replies
/// whose branches only lead round in a circle go under the root.
fn arrange(
    root: MsgId,
    ids: &[MsgId],
    branches: &[Vec<MsgId>],
    keys: &[(u64, u64)],
    mut held: impl FnMut(&MsgId) -> Result<bool>,
) -> Result<Arranged> {
    // Parent of each reply: the first branch we hold in this thread;
    // a branch we do not hold at all becomes a placeholder.
    let in_thread: HashSet<MsgId> = ids.iter().copied().chain([root]).collect();
    let mut children: HashMap<MsgId, Vec<usize>> = HashMap::new();
    let mut missing: Vec<MsgId> = Vec::new();
    for (i, branch) in branches.iter().enumerate() {
        let mut parent = branch
            .iter()
            .find(|k| in_thread.contains(*k) && **k != ids[i])
            .copied();
        if parent.is_none() {
            for k in branch {
                if !held(k)? {
                    if !missing.contains(k) {
                        missing.push(*k);
                    }
                    parent = Some(*k);
                    break;
                }
            }
        }
        children.entry(parent.unwrap_or(root)).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|i| keys[*i]);
    }
    // Depth-first from the root: placeholders first, then replies;
    // siblings oldest first. Each reply is placed once; replies only
    // reachable through a circle of branches go under the root.
    let mut order: Vec<(Node, usize)> = Vec::with_capacity(ids.len() + missing.len());
    let mut placed = vec![false; ids.len()];
    let mut todo: Vec<(Node, usize)> = missing.iter().map(|k| (Node::Missing(*k), 1)).collect();
    if let Some(list) = children.get(&root) {
        todo.extend(list.iter().map(|&i| (Node::Reply(i), 1)));
    }
    todo.reverse();
    let mut unplaced = 0;
    loop {
        while let Some((node, depth)) = todo.pop() {
            let key = match node {
                Node::Reply(i) if std::mem::replace(&mut placed[i], true) => continue,
                Node::Reply(i) => ids[i],
                Node::Missing(k) => k,
            };
            order.push((node, depth));
            if let Some(list) = children.get(&key) {
                todo.extend(list.iter().rev().map(|&i| (Node::Reply(i), depth + 1)));
            }
        }
        while unplaced < placed.len() && placed[unplaced] {
            unplaced += 1;
        }
        if unplaced == placed.len() {
            break;
        }
        todo.push((Node::Reply(unplaced), 1));
    }
    // Replies nested under each entry: those after it, deeper, up to
    // the next entry at its depth or above.
    let mut held_before = Vec::with_capacity(order.len() + 1);
    held_before.push(0);
    for (node, _) in &order {
        let n = held_before.last().copied().unwrap_or(0);
        held_before.push(n + usize::from(matches!(node, Node::Reply(_))));
    }
    let mut under = vec![0; order.len()];
    let mut open: Vec<usize> = Vec::new();
    for j in 0..=order.len() {
        let depth = order.get(j).map_or(0, |(_, d)| *d);
        while let Some(&i) = open.last() {
            if order[i].1 < depth {
                break;
            }
            open.pop();
            under[i] = held_before[j] - held_before[i + 1];
        }
        open.push(j);
    }
    Ok(Arranged {
        shown: held_before[order.len()],
        order,
        under,
    })
}

/// The replies of a thread as read: each message, its branches and its
/// sort key (time, receive sequence); blocked and past-the-cap counts.
#[derive(Default)]
struct Replies {
    msgs: Vec<StoredMsg>,
    branches: Vec<Vec<MsgId>>,
    keys: Vec<(u64, u64)>,
    hidden: usize,
    more: usize,
}

/// One revision of a message by its author.
struct Revision {
    id: MsgId,
    sequence: u64,
    claimed: f64,
    branch: Vec<MsgId>,
    text: String,
    msg: StoredMsg,
}

/// The revision shown: of the heads (revisions no other one names in its
/// `revisionBranch`), the one claiming the latest time, then the greater
/// id (as `ssb-revisions` breaks the tie). Ids are hashes, so a branch
/// never names a later revision and there is always a head.
fn latest_revision(revs: &[Revision]) -> Option<&Revision> {
    let named: HashSet<MsgId> = revs.iter().flat_map(|r| r.branch.iter().copied()).collect();
    revs.iter()
        .filter(|r| !named.contains(&r.id))
        .max_by(|a, b| {
            a.claimed
                .total_cmp(&b.claimed)
                .then_with(|| a.id.to_string().cmp(&b.id.to_string()))
        })
        .or(revs.last())
}

/// A thread's replies placed by [`arrange`].
struct Arranged {
    /// Each place and its depth, depth-first.
    order: Vec<(Node, usize)>,
    /// Replies nested under each place.
    under: Vec<usize>,
    /// Replies placed.
    shown: usize,
}

/// A place in a thread being assembled.
#[derive(Clone, Copy)]
enum Node {
    Reply(usize),
    Missing(MsgId),
}

/// Our JSON value as serde_json's: integers stay integers, other numbers
/// are doubles; strings with lone surrogates get U+FFFD.
pub fn to_serde(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
                J::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(J::Null, J::Number)
            }
        }
        Value::String(s) => J::String(s.to_string_lossy()),
        Value::Array(items) => J::Array(items.iter().map(to_serde).collect()),
        Value::Object(o) => J::Object(
            o.iter()
                .map(|(k, v)| (k.to_string_lossy(), to_serde(v)))
                .collect(),
        ),
    }
}

/// Most blob links taken from one message.
pub const MAX_BLOB_LINKS: usize = 32;

/// The blobs a message's content links to: the `link` of each `mentions`
/// entry that is a blob id, then each `&….sha256` in its `text`, in order,
/// without repeats, at most [`MAX_BLOB_LINKS`].
pub fn blob_links(content: &Value) -> Vec<crate::crypto::BlobId> {
    use crate::crypto::BlobId;
    let mut out: Vec<BlobId> = Vec::new();
    let mut take = |id: BlobId| {
        if out.len() < MAX_BLOB_LINKS && !out.contains(&id) {
            out.push(id);
        }
    };
    if let Some(Value::Array(mentions)) = content.get("mentions") {
        for m in mentions.iter().take(MAX_BLOB_LINKS * 4) {
            let link = m.get("link").and_then(Value::as_str).or_else(|| m.as_str());
            if let Some(id) = link.and_then(BlobId::parse) {
                take(id);
            }
        }
    }
    if let Some(text) = content.get("text").and_then(Value::as_str) {
        // A blob id is `&`, 44 base64 characters, `.sha256`: 52 bytes.
        for (at, _) in text.match_indices('&').take(MAX_BLOB_LINKS * 16) {
            if let Some(id) = text.get(at..at + 52).and_then(BlobId::parse) {
                take(id);
            }
        }
    }
    out
}
