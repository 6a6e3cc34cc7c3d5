//! Which known peers the node dials, and how often: the policy for `pub`
//! announcements and the bookkeeping of failed dials.
//!
//! Owns pure decisions, made by [`crate::node`] which runs the dials:
//! which pub announcements may be dialled at all ([`pub_candidates`]: only
//! those announced by us or by a feed we follow directly, never to our own
//! or a blocked key), how many new pub dials a minute ([`DialBudget`]), and
//! each address's failures and when to try it again ([`Attempts`]). Failures
//! are kept in memory, so a peer that never answers costs no store write.
//! Whether the address a name resolves to may be dialled is
//! [`crate::net::scope`]'s answer. Does no I/O; imports `crypto`, `net`
//! (addresses) and `store` (peer records).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::crypto::FeedId;
use crate::net::MultiAddr;
use crate::store::PeerRecord;

/// New pub dials the node starts in a minute at most.
pub const PUB_DIALS_PER_MINUTE: usize = 6;
/// Connections to pubs the node dials that it keeps at once: the rest of
/// its outgoing slots stay for the peers the user chose.
pub const MAX_PUB_CONNECTIONS: usize = 3;
/// How often the node looks for a pub to dial.
pub const PUB_CHECK_EVERY: Duration = Duration::from_secs(5);
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

    #[test]
    fn pub_dials_are_bounded_per_minute() {
        let t0 = Instant::now();
        let mut b = DialBudget::new(PUB_DIALS_PER_MINUTE);
        for i in 0..PUB_DIALS_PER_MINUTE as u64 {
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
