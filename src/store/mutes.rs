//! What the person muted: words, feeds and threads, in the [`MUTES`]
//! table, local to this store (never published, never sent to peers).
//! Muting hides; it deletes nothing. Which content a mute hides is the
//! read models' business (`social`). Imports `crypto` only.

use std::collections::HashSet;

use redb::{ReadableDatabase as _, ReadableTable as _};

use super::schema::{MUTE_FEED, MUTE_THREAD, MUTE_WORD, MUTES};
use super::{Result, Store, StoreError};
use crate::crypto::{FeedId, MsgId};

/// Longest muted word, in bytes.
pub const MAX_MUTE_WORD: usize = 64;

/// Most mutes a store keeps.
pub const MAX_MUTES: usize = 10_000;

/// One thing muted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mute {
    /// A word (or words): content with it as a whole word, in any case.
    Word(String),
    /// A feed: its posts.
    Feed(FeedId),
    /// A thread, by its root.
    Thread(MsgId),
}

impl Mute {
    /// A word mute, lower-cased and trimmed: refused when empty, longer
    /// than [`MAX_MUTE_WORD`] bytes or holding a control character.
    pub fn word(word: &str) -> Result<Mute, MuteError> {
        let w = word.trim().to_lowercase();
        if w.is_empty() {
            return Err(MuteError::EmptyWord);
        }
        if w.len() > MAX_MUTE_WORD {
            return Err(MuteError::WordTooLong(w.len()));
        }
        if w.chars().any(char::is_control) {
            return Err(MuteError::ControlCharacter);
        }
        Ok(Mute::Word(w))
    }

    fn key(&self) -> Vec<u8> {
        let (kind, bytes): (u8, &[u8]) = match self {
            Mute::Word(w) => (MUTE_WORD, w.as_bytes()),
            Mute::Feed(f) => (MUTE_FEED, &f.0),
            Mute::Thread(m) => (MUTE_THREAD, &m.0),
        };
        let mut k = Vec::with_capacity(1 + bytes.len());
        k.push(kind);
        k.extend_from_slice(bytes);
        k
    }

    fn decode(k: &[u8]) -> Option<Mute> {
        let (kind, rest) = k.split_first()?;
        match *kind {
            MUTE_WORD => Some(Mute::Word(String::from_utf8(rest.to_vec()).ok()?)),
            MUTE_FEED => Some(Mute::Feed(FeedId(rest.try_into().ok()?))),
            MUTE_THREAD => Some(Mute::Thread(MsgId(rest.try_into().ok()?))),
            _ => None,
        }
    }
}

impl std::fmt::Display for Mute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mute::Word(w) => write!(f, "word {w:?}"),
            Mute::Feed(id) => write!(f, "feed {id}"),
            Mute::Thread(id) => write!(f, "thread {id}"),
        }
    }
}

/// Why a mute was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MuteError {
    /// Nothing to mute.
    #[error("the word to mute is empty")]
    EmptyWord,
    /// A word past [`MAX_MUTE_WORD`].
    #[error("the word to mute is {0} bytes long: at most {MAX_MUTE_WORD}")]
    WordTooLong(usize),
    /// A word with a control character.
    #[error("the word to mute holds a control character")]
    ControlCharacter,
    /// Already [`MAX_MUTES`].
    #[error("{MAX_MUTES} things are muted already: unmute some first")]
    Full,
}

/// Everything muted, as the read models use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mutes {
    /// Muted words, lower case.
    pub words: Vec<String>,
    /// Muted feeds.
    pub feeds: HashSet<FeedId>,
    /// Muted threads, by root.
    pub threads: HashSet<MsgId>,
}

impl Mutes {
    /// Whether nothing is muted.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.feeds.is_empty() && self.threads.is_empty()
    }

    /// The muted word `text` holds as a whole word (not inside a longer
    /// word), in any case, if any.
    pub fn word_in(&self, text: &str) -> Option<&str> {
        if self.words.is_empty() {
            return None;
        }
        let lower = text.to_lowercase();
        self.words
            .iter()
            .find(|w| holds_word(&lower, w))
            .map(String::as_str)
    }
}

/// Whether `text` holds `word` with no letter, digit or `_` right before
/// or after it.
fn holds_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

impl Store {
    /// Mutes `what` (again: keeps when it was first muted). Answers
    /// whether it is new.
    pub fn mute(&self, what: &Mute, now_ms: u64) -> Result<bool> {
        let txn = self.db().begin_write()?;
        let new = {
            let mut t = txn.open_table(MUTES)?;
            let key = what.key();
            if t.get(key.as_slice())?.is_some() {
                false
            } else {
                if redb::ReadableTableMetadata::len(&t)? as usize >= MAX_MUTES {
                    return Err(StoreError::Mute(MuteError::Full));
                }
                t.insert(key.as_slice(), now_ms)?;
                true
            }
        };
        txn.commit()?;
        Ok(new)
    }

    /// Unmutes `what`: answers whether it was muted.
    pub fn unmute(&self, what: &Mute) -> Result<bool> {
        let txn = self.db().begin_write()?;
        let was = txn
            .open_table(MUTES)?
            .remove(what.key().as_slice())?
            .is_some();
        txn.commit()?;
        Ok(was)
    }

    /// Everything muted, with when, in kind order (words, feeds, threads).
    pub fn mutes(&self) -> Result<Vec<(Mute, u64)>> {
        let txn = self.db().begin_read()?;
        let t = match txn.open_table(MUTES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for e in t.iter()? {
            let (k, v) = e?;
            if let Some(m) = Mute::decode(k.value()) {
                out.push((m, v.value()));
            }
        }
        Ok(out)
    }

    /// Everything muted, for the read models.
    pub(super) fn mute_set(txn: &redb::ReadTransaction) -> Result<Mutes> {
        let t = match txn.open_table(MUTES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Mutes::default()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Mutes::default();
        for e in t.iter()? {
            match Mute::decode(e?.0.value()) {
                Some(Mute::Word(w)) => out.words.push(w),
                Some(Mute::Feed(f)) => {
                    out.feeds.insert(f);
                }
                Some(Mute::Thread(m)) => {
                    out.threads.insert(m);
                }
                None => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_whole_and_in_any_case() {
        let m = Mutes {
            words: vec!["cat".into(), "hot dog".into()],
            ..Mutes::default()
        };
        assert_eq!(m.word_in("A CAT sat"), Some("cat"));
        assert_eq!(m.word_in("cat"), Some("cat"));
        assert_eq!(m.word_in("(cat)."), Some("cat"));
        assert_eq!(m.word_in("concatenate cats category"), None);
        assert_eq!(m.word_in("my Hot Dog!"), Some("hot dog"));
        assert_eq!(m.word_in("hotdog"), None);
        assert_eq!(m.word_in("über cat_x"), None);
    }

    #[test]
    fn bad_words_are_refused() {
        assert_eq!(Mute::word("  "), Err(MuteError::EmptyWord));
        assert_eq!(Mute::word(&"x".repeat(65)), Err(MuteError::WordTooLong(65)));
        assert_eq!(Mute::word("a\nb"), Err(MuteError::ControlCharacter));
        assert_eq!(Mute::word(" Cat "), Ok(Mute::Word("cat".into())));
        assert!(Mute::word(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn mutes_are_kept_listed_and_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        assert!(store.mutes().unwrap().is_empty());
        let feed = FeedId([7; 32]);
        assert!(store.mute(&Mute::Feed(feed), 5).unwrap());
        assert!(!store.mute(&Mute::Feed(feed), 9).unwrap());
        assert!(store.mute(&Mute::word("Cat").unwrap(), 6).unwrap());
        assert_eq!(
            store.mutes().unwrap(),
            vec![(Mute::Word("cat".into()), 6), (Mute::Feed(feed), 5)]
        );
        assert!(store.unmute(&Mute::Feed(feed)).unwrap());
        assert!(!store.unmute(&Mute::Feed(feed)).unwrap());
        assert_eq!(store.mutes().unwrap().len(), 1);
    }
}
