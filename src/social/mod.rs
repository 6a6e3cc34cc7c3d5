//! Read models over the store: the timeline, threads assembled from
//! backlinks, profiles and names, contacts and followers, the inbox of
//! private messages, unread marks; and [`compose`], the content of the
//! social actions (reply, like, name, follow, block, direct message).
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
}

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

    /// The item for a stored message.
    pub fn item(&mut self, m: &StoredMsg) -> Result<Item> {
        Ok(self.item_and_branch(m)?.0)
    }

    /// The item for a stored message and, for a post, its `branch` ids.
    fn item_and_branch(&mut self, m: &StoredMsg) -> Result<(Item, Vec<MsgId>)> {
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
            content: to_serde(content_value),
        };
        let mut branch = Vec::new();
        match content::parse(content_value) {
            Content::Post(p) => {
                item.text = Some(p.text);
                item.root = p.root.map(|r| r.to_string());
                branch = p.branch;
            }
            Content::Invalid { reason, .. } => item.invalid = Some(reason.to_string()),
            _ => {}
        }
        Ok((item, branch))
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
        let page = self.r.posts_before(&authors, before, limit)?;
        let mut out = Vec::with_capacity(page.len());
        for p in page {
            if let Some(item) = self.item_at(p.rx)? {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Private posts we can read, newest first (not those of feeds we block).
    pub fn inbox(&mut self, before: Option<Cursor>, limit: usize) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut cursor = before;
        // Blocked authors are skipped, so read until the page is full.
        while out.len() < limit {
            let page = self.r.inbox_before(cursor, limit - out.len())?;
            let Some((last, _)) = page.last() else { break };
            cursor = Some(*last);
            for (_, id) in page {
                if let Some(m) = self.r.get(&id)? {
                    let item = self.item(&m)?;
                    if !self.blocked_author(&item) {
                        out.push(item);
                    }
                }
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
    /// feeds we block).
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
            if let Some(item) = self.item_at(b.rx)? {
                out.push(item);
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
        let (mut hidden, mut more) = (0, 0);
        // Replies: by their root backlink, each read once.
        let (mut ids, mut items, mut branches) = (Vec::new(), Vec::new(), Vec::new());
        for b in r.backlink_range(&Link::Msg(root), LINK_ROOT)? {
            let b = b?;
            if Some(b.rx) == root_rx {
                // It names itself as its root.
                continue;
            }
            if self.blocks(&b.author) {
                hidden += 1;
                continue;
            }
            if items.len() == cap {
                more += 1;
                continue;
            }
            let Some(m) = r.at(b.rx)? else { continue };
            let (item, branch) = self.item_and_branch(&m)?;
            ids.push(m.key);
            items.push(Some(item));
            branches.push(branch);
        }
        let keys: Vec<(u64, u64)> = items
            .iter()
            .map(|i| i.as_ref().map_or((0, 0), |i: &Item| (i.time, i.rx)))
            .collect();
        let Arranged {
            order,
            under,
            shown,
        } = arrange(root, &ids, &branches, &keys, |k| Ok(r.rx_of(k)?.is_some()))?;
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
