//! The assistant's reminder tools: set, list, cancel — always the asker's own reminders.

use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    adapters::postgres::{onboarding, reminders as store},
    ai::tools::{Tool, ToolCtx, ToolOutput, room_id_property, schema, short, str_arg},
    error::Error,
    ports::ToolSpec,
};

/// `set_reminder`: reminds the asker in the room, at a time read in their timezone.
pub struct SetReminder;

#[async_trait]
impl Tool for SetReminder {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "set_reminder".into(),
            description: "Remind the person who asked of something at a time: `when` in plain words, \
                          as they would say it (\"in 10 mins\", \"tomorrow at 9am\", \"on Friday at 3pm\"), \
                          or an RFC 3339 timestamp."
                .into(),
            parameters: schema(
                json!({
                    "text": {"type": "string", "description": "What to remind them of."},
                    "when": {"type": "string", "description": "When, in plain words."},
                    "room_id": room_id_property(),
                }),
                &["text", "when"],
            ),
        }
    }

    fn changes_things(&self) -> bool {
        true
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room_to_change(&args).await?;
        let text = str_arg(&args, "text").ok_or_else(|| Error::invalid_field("text", "required"))?;
        let when = str_arg(&args, "when").ok_or_else(|| Error::invalid_field("when", "required"))?;
        // Models often write the time as a timestamp; people's words go through the parser.
        let (reminder, tz) = match chrono::DateTime::parse_from_rfc3339(when) {
            Ok(at) => {
                let at = at.with_timezone(&chrono::Utc);
                if at <= ctx.app.clock.now() {
                    return Err(Error::invalid_field("when", "that time has passed"));
                }
                if text.chars().count() > super::TEXT_MAX {
                    return Err(Error::invalid_field("text", format!("at most {} characters", super::TEXT_MAX)));
                }
                let reminder = super::set(ctx.app, ctx.asker_id, room.id, None, text, at).await?;
                (reminder, onboarding::timezone(&ctx.app.db, ctx.asker_id).await?)
            }
            Err(_) => super::request(ctx.app, ctx.asker_id, room.id, text, Some(when), None).await?,
        };
        let local = reminder.due_at.with_timezone(&tz.parse::<chrono_tz::Tz>().unwrap_or(chrono_tz::Tz::UTC));
        Ok(ToolOutput::new(
            json!({"reminder_id": reminder.id, "text": reminder.text, "due_at": reminder.due_at,
                   "local_time": local.format("%A %-d %B %Y at %H:%M").to_string(), "timezone": tz}),
            format!("“{}” at {}", short(&reminder.text), local.format("%a %-d %b %H:%M")),
        ))
    }
}

/// `list_reminders`: the asker's reminders still to come (in a room, those set there).
pub struct ListReminders;

#[async_trait]
impl Tool for ListReminders {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "list_reminders".into(),
            description: "List the reminders of the person who asked that are still to come.".into(),
            parameters: schema(json!({}), &[]),
        }
    }

    async fn call(&self, ctx: &ToolCtx<'_>, _args: Value) -> crate::Result<ToolOutput> {
        let now = ctx.app.clock.now();
        let list: Vec<Value> = store::of_user(&ctx.app.db, &ctx.app.keyring, ctx.asker_id)
            .await?
            .into_iter()
            // In a room, the answer is read by everyone there: only reminders set in it.
            .filter(|r| ctx.room_id.is_none_or(|room| r.room_id == room))
            .filter(|r| r.due_at > now && matches!(r.status.as_str(), "pending" | "queued"))
            .map(|r| json!({"reminder_id": r.id, "text": r.text, "due_at": r.due_at}))
            .collect();
        let summary = format!("{} reminder{}", list.len(), if list.len() == 1 { "" } else { "s" });
        Ok(ToolOutput::new(json!({"reminders": list}), summary))
    }
}

/// `cancel_reminder`: cancels one of the asker's reminders.
pub struct CancelReminder;

#[async_trait]
impl Tool for CancelReminder {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "cancel_reminder".into(),
            description: "Cancel one of the asker's reminders, by the id `list_reminders` gave.".into(),
            parameters: schema(json!({"reminder_id": {"type": "string"}}), &["reminder_id"]),
        }
    }

    fn changes_things(&self) -> bool {
        true
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let id: Uuid = str_arg(&args, "reminder_id")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::invalid_field("reminder_id", "a reminder id"))?;
        // Someone else's reminder, or one of another room asked about here, is not found.
        let mine = store::of_user(&ctx.app.db, &ctx.app.keyring, ctx.asker_id)
            .await?
            .into_iter()
            .any(|r| r.id == id && ctx.room_id.is_none_or(|room| r.room_id == room));
        if !mine || !store::cancel(&ctx.app.db, id, ctx.asker_id).await? {
            return Err(Error::not_found("reminder_not_found", "no such reminder to cancel"));
        }
        Ok(ToolOutput::new(json!({"cancelled": id}), "cancelled"))
    }
}
