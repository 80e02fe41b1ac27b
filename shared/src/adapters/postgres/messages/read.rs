//! Reading messages: pages of a room's history, single messages with their reactions, the
//! moderation batch's narrow read, and the assistant's recent context — each opened with the
//! room's key.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Error;
use crate::{
    domain::{Attachment, Author, Message, MessageKind, Pinned, ReactionSummary, ReplyRef, Sources},
    keyring::{Aad, RoomKeyring, Sealed},
};

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    room_id: Uuid,
    seq: i64,
    kind: String,
    author_id: Option<Uuid>,
    display_name: Option<String>,
    key_version: i32,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    client_msg_id: Option<String>,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    stopped: bool,
    reply_to: Option<Uuid>,
    reply_author_id: Option<Uuid>,
    reply_display_name: Option<String>,
    reply_key_version: Option<i32>,
    reply_nonce: Option<Vec<u8>>,
    reply_ciphertext: Option<Vec<u8>>,
    reply_deleted_at: Option<DateTime<Utc>>,
    attachment_id: Option<Uuid>,
    file_name: Option<String>,
    file_size: Option<i64>,
    file_type: Option<String>,
    pinned_at: Option<DateTime<Utc>>,
    pinned_by: Option<Uuid>,
    pinned_by_name: Option<String>,
    sources_key_version: Option<i32>,
    sources_nonce: Option<Vec<u8>>,
    sources_ciphertext: Option<Vec<u8>>,
}

const SELECT_MESSAGES: &str = "SELECT m.id, m.room_id, m.seq, m.kind, m.author_id, u.display_name, m.key_version,
        m.nonce, m.ciphertext, m.client_msg_id, m.created_at, m.edited_at, m.deleted_at, m.stopped, m.reply_to,
        r.author_id AS reply_author_id, ru.display_name AS reply_display_name, r.key_version AS reply_key_version,
        r.nonce AS reply_nonce, r.ciphertext AS reply_ciphertext, r.deleted_at AS reply_deleted_at,
        m.attachment_id, f.name AS file_name, f.size AS file_size, f.content_type AS file_type,
        p.pinned_at, p.pinned_by, pu.display_name AS pinned_by_name,
        m.sources_key_version, m.sources_nonce, m.sources_ciphertext
 FROM messages m LEFT JOIN users u ON u.id = m.author_id
 LEFT JOIN messages r ON r.id = m.reply_to LEFT JOIN users ru ON ru.id = r.author_id
 LEFT JOIN files f ON f.id = m.attachment_id
 LEFT JOIN pins p ON p.message_id = m.id LEFT JOIN users pu ON pu.id = p.pinned_by";

/// How many characters of a quoted message a reply carries.
const EXCERPT_CHARS: usize = 140;

fn excerpt(body: &str) -> String {
    match body.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

async fn open_rows(db: &PgPool, keyring: &RoomKeyring, rows: Vec<MessageRow>) -> Result<Vec<Message>, Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut reactions = reactions_of(db, &ids).await?;
    let mut mentions = crate::adapters::postgres::attention::mentions_of(db, &ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body = if r.deleted_at.is_some() {
            String::new()
        } else {
            let sealed = Sealed { key_version: r.key_version, nonce: r.nonce, ciphertext: r.ciphertext };
            keyring.open_text(r.room_id, Aad::message(r.id), &sealed).await?
        };
        let reply_to = match (r.reply_to, r.reply_key_version, r.reply_nonce, r.reply_ciphertext) {
            (Some(id), Some(key_version), Some(nonce), Some(ciphertext)) => {
                let text = if r.reply_deleted_at.is_some() {
                    String::new()
                } else {
                    let sealed = Sealed { key_version, nonce, ciphertext };
                    keyring.open_text(r.room_id, Aad::message(id), &sealed).await?
                };
                Some(ReplyRef {
                    id,
                    author: r
                        .reply_author_id
                        .map(|id| Author { id, display_name: r.reply_display_name.unwrap_or_default() }),
                    excerpt: excerpt(&text),
                })
            }
            _ => None,
        };
        let sources = match (r.sources_key_version, r.sources_nonce, r.sources_ciphertext) {
            (Some(key_version), Some(nonce), Some(ciphertext)) if r.deleted_at.is_none() => {
                let sealed = Sealed { key_version, nonce, ciphertext };
                let json = keyring.open(r.room_id, super::sources_aad(r.id), &sealed).await?;
                serde_json::from_slice::<Sources>(&json).unwrap_or_else(|e| {
                    tracing::warn!(message_id = %r.id, error = %e, "unreadable sources left out");
                    Sources::default()
                })
            }
            _ => Sources::default(),
        };
        out.push(Message {
            id: r.id,
            room_id: r.room_id,
            seq: r.seq,
            kind: MessageKind::from_db(&r.kind),
            author: r.author_id.map(|id| Author { id, display_name: r.display_name.unwrap_or_default() }),
            body,
            created_at: r.created_at,
            client_msg_id: r.client_msg_id,
            reply_to,
            edited_at: r.edited_at,
            deleted: r.deleted_at.is_some(),
            stopped: r.stopped,
            reactions: reactions.remove(&r.id).unwrap_or_default(),
            attachment: match (r.attachment_id, r.file_name, r.file_size, r.file_type) {
                (Some(id), Some(name), Some(size), Some(content_type)) if r.deleted_at.is_none() => {
                    Some(Attachment { id, name, size, content_type, url: format!("/api/files/{id}") })
                }
                _ => None,
            },
            pinned: r.pinned_at.map(|at| Pinned {
                by: r.pinned_by.map(|id| Author { id, display_name: r.pinned_by_name.unwrap_or_default() }),
                at,
            }),
            mentions_room: mentions.get(&r.id).is_some_and(|m| m.everyone),
            mentions: mentions.remove(&r.id).map(|m| m.users).unwrap_or_default(),
            sources: sources.notes,
            private_sources: sources.private,
            tools: sources.tools,
        });
    }
    Ok(out)
}

/// Reactions of some messages, grouped by emoji in the order they were first used.
pub async fn reactions_of(db: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<ReactionSummary>>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String, Vec<Uuid>)> = sqlx::query_as(
        "SELECT message_id, emoji, array_agg(user_id ORDER BY created_at)
         FROM reactions WHERE message_id = ANY($1)
         GROUP BY message_id, emoji ORDER BY min(created_at)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    let mut out: HashMap<Uuid, Vec<ReactionSummary>> = HashMap::new();
    for (message_id, emoji, user_ids) in rows {
        out.entry(message_id).or_default().push(ReactionSummary { emoji, count: user_ids.len(), user_ids });
    }
    Ok(out)
}

/// One message of a room.
pub async fn get(db: &PgPool, keyring: &RoomKeyring, room_id: Uuid, id: Uuid) -> Result<Option<Message>, Error> {
    let rows: Vec<MessageRow> = sqlx::query_as(&format!("{SELECT_MESSAGES} WHERE m.room_id = $1 AND m.id = $2"))
        .bind(room_id)
        .bind(id)
        .fetch_all(db)
        .await?;
    Ok(open_rows(db, keyring, rows).await?.pop())
}

/// Some messages of a room, in the order of `ids` (missing ones left out).
pub async fn some_of(db: &PgPool, keyring: &RoomKeyring, room_id: Uuid, ids: &[Uuid]) -> Result<Vec<Message>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<MessageRow> = sqlx::query_as(&format!("{SELECT_MESSAGES} WHERE m.room_id = $1 AND m.id = ANY($2)"))
        .bind(room_id)
        .bind(ids)
        .fetch_all(db)
        .await?;
    let mut by_id: HashMap<Uuid, Message> =
        open_rows(db, keyring, rows).await?.into_iter().map(|m| (m.id, m)).collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// A user's message as moderation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToModerate {
    pub id: Uuid,
    pub room_id: Uuid,
    pub seq: i64,
    pub author_id: Uuid,
    pub body: String,
}

#[derive(sqlx::FromRow)]
struct ModerationRow {
    id: Uuid,
    room_id: Uuid,
    seq: i64,
    author_id: Option<Uuid>,
    key_version: i32,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// The live user messages among `ids` — of `room`, when one is given — in room and `seq` order,
/// opened: what a moderation batch reads. One narrow query, without the joins and reactions a
/// displayed message needs.
pub async fn to_moderate(
    db: &PgPool,
    keyring: &RoomKeyring,
    room: Option<Uuid>,
    ids: &[Uuid],
) -> Result<Vec<ToModerate>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // By id alone, and the room checked here: with `room_id = $1` in the query, Postgres may
    // AND the primary key with a scan of the room's whole history (it did, on a busy room whose
    // statistics were behind), which costs more the longer the room lives. The read is a
    // function (migration 0018) so that it stays prepared without ever caching a sequential
    // scan made while `messages` was nearly empty.
    let rows: Vec<ModerationRow> = sqlx::query_as(
        "SELECT id, room_id, seq, author_id, key_version, nonce, ciphertext FROM messages_to_moderate($1)
         ORDER BY room_id, seq",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(author_id) = r.author_id.filter(|_| room.is_none_or(|room| r.room_id == room)) else { continue };
        let sealed = Sealed { key_version: r.key_version, nonce: r.nonce, ciphertext: r.ciphertext };
        let body = keyring.open_text(r.room_id, Aad::message(r.id), &sealed).await?;
        out.push(ToModerate { id: r.id, room_id: r.room_id, seq: r.seq, author_id, body });
    }
    Ok(out)
}

/// Where a page of history starts.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    Latest,
    /// Strictly older than this seq.
    Before(i64),
    /// Strictly newer than this seq.
    After(i64),
}

/// What the messages of one page (or `room_joined`) may weigh as JSON: API Gateway refuses
/// WebSocket frames over 128 KB, so a page of large messages carries fewer of them. One
/// message alone is far below this (a body is at most 4,000 characters and reactions are
/// capped), so a page always carries at least one.
pub const PAGE_MAX_BYTES: usize = 96 * 1024;

/// A page of history, oldest first; `more` says whether messages beyond it were left out
/// (the query stopped at `limit`, or the page reached its size bound).
pub struct Page {
    pub messages: Vec<Message>,
    pub more: bool,
}

pub async fn page(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    cursor: Cursor,
    limit: i64,
) -> Result<Page, Error> {
    page_within(db, keyring, room_id, cursor, limit, PAGE_MAX_BYTES).await
}

/// [`page`], with its messages weighing at most `max_bytes` as JSON: the messages nearest the
/// cursor are kept (the newest for `Latest` and `Before`, the oldest for `After`) and `more`
/// is set when any were left out.
pub async fn page_within(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    cursor: Cursor,
    limit: i64,
    max_bytes: usize,
) -> Result<Page, Error> {
    let fetch = limit + 1;
    let (condition, order, position) = match cursor {
        Cursor::Latest => ("", "DESC", None),
        Cursor::Before(seq) => ("AND m.seq < $3", "DESC", Some(seq)),
        Cursor::After(seq) => ("AND m.seq > $3", "ASC", Some(seq)),
    };
    let sql = format!("{SELECT_MESSAGES} WHERE m.room_id = $1 {condition} ORDER BY m.seq {order} LIMIT $2");
    let mut query = sqlx::query_as::<_, MessageRow>(&sql).bind(room_id).bind(fetch);
    if let Some(seq) = position {
        query = query.bind(seq);
    }
    let mut rows = query.fetch_all(db).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !matches!(cursor, Cursor::After(_)) {
        rows.reverse();
    }
    let mut messages = open_rows(db, keyring, rows).await?;
    let forward = matches!(cursor, Cursor::After(_));
    let kept = fitting(&messages, max_bytes, forward);
    let more = more || kept < messages.len();
    if forward {
        messages.truncate(kept);
    } else {
        messages.drain(..messages.len() - kept);
    }
    Ok(Page { messages, more })
}

/// How many messages fit in `max_bytes`, counted from the front (`forward`) or from the back;
/// at least one.
fn fitting(messages: &[Message], max_bytes: usize, forward: bool) -> usize {
    let weight = |m: &Message| serde_json::to_vec(m).map_or(usize::MAX, |v| v.len() + 1);
    let mut total = 0usize;
    let mut kept = 0;
    let ordered: Box<dyn Iterator<Item = &Message>> =
        if forward { Box::new(messages.iter()) } else { Box::new(messages.iter().rev()) };
    for m in ordered {
        total = total.saturating_add(weight(m));
        if total > max_bytes && kept > 0 {
            break;
        }
        kept += 1;
    }
    kept
}

/// The seq of a message in a room, to turn a message id cursor into a position.
pub async fn seq_of(db: &PgPool, room_id: Uuid, message_id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM messages WHERE room_id = $1 AND id = $2")
        .bind(room_id)
        .bind(message_id)
        .fetch_optional(db)
        .await
}

/// Who wrote a message of a room (None for AI and system messages), if it exists and is not
/// deleted.
pub async fn author_of(db: &PgPool, room_id: Uuid, id: Uuid) -> Result<Option<Option<Uuid>>, sqlx::Error> {
    sqlx::query_scalar("SELECT author_id FROM messages WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL")
        .bind(room_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The last `n` messages of a room that are not deleted, oldest first (the AI's context).
pub async fn recent(db: &PgPool, keyring: &RoomKeyring, room_id: Uuid, n: i64) -> Result<Vec<Message>, Error> {
    let page = page(db, keyring, room_id, Cursor::Latest, n).await?;
    Ok(page.messages.into_iter().filter(|m| !m.deleted).collect())
}

/// A page of history around one message (by `seq`), oldest first: the message itself and up to
/// `limit - 1` others, the older half before it and the newer half after. `more_before` and
/// `more_after` say whether the room goes on beyond either end.
pub struct AroundPage {
    pub messages: Vec<Message>,
    pub more_before: bool,
    pub more_after: bool,
}

pub async fn around(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    seq: i64,
    limit: i64,
) -> Result<AroundPage, Error> {
    let newer = limit / 2;
    let older = limit - newer;
    // Each side fetched one beyond its share, to know whether there is more.
    let sql = format!(
        "(SELECT * FROM ({SELECT_MESSAGES} WHERE m.room_id = $1 AND m.seq <= $2 ORDER BY m.seq DESC LIMIT $3) o)
         UNION ALL
         (SELECT * FROM ({SELECT_MESSAGES} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $4) n)"
    );
    let mut rows: Vec<MessageRow> =
        sqlx::query_as(&sql).bind(room_id).bind(seq).bind(older + 1).bind(newer + 1).fetch_all(db).await?;
    rows.sort_by_key(|r| r.seq);
    let before = rows.iter().filter(|r| r.seq <= seq).count() as i64;
    let after = rows.len() as i64 - before;
    let more_before = before > older;
    let more_after = after > newer;
    let start = usize::from(more_before);
    let end = rows.len() - usize::from(more_after);
    let rows: Vec<MessageRow> = rows.drain(start..end).collect();
    Ok(AroundPage { messages: open_rows(db, keyring, rows).await?, more_before, more_after })
}

/// Live messages by id, among `rooms` only, opened; in no particular order (search results).
pub async fn live_among(
    db: &PgPool,
    keyring: &RoomKeyring,
    ids: &[Uuid],
    rooms: &[Uuid],
) -> Result<Vec<Message>, Error> {
    let rows: Vec<MessageRow> = sqlx::query_as(&format!(
        "{SELECT_MESSAGES} WHERE m.id = ANY($1) AND m.room_id = ANY($2) AND m.deleted_at IS NULL"
    ))
    .bind(ids)
    .bind(rooms)
    .fetch_all(db)
    .await?;
    open_rows(db, keyring, rows).await
}
