//! `shoal storage`, `prune` and `compact`: the store's size and the
//! retention rules, over the store's own report and pruning
//! (`store::prune`). Imports the store, the read model (for names) and
//! the host; nothing else.

use std::path::Path;
use std::time::{Duration, Instant};

use super::types::{FeedBytes, FeedPruned, HopBytes, PruneReport, Storage};
use super::{ApiError, Host, Response};
use crate::social::View;
use crate::store::Retention;

/// Largest feeds listed by `shoal storage`.
const LARGEST: usize = 10;

/// How long `shoal compact` waits for transactions in progress to end.
const COMPACT_WAIT: Duration = Duration::from_secs(30);

/// The bytes of the files under `dir` (0 when it does not exist).
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// The rules in words, for a person (none: nothing is pruned).
pub(super) fn describe(r: &Retention) -> Option<String> {
    if !r.prunes() {
        return None;
    }
    let mut parts = vec![format!("feeds within {} follows kept whole", r.keep_hops)];
    if let Some(ms) = r.max_age_ms {
        parts.push(format!(
            "others' messages older than {} days pruned",
            ms as f64 / 86_400_000.0
        ));
    }
    if let Some(b) = r.max_feed_bytes {
        parts.push(format!(
            "others keep at most {:.1} MiB each",
            b as f64 / (1024.0 * 1024.0)
        ));
    }
    Some(parts.join("; "))
}

pub(super) fn storage(host: &dyn Host) -> Result<Response, ApiError> {
    let store = host.store()?;
    let me = host.id();
    let report = store.storage(&me, LARGEST)?;
    let r = store.reader()?;
    let mut view = View::new(&r)?;
    let mut largest = Vec::new();
    for (feed, hops, messages, bytes) in report.largest {
        largest.push(FeedBytes {
            feed: view.person(&feed)?,
            hops,
            messages,
            bytes,
            from: store.held_range(&feed)?.map(|h| h.from),
        });
    }
    let dir = host.home_dir();
    let beside = ["search"]
        .iter()
        .map(|name| (name.to_string(), dir_bytes(&dir.join(name))))
        .filter(|(_, b)| *b > 0)
        .collect();
    let file_bytes =
        std::fs::metadata(dir.join("store.redb")).map_or(report.file_bytes, |m| m.len());
    Ok(Response::Storage(Storage {
        file_bytes,
        unallocated_bytes: file_bytes.saturating_sub(report.file_bytes),
        message_bytes: report.message_bytes,
        index_bytes: report.index_bytes,
        free_bytes: report.free_bytes,
        beside,
        blob_bytes: dir_bytes(&dir.join("blobs")),
        messages: report.messages,
        by_hops: report
            .by_hops
            .into_iter()
            .map(|(hops, feeds, messages, bytes)| HopBytes {
                hops,
                feeds,
                messages,
                bytes,
            })
            .collect(),
        largest,
        retention: describe(&host.retention()),
    }))
}

pub(super) fn prune(host: &dyn Host, dry_run: bool) -> Result<Response, ApiError> {
    let rules = host.retention();
    if !rules.prunes() {
        return Err(ApiError::Usage(
            "no retention limits are set: add max_age_days or max_feed_mb to the [retention] section of config.toml".into(),
        ));
    }
    let (plan, done) = host.prune(dry_run)?;
    let store = host.store()?;
    let r = store.reader()?;
    let mut view = View::new(&r)?;
    let mut feeds = Vec::new();
    for f in &plan.feeds {
        feeds.push(FeedPruned {
            feed: view.person(&f.feed)?,
            hops: f.hops,
            messages: f.messages,
            bytes: f.bytes,
            keep_from: f.keep_from,
        });
    }
    let (messages, bytes) = match &done {
        Some(d) => (d.messages, d.bytes),
        None => (plan.messages, plan.bytes),
    };
    Ok(Response::Pruned(PruneReport {
        dry_run,
        retention: describe(&rules),
        messages,
        bytes,
        feeds,
    }))
}

pub(super) fn compact(host: &dyn Host) -> Result<Response, ApiError> {
    let path = host.home_dir().join("store.redb");
    let size = || std::fs::metadata(&path).map_or(0, |m| m.len());
    let store = host.store()?;
    let before = size();
    let started = Instant::now();
    store.compact(COMPACT_WAIT)?;
    Ok(Response::Compacted {
        before,
        after: size(),
        millis: started.elapsed().as_millis() as u64,
    })
}
