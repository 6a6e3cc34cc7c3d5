//! The shell around the pure core: reads input on its own thread, watches
//! the node, runs effects on blocking threads through the [`Backend`], and
//! draws: immediately after input, at most ten times a second otherwise.
//!
//! Nothing slow runs on the UI loop: every backend call is a
//! `spawn_blocking` task whose result comes back as an event, and pictures
//! are decoded one at a time on a thread of their own (each given up after
//! [`picture::TIME`]). Only `$EDITOR` holds the loop, since it holds the
//! terminal. How the terminal draws pictures is found once, at the start
//! (see [`picture::picker`]). Imports `app`, `event`, `backend`, `term`, `picture`,
//! `opener` and `ui`; the only module with the loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ratatui::crossterm::event::{self as cevent, Event as CEvent};
use ratatui_image::picker::Picker;
use tokio::sync::{broadcast, mpsc};

use crate::app::{App, update};
use crate::backend::Backend;
use crate::event::{Effect, Event, Loaded, Note, Openable};
use crate::{opener, picture, term, ui};
use shoal::api::Event as NodeEvent;

/// The shortest time between two frames drawn without input.
const FRAME: Duration = Duration::from_millis(100);

/// How often the node's status is asked for, at most, while it changes.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// How long after the last change the status is still asked for: the
/// status bar's rate window, and a second.
const SETTLE: Duration = Duration::from_secs(11);

/// How often node events become at most one "views are stale" note.
const STALE_EVERY: Duration = Duration::from_millis(300);

/// Why the client stopped other than by the user's wish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The terminal could not be set up or drawn on.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// A thread panicked (the terminal was restored first).
    #[error("the client stopped after an internal error (see the message above)")]
    Panicked,
}

/// Now, ms since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The input thread: crossterm events into a channel; pausable while
/// `$EDITOR` owns the terminal.
struct Input {
    paused: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Input {
    fn spawn(tx: mpsc::Sender<CEvent>) -> Input {
        let paused = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (paused, idle, stop) = (paused.clone(), idle.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if paused.load(Ordering::SeqCst) {
                        idle.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    idle.store(false, Ordering::SeqCst);
                    match cevent::poll(Duration::from_millis(50)) {
                        Ok(true) => match cevent::read() {
                            Ok(ev) => {
                                if tx.blocking_send(ev).is_err() {
                                    return;
                                }
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(50)),
                        },
                        Ok(false) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        };
        Input {
            paused,
            idle,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops reading (so another program gets the keys); returns once the
    /// thread is not inside a read.
    fn pause(&self) {
        self.idle.store(false, Ordering::SeqCst);
        self.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.idle.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

impl Drop for Input {
    /// Tells the thread to stop, without waiting for it: on a terminal that
    /// went away (hung up), crossterm's read can loop without returning,
    /// and the client must still end.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}

/// Turns node events into notes: log lines as they come, at most one
/// "stale" note per [`STALE_EVERY`] however many messages arrive, at most
/// one "peers" note per [`STALE_EVERY`] however many peers come and go,
/// and the node's status asked for (at most every [`STATUS_EVERY`]) while
/// things change and for [`SETTLE`] after, so that rates fall back to
/// zero. A quiet node is not asked anything.
async fn watch_node(
    mut rx: broadcast::Receiver<NodeEvent>,
    backend: Arc<dyn Backend>,
    tx: mpsc::Sender<Event>,
) {
    let mut stale = false;
    let mut peers = false;
    let mut changed = Some(Instant::now());
    let mut every = tokio::time::interval(STALE_EVERY);
    let mut status_every = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(NodeEvent::Appended { .. } | NodeEvent::Lagged)
                | Err(broadcast::error::RecvError::Lagged(_)) => {
                    stale = true;
                    changed = Some(Instant::now());
                }
                Ok(NodeEvent::Connected { .. } | NodeEvent::Disconnected { .. }) => {
                    peers = true;
                    changed = Some(Instant::now());
                }
                Ok(NodeEvent::Blob { id }) => {
                    if tx.send(Event::Node(Note::Blob(id.to_string()))).await.is_err() {
                        return;
                    }
                }
                Ok(NodeEvent::Log { line }) => {
                    if tx.send(Event::Node(Note::Log(line))).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    // The node is gone: one last status says so.
                    let _ = send_status(&backend, &tx).await;
                    return;
                }
            },
            _ = every.tick() => {
                if std::mem::take(&mut stale)
                    && tx.send(Event::Node(Note::Stale)).await.is_err()
                {
                    return;
                }
                if std::mem::take(&mut peers)
                    && tx.send(Event::Node(Note::Peers)).await.is_err()
                {
                    return;
                }
            }
            _ = status_every.tick() => {
                if changed.is_some_and(|t| t.elapsed() <= SETTLE) {
                    if send_status(&backend, &tx).await.is_err() {
                        return;
                    }
                } else {
                    changed = None;
                }
            }
        }
    }
}

/// Asks for the node's status and passes it on; `Err` when the UI is gone.
async fn send_status(backend: &Arc<dyn Backend>, tx: &mpsc::Sender<Event>) -> Result<(), ()> {
    let b = backend.clone();
    let status = match tokio::task::spawn_blocking(move || b.status()).await {
        Ok(r) => r.map(Box::new).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    tx.send(Event::Node(Note::Status(status)))
        .await
        .map_err(|_| ())
}

/// Starts the backend call an effect asks for; its result comes back on
/// `tx`.
fn spawn_effect(effect: Effect, backend: &Arc<dyn Backend>, tx: &mpsc::Sender<Event>) {
    let b = backend.clone();
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let s = |e: crate::backend::BackendError| e.to_string();
        let event = match effect {
            Effect::LoadTimeline(page) => Event::Loaded(Loaded::Timeline {
                page,
                result: b.timeline(page.before, page.limit).map_err(s),
            }),
            Effect::LoadInbox(page) => Event::Loaded(Loaded::Inbox {
                page,
                result: b.inbox(page.before, page.limit).map_err(s),
            }),
            Effect::LoadThread(id) => Event::Loaded(Loaded::Thread {
                result: b.thread(&id).map_err(s),
                id,
            }),
            Effect::LoadProfile(id) => Event::Loaded(Loaded::Profile {
                result: b.profile(&id).map(Box::new).map_err(s),
                why: b.why(&id).ok().map(Box::new),
                id,
            }),
            Effect::LoadPostsBy { id, page } => Event::Loaded(Loaded::PostsBy {
                result: b.posts_by(&id, page.before, page.limit).map_err(s),
                id,
                page,
            }),
            Effect::LoadRaw(id) => Event::Loaded(Loaded::Raw {
                result: b.raw(&id).map_err(s),
                id,
            }),
            Effect::Search(query) => Event::Loaded(Loaded::Search {
                result: b.search(&query).map_err(s),
                query,
            }),
            Effect::Searches { save, forget } => Event::Loaded(Loaded::Searches {
                result: b.searches(save.clone(), forget).map_err(s),
                saved: save,
            }),
            Effect::LoadGroups => Event::Loaded(Loaded::Groups {
                result: b.groups().map_err(s),
            }),
            Effect::LoadGroupPosts { group, page } => Event::Loaded(Loaded::GroupPosts {
                result: b.group_posts(&group, page.before, page.limit).map_err(s),
                group,
                page,
            }),
            Effect::LoadRooms => Event::Loaded(Loaded::Rooms {
                result: b.rooms().map_err(s),
            }),
            Effect::Publish { what, draft } => Event::Loaded(Loaded::Published {
                result: b.publish(&what).map_err(s),
                what,
                draft,
            }),
            Effect::GetBlob(id) => Event::Loaded(Loaded::Blob {
                result: b.blob(&id).map_err(s),
                id,
            }),
            Effect::Open(item) => {
                let (what, result) = open(&*b, &item);
                Event::Loaded(Loaded::Opened { what, result })
            }
            Effect::Attach(typed) => Event::Loaded(Loaded::Attached {
                result: opener::attachable(&typed),
            }),
            Effect::ToggleMute { target, what } => Event::Loaded(Loaded::Muted {
                result: b.toggle_mute(&target).map_err(s),
                what,
            }),
            Effect::LoadHistory(id) => Event::Loaded(Loaded::Raw {
                result: b.history(&id).map_err(s),
                id,
            }),
            Effect::MarkRead(rxs) => match b.mark_read(&rxs) {
                Ok(()) => return,
                Err(e) => Event::Node(Note::Log(format!("could not mark messages read: {e}"))),
            },
            // Handled on the loop.
            Effect::Copy(_) | Effect::Editor(_) | Effect::Decode { .. } | Effect::NextAccount => {
                return;
            }
        };
        let _ = tx.blocking_send(event);
    });
}

/// Hands a blob (its file, once held) or a web page to the system opener;
/// answers what it was, for the notice, and whether that worked.
fn open(b: &dyn Backend, item: &Openable) -> (String, Result<(), String>) {
    match item {
        Openable::Web(url) => (url.clone(), opener::open(url.as_ref())),
        Openable::Blob(id) => {
            let what = format!("the blob {}", crate::text::short_id(id));
            let result = match b.blob(id) {
                Err(e) => Err(e.to_string()),
                Ok(state) => match state.path {
                    Some(path) => opener::open(path.as_os_str()),
                    None if state.wanted => {
                        Err("not held yet: asked peers for it; try again when it arrives".into())
                    }
                    None => Err("not held, and no node runs to ask peers for it".into()),
                },
            };
            (what, result)
        }
    }
}

/// The picture decoder: a thread taking one blob at a time (at most
/// [`DECODES_QUEUED`] waiting), its results sent back as events.
struct Decoder {
    jobs: std::sync::mpsc::SyncSender<(String, std::path::PathBuf)>,
}

/// The most pictures waiting to be decoded.
const DECODES_QUEUED: usize = 64;

impl Decoder {
    fn spawn(picker: Picker, tx: mpsc::Sender<Event>) -> Decoder {
        let (jobs, rx) =
            std::sync::mpsc::sync_channel::<(String, std::path::PathBuf)>(DECODES_QUEUED);
        std::thread::spawn(move || {
            while let Ok((id, path)) = rx.recv() {
                let result = picture::prepare_within(&picker, &path, picture::TIME);
                if tx
                    .blocking_send(Event::Loaded(Loaded::Picture { id, result }))
                    .is_err()
                {
                    return;
                }
            }
        });
        Decoder { jobs }
    }

    /// Queues a blob; when the queue is full, answers why not at once.
    fn decode(&self, id: String, path: std::path::PathBuf, tx: &mpsc::Sender<Event>) {
        if let Err(std::sync::mpsc::TrySendError::Full((id, _))) = self.jobs.try_send((id, path)) {
            let _ = tx.try_send(Event::Loaded(Loaded::Picture {
                id,
                result: Err("too many pictures at once; reload to try again".into()),
            }));
        }
    }
}

/// Edits `text` in `$VISUAL` / `$EDITOR` (else `vi`); answers the result.
fn run_editor(text: &str) -> Result<String, String> {
    use std::io::Write as _;
    let mut file = tempfile::Builder::new()
        .prefix("shoal-draft-")
        .suffix(".txt")
        .tempfile()
        .map_err(|e| format!("cannot make a draft file: {e}"))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write the draft file: {e}"))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("shoal-tui")
        .arg(file.path())
        .status()
        .map_err(|e| format!("cannot run {editor}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{editor} exited with {status}; the draft is unchanged"
        ));
    }
    std::fs::read_to_string(file.path()).map_err(|e| format!("cannot read the draft back: {e}"))
}

/// Runs the client on the real terminal until the user quits, a signal
/// comes, or a thread panics.
pub async fn run(backend: Arc<dyn Backend>) -> Result<(), RunError> {
    run_accounts(vec![backend]).await
}

/// [`run`] over several accounts (homes, each with its own node): `A`
/// goes to the next. Each account keeps its screen state while another
/// is shown, and reloads what it shows when it comes back.
pub async fn run_accounts(backends: Vec<Arc<dyn Backend>>) -> Result<(), RunError> {
    let mut terminal = term::enter()?;
    let picker = picture::picker();
    // One input thread for the whole run: a thread per account would, for
    // the moment it takes to see its stop flag, still read keys meant for
    // the next account, and drop them.
    let (input_tx, mut input_rx) = mpsc::channel::<CEvent>(256);
    let input = Input::spawn(input_tx);
    let mut apps: Vec<Option<App>> = backends.iter().map(|_| None).collect();
    let mut at = 0;
    let result = loop {
        let shown = at + 1;
        let of = backends.len();
        match run_on(
            &mut terminal,
            (&input, &mut input_rx),
            backends[at].clone(),
            picker.clone(),
            &mut apps[at],
            (shown, of),
        )
        .await
        {
            Ok(Outcome::Quit) => break Ok(()),
            Ok(Outcome::NextAccount) => at = (at + 1) % backends.len(),
            Err(e) => break Err(e),
        }
    };
    drop(input);
    term::restore();
    result
}

/// How one account's run ended.
enum Outcome {
    Quit,
    NextAccount,
}

async fn run_on(
    terminal: &mut term::Term,
    (input, input_rx): (&Input, &mut mpsc::Receiver<CEvent>),
    backend: Arc<dyn Backend>,
    picker: Picker,
    kept: &mut Option<App>,
    (account, accounts): (usize, usize),
) -> Result<Outcome, RunError> {
    let (tx, mut events) = mpsc::channel::<Event>(1024);
    let decoder = Decoder::spawn(picker, tx.clone());

    let size = terminal.size()?;
    let mut app = match kept.take() {
        Some(mut app) => {
            // Back to this account: the screen as it was, at this size.
            update(&mut app, Event::Resize(size.width, size.height));
            app
        }
        None => {
            let mut app = App::new(backend.me(), now_ms(), (size.width, size.height));
            app.describe = backend.describe();
            if accounts > 1 {
                app.describe = format!(
                    "account {account} of {accounts} (A: next) · {}",
                    app.describe
                );
            }
            let body = app.body();
            app.log.push(app.now, app.describe.clone(), false, body);
            if let Some(w) = backend.warning() {
                update(&mut app, Event::Node(Note::Problem(w)));
            }
            app
        }
    };
    if accounts > 1 {
        app.notice = Some((
            now_ms(),
            format!("account {account} of {accounts}: {}", app.describe),
        ));
    }

    let tasks = vec![tokio::spawn(watch_node(
        backend.events(),
        backend.clone(),
        tx.clone(),
    ))];

    let mut pending: Vec<Effect> = app.start();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut dirty = true;
    let mut now_please = true;
    let mut last_draw = Instant::now();
    let mut switch = false;

    let result = loop {
        for effect in pending.drain(..) {
            match effect {
                Effect::Copy(text) => {
                    if let Err(e) = term::copy(&text) {
                        app.notice = Some((app.now, format!("could not copy: {e}")));
                    }
                }
                Effect::Editor(text) => {
                    input.pause();
                    term::suspend();
                    let edited = run_editor(&text);
                    let back = term::resume(terminal);
                    input.resume();
                    back?;
                    // Its effects, if any, run next time round.
                    let more = update(&mut app, Event::Editor(edited));
                    for e in more {
                        spawn_effect(e, &backend, &tx);
                    }
                    now_please = true;
                    dirty = true;
                }
                Effect::Decode { id, path } => decoder.decode(id, path, &tx),
                Effect::NextAccount if accounts > 1 => {
                    switch = true;
                }
                Effect::NextAccount => {
                    app.notice = Some((
                        app.now,
                        "one account: shoal-tui --home A --home B holds several".into(),
                    ));
                }
                other => spawn_effect(other, &backend, &tx),
            }
        }
        if term::panicked() {
            break Err(RunError::Panicked);
        }
        if app.quit {
            break Ok(Outcome::Quit);
        }
        if switch {
            break Ok(Outcome::NextAccount);
        }
        if dirty && (now_please || last_draw.elapsed() >= FRAME) {
            terminal.draw(|f| ui::draw(f, &app))?;
            dirty = false;
            now_please = false;
            last_draw = Instant::now();
        }
        let wait = if dirty {
            FRAME.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            ev = input_rx.recv() => {
                let Some(ev) = ev else { break Ok(Outcome::Quit) };
                let mut batch = vec![ev];
                // Keys typed or pasted in a burst are applied together.
                while let Ok(ev) = input_rx.try_recv() {
                    batch.push(ev);
                }
                for ev in batch {
                    let event = match ev {
                        CEvent::Key(k) => Event::Key(k),
                        CEvent::Paste(s) => Event::Paste(s),
                        CEvent::Resize(w, h) => Event::Resize(w, h),
                        _ => continue,
                    };
                    pending.extend(update(&mut app, event));
                }
                dirty = true;
                now_please = true;
            }
            Some(ev) = events.recv() => {
                pending.extend(update(&mut app, ev));
                while let Ok(ev) = events.try_recv() {
                    pending.extend(update(&mut app, ev));
                }
                dirty = true;
            }
            _ = tick.tick() => {
                pending.extend(update(&mut app, Event::Tick(now_ms())));
                dirty = true;
            }
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => break Ok(Outcome::Quit),
            _ = sigterm.recv() => break Ok(Outcome::Quit),
            _ = sighup.recv() => break Ok(Outcome::Quit),
        }
    };
    for t in tasks {
        t.abort();
    }
    *kept = Some(app);
    result
}
