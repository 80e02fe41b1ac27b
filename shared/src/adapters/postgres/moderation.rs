//! Moderation records: flags (one per message and classifier) and mutes (at most one active
//! per person and room).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Author;

/// Inserts a flag; false when this message was already flagged by this classifier.
#[allow(clippy::too_many_arguments)]
pub async fn flag(
    db: &PgPool,
    message_id: Uuid,
    room_id: Uuid,
    user_id: Uuid,
    category: &str,
    severity: &str,
    source: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO moderation_flags (id, message_id, room_id, user_id, category, severity, source, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT ON CONSTRAINT moderation_flags_once DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(message_id)
    .bind(room_id)
    .bind(user_id)
    .bind(category)
    .bind(severity)
    .bind(source)
    .bind(at)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Strikes: distinct flagged messages of a user in a room since `since` and since their last
/// mute (a mute wipes the slate).
pub async fn strikes(db: &PgPool, room_id: Uuid, user_id: Uuid, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(DISTINCT message_id) FROM moderation_flags
         WHERE room_id = $1 AND user_id = $2 AND created_at > GREATEST($3,
               COALESCE((SELECT max(created_at) FROM mutes WHERE room_id = $1 AND user_id = $2), $3))",
    )
    .bind(room_id)
    .bind(user_id)
    .bind(since)
    .fetch_one(db)
    .await
}

pub async fn past_mutes(db: &PgPool, room_id: Uuid, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM mutes WHERE room_id = $1 AND user_id = $2")
        .bind(room_id)
        .bind(user_id)
        .fetch_one(db)
        .await
}

/// Mutes a user unless they already are; the mute's end when it was created.
pub async fn mute(
    db: &PgPool,
    room_id: Uuid,
    user_id: Uuid,
    until: DateTime<Utc>,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let created: Option<DateTime<Utc>> = sqlx::query_scalar(
        "INSERT INTO mutes (id, room_id, user_id, until, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (room_id, user_id) WHERE lifted_at IS NULL DO NOTHING RETURNING until",
    )
    .bind(Uuid::now_v7())
    .bind(room_id)
    .bind(user_id)
    .bind(until)
    .bind(reason)
    .bind(at)
    .fetch_optional(db)
    .await?;
    Ok(created)
}

/// When a user's active mute in a room ends, if they are muted now.
pub async fn muted_until(
    db: &PgPool,
    room_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT until FROM mutes WHERE room_id = $1 AND user_id = $2 AND lifted_at IS NULL AND until > $3",
    )
    .bind(room_id)
    .bind(user_id)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Lifts every mute that has ended (safe to race: each row is lifted once).
pub async fn lift_expired(db: &PgPool, now: DateTime<Utc>) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as("UPDATE mutes SET lifted_at = $1 WHERE lifted_at IS NULL AND until <= $1 RETURNING room_id, user_id")
        .bind(now)
        .fetch_all(db)
        .await
}

/// Lifts one person's mute now (an owner's unmute); false when they were not muted.
pub async fn lift(db: &PgPool, room_id: Uuid, user_id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("UPDATE mutes SET lifted_at = $3 WHERE room_id = $1 AND user_id = $2 AND lifted_at IS NULL")
        .bind(room_id)
        .bind(user_id)
        .bind(now)
        .execute(db)
        .await?
        .rows_affected()
        > 0)
}

#[derive(Debug, Serialize)]
pub struct FlagView {
    pub id: Uuid,
    pub message_id: Uuid,
    pub user: Author,
    pub category: String,
    pub severity: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct MuteView {
    pub user: Author,
    pub until: DateTime<Utc>,
    pub reason: String,
}

#[derive(sqlx::FromRow)]
struct FlagRow {
    id: Uuid,
    message_id: Uuid,
    user_id: Uuid,
    display_name: String,
    category: String,
    severity: String,
    source: String,
    created_at: DateTime<Utc>,
}

pub async fn recent_flags(db: &PgPool, room_id: Uuid) -> Result<Vec<FlagView>, sqlx::Error> {
    let rows: Vec<FlagRow> = sqlx::query_as(
        "SELECT f.id, f.message_id, f.user_id, u.display_name, f.category, f.severity, f.source, f.created_at
         FROM moderation_flags f JOIN users u ON u.id = f.user_id
         WHERE f.room_id = $1 ORDER BY f.created_at DESC LIMIT 100",
    )
    .bind(room_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FlagView {
            id: r.id,
            message_id: r.message_id,
            user: Author { id: r.user_id, display_name: r.display_name },
            category: r.category,
            severity: r.severity,
            source: r.source,
            created_at: r.created_at,
        })
        .collect())
}

pub async fn active_mutes(db: &PgPool, room_id: Uuid, now: DateTime<Utc>) -> Result<Vec<MuteView>, sqlx::Error> {
    let rows: Vec<(Uuid, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT m.user_id, u.display_name, m.until, m.reason FROM mutes m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = $1 AND m.lifted_at IS NULL AND m.until > $2 ORDER BY m.until",
    )
    .bind(room_id)
    .bind(now)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, display_name, until, reason)| MuteView { user: Author { id, display_name }, until, reason })
        .collect())
}
