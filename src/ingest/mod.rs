//! Ingest: every way messages get into the store, and the one writer of a
//! running node.
//!
//! Owns checking JSON lines and messages from peers (parse, parallel batch
//! verification, placement in their feeds), the limits that checking
//! enforces and the counters of what the limits did, the import of JSON
//! lines files, the long-lived pipeline of a running node, and that node's
//! one writer thread, through which every store write of a running node
//! goes (what peers send, our publishes and group operations, peer notes,
//! read marks, invites made and redeemed). Memory is bounded by the batch
//! size, never by the input.
//!
//! - `check`: what a line may be; the checker; what became of each line.
//! - [`limits`]: the limits on what peers make the node take, and their
//!   counters.
//! - `file`: `shoal import` of a file ([`import`]) and the same reading
//!   for an import through a running node ([`import_through`]).
//! - `pipeline`: the checker thread of a running node.
//! - `writer`: the writer thread of a running node.
//!
//! Imports `crypto`, `feed` and `store`; never `replicate`, `node`,
//! `home` or `local` (`replicate` imports it: sessions submit to the
//! [`Pipeline`] and enforce the [`limits`]; the node starts the [`Writer`]
//! and hands it the announcer).

mod check;
mod file;
pub mod limits;
mod pipeline;
mod writer;

pub(crate) use check::claimed_author;
pub use check::{
    BATCH_LINES, ImportError, LineResult, MAX_LINE_BYTES, Rejection, start_check_pool,
};
pub use file::{Summary, import, import_through};
pub use limits::FeedCap;
pub use pipeline::Pipeline;
pub use writer::{Appended, InviteContent, PUBLISH_BATCH, PublishError, Redeemed, Writer};
