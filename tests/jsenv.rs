//! Helpers for the tests that run real JavaScript: finding `node`, the
//! refpeer kit and the room kit (`tests/js/rooms`), and running external
//! commands under a time bound.
//!
//! Nothing here skips: a missing `node`, `timeout` or kit fails the test that
//! asked for it, with a message saying what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The repository root.
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails the test unless `node` runs; returns its version.
pub fn require_node() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let out = Command::new("node")
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "`node` could not be run ({e}): these tests compare shoal with real \
                     JavaScript and need node >= 18 on PATH"
                )
            });
        assert!(out.status.success(), "`node --version` failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// A command that runs `program` under `timeout`: SIGTERM after `secs`
/// seconds, SIGKILL 5 s later.
pub fn bounded(secs: u32, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", &secs.to_string()])
        .arg(program)
        .stdin(Stdio::null());
    cmd
}

/// Runs a command and returns its output, failing the test (with its stderr)
/// when it cannot start, times out or exits non-zero.
pub fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run {cmd:?}: {e} (is coreutils `timeout` on PATH?)")
    });
    let code = out.status.code();
    assert!(
        code != Some(124) && code != Some(137),
        "{what}: timed out ({cmd:?})\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        tail(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let start = s.len().saturating_sub(2000);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].to_string()
}

/// The refpeer kit: `SHOAL_REFPEER`, else `../shared/refpeer` beside the
/// checkout. Fails the test when it is not there.
pub fn refpeer_dir() -> PathBuf {
    let dir = match std::env::var_os("SHOAL_REFPEER") {
        Some(d) => PathBuf::from(d),
        None => repo_dir().join("../shared/refpeer"),
    };
    let dir = if dir.is_relative() {
        repo_dir().join(dir)
    } else {
        dir
    };
    assert!(
        dir.join("bin/install.sh").is_file(),
        "refpeer kit not found at {} (set SHOAL_REFPEER)",
        dir.display()
    );
    dir.canonicalize().expect("refpeer kit path")
}

/// The refpeer kit with its node modules installed: runs `bin/install.sh`
/// once per test run (it is a cheap check when they are up to date).
pub fn refpeer() -> &'static Path {
    static KIT: OnceLock<PathBuf> = OnceLock::new();
    KIT.get_or_init(|| {
        require_node();
        let kit = refpeer_dir();
        run(
            &mut bounded(900, kit.join("bin/install.sh")),
            "refpeer bin/install.sh",
        );
        kit
    })
}

/// The room kit (`tests/js/rooms`: ssb-room and a Manyverse-style peer)
/// with its node modules installed: runs its `install.sh` once per test
/// run (a cheap check when they are up to date, `npm ci` from the
/// committed lockfile else).
pub fn room_kit() -> &'static Path {
    static KIT: OnceLock<PathBuf> = OnceLock::new();
    KIT.get_or_init(|| {
        require_node();
        let kit = repo_dir().join("tests/js/rooms");
        run(
            &mut bounded(900, kit.join("install.sh")),
            "tests/js/rooms/install.sh (the room kit's npm modules; is the npm registry reachable?)",
        );
        kit
    })
}

/// A refpeer `ssb-server` in a temporary home on a free loopback port (with
/// TCP_NODELAY), stopped with `bin/stop.sh` on drop, whatever happened.
pub struct JsPeer {
    /// The kit.
    pub kit: PathBuf,
    /// Its REFPEER_HOME.
    pub home: tempfile::TempDir,
    /// Its name in the kit.
    pub name: &'static str,
    /// The network namespace it runs in (none: the test's own).
    pub netns: Option<String>,
}

impl JsPeer {
    /// Makes and starts a peer that stops by itself after `ttl_secs`.
    pub fn start(name: &'static str, ttl_secs: u32) -> JsPeer {
        JsPeer::start_with(name, ttl_secs, |_| {})
    }

    /// Makes a peer, lets `configure` change its ssb-server config (the
    /// JSON `bin/mkpeer.sh` wrote), and starts it.
    pub fn start_with(
        name: &'static str,
        ttl_secs: u32,
        configure: impl FnOnce(&mut serde_json::Value),
    ) -> JsPeer {
        let port = crate::nodes::free_port();
        JsPeer::start_in(None, port, name, ttl_secs, &[], configure)
    }

    /// Makes a peer listening on `port` that runs in network namespace
    /// `netns` (none: the test's own), with `env` set for its server (such
    /// as `NODE_OPTIONS` preloading a shim), lets `configure` change its
    /// config, and starts it.
    pub fn start_in(
        netns: Option<&str>,
        port: u16,
        name: &'static str,
        ttl_secs: u32,
        env: &[(&str, &str)],
        configure: impl FnOnce(&mut serde_json::Value),
    ) -> JsPeer {
        let peer = JsPeer {
            kit: refpeer().to_path_buf(),
            home: tempfile::tempdir().unwrap(),
            name,
            netns: netns.map(str::to_string),
        };
        let port = port.to_string();
        run(peer.bin("mkpeer.sh", 60).arg(&port), "bin/mkpeer.sh");
        let config = peer.home.path().join(name).join("config");
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).expect("the peer's config"))
                .expect("the peer's config is JSON");
        configure(&mut value);
        std::fs::write(&config, value.to_string()).expect("write the peer's config");
        let mut start = peer.bin("start.sh", 60);
        start.arg(ttl_secs.to_string()).env("NODELAY", "1");
        for (k, v) in env {
            start.env(k, v);
        }
        run(&mut start, "bin/start.sh");
        peer
    }

    /// `program` under a time bound, in the peer's network namespace.
    fn bounded(&self, secs: u32, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            None => bounded(secs, program),
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "timeout", "-k", "5", &secs.to_string()])
                    .arg(program)
                    .stdin(Stdio::null());
                cmd
            }
        }
    }

    /// A kit `bin/` script for this peer, under a time bound.
    pub fn bin(&self, script: &str, secs: u32) -> Command {
        let mut cmd = self.bounded(secs, self.kit.join("bin").join(script));
        cmd.arg(self.name).env("REFPEER_HOME", self.home.path());
        cmd
    }

    /// `bin/sbot.sh ARGS…` (an RPC call): its output, trimmed.
    pub fn sbot(&self, args: &[&str]) -> String {
        let out = run(self.bin("sbot.sh", 60).args(args), "bin/sbot.sh");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// One field of `bin/info.sh` (`id`, `address`, …).
    pub fn info(&self, field: &str) -> String {
        let out = run(self.bin("info.sh", 30).arg(field), "bin/info.sh");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits (up to a minute) until this peer holds `feed` up to `seq`.
    pub fn wait_seq(&self, feed: &str, seq: usize) {
        run(
            self.node(&self.kit.join("scripts/wait-seq.js"), 80)
                .arg(feed)
                .arg(seq.to_string())
                .arg("60"),
            "scripts/wait-seq.js",
        );
    }

    /// A node script run for this peer (first argument: its name).
    pub fn node(&self, script: &Path, secs: u32) -> Command {
        let mut cmd = self.bounded(secs, "node");
        cmd.arg("-r")
            .arg(self.kit.join("scripts/nodelay.js"))
            .arg(script)
            .arg(self.name)
            .env("REFPEER_HOME", self.home.path())
            .env("SHOAL_REFPEER", &self.kit);
        cmd
    }

    /// A feed (default: the peer's own) as the peer serves it with
    /// `createHistoryStream` (the kit's `scripts/dump.js`), one JSON per line.
    pub fn dump(&self, feed: Option<&str>, keys: bool) -> String {
        let out = self.home.path().join("dump.ndjson");
        let mut cmd = self.node(&self.kit.join("scripts/dump.js"), 60);
        cmd.arg(&out);
        if let Some(feed) = feed {
            cmd.arg(feed);
        }
        if keys {
            cmd.arg("--keys");
        }
        run(&mut cmd, "scripts/dump.js");
        std::fs::read_to_string(&out).unwrap()
    }
}

impl Drop for JsPeer {
    fn drop(&mut self) {
        let _ = self.bin("stop.sh", 30).output();
    }
}
