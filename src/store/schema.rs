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

/// `author (32) | target (32)` -> `state (1) | receive sequence u64 BE (8)`
/// of the contact message that set it: who follows and blocks whom.
/// States are [`CONTACT_NONE`], [`CONTACT_FOLLOW`], [`CONTACT_BLOCK`].
pub const CONTACTS: TableDefinition<&[u8; 64], &[u8; 9]> = TableDefinition::new("contacts");

/// Contact state: neither following nor blocking (after an unfollow or unblock).
pub const CONTACT_NONE: u8 = 0;
/// Contact state: following.
pub const CONTACT_FOLLOW: u8 = 1;
/// Contact state: blocking.
pub const CONTACT_BLOCK: u8 = 2;

/// Peer address (multiserver form) -> JSON record of what we know of it.
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");

/// The composite key of a feed position.
/// The composite key of a contact edge.
pub fn contact_key(author: &[u8; 32], target: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(author);
    k[32..].copy_from_slice(target);
    k
}

/// The composite key of a feed position.
pub fn feed_key(author: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(author);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}
