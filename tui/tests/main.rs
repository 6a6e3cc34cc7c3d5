//! The tests of shoal-tui, built as one test binary: screens drawn from
//! fixture data against snapshots, the pure `update`, the real binary
//! driven through tmux against a home with fixture data, links in posts,
//! markdown and pictures in posts.

mod backends;
mod demo;
mod e2e;
mod fixture;
mod home;
mod links;
mod markdown;
mod pictures;
mod render;
mod update;
