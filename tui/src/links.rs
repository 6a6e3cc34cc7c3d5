//! Links in what peers wrote: `ssb:` URIs (as `ssb-uri2` writes them) and
//! sigil ids (`%….sha256`, `@….ed25519`, `&….sha256`), bare or as the
//! target of a markdown link (`[text](ssb:…)`, the mention `[@name](@id)`).
//!
//! [`find`] says where the links of a text are and what each names; the
//! screens draw those ranges as links, and the app follows them. A link
//! ends at whitespace, and closing punctuation at its end (`)`, `.`, `,`,
//! …) is not part of it; anything that does not read as a whole id or URI
//! (a broken one, one with a control character in it) is not a link. The
//! work is linear in the text: at most one URI read per word, each of at
//! most [`MAX_URI`] bytes, and at most [`MAX_LINKS`] links.
//!
//! Pure; imports `shoal::uri` (reading URIs and ids) and `text`, nothing of
//! the UI, the node or I/O.

use std::ops::Range;

use shoal::uri::{self, Uri};

/// The most links found in one text.
pub const MAX_LINKS: usize = 100;

/// The longest `ssb:` URI read, in bytes (an invite with its parameters
/// is a few hundred).
pub const MAX_URI: usize = 2048;

/// The longest markdown link text looked back over, in bytes.
const MAX_LABEL: usize = 200;

/// What a link names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A message (`%….sha256`): opens its thread.
    Message(String),
    /// A feed (`@….ed25519`): opens the profile.
    Feed(String),
    /// A blob (`&….sha256`).
    Blob(String),
    /// A multiserver address (a valid one).
    Address(String),
    /// A pub's invite to redeem (`ssb:experimental?action=consume-invite`),
    /// as its canonical URI.
    Invite(String),
    /// Another experimental action, by name.
    Experimental(String),
}

impl Target {
    /// What kind of link it is, in a word.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Message(_) => "message",
            Target::Feed(_) => "person",
            Target::Blob(_) => "blob",
            Target::Address(_) => "address",
            Target::Invite(_) => "invite",
            Target::Experimental(_) => "action",
        }
    }
}

/// A link found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its bytes in the text: the whole `[text](target)` of a markdown
    /// link, else the id or URI.
    pub range: Range<usize>,
    /// What it names.
    pub target: Target,
    /// The text of a markdown link (`@name` of a mention), as written.
    pub label: Option<String>,
}

/// What an id or `ssb:` URI names, if it is one.
pub fn target(s: &str) -> Option<Target> {
    // A control or bidi character is never part of a link (the URL
    // rules would drop some of them silently).
    let odd =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if s.len() > MAX_URI || s.chars().any(odd) {
        return None;
    }
    let u = if s.starts_with("ssb:") {
        uri::parse(s).ok()?
    } else if s.starts_with(['@', '%', '&']) {
        match uri::of(s).ok()? {
            u @ (Uri::Feed(_) | Uri::Message(_) | Uri::Blob(_)) => u,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(match u {
        Uri::Feed(f) => Target::Feed(f.to_string()),
        Uri::Message(m) => Target::Message(m.to_string()),
        Uri::Blob(_) => Target::Blob(sigil_of_blob(&u)),
        // Only an address that reads as one.
        Uri::Address(a) => Target::Address(uri::parse_address(&a)?),
        Uri::Experimental { ref action, .. } if action == "consume-invite" => {
            Target::Invite(u.to_string())
        }
        Uri::Experimental { action, .. } => Target::Experimental(action),
        _ => return None,
    })
}

/// A blob's sigil (`&….sha256`), from its canonical URI.
fn sigil_of_blob(u: &Uri) -> String {
    let s = u.to_string();
    let data = s.rsplit('/').next().unwrap_or("");
    let standard: String = data
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    format!("&{standard}.sha256")
}

/// Punctuation that ends a sentence or closes a bracket: not part of a
/// link it follows.
fn closing(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '>' | '"' | '\'' | '*' | '…'
    )
}

/// Bytes of a sigil id: sigil, 44 of base64, suffix.
fn sigil_len(sigil: u8) -> usize {
    match sigil {
        b'@' => 1 + 44 + ".ed25519".len(),
        _ => 1 + 44 + ".sha256".len(),
    }
}

/// The links of `text`, in order, at most [`MAX_LINKS`].
pub fn find(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut at = 0;
    for word in text.split(char::is_whitespace) {
        let start = at;
        at += word.len()
            + text[start + word.len()..]
                .chars()
                .next()
                .map_or(0, char::len_utf8);
        if !word.is_empty() {
            in_word(text, start, start + word.len(), &mut out);
        }
        if out.len() >= MAX_LINKS {
            out.truncate(MAX_LINKS);
            break;
        }
    }
    out
}

/// The links of the word `text[start..end]` (no whitespace in it), added to
/// `out`.
fn in_word(text: &str, start: usize, end: usize, out: &mut Vec<Link>) {
    let bytes = text.as_bytes();
    // Where a bare URI in this word ends: closing punctuation left out.
    let word_end = start + text[start..end].trim_end_matches(closing).len();
    let mut uri_read = false;
    // The next `)` at or after where a markdown target starts (`end` when
    // there is none): each byte is searched once.
    let mut next_close = start;
    let mut i = start;
    while i < end && out.len() < MAX_LINKS {
        let rest = &text[i..end];
        if rest.starts_with("](") {
            let from = i + 2;
            if next_close < from {
                next_close = bytes[from..end]
                    .iter()
                    .position(|&b| b == b')')
                    .map_or(end, |k| from + k);
            }
            i = markdown(text, i, next_close, out).unwrap_or(from);
        } else if rest.starts_with("ssb:")
            && !uri_read
            && (i == start || !bytes[i - 1].is_ascii_alphanumeric())
        {
            // One URI read per word: up to its end, or to a markdown
            // target that follows in the same word.
            uri_read = true;
            let stop = text[i..word_end]
                .find("](")
                .map_or(word_end, |k| i + k)
                .max(i);
            let stop = i + text[i..stop].trim_end_matches(closing).len();
            match target(&text[i..stop]) {
                Some(t) => {
                    out.push(Link {
                        range: i..stop,
                        target: t,
                        label: None,
                    });
                    i = stop;
                }
                None => i += 4,
            }
        } else if matches!(bytes[i], b'@' | b'%' | b'&') {
            let n = sigil_len(bytes[i]);
            let suffix = if bytes[i] == b'@' {
                ".ed25519"
            } else {
                ".sha256"
            };
            // Whole: what follows it cannot continue it.
            let whole = |_: &&str| {
                text[i + n..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '+' | '/' | '=')))
            };
            let id = text
                .get(i..i + n)
                .filter(|id| i + n <= end && id.ends_with(suffix))
                .filter(whole);
            match id.and_then(target) {
                Some(t) => {
                    out.push(Link {
                        range: i..i + n,
                        target: t,
                        label: None,
                    });
                    i += n;
                }
                None => i += 1,
            }
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
}

/// A markdown link whose `](` is at `i` and whose target ends at the `)`
/// at `close` (the end of the word when there is none): its text goes
/// back to the `[` (on the same line). Adds it to `out` (in place of links
/// found inside its text) and answers where to go on, or `None` when it is
/// not a link.
fn markdown(text: &str, i: usize, close: usize, out: &mut Vec<Link>) -> Option<usize> {
    let from = i + 2;
    if text.as_bytes().get(close) != Some(&b')') {
        return None;
    }
    let target = target(&text[from..close])?;
    let mut back = i.saturating_sub(MAX_LABEL);
    while !text.is_char_boundary(back) {
        back += 1;
    }
    let open = text[back..i]
        .rfind(['[', ']', '\n'])
        .map(|k| back + k)
        .filter(|&k| text.as_bytes()[k] == b'[');
    let (range, label) = match open {
        Some(o) => (o..close + 1, Some(text[o + 1..i].to_string())),
        None => (from..close, None),
    };
    // Links inside the link's text are part of it.
    while out.last().is_some_and(|l| l.range.end > range.start) {
        out.pop();
    }
    out.push(Link {
        range,
        target,
        label,
    });
    Some(close + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "@+oaWWDs8g73EZFUMfW37R/ULtFEjwKN/DczvdYihjbU=.ed25519";
    const FEED_URI: &str = "ssb:feed/classic/-oaWWDs8g73EZFUMfW37R_ULtFEjwKN_DczvdYihjbU=";
    const MSG: &str = "%g3hPVPDEO1Aj/uPl0+J2NlhFB2bbFLIHlty+YuqFZ3w=.sha256";
    const MSG_URI: &str = "ssb:message/classic/g3hPVPDEO1Aj_uPl0-J2NlhFB2bbFLIHlty-YuqFZ3w=";
    const BLOB: &str = "&sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n/OJGSC1U=.sha256";
    const BLOB_URI: &str = "ssb:blob/classic/sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n_OJGSC1U=";
    const ADDR_URI: &str = "ssb:address/multiserver?multiserverAddress=net%3Awx.larpa.net%3A8008~shs%3ADTNmX%2B4SjsgZ7xyDh5xxmNtFqa6pWi5Qtw7cE8aR9TQ%3D";
    const INVITE: &str =
        "ssb:experimental?action=consume-invite&invite=net%3Ahost%3A8008~shs%3Ak%3As";

    /// The text of each link found, with what it names.
    fn found(text: &str) -> Vec<(&str, Target)> {
        find(text)
            .into_iter()
            .map(|l| (&text[l.range], l.target))
            .collect()
    }

    fn msg() -> Target {
        Target::Message(MSG.into())
    }

    fn feed() -> Target {
        Target::Feed(FEED.into())
    }

    #[test]
    fn uris_and_sigils_of_every_kind() {
        assert_eq!(found(MSG_URI), vec![(MSG_URI, msg())]);
        assert_eq!(found(MSG), vec![(MSG, msg())]);
        assert_eq!(found(FEED_URI), vec![(FEED_URI, feed())]);
        assert_eq!(found(FEED), vec![(FEED, feed())]);
        assert_eq!(
            found(&format!("{BLOB} and {BLOB_URI}")),
            vec![
                (BLOB, Target::Blob(BLOB.into())),
                (BLOB_URI, Target::Blob(BLOB.into()))
            ]
        );
        assert_eq!(
            found(ADDR_URI),
            vec![(
                ADDR_URI,
                Target::Address(
                    "net:wx.larpa.net:8008~shs:DTNmX+4SjsgZ7xyDh5xxmNtFqa6pWi5Qtw7cE8aR9TQ=".into()
                )
            )]
        );
        assert_eq!(found(INVITE), vec![(INVITE, Target::Invite(INVITE.into()))]);
        let other = "ssb:experimental?action=claim-http-invite&invite=x";
        assert_eq!(
            found(other),
            vec![(other, Target::Experimental("claim-http-invite".into()))]
        );
        // The other spellings ssb-uri2 reads.
        let spelled = "ssb:message:sha256:g3hPVPDEO1Aj_uPl0-J2NlhFB2bbFLIHlty-YuqFZ3w=";
        assert_eq!(found(spelled), vec![(spelled, msg())]);
    }

    #[test]
    fn a_link_ends_at_whitespace_and_closing_punctuation() {
        let text = format!("see {MSG_URI}. Or ({FEED}), or {MSG}, \"{FEED_URI}\"!\n{MSG}?");
        assert_eq!(
            found(&text),
            vec![
                (MSG_URI, msg()),
                (FEED, feed()),
                (MSG, msg()),
                (FEED_URI, feed()),
                (MSG, msg()),
            ]
        );
        // Ranges are bytes of the text, after multi-byte characters too.
        let text = format!("日本 {FEED}…");
        let l = &find(&text)[0];
        assert_eq!(&text[l.range.clone()], FEED);
    }

    #[test]
    fn markdown_links_and_mentions() {
        let text = format!("hi [@Ada Lovelace]({FEED}) and [this thread]({MSG_URI}).");
        let links = find(&text);
        assert_eq!(links.len(), 2, "{links:?}");
        assert_eq!(
            &text[links[0].range.clone()],
            format!("[@Ada Lovelace]({FEED})")
        );
        assert_eq!(links[0].target, feed());
        assert_eq!(links[0].label.as_deref(), Some("@Ada Lovelace"));
        assert_eq!(
            &text[links[1].range.clone()],
            format!("[this thread]({MSG_URI})")
        );
        assert_eq!(links[1].target, msg());
        // A link inside the text of a markdown link is the same link.
        let text = format!("[{MSG}]({MSG})");
        let links = find(&text);
        assert_eq!(links.len(), 1, "{links:?}");
        assert_eq!(links[0].range, 0..text.len());
        // Without its `[`, the target alone.
        let text = format!("broken]({FEED})");
        assert_eq!(found(&text), vec![(FEED, feed())]);
        // A markdown link to something else is no link.
        assert_eq!(found("[site](https://example.com)"), vec![]);
    }

    #[test]
    fn malformed_links_are_not_links() {
        let short = &MSG[..MSG.len() - 3];
        let bad_b64 = MSG.replace('g', "!");
        let long = format!("{FEED}x");
        let control = MSG_URI.replace("uPl0", "uP\u{2400}0");
        let bidi = FEED_URI.replace("EZFU", "E\u{fffd}FU");
        for bad in [
            short,
            &bad_b64,
            &long,
            &control,
            &bidi,
            "ssb:",
            "ssb:message/classic/",
            "ssb:feed/bendybutt-v1/APaWWDs8g73EZFUMfW37RBULtFEjwKNbDczvdYiRXtA=",
            "xssb:message/classic/g3hPVPDEO1Aj_uPl0-J2NlhFB2bbFLIHlty-YuqFZ3w=",
            "ssb:address/multiserver?multiserverAddress=%1B%5B2J",
            "mail@example.com 100% & more",
            "[x]() [](@) ](",
        ] {
            assert_eq!(found(bad), vec![], "{bad}");
        }
        // Nor, in text not cleaned, one with a control character at its end
        // (which the URL rules would drop) or a bidi override in it.
        let (a, b) = FEED_URI.split_at(20);
        for bad in [format!("{MSG_URI}\x1b"), format!("{a}\u{202e}{b}")] {
            assert_eq!(found(&bad), vec![], "{bad}");
        }
    }

    #[test]
    fn hostile_text_is_bounded() {
        // Thousands of links: the first MAX_LINKS.
        let many = format!("{MSG} ").repeat(5000);
        let links = find(&many);
        assert_eq!(links.len(), MAX_LINKS);
        assert!(links.iter().all(|l| l.target == msg()));
        // A 100 KB word, of URI starts or of sigils run together, and one
        // huge markdown target.
        let huge = format!("ssb:message/classic/{}", "A".repeat(100_000));
        assert_eq!(found(&huge), vec![]);
        let starts = "ssb:".repeat(25_000);
        assert_eq!(found(&starts), vec![]);
        let sigils = "%@&".repeat(35_000);
        assert_eq!(found(&sigils), vec![]);
        let target = format!("[x]({}", "@".repeat(100_000));
        assert_eq!(found(&target), vec![]);
        let brackets = "](".repeat(50_000);
        assert_eq!(found(&brackets), vec![]);
        let glued = MSG.repeat(2000);
        assert_eq!(find(&glued).len(), MAX_LINKS);
    }
}
