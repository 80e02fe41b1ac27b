//! Direct messages: a private room of exactly two people of one workspace, one per pair.
//! `open` gets it or creates it; the pair's unique index decides between two requests made at
//! once, so both end in the same room. A DM is never joined, never invited to, and nobody is
//! added to it (the rooms' own paths refuse, and a trigger refuses anyone but the pair). Its
//! messages are sealed with its own room key, like any room's.

use uuid::Uuid;

use super::post::rate_limit;
use crate::{
    access,
    adapters::postgres::{rooms, users, workspaces},
    app::App,
    domain::{Room, RoomKind},
    error::Error,
    protocol::ServerEvent,
    realtime::push_to_user,
};

/// Someone one may not message is answered like someone who does not exist.
fn no_such_person() -> Error {
    Error::not_found("user_not_found", "no such person in this workspace")
}

/// The DM between `user_id` and `other` in `workspace_id` (or the first workspace they share),
/// created when missing: `(room, created)`. The other person's sockets hear `room_added` when
/// it is created.
pub async fn open(app: &App, user_id: Uuid, other: Uuid, workspace_id: Option<Uuid>) -> crate::Result<(Room, bool)> {
    if other == user_id {
        return Err(Error::invalid_field("user_id", "a direct message needs someone else"));
    }
    let workspace_id = match workspace_id {
        Some(id) => {
            access::workspace_role(app, id, user_id).await?;
            users::workspace_role(&app.db, id, other).await?.ok_or_else(no_such_person)?;
            id
        }
        None => workspaces::shared_by(&app.db, user_id, other).await?.ok_or_else(no_such_person)?,
    };
    rate_limit(app, user_id, app.clock.now()).await?;
    if let Some(room) = rooms::dm_of(&app.db, workspace_id, user_id, other).await? {
        return Ok((room, false));
    }
    let mut tx = app.db.begin().await?;
    let Some(room_id) = rooms::insert_dm(&mut tx, workspace_id, user_id, other).await? else {
        // Someone made it a moment ago.
        drop(tx);
        let room = rooms::dm_of(&app.db, workspace_id, user_id, other)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("a DM lost its race and then vanished")))?;
        return Ok((room, false));
    };
    app.keyring.create_first_key(&mut tx, room_id).await?;
    tx.commit().await?;
    tracing::info!(%room_id, "direct message opened");
    if let Some(theirs) = rooms::get_for(&app.db, room_id, other).await? {
        push_to_user(app, other, &ServerEvent::RoomAdded { room: theirs }).await;
    }
    let room = rooms::get_for(&app.db, room_id, user_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a new DM vanished")))?;
    Ok((room, true))
}

/// `Ok` unless the room is a DM: those keep exactly their two people (no invites, no joining,
/// no leaving into a room of one, no removing). Someone outside a DM is told `not_member`, as
/// for any room that is not theirs, and learns nothing of what it is.
pub async fn refuse_if_dm(app: &App, room_id: Uuid, user_id: Uuid, what: &str) -> crate::Result<()> {
    match rooms::get(&app.db, room_id).await? {
        Some(room) if room.kind == RoomKind::Dm => {
            access::require_member(app, room_id, user_id).await?;
            Err(Error::forbidden("direct_message", format!("a direct message is between its two people: {what}")))
        }
        _ => Ok(()),
    }
}
