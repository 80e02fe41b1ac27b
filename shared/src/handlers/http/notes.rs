//! A room's notes (what Mathia remembers for it) and the user's reminders.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Path},
};
use crate::{
    adapters::postgres::{notes, reminders},
    app::App,
    domain::{Invalid, Note, NoteKind, NotePriority},
    protocol::ServerEvent,
    realtime::push_to_room,
};

async fn require_member(app: &App, room_id: Uuid, user_id: Uuid) -> ApiResult<()> {
    crate::access::member_room(app, room_id, user_id).await?;
    Ok(())
}

#[utoipa::path(get, path = "/api/rooms/{id}/notes", tag = "notes", params(("id" = String, Path, description = "room id")),
    responses((status = 200, description = "the room's notes, plus your high-priority notes from other rooms (`shared: true`)"),
              (status = 403, description = "`not_member`")))]
pub async fn list_notes(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
) -> ApiResult<Json<Vec<Note>>> {
    require_member(&app, room_id, auth.user.id).await?;
    Ok(Json(notes::for_room(&app.db, &app.keyring, room_id, auth.user.id).await?))
}

#[derive(Deserialize)]
pub struct NewNote {
    text: String,
    priority: Option<NotePriority>,
    kind: Option<NoteKind>,
}

#[utoipa::path(post, path = "/api/rooms/{id}/notes", tag = "notes", params(("id" = String, Path, description = "room id")),
    responses((status = 201, description = "`note`"), (status = 400, description = "bad text"), (status = 403, description = "`not_member`")))]
pub async fn add_note(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    Json(body): Json<NewNote>,
) -> ApiResult<(StatusCode, Json<Note>)> {
    require_member(&app, room_id, auth.user.id).await?;
    crate::access::require_unmuted(&app, room_id, auth.user.id).await?;
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > crate::domain::NOTE_MAX_CHARS {
        return Err(Invalid::new("text", "must be 1 to 2000 characters").into());
    }
    let note = notes::add(
        &app.db,
        &app.keyring,
        room_id,
        Some(auth.user.id),
        text,
        body.priority.unwrap_or(NotePriority::Normal),
        body.kind.unwrap_or(NoteKind::Reference),
    )
    .await?;
    push_to_room(&app, room_id, &ServerEvent::NoteAdded { room_id, note: note.clone() }, None).await;
    Ok((StatusCode::CREATED, Json(note)))
}

#[utoipa::path(delete, path = "/api/notes/{id}", tag = "notes", params(("id" = String, Path, description = "note id")),
    responses((status = 204, description = "deleted"), (status = 404, description = "`note_not_found`")))]
pub async fn delete_note(State(app): State<App>, auth: AuthUser, Path(note_id): Path<Uuid>) -> ApiResult<StatusCode> {
    // A note of a room you are not in does not exist, as far as you can tell.
    let not_found = || ApiError::not_found("note_not_found", "no such note");
    let room_id = notes::room_of(&app.db, note_id).await?.ok_or_else(not_found)?;
    if !crate::access::is_room_member(&app, room_id, auth.user.id).await? {
        return Err(not_found());
    }
    if notes::delete(&app.db, note_id).await? {
        push_to_room(&app, room_id, &ServerEvent::NoteDeleted { room_id, note_id }, None).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/reminders", tag = "notes",
    responses((status = 200, description = "your reminders (pending, queued and delivered), soonest first")))]
pub async fn list_reminders(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Vec<reminders::Reminder>>> {
    Ok(Json(reminders::of_user(&app.db, &app.keyring, auth.user.id).await?))
}

#[derive(Deserialize)]
pub struct NewReminder {
    room_id: Uuid,
    /// What to be reminded of.
    text: String,
    /// A time phrase read in your profile's timezone: "in 1 hour", "tomorrow at 9am", "on Friday".
    /// Without it, `text` is a whole request, as said to the assistant: "at 5pm to check emails".
    when: Option<String>,
    /// The message the reminder is about (a message of that room).
    message_id: Option<Uuid>,
}

#[derive(serde::Serialize)]
pub struct SetReminder {
    #[serde(flatten)]
    reminder: reminders::Reminder,
    /// The timezone `when` was read in.
    timezone: String,
}

#[utoipa::path(post, path = "/api/reminders", tag = "notes",
    responses((status = 201, description = "`reminder` plus `timezone`: set"),
              (status = 400, description = "`bad_request` with `field`: `when` (no time, past or impossible) or `text`"),
              (status = 403, description = "`not_member`, or `muted` with `until`"),
              (status = 404, description = "`message_not_found`: `message_id` is not a message of that room"),
              (status = 429, description = "`rate_limited` with `Retry-After` (the per-person message limit)")))]
pub async fn add_reminder(
    State(app): State<App>,
    auth: AuthUser,
    Json(body): Json<NewReminder>,
) -> ApiResult<(StatusCode, Json<SetReminder>)> {
    let user_id = auth.user.id;
    crate::access::require_speaker(&app, body.room_id, user_id).await?;
    crate::limits::rate_limit(&app, user_id, app.clock.now()).await?;
    let (reminder, timezone) =
        crate::reminders::request(&app, user_id, body.room_id, &body.text, body.when.as_deref(), body.message_id)
            .await?;
    Ok((StatusCode::CREATED, Json(SetReminder { reminder, timezone })))
}

#[utoipa::path(delete, path = "/api/reminders/{id}", tag = "notes", params(("id" = String, Path, description = "reminder id")),
    responses((status = 204, description = "cancelled; it will never be delivered"), (status = 404, description = "`reminder_not_found`")))]
pub async fn cancel_reminder(State(app): State<App>, auth: AuthUser, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    if reminders::cancel(&app.db, id, auth.user.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("reminder_not_found", "no such upcoming reminder of yours"))
    }
}
