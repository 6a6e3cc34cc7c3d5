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

/// Text from the network made safe for one terminal line: control
/// characters (escape sequences included) become `�`.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
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
    match s(v, "name") {
        Some(name) => format!("{name} ({})", short(author)),
        None => short(author),
    }
}

/// One timeline or inbox item, indented by `indent` spaces.
pub fn item(v: &Json, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mark = if v.get("unread").and_then(Json::as_bool) == Some(true) {
        "* "
    } else {
        ""
    };
    let mut out = format!(
        "{pad}{mark}{} · {} · {}",
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
        && indent == 0
    {
        out.push_str(&format!("\n{pad}  in reply to {root}"));
    }
    match (s(v, "text"), s(v, "invalid")) {
        (Some(text), _) => {
            for line in text.lines() {
                out.push_str(&format!("\n{pad}  {line}"));
            }
        }
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
    out
}

fn raw(v: &Json) -> String {
    let c = v.get("content").cloned().unwrap_or(Json::Null);
    let text = c.to_string();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
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
        _ => item(e, depth * 2),
    }
}

fn people(title: &str, list: Option<&Json>) -> String {
    let list = list.and_then(Json::as_array).cloned().unwrap_or_default();
    let mut out = format!("{title} ({})", list.len());
    for p in &list {
        let id = s(p, "id").unwrap_or("?");
        match s(p, "name") {
            Some(name) => out.push_str(&format!("\n  {name}  {id}")),
            None => out.push_str(&format!("\n  {id}")),
        }
    }
    out
}

/// A profile, or the answer of `contacts`.
pub fn profile(v: &Json) -> String {
    let id = s(v, "id").unwrap_or("?");
    let mut out = match s(v, "name") {
        Some(name) => format!("{name}  {id}"),
        None => id.to_string(),
    };
    if let Some(d) = s(v, "description") {
        out.push_str(&format!("\n{d}"));
    }
    if let Some(names) = v.get("names").and_then(Json::as_array)
        && names.len() > 1
    {
        let all: Vec<&str> = names
            .iter()
            .filter_map(|p| p.get(1).and_then(Json::as_str))
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
}
