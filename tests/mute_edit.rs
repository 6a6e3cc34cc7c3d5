//! Mutes and edits through the `shoal` binary, between homes that exchange
//! their feeds with `export` / `import`:
//! - `mute` a feed, a thread or a word hides them from `feed` and `inbox`
//!   and collapses them in `thread`; `unmute` brings everything back;
//!   `mutes` lists them; a mute is never published (the feed's length does
//!   not change, and what another home imports says nothing of it);
//! - `edit` publishes a revision as `ssb-revisions` writes it; `feed` and
//!   `thread` show the new text marked edited, never the revision as a
//!   post of its own; `history` lists the original then the revision;
//! - through two running, connected nodes: the mute goes through the
//!   node's writer and stays home (the peer holds exactly the messages
//!   published), the edit replicates and shows edited there;
//! - bad input is a one-line error: an empty or huge word, an id that is
//!   none, editing someone else's post, an unknown id or an empty text.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use shoal::crypto::{Keypair, MsgId};

use crate::cli::{Out, init_home, ok, one_line_error, shoal};
use crate::common::test_key;
use crate::nodes::ServeNode;

/// How long two connected nodes get to replicate a few messages.
const REPLICATION_SECS: u64 = 60;

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

    #[track_caller]
    fn text<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        ok(&self.dir, args).text()
    }

    #[track_caller]
    fn id_of<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        let text = self.text(args);
        let id = text.trim().to_string();
        assert!(MsgId::parse(&id).is_some(), "not a message id: {text}");
        id
    }

    fn run<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Out {
        shoal(&self.dir, args)
    }

    /// Exports its own feed; the file's lines.
    #[track_caller]
    fn export(&self, name: &str) -> (PathBuf, Vec<String>) {
        let file = self.dir.with_extension(format!("{name}.ndjson"));
        ok(
            &self.dir,
            [
                OsStr::new("export"),
                "--author".as_ref(),
                self.id.as_ref(),
                file.as_ref(),
            ],
        );
        let lines = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        (file, lines)
    }

    #[track_caller]
    fn import_from(&self, from: &Home, name: &str) {
        let (file, _) = from.export(name);
        let out = ok(&self.dir, [OsStr::new("import"), file.as_ref()]);
        assert!(out.text().starts_with("imported "), "{}", out.text());
    }

    #[track_caller]
    fn feed(&self) -> Vec<Json> {
        ok(&self.dir, ["--json", "feed"])
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn feed_texts(&self) -> Vec<String> {
        self.feed()
            .iter()
            .map(|i| i["text"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

#[test]
fn mutes_hide_locally_collapse_in_threads_and_are_never_published() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Home::new(tmp.path(), "a", 71);
    let b = Home::new(tmp.path(), "b", 72);
    let root = b.id_of(["post", "the root"]);
    b.id_of(["reply", &root, "a Spoiler inside"]);
    b.id_of(["post", "spoilers is another word"]);
    a.id_of(["follow", &b.id]);
    let mine = a.id_of(["post", "my own post"]);
    a.import_from(&b, "b1");
    let all = a.feed_texts();
    assert_eq!(all.len(), 4, "{all:?}");
    let (_, before) = a.export("a-before");

    // A word: whole words only, any case; a feed; a thread by any of its
    // messages.
    let out = a.text(["mute", "SPOILER"]);
    assert!(out.starts_with("muted word \"spoiler\""), "{out}");
    assert_eq!(
        a.feed_texts(),
        ["my own post", "spoilers is another word", "the root"]
    );
    let t = a.text(["thread", &root]);
    assert!(t.contains("\n  (1 muted)"), "{t}");
    let out = a.text(["mute", &b.id]);
    assert!(out.starts_with(&format!("muted feed {}", b.id)), "{out}");
    assert_eq!(a.feed_texts(), ["my own post"]);
    assert_eq!(
        a.text(["mute", &b.id]).trim(),
        format!("feed {} was muted already", b.id)
    );
    a.text(["mute", &mine]);
    assert!(a.feed().is_empty());
    // Opened directly, a muted thread still shows, with a note.
    let t = a.text(["thread", &mine]);
    assert!(t.starts_with("(this thread is muted"), "{t}");
    // A muted feed's profile opens; following is kept.
    assert!(a.text(["profile", &b.id]).contains(&b.id));
    let mutes = a.text(["mutes"]);
    assert_eq!(mutes.lines().count(), 3, "{mutes}");
    assert!(mutes.starts_with("word \"spoiler\"  (since "), "{mutes}");
    assert!(mutes.contains(&format!("thread {mine}")), "{mutes}");

    // Never published: our feed did not grow, and a home importing it
    // learns nothing of the mutes.
    let (_, after) = a.export("a-after");
    assert_eq!(before, after);
    assert!(
        !after
            .iter()
            .any(|l| l.contains("spoiler") || l.contains("mute"))
    );
    b.import_from(&a, "a1");
    let none = b.run(["mutes"]);
    assert_eq!((none.code, none.text().as_str()), (0, ""));
    assert_eq!(none.stderr, "nothing is muted\n");

    // Unmuting brings everything back: nothing was deleted.
    for target in ["spoiler", b.id.as_str(), mine.as_str()] {
        let out = a.text(["unmute", target]);
        assert!(out.starts_with("unmuted "), "{out}");
    }
    assert_eq!(a.feed_texts(), all);
    assert_eq!(
        a.text(["unmute", "spoiler"]).trim(),
        "word \"spoiler\" was not muted"
    );

    // Bad input: one line, exit 2.
    let e = one_line_error(&a.run(["mute", " "]), 2);
    assert!(e.contains("empty"), "{e}");
    let e = one_line_error(&a.run(["mute", &"x".repeat(65)]), 2);
    assert!(e.contains("at most 64"), "{e}");
    let e = one_line_error(&a.run(["mute", "@abc=.ed25519"]), 2);
    assert!(e.contains("--word"), "{e}");
    let blob = format!("&{}.sha256", "A".repeat(43) + "=");
    let e = one_line_error(&a.run(["mute", &blob]), 2);
    assert!(e.contains("blob"), "{e}");
    // --word takes anything as a word.
    a.text(["mute", "--word", "@abc=.ed25519"]);
}

#[test]
fn edits_show_the_latest_text_marked_edited_with_their_history() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Home::new(tmp.path(), "a", 73);
    let b = Home::new(tmp.path(), "b", 74);
    let root = a.id_of(["post", "helo world"]);
    let rev = a.id_of(["edit", &root, "hello world"]);
    assert_ne!(rev, root);
    // The revision, as ssb-revisions writes it.
    let got: Json = serde_json::from_str(&a.text(["get", &rev])).unwrap();
    let content = &got["value"]["content"];
    assert_eq!(content["type"], "post");
    assert_eq!(content["text"], "hello world");
    assert_eq!(content["revisionRoot"], root.as_str());
    assert_eq!(content["revisionBranch"], root.as_str());
    // A second edit branches from the first.
    let rev2 = a.id_of(["edit", &root, "hello, world"]);
    let got: Json = serde_json::from_str(&a.text(["get", &rev2])).unwrap();
    assert_eq!(got["value"]["content"]["revisionBranch"], rev.as_str());

    // The timeline shows the post once, with its latest text, edited.
    let feed = a.feed();
    assert_eq!(feed.len(), 1, "{feed:?}");
    assert_eq!(feed[0]["key"], root.as_str());
    assert_eq!(feed[0]["text"], "hello, world");
    assert_eq!(feed[0]["edited"], true);
    assert_eq!(feed[0]["revisions"], 2);
    let text = a.text(["feed"]);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(&format!("{root} · edited")),
        "{text}"
    );
    let t = a.text(["thread", &root]);
    assert!(t.contains("· edited\n  hello, world"), "{t}");
    // The history: the original, then each revision, oldest first.
    let h = a.text(["history", &rev2]);
    let heads: Vec<&str> = h.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(heads.len(), 3, "{h}");
    assert!(
        heads[0].starts_with("original · ") && heads[0].ends_with(&root),
        "{h}"
    );
    assert!(
        heads[1].starts_with("revision 1 · ") && heads[1].ends_with(&rev),
        "{h}"
    );
    assert!(
        heads[2].starts_with("revision 2 · ") && heads[2].ends_with(&rev2),
        "{h}"
    );
    assert!(h.contains("\n  helo world\n"), "{h}");

    // Another home sees the edit too.
    b.id_of(["follow", &a.id]);
    b.import_from(&a, "a1");
    let feed = b.feed();
    let texts: Vec<&str> = feed.iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["hello, world"]);

    // Refused: someone else's post, an unknown id, an empty text.
    let e = one_line_error(&b.run(["edit", &root, "mine now"]), 2);
    assert!(e.contains("not yours"), "{e}");
    let unknown = MsgId([5; 32]).to_string();
    let e = one_line_error(&a.run(["edit", &unknown, "x"]), 1);
    assert!(e.contains("not in the store"), "{e}");
    let e = one_line_error(&a.run(["edit", &root, ""]), 2);
    assert!(e.contains("empty"), "{e}");
    let e = one_line_error(&a.run(["history", &unknown]), 1);
    assert!(e.contains("not in the store"), "{e}");
}

#[test]
fn through_running_nodes_a_mute_stays_home_and_an_edit_replicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(dir.path(), "a", &test_key(0x75));
    let mut b = ServeNode::init(dir.path(), "b", &test_key(0x76));
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());
    a.follow(&b_id);
    b.follow(&a_id);
    b.post("b says hi");
    let root = a.post("helo");
    a.start();
    b.start();
    a.ok(["connect", b.address().as_str()]);
    a.wait_count(&b_id, 2, REPLICATION_SECS);
    b.wait_count(&a_id, 2, REPLICATION_SECS);

    let out = a.ok(["mute", &b_id]).text();
    assert!(out.starts_with("muted feed "), "{out}");
    let feed = a.ok(["feed"]).text();
    assert!(
        !feed.contains("b says hi") && feed.contains("helo"),
        "{feed}"
    );
    assert_eq!(a.count(&a_id), 2, "a mute is no message");

    let rev = a.ok(["edit", &root, "hello"]).text().trim().to_string();
    assert!(MsgId::parse(&rev).is_some(), "{rev}");
    b.wait_count(&a_id, 3, REPLICATION_SECS);
    assert_eq!(b.count(&a_id), 3, "b holds exactly what a published");
    let line = b.ok(["--json", "feed"]).text();
    let items: Vec<Json> = line
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let edited = items.iter().find(|i| i["key"] == root.as_str()).unwrap();
    assert_eq!(
        (edited["text"].as_str(), edited["edited"].as_bool()),
        (Some("hello"), Some(true))
    );
    assert!(!items.iter().any(|i| i["key"] == rev.as_str()), "{line}");
    assert_eq!(b.run(["mutes"]).text(), "");
    assert_eq!(a.ok(["mutes"]).text().lines().count(), 1);
    a.ok(["unmute", &b_id]);
    assert!(a.ok(["feed"]).text().contains("b says hi"));
    a.stop();
    b.stop();
}
