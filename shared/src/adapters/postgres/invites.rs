//! Room invites: a random code, optionally limited in uses and time. Accepting one makes the
//! user a member of the room and of its workspace.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn create(
    db: &PgPool,
    code: &str,
    room_id: Uuid,
    created_by: Uuid,
    max_uses: Option<i32>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO invites (code, room_id, created_by, max_uses, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(code)
        .bind(room_id)
        .bind(created_by)
        .bind(max_uses)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct InviteRow {
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
}

/// Spends one use of an invite and adds the member, atomically: concurrent accepts of a
/// one-use invite let exactly one person in.
pub async fn accept(db: &PgPool, code: &str, user_id: Uuid, now: DateTime<Utc>) -> Result<Accepted, sqlx::Error> {
    let mut tx = db.begin().await?;
    let invite: Option<InviteRow> =
        sqlx::query_as("SELECT room_id, max_uses, uses, expires_at FROM invites WHERE code = $1 FOR UPDATE")
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(InviteRow { room_id, max_uses, uses, expires_at }) = invite else {
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
    if max_uses.is_some_and(|max| uses >= max) {
        return Ok(Accepted::UsedUp);
    }
    sqlx::query("UPDATE invites SET uses = uses + 1 WHERE code = $1").bind(code).execute(&mut *tx).await?;
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
