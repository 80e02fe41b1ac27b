//! Rooms come into being here: a room is created with its first encryption key in the same
//! transaction, so no room ever exists without one.

use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    access,
    adapters::postgres::{rooms, users},
    app::App,
    domain::{Room, RoomName},
    error::Error,
};

/// A room and its key, inside the caller's transaction (a new workspace's first room).
pub async fn create_in(
    app: &App,
    tx: &mut Transaction<'_, Postgres>,
    workspace_id: Uuid,
    name: &str,
    creator_id: Uuid,
) -> crate::Result<Room> {
    let room = rooms::insert(tx, workspace_id, name, creator_id).await?;
    app.keyring.create_first_key(tx, room.id).await?;
    Ok(room)
}

/// A new room in `workspace_id` (or the creator's first workspace), which the creator must be in.
pub async fn create(app: &App, creator_id: Uuid, workspace_id: Option<Uuid>, name: &RoomName) -> crate::Result<Room> {
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
    let room = create_in(app, &mut tx, workspace_id, name.as_str(), creator_id).await?;
    tx.commit().await?;
    tracing::info!(room_id = %room.id, "room created");
    Ok(room)
}
