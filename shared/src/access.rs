//! Who may do what: the one place that decides, for HTTP and WebSocket alike, whether someone
//! may read and post in a room (membership), and moderate it or move its workspace's money
//! (the workspace's owner).

use uuid::Uuid;

use crate::{
    adapters::postgres::{rooms, users},
    app::App,
    domain::Role,
};

/// Someone's standing in a room's workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    NoSuchRoom,
    /// Not in the room's workspace.
    Outsider,
    In(Role),
}

impl Standing {
    /// Only the workspace's owner moderates its rooms.
    pub fn may_moderate(self) -> bool {
        self == Self::In(Role::Owner)
    }
}

/// Only the workspace's owner moves its money.
pub fn may_move_money(role: Role) -> bool {
    role == Role::Owner
}

/// `user_id`'s standing in the workspace of `room_id`.
pub async fn in_room_workspace(app: &App, room_id: Uuid, user_id: Uuid) -> Result<Standing, sqlx::Error> {
    let Some(room) = rooms::get(&app.db, room_id).await? else { return Ok(Standing::NoSuchRoom) };
    Ok(match users::workspace_role(&app.db, room.workspace_id, user_id).await? {
        Some(role) => Standing::In(role),
        None => Standing::Outsider,
    })
}

/// Whether `user_id` may read and post in `room_id`.
pub async fn is_room_member(app: &App, room_id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    rooms::is_member(&app.db, room_id, user_id).await
}
