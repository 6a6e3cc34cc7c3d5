//! The pure core: `update(state, event)` driven by key presses and loaded
//! data, checked by the state it leaves and the effects it asks for.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use shoal_tui::app::{App, Confirmed, Overlay, update};
use shoal_tui::compose::Target;
use shoal_tui::event::{Effect, Event, Loaded, Note, Page};
use shoal_tui::model::PostView as _;
use shoal_tui::model::{Post, Publish};
use shoal_tui::screens::{PAGE, Tab};

use crate::fixture::*;

/// A timeline longer than one page.
fn long_timeline() -> Vec<Post> {
    (0..(PAGE as u64 * 2 + 7))
        .map(|i| {
            post(
                &format!("long{i}"),
                &ada(),
                i * 1000,
                1000 - i,
                &format!("post {i}"),
            )
        })
        .collect()
}

#[test]
fn start_loads_the_timeline_contacts_and_inbox() {
    let mut app = App::new(&me(), NOW, (100, 30));
    let first = Page {
        before: None,
        limit: PAGE,
    };
    assert_eq!(
        app.start(),
        vec![
            Effect::LoadTimeline(first),
            Effect::LoadProfile(me()),
            Effect::LoadInbox(first),
        ]
    );
}

#[test]
fn the_timeline_pages_with_the_cursor_as_the_selection_nears_the_end() {
    let posts = long_timeline();
    let mut app = app_with(&posts, 100, 30);
    assert_eq!(app.timeline.list.posts.len(), PAGE);
    // Down to 10 from the end of the first page: the next page is asked
    // for, strictly older than the last post held.
    let mut asked = Vec::new();
    for _ in 0..PAGE - 10 {
        asked.extend(update(&mut app, key(KeyCode::Char('j'))));
    }
    let last = posts[PAGE - 1].cursor();
    assert!(
        asked.contains(&Effect::LoadTimeline(Page {
            before: Some(last),
            limit: PAGE,
        })),
        "{asked:?}"
    );
    // Once answered, G goes to the end of what is loaded, and the last
    // page comes too.
    for e in asked {
        if let Some(ev) = answer(&posts, &e) {
            settle(&mut app, &posts, ev);
        }
    }
    settle(&mut app, &posts, key(KeyCode::Char('G')));
    settle(&mut app, &posts, key(KeyCode::Char('G')));
    assert_eq!(app.timeline.list.posts.len(), posts.len());
    assert!(app.timeline.list.exhausted);
    assert_eq!(app.timeline.nav.selected, posts.len() - 1);
    // The selection is in view: its card's rows are within the list rows.
    let rows = app.body().height as usize - 1;
    let top = app.timeline.nav.selected * 3;
    assert!(top >= app.timeline.nav.offset && top + 3 <= app.timeline.nav.offset + rows);
    settle(&mut app, &posts, key(KeyCode::Char('g')));
    assert_eq!((app.timeline.nav.selected, app.timeline.nav.offset), (0, 0));
}

#[test]
fn half_pages() {
    let posts = long_timeline();
    let mut app = app_with(&posts, 100, 30);
    settle(&mut app, &posts, ctrl('d'));
    // 26 list rows hold 8 cards: half a page is 4.
    assert_eq!(app.timeline.nav.selected, 4);
    settle(&mut app, &posts, ctrl('u'));
    assert_eq!(app.timeline.nav.selected, 0);
}

#[test]
fn open_a_thread_and_go_back() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "j");
    let effects = update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.tab, Tab::Thread);
    assert!(
        effects.contains(&Effect::LoadThread(msg("b"))),
        "{effects:?}"
    );
    for e in effects {
        if let Some(ev) = answer(&posts, &e) {
            settle(&mut app, &posts, ev);
        }
    }
    // The message it was opened on is selected in its thread.
    assert_eq!(app.thread.selected().map(|p| p.key.clone()), Some(msg("b")));
    settle(&mut app, &posts, key(KeyCode::Char('h')));
    assert_eq!(app.tab, Tab::Timeline);
    assert_eq!(app.timeline.nav.selected, 1, "the timeline kept its place");
    // Esc goes back too.
    settle(&mut app, &posts, key(KeyCode::Char('o')));
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert_eq!(app.tab, Tab::Timeline);
}

#[test]
fn tabs_by_number_and_brackets() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "3");
    assert_eq!(app.tab, Tab::Messages);
    press(&mut app, &posts, "]");
    assert_eq!(app.tab, Tab::Groups);
    press(&mut app, &posts, "]");
    assert_eq!(app.tab, Tab::Contacts);
    press(&mut app, &posts, "]]");
    assert_eq!(app.tab, Tab::Timeline);
    press(&mut app, &posts, "[");
    assert_eq!(app.tab, Tab::Log);
    press(&mut app, &posts, "[[");
    assert_eq!(app.tab, Tab::Groups);
    press(&mut app, &posts, "1");
    // The groups load the first time their tab is shown, not again.
    assert_eq!(update(&mut app, key(KeyCode::Char('4'))), Vec::new());
    assert_eq!(app.tab, Tab::Groups);
}

#[test]
fn compose_send_and_the_draft_kept_until_published() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "c");
    assert!(app.compose.is_some());
    // Command letters are text in the editor.
    let effects = press(&mut app, &posts, "hi qj");
    assert!(effects.is_empty());
    assert!(!app.quit);
    settle(&mut app, &posts, key(KeyCode::Enter));
    press(&mut app, &posts, "x");
    let effects = update(&mut app, ctrl('s'));
    let draft = Some((Target::Post, "hi qj\nx".to_string()));
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::Post {
                text: "hi qj\nx".into(),
                attach: Vec::new(),
            },
            draft: draft.clone(),
        }]
    );
    assert!(app.compose.is_none());
    assert!(app.has_drafts(), "kept until the node says it is published");
    let after = update(
        &mut app,
        Event::Loaded(Loaded::Published {
            what: Publish::Post {
                text: "hi qj\nx".into(),
                attach: Vec::new(),
            },
            draft,
            result: Ok(msg("new")),
        }),
    );
    assert!(!app.has_drafts());
    assert!(
        after
            .iter()
            .any(|e| matches!(e, Effect::LoadTimeline(p) if p.before.is_none())),
        "the timeline reloads: {after:?}"
    );
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|(_, n)| n.starts_with("posted"))
    );
}

#[test]
fn a_failed_publish_keeps_the_draft_and_shows_the_error() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "c");
    press(&mut app, &posts, "lost?");
    let effects = update(&mut app, ctrl('s'));
    let Some(Effect::Publish { what, draft }) = effects.into_iter().next() else {
        panic!("no publish");
    };
    update(
        &mut app,
        Event::Loaded(Loaded::Published {
            what,
            draft,
            result: Err("database error: disk full".into()),
        }),
    );
    assert!(app.has_drafts());
    let (_, err) = app.status.error.clone().expect("an error shown");
    assert!(err.contains("disk full"), "{err}");
    // Composing again brings the draft back.
    press(&mut app, &posts, "c");
    assert_eq!(app.compose.as_ref().unwrap().editor.text(), "lost?");
}

#[test]
fn esc_keeps_the_draft_and_q_asks_only_then() {
    let mut app = app(100, 30);
    let posts = timeline();
    // No draft: q quits at once.
    let mut quick = app.clone();
    press(&mut quick, &posts, "q");
    assert!(quick.quit);
    // A blank draft is not worth asking about.
    press(&mut app, &posts, "c");
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert!(!app.has_drafts());
    press(&mut app, &posts, "c");
    press(&mut app, &posts, "draft");
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert!(app.compose.is_none() && app.has_drafts());
    press(&mut app, &posts, "q");
    assert!(!app.quit);
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm {
            yes: Confirmed::Quit,
            ..
        })
    ));
    press(&mut app, &posts, "n");
    assert!(!app.quit && app.overlay.is_none());
    press(&mut app, &posts, "qy");
    assert!(app.quit);
}

#[test]
fn ctrl_c_quits_even_with_a_draft() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "c");
    press(&mut app, &posts, "draft");
    settle(&mut app, &posts, key(KeyCode::Esc));
    update(&mut app, ctrl('c'));
    assert!(app.quit);
}

#[test]
fn reply_like_message_and_follow_act_on_the_selection() {
    let mut app = app(100, 30);
    let posts = timeline();
    // r: a reply to the selected post.
    press(&mut app, &posts, "r");
    let c = app.compose.clone().expect("compose open");
    assert_eq!(c.target, Target::Reply { to: msg("a") });
    assert_eq!(c.title, "Reply to Ada");
    settle(&mut app, &posts, key(KeyCode::Esc));
    // f: a like.
    let effects = press(&mut app, &posts, "f");
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::Like { id: msg("a") },
            draft: None
        }]
    );
    // m: a private message to the author.
    press(&mut app, &posts, "m");
    assert_eq!(
        app.compose.as_ref().unwrap().target,
        Target::Dm { to: vec![ada()] }
    );
    settle(&mut app, &posts, key(KeyCode::Esc));
    // F: we follow Ada, so it unfollows.
    let effects = press(&mut app, &posts, "F");
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::Unfollow { id: ada() },
            draft: None
        }]
    );
    // On our own post, F and m say so instead.
    press(&mut app, &posts, "jjj");
    assert_eq!(app.selected_post().unwrap().author, me());
    assert!(press(&mut app, &posts, "F").is_empty());
    press(&mut app, &posts, "m");
    assert!(app.compose.is_none());
}

#[test]
fn a_reply_to_a_private_message_says_so() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "3");
    settle(&mut app, &posts, key(KeyCode::Enter));
    press(&mut app, &posts, "r");
    let c = app.compose.clone().unwrap();
    assert_eq!(c.target, Target::Reply { to: msg("dm1") });
    assert_eq!(c.title, "Reply to Ada (private)");
}

#[test]
fn block_asks_first() {
    let mut app = app(100, 30);
    let posts = timeline();
    assert!(press(&mut app, &posts, "B").is_empty());
    assert!(matches!(app.overlay, Some(Overlay::Confirm { .. })));
    let effects = press(&mut app, &posts, "y");
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::Block { id: ada() },
            draft: None
        }]
    );
}

#[test]
fn copy_and_raw_json() {
    let mut app = app(100, 30);
    let posts = timeline();
    // `y` copies the message's ssb: link, as other apps open it.
    let link = shoal::uri::of(&msg("a")).unwrap().to_string();
    assert!(link.starts_with("ssb:message/classic/"), "{link}");
    assert_eq!(
        press(&mut app, &posts, "y"),
        vec![Effect::Copy(link.clone())]
    );
    let effects = update(&mut app, key(KeyCode::Char('u')));
    assert_eq!(effects, vec![Effect::LoadRaw(msg("a"))]);
    for e in effects {
        settle(&mut app, &posts, answer(&posts, &e).unwrap());
    }
    let Some(Overlay::Raw {
        text: Some(Ok(lines)),
        ..
    }) = &app.overlay
    else {
        panic!("raw JSON shown: {:?}", app.overlay);
    };
    assert!(lines.iter().any(|l| l.contains("\"sequence\": 20")));
    // And so does `y` on the raw JSON.
    assert_eq!(
        update(&mut app, key(KeyCode::Char('y'))),
        vec![Effect::Copy(link)]
    );
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert!(app.overlay.is_none());
}

#[test]
fn moving_onto_an_unread_post_marks_it_read_once() {
    let mut app = app(100, 30);
    let posts = timeline();
    assert!(app.unread.contains(&msg("a")) && app.unread.contains(&msg("b")));
    // Loading alone marks nothing read.
    let effects = press(&mut app, &posts, "j");
    assert_eq!(effects, vec![Effect::MarkRead(vec![19])]);
    assert!(!app.unread.contains(&msg("b")));
    assert!(press(&mut app, &posts, "kj").contains(&Effect::MarkRead(vec![20])));
    assert!(press(&mut app, &posts, "kj").is_empty());
}

#[test]
fn opening_a_conversation_marks_it_read() {
    let mut app = app(100, 30);
    let posts = timeline();
    assert!(
        press(&mut app, &posts, "3").is_empty(),
        "the list marks nothing"
    );
    let effects = update(&mut app, key(KeyCode::Enter));
    assert_eq!(effects, vec![Effect::MarkRead(vec![50])]);
    assert_eq!(
        app.messages.selected_people(&me()),
        Some(vec![ada()]),
        "the conversation with Ada is open"
    );
}

#[test]
fn search_selects_matches_and_n_moves_on() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "s");
    assert!(app.prompt.is_some());
    // Typed letters are the query, not commands.
    press(&mut app, &posts, "the");
    assert_eq!(app.tab, Tab::Timeline);
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_eq!(app.query.as_deref(), Some("the"));
    // "the" is in posts 0 ("the one before it"), 1 ("the chain") and 3.
    assert_eq!(app.timeline.nav.selected, 0);
    press(&mut app, &posts, "n");
    assert_eq!(app.timeline.nav.selected, 1);
    press(&mut app, &posts, "n");
    assert_eq!(app.timeline.nav.selected, 3);
    press(&mut app, &posts, "n");
    assert_eq!(app.timeline.nav.selected, 0, "wraps around");
    press(&mut app, &posts, "N");
    assert_eq!(app.timeline.nav.selected, 3);
    // Esc in the prompt cancels it.
    press(&mut app, &posts, "sx");
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert!(app.prompt.is_none());
    assert_eq!(app.query.as_deref(), Some("the"));
}

#[test]
fn slash_searches_the_whole_store_and_saved_searches_rerun() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "/");
    assert!(app.prompt.is_some() && app.store_search);
    press(&mut app, &posts, "CHAIN");
    settle(&mut app, &posts, key(KeyCode::Enter));
    let Some(Overlay::Search { query, hits, .. }) = &app.overlay else {
        panic!("results shown: {:?}", app.overlay);
    };
    assert_eq!(query, "CHAIN");
    let hits = hits.clone().unwrap().unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    // The filter of what is loaded is left alone.
    assert_eq!(app.query, None);
    // w saves it.
    let effects = settle(&mut app, &posts, key(KeyCode::Char('w')));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|(_, n)| n.contains("saved “CHAIN”")),
        "{:?}",
        app.notice
    );
    // j then Enter opens the second hit's thread.
    press(&mut app, &posts, "j");
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert_eq!(app.overlay, None);
    assert_eq!(app.tab, Tab::Thread);
    // S lists the saved searches; Enter runs the one selected.
    settle(&mut app, &posts, key(KeyCode::Char('S')));
    let Some(Overlay::Saved { searches, .. }) = &app.overlay else {
        panic!("saved searches shown: {:?}", app.overlay);
    };
    assert_eq!(searches, &["tide".to_string()]);
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Search { query, hits: Some(Ok(_)), .. }) if query == "tide"
    ));
    // Esc closes.
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert_eq!(app.overlay, None);
}

#[test]
fn stale_views_reload_without_piling_up() {
    let mut app = app(100, 30);
    let first = update(&mut app, Event::Node(Note::Stale));
    let loads = first
        .iter()
        .filter(|e| matches!(e, Effect::LoadTimeline(_)))
        .count();
    assert_eq!(loads, 1, "{first:?}");
    // More stale notes while the reload is on its way ask for nothing
    // new; one more reload follows when it comes.
    let second = update(&mut app, Event::Node(Note::Stale));
    assert!(!second.iter().any(|e| matches!(e, Effect::LoadTimeline(_))));
    let posts = timeline();
    let page = Page {
        before: None,
        limit: PAGE,
    };
    let after = update(
        &mut app,
        Event::Loaded(Loaded::Timeline {
            page,
            result: Ok(posts.clone()),
        }),
    );
    assert_eq!(after, vec![Effect::LoadTimeline(page)]);
}

#[test]
fn new_posts_keep_a_scrolled_view_in_place() {
    let posts = long_timeline();
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "jjjjjjjjjjjj");
    let key_before = app.selected_post().unwrap().key.clone();
    let offset = app.timeline.nav.offset;
    assert!(offset > 0);
    let mut newer = vec![
        post("new1", &bjorn(), 0, 5000, "fresh"),
        post("new2", &bjorn(), 1, 4999, "fresh too"),
    ];
    newer.extend(posts);
    update(&mut app, Event::Node(Note::Stale));
    settle(
        &mut app,
        &newer,
        Event::Loaded(Loaded::Timeline {
            page: Page {
                before: None,
                limit: PAGE,
            },
            result: Ok(newer[..PAGE].to_vec()),
        }),
    );
    assert_eq!(app.selected_post().unwrap().key, key_before);
    assert_eq!(app.timeline.nav.offset, offset + 2 * 3);
    assert_eq!(app.timeline.list.posts[0].key, msg("new1"));
}

#[test]
fn resizing_keeps_the_selection_in_view() {
    let posts = long_timeline();
    let mut app = app_with(&posts, 100, 30);
    press(&mut app, &posts, "jjjjjjjjjj");
    update(&mut app, Event::Resize(40, 10));
    let rows = app.body().height as usize - 1;
    let top = app.timeline.nav.selected * 3;
    assert!(top >= app.timeline.nav.offset && top + 3 <= app.timeline.nav.offset + rows.max(3));
}

#[test]
fn releases_and_unknown_keys_change_nothing() {
    let mut app = app(100, 30);
    let before = app.clone();
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert!(update(&mut app, Event::Key(release)).is_empty());
    assert!(update(&mut app, key(KeyCode::F(7))).is_empty());
    assert_eq!(app, before);
}

#[test]
fn the_editor_result_replaces_the_draft() {
    let mut app = app(100, 30);
    let posts = timeline();
    let effects = press(&mut app, &posts, "e");
    assert_eq!(effects, vec![Effect::Editor(String::new())]);
    update(&mut app, Event::Editor(Ok("written elsewhere\n".into())));
    assert_eq!(
        app.compose.as_ref().unwrap().editor.text(),
        "written elsewhere"
    );
    // In the pane, Ctrl-e hands over what is there.
    assert_eq!(
        update(&mut app, ctrl('e')),
        vec![Effect::Editor("written elsewhere".into())]
    );
}

#[test]
fn profile_of_the_author_and_back() {
    let mut app = app(100, 30);
    let posts = timeline();
    press(&mut app, &posts, "p");
    assert_eq!(app.tab, Tab::Contacts);
    let v = app.contacts.person.as_ref().expect("a profile open");
    assert_eq!(v.id, ada());
    assert_eq!(v.posts.posts.len(), 1);
    settle(&mut app, &posts, key(KeyCode::Char('h')));
    assert_eq!(app.tab, Tab::Timeline);
}

#[test]
fn status_gives_progress_and_rate() {
    let mut app = app(100, 30);
    let mut s = status();
    update(&mut app, Event::Tick(NOW + 1000));
    s.messages += 50;
    s.feeds_held = 4;
    update(&mut app, Event::Node(Note::Status(Ok(Box::new(s)))));
    let p = app.status.progress().unwrap();
    assert_eq!((p.peers, p.held, p.wanted, p.unread), (2, 4, 5, 3));
    assert!((p.rate - 50.0).abs() < 0.01, "{}", p.rate);
    assert_eq!(p.eta, None, "no feed came in: no estimate");
}

#[test]
fn node_problems_show_in_the_status_bar_and_the_log_once() {
    let mut app = app(100, 30);
    let lines = app.log.lines.len();
    for _ in 0..3 {
        update(
            &mut app,
            Event::Node(Note::Problem("cannot listen on 127.0.0.1:8008".into())),
        );
    }
    let (_, e) = app.status.error.clone().expect("shown");
    assert_eq!(e, "node: cannot listen on 127.0.0.1:8008");
    assert_eq!(app.log.lines.len(), lines + 1);
}

/// A client on the groups screen, its groups and the first group's posts
/// loaded.
fn on_groups() -> (App, Vec<Post>) {
    let mut app = app(100, 30);
    let posts = timeline();
    let effects = update(&mut app, key(KeyCode::Char('4')));
    assert_eq!(app.tab, Tab::Groups);
    assert_eq!(effects, vec![Effect::LoadGroups]);
    for e in effects {
        if let Some(ev) = answer(&posts, &e) {
            settle(&mut app, &posts, ev);
        }
    }
    assert_eq!(app.groups.list.len(), groups().len());
    assert_eq!(app.groups.posts_of, Some(group_id()));
    assert_eq!(app.groups.posts.posts.len(), group_posts().len());
    (app, posts)
}

#[test]
fn group_selection_loads_that_groups_posts_and_enter_focuses_them() {
    let (mut app, posts) = on_groups();
    let effects = update(&mut app, key(KeyCode::Char('j')));
    assert!(
        matches!(&effects[..], [Effect::LoadGroupPosts { group, page }]
            if *group == groups()[1].id && page.before.is_none()),
        "{effects:?}"
    );
    settle(&mut app, &posts, key(KeyCode::Char('k')));
    assert!(app.selected_post().is_none(), "the list has the focus");
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert!(app.groups.focus_posts);
    assert_eq!(
        app.selected_post().map(|p| p.key.clone()),
        Some(group_posts()[0].key.clone())
    );
    settle(&mut app, &posts, key(KeyCode::Char('j')));
    assert_eq!(app.groups.posts_nav.selected, 1);
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert!(!app.groups.focus_posts);
    assert_eq!(app.tab, Tab::Groups);
}

#[test]
fn c_composes_to_the_selected_group_and_ctrl_s_posts_there() {
    let (mut app, posts) = on_groups();
    press(&mut app, &posts, "c");
    let c = app.compose.clone().expect("compose open");
    assert_eq!(c.target, Target::Group(group_id()));
    assert!(c.title.contains("harbour crew"), "{}", c.title);
    settle(&mut app, &posts, Event::Paste("to the crew".into()));
    let effects = settle(&mut app, &posts, ctrl('s'));
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::GroupPost {
                group: group_id(),
                text: "to the crew".into(),
            },
            draft: Some((Target::Group(group_id()), "to the crew".into())),
        }]
    );
    // A group we were removed from, or whose key we lack, takes no post.
    press(&mut app, &posts, "j");
    press(&mut app, &posts, "c");
    assert!(app.compose.is_none());
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|(_, n)| n.contains("removed")),
        "{:?}",
        app.notice
    );
}

#[test]
fn a_asks_for_a_feed_id_and_refuses_anything_else() {
    let (mut app, posts) = on_groups();
    press(&mut app, &posts, "a");
    assert!(app.ask.is_some());
    // Typed letters are the answer, not commands.
    let effects = press(&mut app, &posts, "bogus");
    assert!(effects.is_empty());
    assert_eq!(app.tab, Tab::Groups);
    assert!(settle(&mut app, &posts, key(KeyCode::Enter)).is_empty());
    let ask = app.ask.clone().expect("still asking");
    assert_eq!(ask.text, "bogus");
    assert!(
        ask.error
            .as_deref()
            .is_some_and(|e| e.contains("@….ed25519")),
        "{ask:?}"
    );
    // A member already, and ourselves, are refused too.
    for _ in 0..5 {
        settle(&mut app, &posts, key(KeyCode::Backspace));
    }
    settle(&mut app, &posts, Event::Paste(bjorn()));
    assert!(settle(&mut app, &posts, key(KeyCode::Enter)).is_empty());
    assert_eq!(
        app.ask.as_ref().and_then(|a| a.error.as_deref()),
        Some("already a member")
    );
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert!(app.ask.is_none());
    // A good id is sent.
    press(&mut app, &posts, "a");
    settle(&mut app, &posts, Event::Paste(format!(" {} ", misaki())));
    let effects = settle(&mut app, &posts, key(KeyCode::Enter));
    assert!(app.ask.is_none());
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::GroupAdd {
                group: group_id(),
                id: misaki(),
            },
            draft: None,
        }]
    );
}

#[test]
fn x_chooses_a_member_then_says_what_the_removal_does() {
    let (mut app, posts) = on_groups();
    press(&mut app, &posts, "x");
    let Some(Overlay::Choose { members, .. }) = app.overlay.clone() else {
        panic!("a choice: {:?}", app.overlay);
    };
    assert_eq!(members, vec![ada(), bjorn()], "everyone but us");
    press(&mut app, &posts, "j");
    settle(&mut app, &posts, key(KeyCode::Enter));
    let Some(Overlay::Confirm { question, yes }) = app.overlay.clone() else {
        panic!("a question: {:?}", app.overlay);
    };
    assert_eq!(
        question,
        "this rekeys the group; Björn keeps what was posted before (y/n)"
    );
    assert_eq!(
        yes,
        Confirmed::RemoveMember {
            group: group_id(),
            id: bjorn(),
        }
    );
    let effects = press(&mut app, &posts, "y");
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::GroupRemove {
                group: group_id(),
                id: bjorn(),
            },
            draft: None,
        }]
    );
    // n answers no; Esc in the choice cancels.
    press(&mut app, &posts, "x");
    settle(&mut app, &posts, key(KeyCode::Enter));
    assert!(press(&mut app, &posts, "n").is_empty());
    assert!(app.overlay.is_none());
    press(&mut app, &posts, "x");
    settle(&mut app, &posts, key(KeyCode::Esc));
    assert!(app.overlay.is_none());
}

#[test]
fn n_makes_a_group_and_the_new_group_is_selected() {
    let (mut app, posts) = on_groups();
    press(&mut app, &posts, "n");
    assert!(settle(&mut app, &posts, key(KeyCode::Enter)).is_empty());
    assert!(app.ask.as_ref().is_some_and(|a| a.error.is_some()));
    let effects = press(&mut app, &posts, "deck hands");
    assert!(effects.is_empty());
    let effects = settle(&mut app, &posts, key(KeyCode::Enter));
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::GroupCreate {
                name: "deck hands".into()
            },
            draft: None,
        }]
    );
    // Once made, the list reloads and selects it.
    let effects = update(
        &mut app,
        Event::Loaded(Loaded::Published {
            what: Publish::GroupCreate {
                name: "deck hands".into(),
            },
            draft: None,
            result: Ok(groups()[2].id.clone()),
        }),
    );
    assert!(effects.contains(&Effect::LoadGroups), "{effects:?}");
    for e in effects {
        if let Some(ev) = answer(&posts, &e) {
            settle(&mut app, &posts, ev);
        }
    }
    assert_eq!(app.groups.nav.selected, 2);
}

#[test]
fn group_errors_show_in_the_status_line_and_new_messages_reload_groups() {
    let (mut app, _) = on_groups();
    update(
        &mut app,
        Event::Loaded(Loaded::Published {
            what: Publish::GroupRemove {
                group: group_id(),
                id: bjorn(),
            },
            draft: None,
            result: Err("you are not an admin of this group".into()),
        }),
    );
    let (_, e) = app.status.error.clone().expect("shown");
    assert!(e.contains("not an admin"), "{e}");
    let effects = update(&mut app, Event::Node(Note::Stale));
    assert!(effects.contains(&Effect::LoadGroups), "{effects:?}");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::LoadGroupPosts { group, .. } if *group == group_id())),
        "{effects:?}"
    );
}

#[test]
fn group_keys_elsewhere_only_say_where_they_work() {
    let mut app = app(100, 30);
    let posts = timeline();
    assert!(press(&mut app, &posts, "a").is_empty());
    assert!(app.ask.is_none());
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|(_, n)| n.contains("groups screen")),
        "{:?}",
        app.notice
    );
    // c is still a public post there.
    press(&mut app, &posts, "c");
    assert_eq!(app.compose.map(|c| c.target), Some(Target::Post));
}

#[test]
fn contacts_list_rooms_and_f_follows_an_attendant_to_meet_them() {
    let mut app = app(100, 30);
    let posts = timeline();
    assert_eq!(app.contacts.rooms, None);
    // Showing the screen asks for the rooms we are in.
    let effects = update(&mut app, key(KeyCode::Char('5')));
    assert!(effects.contains(&Effect::LoadRooms), "{effects:?}");
    for e in &effects {
        if let Some(ev) = answer(&posts, e) {
            settle(&mut app, &posts, ev);
        }
    }
    assert_eq!(app.contacts.rooms, Some(rooms()));
    // Past the contacts (3 following, 2 followers, 1 blocked): Ada then
    // Kai, the room's attendants.
    press(&mut app, &posts, "jjjjjj");
    let a = app.contacts.selected_attendant().expect("an attendant");
    assert_eq!(a.id.to_string(), ada());
    press(&mut app, &posts, "j");
    let a = app.contacts.selected_attendant().expect("an attendant");
    assert_eq!((a.id.to_string(), a.following), (kai(), false));
    // F on one we do not follow follows them: the node then meets them
    // through the room.
    let effects = press(&mut app, &posts, "F");
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::Follow { id: kai() },
            draft: None
        }]
    );
    let notice = &app.notice.as_ref().expect("a notice").1;
    assert!(notice.contains("through the room"), "{notice}");
    // Once published, the rooms are read again.
    let effects = update(
        &mut app,
        Event::Loaded(Loaded::Published {
            what: Publish::Follow { id: kai() },
            draft: None,
            result: Ok(msg("follow kai")),
        }),
    );
    assert!(effects.contains(&Effect::LoadRooms), "{effects:?}");
    // On Ada, whom we follow, F unfollows as elsewhere.
    press(&mut app, &posts, "k");
    let effects = press(&mut app, &posts, "F");
    assert_eq!(
        effects,
        vec![Effect::Publish {
            what: Publish::Unfollow { id: ada() },
            draft: None
        }]
    );
    // Peers coming and going reload the rooms, here and on other tabs
    // once loaded.
    assert_eq!(
        update(&mut app, Event::Node(Note::Peers)),
        vec![Effect::LoadRooms]
    );
    press(&mut app, &posts, "1");
    assert_eq!(
        update(&mut app, Event::Node(Note::Peers)),
        vec![Effect::LoadRooms]
    );
    // Never shown: nothing to reload.
    let mut fresh = crate::fixture::app(100, 30);
    assert_eq!(update(&mut fresh, Event::Node(Note::Peers)), vec![]);
}

/// `z` mutes the selected message's thread and `M` its author, each a
/// toggle the node answers; the answer says so in the status bar and
/// reloads the view (muted content leaves it). `H` on an edited message
/// asks for its history, shown in the raw overlay.
#[test]
fn mute_keys_toggle_and_reload_and_history_opens_on_edited_posts() {
    let posts = timeline();
    let mut app = app_with(&posts, 100, 30);
    let selected = app.timeline.selected().cloned().expect("a post");
    assert_eq!(
        press(&mut app, &posts, "z"),
        vec![Effect::ToggleMute {
            target: selected.key.clone(),
            what: "the thread".into(),
        }]
    );
    let effects = press(&mut app, &posts, "M");
    assert!(
        matches!(&effects[..], [Effect::ToggleMute { target, .. }] if *target == selected.author),
        "{effects:?}"
    );
    let reloads = update(
        &mut app,
        Event::Loaded(Loaded::Muted {
            what: "the thread".into(),
            result: Ok(true),
        }),
    );
    assert!(
        reloads
            .iter()
            .any(|e| matches!(e, Effect::LoadTimeline(p) if p.before.is_none())),
        "{reloads:?}"
    );
    let notice = app.notice.clone().expect("a notice").1;
    assert!(notice.starts_with("muted the thread"), "{notice}");
    for e in &reloads {
        if let Some(ev) = answer(&posts, e) {
            settle(&mut app, &posts, ev);
        }
    }
    settle(
        &mut app,
        &posts,
        Event::Loaded(Loaded::Muted {
            what: "the thread".into(),
            result: Ok(false),
        }),
    );
    assert_eq!(
        app.notice.clone().expect("a notice").1,
        "unmuted the thread"
    );

    // History: only for an edited message.
    assert!(press(&mut app, &posts, "H").is_empty());
    assert_eq!(
        app.notice.clone().unwrap().1,
        "not edited: no history to show"
    );
    let mut edited = posts.clone();
    edited[0].edited = true;
    edited[0].revisions = 1;
    let mut app = app_with(&edited, 100, 30);
    let id = edited[0].key.clone();
    assert_eq!(
        press(&mut app, &edited, "H"),
        vec![Effect::LoadHistory(id.clone())]
    );
    assert!(matches!(&app.overlay, Some(Overlay::Raw { id: shown, .. }) if *shown == id));
}
