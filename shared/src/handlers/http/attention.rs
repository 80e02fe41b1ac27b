//! Attention over HTTP: a room's members (for `@` mentions), moving your read marker, and
//! "Catch me up". The room list's counts are in `rooms::list`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    error::ApiResult,
    extract::{AuthUser, Json, Path},
};
use crate::{
    adapters::postgres::{attention::Standing, rooms},
    ai::catch_up::{CatchUp, catch_up as summarise},
    app::App,
    domain::Author,
};

#[utoipa::path(get, path = "/api/rooms/{id}/members", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 200, description = "`[{id, display_name}]`, by name"), (status = 403, description = "`not_member`")))]
pub async fn members(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
) -> ApiResult<Json<Vec<Author>>> {
    crate::access::member_room(&app, room_id, auth.user.id).await?;
    Ok(Json(rooms::members(&app.db, room_id).await?))
}

#[derive(Deserialize)]
pub struct MarkRead {
    seq: i64,
}

/// Where you stand in a room.
#[derive(Serialize)]
pub struct ReadState {
    room_id: Uuid,
    last_read_seq: i64,
    unread_count: i64,
    mention_count: i64,
}

impl From<Standing> for ReadState {
    fn from(s: Standing) -> Self {
        Self {
            room_id: s.room_id,
            last_read_seq: s.last_read_seq,
            unread_count: s.unread_count,
            mention_count: s.mention_count,
        }
    }
}

#[utoipa::path(post, path = "/api/rooms/{id}/read", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 200, description = "`{room_id, last_read_seq, unread_count, mention_count}`; the marker only moves forward"),
              (status = 400, description = "bad `seq`"), (status = 403, description = "`not_member`"),
              (status = 429, description = "`rate_limited`")))]
pub async fn mark_read(
    State(app): State<App>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    Json(body): Json<MarkRead>,
) -> ApiResult<Json<ReadState>> {
    Ok(Json(crate::chat::read::mark_read(&app, auth.user.id, room_id, body.seq).await?.into()))
}

#[utoipa::path(post, path = "/api/rooms/{id}/catch-up", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 200, description = "`{room_id, since_seq, until_seq, message_count, source, summary}`, for you alone"),
              (status = 403, description = "`not_member`"), (status = 429, description = "`rate_limited`")))]
pub async fn catch_up(State(app): State<App>, auth: AuthUser, Path(room_id): Path<Uuid>) -> ApiResult<Json<CatchUp>> {
    Ok(Json(summarise(&app, auth.user.id, &auth.user.display_name, room_id).await?))
}
