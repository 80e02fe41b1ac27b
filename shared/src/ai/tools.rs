//! Tools: what the model may call while it answers (`agent`), and what Mathia's MCP server
//! offers other agents. A tool runs with the rights of the person who asked and no more: in a
//! room, it reads and changes only that room (its answer is posted there, to every member);
//! over MCP, only rooms the person is a member of.
//!
//! Mathia's own tools are listed in `wiring::tools` (reminders and Calendly bring theirs);
//! more come from a workspace's MCP servers through a [`ToolSource`].

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    access,
    adapters::postgres::{messages, notes, rooms, wallet},
    app::App,
    domain::{MessageKind, NoteKind, NotePriority, Room},
    error::Error,
    ports::ToolSpec,
    protocol::ServerEvent,
    realtime::push_to_room,
};

/// Who calls a tool, and where.
#[derive(Clone, Copy)]
pub struct ToolCtx<'a> {
    pub app: &'a App,
    pub asker_id: Uuid,
    /// The room the assistant was asked in, where its answer goes; `None` over MCP.
    pub room_id: Option<Uuid>,
}

impl ToolCtx<'_> {
    /// The room a call is about: in a room, that room (a `room_id` argument may only name
    /// it); over MCP, the `room_id` argument, which must be a room of the asker's.
    pub async fn room(&self, args: &Value) -> crate::Result<Room> {
        let named = match args.get("room_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| s.parse::<Uuid>().ok())
                    .ok_or_else(|| Error::invalid_field("room_id", "a room id"))?,
            ),
        };
        let room_id = match (self.room_id, named) {
            (Some(here), Some(named)) if named != here => {
                return Err(Error::forbidden(
                    "tool_room",
                    "in a room, a tool reads and changes only the room it was asked in",
                ));
            }
            (Some(here), _) => here,
            (None, Some(named)) => named,
            (None, None) => return Err(Error::invalid_field("room_id", "which room: a room id")),
        };
        access::member_room(self.app, room_id, self.asker_id).await
    }

    /// The room, for a call that changes it: the asker must be allowed to speak there.
    pub async fn room_to_change(&self, args: &Value) -> crate::Result<Room> {
        let room = self.room(args).await?;
        access::require_unmuted(self.app, room.id, self.asker_id).await?;
        Ok(room)
    }
}

/// What a call gave: the result the model reads, and a one-line summary people see.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub result: Value,
    pub summary: String,
}

impl ToolOutput {
    pub fn new(result: Value, summary: impl Into<String>) -> Self {
        Self { result, summary: summary.into() }
    }
}

#[async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    /// Whether a call changes something (a note, a reminder, a booking): its result is kept
    /// per job, so a job delivered again does not do it again.
    fn changes_things(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput>;
}

/// Calls `tool` within `MATHIA_AI_TOOL_TIMEOUT_S`; one that outlasts it is unavailable.
pub async fn call_in_time(tool: &dyn Tool, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
    match tokio::time::timeout(ctx.app.config.ai_tool_timeout, tool.call(ctx, args)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Error::Unavailable(crate::error::Dependency::Tool)),
    }
}

/// Where a workspace's tools come from: Mathia's own, or its MCP servers.
#[async_trait]
pub trait ToolSource: Send + Sync {
    fn name(&self) -> &'static str;
    /// The tools offered in `workspace_id`. A source that cannot be reached offers none (and
    /// says so in the log); it never fails the reply.
    async fn tools(&self, app: &App, workspace_id: Uuid) -> Vec<Arc<dyn Tool>>;
}

/// A list of tools known when the program is built.
pub struct Fixed(pub &'static [&'static dyn Tool]);

struct Static(&'static dyn Tool);

#[async_trait]
impl Tool for Static {
    fn spec(&self) -> ToolSpec {
        self.0.spec()
    }
    fn changes_things(&self) -> bool {
        self.0.changes_things()
    }
    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        self.0.call(ctx, args).await
    }
}

#[async_trait]
impl ToolSource for Fixed {
    fn name(&self) -> &'static str {
        "mathia"
    }

    async fn tools(&self, _app: &App, _workspace_id: Uuid) -> Vec<Arc<dyn Tool>> {
        self.0.iter().map(|t| Arc::new(Static(*t)) as Arc<dyn Tool>).collect()
    }
}

/// A JSON Schema object of these properties, `required` ones first.
pub fn schema(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// The optional `room_id` every room tool takes (needed over MCP, implied in a room).
pub fn room_id_property() -> Value {
    json!({"type": "string", "description": "The room's id. Leave it out to mean the room you were asked in."})
}

/// A string argument, trimmed; `None` when absent or empty.
pub fn str_arg<'v>(args: &'v Value, name: &str) -> Option<&'v str> {
    args.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

pub fn required_str<'v>(args: &'v Value, name: &'static str) -> crate::Result<&'v str> {
    str_arg(args, name).ok_or_else(|| Error::invalid_field(name, "required"))
}

pub fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec { name: name.into(), description: description.into(), parameters }
}

/// `remember_note`: keeps a note in the room's Notes panel.
pub struct RememberNote;

#[async_trait]
impl Tool for RememberNote {
    fn spec(&self) -> ToolSpec {
        spec(
            "remember_note",
            "Keep a note in the room's notes, which the assistant remembers in later answers.",
            schema(
                json!({
                    "text": {"type": "string", "description": "What to remember, as a short sentence."},
                    "kind": {"type": "string", "enum": ["decision", "action_item", "insight", "reference"]},
                    "important": {"type": "boolean", "description": "Whether it matters in the asker's other rooms too."},
                    "room_id": room_id_property(),
                }),
                &["text"],
            ),
        )
    }

    fn changes_things(&self) -> bool {
        true
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room_to_change(&args).await?;
        let text = required_str(&args, "text")?;
        if text.chars().count() > crate::domain::NOTE_MAX_CHARS {
            return Err(Error::invalid_field("text", "too long for a note"));
        }
        let kind = str_arg(&args, "kind").and_then(NoteKind::parse).unwrap_or(NoteKind::Reference);
        let priority = if args.get("important").and_then(Value::as_bool).unwrap_or(false) {
            NotePriority::High
        } else {
            NotePriority::Normal
        };
        let note = notes::add(&ctx.app.db, &ctx.app.keyring, room.id, Some(ctx.asker_id), text, priority, kind).await?;
        let id = note.id;
        push_to_room(ctx.app, room.id, &ServerEvent::NoteAdded { room_id: room.id, note }, None).await;
        Ok(ToolOutput::new(json!({"note_id": id, "kind": kind.as_str()}), format!("noted “{}”", short(text))))
    }
}

/// `lookup_notes`: the notes the asker may read here.
pub struct LookupNotes;

#[async_trait]
impl Tool for LookupNotes {
    fn spec(&self) -> ToolSpec {
        spec(
            "lookup_notes",
            "Look up the room's notes (decisions, action items, references), optionally only those with some words.",
            schema(json!({"query": {"type": "string"}, "room_id": room_id_property()}), &[]),
        )
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room(&args).await?;
        let words: Vec<String> =
            str_arg(&args, "query").unwrap_or("").split_whitespace().map(str::to_lowercase).collect();
        let found: Vec<Value> = notes::for_room(&ctx.app.db, &ctx.app.keyring, room.id, ctx.asker_id)
            .await?
            .into_iter()
            // Across rooms only the asker's own notes travel, and only into an answer to them
            // in a room; over MCP the asker reads them anyway.
            .filter(|n| {
                let text = n.text.to_lowercase();
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .take(50)
            .map(|n| {
                json!({"id": n.id, "text": n.text, "kind": n.kind.as_str(),
                       "important": n.priority == NotePriority::High, "from_another_room": n.shared})
            })
            .collect();
        let summary = format!("{} note{}", found.len(), if found.len() == 1 { "" } else { "s" });
        Ok(ToolOutput::new(json!({"notes": found}), summary))
    }
}

/// `room_people`: who is in the room.
pub struct RoomPeople;

#[async_trait]
impl Tool for RoomPeople {
    fn spec(&self) -> ToolSpec {
        spec(
            "room_people",
            "List the people in the room, by name and id.",
            schema(json!({"room_id": room_id_property()}), &[]),
        )
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room(&args).await?;
        let people = rooms::members(&ctx.app.db, room.id).await?;
        let summary = format!("{} people", people.len());
        let list: Vec<Value> = people.iter().map(|p| json!({"id": p.id, "name": p.display_name})).collect();
        Ok(ToolOutput::new(json!({"room": room.name, "people": list}), summary))
    }
}

/// `room_history`: the room's recent messages, for a summary.
pub struct RoomHistory;

/// The most messages `room_history` gives.
const HISTORY_MAX: i64 = 300;

#[async_trait]
impl Tool for RoomHistory {
    fn spec(&self) -> ToolSpec {
        spec(
            "room_history",
            "Read the room's latest messages (oldest first), to summarize or recall what was said.",
            schema(
                json!({"count": {"type": "integer", "minimum": 1, "maximum": HISTORY_MAX}, "room_id": room_id_property()}),
                &[],
            ),
        )
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room(&args).await?;
        let count = args.get("count").and_then(Value::as_i64).unwrap_or(100).clamp(1, HISTORY_MAX);
        let recent = messages::recent(&ctx.app.db, &ctx.app.keyring, room.id, count).await?;
        let lines: Vec<String> = recent
            .iter()
            .filter(|m| !m.deleted && m.kind != MessageKind::System && !m.body.is_empty())
            .map(|m| {
                let who = match m.kind {
                    MessageKind::Ai => "Mathia",
                    _ => m.author.as_ref().map(|a| a.display_name.as_str()).unwrap_or("someone"),
                };
                format!("[{}] {who}: {}", m.created_at.format("%Y-%m-%d %H:%M"), m.body)
            })
            .collect();
        let summary = format!("{} messages read", lines.len());
        Ok(ToolOutput::new(json!({"room": room.name, "messages": lines}), summary))
    }
}

/// `wallet_balance`: the workspace's credits.
pub struct WalletBalance;

#[async_trait]
impl Tool for WalletBalance {
    fn spec(&self) -> ToolSpec {
        spec(
            "wallet_balance",
            "The workspace wallet's balance and what one assistant reply costs.",
            schema(json!({"room_id": room_id_property()}), &[]),
        )
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room(&args).await?;
        let Some(w) = wallet::get(&ctx.app.db, room.workspace_id).await? else {
            return Ok(ToolOutput::new(json!({"wallet": null}), "no wallet"));
        };
        let summary = format!("{}.{:02} {}", w.balance_cents / 100, w.balance_cents % 100, w.currency);
        Ok(ToolOutput::new(
            json!({"balance_cents": w.balance_cents, "currency": w.currency,
                   "reply_cost_cents": ctx.app.config.ai_reply_cost_cents}),
            summary,
        ))
    }
}

/// At most this many characters of a text in a summary line.
const SHORT: usize = 60;

/// `text`, cut to a summary's length.
pub fn short(text: &str) -> String {
    match text.char_indices().nth(SHORT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
