//! Private groups in the store: every group message is processed in the
//! write transaction that stores it, and our own group messages are made
//! inside the transaction that appends them, so each is bound to the
//! position it really gets.
//!
//! Owns the group tables (`GROUP_*` in [`schema`](super::schema)) and the
//! [`Book`]: every group's state computed from its control messages, our
//! key store, and the candidate post keys of the groups we can read, found
//! by author so a post not meant for us costs a map lookup and at most a
//! few hashes. All rules and cryptography come from
//! [`private::groups`](crate::private::groups); this module only feeds it
//! verified messages and writes what it decides. Never imports networking.

use std::collections::{BTreeSet, HashMap, HashSet};

use redb::{ReadableDatabase as _, ReadableTable as _};

use crate::crypto::{FeedId, Keypair, MsgId};
use crate::feed::json::{self, Value};
use crate::private::groups::{
    self, Control, ControlMsg, GroupContent, GroupError, GroupState, KeyStore, Position, Post,
    PostKey,
};

use super::schema::*;
use super::{Result, StoreError, StoredMsg, Writer, index};

/// A group message waiting to be processed at the end of a write.
pub(super) struct GroupItem {
    pub rx: u64,
    pub id: MsgId,
    pub position: Position,
    pub claimed: Option<f64>,
    pub received: f64,
    pub content: String,
}

/// What a group message does that the store refused to act on, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupWriteError {
    /// No control message of this group is stored.
    #[error("unknown group {0}")]
    UnknownGroup(MsgId),
    /// We are not (or no longer) a member of the group.
    #[error("you are not a member of group {0}")]
    NotMember(MsgId),
    /// The group rules refuse the operation.
    #[error("{0}")]
    Rule(#[from] GroupError),
}

/// Every group we know of, our keys, and what we can read.
pub(super) struct Book {
    me: FeedId,
    keys: KeyStore,
    states: HashMap<MsgId, GroupState>,
    /// Epoch id -> its group.
    epoch_group: HashMap<MsgId, MsgId>,
    /// Epochs whose key is in [`GROUP_KEYS`] already.
    stored_keys: HashSet<MsgId>,
    /// Groups we hold a key of -> every post key a post can be under.
    readable: HashMap<MsgId, Vec<PostKey>>,
    /// Feed -> the readable groups it has been a member of.
    by_author: HashMap<FeedId, Vec<MsgId>>,
}

/// A summary of one group, as `group list` and `group members` show it.
/// Clients read it back from JSON (every field may be missing).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GroupInfo {
    /// The group id (the id of its creating epoch).
    pub id: String,
    /// Its name, from the latest `about` posted inside it.
    pub name: Option<String>,
    /// Current members.
    pub members: Vec<String>,
    /// Current admins.
    pub admins: Vec<String>,
    /// Whether we are a member now.
    pub member: bool,
    /// Whether we hold every head key, so we may post.
    pub can_post: bool,
    /// The epochs whose key we miss among the current heads.
    pub missing: Vec<String>,
    /// The current heads.
    pub heads: Vec<String>,
    /// Every accepted epoch, oldest first: its id, whom it removed, and
    /// whether we hold its key.
    pub epochs: Vec<EpochInfo>,
    /// Control messages refused, with why.
    pub rejected: Vec<String>,
    /// Control messages waiting for one they depend on.
    pub waiting: usize,
}

/// One accepted epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EpochInfo {
    /// The epoch id.
    pub id: String,
    /// Feeds it removed.
    pub removed: Vec<String>,
    /// How many it was sealed to.
    pub recipients: usize,
    /// Whether we hold its key.
    pub held: bool,
}

fn ctrl_key(group: &MsgId, rx: u64) -> [u8; 40] {
    feed_key(&group.0, rx)
}

/// A stored message (`v` its parsed value) as a group item, when its
/// content is in the group format.
pub(super) fn item_of(m: &StoredMsg, v: &Value) -> Result<Option<GroupItem>> {
    let Some(content) = v.get("content").and_then(Value::as_str) else {
        return Ok(None);
    };
    if !groups::is_group_content(content) {
        return Ok(None);
    }
    let author = v
        .get("author")
        .and_then(Value::as_str)
        .and_then(FeedId::parse)
        .ok_or(StoreError::Corrupt("stored message without an author"))?;
    let sequence = v
        .get("sequence")
        .and_then(Value::as_f64)
        .ok_or(StoreError::Corrupt("stored message without a sequence"))? as u64;
    let previous = v
        .get("previous")
        .and_then(Value::as_str)
        .and_then(MsgId::parse);
    Ok(Some(GroupItem {
        rx: m.rx,
        id: m.key,
        position: Position {
            author,
            sequence,
            previous,
        },
        claimed: v
            .get("timestamp")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite()),
        received: m.received,
        content: content.to_string(),
    }))
}

impl Book {
    /// An empty book for the identity `keys`.
    pub(super) fn new(keys: &Keypair) -> Book {
        Book {
            me: keys.id(),
            keys: KeyStore::new(keys),
            states: HashMap::new(),
            epoch_group: HashMap::new(),
            stored_keys: HashSet::new(),
            readable: HashMap::new(),
            by_author: HashMap::new(),
        }
    }

    /// Rebuilds the book from the stored control messages: states, and
    /// every key our slots and `back` wraps give (recovery from the secret
    /// key and the feeds alone).
    pub(super) fn load(db: &redb::Database, keys: &Keypair) -> Result<Book> {
        let mut book = Book::new(keys);
        let txn = db.begin_read()?;
        let ctrl = txn.open_table(GROUP_CTRL)?;
        let log = txn.open_table(LOG)?;
        let mut msgs = Vec::new();
        for e in ctrl.iter()? {
            let (k, _) = e?;
            let k = k.value();
            let group = MsgId(k[..32].try_into().expect("32 bytes"));
            let rx = u64::from_be_bytes(k[32..].try_into().expect("8 bytes"));
            let rec = log.get(rx)?.ok_or(StoreError::Corrupt(
                "group index points at a missing message",
            ))?;
            let m = StoredMsg::decode(rx, rec.value())?;
            let Some(item) = item_of(&m, &m.value()?)? else {
                continue;
            };
            let Ok(Some(body)) = GroupContent::parse(&item.content).map(GroupContent::into_control)
            else {
                continue;
            };
            msgs.push((
                group,
                ControlMsg {
                    id: item.id,
                    position: item.position,
                    body,
                },
            ));
        }
        for (group, msg) in &msgs {
            if let Control::Epoch(_) = msg.body {
                book.epoch_group.insert(msg.id, *group);
            }
            book.states
                .entry(*group)
                .or_insert_with(|| GroupState::new(*group))
                .apply(msg.clone());
        }
        book.keys.absorb(msgs.iter().map(|(_, m)| m));
        for e in txn.open_table(GROUP_KEYS)?.iter()? {
            book.stored_keys.insert(MsgId(*e?.0.value()));
        }
        let groups: Vec<MsgId> = book.states.keys().copied().collect();
        for g in groups {
            book.refresh_keys(g);
        }
        Ok(book)
    }

    /// Processes the group messages of one write, in order, with the
    /// tables of that write.
    pub(super) fn process(&mut self, w: &mut Writer<'_>, items: Vec<GroupItem>) -> Result<()> {
        for it in items {
            let parsed = match GroupContent::parse(&it.content) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(msg = %it.id, "group message ignored: {e}");
                    continue;
                }
            };
            match parsed {
                GroupContent::Post(p) => {
                    if !self.try_open(w, &it, &p)? {
                        w.group_pending.insert(
                            &feed_key(&it.position.author.0, it.position.sequence),
                            it.rx,
                        )?;
                    }
                }
                other => {
                    let body = other.into_control().expect("not a post");
                    let group = body.group(&it.id);
                    let kind = match body {
                        Control::Epoch(_) => 1,
                        Control::Add(_) => 2,
                        Control::Forward(_) => 4,
                    };
                    w.group_ctrl.insert(&ctrl_key(&group, it.rx), kind)?;
                    self.apply(
                        w,
                        group,
                        ControlMsg {
                            id: it.id,
                            position: it.position,
                            body,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    /// One control message: the group's state, our keys, then whatever
    /// waiting posts the change lets us open.
    fn apply(&mut self, w: &mut Writer<'_>, group: MsgId, msg: ControlMsg) -> Result<()> {
        if let Control::Epoch(_) = msg.body {
            self.epoch_group.insert(msg.id, group);
        }
        let state = self
            .states
            .entry(group)
            .or_insert_with(|| GroupState::new(group));
        let rejected = state.rejected().len();
        let accepted = state.accepted_len();
        state.apply(msg.clone());
        let changed = state.accepted_len() != accepted;
        let refused = state.rejected().len() - rejected;
        if refused > 0 {
            match state.rejected().get(&msg.id) {
                Some(why) => {
                    tracing::info!(group = %group, msg = %msg.id, "group operation refused: {why}")
                }
                None => {
                    tracing::info!(group = %group, msg = %msg.id, "{refused} waiting group operations refused: they depend on refused ones")
                }
            }
        } else if !changed && !matches!(msg.body, Control::Forward(_)) {
            tracing::debug!(group = %group, msg = %msg.id, "group operation waits for a message it depends on");
        }
        for (id, why) in self.keys.absorb([&msg]) {
            tracing::warn!(group = %group, msg = %id, "group key refused: {why}");
        }
        // Only a group whose membership or keys changed is looked at again
        // (a flood of refused or waiting control messages costs nothing more).
        let mut touched = BTreeSet::new();
        if changed {
            touched.insert(group);
        }
        for epoch in self.keys.epochs() {
            if self.stored_keys.contains(&epoch) {
                continue;
            }
            let (Some(g), Some(key)) = (self.epoch_group.get(&epoch), self.keys.get(&epoch)) else {
                continue;
            };
            let mut v = [0u8; 64];
            v[..32].copy_from_slice(&g.0);
            v[32..].copy_from_slice(key.bytes());
            w.group_keys.insert(&epoch.0, &v)?;
            self.stored_keys.insert(epoch);
            touched.insert(*g);
        }
        for g in touched {
            if self.refresh_keys(g) {
                self.retry_pending(w, g)?;
            }
        }
        Ok(())
    }

    /// Recomputes the post keys and authors of a group; whether we can read
    /// it at all.
    fn refresh_keys(&mut self, group: MsgId) -> bool {
        for list in self.by_author.values_mut() {
            list.retain(|g| *g != group);
        }
        let Some(state) = self.states.get(&group) else {
            return false;
        };
        let keys = self.keys.post_keys(state);
        if keys.is_empty() {
            self.readable.remove(&group);
            return false;
        }
        for author in state.ever_members() {
            self.by_author.entry(author).or_default().push(group);
        }
        self.readable.insert(group, keys);
        true
    }

    /// Retries the waiting posts of every feed that has been a member of
    /// `group`.
    fn retry_pending(&mut self, w: &mut Writer<'_>, group: MsgId) -> Result<()> {
        let authors = self.states[&group].ever_members();
        for author in authors {
            let waiting: Vec<([u8; 40], u64)> = w
                .group_pending
                .range::<&[u8; 40]>(&feed_key(&author.0, 0)..=&feed_key(&author.0, u64::MAX))?
                .map(|e| e.map(|(k, v)| (*k.value(), v.value())))
                .collect::<Result<_, _>>()?;
            for (key, rx) in waiting {
                let rec = w
                    .log
                    .get(rx)?
                    .ok_or(StoreError::Corrupt("waiting group post is not stored"))?;
                let m = StoredMsg::decode(rx, rec.value())?;
                drop(rec);
                let Some(item) = item_of(&m, &m.value()?)? else {
                    continue;
                };
                let Ok(GroupContent::Post(p)) = GroupContent::parse(&item.content) else {
                    continue;
                };
                if self.try_open(w, &item, &p)? {
                    w.group_pending.remove(&key)?;
                }
            }
        }
        Ok(())
    }

    /// Finds the post's key by its tag among the groups its author has been
    /// in, and opens it: hashes only, then one AEAD open. `false` when no
    /// key we hold matches (it waits); a matching key that does not open is
    /// a tampered or moved post, logged and never retried.
    fn try_open(&mut self, w: &mut Writer<'_>, it: &GroupItem, post: &Post) -> Result<bool> {
        let pos = &it.position;
        let Some(groups) = self.by_author.get(&pos.author) else {
            return Ok(false);
        };
        for g in groups {
            for k in &self.readable[g] {
                if k.tag(&pos.author, pos.sequence) != post.tag {
                    continue;
                }
                match k.open(post, pos) {
                    Ok(plain) => store_post(w, g, it, plain)?,
                    Err(e) => tracing::warn!(msg = %it.id, "group post refused: {e}"),
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn state(&self, group: &MsgId) -> std::result::Result<&GroupState, GroupWriteError> {
        self.states
            .get(group)
            .filter(|s| s.accepted_len() > 0)
            .ok_or(GroupWriteError::UnknownGroup(*group))
    }

    fn member_state(&self, group: &MsgId) -> std::result::Result<&GroupState, GroupWriteError> {
        let s = self.state(group)?;
        if !s.is_member(&self.me) {
            return Err(GroupWriteError::NotMember(*group));
        }
        Ok(s)
    }

    /// The content of a group operation by us at `pos`.
    pub(super) fn make(
        &self,
        op: &GroupOp,
        pos: &Position,
    ) -> std::result::Result<String, GroupWriteError> {
        Ok(match op {
            GroupOp::Create => groups::create(pos, &[], &[])?.content,
            GroupOp::Add {
                group,
                members,
                admins,
            } => {
                let s = self.member_state(group)?;
                let current = s.members();
                if let Some(m) = members.iter().find(|m| current.contains(*m)) {
                    return Err(GroupError::AlreadyMember(*m).into());
                }
                s.add(&self.keys, pos, members, admins)?
            }
            GroupOp::Remove { group, members } => {
                self.member_state(group)?
                    .rekey(&self.keys, pos, members)?
                    .content
            }
            GroupOp::Post { group, content } => {
                self.member_state(group)?
                    .seal_post(&self.keys, pos, &json::to_compact(content))?
            }
        })
    }

    /// A forward we should publish before acting in `group`: the head keys
    /// we hold that a member was never sealed (added concurrently with an
    /// epoch), when we are an admin. `None` when nobody misses anything we
    /// can give.
    pub(super) fn forward_needed(&self, group: &MsgId) -> Option<String> {
        let s = self.state(group).ok()?;
        if !s.admins().contains(&self.me) {
            return None;
        }
        for m in s.members() {
            let missing: Vec<MsgId> = s
                .missing_for(&m)
                .into_iter()
                .filter(|e| self.keys.has(e))
                .collect();
            if !missing.is_empty() {
                return s.forward(&self.keys, &m, &missing).ok();
            }
        }
        None
    }

    /// The groups we have been given a key of, or are a member of.
    pub(super) fn list(&self) -> Vec<MsgId> {
        let mut out: Vec<MsgId> = self
            .states
            .iter()
            .filter(|(g, s)| self.readable.contains_key(*g) || s.is_member(&self.me))
            .map(|(g, _)| *g)
            .collect();
        out.sort();
        out
    }

    /// Everything `group members` shows of one group.
    pub(super) fn info(
        &self,
        group: &MsgId,
        name: Option<String>,
    ) -> std::result::Result<GroupInfo, GroupWriteError> {
        let s = self.state(group)?;
        let ids = |set: BTreeSet<FeedId>| set.iter().map(ToString::to_string).collect();
        let heads = s.heads();
        let missing: Vec<String> = heads
            .iter()
            .filter(|h| !self.keys.has(h))
            .map(ToString::to_string)
            .collect();
        let member = s.is_member(&self.me);
        Ok(GroupInfo {
            id: group.to_string(),
            name,
            members: ids(s.members()),
            admins: ids(s.admins()),
            member,
            can_post: member && missing.is_empty(),
            missing,
            heads: heads.iter().map(ToString::to_string).collect(),
            epochs: s
                .epochs()
                .into_iter()
                .map(|(id, removed, recipients)| EpochInfo {
                    id: id.to_string(),
                    removed: ids(removed),
                    recipients: recipients.len(),
                    held: self.keys.has(&id),
                })
                .collect(),
            rejected: s
                .rejected()
                .iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect(),
            waiting: s.pending_len(),
        })
    }
}

/// Writes an opened group post: its plaintext (a JSON object) beside the
/// private-box ones, listed under its group by time; an `about` of the group
/// names it.
fn store_post(w: &mut Writer<'_>, group: &MsgId, it: &GroupItem, plain: Vec<u8>) -> Result<()> {
    let Some((bytes, value)) = index::opened_content(plain) else {
        tracing::warn!(msg = %it.id, "group post is not a JSON object");
        return Ok(());
    };
    w.private.insert(&it.id.0, bytes.as_slice())?;
    let time = index::sort_time(it.claimed, it.received);
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(&group.0);
    k[32..].copy_from_slice(&time_key(time, it.rx));
    w.group_posts.insert(&k, &it.id.0)?;
    if value.get("type").and_then(Value::as_str) == Some("about")
        && value.get("about").and_then(Value::as_str) == Some(group.to_string().as_str())
        && let Some(name) = value.get("name").and_then(Value::as_str)
    {
        let newer = w
            .group_names
            .get(&group.0)?
            .is_none_or(|v| v.value()[..8] < it.rx.to_be_bytes()[..]);
        if newer {
            let mut rec = it.rx.to_be_bytes().to_vec();
            rec.extend_from_slice(name.as_bytes());
            w.group_names.insert(&group.0, rec.as_slice())?;
        }
    }
    Ok(())
}

/// A group operation of ours.
#[derive(Clone, Debug)]
pub enum GroupOp {
    /// A new group with us as its only member and admin.
    Create,
    /// New members, of whom `admins` become admins.
    Add {
        /// The group.
        group: MsgId,
        /// Feeds to add.
        members: Vec<FeedId>,
        /// Those of `members` who become admins.
        admins: Vec<FeedId>,
    },
    /// A rekey that removes `members`.
    Remove {
        /// The group.
        group: MsgId,
        /// Feeds to remove.
        members: Vec<FeedId>,
    },
    /// A post (any content object) to the group.
    Post {
        /// The group.
        group: MsgId,
        /// The inner content.
        content: Value,
    },
}

impl GroupOp {
    /// The group acted on (`None` for a creation).
    pub fn group(&self) -> Option<MsgId> {
        match self {
            GroupOp::Create => None,
            GroupOp::Add { group, .. }
            | GroupOp::Remove { group, .. }
            | GroupOp::Post { group, .. } => Some(*group),
        }
    }
}
