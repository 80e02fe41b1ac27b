//! A workspace's MCP servers (its owner's to manage), and Mathia's own MCP server at `/mcp`.

use axum::{extract::State, http::StatusCode};
use uuid::Uuid;

use super::{
    error::ApiResult,
    extract::{AuthUser, Json, Path},
};
use crate::{
    adapters::postgres::mcp_servers::Server,
    app::App,
    mcp::{self, Registration},
};

pub mod server;

#[utoipa::path(get, path = "/api/workspaces/{id}/mcp-servers", tag = "mcp", params(("id" = String, Path, description = "workspace id")),
    responses((status = 200, description = "`[{id, name, url, has_token, allowed_tools, timeout_ms, created_by, created_at}]`: never a token"),
              (status = 403, description = "`owner_only`, `not_workspace_member`")))]
pub async fn list(State(app): State<App>, auth: AuthUser, Path(id): Path<Uuid>) -> ApiResult<Json<Vec<Server>>> {
    Ok(Json(mcp::list(&app, auth.user.id, id).await?))
}

#[utoipa::path(post, path = "/api/workspaces/{id}/mcp-servers", tag = "mcp", params(("id" = String, Path, description = "workspace id")),
    responses((status = 201, description = "the server, as listed"),
              (status = 400, description = "`bad_request` with the `field`: name, url, token, allowed_tools or timeout_ms"),
              (status = 403, description = "`owner_only`, `not_workspace_member`"),
              (status = 409, description = "`mcp_server_name_taken`, `mcp_servers_full`"),
              (status = 429, description = "`rate_limited`")))]
pub async fn register(
    State(app): State<App>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<Registration>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    Ok((StatusCode::CREATED, Json(mcp::register(&app, auth.user.id, id, &body).await?)))
}

#[utoipa::path(delete, path = "/api/workspaces/{id}/mcp-servers/{server_id}", tag = "mcp",
    params(("id" = String, Path, description = "workspace id"), ("server_id" = String, Path, description = "the server's id")),
    responses((status = 204, description = "removed"), (status = 403, description = "`owner_only`, `not_workspace_member`"),
              (status = 404, description = "`mcp_server_not_found`"), (status = 429, description = "`rate_limited`")))]
pub async fn remove(
    State(app): State<App>,
    auth: AuthUser,
    Path((id, server_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    mcp::remove(&app, auth.user.id, id, server_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
