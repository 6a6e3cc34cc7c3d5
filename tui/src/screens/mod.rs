//! The screens, one module each, and what they share: the tab list, the
//! drawing context, the styles, list navigation and scrolling, paged post
//! lists, and (in `post`, re-exported here) how a post is drawn as a card
//! or in full (its markdown laid out by [`markdown`](crate::markdown),
//! links drawn as links, pictures placed).
//!
//! A screen owns its state, answers movement and its own loaded data with
//! effects, and draws itself from `&self` (drawing never changes state).
//! Adding a screen (the groups screen) is one module here, one [`Tab`]
//! variant, and its arms in `app` and `ui`. Imports `event`, `model`,
//! `links`, `markdown`, `images` and `text`; never the backend, the
//! terminal or I/O.

pub mod contacts;
pub mod groups;
pub mod log;
pub mod messages;
mod post;
pub mod thread;
pub mod timeline;

use std::collections::{HashMap, HashSet};

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

pub use post::{CARD, Drawn, card, full, full_drawn, full_height, image_mentions, layout, preview};

use crate::event::Page;
use crate::images::Images;
use crate::markdown::Look;
use crate::model::PostView as _;
use crate::model::{Cursor, Post};
use crate::text;

/// The tabs, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tab {
    /// 1: posts of the feeds you follow.
    Timeline,
    /// 2: the thread last opened.
    Thread,
    /// 3: private conversations.
    Messages,
    /// 4: private groups.
    Groups,
    /// 5: following, followers, blocked; profiles.
    Contacts,
    /// 6: what the node did.
    Log,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 6] = [
        Tab::Timeline,
        Tab::Thread,
        Tab::Messages,
        Tab::Groups,
        Tab::Contacts,
        Tab::Log,
    ];

    /// Its key.
    pub fn digit(self) -> char {
        match self {
            Tab::Timeline => '1',
            Tab::Thread => '2',
            Tab::Messages => '3',
            Tab::Groups => '4',
            Tab::Contacts => '5',
            Tab::Log => '6',
        }
    }

    /// The tab of a digit key.
    pub fn from_digit(d: char) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.digit() == d)
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Timeline => "Timeline",
            Tab::Thread => "Thread",
            Tab::Messages => "Messages",
            Tab::Groups => "Groups",
            Tab::Contacts => "Contacts",
            Tab::Log => "Log",
        }
    }

    /// The next (or, with `back`, previous) tab, wrapping around.
    pub fn cycle(self, back: bool) -> Tab {
        let i = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0);
        let n = Tab::ALL.len();
        Tab::ALL[if back { (i + n - 1) % n } else { (i + 1) % n }]
    }
}

/// What drawing needs besides a screen's own state.
pub struct Ctx<'a> {
    /// Now, ms since the epoch.
    pub now: u64,
    /// Our feed id.
    pub me: &'a str,
    /// Messages shown as unread (by id).
    pub unread: &'a HashSet<String>,
    /// Feeds we follow.
    pub following: &'a HashSet<String>,
    /// Names we know, by feed id.
    pub names: &'a HashMap<String, String>,
    /// Pictures of posts.
    pub images: &'a Images,
}

impl Ctx<'_> {
    /// A feed's name (clean, one line), or the start of its id.
    pub fn who(&self, id: &str, name: Option<&str>) -> String {
        if id == self.me {
            return "you".to_string();
        }
        let name = name
            .map(text::one_line)
            .filter(|n| !n.is_empty())
            .or_else(|| self.names.get(id).map(|n| text::one_line(n)));
        match name {
            Some(n) if !n.is_empty() => n,
            _ => text::short_id(id),
        }
    }
}

/// Colours and emphasis, in one place.
pub mod style {
    use super::*;

    /// The selection marker and its colour.
    pub const MARK: &str = "▌";

    /// The selection bar.
    pub fn mark() -> Style {
        Style::default().fg(Color::Yellow)
    }
    /// Names.
    pub fn name() -> Style {
        Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    }
    /// Times, counts, ids.
    pub fn dim() -> Style {
        Style::default().fg(Color::DarkGray)
    }
    /// Unread marks.
    pub fn unread() -> Style {
        Style::default()
            .fg(Color::LightBlue)
            .add_modifier(Modifier::BOLD)
    }
    /// Private messages.
    pub fn private() -> Style {
        Style::default().fg(Color::Magenta)
    }
    /// Titles.
    pub fn title() -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    /// Connected peers.
    pub fn online() -> Style {
        Style::default().fg(Color::Green)
    }
    /// Errors.
    pub fn error() -> Style {
        Style::default().fg(Color::Red)
    }
    /// The selected item's text.
    pub fn selected() -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    /// Links in a post's text (over the text's own style).
    pub fn link() -> Style {
        Style::default().add_modifier(Modifier::UNDERLINED)
    }
    /// Code in a post's text.
    pub fn code() -> Style {
        Style::default().fg(Color::Green)
    }
    /// How a run of a post's text looks, over `base`.
    pub fn look(base: Style, look: Look) -> Style {
        let mut s = base;
        if look.strong {
            s = s.add_modifier(Modifier::BOLD);
        }
        if look.emphasis {
            s = s.add_modifier(Modifier::ITALIC);
        }
        if look.strike {
            s = s.add_modifier(Modifier::CROSSED_OUT);
        }
        if look.code {
            s = s.patch(code());
        }
        if look.mark {
            s = s.patch(dim());
        }
        if look.link {
            s = s.patch(link());
        }
        s
    }
}

/// A move within a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// One up.
    Up,
    /// One down.
    Down,
    /// The first.
    Top,
    /// The last.
    Bottom,
    /// Half a page down.
    HalfDown,
    /// Half a page up.
    HalfUp,
}

/// A selection in a list and the first screen row shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nav {
    /// The selected item.
    pub selected: usize,
    /// Rows scrolled past.
    pub offset: usize,
}

impl Nav {
    /// Moves within `len` items; `half` is how many items half a page holds.
    pub fn apply(&mut self, m: Move, len: usize, half: usize) {
        if len == 0 {
            self.selected = 0;
            return;
        }
        let last = len - 1;
        let half = half.max(1);
        self.selected = match m {
            Move::Up => self.selected.saturating_sub(1),
            Move::Down => (self.selected + 1).min(last),
            Move::Top => 0,
            Move::Bottom => last,
            Move::HalfDown => (self.selected + half).min(last),
            Move::HalfUp => self.selected.saturating_sub(half),
        }
        .min(last);
    }

    /// Keeps the selection within `len` items and in view.
    pub fn fit(&mut self, len: usize, heights: &[usize], rows: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
        self.offset = scroll(self.offset, heights, self.selected, rows);
    }
}

/// The first row to show so that item `selected` (of the given heights) is
/// in view of `rows` rows, moving as little as possible from `offset`.
/// Never scrolls past the end.
pub fn scroll(offset: usize, heights: &[usize], selected: usize, rows: usize) -> usize {
    if heights.is_empty() || rows == 0 {
        return 0;
    }
    let selected = selected.min(heights.len() - 1);
    let top: usize = heights[..selected].iter().sum();
    let h = heights[selected];
    let total: usize = heights.iter().sum();
    let mut offset = offset.min(total.saturating_sub(rows));
    if top < offset {
        offset = top;
    } else if top + h > offset + rows {
        offset = if h >= rows { top } else { top + h - rows };
    }
    offset
}

/// Which items are in view: `(index, rows of it to skip at its top)` for
/// each item overlapping rows `offset..offset + rows`.
pub fn in_view(heights: &[usize], offset: usize, rows: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut y = 0;
    for (i, h) in heights.iter().enumerate() {
        if y + h > offset && y < offset + rows {
            out.push((i, offset.saturating_sub(y)));
        }
        y += h;
        if y >= offset + rows {
            break;
        }
    }
    out
}

/// Draws the items in view: each item's lines, cut at the top where it
/// starts above the view, and at most `rows` lines in all.
pub fn view_lines<'a>(
    heights: &[usize],
    offset: usize,
    rows: usize,
    mut lines_of: impl FnMut(usize) -> Vec<Line<'a>>,
) -> Vec<Line<'a>> {
    let mut out = Vec::with_capacity(rows);
    for (i, skip) in in_view(heights, offset, rows) {
        out.extend(lines_of(i).into_iter().skip(skip));
    }
    out.truncate(rows);
    out
}

/// A list of posts loaded a page at a time, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Paged {
    /// The posts loaded so far.
    pub posts: Vec<Post>,
    /// A load is on its way.
    pub loading: bool,
    /// Everything older is loaded.
    pub exhausted: bool,
    /// A refresh was asked for while loading.
    pub refresh_wanted: bool,
    /// The first page came.
    pub loaded: bool,
    /// Why the last load failed.
    pub error: Option<String>,
}

/// Posts per page.
pub const PAGE: usize = 50;

impl Paged {
    /// The newest page, unless a load is on its way (then it follows that
    /// one).
    pub fn refresh(&mut self) -> Option<Page> {
        if self.loading {
            self.refresh_wanted = true;
            return None;
        }
        self.loading = true;
        Some(Page {
            before: None,
            limit: PAGE,
        })
    }

    /// The next older page, when there may be one and nothing is loading.
    pub fn more(&mut self) -> Option<Page> {
        if self.loading || self.exhausted || !self.loaded {
            return None;
        }
        self.loading = true;
        Some(Page {
            before: self.posts.last().map(Post::cursor),
            limit: PAGE,
        })
    }

    /// Takes a loaded page: a refresh merges the newest posts in front of
    /// those loaded (or replaces them when the page does not reach them), a
    /// next page goes at the end. Answers a refresh to load now, if one was
    /// asked for meanwhile.
    pub fn apply(&mut self, page: Page, result: Result<Vec<Post>, String>) -> Option<Page> {
        self.loading = false;
        match result {
            Err(e) => self.error = Some(e),
            Ok(fetched) => {
                self.error = None;
                let full = fetched.len() >= page.limit;
                match page.before {
                    None => {
                        let reaches = fetched.last().is_some_and(|oldest| {
                            self.posts
                                .first()
                                .is_some_and(|p| p.cursor() >= oldest.cursor())
                        });
                        if full && reaches && self.loaded {
                            let oldest: Cursor =
                                fetched.last().map(Post::cursor).unwrap_or_default();
                            let keep: Vec<Post> = self
                                .posts
                                .drain(..)
                                .filter(|p| p.cursor() < oldest)
                                .collect();
                            self.posts = fetched;
                            self.posts.extend(keep);
                        } else {
                            self.exhausted = !full;
                            self.posts = fetched;
                        }
                        self.loaded = true;
                    }
                    Some(_) => {
                        self.exhausted = !full;
                        let known: HashSet<&str> =
                            self.posts.iter().map(|p| p.key.as_str()).collect();
                        let new: Vec<Post> = fetched
                            .into_iter()
                            .filter(|p| !known.contains(p.key.as_str()))
                            .collect();
                        self.posts.extend(new);
                    }
                }
            }
        }
        if std::mem::take(&mut self.refresh_wanted) {
            return self.refresh();
        }
        None
    }

    /// Where a post is.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.posts.iter().position(|p| p.key == key)
    }
}

/// The next (or, with `back`, previous) item after `from` whose text
/// contains `query` (case-insensitive), wrapping around.
pub fn find(texts: &[String], from: usize, query: &str, back: bool) -> Option<usize> {
    let q = query.to_lowercase();
    let n = texts.len();
    if n == 0 || q.is_empty() {
        return None;
    }
    (1..=n)
        .map(|k| {
            if back {
                (from + n * 2 - k) % n
            } else {
                (from + k) % n
            }
        })
        .find(|&i| texts[i].to_lowercase().contains(&q))
}

/// What search looks at in a post: author and text.
pub fn haystack(p: &Post, ctx: &Ctx<'_>) -> String {
    format!(
        "{} {}",
        ctx.who(&p.author, p.name.as_deref()),
        p.text.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scroll_keeps_the_selection_in_view() {
        let h = [3; 10];
        assert_eq!(scroll(0, &h, 0, 9), 0);
        assert_eq!(scroll(0, &h, 3, 9), 3);
        assert_eq!(scroll(3, &h, 2, 9), 3);
        assert_eq!(scroll(9, &h, 1, 9), 3);
        // A tall item starts at the top of the view.
        assert_eq!(scroll(0, &[2, 20, 2], 1, 5), 2);
        // Never past the end.
        assert_eq!(scroll(100, &h, 9, 9), 21);
        assert_eq!(scroll(5, &[], 0, 9), 0);
    }

    #[test]
    fn in_view_cuts_the_first_item() {
        assert_eq!(in_view(&[3, 3, 3], 4, 4), vec![(1, 1), (2, 0)]);
        assert_eq!(in_view(&[3, 3, 3], 0, 3), vec![(0, 0)]);
    }

    #[test]
    fn nav_moves_within_bounds() {
        let mut n = Nav::default();
        n.apply(Move::Up, 5, 2);
        assert_eq!(n.selected, 0);
        n.apply(Move::HalfDown, 5, 2);
        assert_eq!(n.selected, 2);
        n.apply(Move::Bottom, 5, 2);
        assert_eq!(n.selected, 4);
        n.apply(Move::Down, 5, 2);
        assert_eq!(n.selected, 4);
        n.apply(Move::HalfUp, 5, 10);
        assert_eq!(n.selected, 0);
        n.apply(Move::Down, 0, 2);
        assert_eq!(n.selected, 0);
    }

    fn post(key: &str, time: u64) -> Post {
        Post {
            key: key.into(),
            time,
            rx: time,
            ..Post::default()
        }
    }

    #[test]
    fn refresh_merges_new_posts_in_front() {
        let mut p = Paged::default();
        let page = p.refresh().unwrap();
        let first: Vec<Post> = (0..PAGE as u64)
            .rev()
            .map(|t| post(&format!("%{t}"), t + 100))
            .collect();
        p.apply(page, Ok(first));
        assert_eq!(p.posts.len(), PAGE);
        let more = p.more().unwrap();
        assert_eq!(more.before, Some((100, 100)));
        p.apply(more, Ok(vec![post("%old", 50)]));
        assert!(p.exhausted);
        // Two new posts: the refresh page overlaps what we hold.
        let page = p.refresh().unwrap();
        let fresh: Vec<Post> = (2..PAGE as u64 + 2)
            .rev()
            .map(|t| post(&format!("%{t}"), t + 100))
            .collect();
        assert!(p.apply(page, Ok(fresh)).is_none());
        assert_eq!(p.posts.len(), PAGE + 3);
        assert_eq!(p.posts[0].key, format!("%{}", PAGE + 1));
        assert_eq!(p.posts.last().unwrap().key, "%old");
        let keys: HashSet<&str> = p.posts.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys.len(), p.posts.len(), "no duplicates");
    }

    #[test]
    fn a_refresh_asked_for_while_loading_follows() {
        let mut p = Paged::default();
        let page = p.refresh().unwrap();
        assert!(p.refresh().is_none());
        assert!(p.more().is_none());
        let next = p.apply(page, Ok(vec![post("%a", 1)]));
        assert_eq!(next, Some(page));
        assert!(p.loading);
    }

    #[test]
    fn search_wraps_around() {
        let texts: Vec<String> = ["apple", "Banana", "cherry", "banana split"]
            .map(String::from)
            .to_vec();
        assert_eq!(find(&texts, 0, "banana", false), Some(1));
        assert_eq!(find(&texts, 1, "banana", false), Some(3));
        assert_eq!(find(&texts, 3, "banana", false), Some(1));
        assert_eq!(find(&texts, 1, "banana", true), Some(3));
        assert_eq!(find(&texts, 0, "kiwi", false), None);
    }
}
