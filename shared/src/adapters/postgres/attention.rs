//! Attention: the mentions of each message (by user id, members only) and each person's read
//! marker per room, with the counts the room list shows (unread, and mentions of you or `@room`
//! plus replies to your messages, after your marker).
//!
//! A person without a marker in a room has read everything posted before they joined it, so
//! joining a room with a long history does not start with hundreds of unread messages.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

/// Where a person stands in one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Standing {
    pub room_id: Uuid,
    /// The last `seq` read (see the module's note for a person without a marker).
    pub last_read_seq: i64,
    /// Messages after the marker, not the person's own, not deleted.
    pub unread_count: i64,
    /// Of those: the ones mentioning them or `@room`, and replies to their messages.
    pub mention_count: i64,
    /// The newest message the counts cover: the room's newest when they were counted (or the
    /// bound given). A message after it was not counted, whenever it arrives.
    pub counted_to_seq: i64,
}

/// `$1` the person, `$2` one room or NULL for all of theirs, `$3` the last `seq` to count or NULL
/// for all.
const STANDING: &str = "
    WITH mine AS (
        SELECT rm.room_id,
               COALESCE(k.last_read_seq,
                        (SELECT COALESCE(max(x.seq), 0) FROM messages x
                         WHERE x.room_id = rm.room_id AND x.created_at <= rm.joined_at)) AS last_read_seq
        FROM room_members rm
        LEFT JOIN read_markers k ON k.user_id = rm.user_id AND k.room_id = rm.room_id
        WHERE rm.user_id = $1 AND ($2::uuid IS NULL OR rm.room_id = $2))
    SELECT mine.room_id, mine.last_read_seq,
           (SELECT count(*) FROM messages m
            WHERE m.room_id = mine.room_id AND m.seq > mine.last_read_seq
              AND ($3::bigint IS NULL OR m.seq <= $3)
              AND m.deleted_at IS NULL AND m.author_id IS DISTINCT FROM $1) AS unread_count,
           (SELECT count(*) FROM messages m
            WHERE m.room_id = mine.room_id AND m.seq > mine.last_read_seq
              AND ($3::bigint IS NULL OR m.seq <= $3)
              AND m.deleted_at IS NULL AND m.author_id IS DISTINCT FROM $1
              AND (EXISTS (SELECT 1 FROM message_mentions mm
                           WHERE mm.message_id = m.id AND (mm.user_id = $1 OR mm.everyone))
                   OR EXISTS (SELECT 1 FROM messages p WHERE p.id = m.reply_to AND p.author_id = $1)))
               AS mention_count,
           (SELECT COALESCE(max(m.seq), 0) FROM messages m
            WHERE m.room_id = mine.room_id AND ($3::bigint IS NULL OR m.seq <= $3)) AS counted_to_seq
    FROM mine";

/// The person's standing in each of their rooms.
pub async fn standings(db: &PgPool, user_id: Uuid) -> Result<HashMap<Uuid, Standing>, sqlx::Error> {
    let rows: Vec<Standing> =
        sqlx::query_as(STANDING).bind(user_id).bind(None::<Uuid>).bind(None::<i64>).fetch_all(db).await?;
    Ok(rows.into_iter().map(|s| (s.room_id, s)).collect())
}

/// The person's standing in one room; `None` when they are not a member.
pub async fn standing(db: &PgPool, user_id: Uuid, room_id: Uuid) -> Result<Option<Standing>, sqlx::Error> {
    standing_until(db, user_id, room_id, None).await
}

/// [`standing`], counting only the messages up to `until` (all of them for `None`): the counts
/// that go with a page of history whose newest message is `until`, so a message stored between
/// reading the page and counting is neither counted without being shown nor counted twice once
/// it arrives as `new_message`.
pub async fn standing_until(
    db: &PgPool,
    user_id: Uuid,
    room_id: Uuid,
    until: Option<i64>,
) -> Result<Option<Standing>, sqlx::Error> {
    sqlx::query_as(STANDING).bind(user_id).bind(Some(room_id)).bind(until).fetch_optional(db).await
}

/// Moves the person's marker forward to `seq` (at most the room's last `seq`), only while they
/// are a member and only forward. Answers the new marker when it moved.
pub async fn advance(db: &PgPool, user_id: Uuid, room_id: Uuid, seq: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO read_markers (user_id, room_id, last_read_seq)
         SELECT $1, r.id, LEAST($3, r.last_seq) FROM rooms r
         WHERE r.id = $2 AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $1)
         ON CONFLICT (user_id, room_id) DO UPDATE SET last_read_seq = EXCLUDED.last_read_seq, updated_at = now()
             WHERE read_markers.last_read_seq < EXCLUDED.last_read_seq
         RETURNING last_read_seq",
    )
    .bind(user_id)
    .bind(room_id)
    .bind(seq)
    .fetch_optional(db)
    .await
}

/// Who a message mentions: members' ids, and whether it mentions `@room`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub users: Vec<Uuid>,
    pub everyone: bool,
}

/// Stores a message's mentions: of `candidates`, only the room's current members; `@room` when
/// `everyone`. Answers what was stored.
pub async fn record_mentions(
    db: &PgPool,
    room_id: Uuid,
    message_id: Uuid,
    seq: i64,
    candidates: &[Uuid],
    everyone: bool,
) -> Result<Mentions, sqlx::Error> {
    let rows: Vec<(Option<Uuid>, bool)> = sqlx::query_as(
        "INSERT INTO message_mentions (message_id, room_id, seq, user_id, everyone)
         SELECT $1, $2, $3, m.user_id, false FROM room_members m WHERE m.room_id = $2 AND m.user_id = ANY($4)
         UNION ALL SELECT $1, $2, $3, NULL, true WHERE $5
         ON CONFLICT DO NOTHING
         RETURNING user_id, everyone",
    )
    .bind(message_id)
    .bind(room_id)
    .bind(seq)
    .bind(candidates)
    .bind(everyone)
    .fetch_all(db)
    .await?;
    let mut stored = Mentions::default();
    for (user, all) in rows {
        stored.everyone |= all;
        stored.users.extend(user);
    }
    stored.users.sort();
    Ok(stored)
}

/// The mentions of some messages.
pub async fn mentions_of(db: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, Mentions>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT message_id, user_id, everyone FROM message_mentions WHERE message_id = ANY($1) ORDER BY user_id",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    let mut out: HashMap<Uuid, Mentions> = HashMap::new();
    for (message_id, user, everyone) in rows {
        let entry = out.entry(message_id).or_default();
        entry.everyone |= everyone;
        entry.users.extend(user);
    }
    Ok(out)
}
