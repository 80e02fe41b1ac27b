//! Rooms, membership, history and invites.

use axum::{extract::State, http::StatusCode};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Path, Query},
};
use crate::{
    adapters::postgres::{
        attention,
        invites::{self, Accepted},
        messages::{self, Cursor},
        rooms,
    },
    app::App,
    domain::{Invalid, Room, RoomKind, RoomName, Visibility},
};

/// A room in your list, with where you stand in it.
#[derive(Serialize)]
pub struct ListedRoom {
    #[serde(flatten)]
    room: Room,
    last_read_seq: i64,
    unread_count: i64,
    mention_count: i64,
    /// The newest message the counts cover.
    counted_to_seq: i64,
}

#[utoipa::path(get, path = "/api/rooms", tag = "rooms",
    responses((status = 200, description = "`[room]`, each with `last_read_seq`, `unread_count`, `mention_count`, `counted_to_seq`")))]
pub async fn list(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Vec<ListedRoom>>> {
    let list = rooms::of_user(&app.db, auth.user.id).await?;
    let mut standings = attention::standings(&app.db, auth.user.id).await?;
    Ok(Json(
        list.into_iter()
            .map(|room| {
                let s = standings.remove(&room.id);
                ListedRoom {
                    last_read_seq: s.map_or(0, |s| s.last_read_seq),
                    unread_count: s.map_or(0, |s| s.unread_count),
                    mention_count: s.map_or(0, |s| s.mention_count),
                    counted_to_seq: s.map_or(0, |s| s.counted_to_seq),
                    room,
                }
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
pub struct CreateRoom {
    name: String,
    workspace_id: Option<Uuid>,
    /// `public` or `private` (the default): see `Visibility`.
    visibility: Option<String>,
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
    // A new room is invite-only unless its creator opens it to the workspace.
    let visibility = match body.visibility.as_deref() {
        None | Some("private") => Visibility::Private,
        Some("public") => Visibility::Public,
        Some(_) => {
            return Err(Invalid::new("visibility", "visibility must be \"public\" or \"private\"").into());
        }
    };
    let room = crate::chat::rooms::create(&app, auth.user.id, body.workspace_id, &name, visibility).await?;
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
    let room = rooms::get_for(&app.db, room_id, auth.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("room_not_found", "no such room"))?;
    if room.kind == RoomKind::Dm {
        // Only its two people are in a DM; anyone else is told no more than about a private room.
        crate::access::require_member(&app, room_id, auth.user.id).await?;
        return Ok(Json(room));
    }
    if !rooms::join_within_workspace(&app.db, room_id, auth.user.id).await? {
        return Err(ApiError::forbidden("invite_required", "this room is private: ask a member for an invite"));
    }
    Ok(Json(room))
}

#[utoipa::path(method(post, delete), path = "/api/rooms/{id}/leave", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 204, description = "left"), (status = 403, description = "`not_member`")))]
pub async fn leave(State(app): State<App>, auth: AuthUser, Path(room_id): Path<Uuid>) -> ApiResult<StatusCode> {
    crate::chat::dms::refuse_if_dm(&app, room_id, auth.user.id, "it cannot be left").await?;
    // The user's open sockets stop receiving the room at once.
    if !crate::chat::rooms::drop_member(&app, room_id, auth.user.id, &auth.user.display_name).await? {
        return Err(ApiError::not_member());
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/rooms/{id}/members/{user_id}", tag = "rooms",
    params(("id" = String, Path, description = "room id"), ("user_id" = String, Path, description = "the member to remove")),
    responses((status = 204, description = "removed; their sockets stop receiving the room"),
              (status = 403, description = "`owner_only`"), (status = 404, description = "`not_found`: not a member")))]
pub async fn remove_member(
    State(app): State<App>,
    auth: AuthUser,
    Path((room_id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    crate::chat::dms::refuse_if_dm(&app, room_id, auth.user.id, "nobody is removed from it").await?;
    crate::chat::rooms::remove_member(&app, auth.user.id, room_id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<Uuid>,
    after: Option<Uuid>,
    around: Option<Uuid>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "rooms",
    params(("id" = String, Path, description = "room id"), ("before" = Option<String>, Query, description = "a message id"),
           ("after" = Option<String>, Query, description = "a message id"),
           ("around" = Option<String>, Query, description = "a message id: the page holds it, older messages before and newer after"),
           ("limit" = Option<i64>, Query, description = "1..100")),
    responses((status = 200, description = "`{messages, next_before, next_after}`"), (status = 403, description = "`not_member`"),
              (status = 429, description = "`rate_limited`: past the person's history pages a minute")))]
pub async fn history(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    crate::limits::history_page(&app, auth.user.id, app.clock.now()).await?;
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
    if let Some(id) = q.around {
        if q.before.is_some() || q.after.is_some() {
            return Err(ApiError::bad_request("give one of `before`, `after` or `around`"));
        }
        let page = messages::around(&app.db, &app.keyring, room_id, seq_of(id, "around").await?, limit).await?;
        let next_before = page.more_before.then(|| page.messages.first().map(|m| m.id)).flatten();
        let next_after = page.more_after.then(|| page.messages.last().map(|m| m.id)).flatten();
        return Ok(Json(json!({ "messages": page.messages, "next_before": next_before, "next_after": next_after })));
    }
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
    responses((status = 201, description = "`{id, code, expires_at, max_uses}`")))]
pub async fn create_invite(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    raw: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require_onboarded()?;
    member_room(&app, room_id, auth.user.id).await?;
    crate::chat::dms::refuse_if_dm(&app, room_id, auth.user.id, "nobody else is invited").await?;
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
    // Only the code's hash is kept: this answer is the one time the code is shown.
    let id = invites::create(&app.db, &code, room_id, auth.user.id, body.max_uses, Some(expires_at)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "code": code, "expires_at": expires_at, "max_uses": body.max_uses })),
    ))
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
        Accepted::AlreadyUsed => {
            Err(ApiError::conflict("invite_already_used", "you have used this invite before; ask for a new one"))
        }
    }
}

#[utoipa::path(get, path = "/api/invites/{code}", tag = "rooms", params(("code" = String, Path, description = "invite code")),
    responses((status = 200, description = "`{room: {id, name}, workspace: {id, name}, inviter, expires_at, usable}`"),
              (status = 404, description = "`invite_not_found`")))]
pub async fn preview_invite(
    State(app): State<App>,
    auth: AuthUser,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let not_found = || ApiError::not_found("invite_not_found", "no such invite");
    if code.len() > 128 {
        return Err(not_found());
    }
    let p = invites::preview(&app.db, &code).await?.ok_or_else(not_found)?;
    let member = rooms::is_member(&app.db, p.room_id, auth.user.id).await?;
    let expired = p.expires_at.is_some_and(|at| at <= app.clock.now());
    let used_up = p.max_uses.is_some_and(|max| p.uses >= max);
    Ok(Json(json!({
        "room": { "id": p.room_id, "name": p.room_name },
        "workspace": { "id": p.workspace_id, "name": p.workspace_name },
        "inviter": p.inviter.map(|name| json!({ "display_name": name })),
        "expires_at": p.expires_at,
        "member": member,
        "usable": member || !(expired || used_up),
    })))
}

#[utoipa::path(delete, path = "/api/invites/{code}", tag = "rooms", params(("code" = String, Path, description = "invite code, or the invite's id")),
    responses((status = 204, description = "revoked"), (status = 403, description = "`owner_only`"),
              (status = 404, description = "`invite_not_found`")))]
pub async fn revoke_invite(State(app): State<App>, auth: AuthUser, Path(code): Path<String>) -> ApiResult<StatusCode> {
    crate::chat::rooms::revoke_invite(&app, auth.user.id, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
