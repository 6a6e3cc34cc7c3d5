//! Validation-only baselines for the import benchmark: other SSB
//! validators run on the same dump, without storage. The Rust crates
//! `ssb-validate` and `ssb-verify-signatures` run in `shoal-validators`, a
//! Cargo project of its own (`benches/validators`, built here on demand so
//! that their old dependencies stay out of the shoal workspace); the
//! JavaScript `ssb-validate` runs in `benches/js/validate-loop.js` under
//! `node`, from the refpeer kit's oracle. Each says what its timing covers.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One validator's best time over the whole dump.
pub struct Rate {
    /// Its key in `shoal-validators`' output, or `js-ssb-validate`.
    pub name: String,
    /// What ran, for the table.
    pub label: String,
    /// Messages validated.
    pub count: u64,
    /// Milliseconds of validation, the best of 3.
    pub ms: f64,
}

impl Rate {
    /// Messages a second.
    pub fn per_sec(&self) -> f64 {
        self.count as f64 * 1e3 / self.ms
    }

    fn from_json(line: &str) -> Rate {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON rate ({e}): {line}"));
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Rate {
            name: text("name"),
            label: text("label"),
            count: v["count"].as_u64().expect("count"),
            ms: v["ms"].as_f64().expect("ms"),
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`; its standard output. Panics with its error output when it
/// fails.
fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Builds `shoal-validators` (release, from its committed lockfile, into
/// `target_dir`) and runs it on `dump`: one [`Rate`] per measure.
pub fn rust_crates(dump: &Path, target_dir: &Path) -> Vec<Rate> {
    eprintln!("building and running benches/validators (the first build takes a minute or two)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(repo().join("benches/validators/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    run(build, "cargo build of benches/validators");
    let mut validators = Command::new(target_dir.join("release/shoal-validators"));
    validators.arg(dump);
    run(validators, "shoal-validators")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(Rate::from_json)
        .collect()
}

/// Runs the JavaScript `ssb-validate` loop on `dump` with the oracle of the
/// refpeer kit at `kit`.
pub fn js_ssb_validate(dump: &Path, kit: &Path) -> Rate {
    eprintln!("running benches/js/validate-loop.js");
    let mut node = Command::new("node");
    node.arg(repo().join("benches/js/validate-loop.js"))
        .arg(dump)
        .env("ORACLE_DIR", kit.join("oracle"));
    let out = run(node, "node benches/js/validate-loop.js");
    let mut rate = Rate::from_json(out.trim());
    let version: Value = serde_json::from_str(out.trim()).expect("JSON");
    rate.name = "js-ssb-validate".into();
    rate.label = format!(
        "JS ssb-validate {} loop (`append` per message, node, one thread)",
        version["version"].as_str().unwrap_or("?")
    );
    rate
}
