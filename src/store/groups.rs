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
    self, Control, ControlMsg, Cut, EntryKey, EpochKey, GroupContent, GroupError, GroupState,
    KeyStore, Position, PostKey, envelope,
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
    /// Groups we hold a key of -> every post key a post can be under, with
    /// the members' entry key of control messages under it.
    readable: HashMap<MsgId, Vec<(PostKey, EntryKey)>>,
    /// Feed -> the readable groups it has been a member of.
    by_author: HashMap<FeedId, Vec<MsgId>>,
    /// Group -> the feeds whose posts in it we opened.
    posted: HashMap<MsgId, BTreeSet<FeedId>>,
    /// Control messages opened.
    opened: HashSet<MsgId>,
    /// Epochs and operations whose key we were given but whose message we
    /// have not opened: their id -> the entries that may open them (every
    /// claim is kept: anyone can claim a key for any id).
    awaited: HashMap<MsgId, Vec<EntryKey>>,
    /// Ids added to `awaited` since the store was last looked up for them.
    awaited_new: Vec<MsgId>,
    /// Feed -> our pairwise entry key with it (one key agreement each).
    pairwise: HashMap<FeedId, EntryKey>,
    /// Keys that arrived and are not yet stored (their epoch not opened).
    unstored: BTreeSet<MsgId>,
    /// Groups changed by what was opened, to settle.
    touched: BTreeSet<MsgId>,
    /// Group -> (how many feeds have been members, whether we read it) when
    /// `by_author` was last built for it.
    indexed: HashMap<MsgId, (usize, bool)>,
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
    /// Whether we hold every head key, so we may post (and no non-member
    /// holds them, or we are an admin, who refreshes the group first).
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
            posted: HashMap::new(),
            opened: HashSet::new(),
            awaited: HashMap::new(),
            awaited_new: Vec::new(),
            pairwise: HashMap::new(),
            unstored: BTreeSet::new(),
            touched: BTreeSet::new(),
            indexed: HashMap::new(),
        }
    }

    /// Rebuilds the book from the opened control messages and the stored
    /// keys: states, and every key our slots, adds, forwards and `back`
    /// wraps give. Nothing is decrypted again but our slots in epochs whose
    /// key is not stored.
    pub(super) fn load(db: &redb::Database, keys: &Keypair) -> Result<Book> {
        let mut book = Book::new(keys);
        let txn = db.begin_read()?;
        for e in txn.open_table(GROUP_KEYS)?.iter()? {
            let (k, v) = e?;
            let id = MsgId(*k.value());
            let key: [u8; 32] = v.value()[32..].try_into().expect("32 bytes");
            book.keys.insert_own(id, EpochKey::from_bytes(key));
            book.stored_keys.insert(id);
        }
        for e in txn.open_table(GROUP_AUTHORED)?.iter()? {
            let k = *e?.0.value();
            let group = MsgId(k[..32].try_into().expect("32 bytes"));
            let author = FeedId(k[32..64].try_into().expect("32 bytes"));
            book.posted.entry(group).or_default().insert(author);
        }
        let ctrl = txn.open_table(GROUP_CTRL)?;
        let opened = txn.open_table(GROUP_OPENED)?;
        let log = txn.open_table(LOG)?;
        let mut by_group: HashMap<MsgId, Vec<ControlMsg>> = HashMap::new();
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
            let Some(inner) = opened.get(&item.id.0)? else {
                return Err(StoreError::Corrupt(
                    "opened group message without its bytes",
                ));
            };
            let Ok(inner) = GroupContent::from_bytes(inner.value()) else {
                continue;
            };
            book.opened.insert(item.id);
            by_group.entry(group).or_default().push(ControlMsg {
                id: item.id,
                position: item.position,
                body: inner.into_control(),
            });
        }
        for (group, msgs) in by_group {
            for m in &msgs {
                if let Control::Epoch(_) = m.body {
                    book.epoch_group.insert(m.id, group);
                }
            }
            let mut state = GroupState::new(group);
            state.apply_all(msgs.iter().cloned());
            let counted: Vec<&ControlMsg> = msgs.iter().filter(|m| counts(&state, m)).collect();
            book.keys.absorb(counted);
            book.states.insert(group, state);
        }
        // Every key held (stored ones included) is fresh here.
        for id in book.keys.take_fresh() {
            if let Some(k) = book.keys.get(&id).map(EntryKey::own) {
                book.await_id(id, k);
            }
        }
        book.await_claims();
        let groups: Vec<MsgId> = book.states.keys().copied().collect();
        for g in groups {
            book.refresh_keys(g);
        }
        Ok(book)
    }

    /// Processes the group messages of one write, in order, with the
    /// tables of that write: each is opened as a control message (by an
    /// entry for us) or a post (by its tag) when a key we hold fits, and
    /// waits otherwise; control messages are judged a group at a time.
    pub(super) fn process(&mut self, w: &mut Writer<'_>, items: Vec<GroupItem>) -> Result<()> {
        for it in items {
            let Ok(bytes) = envelope::decode(&it.content) else {
                tracing::debug!(msg = %it.id, "group message ignored: not base64");
                continue;
            };
            if !self.open_item(w, &it, &bytes)? {
                w.group_pending.insert(
                    &feed_key(&it.position.author.0, it.position.sequence),
                    it.rx,
                )?;
            }
        }
        self.settle(w)
    }

    /// Opens a message when a key we hold fits it (see [`Book::find`]): a
    /// control message is applied at once, so the next message (sealed
    /// under the key this one gives) opens too; a post is stored.
    fn open_item(&mut self, w: &mut Writer<'_>, it: &GroupItem, bytes: &[u8]) -> Result<bool> {
        match self.find(it, bytes) {
            Some(Found::Entry(i, key)) => {
                let Some(c) = self.open_entry(w, it, bytes, i, &key)? else {
                    return Ok(false);
                };
                for g in self.apply(w, vec![c])? {
                    self.refresh_keys(g);
                    self.touched.insert(g);
                }
                Ok(true)
            }
            Some(Found::Post(g, i)) => self.open_post(w, it, bytes, g, i),
            None => Ok(false),
        }
    }

    /// What a message is for us, found by tags alone: a control message
    /// with an entry for us (one we were promised by id, our pairwise
    /// entry with its author, or the members' entry of a key we hold in a
    /// group its author has been in), or a post under such a key. One hash
    /// per candidate key gives both the post tag and the entry tag.
    fn find(&mut self, it: &GroupItem, bytes: &[u8]) -> Option<Found> {
        if self.opened.contains(&it.id) {
            return None;
        }
        let pos = &it.position;
        for k in self.awaited.get(&it.id).into_iter().flatten() {
            if let Some(i) = envelope::find_entry(bytes, pos, k) {
                return Some(Found::Entry(i, k.clone()));
            }
        }
        let pair = match self.pairwise.get(&pos.author) {
            Some(k) => Some(k.clone()),
            None => self.keys.pairwise(&pos.author).ok().inspect(|k| {
                self.pairwise.insert(pos.author, k.clone());
            }),
        };
        if let Some(k) = pair
            && let Some(i) = envelope::find_entry(bytes, pos, &k)
        {
            return Some(Found::Entry(i, k));
        }
        let post_tag = bytes.get(..16);
        for g in self.by_author.get(&pos.author).into_iter().flatten() {
            let state = &self.states[g];
            let may_post =
                state.is_member(&pos.author) || state.post_allowed(&pos.author, pos.sequence, &[]);
            for (i, (pk, ek)) in self.readable[g].iter().enumerate() {
                let (post, entry) = pk.tags(&pos.author, pos.sequence);
                if let Some(e) = envelope::entry_index(bytes, &entry) {
                    return Some(Found::Entry(e, ek.clone()));
                }
                if may_post && post_tag == Some(&post[..]) {
                    return Some(Found::Post(*g, i));
                }
            }
        }
        None
    }

    /// Opens the control message through its entry `i` with `key`, and
    /// records it as opened.
    fn open_entry(
        &mut self,
        w: &mut Writer<'_>,
        it: &GroupItem,
        bytes: &[u8],
        i: usize,
        key: &EntryKey,
    ) -> Result<Option<(MsgId, ControlMsg)>> {
        let pos = &it.position;
        let inner = match envelope::open_control(bytes, pos, i, key) {
            Ok(inner) => inner,
            Err(e) => {
                tracing::warn!(msg = %it.id, "group message refused: {e}");
                return Ok(None);
            }
        };
        let body = inner
            .to_bytes()
            .map_err(|_| StoreError::Corrupt("opened group message"))?;
        let control = inner.into_control();
        let group = control.group(&it.id);
        let kind = body[0];
        w.group_opened.insert(&it.id.0, body.as_slice())?;
        w.group_ctrl.insert(&ctrl_key(&group, it.rx), kind)?;
        w.group_pending
            .remove(&feed_key(&pos.author.0, pos.sequence))?;
        self.opened.insert(it.id);
        self.awaited.remove(&it.id);
        if let Control::Epoch(_) = control {
            self.epoch_group.insert(it.id, group);
        }
        Ok(Some((
            group,
            ControlMsg {
                id: it.id,
                position: it.position,
                body: control,
            },
        )))
    }

    /// Until nothing more opens: the awaited messages the store holds, and
    /// for each group that changed, the posts it takes back and the
    /// waiting messages its keys now open.
    fn settle(&mut self, w: &mut Writer<'_>) -> Result<()> {
        loop {
            self.open_awaited(w)?;
            let touched = std::mem::take(&mut self.touched);
            if touched.is_empty() {
                return Ok(());
            }
            for g in touched {
                self.take_back(w, g)?;
                if self.refresh_keys(g) {
                    self.retry_pending(w, g)?;
                }
            }
        }
    }

    /// Control messages of one write: each group's state and our keys;
    /// returns the groups whose state or keys changed.
    fn apply(
        &mut self,
        w: &mut Writer<'_>,
        controls: Vec<(MsgId, ControlMsg)>,
    ) -> Result<BTreeSet<MsgId>> {
        let mut by_group: HashMap<MsgId, Vec<ControlMsg>> = HashMap::new();
        for (g, m) in controls {
            by_group.entry(g).or_default().push(m);
        }
        let mut touched = BTreeSet::new();
        for (group, msgs) in by_group {
            let state = self
                .states
                .entry(group)
                .or_insert_with(|| GroupState::new(group));
            let version = state.version();
            let refused = state.rejected_len();
            state.apply_all(msgs.iter().cloned());
            let now_refused = state.rejected_len();
            if now_refused > refused {
                tracing::info!(group = %group, "{} group operations refused", now_refused - refused);
            }
            if state.version() != version {
                touched.insert(group);
            }
            let counted: Vec<&ControlMsg> = msgs.iter().filter(|m| counts(state, m)).collect();
            for (id, why) in self.keys.absorb(counted) {
                tracing::warn!(group = %group, msg = %id, "group key refused: {why}");
            }
        }
        self.unstored.extend(self.keys.take_fresh());
        let fresh: Vec<MsgId> = self.unstored.iter().copied().collect();
        for id in fresh {
            let Some(key) = self.keys.get(&id) else {
                self.unstored.remove(&id);
                continue;
            };
            let own = EntryKey::own(key);
            let bytes = *key.bytes();
            self.await_id(id, own);
            if self.stored_keys.contains(&id) {
                self.unstored.remove(&id);
                continue;
            }
            // Stored once its epoch (and so its group) is known.
            let Some(g) = self.epoch_group.get(&id).copied() else {
                continue;
            };
            let mut v = [0u8; 64];
            v[..32].copy_from_slice(&g.0);
            v[32..].copy_from_slice(&bytes);
            w.group_keys.insert(&id.0, &v)?;
            self.stored_keys.insert(id);
            self.unstored.remove(&id);
            touched.insert(g);
        }
        self.await_claims();
        Ok(touched)
    }

    /// Waits for the message `id` with one more entry that may open it.
    fn await_id(&mut self, id: MsgId, key: EntryKey) {
        if self.opened.contains(&id) {
            return;
        }
        self.awaited.entry(id).or_default().push(key);
        self.awaited_new.push(id);
    }

    /// Every key claimed for an epoch or operation we have not opened: its
    /// own entry (an epoch) and its members' entry (an operation, whose
    /// merged key it may be) may open it; the commitment checks an epoch's
    /// key once open.
    fn await_claims(&mut self) {
        for (id, k) in self.keys.take_claims() {
            if self.opened.contains(&id) {
                continue;
            }
            self.await_id(id, EntryKey::own(&k));
            self.await_id(id, EntryKey::members(&PostKey::from_merged(k)));
        }
    }

    /// Opens the awaited messages the store already holds (each applied
    /// at once: it may await more). Only ids newly awaited are looked up;
    /// one whose message is here but opens with none of its entries is
    /// forgotten (a later claim awaits it again).
    fn open_awaited(&mut self, w: &mut Writer<'_>) -> Result<()> {
        while !self.awaited_new.is_empty() {
            let mut ids = std::mem::take(&mut self.awaited_new);
            ids.sort();
            ids.dedup();
            for id in ids {
                if self.opened.contains(&id) || !self.awaited.contains_key(&id) {
                    continue;
                }
                w.flush_log()?;
                let Some(rx) = w.ids.find(&w.log, &id)?.map(|(rx, _)| rx) else {
                    continue;
                };
                let Some((item, bytes)) = stored_item(w, rx)? else {
                    continue;
                };
                if !self.open_item(w, &item, &bytes)? {
                    self.awaited.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Recomputes the post keys and authors of a group; whether we can read
    /// it at all.
    fn refresh_keys(&mut self, group: MsgId) -> bool {
        let Some(state) = self.states.get(&group) else {
            return false;
        };
        // Keys merged before are kept: only new head sets cost hashes.
        let mut old: HashMap<Vec<MsgId>, (PostKey, EntryKey)> = self
            .readable
            .remove(&group)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, e)| (k.heads().to_vec(), (k, e)))
            .collect();
        // The current heads first: what nearly every new message is under.
        let current = state.heads();
        let mut sets: Vec<BTreeSet<MsgId>> = state
            .candidate_head_sets()
            .into_iter()
            .filter(|h| *h != current)
            .collect();
        if !current.is_empty() {
            sets.insert(0, current);
        }
        let keys: Vec<(PostKey, EntryKey)> = sets
            .into_iter()
            .filter_map(|heads| {
                let ids: Vec<MsgId> = heads.iter().copied().collect();
                old.remove(&ids).or_else(|| {
                    self.keys.post_key(&heads).map(|k| {
                        let e = EntryKey::members(&k);
                        (k, e)
                    })
                })
            })
            .collect();
        // Who has been a member changes rarely: the author index is
        // rebuilt only then.
        let authors = state.ever_members();
        let readable = !keys.is_empty();
        if self.indexed.get(&group) != Some(&(authors.len(), readable)) {
            for list in self.by_author.values_mut() {
                list.retain(|g| *g != group);
            }
            if readable {
                for author in authors.iter() {
                    self.by_author.entry(*author).or_default().push(group);
                }
            }
            self.indexed.insert(group, (authors.len(), readable));
        }
        if !readable {
            return false;
        }
        self.readable.insert(group, keys);
        true
    }

    /// Takes back the opened posts of `group` that no longer count (their
    /// author was cut before them, or was never a valid member): they leave
    /// every index and wait again, as posts not yet opened do.
    fn take_back(&mut self, w: &mut Writer<'_>, group: MsgId) -> Result<()> {
        let Some(state) = self.states.get(&group) else {
            return Ok(());
        };
        let Some(authors) = self.posted.get(&group) else {
            return Ok(());
        };
        let ever = state.ever_members();
        let cut = state.cut_feeds();
        let suspects: Vec<FeedId> = authors
            .iter()
            .filter(|a| !ever.contains(*a) || cut.contains(*a))
            .copied()
            .collect();
        for author in suspects {
            let mut lo = [0u8; 72];
            lo[..32].copy_from_slice(&group.0);
            lo[32..64].copy_from_slice(&author.0);
            let mut hi = lo;
            hi[64..].copy_from_slice(&u64::MAX.to_be_bytes());
            let opened: Vec<([u8; 72], Vec<u8>)> = w
                .group_authored
                .range::<&[u8; 72]>(&lo..=&hi)?
                .map(|e| e.map(|(k, v)| (*k.value(), v.value().to_vec())))
                .collect::<Result<_, _>>()?;
            for (k, v) in opened {
                let seq = u64::from_be_bytes(k[64..].try_into().expect("8 bytes"));
                let heads: Vec<MsgId> = v[8..]
                    .chunks_exact(32)
                    .map(|c| MsgId(c.try_into().expect("32 bytes")))
                    .collect();
                if state.post_allowed(&author, seq, &heads) {
                    continue;
                }
                let rx = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                let Some((item, _)) = stored_item(w, rx)? else {
                    return Err(StoreError::Corrupt(
                        "opened group post is not a group message",
                    ));
                };
                w.group_posts.remove(&post_key(&group, &item))?;
                w.private.remove(&item.id.0)?;
                w.group_authored.remove(&k)?;
                w.group_pending.insert(&feed_key(&author.0, seq), rx)?;
                // A name it gave the group goes with it.
                let named = w
                    .group_names
                    .get(&group.0)?
                    .is_some_and(|n| n.value()[..8] == rx.to_be_bytes()[..]);
                if named {
                    w.group_names.remove(&group.0)?;
                }
                tracing::info!(group = %group, msg = %item.id, "group post taken back: its author was removed before it");
            }
        }
        Ok(())
    }

    /// Retries the waiting messages of every feed that has been a member
    /// of `group`: posts it opens are stored, control messages it opens
    /// are applied. A removed member's messages after its cut are skipped
    /// by their key alone, so a flood of them costs no reads.
    fn retry_pending(&mut self, w: &mut Writer<'_>, group: MsgId) -> Result<()> {
        let state = &self.states[&group];
        let mut waiting: Vec<([u8; 40], u64)> = Vec::new();
        for author in state.ever_members() {
            let member = state.is_member(&author);
            for e in w
                .group_pending
                .range::<&[u8; 40]>(&feed_key(&author.0, 0)..=&feed_key(&author.0, u64::MAX))?
            {
                let (k, v) = e?;
                let k = *k.value();
                let seq = u64::from_be_bytes(k[32..].try_into().expect("8 bytes"));
                if member || state.post_allowed(&author, seq, &[]) {
                    waiting.push((k, v.value()));
                }
            }
        }
        for (key, rx) in waiting {
            let Some((item, bytes)) = stored_item(w, rx)? else {
                continue;
            };
            if self.open_item(w, &item, &bytes)? {
                w.group_pending.remove(&key)?;
            }
        }
        Ok(())
    }

    /// Opens a post whose tag matched key `i` of `group`: one AEAD open.
    /// `false` when the post does not count (its author was removed
    /// before it): it waits. A matching key that does not open is a
    /// tampered or moved post, logged and never retried.
    fn open_post(
        &mut self,
        w: &mut Writer<'_>,
        it: &GroupItem,
        bytes: &[u8],
        g: MsgId,
        i: usize,
    ) -> Result<bool> {
        let pos = &it.position;
        let Ok(post) = envelope::as_post(bytes) else {
            return Ok(false);
        };
        let k = &self.readable[&g][i].0;
        if !self.states[&g].post_allowed(&pos.author, pos.sequence, k.heads()) {
            return Ok(false);
        }
        match k.open(&post, pos) {
            Ok(plain) => {
                let mut v = it.rx.to_be_bytes().to_vec();
                for h in k.heads() {
                    v.extend_from_slice(&h.0);
                }
                if store_post(w, &g, it, plain)? {
                    let mut ak = [0u8; 72];
                    ak[..32].copy_from_slice(&g.0);
                    ak[32..64].copy_from_slice(&pos.author.0);
                    ak[64..].copy_from_slice(&pos.sequence.to_be_bytes());
                    w.group_authored.insert(&ak, v.as_slice())?;
                    self.posted.entry(g).or_default().insert(pos.author);
                }
            }
            Err(e) => tracing::warn!(msg = %it.id, "group post refused: {e}"),
        }
        Ok(true)
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

    /// The content of a group operation by us at `pos`; `seen` gives the
    /// last sequence we hold of a feed (where a removal cuts it).
    pub(super) fn make(
        &self,
        op: &GroupOp,
        pos: &Position,
        seen: &dyn Fn(&FeedId) -> u64,
    ) -> std::result::Result<String, GroupWriteError> {
        let cuts = |feeds: &[FeedId]| -> Vec<Cut> {
            feeds
                .iter()
                .map(|f| Cut {
                    feed: *f,
                    seq: seen(f),
                })
                .collect()
        };
        Ok(match op {
            GroupOp::Create => groups::create(&self.keys, pos, &[], &[])?.content,
            GroupOp::Add {
                group,
                members,
                admins,
            } => self
                .member_state(group)?
                .add(&self.keys, pos, members, admins)?,
            GroupOp::Remove { group, members } => {
                self.member_state(group)?
                    .rekey(&self.keys, pos, &cuts(members))?
                    .content
            }
            GroupOp::Demote { group, members } => {
                self.member_state(group)?
                    .roles(&self.keys, pos, &[], &cuts(members))?
            }
            GroupOp::Promote { group, members } => {
                self.member_state(group)?
                    .roles(&self.keys, pos, members, &[])?
            }
            GroupOp::Post { group, content } => {
                self.member_state(group)?
                    .seal_post(&self.keys, pos, &json::to_compact(content))?
            }
        })
    }

    /// A message we owe a group before acting in it (`group`) or at any
    /// time (`None`): a request for head keys we miss and have not asked
    /// for, or, as an admin, a refresh when a non-member holds the head
    /// keys ([`GroupState::exposed_to`]) or the answer to a member's
    /// request. `None` when we owe nothing.
    pub(super) fn duty(&self, group: Option<&MsgId>, pos: &Position) -> Option<String> {
        let mut groups: Vec<&MsgId> = match group {
            Some(g) => vec![g],
            None => self.states.keys().collect(),
        };
        groups.sort();
        for g in groups {
            let Ok(s) = self.member_state(g) else {
                continue;
            };
            let asked = s.asked(&self.me);
            let missing: Vec<MsgId> = s
                .heads()
                .into_iter()
                .filter(|h| !self.keys.has(h) && !asked.contains(h))
                .collect();
            if !missing.is_empty() {
                return s.request(&self.keys, pos, &missing).ok();
            }
            if !s.admins().contains(&self.me) {
                continue;
            }
            // A void operation gave a non-member every head key: nobody
            // seals anything under them until an admin refreshes.
            if !s.exposed_to().is_empty()
                && let Ok(e) = s.rekey(&self.keys, pos, &[])
            {
                return Some(e.content);
            }
            for (request, to, epochs) in s.open_requests(&self.me) {
                let held: Vec<MsgId> = epochs.into_iter().filter(|e| self.keys.has(e)).collect();
                if !held.is_empty() {
                    return s.forward(&self.keys, pos, &to, request, &held).ok();
                }
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
            can_post: member
                && missing.is_empty()
                && (s.exposed_to().is_empty() || s.admins().contains(&self.me)),
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

/// The group message stored at `rx`, and its envelope's bytes (`None`
/// when it is not a well-formed group message).
fn stored_item(w: &mut Writer<'_>, rx: u64) -> Result<Option<(GroupItem, Vec<u8>)>> {
    w.flush_log()?;
    let rec = w.log.get(rx)?.ok_or(StoreError::Corrupt(
        "group index points at a missing message",
    ))?;
    let m = StoredMsg::decode(rx, rec.value())?;
    drop(rec);
    let Some(item) = item_of(&m, &m.value()?)? else {
        return Ok(None);
    };
    Ok(envelope::decode(&item.content)
        .ok()
        .map(|bytes| (item, bytes)))
}

/// Whether a control message's slots may give us keys: operations of
/// anyone who has been an admin (each key is checked against its epoch's
/// commitment), forwards only from admins.
fn counts(state: &GroupState, m: &ControlMsg) -> bool {
    match m.body {
        Control::Forward(_) => state.forward_counts(&m.position.author, m.position.sequence),
        // Nobody who never was an admin gives a key that counts: its slots
        // are not even opened (reopening the store judges them again).
        Control::Epoch(_) | Control::Add(_) => !state.void_by_non_admin(&m.id, &m.position.author),
        _ => true,
    }
}

/// Writes an opened group post: its plaintext (a JSON object) beside the
/// private-box ones, listed under its group by time; an `about` of the group
/// names it.
fn store_post(w: &mut Writer<'_>, group: &MsgId, it: &GroupItem, plain: Vec<u8>) -> Result<bool> {
    let Some((bytes, value)) = index::opened_content(plain) else {
        tracing::warn!(msg = %it.id, "group post is not a JSON object");
        return Ok(false);
    };
    w.private.insert(&it.id.0, bytes.as_slice())?;
    w.group_posts.insert(&post_key(group, it), &it.id.0)?;
    let next = w.opened.last()?.map_or(1, |(k, _)| k.value() + 1);
    w.opened.insert(next, it.rx)?;
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
    Ok(true)
}

/// The key of an opened post in [`GROUP_POSTS`]: its group, then its sort
/// time and receive sequence.
fn post_key(group: &MsgId, it: &GroupItem) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(&group.0);
    k[32..].copy_from_slice(&time_key(index::sort_time(it.claimed, it.received), it.rx));
    k
}

/// What a group message is for us, found by a tag.
enum Found {
    /// A control message: the index of our entry and its key.
    Entry(usize, EntryKey),
    /// A post under key `.1` of group `.0`'s candidates.
    Post(MsgId, usize),
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
    /// A rekey that removes `members`, each cut at the last message of it
    /// we hold.
    Remove {
        /// The group.
        group: MsgId,
        /// Feeds to remove.
        members: Vec<FeedId>,
    },
    /// Takes admin rights from `members` (juniors of ours), each cut at
    /// the last message of it we hold.
    Demote {
        /// The group.
        group: MsgId,
        /// Admins to demote.
        members: Vec<FeedId>,
    },
    /// Makes `members` (members already) admins.
    Promote {
        /// The group.
        group: MsgId,
        /// Members to promote.
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
            | GroupOp::Demote { group, .. }
            | GroupOp::Promote { group, .. }
            | GroupOp::Post { group, .. } => Some(*group),
        }
    }
}
