//! Reminders, sealed with their room's key, with a status that moves only forward:
//! pending → queued → delivered, or → cancelled. Each move is a conditional UPDATE, so a
//! redelivered job or a second scheduler finds nothing left to do.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Error;
use crate::keyring::{Aad, RoomKeyring, Sealed};

fn aad(id: Uuid) -> Aad<'static> {
    Aad { kind: "reminder", id }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reminder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub room_id: Uuid,
    pub text: String,
    pub due_at: DateTime<Utc>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// The message it is about, when set from a message's menu.
    pub about_message_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    room_id: Uuid,
    key_version: i32,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    due_at: DateTime<Utc>,
    status: String,
    created_at: DateTime<Utc>,
    about_message_id: Option<Uuid>,
}

const COLUMNS: &str =
    "id, user_id, room_id, key_version, nonce, ciphertext, due_at, status, created_at, about_message_id";

async fn open(keyring: &RoomKeyring, rows: Vec<Row>) -> Result<Vec<Reminder>, Error> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sealed = Sealed { key_version: r.key_version, nonce: r.nonce, ciphertext: r.ciphertext };
        out.push(Reminder {
            id: r.id,
            user_id: r.user_id,
            room_id: r.room_id,
            text: keyring.open_text(r.room_id, aad(r.id), &sealed).await?,
            due_at: r.due_at,
            // Queued or not is the scheduler's business: to people both are "pending".
            status: if r.status == "queued" { "pending".into() } else { r.status },
            created_at: r.created_at,
            about_message_id: r.about_message_id,
        });
    }
    Ok(out)
}

/// Creates a reminder (once per source message); answers it, and whether it is new.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    db: &PgPool,
    keyring: &RoomKeyring,
    user_id: Uuid,
    room_id: Uuid,
    source_message_id: Option<Uuid>,
    about_message_id: Option<Uuid>,
    text: &str,
    due_at: DateTime<Utc>,
    queued: bool,
) -> Result<(Reminder, bool), Error> {
    let id = Uuid::now_v7();
    let sealed = keyring.seal(room_id, aad(id), text.as_bytes()).await?;
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO reminders (id, user_id, room_id, source_message_id, key_version, nonce, ciphertext, due_at, status, about_message_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (source_message_id) DO NOTHING RETURNING id",
    )
    .bind(id)
    .bind(user_id)
    .bind(room_id)
    .bind(source_message_id)
    .bind(sealed.key_version)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(due_at)
    .bind(if queued { "queued" } else { "pending" })
    .bind(about_message_id)
    .fetch_optional(db)
    .await?;
    let rows: Vec<Row> = match inserted {
        Some(id) => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM reminders WHERE id = $1")).bind(id).fetch_all(db).await?
        }
        None => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM reminders WHERE source_message_id = $1"))
                .bind(source_message_id)
                .fetch_all(db)
                .await?
        }
    };
    let reminder = open(keyring, rows).await?.pop().ok_or(sqlx::Error::RowNotFound)?;
    Ok((reminder, inserted.is_some()))
}

pub async fn of_user(db: &PgPool, keyring: &RoomKeyring, user_id: Uuid) -> Result<Vec<Reminder>, Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reminders WHERE user_id = $1 AND status <> 'cancelled' ORDER BY due_at LIMIT 200"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    open(keyring, rows).await
}

/// Cancels a user's own reminder that has not been delivered; false when there is none.
pub async fn cancel(db: &PgPool, id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE reminders SET status = 'cancelled' WHERE id = $1 AND user_id = $2 AND status IN ('pending', 'queued')",
    )
    .bind(id)
    .bind(user_id)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// The scheduler's sweep: claims pending reminders due before `horizon` (to be queued).
pub async fn claim_due(db: &PgPool, horizon: DateTime<Utc>) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE reminders SET status = 'queued'
         WHERE id IN (SELECT id FROM reminders WHERE status = 'pending' AND due_at <= $1
                      ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED)
         RETURNING id, due_at",
    )
    .bind(horizon)
    .fetch_all(db)
    .await
}

/// Marks a queued reminder delivered, once; None when it was delivered, cancelled or is not
/// yet due.
pub async fn mark_delivered(
    db: &PgPool,
    keyring: &RoomKeyring,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Reminder>, Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "UPDATE reminders SET status = 'delivered', delivered_at = $2
         WHERE id = $1 AND status = 'queued' AND due_at <= $2
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(now)
    .fetch_all(db)
    .await?;
    Ok(open(keyring, rows).await?.pop())
}

pub async fn status_and_due(db: &PgPool, id: Uuid) -> Result<Option<(String, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as("SELECT status, due_at FROM reminders WHERE id = $1").bind(id).fetch_optional(db).await
}

pub async fn mark_notified(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reminders SET notified = true WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// Delivered reminders the user has not seen yet (they were offline), claimed for showing.
pub async fn take_unseen(db: &PgPool, keyring: &RoomKeyring, user_id: Uuid) -> Result<Vec<Reminder>, Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "UPDATE reminders SET notified = true
         WHERE user_id = $1 AND status = 'delivered' AND NOT notified
         RETURNING {COLUMNS}"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    open(keyring, rows).await
}
