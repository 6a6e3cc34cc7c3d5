//! The social commands of the `shoal` binary, between homes that exchange
//! their feeds with `export` / `import` (no network), and through a running
//! node:
//! - `name`, `post`, `reply`, `like`: `thread` shows the root then the
//!   reply, with names; `feed` (text and `--json`) lists our posts and those
//!   of feeds we follow, newest first, with reply and like counts, and marks
//!   what is new with `* ` the first time only;
//! - `dm` reaches its recipients (up to 7 besides the author) and nobody
//!   else: `inbox` and `get` with `"decrypted"`; too many recipients or a
//!   recipient that is not a feed id is a usage error (exit 2, one line);
//! - a reply that other messages name as their root opens as a forked
//!   thread (its replies, "forked from" its root), and the thread it is
//!   in says it has replies of its own;
//! - a reply to a message we do not hold shows a placeholder in `thread`;
//!   replies of a blocked feed are hidden with a note; `contacts` shows
//!   follows, blocks and followers; malformed content is shown raw with the
//!   reason.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use shoal::crypto::{Keypair, MsgId};

use crate::cli::{Out, init_home, ok, one_line_error, shoal};
use crate::common::test_key;
use crate::nodes::ServeNode;

/// A home with its identity.
struct Home {
    dir: PathBuf,
    id: String,
}

impl Home {
    fn new(tmp: &Path, name: &str, n: u8) -> Home {
        let keys: Keypair = test_key(n);
        Home {
            dir: init_home(tmp, name, &keys),
            id: keys.id().to_string(),
        }
    }

    /// Runs a command that must succeed quietly; its output.
    #[track_caller]
    fn ok<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Out {
        ok(&self.dir, args)
    }

    /// Runs a command that must succeed quietly; its output's text.
    #[track_caller]
    fn text<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        self.ok(args).text()
    }

    /// Runs a command that prints one id; the id.
    #[track_caller]
    fn id_of<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        let text = self.text(args);
        let id = text.trim().to_string();
        assert!(
            MsgId::parse(&id).is_some() && text.lines().count() == 1,
            "not one message id: {text}"
        );
        id
    }

    /// Imports everything `from` holds of its own feed.
    #[track_caller]
    fn import_from(&self, from: &Home) {
        let file = from.dir.with_extension(format!("{}.ndjson", self.short()));
        from.ok([
            OsStr::new("export"),
            "--author".as_ref(),
            from.id.as_ref(),
            file.as_ref(),
        ]);
        let out = self.ok([OsStr::new("import"), file.as_ref()]);
        assert!(out.text().starts_with("imported "), "{}", out.text());
    }

    fn short(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    /// `--json feed`: one object per line.
    #[track_caller]
    fn feed_json(&self) -> Vec<Json> {
        json_lines(&self.ok(["--json", "feed"]))
    }
}

#[track_caller]
fn json_lines(out: &Out) -> Vec<Json> {
    out.lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The index of the first line containing `needle`.
#[track_caller]
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[test]
fn a_conversation_across_homes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Home::new(tmp.path(), "a", 61);
    let b = Home::new(tmp.path(), "b", 62);
    let c = Home::new(tmp.path(), "c", 63);
    a.id_of(["name", "alice"]);
    let root = a.id_of(["post", "hello from alice"]);
    b.id_of(["name", "bob"]);
    b.id_of(["follow", &a.id]);
    b.import_from(&a);
    let reply = b.id_of(["reply", &root, "hi alice"]);
    b.id_of(["like", &root]);
    a.import_from(&b);

    // The thread, from A: root, then B's reply indented under it, by name.
    let t = a.text(["thread", &root]);
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines[0].starts_with("alice (") && lines[0].ends_with(&root),
        "{t}"
    );
    assert_eq!(lines[1], "  hello from alice", "{t}");
    assert_eq!(lines[2], "  1 reply · 1 like", "{t}");
    let r = line_of(&t, &reply);
    // A does not follow B: the reply is not marked unread for A.
    assert_eq!(r, 3, "{t}");
    assert!(lines[r].starts_with("  bob ("), "{t}");
    assert_eq!(lines[r + 1], "    hi alice", "{t}");
    // The same through --json: one entry per line, root first.
    let entries = json_lines(&a.ok(["--json", "thread", &root]));
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["key"], root.as_str());
    assert_eq!(
        (entries[0]["depth"].as_u64(), entries[1]["depth"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(entries[1]["key"], reply.as_str());
    assert_eq!(entries[1]["name"], "bob");
    assert_eq!(entries[1]["root"], root.as_str());
    // The thread of the reply is the same thread.
    assert_eq!(json_lines(&a.ok(["--json", "thread", &reply])), entries);

    // B's timeline: its reply (newest), then A's post with its counts; what
    // came from A is unread the first time only.
    let items = b.feed_json();
    let keys: Vec<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [reply.as_str(), root.as_str()]);
    assert_eq!(items[1]["name"], "alice");
    assert_eq!(
        (items[1]["replies"].as_u64(), items[1]["likes"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(items[1]["unread"], true);
    assert_eq!(items[0]["unread"], false, "our own posts are never unread");
    assert_eq!(b.feed_json()[1]["unread"], false);
    let second = a.id_of(["post", "second post"]);
    b.import_from(&a);
    let feed = b.text(["feed"]);
    let l = line_of(&feed, &second);
    assert_eq!(l, 0, "newest first:\n{feed}");
    assert!(
        feed.lines().next().unwrap().starts_with("* alice ("),
        "{feed}"
    );
    assert_eq!(
        feed.lines().filter(|l| l.starts_with("* ")).count(),
        1,
        "{feed}"
    );
    assert!(feed.contains("\n  second post\n"), "{feed}");
    assert!(feed.contains("  in reply to "), "{feed}");
    assert!(feed.contains("  1 reply · 1 like"), "{feed}");
    let again = b.text(["feed"]);
    assert!(!again.lines().any(|l| l.starts_with("* ")), "{again}");
    assert_eq!(again.lines().count(), feed.lines().count());
    // --limit.
    assert_eq!(
        json_lines(&b.ok(["--json", "feed", "--limit", "1"])).len(),
        1
    );
    // Unliking takes the like back.
    b.id_of(["like", "--undo", &root]);
    let items = b.feed_json();
    let root_item = items.iter().find(|i| i["key"] == root.as_str()).unwrap();
    assert_eq!(root_item["likes"], 0);
    assert_eq!(root_item["replies"], 1);

    // C replies in A's thread; B sees it, then blocks C and sees a note.
    c.import_from(&a);
    let troll = c.id_of(["reply", &root, "troll reply"]);
    b.import_from(&c);
    let t = b.text(["thread", &root]);
    assert!(t.contains(&troll) && t.contains("troll reply"), "{t}");
    assert!(!t.contains("hidden"), "{t}");
    b.id_of(["block", &c.id]);
    let t = b.text(["thread", &root]);
    assert!(!t.contains(&troll) && !t.contains("troll reply"), "{t}");
    assert!(t.contains(&reply), "{t}");
    assert_eq!(
        t.lines().last(),
        Some("(1 hidden: replies of feeds you block)"),
        "{t}"
    );
    let hidden = json_lines(&b.ok(["--json", "thread", &root]));
    assert_eq!(hidden.last().unwrap()["entry"], "hidden");
    assert_eq!(hidden.last().unwrap()["count"], 1);

    // Contacts: B follows A and blocks C; A is followed by B.
    let bc = b.text(["contacts"]);
    assert!(bc.starts_with(&format!("bob  {}\n", b.id)), "{bc}");
    assert!(
        bc.contains(&format!("follows (1)\n  alice  {}\n", a.id)),
        "{bc}"
    );
    assert!(bc.contains(&format!("blocks (1)\n  {}\n", c.id)), "{bc}");
    let ac = b.text(["contacts", &a.id]);
    assert!(
        ac.contains(&format!("followers (1)\n  bob  {}\n", b.id)),
        "{ac}"
    );
    let json = &json_lines(&b.ok(["--json", "contacts", &c.id]))[0];
    assert_eq!(json["contacts"]["blocked_by"][0]["id"], b.id.as_str());
    // A does not follow B: its contacts say so after importing B's unfollow.
    b.id_of(["unfollow", &a.id]);
    a.import_from(&b);
    let ac = a.text(["contacts"]);
    assert!(ac.contains("followers (0)"), "{ac}");
    // A profile shows the name and who else named the feed.
    let p = &json_lines(&a.ok(["--json", "profile"]))[0];
    assert_eq!(p["name"], "alice");
}

#[test]
fn private_messages_reach_their_recipients_only() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Home::new(tmp.path(), "a", 71);
    let b = Home::new(tmp.path(), "b", 72);
    let c = Home::new(tmp.path(), "c", 73);
    a.id_of(["name", "alice"]);
    let dm = a.id_of(["dm", "--to", &b.id, "just for bob"]);
    // The author reads it too.
    let mine = a.text(["get", &dm]);
    assert!(
        mine.contains(r#""decrypted":{"type":"post","text":"just for bob""#),
        "{mine}"
    );
    b.import_from(&a);
    c.import_from(&a);

    let inbox = b.text(["inbox"]);
    let lines: Vec<&str> = inbox.lines().collect();
    assert!(
        lines[0].starts_with("* alice (") && lines[0].ends_with(&dm),
        "{inbox}"
    );
    assert!(lines[1].starts_with("  private to "), "{inbox}");
    assert_eq!(lines[2], "  just for bob", "{inbox}");
    assert!(!b.text(["inbox"]).contains("* "), "read once shown");
    let got = b.text(["get", &dm]);
    let v: Json = serde_json::from_str(got.trim()).unwrap();
    assert_eq!(v["decrypted"]["text"], "just for bob");
    assert!(v["value"]["content"].as_str().unwrap().ends_with(".box"));
    let recps = v["decrypted"]["recps"].as_array().unwrap();
    assert!(
        recps.contains(&Json::from(a.id.as_str())) && recps.contains(&Json::from(b.id.as_str()))
    );
    // Not in the public timeline.
    let feed = shoal(&b.dir, ["feed"]);
    assert_eq!(feed.code, 0);
    assert!(feed.stdout.is_empty(), "{}", feed.text());

    // C holds the message but cannot read it.
    let out = shoal(&c.dir, ["inbox"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.is_empty(), "{}", out.text());
    assert_eq!(out.stderr, "no private messages\n");
    assert!(json_lines(&c.ok(["--json", "inbox"])).is_empty());
    let theirs = c.text(["get", &dm]);
    assert!(
        !theirs.contains("decrypted") && !theirs.contains("just for bob"),
        "{theirs}"
    );

    // B's reply stays private, in the DM's thread, for A and B only.
    let re = b.id_of(["reply", &dm, "got it"]);
    a.import_from(&b);
    c.import_from(&b);
    let t = a.text(["thread", &dm]);
    let r = line_of(&t, &re);
    assert!(r > line_of(&t, "just for bob"), "{t}");
    assert!(t.contains("    got it"), "{t}");
    let raw = a.text(["get", &re]);
    assert!(
        raw.contains(r#""decrypted":"#) && raw.contains(".box\""),
        "{raw}"
    );
    assert!(!c.text(["get", &re]).contains("decrypted"));
    let items = json_lines(&a.ok(["--json", "inbox"]));
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["key"], re.as_str());
    assert_eq!(items[0]["private"], true);

    // Seven others besides the author: the last of them reads it.
    let seven: Vec<Home> = (0..7)
        .map(|i| Home::new(tmp.path(), &format!("r{i}"), 80 + i))
        .collect();
    let to: Vec<&str> = seven.iter().map(|h| h.id.as_str()).collect();
    let to = to.join(",");
    let group = a.id_of(["dm", "--to", &to, "to seven"]);
    let last = &seven[6];
    last.import_from(&a);
    let v: Json = serde_json::from_str(last.text(["get", &group]).trim()).unwrap();
    assert_eq!(v["decrypted"]["text"], "to seven");
    let recps = v["decrypted"]["recps"].as_array().unwrap();
    assert_eq!(recps.len(), 8);
    assert!(
        recps.iter().any(|r| *r == a.id.as_str()),
        "the author is a recipient"
    );
    assert!(last.text(["inbox"]).contains("to seven"));

    // Eight besides the author, or a recipient that is not a feed id: usage
    // errors, and nothing published.
    let before = a.ok(["log"]).lines().len();
    let eight = format!("{to},{}", test_key(90).id());
    let err = one_line_error(&shoal(&a.dir, ["dm", "--to", &eight, "x"]), 2);
    assert!(
        err.contains("8 recipients") && err.contains("at most 7"),
        "{err}"
    );
    let err = one_line_error(&shoal(&a.dir, ["dm", "--to", "not-an-id", "x"]), 2);
    assert!(err.contains("not-an-id"), "{err}");
    let err = one_line_error(&shoal(&a.dir, ["dm", "--to", &a.id, "x"]), 2);
    assert!(err.contains("recipient"), "{err}");
    one_line_error(&shoal(&a.dir, ["dm", "x"]), 2);
    assert_eq!(a.ok(["log"]).lines().len(), before);
}

/// Issue 19: `thread` of a reply with replies of its own (a forked
/// thread) showed its root's thread, so those replies could not be
/// reached.
#[test]
fn a_forked_thread_shows_its_replies_and_where_it_forked_from() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Home::new(tmp.path(), "a", 76);
    let root = a.id_of(["post", "the first thread"]);
    let fork = a.id_of(["reply", &root, "a reply that grows its own thread"]);
    let f1 = a.id_of([
        "publish",
        &format!(r#"{{"type":"post","text":"in the fork","root":"{fork}","branch":"{fork}"}}"#),
    ]);
    // A reply to a reply in the fork stays in the fork.
    let f2 = a.id_of(["reply", &f1, "deeper in the fork"]);

    let t = a.text(["thread", &fork]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], format!("forked from {root}"), "{t}");
    assert!(lines[1].ends_with(&fork), "{t}");
    assert_eq!(lines[2], "  a reply that grows its own thread", "{t}");
    assert_eq!(lines[3], "  2 replies · 0 likes", "{t}");
    assert!(lines[line_of(&t, &f1)].starts_with("  "), "{t}");
    assert!(lines[line_of(&t, &f2)].starts_with("    "), "{t}");
    assert!(
        t.contains("deeper in the fork") && !t.contains("the first thread"),
        "{t}"
    );
    // From any of its replies, the same.
    assert_eq!(a.text(["thread", &f2]), t);
    let entries = json_lines(&a.ok(["--json", "thread", &fork]));
    assert_eq!(entries[0]["entry"], "forked");
    assert_eq!(entries[0]["from"], root.as_str());
    assert_eq!(entries[1]["key"], fork.as_str());
    assert_eq!(entries.len(), 4);

    // The root thread: the fork is an entry that says it has replies of
    // its own, and how to open them.
    let t = a.text(["thread", &root]);
    assert!(
        !t.contains("forked from") && !t.contains("in the fork"),
        "{t}"
    );
    let l = line_of(&t, &fork);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[l + 2],
        format!("    2 replies in its own thread: shoal thread {fork}"),
        "{t}"
    );
    let entries = json_lines(&a.ok(["--json", "thread", &root]));
    assert_eq!(entries[1]["own_thread"], 2);
    assert_eq!(entries[1]["replies"], 0);
}

#[test]
fn placeholders_and_malformed_content_are_shown_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Home::new(tmp.path(), "a", 75);
    let absent = MsgId([3; 32]).to_string();
    let reply = a.id_of(["reply", &absent, "into the void"]);
    let t = a.text(["thread", &reply]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        format!("(a message we do not have: {absent})"),
        "{t}"
    );
    assert!(
        lines[1].starts_with("  ") && lines[1].ends_with(&reply),
        "{t}"
    );
    assert_eq!(lines[2], "    into the void", "{t}");
    assert_eq!(a.text(["thread", &absent]), t);
    let entries = json_lines(&a.ok(["--json", "thread", &reply]));
    assert_eq!(entries[0]["entry"], "missing");
    assert_eq!(entries[0]["key"], absent.as_str());
    // A like of a message we do not hold is published all the same.
    a.id_of(["like", &absent]);

    // Content of the wrong types: published, shown raw with the reason.
    let bad = a.id_of(["publish", r#"{"type":"post","text":5}"#]);
    let feed = a.text(["feed"]);
    let l = line_of(&feed, &bad);
    let lines: Vec<&str> = feed.lines().collect();
    assert!(
        lines[l + 1].starts_with("  (unreadable content: post: field \"text\""),
        "{feed}"
    );
    let raw = lines[l + 2];
    assert!(
        raw.starts_with("  {") && raw.contains(r#""text":5"#) && raw.contains(r#""type":"post""#),
        "{feed}"
    );
    assert!(feed.contains("into the void"), "{feed}");
    let t = a.text(["thread", &bad]);
    assert!(
        t.contains("(unreadable content:") && t.contains(&bad),
        "{t}"
    );
    let items = a.feed_json();
    let item = items.iter().find(|i| i["key"] == bad.as_str()).unwrap();
    assert!(item["invalid"].as_str().unwrap().contains("text"));
    assert_eq!(item["content"]["text"], 5);
    // Unknown types are kept, not listed as posts, and read back.
    let other = a.id_of(["publish", r#"{"type":"gathering","when":1}"#]);
    assert!(!a.text(["feed"]).contains(&other));
    let t = a.text(["thread", &other]);
    assert!(t.contains(r#"{"type":"gathering","when":1}"#), "{t}");
}

#[test]
fn social_commands_through_a_running_node() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(tmp.path(), "n", &test_key(91));
    let b = Home::new(tmp.path(), "b", 92);
    node.start();
    let id = |out: Out| out.text().trim().to_string();
    id(node.ok(["name", "nora"]));
    let root = id(node.ok(["post", "through the node"]));
    let reply = id(node.ok(["reply", &root, "me again"]));
    id(node.ok(["like", &root]));
    let items = json_lines(&node.ok(["--json", "feed"]));
    let keys: Vec<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [reply.as_str(), root.as_str()]);
    assert_eq!(items[1]["name"], "nora");
    assert_eq!(
        (items[1]["replies"].as_u64(), items[1]["likes"].as_u64()),
        (Some(1), Some(1))
    );
    let t = node.ok(["thread", &reply]).text();
    assert!(
        t.starts_with("nora (") && t.contains("\n    me again"),
        "{t}"
    );
    id(node.ok(["follow", &b.id]));
    let dm = id(node.ok(["dm", "--to", &b.id, "hello b"]));
    let got = node.ok(["get", &dm]).text();
    assert!(
        got.contains(r#""decrypted":{"type":"post","text":"hello b""#),
        "{got}"
    );
    assert!(node.ok(["inbox"]).text().contains("hello b"));
    let contacts = node.ok(["contacts"]).text();
    assert!(
        contacts.contains(&format!("follows (1)\n  {}", b.id)),
        "{contacts}"
    );
    // Usage errors found by the node keep their exit code.
    let eight: Vec<String> = (100..108).map(|n| test_key(n).id().to_string()).collect();
    let err = one_line_error(&node.run(["dm", "--to", &eight.join(","), "x"]), 2);
    assert!(err.contains("at most 7"), "{err}");
    // What the node wrote reaches B through an export.
    let file = tmp.path().join("n.ndjson");
    node.ok([
        OsStr::new("export"),
        "--author".as_ref(),
        node.id.to_string().as_ref(),
        file.as_ref(),
    ]);
    b.ok([OsStr::new("import"), file.as_ref()]);
    let inbox = b.text(["inbox"]);
    assert!(
        inbox.starts_with("* nora (") && inbox.contains("hello b"),
        "{inbox}"
    );
    node.stop();
}
