//! Tab 1, the timeline: posts and replies of the feeds we follow and our
//! own, newest first, as cards; the next page loads as the selection nears
//! the end of what is loaded.
//!
//! Imports the shared screen parts, `event` and `model`; never the backend
//! or I/O.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{CARD, Ctx, Move, Nav, Paged, card, style, view_lines};
use crate::event::{Effect, Page};
use crate::model::Post;

/// The timeline's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// The posts loaded.
    pub list: Paged,
    /// Selection and scroll.
    pub nav: Nav,
}

/// Load the next page when the selection is this close to the end.
const NEAR_END: usize = 10;

impl Timeline {
    /// The selected post.
    pub fn selected(&self) -> Option<&Post> {
        self.list.posts.get(self.nav.selected)
    }

    /// Rows of the list in a body of `body` rows (a title line above it).
    pub fn rows(body: Rect) -> usize {
        body.height.saturating_sub(1) as usize
    }

    fn heights(&self) -> Vec<usize> {
        vec![CARD; self.list.posts.len()]
    }

    /// Loads the newest page (or asks for it after the current load).
    pub fn refresh(&mut self) -> Vec<Effect> {
        self.list
            .refresh()
            .map(Effect::LoadTimeline)
            .into_iter()
            .collect()
    }

    fn more_if_near_end(&mut self) -> Vec<Effect> {
        if self.nav.selected + NEAR_END >= self.list.posts.len() {
            return self
                .list
                .more()
                .map(Effect::LoadTimeline)
                .into_iter()
                .collect();
        }
        Vec::new()
    }

    /// Moves the selection; may load the next page.
    pub fn on_move(&mut self, m: Move, body: Rect) -> Vec<Effect> {
        let rows = Self::rows(body);
        self.nav
            .apply(m, self.list.posts.len(), (rows / CARD / 2).max(1));
        self.nav.fit(self.list.posts.len(), &self.heights(), rows);
        self.more_if_near_end()
    }

    /// Takes a loaded page, keeping the selected post selected.
    pub fn on_page(
        &mut self,
        page: Page,
        result: Result<Vec<Post>, String>,
        body: Rect,
    ) -> Vec<Effect> {
        let old_key = self.selected().map(|p| p.key.clone());
        let old_index = self.nav.selected;
        let mut effects: Vec<Effect> = self
            .list
            .apply(page, result)
            .map(Effect::LoadTimeline)
            .into_iter()
            .collect();
        let at_top = old_index == 0 && self.nav.offset == 0;
        if at_top {
            // At the top, the selection stays on the newest post.
            self.nav.selected = 0;
        } else if let Some(i) = old_key.and_then(|k| self.list.index_of(&k)) {
            // Posts came in above: the view stays on what it showed,
            // unless it was at the very top.
            if i > old_index && self.nav.offset > 0 {
                self.nav.offset += (i - old_index) * CARD;
            }
            self.nav.selected = i;
        }
        self.nav
            .fit(self.list.posts.len(), &self.heights(), Self::rows(body));
        effects.extend(self.more_if_near_end());
        effects
    }

    /// Keeps the selection in view of `body`.
    pub fn fit(&mut self, body: Rect) {
        self.nav
            .fit(self.list.posts.len(), &self.heights(), Self::rows(body));
    }

    /// Selects the `i`th post (a search match).
    pub fn select(&mut self, i: usize, body: Rect) {
        self.nav.selected = i;
        self.fit(body);
    }

    /// Search texts, one per post.
    pub fn haystacks(&self, ctx: &Ctx<'_>) -> Vec<String> {
        self.list
            .posts
            .iter()
            .map(|p| super::haystack(p, ctx))
            .collect()
    }

    /// Draws the title line and the cards in view.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        let mut title = vec![Span::styled(" Timeline", style::title())];
        let n = self.list.posts.len();
        let posts = if n == 1 { "post" } else { "posts" };
        let status = if !self.list.loaded {
            " · loading…".to_string()
        } else if self.list.loading {
            format!(" · {n} {posts} · loading…")
        } else if self.list.exhausted {
            format!(" · {n} {posts}")
        } else {
            format!(" · {n}+ posts")
        };
        title.push(Span::styled(status, style::dim()));
        if let Some(e) = &self.list.error {
            title.push(Span::styled(
                format!(" · {}", crate::text::one_line(e)),
                style::error(),
            ));
        }
        let mut lines = vec![Line::from(title)];
        if self.list.loaded && n == 0 {
            lines.push(Line::from(Span::styled(
                "  Nothing here yet: post with c, or follow someone (F on a person).",
                style::dim(),
            )));
        }
        let rows = Self::rows(area);
        let offset = super::scroll(self.nav.offset, &self.heights(), self.nav.selected, rows);
        lines.extend(view_lines(&self.heights(), offset, rows, |i| {
            card(&self.list.posts[i], ctx, area.width, i == self.nav.selected)
        }));
        f.render_widget(Paragraph::new(lines), area);
    }
}
