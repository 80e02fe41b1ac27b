//! Message search over the keyed blind index (`message_terms`, migration 0011): which terms a
//! stored message gets, and which messages hold every term of a query. Terms are hashed with the
//! index key of the room key version the message was sealed with, so no word reaches the
//! database; a search hashes its words with every key of every room it may read.

use std::collections::BTreeSet;

use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::{MessageKind, search},
    keyring::BlindIndexKey,
};

/// People's messages and the assistant's replies are searchable; system notices ("Ana joined")
/// are not.
pub fn is_indexed(kind: MessageKind) -> bool {
    matches!(kind, MessageKind::User | MessageKind::Ai)
}

/// The stored (hashed) terms of a body, distinct.
pub fn term_hashes(key: &BlindIndexKey, body: &str) -> BTreeSet<Vec<u8>> {
    search::terms(body).iter().map(|t| key.term(t)).collect()
}

/// The ids of messages (newest first, older than `before`) that hold all `n_terms` terms, given
/// as `hashes`: every query term hashed with every index key of the rooms searched. A message
/// holds one row per distinct term under its own key, so it matches when it has `n_terms` rows
/// among them. `rooms` bounds the answer again, whatever the hashes.
pub async fn candidates(
    db: &PgPool,
    hashes: &[Vec<u8>],
    n_terms: usize,
    rooms: &[Uuid],
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if let [hash] = hashes {
        // One word in one room under one key: a walk down the index, newest first, that stops
        // at `limit` however common the word is.
        return sqlx::query_scalar(
            "SELECT t.message_id FROM message_terms t
             WHERE t.term = $1 AND t.room_id = ANY($2) AND ($3::uuid IS NULL OR t.message_id < $3)
             ORDER BY t.term DESC, t.message_id DESC LIMIT $4",
        )
        .bind(hash)
        .bind(rooms)
        .bind(before)
        .bind(limit)
        .fetch_all(db)
        .await;
    }
    sqlx::query_scalar(
        "SELECT t.message_id FROM message_terms t
         WHERE t.term = ANY($1) AND t.room_id = ANY($2) AND ($3::uuid IS NULL OR t.message_id < $3)
         GROUP BY t.message_id HAVING count(*) = $4
         ORDER BY t.message_id DESC LIMIT $5",
    )
    .bind(hashes)
    .bind(rooms)
    .bind(before)
    .bind(n_terms as i64)
    .bind(limit)
    .fetch_all(db)
    .await
}
