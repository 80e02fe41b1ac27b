//! The WebSocket protocol (PROTOCOL.md): client actions parsed at the edge into typed values,
//! server events, and socket errors. Parsing never panics and always says what was wrong.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::domain::{Message, Note, OnlineUser, Pinned, ReactionSummary, Room};

/// API Gateway's frame limit, which the local gateway enforces too.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WsErrorCode {
    BadRequest,
    UnknownAction,
    TooLarge,
    NotMember,
    RateLimited,
    Muted,
    InsufficientFunds,
    OnboardingIncomplete,
    Forbidden,
    NotFound,
    Unavailable,
    Internal,
    /// A reaction past a message's caps (per person, distinct emoji).
    TooManyReactions,
    /// A pin past the room's cap.
    TooManyPins,
}

/// An `error` event. The connection stays open after every one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsError {
    pub code: WsErrorCode,
    pub message: String,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// When a mute ends (`muted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The room of a refused `join_room`, which has no `ref`: the client knows which room is
    /// still unjoined and when to ask again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<Uuid>,
}

impl WsError {
    pub fn new(code: WsErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), reference: None, retry_after_ms: None, until: None, room_id: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(WsErrorCode::BadRequest, message)
    }

    pub fn not_member(room_id: Uuid) -> Self {
        Self::new(WsErrorCode::NotMember, format!("you are not a member of room {room_id}"))
    }

    pub fn internal() -> Self {
        Self::new(WsErrorCode::Internal, "something went wrong on our side; try again")
    }

    pub fn unavailable(what: &str) -> Self {
        Self::new(WsErrorCode::Unavailable, format!("{what} is temporarily unavailable; try again shortly"))
    }

    /// Names the room the refused frame was about (see [`WsError::room_id`]).
    pub fn in_room(mut self, room_id: Uuid) -> Self {
        self.room_id = Some(room_id);
        self
    }

    pub fn with_ref(mut self, reference: Option<&str>) -> Self {
        if self.reference.is_none() {
            self.reference = reference.map(str::to_owned);
        }
        self
    }
}

/// The WebSocket edge's translation of a feature's error; the cause of an internal one is logged
/// here and not sent.
impl From<crate::error::Error> for WsError {
    fn from(e: crate::error::Error) -> Self {
        use crate::error::Error as E;
        e.log();
        let millis = |d: std::time::Duration| (d.as_millis() as u64).max(1);
        match e {
            E::Conflict { code: "too_many_reactions", message } => Self::new(WsErrorCode::TooManyReactions, message),
            E::Conflict { code: "too_many_pins", message } => Self::new(WsErrorCode::TooManyPins, message),
            E::Invalid { message, .. } | E::Conflict { message, .. } => Self::bad_request(message),
            E::NotFound { message, .. } => Self::new(WsErrorCode::NotFound, message),
            E::Forbidden { code, message } => Self::new(
                match code {
                    "not_member" => WsErrorCode::NotMember,
                    "onboarding_incomplete" => WsErrorCode::OnboardingIncomplete,
                    _ => WsErrorCode::Forbidden,
                },
                message,
            ),
            E::RateLimited { retry_after, message } => {
                Self { retry_after_ms: Some(millis(retry_after)), ..Self::new(WsErrorCode::RateLimited, message) }
            }
            E::Muted { until, retry_after } => Self {
                retry_after_ms: Some(millis(retry_after)),
                until: Some(until),
                ..Self::new(
                    WsErrorCode::Muted,
                    format!("you are muted in this room until {} UTC", until.format("%H:%M")),
                )
            },
            E::InsufficientFunds { message } => Self::new(WsErrorCode::InsufficientFunds, message),
            E::Unavailable(dependency) => Self::unavailable(&dependency.to_string()),
            E::Internal(_) => Self::internal(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// Every event the server sends, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    RoomJoined {
        room_id: Uuid,
        messages: Vec<Message>,
        /// The joiner first, then others by name: at most `ONLINE_LISTED` people.
        online: Vec<OnlineUser>,
        /// How many people are online here, listed or not.
        #[serde(default)]
        online_count: usize,
        /// The room's presence number this list was read at (see `presence_update`); absent
        /// when the server could not number it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        presence_seq: Option<u64>,
        /// Older messages were left out (to keep the event under the frame limit, or past 50).
        #[serde(default)]
        has_more: bool,
        /// The connection's person: the last `seq` they read here, and what came after it.
        #[serde(default)]
        last_read_seq: i64,
        #[serde(default)]
        unread_count: i64,
        /// Unread mentions of them or `@room`, and replies to their messages.
        #[serde(default)]
        mention_count: i64,
    },
    Ack {
        client_msg_id: String,
        message_id: Uuid,
    },
    NewMessage {
        room_id: Uuid,
        message: Message,
    },
    Typing {
        room_id: Uuid,
        user_id: Uuid,
        display_name: String,
        typing: bool,
    },
    PresenceUpdate {
        room_id: Uuid,
        user_id: Uuid,
        display_name: String,
        status: PresenceStatus,
        /// How many people are online in the room after this change, as the server read it: a
        /// client sets its count from it rather than adding and subtracting, so an announcement
        /// heard twice, or one not announced, does not leave the count wrong.
        #[serde(default)]
        online_count: usize,
        /// Grows with each presence change of the room, and the count was read after every
        /// change with a lower number: a client keeps the count of the highest number it heard
        /// (announcements overtake one another), and a person's change only if it is newer than
        /// what it knows of them. Absent when the server could not number it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        presence_seq: Option<u64>,
    },
    MessageEdited {
        room_id: Uuid,
        message: Message,
    },
    MessageDeleted {
        room_id: Uuid,
        message_id: Uuid,
    },
    Reaction {
        room_id: Uuid,
        message_id: Uuid,
        user_id: Uuid,
        emoji: String,
        on: bool,
        reactions: Vec<ReactionSummary>,
    },
    AiStreamStart {
        room_id: Uuid,
        stream_id: Uuid,
        reply_to: Uuid,
        /// A regeneration: the AI reply this stream will replace when it ends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<Uuid>,
    },
    AiStreamChunk {
        room_id: Uuid,
        stream_id: Uuid,
        seq: u64,
        delta: String,
    },
    AiStreamEnd {
        room_id: Uuid,
        stream_id: Uuid,
        message: Message,
    },
    /// The assistant calls a tool while it answers (between its stream's start and end).
    AiToolCall {
        room_id: Uuid,
        stream_id: Uuid,
        call_id: String,
        name: String,
        arguments: serde_json::Value,
    },
    /// The call's outcome: `ok`, and a one-line summary (or the error's message).
    AiToolResult {
        room_id: Uuid,
        stream_id: Uuid,
        call_id: String,
        name: String,
        ok: bool,
        summary: String,
    },
    MessagePinned {
        room_id: Uuid,
        message_id: Uuid,
        pinned: Pinned,
        /// The message as it reads now (with `pinned`), so a pins list needs no fetch.
        message: Message,
    },
    MessageUnpinned {
        room_id: Uuid,
        message_id: Uuid,
    },
    /// A room the person is now in that they did not open themselves (a DM someone started).
    RoomAdded {
        room: Room,
    },
    NoteAdded {
        room_id: Uuid,
        note: Note,
    },
    NoteDeleted {
        room_id: Uuid,
        note_id: Uuid,
    },
    Reminder {
        reminder: ReminderNotice,
    },
    Moderation {
        room_id: Uuid,
        user_id: Uuid,
        action: ModerationAction,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
    },
    /// The person's read marker in a room moved (to every connection of theirs).
    ReadMarker {
        room_id: Uuid,
        seq: i64,
        unread_count: i64,
        mention_count: i64,
        /// The newest message the counts cover: a later one comes as `new_message`, and may
        /// arrive before this event.
        counted_to_seq: i64,
    },
    Error(WsError),
    Pong,
}

/// What a `reminder` event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderNotice {
    pub id: Uuid,
    pub text: String,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModerationAction {
    Muted,
    Unmuted,
}

/// A client frame, validated for shape (field values are validated by the handler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    JoinRoom { room_id: Uuid },
    LeaveRoom { room_id: Uuid },
    NewMessage { room_id: Uuid, body: String, client_msg_id: String, reply_to: Option<Uuid> },
    EditMessage { room_id: Uuid, message_id: Uuid, body: String },
    DeleteMessage { room_id: Uuid, message_id: Uuid },
    React { room_id: Uuid, message_id: Uuid, emoji: String, on: bool },
    PinMessage { room_id: Uuid, message_id: Uuid },
    UnpinMessage { room_id: Uuid, message_id: Uuid },
    FileMessage { room_id: Uuid, file_id: Uuid, client_msg_id: String, caption: Option<String> },
    Typing { room_id: Uuid, typing: bool },
    StopAi { room_id: Uuid, stream_id: String },
    MarkRead { room_id: Uuid, seq: i64 },
    Regenerate { room_id: Uuid, message_id: Uuid },
    Ping,
}

#[derive(Deserialize)]
struct RoomOnly {
    room_id: Uuid,
}

#[derive(Deserialize)]
struct NewMessageFields {
    room_id: Uuid,
    body: String,
    client_msg_id: String,
    #[serde(default)]
    reply_to: Option<Uuid>,
}

#[derive(Deserialize)]
struct FileMessageFields {
    room_id: Uuid,
    file_id: Uuid,
    client_msg_id: String,
    #[serde(default)]
    caption: Option<String>,
}

#[derive(Deserialize)]
struct EditFields {
    room_id: Uuid,
    message_id: Uuid,
    body: String,
}

#[derive(Deserialize)]
struct MessageRef {
    room_id: Uuid,
    message_id: Uuid,
}

#[derive(Deserialize)]
struct ReactFields {
    room_id: Uuid,
    message_id: Uuid,
    emoji: String,
    on: bool,
}

#[derive(Deserialize)]
struct TypingFields {
    room_id: Uuid,
    typing: bool,
}

#[derive(Deserialize)]
struct MarkReadFields {
    room_id: Uuid,
    seq: i64,
}

#[derive(Deserialize)]
struct StopAiFields {
    room_id: Uuid,
    stream_id: String,
}

fn fields<T: DeserializeOwned>(action: &str, value: Value) -> Result<T, WsError> {
    serde_json::from_value(value).map_err(|e| WsError::bad_request(format!("{action}: {e}")))
}

/// The `client_msg_id` of a frame, if it has a string one, to echo as `ref` in errors.
pub fn frame_ref(value: &Value) -> Option<&str> {
    value.get("client_msg_id").and_then(Value::as_str)
}

/// Every `action` a client frame may name.
pub const ACTIONS: &[&str] = &[
    "join_room",
    "leave_room",
    "new_message",
    "file_message",
    "edit_message",
    "delete_message",
    "react",
    "pin_message",
    "unpin_message",
    "typing",
    "stop_ai",
    "mark_read",
    "regenerate",
    "ping",
];

/// Why a frame or body holding a NUL character is refused.
pub const NUL_REFUSED: &str = "text must not contain NUL characters";

/// Whether any string in `value`, keys included, holds a NUL character (Postgres cannot store
/// one in text, and no person types one).
pub fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Parses one text frame. On error, the `WsError` already carries the frame's `ref`.
pub fn parse_frame(raw: &str) -> Result<ClientAction, WsError> {
    if raw.len() > MAX_FRAME_BYTES {
        return Err(WsError::new(
            WsErrorCode::TooLarge,
            format!("frames are at most {MAX_FRAME_BYTES} bytes; this one is {}", raw.len()),
        ));
    }
    let value: Value = serde_json::from_str(raw).map_err(|_| WsError::bad_request("frames must be JSON objects"))?;
    let reference = frame_ref(&value).map(str::to_owned);
    let reference = reference.as_deref();
    if has_nul(&value) {
        return Err(WsError::bad_request(NUL_REFUSED).with_ref(reference));
    }
    let action = match value.get("action") {
        Some(Value::String(a)) => a.clone(),
        Some(_) => {
            return Err(WsError::bad_request("`action` must be a string").with_ref(reference));
        }
        None if value.is_object() => {
            return Err(WsError::bad_request("missing field `action`").with_ref(reference));
        }
        None => return Err(WsError::bad_request("frames must be JSON objects")),
    };
    let parsed = match action.as_str() {
        "join_room" => fields::<RoomOnly>(&action, value).map(|f| ClientAction::JoinRoom { room_id: f.room_id }),
        "leave_room" => fields::<RoomOnly>(&action, value).map(|f| ClientAction::LeaveRoom { room_id: f.room_id }),
        "new_message" => fields::<NewMessageFields>(&action, value).map(|f| ClientAction::NewMessage {
            room_id: f.room_id,
            body: f.body,
            client_msg_id: f.client_msg_id,
            reply_to: f.reply_to,
        }),
        "file_message" => fields::<FileMessageFields>(&action, value).map(|f| ClientAction::FileMessage {
            room_id: f.room_id,
            file_id: f.file_id,
            client_msg_id: f.client_msg_id,
            caption: f.caption,
        }),
        "edit_message" => fields::<EditFields>(&action, value).map(|f| ClientAction::EditMessage {
            room_id: f.room_id,
            message_id: f.message_id,
            body: f.body,
        }),
        "delete_message" => fields::<MessageRef>(&action, value)
            .map(|f| ClientAction::DeleteMessage { room_id: f.room_id, message_id: f.message_id }),
        "react" => fields::<ReactFields>(&action, value).map(|f| ClientAction::React {
            room_id: f.room_id,
            message_id: f.message_id,
            emoji: f.emoji,
            on: f.on,
        }),
        "pin_message" => fields::<MessageRef>(&action, value)
            .map(|f| ClientAction::PinMessage { room_id: f.room_id, message_id: f.message_id }),
        "unpin_message" => fields::<MessageRef>(&action, value)
            .map(|f| ClientAction::UnpinMessage { room_id: f.room_id, message_id: f.message_id }),
        "typing" => fields::<TypingFields>(&action, value)
            .map(|f| ClientAction::Typing { room_id: f.room_id, typing: f.typing }),
        "stop_ai" => fields::<StopAiFields>(&action, value)
            .map(|f| ClientAction::StopAi { room_id: f.room_id, stream_id: f.stream_id }),
        "mark_read" => {
            fields::<MarkReadFields>(&action, value).map(|f| ClientAction::MarkRead { room_id: f.room_id, seq: f.seq })
        }
        "regenerate" => fields::<MessageRef>(&action, value)
            .map(|f| ClientAction::Regenerate { room_id: f.room_id, message_id: f.message_id }),
        "ping" => Ok(ClientAction::Ping),
        other => Err(WsError::new(WsErrorCode::UnknownAction, format!("unknown action {:?}", truncate(other, 64)))),
    };
    parsed.map_err(|e| e.with_ref(reference))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_shape_has_a_code_and_keeps_the_ref() {
        let room = Uuid::nil();
        let cases = [
            ("not json", WsErrorCode::BadRequest, None),
            ("[1,2]", WsErrorCode::BadRequest, None),
            ("{}", WsErrorCode::BadRequest, None),
            (r#"{"action": 5}"#, WsErrorCode::BadRequest, None),
            (r#"{"action": "dance"}"#, WsErrorCode::UnknownAction, None),
            (r#"{"action": "join_room"}"#, WsErrorCode::BadRequest, None),
            (r#"{"action": "join_room", "room_id": "nope"}"#, WsErrorCode::BadRequest, None),
            (
                &format!(r#"{{"action": "new_message", "room_id": "{room}", "body": 5, "client_msg_id": "c1"}}"#),
                WsErrorCode::BadRequest,
                Some("c1"),
            ),
            (
                r#"{"action": "typing", "room_id": "00000000-0000-0000-0000-000000000000", "typing": "yes"}"#,
                WsErrorCode::BadRequest,
                None,
            ),
        ];
        for (raw, code, reference) in cases {
            let err = parse_frame(raw).unwrap_err();
            assert_eq!(err.code, code, "{raw}");
            assert_eq!(err.reference.as_deref(), reference, "{raw}");
        }
        let huge = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
        assert_eq!(parse_frame(&huge).unwrap_err().code, WsErrorCode::TooLarge);
    }

    #[test]
    fn good_frames_parse() {
        assert_eq!(parse_frame(r#"{"action":"ping"}"#).unwrap(), ClientAction::Ping);
        let id = "00000000-0000-0000-0000-000000000001";
        let pin = format!(r#"{{"action":"pin_message","room_id":"{id}","message_id":"{id}"}}"#);
        assert!(matches!(parse_frame(&pin).unwrap(), ClientAction::PinMessage { .. }));
        let unpin = format!(r#"{{"action":"unpin_message","room_id":"{id}","message_id":"{id}"}}"#);
        assert!(matches!(parse_frame(&unpin).unwrap(), ClientAction::UnpinMessage { .. }));
        let no_message = format!(r#"{{"action":"pin_message","room_id":"{id}"}}"#);
        assert_eq!(parse_frame(&no_message).unwrap_err().code, WsErrorCode::BadRequest);
        let raw = r#"{"action":"new_message","room_id":"00000000-0000-0000-0000-000000000001","body":"hi","client_msg_id":"x"}"#;
        assert!(matches!(parse_frame(raw).unwrap(), ClientAction::NewMessage { .. }));
        let raw = r#"{"action":"mark_read","room_id":"00000000-0000-0000-0000-000000000001","seq":7}"#;
        assert!(matches!(parse_frame(raw).unwrap(), ClientAction::MarkRead { seq: 7, .. }));
        let raw = r#"{"action":"mark_read","room_id":"00000000-0000-0000-0000-000000000001","seq":1.5}"#;
        assert_eq!(parse_frame(raw).unwrap_err().code, WsErrorCode::BadRequest);
    }

    #[test]
    fn events_serialise_with_their_type() {
        let e = ServerEvent::Error(WsError::bad_request("x").with_ref(Some("c")));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "bad_request");
        assert_eq!(v["ref"], "c");
        assert!(v.get("retry_after_ms").is_none());
        assert!(v.get("room_id").is_none());
        let room = Uuid::from_u128(7);
        let v = serde_json::to_value(ServerEvent::Error(WsError::not_member(room).in_room(room))).unwrap();
        assert_eq!(v["room_id"], room.to_string());
        assert_eq!(serde_json::to_value(ServerEvent::Pong).unwrap(), serde_json::json!({"type": "pong"}));
    }
}
