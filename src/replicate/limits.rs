//! Resource limits on what peers may make the node take, set in
//! `config.toml` and shown in `shoal status`: messages per second from one
//! peer (it is slowed: we stop reading its socket until it is within its
//! rate), bytes per day from all peers (past it, each peer is dropped as it
//! sends more, until the next UTC day), and bytes per feed (the checker
//! refuses a feed's messages past it: see [`crate::import`]). The node
//! itself is never stopped by a peer.
//!
//! Owns the counters; imports nothing but std, tokio's clock and serde.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::crypto::FeedId;

/// The limits (0: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Messages per second taken from one peer.
    pub peer_rate: u32,
    /// Bytes taken from all peers in one UTC day.
    pub max_bytes_per_day: u64,
    /// Bytes of one feed we store.
    pub max_feed_bytes: u64,
}

impl Limits {
    /// The limits as `shoal status` shows them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "peer_rate": self.peer_rate,
            "max_bytes_per_day": self.max_bytes_per_day,
            "max_feed_bytes": self.max_feed_bytes,
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
}

/// What the limits did, shared by the sessions of one node.
#[derive(Debug, Default)]
pub struct Usage {
    c: Mutex<Counters>,
}

fn utc_day() -> u64 {
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
        let today = utc_day();
        if c.day != today {
            c.day = today;
            c.bytes_today = 0;
        }
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

    /// For `shoal status`.
    pub fn to_json(&self, limits: &Limits) -> serde_json::Value {
        let c = self.lock();
        let mut v = limits.to_json();
        v["bytes_today"] = (if c.day == utc_day() { c.bytes_today } else { 0 }).into();
        v["peers_slowed"] = c.slowed.into();
        v["peers_dropped"] = c.dropped.into();
        v["feeds_capped"] = c.capped.len().into();
        v
    }
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
