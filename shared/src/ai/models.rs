//! The model a workspace's assistant uses. The operator offers OpenAI-compatible endpoints
//! (`MATHIA_AI_MODELS`, besides the default `MATHIA_AI_BASE_URL`); a workspace's owner picks
//! one. People only ever see an endpoint's id and label, never its URL or key.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::{
    access, adapters::postgres::workspaces, app::App, config::DEFAULT_AI_MODEL, domain::Role, error::Error, ports::Ai,
};

/// A model as people see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModelChoice {
    pub id: String,
    pub label: String,
}

/// The default model first, then the operator's others in their configured order.
pub fn offered(app: &App) -> Vec<ModelChoice> {
    let default_label = match (&app.config.ai_base_url, &app.config.ai_model) {
        (Some(_), Some(model)) => format!("Default ({model})"),
        (Some(_), None) => "Default".to_owned(),
        (None, _) => "Default (offline)".to_owned(),
    };
    std::iter::once(ModelChoice { id: DEFAULT_AI_MODEL.to_owned(), label: default_label })
        .chain(app.config.ai_models.iter().map(|m| ModelChoice { id: m.id.clone(), label: m.label.clone() }))
        .collect()
}

/// A workspace's choice, as an id of [`offered`] (`default` when it chose none, or chose one
/// the operator no longer offers).
pub async fn chosen(app: &App, workspace_id: Uuid) -> crate::Result<String> {
    Ok(workspaces::ai_model(&app.db, workspace_id)
        .await?
        .filter(|id| app.ai_models.contains_key(id))
        .unwrap_or_else(|| DEFAULT_AI_MODEL.to_owned()))
}

/// The model that answers in a workspace.
pub async fn for_workspace(app: &App, workspace_id: Uuid) -> crate::Result<Arc<dyn Ai>> {
    let id = workspaces::ai_model(&app.db, workspace_id).await?;
    Ok(app.ai_for(id.as_deref()))
}

/// The owner's choice. An id that is not offered is refused and changes nothing.
pub async fn choose(app: &App, user_id: Uuid, workspace_id: Uuid, model_id: &str) -> crate::Result<()> {
    if access::workspace_role(app, workspace_id, user_id).await? != Role::Owner {
        return Err(Error::forbidden("owner_only", "only the workspace's owner chooses its model"));
    }
    crate::limits::rate_limit(app, user_id, app.clock.now()).await?;
    let stored = if model_id == DEFAULT_AI_MODEL {
        None
    } else if app.ai_models.contains_key(model_id) {
        Some(model_id)
    } else {
        return Err(Error::invalid_field("model_id", "no such model: see GET /api/ai/models"));
    };
    workspaces::set_ai_model(&app.db, workspace_id, stored).await?;
    tracing::info!(%workspace_id, model_id, "workspace model chosen");
    Ok(())
}
