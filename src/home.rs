//! A shoal home directory: identity, configuration and store.
//!
//! Owns the layout `secret` (ssb-keys, 0600), `config.toml`,
//! `store.redb`, the search index's directory `search/` and the saved
//! searches `searches.json`, and turns the config file into typed
//! settings. Imports `crypto`, `feed`, `store`, `search` and the limits
//! type of `ingest`; never `replicate`.
//!
//! The store holds opened private messages and group keys, so the home is
//! its owner's alone: the directory is made 0700 and every file shoal
//! writes in it 0600 (the store file by [`Store`] itself, the control
//! socket by [`crate::local`]); opening a home tightens a directory or
//! config file that others could read.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::{self, Keypair, SecretError};
use crate::feed::{self, ValidationError};
use crate::store::{Store, StoreError};

/// The main Scuttlebutt network key (secret-handshake cap).
pub const MAIN_NETWORK_KEY: &str = "1KHLiKZvAvjbY1ziZEHMXawbCEIM6qwjCDm3VYRan/s=";

/// The default of `idle_timeout`: a connection silent for two minutes is
/// closed (a healthy one is pinged every 40 s).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 120;

/// The default of `[room] tunnel_idle_secs`: ten minutes.
pub const DEFAULT_ROOM_TUNNEL_IDLE_SECS: u64 = 600;

/// The default of `max_connections_per_ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 4;

/// Settings read from `config.toml`; every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address `shoal serve` listens on.
    pub listen: String,
    /// Whether to find peers on the LAN: broadcast our address and dial the
    /// peers heard (as `ssb-local` does), when `listen` is not on loopback
    /// only.
    pub lan: bool,
    /// Network key (secret-handshake cap), base64 of 32 bytes.
    pub network_key: String,
    /// HMAC sign-cap for messages, base64 of 32 bytes; none on the main network.
    pub sign_cap: Option<String>,
    /// How far along follows to replicate: 1 = those we follow, 2 = and whom they follow.
    pub hops: u8,
    /// How many of a followed feed's newest messages are fetched first when
    /// nothing of it is held (its older history then fills in behind); 0
    /// fetches every feed from its first message.
    pub newest_first: u64,
    /// Peers `shoal serve` keeps connected to (multiserver addresses), besides
    /// those remembered with `shoal connect`.
    pub peers: Vec<String>,
    /// Most connections at once, incoming and outgoing together; incoming
    /// ones may take all but a quarter, kept for the peers we dial.
    /// Incoming sockets still in the secret handshake are limited apart, to
    /// as many again, so that strangers who never finish it cannot keep
    /// peers out.
    pub max_connections: usize,
    /// Most incoming sockets open at once from one remote address (an
    /// IPv6 /64); past it, more are closed unread (0: no limit).
    pub max_connections_per_ip: usize,
    /// Seconds a connection may stay silent before it is closed (0: for
    /// ever); peers are pinged a few times within it.
    pub idle_timeout: u64,
    /// Whether pubs announced by feeds we follow may be dialled at
    /// loopback, link-local and private addresses (peers of `peers` and
    /// `shoal connect` always may).
    pub dial_private: bool,
    /// Messages per second taken from one peer; a faster peer is slowed
    /// (0: no limit).
    pub peer_rate: u32,
    /// Bytes taken from all peers in one UTC day; past it, peers are
    /// dropped as they send more (0: no limit).
    pub max_bytes_per_day: u64,
    /// Bytes of one feed stored; past it, the feed's messages are refused
    /// (0: no limit).
    pub max_feed_bytes: u64,
    /// Bytes of one feed taken from peers in one UTC day; past it, the
    /// feed's messages from peers are refused that day (0: no limit).
    pub max_feed_bytes_per_day: u64,
    /// The largest blob taken, from peers or added.
    pub max_blob_bytes: u64,
    /// Blobs mentioned by feeds this many follows away (0: ours only) are
    /// fetched as their messages arrive; others when shown or asked for.
    pub blob_hops: u8,
    /// Bytes of blobs held: past it, the least recently used that are not
    /// ours are removed as new ones arrive.
    pub blob_budget: u64,
    /// The room this node runs (the `[room]` section; none: it runs no
    /// room).
    pub room: Option<RoomConfig>,
    /// What of the feeds far from us is kept (the `[retention]` section;
    /// none, or none of its limits: everything is kept).
    pub retention: Option<RetentionConfig>,
    /// The full-text search index (the `[search]` section; not written
    /// while it holds the defaults, so that settings appended to a new
    /// config stay top-level).
    #[serde(skip_serializing_if = "SearchConfig::is_default")]
    pub search: SearchConfig,
}

/// The `[retention]` section of `config.toml`: which messages `shoal
/// prune` and the running node prune (see `store::prune`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Feeds within this many follows are never pruned (0: our own feed
    /// only; ours is never pruned).
    pub keep_hops: i64,
    /// Messages of the other feeds older than this many days are pruned.
    pub max_age_days: Option<f64>,
    /// A feed beyond `keep_hops` keeps at most this many MiB, newest first.
    pub max_feed_mb: Option<f64>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_hops: 1,
            max_age_days: None,
            max_feed_mb: None,
        }
    }
}

impl RetentionConfig {
    /// The rules, or why they are refused (one line for a person).
    pub fn rules(&self) -> Result<crate::store::Retention, String> {
        if self.keep_hops < 0 {
            return Err(format!(
                "retention keep_hops = {} would prune our own feed; 0 keeps only ours",
                self.keep_hops
            ));
        }
        let keep_hops = u8::try_from(self.keep_hops).unwrap_or(u8::MAX);
        let positive = |name: &str, v: Option<f64>| match v {
            Some(v) if !v.is_finite() || v < 0.0 => {
                Err(format!("retention {name} must be a number of 0 or more"))
            }
            _ => Ok(v),
        };
        let days = positive("max_age_days", self.max_age_days)?;
        let mb = positive("max_feed_mb", self.max_feed_mb)?;
        Ok(crate::store::Retention {
            keep_hops,
            max_age_ms: days.map(|d| (d * 86_400_000.0) as u64),
            max_feed_bytes: mb.map(|m| (m * 1024.0 * 1024.0) as u64),
        })
    }
}

/// The `[search]` section of `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Whether a running node keeps the search index (`search/` in the
    /// home) in step with its store. Off, `shoal search` still works: it
    /// catches the index up first.
    pub enabled: bool,
}

impl SearchConfig {
    fn is_default(&self) -> bool {
        *self == SearchConfig::default()
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig { enabled: true }
    }
}

/// The `[room]` section of `config.toml`: the room this node runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomConfig {
    /// The room's name, as attendants see it.
    pub name: String,
    /// Who may attend: `open`, `community` or `restricted`.
    pub mode: String,
    /// Where the room takes invite claims and answers aliases over HTTP,
    /// `HOST:PORT` (none: it does not).
    pub http: Option<String>,
    /// Feeds that may make invites from afar (`room.createInvite`) in a
    /// restricted room, besides the room's own operator.
    pub admins: Vec<String>,
    /// Seconds a tunnel may carry nothing either way before the room
    /// closes it.
    pub tunnel_idle_secs: u64,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            name: "shoal room".into(),
            mode: "open".into(),
            http: None,
            admins: Vec::new(),
            tunnel_idle_secs: DEFAULT_ROOM_TUNNEL_IDLE_SECS,
        }
    }
}

impl Config {
    /// The limits on what peers may make the node take.
    pub fn limits(&self) -> crate::ingest::limits::Limits {
        crate::ingest::limits::Limits {
            peer_rate: self.peer_rate,
            max_bytes_per_day: self.max_bytes_per_day,
            max_feed_bytes: self.max_feed_bytes,
            max_feed_bytes_per_day: self.max_feed_bytes_per_day,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8008".into(),
            lan: true,
            network_key: MAIN_NETWORK_KEY.into(),
            sign_cap: None,
            hops: 2,
            newest_first: 50,
            peers: Vec::new(),
            max_connections: 64,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_timeout: DEFAULT_IDLE_TIMEOUT_SECS,
            dial_private: false,
            peer_rate: crate::ingest::limits::DEFAULT_PEER_RATE,
            max_bytes_per_day: 0,
            max_feed_bytes: 0,
            max_feed_bytes_per_day: crate::ingest::limits::DEFAULT_MAX_FEED_BYTES_PER_DAY,
            max_blob_bytes: crate::blobs::DEFAULT_MAX_BLOB_BYTES,
            blob_hops: 1,
            blob_budget: 500 * 1024 * 1024,
            room: None,
            retention: None,
            search: SearchConfig::default(),
        }
    }
}

/// The saved searches of the home in `dir` (`searches.json`), oldest
/// first; none when the file is missing or unreadable.
pub fn saved_searches(dir: &Path) -> Vec<String> {
    fs::read(dir.join(SAVED_SEARCHES))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Replaces the saved searches of the home in `dir` (at most
/// [`MAX_SAVED_SEARCHES`], each at most
/// [`crate::search::MAX_QUERY_BYTES`], blank ones and repeats dropped);
/// answers what was kept.
pub fn save_searches(dir: &Path, searches: &[String]) -> Result<Vec<String>, HomeError> {
    let mut kept: Vec<String> = Vec::new();
    for s in searches {
        let s = s.trim();
        if !s.is_empty()
            && s.len() <= crate::search::MAX_QUERY_BYTES
            && !kept.iter().any(|k| k == s)
            && kept.len() < MAX_SAVED_SEARCHES
        {
            kept.push(s.to_owned());
        }
    }
    let text = serde_json::to_vec_pretty(&kept).expect("strings serialise");
    let path = dir.join(SAVED_SEARCHES);
    let tmp = dir.join(format!("{SAVED_SEARCHES}.tmp"));
    let io = |e: std::io::Error| HomeError::Io {
        path: path.clone(),
        source: e,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(&text).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    Ok(kept)
}

/// The file of the saved searches in a home.
const SAVED_SEARCHES: &str = "searches.json";

/// The most saved searches kept.
pub const MAX_SAVED_SEARCHES: usize = 20;

/// Whose identity a new home holds.
#[derive(Clone, Copy, Debug)]
pub enum Identity<'a> {
    /// A new one.
    New,
    /// The one in this secret file (ssb-keys format).
    SecretFile(&'a Path),
    /// The one this recovery phrase spells.
    Phrase(&'a str),
}

/// Why a home cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// No identity yet.
    #[error("no shoal identity in {0}; run `shoal init` first")]
    NotInitialised(PathBuf),
    /// `init` on a home that has one.
    #[error("{0} already holds a shoal identity; refusing to overwrite it")]
    AlreadyInitialised(PathBuf),
    /// Filesystem trouble.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("invalid config {path}: {why}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The secret file.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The recovery phrase.
    #[error(transparent)]
    Phrase(#[from] crypto::PhraseError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An opened home: identity and settings (the store is opened on demand,
/// since only one process may hold it).
pub struct Home {
    dir: PathBuf,
    keys: Keypair,
    config: Config,
    sign_cap: Option<[u8; 32]>,
}

impl Home {
    /// The secret file of a home.
    pub fn secret_path(dir: &Path) -> PathBuf {
        dir.join("secret")
    }

    /// Creates a home with a new identity, or an existing one (from a
    /// secret file or a recovery phrase), a default config and an empty
    /// store. A home made with an existing identity starts *restoring*: it
    /// publishes nothing until its feed has come back from a peer that
    /// holds it (or the person says none does), so that it cannot fork
    /// the feed (see [`crate::store::OwnHold`]).
    pub fn init(dir: &Path, identity: Identity<'_>) -> Result<Home, HomeError> {
        let io = |source| HomeError::Io {
            path: dir.to_owned(),
            source,
        };
        let secret = Self::secret_path(dir);
        if secret.exists() {
            return Err(HomeError::AlreadyInitialised(dir.to_owned()));
        }
        let (keys, restoring) = match identity {
            Identity::New => (Keypair::generate(), false),
            Identity::SecretFile(p) => (crypto::read_secret_file(p)?, true),
            Identity::Phrase(words) => (crypto::keys_from_phrase(words)?, true),
        };
        make_private_dir(dir).map_err(io)?;
        let config_path = dir.join("config.toml");
        if !config_path.exists() {
            let text = format!(
                "# shoal configuration; every setting is optional.\n{}",
                toml::to_string(&Config::default()).expect("config serialises")
            );
            let config_io = |source| HomeError::Io {
                path: config_path.clone(),
                source,
            };
            create_private_file(&config_path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(config_io)?;
        }
        // The store first: until the secret is written the home is not
        // made, so a crash between the two cannot leave a restored
        // identity free to publish.
        {
            let store = Store::open(&dir.join("store.redb"))?;
            store.stamp_home(crate::store::now_ms() as u64)?;
            if restoring {
                store.set_restoring()?;
            }
        }
        crypto::write_secret_file(&secret, &keys).map_err(|e| match e {
            SecretError::Exists(_) => HomeError::AlreadyInitialised(dir.to_owned()),
            other => other.into(),
        })?;
        Home::open(dir)
    }

    /// Opens an initialised home.
    pub fn open(dir: &Path) -> Result<Home, HomeError> {
        let secret = Self::secret_path(dir);
        if !secret.exists() {
            return Err(HomeError::NotInitialised(dir.to_owned()));
        }
        let keys = crypto::read_secret_file(&secret)?;
        let config_path = dir.join("config.toml");
        for path in [dir, config_path.as_path()] {
            tighten(path).map_err(|source| HomeError::Io {
                path: path.to_owned(),
                source,
            })?;
        }
        let config = match fs::read_to_string(&config_path) {
            Ok(text) => toml::from_str::<Config>(&text).map_err(|e| HomeError::Config {
                path: config_path.clone(),
                why: e.message().to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => {
                return Err(HomeError::Io {
                    path: config_path,
                    source,
                });
            }
        };
        if let Some(r) = &config.retention {
            r.rules().map_err(|why| HomeError::Config {
                path: config_path.clone(),
                why,
            })?;
        }
        let sign_cap =
            match &config.sign_cap {
                None => None,
                Some(s) => Some(feed::parse_hmac_key(s).map_err(|e: ValidationError| {
                    HomeError::Config {
                        path: config_path.clone(),
                        why: format!("sign_cap: {e}"),
                    }
                })?),
            };
        Ok(Home {
            dir: dir.to_owned(),
            keys,
            config,
            sign_cap,
        })
    }

    /// Opens the store (fails with `StoreError::Locked` while another
    /// process holds it).
    pub fn store(&self) -> Result<Store, StoreError> {
        Store::open_as(&self.dir.join("store.redb"), &self.keys)
    }

    /// Our identity.
    pub fn keys(&self) -> &Keypair {
        &self.keys
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The retention rules of the config (checked when the home opened;
    /// none: nothing is pruned).
    pub fn retention(&self) -> crate::store::Retention {
        self.config
            .retention
            .as_ref()
            .and_then(|r| r.rules().ok())
            .unwrap_or_default()
    }

    /// The network key of the secret handshake (`network_key`).
    pub fn network_key(&self) -> Result<[u8; 32], HomeError> {
        crypto::b64_decode(&self.config.network_key)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| HomeError::Config {
                path: self.dir.join("config.toml"),
                why: "network_key must be base64 of 32 bytes".into(),
            })
    }

    /// Opens the blob store (`blobs/` in the home).
    pub fn blobs(&self) -> Result<crate::blobs::Blobs, crate::blobs::BlobError> {
        crate::blobs::Blobs::open(&self.dir.join("blobs"), self.config.max_blob_bytes)
    }

    /// Opens the search index (`search/` in the home) of `store`,
    /// rebuilding it when it is lost or of another store; not caught up.
    pub fn search(
        &self,
        store: &Store,
    ) -> Result<crate::search::SearchIndex, crate::search::SearchError> {
        crate::search::SearchIndex::open(&self.dir.join("search"), store)
    }

    /// The HMAC sign-cap for messages, if the network uses one.
    pub fn sign_cap(&self) -> Option<&[u8; 32]> {
        self.sign_cap.as_ref()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Creates `dir` (and any missing parent, as the system makes them) with
/// mode 0700; an existing `dir` is set to 0700.
fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        }
        Err(e) => Err(e),
    }
}

/// Takes group and others' access away from a file or directory of the
/// home (0600 / 0700), if it exists and they have any.
fn tighten(path: &Path) -> std::io::Result<()> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let private = if meta.is_dir() { 0o700 } else { 0o600 };
    fs::set_permissions(path, fs::Permissions::from_mode(private))
}

/// Creates (or truncates) a file for writing with mode 0600; an existing
/// file is set to 0600.
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Creates (or truncates) a file to write output into, such as an export:
/// mode 0600 when it lies in the home directory `home`, like everything
/// there; elsewhere as the user's umask makes it.
pub fn create_output_file(home: &Path, path: &Path) -> std::io::Result<fs::File> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let inside = match (fs::canonicalize(parent), fs::canonicalize(home)) {
        (Ok(p), Ok(h)) => p.starts_with(h),
        _ => false,
    };
    if inside {
        create_private_file(path)
    } else {
        fs::File::create(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_home_is_its_owners_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/home");
        Home::init(&dir, Identity::New).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for f in ["secret", "config.toml", "store.redb"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        // A home others were let into is closed again when opened.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.join("config.toml");
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        let home = Home::open(&dir).unwrap();
        drop(home.store().unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&config), 0o600);
        // Output written into the home is 0600 too (elsewhere the umask
        // decides).
        let inside = dir.join("export.jsonl");
        create_output_file(&dir, &inside).unwrap();
        assert_eq!(mode(&inside), 0o600);
        let outside = tmp.path().join("export.jsonl");
        create_output_file(&dir, &outside).unwrap();
        assert!(outside.is_file());
    }
}

/// The accounts list: the homes `shoal-tui` holds at once and `shoal
/// accounts` lists, in `SHOAL_ACCOUNTS`, else `accounts.toml` in the
/// platform config directory (`~/.config/shoal/`): `homes = ["DIR", …]`.
pub fn accounts_file() -> Option<PathBuf> {
    match std::env::var_os("SHOAL_ACCOUNTS") {
        Some(p) => Some(PathBuf::from(p)),
        None => dirs::config_dir().map(|d| d.join("shoal").join("accounts.toml")),
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Accounts {
    #[serde(default)]
    homes: Vec<PathBuf>,
}

/// The homes in the accounts list (none when there is no list).
pub fn accounts() -> Result<Vec<PathBuf>, HomeError> {
    let Some(path) = accounts_file() else {
        return Ok(Vec::new());
    };
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str::<Accounts>(&text)
            .map(|a| a.homes)
            .map_err(|e| HomeError::Config {
                path,
                why: e.message().to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(HomeError::Io { path, source }),
    }
}

/// Adds (`add`) or removes a home in the accounts list: the list after.
/// Only an initialised home is added, by its absolute path.
pub fn change_accounts(dir: &Path, add: bool) -> Result<Vec<PathBuf>, HomeError> {
    let path = accounts_file().ok_or_else(|| HomeError::Config {
        path: PathBuf::from("accounts.toml"),
        why: "no config directory: set SHOAL_ACCOUNTS".into(),
    })?;
    let io = |source| HomeError::Io {
        path: path.clone(),
        source,
    };
    let dir = if add {
        Home::open(dir)?;
        fs::canonicalize(dir).map_err(|source| HomeError::Io {
            path: dir.to_owned(),
            source,
        })?
    } else {
        fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
    };
    let mut homes = accounts()?;
    homes.retain(|h| *h != dir);
    if add {
        homes.push(dir);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let text = toml::to_string(&Accounts {
        homes: homes.clone(),
    })
    .expect("a list of paths serialises");
    fs::write(&path, text).map_err(io)?;
    Ok(homes)
}
