//! Tab 2, the thread: the root and every reply found through backlinks,
//! in thread order, indented by depth, each message in full with its
//! pictures; a placeholder where a reply points at a message we do not
//! hold. A forked thread says where it forked from; a reply with a thread
//! of its own says how many replies it holds.
//!
//! Imports the shared screen parts, `event`, `model`, `text` and
//! `ratatui-image`'s widget (pictures are drawn from what `images` holds);
//! never the backend or I/O.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui_image::sliced::{SignedPosition, SlicedImage};

use super::{Ctx, Drawn, Move, Nav, full_drawn, full_height, in_view, style};
use crate::event::Effect;
use crate::model::EntryView as _;
use crate::model::{Post, ThreadEntry, ThreadView};
use crate::text;

/// The thread screen's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Thread {
    /// The message the thread was opened on.
    pub id: Option<String>,
    /// The thread, once loaded.
    pub view: Option<ThreadView>,
    /// A load is on its way.
    pub loading: bool,
    /// A reload was asked for while loading.
    pub reload_wanted: bool,
    /// Why the last load failed.
    pub error: Option<String>,
    /// Selection and scroll.
    pub nav: Nav,
}

/// Deepest indentation drawn (deeper replies line up with it).
const MAX_DEPTH: usize = 6;

fn indent(depth: usize, width: u16) -> usize {
    let want = depth.min(MAX_DEPTH) * 2;
    // Leave at least 12 columns for text.
    want.min((width as usize).saturating_sub(15))
}

impl Thread {
    fn entries(&self) -> &[ThreadEntry] {
        self.view.as_ref().map_or(&[], |v| v.entries.as_slice())
    }

    /// The selected message, when we hold it.
    pub fn selected(&self) -> Option<&Post> {
        self.entries().get(self.nav.selected)?.post()
    }

    /// The receive sequences of the messages shown, to mark read.
    pub fn shown(&self) -> Vec<u64> {
        self.entries()
            .iter()
            .filter_map(ThreadEntry::post)
            .map(|p| p.rx)
            .collect()
    }

    /// Rows of the list (a title line above it).
    pub fn rows(body: Rect) -> usize {
        body.height.saturating_sub(1) as usize
    }

    fn heights(&self, width: u16, ctx: &Ctx<'_>) -> Vec<usize> {
        self.entries()
            .iter()
            .map(|e| match e {
                ThreadEntry::Message { depth, item: post } => {
                    full_height(post, ctx, width, indent(*depth, width), true)
                }
                ThreadEntry::Missing { .. } | ThreadEntry::Muted { .. } => 2,
            })
            .collect()
    }

    /// Opens the thread of `id`.
    pub fn open(&mut self, id: &str) -> Vec<Effect> {
        *self = Thread {
            id: Some(id.to_string()),
            loading: true,
            ..Thread::default()
        };
        vec![Effect::LoadThread(id.to_string())]
    }

    /// Loads the thread again (new replies, counts).
    pub fn reload(&mut self) -> Vec<Effect> {
        let Some(id) = self.id.clone() else {
            return Vec::new();
        };
        if self.loading {
            self.reload_wanted = true;
            return Vec::new();
        }
        self.loading = true;
        vec![Effect::LoadThread(id)]
    }

    /// Takes a loaded thread (ignored when another thread was opened
    /// meanwhile), keeping the selected message selected; on the first load
    /// the message it was opened on is selected.
    pub fn on_loaded(
        &mut self,
        id: &str,
        result: Result<ThreadView, String>,
        body: Rect,
        ctx: &Ctx<'_>,
    ) -> Vec<Effect> {
        if self.id.as_deref() != Some(id) {
            return Vec::new();
        }
        self.loading = false;
        match result {
            Err(e) => self.error = Some(e),
            Ok(view) => {
                let want = match self.selected() {
                    Some(p) => p.key.clone(),
                    None if self.view.is_none() => id.to_string(),
                    None => String::new(),
                };
                self.error = None;
                self.view = Some(view);
                if let Some(i) = self
                    .entries()
                    .iter()
                    .position(|e| e.post().is_some_and(|p| p.key == want))
                {
                    self.nav.selected = i;
                }
                self.fit(body, ctx);
            }
        }
        if std::mem::take(&mut self.reload_wanted) {
            return self.reload();
        }
        Vec::new()
    }

    /// Keeps the selection in view of `body`.
    pub fn fit(&mut self, body: Rect, ctx: &Ctx<'_>) {
        let h = self.heights(body.width, ctx);
        self.nav.fit(h.len(), &h, Self::rows(body));
    }

    /// Moves the selection.
    pub fn on_move(&mut self, m: Move, body: Rect, ctx: &Ctx<'_>) {
        let h = self.heights(body.width, ctx);
        let rows = Self::rows(body);
        let avg = (h.iter().sum::<usize>() / h.len().max(1)).max(1);
        self.nav.apply(m, h.len(), (rows / avg / 2).max(1));
        self.nav.fit(h.len(), &h, rows);
    }

    /// Selects the `i`th entry (a search match).
    pub fn select(&mut self, i: usize, body: Rect, ctx: &Ctx<'_>) {
        self.nav.selected = i;
        self.fit(body, ctx);
    }

    /// Search texts, one per entry.
    pub fn haystacks(&self, ctx: &Ctx<'_>) -> Vec<String> {
        self.entries()
            .iter()
            .map(|e| match e {
                ThreadEntry::Message { item: post, .. } => super::haystack(post, ctx),
                ThreadEntry::Missing { .. } | ThreadEntry::Muted { .. } => String::new(),
            })
            .collect()
    }

    /// Draws the title line and the entries in view.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect, ctx: &Ctx<'_>) {
        let mut title = vec![Span::styled(" Thread", style::title())];
        match (&self.id, &self.view) {
            (None, _) => {
                let lines = vec![
                    Line::from(title),
                    Line::from(Span::styled(
                        "  No thread open: select a post and press Enter.",
                        style::dim(),
                    )),
                ];
                f.render_widget(Paragraph::new(lines), area);
                return;
            }
            (Some(_), None) => title.push(Span::styled(" · loading…", style::dim())),
            (Some(_), Some(v)) => {
                let n = v.entries.iter().filter(|e| e.post().is_some()).count();
                let mut s = format!(" · {n} message{}", if n == 1 { "" } else { "s" });
                if v.more > 0 {
                    s.push_str(&format!(" · {} more not shown", v.more));
                }
                if v.hidden > 0 {
                    s.push_str(&format!(" · {} hidden (blocked authors)", v.hidden));
                }
                if v.muted > 0 {
                    s.push_str(&format!(" · {} muted", v.muted));
                }
                if v.muted_thread {
                    s.push_str(" · thread muted (z unmutes)");
                }
                if let Some(from) = &v.forked_from {
                    s.push_str(&format!(
                        " · forked from {} (Enter on the first)",
                        text::short_id(from)
                    ));
                }
                title.push(Span::styled(s, style::dim()));
            }
        }
        if let Some(e) = &self.error {
            title.push(Span::styled(
                format!(" · {}", text::one_line(e)),
                style::error(),
            ));
        }
        let mut lines = vec![Line::from(title)];
        let rows = Self::rows(area);
        let heights = self.heights(area.width, ctx);
        let offset = super::scroll(self.nav.offset, &heights, self.nav.selected, rows);
        let entries = self.entries();
        // Pictures in view: where they go, in rows from the list's top.
        let mut pictures = Vec::new();
        let mut shown: Vec<Line<'static>> = Vec::with_capacity(rows);
        for (i, skip) in in_view(&heights, offset, rows) {
            let d = self.entry(&entries[i], i == self.nav.selected, area.width, ctx);
            let top = shown.len() as i32 - skip as i32;
            for s in d.slots {
                pictures.push((top + s.line as i32, s));
            }
            shown.extend(d.lines.into_iter().skip(skip));
        }
        shown.truncate(rows);
        lines.extend(shown);
        f.render_widget(Paragraph::new(lines), area);
        let list = Rect {
            y: area.y.saturating_add(1),
            height: rows as u16,
            ..area
        };
        for (y, s) in pictures {
            let (Some(p), Ok(y), Ok(x)) = (
                ctx.images.ready(&s.id),
                i16::try_from(y),
                i16::try_from(s.col),
            ) else {
                continue;
            };
            if s.col + p.cols as usize <= list.width as usize {
                f.render_widget(SlicedImage::new(&p.proto, SignedPosition { x, y }), list);
            }
        }
    }

    /// One entry drawn: a message in full with its pictures, or the
    /// placeholder of one we do not hold.
    fn entry(&self, e: &ThreadEntry, selected: bool, width: u16, ctx: &Ctx<'_>) -> Drawn {
        match e {
            ThreadEntry::Message { depth, item: post } => {
                let pad = indent(*depth, width);
                let mut d = full_drawn(post, ctx, width, pad, selected, true);
                if *depth > 0
                    && let Some(first) = d.lines.first_mut()
                    && let Some(span) = first.spans.get_mut(2)
                {
                    // The unread dot's place shows the reply arrow when
                    // the message is read.
                    if span.content == " " {
                        *span = Span::styled("↳", style::dim());
                    }
                }
                d
            }
            ThreadEntry::Muted { depth, count } => {
                let pad = " ".repeat(indent(*depth, width));
                let lines = vec![
                    Line::from(vec![
                        Span::styled(if selected { style::MARK } else { " " }, style::mark()),
                        Span::raw(pad),
                        Span::styled(format!("↳ ({count} muted)"), style::dim()),
                    ]),
                    Line::from(""),
                ];
                Drawn {
                    lines,
                    slots: Vec::new(),
                }
            }
            ThreadEntry::Missing { depth, key } => {
                let pad = " ".repeat(indent(*depth, width));
                let lines = vec![
                    Line::from(vec![
                        Span::styled(if selected { style::MARK } else { " " }, style::mark()),
                        Span::raw(pad),
                        Span::styled(
                            format!("↳ (a message we do not have yet: {})", text::short_id(key)),
                            style::dim(),
                        ),
                    ]),
                    Line::from(""),
                ];
                Drawn {
                    lines,
                    slots: Vec::new(),
                }
            }
        }
    }
}
