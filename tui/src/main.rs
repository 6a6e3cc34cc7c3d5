//! `shoal-tui [--home DIR] [--demo]`: the terminal client.
//!
//! Finds the home (same rules as `shoal`: `--home`, `SHOAL_HOME`, else the
//! platform data directory), attaches to the node running there or runs one
//! itself, and hands over to the runtime. With `--demo`, a throwaway home
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
    /// Home directory (identity, config, store).
    #[arg(long, env = "SHOAL_HOME")]
    home: Option<PathBuf>,
    /// A throwaway home and demo peers on loopback, to see shoal work.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, thiserror::Error)]
enum Fail {
    #[error("no home directory: pass --home DIR or set SHOAL_HOME")]
    NoHome,
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
        // With every task gone the node lets go of its store: wait for
        // that, so the store is closed cleanly before the process ends.
        if let Some(home) = owned
            && !Embedded::wait_closed(&home, Duration::from_secs(3))
        {
            eprintln!("warning: the store was still in use at exit");
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

/// Runs the client; answers the home whose node this process ran.
async fn run(args: Args) -> Result<Option<PathBuf>, Fail> {
    let demo = if args.demo {
        eprintln!("starting the demo peers…");
        Some(demo::start().await?)
    } else {
        None
    };
    let home = match (&demo, args.home) {
        (Some(d), _) => d.home().to_owned(),
        (None, Some(h)) => h,
        (None, None) => dirs::data_dir()
            .map(|d| d.join("shoal"))
            .ok_or(Fail::NoHome)?,
    };
    let (backend, embedded): (Arc<dyn Backend>, Option<Arc<Embedded>>) =
        match tokio::task::block_in_place(|| Attached::probe(&home))? {
            Some(a) => (Arc::new(a), None),
            None => {
                let e = Arc::new(Embedded::start(&home).await?);
                (e.clone(), Some(e))
            }
        };
    let result = runtime::run(backend).await;
    term::restore();
    // A demo home goes with the demo: nothing to close cleanly.
    let owned = (embedded.is_some() && demo.is_none()).then(|| home.clone());
    if let Some(e) = embedded {
        e.stop().await;
    }
    if let Some(d) = demo {
        d.stop().await;
    }
    result?;
    Ok(owned)
}
