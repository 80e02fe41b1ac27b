//! `search_messages`: the assistant's (and MCP's) way into message search. It lives with the
//! search it calls, as reminders and Calendly keep their tools, so `ai` does not depend on `chat`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::search::{MAX_LIMIT, search};
use crate::{
    ai::tools::{Tool, ToolCtx, ToolOutput, required_str, room_id_property, schema},
    domain::search::SearchQuery,
    error::Error,
    ports::ToolSpec,
};

/// `search_messages`: the room's messages with all of some words.
pub struct SearchMessages;

#[async_trait]
impl Tool for SearchMessages {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "search_messages".into(),
            description: "Search the room's messages for words; newest first.".into(),
            parameters: schema(
                json!({
                    "query": {"type": "string", "description": "Words the messages contain."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 20},
                    "room_id": room_id_property(),
                }),
                &["query"],
            ),
        }
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room(&args).await?;
        let query = SearchQuery::parse(required_str(&args, "query")?)
            .map_err(|e| Error::invalid_field("query", e.to_string()))?;
        let limit = args.get("limit").and_then(Value::as_i64).unwrap_or(10).clamp(1, 20.min(MAX_LIMIT));
        let found = search(ctx.app, ctx.asker_id, &query, Some(room.id), None, limit).await?;
        let hits: Vec<Value> = found
            .results
            .iter()
            .map(|h| {
                json!({
                    "message_id": h.message.id,
                    "author": h.message.author.as_ref().map(|a| a.display_name.clone()),
                    "at": h.message.created_at,
                    "text": h.message.body,
                })
            })
            .collect();
        let summary = format!("{} message{}", hits.len(), if hits.len() == 1 { "" } else { "s" });
        Ok(ToolOutput::new(json!({"messages": hits}), summary))
    }
}
