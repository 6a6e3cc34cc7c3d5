//! Property tests of the message rules.
