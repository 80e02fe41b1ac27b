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
        Self(Bytes::from(serde_json::to_vec(value).expect("frames serialise")))
    }

    /// A frame received as bytes (the management API's POST body).
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
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

/// Where to deliver a frame: a connection, and the management endpoint of the gateway holding
/// it when there are several (local gateways in the emulated mode); None means "the" endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub id: &'a ConnectionId,
    pub endpoint: Option<&'a str>,
}

impl<'a> From<&'a ConnectionInfo> for Recipient<'a> {
    fn from(c: &'a ConnectionInfo) -> Self {
        Self { id: &c.id, endpoint: c.endpoint.as_deref() }
    }
}

impl<'a> From<&'a RoomConnection> for Recipient<'a> {
    fn from(c: &'a RoomConnection) -> Self {
        Self { id: &c.id, endpoint: c.endpoint.as_deref() }
    }
}

/// Sends a frame to one WebSocket connection, wherever it is held.
#[async_trait]
pub trait Push: Send + Sync {
    async fn send(&self, to: Recipient<'_>, frame: &Frame) -> Result<(), PushError>;
    /// Sends one frame to many connections (a room's fan-out); one answer per recipient, in
    /// order. By default each is sent on its own, all at once.
    async fn send_many(&self, to: &[Recipient<'_>], frame: &Frame) -> Vec<Result<(), PushError>> {
        futures::future::join_all(to.iter().map(|r| self.send(*r, frame))).await
    }
    /// Closes the connection (API Gateway's DeleteConnection).
    async fn close(&self, to: Recipient<'_>) -> Result<(), PushError>;
}

/// The queues jobs travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueName {
    Ai,
    Moderation,
    Reminders,
}

impl QueueName {
    pub const ALL: [QueueName; 3] = [QueueName::Ai, QueueName::Moderation, QueueName::Reminders];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ai => "ai",
            Self::Moderation => "moderation",
            Self::Reminders => "reminders",
        }
    }

    /// The environment variable that may give this queue's URL.
    pub fn url_var(self) -> &'static str {
        match self {
            Self::Ai => "MATHIA_AI_QUEUE_URL",
            Self::Moderation => "MATHIA_MODERATION_QUEUE_URL",
            Self::Reminders => "MATHIA_REMINDERS_QUEUE_URL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// SQS's longest delivery delay.
pub const MAX_QUEUE_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

/// Sends jobs to a queue, optionally delayed (at most `MAX_QUEUE_DELAY`).
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, queue: QueueName, body: &str, delay: std::time::Duration) -> Result<(), QueueError>;
}

/// Who holds a connection and which rooms it listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub id: ConnectionId,
    pub user_id: Uuid,
    pub display_name: String,
    pub rooms: HashSet<Uuid>,
    pub connected_at: DateTime<Utc>,
    /// The management endpoint of the gateway that holds the socket, when there are several.
    pub endpoint: Option<String>,
    /// The session the socket was opened with (`sessions.token_hash` in hex, never the token):
    /// logging out closes that session's sockets. None for connections registered without one.
    pub session: Option<String>,
}

/// A connection subscribed to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConnection {
    pub id: ConnectionId,
    pub user_id: Uuid,
    pub display_name: String,
    pub endpoint: Option<String>,
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
    /// Gives every open connection of a user a new display name: what their `typing` and
    /// `presence_update` events carry from then on. A connection removed meanwhile stays removed.
    /// Answers the rooms those connections are in.
    async fn rename(&self, user_id: Uuid, display_name: &str) -> Result<HashSet<Uuid>, RegistryError>;
    /// Every connection opened before `cutoff`, for the scheduler's sweep of stale ones.
    async fn older_than(&self, cutoff: DateTime<Utc>) -> Result<Vec<ConnectionId>, RegistryError>;
    /// Remembers for `ttl` that a session has logged out; called before its connections are
    /// listed to be closed. A registry that every logout reaching its connections passes through
    /// (one in the process that serves them) keeps it, and answers [`session_ended`](Self::session_ended).
    async fn mark_session_ended(&self, _session: &str, _ttl: std::time::Duration) {}
    /// Whether a session was marked ended here; None when this registry does not keep the marks
    /// (the handshake then asks Redis).
    async fn session_ended(&self, _session: &str) -> Option<bool> {
        None
    }
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

/// One message of a chat completion request: a turn of the conversation, the assistant asking
/// for tool calls (`tool_calls`), or a tool's result (`role: "tool"`, `tool_call_id`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self { role: role.to_owned(), content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    /// The assistant's turn that asked for these calls (and said `content` first, if anything).
    pub fn tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self { tool_calls: calls, ..Self::new("assistant", content) }
    }

    /// A tool's result, answering the call `id`.
    pub fn tool_result(id: &str, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(id.to_owned()), ..Self::new("tool", content) }
    }
}

/// A call the model asks for, in the OpenAI-compatible shape (`arguments` is a JSON text).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

/// A tool offered to the model: its name, what it does, and its parameters as a JSON Schema.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AiError {
    #[error("the model endpoint answered HTTP {0}")]
    Status(u16),
    #[error("the model endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the model stopped answering")]
    Timeout,
    #[error("the model sent something unreadable: {0}")]
    Malformed(String),
}

/// A stream of text deltas from the model.
pub type Deltas = futures::stream::BoxStream<'static, Result<String, AiError>>;

/// What a turn with tools streams: text as it comes, then the calls the model asks for (once,
/// complete, when its turn ends with them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Text(String),
    ToolCalls(Vec<ToolCall>),
}

pub type TurnDeltas = futures::stream::BoxStream<'static, Result<Delta, AiError>>;

/// Streams a chat completion.
#[async_trait]
pub trait Ai: Send + Sync {
    /// Whether a real model is behind this (the offline responder is not, and is not billed).
    fn is_model(&self) -> bool;
    async fn stream(&self, messages: Vec<ChatMessage>) -> Result<Deltas, AiError>;

    /// Whether [`Ai::turn`] offers tools to the model.
    fn calls_tools(&self) -> bool {
        false
    }

    /// A turn in which the model may ask for `tools`. Without tool support, it is [`Ai::stream`].
    async fn turn(&self, messages: Vec<ChatMessage>, _tools: &[ToolSpec]) -> Result<TurnDeltas, AiError> {
        use futures::StreamExt;
        Ok(self.stream(messages).await?.map(|d| d.map(Delta::Text)).boxed())
    }
}

// ---- files ----------------------------------------------------------------------------------

/// The largest file: 5 MB.
pub const MAX_BYTES: i64 = 5 * 1024 * 1024;
/// How long an upload or download URL works.
pub const URL_TTL: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such object")]
    Missing,
    /// The object is larger than `MAX_BYTES`: refused by its size, never read whole.
    #[error("the object is too large")]
    TooLarge,
    #[error("object storage failed: {0}")]
    Other(String),
}

/// Where file bytes live.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// A URL the client PUTs the bytes to: exactly `size` bytes (the declared size; S3 signs it
    /// into the URL, so a PUT of another length is refused).
    async fn upload_url(
        &self,
        file_id: Uuid,
        room_id: Uuid,
        content_type: &str,
        size: i64,
    ) -> Result<String, StoreError>;
    /// The bytes, for validation.
    async fn read(&self, file_id: Uuid, room_id: Uuid) -> Result<Vec<u8>, StoreError>;
    async fn delete(&self, file_id: Uuid) -> Result<(), StoreError>;
    /// The upload passed validation: `bytes` — the ones that were checked, not whatever the
    /// upload holds by now — become the file members download, which the upload URL (still
    /// valid for a while) can no longer change. Idempotent.
    async fn accept(&self, file_id: Uuid, room_id: Uuid, bytes: &[u8]) -> Result<(), StoreError>;
    /// A short-lived URL that downloads the file under `name`.
    async fn download_url(&self, file_id: Uuid, name: &str, content_type: &str) -> Result<String, StoreError>;
}
