//! Rooms and their members.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{Author, Room, RoomKind, Visibility};

/// A room's columns, with the other person of a DM as `$1` (the reader) sees it.
const ROOM_COLUMNS: &str = "r.id, r.name, r.workspace_id, r.created_at, r.visibility, r.kind,
    p.id AS peer_id, p.display_name AS peer_name";
/// The other person of a DM, for the reader `$1`.
const PEER_JOIN: &str =
    "LEFT JOIN users p ON r.kind = 'dm' AND p.id = CASE WHEN r.dm_low = $1 THEN r.dm_high ELSE r.dm_low END";

#[derive(sqlx::FromRow)]
struct RoomRow {
    id: Uuid,
    name: String,
    workspace_id: Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    visibility: String,
    kind: String,
    peer_id: Option<Uuid>,
    peer_name: Option<String>,
}

impl From<RoomRow> for Room {
    fn from(r: RoomRow) -> Self {
        let peer = r.peer_id.map(|id| Author { id, display_name: r.peer_name.unwrap_or_default() });
        Room {
            id: r.id,
            // A DM is named after the other person, for clients that only read `name`.
            name: peer.as_ref().map_or(r.name, |p| p.display_name.clone()),
            workspace_id: r.workspace_id,
            created_at: r.created_at,
            visibility: Visibility::from_db(&r.visibility),
            kind: RoomKind::from_db(&r.kind),
            peer,
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
         RETURNING id, name, workspace_id, created_at, visibility, kind,
                   NULL::uuid AS peer_id, NULL::text AS peer_name",
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
        "SELECT {ROOM_COLUMNS} FROM rooms r JOIN room_members m ON m.room_id = r.id {PEER_JOIN}
         WHERE m.user_id = $1 ORDER BY r.created_at"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Room::from).collect())
}

/// A room as nobody in particular sees it (a DM without its `peer`, under its stored name).
pub async fn get(db: &PgPool, room_id: Uuid) -> Result<Option<Room>, sqlx::Error> {
    let row: Option<RoomRow> = sqlx::query_as(
        "SELECT r.id, r.name, r.workspace_id, r.created_at, r.visibility, r.kind,
                NULL::uuid AS peer_id, NULL::text AS peer_name
         FROM rooms r WHERE r.id = $1",
    )
    .bind(room_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Room::from))
}

/// A room as `reader` sees it: a DM carries the other person as `peer`.
pub async fn get_for(db: &PgPool, room_id: Uuid, reader: Uuid) -> Result<Option<Room>, sqlx::Error> {
    let row: Option<RoomRow> =
        sqlx::query_as(&format!("SELECT {ROOM_COLUMNS} FROM rooms r {PEER_JOIN} WHERE r.id = $2"))
            .bind(reader)
            .bind(room_id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(Room::from))
}

/// The DM of two people in a workspace, as `reader` (one of them) sees it.
pub async fn dm_of(db: &PgPool, workspace_id: Uuid, reader: Uuid, other: Uuid) -> Result<Option<Room>, sqlx::Error> {
    let (low, high) = if reader < other { (reader, other) } else { (other, reader) };
    let row: Option<RoomRow> = sqlx::query_as(&format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r {PEER_JOIN}
         WHERE r.kind = 'dm' AND r.workspace_id = $2 AND r.dm_low = $3 AND r.dm_high = $4"
    ))
    .bind(reader)
    .bind(workspace_id)
    .bind(low)
    .bind(high)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Room::from))
}

/// Inserts the DM of two people with both as members, unless it exists: `None` then (another
/// request made it first; the unique index on the pair decides). The caller adds the room's
/// first key in the same transaction.
pub async fn insert_dm(
    tx: &mut Transaction<'_, Postgres>,
    workspace_id: Uuid,
    creator: Uuid,
    other: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let (low, high) = if creator < other { (creator, other) } else { (other, creator) };
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO rooms (id, workspace_id, name, created_by, visibility, kind, dm_low, dm_high)
         VALUES ($1, $2, 'direct message', $3, 'private', 'dm', $4, $5)
         ON CONFLICT (workspace_id, dm_low, dm_high) WHERE kind = 'dm' DO NOTHING
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(workspace_id)
    .bind(creator)
    .bind(low)
    .bind(high)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else { return Ok(None) };
    sqlx::query("INSERT INTO room_members (room_id, user_id) VALUES ($1, $2), ($1, $3)")
        .bind(id)
        .bind(low)
        .bind(high)
        .execute(&mut **tx)
        .await?;
    Ok(Some(id))
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
                        WHERE r.id = $1 AND w.user_id = $2 AND r.visibility = 'public' AND r.kind = 'room')
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

/// The room's members, by display name.
pub async fn members(db: &PgPool, room_id: Uuid) -> Result<Vec<crate::domain::Author>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT u.id, u.display_name FROM room_members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = $1 ORDER BY lower(u.display_name), u.id",
    )
    .bind(room_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id, display_name)| crate::domain::Author { id, display_name }).collect())
}
