//! The real `shoal-tui` binary in tmux against a home with fixture data:
//! it shows the timeline, moves, opens a thread and comes back, composes
//! and sends a post with Ctrl-s, and quits with q (exit status 0); the post
//! is then in the store. Screens are read with `capture-pane` and polled
//! until the expected text appears (no fixed sleeps).
//!
//! tmux is required: without it this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::home::{FixtureHome, fixture_home, timeline_texts};

/// How long any screen may take to appear.
const SCREEN_SECS: u64 = 30;

/// A tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    session: &'static str,
    stderr: PathBuf,
}

fn tmux_available() -> Result<(), String> {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`tmux -V` failed with {}", o.status)),
        Err(e) => Err(e.to_string()),
    }
}

impl Tmux {
    /// `shoal-tui` on the fixture's home.
    fn client(fx: &FixtureHome) -> Tmux {
        let bin = env!("CARGO_BIN_EXE_shoal-tui");
        Tmux::start(
            fx.dir.path(),
            &format!("'{bin}' --home '{}'", fx.home.display()),
        )
    }

    fn start(dir: &Path, command: &str) -> Tmux {
        if let Err(e) = tmux_available() {
            panic!(
                "tmux is required by the end-to-end test of shoal-tui and could not be run ({e}); \
                 install it (e.g. apt-get install tmux)"
            );
        }
        let socket = format!("shoal-tui-e2e-{}-{}", std::process::id(), unique());
        // Settings in place before the client starts: keys reach it at
        // once, and the pane stays (with the exit status) after it exits.
        let conf = dir.join("tmux.conf");
        std::fs::write(
            &conf,
            "set -sg escape-time 0\nset -g remain-on-exit on\nset -g status off\n",
        )
        .expect("tmux config");
        let stderr = dir.join("shoal-tui.stderr");
        let t = Tmux {
            socket,
            session: "e2e",
            stderr,
        };
        let full = format!("exec {command} 2>'{}'", t.stderr.display());
        let out = Command::new("tmux")
            .args(["-L", &t.socket, "-f"])
            .arg(&conf)
            .args([
                "new-session",
                "-d",
                "-x",
                "100",
                "-y",
                "30",
                "-s",
                t.session,
            ])
            .arg(full)
            .output()
            .expect("tmux new-session");
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t.tmux(&["set", "-sg", "escape-time", "0"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux")
    }

    /// Presses keys (tmux key names: `j`, `Enter`, `C-s`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {out:?}");
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", self.session, "-l", text]);
        assert!(out.status.success(), "send-keys -l: {out:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-t", self.session])
                .stdout,
        )
        .into_owned()
    }

    /// Polls the screen until `check` holds; fails with the last screen and
    /// the client's stderr.
    #[track_caller]
    fn wait(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(SCREEN_SECS);
        loop {
            let s = self.screen();
            if check(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {SCREEN_SECS} s waiting for {what}\n--- screen ---\n{s}\n--- stderr ---\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the pane's terminal is back on its main screen (tmux keeps
    /// this for a dead pane; a client that never left the alternate screen
    /// leaves it on).
    fn restored(&self) -> bool {
        let out = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            self.session,
            "#{alternate_on}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    }

    /// Waits for the client to exit; answers its exit status (`None` when
    /// a signal ended it).
    #[track_caller]
    fn wait_exit(&self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(SCREEN_SECS);
        let mut dead_since: Option<Instant> = None;
        loop {
            // tmux may see the pane's end before it reaps the process:
            // dead, with neither status nor signal yet. tmux 3.3 sometimes
            // misses the SIGCHLD then and leaves a zombie; another SIGCHLD
            // makes it reap.
            let state = self.pane_state();
            match state {
                (true, Some(status), _) => return Some(status),
                (true, None, Some(_)) => return None,
                (true, None, None) => {
                    let since = *dead_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(500) {
                        self.nudge_server();
                        dead_since = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ if Instant::now() > deadline => {
                    panic!("shoal-tui did not exit ({state:?})\n{}", self.screen())
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Sends the tmux server a SIGCHLD.
    fn nudge_server(&self) {
        let out = self.tmux(&["display-message", "-p", "#{pid}"]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !pid.is_empty() {
            let _ = Command::new("kill").args(["-CHLD", &pid]).status();
        }
    }

    /// `(pane dead, exit status, signal)`.
    fn pane_state(&self) -> (bool, Option<i32>, Option<i32>) {
        let out = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            self.session,
            "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.trim().split(':');
        let dead = parts.next() == Some("1");
        let status = parts.next().and_then(|s| s.parse().ok());
        let signal = parts.next().and_then(|s| s.parse().ok());
        (dead, status, signal)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// A number no other test run uses at the same time (with the pid).
fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The line holding `text`, if any.
fn line_with<'a>(screen: &'a str, text: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(text))
}

#[test]
fn the_binary_in_tmux_reads_moves_threads_posts_and_quits() {
    let fx = fixture_home();
    let tmux = Tmux::client(&fx);

    // The timeline, newest first, the newest selected.
    let s = tmux.wait("the timeline", |s| {
        s.contains("Bob's own post") && s.contains("Hello from Alice, the first post")
    });
    assert!(s.contains("[1 Timeline]"), "{s}");
    let order: Vec<usize> = [
        "Bob's own post",
        "A second post from Alice",
        "Replying to Alice: welcome!",
        "Hello from Alice, the first post",
    ]
    .iter()
    .map(|t| s.find(t).expect("post shown"))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first:\n{s}");
    assert!(
        line_with(&s, "Bob's own post").is_some_and(|l| l.starts_with('▌')),
        "the newest is selected:\n{s}"
    );

    // j moves the selection down.
    tmux.keys(&["j"]);
    tmux.wait("the second post selected", |s| {
        line_with(s, "A second post from Alice").is_some_and(|l| l.starts_with('▌'))
            && line_with(s, "Bob's own post").is_some_and(|l| !l.starts_with('▌'))
    });

    // Enter on the reply opens its thread: root first, then the reply.
    tmux.keys(&["j", "Enter"]);
    let s = tmux.wait("the thread", |s| {
        s.contains("Thread · 2 messages") && s.contains("Replying to Alice: welcome!")
    });
    assert!(
        s.find("Hello from Alice, the first post") < s.find("Replying to Alice: welcome!"),
        "{s}"
    );
    assert!(s.contains("[2 Thread]"), "{s}");

    // h goes back to the timeline, where it was.
    tmux.keys(&["h"]);
    tmux.wait("the timeline again", |s| {
        s.contains("[1 Timeline]")
            && line_with(s, "Replying to Alice: welcome!").is_some_and(|l| l.starts_with('▌'))
    });

    // c opens the compose pane; Ctrl-s sends.
    tmux.keys(&["c"]);
    tmux.wait("the compose pane", |s| s.contains("New post"));
    tmux.type_text("hello from tmux, 日本語");
    tmux.wait("the typed text", |s| s.contains("hello from tmux, 日本語"));
    tmux.keys(&["C-s"]);
    let s = tmux.wait("the post in the timeline", |s| {
        !s.contains("New post")
            && s.contains("Timeline · 5 posts")
            && s.find("hello from tmux, 日本語") < s.find("Bob's own post")
    });
    assert!(s.contains("you"), "{s}");

    // q quits (no draft left to lose), with status 0, the terminal
    // restored.
    tmux.keys(&["q"]);
    let status = tmux.wait_exit();
    assert!(tmux.restored(), "the terminal is restored");
    assert_eq!(
        status,
        Some(0),
        "exit status; stderr:\n{}",
        std::fs::read_to_string(&tmux.stderr).unwrap_or_default()
    );

    // The store was closed cleanly: opening it needs no repair.
    let repaired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = repaired.clone();
    let db = redb::Database::builder()
        .set_repair_callback(move |_| flag.store(true, std::sync::atomic::Ordering::SeqCst))
        .open(fx.home.join("store.redb"))
        .expect("the store opens after the client exits");
    drop(db);
    assert!(
        !repaired.load(std::sync::atomic::Ordering::SeqCst),
        "shoal-tui left its store open at exit: it needed a repair"
    );

    // The post is in the store, by us, newest.
    let texts = timeline_texts(&fx.home);
    assert_eq!(
        texts.first(),
        Some(&(fx.me.to_string(), "hello from tmux, 日本語".to_string())),
        "{texts:?}"
    );
}

/// Ctrl-c and SIGTERM end the client cleanly too: exit status 0, the
/// terminal back on its main screen.
#[test]
fn ctrl_c_and_sigterm_restore_the_terminal() {
    let fx = fixture_home();
    let ready = |s: &str| s.contains("Bob's own post");

    let tmux = Tmux::client(&fx);
    tmux.wait("the timeline", ready);
    // Ctrl-c ends it even with a draft kept.
    tmux.keys(&["c"]);
    tmux.wait("the compose pane", |s| s.contains("New post"));
    tmux.type_text("never sent");
    tmux.keys(&["Escape"]);
    tmux.wait("the pane closed", |s| !s.contains("New post"));
    tmux.keys(&["C-c"]);
    assert_eq!(tmux.wait_exit(), Some(0));
    assert!(tmux.restored(), "restored after Ctrl-c");
    drop(tmux);

    let tmux = Tmux::client(&fx);
    tmux.wait("the timeline", ready);
    let pid = String::from_utf8_lossy(
        &tmux
            .tmux(&["display-message", "-p", "-t", tmux.session, "#{pane_pid}"])
            .stdout,
    )
    .trim()
    .to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(tmux.wait_exit(), Some(0));
    assert!(tmux.restored(), "restored after SIGTERM");
}

/// When its terminal goes away (the tmux server killed: a hang-up), the
/// client ends by itself instead of spinning on a dead terminal.
#[test]
fn the_client_ends_when_its_terminal_goes_away() {
    let fx = fixture_home();
    let tmux = Tmux::client(&fx);
    tmux.wait("the timeline", |s| s.contains("Bob's own post"));
    let pid = String::from_utf8_lossy(
        &tmux
            .tmux(&["display-message", "-p", "-t", tmux.session, "#{pane_pid}"])
            .stdout,
    )
    .trim()
    .to_string();
    assert!(!pid.is_empty());
    drop(tmux);
    // Gone, or a zombie waiting for whoever adopted it.
    let stat = format!("/proc/{pid}/stat");
    let ended = || {
        std::fs::read_to_string(&stat).map_or(true, |s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                == Some("Z")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(SCREEN_SECS);
    while !ended() {
        assert!(
            Instant::now() < deadline,
            "shoal-tui (pid {pid}) still runs {SCREEN_SECS} s after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/` searches the whole store: the results window marks what matched,
/// `w` saves the query, `Enter` opens the hit's thread, `S` lists the
/// saved searches.
#[test]
fn slash_searches_the_whole_store_in_tmux() {
    let fx = fixture_home();
    let tmux = Tmux::client(&fx);
    tmux.wait("the timeline", |s| s.contains("Bob's own post"));
    tmux.keys(&["/"]);
    tmux.type_text("welcome");
    tmux.keys(&["Enter"]);
    let s = tmux.wait("the results", |s| {
        s.contains("Search “welcome” · 1 found") && s.contains("Replying to Alice: welcome!")
    });
    assert!(s.contains("Bob"), "the author's name:\n{s}");
    tmux.keys(&["w"]);
    tmux.wait("saved", |s| s.contains("saved “welcome”"));
    tmux.keys(&["Enter"]);
    tmux.wait("the hit's thread", |s| {
        s.contains("Thread · 2 messages") && s.contains("Hello from Alice, the first post")
    });
    tmux.keys(&["S"]);
    tmux.wait("the saved searches", |s| {
        s.contains("Saved searches") && s.contains("welcome")
    });
    tmux.keys(&["Escape"]);
    tmux.wait("the list closed", |s| !s.contains("Saved searches"));
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), Some(0));
    assert_eq!(
        shoal::home::saved_searches(&fx.home),
        ["welcome".to_string()]
    );
}

/// The fixture's home and a second one with a post of its own, in one
/// client (`--home` twice).
fn two_accounts() -> (FixtureHome, Tmux) {
    let fx = fixture_home();
    let second = fx.dir.path().join("second");
    {
        let home = shoal::home::Home::init(&second, shoal::home::Identity::New).expect("init");
        crate::home::quiet_config(&second);
        let store = home.store().expect("store");
        let post =
            shoal::feed::json::parse(br#"{"type":"post","text":"The second account's own post"}"#)
                .expect("json");
        store
            .append_local(home.keys(), post, None)
            .expect("a post of the second account");
    }
    let bin = env!("CARGO_BIN_EXE_shoal-tui");
    let tmux = Tmux::start(
        fx.dir.path(),
        &format!(
            "'{bin}' --home '{}' --home '{}'",
            fx.home.display(),
            second.display()
        ),
    );
    tmux.wait("the first account's timeline", |s| {
        s.contains("Bob's own post")
    });
    (fx, tmux)
}

/// Two homes, each with its own node, in one client: `A` shows the other
/// account and comes back to the first as it was.
#[test]
fn two_accounts_in_one_client_switch_with_a() {
    let (_fx, tmux) = two_accounts();
    tmux.keys(&["A"]);
    let s = tmux.wait("the second account's timeline", |s| {
        s.contains("The second account's own post")
    });
    assert!(!s.contains("Bob's own post"), "{s}");
    tmux.keys(&["A"]);
    tmux.wait("the first account again", |s| {
        s.contains("Bob's own post") && !s.contains("The second account's own post")
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), Some(0));
}

/// Regression: each account had its own input thread, and the one left
/// behind by a switch went on reading for up to 50 ms, dropping what it
/// read. A key typed just after `A` was lost: here a lost `A` leaves the
/// wrong account shown, and a lost `q` leaves the client running.
#[test]
fn keys_typed_just_after_a_switch_are_not_lost() {
    let (_fx, tmux) = two_accounts();
    // An even number of switches, a few milliseconds apart.
    for gap in 1..=20 {
        tmux.keys(&["A"]);
        std::thread::sleep(Duration::from_millis(gap));
    }
    tmux.wait("the first account after twenty switches", |s| {
        s.contains("account 1 of 2")
    });
    // Settled there, not passing through it: every key was sent at least
    // 20 ms before, and a lost one would leave the second account shown.
    std::thread::sleep(Duration::from_millis(300));
    let s = tmux.screen();
    assert!(
        s.contains("account 1 of 2") && s.contains("Bob's own post"),
        "{s}"
    );
    tmux.keys(&["A"]);
    std::thread::sleep(Duration::from_millis(5));
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), Some(0));
}

/// `M` mutes the selected post's author and `z` the selected post's
/// thread: their posts leave the timeline at once, the status bar says so,
/// and the mutes are kept in the store without anything published.
#[test]
fn mute_keys_hide_an_author_and_a_thread_and_publish_nothing() {
    let fx = fixture_home();
    let tmux = Tmux::client(&fx);
    tmux.wait("the timeline", |s| {
        line_with(s, "Bob's own post").is_some_and(|l| l.starts_with('▌'))
    });
    tmux.keys(&["M"]);
    let s = tmux.wait("Bob muted", |s| {
        s.contains("muted Bob")
            && !s.contains("Bob's own post")
            && !s.contains("Replying to Alice: welcome!")
            && s.contains("A second post from Alice")
    });
    assert!(s.contains("never published"), "{s}");
    tmux.wait("the newest left selected", |s| {
        line_with(s, "A second post from Alice").is_some_and(|l| l.starts_with('▌'))
    });
    tmux.keys(&["z"]);
    tmux.wait("the thread muted", |s| {
        s.contains("muted the thread")
            && !s.contains("A second post from Alice")
            && s.contains("Hello from Alice, the first post")
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), Some(0));

    let texts = timeline_texts(&fx.home);
    assert_eq!(
        texts,
        [(
            fx.alice.to_string(),
            "Hello from Alice, the first post".to_string()
        )]
    );
    let h = shoal::home::Home::open(&fx.home).expect("open home");
    let store = h.store().expect("store");
    let mutes = store.mutes().expect("mutes");
    assert_eq!(mutes.len(), 2, "{mutes:?}");
    assert!(
        mutes
            .iter()
            .any(|(m, _)| *m == shoal::store::Mute::Feed(fx.bob))
    );
    // Our feed is as the fixture left it: name and two follows.
    assert_eq!(
        store.latest(&fx.me).expect("latest").map(|s| s.sequence),
        Some(3)
    );
}
