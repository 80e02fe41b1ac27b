//! Messages, sealed with the room's key. `seq` is handed out by bumping `rooms.last_seq` in the
//! same statement as the insert, so it rises by exactly one per stored message. Edits re-seal
//! the body; a delete drops the ciphertext and keeps the row (and its `seq`).
//!
//! The search index (`messages.search_terms`, see `search`) follows the body: the insert writes
//! it with the row, an edit replaces it, a delete empties it.

use std::{collections::HashMap, sync::LazyLock};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::{Author, Message, MessageKind, ReactionSummary, Sources},
    error::Error,
    keyring::{Aad, KeyringError, RoomKeyring},
};

use super::search::{is_indexed, term_hashes};

mod change;
mod read;
pub use change::*;
pub use read::*;

/// A message to store. `store` takes several at once (the group commit); every other writer
/// passes one.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: Uuid,
    pub kind: MessageKind,
    pub author_id: Option<Uuid>,
    pub body: String,
    pub client_msg_id: Option<String>,
    /// When set, the message is stored only if this user is a member of the room and is not
    /// muted in it at `at` — checked in the insert itself, so the hot path is one statement.
    pub require_member: Option<Uuid>,
    pub at: DateTime<Utc>,
    /// A message of the same room this one answers (one of another room is not linked).
    pub reply_to: Option<Uuid>,
    pub stopped: bool,
    /// A validated file of the same room.
    pub attachment_id: Option<Uuid>,
}

impl NewMessage {
    /// A message from nobody in particular (reminders, mutes), stored without checks.
    pub fn system(room_id: Uuid, body: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            room_id,
            kind: MessageKind::System,
            author_id: None,
            body: body.into(),
            client_msg_id: None,
            require_member: None,
            at,
            reply_to: None,
            stopped: false,
            attachment_id: None,
        }
    }
}

#[derive(Debug)]
pub enum Stored {
    New(Box<Message>),
    /// The author already sent this `client_msg_id` in this room: that message's id.
    Duplicate(Uuid),
    /// `require_member` is not a member, or is muted (or the room does not exist).
    NotMember,
}

/// Stores one message: [`store`] with a batch of one.
pub async fn store_one(db: &PgPool, keyring: &RoomKeyring, new: NewMessage) -> Result<Stored, Error> {
    Ok(store(db, keyring, std::slice::from_ref(&new)).await?.pop().expect("one result per message"))
}

/// Stores messages in one statement and one commit (the only way messages are stored). Each is stored only if its author may post
/// (`require_member`), and a `client_msg_id` already stored gives that message back. Messages
/// of one room take consecutive `seq`s in the order given. Room rows are locked in id order,
/// so concurrent batches cannot deadlock each other.
///
/// A batch that loses a race with another writer (a duplicate stored in between, a deadlock
/// with a writer that locks differently) is stored again message by message; any other
/// failure is the whole batch's.
pub async fn store(db: &PgPool, keyring: &RoomKeyring, batch: &[NewMessage]) -> Result<Vec<Stored>, Error> {
    let lost = match attempt(db, keyring, batch).await? {
        Attempt::Stored(stored) => return Ok(stored),
        Attempt::LostRace(e) => e,
    };
    if let [new] = batch {
        // Alone, only a duplicate stored at the same moment can beat it.
        return Ok(vec![already_sent(db, new).await?.map(Stored::Duplicate).ok_or(lost)?]);
    }
    tracing::debug!(error = %lost, "batch stored message by message");
    let mut stored = Vec::with_capacity(batch.len());
    for new in batch {
        stored.push(match attempt(db, keyring, std::slice::from_ref(new)).await? {
            Attempt::Stored(mut one) => one.pop().expect("one result per message"),
            // Alone, only a duplicate stored at the same moment can beat it.
            Attempt::LostRace(e) => already_sent(db, new).await?.map(Stored::Duplicate).ok_or(e)?,
        });
    }
    Ok(stored)
}

/// What one statement did.
enum Attempt {
    Stored(Vec<Stored>),
    /// The statement failed only because of another writer.
    LostRace(sqlx::Error),
}

/// The message its author already stored in this room under the same `client_msg_id`.
async fn already_sent(db: &PgPool, new: &NewMessage) -> Result<Option<Uuid>, sqlx::Error> {
    let Some(client_msg_id) = &new.client_msg_id else { return Ok(None) };
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
    new: &NewMessage,
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
        body: new.body.clone(),
        created_at,
        client_msg_id: new.client_msg_id.clone(),
        reply_to: None,
        edited_at: None,
        deleted: false,
        stopped: new.stopped,
        reactions: Vec::new(),
        attachment: None,
        pinned: None,
        mentions: Vec::new(),
        mentions_room: false,
        sources: Vec::new(),
        private_sources: 0,
        tools: Vec::new(),
    }
}

#[derive(sqlx::FromRow)]
struct InsertedRow {
    id: Uuid,
    seq: i64,
    created_at: DateTime<Utc>,
    display_name: Option<String>,
}

/// One statement for the whole batch.
async fn attempt(db: &PgPool, keyring: &RoomKeyring, batch: &[NewMessage]) -> Result<Attempt, Error> {
    let mut results: Vec<Option<Stored>> = batch.iter().map(|_| None).collect();
    let n = batch.len();
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
    // The search terms of the whole batch, flat; message i's are `terms[lo[i]..=hi[i]]` (from 1,
    // as SQL slices them; none when hi < lo).
    let (mut terms, mut terms_lo, mut terms_hi): (Vec<i64>, Vec<i32>, Vec<i32>) =
        (Vec::new(), Vec::with_capacity(n), Vec::with_capacity(n));
    for (slot, new) in batch.iter().enumerate() {
        let id = Uuid::now_v7();
        let sealed = match keyring.seal(new.room_id, Aad::message(id), new.body.as_bytes()).await {
            Ok(sealed) => sealed,
            // Every room gets its key when it is created: no key, no such room.
            Err(KeyringError::NoKey(_)) => {
                results[slot] = Some(Stored::NotMember);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        terms_lo.push(terms.len() as i32 + 1);
        if is_indexed(new.kind) {
            let key = keyring.index_key(new.room_id, sealed.key_version).await?;
            terms.extend(term_hashes(&key, &new.body));
        }
        terms_hi.push(terms.len() as i32);
        ids.push(id);
        rooms.push(new.room_id);
        kinds.push(new.kind.as_str());
        authors.push(new.author_id);
        versions.push(sealed.key_version);
        nonces.push(sealed.nonce);
        ciphertexts.push(sealed.ciphertext);
        client_ids.push(new.client_msg_id.as_deref());
        members.push(new.require_member);
        replies.push(new.reply_to);
        stopped.push(new.stopped);
        attachments.push(new.attachment_id);
        ats.push(new.at);
        slots.push(slot);
    }
    let rows: Result<Vec<InsertedRow>, sqlx::Error> = if let [slot] = slots[..] {
        // One message alone (the usual case at low load) takes the short statement: planning
        // the batch statement costs more than running it.
        let new = &batch[slot];
        sqlx::query_as(&ONE)
            .bind(ids[0])
            .bind(new.room_id)
            .bind(new.kind.as_str())
            .bind(new.author_id)
            .bind(versions[0])
            .bind(&nonces[0])
            .bind(&ciphertexts[0])
            .bind(new.client_msg_id.as_deref())
            .bind(new.require_member)
            .bind(new.reply_to)
            .bind(new.stopped)
            .bind(new.attachment_id)
            .bind(new.at)
            .bind((!terms.is_empty()).then_some(&terms))
            .fetch_all(db)
            .await
    } else {
        sqlx::query_as(&BATCH)
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
            .bind(&terms_lo)
            .bind(&terms_hi)
            .bind(&terms)
            .fetch_all(db)
            .await
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) if lost_a_race(&e) => return Ok(Attempt::LostRace(e)),
        Err(e) => return Err(e.into()),
    };
    let mut inserted: HashMap<Uuid, InsertedRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    for (i, slot) in slots.into_iter().enumerate() {
        let new = &batch[slot];
        results[slot] = Some(match inserted.remove(&ids[i]) {
            Some(_) if new.reply_to.is_some() || new.attachment_id.is_some() => {
                // The quote needs the other message, decrypted: read the row back whole.
                let message = get(db, keyring, new.room_id, ids[i]).await?.ok_or(sqlx::Error::RowNotFound)?;
                Stored::New(Box::new(message))
            }
            Some(InsertedRow { id, seq, created_at, display_name }) => {
                Stored::New(Box::new(just_stored(new, id, seq, created_at, display_name)))
            }
            // Refused: already stored under this client_msg_id, or the author may not post.
            None => already_sent(db, new).await?.map_or(Stored::NotMember, Stored::Duplicate),
        });
    }
    Ok(Attempt::Stored(results.into_iter().map(|r| r.expect("every message has a result")).collect()))
}

// The rules a new message is stored under, written once for the two statements below:
// `may_post` (the author is a member, not muted at the message's time), `quote` (a message of
// the same room) and `attachment` (a validated file of the same room). The quoted message and
// the attachment are looked up by id alone and their room checked after: with
// `id = … AND room_id = …`, a plan made while `messages` was nearly empty walked the room's
// whole history through its (room_id, seq) index, once per message.

fn may_post(room: &str, user: &str, at: &str) -> String {
    format!(
        "({user} IS NULL OR (
            EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = {room} AND m.user_id = {user})
            AND NOT EXISTS (SELECT 1 FROM mutes u WHERE u.room_id = {room} AND u.user_id = {user}
                            AND u.lifted_at IS NULL AND u.until > {at})))"
    )
}

fn quote(reply_to: &str, room: &str) -> String {
    format!("(SELECT CASE WHEN q.room_id = {room} THEN q.id END FROM messages q WHERE q.id = {reply_to})")
}

fn attachment(file: &str, room: &str) -> String {
    format!(
        "(SELECT CASE WHEN f.room_id = {room} AND f.status = 'ready' THEN f.id END FROM files f WHERE f.id = {file})"
    )
}

/// The search terms go in the message's own row, so a message and its index entries commit
/// together at no extra round trip.
const INSERT: &str = "INSERT INTO messages (id, room_id, seq, kind, author_id, key_version, nonce, ciphertext,
                                            client_msg_id, reply_to, stopped, attachment_id, search_terms)";

/// Closes the insert of both statements (an `ins` CTE) and returns its rows.
const RETURNING: &str = "RETURNING id, seq, created_at, author_id)
     SELECT id, seq, created_at, (SELECT display_name FROM users WHERE id = ins.author_id) AS display_name FROM ins";

/// One message: bump the room's `seq` if the author may post, insert with it. A duplicate
/// `client_msg_id` fails the unique index and is looked up after.
static ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH bump AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $2 AND {may_post} RETURNING last_seq),
         ins AS ({INSERT}
         SELECT $1, $2, bump.last_seq, $3, $4, $5, $6, $7, $8, {quote}, $11, {attachment}, $14::int8[] FROM bump
         {RETURNING}",
        may_post = may_post("$2", "$9::uuid", "$13"),
        quote = quote("$10", "$2"),
        attachment = attachment("$12", "$2"),
    )
});

/// Several messages, possibly of several rooms: each room's `seq` is bumped by its count, rooms
/// locked in id order; messages already stored under their `client_msg_id` are left out. Each
/// message's search terms are its slice `terms_lo..terms_hi` of the flat array $16.
static BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::int4[], $6::bytea[],
                                  $7::bytea[], $8::text[], $9::uuid[], $10::uuid[], $11::bool[], $12::uuid[],
                                  $13::timestamptz[], $14::int4[], $15::int4[])
                 WITH ORDINALITY AS i(id, room_id, kind, author_id, key_version, nonce, ciphertext,
                                      client_msg_id, require_member, reply_to, stopped, attachment_id, at,
                                      terms_lo, terms_hi, ord)),
         allowed AS (
             SELECT i.* FROM input i
             WHERE {may_post}
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
             RETURNING r.id, r.last_seq - c.n AS base),
         ins AS ({INSERT}
         SELECT a.id, a.room_id, b.base + row_number() OVER (PARTITION BY a.room_id ORDER BY a.ord), a.kind,
                a.author_id, a.key_version, a.nonce, a.ciphertext, a.client_msg_id, {quote}, a.stopped, {attachment},
                CASE WHEN a.terms_hi >= a.terms_lo THEN ($16::int8[])[a.terms_lo:a.terms_hi] END
         FROM allowed a JOIN bump b ON b.id = a.room_id
         {RETURNING}",
        may_post = may_post("i.room_id", "i.require_member", "i.at"),
        quote = quote("a.reply_to", "a.room_id"),
        attachment = attachment("a.attachment_id", "a.room_id"),
    )
});

/// A batch failed only because of another writer: storing one by one will sort it out.
fn lost_a_race(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// What a reply's sources are sealed under: bound to the message, apart from its body.
pub fn sources_aad(id: Uuid) -> Aad<'static> {
    Aad { kind: "msg-sources", id }
}

/// Seals and stores what an AI reply drew on (nothing is stored for a reply that drew on no
/// notes).
pub async fn set_sources(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    id: Uuid,
    sources: &Sources,
) -> Result<(), Error> {
    let (key_version, nonce, ciphertext) =
        if sources.notes.is_empty() && sources.private == 0 && sources.tools.is_empty() {
            (None, None, None)
        } else {
            let json = serde_json::to_vec(sources).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
            let sealed = keyring.seal(room_id, sources_aad(id), &json).await?;
            (Some(sealed.key_version), Some(sealed.nonce), Some(sealed.ciphertext))
        };
    sqlx::query(
        "UPDATE messages SET sources_key_version = $3, sources_nonce = $4, sources_ciphertext = $5
         WHERE room_id = $1 AND id = $2",
    )
    .bind(room_id)
    .bind(id)
    .bind(key_version)
    .bind(nonce)
    .bind(ciphertext)
    .execute(db)
    .await?;
    Ok(())
}

/// What adding a reaction did.
#[derive(Debug)]
pub enum Reacted {
    /// Added (or already there), or removed: the message's reactions afterwards.
    Done(Vec<ReactionSummary>),
    /// The person already has the most reactions allowed on this message.
    TooManyOfYours,
    /// The message already carries the most different emoji allowed, and this is a new one.
    TooManyEmoji,
    /// The message already carries the most reactions allowed in all.
    TooManyInAll,
}

/// Adds or removes a user's reaction; answers the message's reactions afterwards. An addition
/// is refused past `(per person, distinct emoji, in all)` reactions on the message; the
/// message's row is locked meanwhile, so racing reactions cannot pass the caps together.
pub async fn react(
    db: &PgPool,
    id: Uuid,
    user_id: Uuid,
    emoji: &str,
    on: bool,
    (per_person, distinct, in_all): (i64, i64, i64),
) -> Result<Reacted, sqlx::Error> {
    if on {
        let mut tx = db.begin().await?;
        sqlx::query("SELECT 1 FROM messages WHERE id = $1 FOR NO KEY UPDATE").bind(id).execute(&mut *tx).await?;
        let (already, mine, emoji_known, kinds, all): (bool, i64, bool, i64, i64) = sqlx::query_as(
            "SELECT bool_or(user_id = $2 AND emoji = $3) IS TRUE, count(*) FILTER (WHERE user_id = $2),
                    bool_or(emoji = $3) IS TRUE, count(DISTINCT emoji), count(*)
             FROM reactions WHERE message_id = $1",
        )
        .bind(id)
        .bind(user_id)
        .bind(emoji)
        .fetch_one(&mut *tx)
        .await?;
        if !already {
            if mine >= per_person {
                return Ok(Reacted::TooManyOfYours);
            }
            if !emoji_known && kinds >= distinct {
                return Ok(Reacted::TooManyEmoji);
            }
            if all >= in_all {
                return Ok(Reacted::TooManyInAll);
            }
            sqlx::query(
                "INSERT INTO reactions (message_id, user_id, emoji) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(user_id)
            .bind(emoji)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    } else {
        sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3")
            .bind(id)
            .bind(user_id)
            .bind(emoji)
            .execute(db)
            .await?;
    }
    Ok(Reacted::Done(reactions_of(db, &[id]).await?.remove(&id).unwrap_or_default()))
}
