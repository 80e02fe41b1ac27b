//! Rooms and their members.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{Room, Visibility};

const ROOM_COLUMNS: &str = "r.id, r.name, r.workspace_id, r.created_at, r.visibility";

#[derive(sqlx::FromRow)]
struct RoomRow {
    id: Uuid,
    name: String,
    workspace_id: Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    visibility: String,
}

impl From<RoomRow> for Room {
    fn from(r: RoomRow) -> Self {
        Room {
            id: r.id,
            name: r.name,
            workspace_id: r.workspace_id,
            created_at: r.created_at,
            visibility: Visibility::from_db(&r.visibility),
        }
    }
}

/// Inserts a room with its creator as first member. The caller adds the room's first key in
/// the same transaction.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    workspace_id: Uuid,
    name: &str,
    creator: Uuid,
    visibility: Visibility,
) -> Result<Room, sqlx::Error> {
    let row: RoomRow = sqlx::query_as(
        "INSERT INTO rooms (id, workspace_id, name, created_by, visibility) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, workspace_id, created_at, visibility",
    )
    .bind(Uuid::now_v7())
    .bind(workspace_id)
    .bind(name)
    .bind(creator)
    .bind(visibility.as_str())
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO room_members (room_id, user_id) VALUES ($1, $2)")
        .bind(row.id)
        .bind(creator)
        .execute(&mut **tx)
        .await?;
    Ok(row.into())
}

pub async fn of_user(db: &PgPool, user_id: Uuid) -> Result<Vec<Room>, sqlx::Error> {
    let rows: Vec<RoomRow> = sqlx::query_as(&format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r JOIN room_members m ON m.room_id = r.id
         WHERE m.user_id = $1 ORDER BY r.created_at"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Room::from).collect())
}

pub async fn get(db: &PgPool, room_id: Uuid) -> Result<Option<Room>, sqlx::Error> {
    let row: Option<RoomRow> = sqlx::query_as(&format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = $1"))
        .bind(room_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Room::from))
}

pub async fn is_member(db: &PgPool, room_id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2)")
        .bind(room_id)
        .bind(user_id)
        .fetch_one(db)
        .await
}

/// Adds a member to a room they may enter without an invite: a public room, for people already
/// in its workspace (or someone already a member). Returns false when they may not.
pub async fn join_within_workspace(db: &PgPool, room_id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let allowed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rooms r JOIN workspace_members w ON w.workspace_id = r.workspace_id
                        WHERE r.id = $1 AND w.user_id = $2 AND r.visibility = 'public')
             OR EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2)",
    )
    .bind(room_id)
    .bind(user_id)
    .fetch_one(db)
    .await?;
    if allowed {
        add_member(db, room_id, user_id).await?;
    }
    Ok(allowed)
}

pub async fn add_member<'e, E: sqlx::PgExecutor<'e>>(db: E, room_id: Uuid, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO room_members (room_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(room_id)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes a member; false when they were not one.
pub async fn remove_member(db: &PgPool, room_id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
        .bind(room_id)
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The members of a room with their display names, by name.
pub async fn members(db: &PgPool, room_id: Uuid) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.display_name FROM room_members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = $1 ORDER BY u.display_name, u.id",
    )
    .bind(room_id)
    .fetch_all(db)
    .await
}
