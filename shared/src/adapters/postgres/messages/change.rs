//! Changing stored messages: an edit re-seals the body and swaps its search terms (the old
//! body's terms that the new one lacks go, the new ones come); a delete empties the row and
//! drops its terms. The old terms are found by opening the old body: the index is keyed by term,
//! so a message's rows are reached through its terms.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    adapters::postgres::search::{is_indexed, term_hashes},
    domain::MessageKind,
    error::Error,
    keyring::{Aad, RoomKeyring, Sealed},
};

/// A live message's kind and sealed body, to take its search terms out.
async fn live_sealed(db: &PgPool, room_id: Uuid, id: Uuid) -> Result<Option<(MessageKind, Sealed)>, sqlx::Error> {
    let row: Option<(String, i32, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT kind, key_version, nonce, ciphertext FROM messages
         WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(room_id)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(kind, key_version, nonce, ciphertext)| {
        (MessageKind::from_db(&kind), Sealed { key_version, nonce, ciphertext })
    }))
}

/// The hashed terms a stored message has in the index (none for kinds not indexed).
async fn stored_terms(
    keyring: &RoomKeyring,
    room_id: Uuid,
    id: Uuid,
    kind: MessageKind,
    sealed: &Sealed,
) -> Result<BTreeSet<Vec<u8>>, Error> {
    if !is_indexed(kind) {
        return Ok(BTreeSet::new());
    }
    let body = keyring.open_text(room_id, Aad::message(id), sealed).await?;
    Ok(term_hashes(&*keyring.index_key(room_id, sealed.key_version).await?, &body))
}

/// Re-seals a message with a new body, and swaps its search terms: the old body's terms that
/// the new one lacks go, the new ones come (under the key version it is now sealed with).
pub async fn edit(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    id: Uuid,
    body: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let Some((kind, old)) = live_sealed(db, room_id, id).await? else { return Ok(()) };
    let before = stored_terms(keyring, room_id, id, kind, &old).await?;
    let sealed = keyring.seal(room_id, Aad::message(id), body.as_bytes()).await?;
    let after = if is_indexed(kind) {
        term_hashes(&*keyring.index_key(room_id, sealed.key_version).await?, body)
    } else {
        BTreeSet::new()
    };
    let gone: Vec<Vec<u8>> = before.difference(&after).cloned().collect();
    let added: Vec<Vec<u8>> = after.difference(&before).cloned().collect();
    sqlx::query(
        "WITH upd AS (
             UPDATE messages SET key_version = $3, nonce = $4, ciphertext = $5, edited_at = $6
             WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING id),
         gone AS (DELETE FROM message_terms WHERE term = ANY($7) AND message_id = $2 AND EXISTS (SELECT 1 FROM upd)),
         added AS (INSERT INTO message_terms (term, message_id, room_id)
                   SELECT n.term, $2, $1 FROM unnest($8::bytea[]) AS n(term) WHERE EXISTS (SELECT 1 FROM upd)
                   ON CONFLICT DO NOTHING)
         SELECT count(*) FROM upd",
    )
    .bind(room_id)
    .bind(id)
    .bind(sealed.key_version)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(at)
    .bind(gone)
    .bind(added)
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
    if !matches!(live_sealed(db, room_id, id).await?, Some((MessageKind::Ai, _))) {
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
pub async fn delete(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    let Some((kind, old)) = live_sealed(db, room_id, id).await? else { return Ok(false) };
    let terms: Vec<Vec<u8>> = stored_terms(keyring, room_id, id, kind, &old).await?.into_iter().collect();
    let n: i64 = sqlx::query_scalar(
        "WITH upd AS (
             UPDATE messages SET ciphertext = ''::bytea, nonce = ''::bytea, deleted_at = $3
             WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING id),
         gone AS (DELETE FROM message_terms WHERE term = ANY($4) AND message_id = $2 AND EXISTS (SELECT 1 FROM upd))
         SELECT count(*) FROM upd",
    )
    .bind(room_id)
    .bind(id)
    .bind(at)
    .bind(&terms)
    .fetch_one(db)
    .await?;
    sqlx::query("DELETE FROM reactions WHERE message_id = $1").bind(id).execute(db).await?;
    Ok(n == 1)
}
