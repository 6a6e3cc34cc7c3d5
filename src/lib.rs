//! shoal: a Secure Scuttlebutt peer.
//!
//! Where things happen, for one message: it is **signed** in
//! [`feed`] (`feed::msg`, keys from [`crypto`]) and **verified** there too,
//! by the validator, the only maker of [`feed::VerifiedMsg`]; **stored**
//! by [`store`] (one redb write transaction a batch, made in a running
//! node by the one writer of [`ingest`]); **replicated** by [`replicate`] over
//! [`rpc`] and [`net`], in sessions the [`node`] runs; **asked for** by the
//! CLI and the terminal client as a typed [`api::Request`], through the
//! control socket of [`local`] when a node runs; and **drawn** from the
//! read models of [`social`]. The README's "How it is built" follows one
//! post from a key press to another peer's screen.
//!
//! Modules, one line each:
//! - [`crypto`]: the only code calling ed25519-dalek and sodiumoxide: keys, ids, signatures, boxes.
//! - [`feed`]: pure; JavaScript-exact JSON, classic messages, the validator.
//! - [`private`]: pure; private-box for direct messages and the private groups' core.
//! - [`store`]: redb; the log, the content indexes, groups' keys, one transaction per batch.
//! - [`blobs`]: the blob store: content-addressed files, whole or absent.
//! - [`social`]: read models (timeline, threads, profiles, contacts, inbox) and the content of social actions.
//! - [`search`]: the full-text index (tantivy) of what we can read, kept in step with the store, and its queries.
//! - [`text`]: how the CLI writes the read models for people.
//! - [`ingest`]: how messages get in: checking, file import, the pipeline, the limits on peers, and a node's one writer.
//! - [`net`]: secret handshake, box stream, multiserver addresses, which IPs are public.
//! - [`rpc`]: muxrpc over any byte stream.
//! - [`dialer`]: which announced pubs to dial and how often (pure decisions).
//! - [`uri`]: `ssb:` URIs as `ssb-uri2` reads and writes them, and ids given either way.
//! - [`invite`]: pub invites: their codes, redeeming one at a pub, what an invite's key may call.
//! - [`lan`]: LAN discovery as `ssb-local` does it: what a LAN packet may make the node dial.
//! - [`replicate`]: EBT (a pure state machine) and legacy replication sessions.
//! - [`home`]: the home directory: identity, config, store file.
//! - [`room`]: rooms: the server relaying tunnels between attendants, and a tunnel as a byte stream.
//! - [`node`]: the running peer: listener, dials, connections, replication sessions, events.
//! - [`api`]: the typed API: `Request`, `Response`, `ApiError` and the one `execute`.
//! - [`local`]: the control socket carrying the API, and a node started for a home.
//!
//! Dependency rule, stated here once and checked by a test
//! (`tests/layers.rs`): a module imports only modules of the layers listed
//! before its own (never one of its own layer, never a later one); nothing
//! imports the binaries.
//! 1. `crypto`
//! 2. `feed`
//! 3. `private`
//! 4. `store`, `blobs`
//! 5. `social`
//! 6. `search`
//! 7. `text`
//! 8. `ingest`
//! 9. `net`, `rpc`
//! 10. `dialer`, `invite`, `lan`, `uri`
//! 11. `replicate`
//! 12. `home`, `room`
//! 13. `node`
//! 14. `api`
//! 15. `local`
//! 16. `fuzzing`: the fuzz targets' bodies, built only with the `fuzzing` feature.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod blobs;
pub mod crypto;
pub mod dialer;
pub mod feed;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod home;
pub mod ingest;
pub mod invite;
pub mod lan;
pub mod local;
pub mod net;
pub mod node;
pub mod private;
pub mod replicate;
pub mod room;
pub mod rpc;
pub mod search;
pub mod social;
pub mod store;
pub mod text;
pub mod uri;
