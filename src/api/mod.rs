//! The one typed API from the keyboard to the store: every command the
//! CLI and the terminal client give is a [`Request`], answered by
//! [`execute`] with a [`Response`] or an [`ApiError`].
//!
//! The same `execute` serves a `shoal` command that opened the home itself
//! (a [`Local`] host), a running node (the [`Host`] impl of
//! [`crate::node::Node`]), the control socket ([`crate::local`], which
//! carries these types as JSON lines) and the terminal client (in-process
//! or through that socket). The read models it answers with ([`Item`],
//! [`Thread`], [`Profile`], [`GroupInfo`], …) are defined once, in
//! `social` and `store`, and shared by all of them.
//!
//! Synchronous: called on blocking threads (a running node's async parts
//! are waited for here; redeeming an invite without a node runs its
//! network call on a thread of its own). Imports `node`, `home`, `invite`,
//! `net`, `ingest`, `social`, `store`, `feed` and `crypto`; nothing imports
//! it but `local` and the binaries.

mod error;
mod host;
mod storage;
mod types;

pub use error::ApiError;
pub use host::{Host, Local};
pub use types::{
    Attendant, Behind, BlobState, Event, FeedBytes, FeedProblem, FeedPruned, HopBytes, KnownPeer,
    MuteInfo, OwnFork, Partial, PeerClaim, PruneReport, Request, Response, RoomView, Status,
    Storage, Why,
};

use crate::crypto::BlobId;
use crate::feed::VerifiedMsg;
use crate::feed::json::{self as sjson, Value};
use crate::social::{View, compose};
use crate::store::{GroupOp, Mute, Store, StoredMsg};
use types::parse_content;

pub use crate::node::PeerInfo;
pub use crate::search::{
    Hit as SearchHit, Kind as SearchKind, Results as SearchResults, SearchQuery,
};
pub use crate::social::{Contacts, Entry, History, Item, Person, Profile, Thread};
pub use crate::store::{Cursor, EpochInfo, GroupInfo, PeerRecord};

/// The version of the wire form of requests and answers (the control
/// socket checks it on every line).
pub const VERSION: u32 = 1;

/// Most items one page answers.
pub const MAX_PAGE: usize = 10_000;

/// Where a request's streamed output goes: `log` lines, and lines for a
/// person (an import's rejections).
pub trait Sink {
    /// One output line (no newline). An error stops the request.
    fn out(&mut self, line: &[u8]) -> Result<(), ApiError>;
    /// One line for a person, beside the answer.
    fn note(&mut self, line: &str);
}

/// A sink that keeps nothing.
pub struct Discard;

impl Sink for Discard {
    fn out(&mut self, _: &[u8]) -> Result<(), ApiError> {
        Ok(())
    }
    fn note(&mut self, _: &str) {}
}

/// Adds the file at `path` to the blob store; a running node tells its
/// peers.
fn add_blob(host: &dyn Host, path: &std::path::Path) -> Result<(BlobId, u64), ApiError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| ApiError::Failed(format!("cannot open {}: {e}", path.display())))?;
    let (id, size) = host.blobs()?.add(&mut f)?;
    host.blob_added(&id, size);
    Ok((id, size))
}

/// What the store holds of a blob.
fn blob_state(host: &dyn Host, id: &BlobId) -> Result<BlobState, ApiError> {
    let blobs = host.blobs()?;
    let size = blobs.size(id);
    Ok(BlobState {
        id: *id,
        size,
        path: size.map(|_| blobs.path(id)),
        wanted: false,
    })
}

/// Copies a blob to `out`, whole or not at all (a temporary file beside it,
/// renamed).
fn copy_blob(
    blobs: &crate::blobs::Blobs,
    id: &BlobId,
    out: &std::path::Path,
) -> Result<(), ApiError> {
    let fail = |e: std::io::Error| ApiError::Failed(format!("cannot write {}: {e}", out.display()));
    let tmp = out.with_extension("shoal-partial");
    let mut from = blobs.open_blob(id)?;
    let mut to = std::fs::File::create(&tmp).map_err(fail)?;
    std::io::copy(&mut from, &mut to).map_err(fail)?;
    to.sync_data().map_err(fail)?;
    std::fs::rename(&tmp, out).map_err(fail)
}

/// What `target` mutes: with `word`, or when it is no id, a word; a feed
/// id (or URI) its feed; a message id the thread it is in (by its root:
/// the message itself when it is a root, or a forked thread's). A blob id,
/// or what looks like an id and is none, is refused.
fn mute_of(store: &Store, target: &str, word: bool) -> Result<Mute, ApiError> {
    let usage = |e: crate::store::MuteError| ApiError::Usage(e.to_string());
    if word {
        return Mute::word(target).map_err(usage);
    }
    let t = target.trim();
    if let Some(feed) = crate::uri::parse_feed(t) {
        return Ok(Mute::Feed(feed));
    }
    if let Some(id) = crate::uri::parse_msg(t) {
        let r = store.reader()?;
        return Ok(Mute::Thread(View::new(&r)?.thread_root(&id)?));
    }
    if crate::uri::parse_blob(t).is_some() {
        return Err(ApiError::Usage(format!(
            "{t} is a blob: mute a word, a feed or a thread (a message id)"
        )));
    }
    let looks_like_id = t.starts_with("ssb:")
        || ((t.starts_with('@') || t.starts_with('%') || t.starts_with('&'))
            && t.contains('=')
            && t.contains('.'));
    if looks_like_id {
        return Err(ApiError::Usage(format!(
            "{t:?} is no feed or message id shoal knows (give --word to mute it as a word)"
        )));
    }
    Mute::word(t).map_err(usage)
}

/// Mutes (`on`) or unmutes what `target` names.
fn set_mute(host: &dyn Host, target: &str, word: bool, on: bool) -> Result<Response, ApiError> {
    let mute = mute_of(host.store()?, target, word)?;
    let changed = host.set_mute(&mute, on)?;
    Ok(Response::Muted {
        mute: MuteInfo::of(&mute, 0),
        on,
        changed,
    })
}

/// Answers a request on a host: the one dispatcher of every command.
pub fn execute(host: &dyn Host, req: Request, sink: &mut dyn Sink) -> Result<Response, ApiError> {
    req.check()?;
    let me = || Ok::<_, ApiError>(host.id());
    let publish = |content: Value| -> Result<Response, ApiError> {
        let m = host.publish(content)?;
        Ok(Response::Published {
            key: m.id(),
            sequence: m.sequence(),
        })
    };
    let store = || host.store();
    match req {
        Request::Whoami => Ok(Response::Id { id: me()? }),
        Request::Address => Ok(Response::Address {
            address: host.address(),
        }),
        Request::Publish { content } => publish(parse_content(&content)?),
        Request::Post { text, attach } => {
            let mut attached = Vec::with_capacity(attach.len());
            for path in &attach {
                let (id, size) = add_blob(host, path)?;
                let name = path
                    .file_name()
                    .map_or_else(|| id.to_string(), |n| n.to_string_lossy().into_owned());
                attached.push(compose::Attachment {
                    id,
                    mime: compose::media_type(&name),
                    name,
                    size,
                });
            }
            publish(compose::post_with(&text, &attached))
        }
        Request::BlobAdd { path } => {
            let (id, _) = add_blob(host, &path)?;
            Ok(Response::Blob(blob_state(host, &id)?))
        }
        Request::BlobHas { id } => Ok(Response::Blob(blob_state(host, &id)?)),
        Request::BlobList => {
            let blobs = host.blobs()?;
            let list = blobs
                .list()?
                .into_iter()
                .map(|(id, size)| BlobState {
                    id,
                    size: Some(size),
                    path: Some(blobs.path(&id)),
                    wanted: false,
                })
                .collect();
            Ok(Response::Blobs { blobs: list })
        }
        Request::BlobGet { id, out, wait_secs } => {
            let blobs = host.blobs()?;
            let asked = blobs.size(&id).is_none()
                && host.want_blob(&id, std::time::Duration::from_secs(wait_secs));
            let state = BlobState {
                wanted: asked && blobs.size(&id).is_none(),
                ..blob_state(host, &id)?
            };
            if state.size.is_some() {
                blobs.touch(&id);
            }
            match (&out, state.size) {
                (Some(out), Some(_)) => copy_blob(blobs, &id, out)?,
                (Some(_), None) => {
                    return Err(ApiError::BlobMissing(
                        id,
                        if asked {
                            format!(" (asked the peers for it; not there within {wait_secs} s)")
                        } else {
                            " (and no node runs to ask peers for it)".into()
                        },
                    ));
                }
                _ => {}
            }
            Ok(Response::Blob(state))
        }
        Request::Name { name } => publish(compose::name(&me()?, &name)),
        Request::Follow { id } => {
            publish(compose::contact(&id, crate::feed::content::Edge::Follow))
        }
        Request::Unfollow { id } => {
            publish(compose::contact(&id, crate::feed::content::Edge::None))
        }
        Request::Block { id } => publish(compose::contact(&id, crate::feed::content::Edge::Block)),
        Request::Reply { id, text } => {
            let content = {
                let r = store()?.reader()?;
                compose::reply(&r, &me()?, &id, &text)?
            };
            publish(content)
        }
        Request::Like { id, undo } => {
            let content = {
                let r = store()?.reader()?;
                compose::like(&r, &me()?, &id, !undo)?
            };
            publish(content)
        }
        Request::Dm { to, text } => {
            // To every device of each recipient, and of ours.
            let me = me()?;
            let mut all = devices_of(host, &to)?;
            all.extend(devices_of(host, &[me])?.into_iter().filter(|d| *d != me));
            publish(compose::dm(&me, &all, &text)?)
        }
        Request::DeviceLink { feed } => {
            if feed == me()? {
                return Err(ApiError::Usage(
                    "that is this device: link the other device's feed".into(),
                ));
            }
            publish(compose::same_as(&feed, true))
        }
        Request::DeviceUnlink { feed } => publish(compose::same_as(&feed, false)),
        Request::Devices { feed } => {
            let feed = match feed {
                Some(f) => f,
                None => me()?,
            };
            let store = host.store()?;
            let r = store.reader()?;
            let found = r.devices(&feed)?;
            let mut view = crate::social::View::new(&r)?;
            let devices = found
                .person
                .iter()
                .map(|d| view.person(d))
                .collect::<Result<_, _>>()?;
            let one_sided = found
                .one_sided
                .iter()
                .map(|(a, b)| Ok((view.person(a)?, view.person(b)?)))
                .collect::<Result<_, crate::store::StoreError>>()?;
            Ok(Response::Devices { devices, one_sided })
        }
        Request::Feed { before, limit } => page(host, |v| v.timeline(before, limit.min(MAX_PAGE))),
        Request::Inbox { before, limit } => page(host, |v| v.inbox(before, limit.min(MAX_PAGE))),
        Request::PostsBy { id, before, limit } => {
            let r = store()?.reader()?;
            let mut view = View::new(&r)?;
            let mut items = Vec::new();
            for p in r.posts_before(&[id], before, limit.min(MAX_PAGE))? {
                if let Some(m) = r.at(p.rx)? {
                    let item = view.item(&m)?;
                    items.push(view.listed(item)?);
                }
            }
            Ok(Response::Items { items })
        }
        Request::Search(q) => Ok(Response::Search(host.search(&q)?)),
        Request::Searches { save, forget } => {
            let dir = host.home_dir();
            let mut searches = crate::home::saved_searches(dir);
            if save.is_some() || forget.is_some() {
                searches.retain(|s| Some(s) != forget.as_ref() && Some(s) != save.as_ref());
                if let Some(q) = save {
                    if q.len() > crate::search::MAX_QUERY_BYTES {
                        return Err(crate::search::SearchError::TooLong(q.len()).into());
                    }
                    searches.push(q);
                    // The oldest go first past the limit.
                    let over = searches
                        .len()
                        .saturating_sub(crate::home::MAX_SAVED_SEARCHES);
                    searches.drain(..over);
                }
                searches = crate::home::save_searches(dir, &searches)
                    .map_err(|e| ApiError::Failed(e.to_string()))?;
            }
            Ok(Response::Searches { searches })
        }
        Request::Thread { id } => {
            let thread = {
                let r = store()?.reader()?;
                View::new(&r)?.thread(&id)?
            };
            let shown: Vec<u64> = thread
                .entries
                .iter()
                .filter_map(|e| match e {
                    Entry::Message { item, .. } => Some(item.rx),
                    Entry::Missing { .. } | Entry::Muted { .. } => None,
                })
                .collect();
            host.mark_read(&shown)?;
            Ok(Response::Thread(thread))
        }
        Request::Mute { target, word } => set_mute(host, &target, word, true),
        Request::Unmute { target, word } => set_mute(host, &target, word, false),
        Request::Mutes => Ok(Response::Mutes {
            mutes: store()?
                .mutes()?
                .iter()
                .map(|(m, at)| MuteInfo::of(m, *at))
                .collect(),
        }),
        Request::Edit { id, text } => {
            let content = {
                let r = store()?.reader()?;
                compose::edit(&r, &me()?, &id, &text)?
            };
            publish(content)
        }
        Request::History { id } => {
            let r = store()?.reader()?;
            match View::new(&r)?.history(&id)? {
                Some(h) => Ok(Response::History(h)),
                None => Err(ApiError::NotFound(id)),
            }
        }
        Request::Contacts { id } => {
            let feed = match id {
                Some(f) => f,
                None => me()?,
            };
            let r = store()?.reader()?;
            let mut view = View::new(&r)?;
            Ok(Response::Contacts {
                id: feed,
                name: view.name(&feed)?,
                contacts: view.contacts(&feed)?,
            })
        }
        Request::Profile { id } => {
            let feed = match id {
                Some(f) => f,
                None => me()?,
            };
            let r = store()?.reader()?;
            Ok(Response::Profile(View::new(&r)?.profile(&feed)?))
        }
        Request::Get { id } => {
            let m = store()?.get(&id)?.ok_or(ApiError::NotFound(id))?;
            let line = message_line(store()?, &m)?;
            Ok(Response::Message {
                line: String::from_utf8_lossy(&line).into_owned(),
            })
        }
        Request::Log {
            author,
            since,
            limit,
        } => {
            const PAGE: u64 = 1000;
            let mut after = since;
            let mut left = limit.unwrap_or(u64::MAX);
            while left > 0 {
                let n = left.min(PAGE) as usize;
                let (page, next) = store()?.messages_after(author.as_ref(), after, n)?;
                for m in &page {
                    sink.out(&m.to_kvt())?;
                }
                after = next;
                left -= page.len() as u64;
                if page.len() < n {
                    break;
                }
            }
            Ok(Response::Done)
        }
        Request::Import { path } => {
            let s = host.import(&path, &mut |line, reason| {
                sink.note(&format!("rejected line {line}: {reason}"));
            })?;
            Ok(Response::Imported {
                imported: s.imported,
                rejected: s.rejected,
                duplicates: s.duplicates,
            })
        }
        Request::GroupCreate { name } => {
            let created = last(host.group_write(&GroupOp::Create)?)?;
            let group = created.id();
            let mut about = crate::feed::Object::new();
            about.insert("type", Value::from("about"));
            about.insert("about", Value::from(group.to_string()));
            about.insert("name", Value::from(name.as_str()));
            host.group_write(&GroupOp::Post {
                group,
                content: Value::Object(about),
            })?;
            Ok(Response::GroupCreated { group, key: group })
        }
        Request::GroupAdd {
            group,
            members,
            admin,
        } => {
            // Every device of each person added.
            let members = devices_of(host, &members)?;
            group_op(
                host,
                GroupOp::Add {
                    group,
                    admins: if admin { members.clone() } else { Vec::new() },
                    members,
                },
            )
        }
        Request::GroupRemove { group, members } => {
            group_op(host, GroupOp::Remove { group, members })
        }
        Request::GroupDemote { group, members } => {
            group_op(host, GroupOp::Demote { group, members })
        }
        Request::GroupPromote { group, members } => {
            group_op(host, GroupOp::Promote { group, members })
        }
        Request::GroupPost { group, text } => group_op(
            host,
            GroupOp::Post {
                group,
                content: compose::post(&text),
            },
        ),
        Request::GroupList => Ok(Response::Groups {
            groups: store()?.groups()?,
        }),
        Request::GroupMembers { group } => Ok(Response::Group(store()?.group(&group)?)),
        Request::GroupRead {
            group,
            before,
            limit,
        } => {
            let info = store()?.group(&group)?;
            let Response::Items { items } =
                page(host, |v| v.group_posts(&group, before, limit.min(MAX_PAGE)))?
            else {
                unreachable!("a page answers items")
            };
            Ok(Response::GroupPosts {
                group: info.id,
                name: info.name,
                items,
            })
        }
        Request::MarkRead { rxs } => {
            host.mark_read(&rxs)?;
            Ok(Response::Done)
        }
        Request::Connect { address } if types::is_alias_link(&address) => {
            let link = resolve_alias(&address)?;
            if link.user == me()? {
                return Err(ApiError::Usage(format!(
                    "{} is your own alias at {}",
                    link.alias, link.room
                )));
            }
            sink.note(&format!(
                "{} at {} is {} (signed by them): connecting through the room",
                link.alias, link.room, link.user
            ));
            host.connect_through(&link.address, link.user)
        }
        Request::Connect { address } => host.connect(&address),
        Request::Peers => host.peers(),
        Request::Rooms => rooms(host),
        Request::RoomInvite { room } => Ok(Response::RoomInvite {
            invite: host.room_invite(room)?,
        }),
        Request::RoomAlias {
            alias,
            room,
            revoke,
        } => {
            let link = host.room_alias(room, &alias, revoke)?;
            Ok(Response::RoomAlias { alias, room, link })
        }
        Request::RoomJoin { target } => {
            let address = match crate::uri::parse(&target) {
                Ok(crate::uri::Uri::Experimental { action, params })
                    if action == "claim-http-invite" =>
                {
                    claim_room_invite(&host.id(), &params)?
                }
                _ => target,
            };
            host.connect(&address)
        }
        Request::Status => Ok(Response::Status(host.status()?)),
        Request::RestoreDone { confirmed } => {
            let store = host.store()?;
            let hold = store.own_hold()?;
            if let Some(hold) = hold.filter(|_| !confirmed) {
                return Err(ApiError::Failed(format!(
                    "publishing is held ({hold}). Publishing now, before our feed has come back from a peer that holds it, can fork it for good if this identity published before: say `--yes` only if it never did, or every peer that had it is gone"
                )));
            }
            let was = store.release_own_holds()?;
            Ok(Response::Restored {
                was: was.map(|w| w.to_string()),
            })
        }
        Request::Uri { text } => uri(&text),
        Request::Why { id } => why(host, &id),
        Request::Storage => storage::storage(host),
        Request::Prune { dry_run } => storage::prune(host, dry_run),
        Request::Compact => storage::compact(host),
        Request::InviteAccept { code } => {
            let code = types::parse_code(&code)?;
            if code.pub_addr.key == me()? {
                return Err(ApiError::Usage(
                    "this is an invite of your own identity: give it to someone else".into(),
                ));
            }
            host.use_invite(&code)?;
            let a = &code.pub_addr;
            let follow = host.publish(compose::pub_follow(&a.key))?.id();
            let announcement = host
                .publish(compose::pub_announcement(&a.host, a.port, &a.key))?
                .id();
            let dialling = host.keep_invited(&a.to_string())?;
            Ok(Response::InviteAccepted {
                pub_id: a.key,
                address: a.to_string(),
                follow,
                announcement,
                dialling,
            })
        }
        Request::InviteCreate {
            uses,
            note,
            external,
        } => {
            let external = external.as_deref().map(types::parse_external).transpose()?;
            let code =
                host.create_invite(uses, note.as_deref().unwrap_or(""), external.as_ref())?;
            let host_name = &code.pub_addr.host;
            if let Ok(ip) = host_name.parse::<std::net::IpAddr>()
                && !crate::net::scope::is_public(ip)
            {
                sink.note(&format!(
                    "the code names {host_name}, not a public address: only peers that reach the node there can redeem it (--external HOST[:PORT] names another)"
                ));
            }
            Ok(Response::Invite {
                code: code.to_string(),
                uses,
            })
        }
    }
}

/// Why a feed replicates or not: the store says whether we want it and
/// what we hold; a running node adds what its peers claim and the last
/// error.
/// Claims a rooms 2.0 invite (`invite` and `postTo` of its link) for
/// `me`: POSTs `{id, invite}` to `postTo` and answers the room's
/// multiserver address.
fn claim_room_invite(
    me: &crate::crypto::FeedId,
    params: &[(String, String)],
) -> Result<String, ApiError> {
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(token), Some(post_to)) = (param("invite"), param("postTo")) else {
        return Err(ApiError::Usage(
            "a claim-http-invite link needs `invite` and `postTo`".into(),
        ));
    };
    if !(post_to.starts_with("http://") || post_to.starts_with("https://")) {
        return Err(ApiError::Usage(format!(
            "postTo is not an http(s) URL: {post_to}"
        )));
    }
    let body = serde_json::json!({"id": me.to_string(), "invite": token});
    let answer = room_json(&post_to, |agent| agent.post(&post_to).send_json(&body))?;
    match answer.get("multiserverAddress").and_then(|a| a.as_str()) {
        Some(address) if answer["status"] == "successful" => Ok(address.to_string()),
        _ => Err(ApiError::Failed(format!(
            "the room refused the invite: {}",
            answer["error"].as_str().unwrap_or("no reason given")
        ))),
    }
}

/// Each of `feeds` and its linked devices, each once, in order.
fn devices_of(
    host: &dyn Host,
    feeds: &[crate::crypto::FeedId],
) -> Result<Vec<crate::crypto::FeedId>, ApiError> {
    let r = host.store()?.reader()?;
    let mut out: Vec<crate::crypto::FeedId> = Vec::new();
    for f in feeds {
        for d in r.devices(f)?.person {
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// What a room alias names, its signature checked: from its
/// `consume-alias` link, or from its room's alias page (`http(s)://…`,
/// asked for `?encoding=json`).
fn resolve_alias(text: &str) -> Result<crate::room::AliasLink, ApiError> {
    if let Ok(crate::uri::Uri::Experimental { params, .. }) = crate::uri::parse(text) {
        return crate::room::AliasLink::from_params(&params).map_err(ApiError::Usage);
    }
    let url = if text.contains('?') {
        format!("{text}&encoding=json")
    } else {
        format!("{text}?encoding=json")
    };
    let answer = room_json(text, |agent| agent.get(&url).call())?;
    crate::room::AliasLink::from_json(&answer).map_err(ApiError::Failed)
}

/// One request to a room's HTTP endpoint at `at` (made by `send`, within
/// 30 s, whatever its status): its answer, JSON of at most 64 KiB.
fn room_json(
    at: &str,
    send: impl FnOnce(&ureq::Agent) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<serde_json::Value, ApiError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = send(&agent)
        .map_err(|e| ApiError::Failed(format!("cannot reach the room at {at}: {e}")))?;
    answer
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_json()
        .map_err(|e| ApiError::Failed(format!("the room's answer is not JSON: {e}")))
}

/// The rooms we are in, each attendant with a name, whether we follow
/// them and whether we are connected to them.
fn rooms(host: &dyn Host) -> Result<Response, ApiError> {
    let rooms = host.rooms();
    if rooms.is_empty() {
        return Ok(Response::Rooms { rooms: Vec::new() });
    }
    let store = host.store()?;
    let me = host.id();
    let following: std::collections::HashSet<crate::crypto::FeedId> = store
        .contacts_of(&me)?
        .into_iter()
        .filter(|(_, c)| *c == crate::store::Contact::Follow)
        .map(|(f, _)| f)
        .collect();
    let connected: std::collections::HashSet<String> = match host.peers()? {
        Response::Peers { connected, .. } => connected.into_iter().map(|p| p.id).collect(),
        _ => Default::default(),
    };
    let reader = store.reader()?;
    let mut view = View::new(&reader)?;
    let mut out = Vec::new();
    for (room, ids) in rooms {
        let mut attendants = Vec::new();
        for id in ids.into_iter().filter(|id| *id != me) {
            attendants.push(Attendant {
                name: view.name(&id)?,
                following: following.contains(&id),
                connected: connected.contains(&id.to_string()),
                id,
            });
        }
        out.push(RoomView { room, attendants });
    }
    Ok(Response::Rooms { rooms: out })
}

fn why(host: &dyn Host, feed: &crate::crypto::FeedId) -> Result<Response, ApiError> {
    let store = host.store()?;
    let me = host.id();
    let hops = host.hops();
    let blocked = store
        .contacts_of(&me)?
        .iter()
        .any(|(f, c)| f == feed && *c == crate::store::Contact::Block);
    let path = store.follow_path(&me, feed, hops)?.unwrap_or_default();
    let latest = store.latest(feed)?;
    let last_moved_ms = match &latest {
        Some(s) => store.get(&s.id)?.map(|m| m.received as u64),
        None => None,
    };
    let watch = host.watch();
    let peers = watch
        .map(|w| {
            w.claims_of(feed)
                .into_iter()
                .map(|c| PeerClaim {
                    peer: c.peer.to_string(),
                    seq: c.seq,
                    since_ms: c.since_ms,
                })
                .collect()
        })
        .unwrap_or_default();
    let last_error = watch.and_then(|w| w.last_error(feed)).map(|e| FeedProblem {
        peer: e.peer.to_string(),
        reason: e.reason,
        at_ms: e.at_ms,
    });
    Ok(Response::Why(Why {
        id: feed.to_string(),
        wanted: !path.is_empty(),
        blocked,
        path: path.iter().map(|f| f.to_string()).collect(),
        hops,
        held: latest.map_or(0, |s| s.sequence),
        held_from: host.store()?.held_range(feed)?.map(|r| r.from),
        pruned: host.store()?.reader()?.is_pruned(feed)?,
        last_moved_ms,
        running: watch.is_some(),
        peers,
        last_error,
    }))
}

/// The answer to [`Request::Uri`], which needs no home: a command may
/// give it without one.
pub fn uri(text: &str) -> Result<Response, ApiError> {
    let uri = crate::uri::of(text).map_err(|e| ApiError::Usage(e.to_string()))?;
    Ok(Response::Uri {
        uri: uri.to_string(),
    })
}

/// A page of items from a view; what it shows is marked read.
fn page(
    host: &dyn Host,
    read: impl FnOnce(&mut View<'_>) -> crate::store::Result<Vec<Item>>,
) -> Result<Response, ApiError> {
    let items = {
        let r = host.store()?.reader()?;
        let mut view = View::new(&r)?;
        read(&mut view)?
    };
    let shown: Vec<u64> = items.iter().map(|i| i.rx).collect();
    host.mark_read(&shown)?;
    Ok(Response::Items { items })
}

fn last(msgs: Vec<VerifiedMsg>) -> Result<VerifiedMsg, ApiError> {
    msgs.last()
        .cloned()
        .ok_or_else(|| ApiError::Failed("nothing was written".into()))
}

fn group_op(host: &dyn Host, op: GroupOp) -> Result<Response, ApiError> {
    let m = last(host.group_write(&op)?)?;
    Ok(Response::GroupWritten {
        group: op.group(),
        key: m.id(),
        sequence: m.sequence(),
    })
}

/// The `{key, value, timestamp}` line of a message, with `"decrypted"`
/// content added when it is a box we opened.
pub fn message_line(store: &Store, m: &StoredMsg) -> Result<Vec<u8>, ApiError> {
    let mut line = m.to_kvt();
    let r = store.reader()?;
    if let Some(plain) = r.private_content(&m.key)? {
        line.pop();
        line.extend_from_slice(b",\"decrypted\":");
        line.extend_from_slice(&sjson::to_compact(&plain));
        line.push(b'}');
    }
    Ok(line)
}

#[cfg(test)]
mod tests;
