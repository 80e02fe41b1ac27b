//! Message search over the keyed blind index (`messages.search_terms` under a GIN index,
//! migration 0021): which terms a stored message gets, and which messages hold every term of a
//! query. Terms are hashed with the index key of the room key version the message was sealed
//! with, so no word reaches the database; a search hashes its words with every key of every room
//! it may read.

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
pub fn term_hashes(key: &BlindIndexKey, body: &str) -> BTreeSet<i64> {
    search::terms(body).iter().map(|t| key.term(t)).collect()
}

/// The ids of messages (newest first, older than `before`) that hold every hash of one of
/// `groups`: a group is the query's terms hashed with one index key, and a message's terms are
/// all under the key it was sealed with, so it matches when one group is a subset of them.
/// `rooms` bounds the answer again, whatever the hashes.
///
/// Each group is a `@>` of its own, so the GIN index answers a group by intersecting its posting
/// lists and the groups by OR-ing the results. The statement is planned for its values each time
/// (not kept prepared): whether to read the index or to walk the newest messages and test each
/// depends on how common the words are, which the planner knows from the column's statistics
/// only when it sees the hashes.
pub async fn candidates(
    db: &PgPool,
    groups: &[Vec<i64>],
    rooms: &[Uuid],
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut found: Vec<Uuid> = Vec::new();
    // A statement binds at most 65,535 values; someone in thousands of rooms is asked in parts.
    for part in groups.chunks(GROUPS_PER_STATEMENT) {
        let any_group = (0..part.len()).map(|i| format!("m.search_terms @> ${}", i + 4)).collect::<Vec<_>>();
        let sql = format!(
            "SELECT m.id FROM messages m
             WHERE ({}) AND m.room_id = ANY($1) AND ($2::uuid IS NULL OR m.id < $2)
             ORDER BY m.id DESC LIMIT $3",
            any_group.join(" OR ")
        );
        let mut query = sqlx::query_scalar::<_, Uuid>(&sql).persistent(false).bind(rooms).bind(before).bind(limit);
        for group in part {
            query = query.bind(group);
        }
        found.extend(query.fetch_all(db).await?);
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.dedup();
    found.truncate(limit.max(0) as usize);
    Ok(found)
}

/// How many key groups one search statement carries (each is one bound array).
const GROUPS_PER_STATEMENT: usize = 1_000;
