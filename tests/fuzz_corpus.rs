//! Replays the fuzz targets' kept inputs on stable Rust: every file of
//! `fuzz/corpus/<target>/` (minimised seeds) and `fuzz/regressions/<target>/`
//! (inputs that once crashed a target, and edge cases), and the seeds the
//! library generates, through the same bodies the fuzz targets run
//! (`shoal::fuzzing`), which panic on any broken property.
//!
//! Owns only the replay; imports nothing of shoal but `fuzzing`. A missing or
//! empty folder fails the test, so a bad checkout cannot pass silently.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use shoal::fuzzing::{TARGETS, run, seeds};

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

/// The files of one folder, sorted; fails when it is missing or empty.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir(kind, target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs every input, then fails naming each one that panicked.
fn replay(target: &str, inputs: impl IntoIterator<Item = (String, Vec<u8>)>) -> Vec<String> {
    let mut failed = Vec::new();
    for (name, bytes) in inputs {
        if catch_unwind(AssertUnwindSafe(|| run(target, &bytes))).is_err() {
            failed.push(format!("{target}: {name}"));
        }
    }
    failed
}

fn replay_kind(kind: &str) {
    let mut failed = Vec::new();
    for target in TARGETS {
        let files = inputs(kind, target)
            .into_iter()
            .map(|(p, b)| (p.display().to_string(), b));
        failed.extend(replay(target, files));
    }
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
}

#[test]
fn corpus_replays() {
    replay_kind("corpus");
}

#[test]
fn regressions_replay() {
    replay_kind("regressions");
}

#[test]
fn generated_seeds_pass() {
    let mut failed = Vec::new();
    for target in TARGETS {
        let s = seeds(target);
        assert!(!s.is_empty(), "no seeds for {target}");
        let named = s
            .into_iter()
            .enumerate()
            .map(|(i, b)| (format!("seed {i}"), b));
        failed.extend(replay(target, named));
    }
    assert!(failed.is_empty(), "seeds that fail: {failed:#?}");
}
