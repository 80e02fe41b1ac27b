//! Direct messages (`POST /api/dms`), the people of a workspace one may message, and a room's
//! pins (`GET /api/rooms/{id}/pins`; pinning itself is a socket action).

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::ApiResult,
    extract::{AuthUser, Json, Path},
};
use crate::{
    access,
    adapters::postgres::workspaces,
    app::App,
    domain::{Author, Message, Room},
};

#[derive(Deserialize)]
pub struct OpenDm {
    user_id: Uuid,
    workspace_id: Option<Uuid>,
}

#[utoipa::path(post, path = "/api/dms", tag = "rooms",
    responses((status = 201, description = "`room` (kind `dm`, with `peer`): created"),
              (status = 200, description = "`room`: the pair's existing DM"),
              (status = 400, description = "`bad_request` (`field: user_id`): yourself"),
              (status = 403, description = "`not_workspace_member`"),
              (status = 404, description = "`user_not_found`: nobody of that id in the workspace")))]
pub async fn open(
    State(app): State<App>,
    auth: AuthUser,
    Json(body): Json<OpenDm>,
) -> ApiResult<(StatusCode, Json<Room>)> {
    auth.require_onboarded()?;
    let (room, created) = crate::chat::dms::open(&app, auth.user.id, body.user_id, body.workspace_id).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(room)))
}

#[utoipa::path(get, path = "/api/workspaces/{id}/members", tag = "rooms", params(("id" = String, Path, description = "workspace id")),
    responses((status = 200, description = "`[{id, display_name}]`"), (status = 403, description = "`not_workspace_member`")))]
pub async fn members(
    State(app): State<App>,
    auth: AuthUser,
    Path(workspace_id): Path<Uuid>,
) -> ApiResult<Json<Vec<Author>>> {
    access::workspace_role(&app, workspace_id, auth.user.id).await?;
    Ok(Json(workspaces::members(&app.db, workspace_id).await?))
}

#[utoipa::path(get, path = "/api/rooms/{id}/pins", tag = "rooms", params(("id" = String, Path, description = "room id")),
    responses((status = 200, description = "`[message]` pinned, newest pin first, each with `pinned: {by, at}`"),
              (status = 403, description = "`not_member`"), (status = 404, description = "`room_not_found`")))]
pub async fn pins(State(app): State<App>, auth: AuthUser, Path(room_id): Path<Uuid>) -> ApiResult<Json<Vec<Message>>> {
    Ok(Json(crate::chat::pins::list(&app, auth.user.id, room_id).await?))
}
