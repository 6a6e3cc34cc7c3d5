//! What comes back: loaded pages applied to their screens (and the unread
//! marks and names they teach), blobs and pictures for the thread, files
//! handed to the opener or to attach, the answer to a publish, node notes
//! (log lines, status samples, problems, blobs that arrived, "everything
//! is stale"), and what asks for loads again: a reload of the current tab,
//! a refresh of everything.
//!
//! Part of the pure core: imports `event`, `model`, `screens`, `text`;
//! never the backend, the terminal, tokio or the node.

use super::{App, Overlay};
use crate::compose::Target;
use crate::event::{Effect, Loaded, Note};
use crate::model::EntryView as _;
use crate::model::{Post, Profile, Publish};
use crate::screens::Tab;
use crate::text;

/// The most files attached to one post.
const MAX_ATTACHED: usize = 8;

/// How far back status samples go for rates, ms.
const RATE_WINDOW_MS: u64 = 10_000;

impl App {
    /// Reloads what the current tab shows, from the newest.
    pub(super) fn reload(&mut self) -> Vec<Effect> {
        match self.tab {
            Tab::Timeline => {
                self.timeline = Default::default();
                self.timeline.refresh()
            }
            Tab::Thread => self.thread.reload(),
            Tab::Messages => {
                let open = self.messages.open.take();
                self.messages = Default::default();
                self.messages.open = open;
                self.messages.refresh()
            }
            Tab::Groups => {
                let focus = self.groups.focus_posts;
                let keep = self.groups.selected().map(|g| g.id.clone());
                self.groups = Default::default();
                self.groups.focus_posts = focus;
                self.groups.select_when_listed = keep;
                self.groups.refresh()
            }
            Tab::Contacts => {
                let mut e = vec![Effect::LoadProfile(self.me.clone()), Effect::LoadRooms];
                e.extend(self.contacts.refresh_person());
                e
            }
            Tab::Log => Vec::new(),
        }
    }

    /// Everything shown may be out of date: reload what is loaded.
    fn refresh_all(&mut self) -> Vec<Effect> {
        let mut e = self.timeline.refresh();
        if self.messages.list.loaded {
            e.extend(self.messages.refresh());
        }
        e.extend(self.thread.reload());
        if self.groups.loaded || self.tab == Tab::Groups {
            e.extend(self.groups.refresh());
        }
        e.push(Effect::LoadProfile(self.me.clone()));
        e.extend(self.contacts.refresh_person());
        e
    }

    /// Applies a loaded page (or why it did not load) to its screen.
    pub(super) fn on_loaded(&mut self, loaded: Loaded) -> Vec<Effect> {
        let body = self.body();
        match loaded {
            Loaded::Timeline { page, result } => {
                self.take_posts("loading the timeline", &result);
                self.timeline.on_page(page, result, body)
            }
            Loaded::Inbox { page, result } => {
                self.take_posts("loading private messages", &result);
                self.messages.on_page(page, result, &ctx!(self), body)
            }
            Loaded::Thread { id, result } => {
                match &result {
                    Ok(t) => {
                        let posts: Vec<Post> =
                            t.entries.iter().filter_map(|e| e.post().cloned()).collect();
                        self.learn(&posts);
                    }
                    Err(e) => self.fail("loading the thread", e),
                }
                let mut effects = self.thread.on_loaded(&id, result, body, &ctx!(self));
                if self.tab == Tab::Thread {
                    effects.extend(self.read_thread());
                }
                effects.extend(self.want_pictures());
                effects
            }
            Loaded::Profile { id, result, why } => {
                self.contacts.on_why(&id, why.map(|w| *w));
                self.on_profile(&id, result.map(|p| *p));
                Vec::new()
            }
            Loaded::PostsBy { id, page, result } => {
                self.take_posts("loading posts", &result);
                self.contacts.on_posts(&id, page, result, body)
            }
            Loaded::Rooms { result } => {
                if let Err(e) = &result {
                    self.fail("loading rooms", e);
                }
                self.contacts.on_rooms(result, body);
                Vec::new()
            }
            Loaded::Groups { result } => {
                if let Err(e) = &result {
                    self.fail("loading groups", e);
                }
                self.groups.on_groups(result, body)
            }
            Loaded::GroupPosts {
                group,
                page,
                result,
            } => {
                self.take_posts("loading group posts", &result);
                self.groups.on_posts(&group, page, result, body)
            }
            Loaded::Search { query, result } => {
                if let Some(Overlay::Search {
                    query: want,
                    hits,
                    literal,
                    ..
                }) = &mut self.overlay
                    && *want == query
                {
                    *literal = result.as_ref().is_ok_and(|r| r.literal);
                    *hits =
                        Some(result.map(|r| r.hits.into_iter().map(super::Found::from).collect()));
                }
                Vec::new()
            }
            Loaded::Searches { saved, result } => {
                match result {
                    Err(e) => self.fail("saved searches", &e),
                    Ok(searches) => {
                        if let Some(q) = saved {
                            self.notify(format!(
                                "saved “{}”: S lists saved searches",
                                text::one_line(&q)
                            ));
                        } else if searches.is_empty() {
                            self.notify("no saved searches: / to search, then w to save it");
                            if matches!(self.overlay, Some(Overlay::Saved { .. })) {
                                self.overlay = None;
                            }
                        } else if self.overlay.is_none()
                            || matches!(self.overlay, Some(Overlay::Saved { .. }))
                        {
                            let selected = match &self.overlay {
                                Some(Overlay::Saved { selected, .. }) => {
                                    (*selected).min(searches.len() - 1)
                                }
                                _ => 0,
                            };
                            self.overlay = Some(Overlay::Saved { searches, selected });
                        }
                    }
                }
                Vec::new()
            }
            Loaded::Raw { id, result } => {
                if let Some(Overlay::Raw { id: want, text, .. }) = &mut self.overlay
                    && *want == id
                {
                    *text =
                        Some(result.map(|s| text::clean(&s).lines().map(str::to_string).collect()));
                }
                Vec::new()
            }
            Loaded::Muted { what, result } => match result {
                Ok(true) => {
                    self.notify(format!(
                        "muted {} (here only, never published; the same key unmutes)",
                        text::one_line(&what)
                    ));
                    self.reload()
                }
                Ok(false) => {
                    self.notify(format!("unmuted {}", text::one_line(&what)));
                    self.reload()
                }
                Err(e) => {
                    self.fail("could not mute", &e);
                    Vec::new()
                }
            },
            Loaded::Published {
                what,
                draft,
                result,
            } => self.on_published(what, draft, result),
            Loaded::Blob { id, result } => {
                let decode = self.images.on_blob(&id, result);
                self.thread.fit(body, &ctx!(self));
                decode
                    .map(|path| Effect::Decode { id, path })
                    .into_iter()
                    .collect()
            }
            Loaded::Picture { id, result } => {
                self.images.on_decoded(&id, result);
                self.thread.fit(body, &ctx!(self));
                Vec::new()
            }
            Loaded::Opened { what, result } => {
                match result {
                    Ok(()) => self.notify(format!("opened {}", text::one_line(&what))),
                    Err(e) => self.fail(&format!("opening {}", text::one_line(&what)), &e),
                }
                Vec::new()
            }
            Loaded::Attached { result } => {
                match result {
                    Ok(path) => {
                        let name = super::input::file_name(&path);
                        if self.attached.contains(&path) {
                            self.notify(format!("{name} is attached already"));
                        } else if self.attached.len() >= MAX_ATTACHED {
                            self.notify(format!("at most {MAX_ATTACHED} files a post"));
                        } else {
                            self.attached.push(path);
                            self.notify(format!("attached {name}"));
                        }
                    }
                    Err(e) => self.notify(format!("cannot attach: {}", text::one_line(&e))),
                }
                Vec::new()
            }
        }
    }

    /// Learns from loaded posts (unread marks, names), or logs why they did
    /// not load.
    fn take_posts(&mut self, what: &str, result: &Result<Vec<Post>, String>) {
        match result {
            Ok(posts) => self.learn(posts),
            Err(e) => self.fail(what, e),
        }
    }

    /// A loaded profile: the names it holds, whom we follow when it is
    /// ours, and the contacts screen.
    fn on_profile(&mut self, id: &str, result: Result<Profile, String>) {
        let body = self.body();
        match &result {
            Ok(p) => {
                self.remember_people(&p.contacts.follows);
                self.remember_people(&p.contacts.followers);
                self.remember_people(&p.contacts.blocks);
                if let Some(n) = &p.name {
                    self.names.insert(p.id.clone(), n.clone());
                }
                if id == self.me {
                    self.following = p.contacts.follows.iter().map(|f| f.id.clone()).collect();
                }
            }
            Err(e) => self.fail("loading a profile", e),
        }
        if id == self.me {
            self.contacts.on_mine(result.clone(), body);
        }
        self.contacts.on_profile(id, result);
    }

    /// A publish finished: on success the draft it came from goes and what
    /// it changes is reloaded; on failure the draft stays and the log says
    /// why.
    fn on_published(
        &mut self,
        what: Publish,
        draft: Option<(Target, String)>,
        result: Result<String, String>,
    ) -> Vec<Effect> {
        match result {
            Ok(key) => {
                if let Publish::Post { attach, .. } = &what {
                    self.attached.retain(|a| !attach.contains(a));
                }
                if let Some((target, sent)) = draft
                    && self.drafts.get(&target).is_some_and(|e| e.text() == sent)
                {
                    self.drafts.remove(&target);
                }
                self.notify(format!("{} {}", what.done(), text::short_id(&key)));
                if let Publish::GroupCreate { .. } = what {
                    // The answer's key is the new group's id.
                    self.groups.select_when_listed = Some(key.clone());
                }
                let mut e = self.refresh_all();
                if what.is_group() && !e.contains(&Effect::LoadGroups) {
                    e.extend(self.groups.refresh());
                }
                if what.is_contact() {
                    e.push(Effect::LoadProfile(self.me.clone()));
                    e.extend(self.load_rooms());
                }
                e
            }
            Err(err) => {
                let kept = if draft.is_some() {
                    " (the draft is kept: open the same compose again to retry)"
                } else {
                    ""
                };
                self.fail(&format!("not {}{kept}", what.done()), &err);
                Vec::new()
            }
        }
    }

    /// Reloads the rooms and their attendants when they are shown or were
    /// loaded before.
    pub(super) fn load_rooms(&mut self) -> Vec<Effect> {
        if self.tab == Tab::Contacts || self.contacts.rooms.is_some() {
            vec![Effect::LoadRooms]
        } else {
            Vec::new()
        }
    }

    /// A note from the node: staleness, a log line, a status, a problem.
    pub(super) fn on_note(&mut self, note: Note) -> Vec<Effect> {
        match note {
            Note::Stale => self.refresh_all(),
            Note::Log(line) => {
                let body = self.body();
                self.log.push(self.now, line, false, body);
                Vec::new()
            }
            Note::Status(Ok(s)) => {
                self.status
                    .samples
                    .push_back((self.now, s.messages, s.feeds_held));
                while self
                    .status
                    .samples
                    .front()
                    .is_some_and(|(t, ..)| t + RATE_WINDOW_MS < self.now)
                {
                    self.status.samples.pop_front();
                }
                self.status.status = Some(*s);
                Vec::new()
            }
            Note::Status(Err(e)) => {
                self.fail("status", &e);
                Vec::new()
            }
            Note::Problem(e) => {
                self.fail("node", &e);
                Vec::new()
            }
            Note::Peers => self.load_rooms(),
            Note::Blob(id) => {
                if self.images.on_arrived(&id) {
                    vec![Effect::GetBlob(id)]
                } else {
                    Vec::new()
                }
            }
        }
    }
}
