//! shoal-tui: the terminal client of shoal.
//!
//! Data flows one way. Key presses and node events become [`event::Event`]s;
//! [`app::update`] (pure) applies each to the [`app::App`] state and answers
//! [`event::Effect`]s; the [`runtime`] carries effects out on blocking
//! threads through a [`backend::Backend`] (an embedded node, or a running
//! `shoal serve` reached through its control socket) and feeds the results
//! back as events; [`ui::draw`] draws the state, never changing it.
//!
//! Modules:
//! - pure: [`text`] (sanitising, widths, wrapping), [`links`] (`ssb:`
//!   links and ids in what peers wrote), [`markdown`] (post bodies laid
//!   out), [`images`] (pictures asked for, ready, failed), [`model`],
//!   [`event`], [`keys`], [`compose`], [`layout`], [`screens`] (one module
//!   per tab), [`app`], [`ui`];
//! - I/O: [`backend`], [`runtime`], [`term`], [`picture`] (decoding
//!   blobs for the terminal), [`opener`] (the system opener), [`demo`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod backend;
pub mod compose;
pub mod demo;
pub mod event;
pub mod images;
pub mod keys;
pub mod layout;
pub mod links;
pub mod markdown;
pub mod model;
pub mod opener;
pub mod picture;
pub mod runtime;
pub mod screens;
pub mod term;
pub mod text;
pub mod ui;
