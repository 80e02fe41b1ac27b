//! Workspaces: a team with owners and members, rooms, and a wallet.

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub owner_id: Uuid,
}

/// Creates a workspace owned by `owner`, with its wallet.
pub async fn create(tx: &mut Transaction<'_, Postgres>, name: &str, owner: Uuid) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO workspaces (id, name, owner_id) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(id)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
    super::wallet::create(tx, id).await?;
    Ok(id)
}

pub async fn all(db: &PgPool) -> Result<Vec<(Workspace, i64, i64)>, sqlx::Error> {
    let rows: Vec<(Uuid, String, Uuid, i64, i64)> = sqlx::query_as(
        "SELECT w.id, w.name, w.owner_id,
                (SELECT count(*) FROM workspace_members m WHERE m.workspace_id = w.id),
                COALESCE((SELECT balance_cents FROM wallets WHERE workspace_id = w.id), 0)
         FROM workspaces w ORDER BY w.created_at",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, owner_id, members, balance)| (Workspace { id, name, owner_id }, members, balance))
        .collect())
}

/// The workspace two people share where a DM goes when none is named: the first `a` joined.
pub async fn shared_by(db: &PgPool, a: Uuid, b: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT ma.workspace_id FROM workspace_members ma
         JOIN workspace_members mb ON mb.workspace_id = ma.workspace_id AND mb.user_id = $2
         WHERE ma.user_id = $1 ORDER BY ma.joined_at, ma.workspace_id LIMIT 1",
    )
    .bind(a)
    .bind(b)
    .fetch_optional(db)
    .await
}

/// The people of a workspace, by name.
pub async fn members(db: &PgPool, workspace_id: Uuid) -> Result<Vec<crate::domain::Author>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT u.id, u.display_name FROM workspace_members m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id = $1 ORDER BY lower(u.display_name), u.id",
    )
    .bind(workspace_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id, display_name)| crate::domain::Author { id, display_name }).collect())
}

/// The model a workspace's assistant uses (an id of `MATHIA_AI_MODELS`); None is the default.
pub async fn ai_model(db: &PgPool, workspace_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, Option<String>>("SELECT ai_model FROM workspaces WHERE id = $1")
        .bind(workspace_id)
        .fetch_optional(db)
        .await?
        .flatten())
}

pub async fn set_ai_model(db: &PgPool, workspace_id: Uuid, model_id: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workspaces SET ai_model = $2 WHERE id = $1")
        .bind(workspace_id)
        .bind(model_id)
        .execute(db)
        .await?;
    Ok(())
}
