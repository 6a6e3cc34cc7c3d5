//! shoal's integration tests, built as one test binary.
//!
//! Conformance tests read the shared vectors through `SHOAL_VECTORS` and fail
//! (never skip) when the vectors cannot be found.

mod bad_input;
mod blobs;
mod cli;
mod common;
mod conformance;
mod control;
mod conversation;
mod crash;
mod devices;
#[path = "../benches/common/mod.rs"]
mod dumps;
mod fuzz_corpus;
mod groups;
mod hardening;
mod interop;
mod invites;
mod js_feed;
mod js_import;
mod jsenv;
mod json_js;
mod lan;
mod layers;
mod limits;
mod load;
mod multinode;
mod mute_edit;
mod newest_first;
mod nodes;
mod private_box;
mod properties;
mod restore;
mod retention;
mod rooms;
mod rooms_js;
mod search;
mod social;
mod wire_abuse;
