//! Group benchmarks (GROUPS.md property 10 and the targets):
//!
//! 1. Rekey: the time to make the epoch that removes one member of a group
//!    of 100 and of 1,000 (one sealed slot per remaining member), and its
//!    bytes per remaining member. Pure core: a classic message holds about
//!    50 recipients (8,192 characters), see the README.
//! 2. Add: the time and bytes of adding one member to a group with 1 and
//!    with 100 epochs of history.
//! 3. Reading: a reader in 100 groups (5 other members each) stores 10,000
//!    group posts not meant for it, in batches of 1,000 as replication
//!    hands them over, beside the same messages stored by a reader in no
//!    group: half by strangers, half by feeds that share one group with
//!    the reader; and the worst case, an author in all 100 of its groups.
//!    Messages are verified beforehand; the time is the store's.
//!
//! 4. Judging operations: the time to apply one more epoch to a group
//!    with 1, 100 and 10,000 epochs of history (in place), and to judge the
//!    whole history from scratch (what reopening does).
//! 5. Hostile and heavy feeds in a real store (signed messages, ingested
//!    in batches of 1,000 by a member): 10,000 refresh epochs by a plain
//!    member (void) and by an admin (valid), their ingest and the reopen
//!    after; 10,000 group posts by a member and by a removed member.
//!
//! Run: `cargo bench --bench groups`. Prints one table; the README quotes
//! it. Median of several runs.

use std::time::{Duration, Instant};

use shoal::crypto::{FeedId, Keypair, MsgId};
use shoal::feed::{FeedState, Value, VerifiedMsg};
use shoal::private::groups::{self, GroupState, KeyStore, Position};
use shoal::store::{GroupOp, Store};

mod common;

use common::{author_key, sign_feed};

fn median(mut d: Vec<Duration>) -> f64 {
    d.sort();
    d[d.len() / 2].as_secs_f64() * 1000.0
}

fn pos_after(author: FeedId, state: Option<&FeedState>) -> Position {
    Position {
        author,
        sequence: state.map_or(1, |s| s.sequence + 1),
        previous: state.map(|s| s.id),
    }
}

/// The control message `author` sealed at `pos` (its own entry opens it).
fn opened(author: &Keypair, pos: &Position, content: &str) -> groups::Control {
    let own = KeyStore::new(author).pairwise(&author.id()).unwrap();
    groups::envelope::open_with(content, pos, &own)
        .unwrap()
        .into_control()
}

/// A message id standing in for the published control message.
fn fake_id(pos: &Position, content: &str) -> MsgId {
    let mut input = pos.author.0.to_vec();
    input.extend_from_slice(&pos.sequence.to_be_bytes());
    input.extend_from_slice(content.as_bytes());
    MsgId(shoal::crypto::sha256(&input))
}

/// The control messages and key store of a group `admin` made with
/// `members`, then `refreshes` more epochs.
fn group_with(
    admin: &Keypair,
    members: &[FeedId],
    refreshes: usize,
) -> (GroupState, KeyStore, Position, Vec<groups::ControlMsg>) {
    let mut keys = KeyStore::new(admin);
    let mut msgs = Vec::new();
    let mut pos = pos_after(admin.id(), None);
    let publish = |content: &str, pos: &mut Position, msgs: &mut Vec<groups::ControlMsg>| {
        let id = fake_id(pos, content);
        let body = opened(admin, pos, content);
        msgs.push(groups::ControlMsg {
            id,
            position: *pos,
            body,
        });
        *pos = Position {
            author: pos.author,
            sequence: pos.sequence + 1,
            previous: Some(id),
        };
        id
    };
    let e = groups::create(&keys, &pos, &[], &[]).unwrap();
    let g = publish(&e.content, &mut pos, &mut msgs);
    keys.insert_own(g, e.key);
    let mut state = GroupState::from_messages(g, &msgs);
    // Members are invited by adds of at most 60 (one entry each).
    for chunk in members.chunks(60) {
        let c = state.add(&keys, &pos, chunk, &[]).unwrap();
        publish(&c, &mut pos, &mut msgs);
        state.apply(msgs.last().unwrap().clone());
    }
    for _ in 0..refreshes {
        let e = state.rekey(&keys, &pos, &[]).unwrap();
        let id = publish(&e.content, &mut pos, &mut msgs);
        keys.insert_own(id, e.key);
        state.apply(msgs.last().unwrap().clone());
    }
    (state, keys, pos, msgs)
}

fn rekey_bench(n: usize) -> (f64, f64) {
    let admin = author_key(0);
    let members: Vec<FeedId> = (1..n).map(|i| author_key(i).id()).collect();
    let (state, keys, pos, _) = group_with(&admin, &members, 0);
    let runs = if n > 500 { 5 } else { 15 };
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let cut = groups::Cut {
            feed: members[0],
            seq: 0,
        };
        let e = state.rekey(&keys, &pos, &[cut]).unwrap();
        times.push(t.elapsed());
        bytes = shoal::crypto::b64_decode(e.content.strip_suffix(".boxg").unwrap())
            .unwrap()
            .len();
    }
    (median(times), bytes as f64 / (n - 1) as f64)
}

fn add_bench(history: usize) -> (f64, usize) {
    let admin = author_key(0);
    let members: Vec<FeedId> = (1..6).map(|i| author_key(i).id()).collect();
    let (state, keys, pos, _) = group_with(&admin, &members, history - 1);
    let newcomer = author_key(999).id();
    let mut times = Vec::new();
    let mut len = 0;
    for _ in 0..50 {
        let t = Instant::now();
        let c = state.add(&keys, &pos, &[newcomer], &[]).unwrap();
        times.push(t.elapsed());
        len = c.len();
    }
    (median(times), len)
}

/// Group posts by `author` in a group of its own that the reader is not in.
fn foreign_posts(author: &Keypair, n: usize) -> Vec<VerifiedMsg> {
    let mut keys = KeyStore::new(author);
    let mut state: Option<GroupState> = None;
    sign_feed(
        author,
        n,
        |s| 1_700_000_000_000.0 + s as f64,
        |s, st| {
            let pos = pos_after(author.id(), st);
            if s == 0 {
                let e = groups::create(&keys, &pos, &[], &[]).unwrap();
                // A stand-in for the group id (the real one is known only
                // once signed): nobody reads these posts here, the reader
                // only has to find that they are not for it.
                let id = fake_id(&pos, &e.content);
                keys.insert_own(id, e.key);
                let body = opened(author, &pos, &e.content);
                state = Some(GroupState::from_messages(
                    id,
                    &[groups::ControlMsg {
                        id,
                        position: pos,
                        body,
                    }],
                ));
                Value::from(e.content)
            } else {
                let text = format!("{{\"type\":\"post\",\"text\":\"{}\"}}", common::text_for(s));
                let c = state
                    .as_ref()
                    .unwrap()
                    .seal_post(&keys, &pos, text.as_bytes())
                    .unwrap();
                Value::from(c)
            }
        },
    )
}

/// A reader's store in `groups` groups with 5 other members each (members
/// `base..`); `shared` is put in every group too when given.
fn reader_store(
    dir: &std::path::Path,
    reader: &Keypair,
    groups: usize,
    shared: Option<FeedId>,
) -> Store {
    let store = Store::open_as(&dir.join("r.redb"), reader).unwrap();
    for g in 0..groups {
        let id = store
            .group_write(reader, &GroupOp::Create, None)
            .unwrap()
            .last()
            .unwrap()
            .id();
        let mut members: Vec<FeedId> = (0..5).map(|i| author_key(1000 + g * 5 + i).id()).collect();
        members.extend(shared);
        store
            .group_write(
                reader,
                &GroupOp::Add {
                    group: id,
                    members,
                    admins: vec![],
                },
                None,
            )
            .unwrap();
    }
    store
}

fn ingest_ms(store: &Store, msgs: &[VerifiedMsg]) -> f64 {
    let t = Instant::now();
    for chunk in msgs.chunks(1000) {
        store.ingest(chunk.to_vec()).unwrap();
    }
    t.elapsed().as_secs_f64() * 1000.0
}

fn read_bench() -> [(f64, f64); 2] {
    let reader = author_key(5000);
    // Typical: 5 strangers and 5 co-members (one shared group each), 1,000
    // posts each, interleaved.
    let mut feeds: Vec<Vec<VerifiedMsg>> = (0..5)
        .map(|i| foreign_posts(&author_key(6000 + i), 1000))
        .collect();
    feeds.extend((0..5).map(|i| foreign_posts(&author_key(1000 + i * 5), 1000)));
    let typical: Vec<VerifiedMsg> = (0..1000)
        .flat_map(|s| feeds.iter().map(move |f| f[s].clone()))
        .collect();
    // Worst: one author in all 100 of the reader's groups, 10,000 posts.
    let shared = author_key(7000);
    let worst = foreign_posts(&shared, 10_000);
    let mut out = [(0.0, 0.0); 2];
    for (i, (msgs, shared)) in [(&typical, None), (&worst, Some(shared.id()))]
        .into_iter()
        .enumerate()
    {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let d = tempfile::tempdir().unwrap();
            let s = reader_store(d.path(), &reader, 100, shared);
            with.push(Duration::from_secs_f64(ingest_ms(&s, msgs) / 1000.0));
            assert_eq!(s.groups().unwrap().len(), 100);
            let d = tempfile::tempdir().unwrap();
            let s = reader_store(d.path(), &reader, 0, None);
            without.push(Duration::from_secs_f64(ingest_ms(&s, msgs) / 1000.0));
        }
        out[i] = (median(with), median(without));
    }
    out
}

/// Applying one more epoch to `epochs` of history (ms, median), and
/// judging the whole history from scratch (ms).
fn apply_bench(epochs: usize) -> (f64, f64) {
    let admin = author_key(0);
    let members: Vec<FeedId> = (1..6).map(|i| author_key(i).id()).collect();
    let (state, keys, pos, msgs) = group_with(&admin, &members, epochs - 1);
    let e = state.rekey(&keys, &pos, &[]).unwrap();
    let id = fake_id(&pos, &e.content);
    let next = groups::ControlMsg {
        id,
        position: pos,
        body: opened(&admin, &pos, &e.content),
    };
    let mut times = Vec::new();
    for _ in 0..7 {
        let mut s = state.clone();
        let t = Instant::now();
        s.apply(next.clone());
        times.push(t.elapsed());
        assert_eq!(s.heads().into_iter().collect::<Vec<_>>(), vec![id]);
    }
    let mut whole = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let s = GroupState::from_messages(msgs[0].id, &msgs);
        whole.push(t.elapsed());
        assert_eq!(s.epochs().len(), epochs);
    }
    (median(times), median(whole))
}

/// The signed feed of `author`: each content made by `make` from the group
/// state and keys of `writer` (`author` itself, or an admin whose writer
/// a hostile member borrows), at the author's next position, with every
/// earlier message of the feed applied.
fn signed_ops(
    author: &Keypair,
    start: (GroupState, KeyStore),
    n: usize,
    mut make: impl FnMut(&GroupState, &KeyStore, &Position) -> (String, Option<groups::EpochKey>),
) -> Vec<VerifiedMsg> {
    let (mut state, mut keys) = start;
    let mut last: Option<(Position, String, Option<groups::EpochKey>)> = None;
    sign_feed(
        author,
        n,
        |s| 1_700_000_000_000.0 + s as f64,
        |_, st| {
            if let (Some((pos, c, key)), Some(st)) = (last.take(), st) {
                let own = keys.pairwise(&author.id()).unwrap();
                if let Ok(inner) = groups::envelope::open_with(&c, &pos, &own) {
                    state.apply(groups::ControlMsg {
                        id: st.id,
                        position: pos,
                        body: inner.into_control(),
                    });
                }
                if let Some(k) = key {
                    keys.insert_own(st.id, k);
                }
            }
            let pos = pos_after(author.id(), st);
            let (c, key) = make(&state, &keys, &pos);
            last = Some((pos, c.clone(), key));
            Value::from(c)
        },
    )
}

/// The admin's feed: a group with `members`, then the removal of
/// `remove` (cut before anything of theirs) when given.
fn admin_feed(admin: &Keypair, members: &[FeedId], remove: &[FeedId]) -> Vec<VerifiedMsg> {
    let mut out: Vec<VerifiedMsg> = Vec::new();
    let mut keys = KeyStore::new(admin);
    let mut msgs: Vec<groups::ControlMsg> = Vec::new();
    for s in 0..2 + usize::from(!remove.is_empty()) {
        let st = out.last().map(VerifiedMsg::state);
        let pos = pos_after(admin.id(), st.as_ref());
        let state = msgs.first().map(|g| GroupState::from_messages(g.id, &msgs));
        let (content, key) = match (s, state) {
            (0, _) => {
                let e = groups::create(&keys, &pos, &[], &[]).unwrap();
                (e.content, Some(e.key))
            }
            (1, Some(state)) => (state.add(&keys, &pos, members, &[]).unwrap(), None),
            (_, Some(state)) => {
                let cuts: Vec<groups::Cut> = remove
                    .iter()
                    .map(|f| groups::Cut { feed: *f, seq: 0 })
                    .collect();
                let e = state.rekey(&keys, &pos, &cuts).unwrap();
                (e.content, Some(e.key))
            }
            _ => unreachable!("the creation comes first"),
        };
        let ts = 1_700_000_000_000.0 + s as f64;
        let v = shoal::feed::build(admin, st.as_ref(), ts, Value::from(content.as_str()), None);
        let m = shoal::feed::validate(st.as_ref(), None, v).unwrap();
        if let Some(k) = key {
            keys.insert_own(m.id(), k);
        }
        msgs.push(groups::ControlMsg {
            id: m.id(),
            position: pos,
            body: opened(admin, &pos, &content),
        });
        out.push(m);
    }
    out
}

/// The view (state and keys) of `who` after the feed of `admin`.
fn view_of(who: &Keypair, admin: &Keypair, feed: &[VerifiedMsg]) -> (GroupState, KeyStore) {
    let mut msgs = Vec::new();
    for m in feed {
        let c = m.content().as_str().unwrap();
        let pos = Position {
            author: m.author(),
            sequence: m.sequence(),
            previous: m.previous(),
        };
        let body = opened(admin, &pos, c);
        msgs.push(groups::ControlMsg {
            id: m.id(),
            position: pos,
            body,
        });
    }
    let mut keys = KeyStore::new(who);
    keys.absorb(&msgs);
    (GroupState::from_messages(msgs[0].id, &msgs), keys)
}

/// Ingest (ms) of `base` then `load` into a fresh store of `reader` in
/// batches of 1,000, the reopen (ms) after, and how many group posts
/// the reader then shows.
fn store_bench(reader: &Keypair, base: &[VerifiedMsg], load: &[VerifiedMsg]) -> (f64, f64, usize) {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("r.redb");
    let store = Store::open_as(&path, reader).unwrap();
    store.ingest(base.to_vec()).unwrap();
    let ingest = ingest_ms(&store, load);
    drop(store);
    let t = Instant::now();
    let store = Store::open_as(&path, reader).unwrap();
    let groups = store.groups().unwrap();
    let reopen = t.elapsed().as_secs_f64() * 1000.0;
    let r = store.reader().unwrap();
    let mut view = shoal::social::View::new(&r).unwrap();
    let g = MsgId::parse(&groups[0].id).unwrap();
    let shown = view.group_posts(&g, None, 100_000).unwrap().len();
    (ingest, reopen, shown)
}

fn hostile_bench() -> [(f64, f64, usize); 4] {
    let (admin, member, removed, reader) = (
        author_key(8000),
        author_key(8001),
        author_key(8002),
        author_key(8003),
    );
    let members = [member.id(), removed.id(), reader.id()];
    let base = admin_feed(&admin, &members, &[]);
    let n = 10_000;
    // A plain member's refreshes, made with the admin's writer and sealed
    // as the member's own, so that every member opens (and judges) them.
    let admin_self = KeyStore::new(&admin).pairwise(&admin.id()).unwrap();
    let member_self = KeyStore::new(&member).pairwise(&member.id()).unwrap();
    let void_chain = signed_ops(&member, view_of(&admin, &admin, &base), n, |s, k, pos| {
        let as_admin = Position {
            author: admin.id(),
            ..*pos
        };
        let e = s.rekey(k, &as_admin, &[]).unwrap();
        let inner = groups::envelope::open_with(&e.content, &as_admin, &admin_self).unwrap();
        let members = groups::EntryKey::members(&k.post_key(&s.heads()).unwrap());
        let entries = [members, member_self.clone()];
        let sealed = groups::envelope::seal_control(&inner, pos, &entries).unwrap();
        (sealed, None)
    });
    // The admin's own chain.
    let admin_base = base[..2].to_vec();
    let admin_chain: Vec<VerifiedMsg> = {
        let start = view_of(&admin, &admin, &admin_base);
        signed_ops_after(&admin, start, &admin_base, n)
    };
    // Posts by a member, and by a removed member under the old key.
    let posts = signed_ops(&member, view_of(&member, &admin, &base), n, |s, k, pos| {
        let text = format!(
            "{{\"type\":\"post\",\"text\":\"{}\"}}",
            common::text_for(pos.sequence as usize)
        );
        (s.seal_post(k, pos, text.as_bytes()).unwrap(), None)
    });
    let with_removal = admin_feed(&admin, &members, &[removed.id()]);
    let void_posts = signed_ops(
        &removed,
        view_of(&removed, &admin, &base),
        n,
        |s, k, pos| {
            let text = format!(
                "{{\"type\":\"post\",\"text\":\"{}\"}}",
                common::text_for(pos.sequence as usize)
            );
            (s.seal_post(k, pos, text.as_bytes()).unwrap(), None)
        },
    );
    [
        store_bench(&reader, &base, &void_chain),
        store_bench(&reader, &admin_base, &admin_chain),
        store_bench(&reader, &base, &posts),
        store_bench(&reader, &with_removal, &void_posts),
    ]
}

/// The admin's chain of `n` refreshes continuing its feed `before`.
fn signed_ops_after(
    admin: &Keypair,
    start: (GroupState, KeyStore),
    before: &[VerifiedMsg],
    n: usize,
) -> Vec<VerifiedMsg> {
    let (mut state, mut keys) = start;
    let mut st = Some(before.last().unwrap().state());
    let mut out = Vec::new();
    for i in 0..n {
        let pos = pos_after(admin.id(), st.as_ref());
        let e = state.rekey(&keys, &pos, &[]).unwrap();
        let v = shoal::feed::build(
            admin,
            st.as_ref(),
            1_700_000_100_000.0 + i as f64,
            Value::from(e.content.as_str()),
            None,
        );
        let m = shoal::feed::validate(st.as_ref(), None, v).unwrap();
        keys.insert_own(m.id(), e.key);
        state.apply(groups::ControlMsg {
            id: m.id(),
            position: pos,
            body: opened(admin, &pos, &e.content),
        });
        st = Some(m.state());
        out.push(m);
    }
    out
}

fn main() {
    shoal::crypto::init();
    if std::env::var("SHOAL_BENCH_ONLY").as_deref() == Ok("hostile") {
        let [void_chain, admin_chain, posts, void_posts] = hostile_bench();
        println!("{void_chain:?}\n{admin_chain:?}\n{posts:?}\n{void_posts:?}");
        return;
    }
    let applied: Vec<(usize, f64, f64)> = [1, 100, 10_000]
        .into_iter()
        .map(|n| {
            let (one, whole) = apply_bench(n);
            (n, one, whole)
        })
        .collect();
    let [void_chain, admin_chain, posts, void_posts] = hostile_bench();
    let (r100, b100) = rekey_bench(100);
    let (r1000, b1000) = rekey_bench(1000);
    let (a1, l1) = add_bench(1);
    let (a100, l100) = add_bench(100);
    let [(typ_with, typ_without), (worst_with, worst_without)] = read_bench();
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| rekey removing 1 of 100 members | {r100:.2} ms, {b100:.0} bytes per remaining member | < 20 ms, about 100 bytes |"
    );
    println!(
        "| rekey removing 1 of 1,000 members | {r1000:.1} ms, {b1000:.0} bytes per remaining member | < 200 ms |"
    );
    println!("| add 1 member, 1 epoch of history | {a1:.3} ms, {l1} characters | same as 100 |");
    println!(
        "| add 1 member, 100 epochs of history | {a100:.3} ms, {l100} characters | same as 1 |"
    );
    println!(
        "| store 10,000 group posts not for us, reader in 100 groups (half by co-members) | {typ_with:.0} ms ({typ_without:.0} ms in no group) | < 100 ms of group work |"
    );
    println!(
        "| the same, worst case: author in all 100 groups | {worst_with:.0} ms ({worst_without:.0} ms in no group) | |"
    );
    for (n, one, whole) in applied {
        println!(
            "| apply one more epoch to {n} epochs of history | {one:.3} ms (judging all {n} from scratch: {whole:.1} ms) | near-linear |"
        );
    }
    let row = |what: &str, (ingest, reopen, shown): (f64, f64, usize), target: &str| {
        println!(
            "| {what} | ingest {ingest:.0} ms, reopen {reopen:.0} ms, {shown} posts shown | {target} |"
        );
    };
    row(
        "10,000 refresh epochs by a plain member (void)",
        void_chain,
        "< 5 s, reopen < 1 s",
    );
    row(
        "10,000 refresh epochs by an admin (valid, sealed to the reader)",
        admin_chain,
        "< 5 s, reopen < 1 s",
    );
    row("10,000 group posts by a member", posts, "");
    row(
        "10,000 group posts by a removed member, after its cut (void)",
        void_posts,
        "none shown",
    );
}
