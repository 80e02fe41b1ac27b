//! Pins: any member who is not muted pins or unpins a message of the room; the room hears
//! `message_pinned` / `message_unpinned`. A room holds at most [`MAX_PINS_PER_ROOM`] pins, a
//! deleted message loses its pin (`change::delete`), and pinning counts against the per-person
//! message rate limit like reactions. Pinning twice, or unpinning what is not pinned, changes
//! nothing and tells nobody.

use uuid::Uuid;

use super::post::rate_limit;
use crate::{
    access,
    adapters::postgres::{
        messages,
        pins::{self, Pinned as Outcome},
    },
    app::App,
    domain::Message,
    error::Error,
    protocol::ServerEvent,
    realtime::push_to_room,
};

/// How many messages one room may have pinned.
pub const MAX_PINS_PER_ROOM: i64 = 50;

fn no_message() -> Error {
    Error::not_found("not_found", "no such message in this room")
}

pub async fn pin(app: &App, user_id: Uuid, room_id: Uuid, message_id: Uuid) -> crate::Result<()> {
    access::require_speaker(app, room_id, user_id).await?;
    messages::author_of(&app.db, room_id, message_id).await?.ok_or_else(no_message)?;
    rate_limit(app, user_id, app.clock.now()).await?;
    let in_order = app.room_order.lock(room_id).await;
    match pins::pin(&app.db, room_id, message_id, user_id, app.clock.now(), MAX_PINS_PER_ROOM).await? {
        Outcome::New => {}
        Outcome::Already => return Ok(()),
        Outcome::NoMessage => return Err(no_message()),
        Outcome::Full => {
            return Err(Error::conflict(
                "too_many_pins",
                format!("a room holds at most {MAX_PINS_PER_ROOM} pins; unpin one first"),
            ));
        }
    }
    let message = messages::get(&app.db, &app.keyring, room_id, message_id).await?.ok_or_else(no_message)?;
    let pinned = message.pinned.clone().ok_or_else(|| Error::internal(anyhow::anyhow!("a pin vanished")))?;
    push_to_room(app, room_id, &ServerEvent::MessagePinned { room_id, message_id, pinned, message }, None).await;
    drop(in_order);
    Ok(())
}

pub async fn unpin(app: &App, user_id: Uuid, room_id: Uuid, message_id: Uuid) -> crate::Result<()> {
    access::require_speaker(app, room_id, user_id).await?;
    messages::seq_of(&app.db, room_id, message_id).await?.ok_or_else(no_message)?;
    rate_limit(app, user_id, app.clock.now()).await?;
    let in_order = app.room_order.lock(room_id).await;
    if pins::unpin(&app.db, room_id, message_id).await? {
        push_to_room(app, room_id, &ServerEvent::MessageUnpinned { room_id, message_id }, None).await;
    }
    drop(in_order);
    Ok(())
}

/// A deleted message loses its pin; the room hears it. Called with the room's turn held.
pub async fn unpin_deleted(app: &App, room_id: Uuid, message_id: Uuid) -> crate::Result<()> {
    if pins::unpin(&app.db, room_id, message_id).await? {
        push_to_room(app, room_id, &ServerEvent::MessageUnpinned { room_id, message_id }, None).await;
    }
    Ok(())
}

/// The room's pinned messages, newest pin first (members only).
pub async fn list(app: &App, user_id: Uuid, room_id: Uuid) -> crate::Result<Vec<Message>> {
    access::member_room(app, room_id, user_id).await?;
    let ids = pins::of_room(&app.db, room_id).await?;
    messages::some_of(&app.db, &app.keyring, room_id, &ids).await
}
