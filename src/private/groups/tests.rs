//! Tests of the group core: formats, the reader path, and the properties of
//! GROUPS.md (numbers as there). Identities come from fixed seeds; message
//! ids are sha256 of (author, sequence, content), standing in for signed
//! messages, which the core never sees.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;

use super::keys::open_back;
use super::*;
use crate::crypto::{FeedId, Keypair, MsgId, ed25519_pk_to_curve25519, sealed_box_seal, sha256};

fn kp(n: u8) -> Keypair {
    let mut seed = [n; 32];
    seed[0] = 0x67;
    Keypair::from_seed(&seed)
}

/// Feeds, their published control messages and every actor's key store.
struct World {
    last: HashMap<FeedId, (u64, MsgId)>,
    msgs: Vec<ControlMsg>,
    keys: HashMap<FeedId, KeyStore>,
    group: Option<MsgId>,
}

impl World {
    fn new(actors: &[&Keypair]) -> World {
        World {
            last: HashMap::new(),
            msgs: Vec::new(),
            keys: actors.iter().map(|k| (k.id(), KeyStore::new(k))).collect(),
            group: None,
        }
    }

    fn group(&self) -> MsgId {
        self.group.expect("group created")
    }

    fn next(&self, author: FeedId) -> Position {
        let (sequence, previous) = match self.last.get(&author) {
            Some((seq, id)) => (seq + 1, Some(*id)),
            None => (1, None),
        };
        Position {
            author,
            sequence,
            previous,
        }
    }

    /// Appends content to its author's feed; returns its id.
    fn publish(&mut self, pos: Position, content: &str) -> MsgId {
        assert_eq!(pos, self.next(pos.author), "published in order");
        let mut input = pos.author.0.to_vec();
        input.extend_from_slice(&pos.sequence.to_be_bytes());
        input.extend_from_slice(content.as_bytes());
        let id = MsgId(sha256(&input));
        self.last.insert(pos.author, (pos.sequence, id));
        id
    }

    /// The inner message of a sealed control message, opened by its author.
    fn open(&self, pos: &Position, content: &str) -> GroupContent {
        let own = self.keys[&pos.author].pairwise(&pos.author).unwrap();
        envelope::open_with(content, pos, &own).expect("the author opens its own message")
    }

    /// A control message sealed at `pos` for its author alone (what forged
    /// messages need here: the core tests hand messages over opened).
    fn seal(&self, pos: &Position, inner: &GroupContent) -> String {
        let own = self.keys[&pos.author].pairwise(&pos.author).unwrap();
        envelope::seal_control(inner, pos, &[own]).unwrap()
    }

    /// Publishes a control message and lets every key store see it.
    fn publish_control(&mut self, pos: Position, content: &str) -> MsgId {
        let body = self.open(&pos, content).into_control();
        let id = self.publish(pos, content);
        let msg = ControlMsg {
            id,
            position: pos,
            body,
        };
        for ks in self.keys.values_mut() {
            ks.absorb([&msg]);
        }
        self.msgs.push(msg);
        id
    }

    fn publish_epoch(&mut self, pos: Position, e: NewEpoch) -> MsgId {
        let id = self.publish_control(pos, &e.content);
        self.keys
            .get_mut(&pos.author)
            .unwrap()
            .insert_own(id, e.key);
        id
    }

    fn create(&mut self, creator: FeedId, members: &[FeedId], admins: &[FeedId]) -> MsgId {
        let pos = self.next(creator);
        let e = create(&self.keys[&creator], &pos, members, admins).unwrap();
        let id = self.publish_epoch(pos, e);
        self.group = Some(id);
        id
    }

    fn state(&self) -> GroupState {
        GroupState::from_messages(self.group(), &self.msgs)
    }

    /// Every feed cut at its last message published so far (what a
    /// remover that has replicated everything has seen).
    fn cuts(&self, feeds: &[FeedId]) -> Vec<Cut> {
        feeds
            .iter()
            .map(|f| Cut {
                feed: *f,
                seq: self.last.get(f).map_or(0, |(s, _)| *s),
            })
            .collect()
    }

    fn rekey(&mut self, who: FeedId, view: &GroupState, removed: &[FeedId]) -> MsgId {
        let pos = self.next(who);
        let cuts = self.cuts(removed);
        let e = view.rekey(&self.keys[&who], &pos, &cuts).unwrap();
        self.publish_epoch(pos, e)
    }

    fn add(&mut self, who: FeedId, view: &GroupState, new: &[FeedId]) -> MsgId {
        let pos = self.next(who);
        let c = view.add(&self.keys[&who], &pos, new, &[]).unwrap();
        self.publish_control(pos, &c)
    }

    /// A post by `who` under its current view; returns where it sits.
    fn post(&mut self, who: FeedId, text: &str) -> (Position, Post) {
        let pos = self.next(who);
        let c = self
            .state()
            .seal_post(&self.keys[&who], &pos, text.as_bytes())
            .unwrap();
        self.publish(pos, &c);
        (pos, post_of(&c))
    }

    fn reads(&self, who: FeedId, post: &(Position, Post)) -> Result<Vec<u8>, GroupError> {
        self.keys[&who].open_post(&self.state(), &post.1, &post.0)
    }
}

/// The post a content string holds.
fn post_of(content: &str) -> Post {
    envelope::as_post(&envelope::decode(content).unwrap()).unwrap()
}

fn ids(kps: &[&Keypair]) -> Vec<FeedId> {
    kps.iter().map(|k| k.id()).collect()
}

#[test]
fn formats_round_trip_and_refuse_garbage() {
    let (a, b) = (kp(1), kp(2));
    let mut w = World::new(&[&a, &b]);
    w.create(a.id(), &[b.id()], &[]);
    let s = w.state();
    let pos = w.next(a.id());
    let ka = &w.keys[&a.id()];
    let e = s.rekey(ka, &pos, &[]).unwrap();
    let add = s.add(ka, &pos, &[kp(3).id()], &[]).unwrap();
    let fwd = s
        .forward(ka, &pos, &b.id(), w.group(), &[w.group()])
        .unwrap();
    let bpos = w.next(b.id());
    let req = s.request(&w.keys[&b.id()], &bpos, &[w.group()]).unwrap();
    let roles = s.roles(ka, &pos, &[b.id()], &[]).unwrap();
    let post = s.seal_post(ka, &pos, b"{}").unwrap();
    for (c, at) in [
        (&e.content, pos),
        (&add, pos),
        (&fwd, pos),
        (&req, bpos),
        (&roles, pos),
    ] {
        assert!(is_group_content(c));
        assert!(!crate::private::is_boxed(c));
        let parsed = w.open(&at, c);
        let bytes = parsed.to_bytes().unwrap();
        assert_eq!(GroupContent::from_bytes(&bytes).as_ref(), Ok(&parsed));
        for len in 0..bytes.len() {
            assert!(
                GroupContent::from_bytes(&bytes[..len]).is_err(),
                "prefix {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            GroupContent::from_bytes(&long),
            Err(GroupError::Malformed("trailing bytes"))
        );
        // Nobody else finds an entry in it: not b (for a's own messages),
        // not an outsider.
        let outsider = KeyStore::new(&kp(9));
        let raw = envelope::decode(c).unwrap();
        assert!(envelope::find_entry(&raw, &at, &outsider.pairwise(&at.author).unwrap()).is_none());
    }
    // Post overhead: tag, nonce, AEAD tag.
    let post_len = envelope::decode(&post).unwrap().len();
    assert_eq!(post_len, 2 + POST_OVERHEAD);
    const { assert!(POST_OVERHEAD <= 64) };
    assert_eq!(envelope::decode("x.box"), Err(GroupError::NotGroupContent));
    assert_eq!(envelope::decode("!!.boxg"), Err(GroupError::BadBase64));
    assert_eq!(
        GroupContent::from_bytes(&[9]),
        Err(GroupError::UnknownKind(9))
    );
    assert_eq!(GroupContent::from_bytes(&[]), Err(GroupError::Truncated));
}

/// What a feed shows to someone not in the group: no kind, no group, no
/// feed ids. Every message is random-looking bytes; the ids of the members
/// appear nowhere in them, and an outsider finds no entry.
#[test]
fn an_outsider_learns_only_that_a_group_message_exists() {
    let (a, b, c, x) = (kp(1), kp(2), kp(3), kp(4));
    let mut w = World::new(&[&a, &b, &c, &x]);
    let pos = w.next(a.id());
    let created = create(&w.keys[&a.id()], &pos, &[b.id()], &[]).unwrap();
    let mut contents = vec![(pos, created.content.clone())];
    let g = w.publish_epoch(pos, created);
    w.group = Some(g);
    let s = w.state();
    let pos = w.next(a.id());
    let add = s.add(&w.keys[&a.id()], &pos, &[c.id()], &[]).unwrap();
    w.publish_control(pos, &add);
    contents.push((pos, add));
    let s = w.state();
    let pos = w.next(a.id());
    let cuts = w.cuts(&[b.id()]);
    let removal = s.rekey(&w.keys[&a.id()], &pos, &cuts).unwrap();
    contents.push((pos, removal.content.clone()));
    w.publish_epoch(pos, removal);
    let (ppos, post) = w.post(c.id(), "hello");
    contents.push((ppos, envelope::post_content(&post)));
    let stranger = KeyStore::new(&x);
    for (pos, content) in &contents {
        let raw = envelope::decode(content).unwrap();
        for id in [a.id(), b.id(), kp(3).id(), FeedId(g.0)] {
            assert!(
                !raw.windows(32).any(|win| win == id.0),
                "a feed id or the group id shows"
            );
        }
        assert!(
            envelope::find_entry(&raw, pos, &stranger.pairwise(&pos.author).unwrap()).is_none()
        );
    }
}

#[test]
fn epoch_costs_about_a_hundred_bytes_per_member() {
    let people: Vec<Keypair> = (1..=21).map(kp).collect();
    let mut w = World::new(&[&people[0]]);
    let others: Vec<FeedId> = people[1..].iter().map(Keypair::id).collect();
    w.create(people[0].id(), &others, &[]);
    let s = w.state();
    let pos = w.next(people[0].id());
    let e = s
        .rekey(&w.keys[&people[0].id()], &pos, &w.cuts(&others[..1]))
        .unwrap();
    let bytes = envelope::decode(&e.content).unwrap().len();
    // 20 remaining members: 32-byte id + 80-byte slot each, plus fixed parts
    // and the envelope (nonce, three entries, AEAD tag).
    let envelope = 24 + 3 * envelope::ENTRY_LEN + 16;
    assert!(bytes <= 20 * 112 + 300 + envelope, "{bytes} bytes");
}

#[test]
fn members_post_and_read_through_a_tag_lookup() {
    let (a, b, c) = (kp(1), kp(2), kp(3));
    let mut w = World::new(&[&a, &b, &c]);
    w.create(a.id(), &[b.id()], &[]);
    let p = w.post(b.id(), r#"{"type":"post","text":"hi"}"#);
    assert_eq!(
        w.reads(a.id(), &p).unwrap(),
        br#"{"type":"post","text":"hi"}"#
    );
    assert_eq!(w.reads(c.id(), &p), Err(GroupError::NoKeyForTag));
    // The reader's map: one lookup, one AEAD open.
    let state = w.state();
    let index = TagIndex::new(
        w.keys[&a.id()].post_keys(&state),
        [(b.id(), 1), (b.id(), 2), (a.id(), 2)],
    );
    assert!(index.find(&p.1).is_some());
    assert!(index.open(&p.1, &p.0).is_ok());
    let stranger = TagIndex::new(w.keys[&c.id()].post_keys(&state), [(b.id(), 1)]);
    assert_eq!(stranger.open(&p.1, &p.0), Err(GroupError::NoKeyForTag));
    // Outsiders and removed members cannot write.
    let pos = w.next(c.id());
    assert_eq!(
        state.seal_post(&w.keys[&c.id()], &pos, b"x"),
        Err(GroupError::AuthorNotMember(c.id()))
    );
}

/// Property 4: remove(x) || remove(y) excludes both with no extra message.
#[test]
fn concurrent_removals_merge_with_no_extra_message() {
    let (a, b, x, y, m) = (kp(1), kp(2), kp(3), kp(4), kp(5));
    let mut w = World::new(&[&a, &b, &x, &y, &m]);
    w.create(a.id(), &ids(&[&x, &y, &m]), &[b.id()]);
    let s0 = w.state();
    let e1 = w.rekey(a.id(), &s0, &[x.id()]);
    let e2 = w.rekey(b.id(), &s0, &[y.id()]);
    let s = w.state();
    assert_eq!(s.members(), ids(&[&a, &b, &m]).into_iter().collect());
    assert_eq!(s.heads(), BTreeSet::from([e1, e2]));
    assert!(w.keys[&x.id()].has(&e2) && !w.keys[&x.id()].has(&e1));
    assert!(w.keys[&y.id()].has(&e1) && !w.keys[&y.id()].has(&e2));
    for who in [&a, &b, &m] {
        assert!(w.keys[&who.id()].post_key(&s.heads()).is_some());
    }
    let p = w.post(m.id(), "after both");
    for who in [&a, &b] {
        assert_eq!(w.reads(who.id(), &p).unwrap(), b"after both");
    }
    for who in [&x, &y] {
        assert!(w.keys[&who.id()].post_key(&s.heads()).is_none());
        assert_eq!(w.reads(who.id(), &p), Err(GroupError::NoKeyForTag));
    }
}

/// A post written under two concurrent heads stays readable after a later
/// epoch merges them (its parents are a candidate set of heads).
#[test]
fn posts_under_merged_heads_stay_readable_after_a_merge() {
    let (a, b, m) = (kp(1), kp(2), kp(5));
    let mut w = World::new(&[&a, &b, &m]);
    w.create(a.id(), &[m.id()], &[b.id()]);
    let s0 = w.state();
    let e1 = w.rekey(a.id(), &s0, &[]);
    let e2 = w.rekey(b.id(), &s0, &[]);
    let before = w.post(m.id(), "under two heads");
    let merged = w.state();
    assert_eq!(merged.heads(), BTreeSet::from([e1, e2]));
    let e3 = w.rekey(a.id(), &merged, &[]);
    assert_eq!(w.state().heads(), BTreeSet::from([e3]));
    let after = w.post(m.id(), "under one head");
    for who in [&a, &b] {
        assert_eq!(w.reads(who.id(), &before).unwrap(), b"under two heads");
        assert_eq!(w.reads(who.id(), &after).unwrap(), b"under one head");
    }
}

/// Property 4: remove(x) || refresh excludes x.
#[test]
fn removal_concurrent_with_refresh_excludes() {
    let (a, x, m) = (kp(1), kp(3), kp(5));
    let mut w = World::new(&[&a, &x, &m]);
    w.create(a.id(), &ids(&[&x]), &[m.id()]);
    let s0 = w.state();
    let e1 = w.rekey(a.id(), &s0, &[x.id()]);
    let e2 = w.rekey(m.id(), &s0, &[]);
    let s = w.state();
    assert_eq!(s.members(), ids(&[&a, &m]).into_iter().collect());
    assert_eq!(s.heads(), BTreeSet::from([e1, e2]));
    assert!(w.keys[&x.id()].has(&e2));
    let p = w.post(a.id(), "secret");
    assert_eq!(w.reads(m.id(), &p).unwrap(), b"secret");
    assert_eq!(w.reads(x.id(), &p), Err(GroupError::NoKeyForTag));
}

/// Two admins removing each other concurrently: the senior one's removal
/// holds and the junior's is void, so the group keeps an admin.
#[test]
fn mutual_removal_keeps_the_senior_admin() {
    let (a, b, m, n) = (kp(1), kp(2), kp(5), kp(6));
    let mut w = World::new(&[&a, &b, &m, &n]);
    w.create(a.id(), &ids(&[&m, &n]), &[b.id()]);
    let s0 = w.state();
    // b's writer refuses to remove a senior: the attacker writes it by hand.
    let pos = w.next(b.id());
    let cuts = w.cuts(&[a.id()]);
    assert_eq!(
        s0.rekey(&w.keys[&b.id()], &pos, &cuts).unwrap_err(),
        GroupError::NotSenior(a.id())
    );
    let refresh = s0.rekey(&w.keys[&b.id()], &pos, &[]).unwrap();
    let GroupContent::Epoch(mut forged) = w.open(&pos, &refresh.content) else {
        panic!("an epoch")
    };
    let i = forged.recipients.iter().position(|r| *r == a.id()).unwrap();
    forged.recipients.remove(i);
    forged.slots.remove(i);
    forged.removed = cuts;
    let ea = w.rekey(a.id(), &s0, &[b.id()]);
    let forged = w.seal(&pos, &GroupContent::Epoch(forged));
    let eb = w.publish_control(pos, &forged);
    let s = w.state();
    assert_eq!(s.members(), ids(&[&a, &m, &n]).into_iter().collect());
    assert_eq!(s.admins(), BTreeSet::from([a.id()]));
    assert_eq!(s.heads(), BTreeSet::from([ea]));
    assert!(matches!(
        s.rejected().get(&eb),
        Some(GroupError::AfterRemoval(_) | GroupError::NotSenior(_))
    ));
    let p = w.post(m.id(), "without b");
    assert_eq!(w.reads(a.id(), &p).unwrap(), b"without b");
    assert_eq!(w.reads(n.id(), &p).unwrap(), b"without b");
    assert_eq!(w.reads(b.id(), &p), Err(GroupError::NoKeyForTag));
    // The junior cannot even write it with the senior's removal unseen and
    // its own cut not yet made: seniority alone refuses it.
    let mut fresh = World::new(&[&a, &b]);
    fresh.create(a.id(), &[], &[b.id()]);
    let s = fresh.state();
    let pos = fresh.next(b.id());
    let cuts = fresh.cuts(&[a.id()]);
    assert_eq!(
        s.rekey(&fresh.keys[&b.id()], &pos, &cuts).unwrap_err(),
        GroupError::NotSenior(a.id())
    );
}

/// Removal wins over a concurrent add of the same feed; a re-add after the
/// removal counts.
#[test]
fn removal_wins_over_concurrent_add_and_readd_follows_it() {
    let (a, b, c, z) = (kp(1), kp(2), kp(3), kp(7));
    let mut w = World::new(&[&a, &b, &c, &z]);
    w.create(a.id(), &[z.id()], &[b.id(), c.id()]);
    let s0 = w.state();
    w.rekey(a.id(), &s0, &[z.id()]);
    // b has seen a's removal and re-adds z, not knowing that c removed z
    // concurrently: c's removal wins.
    let seen_by_b = GroupState::from_messages(w.group(), &w.msgs);
    w.rekey(c.id(), &s0, &[z.id()]);
    w.add(b.id(), &seen_by_b, &[z.id()]);
    let s = w.state();
    assert!(!s.is_member(&z.id()));
    assert!(s.rejected().is_empty(), "{:?}", s.rejected());
    let readd = w.state();
    w.add(a.id(), &readd, &[z.id()]);
    assert!(w.state().is_member(&z.id()));
}

/// An add concurrent with a refresh: the new member misses the refresh's
/// key, asks for it, and an admin's answer brings it; a second answer is
/// harmless, and a forward from a non-admin is not counted by readers.
#[test]
fn a_request_brings_a_key_missed_by_a_concurrent_add() {
    let (a, m, z) = (kp(1), kp(5), kp(7));
    let mut w = World::new(&[&a, &m, &z]);
    w.create(a.id(), &[], &[m.id()]);
    let s0 = w.state();
    w.add(a.id(), &s0, &[z.id()]);
    let r = w.rekey(m.id(), &s0, &[]);
    let s = w.state();
    assert!(s.is_member(&z.id()));
    assert!(!w.keys[&z.id()].has(&r));
    let pos = w.next(z.id());
    assert_eq!(
        s.seal_post(&w.keys[&z.id()], &pos, b"x"),
        Err(GroupError::MissingKey(r))
    );
    let pos = w.next(z.id());
    let req = s.request(&w.keys[&z.id()], &pos, &[r]).unwrap();
    let req = w.publish_control(pos, &req);
    let s = w.state();
    assert_eq!(s.asked(&z.id()), BTreeSet::from([r]));
    assert_eq!(s.open_requests(&m.id()), vec![(req, z.id(), vec![r])]);
    for _ in 0..2 {
        let pos = w.next(m.id());
        let f = s
            .forward(&w.keys[&m.id()], &pos, &z.id(), req, &[r])
            .unwrap();
        w.publish_control(pos, &f);
    }
    assert!(w.keys[&z.id()].has(&r));
    let s = w.state();
    assert!(s.open_requests(&m.id()).is_empty(), "m answered");
    assert!(s.asked(&z.id()).is_empty(), "answered");
    assert!(s.forward_counts(&m.id(), 99));
    assert!(
        !s.forward_counts(&z.id(), 99),
        "a member's forward does not count"
    );
    let p = w.post(z.id(), "hello");
    assert_eq!(w.reads(a.id(), &p).unwrap(), b"hello");
    // The next epoch includes the add, so z is a recipient again.
    let e = w.rekey(a.id(), &s, &[]);
    assert!(w.state().recipients(&e).unwrap().contains(&z.id()));
    assert!(w.keys[&z.id()].has(&e));
}

/// Property 6: a slot or key that does not match the commitment is refused.
#[test]
fn tampered_slots_keys_and_backs_are_rejected() {
    let (a, m) = (kp(1), kp(5));
    let mut w = World::new(&[&a, &m]);
    w.create(a.id(), &[m.id()], &[]);
    let s0 = w.state();
    let pos = w.next(a.id());
    let e = s0.rekey(&w.keys[&a.id()], &pos, &[]).unwrap();
    let GroupContent::Epoch(mut epoch) = w.open(&pos, &e.content) else {
        panic!("an epoch")
    };
    let i = epoch.recipients.iter().position(|r| *r == m.id()).unwrap();
    let wrong = sealed_box_seal(&[9; 32], &ed25519_pk_to_curve25519(&m.id()).unwrap());
    epoch.slots[i].copy_from_slice(&wrong);
    let content = w.seal(&pos, &GroupContent::Epoch(epoch.clone()));
    let id = w.publish(pos, &content);
    let msg = ControlMsg {
        id,
        position: pos,
        body: Control::Epoch(epoch.clone()),
    };
    let mut fresh = KeyStore::new(&m);
    let problems = fresh.absorb([&msg]);
    assert_eq!(problems, vec![(id, GroupError::CommitmentMismatch)]);
    assert!(!fresh.has(&id));

    // A commitment that does not match the key: every recipient refuses.
    let mut bad_commit = msg.clone();
    let Control::Epoch(ref mut be) = bad_commit.body else {
        unreachable!()
    };
    be.commitment[0] ^= 1;
    let mut author = KeyStore::new(&a);
    assert_eq!(
        author.absorb([&bad_commit]),
        vec![(id, GroupError::CommitmentMismatch)]
    );
    assert!(!author.has(&id));

    // A forward of a wrong key for a known epoch.
    let g = w.group();
    let s = w.state();
    let fwd = Forward {
        group: g,
        to: m.id(),
        request: g,
        keys: vec![(g, [1; 32])],
    };
    let fpos = w.next(a.id());
    let sealed = w.seal(&fpos, &GroupContent::Forward(fwd.clone()));
    let fid = w.publish(fpos, &sealed);
    let mut m_keys = KeyStore::new(&m);
    let fmsg = ControlMsg {
        id: fid,
        position: fpos,
        body: Control::Forward(fwd),
    };
    let mut all = w.msgs.clone();
    all.push(fmsg);
    let problems = m_keys.absorb(&all);
    assert!(problems.contains(&(g, GroupError::CommitmentMismatch)));
    assert!(m_keys.has(&g), "the true key from the slot is kept");
    assert_eq!(m_keys.get(&g), w.keys[&m.id()].get(&g));
    assert!(s.is_member(&m.id()));

    // A flipped byte in `back` does not open.
    let mut back = epoch.back.clone();
    let last = back.len() - 1;
    back[last] ^= 1;
    assert_eq!(
        open_back(&back, &pos, &epoch.commitment, &e.key).map(|v| v.len()),
        Err(GroupError::BackDoesNotOpen)
    );
    assert_eq!(
        open_back(&epoch.back, &pos, &epoch.commitment, &e.key).map(|v| v.len()),
        Ok(1)
    );
}

/// Property 7: removals by non-admins are ignored, and so is what builds on
/// them.
#[test]
fn removals_by_non_admins_are_ignored() {
    let (a, m, x) = (kp(1), kp(5), kp(3));
    let mut w = World::new(&[&a, &m, &x]);
    w.create(a.id(), &ids(&[&m, &x]), &[]);
    let s0 = w.state();
    // The content an admin would write, published by a non-admin.
    let apos = w.next(a.id());
    let e = s0
        .rekey(&w.keys[&a.id()], &apos, &w.cuts(&[x.id()]))
        .unwrap();
    let pos = w.next(m.id());
    let inner = w.open(&apos, &e.content);
    let bad = w.seal(&pos, &inner);
    let bad = w.publish_control(pos, &bad);
    let s = w.state();
    assert_eq!(s.rejected().get(&bad), Some(&GroupError::NotAdmin(m.id())));
    assert!(s.is_member(&x.id()));
    assert_eq!(s.heads(), BTreeSet::from([w.group()]));
    // The writer refuses too.
    let pos = w.next(m.id());
    assert_eq!(
        s0.rekey(&w.keys[&m.id()], &pos, &w.cuts(&[x.id()]))
            .map(|_| ()),
        Err(GroupError::NotAdmin(m.id()))
    );
    // A refresh by a non-admin is void too.
    let pos = w.next(m.id());
    let apos = w.next(a.id());
    let r = s0.rekey(&w.keys[&a.id()], &apos, &[]).unwrap();
    let inner = w.open(&apos, &r.content);
    let bad_refresh = w.seal(&pos, &inner);
    let bad_refresh = w.publish_control(pos, &bad_refresh);
    assert_eq!(
        w.state().rejected().get(&bad_refresh),
        Some(&GroupError::NotAdmin(m.id()))
    );
    // A malformed operation takes what builds on it down with it.
    let mut with_bad = s.clone();
    let GroupContent::Epoch(mut child) = w.open(&apos, &e.content) else {
        panic!("an epoch")
    };
    child.parents = vec![bad];
    child.removed.clear();
    child.admins = vec![a.id()];
    let cpos = w.next(a.id());
    let sealed = w.seal(&cpos, &GroupContent::Epoch(child.clone()));
    let cid = w.publish(cpos, &sealed);
    with_bad.apply(ControlMsg {
        id: cid,
        position: cpos,
        body: Control::Epoch(child.clone()),
    });
    assert_eq!(
        with_bad.rejected().get(&cid),
        Some(&GroupError::AdminsOutsideCreate)
    );
    child.parents = vec![cid];
    child.admins.clear();
    let gpos = w.next(a.id());
    let sealed = w.seal(&gpos, &GroupContent::Epoch(child.clone()));
    let gid = w.publish(gpos, &sealed);
    with_bad.apply(ControlMsg {
        id: gid,
        position: gpos,
        body: Control::Epoch(child),
    });
    assert_eq!(
        with_bad.rejected().get(&gid),
        Some(&GroupError::DependencyRejected(cid))
    );
}

/// Property 8: a ciphertext republished at another position does not open.
#[test]
fn ciphertexts_are_bound_to_their_position() {
    let (a, b) = (kp(1), kp(2));
    let mut w = World::new(&[&a, &b]);
    w.create(a.id(), &[b.id()], &[]);
    let (pos, post) = w.post(a.id(), "here");
    let s = w.state();
    let key = w.keys[&b.id()].post_key(&s.heads()).unwrap();
    assert_eq!(key.open(&post, &pos).unwrap(), b"here");
    let moved = [
        Position {
            sequence: pos.sequence + 1,
            ..pos
        },
        Position {
            author: b.id(),
            ..pos
        },
        Position {
            previous: Some(MsgId([7; 32])),
            ..pos
        },
    ];
    for other in moved {
        assert_eq!(key.open(&post, &other), Err(GroupError::PostDoesNotOpen));
    }
    // Under another author or sequence the tag no longer matches either.
    assert_eq!(
        w.keys[&b.id()].open_post(&s, &post, &moved[0]),
        Err(GroupError::NoKeyForTag)
    );
    // A `back` moved to another position does not open.
    let epos = w.next(a.id());
    let e = s.rekey(&w.keys[&a.id()], &epos, &[]).unwrap();
    let GroupContent::Epoch(epoch) = w.open(&epos, &e.content) else {
        panic!("an epoch")
    };
    let elsewhere = Position {
        sequence: 99,
        ..w.next(a.id())
    };
    assert_eq!(
        open_back(&epoch.back, &elsewhere, &epoch.commitment, &e.key).map(|v| v.len()),
        Err(GroupError::BackDoesNotOpen)
    );
}

/// Property 5: an epoch made but never published (a crash before the write)
/// leaves no trace: its key is not held and nothing is sealed under it.
#[test]
fn an_unpublished_rekey_is_never_used() {
    let (a, b) = (kp(1), kp(2));
    let mut w = World::new(&[&a, &b]);
    w.create(a.id(), &[b.id()], &[]);
    let s = w.state();
    let lost = s.rekey(&w.keys[&a.id()], &w.next(a.id()), &[]).unwrap();
    drop(lost.content);
    let p = w.post(a.id(), "still the old key");
    assert_eq!(w.state().heads(), BTreeSet::from([w.group()]));
    assert_eq!(w.reads(b.id(), &p).unwrap(), b"still the old key");
    let unpublished = PostKey::merge([(&MsgId([0; 32]), &lost.key)]);
    assert_eq!(
        unpublished.open(&p.1, &p.0),
        Err(GroupError::PostDoesNotOpen)
    );
}

/// What a replica computes, compared across delivery orders.
#[derive(Clone, Debug, PartialEq)]
struct Summary {
    members: BTreeSet<FeedId>,
    heads: BTreeSet<MsgId>,
    commitment: [u8; 32],
    rejected: Vec<MsgId>,
    accepted: usize,
    exposed: BTreeSet<FeedId>,
}

fn summary(s: &GroupState) -> Summary {
    Summary {
        members: s.members(),
        heads: s.heads(),
        commitment: s.heads_commitment(),
        rejected: s.rejected().keys().copied().collect(),
        accepted: s.accepted_len(),
        exposed: s.exposed_to(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Properties 1, 2 and 9 over random linear schedules: a removed member
    /// opens none of the posts written after its removal; every member opens
    /// every post written while it was a member (and, through `back`, those
    /// from before it joined); a fresh key store built from the secret key
    /// and the messages alone holds the same keys.
    #[test]
    fn exclusion_no_loss_and_recovery(steps in prop::collection::vec((0u8..5, 0u8..16, 0u8..16), 1..14)) {
        let people: Vec<Keypair> = (1..=10).map(kp).collect();
        let refs: Vec<&Keypair> = people.iter().collect();
        let mut w = World::new(&refs);
        let creator = people[0].id();
        w.create(creator, &[people[1].id(), people[2].id(), people[3].id()], &[]);
        let mut fresh = 4; // people[4..] join in turn, never re-added.
        let mut removed_at: HashMap<FeedId, usize> = HashMap::new();
        let mut added_at: HashMap<FeedId, usize> = HashMap::new();
        let mut posts = Vec::new();
        for (t, (kind, who, target)) in steps.into_iter().enumerate() {
            let s = w.state();
            let members: Vec<FeedId> = s.members().into_iter().collect();
            let pick = members[usize::from(who) % members.len()];
            match kind {
                0 | 1 => {
                    let p = w.post(pick, &format!("post {t}"));
                    posts.push((t, s.members(), p));
                }
                2 => {
                    let others: Vec<FeedId> = members.iter().copied().filter(|f| *f != creator).collect();
                    if !others.is_empty() {
                        let x = others[usize::from(target) % others.len()];
                        w.rekey(creator, &s, &[x]);
                        removed_at.insert(x, t);
                    }
                }
                3 => {
                    if fresh < people.len() {
                        let z = people[fresh].id();
                        fresh += 1;
                        w.add(creator, &s, &[z]);
                        added_at.insert(z, t);
                    }
                }
                _ => {
                    // Only admins refresh.
                    let _ = pick;
                    w.rekey(creator, &s, &[]);
                }
            }
        }
        let s = w.state();
        prop_assert!(s.rejected().is_empty());
        for person in &people {
            let f = person.id();
            for (t, members, p) in &posts {
                let opened = w.reads(f, p);
                if removed_at.get(&f).is_some_and(|r| r < t) {
                    prop_assert_eq!(opened, Err(GroupError::NoKeyForTag), "exclusion");
                } else if members.contains(&f) || added_at.contains_key(&f) {
                    prop_assert!(opened.is_ok(), "no loss");
                } else {
                    prop_assert!(opened.is_err(), "never a member");
                }
            }
            let mut recovered = KeyStore::new(person);
            let mut msgs = w.msgs.clone();
            msgs.reverse();
            recovered.absorb(&msgs);
            prop_assert_eq!(recovered.epochs(), w.keys[&f].epochs(), "recovery");
        }
    }

    /// Property 8 (and tampering of posts): any flipped bit, and any other
    /// position, fails to open; the original opens.
    #[test]
    fn posts_open_only_intact_and_in_place(
        flip in 0usize..400,
        bit in 0u8..8,
        dseq in 1u64..5,
    ) {
        let (a, b) = (kp(1), kp(2));
        let mut w = World::new(&[&a, &b]);
        w.create(a.id(), &[b.id()], &[]);
        let (pos, post) = w.post(a.id(), "a body long enough to flip bits in");
        let s = w.state();
        let keys = &w.keys[&b.id()];
        prop_assert!(keys.open_post(&s, &post, &pos).is_ok());
        let bytes = envelope::decode(&envelope::post_content(&post)).unwrap();
        let mut bad = bytes.clone();
        let i = flip % bad.len();
        bad[i] ^= 1 << bit;
        let p = envelope::as_post(&bad).unwrap();
        prop_assert!(keys.open_post(&s, &p, &pos).is_err());
        let later = Position { sequence: pos.sequence + dseq, ..pos };
        prop_assert!(keys.open_post(&s, &post, &later).is_err());
        let key = keys.post_key(&s.heads()).unwrap();
        prop_assert_eq!(key.open(&post, &later), Err(GroupError::PostDoesNotOpen));
    }

    /// Property 3: random control graphs made by three admins with partial,
    /// gossiped views (concurrent adds, removals and refreshes) give every
    /// replica the same members, heads, key commitment and rejections over
    /// many random delivery orders.
    #[test]
    fn convergence_over_delivery_orders(
        steps in prop::collection::vec((0u8..3, 0u8..3, 0u8..10, 0u8..4), 1..20),
        seed in 1u64..u64::MAX,
    ) {
        let people: Vec<Keypair> = (1..=10).map(kp).collect();
        let refs: Vec<&Keypair> = people.iter().collect();
        let mut w = World::new(&refs);
        let admins = [people[0].id(), people[1].id(), people[2].id()];
        w.create(admins[0], &[people[3].id(), people[4].id()], &admins[1..]);
        // Which messages (indexes into w.msgs) each admin has seen.
        let mut seen: Vec<BTreeSet<usize>> = vec![BTreeSet::from([0]); 3];
        for (actor, action, target, gossip) in steps {
            let actor = usize::from(actor);
            if usize::from(gossip) < 3 {
                let from = seen[usize::from(gossip)].clone();
                seen[actor].extend(from);
            }
            let view_msgs: Vec<ControlMsg> = seen[actor].iter().map(|i| w.msgs[*i].clone()).collect();
            let view = GroupState::from_messages(w.group(), &view_msgs);
            let me = admins[actor];
            let mut keys = KeyStore::new(&people[actor]);
            keys.absorb(&view_msgs);
            let pos = w.next(me);
            let target = people[usize::from(target)].id();
            let made = match action {
                0 => view.add(&keys, &pos, &[target], &[]).map(|c| (c, None)),
                1 => {
                    let cuts = w.cuts(&[target]);
                    view.rekey(&keys, &pos, &cuts).map(|e| (e.content, Some(e.key)))
                }
                _ => view.rekey(&keys, &pos, &[]).map(|e| (e.content, Some(e.key))),
            };
            if let Ok((content, key)) = made {
                let id = w.publish_control(pos, &content);
                if let Some(key) = key {
                    w.keys.get_mut(&me).unwrap().insert_own(id, key);
                }
                seen[actor].insert(w.msgs.len() - 1);
            }
        }
        let reference = summary(&w.state());
        // Honest writers only make operations their readers accept, unless
        // a removal they had not seen cut them before they wrote it.
        for why in w.state().rejected().values() {
            prop_assert!(matches!(why, GroupError::AfterRemoval(_)), "{:?}", why);
        }
        let mut rng = StdRng::seed_from_u64(seed);
        for _ in 0..50 {
            let mut order = w.msgs.clone();
            order.shuffle(&mut rng);
            let s = GroupState::from_messages(w.group(), &order);
            prop_assert_eq!(summary(&s), reference.clone());
            prop_assert_eq!(s.pending_len(), 0);
        }
        // Incremental delivery in batches agrees too.
        let mut order = w.msgs.clone();
        order.shuffle(&mut rng);
        let mut s = GroupState::new(w.group());
        for m in order {
            s.apply(m);
            let _ = s.members();
        }
        prop_assert_eq!(summary(&s), reference.clone());
        // Property 1 under concurrency. A void add or epoch (by an admin
        // that had not seen its own removal) can hand a non-member every
        // head key; the state then says so, and nothing is sealed under
        // the heads until an admin refreshes (what a node does).
        let mut s = w.state();
        let holds_all = |msgs: &[ControlMsg], s: &GroupState, person: &Keypair| {
            let mut keys = KeyStore::new(person);
            keys.absorb(msgs);
            keys.post_key(&s.heads())
        };
        for (i, person) in people.iter().enumerate() {
            if holds_all(&w.msgs, &s, person).is_some() && !s.is_member(&person.id()) {
                prop_assert!(s.exposed_to().contains(&person.id()), "non-member {} holds every head key unnoticed", i);
            }
        }
        if let Some(f) = s.exposed_to().first() {
            let member = admins.iter().find(|a| s.is_member(a)).unwrap();
            let pos = w.next(*member);
            prop_assert_eq!(
                s.seal_post(&w.keys[member], &pos, b"{}"),
                Err(GroupError::KeyExposed(*f))
            );
            w.rekey(admins[0], &s, &[]);
            s = w.state();
            prop_assert!(s.exposed_to().is_empty());
        }
        // Every member that holds all head keys derives the same merged
        // key, and no one else does.
        let mut merged = BTreeSet::new();
        for (i, person) in people.iter().enumerate() {
            if let Some(k) = holds_all(&w.msgs, &s, person) {
                prop_assert!(s.is_member(&person.id()), "non-member {} holds every head key", i);
                merged.insert(*k.key().bytes());
            }
        }
        prop_assert!(merged.len() <= 1);
    }
}

/// Property 7 for admins named by an add: they may remove (in the causal
/// future of that add), plain members may not, and a removed admin's power
/// ends with its membership.
#[test]
fn an_add_can_name_admins() {
    let (a, d, m, x) = (kp(1), kp(4), kp(5), kp(7));
    let mut w = World::new(&[&a, &d, &m, &x]);
    w.create(a.id(), &[], &[]);
    let s0 = w.state();
    let pos = w.next(a.id());
    let add = s0
        .add(&w.keys[&a.id()], &pos, &[d.id(), m.id(), x.id()], &[d.id()])
        .unwrap();
    w.publish_control(pos, &add);
    let s1 = w.state();
    assert_eq!(s1.admins(), BTreeSet::from([a.id(), d.id()]));
    // Not an admin: m cannot make a removal.
    assert_eq!(
        s1.rekey(&w.keys[&m.id()], &w.next(m.id()), &w.cuts(&[x.id()]))
            .unwrap_err(),
        GroupError::NotAdmin(m.id())
    );
    // An add may only name admins it adds.
    assert!(matches!(
        s1.add(&w.keys[&a.id()], &w.next(a.id()), &[kp(9).id()], &[m.id()]),
        Err(GroupError::Malformed(_))
    ));
    w.rekey(d.id(), &s1, &[x.id()]);
    let s2 = w.state();
    assert!(s2.rejected().is_empty(), "{:?}", s2.rejected());
    assert_eq!(s2.members(), BTreeSet::from([a.id(), d.id(), m.id()]));
    w.rekey(a.id(), &s2, &[d.id()]);
    let s3 = w.state();
    assert_eq!(s3.admins(), BTreeSet::from([a.id()]));
    assert_eq!(
        s3.rekey(&w.keys[&d.id()], &w.next(d.id()), &w.cuts(&[m.id()]))
            .unwrap_err(),
        GroupError::AfterRemoval(d.id())
    );
}

/// Regression (found by `convergence_over_delivery_orders`): an admin who
/// saw a removed admin's add, but not its removal, removes the feed it
/// added. The add is void, so the feed never was a member; the removal of
/// it must still count (a no-op for that feed), not void the whole epoch
/// and with it the new key every member holds.
#[test]
fn removing_a_feed_whose_add_was_void_keeps_the_epoch() {
    let (a, b, c, z) = (kp(1), kp(2), kp(3), kp(7));
    let mut w = World::new(&[&a, &b, &c, &z]);
    w.create(a.id(), &[], &[b.id(), c.id()]);
    let s0 = w.state();
    w.rekey(a.id(), &s0, &[b.id()]);
    let add = w.add(b.id(), &s0, &[z.id()]);
    let seen_by_c = GroupState::from_messages(w.group(), [&w.msgs[0], w.msgs.last().unwrap()]);
    assert!(seen_by_c.is_member(&z.id()));
    let e = w.rekey(c.id(), &seen_by_c, &[z.id()]);
    let s = w.state();
    assert_eq!(
        s.rejected().get(&add),
        Some(&GroupError::AfterRemoval(b.id()))
    );
    assert!(!s.rejected().contains_key(&e), "{:?}", s.rejected());
    assert!(s.heads().contains(&e));
    assert_eq!(s.members(), ids(&[&a, &c]).into_iter().collect());
}

/// Regression (found by `convergence_over_delivery_orders`): a removed
/// admin that has not seen its removal re-adds a feed, and that void add
/// still hands the feed the key of a head. Admins a, b, c; members x, y.
/// c removes x (epoch e1); a, not having seen e1, removes c, cut after e1,
/// so e1 counts, and seals its epoch e2 to x (a did not know x was out); c,
/// not having seen e2, re-adds x under e1. The add is void (c wrote it
/// after its cut), so x is not a member, but its slot gave x the key of
/// e1, and e2 gave x its own: x held both head keys and derived the post
/// key every member used. No zero-message rule can help (x holds every
/// epoch key there is): the heads are exposed, nobody may encrypt under
/// them, and an admin's refresh closes them.
#[test]
fn a_void_readd_that_hands_out_a_head_key_is_closed_by_a_refresh() {
    let (a, b, c, x, y) = (kp(1), kp(2), kp(3), kp(4), kp(5));
    let mut w = World::new(&[&a, &b, &c, &x, &y]);
    w.create(a.id(), &[x.id(), y.id()], &[b.id(), c.id()]);
    let s0 = w.state();
    let e1 = w.rekey(c.id(), &s0, &[x.id()]);
    let e2 = w.rekey(a.id(), &s0, &[c.id()]);
    let seen_by_c = GroupState::from_messages(w.group(), &w.msgs[..2]);
    assert!(!seen_by_c.is_member(&x.id()));
    let add = w.add(c.id(), &seen_by_c, &[x.id()]);
    let s = w.state();
    assert_eq!(
        s.rejected().get(&add),
        Some(&GroupError::AfterRemoval(c.id()))
    );
    assert_eq!(s.heads(), BTreeSet::from([e1, e2]));
    assert_eq!(s.members(), ids(&[&a, &b, &y]).into_iter().collect());
    // What the keys are: x holds every head key.
    assert!(w.keys[&x.id()].post_key(&s.heads()).is_some());
    // What the state makes of it: the heads are exposed to x, so no post,
    // add or role change is sealed under them.
    assert_eq!(s.exposed_to(), BTreeSet::from([x.id()]));
    let pos = w.next(b.id());
    assert_eq!(
        s.seal_post(&w.keys[&b.id()], &pos, b"{}"),
        Err(GroupError::KeyExposed(x.id()))
    );
    assert_eq!(
        s.add(&w.keys[&a.id()], &w.next(a.id()), &[kp(6).id()], &[]),
        Err(GroupError::KeyExposed(x.id()))
    );
    // An admin's refresh closes them: one message, sealed to the members.
    let r = w.rekey(a.id(), &s, &[]);
    let s = w.state();
    assert_eq!(s.heads(), BTreeSet::from([r]));
    assert!(s.exposed_to().is_empty());
    assert!(w.keys[&x.id()].post_key(&s.heads()).is_none());
    let p = w.post(y.id(), "after the refresh");
    assert_eq!(w.reads(x.id(), &p), Err(GroupError::NoKeyForTag));
    assert_eq!(w.reads(b.id(), &p).unwrap(), b"after the refresh");
    assert_eq!(
        summary(&GroupState::from_messages(w.group(), w.msgs.iter().rev())),
        summary(&s)
    );
}

/// The same leak without a removal epoch: a demotion does not change the
/// heads, so an add by the demoted admin, written before it saw its
/// demotion, is void and still gives the new feed every head key.
#[test]
fn a_void_add_by_a_demoted_admin_exposes_the_heads() {
    let (a, d, m, z) = (kp(1), kp(2), kp(5), kp(7));
    let mut w = World::new(&[&a, &d, &m, &z]);
    w.create(a.id(), &[m.id()], &[d.id()]);
    let s0 = w.state();
    let pos = w.next(a.id());
    let demote = s0
        .roles(&w.keys[&a.id()], &pos, &[], &w.cuts(&[d.id()]))
        .unwrap();
    w.publish_control(pos, &demote);
    let add = w.add(d.id(), &s0, &[z.id()]);
    let s = w.state();
    assert_eq!(s.rejected().get(&add), Some(&GroupError::NotAdmin(d.id())));
    assert!(!s.is_member(&z.id()));
    assert!(w.keys[&z.id()].post_key(&s.heads()).is_some());
    assert_eq!(s.exposed_to(), BTreeSet::from([z.id()]));
    assert_eq!(
        s.seal_post(&w.keys[&m.id()], &w.next(m.id()), b"{}"),
        Err(GroupError::KeyExposed(z.id()))
    );
    w.rekey(a.id(), &s, &[]);
    let s = w.state();
    assert!(s.exposed_to().is_empty());
    assert!(w.keys[&z.id()].post_key(&s.heads()).is_none());
}

/// Attack 4 in the core: a chain of operations, each on the last, is judged
/// once each, in place (revision 1 recomputed every operation's whole past
/// and searched all pairs of epochs: quadratic and worse). A late removal
/// makes at most a few more runs.
#[test]
fn a_chain_of_operations_is_judged_in_place() {
    let (a, m) = (kp(1), kp(5));
    let mut w = World::new(&[&a, &m]);
    w.create(a.id(), &[], &[m.id()]);
    let mut s = w.state();
    let chain = 2_000;
    for _ in 0..chain {
        let pos = w.next(a.id());
        let e = s.rekey(&w.keys[&a.id()], &pos, &[]).unwrap();
        let id = w.publish_epoch(pos, e);
        s.apply(w.msgs.last().unwrap().clone());
        assert_eq!(s.heads(), BTreeSet::from([id]));
    }
    assert_eq!(s.work(), chain + 1, "one judgement per operation");
    // The same history from scratch: one run.
    let fresh = GroupState::from_messages(w.group(), &w.msgs);
    assert_eq!(fresh.work(), chain + 1);
    assert_eq!(summary(&fresh), summary(&s));
}

/// Attack 4, the other shape: a member floods operations that all name the
/// creation as their head (siblings, not a chain), so each lands inside the
/// order instead of at its end. Each is voided without judging the history
/// again: the work stays one judgement per operation, and the result is
/// the one a judgement from scratch gives.
#[test]
fn a_flood_of_operations_naming_old_heads_is_voided_in_place() {
    let (a, m, z) = (kp(1), kp(5), kp(7));
    let mut w = World::new(&[&a, &m, &z]);
    w.create(a.id(), &[m.id()], &[]);
    let s0 = w.state();
    let apos = w.next(a.id());
    let template = w.open(
        &apos,
        &s0.add(&w.keys[&a.id()], &apos, &[z.id()], &[]).unwrap(),
    );
    let mut s = w.state();
    let flood = 1_000;
    for _ in 0..flood {
        let pos = w.next(m.id());
        let sealed = w.seal(&pos, &template);
        w.publish_control(pos, &sealed);
        s.apply(w.msgs.last().unwrap().clone());
    }
    assert_eq!(s.rejected().len(), flood);
    assert!(!s.is_member(&z.id()));
    assert!(s.work() <= 2 * flood as u64, "work {}", s.work());
    let fresh = GroupState::from_messages(w.group(), &w.msgs);
    assert_eq!(summary(&fresh), summary(&s));
}

/// A member asking for the same key again and again (to make every admin
/// publish a forward each time) gets it from each admin once.
#[test]
fn a_member_asking_again_gets_each_key_once_from_each_admin() {
    let (a, m, z) = (kp(1), kp(5), kp(7));
    let mut w = World::new(&[&a, &m, &z]);
    w.create(a.id(), &[], &[m.id()]);
    let s0 = w.state();
    w.add(a.id(), &s0, &[z.id()]);
    let r = w.rekey(m.id(), &s0, &[]);
    let pos = w.next(z.id());
    let req = w.state().request(&w.keys[&z.id()], &pos, &[r]).unwrap();
    let req = w.publish_control(pos, &req);
    let pos = w.next(m.id());
    let f = w
        .state()
        .forward(&w.keys[&m.id()], &pos, &z.id(), req, &[r])
        .unwrap();
    w.publish_control(pos, &f);
    for _ in 0..20 {
        let pos = w.next(z.id());
        let again = w.state().request(&w.keys[&z.id()], &pos, &[r]).unwrap();
        w.publish_control(pos, &again);
    }
    let s = w.state();
    assert!(s.open_requests(&m.id()).is_empty(), "m gave r to z already");
    assert_eq!(
        s.open_requests(&a.id()).len(),
        21,
        "a has given nothing yet"
    );
}
