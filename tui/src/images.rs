//! Pictures in posts as the client knows them: which blobs were asked of
//! the node, which are on their way from peers, which are being decoded,
//! which are ready to draw (and in how many cells), and why one cannot be
//! shown. Each blob is asked for once; a blob that arrives later (the
//! node's `Event::Blob`) is asked for again.
//!
//! Bounded: at most [`MAX_KNOWN`] blobs remembered and [`MAX_READY`]
//! pictures kept ready (the oldest go first and are asked for again when
//! shown again). Pure bookkeeping over what the runtime reports; the
//! decoding itself is [`picture`](crate::picture)'s. Imports `markdown`
//! (how a picture is shown), `model` and the picture type of
//! `ratatui-image`; never the backend, the terminal or I/O.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use ratatui_image::sliced::SlicedProtocol;

use crate::markdown::Picture;
use crate::model::BlobState;

/// The most blobs remembered.
pub const MAX_KNOWN: usize = 256;

/// The most pictures kept ready to draw.
pub const MAX_READY: usize = 32;

/// The largest blob decoded, in bytes: the store's default blob limit.
pub const MAX_BYTES: u64 = 5 * 1024 * 1024;

/// A picture ready to draw: the terminal's data for it and its size in
/// cells.
#[derive(Clone)]
pub struct Ready {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// What the terminal is sent.
    pub proto: Arc<SlicedProtocol>,
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ready({}x{})", self.cols, self.rows)
    }
}

impl PartialEq for Ready {
    fn eq(&self, other: &Ready) -> bool {
        (self.cols, self.rows) == (other.cols, other.rows) && Arc::ptr_eq(&self.proto, &other.proto)
    }
}

/// Where a blob's picture is.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Asked of the node.
    Asked,
    /// Not held: the node asks peers for it.
    Fetching,
    /// Held, being decoded.
    Decoding,
    /// Ready to draw.
    Ready(Ready),
    /// It cannot be shown, and why.
    Failed(String),
}

/// The pictures known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Images {
    states: HashMap<String, State>,
    /// Blobs in the order they were first asked for.
    order: VecDeque<String>,
}

impl Images {
    /// Where a blob's picture is, if it was asked for.
    pub fn get(&self, id: &str) -> Option<&State> {
        self.states.get(id)
    }

    /// A picture ready to draw.
    pub fn ready(&self, id: &str) -> Option<&Ready> {
        match self.states.get(id) {
            Some(State::Ready(r)) => Some(r),
            _ => None,
        }
    }

    /// How a blob's picture is shown now.
    pub fn shown(&self, id: &str) -> Picture {
        match self.states.get(id) {
            None => Picture::Placeholder,
            Some(State::Asked | State::Fetching | State::Decoding) => Picture::Fetching,
            Some(State::Ready(r)) => Picture::Drawn {
                cols: r.cols as usize,
                rows: r.rows as usize,
            },
            Some(State::Failed(why)) => Picture::Failed(why.clone()),
        }
    }

    fn set(&mut self, id: &str, state: State) {
        if !self.states.contains_key(id) {
            while self.order.len() >= MAX_KNOWN {
                if let Some(old) = self.order.pop_front() {
                    self.states.remove(&old);
                }
            }
            self.order.push_back(id.to_string());
        }
        self.states.insert(id.to_string(), state);
    }

    /// Whether to ask the node for a blob: once, unless it was forgotten.
    pub fn ask(&mut self, id: &str) -> bool {
        if self.states.contains_key(id) {
            return false;
        }
        self.set(id, State::Asked);
        true
    }

    /// What the node said of a blob; answers the file to decode, when it
    /// is held and not too large.
    pub fn on_blob(&mut self, id: &str, result: Result<BlobState, String>) -> Option<PathBuf> {
        let state = match result {
            Err(e) => State::Failed(e),
            Ok(b) => match (b.path, b.size) {
                (Some(_), Some(size)) if size > MAX_BYTES => State::Failed(format!(
                    "{} KB, larger than the {} KB limit",
                    size / 1024,
                    MAX_BYTES / 1024
                )),
                (Some(path), _) => {
                    self.set(id, State::Decoding);
                    return Some(path);
                }
                (None, _) if b.wanted => State::Fetching,
                (None, _) => State::Failed("not held, and no node is fetching it".into()),
            },
        };
        self.set(id, state);
        None
    }

    /// A blob arrived: whether to ask for it again (it was on its way or
    /// missing).
    pub fn on_arrived(&mut self, id: &str) -> bool {
        match self.states.get(id) {
            Some(State::Fetching | State::Failed(_)) => {
                self.set(id, State::Asked);
                true
            }
            _ => false,
        }
    }

    /// A picture decoded, or why not. The oldest ready pictures beyond
    /// [`MAX_READY`] are forgotten.
    pub fn on_decoded(&mut self, id: &str, result: Result<Ready, String>) {
        if !self.states.contains_key(id) {
            return;
        }
        match result {
            Ok(r) => {
                self.set(id, State::Ready(r));
                let ready: Vec<String> = self
                    .order
                    .iter()
                    .filter(|k| matches!(self.states.get(*k), Some(State::Ready(_))))
                    .cloned()
                    .collect();
                for old in ready.iter().take(ready.len().saturating_sub(MAX_READY)) {
                    self.states.remove(old);
                    self.order.retain(|k| k != old);
                }
            }
            Err(e) => self.set(id, State::Failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal::crypto::BlobId;

    const BLOB: &str = "&sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n/OJGSC1U=.sha256";

    fn state(path: Option<&str>, size: Option<u64>, wanted: bool) -> BlobState {
        BlobState {
            id: BlobId::parse(BLOB).expect("blob id"),
            size,
            path: path.map(PathBuf::from),
            wanted,
        }
    }

    #[test]
    fn asked_once_fetched_then_decoded() {
        let mut i = Images::default();
        assert_eq!(i.shown(BLOB), Picture::Placeholder);
        assert!(i.ask(BLOB));
        assert!(!i.ask(BLOB));
        assert_eq!(i.shown(BLOB), Picture::Fetching);
        assert_eq!(i.on_blob(BLOB, Ok(state(None, None, true))), None);
        assert_eq!(i.get(BLOB), Some(&State::Fetching));
        assert!(i.on_arrived(BLOB));
        assert!(!i.on_arrived(BLOB));
        assert_eq!(
            i.on_blob(BLOB, Ok(state(Some("/b"), Some(10), false))),
            Some(PathBuf::from("/b"))
        );
        i.on_decoded(BLOB, Err("malformed".into()));
        assert_eq!(i.shown(BLOB), Picture::Failed("malformed".into()));
    }

    #[test]
    fn too_large_or_missing_blobs_fail() {
        let mut i = Images::default();
        i.ask(BLOB);
        assert_eq!(
            i.on_blob(BLOB, Ok(state(Some("/b"), Some(MAX_BYTES + 1), false))),
            None
        );
        assert!(matches!(i.shown(BLOB), Picture::Failed(w) if w.contains("limit")));
        let mut i = Images::default();
        i.ask(BLOB);
        i.on_blob(BLOB, Ok(state(None, None, false)));
        assert!(matches!(i.shown(BLOB), Picture::Failed(_)));
    }

    #[test]
    fn memory_is_bounded() {
        let mut i = Images::default();
        for n in 0..MAX_KNOWN * 2 {
            assert!(i.ask(&format!("&{n}")));
        }
        assert_eq!(i.states.len(), MAX_KNOWN);
        assert_eq!(i.order.len(), MAX_KNOWN);
    }
}
