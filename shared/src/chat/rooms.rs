//! Rooms come into being here: a room is created with its first encryption key in the same
//! transaction, so no room ever exists without one. Members leave or are removed by the
//! workspace's owner here too, and invites are revoked.

use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    access,
    adapters::postgres::{invites, rooms, users},
    app::App,
    domain::{Room, RoomName, Visibility},
    error::Error,
    realtime::announce_if_gone,
};

/// A room and its key, inside the caller's transaction (a new workspace's first room).
pub async fn create_in(
    app: &App,
    tx: &mut Transaction<'_, Postgres>,
    workspace_id: Uuid,
    name: &str,
    creator_id: Uuid,
    visibility: Visibility,
) -> crate::Result<Room> {
    let room = rooms::insert(tx, workspace_id, name, creator_id, visibility).await?;
    app.keyring.create_first_key(tx, room.id).await?;
    Ok(room)
}

/// A new room in `workspace_id` (or the creator's first workspace), which the creator must be in.
pub async fn create(
    app: &App,
    creator_id: Uuid,
    workspace_id: Option<Uuid>,
    name: &RoomName,
    visibility: Visibility,
) -> crate::Result<Room> {
    let workspace_id = match workspace_id {
        Some(id) => {
            access::workspace_role(app, id, creator_id).await?;
            id
        }
        None => users::default_workspace(&app.db, creator_id)
            .await?
            .ok_or_else(|| Error::invalid("create or join a workspace first"))?,
    };
    let mut tx = app.db.begin().await?;
    let room = create_in(app, &mut tx, workspace_id, name.as_str(), creator_id, visibility).await?;
    tx.commit().await?;
    tracing::info!(room_id = %room.id, "room created");
    Ok(room)
}

/// Takes `user_id` out of `room_id`: their open sockets stop receiving the room at once, and the
/// room hears they went offline. Returns false when they were not a member.
pub async fn drop_member(app: &App, room_id: Uuid, user_id: Uuid, display_name: &str) -> crate::Result<bool> {
    if !rooms::remove_member(&app.db, room_id, user_id).await? {
        return Ok(false);
    }
    let connections = app.connections.of_user(user_id).await.unwrap_or_default();
    let mut was_present = false;
    for c in connections.iter().filter(|c| c.rooms.contains(&room_id)) {
        was_present = true;
        let _ = app.connections.leave(&c.id, room_id).await;
    }
    if was_present {
        announce_if_gone(app, room_id, user_id, display_name).await;
    }
    Ok(true)
}

/// The workspace's owner removes a member (not themselves: they leave). `not_found` when the
/// person is not in the room.
pub async fn remove_member(app: &App, by: Uuid, room_id: Uuid, user_id: Uuid) -> crate::Result<()> {
    access::require_moderator(app, room_id, by).await?;
    if by == user_id {
        return Err(Error::invalid_field("user_id", "to leave a room, use /leave"));
    }
    let name = users::by_id(&app.db, user_id).await?.map(|u| u.display_name).unwrap_or_default();
    if !drop_member(app, room_id, user_id, &name).await? {
        return Err(Error::not_found("not_found", "no such member in this room"));
    }
    tracing::info!(%room_id, %user_id, "member removed");
    Ok(())
}

/// Revokes an invite named by its id or its code: the workspace's owner or whoever made it.
pub async fn revoke_invite(app: &App, by: Uuid, id_or_code: &str) -> crate::Result<()> {
    let not_found = || Error::not_found("invite_not_found", "no such invite");
    if id_or_code.len() > 128 {
        return Err(not_found());
    }
    let invite = invites::find(&app.db, id_or_code).await?.ok_or_else(not_found)?;
    if invite.created_by != by {
        access::require_moderator(app, invite.room_id, by).await?;
    }
    if !invites::revoke(&app.db, invite.id).await? {
        return Err(not_found());
    }
    tracing::info!(invite_id = %invite.id, room_id = %invite.room_id, "invite revoked");
    Ok(())
}
