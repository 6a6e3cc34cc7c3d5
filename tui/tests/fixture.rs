//! Fixture data for the screen tests: people from fixed seeds, posts at
//! fixed times, a fixed "now", and a client filled by answering its load
//! effects with that data through `update`, as the runtime would.

use std::collections::VecDeque;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

use shoal::crypto::{FeedId, Keypair, MsgId, sha256};
use shoal_tui::app::{App, update};
use shoal_tui::event::{Effect, Event, Loaded, Note, Page};
use shoal_tui::model::PostView as _;
use shoal_tui::model::{
    Attendant, Contacts, EpochInfo, GroupInfo, Person, Post, Profile, RoomView, Status,
    ThreadEntry, ThreadView,
};

/// "Now" in every screen test: 2023-11-14 22:13:20 UTC.
pub const NOW: u64 = 1_700_000_000_000;

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;

/// A feed id from a fixed seed.
pub fn feed(n: u8) -> String {
    Keypair::from_seed(&[n; 32]).id().to_string()
}

/// A message id from a fixed label.
pub fn msg(label: &str) -> String {
    MsgId(sha256(format!("fixture {label}").as_bytes())).to_string()
}

/// Us.
pub fn me() -> String {
    feed(1)
}
/// Ada.
pub fn ada() -> String {
    feed(2)
}
/// Björn.
pub fn bjorn() -> String {
    feed(3)
}
/// 美咲.
pub fn misaki() -> String {
    feed(4)
}
/// Someone we block.
pub fn troll() -> String {
    feed(5)
}

fn name_of(id: &str) -> Option<String> {
    [
        (ada(), "Ada"),
        (bjorn(), "Björn"),
        (misaki(), "美咲"),
        (me(), "Me"),
        (troll(), "Troll"),
    ]
    .into_iter()
    .find(|(f, _)| f == id)
    .map(|(_, n)| n.to_string())
}

/// A public post.
pub fn post(label: &str, author: &str, ago: u64, rx: u64, text: &str) -> Post {
    Post {
        key: msg(label),
        author: author.to_string(),
        name: name_of(author),
        sequence: rx,
        time: NOW - ago,
        rx,
        kind: Some("post".into()),
        text: Some(text.to_string()),
        content: json!({"type": "post", "text": text}),
        ..Post::default()
    }
}

/// The timeline, newest first.
pub fn timeline() -> Vec<Post> {
    let mut a = post(
        "a",
        &ada(),
        2 * MIN,
        20,
        "Good morning, harbour! Every message here is signed and chained to the one before it.",
    );
    a.replies = 2;
    a.likes = 3;
    a.unread = true;
    let mut b = post(
        "b",
        &bjorn(),
        5 * MIN,
        19,
        "Agreed, and the chain means nobody can quietly edit history.",
    );
    b.root = Some(msg("a"));
    b.unread = true;
    let mut c = post(
        "c",
        &misaki(),
        3 * HOUR,
        18,
        "今日は海がとても静かです。Quiet sea today 🌊",
    );
    c.likes = 1;
    let d = post(
        "d",
        &me(),
        DAY,
        17,
        "Testing my first post from the terminal.\nSecond line.\nThird line, hidden in the card.",
    );
    let e = Post {
        key: msg("e"),
        author: bjorn(),
        name: name_of(&bjorn()),
        sequence: 16,
        time: NOW - 2 * DAY,
        rx: 16,
        kind: Some("post".into()),
        invalid: Some("text is not a string".into()),
        content: json!({"type": "post", "text": 42}),
        ..Post::default()
    };
    vec![a, b, c, d, e]
}

/// Posts that try to break the terminal.
pub fn hostile() -> Vec<Post> {
    let mut evil = post(
        "evil",
        &troll(),
        MIN,
        30,
        "title\x1b]0;pwned\x07 clear\x1b[2J\x1b[H bell\x07 c1\u{9b}31m rtl\u{202e}gnp.exe\r\nnext\tline\0end",
    );
    evil.name = Some("\x1b[31mEvil\x1b[0m\nName".into());
    let huge = post(
        "huge",
        &ada(),
        2 * MIN,
        29,
        &"all work and no play ".repeat(500),
    );
    let lines = post("lines", &bjorn(), 3 * MIN, 28, &"line\n".repeat(300));
    vec![evil, huge, lines]
}

/// Posts in scripts of every width.
pub fn wide() -> Vec<Post> {
    vec![
        post(
            "w1",
            &misaki(),
            MIN,
            40,
            "日本語の投稿：折り返しは全角文字の幅を正しく数える必要があります。",
        ),
        post(
            "w2",
            &ada(),
            2 * MIN,
            39,
            "Family 👨‍👩‍👧‍👦 flags 🇳🇴🇯🇵 skin 👍🏽 and combining é́ marks",
        ),
        post(
            "w3",
            &bjorn(),
            3 * MIN,
            38,
            "한국어 텍스트와 中文字符 mixed with ASCII words in one line",
        ),
        {
            let mut p = post(
                "w4",
                &misaki(),
                4 * MIN,
                37,
                "🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟🐟",
            );
            p.name = Some("とても長い名前のユーザーさんです本当に長い".into());
            p
        },
    ]
}

/// The thread of post "a": nested replies and one message we lack; the
/// reply "b" has a thread of its own ([`forked_thread`]).
pub fn thread() -> ThreadView {
    let root = timeline().remove(0);
    let mut b = timeline().remove(1);
    b.own_thread = 2;
    let mut c = post(
        "ta",
        &misaki(),
        4 * MIN,
        21,
        "And nobody can fake one either.",
    );
    c.root = Some(msg("a"));
    let mut d = post(
        "tb",
        &me(),
        MIN,
        22,
        "Replying to a message this node has not received yet.",
    );
    d.root = Some(msg("a"));
    let entry = |depth, post: Post| ThreadEntry::Message {
        depth,
        item: Box::new(post),
    };
    ThreadView {
        root: msg("a"),
        entries: vec![
            entry(0, root),
            entry(1, b),
            entry(2, c),
            ThreadEntry::Missing {
                depth: 1,
                key: msg("lost"),
            },
            entry(2, d),
        ],
        hidden: 1,
        ..ThreadView::default()
    }
}

/// The thread of reply "b", forked from "a": two replies naming it as
/// their root, one under the other.
pub fn forked_thread() -> ThreadView {
    let mut root = timeline().remove(1);
    root.replies = 2;
    let mut f1 = post(
        "fa",
        &ada(),
        3 * MIN,
        23,
        "Forking this: what about deletions?",
    );
    f1.root = Some(msg("b"));
    f1.replies = 1;
    let mut f2 = post("fb", &misaki(), MIN, 24, "Deletions are just new messages.");
    f2.root = Some(msg("b"));
    let entry = |depth, post: Post| ThreadEntry::Message {
        depth,
        item: Box::new(post),
    };
    ThreadView {
        root: msg("b"),
        entries: vec![entry(0, root), entry(1, f1), entry(2, f2)],
        forked_from: Some(msg("a")),
        ..ThreadView::default()
    }
}

fn dm(label: &str, author: &str, recps: &[String], ago: u64, rx: u64, text: &str) -> Post {
    let mut p = post(label, author, ago, rx, text);
    p.private = true;
    p.recps = recps.to_vec();
    p
}

/// Private messages, newest first.
pub fn inbox() -> Vec<Post> {
    let mut first = dm(
        "dm1",
        &ada(),
        &[ada(), me()],
        10 * MIN,
        50,
        "Psst, this one is private: only you and I can read it.",
    );
    first.unread = true;
    vec![
        first,
        dm(
            "dm2",
            &me(),
            &[me(), ada(), bjorn()],
            2 * HOUR,
            49,
            "Harbour meetup on Saturday?",
        ),
        dm(
            "dm3",
            &bjorn(),
            &[me(), ada(), bjorn()],
            3 * HOUR,
            48,
            "Count me in.",
        ),
        dm(
            "dm4",
            &me(),
            &[me(), ada()],
            DAY,
            47,
            "Thanks for the follow!",
        ),
    ]
}

fn person(id: String) -> Person {
    Person {
        name: name_of(&id),
        id,
    }
}

/// A profile: ours lists our contacts.
pub fn profile(id: &str) -> Profile {
    let contacts = if id == me() {
        Contacts {
            follows: vec![person(ada()), person(bjorn()), person(misaki())],
            followers: vec![person(ada()), person(bjorn())],
            blocks: vec![person(troll())],
            blocked_by: vec![],
        }
    } else {
        Contacts {
            follows: vec![person(me())],
            followers: vec![person(me())],
            ..Contacts::default()
        }
    };
    Profile {
        id: id.to_string(),
        name: name_of(id),
        names: vec![],
        description: (id == ada()).then(|| "Sailor, tinkerer, keeper of a small feed.".into()),
        contacts,
        ..Profile::default()
    }
}

/// The id of the first fixture group, "harbour crew".
pub fn group_id() -> String {
    msg("group harbour")
}

fn epoch(label: &str, removed: Vec<String>, recipients: usize, held: bool) -> EpochInfo {
    EpochInfo {
        id: msg(label),
        removed,
        recipients,
        held,
    }
}

/// Our groups: one we post in (rekeyed once, to remove 美咲), one we were
/// removed from, one whose new key has not reached us.
pub fn groups() -> Vec<GroupInfo> {
    vec![
        GroupInfo {
            id: group_id(),
            name: Some("harbour crew".into()),
            members: vec![ada(), bjorn(), me()],
            admins: vec![ada(), me()],
            member: true,
            can_post: true,
            heads: vec![msg("epoch harbour 2")],
            epochs: vec![
                epoch("group harbour", vec![], 1, true),
                epoch("epoch harbour 2", vec![misaki()], 3, true),
            ],
            ..GroupInfo::default()
        },
        GroupInfo {
            id: msg("group old"),
            name: Some("old \x1b[31mcrew\x07".into()),
            members: vec![ada(), bjorn()],
            admins: vec![ada()],
            member: false,
            can_post: false,
            epochs: vec![
                epoch("group old", vec![], 1, true),
                epoch("epoch old 2", vec![me()], 2, false),
            ],
            ..GroupInfo::default()
        },
        GroupInfo {
            id: msg("group night"),
            name: None,
            members: vec![bjorn(), me(), misaki()],
            admins: vec![bjorn()],
            member: true,
            can_post: false,
            missing: vec![msg("epoch night 2")],
            epochs: vec![epoch("group night", vec![], 3, true)],
            ..GroupInfo::default()
        },
    ]
}

/// The posts of "harbour crew", newest first: before and after 美咲 was
/// removed.
pub fn group_posts() -> Vec<Post> {
    let gp = |label: &str, author: String, ago: u64, rx: u64, text: &str| {
        let mut p = post(label, &author, ago, rx, text);
        p.private = true;
        p
    };
    vec![
        gp(
            "gp4",
            ada(),
            3 * MIN,
            64,
            "New key: 美咲 keeps what was posted before, not what comes now.",
        ),
        gp("gp3", misaki(), HOUR, 63, "今夜は私が見張りをします 🌙"),
        gp("gp2", bjorn(), 2 * HOUR, 62, "Nets mended, boat ready."),
        gp(
            "gp1",
            ada(),
            3 * HOUR,
            61,
            "Welcome aboard the harbour crew: only members can read this.",
        ),
    ]
}

/// A room we are in.
pub fn room() -> String {
    feed(6)
}
/// Kai, whom we meet only in the room and do not follow.
pub fn kai() -> String {
    feed(7)
}

/// The rooms we are in: one, attended by Ada (followed, connected through
/// it) and Kai (not followed).
pub fn rooms() -> Vec<RoomView> {
    let id = |s: String| FeedId::parse(&s).expect("a feed id");
    vec![RoomView {
        room: id(room()),
        attendants: vec![
            Attendant {
                id: id(ada()),
                name: Some("Ada".into()),
                following: true,
                connected: true,
            },
            Attendant {
                id: id(kai()),
                name: Some("Kai".into()),
                following: false,
                connected: false,
            },
        ],
    }]
}

/// The node's status.
pub fn status() -> Status {
    Status {
        peers: 2,
        feeds_wanted: 5,
        feeds_held: 4,
        messages: 1234,
        unread: 3,
        address: Some("net:127.0.0.1:8008~shs:x".into()),
        ..Status::default()
    }
}

/// Answers one effect with fixture data, as the runtime would with a
/// backend holding it (`timeline` is what the timeline holds).
pub fn answer(timeline: &[Post], effect: &Effect) -> Option<Event> {
    let page_of = |posts: Vec<Post>, page: &Page| -> Vec<Post> {
        posts
            .into_iter()
            .filter(|p| page.before.is_none_or(|c| p.cursor() < c))
            .take(page.limit)
            .collect()
    };
    Some(Event::Loaded(match effect {
        Effect::LoadTimeline(page) => Loaded::Timeline {
            page: *page,
            result: Ok(page_of(timeline.to_vec(), page)),
        },
        Effect::LoadInbox(page) => Loaded::Inbox {
            page: *page,
            result: Ok(page_of(inbox(), page)),
        },
        Effect::LoadThread(id) => Loaded::Thread {
            id: id.clone(),
            result: Ok(if *id == msg("b") {
                forked_thread()
            } else {
                thread()
            }),
        },
        Effect::LoadProfile(id) => Loaded::Profile {
            id: id.clone(),
            result: Ok(Box::new(profile(id))),
            why: None,
        },
        Effect::LoadPostsBy { id, page } => Loaded::PostsBy {
            id: id.clone(),
            page: *page,
            result: Ok(page_of(
                timeline.iter().filter(|p| p.author == *id).cloned().collect(),
                page,
            )),
        },
        Effect::LoadRaw(id) => Loaded::Raw {
            id: id.clone(),
            result: Ok(serde_json::to_string_pretty(&json!({
                "key": id,
                "value": {"author": ada(), "sequence": 20, "content": {"type": "post", "text": "\x1b[2Jhi"}},
                "timestamp": NOW,
            }))
            .expect("json")),
        },
        Effect::Search(q) => Loaded::Search {
            query: q.clone(),
            result: Ok(search(timeline, q)),
        },
        Effect::Searches { save, forget } => Loaded::Searches {
            saved: save.clone(),
            result: Ok(["tide".to_string()]
                .into_iter()
                .chain(save.clone())
                .filter(|s| Some(s) != forget.as_ref())
                .collect()),
        },
        Effect::LoadRooms => Loaded::Rooms {
            result: Ok(rooms()),
        },
        Effect::LoadGroups => Loaded::Groups {
            result: Ok(groups()),
        },
        Effect::LoadGroupPosts { group, page } => Loaded::GroupPosts {
            group: group.clone(),
            page: *page,
            result: Ok(if *group == group_id() {
                page_of(group_posts(), page)
            } else {
                Vec::new()
            }),
        },
        _ => return None,
    }))
}

/// A whole-store search of the fixture's posts, as the index would
/// answer it: posts holding every word (any case), each word marked.
pub fn search(timeline: &[Post], q: &str) -> shoal::api::SearchResults {
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    let mut hits = Vec::new();
    for p in timeline {
        let text = p.text.clone().unwrap_or_default();
        let lower = text.to_lowercase();
        if words.is_empty() || !words.iter().all(|w| lower.contains(w.as_str())) {
            continue;
        }
        let mut marks: Vec<(usize, usize)> = words
            .iter()
            .filter_map(|w| lower.find(w.as_str()).map(|a| (a, a + w.len())))
            .collect();
        marks.sort();
        hits.push(shoal::api::SearchHit {
            key: p.key.clone(),
            rx: p.rx,
            author: p.author.clone(),
            name: p.name.clone(),
            time: p.time,
            kind: "public".into(),
            content_type: "post".into(),
            root: p.root.clone(),
            score: 1.0,
            snippet: text,
            marks,
        });
    }
    shoal::api::SearchResults {
        hits,
        literal: false,
    }
}

/// Applies an event and answers every load it leads to, until none is
/// left; returns the effects that were not loads.
pub fn settle(app: &mut App, timeline: &[Post], event: Event) -> Vec<Effect> {
    let mut others = Vec::new();
    let mut queue: VecDeque<Effect> = update(app, event).into();
    let mut rounds = 0;
    while let Some(e) = queue.pop_front() {
        rounds += 1;
        assert!(rounds < 1000, "loads never settle");
        match answer(timeline, &e) {
            Some(ev) => queue.extend(update(app, ev)),
            None => others.push(e),
        }
    }
    others
}

/// A client of `width` x `height` with the timeline `posts` loaded.
pub fn app_with(posts: &[Post], width: u16, height: u16) -> App {
    let mut app = App::new(&me(), NOW, (width, height));
    let mut queue: VecDeque<Effect> = app.start().into();
    while let Some(e) = queue.pop_front() {
        if let Some(ev) = answer(posts, &e) {
            queue.extend(update(&mut app, ev));
        }
    }
    update(&mut app, Event::Node(Note::Status(Ok(Box::new(status())))));
    app
}

/// A client of `width` x `height` with the fixture timeline.
pub fn app(width: u16, height: u16) -> App {
    app_with(&timeline(), width, height)
}

/// A key press.
pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// A key press with Ctrl.
pub fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// Presses each character of `keys` in turn, answering loads.
pub fn press(app: &mut App, posts: &[Post], keys: &str) -> Vec<Effect> {
    let mut out = Vec::new();
    for c in keys.chars() {
        out.extend(settle(app, posts, key(KeyCode::Char(c))));
    }
    out
}

/// Draws the client on a test terminal of its size.
pub fn draw(app: &App) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).expect("test terminal");
    t.draw(|f| shoal_tui::ui::draw(f, app)).expect("draw");
    t
}

/// Every cell's symbol on the test terminal, failing on any control
/// character (what would reach a real terminal raw).
#[track_caller]
pub fn assert_no_controls(t: &Terminal<TestBackend>) {
    for cell in t.backend().buffer().content() {
        let s = cell.symbol();
        assert!(
            !s.chars()
                .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "a control character reached the screen: {s:?}"
        );
    }
}
