//! Writes the generated fuzz seeds to `DIR/<target>/seed-<n>`, to start a
//! fuzzing run from (see `fuzz/README.md`): `cargo run --example fuzz_seeds
//! -- DIR`.

use std::path::PathBuf;

use shoal::fuzzing::{TARGETS, seeds};

fn main() {
    let Some(root) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz_seeds DIR");
        std::process::exit(2);
    };
    for target in TARGETS {
        let dir = root.join(target);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            std::process::exit(1);
        }
        for (i, bytes) in seeds(target).into_iter().enumerate() {
            let path = dir.join(format!("seed-{i}"));
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
}
