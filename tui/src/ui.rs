//! Drawing the whole client from `&App`: tab bar, the current screen,
//! status bar, hint line, and what lies over them (compose pane with its
//! attached files, help, raw JSON, questions, choices). Drawing never
//! changes state.
//!
//! Imports `app`, `screens`, `layout` and `text`; never the backend, the
//! terminal or I/O. Every string from the network is drawn through `text`.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::app::{App, Compose, Overlay};
use crate::layout;
use crate::screens::{Tab, style};
use crate::text;

/// Draws one frame.
pub fn draw(f: &mut Frame<'_>, app: &App) {
    let areas = layout::areas(f.area());
    tabs(f, areas.tabs, app);
    let ctx = app.ctx();
    if areas.body.height > 0 {
        match app.tab {
            Tab::Timeline => app.timeline.draw(f, areas.body, &ctx),
            Tab::Thread => app.thread.draw(f, areas.body, &ctx),
            Tab::Messages => app.messages.draw(f, areas.body, &ctx),
            Tab::Groups => app.groups.draw(f, areas.body, &ctx),
            Tab::Contacts => app.contacts.draw(f, areas.body, &ctx),
            Tab::Log => app.log.draw(f, areas.body, &app.describe),
        }
    }
    status(f, areas.status, app);
    hint(f, areas.hint, app);
    if let Some(c) = &app.compose {
        let files: &[std::path::PathBuf] = if c.target == crate::compose::Target::Post {
            &app.attached
        } else {
            &[]
        };
        compose(f, layout::compose(areas.body), c, files);
    }
    match &app.overlay {
        None => {}
        Some(Overlay::Help) => help(f, f.area()),
        Some(Overlay::Search {
            query,
            hits,
            literal,
            selected,
        }) => search(f, areas.body, app, query, hits, *literal, *selected),
        Some(Overlay::Saved { searches, selected }) => {
            let shown: Vec<String> = searches.iter().map(|s| text::one_line(s)).collect();
            choose(
                f,
                areas.body,
                " Saved searches · ⏎ run · x forget · Esc close ",
                &shown,
                *selected,
            );
        }
        Some(Overlay::Raw { id, text, offset }) => raw(f, areas.body, id, text, *offset),
        Some(Overlay::Confirm { question, .. }) => confirm(f, areas.body, question),
        Some(Overlay::Choose {
            members, selected, ..
        }) => {
            let ctx = app.ctx();
            let names: Vec<String> = members.iter().map(|m| ctx.who(m, None)).collect();
            choose(
                f,
                areas.body,
                " Remove whom? ⏎ choose · Esc cancel ",
                &names,
                *selected,
            );
        }
        Some(Overlay::Open { items, selected }) => {
            let names: Vec<String> = items.iter().map(|(_, shown)| shown.clone()).collect();
            choose(
                f,
                areas.body,
                " Open which? ⏎ open · Esc cancel ",
                &names,
                *selected,
            );
        }
        Some(Overlay::Links { links, selected }) => {
            let names: Vec<String> = links.iter().map(|(_, shown)| shown.clone()).collect();
            choose(
                f,
                areas.body,
                " Follow which link? ⏎ follow · Esc cancel ",
                &names,
                *selected,
            );
        }
    }
}

/// Clears `area` for a window drawn over the screen. A wide character
/// just left of it would spill into its first column (and hide the border
/// there), so it is blanked too.
fn clear(f: &mut Frame<'_>, area: Rect) {
    if area.x > 0 {
        let buf = f.buffer_mut();
        for y in area.top()..area.bottom() {
            if let Some(cell) = buf.cell_mut(Position::new(area.x - 1, y))
                && text::width(cell.symbol()) > 1
            {
                cell.set_symbol(" ");
            }
        }
    }
    f.render_widget(Clear, area);
}

fn tabs(f: &mut Frame<'_>, area: Rect, app: &App) {
    let wide = area.width >= 70;
    let mut spans = vec![Span::styled(" shoal ", style::title())];
    for t in Tab::ALL {
        let label = if wide || t == app.tab {
            format!("{} {}", t.digit(), t.title())
        } else {
            t.digit().to_string()
        };
        if t == app.tab {
            spans.push(Span::styled(
                format!("[{label}]"),
                Style::default()
                    .add_modifier(Modifier::BOLD)
                    .add_modifier(Modifier::REVERSED),
            ));
        } else {
            spans.push(Span::styled(format!(" {label} "), style::dim()));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A bar of `cells` cells, `done` of `total` full.
fn bar(done: u64, total: u64, cells: usize) -> String {
    let full = if total == 0 {
        cells
    } else {
        ((done as f64 / total as f64) * cells as f64).round() as usize
    }
    .min(cells);
    format!("{}{}", "▰".repeat(full), "▱".repeat(cells - full))
}

fn status(f: &mut Frame<'_>, area: Rect, app: &App) {
    if area.height == 0 {
        return;
    }
    let width = area.width as usize;
    let mut spans: Vec<Span<'static>> = Vec::new();
    match app.status.progress() {
        None => spans.push(Span::styled(" ○ starting…", style::dim())),
        Some(p) => {
            let dot = if p.peers > 0 {
                Span::styled(" ●", style::online())
            } else {
                Span::styled(" ○", style::dim())
            };
            spans.push(dot);
            let narrow = width < 60;
            let sync = if p.held >= p.wanted {
                if narrow { "✓" } else { "synced" }.to_string()
            } else {
                match p.eta {
                    Some(s) if s < 60 => format!("~{s}s"),
                    Some(s) => format!("~{}m", s.div_ceil(60)),
                    None if narrow => "…".to_string(),
                    None => "syncing".to_string(),
                }
            };
            let cells = if width >= 90 { 10 } else { 4 };
            let bar = bar(p.held, p.wanted, cells);
            if narrow {
                spans.push(Span::raw(format!(
                    " {} · {}/{} {bar} {sync}",
                    p.peers, p.held, p.wanted
                )));
            } else {
                let plural = if p.peers == 1 { "" } else { "s" };
                spans.push(Span::raw(format!(
                    " {} peer{plural} · feeds {}/{} {bar} {sync}",
                    p.peers, p.held, p.wanted
                )));
            }
            if p.rate >= 0.5 && width >= 60 {
                spans.push(Span::styled(
                    format!(" · +{:.0} msg/s", p.rate),
                    style::dim(),
                ));
            }
            spans.push(Span::styled(
                format!(" · {} unread", p.unread),
                if p.unread > 0 {
                    style::unread()
                } else {
                    style::dim()
                },
            ));
        }
    }
    // Restoring, or publishing held so that our feed does not fork: said
    // first, as the one thing the person must know before posting.
    if let Some(why) = app
        .status
        .status
        .as_ref()
        .and_then(|s| s.publishing_held.as_deref())
    {
        let used: usize = spans.iter().map(|s| text::width(&s.content)).sum();
        let room = width.saturating_sub(used + 5);
        if room >= 8 {
            spans.push(Span::styled(
                format!(" · ⏸ {}", text::fit(&text::one_line(why), room)),
                style::error(),
            ));
        }
    }
    let drafts = app.drafts.values().filter(|e| !e.is_blank()).count();
    if drafts > 0 && app.compose.is_none() {
        spans.push(Span::raw(format!(
            " · ✎ {drafts} draft{}",
            if drafts == 1 { "" } else { "s" }
        )));
    }
    if let Some((_, e)) = &app.status.error {
        let used: usize = spans.iter().map(|s| text::width(&s.content)).sum();
        let room = width.saturating_sub(used + 5);
        if room >= 8 {
            spans.push(Span::styled(
                format!(" · ✗ {}", text::fit(&text::one_line(e), room)),
                style::error(),
            ));
        }
    }
    f.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
    );
}

/// The hints of the current tab.
fn hints(app: &App) -> &'static str {
    if app.compose.is_some() {
        return " Ctrl-s send · Esc close, keeping the draft · Ctrl-e $EDITOR · Ctrl-t attach";
    }
    match app.tab {
        Tab::Timeline => {
            " j/k move · ⏎ thread · c post · r reply · f like · m message · F follow · / search · ? help · q quit"
        }
        Tab::Thread => {
            " j/k move · h back · r reply · f like · m message · L link · O open · u raw · ? help · q quit"
        }
        Tab::Messages if app.messages.open.is_some() => {
            " j/k move · h back · m write · r reply · ⏎ thread · ? help · q quit"
        }
        Tab::Messages => " j/k move · ⏎ open · m write · ? help · q quit",
        Tab::Groups if app.groups.focus_posts => {
            " j/k posts · h back · c post · a add · x remove · m message · ? help"
        }
        Tab::Groups => {
            " j/k move · ⏎ posts · c post · a add member · x remove · n new group · ? help · q quit"
        }
        Tab::Contacts if app.contacts.person.is_some() => {
            " j/k posts · h back · F follow/unfollow · m message · B block · ? help"
        }
        Tab::Contacts => " j/k move · ⏎ profile · F follow/unfollow · m message · B block · ? help",
        Tab::Log => " j/k move · / search · ? help · q quit",
    }
}

fn hint(f: &mut Frame<'_>, area: Rect, app: &App) {
    if area.height == 0 {
        return;
    }
    let width = area.width as usize;
    let line = if let Some(a) = &app.ask {
        let label = a.label();
        let shown = text::one_line(&a.text);
        let keep = width.saturating_sub(text::width(label) + 2);
        // The end of a long answer stays in view.
        let mut tail = String::new();
        for c in shown.chars().rev() {
            if text::width(&tail) + 2 > keep {
                break;
            }
            tail.insert(0, c);
        }
        let x = area.x + 1 + (text::width(label) + text::width(&tail)) as u16;
        if x < area.right() {
            f.set_cursor_position(Position::new(x, area.y));
        }
        let mut spans = vec![
            Span::raw(" "),
            Span::styled(label, style::title()),
            Span::raw(tail),
        ];
        if let Some(e) = &a.error {
            spans.push(Span::styled(
                format!("  ✗ {}", text::one_line(e)),
                style::error(),
            ));
        } else {
            spans.push(Span::styled("  ⏎ ok · Esc cancel", style::dim()));
        }
        Line::from(spans)
    } else if let Some(p) = &app.prompt {
        let shown = text::one_line(p);
        let keep = width.saturating_sub(3);
        // The end of a long query stays in view.
        let shown: String = {
            let w = text::width(&shown);
            if w > keep {
                let mut s = String::new();
                for c in shown.chars().rev() {
                    if text::width(&s) + 2 > keep {
                        break;
                    }
                    s.insert(0, c);
                }
                s
            } else {
                shown
            }
        };
        let x = area.x + 1 + text::width(&shown) as u16;
        if x < area.right() {
            f.set_cursor_position(Position::new(x, area.y));
        }
        let sign = if app.store_search { "/" } else { "s/" };
        Line::from(vec![Span::styled(sign, style::title()), Span::raw(shown)])
    } else if let Some((_, n)) = &app.notice {
        Line::from(Span::raw(format!(
            " {}",
            text::fit(&text::one_line(n), width.saturating_sub(1))
        )))
    } else {
        Line::from(Span::styled(text::fit(hints(app), width), style::dim()))
    };
    f.render_widget(Paragraph::new(line), area);
}

fn compose(f: &mut Frame<'_>, area: Rect, c: &Compose, files: &[std::path::PathBuf]) {
    if area.height < 3 || area.width < 4 {
        return;
    }
    clear(f, area);
    let title = text::fit(
        &text::one_line(&c.title),
        (area.width as usize).saturating_sub(4),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {title} "), style::title()))
        .title_bottom(Span::styled(
            text::fit(
                " Ctrl-s send · Esc keep draft ",
                (area.width as usize).saturating_sub(2),
            ),
            style::dim(),
        ));
    let mut inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    if !files.is_empty() && inner.height >= 2 {
        // The files attached, on the pane's last row.
        inner.height -= 1;
        let names: Vec<String> = files.iter().map(|p| crate::app::file_name(p)).collect();
        let line = format!("+ {}", names.join(", "));
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(
                text::fit(&line, inner.width as usize),
                style::dim(),
            ))),
            Rect {
                y: inner.bottom(),
                height: 1,
                ..inner
            },
        );
    }
    let (rows, (cy, cx)) = c.editor.layout(inner.width.saturating_sub(1) as usize);
    let h = inner.height as usize;
    let top = (cy + 1).saturating_sub(h);
    let lines: Vec<Line<'_>> = rows.into_iter().skip(top).take(h).map(Line::from).collect();
    f.render_widget(Paragraph::new(lines), inner);
    let x = inner.x + cx as u16;
    let y = inner.y + (cy - top) as u16;
    if x < inner.right() && y < inner.bottom() {
        f.set_cursor_position(Position::new(x, y));
    }
}

/// The help text: one key per line.
pub const HELP: &[(&str, &str)] = &[
    ("j / k", "move down / up"),
    ("g / G", "top / bottom"),
    ("Ctrl-d / Ctrl-u", "half a page down / up"),
    ("Enter, o, l", "open: thread, conversation, profile"),
    ("h, Esc", "back"),
    (
        "1 2 3 4 5 6, [ ]",
        "tabs: timeline, thread, messages, groups, contacts, log",
    ),
    ("c / e", "compose a post / in $EDITOR"),
    ("r", "reply (private replies stay private)"),
    ("f", "like"),
    ("m", "private message to the author"),
    ("F / B", "follow or unfollow / block the author"),
    ("F (rooms)", "follow an attendant: meet them there"),
    ("p", "the author's profile"),
    ("/", "search everything stored: ⏎ opens a hit's thread"),
    ("w / S", "save the search shown / the saved searches"),
    ("s n N", "find in what is loaded, next, previous"),
    ("y / u", "copy the id / raw JSON"),
    ("L", "follow a link in the message (or pick one)"),
    ("O", "open its image, file or web link outside"),
    (
        "c a x (groups)",
        "post to the group, add a member, remove one",
    ),
    ("n (groups)", "a new group"),
    ("z / M", "mute or unmute the thread / the author"),
    ("H", "history of an edited message"),
    ("R", "reload this view"),
    ("A", "next account (shoal-tui --home A --home B)"),
    ("Ctrl-s / Esc", "send / close keeping the draft"),
    ("Ctrl-t (compose)", "attach a file to a new post"),
    ("q, Ctrl-c", "quit (q asks when a draft would be lost)"),
];

fn help(f: &mut Frame<'_>, area: Rect) {
    let w = 64.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let r = layout::centered(area, w, h);
    if r.width < 4 || r.height < 3 {
        return;
    }
    clear(f, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys · any key closes ", style::title()));
    let inner = block.inner(r);
    f.render_widget(block, r);
    let keys_w = 17.min(inner.width as usize / 2);
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{:<keys_w$}", text::fit(k, keys_w)), style::name()),
                Span::raw(" "),
                Span::raw(text::fit(
                    what,
                    (inner.width as usize).saturating_sub(keys_w + 1),
                )),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn raw(
    f: &mut Frame<'_>,
    area: Rect,
    id: &str,
    lines: &Option<Result<Vec<String>, String>>,
    offset: usize,
) {
    if area.width < 4 || area.height < 3 {
        return;
    }
    clear(f, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            format!(
                " {} ",
                text::fit(&text::one_line(id), (area.width as usize).saturating_sub(4))
            ),
            style::title(),
        ))
        .title_bottom(Span::styled(
            " j/k scroll · y copy id · Esc close ",
            style::dim(),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let shown: Vec<Line<'_>> = match lines {
        None => vec![Line::from(Span::styled("loading…", style::dim()))],
        Some(Err(e)) => vec![Line::from(Span::styled(text::one_line(e), style::error()))],
        Some(Ok(lines)) => lines
            .iter()
            .skip(offset)
            .take(inner.height as usize)
            .map(|l| Line::from(text::fit(l, w)))
            .collect(),
    };
    f.render_widget(Paragraph::new(shown), inner);
}

/// The results of a whole-store search: for each hit, who, when and
/// where, then the best part of its text with the matching words in bold.
fn search(
    f: &mut Frame<'_>,
    area: Rect,
    app: &App,
    query: &str,
    hits: &Option<Result<Vec<crate::app::Found>, String>>,
    literal: bool,
    selected: usize,
) {
    let r = area;
    if r.width < 8 || r.height < 4 {
        return;
    }
    clear(f, r);
    let count = match hits {
        Some(Ok(h)) => format!(" · {} found", h.len()),
        _ => String::new(),
    };
    let title = format!(
        " Search “{}”{count}{} · ⏎ thread · w save · S saved · / new · Esc close ",
        text::one_line(query),
        if literal { " (read word by word)" } else { "" }
    );
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        text::fit(&title, (r.width as usize).saturating_sub(2)),
        style::title(),
    ));
    let inner = block.inner(r);
    f.render_widget(block, r);
    let w = inner.width as usize;
    let hits = match hits {
        None => {
            f.render_widget(
                Paragraph::new(Span::styled("searching…", style::dim())),
                inner,
            );
            return;
        }
        Some(Err(e)) => {
            let line = Span::styled(text::fit(&text::one_line(e), w), style::error());
            f.render_widget(Paragraph::new(line), inner);
            return;
        }
        Some(Ok(h)) if h.is_empty() => {
            f.render_widget(
                Paragraph::new(Span::styled("nothing found", style::dim())),
                inner,
            );
            return;
        }
        Some(Ok(h)) => h,
    };
    // Three rows a hit: who and when, the snippet, a blank.
    let per = 3;
    let rows = (inner.height as usize / per).max(1);
    let top = (selected + 1).saturating_sub(rows);
    let ctx = app.ctx();
    let mut lines: Vec<Line<'_>> = Vec::new();
    for (i, h) in hits.iter().enumerate().skip(top).take(rows) {
        let who = ctx.who(&h.author, h.name.as_deref());
        let head = format!("{who} · {} · {}", text::ago(app.now, h.time), h.kind);
        let mark = if i == selected { style::MARK } else { " " };
        let head_style = if i == selected {
            style::selected()
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        lines.push(Line::from(vec![
            Span::styled(mark, style::mark()),
            Span::raw(" "),
            Span::styled(text::fit(&head, w.saturating_sub(2)), head_style),
        ]));
        lines.push(snippet_line(&h.snippet, &h.marks, w.saturating_sub(2)));
        lines.push(Line::from(""));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// A snippet on one line, cleaned, its marked words in bold and
/// underlined, cut to `width` columns.
fn snippet_line<'a>(snippet: &str, marks: &[(usize, usize)], width: usize) -> Line<'a> {
    let mut spans: Vec<Span<'a>> = vec![Span::raw("  ")];
    let mut used = 0;
    let mut at = 0;
    let mut push = |piece: &str, marked: bool, spans: &mut Vec<Span<'a>>| {
        // Cleaned piece by piece (the marks are byte ranges of the raw
        // snippet); spaces at the ends stay.
        let piece: String = text::clean(piece)
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        let left = width.saturating_sub(used);
        if left == 0 || piece.is_empty() {
            return;
        }
        let piece = text::fit(&piece, left);
        used += text::width(&piece);
        let style = if marked {
            Style::default()
                .add_modifier(Modifier::BOLD)
                .add_modifier(Modifier::UNDERLINED)
        } else {
            Style::default()
        };
        spans.push(Span::styled(piece, style));
    };
    for &(a, b) in marks {
        let (Some(before), Some(word)) = (snippet.get(at..a), snippet.get(a..b)) else {
            continue;
        };
        push(before, false, &mut spans);
        push(word, true, &mut spans);
        at = b;
    }
    push(snippet.get(at..).unwrap_or(""), false, &mut spans);
    Line::from(spans)
}

/// A list to choose one of (already clean, one line each): the members of
/// a group to remove one of, the links of a message to follow one of.
fn choose(f: &mut Frame<'_>, area: Rect, title: &str, names: &[String], selected: usize) {
    let widest = names.iter().map(|n| text::width(n)).max().unwrap_or(0);
    let w = ((widest.max(text::width(title)) + 4) as u16).min(area.width);
    let h = (names.len() as u16 + 2).min(area.height);
    let r = layout::centered(area, w, h);
    if r.width < 4 || r.height < 3 {
        return;
    }
    clear(f, r);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        text::fit(title, (r.width as usize).saturating_sub(2)),
        style::title(),
    ));
    let inner = block.inner(r);
    f.render_widget(block, r);
    let rows = inner.height as usize;
    let top = (selected + 1).saturating_sub(rows);
    let lines: Vec<Line<'_>> = names
        .iter()
        .enumerate()
        .skip(top)
        .take(rows)
        .map(|(i, n)| {
            let name = text::fit(n, (inner.width as usize).saturating_sub(2));
            if i == selected {
                Line::from(vec![
                    Span::styled(style::MARK, style::mark()),
                    Span::raw(" "),
                    Span::styled(name, style::selected()),
                ])
            } else {
                Line::from(format!("  {name}"))
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn confirm(f: &mut Frame<'_>, area: Rect, question: &str) {
    let w = (text::width(question) as u16 + 4)
        .min(area.width)
        .max(area.width.min(20));
    let inner_w = w.saturating_sub(2) as usize;
    let lines = text::wrap(&text::one_line(question), inner_w.max(1));
    let r = layout::centered(area, w, lines.len() as u16 + 2);
    if r.width < 4 || r.height < 3 {
        return;
    }
    clear(f, r);
    let block = Block::default().borders(Borders::ALL);
    let inner = block.inner(r);
    f.render_widget(block, r);
    f.render_widget(
        Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>()),
        inner,
    );
}
