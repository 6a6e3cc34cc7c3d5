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
//! - [`import`]: streaming, batched, parallel verification of JSON lines into
//!   the store.
//! - [`home`]: the home directory: identity, config, store.
//! - [`node`]: the running peer; [`dialer`]: which known peers it dials
//!   and how often; [`local`]: its control socket.
//!
//! Dependency rule: `crypto <- feed <- private <- store <- social`,
//! `store <- import <- home <- main`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod crypto;
pub mod dialer;
pub mod feed;
#[doc(hidden)]
pub mod fuzzing;
pub mod home;
pub mod import;
pub mod local;
pub mod net;
pub mod node;
pub mod private;
pub mod replicate;
pub mod rpc;
pub mod social;
pub mod store;
pub mod text;
