//! Changing stored messages: an edit re-seals the body and replaces its search terms (hashed
//! under the key version it is now sealed with); a delete empties the row, terms included.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    adapters::postgres::search::{is_indexed, term_hashes},
    domain::MessageKind,
    error::Error,
    keyring::{Aad, RoomKeyring},
};

/// A live message's kind (none once deleted).
async fn live_kind(db: &PgPool, room_id: Uuid, id: Uuid) -> Result<Option<MessageKind>, sqlx::Error> {
    let kind: Option<String> =
        sqlx::query_scalar("SELECT kind FROM messages WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(room_id)
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(kind.map(|k| MessageKind::from_db(&k)))
}

/// Re-seals a message with a new body, and replaces its search terms.
pub async fn edit(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    id: Uuid,
    body: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(kind) = live_kind(db, room_id, id).await? else { return Ok(()) };
    let sealed = keyring.seal(room_id, Aad::message(id), body.as_bytes()).await?;
    let terms: Vec<i64> = if is_indexed(kind) {
        term_hashes(&*keyring.index_key(room_id, sealed.key_version).await?, body).into_iter().collect()
    } else {
        Vec::new()
    };
    sqlx::query(
        "UPDATE messages SET key_version = $3, nonce = $4, ciphertext = $5, edited_at = $6, search_terms = $7
         WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(room_id)
    .bind(id)
    .bind(sealed.key_version)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(at)
    .bind((!terms.is_empty()).then_some(&terms))
    .execute(db)
    .await?;
    Ok(())
}

/// Rewrites a regenerated AI reply: its new body and search terms (as an edit does), whether it
/// was stopped, and when. False when the reply is gone (deleted meanwhile).
pub async fn replace_reply(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    id: Uuid,
    body: &str,
    stopped: bool,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    if live_kind(db, room_id, id).await? != Some(MessageKind::Ai) {
        return Ok(false);
    }
    edit(db, keyring, room_id, id, body, at).await?;
    let n = sqlx::query(
        "UPDATE messages SET stopped = $3 WHERE room_id = $1 AND id = $2 AND kind = 'ai' AND deleted_at IS NULL",
    )
    .bind(room_id)
    .bind(id)
    .bind(stopped)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Deletes a message's content and its search terms; the row stays so `seq` has no gap.
pub async fn delete(db: &PgPool, room_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    let n = sqlx::query(
        "UPDATE messages SET ciphertext = ''::bytea, nonce = ''::bytea, search_terms = NULL, deleted_at = $3
         WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(room_id)
    .bind(id)
    .bind(at)
    .execute(db)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM reactions WHERE message_id = $1").bind(id).execute(db).await?;
    Ok(n == 1)
}
