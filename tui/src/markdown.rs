//! Post bodies as their authors wrote them: markdown (CommonMark, as
//! Scuttlebutt apps write it) parsed with `pulldown-cmark` and laid out as
//! styled lines for a width, with the links found in them and where
//! pictures go.
//!
//! Drawn: emphasis, strong, strikethrough, inline code and code blocks
//! (clipped to the width, never wrapped), links as their text (a mention
//! `[@name](@id)` as the name we know), lists (bullets or numbers,
//! indented), block quotes (a bar), headings (bold), rules, and line
//! breaks (a single newline stays a line break, as written). Raw HTML is
//! drawn as the text it is, never interpreted. An image is a slot of rows
//! where its picture is ready, else a one-line placeholder. Bare ids and
//! `ssb:` URIs in the text are links too (see [`links`](crate::links)).
//!
//! Safe by construction: the source is cleaned ([`text::clean`], which
//! also cuts it) before parsing, and every string that comes out of the
//! parser (text, code, characters from entities, alt texts, names) is
//! cleaned again. Nesting deeper than [`MAX_NEST`] is drawn at that depth;
//! at most `max_lines` lines are laid out, and at most [`MAX_PICTURES`]
//! pictures. Pure; imports `pulldown-cmark`, `links` and `text`; never the
//! UI, the node or I/O.

use std::ops::Range;

use pulldown_cmark::{Event as Md, Options, Parser, Tag, TagEnd};

use crate::links::{self, MAX_LINKS, Target};
use crate::text;

/// The deepest nesting of lists and quotes drawn (deeper ones line up).
pub const MAX_NEST: usize = 8;

/// The most pictures drawn in one post (others are placeholders).
pub const MAX_PICTURES: usize = 4;

/// The longest alt text or link label kept, in characters.
const MAX_LABEL: usize = 200;

/// How a run of text looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Look {
    /// Strong, or a heading.
    pub strong: bool,
    /// Emphasis.
    pub emphasis: bool,
    /// Struck through.
    pub strike: bool,
    /// Inline code or a code block.
    pub code: bool,
    /// A link's text.
    pub link: bool,
    /// Drawn structure: bullets, quote bars, rules, image placeholders.
    pub mark: bool,
}

impl Look {
    fn mark() -> Look {
        Look {
            mark: true,
            ..Look::default()
        }
    }
}

/// A run of a laid-out line: its text (clean) and look.
pub type Run = (String, Look);

/// How an image's picture can be shown, as the client knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Picture {
    /// Nothing known: the placeholder alone.
    Placeholder,
    /// Asked for, on its way (fetched from peers, or decoding).
    Fetching,
    /// It cannot be shown, and why.
    Failed(String),
    /// Ready to draw in this many columns and rows.
    Drawn {
        /// Columns.
        cols: usize,
        /// Rows.
        rows: usize,
    },
}

/// Where a link leads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// Into Scuttlebutt: a message, a feed, a blob, …
    Ssb(Target),
    /// A web page (`http:` or `https:`), for the system opener.
    Web(String),
}

/// A link found in a post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Where it leads.
    pub dest: Dest,
    /// Its text (an image's alt text), clean and on one line, if any.
    pub label: Option<String>,
    /// Whether it is an image.
    pub image: bool,
}

/// Where a picture goes: rows left blank for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The first of its lines.
    pub line: usize,
    /// The column it starts at (after quote bars and list indentation).
    pub col: usize,
    /// Its rows.
    pub rows: usize,
    /// Its columns.
    pub cols: usize,
    /// The blob.
    pub id: String,
}

/// A post laid out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Doc {
    /// The lines, each at most the width.
    pub lines: Vec<Vec<Run>>,
    /// The pictures among them.
    pub slots: Vec<Slot>,
    /// The links, in order (at most [`MAX_LINKS`]).
    pub links: Vec<Found>,
}

/// How to lay a post out.
pub struct Layout<'a> {
    /// Columns.
    pub width: usize,
    /// The most lines.
    pub max_lines: usize,
    /// For a card: no blank lines between blocks, images as `[image: alt]`.
    pub compact: bool,
    /// The name we know for a feed.
    pub name: &'a dyn Fn(&str) -> Option<String>,
    /// How a blob's picture can be shown (asked only when not compact).
    pub picture: &'a dyn Fn(&str) -> Picture,
    /// Blobs that the post's mentions say are images (linked as
    /// `[name](&blob)`).
    pub images: &'a [String],
}

fn no_name(_: &str) -> Option<String> {
    None
}

fn placeholder(_: &str) -> Picture {
    Picture::Placeholder
}

/// The links of a post (markdown source, not yet cleaned), in order.
pub fn links(src: &str, images: &[String]) -> Vec<Found> {
    render(
        src,
        &Layout {
            width: 80,
            max_lines: usize::MAX,
            compact: true,
            name: &no_name,
            picture: &placeholder,
            images,
        },
    )
    .links
}

/// The blobs a post shows as images, in order, each once.
pub fn images(src: &str, images: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in links(src, images) {
        if let (true, Dest::Ssb(Target::Blob(id))) = (f.image, f.dest)
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

/// Lays a post (markdown source, not yet cleaned) out.
pub fn render(src: &str, layout: &Layout<'_>) -> Doc {
    let clean = text::clean(src);
    let mut r = Renderer {
        l: layout,
        doc: Doc::default(),
        boxes: Vec::new(),
        lists: 0,
        para: String::new(),
        segs: Vec::new(),
        para_links: Vec::new(),
        strong: 0,
        emphasis: 0,
        strike: 0,
        heading: false,
        link: None,
        image: None,
        code: None,
        blank: false,
        full: false,
        pictures: 0,
    };
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    for ev in Parser::new_ext(&clean, opts) {
        if r.full {
            break;
        }
        r.event(ev);
    }
    r.flush();
    if r.full
        && let Some(last) = r.doc.lines.last_mut()
    {
        *last = text::cut_runs(std::mem::take(last), layout.width, Look::default());
    }
    r.doc.links.truncate(MAX_LINKS);
    r.doc
}

/// What a link's destination names, if anything we can follow or open.
fn dest(url: &str) -> Option<Dest> {
    if let Some(t) = links::target(url) {
        return Some(Dest::Ssb(t));
    }
    let web = url.starts_with("https://") || url.starts_with("http://");
    let odd = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{fffd}')
    };
    (web && url.len() <= links::MAX_URI && !url.chars().any(odd)).then(|| Dest::Web(url.into()))
}

/// A container: a quote, a list, an item of one.
enum Boxed {
    Quote,
    /// A list, and the number of its next item when it is numbered.
    List(Option<u64>),
    /// A list item: its marker, and whether it is still to be drawn.
    Item {
        marker: String,
        fresh: bool,
    },
}

/// A link being read.
struct LinkAt {
    dest: Option<Dest>,
    /// Where its text starts in the paragraph, and among its runs.
    at: usize,
    seg: usize,
}

/// An image being read.
struct ImageAt {
    dest: Option<Dest>,
    alt: String,
    /// Images inside its alt text (their text is its alt text).
    inner: usize,
}

struct Renderer<'l, 'a> {
    l: &'l Layout<'a>,
    doc: Doc,
    boxes: Vec<Boxed>,
    /// Lists open (for their bullets).
    lists: usize,
    /// The text of the block being read, and how its ranges look.
    para: String,
    segs: Vec<(Range<usize>, Look)>,
    /// Markdown links of the block, at their place in it.
    para_links: Vec<(usize, Found)>,
    strong: usize,
    emphasis: usize,
    strike: usize,
    heading: bool,
    link: Option<LinkAt>,
    image: Option<ImageAt>,
    /// The text of the code block being read.
    code: Option<String>,
    /// A blank line is due before the next block.
    blank: bool,
    /// The line budget is spent: what follows is left out.
    full: bool,
    pictures: usize,
}

impl Renderer<'_, '_> {
    fn look(&self) -> Look {
        Look {
            strong: self.strong > 0 || self.heading,
            emphasis: self.emphasis > 0,
            strike: self.strike > 0,
            link: self.link.is_some(),
            ..Look::default()
        }
    }

    fn event(&mut self, ev: Md<'_>) {
        match ev {
            Md::Start(tag) => self.start(tag),
            Md::End(tag) => self.end(tag),
            Md::Text(s) => self.text(&s, self.look()),
            Md::Code(s) => {
                let look = Look {
                    code: true,
                    ..self.look()
                };
                self.text(&s, look);
            }
            // Raw HTML is text.
            Md::Html(s) | Md::InlineHtml(s) => self.text(&s, self.look()),
            Md::SoftBreak | Md::HardBreak => {
                if self.image.is_some() {
                    self.text(" ", Look::default());
                } else {
                    self.text("\n", Look::default());
                }
            }
            Md::Rule => {
                self.flush();
                let w = self.room().min(60);
                self.line(vec![("─".repeat(w), Look::mark())]);
                self.blank = true;
            }
            Md::FootnoteReference(s) => self.text(&format!("[^{s}]"), self.look()),
            Md::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }, self.look()),
            Md::InlineMath(s) | Md::DisplayMath(s) => self.text(&s, self.look()),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.flush(),
            Tag::Heading { .. } => {
                self.flush();
                self.heading = true;
            }
            Tag::BlockQuote(_) => {
                self.flush();
                // The blank line before a quote is outside it.
                self.gap();
                self.boxes.push(Boxed::Quote);
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.code = Some(String::new());
            }
            Tag::List(first) => {
                self.flush();
                self.lists += 1;
                self.boxes.push(Boxed::List(first));
            }
            Tag::Item => {
                self.flush();
                let bullet = ["• ", "◦ ", "▪ "][self.lists.saturating_sub(1) % 3];
                let marker = match self.boxes.last_mut() {
                    Some(Boxed::List(Some(n))) => {
                        let m = format!("{n}. ");
                        *n = n.saturating_add(1);
                        m
                    }
                    _ => bullet.to_string(),
                };
                self.boxes.push(Boxed::Item {
                    marker,
                    fresh: true,
                });
            }
            Tag::Emphasis => self.emphasis += 1,
            Tag::Strong => self.strong += 1,
            Tag::Strikethrough => self.strike += 1,
            Tag::Link { dest_url, .. } => {
                let dest = dest(&dest_url);
                let pictured = matches!(&dest, Some(Dest::Ssb(Target::Blob(id))) if self.l.images.contains(id));
                if let Some(img) = &mut self.image {
                    img.inner += 1;
                } else if pictured {
                    self.image = Some(ImageAt {
                        dest,
                        alt: String::new(),
                        inner: 0,
                    });
                } else if self.link.is_none() {
                    self.link = Some(LinkAt {
                        dest,
                        at: self.para.len(),
                        seg: self.segs.len(),
                    });
                }
            }
            Tag::Image { dest_url, .. } => match &mut self.image {
                Some(img) => img.inner += 1,
                None => {
                    self.image = Some(ImageAt {
                        dest: dest(&dest_url),
                        alt: String::new(),
                        inner: 0,
                    })
                }
            },
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => {
                self.flush();
                self.blank = true;
            }
            TagEnd::Heading(_) => {
                self.flush();
                self.heading = false;
                self.blank = true;
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.boxes.pop();
                self.blank = true;
            }
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                let room = self.room();
                let look = Look {
                    code: true,
                    ..Look::default()
                };
                for l in code.trim_end_matches('\n').split('\n') {
                    if self.full {
                        break;
                    }
                    self.line(vec![(text::fit(l, room), look)]);
                }
                self.blank = true;
            }
            TagEnd::List(_) => {
                self.flush();
                self.boxes.pop();
                self.lists = self.lists.saturating_sub(1);
                self.blank = !self.boxes.iter().any(|b| matches!(b, Boxed::Item { .. }));
            }
            TagEnd::Item => {
                self.flush();
                self.boxes.pop();
            }
            TagEnd::Emphasis => self.emphasis = self.emphasis.saturating_sub(1),
            TagEnd::Strong => self.strong = self.strong.saturating_sub(1),
            TagEnd::Strikethrough => self.strike = self.strike.saturating_sub(1),
            TagEnd::Link | TagEnd::Image => {
                if let Some(img) = &mut self.image {
                    if img.inner > 0 {
                        img.inner -= 1;
                        return;
                    }
                    if let Some(img) = self.image.take() {
                        self.picture(img);
                    }
                } else if let Some(link) = self.link.take() {
                    self.end_link(link);
                }
            }
            _ => {}
        }
    }

    /// Text in the current place: an image's alt text, a code block, or
    /// the block being read.
    fn text(&mut self, s: &str, look: Look) {
        if let Some(img) = &mut self.image {
            if img.alt.chars().count() < MAX_LABEL {
                img.alt.push_str(s);
            }
            return;
        }
        if let Some(code) = &mut self.code {
            code.push_str(&text::clean(s));
            return;
        }
        let s = text::clean(s);
        if s.is_empty() {
            return;
        }
        let at = self.para.len();
        self.para.push_str(&s);
        self.segs.push((at..self.para.len(), look));
    }

    /// The end of a markdown link: a mention drawn as the name we know,
    /// the link noted.
    fn end_link(&mut self, link: LinkAt) {
        let label = text::one_line(&self.para[link.at..]);
        if let Some(Dest::Ssb(Target::Feed(id))) = &link.dest
            && label.starts_with('@')
            && let Some(name) = (self.l.name)(id).map(|n| text::one_line(&n))
            && !name.is_empty()
        {
            self.para.truncate(link.at);
            self.segs.truncate(link.seg);
            let look = Look {
                link: true,
                ..self.look()
            };
            self.text(&format!("@{name}"), look);
        }
        if let Some(dest) = link.dest {
            let label: String = label.chars().take(MAX_LABEL).collect();
            self.para_links.push((
                link.at,
                Found {
                    dest,
                    label: (!label.is_empty()).then_some(label),
                    image: false,
                },
            ));
        }
    }

    /// The end of an image: noted as a link, drawn as a slot for its
    /// picture, or a placeholder.
    fn picture(&mut self, img: ImageAt) {
        let alt = text::fit(&text::one_line(&img.alt), 60);
        let blob = match &img.dest {
            Some(Dest::Ssb(Target::Blob(id))) => Some(id.clone()),
            _ => None,
        };
        if let Some(dest) = img.dest {
            self.para_links.push((
                self.para.len(),
                Found {
                    dest,
                    label: (!alt.is_empty()).then(|| alt.clone()),
                    image: true,
                },
            ));
        }
        let what = if alt.is_empty() {
            "image".to_string()
        } else {
            format!("image: {alt}")
        };
        let look = Look {
            mark: true,
            ..self.look()
        };
        if self.l.compact {
            self.text(&format!("[{what}]"), look);
            return;
        }
        let picture = blob
            .as_deref()
            .map_or(Picture::Placeholder, |id| (self.l.picture)(id));
        self.flush();
        if let (Picture::Drawn { cols, rows }, Some(id)) = (&picture, blob) {
            let fits = *cols <= self.room()
                && self.doc.lines.len() + *rows <= self.l.max_lines
                && self.pictures < MAX_PICTURES;
            if fits {
                self.gap();
                let line = self.doc.lines.len();
                let col = self.prefix_width();
                for _ in 0..*rows {
                    self.line(Vec::new());
                }
                self.pictures += 1;
                self.doc.slots.push(Slot {
                    line,
                    col,
                    rows: *rows,
                    cols: *cols,
                    id,
                });
                return;
            }
        }
        let shown = match picture {
            Picture::Fetching => format!("[{what} — fetching…]"),
            Picture::Failed(why) => format!("[{what} — cannot be shown: {}]", text::one_line(&why)),
            Picture::Placeholder | Picture::Drawn { .. } => format!("[{what}]"),
        };
        self.text(&shown, look);
        self.flush();
    }

    /// Columns left for text after the prefix.
    fn room(&self) -> usize {
        self.l.width.saturating_sub(self.prefix_width()).max(1)
    }

    /// The prefix of a line: quote bars, list indentation, the marker of
    /// an item on its first line. At most [`MAX_NEST`] boxes deep, and at
    /// most half the width (the innermost boxes kept).
    fn prefix_runs(&self) -> Vec<Vec<Run>> {
        let mut parts: Vec<Vec<Run>> = self
            .boxes
            .iter()
            .filter(|b| !matches!(b, Boxed::List(_)))
            .take(MAX_NEST)
            .map(|b| match b {
                Boxed::Quote => vec![("│ ".to_string(), Look::mark())],
                Boxed::Item {
                    marker,
                    fresh: true,
                } => {
                    vec![(marker.clone(), Look::mark())]
                }
                Boxed::Item { marker, .. } => {
                    vec![(" ".repeat(text::width(marker)), Look::default())]
                }
                Boxed::List(_) => Vec::new(),
            })
            .collect();
        let w = |p: &[Vec<Run>]| -> usize { p.iter().flatten().map(|(t, _)| text::width(t)).sum() };
        while !parts.is_empty() && w(&parts) > self.l.width / 2 {
            parts.remove(0);
        }
        parts
    }

    fn prefix_width(&self) -> usize {
        self.prefix_runs()
            .iter()
            .flatten()
            .map(|(t, _)| text::width(t))
            .sum()
    }

    /// A blank line before a block, when one is due.
    fn gap(&mut self) {
        if std::mem::take(&mut self.blank) && !self.l.compact && !self.doc.lines.is_empty() {
            let mut bars: Vec<Run> = self
                .prefix_runs()
                .into_iter()
                .flatten()
                .filter(|(t, _)| t == "│ ")
                .collect();
            if let Some(last) = bars.last_mut() {
                last.0 = "│".into();
            }
            self.push(bars);
        }
    }

    /// Adds a line after the prefix (item markers not yet drawn are drawn
    /// on it), unless the budget is spent.
    fn line(&mut self, runs: Vec<Run>) {
        self.gap();
        let parts = self.prefix_runs();
        for b in &mut self.boxes {
            if let Boxed::Item { fresh, .. } = b {
                *fresh = false;
            }
        }
        let mut line: Vec<Run> = parts.into_iter().flatten().collect();
        line.extend(runs);
        self.push(line);
    }

    fn push(&mut self, line: Vec<Run>) {
        if self.doc.lines.len() >= self.l.max_lines {
            self.full = true;
            return;
        }
        self.doc.lines.push(line);
    }

    /// Lays out the block read so far: its bare links marked, wrapped to
    /// the room left, each line after the prefix.
    fn flush(&mut self) {
        let end = self.para.trim_end().len();
        if end == 0 || self.full {
            self.para.clear();
            self.segs.clear();
            self.para_links.clear();
            return;
        }
        self.para.truncate(end);
        let mut segs: Vec<(Range<usize>, Look)> = std::mem::take(&mut self.segs)
            .into_iter()
            .filter(|(r, _)| r.start < end)
            .map(|(r, l)| (r.start..r.end.min(end), l))
            .collect();
        // Bare links in plain text (not code, not a markdown link's text).
        let mut marks = Vec::new();
        for l in links::find(&self.para) {
            let plain = segs
                .iter()
                .filter(|(r, _)| r.start < l.range.end && r.end > l.range.start)
                .all(|(_, look)| !look.code && !look.link);
            if plain {
                marks.push(l.range.clone());
                self.para_links.push((
                    l.range.start,
                    Found {
                        dest: Dest::Ssb(l.target),
                        label: l.label.map(|s| text::one_line(&s)),
                        image: false,
                    },
                ));
            }
        }
        if !marks.is_empty() {
            segs = overlay(&segs, &marks);
        }
        let mut found = std::mem::take(&mut self.para_links);
        found.sort_by_key(|(at, _)| *at);
        let room = MAX_LINKS.saturating_sub(self.doc.links.len());
        self.doc
            .links
            .extend(found.into_iter().take(room).map(|(_, f)| f));
        let room = self.room();
        let lines = text::wrap_styled(&self.para, room, usize::MAX, &segs, Look::default());
        for runs in lines {
            if self.full {
                break;
            }
            self.line(runs);
        }
        self.para.clear();
    }
}

/// `segs` (contiguous) with the ranges `marks` (sorted, not overlapping)
/// drawn as links.
fn overlay(segs: &[(Range<usize>, Look)], marks: &[Range<usize>]) -> Vec<(Range<usize>, Look)> {
    let mut out = Vec::with_capacity(segs.len() + marks.len() * 2);
    let mut m = 0;
    for (r, look) in segs {
        let mut from = r.start;
        while from < r.end {
            while m < marks.len() && marks[m].end <= from {
                m += 1;
            }
            match marks.get(m) {
                Some(k) if k.start <= from => {
                    let to = k.end.min(r.end);
                    out.push((
                        from..to,
                        Look {
                            link: true,
                            ..*look
                        },
                    ));
                    from = to;
                }
                Some(k) if k.start < r.end => {
                    out.push((from..k.start, *look));
                    from = k.start;
                }
                _ => {
                    out.push((from..r.end, *look));
                    from = r.end;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "@+oaWWDs8g73EZFUMfW37R/ULtFEjwKN/DczvdYihjbU=.ed25519";
    const MSG: &str = "%g3hPVPDEO1Aj/uPl0+J2NlhFB2bbFLIHlty+YuqFZ3w=.sha256";
    const BLOB: &str = "&sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n/OJGSC1U=.sha256";

    fn lay(src: &str, width: usize) -> Doc {
        let name = |id: &str| (id == FEED).then(|| "Ada".to_string());
        render(
            src,
            &Layout {
                width,
                max_lines: 40,
                compact: false,
                name: &name,
                picture: &|_| Picture::Drawn { cols: 10, rows: 3 },
                images: &[],
            },
        )
    }

    fn texts(d: &Doc) -> Vec<String> {
        d.lines
            .iter()
            .map(|l| l.iter().map(|(t, _)| t.as_str()).collect())
            .collect()
    }

    fn look_of(d: &Doc, s: &str) -> Look {
        d.lines
            .iter()
            .flatten()
            .find(|(t, _)| t.contains(s))
            .map(|(_, l)| *l)
            .unwrap_or_else(|| panic!("{s:?} not in {d:?}"))
    }

    #[test]
    fn inline_styles() {
        let d = lay("a *b* **c** `d` ~~e~~", 40);
        assert_eq!(texts(&d), ["a b c d e"]);
        assert!(look_of(&d, "b").emphasis);
        assert!(look_of(&d, "c").strong);
        assert!(look_of(&d, "d").code);
        assert!(look_of(&d, "e").strike);
    }

    #[test]
    fn blocks() {
        let d = lay(
            "# Title\n\npara one\nsecond line\n\n- a\n- b\n  1. x\n  2. y\n\n> quoted\n\n---\n\n```\ncode  here\n```",
            30,
        );
        assert_eq!(
            texts(&d),
            [
                "Title",
                "",
                "para one",
                "second line",
                "",
                "• a",
                "• b",
                "  1. x",
                "  2. y",
                "",
                "│ quoted",
                "",
                &"─".repeat(30),
                "",
                "code  here",
            ]
        );
        assert!(look_of(&d, "Title").strong);
        assert!(look_of(&d, "code").code);
    }

    #[test]
    fn mentions_links_and_images() {
        let src = format!("hi [@someone]({FEED}), see [this]({MSG}) and {MSG}\n![a cat]({BLOB})");
        let d = lay(&src, 200);
        assert_eq!(texts(&d)[0], format!("hi @Ada, see this and {MSG}"));
        assert!(look_of(&d, "@Ada").link);
        assert!(look_of(&d, "this").link);
        let found: Vec<(Dest, Option<String>)> = d
            .links
            .iter()
            .map(|f| (f.dest.clone(), f.label.clone()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    Dest::Ssb(Target::Feed(FEED.into())),
                    Some("@someone".into())
                ),
                (Dest::Ssb(Target::Message(MSG.into())), Some("this".into())),
                (Dest::Ssb(Target::Message(MSG.into())), None),
                (Dest::Ssb(Target::Blob(BLOB.into())), Some("a cat".into())),
            ]
        );
        assert_eq!(d.slots.len(), 1);
        assert_eq!((d.slots[0].line, d.slots[0].rows), (1, 3));
        assert_eq!(images(&src, &[]), [BLOB.to_string()]);
    }

    #[test]
    fn code_is_clipped_not_wrapped() {
        let src = format!("```\n{}\n```", "x".repeat(100));
        let d = lay(&src, 20);
        assert_eq!(texts(&d), [format!("{}…", "x".repeat(19))]);
    }

    #[test]
    fn entities_and_html_stay_text() {
        let d = lay("a &#27;[2J b <b>bold</b> &#x202e;", 80);
        let all = texts(&d).join("\n");
        assert!(
            !all.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{all:?}"
        );
        assert!(all.contains("<b>bold</b>"), "{all:?}");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let quotes = ">".repeat(3000) + " deep";
        let d = lay(&quotes, 40);
        assert!(
            d.lines
                .iter()
                .all(|l| l.iter().map(|(t, _)| text::width(t)).sum::<usize>() <= 40)
        );
        let lists: String = (0..2000)
            .map(|i| format!("{}- x\n", "  ".repeat(i)))
            .collect();
        let d = lay(&lists, 40);
        assert!(d.lines.len() <= 41);
    }
}
