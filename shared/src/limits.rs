//! The per-person rate limiter (messages, edits, reactions, pins, searches…): a sliding window,
//! one counter per kind of action — in memory in `mathia-local`, the one process every action
//! passes through (`adapters::local::RateWindows`), in Redis where several processes count
//! (the Lambda functions). Losing Redis must not stop the conversation, so the limiter then lets
//! everything through. (Welcome credits per client address are money, and are counted in
//! Postgres with the credit itself: `adapters::postgres::wallet::welcome_in`.)

use std::time::Duration;

use uuid::Uuid;

use crate::{
    adapters::redis::{RateDecision, RedisDown},
    app::App,
    error::Error,
};

const RATE_WINDOW: Duration = Duration::from_secs(60);

/// At most `rate_limit_per_min` messages a minute per person. Losing the limiter must not stop
/// the conversation.
/// Edits and reactions count too (`chat::change`): each is one more event to the whole room.
pub async fn rate_limit(app: &App, user_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> crate::Result<()> {
    per_person_limit(app, "msg", "messages", user_id, now).await
}

/// At most `history_pages_per_minute` pages of history a person reads a minute, `join_room` and
/// `GET /api/rooms/{id}/messages` together: each page is a read and a decryption of up to a
/// page of messages, and one person's loop of them would take the database from everyone.
pub async fn history_page(app: &App, user_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> crate::Result<()> {
    limit_per_minute(app, "pages", "history pages", user_id, now, app.config.history_pages_per_minute).await
}

/// The per-person limiter, at `rate_limit_per_min` a minute, for one kind of action (`counter`
/// keeps kinds apart; `what` names them in the refusal).
pub async fn per_person_limit(
    app: &App,
    counter: &str,
    what: &str,
    user_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::Result<()> {
    limit_per_minute(app, counter, what, user_id, now, app.config.rate_limit_per_min).await
}

/// The per-person limiter at `limit` a minute, for kinds with a budget of their own.
pub async fn limit_per_minute(
    app: &App,
    counter: &str,
    what: &str,
    user_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
) -> crate::Result<()> {
    match count(app, &format!("{counter}:{user_id}"), now, RATE_WINDOW, limit).await {
        Ok(RateDecision::Allowed) => Ok(()),
        Ok(RateDecision::Limited { retry_after_ms }) => Err(Error::RateLimited {
            retry_after: Duration::from_millis(retry_after_ms),
            message: format!("at most {limit} {what} a minute; wait a moment"),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "rate limit skipped");
            Ok(())
        }
    }
}

/// Counts one event of `subject` against `limit` per `window`, where this deployment counts:
/// in this process's memory when it is the only one, in Redis otherwise. A refused event is
/// not counted.
async fn count(
    app: &App,
    subject: &str,
    now: chrono::DateTime<chrono::Utc>,
    window: Duration,
    limit: u32,
) -> Result<RateDecision, RedisDown> {
    match &app.rate_windows {
        Some(windows) => Ok(windows.check(subject, now.timestamp_millis(), window, limit)),
        None => {
            let event_id = Uuid::new_v4().to_string();
            app.redis.rate_limit(subject, now.timestamp_millis(), window, limit, &event_id).await
        }
    }
}
