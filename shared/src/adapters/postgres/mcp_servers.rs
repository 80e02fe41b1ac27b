//! A workspace's MCP servers. The bearer secret is sealed with the master key, bound to the
//! server's id (`mcp-token`), so a copy of the table reveals no token and a sealed token cannot
//! be moved to another row.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::keyring::RoomKeyring;

const PURPOSE: &str = "mcp-token";

/// A server as the API shows it: never its secret, only whether it has one.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Server {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub url: String,
    pub has_token: bool,
    pub allowed_tools: Vec<String>,
    pub timeout_ms: i32,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A server with its secret opened, for connecting to it. `Debug` leaves the secret out.
#[derive(Clone)]
pub struct Connectable {
    pub server: Server,
    pub token: Option<String>,
}

impl std::fmt::Debug for Connectable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connectable").field("server", &self.server).finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    url: String,
    token_nonce: Option<Vec<u8>>,
    token_sealed: Option<Vec<u8>>,
    allowed_tools: Vec<String>,
    timeout_ms: i32,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl Row {
    fn server(&self) -> Server {
        Server {
            id: self.id,
            workspace_id: self.workspace_id,
            name: self.name.clone(),
            url: self.url.clone(),
            has_token: self.token_sealed.is_some(),
            allowed_tools: self.allowed_tools.clone(),
            timeout_ms: self.timeout_ms,
            created_by: self.created_by,
            created_at: self.created_at,
        }
    }
}

/// What a new server is made of.
pub struct NewServer<'a> {
    pub workspace_id: Uuid,
    pub name: &'a str,
    pub url: &'a str,
    pub token: Option<&'a str>,
    pub allowed_tools: &'a [String],
    pub timeout_ms: i32,
    pub created_by: Uuid,
}

/// Why a server was not added.
#[derive(Debug)]
pub enum AddError {
    /// The workspace already has `max` servers.
    Full,
    /// The workspace has a server of that name.
    NameTaken,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for AddError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// Adds a server unless the workspace has `max` already. The workspace's row is locked while it
/// counts, so two adds at once cannot both pass the cap.
pub async fn add(db: &PgPool, keyring: &RoomKeyring, new: &NewServer<'_>, max: i64) -> Result<Server, AddError> {
    let id = Uuid::now_v7();
    let sealed = new.token.map(|t| keyring.seal_secret(id, PURPOSE, t.as_bytes()));
    let mut tx = db.begin().await?;
    sqlx::query("SELECT id FROM workspaces WHERE id = $1 FOR UPDATE").bind(new.workspace_id).execute(&mut *tx).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM mcp_servers WHERE workspace_id = $1")
        .bind(new.workspace_id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= max {
        return Err(AddError::Full);
    }
    let (nonce, sealed) = match sealed {
        Some((n, s)) => (Some(n), Some(s)),
        None => (None, None),
    };
    let row: Option<Row> = sqlx::query_as(
        "INSERT INTO mcp_servers (id, workspace_id, name, url, token_nonce, token_sealed, allowed_tools, timeout_ms, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (workspace_id, name) DO NOTHING
         RETURNING *",
    )
    .bind(id)
    .bind(new.workspace_id)
    .bind(new.name)
    .bind(new.url)
    .bind(nonce)
    .bind(sealed)
    .bind(new.allowed_tools)
    .bind(new.timeout_ms)
    .bind(new.created_by)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Err(AddError::NameTaken) };
    tx.commit().await?;
    Ok(row.server())
}

pub async fn list(db: &PgPool, workspace_id: Uuid) -> Result<Vec<Server>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as("SELECT * FROM mcp_servers WHERE workspace_id = $1 ORDER BY name")
        .bind(workspace_id)
        .fetch_all(db)
        .await?;
    Ok(rows.iter().map(Row::server).collect())
}

/// The workspace's servers with their secrets opened. A secret that does not open (a changed
/// master key) leaves that server out, with a warning: the others still work.
pub async fn connectable(
    db: &PgPool,
    keyring: &RoomKeyring,
    workspace_id: Uuid,
) -> Result<Vec<Connectable>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as("SELECT * FROM mcp_servers WHERE workspace_id = $1 ORDER BY name")
        .bind(workspace_id)
        .fetch_all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let token = match (&r.token_nonce, &r.token_sealed) {
            (Some(nonce), Some(sealed)) => match keyring.open_secret(r.id, PURPOSE, nonce, sealed) {
                Ok(token) => Some(token),
                Err(_) => {
                    tracing::warn!(server_id = %r.id, "an MCP server's secret does not open: it is skipped");
                    continue;
                }
            },
            _ => None,
        };
        out.push(Connectable { server: r.server(), token });
    }
    Ok(out)
}

/// Deletes a server of the workspace; `false` when there is none.
pub async fn delete(db: &PgPool, workspace_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM mcp_servers WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        == 1)
}
