//! Read markers: how far a person has read each room (`mark_read`, on the socket or over HTTP).
//! A marker only moves forward, never past the room's last message, and only for a member; when
//! it moves, every connection of the person gets `read_marker` with the new counts, so two
//! devices agree. Reading is not speaking: a muted member may mark a room read.

use std::time::Duration;

use uuid::Uuid;

use crate::{
    access,
    adapters::{
        postgres::attention::{self, Standing},
        redis::RateDecision,
    },
    app::App,
    error::Error,
    protocol::ServerEvent,
    realtime::push_to_user,
};

/// How many `mark_read`s a person may send a minute, per message they may send (a client marks
/// as it scrolls, so this is above the message limit and counted apart from it: 120 by default).
pub const MARKS_PER_MESSAGE: u32 = 4;
const WINDOW: Duration = Duration::from_secs(60);

/// Moves the person's marker in the room forward to `seq`; answers where they stand after.
pub async fn mark_read(app: &App, user_id: Uuid, room_id: Uuid, seq: i64) -> crate::Result<Standing> {
    if seq < 0 {
        return Err(Error::invalid_field("seq", "seq must be 0 or more"));
    }
    access::require_member(app, room_id, user_id).await?;
    rate_limit(app, user_id).await?;
    let before = attention::standing(&app.db, user_id, room_id).await?.ok_or_else(Error::not_member)?;
    if seq <= before.last_read_seq || attention::advance(&app.db, user_id, room_id, seq).await?.is_none() {
        return Ok(before);
    }
    let after = attention::standing(&app.db, user_id, room_id).await?.ok_or_else(Error::not_member)?;
    let event = ServerEvent::ReadMarker {
        room_id,
        seq: after.last_read_seq,
        unread_count: after.unread_count,
        mention_count: after.mention_count,
    };
    push_to_user(app, user_id, &event).await;
    Ok(after)
}

/// The per-person limiter of messages, with its own subject and budget. Losing Redis must not
/// stop reading.
async fn rate_limit(app: &App, user_id: Uuid) -> crate::Result<()> {
    let now = app.clock.now().timestamp_millis();
    let event_id = Uuid::new_v4().to_string();
    let limit = app.config.rate_limit_per_min.saturating_mul(MARKS_PER_MESSAGE);
    match app.redis.rate_limit(&format!("read:{user_id}"), now, WINDOW, limit, &event_id).await {
        Ok(RateDecision::Allowed) => Ok(()),
        Ok(RateDecision::Limited { retry_after_ms }) => Err(Error::RateLimited {
            retry_after: Duration::from_millis(retry_after_ms),
            message: format!("at most {limit} read markers a minute; wait a moment"),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "read marker rate limit skipped");
            Ok(())
        }
    }
}
