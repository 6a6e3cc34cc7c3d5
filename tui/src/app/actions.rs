//! What each [`Action`] does: [`App::on_action`] is a table from action
//! to a named handler, and the handlers follow by family: moving and
//! opening (the selection, a thread, a conversation, a person, back),
//! writing (the compose pane for a post, a reply, a private message),
//! publishing (like, follow, block), groups (post to one, add or remove a
//! member, make one), the rest (profile, copy, raw JSON, help, quit) and
//! links (following one in the selected message: a thread, a profile, or
//! a word on what it is; opening its blobs and web links with the system
//! opener).
//!
//! Part of the pure core: imports `event`, `keys`, `compose`, `links`,
//! `markdown`, `model`, `screens`, `text`; never the backend, the
//! terminal, tokio or the node.

use std::collections::HashSet;

use super::{App, Ask, Asking, Confirmed, Overlay};
use crate::compose::Target as Draft;
use crate::event::{Effect, Openable};
use crate::keys::Action;
use crate::links::Target;
use crate::markdown::{self, Dest, Found};
use crate::model::PostView as _;
use crate::model::Publish;
use crate::screens::{Ctx, Move, Tab};
use crate::text;

impl App {
    /// Does what `action` asks on the current tab.
    pub(super) fn on_action(&mut self, action: Action) -> Vec<Effect> {
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
                self.compose_here();
                Vec::new()
            }
            Action::ComposeInEditor => self.compose_in_editor(),
            Action::Reply | Action::Like if self.tab == Tab::Groups => {
                self.notify("group posts stay in the group: c writes to it");
                Vec::new()
            }
            Action::AddMember => self.ask_member(),
            Action::RemoveMember => self.choose_member(),
            Action::NextMatch if self.tab == Tab::Groups => {
                self.ask = Some(Ask {
                    what: Asking::NewGroup,
                    text: String::new(),
                    error: None,
                });
                Vec::new()
            }
            Action::Reply => self.reply(),
            Action::Like => self.like(),
            Action::Message => self.message(),
            Action::Follow => self.follow(),
            Action::Block => self.block(),
            Action::Profile => self.profile(),
            Action::Search => {
                self.prompt = Some(String::new());
                self.store_search = true;
                Vec::new()
            }
            Action::Find => {
                self.prompt = Some(String::new());
                self.store_search = false;
                Vec::new()
            }
            Action::Saved => vec![Effect::Searches {
                save: None,
                forget: None,
            }],
            Action::Save => {
                self.notify("w saves a search from its results: / to search");
                Vec::new()
            }
            Action::NextMatch => self.find(false, false),
            Action::PrevMatch => self.find(true, false),
            Action::CopyId => self.copy_id(),
            Action::FollowLink => self.follow_link(),
            Action::OpenExternal => self.open_external(),
            Action::Raw => self.raw(),
            Action::Reload => self.reload(),
            Action::MuteThread => self.mute_thread(),
            Action::MuteAuthor => self.mute_author(),
            Action::History => self.history(),
            Action::NextAccount => vec![Effect::NextAccount],
            Action::Help => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            Action::Quit => {
                self.quit_or_ask();
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

    // Moving and opening.

    /// Moves the selection on the current tab.
    fn on_move(&mut self, m: Move) -> Vec<Effect> {
        let body = self.body();
        match self.tab {
            Tab::Timeline => self.timeline.on_move(m, body),
            Tab::Thread => {
                self.thread.on_move(m, body, &ctx!(self));
                Vec::new()
            }
            Tab::Messages => self.messages.on_move(m, &ctx!(self), body),
            Tab::Groups => self.groups.on_move(m, body),
            Tab::Contacts => self.contacts.on_move(m, body),
            Tab::Log => {
                self.log.on_move(m, body);
                Vec::new()
            }
        }
    }

    /// Opens the selection: a thread, a conversation, a group's posts, a
    /// person. In a thread: the own thread of an entry that has one (a
    /// fork), or from a forked thread's root, the thread it forked from.
    fn open(&mut self) -> Vec<Effect> {
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
            Tab::Thread => {
                let fork = self.thread.selected().filter(|p| p.own_thread > 0);
                let back = self
                    .thread
                    .view
                    .as_ref()
                    .and_then(|v| v.forked_from.as_ref());
                match (fork, back) {
                    (Some(p), _) => {
                        let key = p.key.clone();
                        self.open_thread(&key)
                    }
                    (None, Some(from)) if self.thread.nav.selected == 0 => {
                        let key = from.clone();
                        self.open_thread(&key)
                    }
                    _ => Vec::new(),
                }
            }
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
                    self.open_conversation()
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

    /// Opens the selected conversation and marks its messages read.
    fn open_conversation(&mut self) -> Vec<Effect> {
        let body = self.body();
        let rxs: Vec<u64> = self.messages.open_selected(&ctx!(self), body);
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

    /// Closes what is open (the thread goes back to where it was opened
    /// from); with nothing open, forgets the search.
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

    // Writing.

    /// Opens the compose pane for what this tab writes: a group post on the
    /// groups screen, else a new post. Whether it opened.
    fn compose_here(&mut self) -> bool {
        if self.tab == Tab::Groups {
            self.compose_group()
        } else {
            self.open_compose(Draft::Post, "New post".into());
            true
        }
    }

    /// Opens the compose pane and hands its text to `$EDITOR`.
    fn compose_in_editor(&mut self) -> Vec<Effect> {
        if !self.compose_here() {
            return Vec::new();
        }
        let text = self
            .compose
            .as_ref()
            .map(|c| c.editor.text())
            .unwrap_or_default();
        vec![Effect::Editor(text)]
    }

    /// Opens the compose pane for a reply to the selected message.
    fn reply(&mut self) -> Vec<Effect> {
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
        self.open_compose(Draft::Reply { to }, title);
        Vec::new()
    }

    /// A private message to the people of the selection.
    fn message(&mut self) -> Vec<Effect> {
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
        self.open_compose(Draft::Dm { to }, title);
        Vec::new()
    }

    // Publishing.

    /// Likes the selected message.
    fn like(&mut self) -> Vec<Effect> {
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

    /// Follows the selected person, or unfollows when followed.
    fn follow(&mut self) -> Vec<Effect> {
        let Some((id, who)) = self.selected_other() else {
            return Vec::new();
        };
        let what = if self.following.contains(&id) {
            self.notify(format!("unfollowing {who}…"));
            Publish::Unfollow { id }
        } else if self.tab == Tab::Contacts
            && self.contacts.person.is_none()
            && self.contacts.selected_attendant().is_some()
        {
            self.notify(format!("following {who}: meeting them through the room…"));
            Publish::Follow { id }
        } else {
            self.notify(format!("following {who}…"));
            Publish::Follow { id }
        };
        vec![Effect::Publish { what, draft: None }]
    }

    // Muting (local, never published) and history.

    /// Mutes the selected message's thread, or unmutes it when muted.
    fn mute_thread(&mut self) -> Vec<Effect> {
        let Some(p) = self.selected_post() else {
            self.notify("select a message: z mutes its thread");
            return Vec::new();
        };
        let target = p.key.clone();
        vec![Effect::ToggleMute {
            target,
            what: "the thread".into(),
        }]
    }

    /// Mutes the selected message's author (or the selected person), or
    /// unmutes them when muted.
    fn mute_author(&mut self) -> Vec<Effect> {
        let Some((id, who)) = self.selected_other() else {
            return Vec::new();
        };
        vec![Effect::ToggleMute {
            target: id,
            what: who,
        }]
    }

    /// Shows the selected message's history (its revisions).
    fn history(&mut self) -> Vec<Effect> {
        let Some(p) = self.selected_post() else {
            self.notify("select a message first");
            return Vec::new();
        };
        if !p.edited && p.revises.is_none() {
            self.notify("not edited: no history to show");
            return Vec::new();
        }
        let id = p.key.clone();
        self.overlay = Some(Overlay::Raw {
            id: id.clone(),
            text: None,
            offset: 0,
        });
        vec![Effect::LoadHistory(id)]
    }

    /// Asks before blocking the selected person.
    fn block(&mut self) -> Vec<Effect> {
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

    // Groups.

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

    /// Opens the compose pane for a post to the selected group, or says
    /// why not. Whether it opened.
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
        self.open_compose(Draft::Group(g.id), title);
        true
    }

    /// Asks for a member to add to the selected group.
    fn ask_member(&mut self) -> Vec<Effect> {
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

    /// Offers the selected group's members for removal (admins only).
    fn choose_member(&mut self) -> Vec<Effect> {
        let Some(g) = self.group_for("x removes a member") else {
            return Vec::new();
        };
        if !g.admins.contains(&self.me) {
            self.notify("only the group's admins can remove members");
            return Vec::new();
        }
        let members: Vec<String> = g.members.into_iter().filter(|m| *m != self.me).collect();
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

    // The rest.

    /// Opens the profile of the selected person, or of the author.
    fn profile(&mut self) -> Vec<Effect> {
        let Some((id, _)) = self.selected_feed() else {
            self.notify("select a message or a person first");
            return Vec::new();
        };
        let back = (self.tab != Tab::Contacts).then_some(self.tab);
        self.tab = Tab::Contacts;
        self.contacts.open_person(&id, back)
    }

    /// Copies the selected message's `ssb:` link, or the selected person's.
    fn copy_id(&mut self) -> Vec<Effect> {
        let id = match self.tab {
            Tab::Contacts if self.contacts.person.is_none() => {
                self.selected_feed().map(|(id, _)| id)
            }
            _ => self.selected_post().map(|p| p.key.clone()),
        };
        match id.map(|id| link(&id)) {
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

    /// Shows the selected message's JSON.
    fn raw(&mut self) -> Vec<Effect> {
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

    /// Quits, asking first when drafts would be lost.
    fn quit_or_ask(&mut self) {
        if self.has_drafts() {
            self.overlay = Some(Overlay::Confirm {
                question: "Quit and lose your unsent drafts? (y/n)".into(),
                yes: Confirmed::Quit,
            });
        } else {
            self.quit = true;
        }
    }

    // Links.

    /// The links of the selected message (its markdown read), or a
    /// notice saying why there are none.
    fn links_of_selected(&mut self, what: &str) -> Option<Vec<Found>> {
        let Some(p) = self.selected_post() else {
            self.notify(format!("select a message to {what}"));
            return None;
        };
        let mentioned = crate::screens::image_mentions(p);
        Some(markdown::links(&p.body(), &mentioned))
    }

    /// Follows the link of the selected message, or offers a choice when
    /// it has several.
    fn follow_link(&mut self) -> Vec<Effect> {
        let Some(found) = self.links_of_selected("follow a link in it") else {
            return Vec::new();
        };
        let ctx = self.ctx();
        let mut seen = HashSet::new();
        let mut links: Vec<(Target, String)> = Vec::new();
        for f in found {
            if let Dest::Ssb(t) = f.dest
                && seen.insert(t.clone())
            {
                let shown = listed(&t, f.label.as_deref(), &ctx);
                links.push((t, shown));
            }
        }
        match links.len() {
            0 => {
                self.notify("no links in this message");
                Vec::new()
            }
            1 => {
                let (target, _) = links.remove(0);
                self.go(target)
            }
            _ => {
                self.overlay = Some(Overlay::Links { links, selected: 0 });
                Vec::new()
            }
        }
    }

    /// Hands the selected message's blob or web link to the system
    /// opener, or offers a choice when it has several.
    fn open_external(&mut self) -> Vec<Effect> {
        let Some(found) = self.links_of_selected("open what it links to") else {
            return Vec::new();
        };
        let mut items: Vec<(Openable, String)> = Vec::new();
        for f in found {
            let (item, what) = match f.dest {
                Dest::Ssb(Target::Blob(id)) => {
                    let what = if f.image { "image" } else { "blob" };
                    let name = f.label.clone().unwrap_or_else(|| text::short_id(&id));
                    (
                        Openable::Blob(id),
                        format!("{what:<8} {}", text::fit(&name, 60)),
                    )
                }
                Dest::Web(url) => {
                    let shown = format!("{:<8} {}", "web", text::fit(&text::one_line(&url), 60));
                    (Openable::Web(url), shown)
                }
                Dest::Ssb(_) => continue,
            };
            if !items.iter().any(|(i, _)| *i == item) {
                items.push((item, what));
            }
        }
        match items.len() {
            0 => {
                self.notify(
                    "nothing to open here: O opens a message's files, images and web links",
                );
                Vec::new()
            }
            1 => {
                let (item, _) = items.remove(0);
                self.open_item(item)
            }
            _ => {
                self.overlay = Some(Overlay::Open { items, selected: 0 });
                Vec::new()
            }
        }
    }

    /// Hands one blob or web page to the system opener.
    pub(super) fn open_item(&mut self, item: Openable) -> Vec<Effect> {
        self.notify(match &item {
            Openable::Blob(id) => format!("opening the blob {}…", text::short_id(id)),
            Openable::Web(url) => format!("opening {}…", text::fit(&text::one_line(url), 60)),
        });
        vec![Effect::Open(item)]
    }

    /// Goes where a link leads: a message's thread, a person's profile;
    /// says what any other link is.
    pub(super) fn go(&mut self, target: Target) -> Vec<Effect> {
        match target {
            Target::Message(id) => self.open_thread(&id),
            Target::Feed(id) => {
                let back = match self.tab {
                    Tab::Contacts => self.contacts.person.as_ref().and_then(|v| v.back_to),
                    tab => Some(tab),
                };
                self.tab = Tab::Contacts;
                self.contacts.open_person(&id, back)
            }
            Target::Blob(id) => self.open_item(Openable::Blob(id)),
            Target::Address(address) => {
                self.notify("a peer's address, copied: connect to it with `shoal connect`");
                vec![Effect::Copy(address)]
            }
            Target::Invite(link) => {
                self.notify("an invite, copied: redeem it with `shoal invite accept`");
                vec![Effect::Copy(link)]
            }
            Target::Experimental(action) => {
                self.notify(format!(
                    "an ssb: link for “{}”: not supported here",
                    text::fit(&text::one_line(&action), 40)
                ));
                Vec::new()
            }
        }
    }
}

/// How a link is listed in the choice: what it is, and its text or who
/// or what it names.
fn listed(target: &Target, label: Option<&str>, ctx: &Ctx<'_>) -> String {
    let what = match (label, target) {
        (Some(label), _) if !text::one_line(label).is_empty() => {
            text::fit(&text::one_line(label), 60)
        }
        (_, Target::Feed(id)) => ctx.who(id, None),
        (_, Target::Message(id) | Target::Blob(id)) => text::short_id(id),
        (_, Target::Address(a)) => text::fit(&text::one_line(a), 60),
        (_, Target::Invite(_)) => "a pub's invite".into(),
        (_, Target::Experimental(action)) => text::fit(&text::one_line(action), 60),
    };
    format!("{:<8} {what}", target.kind())
}

/// The `ssb:` link of an id, as other Scuttlebutt apps open it (the id
/// itself when it is not one shoal writes as a link).
pub(super) fn link(id: &str) -> String {
    shoal::uri::of(id).map_or_else(|_| id.to_string(), |u| u.to_string())
}
