//! Feeds: the JavaScript-exact JSON model and classic signed messages.
//!
//! Owns [`json`] (parse and print as V8 does), [`msg`] (build, sign, id,
//! validate) and [`content`] (typed views of what messages say). Pure, no
//! I/O: imports only `crypto`. Never imports `store`, `net` or anything that
//! does I/O.

pub mod content;
pub mod json;
pub mod msg;

pub use json::{JsString, JsonError, Object, Value};
pub use msg::{
    FeedState, KeyCache, MAX_MESSAGE_BYTES, RangeAnchor, SignedMsg, Unverified, ValidationError,
    VerifiedMsg, build, chain, chain_range, parse_hmac_key, prepare, validate, verify_many,
    verify_one,
};
