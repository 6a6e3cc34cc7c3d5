//! Which known peers the node dials, and how often: the peer picker, the
//! policy for `pub` announcements and the bookkeeping of failed dials.
//!
//! Owns pure decisions, made by [`crate::node`] which runs the dials:
//! which pub announcements may be dialled at all ([`pub_candidates`]: only
//! those announced by us or by a feed we follow directly, never to our own
//! or a blocked key); which of those pubs and of the peers heard on the LAN
//! to keep connected ([`pick`]: a few peers that together hold every feed
//! we replicate); how many new dials a minute ([`DialBudget`]), and each
//! address's failures and when to try it again ([`Attempts`]). Failures
//! are kept in memory, so a peer that never answers costs no store write.
//! Whether the address a name resolves to may be dialled is
//! [`crate::net::scope`]'s answer. Does no I/O; imports `crypto`, `net`
//! (addresses) and `store` (peer records).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::crypto::FeedId;
use crate::net::MultiAddr;
use crate::store::PeerRecord;

/// New dials the picker starts in a minute at most.
pub const PICKER_DIALS_PER_MINUTE: usize = 12;
/// Connections to pubs the picker keeps at once: the rest of the node's
/// outgoing slots stay for the peers the user chose.
pub const PICKED_CONNECTIONS: usize = 8;
/// Connections the picker makes besides [`PICKED_CONNECTIONS`] to peers it
/// knows nothing of yet, while some wanted feed is uncovered: exploring
/// never takes the place of a peer that serves what no other does.
pub const EXPLORING: usize = 2;
/// Connections to peers heard on the LAN the picker keeps at once, besides
/// [`PICKED_CONNECTIONS`].
pub const LAN_CONNECTIONS: usize = 4;
/// How often the picker looks again (and at once when a LAN peer is
/// first heard).
pub const PICK_EVERY: Duration = Duration::from_secs(2);
/// How long a peer the picker dialled is kept before it is judged by what
/// it holds: long enough to exchange EBT clocks.
pub const GRACE: Duration = Duration::from_secs(10);
/// How long what a peer held is trusted; after it, the peer is unknown
/// again (it may hold feeds we came to want since).
pub const REMEMBER_FOR: Duration = Duration::from_secs(3600);
/// The shortest time between two dials of one pub (after a success too, so
/// a pub that drops every connection at once is not dialled in a loop).
pub const PUB_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest wait before a pub that keeps failing is tried again.
pub const PUB_MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The source of a peer record made from a `pub` announcement.
pub const PUB_SOURCE: &str = "pub";

/// The pub announcements that may be dialled: records from `pub` messages
/// announced by a feed in `trusted` (we and the feeds we follow directly),
/// whose key is neither `me` nor in `blocked`, in the table's order.
pub fn pub_candidates(
    records: &[(String, PeerRecord)],
    trusted: &HashSet<FeedId>,
    blocked: &HashSet<FeedId>,
    me: &FeedId,
) -> Vec<MultiAddr> {
    records
        .iter()
        .filter(|(_, rec)| rec.source == PUB_SOURCE)
        .filter(|(_, rec)| {
            rec.announced_by
                .iter()
                .filter_map(|a| FeedId::parse(a))
                .any(|a| trusted.contains(&a) && !blocked.contains(&a))
        })
        .filter_map(|(addr, _)| addr.parse::<MultiAddr>().ok())
        .filter(|ma| ma.key != *me && !blocked.contains(&ma.key))
        .collect()
}

/// Where the picker learnt of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `pub` announcement (see [`pub_candidates`]).
    Pub,
    /// A packet heard on the LAN (see [`crate::lan`]).
    Lan,
}

/// A peer the picker may keep connected.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Where it listens.
    pub addr: MultiAddr,
    /// How we learnt of it.
    pub origin: Origin,
    /// How long the connection the picker made to it has lasted, if it has
    /// one (a connection made some other way is not the picker's: its
    /// feeds are given as covered, and the picker never drops it).
    pub connected_for: Option<Duration>,
    /// Whether it may be dialled now (its backoff is over).
    pub due: bool,
    /// Failed dials since its last success.
    pub failures: u32,
    /// The feeds we want that it held when last connected (`None`: never
    /// connected, or longer ago than [`REMEMBER_FOR`]).
    pub holds: Option<HashSet<FeedId>>,
    /// Messages it gave us.
    pub served: u64,
}

/// What the picker decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Peers to dial now.
    pub dial: Vec<MultiAddr>,
    /// Connections the picker made that are no longer needed, to close.
    pub drop: Vec<FeedId>,
    /// The peers it keeps (connected or to dial).
    pub keep: Vec<FeedId>,
    /// Wanted feeds that no kept peer is known to hold.
    pub uncovered: usize,
}

/// Chooses which candidates to keep connected: every peer heard on the
/// LAN (up to [`LAN_CONNECTIONS`]); then, among the pubs, up to `slots`
/// peers that together hold every feed of `wanted` that `covered` (what
/// the connections the picker did not make hold) leaves. The cover is
/// greedy: each time the peer holding the most feeds still uncovered, its
/// count weighed down by its failed dials and up when it is connected
/// already (so a peer is not swapped for an equal one), ties going to the
/// one that served the most, then to the longest connected. While some wanted feed stays uncovered, the free
/// slots and [`EXPLORING`] more go to peers never tried (or not for
/// [`REMEMBER_FOR`]), the connected first, then the fewest failures.
///
/// Only candidates that are connected or `due` are chosen. A connection
/// the picker made is never closed in its first [`GRACE`]; after it, it is
/// closed when not chosen: it serves nothing the chosen do not. Pub
/// connections stay within `slots` + [`EXPLORING`]: dials wait while
/// connections in their grace fill them.
pub fn pick(
    wanted: &HashSet<FeedId>,
    covered: &HashSet<FeedId>,
    candidates: &[Candidate],
    slots: usize,
) -> Plan {
    let mut uncovered: HashSet<FeedId> = wanted.difference(covered).copied().collect();
    let usable = |c: &Candidate| c.connected_for.is_some() || c.due;
    let mut chosen: Vec<usize> = Vec::new();
    // A peer known at several addresses is chosen at one of them.
    let free = |i: usize, chosen: &[usize]| {
        !chosen
            .iter()
            .any(|&j| candidates[j].addr.key == candidates[i].addr.key)
    };
    let take = |i: usize, chosen: &mut Vec<usize>, uncovered: &mut HashSet<FeedId>| {
        if !free(i, chosen) {
            return false;
        }
        if let Some(holds) = &candidates[i].holds {
            uncovered.retain(|f| !holds.contains(f));
        }
        chosen.push(i);
        true
    };
    // The LAN's peers, the connected first.
    let mut lan: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].origin == Origin::Lan && usable(&candidates[i]))
        .collect();
    lan.sort_by_key(|&i| {
        (
            candidates[i].connected_for.is_none(),
            candidates[i].failures,
        )
    });
    let mut kept = 0;
    for i in lan {
        if kept < LAN_CONNECTIONS && take(i, &mut chosen, &mut uncovered) {
            kept += 1;
        }
    }
    let pubs: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].origin == Origin::Pub && usable(&candidates[i]))
        .collect();
    // The greedy cover.
    let mut used = 0;
    while used < slots {
        let best = pubs
            .iter()
            .copied()
            .filter(|&i| free(i, &chosen))
            .filter_map(|i| {
                let c = &candidates[i];
                let gain = c.holds.as_ref()?.intersection(&uncovered).count();
                (gain > 0).then(|| {
                    let connected = if c.connected_for.is_some() { 1.5 } else { 1.0 };
                    let score = gain as f64 * connected / (1.0 + f64::from(c.failures));
                    (i, score, c.served, c.connected_for)
                })
            })
            // Ties: the most served, then the longest connected.
            .max_by(|a, b| {
                a.1.total_cmp(&b.1)
                    .then(a.2.cmp(&b.2))
                    .then(a.3.cmp(&b.3))
                    .then(b.0.cmp(&a.0))
            });
        let Some((i, ..)) = best else { break };
        if take(i, &mut chosen, &mut uncovered) {
            used += 1;
        }
    }
    // Exploring: peers we know nothing of, while something is uncovered.
    if !uncovered.is_empty() {
        let mut unknown: Vec<usize> = pubs
            .iter()
            .copied()
            .filter(|&i| free(i, &chosen) && candidates[i].holds.is_none())
            .collect();
        unknown.sort_by_key(|&i| {
            (
                candidates[i].connected_for.is_none(),
                candidates[i].failures,
            )
        });
        for i in unknown {
            if used >= slots + EXPLORING {
                break;
            }
            if take(i, &mut chosen, &mut uncovered) {
                used += 1;
            }
        }
    }
    let mut plan = Plan {
        uncovered: uncovered.len(),
        ..Plan::default()
    };
    // Pub connections that stay: the chosen, and those in their grace.
    let mut staying = pubs
        .iter()
        .filter(|&&i| {
            candidates[i]
                .connected_for
                .is_some_and(|d| chosen.contains(&i) || d < GRACE)
        })
        .count();
    for &i in &chosen {
        let c = &candidates[i];
        if c.connected_for.is_some() {
            plan.keep.push(c.addr.key);
        } else if c.origin == Origin::Lan || staying < slots + EXPLORING {
            staying += usize::from(c.origin == Origin::Pub);
            plan.dial.push(c.addr.clone());
            plan.keep.push(c.addr.key);
        }
    }
    for (i, c) in candidates.iter().enumerate() {
        if c.connected_for.is_some_and(|d| d >= GRACE) && !chosen.contains(&i) {
            plan.drop.push(c.addr.key);
        }
    }
    plan
}

/// At most `per_minute` dials in any minute.
#[derive(Debug)]
pub struct DialBudget {
    per_minute: usize,
    recent: VecDeque<Instant>,
}

impl DialBudget {
    /// A budget of `per_minute` dials a minute.
    pub fn new(per_minute: usize) -> DialBudget {
        DialBudget {
            per_minute,
            recent: VecDeque::with_capacity(per_minute),
        }
    }

    /// Takes one dial at `now`; `false` when the last minute had its share.
    pub fn take(&mut self, now: Instant) -> bool {
        while let Some(&t) = self.recent.front() {
            if now.saturating_duration_since(t) >= Duration::from_secs(60) {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.per_minute {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    failures: u32,
    next: Option<Instant>,
}

/// The first wait before redialling a peer kept connected.
pub const REDIAL_FIRST: Duration = Duration::from_secs(1);

/// The longest wait before redialling a peer kept connected.
pub const REDIAL_MAX: Duration = Duration::from_secs(300);

/// How long to wait before redialling a peer kept connected, after
/// `failures` failed dials in a row (0: its connection just dropped):
/// doubling from [`REDIAL_FIRST`] up to [`REDIAL_MAX`], then spread over
/// ±25% by `jitter` (in `0.0..1.0`), so that peers that dropped together
/// (a restart, a network change) are not all redialled in the same
/// instant. Never over [`REDIAL_MAX`].
pub fn redial_after(failures: u32, jitter: f64) -> Duration {
    let base = REDIAL_FIRST
        .saturating_mul(1 << failures.min(16))
        .min(REDIAL_MAX);
    let spread = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
    base.mul_f64(spread).min(REDIAL_MAX)
}

/// Failed dials of each address since its last success, and when a pub
/// may be dialled again: in memory only.
#[derive(Debug, Default)]
pub struct Attempts {
    by_address: HashMap<String, Attempt>,
}

impl Attempts {
    fn entry(&mut self, addr: &str) -> &mut Attempt {
        self.by_address.entry(addr.to_string()).or_insert(Attempt {
            failures: 0,
            next: None,
        })
    }

    /// Whether `addr` may be dialled at `now`.
    pub fn due(&self, addr: &str, now: Instant) -> bool {
        self.by_address
            .get(addr)
            .and_then(|a| a.next)
            .is_none_or(|next| now >= next)
    }

    /// A dial of `addr` starts at `now`: the next waits at least
    /// [`PUB_RETRY_AFTER`].
    pub fn started(&mut self, addr: &str, now: Instant) {
        self.entry(addr).next = Some(now + PUB_RETRY_AFTER);
    }

    /// A dial of `addr` failed at `now`: the next waits twice as long as
    /// the last (from [`PUB_RETRY_AFTER`] up to [`PUB_MAX_BACKOFF`]).
    /// Returns the failures since the last success.
    pub fn failed(&mut self, addr: &str, now: Instant) -> u32 {
        let a = self.entry(addr);
        a.failures = a.failures.saturating_add(1);
        let doublings = (a.failures - 1).min(16);
        let wait = PUB_RETRY_AFTER
            .saturating_mul(1 << doublings)
            .min(PUB_MAX_BACKOFF);
        a.next = Some(now + wait);
        a.failures
    }

    /// A dial of `addr` succeeded: its failures are forgotten.
    pub fn succeeded(&mut self, addr: &str) {
        if let Some(a) = self.by_address.get_mut(addr) {
            a.failures = 0;
        }
    }

    /// Failed dials of `addr` since its last success.
    pub fn failures(&self, addr: &str) -> u32 {
        self.by_address.get(addr).map_or(0, |a| a.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn id(n: u8) -> FeedId {
        Keypair::from_seed(&[n; 32]).id()
    }

    fn announced(host: &str, key: &FeedId, by: &[FeedId]) -> (String, PeerRecord) {
        (
            format!("net:{host}:8008~shs:{}", key.b64()),
            PeerRecord {
                source: PUB_SOURCE.into(),
                announced_by: by.iter().map(FeedId::to_string).collect(),
                ..PeerRecord::default()
            },
        )
    }

    #[test]
    fn only_pubs_announced_by_us_or_whom_we_follow_are_dialled() {
        let (me, friend, stranger, foe) = (id(1), id(2), id(3), id(4));
        let trusted = HashSet::from([me, friend]);
        let blocked = HashSet::from([foe]);
        let records = vec![
            announced("by-friend", &id(10), &[stranger, friend]),
            announced("by-me", &id(11), &[me]),
            announced("by-stranger", &id(12), &[stranger]),
            announced("by-nobody", &id(13), &[]),
            announced("blocked-key", &foe, &[friend]),
            announced("our-key", &me, &[friend]),
            (
                format!("net:added:8008~shs:{}", id(14).b64()),
                PeerRecord {
                    source: "connect".into(),
                    ..PeerRecord::default()
                },
            ),
            (
                "not an address".into(),
                announced("x", &id(15), &[friend]).1,
            ),
        ];
        let hosts: Vec<String> = pub_candidates(&records, &trusted, &blocked, &me)
            .into_iter()
            .map(|m| m.host)
            .collect();
        assert_eq!(hosts, ["by-friend", "by-me"]);
        // A friend we block no longer vouches for what it announced.
        let blocked = HashSet::from([foe, friend]);
        let hosts: Vec<String> = pub_candidates(&records, &trusted, &blocked, &me)
            .into_iter()
            .map(|m| m.host)
            .collect();
        assert_eq!(hosts, ["by-me"]);
    }

    fn feeds(ns: &[u8]) -> HashSet<FeedId> {
        ns.iter().map(|&n| FeedId([n; 32])).collect()
    }

    fn cand(n: u8, holds: Option<&[u8]>) -> Candidate {
        Candidate {
            addr: MultiAddr {
                host: format!("pub{n}.example.org"),
                port: 8008,
                key: id(100 + n),
            },
            origin: Origin::Pub,
            connected_for: None,
            due: true,
            failures: 0,
            holds: holds.map(feeds),
            served: 0,
        }
    }

    fn hosts(addrs: &[MultiAddr]) -> Vec<&str> {
        addrs.iter().map(|a| a.host.as_str()).collect()
    }

    #[test]
    fn the_picker_keeps_a_small_set_of_peers_that_holds_every_feed() {
        let wanted = feeds(&[1, 2, 3, 4, 5, 6]);
        let cands = [
            cand(1, Some(&[1, 2, 3])),
            cand(2, Some(&[3, 4])),
            cand(3, Some(&[4, 5, 6])),
            cand(4, Some(&[1])),
            cand(5, Some(&[])),
        ];
        let plan = pick(&wanted, &HashSet::new(), &cands, PICKED_CONNECTIONS);
        assert_eq!(hosts(&plan.dial), ["pub1.example.org", "pub3.example.org"]);
        assert_eq!(plan.uncovered, 0);
        assert!(plan.drop.is_empty());
        // What the peers we did not dial hold counts as covered.
        let plan = pick(&wanted, &feeds(&[4, 5, 6]), &cands, PICKED_CONNECTIONS);
        assert_eq!(hosts(&plan.dial), ["pub1.example.org"]);
        // Within the slots, however many are needed.
        let plan = pick(&wanted, &HashSet::new(), &cands, 1);
        assert_eq!(hosts(&plan.dial), ["pub1.example.org"]);
        assert_eq!(plan.uncovered, 3);
    }

    #[test]
    fn the_picker_explores_unknown_peers_only_while_something_is_uncovered() {
        let wanted = feeds(&[1, 2, 3]);
        let mut cands: Vec<Candidate> = (10..30).map(|n| cand(n, None)).collect();
        cands.push(cand(1, Some(&[1, 2])));
        let plan = pick(&wanted, &HashSet::new(), &cands, PICKED_CONNECTIONS);
        assert_eq!(
            plan.dial.len(),
            PICKED_CONNECTIONS + EXPLORING,
            "bounded by the slots"
        );
        assert!(
            plan.dial.iter().any(|a| a.host == "pub1.example.org"),
            "the known one is kept"
        );
        // Everything covered: nobody new is tried.
        cands.push(cand(2, Some(&[3])));
        let plan = pick(&wanted, &HashSet::new(), &cands, PICKED_CONNECTIONS);
        assert_eq!(hosts(&plan.dial), ["pub1.example.org", "pub2.example.org"]);
        // Peers that failed are tried last; peers not due are not dialled.
        let mut cands = vec![cand(1, None), cand(2, None), cand(3, None), cand(4, None)];
        cands[0].failures = 3;
        cands[1].due = false;
        let plan = pick(&wanted, &HashSet::new(), &cands, 0);
        assert_eq!(hosts(&plan.dial), ["pub3.example.org", "pub4.example.org"]);
        // Slots full of peers that each serve something of their own: the
        // exploring ones come on top.
        let mut cands: Vec<Candidate> = (1..=5u8)
            .map(|n| {
                let mut c = cand(n, Some(&[n]));
                c.connected_for = Some(GRACE * 2);
                c
            })
            .collect();
        cands.extend((10..20).map(|n| cand(n, None)));
        let wanted = feeds(&[1, 2, 3, 4, 5, 6]);
        let plan = pick(&wanted, &HashSet::new(), &cands, 5);
        assert!(plan.drop.is_empty());
        assert_eq!(plan.dial.len(), EXPLORING);
    }

    #[test]
    fn the_picker_drops_peers_that_serve_nothing_after_their_grace_and_keeps_the_connected() {
        let wanted = feeds(&[1, 2]);
        let mut useless = cand(1, Some(&[]));
        useless.connected_for = Some(GRACE - Duration::from_secs(1));
        let mut same_connected = cand(2, Some(&[1, 2]));
        same_connected.connected_for = Some(GRACE * 3);
        let same_idle = cand(3, Some(&[1, 2]));
        let mut cands = vec![useless, same_connected, same_idle];
        let plan = pick(&wanted, &HashSet::new(), &cands, PICKED_CONNECTIONS);
        assert!(
            plan.dial.is_empty(),
            "the connected one is not swapped: {plan:?}"
        );
        assert!(plan.drop.is_empty(), "still in its grace: {plan:?}");
        cands[0].connected_for = Some(GRACE);
        let plan = pick(&wanted, &HashSet::new(), &cands, PICKED_CONNECTIONS);
        assert_eq!(plan.drop, [id(101)]);
        assert_eq!(plan.keep, [id(102)]);
        // A peer that keeps failing is worth less than one that does not.
        let mut flaky = cand(4, Some(&[1, 2]));
        flaky.failures = 2;
        let plan = pick(&wanted, &HashSet::new(), &[flaky, cand(5, Some(&[1]))], 1);
        assert_eq!(hosts(&plan.dial), ["pub5.example.org"]);
    }

    #[test]
    fn a_connection_in_its_grace_takes_no_slot_from_a_peer_that_serves_something_alone() {
        // Regression: connections in their grace took the slots first, and
        // a peer alone in holding a feed was closed to make room.
        let wanted = feeds(&[1, 2]);
        let mut a = cand(1, Some(&[1]));
        a.connected_for = Some(GRACE * 2);
        let mut b = cand(2, Some(&[2]));
        b.connected_for = Some(GRACE * 2);
        let mut c = cand(3, Some(&[1]));
        c.connected_for = Some(GRACE / 2);
        let plan = pick(&wanted, &HashSet::new(), &[c, a, b], 2);
        assert!(plan.drop.is_empty(), "{plan:?}");
        assert_eq!(plan.keep, [id(101), id(102)]);
        assert_eq!(plan.uncovered, 0);
        // And no dial while the connections fill the slots and more.
        let mut full: Vec<Candidate> = (1..=(2 + EXPLORING as u8))
            .map(|n| {
                let mut c = cand(n, Some(&[]));
                c.connected_for = Some(GRACE / 2);
                c
            })
            .collect();
        full.push(cand(9, None));
        let plan = pick(&wanted, &HashSet::new(), &full, 2);
        assert!(plan.dial.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_peer_at_two_addresses_is_dialled_at_one_and_at_the_other_when_it_fails() {
        let wanted = feeds(&[1]);
        let mut by_name = cand(1, None);
        by_name.addr.host = "localhost".into();
        let by_ip = cand(1, None);
        let plan = pick(
            &wanted,
            &HashSet::new(),
            &[by_ip.clone(), by_name.clone()],
            5,
        );
        assert_eq!(hosts(&plan.dial), ["pub1.example.org"]);
        let failed = Candidate {
            due: false,
            failures: 1,
            ..by_ip
        };
        let plan = pick(&wanted, &HashSet::new(), &[failed, by_name], 5);
        assert_eq!(hosts(&plan.dial), ["localhost"]);
    }

    #[test]
    fn lan_peers_are_kept_beside_the_pubs_and_bounded() {
        let wanted = feeds(&[1]);
        let mut cands: Vec<Candidate> = (0..10)
            .map(|n| Candidate {
                origin: Origin::Lan,
                ..cand(n, Some(&[]))
            })
            .collect();
        cands.push(cand(20, Some(&[1])));
        let plan = pick(&wanted, &HashSet::new(), &cands, 1);
        assert_eq!(plan.dial.len(), LAN_CONNECTIONS + 1);
        assert!(plan.dial.iter().any(|a| a.host == "pub20.example.org"));
    }

    #[test]
    fn pub_dials_are_bounded_per_minute() {
        let t0 = Instant::now();
        let mut b = DialBudget::new(PICKER_DIALS_PER_MINUTE);
        for i in 0..PICKER_DIALS_PER_MINUTE as u64 {
            assert!(b.take(t0 + Duration::from_secs(i)));
        }
        assert!(!b.take(t0 + Duration::from_secs(30)), "one too many");
        assert!(!b.take(t0 + Duration::from_millis(59_999)));
        assert!(
            b.take(t0 + Duration::from_secs(60)),
            "the first has aged out"
        );
        assert!(!b.take(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn failures_back_off_in_memory_and_success_forgets_them() {
        let t0 = Instant::now();
        let mut a = Attempts::default();
        let addr = "net:pub.example.org:8008~shs:AAAA";
        assert!(a.due(addr, t0));
        a.started(addr, t0);
        assert!(!a.due(addr, t0 + Duration::from_secs(59)));
        assert_eq!(a.failed(addr, t0), 1);
        assert!(a.due(addr, t0 + PUB_RETRY_AFTER));
        assert_eq!(a.failed(addr, t0), 2);
        assert!(!a.due(addr, t0 + PUB_RETRY_AFTER));
        assert!(a.due(addr, t0 + 2 * PUB_RETRY_AFTER));
        for _ in 0..40 {
            a.failed(addr, t0);
        }
        assert!(a.due(addr, t0 + PUB_MAX_BACKOFF), "the wait is capped");
        assert_eq!(a.failures(addr), 42);
        a.succeeded(addr);
        assert_eq!(a.failures(addr), 0);
    }

    #[test]
    fn redials_back_off_with_jitter_and_a_cap() {
        // Doubling, spread ±25%.
        assert_eq!(redial_after(0, 0.5), REDIAL_FIRST);
        assert_eq!(redial_after(0, 0.0), REDIAL_FIRST.mul_f64(0.75));
        assert_eq!(redial_after(3, 0.5), Duration::from_secs(8));
        assert!(redial_after(3, 0.999) < Duration::from_secs(10));
        // Capped, however many failures, whatever the jitter.
        for f in [9, 10, 31, u32::MAX] {
            assert!(redial_after(f, 1.0) <= REDIAL_MAX, "{f}");
            assert!(redial_after(f, 0.0) >= REDIAL_MAX.mul_f64(0.75), "{f}");
        }
        // Peers that dropped together spread out.
        let waits: std::collections::BTreeSet<Duration> = (0..10)
            .map(|i| redial_after(2, f64::from(i) / 10.0))
            .collect();
        assert_eq!(waits.len(), 10);
    }
}
