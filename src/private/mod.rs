//! Private messages: encrypting and opening message content for a set of
//! recipients.
//!
//! Owns: private-box, the `<base64>.box` format of direct messages
//! ([`pbox`]), and the pure core of private groups with rotatable keys
//! ([`groups`]). Pure: no I/O, no clock, no global state apart from the random
//! source behind [`crate::crypto`]. May import only [`crate::crypto`] and
//! [`crate::feed`]; never `store`, `net`, `replicate`, `node` or anything
//! above them, so the formats can be tested and reused on their own.

pub mod groups;
pub mod pbox;

pub use pbox::{BoxError, MAX_RECIPIENTS, Unboxer, box_message, is_boxed};
