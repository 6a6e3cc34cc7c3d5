//! How a post is drawn: as a card (a header and the start of its text)
//! or in full (every line of its text and its pictures' places), its
//! markdown laid out by [`markdown`](crate::markdown) with the names and
//! pictures the client knows; and its one-line preview.
//!
//! Pure drawing; imports `markdown`, `model`, `text` and the shared screen
//! parts; never the backend, the terminal or I/O.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{Ctx, style};
use crate::markdown::{self, Slot};
use crate::model::Post;
use crate::model::PostView as _;
use crate::text;

/// Rows of a post card: a header and two lines of text.
pub const CARD: usize = 3;

fn marker(selected: bool) -> Span<'static> {
    if selected {
        Span::styled(style::MARK, style::mark())
    } else {
        Span::raw(" ")
    }
}

/// The header spans after the name: time, reply mark, counts, privacy.
fn post_meta(p: &Post, ctx: &Ctx<'_>) -> Vec<Span<'static>> {
    let mut out = vec![Span::styled(
        format!(" · {}", text::ago(ctx.now, p.time)),
        style::dim(),
    )];
    if p.root.is_some() {
        out.push(Span::styled(" · ↪ reply", style::dim()));
    }
    if p.replies > 0 {
        out.push(Span::styled(format!(" · ↩ {}", p.replies), style::dim()));
    }
    if p.likes > 0 {
        out.push(Span::styled(format!(" · ♥ {}", p.likes), style::dim()));
    }
    if p.own_thread > 0 {
        // A reply with a forked thread of its own: Enter opens it.
        out.push(Span::styled(
            format!(" · {} in its own thread", p.own_thread),
            style::dim(),
        ));
    }
    if p.edited {
        // Its latest revision by its author: H shows the history.
        out.push(Span::styled(" · edited", style::dim()));
    }
    if p.private {
        out.push(Span::styled(" · private", style::private()));
    }
    out
}

/// The blobs a post's mentions say are images (`type` image/…).
pub fn image_mentions(p: &Post) -> Vec<String> {
    let Some(list) = p.content.get("mentions").and_then(|m| m.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .take(crate::links::MAX_LINKS)
        .filter(|m| {
            m.get("type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.starts_with("image/"))
        })
        .filter_map(|m| m.get("link").and_then(|l| l.as_str()))
        .filter(|l| l.starts_with('&'))
        .map(str::to_string)
        .collect()
}

/// A post's body laid out for `width` columns in at most `lines` lines:
/// compact (a card) or in full, with its pictures when `pictures`.
pub fn layout(
    p: &Post,
    ctx: &Ctx<'_>,
    width: usize,
    lines: usize,
    compact: bool,
    pictures: bool,
) -> markdown::Doc {
    let images = image_mentions(p);
    let name = |id: &str| {
        if id == ctx.me {
            return None;
        }
        ctx.names.get(id).cloned()
    };
    let picture = |id: &str| {
        if pictures {
            ctx.images.shown(id)
        } else {
            markdown::Picture::Placeholder
        }
    };
    let body = p.body();
    // A card shows a few lines: a huge post is not laid out whole every
    // frame.
    let src: String = if compact {
        body.chars().take((width + 8) * lines * 4 + 400).collect()
    } else {
        body
    };
    markdown::render(
        &src,
        &markdown::Layout {
            width: width.max(1),
            max_lines: lines,
            compact,
            name: &name,
            picture: &picture,
            images: &images,
        },
    )
}

/// The start of a post's text on one line (its markdown read: link texts,
/// names, `[image: alt]`), for a list row `width` columns wide.
pub fn preview(p: &Post, ctx: &Ctx<'_>, width: usize) -> String {
    let doc = layout(p, ctx, width.max(20) * 2, 3, true, false);
    let joined: Vec<String> = doc
        .lines
        .into_iter()
        .map(|runs| runs.into_iter().map(|(t, _)| t).collect())
        .collect();
    text::one_line(&joined.join(" "))
}

/// Laid-out lines as spans, bold when `selected`.
fn doc_lines(doc: markdown::Doc, selected: bool) -> Vec<Vec<Span<'static>>> {
    let base = if selected {
        style::selected()
    } else {
        Style::default()
    };
    doc.lines
        .into_iter()
        .map(|runs| {
            runs.into_iter()
                .map(|(t, look)| Span::styled(t, style::look(base, look)))
                .collect()
        })
        .collect()
}

/// A post as a card of [`CARD`] rows: selection bar, unread dot, name,
/// time, counts, then the start of its text.
pub fn card(p: &Post, ctx: &Ctx<'_>, width: u16, selected: bool) -> Vec<Line<'static>> {
    let width = width as usize;
    let unread = ctx.unread.contains(&p.key);
    let name = text::fit(&ctx.who(&p.author, p.name.as_deref()), (width / 2).max(4));
    let mut head = vec![
        marker(selected),
        if unread {
            Span::styled("●", style::unread())
        } else {
            Span::raw(" ")
        },
        Span::raw(" "),
        Span::styled(name, style::name()),
    ];
    head.extend(post_meta(p, ctx));
    let mut lines = vec![Line::from(head)];
    let doc = layout(p, ctx, width.saturating_sub(3), CARD - 1, true, false);
    for l in doc_lines(doc, selected) {
        let mut spans = vec![marker(selected), Span::raw("  ")];
        spans.extend(l);
        lines.push(Line::from(spans));
    }
    while lines.len() < CARD {
        lines.push(Line::from(marker(selected)));
    }
    lines.truncate(CARD);
    lines
}

/// A post drawn in full: its lines, and where its pictures go (lines of
/// the post, columns from the left of the screen area).
pub struct Drawn {
    /// The lines.
    pub lines: Vec<Line<'static>>,
    /// The pictures among them.
    pub slots: Vec<Slot>,
}

/// A post in full, indented: header, its text laid out (up to
/// [`text::MAX_SHOWN_LINES`] lines, and its pictures when `pictures`),
/// then a blank line.
pub fn full_drawn(
    p: &Post,
    ctx: &Ctx<'_>,
    width: u16,
    indent: usize,
    selected: bool,
    pictures: bool,
) -> Drawn {
    let width = width as usize;
    let pad = " ".repeat(indent);
    let unread = ctx.unread.contains(&p.key);
    let name = text::fit(
        &ctx.who(&p.author, p.name.as_deref()),
        (width.saturating_sub(indent) / 2).max(4),
    );
    let mut head = vec![
        marker(selected),
        Span::raw(pad.clone()),
        if unread {
            Span::styled("●", style::unread())
        } else {
            Span::raw(" ")
        },
        Span::raw(" "),
        Span::styled(name, style::name()),
    ];
    head.extend(post_meta(p, ctx));
    let mut lines = vec![Line::from(head)];
    let doc = layout(
        p,
        ctx,
        width.saturating_sub(3 + indent),
        text::MAX_SHOWN_LINES,
        false,
        pictures,
    );
    let slots = doc
        .slots
        .iter()
        .map(|s| Slot {
            line: s.line + 1,
            col: s.col + 3 + indent,
            ..s.clone()
        })
        .collect();
    for l in doc_lines(doc, selected) {
        let mut spans = vec![marker(selected), Span::raw(format!("{pad}  "))];
        spans.extend(l);
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    Drawn { lines, slots }
}

/// A post in full, indented: header, every line of its text (up to
/// [`text::MAX_SHOWN_LINES`]), then a blank line. Images are placeholders.
pub fn full(
    p: &Post,
    ctx: &Ctx<'_>,
    width: u16,
    indent: usize,
    selected: bool,
) -> Vec<Line<'static>> {
    full_drawn(p, ctx, width, indent, selected, false).lines
}

/// Rows [`full_drawn`] takes.
pub fn full_height(p: &Post, ctx: &Ctx<'_>, width: u16, indent: usize, pictures: bool) -> usize {
    let width = (width as usize).saturating_sub(3 + indent);
    2 + layout(p, ctx, width, text::MAX_SHOWN_LINES, false, pictures)
        .lines
        .len()
}
