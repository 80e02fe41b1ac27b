//! Smart reminders: set by asking the assistant, in the asker's timezone, delivered exactly
//! once. Due within 15 minutes → the `reminders` queue with a delay; later → a row the
//! scheduler sweeps each minute and queues when it comes within reach. Delivery sends a
//! `reminder` event to every connection of the person and a system message to the room; someone
//! offline sees it on their next connection.

pub mod parse;
pub mod tools;

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::{
    adapters::postgres::{
        onboarding,
        reminders::{self, Reminder},
    },
    ai::{
        connectors::{Answer, Connector, Ctx},
        router::Intent,
    },
    app::App,
    domain::ConnectionId,
    jobs::{ReminderJob, enqueue},
    ports::{MAX_QUEUE_DELAY, QueueName},
    protocol::{ReminderNotice, ServerEvent},
    realtime::{post_system_message, push_to_user, send_event},
};

fn notice(r: &Reminder) -> ServerEvent {
    ServerEvent::Reminder { reminder: ReminderNotice { id: r.id, text: r.text.clone(), due_at: r.due_at } }
}

/// Queues a reminder's delivery for its due time.
async fn queue(app: &App, id: Uuid, due_at: DateTime<Utc>) -> crate::Result<()> {
    let delay = (due_at - app.clock.now()).to_std().unwrap_or_default().min(MAX_QUEUE_DELAY);
    enqueue(app, QueueName::Reminders, &ReminderJob { job_id: id, reminder_id: id }, delay).await?;
    Ok(())
}

/// Sets a reminder. Within SQS's delay range it is queued now; otherwise the scheduler will.
pub async fn set(
    app: &App,
    user_id: Uuid,
    room_id: Uuid,
    source_message_id: Option<Uuid>,
    text: &str,
    due_at: DateTime<Utc>,
) -> crate::Result<Reminder> {
    store(app, user_id, room_id, source_message_id, None, text, due_at).await
}

/// The longest reminder text asked for over HTTP, in characters.
pub const TEXT_MAX: usize = 2000;

/// A reminder asked for over HTTP (`POST /api/reminders`): `when` is read by the same parser as
/// the assistant's, in the person's timezone — or, without it, `text` is the whole request
/// ("at 5pm to check emails"); `about` must be a message of that room. The
/// caller has checked that the person may speak in the room. Answers the reminder and the
/// timezone it was read in.
pub async fn request(
    app: &App,
    user_id: Uuid,
    room_id: Uuid,
    text: &str,
    when: Option<&str>,
    about: Option<Uuid>,
) -> crate::Result<(Reminder, String)> {
    if text.chars().count() > TEXT_MAX {
        return Err(crate::Error::invalid_field("text", format!("at most {TEXT_MAX} characters")));
    }
    if let Some(message_id) = about
        && crate::adapters::postgres::messages::seq_of(&app.db, room_id, message_id).await?.is_none()
    {
        return Err(crate::Error::not_found("message_not_found", "no such message in this room"));
    }
    let tz_name = onboarding::timezone(&app.db, user_id).await?;
    let tz = Tz::from_str(&tz_name).unwrap_or(Tz::UTC);
    let now = app.clock.now();
    let when = when.map(str::trim).filter(|w| !w.is_empty());
    let parsed = match when {
        Some(when) => parse::parse_parts(text, when, tz, now),
        None => parse::parse(&format!("remind me {text}"), tz, now),
    };
    let parsed = parsed.map_err(|e| {
        let field = if when.is_none() || e == parse::ParseError::NoText { "text" } else { "when" };
        crate::Error::invalid_field(field, e.to_string())
    })?;
    let reminder = store(app, user_id, room_id, None, about, &parsed.text, parsed.due_at).await?;
    Ok((reminder, tz_name))
}

async fn store(
    app: &App,
    user_id: Uuid,
    room_id: Uuid,
    source_message_id: Option<Uuid>,
    about: Option<Uuid>,
    text: &str,
    due_at: DateTime<Utc>,
) -> crate::Result<Reminder> {
    let soon = due_at - app.clock.now() <= chrono::Duration::from_std(MAX_QUEUE_DELAY).expect("15 minutes");
    let (reminder, new) =
        reminders::create(&app.db, &app.keyring, user_id, room_id, source_message_id, about, text, due_at, soon)
            .await?;
    if new && soon {
        queue(app, reminder.id, due_at).await?;
    }
    Ok(reminder)
}

/// The `reminders` queue's handler: delivers once, however often the job arrives.
#[tracing::instrument(skip_all, fields(reminder_id = %job.reminder_id))]
pub async fn deliver(app: &App, job: ReminderJob) -> crate::Result<()> {
    let now = app.clock.now();
    let Some(reminder) = reminders::mark_delivered(&app.db, &app.keyring, job.reminder_id, now).await? else {
        // Delivered or cancelled already — or early (a clipped delay): then wait some more.
        if let Some((status, due_at)) = reminders::status_and_due(&app.db, job.reminder_id).await?
            && status == "queued"
            && due_at > now
        {
            queue(app, job.reminder_id, due_at).await?;
        }
        return Ok(());
    };
    let seen = push_to_user(app, reminder.user_id, &notice(&reminder)).await;
    if seen {
        reminders::mark_notified(&app.db, reminder.id).await?;
    }
    let name = crate::adapters::postgres::users::by_id(&app.db, reminder.user_id)
        .await?
        .map(|u| u.display_name)
        .unwrap_or_default();
    // A muted person's reminder reaches them, not the room: it would speak for them.
    if crate::adapters::postgres::moderation::muted_until(&app.db, reminder.room_id, reminder.user_id, now)
        .await?
        .is_some()
    {
        tracing::info!("reminder kept from the room: its owner is muted there");
        return Ok(());
    }
    let body = format!("⏰ Reminder for {name}: {}", reminder.text);
    post_system_message(app, reminder.room_id, &body).await?;
    tracing::info!(seen, "reminder delivered");
    Ok(())
}

/// The scheduler's sweep: queues reminders that came within the queue's delay range.
pub async fn sweep(app: &App) -> crate::Result<usize> {
    let horizon = app.clock.now() + chrono::Duration::from_std(MAX_QUEUE_DELAY).expect("15 minutes");
    let due = reminders::claim_due(&app.db, horizon).await?;
    for (id, due_at) in &due {
        queue(app, *id, *due_at).await?;
    }
    Ok(due.len())
}

/// Shows reminders that came due while the person was offline (on their first join).
pub async fn deliver_missed(app: &App, user_id: Uuid, connection: &ConnectionId, endpoint: Option<&str>) {
    match reminders::take_unseen(&app.db, &app.keyring, user_id).await {
        Ok(missed) => {
            for r in missed {
                send_event(app, crate::ports::Recipient { id: connection, endpoint }, &notice(&r)).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read missed reminders"),
    }
}

/// The intent router's reminder connector.
pub struct ReminderConnector;

#[async_trait]
impl Connector for ReminderConnector {
    fn name(&self) -> &'static str {
        "reminders"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::SetReminder]
    }

    async fn answer(&self, ctx: &Ctx<'_>) -> crate::Result<Answer> {
        let tz_name = onboarding::timezone(&ctx.app.db, ctx.asker_id).await?;
        let tz = Tz::from_str(&tz_name).unwrap_or(Tz::UTC);
        let now = ctx.app.clock.now();
        let parsed = match parse::parse(ctx.request, tz, now) {
            Ok(p) => p,
            Err(e) => return Ok(Answer::Reply(format!("⏰ {e}"))),
        };
        let reminder =
            set(ctx.app, ctx.asker_id, ctx.room_id, Some(ctx.trigger.id), &parsed.text, parsed.due_at).await?;
        let local = reminder.due_at.with_timezone(&tz);
        Ok(Answer::Reply(format!(
            "⏰ I'll remind you to {} on {} ({tz_name}).",
            reminder.text,
            local.format("%A %-d %B at %H:%M")
        )))
    }
}
