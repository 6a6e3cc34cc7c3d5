//! Indexing one stored message, inside the write transaction that stores it.
//!
//! Reads the typed view of the content ([`content::parse`]) and writes the
//! backlinks, posts by time, profile fields, contact graph (both ways),
//! private content and inbox, unread marks and pub addresses with who
//! announced them. Never reads anything but the tables of the [`Writer`]
//! it extends.

use redb::ReadableTable as _;

use crate::crypto::{FeedId, MsgId};
use crate::feed::content::{self, Content, Edge, Link};
use crate::feed::json::{self, Value};

use super::schema::*;
use super::{MAX_ANNOUNCERS, PeerRecord, Result, Writer};

/// What the indexer needs to know of one stored message.
pub(super) struct Indexed<'a> {
    pub rx: u64,
    pub id: MsgId,
    pub author: FeedId,
    /// The claimed time, if it is a finite number.
    pub claimed: Option<f64>,
    pub received: f64,
    /// The public content (an object, or a boxed string).
    pub content: &'a Value,
    /// The opened content, when it was a box we could open: its compact
    /// JSON and its parsed value.
    pub opened: Option<(&'a [u8], &'a Value)>,
    /// Whether to mark it unread when it is for us (not when reindexing).
    pub fresh: bool,
}

/// The time a message sorts by: what it claims, but never later than when
/// it arrived (nor before the epoch), in whole ms.
pub fn sort_time(claimed: Option<f64>, received: f64) -> u64 {
    let t = claimed.unwrap_or(received).min(received);
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

impl Writer<'_> {
    /// Writes every index entry of one message.
    pub(super) fn index(&mut self, m: &Indexed<'_>) -> Result<()> {
        let time = sort_time(m.claimed, m.received);
        if let Some((bytes, value)) = m.opened {
            self.private.insert(&m.id.0, bytes)?;
            self.index_content(m, value, true, time)?;
        } else {
            self.index_content(m, m.content, false, time)?;
        }
        Ok(())
    }

    fn link(&mut self, target: &Link, kind: u8, m: &Indexed<'_>, flag: u8) -> Result<()> {
        let mut v = [0u8; 33];
        v[..32].copy_from_slice(&m.author.0);
        v[32] = flag;
        self.links
            .insert(&link_key(&target_key(target), kind, m.rx), &v)?;
        Ok(())
    }

    /// Marks a fresh message of someone else unread, unless it is by a feed
    /// we block: that is never shown, so it never waits to be read.
    fn mark_unread(&mut self, m: &Indexed<'_>, why: u8) -> Result<()> {
        let Some(me) = self.me else { return Ok(()) };
        // A fresh message has a receive sequence new in this write: only
        // its own indexing can have marked it already (the first reason
        // stays).
        if m.fresh
            && self.unread_marked != Some(m.rx)
            && m.author != me
            && self.my_edge(&m.author)? != Some(CONTACT_BLOCK)
        {
            self.unread_pending.push((m.rx, why));
            if self.unread_pending.len() >= super::PENDING_ENTRIES {
                self.flush_unread()?;
            }
            self.unread_marked = Some(m.rx);
        }
        Ok(())
    }

    /// The contact state we have set towards `target`, if any: read once
    /// per transaction, then kept (and updated by our own contact messages).
    pub(super) fn my_edge(&mut self, target: &FeedId) -> Result<Option<u8>> {
        let Some(me) = self.me else { return Ok(None) };
        if let Some(state) = self.my_edges.get(target) {
            return Ok(*state);
        }
        let state = self
            .contacts
            .get(&contact_key(&me.0, &target.0))?
            .map(|v| v.value()[0]);
        self.my_edges.insert(*target, state);
        Ok(state)
    }

    /// Lists a post by time: in the inbox when private, else among its
    /// author's posts; marked unread when it is for us.
    fn post_by_time(
        &mut self,
        m: &Indexed<'_>,
        private: bool,
        reply: bool,
        time: u64,
    ) -> Result<()> {
        if private {
            self.inbox.insert(&time_key(time, m.rx), &m.id.0)?;
            self.mark_unread(m, UNREAD_PRIVATE)?;
        } else {
            self.posts_pending
                .push((post_key(&m.author.0, time, m.rx), u8::from(reply)));
            if self.posts_pending.len() >= super::PENDING_ENTRIES {
                self.flush_posts()?;
            }
            if self.my_edge(&m.author)? == Some(CONTACT_FOLLOW) {
                self.mark_unread(m, UNREAD_POST)?;
            }
        }
        Ok(())
    }

    fn index_content(
        &mut self,
        m: &Indexed<'_>,
        value: &Value,
        private: bool,
        time: u64,
    ) -> Result<()> {
        match content::parse(value) {
            // A revision is listed as one, nothing else: the read models
            // show it in place of what it revises.
            Content::Post(p) if p.revision_root.is_some() => {
                if let Some(root) = p.revision_root {
                    self.revisions
                        .insert(&revision_key(&root.0, &m.author.0, m.rx), 0)?;
                }
            }
            Content::Post(p) => {
                self.post_by_time(m, private, p.root.is_some(), time)?;
                if let Some(root) = p.root {
                    self.link(&Link::Msg(root), LINK_ROOT, m, 0)?;
                }
                for b in &p.branch {
                    self.link(&Link::Msg(*b), LINK_BRANCH, m, 0)?;
                }
                for mention in &p.mentions {
                    self.link(&mention.link, LINK_MENTION, m, 0)?;
                    if let (Link::Feed(f), Some(me)) = (&mention.link, self.me)
                        && *f == me
                    {
                        self.mark_unread(m, UNREAD_MENTION)?;
                    }
                }
            }
            Content::Vote(v) => {
                let flag = u8::from(v.likes());
                self.link(&v.link, LINK_VOTE, m, flag)?;
                // The like count follows each voter's latest vote.
                let target = target_key(&v.link);
                let key = vote_key(&target, &m.author.0);
                if self.keeps_newer_vote(&key)? {
                    return Ok(());
                }
                let before = self.votes.insert(&key, flag)?.map_or(0, |g| g.value());
                if before != flag {
                    let n = self.likes.get(&target)?.map_or(0, |g| g.value());
                    let n = if flag == 1 {
                        n + 1
                    } else {
                        n.saturating_sub(1)
                    };
                    self.likes.insert(&target, n)?;
                }
            }
            Content::About(a) => {
                self.link(&a.about, LINK_ABOUT, m, 0)?;
                let target = target_key(&a.about);
                for (field, text) in [
                    (ABOUT_NAME, &a.name),
                    (ABOUT_DESCRIPTION, &a.description),
                    (ABOUT_IMAGE, &a.image),
                ] {
                    if let Some(text) = text {
                        let key = about_key(&target, &m.author.0, field);
                        if let Some(old) = self.abouts.get(&key)? {
                            let old = old.value();
                            let rx = u64::from_be_bytes(old[..8].try_into().unwrap_or([0; 8]));
                            if self.keeps_newer(rx) {
                                continue;
                            }
                        }
                        let mut rec = Vec::with_capacity(8 + text.len());
                        rec.extend_from_slice(&m.rx.to_be_bytes());
                        rec.extend_from_slice(text.as_bytes());
                        self.abouts.insert(&key, rec.as_slice())?;
                    }
                }
            }
            Content::Contact(c) => {
                // The graph is public: a private contact message only
                // counts for our own feed (a private block).
                if private && Some(m.author) != self.me {
                    return Ok(());
                }
                // A device link is public or nothing: others must see it.
                if !private && let Some((k, v)) = same_as_entry(&m.author, &c, m.rx) {
                    let newer = self.same_as.get(&k)?.map(|old| entry_rx(old.value()));
                    if !newer.is_some_and(|rx| self.keeps_newer(rx)) {
                        self.same_as.insert(&k, &v)?;
                    }
                }
                let key = contact_key(&m.author.0, &c.contact.0);
                let newer = self.contacts.get(&key)?.map(|old| entry_rx(old.value()));
                if newer.is_some_and(|rx| self.keeps_newer(rx)) {
                    return Ok(());
                }
                if let Some(edge) = c.edge() {
                    let state = match edge {
                        Edge::None => CONTACT_NONE,
                        Edge::Follow => CONTACT_FOLLOW,
                        Edge::Block => CONTACT_BLOCK,
                    };
                    let mut v = [0u8; 9];
                    v[0] = state;
                    v[1..].copy_from_slice(&m.rx.to_be_bytes());
                    self.contacts.insert(&key, &v)?;
                    self.followers
                        .insert(&contact_key(&c.contact.0, &m.author.0), state)?;
                    self.contacts_touched = true;
                    if Some(m.author) == self.me {
                        self.my_edges.insert(c.contact, Some(state));
                    }
                }
            }
            // A malformed post is listed all the same (shown raw, with
            // the reason), so nothing a followed feed posts is lost; its
            // links are not trusted.
            Content::Invalid { kind, .. } if kind == "post" => {
                self.post_by_time(m, private, value.get("root").is_some(), time)?;
            }
            Content::Pub(p) if !private => self.announce_pub(&p.address(), &m.author)?,
            _ => {}
        }
        Ok(())
    }
}

/// The receive sequence kept in a contact edge or device link entry.
fn entry_rx(v: &[u8; 9]) -> u64 {
    u64::from_be_bytes(v[1..].try_into().expect("8 bytes"))
}

impl Writer<'_> {
    /// Records that `author` announced the pub at `addr`: a new `pub`
    /// record, or one more announcer of a known one (the latest
    /// [`MAX_ANNOUNCERS`] kept). An address the user added is left alone.
    fn announce_pub(&mut self, addr: &str, author: &FeedId) -> Result<()> {
        let known: Option<PeerRecord> = self
            .peers
            .get(addr)?
            .map(|v| serde_json::from_slice(v.value()).unwrap_or_default());
        let mut rec = match known {
            None => PeerRecord {
                source: "pub".into(),
                ..PeerRecord::default()
            },
            Some(rec) if rec.source == "pub" => rec,
            Some(_) => return Ok(()),
        };
        let by = author.to_string();
        if rec.announced_by.contains(&by) {
            return Ok(());
        }
        rec.announced_by.push(by);
        if rec.announced_by.len() > MAX_ANNOUNCERS {
            rec.announced_by.remove(0);
        }
        let bytes = serde_json::to_vec(&rec).expect("peer record serialises");
        self.peers.insert(addr, bytes.as_slice())?;
        Ok(())
    }
}

/// Parses the plaintext of an opened box: content must be a JSON object.
pub(super) fn opened_content(plain: Vec<u8>) -> Option<(Vec<u8>, Value)> {
    let v = json::parse(&plain).ok()?;
    matches!(v, Value::Object(_)).then_some((plain, v))
}

/// The [`SAME_AS`] entry of a public contact message of `author` with a
/// `sameAs` (none for one without, or about the author itself), received
/// at `rx`.
pub(super) fn same_as_entry(
    author: &FeedId,
    c: &crate::feed::content::ContactChange,
    rx: u64,
) -> Option<([u8; 64], [u8; 9])> {
    let linked = c.same_as.filter(|_| c.contact != *author)?;
    let mut v = [0u8; 9];
    v[0] = u8::from(linked);
    v[1..].copy_from_slice(&rx.to_be_bytes());
    Some((contact_key(&author.0, &c.contact.0), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_time_is_never_after_arrival() {
        assert_eq!(sort_time(Some(5.0), 10.0), 5);
        assert_eq!(sort_time(Some(50.0), 10.0), 10);
        assert_eq!(sort_time(None, 10.0), 10);
        assert_eq!(sort_time(Some(-3.0), 10.0), 0);
        assert_eq!(sort_time(Some(f64::NAN), 10.0), 10);
    }
}
