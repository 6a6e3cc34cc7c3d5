//! Attached to a running `shoal serve`: every request goes through its
//! control socket (`shoal::local::call`), answered by the same
//! `shoal::api::execute` the `shoal` CLI uses; the node's events come
//! through a subscription on that socket, read on a thread of their own.
//! Imports `shoal::api` and `shoal::local`; never the UI.

use std::path::{Path, PathBuf};

use shoal::api::{self, Event, Request, Response};
use tokio::sync::broadcast;

use super::{Backend, BackendError, Result};

/// A client of the node that owns the home.
pub struct Attached {
    home: PathBuf,
    me: String,
}

impl Attached {
    /// Connects when a node answers on the home's control socket; `None`
    /// when none runs there.
    pub fn probe(home: &Path) -> Result<Option<Attached>> {
        match shoal::local::call(home, &Request::Whoami, &mut api::Discard) {
            Ok(None) => Ok(None),
            Ok(Some(Ok(Response::Id { id }))) => Ok(Some(Attached {
                home: home.to_owned(),
                me: id.to_string(),
            })),
            Ok(Some(Ok(other))) => Err(BackendError::Shape(format!("whoami answered {other:?}"))),
            Ok(Some(Err(e))) => Err(e.into()),
            Err(e) => Err(BackendError::Control(e)),
        }
    }
}

impl Backend for Attached {
    fn me(&self) -> &str {
        &self.me
    }

    fn call(&self, req: Request) -> Result<Response> {
        match shoal::local::call(&self.home, &req, &mut api::Discard) {
            Ok(Some(answer)) => Ok(answer?),
            Ok(None) => Err(BackendError::Gone),
            Err(e) => Err(BackendError::Control(e)),
        }
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        let (tx, rx) = broadcast::channel(4096);
        // Subscribed before this returns (one round trip), so no event
        // after it is missed; read on a thread of its own, which ends
        // when the node stops or every receiver is gone.
        let events = match shoal::local::subscribe(&self.home) {
            Ok(Some(events)) => events,
            Ok(None) | Err(_) => {
                let _ = tx.send(Event::Log {
                    line: "cannot watch the running node: its events will not show".into(),
                });
                return rx;
            }
        };
        let _ = std::thread::Builder::new()
            .name("shoal-events".into())
            .spawn(move || {
                for e in events {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Event::Log {
                    line: "the running node stopped".into(),
                });
            });
        rx
    }

    fn describe(&self) -> String {
        format!(
            "attached to the shoal node running for {}",
            self.home.display()
        )
    }
}
