//! shoal's integration tests, built as one test binary.
//!
//! Conformance tests read the shared vectors through `SHOAL_VECTORS` and fail
//! (never skip) when the vectors cannot be found.

mod common;
mod conformance;
mod properties;
