//! Who may do what: the one place that decides, for HTTP and WebSocket alike, whether someone
//! may read and post in a room (membership), and moderate it or move its workspace's money
//! (the workspace's owner). Each check answers with the feature error the edges translate.

use uuid::Uuid;

use crate::{
    adapters::postgres::{
        moderation,
        onboarding::{self, Step},
        rooms, users,
    },
    app::App,
    domain::{Role, Room},
    error::Error,
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
pub async fn in_room_workspace(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<Standing> {
    let Some(room) = rooms::get(&app.db, room_id).await? else { return Ok(Standing::NoSuchRoom) };
    Ok(match users::workspace_role(&app.db, room.workspace_id, user_id).await? {
        Some(role) => Standing::In(role),
        None => Standing::Outsider,
    })
}

/// `user_id`'s role in a workspace: `not_workspace_member` when they are not in it.
pub async fn workspace_role(app: &App, workspace_id: Uuid, user_id: Uuid) -> crate::Result<Role> {
    users::workspace_role(&app.db, workspace_id, user_id)
        .await?
        .ok_or_else(|| Error::forbidden("not_workspace_member", "you are not in that workspace"))
}

/// Whether `user_id` may read and post in `room_id`.
pub async fn is_room_member(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<bool> {
    Ok(rooms::is_member(&app.db, room_id, user_id).await?)
}

/// `Ok` when `user_id` may read and post in `room_id`; otherwise `not_member`, or
/// `onboarding_incomplete` when that is why (only people who finished onboarding are in rooms,
/// so the allowed path asks one question).
pub async fn require_member(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<()> {
    if is_room_member(app, room_id, user_id).await? {
        return Ok(());
    }
    Err(not_member(app, user_id).await)
}

/// `Ok` unless `user_id` is muted in `room_id` now; then `muted`, with when the mute ends.
pub async fn require_unmuted(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<()> {
    let now = app.clock.now();
    match moderation::muted_until(&app.db, room_id, user_id, now).await? {
        Some(until) => Err(Error::Muted {
            until,
            retry_after: (until - now).to_std().unwrap_or(std::time::Duration::from_millis(1)),
        }),
        None => Ok(()),
    }
}

/// `Ok` when `user_id` may change what `room_id` holds (edit, react, add notes, share files):
/// a member ([`require_member`]) who is not muted ([`require_unmuted`]).
pub async fn require_speaker(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<()> {
    require_member(app, room_id, user_id).await?;
    require_unmuted(app, room_id, user_id).await
}

/// Why someone is not let in: `onboarding_incomplete` when they have not finished onboarding,
/// `not_member` otherwise.
pub async fn not_member(app: &App, user_id: Uuid) -> Error {
    match onboarding::step(&app.db, user_id).await {
        Ok(step) if step != Step::Done => Error::onboarding_incomplete(),
        _ => Error::not_member(),
    }
}

/// The room, when `user_id` is a member: `room_not_found` when there is no such room,
/// `not_member` when it is not theirs.
pub async fn member_room(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<Room> {
    let room = rooms::get(&app.db, room_id).await?.ok_or_else(|| Error::not_found("room_not_found", "no such room"))?;
    require_member(app, room_id, user_id).await?;
    Ok(room)
}

/// `Ok` when `user_id` may moderate `room_id` (mute, unmute, delete others' messages).
pub async fn require_moderator(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<()> {
    match in_room_workspace(app, room_id, user_id).await? {
        standing if standing.may_moderate() => Ok(()),
        Standing::NoSuchRoom => Err(Error::not_found("room_not_found", "no such room")),
        Standing::Outsider => Err(Error::not_member()),
        Standing::In(_) => Err(Error::forbidden("owner_only", "only the workspace's owner moderates its rooms")),
    }
}
