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
use shoal::import::{self, Rejection};
use shoal::store::{Store, StoreError, StoredMsg};

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

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::problem(format!("I/O error: {e}"))
    }
}

type Res<T = ()> = Result<T, Fail>;

/// Parsing builds many small JSON trees; mimalloc serves them several times
/// faster than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    match cli.cmd {
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
            out_line(&mut io::stdout(), &msg.to_kvt())
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
            let summary = import::import(&store, input, home.sign_cap(), |r: Rejection| {
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
                Some(path) => export_to_file(&store, author, &path),
            }
        }
    }
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
        let page: Vec<StoredMsg> = match &author {
            Some(a) => store.feed(a, after, PAGE.min(left))?,
            None => store.log(after, PAGE.min(left))?,
        };
        let Some(last) = page.last() else { break };
        after = match &author {
            Some(_) => after + page.len() as u64,
            None => last.rx,
        };
        left -= page.len();
        for m in &page {
            out_line(w, &m.to_kvt())?;
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(())
}

/// Writes next to the target and renames, so a reader never sees half a file.
fn export_to_file(store: &Store, author: Option<FeedId>, path: &Path) -> Res {
    let tmp = path.with_extension("partial");
    let result = (|| -> Res {
        let f = fs::File::create(&tmp)
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
