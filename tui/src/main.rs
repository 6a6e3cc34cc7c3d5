//! `shoal-tui [--home DIR]… [--demo]`: the terminal client.
//!
//! Finds the homes (`--home`, repeated for several accounts; else
//! `SHOAL_HOME`; else the accounts list, `shoal accounts`; else the
//! platform data directory), attaches to the node running in each or runs
//! one itself, and hands over to the runtime (`A` switches accounts). With `--demo`, a throwaway home
//! with demo peers instead. Errors are one line on stderr, after the
//! terminal is restored; exit 1 (2 for bad arguments).
//!
//! A thin shell: uses the library's `backend`, `demo`, `runtime` and
//! `term`; never the app state or the screens directly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use shoal_tui::backend::{Attached, Backend, BackendError, Embedded};
use shoal_tui::demo::{self, DemoError};
use shoal_tui::runtime::{self, RunError};
use shoal_tui::term;

#[derive(Parser)]
#[command(
    name = "shoal-tui",
    version,
    about = "The shoal terminal client: timeline, threads, private messages, contacts"
)]
struct Args {
    /// Home directory (identity, config, store); repeated, several
    /// accounts, each with its own node (`A` switches).
    #[arg(long)]
    home: Vec<PathBuf>,
    /// A throwaway home and demo peers on loopback, to see shoal work.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, thiserror::Error)]
enum Fail {
    #[error("no home directory: pass --home DIR or set SHOAL_HOME")]
    NoHome,
    #[error(transparent)]
    Accounts(#[from] shoal::home::HomeError),
    #[error(transparent)]
    Demo(#[from] DemoError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

fn main() -> ExitCode {
    let args = Args::parse();
    term::install_panic_hook();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {}", Fail::Runtime(e));
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(args));
    // Backend calls still running are not waited for long.
    rt.shutdown_timeout(Duration::from_secs(2));
    term::restore();
    let result = result.map(|owned| {
        // With every task gone a node lets go of its store: wait for
        // that, so each store is closed cleanly before the process ends.
        for home in owned {
            if !Embedded::wait_closed(&home, Duration::from_secs(3)) {
                eprintln!(
                    "warning: the store of {} was still in use at exit",
                    home.display()
                );
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the client; answers the homes whose nodes this process ran.
async fn run(args: Args) -> Result<Vec<PathBuf>, Fail> {
    let demo = if args.demo {
        eprintln!("starting the demo peers…");
        Some(demo::start().await?)
    } else {
        None
    };
    let homes = match (&demo, args.home) {
        (Some(d), _) => vec![d.home().to_owned()],
        (None, given) if !given.is_empty() => given,
        (None, _) => match std::env::var_os("SHOAL_HOME") {
            Some(h) => vec![PathBuf::from(h)],
            None => {
                let listed = shoal::home::accounts()?;
                if listed.is_empty() {
                    vec![
                        dirs::data_dir()
                            .map(|d| d.join("shoal"))
                            .ok_or(Fail::NoHome)?,
                    ]
                } else {
                    listed
                }
            }
        },
    };
    let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
    let mut embedded: Vec<(PathBuf, Arc<Embedded>)> = Vec::new();
    for home in &homes {
        match tokio::task::block_in_place(|| Attached::probe(home))? {
            Some(a) => backends.push(Arc::new(a)),
            None => {
                let e = Arc::new(Embedded::start(home).await?);
                backends.push(e.clone());
                embedded.push((home.clone(), e));
            }
        }
    }
    let result = runtime::run_accounts(backends).await;
    term::restore();
    let mut owned = Vec::new();
    for (home, e) in embedded {
        e.stop().await;
        // A demo home goes with the demo: nothing to close cleanly.
        if demo.is_none() {
            owned.push(home);
        }
    }
    if let Some(d) = demo {
        d.stop().await;
    }
    result?;
    Ok(owned)
}
