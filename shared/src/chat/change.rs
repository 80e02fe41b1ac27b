//! Changing what was said: `edit_message` and `delete_message` (the author; a delete by the
//! room's moderator too; a deleted message's attachment is deleted with it) and `react` (any
//! member).

use uuid::Uuid;

use crate::{
    access,
    adapters::postgres::{files, messages},
    app::App,
    domain::MessageBody,
    error::Error,
    protocol::ServerEvent,
    realtime::push_to_room,
};

/// Emoji reactions: one grapheme-ish token, a few characters at most.
const MAX_EMOJI_BYTES: usize = 32;

/// The author of a live message of the room, or `not_found`.
async fn author_of(app: &App, room_id: Uuid, message_id: Uuid) -> crate::Result<Option<Uuid>> {
    messages::author_of(&app.db, room_id, message_id)
        .await?
        .ok_or_else(|| Error::not_found("not_found", "no such message in this room"))
}

pub async fn edit(app: &App, user_id: Uuid, room_id: Uuid, message_id: Uuid, body: &str) -> crate::Result<()> {
    let body = MessageBody::parse(body)?;
    access::require_member(app, room_id, user_id).await?;
    if author_of(app, room_id, message_id).await? != Some(user_id) {
        return Err(Error::forbidden("forbidden", "you can only edit your own messages"));
    }
    let _in_order = app.room_order.lock(room_id).await;
    messages::edit(&app.db, &app.keyring, room_id, message_id, body.as_str(), app.clock.now()).await?;
    let message = messages::get(&app.db, &app.keyring, room_id, message_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("an edited message vanished")))?;
    push_to_room(app, room_id, &ServerEvent::MessageEdited { room_id, message }, None).await;
    Ok(())
}

pub async fn delete(app: &App, user_id: Uuid, room_id: Uuid, message_id: Uuid) -> crate::Result<()> {
    access::require_member(app, room_id, user_id).await?;
    let author = author_of(app, room_id, message_id).await?;
    if author != Some(user_id) && !access::in_room_workspace(app, room_id, user_id).await?.may_moderate() {
        return Err(Error::forbidden("forbidden", "you can only delete your own messages"));
    }
    let _in_order = app.room_order.lock(room_id).await;
    if messages::delete(&app.db, room_id, message_id, app.clock.now()).await? {
        // Its attachment goes with it: no link is handed out any more, and the bytes are removed.
        if let Some(file_id) = files::take_attachment_of(&app.db, room_id, message_id).await?
            && let Err(e) = app.files.delete(file_id).await
        {
            tracing::warn!(%file_id, error = %e, "a deleted message's file could not be removed from the store");
        }
        push_to_room(app, room_id, &ServerEvent::MessageDeleted { room_id, message_id }, None).await;
    }
    Ok(())
}

pub async fn react(
    app: &App,
    user_id: Uuid,
    room_id: Uuid,
    message_id: Uuid,
    emoji: &str,
    on: bool,
) -> crate::Result<()> {
    let emoji = emoji.trim();
    if emoji.is_empty() || emoji.len() > MAX_EMOJI_BYTES || emoji.chars().any(char::is_whitespace) {
        return Err(Error::invalid_field("emoji", "emoji: one emoji, please"));
    }
    access::require_member(app, room_id, user_id).await?;
    author_of(app, room_id, message_id).await?;
    let reactions = messages::react(&app.db, message_id, user_id, emoji, on).await?;
    let event = ServerEvent::Reaction { room_id, message_id, user_id, emoji: emoji.to_owned(), on, reactions };
    push_to_room(app, room_id, &event, None).await;
    Ok(())
}
