//! The assistant's Calendly tools, each with the asker's own Calendly account (never another
//! member's): their upcoming events, whether they are free, a meeting booked (or a scheduling
//! link), and the slots where every connected member of the room is free.

use std::str::FromStr;

use async_trait::async_trait;
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::{Account, account, availability, check_calendar, free, schedule};
use crate::{
    adapters::postgres::onboarding,
    ai::tools::{Tool, ToolCtx, ToolOutput, room_id_property, schema, short, str_arg},
    error::Error,
    ports::ToolSpec,
};

fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec { name: name.into(), description: description.into(), parameters }
}

/// The asker's account and timezone; a clear error when Calendly is not connected.
async fn connected(ctx: &ToolCtx<'_>) -> crate::Result<(Account, Tz)> {
    let Some(account) = account(ctx.app, ctx.asker_id).await? else {
        return Err(Error::forbidden(
            "calendly_not_connected",
            "the asker has not connected Calendly (Settings → Calendly, or `/calendly connect`)",
        ));
    };
    let tz = Tz::from_str(&onboarding::timezone(&ctx.app.db, ctx.asker_id).await?).unwrap_or(Tz::UTC);
    Ok((account, tz))
}

/// `calendar_events`: the asker's next events.
pub struct CalendarEvents;

#[async_trait]
impl Tool for CalendarEvents {
    fn spec(&self) -> ToolSpec {
        spec("calendar_events", "The asker's Calendly events of the next 7 days.", schema(json!({}), &[]))
    }

    async fn call(&self, ctx: &ToolCtx<'_>, _args: Value) -> crate::Result<ToolOutput> {
        let (mut account, tz) = connected(ctx).await?;
        let text = check_calendar(ctx.app, &mut account, tz).await?;
        Ok(ToolOutput::new(json!({"events": text}), format!("{} line(s)", text.lines().count())))
    }
}

/// `check_availability`: whether the asker is free at a time.
pub struct CheckAvailability;

#[async_trait]
impl Tool for CheckAvailability {
    fn spec(&self) -> ToolSpec {
        spec(
            "check_availability",
            "Whether the asker is free at a time, from their Calendly (e.g. \"tomorrow at 3pm\", \"tomorrow afternoon\").",
            schema(json!({"when": {"type": "string"}}), &["when"]),
        )
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let when = str_arg(&args, "when").ok_or_else(|| Error::invalid_field("when", "required"))?;
        let (mut account, tz) = connected(ctx).await?;
        let text = availability(ctx.app, &mut account, &format!("am i free {when}"), tz).await?;
        Ok(ToolOutput::new(json!({"answer": text}), short(&text)))
    }
}

/// `schedule_meeting`: books a meeting with someone, or gives the asker's scheduling link.
pub struct ScheduleMeeting;

#[async_trait]
impl Tool for ScheduleMeeting {
    fn spec(&self) -> ToolSpec {
        spec(
            "schedule_meeting",
            "Book a meeting on the asker's Calendly at the first open slot of a time (with an invitee's email), \
             or, without an email, list open slots and a scheduling link.",
            schema(
                json!({
                    "when": {"type": "string", "description": "e.g. \"tomorrow afternoon\", \"next Tuesday\""},
                    "email": {"type": "string", "description": "The invitee's email address."},
                    "meeting_type": {"type": "string", "description": "The Calendly event type's name, when the asker has several."},
                }),
                &["when"],
            ),
        )
    }

    fn changes_things(&self) -> bool {
        true
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let when = str_arg(&args, "when").ok_or_else(|| Error::invalid_field("when", "required"))?;
        let (mut account, tz) = connected(ctx).await?;
        let request = format!(
            "schedule a {} meeting with {} {when}",
            str_arg(&args, "meeting_type").unwrap_or(""),
            str_arg(&args, "email").unwrap_or("")
        );
        let text = schedule(ctx.app, &mut account, &request, tz).await?;
        Ok(ToolOutput::new(json!({"outcome": text}), short(&text)))
    }
}

/// `room_free_times`: the slots where every Calendly-connected member of the room is free.
pub struct RoomFreeTimes;

#[async_trait]
impl Tool for RoomFreeTimes {
    fn spec(&self) -> ToolSpec {
        spec(
            "room_free_times",
            "Open slots in working hours (09:00–18:00, the asker's timezone) when every member of the room \
             who connected Calendly is free.",
            schema(
                json!({
                    "days": {"type": "integer", "minimum": 1, "maximum": free::MAX_DAYS},
                    "minutes": {"type": "integer", "enum": [15, 30, 45, 60, 90, 120]},
                    "room_id": room_id_property(),
                }),
                &[],
            ),
        )
    }

    async fn call(&self, ctx: &ToolCtx<'_>, args: Value) -> crate::Result<ToolOutput> {
        let room = ctx.room(&args).await?;
        let days = args.get("days").and_then(Value::as_i64).unwrap_or(5);
        let minutes = args.get("minutes").and_then(Value::as_i64).unwrap_or(30);
        let found = free::free_times(ctx.app, room.id, ctx.asker_id, days, minutes).await?;
        let summary = format!("{} open slot{}", found.slots.len(), if found.slots.len() == 1 { "" } else { "s" });
        let result = serde_json::to_value(&found).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        Ok(ToolOutput::new(result, summary))
    }
}
