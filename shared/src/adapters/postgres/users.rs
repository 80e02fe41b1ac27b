//! Users, sessions and workspace membership.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{Role, User};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User { id: r.id, email: r.email, display_name: r.display_name }
    }
}

/// Creates a user, who then walks through onboarding. Fails with the unique violation
/// `users_email_key` when the address is taken.
pub async fn create(db: &PgPool, email: &str, display_name: &str, password_hash: &str) -> Result<User, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, email, display_name, password_hash, onboarding_step) VALUES ($1, $2, $3, $4, 'profile')")
        .bind(id)
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .execute(db)
        .await?;
    Ok(User { id, email: email.into(), display_name: display_name.into() })
}

pub async fn by_email(db: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, display_name, password_hash FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(db)
        .await
}

pub async fn by_id(db: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> = sqlx::query_as("SELECT id, email, display_name, password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(User::from))
}

pub fn token_hash(token: &str) -> Vec<u8> {
    crate::tokens::hash(token)
}

pub async fn create_session(
    db: &PgPool,
    user_id: Uuid,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(token_hash(token))
        .bind(user_id)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// A live session: whose it is, whether they have finished onboarding, and when it ends.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub user: User,
    pub onboarded: bool,
    pub expires_at: DateTime<Utc>,
}

/// The user a live (not expired, not revoked) session belongs to, by its token's hash
/// ([`token_hash`]).
pub async fn session_user(
    db: &PgPool,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<LiveSession>, sqlx::Error> {
    let row: Option<(Uuid, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT u.id, u.email, u.display_name, u.onboarding_step, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id, email, display_name, step, expires_at)| LiveSession {
        user: User { id, email, display_name },
        onboarded: step == "done",
        expires_at,
    }))
}

/// The display name of a user opening a socket, in one query: None when the user is gone, or
/// when the ticket was fetched with a session (`token_hash_hex`, the session token's hash) that is
/// no longer live — expired, revoked, or not theirs. Only for a ticket that does not carry its
/// name (one an older build stored); a current ticket is checked in Redis alone.
pub async fn connecting(
    db: &PgPool,
    user_id: Uuid,
    session_hash_hex: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    if session_hash_hex.is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT u.display_name FROM users u
         WHERE u.id = $1
           AND ($2::text IS NULL OR EXISTS (
                SELECT 1 FROM sessions s
                WHERE s.token_hash = decode($2, 'hex') AND s.user_id = u.id
                  AND s.revoked_at IS NULL AND s.expires_at > $3))",
    )
    .bind(user_id)
    .bind(session_hash_hex)
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn revoke_session(db: &PgPool, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL")
        .bind(token_hash(token))
        .execute(db)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct WorkspaceSummary {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub personal: bool,
}

pub async fn workspaces_of(db: &PgPool, user_id: Uuid) -> Result<Vec<WorkspaceSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT w.id, w.name, m.role, w.personal
         FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.user_id = $1 ORDER BY w.personal DESC, w.created_at",
    )
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// The user's role in a workspace, or None when they are not in it.
pub async fn workspace_role(db: &PgPool, workspace_id: Uuid, user_id: Uuid) -> Result<Option<Role>, sqlx::Error> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .fetch_optional(db)
            .await?;
    Ok(role.as_deref().map(Role::from_stored))
}

/// The workspace a new room goes to when none is named: the user's personal one.
pub async fn default_workspace(db: &PgPool, user_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT w.id FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.user_id = $1 ORDER BY w.personal DESC, w.created_at LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Everyone, for the operator: (user, onboarding step).
pub async fn all(db: &PgPool) -> Result<Vec<(User, String)>, sqlx::Error> {
    let rows: Vec<(Uuid, String, String, String)> =
        sqlx::query_as("SELECT id, email, display_name, onboarding_step FROM users ORDER BY created_at")
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(|(id, email, display_name, step)| (User { id, email, display_name }, step)).collect())
}
