//! Rooms, membership, history and invites.

use axum::{extract::State, http::StatusCode};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Path, Query},
};
use crate::{
    adapters::postgres::{
        invites::{self, Accepted},
        messages::{self, Cursor},
        rooms,
    },
    app::App,
    domain::{Room, RoomName},
    realtime::announce_if_gone,
};

#[utoipa::path(get, path = "/api/rooms", tag = "rooms", responses((status = 200, description = "`[room]`")))]
pub async fn list(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Vec<Room>>> {
    Ok(Json(rooms::of_user(&app.db, auth.user.id).await?))
}

#[derive(Deserialize)]
pub struct CreateRoom {
    name: String,
    workspace_id: Option<Uuid>,
}

#[utoipa::path(post, path = "/api/rooms", tag = "rooms",
    responses((status = 201, description = "`room`"), (status = 400, description = "bad name")))]
pub async fn create(
    State(app): State<App>,
    auth: AuthUser,
    Json(body): Json<CreateRoom>,
) -> ApiResult<(StatusCode, Json<Room>)> {
    auth.require_onboarded()?;
    let name = RoomName::parse(&body.name)?;
    let room = crate::chat::rooms::create(&app, auth.user.id, body.workspace_id, &name).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// The room, when the user is a member; 404 when it does not exist, 403 when not theirs.
async fn member_room(app: &App, room_id: Uuid, user_id: Uuid) -> ApiResult<Room> {
    Ok(crate::access::member_room(app, room_id, user_id).await?)
}

#[utoipa::path(post, path = "/api/rooms/{id}/join", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 200, description = "`room`"), (status = 403, description = "`invite_required`")))]
pub async fn join(State(app): State<App>, auth: AuthUser, Path(room_id): Path<Uuid>) -> ApiResult<Json<Room>> {
    auth.require_onboarded()?;
    let room =
        rooms::get(&app.db, room_id).await?.ok_or_else(|| ApiError::not_found("room_not_found", "no such room"))?;
    if !rooms::join_within_workspace(&app.db, room_id, auth.user.id).await? {
        return Err(ApiError::forbidden("invite_required", "this room is private: ask a member for an invite"));
    }
    Ok(Json(room))
}

#[utoipa::path(method(post, delete), path = "/api/rooms/{id}/leave", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 204, description = "left"), (status = 403, description = "`not_member`")))]
pub async fn leave(State(app): State<App>, auth: AuthUser, Path(room_id): Path<Uuid>) -> ApiResult<StatusCode> {
    if !rooms::remove_member(&app.db, room_id, auth.user.id).await? {
        return Err(ApiError::not_member());
    }
    // The user's open sockets stop receiving the room at once.
    let connections = app.connections.of_user(auth.user.id).await.unwrap_or_default();
    let mut was_present = false;
    for c in connections.iter().filter(|c| c.rooms.contains(&room_id)) {
        was_present = true;
        let _ = app.connections.leave(&c.id, room_id).await;
    }
    if was_present {
        announce_if_gone(&app, room_id, auth.user.id, &auth.user.display_name).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<Uuid>,
    after: Option<Uuid>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "rooms",
    params(("id" = String, Path, description = "room id"), ("before" = Option<String>, Query, description = "a message id"),
           ("after" = Option<String>, Query, description = "a message id"), ("limit" = Option<i64>, Query, description = "1..100")),
    responses((status = 200, description = "`{messages, next_before, next_after}`"), (status = 403, description = "`not_member`")))]
pub async fn history(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    member_room(&app, room_id, auth.user.id).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError { field: Some("limit"), ..ApiError::bad_request("limit must be between 1 and 100") });
    }
    let seq_of = |id: Uuid, field: &'static str| {
        let app = app.clone();
        async move {
            messages::seq_of(&app.db, room_id, id)
                .await?
                .ok_or(ApiError { field: Some(field), ..ApiError::bad_request("no such message in this room") })
        }
    };
    let cursor = match (q.before, q.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give `before` or `after`, not both"));
        }
        (Some(id), None) => Cursor::Before(seq_of(id, "before").await?),
        (None, Some(id)) => Cursor::After(seq_of(id, "after").await?),
        (None, None) => Cursor::Latest,
    };
    let page = messages::page(&app.db, &app.keyring, room_id, cursor, limit).await?;
    let (next_before, next_after) = match cursor {
        Cursor::After(_) => (None, page.more.then(|| page.messages.last().map(|m| m.id)).flatten()),
        _ => (page.more.then(|| page.messages.first().map(|m| m.id)).flatten(), None),
    };
    Ok(Json(json!({ "messages": page.messages, "next_before": next_before, "next_after": next_after })))
}

#[derive(Deserialize, Default)]
pub struct CreateInvite {
    max_uses: Option<i32>,
    expires_in_s: Option<i64>,
}

/// Invites last a week unless told otherwise.
const DEFAULT_INVITE_TTL_S: i64 = 7 * 24 * 3600;

#[utoipa::path(post, path = "/api/rooms/{id}/invites", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 201, description = "`{code, expires_at, max_uses}`")))]
pub async fn create_invite(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    raw: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require_onboarded()?;
    member_room(&app, room_id, auth.user.id).await?;
    // The body is optional: no body means the defaults.
    let body: CreateInvite = if raw.iter().all(u8::is_ascii_whitespace) {
        CreateInvite::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    if let Some(n) = body.max_uses
        && !(1..=10_000).contains(&n)
    {
        return Err(ApiError {
            field: Some("max_uses"),
            ..ApiError::bad_request("max_uses must be between 1 and 10000")
        });
    }
    let ttl = body.expires_in_s.unwrap_or(DEFAULT_INVITE_TTL_S);
    if !(1..=90 * 24 * 3600).contains(&ttl) {
        return Err(ApiError {
            field: Some("expires_in_s"),
            ..ApiError::bad_request("expires_in_s must be between 1 second and 90 days")
        });
    }
    let code = crate::tokens::random_token();
    let expires_at = app.clock.now() + Duration::seconds(ttl);
    invites::create(&app.db, &code, room_id, auth.user.id, body.max_uses, Some(expires_at)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "code": code, "expires_at": expires_at, "max_uses": body.max_uses }))))
}

#[utoipa::path(post, path = "/api/invites/{code}/accept", tag = "rooms", params(("code" = String, Path, description = "invite code")),
    responses((status = 200, description = "`room`"), (status = 404, description = "`invite_not_found`"),
              (status = 409, description = "`invite_expired` or `invite_used_up`")))]
pub async fn accept_invite(State(app): State<App>, auth: AuthUser, Path(code): Path<String>) -> ApiResult<Json<Room>> {
    auth.require_onboarded()?;
    if code.len() > 128 {
        return Err(ApiError::not_found("invite_not_found", "no such invite"));
    }
    match invites::accept(&app.db, &code, auth.user.id, app.clock.now()).await? {
        Accepted::Room(room_id) => {
            let room = rooms::get(&app.db, room_id).await?.ok_or_else(ApiError::internal)?;
            Ok(Json(room))
        }
        Accepted::Unknown => Err(ApiError::not_found("invite_not_found", "no such invite")),
        Accepted::Expired => Err(ApiError::conflict("invite_expired", "this invite has expired; ask for a new one")),
        Accepted::UsedUp => {
            Err(ApiError::conflict("invite_used_up", "this invite has been used up; ask for a new one"))
        }
    }
}
