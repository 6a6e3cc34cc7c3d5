//! Running `shoal serve` as a child process, for the tests of replication
//! between nodes and with the JavaScript peer.
//!
//! A [`ServeNode`] is a home directory with an identity and a loopback port.
//! [`ServeNode::start`] runs `shoal --home H serve --listen 127.0.0.1:PORT`
//! with its log in a file beside the home, and returns once the node answers
//! `shoal address` on its control socket with that port. Every other command
//! on the home (while the node runs: through the control socket) is run under
//! a time bound. [`ServeNode::kill`] ends it with SIGKILL, as a crash
//! would. Dropping the node stops the process (SIGTERM, then SIGKILL),
//! whatever happened in the test; `shoal serve` also runs under `timeout`, so
//! it goes away by itself after a few minutes should the test process die.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use shoal::crypto::{FeedId, Keypair};

use crate::cli::{LogLine, Out, assert_no_panic, init_home, parse_log_line};

/// Seconds any single `shoal` command may take before the test fails.
const COMMAND_SECS: u32 = 30;

/// Seconds a `shoal serve` process may live at most.
const SERVE_TTL_SECS: u32 = 300;

/// A free TCP port on 127.0.0.1 for a server a test starts later (bound,
/// then released).
///
/// Regression (port race, a CI failure in `restore`): a port the kernel
/// hands out for `bind(0)` lies in the ephemeral range, so between this call
/// and the server's start any outgoing connection of the test run could
/// take it as its local port ("Address already in use"). Ports are
/// therefore taken below the ephemeral range, from a counter this process
/// owns (so no two tests of one run get the same port), starting at a place
/// derived from the process id (so two test processes rarely walk the same
/// ports), each checked free by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.clamp(12_000, 65_536));
    let span = high - low;
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (start + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below the ephemeral range")
}

/// Polls `check` every `every` until it returns `Some`, for at most `secs`
/// seconds; then fails the test with `what` and whatever `explain` says.
#[track_caller]
pub fn wait_for<T>(
    secs: u64,
    every: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {secs} s waiting for {what}\n{}", explain());
        }
        std::thread::sleep(every);
    }
}

/// The last `n` lines of a text file (empty when it cannot be read).
pub fn file_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A shoal home and, while started, its `shoal serve` process.
pub struct ServeNode {
    /// A short name for messages.
    pub name: String,
    /// The home directory.
    pub home: PathBuf,
    /// The node's feed id.
    pub id: FeedId,
    /// Its loopback port (kept across restarts).
    pub port: u16,
    /// The network namespace it runs in, and its address there (see
    /// [`ServeNode::in_netns`]); none: the test's own, on loopback.
    pub netns: Option<(String, String)>,
    /// Its `SHOAL_LOG` filter.
    pub log_filter: String,
    log: PathBuf,
    child: Option<Child>,
}

impl ServeNode {
    /// Makes an initialised home `dir/name` with identity `keys` (not running).
    pub fn init(dir: &Path, name: &str, keys: &Keypair) -> ServeNode {
        let home = init_home(dir, name, keys);
        ServeNode {
            name: name.to_string(),
            log: dir.join(format!("{name}.serve.log")),
            home,
            id: keys.id(),
            port: free_port(),
            netns: None,
            log_filter: "info,shoal=debug".into(),
            child: None,
        }
    }

    /// Makes a home `dir/name` restoring the identity `id` from its
    /// recovery `phrase` (not running; restoring until its feed comes
    /// back from a peer).
    pub fn restore(dir: &Path, name: &str, id: FeedId, phrase: &str) -> ServeNode {
        let home = dir.join(name);
        let out = crate::cli::shoal(&home, ["init", "--phrase", phrase]);
        assert_eq!(out.code, 0, "init --phrase: {}", out.stderr);
        assert_eq!(out.text(), format!("{id}\n"));
        ServeNode {
            name: name.to_string(),
            log: dir.join(format!("{name}.serve.log")),
            home,
            id,
            port: free_port(),
            netns: None,
            log_filter: "info,shoal=debug".into(),
            child: None,
        }
    }

    /// Runs the node (from its next start) in network namespace `ns`,
    /// listening on every address there at `port`, where `ip` is its one
    /// address besides loopback.
    pub fn in_netns(&mut self, ns: &str, ip: &str, port: u16) {
        self.netns = Some((ns.to_string(), ip.to_string()));
        self.port = port;
    }

    /// The multiserver address the node listens on.
    pub fn address(&self) -> String {
        let host = self.netns.as_ref().map_or("127.0.0.1", |(_, ip)| ip);
        format!("net:{host}:{}~shs:{}", self.port, self.id.b64())
    }

    /// The control socket's path.
    pub fn socket(&self) -> PathBuf {
        self.home.join("shoal.sock")
    }

    /// Whether the `serve` process is alive.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Starts `shoal serve` and waits until it answers on its control socket
    /// with its listening address.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{}: already started", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("serve log file");
        // Under `timeout`, so that a node outlives no test run by much, even
        // when the test process dies without running its destructors.
        // `timeout` passes SIGTERM on and exits with the node's status.
        let (mut cmd, listen) = match &self.netns {
            None => (Command::new("timeout"), "127.0.0.1"),
            Some((ns, _)) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "timeout"]);
                (cmd, "0.0.0.0")
            }
        };
        let child = cmd
            .args(["-k", "15", &SERVE_TTL_SECS.to_string()])
            .arg(env!("CARGO_BIN_EXE_shoal"))
            .arg("--home")
            .arg(&self.home)
            .arg("serve")
            .arg("--listen")
            .arg(format!("{listen}:{}", self.port))
            .env_remove("SHOAL_HOME")
            .env("SHOAL_LOG", &self.log_filter)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("`timeout` (coreutils) and the shoal binary run");
        self.child = Some(child);
        let want = self.address();
        let name = self.name.clone();
        let log = self.log.clone();
        wait_for(
            30,
            Duration::from_millis(50),
            &format!("{name}: `shoal serve` to answer `shoal address` with {want}"),
            || {
                if !self.running() {
                    panic!(
                        "{name}: `shoal serve` exited during start-up; its log:\n{}",
                        file_tail(&log, 40)
                    );
                }
                if !self.socket().exists() {
                    return None;
                }
                let out = self.run(["address"]);
                (out.code == 0 && out.text().trim() == want).then_some(())
            },
            || file_tail(&log, 40),
        );
    }

    /// Sends SIGTERM and waits (at most 20 s) for the process to exit;
    /// returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{}: not running", self.name));
        signal(&child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{}: `shoal serve` did not exit within 20 s of SIGTERM; its log:\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills `shoal serve` with SIGKILL, so it neither says goodbye nor
    /// cleans up, and waits until it is gone; returns `timeout`'s status.
    pub fn kill(&mut self) -> ExitStatus {
        let pid = self.pid();
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{}: not running", self.name));
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stdin(Stdio::null())
            .status();
        // `timeout` exits once the node has died.
        let status = child.wait().expect("wait for `timeout`");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{}: `shoal serve` ({pid}) outlived SIGKILL",
            self.name
        );
        status
    }

    /// The last lines of the node's log.
    pub fn log_tail(&self, n: usize) -> String {
        file_tail(&self.log, n)
    }

    /// The node's whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sets `setting = value` (TOML) in the home's `config.toml`, replacing
    /// the line that sets it; takes effect at the next start.
    pub fn configure(&self, setting: &str, value: &str) {
        let path = self.home.join("config.toml");
        let text = std::fs::read_to_string(&path).expect("config.toml");
        let prefix = format!("{setting} =");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        lines.push(format!("{setting} = {value}"));
        std::fs::write(&path, lines.join("\n") + "\n").expect("write config.toml");
    }

    /// The process id of the running `shoal serve` (the child of `timeout`).
    pub fn pid(&self) -> u32 {
        let parent = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("{}: not running", self.name))
            .id();
        let found = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                // `PID (COMM) STATE PPID ...`; COMM may hold spaces.
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let Some((_, rest)) = stat.rsplit_once(") ") else {
                    return false;
                };
                stat.contains("(shoal)")
                    && rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
            });
        found.unwrap_or_else(|| panic!("{}: no `shoal serve` process under {parent}", self.name))
    }

    /// The resident memory of the running `shoal serve`, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid()).unwrap_or_else(|| panic!("{}: no VmRSS for the node", self.name))
    }

    /// Runs `shoal --home HOME ARGS…` (through the node while it runs),
    /// bounded in time; fails the test on a timeout or a panic.
    #[track_caller]
    pub fn run<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", &COMMAND_SECS.to_string()])
            .arg(env!("CARGO_BIN_EXE_shoal"))
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("SHOAL_HOME")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("cannot run {cmd:?}: {e} (is coreutils `timeout` on PATH?)")
        });
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            code != 124 && code != 137 && code != -1,
            "{}: {cmd:?} did not finish within {COMMAND_SECS} s\nstderr:\n{stderr}\nnode log:\n{}",
            self.name,
            self.log_tail(30)
        );
        assert_no_panic(&stderr);
        Out {
            code,
            stdout: out.stdout,
            stderr,
        }
    }

    /// Runs a command that must succeed with nothing on stderr.
    #[track_caller]
    pub fn ok<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args);
        assert!(
            out.code == 0 && out.stderr.is_empty(),
            "{}: shoal {args:?}: exit {}\nstdout:\n{}\nstderr:\n{}\nnode log:\n{}",
            self.name,
            out.code,
            String::from_utf8_lossy(&out.stdout),
            out.stderr,
            self.log_tail(30)
        );
        out
    }

    /// Writes `msgs` (one JSON line each) to `NAME.jsonl` in the home and
    /// `shoal import`s it.
    pub fn import_msgs(&self, name: &str, msgs: &[shoal::feed::VerifiedMsg]) {
        let path = self.home.join(format!("{name}.jsonl"));
        let text: Vec<u8> = msgs
            .iter()
            .flat_map(|m| m.json().iter().copied().chain([b'\n']))
            .collect();
        std::fs::write(&path, text).expect("write the dump");
        self.ok(["import".as_ref(), path.as_os_str()]);
    }

    /// Appends `text` to config.toml: a section, after the top-level
    /// settings ([`ServeNode::configure`] sets those).
    pub fn append_config(&self, text: &str) {
        let path = self.home.join("config.toml");
        let mut config = std::fs::read_to_string(&path).unwrap_or_default();
        config.push('\n');
        config.push_str(text);
        config.push('\n');
        std::fs::write(&path, config).expect("write config.toml");
    }

    /// Publishes a contact message following `feed`.
    pub fn follow(&self, feed: &str) {
        let content = format!(r#"{{"type":"contact","contact":"{feed}","following":true}}"#);
        self.ok(["publish", content.as_str()]);
    }

    /// Publishes a post; returns its message id.
    pub fn post(&self, text: &str) -> String {
        self.ok(["post", text]).text().trim().to_string()
    }

    /// `shoal log --author FEED`, parsed.
    pub fn log_of(&self, feed: &str) -> Vec<LogLine> {
        let out = self.ok(["log", "--author", feed]);
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(parse_log_line)
            .collect()
    }

    /// The number of messages of `feed` the node lists.
    pub fn count(&self, feed: &str) -> usize {
        let out = self.ok(["log", "--author", feed]);
        out.stdout.iter().filter(|&&b| b == b'\n').count()
    }

    /// `shoal status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.ok(["--json", "status"]);
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    /// `shoal peers --json`, parsed.
    pub fn peers(&self) -> serde_json::Value {
        let out = self.ok(["--json", "peers"]);
        serde_json::from_slice(&out.stdout).expect("peers --json is JSON")
    }

    /// The live connection with `peer` (a feed id), as `shoal peers
    /// --json` lists it.
    pub fn connection(&self, peer: &str) -> Option<serde_json::Value> {
        self.peers()["connected"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == peer)
            .cloned()
    }

    /// The feed ids of the live connections, sorted.
    pub fn connected(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.peers()["connected"]
            .as_array()
            .expect("peers --json has `connected`")
            .iter()
            .map(|p| p["id"].as_str().expect("peer id").to_string())
            .collect();
        ids.sort();
        ids
    }

    /// What to print when a wait fails: status, peers and the log's tail.
    pub fn explain(&self) -> String {
        let status = self.run(["--json", "status"]);
        let peers = self.run(["--json", "peers"]);
        format!(
            "{}: status {}\npeers {}\nlog:\n{}",
            self.name,
            status.text().trim(),
            peers.text().trim(),
            self.log_tail(40)
        )
    }

    /// Waits (at most `secs`) until the node holds at least `n` messages of
    /// `feed`.
    #[track_caller]
    pub fn wait_count(&self, feed: &str, n: usize, secs: u64) {
        let last = std::cell::Cell::new(0);
        wait_for(
            secs,
            Duration::from_millis(100),
            &format!("{} to hold {n} messages of {feed}", self.name),
            || {
                last.set(self.count(feed));
                (last.get() >= n).then_some(())
            },
            || format!("it holds {}\n{}", last.get(), self.explain()),
        );
    }
}

impl Drop for ServeNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(&child, "TERM");
                let deadline = Instant::now() + Duration::from_secs(8);
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The VmRSS of a process in KiB, `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sends a signal (`TERM`, `KILL`, …) to a child process by its id.
fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
