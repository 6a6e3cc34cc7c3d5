//! Resource limits on what peers may make the node take, set in
//! `config.toml` and shown in `shoal status`: messages per second from one
//! peer (it is slowed: we stop reading its socket until it is within its
//! rate), bytes per day from all peers (past it, each peer is dropped as it
//! sends more, until the next UTC day), bytes of one feed taken from peers
//! in a UTC day and bytes per feed in all (the checker refuses a feed's
//! messages past either, see [`FeedCap`]). The node itself is never
//! stopped by a peer. The replication sessions enforce the first two with
//! [`Rate`] and [`Usage::charge_day`]; the ingest checker the last two.
//!
//! Owns the limits, their defaults, and the counters of what they did.
//! Imports nothing but std, tokio's clock, serde and `crypto`; never
//! `replicate`, which imports it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::crypto::FeedId;

/// The default of `peer_rate`: messages a second from one peer. Above what
/// two cores verify and store (a shoal node replicates from another at
/// about 57,000 messages a second on them, README "Import"; ssb-server
/// sends a few thousand), so it never slows replication there, however
/// long; it keeps one peer from taking every core of a bigger machine.
/// (It was 50,000, which a first sync of more than a second's worth
/// from a shoal pub went past.)
pub const DEFAULT_PEER_RATE: u32 = 100_000;

/// The default of `max_feed_bytes_per_day`: bytes of one feed taken from
/// peers in a UTC day (64 MiB). The largest feeds of the network (about
/// 100,000 messages) arrive whole in a day or two, any ordinary one at once;
/// a feed that grows without end (a hostile or broken author) costs at most
/// this a day.
pub const DEFAULT_MAX_FEED_BYTES_PER_DAY: u64 = 64 << 20;

/// The limits (0: none). `Default` is no limit at all; the config's
/// defaults are [`DEFAULT_PEER_RATE`] and [`DEFAULT_MAX_FEED_BYTES_PER_DAY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Messages per second taken from one peer.
    pub peer_rate: u32,
    /// Bytes taken from all peers in one UTC day.
    pub max_bytes_per_day: u64,
    /// Bytes of one feed we store.
    pub max_feed_bytes: u64,
    /// Bytes of one feed taken from peers in one UTC day.
    pub max_feed_bytes_per_day: u64,
}

impl Limits {
    /// The limits as `shoal status` shows them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "peer_rate": self.peer_rate,
            "max_bytes_per_day": self.max_bytes_per_day,
            "max_feed_bytes": self.max_feed_bytes,
            "max_feed_bytes_per_day": self.max_feed_bytes_per_day,
        })
    }
}

#[derive(Debug, Default)]
struct Counters {
    day: u64,
    bytes_today: u64,
    slowed: u64,
    dropped: u64,
    capped: HashSet<FeedId>,
    /// Feeds that reached `max_feed_bytes_per_day` on `day`.
    capped_today: HashSet<FeedId>,
}

impl Counters {
    /// Starts a new day's counts when the UTC day changed.
    fn roll(&mut self, today: u64) {
        if self.day != today {
            self.day = today;
            self.bytes_today = 0;
            self.capped_today.clear();
        }
    }
}

/// Bytes of each feed taken from peers today, for `max_feed_bytes_per_day`.
/// Kept by the one checking thread, so it takes no lock per message.
#[derive(Debug, Default)]
pub struct FeedDay {
    day: u64,
    bytes: HashMap<FeedId, u64>,
}

impl FeedDay {
    /// Counts `len` bytes of `feed` taken on UTC day `day`; `false`
    /// (nothing counted) when they would take the feed past `max` that day
    /// (0: no limit).
    pub fn charge(&mut self, feed: FeedId, len: u64, max: u64, day: u64) -> bool {
        if max == 0 {
            return true;
        }
        if self.day != day {
            self.day = day;
            self.bytes.clear();
        }
        let used = self.bytes.entry(feed).or_default();
        if *used + len > max {
            return false;
        }
        *used += len;
        true
    }
}

/// What the limits did, shared by the sessions of one node.
#[derive(Debug, Default)]
pub struct Usage {
    c: Mutex<Counters>,
}

/// Today's number, counting UTC days from the epoch.
pub fn utc_day() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.c
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `bytes` against today's budget; `false` (nothing counted)
    /// when they would go past `max` (0: no limit).
    pub fn charge_day(&self, bytes: u64, max: u64) -> bool {
        let mut c = self.lock();
        c.roll(utc_day());
        if max > 0 && c.bytes_today + bytes > max {
            return false;
        }
        c.bytes_today += bytes;
        true
    }

    /// A peer was made to wait for its rate.
    pub fn slowed(&self) {
        self.lock().slowed += 1;
    }

    /// A peer was dropped for the daily budget.
    pub fn dropped(&self) {
        self.lock().dropped += 1;
    }

    /// A feed reached its byte limit.
    pub fn capped(&self, feed: FeedId) {
        self.lock().capped.insert(feed);
    }

    /// A feed reached its byte limit for today.
    pub fn capped_today(&self, feed: FeedId) {
        let mut c = self.lock();
        c.roll(utc_day());
        c.capped_today.insert(feed);
    }

    /// For `shoal status`.
    pub fn to_json(&self, limits: &Limits) -> serde_json::Value {
        let mut c = self.lock();
        c.roll(utc_day());
        let mut v = limits.to_json();
        v["bytes_today"] = c.bytes_today.into();
        v["peers_slowed"] = c.slowed.into();
        v["peers_dropped"] = c.dropped.into();
        v["feeds_capped"] = c.capped.len().into();
        v["feeds_capped_today"] = c.capped_today.len().into();
        v
    }
}

/// The most bytes of one feed the node stores (`max_feed_bytes`) and takes
/// from peers in a UTC day (`max_feed_bytes_per_day`), and where to count
/// the feeds that reached them: what the ingest checker enforces.
#[derive(Clone, Debug, Default)]
pub struct FeedCap {
    /// Bytes of one feed (the JSON of its messages); 0: no limit.
    pub max_bytes: u64,
    /// Bytes of one feed taken from peers in a UTC day (what is imported
    /// through the node is not counted); 0: no limit.
    pub max_bytes_per_day: u64,
    /// Counts the feeds capped.
    pub usage: Arc<Usage>,
}

/// One peer's message rate: how long to wait before taking `n` more.
#[derive(Debug)]
pub struct Rate {
    per_sec: u32,
    /// When what was taken so far is paid off at the rate.
    next: Option<Instant>,
}

impl Rate {
    /// A limiter of `per_sec` messages a second (0: none).
    pub fn new(per_sec: u32) -> Rate {
        Rate {
            per_sec,
            next: None,
        }
    }

    /// Takes `n` messages now; returns how long to wait first, if at all.
    pub fn take(&mut self, n: usize, now: Instant) -> Option<Duration> {
        if self.per_sec == 0 || n == 0 {
            return None;
        }
        let next = self.next.map_or(now, |t| t.max(now))
            + Duration::from_secs_f64(n as f64 / f64::from(self.per_sec));
        self.next = Some(next);
        // A second's worth passes at once; beyond it, wait until the rest
        // is within a second.
        let ahead = next - now;
        (ahead > Duration::from_secs(1)).then(|| ahead - Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_budget_refuses_what_would_go_past_it() {
        let u = Usage::default();
        assert!(u.charge_day(600, 1000));
        assert!(!u.charge_day(500, 1000));
        assert!(u.charge_day(400, 1000));
        assert!(!u.charge_day(1, 1000));
        assert!(u.charge_day(1 << 40, 0), "0 is no limit");
        assert_eq!(
            u.to_json(&Limits::default())["bytes_today"],
            (1u64 << 40) + 1000
        );
    }

    #[test]
    fn a_feed_day_budget_counts_each_feed_apart_and_starts_again_each_day() {
        let (a, b) = (FeedId([1; 32]), FeedId([2; 32]));
        let mut d = FeedDay::default();
        assert!(d.charge(a, 600, 1000, 7));
        assert!(!d.charge(a, 500, 1000, 7), "past the day's budget");
        assert!(d.charge(b, 1000, 1000, 7), "another feed has its own");
        assert!(d.charge(a, 400, 1000, 7));
        assert!(!d.charge(a, 1, 1000, 7));
        assert!(d.charge(a, 1000, 1000, 8), "a new day");
        assert!(d.charge(a, 1 << 40, 0, 8), "0 is no limit");
    }

    /// The defaults never slow what replication does on two cores (about
    /// 57,000 messages a second from one peer, for as long as a first
    /// sync takes; the 100 feeds of 1,000 messages of the benchmarks and
    /// tests are a few hundred kB each). Regression: the default rate was
    /// 50,000, which slowed a first sync from a shoal pub once its first
    /// second's worth had passed.
    #[test]
    fn the_defaults_leave_normal_replication_alone() {
        let t0 = Instant::now();
        let mut r = Rate::new(DEFAULT_PEER_RATE);
        for i in 0..600 {
            let at = t0 + Duration::from_millis(100 * i);
            assert_eq!(r.take(6_000, at), None, "60,000 msg/s is not slowed");
        }
        let mut d = FeedDay::default();
        let feed = FeedId([3; 32]);
        for _ in 0..100_000 {
            assert!(d.charge(feed, 600, DEFAULT_MAX_FEED_BYTES_PER_DAY, 1));
        }
    }

    #[test]
    fn a_rate_lets_a_second_pass_then_spaces_messages() {
        let t0 = Instant::now();
        let mut r = Rate::new(100);
        assert_eq!(r.take(100, t0), None, "one second's worth at once");
        assert_eq!(r.take(100, t0), Some(Duration::from_secs(1)));
        assert_eq!(r.take(50, t0), Some(Duration::from_millis(1500)));
        assert_eq!(Rate::new(10).take(30, t0), Some(Duration::from_secs(2)));
        // Later, at the rate, no wait.
        let mut r = Rate::new(100);
        for i in 0..10 {
            assert_eq!(r.take(10, t0 + Duration::from_millis(100 * i)), None);
        }
        assert_eq!(Rate::new(0).take(1_000_000, t0), None, "0 is no limit");
    }
}
