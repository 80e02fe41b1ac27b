//! Notes: what Mathia remembers for a room, sealed with the room's key like messages.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Error;
use crate::{
    domain::{Author, Note, NoteKind, NotePriority},
    keyring::{Aad, RoomKeyring, Sealed},
};

fn aad(id: Uuid) -> Aad<'static> {
    Aad { kind: "note", id }
}

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: Uuid,
    room_id: Uuid,
    author_id: Option<Uuid>,
    display_name: Option<String>,
    priority: String,
    kind: String,
    key_version: i32,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    created_at: DateTime<Utc>,
}

const SELECT_NOTES: &str = "SELECT n.id, n.room_id, n.author_id, u.display_name, n.priority, n.kind, n.key_version,
        n.nonce, n.ciphertext, n.created_at
 FROM notes n LEFT JOIN users u ON u.id = n.author_id";

fn priority(s: &str) -> NotePriority {
    if s == "high" { NotePriority::High } else { NotePriority::Normal }
}

fn kind(s: &str) -> NoteKind {
    match s {
        "decision" => NoteKind::Decision,
        "action_item" => NoteKind::ActionItem,
        "insight" => NoteKind::Insight,
        _ => NoteKind::Reference,
    }
}

async fn open(keyring: &RoomKeyring, rows: Vec<NoteRow>, shared_unless: Option<Uuid>) -> Result<Vec<Note>, Error> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sealed = Sealed { key_version: r.key_version, nonce: r.nonce, ciphertext: r.ciphertext };
        out.push(Note {
            id: r.id,
            room_id: r.room_id,
            text: keyring.open_text(r.room_id, aad(r.id), &sealed).await?,
            priority: priority(&r.priority),
            kind: kind(&r.kind),
            shared: shared_unless.is_some_and(|room| room != r.room_id),
            author: r.author_id.map(|id| Author { id, display_name: r.display_name.unwrap_or_default() }),
            created_at: r.created_at,
        });
    }
    Ok(out)
}

pub async fn add(
    db: &PgPool,
    keyring: &RoomKeyring,
    room_id: Uuid,
    author: Option<Uuid>,
    text: &str,
    priority: NotePriority,
    kind: NoteKind,
) -> Result<Note, Error> {
    let id = Uuid::now_v7();
    let sealed = keyring.seal(room_id, aad(id), text.as_bytes()).await?;
    sqlx::query(
        "INSERT INTO notes (id, room_id, author_id, priority, kind, key_version, nonce, ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(room_id)
    .bind(author)
    .bind(priority.as_str())
    .bind(kind.as_str())
    .bind(sealed.key_version)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .execute(db)
    .await?;
    let rows: Vec<NoteRow> = sqlx::query_as(&format!("{SELECT_NOTES} WHERE n.id = $1")).bind(id).fetch_all(db).await?;
    Ok(open(keyring, rows, None).await?.remove(0))
}

/// The context manager's view: a room's notes, plus the user's OWN high-priority notes from
/// their other rooms (marked `shared`). Others' notes never leave their room: the room asked
/// about may hold people who cannot read the room a note was written in. Oldest first.
pub async fn for_room(db: &PgPool, keyring: &RoomKeyring, room_id: Uuid, user_id: Uuid) -> Result<Vec<Note>, Error> {
    let rows: Vec<NoteRow> = sqlx::query_as(&format!(
        "{SELECT_NOTES}
         WHERE n.room_id = $1
            OR (n.priority = 'high' AND n.author_id = $2
                AND n.room_id IN (SELECT room_id FROM room_members WHERE user_id = $2))
         ORDER BY (n.room_id = $1) DESC, n.created_at"
    ))
    .bind(room_id)
    .bind(user_id)
    .fetch_all(db)
    .await?;
    open(keyring, rows, Some(room_id)).await
}

/// The room a note belongs to.
pub async fn room_of(db: &PgPool, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT room_id FROM notes WHERE id = $1").bind(id).fetch_optional(db).await
}

pub async fn delete(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM notes WHERE id = $1").bind(id).execute(db).await?.rows_affected() == 1)
}
