//! The embedded node: this process owns the home, as `shoal serve` would.
//!
//! Starts it with `shoal::local::Running` (listener when the configured
//! address is free, control socket so `shoal` commands on the same home
//! keep working, known peers) and answers every request in-process with
//! `shoal::api::execute` on the node: no JSON between the screens and the
//! store. Imports `shoal::api` and `shoal::local`; never the UI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal::api::{self, Event, Request, Response};
use shoal::local::Running;
use tokio::sync::broadcast;

use super::{Backend, Result};

/// A node run by this process.
pub struct Embedded {
    running: Running,
    me: String,
    home: PathBuf,
}

impl Embedded {
    /// Opens the node on `home` and starts it. Must run inside the tokio
    /// runtime.
    pub async fn start(home: &Path) -> Result<Embedded> {
        let running = Running::start(home, None, false).await?;
        Ok(Embedded {
            me: running.node().id().to_string(),
            running,
            home: home.to_owned(),
        })
    }

    /// The node.
    pub fn node(&self) -> &shoal::node::Node {
        self.running.node()
    }

    /// Why the node does not listen, when the configured address was taken.
    pub fn listen_error(&self) -> Option<&str> {
        self.running.listen_error()
    }

    /// Says goodbye to peers, stops listening and removes the control
    /// socket.
    pub async fn stop(&self) {
        self.running.stop().await;
    }

    /// Waits (up to `within`) until the node's store is closed (see
    /// `shoal::local::wait_closed`).
    pub fn wait_closed(home: &Path, within: Duration) -> bool {
        shoal::local::wait_closed(home, within)
    }
}

impl Backend for Embedded {
    fn me(&self) -> &str {
        &self.me
    }

    fn call(&self, req: Request) -> Result<Response> {
        Ok(api::execute(self.running.node(), req, &mut api::Discard)?)
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.running.events()
    }

    fn warning(&self) -> Option<String> {
        self.running.listen_error().map(str::to_string)
    }

    fn describe(&self) -> String {
        match self.running.node().address() {
            Some(a) => format!(
                "running the node for {}, reachable at {a}",
                self.home.display()
            ),
            None => format!("running the node for {}", self.home.display()),
        }
    }
}
