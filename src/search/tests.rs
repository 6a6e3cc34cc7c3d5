//! Tests of the index over a real store in a temporary directory: the
//! hostile ones first (query syntax errors, enormous queries and words, a
//! feed flooding unique words), then ranking, filters, marks, private
//! messages, catching up, rebuilding, removing.

use std::collections::HashMap;

use super::*;
use crate::crypto::Keypair;
use crate::feed::{self, FeedState, json};
use crate::social::compose;
use crate::store::Outcome;

const T0: f64 = 1_600_000_000_000.0;

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

struct World {
    dir: tempfile::TempDir,
    store: Store,
    me: Keypair,
    states: HashMap<FeedId, FeedState>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let me = key(1);
        World {
            store: Store::open_as(&dir.path().join("store.redb"), &me).unwrap(),
            dir,
            me,
            states: HashMap::new(),
        }
    }

    fn index_dir(&self) -> PathBuf {
        self.dir.path().join("search")
    }

    fn index(&self) -> SearchIndex {
        let ix = SearchIndex::open(&self.index_dir(), &self.store).unwrap();
        ix.catch_up(&self.store).unwrap();
        ix
    }

    fn got(&mut self, who: &Keypair, ts: f64, content: Value) -> MsgId {
        let st = self.states.get(&who.id()).copied();
        let value = feed::build(who, st.as_ref(), ts, content, None);
        let m = feed::validate(st.as_ref(), None, value).unwrap();
        self.states.insert(who.id(), m.state());
        assert_eq!(
            self.store.ingest(vec![m.clone()]).unwrap(),
            [Outcome::Stored]
        );
        m.id()
    }

    fn post(&mut self, who: &Keypair, ts: f64, text: &str) -> MsgId {
        self.got(who, ts, compose::post(text))
    }
}

fn q(text: &str) -> SearchQuery {
    SearchQuery {
        text: text.into(),
        ..SearchQuery::default()
    }
}

fn keys(r: &Results) -> Vec<String> {
    r.hits.iter().map(|h| h.key.clone()).collect()
}

#[test]
fn syntax_errors_are_read_literally() {
    let mut w = World::new();
    let id = w.post(&key(2), T0, "apples and (pears");
    let ix = w.index();
    for bad in [
        "(pears",
        "pears)",
        "\"pears",
        "pears AND",
        "pears:",
        "rx:1",
        "[a TO",
        "^2 pears",
        "pears~",
        "-pears",
        "AND",
        "OR OR pears",
        "pears^",
        "a:b:c pears",
        "\"\"\" pears",
        "pears*",
        "{a TO b}",
    ] {
        let r = ix.search(&w.store, &q(bad)).unwrap_or_else(|e| {
            panic!("{bad:?}: {e}");
        });
        // Those whose only word is one of the post's find it.
        if !matches!(
            bad,
            "rx:1"
                | "[a TO"
                | "pears AND"
                | "^2 pears"
                | "-pears"
                | "AND"
                | "OR OR pears"
                | "a:b:c pears"
                | "pears*"
                | "*"
                | "{a TO b}"
        ) {
            assert_eq!(keys(&r), [id.to_string()], "{bad:?}");
        }
    }
    assert!(ix.search(&w.store, &q("(pears")).unwrap().literal);
    assert!(!ix.search(&w.store, &q("pears")).unwrap().literal);
}

#[test]
fn enormous_queries_and_words_are_refused() {
    let w = World::new();
    let ix = w.index();
    let long = "a".repeat(MAX_QUERY_BYTES + 1);
    assert!(matches!(
        ix.search(&w.store, &q(&long)),
        Err(SearchError::TooLong(_))
    ));
    let word = "b".repeat(MAX_WORD_BYTES + 1);
    let e = ix.search(&w.store, &q(&word)).unwrap_err();
    assert!(matches!(e, SearchError::WordTooLong(_)), "{e}");
    assert!(e.to_string().len() < 200, "one short line: {e}");
    let many = (0..MAX_QUERY_WORDS + 1)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(matches!(
        ix.search(&w.store, &q(&many)),
        Err(SearchError::TooManyWords(_))
    ));
    for empty in ["", "   ", "!!! ---", "\"\"", "*"] {
        assert!(
            matches!(ix.search(&w.store, &q(empty)), Err(SearchError::Empty)),
            "{empty:?}"
        );
    }
}

#[test]
fn a_feed_flooding_unique_words_is_bounded() {
    // The budget made small, so that the flood passes it.
    const BUDGET: u64 = 256 * 1024;
    let mut w = World::new();
    let flood = key(9);
    let before = w.index().stats().unwrap().bytes;
    // 100,000 unique words in 250 posts of 400.
    let mut n = 0u32;
    for p in 0..250 {
        let text: Vec<String> = (0..400)
            .map(|_| {
                n += 1;
                format!("zq{n:06}")
            })
            .collect();
        w.post(&flood, T0 + f64::from(p), &text.join(" "));
    }
    let calm = w.post(&key(3), T0, "a calm word: meadow");
    let ix = SearchIndex::open_with_budget(&w.index_dir(), &w.store, BUDGET).unwrap();
    ix.catch_up(&w.store).unwrap();
    // The first posts went in, up to the feed's budget; the rest did not.
    assert_eq!(ix.search(&w.store, &q("zq000001")).unwrap().hits.len(), 1);
    assert!(ix.search(&w.store, &q("zq099999")).unwrap().hits.is_empty());
    let docs = ix.stats().unwrap().docs;
    let post_bytes = 400 * 9;
    assert!(docs <= BUDGET / post_bytes + 2, "{docs} documents");
    // Others' posts stay searchable.
    assert_eq!(
        keys(&ix.search(&w.store, &q("meadow")).unwrap()),
        [calm.to_string()]
    );
    // The index grew by a small multiple of the budget, not with the flood.
    let grown = ix.stats().unwrap().bytes.saturating_sub(before);
    assert!(grown < 4 * BUDGET, "grew {grown} bytes");
    // The budget is for good: a rebuilt index keeps it the same.
    std::fs::remove_dir_all(w.index_dir()).unwrap();
    let again = SearchIndex::open_with_budget(&w.index_dir(), &w.store, BUDGET).unwrap();
    again.catch_up(&w.store).unwrap();
    assert_eq!(again.stats().unwrap().docs, docs);
}

#[test]
fn long_text_is_cut_and_long_words_dropped() {
    // A message is at most 8192 bytes of JSON, so the cut is checked on
    // the text alone.
    assert_eq!(cap("ab\u{e9}cd", 3), "ab");
    assert_eq!(
        cap(&"x".repeat(MAX_TEXT_BYTES * 2), MAX_TEXT_BYTES).len(),
        MAX_TEXT_BYTES
    );
    let mut w = World::new();
    let long = "c".repeat(MAX_WORD_BYTES + 5);
    w.post(&key(2), T0, &format!("early {long} late"));
    let ix = w.index();
    assert_eq!(ix.search(&w.store, &q("early late")).unwrap().hits.len(), 1);
    let exact = "d".repeat(MAX_WORD_BYTES);
    w.post(&key(2), T0, &format!("edge {exact}"));
    ix.catch_up(&w.store).unwrap();
    assert_eq!(ix.search(&w.store, &q(&exact)).unwrap().hits.len(), 1);
}

#[test]
fn ranking_puts_the_stronger_match_first() {
    let mut w = World::new();
    let weak = w.post(
        &key(2),
        T0 + 10.0,
        "a long ramble about the harbour, boats, nets, gulls, weather, tides, rope, paint, and once: lantern",
    );
    let strong = w.post(&key(3), T0, "lantern lantern lit");
    let ix = w.index();
    let r = ix.search(&w.store, &q("lantern")).unwrap();
    assert_eq!(keys(&r), [strong.to_string(), weak.to_string()]);
    assert!(r.hits[0].score > r.hits[1].score);
}

#[test]
fn every_word_must_match_and_words_are_marked() {
    let mut w = World::new();
    let both = w.post(&key(2), T0, "The Quick brown fox jumps");
    w.post(&key(2), T0 + 1.0, "a quick lunch");
    let ix = w.index();
    let r = ix.search(&w.store, &q("quick FOX")).unwrap();
    assert_eq!(keys(&r), [both.to_string()]);
    let h = &r.hits[0];
    let marked: Vec<&str> = h.marks.iter().map(|&(a, b)| &h.snippet[a..b]).collect();
    assert_eq!(marked, ["Quick", "fox"]);
    assert_eq!(h.kind, "public");
    assert_eq!(h.content_type, "post");
    // A short text is shown whole, its end too.
    let r = ix.search(&w.store, &q("lunch")).unwrap();
    assert_eq!(r.hits[0].snippet, "a quick lunch");
    // Of a long one, the part around the match, the word marked.
    let long = format!("{} needle {}", "hay ".repeat(100), "straw ".repeat(100));
    w.post(&key(3), T0, &long);
    ix.catch_up(&w.store).unwrap();
    let h = &ix.search(&w.store, &q("needle")).unwrap().hits[0];
    assert!(h.snippet.len() < long.len());
    let marked: Vec<&str> = h.marks.iter().map(|&(a, b)| &h.snippet[a..b]).collect();
    assert_eq!(marked, ["needle"]);
    // `OR` widens.
    assert_eq!(
        ix.search(&w.store, &q("lunch OR fox")).unwrap().hits.len(),
        2
    );
}

#[test]
fn filters_by_feed_kind_and_time_and_limits() {
    let mut w = World::new();
    let (a, b) = (key(2), key(3));
    let old = w.post(&a, T0, "tide one");
    let new = w.post(&a, T0 + 5_000.0, "tide two");
    let other = w.post(&b, T0 + 1.0, "tide three");
    let ix = w.index();
    let from = SearchQuery {
        from: Some(a.id()),
        ..q("tide")
    };
    let mut got = keys(&ix.search(&w.store, &from).unwrap());
    got.sort();
    let mut want = vec![old.to_string(), new.to_string()];
    want.sort();
    assert_eq!(got, want);
    let since = SearchQuery {
        since: Some(T0 as u64 + 1_000),
        ..q("tide")
    };
    assert_eq!(
        keys(&ix.search(&w.store, &since).unwrap()),
        [new.to_string()]
    );
    let limited = SearchQuery {
        limit: Some(1),
        ..q("tide")
    };
    assert_eq!(ix.search(&w.store, &limited).unwrap().hits.len(), 1);
    let private = SearchQuery {
        kind: Some(Kind::Private),
        ..q("tide")
    };
    assert!(ix.search(&w.store, &private).unwrap().hits.is_empty());
    let public = SearchQuery {
        kind: Some(Kind::Public),
        ..q("tide")
    };
    assert_eq!(ix.search(&w.store, &public).unwrap().hits.len(), 3);
    let _ = other;
}

#[test]
fn names_descriptions_and_private_messages_we_opened() {
    let mut w = World::new();
    let b = key(2);
    let about = json::parse(
        format!(
            r#"{{"type":"about","about":"{}","name":"Marisol","description":"keeps bees"}}"#,
            b.id()
        )
        .as_bytes(),
    )
    .unwrap();
    let named = w.got(&b, T0, about);
    let me = w.me.id();
    let dm = compose::dm(&b.id(), &[me], "secret orchard").unwrap();
    let private = w.got(&b, T0 + 1.0, dm);
    // A box to others only: we cannot open it, so it is not indexed.
    let other = compose::dm(&b.id(), &[key(5).id()], "hidden orchard").unwrap();
    w.got(&b, T0 + 2.0, other);
    let ix = w.index();
    assert_eq!(
        keys(&ix.search(&w.store, &q("bees")).unwrap()),
        [named.to_string()]
    );
    let r = ix.search(&w.store, &q("orchard")).unwrap();
    assert_eq!(keys(&r), [private.to_string()]);
    assert_eq!(r.hits[0].kind, "private");
    assert_eq!(r.hits[0].name.as_deref(), Some("Marisol"));
    assert!(ix.search(&w.store, &q("hidden")).unwrap().hits.is_empty());
}

#[test]
fn catches_up_rebuilds_and_removes() {
    let mut w = World::new();
    let first = w.post(&key(2), T0, "kelp forest");
    drop(w.index());
    // Behind the store: catches up on open.
    let second = w.post(&key(3), T0, "kelp bed");
    let ix = w.index();
    assert_eq!(ix.search(&w.store, &q("kelp")).unwrap().hits.len(), 2);
    assert_eq!(ix.stats().unwrap().indexed_rx, 2);
    drop(ix);
    // Lost: rebuilt.
    std::fs::remove_dir_all(w.index_dir()).unwrap();
    let ix = w.index();
    assert_eq!(ix.search(&w.store, &q("kelp")).unwrap().hits.len(), 2);
    drop(ix);
    // Unreadable: rebuilt.
    std::fs::write(w.index_dir().join("meta.json"), b"{not json").unwrap();
    let ix = w.index();
    assert_eq!(ix.search(&w.store, &q("kelp")).unwrap().hits.len(), 2);
    // Removed documents are not found.
    ix.remove(&[1]).unwrap();
    assert_eq!(
        keys(&ix.search(&w.store, &q("kelp")).unwrap()),
        [second.to_string()]
    );
    let _ = first;
    drop(ix);
    // Of another store: rebuilt from this one.
    let other = tempfile::tempdir().unwrap();
    let store2 = Store::open_as(&other.path().join("store.redb"), &w.me).unwrap();
    let ix = SearchIndex::open(&w.index_dir(), &store2).unwrap();
    ix.catch_up(&store2).unwrap();
    assert!(ix.search(&store2, &q("kelp")).unwrap().hits.is_empty());
}

/// A store of its own for `n`, with its index.
struct Person {
    keys: Keypair,
    store: Store,
    dir: tempfile::TempDir,
}

fn person(n: u8) -> Person {
    let dir = tempfile::tempdir().unwrap();
    let keys = key(n);
    Person {
        store: Store::open_as(&dir.path().join("s.redb"), &keys).unwrap(),
        keys,
        dir,
    }
}

impl Person {
    fn write(&self, op: crate::store::GroupOp) -> MsgId {
        let msgs = self.store.group_write(&self.keys, &op, None).unwrap();
        msgs.last().unwrap().id()
    }

    /// Every message of `from`'s own feed, in order, into this store.
    fn take_feed(&self, from: &Person) {
        let msgs = from.store.feed(&from.keys.id(), 0, usize::MAX).unwrap();
        let mut state: Option<FeedState> = None;
        let mut batch = Vec::new();
        for m in msgs {
            let v = json::parse(&m.json).unwrap();
            let msg = feed::validate(state.as_ref(), None, v).unwrap();
            state = Some(msg.state());
            batch.push(msg);
        }
        self.store.ingest(batch).unwrap();
    }

    fn find(&self, ix: &SearchIndex, text: &str) -> Vec<(String, String)> {
        ix.catch_up(&self.store).unwrap();
        ix.search(&self.store, &q(text))
            .unwrap()
            .hits
            .into_iter()
            .map(|h| (h.key, h.kind))
            .collect()
    }
}

#[test]
fn group_posts_are_found_by_members_even_when_their_key_comes_later() {
    use crate::store::GroupOp;
    let (a, b, c) = (person(101), person(102), person(103));
    let ix = |p: &Person| SearchIndex::open(&p.dir.path().join("search"), &p.store).unwrap();
    let (ixb, ixc) = (ix(&b), ix(&c));
    let g = a.write(GroupOp::Create);
    a.write(GroupOp::Add {
        group: g,
        members: vec![c.keys.id()],
        admins: vec![],
    });
    c.take_feed(&a);
    let post = c.write(GroupOp::Post {
        group: g,
        content: compose::post("the lighthouse keeper's log"),
    });
    // A member finds it, as a group post.
    assert_eq!(
        c.find(&ixc, "lighthouse"),
        [(post.to_string(), "group".to_string())]
    );
    let public = SearchQuery {
        kind: Some(Kind::Public),
        ..q("lighthouse")
    };
    assert!(ixc.search(&c.store, &public).unwrap().hits.is_empty());
    // B holds the box before it may read it: not found, not indexed.
    b.take_feed(&c);
    assert!(b.find(&ixb, "lighthouse").is_empty());
    let docs = ixb.stats().unwrap().docs;
    // Added, B gets the key: the post it passed opens, and is found.
    a.write(GroupOp::Add {
        group: g,
        members: vec![b.keys.id()],
        admins: vec![],
    });
    b.take_feed(&a);
    assert_eq!(
        b.find(&ixb, "lighthouse"),
        [(post.to_string(), "group".to_string())]
    );
    assert_eq!(ixb.stats().unwrap().docs, docs + 1);
    // Rebuilt from scratch, the same.
    drop(ixb);
    std::fs::remove_dir_all(b.dir.path().join("search")).unwrap();
    assert_eq!(
        b.find(&ix(&b), "lighthouse"),
        [(post.to_string(), "group".to_string())]
    );
}

#[test]
fn a_long_history_arriving_at_once_is_all_searchable() {
    // 800 posts of about 400 bytes arrive in one day: 320 KB, past the
    // per-day budget an earlier version had (256 KiB), within the feed's.
    let mut w = World::new();
    let friend = key(7);
    let filler = "sea ".repeat(95);
    for p in 0..800u32 {
        w.post(&friend, T0 + f64::from(p), &format!("{filler} mark{p:04}"));
    }
    let ix = w.index();
    assert_eq!(ix.search(&w.store, &q("mark0000")).unwrap().hits.len(), 1);
    assert_eq!(ix.search(&w.store, &q("mark0799")).unwrap().hits.len(), 1);
}
