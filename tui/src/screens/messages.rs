//! Tab 3, private messages: the private-box messages we can read, grouped
//! into conversations by their participants (newest conversation first);
//! a conversation opens as its messages, oldest first.
//!
//! Imports the shared screen parts, `event`, `model` and `text`; never the
//! backend or I/O.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Ctx, Move, Nav, Paged, full, full_height, style, view_lines};
use crate::event::{Effect, Page};
use crate::model::Post;
use crate::text;

/// Messages grouped by who takes part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Participants besides us, sorted (just us for notes to self).
    pub people: Vec<String>,
    /// Indices of its messages among the loaded ones, newest first.
    pub posts: Vec<usize>,
}

/// Groups messages (newest first) by participants: author and recipients,
/// without us. Conversations come newest first.
pub fn conversations(posts: &[Post], me: &str) -> Vec<Conversation> {
    let mut out: Vec<Conversation> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for (i, p) in posts.iter().enumerate() {
        let mut people: Vec<String> = p
            .recps
            .iter()
            .chain(std::iter::once(&p.author))
            .filter(|f| f.as_str() != me)
            .cloned()
            .collect();
        people.sort();
        people.dedup();
        if people.is_empty() {
            people.push(me.to_string());
        }
        match index.get(&people) {
            Some(&c) => out[c].posts.push(i),
            None => {
                index.insert(people.clone(), out.len());
                out.push(Conversation {
                    people,
                    posts: vec![i],
                });
            }
        }
    }
    out
}

/// The messages screen's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Messages {
    /// The private messages loaded, newest first.
    pub list: Paged,
    /// Selection among conversations.
    pub nav: Nav,
    /// The conversation open, if any.
    pub open: Option<Open>,
}

/// An open conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Open {
    /// Its participants.
    pub people: Vec<String>,
    /// Selection among its messages (oldest first).
    pub nav: Nav,
}

/// Rows of a conversation in the list.
const ROW: usize = 2;

/// Load more when the selection is this close to the end.
const NEAR_END: usize = 5;

impl Messages {
    /// The conversations of what is loaded.
    pub fn conversations(&self, me: &str) -> Vec<Conversation> {
        conversations(&self.list.posts, me)
    }

    /// The open conversation's messages, oldest first.
    fn open_posts(&self, me: &str) -> Vec<&Post> {
        let Some(open) = &self.open else {
            return Vec::new();
        };
        self.conversations(me)
            .into_iter()
            .find(|c| c.people == open.people)
            .map(|c| c.posts.iter().rev().map(|&i| &self.list.posts[i]).collect())
            .unwrap_or_default()
    }

    /// The selected message: in an open conversation the one selected, else
    /// the newest of the selected conversation.
    pub fn selected(&self, me: &str) -> Option<&Post> {
        match &self.open {
            Some(open) => self.open_posts(me).get(open.nav.selected).copied(),
            None => {
                let c = self.conversations(me).into_iter().nth(self.nav.selected)?;
                self.list.posts.get(*c.posts.first()?)
            }
        }
    }

    /// The participants of the selected (or open) conversation.
    pub fn selected_people(&self, me: &str) -> Option<Vec<String>> {
        match &self.open {
            Some(open) => Some(open.people.clone()),
            None => self
                .conversations(me)
                .into_iter()
                .nth(self.nav.selected)
                .map(|c| c.people),
        }
    }

    /// Rows of the list (a title line above it).
    pub fn rows(body: Rect) -> usize {
        body.height.saturating_sub(1) as usize
    }

    /// Loads the newest page.
    pub fn refresh(&mut self) -> Vec<Effect> {
        self.list
            .refresh()
            .map(Effect::LoadInbox)
            .into_iter()
            .collect()
    }

    fn more_if_near_end(&mut self, me: &str) -> Vec<Effect> {
        if self.open.is_none() && self.nav.selected + NEAR_END >= self.conversations(me).len() {
            return self
                .list
                .more()
                .map(Effect::LoadInbox)
                .into_iter()
                .collect();
        }
        Vec::new()
    }

    fn open_heights(&self, ctx: &Ctx<'_>, width: u16) -> Vec<usize> {
        self.open_posts(ctx.me)
            .iter()
            .map(|p| full_height(p, ctx, width, 0, false))
            .collect()
    }

    /// Keeps the selections in view of `body`.
    pub fn fit(&mut self, ctx: &Ctx<'_>, body: Rect) {
        let rows = Self::rows(body);
        let n = self.conversations(ctx.me).len();
        self.nav.fit(n, &vec![ROW; n], rows);
        let h = self.open_heights(ctx, body.width);
        if let Some(open) = &mut self.open {
            open.nav.fit(h.len(), &h, rows);
        }
    }

    /// Moves the selection among conversations or within the open one.
    pub fn on_move(&mut self, m: Move, ctx: &Ctx<'_>, body: Rect) -> Vec<Effect> {
        let rows = Self::rows(body);
        if self.open.is_some() {
            let n = self.open_posts(ctx.me).len();
            if let Some(open) = &mut self.open {
                open.nav.apply(m, n, (rows / 6).max(1));
            }
        } else {
            let n = self.conversations(ctx.me).len();
            self.nav.apply(m, n, (rows / ROW / 2).max(1));
        }
        self.fit(ctx, body);
        self.more_if_near_end(ctx.me)
    }

    /// Opens the selected conversation at its newest message; answers the
    /// messages to mark read.
    pub fn open_selected(&mut self, ctx: &Ctx<'_>, body: Rect) -> Vec<u64> {
        let Some(c) = self
            .conversations(ctx.me)
            .into_iter()
            .nth(self.nav.selected)
        else {
            return Vec::new();
        };
        let rxs = c.posts.iter().map(|&i| self.list.posts[i].rx).collect();
        self.open = Some(Open {
            nav: Nav {
                selected: c.posts.len().saturating_sub(1),
                offset: usize::MAX,
            },
            people: c.people,
        });
        self.fit(ctx, body);
        rxs
    }

    /// Closes the open conversation; false when none was open.
    pub fn close(&mut self) -> bool {
        self.open.take().is_some()
    }

    /// Takes a loaded page.
    pub fn on_page(
        &mut self,
        page: Page,
        result: Result<Vec<Post>, String>,
        ctx: &Ctx<'_>,
        body: Rect,
    ) -> Vec<Effect> {
        let people = self.selected_people(ctx.me);
        let selected_key = self.selected(ctx.me).map(|p| p.key.clone());
        let mut effects: Vec<Effect> = self
            .list
            .apply(page, result)
            .map(Effect::LoadInbox)
            .into_iter()
            .collect();
        // Keep the same conversation (and message) selected.
        if let Some(people) = people
            && let Some(i) = self
                .conversations(ctx.me)
                .iter()
                .position(|c| c.people == people)
        {
            self.nav.selected = i;
        }
        let posts: Vec<String> = self
            .open_posts(ctx.me)
            .iter()
            .map(|p| p.key.clone())
            .collect();
        if let (Some(open), Some(key)) = (&mut self.open, selected_key)
            && let Some(i) = posts.iter().position(|k| *k == key)
        {
            open.nav.selected = i;
        }
        self.fit(ctx, body);
        effects.extend(self.more_if_near_end(ctx.me));
        effects
    }

    /// Selects the `i`th row of the current list (a search match).
    pub fn select(&mut self, i: usize, ctx: &Ctx<'_>, body: Rect) {
        match &mut self.open {
            Some(open) => open.nav.selected = i,
            None => self.nav.selected = i,
        }
        self.fit(ctx, body);
    }

    /// Search texts, one per row of the current list.
    pub fn haystacks(&self, ctx: &Ctx<'_>) -> Vec<String> {
        if self.open.is_some() {
            return self
                .open_posts(ctx.me)
                .iter()
                .map(|p| super::haystack(p, ctx))
                .collect();
        }
        self.conversations(ctx.me)
            .iter()
            .map(|c| {
                let names: Vec<String> = c.people.iter().map(|p| ctx.who(p, None)).collect();
                let texts: Vec<&str> = c
                    .posts
                    .iter()
                    .filter_map(|&i| self.list.posts[i].text.as_deref())
                    .collect();
                format!("{} {}", names.join(" "), texts.join(" "))
            })
            .collect()
    }

    fn names(people: &[String], ctx: &Ctx<'_>) -> String {
        let names: Vec<String> = people
            .iter()
            .map(|p| {
                if p == ctx.me {
                    "you (notes to self)".to_string()
                } else {
                    ctx.who(p, None)
                }
            })
            .collect();
        names.join(", ")
    }

    /// Draws the conversation list or the open conversation.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        let rows = Self::rows(area);
        let width = area.width as usize;
        let mut title = vec![Span::styled(" Messages", style::title())];
        if let Some(open) = &self.open {
            title.push(Span::styled(
                format!(" · private with {}", Self::names(&open.people, ctx)),
                style::private(),
            ));
            let posts = self.open_posts(ctx.me);
            let heights: Vec<usize> = posts
                .iter()
                .map(|p| full_height(p, ctx, area.width, 0, false))
                .collect();
            let offset = super::scroll(open.nav.offset, &heights, open.nav.selected, rows);
            let mut lines = vec![Line::from(title)];
            lines.extend(view_lines(&heights, offset, rows, |i| {
                full(posts[i], ctx, area.width, 0, i == open.nav.selected)
            }));
            f.render_widget(Paragraph::new(lines), area);
            return;
        }
        let convs = self.conversations(ctx.me);
        let status = if !self.list.loaded {
            " · loading…".to_string()
        } else {
            format!(
                " · {} conversation{} · private",
                convs.len(),
                if convs.len() == 1 { "" } else { "s" }
            )
        };
        title.push(Span::styled(status, style::dim()));
        if let Some(e) = &self.list.error {
            title.push(Span::styled(
                format!(" · {}", text::one_line(e)),
                style::error(),
            ));
        }
        let mut lines = vec![Line::from(title)];
        if self.list.loaded && convs.is_empty() {
            lines.push(Line::from(Span::styled(
                "  No private messages yet: m on a post writes to its author.",
                style::dim(),
            )));
        }
        let heights = vec![ROW; convs.len()];
        let offset = super::scroll(self.nav.offset, &heights, self.nav.selected, rows);
        lines.extend(view_lines(&heights, offset, rows, |i| {
            let c = &convs[i];
            let selected = i == self.nav.selected;
            let newest = &self.list.posts[c.posts[0]];
            let unread = c
                .posts
                .iter()
                .any(|&j| ctx.unread.contains(&self.list.posts[j].key));
            let mark = || {
                if selected {
                    Span::styled(style::MARK, style::mark())
                } else {
                    Span::raw(" ")
                }
            };
            let n = c.posts.len();
            let head = vec![
                mark(),
                if unread {
                    Span::styled("●", style::unread())
                } else {
                    Span::raw(" ")
                },
                Span::raw(" "),
                Span::styled(
                    text::fit(&Self::names(&c.people, ctx), (width / 2).max(4)),
                    style::name(),
                ),
                Span::styled(
                    format!(
                        " · {} · {n} message{}",
                        text::ago(ctx.now, newest.time),
                        if n == 1 { "" } else { "s" }
                    ),
                    style::dim(),
                ),
            ];
            let who = ctx.who(&newest.author, newest.name.as_deref());
            let preview = text::fit(
                &format!("{who}: {}", super::preview(newest, ctx, width)),
                width.saturating_sub(3),
            );
            vec![
                Line::from(head),
                Line::from(vec![mark(), Span::raw("  "), Span::raw(preview)]),
            ]
        }));
        f.render_widget(Paragraph::new(lines), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(key: &str, author: &str, recps: &[&str]) -> Post {
        Post {
            key: key.into(),
            author: author.into(),
            recps: recps.iter().map(|s| s.to_string()).collect(),
            private: true,
            ..Post::default()
        }
    }

    #[test]
    fn grouped_by_participants_without_me() {
        let posts = vec![
            dm("%1", "@bob", &["@me", "@bob"]),
            dm("%2", "@me", &["@me", "@ada", "@bob"]),
            dm("%3", "@me", &["@bob", "@me"]),
            dm("%4", "@me", &["@me"]),
            dm("%5", "@bob", &["@ada", "@me"]),
        ];
        let c = conversations(&posts, "@me");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].people, vec!["@bob"]);
        assert_eq!(c[0].posts, vec![0, 2]);
        assert_eq!(c[1].people, vec!["@ada", "@bob"]);
        assert_eq!(c[1].posts, vec![1, 4]);
        assert_eq!(c[2].people, vec!["@me"]);
    }
}
