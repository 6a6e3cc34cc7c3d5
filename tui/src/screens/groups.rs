//! Tab 4, private groups: the groups we are (or were) in, and for the
//! selected one its members (admins marked), its epochs (each rekey starts
//! one, and says whom it removed) and its posts, newest first, paged by
//! cursor like the timeline.
//!
//! On a wide terminal the list is on the left and the selected group on
//! the right; on a narrow one the list fills the body until Enter focuses
//! the group. Imports the shared screen parts, `event`, `model` and
//! `text`; never the backend or I/O.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{CARD, Ctx, Move, Nav, Paged, card, style, view_lines};
use crate::event::{Effect, Page};
use crate::model::{GroupInfo, Post, group_title};
use crate::text;

/// Rows of a group in the list.
const ROW: usize = 2;

/// Rows above the posts of the selected group: its title, members,
/// epochs, and the posts' title.
pub const HEADER: usize = 4;

/// Load more posts when the selection is this close to the end.
const NEAR_END: usize = 10;

/// The width from which the list and the group are side by side.
pub const SIDE_BY_SIDE: u16 = 70;

/// The groups screen's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Groups {
    /// The groups, as the node lists them.
    pub list: Vec<GroupInfo>,
    /// The list came once.
    pub loaded: bool,
    /// The list is being loaded.
    pub loading: bool,
    /// Why the last list load failed.
    pub error: Option<String>,
    /// Selection among groups.
    pub nav: Nav,
    /// The posts of [`Groups::posts_of`].
    pub posts: Paged,
    /// The group whose posts are loaded.
    pub posts_of: Option<String>,
    /// Selection among the posts.
    pub posts_nav: Nav,
    /// The posts have the focus (else the list).
    pub focus_posts: bool,
    /// A group to select once it is listed (one we just made).
    pub select_when_listed: Option<String>,
}

impl Groups {
    /// The selected group.
    pub fn selected(&self) -> Option<&GroupInfo> {
        self.list.get(self.nav.selected)
    }

    /// The selected post, when the posts have the focus.
    pub fn selected_post(&self) -> Option<&Post> {
        if !self.focus_posts {
            return None;
        }
        self.posts.posts.get(self.posts_nav.selected)
    }

    /// Rows of the list (a title line above it).
    pub fn list_rows(body: Rect) -> usize {
        body.height.saturating_sub(1) as usize
    }

    /// Rows of the posts (the group's header above them).
    pub fn post_rows(body: Rect) -> usize {
        (body.height as usize).saturating_sub(HEADER)
    }

    fn post_heights(&self) -> Vec<usize> {
        vec![CARD; self.posts.posts.len()]
    }

    /// Loads the list, and the posts of the group shown.
    pub fn refresh(&mut self) -> Vec<Effect> {
        self.loading = true;
        let mut e = vec![Effect::LoadGroups];
        e.extend(self.refresh_posts());
        e
    }

    fn refresh_posts(&mut self) -> Vec<Effect> {
        let Some(group) = self.posts_of.clone() else {
            return Vec::new();
        };
        self.posts
            .refresh()
            .map(|page| Effect::LoadGroupPosts { group, page })
            .into_iter()
            .collect()
    }

    /// Shows the posts of the selected group, loading them when another
    /// group's were shown.
    fn follow_selection(&mut self) -> Vec<Effect> {
        let id = self.selected().map(|g| g.id.clone());
        if id == self.posts_of {
            return Vec::new();
        }
        self.posts = Paged::default();
        self.posts_nav = Nav::default();
        self.posts_of = id;
        if self.posts_of.is_none() {
            self.focus_posts = false;
        }
        self.refresh_posts()
    }

    fn more_if_near_end(&mut self) -> Vec<Effect> {
        let Some(group) = self.posts_of.clone() else {
            return Vec::new();
        };
        if self.posts_nav.selected + NEAR_END >= self.posts.posts.len() {
            return self
                .posts
                .more()
                .map(|page| Effect::LoadGroupPosts { group, page })
                .into_iter()
                .collect();
        }
        Vec::new()
    }

    /// Keeps the selections in view of `body`.
    pub fn fit(&mut self, body: Rect) {
        let n = self.list.len();
        self.nav.fit(n, &vec![ROW; n], Self::list_rows(body));
        let h = self.post_heights();
        self.posts_nav.fit(h.len(), &h, Self::post_rows(body));
    }

    /// Moves the selection among groups (then shows the newly selected
    /// group's posts) or among the posts.
    pub fn on_move(&mut self, m: Move, body: Rect) -> Vec<Effect> {
        if self.focus_posts {
            let rows = Self::post_rows(body);
            self.posts_nav
                .apply(m, self.posts.posts.len(), (rows / CARD / 2).max(1));
            self.fit(body);
            return self.more_if_near_end();
        }
        let rows = Self::list_rows(body);
        self.nav.apply(m, self.list.len(), (rows / ROW / 2).max(1));
        self.fit(body);
        self.follow_selection()
    }

    /// Focuses the selected group's posts; false when there is no group.
    pub fn open(&mut self) -> bool {
        if self.selected().is_none() {
            return false;
        }
        self.focus_posts = true;
        true
    }

    /// Gives the focus back to the list; false when it had it.
    pub fn back(&mut self) -> bool {
        std::mem::take(&mut self.focus_posts)
    }

    /// Takes the loaded list, keeping the same group selected.
    pub fn on_groups(&mut self, result: Result<Vec<GroupInfo>, String>, body: Rect) -> Vec<Effect> {
        self.loading = false;
        match result {
            Err(e) => {
                self.error = Some(e);
                return Vec::new();
            }
            Ok(list) => {
                let keep = self
                    .select_when_listed
                    .clone()
                    .or_else(|| self.selected().map(|g| g.id.clone()));
                self.error = None;
                self.loaded = true;
                self.list = list;
                if let Some(id) = keep
                    && let Some(i) = self.list.iter().position(|g| g.id == id)
                {
                    self.nav.selected = i;
                    if self.select_when_listed.as_ref() == Some(&id) {
                        self.select_when_listed = None;
                        self.focus_posts = false;
                    }
                }
            }
        }
        self.fit(body);
        self.follow_selection()
    }

    /// Takes a loaded page of a group's posts (dropped when another
    /// group is shown by now).
    pub fn on_posts(
        &mut self,
        group: &str,
        page: Page,
        result: Result<Vec<Post>, String>,
        body: Rect,
    ) -> Vec<Effect> {
        if self.posts_of.as_deref() != Some(group) {
            return Vec::new();
        }
        let old_key = self
            .posts
            .posts
            .get(self.posts_nav.selected)
            .map(|p| p.key.clone());
        let at_top = self.posts_nav.selected == 0;
        let mut effects: Vec<Effect> = self
            .posts
            .apply(page, result)
            .map(|page| Effect::LoadGroupPosts {
                group: group.to_string(),
                page,
            })
            .into_iter()
            .collect();
        if !at_top && let Some(i) = old_key.and_then(|k| self.posts.index_of(&k)) {
            self.posts_nav.selected = i;
        }
        self.fit(body);
        effects.extend(self.more_if_near_end());
        effects
    }

    /// Selects the `i`th row of the list with the focus (a search match).
    pub fn select(&mut self, i: usize, body: Rect) -> Vec<Effect> {
        if self.focus_posts {
            self.posts_nav.selected = i;
            self.fit(body);
            return Vec::new();
        }
        self.nav.selected = i;
        self.fit(body);
        self.follow_selection()
    }

    /// Search texts, one per row of the list with the focus.
    pub fn haystacks(&self, ctx: &Ctx<'_>) -> Vec<String> {
        if self.focus_posts {
            return self
                .posts
                .posts
                .iter()
                .map(|p| super::haystack(p, ctx))
                .collect();
        }
        self.list
            .iter()
            .map(|g| {
                let names: Vec<String> = g.members.iter().map(|m| ctx.who(m, None)).collect();
                format!("{} {}", group_title(g), names.join(" "))
            })
            .collect()
    }

    /// What a group's second row in the list says.
    fn state_of(g: &GroupInfo) -> (String, ratatui::style::Style) {
        let n = g.members.len();
        let count = format!("{n} member{}", if n == 1 { "" } else { "s" });
        if !g.member {
            (format!("{count} · removed"), style::error())
        } else if !g.can_post {
            (format!("{count} · waiting for a key"), style::private())
        } else {
            (count, style::dim())
        }
    }

    /// Draws the list and the selected group, side by side when wide.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        if area.width >= SIDE_BY_SIDE {
            let left_w = (area.width / 3).clamp(24, 34);
            let left = Rect::new(area.x, area.y, left_w, area.height);
            let right = Rect::new(
                area.x + left_w + 1,
                area.y,
                area.width - left_w - 1,
                area.height,
            );
            self.draw_list(f, left);
            let sep: Vec<Line<'_>> = (0..area.height)
                .map(|_| Line::from(Span::styled("│", style::dim())))
                .collect();
            f.render_widget(
                Paragraph::new(sep),
                Rect::new(area.x + left_w, area.y, 1, area.height),
            );
            self.draw_group(f, right, ctx);
        } else if self.focus_posts {
            self.draw_group(f, area, ctx);
        } else {
            self.draw_list(f, area);
        }
    }

    fn draw_list(&self, f: &mut Frame<'_>, area: Rect) {
        let width = area.width as usize;
        let mut title = vec![Span::styled(" Groups", style::title())];
        let status = if !self.loaded {
            " · loading…".to_string()
        } else {
            format!(" · {} · private", self.list.len())
        };
        title.push(Span::styled(status, style::dim()));
        if let Some(e) = &self.error {
            title.push(Span::styled(
                format!(" · {}", text::one_line(e)),
                style::error(),
            ));
        }
        let mut lines = vec![Line::from(title)];
        if self.loaded && self.list.is_empty() {
            lines.push(Line::from(Span::styled(
                "  No groups yet: n makes one.",
                style::dim(),
            )));
        }
        let rows = Self::list_rows(area);
        let heights = vec![ROW; self.list.len()];
        let offset = super::scroll(self.nav.offset, &heights, self.nav.selected, rows);
        lines.extend(view_lines(&heights, offset, rows, |i| {
            let g = &self.list[i];
            let selected = i == self.nav.selected;
            let mark = || {
                if selected {
                    Span::styled(style::MARK, style::mark())
                } else {
                    Span::raw(" ")
                }
            };
            let (state, state_style) = Self::state_of(g);
            vec![
                Line::from(vec![
                    mark(),
                    Span::raw(" "),
                    Span::styled(
                        text::fit(&group_title(g), width.saturating_sub(2)),
                        style::name(),
                    ),
                ]),
                Line::from(vec![
                    mark(),
                    Span::raw("   "),
                    Span::styled(text::fit(&state, width.saturating_sub(4)), state_style),
                ]),
            ]
        }));
        f.render_widget(Paragraph::new(lines), area);
    }

    /// "Ada (admin), Björn, you".
    fn members_line(g: &GroupInfo, ctx: &Ctx<'_>) -> String {
        let mut names: Vec<String> = g
            .members
            .iter()
            .map(|m| {
                let who = ctx.who(m, None);
                if g.admins.contains(m) {
                    format!("{who} (admin)")
                } else {
                    who
                }
            })
            .collect();
        if names.is_empty() {
            names.push("none".into());
        }
        names.join(", ")
    }

    /// "2 epochs · epoch 2 removed 美咲".
    fn epochs_line(g: &GroupInfo, ctx: &Ctx<'_>) -> String {
        let n = g.epochs.len();
        let mut s = format!("{n} epoch{}", if n == 1 { "" } else { "s" });
        for (i, e) in g.epochs.iter().enumerate() {
            if !e.removed.is_empty() {
                let who: Vec<String> = e.removed.iter().map(|r| ctx.who(r, None)).collect();
                s.push_str(&format!(" · epoch {} removed {}", i + 1, who.join(", ")));
            }
        }
        if !g.missing.is_empty() {
            s.push_str(" · a key has not reached us yet");
        }
        s
    }

    fn draw_group(&self, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        let width = area.width as usize;
        let Some(g) = self.selected() else {
            if self.loaded {
                let lines = vec![
                    Line::from(Span::styled(" No group selected", style::title())),
                    Line::from(Span::styled(
                        "  n makes a group; you can then add members with a.",
                        style::dim(),
                    )),
                ];
                f.render_widget(Paragraph::new(lines), area);
            }
            return;
        };
        let (state, state_style) = Self::state_of(g);
        let head = |label: &str, value: String| {
            Line::from(vec![
                Span::styled(format!(" {label} "), style::dim()),
                Span::raw(text::fit(
                    &value,
                    width.saturating_sub(text::width(label) + 2),
                )),
            ])
        };
        let name = text::fit(&group_title(g), (width / 2).max(4));
        let mut lines = vec![
            Line::from(vec![
                Span::styled(format!(" {name}"), style::title()),
                Span::styled(" · private group · ", style::private()),
                Span::styled(state, state_style),
            ]),
            head("members", Self::members_line(g, ctx)),
            head("epochs ", Self::epochs_line(g, ctx)),
        ];
        let n = self.posts.posts.len();
        let mut posts_title = vec![Span::styled(
            if self.focus_posts {
                " ▸ Posts".to_string()
            } else {
                " Posts".to_string()
            },
            style::title(),
        )];
        let status = if !self.posts.loaded {
            " · loading…".to_string()
        } else if self.posts.exhausted {
            format!(" · {n} · only members can read them")
        } else {
            format!(" · {n}+ · only members can read them")
        };
        posts_title.push(Span::styled(status, style::dim()));
        if let Some(e) = &self.posts.error {
            posts_title.push(Span::styled(
                format!(" · {}", text::one_line(e)),
                style::error(),
            ));
        }
        lines.push(Line::from(posts_title));
        let rows = Self::post_rows(area);
        if self.posts.loaded && n == 0 && rows > 0 {
            lines.push(Line::from(Span::styled(
                "  No posts yet: c writes to the group.",
                style::dim(),
            )));
        }
        let heights = self.post_heights();
        let offset = super::scroll(
            self.posts_nav.offset,
            &heights,
            self.posts_nav.selected,
            rows,
        );
        lines.extend(view_lines(&heights, offset, rows, |i| {
            card(
                &self.posts.posts[i],
                ctx,
                area.width,
                self.focus_posts && i == self.posts_nav.selected,
            )
        }));
        f.render_widget(Paragraph::new(lines), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str) -> GroupInfo {
        GroupInfo {
            id: id.into(),
            member: true,
            can_post: true,
            ..GroupInfo::default()
        }
    }

    #[test]
    fn the_selection_follows_its_group_and_loads_its_posts() {
        let body = Rect::new(0, 1, 100, 27);
        let mut g = Groups::default();
        let e = g.on_groups(Ok(vec![group("%a"), group("%b")]), body);
        assert!(matches!(&e[..], [Effect::LoadGroupPosts { group, .. }] if group == "%a"));
        let e = g.on_move(Move::Down, body);
        assert!(matches!(&e[..], [Effect::LoadGroupPosts { group, .. }] if group == "%b"));
        // A new group listed above keeps %b selected, without a reload.
        let e = g.on_groups(Ok(vec![group("%new"), group("%a"), group("%b")]), body);
        assert_eq!(g.nav.selected, 2);
        assert!(e.is_empty());
        // Posts of another group arriving late are dropped.
        let page = Page {
            before: None,
            limit: 50,
        };
        g.on_posts("%a", page, Ok(vec![Post::default()]), body);
        assert!(g.posts.posts.is_empty());
    }
}
