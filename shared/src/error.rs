//! `Error`: how a feature fails, whoever asked. Each edge translates it once — an HTTP
//! response (`handlers::http::error`), a WebSocket `error` event (`WsError::from`), a queue's
//! retry or dead letter (`workers::JobError::from`). The adapters decide, each in one place,
//! whether their failure is a dependency being unavailable or an internal error
//! (`From<sqlx::Error>` in `adapters::postgres`, `From<RedisDown>` in `adapters::redis`, …).

use std::{fmt, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

/// A dependency a request could not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// Postgres.
    Storage,
    /// Redis.
    Realtime,
    /// Who is connected where.
    Connections,
    /// The job queues.
    Queue,
    /// Object storage for files.
    Files,
    /// The language model.
    Model,
    /// Calendly.
    Calendly,
    /// A tool the assistant called (one of an MCP server's, or one that timed out).
    Tool,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Storage => "storage",
            Self::Realtime => "the realtime service",
            Self::Connections => "the connection registry",
            Self::Queue => "the job queue",
            Self::Files => "file storage",
            Self::Model => "the assistant",
            Self::Calendly => "Calendly",
            Self::Tool => "the tool",
        })
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is wrong; `field` names the part, when one does.
    #[error("{message}")]
    Invalid { field: Option<&'static str>, message: String },
    /// `code` is the protocol's name for what is missing (`room_not_found`, `not_found`, …).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// `code` says why (`not_member`, `owner_only`, `onboarding_incomplete`, `forbidden`, …).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The request clashes with what is already there (`email_taken`, `invite_used_up`, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    RateLimited { retry_after: Duration, message: String },
    /// Muted in the room until then (`retry_after` from now).
    #[error("muted until {until}")]
    Muted { until: DateTime<Utc>, retry_after: Duration },
    #[error("{message}")]
    InsufficientFunds { message: String },
    #[error("{0} is temporarily unavailable")]
    Unavailable(Dependency),
    /// A bug or a broken invariant; the cause is logged by the edge, never shown.
    #[error("internal error: {0:#}")]
    Internal(Arc<anyhow::Error>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid { field: None, message: message.into() }
    }

    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field: Some(field), message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn not_member() -> Self {
        Self::forbidden("not_member", "you are not a member of this room")
    }

    pub fn onboarding_incomplete() -> Self {
        Self::forbidden("onboarding_incomplete", "finish onboarding (profile, goals, workspace) before chatting")
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(Arc::new(cause.into()))
    }

    /// Whether trying again later may succeed (a queue retries these; the rest are final).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Internal(_) | Self::RateLimited { .. })
    }

    /// Logs what the person asking is not told: the cause of an internal error.
    pub fn log(&self) {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Unavailable(dependency) => tracing::warn!(%dependency, "unavailable"),
            _ => {}
        }
    }
}

impl From<crate::domain::Invalid> for Error {
    fn from(e: crate::domain::Invalid) -> Self {
        Self::invalid_field(e.field, e.to_string())
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(Arc::new(e))
    }
}

impl From<crate::ports::QueueError> for Error {
    fn from(e: crate::ports::QueueError) -> Self {
        tracing::warn!(error = %e, "queue unavailable");
        Self::Unavailable(Dependency::Queue)
    }
}

impl From<crate::ports::RegistryError> for Error {
    fn from(e: crate::ports::RegistryError) -> Self {
        tracing::warn!(error = %e, "connection registry unavailable");
        Self::Unavailable(Dependency::Connections)
    }
}

impl From<crate::ports::StoreError> for Error {
    fn from(e: crate::ports::StoreError) -> Self {
        match e {
            crate::ports::StoreError::Missing => Self::not_found("file_not_found", "no such file"),
            crate::ports::StoreError::TooLarge => Self::invalid("file rejected: files are at most 5 MB"),
            other => {
                tracing::warn!(error = %other, "object storage failed");
                Self::Unavailable(Dependency::Files)
            }
        }
    }
}
