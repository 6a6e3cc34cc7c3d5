//! Whole screens drawn on ratatui's `TestBackend` from fixture data and
//! compared with the snapshots in `tests/snapshots` (`cargo insta review`
//! after an intended change). Also: every tab and window at every small
//! size draws without panicking, and no control character from a post
//! ever reaches a cell.

use insta::assert_snapshot;
use ratatui::crossterm::event::KeyCode;

use shoal_tui::event::{Event, Note};

use crate::fixture::*;

#[test]
fn draws_timeline() {
    let app = app(100, 30);
    assert_snapshot!("timeline", draw(&app).backend());
}

#[test]
fn timeline_tiny() {
    let mut app = app(40, 10);
    press(&mut app, &timeline(), "j");
    assert_snapshot!("timeline_40x10", draw(&app).backend());
}

#[test]
fn wide_unicode() {
    let posts = wide();
    let mut app = app_with(&posts, 60, 20);
    press(&mut app, &posts, "j");
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("wide_unicode_60x20", t.backend());
}

#[test]
fn hostile_posts_are_drawn_safely() {
    let posts = hostile();
    let app = app_with(&posts, 80, 24);
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("hostile_80x24", t.backend());
}

#[test]
fn draws_thread() {
    let mut app = app(100, 30);
    let posts = timeline();
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_snapshot!("thread", draw(&app).backend());
}

/// A reply with a thread of its own says so; Enter opens that forked
/// thread, which says where it forked from; Enter on its first entry
/// goes back there.
#[test]
fn draws_a_forked_thread_and_moves_between_forks() {
    let mut app = app(100, 30);
    let posts = timeline();
    settle(&mut app, &posts, key(KeyCode::Enter));
    press(&mut app, &posts, "j");
    let opened = settle(&mut app, &posts, key(KeyCode::Enter));
    assert_eq!(app.thread.id, Some(msg("b")), "{opened:?}");
    assert_snapshot!("thread_forked", draw(&app).backend());
    press(&mut app, &posts, "g");
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_eq!(app.thread.id, Some(msg("a")));
}

#[test]
fn draws_messages() {
    let mut app = app(100, 30);
    press(&mut app, &timeline(), "3");
    assert_snapshot!("messages", draw(&app).backend());
    settle(&mut app, &timeline(), key(KeyCode::Enter));
    assert_snapshot!("conversation", draw(&app).backend());
}

#[test]
fn contacts_and_profile() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "5");
    assert_snapshot!("contacts", draw(&app).backend());
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_snapshot!("profile", draw(&app).backend());
}

#[test]
fn contacts_with_rooms() {
    let mut app = app(80, 16);
    let posts = timeline();
    // To Kai, a room's attendant we do not follow.
    press(&mut app, &posts, "5jjjjjjj");
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("contacts_rooms", t.backend());
}

#[test]
fn groups_screen() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "4");
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("groups", t.backend());
    settle(&mut app, &posts, key(KeyCode::Enter));
    press(&mut app, &posts, "j");
    assert_snapshot!("groups_posts", draw(&app).backend());
    press(&mut app, &posts, "x");
    assert_snapshot!("groups_remove_choose", draw(&app).backend());
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_snapshot!("groups_remove_confirm", draw(&app).backend());
}

#[test]
fn groups_tiny() {
    let mut app = app(40, 10);
    let posts = timeline();
    press(&mut app, &posts, "4");
    assert_snapshot!("groups_40x10", draw(&app).backend());
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_snapshot!("groups_posts_40x10", draw(&app).backend());
}

#[test]
fn groups_add_prompt() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "4a");
    press(&mut app, &posts, "@nope");
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_snapshot!("groups_add_refused", draw(&app).backend());
}

#[test]
fn compose_pane() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "c");
    settle(
        &mut app,
        &posts,
        Event::Paste("Hello, harbour!\nA second line, 日本語も。".into()),
    );
    assert_snapshot!("compose", draw(&app).backend());
}

#[test]
fn help_overlay() {
    let mut app = app(100, 30);
    press(&mut app, &timeline(), "?");
    assert_snapshot!("help", draw(&app).backend());
}

#[test]
fn search_results_overlay() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "/harbour chain");
    settle(&mut app, &posts, key(KeyCode::Enter));
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("search_results", t.backend());
}

#[test]
fn raw_json_overlay() {
    let mut app = app(100, 30);
    press(&mut app, &timeline(), "u");
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("raw", t.backend());
}

#[test]
fn quit_asks_when_a_draft_would_be_lost() {
    let mut app = app(80, 24);
    let posts = timeline();
    press(&mut app, &posts, "c");
    settle(&mut app, &posts, Event::Paste("unsent".into()));
    settle(&mut app, &posts, key(KeyCode::Esc));
    press(&mut app, &posts, "q");
    assert_snapshot!("quit_with_draft", draw(&app).backend());
}

#[test]
fn log_view() {
    let mut app = app(80, 12);
    for line in [
        "listening on 127.0.0.1:8008",
        "connected to @abc at 127.0.0.1:40000 (outgoing)",
        "\x1b[31mpeer said\x1b[0m something odd\x07",
    ] {
        shoal_tui::app::update(&mut app, Event::Node(Note::Log(line.into())));
    }
    press(&mut app, &timeline(), "6");
    let t = draw(&app);
    assert_no_controls(&t);
    assert_snapshot!("log", t.backend());
}

/// Every tab, window and pane, at every size from 1x1 to 60x16 and a few
/// large ones: no panic, no control character on screen.
#[test]
fn every_size_draws() {
    let mut posts = timeline();
    posts.extend(hostile());
    posts.extend(wide());
    let setups: &[&str] = &[
        "", "2", "3", "4", "4\n", "4x", "4a", "5", "6", "?", "c", "u", "/fish",
    ];
    let mut apps = Vec::new();
    for keys in setups {
        let mut app = app_with(&posts, 100, 30);
        for c in keys.chars() {
            let k = if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            };
            settle(&mut app, &posts, key(k));
        }
        if *keys == "3" || *keys == "5" {
            settle(&mut app, &posts, key(KeyCode::Enter));
        }
        apps.push(app);
    }
    let sizes = (1..=60)
        .step_by(3)
        .flat_map(|w| (1..=16).map(move |h| (w, h)))
        .chain([(200, 60), (120, 5), (3, 50)]);
    for (w, h) in sizes {
        for app in &mut apps {
            let _ = shoal_tui::app::update(app, Event::Resize(w, h));
            let t = draw(app);
            assert_no_controls(&t);
        }
    }
}

#[test]
fn a_restoring_home_says_so_in_the_status_bar_with_its_progress() {
    let mut app = app(120, 20);
    let mut s = status();
    s.restoring = true;
    s.publishing_held =
        Some("restoring: @peer holds our feed up to 500, we have 120 of it so far".into());
    let _ = shoal_tui::app::update(&mut app, Event::Node(Note::Status(Ok(Box::new(s)))));
    let t = draw(&app);
    let buf = t.backend().buffer();
    let rows: Vec<String> = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect()
        })
        .collect();
    let bar = rows
        .iter()
        .find(|r| r.contains("feeds 4/5"))
        .expect("the status bar");
    assert!(
        bar.contains("⏸ restoring: @peer holds our feed up to 500, we have 120"),
        "{bar}"
    );
}

#[test]
fn a_profile_says_which_feeds_are_the_same_person() {
    let mut app = app(120, 30);
    let posts = timeline();
    press(&mut app, &posts, "5");
    settle(&mut app, &posts, key(KeyCode::Enter));
    let id = app.contacts.person.as_ref().expect("a profile").id.clone();
    let mut p = profile(&id);
    p.devices = vec![shoal::social::Person {
        id: misaki(),
        name: None,
    }];
    p.claimed_devices = vec![shoal::social::Person {
        id: bjorn(),
        name: None,
    }];
    let _ = shoal_tui::app::update(
        &mut app,
        Event::Loaded(shoal_tui::event::Loaded::Profile {
            id: id.clone(),
            result: Ok(Box::new(p)),
            why: None,
        }),
    );
    let t = draw(&app);
    let buf = t.backend().buffer();
    let screen: String = (0..buf.area.height)
        .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
        .map(|(x, y)| buf[(x, y)].symbol().to_string())
        .collect();
    let short = &misaki()[..8];
    assert!(
        screen.contains(&format!("one person with {short}")),
        "{screen}"
    );
    assert!(
        screen.contains("claims 1 device (claimed by one side)"),
        "{screen}"
    );
}

/// A thread with muted replies collapsed to one line each, a note that
/// the thread itself is muted, and an edited reply marked.
#[test]
fn draws_a_thread_with_muted_replies_and_an_edited_one() {
    use shoal_tui::event::Loaded;
    use shoal_tui::model::ThreadEntry;
    let mut app = app(100, 20);
    let posts = timeline();
    settle(&mut app, &posts, key(KeyCode::Enter));
    let mut t = thread();
    t.entries.truncate(2);
    if let ThreadEntry::Message { item, .. } = &mut t.entries[1] {
        item.edited = true;
        item.revisions = 2;
        item.own_thread = 0;
    }
    t.entries.push(ThreadEntry::Muted { depth: 1, count: 3 });
    t.hidden = 0;
    t.muted = 3;
    t.muted_thread = true;
    settle(
        &mut app,
        &posts,
        Event::Loaded(Loaded::Thread {
            id: msg("a"),
            result: Ok(t),
        }),
    );
    let drawn = draw(&app);
    assert_snapshot!("thread_muted", drawn.backend());
}
