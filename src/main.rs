//! The `shoal` command line: a thin shell over the library.
//!
//! Owns argument parsing, output shapes and exit codes (see the README's
//! command reference): 0 success, 1 when the command ran but found a problem,
//! 2 for usage errors. Every error is one line on stderr.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use shoal::api::{self, ApiError, BlobState, Local, Request, Response, Sink};
use shoal::crypto::{BlobId, FeedId, MsgId};
use shoal::home::{Home, HomeError};

/// glibc's allocator spent about a seventh of `shoal import`'s CPU in
/// malloc and free (perf, README "Import"); mimalloc's thread-local
/// free lists cost a fraction of that. Without transparent huge pages
/// (`no_thp`): with them, every page mimalloc takes back from the system
/// is zeroed 2 MiB at a time, which cost a replicating node about a tenth
/// of its time and the import a third more memory.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Use an existing SSB secret (ssb-keys format) instead of making
        /// one: the home starts restoring (see `shoal restore`).
        #[arg(long, conflicts_with = "phrase")]
        secret: Option<PathBuf>,
        /// Use the identity of a 24-word recovery phrase (`-`: read it
        /// from stdin): the home starts restoring.
        #[arg(long)]
        phrase: Option<String>,
    },
    /// Linked devices: one person, a feed on each device.
    Device {
        #[command(subcommand)]
        cmd: DeviceSub,
    },
    /// The accounts list (the homes `shoal-tui` holds at once): each home,
    /// its feed id, and whether a node runs there.
    Accounts {
        #[command(subcommand)]
        cmd: Option<AccountsSub>,
    },
    /// Our identity: `shoal identity phrase` prints its recovery phrase.
    Identity {
        #[command(subcommand)]
        cmd: IdentitySub,
    },
    /// A home made from an existing identity publishes nothing until its
    /// feed has come back from a peer; `shoal restore --done --yes` says
    /// that no peer has it (or lifts a peer's claim or a fork).
    Restore {
        /// Lift what holds publishing.
        #[arg(long, required = true)]
        done: bool,
        /// Confirm, after the warning that this can fork the feed.
        #[arg(long)]
        yes: bool,
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
        /// Files to attach (added as blobs, linked and listed in `mentions`).
        #[arg(long, num_args = 1..)]
        attach: Vec<PathBuf>,
    },
    /// Rooms: run one, or meet peers through one.
    Room {
        #[command(subcommand)]
        cmd: RoomSub,
    },
    /// Blobs: files shared by their sha256, fetched from peers.
    Blob {
        #[command(subcommand)]
        cmd: BlobSub,
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
    /// Why a feed replicates or not: whether we want it and through whom,
    /// what we hold, what each connected peer claims, the last error.
    Why {
        /// The feed id (or its ssb: URI).
        id: String,
    },
    /// Bytes the store holds: messages, indexes, blobs; by distance in
    /// follows; the largest feeds.
    Storage,
    /// Delete what the `[retention]` rules of config.toml say: older
    /// messages of feeds beyond `keep_hops` (each keeps its latest).
    Prune {
        /// Only say what would go.
        #[arg(long)]
        dry_run: bool,
    },
    /// Give the space pruning freed back to the file system (also while
    /// the node runs: its writes wait meanwhile).
    Compact,
    /// Print the `ssb:` URI of a feed, message or blob id or a multiserver
    /// address, as other Scuttlebutt apps link them.
    Uri {
        /// The id, address or URI.
        id: String,
    },
    /// Pub invites: redeem one, or make one this node redeems.
    Invite {
        #[command(subcommand)]
        cmd: InviteSub,
    },
}

/// The device commands (`shoal device …`).
#[derive(Subcommand)]
enum DeviceSub {
    /// Say FEED is another device of ours; run it on both devices (each
    /// naming the other): the link counts once both said it.
    Link {
        /// The other device's feed id.
        feed: String,
    },
    /// End a device link (either side may).
    Unlink {
        /// The other device's feed id.
        feed: String,
    },
    /// A person's devices (ours by default), and links one side made.
    List {
        /// Whose.
        feed: Option<String>,
    },
}

/// Changes to the accounts list (`shoal accounts …`).
#[derive(Subcommand)]
enum AccountsSub {
    /// Add a home (initialised) to the list.
    Add {
        /// The home directory.
        home: PathBuf,
    },
    /// Remove a home from the list (the home itself is untouched).
    Remove {
        /// The home directory.
        home: PathBuf,
    },
}

/// The identity commands (`shoal identity …`).
#[derive(Subcommand)]
enum IdentitySub {
    /// Print the identity's secret as a 24-word recovery phrase (BIP39,
    /// English): whoever has it is you; `shoal init --phrase` restores it.
    Phrase,
}

/// The room commands (`shoal room …`).
#[derive(Subcommand)]
enum RoomSub {
    /// Run the node as a room too: peers that connect attend it and meet
    /// each other through tunnels it relays (and cannot read).
    Serve {
        /// Address to listen on (default: `listen` in config.toml).
        #[arg(long)]
        listen: Option<String>,
        /// The room's name, as attendants see it (default: `[room] name`
        /// in config.toml, else "shoal room").
        #[arg(long)]
        name: Option<String>,
        /// Who may attend: open (anyone), community or restricted (members,
        /// who join with an invite).
        #[arg(long)]
        mode: Option<String>,
        /// Where invites are claimed over HTTP, HOST:PORT.
        #[arg(long)]
        http: Option<String>,
    },
    /// Make an invite to the room this node runs (through the running
    /// node), or ask a room we are in for one (`--room`: its members may
    /// in a community room, its admins in a restricted one); prints its
    /// `ssb:experimental?action=claim-http-invite` link.
    Invite {
        /// A room we are in, by feed id, to ask for the invite.
        #[arg(long)]
        room: Option<String>,
    },
    /// Register an alias for us at a room we are in (signed by us, so the
    /// room cannot forge it); prints its `consume-alias` link, which
    /// `shoal connect` takes.
    Alias {
        /// The alias: a-z, 0-9 and '-', up to 63.
        alias: String,
        /// The room (default: the only one we are in).
        #[arg(long)]
        room: Option<String>,
        /// Remove the alias instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Join a room by its address or an invite of it: the node keeps it
    /// connected and meets, through it, the attendants whose feeds it
    /// replicates.
    Join {
        /// The room's multiserver address (or its `ssb:address` URI), or a
        /// `claim-http-invite` link.
        address: String,
    },
    /// The rooms the running node is in, with how many attend each.
    List,
    /// Who attends the rooms we are in (or one of them): id, name, whether
    /// we follow them, whether we are connected.
    Attendants {
        /// Only this room.
        room: Option<String>,
    },
}

/// The blob commands (`shoal blob …`).
#[derive(Subcommand)]
enum BlobSub {
    /// Add a file as a blob; prints its id &….sha256.
    Add {
        /// The file.
        file: PathBuf,
    },
    /// Print where a blob is held (or copy it with --out); with a running
    /// node, a blob not held is asked of peers and waited for.
    Get {
        /// The blob id &….sha256 (or its ssb: URI).
        id: String,
        /// Copy it here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds to wait for it from peers.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Say whether we hold a blob (its size), without asking peers.
    Has {
        /// The blob id.
        id: String,
    },
    /// List the blobs held: id and size.
    Ls,
}

/// The invite commands (`shoal invite …`).
#[derive(Subcommand)]
enum InviteSub {
    /// Redeem a pub's invite code: the pub follows you; you follow it,
    /// announce it and stay connected to it.
    Accept {
        /// `net:HOST:PORT~shs:KEY:SEED`, or the legacy `HOST:PORT:@KEY.ed25519~SEED`.
        code: String,
    },
    /// Make an invite the running node redeems; prints its code.
    Create {
        /// How many times it may be redeemed.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// A note kept with it (put in the node's follow of each redeemer).
        #[arg(long)]
        note: Option<String>,
        /// Where peers reach the node, HOST[:PORT] (default: where it listens).
        #[arg(long)]
        external: Option<String>,
    },
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

/// The social commands: requests of `shoal::api`, answered through a
/// running node or on the store.
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
    /// Search everything we can read (posts, replies, names and
    /// descriptions, private messages and group posts we opened): best
    /// match first, matching words marked `[like this]`.
    Search {
        /// The words; all must match. `a OR b`, `-word` and `"a phrase"`
        /// work too; a query that does not parse is read word by word.
        query: String,
        /// Only messages of this feed (@….ed25519 or ssb:feed/…).
        #[arg(long)]
        from: Option<String>,
        /// Only `public`, `private` or `group` messages.
        #[arg(long = "in", value_name = "public|private|group")]
        kind: Option<String>,
        /// Only messages from this day on (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// How many hits (at most 500).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Private messages we can read, newest first.
    Inbox {
        /// How many messages.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Mute a word, a feed or a thread: hidden from the timeline and the
    /// inbox, collapsed in threads; local, never published, nothing deleted.
    Mute {
        /// A feed id (or ssb: URI), a message id (its thread), or a word.
        target: String,
        /// Take it as a word whatever it looks like.
        #[arg(long)]
        word: bool,
    },
    /// Take a mute back: what it hid shows again.
    Unmute {
        /// As given to `mute`.
        target: String,
        /// Take it as a word whatever it looks like.
        #[arg(long)]
        word: bool,
    },
    /// Everything muted.
    Mutes,
    /// Edit one of your posts: publish a revision (ssb-revisions).
    Edit {
        /// The post (or one of its revisions).
        id: String,
        /// The new text.
        text: String,
    },
    /// A post and its revisions by its author, oldest first.
    History {
        /// The post (or one of its revisions).
        id: String,
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

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail {
            code: e.exit_code(),
            msg: e.to_string(),
        }
    }
}

impl From<HomeError> for Fail {
    fn from(e: HomeError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::problem(format!("I/O error: {e}"))
    }
}

type Res<T = ()> = Result<T, Fail>;

fn main() -> ExitCode {
    // Before anything uses rayon; it cannot have started yet.
    let _ = shoal::ingest::start_check_pool();
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

/// A feed id, as a sigil or an `ssb:` URI.
fn parse_feed(s: &str) -> Res<FeedId> {
    shoal::uri::parse_feed(s).ok_or_else(|| {
        Fail::usage(format!(
            "not a feed id: {s} (expected @….ed25519 or ssb:feed/classic/…)"
        ))
    })
}

/// A message id, as a sigil or an `ssb:` URI.
fn parse_msg_id(s: &str) -> Res<MsgId> {
    shoal::uri::parse_msg(s).ok_or_else(|| {
        Fail::usage(format!(
            "not a message id: {s} (expected %….sha256 or ssb:message/classic/…)"
        ))
    })
}

/// A blob id, as a sigil or an `ssb:` URI.
fn parse_blob(s: &str) -> Res<BlobId> {
    shoal::uri::parse_blob(s).ok_or_else(|| {
        Fail::usage(format!(
            "not a blob id: {s} (expected &….sha256 or ssb:blob/classic/…)"
        ))
    })
}

/// A path as a running node (whatever its working directory) reads it.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
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
    if let Cmd::Uri { id } = &cli.cmd {
        // Needs no home, nor a node.
        return print_answer(&cli.cmd, &api::uri(id)?, cli.json);
    }
    let dir = home_dir(&cli)?;
    let json_out = cli.json;
    let req = match &cli.cmd {
        Cmd::Init { secret, phrase } => {
            let read;
            let identity = match (secret, phrase) {
                (Some(file), _) => shoal::home::Identity::SecretFile(file),
                (None, Some(p)) if p == "-" => {
                    let mut text = String::new();
                    io::Read::read_to_string(&mut io::stdin(), &mut text)?;
                    read = zeroize::Zeroizing::new(text);
                    shoal::home::Identity::Phrase(&read)
                }
                (None, Some(p)) => shoal::home::Identity::Phrase(p),
                (None, None) => shoal::home::Identity::New,
            };
            let restoring = !matches!(identity, shoal::home::Identity::New);
            let home = Home::init(&dir, identity)?;
            if restoring && !json_out {
                eprintln!(
                    "restoring: this home publishes nothing until its feed has come back from a peer that holds it (`shoal serve` and connect to one; `shoal status` says how far), or `shoal restore --done --yes` if no peer has it"
                );
            }
            return if json_out {
                print_json(&serde_json::json!({"id": home.keys().id().to_string(), "home": dir}))
            } else {
                out_line(&mut io::stdout(), home.keys().id().to_string().as_bytes())
            };
        }
        Cmd::Serve { listen } => return serve(&dir, listen.clone(), None),
        Cmd::Accounts { cmd } => {
            let homes = match cmd {
                None => shoal::home::accounts()?,
                Some(AccountsSub::Add { home }) => shoal::home::change_accounts(home, true)?,
                Some(AccountsSub::Remove { home }) => shoal::home::change_accounts(home, false)?,
            };
            return print_accounts(&homes, json_out);
        }
        Cmd::Identity {
            cmd: IdentitySub::Phrase,
        } => {
            let home = Home::open(&dir)?;
            let phrase = shoal::crypto::phrase_of(home.keys());
            eprintln!(
                "These 24 words are your identity: anyone who reads them can post as you. Write them down, keep them offline, and never type them anywhere but `shoal init --phrase`."
            );
            return out_line(&mut io::stdout(), phrase.as_bytes());
        }
        Cmd::Room {
            cmd:
                RoomSub::Serve {
                    listen,
                    name,
                    mode,
                    http,
                },
        } => {
            let room = shoal::local::RoomOptions {
                name: name.clone(),
                mode: mode.clone(),
                http: http.clone(),
            };
            return serve(&dir, listen.clone(), Some(room));
        }
        Cmd::Export {
            file: Some(path), ..
        } => return export_to_file(&dir, &request_of(&cli.cmd)?, path),
        cmd => request_of(cmd)?,
    };
    let mut out = Output {
        w: Box::new(BufWriter::new(io::stdout().lock())),
        failed: None,
    };
    let answer = call(&dir, req, &mut out);
    out.finish()?;
    print_answer(&cli.cmd, &answer?, json_out)
}

/// The request of a command (its ids checked here: a usage error before
/// anything is opened).
fn request_of(cmd: &Cmd) -> Res<Request> {
    let req = match cmd {
        Cmd::Init { .. }
        | Cmd::Serve { .. }
        | Cmd::Room {
            cmd: RoomSub::Serve { .. },
        } => unreachable!("not requests"),
        Cmd::Room {
            cmd: RoomSub::List | RoomSub::Attendants { .. },
        } => Request::Rooms,
        Cmd::Room {
            cmd: RoomSub::Join { address },
        } => Request::RoomJoin {
            target: shoal::uri::parse_address(address).unwrap_or_else(|| address.clone()),
        },
        Cmd::Room {
            cmd: RoomSub::Invite { room },
        } => Request::RoomInvite {
            room: room.as_deref().map(parse_feed).transpose()?,
        },
        Cmd::Room {
            cmd:
                RoomSub::Alias {
                    alias,
                    room,
                    revoke,
                },
        } => Request::RoomAlias {
            alias: alias.clone(),
            room: room.as_deref().map(parse_feed).transpose()?,
            revoke: *revoke,
        },
        Cmd::Whoami => Request::Whoami,
        Cmd::Address => Request::Address,
        Cmd::Publish { content } => Request::Publish {
            content: content.clone(),
        },
        Cmd::Post { text, attach } => Request::Post {
            text: text.clone(),
            attach: attach.iter().map(|p| absolute(p)).collect(),
        },
        Cmd::Blob {
            cmd: BlobSub::Add { file },
        } => Request::BlobAdd {
            path: absolute(file),
        },
        Cmd::Blob {
            cmd: BlobSub::Get { id, out, wait },
        } => Request::BlobGet {
            id: parse_blob(id)?,
            out: out.as_deref().map(absolute),
            wait_secs: *wait,
        },
        Cmd::Blob {
            cmd: BlobSub::Has { id },
        } => Request::BlobHas {
            id: parse_blob(id)?,
        },
        Cmd::Blob { cmd: BlobSub::Ls } => Request::BlobList,
        Cmd::Social(cmd) => social_request(cmd)?,
        Cmd::Group { cmd } => group_request(cmd)?,
        Cmd::Log {
            author,
            since,
            limit,
        } => Request::Log {
            author: author.as_deref().map(parse_feed).transpose()?,
            since: *since,
            limit: limit.map(|l| l as u64),
        },
        Cmd::Get { id } => Request::Get {
            id: parse_msg_id(id)?,
        },
        Cmd::Import { file } => Request::Import {
            // A running node opens it: name it whatever its working
            // directory.
            path: if file == Path::new("-") {
                file.clone()
            } else {
                fs::canonicalize(file).unwrap_or_else(|_| file.clone())
            },
        },
        Cmd::Export { author, .. } => Request::Log {
            author: author.as_deref().map(parse_feed).transpose()?,
            since: 0,
            limit: None,
        },
        Cmd::Connect { address } => Request::Connect {
            // An `ssb:address` URI names the same address.
            address: shoal::uri::parse_address(address).unwrap_or_else(|| address.clone()),
        },
        Cmd::Uri { id } => Request::Uri { text: id.clone() },
        Cmd::Why { id } => Request::Why {
            id: parse_feed(id)?,
        },
        Cmd::Peers => Request::Peers,
        Cmd::Status => Request::Status,
        Cmd::Storage => Request::Storage,
        Cmd::Prune { dry_run } => Request::Prune { dry_run: *dry_run },
        Cmd::Compact => Request::Compact,
        Cmd::Restore { yes, .. } => Request::RestoreDone { confirmed: *yes },
        Cmd::Device {
            cmd: DeviceSub::Link { feed },
        } => Request::DeviceLink {
            feed: parse_feed(feed)?,
        },
        Cmd::Device {
            cmd: DeviceSub::Unlink { feed },
        } => Request::DeviceUnlink {
            feed: parse_feed(feed)?,
        },
        Cmd::Device {
            cmd: DeviceSub::List { feed },
        } => Request::Devices {
            feed: feed.as_deref().map(parse_feed).transpose()?,
        },
        Cmd::Identity { .. } | Cmd::Accounts { .. } => unreachable!("not a request"),
        Cmd::Invite {
            cmd: InviteSub::Accept { code },
        } => Request::InviteAccept { code: code.clone() },
        Cmd::Invite {
            cmd:
                InviteSub::Create {
                    uses,
                    note,
                    external,
                },
        } => Request::InviteCreate {
            uses: *uses,
            note: note.clone(),
            external: external.clone(),
        },
    };
    req.check()?;
    Ok(req)
}

/// Runs a request through the node running on this home (`shoal serve`
/// or the terminal client), else on the home opened here.
fn call(dir: &Path, req: Request, out: &mut Output) -> Res<Response> {
    let answer = match shoal::local::call(dir, &req, out) {
        Ok(Some(answer)) => answer,
        Ok(None) => Local::open(dir).and_then(|host| api::execute(&host, req, out)),
        Err(e) => return Err(Fail::problem(format!("control socket: {e}"))),
    };
    match (answer, out.failed.take()) {
        // The output failing says more than the request it stopped.
        (_, Some(f)) => Err(f),
        (answer, None) => Ok(answer?),
    }
}

/// Where a command's streamed output goes: stdout or a file, lines for a
/// person to stderr.
struct Output {
    w: Box<dyn Write>,
    failed: Option<Fail>,
}

impl Output {
    fn finish(&mut self) -> Res {
        match self.failed.take() {
            Some(f) => Err(f),
            None => flush(&mut self.w),
        }
    }
}

impl Sink for Output {
    fn out(&mut self, line: &[u8]) -> Result<(), ApiError> {
        if self.failed.is_none()
            && let Err(f) = out_line(&mut self.w, line)
        {
            self.failed = Some(f);
        }
        match self.failed {
            Some(_) => Err(ApiError::OutputClosed),
            None => Ok(()),
        }
    }
    fn note(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

/// Prints the answer of a command.
/// `shoal room list` (a room a line: its id, how many attend) and `shoal
/// room attendants [ROOM]` (an attendant a line: room, id, name, whether
/// we follow and are connected).
fn print_rooms(
    cmd: &RoomSub,
    rooms: &[shoal::api::RoomView],
    v: &serde_json::Value,
    json_out: bool,
) -> Res {
    if json_out {
        return print_json(v);
    }
    let only = match cmd {
        RoomSub::Attendants { room: Some(r) } => Some(parse_feed(r)?),
        _ => None,
    };
    let mut out = io::stdout();
    for r in rooms.iter().filter(|r| only.is_none_or(|o| o == r.room)) {
        if matches!(cmd, RoomSub::List) {
            let line = format!("{} {} attending", r.room, r.attendants.len());
            out_line(&mut out, line.as_bytes())?;
            continue;
        }
        for a in &r.attendants {
            let line = format!(
                "{} {} {}{}{}",
                r.room,
                a.id,
                a.name.as_deref().unwrap_or("-"),
                if a.following { " following" } else { "" },
                if a.connected { " connected" } else { "" },
            );
            out_line(&mut out, line.as_bytes())?;
        }
    }
    Ok(())
}

/// What a blob command prints: `add` the id, `get` the file holding it
/// (or nothing with `--out`), `has` its size; a blob not held is a
/// problem (exit 1) for `get` and `has`.
fn print_blob(cmd: &BlobSub, state: &BlobState, v: &serde_json::Value, json_out: bool) -> Res {
    if json_out {
        print_json(v)?;
        let missing = state.size.is_none() && !matches!(cmd, BlobSub::Add { .. });
        return if missing {
            Err(Fail::problem(String::new()))
        } else {
            Ok(())
        };
    }
    let mut out = io::stdout();
    match (cmd, state.size) {
        (BlobSub::Add { .. }, _) => out_line(&mut out, state.id.to_string().as_bytes()),
        (BlobSub::Get { out: Some(_), .. }, Some(_)) => Ok(()),
        (BlobSub::Get { .. }, Some(_)) => {
            let path = state.path.as_deref().unwrap_or(Path::new(""));
            out_line(&mut out, path.display().to_string().as_bytes())
        }
        (BlobSub::Has { .. }, Some(size)) => out_line(&mut out, size.to_string().as_bytes()),
        (_, None) => Err(Fail::problem(format!(
            "blob {} is not here{}",
            state.id,
            if state.wanted {
                " (asked the peers for it)"
            } else {
                ""
            }
        ))),
        (BlobSub::Ls, _) => Ok(()),
    }
}

fn print_answer(cmd: &Cmd, answer: &Response, json_out: bool) -> Res {
    let v = answer.body();
    match (cmd, answer) {
        (_, Response::Remembered { address }) => {
            eprintln!(
                "no node is running on this home: remembered {address}; `shoal serve` will dial it"
            );
            Ok(())
        }
        (Cmd::Social(cmd), _) => print_social(cmd, &v, json_out),
        (Cmd::Group { cmd }, _) => print_group(cmd, &v, json_out),
        (Cmd::Whoami, _) => print_value(&v, "id", json_out),
        (Cmd::Address, _) => print_value(&v, "address", json_out),
        (Cmd::Publish { .. } | Cmd::Post { .. }, _) => print_value(&v, "key", json_out),
        (Cmd::Room { cmd }, Response::Rooms { rooms }) => print_rooms(cmd, rooms, &v, json_out),
        (Cmd::Room { .. }, Response::RoomInvite { .. }) => print_value(&v, "invite", json_out),
        (
            Cmd::Room { .. },
            Response::RoomAlias {
                link: None, alias, ..
            },
        ) => {
            if json_out {
                return print_json(&v);
            }
            out_line(&mut io::stdout(), format!("revoked {alias}").as_bytes())
        }
        (Cmd::Room { .. }, Response::RoomAlias { .. }) => print_value(&v, "link", json_out),
        (Cmd::Connect { .. } | Cmd::Room { .. }, _) => print_value(&v, "connected", json_out),
        (Cmd::Uri { .. }, _) => print_value(&v, "uri", json_out),
        (Cmd::Blob { cmd }, Response::Blob(state)) => print_blob(cmd, state, &v, json_out),
        (Cmd::Blob { .. }, Response::Blobs { blobs }) => {
            if json_out {
                return print_json(&v);
            }
            let mut out = io::stdout();
            for b in blobs {
                let line = format!("{} {}", b.id, b.size.unwrap_or(0));
                out_line(&mut out, line.as_bytes())?;
            }
            Ok(())
        }
        (_, Response::Why(w)) if !json_out => print_why(w),
        (_, Response::Storage(st)) if !json_out => print_storage(st),
        (_, Response::Pruned(p)) if !json_out => print_pruned(p),
        (
            _,
            Response::Compacted {
                before,
                after,
                millis,
            },
        ) if !json_out => out_line(
            &mut io::stdout(),
            format!(
                "compacted the store: {} -> {} in {:.1} s",
                shoal::text::bytes(*before),
                shoal::text::bytes(*after),
                *millis as f64 / 1000.0
            )
            .as_bytes(),
        ),
        (Cmd::Storage | Cmd::Prune { .. } | Cmd::Compact, _) => print_json(&v),
        (Cmd::Why { .. }, _) => print_json(&v),
        (Cmd::Peers, _) => print_peers(&v, json_out),
        (
            _,
            Response::InviteAccepted {
                pub_id, dialling, ..
            },
        ) => {
            if !dialling {
                eprintln!(
                    "no node is running on this home: `shoal serve` will connect to the pub {pub_id}"
                );
            }
            print_value(&v, "pub", json_out)
        }
        (_, Response::Invite { .. }) => print_value(&v, "code", json_out),
        (Cmd::Status, _) => print_status(&v, json_out),
        (Cmd::Device { .. }, Response::Devices { devices, one_sided }) => {
            if json_out {
                return print_json(&v);
            }
            let mut out = io::stdout();
            for d in devices {
                let line = format!("{} {}", d.id, d.name.as_deref().unwrap_or("-"));
                out_line(&mut out, shoal::text::clean(&line).as_bytes())?;
            }
            for (by, of) in one_sided {
                let line = format!(
                    "claimed by one side: {} says {} is its device",
                    by.id, of.id
                );
                out_line(&mut out, line.as_bytes())?;
            }
            Ok(())
        }
        (Cmd::Device { .. }, _) => print_value(&v, "key", json_out),
        (Cmd::Restore { .. }, Response::Restored { was: None }) => {
            if json_out {
                return print_json(&v);
            }
            out_line(&mut io::stdout(), b"publishing was not held")
        }
        (Cmd::Restore { .. }, Response::Restored { was: Some(was) }) => {
            if json_out {
                return print_json(&v);
            }
            let line = format!("publishing is no longer held (it was: {was})");
            out_line(&mut io::stdout(), line.as_bytes())
        }
        (_, Response::Message { line }) => out_line(&mut io::stdout(), line.as_bytes()),
        (
            _,
            Response::Imported {
                imported,
                rejected,
                duplicates,
            },
        ) => {
            if json_out {
                print_json(&v)?;
            } else {
                let mut line = format!("imported {imported}, rejected {rejected}");
                if *duplicates > 0 {
                    line.push_str(&format!(", already present {duplicates}"));
                }
                out_line(&mut io::stdout(), line.as_bytes())?;
            }
            if *rejected > 0 {
                // The rejections and the summary already say what happened.
                Err(Fail::problem(String::new()))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
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

/// `shoal accounts`: a home a line, `DIR ID running|stopped` (`-` for a
/// home that cannot be opened).
fn print_accounts(homes: &[PathBuf], json_out: bool) -> Res {
    let rows: Vec<serde_json::Value> = homes
        .iter()
        .map(|h| {
            let id = Home::open(h).ok().map(|home| home.keys().id().to_string());
            let running = shoal::local::socket_path(h).exists()
                && std::os::unix::net::UnixStream::connect(shoal::local::socket_path(h)).is_ok();
            serde_json::json!({"home": h, "id": id, "running": running})
        })
        .collect();
    if json_out {
        return print_json(&serde_json::Value::Array(rows));
    }
    let mut out = io::stdout();
    for r in rows {
        let line = format!(
            "{} {} {}",
            r["home"].as_str().unwrap_or_default(),
            r["id"].as_str().unwrap_or("-"),
            if r["running"] == true {
                "running"
            } else {
                "stopped"
            }
        );
        out_line(&mut out, line.as_bytes())?;
    }
    Ok(())
}

/// Who a feed is, in a line: its name, else its short id.
fn who(p: &shoal::social::Person) -> String {
    match &p.name {
        Some(n) => format!("{} ({})", shoal::text::clean(n), shoal::text::short(&p.id)),
        None => shoal::text::short(&p.id),
    }
}

/// A distance in follows, in words.
fn hops_word(h: Option<u8>) -> String {
    match h {
        Some(0) => "you".into(),
        Some(1) => "1 hop".into(),
        Some(h) => format!("{h} hops"),
        None => "further".into(),
    }
}

/// `shoal storage`, for a person.
fn print_storage(st: &api::Storage) -> Res {
    use shoal::text::bytes;
    let mut out = io::stdout().lock();
    let mut lines = vec![
        format!(
            "store {}: messages {}, indexes {}, free pages {}, not yet allocated {} ({} messages)",
            bytes(st.file_bytes),
            bytes(st.message_bytes),
            bytes(st.index_bytes),
            bytes(st.free_bytes),
            bytes(st.unallocated_bytes),
            st.messages
        ),
        format!("blobs {}", bytes(st.blob_bytes)),
    ];
    for (name, b) in &st.beside {
        lines.push(format!("{name} index {}", bytes(*b)));
    }
    lines.push("by distance:".into());
    for h in &st.by_hops {
        lines.push(format!(
            "  {:>8}: {} feeds, {} messages, {}",
            hops_word(h.hops),
            h.feeds,
            h.messages,
            bytes(h.bytes)
        ));
    }
    lines.push("largest feeds:".into());
    for f in &st.largest {
        let from = f
            .from
            .map(|s| format!(", held from {s}"))
            .unwrap_or_default();
        lines.push(format!(
            "  {:>10}  {} messages  {}  {}{from}",
            bytes(f.bytes),
            f.messages,
            hops_word(f.hops),
            who(&f.feed)
        ));
    }
    lines.push(match &st.retention {
        Some(r) => format!("retention: {r}"),
        None => "retention: none set, nothing is pruned ([retention] in config.toml)".into(),
    });
    for l in lines {
        out_line(&mut out, l.as_bytes())?;
    }
    Ok(())
}

/// `shoal prune`, for a person.
fn print_pruned(p: &api::PruneReport) -> Res {
    use shoal::text::bytes;
    let mut out = io::stdout().lock();
    let head = if p.dry_run {
        format!(
            "would prune {} messages ({}) of {} feeds",
            p.messages,
            bytes(p.bytes),
            p.feeds.len()
        )
    } else {
        format!(
            "pruned {} messages ({}) of {} feeds; `shoal compact` gives the space back",
            p.messages,
            bytes(p.bytes),
            p.feeds.len()
        )
    };
    out_line(&mut out, head.as_bytes())?;
    if let Some(r) = &p.retention {
        out_line(&mut out, format!("retention: {r}").as_bytes())?;
    }
    for f in p.feeds.iter().take(20) {
        let line = format!(
            "  {:>10}  {} messages, keeps from {}  {}  {}",
            bytes(f.bytes),
            f.messages,
            f.keep_from,
            hops_word(f.hops),
            who(&f.feed)
        );
        out_line(&mut out, line.as_bytes())?;
    }
    if p.feeds.len() > 20 {
        out_line(
            &mut out,
            format!("  and {} more feeds", p.feeds.len() - 20).as_bytes(),
        )?;
    }
    Ok(())
}

/// `shoal why`, for a person.
fn print_why(w: &api::Why) -> Res {
    use shoal::text::{clean, date, short};
    let mut out = io::stdout().lock();
    let line = if w.blocked {
        format!("{}: not replicated: you block it", w.id)
    } else if w.path.len() == 1 {
        format!("{}: replicated: it is you", w.id)
    } else if w.wanted {
        let hops = w.path.len() - 1;
        let path: Vec<String> = w.path.iter().map(|f| short(f)).collect();
        format!(
            "{}: replicated, {hops} hop{} away: {}",
            w.id,
            if hops == 1 { "" } else { "s" },
            path.join(" follows ")
        )
    } else {
        format!(
            "{}: not replicated: no follow path within {} hops (`shoal follow` it)",
            w.id, w.hops
        )
    };
    out_line(&mut out, line.as_bytes())?;
    let held = match (w.held, w.last_moved_ms) {
        (0, _) => "held: nothing yet".to_string(),
        (n, Some(t)) => format!("held: up to sequence {n}, last received {}", date(t)),
        (n, None) => format!("held: up to sequence {n}"),
    };
    let held = match w.held_from {
        Some(from) if w.pruned => format!(
            "{held}; from sequence {from} only (older messages pruned by the [retention] rules)"
        ),
        Some(from) => format!(
            "{held}; from sequence {from} only (fetched newest first: its older history is on its way)"
        ),
        None => held,
    };
    out_line(&mut out, held.as_bytes())?;
    if !w.running {
        out_line(
            &mut out,
            b"peers: no node runs on this home (`shoal serve`): nothing known of peers",
        )?;
    } else if w.peers.is_empty() {
        out_line(&mut out, b"peers: no connected peer has told us of it")?;
    }
    for p in &w.peers {
        let state = match p.seq.cmp(&w.held) {
            std::cmp::Ordering::Greater => format!("{} ahead of us", p.seq - w.held),
            std::cmp::Ordering::Equal => "as far as we".to_string(),
            std::cmp::Ordering::Less => "behind us".to_string(),
        };
        let line = format!(
            "peer {} has up to {} ({state}) since {}",
            short(&p.peer),
            p.seq,
            date(p.since_ms)
        );
        out_line(&mut out, line.as_bytes())?;
    }
    if let Some(e) = &w.last_error {
        let line = format!(
            "last error: {} sent one we refused at {}: {}",
            short(&e.peer),
            date(e.at_ms),
            clean(&e.reason)
        );
        out_line(&mut out, line.as_bytes())?;
    }
    Ok(())
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
    if let Some(why) = v.get("publishing_held").and_then(|w| w.as_str()) {
        out_line(
            &mut io::stdout(),
            format!("publishing held: {why}").as_bytes(),
        )?;
    }
    if let Some(fork) = v.get("own_fork") {
        let line = format!(
            "our feed forked at {}:\n  ours:   {}\n  theirs: {}",
            fork["sequence"], fork["ours"], fork["theirs"]
        );
        out_line(&mut io::stdout(), line.as_bytes())?;
    }
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
    for p in v
        .get("partial")
        .and_then(|p| p.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let n = |k: &str| p.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let line = format!(
            "partial: {} held from {} to {} (fetched newest first; its older history is on its way)",
            p["feed"].as_str().unwrap_or("?"),
            n("from"),
            n("to"),
        );
        out_line(&mut io::stdout(), line.as_bytes())?;
    }
    for b in v
        .get("behind")
        .and_then(|b| b.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let n = |k: &str| b.pointer(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let line = format!(
            "behind: {} held to {}; peer {} has {} since {} (`shoal why` says more)",
            b["feed"].as_str().unwrap_or("?"),
            n("/held"),
            shoal::text::short(
                b.pointer("/claim/peer")
                    .and_then(|x| x.as_str())
                    .unwrap_or("?")
            ),
            n("/claim/seq"),
            shoal::text::date(n("/claim/since_ms")),
        );
        out_line(&mut io::stdout(), line.as_bytes())?;
    }
    Ok(())
}

/// The request of a social command.
fn social_request(cmd: &SocialCmd) -> Res<Request> {
    Ok(match cmd {
        SocialCmd::Reply { id, text } => Request::Reply {
            id: parse_msg_id(id)?,
            text: text.clone(),
        },
        SocialCmd::Like { id, undo } => Request::Like {
            id: parse_msg_id(id)?,
            undo: *undo,
        },
        SocialCmd::Name { name } => Request::Name { name: name.clone() },
        SocialCmd::Follow { id } => Request::Follow {
            id: parse_feed(id)?,
        },
        SocialCmd::Unfollow { id } => Request::Unfollow {
            id: parse_feed(id)?,
        },
        SocialCmd::Block { id } => Request::Block {
            id: parse_feed(id)?,
        },
        SocialCmd::Dm { to, text } => Request::Dm {
            to: to.iter().map(|t| parse_feed(t)).collect::<Res<_>>()?,
            text: text.clone(),
        },
        SocialCmd::Feed { limit } => Request::Feed {
            before: None,
            limit: *limit,
        },
        SocialCmd::Inbox { limit } => Request::Inbox {
            before: None,
            limit: *limit,
        },
        SocialCmd::Thread { id } => Request::Thread {
            id: parse_msg_id(id)?,
        },
        SocialCmd::Mute { target, word } => Request::Mute {
            target: target.clone(),
            word: *word,
        },
        SocialCmd::Unmute { target, word } => Request::Unmute {
            target: target.clone(),
            word: *word,
        },
        SocialCmd::Mutes => Request::Mutes,
        SocialCmd::Edit { id, text } => Request::Edit {
            id: parse_msg_id(id)?,
            text: text.clone(),
        },
        SocialCmd::History { id } => Request::History {
            id: parse_msg_id(id)?,
        },
        SocialCmd::Search {
            query,
            from,
            kind,
            since,
            limit,
        } => Request::Search(shoal::api::SearchQuery {
            text: query.clone(),
            from: from.as_deref().map(parse_feed).transpose()?,
            kind: kind
                .as_deref()
                .map(|k| {
                    shoal::api::SearchKind::parse(k).ok_or_else(|| {
                        Fail::usage(format!("--in {k}: expected public, private or group"))
                    })
                })
                .transpose()?,
            since: since
                .as_deref()
                .map(|d| {
                    shoal::text::parse_day(d).ok_or_else(|| {
                        Fail::usage(format!("--since {d}: expected a date YYYY-MM-DD"))
                    })
                })
                .transpose()?,
            limit: Some(*limit),
        }),
        SocialCmd::Contacts { id } => Request::Contacts {
            id: id.as_deref().map(parse_feed).transpose()?,
        },
        SocialCmd::Profile { id } => Request::Profile {
            id: id.as_deref().map(parse_feed).transpose()?,
        },
    })
}

/// The request of a group command.
fn group_request(cmd: &GroupSub) -> Res<Request> {
    let feeds =
        |ids: &[String]| -> Res<Vec<FeedId>> { ids.iter().map(|i| parse_feed(i)).collect() };
    Ok(match cmd {
        GroupSub::Create { name } => Request::GroupCreate { name: name.clone() },
        GroupSub::Add {
            group,
            members,
            admin,
        } => Request::GroupAdd {
            group: parse_msg_id(group)?,
            members: feeds(members)?,
            admin: *admin,
        },
        GroupSub::Remove { group, members } => Request::GroupRemove {
            group: parse_msg_id(group)?,
            members: feeds(members)?,
        },
        GroupSub::Demote { group, members } => Request::GroupDemote {
            group: parse_msg_id(group)?,
            members: feeds(members)?,
        },
        GroupSub::Promote { group, members } => Request::GroupPromote {
            group: parse_msg_id(group)?,
            members: feeds(members)?,
        },
        GroupSub::Post { group, text } => Request::GroupPost {
            group: parse_msg_id(group)?,
            text: text.clone(),
        },
        GroupSub::List => Request::GroupList,
        GroupSub::Members { group } => Request::GroupMembers {
            group: parse_msg_id(group)?,
        },
        GroupSub::Read { group, limit } => Request::GroupRead {
            group: parse_msg_id(group)?,
            before: None,
            limit: *limit,
        },
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
            let groups = print_list(&mut out, v, "groups", json_out, shoal::text::group)?;
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

/// Prints the array `v[key]`, one line each: its JSON with `--json`, else
/// what `text` makes of it. The entries printed.
fn print_list<'v>(
    out: &mut impl Write,
    v: &'v serde_json::Value,
    key: &str,
    json_out: bool,
    text: impl Fn(&serde_json::Value) -> String,
) -> Res<&'v [serde_json::Value]> {
    let list = v.get(key).and_then(|i| i.as_array());
    let list = list.map(Vec::as_slice).unwrap_or_default();
    for entry in list {
        if json_out {
            out_line(out, entry.to_string().as_bytes())?;
        } else {
            out_line(out, text(entry).as_bytes())?;
        }
    }
    Ok(list)
}

/// Prints the `items` of an answer, one a line (JSON or text); says `none`
/// on stderr when there are none.
fn print_items(out: &mut impl Write, v: &serde_json::Value, json_out: bool, none: &str) -> Res {
    let items = print_list(out, v, "items", json_out, |i| shoal::text::item(i, 0))?;
    if items.is_empty() && !json_out {
        eprintln!("{none}");
    }
    let partial: std::collections::BTreeSet<&str> = items
        .iter()
        .filter(|i| i.get("partial").and_then(|p| p.as_bool()) == Some(true))
        .filter_map(|i| i.get("author").and_then(|a| a.as_str()))
        .collect();
    if !partial.is_empty() && !json_out {
        let line = format!(
            "(older posts of {} feed{} here still arriving: fetched newest first)",
            partial.len(),
            if partial.len() == 1 { "" } else { "s" }
        );
        out_line(out, line.as_bytes())?;
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
        SocialCmd::Search { .. } => {
            let hits = print_list(&mut out, v, "hits", json_out, shoal::text::search_hit)?;
            if !json_out {
                if v.get("literal").and_then(|l| l.as_bool()) == Some(true) {
                    eprintln!(
                        "(the query is not valid query syntax: its words were looked for as they are)"
                    );
                }
                if hits.is_empty() {
                    eprintln!("nothing found");
                }
            }
        }
        SocialCmd::Thread { .. } if !json_out => {
            for line in shoal::text::thread(v) {
                out_line(&mut out, line.as_bytes())?;
            }
        }
        SocialCmd::Thread { .. } => {
            // One JSON line each: where it forked from, the entries, then
            // what is not shown.
            let count = |k: &str| v.get(k).and_then(|h| h.as_u64()).unwrap_or(0);
            if let Some(from) = v.get("forked_from").and_then(|f| f.as_str()) {
                let line = serde_json::json!({"entry": "forked", "from": from});
                out_line(&mut out, line.to_string().as_bytes())?;
            }
            let entries = v
                .get("entries")
                .and_then(|i| i.as_array())
                .unwrap_or(&empty);
            for e in entries {
                out_line(&mut out, e.to_string().as_bytes())?;
            }
            for kind in ["more", "hidden", "muted"] {
                if count(kind) > 0 {
                    let line = serde_json::json!({"entry": kind, "count": count(kind)});
                    out_line(&mut out, line.to_string().as_bytes())?;
                }
            }
        }
        SocialCmd::Mute { .. } | SocialCmd::Unmute { .. } if !json_out => {
            let mute = v.get("mute").cloned().unwrap_or_default();
            let on = v.get("on").and_then(|o| o.as_bool()) == Some(true);
            let changed = v.get("changed").and_then(|o| o.as_bool()) == Some(true);
            let what = shoal::text::mute(&mute);
            let line = match (on, changed) {
                (true, true) => {
                    format!("muted {what} (local: never published; `shoal unmute` shows it again)")
                }
                (true, false) => format!("{what} was muted already"),
                (false, true) => format!("unmuted {what}"),
                (false, false) => format!("{what} was not muted"),
            };
            out_line(&mut out, line.as_bytes())?;
        }
        SocialCmd::Mutes => {
            let mutes = print_list(&mut out, v, "mutes", json_out, shoal::text::mute)?;
            if mutes.is_empty() && !json_out {
                eprintln!("nothing is muted");
            }
        }
        SocialCmd::History { .. } if !json_out => {
            for line in shoal::text::history(v) {
                out_line(&mut out, line.as_bytes())?;
            }
        }
        SocialCmd::Contacts { .. } | SocialCmd::Profile { .. } | SocialCmd::History { .. } => {
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
fn serve(dir: &Path, listen: Option<String>, room: Option<shoal::local::RoomOptions>) -> Res {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let running = shoal::local::Running::start_with(dir, listen, true, room)
            .await
            .map_err(|e| match e {
                shoal::local::StartError::Node(shoal::node::NodeError::Store(s)) => {
                    Fail::from(ApiError::from(s))
                }
                other => Fail::problem(other.to_string()),
            })?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        running.stop().await;
        Ok(())
    });
    // Every task gone, the node lets go of its store; wait for that, so
    // the store is closed cleanly (a store left open is repaired on its
    // next open, which takes long on a big store).
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    if !shoal::local::wait_closed(dir, std::time::Duration::from_secs(5)) {
        tracing::warn!("the store was still in use at exit");
    }
    result
}

/// `shoal export FILE`: written next to the target and renamed, so a
/// reader never sees half a file (0600 when it is in the home `dir`).
fn export_to_file(dir: &Path, req: &Request, path: &Path) -> Res {
    let tmp = path.with_extension("partial");
    let result = (|| -> Res {
        let f = shoal::home::create_output_file(dir, &tmp)
            .map_err(|e| Fail::problem(format!("cannot write {}: {e}", tmp.display())))?;
        let mut out = Output {
            w: Box::new(BufWriter::new(f.try_clone()?)),
            failed: None,
        };
        let answer = call(dir, req.clone(), &mut out);
        out.finish()?;
        answer?;
        drop(out);
        f.sync_all()?;
        fs::rename(&tmp, path)
            .map_err(|e| Fail::problem(format!("cannot write {}: {e}", path.display())))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
