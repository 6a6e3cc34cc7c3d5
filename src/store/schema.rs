//! Every redb table of the store, declared once.
//!
//! Keys and values are fixed binary layouts (ids as 32 raw bytes, integers
//! big-endian inside composite keys so they sort numerically). Bump
//! [`SCHEMA_VERSION`] whenever a layout changes.

use redb::TableDefinition;

/// Version of the layouts below, kept in [`META`] under `"schema_version"`.
pub const SCHEMA_VERSION: u64 = 1;

/// Store-wide counters and the schema version.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Local receive sequence -> the message: `id (32) | receive time ms, f64 LE
/// (8) | compact JSON of the value`. Keys only grow, so the table is filled
/// by appends (dense pages) and iterates in receive order.
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

/// Message id -> receive sequence.
pub const IDS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("ids");

/// `author (32) | sequence u64 BE (8)` -> receive sequence: a feed in order.
pub const FEEDS: TableDefinition<&[u8; 40], u64> = TableDefinition::new("feeds");

/// Author -> `sequence u64 LE (8) | id (32)` of its latest message.
pub const LATEST: TableDefinition<&[u8; 32], &[u8; 40]> = TableDefinition::new("latest");

/// `author (32) | sequence u64 BE (8)` -> compact JSON of a valid message we
/// refused because the feed already holds a different one at that sequence.
pub const FORKS: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("forks");

/// The composite key of a feed position.
pub fn feed_key(author: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(author);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}
