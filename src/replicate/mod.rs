//! Replication: which feeds to want, and the protocols that move them.
//!
//! Owns `createHistoryStream` (both sides), EBT sessions and the choice of
//! feeds (ours, those we follow, those they follow up to `hops`, never
//! blocked ones). Uses `store` for what we hold, `ingest::Pipeline` to check
//! and store what arrives and `ingest::limits` for what peers may make us
//! take, `rpc` to talk; never touches sockets directly. [`watch`] keeps
//! what the sessions saw of each feed, for diagnostics. [`newest`] fetches
//! a followed feed's newest messages first and its older history behind. [`blobs`] runs the
//! blobs protocol on the same connections.

pub mod blobs;
pub mod ebt;
pub mod newest;
pub mod session;
pub mod watch;
