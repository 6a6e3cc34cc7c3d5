//! shoal: a Secure Scuttlebutt peer.
//!
//! Layout and data flow (see the README for the whole picture):
//! - [`crypto`]: the only module touching ed25519-dalek and sodiumoxide.
//! - [`feed`]: pure; JavaScript-exact JSON and classic messages; the
//!   validator, the only maker of [`feed::VerifiedMsg`].
//! - [`private`]: pure; private-box encryption of message content.
//! - [`social`]: read models (timeline, threads, profiles, contacts,
//!   inbox) over the store's indexes, and the content of social actions.
//! - [`store`]: redb; appends our own messages and ingests verified batches,
//!   one write transaction each.
//! - [`ingest`]: streaming, batched, parallel verification of JSON lines
//!   and of messages from peers; the limits on what peers make the node
//!   take; the one writer of a running node's store.
//! - [`home`]: the home directory: identity, config, store.
//! - [`node`]: the running peer; [`dialer`]: which known peers it dials
//!   and how often; [`local`]: its control socket.
//!
//! Dependency rule: `crypto <- feed <- private <- store <- social`,
//! `store <- ingest <- replicate <- node`, `ingest <- home <- main`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commands;
pub mod crypto;
pub mod dialer;
pub mod feed;
#[doc(hidden)]
pub mod fuzzing;
pub mod home;
pub mod ingest;
pub mod local;
pub mod net;
pub mod node;
pub mod private;
pub mod replicate;
pub mod rpc;
pub mod social;
pub mod store;
pub mod text;
