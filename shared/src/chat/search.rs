//! Message search: the messages of the rooms a person is in that hold every word of a query,
//! newest first. The index holds only keyed hashes (`adapters::postgres::search`), so a query's
//! words are hashed with each readable room's index keys; each candidate is then opened and
//! checked against the query (a truncated hash can collide) and shown with an excerpt.

use serde::Serialize;
use uuid::Uuid;

use crate::limits::per_person_limit;
use crate::{
    access,
    adapters::postgres::{messages, rooms, search},
    app::App,
    domain::{Message, search::SearchQuery},
};

/// At most this many results per page.
pub const MAX_LIMIT: i64 = 50;

#[derive(Debug, Clone, Serialize)]
pub struct RoomRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub message: Message,
    pub room: RoomRef,
    pub excerpt: String,
}

/// A page of results, newest first; `next_before` continues it.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub results: Vec<Hit>,
    pub next_before: Option<Uuid>,
}

/// Searches the rooms `user_id` is in (only `room_id`, when given: then they must be in it).
/// `before` is the `next_before` of the previous page.
#[tracing::instrument(skip(app, query), fields(terms = query.terms().len()))]
pub async fn search(
    app: &App,
    user_id: Uuid,
    query: &SearchQuery,
    room_id: Option<Uuid>,
    before: Option<Uuid>,
    limit: i64,
) -> crate::Result<Found> {
    if let Some(room_id) = room_id {
        access::require_member(app, room_id, user_id).await?;
    }
    per_person_limit(app, "search", "searches", user_id, app.clock.now()).await?;
    let readable: Vec<_> =
        rooms::of_user(&app.db, user_id).await?.into_iter().filter(|r| room_id.is_none_or(|id| r.id == id)).collect();
    if readable.is_empty() {
        return Ok(Found { results: Vec::new(), next_before: None });
    }
    let room_ids: Vec<Uuid> = readable.iter().map(|r| r.id).collect();
    let keys = app.keyring.index_keys_of(&room_ids).await?;
    let groups: Vec<Vec<i64>> =
        keys.iter().map(|(_, key)| query.terms().iter().map(|t| key.term(t)).collect()).collect();
    let ids = search::candidates(&app.db, &groups, &room_ids, before, limit + 1).await?;
    let more = ids.len() as i64 > limit;
    let ids = &ids[..ids.len().min(limit as usize)];
    let next_before = if more { ids.last().copied() } else { None };
    let mut found = messages::live_among(&app.db, &app.keyring, ids, &room_ids).await?;
    found.retain(|m| query.matches(&m.body));
    found.sort_by_key(|m| std::cmp::Reverse(m.id));
    let results = found
        .into_iter()
        .filter_map(|message| {
            let room = readable.iter().find(|r| r.id == message.room_id)?;
            Some(Hit {
                excerpt: query.excerpt(&message.body),
                room: RoomRef { id: room.id, name: room.name.clone() },
                message,
            })
        })
        .collect();
    Ok(Found { results, next_before })
}
