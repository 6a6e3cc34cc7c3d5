//! The real terminal: raw mode, the alternate screen and bracketed paste
//! on the way in; all of it undone on the way out, whether the client ends
//! normally, on a signal, or by panicking (a panic hook restores the
//! terminal before the message is printed). Also the clipboard (OSC 52)
//! and handing the terminal to `$EDITOR` and back.
//!
//! The only module that writes to the terminal outside ratatui. Imports
//! ratatui's crossterm; never the app state or the node.

use std::io::{self, Stdout, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, event, execute, terminal};

/// The terminal the client draws on.
pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Whether the terminal is in the client's mode (raw, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether some thread panicked: the UI loop then ends.
static PANICKED: AtomicBool = AtomicBool::new(false);

fn setup() -> io::Result<()> {
    terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(
        io::stdout(),
        terminal::EnterAlternateScreen,
        event::EnableBracketedPaste,
        cursor::Hide
    )
}

/// Puts the terminal in the client's mode and wraps it for ratatui.
pub fn enter() -> io::Result<Term> {
    if let Err(e) = setup() {
        restore();
        return Err(e);
    }
    let mut t = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    t.clear()?;
    Ok(t)
}

/// Gives the terminal back as it was. Safe to call more than once, from
/// any thread.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(
            io::stdout(),
            event::DisableBracketedPaste,
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
        let _ = terminal::disable_raw_mode();
    }
}

/// Hands the terminal to another program (`$EDITOR`).
pub fn suspend() {
    restore();
}

/// Takes the terminal back after [`suspend`] and redraws everything.
pub fn resume(t: &mut Term) -> io::Result<()> {
    setup()?;
    t.clear()
}

/// Restores the terminal before any panic message is printed, and tells
/// the UI loop to end.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, Ordering::SeqCst);
        restore();
        previous(info);
    }));
}

/// Whether a thread panicked since the hook was installed.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Puts text on the system clipboard through the terminal (OSC 52; most
/// terminals and tmux with `set-clipboard on` honour it).
pub fn copy(text: &str) -> io::Result<()> {
    let seq = format!(
        "\x1b]52;c;{}\x07",
        shoal::crypto::b64_encode(text.as_bytes())
    );
    let mut out = io::stdout();
    out.write_all(seq.as_bytes())?;
    out.flush()
}
