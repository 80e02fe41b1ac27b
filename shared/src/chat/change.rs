//! Changing what was said: `edit_message` and `delete_message` (the author; a delete by the
//! room's moderator too; a deleted message's attachment is deleted with it) and `react` (any
//! member). Edits and reactions are refused while muted and count against the per-person
//! message rate limit (each is an event to the whole room); a person's reactions on a message,
//! and the emoji on a message, are capped so that no message (and no page or event carrying it)
//! can grow without bound.

use uuid::Uuid;

use super::{AfterStore, post::rate_limit};
use crate::{
    access,
    adapters::postgres::{
        files,
        messages::{self, Reacted},
    },
    app::App,
    domain::MessageBody,
    error::Error,
    protocol::ServerEvent,
    realtime::push_to_room,
};

/// Emoji reactions: one grapheme-ish token, a few characters at most.
const MAX_EMOJI_BYTES: usize = 32;
/// How many reactions one person may put on one message.
pub const MAX_REACTIONS_PER_PERSON: i64 = 20;
/// How many different emoji one message may carry.
pub const MAX_EMOJI_PER_MESSAGE: i64 = 50;
/// How many reactions one message may carry in all: each lists its person's id in every event
/// and page carrying the message, so this keeps one message far below the frame limit
/// (1,000 ids ≈ 39 KB, next to a body of at most 4,000 characters).
pub const MAX_REACTIONS_PER_MESSAGE: i64 = 1000;

/// The author of a live message of the room, or `not_found`.
async fn author_of(app: &App, room_id: Uuid, message_id: Uuid) -> crate::Result<Option<Uuid>> {
    messages::author_of(&app.db, room_id, message_id)
        .await?
        .ok_or_else(|| Error::not_found("not_found", "no such message in this room"))
}

/// Runs every step's `after_edit` / `after_delete`, each whatever the others did.
async fn run_steps(app: &App, message: &crate::domain::Message, steps: &[&dyn AfterStore], deleted: bool) {
    for step in steps {
        let done = if deleted { step.after_delete(app, message).await } else { step.after_edit(app, message).await };
        if done.is_err() {
            tracing::warn!(step = step.name(), deleted, "a step after a change failed");
        }
    }
}

pub async fn edit(
    app: &App,
    user_id: Uuid,
    room_id: Uuid,
    message_id: Uuid,
    body: &str,
    steps: &[&dyn AfterStore],
) -> crate::Result<()> {
    let body = MessageBody::parse(body)?;
    access::require_speaker(app, room_id, user_id).await?;
    if author_of(app, room_id, message_id).await? != Some(user_id) {
        return Err(Error::forbidden("forbidden", "you can only edit your own messages"));
    }
    rate_limit(app, user_id, app.clock.now()).await?;
    let in_order = app.room_order.lock(room_id).await;
    messages::edit(&app.db, &app.keyring, room_id, message_id, body.as_str(), app.clock.now()).await?;
    let message = messages::get(&app.db, &app.keyring, room_id, message_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("an edited message vanished")))?;
    push_to_room(app, room_id, &ServerEvent::MessageEdited { room_id, message: message.clone() }, None).await;
    drop(in_order);
    run_steps(app, &message, steps, false).await;
    Ok(())
}

/// Deletes a message. Muted people may still delete their own messages (it only removes).
pub async fn delete(
    app: &App,
    user_id: Uuid,
    room_id: Uuid,
    message_id: Uuid,
    steps: &[&dyn AfterStore],
) -> crate::Result<()> {
    access::require_member(app, room_id, user_id).await?;
    let author = author_of(app, room_id, message_id).await?;
    if author != Some(user_id) && !access::in_room_workspace(app, room_id, user_id).await?.may_moderate() {
        return Err(Error::forbidden("forbidden", "you can only delete your own messages"));
    }
    let in_order = app.room_order.lock(room_id).await;
    // Read before it goes: the steps (moderation) judge what was said.
    let before = messages::get(&app.db, &app.keyring, room_id, message_id).await?;
    if messages::delete(&app.db, room_id, message_id, app.clock.now()).await? {
        // Its attachment goes with it: no link is handed out any more, and the bytes are removed.
        if let Some(file_id) = files::take_attachment_of(&app.db, room_id, message_id).await?
            && let Err(e) = app.files.delete(file_id).await
        {
            tracing::warn!(%file_id, error = %e, "a deleted message's file could not be removed from the store");
        }
        push_to_room(app, room_id, &ServerEvent::MessageDeleted { room_id, message_id }, None).await;
        // A deleted message is not pinned any more.
        if let Err(e) = super::pins::unpin_deleted(app, room_id, message_id).await {
            tracing::warn!(%message_id, error = %e, "a deleted message's pin could not be removed");
        }
        drop(in_order);
        if let Some(message) = before {
            run_steps(app, &message, steps, true).await;
        }
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
    access::require_speaker(app, room_id, user_id).await?;
    author_of(app, room_id, message_id).await?;
    rate_limit(app, user_id, app.clock.now()).await?;
    let limits = (MAX_REACTIONS_PER_PERSON, MAX_EMOJI_PER_MESSAGE, MAX_REACTIONS_PER_MESSAGE);
    let reactions = match messages::react(&app.db, message_id, user_id, emoji, on, limits).await? {
        Reacted::Done(reactions) => reactions,
        Reacted::TooManyOfYours => {
            return Err(Error::Conflict {
                code: "too_many_reactions",
                message: format!("at most {MAX_REACTIONS_PER_PERSON} reactions of yours on one message"),
            });
        }
        Reacted::TooManyEmoji => {
            return Err(Error::Conflict {
                code: "too_many_reactions",
                message: format!("at most {MAX_EMOJI_PER_MESSAGE} different emoji on one message"),
            });
        }
        Reacted::TooManyInAll => {
            return Err(Error::Conflict {
                code: "too_many_reactions",
                message: format!("at most {MAX_REACTIONS_PER_MESSAGE} reactions on one message"),
            });
        }
    };
    let event = ServerEvent::Reaction { room_id, message_id, user_id, emoji: emoji.to_owned(), on, reactions };
    push_to_room(app, room_id, &event, None).await;
    Ok(())
}
