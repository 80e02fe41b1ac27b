//! Pinned messages: one row per pinned message of a room, capped per room. The cap is checked
//! with the room's row locked, so two people pinning at once cannot pass it together.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// What pinning did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    /// Pinned now.
    New,
    /// It was pinned already: nothing changed.
    Already,
    /// The room already holds the most pins allowed.
    Full,
    /// No such live message in the room.
    NoMessage,
}

/// Pins a live message of `room_id`, unless the room already holds `cap` pins.
pub async fn pin(
    db: &PgPool,
    room_id: Uuid,
    message_id: Uuid,
    by: Uuid,
    at: DateTime<Utc>,
    cap: i64,
) -> Result<Pinned, sqlx::Error> {
    let mut tx = db.begin().await?;
    // Pins of one room take turns here; the lock is held only for this short transaction.
    sqlx::query("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE").bind(room_id).execute(&mut *tx).await?;
    let live: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL)",
    )
    .bind(room_id)
    .bind(message_id)
    .fetch_one(&mut *tx)
    .await?;
    if !live {
        return Ok(Pinned::NoMessage);
    }
    let already: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pins WHERE message_id = $1)")
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
    if already {
        return Ok(Pinned::Already);
    }
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pins WHERE room_id = $1").bind(room_id).fetch_one(&mut *tx).await?;
    if count >= cap {
        return Ok(Pinned::Full);
    }
    sqlx::query("INSERT INTO pins (message_id, room_id, pinned_by, pinned_at) VALUES ($1, $2, $3, $4)")
        .bind(message_id)
        .bind(room_id)
        .bind(by)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Pinned::New)
}

/// Unpins a message of `room_id`; false when it was not pinned.
pub async fn unpin(db: &PgPool, room_id: Uuid, message_id: Uuid) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM pins WHERE room_id = $1 AND message_id = $2")
        .bind(room_id)
        .bind(message_id)
        .execute(db)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The ids of a room's pinned messages, newest pin first.
pub async fn of_room(db: &PgPool, room_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT message_id FROM pins WHERE room_id = $1 ORDER BY pinned_at DESC, message_id DESC")
        .bind(room_id)
        .fetch_all(db)
        .await
}
