//! Tab 5, contacts: whom we follow, who follows us, whom we block, the
//! rooms we are in and who attends each (whether we follow them, whether
//! they are connected); and a person's profile (name, feed id, description, how we relate, their
//! posts a page at a time).
//!
//! Imports the shared screen parts, `event`, `model` and `text`; never the
//! backend or I/O.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{CARD, Ctx, Move, Nav, Paged, Tab, card, style, view_lines};
use crate::event::{Effect, Page};
use crate::model::{Attendant, Person, Post, Profile, RoomView, Why};
use crate::text;

/// One row of the contacts list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// A section title with its count.
    Header(&'static str, usize),
    /// A person.
    Person(Person),
    /// A room we are in (its feed id), with how many attend it.
    Room(String, usize),
    /// Someone attending the room above.
    Attendant(Attendant),
    /// An empty section.
    Empty,
}

impl Row {
    /// The feed of a selectable row.
    fn feed(&self) -> Option<(String, Option<String>)> {
        match self {
            Row::Person(p) => Some((p.id.clone(), p.name.clone())),
            Row::Attendant(a) => Some((a.id.to_string(), a.name.clone())),
            _ => None,
        }
    }
}

/// The contacts screen's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contacts {
    /// Our own profile: our contacts.
    pub mine: Option<Profile>,
    /// Why loading it failed.
    pub error: Option<String>,
    /// The rooms we are in, once loaded.
    pub rooms: Option<Vec<RoomView>>,
    /// Why loading the rooms failed.
    pub rooms_error: Option<String>,
    /// Selection among the people listed (attendants included).
    pub nav: Nav,
    /// The profile open, if any.
    pub person: Option<PersonView>,
}

/// A person's profile and posts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PersonView {
    /// Their feed id.
    pub id: String,
    /// Their profile, once loaded.
    pub profile: Option<Profile>,
    /// Why loading it failed.
    pub error: Option<String>,
    /// Their posts.
    pub posts: Paged,
    /// Selection among the posts.
    pub nav: Nav,
    /// The tab to go back to, when it was opened from another one.
    pub back_to: Option<Tab>,
    /// How their feed replicates, once read.
    pub why: Option<Why>,
}

/// How a feed replicates, in a few words: whether we replicate it, what
/// we hold, and how far ahead of us a connected peer is.
pub fn replication(w: &Why) -> String {
    if !w.wanted {
        return "not replicated".to_string();
    }
    let mut out = match w.held {
        0 => "replicated, nothing held yet".to_string(),
        n => format!("replicated, {n} held"),
    };
    if let Some(ahead) = w.peers.iter().map(|p| p.seq).max().filter(|s| *s > w.held) {
        out.push_str(&format!(", a peer has {} more", ahead - w.held));
    }
    out
}

/// Rows above a profile's posts.
const PROFILE_HEAD: u16 = 5;

/// Load more posts when the selection is this close to the end.
const NEAR_END: usize = 10;

impl Contacts {
    /// The rows of the list: following, followers, blocked; then the
    /// rooms, each with its attendants, once loaded.
    pub fn rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        if let Some(p) = &self.mine {
            for (title, list) in [
                ("Following", &p.contacts.follows),
                ("Followers", &p.contacts.followers),
                ("Blocked", &p.contacts.blocks),
            ] {
                out.push(Row::Header(title, list.len()));
                if list.is_empty() {
                    out.push(Row::Empty);
                }
                out.extend(list.iter().cloned().map(Row::Person));
            }
        }
        if let Some(rooms) = &self.rooms {
            out.push(Row::Header("Rooms", rooms.len()));
            if rooms.is_empty() {
                out.push(Row::Empty);
            }
            for r in rooms {
                out.push(Row::Room(r.room.to_string(), r.attendants.len()));
                if r.attendants.is_empty() {
                    out.push(Row::Empty);
                }
                out.extend(r.attendants.iter().cloned().map(Row::Attendant));
            }
        }
        out
    }

    /// Row indices of the people in [`Contacts::rows`] (attendants too).
    fn person_rows(rows: &[Row]) -> Vec<usize> {
        rows.iter()
            .enumerate()
            .filter(|(_, r)| r.feed().is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// The selected person in the list (a contact or an attendant).
    pub fn selected_person(&self) -> Option<Person> {
        let rows = self.rows();
        let i = *Self::person_rows(&rows).get(self.nav.selected)?;
        rows[i].feed().map(|(id, name)| Person { id, name })
    }

    /// The selected row, when it is a room's attendant.
    pub fn selected_attendant(&self) -> Option<Attendant> {
        let rows = self.rows();
        let i = *Self::person_rows(&rows).get(self.nav.selected)?;
        match &rows[i] {
            Row::Attendant(a) => Some(a.clone()),
            _ => None,
        }
    }

    /// Selects the `nth` row showing `id` again after the rows changed
    /// (the same section when it is still there).
    fn reselect(&mut self, was: Option<(usize, String)>) {
        let Some((row, id)) = was else {
            return;
        };
        let rows = self.rows();
        let people = Self::person_rows(&rows);
        let same = |r: &usize| rows[*r].feed().is_some_and(|(f, _)| f == id);
        // The nearest row showing the same feed: a person can be listed as
        // a contact and as an attendant.
        if let Some(i) = (0..people.len())
            .filter(|i| same(&people[*i]))
            .min_by_key(|i| people[*i].abs_diff(row))
        {
            self.nav.selected = i;
        }
    }

    /// The selected row and its feed, to select it again.
    fn selection(&self) -> Option<(usize, String)> {
        let rows = self.rows();
        let row = *Self::person_rows(&rows).get(self.nav.selected)?;
        rows[row].feed().map(|(id, _)| (row, id))
    }

    /// The selected post of the open profile.
    pub fn selected_post(&self) -> Option<&Post> {
        let v = self.person.as_ref()?;
        v.posts.posts.get(v.nav.selected)
    }

    /// The feed the screen is about: the open profile, else the selected
    /// person.
    pub fn selected_feed(&self) -> Option<(String, Option<String>)> {
        match &self.person {
            Some(v) => Some((
                v.id.clone(),
                v.profile.as_ref().and_then(|p| p.name.clone()),
            )),
            None => self.selected_person().map(|p| (p.id, p.name)),
        }
    }

    fn list_rows(body: Rect) -> usize {
        body.height.saturating_sub(1) as usize
    }

    fn post_rows(body: Rect) -> usize {
        body.height.saturating_sub(PROFILE_HEAD) as usize
    }

    /// Keeps the selections in view of `body`.
    pub fn fit(&mut self, body: Rect) {
        let rows = self.rows();
        let people = Self::person_rows(&rows);
        self.nav.selected = self.nav.selected.min(people.len().saturating_sub(1));
        // Scrolling is by rows, headers included.
        let selected_row = people.get(self.nav.selected).copied().unwrap_or(0);
        self.nav.offset = super::scroll(
            self.nav.offset,
            &vec![1; rows.len()],
            selected_row,
            Self::list_rows(body),
        );
        if let Some(v) = &mut self.person {
            let n = v.posts.posts.len();
            v.nav.fit(n, &vec![CARD; n], Self::post_rows(body));
        }
    }

    /// Takes our own profile (our contacts).
    pub fn on_mine(&mut self, result: Result<Profile, String>, body: Rect) {
        match result {
            Ok(p) => {
                let was = self.selection();
                self.mine = Some(p);
                self.error = None;
                self.reselect(was);
            }
            Err(e) => self.error = Some(e),
        }
        self.fit(body);
    }

    /// Takes the rooms we are in and their attendants.
    pub fn on_rooms(&mut self, result: Result<Vec<RoomView>, String>, body: Rect) {
        match result {
            Ok(rooms) => {
                let was = self.selection();
                self.rooms = Some(rooms);
                self.rooms_error = None;
                self.reselect(was);
            }
            Err(e) => self.rooms_error = Some(e),
        }
        self.fit(body);
    }

    /// Opens a person's profile.
    pub fn open_person(&mut self, id: &str, back_to: Option<Tab>) -> Vec<Effect> {
        let mut v = PersonView {
            id: id.to_string(),
            back_to,
            ..PersonView::default()
        };
        let page = v.posts.refresh();
        self.person = Some(v);
        let mut effects = vec![Effect::LoadProfile(id.to_string())];
        effects.extend(page.map(|page| Effect::LoadPostsBy {
            id: id.to_string(),
            page,
        }));
        effects
    }

    /// Closes the open profile: `None` when none was open, else the tab to
    /// go back to (if it was opened from another one).
    pub fn close(&mut self) -> Option<Option<Tab>> {
        self.person.take().map(|v| v.back_to)
    }

    /// Takes how the open person's feed replicates.
    pub fn on_why(&mut self, id: &str, why: Option<Why>) {
        if let Some(v) = &mut self.person
            && v.id == id
            && why.is_some()
        {
            v.why = why;
        }
    }

    /// Takes a loaded profile of the open person.
    pub fn on_profile(&mut self, id: &str, result: Result<Profile, String>) {
        if let Some(v) = &mut self.person
            && v.id == id
        {
            match result {
                Ok(p) => {
                    v.profile = Some(p);
                    v.error = None;
                }
                Err(e) => v.error = Some(e),
            }
        }
    }

    /// Takes a loaded page of the open person's posts.
    pub fn on_posts(
        &mut self,
        id: &str,
        page: Page,
        result: Result<Vec<Post>, String>,
        body: Rect,
    ) -> Vec<Effect> {
        let Some(v) = &mut self.person else {
            return Vec::new();
        };
        if v.id != id {
            return Vec::new();
        }
        let key = v.posts.posts.get(v.nav.selected).map(|p| p.key.clone());
        let mut effects: Vec<Effect> = v
            .posts
            .apply(page, result)
            .map(|page| Effect::LoadPostsBy {
                id: id.to_string(),
                page,
            })
            .into_iter()
            .collect();
        if let Some(i) = key.and_then(|k| v.posts.index_of(&k)) {
            v.nav.selected = i;
        }
        self.fit(body);
        effects.extend(self.more_if_near_end());
        effects
    }

    fn more_if_near_end(&mut self) -> Vec<Effect> {
        let Some(v) = &mut self.person else {
            return Vec::new();
        };
        if v.nav.selected + NEAR_END >= v.posts.posts.len() {
            let id = v.id.clone();
            return v
                .posts
                .more()
                .map(|page| Effect::LoadPostsBy { id, page })
                .into_iter()
                .collect();
        }
        Vec::new()
    }

    /// Reloads the open profile's newest posts.
    pub fn refresh_person(&mut self) -> Vec<Effect> {
        let Some(v) = &mut self.person else {
            return Vec::new();
        };
        let id = v.id.clone();
        let mut effects = vec![Effect::LoadProfile(id.clone())];
        effects.extend(
            v.posts
                .refresh()
                .map(|page| Effect::LoadPostsBy { id, page }),
        );
        effects
    }

    /// Moves the selection in the list or among the profile's posts.
    pub fn on_move(&mut self, m: Move, body: Rect) -> Vec<Effect> {
        match &mut self.person {
            Some(v) => {
                let rows = Self::post_rows(body);
                v.nav
                    .apply(m, v.posts.posts.len(), (rows / CARD / 2).max(1));
            }
            None => {
                let n = Self::person_rows(&self.rows()).len();
                self.nav.apply(m, n, (Self::list_rows(body) / 2).max(1));
            }
        }
        self.fit(body);
        self.more_if_near_end()
    }

    /// Search texts, one per selectable row.
    pub fn haystacks(&self, ctx: &Ctx<'_>) -> Vec<String> {
        match &self.person {
            Some(v) => v
                .posts
                .posts
                .iter()
                .map(|p| super::haystack(p, ctx))
                .collect(),
            None => self
                .rows()
                .into_iter()
                .filter_map(|r| r.feed())
                .map(|(id, name)| format!("{} {id}", ctx.who(&id, name.as_deref())))
                .collect(),
        }
    }

    /// Selects the `i`th selectable row (a search match).
    pub fn select(&mut self, i: usize, body: Rect) {
        match &mut self.person {
            Some(v) => v.nav.selected = i,
            None => self.nav.selected = i,
        }
        self.fit(body);
    }

    /// Draws the list or the open profile.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        match &self.person {
            Some(v) => self.draw_person(v, f, area, ctx),
            None => self.draw_list(f, area, ctx),
        }
    }

    fn draw_list(&self, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        let mut title = vec![Span::styled(" Contacts", style::title())];
        if self.mine.is_none() && self.error.is_none() {
            title.push(Span::styled(" · loading…", style::dim()));
        }
        for e in [&self.error, &self.rooms_error].into_iter().flatten() {
            title.push(Span::styled(
                format!(" · {}", text::one_line(e)),
                style::error(),
            ));
        }
        let rows = self.rows();
        let people = Self::person_rows(&rows);
        let selected_row = people.get(self.nav.selected).copied();
        let n = Self::list_rows(area);
        let offset = super::scroll(
            self.nav.offset,
            &vec![1; rows.len()],
            selected_row.unwrap_or(0),
            n,
        );
        let width = area.width as usize;
        let mut lines = vec![Line::from(title)];
        for (i, row) in rows.iter().enumerate().skip(offset).take(n) {
            lines.push(match row {
                Row::Header(t, count) => {
                    Line::from(Span::styled(format!(" {t} ({count})"), style::title()))
                }
                Row::Empty => Line::from(Span::styled("    (none)", style::dim())),
                Row::Room(id, count) => {
                    // Its name when known, else the start of its id.
                    let name = ctx.who(id, None);
                    let short = text::short_id(id);
                    let id_part = if name == short {
                        String::new()
                    } else {
                        format!("  {short}")
                    };
                    Line::from(vec![
                        Span::raw("  "),
                        Span::styled(text::fit(&name, (width / 3).max(4)), style::name()),
                        Span::styled(format!("{id_part} · {count} attending"), style::dim()),
                    ])
                }
                Row::Attendant(a) => {
                    let id = a.id.to_string();
                    let mut spans = vec![
                        if Some(i) == selected_row {
                            Span::styled(style::MARK, style::mark())
                        } else {
                            Span::raw(" ")
                        },
                        Span::raw("   "),
                        if a.connected {
                            Span::styled("●", style::online())
                        } else {
                            Span::styled("○", style::dim())
                        },
                        Span::raw(" "),
                        Span::styled(
                            text::fit(&ctx.who(&id, a.name.as_deref()), (width / 3).max(4)),
                            style::name(),
                        ),
                        Span::styled(format!("  {}", text::short_id(&id)), style::dim()),
                    ];
                    let follows = a.following || ctx.following.contains(&id);
                    spans.push(Span::styled(
                        if follows {
                            " · following"
                        } else {
                            " · not followed"
                        },
                        style::dim(),
                    ));
                    if a.connected {
                        spans.push(Span::styled(" · connected", style::dim()));
                    }
                    Line::from(spans)
                }
                Row::Person(p) => {
                    let selected = Some(i) == selected_row;
                    let mut spans = vec![
                        if selected {
                            Span::styled(style::MARK, style::mark())
                        } else {
                            Span::raw(" ")
                        },
                        Span::raw("  "),
                        Span::styled(
                            text::fit(&ctx.who(&p.id, p.name.as_deref()), (width / 3).max(4)),
                            style::name(),
                        ),
                        Span::styled(format!("  {}", text::short_id(&p.id)), style::dim()),
                    ];
                    if ctx.following.contains(&p.id) && p.id != ctx.me {
                        spans.push(Span::styled(" · following", style::dim()));
                    }
                    Line::from(spans)
                }
            });
        }
        f.render_widget(Paragraph::new(lines), area);
    }

    fn draw_person(&self, v: &PersonView, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        let width = area.width as usize;
        let name = ctx.who(&v.id, v.profile.as_ref().and_then(|p| p.name.as_deref()));
        let mut lines = vec![Line::from(vec![
            Span::styled(
                format!(" {}", text::fit(&name, (width / 2).max(4))),
                style::name(),
            ),
            Span::styled(format!("  {}", text::one_line(&v.id)), style::dim()),
        ])];
        let mut relation = Vec::new();
        if v.id == ctx.me {
            relation.push("this is you".to_string());
        } else {
            relation.push(if ctx.following.contains(&v.id) {
                "you follow them".into()
            } else {
                "you do not follow them".into()
            });
            let blocked = self
                .mine
                .as_ref()
                .is_some_and(|m| m.contacts.blocks.iter().any(|p| p.id == v.id));
            if blocked {
                relation.push("you block them".into());
            }
        }
        match &v.profile {
            Some(p) => {
                if p.contacts.follows.iter().any(|f| f.id == ctx.me) && v.id != ctx.me {
                    relation.push("they follow you".into());
                }
                // Linked devices: one person; links only one side made.
                if !p.devices.is_empty() {
                    let ids: Vec<String> =
                        p.devices.iter().map(|d| text::short_id(&d.id)).collect();
                    relation.push(format!("one person with {}", ids.join(", ")));
                }
                if !p.claimed_devices.is_empty() {
                    relation.push(format!(
                        "claims {} device{} (claimed by one side)",
                        p.claimed_devices.len(),
                        if p.claimed_devices.len() == 1 {
                            ""
                        } else {
                            "s"
                        }
                    ));
                }
                relation.extend(v.why.as_ref().map(replication));
                lines.push(Line::from(Span::styled(
                    format!("   {}", relation.join(" · ")),
                    style::dim(),
                )));
                let about = p
                    .description
                    .as_deref()
                    .map(text::one_line)
                    .unwrap_or_default();
                lines.push(Line::from(format!(
                    "   {}",
                    text::fit(&about, width.saturating_sub(4))
                )));
                lines.push(Line::from(Span::styled(
                    format!(
                        "   follows {} · followers {} · blocks {}",
                        p.contacts.follows.len(),
                        p.contacts.followers.len(),
                        p.contacts.blocks.len()
                    ),
                    style::dim(),
                )));
            }
            None => {
                lines.push(Line::from(Span::styled(
                    match &v.error {
                        Some(e) => format!("   {}", text::one_line(e)),
                        None => "   loading…".to_string(),
                    },
                    style::dim(),
                )));
                lines.push(Line::from(""));
                lines.push(Line::from(""));
            }
        }
        let n = v.posts.posts.len();
        let status = match (&v.posts.error, v.posts.loaded) {
            (Some(e), _) => format!(" Posts · {}", text::one_line(e)),
            (None, false) => " Posts · loading…".to_string(),
            (None, true) if n == 0 => " Posts · none yet".to_string(),
            (None, true) => format!(" Posts · {n}{}", if v.posts.exhausted { "" } else { "+" }),
        };
        lines.push(Line::from(Span::styled(status, style::title())));
        lines.truncate(PROFILE_HEAD as usize);
        let rows = Self::post_rows(area);
        let heights = vec![CARD; n];
        let offset = super::scroll(v.nav.offset, &heights, v.nav.selected, rows);
        lines.extend(view_lines(&heights, offset, rows, |i| {
            card(&v.posts.posts[i], ctx, area.width, i == v.nav.selected)
        }));
        f.render_widget(Paragraph::new(lines), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal::api::PeerClaim;

    #[test]
    fn replication_says_what_we_hold_and_how_far_a_peer_is_ahead() {
        let mut w = Why {
            wanted: true,
            held: 12,
            ..Why::default()
        };
        assert_eq!(replication(&w), "replicated, 12 held");
        w.peers = vec![
            PeerClaim {
                peer: "@a".into(),
                seq: 15,
                since_ms: 0,
            },
            PeerClaim {
                peer: "@b".into(),
                seq: 9,
                since_ms: 0,
            },
        ];
        assert_eq!(replication(&w), "replicated, 12 held, a peer has 3 more");
        w.held = 0;
        w.peers.clear();
        assert_eq!(replication(&w), "replicated, nothing held yet");
        w.wanted = false;
        assert_eq!(replication(&w), "not replicated");
    }
}
