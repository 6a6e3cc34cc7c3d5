//! Attached to a running `shoal serve`: every call is one request on its
//! control socket (`shoal::local::request`), answered by the same command
//! layer the `shoal` CLI uses.
//!
//! The command layer has no "posts of one feed" query, so a person's posts
//! come from `log --author`: the feed's latest sequence is found with a few
//! one-message requests, then a window of messages below it is read and its
//! public posts kept (without reply and like counts). Reading commands mark
//! what they answer as read; the UI keeps its own unread marks until a
//! message is looked at. Imports `shoal` and `model`; never the UI.

use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use tokio::sync::broadcast;

use shoal::node::NodeEvent;

use super::{Backend, BackendError, Result, pretty};
use crate::model::{self, Cursor, GroupInfo, Post, Profile, Publish, Status, ThreadView};

/// A client of the node that owns the home.
pub struct Attached {
    home: PathBuf,
    me: String,
}

/// How many of a feed's messages one page of its posts looks through.
const WINDOW: u64 = 200;

impl Attached {
    /// Connects when a node answers on the home's control socket; `None`
    /// when none runs there.
    pub fn probe(home: &Path) -> Result<Option<Attached>> {
        let req = json!({"cmd": "whoami"});
        match shoal::local::request(home, &req, |_| {}, |_| {}) {
            Ok(None) => Ok(None),
            Ok(Some(Ok(v))) => {
                let me = v
                    .get("id")
                    .and_then(Json::as_str)
                    .ok_or_else(|| BackendError::Shape(format!("whoami answered {v}")))?;
                Ok(Some(Attached {
                    home: home.to_owned(),
                    me: me.to_string(),
                }))
            }
            Ok(Some(Err((_, e)))) => Err(BackendError::Refused(e)),
            Err(e) => Err(BackendError::Control(e)),
        }
    }

    /// One request: its answer and the output lines that came before it.
    fn ask(&self, req: &Json) -> Result<(Json, Vec<String>)> {
        let mut out = Vec::new();
        match shoal::local::request(&self.home, req, |l| out.push(l.to_string()), |_| {}) {
            Ok(Some(Ok(v))) => Ok((v, out)),
            Ok(Some(Err((_, e)))) => Err(BackendError::Refused(e)),
            Ok(None) => Err(BackendError::Gone),
            Err(e) => Err(BackendError::Control(e)),
        }
    }

    fn page(&self, cmd: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        let mut req = json!({"cmd": cmd, "limit": limit});
        if let Some((t, rx)) = before {
            req["before"] = json!([t, rx]);
        }
        let (v, _) = self.ask(&req)?;
        model::items(v).map_err(BackendError::Shape)
    }

    /// The feed's messages after sequence `since`, at most `limit`, as
    /// parsed `{key, value, timestamp}` lines.
    fn log(&self, id: &str, since: u64, limit: u64) -> Result<Vec<Json>> {
        let req = json!({"cmd": "log", "author": id, "since": since, "limit": limit});
        let (_, lines) = self.ask(&req)?;
        lines
            .iter()
            .map(|l| {
                serde_json::from_str(l).map_err(|e| BackendError::Shape(format!("log line: {e}")))
            })
            .collect()
    }

    /// The feed's latest sequence we hold (0 for none): doubling, then
    /// halving, with one-message requests.
    fn latest_seq(&self, id: &str) -> Result<u64> {
        let has_after = |s: u64| -> Result<bool> { Ok(!self.log(id, s, 1)?.is_empty()) };
        if !has_after(0)? {
            return Ok(0);
        }
        // Invariant: something after `lo`, nothing after `hi`.
        let (mut lo, mut hi) = (0u64, 1u64);
        while has_after(hi)? {
            lo = hi;
            hi = hi.saturating_mul(2);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if has_after(mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(hi)
    }
}

/// A public post from a `{key, value, timestamp}` line; `None` for other
/// messages. The cursor's second part is the feed sequence.
fn post_of_line(line: &Json, name: &Option<String>) -> Option<Post> {
    let value = line.get("value")?;
    let content = value.get("content")?;
    if content.get("type").and_then(Json::as_str) != Some("post") {
        return None;
    }
    let sequence = value.get("sequence").and_then(Json::as_u64)?;
    let received = line.get("timestamp").and_then(Json::as_f64).unwrap_or(0.0);
    let claimed = value
        .get("timestamp")
        .and_then(Json::as_f64)
        .unwrap_or(received);
    Some(Post {
        key: line.get("key")?.as_str()?.to_string(),
        author: value.get("author")?.as_str()?.to_string(),
        name: name.clone(),
        sequence,
        time: shoal::store::sort_time(Some(claimed), received),
        rx: sequence,
        kind: Some("post".into()),
        text: content
            .get("text")
            .and_then(Json::as_str)
            .map(str::to_string),
        root: content
            .get("root")
            .and_then(Json::as_str)
            .map(str::to_string),
        content: content.clone(),
        ..Post::default()
    })
}

impl Backend for Attached {
    fn me(&self) -> &str {
        &self.me
    }

    fn timeline(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        self.page("feed", before, limit)
    }

    fn inbox(&self, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        self.page("inbox", before, limit)
    }

    fn thread(&self, id: &str) -> Result<ThreadView> {
        let (v, _) = self.ask(&json!({"cmd": "thread", "id": id}))?;
        model::from_json(v).map_err(BackendError::Shape)
    }

    fn profile(&self, id: &str) -> Result<Profile> {
        let (v, _) = self.ask(&json!({"cmd": "profile", "id": id}))?;
        model::from_json(v).map_err(BackendError::Shape)
    }

    fn posts_by(&self, id: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        let name = self.profile(id)?.name;
        // Sequences strictly below `top`.
        let mut top = match before {
            Some((_, seq)) => seq,
            None => self.latest_seq(id)? + 1,
        };
        let mut out = Vec::new();
        while out.len() < limit && top > 1 {
            let since = top.saturating_sub(WINDOW + 1);
            let lines = self.log(id, since, top - 1 - since)?;
            let mut page: Vec<Post> = lines
                .iter()
                .filter_map(|l| post_of_line(l, &name))
                .collect();
            page.reverse();
            out.extend(page);
            top = since + 1;
        }
        out.truncate(limit);
        Ok(out)
    }

    fn raw(&self, id: &str) -> Result<String> {
        let (_, lines) = self.ask(&json!({"cmd": "get", "id": id}))?;
        let line = lines
            .first()
            .ok_or_else(|| BackendError::NotFound(id.to_string()))?;
        pretty(line.as_bytes())
    }

    fn groups(&self) -> Result<Vec<GroupInfo>> {
        let (v, _) = self.ask(&model::group_list_request())?;
        model::groups(v).map_err(BackendError::Shape)
    }

    fn group_posts(&self, group: &str, before: Option<Cursor>, limit: usize) -> Result<Vec<Post>> {
        let (v, _) = self.ask(&model::group_read_request(group, before, limit))?;
        model::items(v).map_err(BackendError::Shape)
    }

    fn publish(&self, what: &Publish) -> Result<String> {
        let (v, _) = self.ask(&what.request())?;
        v.get("key")
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| BackendError::Shape(format!("publish answered {v}")))
    }

    fn mark_read(&self, _rxs: &[u64]) -> Result<()> {
        // The node marked them read when it answered the page.
        Ok(())
    }

    fn status(&self) -> Result<Status> {
        let (v, _) = self.ask(&json!({"cmd": "status"}))?;
        model::from_json(v).map_err(BackendError::Shape)
    }

    fn watch(&self) -> Option<broadcast::Receiver<NodeEvent>> {
        None
    }

    fn describe(&self) -> String {
        format!(
            "attached to the shoal node running for {}",
            self.home.display()
        )
    }
}
