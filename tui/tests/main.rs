//! The tests of shoal-tui, built as one test binary: screens drawn from
//! fixture data against snapshots, the pure `update`, the backends against
//! a real store, the demo, and the real binary driven through tmux.

mod fixture;
mod render;
mod update;
