//! The owner's view of a room's moderation: recent flags, active mutes, and unmute.

use axum::{extract::State, http::StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Path},
};
use crate::{access, adapters::postgres::moderation, app::App};

/// Only the owner of the room's workspace moderates it.
async fn require_owner(app: &App, room_id: Uuid, user_id: Uuid) -> ApiResult<()> {
    Ok(access::require_moderator(app, room_id, user_id).await?)
}

#[utoipa::path(get, path = "/api/rooms/{id}/moderation", tag = "moderation", params(("id" = String, Path, description = "room id")),
    responses((status = 200, description = "`{flags, mutes}`"), (status = 403, description = "`owner_only`")))]
pub async fn overview(State(app): State<App>, auth: AuthUser, Path(room_id): Path<Uuid>) -> ApiResult<Json<Value>> {
    require_owner(&app, room_id, auth.user.id).await?;
    let flags = moderation::recent_flags(&app.db, room_id).await?;
    let mutes = moderation::active_mutes(&app.db, room_id, app.clock.now()).await?;
    Ok(Json(json!({ "flags": flags, "mutes": mutes })))
}

#[utoipa::path(delete, path = "/api/rooms/{id}/mutes/{user_id}", tag = "moderation",
    params(("id" = String, Path, description = "room id"), ("user_id" = String, Path, description = "the muted person")),
    responses((status = 204, description = "unmuted; the room hears `unmuted`"), (status = 404, description = "`not_muted`")))]
pub async fn unmute(
    State(app): State<App>,
    auth: AuthUser,
    Path((room_id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    require_owner(&app, room_id, auth.user.id).await?;
    if !moderation::lift(&app.db, room_id, user_id, app.clock.now()).await? {
        return Err(ApiError::not_found("not_muted", "that person is not muted here"));
    }
    crate::moderation::announce_unmuted(&app, room_id, user_id).await;
    Ok(StatusCode::NO_CONTENT)
}
