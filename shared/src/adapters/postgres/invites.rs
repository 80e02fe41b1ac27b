//! Room invites: a random code, optionally limited in uses and time. Accepting one makes the
//! user a member of the room and of its workspace. Only the code's SHA-256 is stored (like
//! session tokens): the code itself is shown once, when the invite is made. Each person may use
//! an invite once, so someone who left a room or was removed from it needs a new one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::tokens;

/// Stores a new invite under its code's hash; answers its id.
pub async fn create(
    db: &PgPool,
    code: &str,
    room_id: Uuid,
    created_by: Uuid,
    max_uses: Option<i32>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO invites (id, code_hash, room_id, created_by, max_uses, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(tokens::hash(code))
    .bind(room_id)
    .bind(created_by)
    .bind(max_uses)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct InviteRow {
    id: Uuid,
    room_id: Uuid,
    max_uses: Option<i32>,
    uses: i32,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Now a member of this room (or was already; then no use was spent).
    Room(Uuid),
    Unknown,
    Expired,
    UsedUp,
    /// This person used this invite before (and left, or was removed): a new invite is needed.
    AlreadyUsed,
}

/// Spends one use of an invite and adds the member, atomically: concurrent accepts of a
/// one-use invite let exactly one person in.
pub async fn accept(db: &PgPool, code: &str, user_id: Uuid, now: DateTime<Utc>) -> Result<Accepted, sqlx::Error> {
    let mut tx = db.begin().await?;
    let invite: Option<InviteRow> =
        sqlx::query_as("SELECT id, room_id, max_uses, uses, expires_at FROM invites WHERE code_hash = $1 FOR UPDATE")
            .bind(tokens::hash(code))
            .fetch_optional(&mut *tx)
            .await?;
    let Some(InviteRow { id, room_id, max_uses, uses, expires_at }) = invite else {
        return Ok(Accepted::Unknown);
    };
    let already: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2)")
            .bind(room_id)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
    if already {
        return Ok(Accepted::Room(room_id));
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Ok(Accepted::Expired);
    }
    let redeemed =
        sqlx::query("INSERT INTO invite_redemptions (invite_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if redeemed == 0 {
        return Ok(Accepted::AlreadyUsed);
    }
    if max_uses.is_some_and(|max| uses >= max) {
        return Ok(Accepted::UsedUp);
    }
    sqlx::query("UPDATE invites SET uses = uses + 1 WHERE id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role)
         SELECT workspace_id, $2, 'member' FROM rooms WHERE id = $1
         ON CONFLICT DO NOTHING",
    )
    .bind(room_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    super::rooms::add_member(&mut *tx, room_id, user_id).await?;
    tx.commit().await?;
    Ok(Accepted::Room(room_id))
}

/// An invite, named by its id or by its code.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct InviteRef {
    pub id: Uuid,
    pub room_id: Uuid,
    pub created_by: Uuid,
}

/// Finds an invite by id (a UUID) or else by code.
pub async fn find(db: &PgPool, id_or_code: &str) -> Result<Option<InviteRef>, sqlx::Error> {
    let by_id = Uuid::parse_str(id_or_code).ok();
    sqlx::query_as("SELECT id, room_id, created_by FROM invites WHERE id = $1 OR code_hash = $2")
        .bind(by_id)
        .bind(tokens::hash(id_or_code))
        .fetch_optional(db)
        .await
}

/// The invite's preview: what accepting it would join. `None` for an unknown code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Preview {
    pub room_id: Uuid,
    pub room_name: String,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub inviter: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
    pub uses: i32,
}

pub async fn preview(db: &PgPool, code: &str) -> Result<Option<Preview>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id AS room_id, r.name AS room_name, w.id AS workspace_id, w.name AS workspace_name,
                u.display_name AS inviter, i.expires_at, i.max_uses, i.uses
         FROM invites i JOIN rooms r ON r.id = i.room_id JOIN workspaces w ON w.id = r.workspace_id
              LEFT JOIN users u ON u.id = i.created_by
         WHERE i.code_hash = $1",
    )
    .bind(tokens::hash(code))
    .fetch_optional(db)
    .await
}

/// Deletes an invite; false when it was already gone.
pub async fn revoke(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM invites WHERE id = $1").bind(id).execute(db).await?.rows_affected() == 1)
}
