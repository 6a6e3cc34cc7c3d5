//! The pure core: the whole client state ([`App`]) and [`update`], which
//! applies one [`Event`] (a key, a loaded page, a node note, a tick) and
//! answers the [`Effect`]s for the runtime to carry out.
//!
//! No I/O and no clock: time comes in with `Tick` events, data with
//! `Loaded` events, so every behaviour can be tested by feeding events.
//! Imports `event`, `keys`, `compose`, `model`, `screens`, `layout`,
//! `text`; never the backend, the terminal, tokio or the node.

use std::collections::{HashMap, HashSet, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use crate::compose::{Editor, Target};
use crate::event::{Effect, Event, Loaded, Note};
use crate::keys::{self, Action, Edit};
use crate::layout;
use crate::model::{Post, Publish, Status};
use crate::screens::contacts::Contacts;
use crate::screens::groups::Groups;
use crate::screens::log::Log;
use crate::screens::messages::Messages;
use crate::screens::thread::Thread;
use crate::screens::timeline::Timeline;
use crate::screens::{Ctx, Move, Tab};
use crate::text;

/// How long a notice stays in the hint line, ms.
const NOTICE_MS: u64 = 5000;

/// How far back status samples go for rates, ms.
const RATE_WINDOW_MS: u64 = 10_000;

/// The compose pane, open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compose {
    /// What the draft is for.
    pub target: Target,
    /// The pane's title ("New post", "Reply to Ada").
    pub title: String,
    /// The text.
    pub editor: Editor,
}

/// A window over the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// The key help.
    Help,
    /// A message's raw JSON.
    Raw {
        /// The message.
        id: String,
        /// Its lines once loaded, or why not.
        text: Option<Result<Vec<String>, String>>,
        /// Lines scrolled past.
        offset: usize,
    },
    /// A choice among a group's members, for removal.
    Choose {
        /// The group.
        group: String,
        /// The members to choose from.
        members: Vec<String>,
        /// The one selected.
        selected: usize,
    },
    /// A yes / no question.
    Confirm {
        /// The question.
        question: String,
        /// What yes does.
        yes: Confirmed,
    },
}

/// What a confirmed question does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Quit, losing drafts.
    Quit,
    /// Block a feed.
    Block {
        /// The feed.
        id: String,
    },
    /// Remove a member from a group.
    RemoveMember {
        /// The group.
        group: String,
        /// The member.
        id: String,
    },
}

/// What a one-line question in the hint line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asking {
    /// A feed id to add to a group.
    AddMember {
        /// The group.
        group: String,
    },
    /// The name of a new group.
    NewGroup,
}

/// A one-line question being answered in the hint line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// What for.
    pub what: Asking,
    /// The answer typed so far.
    pub text: String,
    /// Why the last answer was not taken.
    pub error: Option<String>,
}

impl Ask {
    /// The question, before the answer.
    pub fn label(&self) -> &'static str {
        match self.what {
            Asking::AddMember { .. } => "Add member (@….ed25519): ",
            Asking::NewGroup => "New group's name: ",
        }
    }
}

/// Whether `s` looks like a feed id: `@`, 32 bytes of base64, `.ed25519`.
pub fn is_feed_id(s: &str) -> bool {
    let Some(b64) = s.strip_prefix('@').and_then(|r| r.strip_suffix(".ed25519")) else {
        return false;
    };
    b64.len() == 44
        && b64.ends_with('=')
        && b64[..43]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

/// The node's status and what the status bar derives from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusBar {
    /// The latest status.
    pub status: Option<Status>,
    /// `(time, messages, feeds held)` samples of the last seconds.
    pub samples: VecDeque<(u64, u64, u64)>,
    /// The last error and when it happened.
    pub error: Option<(u64, String)>,
}

/// Replication progress as the status bar shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Live connections.
    pub peers: usize,
    /// Feeds held of those wanted.
    pub held: u64,
    /// Feeds wanted.
    pub wanted: u64,
    /// Messages stored per second lately.
    pub rate: f64,
    /// Seconds until every wanted feed is held, at the recent pace.
    pub eta: Option<u64>,
    /// Unread messages.
    pub unread: u64,
}

impl StatusBar {
    /// Progress, once a status came.
    pub fn progress(&self) -> Option<Progress> {
        let s = self.status.as_ref()?;
        let (rate, feed_rate) = match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let dt = (b.0 - a.0) as f64 / 1000.0;
                (
                    b.1.saturating_sub(a.1) as f64 / dt,
                    b.2.saturating_sub(a.2) as f64 / dt,
                )
            }
            _ => (0.0, 0.0),
        };
        let left = s.feeds_wanted.saturating_sub(s.feeds_held);
        let eta = (left > 0 && feed_rate > 0.0).then(|| (left as f64 / feed_rate).ceil() as u64);
        Some(Progress {
            peers: s.peers,
            held: s.feeds_held.min(s.feeds_wanted),
            wanted: s.feeds_wanted,
            rate,
            eta,
            unread: s.unread,
        })
    }
}

/// The whole client state.
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    /// Our feed id.
    pub me: String,
    /// Now, ms since the epoch (from `Tick` events).
    pub now: u64,
    /// Terminal size: columns, rows.
    pub size: (u16, u16),
    /// The tab shown.
    pub tab: Tab,
    /// Tab 1.
    pub timeline: Timeline,
    /// Tab 2.
    pub thread: Thread,
    /// Tab 3.
    pub messages: Messages,
    /// Tab 4.
    pub groups: Groups,
    /// Tab 5.
    pub contacts: Contacts,
    /// Tab 6.
    pub log: Log,
    /// Where `Back` from the thread goes.
    pub thread_back: Option<Tab>,
    /// A window over the screen.
    pub overlay: Option<Overlay>,
    /// The compose pane, when open.
    pub compose: Option<Compose>,
    /// Drafts kept (closed with Esc, or being sent).
    pub drafts: HashMap<Target, Editor>,
    /// The search being typed.
    pub prompt: Option<String>,
    /// A one-line question being answered (a member to add, a name).
    pub ask: Option<Ask>,
    /// The last search.
    pub query: Option<String>,
    /// Node status.
    pub status: StatusBar,
    /// Messages shown as unread until looked at.
    pub unread: HashSet<String>,
    /// Feeds we follow.
    pub following: HashSet<String>,
    /// Names we know, by feed id.
    pub names: HashMap<String, String>,
    /// A passing message for the hint line, and when it came.
    pub notice: Option<(u64, String)>,
    /// How the client reaches its node (shown in the log view).
    pub describe: String,
    /// The client should end.
    pub quit: bool,
}

impl App {
    /// A client for feed `me`, at time `now`, on a terminal of `size`.
    pub fn new(me: &str, now: u64, size: (u16, u16)) -> App {
        App {
            me: me.to_string(),
            now,
            size,
            tab: Tab::Timeline,
            timeline: Timeline::default(),
            thread: Thread::default(),
            messages: Messages::default(),
            groups: Groups::default(),
            contacts: Contacts::default(),
            log: Log::default(),
            thread_back: None,
            overlay: None,
            compose: None,
            drafts: HashMap::new(),
            prompt: None,
            ask: None,
            query: None,
            status: StatusBar::default(),
            unread: HashSet::new(),
            following: HashSet::new(),
            names: HashMap::new(),
            notice: None,
            describe: String::new(),
            quit: false,
        }
    }

    /// The first loads: timeline, our contacts, private messages.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = self.timeline.refresh();
        effects.push(Effect::LoadProfile(self.me.clone()));
        effects.extend(self.messages.refresh());
        effects
    }

    /// The body area for the current size.
    pub fn body(&self) -> Rect {
        layout::body(self.size.0, self.size.1)
    }

    /// What drawing needs besides the screens.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            now: self.now,
            me: &self.me,
            unread: &self.unread,
            following: &self.following,
            names: &self.names,
        }
    }

    /// Whether some draft holds text (quitting would lose it).
    pub fn has_drafts(&self) -> bool {
        self.drafts.values().any(|e| !e.is_blank())
            || self.compose.as_ref().is_some_and(|c| !c.editor.is_blank())
    }

    /// The message selected on the current tab.
    pub fn selected_post(&self) -> Option<&Post> {
        match self.tab {
            Tab::Timeline => self.timeline.selected(),
            Tab::Thread => self.thread.selected(),
            Tab::Messages => self.messages.selected(&self.me),
            Tab::Groups => self.groups.selected_post(),
            Tab::Contacts => self.contacts.selected_post(),
            Tab::Log => None,
        }
    }

    /// The feed the current selection is about: a person in the contacts,
    /// else the selected message's author. With its name when known.
    pub fn selected_feed(&self) -> Option<(String, Option<String>)> {
        match self.tab {
            Tab::Contacts => self.contacts.selected_feed(),
            _ => self
                .selected_post()
                .map(|p| (p.author.clone(), p.name.clone())),
        }
    }

    /// The selected person other than us, with the name to show; says why
    /// not when there is none.
    fn selected_other(&mut self) -> Option<(String, String)> {
        let Some((id, name)) = self.selected_feed() else {
            self.notify("select a message or a person first");
            return None;
        };
        if id == self.me {
            self.notify("that is you");
            return None;
        }
        let who = self.who(&id, name.as_deref());
        Some((id, who))
    }

    fn notify(&mut self, s: impl Into<String>) {
        self.notice = Some((self.now, s.into()));
    }

    fn fail(&mut self, what: &str, e: &str) {
        let line = format!("{what}: {e}");
        // The same error again (a node that stopped answering, asked every
        // second) is one log line.
        if self
            .status
            .error
            .as_ref()
            .is_none_or(|(_, last)| *last != line)
        {
            let body = self.body();
            self.log.push(self.now, line.clone(), true, body);
        }
        self.status.error = Some((self.now, line));
    }

    fn who(&self, id: &str, name: Option<&str>) -> String {
        self.ctx().who(id, name)
    }

    fn learn(&mut self, posts: &[Post]) {
        for p in posts {
            if p.unread {
                self.unread.insert(p.key.clone());
            }
            if let Some(n) = &p.name {
                self.names.insert(p.author.clone(), n.clone());
            }
        }
    }

    fn remember_people(&mut self, people: &[crate::model::Person]) {
        for p in people {
            if let Some(n) = &p.name {
                self.names.insert(p.id.clone(), n.clone());
            }
        }
    }

    /// Marks the selected message read when it is shown as unread.
    fn read_selected(&mut self) -> Vec<Effect> {
        if self.tab == Tab::Messages && self.messages.open.is_none() {
            // A conversation in the list is read when opened.
            return Vec::new();
        }
        let Some(p) = self.selected_post() else {
            return Vec::new();
        };
        let (key, rx) = (p.key.clone(), p.rx);
        if self.unread.remove(&key) {
            return vec![Effect::MarkRead(vec![rx])];
        }
        Vec::new()
    }

    /// Marks every message of the open thread read.
    fn read_thread(&mut self) -> Vec<Effect> {
        let mut rxs = Vec::new();
        if let Some(v) = &self.thread.view {
            for p in v.entries.iter().filter_map(|e| e.post()) {
                if self.unread.remove(&p.key) {
                    rxs.push(p.rx);
                }
            }
        }
        if rxs.is_empty() {
            Vec::new()
        } else {
            vec![Effect::MarkRead(rxs)]
        }
    }

    fn switch(&mut self, tab: Tab) -> Vec<Effect> {
        self.tab = tab;
        self.prompt = None;
        match tab {
            Tab::Thread => self.read_thread(),
            Tab::Groups if !self.groups.loaded && !self.groups.loading => self.groups.refresh(),
            _ => Vec::new(),
        }
    }

    fn open_thread(&mut self, key: &str) -> Vec<Effect> {
        if self.tab != Tab::Thread {
            self.thread_back = Some(self.tab);
        }
        self.tab = Tab::Thread;
        self.thread.open(key)
    }

    fn open_compose(&mut self, target: Target, title: String) {
        let editor = self.drafts.remove(&target).unwrap_or_default();
        self.compose = Some(Compose {
            target,
            title,
            editor,
        });
    }

    /// Keeps the selections in view after a resize.
    fn refit(&mut self) {
        let body = self.body();
        self.timeline.fit(body);
        self.thread.fit(body);
        let me = self.me.clone();
        self.messages.fit(&me, body);
        self.groups.fit(body);
        self.contacts.fit(body);
        self.log.fit(body);
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
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
        if self.compose.is_some() {
            return self.on_compose_key(key);
        }
        if self.ask.is_some() {
            return self.on_ask_key(key);
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

    fn on_overlay_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let action = keys::action(key);
        match self.overlay.take() {
            Some(Overlay::Help) | None => Vec::new(),
            Some(Overlay::Choose {
                group,
                members,
                selected,
            }) => {
                let selected = match action {
                    Some(Action::Down) => (selected + 1).min(members.len().saturating_sub(1)),
                    Some(Action::Up) => selected.saturating_sub(1),
                    Some(Action::Top) => 0,
                    Some(Action::Bottom) => members.len().saturating_sub(1),
                    Some(Action::Open) => {
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
                    Some(Action::Back) | Some(Action::Quit) => {
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
            Some(Overlay::Confirm { yes, .. }) => {
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
            Some(Overlay::Raw { id, text, offset }) => {
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
                        self.notify(format!("copied {}", text::short_id(&id)));
                        return vec![Effect::Copy(id)];
                    }
                    _ => return Vec::new(),
                }
                .min(max);
                self.overlay = Some(Overlay::Raw { id, text, offset });
                Vec::new()
            }
        }
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
            other => {
                if let Some(c) = &mut self.compose {
                    c.editor.apply(other);
                }
                Vec::new()
            }
        }
    }

    fn send(&mut self) -> Vec<Effect> {
        if self.compose.as_ref().is_some_and(|c| c.editor.is_blank()) {
            self.notify("nothing to send: type something, or Esc to close");
            return Vec::new();
        }
        let Some(c) = self.compose.take() else {
            return Vec::new();
        };
        let sent = c.editor.text();
        let text = sent.trim_end().to_string();
        let what = match &c.target {
            Target::Post => Publish::Post { text },
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

    /// The selected group, or a notice saying why there is none.
    fn group_for(&mut self, what: &str) -> Option<crate::model::GroupInfo> {
        if self.tab != Tab::Groups {
            self.notify(format!("{what} on the groups screen (4)"));
            return None;
        }
        let g = self.groups.selected().cloned();
        if g.is_none() {
            self.notify("no group selected: n makes one");
        }
        g
    }

    fn compose_group(&mut self) -> bool {
        let Some(g) = self.group_for("c posts to a group") else {
            return false;
        };
        if !g.member {
            self.notify("you were removed from this group: you can read, not post");
            return false;
        }
        if !g.can_post {
            self.notify("cannot post yet: the group's key has not reached us");
            return false;
        }
        let title = format!("Post to {} (private group)", crate::model::group_title(&g));
        self.open_compose(Target::Group(g.id), title);
        true
    }

    /// Selects the next (or previous) match of the query on this tab.
    fn find(&mut self, back: bool, fresh: bool) -> Vec<Effect> {
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
            Tab::Thread => self.thread.select(i, body),
            Tab::Messages => self.messages.select(i, &self.me.clone(), body),
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

    fn on_move(&mut self, m: Move) -> Vec<Effect> {
        let body = self.body();
        match self.tab {
            Tab::Timeline => self.timeline.on_move(m, body),
            Tab::Thread => {
                self.thread.on_move(m, body);
                Vec::new()
            }
            Tab::Messages => {
                let me = self.me.clone();
                self.messages.on_move(m, &me, body)
            }
            Tab::Groups => self.groups.on_move(m, body),
            Tab::Contacts => self.contacts.on_move(m, body),
            Tab::Log => {
                self.log.on_move(m, body);
                Vec::new()
            }
        }
    }

    fn on_action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Up => self.on_move(Move::Up),
            Action::Down => self.on_move(Move::Down),
            Action::Top => self.on_move(Move::Top),
            Action::Bottom => self.on_move(Move::Bottom),
            Action::HalfDown => self.on_move(Move::HalfDown),
            Action::HalfUp => self.on_move(Move::HalfUp),
            Action::Open => self.open(),
            Action::Back => self.back(),
            Action::Compose => {
                if self.tab == Tab::Groups {
                    self.compose_group();
                } else {
                    self.open_compose(Target::Post, "New post".into());
                }
                Vec::new()
            }
            Action::ComposeInEditor => {
                if self.tab == Tab::Groups {
                    if !self.compose_group() {
                        return Vec::new();
                    }
                } else {
                    self.open_compose(Target::Post, "New post".into());
                }
                let text = self
                    .compose
                    .as_ref()
                    .map(|c| c.editor.text())
                    .unwrap_or_default();
                vec![Effect::Editor(text)]
            }
            Action::Reply | Action::Like if self.tab == Tab::Groups => {
                self.notify("group posts stay in the group: c writes to it");
                Vec::new()
            }
            Action::AddMember => {
                let Some(g) = self.group_for("a adds a member") else {
                    return Vec::new();
                };
                if !g.member {
                    self.notify("you were removed from this group");
                    return Vec::new();
                }
                self.ask = Some(Ask {
                    what: Asking::AddMember { group: g.id },
                    text: String::new(),
                    error: None,
                });
                Vec::new()
            }
            Action::RemoveMember => {
                let Some(g) = self.group_for("x removes a member") else {
                    return Vec::new();
                };
                if !g.admins.contains(&self.me) {
                    self.notify("only the group's admins can remove members");
                    return Vec::new();
                }
                let members: Vec<String> =
                    g.members.into_iter().filter(|m| *m != self.me).collect();
                if members.is_empty() {
                    self.notify("nobody to remove: you are the only member");
                    return Vec::new();
                }
                self.overlay = Some(Overlay::Choose {
                    group: g.id,
                    members,
                    selected: 0,
                });
                Vec::new()
            }
            Action::NextMatch if self.tab == Tab::Groups => {
                self.ask = Some(Ask {
                    what: Asking::NewGroup,
                    text: String::new(),
                    error: None,
                });
                Vec::new()
            }
            Action::Reply => {
                let Some(p) = self.selected_post() else {
                    self.notify("select a message to reply to");
                    return Vec::new();
                };
                let title = format!(
                    "Reply to {}{}",
                    self.who(&p.author, p.name.as_deref()),
                    if p.private { " (private)" } else { "" }
                );
                let to = p.key.clone();
                self.open_compose(Target::Reply { to }, title);
                Vec::new()
            }
            Action::Like => {
                let Some(p) = self.selected_post() else {
                    self.notify("select a message to like");
                    return Vec::new();
                };
                let id = p.key.clone();
                self.notify("liking…");
                vec![Effect::Publish {
                    what: Publish::Like { id },
                    draft: None,
                }]
            }
            Action::Message => {
                let people = match self.tab {
                    Tab::Messages => self.messages.selected_people(&self.me),
                    _ => self.selected_feed().map(|(id, _)| vec![id]),
                };
                let Some(mut to) = people else {
                    self.notify("select a message or a person to write to");
                    return Vec::new();
                };
                to.retain(|f| *f != self.me);
                if to.is_empty() {
                    self.notify("that is you: private messages need someone else");
                    return Vec::new();
                }
                to.sort();
                let names: Vec<String> = to.iter().map(|f| self.who(f, None)).collect();
                let title = format!("Private message to {}", names.join(", "));
                self.open_compose(Target::Dm { to }, title);
                Vec::new()
            }
            Action::Follow => {
                let Some((id, who)) = self.selected_other() else {
                    return Vec::new();
                };
                let what = if self.following.contains(&id) {
                    self.notify(format!("unfollowing {who}…"));
                    Publish::Unfollow { id }
                } else {
                    self.notify(format!("following {who}…"));
                    Publish::Follow { id }
                };
                vec![Effect::Publish { what, draft: None }]
            }
            Action::Block => {
                let Some((id, who)) = self.selected_other() else {
                    return Vec::new();
                };
                self.overlay = Some(Overlay::Confirm {
                    question: format!(
                        "Block {who}? Their messages are hidden and no longer replicated. (y/n)"
                    ),
                    yes: Confirmed::Block { id },
                });
                Vec::new()
            }
            Action::Profile => {
                let Some((id, _)) = self.selected_feed() else {
                    self.notify("select a message or a person first");
                    return Vec::new();
                };
                let back = (self.tab != Tab::Contacts).then_some(self.tab);
                self.tab = Tab::Contacts;
                self.contacts.open_person(&id, back)
            }
            Action::Search => {
                self.prompt = Some(String::new());
                Vec::new()
            }
            Action::NextMatch => self.find(false, false),
            Action::PrevMatch => self.find(true, false),
            Action::CopyId => {
                let id = match self.tab {
                    Tab::Contacts if self.contacts.person.is_none() => {
                        self.selected_feed().map(|(id, _)| id)
                    }
                    _ => self.selected_post().map(|p| p.key.clone()),
                };
                match id {
                    Some(id) => {
                        self.notify(format!("copied {}", text::one_line(&id)));
                        vec![Effect::Copy(id)]
                    }
                    None => {
                        self.notify("nothing selected to copy");
                        Vec::new()
                    }
                }
            }
            Action::Raw => {
                let Some(p) = self.selected_post() else {
                    self.notify("select a message to see its JSON");
                    return Vec::new();
                };
                let id = p.key.clone();
                self.overlay = Some(Overlay::Raw {
                    id: id.clone(),
                    text: None,
                    offset: 0,
                });
                vec![Effect::LoadRaw(id)]
            }
            Action::Reload => self.reload(),
            Action::Help => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            Action::Quit => {
                if self.has_drafts() {
                    self.overlay = Some(Overlay::Confirm {
                        question: "Quit and lose your unsent drafts? (y/n)".into(),
                        yes: Confirmed::Quit,
                    });
                } else {
                    self.quit = true;
                }
                Vec::new()
            }
            Action::Interrupt => {
                self.quit = true;
                Vec::new()
            }
            Action::Tab(t) => self.switch(t),
            Action::NextTab => self.switch(self.tab.cycle(false)),
            Action::PrevTab => self.switch(self.tab.cycle(true)),
        }
    }

    fn open(&mut self) -> Vec<Effect> {
        let body = self.body();
        match self.tab {
            Tab::Timeline => match self.timeline.selected() {
                Some(p) => {
                    let key = p.key.clone();
                    let mut e = self.read_selected();
                    e.extend(self.open_thread(&key));
                    e
                }
                None => Vec::new(),
            },
            Tab::Thread => Vec::new(),
            Tab::Groups => {
                self.groups.open();
                Vec::new()
            }
            Tab::Messages => {
                if self.messages.open.is_some() {
                    match self.messages.selected(&self.me) {
                        Some(p) => {
                            let key = p.key.clone();
                            self.open_thread(&key)
                        }
                        None => Vec::new(),
                    }
                } else {
                    let me = self.me.clone();
                    let rxs: Vec<u64> = self.messages.open_selected(&me, body);
                    let keys: Vec<String> = self
                        .messages
                        .list
                        .posts
                        .iter()
                        .filter(|p| rxs.contains(&p.rx))
                        .map(|p| p.key.clone())
                        .collect();
                    let read: Vec<u64> = keys
                        .iter()
                        .filter(|k| self.unread.remove(*k))
                        .filter_map(|k| {
                            self.messages
                                .list
                                .posts
                                .iter()
                                .find(|p| &p.key == k)
                                .map(|p| p.rx)
                        })
                        .collect();
                    if read.is_empty() {
                        Vec::new()
                    } else {
                        vec![Effect::MarkRead(read)]
                    }
                }
            }
            Tab::Contacts => match &self.contacts.person {
                Some(_) => match self.contacts.selected_post() {
                    Some(p) => {
                        let key = p.key.clone();
                        self.open_thread(&key)
                    }
                    None => Vec::new(),
                },
                None => match self.contacts.selected_person() {
                    Some(p) => self.contacts.open_person(&p.id, None),
                    None => Vec::new(),
                },
            },
            Tab::Log => Vec::new(),
        }
    }

    fn back(&mut self) -> Vec<Effect> {
        match self.tab {
            Tab::Thread => {
                let to = self.thread_back.take().unwrap_or(Tab::Timeline);
                self.switch(to)
            }
            Tab::Messages if self.messages.close() => Vec::new(),
            Tab::Groups if self.groups.back() => Vec::new(),
            Tab::Contacts => match self.contacts.close() {
                Some(Some(tab)) => self.switch(tab),
                Some(None) => Vec::new(),
                None => {
                    self.query = None;
                    Vec::new()
                }
            },
            _ => {
                self.query = None;
                Vec::new()
            }
        }
    }

    fn reload(&mut self) -> Vec<Effect> {
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
                let mut e = vec![Effect::LoadProfile(self.me.clone())];
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

    fn on_loaded(&mut self, loaded: Loaded) -> Vec<Effect> {
        let body = self.body();
        match loaded {
            Loaded::Timeline { page, result } => {
                if let Ok(posts) = &result {
                    self.learn(posts);
                }
                if let Err(e) = &result {
                    self.fail("loading the timeline", e);
                }
                self.timeline.on_page(page, result, body)
            }
            Loaded::Inbox { page, result } => {
                if let Ok(posts) = &result {
                    self.learn(posts);
                }
                if let Err(e) = &result {
                    self.fail("loading private messages", e);
                }
                let me = self.me.clone();
                self.messages.on_page(page, result, &me, body)
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
                let mut effects = self.thread.on_loaded(&id, result, body);
                if self.tab == Tab::Thread {
                    effects.extend(self.read_thread());
                }
                effects
            }
            Loaded::Profile { id, result } => {
                match &result {
                    Ok(p) => {
                        self.remember_people(&p.contacts.follows);
                        self.remember_people(&p.contacts.followers);
                        self.remember_people(&p.contacts.blocks);
                        if let Some(n) = &p.name {
                            self.names.insert(p.id.clone(), n.clone());
                        }
                        if id == self.me {
                            self.following =
                                p.contacts.follows.iter().map(|f| f.id.clone()).collect();
                        }
                    }
                    Err(e) => self.fail("loading a profile", e),
                }
                if id == self.me {
                    self.contacts.on_mine(result.clone(), body);
                }
                self.contacts.on_profile(&id, result);
                Vec::new()
            }
            Loaded::PostsBy { id, page, result } => {
                if let Ok(posts) = &result {
                    self.learn(posts);
                }
                if let Err(e) = &result {
                    self.fail("loading posts", e);
                }
                self.contacts.on_posts(&id, page, result, body)
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
                if let Ok(posts) = &result {
                    self.learn(posts);
                }
                if let Err(e) = &result {
                    self.fail("loading group posts", e);
                }
                self.groups.on_posts(&group, page, result, body)
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
            Loaded::Published {
                what,
                draft,
                result,
            } => match result {
                Ok(key) => {
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
            },
        }
    }

    fn on_note(&mut self, note: Note) -> Vec<Effect> {
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
                self.status.status = Some(s);
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
        }
    }
}

/// Applies one event to the state; answers the work it asks for.
pub fn update(app: &mut App, event: Event) -> Vec<Effect> {
    match event {
        Event::Key(key) => {
            if keys::is_press(&key) {
                app.on_key(key)
            } else {
                Vec::new()
            }
        }
        Event::Paste(s) => {
            if let Some(c) = &mut app.compose {
                c.editor.insert_str(&s);
            } else if let Some(a) = &mut app.ask {
                a.text.push_str(text::one_line(&s).trim());
                a.error = None;
            } else if let Some(p) = &mut app.prompt {
                p.push_str(&text::one_line(&s));
            }
            Vec::new()
        }
        Event::Resize(w, h) => {
            app.size = (w, h);
            app.refit();
            Vec::new()
        }
        Event::Tick(now) => {
            app.now = now;
            if app
                .notice
                .as_ref()
                .is_some_and(|(t, _)| now.saturating_sub(*t) > NOTICE_MS)
            {
                app.notice = None;
            }
            Vec::new()
        }
        Event::Loaded(l) => app.on_loaded(l),
        Event::Node(n) => app.on_note(n),
        Event::Editor(result) => {
            match result {
                Ok(text) => {
                    if let Some(c) = &mut app.compose {
                        c.editor = Editor::new(text.trim_end_matches('\n'));
                    }
                }
                Err(e) => app.fail("$EDITOR", &e),
            }
            Vec::new()
        }
    }
}
