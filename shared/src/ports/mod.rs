//! Ports: the small capabilities the handlers need from the outside world, as `Send + Sync`
//! traits. Each has an in-process adapter (`adapters::local`) and, for the AWS shape, a cloud one.

use std::collections::HashSet;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::ConnectionId;

/// A frame ready to go on the wire: UTF-8 JSON, serialised once and shared by every recipient.
#[derive(Debug, Clone)]
pub struct Frame(Bytes);

impl Frame {
    pub fn json<T: serde::Serialize>(value: &T) -> Self {
        Self(Bytes::from(
            serde_json::to_vec(value).expect("frames serialise"),
        ))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("frames are UTF-8 JSON")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connection no longer exists (API Gateway answers 410); the caller forgets it.
    #[error("connection gone")]
    Gone,
    #[error("push failed: {0}")]
    Other(String),
}

/// Sends a frame to one WebSocket connection, wherever it is held.
#[async_trait]
pub trait Push: Send + Sync {
    async fn send(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PushError>;
}

/// Who holds a connection and which rooms it listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub id: ConnectionId,
    pub user_id: Uuid,
    pub display_name: String,
    pub rooms: HashSet<Uuid>,
    pub connected_at: DateTime<Utc>,
}

/// A connection subscribed to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConnection {
    pub id: ConnectionId,
    pub user_id: Uuid,
    pub display_name: String,
}

#[derive(Debug, thiserror::Error)]
#[error("connection registry unavailable: {0}")]
pub struct RegistryError(pub String);

/// The connection registry: connection ↔ user ↔ rooms.
#[async_trait]
pub trait Connections: Send + Sync {
    async fn register(&self, info: ConnectionInfo) -> Result<(), RegistryError>;
    /// Forgets a connection; returns what it was, if it was known.
    async fn remove(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError>;
    async fn get(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>, RegistryError>;
    /// Subscribes a connection to a room; false when the connection is unknown.
    async fn join(&self, id: &ConnectionId, room_id: Uuid) -> Result<bool, RegistryError>;
    async fn leave(&self, id: &ConnectionId, room_id: Uuid) -> Result<(), RegistryError>;
    async fn in_room(&self, room_id: Uuid) -> Result<Vec<RoomConnection>, RegistryError>;
    async fn of_user(&self, user_id: Uuid) -> Result<Vec<ConnectionInfo>, RegistryError>;
    /// Every connection opened before `cutoff`, for the scheduler's sweep of stale ones.
    async fn older_than(&self, cutoff: DateTime<Utc>) -> Result<Vec<ConnectionId>, RegistryError>;
}

/// The time, behind a port so tests can move it instead of sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
