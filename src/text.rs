//! Plain-text rendering of the read models for the command line: items of
//! the timeline and inbox, thread entries, profiles and contacts.
//!
//! Works on the JSON form of [`social`](crate::social) results, which is
//! what the CLI holds whether it read the store itself or asked a running
//! node. Pure: no I/O.

use serde_json::Value as Json;

/// `YYYY-MM-DD HH:MM` (UTC) of a time in ms since the epoch.
pub fn date(ms: u64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "????-??-?? ??:??".into())
}

/// The start (00:00 UTC) of a day given as `YYYY-MM-DD`, in ms since the
/// epoch.
pub fn parse_day(s: &str) -> Option<u64> {
    let mut parts = s.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let secs = date.midnight().assume_utc().unix_timestamp();
    u64::try_from(secs).ok()?.checked_mul(1000)
}

/// One hit of a search: who, when, where, and the snippet with its
/// matching words marked `[like this]`, then the message id.
pub fn search_hit(hit: &Json) -> String {
    let snippet = s(hit, "snippet").unwrap_or("");
    let mut marked = String::new();
    let mut at = 0;
    if let Some(marks) = hit.get("marks").and_then(Json::as_array) {
        for m in marks {
            let (Some(a), Some(b)) = (
                m.get(0).and_then(Json::as_u64),
                m.get(1).and_then(Json::as_u64),
            ) else {
                continue;
            };
            let (a, b) = (a as usize, b as usize);
            if a < at || b > snippet.len() || a > b {
                continue;
            }
            let (Some(before), Some(word)) = (snippet.get(at..a), snippet.get(a..b)) else {
                continue;
            };
            marked.push_str(before);
            marked.push('[');
            marked.push_str(word);
            marked.push(']');
            at = b;
        }
    }
    marked.push_str(snippet.get(at..).unwrap_or(""));
    let who = t(hit, "name").unwrap_or_else(|| short(s(hit, "author").unwrap_or("?")));
    let when = date(hit.get("time").and_then(Json::as_u64).unwrap_or(0));
    let kind = s(hit, "kind").unwrap_or("public");
    let what = match s(hit, "content_type") {
        Some("about") => " about",
        Some(_) if hit.get("root").is_some_and(|r| !r.is_null()) => " reply",
        _ => "",
    };
    let text: Vec<String> = marked.lines().map(clean).collect();
    format!(
        "{who}  {when}  {kind}{what}\n  {}\n  {}",
        text.join(" "),
        s(hit, "key").unwrap_or("")
    )
}

/// Text from the network made safe for one terminal line: control
/// characters (so escape sequences), bidirectional overrides and line
/// separators become `�`; tabs stay.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' => {
                '\u{FFFD}'
            }
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// A string field a peer wrote, made safe ([`clean`]).
fn t(v: &Json, k: &str) -> Option<String> {
    s(v, k).map(clean)
}

/// A multi-line text a peer wrote, each line made safe, each prefixed.
fn lines(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("\n{prefix}{}", clean(l)))
        .collect()
}

/// A byte count for a person: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.20 GiB`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f < K {
        format!("{n} B")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / (K * K))
    } else {
        format!("{:.2} GiB", f / (K * K * K))
    }
}

/// A feed id cut to its first characters: `@FCX/tsDL…`.
pub fn short(id: &str) -> String {
    let cut: String = id.chars().take(9).collect();
    if cut.len() < id.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn s<'a>(v: &'a Json, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Json::as_str)
}

fn n(v: &Json, k: &str) -> u64 {
    v.get(k).and_then(Json::as_u64).unwrap_or(0)
}

/// Who wrote it: `name (@abc…)` or just the short id.
fn who(v: &Json) -> String {
    let author = s(v, "author").unwrap_or("?");
    match t(v, "name") {
        Some(name) => format!("{name} ({})", short(author)),
        None => short(author),
    }
}

/// One timeline or inbox item, indented by `indent` spaces.
pub fn item(v: &Json, indent: usize) -> String {
    item_in(v, indent, indent == 0)
}

/// An item; `in_reply` says whether to name the root of a reply.
fn item_in(v: &Json, indent: usize, in_reply: bool) -> String {
    let pad = " ".repeat(indent);
    let mark = if v.get("unread").and_then(Json::as_bool) == Some(true) {
        "* "
    } else {
        ""
    };
    let edited = if v.get("edited").and_then(Json::as_bool) == Some(true) {
        " · edited"
    } else {
        ""
    };
    let mut out = format!(
        "{pad}{mark}{} · {} · {}{edited}",
        who(v),
        date(n(v, "time")),
        s(v, "key").unwrap_or("?")
    );
    if v.get("private").and_then(Json::as_bool) == Some(true) {
        let recps: Vec<String> = v
            .get("recps")
            .and_then(Json::as_array)
            .map(|r| r.iter().filter_map(Json::as_str).map(short).collect())
            .unwrap_or_default();
        if recps.is_empty() {
            out.push_str(&format!("\n{pad}  private (group)"));
        } else {
            out.push_str(&format!("\n{pad}  private to {}", recps.join(", ")));
        }
    }
    if let Some(root) = s(v, "root")
        && in_reply
    {
        out.push_str(&format!("\n{pad}  in reply to {root}"));
    }
    if let Some(of) = s(v, "revises")
        && in_reply
    {
        out.push_str(&format!("\n{pad}  a revision of {of}"));
    }
    match (s(v, "text"), t(v, "invalid")) {
        (Some(text), _) => out.push_str(&lines(text, &format!("{pad}  "))),
        (None, Some(why)) => {
            out.push_str(&format!("\n{pad}  (unreadable content: {why})"));
            out.push_str(&format!("\n{pad}  {}", raw(v)));
        }
        (None, None) => out.push_str(&format!("\n{pad}  {}", raw(v))),
    }
    let (replies, likes) = (n(v, "replies"), n(v, "likes"));
    if replies + likes > 0 {
        let plural =
            |k: u64, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        out.push_str(&format!(
            "\n{pad}  {} · {}",
            plural(replies, "reply", "replies"),
            plural(likes, "like", "likes")
        ));
    }
    let own = n(v, "own_thread");
    if own > 0 {
        out.push_str(&format!(
            "\n{pad}  {own} {} in its own thread: shoal thread {}",
            if own == 1 { "reply" } else { "replies" },
            s(v, "key").unwrap_or("?")
        ));
    }
    out
}

fn raw(v: &Json) -> String {
    let c = v.get("content").cloned().unwrap_or(Json::Null);
    let text = clean(&c.to_string());
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

/// One line of `group list`: id, name, member count and our standing.
pub fn group(g: &Json) -> String {
    let members = g
        .get("members")
        .and_then(Json::as_array)
        .map_or(0, Vec::len);
    let state = if g.get("member").and_then(Json::as_bool) != Some(true) {
        "removed"
    } else if g.get("can_post").and_then(Json::as_bool) == Some(true) {
        "member"
    } else {
        "member, waiting for a key"
    };
    format!(
        "{}  {}  {members} member{}  ({state})",
        s(g, "id").unwrap_or("?"),
        t(g, "name").unwrap_or_else(|| "(unnamed)".into()),
        if members == 1 { "" } else { "s" }
    )
}

/// One thread entry, indented by its depth.
pub fn entry(e: &Json) -> String {
    let depth = n(e, "depth") as usize;
    match s(e, "entry") {
        Some("missing") => format!(
            "{}(a message we do not have: {})",
            "  ".repeat(depth),
            s(e, "key").unwrap_or("?")
        ),
        Some("muted") => format!("{}({} muted)", "  ".repeat(depth), n(e, "count")),
        _ => item(e, depth * 2),
    }
}

/// A whole thread: where it forked from, its entries, then what is not
/// shown (replies past the cap, replies of feeds we block).
pub fn thread(v: &Json) -> Vec<String> {
    let mut out = Vec::new();
    if v.get("muted_thread").and_then(Json::as_bool) == Some(true) {
        out.push("(this thread is muted: it does not show in the timeline or the inbox)".into());
    }
    let forked = s(v, "forked_from");
    if let Some(from) = forked {
        out.push(format!("forked from {from}"));
    }
    for e in v
        .get("entries")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if forked.is_some() && n(e, "depth") == 0 && s(e, "entry") != Some("missing") {
            // The root's root is the line above.
            out.push(item_in(e, 0, false));
        } else {
            out.push(entry(e));
        }
    }
    let more = n(v, "more");
    if more > 0 {
        out.push(format!("({more} more: replies past the first shown)"));
    }
    let hidden = n(v, "hidden");
    if hidden > 0 {
        out.push(format!("({hidden} hidden: replies of feeds you block)"));
    }
    out
}

/// A post's history: the original, then each revision, oldest first.
pub fn history(v: &Json) -> Vec<String> {
    let mut out = Vec::new();
    let versions = v.get("versions").and_then(Json::as_array);
    for (i, e) in versions.into_iter().flatten().enumerate() {
        let label = if i == 0 {
            "original".to_string()
        } else {
            format!("revision {i}")
        };
        out.push(format!(
            "{label} · {} · {}{}",
            date(n(e, "time")),
            s(e, "key").unwrap_or("?"),
            lines(s(e, "text").unwrap_or(""), "  ")
        ));
    }
    let ignored = n(v, "ignored");
    if ignored > 0 {
        out.push(format!(
            "({ignored} ignored: revisions by feeds other than its author)"
        ));
    }
    out
}

/// One mute: `word "cat"`, `feed @…`, `thread %…`.
pub fn mute(v: &Json) -> String {
    let kind = s(v, "kind").unwrap_or("?");
    let value = t(v, "value").unwrap_or_default();
    let what = if kind == "word" {
        format!("word {value:?}")
    } else {
        format!("{kind} {value}")
    };
    match n(v, "since") {
        0 => what,
        at => format!("{what}  (since {})", date(at)),
    }
}

fn people(title: &str, list: Option<&Json>) -> String {
    let list = list.and_then(Json::as_array).cloned().unwrap_or_default();
    let mut out = format!("{title} ({})", list.len());
    for p in &list {
        let id = s(p, "id").unwrap_or("?");
        match t(p, "name") {
            Some(name) => out.push_str(&format!("\n  {name}  {id}")),
            None => out.push_str(&format!("\n  {id}")),
        }
    }
    out
}

/// A profile, or the answer of `contacts`.
pub fn profile(v: &Json) -> String {
    let id = s(v, "id").unwrap_or("?");
    let mut out = match t(v, "name") {
        Some(name) => format!("{name}  {id}"),
        None => id.to_string(),
    };
    if let Some(d) = s(v, "description") {
        out.push_str(&lines(d, ""));
    }
    if let Some(names) = v.get("names").and_then(Json::as_array)
        && names.len() > 1
    {
        let all: Vec<String> = names
            .iter()
            .filter_map(|p| p.get(1).and_then(Json::as_str).map(clean))
            .collect();
        out.push_str(&format!("\nalso known as: {}", all.join(", ")));
    }
    let c = v.get("contacts").cloned().unwrap_or(Json::Null);
    for (title, key) in [
        ("follows", "follows"),
        ("blocks", "blocks"),
        ("followers", "followers"),
        ("blocked by", "blocked_by"),
    ] {
        out.push('\n');
        out.push_str(&people(title, c.get(key)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(date(0), "1970-01-01 00:00");
        assert_eq!(date(1_700_000_000_000), "2023-11-14 22:13");
    }

    #[test]
    fn items_show_name_text_and_counts() {
        let v = serde_json::json!({
            "key": "%k", "author": "@abcdefghijklmnop", "name": "al", "time": 0,
            "text": "one\ntwo", "replies": 2, "likes": 1, "unread": true,
        });
        assert_eq!(
            item(&v, 0),
            "* al (@abcdefgh…) · 1970-01-01 00:00 · %k\n  one\n  two\n  2 replies · 1 like"
        );
    }

    #[test]
    fn forked_threads_say_where_they_forked_and_entries_their_own_threads() {
        let v = serde_json::json!({
            "root": "%f", "forked_from": "%r", "hidden": 1, "more": 3,
            "entries": [
                {"entry": "message", "depth": 0, "key": "%f", "author": "@abcdefghijklmnop",
                 "time": 0, "root": "%r", "text": "fork", "replies": 1},
                {"entry": "message", "depth": 1, "key": "%g", "author": "@abcdefghijklmnop",
                 "time": 0, "root": "%f", "text": "in it", "own_thread": 2},
            ],
        });
        assert_eq!(
            thread(&v),
            [
                "forked from %r",
                "@abcdefgh… · 1970-01-01 00:00 · %f\n  fork\n  1 reply · 0 likes",
                "  @abcdefgh… · 1970-01-01 00:00 · %g\n    in it\n    2 replies in its own thread: shoal thread %g",
                "(3 more: replies past the first shown)",
                "(1 hidden: replies of feeds you block)",
            ]
        );
    }

    #[test]
    fn what_peers_wrote_never_reaches_the_terminal_raw() {
        let v = serde_json::json!({
            "key": "%k", "author": "@abcdefghijklmnop", "name": "\u{1b}[2Jevil\u{202e}",
            "time": 0, "text": "a\u{1b}]0;title\u{7}b\r\n\u{9b}31mline\ttwo",
        });
        assert_eq!(
            item(&v, 0),
            "\u{fffd}[2Jevil\u{fffd} (@abcdefgh…) · 1970-01-01 00:00 · %k\n  a\u{fffd}]0;title\u{fffd}b\n  \u{fffd}31mline\ttwo"
        );
        let p = serde_json::json!({
            "id": "@x", "name": "n\u{1b}", "description": "d\u{7}\nmore",
            "names": [["@a", "one"], ["@b", "tw\u{1b}o"]],
        });
        let shown = profile(&p);
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(
            shown.starts_with("n\u{fffd}  @x\nd\u{fffd}\nmore\nalso known as: one, tw\u{fffd}o")
        );
        let g = serde_json::json!({
            "id": "%g", "name": "crew\u{1b}[8m", "members": ["@a", "@b"], "member": true,
            "can_post": false,
        });
        assert_eq!(
            group(&g),
            "%g  crew\u{fffd}[8m  2 members  (member, waiting for a key)"
        );
    }
}
