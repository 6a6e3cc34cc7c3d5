//! Posts drawn as their authors wrote them: markdown laid out in cards and
//! in full (emphasis, code, links and mentions, lists, quotes, headings,
//! rules), its links still followed with `L`, and hostile markdown
//! (thousands of nesting levels, a 100 KB code block, escape sequences in
//! entities, code and link texts) drawn safely and quickly.

use std::time::{Duration, Instant};

use insta::assert_snapshot;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::{Color, Modifier};

use shoal::uri;
use shoal_tui::app::{App, Overlay, update};
use shoal_tui::event::{Effect, Event, Loaded};
use shoal_tui::links::Target;
use shoal_tui::model::{Post, ThreadEntry, ThreadView};

use crate::fixture::*;

/// A blob id (the sigil form).
pub const BLOB: &str = "&sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n/OJGSC1U=.sha256";

/// A post with every construct.
fn every_construct() -> String {
    format!(
        "# A heading\n\n\
         Some *emphasis*, **strong**, `inline code` and ~~struck~~ text,\n\
         a [link to a thread]({}) and a mention of [@someone]({}).\n\n\
         - first item\n\
         - second item\n  1. numbered\n  2. and another\n\n\
         > a quote\n> over two lines\n\n\
         ---\n\n\
         ```\nfn main() {{ println!(\"hi\"); }}\n```\n\n\
         <b>raw html</b> &amp; an entity",
        uri::of(&msg("a")).expect("uri"),
        ada(),
    )
}

/// The client with `posts` in the timeline and their thread open (the
/// first the root, the rest replies to it); answers the effects of the
/// thread's load.
pub fn thread_of(posts: &[Post], width: u16, height: u16) -> (App, Vec<Effect>) {
    let mut app = app_with(posts, width, height);
    update(&mut app, key(KeyCode::Enter));
    let entries = posts
        .iter()
        .enumerate()
        .map(|(i, p)| ThreadEntry::Message {
            depth: i.min(1),
            item: Box::new(p.clone()),
        })
        .collect();
    let view = ThreadView {
        root: posts[0].key.clone(),
        entries,
        ..ThreadView::default()
    };
    let effects = update(
        &mut app,
        Event::Loaded(Loaded::Thread {
            id: posts[0].key.clone(),
            result: Ok(view),
        }),
    );
    (app, effects)
}

/// The first cell whose row shows `text`, from where it starts.
fn cell_of(
    t: &ratatui::Terminal<ratatui::backend::TestBackend>,
    text: &str,
) -> ratatui::buffer::Cell {
    let buf = t.backend().buffer();
    let width = buf.area.width as usize;
    for row in buf.content().chunks(width) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        if let Some(at) = line.find(text) {
            return row[line[..at].chars().count()].clone();
        }
    }
    panic!("{text:?} is not on screen")
}

#[test]
fn every_construct_in_full_and_on_a_card() {
    let posts = vec![post("md", &bjorn(), 60_000, 40, &every_construct())];
    let app = app_with(&posts, 80, 12);
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("markdown_card", t.backend());
    let (app, _) = thread_of(&posts, 80, 40);
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("markdown_thread", t.backend());
    // The looks: emphasis, strong, code, links, structure.
    assert!(cell_of(&t, "emphasis").modifier.contains(Modifier::ITALIC));
    assert!(cell_of(&t, "strong").modifier.contains(Modifier::BOLD));
    assert!(cell_of(&t, "A heading").modifier.contains(Modifier::BOLD));
    assert!(
        cell_of(&t, "struck")
            .modifier
            .contains(Modifier::CROSSED_OUT)
    );
    assert_eq!(cell_of(&t, "inline code").fg, Color::Green);
    assert_eq!(cell_of(&t, "fn main()").fg, Color::Green);
    assert!(
        cell_of(&t, "link to a thread")
            .modifier
            .contains(Modifier::UNDERLINED)
    );
    // The mention is drawn as the name we know.
    assert!(cell_of(&t, "@Ada").modifier.contains(Modifier::UNDERLINED));
    assert_eq!(cell_of(&t, "│ a quote").fg, Color::DarkGray);
}

#[test]
fn markdown_links_are_followed_with_l() {
    let text = format!(
        "read [the thread]({}), thanks [@someone]({}), ![a cat]({BLOB}) and <{}>",
        uri::of(&msg("a")).expect("uri"),
        ada(),
        uri::of(&msg("b")).expect("uri"),
    );
    let mut posts = vec![post("links", &bjorn(), 60_000, 40, &text)];
    posts.extend(timeline());
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "L");
    let Some(Overlay::Links { links, .. }) = &app.overlay else {
        panic!("no choice: {:?}", app.overlay)
    };
    let targets: Vec<&Target> = links.iter().map(|(t, _)| t).collect();
    assert_eq!(
        targets,
        [
            &Target::Message(msg("a")),
            &Target::Feed(ada()),
            &Target::Blob(BLOB.into()),
            &Target::Message(msg("b")),
        ]
    );
    let shown: Vec<&str> = links.iter().map(|(_, s)| s.as_str()).collect();
    assert!(
        shown[0].contains("the thread") && shown[2].contains("a cat"),
        "{shown:?}"
    );
    // The second one, the mention: its profile.
    press(&mut app, &posts, "j");
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_eq!(
        app.contacts.person.as_ref().map(|v| v.id.clone()),
        Some(ada())
    );
}

/// Markdown made to be slow or to break the screen.
fn hostile_markdown() -> Vec<Post> {
    let quotes = format!("{} deep", ">".repeat(5000));
    let lists: String = (0..3000)
        .map(|i| format!("{}- x\n", " ".repeat(i * 2)))
        .collect();
    let mixed = "> - ".repeat(3000) + "x";
    let code = format!(
        "```\n{}\n```",
        "\x1b[31mred\x1b]0;title\x07 ".repeat(10_000)
    );
    let sneaky = format!(
        "&#27;[2J &#x9b;31m [&#27;]0;x&#7;]({}) ![&#x202e;evil]({BLOB}) `\u{1b}[1m` [@\u{1b}[5m](@{})",
        uri::of(&msg("a")).expect("uri"),
        &ada()[1..],
    );
    vec![
        post("quotes", &ada(), 60_000, 40, &quotes),
        post("lists", &bjorn(), 120_000, 39, &lists),
        post("mixed", &misaki(), 180_000, 38, &mixed),
        post("code", &troll(), 240_000, 37, &code),
        post("sneaky", &troll(), 300_000, 36, &sneaky),
    ]
}

#[test]
fn hostile_markdown_is_drawn_safely_and_quickly() {
    let posts = hostile_markdown();
    assert!(posts[3].text.as_ref().unwrap().len() > 100_000);
    let started = Instant::now();
    let mut frames = 0;
    let mut app = app_with(&posts, 100, 30);
    for size in [(100, 30), (40, 10), (200, 60), (7, 5)] {
        update(&mut app, Event::Resize(size.0, size.1));
        assert_no_controls(&draw(&app));
        frames += 1;
    }
    let (mut app, _) = thread_of(&posts, 100, 30);
    for keys in ["", "j", "j", "j", "j", "G", "g"] {
        for c in keys.chars() {
            settle(&mut app, &posts, key(KeyCode::Char(c)));
        }
        for size in [(100, 30), (40, 10), (200, 60), (7, 5)] {
            update(&mut app, Event::Resize(size.0, size.1));
            let t = draw(&app);
            assert_no_controls(&t);
            frames += 1;
        }
    }
    let per_frame = started.elapsed() / frames;
    assert!(
        per_frame < Duration::from_millis(500),
        "{per_frame:?} a frame"
    );
    // Every line of a post in full is bounded.
    for p in &posts {
        let h = shoal_tui::screens::full_height(p, &app.ctx(), 100, 0, true);
        assert!(h <= 2 + shoal_tui::text::MAX_SHOWN_LINES, "{h}");
    }
    // The links of the sneaky post: the message link is one; the feed
    // link with an escape in its text is one too, its text made safe.
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "jjjjL");
    let t = draw(&app);
    assert_no_controls(&t);
}
