//! Replication: which feeds to want, and the protocols that move them.
//!
//! Owns `createHistoryStream` (both sides), EBT sessions and the choice of
//! feeds (ours, those we follow, those they follow up to `hops`, never
//! blocked ones). Uses `store` for what we hold, `import::Pipeline` to check
//! and store what arrives, `rpc` to talk; never touches sockets directly.

pub mod ebt;
pub mod limits;
pub mod session;
