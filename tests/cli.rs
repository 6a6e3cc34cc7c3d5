//! The `shoal` command line, run as the real binary against homes in
//! temporary directories, honours its contract (design/CLI.md):
//! - `init` prints the feed id, imports an ssb-keys secret with `--secret`,
//!   and refuses to overwrite an identity (exit 1, nothing changed);
//! - `publish` and `post` print the new message id; `log` and `get` show
//!   values byte-identical to what was signed, whose signatures and ids
//!   validate again in feed order;
//! - `--json` prints one JSON object per line;
//! - `log --author --since --limit` select the right messages, also across
//!   the pages the binary reads the store in;
//! - `export` (stdout or FILE) equals `log`, and importing an export into a
//!   fresh home reproduces the feeds; a second import says `already present`;
//! - exit codes are 0 / 1 (a problem) / 2 (usage), and every error is one
//!   line on stderr, never a panic or a backtrace.
//!
//! The helpers here (running the binary, making homes and feeds) are shared
//! with the other command-line tests.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use shoal::crypto::{FeedId, Keypair, MsgId};
use shoal::feed::json::{self, Object, Value};
use shoal::feed::{self, FeedState};

use crate::common::test_key;

/// What one run of the binary did.
pub struct Out {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Standard output as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("shoal prints UTF-8")
    }

    /// Standard output split into lines (without their newlines).
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }

    fn describe(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }
}

fn command(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.arg("--home")
        .arg(home)
        .env_remove("SHOAL_HOME")
        // A panic would print its backtrace note; the tests look for it.
        .env("RUST_BACKTRACE", "1");
    cmd
}

/// Runs `shoal --home HOME ARGS…` with no input.
pub fn shoal<I, S>(home: &Path, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    shoal_stdin(home, args, b"")
}

/// Runs `shoal --home HOME ARGS…` with `input` on standard input.
pub fn shoal_stdin<I, S>(home: &Path, args: I, input: &[u8]) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = command(home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shoal binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Feed stdin from a thread so a large input cannot deadlock on a full pipe.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("shoal finishes");
    feeder.join().unwrap();
    let stderr = String::from_utf8(out.stderr).expect("shoal's errors are UTF-8");
    assert_no_panic(&stderr);
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr,
    }
}

/// Fails when stderr shows a panic or a backtrace.
pub fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "shoal panicked:\n{stderr}"
    );
}

/// Asserts a successful run with nothing on stderr; returns it.
#[track_caller]
pub fn ok<I, S>(home: &Path, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = shoal(home, args);
    assert!(
        out.code == 0 && out.stderr.is_empty(),
        "expected success: {}",
        out.describe()
    );
    out
}

/// Asserts that a run failed with `code`, printing exactly one line on
/// stderr and nothing on stdout; returns that line.
#[track_caller]
pub fn one_line_error(out: &Out, code: i32) -> String {
    assert_eq!(out.code, code, "exit code: {}", out.describe());
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout on error: {}",
        out.describe()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.len() == 1 && out.stderr.ends_with('\n') && !lines[0].trim().is_empty(),
        "exactly one line on stderr: {}",
        out.describe()
    );
    lines[0].to_string()
}

/// Writes `keys` as an ssb-keys secret file with mode 0600 and returns its path.
pub fn write_secret(dir: &Path, name: &str, keys: &Keypair) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    f.write_all(shoal::crypto::secret::format_secret(keys).as_bytes())
        .unwrap();
    path
}

/// Makes an initialised home `dir/name` whose identity is `keys`.
pub fn init_home(dir: &Path, name: &str, keys: &Keypair) -> PathBuf {
    let secret = write_secret(dir, &format!("{name}.secret"), keys);
    let home = dir.join(name);
    let out = shoal(
        &home,
        [OsStr::new("init"), "--secret".as_ref(), secret.as_ref()],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.text(), format!("{}\n", keys.id()));
    // A test identity has published nothing anywhere: nothing to restore.
    ok(&home, ["restore", "--done", "--yes"]);
    home
}

/// A `post` content with this text.
pub fn post(text: &str) -> Value {
    let mut c = Object::new();
    c.insert("type", Value::from("post"));
    c.insert("text", Value::from(text));
    Value::Object(c)
}

/// The next message of a feed, signed by `keys`, with a timestamp fixed by
/// its sequence.
pub fn next_msg(keys: &Keypair, state: Option<&FeedState>, content: Value) -> Value {
    let seq = state.map_or(1, |s| s.sequence + 1);
    feed::build(
        keys,
        state,
        1_600_000_000_000.0 + seq as f64 * 1000.5,
        content,
        None,
    )
}

/// A valid feed of `n` posts by `keys` (texts `"{tag} {seq}"`), with the
/// state after each message.
pub fn make_feed(keys: &Keypair, n: usize, tag: &str) -> Vec<(Value, FeedState)> {
    let mut out: Vec<(Value, FeedState)> = Vec::with_capacity(n);
    for i in 1..=n {
        let state = out.last().map(|(_, s)| *s);
        let v = next_msg(keys, state.as_ref(), post(&format!("{tag} {i} ✓")));
        let m = feed::validate(state.as_ref(), None, v.clone()).expect("a built message is valid");
        out.push((v, m.state()));
    }
    out
}

/// The id of a message value, computed as JavaScript does (sha256 of the
/// latin1 of its pretty JSON), whether or not it is valid.
pub fn msg_id(v: &Value) -> MsgId {
    let mut latin1 = Vec::new();
    json::latin1_bytes(&json::to_pretty(v), &mut latin1);
    MsgId(shoal::crypto::sha256(&latin1))
}

/// Writes lines (each followed by `\n`) to a file.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l);
        buf.push(b'\n');
    }
    std::fs::write(path, buf).unwrap();
}

/// One `log` line split into its parts.
pub struct LogLine {
    /// `key`.
    pub key: String,
    /// The raw bytes of `value`, exactly as printed.
    pub value_raw: Vec<u8>,
    /// `value`, parsed.
    pub value: Value,
}

/// Splits a `{"key":…,"value":…,"timestamp":…}` line, checking that it is
/// JSON which shoal re-encodes byte for byte.
#[track_caller]
pub fn parse_log_line(line: &[u8]) -> LogLine {
    let text = String::from_utf8_lossy(line);
    let v = json::parse(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {text}"));
    assert_eq!(
        json::to_compact(&v),
        line,
        "log line is not compact JavaScript JSON: {text}"
    );
    let o = v.as_object().expect("log line is an object");
    let keys: Vec<String> = o.keys().map(|k| k.to_string_lossy()).collect();
    assert_eq!(keys, ["key", "value", "timestamp"], "fields of {text}");
    let key = o.get("key").and_then(Value::as_str).unwrap().to_string();
    let value = o.get("value").unwrap().clone();
    assert!(
        o.get("timestamp").and_then(Value::as_f64).is_some(),
        "timestamp is a number: {text}"
    );
    // The raw value: between the key and the timestamp, as printed.
    let prefix = format!("{{\"key\":\"{key}\",\"value\":");
    assert!(line.starts_with(prefix.as_bytes()), "{text}");
    let ts_at = line
        .windows(13)
        .rposition(|w| w == b",\"timestamp\":")
        .unwrap();
    LogLine {
        key,
        value_raw: line[prefix.len()..ts_at].to_vec(),
        value,
    }
}

/// Parses `log` output and checks that it is one feed by `author`, valid
/// in order from its first message, each key the id of its value. Returns
/// the lines.
#[track_caller]
pub fn check_feed_output(stdout: &[u8], author: &FeedId) -> Vec<LogLine> {
    let mut state: Option<FeedState> = None;
    let mut out = Vec::new();
    for (i, line) in stdout.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let l = parse_log_line(line);
        assert_eq!(json::to_compact(&l.value), l.value_raw, "line {}", i + 1);
        let m = feed::validate(state.as_ref(), None, l.value.clone())
            .unwrap_or_else(|e| panic!("line {} does not validate: {e}", i + 1));
        assert_eq!(m.id().to_string(), l.key, "line {}: key is the id", i + 1);
        assert_eq!(m.author(), *author, "line {}: author", i + 1);
        assert_eq!(m.json(), l.value_raw, "line {}: value as validated", i + 1);
        state = Some(m.state());
        out.push(l);
    }
    assert!(stdout.is_empty() || stdout.ends_with(b"\n"));
    out
}

/// Every file under a directory with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            out.extend(snapshot(&e.path()));
        } else {
            out.insert(
                e.path(),
                (meta.permissions().mode(), std::fs::read(e.path()).unwrap()),
            );
        }
    }
    out
}

fn seq_of(l: &LogLine) -> u64 {
    l.value.get("sequence").and_then(Value::as_f64).unwrap() as u64
}

fn author_of(l: &LogLine) -> String {
    l.value
        .get("author")
        .and_then(Value::as_str)
        .unwrap()
        .to_string()
}

#[test]
fn init_prints_the_feed_id_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("nested/home");
    let out = ok(&home, ["init"]);
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{}", out.text());
    let id = FeedId::parse(&lines[0]).unwrap_or_else(|| panic!("not a feed id: {}", lines[0]));
    assert_eq!(ok(&home, ["whoami"]).text(), format!("{id}\n"));
    let secret = home.join("secret");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    ok(&home, ["post", "before the second init"]);

    let before = snapshot(&home);
    let err = one_line_error(&shoal(&home, ["init"]), 1);
    assert!(err.contains("refusing to overwrite"), "{err}");
    // With another identity to import: still refused, still untouched.
    let other = write_secret(tmp.path(), "other.secret", &test_key(40));
    let err = one_line_error(
        &shoal(
            &home,
            [OsStr::new("init"), "--secret".as_ref(), other.as_ref()],
        ),
        1,
    );
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert!(before == snapshot(&home), "the home changed");
    assert_eq!(ok(&home, ["whoami"]).text(), format!("{id}\n"));
    assert_eq!(ok(&home, ["log"]).lines().len(), 1);
}

#[test]
fn init_imports_an_ssb_keys_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = test_key(41);
    let file = write_secret(tmp.path(), "secret.json", &keys);
    let home = tmp.path().join("h");
    let out = shoal(
        &home,
        [OsStr::new("init"), "--secret".as_ref(), file.as_ref()],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.text(), format!("{}\n", keys.id()));
    assert!(out.stderr.starts_with("restoring: "), "{}", out.stderr);
    assert_eq!(ok(&home, ["whoami"]).text(), format!("{}\n", keys.id()));
    // Restoring: nothing is published until the person says so.
    let held = one_line_error(&shoal(&home, ["post", "too early"]), 1);
    assert!(held.contains("not published: restoring"), "{held}");
    let out = shoal(&home, ["restore", "--done"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("can fork it"), "{}", out.stderr);
    let done = ok(&home, ["restore", "--done", "--yes"]).text();
    assert!(
        done.starts_with("publishing is no longer held (it was: restoring:"),
        "{done}"
    );
    assert_eq!(
        ok(&home, ["restore", "--done", "--yes"]).text(),
        "publishing was not held\n"
    );
    let copy = home.join("secret");
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The identity really is the imported one: what it signs validates
    // under that author.
    let id = ok(&home, ["post", "signed with the imported key"]).lines()[0].clone();
    let log = ok(&home, ["log", "--author", &keys.id().to_string()]);
    let lines = check_feed_output(&log.stdout, &keys.id());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].key, id);

    // --json: one object with the id.
    let home2 = tmp.path().join("h2");
    let out = ok(
        &home2,
        [
            OsStr::new("--json"),
            "init".as_ref(),
            "--secret".as_ref(),
            file.as_ref(),
        ],
    );
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{}", out.text());
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["id"], keys.id().to_string());
}

/// Contents worth publishing: what JavaScript prints in unusual ways.
fn unusual_contents() -> Vec<String> {
    vec![
        r#"{"type":"post","text":"hello"}"#.into(),
        r#"{"type":"post","text":"é ß Ω Ж 日本語 😀🐟 \u2028\u2029 \ufeff","channel":"x"}"#.into(),
        r#"{"type":"integer-keys","b":1,"10":"ten","2":"two","01":"x","-1":"y","4294967294":"max","4294967295":"over","":0,"1.5":"f","nested":{"9":[],"1":{}}}"#.into(),
        r#"{"type":"numbers","values":[0.1,1e21,1e-7,5e-324,1.7976931348623157e308,12345678901234567890,-0,1.0,100,1E3,-1.5e-10]}"#.into(),
        r#"{"type":"controls","text":"\u0000\u0001\b\f\n\r\t\u001f\u007f\"\\/","\u0001":"\ud800","lone":"x\udfffy\ud83d\ude00"}"#.into(),
        r#"{"type":"dup","a":1,"b":2,"a":3}"#.into(),
        r#"{ "type" : "spaced" ,	"list" : [ 1 , { } , [ ] , null , true , false ] }"#.into(),
        r#"{"type":"日本語のタイプ","deep":[[[[[[[[{"a":[[[{}]]]}]]]]]]]]}"#.into(),
    ]
}

#[test]
fn published_messages_read_back_identically_and_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = test_key(42);
    let home = init_home(tmp.path(), "h", &keys);
    let mut ids = Vec::new();
    let mut contents = Vec::new();
    for c in unusual_contents() {
        let out = ok(&home, ["publish", c.as_str()]);
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{}", out.text());
        assert!(
            MsgId::parse(&lines[0]).is_some(),
            "not a message id: {}",
            lines[0]
        );
        ids.push(lines[0].clone());
        contents.push(json::to_compact(&json::parse(c.as_bytes()).unwrap()));
    }
    for text in ["a post", "", "multi\nline \"quoted\" 😀", "-not-a-flag"] {
        let out = ok(&home, ["post", "--", text]);
        assert_eq!(out.lines().len(), 1);
        assert!(MsgId::parse(&out.lines()[0]).is_some());
        ids.push(out.lines()[0].clone());
        contents.push(json::to_compact(&post(text)));
    }

    let log = ok(&home, ["log", "--author", &keys.id().to_string()]);
    let lines = check_feed_output(&log.stdout, &keys.id());
    let keys_printed: Vec<&str> = lines.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys_printed, ids, "log lists what was published, in order");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(seq_of(l), i as u64 + 1);
        let content = json::to_compact(l.value.get("content").unwrap());
        assert_eq!(
            String::from_utf8_lossy(&content),
            String::from_utf8_lossy(&contents[i]),
            "content of message {}",
            i + 1
        );
    }
    // Timestamps of one feed never go backwards.
    let ts: Vec<f64> = lines
        .iter()
        .map(|l| l.value.get("timestamp").and_then(Value::as_f64).unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");

    // `log` without --author: the same (one feed), and `get` prints the same line.
    assert_eq!(ok(&home, ["log"]).stdout, log.stdout);
    let log_lines: Vec<&[u8]> = log.stdout.split(|&b| b == b'\n').collect();
    for (i, id) in ids.iter().enumerate() {
        let got = ok(&home, ["get", id.as_str()]);
        assert_eq!(
            got.stdout,
            [log_lines[i], b"\n"].concat(),
            "get {id} prints the log line"
        );
    }
}

#[test]
fn json_output_is_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("h");
    let object_lines = |out: &Out, n: usize| -> Vec<serde_json::Value> {
        assert!(out.code == 0 && out.stderr.is_empty(), "{}", out.describe());
        assert!(out.stdout.ends_with(b"\n"), "{}", out.text());
        let lines = out.lines();
        assert_eq!(lines.len(), n, "{}", out.text());
        lines
            .iter()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                assert!(v.is_object(), "not an object: {l}");
                v
            })
            .collect()
    };
    let init = &object_lines(&shoal(&home, ["--json", "init"]), 1)[0];
    let id = init["id"].as_str().unwrap().to_string();
    assert!(FeedId::parse(&id).is_some(), "{init}");
    let who = &object_lines(&shoal(&home, ["whoami", "--json"]), 1)[0];
    assert_eq!(who["id"], id.as_str());
    let p = &object_lines(
        &shoal(&home, ["--json", "publish", r#"{"type":"x-test","n":1}"#]),
        1,
    )[0];
    let key1 = p["key"].as_str().unwrap().to_string();
    assert!(MsgId::parse(&key1).is_some(), "{p}");
    let p = &object_lines(&shoal(&home, ["--json", "post", "two\nlines"]), 1)[0];
    let key2 = p["key"].as_str().unwrap().to_string();
    let log = object_lines(&shoal(&home, ["--json", "log"]), 2);
    assert_eq!(log[0]["key"], key1.as_str());
    assert_eq!(log[1]["key"], key2.as_str());
    let got = object_lines(&shoal(&home, ["--json", "get", &key2]), 1);
    assert_eq!(got[0]["value"]["content"]["text"], "two\nlines");

    let keys = test_key(43);
    let file = tmp.path().join("in.ndjson");
    let lines: Vec<Vec<u8>> = make_feed(&keys, 3, "json")
        .iter()
        .map(|(v, _)| json::to_compact(v))
        .collect();
    write_lines(&file, &lines);
    let import = &object_lines(
        &shoal(
            &home,
            [OsStr::new("--json"), "import".as_ref(), file.as_ref()],
        ),
        1,
    )[0];
    assert_eq!(import["imported"], 3, "{import}");
    assert_eq!(import["rejected"], 0, "{import}");
    let again = &object_lines(
        &shoal(
            &home,
            [OsStr::new("--json"), "import".as_ref(), file.as_ref()],
        ),
        1,
    )[0];
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["rejected"], 0, "{again}");
    object_lines(&shoal(&home, ["--json", "export"]), 5);
}

/// A home with its own feed (5 posts) and an imported feed of `n_other`
/// messages, received in the order own 1-2, other 1..n, own 3-5.
fn home_with_two_feeds(dir: &Path, n_other: usize) -> (PathBuf, Keypair, Keypair) {
    let own = test_key(44);
    let other = test_key(45);
    let home = init_home(dir, "two", &own);
    ok(&home, ["post", "own 1"]);
    ok(&home, ["post", "own 2"]);
    let file = dir.join("other.ndjson");
    let lines: Vec<Vec<u8>> = make_feed(&other, n_other, "other")
        .iter()
        .map(|(v, _)| json::to_compact(v))
        .collect();
    write_lines(&file, &lines);
    let out = ok(&home, [OsStr::new("import"), file.as_ref()]);
    assert_eq!(out.text(), format!("imported {n_other}, rejected 0\n"));
    for i in 3..=5 {
        ok(&home, ["post", &format!("own {i}")]);
    }
    (home, own, other)
}

#[test]
fn log_selects_by_author_since_and_limit() {
    const N_OTHER: usize = 1205; // more than one page of the binary's reads
    let tmp = tempfile::tempdir().unwrap();
    let (home, own, other) = home_with_two_feeds(tmp.path(), N_OTHER);
    let (own_id, other_id) = (own.id().to_string(), other.id().to_string());

    let all = ok(&home, ["log"]);
    let all_lines: Vec<LogLine> = all
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(parse_log_line)
        .collect();
    assert_eq!(all_lines.len(), N_OTHER + 5);
    // Receive order: own 1-2, the imported feed, own 3-5.
    let order: Vec<(String, u64)> = all_lines
        .iter()
        .map(|l| (author_of(l), seq_of(l)))
        .collect();
    let mut expected: Vec<(String, u64)> = vec![(own_id.clone(), 1), (own_id.clone(), 2)];
    expected.extend((1..=N_OTHER as u64).map(|s| (other_id.clone(), s)));
    expected.extend((3..=5).map(|s| (own_id.clone(), s)));
    assert!(order == expected, "receive order");
    let all_text: Vec<String> = all.lines();

    // Feed order per author, every line valid.
    let own_log = ok(&home, ["log", "--author", &own_id]);
    let own_lines = check_feed_output(&own_log.stdout, &own.id());
    assert_eq!(
        own_lines.iter().map(seq_of).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let other_log = ok(&home, ["log", "--author", &other_id]);
    let other_lines = check_feed_output(&other_log.stdout, &other.id());
    assert_eq!(other_lines.len(), N_OTHER);
    let other_text = other_log.lines();

    let seqs = |args: &[&str]| -> Vec<u64> {
        let out = ok(&home, args);
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| seq_of(&parse_log_line(l)))
            .collect()
    };
    let a = own_id.as_str();
    assert_eq!(seqs(&["log", "--author", a, "--since", "2"]), [3, 4, 5]);
    assert_eq!(
        seqs(&["log", "--author", a, "--since", "2", "--limit", "2"]),
        [3, 4]
    );
    assert_eq!(seqs(&["log", "--author", a, "--limit", "1"]), [1]);
    assert_eq!(
        seqs(&["log", "--author", a, "--since", "4", "--limit", "9"]),
        [5]
    );
    assert!(seqs(&["log", "--author", a, "--since", "5"]).is_empty());
    assert!(seqs(&["log", "--author", a, "--limit", "0"]).is_empty());
    assert!(seqs(&["log", "--author", a, "--since", "99999"]).is_empty());

    // Across page boundaries of the imported feed.
    let o = other_id.as_str();
    for (since, limit) in [
        (0, 1001),
        (998, 5),
        (999, 1),
        (1000, 3),
        (3, 1100),
        (1200, 100),
    ] {
        let got = ok(
            &home,
            [
                "log",
                "--author",
                o,
                "--since",
                &since.to_string(),
                "--limit",
                &limit.to_string(),
            ],
        )
        .lines();
        let want: Vec<String> = other_text.iter().skip(since).take(limit).cloned().collect();
        assert!(got == want, "--author --since {since} --limit {limit}");
    }
    // Without --author, --since counts receive order.
    for (since, limit) in [
        (0, 3),
        (3, 2),
        (1000, 10),
        (1205, 100),
        (1207, 1),
        (0, 1210),
    ] {
        let got = ok(
            &home,
            [
                "log",
                "--since",
                &since.to_string(),
                "--limit",
                &limit.to_string(),
            ],
        )
        .lines();
        let want: Vec<String> = all_text.iter().skip(since).take(limit).cloned().collect();
        assert!(got == want, "--since {since} --limit {limit}");
    }
    assert_eq!(
        ok(&home, ["log", "--since", "1002"]).lines(),
        all_text[1002..]
    );

    // An unknown feed has no messages; that is not an error.
    let nobody = test_key(46).id().to_string();
    assert!(ok(&home, ["log", "--author", &nobody]).stdout.is_empty());
}

#[test]
fn log_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, _, _) = home_with_two_feeds(tmp.path(), 400);
    let mut child = command(&home)
        .arg("log")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // like `shoal log | head -c 100`
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_no_panic(&stderr);
    assert!(
        status.success() && stderr.is_empty(),
        "{status}, stderr: {stderr}"
    );
}

#[test]
fn output_closed_before_the_first_write_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, _, _) = home_with_two_feeds(tmp.path(), 3);
    // Like `shoal log | true`: the reader is gone before shoal writes, and
    // these outputs are small enough to be written by one final flush.
    let mut failures = Vec::new();
    for args in [
        vec!["log", "--limit", "2"],
        vec!["log"],
        vec!["export"],
        vec!["whoami"],
        vec!["post", "into a closed pipe"],
    ] {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(ours);
        let out = command(&home)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_no_panic(&stderr);
        if !(out.status.success() && stderr.is_empty()) {
            failures.push(format!(
                "`shoal {}`: {}, stderr: {}",
                args.join(" "),
                out.status,
                stderr.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "commands whose output was closed did not end quietly:\n{}",
        failures.join("\n")
    );
}

#[test]
fn export_equals_log_and_imports_into_a_fresh_home() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, own, other) = home_with_two_feeds(tmp.path(), 30);
    let log = ok(&home, ["log"]);
    assert_eq!(log.lines().len(), 35);
    assert_eq!(ok(&home, ["export"]).stdout, log.stdout, "export to stdout");
    let file = tmp.path().join("all.ndjson");
    ok(&home, [OsStr::new("export"), file.as_ref()]);
    assert_eq!(std::fs::read(&file).unwrap(), log.stdout, "export to FILE");
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")),
        "no partial file left behind"
    );
    for keys in [&own, &other] {
        let id = keys.id().to_string();
        let by_author = ok(&home, ["export", "--author", &id]);
        assert_eq!(by_author.stdout, ok(&home, ["log", "--author", &id]).stdout);
        let f = tmp.path().join("one.ndjson");
        ok(
            &home,
            [
                OsStr::new("export"),
                "--author".as_ref(),
                id.as_ref(),
                f.as_ref(),
            ],
        );
        assert_eq!(std::fs::read(&f).unwrap(), by_author.stdout);
    }

    // Into a fresh home with another identity.
    let fresh = init_home(tmp.path(), "fresh", &test_key(47));
    let out = ok(&fresh, [OsStr::new("import"), file.as_ref()]);
    assert_eq!(out.text(), "imported 35, rejected 0\n");
    for keys in [&own, &other] {
        let id = keys.id().to_string();
        let was = ok(&home, ["log", "--author", &id]);
        let now = ok(&fresh, ["log", "--author", &id]);
        let now_lines = check_feed_output(&now.stdout, &keys.id());
        let was_lines = check_feed_output(&was.stdout, &keys.id());
        assert_eq!(now_lines.len(), was_lines.len());
        // Key and value byte for byte; `timestamp` is the local receive time.
        for (a, b) in was_lines.iter().zip(&now_lines) {
            assert_eq!(a.key, b.key);
            assert_eq!(a.value_raw, b.value_raw);
        }
    }
    // A second import: everything is already there.
    let again = ok(&fresh, [OsStr::new("import"), file.as_ref()]);
    assert_eq!(again.text(), "imported 0, rejected 0, already present 35\n");
    // The same through standard input.
    let stdin = shoal_stdin(&fresh, ["import", "-"], &log.stdout);
    assert!(
        stdin.code == 0 && stdin.stderr.is_empty(),
        "{}",
        stdin.describe()
    );
    assert_eq!(stdin.text(), "imported 0, rejected 0, already present 35\n");
    let fresh2 = init_home(tmp.path(), "fresh2", &test_key(48));
    let stdin = shoal_stdin(&fresh2, ["import", "-"], &log.stdout);
    assert!(
        stdin.code == 0 && stdin.stderr.is_empty(),
        "{}",
        stdin.describe()
    );
    assert_eq!(stdin.text(), "imported 35, rejected 0\n");
    assert_eq!(ok(&fresh2, ["log"]).lines().len(), 35);
}

#[test]
fn exit_codes_and_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    let home = init_home(tmp.path(), "h", &test_key(49));
    let id = ok(&home, ["post", "exists"]).lines()[0].clone();
    let absent = MsgId([7; 32]).to_string();
    let bad_line = tmp.path().join("bad.ndjson");
    std::fs::write(&bad_line, "not json\n").unwrap();
    let missing_file = tmp.path().join("no-such-file.ndjson");
    let missing_file = missing_file.to_str().unwrap();

    // 1: the command ran and found a problem.
    for args in [
        vec!["whoami"],
        vec!["log"],
        vec!["post", "x"],
        vec!["publish", r#"{"type":"post"}"#],
        vec!["get", &absent],
        vec!["export"],
    ] {
        let err = one_line_error(&shoal(&empty, &args), 1);
        assert!(
            err.contains("shoal init"),
            "{args:?} in an empty home: {err}"
        );
    }
    assert!(!empty.join("secret").exists());
    let err = one_line_error(&shoal(&home, ["get", &absent]), 1);
    assert!(err.contains("not in the store"), "{err}");
    let err = one_line_error(&shoal(&home, ["import", missing_file]), 1);
    assert!(err.contains("no-such-file.ndjson"), "{err}");
    let err = one_line_error(&shoal(&home, ["publish", r#"{"text":"no type"}"#]), 1);
    assert!(err.contains("type"), "{err}");
    let rejected = shoal(&home, [OsStr::new("import"), bad_line.as_ref()]);
    assert_eq!(rejected.code, 1, "{}", rejected.describe());
    assert_eq!(rejected.text(), "imported 0, rejected 1\n");
    assert_eq!(
        rejected.stderr.lines().count(),
        1,
        "{}",
        rejected.describe()
    );
    assert!(
        rejected.stderr.starts_with("rejected line 1: "),
        "{}",
        rejected.stderr
    );

    // 2: usage errors.
    for args in [
        vec!["frobnicate"],
        vec![],
        vec!["get", "not-an-id"],
        vec!["get", "%AAAA.sha256"],
        vec!["get", &id, "extra"],
        vec!["log", "--author", "@nope.ed25519"],
        vec!["log", "--author", &id],
        vec!["log", "--limit", "many"],
        vec!["log", "--since", "-1"],
        vec!["export", "--author", "bad"],
        vec!["publish", "not json"],
        vec!["publish", r#"{"type":"post""#],
        vec!["publish", "[1,2]"],
        vec!["publish", r#""a string""#],
        vec!["publish", "42"],
        vec!["whoami", "--no-such-flag"],
    ] {
        one_line_error(&shoal(&home, &args), 2);
    }
    // Nothing was published by any of that.
    assert_eq!(ok(&home, ["log"]).lines().len(), 1);

    // Every command has --help, exit 0.
    for cmd in [
        "init", "whoami", "publish", "post", "log", "get", "import", "export",
    ] {
        let out = shoal(&home, [cmd, "--help"]);
        assert!(
            out.code == 0 && !out.stdout.is_empty(),
            "{cmd} --help: {}",
            out.describe()
        );
    }
    assert_eq!(shoal(&home, ["--help"]).code, 0);
}

#[test]
fn usage_errors_say_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = init_home(tmp.path(), "h", &test_key(50));
    // The one line must name what was not given.
    let cases: [(&[&str], &str); 5] = [
        (&["get"], "ID"),
        (&["publish"], "CONTENT"),
        (&["import"], "FILE"),
        (&["post"], "TEXT"),
        (&[], "subcommand"),
    ];
    let mut failures = Vec::new();
    for (args, needle) in cases {
        let err = one_line_error(&shoal(&home, args), 2);
        if !err.contains(needle) {
            failures.push(format!("`shoal {}` says: {err}", args.join(" ")));
        }
    }
    assert!(
        failures.is_empty(),
        "usage errors that do not name the missing argument:\n{}",
        failures.join("\n")
    );
}

#[test]
fn ssb_uris_are_accepted_wherever_an_id_or_address_is_and_printed_by_uri() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = test_key(43);
    let home = init_home(tmp.path(), "u", &keys);
    let root = ok(&home, ["post", "a root"]).text().trim().to_string();

    // `shoal uri` writes what ssb-uri2 writes, with or without a home.
    let feed_uri = ok(&home, ["uri", &keys.id().to_string()])
        .text()
        .trim()
        .to_string();
    assert_eq!(
        feed_uri,
        format!(
            "ssb:feed/classic/{}",
            keys.id().b64().replace('+', "-").replace('/', "_")
        )
    );
    let msg_uri = ok(&home, ["uri", &root]).text().trim().to_string();
    assert!(msg_uri.starts_with("ssb:message/classic/"), "{msg_uri}");
    let nowhere = tmp.path().join("no-home");
    assert_eq!(ok(&nowhere, ["uri", &root]).text().trim(), msg_uri);
    let addr = format!("net:127.0.0.1:8008~shs:{}", keys.id().b64());
    let addr_uri = ok(&home, ["uri", &addr]).text().trim().to_string();
    assert!(
        addr_uri.starts_with(
            "ssb:address/multiserver?multiserverAddress=net%3A127.0.0.1%3A8008~shs%3A"
        ),
        "{addr_uri}"
    );
    // The older spellings come back canonical.
    let old = msg_uri.replace("/classic/", "/sha256/");
    assert_eq!(ok(&home, ["uri", &old]).text().trim(), msg_uri);

    // A reply and a thread by URI; a follow by URI.
    ok(&home, ["reply", &msg_uri, "by link"]);
    let thread = ok(&home, ["--json", "thread", &old]);
    assert_eq!(thread.lines().len(), 2, "{}", thread.text());
    let other = test_key(44).id();
    let other_uri = format!(
        "ssb:feed:ed25519:{}",
        other.b64().replace('+', "-").replace('/', "_")
    );
    ok(&home, ["follow", &other_uri]);
    let contacts = ok(&home, ["--json", "contacts"]).text();
    assert!(contacts.contains(&other.to_string()), "{contacts}");
    // An address URI for `connect` (no node runs: remembered).
    let out = shoal(&home, ["connect", &addr_uri]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(
        out.stderr.contains(&format!("remembered {addr}")),
        "{}",
        out.stderr
    );
    let peers = ok(&home, ["--json", "peers"]).text();
    assert!(peers.contains(&addr), "{peers}");

    // Malformed: a usage error, one line, nothing written.
    let before = ok(&home, ["--json", "status"]).text();
    for bad in [
        "ssb:message/classic/AAAA",
        "ssb:message/cloaked/Z0rMVMDEO1Aj0uPl0_J2NlhFB2bbFLIHlty_YuqArFq=",
        &feed_uri,
    ] {
        let out = shoal(&home, ["reply", bad, "x"]);
        one_line_error(&out, 2);
    }
    let out = shoal(&home, ["uri", "ssb:thing/classic/x"]);
    one_line_error(&out, 2);
    let out = shoal(
        &home,
        [
            "connect",
            "ssb:address/multiserver?multiserverAddress=nonsense",
        ],
    );
    one_line_error(&out, 2);
    assert_eq!(ok(&home, ["--json", "status"]).text(), before);
}

#[test]
fn why_without_a_node_says_what_the_store_knows() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = test_key(45);
    let home = init_home(tmp.path(), "w", &keys);
    let other = test_key(46).id().to_string();
    ok(&home, ["follow", other.as_str()]);
    let text = ok(&home, ["why", other.as_str()]).text();
    assert!(text.contains("replicated, 1 hop away"), "{text}");
    assert!(text.contains("held: nothing yet"), "{text}");
    assert!(text.contains("no node runs on this home"), "{text}");
    ok(&home, ["block", other.as_str()]);
    let text = ok(&home, ["why", other.as_str()]).text();
    assert!(text.contains("not replicated: you block it"), "{text}");
    let mine = ok(&home, ["--json", "why", &keys.id().to_string()]).text();
    let v: serde_json::Value = serde_json::from_str(&mine).unwrap();
    assert_eq!(v["path"], serde_json::json!([keys.id().to_string()]));
    one_line_error(&shoal(&home, ["why", "@nope"]), 2);
}

#[test]
fn accounts_lists_the_homes_added_with_their_ids_and_whether_they_run() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("accounts.toml");
    let a = init_home(tmp.path(), "a", &test_key(0x24));
    let b = init_home(tmp.path(), "b", &test_key(0x25));
    let accounts = |args: &[&OsStr]| {
        let out = command(&a)
            .env("SHOAL_ACCOUNTS", &list)
            .arg("accounts")
            .args(args)
            .output()
            .expect("shoal runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(accounts(&[]), "");
    accounts(&["add".as_ref(), a.as_os_str()]);
    let listed = accounts(&["add".as_ref(), b.as_os_str()]);
    let (a, b) = (a.canonicalize().unwrap(), b.canonicalize().unwrap());
    assert_eq!(
        listed,
        format!(
            "{} {} stopped\n{} {} stopped\n",
            a.display(),
            test_key(0x24).id(),
            b.display(),
            test_key(0x25).id()
        )
    );
    // Adding again keeps one entry; removing leaves the home alone.
    accounts(&["add".as_ref(), a.as_os_str()]);
    let listed = accounts(&["remove".as_ref(), b.as_os_str()]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(b.join("secret").exists());
    // Only a home is added.
    let out = command(&a)
        .env("SHOAL_ACCOUNTS", &list)
        .args(["accounts", "add"])
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn init_reads_a_recovery_phrase_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = test_key(0x26);
    let phrase = shoal::crypto::phrase_of(&keys);
    let home = tmp.path().join("h");
    let out = shoal_stdin(&home, ["init", "--phrase", "-"], phrase.as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.text(), format!("{}\n", keys.id()));
    // The phrase printed back is the same.
    ok(&home, ["restore", "--done", "--yes"]);
    assert_eq!(
        shoal(&home, ["identity", "phrase"]).text().trim(),
        phrase.as_str()
    );
}
