//! The `shoal` command line: a thin shell over the library.
//!
//! Owns argument parsing, output shapes and exit codes (see the README's
//! command reference): 0 success, 1 when the command ran but found a problem,
//! 2 for usage errors. Every error is one line on stderr.

use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use shoal::crypto::{FeedId, MsgId};
use shoal::feed::json::{self, Value};
use shoal::home::{Home, HomeError};
use shoal::ingest::{self, Rejection};
use shoal::store::{Store, StoreError};

#[derive(Parser)]
#[command(name = "shoal", version, about = "A Secure Scuttlebutt peer")]
struct Cli {
    /// Home directory (identity, config, store).
    #[arg(long, global = true, env = "SHOAL_HOME")]
    home: Option<PathBuf>,
    /// Machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the home directory with an identity, store and config.
    Init {
        /// Import an existing SSB secret (ssb-keys format) instead of making one.
        #[arg(long)]
        secret: Option<PathBuf>,
    },
    /// Print our feed id.
    Whoami,
    /// Publish any content object, e.g. '{"type":"post","text":"hi"}'.
    Publish {
        /// The content as JSON.
        content: String,
    },
    /// Publish a post.
    Post {
        /// The text.
        text: String,
    },
    #[command(flatten)]
    Social(SocialCmd),
    /// Private groups whose keys rotate: removing someone rekeys the group.
    Group {
        #[command(subcommand)]
        cmd: GroupSub,
    },
    /// Print stored messages as JSON lines {key, value, timestamp}.
    Log {
        /// Only this feed, in feed order (default: every feed, in receive order).
        #[arg(long)]
        author: Option<String>,
        /// Only messages after this sequence (feed sequence with --author,
        /// local receive sequence without).
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// At most this many messages.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print one message {key, value, timestamp}.
    Get {
        /// The message id %….sha256.
        id: String,
    },
    /// Verify and store messages from JSON lines (values or {key, value, timestamp}).
    Import {
        /// The file, or - for standard input.
        file: PathBuf,
    },
    /// Write stored messages as JSON lines, the inverse of import.
    Export {
        /// Only this feed.
        #[arg(long)]
        author: Option<String>,
        /// The file to write (default: standard output).
        file: Option<PathBuf>,
    },
    /// Run the node: listener, replication with known peers, control socket.
    Serve {
        /// Address to listen on (default: `listen` in config.toml, 127.0.0.1:8008).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print our multiserver address `net:HOST:PORT~shs:KEY`.
    Address,
    /// Tell the running node to connect to a peer (and remember it).
    Connect {
        /// The peer's multiserver address `net:HOST:PORT~shs:KEY`.
        address: String,
    },
    /// Known peers and live connections.
    Peers,
    /// Replication progress.
    Status,
}

/// The group commands (`shoal group …`).
#[derive(Subcommand)]
enum GroupSub {
    /// Create a group with you as its admin; prints the group id.
    Create {
        /// Its name (seen by members only).
        name: String,
    },
    /// Add members (they can read the group's history).
    Add {
        /// The group id %….sha256.
        group: String,
        /// Feed ids to add.
        #[arg(required = true)]
        members: Vec<String>,
        /// Make them admins too (they may add and remove).
        #[arg(long)]
        admin: bool,
    },
    /// Remove members: rekeys the group; they keep what was posted before,
    /// and nothing they write after the last message of theirs you hold
    /// counts.
    Remove {
        /// The group id.
        group: String,
        /// Feed ids to remove.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Take admin rights from admins junior to you (they stay members).
    Demote {
        /// The group id.
        group: String,
        /// Feed ids of admins to demote.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Make members admins (junior to every admin before them).
    Promote {
        /// The group id.
        group: String,
        /// Feed ids of members to promote.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Post to a group; prints the message id.
    Post {
        /// The group id.
        group: String,
        /// The text.
        text: String,
    },
    /// Your groups.
    List,
    /// A group's members, admins and epochs.
    Members {
        /// The group id.
        group: String,
    },
    /// A group's posts, newest first.
    Read {
        /// The group id.
        group: String,
        /// At most this many posts.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// The social commands: answered by `shoal::commands`, through a running
/// node or on the store.
#[derive(Subcommand)]
enum SocialCmd {
    /// Reply to a message (in its thread; private if it is private).
    Reply {
        /// The message replied to.
        id: String,
        /// The text.
        text: String,
    },
    /// Like a message (a vote).
    Like {
        /// The message.
        id: String,
        /// Take the like back instead.
        #[arg(long)]
        undo: bool,
    },
    /// Set our name (an about message).
    Name {
        /// The name.
        name: String,
    },
    /// Follow a feed (its posts are replicated and shown).
    Follow {
        /// The feed id @….ed25519.
        id: String,
    },
    /// Stop following a feed.
    Unfollow {
        /// The feed id.
        id: String,
    },
    /// Block a feed: not replicated, not shown.
    Block {
        /// The feed id.
        id: String,
    },
    /// Send a private message (private-box) to 1..7 feeds besides yourself.
    Dm {
        /// Recipients, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// The text.
        text: String,
    },
    /// The timeline: posts of the feeds you follow and your own, newest first.
    Feed {
        /// How many posts.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A thread: the root and every reply we know of, in thread order.
    Thread {
        /// Any message of the thread.
        id: String,
    },
    /// Private messages we can read, newest first.
    Inbox {
        /// How many messages.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Whom a feed follows and blocks, and its followers (default: you).
    Contacts {
        /// The feed id.
        id: Option<String>,
    },
    /// A feed's profile: names, description, contacts (default: you).
    Profile {
        /// The feed id.
        id: Option<String>,
    },
}

/// A failure with its exit code.
struct Fail {
    code: u8,
    msg: String,
}

impl Fail {
    fn usage(msg: impl Into<String>) -> Fail {
        Fail {
            code: 2,
            msg: msg.into(),
        }
    }
    fn problem(msg: impl Into<String>) -> Fail {
        Fail {
            code: 1,
            msg: msg.into(),
        }
    }
}

impl From<HomeError> for Fail {
    fn from(e: HomeError) -> Self {
        match e {
            HomeError::Store(s) => s.into(),
            other => Fail::problem(other.to_string()),
        }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked => Fail::problem(
                "the store is in use by another shoal process (a running `shoal serve`?); stop it or run the command through it",
            ),
            other => Fail::problem(other.to_string()),
        }
    }
}

impl From<shoal::commands::Failure> for Fail {
    fn from((code, msg): shoal::commands::Failure) -> Self {
        Fail { code, msg }
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::problem(format!("I/O error: {e}"))
    }
}

type Res<T = ()> = Result<T, Fail>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's message may continue on following lines (e.g. the names
            // of missing arguments); keep its first paragraph, as one line.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            let first = if first.is_empty() {
                "invalid arguments".to_string()
            } else {
                first.join(" ")
            };
            eprintln!("{first} (see `shoal --help`)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.code == 0 => ExitCode::SUCCESS,
        Err(f) => {
            if !f.msg.is_empty() {
                eprintln!("error: {}", f.msg);
            }
            ExitCode::from(f.code)
        }
    }
}

fn home_dir(cli: &Cli) -> Res<PathBuf> {
    if let Some(h) = &cli.home {
        return Ok(h.clone());
    }
    dirs::data_dir()
        .map(|d| d.join("shoal"))
        .ok_or_else(|| Fail::usage("no home directory: pass --home DIR or set SHOAL_HOME"))
}

fn parse_feed(s: &str) -> Res<FeedId> {
    FeedId::parse(s).ok_or_else(|| Fail::usage(format!("not a feed id: {s} (expected @….ed25519)")))
}

fn parse_msg_id(s: &str) -> Res<MsgId> {
    MsgId::parse(s)
        .ok_or_else(|| Fail::usage(format!("not a message id: {s} (expected %….sha256)")))
}

/// Writes to stdout; a closed pipe (`shoal log | head`) ends quietly.
fn out_line(w: &mut impl Write, line: &[u8]) -> Res {
    quiet_pipe(w.write_all(line).and_then(|()| w.write_all(b"\n")))
}

/// Flushes buffered output, a closed pipe ending quietly too.
fn flush(w: &mut impl Write) -> Res {
    quiet_pipe(w.flush())
}

fn quiet_pipe(r: io::Result<()>) -> Res {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Fail {
            code: 0,
            msg: String::new(),
        }),
        other => Ok(other?),
    }
}

fn print_json(v: &serde_json::Value) -> Res {
    out_line(&mut io::stdout().lock(), v.to_string().as_bytes())
}

fn run(cli: Cli) -> Res {
    let dir = home_dir(&cli)?;
    let json_out = cli.json;
    if let Some(result) = through_node(&dir, &cli.cmd, json_out) {
        return result;
    }
    match cli.cmd {
        Cmd::Social(cmd) => {
            let answer = social(&dir, &social_request(&cmd)?)?;
            print_social(&cmd, &answer, json_out)
        }
        Cmd::Group { cmd } => {
            let answer = social(&dir, &group_request(&cmd)?)?;
            print_group(&cmd, &answer, json_out)
        }
        Cmd::Serve { listen } => serve(&dir, listen),
        Cmd::Address => {
            let home = Home::open(&dir)?;
            let listen = &home.config().listen;
            let (host, port) = listen
                .rsplit_once(':')
                .ok_or_else(|| Fail::problem(format!("config listen {listen:?} has no port")))?;
            let addr = format!("net:{host}:{port}~shs:{}", home.keys().id().b64());
            if json_out {
                print_json(&serde_json::json!({ "address": addr }))
            } else {
                out_line(&mut io::stdout(), addr.as_bytes())
            }
        }
        Cmd::Connect { address } => {
            address
                .parse::<shoal::net::MultiAddr>()
                .map_err(|e| Fail::usage(format!("not a multiserver address {address}: {e}")))?;
            let home = Home::open(&dir)?;
            let store = home.store()?;
            // The user's choice: dialled whatever its address, also when
            // it was known as a pub announcement.
            store.note_peer(&address, |rec| {
                if rec.source.is_empty() || rec.source == shoal::dialer::PUB_SOURCE {
                    rec.source = "connect".into();
                }
            })?;
            eprintln!(
                "no node is running on this home: remembered {address}; `shoal serve` will dial it"
            );
            Ok(())
        }
        Cmd::Peers => {
            let home = Home::open(&dir)?;
            let store = home.store()?;
            let known = store.peers()?;
            let v = serde_json::json!({
                "connected": [],
                "known": known.into_iter().map(|(a, r)| serde_json::json!({"address": a, "record": r})).collect::<Vec<_>>(),
            });
            print_peers(&v, json_out)
        }
        Cmd::Status => {
            let home = Home::open(&dir)?;
            let store = home.store()?;
            let wanted = store.replication_set(&home.keys().id(), home.config().hops)?;
            let stats = store.stats()?;
            let held = store.feeds()?;
            let v = serde_json::json!({
                "id": home.keys().id().to_string(),
                "address": null,
                "peers": 0,
                "feeds_wanted": wanted.len(),
                "feeds_held": wanted.keys().filter(|f| held.iter().any(|(h, _)| h == *f)).count(),
                "messages": stats.messages,
                "feeds_stored": stats.feeds,
                "forks": stats.forks,
                "unread": stats.unread,
                "running": false,
                "max_connections": home.config().max_connections,
                "hops": home.config().hops,
                "limits": home.config().limits().to_json(),
            });
            print_status(&v, json_out)
        }
        Cmd::Init { secret } => {
            let home = Home::init(&dir, secret.as_deref())?;
            if json_out {
                print_json(&serde_json::json!({"id": home.keys().id().to_string(), "home": dir}))
            } else {
                out_line(&mut io::stdout(), home.keys().id().to_string().as_bytes())
            }
        }
        Cmd::Whoami => {
            let home = Home::open(&dir)?;
            let id = home.keys().id().to_string();
            if json_out {
                print_json(&serde_json::json!({ "id": id }))
            } else {
                out_line(&mut io::stdout(), id.as_bytes())
            }
        }
        Cmd::Publish { content } => {
            let value = json::parse(content.as_bytes())
                .map_err(|e| Fail::usage(format!("content is not JSON: {e}")))?;
            if !matches!(value, Value::Object(_)) {
                return Err(Fail::usage("content must be a JSON object with a \"type\""));
            }
            publish(&dir, value, json_out)
        }
        Cmd::Post { text } => {
            let mut c = json::Object::new();
            c.insert("type", Value::from("post"));
            c.insert("text", Value::from(text));
            publish(&dir, Value::Object(c), json_out)
        }
        Cmd::Log {
            author,
            since,
            limit,
        } => {
            let author = author.as_deref().map(parse_feed).transpose()?;
            let home = Home::open(&dir)?;
            let store = home.store()?;
            let mut w = BufWriter::new(io::stdout().lock());
            write_messages(&store, author, since, limit.unwrap_or(usize::MAX), &mut w)?;
            flush(&mut w)
        }
        Cmd::Get { id } => {
            let id = parse_msg_id(&id)?;
            let home = Home::open(&dir)?;
            let store = home.store()?;
            let msg = store
                .get(&id)?
                .ok_or_else(|| Fail::problem(format!("message {id} is not in the store")))?;
            let line = shoal::commands::message_line(&store, &msg).map_err(Fail::from)?;
            out_line(&mut io::stdout(), &line)
        }
        Cmd::Import { file } => {
            let home = Home::open(&dir)?;
            let store = home.store()?;
            let input: Box<dyn BufRead + Send> = if file == Path::new("-") {
                Box::new(BufReader::with_capacity(1 << 20, io::stdin()))
            } else {
                let f = fs::File::open(&file)
                    .map_err(|e| Fail::problem(format!("cannot open {}: {e}", file.display())))?;
                Box::new(BufReader::with_capacity(1 << 20, f))
            };
            let summary = ingest::import(&store, input, home.sign_cap(), |r: Rejection| {
                let _ = writeln!(io::stderr(), "rejected line {}: {}", r.line, r.reason);
            })
            .map_err(|e| Fail::problem(e.to_string()))?;
            if json_out {
                print_json(&serde_json::json!({
                    "imported": summary.imported,
                    "rejected": summary.rejected,
                    "duplicates": summary.duplicates,
                }))?;
            } else {
                let mut line = format!(
                    "imported {}, rejected {}",
                    summary.imported, summary.rejected
                );
                if summary.duplicates > 0 {
                    line.push_str(&format!(", already present {}", summary.duplicates));
                }
                out_line(&mut io::stdout(), line.as_bytes())?;
            }
            if summary.rejected > 0 {
                // The rejections and the summary already say what happened.
                Err(Fail::problem(String::new()))
            } else {
                Ok(())
            }
        }
        Cmd::Export { author, file } => {
            let author = author.as_deref().map(parse_feed).transpose()?;
            let home = Home::open(&dir)?;
            let store = home.store()?;
            match file {
                None => {
                    let mut w = BufWriter::new(io::stdout().lock());
                    write_messages(&store, author, 0, usize::MAX, &mut w)?;
                    flush(&mut w)
                }
                Some(path) => export_to_file(&dir, &store, author, &path),
            }
        }
    }
}

/// Runs a command through the node that owns this home, when one runs
/// (`shoal serve` or the TUI). `None`: no node runs; do it locally.
fn through_node(dir: &Path, cmd: &Cmd, json_out: bool) -> Option<Res> {
    use serde_json::json;
    if !shoal::local::socket_path(dir).exists() {
        return None;
    }
    let req = match cmd {
        Cmd::Init { .. } | Cmd::Serve { .. } | Cmd::Social(_) | Cmd::Group { .. } => return None,
        Cmd::Whoami => json!({"cmd": "whoami"}),
        Cmd::Address => json!({"cmd": "address"}),
        Cmd::Publish { content } => json!({"cmd": "publish", "content": content}),
        Cmd::Post { text } => {
            let mut c = json::Object::new();
            c.insert("type", Value::from("post"));
            c.insert("text", Value::from(text.as_str()));
            let content = String::from_utf8(json::to_compact(&Value::Object(c))).ok()?;
            json!({"cmd": "publish", "content": content})
        }
        Cmd::Log {
            author,
            since,
            limit,
        } => json!({"cmd": "log", "author": author, "since": since, "limit": limit}),
        Cmd::Get { id } => json!({"cmd": "get", "id": id}),
        Cmd::Import { file } => {
            if file == Path::new("-") {
                return Some(Err(Fail::problem(
                    "a node is running on this home: import a file path, not standard input",
                )));
            }
            let abs = fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            json!({"cmd": "import", "path": abs})
        }
        Cmd::Export { author, .. } => json!({"cmd": "log", "author": author}),
        Cmd::Connect { address } => json!({"cmd": "connect", "address": address}),
        Cmd::Peers => json!({"cmd": "peers"}),
        Cmd::Status => json!({"cmd": "status"}),
    };
    // Output lines go to stdout, or for `export FILE` straight into a
    // partial file renamed into place once complete.
    let export_file = match cmd {
        Cmd::Export { file: Some(f), .. } => Some((f.clone(), f.with_extension("partial"))),
        _ => None,
    };
    let mut out: Box<dyn Write> = match &export_file {
        Some((path, tmp)) => match shoal::home::create_output_file(dir, tmp) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => {
                return Some(Err(Fail::problem(format!(
                    "cannot write {}: {e}",
                    path.display()
                ))));
            }
        },
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let discard_partial = || {
        if let Some((_, tmp)) = &export_file {
            let _ = fs::remove_file(tmp);
        }
    };
    let mut out_err: Option<Fail> = None;
    let answer = shoal::local::request(
        dir,
        &req,
        |line| {
            if out_err.is_none()
                && let Err(e) = out_line(&mut out, line.as_bytes())
            {
                out_err = Some(e);
            }
        },
        |line| eprintln!("{line}"),
    );
    let answer = match answer {
        Ok(None) => {
            discard_partial();
            return None;
        }
        Ok(Some(a)) => a,
        Err(e) => {
            discard_partial();
            return Some(Err(Fail::problem(format!("control socket: {e}"))));
        }
    };
    if let Some(e) = out_err.or_else(|| flush(&mut out).err()) {
        discard_partial();
        return Some(Err(e));
    }
    drop(out);
    let value = match answer {
        Ok(v) => v,
        Err((code, msg)) => {
            discard_partial();
            return Some(Err(Fail { code, msg }));
        }
    };
    Some(match cmd {
        Cmd::Whoami => print_value(&value, "id", json_out),
        Cmd::Address => print_value(&value, "address", json_out),
        Cmd::Publish { .. } | Cmd::Post { .. } => print_value(&value, "key", json_out),
        Cmd::Connect { .. } => print_value(&value, "connected", json_out),
        Cmd::Peers => print_peers(&value, json_out),
        Cmd::Status => print_status(&value, json_out),
        Cmd::Import { .. } => {
            let n = |k: &str| {
                value
                    .get(k)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            };
            let r = if json_out {
                print_json(&value)
            } else {
                let mut line = format!("imported {}, rejected {}", n("imported"), n("rejected"));
                if n("duplicates") > 0 {
                    line.push_str(&format!(", already present {}", n("duplicates")));
                }
                out_line(&mut io::stdout(), line.as_bytes())
            };
            r.and_then(|()| {
                if n("rejected") > 0 {
                    Err(Fail::problem(String::new()))
                } else {
                    Ok(())
                }
            })
        }
        Cmd::Export { .. } => match &export_file {
            Some((path, tmp)) => fs::rename(tmp, path).map_err(|e| {
                discard_partial();
                Fail::problem(format!("cannot write {}: {e}", path.display()))
            }),
            None => Ok(()),
        },
        _ => Ok(()),
    })
}

fn print_value(v: &serde_json::Value, key: &str, json_out: bool) -> Res {
    if json_out {
        print_json(v)
    } else {
        let text = match v.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => v.to_string(),
        };
        out_line(&mut io::stdout(), text.as_bytes())
    }
}

fn print_peers(v: &serde_json::Value, json_out: bool) -> Res {
    if json_out {
        return print_json(v);
    }
    let mut out = io::stdout().lock();
    let empty = Vec::new();
    let connected = v
        .get("connected")
        .and_then(|c| c.as_array())
        .unwrap_or(&empty);
    for c in connected {
        let dir = if c.get("outgoing").and_then(|o| o.as_bool()) == Some(true) {
            "out"
        } else {
            "in"
        };
        let line = format!(
            "connected {} {} {dir} {}s",
            c.get("id").and_then(|x| x.as_str()).unwrap_or("?"),
            c.get("addr").and_then(|x| x.as_str()).unwrap_or("?"),
            c.get("connected_secs")
                .and_then(|x| x.as_u64())
                .unwrap_or(0)
        );
        out_line(&mut out, line.as_bytes())?;
    }
    for k in v.get("known").and_then(|c| c.as_array()).unwrap_or(&empty) {
        // A running node counts failed dials in memory.
        let failures = k
            .get("dial_failures")
            .or_else(|| k.pointer("/record/failures"))
            .and_then(|x| x.as_u64())
            .unwrap_or(0);
        let line = format!(
            "known {} {} failures={failures}",
            k.get("address").and_then(|x| x.as_str()).unwrap_or("?"),
            k.pointer("/record/source")
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("-"),
        );
        out_line(&mut out, line.as_bytes())?;
    }
    Ok(())
}

fn print_status(v: &serde_json::Value, json_out: bool) -> Res {
    if json_out {
        return print_json(v);
    }
    let n = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
    let line = format!(
        "feeds wanted {}, held {}; messages {} in {} feeds; peers {}; forks {}; unread {}",
        n("feeds_wanted"),
        n("feeds_held"),
        n("messages"),
        n("feeds_stored"),
        n("peers"),
        n("forks"),
        n("unread")
    );
    out_line(&mut io::stdout(), line.as_bytes())?;
    let limit = |v: Option<&serde_json::Value>, unit: &str| match v.and_then(|x| x.as_u64()) {
        Some(0) | None => "none".to_string(),
        Some(x) => format!("{x}{unit}"),
    };
    let l = v.get("limits");
    let line = format!(
        "limits: connections {}, hops {}, per peer {}, per day {}, per feed {}, per feed a day {}",
        limit(v.get("max_connections"), ""),
        limit(v.get("hops"), ""),
        limit(l.and_then(|l| l.get("peer_rate")), " msg/s"),
        limit(l.and_then(|l| l.get("max_bytes_per_day")), " bytes"),
        limit(l.and_then(|l| l.get("max_feed_bytes")), " bytes"),
        limit(l.and_then(|l| l.get("max_feed_bytes_per_day")), " bytes"),
    );
    out_line(&mut io::stdout(), line.as_bytes())?;
    if let Some(l) = l.filter(|l| l.get("bytes_today").is_some()) {
        let line = format!(
            "today: {} bytes from peers; peers slowed {}, dropped {}; feeds capped {}, for today {}",
            l["bytes_today"],
            l["peers_slowed"],
            l["peers_dropped"],
            l["feeds_capped"],
            l["feeds_capped_today"]
        );
        out_line(&mut io::stdout(), line.as_bytes())?;
    }
    Ok(())
}

/// The request of a social command.
fn social_request(cmd: &SocialCmd) -> Res<serde_json::Value> {
    use serde_json::json;
    Ok(match cmd {
        SocialCmd::Reply { id, text } => {
            parse_msg_id(id)?;
            json!({"cmd": "reply", "id": id, "text": text})
        }
        SocialCmd::Like { id, undo } => {
            parse_msg_id(id)?;
            json!({"cmd": if *undo { "unlike" } else { "like" }, "id": id})
        }
        SocialCmd::Name { name } => {
            if name.trim().is_empty() {
                return Err(Fail::usage("the name is empty"));
            }
            json!({"cmd": "name", "name": name})
        }
        SocialCmd::Follow { id } | SocialCmd::Unfollow { id } | SocialCmd::Block { id } => {
            parse_feed(id)?;
            let c = match cmd {
                SocialCmd::Follow { .. } => "follow",
                SocialCmd::Unfollow { .. } => "unfollow",
                _ => "block",
            };
            json!({"cmd": c, "id": id})
        }
        SocialCmd::Dm { to, text } => {
            for t in to {
                parse_feed(t)?;
            }
            json!({"cmd": "dm", "to": to, "text": text})
        }
        SocialCmd::Feed { limit } => json!({"cmd": "feed", "limit": limit}),
        SocialCmd::Inbox { limit } => json!({"cmd": "inbox", "limit": limit}),
        SocialCmd::Thread { id } => {
            parse_msg_id(id)?;
            json!({"cmd": "thread", "id": id})
        }
        SocialCmd::Contacts { id } | SocialCmd::Profile { id } => {
            if let Some(id) = id {
                parse_feed(id)?;
            }
            let c = if matches!(cmd, SocialCmd::Contacts { .. }) {
                "contacts"
            } else {
                "profile"
            };
            json!({"cmd": c, "id": id})
        }
    })
}

/// Runs a social command through the running node, or on the store.
fn social(dir: &Path, req: &serde_json::Value) -> Res<serde_json::Value> {
    match shoal::local::request(dir, req, |_| {}, |l| eprintln!("{l}")) {
        Ok(Some(answer)) => return answer.map_err(Fail::from),
        Ok(None) => {}
        Err(e) => return Err(Fail::problem(format!("control socket: {e}"))),
    }
    let home = Home::open(dir)?;
    let store = home.store()?;
    match shoal::commands::handle(&store, req).expect("a social request")? {
        shoal::commands::Social::Publish(content) => {
            let msg = store.append_local(home.keys(), content, home.sign_cap())?;
            Ok(serde_json::json!({"key": msg.id().to_string(), "sequence": msg.sequence()}))
        }
        shoal::commands::Social::Answer(a) => Ok(a),
        shoal::commands::Social::Group(cmd) => Ok(shoal::commands::group_publish(&cmd, |op| {
            store.group_write(home.keys(), op, home.sign_cap())
        })?),
    }
}

/// The request of a group command.
fn group_request(cmd: &GroupSub) -> Res<serde_json::Value> {
    use serde_json::json;
    let feeds = |ids: &[String]| -> Res<()> {
        for id in ids {
            parse_feed(id)?;
        }
        Ok(())
    };
    Ok(match cmd {
        GroupSub::Create { name } => json!({"cmd": "group-create", "name": name}),
        GroupSub::Add {
            group,
            members,
            admin,
        } => {
            parse_msg_id(group)?;
            feeds(members)?;
            json!({"cmd": "group-add", "group": group, "members": members, "admin": admin})
        }
        GroupSub::Remove { group, members } => {
            parse_msg_id(group)?;
            feeds(members)?;
            json!({"cmd": "group-remove", "group": group, "members": members})
        }
        GroupSub::Demote { group, members } => {
            parse_msg_id(group)?;
            feeds(members)?;
            json!({"cmd": "group-demote", "group": group, "members": members})
        }
        GroupSub::Promote { group, members } => {
            parse_msg_id(group)?;
            feeds(members)?;
            json!({"cmd": "group-promote", "group": group, "members": members})
        }
        GroupSub::Post { group, text } => {
            parse_msg_id(group)?;
            json!({"cmd": "group-post", "group": group, "text": text})
        }
        GroupSub::List => json!({"cmd": "group-list"}),
        GroupSub::Members { group } => {
            parse_msg_id(group)?;
            json!({"cmd": "group-members", "group": group})
        }
        GroupSub::Read { group, limit } => {
            parse_msg_id(group)?;
            json!({"cmd": "group-read", "group": group, "limit": limit})
        }
    })
}

/// Prints the answer of a group command.
fn print_group(cmd: &GroupSub, v: &serde_json::Value, json_out: bool) -> Res {
    let mut out = BufWriter::new(io::stdout().lock());
    let empty = Vec::new();
    let list = |v: &serde_json::Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(|a| a.as_array())
            .unwrap_or(&empty)
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    match cmd {
        GroupSub::List => {
            let groups = v.get("groups").and_then(|g| g.as_array()).unwrap_or(&empty);
            for g in groups {
                if json_out {
                    out_line(&mut out, g.to_string().as_bytes())?;
                    continue;
                }
                out_line(&mut out, shoal::text::group(g).as_bytes())?;
            }
            if groups.is_empty() && !json_out {
                eprintln!("no groups: `shoal group create NAME` makes one");
            }
        }
        GroupSub::Members { .. } => {
            if json_out {
                out_line(&mut out, v.to_string().as_bytes())?;
            } else {
                let admins = list(v, "admins");
                for m in list(v, "members") {
                    let line = if admins.contains(&m) {
                        format!("{m}  admin")
                    } else {
                        m
                    };
                    out_line(&mut out, line.as_bytes())?;
                }
            }
        }
        GroupSub::Read { .. } => {
            print_items(
                &mut out,
                v,
                json_out,
                "no posts you can read in this group yet",
            )?;
        }
        GroupSub::Create { .. } => {
            drop(out);
            return print_value(v, "group", json_out);
        }
        _ => {
            drop(out);
            return print_value(v, "key", json_out);
        }
    }
    flush(&mut out)
}

/// Prints the `items` of an answer, one a line (JSON or text); says `none`
/// on stderr when there are none.
fn print_items(out: &mut impl Write, v: &serde_json::Value, json_out: bool, none: &str) -> Res {
    let items = v.get("items").and_then(|i| i.as_array());
    let items = items.map(Vec::as_slice).unwrap_or_default();
    for item in items {
        if json_out {
            out_line(out, item.to_string().as_bytes())?;
        } else {
            out_line(out, shoal::text::item(item, 0).as_bytes())?;
        }
    }
    if items.is_empty() && !json_out {
        eprintln!("{none}");
    }
    Ok(())
}

/// Prints the answer of a social command.
fn print_social(cmd: &SocialCmd, v: &serde_json::Value, json_out: bool) -> Res {
    let mut out = BufWriter::new(io::stdout().lock());
    let empty = Vec::new();
    match cmd {
        SocialCmd::Feed { .. } | SocialCmd::Inbox { .. } => {
            let none = if matches!(cmd, SocialCmd::Feed { .. }) {
                "no posts yet: follow someone (`shoal follow @…`) or post"
            } else {
                "no private messages"
            };
            print_items(&mut out, v, json_out, none)?;
        }
        SocialCmd::Thread { .. } => {
            let entries = v
                .get("entries")
                .and_then(|i| i.as_array())
                .unwrap_or(&empty);
            let hidden = v.get("hidden").and_then(|h| h.as_u64()).unwrap_or(0);
            for e in entries {
                if json_out {
                    out_line(&mut out, e.to_string().as_bytes())?;
                } else {
                    out_line(&mut out, shoal::text::entry(e).as_bytes())?;
                }
            }
            if hidden > 0 {
                if json_out {
                    let line = serde_json::json!({"entry": "hidden", "count": hidden});
                    out_line(&mut out, line.to_string().as_bytes())?;
                } else {
                    out_line(
                        &mut out,
                        format!("({hidden} hidden: replies of feeds you block)").as_bytes(),
                    )?;
                }
            }
        }
        SocialCmd::Contacts { .. } | SocialCmd::Profile { .. } => {
            if json_out {
                out_line(&mut out, v.to_string().as_bytes())?;
            } else {
                out_line(&mut out, shoal::text::profile(v).as_bytes())?;
            }
        }
        _ => {
            drop(out);
            return print_value(v, "key", json_out);
        }
    }
    flush(&mut out)
}

/// `shoal serve`: the node in the foreground until Ctrl-C or SIGTERM.
fn serve(dir: &Path, listen: Option<String>) -> Res {
    let home = Home::open(dir)?;
    let listen = listen.unwrap_or_else(|| home.config().listen.clone());
    drop(home);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let node = shoal::node::Node::open(dir).map_err(|e| match e {
            shoal::node::NodeError::Store(s) => Fail::from(s),
            other => Fail::problem(other.to_string()),
        })?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| Fail::problem(format!("cannot listen on {listen}: {e}")))?;
        let control = {
            let node = node.clone();
            let dir = dir.to_owned();
            tokio::spawn(async move { shoal::local::serve(node, &dir).await })
        };
        node.dial_known_peers();
        let server = {
            let node = node.clone();
            tokio::spawn(async move { node.serve(listener).await })
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        node.shutdown().await;
        control.abort();
        let _ = fs::remove_file(shoal::local::socket_path(dir));
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
        Ok(())
    });
    // Every task gone, the node lets go of its store; wait for that, so
    // the store is closed cleanly (a store left open is repaired on its
    // next open, which takes long on a big store).
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Home::open(dir).and_then(|h| Ok(h.store()?)) {
            Ok(store) => {
                drop(store);
                break;
            }
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!("the store was still in use at exit: {e}");
                break;
            }
        }
    }
    result
}

fn publish(dir: &Path, content: Value, json_out: bool) -> Res {
    let home = Home::open(dir)?;
    let store = home.store()?;
    let msg = store.append_local(home.keys(), content, home.sign_cap())?;
    if json_out {
        print_json(&serde_json::json!({
            "key": msg.id().to_string(),
            "sequence": msg.sequence(),
        }))
    } else {
        out_line(&mut io::stdout(), msg.id().to_string().as_bytes())
    }
}

/// Streams messages in pages, so memory stays bounded however large the store.
fn write_messages(
    store: &Store,
    author: Option<FeedId>,
    since: u64,
    limit: usize,
    w: &mut impl Write,
) -> Res {
    const PAGE: usize = 1000;
    let mut after = since;
    let mut left = limit;
    while left > 0 {
        let n = PAGE.min(left);
        let (page, next) = store.messages_after(author.as_ref(), after, n)?;
        for m in &page {
            out_line(w, &m.to_kvt())?;
        }
        after = next;
        left -= page.len();
        if page.len() < n {
            break;
        }
    }
    Ok(())
}

/// Writes next to the target and renames, so a reader never sees half a
/// file (0600 when it is in the home `dir`).
fn export_to_file(dir: &Path, store: &Store, author: Option<FeedId>, path: &Path) -> Res {
    let tmp = path.with_extension("partial");
    let result = (|| -> Res {
        let f = shoal::home::create_output_file(dir, &tmp)
            .map_err(|e| Fail::problem(format!("cannot write {}: {e}", tmp.display())))?;
        let mut w = BufWriter::new(f);
        write_messages(store, author, 0, usize::MAX, &mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        fs::rename(&tmp, path)
            .map_err(|e| Fail::problem(format!("cannot write {}: {e}", path.display())))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
