//! The assistant's models: what the operator offers, and each workspace's choice (its owner's
//! to make). Only ids and labels are shown: endpoints and keys stay the operator's.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    error::ApiResult,
    extract::{AuthUser, Json, Path},
};
use crate::{
    access,
    ai::models::{self, ModelChoice},
    app::App,
};

#[utoipa::path(get, path = "/api/ai/models", tag = "ai",
    responses((status = 200, description = "`[{id, label}]`: the models a workspace owner may choose; `default` first"),
              (status = 401, description = "`unauthorized`")))]
pub async fn list_models(State(app): State<App>, _auth: AuthUser) -> ApiResult<Json<Vec<ModelChoice>>> {
    Ok(Json(models::offered(&app)))
}

#[utoipa::path(get, path = "/api/workspaces/{id}/ai-model", tag = "ai", params(("id" = String, Path, description = "workspace id")),
    responses((status = 200, description = "`{model_id}`: the workspace's model"), (status = 403, description = "`not_workspace_member`")))]
pub async fn workspace_model(State(app): State<App>, auth: AuthUser, Path(id): Path<Uuid>) -> ApiResult<Json<Value>> {
    access::workspace_role(&app, id, auth.user.id).await?;
    Ok(Json(json!({ "model_id": models::chosen(&app, id).await? })))
}

#[derive(Deserialize)]
pub struct ChooseModel {
    model_id: String,
}

#[utoipa::path(put, path = "/api/workspaces/{id}/ai-model", tag = "ai", params(("id" = String, Path, description = "workspace id")),
    responses((status = 200, description = "`{model_id}`"), (status = 400, description = "`invalid` (unknown id)"),
              (status = 403, description = "`owner_only`, `not_workspace_member`"), (status = 429, description = "`rate_limited`")))]
pub async fn choose_model(
    State(app): State<App>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<ChooseModel>,
) -> ApiResult<Json<Value>> {
    models::choose(&app, auth.user.id, id, &body.model_id).await?;
    Ok(Json(json!({ "model_id": models::chosen(&app, id).await? })))
}
