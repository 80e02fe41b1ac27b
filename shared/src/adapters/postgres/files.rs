//! File records: declared, then validated (ready) or rejected.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub room_id: Uuid,
    pub uploader_id: Uuid,
    pub name: String,
    pub declared_type: String,
    pub status: String,
    pub content_type: Option<String>,
    pub size: Option<i64>,
}

pub async fn create(
    db: &PgPool,
    room_id: Uuid,
    uploader: Uuid,
    name: &str,
    declared_type: &str,
    size: i64,
    at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO files (id, room_id, uploader_id, name, declared_type, declared_size, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
    )
    .bind(id)
    .bind(room_id)
    .bind(uploader)
    .bind(name)
    .bind(declared_type)
    .bind(size)
    .bind(at)
    .execute(db)
    .await?;
    Ok(id)
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, room_id, uploader_id, name, declared_type, status, content_type, size FROM files WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn mark_ready(db: &PgPool, id: Uuid, content_type: &str, size: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE files SET status = 'ready', content_type = $2, size = $3 WHERE id = $1")
        .bind(id)
        .bind(content_type)
        .bind(size)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mark_rejected(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE files SET status = 'rejected' WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// Uploads declared before `cutoff` and never shared, claimed for deletion (rows removed).
pub async fn take_abandoned(db: &PgPool, cutoff: DateTime<Utc>) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM files WHERE id IN (
             SELECT id FROM files WHERE status = 'pending' AND created_at < $1 LIMIT 500 FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(cutoff)
    .fetch_all(db)
    .await
}

/// A deleted message's attachment: its row is removed (the message's `attachment_id` becomes
/// null, links answer `file_not_found`) and its id returned so the bytes can go too.
pub async fn take_attachment_of(db: &PgPool, room_id: Uuid, message_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM files WHERE id = (SELECT attachment_id FROM messages WHERE room_id = $1 AND id = $2)
         RETURNING id",
    )
    .bind(room_id)
    .bind(message_id)
    .fetch_optional(db)
    .await
}
