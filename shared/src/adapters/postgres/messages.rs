//! Messages, sealed with the room's key. `seq` is handed out by bumping `rooms.last_seq` in the
//! same statement as the insert, so it rises by exactly one per stored message.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::{Author, Message, MessageKind},
    keyring::{Aad, KeyringError, RoomKeyring, Sealed},
};

#[derive(Debug, thiserror::Error)]
pub enum MessageStoreError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

impl From<MessageStoreError> for sqlx::Error {
    fn from(e: MessageStoreError) -> Self {
        match e {
            MessageStoreError::Db(e) | MessageStoreError::Keyring(KeyringError::Db(e)) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        }
    }
}

pub struct NewMessage<'a> {
    pub room_id: Uuid,
    pub kind: MessageKind,
    pub author_id: Option<Uuid>,
    pub body: &'a str,
    pub client_msg_id: Option<&'a str>,
    /// When set, the message is stored only if this user is a member of the room.
    pub require_member: Option<Uuid>,
}

#[derive(Debug)]
pub enum Stored {
    New(Message),
    /// The author already sent this `client_msg_id` in this room: that message's id.
    Duplicate(Uuid),
    /// `require_member` is not a member (or the room does not exist).
    NotMember,
}

#[derive(sqlx::FromRow)]
struct InsertedRow {
    seq: i64,
    created_at: DateTime<Utc>,
    display_name: Option<String>,
}

const DUPLICATE_INDEX: &str = "messages_client_msg_key";

pub async fn insert(
    db: &PgPool,
    keyring: &RoomKeyring,
    new: NewMessage<'_>,
) -> Result<Stored, MessageStoreError> {
    let id = Uuid::now_v7();
    let sealed = keyring
        .seal(new.room_id, Aad::message(id), new.body.as_bytes())
        .await?;
    let row: Result<Option<InsertedRow>, sqlx::Error> = sqlx::query_as(
        "WITH bump AS (
             UPDATE rooms SET last_seq = last_seq + 1
             WHERE id = $2 AND ($9::uuid IS NULL OR EXISTS (
                 SELECT 1 FROM room_members WHERE room_id = $2 AND user_id = $9))
             RETURNING last_seq)
         INSERT INTO messages (id, room_id, seq, kind, author_id, key_version, nonce, ciphertext, client_msg_id)
         SELECT $1, $2, bump.last_seq, $3, $4, $5, $6, $7, $8 FROM bump
         RETURNING seq, created_at, (SELECT display_name FROM users WHERE id = $4) AS display_name",
    )
    .bind(id)
    .bind(new.room_id)
    .bind(new.kind.as_str())
    .bind(new.author_id)
    .bind(sealed.key_version)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(new.client_msg_id)
    .bind(new.require_member)
    .fetch_optional(db)
    .await;
    match row {
        Ok(Some(InsertedRow {
            seq,
            created_at,
            display_name,
        })) => Ok(Stored::New(Message {
            id,
            room_id: new.room_id,
            seq,
            kind: new.kind,
            author: new.author_id.map(|id| Author {
                id,
                display_name: display_name.unwrap_or_default(),
            }),
            body: new.body.to_owned(),
            created_at,
            client_msg_id: new.client_msg_id.map(str::to_owned),
        })),
        Ok(None) => Ok(Stored::NotMember),
        Err(e) if super::violated_constraint(&e) == Some(DUPLICATE_INDEX) => {
            let existing: Uuid = sqlx::query_scalar(
                "SELECT id FROM messages WHERE room_id = $1 AND author_id = $2 AND client_msg_id = $3",
            )
            .bind(new.room_id)
            .bind(new.author_id)
            .bind(new.client_msg_id)
            .fetch_one(db)
            .await?;
            Ok(Stored::Duplicate(existing))
        }
        Err(e) => Err(e.into()),
    }
}

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
}

const SELECT_MESSAGES: &str =
    "SELECT m.id, m.room_id, m.seq, m.kind, m.author_id, u.display_name, m.key_version,
        m.nonce, m.ciphertext, m.client_msg_id, m.created_at
 FROM messages m LEFT JOIN users u ON u.id = m.author_id";

async fn open_rows(
    keyring: &RoomKeyring,
    rows: Vec<MessageRow>,
) -> Result<Vec<Message>, MessageStoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sealed = Sealed {
            key_version: r.key_version,
            nonce: r.nonce,
            ciphertext: r.ciphertext,
        };
        let body = keyring
            .open_text(r.room_id, Aad::message(r.id), &sealed)
            .await?;
        out.push(Message {
            id: r.id,
            room_id: r.room_id,
            seq: r.seq,
            kind: MessageKind::from_db(&r.kind),
            author: r.author_id.map(|id| Author {
                id,
                display_name: r.display_name.unwrap_or_default(),
            }),
            body,
            created_at: r.created_at,
            client_msg_id: r.client_msg_id,
        });
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

/// A page of history, oldest first; `more` says whether the query stopped at `limit`.
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
) -> Result<Page, MessageStoreError> {
    let fetch = limit + 1;
    let mut rows: Vec<MessageRow> =
        match cursor {
            Cursor::Latest => {
                sqlx::query_as(&format!(
                    "{SELECT_MESSAGES} WHERE m.room_id = $1 ORDER BY m.seq DESC LIMIT $2"
                ))
                .bind(room_id)
                .bind(fetch)
                .fetch_all(db)
                .await?
            }
            Cursor::Before(seq) => sqlx::query_as(&format!(
                "{SELECT_MESSAGES} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
            ))
            .bind(room_id)
            .bind(seq)
            .bind(fetch)
            .fetch_all(db)
            .await?,
            Cursor::After(seq) => sqlx::query_as(&format!(
                "{SELECT_MESSAGES} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3"
            ))
            .bind(room_id)
            .bind(seq)
            .bind(fetch)
            .fetch_all(db)
            .await?,
        };
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !matches!(cursor, Cursor::After(_)) {
        rows.reverse();
    }
    Ok(Page {
        messages: open_rows(keyring, rows).await?,
        more,
    })
}

/// The seq of a message in a room, to turn a message id cursor into a position.
pub async fn seq_of(
    db: &PgPool,
    room_id: Uuid,
    message_id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM messages WHERE room_id = $1 AND id = $2")
        .bind(room_id)
        .bind(message_id)
        .fetch_optional(db)
        .await
}
