//! Tab 6, the log: what the node did (connections, replication, errors),
//! one line each, newest at the bottom; it follows new lines while the
//! last one is selected.
//!
//! Imports the shared screen parts and `text`; never the backend or I/O.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Move, Nav, style};
use crate::text;

/// Lines kept.
pub const MAX_LINES: usize = 2000;

/// The log's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    /// `(time ms, line, is an error)`, oldest first.
    pub lines: VecDeque<(u64, String, bool)>,
    /// Selection and scroll.
    pub nav: Nav,
    /// Whether the selection left the last line.
    pub scrolled: bool,
}

/// `HH:MM:SS` (UTC) of a time in ms.
pub fn clock(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

impl Log {
    fn rows(body: Rect) -> usize {
        body.height.saturating_sub(1) as usize
    }

    /// Adds a line (kept as written; cleaned when drawn).
    pub fn push(&mut self, now: u64, line: String, error: bool, body: Rect) {
        if self.lines.len() >= MAX_LINES {
            self.lines.pop_front();
            self.nav.selected = self.nav.selected.saturating_sub(1);
        }
        self.lines.push_back((now, line, error));
        if !self.scrolled {
            self.nav.selected = self.lines.len() - 1;
        }
        self.fit(body);
    }

    /// Keeps the selection in view of `body`.
    pub fn fit(&mut self, body: Rect) {
        let n = self.lines.len();
        self.nav.fit(n, &vec![1; n], Self::rows(body));
    }

    /// Moves the selection.
    pub fn on_move(&mut self, m: Move, body: Rect) {
        let n = self.lines.len();
        self.nav.apply(m, n, (Self::rows(body) / 2).max(1));
        self.scrolled = self.nav.selected + 1 < n;
        self.fit(body);
    }

    /// Search texts, one per line.
    pub fn haystacks(&self) -> Vec<String> {
        self.lines.iter().map(|(_, l, _)| l.clone()).collect()
    }

    /// Selects a line (a search match).
    pub fn select(&mut self, i: usize, body: Rect) {
        self.nav.selected = i;
        self.scrolled = i + 1 < self.lines.len();
        self.fit(body);
    }

    /// Draws the lines in view.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect, describe: &str) {
        let rows = Self::rows(area);
        let n = self.lines.len();
        let offset = super::scroll(self.nav.offset, &vec![1; n], self.nav.selected, rows);
        let width = area.width as usize;
        let mut title = vec![Span::styled(" Log", style::title())];
        if !describe.is_empty() {
            title.push(Span::styled(
                format!(
                    " · {}",
                    text::fit(&text::one_line(describe), width.saturating_sub(8))
                ),
                style::dim(),
            ));
        }
        let mut lines = vec![Line::from(title)];
        for (i, (t, line, error)) in self.lines.iter().enumerate().skip(offset).take(rows) {
            let selected = i == self.nav.selected;
            lines.push(Line::from(vec![
                if selected {
                    Span::styled(style::MARK, style::mark())
                } else {
                    Span::raw(" ")
                },
                Span::styled(format!("{} ", clock(*t)), style::dim()),
                Span::styled(
                    text::fit(&text::one_line(line), width.saturating_sub(10)),
                    if *error {
                        style::error()
                    } else {
                        Default::default()
                    },
                ),
            ]));
        }
        f.render_widget(Paragraph::new(lines), area);
    }
}
