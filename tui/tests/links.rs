//! Links in posts: drawn as links, followed with `L` (a message link opens
//! its thread, a feed link the profile, several links a choice, any other
//! link a word on what it is), and hostile text full of links drawn safely
//! and quickly.

use std::time::{Duration, Instant};

use insta::assert_snapshot;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::Modifier;

use shoal::uri;
use shoal_tui::app::{Overlay, update};
use shoal_tui::event::{Effect, Event, Loaded, Openable};
use shoal_tui::links::{MAX_LINKS, Target};
use shoal_tui::model::{Post, ThreadEntry, ThreadView};
use shoal_tui::screens::Tab;

use crate::fixture::*;

/// The `ssb:` URI of an id.
fn link(id: &str) -> String {
    uri::of(id).expect("an id").to_string()
}

/// A post linking to the thread of "a" and mentioning Ada, first in the
/// timeline.
fn with_links(text: &str) -> Vec<Post> {
    let mut posts = vec![post("links", &bjorn(), 60_000, 30, text)];
    posts.extend(timeline());
    posts
}

#[test]
fn a_message_link_opens_its_thread() {
    let posts = with_links(&format!("the thread: {}.", link(&msg("a"))));
    let mut app = app_with(&posts, 100, 30);
    let effects = update(&mut app, key(KeyCode::Char('L')));
    assert_eq!(app.tab, Tab::Thread);
    assert!(
        effects.contains(&Effect::LoadThread(msg("a"))),
        "{effects:?}"
    );
    for e in effects {
        if let Some(ev) = answer(&posts, &e) {
            settle(&mut app, &posts, ev);
        }
    }
    assert_eq!(app.thread.selected().map(|p| p.key.clone()), Some(msg("a")));
    // Back goes where the link was followed from.
    settle(&mut app, &posts, key(KeyCode::Char('h')));
    assert_eq!(app.tab, Tab::Timeline);
    // A sigil id is a link too.
    let posts = with_links(&format!("(see {})", msg("b")));
    let mut app = app_with(&posts, 100, 30);
    let effects = update(&mut app, key(KeyCode::Char('L')));
    assert_eq!(app.tab, Tab::Thread);
    assert!(effects.contains(&Effect::LoadThread(msg("b"))));
}

#[test]
fn a_feed_link_opens_the_profile() {
    // A mention, as Scuttlebutt apps write them.
    let posts = with_links(&format!("thanks [@Ada]({})!", ada()));
    let mut app = app_with(&posts, 100, 30);
    let effects = settle(&mut app, &posts, key(KeyCode::Char('L')));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(app.tab, Tab::Contacts);
    assert_eq!(
        app.contacts.person.as_ref().map(|v| v.id.clone()),
        Some(ada())
    );
    assert_snapshot!("link_to_profile", draw(&app).backend());
    // Back goes to the timeline.
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert_eq!(app.tab, Tab::Timeline);
    // The URI spelling.
    let posts = with_links(&link(&ada()));
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "L");
    assert_eq!(
        app.contacts.person.as_ref().map(|v| v.id.clone()),
        Some(ada())
    );
}

#[test]
fn several_links_offer_a_choice() {
    let text = format!(
        "[@Ada]({}) wrote {}; again: {}",
        ada(),
        link(&msg("a")),
        msg("a")
    );
    let posts = with_links(&text);
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "L");
    let Some(Overlay::Links { links, selected: 0 }) = &app.overlay else {
        panic!("no choice: {:?}", app.overlay)
    };
    // The same link twice is listed once.
    let targets: Vec<&Target> = links.iter().map(|(t, _)| t).collect();
    assert_eq!(
        targets,
        [&Target::Feed(ada()), &Target::Message(msg("a"))],
        "{links:?}"
    );
    assert_snapshot!("links_choose", draw(&app).backend());
    // Esc cancels; the choice again, down to the message, Enter follows it.
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert_eq!((app.overlay.is_none(), app.tab), (true, Tab::Timeline));
    press(&mut app, &posts, "Lj");
    let effects = update(&mut app, key(KeyCode::Enter));
    assert!(app.overlay.is_none());
    assert_eq!(app.tab, Tab::Thread);
    assert!(effects.contains(&Effect::LoadThread(msg("a"))));
}

#[test]
fn other_links_say_what_they_are() {
    let blob = "&sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n/OJGSC1U=.sha256";
    let invite = "ssb:experimental?action=consume-invite&invite=net%3Ahost%3A8008~shs%3Ak%3As";
    let address = "net:wx.larpa.net:8008~shs:DTNmX+4SjsgZ7xyDh5xxmNtFqa6pWi5Qtw7cE8aR9TQ=";
    let cases = [
        // A blob goes to the system opener.
        (
            blob.to_string(),
            "opening the blob",
            vec![Effect::Open(Openable::Blob(blob.into()))],
        ),
        (
            invite.to_string(),
            "an invite, copied: redeem it with `shoal invite accept`",
            vec![Effect::Copy(invite.to_string())],
        ),
        (
            uri::of(address).expect("an address").to_string(),
            "a peer's address, copied",
            vec![Effect::Copy(address.to_string())],
        ),
        (
            "ssb:experimental?action=claim-http-invite&invite=x".into(),
            "not supported here",
            vec![],
        ),
        (
            "no links here, not even ssb:nothing".into(),
            "no links",
            vec![],
        ),
    ];
    for (text, says, expected) in cases {
        let posts = with_links(&text);
        let mut app = app_with(&posts, 100, 30);
        let effects = press(&mut app, &posts, "L");
        assert_eq!(app.tab, Tab::Timeline, "{text}");
        let notice = app
            .notice
            .as_ref()
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        assert!(notice.contains(says), "{text}: {notice}");
        assert_eq!(effects, expected, "{text}");
    }
    // No message selected: says so.
    let mut app = app_with(&[], 100, 30);
    press(&mut app, &[], "L");
    assert!(app.notice.is_some());
}

/// The cells of the screen row showing `text`, from where it starts.
fn cells_of(
    t: &ratatui::Terminal<ratatui::backend::TestBackend>,
    text: &str,
) -> Vec<ratatui::buffer::Cell> {
    let buf = t.backend().buffer();
    let width = buf.area.width as usize;
    for row in buf.content().chunks(width) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        if let Some(at) = line.find(text) {
            let col = line[..at].chars().count();
            return row[col..col + text.chars().count()].to_vec();
        }
    }
    panic!("{text:?} is not on screen")
}

#[test]
fn links_are_drawn_as_links() {
    let feed = ada();
    let posts = with_links(&format!("hi [@Ada]({feed}) and {}", msg("a")));
    let mut app = app_with(&posts, 160, 30);
    let underlined = |cells: &[ratatui::buffer::Cell]| {
        cells
            .iter()
            .all(|c| c.modifier.contains(Modifier::UNDERLINED))
    };
    let t = draw(&app);
    // A mention is drawn as the name we know.
    assert!(underlined(&cells_of(&t, "@Ada")));
    assert!(!format!("{:?}", t.backend()).contains(&feed));
    assert!(underlined(&cells_of(&t, &msg("a")[..20])));
    assert!(
        !cells_of(&t, "hi ")[0]
            .modifier
            .contains(Modifier::UNDERLINED)
    );
    assert!(
        !cells_of(&t, " and ")[0]
            .modifier
            .contains(Modifier::UNDERLINED)
    );
    // A post in full (thread, conversation) too, and a link broken over
    // lines is a link on each.
    let url = link(&msg("a"));
    let p = post(
        "long",
        &ada(),
        0,
        1,
        &format!("a link broken over lines: {url}"),
    );
    let lines = shoal_tui::screens::full(&p, &app.ctx(), 30, 0, false);
    let linked: String = lines
        .iter()
        .flat_map(|l| &l.spans)
        .filter(|s| s.style.add_modifier.contains(Modifier::UNDERLINED))
        .map(|s| s.content.as_ref())
        .collect();
    assert_eq!(linked, url);
    assert!(lines.len() > 4, "{lines:?}");
    let _ = update(&mut app, Event::Resize(40, 10));
    assert!(underlined(&cells_of(&draw(&app), "@Ada")));
}

/// Posts full of links that try to slow the screen down or break it.
fn hostile_links() -> Vec<Post> {
    let many: String = (0..3000)
        .map(|i| {
            format!(
                "{} [@x{i}]({}) ",
                msg(&format!("m{i}")),
                feed((i % 200) as u8)
            )
        })
        .collect();
    let huge = format!("ssb:message/classic/{}", "A".repeat(100_000));
    let starts = format!("{}{}", "ssb:".repeat(25_000), "](".repeat(25_000));
    let control = format!(
        "{} {} {}\u{2066}",
        link(&msg("a")).replace("classic/", "classic/\x1b[31m"),
        link(&ada()).replace("feed", "fe\u{202e}ed"),
        msg("a"),
    );
    vec![
        post("many", &ada(), 60_000, 33, &many),
        post("huge", &bjorn(), 120_000, 32, &huge),
        post("starts", &misaki(), 180_000, 31, &starts),
        post("control", &troll(), 240_000, 30, &control),
    ]
}

#[test]
fn hostile_links_neither_panic_nor_stall() {
    let posts = hostile_links();
    let mut app = app_with(&posts, 100, 30);
    // Their thread: every one of them drawn in full.
    let opened = update(&mut app, key(KeyCode::Enter));
    assert!(opened.contains(&Effect::LoadThread(msg("many"))));
    let entries = posts
        .iter()
        .map(|p| ThreadEntry::Message {
            depth: 1,
            item: Box::new(p.clone()),
        })
        .collect();
    let view = ThreadView {
        root: msg("many"),
        entries,
        ..ThreadView::default()
    };
    update(
        &mut app,
        Event::Loaded(Loaded::Thread {
            id: msg("many"),
            result: Ok(view),
        }),
    );
    assert_eq!(app.thread.view.as_ref().map(|v| v.entries.len()), Some(4));
    let started = Instant::now();
    let mut frames = 0;
    for keys in ["", "j", "j", "j", "G", "h", "", "j", "j", "j"] {
        for c in keys.chars() {
            settle(&mut app, &posts, key(KeyCode::Char(c)));
        }
        for size in [(100, 30), (40, 10), (200, 60), (7, 5)] {
            let _ = update(&mut app, Event::Resize(size.0, size.1));
            let t = draw(&app);
            assert_no_controls(&t);
            frames += 1;
        }
    }
    // Generous for a debug build on a slow machine: what is checked is that
    // no frame does work in the size of the text (it would take minutes).
    let per_frame = started.elapsed() / frames;
    assert!(
        per_frame < Duration::from_millis(500),
        "{per_frame:?} a frame"
    );
    // The post of thousands of links: a choice of at most MAX_LINKS.
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "L");
    let Some(Overlay::Links { links, .. }) = &app.overlay else {
        panic!("no choice: {:?}", app.overlay)
    };
    assert!(
        links.len() > 1 && links.len() <= MAX_LINKS,
        "{}",
        links.len()
    );
    let t = draw(&app);
    assert_no_controls(&t);
    // The links with a control or bidi character in them are no links;
    // the sigil before a bidi isolate is one.
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "jjjL");
    assert_eq!(app.tab, Tab::Thread, "{:?}", app.notice);
    // Nothing to follow in the huge word.
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "jL");
    assert_eq!(app.tab, Tab::Timeline);
}
