//! Keys, by input mode: an open overlay (help, raw JSON, a member, a link
//! or something to open to choose, a yes / no question) takes them first,
//! then a one-line question (over the compose pane when it asks for a file
//! to attach), the compose pane, the search prompt; otherwise a key
//! is an [`Action`] for `actions`. Also what ends those modes: sending a
//! draft, taking an answer, and the search (next / previous match) on a
//! tab.
//!
//! Part of the pure core: imports `event`, `keys`, `compose`, `links`,
//! `model`, `screens`, `text`; never the backend, the terminal, tokio or
//! the node.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Ask, Asking, Confirmed, Found, Overlay, is_feed_id};
use crate::compose::Target;
use crate::event::{Effect, Openable};
use crate::keys::{self, Action, Edit};
use crate::links;
use crate::model::Publish;
use crate::screens::Tab;
use crate::text;

impl App {
    /// A key pressed: to the input mode in front, else its action.
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            // Ctrl-c always ends the client, wherever the focus is.
            if self.compose.is_none() {
                self.quit = true;
                return Vec::new();
            }
        }
        if self.overlay.is_some() {
            return self.on_overlay_key(key);
        }
        if self.ask.is_some() {
            return self.on_ask_key(key);
        }
        if self.compose.is_some() {
            return self.on_compose_key(key);
        }
        if self.prompt.is_some() {
            return self.on_prompt_key(key);
        }
        let Some(action) = keys::action(key) else {
            return Vec::new();
        };
        let mut effects = self.on_action(action);
        // A message the selection moves onto has been seen.
        if matches!(
            action,
            Action::Up
                | Action::Down
                | Action::Top
                | Action::Bottom
                | Action::HalfDown
                | Action::HalfUp
        ) {
            effects.extend(self.read_selected());
        }
        effects
    }

    /// A key while an overlay is open; the overlay decides.
    fn on_overlay_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let action = keys::action(key);
        match self.overlay.take() {
            Some(Overlay::Help) | None => Vec::new(),
            Some(Overlay::Choose {
                group,
                members,
                selected,
            }) => self.on_choose_key(action, group, members, selected),
            Some(Overlay::Links { links, selected }) => self.on_links_key(action, links, selected),
            Some(Overlay::Open { items, selected }) => self.on_open_key(action, items, selected),
            Some(Overlay::Confirm { yes, .. }) => self.on_confirm_key(key, yes),
            Some(Overlay::Raw { id, text, offset }) => self.on_raw_key(action, id, text, offset),
            Some(Overlay::Search {
                query,
                hits,
                literal,
                selected,
            }) => self.on_search_key(action, query, hits, literal, selected),
            Some(Overlay::Saved { searches, selected }) => {
                self.on_saved_key(action, searches, selected)
            }
        }
    }

    /// Searches the whole store for `q` into the results window.
    pub(super) fn search_store(&mut self, q: String) -> Vec<Effect> {
        let q = q.trim().to_string();
        if q.is_empty() {
            return Vec::new();
        }
        self.overlay = Some(Overlay::Search {
            query: q.clone(),
            hits: None,
            literal: false,
            selected: 0,
        });
        vec![Effect::Search(q)]
    }

    /// A key in the results of a whole-store search (the overlay is
    /// taken).
    fn on_search_key(
        &mut self,
        action: Option<Action>,
        query: String,
        hits: Option<Result<Vec<Found>, String>>,
        literal: bool,
        selected: usize,
    ) -> Vec<Effect> {
        let n = match &hits {
            Some(Ok(h)) => h.len(),
            _ => 0,
        };
        let selected = match (moved(action, selected, n), action) {
            (Some(moved), _) => moved,
            (None, Some(Action::Open)) => {
                if let Some(Ok(h)) = &hits
                    && let Some(hit) = h.get(selected)
                {
                    let key = hit.key.clone();
                    return self.open_thread(&key);
                }
                selected
            }
            (None, Some(Action::Save)) => {
                self.overlay = Some(Overlay::Search {
                    query: query.clone(),
                    hits,
                    literal,
                    selected,
                });
                return vec![Effect::Searches {
                    save: Some(query),
                    forget: None,
                }];
            }
            (None, Some(Action::Search)) => {
                self.prompt = Some(query);
                self.store_search = true;
                return Vec::new();
            }
            (None, Some(Action::Saved)) => {
                return vec![Effect::Searches {
                    save: None,
                    forget: None,
                }];
            }
            (None, Some(Action::Back | Action::Quit)) => return Vec::new(),
            _ => selected,
        };
        self.overlay = Some(Overlay::Search {
            query,
            hits,
            literal,
            selected,
        });
        Vec::new()
    }

    /// A key in the list of saved searches (the overlay is taken).
    fn on_saved_key(
        &mut self,
        action: Option<Action>,
        searches: Vec<String>,
        selected: usize,
    ) -> Vec<Effect> {
        let selected = match (moved(action, selected, searches.len()), action) {
            (Some(moved), _) => moved,
            (None, Some(Action::Open)) => {
                let Some(q) = searches.get(selected).cloned() else {
                    return Vec::new();
                };
                return self.search_store(q);
            }
            (None, Some(Action::RemoveMember)) => {
                let Some(q) = searches.get(selected).cloned() else {
                    return Vec::new();
                };
                return vec![Effect::Searches {
                    save: None,
                    forget: Some(q),
                }];
            }
            (None, Some(Action::Back | Action::Quit)) => return Vec::new(),
            _ => selected,
        };
        self.overlay = Some(Overlay::Saved { searches, selected });
        Vec::new()
    }

    /// A key in the choice of a member to remove (the overlay is taken).
    fn on_choose_key(
        &mut self,
        action: Option<Action>,
        group: String,
        members: Vec<String>,
        selected: usize,
    ) -> Vec<Effect> {
        let selected = match (moved(action, selected, members.len()), action) {
            (Some(moved), _) => moved,
            (None, Some(Action::Open)) => {
                let Some(id) = members.get(selected).cloned() else {
                    return Vec::new();
                };
                let who = self.who(&id, None);
                self.overlay = Some(Overlay::Confirm {
                    question: format!(
                        "this rekeys the group; {who} keeps what was posted before (y/n)"
                    ),
                    yes: Confirmed::RemoveMember { group, id },
                });
                return Vec::new();
            }
            (None, Some(Action::Back | Action::Quit)) => {
                self.notify("cancelled");
                return Vec::new();
            }
            _ => selected,
        };
        self.overlay = Some(Overlay::Choose {
            group,
            members,
            selected,
        });
        Vec::new()
    }

    /// A key in the choice of a link to follow (the overlay is taken).
    fn on_links_key(
        &mut self,
        action: Option<Action>,
        mut links: Vec<(links::Target, String)>,
        selected: usize,
    ) -> Vec<Effect> {
        let selected = match (moved(action, selected, links.len()), action) {
            (Some(moved), _) => moved,
            (None, Some(Action::Open | Action::FollowLink)) if selected < links.len() => {
                let (target, _) = links.swap_remove(selected);
                return self.go(target);
            }
            (None, Some(Action::Back | Action::Quit)) => return Vec::new(),
            _ => selected,
        };
        self.overlay = Some(Overlay::Links { links, selected });
        Vec::new()
    }

    /// A key in the choice of something to open (the overlay is taken).
    fn on_open_key(
        &mut self,
        action: Option<Action>,
        mut items: Vec<(Openable, String)>,
        selected: usize,
    ) -> Vec<Effect> {
        let selected = match (moved(action, selected, items.len()), action) {
            (Some(moved), _) => moved,
            (None, Some(Action::Open | Action::OpenExternal)) if selected < items.len() => {
                let (item, _) = items.swap_remove(selected);
                return self.open_item(item);
            }
            (None, Some(Action::Back | Action::Quit)) => return Vec::new(),
            _ => selected,
        };
        self.overlay = Some(Overlay::Open { items, selected });
        Vec::new()
    }

    /// A key in a yes / no question (the overlay is taken): `y` does it.
    fn on_confirm_key(&mut self, key: KeyEvent, yes: Confirmed) -> Vec<Effect> {
        let sure = matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y'));
        if !sure {
            self.notify("cancelled");
            return Vec::new();
        }
        match yes {
            Confirmed::Quit => {
                self.quit = true;
                Vec::new()
            }
            Confirmed::Block { id } => {
                self.notify("blocking…");
                vec![Effect::Publish {
                    what: Publish::Block { id },
                    draft: None,
                }]
            }
            Confirmed::RemoveMember { group, id } => {
                self.notify(format!("removing {} and rekeying…", self.who(&id, None)));
                vec![Effect::Publish {
                    what: Publish::GroupRemove { group, id },
                    draft: None,
                }]
            }
        }
    }

    /// A key in the raw JSON window (the overlay is taken): scrolling, copy.
    fn on_raw_key(
        &mut self,
        action: Option<Action>,
        id: String,
        text: Option<Result<Vec<String>, String>>,
        offset: usize,
    ) -> Vec<Effect> {
        let lines = match &text {
            Some(Ok(l)) => l.len(),
            _ => 0,
        };
        let rows = self.body().height.saturating_sub(2) as usize;
        let max = lines.saturating_sub(rows);
        let offset = match action {
            Some(Action::Down) => offset + 1,
            Some(Action::Up) => offset.saturating_sub(1),
            Some(Action::HalfDown) => offset + (rows / 2).max(1),
            Some(Action::HalfUp) => offset.saturating_sub((rows / 2).max(1)),
            Some(Action::Top) => 0,
            Some(Action::Bottom) => max,
            Some(Action::CopyId) => {
                self.overlay = Some(Overlay::Raw {
                    id: id.clone(),
                    text,
                    offset,
                });
                let link = super::actions::link(&id);
                self.notify(format!("copied {}", text::one_line(&link)));
                return vec![Effect::Copy(link)];
            }
            _ => return Vec::new(),
        }
        .min(max);
        self.overlay = Some(Overlay::Raw { id, text, offset });
        Vec::new()
    }

    fn on_compose_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(edit) = keys::edit(key) else {
            return Vec::new();
        };
        match edit {
            Edit::Close => {
                if let Some(c) = self.compose.take()
                    && !c.editor.is_blank()
                {
                    self.drafts.insert(c.target, c.editor);
                    self.notify("draft kept: open the same compose again to continue");
                }
                Vec::new()
            }
            Edit::External => self
                .compose
                .as_ref()
                .map(|c| Effect::Editor(c.editor.text()))
                .into_iter()
                .collect(),
            Edit::Send => self.send(),
            Edit::Attach => {
                if self
                    .compose
                    .as_ref()
                    .is_some_and(|c| c.target == Target::Post)
                {
                    self.ask = Some(Ask {
                        what: Asking::Attach,
                        text: String::new(),
                        error: None,
                    });
                } else {
                    self.notify("files go with new posts (c): this one carries text only");
                }
                Vec::new()
            }
            other => {
                if let Some(c) = &mut self.compose {
                    c.editor.apply(other);
                }
                Vec::new()
            }
        }
    }

    fn send(&mut self) -> Vec<Effect> {
        let files = self
            .compose
            .as_ref()
            .is_some_and(|c| c.target == Target::Post && !self.attached.is_empty());
        if !files && self.compose.as_ref().is_some_and(|c| c.editor.is_blank()) {
            self.notify("nothing to send: type something, or Esc to close");
            return Vec::new();
        }
        let Some(c) = self.compose.take() else {
            return Vec::new();
        };
        let sent = c.editor.text();
        let text = sent.trim_end().to_string();
        let what = match &c.target {
            Target::Post => Publish::Post {
                text,
                attach: self.attached.clone(),
            },
            Target::Reply { to } => Publish::Reply {
                to: to.clone(),
                text,
            },
            Target::Dm { to } => Publish::Dm {
                to: to.clone(),
                text,
            },
            Target::Group(group) => Publish::GroupPost {
                group: group.clone(),
                text,
            },
        };
        // Kept until the node says it is published.
        self.drafts.insert(c.target.clone(), c.editor);
        self.notify("sending…");
        vec![Effect::Publish {
            what,
            draft: Some((c.target, sent)),
        }]
    }

    fn on_prompt_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(edit) = keys::edit(key) else {
            return Vec::new();
        };
        let Some(p) = &mut self.prompt else {
            return Vec::new();
        };
        match edit {
            Edit::Char(c) if p.chars().count() < 200 => p.push(c),
            Edit::Backspace => {
                p.pop();
            }
            Edit::Close => self.prompt = None,
            Edit::Newline | Edit::Send => {
                let q = self.prompt.take().unwrap_or_default();
                if self.store_search {
                    return self.search_store(q);
                }
                if q.is_empty() {
                    self.query = None;
                } else {
                    self.query = Some(q);
                    return self.find(false, true);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_ask_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(edit) = keys::edit(key) else {
            return Vec::new();
        };
        let Some(a) = &mut self.ask else {
            return Vec::new();
        };
        match edit {
            Edit::Char(c) if a.text.chars().count() < 200 => {
                a.text.push(c);
                a.error = None;
            }
            Edit::Backspace => {
                a.text.pop();
                a.error = None;
            }
            Edit::Close => {
                self.ask = None;
                self.notify("cancelled");
            }
            Edit::Newline | Edit::Send => return self.answer_ask(),
            _ => {}
        }
        Vec::new()
    }

    /// Takes the answer of the one-line question, or says why not (the
    /// question stays open).
    fn answer_ask(&mut self) -> Vec<Effect> {
        let Some(a) = self.ask.take() else {
            return Vec::new();
        };
        let answer = a.text.trim().to_string();
        let refuse = |app: &mut App, why: String| {
            app.ask = Some(Ask {
                error: Some(why),
                ..a.clone()
            });
            Vec::new()
        };
        match &a.what {
            Asking::AddMember { group } => {
                if !is_feed_id(&answer) {
                    return refuse(self, "not a feed id: expected @….ed25519".into());
                }
                if answer == self.me {
                    return refuse(self, "that is you".into());
                }
                let known = self.groups.list.iter().find(|g| g.id == *group);
                if known.is_some_and(|g| g.members.contains(&answer)) {
                    return refuse(self, "already a member".into());
                }
                self.notify(format!("adding {}…", self.who(&answer, None)));
                vec![Effect::Publish {
                    what: Publish::GroupAdd {
                        group: group.clone(),
                        id: answer,
                    },
                    draft: None,
                }]
            }
            Asking::Attach => {
                if !answer.is_empty() {
                    return vec![Effect::Attach(answer)];
                }
                match self.attached.pop() {
                    Some(p) => self.notify(format!("dropped {}", file_name(&p))),
                    None => self.notify("nothing attached"),
                }
                Vec::new()
            }
            Asking::NewGroup => {
                if answer.is_empty() {
                    return refuse(self, "a group needs a name".into());
                }
                self.notify(format!("creating “{}”…", text::one_line(&answer)));
                vec![Effect::Publish {
                    what: Publish::GroupCreate { name: answer },
                    draft: None,
                }]
            }
        }
    }

    /// Selects the next (or previous) match of the query on this tab.
    pub(super) fn find(&mut self, back: bool, fresh: bool) -> Vec<Effect> {
        let Some(q) = self.query.clone() else {
            self.notify("no search yet: / to search");
            return Vec::new();
        };
        let ctx = self.ctx();
        let (texts, from) = match self.tab {
            Tab::Timeline => (self.timeline.haystacks(&ctx), self.timeline.nav.selected),
            Tab::Thread => (self.thread.haystacks(&ctx), self.thread.nav.selected),
            Tab::Messages => (
                self.messages.haystacks(&ctx),
                match &self.messages.open {
                    Some(o) => o.nav.selected,
                    None => self.messages.nav.selected,
                },
            ),
            Tab::Groups => (
                self.groups.haystacks(&ctx),
                if self.groups.focus_posts {
                    self.groups.posts_nav.selected
                } else {
                    self.groups.nav.selected
                },
            ),
            Tab::Contacts => (
                self.contacts.haystacks(&ctx),
                match &self.contacts.person {
                    Some(v) => v.nav.selected,
                    None => self.contacts.nav.selected,
                },
            ),
            Tab::Log => (self.log.haystacks(), self.log.nav.selected),
        };
        let n = texts.len();
        // A new search may match the selection itself.
        let start = if fresh {
            (from + n.max(1) - 1) % n.max(1)
        } else {
            from
        };
        let Some(i) = crate::screens::find(&texts, start, &q, back) else {
            self.notify(format!(
                "no match for “{}” in what is loaded",
                text::one_line(&q)
            ));
            return Vec::new();
        };
        let matches = texts
            .iter()
            .filter(|t| t.to_lowercase().contains(&q.to_lowercase()))
            .count();
        let body = self.body();
        let mut effects = Vec::new();
        match self.tab {
            Tab::Timeline => self.timeline.select(i, body),
            Tab::Thread => self.thread.select(i, body, &ctx!(self)),
            Tab::Messages => self.messages.select(i, &ctx!(self), body),
            Tab::Groups => effects = self.groups.select(i, body),
            Tab::Contacts => self.contacts.select(i, body),
            Tab::Log => self.log.select(i, body),
        }
        self.notify(format!(
            "“{}”: {matches} match{} (n next, N previous)",
            text::one_line(&q),
            if matches == 1 { "" } else { "es" }
        ));
        effects.extend(self.read_selected());
        effects
    }
}

/// A file's name as shown (clean, one line).
pub fn file_name(p: &std::path::Path) -> String {
    let name = p
        .file_name()
        .map_or_else(|| p.to_string_lossy(), |n| n.to_string_lossy());
    text::one_line(&name)
}

/// Where the cursor of a list of `len` entries goes for a movement key
/// (down, up, top, bottom); `None` for any other key.
fn moved(action: Option<Action>, selected: usize, len: usize) -> Option<usize> {
    let last = len.saturating_sub(1);
    match action? {
        Action::Down => Some((selected + 1).min(last)),
        Action::Up => Some(selected.saturating_sub(1)),
        Action::Top => Some(0),
        Action::Bottom => Some(last),
        _ => None,
    }
}
