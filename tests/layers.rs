//! The dependency rule, checked: `src/lib.rs` states it once, as a
//! numbered list of layers; this test reads that list and every `crate::`
//! path in the code of `src/` (comments aside), and fails on an import
//! that points up or sideways, on a module the rule does not place, and on
//! a terminal client that reaches past the API into shoal's internals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers of the rule in `lib.rs`: lines `//! N. `a`, `b` …`.
fn layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let mut out = Vec::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((n, names)) = rest.split_once(". ") else {
            continue;
        };
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let names: Vec<String> = names
            .split(':')
            .next()
            .unwrap_or("")
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert_eq!(
            n.parse::<usize>().unwrap(),
            out.len() + 1,
            "layers are numbered 1, 2, …: {line}"
        );
        out.push(names);
    }
    out
}

/// The code of a file or module directory, comments dropped.
fn code_of(path: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            files.extend(code_of(&e.unwrap().path()));
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        let text = std::fs::read_to_string(path).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        files.push((path.to_owned(), code));
    }
    files
}

/// The crate modules `code` names (`crate::x`, also in `use crate::{x, y}`).
fn named(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn every_import_points_down_the_layers_of_lib_rs() {
    let layers = layers();
    assert!(layers.len() >= 8, "the rule in src/lib.rs: {layers:?}");
    let mut rank: BTreeMap<String, usize> = BTreeMap::new();
    for (i, names) in layers.iter().enumerate() {
        for n in names {
            assert!(rank.insert(n.clone(), i).is_none(), "{n} placed twice");
        }
    }
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let Some(&mine) = rank.get(&name) else {
            wrong.push(format!(
                "src/{name} is not placed in the dependency rule of src/lib.rs"
            ));
            continue;
        };
        for (file, code) in code_of(&path) {
            for other in named(&code, "crate::") {
                if other == name {
                    continue;
                }
                match rank.get(&other) {
                    Some(&theirs) if theirs < mine => {}
                    Some(&theirs) => wrong.push(format!(
                        "{}: {name} (layer {}) imports {other} (layer {})",
                        file.display(),
                        mine + 1,
                        theirs + 1
                    )),
                    None => wrong.push(format!(
                        "{}: imports crate::{other}, which the rule does not place",
                        file.display()
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_rule_catches_an_arrow_pointing_up() {
    // The checker itself: a `use` list and a path are both seen.
    let code = "use crate::{feed, node::Node};\nfn f() { crate::store::x(); }\n";
    let names: Vec<String> = named(code, "crate::").into_iter().collect();
    assert_eq!(names, ["feed", "node", "store"]);
    // Comments do not count.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.rs");
    std::fs::write(&f, "//! see [`crate::node`]\nuse crate::feed;\n").unwrap();
    let (_, code) = code_of(&f).pop().unwrap();
    assert_eq!(
        named(&code, "crate::").into_iter().collect::<Vec<_>>(),
        ["feed"]
    );
}

#[test]
fn the_terminal_client_uses_the_api_not_the_internals() {
    let tui = Path::new(env!("CARGO_MANIFEST_DIR")).join("tui/src");
    let allowed = ["api", "local", "crypto", "home", "node", "uri"];
    let mut wrong = Vec::new();
    for (file, code) in code_of(&tui) {
        for m in named(&code, "shoal::") {
            if !allowed.contains(&m.as_str()) {
                wrong.push(format!("{}: shoal::{m}", file.display()));
            }
        }
        for banned in ["redb::", "tokio::net", "UnixStream", "TcpListener"] {
            if code.contains(banned) {
                wrong.push(format!("{}: {banned}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every call to the cryptography crates stays in `src/crypto`, so that
/// each (sodiumoxide above all, unmaintained upstream) can be swapped
/// there alone.
#[test]
fn only_crypto_names_the_cryptography_crates() {
    let mut wrong = Vec::new();
    for (file, code) in code_of(&src()) {
        if file.starts_with(src().join("crypto")) {
            continue;
        }
        for banned in ["sodiumoxide", "ed25519_dalek", "curve25519_dalek"] {
            if code.contains(banned) {
                wrong.push(format!("{}: {banned}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
