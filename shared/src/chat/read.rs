//! Read markers: how far a person has read each room (`mark_read`, on the socket or over HTTP).
//! A marker only moves forward, never past the room's last message, and only for a member; when
//! it moves, every connection of the person gets `read_marker` with the new counts, so two
//! devices agree. Reading is not speaking: a muted member may mark a room read.

use uuid::Uuid;

use crate::{
    access,
    adapters::postgres::attention::{self, Standing},
    app::App,
    error::Error,
    protocol::ServerEvent,
    realtime::push_to_user,
};

/// How many `mark_read`s a person may send a minute, per message they may send (a client marks
/// as it scrolls, so this is above the message limit and counted apart from it: 120 by default).
pub const MARKS_PER_MESSAGE: u32 = 4;

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
        counted_to_seq: after.counted_to_seq,
    };
    push_to_user(app, user_id, &event).await;
    Ok(after)
}

/// Read markers have a budget of their own, so marking read never uses up someone's messages.
/// Losing Redis must not stop reading.
async fn rate_limit(app: &App, user_id: Uuid) -> crate::Result<()> {
    let limit = app.config.rate_limit_per_min.saturating_mul(MARKS_PER_MESSAGE);
    crate::limits::limit_per_minute(app, "read", "read markers", user_id, app.clock.now(), limit).await
}
