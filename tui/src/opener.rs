//! Handing a file or a web address to the system opener (`xdg-open`, or
//! `open` on macOS; `SHOAL_TUI_OPENER` names another), and checking a
//! file the user wants to attach.
//!
//! The opener is started detached: in a process group of its own (the
//! terminal's signals do not reach it), with no input and its output
//! discarded (it never draws over the screen), and reaped by a thread of
//! its own. What it is given is one argument, never a shell line. I/O;
//! imports `images` (the size limit) only.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::images::MAX_BYTES;

/// The opener's command.
fn opener() -> String {
    std::env::var("SHOAL_TUI_OPENER")
        .ok()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open".into()
            } else {
                "xdg-open".into()
            }
        })
}

/// Starts the opener on `what`.
pub fn open(what: &OsStr) -> Result<(), String> {
    let opener = opener();
    let mut child = Command::new(&opener)
        .arg(what)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {opener}: {e}"))?;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// A file to attach, as typed (`~/` is the home directory): the file, or
/// why it cannot be attached.
pub fn attachable(typed: &str) -> Result<PathBuf, String> {
    let typed = typed.trim();
    let path = match typed.strip_prefix("~/") {
        Some(rest) => dirs::home_dir()
            .ok_or("no home directory for ~")?
            .join(rest),
        None => PathBuf::from(typed),
    };
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "{} is {} KB, larger than the {} KB blob limit",
            path.display(),
            meta.len() / 1024,
            MAX_BYTES / 1024
        ));
    }
    std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_within_the_limit_are_attached() {
        let dir = tempfile::tempdir().expect("temp dir");
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "hi").expect("write");
        assert_eq!(
            attachable(f.to_str().unwrap()),
            Ok(std::fs::canonicalize(&f).unwrap())
        );
        assert!(attachable(dir.path().to_str().unwrap()).is_err());
        assert!(attachable("/no/such/file").is_err());
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .and_then(|file| file.set_len(MAX_BYTES + 1))
            .expect("big file");
        assert!(
            attachable(big.to_str().unwrap())
                .unwrap_err()
                .contains("limit")
        );
    }
}
