//! The shapes the protocol sends: `user`, `room`, `message` (PROTOCOL.md), and message kinds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Room {
    pub id: Uuid,
    pub name: String,
    pub workspace_id: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    User,
    Ai,
    System,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ai => "ai",
            Self::System => "system",
        }
    }

    pub fn from_db(s: &str) -> Self {
        match s {
            "ai" => Self::Ai,
            "system" => Self::System,
            _ => Self::User,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Author {
    pub id: Uuid,
    pub display_name: String,
}

/// A stored message, decrypted, as every client sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub room_id: Uuid,
    pub seq: i64,
    pub kind: MessageKind,
    pub author: Option<Author>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub client_msg_id: Option<String>,
}

/// Someone present in a room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnlineUser {
    pub user_id: Uuid,
    pub display_name: String,
}
