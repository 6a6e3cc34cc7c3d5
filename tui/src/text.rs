//! Text as the terminal may show it: sanitising strings that came from the
//! network, cutting huge ones, measuring display width, wrapping to a
//! width (keeping track of marked ranges, such as links, over the lines),
//! and relative times.
//!
//! Every string a peer wrote passes through [`clean`] or [`one_line`] before
//! it is drawn: control characters (C0, DEL, C1), escape sequences and
//! bidirectional overrides never reach the terminal. Pure; imports only
//! `unicode-width` and `unicode-segmentation`, never the UI, the node or I/O.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

/// The most characters of one message's text shown in a view.
pub const MAX_SHOWN_CHARS: usize = 4000;

/// The most lines of one message's text shown in a view.
pub const MAX_SHOWN_LINES: usize = 40;

/// What a character becomes on screen, or `None` to keep it.
fn replacement(c: char) -> Option<char> {
    match c {
        // C0 controls become their control pictures (visible, width 1).
        '\u{0}'..='\u{1f}' => Some(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
        '\u{7f}' => Some('\u{2421}'),
        // C1 controls (CSI, OSC, … in 8-bit form).
        '\u{80}'..='\u{9f}' => Some('\u{fffd}'),
        // Bidirectional embeddings, overrides and isolates reorder what
        // follows them; line and paragraph separators break lines.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' => {
            Some('\u{fffd}')
        }
        _ => None,
    }
}

/// A network string made safe to draw, keeping its line breaks: tabs become
/// spaces, `\r\n` and `\r` become `\n`, other controls become visible
/// symbols. Cut at [`MAX_SHOWN_CHARS`] characters.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_SHOWN_CHARS * 4));
    let mut chars = s.chars().peekable();
    let mut n = 0;
    while let Some(c) = chars.next() {
        if n >= MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        n += 1;
        match c {
            '\n' => out.push('\n'),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\t' => out.push_str("    "),
            c => match replacement(c) {
                Some(r) => out.push(r),
                None => out.push(c),
            },
        }
    }
    out
}

/// A network string made safe for one line: like [`clean`], with line
/// breaks and tabs as spaces and runs of whitespace collapsed.
pub fn one_line(s: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in clean(s).chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// Display width in terminal columns.
pub fn width(s: &str) -> usize {
    s.width()
}

/// `s` cut to at most `max` columns, ending in `…` when cut. Never splits a
/// grapheme (an emoji sequence, a letter with its accents).
pub fn fit(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in s.graphemes(true) {
        let w = g.width();
        if used + w > max - 1 {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out.push('…');
    out
}

/// One piece of a wrapped line: where it starts in the wrapped text (a
/// byte offset) and what is shown, a slice of that text or the `…` that
/// stands for a grapheme too wide for the line.
type Piece<'a> = (usize, &'a str);

/// Drops the whitespace at the end of a line of pieces.
fn trim_pieces(mut line: Vec<Piece<'_>>) -> Vec<Piece<'_>> {
    while let Some(last) = line.last_mut() {
        let kept = last.1.trim_end();
        if kept.is_empty() {
            line.pop();
        } else {
            last.1 = kept;
            break;
        }
    }
    line
}

/// [`wrap`] as pieces of `s`, so that a line can be drawn in parts.
fn wrap_pieces(s: &str, max: usize) -> Vec<Vec<Piece<'_>>> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut para_at = 0;
    for para in s.split('\n') {
        let mut line: Vec<Piece<'_>> = Vec::new();
        let mut used = 0;
        for (at, word) in para.split_word_bound_indices() {
            let at = para_at + at;
            let w = word.width();
            if word.chars().all(char::is_whitespace) {
                // Spaces at a break are dropped; inside a line they count.
                if used > 0 && used + w <= max {
                    line.push((at, word));
                    used += w;
                } else if used > 0 {
                    out.push(trim_pieces(std::mem::take(&mut line)));
                    used = 0;
                }
                continue;
            }
            if used + w > max && used > 0 {
                out.push(trim_pieces(std::mem::take(&mut line)));
                used = 0;
            }
            if w <= max {
                line.push((at, word));
                used += w;
                continue;
            }
            // A word wider than the line: broken between graphemes.
            for (g_at, g) in word.grapheme_indices(true) {
                let gw = g.width();
                if used + gw > max && used > 0 {
                    out.push(std::mem::take(&mut line));
                    used = 0;
                }
                if gw > max {
                    // A grapheme wider than the whole line (width 1 with a
                    // wide character): shown as a placeholder.
                    line.push((at + g_at, "…"));
                    used += 1;
                    continue;
                }
                line.push((at + g_at, g));
                used += gw;
            }
        }
        out.push(trim_pieces(line));
        para_at += para.len() + 1;
    }
    out
}

/// Wraps already-clean text to `max` columns: at spaces where it can, inside
/// a word (or a run of CJK) where it must. Every line is at most `max`
/// columns wide (at least one column is assumed). Keeps paragraph breaks.
pub fn wrap(s: &str, max: usize) -> Vec<String> {
    wrap_pieces(s, max)
        .into_iter()
        .map(|line| line.into_iter().map(|(_, p)| p).collect())
        .collect()
}

/// Wraps `s` (already clean) and keeps at most `lines` lines, the last one
/// ending in `…` when something was left out.
pub fn wrap_max(s: &str, max: usize, lines: usize) -> Vec<String> {
    wrap_marked(s, max, lines, &[])
        .into_iter()
        .map(|runs| runs.into_iter().map(|(t, _)| t).collect())
        .collect()
}

/// A run of a wrapped line: its text, and whether it lies in one of the
/// marked ranges.
pub type Run = (String, bool);

/// Appends `text` to `runs`, joining it to the last run when both look
/// alike.
fn push_run<A: Copy + PartialEq>(runs: &mut Vec<(String, A)>, text: &str, look: A) {
    if text.is_empty() {
        return;
    }
    match runs.last_mut() {
        Some((t, l)) if *l == look => t.push_str(text),
        _ => runs.push((text.to_string(), look)),
    }
}

/// Splits one piece (starting at byte `at` of the text) where the ranges
/// (sorted, not overlapping) begin and end; text outside them looks
/// `plain`.
fn mark_piece<A: Copy + PartialEq>(
    runs: &mut Vec<(String, A)>,
    (at, piece): Piece<'_>,
    marks: &[(Range<usize>, A)],
    plain: A,
) {
    let end = at + piece.len();
    // The first range that ends after the piece starts.
    let mut i = marks.partition_point(|(r, _)| r.end <= at);
    let mut from = at;
    while from < end {
        let Some((r, look)) = marks.get(i).filter(|(r, _)| r.start < end) else {
            push_run(runs, &piece[from - at..], plain);
            return;
        };
        let (start, stop) = (r.start.max(from), r.end.min(end));
        let cut = |b: usize| piece.is_char_boundary(b - at);
        if start > from && cut(start) {
            push_run(runs, &piece[from - at..start - at], plain);
            from = start;
        }
        let stop = if cut(stop) { stop } else { end };
        push_run(runs, &piece[from - at..stop - at], *look);
        from = stop;
        i += 1;
    }
}

/// [`wrap_max`] keeping track of marked byte ranges of `s` (sorted, not
/// overlapping): each line is runs of text, marked or not, so that a link
/// broken over two lines is marked on both. Joined, the runs of each line
/// are the lines [`wrap_max`] gives.
pub fn wrap_marked(s: &str, max: usize, lines: usize, marks: &[Range<usize>]) -> Vec<Vec<Run>> {
    let marks: Vec<(Range<usize>, bool)> = marks.iter().map(|r| (r.clone(), true)).collect();
    wrap_styled(s, max, lines, &marks, false)
}

/// [`wrap_max`] with ranges of `s` (sorted, not overlapping) that look a
/// certain way (emphasis, code, a link): each line is runs of text with
/// their look, text outside every range looking `plain`. Joined, the runs
/// of each line are the lines [`wrap_max`] gives.
pub fn wrap_styled<A: Copy + PartialEq>(
    s: &str,
    max: usize,
    lines: usize,
    marks: &[(Range<usize>, A)],
    plain: A,
) -> Vec<Vec<(String, A)>> {
    let mut all = wrap_pieces(s, max);
    let cut = all.len() > lines;
    all.truncate(lines);
    let mut out: Vec<Vec<(String, A)>> = all
        .into_iter()
        .map(|line| {
            let mut runs = Vec::new();
            for piece in line {
                mark_piece(&mut runs, piece, marks, plain);
            }
            runs
        })
        .collect();
    if cut && let Some(last) = out.last_mut() {
        *last = cut_runs(std::mem::take(last), max, plain);
    }
    out
}

/// The last line kept of a longer text, marked as cut: ` …` after it when
/// that fits in `max` columns, else as much of it as fits before a `…`
/// (which looks `plain`).
pub fn cut_runs<A: Copy + PartialEq>(
    runs: Vec<(String, A)>,
    max: usize,
    plain: A,
) -> Vec<(String, A)> {
    let used: usize = runs.iter().map(|(t, _)| width(t)).sum();
    let mut out = Vec::new();
    if used + 2 <= max || max == 0 {
        out = runs;
        push_run(&mut out, if max == 0 { "…" } else { " …" }, plain);
        return out;
    }
    let mut used = 0;
    'runs: for (t, look) in runs {
        for g in t.graphemes(true) {
            let w = g.width();
            if used + w > max - 1 {
                break 'runs;
            }
            push_run(&mut out, g, look);
            used += w;
        }
    }
    push_run(&mut out, "…", plain);
    out
}

/// How long ago `then` was, from `now` (both ms since the epoch): `now`,
/// `42s`, `5m`, `3h`, `6d`, `7w`, `2y`.
pub fn ago(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then) / 1000;
    match s {
        0..=9 => "now".into(),
        10..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        86_400..=1_209_599 => format!("{}d", s / 86_400),
        1_209_600..=31_535_999 => format!("{}w", s / 604_800),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// A feed or message id cut to its start: `@FCX/tsDL…`.
pub fn short_id(id: &str) -> String {
    let id = one_line(id);
    let cut: String = id.chars().take(9).collect();
    if cut.len() < id.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_never_survive() {
        let evil = "a\x1b[2J\x1b]0;title\x07b\u{9b}31mc\u{202e}d\0e\x7f";
        let out = clean(evil);
        assert!(out.chars().all(|c| !c.is_control()), "{out:?}");
        assert!(!out.contains('\x1b') && !out.contains('\u{9b}') && !out.contains('\u{202e}'));
        assert_eq!(out, "a␛[2J␛]0;title␇b\u{fffd}31mc\u{fffd}d␀e␡");
    }

    #[test]
    fn line_breaks_and_tabs() {
        assert_eq!(clean("a\r\nb\rc\td"), "a\nb\nc    d");
        assert_eq!(one_line("  a\n\n b\t\tc  "), "a b c");
    }

    #[test]
    fn huge_text_is_cut() {
        let big = "x".repeat(MAX_SHOWN_CHARS * 3);
        let out = clean(&big);
        assert_eq!(out.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn fit_respects_width_and_graphemes() {
        assert_eq!(fit("hello", 10), "hello");
        assert_eq!(fit("hello world", 6), "hello…");
        assert_eq!(fit("日本語の文", 5), "日本…");
        assert!(width(&fit("👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦", 3)) <= 3);
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn wrap_never_exceeds_the_width() {
        let texts = [
            "the quick brown fox jumps over the lazy dog",
            "日本語のテキストは空白なしで続きます。折り返しが必要です。",
            "emoji 🐟🐟🐟🐟🐟🐟🐟🐟🐟 and words",
            "averyveryveryverylongwordwithoutanyspaceatall",
            "",
            "a\n\nb",
        ];
        for t in texts {
            for w in 1..30 {
                for line in wrap(t, w) {
                    assert!(width(&line) <= w, "{line:?} wider than {w}");
                }
            }
        }
        assert_eq!(wrap("a\n\nb", 10), vec!["a", "", "b"]);
        assert_eq!(wrap("one two three", 7), vec!["one two", "three"]);
    }

    #[test]
    fn wrap_max_marks_the_cut() {
        let lines = wrap_max("one two three four five six", 9, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with('…'), "{lines:?}");
        assert!(lines.iter().all(|l| width(l) <= 9));
    }

    #[test]
    fn marked_wrapping_is_wrapping_with_the_marks_kept() {
        let texts = [
            "see ssb:message/classic/abc= and more text after it",
            "日本語 ssb:feed/x 🐟🐟 end",
            "averyveryveryverylongwordwithoutanyspaceatall",
            "one two\n\nthree four five six seven",
        ];
        for t in texts {
            // The second word marked.
            let start = t.find(' ').map_or(0, |i| i + 1);
            let end = t[start..]
                .find(char::is_whitespace)
                .map_or(t.len(), |i| start + i);
            let mark = start..end;
            let marks = std::slice::from_ref(&mark);
            for w in 1..30 {
                for lines in [1, 2, 40] {
                    let runs = wrap_marked(t, w, lines, marks);
                    let joined: Vec<String> = runs
                        .iter()
                        .map(|l| l.iter().map(|(s, _)| s.as_str()).collect())
                        .collect();
                    assert_eq!(joined, wrap_max(t, w, lines), "{t:?} at {w}");
                    let marked: String = runs
                        .iter()
                        .flatten()
                        .filter(|(_, m)| *m)
                        .map(|(s, _)| s.as_str())
                        .collect();
                    if wrap(t, w).len() <= lines {
                        assert_eq!(marked, t[start..end], "{t:?} at {w}");
                    }
                }
            }
        }
        // A link broken over two lines is marked on both.
        let mark = 3..15;
        let runs = wrap_marked("go ssb:abcdefgh now", 8, 9, std::slice::from_ref(&mark));
        assert_eq!(
            runs,
            vec![
                vec![("go".to_string(), false)],
                vec![("ssb:abcd".to_string(), true)],
                vec![("efgh".to_string(), true), (" now".to_string(), false)],
            ]
        );
    }

    #[test]
    fn relative_times() {
        let now = 1_700_000_000_000;
        assert_eq!(ago(now, now), "now");
        assert_eq!(ago(now, now + 5000), "now");
        assert_eq!(ago(now, now - 42_000), "42s");
        assert_eq!(ago(now, now - 5 * 60_000), "5m");
        assert_eq!(ago(now, now - 3 * 3_600_000), "3h");
        assert_eq!(ago(now, now - 6 * 86_400_000), "6d");
        assert_eq!(ago(now, now - 21 * 86_400_000), "3w");
        assert_eq!(ago(now, now - 800 * 86_400_000), "2y");
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of a time in ms since the epoch.
pub fn date(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(super::date(0), "1970-01-01 00:00");
        assert_eq!(super::date(1_600_000_000_000), "2020-09-13 12:26");
        assert_eq!(super::date(951_782_400_000), "2000-02-29 00:00");
    }
}
