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
    /// Who may enter: anyone in the workspace (`public`) or only with an invite (`private`).
    #[serde(default)]
    pub visibility: Visibility,
    /// A room of the workspace (`room`) or a direct message between two people (`dm`).
    #[serde(default)]
    pub kind: RoomKind,
    /// For a DM, the other person, as the one reading sees it (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Author>,
}

/// What a room is: a room of its workspace, or a direct message of exactly two people (no
/// joining, no invites, no one added).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    #[default]
    Room,
    Dm,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Room => "room",
            Self::Dm => "dm",
        }
    }

    /// A stored value; anything unknown is treated as the stricter `dm`.
    pub fn from_db(s: &str) -> Self {
        if s == "room" { Self::Room } else { Self::Dm }
    }
}

/// A room's door: `public` within its workspace (any member joins by id), or `private` (invite
/// only; leaving or being removed needs a new invite to come back).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// What rooms made before visibility existed are, and a workspace's first room.
    #[default]
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// A stored value; anything unknown is treated as the stricter `private`.
    pub fn from_db(s: &str) -> Self {
        if s == "public" { Self::Public } else { Self::Private }
    }
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
    /// Empty when the message was deleted.
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub client_msg_id: Option<String>,
    pub reply_to: Option<ReplyRef>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// An AI reply cut short by `stop_ai`.
    pub stopped: bool,
    pub reactions: Vec<ReactionSummary>,
    pub attachment: Option<Attachment>,
    /// The room members this message mentions (`<@id>` in its body), by id.
    #[serde(default)]
    pub mentions: Vec<Uuid>,
    /// Whether it mentions everyone in the room (`@room`).
    #[serde(default)]
    pub mentions_room: bool,
    /// Who pinned the message and when, or null when it is not pinned.
    #[serde(default)]
    pub pinned: Option<Pinned>,
    /// An AI reply's sources: the notes of this room that informed it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// How many of the asker's own notes from their other rooms informed an AI reply: only
    /// counted, never named, since the room's other members may not read them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub private_sources: u32,
    /// The tools an AI reply called, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolUse>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A note of the room that informed an AI reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Source {
    pub note_id: Uuid,
    pub room_id: Uuid,
    pub excerpt: String,
}

/// What a reply drew on, as stored (sealed) with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sources {
    pub notes: Vec<Source>,
    pub private: u32,
    #[serde(default)]
    pub tools: Vec<ToolUse>,
}

/// A tool the assistant called while answering, as the room sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ToolUse {
    pub call_id: String,
    pub name: String,
    pub arguments: serde_json::Value,
    pub ok: bool,
    pub summary: String,
}

/// A message's pin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pinned {
    /// Who pinned it (null when that account is gone).
    pub by: Option<Author>,
    pub at: DateTime<Utc>,
}

/// A file shared with a message. `url` needs the member's token and answers a short-lived
/// download link.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    pub id: Uuid,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub url: String,
}

/// The message a reply quotes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplyRef {
    pub id: Uuid,
    pub author: Option<Author>,
    pub excerpt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReactionSummary {
    pub emoji: String,
    pub count: usize,
    pub user_ids: Vec<Uuid>,
}

/// Someone present in a room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnlineUser {
    pub user_id: Uuid,
    pub display_name: String,
}

/// One of a room's notes (the Notes panel), decrypted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Note {
    pub id: Uuid,
    pub room_id: Uuid,
    pub text: String,
    pub priority: NotePriority,
    pub kind: NoteKind,
    /// A high-priority note from another of the user's rooms.
    pub shared: bool,
    pub author: Option<Author>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotePriority {
    Normal,
    High,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    Decision,
    ActionItem,
    Insight,
    Reference,
}

impl NotePriority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// The longest note, in characters.
pub const NOTE_MAX_CHARS: usize = 2000;

impl NoteKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "decision" => Some(Self::Decision),
            "action_item" => Some(Self::ActionItem),
            "insight" => Some(Self::Insight),
            "reference" => Some(Self::Reference),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decision => "decision",
            Self::ActionItem => "action_item",
            Self::Insight => "insight",
            Self::Reference => "reference",
        }
    }
}
