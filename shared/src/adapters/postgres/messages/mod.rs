//! Messages, sealed with the room's key. `seq` is handed out by bumping `rooms.last_seq` in the
//! same statement as the insert, so it rises by exactly one per stored message. Edits re-seal
//! the body; a delete drops the ciphertext and keeps the row (and its `seq`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::{Author, Message, MessageKind, ReactionSummary},
    keyring::{Aad, KeyringError, RoomKeyring},
};

mod read;
pub use read::*;

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
    /// When set, the message is stored only if this user is a member of the room and is not
    /// muted in it at `at` — checked in the insert itself, so the hot path is one statement.
    pub require_member: Option<Uuid>,
    pub at: DateTime<Utc>,
    /// A message of the same room this one answers.
    pub reply_to: Option<Uuid>,
    pub stopped: bool,
    /// A validated file of the same room.
    pub attachment_id: Option<Uuid>,
}

#[derive(Debug)]
pub enum Stored {
    New(Box<Message>),
    /// The author already sent this `client_msg_id` in this room: that message's id.
    Duplicate(Uuid),
    /// `require_member` is not a member, or is muted (or the room does not exist).
    NotMember,
}

const DUPLICATE_INDEX: &str = "messages_client_msg_key";

#[derive(sqlx::FromRow)]
struct InsertedRow {
    seq: i64,
    created_at: DateTime<Utc>,
    display_name: Option<String>,
}

pub async fn insert(db: &PgPool, keyring: &RoomKeyring, new: NewMessage<'_>) -> Result<Stored, MessageStoreError> {
    let id = Uuid::now_v7();
    let sealed = match keyring.seal(new.room_id, Aad::message(id), new.body.as_bytes()).await {
        Ok(sealed) => sealed,
        // Every room gets its key when it is created: no key, no such room.
        Err(KeyringError::NoKey(_)) => return Ok(Stored::NotMember),
        Err(e) => return Err(e.into()),
    };
    // The quoted message and the attachment are looked up by id alone and their room checked
    // after: with `id = $10 AND room_id = $2`, a plan made while `messages` was nearly empty
    // walked the room's whole history through its (room_id, seq) index, once per message.
    let row: Result<Option<InsertedRow>, sqlx::Error> = sqlx::query_as(
        "WITH bump AS (
             UPDATE rooms SET last_seq = last_seq + 1
             WHERE id = $2 AND ($9::uuid IS NULL OR (
                 EXISTS (SELECT 1 FROM room_members WHERE room_id = $2 AND user_id = $9)
                 AND NOT EXISTS (SELECT 1 FROM mutes
                                 WHERE room_id = $2 AND user_id = $9 AND lifted_at IS NULL AND until > $13)))
             RETURNING last_seq)
         INSERT INTO messages (id, room_id, seq, kind, author_id, key_version, nonce, ciphertext, client_msg_id,
                               reply_to, stopped, attachment_id)
         SELECT $1, $2, bump.last_seq, $3, $4, $5, $6, $7, $8,
                (SELECT CASE WHEN q.room_id = $2 THEN q.id END FROM messages q WHERE q.id = $10), $11,
                (SELECT CASE WHEN f.room_id = $2 AND f.status = 'ready' THEN f.id END FROM files f WHERE f.id = $12)
         FROM bump
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
    .bind(new.reply_to)
    .bind(new.stopped)
    .bind(new.attachment_id)
    .bind(new.at)
    .fetch_optional(db)
    .await;
    match row {
        Ok(Some(InsertedRow { seq, created_at, display_name })) => {
            if new.reply_to.is_some() || new.attachment_id.is_some() {
                // The quote needs the other message, decrypted: read the row back whole.
                let message = get(db, keyring, new.room_id, id).await?.ok_or(sqlx::Error::RowNotFound)?;
                return Ok(Stored::New(Box::new(message)));
            }
            Ok(Stored::New(Box::new(just_stored(&new, id, seq, created_at, display_name))))
        }
        Ok(None) => Ok(Stored::NotMember),
        Err(e) if super::violated_constraint(&e) == Some(DUPLICATE_INDEX) => {
            let existing = already_sent(db, &new).await?.ok_or(sqlx::Error::RowNotFound)?;
            Ok(Stored::Duplicate(existing))
        }
        Err(e) => Err(e.into()),
    }
}

/// The message its author already stored in this room under the same `client_msg_id`.
async fn already_sent(db: &PgPool, new: &NewMessage<'_>) -> Result<Option<Uuid>, sqlx::Error> {
    let Some(client_msg_id) = new.client_msg_id else { return Ok(None) };
    sqlx::query_scalar("SELECT id FROM messages WHERE room_id = $1 AND author_id = $2 AND client_msg_id = $3")
        .bind(new.room_id)
        .bind(new.author_id)
        .bind(client_msg_id)
        .fetch_optional(db)
        .await
}

/// A message as it reads right after its insert, without a quote or an attachment (those are
/// read back whole).
fn just_stored(
    new: &NewMessage<'_>,
    id: Uuid,
    seq: i64,
    created_at: DateTime<Utc>,
    display_name: Option<String>,
) -> Message {
    Message {
        id,
        room_id: new.room_id,
        seq,
        kind: new.kind,
        author: new.author_id.map(|id| Author { id, display_name: display_name.unwrap_or_default() }),
        body: new.body.to_owned(),
        created_at,
        client_msg_id: new.client_msg_id.map(str::to_owned),
        reply_to: None,
        edited_at: None,
        deleted: false,
        stopped: new.stopped,
        reactions: Vec::new(),
        attachment: None,
    }
}

/// A message to store that owns its text, so it can wait in a group commit.
#[derive(Debug, Clone)]
pub struct MessageDraft {
    pub room_id: Uuid,
    pub kind: MessageKind,
    pub author_id: Option<Uuid>,
    pub body: String,
    pub client_msg_id: Option<String>,
    pub require_member: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub reply_to: Option<Uuid>,
    pub stopped: bool,
    pub attachment_id: Option<Uuid>,
}

impl MessageDraft {
    pub fn as_new(&self) -> NewMessage<'_> {
        NewMessage {
            room_id: self.room_id,
            kind: self.kind,
            author_id: self.author_id,
            body: &self.body,
            client_msg_id: self.client_msg_id.as_deref(),
            require_member: self.require_member,
            at: self.at,
            reply_to: self.reply_to,
            stopped: self.stopped,
            attachment_id: self.attachment_id,
        }
    }
}

#[derive(sqlx::FromRow)]
struct InsertedManyRow {
    id: Uuid,
    seq: i64,
    created_at: DateTime<Utc>,
    display_name: Option<String>,
}

/// Stores several messages in one statement and one commit, with the same checks as
/// [`insert`]: each is stored only if its author may post, and a `client_msg_id` already
/// stored gives that message back. Messages of one room take consecutive `seq`s in the order
/// given. Room rows are locked in id order, so concurrent batches cannot deadlock each other.
///
/// A batch that loses a race with another writer (a duplicate stored in between, a deadlock
/// with a writer that locks differently) is stored again message by message; any other
/// failure is the whole batch's.
pub async fn insert_many(
    db: &PgPool,
    keyring: &RoomKeyring,
    drafts: &[MessageDraft],
) -> Result<Vec<Stored>, MessageStoreError> {
    if let [draft] = drafts {
        return Ok(vec![insert(db, keyring, draft.as_new()).await?]);
    }
    let mut results: Vec<Option<Stored>> = drafts.iter().map(|_| None).collect();
    let n = drafts.len();
    let (mut ids, mut rooms, mut kinds, mut authors, mut versions) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut nonces, mut ciphertexts, mut client_ids, mut members, mut replies) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut stopped, mut attachments, mut ats, mut slots) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (slot, draft) in drafts.iter().enumerate() {
        let id = Uuid::now_v7();
        let sealed = match keyring.seal(draft.room_id, Aad::message(id), draft.body.as_bytes()).await {
            Ok(sealed) => sealed,
            Err(KeyringError::NoKey(_)) => {
                results[slot] = Some(Stored::NotMember);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        ids.push(id);
        rooms.push(draft.room_id);
        kinds.push(draft.kind.as_str());
        authors.push(draft.author_id);
        versions.push(sealed.key_version);
        nonces.push(sealed.nonce);
        ciphertexts.push(sealed.ciphertext);
        client_ids.push(draft.client_msg_id.as_deref());
        members.push(draft.require_member);
        replies.push(draft.reply_to);
        stopped.push(draft.stopped);
        attachments.push(draft.attachment_id);
        ats.push(draft.at);
        slots.push(slot);
    }
    let rows: Result<Vec<InsertedManyRow>, sqlx::Error> = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::int4[], $6::bytea[],
                                  $7::bytea[], $8::text[], $9::uuid[], $10::uuid[], $11::bool[], $12::uuid[],
                                  $13::timestamptz[])
                 WITH ORDINALITY AS i(id, room_id, kind, author_id, key_version, nonce, ciphertext,
                                      client_msg_id, require_member, reply_to, stopped, attachment_id, at, ord)),
         allowed AS (
             SELECT i.* FROM input i
             WHERE (i.require_member IS NULL OR (
                       EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = i.room_id AND m.user_id = i.require_member)
                       AND NOT EXISTS (SELECT 1 FROM mutes u
                                       WHERE u.room_id = i.room_id AND u.user_id = i.require_member
                                         AND u.lifted_at IS NULL AND u.until > i.at)))
               AND (i.client_msg_id IS NULL OR NOT EXISTS (
                       SELECT 1 FROM messages x
                       WHERE x.room_id = i.room_id AND x.author_id = i.author_id AND x.client_msg_id = i.client_msg_id))),
         locked AS (
             SELECT r.id FROM rooms r WHERE r.id IN (SELECT room_id FROM allowed) ORDER BY r.id FOR NO KEY UPDATE),
         bump AS (
             UPDATE rooms r SET last_seq = r.last_seq + c.n
             FROM (SELECT a.room_id, count(*) AS n FROM allowed a JOIN locked l ON l.id = a.room_id
                   GROUP BY a.room_id) c
             WHERE r.id = c.room_id
             RETURNING r.id, r.last_seq - c.n AS base)
         INSERT INTO messages (id, room_id, seq, kind, author_id, key_version, nonce, ciphertext, client_msg_id,
                               reply_to, stopped, attachment_id)
         SELECT a.id, a.room_id, b.base + row_number() OVER (PARTITION BY a.room_id ORDER BY a.ord), a.kind,
                a.author_id, a.key_version, a.nonce, a.ciphertext, a.client_msg_id,
                (SELECT CASE WHEN q.room_id = a.room_id THEN q.id END FROM messages q WHERE q.id = a.reply_to),
                a.stopped,
                (SELECT CASE WHEN f.room_id = a.room_id AND f.status = 'ready' THEN f.id END
                 FROM files f WHERE f.id = a.attachment_id)
         FROM allowed a JOIN bump b ON b.id = a.room_id
         RETURNING id, seq, created_at, (SELECT display_name FROM users WHERE id = author_id) AS display_name",
    )
    .bind(&ids)
    .bind(&rooms)
    .bind(&kinds)
    .bind(&authors)
    .bind(&versions)
    .bind(&nonces)
    .bind(&ciphertexts)
    .bind(&client_ids)
    .bind(&members)
    .bind(&replies)
    .bind(&stopped)
    .bind(&attachments)
    .bind(&ats)
    .fetch_all(db)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) if lost_a_race(&e) => {
            tracing::debug!(error = %e, "group commit stored message by message");
            let mut stored = Vec::with_capacity(drafts.len());
            for draft in drafts {
                stored.push(insert(db, keyring, draft.as_new()).await?);
            }
            return Ok(stored);
        }
        Err(e) => return Err(e.into()),
    };
    let mut inserted: HashMap<Uuid, InsertedManyRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    for (i, slot) in slots.into_iter().enumerate() {
        let draft = &drafts[slot];
        results[slot] = Some(match inserted.remove(&ids[i]) {
            Some(_) if draft.reply_to.is_some() || draft.attachment_id.is_some() => {
                let message = get(db, keyring, draft.room_id, ids[i]).await?.ok_or(sqlx::Error::RowNotFound)?;
                Stored::New(Box::new(message))
            }
            Some(InsertedManyRow { id, seq, created_at, display_name }) => {
                Stored::New(Box::new(just_stored(&draft.as_new(), id, seq, created_at, display_name)))
            }
            // Refused: already stored under this client_msg_id, or the author may not post.
            None => already_sent(db, &draft.as_new()).await?.map_or(Stored::NotMember, Stored::Duplicate),
        });
    }
    Ok(results.into_iter().map(|r| r.expect("every draft has a result")).collect())
}

/// A batch failed only because of another writer: storing one by one will sort it out.
fn lost_a_race(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// Re-seals a message with a new body.
pub async fn edit(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    id: Uuid,
    body: &str,
    at: DateTime<Utc>,
) -> Result<(), MessageStoreError> {
    let sealed = keyring.seal(room_id, Aad::message(id), body.as_bytes()).await?;
    sqlx::query(
        "UPDATE messages SET key_version = $3, nonce = $4, ciphertext = $5, edited_at = $6
         WHERE room_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(room_id)
    .bind(id)
    .bind(sealed.key_version)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a message's content; the row stays so `seq` has no gap.
pub async fn delete(db: &PgPool, room_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE messages SET ciphertext = ''::bytea, nonce = ''::bytea, deleted_at = $3
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

/// Adds or removes a user's reaction; answers the message's reactions afterwards.
pub async fn react(
    db: &PgPool,
    id: Uuid,
    user_id: Uuid,
    emoji: &str,
    on: bool,
) -> Result<Vec<ReactionSummary>, sqlx::Error> {
    if on {
        sqlx::query("INSERT INTO reactions (message_id, user_id, emoji) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(user_id)
            .bind(emoji)
            .execute(db)
            .await?;
    } else {
        sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3")
            .bind(id)
            .bind(user_id)
            .bind(emoji)
            .execute(db)
            .await?;
    }
    Ok(reactions_of(db, &[id]).await?.remove(&id).unwrap_or_default())
}
