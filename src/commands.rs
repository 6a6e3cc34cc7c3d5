//! The social commands as JSON requests, answered the same way whether the
//! CLI opened the store itself or a running node answers through the
//! control socket: `reply`, `like`, `unlike`, `name`, `follow`, `unfollow`, `block`,
//! `dm` make content to publish; `feed`, `thread`, `inbox`, `contacts`,
//! `profile` and `get` read; `group-create`, `group-add`, `group-remove`
//! and `group-post` are group operations (made inside the write that
//! publishes them, see [`group_publish`]); `group-list`, `group-members` and
//! `group-read` read groups.
//!
//! A request is `{"cmd": NAME, …arguments}`; an answer is a JSON value, or
//! `(exit code, one-line reason)`. Synchronous over a [`Store`]; imports
//! `social`, `store`, `feed`, `crypto`; never networking.

use serde_json::{Value as Json, json};

use crate::crypto::{FeedId, MsgId};
use crate::feed::VerifiedMsg;
use crate::feed::content::Edge;
use crate::feed::json::Value;
use crate::social::{View, compose};
use crate::store::{GroupOp, Store, StoreError, StoredMsg};

/// A failure: exit code (1 problem, 2 usage) and one line for a person.
pub type Failure = (u8, String);

fn problem(e: impl std::fmt::Display) -> Failure {
    (1, e.to_string())
}

fn arg<'a>(req: &'a Json, k: &str) -> Result<&'a str, Failure> {
    req.get(k)
        .and_then(Json::as_str)
        .ok_or_else(|| (2, format!("missing argument {k:?}")))
}

fn feed_arg(req: &Json, k: &str) -> Result<FeedId, Failure> {
    let s = arg(req, k)?;
    FeedId::parse(s).ok_or_else(|| (2, format!("not a feed id: {s} (expected @….ed25519)")))
}

fn msg_arg(req: &Json, k: &str) -> Result<MsgId, Failure> {
    let s = arg(req, k)?;
    MsgId::parse(s).ok_or_else(|| (2, format!("not a message id: {s} (expected %….sha256)")))
}

fn me(store: &Store) -> Result<FeedId, Failure> {
    store
        .me()
        .ok_or_else(|| (1, "the store was opened without an identity".to_string()))
}

/// What a social command comes to.
#[derive(Debug)]
pub enum Social {
    /// Content to publish (the caller publishes it and answers its id).
    Publish(Value),
    /// The answer of a reading command.
    Answer(Json),
    /// A group operation (the caller runs [`group_publish`]).
    Group(GroupCmd),
}

/// A group operation asked for.
#[derive(Debug, Clone)]
pub enum GroupCmd {
    /// A new group with this name.
    Create(String),
    /// Any other operation.
    Op(GroupOp),
}

/// Runs a social command; `None` when `req` is not one.
pub fn handle(store: &Store, req: &Json) -> Option<Result<Social, Failure>> {
    if let Some(content) = compose(store, req) {
        return Some(content.map(Social::Publish));
    }
    if let Some(g) = group_cmd(req) {
        return Some(g.map(Social::Group));
    }
    query(store, req).map(|a| a.map(Social::Answer))
}

/// The content a publishing command asks for; `None` when `req` is not one.
pub fn compose(store: &Store, req: &Json) -> Option<Result<Value, Failure>> {
    let cmd = req.get("cmd").and_then(Json::as_str)?;
    content_for(store, req, cmd).transpose()
}

/// The content of publishing command `cmd`; `Ok(None)` for other commands.
fn content_for(store: &Store, req: &Json, cmd: &str) -> Result<Option<Value>, Failure> {
    let me = || me(store);
    let text = || arg(req, "text");
    Ok(Some(match cmd {
        "name" => compose::name(&me()?, arg(req, "name")?),
        "follow" => compose::contact(&feed_arg(req, "id")?, Edge::Follow),
        "unfollow" => compose::contact(&feed_arg(req, "id")?, Edge::None),
        "block" => compose::contact(&feed_arg(req, "id")?, Edge::Block),
        "reply" => {
            let r = store.reader().map_err(problem)?;
            compose::reply(&r, &me()?, &msg_arg(req, "id")?, text()?).map_err(compose_failure)?
        }
        "like" | "unlike" => {
            let r = store.reader().map_err(problem)?;
            compose::like(&r, &me()?, &msg_arg(req, "id")?, cmd == "like")
                .map_err(compose_failure)?
        }
        "dm" => {
            if req.get("to").and_then(Json::as_array).is_none() {
                return Err((2, "dm needs recipients".to_string()));
            }
            let to = feeds_arg(req, "to")?;
            compose::dm(&me()?, &to, text()?).map_err(compose_failure)?
        }
        _ => return Ok(None),
    }))
}

fn feeds_arg(req: &Json, k: &str) -> Result<Vec<FeedId>, Failure> {
    req.get(k)
        .and_then(Json::as_array)
        .ok_or_else(|| (2, format!("missing argument {k:?}")))?
        .iter()
        .map(|v| {
            let s = v.as_str().unwrap_or_default();
            FeedId::parse(s).ok_or_else(|| (2, format!("not a feed id: {s} (expected @….ed25519)")))
        })
        .collect()
}

/// The group operation a request asks for; `None` when it is not one.
fn group_cmd(req: &Json) -> Option<Result<GroupCmd, Failure>> {
    let cmd = req.get("cmd").and_then(Json::as_str)?;
    let group = || msg_arg(req, "group");
    let op = |op| Ok(GroupCmd::Op(op));
    Some(match cmd {
        "group-create" => arg(req, "name").and_then(|n| {
            if n.trim().is_empty() {
                Err((2, "the group name is empty".to_string()))
            } else {
                Ok(GroupCmd::Create(n.to_string()))
            }
        }),
        "group-add" => (|| {
            let members = feeds_arg(req, "members")?;
            let admin = req.get("admin").and_then(Json::as_bool).unwrap_or(false);
            op(GroupOp::Add {
                group: group()?,
                admins: if admin { members.clone() } else { Vec::new() },
                members,
            })
        })(),
        "group-remove" => (|| {
            op(GroupOp::Remove {
                group: group()?,
                members: feeds_arg(req, "members")?,
            })
        })(),
        "group-demote" => (|| {
            op(GroupOp::Demote {
                group: group()?,
                members: feeds_arg(req, "members")?,
            })
        })(),
        "group-promote" => (|| {
            op(GroupOp::Promote {
                group: group()?,
                members: feeds_arg(req, "members")?,
            })
        })(),
        "group-post" => (|| {
            op(GroupOp::Post {
                group: group()?,
                content: compose::post(arg(req, "text")?),
            })
        })(),
        _ => return None,
    })
}

fn store_failure(e: StoreError) -> Failure {
    use crate::private::groups::GroupError as G;
    use crate::store::GroupWriteError as W;
    match &e {
        StoreError::Group(W::Rule(
            G::NotAdmin(_) | G::NotSenior(_) | G::RemovesAuthor | G::NoNewMembers,
        )) => (2, e.to_string()),
        StoreError::Group(W::Rule(G::MissingKey(k))) => (
            1,
            format!(
                "cannot post yet: the key of epoch {k} has not reached us (it is asked for; an admin answers)"
            ),
        ),
        _ => (1, e.to_string()),
    }
}

/// Publishes a group operation with `write` (which stores it, through the
/// node when one runs): a creation is the epoch then, inside the group, an
/// `about` naming it. Answers the group id and the last message written.
pub fn group_publish(
    cmd: &GroupCmd,
    mut write: impl FnMut(&GroupOp) -> Result<Vec<VerifiedMsg>, StoreError>,
) -> Result<Json, Failure> {
    let last = |msgs: &[VerifiedMsg]| {
        msgs.last()
            .cloned()
            .ok_or((1, "nothing was written".to_string()))
    };
    match cmd {
        GroupCmd::Create(name) => {
            let created = last(&write(&GroupOp::Create).map_err(store_failure)?)?;
            let group = created.id();
            let mut about = crate::feed::Object::new();
            about.insert("type", Value::from("about"));
            about.insert("about", Value::from(group.to_string()));
            about.insert("name", Value::from(name.as_str()));
            write(&GroupOp::Post {
                group,
                content: Value::Object(about),
            })
            .map_err(store_failure)?;
            Ok(json!({"group": group.to_string(), "key": group.to_string()}))
        }
        GroupCmd::Op(op) => {
            let m = last(&write(op).map_err(store_failure)?)?;
            Ok(json!({
                "group": op.group().map(|g| g.to_string()),
                "key": m.id().to_string(),
                "sequence": m.sequence(),
            }))
        }
    }
}

fn compose_failure(e: compose::ComposeError) -> Failure {
    use compose::ComposeError::*;
    match e {
        NoRecipients | TooManyRecipients(_) => (2, e.to_string()),
        _ => (1, e.to_string()),
    }
}

/// The `{key, value, timestamp}` line of a message, with `"decrypted"`
/// content added when it is a box we opened.
pub fn message_line(store: &Store, m: &StoredMsg) -> Result<Vec<u8>, Failure> {
    let mut line = m.to_kvt();
    let r = store.reader().map_err(problem)?;
    if let Some(plain) = r.private_content(&m.key).map_err(problem)? {
        line.pop();
        line.extend_from_slice(b",\"decrypted\":");
        line.extend_from_slice(&crate::feed::json::to_compact(&plain));
        line.push(b'}');
    }
    Ok(line)
}

fn limit(req: &Json, default: usize) -> usize {
    req.get("limit")
        .and_then(Json::as_u64)
        .map_or(default, |n| n as usize)
        .min(10_000)
}

fn cursor(req: &Json) -> Option<(u64, u64)> {
    let b = req.get("before")?.as_array()?;
    Some((b.first()?.as_u64()?, b.get(1)?.as_u64()?))
}

/// Answers a reading command; `None` when `req` is not one. Items shown
/// by `feed`, `thread` and `inbox` are marked read.
pub fn query(store: &Store, req: &Json) -> Option<Result<Json, Failure>> {
    let cmd = req.get("cmd").and_then(Json::as_str)?;
    if !matches!(
        cmd,
        "feed"
            | "thread"
            | "inbox"
            | "contacts"
            | "profile"
            | "group-list"
            | "group-members"
            | "group-read"
    ) {
        return None;
    }
    let run = || -> Result<Json, Failure> {
        let r = store.reader().map_err(problem)?;
        let mut view = View::new(&r).map_err(problem)?;
        let (answer, shown): (Json, Vec<u64>) = match cmd {
            "feed" => {
                let items = view
                    .timeline(cursor(req), limit(req, 20))
                    .map_err(problem)?;
                let rxs = items.iter().map(|i| i.rx).collect();
                (json!({ "items": items }), rxs)
            }
            "inbox" => {
                let items = view.inbox(cursor(req), limit(req, 20)).map_err(problem)?;
                let rxs = items.iter().map(|i| i.rx).collect();
                (json!({ "items": items }), rxs)
            }
            "thread" => {
                let t = view.thread(&msg_arg(req, "id")?).map_err(problem)?;
                let rxs = t
                    .entries
                    .iter()
                    .filter_map(|e| match e {
                        crate::social::Entry::Message { item, .. } => Some(item.rx),
                        _ => None,
                    })
                    .collect();
                (serde_json::to_value(&t).map_err(problem)?, rxs)
            }
            "contacts" | "profile" => {
                let feed = match req.get("id").and_then(Json::as_str) {
                    Some(_) => feed_arg(req, "id")?,
                    None => me(store)?,
                };
                let v = if cmd == "contacts" {
                    let c = view.contacts(&feed).map_err(problem)?;
                    json!({ "id": feed.to_string(), "name": view.name(&feed).map_err(problem)?, "contacts": c })
                } else {
                    serde_json::to_value(view.profile(&feed).map_err(problem)?).map_err(problem)?
                };
                (v, Vec::new())
            }
            "group-list" => {
                let groups = store.groups().map_err(store_failure)?;
                (json!({ "groups": groups }), Vec::new())
            }
            "group-members" => {
                let g = store
                    .group(&msg_arg(req, "group")?)
                    .map_err(store_failure)?;
                (serde_json::to_value(g).map_err(problem)?, Vec::new())
            }
            "group-read" => {
                let group = msg_arg(req, "group")?;
                let info = store.group(&group).map_err(store_failure)?;
                let items = view
                    .group_posts(&group, cursor(req), limit(req, 20))
                    .map_err(problem)?;
                let rxs = items.iter().map(|i| i.rx).collect();
                (
                    json!({ "group": info.id, "name": info.name, "items": items }),
                    rxs,
                )
            }
            _ => unreachable!("checked above"),
        };
        drop(view);
        drop(r);
        if !shown.is_empty() {
            store.mark_read(&shown).map_err(problem)?;
        }
        Ok(answer)
    };
    Some(run())
}
