//! Drafts: what a message is for ([`Target`]) and the multi-line text
//! [`Editor`] of the compose pane, with its layout on screen.
//!
//! Pure: editing, cursor movement and wrapping are functions of the text
//! and the width. Imports `keys` (the editing actions) and `text`; never
//! the app state, the node or I/O.

use unicode_width::UnicodeWidthChar as _;

use crate::keys::Edit;

/// What a draft is for; each target keeps its own draft.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A public post.
    Post,
    /// A reply to a message.
    Reply {
        /// The message replied to.
        to: String,
    },
    /// A private message to these feeds (sorted, without us).
    Dm {
        /// Recipients.
        to: Vec<String>,
    },
    /// A post to a private group.
    Group(String),
}

/// A multi-line text being written. Never empty of lines; the cursor is a
/// line and a character index within it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Editor {
    lines: Vec<String>,
    row: usize,
    col: usize,
}

impl Default for Editor {
    fn default() -> Self {
        Editor::new("")
    }
}

/// The most characters a draft holds (a message is at most 8 KB anyway).
pub const MAX_DRAFT_CHARS: usize = 16_000;

impl Editor {
    /// An editor holding `text`, the cursor at its end.
    pub fn new(text: &str) -> Editor {
        let mut e = Editor {
            lines: vec![String::new()],
            row: 0,
            col: 0,
        };
        e.insert_str(text);
        e
    }

    /// The whole text.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Whether there is nothing but whitespace.
    pub fn is_blank(&self) -> bool {
        self.lines.iter().all(|l| l.trim().is_empty())
    }

    /// The cursor: line and character index.
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    fn chars(&self) -> usize {
        self.lines.iter().map(|l| l.chars().count() + 1).sum()
    }

    fn byte_at(line: &str, col: usize) -> usize {
        line.char_indices().nth(col).map_or(line.len(), |(i, _)| i)
    }

    fn line_len(&self) -> usize {
        self.lines[self.row].chars().count()
    }

    /// Inserts text at the cursor (pasted text, a file from `$EDITOR`):
    /// `\r\n` and `\r` become line breaks, tabs spaces, and other control
    /// characters are dropped.
    pub fn insert_str(&mut self, s: &str) {
        let mut room = MAX_DRAFT_CHARS.saturating_sub(self.chars());
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if room == 0 {
                break;
            }
            room -= 1;
            match c {
                '\r' => {
                    if chars.peek() != Some(&'\n') {
                        self.newline();
                    }
                }
                '\n' => self.newline(),
                '\t' => self.insert_char(' '),
                c if c.is_control() => {}
                c => self.insert_char(c),
            }
        }
    }

    fn insert_char(&mut self, c: char) {
        let line = &mut self.lines[self.row];
        let at = Self::byte_at(line, self.col);
        line.insert(at, c);
        self.col += 1;
    }

    fn newline(&mut self) {
        let line = &mut self.lines[self.row];
        let at = Self::byte_at(line, self.col);
        let rest = line.split_off(at);
        self.lines.insert(self.row + 1, rest);
        self.row += 1;
        self.col = 0;
    }

    /// Applies an editing key; `Send`, `Close`, `External` and `Attach`
    /// are for the caller and change nothing here.
    pub fn apply(&mut self, e: Edit) {
        match e {
            Edit::Char(c) => {
                if !c.is_control() && self.chars() < MAX_DRAFT_CHARS {
                    self.insert_char(c);
                }
            }
            Edit::Newline => {
                if self.chars() < MAX_DRAFT_CHARS {
                    self.newline();
                }
            }
            Edit::Backspace => {
                if self.col > 0 {
                    let line = &mut self.lines[self.row];
                    let at = Self::byte_at(line, self.col - 1);
                    line.remove(at);
                    self.col -= 1;
                } else if self.row > 0 {
                    let line = self.lines.remove(self.row);
                    self.row -= 1;
                    self.col = self.line_len();
                    self.lines[self.row].push_str(&line);
                }
            }
            Edit::Delete => {
                if self.col < self.line_len() {
                    let line = &mut self.lines[self.row];
                    let at = Self::byte_at(line, self.col);
                    line.remove(at);
                } else if self.row + 1 < self.lines.len() {
                    let next = self.lines.remove(self.row + 1);
                    self.lines[self.row].push_str(&next);
                }
            }
            Edit::Left => {
                if self.col > 0 {
                    self.col -= 1;
                } else if self.row > 0 {
                    self.row -= 1;
                    self.col = self.line_len();
                }
            }
            Edit::Right => {
                if self.col < self.line_len() {
                    self.col += 1;
                } else if self.row + 1 < self.lines.len() {
                    self.row += 1;
                    self.col = 0;
                }
            }
            Edit::Up => {
                if self.row > 0 {
                    self.row -= 1;
                    self.col = self.col.min(self.line_len());
                }
            }
            Edit::Down => {
                if self.row + 1 < self.lines.len() {
                    self.row += 1;
                    self.col = self.col.min(self.line_len());
                }
            }
            Edit::Home => self.col = 0,
            Edit::End => self.col = self.line_len(),
            Edit::Send | Edit::Close | Edit::External | Edit::Attach => {}
        }
    }

    /// The text broken into screen rows of at most `width` columns (hard
    /// wrapped, so the cursor maps simply), and the cursor's row and column
    /// among them.
    pub fn layout(&self, width: usize) -> (Vec<String>, (usize, usize)) {
        let width = width.max(2);
        let mut rows = Vec::new();
        let mut cursor = (0, 0);
        for (r, line) in self.lines.iter().enumerate() {
            let mut row = String::new();
            let mut used = 0;
            for (c, ch) in line.chars().enumerate() {
                let w = ch.width().unwrap_or(0);
                if used + w > width {
                    rows.push(std::mem::take(&mut row));
                    used = 0;
                }
                if r == self.row && c == self.col {
                    cursor = (rows.len(), used);
                }
                row.push(ch);
                used += w;
            }
            if r == self.row && self.col >= line.chars().count() {
                if used >= width {
                    rows.push(std::mem::take(&mut row));
                    used = 0;
                }
                cursor = (rows.len(), used);
            }
            rows.push(row);
        }
        (rows, cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        for c in s.chars() {
            e.apply(if c == '\n' {
                Edit::Newline
            } else {
                Edit::Char(c)
            });
        }
        e
    }

    #[test]
    fn typing_lines_and_backspace() {
        let mut e = typed("hello\nworld");
        assert_eq!(e.text(), "hello\nworld");
        assert_eq!(e.cursor(), (1, 5));
        for _ in 0..6 {
            e.apply(Edit::Backspace);
        }
        assert_eq!(e.text(), "hello");
        assert_eq!(e.cursor(), (0, 5));
    }

    #[test]
    fn moving_and_inserting_in_the_middle() {
        let mut e = typed("ac");
        e.apply(Edit::Left);
        e.apply(Edit::Char('b'));
        assert_eq!(e.text(), "abc");
        e.apply(Edit::Home);
        e.apply(Edit::Delete);
        assert_eq!(e.text(), "bc");
        e.apply(Edit::End);
        e.apply(Edit::Newline);
        e.apply(Edit::Char('日'));
        e.apply(Edit::Up);
        assert_eq!(e.cursor(), (0, 1));
        e.apply(Edit::Right);
        e.apply(Edit::Right);
        assert_eq!(e.cursor(), (1, 0));
        e.apply(Edit::Backspace);
        assert_eq!(e.text(), "bc日");
    }

    #[test]
    fn pasted_text_loses_controls() {
        let e = Editor::new("a\x1b[31mb\r\nc\td\0");
        assert_eq!(e.text(), "a[31mb\nc d");
    }

    #[test]
    fn blank_drafts() {
        assert!(Editor::new(" \n  ").is_blank());
        assert!(!Editor::new("x").is_blank());
    }

    #[test]
    fn layout_wraps_wide_characters_and_places_the_cursor() {
        let e = Editor::new("日本語テキスト");
        let (rows, cursor) = e.layout(5);
        assert_eq!(rows, vec!["日本", "語テ", "キス", "ト"]);
        assert_eq!(cursor, (3, 2));
        let e = Editor::new("abcd");
        let (rows, cursor) = e.layout(4);
        assert_eq!(rows, vec!["abcd", ""]);
        assert_eq!(cursor, (1, 0));
    }

    #[test]
    fn drafts_are_bounded() {
        let e = Editor::new(&"x".repeat(MAX_DRAFT_CHARS * 2));
        assert!(e.text().chars().count() <= MAX_DRAFT_CHARS);
    }
}
