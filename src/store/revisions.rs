//! Revisions of messages (the `ssb-revisions` convention): the
//! [`REVISIONS`] index read back, and the upgrade that moves the
//! revisions a version-6 store (or older) indexed as posts to it.
//!
//! Which revisions count (only the root author's) and which one is shown
//! is the read models' business (`social`); here every revision is
//! listed. Imports `crypto` and `feed` only.

use redb::ReadableTable as _;

use super::index::sort_time;
use super::schema::*;
use super::{Reader, Result, StoredMsg};
use crate::crypto::{FeedId, MsgId};
use crate::feed::content::{self, Content, Link};
use crate::feed::json::{self, Value};

/// Most revisions of one message by one author read (and most by others
/// counted): past them, later ones are not seen.
pub const MAX_REVISIONS: usize = 1_000;

impl Reader {
    /// The receive sequences of the revisions of `root` by `author`, in
    /// receive order (at most [`MAX_REVISIONS`]).
    pub fn revisions_of(&self, root: &MsgId, author: &FeedId) -> Result<Vec<u64>> {
        let from = revision_key(&root.0, &author.0, 0);
        let to = revision_key(&root.0, &author.0, u64::MAX);
        let mut out = Vec::new();
        for e in self
            .revisions
            .range::<&[u8; 72]>(&from..=&to)?
            .take(MAX_REVISIONS)
        {
            let (k, _) = e?;
            out.push(u64::from_be_bytes(
                k.value()[64..].try_into().expect("8 bytes"),
            ));
        }
        Ok(out)
    }

    /// How many revisions of `root` feeds other than `author` wrote (at
    /// most [`MAX_REVISIONS`] counted).
    pub fn others_revisions(&self, root: &MsgId, author: &FeedId) -> Result<usize> {
        let from = revision_key(&root.0, &[0; 32], 0);
        let to = revision_key(&root.0, &[0xff; 32], u64::MAX);
        let mut n = 0;
        for e in self.revisions.range::<&[u8; 72]>(&from..=&to)? {
            if e?.0.value()[32..64] != author.0 {
                n += 1;
                if n == MAX_REVISIONS {
                    break;
                }
            }
        }
        Ok(n)
    }
}

/// The upgrade from versions before 7, which indexed a revision as a post
/// (listed by time or in the inbox, its links as backlinks, maybe marked
/// unread): each revision in the log, public or a box we opened, is taken
/// out of those and listed in [`REVISIONS`].
pub(super) fn index_revisions(txn: &redb::WriteTransaction) -> Result<()> {
    let log = txn.open_table(LOG)?;
    let private = txn.open_table(PRIVATE)?;
    let mut posts = txn.open_table(POSTS)?;
    let mut inbox = txn.open_table(INBOX)?;
    let mut links = txn.open_table(LINKS)?;
    let mut unread = txn.open_table(UNREAD)?;
    let mut revisions = txn.open_table(REVISIONS)?;
    for e in log.iter()? {
        let (rx, rec) = e?;
        let m = StoredMsg::decode(rx.value(), rec.value())?;
        // Cheap test first: most messages are no revision.
        let opened = private.get(&m.key.0)?.map(|v| v.value().to_vec());
        let holds = |b: &[u8]| b.windows(12).any(|w| w == b"revisionRoot");
        if !holds(&m.json) && !opened.as_deref().is_some_and(holds) {
            continue;
        }
        let value = m.value()?;
        let Some(author) = StoredMsg::author_in(&value) else {
            continue;
        };
        let opened = opened.and_then(|b| json::parse(&b).ok());
        let content = match &opened {
            Some(c) => c,
            None => value.get("content").unwrap_or(&Value::Null),
        };
        let Content::Post(p) = content::parse(content) else {
            continue;
        };
        let Some(root) = p.revision_root else {
            continue;
        };
        let time = sort_time(
            value
                .get("timestamp")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite()),
            m.received,
        );
        if opened.is_some() {
            inbox.remove(&time_key(time, m.rx))?;
        } else {
            posts.remove(&post_key(&author.0, time, m.rx))?;
        }
        let mut linked: Vec<(Link, u8)> = Vec::new();
        linked.extend(p.root.map(|r| (Link::Msg(r), LINK_ROOT)));
        linked.extend(p.branch.iter().map(|b| (Link::Msg(*b), LINK_BRANCH)));
        linked.extend(p.mentions.iter().map(|x| (x.link.clone(), LINK_MENTION)));
        for (target, kind) in linked {
            links.remove(&link_key(&target_key(&target), kind, m.rx))?;
        }
        unread.remove(m.rx)?;
        revisions.insert(&revision_key(&root.0, &author.0, m.rx), 0)?;
    }
    Ok(())
}
