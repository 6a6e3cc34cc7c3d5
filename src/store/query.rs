//! Reading the content indexes: one [`Reader`] is one read transaction with
//! every index table open, so a screen's worth of queries sees one
//! consistent snapshot and pays for opening tables once.
//!
//! Every query here is a point lookup or a bounded range read of an index;
//! none scans the log. Read models (`social`) are built on these.

use std::collections::BinaryHeap;

use redb::{ReadOnlyTable, ReadableDatabase as _, ReadableTableMetadata as _};

use crate::crypto::{FeedId, MsgId};
use crate::feed::content::Link;
use crate::feed::json::{self, Value};

use super::schema::*;
use super::{Contact, Result, Store, StoreError, StoredMsg};

/// One backlink: a message (by receive sequence) that links to a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backlink {
    /// Receive sequence of the linking message.
    pub rx: u64,
    /// Its author.
    pub author: FeedId,
    /// 1 for a vote that likes, else 0.
    pub flag: u8,
}

/// A post in a time-ordered page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostRef {
    /// Its sort time (ms).
    pub time: u64,
    /// Its receive sequence.
    pub rx: u64,
    /// Its author.
    pub author: FeedId,
    /// Whether it is a reply.
    pub reply: bool,
}

/// A page position: entries strictly older than `(time, rx)`.
pub type Cursor = (u64, u64);

/// One profile field someone set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AboutField {
    /// Who set it.
    pub namer: FeedId,
    /// `ABOUT_NAME`, `ABOUT_DESCRIPTION` or `ABOUT_IMAGE`.
    pub field: u8,
    /// Receive sequence of the about message.
    pub rx: u64,
    /// The value.
    pub text: String,
}

/// A read snapshot of the store with its index tables open.
pub struct Reader {
    log: ReadOnlyTable<u64, &'static [u8]>,
    ids: super::ids::IdsRead,
    links: ReadOnlyTable<&'static [u8; 42], &'static [u8; 33]>,
    posts: ReadOnlyTable<&'static [u8; 48], u8>,
    abouts: ReadOnlyTable<&'static [u8; 66], &'static [u8]>,
    private: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    inbox: ReadOnlyTable<&'static [u8; 16], &'static [u8; 32]>,
    unread: ReadOnlyTable<u64, u8>,
    likes: ReadOnlyTable<&'static [u8; 33], u64>,
    contacts: ReadOnlyTable<&'static [u8; 64], &'static [u8; 9]>,
    followers: ReadOnlyTable<&'static [u8; 64], u8>,
    pub(super) same_as: ReadOnlyTable<&'static [u8; 64], &'static [u8; 9]>,
    group_posts: ReadOnlyTable<&'static [u8; 48], &'static [u8; 32]>,
    group_names: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    held: ReadOnlyTable<&'static [u8; 32], &'static [u8; 40]>,
    /// None while nothing was ever pruned.
    pruned: Option<ReadOnlyTable<&'static [u8; 32], u64>>,
    pub(super) revisions: ReadOnlyTable<&'static [u8; 72], u8>,
    mutes: super::Mutes,
    opened: ReadOnlyTable<u64, u64>,
    me: Option<FeedId>,
}

fn contact_of(state: u8) -> Option<Contact> {
    match state {
        CONTACT_FOLLOW => Some(Contact::Follow),
        CONTACT_BLOCK => Some(Contact::Block),
        _ => None,
    }
}

impl Store {
    /// A read snapshot for queries of the content indexes.
    pub fn reader(&self) -> Result<Reader> {
        let txn = self.db().begin_read()?;
        Ok(Reader {
            log: txn.open_table(LOG)?,
            ids: super::ids::IdsRead::open(&txn)?,
            links: txn.open_table(LINKS)?,
            posts: txn.open_table(POSTS)?,
            abouts: txn.open_table(ABOUTS)?,
            private: txn.open_table(PRIVATE)?,
            inbox: txn.open_table(INBOX)?,
            unread: txn.open_table(UNREAD)?,
            likes: txn.open_table(LIKES)?,
            contacts: txn.open_table(CONTACTS)?,
            followers: txn.open_table(FOLLOWERS)?,
            same_as: txn.open_table(SAME_AS)?,
            group_posts: txn.open_table(GROUP_POSTS)?,
            group_names: txn.open_table(GROUP_NAMES)?,
            held: txn.open_table(HELD)?,
            pruned: match txn.open_table(PRUNED) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            },
            revisions: txn.open_table(REVISIONS)?,
            mutes: Store::mute_set(&txn)?,
            opened: txn.open_table(OPENED)?,
            me: self.me(),
        })
    }

    /// Marks messages (by receive sequence) as read, in one transaction.
    pub fn mark_read(&self, rxs: &[u64]) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            let mut t = txn.open_table(UNREAD)?;
            for rx in rxs {
                t.remove(rx)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl Reader {
    /// Whether `feed` is held from above its first message (fetched
    /// newest first, its older history still to come); not a feed pruned.
    pub fn is_partial(&self, feed: &FeedId) -> Result<bool> {
        Ok(self.held.get(&feed.0)?.is_some() && !self.is_pruned(feed)?)
    }

    /// Whether `feed`'s older messages were pruned (see `store::prune`).
    pub fn is_pruned(&self, feed: &FeedId) -> Result<bool> {
        Ok(match &self.pruned {
            Some(t) => t.get(&feed.0)?.is_some(),
            None => false,
        })
    }

    /// Whose store this is.
    pub fn me(&self) -> Option<FeedId> {
        self.me
    }

    /// What the person muted, as of this snapshot.
    pub fn mutes(&self) -> &super::Mutes {
        &self.mutes
    }

    /// A group's name, from the latest `about` of it posted inside it.
    pub fn group_name(&self, group: &MsgId) -> Result<Option<String>> {
        Ok(self
            .group_names
            .get(&group.0)?
            .and_then(|v| String::from_utf8(v.value().get(8..)?.to_vec()).ok()))
    }

    /// The group posts we opened, newest first, before the cursor `(sort
    /// time, receive sequence)`: `(time, rx, id)`.
    pub fn group_posts(
        &self,
        group: &MsgId,
        before: Option<(u64, u64)>,
        limit: usize,
    ) -> Result<Vec<(u64, u64, MsgId)>> {
        let key = |t: u64, rx: u64| {
            let mut k = [0u8; 48];
            k[..32].copy_from_slice(&group.0);
            k[32..].copy_from_slice(&time_key(t, rx));
            k
        };
        let lo = key(0, 0);
        let hi = match before {
            Some((t, rx)) => key(t, rx),
            None => key(u64::MAX, u64::MAX),
        };
        let mut out = Vec::new();
        for e in self
            .group_posts
            .range::<&[u8; 48]>(&lo..&hi)?
            .rev()
            .take(limit)
        {
            let (k, v) = e?;
            let k = k.value();
            out.push((
                u64::from_be_bytes(k[32..40].try_into().expect("8 bytes")),
                u64::from_be_bytes(k[40..48].try_into().expect("8 bytes")),
                MsgId(*v.value()),
            ));
        }
        Ok(out)
    }

    /// The message at a receive sequence.
    pub fn at(&self, rx: u64) -> Result<Option<StoredMsg>> {
        match self.log.get(rx)? {
            Some(rec) => Ok(Some(StoredMsg::decode(rx, rec.value())?)),
            None => Ok(None),
        }
    }

    /// Messages in receive order after receive sequence `after`, at most
    /// `limit`.
    pub fn log_after(&self, after: u64, limit: usize) -> Result<Vec<StoredMsg>> {
        let mut out = Vec::new();
        for e in self.log.range(after.saturating_add(1)..)?.take(limit) {
            let (rx, rec) = e?;
            out.push(StoredMsg::decode(rx.value(), rec.value())?);
        }
        Ok(out)
    }

    /// The group posts opened after position `after` of the [`OPENED`]
    /// list, at most `limit`: `(position, receive sequence)`.
    pub fn opened_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, u64)>> {
        self.opened
            .range(after.saturating_add(1)..)?
            .take(limit)
            .map(|e| {
                let (k, v) = e?;
                Ok((k.value(), v.value()))
            })
            .collect()
    }

    /// The receive sequence of a message id.
    pub fn rx_of(&self, id: &MsgId) -> Result<Option<u64>> {
        Ok(self.ids.find(&self.log, id)?.map(|(rx, _)| rx))
    }

    /// A message by id.
    pub fn get(&self, id: &MsgId) -> Result<Option<StoredMsg>> {
        match self.ids.find(&self.log, id)? {
            Some((rx, rec)) => Ok(Some(StoredMsg::decode(rx, rec.value())?)),
            None => Ok(None),
        }
    }

    /// The decrypted content of a box we opened.
    pub fn private_content(&self, id: &MsgId) -> Result<Option<Value>> {
        match self.private.get(&id.0)? {
            Some(v) => Ok(Some(json::parse(v.value()).map_err(|_| {
                StoreError::Corrupt("stored private content does not parse")
            })?)),
            None => Ok(None),
        }
    }

    /// The backlinks of `target` with `kind`, in receive order (reversible),
    /// read as they are needed.
    pub fn backlink_range(
        &self,
        target: &Link,
        kind: u8,
    ) -> Result<impl DoubleEndedIterator<Item = Result<Backlink>> + '_> {
        let t = target_key(target);
        let from = link_key(&t, kind, 0);
        let to = link_key(&t, kind, u64::MAX);
        Ok(self.links.range::<&[u8; 42]>(&from..=&to)?.map(|e| {
            let (k, v) = e?;
            let (k, v) = (k.value(), v.value());
            Ok(Backlink {
                rx: u64::from_be_bytes(k[34..].try_into().expect("8 bytes")),
                author: FeedId(v[..32].try_into().expect("32 bytes")),
                flag: v[32],
            })
        }))
    }

    /// Messages linking to `target` with `kind` (`LINK_*`), in receive order.
    pub fn backlinks(&self, target: &Link, kind: u8) -> Result<Vec<Backlink>> {
        self.backlink_range(target, kind)?.collect()
    }

    /// The latest `limit` messages linking to `target` with `kind`, newest
    /// first.
    pub fn recent_backlinks(&self, target: &Link, kind: u8, limit: usize) -> Result<Vec<Backlink>> {
        self.backlink_range(target, kind)?
            .rev()
            .take(limit)
            .collect()
    }

    /// How many feeds like `target` now (each voter's latest vote counts).
    pub fn likes(&self, target: &Link) -> Result<u64> {
        Ok(self
            .likes
            .get(&target_key(target))?
            .map_or(0, |g| g.value()))
    }

    /// How many messages link to `target` with `kind`.
    pub fn backlink_count(&self, target: &Link, kind: u8) -> Result<usize> {
        Ok(self.backlink_range(target, kind)?.count())
    }

    /// Public posts of `authors`, newest first, older than `before`: a
    /// k-way merge of each author's posts-by-time index, reading at most
    /// `limit + authors` entries.
    pub fn posts_before(
        &self,
        authors: &[FeedId],
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<PostRef>> {
        let (bt, brx) = before.unwrap_or((u64::MAX, u64::MAX));
        let mut iters = Vec::with_capacity(authors.len());
        let mut heap = BinaryHeap::new();
        for (i, a) in authors.iter().enumerate() {
            let lo = post_key(&a.0, 0, 0);
            let hi = post_key(&a.0, bt, brx);
            let mut it = self.posts.range::<&[u8; 48]>(&lo..&hi)?.rev();
            if let Some(e) = it.next() {
                heap.push(decode_post(e?)?.with_index(i));
            }
            iters.push(it);
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            let Some(top) = heap.pop() else { break };
            let i = top.index;
            out.push(top.post);
            if let Some(e) = iters[i].next() {
                heap.push(decode_post(e?)?.with_index(i));
            }
        }
        Ok(out)
    }

    /// Private posts we can read, newest first, older than `before`.
    pub fn inbox_before(
        &self,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(Cursor, MsgId)>> {
        let (bt, brx) = before.unwrap_or((u64::MAX, u64::MAX));
        let hi = time_key(bt, brx);
        let mut out = Vec::new();
        for e in self.inbox.range::<&[u8; 16]>(..&hi)?.rev().take(limit) {
            let (k, v) = e?;
            let k = k.value();
            let time = u64::from_be_bytes(k[..8].try_into().expect("8 bytes"));
            let rx = u64::from_be_bytes(k[8..].try_into().expect("8 bytes"));
            out.push(((time, rx), MsgId(*v.value())));
        }
        Ok(out)
    }

    /// Every profile field set about `target`, by anyone.
    pub fn about_fields(&self, target: &Link) -> Result<Vec<AboutField>> {
        let t = target_key(target);
        let from = about_key(&t, &[0; 32], 0);
        let to = about_key(&t, &[0xff; 32], 0xff);
        let mut out = Vec::new();
        for e in self.abouts.range::<&[u8; 66]>(&from..=&to)? {
            let (k, v) = e?;
            let (k, v) = (k.value(), v.value());
            if v.len() < 8 {
                return Err(StoreError::Corrupt("about record shorter than its header"));
            }
            out.push(AboutField {
                namer: FeedId(k[33..65].try_into().expect("32 bytes")),
                field: k[65],
                rx: u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
                text: String::from_utf8_lossy(&v[8..]).into_owned(),
            });
        }
        Ok(out)
    }

    /// The edges `author` has set: whom it follows and blocks.
    pub fn contacts_of(&self, author: &FeedId) -> Result<Vec<(FeedId, Contact)>> {
        let from = contact_key(&author.0, &[0; 32]);
        let to = contact_key(&author.0, &[0xff; 32]);
        let mut out = Vec::new();
        for e in self.contacts.range::<&[u8; 64]>(&from..=&to)? {
            let (k, v) = e?;
            if let Some(c) = contact_of(v.value()[0]) {
                out.push((FeedId(k.value()[32..].try_into().expect("32 bytes")), c));
            }
        }
        Ok(out)
    }

    /// The edges others have set towards `target`: its followers and blockers.
    pub fn followers_of(&self, target: &FeedId) -> Result<Vec<(FeedId, Contact)>> {
        let from = contact_key(&target.0, &[0; 32]);
        let to = contact_key(&target.0, &[0xff; 32]);
        let mut out = Vec::new();
        for e in self.followers.range::<&[u8; 64]>(&from..=&to)? {
            let (k, v) = e?;
            if let Some(c) = contact_of(v.value()) {
                out.push((FeedId(k.value()[32..].try_into().expect("32 bytes")), c));
            }
        }
        Ok(out)
    }

    /// Whether a message (by receive sequence) is marked unread.
    pub fn is_unread(&self, rx: u64) -> Result<bool> {
        Ok(self.unread.get(rx)?.is_some())
    }

    /// How many messages are marked unread.
    pub fn unread_count(&self) -> Result<u64> {
        Ok(self.unread.len()?)
    }
}

/// A heap entry of the k-way merge: newest (time, rx) first.
struct Pending {
    post: PostRef,
    index: usize,
}

impl PostRef {
    fn with_index(self, index: usize) -> Pending {
        Pending { post: self, index }
    }
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.post.time, self.post.rx) == (o.post.time, o.post.rx)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.post.time, self.post.rx).cmp(&(o.post.time, o.post.rx))
    }
}

type PostEntry<'a> = (
    redb::AccessGuard<'a, &'static [u8; 48]>,
    redb::AccessGuard<'a, u8>,
);

fn decode_post(e: PostEntry<'_>) -> Result<PostRef> {
    let (k, v) = e;
    let k = k.value();
    Ok(PostRef {
        author: FeedId(k[..32].try_into().expect("32 bytes")),
        time: u64::from_be_bytes(k[32..40].try_into().expect("8 bytes")),
        rx: u64::from_be_bytes(k[40..].try_into().expect("8 bytes")),
        reply: v.value() == 1,
    })
}
