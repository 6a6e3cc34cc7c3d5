//! The pure core: the whole client state ([`App`]) and [`update`], which
//! applies one [`Event`] (a key, a loaded page, a node note, a tick) and
//! answers the [`Effect`]s for the runtime to carry out.
//!
//! No I/O and no clock: time comes in with `Tick` events, data with
//! `Loaded` events, so every behaviour can be tested by feeding events.
//!
//! This module owns the state and its small types ([`Compose`],
//! [`Overlay`], [`Confirmed`], [`Ask`], [`StatusBar`]), the queries on it
//! (the selection, drafts), the helpers every part shares (notices, errors,
//! names learned, read marks, switching tabs, opening a thread or the
//! compose pane, refitting) and [`update`], the dispatcher. The rest is
//! `impl App` blocks by what they handle:
//! - `input`: keys, by input mode (overlay, compose pane, one-line
//!   question, search prompt, else an action), sending a draft, and the
//!   search;
//! - `actions`: what each [`keys::Action`] does, by family;
//! - `loading`: loaded pages and node notes applied; reloads.
//!
//! Pictures in posts are asked for (once each) when a thread shows them,
//! and decoded when held; see [`Images`].
//!
//! Imports `event`, `keys`, `compose`, `model`, `screens`, `layout`,
//! `links`, `markdown`, `images`, `text`; never the backend, the terminal,
//! tokio or the node.

/// What drawing needs ([`Ctx`]), borrowing only the fields it reads, so
/// that a screen beside it can be changed.
macro_rules! ctx {
    ($app:expr) => {
        $crate::screens::Ctx {
            now: $app.now,
            me: &$app.me,
            unread: &$app.unread,
            following: &$app.following,
            names: &$app.names,
            images: &$app.images,
        }
    };
}

mod actions;
mod input;
mod loading;

pub use input::file_name;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use ratatui::layout::Rect;

use crate::compose::{Editor, Target};
use crate::event::{Effect, Event, Openable};
use crate::images::Images;
use crate::keys;
use crate::layout;
use crate::links;
use crate::model::EntryView as _;
use crate::model::PostView as _;
use crate::model::{Post, Status};
use crate::screens::contacts::Contacts;
use crate::screens::groups::Groups;
use crate::screens::log::Log;
use crate::screens::messages::Messages;
use crate::screens::thread::Thread;
use crate::screens::timeline::Timeline;
use crate::screens::{Ctx, Tab};
use crate::text;

/// How long a notice stays in the hint line, ms.
const NOTICE_MS: u64 = 5000;

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

/// One hit of a whole-store search, as the results window lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Message id.
    pub key: String,
    /// Author's feed id.
    pub author: String,
    /// Author's name, when known.
    pub name: Option<String>,
    /// Its time, ms.
    pub time: u64,
    /// `public`, `private` or `group`.
    pub kind: String,
    /// The best part of its text.
    pub snippet: String,
    /// The matching words in `snippet` (byte ranges).
    pub marks: Vec<(usize, usize)>,
}

impl From<shoal::api::SearchHit> for Found {
    fn from(h: shoal::api::SearchHit) -> Found {
        Found {
            key: h.key,
            author: h.author,
            name: h.name,
            time: h.time,
            kind: h.kind,
            snippet: h.snippet,
            marks: h.marks,
        }
    }
}

/// A window over the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// What a whole-store search found (`/`).
    Search {
        /// The query.
        query: String,
        /// The hits once loaded, or why not.
        hits: Option<Result<Vec<Found>, String>>,
        /// The query was read word by word (it did not parse).
        literal: bool,
        /// The one selected.
        selected: usize,
    },
    /// The saved searches (`S`).
    Saved {
        /// Each query.
        searches: Vec<String>,
        /// The one selected.
        selected: usize,
    },
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
    /// A choice among the blobs and web links of a message, to hand one
    /// to the system opener.
    Open {
        /// Each: what is opened, and how it is listed.
        items: Vec<(Openable, String)>,
        /// The one selected.
        selected: usize,
    },
    /// A choice among the links of a message, to follow one.
    Links {
        /// Each link: what it names, and how it is listed.
        links: Vec<(links::Target, String)>,
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
    /// A file to attach to the new post.
    Attach,
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
            Asking::Attach => "Attach a file (empty: drop the last one): ",
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
    /// Whether the prompt searches the whole store (`/`), not what is
    /// loaded (`s`).
    pub store_search: bool,
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
    /// Pictures of posts: asked for, on their way, ready, failed.
    pub images: Images,
    /// Files attached to the new post's draft.
    pub attached: Vec<PathBuf>,
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
            store_search: false,
            ask: None,
            query: None,
            status: StatusBar::default(),
            unread: HashSet::new(),
            following: HashSet::new(),
            names: HashMap::new(),
            images: Images::default(),
            attached: Vec::new(),
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
        ctx!(self)
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
            Tab::Contacts => vec![Effect::LoadRooms],
            _ => Vec::new(),
        }
    }

    /// Asks the node for the pictures the open thread shows that were not
    /// asked for yet.
    fn want_pictures(&mut self) -> Vec<Effect> {
        /// The most blobs asked for at once.
        const AT_ONCE: usize = 32;
        let Some(view) = &self.thread.view else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for p in view.entries.iter().filter_map(|e| e.post()) {
            let mentioned = crate::screens::image_mentions(p);
            ids.extend(crate::markdown::images(&p.body(), &mentioned));
            if ids.len() >= AT_ONCE {
                break;
            }
        }
        ids.into_iter()
            .take(AT_ONCE)
            .filter(|id| self.images.ask(id))
            .map(Effect::GetBlob)
            .collect()
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
        self.thread.fit(body, &ctx!(self));
        self.messages.fit(&ctx!(self), body);
        self.groups.fit(body);
        self.contacts.fit(body);
        self.log.fit(body);
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
            if let Some(a) = &mut app.ask {
                a.text.push_str(text::one_line(&s).trim());
                a.error = None;
            } else if let Some(c) = &mut app.compose {
                c.editor.insert_str(&s);
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
