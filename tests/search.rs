//! `shoal search`, as a person runs it:
//! - between running nodes: a post from another node is found within a
//!   second of being stored; a private message is found by its recipient
//!   and never by a node that cannot open it;
//! - without a node: names and descriptions are found; `--from`, `--in`,
//!   `--since` and `--limit` filter; matching words are marked; a query
//!   that does not parse is read word by word, an enormous one or a word
//!   too long is one line of error (exit 2), never a panic; bad filters
//!   likewise; deleting the index directory rebuilds it, and an index
//!   behind the store catches up.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::cli::{Out, init_home, ok, one_line_error, shoal};
use crate::common::test_key;
use crate::nodes::{ServeNode, wait_for};

fn hits(out: &Out) -> Vec<Json> {
    out.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn keys(out: &Out) -> Vec<String> {
    hits(out)
        .iter()
        .map(|h| h["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_post_from_another_node_is_found_within_a_second_and_a_dm_only_by_its_recipient() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = ServeNode::init(tmp.path(), "a", &test_key(0xa1));
    let mut b = ServeNode::init(tmp.path(), "b", &test_key(0xa2));
    let mut c = ServeNode::init(tmp.path(), "c", &test_key(0xa3));
    let (a_id, b_id, c_id) = (a.id.to_string(), b.id.to_string(), c.id.to_string());
    b.follow(&a_id);
    c.follow(&a_id);
    a.follow(&b_id);
    a.follow(&c_id);
    a.start();
    b.start();
    c.start();
    b.ok(["connect", a.address().as_str()]);
    c.ok(["connect", a.address().as_str()]);
    b.wait_count(&a_id, 2, 30);
    c.wait_count(&a_id, 2, 30);

    let post = a.post("the zeppelin lands at dawn");
    let dm = a
        .ok(["dm", "--to", &b_id, "meet me by the quince tree"])
        .text()
        .trim()
        .to_string();
    b.wait_count(&a_id, 4, 30);
    let stored = Instant::now();
    let found = wait_for(
        5,
        Duration::from_millis(20),
        "b to find the post",
        || {
            let out = b.ok(["--json", "search", "zeppelin"]);
            (keys(&out) == [post.clone()]).then(Instant::now)
        },
        || b.log_tail(20),
    );
    let took = found - stored;
    assert!(
        took < Duration::from_secs(1),
        "searchable {took:?} after it was seen stored"
    );
    // The recipient finds the private message, marked private.
    let out = b.ok(["--json", "search", "quince", "--in", "private"]);
    assert_eq!(keys(&out), [dm]);
    assert_eq!(hits(&out)[0]["kind"], "private");
    // A node that holds the box but cannot open it never finds it.
    c.wait_count(&a_id, 4, 30);
    std::thread::sleep(Duration::from_millis(1_200));
    assert!(keys(&c.ok(["--json", "search", "zeppelin"])) == [post.clone()]);
    assert!(c.ok(["--json", "search", "quince"]).text().is_empty());
    // Stopped, the node's home answers the same from its index.
    c.stop();
    assert_eq!(keys(&c.ok(["--json", "search", "zeppelin"])), [post]);
    assert!(c.ok(["--json", "search", "quince"]).text().is_empty());
}

#[test]
fn filters_marks_bad_queries_and_rebuilding_without_a_node() {
    let tmp = tempfile::tempdir().unwrap();
    let home = init_home(tmp.path(), "h", &test_key(0xb1));
    let id = |args: &[&str]| ok(&home, args).text().trim().to_string();
    id(&["name", "Orla Quarry"]);
    let first = id(&["post", "granite and slate and granite"]);
    let second = id(&["post", "slate roofs"]);
    // Names are searchable, and the stronger match ranks first.
    let named = hits(&ok(&home, ["--json", "search", "quarry"]));
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["content_type"], "about");
    let both = keys(&ok(&home, ["--json", "search", "slate"]));
    assert_eq!(both.len(), 2);
    let granite = keys(&ok(&home, ["--json", "search", "granite slate"]));
    assert_eq!(granite, [first]);
    // Marks, in the plain output.
    let text = ok(&home, ["search", "roofs"]).text();
    assert!(text.contains("slate [roofs]"), "{text}");
    assert!(text.contains(&second), "{text}");
    assert!(text.starts_with("Orla Quarry  "), "{text}");
    // Filters.
    let me = test_key(0xb1).id().to_string();
    let other = test_key(0xb2).id().to_string();
    assert_eq!(
        keys(&ok(&home, ["--json", "search", "slate", "--from", &me])).len(),
        2
    );
    assert!(
        ok(&home, ["--json", "search", "slate", "--from", &other])
            .text()
            .is_empty()
    );
    assert!(
        ok(&home, ["--json", "search", "slate", "--in", "group"])
            .text()
            .is_empty()
    );
    assert_eq!(
        keys(&ok(&home, ["--json", "search", "slate", "--limit", "1"])).len(),
        1
    );
    assert!(
        ok(
            &home,
            ["--json", "search", "slate", "--since", "2999-01-01"]
        )
        .text()
        .is_empty()
    );
    assert_eq!(
        keys(&ok(
            &home,
            ["--json", "search", "slate", "--since", "2020-01-01"]
        ))
        .len(),
        2
    );
    // Syntax errors: read word by word, with a note.
    let out = shoal(&home, ["search", "(slate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.text().matches(".sha256").count(), 2);
    assert!(
        out.stderr.contains("looked for as they are"),
        "{}",
        out.stderr
    );
    // Enormous queries, words too long, bad filters: one line, exit 2.
    let huge = "w ".repeat(600);
    for args in [
        vec!["search", huge.as_str()],
        vec!["search", &"x".repeat(41)],
        vec!["search", "!!!"],
        vec!["search", "slate", "--in", "secret"],
        vec!["search", "slate", "--since", "yesterday"],
        vec!["search", "slate", "--from", "nobody"],
    ] {
        let err = one_line_error(&shoal(&home, &args), 2);
        assert!(err.starts_with("error: "), "{err}");
    }
    // The index directory lost: rebuilt on the next search.
    std::fs::remove_dir_all(home.join("search")).unwrap();
    assert_eq!(keys(&ok(&home, ["--json", "search", "slate"])).len(), 2);
    // Behind the store: caught up.
    let third = id(&["post", "slate quarry news"]);
    assert!(keys(&ok(&home, ["--json", "search", "news"])) == [third]);
}
