//! Why a request failed: [`ApiError`], one line for a person and the
//! exit code of a `shoal` command, and how the errors of the layers below
//! become one.

use serde::{Deserialize, Serialize};

use crate::crypto::MsgId;
use crate::social::compose;
use crate::store::StoreError;

/// Why a request failed: one line for a person, and the exit code a
/// `shoal` command ends with ([`ApiError::exit_code`], the one place that
/// maps them).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ApiError {
    /// The request itself is wrong (a bad id, a missing argument).
    #[error("{0}")]
    Usage(String),
    /// A rule of the group refuses it (not an admin, not senior).
    #[error("{0}")]
    Refused(String),
    /// The message is not in the store.
    #[error("message {0} is not in the store")]
    NotFound(MsgId),
    /// The blob is not here (and did not arrive in the time given).
    #[error("blob {0} is not here{1}")]
    BlobMissing(crate::crypto::BlobId, String),
    /// A group epoch's key has not reached us.
    #[error(
        "cannot post yet: the key of epoch {0} has not reached us (it is asked for; an admin answers)"
    )]
    KeyMissing(String),
    /// Another process holds the store.
    #[error(
        "the store is in use by another shoal process (a running `shoal serve`?); stop it or run the command through it"
    )]
    Locked,
    /// A running node's control socket refused or failed.
    #[error("control socket: {0}")]
    Control(String),
    /// Where the output went was closed (a pipe's reader left).
    #[error("the output was closed")]
    OutputClosed,
    /// Anything else that went wrong while running it.
    #[error("{0}")]
    Failed(String),
}

impl ApiError {
    /// The exit code of a `shoal` command failing this way: 2 for usage
    /// errors, 1 for a command that ran and found a problem.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApiError::Usage(_) | ApiError::Refused(_) => 2,
            _ => 1,
        }
    }

    fn failed(e: impl std::fmt::Display) -> ApiError {
        ApiError::Failed(e.to_string())
    }
}

impl From<crate::blobs::BlobError> for ApiError {
    fn from(e: crate::blobs::BlobError) -> Self {
        match e {
            crate::blobs::BlobError::Missing(id) => ApiError::BlobMissing(id, String::new()),
            other => ApiError::Failed(other.to_string()),
        }
    }
}

impl From<crate::search::SearchError> for ApiError {
    fn from(e: crate::search::SearchError) -> Self {
        use crate::search::SearchError as S;
        match e {
            S::Empty | S::TooLong(_) | S::TooManyWords(_) | S::WordTooLong(_) => {
                ApiError::Usage(e.to_string())
            }
            S::Store(e) => e.into(),
            other => ApiError::Failed(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use crate::private::groups::GroupError as G;
        use crate::store::GroupWriteError as W;
        match &e {
            StoreError::Locked => ApiError::Locked,
            StoreError::Mute(_) => ApiError::Usage(e.to_string()),
            StoreError::Group(W::Rule(
                G::NotAdmin(_) | G::NotSenior(_) | G::RemovesAuthor | G::NoNewMembers,
            )) => ApiError::Refused(e.to_string()),
            StoreError::Group(W::Rule(G::MissingKey(k))) => ApiError::KeyMissing(k.to_string()),
            _ => ApiError::Failed(e.to_string()),
        }
    }
}

impl From<crate::home::HomeError> for ApiError {
    fn from(e: crate::home::HomeError) -> Self {
        match e {
            crate::home::HomeError::Store(s) => s.into(),
            other => ApiError::failed(other),
        }
    }
}

impl From<crate::node::NodeError> for ApiError {
    fn from(e: crate::node::NodeError) -> Self {
        match e {
            crate::node::NodeError::Store(s) => s.into(),
            other => ApiError::failed(other),
        }
    }
}

impl From<compose::ComposeError> for ApiError {
    fn from(e: compose::ComposeError) -> Self {
        use compose::ComposeError::*;
        match e {
            NotFound(id) => ApiError::NotFound(id),
            NoRecipients | TooManyRecipients(_) | NotOurs(_) | NotAPost(_) | EmptyText
            | GroupPost(_) => ApiError::Usage(e.to_string()),
            _ => ApiError::failed(e),
        }
    }
}
