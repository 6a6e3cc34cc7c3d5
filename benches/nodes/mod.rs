//! Running `shoal` and `shoal serve` (and the refpeer kit) from a
//! benchmark: what the benchmarks that start nodes share. Each uses a part.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `shoal` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shoal")
}

/// Runs `shoal --home HOME ARGS…`; its output, trimmed. Panics when it
/// fails.
pub fn shoal(home: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run shoal");
    assert!(
        out.status.success(),
        "shoal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The messages a home holds (`shoal --json status`).
pub fn messages_of(home: &Path) -> u64 {
    let out = Command::new(bin())
        .arg("--home")
        .arg(home)
        .args(["--json", "status"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.get("messages")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// The messages held by the node running on `home`, asked over its control
/// socket (no process started, so the polling costs the measured nodes
/// next to nothing); `None` when no node answers there.
fn messages_of_node(home: &Path) -> Option<u64> {
    match shoal::local::call(home, &shoal::api::Request::Status, &mut shoal::api::Discard) {
        Ok(Some(Ok(shoal::api::Response::Status(s)))) => Some(s.messages),
        _ => None,
    }
}

/// Waits (polling every 20 ms, at most `limit`) until a home holds
/// `target` messages; how long it took.
pub fn wait_messages(home: &Path, target: u64, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let n = messages_of_node(home).unwrap_or_else(|| messages_of(home));
        if n >= target {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "timed out at {n} of {target} messages"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `shoal serve` child process on 127.0.0.1, killed on drop.
pub struct Serve {
    child: Child,
}

impl Serve {
    /// Starts one logging warnings only, nowhere.
    pub fn start(home: &Path, port: u16) -> Serve {
        Serve::spawn(home, port, "warn", Stdio::null())
    }

    /// Starts one logging at `filter` to `home/serve.log`.
    pub fn start_logged(home: &Path, port: u16, filter: &str) -> Serve {
        let log = fs::File::create(home.join("serve.log")).unwrap();
        Serve::spawn(home, port, filter, log.into())
    }

    fn spawn(home: &Path, port: u16, filter: &str, stderr: Stdio) -> Serve {
        let child = Command::new(bin())
            .arg("--home")
            .arg(home)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("SHOAL_LOG", filter)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start shoal serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !home.join("shoal.sock").exists() {
            assert!(Instant::now() < deadline, "shoal serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { child }
    }

    /// The process id of the node.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status_kib(&self, field: &str) -> f64 {
        fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Peak resident memory so far (VmHWM), MiB.
    pub fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM:") / 1024.0
    }

    /// Resident memory now (VmRSS), MiB.
    pub fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") / 1024.0
    }

    /// CPU time used so far (user + system), seconds, in 10 ms ticks.
    pub fn cpu_secs(&self) -> f64 {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime, fields 14 and 15 of stat: 11 and 12 after the
        // command; 100 ticks a second on Linux.
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Peak memory (MiB), then stops the node with SIGTERM.
    pub fn stop(mut self) -> f64 {
        let peak = self.peak_mib();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        peak
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The refpeer kit: `SHOAL_REFPEER`, else `../shared/refpeer`.
pub fn kit() -> PathBuf {
    let dir = std::env::var_os("SHOAL_REFPEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/refpeer"));
    assert!(
        dir.join("bin/start.sh").exists(),
        "refpeer kit not found at {}",
        dir.display()
    );
    dir
}

/// Runs a kit script (`args[0]`, relative to the kit) for the peers in
/// `home`, with `env`; its output, trimmed. Panics when it fails.
pub fn js(kit: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(kit.join(args[0]));
    cmd.args(&args[1..]).env("REFPEER_HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kit command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
